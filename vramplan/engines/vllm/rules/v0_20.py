"""vLLM v0.20.0: ``gpu_memory_utilization`` defaults to 0.92 and the CUDA-graph estimate is
subtracted by default (vllm/envs.py ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` = "1"; the
log line says "default since v0.21.0", but the switch is in 0.20.0's envs.py)."""

from dataclasses import replace

from .v0_19 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 20, 0), estimate_cudagraphs_default=True, default_gpu_memory_utilization=0.92,
                # vLLM v0.20.0 vllm/engine/arg_utils.py:EngineArgs._set_default_max_num_seqs_and_batched_tokens_args
                batched_dp_moe_batch_default=True,
                # vLLM v0.20.0 vllm/platforms/interface.py:Platform.update_block_size_for_backend,
                # Platform._align_hybrid_block_size
                hybrid_block_from_backend=True, hybrid_align_kernel_block=True,
                # vLLM v0.20.0 vllm/config/compilation.py:CompilationConfig.adjust_cudagraph_sizes_for_spec_decode
                spec_decode_rounding_any_runner=True,
                # vLLM v0.20.0 vllm/model_executor/models/mimo_v2_flash.py:MiMoV2Attention (Attention head_size_v)
                mimo_v2_v_head_unpadded=True)
