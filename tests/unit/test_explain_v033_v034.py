"""``explain`` on every committed real vLLM 0.33 and 0.34 log (issue 13 item 3).

The logs: data/truth/logs/h100e, h100f, h100g (the harness's one-startup-per-file logs, see their READMEs) and the
``vllm serve`` record data/watch/vllm-0.34-qwen3-8b-h100/output.log. Expected values are read here with this
file's own regexes from vLLM's lines (and the block count from the harness's RESULT line, which reads
``cache_config.num_gpu_blocks`` in the engine process: bench/truth/measure_truth.py), never from vramplan's reader.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, run_cli
from vramplan.api import explain
from vramplan.errors import VramplanError

LOGS = sorted(p for d in ("h100e", "h100f", "h100g") for p in (ROOT / "data" / "truth" / "logs" / d).glob("*.log"))
SERVE = ROOT / "data" / "watch" / "vllm-0.34-qwen3-8b-h100" / "output.log"
ALL = LOGS + [SERVE]
NUM = r"(\d+(?:\.\d+)?)"


def _first(rx: str, text: str):
    m = re.search(rx, text)
    return m.groups() if m else None


def expected(text: str) -> dict:
    """The figures the log states, read with this test's own patterns (vLLM v0.33.0/v0.34.0 format strings)."""
    e: dict = {}
    m = _first(r"vllm_version\": \"(0\.3[34]\.\d+)\"", text) or _first(r"LLM engine \(v(0\.3[34]\.\d+)\)", text) \
        or _first(r"version (0\.3[34]\.\d+)", text)
    e["version"] = m[0] if m else None
    m = _first(rf"Model loading took {NUM} GiB", text)
    e["weights"] = float(m[0]) if m else None
    m = _first(rf"Total non KV cache memory: {NUM} ?GiB; torch peak memory increase: {NUM} ?GiB; total consumed "
               rf"\(from mem_get_info\): {NUM} ?GiB; weights memory: {NUM} ?GiB", text)
    if m:
        e["non_kv"], e["peak"], e["consumed"], e["profile_weights"] = map(float, m)
    m = _first(rf"Available KV cache memory: {NUM} GiB", text)
    e["kv_gib"] = float(m[0]) if m else None
    m = _first(r"KV cache size: ([\d,]+) tokens, Maximum concurrency for ([\d,]+) tokens per request: "
               rf"{NUM}x", text)
    if m:
        e["tokens"], e["conc_len"], e["conc"] = int(m[0].replace(",", "")), int(m[1].replace(",", "")), float(m[2])
    m = _first(rf"Memory after warmup: {NUM} ?GiB free, {NUM} ?GiB committed to the KV cache, {NUM} ?GiB kept for "
               rf"transient activations \({NUM} ?GiB allocated at peak, {NUM} ?GiB of torch reservation growth\); "
               rf"(\d+) KV cache blocks \({NUM} ?GiB\) fit within the requested {NUM} ?GiB\. Torch may reserve up to "
               rf"{NUM} ?GiB", text)
    if m:
        e["warmup"] = dict(zip(("free", "committed", "kept", "peak", "growth", "blocks", "kv", "requested", "limit"),
                               [int(v) if i == 5 else float(v) for i, v in enumerate(m)]))
    m = _first(rf"Extended KV cache to (\d+) blocks \({NUM} ?GiB\)", text)
    if m:
        e["extended"] = (int(m[0]), float(m[1]))
    m = _first(rf"caps this instance at {NUM} GiB, keeping {NUM} GiB of free device memory", text)
    if m:
        e["withheld"] = float(m[1])
    m = _first(rf"CUDA graph pool memory: {NUM} GiB \(actual\), {NUM} GiB \(estimated\)", text)
    if m:
        e["graph_actual"], e["graph_est"] = map(float, m)
    m = _first(r'"num_gpu_blocks": (\d+)', text)  # the harness's RESULT line (engine's cache_config)
    e["result_blocks"] = int(m[0]) if m else None
    m = _first(r"--src (\S+)", text)
    e["model"] = m[0] if m else "vramplan/catalog/Qwen/Qwen3-8B"  # the serve record: Qwen3-8B (its README)
    e["oom"] = "OutOfMemoryError" in text
    return e


def _text(x) -> str:
    from rich.console import Console

    from vramplan.render.explain import render_explanation

    buf = io.StringIO()
    render_explanation(x, Console(file=buf, width=400, color_system=None))
    return buf.getvalue()


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def test_the_logs_are_all_here():
    versions = [expected(p.read_text())["version"] for p in ALL]
    assert versions.count("0.33.0") == 7 and versions.count("0.34.0") == len(ALL) - 7


@pytest.mark.parametrize("log", ALL, ids=_ids)
def test_every_figure_the_log_states_is_recovered(log):
    e = expected(log.read_text())
    x = explain(str(log), compare=True, model=e["model"], device="h100-80gb")
    f, d = x.facts, x.to_dict()
    assert f.vllm_version == e["version"]
    mem = d["memory_gib"]
    if e["weights"] is not None:
        assert mem["weights"] == e["weights"]
    if "consumed" in e:
        assert (mem["non_kv_total"], mem["activation_peak"], mem["total_consumed"]) == \
            (e["non_kv"], e["peak"], e["consumed"])
    if e["kv_gib"] is not None:
        assert mem["kv_cache"] == e["kv_gib"]
    if "tokens" in e:
        assert (d["kv_cache_tokens"], d["max_concurrency"], d["max_model_len"]) == (e["tokens"], e["conc"],
                                                                                     e["conc_len"])
    if "graph_actual" in e:
        assert (mem["cudagraph_actual"], mem["cudagraph_estimate"]) == (e["graph_actual"], e["graph_est"])
    ext = d["extensible_kv_cache"] or {}
    if "warmup" in e:
        w = e["warmup"]
        assert (ext["free_after_warmup_gib"], ext["committed_before_gib"], ext["kept_transient_gib"],
                ext["transient_peak_gib"], ext["torch_reserve_growth_gib"], ext["kv_after_warmup_blocks"],
                ext["kv_after_warmup_gib"], ext["torch_memory_limit_gib"]) == \
            (w["free"], w["committed"], w["kept"], w["peak"], w["growth"], w["blocks"], w["kv"], w["limit"])
    if "extended" in e:
        assert (d["num_gpu_blocks"], ext["kv_committed_gib"]) == e["extended"]
    if "withheld" in e:
        assert ext["util_withheld_gib"] == e["withheld"]
    # blocks: shown only where exact, and then equal to the engine's own count
    kb = d["kv_blocks"]
    if kb["blocks"] is not None:
        assert kb["blocks"] == (e["extended"][0] if "extended" in e else e["result_blocks"])
    elif "tokens" in e:
        assert kb["why"].startswith("not logged")
    # --compare plans with the release the log states, with rows for the terms it logged
    assert d["compare"]["vllm_version"] == e["version"] and d["compare"]["vllm_version_source"] == "log"
    assert d["compare"]["rules"] == "v" + e["version"]
    terms = {r["term"]: r for r in d["compare"]["rows"]}
    if "consumed" in e:
        assert terms["total consumed (GiB)"]["logged"] == e["consumed"]
    if kb["source"] == "derived":
        assert terms["GPU blocks (logged tokens / block size)"]["logged"] == e["result_blocks"]
    if "extended" in e:
        assert terms["KV cache committed (GiB)"]["logged"] == e["extended"][1]
        assert terms["KV blocks measured (this rank)"]["logged"] == e["warmup"]["blocks"]
        assert terms["torch may reserve up to (GiB)"]["logged"] == e["warmup"]["limit"]
    if "withheld" in e:
        assert terms["held back by util (GiB)"]["logged"] == e["withheld"]
    reserved = re.findall(r"Committed \d+ of (\d+) KV cache blocks", log.read_text())
    if reserved and "reserved blocks" in terms:
        assert terms["reserved blocks"]["logged"] == int(reserved[-1])
    for t in ("KV cache committed (GiB)", "held back by util (GiB)", "torch may reserve up to (GiB)"):
        assert t not in terms or terms[t]["predicted"] is not None or terms[t]["logged"] is not None
    json.dumps(d, default=str)


@pytest.mark.parametrize("log", ALL, ids=_ids)
def test_the_text_states_them_and_the_summary_is_complete(log):
    e = expected(log.read_text())
    x = explain(str(log), compare=True, model=e["model"], device="h100-80gb")
    out = _text(x)
    summary = x.diagnosis.summary
    assert "?" not in summary
    if e["weights"] is not None and not e["oom"]:
        assert f"weights {e['weights']:.2f} GiB" in summary
    if "consumed" in e and not e["oom"]:
        assert f"total consumed {e['consumed']:.2f} GiB" in summary
        assert f"non-KV total {e['non_kv']:.2f} GiB" in summary
        assert re.search(rf"total consumed \(weights \+ non-torch, mem_get_info\)\s+│\s+{e['consumed']:.2f}", out)
    if "tokens" in e:
        assert f"{e['tokens']:,} tokens" in summary and f"{e['tokens']:,} tokens" in out
        blocks = e["extended"][0] if "extended" in e else e["result_blocks"]
        assert f"KV cache: {blocks:,} blocks" in out  # every committed log: derivable exactly
        assert "? blocks" not in out
    if "extended" in e:
        assert f"extended the KV cache to {e['extended'][0]} blocks ({e['extended'][1]:.2f} GiB)" in summary
    if "warmup" in e:
        w = e["warmup"]
        assert f"{w['free']:.2f} GiB was free" in summary and f"{w['kept']:.2f} GiB was kept" in summary
        assert f"{w['committed']:.2f} GiB was already committed" in summary
    if "withheld" in e:
        assert f"held {e['withheld']:.2f} GiB of free memory" in summary
    if "tokens" not in e and not e["oom"] and "Error" not in (x.facts.error_message or "Error"):
        assert out.count("INCOMPLETE") == 1 or x.facts.error_kind
    assert f"planned with vLLM v{e['version']} rules (the log's version)" in out
    # a process with none of the figures (the API server) is no column of '?'
    assert "APIServer" not in out


def test_the_harness_stopped_run_is_not_called_started():
    x = explain(str(ROOT / "data" / "truth" / "logs" / "h100f" / "g3_e_unset.log"))
    assert x.to_dict()["verdict"] is None and "ends before the startup finished" in x.diagnosis.summary
    assert "STARTED" not in _text(x)


def test_the_warmup_oom_after_the_commit_is_a_warmup_failure():
    text = (ROOT / "data" / "truth" / "logs" / "h100e" / "nemoh_trim.log").read_text()
    committed = re.findall(r"Committed (\d+) of (\d+) KV cache blocks \((\d+\.\d+) GiB physical\)", text)[-1]
    x = explain(str(ROOT / "data" / "truth" / "logs" / "h100e" / "nemoh_trim.log"))
    assert "in warmup_kernels" in text and x.facts.error_phase == "warmup"
    assert f"committed {int(committed[0]):,} of its {int(committed[1]):,} reserved blocks ({committed[2]} GiB" \
        in x.diagnosis.summary


def test_without_compare_the_033_blocks_say_why():
    x = explain(str(ROOT / "data" / "truth" / "logs" / "h100g" / "q8b_e_base.log"))
    assert x.kv_blocks.blocks is None and "--compare derives" in x.kv_blocks.why
    out = _text(x)
    assert "? blocks" not in out and "KV cache: 394,944 tokens" in out


def test_cli_text_and_json_on_a_033_and_a_034_log():
    for log, version in (("h100f/q06b_e_base.log", "0.33.0"), ("h100e/q8b_e_base.log", "0.34.0")):
        path = str(ROOT / "data" / "truth" / "logs" / log)
        model = expected(Path(path).read_text())["model"]
        code, out, err = run_cli("explain", path, "--compare", "--model", model, "--device", "h100-80gb", "--json")
        assert code == 0, err
        d = json.loads(out)
        assert d["compare"]["vllm_version"] == version and d["kv_blocks"]["blocks"]
        code, out, err = run_cli("explain", path, "--compare", "--model", model, "--device", "h100-80gb")
        assert code == 0 and f"planned with vLLM v{version} rules" in out and "? blocks" not in out


_TEXTS = {p.name: p.read_text().splitlines(keepends=True) for p in (
    ROOT / "data" / "truth" / "logs" / "h100g" / "q06b_g_base.log", ROOT / "data" / "truth" / "logs" / "h100e" /
    "q8b_e_base.log", ROOT / "data" / "truth" / "logs" / "h100e" / "nemoh_trim.log", SERVE)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_TEXTS)), data=st.data())
def test_a_truncated_log_never_raises(name, data):
    lines = _TEXTS[name]
    start = data.draw(st.integers(0, len(lines)))
    end = data.draw(st.integers(start, len(lines)))
    cut = data.draw(st.integers(0, 200))
    text = "".join(lines[start:end])
    if end < len(lines) and cut:  # cut mid-line as well
        text += lines[end][:cut]
    if "\n" not in text:
        text += "\n"
    try:
        x = explain(text, compare=data.draw(st.booleans()), model="vramplan/catalog/Qwen/Qwen3-8B",
                    device="h100-80gb")
    except VramplanError as exc:  # no vLLM line left: the user's one-line error, never an internal one
        assert "\n" not in exc.one_line() and "no vLLM log lines" in exc.one_line()
        return
    json.dumps(x.to_dict(), default=str)
    _text(x)


def test_blocks_are_not_derived_where_they_would_not_be_exact():
    from dataclasses import replace

    from vramplan.api import plan
    from vramplan.engines.vllm.log import read_log
    from vramplan.engines.vllm.sizing.v033_log import block_count

    f = read_log(str(ROOT / "data" / "truth" / "logs" / "h100g" / "q8b_e_base.log"))
    for model in ("google/gemma-3-4b-it", "Qwen/Qwen3.5-9B"):  # several KV cache groups (sliding / GDN + full)
        kb = block_count(f, plan(model, device="h100-80gb", vllm_version="0.33.0", max_model_len=4096))
        assert kb.blocks is None and "KV cache groups" in kb.why
    p = plan("Qwen/Qwen3-8B", device="h100-80gb", vllm_version="0.33.0", max_model_len=4096)
    assert block_count(f, p).blocks == 394_944 // 16  # one full-attention group of 16-token blocks
    assert block_count(replace(f, kv_cache_tokens=394_944 + 8), p).blocks is None  # not whole blocks
    assert block_count(replace(f, max_concurrency=90.0), p).blocks is None  # does not reproduce the logged figure
