"""``vramplan explain``: read a real vLLM log, show where every GiB went, diagnose, compare with the plan.

The breakdown, the budget equation and the diagnosis use only what the log says (vLLM's own
arithmetic re-applied to its own figures), so they work for any model. ``--compare`` rebuilds
the inputs from the log (model, flags, device, version), runs the planner and puts predicted
next to logged, term by term.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .units import GiB

__all__ = ["Diagnosis", "Explanation", "explanation", "diagnose", "budget_checks", "facts_to_dict", "compare",
           "inputs_from_facts", "activation_peak_gib", "release_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    summary: str
    """One paragraph in plain words."""
    fix: str | None
    """The smallest change that fixes the failure (None when the startup succeeded)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """What ``vramplan explain`` tells about one log."""

    facts: Any
    """The log's figures (``inputs.vllm_log.LogFacts``)."""
    diagnosis: Diagnosis
    checks: tuple[tuple[str, bool | None, str], ...] = ()
    """vLLM's budget equations re-checked on the logged figures (:func:`budget_checks`)."""
    activation_peak_gib: float | None = None
    """The profile run's activation peak, logged or derived (:func:`activation_peak_gib`)."""
    compared: bool = False
    """Whether a comparison with the plan was asked for."""
    compare_rows: tuple[tuple[str, Any, Any], ...] | None = None
    """(term, predicted, logged) per row, when the comparison could be made."""
    compare_note: str | None = None
    """Why the comparison could not be made (one line)."""
    plan: Any = None
    """The plan the comparison used."""
    extensible: dict[str, Any] | None = None
    """vLLM 0.34's post-warm-up figures read from the log (``sizing/extensible_log.extensible_figures``)."""
    extensible_rows: tuple[tuple[str, Any], ...] = ()
    """(label, GiB) rows for the breakdown table after warm-up and capture (vLLM 0.34 logs)."""
    release: Any = None
    """When the log states no version: the release inferred from its lines (``engines/vllm/log/release.py``
    ``ReleaseInference``), even when ``--vllm-version`` overrides it for the comparison; None otherwise."""
    release_source: str | None = None
    """Where the release the comparison used came from: "log" (a version line), "user" (``--vllm-version``),
    "inferred" (``release``); None when no comparison was asked for or it could not be made."""
    compared_version: str | None = None
    """The release the comparison was planned at (its rule set is ``plan.rules``)."""
    profile_rows: tuple[tuple[str, Any], ...] = ()
    """(label, GiB) rows for the 0.33/0.34 profile terms (total consumed, headroom, free after profiling, ...)."""
    incomplete: bool = False
    """A 0.33/0.34 log that ends before the KV cache was sized, with no failure in it (verdict null)."""
    kv_blocks: Any = None
    """The KV block count where exact (logged, 0.34's 'Extended KV cache to N blocks', or 0.33's tokens / the
    plan's block size), else why not (``engines/vllm/sizing/v033_log.py:BlockCount``)."""
    range_check: tuple[dict[str, Any], ...] = ()
    """When the release was inferred and its range holds several rule sets: the log planned with each of the
    others (:func:`range_check`), so the report can say whether they agree."""

    def __repr__(self) -> str:
        f = self.facts
        state = f"fails ({f.error_kind})" if f.error_kind else "starts"
        return f"Explanation({f.model or 'model not logged'}, vLLM {f.vllm_version or '?'}, {state})"

    def to_dict(self) -> dict[str, Any]:
        """The ``vramplan explain --json`` object (``render/explain.py``)."""
        from .render.explain import explanation_to_dict

        return explanation_to_dict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2, default=str)


def activation_peak_gib(f) -> float | None:
    """The profile run's activation peak: logged, or for vLLM 0.6.3-0.6.4's one-line format derived from
    it as ``peak_torch_memory - weights`` (vLLM v0.6.4 vllm/worker/worker.py:Worker.determine_num_available_blocks
    logs the torch peak, weights included; planner_v0 mirrors the same split)."""
    if f.torch_peak_increase_gib is not None:
        return f.torch_peak_increase_gib
    rank = f.ranks.get(f.primary_rank) if f.primary_rank else None
    peak = (rank.extras if rank is not None else {}).get("peak_torch_memory_gib")
    weights = f.weights_gib
    if peak is None or weights is None:
        return None
    return round(peak - weights, 2)


def _r(x: float | None, nd: int = 2) -> str:
    return "?" if x is None else f"{x:.{nd}f}"


def budget_checks(f) -> list[tuple[str, bool | None, str]]:
    """vLLM's budget equations re-checked on the logged figures: (name, holds?, the arithmetic).

    - requested = util x total (vLLM v0.26.0 vllm/v1/worker/utils.py:request_memory, ceil of bytes);
    - non-KV = weights + torch peak increase + non-torch increase (v0.19-v0.26 determine_available_memory);
    - KV = requested - non-KV (- the applied CUDA-graph estimate).
    Figures are printed with 2 decimals, so each side may be off by rounding (<= 0.02 GiB per term).
    """
    out: list[tuple[str, bool | None, str]] = []
    util, total, req = f.gpu_memory_utilization, f.total_gib or f.total_memory_gib, f.requested_gib
    if util and total and req:
        calc = util * total
        out.append(("requested = util x total", abs(calc - req) <= 0.011 + total * 0.0001,
                    f"{util} x {_r(total)} = {_r(calc)} GiB; logged {_r(req)}"))
        if f.initial_free_gib:
            out.append(("requested is not util x initial free", None,
                        f"{util} x {_r(f.initial_free_gib)} free = {_r(util * f.initial_free_gib)} GiB would be "
                        f"{_r(req - util * f.initial_free_gib)} GiB less: vLLM multiplies the total"))
    w, a, n, nk = f.weights_gib, activation_peak_gib(f), f.non_torch_gib, f.non_kv_total_gib
    if f.profile_weights_gib is not None:
        w = f.profile_weights_gib
    if None not in (w, a, n, nk):
        s = w + a + n
        out.append(("non-KV = weights + torch peak + non-torch", abs(s - nk) <= 0.03,
                    f"{_r(w)} + {_r(a)} + {_r(n)} = {_r(s)} GiB; logged {_r(nk)}"))
    kv = f.kv_cache_gib
    if None not in (kv, nk, req):
        est = f.cudagraph_estimate_gib if f.cudagraph_estimate_applied else 0.0
        s = kv + nk + (est or 0.0)
        label = "KV + non-KV" + (" + CUDA-graph estimate" if est else "") + " = requested"
        out.append((label, abs(s - req) <= 0.03, f"{_r(kv)} + {_r(nk)}" + (f" + {_r(est)}" if est else "")
                    + f" = {_r(s)} GiB; requested {_r(req)}"))
    from .engines.vllm.sizing.v033_log import consumed_check

    c033 = consumed_check(f)  # vLLM 0.33/0.34: non-KV = total consumed + transient headroom
    if c033 is not None:
        out.append(c033)
    return out


def diagnose(f) -> Diagnosis:
    """Plain words about what happened, and the smallest change, from the logged figures alone."""
    d = _diagnose(f)
    if f.error_kind and f.error_kind != "out_of_memory" and "total consumed" not in d.summary:
        from .engines.vllm.sizing.v033_log import profile_clause

        clause = profile_clause(f)  # vLLM 0.33/0.34: the profile run's terms behind a refusal
        if clause:
            return Diagnosis(summary=f"{d.summary} Profile run: {clause}.", fix=d.fix)
    return d


def _diagnose(f) -> Diagnosis:
    from .engines.vllm.sizing.extensible_log import diagnose_extensible

    d034 = diagnose_extensible(f, Diagnosis)  # vLLM 0.34's extensible KV cache (None for other logs)
    if d034 is not None:
        return d034
    total = f.total_gib or f.total_memory_gib
    util = f.gpu_memory_utilization or f.args.get("gpu_memory_utilization")
    kind = f.error_kind
    from .engines.vllm.sizing.v033_log import commit_clause, incomplete, profile_clause

    if incomplete(f):  # vLLM 0.33/0.34: the log ends before the KV cache was sized, and states no failure
        known = f"; the last KV budget it logged was {_r(f.kv_cache_gib)} GiB" if f.kv_cache_gib is not None else ""
        cc = commit_clause(f)
        return Diagnosis(summary=f"The log ends before the startup finished: it has no 'GPU KV cache size' line and no "
                                 f"failure (cut short, or the process was stopped){known}"
                                 + (f"; {cc}" if cc else "") + ". Nothing here says the server started."
                                 + (f" Profile run: {profile_clause(f)}." if profile_clause(f) else ""), fix=None)
    if kind is None:
        parts = []
        clause = profile_clause(f)  # vLLM 0.33: 'total consumed (from mem_get_info)' instead of non-torch
        if clause is not None:
            parts.append(clause)
        elif f.weights_gib is not None:
            parts.append(f"weights {_r(f.weights_gib)} GiB")
        if clause is None and activation_peak_gib(f) is not None:
            parts.append(f"profile-run activation peak {_r(activation_peak_gib(f))} GiB")
        if f.non_torch_gib is not None:
            parts.append(f"non-torch {_r(f.non_torch_gib)} GiB")
        if f.kv_cache_gib is not None:
            parts.append(f"and the KV cache got the rest of the budget: {_r(f.kv_cache_gib)} GiB")
        where = ("; ".join(parts)) if parts else "the log holds no memory breakdown"
        budget = (f"vLLM reserved util x total = {util} x {_r(total)} GiB" if util and total else
                  "vLLM reserved its gpu_memory_utilization share of the device")
        tokens = (f" That holds {f.kv_cache_tokens:,} tokens ({_r(f.max_concurrency)}x requests of "
                  f"{f.max_concurrency_len or f.args.get('max_model_len', '?'):,} tokens)."
                  if f.kv_cache_tokens and f.max_concurrency else "")
        graphs = (f" CUDA graphs took {_r(f.cudagraph_actual_gib)} GiB after the KV cache."
                  if f.cudagraph_actual_gib else "")
        return Diagnosis(summary=f"The server started. {budget}: {where}.{tokens}{graphs} vLLM fills its whole "
                                 f"budget with KV cache, so the process uses about that share of the device "
                                 f"however small the model is.", fix=None)
    msg = f.error_message or ""
    if kind == "free_memory_below_requested":
        free = _first_float_pair(msg)
        if free:
            fr, tot = free
            cap = math.floor(fr / tot * 100) / 100
            return Diagnosis(
                summary=f"vLLM refused to start: only {fr} of {tot} GiB was free when it started, but "
                        f"gpu_memory_utilization {util} asks for {util} x {tot} = {_r((util or 0) * tot)} GiB. The "
                        f"fraction is of the device's total, not of what is free, so other programs' memory counts "
                        f"against it.",
                fix=f"--gpu-memory-utilization {cap:.2f} or lower (free/total), or free memory held by other programs")
        return Diagnosis(summary="vLLM refused to start: less memory was free than util x total.",
                         fix="lower --gpu-memory-utilization below free/total")
    if kind == "max_model_len_exceeds_kv_cache":
        est = f.estimated_max_model_len
        need, avail = f.kv_needed_gib, f.kv_cache_gib
        mml = f.args.get("max_model_len") or f.max_concurrency_len
        if est is None and f.kv_cache_tokens:
            # older logs state the cache's capacity in tokens instead ("the maximum number of tokens that can be
            # stored in KV cache (N)"): one request of up to N tokens fits
            est = f.kv_cache_tokens
        if need is None and avail is not None and f.kv_cache_tokens and isinstance(mml, int):
            need = avail / f.kv_cache_tokens * mml  # the cache's bytes per token x max_model_len
        more = (need - avail) if need is not None and avail is not None else None
        util_fix = (f"; or raise --gpu-memory-utilization by {more / total:.2f} (to {util + more / total:.2f})"
                    if more is not None and total and util else "")
        return Diagnosis(
            summary=f"The KV cache ({_r(avail)} GiB) cannot hold one request of max_model_len "
                    f"({mml or '?'}) tokens, which needs {_r(need)} GiB.",
            fix=(f"--max-model-len {est}" if est else "a smaller --max-model-len") + util_fix)
    if kind == "no_kv_cache_memory":
        if f.error_subkind == "mamba_blocks_below_max_num_seqs":
            nums = [int(x) for x in __import__("re").findall(r"\((\d+)\)", msg)[:2]]
            blocks = nums[1] if len(nums) > 1 else None
            return Diagnosis(summary="Each running sequence of a hybrid (Mamba/GDN) model needs one recurrent-state "
                                     "block, and the KV budget holds fewer blocks than max_num_seqs.",
                             fix=f"--max-num-seqs {blocks}" if blocks else "lower --max-num-seqs")
        nk = f.non_kv_total_gib
        fix = None
        if nk is not None and total:
            fix = (f"--gpu-memory-utilization above {math.ceil((nk / total) * 100) / 100:.2f} (non-KV {_r(nk)} GiB "
                   f"of {_r(total)}), plus what one request's KV cache needs")
        return Diagnosis(summary=f"Nothing was left for the KV cache: weights, activation and overheads "
                                 f"({_r(nk)} GiB) used the whole requested budget ({_r(f.requested_gib)} GiB).",
                         fix=fix or "raise --gpu-memory-utilization, or shrink the model (TP, quantization)")
    if kind == "out_of_memory":
        phase = f.error_phase or "startup"
        fixes = {
            "weight_loading": "more GPUs (--tensor-parallel-size), a quantized checkpoint, or free memory first",
            "profiling": "lower --max-num-batched-tokens (and for multimodal models --limit-mm-per-prompt / "
                         "max_pixels) so the profile run's peak fits",
            "kv_allocation": "lower --gpu-memory-utilization: the KV cache was sized for memory that was gone",
            "graph_capture": "lower --gpu-memory-utilization by the graph pool size, fewer capture sizes "
                             "(-cc.max_cudagraph_capture_size) or --enforce-eager",
            "warmup": "lower --max-num-seqs or --gpu-memory-utilization (the warm-up runs after the KV cache)",
            "serving": "lower --gpu-memory-utilization to leave room for what serving allocates beyond the KV cache "
                       "(multimodal encoder outputs, large batches), or --limit-mm-per-prompt / max_pixels",
        }
        cc = commit_clause(f)  # vLLM 0.34: how much of the KV cache was committed when it failed
        return Diagnosis(summary=f"The device ran out of memory during {phase.replace('_', ' ')}"
                                 + (f", after {cc}" if cc else "") + f": {msg[:200]}",
                         fix=fixes.get(phase, "lower --gpu-memory-utilization"))
    return Diagnosis(summary=f"The startup failed ({kind}): {msg[:240]}", fix=None)


def _first_float_pair(msg: str) -> tuple[float, float] | None:
    import re

    m = re.search(r"\((\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) GiB\)", msg)
    return (float(m.group(1)), float(m.group(2))) if m else None


def facts_to_dict(f, diag: Diagnosis) -> dict[str, Any]:
    """The ``--json`` object: the plan's keys (null where the log is silent) plus log-only fields."""
    from .render.explain import facts_dict

    from .engines.vllm.sizing.extensible_log import extensible_figures

    from .engines.vllm.sizing.v033_log import incomplete

    return facts_dict(f, diag, budget_checks(f), activation_peak_gib(f), extensible=extensible_figures(f) or None,
                      incomplete=incomplete(f))


def explanation(f, *, compared: bool = False, compare_rows=None, compare_note: str | None = None,
                plan: Any = None, release: Any = None, release_source: str | None = None,
                compared_version: str | None = None, range_check: tuple = ()) -> Explanation:
    """An :class:`Explanation` of the facts read from a log. ``release`` defaults to the inference from the
    log's lines when it states no version."""
    from .engines.vllm.sizing.extensible_log import explain_rows, extensible_figures
    from .engines.vllm.sizing.v033_log import block_count, incomplete, profile_rows

    if release is None and f.vllm_version is None:
        from .engines.vllm.log.release import infer_release

        release = infer_release(f, platform=plan.device.platform if plan is not None else None)
    return Explanation(facts=f, diagnosis=diagnose(f), checks=tuple(budget_checks(f)),
                       activation_peak_gib=activation_peak_gib(f), compared=compared,
                       compare_rows=tuple(compare_rows) if compare_rows else None, compare_note=compare_note,
                       plan=plan, extensible=extensible_figures(f) or None, extensible_rows=tuple(explain_rows(f)),
                       release=release, release_source=release_source, compared_version=compared_version,
                       range_check=tuple(range_check), kv_blocks=block_count(f, plan),
                       profile_rows=tuple(profile_rows(f)), incomplete=incomplete(f))


def _extensible_json(f) -> dict | None:
    from .engines.vllm.sizing.extensible_log import extensible_figures

    return extensible_figures(f) or None


# ----- compare ---------------------------------------------------------------------------------


def _device_from_total(total_gib: float | None, platform: str | None):
    from .inputs.devices import DEVICES, custom_device

    if total_gib is None:
        return None
    best = min(DEVICES.values(), key=lambda d: abs(d.total_gib - total_gib))
    if abs(best.total_gib - total_gib) <= 0.1 and (platform is None or best.platform == platform):
        same = [d for d in DEVICES.values() if d.total_bytes == best.total_bytes and d.platform == best.platform]
        if len(same) > 1:
            # several catalog devices report this total (the 64 GB Ascend 910B1/B2/B3): the log cannot tell them
            # apart, and the plan does not depend on which
            from dataclasses import replace

            return replace(best, label=" / ".join(d.label for d in same) + " (same total)")
        return best
    return custom_device(total_gib, platform=platform or "cuda")


def release_for(f, *, platform: str | None = None, vllm_version: str | None = None):
    """(version, source, inference) for planning the startup a log describes: the user's ``vllm_version``
    (source "user"), else the log's version line ("log"), else the release inferred from the log's lines
    ("inferred", ``engines/vllm/log/release.py:infer_release``). ``inference`` is the inference whenever the log
    states no version (also when the user's version overrides it), else None."""
    from .engines.vllm.log.release import infer_release

    inference = infer_release(f, platform=platform) if f.vllm_version is None else None
    if vllm_version:
        from .engines.vllm.rules.versions import parse_version

        parse_version(vllm_version)  # a malformed --vllm-version is the user's one-line error
        return str(vllm_version), "user", inference
    if f.vllm_version is not None:
        return f.vllm_version, "log", None
    return inference.version, "inferred", inference


def inputs_from_facts(f, *, model: str | None = None, device: str | None = None, vllm_version: str | None = None):
    """(model id, EngineArgs, device, version) rebuilt from a log, or an InputError saying what is missing.
    The version is :func:`release_for`'s: ``vllm_version``, the log's, or inferred from the log's lines."""
    from .resolve import resolve_device
    from .engines.vllm.flags import EngineArgs
    from .inputs.model_source import catalog_ids

    name = model or f.model
    if not name:
        raise InputError("the log does not name its model", hint="pass --model ID (a catalog id or a local folder)")
    if not (os.path.isdir(name) or name in catalog_ids()):
        base = "/".join(name.rstrip("/").split("/")[-2:])
        short = name.rstrip("/").split("/")[-1].lower()
        hit = [c for c in catalog_ids() if c.lower() == base.lower() or c.split("/")[1].lower() == short]
        if not hit:
            raise InputError(f"the model {name!r} is not in the catalog and its config is not available offline",
                             hint="pass --model with a catalog id or a local folder holding config.json")
        name = hit[0]
    keys = {"tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len", "max_num_seqs",
            "max_num_batched_tokens", "gpu_memory_utilization", "kv_cache_dtype", "enforce_eager", "block_size",
            "enable_prefix_caching", "quantization", "dtype", "limit_mm_per_prompt", "mm_processor_kwargs",
            "kv_cache_memory_bytes", "num_gpu_blocks_override", "enable_chunked_prefill", "enable_extensible_kv_cache"}
    kw = {k: v for k, v in f.args.items() if k in keys and v is not None}
    if kw.get("dtype") in (None, "auto"):
        kw.pop("dtype", None)
    if "gpu_memory_utilization" not in kw and f.gpu_memory_utilization:
        kw["gpu_memory_utilization"] = f.gpu_memory_utilization
    env = tuple(sorted((k, str(v)) for k, v in f.env.items()
                       if k.startswith(("VLLM_", "PYTORCH_", "NCCL_NVLS", "TORCH_SYMM_MEM"))))
    usage = "llm" if f.args.get("usage_context") == "llm" else "serve"
    args = EngineArgs(model=name, env=env, usage_context=usage, **kw)
    dev = resolve_device(device) if device else _device_from_total(f.total_gib or f.total_memory_gib, f.platform)
    if dev is None:
        raise InputError("the log does not say the device's total memory", hint="pass --device NAME")
    # a log without its version line: the release its lines point to (the one-line 'Memory profiling results' of
    # 0.6.3-0.6.4, vllm-ascend's NPU worker, the 0.27 profiling summary, 0.34's extensible KV cache, ...)
    version = release_for(f, platform=dev.platform, vllm_version=vllm_version)[0]
    return name, args, dev, version


def _shown(v: Any) -> Any:
    """A compared figure as the report shows it (GiB to 2 decimals), so rule sets that agree to the print agree."""
    return round(v, 2) if isinstance(v, float) else v


def range_check(f, inference, chosen_rows, *, model: str | None = None, device: str | None = None,
                chosen_label: str | None = None) -> list[dict[str, Any]]:
    """The log compared with each other rule set of an inferred release range (``inference.rule_sets``): for each,
    its label, the release planned and the rows whose predicted figure differs from the chosen comparison's
    (``{term: [chosen, this]}``; empty when the rule set plans the log alike). A rule set that cannot plan the
    log says why."""
    out: list[dict[str, Any]] = []
    chosen = {t: _shown(p) for t, p, _ in chosen_rows}
    for label, version in getattr(inference, "rule_sets", ()):
        if label == chosen_label:
            continue
        try:
            _, rows = compare(f, model=model, device=device, vllm_version=version)
        except InputError as exc:
            out.append({"rules": label, "version": version, "same": None, "differs": {}, "note": exc.one_line()})
            continue
        diff = {t: [chosen.get(t), _shown(p)] for t, p, _ in rows if chosen.get(t) != _shown(p)}
        out.append({"rules": label, "version": version, "same": not diff, "differs": diff})
    return out


def compare(f, *, model: str | None = None, device: str | None = None,
            vllm_version: str | None = None) -> tuple[Any, list[tuple[str, Any, Any]]]:
    """Plan the startup the log describes; rows of (term, predicted, logged). ``vllm_version`` overrides the
    release (the log's version line, else the one inferred from its lines)."""
    from .resolve import load_model
    from .engines.vllm.planner import build_plan
    from .engines.vllm.rules.versions import for_version

    name, args, dev, version = inputs_from_facts(f, model=model, device=device, vllm_version=vllm_version)
    rules = for_version(version, allow_older=True, platform=dev.platform)
    desc = load_model(name)
    p = build_plan(desc, args, dev, rules, used_by_others_bytes=0)
    if f.initial_free_gib is not None:
        # what the log's free memory lacks against the plan's own (its CUDA context, NCCL, ... for this device, TP
        # and release) is memory held by others: planned again with it, the plan's free memory is the log's
        others = int(p.logged_rank.free_at_init_bytes - f.initial_free_gib * GiB)
        if others > 0:
            p = build_plan(desc, args, dev, rules, used_by_others_bytes=others)
    r = p.logged_rank
    rows = [
        ("requested (GiB)", r.requested_bytes / GiB, f.requested_gib),
        ("weights (GiB)", r.bytes_of("weights") / GiB, f.weights_gib),
        ("torch peak increase (GiB)", r.bytes_of("activation_peak") / GiB, activation_peak_gib(f)),
        ("non-torch increase (GiB)", r.bytes_of("non_torch") / GiB, f.non_torch_gib),
        ("CUDA-graph estimate (GiB)", r.bytes_of("cudagraph_estimate") / GiB, f.cudagraph_estimate_gib),
        ("non-KV total (GiB)", r.bytes_of("non_kv_total") / GiB, f.non_kv_total_gib),
        ("KV cache (GiB)", (r.requested_bytes - r.bytes_of("non_kv_total") if r.term("reserved_bound") is not None
                            else r.available_kv_bytes) / GiB, f.kv_cache_gib),
        ("GPU blocks", p.num_gpu_blocks, f.num_gpu_blocks),
        ("KV cache tokens", p.kv_cache_tokens, f.kv_cache_tokens),
        ("max concurrency", p.max_concurrency, f.max_concurrency),
        ("verdict", p.verdict, "fails" if f.error_kind else "starts"),
        ("error kind", p.error_kind, f.error_kind),
    ]
    from .engines.vllm.sizing.extensible_log import compare_rows

    rows[-2:-2] = compare_rows(p, f)  # vLLM 0.34: the post-warm-up figures
    from .engines.vllm.sizing.v033_log import compare_rows as compare_rows_033

    rows[-2:-2] = compare_rows_033(p, f)  # vLLM 0.33/0.34: total consumed; 0.34: committed, withheld, torch limit
    from .engines.vllm.sizing.v033_log import block_count

    kb = block_count(f, p)
    if kb.source == "derived":  # vLLM 0.33: the log's tokens / the plan's block size, where exact
        i = next(i for i, row in enumerate(rows) if row[0] == "GPU blocks")
        rows.insert(i + 1, ("GPU blocks (logged tokens / block size)", p.num_gpu_blocks, kb.blocks))
    return p, rows
