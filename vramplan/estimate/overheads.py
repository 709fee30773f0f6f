"""Non-torch memory and CUDA-graph memory: the terms vLLM measures, modelled from measurements.

Non-torch memory comes in two parts that vLLM treats differently:

- memory already used when the worker takes its init snapshot (the CUDA context, NCCL and
  custom all-reduce buffers on CUDA): it is outside the budget, but it lowers the free
  memory the startup check compares with ``total x util``;
- the non-torch increase during profiling (``non-torch forward increase memory``: lazily
  created library workspaces, attention-backend buffers; on Ascend also HCCL, since
  vllm-ascend takes its snapshot before HCCL starts): it is inside the non-KV total.

CUDA graphs are captured after the KV cache is allocated
(``compile_or_warm_up_model -> capture_model``). vLLM estimates them before sizing the KV
cache (``profile_cudagraph_memory``: capture the two largest descriptors of each runtime
mode, extrapolate linearly) and subtracts the estimate where the version and the
``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` switch say so.

The numbers below are measurements, each with its source; ``bench/fit_overheads.py``
re-derives them from ``data/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.description import ModelDescription
from ..units import MiB

__all__ = ["Overheads", "non_torch", "cudagraph"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Overheads:
    before_snapshot_bytes: int
    """Used by this process before vLLM's snapshot: outside the budget, lowers free memory."""
    increase_bytes: int
    """Non-torch increase during profiling: inside the non-KV total."""
    basis: str


# platform -> (context at snapshot, increase during profiling) for TP=1, in MiB
_NON_TORCH_TP1 = {
    "cuda": (522, 225, "measured: H100, vLLM 0.26 (data/device_v026: cuda_memory 0.51 GiB at the snapshot, "
                       "non-torch forward increase 0.22 GiB in all 8 runs)"),
    "rocm": (522, 460, "reported: ROCm V0/V1 logs in data/public show 0.46-0.62 GiB non-torch"),
    "ascend": (358, 235, "measured: seed 001 (Ascend 910B, vllm-ascend): 0.35 G non-torch before HCCL"),
}
# extra per rank when TP > 1: NCCL communicator buffers and the custom all-reduce IPC buffers
_TP_EXTRA = {
    "cuda": (160, 320, "estimated: NCCL + custom all-reduce buffers at TP>1 (to be replaced by data/truth TP=2 runs)"),
    "rocm": (160, 320, "estimated like CUDA"),
    "ascend": (0, 325, "measured: seed 001 TP=2 non-torch forward increase 0.56 GiB (HCCL after the snapshot)"),
}


def non_torch(platform: str, *, tp: int, pp: int = 1) -> Overheads:
    ctx, inc, src = _NON_TORCH_TP1.get(platform, _NON_TORCH_TP1["cuda"])
    basis = src
    if tp > 1 or pp > 1:
        ectx, einc, esrc = _TP_EXTRA.get(platform, _TP_EXTRA["cuda"])
        ctx, inc = ctx + ectx, inc + einc
        basis = f"{src}; {esrc}"
    return Overheads(before_snapshot_bytes=ctx * MiB, increase_bytes=inc * MiB, basis=basis)


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphMemory:
    estimate_bytes: int
    """What vLLM's ``profile_cudagraph_memory`` would report (0 where it does not estimate)."""
    actual_bytes: int
    """The pool the real capture takes after the KV cache is allocated."""
    num_piecewise: int
    num_full: int
    basis: str


def cudagraph(model: ModelDescription, *, mode: str, capture_sizes: tuple[int, ...], runner_estimates: bool,
              num_layers: int, tp: int) -> GraphMemory:
    """CUDA-graph memory for the given capture sizes.

    The estimate mirrors vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:
    GPUModelRunner.profile_cudagraph_memory: per runtime mode, the first capture's cost plus
    ``(n - 1) x`` the second's; the total is the largest first capture plus every mode's
    per-graph costs. First-capture and per-graph costs are measured (Qwen3-30B-A3B, H100,
    data/device_v026: PIECEWISE 102 MiB + 6 MiB/graph at 48 layers, FULL 258 MiB + 2 MiB/graph)
    and scaled per layer for piecewise graphs (one piece per layer).
    """
    if mode == "NONE" or not capture_sizes:
        return GraphMemory(estimate_bytes=0, actual_bytes=0, num_piecewise=0, num_full=0, basis="no CUDA graphs")
    n = len(capture_sizes)
    n_piece = n if "PIECEWISE" in mode else 0
    n_full = n if mode.startswith("FULL") else 0
    per_piece = max(1.0, 6.0 * num_layers / 48) * MiB
    first_piece = 102 * MiB
    first_full = 258 * MiB
    per_full = 2 * MiB
    firsts = [first_piece] * bool(n_piece) + [first_full] * bool(n_full)
    est = max(firsts) + per_piece * max(n_piece - 1, 0) + per_full * max(n_full - 1, 0)
    actual = est  # the real pool; refined against 'CUDA graph pool memory ... (actual)' lines
    return GraphMemory(estimate_bytes=int(est) if runner_estimates else 0, actual_bytes=int(actual),
                       num_piecewise=n_piece, num_full=n_full,
                       basis="first capture + (n-1) x per-graph, measured on H100 (data/device_v026)")
