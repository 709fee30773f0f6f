"""vLLM's flag defaults and validations, per version (pure functions on plain values).

Each function names the vLLM function it mirrors. ``version`` is a (major, minor, patch)
tuple; a version between two studied releases uses the older one's rule.
"""

from __future__ import annotations

import math

from ..errors import InvalidConfig
from ..units import GiB

__all__ = [
    "default_max_num_batched_tokens",
    "default_max_num_seqs",
    "default_gpu_memory_utilization",
    "default_block_size",
    "default_cudagraph_mode",
    "cudagraph_capture_sizes",
    "estimate_cudagraphs_enabled",
    "uses_v2_model_runner",
    "derived_max_model_len",
    "verify_max_model_len",
    "validate_parallel",
    "resolve_dtype",
]

V = tuple[int, int, int]


def _batch_tier(device_total_bytes: int, device_name: str, platform: str) -> str:
    """vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults: >= 70 GiB and not an A100."""
    if device_total_bytes >= 70 * GiB and "a100" not in device_name.lower():
        return "large"
    return "small"


def default_max_num_batched_tokens(version: V, *, usage_context: str, device_total_bytes: int, device_name: str,
                                   platform: str, enable_chunked_prefill: bool, max_model_len: int,
                                   max_num_seqs: int, performance_mode: str | None = None) -> int:
    """vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs._set_default_max_num_seqs_and_batched_tokens_args.

    H100/H200/MI300X (>= 70 GiB, not A100): LLM class 16384, ``vllm serve`` 8192; others 8192 / 2048.
    Throughput mode doubles it; without chunked prefill it is at least max_model_len; finally
    it is capped at ``max_num_seqs x max_model_len``.
    """
    tier = _batch_tier(device_total_bytes, device_name, platform)
    table = {"large": {"llm": 16384, "serve": 8192}, "small": {"llm": 8192, "serve": 2048}}
    mnbt = table[tier][usage_context]
    if performance_mode == "throughput":
        mnbt *= 2
    if not enable_chunked_prefill:
        mnbt = max(max_model_len, mnbt)
    return min(max_num_seqs * max_model_len, mnbt)


def default_max_num_seqs(version: V, *, usage_context: str, device_total_bytes: int, device_name: str,
                         platform: str, performance_mode: str | None = None) -> int:
    """vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults: 1024 on >= 70 GiB GPUs, else 256."""
    mns = 1024 if _batch_tier(device_total_bytes, device_name, platform) == "large" else 256
    return mns * (2 if performance_mode == "throughput" else 1)


def default_gpu_memory_utilization(version: V, platform: str) -> float:
    """vLLM vllm/config/cache.py:CacheConfig.gpu_memory_utilization: 0.9 up to v0.2x, 0.92 in v0.26+."""
    if platform == "ascend":
        return 0.9
    return 0.92 if version >= (0, 26, 0) else 0.9


def default_block_size(version: V, platform: str, *, use_mla: bool, compute_capability: tuple[int, int] | None,
                       user_block_size: int | None) -> tuple[int, str]:
    """The KV block size and why.

    CUDA: 16 (vllm/config/cache.py ``DEFAULT_BLOCK_SIZE``) unless the attention backend asks for
    another (vllm/platforms/cuda.py ``update_block_size_for_backend``: FlashMLA 64 on Hopper,
    CUTLASS MLA 128 on Blackwell). Ascend: 128 (vllm-ascend platform). ROCm: 16.
    """
    if user_block_size:
        return user_block_size, "--block-size"
    if platform == "ascend":
        return 128, "vllm-ascend default block size"
    if use_mla and platform == "cuda":
        if compute_capability and compute_capability[0] >= 10:
            return 128, "CUTLASS MLA backend on Blackwell uses 128-token blocks"
        if compute_capability and compute_capability[0] == 9:
            return 64, "FlashMLA backend on Hopper uses 64-token blocks"
    return 16, "vLLM default block size (16 tokens)"


def default_cudagraph_mode(version: V, *, runner: str) -> str:
    """vLLM v0.26.0 vllm/config/vllm.py: FULL_AND_PIECEWISE for the V1 runner's default -O level."""
    return "FULL_AND_PIECEWISE"


def cudagraph_capture_sizes(version: V, *, max_num_seqs: int, max_num_batched_tokens: int,
                            num_speculative_tokens: int = 0, cudagraph_mode: str = "FULL_AND_PIECEWISE",
                            tp_size: int = 1, user_sizes: tuple[int, ...] | None = None,
                            max_capture_size: int | None = None,
                            compute_capability: tuple[int, int] | None = None) -> list[int]:
    """vLLM v0.26.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes.

    ``max = min(max_num_seqs x (1 + spec) x 2, 512)``, capped at max_num_batched_tokens;
    sizes ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16)`` up to ``max``.
    """
    if cudagraph_mode == "NONE":
        return []
    if user_sizes:
        return sorted({s for s in user_sizes if s <= max_num_batched_tokens})
    cap = max_capture_size or min(max_num_seqs * (1 + num_speculative_tokens) * 2, 512)
    cap = min(cap, max_num_batched_tokens)
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, cap + 1, 16))
    return [s for s in sizes if s <= cap]


def estimate_cudagraphs_enabled(version: V, env: dict[str, str]) -> bool:
    """``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` (vllm/envs.py): default 0 in v0.19, 1 from v0.21."""
    raw = env.get("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS")
    if raw is not None:
        return raw.strip() not in ("0", "false", "False", "")
    return version >= (0, 21, 0)


_V2_ARCHS_026 = {"DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "Qwen2MoeForCausalLM"}


def uses_v2_model_runner(version: V, *, architecture: str, is_moe: bool, is_hybrid: bool, is_multimodal: bool,
                         is_pooling: bool, env: dict[str, str]) -> bool:
    """Which model runner vLLM picks (vllm/config/vllm.py:VllmConfig.use_v2_model_runner).

    ``VLLM_USE_V2_MODEL_RUNNER`` forces it. Default: never in v0.19; in v0.26 dense
    non-hybrid generate models (plus a short list of MoE architectures); in v0.33 every
    non-pooling model.
    """
    raw = env.get("VLLM_USE_V2_MODEL_RUNNER")
    if raw is not None and raw.strip() != "":
        return raw.strip() not in ("0", "false", "False")
    if version < (0, 26, 0):
        return False
    if is_pooling:
        return False
    if version >= (0, 33, 0):
        return True
    return not is_hybrid and (not is_moe or architecture in _V2_ARCHS_026)


def derived_max_model_len(version: V, hf_config: dict) -> int:
    """vLLM v0.26.0 vllm/config/model.py:_get_and_verify_max_len: the smallest of the config's length keys,
    times the rope-scaling factor where vLLM applies it (not for llama3/mrope/yarn-with-original)."""
    text = hf_config.get("text_config") if isinstance(hf_config.get("text_config"), dict) else hf_config
    keys = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
            "max_sequence_length", "max_seq_length", "seq_len")
    values = [int(text[k]) for k in keys if isinstance(text.get(k), (int, float)) and text.get(k)]
    derived = min(values) if values else 2048
    rope = text.get("rope_scaling") or {}
    if isinstance(rope, dict) and rope:
        kind = str(rope.get("rope_type") or rope.get("type") or "")
        factor = rope.get("factor")
        if kind not in ("su", "longrope", "llama3", "mrope", "default", "dynamic") and factor and \
                "original_max_position_embeddings" not in rope:
            derived = int(derived * float(factor))
    return derived


def verify_max_model_len(version: V, requested: int | None, derived: int, env: dict[str, str]) -> int:
    """vLLM v0.26.0 vllm/config/model.py:_get_and_verify_max_len (the user value against the model's limit)."""
    if requested is None:
        return derived
    if requested > derived:
        allow = env.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "0") not in ("0", "false", "")
        if not allow:
            raise InvalidConfig(
                f"User-specified max_model_len ({requested}) is greater than the derived max_model_len "
                f"(max_position_embeddings={derived} or model_max_length=None in model's config.json). "
                "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution.",
                hint=f"use --max-model-len {derived} or less",
            )
    return requested


def validate_parallel(version: V, *, num_attention_heads: int, num_kv_heads: int, vocab_size: int, tp: int,
                      pp: int, dp: int, num_layers: int) -> None:
    """vLLM v0.26.0 vllm/config/model.py:ModelConfig.verify_with_parallel_config."""
    if num_attention_heads % tp:
        raise InvalidConfig(
            f"Total number of attention heads ({num_attention_heads}) must be divisible by tensor parallel "
            f"size ({tp}).",
            hint="pick a --tensor-parallel-size that divides " + str(num_attention_heads),
        )
    if pp > num_layers:
        raise InvalidConfig(f"pipeline_parallel_size ({pp}) is larger than the number of layers ({num_layers})",
                        hint="use fewer pipeline stages")


def resolve_dtype(version: V, requested: str | None, config_dtype: str | None, platform: str,
                  compute_capability: tuple[int, int] | None, model_type: str) -> str:
    """vLLM v0.26.0 vllm/config/model.py:_resolve_auto_dtype: the config dtype, with float32 served as
    bfloat16 (float16 on GPUs without bf16, compute capability < 8.0)."""
    if requested and requested != "auto":
        return {"half": "float16", "bf16": "bfloat16", "fp16": "float16", "float": "float32"}.get(requested, requested)
    dtype = (config_dtype or "float32").replace("torch.", "")
    bf16_ok = platform != "cuda" or compute_capability is None or compute_capability >= (8, 0)
    if dtype == "float32":
        return "bfloat16" if bf16_ok else "float16"
    if dtype == "bfloat16" and not bf16_ok:
        return "float16"
    return dtype


_ = math  # reserved for later rules
