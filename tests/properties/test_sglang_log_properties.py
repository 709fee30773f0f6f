"""The SGLang log reader on truncated and mutated logs: a result or one clear error, never a crash.

The logs are the synthetic ones of tests/fixtures/sglang_logs (written from SGLang's format strings; not real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramplan.engines.sglang.log import SGLangLogFacts, looks_like_sglang_log, read_sglang_log
from vramplan.errors import LogParseError

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "sglang_logs"
TEXTS = [p.read_text() for p in sorted(LOGS.glob("*.synthetic.*"))]


def _read(text: str):
    try:
        return read_sglang_log(text)
    except LogParseError as e:
        assert e.message and e.hint
        return None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEXTS), st.floats(0, 1), st.floats(0, 1))
def test_truncated_logs(text, a, b):
    i, j = sorted((int(a * len(text)), int(b * len(text))))
    f = _read(text[i:j])
    assert f is None or isinstance(f, SGLangLogFacts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEXTS), st.lists(st.tuples(st.floats(0, 1), st.characters(codec="utf-8")), max_size=20))
def test_mutated_logs(text, edits):
    chars = list(text)
    for pos, ch in edits:
        if chars:
            chars[int(pos * (len(chars) - 1))] = ch
    f = _read("".join(chars))
    if f is not None:
        assert f.tokens is None or isinstance(f.tokens, int)
        assert f.weights_gb is None or isinstance(f.weights_gb, float)


@given(st.text(max_size=400))
@settings(max_examples=100, deadline=None)
def test_random_text_is_a_result_or_one_error(text):
    f = _read(text)
    assert f is None or isinstance(f, SGLangLogFacts)


def test_recovers_the_figures_of_every_synthetic_log():
    for p in sorted(LOGS.glob("*.synthetic.*")):
        f = read_sglang_log(p.read_text())
        assert looks_like_sglang_log(p.read_text())
        assert f.weights_gb is not None, p.name
        if f.error_kind is None:
            assert f.tokens and f.max_running_requests, p.name
        else:
            assert f.error_message and f.error_phase, p.name


def test_default_log_figures_text_and_json_agree():
    t = read_sglang_log((LOGS / "qwen3-8b-h100-default.synthetic.log").read_text())
    j = read_sglang_log((LOGS / "qwen3-8b-h100-default.synthetic.jsonl").read_text())
    for f in (t, j):
        assert (f.weights_gb, f.tokens, f.max_running_requests, f.context_len) == (15.27, 364306, 4096, 40960)
        assert f.mem_fraction_static == 0.83 and f.decode_graph_gb == 0.52 and f.prefill_graph_gb == 0.41
    # a JSON array of lines reads the same
    arr = json.dumps((LOGS / "qwen3-8b-h100-default.synthetic.log").read_text().splitlines())
    assert read_sglang_log(arr).tokens == 364306


@pytest.mark.parametrize("name,kind,phase", [
    ("llama-3.1-70b-h100-tp1-no-room.synthetic.log", "no_kv_cache_memory", "kv_sizing"),
    ("deepseek-v2-lite-not-enough.synthetic.log", "no_kv_cache_memory", "kv_sizing"),
    ("qwen3-8b-h100-graph-oom.synthetic.log", "out_of_memory", "graph_capture"),
])
def test_failures_read(name, kind, phase):
    f = read_sglang_log((LOGS / name).read_text())
    assert (f.error_kind, f.error_phase) == (kind, phase)


def test_not_an_sglang_log():
    with pytest.raises(LogParseError, match="no SGLang startup line"):
        read_sglang_log("INFO 12-05 vllm serve started\nnothing here\n")
