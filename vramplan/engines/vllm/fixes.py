"""The smallest change that makes a failing plan start (used by ``plan`` and ``explain``).

Searches with the planner itself (never its own arithmetic): each candidate is a new
:class:`EngineArgs` planned again, and a fix is offered only if its plan starts.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ...errors import InputError
from .flags import EngineArgs
from .planner import Plan, build_plan
from ...units import GiB
from ...rules.allocator import expandable_segments

__all__ = ["smallest_fix", "attach_fix", "largest_util_that_passes_check"]


class _Refused:
    """A candidate that vLLM refuses outright (an :class:`InputError` when planned): never a fix."""

    starts = False
    error_kind = "invalid_config"
    estimated_max_model_len = None

    def __init__(self, engine) -> None:
        self.engine = engine


def _replan(plan: Plan, args: EngineArgs) -> Plan:
    try:
        return build_plan(plan.model, args, plan.device, plan.rules, used_by_others_bytes=plan.used_by_others_bytes)
    except InputError:  # e.g. a smaller --max-num-batched-tokens below max_model_len on vLLM 0.6
        return _Refused(plan.engine)  # type: ignore[return-value]


def largest_util_that_passes_check(plan: Plan) -> float:
    """The largest util (2 decimals) whose ``ceil(total x util)`` fits the free memory at startup."""
    if plan.engine.extensible_kv_cache:  # vLLM 0.34: request_memory refuses nothing, util goes up to 1.0
        return 1.0
    free = plan.ranks[0].free_at_init_bytes
    total = plan.device.total_bytes
    util = math.floor(free / total * 100) / 100
    while util > 0 and math.ceil(total * util) > free:
        util = round(util - 0.01, 2)
    return max(util, 0.0)


def _util_that_starts(plan: Plan, lo: float, hi: float) -> float | None:
    """Smallest util in [lo, hi] (0.01 steps) whose plan starts (starting is monotone in util here)."""
    steps = [round(lo + i / 100, 2) for i in range(int(round((hi - lo) * 100)) + 1)]
    if not steps or not _replan(plan, replace(plan.args, gpu_memory_utilization=steps[-1])).starts:
        return None
    a, b = 0, len(steps) - 1
    while a < b:
        m = (a + b) // 2
        if _replan(plan, replace(plan.args, gpu_memory_utilization=steps[m])).starts:
            b = m
        else:
            a = m + 1
    return steps[a]


def _largest_util_that_starts(plan: Plan, cap: float) -> float | None:
    """Scanning down from ``cap``: a higher util can fail after the KV cache (no room for CUDA graphs
    and the warm-up outside the budget), so starting is not monotone near the top."""
    u = cap
    while u >= 0.05:
        if _replan(plan, replace(plan.args, gpu_memory_utilization=u)).starts:
            return u
        u = round(u - 0.01, 2)
    return None


def smallest_fix(plan: Plan) -> str | None:
    """One sentence naming the flag change(s) that make this plan start, or None."""
    if plan.starts:
        return None
    util = plan.engine.gpu_memory_utilization
    cap = largest_util_that_passes_check(plan)
    kind = plan.error_kind
    if kind == "free_memory_below_requested":
        free_gib = plan.ranks[0].free_at_init_bytes / GiB
        head = (f"only {free_gib:.2f} GiB is free at startup, so --gpu-memory-utilization can be at most {cap:.2f}")
        if cap <= 0:
            return head + "; free memory on the device first"
        best = _largest_util_that_starts(plan, cap)
        if best is not None:
            lower = _util_that_starts(plan, 0.01, best)
            return f"{head}: use --gpu-memory-utilization {best:.2f}" + (
                f" (it starts from {lower:.2f})" if lower is not None and lower < best else "")
        fixed = _fix_capacity(plan, replace(plan.args, gpu_memory_utilization=cap))
        return f"{head}; at {cap:.2f} it still needs more: {fixed}" if fixed else head + ", and the model does not fit below it"
    if kind == "no_kv_cache_memory" and "Mamba cache blocks" in (plan.error_message or ""):
        mamba = _fix_mamba_blocks(plan)
        if mamba is not None:
            return mamba
    if kind in ("no_kv_cache_memory", "max_model_len_exceeds_kv_cache"):
        up = _util_that_starts(plan, round(util + 0.01, 2), cap) if cap > util else None
        if up is not None:
            if plan.rules.non_kv_formula == "absolute_peak":  # no startup check: only the device bounds util
                return f"raise --gpu-memory-utilization to {up:.2f}"
            return f"raise --gpu-memory-utilization to {up:.2f} (the most free memory allows is {cap:.2f})"
        fixed = _fix_capacity(plan, plan.args)
        return fixed
    if kind == "out_of_memory" and plan.error_phase == "weight_loading":
        return _fix_weights(plan)
    if kind == "out_of_memory" and plan.error_phase == "warmup":
        if plan.engine.extensible_kv_cache:  # 0.34 sizes the cache after the warm-up: util does not help
            return _fix_warmup_seqs(plan)
        seqs = _fix_warmup_seqs(plan, why=": the warm-up runs that many dummy requests x vocab")
        best = _largest_util_that_starts(plan, round(util - 0.01, 2))
        if best is None:
            return seqs
        return (f"lower --gpu-memory-utilization to {best:.2f} so CUDA graphs and the warm-up fit after the KV cache"
                + (f"; or {seqs}" if seqs else "")
                + ("" if expandable_segments(plan.args.env) else
                   "; PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True leaves less memory stranded in the allocator"))
    if kind == "out_of_memory":
        best = _largest_util_that_starts(plan, round(util - 0.01, 2))
        if best is not None and plan.error_phase == "kv_allocation":
            return (f"lower --gpu-memory-utilization to {best:.2f} so the doubled KV allocation fits "
                    f"(or upgrade to vllm-ascend 0.18, which shares one buffer)")
        if best is not None:
            return (f"lower --gpu-memory-utilization to {best:.2f} so CUDA graphs and the warm-up fit outside "
                    f"the budget (or --enforce-eager, or fewer --max-num-seqs)")
        return _fix_capacity(plan, plan.args)
    return None


def _fix_warmup_seqs(plan: Plan, why: str = " (vLLM 0.34's warmup_kernels runs one chunk of the Mamba-2 scan per "
                     "sequence, with float32 states, before the KV cache is sized)") -> str | None:
    """vLLM 0.34's warmup_kernels on a Mamba-2 model runs one chunk of the scan per sequence, up to --max-num-seqs
    (sizing/extensible.py ``recurrent_warmup``): the largest --max-num-seqs that starts, found by bisection."""
    hi = plan.args.max_num_seqs or plan.engine.max_num_seqs
    if not hi or hi <= 1 or not _replan(plan, replace(plan.args, max_num_seqs=1)).starts:
        return None
    lo = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _replan(plan, replace(plan.args, max_num_seqs=mid)).starts:
            lo = mid
        else:
            hi = mid
    return f"lower --max-num-seqs to {lo}{why}"


def _fix_mamba_blocks(plan: Plan) -> str | None:
    """vLLM's own advice for its Mamba-blocks check (vLLM v0.33.0 vllm/v1/worker/gpu_model_runner.py: "Please lower
    max_num_seqs to at most N or increase gpu_memory_utilization"): the largest --max-num-seqs that starts (fewer
    sequences also capture fewer CUDA graphs, so the blocks are recounted), else None."""
    import re

    found = re.search(r"available Mamba cache blocks \((\d+)\)", plan.error_message or "")
    n = int(found.group(1)) if found else (plan.num_gpu_blocks or 0) - 1
    for _ in range(4):
        if n < 1:
            return None
        p = _replan(plan, replace(plan.args, max_num_seqs=n))
        if p.starts:
            return (f"lower --max-num-seqs to {n} (each decode sequence needs one Mamba cache block; "
                    f"{n} blocks are left)")
        again = re.search(r"available Mamba cache blocks \((\d+)\)", p.error_message or "")
        left = int(again.group(1)) if again else ((p.num_gpu_blocks or 0) - 1)
        if left >= n:
            return None
        n = left
    return None


def _fix_capacity(plan: Plan, args: EngineArgs) -> str | None:
    """At a fixed util: a shorter max-model-len, fewer batched tokens, or eager mode."""
    p = _replan(plan, args)
    if p.starts:
        return None
    if p.error_kind == "max_model_len_exceeds_kv_cache" and p.estimated_max_model_len:
        n = p.estimated_max_model_len
        for _ in range(3):
            # vLLM 0.34 checks again after warm-up, on fewer blocks: the first estimate can still be too long
            q = _replan(plan, replace(args, max_model_len=n))
            if q.starts or q.error_kind != "max_model_len_exceeds_kv_cache" or not q.estimated_max_model_len \
                    or q.estimated_max_model_len >= n:
                break
            n = q.estimated_max_model_len
        if _replan(plan, replace(args, max_model_len=n)).starts:
            fix = f"lower --max-model-len to {n} (or less)"
            if n < p.estimated_max_model_len:
                # the first estimate (from the reserved bound) is not what starts: say why the fix is lower
                fix += (f" (vLLM's first check estimates {p.estimated_max_model_len}, but it checks again after "
                        f"warm-up and CUDA-graph capture, when fewer KV blocks are committed)")
            cap = largest_util_that_passes_check(plan)
            if plan.engine.extensible_kv_cache and args.gpu_memory_utilization is not None:
                # vLLM 0.34: unset, util is 1.0 and --max-model-len auto is refitted after warm-up
                top = _replan(plan, replace(args, gpu_memory_utilization=None, max_model_len=-1))
                if top.starts and top.max_model_len > n:
                    fix += (f"; leaving --gpu-memory-utilization unset (1.0, the extensible KV cache) gives up to "
                            f"{top.max_model_len}")
                return fix
            # the util in force: the flag's value, or the engine's default when the flag was left out
            util = (args.gpu_memory_utilization if args.gpu_memory_utilization is not None
                    else plan.engine.gpu_memory_utilization)
            if cap > util:
                top = _replan(plan, replace(args, gpu_memory_utilization=cap))
                if top.error_kind == "max_model_len_exceeds_kv_cache" and top.estimated_max_model_len:
                    fix += (f"; raising --gpu-memory-utilization to the most free memory allows ({cap:.2f}) "
                            f"gives up to {top.estimated_max_model_len}")
            return fix
    if plan.rules.engine == "v0" and not p.engine.enable_chunked_prefill:
        # vLLM 0.6 profiles max(max_model_len, 2048) tokens unless chunked prefill is on (then 512)
        if _replan(plan, replace(args, enable_chunked_prefill=True)).starts:
            return (f"add --enable-chunked-prefill (vLLM 0.6 then profiles 512 tokens instead of "
                    f"{p.engine.max_num_batched_tokens})")
    for mnbt in (8192, 4096, 2048):
        if mnbt < p.engine.max_num_batched_tokens:
            cand = replace(args, max_num_batched_tokens=mnbt)
            if _replan(plan, cand).starts:
                return f"lower --max-num-batched-tokens to {mnbt} (a smaller profile batch)"
    if not p.engine.enforce_eager and _replan(plan, replace(args, enforce_eager=True)).starts:
        return "add --enforce-eager (no CUDA-graph estimate is subtracted)"
    if p.estimated_max_model_len:
        n = p.estimated_max_model_len
        cand = replace(args, max_model_len=n, max_num_batched_tokens=min(p.engine.max_num_batched_tokens, 2048))
        if _replan(plan, cand).starts:
            return f"lower --max-model-len to {n} and --max-num-batched-tokens to 2048"
    return "the model does not fit this device at these settings: try more GPUs (--tensor-parallel-size) or a quantized checkpoint (see `vramplan fit`)"


def _fix_weights(plan: Plan) -> str:
    """Weights that do not fit the device: more GPUs, a quantization, or a bigger device, each planned again
    and offered only if that plan starts (util and every other flag as given)."""
    from ...inputs.devices import DEVICES

    options: list[str] = []
    tp = plan.engine.tp
    for n in (2, 4, 8, 16):
        if n <= tp:
            continue
        p = _replan(plan, replace(plan.args, tensor_parallel_size=n))
        if p.starts:
            options.append(f"--tensor-parallel-size {n} ({n * plan.engine.pp} GPUs, "
                           f"{p.logged_rank.bytes_of('weights') / GiB:.2f} GiB of weights each)")
            break
        if isinstance(p, Plan) and p.error_phase not in ("weight_loading", None):
            # the weights load at this TP but the startup fails later: offer TP with that plan's own fix
            then = smallest_fix(p)
            if then and not then.startswith("the model does not fit") and not then.startswith("the weights"):
                options.append(f"--tensor-parallel-size {n} ({p.logged_rank.bytes_of('weights') / GiB:.2f} GiB of "
                               f"weights each), and then {then}")
                break
    if plan.engine.quant is None and plan.args.quantization is None:
        for method, words in (("fp8", "fp8 weights, quantized at load"), ("bitsandbytes", "4-bit bitsandbytes")):
            p = _replan(plan, replace(plan.args, quantization=method))
            if p.starts:
                options.append(f"--quantization {method} ({words}: "
                               f"{p.logged_rank.bytes_of('weights') / GiB:.2f} GiB of weights)")
                break
    bigger = sorted((d for d in DEVICES.values() if d.platform == plan.device.platform
                     and d.total_bytes > plan.device.total_bytes), key=lambda d: d.total_bytes)
    for dev in bigger:
        try:
            p = build_plan(plan.model, plan.args, dev, plan.rules, used_by_others_bytes=plan.used_by_others_bytes)
        except InputError:
            continue
        if p.starts:
            options.append(f"a device with more memory ({dev.name}, {dev.total_gib:.2f} GiB, starts with these flags)")
            break
    if not options:
        return ("the weights do not fit this device: no larger --tensor-parallel-size, quantization or catalog device "
                "tried starts with these flags (see `vramplan fit`)")
    return "the weights do not fit: use " + "; or ".join(options)


def attach_fix(plan: Plan) -> Plan:
    if plan.starts:
        return plan
    return replace(plan, fix=smallest_fix(plan))
