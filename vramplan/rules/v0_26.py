"""vLLM v0.26.0 (wheel commit gffd46bfab): what changed since v0.19.

- The CUDA-graph estimate is subtracted by default (vllm/envs.py
  ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` = "1"; the log says "default since v0.21.0").
- Dense, non-hybrid generate models run on the V2 model runner by default
  (vllm/config/vllm.py ``use_v2_model_runner``), which in v0.26 neither profiles the
  multimodal encoder nor estimates CUDA-graph memory
  (vllm/v1/worker/gpu/model_runner.py ``profile_cudagraph_memory`` returns 0).
- The default ``gpu_memory_utilization`` is 0.92 (vllm/config/cache.py).
"""

from dataclasses import replace

from .v0_19 import RULES as _PREVIOUS

RULES = replace(
    _PREVIOUS,
    version=(0, 26, 0),
    estimate_cudagraphs_default=True,
    v2_runner_default="dense",
    default_gpu_memory_utilization=0.92,
)
