"""watch with SGLang: the streaming SGLang log reader, the engine choice, and watch over a fake SGLang server.

The fake (tests/fixtures/fake_sglang.py) prints a committed synthetic SGLang log line by line and reports, through
a state file, the bytes the log's own figures say are held. Expected phases and line numbers are found here by
searching the fixture's text for SGLang's message strings (read in sglang 0.5.17/0.5.23), not by the reader.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.engines.sglang.log_stream import SGLangLogReader
from vramplan.errors import LogParseError
from vramplan.watch import runner
from vramplan.watch.backends import FakeBackend
from vramplan.watch.engine import AutoLogReader, engine_from_argv, engine_from_lines
from vramplan.watch.runner import watch_command, watch_pid
from vramplan.watch.timeline import load_timeline, phase_levels

GiB = 1 << 30
MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
FAKE = str(ROOT / "tests" / "fixtures" / "fake_sglang.py")
FAKE_VLLM = str(ROOT / "tests" / "fixtures" / "fake_vllm.py")
LOGS = ROOT / "tests" / "fixtures" / "sglang_logs"
DEFAULT = LOGS / "qwen3-8b-h100-default.synthetic.log"
NOT_ENOUGH = LOGS / "deepseek-v2-lite-not-enough.synthetic.log"
GRAPH_OOM = LOGS / "qwen3-8b-h100-graph-oom.synthetic.log"
BASE = 300 * MiB


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of the fixture containing ``text``."""
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return no
    raise AssertionError(f"{text!r} not in {path.name}")


# The message each phase starts at in the default log (SGLang's own strings).
EXPECTED = [
    ("engine_start", "server_args=ServerArgs("),
    ("device_ready", "Init torch distributed ends."),
    ("weights_loaded", "Load weight end."),
    ("kv_allocated", "KV Cache is allocated."),
    ("graphs_captured", "max_total_num_tokens="),
    ("ready", "The server is fired up and ready to roll!"),
]


def _launcher(tmp_path: Path, log: Path, state: Path, step: float, code: int) -> dict[str, str]:
    """A package ``sglang`` in tmp_path whose ``launch_server`` runs the fake: the real command line works as is."""
    pkg = tmp_path / "pkgs" / "sglang"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "launch_server.py").write_text(
        "import runpy, sys\n"
        f"sys.argv = [{FAKE!r}, {str(log)!r}, '--state', {str(state)!r}, '--step', {str(step)!r}, '--exit', {str(code)!r}]\n"
        f"runpy.run_path({FAKE!r}, run_name='__main__')\n"
    )
    return {**os.environ, "PYTHONPATH": str(tmp_path / "pkgs")}


def _watch_sglang(tmp_path, log=DEFAULT, code=0, step=0.06, **kw):
    state = tmp_path / "state"
    env = _launcher(tmp_path, log, state, step, code)
    be = FakeBackend.from_state_file(state, base_bytes=BASE)
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B"]
    return watch_command(argv, out_dir=tmp_path / "out", interval_s=0.02, backend=be, stdout=None, stderr=None,
                         env=env, **kw)


def test_sglang_server_phases_in_order_at_their_log_lines(tmp_path):
    r = _watch_sglang(tmp_path, plan={"weights": int(15.27 * GiB)})
    assert r.exit_code == 0
    assert [p for _, p in r.phases] == ["starting", *(p for p, _ in EXPECTED), "exited"]
    recs = load_timeline(r.timeline_path)
    head = recs[0]
    assert (head["engine"], head["engine_source"]) == ("sglang", "command")
    assert head["argv"][1:3] == ["-m", "sglang.launch_server"]
    phase_recs = {x["phase"]: x for x in recs if x["type"] == "phase" and "line_no" in x}
    for phase, text in EXPECTED:
        assert phase_recs[phase]["line_no"] == _line_of(DEFAULT, text), phase
        assert text in phase_recs[phase]["text"]
    assert phase_recs["weights_loaded"]["rank"] == "TP0"
    # figures as SGLang printed them: mem usage=15.27 GB, #tokens: 364306, K+V size 25.02+25.02 GB
    figs = {x["kind"]: x["values"] for x in recs if x["type"] == "log_event"}
    assert figs["weights"]["weights_gib"] == 15.27
    assert figs["kv_cache_tokens"]["kv_cache_tokens"] == 364306
    assert figs["kv_cache_tokens"]["kv_cache_gib"] == pytest.approx(25.02 + 25.02)
    assert figs["kv_pool"]["max_running_requests"] == 4096
    # the levels: the fake holds what the log says once each line is out
    levels = phase_levels(recs)
    wl = next(lv for lv in levels if lv.phase == "weights_loaded")
    assert wl.first_bytes == BASE + int(15.27 * GiB)
    kv = next(lv for lv in levels if lv.phase == "kv_allocated")
    assert kv.first_bytes == BASE + int(15.27 * GiB) + int((25.02 + 25.02) * GiB)
    # --level comparisons work with SGLang's phases
    wrow = next(line for line in r.levels_text.splitlines() if line.startswith("weights "))
    assert "15.27" in wrow and "first of weights_loaded" in wrow
    assert r.log_facts.weights_gb == 15.27 and r.log_facts.max_total_num_tokens == 364306


@pytest.mark.parametrize("log, cause, cause_text", [
    (NOT_ENOUGH, "no_kv_cache_memory", "Not enough memory. Please try to increase --mem-fraction-static"),
    (GRAPH_OOM, "out_of_memory", "CUDA out of memory. Tried to allocate"),
])
def test_failing_sglang_server_ends_in_error_and_passes_the_exit_code(tmp_path, log, cause, cause_text):
    r = _watch_sglang(tmp_path, log=log, code=1, step=0.04)
    assert r.returncode == 1 and r.exit_code == 1
    kinds = [p for _, p in r.phases]
    assert kinds[-2:] == ["error", "exited"] and kinds.index("weights_loaded") < kinds.index("error")
    recs = load_timeline(r.timeline_path)
    err = next(x for x in recs if x["type"] == "phase" and x["phase"] == "error")
    assert err["line_no"] == _line_of(log, "Scheduler hit an exception")
    assert err["values"]["error_kind"] == "startup_failed"
    why = [x for x in recs if x["type"] == "log_event" and x["kind"] == "error"]
    assert why and why[0]["values"]["error_kind"] == cause and why[0]["line_no"] == _line_of(log, cause_text)
    samples = [x for x in recs if x["type"] == "sample" and x["phase"] == "error"]
    assert samples  # memory was recorded during the failure
    if log == GRAPH_OOM:
        assert err["values"]["error_phase"] == "graph_capture"  # 'Capture ... begin' had no end line


def test_unnamed_command_is_decided_by_the_first_sglang_line(tmp_path):
    state = tmp_path / "state"
    be = FakeBackend.from_state_file(state)
    r = watch_command([sys.executable, FAKE, str(DEFAULT), "--state", str(state), "--step", "0.02"],
                      out_dir=tmp_path / "o", interval_s=0.02, backend=be, stdout=None, stderr=None)
    recs = load_timeline(r.timeline_path)
    assert (recs[0]["engine"], recs[0]["engine_source"]) == (None, "log")
    eng = [x for x in recs if x["type"] == "engine"]
    assert [(x["engine"], x["line_no"]) for x in eng] == [("sglang", 1)]
    assert [p for _, p in r.phases][-3:] == ["graphs_captured", "ready", "exited"]


def test_engine_flag_overrides_the_command_line(tmp_path):
    r = _watch_sglang(tmp_path, engine="vllm", step=0.01)
    recs = load_timeline(r.timeline_path)
    assert (recs[0]["engine"], recs[0]["engine_source"]) == ("vllm", "flag")
    assert "ready" not in [p for _, p in r.phases]  # vLLM's reader does not know SGLang's lines


def test_vllm_fake_under_auto_still_gets_vllm_phases(tmp_path):
    state = tmp_path / "state"
    be = FakeBackend.from_state_file(state)
    r = watch_command([sys.executable, FAKE_VLLM, "--state", str(state), "--step", "0.02"], out_dir=tmp_path / "o",
                      interval_s=0.02, backend=be, stdout=None, stderr=None)
    recs = load_timeline(r.timeline_path)
    assert [x["engine"] for x in recs if x["type"] == "engine"] == ["vllm"]
    kinds = [p for _, p in r.phases]
    assert "weights_loaded" in kinds and "kv_allocated" in kinds


def test_watch_pid_with_an_sglang_log_file(tmp_path):
    state = tmp_path / "state"
    server_log = tmp_path / "server.log"
    with open(server_log, "w") as f:
        child = subprocess.Popen([sys.executable, FAKE, str(DEFAULT), "--state", str(state), "--step", "0.1"],
                                 stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(0.6)  # attach mid-way: the first lines are in the file
        r = watch_pid(child.pid, out_dir=tmp_path / "o", interval_s=0.02, backend=FakeBackend.from_state_file(state),
                      log_path=server_log)
    finally:
        child.wait(10)
    recs = load_timeline(r.timeline_path)
    assert (recs[0]["engine"], recs[0]["engine_source"]) == ("sglang", "log")
    marked = [x["phase"] for x in recs if x["type"] == "phase" and "line_no" in x]
    assert marked == [p for p, _ in EXPECTED]


def test_vramplan_watch_engine_flag_and_exit_code(tmp_path, monkeypatch, capsys):
    cli = pytest.importorskip("vramplan.cli")
    state = tmp_path / "state"
    monkeypatch.setattr(runner, "select_backend", lambda name: FakeBackend.from_state_file(state))
    out = tmp_path / "w"
    code = cli.main(["watch", "--engine", "sglang", "--out", str(out), "--interval", "0.02", "--",
                     sys.executable, FAKE, str(NOT_ENOUGH), "--state", str(state), "--step", "0.02", "--exit", "1"])
    assert code == 1
    recs = load_timeline(out / "timeline.jsonl")
    assert (recs[0]["engine"], recs[0]["engine_source"]) == ("sglang", "flag")
    assert [x["phase"] for x in recs if x["type"] == "phase"][-2:] == ["error", "exited"]
    assert "command exited with 1; watch exits with 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv, engine", [
    (["python", "-m", "sglang.launch_server", "--model-path", "m"], "sglang"),
    (["/usr/bin/python3", "-m", "sglang.launch_server"], "sglang"),
    (["sglang", "serve", "--model-path", "m"], "sglang"),
    (["/opt/venv/bin/sglang", "serve", "m"], "sglang"),
    (["vllm", "serve", "m"], "vllm"),
    (["python", "-m", "vllm.entrypoints.openai.api_server", "--model", "m"], "vllm"),
    (["bash", "start.sh"], None),
    (["python", "server.py", "--sglang"], None),
])
def test_engine_from_argv(argv, engine):
    assert engine_from_argv(argv) == engine


def test_engine_from_lines_first_recognisable_line_decides():
    sg = DEFAULT.read_text().splitlines()
    assert engine_from_lines(["hello", *sg]) == "sglang"
    vl = ["INFO 12-05 10:00:00 [gpu_model_runner.py:1] Model loading took 15.27 GiB and 2.25 seconds"]
    assert engine_from_lines(["nothing here", *vl, *sg]) == "vllm"
    assert engine_from_lines(["nothing", "at all"]) is None
    # torch's OOM line is both engines': it decides nothing
    assert engine_from_lines(["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."]) is None


def test_sglang_reader_phases_never_go_back_with_tp_ranks():
    # TP1 prints 'Load weight end' before TP0 (qwen3-32b tp2 fixture): one weights_loaded, at the first of them
    log = LOGS / "qwen3-32b-h100-tp2.synthetic.log"
    r = SGLangLogReader()
    evs = [e for line in log.read_text().splitlines() for e in r.feed(line)]
    phases = [(e.kind, e.line_no) for e in evs if e.kind in ("engine_start", "device_ready", "weights_loaded",
                                                             "kv_allocated", "graphs_captured", "ready", "error")]
    assert phases == [("engine_start", 1), ("device_ready", 2), ("weights_loaded", 4), ("kv_allocated", 6),
                      ("graphs_captured", 10)]
    assert [e.rank for e in evs if e.kind == "weights"] == ["TP1", "TP0"]


_SG_LINES = [line for p in sorted(LOGS.glob("*.log")) for line in p.read_text().splitlines()]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=300), st.sampled_from(_SG_LINES),
                          st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace"))),
                max_size=25),
       st.integers(1, 97))
def test_streaming_readers_never_raise(lines, cut):
    text = "\n".join(lines)
    for reader in (SGLangLogReader(), AutoLogReader()):
        # whole lines, then the same text in arbitrary chunks (partial lines)
        for line in lines:
            assert isinstance(reader.feed(line), list)
        for i in range(0, len(text), cut):
            assert isinstance(reader.feed(text[i:i + cut]), list)
        try:
            reader.finish()
        except LogParseError:
            pass  # no SGLang/vLLM line at all: the runner turns this into a warning
        assert isinstance(reader.flushed_events(), list)


@pytest.mark.parametrize("line", [
    "Load weight end. " + "x" * 200_000 + " mem usage=1.0 GB",
    "[2026-12-05 10:00:00 TP0] KV Cache is allocated. dtype: torch.bfloat16, #tokens: " + "9" * 100_000,
    "\x00\x1b[31m" + "\ufffd" * 70_000 + "\x1b[0m",
])
def test_very_long_lines_are_cut_not_fatal(line):
    r = SGLangLogReader()
    assert isinstance(r.feed(line), list) and isinstance(r.feed(line[:70_001]), list)
    assert r.internal_errors == []
    a = AutoLogReader()
    assert isinstance(a.feed(line), list)


def test_batch_lines_are_request_bursts():
    # the format strings of metrics_reporter.py:report_prefill_stats / report_decode_stats (0.5.17, 0.5.23)
    sg = DEFAULT.read_text().splitlines()
    prefill = "[2026-12-05 10:01:00 TP0] Prefill batch, #new-seq: 1, #new-token: 7, #cached-token: 0, token usage: 0.00"
    decode = "[2026-12-05 10:01:01 TP0] Decode batch, #running-req: 1, #token: 40, token usage: 0.00"
    lines = [*sg, prefill, decode, decode, "[2026-12-05 10:01:02 TP0] KV pool holds 100 tokens, fewer than --context-length 200",
             prefill, decode]
    r = SGLangLogReader()
    evs = [e for line in lines for e in r.feed(line)]
    req = [(e.line_no, e.values["batch"]) for e in evs if e.kind == "request"]
    assert req == [(len(sg) + 1, "prefill"), (len(sg) + 5, "prefill")]
    assert r.num_request_lines == 5


def test_unknown_engine_is_an_input_error(tmp_path):
    from vramplan.errors import InputError

    with pytest.raises(InputError, match="unknown engine 'tgi'"):
        watch_command([sys.executable, "-c", "pass"], out_dir=tmp_path, backend=FakeBackend.from_state_file(tmp_path / "s"),
                      engine="tgi", stdout=None, stderr=None)
    assert not (tmp_path / "timeline.jsonl").exists()  # nothing started


def test_cli_engine_choices():
    import argparse

    from vramplan.watch.cli import add_watch_arguments

    p = add_watch_arguments(argparse.ArgumentParser())
    assert p.parse_args([]).engine == "auto"
    assert p.parse_args(["--engine", "sglang", "--pid", "1", "--log", "x"]).engine == "sglang"
    with pytest.raises(SystemExit):
        p.parse_args(["--engine", "tgi"])
