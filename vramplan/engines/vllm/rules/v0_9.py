"""vllm-ascend 0.9-0.13 (with vLLM 0.9-0.13): the NPU worker's own budget, read in 0.9.0rc2, 0.12.0rc1, 0.13.0.

Ascend only. The vLLM side follows the v0.19 rules (KV cache groups, block counts and the logged
``GPU KV cache size`` as ``num_blocks // groups x block``); vllm-ascend's worker differs:

- ``vllm_ascend/worker/worker_v1.py:NPUWorker.determine_available_memory``: no init snapshot and no
  startup free-memory check; after ``profile_run``, ``peak = torch allocated peak`` (weights included)
  ``+ (total - free - torch allocated)``, so the runtime context, HCCL buffers and other programs all
  count inside the budget; ``KV = max(int(total x util - peak), 0)``.
- ``vllm_ascend/worker/model_runner_v1.py:NPUModelRunner.profile_run``: one dummy forward and
  ``compute_logits``; no sampler ("TODO: need to run a dummy sampler").
- ``vllm_ascend/platform.py:NPUPlatform.check_and_update_config``: block size 128.
- ``vllm_ascend/patch/platform/patch_mamba_config.py`` (0.12/0.13): hybrid models raise the attention block
  to ``128 x cdiv(mamba page, 128 x attention bytes per token)`` and pad the mamba page to it.
- ``NPUModelRunner._allocate_kv_cache_tensors`` (0.12/0.13): a KV tensor shared by attention and
  linear-attention layers gets a K/V buffer pair and a separate linear-attention buffer, twice the bytes
  the scheduler planned ("TODO: REFACTOR ME to sharing hybrid cache"); vllm-ascend 0.18 shares one buffer.

vllm-ascend 0.14 moved to vLLM's ``memory_profiling`` (the v0.19 rules' Ascend path).
"""

from dataclasses import replace

from .v0_19 import RULES as _V019

RULES = replace(_V019, version=(0, 12, 0), non_kv_formula="absolute_peak", profile_runs_sampler=False,
                npu_hybrid_double_alloc=True, mamba_blocks_check=False,
                # read in vLLM 0.19+ only; vllm-ascend's runner keeps the fitted terms
                moe_workspace_manager=False, mla_profile_dummy=False)
