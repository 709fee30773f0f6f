"""``vramplan knobs``'s views of a :class:`~vramplan.fit.KnobsResult`: the ``--json`` object and a table that
fits the terminal (80 columns included): one line per knob, its cost wrapped beneath."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from ..units import GiB

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..fit import Knob, KnobsResult

__all__ = ["knobs_to_dict", "render_knobs"]


def knobs_to_dict(res: "KnobsResult") -> dict[str, Any]:
    base = res.baseline
    return {"baseline": {"verdict": base.verdict, "kv_cache_tokens": base.kv_cache_tokens,
                         "non_kv_gib": round(base.logged_rank.bytes_of("non_kv_total") / GiB, 3),
                         "error_kind": base.error_kind},
            "knobs": [{"knob": k.name, "change": k.change,
                       "freed_gib": None if k.freed_bytes is None else round(k.freed_bytes / GiB, 3),
                       "kv_tokens_added": k.kv_tokens_added, "util_needed": k.util_needed,
                       "host_freed_gib": None if k.host_bytes is None else round(k.host_bytes / GiB, 3),
                       "verdict": k.plan.verdict if k.plan else None,
                       "kv_cache_tokens": k.plan.kv_cache_tokens if k.plan else None,
                       "error_kind": k.plan.error_kind if k.plan else None,
                       "cost": k.cost} for k in res.knobs]}


def _cells(k: "Knob", with_util: bool) -> list[str]:
    freed = "-" if k.freed_bytes is None else f"{k.freed_bytes / GiB:+.2f}"
    if k.host_bytes:
        freed = f"host {k.host_bytes / GiB:.1f}"
    added = "-" if k.kv_tokens_added is None else f"{k.kv_tokens_added:+,}"
    if k.plan is not None and not k.plan.starts:
        added = "fails"
    cells = [k.change, freed, added]
    if with_util:
        cells.append("-" if k.util_needed is None else f"{k.util_needed:.2f}")
    return cells


def render_knobs(res: "KnobsResult", console: "Console") -> None:
    base = res.baseline
    width = max(console.width, 60)

    def out(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    state = base.verdict if base.starts else f"fails ({base.error_kind})"
    for part in textwrap.wrap(f"baseline: {state}, {base.kv_cache_tokens or 0:,} KV tokens, non-KV "
                              f"{base.logged_rank.bytes_of('non_kv_total') / GiB:.2f} GiB per device",
                              width=width, subsequent_indent="  "):
        out(part)
    if not base.starts:
        out("  the baseline has no KV cache: KV tokens are those of each change that starts")
    with_util = res.workload is not None
    head = ["change", "GiB freed", "KV tokens"] + (["util"] if with_util else [])
    rows = [_cells(k, with_util) for k in res.knobs]
    nums = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)][1:]
    room = width - sum(n + 2 for n in nums)
    change_w = max(min(max([len(head[0]), *(len(r[0]) for r in rows)]), room), 12)

    def line(cells: list[str]) -> str:
        first = cells[0] if len(cells[0]) <= change_w else cells[0][:change_w]
        return first.ljust(change_w) + "".join("  " + c.rjust(n) for c, n in zip(cells[1:], nums))

    out(line(head))
    for k, cells in zip(res.knobs, rows):
        if len(cells[0]) > change_w:  # a long change gets its own line, the figures the next
            out(cells[0])
            out(line([""] + cells[1:]))
        else:
            out(line(cells))
        for part in textwrap.wrap(f"{k.name}: {k.cost}", width=width - 4):
            out("    " + part)
