"""Reading a vLLM 0.33/0.34 log's profile terms and block count (for ``explain``).

vLLM 0.33 changed the profiling summary: 'Total non KV cache memory: N; torch peak memory increase: P; total
consumed (from mem_get_info): C; weights memory: W' (vLLM v0.33.0 vllm/utils/mem_utils.py:MemoryProfilingResult
.__repr__), where C = free before the model was created - free after the profile run (weights + non-torch +
whatever torch still holds) and non-KV = C + the transient peak headroom (torch peak - torch allocated after the
profile, mem_utils.py:memory_profiling). The '--kv-cache-memory' suggestion line restates C and 'peak activation'
= headroom + the applied CUDA-graph estimate (v1/worker/gpu_worker.py:Worker.determine_available_memory).

0.33 and 0.34 log the KV cache in tokens ('GPU KV cache size: N tokens, Maximum concurrency ...',
v1/core/kv_cache_utils.py:update_kv_cache_capacity, N = int(max_concurrency x max_model_len)), not in blocks;
0.34 also logs 'Extended KV cache to N blocks (X GiB)' (v1/worker/extensible_kv_cache.py:extend_kv_cache). The
block count is shown only where it is exact: logged, or derived from the tokens with the plan's block size for
a model with one KV cache group of full attention (or MLA), checked by recomputing vLLM's token and concurrency
figures from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BlockCount", "block_count", "profile_rows", "profile_clause", "consumed_check", "compare_rows", "commit_clause", "incomplete"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockCount:
    blocks: int | None
    """The KV blocks, exact, or None."""
    source: str
    """"logged", "extended" (0.34 'Extended KV cache to N blocks'), "measured" (0.34 'Memory after warmup'),
    "derived" (tokens / the plan's block size), or "none"."""
    why: str
    """How the count was found, or why it is not shown."""

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "source": self.source, "why": self.why}


def _r(x: float | None) -> str:
    return "?" if x is None else f"{x:.2f}"


def block_count(f, plan: Any = None) -> BlockCount:
    """The log's KV block count where it is exact (see the module doc), else None and why."""
    x = {}
    for r in list(f.ranks.values()):
        for k in ("kv_after_warmup_blocks", "kv_committed_gib"):
            if k not in x and k in (r.extras or {}):
                x[k] = r.extras[k]
    if f.num_gpu_blocks:
        if f.era == "v1-v0.34" and x.get("kv_committed_gib") is not None:
            return BlockCount(blocks=f.num_gpu_blocks, source="extended",
                              why=f"logged: 'Extended KV cache to {f.num_gpu_blocks} blocks'")
        return BlockCount(blocks=f.num_gpu_blocks, source="logged", why="logged")
    if x.get("kv_after_warmup_blocks"):
        n = x["kv_after_warmup_blocks"]
        return BlockCount(blocks=n, source="measured", why=f"logged: 'Memory after warmup: ... {n} KV cache blocks'")
    tokens = f.kv_cache_tokens
    if not tokens:
        return BlockCount(blocks=None, source="none", why="the log states no KV cache size")
    if plan is None:
        return BlockCount(blocks=None, source="none",
                          why=f"not logged: this vLLM {f.vllm_version or ''} log states the KV cache in tokens only; "
                              "--compare derives the blocks from the plan's block size".replace("vLLM  log", "vLLM log"))
    layout = plan.logged_rank.layout
    groups = getattr(layout, "groups", ()) or ()
    if len(groups) != 1:
        return BlockCount(blocks=None, source="none",
                          why=f"not logged, and not derivable exactly: the model has {len(groups)} KV cache groups, "
                              f"so its tokens are not blocks x block size")
    spec = groups[0].spec
    kind = getattr(spec.kind, "value", spec.kind)
    if kind not in ("full_attention", "mla") or spec.sliding_window or spec.chunk_size:
        return BlockCount(blocks=None, source="none",
                          why=f"not logged, and not derivable exactly for {kind} layers")
    bs = spec.block_size
    mml = f.max_concurrency_len or f.args.get("max_model_len")
    if not bs or not isinstance(mml, int) or mml <= 0 or tokens % bs:
        return BlockCount(blocks=None, source="none",
                          why=f"not logged, and {tokens:,} tokens are not a whole number of the plan's "
                              f"{bs}-token blocks")
    n = tokens // bs
    per_req = -(-mml // bs)
    conc = n / per_req
    # vLLM's own figures recomputed from n: int(max_concurrency x max_model_len) tokens, '%.2fx' concurrency
    if int(conc * mml) != tokens or (f.max_concurrency is not None and f"{conc:.2f}" != f"{f.max_concurrency:.2f}"):
        return BlockCount(blocks=None, source="none",
                          why=f"not logged, and {tokens:,} tokens / {bs} does not reproduce the logged concurrency")
    return BlockCount(blocks=n, source="derived",
                      why=f"derived: {tokens:,} tokens / {bs} tokens per block (the plan's block size, one KV "
                          f"cache group; reproduces the logged {_r(f.max_concurrency)}x)")


def _headroom(f) -> float | None:
    """0.33's transient peak headroom: the suggestion line's 'peak activation' less the applied graph estimate."""
    pa = f.peak_activation_gib
    if pa is None:
        return None
    est = f.cudagraph_estimate_gib if f.cudagraph_estimate_applied and f.cudagraph_estimate_gib else 0.0
    return round(pa - est, 2)


def profile_rows(f) -> list[tuple[str, float | None]]:
    """Extra rows of ``explain``'s table for the 0.33 profile terms (empty when the log has none of them)."""
    rows = []
    if f.total_consumed_gib is not None:
        rows.append(("total consumed (weights + non-torch, mem_get_info)", f.total_consumed_gib))
    h = _headroom(f)
    if h is not None and f.total_consumed_gib is not None:
        rows.append(("transient peak headroom", h))
    if f.free_after_profile_gib is not None:
        rows.append(("free after profiling", f.free_after_profile_gib))
    x = _extras(f)
    if x.get("kv_commit_physical_gib") is not None and x.get("kv_committed_gib") is None:
        rows.append((f"KV cache committed ({x.get('kv_commit_blocks'):,} of {x.get('kv_reserved_blocks'):,} blocks)",
                     x["kv_commit_physical_gib"]))
    return rows


def consumed_check(f) -> tuple[str, bool | None, str] | None:
    """vLLM 0.33's non-KV = total consumed + transient headroom, re-checked on the logged figures."""
    c, h, nk = f.total_consumed_gib, _headroom(f), f.non_kv_total_gib
    if None in (c, h, nk):
        return None
    s = c + h
    return ("non-KV = total consumed + transient peak headroom", abs(s - nk) <= 0.03,
            f"{_r(c)} + {_r(h)} = {_r(s)} GiB; logged {_r(nk)}")


def profile_clause(f) -> str | None:
    """The 0.33 profile terms in words, or None when the log has no 'total consumed' figure."""
    c, w = f.total_consumed_gib, f.weights_gib if f.weights_gib is not None else f.profile_weights_gib
    if c is None:
        return None
    parts = [f"weights {_r(w)} GiB" if w is not None else None,
             f"total consumed {_r(c)} GiB (weights + non-torch memory, measured with mem_get_info"
             + (f": {_r(c - w)} GiB beyond the weights)" if w is not None else ")")]
    peak = f.torch_peak_increase_gib
    if peak is not None:
        parts.append(f"profile-run torch peak increase {_r(peak)} GiB")
    h = _headroom(f)
    if f.non_kv_total_gib is not None:
        parts.append(f"non-KV total {_r(f.non_kv_total_gib)} GiB"
                     + (f" (total consumed + {_r(h)} GiB of transient peak headroom)" if h is not None else ""))
    if f.cudagraph_estimate_gib and f.cudagraph_estimate_applied:
        parts.append(f"CUDA-graph estimate {_r(f.cudagraph_estimate_gib)} GiB taken off the budget")
    return "; ".join(p for p in parts if p)


def compare_rows(plan, f) -> list[tuple[str, Any, Any]]:
    """``--compare`` rows for the 0.33 profile term and the 0.34 committed/withheld terms the log states."""
    from ....units import GiB

    r = plan.logged_rank
    rows: list[tuple[str, Any, Any]] = []
    if f.total_consumed_gib is not None:
        rows.append(("total consumed (GiB)", (r.bytes_of("weights") + r.bytes_of("non_torch")) / GiB,
                     f.total_consumed_gib))
    x = {}
    for rk in [f.ranks.get(f.primary_rank)] + list(f.ranks.values()):
        for k, v in ((rk.extras or {}) if rk is not None else {}).items():
            x.setdefault(k, v)
    if r.term("reserved_bound") is not None or "kv_committed_gib" in x:
        h = {t.key: t.bytes for t in plan.headroom_terms}
        rows += [
            ("KV cache committed (GiB)", r.bytes_of("kv_committed") / GiB if r.term("kv_committed") else None,
             x.get("kv_committed_gib")),
            ("held back by util (GiB)", r.bytes_of("util_withheld") / GiB if r.term("util_withheld") else None,
             x.get("util_withheld_gib")),
            ("torch may reserve up to (GiB)", h["torch_memory_limit"] / GiB if "torch_memory_limit" in h else None,
             x.get("torch_memory_limit_gib")),
        ]
    return [row for row in rows if row[1] is not None or row[2] is not None]


def _extras(f) -> dict[str, Any]:
    x: dict[str, Any] = {}
    for rk in [f.ranks.get(f.primary_rank) if f.primary_rank else None] + list(f.ranks.values()):
        for k, v in ((rk.extras or {}) if rk is not None else {}).items():
            x.setdefault(k, v)
    return x


def commit_clause(f) -> str | None:
    """0.34's last 'Committed N of M KV cache blocks (X GiB physical)' in words (v0.34.0
    v1/worker/extensible_kv_cache.py:ExtensibleKVCache.commit), for a startup that failed after it; else None."""
    x = _extras(f)
    n, m = x.get("kv_commit_blocks"), x.get("kv_reserved_blocks")
    if n is None or m is None:
        return None
    gib = x.get("kv_commit_physical_gib")
    return (f"the extensible KV cache had committed {n:,} of its {m:,} reserved blocks"
            + (f" ({_r(gib)} GiB physical)" if gib is not None else ""))


def incomplete(f) -> bool:
    """A 0.33/0.34 log that ends before the KV cache was sized, with no failure in it: 0.33 and 0.34 log 'GPU KV
    cache size: N tokens' once the cache is built (kv_cache_utils.py:update_kv_cache_capacity)."""
    return (f.era in ("v1-v0.33", "v1-v0.34") and f.error_kind is None and not f.kv_cache_tokens
            and not f.num_gpu_blocks)
