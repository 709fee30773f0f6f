"""The ``--json`` object of ``vramplan plan``: a contract scripts depend on.

Keys named in the plan issue are never renamed or dropped; new keys may be added.
``schema_version`` changes only when a key's meaning changes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..units import GiB

if TYPE_CHECKING:  # pragma: no cover - types only: the planner imports this module lazily (Plan.to_dict)
    from ..plan import Plan, RankPlan, Term

__all__ = ["plan_to_dict", "serving_to_dict", "dumps", "error_to_dict", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def _g(b: int | float | None) -> float | None:
    return None if b is None else round(b / GiB, 4)


def _term(t: Term) -> dict[str, Any]:
    return {"gib": _g(t.bytes), "bytes": t.bytes, "label": t.label, "kind": t.kind, "rule": t.rule,
            "note": t.note or None, "parts_gib": {k: _g(v) for k, v in t.parts} or None}


def _rank(r: RankPlan) -> dict[str, Any]:
    return {
        "name": r.name,
        "pp_rank": r.pp_rank,
        "memory_gib": {t.key: _g(t.bytes) for t in r.terms} | {"requested": _g(r.requested_bytes)},
        "free_at_init_gib": _g(r.free_at_init_bytes),
        "num_blocks": r.num_blocks,
        "bytes_per_block": r.layout.bytes_per_block,
        "kv_groups": [{"kind": g.spec.kind.value, "layers": len(g.layers), "block_size": g.spec.block_size,
                       "page_bytes": g.spec.page_bytes} for g in r.layout.groups],
        "terms": {t.key: _term(t) for t in r.terms},
    }


def _extensible(p: Plan) -> dict[str, Any] | None:
    """vLLM 0.34's reserve-warm-up-commit figures of the logged rank (vramplan/engines/vllm/sizing/extensible.py), or None."""
    r = p.logged_rank
    if r.term("reserved_bound") is None:
        return None
    bpb = r.layout.bytes_per_block or 1
    h = {t.key: t.bytes for t in p.headroom_terms}
    return {
        "reserved_blocks": r.bytes_of("reserved_bound") // bpb,
        "reserved_bound_gib": _g(r.bytes_of("reserved_bound")),
        "warmup_transient_peak_gib": _g(r.bytes_of("warmup_transient_peak")),
        "cudagraph_pool_gib": _g(r.bytes_of("cudagraph_pool")),
        "non_kv_after_warmup_gib": _g(r.bytes_of("non_kv_after_warmup")),
        "margin_gib": _g(r.bytes_of("kv_margin")),
        "kv_measured_gib": _g(r.available_kv_bytes),
        "committed_blocks": p.num_gpu_blocks,
        "committed_gib": _g(r.bytes_of("kv_committed")) if p.num_gpu_blocks else None,
        "util_withheld_gib": _g(r.bytes_of("util_withheld")) if r.term("util_withheld") else None,
        "free_after_warmup_gib": _g(h.get("free_after_warmup")),
    }


def serving_to_dict(s) -> dict[str, Any]:
    """The ``serving`` key of ``plan --json --image/--video``."""
    return {"fits": s.fits, "verdict": s.verdict, "tokens_per_image": s.tokens_per_image,
            "gib": {t.key: round(t.bytes / 2**30, 4) for t in s.terms}}


def error_to_dict(line: str, *, kind: str | None = None, message: str | None = None) -> dict[str, Any]:
    """The object ``--json`` prints for bad input (exit 2) or an internal error (exit 1)."""
    obj: dict[str, Any] = {"error": line}
    if kind:
        obj.update({"verdict": "fails", "error_kind": kind, "error_message": message})
    return obj


def plan_to_dict(p: Plan) -> dict[str, Any]:
    obj = _plan_dict(p)
    if p.serving is not None:
        obj["serving"] = serving_to_dict(p.serving)
    return obj


def _plan_dict(p: Plan) -> dict[str, Any]:
    r = p.logged_rank
    e = p.engine
    return {
        "schema_version": SCHEMA_VERSION,
        "vllm_version": p.vllm_version,
        "engine_name": "vllm",  # the engine's name; "engine" (below) stays the dict of resolved settings
        "engine_version": p.vllm_version,
        "rules_version": ".".join(map(str, p.rules.version)),
        "model": p.model.name,
        "architecture": p.model.architecture,
        "device": {"name": p.device.name, "label": p.device.label, "total_gib": _g(p.device.total_bytes),
                   "count": p.device_count, "platform": p.device.platform, "source": p.device.source},
        "tp": e.tp,
        "pp": e.pp,
        "dp": e.dp,
        "max_model_len": p.max_model_len,
        "block_size": r.layout.block_size or e.block_size,
        "verdict": p.verdict,
        "error_kind": p.error_kind,
        "error_message": p.error_message,
        "error_phase": p.error_phase,
        "memory_gib": {
            "requested": _g(r.requested_bytes),
            "weights": _g(r.bytes_of("weights")),
            "activation_peak": _g(r.bytes_of("activation_peak")),
            "non_torch": _g(r.bytes_of("non_torch")),
            "cudagraph_estimate": _g(r.bytes_of("cudagraph_estimate")),
            "non_kv_total": _g(r.bytes_of("non_kv_total")),
            "kv_cache": _g(r.available_kv_bytes),
            "free_at_init": _g(r.free_at_init_bytes),
            "used_by_others": _g(p.used_by_others_bytes),
        },
        "num_gpu_blocks": p.num_gpu_blocks,
        "kv_cache_tokens": p.kv_cache_tokens,
        "max_concurrency": None if p.max_concurrency is None else round(p.max_concurrency, 4),
        "estimated_max_model_len": p.estimated_max_model_len,
        "fix": p.fix,
        "engine": {
            "max_num_seqs": e.max_num_seqs,
            "max_num_batched_tokens": e.max_num_batched_tokens,
            "gpu_memory_utilization": e.gpu_memory_utilization,
            "dtype": e.model_dtype,
            "kv_cache_dtype": e.kv_cache_dtype,
            "quantization": e.quant.method if e.quant else None,
            "enforce_eager": e.enforce_eager,
            "cudagraph_mode": e.cudagraph_mode,
            "num_cudagraph_sizes": len(e.capture_sizes),
            "model_runner": e.runner,
            "estimate_cudagraphs": e.estimate_cudagraphs,
            "enable_prefix_caching": e.enable_prefix_caching,
            "usage_context": p.args.usage_context,
            "enable_extensible_kv_cache": e.extensible_kv_cache,
        },
        "headroom_gib": {t.key: _g(t.bytes) for t in p.headroom_terms},
        "kv_sizing": "extensible" if e.extensible_kv_cache else "profile",
        "extensible_kv_cache": _extensible(p),
        "rules_stand_in": bool(p.rules.stand_in or p.rules.newer_than_read),
        "host_memory_gib": {t.key: _g(t.bytes) for t in p.host_terms},
        "ranks": [_rank(x) for x in p.ranks],
        "warnings": list(p.warnings),
        "ignored_flags": list(p.ignored_flags),
        "log_lines": list(p.log_lines),
    }


def dumps(p: Plan) -> str:
    return json.dumps(plan_to_dict(p), indent=2)
