"""Reading a vLLM 0.34 log in the extensible KV cache's terms (for ``explain``).

A 0.34 log (era ``v1-v0.34``) prints 'Available KV cache memory' for the *reserved bound* (the profile-based
budget the address range is reserved for), then, after warm-up and CUDA-graph capture, 'Memory after warmup: ...
N KV cache blocks (X GiB) fit within the requested R GiB' and 'Extended KV cache to N blocks (X GiB).'
(vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:measure_kv_cache_blocks, extend_kv_cache). The diagnosis
and the comparison rows below use those figures, not the 0.33 story (KV = requested - non-KV).
"""

from __future__ import annotations

from typing import Any

__all__ = ["extensible_figures", "diagnose_extensible", "compare_rows", "explain_rows", "ERA"]

ERA = "v1-v0.34"
_KEYS = ("free_after_warmup_gib", "committed_before_gib", "kept_transient_gib", "transient_peak_gib",
         "torch_reserve_growth_gib", "kv_after_warmup_blocks", "kv_after_warmup_gib", "torch_memory_limit_gib",
         "kv_committed_gib", "util_withheld_gib")


def extensible_figures(f) -> dict[str, Any]:
    """The 0.34 figures the log printed (the logged rank's first, then any rank's)."""
    out: dict[str, Any] = {}
    ranks = list(f.ranks.values())
    primary = f.ranks.get(f.primary_rank) if f.primary_rank else None
    for r in ([primary] if primary else []) + ranks:
        for k in _KEYS:
            if k not in out and k in (r.extras or {}):
                out[k] = r.extras[k]
    return out


def _r(x) -> str:
    return "?" if x is None else f"{x:.2f}"


def diagnose_extensible(f, diagnosis_cls):
    """Plain words for a 0.34 log, or None when it shows none of the extensible cache's lines."""
    x = extensible_figures(f)
    if f.era != ERA or not x:
        return None
    util = f.gpu_memory_utilization or f.args.get("gpu_memory_utilization")
    blocks = f.num_gpu_blocks or x.get("kv_after_warmup_blocks")
    measured = x.get("kv_after_warmup_gib")
    head = (f"vLLM 0.34 sized the KV cache after warm-up and CUDA-graph capture (the extensible KV cache): the profile "
            f"run only reserved address space for {_r(f.kv_cache_gib)} GiB; after warm-up "
            f"{_r(x.get('free_after_warmup_gib'))} GiB was free, {_r(x.get('kept_transient_gib'))} GiB was kept for "
            f"transient activations plus a margin of max(1 GiB, 0.75 x that), and {blocks or '?'} blocks "
            f"({_r(measured)} GiB) fit within the requested {_r(f.requested_gib)} GiB.")
    from .v033_log import profile_clause

    clause = profile_clause(f)  # the profile run's terms, as 0.33 logs them
    if clause:
        head = head.replace(" (the extensible KV cache): the profile run", f" (the extensible KV cache). Profile run: "
                                                                         f"{clause}. The profile run", 1)
    if x.get("committed_before_gib") is not None:
        head += f" {_r(x['committed_before_gib'])} GiB was already committed to the KV cache before that measure."
    if x.get("kv_committed_gib") is not None and f.num_gpu_blocks:
        head += f" vLLM then extended the KV cache to {f.num_gpu_blocks} blocks ({_r(x['kv_committed_gib'])} GiB)."
    if x.get("torch_memory_limit_gib") is not None:
        head += f" Torch may reserve up to {_r(x['torch_memory_limit_gib'])} GiB."
    if x.get("util_withheld_gib") is not None:
        head += (f" gpu_memory_utilization {util} held {_r(x['util_withheld_gib'])} GiB of free memory out of the "
                 f"KV cache; left unset it defaults to 1.0 under the extensible cache.")
    if f.error_kind is None:
        tokens = (f" That holds {f.kv_cache_tokens:,} tokens ({_r(f.max_concurrency)}x requests of "
                  f"{f.max_concurrency_len or f.args.get('max_model_len', '?'):,} tokens)."
                  if f.kv_cache_tokens and f.max_concurrency else "")
        fix = ("leave --gpu-memory-utilization unset (1.0) unless other programs need the memory it holds back"
               if x.get("util_withheld_gib") else None)
        return diagnosis_cls(summary="The server started. " + head + tokens, fix=fix)
    if f.error_kind == "max_model_len_exceeds_kv_cache":
        est = f.estimated_max_model_len
        return diagnosis_cls(
            summary=head + f" One request of max_model_len needs {_r(f.kv_needed_gib)} GiB, more than what was left "
                    f"after warm-up: the check ran again on the measured cache (kv_cache_planning.py:"
                    f"shrink_kv_cache_configs), after the reserved bound had passed it.",
            fix=(f"--max-model-len {est}" if est else "a smaller --max-model-len") +
                ("; or leave --gpu-memory-utilization unset (1.0)" if util and util < 1.0 else
                 "; or fewer/smaller CUDA-graph capture sizes, or a larger device"))
    if f.error_kind == "no_kv_cache_memory":
        return diagnosis_cls(summary=head + " Nothing was left for the KV cache after warm-up and capture.",
                             fix=("leave --gpu-memory-utilization unset (1.0)" if util and util < 1.0 else
                                  "--enforce-eager or fewer capture sizes, lower --max-num-batched-tokens, or more "
                                  "GPUs (--tensor-parallel-size)"))
    return None


def explain_rows(f) -> list[tuple[str, float | None]]:
    """Extra rows of ``explain``'s table for a 0.34 log."""
    x = extensible_figures(f)
    if not x:
        return []
    return [(label, x.get(k)) for label, k in (
        ("free after warm-up", "free_after_warmup_gib"),
        ("kept for transients", "kept_transient_gib"),
        ("KV cache measured after warm-up", "kv_after_warmup_gib"),
        ("committed to KV before the measure", "committed_before_gib"),
        ("transient peak allocated", "transient_peak_gib"),
        ("torch reservation growth", "torch_reserve_growth_gib"),
        ("KV cache committed (extended)", "kv_committed_gib"),
        ("torch may reserve up to", "torch_memory_limit_gib"),
        ("held back by util", "util_withheld_gib"),
    ) if x.get(k) is not None]


def _extras(f) -> dict[str, Any]:
    from .v033_log import _extras as extras

    return extras(f)


def compare_rows(plan, f) -> list[tuple[str, Any, Any]]:
    """Rows of ``--compare`` for the 0.34 terms (empty when neither side used the extensible cache)."""
    x = extensible_figures(f)
    r = plan.logged_rank
    if r.term("reserved_bound") is None and not x:
        return []
    from ....units import GiB

    bpb = r.layout.bytes_per_block or 1
    h = {t.key: t.bytes for t in plan.headroom_terms}
    return [
        ("free after warm-up (GiB)", h["free_after_warmup"] / GiB if "free_after_warmup" in h else None,
         x.get("free_after_warmup_gib")),
        ("kept for transients (GiB)", r.bytes_of("warmup_transient_peak") / GiB if r.term("warmup_transient_peak")
         else None, x.get("kept_transient_gib")),
        ("KV blocks measured (this rank)", r.num_blocks if r.term("reserved_bound") else None,
         x.get("kv_after_warmup_blocks")),
        # the logged side: 'Committed N of M KV cache blocks' (v0.34.0 extensible_kv_cache.py:commit), M reserved
        ("reserved blocks", r.bytes_of("reserved_bound") // bpb if r.term("reserved_bound") else None,
         _extras(f).get("kv_reserved_blocks")),
    ]
