"""``explain`` for SGLang logs: what the log says (weights, KV tokens, running requests, the failure), and,
when the model is known, the plan of the same startup beside it."""

from __future__ import annotations

from typing import Any

from ...errors import VramplanError
from ...units import GiB
from .log import SGLangLogFacts

__all__ = ["facts_to_dict", "compare_with_plan", "explain_lines"]


def facts_to_dict(f: SGLangLogFacts) -> dict[str, Any]:
    return {
        "engine_name": "sglang",
        "engine_version": f.sglang_version,
        "kind": "sglang_log",
        "lines": f.num_lines,
        "model": f.server_args.get("model_path"),
        "architecture": f.architecture,
        "server_args": f.server_args,
        "ranks": list(f.ranks),
        "memory_gb": {"free_before_load": f.free_before_load_gb, "weights": f.weights_gb,
                      "free_after_load": f.free_after_load_gb, "kv_cache": f.kv_gb,
                      "pool_end_avail": f.pool_end_avail_gb, "decode_cuda_graph": f.decode_graph_gb,
                      "prefill_cuda_graph": f.prefill_graph_gb, "available_after_startup": f.available_gpu_mem_gb},
        "weights_gib": f.weights_gb,
        "kv_cache_tokens": f.tokens,
        "max_total_num_tokens": f.max_total_num_tokens,
        "swa_max_total_num_tokens": f.swa_tokens,
        "max_running_requests": f.max_running_requests,
        "chunked_prefill_size": f.chunked_prefill_size,
        "context_len": f.context_len,
        "mem_fraction_static": f.mem_fraction_static,
        "kv_dtype": f.kv_dtype,
        "verdict": "fails" if f.error_kind else ("starts" if f.max_total_num_tokens is not None else "unknown"),
        "error_kind": f.error_kind,
        "error_message": f.error_message,
        "error_phase": f.error_phase,
        "warnings": list(f.warnings),
    }


def _flags_from(f: SGLangLogFacts) -> dict[str, Any]:
    sa = f.server_args
    kw: dict[str, Any] = {}
    for k in ("mem_fraction_static", "tp_size", "pp_size", "context_length", "chunked_prefill_size", "max_total_tokens",
              "max_running_requests", "page_size", "cuda_graph_max_bs_decode", "cuda_graph_max_bs_prefill",
              "max_prefill_tokens"):
        v = sa.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            kw[k] = v
    if "cuda_graph_max_bs_decode" not in kw and isinstance(sa.get("cuda_graph_max_bs"), int) and not isinstance(
            sa.get("cuda_graph_max_bs"), bool):
        kw["cuda_graph_max_bs_decode"] = sa["cuda_graph_max_bs"]  # the older releases' name
    for k in ("kv_cache_dtype", "attention_backend", "cuda_graph_backend_decode", "cuda_graph_backend_prefill"):
        if isinstance(sa.get(k), str):
            kw[k] = sa[k]
    for k in ("disable_cuda_graph", "disable_prefill_cuda_graph", "disable_decode_cuda_graph", "disable_radix_cache"):
        if sa.get(k) is True:
            kw[k] = True
    return kw


def _planned_available(p) -> float | None:
    """``available_gpu_mem`` as the plan's own scheduler line gives it (None when the plan has no such line)."""
    import re

    for line in p.log_lines:
        m = re.search(r"available_gpu_mem=(-?\d+(?:\.\d+)?) GB", line)
        if m:
            return float(m.group(1))
    return None


def compare_with_plan(f: SGLangLogFacts, *, model: str | None = None, device: str | None = None,
                      sglang_version: str | None = None):
    """Plan the startup the log describes and put the figures side by side: (plan, rows)."""
    from . import plan as sglang_plan

    name = model or f.server_args.get("model_path")
    if not name:
        raise VramplanError("the log names no model", hint="pass --model MODEL")
    kw = _flags_from(f)
    if f.free_before_load_gb and device is None:
        device = "h100-80gb"
    # the baseline the log states (free memory before loading) replaces the context estimate
    if model is None:
        from ...resolve import load_model

        try:
            load_model(name)
        except VramplanError as exc:  # the log's --model-path is the serving machine's, not found here
            raise VramplanError(f"the log's model {name} cannot be read here ({exc.message})",
                                hint="pass --model MODEL: a catalog id (`vramplan models`) or a folder with "
                                     "config.json") from None
    p = sglang_plan(name, device=device, sglang_version=sglang_version or f.sglang_version,
                    free_before_load_gib=f.free_before_load_gb, **kw)
    rows = [
        ("weights (GB)", round(p.logged_stage.weights.total_bytes / GiB, 2), f.weights_gb),
        ("free before loading (GB)", round(p.logged_stage.free_before_load_bytes / GiB, 2), f.free_before_load_gb),
        ("mem_fraction_static", p.resolved.mem_fraction_static, f.mem_fraction_static),
        ("KV tokens", p.max_total_num_tokens, f.tokens),
        ("max_running_requests", p.max_running_requests, f.max_running_requests),
        ("chunked_prefill_size", p.resolved.chunked_prefill_size, f.chunked_prefill_size),
        ("context_len", p.resolved.context_length, f.context_len),
        ("verdict", p.verdict, "fails" if f.error_kind else ("starts" if f.max_total_num_tokens else None)),
    ]
    # added after the first rows (the JSON rows are a list: new terms go last)
    graphs = (p.bytes_of("cudagraph_decode") + p.bytes_of("cudagraph_prefill")) / GiB
    logged_graphs = None if f.decode_graph_gb is None and f.prefill_graph_gb is None else round(
        (f.decode_graph_gb or 0.0) + (f.prefill_graph_gb or 0.0), 2)
    rows += [
        ("KV pool (GB)", round(p.kv_pool_bytes / GiB, 2) if p.max_total_num_tokens else None, f.kv_gb),
        ("CUDA graphs (GB)", round(graphs, 2), logged_graphs),
        ("available after startup (GB)", _planned_available(p), f.available_gpu_mem_gb),
        ("error kind", p.error_kind, f.error_kind),
        ("error phase", p.error_phase, f.error_phase),
    ]
    return p, rows


def explain_lines(f: SGLangLogFacts, rows=None, note: str | None = None) -> list[str]:
    out = [f"SGLang log ({f.num_lines} lines){' sglang ' + f.sglang_version if f.sglang_version else ''}"
           f"{', model ' + str(f.server_args.get('model_path')) if f.server_args.get('model_path') else ''}"]
    if f.mem_fraction_static is not None:
        out.append(f"  --mem-fraction-static {f.mem_fraction_static}")
    if f.free_before_load_gb is not None:
        out.append(f"  free before loading:   {f.free_before_load_gb:8.2f} GB")
    if f.weights_gb is not None:
        out.append(f"  weights (mem usage):   {f.weights_gb:8.2f} GB ({f.architecture})")
    if f.kv_gb is not None:
        out.append(f"  KV pool:               {f.kv_gb:8.2f} GB, {f.kv_tokens:,} tokens ({f.kv_dtype})")
    if f.pool_end_avail_gb is not None:
        out.append(f"  free after the pool:   {f.pool_end_avail_gb:8.2f} GB  (CUDA graphs and activations live here)")
    if f.decode_graph_gb is not None or f.prefill_graph_gb is not None:
        out.append(f"  CUDA graphs:           decode {f.decode_graph_gb or 0:.2f} GB, prefill {f.prefill_graph_gb or 0:.2f} GB")
    if f.max_total_num_tokens is not None:
        out.append(f"  max_total_num_tokens={f.max_total_num_tokens:,}, max_running_requests={f.max_running_requests}, "
                   f"context_len={f.context_len}, available after startup {f.available_gpu_mem_gb:.2f} GB")
    if f.error_kind:
        out.append(f"  FAILED ({f.error_kind}, {f.error_phase}): {f.error_message}")
        if f.error_kind == "no_kv_cache_memory":
            out.append("  fix: raise --mem-fraction-static (the weights take what the fraction gives), or use more GPUs")
        elif f.error_kind == "out_of_memory":
            out.append("  fix: lower --mem-fraction-static (graphs and activations live outside it), or lower "
                       "--chunked-prefill-size / --cuda-graph-max-bs-decode")
    for w in f.warnings:
        out.append(f"  warning: {w}")
    if rows:
        out.append("")
        out.append(f"  {'figure':28s} {'planned':>14s} {'logged':>14s}")
        for name, planned, logged in rows:
            out.append(f"  {name:28s} {str(planned):>14s} {str(logged):>14s}")
    elif note:
        out.append(f"  (no plan to compare: {note})")
    return out
