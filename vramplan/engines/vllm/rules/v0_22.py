"""vLLM v0.22.0 (change points found between the v0.19 and v0.26 wheels; docs/vllm-rules.md): the "models's"
typo leaves the max-len error and both KV-memory errors gain the CPU-backend remark
(vllm/v1/core/kv_cache_utils.py ``_check_enough_kv_cache_memory``); ``VLLM_USE_V2_MODEL_RUNNER`` unset means
automatic, with Qwen3 dense on V2 (vllm/config/vllm.py ``VllmConfig.use_v2_model_runner``,
``_is_default_v2_model_runner_model``); prefix-LM multimodal models raise ``max_num_batched_tokens``
(vllm/engine/arg_utils.py ``EngineArgs._get_min_mm_batched_tokens``)."""

from dataclasses import replace

from .v0_21 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 22, 0), models_typo=False, kv_no_memory_text_cpu_note=True,
                v2_runner_auto=True, v2_default_archs=frozenset({"Qwen3ForCausalLM"}),
                mm_prefix_lm_min_batched_tokens=True)
