"""vLLM 0.10-0.16 on CUDA (V1 engine), read in 0.10.1, 0.11.0 and 0.12.0 where they differ from v0.19
(the sampler also in 0.15.1 and 0.16.0).

Two rules change the startup memory enough to change the verdict; the rest follows the v0.19 rules:

- the dummy sampler run (``vllm/v1/worker/gpu_model_runner.py:GPUModelRunner._dummy_sampler_run``:
  ``min(max_num_batched_tokens, max_num_seqs)`` rows, temperature 0.5, top-p 0.9, top-k vocab-1) goes
  through ``vllm/v1/sample/ops/topk_topp_sampler.py:apply_top_k_top_p``, a full PyTorch sort of the
  float32 logits, unless FlashInfer is installed (``VLLM_USE_FLASHINFER_SAMPLER`` unset means "if it
  imports"; the pip wheels do not bring it). At the sort about 38 bytes per (row x vocab) element are
  live: bf16 logits 2, their float32 copy 4, sorted values 4, int64 indices 8, the segmented sort's
  scratch 20 (measured on an H100, data/sampler_sort_h100). 0.17.0 replaced the sort with a Triton
  top-k/top-p kernel for 8 rows or more (``apply_top_k_top_p_triton``), which the activation fit
  (14.7 bytes, vLLM 0.26) measures.
- mxfp4 (gpt-oss) experts run on Marlin on Hopper: ``triton_kernels`` is not bundled before 0.14
  (rules/engine.py ``_mxfp4_backend``, selected by version already).

On an H100 80GB ``vllm serve`` defaults to ``max_num_seqs`` 1024, so the sampler alone holds
1024 x vocab x 38 bytes: 7.3 GiB for gpt-oss's 201,088-token vocabulary.
"""

from dataclasses import replace

from .v0_19 import RULES as _V019

# the workspace manager and the MLA profile dummy were read in 0.19 only: 0.10-0.16 keep the fitted terms
RULES = replace(_V019, version=(0, 10, 1), sort_sampler=True, moe_workspace_manager=False, mla_profile_dummy=False)
