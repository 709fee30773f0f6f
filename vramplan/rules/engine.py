"""Resolve the user's flags into the engine configuration vLLM would run with.

Every default here is vLLM's own for the chosen version and platform (which model runner,
max_num_batched_tokens, max_num_seqs, block size, CUDA-graph sizes, dtypes, max_model_len),
each function citing where vLLM decides it. The result is a frozen :class:`EngineConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidConfig
from ..inputs.devices import Device
from ..inputs.flags import EngineArgs
from ..model.description import LayerKind, ModelDescription, QuantSpec
from ..model.quant import parse_quant
from ..units import GiB
from . import defaults as d
from .versions import RuleSet

__all__ = ["EngineConfig", "resolve_engine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """The configuration vLLM runs with after applying its defaults (all resolved, no None)."""

    tp: int
    pp: int
    dp: int
    expert_parallel: bool
    max_model_len: int
    """After defaults; with ``auto`` this is the model's limit and ``auto_max_model_len`` is set."""
    auto_max_model_len: bool
    derived_max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    model_dtype: str
    kv_cache_dtype: str
    quant: QuantSpec | None
    block_size: int
    block_size_reason: str
    enforce_eager: bool
    cudagraph_mode: str
    capture_sizes: tuple[int, ...]
    runner: str
    """``v1`` or ``v2`` (vLLM's model runner)."""
    estimate_cudagraphs: bool
    """Whether the CUDA-graph estimate is subtracted from the KV budget."""
    async_scheduling: bool
    max_concurrent_batches: int
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    disable_hybrid_kv_cache_manager: bool
    mamba_cache_mode: str
    kv_cache_memory_bytes: int | None
    num_gpu_blocks_override: int | None
    pp_partition: str | None
    platform: str
    notes: tuple[str, ...] = ()

    @property
    def max_in_flight_tokens(self) -> int:
        """vLLM v0.26.0 vllm/config/vllm.py:VllmConfig.max_in_flight_tokens."""
        return self.max_concurrent_batches * self.max_num_batched_tokens

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def resolve_engine(args: EngineArgs, model: ModelDescription, device: Device, rules: RuleSet) -> EngineConfig:
    """Apply vLLM's defaults and validations for ``rules``' version."""
    v = rules.version
    notes: list[str] = []
    tp, pp, dp = args.tensor_parallel_size, args.pipeline_parallel_size, args.data_parallel_size
    d.validate_parallel(v, num_attention_heads=model.num_attention_heads, num_kv_heads=model.num_kv_heads,
                        vocab_size=model.vocab_size, tp=tp, pp=pp, dp=dp, num_layers=model.num_hidden_layers)
    platform = device.platform
    model_dtype = d.resolve_dtype(v, None if args.dtype == "auto" else args.dtype, model.dtype, platform,
                                  device.compute_capability, model.text_model_type)
    qcfg = model.hf_config.get("quantization_config") or (model.hf_config.get("text_config") or {}).get("quantization_config")
    quant = parse_quant(qcfg, args.quantization)
    kv_dtype = args.kv_cache_dtype or "auto"
    if kv_dtype == "auto" and quant is not None and quant.kv_cache_dtype:
        kv_dtype = quant.kv_cache_dtype
    # max_model_len
    derived = d.derived_max_model_len(v, model.hf_config)
    auto = args.max_model_len == -1
    max_len = d.verify_max_model_len(v, None if auto else args.max_model_len, derived, dict(args.env))
    # runner
    runner = "v2" if d.uses_v2_model_runner(
        v, architecture=model.architecture, is_moe=model.is_moe, is_hybrid=model.is_hybrid,
        is_multimodal=model.is_multimodal, is_pooling=False, env=dict(args.env)) else "v1"
    # scheduler defaults
    chunked = True if args.enable_chunked_prefill is None else args.enable_chunked_prefill
    mns = args.max_num_seqs or d.default_max_num_seqs(
        v, usage_context=args.usage_context, device_total_bytes=device.total_bytes, device_name=device.label,
        platform=platform)
    mnbt = args.max_num_batched_tokens or d.default_max_num_batched_tokens(
        v, usage_context=args.usage_context, device_total_bytes=device.total_bytes, device_name=device.label,
        platform=platform, enable_chunked_prefill=chunked, max_model_len=max_len, max_num_seqs=mns,
        performance_mode=args.performance_mode)
    if args.max_num_seqs is None:
        mns = min(mns, mnbt)
    if not chunked and mnbt < max_len:
        raise InvalidConfig(
            f"max_num_batched_tokens ({mnbt}) is smaller than max_model_len ({max_len}). This effectively limits "
            "the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences. "
            "Please increase max_num_batched_tokens or decrease max_model_len.",
            hint="enable chunked prefill or raise --max-num-batched-tokens",
        )
    util = args.gpu_memory_utilization or d.default_gpu_memory_utilization(v, platform)
    hybrid_mamba = any(layer.kind is LayerKind.MAMBA for layer in model.layers)
    prefix = args.enable_prefix_caching if args.enable_prefix_caching is not None else not hybrid_mamba
    mamba_mode = args.mamba_cache_mode or ("align" if (hybrid_mamba and prefix) else "none")
    block_size, reason = d.default_block_size(
        v, platform, use_mla=model.uses_mla, compute_capability=device.compute_capability,
        user_block_size=args.block_size)
    eager = args.enforce_eager
    mode = "NONE" if eager else (args.cudagraph_mode or d.default_cudagraph_mode(v, runner=runner))
    if platform == "ascend" and not eager:
        notes.append("vllm-ascend captures ACL graphs after the KV cache; vramplan sizes them as CUDA graphs")
    sizes = () if mode == "NONE" else tuple(d.cudagraph_capture_sizes(
        v, max_num_seqs=mns, max_num_batched_tokens=mnbt, num_speculative_tokens=0, cudagraph_mode=mode,
        tp_size=tp, user_sizes=args.cudagraph_capture_sizes, max_capture_size=args.max_cudagraph_capture_size,
        compute_capability=device.compute_capability))
    estimate = d.estimate_cudagraphs_enabled(v, dict(args.env)) and mode != "NONE" and platform == "cuda"
    async_sched = True if args.async_scheduling is None else args.async_scheduling
    if async_sched:
        concurrent = pp + 1 if runner == "v2" else (2 if pp == 1 else pp)
    else:
        concurrent = pp
    return EngineConfig(
        tp=tp, pp=pp, dp=dp, expert_parallel=args.enable_expert_parallel,
        max_model_len=max_len, auto_max_model_len=auto, derived_max_model_len=derived,
        max_num_seqs=mns, max_num_batched_tokens=mnbt, gpu_memory_utilization=util,
        model_dtype=model_dtype, kv_cache_dtype=kv_dtype, quant=quant,
        block_size=block_size, block_size_reason=reason, enforce_eager=eager,
        cudagraph_mode=mode, capture_sizes=sizes, runner=runner, estimate_cudagraphs=estimate,
        async_scheduling=async_sched, max_concurrent_batches=concurrent,
        enable_prefix_caching=prefix, enable_chunked_prefill=chunked,
        disable_hybrid_kv_cache_manager=args.disable_hybrid_kv_cache_manager,
        mamba_cache_mode=mamba_mode, kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        num_gpu_blocks_override=args.num_gpu_blocks_override,
        pp_partition=args.env_get("VLLM_PP_LAYER_PARTITION"), platform=platform, notes=tuple(notes),
    )


_ = GiB  # (kept for callers that format sizes in errors)
