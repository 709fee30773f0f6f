"""The 15 real SGLang 0.5.17 startups (data/truth_sglang, one H100, dummy weights) through ``vramplan explain`` and
the SGLang planner.

Expected values are read from each log here, with this file's own regexes on SGLang's lines (independent of
vramplan's reader), or are what the harness recorded in ``cases.jsonl``: "Load weight end. ... mem usage=X GB",
the scheduler's ``max_total_num_tokens=N, ... max_running_requests=M``, ``server_args=ServerArgs(...,
mem_fraction_static=F, ...)`` (the fraction SGLang resolved), and the error SGLang raised. The logs carry the
harness's ``SGTRUTH`` lines (JSON: the command, NVML readings, the end status), which the reader must not take for
SGLang's.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from tests.conftest import DATA
from tests.sglang_truth import case_flags

TRUTH = DATA / "truth_sglang"
LOGS = sorted((TRUTH / "logs").glob("*/*.log"))
CASES = [json.loads(line) for line in (TRUTH / "cases.jsonl").read_text().splitlines() if line.strip()]
CASE_OF_LOG = {str(TRUTH / c["source"]["log"]): c for c in CASES}


def _expected(text: str) -> dict:
    """The figures as SGLang printed them (this test's own reading)."""
    out: dict = {}
    m = re.search(r"Load weight end\. .*? mem usage=(\d+\.\d+) GB", text)
    out["weights"] = float(m.group(1)) if m else None
    m = re.search(r"max_total_num_tokens=(\d+), chunked_prefill_size=-?\d+, max_prefill_tokens=\d+, "
                  r"max_running_requests=(\d+)", text)
    if m:
        out["tokens"], out["mrr"] = int(m.group(1)), int(m.group(2))
    else:
        m = re.search(r"KV Cache is allocated\. dtype: [\w.]+, #tokens: (\d+)", text)
        out["tokens"], out["mrr"] = (int(m.group(1)) if m else None), None
    m = re.search(r"server_args=ServerArgs\(.*?, mem_fraction_static=([0-9.]+),", text)
    out["fraction"] = float(m.group(1))
    if "ValueError: Loaded weights leave no GPU memory for the KV cache" in text:
        out["error"] = ("no_kv_cache_memory", "kv_sizing")
    elif "torch.OutOfMemoryError: CUDA out of memory" in text and "decode_cuda_graph_runner.py" in text:
        out["error"] = ("out_of_memory", "graph_capture")
    else:
        out["error"] = None
    return out


def _cli(*argv: str) -> tuple[int, str]:
    from vramplan.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(list(argv))
    return code, buf.getvalue()


def test_the_committed_logs_are_the_cases():
    assert len(LOGS) == 15 and len(CASES) == 15
    assert set(CASE_OF_LOG) == {str(p) for p in LOGS}
    failed = sorted(c["id"].rsplit("-", 1)[1] for c in CASES if c["status"] == "failed")
    assert failed == ["q8b_frac018_fail", "q8b_frac0995"]  # q8b_frac097_fail started (its name is the expectation)


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_explain_json_recovers_the_logged_figures(log):
    exp = _expected(log.read_text(errors="replace"))
    code, out = _cli("explain", str(log), "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["engine_name"] == "sglang" and obj["kind"] == "sglang_log"
    assert obj["engine_version"] == "0.5.17"
    assert obj["weights_gib"] == exp["weights"]
    assert obj["kv_cache_tokens"] == exp["tokens"]
    assert obj["max_running_requests"] == exp["mrr"]
    assert obj["mem_fraction_static"] == exp["fraction"]
    if exp["error"] is None:
        assert (obj["verdict"], obj["error_kind"], obj["error_phase"]) == ("starts", None, None)
    else:
        assert obj["verdict"] == "fails"
        assert (obj["error_kind"], obj["error_phase"]) == exp["error"]


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_explain_text_recovers_the_logged_figures(log):
    exp = _expected(log.read_text(errors="replace"))
    code, out = _cli("explain", str(log))
    assert code == 0
    assert out.startswith("SGLang log") and "sglang 0.5.17" in out.splitlines()[0]
    assert re.search(rf"weights \(mem usage\):\s+{exp['weights']:.2f} GB", out)
    if exp["tokens"] is not None:
        assert f"{exp['tokens']:,} tokens" in out
    if exp["mrr"] is not None:
        assert f"max_total_num_tokens={exp['tokens']:,}, max_running_requests={exp['mrr']}," in out
    if exp["error"] is None:
        assert "FAILED" not in out
    else:
        assert f"FAILED ({exp['error'][0]}, {exp['error'][1]})" in out


def test_the_harness_lines_change_nothing_but_the_version():
    """Without the ``SGTRUTH`` lines the reader finds the same figures (the version, which only the harness line
    states for these runs, aside); with them an ended-ok run is not read as a failure nor the reverse."""
    from vramplan.engines.sglang.explain import facts_to_dict
    from vramplan.engines.sglang.log import read_sglang_log

    for log in LOGS:
        text = log.read_text(errors="replace")
        bare = "\n".join(line for line in text.splitlines() if not line.startswith("SGTRUTH "))
        with_harness, without = facts_to_dict(read_sglang_log(text)), facts_to_dict(read_sglang_log(bare))
        assert with_harness.pop("engine_version") == "0.5.17"
        without.pop("engine_version")
        without.pop("lines"), with_harness.pop("lines")
        assert with_harness == without, log.name


def test_progress_bars_glued_before_sglangs_lines():
    """tqdm's capture bars end with a carriage return or none, and the next log line runs on after them
    (``...| 0/58 [00:00<?, ?it/s][2026-12-06 05:41:18] ...`` in these logs): every key line read after a bar."""
    from vramplan.engines.sglang.explain import facts_to_dict
    from vramplan.engines.sglang.log import read_sglang_log

    bar = "\r  0%|          | 0/58 [00:00<?, ?it/s]\rCapturing num tokens (num_tokens=8192 avail_mem=13.12 GB): 100%|" \
          "##########| 58/58 [00:05<00:00, 10.0it/s]"
    keys = ("Load weight", "KV Cache is allocated", "Memory pool end", "graph end", "max_total_num_tokens=",
            "OutOfMemoryError", "ValueError: Loaded weights")
    for log in LOGS:
        text = log.read_text(errors="replace")
        glued = "\n".join(bar + line if any(k in line for k in keys) else line for line in text.splitlines())
        a, b = facts_to_dict(read_sglang_log(text)), facts_to_dict(read_sglang_log(glued))
        a.pop("lines"), b.pop("lines")
        a.pop("error_message"), b.pop("error_message")
        assert a == b, log.name


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_explain_compare_plans_with_the_logs_flags(log):
    """``explain --compare``: the startup the log describes is planned (its server_args, its baseline, its release)
    and set beside the log; the logged column is the log's."""
    case = CASE_OF_LOG[str(log)]
    exp = _expected(log.read_text(errors="replace"))
    code, out = _cli("explain", str(log), "--json", "--compare", "--model", case["model_src"])
    assert code == 0
    cmp = json.loads(out)["compare"]
    assert "rows" in cmp, cmp
    rows = {r["term"]: (r["predicted"], r["logged"]) for r in cmp["rows"]}
    assert rows["weights (GB)"][1] == exp["weights"]
    assert rows["KV tokens"][1] == exp["tokens"]
    assert rows["max_running_requests"][1] == exp["mrr"]
    assert rows["mem_fraction_static"] == (exp["fraction"], exp["fraction"])
    assert isinstance(rows["weights (GB)"][0], float) and rows["verdict"][0] in ("starts", "fails")
    if exp["tokens"] is not None and rows["KV tokens"][0] is not None:
        assert abs(rows["KV tokens"][0] - exp["tokens"]) / exp["tokens"] < 0.05  # the same pool, not another one
    code, text = _cli("explain", str(log), "--compare", "--model", case["model_src"], "--sglang-version", "0.5.17")
    assert code == 0 and "planned" in text and "no plan to compare" not in text


def test_explain_compare_without_a_model_says_why():
    log = TRUTH / "logs" / "h100a" / "q8b_default.log"  # its model path (/tmp/models/...) is the GPU machine's
    code, out = _cli("explain", str(log), "--json", "--compare")
    assert code == 0
    obj = json.loads(out)
    assert "unavailable" in obj["compare"] and obj["kv_cache_tokens"] == 363133
    assert "/tmp/models/q8b_default" in obj["compare"]["unavailable"] and "--model" in obj["compare"]["unavailable"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"].rsplit("-", 1)[1] for c in CASES])
def test_every_case_plans_with_sglangs_resolved_fraction(case):
    """The issue's bar: the default --mem-fraction-static exactly SGLang's. Each run is planned from its flags as
    ``bench/accuracy.py`` plans it (no internal error: a failing run is a verdict), and the fraction the plan resolves
    equals the one SGLang logged in its server_args (checked against the log here too)."""
    from vramplan.engines import sglang

    flags = case_flags(case)
    logged = case["measured"]["mem_fraction_static"]
    assert logged == _expected((TRUTH / case["source"]["log"]).read_text(errors="replace"))["fraction"]
    p = sglang.plan(case["model_src"], device="h100-80gb", sglang_version=case["engine_version"], flags=flags)
    assert p.engine_version == "0.5.17"
    assert p.resolved.mem_fraction_static == pytest.approx(logged, abs=1e-12)
    assert p.verdict in ("starts", "fails")


def test_a_log_cut_after_the_capture_began_is_still_a_capture_failure():
    """The tail a user pastes (from the capture on): no "Memory pool end" line, yet the out-of-memory error comes
    inside the decode graph capture (its begin line, the runner's frames in the traceback)."""
    from vramplan.engines.sglang.log import read_sglang_log

    lines = (TRUTH / "logs" / "h100a" / "q8b_frac0995.log").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "Capture target decode CUDA graph begin" in line)
    f = read_sglang_log("\n".join(lines[start:]))
    assert (f.error_kind, f.error_phase) == ("out_of_memory", "graph_capture")
    f = read_sglang_log("\n".join(["[2026-12-06 06:07:14] Load weight begin. avail mem=78.50 GB"]
                                   + lines[start + 1:]))
    assert (f.error_kind, f.error_phase) == ("out_of_memory", "graph_capture")  # the traceback's frames alone


def test_bench_plans_every_sglang_case():
    """``bench/accuracy.py``'s SGLang section: every case planned (no internal error), every failed run's error read
    from its log as the issue states it."""
    import sys

    sys.path.insert(0, str(DATA.parent / "bench"))
    try:
        from accuracy_sglang import evaluate_sglang
        from cases import load_sglang_cases
    finally:
        sys.path.remove(str(DATA.parent / "bench"))
    cases = load_sglang_cases()
    assert len(cases) == 15
    rows = [evaluate_sglang(c) for c in cases]
    assert not [r for r in rows if "error" in r]
    errors = {c.id.rsplit("-", 1)[1]: c.expected_error for c in cases if c.status == "failed"}
    assert errors == {"q8b_frac018_fail": ("no_kv_cache_memory", "kv_sizing"),
                      "q8b_frac0995": ("out_of_memory", "graph_capture")}
    for r in rows:
        assert r["mem_fraction_static"][0] == pytest.approx(r["mem_fraction_static"][1], abs=1e-12)


def _facts(text: str) -> dict:
    from vramplan.engines.sglang.explain import facts_to_dict
    from vramplan.engines.sglang.log import read_sglang_log

    d = facts_to_dict(read_sglang_log(text))
    d.pop("lines")
    return d


def test_the_real_logs_as_json_lines_read_the_same():
    """The same lines shipped as JSON lines (a log collector's ``{"message": ...}``) give the same facts."""
    for log in LOGS:
        text = log.read_text(errors="replace")
        as_json = "\n".join(json.dumps({"level": "INFO", "message": line}) for line in text.splitlines())
        assert _facts(as_json) == _facts(text), log.name


def test_every_prefix_of_a_real_log_reads_a_subset_of_its_figures():
    """A log cut anywhere (a server still starting, a pasted head) is read without error, and every figure it
    gives is the whole log's (a later line never changes an earlier figure); a failure appears only once its error
    line is in the prefix."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    texts = {log.name: log.read_text(errors="replace").splitlines() for log in LOGS
             if log.stat().st_size < 60_000}  # the logs under 60 kB (both failures among them), to keep it quick
    full = {name: _facts("\n".join(lines)) for name, lines in texts.items()}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(sorted(texts)), st.floats(0, 1))
    def check(name, cut):
        lines = texts[name]
        part = _facts("\n".join(lines[: max(1, int(len(lines) * cut))]))
        whole = full[name]
        for key in ("weights_gib", "kv_cache_tokens", "max_total_num_tokens", "max_running_requests",
                    "mem_fraction_static", "kv_dtype", "context_len", "architecture"):
            assert part[key] is None or part[key] == whole[key], (name, key)
        for key, value in part["memory_gb"].items():
            assert value is None or value == whole["memory_gb"][key], (name, key)
        if part["error_kind"] is not None:
            assert (part["error_kind"], part["error_phase"]) == (whole["error_kind"], whole["error_phase"])

    check()
