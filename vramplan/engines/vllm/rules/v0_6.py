"""vLLM v0.6.4.post1 (the V0 engine, read end to end): covers 0.6.0 to 0.6.4.

The V0 ``LLMEngine`` sizes the KV cache in one worker function, with none of the V1 engine's
machinery (no startup free-memory check, no KV cache groups, no CUDA-graph estimate):

- ``vllm/worker/worker.py:Worker.determine_num_available_blocks``: after ``profile_run``,
  ``peak = torch allocated peak`` (weights included) ``+ non-torch``, where non-torch is the
  device's used memory (``total - free``, other processes included) minus torch's allocated
  bytes; ``KV = total x util - peak``; ``blocks = max(floor(KV / block bytes), 0)``.
- ``vllm/worker/worker.py:raise_if_cache_size_invalid``: no blocks, or
  ``max_model_len > block_size x blocks``, refuses the start in its own words.
- ``vllm/engine/arg_utils.py:EngineArgs.create_engine_config``: chunked prefill turns itself on
  only for ``max_model_len > 32768`` (CUDA, text-only, no sliding window);
  ``vllm/config.py:SchedulerConfig``: ``max_num_batched_tokens`` is 512 with chunked prefill,
  ``max(max_model_len, 2048)`` without; ``max_num_seqs`` 256.
- ``vllm/worker/model_runner.py:GPUModelRunnerBase.profile_run``: ``max_num_seqs`` dummy
  prompts sharing ``max_num_batched_tokens`` tokens, sampled with top-k/top-p.
- Block size 16 on CUDA (``vllm/config.py:CacheConfig``); swap space 4 GiB of pinned host
  memory per GPU (``# CPU blocks``).

0.6.5 replaced this profiler (``memory_profiling`` with a baseline snapshot) and 0.8 made the
V1 engine the default; neither of those is modelled.
"""

from .versions import RuleSet

RULES = RuleSet(
    version=(0, 6, 4),
    engine="v0",
    estimate_cudagraphs_default=False,
    # vLLM v0.6.4.post1 vllm/worker/worker.py:Worker.determine_num_available_blocks
    non_kv_formula="absolute_peak",
    graph_estimate_inside_profile=False,
    null_block_in_check=False,
    capacity_v033=False,
    v2_profiles_encoder=False,
    kv_capacity_one_line=False,
    kv_tokens_from_concurrency=False,
    override_in_check=True,
    cublas_handles_in_init_device=False,
    # vLLM v0.6.4.post1 vllm/config.py:CacheConfig (gpu_memory_utilization=0.9)
    default_gpu_memory_utilization=0.9,
)
