"""Timeline records -> per-phase levels, planned-vs-measured, the table and the plot.

Records are written by hand here: the seed's Ascend numbers (seeds/001: 3409 MB before
start, 59614 MB after, process 56257 MB) and round numbers whose levels are obvious.
"""

from __future__ import annotations

import json

import pytest

from vramplan.watch.timeline import baseline_bytes, compare_planned, format_levels, load_timeline, phase_levels

MiB = 1 << 20
GiB = 1 << 30


def _s(t, used, phase, device="0", watched=None, total=65536 * MiB):
    return {"type": "sample", "t_s": t, "device": device, "name": "910B3", "used_bytes": used, "total_bytes": total,
            "processes": {} if watched is None else {"7": watched}, "watched_bytes": watched, "phase": phase}


SEED = [
    {"type": "header", "format": "vramplan-watch/1", "argv": ["vllm", "serve", "Qwen/Qwen3-VL-8B-Instruct"], "levels": None},
    _s(0.0, 3409 * MiB, "before_start"),
    {"type": "phase", "t_s": 0.1, "phase": "starting"},
    _s(0.2, 3409 * MiB, "starting"),
    {"type": "phase", "t_s": 1.0, "phase": "weights_loaded"},
    _s(1.2, 3409 * MiB + 10 * GiB, "weights_loaded", watched=10 * GiB),
    _s(1.4, 3409 * MiB + 14 * GiB, "weights_loaded", watched=14 * GiB),
    _s(1.6, 3409 * MiB + 10 * GiB, "weights_loaded", watched=10 * GiB),
    {"type": "phase", "t_s": 2.0, "phase": "ready"},
    _s(2.2, 59614 * MiB, "ready", watched=56257 * MiB),
    _s(2.4, 59614 * MiB, "ready", watched=56257 * MiB),
    {"type": "exit", "t_s": 2.5, "returncode": 0, "signal": None},
    {"type": "end", "t_s": 2.6},
]


def test_phase_levels_first_peak_last():
    lv = phase_levels(SEED)
    assert [(x.phase, x.num_samples) for x in lv] == [("before_start", 1), ("starting", 1), ("weights_loaded", 3), ("ready", 2)]
    w = lv[2]
    assert (w.first_bytes, w.peak_bytes, w.last_bytes) == (3409 * MiB + 10 * GiB, 3409 * MiB + 14 * GiB, 3409 * MiB + 10 * GiB)
    assert (w.t_start_s, w.t_end_s) == (1.2, 1.6)
    assert lv[3].watched_peak_bytes == 56257 * MiB


def test_baseline_is_the_reading_before_start_or_first_minus_watched():
    assert baseline_bytes(SEED) == {"0": 3409 * MiB}
    attached = [_s(0.0, 59614 * MiB, "attached", watched=56257 * MiB)]
    assert baseline_bytes(attached) == {"0": (59614 - 56257) * MiB}
    assert baseline_bytes([_s(0.0, 5 * GiB, "attached")]) == {"0": 5 * GiB}


def test_planned_levels_compare_with_the_matching_phase():
    planned = {"weights": int(9.19 * GiB), "weights+activation": 13 * GiB, "non-KV total": int(13.61 * GiB),
               "requested budget": int(57.91 * GiB), "odd label": 1}
    comps = {c.label: c for c in compare_planned(SEED, planned)}
    assert comps["weights"].measured_bytes == 10 * GiB and comps["weights"].statistic == "first"
    assert comps["weights+activation"].measured_bytes == 14 * GiB and comps["weights+activation"].statistic == "peak"
    assert comps["non-KV total"].measured_bytes == 14 * GiB
    # 59614 - 3409 = 56205 MB above the baseline, against 57.91 GiB requested
    assert comps["requested budget"].measured_bytes == (59614 - 3409) * MiB
    assert comps["requested budget"].difference_bytes == (59614 - 3409) * MiB - int(57.91 * GiB)
    assert comps["odd label"].phase is None and comps["odd label"].measured_bytes is None


def test_devices_that_never_moved_are_not_compared():
    recs = [_s(0, 1 * GiB, "before_start", "0"), _s(0, 1 * GiB, "before_start", "1"),
            _s(1, 5 * GiB, "ready", "0"), _s(1, 1 * GiB, "ready", "1")]
    assert {c.device for c in compare_planned(recs, {"requested budget": 4 * GiB})} == {"0"}


def test_format_levels_table():
    text = format_levels(SEED, {"requested budget": int(57.91 * GiB)})
    lines = text.splitlines()
    assert lines[0].startswith("Measured device memory per phase")
    ready = next(line for line in lines if line.startswith("ready"))
    assert ready.split() == ["ready", "0", "2.2-2.4", "2", "58.22", "58.22", "58.22", "54.89", "54.94"]
    assert "baseline (not the server's): dev 0 3.33 GiB" in text
    row = next(line for line in lines if line.startswith("requested budget"))
    assert row.split()[2:6] == ["0", "57.91", "54.89", "-3.02"]  # peak of ready
    assert format_levels([]) == "no samples were recorded"


def test_load_timeline_skips_a_line_cut_short(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(SEED[1]) + "\n" + '{"type": "sample", "t_s": 0.3, "dev')
    assert load_timeline(p) == [SEED[1]]


def test_plot_png_and_svg_with_planned_levels(tmp_path):
    pytest.importorskip("matplotlib")
    from vramplan.watch.plot import plot_timeline

    png = plot_timeline(SEED, tmp_path / "t.png", levels={"weights": int(9.19 * GiB), "requested budget": int(57.91 * GiB)})
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    svg = plot_timeline(SEED, tmp_path / "t.svg")
    text = open(svg).read()
    assert "<svg" in text and "weights_loaded" in text
    # no samples at all: still a (mostly empty) plot, not an exception
    plot_timeline([SEED[0]], tmp_path / "empty.png")
