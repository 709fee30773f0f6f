"""Serving-time peaks: does one request shape fit the room vLLM left after its KV cache?

After startup the KV cache holds its fixed allocation; what a request needs beyond it (the
vision encoder's activations, its output embeddings kept in the encoder cache until the
language model consumes them, the forward pass of the prompt chunk) must fit in:

- the room the profile run's peak reserved inside the budget (``activation_peak``: it is free
  again once the KV cache is allocated), and
- whatever is still free outside the budget after CUDA graphs and the warm-up.

A request whose encoder peak exceeds the profiled one (larger images than the dummy item, more
images per call, a different modality, or a runner that skipped the encoder profile) can then
run out of memory while serving even though startup succeeded. Long offline runs add a second
risk the arithmetic below cannot see: the caching allocator fragments when image sizes vary
(seed 001: 59.38 GiB reserved against a 54.77 GiB allocated peak when image 29 of 60 failed),
which ``expandable_segments:True`` in ``PYTORCH_CUDA_ALLOC_CONF`` / ``PYTORCH_NPU_ALLOC_CONF`` avoids.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .plan import Plan, Term
from .units import GiB

__all__ = ["RequestShape", "ServingCheck", "serving_check"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestShape:
    image: tuple[int, int] | None = None
    """Width x height of each image."""
    images_per_request: int = 1
    video: tuple[int, int, int] | None = None
    """Width x height x sampled frames of each video (instead of images)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingCheck:
    terms: tuple[Term, ...]
    fits: bool
    tokens_per_image: int
    verdict: str
    """One line: fits, or the risk and the fix."""


def serving_check(plan: Plan, shape: RequestShape) -> ServingCheck:
    from .estimate.encoder import request_peak
    from .model.quant import dtype_bytes

    model = plan.model
    if shape.image is None and shape.video is None:
        raise InputError("no request shape given", hint="pass --image WIDTHxHEIGHT [--images-per-request N] "
                                                        "or --video WIDTHxHEIGHTxFRAMES")
    if model.vision is None:
        raise InputError(f"{model.name} takes no images", hint="--image and --video apply to vision-language models")
    if shape.images_per_request < 1:
        raise InputError("--images-per-request must be at least 1")
    w, h = (shape.video[:2] if shape.video else shape.image)
    frames = shape.video[2] if shape.video else None
    if w <= 0 or h <= 0 or (frames is not None and frames <= 0):
        raise InputError(f"sizes must be positive, got {w}x{h}" + (f"x{frames}" if frames is not None else ""))
    what = f"{frames}-frame video" if frames else "image"
    e = plan.engine
    rq = request_peak(model.vision, model.hf_config, model.preprocessor_config, image_width=w, image_height=h,
                      images_per_request=shape.images_per_request, dtype_bytes=int(dtype_bytes(e.model_dtype)),
                      attn_impl="vllm_flash", tp=e.tp, mm_encoder_tp_mode=plan.args.mm_encoder_tp_mode or "weights",
                      mm_processor_kwargs=plan.args.mm_processor_kwargs, version=e.version, video_frames=frames)
    r = plan.ranks[0]
    room_in_budget = r.bytes_of("activation_peak")
    head = {t.key: t.bytes for t in plan.headroom_terms}
    room_outside = max(head.get("headroom_left", 0), 0)
    in_label, out_label = ("room the profile peak reserved in the budget",
                           "free outside the budget after graphs and warm-up")
    if e.extensible_kv_cache:
        # vLLM 0.34 extensible KV cache: what stays free after the commit (the transient peak and the margin, in
        # vramplan/engines/vllm/sizing/extensible.py) is all the room; nothing else is reserved inside the budget
        room_in_budget = 0
        in_label, out_label = ("room reserved in the budget (none: the KV cache is sized after warm-up)",
                               "free after the KV commit (transient peak + margin)")
    tokens = rq.tokens_per_image * shape.images_per_request
    # the prompt's forward runs after the encoder, with its embeddings still held
    need = max(rq.peak.peak_bytes, rq.embedding_bytes)
    room = room_in_budget + room_outside
    fits = need <= room
    terms = (
        Term(key="request_encoder_peak", label=f"encoder peak: {shape.images_per_request} x {w}x{h} "
             f"{what} ({rq.tokens_per_image} tokens each)", bytes=rq.peak.peak_bytes, kind="measured",
             rule="vision tower live tensors at its peak stage (" + rq.peak.peak_stage + "); bench/vision"),
        Term(key="request_embeddings", label=f"{what} embeddings held until the LM consumes them",
             bytes=rq.embedding_bytes, rule="N x tokens x embedding width x dtype (deepstack levels included)"),
        Term(key="room_in_budget", label=in_label, bytes=room_in_budget,
             rule="activation_peak term: free again once the KV cache is allocated"),
        Term(key="room_outside", label=out_label, bytes=room_outside,
             rule="headroom_left (when positive)"),
    )
    if tokens > plan.max_model_len:
        fits = False
        verdict = (f"refused before any memory is used: the request's {tokens:,} {what} tokens exceed "
                   f"--max-model-len {plan.max_model_len:,} (vLLM rejects the prompt). Fix: a larger --max-model-len, "
                   f"or smaller/fewer items (--mm-processor-kwargs max_pixels, fewer frames)")
    elif fits:
        verdict = (f"fits: {need / GiB:.2f} GiB at the request's peak against {room / GiB:.2f} GiB of room "
                   f"({tokens:,} {'video' if frames else 'image'} tokens per request)")
    else:
        verdict = (f"does not fit: the request needs {need / GiB:.2f} GiB at its encoder peak but only "
                   f"{room / GiB:.2f} GiB is free once the KV cache is allocated; expect out of memory while "
                   f"serving. Fix: smaller items (--mm-processor-kwargs max_pixels), fewer items or frames per request "
                   f"(--limit-mm-per-prompt, fewer sampled frames), or a lower --gpu-memory-utilization to leave "
                   f"room")
    return ServingCheck(terms=terms, fits=fits, tokens_per_image=rq.tokens_per_image, verdict=verdict)
