"""vLLM v0.33.0 (wheel commit g4ba787ec9), read end to end. Since v0.29: cuBLAS/cuBLASLt
handles are created in ``Worker.init_device`` before the snapshot (so their workspaces sit
outside the budget; the switch ``cublas_handles_in_init_device`` is set here, at the first release that pins torch
2.14, because the context it brings, 0.70 GiB, was measured under torch 2.14 (vLLM 0.34.0); 0.29-0.32 keep the
0.26 figure, unmeasured); the custom all-reduce's staging buffer grows to 16 MiB, it adds a
multicast-only symmetric-memory buffer, and FlashInfer's all-reduce is on by default (rules/comm.py
``COMM_V033``); GB10 stays on the small batch tier; the YaRN factor is no longer applied
to ``max_position_embeddings`` (v0.30, rules/v0_30.py); ``mamba_cache_mode="all"`` is gone (v0.32, rules/v0_32.py)."""

from dataclasses import replace

from .comm import COMM_V033
from .v0_32 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 33, 0), cublas_handles_in_init_device=True,
                # vLLM v0.33.0 vllm/model_executor/models/interfaces.py:SupportsMultiModal._mark_tower_model
                tower_first_pp_stage_only=True,
                comm=COMM_V033,
                # vLLM v0.33.0 vllm/engine/arg_utils.py:EngineArgs.get_batch_defaults (GB10)
                gb10_small_batch_tier=True,
                # vLLM v0.33.0 vllm/v1/attention/backends/flash_attn.py:FlashAttentionBackend.get_preferred_block_size
                fa4_head256_block=True,
                # vLLM v0.33.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size
                hybrid_mla_align_128=True, prefill_checkpoint_blocks=True,
                # vLLM v0.33.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (is_xpu)
                graph_estimate_on_xpu=True,
                # vLLM v0.33.0 vllm/config/cache.py:CacheDType
                kv_dtypes_v033=True,
                # vLLM v0.33.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.load_model
                v2_load_log_says_memory=True,
                # measured on 0.34 (data/truth/logs/h100e/q8b_g_unset: the compiled profile peak is the eager one,
                # 1.04 GiB); set at the first release that pins torch 2.14, like the context above
                compiled_embedding_copy=False,
                # measured on 0.33 (h100g/q06b_g_base, 0.24 GiB) and 0.34 (h100e/q8b_g_unset, 0.70 GiB)
                v2_graph_pool_base_gib=0.10,
                # vLLM v0.33.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner._dummy_sampler_run
                sampler_fp32_warmup_pass=True)
