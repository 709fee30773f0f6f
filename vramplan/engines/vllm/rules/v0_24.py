"""vLLM v0.24.0: the automatic V2 runner takes a list of architectures, MoE and quantized included
(vllm/config/vllm.py ``VllmConfig._is_default_v2_model_runner_model``)."""

from dataclasses import replace

from .v0_23 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 24, 0), v2_default_rule="listed", v2_default_archs=frozenset({
    "Qwen3ForCausalLM", "DeepseekV2ForCausalLM", "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM",
    "LlamaForCausalLM", "MistralForCausalLM",
}))
