"""``vramplan watch``: record a live server's device memory over time and mark its startup phases.

    from vramplan.watch import watch_command
    r = watch_command(["vllm", "serve", "Qwen/Qwen3-8B"], out_dir="w", plan={"weights": 16_384_000_000})
    print(r.levels_text, r.exit_code)

Readings come from NVML (NVIDIA), ``npu-smi info`` (Ascend) or ``nvidia-smi``; phases
from the server's own log lines (:mod:`vramplan.engines.vllm.log` for vLLM,
:mod:`vramplan.engines.sglang.log_stream` for SGLang; :mod:`vramplan.watch.engine` chooses). Output: a JSON-lines
timeline (:mod:`vramplan.watch.timeline`), a plot, the command's log, and a table of
levels per phase. Nothing heavy is imported here (NVML and matplotlib load on use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "watch_command",
    "watch_pid",
    "WatchResult",
    "DeviceReading",
    "FakeBackend",
    "NvmlBackend",
    "NpuSmiBackend",
    "NvidiaSmiBackend",
    "select_backend",
    "parse_npu_smi_info",
    "load_timeline",
    "phase_levels",
    "compare_planned",
    "format_levels",
    "plot_timeline",
]

_WHERE = {
    "watch_command": "runner",
    "watch_pid": "runner",
    "WatchResult": "runner",
    "DeviceReading": "backends",
    "FakeBackend": "backends",
    "NvmlBackend": "backends",
    "NpuSmiBackend": "backends",
    "NvidiaSmiBackend": "backends",
    "select_backend": "backends",
    "parse_npu_smi_info": "npu_smi",
    "load_timeline": "timeline",
    "phase_levels": "timeline",
    "compare_planned": "timeline",
    "format_levels": "timeline",
    "plot_timeline": "plot",
}

if TYPE_CHECKING:  # pragma: no cover
    from .backends import DeviceReading, FakeBackend, NpuSmiBackend, NvidiaSmiBackend, NvmlBackend, select_backend
    from .npu_smi import parse_npu_smi_info
    from .plot import plot_timeline
    from .runner import WatchResult, watch_command, watch_pid
    from .timeline import compare_planned, format_levels, load_timeline, phase_levels


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'vramplan.watch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{mod}", __name__), name)
