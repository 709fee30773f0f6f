"""watch on vLLM 0.34's startup: the reserve, the warm-up and the commit, marked from the log's own lines.

Expected values come from the real record (data/watch/vllm-0.34-qwen3-8b-h100, one H100): the line numbers and
texts of its output.log, the NVML readings of its timeline.jsonl, and vLLM's own log figures ("Committed 1025 of
7044 KV cache blocks (9.07 GiB physical)", "Extended KV cache to 6768 blocks"); the trimmed copy in
tests/fixtures/watch034 keeps the lines and readings that matter. Hand calculations are written out.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramplan.watch.timeline import compare_planned, load_timeline, phase_levels
from vramplan.watch.vllm034 import (STORY_PHASES, Mark, apply_story, classify, marks_from_lines, relabel, story,
                                    times_from_log_clock)

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "data" / "watch" / "vllm-0.34-qwen3-8b-h100"
FIX = ROOT / "tests" / "fixtures" / "watch034"
GiB = 1 << 30
MiB = 1 << 20

QWEN = ["vllm", "serve", "Qwen/Qwen3-8B", "--load-format", "dummy", "--max-model-len", "8192",
        "--skip-tokenizer-init", "--port", "8765"]


def _lines(folder: Path) -> list[str]:
    return (folder / "output.log").read_text(encoding="utf-8").splitlines()


# ------------------------------------------------------------------------------------------- marking

def test_the_real_log_is_told_in_0_34_phases_at_its_own_lines():
    lines = _lines(REAL)
    told = story(marks_from_lines(lines))
    assert told is not None
    got = [(phase, m.line_no) for phase, m in told]
    # the lines of data/watch/vllm-0.34-qwen3-8b-h100/output.log (1-based), read off the file:
    #  262 05:55:01 "[backbone] torch.compile took 19.72 s in total"
    #  268 05:55:07 "Available KV cache memory: 61.91 GiB"               (the reserve bound: 7,044 blocks)
    #  290 05:55:08 "Committed 1025 of 7044 KV cache blocks (9.07 GiB physical)."   (warmup_kernels)
    #  450 05:55:23 "Graph capturing finished in 7 secs, took 0.70 GiB"
    #  460 05:55:24 "Extended KV cache to 6768 blocks (59.48 GiB)."
    #  489 05:55:24 "Starting vLLM server on http://0.0.0.0:8765"
    assert got == [("compiled", 262), ("kv_reserved", 268), ("warmup", 290), ("graphs_captured", 450),
                   ("kv_committed", 460), ("ready", 489)]
    assert "torch.compile took 19.72 s" in lines[261] and "Available KV cache memory: 61.91 GiB" in lines[267]
    assert "Committed 1025 of 7044" in lines[289] and "Extended KV cache to 6768 blocks" in lines[459]
    assert [p for p, _ in told] == list(STORY_PHASES)


def test_the_trimmed_excerpt_marks_the_same_lines():
    told = story(marks_from_lines(_lines(FIX)))
    texts = {phase: m.text for phase, m in told}
    assert "torch.compile took 19.72 s in total" in texts["compiled"]
    assert texts["kv_reserved"].endswith("Available KV cache memory: 61.91 GiB")
    assert "Committed 1025 of 7044 KV cache blocks (9.07 GiB physical)" in texts["warmup"]
    assert "Graph capturing finished in 7 secs, took 0.70 GiB" in texts["graphs_captured"]
    assert "Extended KV cache to 6768 blocks (59.48 GiB)" in texts["kv_committed"]
    assert "Starting vLLM server on http://0.0.0.0:8765" in texts["ready"]


def test_at_info_level_the_warm_up_starts_at_its_own_line():
    # without the DEBUG "Committed" lines, the warm-up starts at "JIT kernel warmup starting." (kernel_warmup.py)
    info = [x for x in _lines(FIX) if " DEBUG " not in x]
    told = dict((p, m.text) for p, m in story(marks_from_lines(info)))
    assert told["warmup"].endswith("JIT kernel warmup starting.")
    assert set(told) == set(STORY_PHASES)


def test_classify_reads_block_counts():
    assert classify("(EngineCore pid=1) DEBUG 12-06 05:55:08 [v1/worker/extensible_kv_cache.py:217] Committed 1025 of "
                    "7044 KV cache blocks (9.07 GiB physical).") == ("kv_commit", 1025)
    assert classify("INFO 12-06 05:55:24 [x.py:536] Extended KV cache to 6768 blocks (59.48 GiB).") == ("extended", 6768)
    assert classify("Committed to the cause") is None and classify("") is None


@pytest.mark.parametrize("log, phases", [
    # vLLM 0.34.0 with the extensible cache off (--no-enable-extensible-kv-cache): the 0.33 story, untouched
    ("data/truth/logs/h100e/q8b_e_noext_unset.log", None),
    # 0.34.0 with --kv-cache-memory-bytes (extensible off) and a low util
    ("data/truth/logs/h100e/q8b_e_gmu015_nokv.log", None),
    # 0.34.0 eager (enforce_eager=True in its engine line): no compile, no capture
    ("data/truth/logs/h100e/q8b_e_unset.log", ["kv_reserved", "warmup", "kv_committed", "ready"]),
    # 0.34.0 Nemotron-H trimmed, out of memory in warmup_kernels: the story stops at the warm-up
    ("data/truth/logs/h100e/nemoh_trim.log", ["kv_reserved", "warmup"]),
])
def test_real_0_34_logs_of_other_shapes(log, phases):
    told = story(marks_from_lines((ROOT / log).read_text(encoding="utf-8", errors="replace").splitlines()))
    assert (None if told is None else [p for p, _ in told]) == phases


def test_older_logs_keep_the_readers_phases():
    # the synthetic v0.26 demo of docs/watch-example: no 0.34 line, records come back as they were
    folder = ROOT / "docs" / "watch-example"
    recs = load_timeline(folder / "timeline.jsonl")
    out, told = apply_story(recs, _lines(folder))
    assert told is None and out == recs
    assert [lv.phase for lv in phase_levels(out)] == [lv.phase for lv in phase_levels(recs)]
    for log in sorted((ROOT / "data" / "device_v026").rglob("*.log"))[:5]:
        assert story(marks_from_lines(log.read_text(encoding="utf-8", errors="replace").splitlines())) is None


# ------------------------------------------------------------------------------------------- timing and replay

def test_log_clock_times_stay_between_the_lines_watch_timed():
    lines = _lines(REAL)
    recs = load_timeline(REAL / "timeline.jsonl")
    anchors = {r["line_no"]: r["t_s"] for r in recs if r.get("type") in ("phase", "log_event") and r.get("line_no")}
    t = times_from_log_clock(lines, anchors)
    assert all(t[n] == anchors[n] for n in anchors)
    # line 290 (05:55:08) lies between line 268 (timed 81.544 s live, 05:55:07) and line 450 (97.4968 s, 05:55:23)
    assert 81.544 <= t[290] <= 97.4968
    # 05:55:08 is one second after 05:55:07: within a second of 81.544 + 1
    assert abs(t[290] - (81.544 + 1)) < 1.0
    # every clock line is timed, in log order
    timed = [t[n] for n in sorted(t)]
    assert timed == sorted(timed)


def _replay(tmp_path, folder, cmd=None):
    from vramplan.watch.cli import plan_levels_for
    from vramplan.watch.replay import replay

    return replay(folder, cmd=cmd, plot_path=str(tmp_path / "t.png"), plan_levels=plan_levels_for)


def test_replay_of_the_trimmed_record(tmp_path):
    r = _replay(tmp_path, FIX, QWEN)
    assert r.story == "vllm-0.34" and r.levels_source == "planned now"
    lv = {x.phase: x for x in phase_levels(r.records)}
    # NVML readings of the record (GiB = 2**30 bytes), from timeline.jsonl:
    # the warm-up's peak 28,971,106,304 B (26.98 GiB) at 82.44 s; 82,655,805,440 B (76.98) once committed
    peak = max(s["used_bytes"] for s in load_timeline(FIX / "timeline.jsonl") if s.get("type") == "sample")
    assert lv["warmup"].peak_bytes == max(s["used_bytes"] for s in r.records
                                          if s.get("type") == "sample" and 82 < s["t_s"] < 90)
    assert round(lv["warmup"].peak_bytes / GiB, 2) == 26.98
    assert round(lv["kv_committed"].first_bytes / GiB, 2) == 76.98 and lv["kv_committed"].first_bytes == peak
    assert round(lv["graphs_captured"].first_bytes / GiB, 2) == 18.54
    comps = {c.label: c for c in compare_planned(r.records, r.levels)}
    warm = comps["planned warm-up commit (1,025 blocks)"]
    reserve = comps["planned at the reserve (1 block)"]
    # 1,025 blocks (the log's "Committed 1025 of 7044"), 36 layer segments of 1,025 x 256 KiB rounded to 2 MiB
    # granules: 36 x 129 x 2 MiB = 9.07 GiB ("9.07 GiB physical"), against 36 x 2 MiB for the reserve's one block
    assert warm.planned_bytes - reserve.planned_bytes == 36 * (129 - 1) * 2 * MiB
    assert (warm.phase, warm.statistic) == ("warmup", "peak") and warm.measured_bytes == lv["warmup"].peak_bytes
    total = comps["planned total after the KV commit"]
    assert (total.phase, total.statistic) == ("kv_committed", "first")
    assert abs(total.difference_bytes) < 0.5 * GiB
    assert Path(r.plot_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "kv_reserved" in r.levels_text and "first of kv_committed" in r.levels_text


def test_replay_cli_on_a_copy(tmp_path, capsys):
    from vramplan.cli import main

    d = tmp_path / "rec"
    shutil.copytree(FIX, d)
    code = main(["watch", "--replay", str(d), "--out", str(tmp_path / "o"), "--", *QWEN])
    out = capsys.readouterr()
    assert code == 0 and "planned warm-up commit (1,025 blocks)" in out.out
    assert (tmp_path / "o" / "timeline.png").exists() and "vLLM 0.34 phases" in out.err


def test_replay_without_a_plan_uses_the_recorded_levels(tmp_path):
    from vramplan.watch.replay import replay

    r = replay(FIX, plot_path=str(tmp_path / "t.png"))
    assert r.levels_source == "the timeline's header" and "planned weights" in r.levels


def test_replay_of_a_folder_without_a_timeline_is_an_input_error(tmp_path, capsys):
    from vramplan.cli import main

    assert main(["watch", "--replay", str(tmp_path)]) == 2
    assert "no timeline.jsonl" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- live

CHILD = """
import sys, time
for line in open(sys.argv[1], encoding="utf-8"):
    print(line.rstrip("\\n"), flush=True)
    time.sleep(0.004)
"""


def test_live_watch_records_marks_and_tells_the_0_34_phases(tmp_path):
    from vramplan.watch.backends import FakeBackend
    from vramplan.watch.runner import watch_command

    state = tmp_path / "state"
    backend = FakeBackend.from_state_file(state, base_bytes=0)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    r = watch_command([sys.executable, str(script), str(FIX / "output.log")], out_dir=tmp_path / "out",
                      interval_s=0.01, backend=backend, engine="vllm", stdout=None, stderr=None)
    recs = load_timeline(r.timeline_path)
    marks = [x for x in recs if x["type"] == "mark"]
    lines = _lines(FIX)
    # each mark carries its line of the log, numbered as the log file is
    assert marks and all(lines[m["line_no"] - 1].endswith(m["text"][-60:]) for m in marks)
    assert [m["blocks"] for m in marks if m["kind"] == "kv_commit"] == [1, 1025, 1, 130, 1, 6768]
    _, told = apply_story(recs)
    assert [p for p, _ in told] == list(STORY_PHASES)
    assert "kv_committed" in r.levels_text and "warmup" in r.levels_text


# ------------------------------------------------------------------------------------------- never raises

_EXCERPT = _lines(FIX)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(list(range(len(_EXCERPT)))),
       garble=st.lists(st.tuples(st.integers(0, len(_EXCERPT) - 1), st.integers(0, 700), st.text(max_size=12)),
                       max_size=20),
       extra=st.lists(st.text(max_size=80), max_size=10))
def test_shuffled_and_garbled_logs_never_raise(order, garble, extra):
    lines = [_EXCERPT[i] for i in order]
    for i, pos, junk in garble:
        lines[i] = lines[i][:pos] + junk + lines[i][pos + len(junk):]
    lines += extra
    marks = marks_from_lines(lines)
    told = story(marks)
    if told is not None:
        phases = [p for p, _ in told]
        assert phases == [p for p in STORY_PHASES if p in phases]  # in startup order
        assert [m.line_no for _, m in told] == sorted(m.line_no for _, m in told)
    anchors = {i + 1: float(i) for i in range(0, len(lines), 7)}
    t = times_from_log_clock(lines, anchors)
    timed = [t[n] for n in sorted(t)]
    assert timed == sorted(timed)
    recs = [{"type": "header"}, *({"type": "sample", "t_s": float(i), "device": "0", "used_bytes": i * MiB,
                                   "total_bytes": 80 * GiB, "phase": "starting"} for i in range(30))]
    timed_marks = [Mark(m.kind, m.line_no, t.get(m.line_no), m.blocks, m.text) for m in marks]
    told = story(timed_marks)
    if told is not None:
        out = relabel(recs, told)
        assert sum(1 for x in out if x.get("type") == "sample") == 30
    apply_story(recs, lines)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_classify_never_raises(line):
    c = classify(line)
    assert c is None or isinstance(c[0], str)


# ------------------------------------------------------------------------------------------- the warm-up commit

def _v034_startups():
    """(log, model, args) of every real vLLM 0.34.0 startup in data/truth whose log has the DEBUG commit lines."""
    import dataclasses
    import re

    from vramplan.engines.vllm.flags import EngineArgs

    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    trimmed = {"q35_9b_trim_tri": "Qwen--Qwen3.5-9B-trimmed", "q35_35b_trim_tri": "Qwen--Qwen3.5-35B-A3B-trimmed",
               "gemma4_trim_tri": "google--gemma-4-26B-A4B-trimmed", "kimi25_trim": "moonshotai--Kimi-K2.5-trimmed",
               "minimax_trim_nobf16x3": "MiniMaxAI--MiniMax-M2.7-trimmed",
               "nemoh_trim_mns256": "nvidia--Nemotron-H-56B-Base-8K-trimmed",
               "nemoh_trim": "nvidia--Nemotron-H-56B-Base-8K-trimmed",
               "nemo3nano_trim": "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16-trimmed"}
    cases = {}
    for line in (ROOT / "data" / "truth" / "cases.jsonl").read_text().splitlines():
        c = json.loads(line)
        cases[c["id"]] = c
    out = []
    for log in sorted((ROOT / "data" / "truth" / "logs").glob("h100[ef]/*.log")):
        commits = [int(x) for x in re.findall(r"Committed (\d+) of \d+ KV cache blocks",
                                              log.read_text(errors="replace"))]
        c = cases.get(f"truth-v034-{log.parent.name}-{log.stem}")
        if len(commits) < 2 or c is None:
            continue
        model = (str(ROOT / "bench" / "truth" / "configs" / trimmed[log.stem]) if log.stem in trimmed
                 else c["model"].split(":")[0])
        args = {k: v for k, v in c["args"].items() if v is not None and k in fields
                and k not in ("seed", "load_format", "skip_tokenizer_init", "dtype")}
        out.append(pytest.param(commits, model, args, id=f"{log.parent.name}-{log.stem}"))
    return out


@pytest.mark.parametrize("commits, model, args", _v034_startups())
def test_warm_up_commit_equals_vllms_on_every_real_0_34_startup(commits, model, args):
    # vLLM's own DEBUG lines: the reserve commits 1 block, then warmup_kernels commits
    # 1 + min(max_num_seqs, max_num_batched_tokens // 2, committable) x KV groups ("Committed 1025 of ...")
    import vramplan
    from vramplan.api import load_model
    from vramplan.engines.vllm.flags import EngineArgs
    from vramplan.watch.levels034 import warmup_commits

    p = vramplan.plan(load_model(model), device="h100-80gb", vllm_version="0.34.0", args=EngineArgs(**args))
    kernels, sizing = warmup_commits(p)
    assert commits[0] == 1 and kernels == commits[1]
    if sizing is not None:
        # the sizing warm-up's full step: the largest commit between the two releases that follow
        after = commits[3:]
        assert sizing == max(after[:after.index(1)] if 1 in after else after[:2])


def test_the_watched_startups_two_warm_up_commits():
    # output.log of the real record: "Committed 1025 of 7044" (warmup_kernels: 1 + 1,024 requests x 1 block) and
    # "Committed 130 of 7044" (the sizing step: 1 + a 3-token decode's block + cdiv(8191, 64) = 128 prefill blocks)
    import vramplan
    from vramplan.engines.vllm.flags import parse_flags
    from vramplan.watch.levels034 import warmup_commits

    args = parse_flags(QWEN).args
    assert warmup_commits(vramplan.plan(args.model, args=args)) == (1025, 130)
    assert "Committed 130 of 7044" in "\n".join(_lines(FIX))
