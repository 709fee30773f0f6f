"""vLLM v0.21.0: the logged KV size becomes ``int(concurrency x max_model_len)``
(vllm/v1/core/kv_cache_utils.py:get_kv_cache_capacity) and ``num_gpu_blocks_override`` is
used by auto-fit and the max-model-len check (``get_kv_cache_configs``). The "models's" typo
in the max-len error lasts until v0.21 (fixed in v0.22)."""

from dataclasses import replace

from .v0_20 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 21, 0), kv_tokens_from_concurrency=True, override_in_check=True,
                models_typo=True,
                # vLLM v0.21.0 vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes ("ensure max_num_tokens is captured")
                capture_max_num_tokens=True,
                # vLLM v0.21.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (ROCm no longer skipped)
                graph_estimate_on_rocm=True,
                # vLLM v0.21.0 vllm/v1/worker/gpu_worker.py:Worker.load_model (_scoped_allocator_max_split(20))
                load_max_split_mib=20)
