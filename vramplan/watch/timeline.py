"""The timeline file (JSON lines), read back, and the levels measured in each phase.

One JSON object per line, each with a ``type``:

- ``header``: ``format``, ``backend``, ``interval_s``, ``argv`` or ``pid``, ``started_at``, ``levels``
  (planned levels, label -> bytes, or null), ``engine`` (whose log is read: ``vllm``, ``sglang``, or null
  while the log has not said) and ``engine_source`` (``flag``, ``command``, ``log``; null without a log);
- ``engine``: written once when the log's first recognisable line decides the engine (``engine``,
  ``line_no``, ``source``), where the header could not say;
- ``sample``: ``t_s``, ``device``, ``name``, ``used_bytes``, ``total_bytes``, ``processes``
  (``{"pid": bytes}`` for every process the driver lists on that device), ``watched_bytes``
  (the part of it held by the watched process tree, null where the driver lists none),
  ``phase`` (the phase current when the reading was taken);
- ``phase``: a phase change (``phase``, ``line_no``, ``rank``, ``text`` of the log line);
- ``log_event``: any other event the log reader reported (``kind``, ``values``, ...);
- ``mark``: a line of vLLM 0.34's startup story (watch/vllm034.py: ``kind``, ``blocks``, ``line_no``, ``text``),
  timed as it came; at the end, a log that shows the extensible KV cache is told in 0.34's phases from these
  (the samples' own ``phase`` stays what the reader said live);
- ``plan``: the plan watch made of the watched command (SGLang: engines/sglang/watch_levels.py), written after
  the baseline reading: ``engine``, ``levels`` (label -> bytes above the baseline, or null), ``level_phases``
  (label -> [phase, statistic]), ``note`` (why there are no levels, or null), ``summary``;
- ``exit`` (``returncode``, ``signal``), ``interrupted``, ``sampler_error``, ``warning``;
- ``end``: written last when watch ends in order (a file without it was cut short).

``t_s`` counts seconds from the start of the watch. Bytes are integers.
The file is written line by line and flushed, so it is complete up to the moment
anything stops.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..units import GiB

__all__ = [
    "TIMELINE_FORMAT",
    "PHASE_ORDER",
    "TimelineWriter",
    "load_timeline",
    "PhaseLevel",
    "PlannedComparison",
    "phase_levels",
    "baseline_bytes",
    "compare_planned",
    "format_levels",
]

TIMELINE_FORMAT = "vramplan-watch/1"

PHASE_ORDER = (
    "before_start",
    "attached",
    "starting",
    "engine_start",
    "device_ready",
    "weights_loaded",
    "compiled",
    "profiling_done",
    "kv_reserved",
    "warmup",
    "kv_allocated",
    "graphs_captured",
    "kv_committed",
    "ready",
    "error",
    "exited",
)
"""Phases in startup order. A phase runs from the event that names it to the next one:
``weights_loaded`` is the time after the weights are in memory (vLLM profiles then)."""


class TimelineWriter:
    """Appends records to the JSONL file, one flushed line each; safe across threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._f = open(self.path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self.num_samples = 0
        self.closed = False

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self.closed:
                return
            self._f.write(line + "\n")
            self._f.flush()
            if record.get("type") == "sample":
                self.num_samples += 1

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._f.close()


def load_timeline(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a timeline file; a last line cut in the middle (a crash while writing) is skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseLevel:
    """Device memory over one stretch of one phase, on one device."""

    phase: str
    device: str
    t_start_s: float
    """Time of the first sample in the stretch."""
    t_end_s: float
    """Time of the last sample in the stretch."""
    num_samples: int
    first_bytes: int
    """Device use at the first sample of the phase."""
    peak_bytes: int
    """Highest device use seen in the phase (a peak between samples is missed)."""
    last_bytes: int
    """Device use at the last sample of the phase."""
    watched_peak_bytes: int | None
    """The watched processes' own use, highest in the phase (None where the driver lists none).

    Not the last reading: while a process exits, the driver still counts its memory
    on the device but the process is no longer in the tree."""


def _samples(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("type") == "sample"]


def phase_levels(records: Iterable[Mapping[str, Any]]) -> list[PhaseLevel]:
    """Split each device's samples into runs of one phase, in time order."""
    by_dev: dict[str, list[Mapping[str, Any]]] = {}
    for s in _samples(records):
        by_dev.setdefault(str(s["device"]), []).append(s)
    out: list[PhaseLevel] = []
    for dev, samples in by_dev.items():
        samples.sort(key=lambda s: s["t_s"])
        run: list[Mapping[str, Any]] = []
        for s in [*samples, None]:
            if run and (s is None or s.get("phase") != run[0].get("phase")):
                used = [int(r["used_bytes"]) for r in run]
                watched = [int(r["watched_bytes"]) for r in run if r.get("watched_bytes") is not None]
                out.append(
                    PhaseLevel(
                        phase=str(run[0].get("phase")),
                        device=dev,
                        t_start_s=float(run[0]["t_s"]),
                        t_end_s=float(run[-1]["t_s"]),
                        num_samples=len(run),
                        first_bytes=used[0],
                        peak_bytes=max(used),
                        last_bytes=used[-1],
                        watched_peak_bytes=max(watched) if watched else None,
                    )
                )
                run = []
            if s is not None:
                run.append(s)
    out.sort(key=lambda lv: (lv.t_start_s, lv.device))
    return out


def baseline_bytes(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Device use that is not the watched server's, per device.

    With a launched command: the last reading taken before it started. When attached
    to a running pid: the first reading less what the watched processes held then
    (all of it, where the driver lists no processes).
    """
    samples = _samples(records)
    out: dict[str, int] = {}
    for s in samples:
        if s.get("phase") == "before_start":
            out[str(s["device"])] = int(s["used_bytes"])
    if out:
        return out
    for s in samples:
        dev = str(s["device"])
        if dev not in out:
            w = s.get("watched_bytes")
            out[dev] = int(s["used_bytes"]) - (int(w) if w is not None else 0)
    return out


# Which measured level a planned level is compared with, by words in its label:
# (words that must all appear, phase, statistic). The first match wins.
# A phase written "a|b" means either (the first run of either for "first", the highest of both for "peak"):
# vLLM 0.34's startup (watch/vllm034.py) profiles after "compiled" and commits in "kv_committed", which an older
# log's phases do not have.
_STORY_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("at-the-reserve",), "kv_reserved", "first"),
    (("warm-up-commit",), "warmup|kv_reserved", "peak"),
    (("after-capture",), "graphs_captured", "peak"),
    (("after-the-kv-commit",), "kv_committed|ready", "first"),
)
_LEVEL_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("budget",), "ready", "peak"),
    (("requested",), "ready", "peak"),
    (("total",), "ready", "peak"),
    (("activation",), "weights_loaded|compiled", "peak"),
    (("peak",), "weights_loaded|compiled", "peak"),
    (("weights",), "weights_loaded", "first"),
)


def _rule_for(label: str) -> tuple[str, str] | None:
    low = label.lower().replace("_", "-").replace(" ", "-")
    for words, phase, stat in _STORY_RULES:
        if all(w in low for w in words):
            return (phase, stat)
    if "non-kv" in low or "nonkv" in low:
        return ("weights_loaded|compiled", "peak")
    for words, phase, stat in _LEVEL_RULES:
        if all(w in low for w in words):
            return (phase, stat)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedComparison:
    """One planned level next to what was measured for it on one device."""

    label: str
    device: str
    planned_bytes: int
    """As given: bytes above the device's baseline."""
    phase: str | None
    """The phase measured against (None: no rule for this label)."""
    statistic: str | None
    """``first``, ``peak`` or ``last`` reading of that phase."""
    measured_bytes: int | None
    """The measured reading less the baseline (None: phase not seen)."""

    @property
    def difference_bytes(self) -> int | None:
        """Measured minus planned."""
        return None if self.measured_bytes is None else self.measured_bytes - self.planned_bytes


def compare_planned(
    records: Sequence[Mapping[str, Any]],
    planned: Mapping[str, int],
    *,
    level_phases: Mapping[str, tuple[str, str]] | None = None,
) -> list[PlannedComparison]:
    """Pair each planned level with a measured one, per device, both above the baseline.

    The measured counterpart is chosen by the label unless ``level_phases`` gives
    ``label -> (phase, "first"|"peak"|"last")``: "weights" -> the first reading after
    the weights are loaded; "activation", "peak" or "non-KV" -> the peak while
    profiling (phase ``weights_loaded``); "budget", "requested" or "total" -> the
    highest reading once ready (after it, the server may be tearing down). A device's planned levels only mean something on the
    devices the server uses; devices whose use never moved are left out.
    """
    levels = phase_levels(records)
    base = baseline_bytes(records)
    moved = {lv.device for lv in levels if lv.peak_bytes - base.get(lv.device, 0) > 64 * 1024 * 1024}
    out = []
    for dev in sorted(moved, key=_device_key):
        for label, planned_bytes in planned.items():
            rule = (level_phases or {}).get(label) or _rule_for(label)
            measured = None
            used = rule[0] if rule else None
            if rule is not None:
                phase, stat = rule
                names = set(str(phase).split("|"))
                runs = [lv for lv in levels if lv.device == dev and lv.phase in names]
                if runs:
                    if stat == "first":
                        run, value = runs[0], runs[0].first_bytes
                    elif stat == "last":
                        run, value = runs[-1], runs[-1].last_bytes
                    else:
                        run = max(runs, key=lambda r: r.peak_bytes)
                        value = run.peak_bytes
                    used = run.phase  # of "a|b", the phase the reading came from
                    measured = value - base.get(dev, 0)
            out.append(
                PlannedComparison(
                    label=label,
                    device=dev,
                    planned_bytes=int(planned_bytes),
                    phase=used,
                    statistic=rule[1] if rule else None,
                    measured_bytes=measured,
                )
            )
    return out


def _device_key(dev: str) -> tuple:
    try:
        return (0, *[int(p) for p in dev.split(".")])
    except ValueError:
        return (1, dev)


def _g(num_bytes: int | None) -> str:
    return "-" if num_bytes is None else f"{num_bytes / GiB:.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def format_levels(records: Sequence[Mapping[str, Any]], planned: Mapping[str, int] | None = None, *,
                  level_phases: Mapping[str, tuple[str, str]] | None = None) -> str:
    """The plain-text tables printed when watch ends: levels per phase, then planned vs measured
    (``level_phases`` as :func:`compare_planned` takes it)."""
    levels = phase_levels(records)
    if not levels:
        return "no samples were recorded"
    base = baseline_bytes(records)
    rows = []
    for lv in levels:
        rows.append(
            [
                lv.phase,
                lv.device,
                f"{lv.t_start_s:.1f}-{lv.t_end_s:.1f}",
                str(lv.num_samples),
                _g(lv.first_bytes),
                _g(lv.peak_bytes),
                _g(lv.last_bytes),
                _g(lv.last_bytes - base.get(lv.device, 0)),
                _g(lv.watched_peak_bytes),
            ]
        )
    lines = ["Measured device memory per phase (GiB; a phase runs from its log line to the next):"]
    lines += _table(
        ["phase", "dev", "t (s)", "n", "first", "peak", "last", "last-base", "watched peak"],
        rows,
        right={3, 4, 5, 6, 7, 8},
    )
    if base:
        lines.append("baseline (not the server's): " + ", ".join(f"dev {d} {_g(b)} GiB" for d, b in sorted(base.items(), key=lambda kv: _device_key(kv[0]))))
    if planned:
        comps = compare_planned(records, planned, level_phases=level_phases)
        lines.append("")
        lines.append("Planned vs measured (GiB above the baseline):")
        crow = [
            [
                c.label,
                c.device,
                _g(c.planned_bytes),
                _g(c.measured_bytes),
                "-" if c.difference_bytes is None else f"{c.difference_bytes / GiB:+.2f}",
                f"{c.statistic} of {c.phase}" if c.phase else "(no rule for this label)",
            ]
            for c in comps
        ]
        lines += _table(["level", "dev", "planned", "measured", "diff", "measured as"], crow, right={2, 3, 4})
    return "\n".join(lines)
