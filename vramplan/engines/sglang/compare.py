"""vLLM and SGLang side by side on the same model, device and workload: KV tokens and concurrency.

A command of its own (``vramplan compare``) rather than a flag on ``plan``: the two engines take different
flags (``--gpu-memory-utilization`` vs ``--mem-fraction-static``, ``--max-model-len`` vs ``--context-length``),
so the shared workload (TP, context length, KV dtype) is named once here and translated to each engine's
own flag, and each engine keeps its own default budget unless one is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...units import GiB

__all__ = ["EngineRow", "Comparison", "compare_engines", "render_compare"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRow:
    engine: str
    version: str
    budget: str
    verdict: str
    error_kind: str | None
    weights_gib: float
    kv_gib: float | None
    kv_tokens: int | None
    context: int
    full_length_requests: float | None
    max_concurrent_requests: int | None
    flags: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    model: str
    device: str
    tp: int
    rows: tuple[EngineRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "tp": self.tp,
                "engines": [{k: getattr(r, k) for k in r.__dataclass_fields__} for r in self.rows],
                "more_kv_tokens": _winner(self.rows)}


def _winner(rows) -> str | None:
    ok = [r for r in rows if r.kv_tokens]
    if len(ok) < 2:
        return ok[0].engine if ok else None
    a, b = ok[0], ok[1]
    return a.engine if a.kv_tokens > b.kv_tokens else (b.engine if b.kv_tokens > a.kv_tokens else "equal")


def compare_engines(model: str, *, device: str | None = None, device_memory_gib: float | None = None, tp: int = 1,
                    context: int | None = None, kv_fp8: bool = False, gpu_memory_utilization: float | None = None,
                    mem_fraction_static: float | None = None, vllm_version: str | None = None,
                    sglang_version: str | None = None) -> Comparison:
    from ... import api
    from . import plan as sglang_plan

    vkw: dict[str, Any] = {"tensor_parallel_size": tp}
    if context:
        vkw["max_model_len"] = context
    if kv_fp8:
        vkw["kv_cache_dtype"] = "fp8"
    if gpu_memory_utilization is not None:
        vkw["gpu_memory_utilization"] = gpu_memory_utilization
    vp = api.plan(model, device=device, device_memory_gib=device_memory_gib, vllm_version=vllm_version, **vkw)
    skw: dict[str, Any] = {"tp_size": tp}
    if context:
        skw["context_length"] = context
    if kv_fp8:
        skw["kv_cache_dtype"] = "fp8_e4m3"
    if mem_fraction_static is not None:
        skw["mem_fraction_static"] = mem_fraction_static
    sp = sglang_plan(model, device=device, device_memory_gib=device_memory_gib, sglang_version=sglang_version, **skw)
    e = vp.engine
    vrow = EngineRow(
        engine="vllm", version=vp.vllm_version, budget=f"--gpu-memory-utilization {e.gpu_memory_utilization}",
        verdict=vp.verdict, error_kind=vp.error_kind, weights_gib=round(vp.logged_rank.bytes_of("weights") / GiB, 2),
        kv_gib=round(vp.logged_rank.available_kv_bytes / GiB, 2) if vp.kv_cache_tokens else None,
        kv_tokens=vp.kv_cache_tokens, context=vp.max_model_len,
        full_length_requests=None if vp.max_concurrency is None else round(vp.max_concurrency, 2),
        max_concurrent_requests=e.max_num_seqs, flags=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in vkw.items()))
    r = sp.resolved
    srow = EngineRow(
        engine="sglang", version=sp.engine_version,
        budget=f"--mem-fraction-static {r.mem_fraction_static:.4g}{'' if r.fraction_given else ' (default)'}",
        verdict=sp.verdict, error_kind=sp.error_kind, weights_gib=round(sp.logged_stage.weights.total_bytes / GiB, 2),
        kv_gib=round(sp.kv_pool_bytes / GiB, 2) if sp.max_total_num_tokens else None,
        kv_tokens=sp.max_total_num_tokens, context=r.context_length,
        full_length_requests=None if sp.max_concurrency is None else round(sp.max_concurrency, 2),
        max_concurrent_requests=sp.max_running_requests,
        flags=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in skw.items()))
    return Comparison(model=model, device=vp.device.label, tp=tp, rows=(vrow, srow))


def render_compare(c: Comparison) -> str:
    lines = [f"{c.model} on {c.device}, TP {c.tp}", ""]
    hdr = f"{'':28s}" + "".join(f"{r.engine + ' ' + r.version:>24s}" for r in c.rows)
    lines.append(hdr)

    def row(label: str, vals) -> None:
        lines.append(f"{label:28s}" + "".join(f"{'-' if v is None else str(v):>24s}" for v in vals))

    row("budget", [r.budget.split()[-1] if "(default)" not in r.budget else r.budget.split()[-2] + "*" for r in c.rows])
    row("verdict", [r.verdict + (f" ({r.error_kind})" if r.error_kind else "") for r in c.rows])
    row("weights per GPU (GiB)", [r.weights_gib for r in c.rows])
    row("KV cache (GiB)", [r.kv_gib for r in c.rows])
    row("KV tokens", [f"{r.kv_tokens:,}" if r.kv_tokens else None for r in c.rows])
    row("context length", [r.context for r in c.rows])
    row("full-length requests", [r.full_length_requests for r in c.rows])
    row("max concurrent requests", [r.max_concurrent_requests for r in c.rows])
    lines.append("")
    lines.append("budget: vLLM --gpu-memory-utilization / SGLang --mem-fraction-static (* SGLang's default); "
                 "max concurrent requests: vLLM max_num_seqs / SGLang max_running_requests")
    w = _winner(c.rows)
    if w and w != "equal":
        lines.append(f"more KV cache: {w}")
    lines.append("SGLang figures are read from its source; not yet measured on a real SGLang startup.")
    return "\n".join(lines)
