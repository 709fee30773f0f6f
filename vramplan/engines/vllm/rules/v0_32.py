"""vLLM v0.32.0: ``mamba_cache_mode="all"`` is gone (vllm/config/cache.py; vllm/model_executor/models/config.py
``MambaModelConfig.verify_and_update_config``); sequence parallelism no longer reshapes the capture sizes
(``VllmConfig.update_sizes_for_sequence_parallelism`` removed); DeepSeek-V3.2/V4 take the V2 runner on ROCm too
(vllm/config/vllm.py ``VllmConfig.use_v2_model_runner``); M-RoPE's cache takes the model's positions factor (1 for
Qwen3-VL and Qwen3.5 without video pruning; vllm/model_executor/layers/rotary_embedding/mrope.py, read in the 0.31.0 and
0.32.0 wheels)."""

from dataclasses import replace

from .v0_30 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, deepstack_needs_tower=True,  # vLLM v0.31.0/v0.32.0 qwen3_vl.py use_deepstack (0.27-0.30 not read)
                version=(0, 32, 0), mamba_cache_mode_all_removed=True, sp_capture_sizes_unchanged=True,
                v2_runner_rocm_dsa=True, mrope_positions_factor=True)
