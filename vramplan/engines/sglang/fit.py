"""``fit``, ``knobs`` and ``sweep`` for SGLang: solve for SGLang's own flags with the SGLang plan.

- ``fit`` solves for ``--mem-fraction-static`` (the largest that still leaves room for graphs and the prefill
  activations, and the smallest that holds the workload), ``--max-total-tokens`` (the workload's tokens),
  ``--context-length`` (the longest context the pool holds for the concurrency asked),
  ``--chunked-prefill-size`` and ``--cuda-graph-max-bs-decode`` (the largest that start).
- ``knobs``: each memory knob, with the KV tokens it adds or costs and the verdict.
- ``sweep``: one flag over a range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...errors import InputError, NoFittingFlags
from ...units import GiB
from .planner import SGLangPlan

__all__ = ["FitResult", "fit_sglang", "fit_dict", "knobs_dict", "sweep_dict", "cmd_fit", "cmd_knobs", "cmd_sweep",
           "SWEEPABLE"]

SWEEPABLE = {"mem-fraction-static": ("mem_fraction_static", float), "context-length": ("context_length", int),
             "chunked-prefill-size": ("chunked_prefill_size", int),
             "cuda-graph-max-bs-decode": ("cuda_graph_max_bs_decode", int),
             "cuda-graph-max-bs": ("cuda_graph_max_bs_decode", int),
             "max-running-requests": ("max_running_requests", int), "max-total-tokens": ("max_total_tokens", int),
             "tp-size": ("tp_size", int)}


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    answer: str
    flags: dict
    launch_line: str
    plan: SGLangPlan


def _search_max(lo: int, hi: int, ok) -> int | None:
    """Largest x in [lo, hi] with ok(x), assuming ok is true below some threshold."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_sglang(make, *, concurrency: int = 1, context: int | None = None) -> FitResult:
    """``make(**overrides) -> SGLangPlan``. Solves the five flags for ``concurrency`` requests of ``context`` tokens."""
    base = make()
    if base.error_kind == "unsupported_device" and base.error_phase != "attention_backend_init":
        # no fraction helps: SGLang's kernels refuse the device (engines/sglang/dsa.py:dsa_kernel_failure)
        raise NoFittingFlags(f"no flag makes this start on {base.device.label}: {base.error_message}",
                             hint=base.fix or "another device")
    ctx = context or base.resolved.context_length
    need = concurrency * ctx

    def starts_at(th: int) -> bool:
        return make(mem_fraction_static=th / 1000).starts

    # starting is a window in the fraction (too low: the weights or the pool do not fit; too high: graphs and the
    # prefill chunk do not): find a fraction that starts (the default first, then a 0.01 scan), then the largest
    default = round(base.resolved.mem_fraction_static * 1000)
    start = default if 300 <= default <= 990 and base.starts else next(
        (th for th in range(300, 991, 10) if starts_at(th)), None)
    hi = _search_max(start, 990, starts_at) if start is not None else None
    if hi is None:
        raise NoFittingFlags("no --mem-fraction-static from 0.30 to 0.99 starts",
                             hint="more GPUs (--tp-size), a quantized checkpoint or a larger device")
    best = make(mem_fraction_static=hi / 1000)
    tokens = best.max_total_num_tokens or 0
    flags: dict = {"mem-fraction-static": hi / 1000}
    if tokens < need:
        # the context the pool holds for this concurrency
        fit_ctx = min(ctx, tokens // concurrency)
        if fit_ctx < 1:
            raise NoFittingFlags(f"{concurrency} requests do not fit even at --mem-fraction-static {hi / 1000}",
                                 hint="fewer concurrent requests, --kv-cache-dtype fp8_e4m3, or more GPUs")
        flags["context-length"] = fit_ctx
        answer = (f"{concurrency} x {ctx} tokens ({need:,}) do not fit: at --mem-fraction-static {hi / 1000} the pool "
                  f"holds {tokens:,} tokens, so --context-length {fit_ctx} serves {concurrency} requests at once")
    else:
        low = _search_max(start, hi, lambda th: (make(mem_fraction_static=th / 1000).max_total_num_tokens or 0) < need)
        low_f = (low + 1) / 1000 if low is not None else start / 1000
        flags["max-total-tokens"] = need
        answer = (f"fits: --mem-fraction-static between {low_f:.3f} (holds {need:,} tokens) and {hi / 1000:.3f} "
                  f"(the largest that leaves room for CUDA graphs and a prefill chunk; {tokens:,} tokens)")
    # chunked prefill and decode graph size at the chosen fraction: the largest that start
    cps_choices = [c for c in (16384, 8192, 4096, 2048, 1024, 512)]
    for c in cps_choices:
        if make(mem_fraction_static=hi / 1000, chunked_prefill_size=c).starts:
            flags["chunked-prefill-size"] = c
            break
    for bs in (512, 256, 160, 128, 64, 32, 16, 8):
        if make(mem_fraction_static=hi / 1000, cuda_graph_max_bs_decode=bs).starts:
            flags["cuda-graph-max-bs-decode"] = bs
            break
    model = base.args.model_path or base.model.name
    line = (f"python -m sglang.launch_server --model-path {model}"
            + (f" --tp-size {base.args.tp_size}" if base.args.tp_size > 1 else "")
            + "".join(f" --{k} {v}" for k, v in flags.items()))
    return FitResult(answer=answer, flags=flags, launch_line=line, plan=best)


def _count(value, flag: str) -> int | None:
    """A count as the CLI reads it (``8192``, ``8k``), or None; at least 1."""
    from ...units import parse_human_int

    if value is None:
        return None
    try:
        n = value if isinstance(value, int) else parse_human_int(str(value))
    except (ValueError, TypeError, InputError):
        raise InputError(f"{flag} takes a whole number, got {value!r}", hint=f"e.g. {flag} 8192") from None
    if n < 1:
        raise InputError(f"{flag} must be at least 1, got {value!r}")
    return n


def fit_dict(make, *, concurrency=1, context=None) -> dict:
    """``vramplan fit --engine sglang --json``'s object; ``make(**server_args) -> SGLangPlan``."""
    from .render import sglang_plan_to_dict

    res = fit_sglang(make, concurrency=_count(concurrency, "--concurrency") or 1,
                     context=_count(context, "--context"))
    return {"engine_name": "sglang", "answer": res.answer, "flags": res.flags, "launch_line": res.launch_line,
            "plan": sglang_plan_to_dict(res.plan)}


def cmd_fit(ns, tokens: list[str], plan_from) -> int:
    obj = fit_dict(lambda **kw: plan_from(ns, tokens, **kw), concurrency=getattr(ns, "concurrency", None),
                   context=getattr(ns, "context", None))
    if ns.json:
        print(json.dumps(obj, indent=2))
        return 0
    print(obj["answer"])
    print("\n  " + obj["launch_line"])
    return 0


def _knob_list(p: SGLangPlan) -> list[tuple[str, dict, str]]:
    r = p.resolved
    out = [("KV cache in fp8", {"kv_cache_dtype": "fp8_e4m3"}, "fp8 KV: half the bytes per token; small accuracy cost"),
           ("raise the fraction", {"mem_fraction_static": round(r.mem_fraction_static + 0.03, 3)},
            "more KV; less room for graphs and prefill chunks"),
           ("lower the fraction", {"mem_fraction_static": round(r.mem_fraction_static - 0.05, 3)},
            "less KV; more room for graphs and prefill chunks"),
           ("smaller prefill chunks", {"chunked_prefill_size": max(r.chunked_prefill_size // 2, 512)},
            "lower activation peak (and a larger default fraction); slower long prefills"),
           ("fewer decode graphs", {"cuda_graph_max_bs_decode": max(r.decode_max_bs // 2, 8)},
            "smaller graph pool; batches above it run eager"),
           ("no CUDA graphs", {"disable_cuda_graph": True}, "no graph pools (and a larger default fraction); slower decode"),
           ("shorter context", {"context_length": max(r.context_length // 4, 2048)},
            "smaller request table, more running requests; long prompts refused"),
           ("TP x2", {"tp_size": p.args.tp_size * 2}, "weights and KV heads split over twice the GPUs")]
    return out


def knobs_dict(make) -> dict:
    """``vramplan knobs --engine sglang --json``'s object; ``make(**server_args) -> SGLangPlan``."""
    base = make()
    rows = []
    for name, kw, cost in _knob_list(base):
        try:
            p = make(**kw)
        except InputError as exc:
            rows.append({"knob": name, "change": kw, "verdict": "refused", "kv_tokens": None, "kv_tokens_added": None,
                         "cost": exc.one_line()})
            continue
        added = None if (p.max_total_num_tokens is None or base.max_total_num_tokens is None) else (
            p.max_total_num_tokens - base.max_total_num_tokens)
        rows.append({"knob": name, "change": {k: v for k, v in kw.items()}, "verdict": p.verdict,
                     "kv_tokens": p.max_total_num_tokens, "kv_tokens_added": added,
                     "mem_fraction_static": p.resolved.mem_fraction_static, "cost": cost})
    return {"engine_name": "sglang", "baseline": {"verdict": base.verdict, "kv_tokens": base.max_total_num_tokens,
                                                  "mem_fraction_static": base.resolved.mem_fraction_static},
            "knobs": rows}


def cmd_knobs(ns, tokens: list[str], plan_from) -> int:
    obj = knobs_dict(lambda **kw: plan_from(ns, tokens, **kw))
    if ns.json:
        print(json.dumps(obj, indent=2))
        return 0
    base, rows = obj["baseline"], obj["knobs"]
    print(f"baseline: {base['verdict']}, {base['kv_tokens'] or 0:,} KV tokens at --mem-fraction-static "
          f"{base['mem_fraction_static']:.4g}")
    print(f"{'knob':24s} {'change':44s} {'verdict':8s} {'KV tokens':>12s}")
    for r in rows:
        change = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in r["change"].items())
        added = "-" if r["kv_tokens_added"] is None else f"{r['kv_tokens_added']:+,}"
        print(f"{r['knob']:24s} {change:44s} {r['verdict']:8s} {added:>12s}")
        print(f"{'':24s}   cost: {r['cost']}")
    return 0


def parse_vary_sglang(text: str, steps: int) -> tuple[str, str, list]:
    flag, _, rng = text.partition("=")
    flag = flag.strip().lstrip("-")
    if flag not in SWEEPABLE or not rng:
        raise InputError(f"cannot sweep {flag!r}", hint="one of: " + ", ".join(sorted(SWEEPABLE)) +
                         " as FLAG=LOW:HIGH or FLAG=A,B,C")
    field, typ = SWEEPABLE[flag]
    try:
        if ":" in rng:
            lo, hi = (typ(x) for x in rng.split(":", 1))
            n = max(steps, 2)
            vals = [typ(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
            if typ is float:
                vals = [round(v, 3) for v in vals]
        else:
            vals = [typ(x) for x in rng.split(",")]
    except ValueError:
        raise InputError(f"--vary {text!r}: values must be numbers", hint="e.g. mem-fraction-static=0.7:0.9") from None
    return flag, field, vals


def sweep_dict(make, vary: str, steps: int) -> dict:
    """``vramplan sweep --engine sglang --json``'s object; ``make(**server_args) -> SGLangPlan``."""
    flag, field, values = parse_vary_sglang(vary, steps)
    rows = []
    for v in values:
        try:
            p = make(**{field: v})
            rows.append({"value": v, "verdict": p.verdict, "error_kind": p.error_kind,
                         "kv_cache_tokens": p.max_total_num_tokens, "max_running_requests": p.max_running_requests,
                         "max_concurrency": None if p.max_concurrency is None else round(p.max_concurrency, 2),
                         "kv_cache_gib": round(p.kv_pool_bytes / GiB, 3),
                         "mem_fraction_static": p.resolved.mem_fraction_static})
        except InputError as exc:
            rows.append({"value": v, "verdict": "refused", "error_kind": "invalid_config", "kv_cache_tokens": None,
                         "max_running_requests": None, "max_concurrency": None, "kv_cache_gib": None,
                         "mem_fraction_static": None, "error_message": exc.one_line()})
    return {"engine_name": "sglang", "flag": flag, "rows": rows}


def cmd_sweep(ns, tokens: list[str], plan_from) -> int:
    obj = sweep_dict(lambda **kw: plan_from(ns, tokens, **kw), ns.vary, ns.steps)
    if ns.json:
        print(json.dumps(obj, indent=2))
        return 0
    rows = obj["rows"]
    print(f"{obj['flag']:>26s} | verdict | fraction | KV GiB | KV tokens | running | full-length")
    for r in rows:
        frac = "-" if r["mem_fraction_static"] is None else f"{r['mem_fraction_static']:.4g}"
        kvg = "-" if r["kv_cache_gib"] is None else f"{r['kv_cache_gib']:.2f}"
        print(f"{str(r['value']):>26s} | {r['verdict']:7s} | {frac:>8s} | {kvg:>6s} | {(r['kv_cache_tokens'] or 0):>9,} | "
              f"{str(r['max_running_requests'] or '-'):>7s} | {r['max_concurrency'] if r['max_concurrency'] is not None else '-'}"
              + (f"  ({r['error_kind']})" if r["error_kind"] else ""))
    return 0
