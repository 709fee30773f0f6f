"""Properties of the vLLM log reader on damaged and random input.

Whatever it is given (cut, shuffled, mutated or random text, binary), ``read_log`` returns a LogFacts or
raises LogParseError, never anything else; feeding lines one by one gives what reading the whole text gives.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramplan.errors import LogParseError
from vramplan.engines.vllm.log import (
    ERAS,
    ERROR_KINDS,
    FIGURE_KINDS,
    PHASE_KINDS,
    LogFacts,
    LogReader,
    parse_log_text,
    read_log,
)

DATA = Path(__file__).resolve().parents[2] / "data"
LOGS = sorted((DATA / "public" / "logs").glob("*.log")) + sorted((DATA / "device_v026").glob("*.log"))[:2] + sorted(
    (DATA / "seeds").glob("001_*.txt")) + sorted((Path(__file__).resolve().parents[1] / "fixtures" / "vllm034").glob("*.log"))
TEXTS = [p.read_text(encoding="utf-8", errors="replace") for p in LOGS]
# the lines that carry figures, to build short logs quickly
MEMORY_LINES = [ln for t in TEXTS for ln in t.split("\n") if any(k in ln for k in ("GiB", " GB", "blocks", "tokens", "memory"))]

N_EXAMPLES = int(os.environ.get("VRAMPLAN_LOG_EXAMPLES", "60"))  # raise for a long fuzzing run
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _read(text: str) -> LogFacts | None:
    """read_log on a stream; None for a LogParseError; any other exception fails the test."""
    try:
        facts = read_log(io.StringIO(text, newline="\n"))
    except LogParseError as e:
        assert e.message and e.hint
        return None
    assert isinstance(facts, LogFacts)
    assert facts.era in ERAS
    assert facts.error_kind is None or facts.error_kind in ERROR_KINDS
    for ev in facts.events:
        assert ev.kind in PHASE_KINDS or ev.kind in FIGURE_KINDS
        json.dumps(ev.values)
    json.dumps(facts.args)
    return facts


def _no_internal_errors(text: str) -> None:
    r = LogReader()
    for line in text.split("\n"):
        r.feed(line)
    try:
        r.finish()
    except LogParseError:
        pass
    assert r.internal_errors == []


log_texts = st.sampled_from(TEXTS)


@SETTINGS
@given(log_texts, st.data())
def test_truncated(text, data):
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    part = text[a:b]
    _read(part)
    _no_internal_errors(part)


@SETTINGS
@given(log_texts, st.randoms(use_true_random=False))
def test_shuffled(text, rnd):
    lines = text.split("\n")
    rnd.shuffle(lines)
    _read("\n".join(lines))


@SETTINGS
@given(log_texts, st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from(["del", "ins", "sub"]), st.characters()), max_size=40))
def test_mutated(text, edits):
    s = list(text[:20_000])
    for pos, op, ch in edits:
        if not s:
            break
        i = pos % len(s)
        if op == "del":
            del s[i]
        elif op == "ins":
            s.insert(i, ch)
        else:
            s[i] = ch
    mutated = "".join(s)
    _read(mutated)
    _no_internal_errors(mutated)


@SETTINGS
@given(st.lists(st.sampled_from(MEMORY_LINES) | st.text(max_size=200), max_size=30))
def test_memory_lines_mixed_with_noise(lines):
    text = "\n".join(lines)
    _read(text)
    _no_internal_errors(text)


@SETTINGS
@given(st.text(max_size=3000))
def test_random_text(text):
    _read(text)
    _no_internal_errors(text)


@settings(max_examples=N_EXAMPLES, deadline=None)
@given(st.binary(max_size=4000))
def test_binary_garbage(blob):
    text = blob.decode("utf-8", errors="replace")
    _read(text)


@SETTINGS
@given(log_texts, st.data())
def test_streaming_equals_whole(text, data):
    a = data.draw(st.integers(0, len(text)))
    part = text[a:]
    lines = part.split("\n")
    if lines[-1] == "":
        lines.pop()
    reader = LogReader()
    events = []
    for line in lines:
        events.extend(reader.feed(line))
    try:
        whole = parse_log_text(part)
    except LogParseError:
        try:
            reader.finish()
        except LogParseError:
            return
        raise AssertionError("parse_log_text failed where the streaming reader did not")
    streamed = reader.finish()
    events.extend(reader.flushed_events())
    assert streamed == whole
    assert tuple(events) == whole.events


def test_empty_and_binary_messages(tmp_path):
    for text in ("", "\n\n\n"):
        try:
            parse_log_text(text)
        except LogParseError as e:
            assert "no vLLM log lines found" in e.message
            assert "stdout+stderr" in (e.hint or "")
        else:
            raise AssertionError("expected LogParseError")
    p = tmp_path / "garbage.bin"
    p.write_bytes(b"\x00\x01\x02\xff" * 5000)
    try:
        read_log(p)
    except LogParseError as e:
        assert "binary" in e.message and "no vLLM log lines found" in e.message
    else:
        raise AssertionError("expected LogParseError")
