"""Solve for the flags that fit a workload, rank the memory knobs, sweep a flag.

Everything here searches with the planner (``build_plan``) and never does its own
arithmetic: a util "holds the workload" when its plan starts, its KV cache holds
``concurrency`` requests of ``context`` tokens, and what runs after the KV cache
(CUDA graphs, the sampler warm-up) still fits the device.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

from .errors import InputError, InvalidConfig, NoFittingFlags, UnsupportedError
from .inputs.devices import Device
from .engines.vllm.flags import EngineArgs
from .model.description import ModelDescription
from .engines.vllm.planner import Plan, build_plan
from .engines.vllm.rules import engine_defaults as d
from .engines.vllm.rules.versions import RuleSet
from .units import GiB

__all__ = ["Workload", "FitResult", "KnobsResult", "SweepResult", "Knob", "fit", "knobs", "sweep", "sweep_rows",
           "holds", "serve_line", "parse_vary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    concurrency: int = 1
    """Requests served at the same time."""
    context: int | None = None
    """Tokens per request (prompt + output); None: the model's max_model_len."""
    images_per_request: int = 0
    image: tuple[int, int] | None = None
    """Width x height of each image (multimodal models)."""
    budget_bytes: int | None = None
    """The most this server may take on each device (e.g. beside other programs)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    plan: Plan
    """The plan of the answer."""
    answer: str
    """One line: what to set."""
    serve_line: str
    kv_cache_memory_bytes: int | None
    margin_bytes: int | None
    """Room left on the device after the post-startup allocations."""
    lower_fails: str | None = None
    """Why the next smaller utilisation does not hold the workload."""
    alternatives: tuple[str, ...] = ()
    tried: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = ()
    """Release-specific remarks (vLLM 0.34: what util means under the extensible KV cache)."""
    extra_flags: tuple[str, ...] = ()
    """The user's other flags (``--port 8000``, ``--served-model-name x``, ...), kept in the serve lines."""
    kv_serve_line: str = ""
    """The same line with ``--kv-cache-memory-bytes`` (the deterministic alternative)."""

    def __repr__(self) -> str:
        return f"FitResult({self.answer!r})"

    def to_dict(self) -> dict[str, Any]:
        """The ``vramplan fit --json`` object (``render/fit.py``)."""
        from .render.fit import fit_to_dict

        return fit_to_dict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)


Planner = Callable[[EngineArgs], Plan]


def _planner(model: ModelDescription, device: Device, rules: RuleSet, others: int) -> Planner:
    cache: dict = {}

    def run(args: EngineArgs) -> Plan:
        key = repr(args)
        if key not in cache:
            cache[key] = build_plan(model, args, device, rules, used_by_others_bytes=others)
        return cache[key]

    return run


def _process_bytes(p: Plan) -> int:
    """What the server process holds on one device at its peak after startup."""
    if p.engine.extensible_kv_cache and p.starts:  # vLLM 0.34: sized after warm-up (vramplan/engines/vllm/sizing/extensible.py)
        from .engines.vllm.sizing.extensible import process_bytes

        peak = next((t.bytes for t in p.headroom_terms if t.key == "startup_peak"), 0)
        return max(process_bytes(p), peak)  # warmup_kernels' committed blocks can outgrow a small final cache
    r = p.logged_rank
    h = {t.key: t.bytes for t in p.headroom_terms}
    if "headroom_left" in h:  # the room left at the warm-up's peak (planner._headroom_terms)
        return p.device.total_bytes - p.used_by_others_bytes - h["headroom_left"]
    context = p.device.total_bytes - p.used_by_others_bytes - r.free_at_init_bytes
    return context + r.requested_bytes


def holds(p: Plan, w: Workload) -> tuple[bool, str]:
    """Whether a plan starts and holds the workload; if not, why."""
    if not p.starts:
        return False, f"fails: {p.error_kind}"
    for t in p.headroom_terms:
        if t.key == "headroom_left" and t.bytes < 0:
            return False, "CUDA graphs / sampler warm-up would not fit after the KV cache"
    if w.context and p.max_model_len < w.context:
        return False, f"max_model_len {p.max_model_len} < context {w.context}"
    if p.engine.max_num_seqs < w.concurrency:
        return False, f"max_num_seqs {p.engine.max_num_seqs} < concurrency {w.concurrency}"
    if (p.max_concurrency or 0) < w.concurrency:
        return False, f"KV cache holds {p.max_concurrency:.2f} requests of {p.max_model_len} tokens, not {w.concurrency}"
    if w.budget_bytes is not None and _process_bytes(p) > w.budget_bytes:
        return False, f"the server would take {_process_bytes(p) / GiB:.2f} GiB > budget {w.budget_bytes / GiB:.2f} GiB"
    return True, "holds"


def _workload_args(args: EngineArgs, w: Workload) -> EngineArgs:
    changes: dict = {}
    if w.context and args.max_model_len in (None, -1):
        changes["max_model_len"] = w.context
    if args.max_num_seqs is None and w.concurrency > 1:
        changes["max_num_seqs"] = max(w.concurrency, 1)
    if w.images_per_request and args.limit_mm_per_prompt is None:
        changes["limit_mm_per_prompt"] = {"image": w.images_per_request, "video": 0}
    return replace(args, **changes) if changes else args


def _utils(lo: float, hi: float) -> list[float]:
    return [round(lo + i / 100, 2) for i in range(int(round((hi - lo) * 100)) + 1)]


def _max_util(plan_fn: Planner, args: EngineArgs) -> float:
    """The largest util whose startup check passes (free memory)."""
    p = plan_fn(replace(args, gpu_memory_utilization=0.5))
    if p.engine.extensible_kv_cache:  # vLLM 0.34: no free-memory check at startup, util up to 1.0
        return 1.0
    free, total = p.logged_rank.free_at_init_bytes, p.device.total_bytes
    u = min(math.floor(free / total * 100) / 100, 0.99)
    while u > 0.01 and math.ceil(total * u) > free:
        u = round(u - 0.01, 2)
    return u


def _min_util(plan_fn: Planner, args: EngineArgs, w: Workload) -> tuple[float, Plan] | None:
    """Smallest util (0.01 steps) whose plan holds the workload.

    Holding is not monotone in util: more util gives more KV cache, but leaves less room for
    what is allocated after it (CUDA graphs, the sampler warm-up) and for a budget. So the grid
    is scanned upwards in 0.05 steps for the first util that holds, then bisected down to 0.01.
    """
    hi = _max_util(plan_fn, args)
    grid = _utils(0.05, hi)
    if not grid:
        return None
    ok = lambda u: holds(plan_fn(replace(args, gpu_memory_utilization=u)), w)[0]  # noqa: E731
    coarse = grid[::5] + ([grid[-1]] if (len(grid) - 1) % 5 else [])
    first = next((i for i, u in enumerate(coarse) if ok(u)), None)
    if first is None:  # a feasible window narrower than 0.05: scan every step
        fine = next((u for u in grid if ok(u)), None)
        return None if fine is None else (fine, plan_fn(replace(args, gpu_memory_utilization=fine)))
    a = grid.index(coarse[first - 1]) + 1 if first > 0 else 0
    b = grid.index(coarse[first])
    while a < b:
        m = (a + b) // 2
        if ok(grid[m]):
            b = m
        else:
            a = m + 1
    return grid[a], plan_fn(replace(args, gpu_memory_utilization=grid[a]))


# the flags serve_line writes itself; any other flag the user gave is kept as written
SERVE_LINE_FLAGS = frozenset({
    "--model", "--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len", "--max-num-seqs",
    "--max-num-batched-tokens", "--kv-cache-memory-bytes", "--kv-cache-memory", "--gpu-memory-utilization",
    "--kv-cache-dtype", "--quantization", "--enforce-eager", "--limit-mm-per-prompt", "--mm-processor-kwargs"})


def other_flags(spans: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, ...]:
    """The tokens of the flags ``serve_line`` does not write (from ``ParsedFlags.spans``)."""
    return tuple(t for key, toks in spans if key not in SERVE_LINE_FLAGS for t in toks)


def serve_line(p: Plan, *, kv_bytes: bool = False, extra: Sequence[str] = ()) -> str:
    """The ``vllm serve`` command for a plan, with the flags that matter (and ``extra``, the user's others)."""
    e, a = p.engine, p.args
    parts = ["vllm serve", shlex.quote(a.model or p.model.name)]
    if e.tp > 1:
        parts += ["--tensor-parallel-size", str(e.tp)]
    if e.pp > 1:
        parts += ["--pipeline-parallel-size", str(e.pp)]
    parts += ["--max-model-len", str(p.max_model_len), "--max-num-seqs", str(e.max_num_seqs)]
    if a.max_num_batched_tokens:
        parts += ["--max-num-batched-tokens", str(e.max_num_batched_tokens)]
    if kv_bytes:
        parts += ["--kv-cache-memory-bytes", str(p.logged_rank.available_kv_bytes)]
    parts += ["--gpu-memory-utilization", f"{e.gpu_memory_utilization:.2f}"]
    if e.kv_cache_dtype != "auto":
        parts += ["--kv-cache-dtype", e.kv_cache_dtype]
    if a.quantization:
        parts += ["--quantization", a.quantization]
    if e.enforce_eager:
        parts.append("--enforce-eager")
    if a.limit_mm_per_prompt:
        import json

        parts += ["--limit-mm-per-prompt", shlex.quote(json.dumps(a.limit_mm_per_prompt))]
    if a.mm_processor_kwargs:
        import json

        parts += ["--mm-processor-kwargs", shlex.quote(json.dumps(a.mm_processor_kwargs))]
    parts += [shlex.quote(t) for t in extra]
    env = " ".join(f"{k}={v}" for k, v in a.env if k.startswith("VLLM_"))
    return (env + " " if env else "") + " ".join(parts)


def _margin(p: Plan) -> int | None:
    for t in p.headroom_terms:
        if t.key == "headroom_left":
            return t.bytes
    return None


# Alternatives tried when nothing fits, cheapest first: (description, change).
def fp8_supported(device: Device) -> bool:
    """vllm-ascend has no fp8: its platform accepts only its own quantization method (vllm-ascend 0.9.1
    vllm_ascend/platform.py:NPUPlatform.supported_quantization = ["ascend"]) and its attention backends have
    no fp8 KV cache, so neither fp8 weights nor an fp8 KV cache is a knob there."""
    return device.platform != "ascend"


def _alternatives(args: EngineArgs, device_count_limit: int = 8, *, fp8: bool = True) -> list[tuple[str, EngineArgs]]:
    out: list[tuple[str, EngineArgs]] = []
    if fp8 and args.kv_cache_dtype in ("auto", None):
        out.append(("--kv-cache-dtype fp8 (half the KV bytes; small quality cost)", replace(args, kv_cache_dtype="fp8")))
    out.append(("--enforce-eager (no CUDA graphs; slower decode)", replace(args, enforce_eager=True)))
    out.append(("--max-num-batched-tokens 2048 (smaller profile batch; slower prefill)",
                replace(args, max_num_batched_tokens=2048)))
    tp = args.tensor_parallel_size
    for n in (2, 4, 8):
        if n > tp and n <= device_count_limit:
            out.append((f"--tensor-parallel-size {n} ({n} GPUs)", replace(args, tensor_parallel_size=n)))
    if fp8 and not args.quantization:
        out.append(("--quantization fp8 (online fp8 weights; needs fp8-capable GPUs)", replace(args, quantization="fp8")))
    return out


def fit(model: ModelDescription, device: Device, rules: RuleSet, args: EngineArgs, w: Workload, *,
        used_by_others_bytes: int = 0, extra_flags: Sequence[str] = ()) -> FitResult:
    """The flags that hold ``w`` on ``device``; see the module docstring."""
    plan_fn = _planner(model, device, rules, used_by_others_bytes)
    base = _workload_args(args, w)
    extra = tuple(extra_flags)

    def kv_bytes(p: Plan) -> int | None:  # the deterministic --kv-cache-memory-bytes line, where it exists
        ok = d.supports_kv_cache_memory_bytes(rules.requested, engine=rules.engine)
        return p.logged_rank.available_kv_bytes if ok else None

    if args.gpu_memory_utilization is not None:
        # util fixed: report the largest context and concurrency it allows
        p = plan_fn(base)
        ok, why = holds(p, w)
        longest = None
        if d.supports_auto_max_model_len(rules.requested, engine=rules.engine):
            auto = plan_fn(replace(base, max_model_len=-1))
            longest = auto.max_model_len if auto.starts else None
        conc = p.max_concurrency
        answer = (f"at --gpu-memory-utilization {args.gpu_memory_utilization}: "
                  + ("the workload holds; " if ok else f"the workload does not hold ({why}); ")
                  + (f"longest max-model-len {longest:,}; " if longest else "")
                  + (f"{conc:.2f} concurrent requests of {p.max_model_len:,} tokens" if conc is not None else ""))
        return FitResult(plan=p, answer=answer, serve_line=serve_line(p, extra=extra), kv_cache_memory_bytes=(
            kv_bytes(p) if p.starts else None), margin_bytes=_margin(p), extra_flags=extra,
            kv_serve_line=serve_line(p, kv_bytes=True, extra=extra))
    found = _min_util(plan_fn, base, w)
    if found is not None:
        util, p = found
        lower = round(util - 0.01, 2)
        why = holds(plan_fn(replace(base, gpu_memory_utilization=lower)), w)[1] if lower > 0 else None
        answer = (f"smallest --gpu-memory-utilization that starts and holds {w.concurrency} x "
                  f"{p.max_model_len:,} tokens: {util:.2f}")
        from .engines.vllm.sizing.extensible import fit_notes

        return FitResult(plan=p, answer=answer, serve_line=serve_line(p, extra=extra),
                         kv_cache_memory_bytes=kv_bytes(p), margin_bytes=_margin(p),
                         lower_fails=f"{lower:.2f}: {why}" if why else None, extra_flags=extra,
                         kv_serve_line=serve_line(p, kv_bytes=True, extra=extra),
                         notes=fit_notes(p, plan_fn(base) if p.engine.extensible_kv_cache else None))
    tried = []
    for desc, alt in _alternatives(base, fp8=fp8_supported(device)):
        found = _min_util(plan_fn, alt, w)
        tried.append(desc)
        if found is not None:
            util, p = found
            answer = (f"does not fit as given; nearest that fits: {desc}, with --gpu-memory-utilization {util:.2f}")
            from .engines.vllm.sizing.extensible import fit_notes

            return FitResult(plan=p, answer=answer, serve_line=serve_line(p, extra=extra),
                             kv_cache_memory_bytes=kv_bytes(p), margin_bytes=_margin(p),
                             alternatives=(desc,), tried=tuple(tried), extra_flags=extra,
                             kv_serve_line=serve_line(p, kv_bytes=True, extra=extra),
                             notes=fit_notes(p, plan_fn(alt) if p.engine.extensible_kv_cache else None))
    p = plan_fn(replace(base, gpu_memory_utilization=_max_util(plan_fn, base)))
    raise NoFittingFlags(
        f"{model.name} cannot hold {w.concurrency} x {w.context or p.max_model_len} tokens on {device.label}: "
        f"{holds(p, w)[1]}",
        hint="tried " + "; ".join(tried) + ". Try a larger device, more GPUs or a quantized checkpoint")


# ----- knobs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Knob:
    name: str
    change: str
    """The flag change, as typed."""
    freed_bytes: int | None
    """Device memory the knob frees per device: from the non-KV total (it goes to the KV cache), or for
    ``--gpu-memory-utilization``, from what the server takes (it goes back to other programs)."""
    kv_tokens_added: int | None
    util_needed: float | None = None
    """Smallest util holding the workload with this knob (when a workload is given)."""
    cost: str = ""
    host_bytes: int | None = None
    """For host-memory knobs: host RAM freed."""
    plan: Plan | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KnobsResult:
    baseline: Plan
    """The plan of the flags as given."""
    knobs: tuple[Knob, ...]
    workload: Workload | None = None

    def __repr__(self) -> str:
        return f"KnobsResult({self.baseline!r}, {len(self.knobs)} knobs)"

    def to_dict(self) -> dict[str, Any]:
        """The ``vramplan knobs --json`` object (``render/knobs.py``)."""
        from .render.knobs import knobs_to_dict

        return knobs_to_dict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)


_COSTS = {
    "tp": "needs more GPUs; adds all-reduce traffic per layer",
    "pp": "needs more GPUs; adds pipeline bubbles and latency",
    "quant": "weights in 8 bits: small quality loss; needs fp8-capable GPUs (Hopper/Ada)",
    "kvfp8": "KV in 8 bits: small quality loss; halves KV bytes",
    "len": "longer prompts are refused",
    "seqs": "fewer requests decode at once: lower throughput",
    "mnbt": "smaller prefill chunks: slower time to first token",
    "eager": "no CUDA graphs: slower decode (often 10-30%)",
    "graphs": "fewer captured batch sizes: larger batches run eagerly",
    "mm": "fewer images/videos accepted per prompt",
    "text_only": "the model accepts no images or videos (its vision tower is not built)",
    "pixels": "images are downscaled further: less visual detail",
    "cache": "host RAM only; re-processes repeated images",
    "offload": "offloaded weights are read from pinned host RAM over PCIe every step: much slower decode",
    "util": "a smaller KV cache (fewer tokens, less concurrency); the memory goes back to other programs",
    "extensible_off": "sized from the profile run at util 0.92 (the 0.33 way); the free-memory check applies again; "
                      "--kv-cache-memory-bytes is the deterministic alternative",
    "extensible_on": "sized from the memory free after warm-up and graph capture; util defaults to 1.0",
    "gdn_triton": "GDN prefill on FLA's Triton kernels instead of FlashInfer's (slower prefill on Hopper); no "
                  "prefill checkpoint page a request, but larger warm-up states on 0.34",
}


def knobs(model: ModelDescription, device: Device, rules: RuleSet, args: EngineArgs, *,
          workload: Workload | None = None, used_by_others_bytes: int = 0) -> tuple[Plan, list[Knob]]:
    """Each memory knob's effect, as the difference between two plans (baseline vs the knob)."""
    plan_fn = _planner(model, device, rules, used_by_others_bytes)
    base_args = _workload_args(args, workload) if workload else args
    base = plan_fn(base_args)
    e = base.engine
    cands: list[tuple[str, str, EngineArgs, str]] = []
    if e.tp < 8 and model.num_attention_heads % (e.tp * 2) == 0:
        cands.append(("tensor parallel", f"--tensor-parallel-size {e.tp * 2}",
                      replace(base_args, tensor_parallel_size=e.tp * 2), "tp"))
    if model.num_hidden_layers >= 2 * e.pp:
        cands.append(("pipeline parallel", f"--pipeline-parallel-size {e.pp * 2}",
                      replace(base_args, pipeline_parallel_size=e.pp * 2), "pp"))
    fp8 = fp8_supported(device)
    if fp8 and e.quant is None:
        cands.append(("checkpoint quantization", "--quantization fp8", replace(base_args, quantization="fp8"), "quant"))
    if fp8 and e.kv_cache_dtype == "auto":
        cands.append(("KV-cache dtype", "--kv-cache-dtype fp8", replace(base_args, kv_cache_dtype="fp8"), "kvfp8"))
    half = max(base.max_model_len // 2, 256)
    cands.append(("max-model-len", f"--max-model-len {half}", replace(base_args, max_model_len=half), "len"))
    if e.max_num_seqs > 16:
        n = max(e.max_num_seqs // 4, 16)
        cands.append(("max-num-seqs", f"--max-num-seqs {n}", replace(base_args, max_num_seqs=n), "seqs"))
    if e.max_num_batched_tokens > 2048:
        n = max(e.max_num_batched_tokens // 2, 2048)
        cands.append(("max-num-batched-tokens", f"--max-num-batched-tokens {n}",
                      replace(base_args, max_num_batched_tokens=n), "mnbt"))
    if rules.engine == "v0" and not e.enable_chunked_prefill:
        # vLLM 0.6 profiles max(max_model_len, 2048) tokens without chunked prefill, 512 with it
        cands.append(("enable-chunked-prefill", "--enable-chunked-prefill",
                      replace(base_args, enable_chunked_prefill=True), "mnbt"))
    if rules.extensible_kv_cache_platforms and device.platform in rules.extensible_kv_cache_platforms:
        # vLLM 0.34: the extensible KV cache on or off (vllm/config/vllm.py:_resolve_extensible_kv_cache)
        on = e.extensible_kv_cache
        cands.append(("extensible KV cache", "--no-enable-extensible-kv-cache" if on else
                      "--enable-extensible-kv-cache", replace(base_args, enable_extensible_kv_cache=not on),
                      "extensible_off" if on else "extensible_on"))
    if e.gdn_flashinfer_prefill and rules.prefill_checkpoint_blocks:
        # vLLM 0.33+ qwen_gdn_linear_attn.py:_resolve_gdn_prefill_backend: FlashInfer's GDN prefill (the Hopper
        # default) exports a checkpoint page per GDN group and request; Triton's does not (rules/engine.py)
        cands.append(("GDN prefill kernel", "--gdn-prefill-backend triton",
                      replace(base_args, gdn_prefill_backend="triton"), "gdn_triton"))
    if not e.enforce_eager:
        cands.append(("enforce-eager", "--enforce-eager", replace(base_args, enforce_eager=True), "eager"))
        if len(e.capture_sizes) > 8 and rules.engine != "v0":  # V0 has no capture-size option of this name
            cands.append(("CUDA-graph capture sizes", "-cc.max_cudagraph_capture_size=64",
                          replace(base_args, max_cudagraph_capture_size=64), "graphs"))
    if model.is_multimodal:
        cands.append(("limit-mm-per-prompt", "--limit-mm-per-prompt '{\"image\": 1, \"video\": 0}'",
                      replace(base_args, limit_mm_per_prompt={"image": 1, "video": 0}), "mm"))
        # vLLM interfaces.py SupportsMultiModal._mark_tower_model: with every modality at 0 the tower is not built
        from .model.mm_tokens import tower_modalities

        off = {m: 0 for m in (tower_modalities(model.vision) if model.vision is not None else ("image", "video"))}
        cands.append(("text only", f"--limit-mm-per-prompt '{json.dumps(off)}'",
                      replace(base_args, limit_mm_per_prompt=off), "text_only"))
        cands.append(("max_pixels", "--mm-processor-kwargs '{\"max_pixels\": 1003520}'",
                      replace(base_args, mm_processor_kwargs={**(base_args.mm_processor_kwargs or {}),
                                                              "max_pixels": 1003520}), "pixels"))
    w = base.logged_rank.bytes_of("weights")
    if w >= 2 * GiB:
        gb = max(1, min(8, int(w / GiB / 4)))
        cands.append(("cpu-offload-gb", f"--cpu-offload-gb {gb}", replace(base_args, cpu_offload_gb=float(gb)),
                      "offload"))
    if base.starts or base.error_kind == "free_memory_below_requested":  # a smaller budget only helps this failure
        cands.append(("gpu-memory-utilization",
                      f"--gpu-memory-utilization {round(e.gpu_memory_utilization - 0.05, 2)}",
                      replace(base_args, gpu_memory_utilization=round(e.gpu_memory_utilization - 0.05, 2)), "util"))
    from .engines.vllm.sizing.extensible import non_kv_bytes

    out: list[Knob] = []
    base_nonkv = non_kv_bytes(base)
    for name, change, cand, cost in cands:
        try:
            p = plan_fn(cand)
        except (InvalidConfig, UnsupportedError):  # a change vLLM (or this version) refuses is no knob
            continue
        freed = base_nonkv - non_kv_bytes(p)
        if cost == "util":
            freed = base.logged_rank.requested_bytes - p.logged_rank.requested_bytes
            if base.engine.extensible_kv_cache and base.starts and p.starts:  # 0.34: util caps, the device bounds
                freed = _process_bytes(base) - _process_bytes(p)
        elif cost.startswith("extensible") and base.starts and p.starts:
            freed = _process_bytes(base) - _process_bytes(p)
        # against a failing baseline (no KV cache), a change that starts adds all of its own tokens
        added = (p.kv_cache_tokens - (base.kv_cache_tokens if base.starts else 0)) if p.starts else None
        util = None
        if workload:
            found = _min_util(plan_fn, cand, workload)
            util = found[0] if found else None
        out.append(Knob(name=name, change=change, freed_bytes=freed, kv_tokens_added=added, util_needed=util,
                        cost=_COSTS[cost], plan=p))
    if model.is_multimodal and args.mm_processor_cache_gb != 0:
        gb = 4.0 if args.mm_processor_cache_gb is None else args.mm_processor_cache_gb
        host = int(gb * GiB) * ((args.api_server_count or 1) + e.dp)
        out.append(Knob(name="mm-processor-cache-gb", change="--mm-processor-cache-gb 0", freed_bytes=0,
                        kv_tokens_added=0, cost=_COSTS["cache"], host_bytes=host))
    return base, out


# ----- sweep -------------------------------------------------------------------------------

# besides vLLM's memory flags (inputs/flags.py), the memory other programs hold can be swept
_OTHERS = "used-by-others-gib"
_INT_FIELDS = ("int", "int | None")
_FLOAT_FIELDS = ("float", "float | None")


def _sweep_target(flag: str) -> tuple[str, str, Callable[[str], Any], str]:
    """(dashed flag, EngineArgs field or ``__others``, converter, field type) of a flag to sweep."""
    from .engines.vllm.flags import _FLAGS, _SHORT, known_vllm_flags

    name = _SHORT.get("-" + flag, "--" + flag).lstrip("-").replace("_", "-")
    if name == _OTHERS:
        return name, "__others", float, "float"
    if name in _FLAGS and name not in ("model", "usage-context"):
        dest, conv, _ = _FLAGS[name]
        types = {f.name: str(f.type) for f in fields(EngineArgs)}
        return name, dest, conv, types[dest]
    if "--" + name in known_vllm_flags():
        raise InputError(f"--{name} has no memory effect: every row of the sweep would be the same",
                         hint="sweep a flag that changes memory, e.g. max-model-len, max-num-seqs, "
                              "gpu-memory-utilization, tensor-parallel-size, kv-cache-dtype")
    import difflib

    close = difflib.get_close_matches(name, [*_FLAGS, _OTHERS], n=1)
    raise InputError(f"cannot sweep {flag!r}: not a vLLM flag",
                     hint=(f"did you mean {close[0]}? " if close else "") + "any vLLM memory flag can be swept")


def parse_vary(spec: str, steps: int = 8) -> tuple[str, str, list]:
    """``max-model-len=4096:131072`` (geometric for integers, linear for floats) or ``kv-cache-dtype=auto,fp8``.

    Any vLLM flag that changes memory can be swept, written as on the command line. A listed value
    vLLM would refuse (``tensor-parallel-size=3`` for 32 heads, a util of 1.5) is kept: its row says why.
    """
    from .errors import FlagError

    if "=" not in spec:
        raise InputError(f"--vary needs FLAG=RANGE, got {spec!r}", hint="e.g. --vary max-model-len=4096:131072")
    flag, rng = spec.split("=", 1)
    flag, field_name, conv, ftype = _sweep_target(flag.strip().lstrip("-"))

    def read(text: str):
        try:
            return conv(text.strip())
        except FlagError:
            return text.strip()  # a value of the right type that vLLM refuses: its row will say so

    try:
        if "," in rng:
            values = [read(x) for x in rng.split(",") if x.strip()]
        else:
            lo, hi = (conv(x) for x in rng.split(":"))
            if ftype in _INT_FIELDS:
                if lo <= 0 or hi < lo:
                    raise ValueError
                ratio = (hi / lo) ** (1 / max(steps - 1, 1))
                values = sorted({int(round(lo * ratio ** i)) for i in range(steps)})
            elif ftype in _FLOAT_FIELDS:
                values = [round(lo + (hi - lo) * i / max(steps - 1, 1), 4) for i in range(steps)]
            else:
                raise ValueError
    except (ValueError, TypeError):
        raise InputError(f"cannot read the range {rng!r}",
                         hint="write LOW:HIGH (numbers) or A,B,C") from None
    if not values:
        raise InputError(f"no values to sweep in {rng!r}", hint="write LOW:HIGH or A,B,C")
    return flag, field_name, values


def sweep_rows(model: ModelDescription, device: Device, rules: RuleSet, args: EngineArgs, field_name: str,
               values: Sequence, *, used_by_others_bytes: int = 0) -> list[tuple[Plan | None, str | None]]:
    """One (plan, None) per value, or (None, the one-line reason) for a value vLLM or vramplan refuses."""
    from .engines.vllm.flags import args_with
    from .units import parse_size

    out: list[tuple[Plan | None, str | None]] = []
    for v in values:
        try:
            others = used_by_others_bytes
            a = args
            if field_name == "__others":
                others = parse_size(v)
            else:
                a = args_with(args, **{field_name: v})
            out.append((_planner(model, device, rules, others)(a), None))
        except InputError as exc:
            out.append((None, exc.one_line()))
    return out


def sweep(model: ModelDescription, device: Device, rules: RuleSet, args: EngineArgs, field_name: str,
          values: Sequence, *, used_by_others_bytes: int = 0) -> list[Plan]:
    """The plan of each value (raising at the first value that cannot be planned; see ``sweep_rows``)."""
    out = []
    for v in values:
        others = used_by_others_bytes
        a = args
        if field_name == "__others":
            others = int(float(v) * GiB)
        else:
            a = replace(args, **{field_name: v})
        out.append(_planner(model, device, rules, others)(a))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    flag: str
    """The swept flag, dashed (``max-model-len``)."""
    values: tuple
    plans: tuple[Plan | None, ...]
    """One per value; None where the value cannot be planned."""
    errors: tuple[str | None, ...]
    """One per value: why it cannot be planned (vLLM's or vramplan's one line), else None."""

    def __repr__(self) -> str:
        ok = sum(1 for p in self.plans if p is not None and p.starts)
        return f"SweepResult({self.flag}: {len(self.values)} values, {ok} start)"

    def to_dict(self) -> dict[str, Any]:
        """The ``vramplan sweep --json`` object (``render/sweep.py``)."""
        from .render.sweep import sweep_to_dict

        return sweep_to_dict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)
