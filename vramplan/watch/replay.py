"""``vramplan watch --replay DIR``: the tables and the plot of a recorded watch, again, without starting anything.

A watch folder holds ``timeline.jsonl`` and the server's ``output.log``. Replaying reads both, tells a vLLM 0.34
startup in 0.34's phases (watch/vllm034.py; a timeline recorded before watch wrote ``mark`` records is timed by the
log's own clock), plans the command (the one after ``--`` if given, else the header's) for the planned levels, and
writes the plot and prints the tables as watch does at its end. Levels come, in this order, from: the command
planned now; the SGLang ``plan`` record of the timeline; the header's ``levels``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .timeline import format_levels, load_timeline
from .vllm034 import apply_story

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    timeline_path: str
    plot_path: str | None
    plot_error: str | None
    levels_text: str
    num_samples: int
    levels: Mapping[str, int] | None
    levels_source: str
    """``planned now``, ``the timeline's plan record``, ``the timeline's header`` or ``none``."""
    story: str | None
    """``vllm-0.34`` when the 0.34 phases were marked, else None (the reader's phases stand)."""
    note: str | None
    records: tuple[Mapping[str, Any], ...]


def _read_log(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 20)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace").splitlines()


def replay(folder: str | os.PathLike[str], *, cmd: Sequence[str] | None = None, plot_path: str | None = None,
           plot_format: str = "png", plan_levels: Any = None) -> ReplayResult:
    """Re-render a watch folder (see the module doc). ``plan_levels(cmd) -> (levels | None, note | None)`` plans a
    vLLM command (the CLI passes :func:`vramplan.watch.cli.plan_levels_for`; None: the recorded levels). Raises
    :class:`InputError` when the folder has no readable timeline."""
    folder = os.fspath(folder)
    tl = os.path.join(folder, "timeline.jsonl") if os.path.isdir(folder) else folder
    if not os.path.isfile(tl):
        raise InputError(f"no timeline.jsonl in {folder}", hint="pass the folder watch wrote (--out DIR)")
    try:
        records = load_timeline(tl)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {tl}: {e}", hint="pass the folder watch wrote (--out DIR)") from None
    samples = [r for r in records if r.get("type") == "sample"]
    if not samples:
        raise InputError(f"{tl} holds no readings", hint="a watch folder's timeline.jsonl has 'sample' lines")
    base = os.path.dirname(tl)
    log_lines = _read_log(os.path.join(base, "output.log"))
    records, told = apply_story(records, log_lines)
    header = next((r for r in records if r.get("type") == "header"), {})
    argv = list(cmd) if cmd else [str(a) for a in (header.get("argv") or [])]
    levels: Mapping[str, int] | None = None
    level_phases = None
    source, note = "none", None
    if argv and header.get("engine") != "sglang" and plan_levels is not None:
        levels, note = plan_levels(argv)
        if levels:
            source = "planned now"
    if not levels:
        plan_rec = next((r for r in records if r.get("type") == "plan" and r.get("levels")), None)
        if plan_rec is not None:
            levels, source = dict(plan_rec["levels"]), "the timeline's plan record"
            level_phases = {k: tuple(v) for k, v in (plan_rec.get("level_phases") or {}).items()}
        elif header.get("levels"):
            levels, source = dict(header["levels"]), "the timeline's header"
    text = format_levels(records, levels, level_phases=level_phases or None)
    # the record is never written: without a plot path nothing is drawn (the CLI picks a new folder)
    out = plot_path
    written, err = None, None if out else "no plot path given"
    try:
        from .plot import plot_timeline

        if out:
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            written = plot_timeline(records, out, levels=levels or None)
    except ImportError as e:
        err = f"matplotlib is not installed ({e}); pip install 'vramplan[plot]'"
    except OSError as e:
        err = f"cannot write {out}: {e.strerror or e}"
    return ReplayResult(timeline_path=tl, plot_path=written, plot_error=err, levels_text=text, num_samples=len(samples),
                        levels=levels, levels_source=source, story="vllm-0.34" if told else None, note=note,
                        records=tuple(records))
