"""vLLM v0.28.0: capacity and concurrency are logged on one line
(``GPU KV cache size: N tokens, Maximum concurrency for L tokens per request: X.XXx``);
hybrid models default to prefix caching (mamba ``align`` mode); a >= 160 GiB batch tier."""

from dataclasses import replace

from .v0_27 import RULES as _PREVIOUS

RULES = replace(
    _PREVIOUS, version=(0, 28, 0), kv_capacity_one_line=True,
    # vLLM v0.28.0 vllm/config/vllm.py:VllmConfig._is_default_v2_model_runner_model
    v2_default_archs=frozenset({
        "DeepseekV2ForCausalLM", "DeepseekV4ForCausalLM", "GraniteMoeForCausalLM", "InklingForCausalLM",
        "InklingForConditionalGeneration", "KimiK3ForConditionalGeneration", "LongcatFlashNgramForCausalLM",
        "Qwen2MoeForCausalLM",
    }),
    # vLLM v0.28.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults (>= 160 GiB tier),
    # _set_default_chunked_prefill_and_prefix_caching_args (hybrid prefix caching on)
    large_batch_tier=True, hybrid_prefix_caching_default=True,
    # vLLM v0.28.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes (SM100/SM110 up to 1024)
    sm100_capture_max_1024=True,
    # vLLM v0.28.0 vllm/v1/kv_cache_interface.py:SlidingWindowSpec.max_admission_blocks_per_request
    sliding_window_extra_retained=True,
)
