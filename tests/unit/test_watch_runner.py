"""watch on real child processes (tests/fixtures/fake_vllm.py), with a fake device.

The fake server writes the bytes it "holds" to a state file before each log line;
the fake backend reports them. Expected levels are the fixture's constants (the
numbers vLLM logged in data/device_runs_v026 qwen3-8b_graph_8k-1024), not the
code under test. Phases come from a minimal log reader written here against the
interface of vramplan.engines.vllm.log.LogReader (feed(line) -> events, finish()).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.fake_vllm import ACTIVATION, CONTEXT, GRAPHS, KV, WEIGHTS, GiB, MiB  # the fake server's steps
from vramplan.errors import DeviceError, InputError
from vramplan.watch.backends import DeviceReading, FakeBackend
from vramplan.watch.runner import watch_command, watch_pid
from vramplan.watch.timeline import load_timeline, phase_levels

ROOT = Path(__file__).resolve().parents[2]
FAKE = str(ROOT / "tests" / "fixtures" / "fake_vllm.py")
BASE = 300 * MiB  # another tenant on the device before the server starts

PHASES = ["engine_start", "device_ready", "weights_loaded", "profiling_done", "kv_allocated", "graphs_captured", "ready"]


@dataclass
class StubEvent:
    line_no: int
    kind: str
    rank: int | None = None
    values: dict = field(default_factory=dict)
    text: str = ""


class StubLogReader:
    """Just enough of LogReader: the v0.26 lines that mark each phase."""

    MARKS = [
        ("Initializing a V1 LLM engine", "engine_start"),
        ("worker init memory snapshot", "device_ready"),
        ("Model loading took", "weights_loaded"),
        ("Available KV cache memory", "profiling_done"),
        ("GPU KV cache size", "kv_allocated"),
        ("Graph capturing finished", "graphs_captured"),
        ("Application startup complete", "ready"),
    ]

    def __init__(self):
        self.n = 0
        self.lines = []

    def feed(self, line):
        self.n += 1
        self.lines.append(line)
        return [StubEvent(self.n, kind, None, {}, line) for mark, kind in self.MARKS if mark in line]

    def finish(self):
        return {"num_lines": self.n}


def _watch(tmp_path, *fake_args, fail_after=None, interval=0.02, step=0.15, **kw):
    state = tmp_path / "state"
    backend = FakeBackend.from_state_file(state, base_bytes=BASE, fail_after=fail_after)
    argv = [sys.executable, FAKE, "--state", str(state), "--step", str(step), *fake_args]
    return watch_command(argv, out_dir=tmp_path / "out", interval_s=interval, backend=backend,
                         log_reader_factory=StubLogReader, stdout=None, stderr=None, **kw)


def _first(levels, phase):
    return next(lv for lv in levels if lv.phase == phase)


def test_phases_levels_and_exit_code_zero(tmp_path):
    r = _watch(tmp_path, plan={"weights": WEIGHTS, "requested budget": int(71.26 * GiB)})
    assert r.exit_code == 0 and r.returncode == 0
    assert [p for _, p in r.phases] == ["starting", *PHASES, "exited"]
    recs = load_timeline(r.timeline_path)
    assert recs[0]["type"] == "header" and recs[-1]["type"] == "end"
    samples = [x for x in recs if x["type"] == "sample"]
    assert samples[0]["phase"] == "before_start" and samples[0]["used_bytes"] == BASE
    # every phase got samples, in order
    seen = []
    for s in samples:
        if not seen or seen[-1] != s["phase"]:
            seen.append(s["phase"])
    assert seen == ["before_start", "starting", *PHASES, "exited"]
    levels = phase_levels(recs)
    assert _first(levels, "device_ready").first_bytes == BASE + CONTEXT
    wl = _first(levels, "weights_loaded")
    assert wl.first_bytes == BASE + CONTEXT + WEIGHTS
    assert wl.peak_bytes == BASE + CONTEXT + WEIGHTS + ACTIVATION  # the profiling peak
    assert _first(levels, "profiling_done").first_bytes == BASE + CONTEXT + WEIGHTS
    assert _first(levels, "kv_allocated").first_bytes == BASE + CONTEXT + WEIGHTS + KV
    assert _first(levels, "graphs_captured").first_bytes == BASE + CONTEXT + WEIGHTS + KV + GRAPHS
    # the child held the bytes itself: its pid is in the watched tree
    assert _first(levels, "graphs_captured").watched_peak_bytes == CONTEXT + WEIGHTS + KV + GRAPHS
    # files
    assert r.plot_path and Path(r.plot_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = Path(r.log_path).read_text()
    assert "Model loading took 15.27 GiB" in log
    assert "Loading safetensors checkpoint shards: 100% 2/2" in log
    assert r.log_facts == {"num_lines": log.count("\n")}
    # the table: weights compared with the first reading after loading (context included)
    assert "Planned vs measured" in r.levels_text
    wrow = next(line for line in r.levels_text.splitlines() if line.startswith("weights "))
    assert f"{WEIGHTS / GiB:.2f}" in wrow and f"{(CONTEXT + WEIGHTS) / GiB:.2f}" in wrow
    # phase lines carry their log line
    ph = [x for x in recs if x["type"] == "phase" and x["phase"] == "weights_loaded"][0]
    assert "Model loading took" in ph["text"]


def test_exit_code_three_is_passed_through(tmp_path):
    r = _watch(tmp_path, "--exit", "3", step=0.02)
    assert r.returncode == 3 and r.exit_code == 3
    exits = [x for x in load_timeline(r.timeline_path) if x["type"] == "exit"]
    assert exits == [{"type": "exit", "t_s": exits[0]["t_s"], "returncode": 3, "signal": None}]


def test_child_killed_by_a_signal_exits_128_plus_n(tmp_path):
    r = _watch(tmp_path, "--die-by", "SIGKILL", step=0.02)
    assert r.returncode == -signal.SIGKILL and r.exit_code == 128 + signal.SIGKILL
    recs = load_timeline(r.timeline_path)
    assert [x["signal"] for x in recs if x["type"] == "exit"] == ["SIGKILL"]
    assert recs[-1]["type"] == "end" and Path(r.plot_path).exists()


def test_memory_held_by_a_worker_child_counts_as_watched(tmp_path):
    r = _watch(tmp_path, "--worker", step=0.1)
    assert r.exit_code == 0
    recs = load_timeline(r.timeline_path)
    gc = _first(phase_levels(recs), "graphs_captured")
    assert gc.watched_peak_bytes == CONTEXT + WEIGHTS + KV + GRAPHS
    worker_pids = {int(p) for x in recs if x["type"] == "sample" for p in x["processes"]}
    started = next(x for x in recs if x["type"] == "started")
    assert worker_pids and started["pid"] not in worker_pids  # held by the grandchild, found through /proc


def test_sampler_failing_midway_still_leaves_timeline_and_plot(tmp_path):
    r = _watch(tmp_path, "--exit", "0", fail_after=20, step=0.1)
    assert r.exit_code == 0  # the server was left alone
    assert r.sampler_error and "device lost" in r.sampler_error
    recs = load_timeline(r.timeline_path)
    assert [x["type"] for x in recs].count("sampler_error") == 1
    assert sum(x["type"] == "sample" for x in recs) == 20
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 0
    # phases kept coming from the log after sampling stopped
    assert [p for _, p in r.phases][-2:] == ["ready", "exited"]
    assert Path(r.plot_path).exists() and Path(r.plot_path).stat().st_size > 5000


def test_unreadable_device_before_start_is_a_device_error_and_starts_nothing(tmp_path):
    with pytest.raises(DeviceError, match="could not read the devices"):
        _watch(tmp_path, fail_after=0)
    recs = load_timeline(tmp_path / "out" / "timeline.jsonl")
    assert [x["type"] for x in recs][-2:] == ["sampler_error", "end"]
    assert not any(x["type"] == "started" for x in recs)


def test_command_not_found_is_an_input_error(tmp_path):
    be = FakeBackend([[DeviceReading(device="0", used_bytes=1, total_bytes=2)]])
    with pytest.raises(InputError, match="cannot start"):
        watch_command(["/nonexistent/vllm"], out_dir=tmp_path, backend=be, log_reader_factory=None, stdout=None, stderr=None)
    assert load_timeline(tmp_path / "timeline.jsonl")[-1]["type"] == "end"


def test_no_log_reader_records_memory_without_phases(tmp_path):
    state = tmp_path / "state"
    be = FakeBackend.from_state_file(state)
    r = watch_command([sys.executable, FAKE, "--state", str(state), "--step", "0.02"], out_dir=tmp_path / "o",
                      interval_s=0.02, backend=be, log_reader_factory=None, stdout=None, stderr=None)
    assert r.exit_code == 0
    recs = load_timeline(r.timeline_path)
    assert any(x["type"] == "warning" and "no log reader" in x["message"] for x in recs)
    assert {x["phase"] for x in recs if x["type"] == "sample"} <= {"before_start", "starting", "exited"}


_SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys
    from vramplan.watch.backends import FakeBackend
    from vramplan.watch.runner import watch_command
    state, out, fake = sys.argv[1:4]
    be = FakeBackend.from_state_file(state)
    r = watch_command([sys.executable, fake, "--state", state, "--step", "0.05", "--hang"], out_dir=out,
                      interval_s=0.02, backend=be, log_reader_factory=None, stdout=None, stderr=None)
    print("RESULT", r.exit_code, r.returncode, r.interrupted, flush=True)
    sys.exit(r.exit_code)
    """
)


def test_ctrl_c_is_forwarded_and_the_record_is_flushed(tmp_path):
    state, out = tmp_path / "state", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", _SIGINT_SCRIPT, str(state), str(out), FAKE], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the fake server says it is up (its log is written as it comes)
    deadline = time.monotonic() + 20
    log = out / "output.log"
    while time.monotonic() < deadline:
        if log.exists() and "Application startup complete" in log.read_text():
            break
        time.sleep(0.05)
    else:
        p.kill()
        pytest.fail("fake server did not start")
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    # the fake server caught the forwarded SIGINT, shut down cleanly and exited 0
    assert "RESULT 0 0 True" in stdout, stderr
    assert p.returncode == 0
    assert "Shutting down FastAPI HTTP server" in log.read_text()
    recs = load_timeline(out / "timeline.jsonl")
    types = [x["type"] for x in recs]
    assert "interrupted" in types and types[-1] == "end"
    assert types.index("interrupted") < types.index("exit")
    assert (out / "timeline.png").exists()


def test_watch_pid_attaches_to_a_running_process_and_reads_its_log_file(tmp_path):
    state = tmp_path / "state"
    server_log = tmp_path / "server.log"
    with open(server_log, "w") as f:
        child = subprocess.Popen([sys.executable, FAKE, "--state", str(state), "--step", "0.2"], stdout=f, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(0.5)  # attach mid-way: the first lines are already in the file
        be = FakeBackend.from_state_file(state)
        r = watch_pid(child.pid, out_dir=tmp_path / "o", interval_s=0.02, backend=be, log_path=server_log,
                      log_reader_factory=StubLogReader)
    finally:
        child.wait(10)
    assert r.exit_code == 0 and r.returncode is None
    recs = load_timeline(r.timeline_path)
    early = [x for x in recs if x["type"] == "phase" and x.get("before_attach")]
    assert early and all(x["t_s"] == 0.0 for x in early)
    kinds = [p for _, p in r.phases]
    assert kinds[-2:] == ["ready", "exited"]
    assert "weights_loaded" in kinds or any(x["phase"] == "weights_loaded" for x in early)
    assert any(x["type"] == "exit" for x in recs) and recs[-1]["type"] == "end"


def test_watch_pid_of_no_process_is_an_input_error(tmp_path):
    be = FakeBackend([[DeviceReading(device="0", used_bytes=1, total_bytes=2)]])
    with pytest.raises(InputError, match="no running process"):
        watch_pid(2**22 + 12345, out_dir=tmp_path, backend=be)


def test_timeline_lines_are_valid_json_and_flushed_while_running(tmp_path):
    """Read the file while the command still runs: what is there is already complete lines."""
    state = tmp_path / "state"
    be = FakeBackend.from_state_file(state)
    seen_mid_run = []

    def reader_factory():
        class R(StubLogReader):
            def feed(self, line):
                if "Available KV cache memory" in line:
                    text = (tmp_path / "o" / "timeline.jsonl").read_text()
                    seen_mid_run.append([json.loads(x)["type"] for x in text.splitlines()])
                return super().feed(line)

        return R()

    r = watch_command([sys.executable, FAKE, "--state", str(state), "--step", "0.1"], out_dir=tmp_path / "o",
                      interval_s=0.02, backend=be, log_reader_factory=reader_factory, stdout=None, stderr=None)
    assert r.exit_code == 0
    assert seen_mid_run and seen_mid_run[0].count("sample") > 5 and "end" not in seen_mid_run[0]


def test_the_real_log_reader_marks_the_phases_and_records_vllm_figures(tmp_path):
    vllm_log = pytest.importorskip("vramplan.engines.vllm.log")
    state = tmp_path / "state"
    be = FakeBackend.from_state_file(state, base_bytes=BASE)
    r = watch_command([sys.executable, FAKE, "--state", str(state), "--step", "0.1"], out_dir=tmp_path / "o",
                      interval_s=0.02, backend=be, log_reader_factory=vllm_log.LogReader, stdout=None, stderr=None)
    assert r.exit_code == 0
    assert [p for _, p in r.phases] == ["starting", *PHASES, "exited"]
    recs = load_timeline(r.timeline_path)
    figures = {x["kind"]: x["values"] for x in recs if x["type"] == "log_event"}
    assert figures["weights"]["weights_gib"] == 15.27  # the number the fake server printed
    assert figures["kv_cache_memory"]["kv_cache_gib"] == 54.48
    assert r.log_facts.weights_gib == 15.27
    assert _first(phase_levels(recs), "weights_loaded").first_bytes == BASE + CONTEXT + WEIGHTS


def test_a_command_that_prints_nothing_of_vllm_is_still_recorded(tmp_path):
    vllm_log = pytest.importorskip("vramplan.engines.vllm.log")
    be = FakeBackend([[DeviceReading(device="0", used_bytes=1, total_bytes=2)]])
    r = watch_command([sys.executable, "-c", "print('hello')"], out_dir=tmp_path, interval_s=0.02, backend=be,
                      log_reader_factory=vllm_log.LogReader, stdout=None, stderr=None)
    assert r.exit_code == 0 and r.log_facts is None
    recs = load_timeline(r.timeline_path)
    assert any(x["type"] == "warning" and x["message"].startswith("log reader:") for x in recs)
    assert recs[-1]["type"] == "end"
