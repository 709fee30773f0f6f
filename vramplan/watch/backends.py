"""Where device-memory readings come from: NVML, ``npu-smi``, ``nvidia-smi``, or a script.

A backend answers :meth:`Backend.read` with one :class:`DeviceReading` per device.
It is called from the sampler thread only. NVML (``nvidia-ml-py``) is imported
inside :class:`NvmlBackend`, so ``import vramplan.watch`` never loads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import DeviceError
from ..units import MiB
from .npu_smi import parse_npu_smi_info

__all__ = [
    "DeviceReading",
    "Backend",
    "NvmlBackend",
    "NpuSmiBackend",
    "NvidiaSmiBackend",
    "FakeBackend",
    "BACKEND_NAMES",
    "select_backend",
]

from ._names import BACKEND_NAMES  # noqa: E402


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceReading:
    """One device's memory at one moment."""

    device: str
    """A stable label: the NVML index (``"0"``), the NPU id, or ``"npu.chip"`` on multi-chip NPUs."""
    name: str = ""
    """Product name as the driver gives it (``NVIDIA H100 80GB HBM3``, ``910B3``)."""
    used_bytes: int
    """Memory in use on the device, by anyone."""
    total_bytes: int
    """Memory the device offers (for NVML: total less what the driver reserves, as CUDA counts it)."""
    processes: dict[int, int] = field(default_factory=dict)
    """Per-process use, pid -> bytes, for the processes the driver lists (those it can measure)."""


class Backend(Protocol):
    """What the sampler needs from a source of readings."""

    name: str
    default_interval_s: float

    def read(self) -> list[DeviceReading]:
        """All devices now. May raise; the sampler records the failure."""
        ...

    def close(self) -> None:
        """Release the driver handle (idempotent)."""
        ...


class NvmlBackend:
    """NVIDIA devices through NVML (package ``nvidia-ml-py``, module ``pynvml``)."""

    name = "nvml"
    default_interval_s = 0.1

    def __init__(self) -> None:
        try:
            import pynvml  # lazy: only where NVIDIA devices are watched
        except ImportError:
            raise DeviceError(
                "the NVML backend needs the package nvidia-ml-py, which is not installed",
                hint="pip install 'vramplan[nvidia]', or use --backend nvidia-smi",
            ) from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise DeviceError(f"NVML could not start: {e}", hint="check the NVIDIA driver, or use --backend npu-smi") from None
        self._nvml = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self._names = []
        for h in self._handles:
            n = pynvml.nvmlDeviceGetName(h)
            self._names.append(n.decode() if isinstance(n, bytes) else str(n))
        self._v2 = hasattr(pynvml, "nvmlMemory_v2")
        self._closed = False

    def _memory(self, handle) -> tuple[int, int]:
        nv = self._nvml
        if self._v2:
            try:
                m = nv.nvmlDeviceGetMemoryInfo(handle, version=nv.nvmlMemory_v2)
                # v2: total = reserved + used + free; CUDA (and so vLLM) sees total - reserved
                return int(m.used), int(m.total) - int(m.reserved)
            except (nv.NVMLError, TypeError, AttributeError):
                self._v2 = False
        m = nv.nvmlDeviceGetMemoryInfo(handle)
        return int(m.used), int(m.total)

    def read(self) -> list[DeviceReading]:
        nv = self._nvml
        out = []
        for i, h in enumerate(self._handles):
            used, total = self._memory(h)
            procs: dict[int, int] = {}
            try:
                for p in nv.nvmlDeviceGetComputeRunningProcesses(h):
                    mem = getattr(p, "usedGpuMemory", None)
                    if mem is not None:
                        procs[int(p.pid)] = procs.get(int(p.pid), 0) + int(mem)
            except nv.NVMLError:
                pass  # not supported (MIG, some vGPUs): device totals only
            out.append(DeviceReading(device=str(i), name=self._names[i], used_bytes=used, total_bytes=total, processes=procs))
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass


def _run(argv: Sequence[str], timeout_s: float) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


class NpuSmiBackend:
    """Huawei Ascend NPUs by running ``npu-smi info`` and reading its table.

    ``npu-smi info`` takes from a few tens of milliseconds to about a second, so the
    sampler runs no faster than it answers; each sample's time is when it was asked.
    """

    name = "npu-smi"
    default_interval_s = 0.2

    def __init__(self, *, executable: str | None = None, runner: Callable[[], str] | None = None, timeout_s: float = 10.0) -> None:
        if runner is None:
            exe = executable or shutil.which("npu-smi")
            if exe is None:
                raise DeviceError("npu-smi is not on PATH", hint="run watch on the Ascend machine that serves, or use --backend nvml")
            runner = lambda: _run([exe, "info"], timeout_s)  # noqa: E731
        self._runner = runner
        self.last_warnings: tuple[str, ...] = ()

    def read(self) -> list[DeviceReading]:
        info = parse_npu_smi_info(self._runner())
        self.last_warnings = info.warnings
        if not info.chips:
            raise RuntimeError("npu-smi info printed no device table that could be read")
        chips_per_npu: dict[int, int] = {}
        for c in info.chips:
            chips_per_npu[c.npu_id] = chips_per_npu.get(c.npu_id, 0) + 1
        multi = any(n > 1 for n in chips_per_npu.values())
        out = []
        for c in info.chips:
            procs: dict[int, int] = {}
            for p in info.processes:
                if p.npu_id == c.npu_id and p.chip_id == c.chip_id and p.memory_bytes is not None:
                    procs[p.pid] = procs.get(p.pid, 0) + p.memory_bytes
            label = f"{c.npu_id}.{c.chip_id}" if multi else str(c.npu_id)
            out.append(DeviceReading(device=label, name=c.name, used_bytes=c.used_bytes, total_bytes=c.total_bytes, processes=procs))
        return out

    def close(self) -> None:
        pass


class NvidiaSmiBackend:
    """NVIDIA devices through the ``nvidia-smi`` command, where ``nvidia-ml-py`` is missing.

    Reads ``--query-gpu=index,name,memory.used,memory.total,memory.reserved`` and
    ``--query-compute-apps=gpu_bus_id,pid,used_memory`` (MiB).
    """

    name = "nvidia-smi"
    default_interval_s = 0.2

    def __init__(self, *, executable: str | None = None, runner: Callable[[list[str]], str] | None = None, timeout_s: float = 10.0) -> None:
        if runner is None:
            exe = executable or shutil.which("nvidia-smi")
            if exe is None:
                raise DeviceError("nvidia-smi is not on PATH", hint="run watch on the machine that serves")
            runner = lambda args: _run([exe, *args], timeout_s)  # noqa: E731
        self._runner = runner
        self._reserved = True

    def _gpus(self) -> list[list[str]]:
        fields = "index,name,pci.bus_id,memory.used,memory.total" + (",memory.reserved" if self._reserved else "")
        try:
            text = self._runner([f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
        except RuntimeError:
            if not self._reserved:
                raise
            self._reserved = False  # older nvidia-smi: no memory.reserved field
            return self._gpus()
        return [[c.strip() for c in line.split(",")] for line in text.splitlines() if line.strip()]

    def read(self) -> list[DeviceReading]:
        rows = self._gpus()
        procs_by_bus: dict[str, dict[int, int]] = {}
        try:
            text = self._runner(["--query-compute-apps=gpu_bus_id,pid,used_memory", "--format=csv,noheader,nounits"])
            for line in text.splitlines():
                parts = [c.strip() for c in line.split(",")]
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    d = procs_by_bus.setdefault(parts[0].lower(), {})
                    d[int(parts[1])] = d.get(int(parts[1]), 0) + int(parts[2]) * MiB
        except RuntimeError:
            pass
        out = []
        for r in rows:
            index, name, bus, used, total = r[:5]
            reserved = int(r[5]) if len(r) > 5 and r[5].isdigit() else 0
            out.append(
                DeviceReading(
                    device=index,
                    name=name,
                    used_bytes=int(used) * MiB,
                    total_bytes=(int(total) - reserved) * MiB,
                    processes=procs_by_bus.get(bus.lower(), {}),
                )
            )
        return out

    def close(self) -> None:
        pass


class FakeBackend:
    """Scripted readings for tests and demos.

    ``script`` is either a sequence of reading lists (one per call; the last one
    repeats) or a callable returning the readings for each call. ``fail_after``
    makes every call after that many raise ``RuntimeError`` (a driver going away).
    """

    name = "fake"

    def __init__(
        self,
        script: Sequence[Sequence[DeviceReading]] | Callable[[], Iterable[DeviceReading]],
        *,
        fail_after: int | None = None,
        default_interval_s: float = 0.02,
    ) -> None:
        self._script = script
        self.fail_after = fail_after
        self.default_interval_s = default_interval_s
        self.num_reads = 0
        self.closed = False
        self._lock = threading.Lock()

    def read(self) -> list[DeviceReading]:
        with self._lock:
            n = self.num_reads
            self.num_reads += 1
        if self.fail_after is not None and n >= self.fail_after:
            raise RuntimeError(f"fake backend: device lost after {self.fail_after} readings")
        if callable(self._script):
            return list(self._script())
        script = list(self._script)
        return list(script[min(n, len(script) - 1)])

    def close(self) -> None:
        self.closed = True

    @classmethod
    def from_state_file(cls, path: str | os.PathLike[str], *, total_bytes: int = 80 * 1024 * MiB,
                        base_bytes: int = 0, device: str = "0", **kw) -> "FakeBackend":
        """Readings driven by a file that a fake server rewrites: ``<pid> <bytes>`` on one line.

        Device use is ``base_bytes`` plus the bytes in the file, and the pid holds them.
        A missing or half-written file reads as nothing allocated.
        """

        def script() -> list[DeviceReading]:
            pid, held = 0, 0
            try:
                with open(path, encoding="ascii") as f:
                    parts = f.read().split()
                pid, held = int(parts[0]), int(parts[1])
            except (OSError, ValueError, IndexError):
                pass
            procs = {pid: held} if pid else {}
            return [DeviceReading(device=device, name="FakeGPU", used_bytes=base_bytes + held, total_bytes=total_bytes, processes=procs)]

        return cls(script, **kw)


def select_backend(name: str = "auto") -> Backend:
    """Open the backend named, or the first that works: NVML, then npu-smi, then nvidia-smi.

    Raises :class:`DeviceError` when none is found (or the one named cannot start).
    """
    if name == "nvml":
        return NvmlBackend()
    if name == "npu-smi":
        return NpuSmiBackend()
    if name == "nvidia-smi":
        return NvidiaSmiBackend()
    if name != "auto":
        raise DeviceError(f"unknown backend {name!r}", hint=f"use one of {', '.join(BACKEND_NAMES)}")
    try:
        return NvmlBackend()
    except DeviceError:
        pass
    if shutil.which("npu-smi"):
        return NpuSmiBackend()
    if shutil.which("nvidia-smi"):
        return NvidiaSmiBackend()
    raise DeviceError(
        "no NVIDIA driver (NVML) or Ascend npu-smi found on this machine",
        hint="run watch on the machine that serves, or use --backend",
    )
