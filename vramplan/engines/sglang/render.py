"""Renderers of an SGLang plan: the ``--json`` object (the plan contract's keys, with SGLang's figures) and the
terminal table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from ...plan import Term
from ...units import GiB
from .messages import STANDIN

if TYPE_CHECKING:  # pragma: no cover - types only: SGLangPlan.to_dict imports this module
    from .planner import SGLangPlan

__all__ = ["sglang_plan_to_dict", "render_sglang_plan", "dumps"]

SCHEMA_VERSION = 1


def _g(b: float | None) -> float | None:
    return None if b is None else round(b / GiB, 4)


def _term(t: Term) -> dict[str, Any]:
    return {"gib": _g(t.bytes), "bytes": t.bytes, "label": t.label, "kind": t.kind, "rule": t.rule,
            "note": t.note or None, "parts": {k: v for k, v in t.parts} or None}


def sglang_plan_to_dict(p: SGLangPlan) -> dict[str, Any]:
    """The plan contract's keys (render/json.py:plan_to_dict) filled with SGLang's figures, plus SGLang's own.

    ``engine`` is a dict in the vLLM contract (the resolved engine settings), so it stays a dict here with a
    ``name`` inside; the engine's name and release are the top-level ``engine_name`` and ``engine_version``.
    Keys with no SGLang meaning are null (``num_gpu_blocks``: SGLang has no blocks; ``vllm_version``)."""
    r = p.resolved
    a = p.args
    last = p.logged_stage
    return {
        "schema_version": SCHEMA_VERSION,
        "engine_name": "sglang",
        "engine_version": p.engine_version,
        "vllm_version": None,
        "rules_version": p.rules.version_str,
        "model": p.model.name,
        "architecture": p.model.architecture,
        "device": {"name": p.device.name, "label": p.device.label, "total_gib": _g(p.device.total_bytes),
                   "count": a.tp_size * a.pp_size * a.dp_size, "platform": p.device.platform,
                   "source": p.device.source, "nvidia_smi_mib": r.gpu_mem_mib, "nvidia_smi_source": r.gpu_mem_source},
        "tp": a.tp_size,
        "pp": a.pp_size,
        "dp": a.dp_size,
        "max_model_len": r.context_length,
        "context_length": r.context_length,
        "block_size": r.page_size,
        "page_size": r.page_size,
        "kv_sizing": "static_fraction",
        "extensible_kv_cache": None,
        "rules_stand_in": False,
        "verdict": p.verdict,
        "startup_verdict": p.startup_verdict,
        "error_kind": p.error_kind,
        "error_message": p.error_message,
        "error_phase": p.error_phase,
        "memory_gib": {
            "requested": _g(last.fraction_base_bytes * r.mem_fraction_static),
            "weights": _g(last.weights.total_bytes),
            "activation_peak": _g(p.bytes_of("activation_peak")),
            "non_torch": _g(p.bytes_of("non_torch") + p.bytes_of("non_torch_increase")),
            "cudagraph_estimate": _g(p.bytes_of("cudagraph_decode") + p.bytes_of("cudagraph_prefill")),
            "non_kv_total": _g(last.weights.total_bytes + last.rope_reserve_bytes),
            "kv_cache": _g(p.kv_pool_bytes),
            "free_at_init": _g(last.free_before_load_bytes),
            "used_by_others": _g(p.used_by_others_bytes),
            "headroom": _g(p.headroom_bytes),
            "req_to_token": _g(p.bytes_of("req_to_token")),
            "mamba_state": _g(p.bytes_of("mamba_state")),
            "rope_cache_reserve": _g(last.rope_reserve_bytes),
        },
        "num_gpu_blocks": None,
        "kv_cache_tokens": p.max_total_num_tokens,
        "max_total_num_tokens": p.max_total_num_tokens,
        "swa_max_total_num_tokens": p.swa_tokens,
        "max_running_requests": p.max_running_requests,
        "max_concurrency": None if p.max_concurrency is None else round(p.max_concurrency, 4),
        "estimated_max_model_len": None,
        "fix": p.fix,
        "engine": {
            "name": "sglang",
            "mem_fraction_static": r.mem_fraction_static,
            "mem_fraction_static_default": not r.fraction_given,
            "mem_fraction_reserved_mib": {k: v for k, v in r.reserved_parts} or None,
            "chunked_prefill_size": r.chunked_prefill_size,
            "max_prefill_tokens": a.max_prefill_tokens,
            "cuda_graph_max_bs_decode": r.decode_max_bs,
            "num_decode_graph_sizes": len(r.decode_bs) if r.decode_graph else 0,
            "prefill_cuda_graph": r.prefill_graph,
            "prefill_cuda_graph_note": r.prefill_graph_note,
            "cuda_graph_max_bs_prefill": r.prefill_max_bs,
            "num_prefill_graph_sizes": len(r.prefill_bs) if r.prefill_graph else 0,
            "max_running_requests": p.max_running_requests,
            "dtype": r.model_dtype,
            "kv_cache_dtype": r.kv_cache_dtype,
            "attention_backend": r.attention_backend,
            "kv_cell_bytes_per_token": round(last.cell.bytes_per_token, 4),
            "kv_cell_kind": last.cell.kind,
            # DeepSeek Sparse Attention: the latent row and the indexer K record per layer (engines/sglang/dsa.py)
            "dsa": None if r.dsa is None else {
                "mla_row_bytes": r.dsa.mla_row_bytes, "indexer_bytes_per_layer": last.cell.indexer_per_token,
                "indexer_layers": last.cell.num_indexer_layers, "prefill_backend": r.dsa.prefill_backend,
                "decode_backend": r.dsa.decode_backend},
            "quantization": p.model.quant.method if p.model.quant else a.quantization,
            # vLLM-contract keys with their SGLang counterparts
            "max_num_seqs": p.max_running_requests,
            "max_num_batched_tokens": r.chunked_prefill_size,
            "gpu_memory_utilization": None,
            "enforce_eager": not (r.decode_graph or r.prefill_graph),
            # rotary caches as SGLang keeps them (engines/sglang/rope.py); description_bytes: the shared (vLLM) layout
            "rope_caches": [{"name": c.name, "rows": c.rows, "rotary_dim": c.rotary_dim,
                             "element_bytes": c.element_bytes, "bytes": c.bytes,
                             "description_bytes": c.description_bytes, "vision": c.vision, "reason": c.reason}
                            for c in p.rope_caches],
        },
        "headroom_gib": {t.key: _g(t.bytes) for t in p.headroom_terms},
        "host_memory_gib": {},
        "ranks": [{"name": f"pp{s.pp_rank}-tp0", "pp_rank": s.pp_rank, "layers": list(s.layers),
                   "weights_gib": _g(s.weights.total_bytes), "free_at_init_gib": _g(s.free_before_load_bytes),
                   "rest_memory_gb": round(s.rest_gb, 6), "kv_budget_bytes": s.budget_bytes, "tokens": s.tokens,
                   "cell_bytes_per_token": round(s.cell.bytes_per_token, 4)} for s in p.stages],
        "terms": {t.key: _term(t) for t in p.terms + p.headroom_terms},
        "warnings": list(p.warnings),
        "ignored_flags": list(p.ignored_flags),
        "log_lines": list(p.log_lines),
        "not_measured": f"SGLang figures are read from its source; {_standin_note(p)}",
    }


def _standin_note(p: SGLangPlan) -> str:
    """Which unbudgeted terms are vLLM-fitted stand-ins: the CUDA graphs are read from 0.5.17 on CUDA
    (engines/sglang/graphs.py), the activations never are."""
    graphs_standin = any(t.key.startswith("cudagraph_") and "vLLM" in t.rule for t in p.headroom_terms)
    if graphs_standin:
        return f"activations and CUDA graphs: {STANDIN}"
    return f"activations: {STANDIN}; CUDA graphs: read from the source, with a measured per-size residual"


def dumps(p: SGLangPlan) -> str:
    return json.dumps(sglang_plan_to_dict(p), indent=2)


def render_sglang_plan(p: SGLangPlan, out: TextIO, *, verbose: bool = False) -> None:
    """A plain-text table (no rich dependency needed)."""
    r = p.resolved
    a = p.args
    w = out.write
    w(f"SGLang {p.engine_version} plan: {p.model.name} on {p.device.label} "
      f"(TP {a.tp_size}, PP {a.pp_size}), nvidia-smi {r.gpu_mem_mib:.0f} MiB [{r.gpu_mem_source}]\n"
      if r.gpu_mem_mib is not None else f"SGLang {p.engine_version} plan: {p.model.name} on {p.device.label}\n")
    src = "default" if not r.fraction_given else "given"
    w(f"  --mem-fraction-static {r.mem_fraction_static:.6g} ({src}), --chunked-prefill-size {r.chunked_prefill_size}, "
      f"--cuda-graph-max-bs-decode {r.decode_max_bs}, page size {r.page_size}, context {r.context_length}, "
      f"KV dtype {r.kv_cache_dtype}\n")
    if r.reserved_parts and verbose:
        for k, v in r.reserved_parts:
            w(f"      reserved {v:9.1f} MiB  {k}\n")
    w(f"  prefill CUDA graph: {'on' if r.prefill_graph else 'off'} ({r.prefill_graph_note})\n\n")
    w("  Static memory (what --mem-fraction-static budgets)\n")
    for t in p.terms:
        w(f"    {t.label[:64]:64s} {t.bytes / GiB:8.2f} GiB  [{t.kind}]\n")
        if verbose:
            w(f"        rule: {t.rule}\n")
    w("\n  What the fraction leaves (SGLang does not budget these)\n")
    for t in p.headroom_terms:
        w(f"    {t.label[:64]:64s} {t.bytes / GiB:8.2f} GiB  [{t.kind}]\n")
        if verbose:
            w(f"        rule: {t.rule}\n")
    w("\n")
    if p.max_total_num_tokens:
        w(f"  KV pool: {p.max_total_num_tokens:,} tokens"
          + (f" (SWA layers {p.swa_tokens:,})" if p.swa_tokens else "")
          + f", max_running_requests {p.max_running_requests}, "
          f"{p.max_concurrency:.2f} full-length ({r.context_length}-token) requests at once\n")
    head = "starts, then fails under load" if p.verdict == "fails" and p.startup_verdict == "starts" else p.verdict
    w(f"  Verdict: {head}" + (f" ({p.error_kind}, {p.error_phase})" if p.error_kind else "") + "\n")
    if p.error_message:
        w(f"    {p.error_message}\n")
    if p.fix:
        w(f"  Fix: {p.fix}\n")
    for x in p.warnings:
        w(f"  warning: {x}\n")
    if p.ignored_flags:
        w(f"  ignored flags (no memory effect modelled): {' '.join(p.ignored_flags)}\n")
    w("  Predicted log lines:\n")
    for line in p.log_lines:
        w(f"    {line}\n")
    w(f"  ({_standin_note(p)})\n")
