"""Pictures (matplotlib, imported inside each function): a plan's stacked breakdown and a sweep.

Files are written whole or not at all: the figure goes to a temporary file in the target
folder and is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Sequence

from ..errors import InputError
from ..units import GiB

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan

__all__ = ["plot_plan", "plot_sweep", "TERM_COLOURS"]

TERM_COLOURS = {
    "others": "#9e9e9e",
    "context": "#bdbdbd",
    "weights": "#1f77b4",
    "activation_peak": "#ff7f0e",
    "non_torch": "#8c564b",
    "cudagraph_estimate": "#9467bd",
    "kv_cache": "#2ca02c",
    "free": "#eeeeee",
    "cudagraph_pool": "#9467bd",
    "warmup_transient_peak": "#ff7f0e",
    "kv_margin": "#c7c7c7",
}
_LABELS = {
    "others": "other programs",
    "context": "CUDA context / NCCL (before vLLM)",
    "weights": "weights",
    "activation_peak": "activation peak (profile)",
    "non_torch": "non-torch",
    "cudagraph_estimate": "CUDA-graph estimate",
    "kv_cache": "KV cache",
    "free": "outside the budget",
    "cudagraph_pool": "CUDA-graph pool",
    "warmup_transient_peak": "warm-up transient peak (kept free)",
    "kv_margin": "margin (kept free)",
}


def _stack(plan: "Plan") -> list[tuple[str, float]]:
    r = plan.logged_rank
    total = plan.device.total_bytes
    others = plan.used_by_others_bytes
    context = total - others - r.free_at_init_bytes
    parts = [("others", others), ("context", context)]
    if plan.error_phase == "weight_loading":  # loading fails: only the weights exist, whole, past the device's end
        parts.append(("weights", r.bytes_of("weights")))
        return [(k, v / GiB) for k, v in parts]
    keys = ("weights", "activation_peak", "non_torch", "cudagraph_estimate")
    if r.term("reserved_bound") is not None:  # vLLM 0.34's extensible KV cache: sized after warm-up
        keys = ("weights", "non_torch", "cudagraph_pool", "warmup_transient_peak", "kv_margin")
    for key in keys:
        parts.append((key, r.bytes_of(key)))
    parts.append(("kv_cache", max(r.available_kv_bytes, 0)))
    used = sum(v for _, v in parts)
    parts.append(("free", max(total - used, 0)))
    return [(k, v / GiB) for k, v in parts]


def _check_target(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise InputError(f"cannot write a picture to {path!r}", hint="use a .png, .svg or .pdf file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"folder {folder} does not exist", hint="create it or pick another path")
    return ext


def _save(fig, path: str) -> None:
    ext = _check_target(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=ext, dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a picture gets the usual mode (0644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mpl():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("matplotlib is not installed", hint="pip install 'vramplan[plot]'") from None
    return plt


def plot_plan(plan: "Plan", path: str) -> None:
    """One horizontal stacked bar per rank: where the device's memory goes."""
    _check_target(path)
    plt = _mpl()
    stack = _stack(plan)
    fig, ax = plt.subplots(figsize=(10, 2.6))
    left = 0.0
    for key, gib in stack:
        if gib <= 0:
            continue
        ax.barh([0], [gib], left=left, color=TERM_COLOURS[key], edgecolor="white", label=f"{_LABELS[key]} {gib:.2f}")
        if gib > plan.device.total_bytes / GiB * 0.06:
            ax.text(left + gib / 2, 0, f"{gib:.1f}", ha="center", va="center", fontsize=9, color="black")
        left += gib
    req = plan.logged_rank.requested_bytes / GiB
    base = stack[0][1] + stack[1][1]
    if plan.error_phase != "weight_loading":  # util plays no part while the weights load
        ax.axvline(base + req, color="black", linestyle="--", linewidth=1)
        ax.text(base + req, 0.45, f" requested = {plan.engine.gpu_memory_utilization} x total", fontsize=8,
                va="bottom")
    total_gib = plan.device.total_bytes / GiB
    if left > total_gib:  # weights that do not fit: show the overflow instead of cutting the bar
        ax.axvspan(total_gib, left, color="red", alpha=0.15, hatch="//", label=f"beyond the device {left - total_gib:.2f}")
        ax.axvline(total_gib, color="red", linewidth=2)
        ax.text(total_gib, -0.45, f" device total {total_gib:.2f} GiB", color="red", fontsize=8, va="top")
    ax.set_xlim(0, max(total_gib, left * 1.02))
    ax.set_yticks([])
    ax.set_xlabel("GiB")
    verdict = "starts" if plan.starts else f"fails: {plan.error_kind}" + (
        f" ({plan.error_phase})" if plan.error_phase == "weight_loading" else "")
    ax.set_title(f"{plan.model.name} on {plan.device.label}, vLLM {plan.vllm_version} rules: {verdict}", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)


def plot_sweep(knob: str, values: Sequence, plans: Sequence["Plan"], path: str) -> None:
    """Stacked breakdown per value, KV tokens against the knob, and where startup fails."""
    _check_target(path)
    plt = _mpl()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    xs = list(range(len(values)))
    bottoms = [0.0] * len(values)
    for key in ("others", "context", "weights", "activation_peak", "non_torch", "cudagraph_estimate", "cudagraph_pool",
                "warmup_transient_peak", "kv_margin", "kv_cache"):
        heights = [dict(_stack(p)).get(key, 0.0) for p in plans]
        if not any(heights):
            continue
        ax.bar(xs, heights, bottom=bottoms, color=TERM_COLOURS[key], label=_LABELS[key], edgecolor="white")
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    total = plans[0].device.total_bytes / GiB
    ax.axhline(total, color="black", linewidth=1)
    ax.text(xs[-1], total, " device total", va="bottom", ha="right", fontsize=8)
    ax.set_ylabel("GiB per device")
    req = [(p.device.total_bytes - p.logged_rank.free_at_init_bytes + p.logged_rank.requested_bytes) / GiB
           for p in plans]
    ax.plot(xs, req, linestyle="--", color="black", linewidth=1, marker="_", markersize=20,
            label="requested budget (util x total) + memory in use before vLLM")
    fails = [i for i, p in enumerate(plans) if not p.starts]
    tokens = [p.kv_cache_tokens or 0 for p in plans]
    ax2.plot(xs, tokens, marker="o", color=TERM_COLOURS["kv_cache"])
    ax2.set_ylabel("KV cache tokens")
    for i in fails:
        for a in (ax, ax2):
            a.axvspan(i - 0.45, i + 0.45, color="red", alpha=0.12)
        ax2.text(i, max(tokens) * 0.05 if max(tokens) else 0.1, plans[i].error_kind.replace("_", " "), rotation=90,
                 fontsize=7, color="darkred", ha="center", va="bottom")
    if fails:
        ax.plot([], [], color="red", alpha=0.3, linewidth=8, label="startup fails")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax2.set_ylim(bottom=0, top=max(max(tokens) * 1.15, 1))
    ax2.grid(axis="y", alpha=0.3)
    ax2.set_xticks(xs)
    ax2.set_xticklabels([str(v) for v in values], rotation=45, ha="right")
    ax2.set_xlabel(knob)
    ax.set_title(f"{plans[0].model.name} on {plans[0].device.label}: sweeping {knob}", fontsize=10)
    _save(fig, path)
    plt.close(fig)
