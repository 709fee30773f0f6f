"""vLLM v0.19.0 (wheel commit g2a69949bd): the oldest rule set vramplan models.

The V1 engine with ``memory_profiling`` (non-KV = weights + torch peak increase + non-torch
increase), the startup check ``free >= ceil(total x util)``, the V1 model runner only
(``VLLM_USE_V2_MODEL_RUNNER`` unset means 0). The CUDA-graph estimate is computed but not
subtracted by default (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` defaults to "0").
"""

from .versions import RuleSet

RULES = RuleSet(
    version=(0, 19, 0),
    # vLLM v0.19.0 vllm/envs.py: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to "0"
    estimate_cudagraphs_default=False,
    # vLLM v0.19.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory
    non_kv_formula="three_part",
    graph_estimate_inside_profile=True,
    # vLLM v0.19.0 vllm/v1/core/kv_cache_utils.py:_check_enough_kv_cache_memory (no null-block term)
    null_block_in_check=False,
    capacity_v033=False,
    v2_profiles_encoder=False,
    kv_capacity_one_line=False,
    # vLLM v0.19.0 vllm/v1/core/kv_cache_utils.py:_report_kv_cache_config
    kv_tokens_from_concurrency=False,
    override_in_check=False,
    models_typo=True,
    cublas_handles_in_init_device=False,
    # vLLM v0.19.0 vllm/config/cache.py:CacheConfig.gpu_memory_utilization
    default_gpu_memory_utilization=0.9,
    # vLLM v0.19.0 fused_moe/modular_kernel.py (current_workspace_manager), mla_attention.py (profile dummy)
    moe_workspace_manager=True, mla_profile_dummy=True,
)
