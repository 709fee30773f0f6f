"""``vramplan fit``'s views of a :class:`~vramplan.fit.FitResult`: the ``--json`` object and the answer as text."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from ..units import GiB

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..fit import FitResult

__all__ = ["fit_to_dict", "render_fit"]


def fit_to_dict(res: "FitResult") -> dict[str, Any]:
    from .json import plan_to_dict

    return {"answer": res.answer, "serve_line": res.serve_line,
            "serve_line_kv_cache_memory_bytes": res.kv_serve_line,
            "kv_cache_memory_bytes": res.kv_cache_memory_bytes,
            "margin_gib": None if res.margin_bytes is None else round(res.margin_bytes / GiB, 3),
            "lower_fails": res.lower_fails, "alternatives": list(res.alternatives),
            "notes": list(res.notes), "plan": plan_to_dict(res.plan)}


def render_fit(res: "FitResult", console: "Console") -> None:
    def out(text: str = "") -> None:  # serve lines are printed whole, to be copied
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    def wrapped(text: str, indent: str = "") -> None:
        for part in textwrap.wrap(text, width=max(console.width, 60), initial_indent=indent,
                                  subsequent_indent=indent + "  "):
            out(part)

    wrapped(res.answer)
    if res.lower_fails:
        wrapped(f"one step lower ({res.lower_fails})", "  ")
    for note in res.notes:
        wrapped(note, "  ")
    out("\n  " + res.serve_line)
    if res.kv_cache_memory_bytes:
        out("\n  deterministic alternative (fixes the KV size, skips profiling-based sizing):\n  "
            + res.kv_serve_line)
    if res.margin_bytes is not None:
        out("")
        wrapped(f"margin after CUDA graphs and the sampler warm-up: {res.margin_bytes / GiB:.2f} GiB", "  ")
    p = res.plan
    if p.kv_cache_tokens:
        wrapped(f"KV cache: {p.kv_cache_tokens:,} tokens, {p.max_concurrency:.2f} requests of {p.max_model_len:,} "
                f"tokens; weights {p.logged_rank.bytes_of('weights') / GiB:.2f} GiB per device", "  ")
