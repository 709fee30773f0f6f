"""Weights that do not fit: vLLM runs out of memory while loading, before any profiling.

vLLM's startup order (v0.26.0/v0.33.0 ``vllm/v1/worker/gpu_worker.py``): ``Worker.init_device`` takes
the memory snapshot and checks ``free >= ceil(total x util)`` (the startup check), then
``Worker.load_model`` -> ``GPUModelRunner.load_model`` allocates every parameter of the model and copies
the checkpoint in. The budget (util) plays no part while loading: a tensor is allocated if the
device has room for it, so loading fails exactly when this rank's weights exceed what is free on
the device when loading starts, i.e. total - other programs - what the runtime already holds (the
CUDA context, and under TP/PP the NCCL communicators and all-reduce buffers set up in
``init_worker_distributed_environment``). PyTorch's caching allocator then raises
``torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ...`` for the first tensor that does
not fit (``c10/cuda/CUDACachingAllocator.cpp``); ``load_model`` does not catch it. The V0 engine
(vLLM 0.6) loads the same way (``vllm/worker/model_runner.py:GPUModelRunnerBase.load_model``).

Which tensor fails, and so the "Tried to allocate" size, depends on the order the model's modules
allocate their parameters: it is not predicted, and the message says so instead of inventing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ...units import format_gib

if TYPE_CHECKING:  # pragma: no cover
    from ...inputs.devices import Device
    from .planner import RankPlan

__all__ = ["weights_oom", "oom_word"]


def oom_word(platform: str) -> str:
    """The device word in the allocator's message: ``CUDA`` (torch on NVIDIA), ``HIP`` (torch on ROCm),
    ``NPU`` (torch_npu on Ascend)."""
    return {"rocm": "HIP", "ascend": "NPU"}.get(platform, "CUDA")


def weights_oom(ranks: Sequence["RankPlan"], *, device: "Device", free_before_load_bytes: int,
                used_by_others_bytes: int, context_bytes: int, distributed: bool = False,
                loader: str | None = None) -> str | None:
    """The out-of-memory message when the heaviest rank's weights exceed the free memory, else None."""
    heaviest = max(ranks, key=lambda r: r.bytes_of("weights"))
    weights = heaviest.bytes_of("weights")
    if weights <= free_before_load_bytes:
        return None
    word = oom_word(device.platform)
    g = format_gib
    where = f" on {heaviest.name}" if len(ranks) > 1 else " on each rank" if distributed else ""
    ctx = "runtime context" + (" and communicators" if distributed else "")
    ascend = device.platform == "ascend"
    loader = loader or ("NPUModelRunner.load_model" if ascend else "GPUModelRunner.load_model")
    raiser = "torch_npu raises \"" if ascend else "torch raises \"torch.OutOfMemoryError: "
    return (f"{word} out of memory while loading the model weights ({loader}): {raiser}"
            f"{word} out of memory. Tried to allocate ...\" at the first weight tensor "
            f"that does not fit (which tensor, and its size, depend on the load order and are not predicted). "
            f"The weights{where} take {g(weights)} GiB; {g(max(free_before_load_bytes, 0))} GiB is free when loading "
            f"starts ({g(device.total_bytes)} GiB total - {g(context_bytes)} GiB {ctx} - {g(used_by_others_bytes)} GiB "
            f"other programs): {g(weights - free_before_load_bytes)} GiB short")
