"""Backends without a device: a fake pynvml module, a scripted nvidia-smi, auto-selection errors."""

from __future__ import annotations

import sys
import types

import pytest

from vramplan.errors import DeviceError, InputError
from vramplan.watch import backends as B

MiB = 1 << 20
GiB = 1 << 30


class _NVMLError(Exception):
    pass


def _fake_pynvml(*, v2: bool = True, procs_supported: bool = True, fail_init: bool = False) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.calls = []
    if v2:
        m.nvmlMemory_v2 = object()

    def init():
        if fail_init:
            raise _NVMLError("Driver Not Loaded")
        m.calls.append("init")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: 2
    m.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"
    m.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3" if h == "h0" else "NVIDIA H100 80GB HBM3"

    def mem(h, version=None):
        # an H100: NVML total 81559 MiB, of which 482 MiB reserved by the driver (CUDA sees 81077 MiB)
        if version is not None:
            return types.SimpleNamespace(total=81559 * MiB, reserved=482 * MiB, used=(1000 if h == "h0" else 0) * MiB,
                                         free=(81559 - 482 - (1000 if h == "h0" else 0)) * MiB)
        return types.SimpleNamespace(total=81559 * MiB, used=(1482 if h == "h0" else 482) * MiB, free=0)

    m.nvmlDeviceGetMemoryInfo = mem

    def procs(h):
        if not procs_supported:
            raise _NVMLError("Not Supported")
        if h == "h0":
            return [types.SimpleNamespace(pid=11, usedGpuMemory=900 * MiB), types.SimpleNamespace(pid=12, usedGpuMemory=None)]
        return []

    m.nvmlDeviceGetComputeRunningProcesses = procs
    return m


def test_nvml_backend_reads_v2_memory_as_cuda_counts_it(monkeypatch):
    fake = _fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    be = B.NvmlBackend()
    r = be.read()
    assert [x.device for x in r] == ["0", "1"]
    assert r[0].name == "NVIDIA H100 80GB HBM3" and r[1].name == "NVIDIA H100 80GB HBM3"
    assert r[0].used_bytes == 1000 * MiB
    assert r[0].total_bytes == (81559 - 482) * MiB  # 79.18 GiB, the total vLLM logs on an H100
    assert r[0].processes == {11: 900 * MiB}  # a process NVML cannot measure is left out
    assert r[1].processes == {}
    be.close()
    be.close()
    assert fake.calls == ["init", "shutdown"]


def test_nvml_backend_falls_back_to_v1_and_tolerates_no_process_list(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(v2=False, procs_supported=False))
    r = B.NvmlBackend().read()
    assert r[0].used_bytes == 1482 * MiB and r[0].total_bytes == 81559 * MiB
    assert r[0].processes == {}


def test_nvml_backend_that_cannot_start_is_a_device_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(fail_init=True))
    with pytest.raises(DeviceError, match="NVML could not start"):
        B.NvmlBackend()


def test_auto_with_nothing_found_is_the_documented_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    monkeypatch.setattr(B.shutil, "which", lambda name: None)
    with pytest.raises(DeviceError) as e:
        B.select_backend("auto")
    assert str(e.value) == "no NVIDIA driver (NVML) or Ascend npu-smi found on this machine"
    assert e.value.hint == "run watch on the machine that serves, or use --backend"
    assert isinstance(e.value, InputError)  # exit 2 in the CLI
    with pytest.raises(DeviceError, match="nvidia-ml-py"):
        B.select_backend("nvml")
    with pytest.raises(DeviceError, match="npu-smi is not on PATH"):
        B.select_backend("npu-smi")
    with pytest.raises(DeviceError, match="unknown backend"):
        B.select_backend("rocm-smi")


def test_auto_picks_npu_smi_when_nvml_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(B.shutil, "which", lambda name: "/usr/local/bin/npu-smi" if name == "npu-smi" else None)
    assert B.select_backend("auto").name == "npu-smi"


def test_nvidia_smi_backend_parses_csv_and_matches_processes_by_bus_id():
    calls = []

    def runner(args):
        calls.append(args[0])
        if args[0].startswith("--query-gpu"):
            if "memory.reserved" in args[0]:
                raise RuntimeError("Field 'memory.reserved' is not a valid field to query.")
            return "0, NVIDIA H100 80GB HBM3, 00000000:19:00.0, 10562, 81559\n1, NVIDIA H100 80GB HBM3, 00000000:3B:00.0, 4, 81559\n"
        return "00000000:19:00.0, 4321, 10048\n"

    be = B.NvidiaSmiBackend(runner=runner)
    r = be.read()
    assert [(x.device, x.used_bytes // MiB, x.total_bytes // MiB) for x in r] == [("0", 10562, 81559), ("1", 4, 81559)]
    assert r[0].processes == {4321: 10048 * MiB} and r[1].processes == {}
    assert be.read()[0].used_bytes == 10562 * MiB  # second read asks without memory.reserved at once
    assert sum("memory.reserved" in c for c in calls) == 1


def test_fake_backend_script_and_failure():
    one = [B.DeviceReading(device="0", used_bytes=1, total_bytes=10)]
    two = [B.DeviceReading(device="0", used_bytes=2, total_bytes=10)]
    be = B.FakeBackend([one, two], fail_after=3)
    assert [be.read()[0].used_bytes for _ in range(3)] == [1, 2, 2]
    with pytest.raises(RuntimeError, match="device lost"):
        be.read()


def test_fake_backend_from_state_file(tmp_path):
    state = tmp_path / "state"
    be = B.FakeBackend.from_state_file(state, base_bytes=5, total_bytes=100)
    assert be.read()[0].used_bytes == 5  # no file yet
    state.write_text("1234 40\n")
    r = be.read()[0]
    assert (r.used_bytes, r.processes) == (45, {1234: 40})

