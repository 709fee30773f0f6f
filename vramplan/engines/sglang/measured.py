"""SGLang's empirical startup terms, measured on real SGLang startups (not read from source).

Each figure comes from ``data/truth_sglang/cases.jsonl`` (real SGLang 0.5.17 on one H100 80GB HBM3, dummy weights,
``bench/truth/sglang/``) and says which runs it rests on. Where a figure was not measured (other platforms, TP > 1),
the planner keeps vramplan's vLLM-fitted stand-in and labels it so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...units import GiB, MiB

__all__ = ["PreloadUse", "preload_use", "AFTER_BASELINE_TP1_BYTES", "NT_INCREASE_TP1_BYTES", "NT_INCREASE_BASIS", "mm_ipc_pool_bytes"]

# In use before SGLang loads the weights on an H100 whose torch total is 79.18 GiB (81080 MiB), two figures:
# - at the baseline (``pre_model_load_memory``, taken at the end of init_torch_distributed, that the fraction
#   multiplies): 78.577 GB free, from q8b_frac018_fail.log's own arithmetic "minimum viable = 1 - available/pre =
#   0.1953" with available 63.23 (kv_cache_configurator.py:_profile_available_bytes): 617 MiB in use (the scheduler's
#   CUDA context, torch, the TP group: "Init torch distributed ends. ... mem usage=0.09 GB");
# - at "Load weight begin. avail mem=78.50 GB": 79 MiB more, allocated between the baseline and the load
#   (11 text-model runs at 78.50: Qwen3-8B x 8, Llama-3.1-8B, Qwen3-0.6B, DeepSeek-V2-Lite x 2; 78.48 for the two
#   Qwen3-30B-A3B runs). The vLLM stand-in (a bare vLLM worker at its snapshot) was 522 MiB.
PRELOAD_TP1_BYTES = 617 * MiB
AFTER_BASELINE_TP1_BYTES = 79 * MiB
PRELOAD_BASIS = ("measured: SGLang 0.5.17, one H100, 13 text-model startups (data/truth_sglang h100a): "
                 "'Load weight begin. avail mem=78.50 GB' (78.48 for the two MoE runs) of 79.18 GiB, of which "
                 "0.08 GiB after the baseline (q8b_frac018_fail: 'minimum viable = 1 - available/pre = 0.1953')")

# What appears between "Memory pool end" and the scheduler's available_gpu_mem outside the graphs (workspaces of the
# first kernels): 12.38 -> 12.28 (Qwen3-8B, graphs off), 11.59 -> 11.49 (Qwen3-30B-A3B, graphs off),
# 13.22 - 1.44 - 0.26 = 11.52 -> 11.43 (Qwen3-8B, graphs on).
NT_INCREASE_TP1_BYTES = int(round(0.10 * GiB / MiB)) * MiB
NT_INCREASE_BASIS = ("measured: SGLang 0.5.17, one H100 (data/truth_sglang h100a q8b_nograph, moe_nograph_frac085, "
                     "q8b_default): 0.09-0.10 GiB between 'Memory pool end' and available_gpu_mem, graphs aside")


@dataclass(frozen=True, slots=True)
class PreloadUse:
    bytes: int
    basis: str
    measured_on_sglang: bool


def preload_use(platform: str, *, standin_bytes: int, standin_tp1_bytes: int, standin_basis: str,
                tp: int, pp: int) -> PreloadUse:
    """Device memory in use before SGLang loads the weights (the baseline of ``mem_fraction_static``).

    On CUDA: the measured single-GPU figure, plus under TP/PP the stand-in's NCCL growth over its own single-GPU
    figure (not measured on SGLang). Elsewhere the vLLM-fitted stand-in."""
    if platform != "cuda":
        return PreloadUse(standin_bytes, standin_basis, False)
    if tp * pp == 1:
        return PreloadUse(PRELOAD_TP1_BYTES, PRELOAD_BASIS, True)
    extra = max(standin_bytes - standin_tp1_bytes, 0)
    return PreloadUse(PRELOAD_TP1_BYTES + extra,
                      PRELOAD_BASIS + f"; + {extra / GiB:.2f} GiB of NCCL under TP/PP from the vLLM stand-in "
                      f"({standin_basis})", False)


def mm_ipc_pool_bytes(*, pool_mib: int, workers: int, context_bytes: int) -> int:
    """The CUDA-IPC multimodal feature pool the tokenizer side allocates on the GPU before the weights load
    (sglang 0.5.17 multimodal/processors/base_processor.py: ``MmItemMemoryPool(per_worker_pool_size)`` in each
    tokenizer worker, per-worker share of SGLANG_MM_FEATURE_CACHE_MB), plus the CUDA context each of those processes
    opens to hold it. Measured once: Qwen2.5-VL-3B logged 76.99 GB free before loading, 1.51 GiB below the text
    models (1.00 pool + 0.51, the per-process context of the vLLM stand-in)."""
    per_worker = pool_mib * MiB // max(workers, 1)
    return per_worker * workers + context_bytes * workers
