"""vLLM v0.20.0: ``gpu_memory_utilization`` defaults to 0.92 and the CUDA-graph estimate is
subtracted by default (vllm/envs.py ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` = "1"; the
log line says "default since v0.21.0", but the switch is in 0.20.0's envs.py)."""

from dataclasses import replace

from .v0_19 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 20, 0), estimate_cudagraphs_default=True, default_gpu_memory_utilization=0.92)
