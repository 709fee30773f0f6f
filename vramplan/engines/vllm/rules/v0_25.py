"""vLLM v0.25.0: the automatic V2 runner takes every generate model that is not hybrid nor attention-free and is
dense or in a short MoE list (vllm/config/vllm.py ``VllmConfig._is_default_v2_model_runner_model``); the
spec-decode capture-size rounding no longer applies to the V2 runner
(vllm/config/compilation.py ``CompilationConfig.adjust_cudagraph_sizes_for_spec_decode``); mxfp4 experts on
the Triton kernel stop keeping their loaded scales (rules/engine.py ``_mxfp4_backend``)."""

from dataclasses import replace

from .v0_24 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 25, 0), v2_default_rule="generate_non_hybrid",
                v2_default_archs=frozenset({"DeepseekV2ForCausalLM", "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"}),
                decode_rounds_skip_v2=True, mxfp4_triton_drops_loaded_scales=True)
