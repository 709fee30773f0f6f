"""The terminal view of a plan: one table of every term per rank, the verdict, vLLM's lines."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..units import GiB, format_gib

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..plan import Plan

__all__ = ["render_plan", "render_serving", "plan_text"]


def _g(b: int) -> str:
    return f"{b / GiB:.2f}"


_CITE = re.compile(r"vLLM v[\d.]+ (?:vllm/)?(?:[\w./]*/)?([\w]+\.py:[\w.]+)")


def _short_rule(rule: str) -> str:
    """The vLLM citation of a rule, shortened to ``file.py:function`` (the JSON keeps it whole); other rules
    keep their first clause, which the table cuts at the width there is."""
    m = _CITE.search(rule)
    if m:
        return m.group(1)
    return rule.split(";")[0]


def render_plan(plan: "Plan", console: "Console", *, verbose: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    e = plan.engine
    d = plan.device
    count = f"{plan.device_count}x " if plan.device_count > 1 else ""
    console.print(Text.assemble(
        ("vramplan ", "bold"), (plan.model.name, "bold cyan"), f" on {count}{d.label} ({format_gib(d.total_bytes)} GiB)",
        f" · vLLM {plan.vllm_version} rules ({plan.rules.label})"))
    mode = "eager" if e.cudagraph_mode == "NONE" else f"CUDA graphs {e.cudagraph_mode} ({len(e.capture_sizes)} sizes)"
    quant = f" · {e.quant.method}" if e.quant else ""
    console.print(
        f"TP {e.tp} · PP {e.pp} · DP {e.dp} · max-model-len {plan.max_model_len:,}"
        f"{' (auto)' if e.auto_max_model_len else ''} · max-num-seqs {e.max_num_seqs} · "
        f"max-num-batched-tokens {e.max_num_batched_tokens} · util {e.gpu_memory_utilization} · {e.model_dtype}"
        f"{quant} · KV {e.kv_cache_dtype} · block {e.block_size} · {e.runner.upper()} runner · {mode}",
        style="dim", highlight=False)

    table = Table(title=None, show_lines=False, header_style="bold", expand=False)
    # numbers are never cut: their columns keep their width and the others fold or shorten
    table.add_column("term", overflow="fold", min_width=12)
    for r in plan.ranks:
        table.add_column(f"GiB ({r.name})" if len(plan.ranks) > 1 else "GiB", justify="right", no_wrap=True,
                         min_width=len(f"{d.total_bytes / GiB:.2f}"))
    table.add_column("rule / source", overflow="ellipsis", no_wrap=True, style="dim")

    def row(label: str, values: list[int], rule: str = "", style: str | None = None) -> None:
        table.add_row(label, *[_g(v) for v in values], rule, style=style)

    ranks = plan.ranks
    r0 = ranks[-1]
    row("device total", [d.total_bytes] * len(ranks), f"runtime total ({d.source.split(':')[0]})")
    if plan.used_by_others_bytes:
        row("used by other programs", [plan.used_by_others_bytes] * len(ranks), "--used-by-others-gib")
    # V0 and vllm-ascend <= 0.13 take no init snapshot and make no startup check: all memory in use is non-torch
    no_snapshot = plan.rules.non_kv_formula == "absolute_peak"
    if not no_snapshot:
        row("in use at vLLM's snapshot", [d.total_bytes - plan.used_by_others_bytes - r.free_at_init_bytes
                                          for r in ranks], "CUDA context, NCCL (outside the budget)")
        row("free at startup", [r.free_at_init_bytes for r in ranks], "what the startup check sees")
    row(f"requested = total x {e.gpu_memory_utilization}", [r.requested_bytes for r in ranks],
        ("worker.py:Worker.determine_num_available_blocks" if plan.rules.engine == "v0" else
         "worker_v1.py:NPUWorker.determine_available_memory") if no_snapshot else
        _short_rule(plan.rules.cite("vllm/v1/worker/utils.py", "request_memory")), style="bold")
    # weights that do not fit: loading fails before profiling, so no later term exists
    loading_oom = plan.error_phase == "weight_loading"
    for key in ("weights", "activation_peak", "non_torch", "cudagraph_estimate"):
        t = r0.term(key)
        if t is None or (loading_oom and key != "weights"):
            continue
        label = "  " + t.label + (" *" if t.kind == "measured" else "")
        row(label, [r.bytes_of(key) for r in ranks], _short_rule(t.rule))
        if verbose:
            for name, b in t.parts:
                table.add_row("      " + name, *[_g(b)] + [""] * (len(ranks) - 1), "", style="dim")
    if loading_oom:
        row("  free when loading starts", [r.free_at_init_bytes for r in ranks],
            "total - other programs - runtime context (util plays no part while loading)")
        row("  short by", [max(r.bytes_of("weights") - r.free_at_init_bytes, 0) for r in ranks],
            "weights - free: out of memory in load_model", style="bold red")
    else:
        row("  = non-KV total", [r.bytes_of("non_kv_total") for r in ranks],
            "weights + peak + non-torch" + (" (+ graph estimate)" if e.estimate_cudagraphs else ""))
    if loading_oom:
        pass
    elif r0.term("reserved_bound") is not None:  # vLLM 0.34's extensible KV cache (vramplan/engines/vllm/sizing/extensible.py)
        _extensible_rows(table, ranks, row)
    else:
        row("  KV cache", [r.available_kv_bytes for r in ranks],
            "requested - non-KV" + ("" if no_snapshot else " - graph estimate"), style="bold green")
    if plan.headroom_terms:
        table.add_section()
        for t in plan.headroom_terms:
            table.add_row(t.label + (" *" if t.kind == "measured" else ""), *[_g(t.bytes)] * len(ranks),
                          t.note or _short_rule(t.rule),
                          style="red" if t.key == "headroom_left" and t.bytes < 0 else None)
    for t in plan.host_terms:
        table.add_section()
        table.add_row(t.label, *[_g(t.bytes)] * len(ranks), t.note, style="dim")
    _fit_rule_column(table, console.width)
    console.print(table)
    console.print("[dim]* measured term: a model fitted to real startups (see README, accuracy)[/dim]")

    if plan.verdict == "starts":
        console.print(
            f"KV cache: [bold]{plan.num_gpu_blocks:,}[/bold] blocks of {r0.layout.block_size} tokens · "
            f"[bold]{plan.kv_cache_tokens:,}[/bold] tokens · max concurrency "
            f"[bold]{plan.max_concurrency:.2f}x[/bold] at {plan.max_model_len:,} tokens", highlight=False)
        console.print("Verdict: [bold green]STARTS[/bold green]")
    else:
        console.print(f"Verdict: [bold red]FAILS[/bold red] ({plan.error_kind})")
        console.print(f"vLLM: {plan.error_message}", style="red", highlight=False)
    if plan.fix:
        console.print(f"Fix: {plan.fix}", style="bold yellow", highlight=False)
    for w in plan.warnings:
        console.print(f"warning: {w}", style="yellow", highlight=False)
    if plan.ignored_flags:
        console.print("ignored (no memory effect): " + " ".join(plan.ignored_flags), style="dim", highlight=False)
    console.print("[bold]vLLM would log[/bold] (rank " + r0.name + "):")
    for line in plan.log_lines:
        console.print("  " + line, style="dim", highlight=False, soft_wrap=True)
    if plan.serving is not None:
        render_serving(plan.serving, console)


def _fit_rule_column(table, width: int) -> None:
    """Give the citations the width the terms and the numbers leave, cutting them there (numbers are never cut)."""
    cols = table.columns

    def widths() -> list[int]:
        return [max([*(len(h) for h in str(c.header).split("\n")), *(len(str(x)) for x in c._cells)])
                for c in cols[:-1]]

    need = widths()
    borders = 3 * len(cols) + 1
    room = width - borders - sum(need)
    if room < 28 and len(cols) > 3:  # several ranks: their headers go on two lines
        for c in cols[1:-1]:
            c.header = str(c.header).replace(" (", "\n(")
        need = widths()
        room = width - borders - sum(need)
    if room < 28:  # a narrow terminal: long term labels fold to leave the citations some room
        cols[0].max_width = max(need[0] - (28 - room), 24)
        room = width - borders - sum(need[1:]) - cols[0].max_width
    cols[-1].max_width = max(room, 8)


def render_serving(check, console: "Console") -> None:
    """The serving check of one request shape, under the plan."""
    console.print("\nServing check (one request):", highlight=False, markup=False)
    for t in check.terms:
        console.print(f"  {t.label:60s} {t.bytes / GiB:7.2f} GiB", highlight=False, markup=False, soft_wrap=True)
    console.print("  " + check.verdict, highlight=False, markup=False, soft_wrap=True)


def _extensible_rows(table, ranks, row) -> None:
    """Reserve, warm up, commit: the rows of vLLM 0.34's extensible KV cache."""
    r0 = ranks[-1]
    t = r0.term("reserved_bound")
    row("  = reserved bound (address range)", [r.bytes_of("reserved_bound") for r in ranks], t.note)
    table.add_section()
    table.add_row("after warm-up and CUDA-graph capture:", *[""] * len(ranks), "", style="bold")
    for key in ("cudagraph_pool", "warmup_transient_peak", "non_kv_after_warmup", "kv_margin", "util_withheld"):
        t = r0.term(key)
        if t is not None:
            row("  " + t.label + (" *" if t.kind == "measured" else ""), [r.bytes_of(key) for r in ranks],
                _short_rule(t.rule))
    t = r0.term("kv_cache")
    row("  KV cache (measured)", [r.available_kv_bytes for r in ranks], t.note if t else "", style="bold green")
    t = r0.term("kv_committed")
    if t is not None:
        row("  KV cache committed", [r.bytes_of("kv_committed") for r in ranks], t.note)


def plan_text(plan: "Plan", *, width: int = 120, verbose: bool = False) -> str:
    """The table as plain text (for tests and logs)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    render_plan(plan, Console(file=buf, width=width, color_system=None, force_terminal=False), verbose=verbose)
    return buf.getvalue()
