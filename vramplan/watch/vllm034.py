"""vLLM 0.34's startup story for ``watch``: reserve, warm up, capture, commit.

vLLM 0.34 sizes the KV cache in a new order when the extensible KV cache is on (its default on CUDA and
ROCm; vLLM v0.34.0 vllm/v1/worker/gpu_worker.py:Worker._compile_or_warm_up_model and
vllm/v1/worker/extensible_kv_cache.py). The log reader's older phases (``profiling_done``,
``kv_allocated``, ...) tell the 0.26/0.33 story; on a 0.34 log this module marks these instead:

==================  ====================================================================================
phase               starts at the log line (vLLM v0.34.0)
==================  ====================================================================================
``weights_loaded``  "Model loading took X GiB memory" (v1/worker/gpu/model_runner.py), as before
``compiled``        "torch.compile took X s in total" (compilation/monitor.py); the profile run follows
``kv_reserved``     "Available KV cache memory: X GiB" (gpu_worker.determine_available_memory): the
                    *reserve bound*, an address range; one block is committed (DEBUG "Committed 1 of N")
``warmup``          "JIT kernel warmup starting." (model_executor/warmup/kernel_warmup.py), "Compile and
                    warming up model for size", or the first DEBUG "Committed N of M KV cache blocks" above
                    the reserve's: ``warmup_kernels`` (a ``--max-num-seqs`` batch of two-token requests, with
                    one KV block committed per request and KV group), then ``run_kv_cache_sizing_warmup``
                    (a full max-num-batched-tokens step), then CUDA-graph capture
``graphs_captured`` "Graph capturing finished in N secs, took X GiB" (v1/worker/gpu/model_runner.py); the
                    sampler warm-up at max batch runs in this phase, then "Memory after warmup: ..."
``kv_committed``    "Extended KV cache to N blocks (X GiB)." (extensible_kv_cache.extend_kv_cache)
``ready``           the API server's "Starting vLLM server on" / "Application startup complete", else
                    "init engine (profile, create kv cache, warmup model) took"
==================  ====================================================================================

A log is told this way only when it says so: a line only 0.34's extensible cache prints ("Committed N of M KV
cache blocks", "Memory after warmup:", "Extended KV cache to"). Any other log keeps the reader's phases.

Everything here is pure: :func:`classify` reads one line, :func:`story` turns the marks of a whole log into
phase changes, :func:`relabel` puts them on a timeline's records. Live, watch records each mark with its time
(``mark`` records); a record made before that (or any ``output.log`` watch wrote) is timed by the log's own
clock instead (:func:`times_from_log_clock`), to within the second it prints, between the lines watch timed.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["STORY_PHASES", "Mark", "classify", "story", "relabel", "marks_from_lines", "times_from_log_clock", "apply_story",
           "is_extensible_log"]

STORY_PHASES = ("compiled", "kv_reserved", "warmup", "graphs_captured", "kv_committed", "ready")
"""The phases this module marks after ``weights_loaded``, in startup order."""

# phases of the reader kept as they are under the 0.34 story (before the weights, failures, the end)
_KEPT = frozenset({"before_start", "attached", "starting", "engine_start", "device_ready", "weights_loaded", "error",
                   "exited"})

_COMMITTED = re.compile(r"Committed (\d{1,12}) of (\d{1,12}) KV cache blocks \(")
_EXTENDED = re.compile(r"Extended KV cache to (\d{1,12}) blocks")
_CLOCK = re.compile(r"(?<!\d)(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?![\d:])")

# (kind, substring) in the order they are tried; the first that matches names the line
_TOKENS: tuple[tuple[str, str], ...] = (
    ("kv_commit", " KV cache blocks ("),
    ("measured", "Memory after warmup:"),
    ("extended", "Extended KV cache to "),
    ("weights_loaded", "Model loading took "),
    ("compiled", "torch.compile took "),
    ("kv_available", "Available KV cache memory:"),
    ("warmup_start", "JIT kernel warmup starting"),
    ("warmup_start", "Compile and warming up model for size"),
    ("graphs_captured", "Graph capturing finished"),
    ("engine_ready", "init engine (profile, create kv cache, warmup model) took"),
    ("api_ready", "Starting vLLM server on"),
    ("api_ready", "Application startup complete"),
)
_EXTENSIBLE_KINDS = frozenset({"kv_commit", "measured", "extended"})


@dataclass(frozen=True, slots=True)
class Mark:
    """One log line that matters to the 0.34 story."""

    kind: str
    """``weights_loaded``, ``compiled``, ``kv_available``, ``kv_commit``, ``warmup_start``, ``graphs_captured``,
    ``measured``, ``extended``, ``engine_ready`` or ``api_ready``."""
    line_no: int
    t_s: float | None
    """Seconds since the watch started (None: not timed yet)."""
    blocks: int | None = None
    """``kv_commit``: N of "Committed N of M"; ``extended``: the block count."""
    text: str = ""


def classify(line: str) -> tuple[str, int | None] | None:
    """The mark kind of one raw log line and its block count, or None. Never raises on any ``str``."""
    if not isinstance(line, str) or len(line) < 10:
        return None
    line = line[:4000]
    for kind, token in _TOKENS:
        if token not in line:
            continue
        if kind == "kv_commit":
            m = _COMMITTED.search(line)
            if m is None:
                continue
            return kind, int(m.group(1))
        if kind == "extended":
            m = _EXTENDED.search(line)
            return kind, (int(m.group(1)) if m else None)
        return kind, None
    return None


def marks_from_lines(lines: Iterable[str], times: Mapping[int, float] | None = None) -> list[Mark]:
    """The marks of a log, its lines numbered from 1 (``times``: line number -> t_s, where known)."""
    out = []
    for no, line in enumerate(lines, 1):
        c = classify(line)
        if c is not None:
            text = line.rstrip("\r\n")
            out.append(Mark(c[0], no, (times or {}).get(no), c[1], text[-300:]))
    return out


def is_extensible_log(marks: Iterable[Mark]) -> bool:
    """Whether the log shows vLLM 0.34's extensible KV cache (a line only it prints)."""
    return any(m.kind in _EXTENSIBLE_KINDS for m in marks)


def story(marks: Sequence[Mark]) -> list[tuple[str, Mark]] | None:
    """The 0.34 phases ``(phase, the mark that starts it)`` in log order, or None for a log of another story.

    Each phase is the first qualifying line after the one before it (see the module table); a phase whose line
    is missing (no compile under ``--enforce-eager``, no graph capture, a startup that died) is left out.
    """
    marks = sorted((m for m in marks if isinstance(m, Mark)), key=lambda m: m.line_no)
    if not is_extensible_log(marks):
        return None
    out: list[tuple[str, Mark]] = []

    def first(kinds: tuple[str, ...], after: int, pred=lambda m: True) -> Mark | None:
        return next((m for m in marks if m.line_no > after and m.kind in kinds and pred(m)), None)

    w = first(("weights_loaded",), 0)
    pos = w.line_no if w else 0
    c = first(("compiled",), pos)
    reserve = first(("kv_available",), pos)
    if c is not None and (reserve is None or c.line_no < reserve.line_no):
        out.append(("compiled", c))
        pos = c.line_no
    if reserve is None:
        return out
    out.append(("kv_reserved", reserve))
    pos = reserve.line_no
    # the reserve commits the minimum (the null block); warm-up commits more
    at_reserve = first(("kv_commit",), pos)
    floor = (at_reserve.blocks or 0) if at_reserve is not None else 0
    graphs = first(("graphs_captured", "measured", "extended"), pos)
    limit = graphs.line_no if graphs is not None else 1 << 62
    # the first commit above it is warmup_kernels' (DEBUG lines); at INFO the warm-up's own first line
    warm = (first(("kv_commit",), pos, lambda m: m.line_no < limit and (m.blocks or 0) > floor)
            or first(("warmup_start",), pos, lambda m: m.line_no < limit))
    if warm is not None:
        out.append(("warmup", warm))
        pos = warm.line_no
    ext = first(("extended",), reserve.line_no)
    end = ext.line_no if ext is not None else 1 << 62
    g = first(("graphs_captured",), pos, lambda m: m.line_no < end)
    if g is not None:
        out.append(("graphs_captured", g))
        pos = g.line_no
    e = first(("extended",), pos)
    if e is not None:
        out.append(("kv_committed", e))
        pos = e.line_no
        r = first(("api_ready",), pos) or first(("engine_ready",), pos)
    else:
        r = first(("engine_ready",), pos)
    if r is not None:
        out.append(("ready", r))
    return out


def _phase_marks(records: Sequence[Mapping[str, Any]], told: list[tuple[str, Mark]]) -> list[tuple[float, str]]:
    """(t_s, phase) changes: the reader's kept phases plus the 0.34 ones, in time order."""
    changes = [(float(r["t_s"]), str(r["phase"])) for r in records
               if r.get("type") == "phase" and r.get("phase") in _KEPT and r.get("t_s") is not None]
    changes += [(float(m.t_s), phase) for phase, m in told if m.t_s is not None]
    changes.sort(key=lambda x: x[0])
    return changes


def relabel(records: Sequence[Mapping[str, Any]], told: list[tuple[str, Mark]]) -> list[dict[str, Any]]:
    """The records with the phase changes of ``told`` (plus the reader's kept ones) in place of the reader's,
    and each sample's ``phase`` the one current at its time. Samples before the first change keep theirs."""
    changes = _phase_marks(records, told)
    out: list[dict[str, Any]] = []
    for r in records:
        if r.get("type") == "phase":
            continue  # re-added below, in order
        out.append(dict(r))
    phase_recs = [{"type": "phase", "t_s": round(t, 4), "phase": p, "story": "vllm-0.34"} for t, p in changes]
    for m_phase, m in told:
        for pr in phase_recs:
            if pr["phase"] == m_phase and m.t_s is not None and abs(pr["t_s"] - m.t_s) < 1e-3:
                pr["line_no"], pr["text"] = m.line_no, m.text
    # samples: the phase current at their time (a change at t applies to a reading at t or later)
    times = [t for t, _ in changes]
    import bisect

    for r in out:
        if r.get("type") == "sample" and changes:
            i = bisect.bisect_right(times, float(r.get("t_s", 0.0))) - 1
            if i >= 0:
                r["phase"] = changes[i][1]
    out += phase_recs
    out.sort(key=lambda r: float(r.get("t_s", 0.0) or 0.0) if r.get("type") != "header" else -1.0)
    return out


def _clock_seconds(line: str, year: int) -> float | None:
    m = _CLOCK.search(line[:200])
    if m is None:
        return None
    mo, d, h, mi, s = (int(x) for x in m.groups())
    try:
        return _dt.datetime(year, mo, d, h, mi, s, tzinfo=_dt.timezone.utc).timestamp()
    except ValueError:
        return None


def times_from_log_clock(lines: Sequence[str], anchors: Mapping[int, float], *, year: int = 2026) -> dict[int, float]:
    """t_s for every line that prints vLLM's clock (``MM-DD HH:MM:SS``), from lines whose t_s is known.

    Each anchor (line number -> t_s as watch timed it) bounds when the log's seconds begin on watch's clock:
    a line printed in second W was timed in [W + c, W + 1 + c) (c: the middle of what all anchors allow). That
    window is narrowed to the timed lines before and after
    it, so the order of the log stands: the middle of what both allow. Accurate to about half a second; anchors
    keep their own t_s.
    """
    clock: dict[int, float] = {}
    for no, line in enumerate(lines, 1):
        if isinstance(line, str):
            w = _clock_seconds(line, year)
            if w is not None:
                clock[no] = w
    diffs = [t - clock[no] for no, t in anchors.items() if no in clock]
    out: dict[int, float] = {int(k): float(v) for k, v in anchors.items()}
    if not diffs:
        return out
    hi = min(diffs)                 # c <= t - W for every anchor
    lo = max(diffs) - 1.0           # c > t - W - 1
    c = (lo + hi) / 2 if lo <= hi else hi
    known = sorted(out.items())
    import bisect

    keys = [k for k, _ in known]
    for no, w in clock.items():
        if no in out:
            continue
        # the window the line's second allows, narrowed to the timed lines around it; its middle
        lo_t, hi_t = w + c, w + c + 1.0
        i = bisect.bisect_left(keys, no)
        if i > 0:
            lo_t = max(lo_t, known[i - 1][1])
        if i < len(known):
            hi_t = min(hi_t, known[i][1])
        out[no] = (lo_t + hi_t) / 2 if lo_t <= hi_t else (known[i - 1][1] if i > 0 else hi_t)
    # a clock that runs back (lines of two processes interleaved) must not reorder the log: never earlier than the
    # line before (still no later than the next timed line, which bounded both)
    last = None
    for no in sorted(out):
        if no not in anchors and last is not None and out[no] < last:
            out[no] = last
        last = out[no]
    return out


def apply_story(records: Sequence[Mapping[str, Any]], log_lines: Sequence[str] | None = None
                ) -> tuple[list[dict[str, Any]], list[tuple[str, Mark]] | None]:
    """A timeline's records told as vLLM 0.34 tells its startup, when its log does; else unchanged.

    The marks are the timeline's own ``mark`` records (timed live); a timeline without any (recorded before
    watch wrote them) takes them from ``log_lines`` (its ``output.log``), timed by the log's clock against the
    lines watch did time (:func:`times_from_log_clock`). Returns the records and the story (None: not told).
    """
    recs = [dict(r) for r in records if isinstance(r, Mapping)]
    marks = [Mark(str(r.get("kind")), int(r.get("line_no") or 0), float(r["t_s"]), r.get("blocks"),
                  str(r.get("text") or "")) for r in recs
             if r.get("type") == "mark" and isinstance(r.get("t_s"), (int, float)) and isinstance(r.get("line_no"), int)]
    if not marks and log_lines:
        anchors: dict[int, float] = {}
        for r in recs:
            if r.get("type") in ("phase", "log_event") and isinstance(r.get("line_no"), int) \
                    and isinstance(r.get("t_s"), (int, float)) and not r.get("before_attach") and not r.get("at_finish"):
                anchors.setdefault(int(r["line_no"]), float(r["t_s"]))
        header = next((r for r in recs if r.get("type") == "header"), {})
        year = _year(header.get("started_at"))
        times = times_from_log_clock(log_lines, anchors, year=year)
        marks = [m for m in marks_from_lines(log_lines, times) if m.t_s is not None]
    told = story(marks)
    if told is None:
        return recs, None
    out = relabel(recs, told)
    if not any(r.get("type") == "mark" for r in out):
        # the marks timed by the log's clock, kept beside the records (the plot names the commits)
        out += [{"type": "mark", "t_s": round(m.t_s, 4), "kind": m.kind, "blocks": m.blocks, "line_no": m.line_no,
                 "text": m.text, "timed_by": "log clock"} for m in marks if m.t_s is not None]
        out.sort(key=lambda r: float(r.get("t_s", 0.0) or 0.0) if r.get("type") != "header" else -1.0)
    return out, told


def _year(started_at: Any) -> int:
    try:
        return int(str(started_at)[:4])
    except ValueError:
        return _dt.datetime.now(_dt.timezone.utc).year
