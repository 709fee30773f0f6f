"""vLLM v0.33.0 (wheel commit g4ba787ec9): what changed since v0.26.

- Non-KV memory = the free-memory delta since the init snapshot + the transient peak
  headroom (``torch_peak - torch_allocated``), vllm/v1/worker/gpu_worker.py
  ``Worker.determine_available_memory`` and vllm/utils/mem_utils.py ``memory_profiling``;
  it was weights + torch peak increase + non-torch increase in v0.26.
- The CUDA-graph estimate runs after the profiling context.
- The max-model-len check reserves the null block (vllm/v1/core/kv_cache_planning.py).
- Capacity and concurrency are logged on one line from ``num_blocks / sum_g cdiv(...)``.
- Every non-pooling model runs on the V2 runner, which now profiles the encoder
  (``EncoderRunner.profile_encoder_cache``) and estimates CUDA graphs.
- cuBLAS handles are created in ``init_device``, before the snapshot.
"""

from dataclasses import replace

from .v0_26 import RULES as _PREVIOUS

RULES = replace(
    _PREVIOUS,
    version=(0, 33, 0),
    non_kv_formula="consumed",
    graph_estimate_inside_profile=False,
    null_block_in_check=True,
    capacity_v033=True,
    v2_runner_default="all",
    v2_estimates_cudagraphs=True,
    v2_profiles_encoder=True,
    kv_capacity_one_line=True,
    cublas_handles_in_init_device=True,
)
