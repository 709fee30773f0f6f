"""vLLM's version-dependent engine defaults and config-time validations, as pure functions.

Every function takes plain values and the :class:`~vramplan.engines.vllm.rules.versions.RuleSet` of the release (its
``version`` argument; a bare tuple such as ``(0, 26, 0)`` is looked up with ``for_version``). What changed
between releases is read from the rule set's named switches, never from the version number.

The rules were read in the wheels of v0.19.0, v0.26.0 and v0.33.0; where a rule changed between two of those,
the intermediate wheels (0.19.1 ... 0.32.0) were read too, so the switch points (the rule files
``rules/v0_NN.py``) are exact releases, not guesses (docs/vllm-rules.md gives the evidence).

Platforms are named ``cuda``, ``rocm``, ``ascend`` (vllm-ascend, NPU), ``tpu``, ``cpu``, ``xpu``.
Usage contexts: ``llm`` (the ``LLM`` class), ``serve`` (``vllm serve``, the OpenAI server) and
anything else (``engine``: AsyncLLMEngine/LLMEngine built by hand, which gets the fallbacks).

Errors that vLLM raises at config time are raised here as :class:`vramplan.errors.InvalidConfig` (a FlagError)
whose message is vLLM's own text, so a plan can quote it.
"""

from __future__ import annotations

import bisect

import math
from collections.abc import Mapping, Sequence

from ....errors import InvalidConfig, UnsupportedError
from ....units import GiB, cdiv, format_gib, round_up
from .versions import RuleSet, for_version

__all__ = [
    "Version",
    "default_batch_limits",
    "default_max_num_batched_tokens",
    "default_max_num_seqs",
    "validate_scheduler",
    "default_gpu_memory_utilization",
    "default_block_size",
    "hybrid_attention_block_size",
    "default_cudagraph_mode",
    "cudagraph_capture_sizes",
    "cudagraph_graph_counts",
    "estimate_cudagraphs_enabled",
    "cudagraph_estimate_runs",
    "uses_v2_model_runner",
    "default_enable_prefix_caching",
    "default_mamba_cache_mode",
    "derived_max_model_len_and_key",
    "derived_max_model_len",
    "default_max_model_len",
    "verify_max_model_len",
    "validate_parallel",
    "pp_layer_split",
    "resolve_dtype",
    "valid_kv_cache_dtypes",
    "resolve_kv_cache_dtype",
    "kv_cache_dtype_bytes",
    "max_concurrent_batches",
    "sliding_window_blocks_per_request",
    "chunked_local_blocks_per_request",
    "mamba_blocks_per_request",
    "gated_delta_net_state_shapes",
    "kv_cache_capacity",
    "no_kv_cache_memory_message",
    "not_enough_kv_cache_message",
    "vocab_padded",
]

Version = tuple[int, int, int]

def _at_least(version: Sequence[int], since: Version) -> bool:
    """True when ``version`` is ``since`` or newer. Used only for the few checks that are not vLLM change
    points of a rule set (tests/unit/test_version_mechanism.py lists them with their reasons)."""
    return tuple(version[:3]) >= since


def _rules(rules: RuleSet | Sequence[int]) -> RuleSet:
    """The rule set whose switches a function reads: ``rules`` itself, or, for a bare release tuple (the unit
    tests' shorthand), the rule set :func:`~vramplan.engines.vllm.rules.versions.for_version` picks for it."""
    if isinstance(rules, RuleSet):
        return rules
    return for_version(tuple(rules[:3]), allow_older=True)


def _release(rules: RuleSet | Sequence[int]) -> Version:
    """The release asked for, for the checks that stay keyed by release (see :func:`_at_least`)."""
    if isinstance(rules, RuleSet):
        return rules.requested if rules.requested != (0, 0, 0) else rules.version
    return tuple(rules[:3])  # type: ignore[return-value]


def _norm_platform(platform: str) -> str:
    p = platform.strip().lower()
    aliases = {"npu": "ascend", "vllm-ascend": "ascend", "hip": "rocm", "gpu": "cuda", "nvidia": "cuda", "amd": "rocm"}
    p = aliases.get(p, p)
    if p not in {"cuda", "rocm", "ascend", "tpu", "cpu", "xpu"}:
        raise UnsupportedError(f"unknown platform {platform!r}", hint="use cuda, rocm, ascend, tpu, cpu or xpu")
    return p


def _env_int_flag(env: Mapping[str, str], name: str, default: str) -> bool:
    """vLLM envs parse these with ``bool(int(os.getenv(name, default)))``; ``"true"`` is an error there."""
    raw = env.get(name, default)
    try:
        return bool(int(raw))
    except ValueError:
        raise InvalidConfig(
            f"invalid literal for int() with base 10: {raw!r}",
            hint=f"{name} takes 0 or 1 (vLLM parses it with int())",
        ) from None


# ---------------------------------------------------------------------------------------------
# 1. max_num_batched_tokens / max_num_seqs
# ---------------------------------------------------------------------------------------------

_DEFAULT_MNBT = 2048  # vLLM SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS (all three versions)
_DEFAULT_MNS = 128  # vLLM SchedulerConfig.DEFAULT_MAX_NUM_SEQS (all three versions)
_BATCHED_DP_MNBT = 256  # vLLM v0.20.0+ SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS_FOR_BATCHED_DP


def _batch_table(
    version: Version,
    *,
    platform: str,
    device_total_bytes: int,
    device_name: str,
    device_capability: tuple[int, int] | None,
    world_size: int,
    tpu_chip: str | None,
) -> tuple[dict[str, int], dict[str, int]]:
    # vLLM v0.19.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults
    # vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults (same tiers as v0.19)
    # vLLM v0.33.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults (>=160 GiB tier, GB10 kept small)
    if platform == "ascend":
        # vllm-ascend 0.23.0 vllm_ascend/platform.py:NPUPlatform.get_device_total_memory raises
        # NotImplementedError; get_batch_defaults catches it and uses memory 0 -> small tier.
        device_total_bytes, device_name = 0, ""
    name = device_name.lower()
    is_gb10 = _rules(version).gb10_small_batch_tier and device_capability == (12, 1)
    if _rules(version).large_batch_tier and device_total_bytes >= 160 * GiB:
        mnbt = {"llm": 16384, "serve": 16384}
        mns = {"llm": 1024, "serve": 1024}
    elif device_total_bytes >= 70 * GiB and "a100" not in name and not is_gb10:
        mnbt = {"llm": 16384, "serve": 8192}
        mns = {"llm": 1024, "serve": 1024}
    else:
        mnbt = {"llm": 8192, "serve": 2048}
        mns = {"llm": 256, "serve": 256}
    if platform == "tpu":
        chip = (tpu_chip or "").upper()
        tpu = {"V6E": (2048, 1024), "V5E": (1024, 512), "V5P": (512, 256)}
        if chip in tpu:
            mnbt = {"llm": tpu[chip][0], "serve": tpu[chip][1]}
    if platform == "cpu":
        mnbt = {"llm": 4096 * world_size, "serve": 2048 * world_size}
        mns = {"llm": 256 * world_size, "serve": 128 * world_size}
    return mnbt, mns


def default_batch_limits(
    version: Version,
    *,
    usage_context: str,
    device_total_bytes: int,
    device_name: str,
    platform: str,
    enable_chunked_prefill: bool,
    max_model_len: int,
    max_num_batched_tokens: int | None = None,
    max_num_seqs: int | None = None,
    performance_mode: str = "balanced",
    world_size: int = 1,
    device_capability: tuple[int, int] | None = None,
    use_batched_dp_moe: bool = False,
    tpu_chip: str | None = None,
    mm_prefix_lm_min_tokens: int | None = None,
) -> tuple[int, int]:
    """Final ``(max_num_batched_tokens, max_num_seqs)`` after vLLM fills the unset ones.

    Mirrors ``EngineArgs._set_default_max_num_seqs_and_batched_tokens_args`` in every version:
    table value by usage context and device tier, x2 under ``--performance-mode throughput``,
    ``max(max_model_len, .)`` without chunked prefill, the prefix-LM multimodal floor (v0.22+),
    ``min(max_num_seqs * max_model_len, .)``, then ``max_num_seqs = min(max_num_seqs, mnbt)``.
    Values given by the user are kept as they are (only defaults are adjusted).
    ``world_size`` is pp x tp (only the CPU table uses it). ``use_batched_dp_moe`` is vLLM's
    ``ParallelConfig.use_batched_dp_moe`` (EP + DP>1 + deepep_low_latency/nixl_ep all2all).
    """
    # vLLM v0.19.0 / v0.26.0 / v0.33.0 vllm/engine/arg_utils.py:EngineArgs._set_default_max_num_seqs_and_batched_tokens_args
    p = _norm_platform(platform)
    mnbt_table, mns_table = _batch_table(
        version, platform=p, device_total_bytes=device_total_bytes, device_name=device_name,
        device_capability=device_capability, world_size=world_size, tpu_chip=tpu_chip,
    )
    ctx = usage_context.strip().lower()
    # UsageContext.API_SERVER / ENGINE_CONTEXT / ... are not in the tables and get the fallbacks
    ctx = {"llm_class": "llm", "openai_api_server": "serve", "vllm serve": "serve"}.get(ctx, ctx)

    user_mnbt, user_mns = max_num_batched_tokens, max_num_seqs
    if user_mnbt is None:
        if use_batched_dp_moe and _rules(version).batched_dp_moe_batch_default:
            mnbt = _BATCHED_DP_MNBT
        else:
            mnbt = mnbt_table.get(ctx, _DEFAULT_MNBT)
    else:
        mnbt = user_mnbt
    mns = mns_table.get(ctx, _DEFAULT_MNS) if user_mns is None else user_mns

    if performance_mode == "throughput":
        if user_mnbt is None:
            mnbt *= 2
        if user_mns is None:
            mns *= 2

    if user_mnbt is None:
        if not enable_chunked_prefill:
            mnbt = max(max_model_len, mnbt)
        # vLLM v0.22.0+ vllm/engine/arg_utils.py:EngineArgs._get_min_mm_batched_tokens (prefix-LM MM models)
        if (mm_prefix_lm_min_tokens is not None and _rules(version).mm_prefix_lm_min_batched_tokens
                and mm_prefix_lm_min_tokens > mnbt):
            mnbt = mm_prefix_lm_min_tokens
        mnbt = min(mns * max_model_len, mnbt)
    if user_mns is None:
        mns = min(mns, mnbt)
    return mnbt, mns


def default_max_num_batched_tokens(version: Version, **kwargs) -> int:
    """``max_num_batched_tokens`` vLLM ends up with; see :func:`default_batch_limits` for the keywords.

    ``vllm serve`` on an H100 80GB: 8192; A100 80GB and L4: 2048; vllm-ascend: 2048; MI300X: 8192
    (v0.19-v0.27), 16384 (v0.28+, >= 160 GiB tier).
    """
    return default_batch_limits(version, **kwargs)[0]


def default_max_num_seqs(version: Version, **kwargs) -> int:
    """``max_num_seqs`` vLLM ends up with (1024 on >= 70 GiB non-A100 GPUs, else 256; then <= mnbt)."""
    return default_batch_limits(version, **kwargs)[1]


def validate_scheduler(
    version: Version,
    *,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    max_model_len: int,
    enable_chunked_prefill: bool,
) -> None:
    """The two hard checks of ``SchedulerConfig.verify_max_model_len`` (same text in all three versions)."""
    # vLLM v0.19.0 / v0.26.0 / v0.33.0 vllm/config/scheduler.py:SchedulerConfig.verify_max_model_len
    if max_num_batched_tokens < max_model_len and not enable_chunked_prefill:
        raise InvalidConfig(
            f"max_num_batched_tokens ({max_num_batched_tokens}) is "
            f"smaller than max_model_len ({max_model_len}). "
            "This effectively limits the maximum sequence length to "
            "max_num_batched_tokens and makes vLLM reject longer "
            "sequences. Please increase max_num_batched_tokens or "
            "decrease max_model_len.",
            hint="raise --max-num-batched-tokens, lower --max-model-len, or enable chunked prefill",
        )
    if max_num_batched_tokens < max_num_seqs:
        raise InvalidConfig(
            f"max_num_batched_tokens ({max_num_batched_tokens}) must "
            "be greater than or equal to max_num_seqs "
            f"({max_num_seqs}).",
            hint="lower --max-num-seqs or raise --max-num-batched-tokens",
        )


# ---------------------------------------------------------------------------------------------
# 2. gpu_memory_utilization
# ---------------------------------------------------------------------------------------------


def default_gpu_memory_utilization(version: Version, platform: str = "cuda") -> float:
    """``CacheConfig.gpu_memory_utilization`` default: 0.9 up to v0.19.1, 0.92 from v0.20.0.

    The default lives in ``CacheConfig`` and no platform overrides it; vllm-ascend runs on the vLLM
    of its own version (vllm-ascend 0.23 on vLLM 0.23 -> 0.92), so pass that vLLM version.
    """
    _norm_platform(platform)
    # vLLM v0.19.0 vllm/config/cache.py:CacheConfig.gpu_memory_utilization Field(default=0.9)
    # vLLM v0.20.0 .. v0.33.0 vllm/config/cache.py:CacheConfig.gpu_memory_utilization Field(default=0.92)
    return _rules(version).default_gpu_memory_utilization


# ---------------------------------------------------------------------------------------------
# 3. block size
# ---------------------------------------------------------------------------------------------

# backend name -> smallest supported kernel block (what get_preferred_block_size(16) returns).
# vLLM v0.19.0/v0.26.0/v0.33.0 vllm/v1/attention/backend.py:AttentionBackend.get_preferred_block_size
_PREFERRED_BLOCK = {
    "FLASH_ATTN": 16,  # MultipleOf(16)
    "FLASHINFER": 16,  # [16, 32, 64]
    "TRITON_ATTN": 16,
    "FLEX_ATTENTION": 16,
    "TREE_ATTN": 16,
    "ROCM_ATTN": 16,
    "ROCM_AITER_FA": 16,  # [16, 32]
    "ROCM_AITER_UNIFIED_ATTN": 64,  # overrides get_preferred_block_size -> 64
    "TURBOQUANT": 16,
    "FLASHMLA": 64,
    "FLASHMLA_SPARSE": 64,
    "CUTLASS_MLA": 128,
    "FLASHINFER_MLA": 32,  # [32, 64]
    "FLASHINFER_MLA_SPARSE": 32,
    "TOKENSPEED_MLA": 32,
    "FLASH_ATTN_MLA": 16,
    "FLASH_ATTN_MLA_SPARSE": 64,
    "TRITON_MLA": 16,
    "ROCM_AITER_MLA": 16,  # [1] / MultipleOf(1): 16 % 1 == 0 keeps the default
    "ROCM_AITER_MLA_SPARSE": 16,
    "SPARSE_SWA": 256,  # DeepSeek-V4 sparse SWA overrides get_preferred_block_size -> 256
    "CPU_ATTN": 16,
    "HPC_ATTN": 64,
}


# vLLM v0.34.0 vllm/v1/attention/backends/*.py:get_supported_kernel_block_sizes, for a CacheConfig.DEFAULT_BLOCK_SIZE
# other than 16 (v0.34: 64). ``get_preferred_block_size(default)`` keeps the default when the backend supports it,
# else takes the smallest supported size (vllm/v1/attention/backend.py:AttentionBackend.get_preferred_block_size).
# ("m", n): any multiple of n; a tuple: exactly those sizes.
_SUPPORTED_BLOCKS: dict[str, tuple] = {
    "FLASH_ATTN": ("m", 16), "FLASHINFER": (16, 32, 64), "TRITON_ATTN": ("m", 16), "FLEX_ATTENTION": ("m", 16),
    "TURBOQUANT": (16, 32, 64, 128), "FLASHMLA": (64,), "FLASHMLA_SPARSE": ("m", 64), "CUTLASS_MLA": (128,),
    "FLASHINFER_MLA": (32, 64), "FLASHINFER_MLA_SPARSE": ("m", 32), "FLASH_ATTN_MLA": ("m", 16),
    "FLASH_ATTN_MLA_SPARSE": ("m", 64), "TRITON_MLA": ("m", 16), "ROCM_AITER_MLA": ("m", 1),
    "ROCM_AITER_MLA_SPARSE": ("m", 1), "ROCM_AITER_FA": (16, 32), "CPU_ATTN": ("m", 32), "TREE_ATTN": ("m", 16),
}
# backends whose get_preferred_block_size ignores the default (v0.34.0 rocm_attn.py: 16; rocm_aiter_unified_attn.py:
# 64; mla/sparse_swa.py: 256)
_FIXED_PREFERENCE = {"ROCM_ATTN": 16, "ROCM_AITER_UNIFIED_ATTN": 64, "SPARSE_SWA": 256, "HPC_ATTN": 64}


def _preferred_block(backend: str, default: int) -> int:
    """``AttentionBackend.get_preferred_block_size(default)`` for one backend."""
    if default == 16:
        return _PREFERRED_BLOCK[backend]
    if backend in _FIXED_PREFERENCE:
        return _FIXED_PREFERENCE[backend]
    sup = _SUPPORTED_BLOCKS.get(backend)
    if sup is None:
        return default
    if sup[0] == "m":
        return default if default % sup[1] == 0 else sup[1]
    return default if default in sup else min(sup)


def _default_backend(version: Version, platform: str, use_mla: bool, cc_major: int | None) -> str:
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/platforms/cuda.py:_get_backend_priorities (first valid wins) [I: validity]
    if platform == "cuda":
        major = 9 if cc_major is None else cc_major
        if use_mla:
            if major == 10:
                return "FLASHINFER_MLA"
            if major == 9:
                return "FLASH_ATTN_MLA"  # needs FA3 (flash_attn_supports_mla); FLASHMLA (64) is next
            return "TRITON_MLA"
        return "FLASHINFER" if major == 10 else "FLASH_ATTN"
    if platform == "rocm":
        # vLLM v0.19.0 vllm/platforms/rocm.py:_get_backend_priorities (VLLM_ROCM_USE_AITER off by default)
        return "TRITON_MLA" if use_mla else "ROCM_ATTN"
    if platform == "xpu":
        return "FLASH_ATTN"
    if platform == "cpu":
        return "CPU_ATTN"
    return "FLASH_ATTN"


def default_block_size(
    version: Version,
    platform: str,
    *,
    use_mla: bool = False,
    mla_backend: str | None = None,
    attention_backend: str | None = None,
    device_capability: tuple[int, int] | None = None,
    user_block_size: int | None = None,
    is_hybrid: bool = False,
    enable_prefix_caching: bool = True,
    enable_chunked_prefill: bool = True,
    model_type: str = "",
    head_size: int | None = None,
    kv_cache_dtype: str = "auto",
    default: int = 16,
) -> int:
    """``cache_config.block_size`` before hybrid (attention+mamba) alignment.

    ``default`` is ``CacheConfig.DEFAULT_BLOCK_SIZE`` of the release (the rule set's ``default_block_size``:
    16 until v0.33, 64 from v0.34), the size each backend's ``get_preferred_block_size`` starts from.

    CUDA/ROCm/XPU: 16 unless the first attention backend prefers a larger one
    (``Platform.update_block_size_for_backend``; logged as ``Setting kv cache block size to %d
    for %s backend.``, v0.33: ``... for %s backend(s).``). A user ``--block-size`` is kept.
    Ascend (vllm-ascend ``refresh_block_size``): 128 whenever prefix caching or chunked prefill is
    on, even over a user value (log ``Block size is set to 128 if prefix cache or chunked prefill
    is enabled.``); DeepSeek-V4 32; hybrid models are left to the mamba alignment.
    Hybrid models on CUDA: pass the result to :func:`hybrid_attention_block_size`.
    """
    p = _norm_platform(platform)
    if p == "ascend":
        # vllm-ascend 0.23.0 vllm_ascend/utils.py:refresh_block_size (called from check_and_update_config)
        bs = user_block_size if user_block_size is not None else default  # upstream CacheConfig.DEFAULT_BLOCK_SIZE
        if model_type == "deepseek_v4":
            return bs if bs in (32, 64, 128) else 32
        if is_hybrid:
            return bs
        if bs != 128 and (enable_prefix_caching or enable_chunked_prefill):
            return 128
        return bs
    if p == "tpu":
        raise UnsupportedError("TPU block sizes are set by tpu-inference, not modelled", hint="pass --block-size")
    if user_block_size is not None:
        return user_block_size
    if is_hybrid and not _rules(version).hybrid_block_from_backend:
        # vLLM v0.19.0 vllm/platforms/interface.py:Platform.update_block_size_for_backend: hybrid -> DEFAULT (16)
        return default
    cc_major = device_capability[0] if device_capability else None
    backend = (attention_backend or mla_backend or "").upper() or _default_backend(version, p, use_mla, cc_major)
    if backend == "FLASH_ATTN_MLA" and not (attention_backend or mla_backend) and \
            kv_cache_dtype not in ("auto", "float16", "bfloat16"):
        # vLLM v0.19.0 .. v0.34.0 vllm/v1/attention/backends/mla/flashattn_mla.py:FlashAttnMLABackend
        # .supported_kv_cache_dtypes is bf16/fp16 only, so an fp8 MLA cache on SM90 falls to the next priority,
        # FLASHMLA (vllm/platforms/cuda.py:_get_backend_priorities), whose kernel block is 64
        backend = "FLASHMLA"
    if backend == "FLASH_ATTN":
        if p == "xpu" and _rules(version).flash_attn_xpu_block_64:
            # vLLM v0.26.0 vllm/v1/attention/backends/flash_attn.py:FlashAttentionBackend.get_preferred_block_size
            return max(default, 64)
        if (
            _rules(version).fa4_head256_block and cc_major in (10, 11) and head_size == 256
        ):  # [I] assumes FA4 is the FA version picked (no softcap/sinks/quantized KV)
            # vLLM v0.33.0 vllm/v1/attention/backends/flash_attn.py:_get_fa4_hd256_block_size (FA4_HD256_PAGE_SIZE)
            return max(default, 128)
        return _preferred_block(backend, default)
    if backend not in _PREFERRED_BLOCK:
        raise UnsupportedError(f"unknown attention backend {backend!r}", hint="pass --block-size explicitly")
    return _preferred_block(backend, default)


def hybrid_attention_block_size(
    version: Version,
    *,
    block_size: int,
    attn_page_bytes_per_token: int,
    mamba_page_bytes: int,
    kernel_block_alignment: int = 16,
    use_mla: bool = False,
    use_cutlass_mla: bool = False,
    mamba_cache_mode: str = "none",
    mamba_chunk_size: int | None = None,
    user_mamba_block_size: int | None = None,
    prefill_checkpoint_alignment: int | None = None,
    platform: str = "cuda",
    ssm_page_bytes: int | None = None,
    conv_page_bytes: int | None = None,
    attn_k_bytes_per_token: int | None = None,
) -> tuple[int, int | None]:
    """``(block_size, mamba_page_size_padded)`` after the attention/mamba page alignment.

    ``attn_page_bytes_per_token`` is the full-attention page for one token (K+V, all KV heads of
    the rank); ``mamba_page_bytes`` the mamba state bytes of one layer (conv + ssm). The attention
    block becomes ``align * cdiv(mamba_page, align * attn_page_per_token)`` if that is larger, and
    the mamba page is padded to ``block_size * attn_page_per_token``. With mode ``all`` (v0.19 to
    v0.31) it is a multiple of ``lcm(mamba_chunk_size, align)`` instead.
    v0.19: alignment 16 (MLA: 64, CUTLASS MLA 128), from ``HybridAttentionMambaModelConfig``.
    v0.26: alignment ``max(min kernel block, block_size)``, from ``Platform._align_hybrid_block_size``.
    v0.33: also x lcm with the GDN prefill-checkpoint alignment in ``align`` mode (64 with the
    FlashInfer GDN prefill, i.e. Hopper) and MLA hybrids >= 128.
    Ascend before 0.14: attention block = 128 * cdiv(mamba_page, 128 * attn_page_per_token), mamba page padded.
    Ascend: attention block = 128 * cdiv(ssm_page, 128 * K-bytes-per-token) (must divide exactly)
    and the mamba page becomes attention page + conv page (needs ``ssm_page_bytes``,
    ``conv_page_bytes`` and ``attn_k_bytes_per_token``).
    """
    p = _norm_platform(platform)
    if mamba_page_bytes == 0:
        return block_size, None
    # vllm-ascend's own patch, keyed by the vllm-ascend release (which follows vLLM's numbering), not a vLLM rule
    if p == "ascend" and not _at_least(_release(version), (0, 14, 0)):
        # vllm-ascend 0.12.0rc1 / 0.13.0 vllm_ascend/patch/platform/patch_mamba_config.py:verify_and_update_config:
        # a multiple of 128 tokens whose K+V page holds the whole mamba state, the mamba page padded to it
        attn_block = 128 * cdiv(mamba_page_bytes, 128 * attn_page_bytes_per_token)
        bs = attn_block if block_size < attn_block else block_size
        return bs, bs * attn_page_bytes_per_token
    if p == "ascend":
        # vllm-ascend 0.23.0 vllm_ascend/patch/platform/patch_mamba_config.py:verify_and_update_config
        if ssm_page_bytes is None or conv_page_bytes is None or attn_k_bytes_per_token is None:
            raise UnsupportedError(
                "the Ascend hybrid alignment needs ssm_page_bytes, conv_page_bytes and attn_k_bytes_per_token",
                hint="pass the three byte counts",
            )
        attn_block = 128 * cdiv(ssm_page_bytes, 128 * attn_k_bytes_per_token)
        if attn_k_bytes_per_token * attn_block != ssm_page_bytes:
            raise InvalidConfig("Cannot align ssm_page_size and attn_page_size.", hint="vllm-ascend asserts this")
        bs = attn_block if block_size < attn_block else block_size
        return bs, bs * attn_page_bytes_per_token + conv_page_bytes

    if not _rules(version).hybrid_align_kernel_block:
        # vLLM v0.19.0 vllm/model_executor/models/config.py:HybridAttentionMambaModelConfig.verify_and_update_config
        align = (128 if use_cutlass_mla else 64) if use_mla else 16
    else:
        # vLLM v0.26.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size
        align = max(kernel_block_alignment, block_size)
        if _rules(version).hybrid_mla_align_128 and use_mla:
            # vLLM v0.33.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size (TRTLLM/FlashInfer MLA)
            align = max(align, 128)
    mode_all_exists = not _rules(version).mamba_cache_mode_all_removed
    if mamba_cache_mode == "all" and mode_all_exists:
        base_chunk = user_mamba_block_size or mamba_chunk_size
        if base_chunk is None:
            raise UnsupportedError("mamba_cache_mode 'all' needs the model's mamba chunk size")
        chunk = math.lcm(base_chunk, align)
        attn_block = chunk * cdiv(cdiv(mamba_page_bytes, attn_page_bytes_per_token), chunk)
    else:
        if _rules(version).prefill_checkpoint_blocks and mamba_cache_mode == "align" and prefill_checkpoint_alignment:
            # vLLM v0.33.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size (prefill checkpoints)
            align = math.lcm(align, prefill_checkpoint_alignment)
        attn_block = align * cdiv(mamba_page_bytes, align * attn_page_bytes_per_token)
    bs = attn_block if block_size < attn_block else block_size
    attn_page = bs * attn_page_bytes_per_token
    return bs, (None if attn_page == mamba_page_bytes else attn_page)


# ---------------------------------------------------------------------------------------------
# 4. CUDA graphs
# ---------------------------------------------------------------------------------------------

_CG_MODES = ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")
_CG_SUPPORT = ("NEVER", "UNIFORM_SINGLE_TOKEN_DECODE", "UNIFORM_BATCH", "ALWAYS")


def _mixed(mode: str) -> str:
    return {"FULL_AND_PIECEWISE": "PIECEWISE", "FULL_DECODE_ONLY": "NONE"}.get(mode, mode)


def _decode(mode: str) -> str:
    return {"FULL_AND_PIECEWISE": "FULL", "FULL_DECODE_ONLY": "FULL"}.get(mode, mode)


def default_cudagraph_mode(
    version: Version,
    *,
    enforce_eager: bool = False,
    optimization_level: int = 2,
    is_pooling: bool = False,
    is_encoder_decoder: bool = False,
    platform: str = "cuda",
    attention_cg_support: str = "ALWAYS",
    num_speculative_tokens: int = 0,
    requested: str | None = None,
) -> str:
    """The cudagraph mode the runner captures with.

    Config level (``VllmConfig.__post_init__``, all versions): O2 (the default) and O3 request
    ``FULL_AND_PIECEWISE``, O1 ``PIECEWISE``, O0 ``NONE``; ``--enforce-eager`` gives ``NONE``;
    pooling models with full graphs go to ``PIECEWISE``; encoder-decoder to ``FULL_DECODE_ONLY``
    (Ascend: ``PIECEWISE``). Runner level (``CompilationConfig.resolve_cudagraph_mode_and_sizes``):
    backends with ``NEVER`` drop FULL to ``PIECEWISE``; spec decode with a backend below
    ``UNIFORM_BATCH`` drops FULL to ``PIECEWISE``; a FULL mixed mode with less than ``ALWAYS``
    becomes ``FULL_AND_PIECEWISE``. TPU/CPU: ``NONE``.
    """
    p = _norm_platform(platform)
    if p in ("tpu", "cpu"):
        return "NONE"
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/vllm.py:OPTIMIZATION_LEVEL_0x["compilation_config"]["cudagraph_mode"]
    mode = requested.upper() if requested else {0: "NONE", 1: "PIECEWISE"}.get(optimization_level, "FULL_AND_PIECEWISE")
    if mode not in _CG_MODES:
        raise InvalidConfig(f"unknown cudagraph_mode {requested!r}", hint="use one of " + ", ".join(_CG_MODES))
    if enforce_eager:
        # vLLM vllm/config/vllm.py:VllmConfig.__post_init__ ("Cudagraph is disabled under eager mode")
        return "NONE"
    if mode != "NONE" and "FULL" in mode and is_pooling:
        mode = "PIECEWISE"
    elif is_encoder_decoder and mode not in ("NONE", "FULL_DECODE_ONLY"):
        mode = "PIECEWISE" if p == "ascend" else "FULL_DECODE_ONLY"
    if mode == "NONE":
        return mode
    support = attention_cg_support.upper()
    if support not in _CG_SUPPORT:
        raise InvalidConfig(f"unknown attention cudagraph support {attention_cg_support!r}")
    rank = _CG_SUPPORT.index(support)
    # vLLM v0.26.0 vllm/config/compilation.py:CompilationConfig.resolve_cudagraph_mode_and_sizes
    if _mixed(mode) == "FULL" and support != "ALWAYS":
        if support == "NEVER":
            raise InvalidConfig(
                f"CUDAGraphMode.{mode} is not supported with this backend (support: AttentionCGSupport.NEVER); "
                "please try cudagraph_mode=PIECEWISE, and make sure compilation mode is VLLM_COMPILE"
            )
        mode = "FULL_AND_PIECEWISE"
    if _decode(mode) == "FULL" and support == "NEVER":
        mode = "PIECEWISE"
    if _decode(mode) == "FULL" and num_speculative_tokens > 0 and rank < _CG_SUPPORT.index("UNIFORM_BATCH"):
        mode = "PIECEWISE"
    return mode


def cudagraph_capture_sizes(
    version: Version,
    *,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    num_speculative_tokens: int = 0,
    cudagraph_mode: str = "FULL_AND_PIECEWISE",
    tp_size: int = 1,
    enable_sp: bool = False,
    performance_mode: str = "balanced",
    enforce_eager: bool = False,
    platform: str = "cuda",
    device_capability: tuple[int, int] | None = None,
    user_capture_sizes: Sequence[int] | None = None,
    user_max_capture_size: int | None = None,
    runner: str = "v1",
) -> list[int]:
    """``compilation_config.cudagraph_capture_sizes`` as the model runner captures them.

    ``VllmConfig._set_cudagraph_sizes``: ``max = min(max_num_seqs * (1 + k) * 2, 512)``
    (v0.28+: 1024 on the sm100 family; Ascend: no x2), then ``min(mnbt, max)``; sizes
    ``[1, 2, 4]`` + ``range(8, min(max+1, 256), 8)`` + ``range(256, max+1, 16)``
    (``interactivity``: 1..min(max, 32) instead of [1, 2, 4]); v0.21+ appends mnbt when
    ``mnbt <= max``; v0.29+ appends the uniform-decode sizes (``max_num_seqs`` when k = 0).
    TP>1 with sequence parallelism keeps multiples of tp (until v0.31). With FULL decode graphs
    and spec decode the sizes are rounded up to multiples of 1+k
    (``adjust_cudagraph_sizes_for_spec_decode``: v0.19 V1 runner only, v0.20-v0.24 any runner,
    v0.25+ not V2). Empty when the mode is ``NONE`` or eager.
    """
    p = _norm_platform(platform)
    if enforce_eager or cudagraph_mode.upper() == "NONE":
        return []
    q = 1 + num_speculative_tokens
    max_tokens = max_num_batched_tokens
    uniform_decode: list[int] = []
    if user_max_capture_size is not None:
        max_cap = user_max_capture_size
    elif user_capture_sizes is not None:
        max_cap = max(user_capture_sizes)
    elif p == "ascend":
        # vllm-ascend 0.23.0 vllm_ascend/platform.py:NPUPlatform._get_default_max_cudagraph_capture_size
        max_cap = min(max_num_seqs * q, 512)
    else:
        cap_major = device_capability[0] if device_capability else None
        default_max = 1024 if (_rules(version).sm100_capture_max_1024 and cap_major in (10, 11)) else 512
        # vLLM v0.19.0/v0.26.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes
        max_cap = min(max_num_seqs * q * 2, default_max)
        if _rules(version).uniform_decode_capture_sizes:
            # vLLM v0.33.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes (uniform_decode_sizes)
            if q > 1:
                reqs = min(max_num_seqs, default_max)
                counts = [n for n in (1, 2, 4) if n <= reqs]
                counts += list(range(8, min(reqs + 1, 256), 8))
                counts += list(range(256, reqs + 1, 16))
                counts = sorted(set(counts + [reqs]))
                uniform_decode = sorted({n * q for n in counts if n * q <= max_cap})
            elif max_num_seqs <= max_cap:
                uniform_decode = [max_num_seqs]
    max_cap = min(max_tokens, max_cap)
    if max_cap < 1:
        raise InvalidConfig("Maximum cudagraph size should be greater than or equal to 1 when using cuda graph.")

    if user_capture_sizes is not None:
        sizes = sorted({s for s in user_capture_sizes if s <= max_tokens})
    else:
        if performance_mode == "interactivity":
            sizes = list(range(1, min(max_cap, 32) + 1))
        else:
            sizes = [i for i in (1, 2, 4) if i <= max_cap]
        if max_cap >= 8:
            sizes += list(range(8, min(max_cap + 1, 256), 8))
        if max_cap >= 256:
            sizes += list(range(256, max_cap + 1, 16))
        if _rules(version).capture_max_num_tokens and max_tokens <= max_cap and max_tokens not in sizes:
            # vLLM v0.26.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes ("ensure max_num_tokens is captured")
            sizes.append(max_tokens)
        sizes += [s for s in uniform_decode if s <= max_tokens]
        sizes = sorted(set(sizes))

    if tp_size > 1 and enable_sp and not _rules(version).sp_capture_sizes_unchanged:
        # vLLM v0.26.0 vllm/config/vllm.py:VllmConfig.update_sizes_for_sequence_parallelism
        sizes = [s for s in sizes if s % tp_size == 0]

    mode = cudagraph_mode.upper()
    # v0.19: V1 runner only, separate decode routine only; v0.20-v0.24: any runner; v0.25+: not V2
    rounds = runner == "v1" or not _rules(version).decode_rounds_skip_v2
    if rounds and _decode(mode) == "FULL" and q > 1:
        v019 = not _rules(version).spec_decode_rounding_any_runner
        if (not v019 or mode in ("FULL_AND_PIECEWISE", "FULL_DECODE_ONLY")) and not (v019 and runner != "v1"):
            # vLLM v0.26.0 vllm/config/compilation.py:CompilationConfig.adjust_cudagraph_sizes_for_spec_decode
            multiple = q
            if tp_size > 1 and enable_sp and not _rules(version).sp_capture_sizes_unchanged:
                multiple = max(q, tp_size)
            top = sizes[-1] if sizes else 0
            rounded = sorted({round_up(s, multiple) for s in sizes if round_up(s, multiple) <= top})
            if not rounded and multiple <= top:
                rounded = [multiple]
            if not rounded:
                raise InvalidConfig(
                    f"No valid cudagraph sizes after rounding to multiple of {multiple} "
                    f"(num_speculative_tokens + 1 or tp if sequence parallelism is enabled)"
                    f" please adjust num_speculative_tokens ({q - 1}"
                    f") or max_cudagraph_capture_size ({top})"
                )
            sizes = rounded
    return sizes


def _walk_grid(limit: int, step) -> list[int]:
    """vLLM v0.34.0 vllm/config/compilation.py:_walk_grid: sizes 1 .. limit, each the next multiple of the largest
    power of two not above ``step(size)``."""
    grid, size = [], 1
    while size < limit:
        grid.append(size)
        stride = 1 << max(0, math.floor(math.log2(max(1.0, step(size)))))
        size = (size // stride + 1) * stride
    return [*grid, limit] if limit else []


def prefill_cudagraph_capture_grid(max_tokens: int, dense_head: bool = False) -> list[int]:
    """vLLM v0.34.0 vllm/config/compilation.py:prefill_cudagraph_capture_grid (54 sizes at 8192)."""
    grid = _walk_grid(max_tokens, lambda t: min(t, max(8, t / 4), 0.07 * max(t, 4096)))
    if dense_head:
        grid = sorted({*grid, *(t for t in range(1, 33) if t < max_tokens)})
    return grid


def decode_cudagraph_capture_grid(max_requests: int) -> list[int]:
    """vLLM v0.34.0 vllm/config/compilation.py:decode_cudagraph_capture_grid (64 sizes at 1024)."""
    return _walk_grid(max_requests, lambda n: 0.65 * n ** (2 / 3))


def split_cudagraph_capture_sizes(
    shared_sizes: Sequence[int],
    *,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    num_speculative_tokens: int = 0,
    device_capability: tuple[int, int] | None = None,
    legacy_sizes: bool = False,
    performance_mode: str = "balanced",
    prefill_token_sizes: Sequence[int] | None = None,
    max_prefill_tokens: int | None = None,
    decode_request_sizes: Sequence[int] | None = None,
    max_decode_requests: int | None = None,
    max_decode_tokens: int | None = None,
) -> list[int]:
    """The token count of every captured graph, vLLM 0.34 (``VllmConfig._split_cudagraph_capture_sizes``).

    Prefill graphs take token sizes, decode graphs request sizes; each from its own knob, else (SM100 "wide
    defaults", when neither ``cudagraph_capture_sizes`` nor ``max_cudagraph_capture_size`` was set) the prefill
    grid up to ``min(8192, mnbt)`` and the decode grid up to ``max_num_seqs`` with decode graphs at most 8192
    tokens, else the shared (0.33) list for prefill and its request counts for decode. The result is
    ``prefill ∪ {n x q for each decode shape}`` (draft-model decode graphs are not modelled).
    """
    q = 1 + num_speculative_tokens
    wide = not legacy_sizes and device_capability is not None and device_capability[0] == 10
    if max_decode_tokens is None and wide:
        max_decode_tokens = 8192
    shared = sorted(set(shared_sizes))
    shared_max = shared[-1] if shared else 0

    def explicit(sizes: Sequence[int], limit: int, cap: int | None, name: str, cap_name: str) -> list[int]:
        kept = sorted({x for x in sizes if 1 <= x <= limit})
        if cap is not None and kept and kept[-1] > cap:
            raise InvalidConfig(f"{name} holds {kept[-1]}, above {cap_name}={cap}.")
        return kept

    if prefill_token_sizes is not None:
        prefill = explicit(prefill_token_sizes, max_num_batched_tokens, max_prefill_tokens,
                           "prefill_cudagraph_capture_token_sizes", "max_prefill_cudagraph_capture_tokens")
    elif max_prefill_tokens is not None or wide:
        prefill = prefill_cudagraph_capture_grid(min(8192 if max_prefill_tokens is None else max_prefill_tokens,
                                                     max_num_batched_tokens), performance_mode == "interactivity")
    else:
        prefill = list(shared)
    if decode_request_sizes is not None:
        decode = explicit(decode_request_sizes, max_num_seqs, max_decode_requests,
                          "decode_cudagraph_capture_request_sizes", "max_decode_cudagraph_capture_requests")
    elif max_decode_requests is not None or wide:
        decode = decode_cudagraph_capture_grid(max_num_seqs if max_decode_requests is None
                                               else min(max_decode_requests, max_num_seqs))
    else:
        decode = sorted({min(-(-x // q), max_num_seqs) for x in shared if -(-x // q) * q <= shared_max})
    decode_max_tokens = min(max_num_batched_tokens, max_decode_tokens or max_num_batched_tokens)
    # vLLM v0.34.0 vllm/config/compilation.py:decode_cudagraph_capture_shapes
    limit = min(max_num_seqs, decode_max_tokens // q)
    reachable = decode[: bisect.bisect_left(decode, limit) + 1]
    tokens = set(prefill)
    if limit >= 1:
        tokens.update(min(n, limit) * q for n in reachable)
    return sorted(tokens)


def cudagraph_graph_counts(
    capture_sizes: Sequence[int],
    *,
    cudagraph_mode: str,
    max_num_seqs: int,
    num_speculative_tokens: int = 0,
    num_lora_cases: int = 1,
) -> dict[str, int]:
    """Graphs per runtime mode, as ``CudagraphDispatcher.initialize_cudagraph_keys`` builds them.

    Mixed mode (``PIECEWISE`` in FULL_AND_PIECEWISE, or ``FULL``): one graph per capture size.
    Separate FULL decode graphs (FULL_AND_PIECEWISE, FULL_DECODE_ONLY): sizes ``s`` with
    ``1 + k <= s <= (1 + k) * max_num_seqs``. Each times the LoRA cases. Same in all versions.
    """
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/v1/cudagraph_dispatcher.py:CudagraphDispatcher.initialize_cudagraph_keys
    mode = cudagraph_mode.upper()
    q = 1 + num_speculative_tokens
    out: dict[str, int] = {}
    if mode == "NONE":
        return out
    mixed = _mixed(mode)
    if mixed != "NONE":
        out[mixed] = len(set(capture_sizes)) * num_lora_cases
    if _decode(mode) == "FULL" and mode in ("FULL_AND_PIECEWISE", "FULL_DECODE_ONLY"):
        n = len({s for s in capture_sizes if q <= s <= q * max_num_seqs})
        out["FULL"] = out.get("FULL", 0) + n * num_lora_cases
    return out


def estimate_cudagraphs_enabled(version: Version, env: Mapping[str, str]) -> bool:
    """Whether the graph estimate is *subtracted* from the KV budget.

    ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``: default ``"0"`` up to v0.19.1, ``"1"`` from v0.20.0
    (whose log line says "default since v0.21.0"). Parsed with ``bool(int(.))``.
    """
    # vLLM v0.19.0 vllm/envs.py ("0"); vLLM v0.20.0 .. v0.33.0 vllm/envs.py ("1")
    default = "1" if _rules(version).estimate_cudagraphs_default else "0"
    return _env_int_flag(env, "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", default)


def cudagraph_estimate_runs(
    version: Version,
    *,
    platform: str,
    runner: str,
    cudagraph_mode: str,
    enforce_eager: bool = False,
) -> bool:
    """Whether ``profile_cudagraph_memory`` is called and can return something non-zero.

    v0.19-v0.20: only when not eager and not ROCm. v0.21+: on CUDA and ROCm when the mode is not
    NONE (v0.33: XPU too). V2 runner: returns 0 until v0.28, measures from v0.29.
    vllm-ascend 0.23: never (the NPU worker does not call it).
    """
    p = _norm_platform(platform)
    if p in ("ascend", "tpu", "cpu"):
        return False
    if enforce_eager or cudagraph_mode.upper() == "NONE":
        return False
    if runner == "v2" and not _rules(version).v2_runner_estimates_graphs:
        # vLLM v0.19.0/v0.26.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.profile_cudagraph_memory returns 0
        return False
    if not _rules(version).graph_estimate_on_rocm:
        # vLLM v0.19.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (skip on ROCm)
        return p == "cuda"
    if p == "xpu":
        # vLLM v0.33.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (is_xpu added)
        return _rules(version).graph_estimate_on_xpu
    return p in ("cuda", "rocm")


# ---------------------------------------------------------------------------------------------
# 5. V1 vs V2 model runner
# ---------------------------------------------------------------------------------------------

# The automatic V2-runner architectures per release are RuleSet.v2_default_archs (rules/v0_22.py .. v0_28.py).


def uses_v2_model_runner(
    version: Version,
    *,
    architecture: str,
    is_moe: bool,
    is_hybrid: bool,
    is_multimodal: bool,
    is_pooling: bool,
    env: Mapping[str, str],
    is_quantized: bool = False,
    is_attention_free: bool = False,
    platform: str = "cuda",
    unsupported_features: Sequence[str] = (),
) -> bool:
    """Which GPU model runner ``vllm serve`` uses (``VllmConfig.use_v2_model_runner``).

    ``VLLM_USE_V2_MODEL_RUNNER=0/1`` forces it (v0.19-v0.21: unset means 0; v0.22+: unset means
    automatic). Automatic rule: v0.22 Qwen3 dense only; v0.23 Llama/Mistral/Qwen3 dense,
    unquantized; v0.24 a list incl. MoE; v0.25-v0.28 every generate model that is not hybrid,
    not attention-free, and dense or in a short MoE list; v0.29+ every model unless a feature is
    unsupported (v0.29-v0.31 kept DeepSeek-V3.2/V4 on V1 on ROCm). ``is_multimodal`` never
    matters. ``unsupported_features`` (e.g. ngram spec decode, sequence parallelism, prompt
    embeds, custom logits processors) sends a model back to V1. vllm-ascend 0.23: always V1.
    """
    del is_multimodal  # never consulted by vLLM's rule
    p = _norm_platform(platform)
    if p == "ascend":
        # vllm-ascend 0.23.0 vllm_ascend/worker/worker.py:NPUWorker.__init__ (V2 falls back to V1 on vLLM 0.23)
        return False
    if p in ("tpu", "cpu"):
        return False
    r = _rules(version)
    if not r.v2_runner_auto:
        # vLLM v0.19.0 vllm/envs.py: bool(int(os.getenv("VLLM_USE_V2_MODEL_RUNNER", "0")))
        return _env_int_flag(env, "VLLM_USE_V2_MODEL_RUNNER", "0")
    raw = env.get("VLLM_USE_V2_MODEL_RUNNER")
    if raw is not None:
        # vLLM v0.26.0 vllm/envs.py:maybe_convert_bool
        return _env_int_flag(env, "VLLM_USE_V2_MODEL_RUNNER", raw)
    if unsupported_features:
        return False
    if r.v2_runner_every_model:
        # vLLM v0.33.0 vllm/config/vllm.py:VllmConfig.use_v2_model_runner
        if p == "rocm" and not r.v2_runner_rocm_dsa:
            if architecture in ("DeepseekV32ForCausalLM", "DeepseekV4ForCausalLM"):
                return False
        return True
    # vLLM v0.26.0 vllm/config/vllm.py:VllmConfig._is_default_v2_model_runner_model
    if is_pooling:
        return False
    archs = r.v2_default_archs
    if r.v2_default_rule == "dense_unquantized":
        return architecture in archs and not is_moe and not is_quantized
    if r.v2_default_rule == "listed":
        return architecture in archs
    if is_hybrid or is_attention_free:
        return False
    return architecture in archs or not is_moe


def default_enable_prefix_caching(version: Version, *, is_hybrid: bool, is_pooling: bool = False,
                                  attn_type: str = "decoder") -> bool:
    """Prefix caching default for generative models.

    Hybrid (attention+mamba/GDN) models: off up to v0.27 (v0.19-v0.25 "not supported",
    v0.26-v0.27 supported but opt-in), on from v0.28. Attention-free and encoder-decoder: off.
    Pooling models depend on their pooling type (pass ``is_pooling`` to get False here).
    """
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/model.py:ModelConfig.is_prefix_caching_supported
    # vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs._set_default_chunked_prefill_and_prefix_caching_args
    if is_pooling or attn_type in ("attention_free", "encoder_decoder", "encoder_only"):
        return False
    if is_hybrid:
        return _rules(version).hybrid_prefix_caching_default
    return True


def default_mamba_cache_mode(version: Version, *, enable_prefix_caching: bool,
                             supports_mamba_prefix_caching: bool = False) -> str:
    """``cache_config.mamba_cache_mode`` after ``MambaModelConfig.verify_and_update_config``.

    Prefix caching off: ``none``. On: ``all`` if the model supports mamba prefix caching (up to
    v0.31), else ``align``; v0.32+ only ``align``.
    """
    # vLLM v0.19.0 vllm/model_executor/models/config.py:MambaModelConfig.verify_and_update_config
    # vLLM v0.33.0 vllm/model_executor/models/config.py:MambaModelConfig.verify_and_update_config
    if not enable_prefix_caching:
        return "none"
    if supports_mamba_prefix_caching and not _rules(version).mamba_cache_mode_all_removed:
        return "all"
    return "align"


# ---------------------------------------------------------------------------------------------
# 6. max_model_len
# ---------------------------------------------------------------------------------------------

_MAX_LEN_KEYS = (
    "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
    "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len",
)


def _rope_parameter_sets(cfg: Mapping) -> list[dict]:
    """RoPE dicts as vLLM sees them after ``patch_rope_parameters`` (one per layer type if nested).

    [I] a config with ``rope_theta`` and no scaling becomes ``{"rope_type": "default"}`` (as
    Transformers' ``standardize_rope_params`` does), so the factor 1.0 still applies.
    """
    rp = cfg.get("rope_parameters")
    if rp is None:
        rp = cfg.get("rope_scaling")
    if rp is None:
        # vLLM v0.19.0 vllm/transformers_utils/config.py:patch_rope_parameters (Transformers v4 branch)
        triggers = ("rope_theta", "rotary_emb_base", "partial_rotary_factor", "rotary_pct",
                    "rotary_emb_fraction", "original_max_position_embeddings")
        if any(cfg.get(k) is not None for k in triggers):
            rp = {"rope_type": "default"}
        else:
            return []
    if not isinstance(rp, Mapping) or not rp:
        return []
    nested = all(isinstance(v, Mapping) for v in rp.values())
    sets = [dict(v) for v in rp.values() if isinstance(v, Mapping) and v] if nested else [dict(rp)]
    for s in sets:
        # vLLM v0.26.0 vllm/transformers_utils/config.py:patch_legacy_rope_type
        if "rope_type" not in s and "type" in s:
            s["rope_type"] = s["type"]
        s.setdefault("rope_type", "default")
        if s["rope_type"] == "su":
            s["rope_type"] = "longrope"
        elif s["rope_type"] == "mrope":
            s["rope_type"] = "default"
    return sets


def dummy_sampler_path(version: Version, env: Mapping[str, str], *, sort_sampler: bool) -> str:
    """Which top-k/top-p path the profile run's dummy sampler takes: ``fitted`` (the Triton kernel of
    vLLM >= 0.17, what the activation fit measured), ``torch_sort`` or ``flashinfer``.

    vLLM 0.10.1-0.16.0 vllm/v1/sample/ops/topk_topp_sampler.py:TopKTopPSampler: FlashInfer when
    ``VLLM_USE_FLASHINFER_SAMPLER`` is 1 (unset: "if it imports"; the pip wheels do not bring it, so
    unset is taken as the PyTorch sort), else ``apply_top_k_top_p``'s sort. (vLLM 0.33's second, all-features
    pass of the V2 dummy sampler is a source-read term: RuleSet.sampler_fp32_warmup_pass.)
    """
    if not sort_sampler:
        return "fitted"
    return "flashinfer" if _env_int_flag(env, "VLLM_USE_FLASHINFER_SAMPLER", "0") else "torch_sort"


def supports_auto_max_model_len(version: Version, *, engine: str = "v1") -> bool:
    """``--max-model-len auto`` / ``-1``: vLLM 0.14.0 vllm/v1/core/kv_cache_utils.py:_auto_fit_max_model_len
    (absent from 0.13.0 and from the V0 engine)."""
    # a release inside the v0_10 span (0.10-0.16), which one rule set covers
    return engine == "v1" and _at_least(_release(version), (0, 14, 0))


def supports_kv_cache_memory_bytes(version: Version, *, engine: str = "v1") -> bool:
    """``--kv-cache-memory-bytes``: vLLM 0.11.0 vllm/engine/arg_utils.py:EngineArgs.kv_cache_memory_bytes
    (absent from 0.10.1 and from the V0 engine)."""
    # a release inside the v0_10 span (0.10-0.16) and the Ascend v0_9 span, which one rule set each covers
    return engine == "v1" and _at_least(_release(version), (0, 11, 0))


def derived_max_model_len_and_key(
    version: Version,
    hf_text_config: Mapping,
    *,
    disable_sliding_window: bool = False,
    tokenizer_model_max_length: int | None = None,
    encoder_max_seq_length: int | None = None,
) -> tuple[int | float | None, str | None]:
    """``(derived_max_model_len, max_len_key)`` as ``_get_and_verify_max_len`` computes them.

    Smallest of the keys max_position_embeddings, n_positions, max_seq_len, seq_length,
    model_max_length, max_target_positions, max_sequence_length, max_seq_length, seq_len; a
    truthy ``model_max_length`` then wins outright. ``--disable-sliding-window`` caps it at the
    window. Then the RoPE factor multiplies it (not for su/longrope/llama3; v0.30+ not for
    yarn/deepseek_yarn/deepseek_llama_scaling either; not for Gemma 3). Up to v0.29 a ``yarn``
    entry first replaces it by ``original_max_position_embeddings``. The value is a float
    whenever a RoPE factor applied (vLLM prints it that way). ``(None, None)`` if no key exists.
    """
    # vLLM v0.26.0 vllm/transformers_utils/model_arch_config_convertor.py:ModelArchConfigConvertorBase.derive_max_model_len_and_key
    derived: float | int = float("inf")
    key: str | None = None
    for k in _MAX_LEN_KEYS:
        v = hf_text_config.get(k)
        if v is not None:
            if v < derived:
                key = k
            derived = min(derived, v)
    if tmp := hf_text_config.get("model_max_length"):
        key, derived = "model_max_length", tmp
    sliding_window = hf_text_config.get("sliding_window")
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/model.py:_get_and_verify_max_len
    if disable_sliding_window and sliding_window is not None and sliding_window < derived:
        key, derived = "sliding_window", sliding_window
    if tokenizer_model_max_length is not None:
        derived = min(derived, tokenizer_model_max_length)
    if derived == float("inf"):
        return None, None
    model_type = str(hf_text_config.get("model_type", ""))
    sets = _rope_parameter_sets(hf_text_config)
    if sets and "gemma3" not in model_type:
        new_rule = _rules(version).rope_scaling_factor_not_applied
        no_factor = {"su", "longrope", "llama3"}
        if new_rule:
            no_factor |= {"yarn", "deepseek_yarn", "deepseek_llama_scaling"}
        scaling_factor: float | None = 1.0
        for rp in sets:
            rope_type = rp["rope_type"]
            if rope_type not in no_factor:
                scaling_factor = rp.get("factor", scaling_factor)
                if not new_rule and rope_type == "yarn":
                    # vLLM v0.26.0 vllm/config/model.py:_get_and_verify_max_len (yarn: original x factor)
                    derived = rp.get("original_max_position_embeddings",
                                     hf_text_config.get("original_max_position_embeddings", derived))
        if scaling_factor is None:
            scaling_factor = 1.0
        derived = derived * scaling_factor
    if encoder_max_seq_length is not None:
        derived = encoder_max_seq_length
    return derived, key


def derived_max_model_len(version: Version, hf_text_config: Mapping, **kwargs) -> int:
    """``int(derived_max_model_len)``; 2048 when the config has none of the keys (vLLM's fallback)."""
    derived, _ = derived_max_model_len_and_key(version, hf_text_config, **kwargs)
    return 2048 if derived is None else int(derived)


def default_max_model_len(version: Version, hf_text_config: Mapping, **kwargs) -> int:
    """What ``--max-model-len`` unset or ``-1``/``auto`` starts from (``Using max model len %s``).

    The derived length, except LongRoPE models, which default to the top-level
    ``original_max_position_embeddings``. Auto-fit (-1) may lower it later, after profiling.
    """
    derived, _ = derived_max_model_len_and_key(version, hf_text_config, **kwargs)
    if derived is None:
        return 2048
    if any(rp["rope_type"] == "longrope" for rp in _rope_parameter_sets(hf_text_config)):
        return int(hf_text_config.get("original_max_position_embeddings", derived))
    return int(derived)


def verify_max_model_len(
    version: Version,
    requested: int | None,
    derived: int | float | None,
    env: Mapping[str, str],
    *,
    max_len_key: str | None = "max_position_embeddings",
    model_max_length: int | None = None,
    default: int | None = None,
) -> int:
    """The ``max_model_len`` vLLM accepts, or vLLM's ValueError as an InvalidConfig.

    ``requested`` None or -1 (``auto``) gives ``default`` (or ``int(derived)``). A request above
    ``derived`` is allowed only under ``model_max_length`` or ``VLLM_ALLOW_LONG_MAX_MODEL_LEN`` in
    ("1", "true"). ``derived`` None means the config had no length key: vLLM then returns the
    request as is (2048 when none). The message is the same in v0.19, v0.26 and v0.33.
    """
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/model.py:_get_and_verify_max_len
    if derived is None:
        return 2048 if requested is None else int(requested)
    if requested is None or requested == -1:
        return int(default if default is not None else derived)
    if requested > derived:
        if model_max_length is None or requested > model_max_length:
            msg = (
                f"User-specified max_model_len ({requested}) is greater "
                f"than the derived max_model_len ({max_len_key}="
                f"{derived} or model_max_length="
                f"{model_max_length} in model's config.json)."
            )
            warning = (
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme "
                "caution. If the model uses relative position encoding (RoPE), "
                "positions exceeding derived_max_model_len lead to nan. If the "
                "model uses absolute position encoding, positions exceeding "
                "derived_max_model_len will cause a CUDA array out-of-bounds "
                "error."
            )
            allow = env.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "0").strip().lower() in ("1", "true")
            if not allow:
                raise InvalidConfig(
                    f"{msg} To allow overriding this maximum, set "
                    f"the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. {warning}",
                    hint=f"use --max-model-len {int(derived)} or less",
                )
    return int(requested)


# ---------------------------------------------------------------------------------------------
# 7. parallelism
# ---------------------------------------------------------------------------------------------


def vocab_padded(vocab_size: int, pad_to: int = 64) -> int:
    """``pad_vocab_size``: vocab rounded up to 64 (``DEFAULT_VOCAB_PADDING_SIZE``, all versions)."""
    # vLLM v0.26.0 vllm/model_executor/layers/vocab_parallel_embedding.py:pad_vocab_size
    return round_up(vocab_size, pad_to)


def validate_parallel(
    version: Version,
    *,
    num_attention_heads: int,
    num_kv_heads: int,
    vocab_size: int,
    tp: int,
    pp: int = 1,
    dp: int = 1,
    num_layers: int | None = None,
    supports_pp: bool = True,
    available_devices: int | None = None,
    platform: str = "cuda",
    intermediate_size: int | None = None,
    use_mla: bool = False,
    tie_word_embeddings: bool = False,
) -> None:
    """Raise vLLM's error for a TP/PP layout it rejects; return None when it starts.

    Config time (``ModelConfig.verify_with_parallel_config``, ``ParallelConfig.__post_init__``):
    heads % tp, PP support, world size vs GPUs on the node. Model construction time
    (``AssertionError`` from ``vllm.distributed.utils.divide`` in the worker, "A is not divisible
    by B"): the padded vocab / tp (embedding, built first), KV heads (``tp % kv`` when
    tp >= kv, else ``kv % tp``), and the MLP width / tp. There is no config-time vocab check.
    """
    p = _norm_platform(platform)
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/model.py:ModelConfig.verify_with_parallel_config
    if num_attention_heads % tp != 0:
        raise InvalidConfig(
            f"Total number of attention heads ({num_attention_heads})"
            " must be divisible by tensor parallel size "
            f"({tp}).",
            hint="pick a --tensor-parallel-size that divides the attention head count",
        )
    if pp > 1 and not supports_pp:
        raise InvalidConfig(
            "Pipeline parallelism is not supported for this model. "
            "Supported models implement the `SupportsPP` interface.",
            hint="use --pipeline-parallel-size 1",
        )
    # vLLM v0.19.0 vllm/config/parallel.py:ParallelConfig.__post_init__ (cuda_device_count_stateless)
    # vLLM v0.33.0 vllm/config/parallel.py:ParallelConfig.__post_init__ (current_platform.device_count)
    world_size = tp * pp
    if available_devices is not None and p == "cuda" and world_size * dp > 1 and available_devices < world_size:
        raise InvalidConfig(
            f"World size ({world_size}) is larger than the number of "
            f"available GPUs ({available_devices}) in this node. If this is "
            "intentional and you are using:\n"
            "- ray, set '--distributed-executor-backend ray'.\n"
            "- multiprocessing, set '--nnodes' appropriately.",
            hint="lower --tensor-parallel-size x --pipeline-parallel-size",
        )
    if tp == 1:
        return
    # vLLM v0.26.0 vllm/model_executor/layers/vocab_parallel_embedding.py:VocabParallelEmbedding._get_indices
    padded = vocab_padded(vocab_size)
    if padded % tp != 0:
        raise InvalidConfig(
            f"{padded} is not divisible by {tp}",
            hint=f"vLLM asserts this while building the embedding; pick a tp that divides {padded}",
        )
    if not use_mla:
        # vLLM v0.26.0 vllm/model_executor/layers/linear.py:QKVParallelLinear.__init__
        if tp >= num_kv_heads:
            if tp % num_kv_heads != 0:
                raise InvalidConfig(f"{tp} is not divisible by {num_kv_heads}",
                                hint="vLLM asserts this in QKVParallelLinear (KV-head replication)")
        elif num_kv_heads % tp != 0:
            raise InvalidConfig(f"{num_kv_heads} is not divisible by {tp}",
                            hint="vLLM asserts this in QKVParallelLinear")
    if intermediate_size is not None and intermediate_size % tp != 0:
        # vLLM v0.26.0 vllm/model_executor/layers/linear.py:MergedColumnParallelLinear.__init__
        raise InvalidConfig(f"{intermediate_size} is not divisible by {tp}",
                        hint="vLLM asserts this in the MLP projections")
    del num_layers, tie_word_embeddings, version


def pp_layer_split(num_layers: int, pp: int, partition_env: str | None = None) -> list[tuple[int, int]]:
    """``[(start, end)]`` per pipeline stage, as ``get_pp_indices`` returns them (all versions).

    ``num_layers // pp`` each; the remainder goes one layer each to stages -2, -3, ... (the last
    stage is skipped first). ``VLLM_PP_LAYER_PARTITION="a,b,..."`` overrides it.
    """
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/distributed/utils.py:get_pp_indices
    if partition_env is not None:
        try:
            partitions = [int(layer) for layer in partition_env.split(",")]
        except ValueError:
            raise InvalidConfig(f"Invalid partition string: {partition_env}",
                            hint="VLLM_PP_LAYER_PARTITION takes comma-separated layer counts") from None
        if len(partitions) != pp:
            raise InvalidConfig(f"len(partitions)={len(partitions)} does not match pp_size={pp}.")
        if sum(partitions) != num_layers:
            raise InvalidConfig(f"sum(partitions)={sum(partitions)} does not match num_hidden_layers={num_layers}.")
    else:
        per = num_layers // pp
        partitions = [per] * pp
        if remaining := num_layers % pp:
            for i in range(2, remaining + 2):
                partitions[-i] += 1
    out: list[tuple[int, int]] = []
    start = 0
    for n in partitions:
        out.append((start, start + n))
        start += n
    return out


# ---------------------------------------------------------------------------------------------
# 8. dtypes
# ---------------------------------------------------------------------------------------------

_STR_DTYPE = {"half": "float16", "float16": "float16", "float": "float32", "float32": "float32", "bfloat16": "bfloat16"}
_CONFIG_DTYPE = {**_STR_DTYPE, "fp16": "float16", "bf16": "bfloat16", "fp32": "float32",
                 "torch.float16": "float16", "torch.bfloat16": "bfloat16", "torch.float32": "float32"}

# vLLM v0.19.0 / v0.26.0 vllm/config/model.py:_FLOAT16_NOT_SUPPORTED_MODELS (plamo2 dropped in v0.27.0)
_FP16_UNSUPPORTED = ("gemma2", "gemma3", "gemma3_text", "plamo2", "glm4")

_CAPABILITY_BY_NAME = (
    ("b200", (10, 0)), ("b300", (10, 3)), ("gb200", (10, 0)), ("h100", (9, 0)), ("h200", (9, 0)), ("h800", (9, 0)),
    ("h20", (9, 0)), ("gh200", (9, 0)), ("l40", (8, 9)), ("l4", (8, 9)), ("4090", (8, 9)), ("ada", (8, 9)),
    ("a100", (8, 0)), ("a800", (8, 0)), ("a30", (8, 0)), ("a10", (8, 6)), ("a40", (8, 6)), ("3090", (8, 6)),
    ("a6000", (8, 6)), ("t4", (7, 5)), ("v100", (7, 0)), ("p100", (6, 0)),
)


def _capability(device_name: str) -> tuple[int, int] | None:
    name = device_name.lower()
    for key, cap in _CAPABILITY_BY_NAME:
        if key in name:
            return cap
    return None


def resolve_dtype(
    version: Version,
    config_dtype: str | None,
    platform: str,
    device_name: str,
    model_type: str,
    *,
    requested: str = "auto",
    device_capability: tuple[int, int] | None = None,
    is_pooling: bool = False,
) -> str:
    """The model dtype for ``--dtype`` (``_get_and_verify_dtype`` / ``_resolve_auto_dtype``).

    ``auto``: supported = the platform list (CUDA cc>=8.0 and ROCm/Ascend: bf16, fp16, fp32; CUDA
    cc 6.x-7.x: fp16, fp32) without fp16 for gemma2/gemma3/gemma3_text/glm4 (and plamo2 up to
    v0.26); preferred = fp16 for pooling models, else the first; a float32 config becomes the
    preferred one; a config dtype outside the list falls back to the preferred one. A config
    without ``dtype``/``torch_dtype`` is taken as float32 (vLLM would first read the safetensors
    header dtypes, which a pure function cannot). An explicit fp16 for those model types raises.
    """
    p = _norm_platform(platform)
    cap = device_capability or (_capability(device_name) if p == "cuda" else None)
    # vLLM v0.26.0 vllm/platforms/cuda.py:CudaPlatformBase.supported_dtypes; interface.py default for others
    if p == "cuda" and cap is not None and cap < (8, 0):
        platform_dtypes = ["float16", "float32"] if cap >= (6, 0) else ["float32"]
    else:
        platform_dtypes = ["bfloat16", "float16", "float32"]
    unsupported = set(_FP16_UNSUPPORTED)
    if _rules(version).plamo2_fp16:
        unsupported.discard("plamo2")  # vLLM v0.33.0 vllm/config/model.py:_FLOAT16_NOT_SUPPORTED_MODELS
    cfg = _CONFIG_DTYPE.get(str(config_dtype).lower(), None) if config_dtype is not None else "float32"
    if cfg is None:
        raise UnsupportedError(f"config dtype {config_dtype!r} is not a float type vramplan models")
    req = requested.strip().lower()
    if req == "auto":
        # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/config/model.py:_resolve_auto_dtype
        supported = [d for d in platform_dtypes if not (model_type in unsupported and d == "float16")]
        preferred = "float16" if (is_pooling and "float16" in supported) else supported[0]
        if cfg == "float32":
            cfg = preferred
        out = cfg if cfg in supported else preferred
    else:
        if req not in _STR_DTYPE:
            raise InvalidConfig(f"Unknown dtype: {req!r}", hint="use auto, half, float16, bfloat16, float or float32")
        out = _STR_DTYPE[req]
    # vLLM vllm/config/model.py:_check_valid_dtype
    if model_type in unsupported and out == "float16":
        raise InvalidConfig(
            f"The model type {model_type!r} does not support float16. "
            "Reason: Numerical instability. Please use bfloat16 or float32 instead.",
            hint="use --dtype bfloat16",
        )
    return out


_KV_DTYPES_V019 = ("auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla")
_KV_DTYPES_V026 = _KV_DTYPES_V019 + (
    "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_3bit_nc",
    "int4_per_token_head", "int8_per_token_head", "fp8_per_token_head", "nvfp4",
)
_KV_DTYPES_V033 = _KV_DTYPES_V019 + (
    "nvfp4_ds_mla", "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_3bit_nc",
    "octave_k3v4", "octave_k3v3", "octave_k3v3_compact", "ultraquant_4bit",
    "int4_per_token_head", "int8_per_token_head", "fp8_per_token_head", "nvfp4", "nvfp4_4over6",
)


def valid_kv_cache_dtypes(version: Version) -> tuple[str, ...]:
    """``--kv-cache-dtype`` choices (``CacheDType`` literal). Intermediate versions use the older list."""
    # vLLM v0.19.0 / v0.26.0 / v0.33.0 vllm/config/cache.py:CacheDType
    if _rules(version).kv_dtypes_v033:
        return _KV_DTYPES_V033
    if _rules(version).kv_dtypes_v026:
        return _KV_DTYPES_V026
    return _KV_DTYPES_V019


def resolve_kv_cache_dtype(version: Version, requested: str, quantization_config: Mapping | None = None) -> str:
    """``resolve_kv_cache_dtype_string``: ``auto`` stays ``auto`` (= model dtype) unless a ModelOpt
    checkpoint names its KV quantization (``kv_cache_quant_algo``/``kv_cache_scheme``): FP8 ->
    ``fp8_e4m3``, NVFP4 -> ``nvfp4`` (v0.26+). Other quantization methods do not change ``auto``.
    """
    if requested not in valid_kv_cache_dtypes(version):
        raise InvalidConfig(f"unknown --kv-cache-dtype {requested!r}",
                        hint="choose one of " + ", ".join(valid_kv_cache_dtypes(version)))
    if requested != "auto" or not quantization_config:
        return requested
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/utils/torch_utils.py:get_kv_cache_quant_algo_string
    qc = quantization_config
    if not str(qc.get("quant_method", "")).startswith("modelopt"):
        return "auto"
    inner = qc.get("quantization", qc)
    algo = (inner.get("kv_cache_scheme") or qc.get("kv_cache_scheme")
            or inner.get("kv_cache_quant_algo") or qc.get("kv_cache_quant_algo"))
    if isinstance(algo, Mapping):
        if algo.get("dynamic") is False and algo.get("num_bits") == 8 and algo.get("type") == "float":
            algo = "fp8"
        elif _rules(version).modelopt_nvfp4_kv and algo.get("num_bits") == 4 and algo.get("type") == "float":
            algo = "nvfp4"
        else:
            return "auto"
    if isinstance(algo, str):
        mapping = {"fp8": "fp8_e4m3", "nvfp4": "nvfp4"}
        return mapping.get(algo.lower(), "auto")
    return "auto"


def kv_cache_dtype_bytes(kv_cache_dtype: str, model_dtype: str) -> float | int:
    """Bytes per stored K or V element (scales of per-token-head modes not included).

    auto -> the model dtype (2 for fp16/bf16, 4 for fp32); fp8* and int8/fp8_per_token_head -> 1;
    int4_per_token_head -> 0.5; nvfp4 -> 9/16 (head/2 data + head/16 scales, per element);
    fp8_ds_mla -> 1 (but the MLA page is a fixed 656 B/token in V3.2, 584 B/token in V4).
    TurboQuant/Octave/UltraQuant layouts depend on the head size and raise UnsupportedError.
    """
    # vLLM v0.26.0 vllm/utils/torch_utils.py:STR_DTYPE_TO_TORCH_DTYPE; vllm/v1/kv_cache_interface.py:AttentionSpec.real_page_size_bytes
    d = kv_cache_dtype.strip().lower()
    if d == "auto":
        m = _CONFIG_DTYPE.get(model_dtype.strip().lower())
        if m is None:
            raise UnsupportedError(f"model dtype {model_dtype!r} is not a float type")
        return 4 if m == "float32" else 2
    if d in ("float16", "bfloat16", "half"):
        return 2
    if d in ("float32", "float"):
        return 4
    if d.startswith("fp8") or d == "int8_per_token_head":
        return 1
    if d == "int4_per_token_head":
        return 0.5
    if d in ("nvfp4", "nvfp4_4over6"):
        return 9 / 16
    raise UnsupportedError(f"--kv-cache-dtype {kv_cache_dtype} packs K/V in a head-size-dependent slot",
                           hint="model it with the page size of the backend")


# ---------------------------------------------------------------------------------------------
# 9. KV-cache per-request block counts and capacity
# ---------------------------------------------------------------------------------------------


def max_concurrent_batches(version: Version, *, pp: int, async_scheduling: bool, v2_runner: bool) -> int:
    """``VllmConfig.max_concurrent_batches`` (v0.26+): pp+1 with async on V2, 2 with async on V1 at
    pp=1, else pp. Before v0.26 the KV admission bound used one batch (see the block functions).
    """
    # vLLM v0.26.0 / v0.33.0 vllm/config/vllm.py:VllmConfig.max_concurrent_batches
    if async_scheduling:
        if v2_runner:
            return pp + 1
        if pp <= 1:
            return 2
    return pp


def sliding_window_blocks_per_request(
    version: Version,
    *,
    sliding_window: int,
    max_model_len: int,
    block_size: int,
    max_num_batched_tokens: int,
    max_concurrent_batches: int = 1,
    extra_retained_tokens: int = 0,
) -> int:
    """Blocks one request may hold in a sliding-window layer (``SlidingWindowSpec``).

    ``cdiv(min(window - 1 [+ extra, v0.28+] + in_flight, max_model_len), block_size) + 1`` where
    in_flight = mnbt up to v0.25 and ``max_concurrent_batches * mnbt`` from v0.26.
    """
    # vLLM v0.19.0 vllm/v1/kv_cache_interface.py:SlidingWindowSpec.max_memory_usage_bytes
    # vLLM v0.26.0 vllm/v1/kv_cache_interface.py:SlidingWindowSpec.max_admission_blocks_per_request
    concurrent = max_concurrent_batches if _rules(version).admission_counts_concurrent_batches else 1
    in_flight = max_num_batched_tokens * concurrent
    extra = extra_retained_tokens if _rules(version).sliding_window_extra_retained else 0
    num_tokens = min(sliding_window - 1 + extra + in_flight, max_model_len)
    return cdiv(num_tokens, block_size) + 1


def chunked_local_blocks_per_request(
    version: Version,
    *,
    attention_chunk_size: int,
    max_model_len: int,
    block_size: int,
    max_num_batched_tokens: int,
    max_concurrent_batches: int = 1,
) -> int:
    """``ChunkedLocalAttentionSpec``: ``cdiv(min(chunk + in_flight, max_model_len), block_size)``."""
    # vLLM v0.19.0 / v0.26.0 vllm/v1/kv_cache_interface.py:ChunkedLocalAttentionSpec
    concurrent = max_concurrent_batches if _rules(version).admission_counts_concurrent_batches else 1
    in_flight = max_num_batched_tokens * concurrent
    return cdiv(min(attention_chunk_size + in_flight, max_model_len), block_size)


def mamba_blocks_per_request(
    version: Version,
    *,
    mamba_cache_mode: str,
    num_speculative_blocks: int = 0,
    max_model_len: int | None = None,
    block_size: int | None = None,
    num_prefill_checkpoint_blocks: int = 0,
) -> int:
    """``MambaSpec.max_memory_usage_bytes / page``: none 1+spec; align 2+spec (+checkpoint blocks,
    v0.33); all ``cdiv(max_model_len, block_size)`` (+spec from v0.26; gone from v0.32).
    """
    # vLLM v0.19.0 / v0.26.0 / v0.33.0 vllm/v1/kv_cache_interface.py:MambaSpec.max_memory_usage_bytes
    if mamba_cache_mode == "all":
        if _rules(version).mamba_cache_mode_all_removed:
            raise InvalidConfig("mamba_cache_mode 'all' does not exist in this vLLM version", hint="use align")
        if max_model_len is None or block_size is None:
            raise InvalidConfig("mode 'all' needs max_model_len and block_size")
        spec = num_speculative_blocks if _rules(version).mamba_all_counts_spec_blocks else 0
        return cdiv(max_model_len, block_size) + spec
    if mamba_cache_mode == "align":
        ckpt = num_prefill_checkpoint_blocks if _rules(version).prefill_checkpoint_blocks else 0
        return 2 + num_speculative_blocks + ckpt
    return 1 + num_speculative_blocks


def gated_delta_net_state_shapes(
    *,
    tp: int,
    num_k_heads: int,
    num_v_heads: int,
    head_k_dim: int,
    head_v_dim: int,
    conv_kernel_size: int,
    num_speculative_tokens: int = 0,
) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """Per-rank GDN states (Qwen3-Next/Qwen3.5): conv ``(kernel-1+k, conv_dim/tp)`` and temporal
    ``(num_v_heads/tp, head_v_dim, head_k_dim)``, ``conv_dim = 2*head_k*n_k + head_v*n_v``.
    Dtypes: conv = mamba_cache_dtype (auto: model dtype); temporal = mamba_ssm_cache_dtype (auto:
    same as conv; Qwen3.5 configs set it from ``mamba_ssm_dtype``). Byte totals do not depend on
    the conv layout (v0.26+ may store it dim-first).
    """
    # vLLM v0.19.0/v0.26.0/v0.33.0 vllm/model_executor/layers/mamba/mamba_utils.py:MambaStateShapeCalculator.gated_delta_net_state_shape
    conv_dim = head_k_dim * num_k_heads * 2 + head_v_dim * num_v_heads
    if conv_dim % tp or num_v_heads % tp:
        bad = conv_dim if conv_dim % tp else num_v_heads
        raise InvalidConfig(f"{bad} is not divisible by {tp}", hint="vLLM asserts this for the GDN state")
    return (conv_kernel_size - 1 + num_speculative_tokens, conv_dim // tp), (num_v_heads // tp, head_v_dim, head_k_dim)


def kv_cache_capacity(
    version: Version,
    *,
    num_blocks: int,
    blocks_per_request: Sequence[int],
    max_model_len: int,
    min_block_size: int,
) -> tuple[int, float]:
    """``(GPU KV cache size tokens, Maximum concurrency)`` as logged.

    ``blocks_per_request[g]`` = ``cdiv(max_memory_usage_bytes_g, page_g)`` per KV-cache group.
    Concurrency = ``num_blocks / sum_g blocks_g`` (v0.19/v0.26 compute it as
    ``cdiv(nlpg * sum max_mem, nlpg * page)``, the same number for uniform pages).
    Tokens: v0.19-v0.20 ``num_blocks // num_groups * min_block_size``; v0.21+
    ``int(concurrency * max_model_len)``.
    """
    # vLLM v0.19.0 vllm/v1/core/kv_cache_utils.py:_report_kv_cache_config
    # vLLM v0.26.0 vllm/v1/core/kv_cache_utils.py:get_kv_cache_capacity; v0.33.0 update_kv_cache_capacity
    total = sum(blocks_per_request)
    concurrency = num_blocks / total if total else 0.0
    if _rules(version).kv_tokens_from_concurrency:
        tokens = int(concurrency * max_model_len)
    else:
        tokens = num_blocks // len(blocks_per_request) * min_block_size
    return tokens, concurrency


def no_kv_cache_memory_message(version: Version) -> str:
    """vLLM's ValueError when the KV budget is <= 0 (``_check_enough_kv_cache_memory``).

    v0.22+ adds the CPU-backend remark.
    """
    # vLLM v0.19.0 vllm/v1/core/kv_cache_utils.py:_check_enough_kv_cache_memory
    # vLLM v0.26.0 vllm/v1/core/kv_cache_utils.py:_check_enough_kv_cache_memory; v0.33.0 kv_cache_planning.py
    if _rules(version).kv_no_memory_text_cpu_note:
        return (
            "No available memory for the cache blocks. "
            "Try increasing `gpu_memory_utilization` when initializing the engine "
            "(this flag also controls CPU memory reservation on the CPU "
            "backend, despite its name). "
            "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
            "for more details."
        )
    return (
        "No available memory for the cache blocks. "
        "Try increasing `gpu_memory_utilization` when initializing the engine. "
        "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
        "for more details."
    )


def not_enough_kv_cache_message(
    version: Version,
    *,
    max_model_len: int,
    needed_bytes: int,
    available_bytes: int,
    estimated_max_len: int,
) -> str:
    """vLLM's ValueError when one max-length request does not fit (``_check_enough_kv_cache_memory``).

    Up to v0.21 the text says "models's" and has no CPU-backend remark. The "Based on the
    available memory ..." sentence appears only when the binary search found a length > 0.
    """
    est = (
        "Based on the available memory, "
        f"the estimated maximum model length is {estimated_max_len}. "
        if estimated_max_len > 0 else ""
    )
    if _rules(version).kv_no_memory_text_cpu_note:
        return (
            f"To serve at least one request with the model's max seq len "
            f"({max_model_len}), ({format_gib(needed_bytes)} GiB KV "
            f"cache is needed, which is larger than the available KV cache "
            f"memory ({format_gib(available_bytes)} GiB). {est}"
            f"Try increasing `gpu_memory_utilization` (which also controls "
            f"CPU memory on the CPU backend) or decreasing `max_model_len` "
            f"when initializing the engine. "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
            f"for more details."
        )
    return (
        f"To serve at least one request with the models's max seq len "
        f"({max_model_len}), ({format_gib(needed_bytes)} GiB KV "
        f"cache is needed, which is larger than the available KV cache "
        f"memory ({format_gib(available_bytes)} GiB). {est}"
        f"Try increasing `gpu_memory_utilization` or decreasing `max_model_len` "
        f"when initializing the engine. "
        f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
        f"for more details."
    )
