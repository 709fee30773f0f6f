"""The planned levels ``vramplan watch`` draws over a watched SGLang server, and the plan next to what its log says.

watch plans the watched command line (``python -m sglang.launch_server --model-path X ...`` or ``sglang serve ...``)
through the one composer (``vramplan.plan(..., engine="sglang", flags=argv)``) on the device it reads before the
server starts: the catalog entry whose name the driver gives, with the total the driver reports (else a device of
that size), and the most-used of the first ``tp x pp`` devices as memory others hold. Each level is bytes above the
baseline (what was in use before the server started), paired with the phase SGLang's log marks for it
(engines/sglang/log_stream.py):

========================================  =================================  =======================================
level                                     bytes above the baseline           measured as
========================================  =================================  =======================================
planned weights                           context + weights                  first reading after "Load weight end"
planned weights + KV pool                 + rotary reserve, mamba state,     first reading after "KV Cache is
                                          ReqToTokenPool, KV pool            allocated"
planned static fraction (F x free         context + F x free before load     first reading after "KV Cache is
before load)                                                                 allocated"
planned after CUDA graphs                 + NCCL/cuBLAS growth, graphs       first reading after the scheduler's
                                                                             ``max_total_num_tokens=`` line
planned serving peak (activations)        + one prefill step's activations   highest reading once ready
========================================  =================================  =======================================

The static fraction's line: SGLang sizes the pools so that ``pre x (1 - F)`` stays free, ``pre`` the free memory
before loading (sglang 0.5.17 / 0.5.23 srt/mem_cache/kv_cache_configurator.py:KVCacheConfigurator.
_profile_available_bytes: ``rest_memory = available_gpu_memory - pre_model_load_memory x (1 - mem_fraction_static)``),
so weights and pools end at ``F x pre`` above what the server held at its baseline, not at ``F x total``. The room
above it (to the device total) is where SGLang captures its CUDA graphs and runs its activations, unbudgeted.

:func:`log_rows` puts the plan's figures beside the ones SGLang logs at each phase ("Load weight begin/end ...
avail mem", "KV Cache is allocated. #tokens ... K size / V size", "Memory pool end. avail mem", "Capture ... CUDA
graph end ... mem usage", the scheduler's ``max_total_num_tokens=... available_gpu_mem=``). No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ...units import GiB

__all__ = ["SGLangWatchPlan", "plan_watched_sglang", "levels_of", "log_rows", "format_log_rows", "device_for"]

W = "planned weights"
KV = "planned weights + KV pool"
GRAPHS = "planned after CUDA graphs"
PEAK = "planned serving peak (activations)"


def _static_label(fraction: float) -> str:
    return f"planned static fraction ({fraction:g} x free before load)"


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangWatchPlan:
    """What watch draws and prints for a watched SGLang server (``plan`` None: why in ``note``)."""

    plan: Any = None
    """The :class:`~vramplan.engines.sglang.planner.SGLangPlan` of the watched command, or None."""
    levels: dict[str, int] = field(default_factory=dict)
    """Label -> planned bytes above the baseline, in startup order."""
    level_phases: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Label -> (phase, ``first``/``peak``/``last``) it is measured against."""
    note: str | None = None
    """One line: why there are no planned levels (the model cannot be planned), or None."""
    summary: str | None = None
    """One line: what was planned (model, release, device, fraction, KV tokens, verdict)."""

    def record(self) -> dict[str, Any]:
        """The timeline's ``plan`` record (``vramplan.watch.timeline``)."""
        return {"type": "plan", "engine": "sglang", "levels": dict(self.levels) or None,
                "level_phases": {k: list(v) for k, v in self.level_phases.items()} or None,
                "note": self.note, "summary": self.summary}

    def log_table(self, facts: Any) -> str:
        """The planned-vs-logged table for the facts SGLang's log reader returned ("" without a plan or log)."""
        if self.plan is None or facts is None or not hasattr(facts, "kv_tokens"):
            return ""
        return format_log_rows(log_rows(self.plan, facts))


def device_for(name: str, total_bytes: int) -> Any:
    """The catalog device whose label is the driver's product name, with the total the driver reports; else a
    device of that size (platform cuda)."""
    from ...inputs.devices import DEVICES, custom_device

    for d in DEVICES.values():
        if name and d.label.lower() == name.strip().lower():
            return replace(d, total_bytes=int(total_bytes))
    return replace(custom_device(total_bytes / GiB), total_bytes=int(total_bytes), label=name or "custom")


def _installed_version() -> str | None:
    """The sglang installed beside vramplan, if any (the watched server is most often that one)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("sglang")
    except PackageNotFoundError:
        return None
    except Exception:
        return None


def plan_watched_sglang(argv: Sequence[str], readings: Sequence[Any], *, sglang_version: str | None = None
                        ) -> SGLangWatchPlan:
    """Plan the watched SGLang command on the devices read before it started. Never raises: a command that cannot
    be planned (no model, no config offline, a bad flag) gives a plan-less result whose ``note`` says why."""
    try:
        return _plan(list(argv), list(readings), sglang_version)
    except Exception as exc:  # any failure: watch records anyway
        from ...errors import VramplanError

        why = exc.one_line() if isinstance(exc, VramplanError) else f"{type(exc).__name__}: {exc}"
        return SGLangWatchPlan(note=f"no planned levels: the command could not be planned ({why[:300]})")


def _plan(argv: list[str], readings: list[Any], sglang_version: str | None) -> SGLangWatchPlan:
    import vramplan

    from .flags import parse_sglang_flags
    from .rules import rules_for

    if not readings:
        return SGLangWatchPlan(note="no planned levels: no device reading before the server started")
    version = sglang_version or _installed_version()
    try:
        rules_for(version)
    except Exception:
        version = None  # an installed release older than the modelled ones: plan with the newest modelled
    parsed = parse_sglang_flags(argv, legacy_aliases=rules_for(version).legacy_aliases)
    n = max(1, parsed.args.tp_size * parsed.args.pp_size)
    from ...watch.timeline import _device_key  # the order NVML numbers devices in

    used = sorted(readings, key=lambda r: _device_key(str(r.device)))[:n]
    first = used[0]
    device = device_for(str(getattr(first, "name", "") or ""), int(first.total_bytes))
    others = max(int(r.used_bytes) for r in used)
    p = vramplan.plan(None, engine="sglang", flags=argv, device=device, sglang_version=version,
                      used_by_others_gib=others / GiB)
    levels, phases = levels_of(p)
    tokens = f"{p.max_total_num_tokens:,} KV tokens" if p.max_total_num_tokens else "no KV pool"
    verdict = "starts" if p.starts else f"fails ({p.error_kind} at {p.error_phase})"
    room = ""
    if p.max_total_num_tokens:
        need = sum(p.bytes_of(k) for k in ("non_torch_increase", "cudagraph_decode", "cudagraph_prefill",
                                            "activation_peak"))
        room = (f", {p.headroom_bytes / GiB:.2f} GiB left above the pools for graphs and activations "
                f"({need / GiB:.2f} GiB planned)")
    summary = (f"planned SGLang {p.engine_version} {p.model.name} on {p.args.tp_size}x {device.label} "
               f"({device.total_bytes / GiB:.2f} GiB, {others / GiB:.2f} GiB in use before): "
               f"--mem-fraction-static {p.resolved.mem_fraction_static:g}, {tokens}{room}, {verdict}")
    return SGLangWatchPlan(plan=p, levels=levels, level_phases=phases, summary=summary)


def levels_of(p: Any) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
    """The planned levels of an SGLang plan (bytes above the baseline) and the phase each is measured against."""
    st = p.logged_stage
    # everything in use when loading begins (context, SGLang's init, a multimodal feature pool)
    ctx = p.device.total_bytes - p.used_by_others_bytes - st.free_before_load_bytes
    weights = ctx + st.weights.total_bytes
    levels: dict[str, int] = {W: weights}
    phases: dict[str, tuple[str, str]] = {W: ("weights_loaded", "first")}
    fraction = p.resolved.mem_fraction_static
    static = _static_label(fraction)
    pools = weights + sum(p.bytes_of(k) for k in ("rope_cache_reserve", "mamba_state", "req_to_token", "kv_cache",
                                                  "kv_allocator_rounding"))
    if p.max_total_num_tokens:
        levels[KV] = pools
        phases[KV] = ("kv_allocated", "first")
    # kv_cache_configurator.py:_profile_available_bytes: pre x (1 - F) stays free once the pools are sized
    levels[static] = (p.device.total_bytes - p.used_by_others_bytes - st.fraction_base_bytes
                      + int(st.fraction_base_bytes * fraction))
    phases[static] = ("kv_allocated", "first")
    if p.max_total_num_tokens and p.error_kind != "no_kv_cache_memory":
        graphs = pools + sum(p.bytes_of(k) for k in ("non_torch_increase", "cudagraph_decode", "cudagraph_prefill"))
        levels[GRAPHS] = graphs
        phases[GRAPHS] = ("graphs_captured", "first")
        levels[PEAK] = graphs + p.bytes_of("activation_peak")
        phases[PEAK] = ("ready", "peak")
    return levels, phases


def _gb(b: float | None) -> float | None:
    return None if b is None else round(b / GiB, 2)


def log_rows(p: Any, f: Any) -> list[tuple[str, str, Any, Any]]:
    """(phase, figure, planned, logged) for each figure SGLang logs; None where the plan or the log has none."""
    st = p.logged_stage
    pool_end = p.headroom_bytes if p.max_total_num_tokens else None
    graphs_room = None
    if p.max_total_num_tokens:
        graphs_room = p.headroom_bytes - sum(p.bytes_of(k) for k in ("non_torch_increase", "cudagraph_decode",
                                                                      "cudagraph_prefill"))
    decode = p.term("cudagraph_decode")
    prefill = p.term("cudagraph_prefill")
    logged_verdict = None
    if f.error_kind:
        logged_verdict = f"fails ({f.error_kind})"
    elif f.max_total_num_tokens is not None:
        logged_verdict = "starts"
    planned_verdict = "starts" if p.starts else f"fails ({p.error_kind})"
    return [
        ("engine_start", "--mem-fraction-static", f"{p.resolved.mem_fraction_static:g}",
         None if f.mem_fraction_static is None else f"{f.mem_fraction_static:g}"),
        ("device_ready", "free before loading (Load weight begin avail mem, GB)", _gb(st.free_before_load_bytes),
         f.free_before_load_gb),
        ("weights_loaded", "weights (Load weight end mem usage, GB)", _gb(st.weights.total_bytes), f.weights_gb),
        ("weights_loaded", "free after loading (Load weight end avail mem, GB)", _gb(st.free_after_load_bytes),
         f.free_after_load_gb),
        ("kv_allocated", "KV tokens (KV Cache is allocated #tokens)", p.max_total_num_tokens, f.kv_tokens),
        ("kv_allocated", "KV pool (K size + V size, GB)", _gb(p.kv_pool_bytes) if p.max_total_num_tokens else None,
         f.kv_gb),
        ("kv_allocated", "free after the pools (Memory pool end avail mem, GB)", _gb(pool_end), f.pool_end_avail_gb),
        ("graphs_captured", "decode CUDA graphs (Capture decode ... end mem usage, GB)",
         _gb(decode.bytes) if decode else None, f.decode_graph_gb),
        ("graphs_captured", "prefill CUDA graphs (Capture prefill ... end mem usage, GB)",
         _gb(prefill.bytes) if prefill else None, f.prefill_graph_gb),
        ("graphs_captured", "free after startup (available_gpu_mem, GB)", _gb(graphs_room), f.available_gpu_mem_gb),
        ("graphs_captured", "max_total_num_tokens", p.max_total_num_tokens, f.max_total_num_tokens),
        ("graphs_captured", "max_running_requests", p.max_running_requests, f.max_running_requests),
        ("graphs_captured", "context_len", p.resolved.context_length, f.context_len),
        ("graphs_captured", "chunked_prefill_size", p.resolved.chunked_prefill_size, f.chunked_prefill_size),
        ("(verdict)", "verdict", planned_verdict, logged_verdict),
    ]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _diff(planned: Any, logged: Any) -> str:
    if isinstance(planned, bool) or isinstance(logged, bool):
        return ""
    if isinstance(planned, (int, float)) and isinstance(logged, (int, float)):
        d = logged - planned
        if isinstance(planned, int) and isinstance(logged, int):
            pct = f" ({100 * d / planned:+.2f}%)" if planned else ""
            return f"{d:+,}{pct}"
        return f"{d:+.2f}"
    if planned is not None and logged is not None:
        return "same" if planned == logged else "differs"
    return ""


def format_log_rows(rows: Sequence[tuple[str, str, Any, Any]]) -> str:
    """The planned-vs-logged table as watch prints it (rows where the log said nothing are left out)."""
    shown = [r for r in rows if r[3] is not None]
    if not shown:
        return "Planned vs logged: the log stated none of SGLang's memory figures"
    cells = [(ph, fig, _cell(pl), _cell(lg), _diff(pl, lg)) for ph, fig, pl, lg in shown]
    heads = ("phase", "figure (SGLang's GB = GiB)", "planned", "logged", "logged - planned")
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def fmt(c: Sequence[str]) -> str:
        return "  ".join(x.rjust(w) if i in (2, 3, 4) else x.ljust(w) for i, (x, w) in enumerate(zip(c, widths))).rstrip()

    return "\n".join(["Planned vs logged (the figures SGLang prints at each phase):", fmt(heads),
                      fmt(["-" * w for w in widths]), *(fmt(c) for c in cells)])


def level_phases_from(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """The ``level_phases`` a timeline's ``plan`` record carries (empty without one)."""
    for r in records:
        if r.get("type") == "plan" and isinstance(r.get("level_phases"), dict):
            return {str(k): (str(v[0]), str(v[1])) for k, v in r["level_phases"].items()
                    if isinstance(v, (list, tuple)) and len(v) == 2}
    return {}
