"""``vramplan sweep``'s views of a :class:`~vramplan.fit.SweepResult`: the ``--json`` object and a table that fits
80 columns. A value that cannot start shows vLLM's failure instead of a KV cache (vLLM allocates none)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from ..units import GiB

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..fit import SweepResult

__all__ = ["sweep_to_dict", "render_sweep"]


def sweep_to_dict(res: "SweepResult") -> dict[str, Any]:
    rows = []
    for v, p, err in zip(res.values, res.plans, res.errors):
        if p is None:
            rows.append({"value": v, "verdict": "invalid", "error_kind": "invalid_input", "error_message": err,
                         "kv_cache_tokens": None, "max_concurrency": None, "non_kv_gib": None, "kv_cache_gib": None})
            continue
        rows.append({"value": v, "verdict": p.verdict, "error_kind": p.error_kind,
                     "kv_cache_tokens": p.kv_cache_tokens,
                     "max_concurrency": None if p.max_concurrency is None else round(p.max_concurrency, 2),
                     "non_kv_gib": round(p.logged_rank.bytes_of("non_kv_total") / GiB, 3),
                     "kv_cache_gib": round(p.logged_rank.available_kv_bytes / GiB, 3) if p.starts else None})
    return {"flag": res.flag, "rows": rows}


def render_sweep(res: "SweepResult", console: "Console") -> None:
    def out(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    width = max(console.width, 60)
    rows = sweep_to_dict(res)["rows"]
    vw = max(len(res.flag), *(len(str(r["value"])) for r in rows))
    head = ["verdict", "non-KV GiB", "KV GiB", "KV tokens", "requests"]
    ws = [7, 10, 7, 11, 8]
    out(res.flag.rjust(vw) + "".join("  " + h.rjust(w) for h, w in zip(head, ws)))
    for r in rows:
        left = str(r["value"]).rjust(vw) + "  " + r["verdict"].ljust(ws[0])
        if r["verdict"] == "starts":
            cells = [f"{r['non_kv_gib']:.2f}", f"{r['kv_cache_gib']:.2f}", f"{r['kv_cache_tokens']:,}",
                     f"{r['max_concurrency']:.2f}"]
            out(left + "".join("  " + c.rjust(w) for c, w in zip(cells, ws[1:])))
        elif r["verdict"] == "fails":
            text = left + "  " + f"{r['non_kv_gib']:.2f}".rjust(ws[1]) + "  " + r["error_kind"]
            out(text)
        else:  # a value that cannot be planned: vLLM's (or vramplan's) reason, wrapped beneath
            out(left)
            first = (r["error_message"] or "").split(". ")[0].rstrip(".") + "."  # vLLM's sentence; --json has all
            for part in textwrap.wrap(first, width=width - vw - 4):
                out(" " * (vw + 4) + part)
