"""vLLM v0.23.0: the automatic V2 runner also takes dense, unquantized Llama and Mistral
(vllm/config/vllm.py ``VllmConfig._is_default_v2_model_runner_model``)."""

from dataclasses import replace

from .v0_22 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 23, 0),
                v2_default_archs=frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM"}))
