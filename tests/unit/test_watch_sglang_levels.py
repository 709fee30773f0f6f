"""watch over an SGLang server draws and prints the planned levels (engines/sglang/watch_levels.py).

The server is the fake of tests/fixtures/fake_sglang.py playing the committed synthetic log
qwen3-8b-h100-default.synthetic.log on a fake 80 GiB device with 300 MiB in use before it starts. Expected figures:

- measured: what the log's own lines say the server holds (the fake holds exactly those bytes);
- logged: the numbers printed in the log lines, read here from the fixture's text with SGLang's format strings;
- planned: a hand calculation of Qwen3-8B from its config (written out below) with SGLang's rules
  (kv_cache_configurator.py:_profile_available_bytes, resolve_max_num_reqs, memory_pool.py buffers), on the pre-load
  use measured on real SGLang 0.5.17 (engines/sglang/measured.py).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_watch_sglang import _launcher as sglang_launcher
from vramplan.engines.sglang.log import read_sglang_log
from vramplan.engines.sglang.watch_levels import (GRAPHS, KV, PEAK, W, device_for, levels_of, log_rows,
                                                  plan_watched_sglang)
from vramplan.watch import runner
from vramplan.watch.backends import DeviceReading, FakeBackend
from vramplan.watch.timeline import load_timeline

GiB = 1 << 30
MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
FAKE = str(ROOT / "tests" / "fixtures" / "fake_sglang.py")
LOG = ROOT / "tests" / "fixtures" / "sglang_logs" / "qwen3-8b-h100-default.synthetic.log"
BASE = 300 * MiB
TOTAL = 80 * GiB  # FakeBackend.from_state_file's device
F = 0.83

# --- Qwen3-8B by hand (vramplan/catalog/Qwen/Qwen3-8B/config.json) ---------------------------------------------
H, I, L, V, KVH, HD, CTX = 4096, 12288, 36, 151936, 8, 128, 40960
# q, k, v, o projections; q/k norms; gate, up, down; two RMS norms
PER_LAYER = H * (32 * HD) + 2 * H * KVH * HD + 32 * HD * H + 2 * HD + 3 * H * I + 2 * H
PARAMS = 2 * V * H + L * PER_LAYER + H  # untied embedding and lm_head (vocab 151936 is a multiple of 64), final norm
ROPE = CTX * HD * 4  # cos/sin cache, float32 [max_position, rotary_dim] (rotary_embedding/base.py)
WEIGHTS = PARAMS * 2 + ROPE
# + the caching allocator's segment rounding of those tensors, as SGLang's free-memory reading sees it
# (rules/allocator.py, tested on its own; with it the plan equals q8b_default.log's "mem usage=15.28 GB"): the
# embedding and the head (1187 MiB each) take 1188-MiB segments, the norms one 2-MiB small-pool segment
WEIGHTS += 3577856
RESERVE = (math.ceil((CTX + 256) / 128) * 128 - CTX) * HD * 4  # reserve_rope_cache_for_long_sequences: align_128(ctx+256)
CELL = L * KVH * HD * 2 * 2  # K and V, bf16, per token


def _hand():
    """The planned levels of the watched command, by hand."""
    # in use before SGLang loads on CUDA, TP 1, measured on real SGLang 0.5.17 (data/truth_sglang h100a): 617 MiB at
    # the baseline the fraction multiplies, 79 MiB more by "Load weight begin" (engines/sglang/measured.py)
    base_ctx = 617 * 2**20
    pre = TOTAL - BASE - base_ctx
    ctx = base_ctx + 79 * 2**20
    after = pre - 79 * 2**20 - WEIGHTS - RESERVE
    rest_gb = after / GiB - pre / GiB * (1 - F)  # _profile_available_bytes, in SGLang's GB floats
    tokens = int(rest_gb * GiB) // CELL  # page size 1
    mrr = min(max(min(int(tokens / CTX * 512), 4096), 2048), tokens // 2)  # resolve_max_num_reqs
    req = (mrr + 1) * (CTX + 4) * 4  # ReqToTokenPool int32 [size + 1, ctx + 4]
    pool = (tokens + 1) * CELL  # (size + page_size) cells
    # one K and one V buffer per layer (memory_pool.py:MHATokenToKVPool._create_buffers), each a segment rounded up
    # to 2 MiB by the caching allocator
    each = (tokens + 1) * KVH * HD * 2
    rounding = 2 * L * (-(-each // 2**21) * 2**21 - each)
    return dict(ctx=ctx, pre=pre, tokens=tokens, mrr=mrr, weights=ctx + WEIGHTS, kv=ctx + WEIGHTS + RESERVE + req + pool + rounding,
                static=base_ctx + int(pre * F), after_pool=after - req - pool - rounding)


def _logged(pattern: str) -> float:
    m = re.search(pattern, LOG.read_text())
    assert m, pattern
    return float(m.group(1))


def test_qwen3_8b_hand_count():
    assert PARAMS == 8_190_735_360  # Qwen3-8B's published parameter count


def _launcher(tmp_path: Path, state: Path) -> str:
    """The PYTHONPATH of test_watch_sglang's fake ``sglang`` package, replaying this file's log."""
    return sglang_launcher(tmp_path, LOG, state, 0.05, 0)["PYTHONPATH"]


def _cli_watch(tmp_path, monkeypatch, model="Qwen/Qwen3-8B"):
    cli = pytest.importorskip("vramplan.cli")
    state = tmp_path / "state"
    monkeypatch.setenv("PYTHONPATH", _launcher(tmp_path, state))
    monkeypatch.setattr(runner, "select_backend", lambda name: FakeBackend.from_state_file(state, base_bytes=BASE))
    out = tmp_path / "w"
    code = cli.main(["watch", "--out", str(out), "--interval", "0.02", "--", sys.executable, "-m",
                     "sglang.launch_server", "--model-path", model, "--mem-fraction-static", str(F)])
    return code, out


def test_watched_sglang_command_is_planned_and_compared(tmp_path, monkeypatch, capsys):
    code, out = _cli_watch(tmp_path, monkeypatch)
    assert code == 0
    cap = capsys.readouterr()
    hand = _hand()
    recs = load_timeline(out / "timeline.jsonl")
    plan = next(r for r in recs if r["type"] == "plan")
    lv = plan["levels"]
    static = f"planned static fraction ({F:g} x free before load)"
    assert list(lv) == [W, KV, static, GRAPHS, PEAK]
    assert lv[W] == hand["weights"]
    assert lv[KV] == hand["kv"]
    assert lv[static] == hand["static"]
    assert lv[W] < lv[KV] <= lv[GRAPHS] <= lv[PEAK]
    assert plan["level_phases"][W] == ["weights_loaded", "first"]
    assert plan["level_phases"][KV] == plan["level_phases"][static] == ["kv_allocated", "first"]
    assert plan["note"] is None and f"{hand['tokens']:,} KV tokens" in plan["summary"]
    assert "GiB left above the pools for graphs and activations" in plan["summary"]
    assert "planned SGLang 0.5.23 Qwen/Qwen3-8B" in cap.err  # said at once, on stderr
    text = cap.out[cap.out.index("Measured device memory per phase"):]  # the server's own output comes first
    # planned vs measured: the fake holds what the log's lines say (SGLang's GB = GiB)
    w_meas = int(_logged(r"Load weight end\..*mem usage=([\d.]+) GB") * GiB)
    kv_meas = w_meas + int((_logged(r"K size: ([\d.]+) GB") + _logged(r"V size: ([\d.]+) GB")) * GiB)
    g_meas = (kv_meas + int(_logged(r"Capture target prefill CUDA graph end\..*mem usage=([\d.]+) GB") * GiB)
              + int(_logged(r"Capture target decode CUDA graph end\..*mem usage=([\d.]+) GB") * GiB))

    def row(label):
        line = next(x for x in text.splitlines() if x.startswith(label + " "))
        return line.split()

    for label, planned, measured, how in ((W, hand["weights"], w_meas, "first of weights_loaded"),
                                          (KV, hand["kv"], kv_meas, "first of kv_allocated"),
                                          (GRAPHS, lv[GRAPHS], g_meas, "first of graphs_captured"),
                                          (PEAK, lv[PEAK], g_meas, "peak of ready")):
        cells = row(label)
        assert f"{planned / GiB:.2f}" in cells and f"{measured / GiB:.2f}" in cells, (label, cells)
        assert f"{(measured - planned) / GiB:+.2f}" in cells
        assert how in " ".join(cells)
    # planned vs logged, at each phase
    assert "Planned vs logged" in text
    logged_rows = {
        "weights (Load weight end mem usage, GB)": (f"{WEIGHTS / GiB:.2f}", "15.27"),
        "free before loading (Load weight begin avail mem, GB)": (f"{(hand['pre'] - 79 * 2**20) / GiB:.2f}", "78.67"),
        "KV tokens (KV Cache is allocated #tokens)": (f"{hand['tokens']:,}", "364,306"),
        "free after the pools (Memory pool end avail mem, GB)": (f"{hand['after_pool'] / GiB:.2f}", "12.74"),
        "max_running_requests": (f"{hand['mrr']:,}", "4,096"),
        "context_len": ("40,960", "40,960"),
        "free after startup (available_gpu_mem, GB)": (None, "11.60"),
        "--mem-fraction-static": ("0.83", "0.83"),
    }
    table = text[text.index("Planned vs logged"):].splitlines()
    for fig, (planned, logged) in logged_rows.items():
        line = next(x for x in table if fig in x)
        nums = line.split(fig)[1].split()
        assert nums[1] == logged, (fig, nums)
        if planned is not None:
            assert nums[0] == planned, (fig, nums)
    assert (out / "timeline.png").exists()


def test_unplannable_model_still_records_and_says_why_in_one_line(tmp_path, monkeypatch, capsys):
    code, out = _cli_watch(tmp_path, monkeypatch, model="nobody/private-model-7b")
    assert code == 0
    cap = capsys.readouterr()
    notes = [x for x in cap.err.splitlines() if "no planned levels" in x]
    assert len(notes) == 1 and "nobody/private-model-7b" in notes[0] and "Traceback" not in cap.err
    recs = load_timeline(out / "timeline.jsonl")
    plan = next(r for r in recs if r["type"] == "plan")
    assert plan["levels"] is None and plan["note"] == notes[0].removeprefix("vramplan watch: ")
    assert "Planned vs measured" not in cap.out and "Planned vs logged" not in cap.out
    assert plan["note"] in cap.out  # the end table says it too
    assert [x["phase"] for x in recs if x["type"] == "phase"][-2:] == ["ready", "exited"]  # still recorded
    assert sum(1 for x in recs if x["type"] == "sample") > 5


def test_planner_failure_is_a_warning_not_an_error(tmp_path):
    state = tmp_path / "state"
    env_pkgs = _launcher(tmp_path, state)
    import os

    def broken(readings):
        raise RuntimeError("planner bug")

    r = runner.watch_command([sys.executable, "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B"],
                             out_dir=tmp_path / "o", interval_s=0.02, backend=FakeBackend.from_state_file(state),
                             stdout=None, stderr=None, env={**os.environ, "PYTHONPATH": env_pkgs}, level_planner=broken)
    assert r.exit_code == 0 and r.planned is None
    recs = load_timeline(r.timeline_path)
    assert any("planner bug" in x.get("message", "") for x in recs if x["type"] == "warning")


@pytest.mark.parametrize("argv", [
    ["python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B", "--tp-size", "2"],
    ["sglang", "serve", "--model-path", "Qwen/Qwen3-8B", "--tp", "2"],
])
def test_tp_plans_on_the_most_used_of_the_first_tp_devices(argv):
    readings = [DeviceReading(device=str(i), name="NVIDIA H100 80GB HBM3", used_bytes=u, total_bytes=TOTAL)
                for i, u in enumerate((1 * GiB, 3 * GiB, 20 * GiB))]  # device 2 is not the server's
    wp = plan_watched_sglang(argv, readings)
    assert wp.note is None, wp.note
    assert wp.plan.args.tp_size == 2 and wp.plan.used_by_others_bytes == 3 * GiB
    assert wp.plan.device.name == "h100-80gb" and wp.plan.device.total_bytes == TOTAL


@pytest.mark.parametrize("argv, why", [
    (["python", "-m", "sglang.launch_server"], "no model given"),
    (["python", "-m", "sglang.launch_server", "--model-path", "/nonexistent/folder"], "config.json"),
    (["python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B", "--mem-fraction-static", "lots"], ""),
])
def test_what_cannot_be_planned_is_one_line(argv, why):
    wp = plan_watched_sglang(argv, [DeviceReading(device="0", used_bytes=0, total_bytes=TOTAL)])
    assert wp.plan is None and wp.levels == {} and wp.note.startswith("no planned levels: ")
    assert why in wp.note and "\n" not in wp.note
    assert plan_watched_sglang(argv[:0], []).note.startswith("no planned levels")


def test_device_from_the_driver_name():
    d = device_for("NVIDIA A100-SXM4-80GB", 85 * GiB)
    assert (d.name, d.compute_capability, d.total_bytes) == ("a100-80gb", (8, 0), 85 * GiB)
    d = device_for("FakeGPU", 50 * GiB)
    assert d.total_bytes == 50 * GiB and d.platform == "cuda"


def test_log_rows_take_the_logged_figures_from_the_log():
    facts = read_sglang_log(LOG.read_text())
    wp = plan_watched_sglang(["python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B"],
                             [DeviceReading(device="0", name="NVIDIA H100 80GB HBM3", used_bytes=0, total_bytes=TOTAL)])
    rows = {fig: (planned, logged) for _, fig, planned, logged in log_rows(wp.plan, facts)}
    assert rows["KV pool (K size + V size, GB)"][1] == pytest.approx(_logged(r"K size: ([\d.]+)") * 2)
    assert rows["decode CUDA graphs (Capture decode ... end mem usage, GB)"][1] == 0.52
    assert rows["prefill CUDA graphs (Capture prefill ... end mem usage, GB)"][1] == 0.41
    assert rows["chunked_prefill_size"][1] == 8192
    assert rows["verdict"] == ("starts", "starts")
    assert "Planned vs logged" in wp.log_table(facts) and wp.log_table(None) == ""


@settings(max_examples=60, deadline=None)
@given(fraction=st.floats(0.5, 0.95), ctx_len=st.sampled_from([2048, 8192, 32768, 40960]),
       page=st.sampled_from([1, 16, 64]), kv=st.sampled_from(["auto", "fp8_e4m3"]),
       model=st.sampled_from(["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B"]))
def test_pools_end_at_the_static_fraction(fraction, ctx_len, page, kv, model):
    """SGLang sizes the pool from rest = F x pre - weights (kv_cache_configurator.py:_profile_available_bytes) and
    allocates (tokens + page) cells, tokens = rest // cell rounded down to pages: so the KV level, less the request
    pool, ends within one page of cells above the static line, and never below it."""
    argv = ["python", "-m", "sglang.launch_server", "--model-path", model, "--mem-fraction-static", f"{fraction:.3f}",
            "--context-length", str(ctx_len), "--page-size", str(page), "--kv-cache-dtype", kv]
    wp = plan_watched_sglang(argv, [DeviceReading(device="0", name="NVIDIA H100 80GB HBM3", used_bytes=BASE,
                                                  total_bytes=TOTAL)])
    assert wp.note is None, wp.note
    p = wp.plan
    levels, _ = levels_of(p)
    static = next(v for k, v in levels.items() if k.startswith("planned static"))
    if not p.max_total_num_tokens:  # the weights leave no room: weights and the static line only
        assert p.error_kind == "no_kv_cache_memory" and list(levels) == [W, f"planned static fraction ({p.resolved.mem_fraction_static:g} x free before load)"]
        return
    cell = p.logged_stage.cell.bytes_per_token
    # the allocator's 2 MiB rounding of the per-layer K/V buffers lies beyond SGLang's arithmetic (it sizes bytes, the
    # device gives segments): under 2 MiB per buffer, 2 buffers per layer at most
    rounding = p.bytes_of("kv_allocator_rounding")
    assert 0 <= rounding < 2 * p.logged_stage.cell.num_layers * 2**21
    over = levels[KV] - p.bytes_of("req_to_token") - rounding - static
    assert -2 <= over <= page * cell + 2  # float GB arithmetic: a byte either way
    assert levels[W] < levels[KV] <= levels[GRAPHS] <= levels[PEAK]


def test_attached_sglang_server_is_planned_from_its_own_command_line(tmp_path, monkeypatch, capsys):
    import os
    import subprocess
    import time

    cli = pytest.importorskip("vramplan.cli")
    state = tmp_path / "state"
    server_log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": _launcher(tmp_path, state), "PYTHONUNBUFFERED": "1"}
    with open(server_log, "w") as f:
        child = subprocess.Popen([sys.executable, "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B",
                                  "--mem-fraction-static", str(F)], stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        time.sleep(0.5)  # attach once it runs (and, maybe, holds memory already)
        monkeypatch.setattr(runner, "select_backend", lambda name: FakeBackend.from_state_file(state, base_bytes=BASE))
        code = cli.main(["watch", "--pid", str(child.pid), "--log", str(server_log), "--out", str(tmp_path / "w"),
                         "--interval", "0.02"])
    finally:
        child.wait(10)
    assert code == 0
    recs = load_timeline(tmp_path / "w" / "timeline.jsonl")
    plan = next(r for r in recs if r["type"] == "plan")
    # what the server held on attaching is not the baseline: the plan sees the 300 MiB others hold, as when started
    assert plan["levels"][W] == _hand()["weights"]
    assert f"{BASE / GiB:.2f} GiB in use before" in plan["summary"]
    assert "Planned vs logged" in capsys.readouterr().out
