"""vLLM v0.26.0 (wheel commit gffd46bfab), read end to end. Since v0.21:

- the "models's" typo is gone (v0.22, rules/v0_22.py);
- ``VLLM_USE_V2_MODEL_RUNNER`` unset means automatic (v0.22); in v0.26 dense non-hybrid generate
  models run on the V2 runner (vllm/config/vllm.py ``use_v2_model_runner``), which neither
  profiles the multimodal encoder nor estimates CUDA graphs (``profile_cudagraph_memory``
  returns 0) — see rules/engine_defaults.py ``uses_v2_model_runner``;
- sliding-window and chunked-local admission count ``max_concurrent_batches x mnbt`` in-flight
  tokens (vllm/v1/kv_cache_interface.py ``max_admission_blocks_per_request``).
"""

from dataclasses import replace

from .v0_25 import RULES as _PREVIOUS

RULES = replace(
    _PREVIOUS, version=(0, 26, 0), models_typo=False,
    # vLLM v0.26.0 vllm/config/vllm.py:VllmConfig._is_default_v2_model_runner_model
    v2_default_archs=frozenset({
        "DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "InklingForCausalLM",
        "InklingForConditionalGeneration", "LongcatFlashNgramForCausalLM", "Qwen2MoeForCausalLM",
    }),
    # vLLM v0.26.0 vllm/v1/attention/backends/flash_attn.py:FlashAttentionBackend.get_preferred_block_size
    flash_attn_xpu_block_64=True,
    modelopt_nvfp4_kv=True,
    # vLLM v0.26.0 vllm/v1/kv_cache_interface.py:max_admission_blocks_per_request, MambaSpec.max_memory_usage_bytes
    admission_counts_concurrent_batches=True, mamba_all_counts_spec_blocks=True,
    transformers5=True, kv_dtypes_v026=True, mxfp4_scale_pad_k4=True,
    # vLLM v0.26.0 vllm/model_executor/models/vision.py:is_vit_use_data_parallel(num_heads) (absent in v0.25.0)
    vit_heads_fallback=True,
)
