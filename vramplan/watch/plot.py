"""Plot a watch timeline: memory in GiB against time, phases shaded, planned levels dashed.

matplotlib is imported inside :func:`plot_timeline` (extra ``vramplan[plot]``); no
pyplot state is touched (a bare ``Figure`` on the Agg canvas), so it is safe in
threads and on machines without a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..units import GiB
from .timeline import baseline_bytes, load_timeline

__all__ = ["plot_timeline"]

_PHASE_COLOURS = ("#e8eef7", "#f7f0e0", "#e6f4ea", "#f6e6ee", "#eeeeee", "#e4f1f6", "#f4f4dc")


def _phase_spans(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """(phase, start, end) from the samples' phase labels, in time order."""
    times = sorted({float(r["t_s"]) for r in records if r.get("type") == "sample"})
    if not times:
        return []
    t_end = max(times[-1], max((float(r.get("t_s", 0)) for r in records), default=0.0))
    # phase per sample time (all devices of one reading share the time and the phase)
    phase_at: dict[float, str] = {}
    for r in records:
        if r.get("type") == "sample":
            phase_at.setdefault(float(r["t_s"]), str(r.get("phase")))
    marks = {float(r["t_s"]): str(r["phase"]) for r in records if r.get("type") == "phase"}
    spans: list[tuple[str, float, float]] = []
    cur, start = phase_at[times[0]], times[0]
    for t in times[1:]:
        p = phase_at[t]
        if p != cur:
            # the change happened at its log line, if one was recorded, else between samples
            t_change = max((mt for mt, mp in marks.items() if mp == p and start <= mt <= t), default=t)
            spans.append((cur, start, t_change))
            cur, start = p, t_change
    spans.append((cur, start, t_end))
    return spans


def _zoom_window(records: Sequence[Mapping[str, Any]]) -> tuple[float, float] | None:
    """vLLM 0.34's reserve -> warm-up -> commit, a few seconds either side (watch/vllm034.py marks it)."""
    told = {str(r["phase"]): float(r["t_s"]) for r in records
            if r.get("type") == "phase" and r.get("story") == "vllm-0.34" and r.get("t_s") is not None}
    if "kv_reserved" not in told:
        return None
    t0 = told["kv_reserved"]
    t1 = told.get("kv_committed", told.get("ready", told.get("graphs_captured", t0)))
    pad = max(1.5, 0.12 * (t1 - t0))
    return (t0 - pad, t1 + pad)


def _draw(ax: Any, records: Sequence[Mapping[str, Any]], by_dev: Mapping[str, list[Mapping[str, Any]]],
          levels: Mapping[str, int] | None, levels_above_baseline: bool, xlim: tuple[float, float] | None,
          level_legend: bool) -> None:
    """One panel: readings per device, planned levels dashed, device total, phases shaded and named."""
    y_max = 0.0
    for dev, ss in by_dev.items():
        name = ss[0].get("name") or ""
        shown = [s for s in ss if xlim is None or xlim[0] <= s["t_s"] <= xlim[1]] or ss
        (line,) = ax.plot(
            [s["t_s"] for s in ss],
            [s["used_bytes"] / GiB for s in ss],
            lw=1.6,
            marker="." if len(shown) < 80 else None,
            ms=3,
            color=f"C{list(by_dev).index(dev) % 3}",
            label=f"device {dev} used" + (f" ({name})" if name else ""),
        )
        y_max = max(y_max, max(s["used_bytes"] for s in shown) / GiB)
        w = [s for s in ss if s.get("watched_bytes") is not None]
        if w and any(s["watched_bytes"] for s in w):
            ax.plot([s["t_s"] for s in w], [s["watched_bytes"] / GiB for s in w], lw=0.9, ls=":",
                    color=line.get_color(), label=f"device {dev} watched processes")

    base = baseline_bytes(records)
    if levels:
        devs = sorted(by_dev) or ["0"]
        moved = [d for d in devs if any(s["used_bytes"] - base.get(d, 0) > 64 * 1024 * 1024 for s in by_dev.get(d, []))]
        ref = (moved or devs)[0]
        offset = base.get(ref, 0) if levels_above_baseline else 0
        for i, (label, value) in enumerate(levels.items()):
            y = (int(value) + offset) / GiB
            y_max = max(y_max, y)
            text = f"plan: {label} {int(value) / GiB:.2f}" + (" (+ baseline)" if offset else "")
            ax.axhline(y, ls="--", lw=1.1, color=f"C{(i + 3) % 10}", alpha=0.9, label=text if level_legend else None)
            if not level_legend:
                # three places for the labels in turn, so that close levels stay readable
                ax.annotate(text, xy=((1.0, 0.68, 0.36)[i % 3], y), xycoords=("axes fraction", "data"),
                            xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom", fontsize=7.5,
                            color=f"C{(i + 3) % 10}")
    samples = [s for ss in by_dev.values() for s in ss]
    totals = {str(s["device"]): s["total_bytes"] for s in samples}
    if totals:
        total = max(totals.values()) / GiB
        if y_max >= 0.5 * total:
            ax.axhline(total, lw=0.8, color="0.4", ls="-.")
            ax.annotate(f"device total {total:.2f}", xy=(0.5, total), xycoords=("axes fraction", "data"),
                        xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7.5, color="0.3")
            y_max = max(y_max, total)
    top = max(y_max * 1.12, 1.0)
    ax.set_ylim(0, top)

    spans = _phase_spans(records)
    if xlim is not None:
        spans = [(p, max(t0, xlim[0]), min(t1, xlim[1])) for p, t0, t1 in spans if t1 > xlim[0] and t0 < xlim[1]]
    width = (xlim[1] - xlim[0]) if xlim is not None else ((spans[-1][2] - spans[0][1]) if spans else 0.0)
    last_label_x = None
    for phase, t0, t1 in spans:
        colour = _PHASE_COLOURS[sum(map(ord, phase)) % len(_PHASE_COLOURS)]
        ax.axvspan(t0, t1, color=colour, alpha=0.8, lw=0, zorder=0)
        # label a phase unless it is too narrow to read next to the previous label
        wide = width <= 0 or (t1 - t0) >= 0.018 * width or (phase, t0, t1) == spans[-1]
        if wide and (last_label_x is None or width <= 0 or (t0 - last_label_x) >= 0.018 * width):
            ax.text(t0, top * 0.985, f" {phase}", rotation=90, va="top", ha="left", fontsize=7.5, color="0.25",
                    clip_on=True)
            last_label_x = t0
    for r in records:
        if r.get("type") == "exit":
            ax.axvline(r["t_s"], color="k", lw=0.8)
            sig = f", signal {r['signal']}" if r.get("signal") else ""
            ax.annotate(f"exit {r.get('returncode')}{sig}", xy=(r["t_s"], 0), xytext=(3, 3), textcoords="offset points",
                        fontsize=7.5, annotation_clip=True)
        elif r.get("type") == "log_event" and r.get("kind") == "request":
            ax.plot([r["t_s"]], [0], marker="|", ms=8, color="0.2")
        elif r.get("type") in ("sampler_error", "interrupted"):
            ax.axvline(r["t_s"], color="r", lw=0.8, ls=":")
            ax.annotate(r["type"].replace("_", " "), xy=(r["t_s"], top * 0.5), rotation=90, fontsize=7.5, color="r",
                        annotation_clip=True)
    ax.set_ylabel("device memory used (GiB)")
    if xlim is not None:
        ax.set_xlim(*xlim)
    elif samples:
        ax.set_xlim(min(s["t_s"] for s in samples), max(float(r.get("t_s", 0)) for r in records))
    ax.grid(True, alpha=0.3)


def _name_commits(ax: Any, records: Sequence[Mapping[str, Any]], by_dev: Mapping[str, list[Mapping[str, Any]]],
                  window: tuple[float, float]) -> None:
    """Name vLLM 0.34's KV commits above one block in the zoom ("Committed N of M KV cache blocks", DEBUG)."""
    ss = next(iter(by_dev.values()), [])
    if not ss:
        return
    for r in records:
        if r.get("type") != "mark" or r.get("kind") != "kv_commit" or not isinstance(r.get("blocks"), int):
            continue
        t = float(r.get("t_s", 0.0))
        if r["blocks"] <= 1 or not (window[0] <= t <= window[1]):
            continue
        # the reading just after the line (vLLM logs the commit once it is mapped)
        after = next((s for s in ss if s["t_s"] >= t), ss[-1])
        right = (t - window[0]) > 0.7 * (window[1] - window[0])  # near the right edge: the label goes left, below
        ax.annotate(f"{r['blocks']:,} KV blocks committed", xy=(t, after["used_bytes"] / GiB),
                    xytext=(-6, -14) if right else (4, 6), ha="right" if right else "left",
                    textcoords="offset points", fontsize=7.5, color="0.2", annotation_clip=True)


def plot_timeline(
    timeline: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
    out_path: str | os.PathLike[str],
    *,
    levels: Mapping[str, int] | None = None,
    levels_above_baseline: bool = True,
    title: str | None = None,
    zoom: tuple[float, float] | str | None = "auto",
) -> str:
    """Write the plot of a timeline (a path or its records) to ``out_path`` (.png or .svg).

    ``levels`` (label -> bytes) are drawn as dashed lines; with
    ``levels_above_baseline`` each is raised by the device's baseline (what was in
    use before the server started), the way vLLM's budget sits on top of it.
    Levels default to the header's. More than three levels are named in the legend, fewer on the plot.
    ``zoom``: a second panel over ``(t0, t1)``; ``"auto"`` draws one over vLLM 0.34's reserve -> warm-up ->
    commit when the records tell that story (watch/vllm034.py), None never. Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = load_timeline(timeline) if isinstance(timeline, (str, os.PathLike)) else list(timeline)
    header = next((r for r in records if r.get("type") == "header"), {})
    if levels is None:
        levels = header.get("levels") or None
    samples = [r for r in records if r.get("type") == "sample"]
    by_dev: dict[str, list[Mapping[str, Any]]] = {}
    for s in samples:
        by_dev.setdefault(str(s["device"]), []).append(s)
    for ss in by_dev.values():
        ss.sort(key=lambda s: s["t_s"])
    window = _zoom_window(records) if zoom == "auto" else (zoom if isinstance(zoom, tuple) else None)
    if window is not None and not any(window[0] <= s["t_s"] <= window[1] for s in samples):
        window = None
    level_legend = bool(levels) and len(levels) > 3

    fig = Figure(figsize=(11, 9.0 if window else 5.5), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)] if window else [fig.add_subplot(1, 1, 1)]
    _draw(axes[0], records, by_dev, levels, levels_above_baseline, None, level_legend)
    if window:
        _draw(axes[1], records, by_dev, levels, levels_above_baseline, window, level_legend)
        _name_commits(axes[1], records, by_dev, window)
        axes[0].axvspan(window[0], window[1], fill=False, ls=":", lw=1.0, ec="0.3")
        axes[1].set_title(f"{window[0]:.1f}-{window[1]:.1f} s: the KV address range reserved, the warm-up "
                          "(its KV blocks committed, then released), CUDA graphs, the KV cache committed",
                          fontsize=8.5)
    axes[-1].set_xlabel("time since watch started (s)")
    if title is None:
        argv = header.get("argv")
        title = "vramplan watch: " + (" ".join(argv) if argv else f"pid {header.get('pid')}")
        if len(title) > 110:
            title = title[:107] + "..."
    axes[0].set_title(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    bottom = 0.0
    if handles:
        ncol = 2 if level_legend else min(4, len(handles))
        rows = -(-len(handles) // ncol)
        bottom = (0.015 + 0.028 * rows) if window else (0.02 + 0.045 * rows)
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = os.fspath(out_path)
    fig.savefig(out)
    return out
