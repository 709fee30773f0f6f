"""vLLM v0.26.0 (wheel commit gffd46bfab), read end to end. Since v0.21:

- the "models's" typo is gone (v0.22);
- ``VLLM_USE_V2_MODEL_RUNNER`` unset means automatic (v0.22); in v0.26 dense non-hybrid generate
  models run on the V2 runner (vllm/config/vllm.py ``use_v2_model_runner``), which neither
  profiles the multimodal encoder nor estimates CUDA graphs (``profile_cudagraph_memory``
  returns 0) — see rules/engine_defaults.py ``uses_v2_model_runner``;
- sliding-window and chunked-local admission count ``max_concurrent_batches x mnbt`` in-flight
  tokens (vllm/v1/kv_cache_interface.py ``max_admission_blocks_per_request``).
"""

from dataclasses import replace

from .v0_21 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 26, 0), models_typo=False)
