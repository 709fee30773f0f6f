"""vLLM v0.34.0, read against v0.33.0 (config/cache.py, config/vllm.py, v1/worker/gpu_worker.py,
v1/worker/utils.py, v1/worker/extensible_kv_cache.py, v1/worker/gpu/warmup.py, v1/core/kv_cache_planning.py,
engine/arg_utils.py, envs.py, platforms/interface.py). Since v0.33:

- The extensible KV cache (``CacheConfig.enable_extensible_kv_cache``), on by default on CUDA and ROCm
  (``VllmConfig._resolve_extensible_kv_cache``): the address range is reserved for the blocks the profile run
  allows, warm-up and CUDA-graph capture run, then ``measure_kv_cache_blocks`` commits what the memory free
  after them allows. The steps are in :mod:`vramplan.engines.vllm.sizing.extensible`.
- ``gpu_memory_utilization`` defaults to None: 1.0 under the extensible cache, 0.92 otherwise
  (``CacheConfig.resolved_gpu_memory_utilization``); ``request_memory`` skips the free-memory refusal under it.
- ``CacheConfig.DEFAULT_BLOCK_SIZE`` is 64 (was 16): FlashAttention, FlashInfer, Triton and the MLA backends
  that accept 64 now take it (``AttentionBackend.get_preferred_block_size(64)``); ROCM_ATTN keeps 16.
- The V1 model runner is gone (``Platform.validate_environ``: ``VLLM_USE_V2_MODEL_RUNNER=0`` is an error,
  ``=1`` a warning); the sampler warm-up after capture runs for the (only) runner.
- ``profile_cudagraph_memory`` runs only with ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` (default 1) and
  returns 0 under the extensible cache (``vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.profile_cudagraph_memory``).

- The sampler warm-up after capture runs after ``record_transient_peak`` and ``measure_kv_cache_blocks``
  empties torch's cache before it reads free memory, so its peak is not in the transient the commit keeps
  (gpu_worker.py ``Worker._compile_or_warm_up_model``); the transient is the profile's and the sizing warm-up's.

Measured on 14 real 0.34.0 startups on one H100 (data/truth/logs/h100e): the context at the snapshot (0.70 GiB,
estimate/overheads.py ``_CTX_HANDLES_FIRST``), no fp8-KV load workspace (``fp8_kv_load_workspace``), and the
V2 runner's penalty state in total consumed (``sampler_penalty_state_bytes``). The profile peak, non-torch
increase and graph pools keep the 0.26-fitted models (README, accuracy, gives their 0.34 errors).
"""

from dataclasses import replace

from .v0_33 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 34, 0), extensible_kv_cache_platforms=("cuda", "rocm"),
                default_block_size=64, v1_model_runner=False, cudagraph_estimate_only_when_applied=True,
                kv_memory_hint_in_errors=True, split_capture_sizes=True,
                kimi_k3_dsa=True, flashkda_prefill_workspace=True, fp8_kv_load_workspace=False)
