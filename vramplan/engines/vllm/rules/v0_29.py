"""vLLM v0.29.0: every model defaults to the V2 runner, which now estimates CUDA graphs; the
max-model-len check reserves the null block (``available - bytes_per_block``)."""

from dataclasses import replace

from .v0_28 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 29, 0), null_block_in_check=True, capacity_v033=True,
                # vLLM v0.29.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes (uniform_decode_sizes)
                uniform_decode_capture_sizes=True,
                # vLLM v0.29.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.profile_cudagraph_memory
                v2_runner_estimates_graphs=True,
                # vLLM v0.29.0 vllm/config/vllm.py:VllmConfig.use_v2_model_runner
                v2_runner_every_model=True)
