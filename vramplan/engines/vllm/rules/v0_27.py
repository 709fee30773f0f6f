"""vLLM v0.27.0: non-KV memory becomes the free-memory delta since the snapshot plus the
transient peak headroom (vllm/utils/mem_utils.py ``memory_profiling``), the CUDA-graph estimate
moves after the profiling context, and the V2 runner profiles the multimodal encoder
(``EncoderRunner.profile_encoder_cache``)."""

from dataclasses import replace

from .v0_26 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 27, 0), non_kv_formula="consumed", graph_estimate_inside_profile=False,
                v2_profiles_encoder=True,
                # vLLM v0.27.0 vllm/config/vllm.py:VllmConfig._is_default_v2_model_runner_model
                v2_default_archs=frozenset({
                    "DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "InklingForCausalLM",
                    "InklingForConditionalGeneration", "KimiK3ForConditionalGeneration",
                    "LongcatFlashNgramForCausalLM", "Qwen2MoeForCausalLM",
                }),
                # vLLM v0.27.0 vllm/config/model.py:_FLOAT16_NOT_SUPPORTED_MODELS
                plamo2_fp16=True)
