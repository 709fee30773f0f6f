"""`npu-smi info` tables parsed to exact numbers (fixtures in tests/fixtures/npu_smi/).

Expected values are the numbers printed in the fixtures (MB read as MiB), the seed's
"before 3409 MB / after 59614 MB, process 56257 MB" among them (seeds/001).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vramplan.watch.backends import NpuSmiBackend
from vramplan.watch.npu_smi import parse_npu_smi_info

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "npu_smi"
MiB = 1 << 20


def _text(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def test_910b_single_idle_is_the_seed_before_start():
    info = parse_npu_smi_info(_text("910b_single_idle.txt"))
    assert info.version == "23.0.6"
    assert len(info.chips) == 1
    c = info.chips[0]
    assert (c.npu_id, c.chip_id, c.name, c.health, c.bus_id) == (0, 0, "910B3", "OK", "0000:C1:00.0")
    assert c.used_bytes == 3409 * MiB
    assert c.total_bytes == 65536 * MiB
    assert c.source_column == "HBM-Usage(MB)"
    assert info.processes == ()
    assert info.warnings == ()


def test_910b_tp2_serving_devices_and_processes():
    info = parse_npu_smi_info(_text("910b_tp2_serving.txt"))
    assert [(c.npu_id, c.used_bytes // MiB, c.total_bytes // MiB) for c in info.chips] == [
        (0, 59614, 65536),  # "59614/ 65536": no space before the slash
        (1, 59603, 65536),
        (2, 3398, 65536),
        (3, 3401, 65536),
    ]
    assert [(p.npu_id, p.chip_id, p.pid, p.name, p.memory_bytes) for p in info.processes] == [
        (0, 0, 2436761, "python3.11", 56257 * MiB),
        (1, 0, 2436762, "python3.11", 56246 * MiB),
    ]
    assert info.warnings == ()


def test_old_910_reads_hbm_not_the_ddr_memory_column():
    info = parse_npu_smi_info(_text("910_v22_old.txt"))
    assert info.version == "22.0.4"
    # Memory-Usage(MB) is 2603 / 15039 (DDR); HBM-Usage(MB) is 1 / 32768
    assert [(c.npu_id, c.name, c.health, c.used_bytes // MiB, c.total_bytes // MiB) for c in info.chips] == [
        (0, "910ProB", "OK", 1, 32768),
        (1, "910ProB", "Warning", 29734, 32768),
    ]
    # a "-" process memory is kept as unknown, not 0
    assert [(p.pid, p.memory_bytes) for p in info.processes] == [(118822, 29733 * MiB), (118901, None)]


def test_backend_readings_from_the_seed_table():
    backend = NpuSmiBackend(runner=lambda: _text("910b_tp2_serving.txt"))
    readings = backend.read()
    assert [r.device for r in readings] == ["0", "1", "2", "3"]
    r0 = readings[0]
    assert r0.name == "910B3"
    assert r0.used_bytes == 59614 * MiB and r0.total_bytes == 65536 * MiB
    assert r0.processes == {2436761: 56257 * MiB}
    assert readings[2].processes == {}


def test_multi_chip_npus_are_labelled_npu_dot_chip_and_memory_usage_is_used_without_hbm():
    # a two-chip inference card (310P3 Duo style): "Chip Device" header, no HBM column
    text = """\
| npu-smi 23.0.0                   Version: 23.0.0                                            |
| NPU     Name                | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device              | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===========================+===============+====================================================+
| 8       310P3               | OK              | NA           39                0     / 0              |
| 0       0                   | 0000:01:00.0    | 0            1764 / 21527                             |
+===========================+===============+====================================================+
| 8       310P3               | OK              | NA           40                0     / 0              |
| 1       1                   | 0000:01:00.0    | 0            1500 / 21527                             |
+===========================+===============+====================================================+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
| 8       1                 | 4242          | python3                  | 120                     |
"""
    backend = NpuSmiBackend(runner=lambda: text)
    readings = backend.read()
    assert [(r.device, r.used_bytes // MiB, r.total_bytes // MiB) for r in readings] == [("8.0", 1764, 21527), ("8.1", 1500, 21527)]
    assert readings[1].processes == {4242: 120 * MiB}


def test_garbage_gives_no_chips_and_the_backend_says_so():
    assert parse_npu_smi_info("dcmi module initialize failed. ret is -8005\n").chips == ()
    with pytest.raises(RuntimeError, match="no device table"):
        NpuSmiBackend(runner=lambda: "command not found\n").read()


def test_real_rows_pasted_from_a_910b4():
    # captured output (a public vLLM issue): "2787 / 32768" MB HBM on an idle 910B4, header cut off
    info = parse_npu_smi_info(_text("910b4_real_rows.txt"))
    assert len(info.chips) == 1
    chip = info.chips[0]
    assert chip.name == "910B4" and chip.health == "OK" and chip.bus_id == "0000:C1:00.0"
    assert chip.used_bytes == 2787 * 2**20 and chip.total_bytes == 32768 * 2**20
