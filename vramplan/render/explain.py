"""``vramplan explain``'s views of an :class:`~vramplan.explain.Explanation`: the ``--json`` object and the
terminal report (the logged breakdown, vLLM's budget equations re-checked, the diagnosis, the comparison)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..explain import Explanation

__all__ = ["facts_dict", "explanation_to_dict", "render_explanation"]


def facts_dict(f, diag, checks, activation_peak_gib: float | None, *,
               extensible: dict[str, Any] | None = None, incomplete: bool = False) -> dict[str, Any]:
    """The ``explain --json`` object: the plan's keys (null where the log is silent) plus log-only fields.
    ``checks`` and ``activation_peak_gib`` are ``explain.budget_checks``'s and ``explain.activation_peak_gib``'s."""
    a = f.args
    tp, pp, dp = a.get("tensor_parallel_size"), a.get("pipeline_parallel_size"), a.get("data_parallel_size")
    return {
        "source": "log",
        "vllm_version": f.vllm_version,
        "era": f.era,
        "model": f.model,
        "device": {"name": f.device_name, "total_gib": f.total_gib or f.total_memory_gib,
                   "count": (tp or 1) * (pp or 1) * (dp or 1) if (tp or pp or dp) else None, "platform": f.platform},
        "tp": tp, "pp": pp, "dp": dp,
        "max_model_len": a.get("max_model_len") or f.max_concurrency_len,
        "block_size": f.block_size,
        "verdict": "fails" if f.error_kind else (None if incomplete else
                                                 "starts" if f.kv_cache_gib is not None or f.kv_cache_tokens else None),
        "error_kind": f.error_kind,
        "error_subkind": f.error_subkind,
        "error_message": f.error_message,
        "error_phase": f.error_phase,
        "memory_gib": {
            "requested": f.requested_gib, "weights": f.weights_gib, "activation_peak": activation_peak_gib,
            "non_torch": f.non_torch_gib, "cudagraph_estimate": f.cudagraph_estimate_gib,
            "non_kv_total": f.non_kv_total_gib, "kv_cache": f.kv_cache_gib, "cudagraph_actual": f.cudagraph_actual_gib,
            "initial_free": f.initial_free_gib, "total_consumed": f.total_consumed_gib,
        },
        "num_gpu_blocks": f.num_gpu_blocks,
        "kv_cache_tokens": f.kv_cache_tokens,
        "max_concurrency": f.max_concurrency,
        "estimated_max_model_len": f.estimated_max_model_len,
        "runner": f.runner,
        "args": a,
        "timings_s": f.timings,
        "ranks": {k: {fld: getattr(v, fld) for fld in ("weights_gib", "torch_peak_increase_gib", "non_torch_gib",
                                                         "non_kv_total_gib", "kv_cache_gib", "num_gpu_blocks")}
                  for k, v in f.ranks.items()},
        "budget_checks": [{"check": n, "holds": ok, "arithmetic": t} for n, ok, t in checks],
        "extensible_kv_cache": extensible,
        "diagnosis": diag.summary,
        "fix": diag.fix,
        "warnings": list(f.warnings),
    }


def explanation_to_dict(x: "Explanation") -> dict[str, Any]:
    """Plan ``--json``'s keys (null where the log is silent), the log-only fields, and ``compare`` if asked.
    ``release_inference``: the release inferred from the log's lines when it states no version (null when it
    does); ``vllm_version`` stays what the log said."""
    obj = facts_dict(x.facts, x.diagnosis, x.checks, x.activation_peak_gib, extensible=x.extensible,
                     incomplete=getattr(x, "incomplete", False))
    release = getattr(x, "release", None)
    obj["release_inference"] = release.to_dict() if release is not None else None
    kb = getattr(x, "kv_blocks", None)
    obj["kv_blocks"] = kb.to_dict() if kb is not None else None
    if x.compared:
        obj["compare"] = ({"rows": [{"term": t, "predicted": p, "logged": lg} for t, p, lg in x.compare_rows]}
                          if x.compare_rows else {"unavailable": x.compare_note})
        obj["compare"]["vllm_version"] = getattr(x, "compared_version", None)
        obj["compare"]["vllm_version_source"] = getattr(x, "release_source", None)
        plan = x.plan
        obj["compare"]["rules"] = plan.rules.label if plan is not None else None
        obj["compare"]["range_check"] = list(getattr(x, "range_check", ()) or ())
    return obj


def _r(x: float | None, nd: int = 2) -> str:
    return "?" if x is None else f"{x:.{nd}f}"


def render_explanation(x: "Explanation", console: "Console") -> None:
    from rich.table import Table

    f, diag, rows, note, plan = x.facts, x.diagnosis, x.compare_rows, x.compare_note, x.plan
    con = console
    head = f"vLLM {f.vllm_version or '(version not logged)'} · log format {f.era}"
    if f.model:
        head += f" · {f.model}"
    con.print(head, style="bold", highlight=False)
    release = getattr(x, "release", None)
    if release is not None:
        con.print(release.note, style="dim", highlight=False)
    t = Table(header_style="bold")
    t.add_column("term", overflow="fold")
    ranks = list(f.ranks.values()) if len(f.ranks) > 1 else []
    if ranks:  # a process that logged none of the table's figures (the API server) is not a column of '?'
        shown = [r for r in ranks if any(getattr(r, fld, None) is not None for fld in _TABLE_FIELDS
                                         if fld != "total_gib")]
        ranks = shown if len(shown) > 1 else []
    t.add_column("GiB (logged)", justify="right", no_wrap=True)
    for r in ranks[:4]:
        t.add_column(r.rank, justify="right", no_wrap=True)
    peak_derived = f.torch_peak_increase_gib is None and x.activation_peak_gib is not None
    fields = [("device total", "total_gib"), ("free at startup", "initial_free_gib"), ("requested", "requested_gib"),
              ("weights", "weights_gib"),
              ("torch peak increase" + (" (peak_torch_memory - weights)" if peak_derived else ""),
               "torch_peak_increase_gib"),
              ("non-torch increase", "non_torch_gib"), ("CUDA-graph estimate", "cudagraph_estimate_gib"),
              ("non-KV total", "non_kv_total_gib"), ("KV cache", "kv_cache_gib"),
              ("CUDA graphs captured (after KV)", "cudagraph_actual_gib")]
    for label, fld in fields:
        v = x.activation_peak_gib if fld == "torch_peak_increase_gib" else getattr(f, fld)
        if v is None and not any(getattr(r, fld, None) is not None for r in ranks):
            continue
        if fld == "kv_cache_gib" and f.era == "v1-v0.34":
            label = "KV budget before warm-up (reserved)"
        t.add_row(label, _r(v), *[_r(getattr(r, fld, None)) for r in ranks[:4]])
    for label, v in getattr(x, "profile_rows", ()):  # vLLM 0.33/0.34: total consumed, headroom, free after profiling
        t.add_row(label, _r(v), *[""] * len(ranks[:4]))
    for label, v in x.extensible_rows:  # vLLM 0.34: after warm-up and capture
        t.add_row(label, _r(v), *[""] * len(ranks[:4]))
    con.print(t)
    if f.num_gpu_blocks or f.kv_cache_tokens:
        kb = getattr(x, "kv_blocks", None)
        blocks = f.num_gpu_blocks or (kb.blocks if kb is not None else None)
        mcl = f.max_concurrency_len or f.args.get("max_model_len")
        line = (f"KV cache: {f'{blocks:,} blocks · ' if blocks else ''}{f.kv_cache_tokens or 0:,} tokens"
                + (f" · max concurrency {_r(f.max_concurrency)}x at {mcl if mcl else '?'} tokens"
                   if f.max_concurrency is not None else ""))
        con.print(line, highlight=False)
        if kb is not None and kb.source != "logged":
            con.print(f"  blocks {kb.why}", style="dim", highlight=False)
    for name, ok, arith in x.checks:
        mark = "ok " if ok else ("-- " if ok is None else "!! ")
        con.print(f"{mark}{name}: {arith}", style="dim" if ok is not False else "yellow", highlight=False)
    state = ("[bold red]FAILED[/bold red] " if f.error_kind else
             "[bold yellow]INCOMPLETE[/bold yellow] " if getattr(x, "incomplete", False) else "[bold green]STARTED[/bold green] ")
    con.print(state + diag.summary, highlight=False)
    if diag.fix:
        con.print(f"Fix: {diag.fix}", style="bold yellow", highlight=False)
    for w in f.warnings[:6]:
        con.print(f"vLLM warned: {w}", style="dim", highlight=False)
    if rows:
        ct = Table(title="predicted (vramplan) vs logged (vLLM)", header_style="bold")
        for c in ("term", "predicted", "logged", "difference"):
            if c == "term":
                ct.add_column(c, overflow="fold")
            else:
                ct.add_column(c, justify="right", no_wrap=True)
        for term, pred, logged in rows:
            diff = ""
            if isinstance(pred, (int, float)) and isinstance(logged, (int, float)) and logged:
                d = pred - logged
                diff = (f"{d:+,}" if isinstance(d, int) else f"{d:+.2f}") + f" ({100 * d / abs(logged):+.1f}%)"
            ct.add_row(term, _fmt(pred), _fmt(logged), diff)
        con.print(ct)
        if plan is not None:
            why = {"user": " (--vllm-version)", "inferred": " (release inferred from the log's lines, see above)",
                   "log": " (the log's version)"}.get(getattr(x, "release_source", None) or "", "")
            con.print(f"planned with vLLM {plan.rules.label} rules{why} on {plan.device.label}", style="dim")
            if plan.rules.stand_in_note:
                con.print(plan.rules.stand_in_note, style="dim", highlight=False)
            checks = getattr(x, "range_check", ()) or ()
            if checks:
                rng = x.release.range if getattr(x, "release", None) is not None else "the inferred range"
                alike = [c["rules"] for c in checks if c["same"]]
                differ = [c for c in checks if c["same"] is False]
                if alike:
                    con.print(f"the other rule sets in {rng} ({', '.join(alike)}) plan this log alike", style="dim",
                              highlight=False)
                for c in differ:
                    terms = "; ".join(f"{t} {_fmt(a)} -> {_fmt(b)}" for t, (a, b) in list(c["differs"].items())[:4])
                    con.print(f"{c['rules']} (also in {rng}) differs: {terms}", style="yellow", highlight=False)
    elif note:
        con.print(f"compare: {note} — showing the log side only", style="yellow", highlight=False)


_TABLE_FIELDS = ("total_gib", "initial_free_gib", "requested_gib", "weights_gib", "torch_peak_increase_gib",
                 "non_torch_gib", "cudagraph_estimate_gib", "non_kv_total_gib", "kv_cache_gib", "cudagraph_actual_gib")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)
