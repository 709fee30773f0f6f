"""The multimodal encoder's share of the profile run, as the chosen vLLM version runs it.

vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.profile_run (V1 runner): builds
the encoder budget (``MultiModalBudget``), picks the modality with the most tokens per item, runs
``embed_multimodal`` once on N dummy items of the maximum size and keeps the N outputs in the
encoder cache while the text dummy run and the sampler run. So the profile's torch peak is
``max(encoder peak, text peak + encoder outputs held)``. The V2 runner does not profile the
encoder before v0.27 (``EncoderRunner.profile_encoder_cache`` from v0.27); ``skip_mm_profiling``
and a limit of 0 for every modality skip it too. When it is skipped the KV cache is sized
without room for the encoder, and serving an image later can run out of memory.

Token counts and the budget: :mod:`vramplan.model.mm_tokens`; the encoder's activation peak:
:mod:`vramplan.estimate.encoder` (measured on an H100 with the transformers towers, see
``bench/vision/``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engines.vllm.flags import EngineArgs
from ..memo import by_identity
from ..model.description import ModelDescription
from ..model.quant import dtype_bytes
from ..engines.vllm.rules.engine import EngineConfig
from ..engines.vllm.rules.versions import RuleSet

__all__ = ["EncoderTerm", "encoder_profile_term"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderTerm:
    profiled: bool
    """False when this runner/version/flags skip the encoder profile."""
    peak_bytes: int
    """The encoder's own activation peak (one ``embed_multimodal`` call on N items)."""
    held_bytes: int
    """Pixels and encoder outputs still allocated while the text profile runs."""
    label: str
    """e.g. ``2 image items of 16384 tokens``."""
    log_line: str | None
    basis: str
    warning: str | None = None

    @property
    def bytes(self) -> int:  # the planner's generic "term" interface
        return self.peak_bytes


@by_identity(maxsize=1024)
def _plain_profile(model: ModelDescription, max_num_batched_tokens: int, max_num_seqs: int, max_model_len: int,
                   enable_chunked_prefill: bool, version: tuple[int, int, int]):
    """``encoder_profile`` with no --limit-mm-per-prompt and no --mm-processor-kwargs (pure: memoised)."""
    from ..model.mm_tokens import encoder_profile

    return encoder_profile(model.hf_config, model.preprocessor_config, max_num_batched_tokens=max_num_batched_tokens,
                           max_num_seqs=max_num_seqs, max_model_len=max_model_len,
                           enable_chunked_prefill=enable_chunked_prefill, version=version)


def encoder_profile_term(model: ModelDescription, args: EngineArgs, cfg: EngineConfig, rules: RuleSet) -> EncoderTerm | None:
    from ..model.mm_tokens import encoder_profile
    from .encoder import profile_peak

    if model.vision is None:
        return None
    try:
        version = cfg.version or rules.version
        if args.limit_mm_per_prompt is None and args.mm_processor_kwargs is None:
            # the common case: every input is the (never mutated) description or hashable, so the profile is
            # memoised on the description's identity (a sweep asks for it thousands of times)
            prof = _plain_profile(model, cfg.max_num_batched_tokens, cfg.max_num_seqs, cfg.max_model_len,
                                  cfg.enable_chunked_prefill, version)
        else:
            prof = encoder_profile(
                model.hf_config, model.preprocessor_config, max_num_batched_tokens=cfg.max_num_batched_tokens,
                max_num_seqs=cfg.max_num_seqs, max_model_len=cfg.max_model_len,
                limit_mm_per_prompt=args.limit_mm_per_prompt, mm_processor_kwargs=args.mm_processor_kwargs,
                enable_chunked_prefill=cfg.enable_chunked_prefill, version=version)
    except Exception:  # a family without token rules: say so rather than guess
        return EncoderTerm(profiled=False, peak_bytes=0, held_bytes=0, label="not modelled for this family",
                           log_line=None, basis="no token rules for this vision family")
    mode = args.mm_encoder_tp_mode or "weights"
    peak = profile_peak(model.vision, prof, dtype_bytes=int(dtype_bytes(cfg.model_dtype)), attn_impl="vllm_flash",
                        tp=cfg.tp, mm_encoder_tp_mode=mode)
    if peak is None:
        return EncoderTerm(profiled=False, peak_bytes=0, held_bytes=0, label="all modalities disabled",
                           log_line=prof.budget.log_line, basis="limit_mm_per_prompt disables every modality")
    b = prof.budget
    label = f"{b.num_items} {b.modality} item{'s' if b.num_items != 1 else ''} of {b.tokens_per_item} tokens"
    runner_profiles = cfg.runner == "v1" or rules.v2_profiles_encoder
    if args.skip_mm_profiling or not runner_profiles:
        why = "--skip-mm-profiling" if args.skip_mm_profiling else (
            f"the V2 model runner of vLLM {'.'.join(map(str, cfg.version))} does not profile the encoder")
        return EncoderTerm(
            profiled=False, peak_bytes=int(peak.peak_bytes), held_bytes=int(peak.held_bytes), label=label,
            log_line=None, basis=why,
            warning=(f"{why}: the KV cache is sized without the encoder, which needs "
                     f"{peak.peak_bytes / 2**30:.2f} GiB at peak for {label}; serving such inputs can run out of "
                     f"memory unless --gpu-memory-utilization leaves that room"
                     + ("" if args.skip_mm_profiling else " (VLLM_USE_V2_MODEL_RUNNER=0 makes vLLM profile it)")))
    return EncoderTerm(profiled=True, peak_bytes=int(peak.peak_bytes), held_bytes=int(peak.held_bytes), label=label,
                       log_line=b.log_line,
                       basis="encoder budget (vllm MultiModalBudget) and the vision tower's live tensors "
                             "(bench/vision: within 3% of H100 measurements)")
