"""The vision tower's activation peak: what is alive, tensor by tensor, when it peaks.

vLLM runs ``embed_multimodal`` once on N items of T patches (the profile run, §2.3 of the
research note) or on a request's images (serving). Under ``torch.no_grad`` only one layer's
temporaries exist at a time, so the peak is

    pixel values + resident tensors + max over stages (live temporaries of that stage)

where *resident* tensors live for the whole call (position embeddings, rotary cos/sin,
deepstack features collected so far) and a *stage* is one moment inside a block (the
attention projection, the rotary step, the MLP). Every term is a per-patch byte count
times the number of patches in the call; attention scores add ``heads * seq^2`` terms
only on the eager path. Each stage lists its tensors by name, from reading the code that
runs (cited per stage).

Attention implementations (``attn_impl``):

- ``"vllm_flash"``: vLLM's ViT path on CUDA with ``FLASH_ATTN`` (the default on sm80+):
  ``flash_attn_varlen_func`` over ``cu_seqlens``, no score matrix. vLLM's rotary kernel,
  RMSNorm and ``SiluAndMul`` write one output each.
- ``"vllm_sdpa"``: vLLM's ``TORCH_SDPA`` ViT backend: per-sequence
  ``F.scaled_dot_product_attention`` chunks, concatenated (on CUDA PyTorch picks its
  flash / memory-efficient kernel: still no score matrix).
- ``"hf_sdpa"``: the transformers reference implementation (what bench/vision measures):
  the rotary step runs in float32 on copies of q and k, RMSNorm upcasts to float32.
- ``"hf_eager"``: transformers eager attention: per-sequence ``heads x seq^2`` scores
  (model dtype twice, float32 softmax once).

``hf_*`` are modelled for the Qwen towers only (the ones we measure). The model was checked
against measurements of the transformers towers on an H100 (bench/vision, README there);
the vLLM paths use the same accounting applied to vLLM's code and are not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FlagError, UnsupportedError
from ..memo import by_identity
from ..model.description import VisionSpec
from ..model.families import vision_tower

__all__ = ["PeakPart", "EncoderPeak", "RequestEncoderPeak", "encoder_peak", "profile_peak", "request_peak",
           "ATTN_IMPLS"]

ATTN_IMPLS = ("vllm_flash", "vllm_sdpa", "hf_sdpa", "hf_eager", "hf_sdpa_bf16rope")
"""``hf_sdpa_bf16rope`` is bench-only: the transformers tower with its float32 rotary step replaced by
a one-output model-dtype function (bench/vision/measure_towers.py:rope_bf16), which moves the peak to
the attention-projection and MLP stages so that those get measured."""
_F32 = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class PeakPart:
    """One named term of a peak."""

    name: str
    size_bytes: int
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderPeak:
    """The encoder's memory during one ``embed_multimodal`` call, on one rank."""

    peak_bytes: int
    """Most bytes alive at once during the call (pixel values and outputs included when asked)."""
    held_bytes: int
    """Bytes still alive after the call while vLLM's text profile runs: the pixel values (the
    profile keeps the dummy batch) plus the N output embeddings in the encoder cache."""
    parts: tuple[PeakPart, ...]
    """The terms of ``peak_bytes`` at the peak moment (they add up to it)."""
    peak_stage: str
    """Where it peaks, e.g. ``blocks.26.attn.proj`` or ``merger``."""
    stages: tuple[PeakPart, ...] = ()
    """Every stage's total (resident and pixel values included) for inspection."""
    num_items: int
    patches_per_item: int
    total_patches: int
    tokens_per_item: int
    output_bytes: int
    """The embeddings handed to the LM: ``N x tokens x embed_dim x dtype`` (deepstack included)."""
    pixel_bytes: int
    attn_impl: str
    dtype_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestEncoderPeak:
    """The encoder peak for a serving-time request shape."""

    peak: EncoderPeak
    tokens_per_image: int
    patches_per_image: int
    embedding_bytes: int
    """Bytes of the request's image embeddings (held in the encoder cache until consumed)."""
    item: Any = field(default=None, compare=False)
    """The :class:`vramplan.model.mm_tokens.MMItem` of one image."""


# --------------------------------------------------------------------------- helpers


def _sh(x: float, tp: int) -> float:
    """A width split by TP (heads, intermediate)."""
    return x / tp


@dataclass(frozen=True, slots=True)
class _Stage:
    name: str
    per_patch: dict  # tensor name -> bytes per patch of the call
    extra_bytes: int = 0  # bytes that do not scale with the patches of the call (scores)
    extra_name: str = ""


def _qwen_stages(spec: VisionSpec, impl: str, b: int, tp: int, ar: bool) -> tuple[dict, list[_Stage]]:
    """Resident tensors and block stages of the Qwen ViTs, bytes per patch."""
    D, H = spec.hidden_size, spec.num_heads
    I = spec.intermediate_size  # noqa: E741
    d = spec.extra.get("head_dim") or D // H
    tower = _tower(spec)
    qwen3 = tower is not None and "pos_embeds" in tower.encoder_traits
    gated = spec.extra.get("mlp") == "gated"
    rms = spec.extra.get("norm") == "rms"
    f = _F32
    res: dict[str, float] = {}
    st: list[_Stage] = []
    if impl.startswith("vllm"):
        # vLLM v0.26.0 qwen3_vl.py:Qwen3_VisionTransformer.prepare_encoder_metadata keeps
        # pos_embeds [T, D] and rotary cos/sin [T, head_dim/2] (model dtype) for the whole call.
        if qwen3:
            res["pos_embeds"] = b * D
        res["rotary_cos_sin"] = 2 * b * d / 2
        if not qwen3:
            # qwen2_5_vl.py: get_rope_by_thw is lru_cached on the device (cos/sin per grid) and
            # window_index / reverse_indices are int64 per merged token.
            res["rotary_cos_sin_lru_cache"] = 2 * b * d / 2
            res["window_index"] = 2 * 8 / spec.spatial_merge_size ** 2
        ar_d = b * D if ar else 0
        # qwen2_5_vl.py:Qwen2_5_VisionAttention.forward (shared by Qwen3): x and norm1(x) stay
        # alive (caller's loop variable / call argument); qkv [T, 3D/tp]; q,k rearranged to a
        # contiguous copy [2, T, D/tp]; the rotary kernel writes a new [2, T, D/tp]; attention
        # writes [T, D/tp]; proj writes [T, D] (+ an all-reduce output under TP).
        attn = {"x": b * D, "norm1": b * D, "qkv": 3 * b * _sh(D, tp), "qk_contiguous": 2 * b * _sh(D, tp),
                "qk_rotated": 2 * b * _sh(D, tp), "attn_out": b * _sh(D, tp), "proj_out": b * D,
                "softmax_lse": f * _sh(H, tp)}
        if ar:
            attn["allreduce_out"] = ar_d
        if impl == "vllm_sdpa":
            # v1/attention/ops/vit_attn_wrappers.py:torch_sdpa_wrapper: chunk outputs + torch.cat
            attn = {k: v for k, v in attn.items() if k not in ("proj_out", "allreduce_out", "softmax_lse")}
            attn["sdpa_chunks"] = b * _sh(D, tp)
        st.append(_Stage("attn", attn))
        if gated:
            # Qwen2_5_VisionBlock: norm2(x, residual=x_attn) is the fused in-place add+RMSNorm;
            # Qwen2_5_VisionMLP keeps gate_up [T, 2I/tp] until it returns; SiluAndMul writes [T, I/tp].
            st.append(_Stage("mlp", {"x_normed": b * D, "residual": b * D, "gate_up": 2 * b * _sh(I, tp),
                                     "act": b * _sh(I, tp), "down_out": b * D, **({"allreduce_out": ar_d} if ar else {})}))
        else:
            # Qwen3_VisionBlock: x = x + attn(..) (old x held by the caller), norm2 out, fc1 out
            # alive while the activation writes its output.
            st.append(_Stage("mlp.act", {"x_in": b * D, "x_attn": b * D, "norm2": b * D,
                                         "fc1_out": b * _sh(I, tp), "act_out": b * _sh(I, tp)}))
            st.append(_Stage("mlp.fc2", {"x_in": b * D, "x_attn": b * D, "norm2": b * D,
                                         "act_out": b * _sh(I, tp), "fc2_out": b * D,
                                         **({"allreduce_out": ar_d} if ar else {})}))
        return res, st
    # transformers (5.17) reference: modeling_qwen2_5_vl.py / modeling_qwen3_vl.py
    res["rotary_cos_sin_fp32"] = 2 * f * d
    res["position_ids"] = 2 * 8
    if qwen3:
        # Qwen3VLVisionModel.forward keeps pos_embeds (float32 [T, D]) and the bilinear
        # interpolation indices (int64 [T, 4]) and weights (float32 [T, 4]).
        res["pos_embeds_fp32"] = f * D
        res["interp_indices_weights"] = 4 * 8 + 4 * f
    base = {"x": b * D, "norm1": b * D, "qkv": 3 * b * D}
    if impl == "hf_sdpa_bf16rope":
        # rope_bf16: cos/sin cast to the model dtype, then one output per tensor.
        st.append(_Stage("attn.rotary", {**base, "cos_sin_cast": 2 * b * d, "q_rot": b * D, "k_rot": b * D}))
    else:
        # apply_rotary_pos_emb_vision: q.float(), k.float(), q_embed (fp32) alive while k's
        # branch holds three fp32 temporaries (k*cos, rotate_half(k), rotate_half(k)*sin).
        st.append(_Stage("attn.rotary", {**base, "q_fp32": f * D, "k_fp32": f * D, "q_embed_fp32": f * D,
                                         "k_branch_fp32": 3 * f * D}))
    st.append(_Stage("attn.proj", {**base, "q_rot": b * D, "k_rot": b * D, "attn_chunks": b * D, "attn_cat": b * D,
                                   "proj_out": b * D}))
    if impl == "hf_eager":
        # one sequence's scores on top of q/k (plus up to one earlier chunk's output: ignored)
        st.append(_Stage("attn.scores", {**base, "q_rot": b * D, "k_rot": b * D}))
    if rms:
        # Qwen2_5_VLRMSNorm: float32 copy and the normalised float32 tensor.
        st.append(_Stage("norm2", {"x_in": b * D, "x_attn": b * D, "rms_fp32": 2 * f * D}))
    if gated:
        st.append(_Stage("mlp", {"x_in": b * D, "x_attn": b * D, "norm2": b * D, "act": b * I, "up": b * I,
                                 "act_x_up": b * I}))
    else:
        st.append(_Stage("mlp", {"x_in": b * D, "x_attn": b * D, "norm2": b * D, "fc1_out": b * I, "act_out": b * I}))
    return res, st


def _vit_stages(spec: VisionSpec, impl: str, b: int, tp: int, ar: bool) -> tuple[dict, list[_Stage]]:
    """Generic pre-norm ViT (CLIP, SigLIP, Pixtral-HF, InternViT, MoonViT, Llama4, mllama) in vLLM."""
    D, H = spec.hidden_size, spec.num_heads
    I = spec.intermediate_size  # noqa: E741
    f = _F32
    ar_d = {"allreduce_out": b * D} if ar else {}
    res: dict[str, float] = {}
    st: list[_Stage] = []
    # clip.py:CLIPEncoderLayer / siglip.py:SiglipEncoderLayer: the encoder loop holds x; layer
    # norm out; qkv [T, 3D/tp] (q, k, v are views); attention out [T, D/tp]; out_proj [T, D].
    attn = {"x": b * D, "norm1": b * D, "qkv": 3 * b * _sh(D, tp), "attn_out": b * _sh(D, tp), "proj_out": b * D,
            "softmax_lse": f * _sh(H, tp), **ar_d}
    if spec.extra.get("arch") == "internvit":
        attn["layer_scale_out"] = b * D  # attn(..) * ls1 is a new tensor
    st.append(_Stage("attn", attn))
    if spec.extra.get("mlp") == "gated":
        st.append(_Stage("mlp", {"x_in": b * D, "x_attn": b * D, "norm2": b * D, "gate_up": 2 * b * _sh(I, tp),
                                 "act": b * _sh(I, tp), "down_out": b * D, **ar_d}))
    else:
        st.append(_Stage("mlp", {"x_in": b * D, "x_attn": b * D, "norm2": b * D, "fc1_out": b * _sh(I, tp),
                                 "act_out": b * _sh(I, tp)}))
    return res, st


def _tower(spec: VisionSpec) -> Any:
    return vision_tower(spec.family)


def _projector_stage(spec: VisionSpec, b: int, tp: int, patches_per_out: float) -> _Stage:
    """The merger / projector after the last layer, bytes per patch (the family's own, else one linear)."""
    tower = _tower(spec)
    if tower is not None and tower.encoder_projector is not None:
        name, per_patch = tower.encoder_projector(spec, b, tp, patches_per_out)
        return _Stage(name, per_patch)
    D = spec.hidden_size
    out = spec.out_hidden_size or D
    return _Stage("projector", {"x": b * D, "projector_in": b * D, "projector_out": b * out / patches_per_out})


def _eager_score_bytes(spec: VisionSpec, b: int, seq: int) -> int:
    """transformers eager_attention_forward, one sequence: the scaled scores (model dtype) while
    ``softmax(.., dtype=float32)`` converts them to a float32 copy and writes a float32 result
    (ATen ``softmax`` converts first unless the input is CUDA half): ``(b + 2*4) * heads * seq^2``."""
    return (b + 2 * _F32) * spec.num_heads * seq * seq


# --------------------------------------------------------------------------- public


def encoder_peak(spec: VisionSpec, num_items: int, patches_per_item: int, *, dtype_bytes: int = 2,
                 attn_impl: str = "vllm_flash", tp: int = 1, mm_encoder_tp_mode: str = "weights",
                 attn_seq_lens: Sequence[int] | None = None, tokens_per_item: int | None = None,
                 include_pixels: bool = True, include_outputs: bool = True) -> EncoderPeak:
    """Activation peak of one ``embed_multimodal`` call on N items of T patches each, on one rank.

    ``patches_per_item`` counts tower positions before any merge (Qwen: ``grid_t*grid_h*grid_w``;
    tiled towers: crops x positions per crop). ``attn_seq_lens`` (one item's attention
    sequences) only matters for ``hf_eager``; default: one sequence of all patches.
    ``tokens_per_item`` defaults to ``patches / merge^2`` (Qwen) or the spec's pooling.
    Under ``mm_encoder_tp_mode="data"`` (where supported) each rank encodes ``ceil(N/tp)``
    items with full weights and then all-gathers all N outputs.
    """
    args = (num_items, patches_per_item, dtype_bytes, attn_impl, tp, mm_encoder_tp_mode,
            tuple(attn_seq_lens) if attn_seq_lens is not None else None, tokens_per_item, include_pixels,
            include_outputs)
    return _encoder_peak(spec, *args)


# Memoised per spec object: a spec's ``extra`` (which the stages read) is left out of its hash and equality,
# so two specs that compare equal may still differ.
@by_identity(maxsize=1024)
def _encoder_peak(spec: VisionSpec, num_items: int, patches_per_item: int, dtype_bytes: int, attn_impl: str,
                  tp: int, mm_encoder_tp_mode: str, attn_seq_lens: tuple[int, ...] | None,
                  tokens_per_item: int | None, include_pixels: bool, include_outputs: bool) -> EncoderPeak:
    if attn_impl not in ATTN_IMPLS:
        raise FlagError(f"unknown attention implementation '{attn_impl}'", hint=f"Use one of {ATTN_IMPLS}.")
    qwen = spec.extra.get("arch") == "qwen_vit"
    if attn_impl.startswith("hf") and not qwen:
        raise UnsupportedError(f"the transformers path is modelled for the Qwen towers only, not {spec.family}",
                               hint="Use attn_impl='vllm_flash' or 'vllm_sdpa'.")
    if num_items < 0 or patches_per_item < 0:
        raise FlagError("negative item or patch count", hint="Pass counts >= 0.")
    b = dtype_bytes
    data = mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data and tp > 1
    tp_eff = 1 if (data or attn_impl.startswith("hf")) else tp
    local_items = math.ceil(num_items / tp) if data else num_items
    ar = tp_eff > 1
    T = local_items * patches_per_item
    merge2 = spec.spatial_merge_size ** 2
    embed_dim = int(spec.extra.get("embed_dim_per_token") or spec.out_hidden_size or spec.hidden_size)
    if tokens_per_item is None:
        tower = _tower(spec)
        if tower is not None and tower.encoder_tokens is not None:
            tokens_per_item = tower.encoder_tokens(spec, patches_per_item)
    if tokens_per_item is None:
        if spec.extra.get("tokens_per_tile") and spec.extra.get("seq_per_crop"):
            tokens_per_item = patches_per_item // spec.extra["seq_per_crop"] * spec.extra["tokens_per_tile"]
        else:
            tokens_per_item = patches_per_item // merge2
    patches_per_out = patches_per_item / tokens_per_item if tokens_per_item else 1.0
    pixel_per_patch = b * int(spec.extra.get("patch_input_dim") or 3 * spec.patch_size ** 2)
    pixel_bytes = num_items * patches_per_item * pixel_per_patch if include_pixels else 0
    # Pixel values of the whole batch live on every rank (the dummy batch / request inputs).
    output_bytes = num_items * tokens_per_item * embed_dim * b

    res, stages = (_qwen_stages if qwen else _vit_stages)(spec, attn_impl, b, tp_eff, ar)
    # Pixtral without xformers: a dense (sum T)^2 block-diagonal mask lives through the tower.
    extra_resident = 0
    if spec.extra.get("arch") == "pixtral":
        extra_resident = b * T * T
    seq_max = max(attn_seq_lens) if attn_seq_lens else patches_per_item
    window_seq = 0
    if spec.extra.get("window_size"):
        window_seq = (spec.extra["window_size"] // spec.patch_size) ** 2
    full_layers = set(spec.extra.get("fullatt_block_indexes") or ())
    ds_idx = list(spec.extra.get("deepstack_visual_indexes") or ())
    ds_per_patch = b * (spec.out_hidden_size or 0) / merge2
    pool = isinstance(spec.extra.get("vision_feature_layer"), (list, tuple))

    best_total, best_parts, best_stage = -1, (), ""
    all_stages: list[PeakPart] = []

    def consider(name: str, per_patch: Mapping[str, float], layer_res: Mapping[str, float], extra: int = 0,
                 extra_name: str = "") -> None:
        nonlocal best_total, best_parts, best_stage
        parts = []
        if pixel_bytes:
            parts.append(PeakPart(name="pixel_values", size_bytes=pixel_bytes, note="N x patches x C*t*p*p, model dtype"))
        for k, v in {**res, **layer_res}.items():
            if v:
                parts.append(PeakPart(name=f"resident.{k}", size_bytes=int(round(v * T))))
        if extra_resident:
            parts.append(PeakPart(name="resident.attention_mask", size_bytes=extra_resident,
                                  note="pixtral: dense block-diagonal mask (no xformers)"))
        for k, v in per_patch.items():
            if v:
                parts.append(PeakPart(name=f"{name}.{k}", size_bytes=int(round(v * T))))
        if extra:
            parts.append(PeakPart(name=f"{name}.{extra_name}", size_bytes=extra))
        total = sum(p.size_bytes for p in parts)
        all_stages.append(PeakPart(name=name, size_bytes=total))
        if total > best_total:
            best_total, best_parts, best_stage = total, tuple(parts), name

    # Embedding stage: pixel values -> patch embeddings (+ position embeddings being added).
    consider("patch_embed", {"patch_embeds": b * spec.hidden_size, "embeds_plus_pos": b * spec.hidden_size}, {})
    n_layers = spec.num_layers
    for i in range(n_layers):
        layer_res: dict[str, float] = {}
        n_ds = sum(1 for j in ds_idx if j < i)
        if n_ds:
            layer_res["deepstack_features"] = n_ds * ds_per_patch
        if pool:
            layer_res["hidden_states_pool"] = (i + 1) * b * spec.hidden_size
        for s in stages:
            extra, extra_name = 0, ""
            if s.name == "attn.scores":
                seq = seq_max if (not window_seq or i in full_layers) else window_seq
                seq = min(seq, T)
                # scores of the last sequence, with the earlier sequences' outputs already written
                extra = _eager_score_bytes(spec, b, seq) + b * spec.hidden_size * (T - seq)
                extra_name = "scores_and_earlier_chunk_outputs"
            consider(f"blocks.{i}.{s.name}", s.per_patch, layer_res, extra, extra_name)
        if i in ds_idx:
            consider(f"deepstack_merger.{ds_idx.index(i)}",
                     {"x": b * spec.hidden_size, "norm": b * spec.hidden_size, "fc1": b * spec.hidden_size / tp_eff,
                      "act": b * spec.hidden_size / tp_eff, "out": ds_per_patch}, layer_res)
    final_res: dict[str, float] = {}
    if ds_idx:
        final_res["deepstack_features"] = len(ds_idx) * ds_per_patch
    if pool:
        final_res["hidden_states_pool"] = (n_layers + 1) * b * spec.hidden_size
    consider(_projector_stage(spec, b, tp_eff, patches_per_out).name,
             _projector_stage(spec, b, tp_eff, patches_per_out).per_patch, final_res)
    if include_outputs:
        # The outputs exist at the end: Qwen3 concatenates merger + deepstack into one tensor.
        end = {"x": b * spec.hidden_size, "outputs": output_bytes / max(T, 1) if not data else 0}
        tower = _tower(spec)
        if tower is not None and "concat_outputs" in tower.encoder_traits and attn_impl.startswith("vllm"):
            end["merger_out_and_deepstack"] = (1 + len(ds_idx)) * ds_per_patch
        consider("outputs", end, {}, output_bytes if data else 0, "all_gathered_outputs" if data else "")

    peak = best_total
    held = (pixel_bytes + output_bytes) if include_outputs else pixel_bytes
    return EncoderPeak(peak_bytes=peak, held_bytes=held, parts=best_parts, peak_stage=best_stage,
                       stages=tuple(all_stages), num_items=num_items, patches_per_item=patches_per_item,
                       total_patches=num_items * patches_per_item, tokens_per_item=tokens_per_item,
                       output_bytes=output_bytes, pixel_bytes=pixel_bytes, attn_impl=attn_impl, dtype_bytes=b)



def profile_peak(spec: VisionSpec, profile: Any, *, dtype_bytes: int = 2, attn_impl: str = "vllm_flash", tp: int = 1,
                 mm_encoder_tp_mode: str = "weights") -> EncoderPeak | None:
    """The encoder peak of vLLM's profile run from a :class:`vramplan.model.mm_tokens.EncoderProfile`."""
    if profile is None or profile.item is None or profile.budget.num_items == 0:
        return None
    item = profile.item
    return encoder_peak(spec, profile.budget.num_items, item.num_patches, dtype_bytes=dtype_bytes,
                        attn_impl=attn_impl, tp=tp, mm_encoder_tp_mode=mm_encoder_tp_mode,
                        attn_seq_lens=item.attn_seq_lens, tokens_per_item=item.num_tokens)


def request_peak(spec: VisionSpec, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None, *,
                 image_width: int, image_height: int, images_per_request: int = 1, dtype_bytes: int = 2,
                 attn_impl: str = "vllm_flash", tp: int = 1, mm_encoder_tp_mode: str = "weights",
                 mm_processor_kwargs: Mapping[str, Any] | None = None,
                 version: tuple[int, ...] = (0, 26, 0), video_frames: int | None = None) -> RequestEncoderPeak:
    """Encoder peak and embedding bytes for a request with ``images_per_request`` images of one size,
    encoded in one call (vLLM batches a request's images into one ``embed_multimodal`` call when
    they fit the encoder budget). With ``video_frames``, the items are videos of that many frames."""
    from ..model.mm_tokens import image_item, video_item  # noqa: PLC0415

    if video_frames:
        item = video_item(spec.family, hf_config, preprocessor_config, image_width, image_height, video_frames,
                          mm_processor_kwargs=mm_processor_kwargs, version=version)
    else:
        item = image_item(spec.family, hf_config, preprocessor_config, image_width, image_height,
                          mm_processor_kwargs=mm_processor_kwargs, version=version)
    peak = encoder_peak(spec, images_per_request, item.num_patches, dtype_bytes=dtype_bytes, attn_impl=attn_impl,
                        tp=tp, mm_encoder_tp_mode=mm_encoder_tp_mode, attn_seq_lens=item.attn_seq_lens,
                        tokens_per_item=item.num_tokens)
    return RequestEncoderPeak(peak=peak, tokens_per_image=item.num_tokens, patches_per_image=item.num_patches,
                              embedding_bytes=peak.output_bytes, item=item)
