"""The release of a log that prints no version line, inferred from the lines it does print
(vramplan.engines.vllm.log.release), and ``explain --compare`` at that release.

Expected values are the logs' own figures (seed 001: weights 9.1948 GB / 9.19 GiB, 645,120 tokens) and the
releases the committed logs' records name (data/public, data/truth, data/device_v026, tests/fixtures/vllm034).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, run_cli
from vramplan.engines.vllm.log import parse_log_text, read_log
from vramplan.engines.vllm.log.release import CLUES, infer_release
from vramplan.engines.vllm.rules.versions import for_version, parse_version
from vramplan.errors import LogParseError
from vramplan.explain import compare

SEED = next((DATA / "seeds").glob("001_*.txt"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# every line the reader takes a version from: the engine line, server version / banner, system fingerprints
VERSION_LINE = re.compile(r"LLM engine \(v\d|version:? v?\d+\.\d+\.\d+|vllm-\d+\.\d+\.\d+")


def _strip_versions(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not VERSION_LINE.search(ln))


def _known_release_logs() -> list[tuple[Path, str]]:
    """(log, release its record names) for every committed log whose release is known, not guessed."""
    out: list[tuple[Path, str]] = []
    for line in (DATA / "public" / "vllm_startup_cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        m = re.match(r"(?:vllm-ascend )?v?(\d+\.\d+\.\d+(?:rc\d+)?(?:\.dev\d+)?)", case.get("vllm_version") or "")
        log = DATA / "public" / "logs" / f"{case['id']}.log"
        if m and not case.get("version_inferred") and log.is_file():
            out.append((log, m.group(1)))
    for line in (DATA / "truth" / "cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        _, _, batch, name = case["id"].split("-", 3)
        out.append((DATA / "truth" / "logs" / batch / f"{name}.log", case["vllm_version"]))
    for line in (DATA / "device_v026" / "cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        out.append((DATA / "device_v026" / f"{case['id'].removeprefix('device-v026-')}.log", case["vllm_version"]))
    out += [(p, "0.34.0") for p in sorted((FIXTURES / "vllm034").glob("*.log"))]  # their README: vLLM 0.34.0
    return [(p, v) for p, v in out if p.is_file()]


KNOWN = _known_release_logs()
# logs whose lines are not vLLM's own print of the release their record names, with why
NOT_VERBATIM = {
    # "Model loading took 27.52 GiB and 6.27 seconds": retyped (vLLM prints %.6f seconds, and 0.28.0 says "GiB
    # memory and" and prints the KV tokens and the concurrency on one line); the lines are those of 0.27 or older
    "qwen3-14b-fp16-l40s-v0280-default.log",
}


# --------------------------------------------------------------------------------------------- seed 001


def test_seed_001_is_inferred_from_its_lines_not_defaulted():
    f = read_log(SEED)
    assert f.vllm_version is None  # the seed prints no version line
    inf = infer_release(f)
    # its profiling summary says "non-torch forward increase memory" (vLLM <= 0.26), its KV cache comes from
    # vllm-ascend's memory_profiling worker ("Available KV cache memory", vllm-ascend >= 0.14) and no vllm-ascend
    # release runs past vLLM 0.23: 0.14-0.23, never the Ascend plan default 0.33
    assert (inf.low, inf.high) == ("0.14", "0.23")
    assert parse_version(inf.version) <= (0, 23, 0)
    names = " ".join(inf.evidence)
    assert "non-torch forward increase memory" in names and "Available KV cache memory" in names
    # "Requested memory: 0.95 (util)" is vLLM <= 0.13's %.2f: it disagrees with the memory_profiling worker's
    # lines, is set aside and said
    assert inf.ambiguous and any("(util)" in s for s in inf.set_aside)
    assert "release not in the log; inferred 0.14-0.23" in inf.note
    # the rules that stand in for vllm-ascend 0.14-0.18 (v0.19) are inside the range
    assert for_version("0.14.0", platform="ascend").label == "v0.19.0"


def test_seed_001_compared_at_its_inferred_release_matches_its_weights():
    f = read_log(SEED)
    _, rows = compare(f)
    t = {term: (p, lg) for term, p, lg in rows}
    pred, logged = t["weights (GiB)"]
    assert logged == 9.1948  # "Loading model weights took 9.1948 GB"
    assert abs(pred / logged - 1) < 0.01  # the README's bar for weights (1%); 9.17 vs 9.19
    pred_tokens, logged_tokens = t["KV cache tokens"]
    assert logged_tokens == 645_120 and abs(pred_tokens / logged_tokens - 1) < 0.01
    # at the Ascend default (0.33) the M-RoPE cache is 1 row per position (vLLM 0.32+): 0.19 GiB less, 2.3% off
    _, rows033 = compare(f, vllm_version="0.33")
    w033 = {term: p for term, p, _ in rows033}["weights (GiB)"]
    assert abs(w033 / logged - 1) > 0.02
    # every rule set in the inferred range plans the seed alike: its comparison at 0.19 is the same
    _, rows019 = compare(f, vllm_version="0.19")
    assert rows019 == rows


def test_seed_001_cli_says_it_inferred_and_the_user_version_wins():
    code, out, err = run_cli("explain", str(SEED), "--compare")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "release not in the log; inferred 0.14-0.23" in flat
    assert "rules (release inferred from the log's lines" in flat
    code, out, _ = run_cli("explain", str(SEED), "--compare", "--json")
    obj = json.loads(out)
    assert obj["vllm_version"] is None  # what the log said: nothing
    inf = obj["release_inference"]
    assert inf["inferred"] is True and inf["range"] == "0.14-0.23" and inf["evidence"] and inf["ambiguous"] is True
    assert obj["compare"]["vllm_version_source"] == "inferred" and obj["compare"]["vllm_version"] == inf["version"]
    # every other rule set of 0.14-0.23 (v0.19-v0.22) was planned too and gives the same comparison
    checks = obj["compare"]["range_check"]
    assert {c["rules"] for c in checks} == {"v0.19.0", "v0.20.0", "v0.21.0", "v0.22.0"}
    assert all(c["same"] and not c["differs"] for c in checks)
    assert "plan this log alike" in flat
    code, out, _ = run_cli("explain", str(SEED), "--compare", "--json", "--vllm-version", "0.33")
    obj = json.loads(out)
    assert obj["compare"]["vllm_version_source"] == "user" and obj["compare"]["rules"] == "v0.33.0"
    assert obj["release_inference"]["range"] == "0.14-0.23"  # still reported
    assert obj["compare"]["range_check"] == []  # the user chose: no range to check
    code, _, err = run_cli("explain", str(SEED), "--vllm-version", "x.y")
    assert code == 2 and err.count("\n") == 1 and "not a vLLM version" in err


def test_a_version_line_is_never_replaced():
    f = read_log(DATA / "device_v026" / "qwen3-8b_graph_8k-1024.log")
    assert f.vllm_version == "0.26.0"
    code, out, _ = run_cli("explain", str(DATA / "device_v026" / "qwen3-8b_graph_8k-1024.log"), "--json")
    assert json.loads(out)["release_inference"] is None


# ------------------------------------------------------------------------------------- committed logs


def test_every_committed_log_of_a_known_release_lands_in_its_range():
    """Strip the version lines of every committed log whose record names its release: the release inferred
    from the remaining lines contains it (to the minor release), and the chosen release is inside the range."""
    assert len(KNOWN) >= 100
    checked = 0
    for path, release in KNOWN:
        try:
            f = parse_log_text(_strip_versions(path.read_text(encoding="utf-8", errors="replace")))
        except LogParseError:
            continue  # a few records keep a table, not a log
        assert f.vllm_version is None, path
        inf = infer_release(f)
        assert inf.version and inf.note.startswith("release not in the log"), path
        lo = parse_version(inf.low)[:2] if inf.low else (0, 0)
        hi = parse_version(inf.high)[:2] if inf.high else (99, 0)
        assert lo <= parse_version(inf.version)[:2] <= hi, (path, inf.version, inf.range)
        if path.name in NOT_VERBATIM:
            assert not lo <= parse_version(release)[:2] <= hi, f"{path.name} is in range now: drop it from NOT_VERBATIM"
            continue
        if ".dev" in release:
            # a build from the main branch N commits after that release: its lines may be any later release's
            assert parse_version(release)[:2] <= hi, (path.name, release, inf.range, inf.evidence)
        else:
            assert lo <= parse_version(release)[:2] <= hi, (path.name, release, inf.range, inf.evidence)
        checked += 1
    assert checked >= 100


@pytest.mark.parametrize("name, release", [
    ("qwen3-32b-4x910b4-tp4-v090-ascend.log", "0.9.0"),  # vllm-ascend's worker_v1.py in its traceback
    ("llama31-8b-rtx3090-len29k-fail.log", "0.6.4"),  # V0's one-line profiling summary (0.6.3-0.6.4)
    # "[kv_cache_utils.py:1286] GPU KV cache size": vLLM 0.12.0's line (0.13.0 logs it at 1291), on an Ascend NPU:
    # vllm-ascend 0.12's own NPU worker rules
    ("qwen3-next-80b-ascend-tp4-v012rc1.log", "0.12.0"),
])
def test_the_comparison_lands_on_the_rules_of_the_known_release(name, release):
    """Where the lines pin the rule set, the comparison without a version line is the one at the known release."""
    path = DATA / "public" / "logs" / name
    f = parse_log_text(_strip_versions(path.read_text()))
    case = next(json.loads(x) for x in (DATA / "public" / "vllm_startup_cases.jsonl").read_text().splitlines()
                if json.loads(x)["id"] == path.stem)
    from vramplan.inputs.model_source import catalog_ids

    model = case["model"].split(" ")[0]
    if model not in catalog_ids():
        pytest.skip(f"{model} not in the catalog")
    device = {"910B4": "ascend-910b4", "910B": "ascend-910b3", "Ascend": "ascend-910b3", "3090": "rtx-3090"}
    dev = next((v for k, v in device.items() if k in case["hardware"]["device"]), None)
    p_inf, rows_inf = compare(f, model=model, device=dev)
    p_known, rows_known = compare(f, model=model, device=dev, vllm_version=release)
    assert p_inf.rules.label == p_known.rules.label
    assert rows_inf == rows_known


def test_the_032_mrope_change_is_on_the_right_side_of_every_inferred_range():
    # the seed's weights differ between the rule sets before and after 0.32 (M-RoPE cache rows); its inferred range
    # lies wholly before 0.32, so every rule set in it plans the same weights
    inf = infer_release(read_log(SEED))
    assert parse_version(inf.high) < (0, 32, 0)
    assert not for_version(inf.version, platform="ascend").mrope_positions_factor


# ------------------------------------------------------------------------------------------- clues


def test_clues_cite_their_source_and_bounds_are_ordered():
    for clue, test in CLUES:
        assert clue.source and clue.says and callable(test)
        assert clue.low is None or clue.end is None or clue.low < clue.end
        assert re.search(r"vLLM|vllm-ascend", clue.source)


@pytest.mark.parametrize("lines, low, high", [
    # vLLM 0.33.0 mem_utils.py:MemoryProfilingResult.__repr__ and the one-line KV size of 0.28+
    (["INFO 01-01 00:00:00 [gpu_worker.py:1] Memory profiling takes 3.1 seconds. Total non KV cache memory: 17.0GiB; "
      "torch peak memory increase: 1.2GiB; total consumed (from mem_get_info): 15.8GiB; weights memory: 15.3GiB.",
      "INFO 01-01 00:00:00 [kv_cache_utils.py:1] GPU KV cache size: 100,000 tokens, Maximum concurrency for 4,096 "
      "tokens per request: 24.41x"], "0.28", "0.33"),
    # vLLM 0.19-0.26's repr and two-line KV size, the %f util: 0.14-0.26
    (["INFO 01-01 00:00:00 [gpu_worker.py:1] Initial free memory: 78.5 GiB; Requested memory: 0.900000 (util), 71.3 GiB",
      "INFO 01-01 00:00:00 [gpu_worker.py:1] Memory profiling takes 3.1 seconds. Total non KV cache memory: 17.0GiB; "
      "torch peak memory increase: 1.2GiB; non-torch forward increase memory: 0.5GiB; weights memory: 15.3GiB.",
      "INFO 01-01 00:00:00 [kv_cache_utils.py:1] GPU KV cache size: 100,000 tokens"], "0.14", "0.26"),
    # vLLM 0.12/0.13: "%.4f GiB memory and", util %.2f
    (["INFO 01-01 00:00:00 [gpu_model_runner.py:1] Model loading took 15.2683 GiB memory and 3.1 seconds",
      "INFO 01-01 00:00:00 [gpu_worker.py:1] Initial free memory: 78.50 GiB; Requested memory: 0.90 (util), 71.30 GiB"],
     "0.10.1", "0.13"),
])
def test_ranges_from_hand_written_lines(lines, low, high):
    inf = infer_release(parse_log_text("\n".join(lines)), platform="cuda")
    assert (inf.low, inf.high) == (low, high)
    assert inf.version.startswith(high)


def test_vllm_ascend_package_version_pins_the_release():
    text = ("vllm_ascend==0.13.0\ntorch_npu==2.5.1.post1\nCANN version: 8.1.RC1\n"
            "INFO 01-01 00:00:00 [worker_v1.py:194] Available memory: 46600000000, total memory: 65452113920")
    f = parse_log_text(text)
    assert f.packages == {"vllm_ascend": "0.13.0", "torch_npu": "2.5.1.post1", "cann": "8.1.RC1"}
    inf = infer_release(f, platform="ascend")
    assert (inf.low, inf.high, inf.version) == ("0.13", "0.13", "0.13.0")
    assert for_version(inf.version, platform="ascend").non_kv_formula == "absolute_peak"  # the NPU worker's own
    assert "cann 8.1.RC1" in inf.seen and any("torch_npu 2.5.1.post1" in e for e in inf.evidence)


@pytest.mark.parametrize("torch_npu, low, high", [
    ("2.5.1.post1", None, "0.13"),  # vllm-ascend 0.9.1 requires 2.5.1.post1, 0.14.0rc1 already 2.9.0
    ("2.9.0", "0.9.2", "0.22"),  # 0.14.0rc1 and 0.18.0 require 2.9.0; 0.9.1 2.5; 0.23.0 2.10
    ("2.10.0.post4", "0.18.1", "0.23"),  # 0.23.0 requires it, and no vllm-ascend read is newer
])
def test_torch_npu_bounds_the_vllm_ascend_release(torch_npu, low, high):
    f = parse_log_text(f"torch_npu=={torch_npu}\nINFO 01-01 00:00:00 [x.py:1] GPU KV cache size: 1,000 tokens")
    inf = infer_release(f, platform="ascend")
    assert (inf.low, inf.high) == (low, high), inf.evidence
    assert any(e.startswith(f"torch_npu {torch_npu}") for e in inf.evidence)


def test_a_torch_npu_that_disagrees_with_the_worker_lines_is_set_aside():
    # torch_npu 2.5 (vllm-ascend <= 0.13) beside vLLM's memory profiling worker (>= 0.14): the worker decides
    f = parse_log_text("torch_npu==2.5.1\nINFO 01-01 00:00:00 [worker.py:1] Available KV cache memory: 4.0 GiB")
    inf = infer_release(f, platform="ascend")
    assert inf.low == "0.14" and any(s.startswith("torch_npu 2.5.1") for s in inf.set_aside) and inf.ambiguous


def test_ascend_old_worker_line_alone_means_the_old_worker():
    f = parse_log_text("INFO 01-01 00:00:00 [worker_v1.py:194] Available memory: 46600000000, total memory: 65452113920")
    inf = infer_release(f, platform="ascend")
    assert inf.high == "0.13" and for_version(inf.version, platform="ascend").label == "v0.12.0"


def test_a_log_with_no_clue_is_ambiguous_and_uses_the_newest_consistent_release():
    f = parse_log_text("ERROR 01-01 00:00:00 [core.py:1] EngineCore failed to start.")
    cuda = infer_release(f, platform="cuda")
    assert cuda.version == "0.33.0" and cuda.ambiguous and "ambiguous" in cuda.note
    npu = infer_release(f, platform="ascend")
    assert npu.version == "0.23.0" and npu.high == "0.23"


def test_v0_logs_get_v0_rules():
    f = read_log(DATA / "public" / "logs" / "llama3-8b-tp2-80g-pr10511.log")
    inf = infer_release(f)
    assert for_version(inf.version, allow_older=True).engine == "v0"


# ------------------------------------------------------------------------------------------ fuzzing

_LINES = [ln for p, _ in KNOWN[::7] for ln in p.read_text(errors="replace").splitlines()
          if any(k in ln for k in ("GiB", "KV cache", "Model loading", "memory", "ascend", "worker_v1"))][:400]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(st.sampled_from(_LINES), st.text(max_size=200)), max_size=30),
       st.sampled_from(["cuda", "ascend", "rocm", None]), st.data())
def test_inference_never_crashes_on_mangled_logs(lines, platform, data):
    mangled = []
    for ln in lines:
        if ln and data.draw(st.booleans()):
            cut = data.draw(st.integers(0, len(ln)))
            ln = ln[:cut] + data.draw(st.text(max_size=10)) + ln[cut:][:50]
        mangled.append(ln)
    try:
        f = parse_log_text("\n".join(mangled))
    except LogParseError:
        return
    inf = infer_release(f, platform=platform)
    assert parse_version(inf.version)
    json.dumps(inf.to_dict())
    assert inf.note.startswith("release not in the log")


def test_web_explain_takes_the_version_and_reports_the_inference():
    from vramplan.web.service import explain_json

    obj = explain_json({"log": SEED.read_text(), "compare": True})
    assert obj["compare"]["vllm_version_source"] == "inferred" and obj["release_inference"]["range"] == "0.14-0.23"
    obj = explain_json({"log": SEED.read_text(), "compare": True, "vllm_version": "0.33"})
    assert obj["compare"]["rules"] == "v0.33.0" and obj["compare"]["vllm_version_source"] == "user"


@pytest.mark.parametrize("line, platform, low, high", [
    # vLLM 0.26.0 v1/worker/gpu_worker.py: logger.info_once( at 560 (0.25.0: 538, 0.27.0: 563)
    ("(EngineCore pid=1) INFO 11-22 16:37:07 [v1/worker/gpu_worker.py:560] Available KV cache memory: 54.93 GiB",
     "cuda", "0.25.1", "0.26"),
    # vLLM 0.12.0 v1/core/kv_cache_utils.py:1286 "GPU KV cache size" (0.13.0: 1291; 0.12.0 is the oldest read)
    ("(EngineCore_DP0 pid=712) INFO 12-16 02:36:34 [kv_cache_utils.py:1286] GPU KV cache size: 282,240 tokens",
     "cuda", None, "0.12"),
    # vllm-ascend 0.23.0 vllm_ascend/worker/worker.py:593 (0.18.0: 357); no vllm-ascend read after 0.23
    ("(Worker_PP0_TP0 pid=4633) INFO [worker.py:593] Available KV cache memory: 51.98 GiB", "ascend", "0.18.1", "0.23"),
])
def test_the_line_a_message_is_logged_from_names_the_release(line, platform, low, high):
    inf = infer_release(parse_log_text(line), platform=platform)
    assert (inf.low, inf.high) == (low, high), inf.evidence
    assert any("logged from" in e for e in inf.evidence)


def test_a_line_number_no_release_read_uses_is_no_clue():
    inf = infer_release(parse_log_text("INFO 01-01 [gpu_worker.py:1] Available KV cache memory: 4.0 GiB"), platform="cuda")
    assert not any("logged from" in e for e in inf.evidence)


def test_a_range_whose_rule_sets_disagree_says_how():
    # Qwen3-Next on Ascend, vLLM 0.12 lines: only vllm-ascend's own NPU worker rules (v0.12.0) run V1 at or below
    # 0.12 on Ascend, so nothing else is planned; asked at 0.19 (memory_profiling) the non-torch term differs
    from vramplan import explain

    log = DATA / "public" / "logs" / "qwen3-next-80b-ascend-tp4-v012rc1.log"
    x = explain(log, compare=True, model="Qwen/Qwen3-Next-80B-A3B-Instruct", device="ascend-910b3")
    assert x.plan.rules.label == "v0.12.0" and x.release_source == "inferred"
    assert [label for label, _ in x.release.rule_sets] == ["v0.12.0"] and x.range_check == ()
    from vramplan.explain import range_check

    fake = type("R", (), {"rule_sets": (("v0.19.0", "0.19.0"),)})()
    diff = range_check(x.facts, fake, x.compare_rows, model="Qwen/Qwen3-Next-80B-A3B-Instruct", device="ascend-910b3")
    assert diff[0]["same"] is False and "non-torch increase (GiB)" in diff[0]["differs"]
