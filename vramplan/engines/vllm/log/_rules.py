"""The line recognisers: one family per vLLM message (all eras), each with the literal anchors that
gate it and a handler that reads the numbers.

Every format string below is quoted from vLLM (v0.19.0/v0.26.0/v0.33.0 wheels, or the logs in
data/public for older eras) or vllm-ascend (0.23.0.post1 worker/worker.py, model_runner_v1.py,
platform.py); the comment on each handler names the source.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._args import parse_command, parse_config_dump, parse_pylike_dict

if TYPE_CHECKING:  # pragma: no cover
    from ._reader import LogReader, _Line

__all__ = ["FAMILIES", "WRAPPABLE", "GATE_RX", "GATE_LOWER", "GATE_FAMILIES", "family_complete"]

GiB_BYTES = 1 << 30
N = r"-?\d{1,12}(?:\.\d{1,12})?"  # a number as printed (no exponent: vLLM never prints one)
U = r"\d{1,12}(?:\.\d{1,12})?"

_rx_cache: dict[str, re.Pattern] = {}


def _rx(p: str, flags: int = 0) -> re.Pattern:
    key = f"{flags}:{p}"
    r = _rx_cache.get(key)
    if r is None:
        r = _rx_cache[key] = re.compile(p, flags)
    return r


def _f(s: str | None) -> float | None:
    if s is None:
        return None
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def _i(s: str | None) -> int | None:
    if s is None:
        return None
    s = s.replace(",", "").replace(" ", "")
    if len(s) > 18:
        return None
    try:
        return int(s)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# model loading


def h_weights_v0(r: LogReader, ln: _Line) -> None:
    # V0 vllm/worker/model_runner.py (<= v0.7): "Loading model weights took %.4f GB"; v0.3: "... %.2f MB";
    # early V1 gpu_model_runner.py (v0.7); vllm-ascend worker/model_runner_v1.py:load_model (same text).
    m = _rx(rf"Loading model weights took ({N}) ?(GB|GiB|MB|MiB)\b").search(ln.text)
    if not m:
        return
    v = _f(m.group(1))
    vals: dict = {}
    if m.group(2) in ("MB", "MiB"):
        vals["weights_mb"] = v
        v = v / 1024 if v is not None else None
    vals["weights_gib"] = v
    r.put(ln, "weights_gib", v, 3)
    r.emit(ln, "weights", vals, phase="weights_loaded")


def h_weights_v1(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:load_model "Model loading took %s GiB memory and %.6f seconds";
    # v0.26.0 vllm/v1/worker/gpu/model_runner.py:load_model (V2 runner) "Model loading took %s GiB and %.6f seconds";
    # older: "Model loading took %.4f GiB and %.6f seconds" (V1 <= v0.10, V0 >= v0.7), "... %.4f GB and" (V0).
    m = _rx(rf"Model loading took ({N})(?: ?(GiB|GB))?( memory)?(?: and ({U}) ?s(?:econds)?)?").search(ln.text)
    if not m:
        return
    num, unit, memory, secs = m.groups()
    v = _f(num)
    decimals = len(num.partition(".")[2])
    if unit is None and secs is None and m.end() < len(ln.text) and not ln.text[m.end():].strip().startswith((".", ",")):
        return  # 'Model loading took 29.09' followed by something else: not this message
    r.put(ln, "weights_gib", v, 3)
    vals: dict = {"weights_gib": v}
    if secs:
        vals["model_load_s"] = _f(secs)
        r.timing("model_load_s", _f(secs))
    src = ln.src or ""
    if "gpu/model_runner" in src:
        r.runner_marker("v2")
    elif "gpu_model_runner" in src:
        r.runner_marker("v1")
    if memory:
        r.era_marker("v1-pr21429")
    elif unit == "GiB" and secs and decimals <= 2:
        r.runner_marker("v2")  # format_gib prints <= 2 decimals; only the v0.26 V2 runner drops 'memory'
    r.emit(ln, "weights", vals, phase="weights_loaded")


def h_weights_hpu(r: LogReader, ln: _Line) -> None:
    # HabanaAI vllm-fork hpu_model_runner.py: "Pre-loading model weights on hpu:0 took 79.41 GiB of device
    # memory (79.41 GiB/94.62 GiB used) and 4.706 GiB of host memory (...)"
    m = _rx(rf"Pre-loading model weights on (\S+) took ({N}) GiB of device memory \(({U}) GiB/({U}) GiB used\)").search(ln.text)
    if not m:
        return
    v, total = _f(m.group(2)), _f(m.group(4))
    r.put(ln, "weights_gib", v, 3)
    r.put(ln, "total_gib", total, 2)
    r.platform_hint("hpu", 3)
    r.era_marker("fork")
    r.emit(ln, "weights", {"weights_gib": v, "total_gib": total, "device": m.group(1)}, phase="weights_loaded")


def h_weights_peak(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/model_executor/model_loader/base_loader.py (DEBUG) "Peak GPU memory after loading weights: %s GiB"
    m = _rx(rf"Peak GPU memory after loading weights: ({N}) ?GiB").search(ln.text)
    if m:
        r.extra(ln, "weights_load_peak_gib", _f(m.group(1)))
        r.emit(ln, "weights", {"weights_load_peak_gib": _f(m.group(1))})


def h_load_time(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/model_executor/model_loader/default_loader.py "Loading weights took %.2f seconds"
    m = _rx(rf"Loading weights took ({U}) ?s").search(ln.text)
    if m:
        r.timing("weights_load_s", _f(m.group(1)))


# --------------------------------------------------------------------------------------------------
# profiling summaries


_PR9352_MAP = {
    "total_gpu_memory": "total_gib", "non_torch_memory": "non_torch_gib", "kv_cache_size": "kv_cache_gib",
    "gpu_memory_utilization": "gpu_memory_utilization",
}


def h_prof_results(r: LogReader, ln: _Line) -> None:
    # V0 PR #9352 vllm/worker/worker.py: "Memory profiling results: total_gpu_memory=%.2fGiB
    # initial_memory_usage=%.2fGiB peak_torch_memory=%.2fGiB memory_usage_post_profile=%.2fGib
    # non_torch_memory=%.2fGiB kv_cache_size=%.2fGiB gpu_memory_utilization=%.2f" (and the comma +
    # duration variant). PR #10511's first form printed a table: "Memory profiling results:" then rows.
    text = ln.text
    i = text.find("Memory profiling results")
    if i < 0:
        return
    after = text[i + len("Memory profiling results"):].lstrip(" :").strip()
    if not after:
        r.start_table(ln)
        return
    vals: dict = {}
    for key, num in _rx(rf"(\w+)=({N})").findall(after):
        v = _f(num)
        if key == "duration":
            r.timing("profile_s", v)
        elif key in _PR9352_MAP:
            r.put(ln, _PR9352_MAP[key], v, 3)
        else:
            r.extra(ln, f"{key}_gib", v)
        vals[key] = v
    if vals:
        r.era_marker("v0-pr9352")
        r.emit(ln, "memory_profile", vals, phase="profiling_done")


TABLE_ROW = re.compile(r"([A-Za-z_][A-Za-z_ ]{0,60}?)(?:\s{2,}|\t+|\s*$)(-?\d{1,12}(?:\.\d{1,12})?)?\s*(GiB|Gib|GB|seconds|s)?\s*$")
TABLE_KEYS = {
    "duration": "profile_s", "total_gpu_memory": "total_gib", "gpu_memory_utilization": "gpu_memory_utilization",
    "the current vllm instance can use": "requested_gib", "model weights take": "profile_weights_gib",
    "non_torch_memory": "non_torch_gib", "pytorch activation peak memory": "torch_peak_increase_gib",
    "available_kv_cache_memory": "kv_cache_gib",
}


def h_prof_v0(r: LogReader, ln: _Line) -> None:
    # V0 PR #10511 / #11809 / #12126 vllm/worker/worker.py:determine_num_available_blocks:
    #   "the current vLLM instance can use total_gpu_memory (%.2fGiB) x gpu_memory_utilization (%.2f) = %.2fGiB"
    #   "model weights take %.2fGiB; non_torch_memory takes %.2fGiB; PyTorch activation peak memory takes
    #    %.2fGiB; the rest of the memory reserved for KV Cache is %.2fGiB."
    # Read piece by piece (case-insensitive, '_'/'-'/' ' alike): excerpts cut, wrap and restate it.
    t = ln.text
    vals: dict = {}
    m = _rx(rf"total_gpu_memory \(({U}) ?GiB\) x gpu_memory_utilization \(({U})\) = ({N}) ?GiB", re.I).search(t)
    if m:
        vals.update(total_gib=_f(m.group(1)), gpu_memory_utilization=_f(m.group(2)), requested_gib=_f(m.group(3)))
        r.put(ln, "total_gib", vals["total_gib"], 3)
        r.put(ln, "gpu_memory_utilization", vals["gpu_memory_utilization"], 3)
        r.put(ln, "requested_gib", vals["requested_gib"], 3)
    for pat, name in (
        (rf"model weights take\s+({N}) ?Gi", "profile_weights_gib"),
        (rf"non[_ -]torch[_ ]memory\s+takes\s+({N}) ?Gi", "non_torch_gib"),
        (rf"activation peak memory\s+takes\s+({N}) ?Gi", "torch_peak_increase_gib"),
        (rf"reserved for KV Cache is\s+({N}) ?Gi", "kv_cache_gib"),
    ):
        m = _rx(pat, re.I).search(t)
        if m:
            vals[name] = _f(m.group(1))
            r.put(ln, name, vals[name], 3)
    if vals:
        r.era_marker("v0-pr10511")
        r.emit(ln, "memory_profile", vals, phase="profiling_done" if "kv_cache_gib" in vals else None)


def h_prof_time(r: LogReader, ln: _Line) -> None:
    # "Memory profiling takes %.2f seconds" (V0 PR #10511 and the V1 repr's first sentence)
    m = _rx(rf"Memory profiling takes ({U}) seconds").search(ln.text)
    if m:
        r.timing("profile_s", _f(m.group(1)))


def h_prof_v1(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/utils/mem_utils.py:MemoryProfilingResult.__repr__ (DEBUG in gpu_worker):
    #   "Memory profiling takes %.2f seconds. Total non KV cache memory: {x}GiB; torch peak memory increase:
    #    {x}GiB; non-torch forward increase memory: {x}GiB; weights memory: {x}GiB."
    # v0.33.0 same repr with "total consumed (from mem_get_info): {x}GiB" in place of the non-torch part.
    t = ln.text
    vals: dict = {}
    for pat, name in (
        (rf"Total non KV cache memory: ({N}) ?GiB", "non_kv_total_gib"),
        (rf"torch peak memory increase: ({N}) ?GiB", "torch_peak_increase_gib"),
        (rf"non-torch forward increase memory: ({N}) ?GiB", "non_torch_gib"),
        (rf"total consumed \(from mem_get_info\): ({N}) ?GiB", "total_consumed_gib"),
        (rf"weights memory: ({N}) ?GiB", "profile_weights_gib"),
    ):
        m = _rx(pat).search(t)
        if m:
            vals[name] = _f(m.group(1))
            r.put(ln, name, vals[name], 3)
    if vals:
        r.era_marker("v1-pr19312")
        if "total_consumed_gib" in vals:
            r.era_marker("v1-v0.33")
        r.emit(ln, "memory_profile", vals)


def h_init_free(r: LogReader, ln: _Line) -> None:
    t = ln.text
    # vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:determine_available_memory (assert):
    # "Error in memory profiling. Initial free memory {X} GiB, current free memory {Y} GiB. This happens when ..."
    m = _rx(rf"Error in memory profiling\. Initial free memory ({N}) ?GiB, current free memory ({N}) ?GiB").search(t)
    if m:
        r.put(ln, "initial_free_gib", _f(m.group(1)), 2)
        r.put(ln, "free_after_profile_gib", _f(m.group(2)), 2)
        r.error(ln, "startup_failed", "memory_profiling_inconsistent", "profiling", 3, start="Error in memory profiling")
        return
    vals: dict = {}
    # v0.26 gpu_worker.py (DEBUG) "Initial free memory: %s GiB; Requested memory: %f (util), %s GiB";
    # PR #21429 form "%.2f GiB; Requested memory: %.2f (util), %.2f GiB"; PR #19312 form
    # "Initial free memory: %.2f GiB, free memory: %.2f GiB, requested GPU memory: %.2f GiB".
    m = _rx(rf"Initial free memory:? ({U}) ?GiB").search(t)
    if m:
        vals["initial_free_gib"] = _f(m.group(1))
    m = _rx(rf"Requested memory: ({U}) \(util\), ({U}) ?GiB").search(t)
    if m:
        util = m.group(1)
        vals["gpu_memory_utilization"] = _f(util)
        vals["requested_gib"] = _f(m.group(2))
        r.era_marker("v1-v0.26" if len(util.partition(".")[2]) >= 4 else "v1-pr21429")
    m = _rx(rf"free memory: ({U}) ?GiB, requested GPU memory: ({U}) ?GiB").search(t)
    if m:
        vals["free_after_profile_gib"] = _f(m.group(1))
        vals["requested_gib"] = _f(m.group(2))
        r.era_marker("v1-pr19312")
    # v0.26 gpu_worker.py (kv_cache_memory_bytes path) "Initial free memory {X} GiB, reserved {Y} GiB memory for
    # KV Cache as specified by kv_cache_memory_bytes config and skipped memory profiling. ..."; vllm-ascend
    # worker.py "Initial free memory %.2f GiB, reserved %.2f GiB for KV Cache as specified by kv_cache_memory_bytes, ..."
    m = _rx(rf"reserved ({U}) ?GiB (?:memory )?for KV Cache as specified by kv_cache_memory_bytes").search(t)
    for k, v in vals.items():
        r.put(ln, k, v, 3)
    if m:
        kv = _f(m.group(1))
        vals["kv_cache_gib"] = kv
        r.put(ln, "kv_cache_gib", kv, 3)
        r.extra(ln, "kv_cache_memory_bytes_reserved_gib", kv)
        r.emit(ln, "kv_cache_memory", vals, phase="profiling_done")
    elif vals:
        r.emit(ln, "requested_memory", vals)


def h_free_after(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py (DEBUG) "Free memory after profiling: %s GiB (total), %s GiB (within requested)"
    m = _rx(rf"Free memory after profiling: ({N}) ?GiB \(total\), ({N}) ?GiB \(within requested\)").search(ln.text)
    if m:
        a, b = _f(m.group(1)), _f(m.group(2))
        r.put(ln, "free_after_profile_gib", a, 3)
        r.put(ln, "free_after_profile_within_requested_gib", b, 3)
        r.era_marker("v1-pr21429")
        r.emit(ln, "free_after_profile", {"free_after_profile_gib": a, "free_after_profile_within_requested_gib": b})


def h_snapshot(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py (DEBUG) "worker init memory snapshot: %r", repr from vllm/utils/mem_utils.py:
    # MemorySnapshot.__repr__ "torch_peak=..GiB, [torch_allocated=..GiB (v0.33),] free_memory=..GiB,
    # total_memory=..GiB, {device}_memory=..GiB, torch_memory=..GiB, non_torch_memory=..GiB, timestamp=.."
    vals: dict = {}
    for key, num in _rx(rf"(\w+)=({N}) ?GiB").findall(ln.text):
        v = _f(num)
        vals[key] = v
        if key == "free_memory":
            r.put(ln, "initial_free_gib", v, 3)
        elif key == "total_memory":
            r.put(ln, "total_gib", v, 3)
        else:
            r.extra(ln, f"init_{key}_gib", v)
        if key == "torch_allocated":
            r.era_marker("v1-v0.33")
        if key == "npu_memory":
            r.platform_hint("ascend", 2)
    if vals:
        r.emit(ln, "memory_snapshot", vals, phase="device_ready")


def h_requested(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py (DEBUG) "worker requested memory: %sGiB"
    m = _rx(rf"worker requested memory: ({U}) ?GiB").search(ln.text)
    if m:
        r.put(ln, "requested_gib", _f(m.group(1)), 3)
        r.emit(ln, "requested_memory", {"requested_gib": _f(m.group(1))})


def h_avail_kv(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:determine_available_memory "Available KV cache memory: %s GiB"
    # (PR #19312 on: "%.2f GiB"); vllm-ascend worker.py same text.
    m = _rx(rf"Available KV cache memory: ({N}) ?GiB").search(ln.text)
    if m:
        v = _f(m.group(1))
        r.put(ln, "kv_cache_gib", v, 3)
        r.era_marker("v1-pr19312")
        r.emit(ln, "kv_cache_memory", {"kv_cache_gib": v}, phase="profiling_done")


def h_ascend_avail(r: LogReader, ln: _Line) -> None:
    # vllm-ascend worker_v1.py (Mar 2025 - Feb 2026) f-string "Available memory: {usable}, total memory: {total}"
    # (raw bytes); the seed notes also quote "Available memory: 43.40 GiB, total memory: 60.96 GiB" and
    # "Available memory: 43.33 GiB, requested memory: 57.91 GiB". Lower priority than the upstream lines.
    t = ln.text
    vals: dict = {}
    m = _rx(r"Available memory: (\d{4,20}), total memory: (\d{4,20})").search(t)
    if m:
        vals["kv_cache_gib"] = int(m.group(1)) / GiB_BYTES
        vals["total_gib"] = int(m.group(2)) / GiB_BYTES
        vals["kv_cache_bytes"] = int(m.group(1))
        vals["total_bytes"] = int(m.group(2))
    else:
        m = _rx(rf"Available memory: ({N}) ?GiB, (total|requested) memory: ({U}) ?GiB").search(t)
        if not m:
            return
        vals["kv_cache_gib"] = _f(m.group(1))
        vals["total_gib" if m.group(2) == "total" else "requested_gib"] = _f(m.group(3))
    for k in ("kv_cache_gib", "total_gib", "requested_gib"):
        if k in vals:
            r.put(ln, k, vals[k], 1)
    r.platform_hint("ascend", 1)
    r.era_marker("ascend")
    r.emit(ln, "kv_cache_memory", vals, phase="profiling_done")


def h_npu_debug(r: LogReader, ln: _Line) -> None:
    # vllm-ascend DEBUG prints quoted in the seed notes (001): "torch_peak after profiling is 13.11 G",
    # "non_torch_memory before init HCCL is 0.35 G", "peak_activation_memory new is 4.11 G".
    vals: dict = {}
    for name, when, num in _rx(
        rf"\b(torch_memory|torch_peak|non_torch_memory|peak_memory|peak_activation_memory) ((?:before|after|new)[^\n]{{0,60}}?) is ({N}) ?G\b"
    ).findall(ln.text):
        key = f"{name} {when.strip()}"
        vals[key] = _f(num)
        r.extra(ln, key, _f(num))
    if vals:
        r.era_marker("ascend")
        r.platform_hint("ascend", 1)
        phase = "device_ready" if any("after init HCCL" in k for k in vals) else None
        r.emit(ln, "npu_memory_debug", vals, phase=phase)


# --------------------------------------------------------------------------------------------------
# KV sizing


def h_kv_tokens(r: LogReader, ln: _Line) -> None:
    # v0.26 vllm/v1/core/kv_cache_utils.py:get_kv_cache_configs "GPU KV cache size: %s tokens" (commas);
    # v0.33 kv_cache_utils.py "%s KV cache size: %s tokens, Maximum concurrency for %s tokens per request: %.2fx"
    m = _rx(r"(?:(GPU \+ host|[A-Z]{2,5}) )?KV cache size: ([\d,]{1,24}) tokens").search(ln.text)
    if not m:
        return
    n = _i(m.group(2))
    r.put(ln, "kv_cache_tokens", n, 3)
    r.era_marker("v1-pre-pr19312")
    if "Maximum concurrency" in ln.text[m.end():m.end() + 40]:
        r.era_marker("v1-v0.33")
    r.emit(ln, "kv_cache_tokens", {"kv_cache_tokens": n}, phase="kv_allocated")


def h_concurrency(r: LogReader, ln: _Line) -> None:
    # "Maximum concurrency for %s tokens per request: %.2fx" (V1 kv_cache_utils.py; V0 executor_base.py
    # with %d); v0.33 HiSparse "HiSparse steady-state maximum concurrency for %s tokens per request: %.2fx"
    t = ln.text
    m = _rx(rf"steady-state maximum concurrency for ([\d,]{{1,24}}) tokens per request: ({U})x").search(t)
    if m:
        r.extra(ln, "hisparse_max_concurrency", _f(m.group(2)))
        return
    m = _rx(rf"Maximum concurrency for ([\d,]{{1,24}})\s+tokens\s+per\s+request:\s*({U})x").search(t)
    if m:
        n, x = _i(m.group(1)), _f(m.group(2))
    else:
        m = _rx(rf"Maximum concurrency\b[^\d\n]{{0,40}}?({U})x").search(t)  # elided: 'Maximum concurrency ... 0.89x'
        if not m:
            return
        n, x = None, _f(m.group(1))
    r.put(ln, "max_concurrency", x, 3)
    vals: dict = {"max_concurrency": x}
    if n is not None:
        r.put(ln, "max_concurrency_len", n, 3)
        vals["max_concurrency_len"] = n
    r.emit(ln, "max_concurrency", vals, phase="kv_allocated")


_BLOCK_DEV_PLATFORM = {"rocm": "rocm", "npu": "ascend", "hpu": "hpu", "xpu": "xpu", "tpu": "tpu", "cuda": "cuda"}


def h_blocks(r: LogReader, ln: _Line) -> None:
    # V0 gpu_executor.py / distributed_gpu_executor.py / executor_base.py "# GPU blocks: %d, # CPU blocks: %d",
    # later "# %s blocks: %d, # CPU blocks: %d" with the device name (CUDA, cuda, rocm); V1 v0.7
    # kv_cache_utils.py "# GPU blocks: %d".
    for m in _rx(r"(?:#\s*)?\b([A-Za-z]{2,10}) blocks: (\d{1,12})(?:, #? ?CPU blocks: (\d{1,12}))?").finditer(ln.text):
        dev = m.group(1)
        if dev.upper() == "CPU":
            continue
        n, cpu = _i(m.group(2)), _i(m.group(3))
        r.put(ln, "num_gpu_blocks", n, 3)
        vals: dict = {"num_gpu_blocks": n, "device": dev}
        if cpu is not None:
            r.put(ln, "num_cpu_blocks", cpu, 3)
            vals["num_cpu_blocks"] = cpu
            r.era_marker("v0-early")
        elif ln.src and "kv_cache_utils" in ln.src:
            r.era_marker("v1-pre-pr19312")
        plat = _BLOCK_DEV_PLATFORM.get(dev.lower())
        if plat:
            r.platform_hint(plat, 2 if plat != "cuda" else 1)
        r.emit(ln, "num_gpu_blocks", vals, phase="kv_allocated")
        return


def h_cache_info(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/v1/metrics/loggers.py "Engine %03d: vllm cache_config_info with initialization after
    # num_gpu_blocks is: %d"; instrumented logs print "cache_config.num_gpu_blocks=N, block_size=B".
    t = ln.text
    if "Overriding" in t:
        return
    m = _rx(r"num_gpu_blocks(?: is:|=)\s*(\d{1,12})\b(?! with)").search(t)
    if not m:
        return
    n = _i(m.group(1))
    r.put(ln, "num_gpu_blocks", n, 2)
    vals: dict = {"num_gpu_blocks": n}
    b = _rx(r"\bblock_size=(\d{1,7})\b").search(t)
    if b:
        r.put(ln, "block_size", _i(b.group(1)), 2)
        vals["block_size"] = _i(b.group(1))
    r.emit(ln, "num_gpu_blocks", vals)


def h_override(r: LogReader, ln: _Line) -> None:
    # v0.26 kv_cache_utils.py "Overriding num_gpu_blocks=%d with num_gpu_blocks_override=%d". v0.18+ also
    # prints it for the minimal KV cache of CUDA-graph profiling, before 'Available KV cache memory'.
    m = _rx(r"Overriding num_gpu_blocks=(\d{1,12}) with num_gpu_blocks_override=(\d{1,12})").search(ln.text)
    if not m:
        return
    a, b = _i(m.group(1)), _i(m.group(2))
    if r.has(ln, "kv_cache_gib"):
        r.put(ln, "num_gpu_blocks", b, 3)
        r.extra(ln, "num_gpu_blocks_profiled", a)
        r.set_arg("num_gpu_blocks_override", b, 1)
        r.emit(ln, "num_gpu_blocks", {"num_gpu_blocks": b, "num_gpu_blocks_profiled": a})
    else:
        r.extra(ln, "cudagraph_profiling_num_blocks", b)


def h_block_size(r: LogReader, ln: _Line) -> None:
    # vLLM v0.26.0 vllm/platforms/interface.py "Setting kv cache block size to %d for %s backend."
    # (v0.33: "backend(s)."); v0.26 vllm/model_executor/models/config.py "Setting attention block size to
    # %d tokens to ensure that attention page size is >= mamba page size."; "Block size is set to N".
    t = ln.text
    m = (_rx(r"Setting attention block size to (\d{1,7}) tokens").search(t)
         or _rx(r"Setting kv cache block size to (\d{1,7})").search(t)
         or _rx(r"Block size is set to (\d{1,7})\b").search(t))
    if m:
        n = _i(m.group(1))
        r.put(ln, "block_size", n, 3)
        r.emit(ln, "block_size", {"block_size": n})


# --------------------------------------------------------------------------------------------------
# CUDA graphs


def h_graph_done(r: LogReader, ln: _Line) -> None:
    # "Graph capturing finished in %.0f secs, took %.2f GiB" (V0 model_runner.py, v0.26 gpu_model_runner.py and
    # gpu/model_runner.py; vllm-ascend reuses it); V0 <= v0.6.2 "Graph capturing finished in %.0f secs.";
    # v0.33 vllm/v1/worker/mm_encoder_model_runner.py "Encoder graph capturing finished in %.0f secs, took %.2f GiB (%d graphs)"
    m = _rx(rf"(Encoder )?[Gg]raph capturing finished in ({U}) secs?(?:, took ({N}) ?GiB)?").search(ln.text)
    if not m:
        return
    secs, gib = _f(m.group(2)), _f(m.group(3))
    if m.group(1):
        r.extra(ln, "encoder_cudagraph_gib", gib)
        r.emit(ln, "cudagraph", {"encoder_cudagraph_gib": gib, "seconds": secs})
        return
    r.timing("graph_capture_s", secs)
    vals: dict = {"graph_capture_s": secs}
    if gib is not None:
        r.put(ln, "cudagraph_actual_gib", gib, 3)
        vals["cudagraph_actual_gib"] = gib
    r.set_phase("warmup")
    r.emit(ln, "cudagraph", vals, phase="graphs_captured")


def h_cg_est(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_model_runner.py:profile_cudagraph_memory "Estimated CUDA graph memory: %.2f GiB total";
    # DEBUG "Estimated %s CUDA graph memory: %.2f MiB first-capture + (%d-1) × %.2f MiB per-graph";
    # "Estimated encoder CUDA graph memory: %.2f MiB for %d graphs"
    t = ln.text
    m = _rx(rf"Estimated CUDA graph memory: ({N}) ?GiB total").search(t)
    if m:
        v = _f(m.group(1))
        r.put(ln, "cudagraph_estimate_gib", v, 3)
        r.era_marker("v1-v0.26")
        r.emit(ln, "cudagraph_estimate", {"cudagraph_estimate_gib": v})
        return
    m = _rx(rf"Estimated (\w+) CUDA graph memory: ({N}) MiB first-capture \+ \((\d{{1,6}})-1\) \S ({N}) MiB per-graph").search(t)
    if m:
        mode = m.group(1)
        vals = {f"{mode}_first_mib": _f(m.group(2)), f"{mode}_num_graphs": _i(m.group(3)), f"{mode}_per_graph_mib": _f(m.group(4))}
        for k, v in vals.items():
            r.extra(ln, f"cudagraph_estimate_{k}", v)
        r.emit(ln, "cudagraph_estimate", vals)
        return
    m = _rx(rf"Estimated encoder CUDA graph memory: ({N}) MiB for (\d{{1,6}}) graphs").search(t)
    if m:
        r.extra(ln, "encoder_cudagraph_estimate_mib", _f(m.group(1)))
        r.emit(ln, "cudagraph_estimate", {"encoder_cudagraph_estimate_mib": _f(m.group(1)), "num_graphs": _i(m.group(2))})


def h_cg_pool(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py:compile_or_warm_up_model "CUDA graph pool memory: %s GiB (actual), %s GiB (estimated),
    # difference: %s GiB (%.1f%%)."
    m = _rx(rf"CUDA graph pool memory: ({N}) ?GiB \(actual\), ({N}) ?GiB \(estimated\)").search(ln.text)
    if m:
        a, e = _f(m.group(1)), _f(m.group(2))
        r.put(ln, "cudagraph_actual_gib", a, 2)
        r.put(ln, "cudagraph_estimate_gib", e, 2)
        r.era_marker("v1-v0.26")
        r.emit(ln, "cudagraph", {"cudagraph_actual_gib": a, "cudagraph_estimate_gib": e})


def h_cg_profiling(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_model_runner.py "Profiling CUDA graph memory: %s" ('PIECEWISE=51 (largest=512), FULL=35 (largest=256)')
    vals: dict = {}
    for mode, n, largest in _rx(r"(\w+)=(\d{1,6}) \(largest=(\d{1,7})\)").findall(ln.text):
        vals[f"{mode}_num_graphs"] = _i(n)
        vals[f"{mode}_largest"] = _i(largest)
    if vals:
        r.extra(ln, "cudagraph_profile", vals)
        r.emit(ln, "cudagraph_estimate", vals)


def h_cg_flag(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py: "CUDA graph memory profiling is enabled (default since v0.21.0). The current
    # --gpu-memory-utilization=%.4f is equivalent to --gpu-memory-utilization=%.4f without CUDA graph memory
    # profiling. To maintain ..., increase --gpu-memory-utilization to %.4f. ..." / "... is disabled
    # (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0). ... increasing --gpu-memory-utilization from %.4f to %.4f.";
    # v0.19: "CUDA graph memory profiling is enabled (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1). This will become
    # the default in v0.19. ..."; v0.18: "In v0.19, CUDA graph memory profiling will be enabled by default ...
    # increase --gpu-memory-utilization from %.4f to %.4f to maintain the same effective KV cache size."
    t = ln.text
    vals: dict = {}
    if "profiling is enabled" in t:
        r.estimate_applied(True)
        vals["estimate_applied"] = True
        m = _rx(rf"--gpu-memory-utilization=({U}) is equivalent to --gpu-memory-utilization=({U})").search(t)
        if m:
            vals["gpu_memory_utilization"] = _f(m.group(1))
            vals["equivalent_without_estimate"] = _f(m.group(2))
        m = _rx(rf"increase --gpu-memory-utilization to ({U})").search(t)
        if m:
            vals["suggested_gpu_memory_utilization"] = _f(m.group(1))
    elif "profiling is disabled" in t or "will be enabled by default" in t:
        r.estimate_applied(False)
        vals["estimate_applied"] = False
        m = _rx(rf"from ({U}) to ({U})").search(t)
        if m:
            vals["gpu_memory_utilization"] = _f(m.group(1))
            vals["suggested_gpu_memory_utilization"] = _f(m.group(2))
    else:
        return
    r.era_marker("v1-v0.26")
    r.warn(ln, vals)


def h_capture_start(r: LogReader, ln: _Line) -> None:
    # tqdm "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): ..." (V1); V0 "Capturing the model for CUDA graphs."
    r.set_phase("graph_capture")


# --------------------------------------------------------------------------------------------------
# the --kv-cache-memory suggestion line (PR #21489)


def h_suggest(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py:compile_or_warm_up_model: "Free memory on device ({free}/{total} GiB) on startup. Desired
    # GPU memory utilization is ({util}, {requested} GiB). Actual usage is {w} GiB for weight, {a} GiB for peak
    # activation, {n} GiB for non-torch memory, and {g} GiB for CUDAGraph memory. Replace gpu_memory_utilization
    # config with `--kv-cache-memory={b}` ({x} GiB) to fit into requested memory, or `--kv-cache-memory={b}`
    # ({x} GiB) to fully utilize gpu memory. Current kv cache memory in use is {kv} GiB."
    # v0.33: "Actual usage is {c} GiB for consumed memory (weights + non-torch), {a} GiB for peak activation, and
    # {g} GiB for CUDAGraph memory."; ~v0.10: "... Current kv cache memory in use is {bytes} bytes.";
    # vllm-ascend 0.23 worker.py: "Actual usage: {w} GiB for weights, {a} GiB for peak activation, {n} GiB for
    # non-torch memory, {g} GiB for NPU graph memory. ... Current KV cache memory: {kv} GiB."
    t = ln.text
    vals: dict = {}
    m = _rx(rf"Free memory on device \(({U})/({U}) ?GiB\) on startup\. Desired GPU memory utilization is \(({U}), ({U}) ?GiB\)").search(t)
    if m:
        vals.update(initial_free_gib=_f(m.group(1)), total_gib=_f(m.group(2)),
                    gpu_memory_utilization=_f(m.group(3)), requested_gib=_f(m.group(4)))
    for pat, name in (
        (rf"({N}) ?GiB for weights?\b", "profile_weights_gib"),
        (rf"({N}) ?GiB for peak activation", "peak_activation_gib"),
        (rf"({N}) ?GiB for non-torch memory", "non_torch_gib"),
        (rf"({N}) ?GiB for consumed memory", "total_consumed_gib"),
        (rf"({N}) ?GiB for (?:CUDAGraph|NPU graph) memory", "cudagraph_actual_gib"),
        (rf"Current kv cache memory in use is ({N}) ?GiB", "kv_cache_gib"),
        (rf"Current KV cache memory: ({N}) ?GiB", "kv_cache_gib"),
    ):
        mm = _rx(pat).search(t)
        if mm:
            vals[name] = _f(mm.group(1))
    mm = _rx(r"Current kv cache memory in use is (\d{1,20}) bytes").search(t)
    if mm:
        vals["kv_cache_gib"] = int(mm.group(1)) / GiB_BYTES
        vals["kv_cache_bytes"] = int(mm.group(1))
    mm = _rx(r"--kv-cache-memory=(-?\d{1,20})`?(?: \([^)]{0,40}\))? to fit into requested").search(t)
    if mm:
        vals["suggested_kv_cache_memory_bytes"] = int(mm.group(1))
    mm = _rx(r"--kv-cache-memory=(-?\d{1,20})`?(?: \([^)]{0,40}\))? to fully").search(t)
    if mm:
        vals["suggested_kv_cache_memory_bytes_gpu_limit"] = int(mm.group(1))
    if not vals:
        return
    if "NPU graph memory" in t:
        r.platform_hint("ascend", 2)
        r.era_marker("ascend")
    if "total_consumed_gib" in vals:
        r.era_marker("v1-v0.33")
    r.era_marker("v1-pr21429")
    for k, v in vals.items():
        if k in ("kv_cache_bytes",):
            continue
        # the same variables as the dedicated lines; they fill gaps but never replace those
        prio = 2 if k in ("peak_activation_gib", "suggested_kv_cache_memory_bytes", "suggested_kv_cache_memory_bytes_gpu_limit") else 1
        r.put(ln, k, v, prio)
    r.emit(ln, "kv_cache_suggestion", vals)


# --------------------------------------------------------------------------------------------------
# failures


def h_free_err(r: LogReader, ln: _Line) -> None:
    # v0.26 vllm/v1/worker/utils.py:request_memory "Free memory on device {dev} ({free}/{total} GiB) on startup is
    # less than desired GPU memory utilization ({util}, {requested} GiB). Decrease GPU memory utilization or reduce
    # GPU memory used by other processes."; older: no device; some: no 'on startup'. v0.33 adds two
    # external-weights forms; v0.26 cpu_worker.py: "Available memory on node N (a/b GiB) on startup is less than
    # desired CPU memory utilization (u, r GiB). ..."
    t = ln.text
    sub = None
    m = _rx(rf"Free memory on device ?(\S{{0,40}}?) ?\(({U})/({U}) ?GiB\) (?:on startup )?is less than desired GPU memory utilization \(({U}), ({U}) ?GiB\)").search(t)
    start = "Free memory on device"
    if not m:
        m = _rx(rf"Externally held weights on device ?(\S{{0,40}}?) ?\(({U})/({U}) ?GiB\) exceed the desired GPU memory utilization \(({U}), ({U}) ?GiB\)").search(t)
        sub, start = "external_weights_exceed_budget", "Externally held weights"
    if not m:
        m = _rx(rf"Free memory on device ?(\S{{0,40}}?) ?\(({U})/({U}) ?GiB\) on startup is less than the engine's budget after excluding external process's weights \(({U}), ({U}) ?GiB\)").search(t)
        sub, start = "below_engine_budget_after_external_weights", "Free memory on device"
    if not m:
        m = _rx(rf"Available memory on node (\d{{1,4}}) \(({U})/({U}) ?GiB\) on startup is less than desired CPU memory utilization \(({U}), ({U}) ?GiB\)").search(t)
        sub, start = "cpu_memory_below_requested", "Available memory on node"
        if m:
            r.platform_hint("cpu", 3)
    if not m:
        return
    dev, free, total, util, req = m.groups()
    if sub != "external_weights_exceed_budget":
        r.put(ln, "initial_free_gib", _f(free), 2)
    else:
        r.extra(ln, "external_weights_gib", _f(free))
    r.put(ln, "total_gib", _f(total), 2)
    r.put(ln, "gpu_memory_utilization", _f(util), 2)
    r.put(ln, "requested_gib", _f(req), 2)
    r.set_arg("gpu_memory_utilization", _f(util), 0)
    if dev:
        r.extra(ln, "device", dev)
    r.error(ln, "free_memory_below_requested", sub, "startup_check", 3, start=start)


def h_kv_budget_err(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py:_reserve_mm_ipc_gpu_memory (v0.33 multimodal/gpu_ipc_memory.py) "frontend multimodal GPU
    # decoding reserves {r} GiB ({a} GiB raw-frame budget, {b} GiB decoder cache budget), but only {kv} GiB is
    # available for the KV cache. ..."; v0.33 cpu_worker.py "The worker already uses {c} GiB (model weights and
    # runtime), more than the {r} GiB of CPU memory reserved for it on node {n}, leaving none for the KV cache. ...";
    # v0.26 cpu_worker.py "Available memory on node {n} ({a}/{t} GiB) on kv cache allocation is less than requested
    # memory for kv ({k}[/{r}] GiB). ..."
    t = ln.text
    m = _rx(rf"frontend multimodal GPU decoding reserves ({U}) ?GiB.{{0,200}}?but only ({N}) ?GiB is available for the KV cache").search(t)
    if m:
        r.extra(ln, "mm_ipc_reserved_gib", _f(m.group(1)))
        r.put(ln, "kv_cache_gib", _f(m.group(2)), 1)
        r.error(ln, "no_kv_cache_memory", "mm_ipc_reservation_exceeds_kv", "kv_sizing", 3, start="frontend multimodal")
        return
    m = _rx(rf"The worker already uses ({U}) ?GiB \(model weights and runtime\), more than the ({U}) ?GiB of CPU memory").search(t)
    if m:
        r.put(ln, "requested_gib", _f(m.group(2)), 2)
        r.platform_hint("cpu", 3)
        r.error(ln, "no_kv_cache_memory", "cpu_memory_below_requested", "kv_sizing", 3, start="The worker already uses")
        return
    m = _rx(rf"Available memory on node (\d{{1,4}}) \(({U})/({U}) ?GiB\) on kv cache allocation is less than requested memory for kv").search(t)
    if m:
        r.platform_hint("cpu", 3)
        r.error(ln, "out_of_memory", "oom_during_kv_allocation", "kv_allocation", 3, start="Available memory on node")


def h_no_mem(r: LogReader, ln: _Line) -> None:
    # v0.26 kv_cache_utils.py:_check_enough_kv_cache_memory "No available memory for the cache blocks. Try
    # increasing `gpu_memory_utilization` when initializing the engine ..."
    r.error(ln, "no_kv_cache_memory", None, "kv_sizing", 3, start="No available memory")


def h_autofit(r: LogReader, ln: _Line) -> None:
    # v0.26 kv_cache_utils.py "Auto-fit max_model_len: reduced from %d to %d to fit in available GPU memory (%s GiB
    # available for KV cache)"; "Auto-fit max_model_len: full model context length %d fits in ..."; error "Cannot
    # auto-fit max_model_len: not enough GPU memory available to serve even a single token. ..."
    t = ln.text
    if "Cannot auto-fit" in t:
        r.error(ln, "no_kv_cache_memory", "autofit_impossible", "kv_sizing", 3, start="Cannot auto-fit")
        return
    m = _rx(r"reduced from (\d{1,9}) to (\d{1,9})").search(t)
    if m:
        r.set_arg("max_model_len", _i(m.group(2)), 3)
        r.warn(ln, {"max_model_len_from": _i(m.group(1)), "max_model_len": _i(m.group(2))})
        return
    m = _rx(r"full model context length (\d{1,9}) fits").search(t)
    if m:
        r.set_arg("max_model_len", _i(m.group(1)), 3)


def h_mml(r: LogReader, ln: _Line) -> None:
    # v0.26 kv_cache_utils.py:_check_enough_kv_cache_memory "To serve at least one request with the model's max seq
    # len ({L}), ({need} GiB KV cache is needed, which is larger than the available KV cache memory ({avail} GiB).
    # Based on the available memory, the estimated maximum model length is {N}. Try increasing ..."
    # v0.19: "models's" typo; before PR #16168 no estimate.
    t = ln.text
    m = _rx(rf"max seq len \((\d{{1,9}})\),?\s*\(?({N}) ?GiB KV cache is needed,\s*which is larger than the available KV cache memory \(({N}) ?GiB\)").search(t)
    vals: dict = {}
    if m:
        vals.update(max_model_len=_i(m.group(1)), kv_needed_gib=_f(m.group(2)), kv_cache_gib=_f(m.group(3)))
        r.set_arg("max_model_len", vals["max_model_len"], 0)
        r.put(ln, "kv_needed_gib", vals["kv_needed_gib"], 3)
        r.put(ln, "kv_cache_gib", vals["kv_cache_gib"], 1)
    m = _rx(r"estimated maximum model length is (\d{1,9})").search(t)
    if m:
        vals["estimated_max_model_len"] = _i(m.group(1))
        r.put(ln, "estimated_max_model_len", vals["estimated_max_model_len"], 3)
    r.error(ln, "max_model_len_exceeds_kv_cache", None, "kv_sizing", 3, start="To serve at least one request", values=vals)


def h_mml_v0(r: LogReader, ln: _Line) -> None:
    # V0 (PR #2163) vllm/worker/worker.py:raise_if_cache_size_invalid "The model's max seq len (%d) is larger than
    # the maximum number of tokens that can be stored in KV cache (%d). Try increasing ..."
    t = ln.text
    if "To serve at least one request" in t:
        return
    m = _rx(r"max seq len \((\d{1,9})\)\s+is larger than the maximum number of tokens that can be stored in KV cache\s*\((\d{1,12})\)").search(t)
    if not m:
        return
    L, cap = _i(m.group(1)), _i(m.group(2))
    r.set_arg("max_model_len", L, 0)
    r.put(ln, "kv_cache_tokens", cap, 1)
    r.error(ln, "max_model_len_exceeds_kv_cache", None, "kv_sizing", 3, start="The model's max seq len",
            values={"max_model_len": L, "kv_cache_tokens": cap})


def h_mamba(r: LogReader, ln: _Line) -> None:
    # v0.26 vllm/config/compilation.py "max_num_seqs ({n}) exceeds available Mamba cache blocks ({m}). Each decode
    # sequence requires one Mamba cache block, so CUDA graph capture cannot proceed. Please lower ..."
    m = _rx(r"max_num_seqs \((\d{1,9})\) exceeds available Mamba cache blocks \((\d{1,12})\)").search(ln.text)
    if not m:
        return
    n, b = _i(m.group(1)), _i(m.group(2))
    r.set_arg("max_num_seqs", n, 0)
    r.put(ln, "num_gpu_blocks", b, 1)
    r.error(ln, "no_kv_cache_memory", "mamba_blocks_below_max_num_seqs", "graph_capture", 3, start="max_num_seqs",
            values={"max_num_seqs": n, "num_gpu_blocks": b})


_OOM_DEV = {"CUDA": "cuda", "NPU": "ascend", "HIP": "rocm", "XPU": "xpu"}


def h_oom(r: LogReader, ln: _Line) -> None:
    # torch: "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.59 GiB. GPU 0 has a total capacity of
    # 31.73 GiB of which 3.11 GiB is free. ..."; torch_npu: "RuntimeError: NPU out of memory. Tried to allocate
    # 2.57 GiB (NPU 0; 60.96 GiB total capacity; ...)"; v0.26 gpu_model_runner.py "CUDA out of memory occurred when
    # warming up sampler with {n} dummy requests. ..."; v0.26 gpu/pool/pooling_runner.py "... warming up pooler
    # (task=...) ..."; v0.26 gpu_model_runner.py:load_model "Failed to load model - not enough GPU memory. ..."
    t = ln.text
    vals: dict = {}
    sub: str | None = None
    phase: str | None = None
    if "Failed to load model - not enough" in t:
        sub, phase, start = "oom_during_weight_loading", "weight_loading", "Failed to load model"
    elif "occurred when warming up sampler" in t:
        sub, phase, start = "oom_during_sampler_warmup", "warmup", "CUDA out of memory"
        m = _rx(r"with (\d{1,9}) dummy requests").search(t)
        if m:
            vals["num_dummy_requests"] = _i(m.group(1))
    elif "occurred when warming up pooler" in t:
        sub, phase, start = "oom_during_pooler_warmup", "warmup", "CUDA out of memory"
    else:
        m = _rx(rf"\b(CUDA|NPU|HIP|XPU|MPS)? ?(?:error: )?out of memory(?:\. Tried to allocate ({U}) ?([KMGT]i?B))?").search(t)
        if not m or not (m.group(2) or m.group(1) or "OutOfMemoryError" in t):
            return
        if m.group(1) in _OOM_DEV:
            r.platform_hint(_OOM_DEV[m.group(1)], 2 if m.group(1) != "CUDA" else 1)
        if m.group(2):
            vals["tried_to_allocate"] = _f(m.group(2))
            vals["tried_to_allocate_unit"] = m.group(3)
        start = None
    m = _rx(rf"total capacity of ({U}) ?GiB").search(t) or _rx(rf"({U}) ?GiB total capacity").search(t)
    if m:
        vals["total_gib"] = _f(m.group(1))
        r.put(ln, "total_gib", vals["total_gib"], 1)
    m = _rx(rf"of which ({U}) ?(GiB|MiB) is free").search(t) or _rx(rf"({U}) ?(GiB|MiB) free\b").search(t)
    if m:
        vals["free"] = _f(m.group(1))
        vals["free_unit"] = m.group(2)
    if start is None:
        mm = _rx(r"(?:[\w.]+(?:Error|Exception): )?(?:CUDA|NPU|HIP|XPU|MPS)? ?(?:error: )?out of memory").search(t)
        start = mm.group(0) if mm else "out of memory"
    if sub is None:
        sub, phase = r.oom_phase(ln)
    r.error(ln, "out_of_memory", sub, phase, 3, start=start, values=vals)


def h_fail(r: LogReader, ln: _Line) -> None:
    # generic failure markers whose cause is elsewhere (or cut off): v0.26 vllm/v1/engine/core.py
    # "EngineCore failed to start.", multiproc_executor.py "WorkerProc hit an exception.", V0 worker_base.py
    # "Error executing method %r. This might cause deadlock in distributed execution.", "Engine core
    # initialization failed. See root cause above.", V0 multiproc_worker_utils.py "Worker %s pid %s died, exit code: %s"
    t = ln.text
    for start in ("EngineCore failed to start", "WorkerProc hit an exception", "Error executing method",
                  "Engine core initialization failed", "WorkerProc initialization failed", "Engine process failed to start",
                  "died, exit code", "Error execut"):
        if start in t:
            sub, phase = r.oom_phase(ln, generic=True)
            r.error(ln, "startup_failed", None, phase, 1, start=start if start != "died, exit code" else None)
            return


_FRAME_NAMES = (
    "_dummy_sampler_run", "_dummy_pooler_run", "capture_model", "_capture_cudagraphs", "_allocate_kv_cache_tensors",
    "_allocate_kv_cache", "initialize_kv_cache", "initialize_from_config", "initialize_cache", "_init_cache_engine",
    "profile_run", "determine_available_memory", "determine_num_available_blocks", "profile_encoder_cache",
    "load_model", "load_weights", "execute_model", "compile_or_warm_up_model",
)


def h_frames(r: LogReader, ln: _Line) -> None:
    t = ln.text
    if "Traceback (most recent call last)" in t:
        r.frames_reset()
        return
    m = _rx(r'File "[^"]{0,400}", line \d{1,7}, in (\w{1,80})').search(t)
    if m:
        f = _rx(r'vllm_ascend/worker/(\w{1,60}\.py)"').search(t)
        if f:
            r.source_files.add("vllm_ascend/worker/" + f.group(1))
        r.frame(m.group(1))
        return
    for name in _FRAME_NAMES:
        if name in t:
            r.frame(name)
            return


def h_error_level(r: LogReader, ln: _Line) -> None:
    # any ERROR-level line before the engine is ready: the weakest failure evidence
    if ln.level in ("ERROR", "CRITICAL") and not r.is_serving() and _rx(r"[Ee]rror|[Ee]xception|Traceback|failed").search(ln.text):
        sub, phase = r.oom_phase(ln, generic=True)
        r.error(ln, "startup_failed", None, phase, 0, start=None)


# --------------------------------------------------------------------------------------------------
# multimodal encoder


def h_encoder(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_model_runner.py:profile_run "Encoder cache will be initialized with a budget of %s tokens, and
    # profiled with %s %s items of the maximum feature size."; "Skipping memory profiling for multimodal encoder
    # and encoder cache."; v0.26 encoder_budget.py "All non-text modalities ... Encoder cache will not be initialized."
    t = ln.text
    m = _rx(r"budget of (\d{1,9}) tokens,\s*and profiled with (\d{1,9}) (\w{1,20}) items").search(t)
    if m:
        b, n, mod = _i(m.group(1)), _i(m.group(2)), m.group(3)
        r.put(ln, "encoder_budget_tokens", b, 3)
        r.put(ln, "encoder_profile_items", n, 3)
        r.put(ln, "encoder_profile_modality", mod, 3)
        r.emit(ln, "encoder_budget", {"encoder_budget_tokens": b, "encoder_profile_items": n, "encoder_profile_modality": mod})
    elif "Skipping" in t or "will not be initialized" in t:
        r.extra(ln, "encoder_profiling_skipped", True)
        r.warn(ln, {"encoder_profiling_skipped": True})


# --------------------------------------------------------------------------------------------------
# warnings worth keeping, with their numbers


def h_warn(r: LogReader, ln: _Line) -> None:
    t = ln.text
    vals: dict = {}
    # v0.26 kv_cache_utils.py "Add %d padding layers, may waste at most %.2f%% KV cache memory"
    m = _rx(rf"Add (\d{{1,6}}) padding layers, may waste at most ({U})%").search(t)
    if m:
        vals.update(padding_layers=_i(m.group(1)), max_waste_pct=_f(m.group(2)))
    # v0.26 models/config.py "Padding mamba page size by %.2f%% to ensure ..."
    m = _rx(rf"Padding mamba page size by ({U})%").search(t)
    if m:
        vals["mamba_page_padding_pct"] = _f(m.group(1))
    # vllm/utils/mem_utils.py "Released %sGiB of cached device memory under memory pressure"
    m = _rx(rf"Released ({U}) ?GiB of cached device memory").search(t)
    if m:
        vals["released_gib"] = _f(m.group(1))
    # v0.33 gpu_worker.py maybe_rocm_profiling_fallback "Free memory grew by %s GiB during profiling ..."
    m = _rx(rf"Free memory grew by ({N}) ?GiB").search(t)
    if m:
        vals["free_memory_grew_gib"] = _f(m.group(1))
    # v0.33 v1/worker/utils.py "Weights are held outside this process: of the %s GiB utilization budget, %s GiB is
    # externally held and %s GiB remains for the engine's own allocations."
    m = _rx(rf"of the ({U}) ?GiB utilization budget, ({U}) ?GiB is externally held and ({N}) ?GiB remains").search(t)
    if m:
        vals.update(requested_gib=_f(m.group(1)), external_weights_gib=_f(m.group(2)), engine_budget_gib=_f(m.group(3)))
        r.extra(ln, "external_weights_gib", vals["external_weights_gib"])
    # v0.26 gpu_worker.py "Reserving %s GiB of GPU memory for frontend multimodal decoding ... KV cache memory
    # reduced to %s GiB."
    m = _rx(rf"Reserving ({U}) ?GiB of GPU memory for frontend multimodal decoding").search(t)
    if m:
        vals["mm_ipc_reserved_gib"] = _f(m.group(1))
        r.extra(ln, "mm_ipc_reserved_gib", vals["mm_ipc_reserved_gib"])
    # v0.26 startup_plan.py "Applying persisted startup plan (fingerprint %s): kv_cache_memory_bytes=%d (%.2f GiB), ..."
    m = _rx(r"kv_cache_memory_bytes=(\d{1,20}) \(").search(t)
    if m and "startup plan" in t:
        vals["kv_cache_memory_bytes"] = int(m.group(1))
        r.set_arg("kv_cache_memory_bytes", int(m.group(1)), 1)
    # v0.26 gpu/warmup.py "Skipping V2 mixed prefill+decode warmup because only %d KV blocks are available for %d
    # required warmup blocks."; v0.19 compilation.py "Capping cudagraph capture sizes from max %d to %d to fit Mamba
    # cache blocks (%d blocks available)."
    m = _rx(r"only (\d{1,12}) KV blocks are available").search(t) or _rx(r"\((\d{1,12}) blocks available\)").search(t)
    if m:
        vals["num_gpu_blocks"] = _i(m.group(1))
    r.warn(ln, vals)


def h_extensible(r: LogReader, ln: _Line) -> None:
    # vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:measure_kv_cache_blocks "Memory after warmup: %s GiB free,
    # %s GiB committed to the KV cache, %s GiB kept for transient activations (%s GiB allocated at peak, %s GiB of
    # torch reservation growth); %d KV cache blocks (%s GiB) fit within the requested %s GiB. Torch may reserve up
    # to %s GiB."; extend_kv_cache "Extended KV cache to %d blocks (%.2f GiB)." and "Remapping the KV cache from %d
    # to %d blocks to fit the measured budget."
    t = ln.text
    m = _rx(rf"^Committed (\d{{1,12}}) of (\d{{1,12}}) KV cache blocks \((?:({U}) ?GiB physical\))?").search(t)
    if m:
        # v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.commit (debug): "Committed %d of %d KV cache blocks
        # (%s GiB physical)." -- 0.34's module, logged even when the startup dies in warm-up before the summary
        r.era_marker("v1-v0.34")
        r.extra(ln, "kv_commit_blocks", _i(m.group(1)))
        r.extra(ln, "kv_reserved_blocks", _i(m.group(2)))
        if m.group(3):
            r.extra(ln, "kv_commit_physical_gib", _f(m.group(3)))
        return
    m = _rx(rf"Memory after warmup: ({U}) ?GiB free, ({U}) ?GiB committed to the KV cache, ({U}) ?GiB kept for "
            rf"transient activations \(({U}) ?GiB allocated at peak, ({U}) ?GiB of torch reservation growth\); "
            rf"(\d{{1,12}}) KV cache blocks \(({U}) ?GiB\) fit within the requested ({U}) ?GiB\. Torch may reserve "
            rf"up to ({U}) ?GiB").search(t)
    if m:
        g = [m.group(i) for i in range(1, 10)]
        vals = {"free_after_warmup_gib": _f(g[0]), "committed_before_gib": _f(g[1]), "kept_transient_gib": _f(g[2]),
                "transient_peak_gib": _f(g[3]), "torch_reserve_growth_gib": _f(g[4]),
                "kv_after_warmup_blocks": _i(g[5]), "kv_after_warmup_gib": _f(g[6]), "requested_gib": _f(g[7]),
                "torch_memory_limit_gib": _f(g[8])}
        for k, v in vals.items():
            if k != "requested_gib":
                r.extra(ln, k, v)
        r.put(ln, "requested_gib", vals["requested_gib"], 2)
        r.era_marker("v1-v0.34")
        r.emit(ln, "kv_cache_memory", vals, phase="graphs_captured")
        return
    m = _rx(rf"Extended KV cache to (\d{{1,12}}) blocks \(({U}) ?GiB\)").search(t)
    if m:
        n = _i(m.group(1))
        r.put(ln, "num_gpu_blocks", n, 3)
        r.extra(ln, "kv_committed_gib", _f(m.group(2)))
        r.era_marker("v1-v0.34")
        r.emit(ln, "num_gpu_blocks", {"num_gpu_blocks": n, "kv_committed_gib": _f(m.group(2))}, phase="kv_allocated")
        return
    m = _rx(r"Remapping the KV cache from (\d{1,12}) to (\d{1,12}) blocks").search(t)
    if m:
        r.era_marker("v1-v0.34")
        r.warn(ln, {"remapped_from_blocks": _i(m.group(1)), "num_gpu_blocks": _i(m.group(2))})


def h_extensible_warn(r: LogReader, ln: _Line) -> None:
    # vLLM v0.34.0 extensible_kv_cache.py:measure_kv_cache_blocks "gpu_memory_utilization=%s caps this instance at %s
    # GiB, keeping %s GiB of free device memory out of the KV cache. ..."; v1/executor/abstract.py
    # "Disabling the extensible KV cache: %s. ..."; config/vllm.py "Extensible KV cache off: without an IMEX channel ..."
    t = ln.text
    m = _rx(rf"gpu_memory_utilization=({U}) caps this instance at ({U}) ?GiB, keeping ({U}) ?GiB of free device "
            rf"memory out of the KV cache").search(t)
    vals: dict = {}
    if m:
        vals = {"gpu_memory_utilization": _f(m.group(1)), "requested_gib": _f(m.group(2)),
                "util_withheld_gib": _f(m.group(3))}
        r.put(ln, "gpu_memory_utilization", vals["gpu_memory_utilization"], 2)
        r.put(ln, "requested_gib", vals["requested_gib"], 2)
        r.extra(ln, "util_withheld_gib", vals["util_withheld_gib"])
        r.set_arg("gpu_memory_utilization", vals["gpu_memory_utilization"], 2)
    elif "Disabling the extensible KV cache" in t or "Extensible KV cache off" in t:
        vals = {"extensible_kv_cache": False}
        r.set_arg("enable_extensible_kv_cache", False, 2)
    else:
        return
    r.era_marker("v1-v0.34")
    r.warn(ln, vals)


_GDN_KERNEL = {"FlashInfer": "flashinfer", "Triton/FLA": "triton", "CuteDSL": "cutedsl", "AITER FlyDSL": "aiter_flydsl",
               "HIP": "hip", "SYCL": "sycl"}


def h_gdn(r: LogReader, ln: _Line) -> None:
    # vLLM v0.33.0/v0.34.0 vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:_log_gdn_backend_decision
    # "Using %s GDN prefill kernel (requested=%s, head_k_dim=%s)." -- the kernel that ran decides the prefill
    # checkpoints (rules/engine.py gdn_flashinfer_prefill), so the compare plans with it as --gdn-prefill-backend
    m = _rx(r"Using (.+?) GDN prefill kernel \(requested=([\w-]+)").search(ln.text)
    if m and m.group(1) in _GDN_KERNEL:
        r.set_arg("gdn_prefill_backend", _GDN_KERNEL[m.group(1)], 2)


def h_extensible_err(r: LogReader, ln: _Line) -> None:
    # vLLM v0.34.0 vllm/config/vllm.py:_resolve_extensible_kv_cache "enable_extensible_kv_cache: %s."; vllm/platforms/
    # interface.py:validate_environ "VLLM_USE_V2_MODEL_RUNNER=%s is no longer supported: Model Runner V1 has been
    # removed. Unset this variable."
    t = ln.text
    if "enable_extensible_kv_cache:" in t:
        r.era_marker("v1-v0.34")
        r.error(ln, "invalid_config", None, "startup_check", 3, start="enable_extensible_kv_cache:")
    elif "is no longer supported: Model Runner V1 has been removed" in t:
        r.era_marker("v1-v0.34")
        r.error(ln, "invalid_config", None, "startup_check", 3, start="VLLM_USE_V2_MODEL_RUNNER")


def h_env_npu(r: LogReader, ln: _Line) -> None:
    # vllm-ascend platform.py "Set PYTORCH_NPU_ALLOC_CONF=%s"; sleep mode "Removed expandable_segments from
    # PYTORCH_NPU_ALLOC_CONF: %s"
    t = ln.text
    m = _rx(r"Set PYTORCH_NPU_ALLOC_CONF=(\S{1,200})").search(t) or _rx(r"from PYTORCH_NPU_ALLOC_CONF: (\S{1,200})").search(t)
    if m:
        r.env["PYTORCH_NPU_ALLOC_CONF"] = m.group(1)
    r.platform_hint("ascend", 2)


def h_export(r: LogReader, ln: _Line) -> None:
    for k, v in _rx(r"\bexport ([A-Z][A-Z0-9_]{1,80})=[\"']?([^\"'\s]{0,300})").findall(ln.text):
        r.env[k] = v
        if k.startswith(("PYTORCH_NPU", "ASCEND", "HCCL")):
            r.platform_hint("ascend", 1)


# --------------------------------------------------------------------------------------------------
# engine / config / version / platform / phases


def h_engine(r: LogReader, ln: _Line) -> None:
    # v0.26 vllm/v1/engine/core.py "Initializing a V1 LLM engine (v%s) with config: %s"; V0 llm_engine.py
    # "Initializing an LLM engine (v%s) with config: ..." / "Initializing a V0 LLM engine (v%s) with config: ..."
    t = ln.text
    m = _rx(r"LLM engine \(v(\d{1,3}\.\d{1,4}[\w.+-]{0,60})\)").search(t)
    if m:
        r.set_version(m.group(1), 3)
    if "V1 LLM engine" in t:
        r.engine_vote("v1")
    elif "V0 LLM engine" in t or "an LLM engine" in t:
        r.engine_vote("v0")
    vals: dict = {}
    if "with config:" in t:
        vals = parse_config_dump(t)
        dev = vals.pop("device", None)
        if dev == "npu":
            r.platform_hint("ascend", 3)
        elif dev in ("cpu", "tpu", "xpu", "hpu"):
            r.platform_hint(dev, 3)
        elif dev == "cuda":
            r.platform_hint("cuda", 1)
        for k, v in vals.items():
            r.set_arg(k, v, 2)
    r.emit(ln, "config", vals, phase="engine_start")


_PKG_SEP = r"(?:==|\s*[:=]\s*|\s+version\s*:?\s*|\s+)v?"


def h_packages(r: LogReader, ln: _Line) -> None:
    # package versions pasted with a log (pip list, pip freeze, an environment report): "vllm_ascend==0.9.1",
    # "vllm-ascend 0.13.0", "torch_npu  2.5.1.post1", "CANN version: 8.1.RC1". Not a vLLM line: no event.
    t = ln.text
    for name, pat in (("vllm_ascend", r"\bvllm[_-]ascend"), ("torch_npu", r"\btorch[_-]npu")):
        m = _rx(pat + _PKG_SEP + r"(\d{1,3}\.\d{1,4}\.\d{1,4}(?:\.?(?:rc|post)\d{1,4}){0,2})(?![\w.])").search(t)
        if m:
            r.packages[name] = m.group(1)
            if name == "vllm_ascend":
                r.platform_hint("ascend", 2)
    m = _rx(r"\bCANN(?:[ _-]?[Tt]oolkit)?" + _PKG_SEP + r"(\d{1,2}\.\d{1,2}\.(?:RC\d{1,2}|T?\d{1,4})(?:\.[\w]{1,12})?)(?![\w])").search(t)
    if m:
        r.packages["cann"] = m.group(1)


def h_version(r: LogReader, ln: _Line) -> None:
    # v0.26 entrypoints/serve/utils/api_utils.py "vLLM server version %s, serving model %s" and the banner
    # "█ ▀▄▀ █  version %s" / "█  model   %s"; v0.11 "vLLM API server version %s"; "system_fingerprint": "vllm-0.22.0-<hash>"
    t = ln.text
    m = (_rx(r"(?:vLLM (?:API )?server version|vLLM version|\bversion) v?(\d{1,3}\.\d{1,4}\.\d{1,4}[\w.+-]{0,60})").search(t)
         or _rx(r"vllm-(\d{1,3}\.\d{1,4}\.\d{1,4}(?:[\w.+]{0,40}?))-[0-9a-f]{6,40}\b").search(t))
    if m:
        r.set_version(m.group(1), 2)
        r.emit(ln, "config", {"vllm_version": m.group(1)}, phase="engine_start")
    m = _rx(r"serving model (\S{1,500})").search(t) or _rx(r"█\s+model\s+(\S{1,500})\s*$").search(t)
    if m:
        r.set_model(m.group(1).rstrip(",."), 2)


def h_args(r: LogReader, ln: _Line) -> None:
    # v0.26 entrypoints/serve/utils/api_utils.py "non-default args: %s" (a Python dict repr)
    t = ln.text
    i = t.find("non-default args:")
    if i < 0:
        return
    d = parse_pylike_dict(t[i + len("non-default args:"):])
    for k, v in d.items():
        r.set_arg(k, v, 3)
    if isinstance(d.get("model"), str):
        r.set_model(d["model"], 3)
    r.emit(ln, "config", d, phase="engine_start")


def h_cfg_lines(r: LogReader, ln: _Line) -> None:
    t = ln.text
    # v0.26 config/model.py "Using max model len %s"
    m = _rx(r"Using max model len (\d{1,9})").search(t)
    if m:
        r.set_arg("max_model_len", _i(m.group(1)), 1)
    # v0.26 config/scheduler.py "Chunked prefill is enabled with max_num_batched_tokens=%d."
    m = _rx(r"Chunked prefill is enabled with max_num_batched_tokens=(\d{1,9})").search(t)
    if m:
        r.set_arg("max_num_batched_tokens", _i(m.group(1)), 1)
        r.set_arg("enable_chunked_prefill", True, 1)
    # v0.26 engine/arg_utils.py (DEBUG) "Defaulting max_num_batched_tokens to %d for %s usage context."
    m = _rx(r"Defaulting (max_num_batched_tokens|max_num_seqs) to (\d{1,9})").search(t)
    if m:
        r.set_arg(m.group(1), _i(m.group(2)), 0)
    # v0.26 config/vllm.py "Asynchronous scheduling is %s."
    m = _rx(r"Asynchronous scheduling is (enabled|disabled)").search(t)
    if m:
        r.set_arg("async_scheduling", m.group(1) == "enabled", 1)
    # v0.26 config/model.py "Resolved architecture: %s"
    m = _rx(r"Resolved architecture: (\w{1,200})").search(t)
    if m:
        r.architecture = r.architecture or m.group(1)


def h_runner(r: LogReader, ln: _Line) -> None:
    # v0.26 gpu_worker.py "Using V2 Model Runner"; V2 runner "Loading model from scratch..."; V1 runner (and V0)
    # "Starting to load model %s..."
    t = ln.text
    if "Using V2 Model Runner" in t or "Loading model from scratch" in t:
        r.runner_marker("v2")
    m = _rx(r"Starting to load model (\S{1,500}?)(?:\.\.\.)?$").search(t)
    if m:
        r.runner_marker("v1")
        r.set_model(m.group(1), 1)
    r.set_phase("weight_loading")


def h_platform(r: LogReader, ln: _Line) -> None:
    t = ln.text
    # v0.26 platforms/__init__.py "Automatically detected platform %s."
    m = _rx(r"Automatically detected platform (\w{1,20})").search(t)
    if m:
        p = m.group(1).lower()
        r.platform_hint({"npu": "ascend"}.get(p, p), 4)
    # fused-MoE config lookups name the device: ".../E=64,N=704,device_name=NVIDIA_L4.json"
    m = _rx(r"device_name=([\w-]{1,120})\.json").search(t)
    if m:
        r.device_name = r.device_name or m.group(1).replace("_", " ")
    if "ROCmFlashAttention" in t or "Using ROCm" in t:
        r.platform_hint("rocm", 2)
    if "hpu_model_runner" in t or "on hpu:" in t:
        r.platform_hint("hpu", 2)
    if "VLLM_METAL" in t or "vllm-metal" in t:
        r.platform_hint("metal", 2)
        r.era_marker("fork")
    if any(k in t for k in ("vllm_ascend", "vllm-ascend", "HCCL", "npu-smi", "Ascend")):
        r.platform_hint("ascend", 2)


def h_dist(r: LogReader, ln: _Line) -> None:
    # v0.26 distributed/parallel_state.py "rank %d in world size %d is assigned as DP rank %d, PP rank %d, ..." and
    # "world_size=%d rank=%d local_rank=%d distributed_init_method=%s backend=%s"
    t = ln.text
    if "init HCCL" in t:
        return  # the npu debug handler marks these
    r.emit(ln, "device_ready", {}, phase=None, as_phase=True)


def h_ready(r: LogReader, ln: _Line) -> None:
    # v0.26 v1/engine/core.py "init engine (profile, create kv cache, warmup model) took %.2f s (compilation: %.2f s)";
    # older "... took %.2f seconds"; API server "Application startup complete." / "Starting vLLM server on %s" /
    # "Starting vLLM API server on ..."
    t = ln.text
    vals: dict = {}
    m = _rx(rf"init engine (?:\(profile, create kv cache, warmup model\) )?took ({U}) ?(s|seconds)\b(?: \(compilation: ({U}) ?s)?").search(t)
    if m:
        vals["init_engine_s"] = _f(m.group(1))
        r.timing("init_engine_s", vals["init_engine_s"])
        if m.group(3):
            vals["compilation_s"] = _f(m.group(3))
            r.timing("compilation_s", vals["compilation_s"])
        if m.group(2) == "s":
            r.era_marker("v1-v0.26")
    r.set_phase("serving")
    r.emit(ln, "ready", vals, phase=None, as_phase=True)


def h_compile_t(r: LogReader, ln: _Line) -> None:
    # v0.26 compilation/monitor.py "torch.compile took %.2f s in total" (older "takes"), backends.py "Dynamo
    # bytecode transform time: %.2f s", monitor.py "Initial profiling/warmup run took %.2f s"
    t = ln.text
    for pat, name in (
        (rf"torch\.compile take[sn]? ({U}) ?s in total", "torch_compile_s"),
        (rf"torch\.compile took ({U}) ?s in total", "torch_compile_s"),
        (rf"Dynamo bytecode transform time: ({U}) ?s", "dynamo_transform_s"),
        (rf"Initial profiling/warmup run took ({U}) ?s", "initial_profiling_s"),
    ):
        m = _rx(pat).search(t)
        if m:
            r.timing(name, _f(m.group(1)))


def h_request(r: LogReader, ln: _Line) -> None:
    # v0.26 v1/metrics/loggers.py "Avg prompt throughput: %.1f tokens/s, ... GPU KV cache usage: %.1f%%, ...";
    # async_llm.py "Added request %s."; request_logger.py "Received request %s: ..."; uvicorn access log
    t = ln.text
    vals: dict = {}
    m = _rx(rf"KV cache usage: ({U})%").search(t)
    if m:
        vals["kv_cache_usage_pct"] = _f(m.group(1))
    r.set_phase("serving")
    r.emit(ln, "request", vals, phase=None, as_phase=True)


def h_command(r: LogReader, ln: _Line) -> None:
    # a command line quoted in the log ('$ vllm serve M --max-model-len 8192 ...'); vLLM's own lines never start so
    if ln.src is not None:
        return
    t = ln.text
    if "vllm serve" not in t and "vllm.entrypoints" not in t:
        return
    args, env = parse_command(t)
    for k, v in env.items():
        r.env.setdefault(k, v)
        if k == "VLLM_USE_V1":
            r.engine_vote("v1" if v == "1" else "v0")
        if k.startswith("VLLM_METAL"):
            r.platform_hint("metal", 2)
    model = args.pop("model", None)
    if isinstance(model, str) and model and not model.startswith("<"):
        r.set_model(model, 0)
    for k, v in args.items():
        r.set_arg(k, v, 0)
    if args:
        r.emit(ln, "config", dict(args))


# --------------------------------------------------------------------------------------------------
# the family table: (name, gate tokens, anchors, handler, wrap)
#   gate tokens: literals that every line of the family contains (most start with an upper-case letter, so the
#     gate regex skips lower-case text fast); anchors: the finer literals that select the handler;
#   wrap: None (never held), "space" or "raw" (how a wrapped continuation line is joined back).


FAMILIES: list[tuple[str, tuple[str, ...], tuple[str, ...], object, str | None]] = [
    ("weights_v0", ("Loading",), ("Loading model weights took",), h_weights_v0, None),
    ("weights_v1", ("Model loading",), ("Model loading took",), h_weights_v1, None),
    ("weights_hpu", ("Pre-loading",), ("Pre-loading model weights",), h_weights_hpu, None),
    ("weights_peak", ("Peak GPU",), ("Peak GPU memory after loading",), h_weights_peak, None),
    ("load_time", ("Loading",), ("Loading weights took",), h_load_time, None),
    ("prof_results", ("Memory profiling",), ("Memory profiling results",), h_prof_results, None),
    ("prof_v0", ("GiB", "Gi[", "KV Cache", "Gi"), ("the current vLLM instance can use", "odel weights take",
                 "activation peak memory takes", "eserved for KV Cache is", "on_torch_memory takes", "on-torch memory takes"),
     h_prof_v0, "space"),
    ("prof_time", ("Memory profiling",), ("Memory profiling takes",), h_prof_time, None),
    ("prof_v1", ("GiB", "Memory profiling"), ("Memory profiling takes", "Total non KV cache memory", "torch peak memory increase",
                                              "non-torch forward increase memory",
                           "total consumed (from mem_get_info)", "weights memory:"), h_prof_v1, "space"),
    ("init_free", ("Initial free", "Error in memory"), ("Initial free memory",), h_init_free, None),
    ("free_after", ("Free memory",), ("Free memory after profiling",), h_free_after, None),
    ("snapshot", ("GiB",), ("init memory snapshot",), h_snapshot, None),
    ("requested", ("GiB",), ("worker requested memory",), h_requested, None),
    ("avail_kv", ("Available KV",), ("Available KV cache memory",), h_avail_kv, None),
    ("ascend_avail", ("Available memory",), ("Available memory: ",), h_ascend_avail, None),
    ("npu_debug", ("profiling", "HCCL", "peak_activation"), (" after profiling", " before profiling", " init HCCL is",
                                                               "peak_activation_memory"), h_npu_debug, None),
    ("kv_tokens", ("KV cache size",), ("KV cache size:",), h_kv_tokens, None),
    ("concurrency", ("Maximum concurrency",), ("Maximum concurrency",), h_concurrency, "space"),
    ("blocks", ("GPU blocks", "# "), (" blocks: ", "GPU blocks:"), h_blocks, None),
    ("cache_info", ("Engine 0", "Engines:", "KVCacheConfig", "CacheConfig"), ("num_gpu_blocks is:", "num_gpu_blocks="), h_cache_info, None),
    ("override", ("Overriding",), ("Overriding num_gpu_blocks",), h_override, None),
    ("block_size", ("Block size", "Setting kv cache block", "Setting attention block"), ("Block size is set to", "block size to"), h_block_size, None),
    ("graph_done", ("Graph capturing", "Encoder graph"), ("raph capturing finished",), h_graph_done, None),
    ("cg_est", ("Estimated",), ("CUDA graph memory:",), h_cg_est, None),
    ("cg_pool", ("CUDA graph pool",), ("CUDA graph pool memory",), h_cg_pool, None),
    ("cg_profiling", ("Profiling CUDA",), ("Profiling CUDA graph memory",), h_cg_profiling, None),
    ("cg_flag", ("CUDA graph memory profiling",), ("CUDA graph memory profiling is", "CUDA graph memory profiling will be"),
     h_cg_flag, None),
    ("capture_start", ("Capturing CUDA", "Capturing the model", "Capturing cudagraphs", "Compile and"), ("Capturing CUDA graphs", "Capturing the model for CUDA graphs",
                                                     "Capturing cudagraphs", "Compile and warming up model"), h_capture_start, None),
    ("suggest", ("Actual usage",), ("Actual usage",), h_suggest, "space"),
    ("free_err", ("Free memory", "Externally held", "Available memory on node"),
     ("is less than desired", "is less than the engine's budget", "exceed the desired GPU memory"), h_free_err, "space"),
    ("no_mem", ("No available memory",), ("No available memory for the cache blocks",), h_no_mem, None),
    ("kv_budget_err", ("frontend multimodal", "The worker already uses", "Available memory on node"),
     ("frontend multimodal GPU decoding reserves", "The worker already uses", "on kv cache allocation is less than"),
     h_kv_budget_err, "space"),
    ("autofit", ("Auto-fit", "Cannot auto-fit"), ("uto-fit max_model_len",), h_autofit, None),
    ("mml", ("To serve",), ("To serve at least one request",), h_mml, "space"),
    ("mml_v0", ("The model",), ("The model's max seq len",), h_mml_v0, "space"),
    ("mamba", ("Mamba cache blocks",), ("exceeds available Mamba cache blocks",), h_mamba, None),
    ("oom", ("CUDA out of", "NPU out of", "HIP out of", "XPU out of", "MPS out of", "CUDA error: out", "OutOfMemory", "Failed to load"),
     ("out of memory", "OutOfMemoryError", "Failed to load model - not enough"), h_oom, None),
    ("fail", ("EngineCore failed", "WorkerProc hit", "WorkerProc init", "Error execut", "Engine core", "Engine process", "Worker V"),
     ("EngineCore failed to start", "WorkerProc hit an exception", "Error executing method", "initialization failed",
      "died, exit code", "Engine process failed", "Error execut"), h_fail, None),
    ("frames", ("File \"", "Traceback"), ("File \"", "Traceback (most recent call last)"), h_frames, None),
    ("error_level", ("ERROR", "CRITICAL"), ("ERROR", "CRITICAL"), h_error_level, None),
    ("encoder", ("Encoder cache", "Skipping memory profiling for multimodal", "Skipping encoder"),
     ("Encoder cache will", "Skipping memory profiling for multimodal encoder", "Skipping encoder profiling"), h_encoder, "space"),
    ("warn", ("Add ", "Padding", "Released", "Free memory grew", "Weights are held", "Reserving", "Applying persisted",
              "Startup plan", "Skipping V2", "Capping", "No valid cudagraph", "Multiplying", "This model does not support",
              "Falling back to data", "Computed max_num_seqs", "Hybrid KV", "Sleep mode", "CuMemAllocator"),
     ("padding layers, may waste", "Padding mamba page size", "of cached device memory", "Free memory grew by",
      "Weights are held outside", "for frontend multimodal decoding", "startup plan", "Startup plan",
      "Skipping V2 mixed prefill", "Capping cudagraph capture sizes", "No valid cudagraph capture sizes",
      "Multiplying the GPU KV cache size", "does not support `--mm-encoder-tp-mode data`",
      "does not support --mm-encoder-tp-mode data", "Falling back to data parallelism for the vision encoder",
      "Computed max_num_seqs", "Hybrid KV cache manager is disabled", "Sleep mode freed", "sleep freed"), h_warn, None),
    ("extensible", ("Memory after warmup", "Extended KV cache", "Remapping the KV", "Committed"),
     ("Memory after warmup:", "Extended KV cache to", "Remapping the KV cache from", " KV cache blocks ("),
     h_extensible, "space"),
    ("extensible_warn", ("caps this instance", "Disabling the extensible", "Extensible KV cache off"),
     ("caps this instance at", "Disabling the extensible KV cache", "Extensible KV cache off"), h_extensible_warn, "space"),
    ("extensible_err", ("enable_extensible_kv_cache:", "no longer supported"),
     ("enable_extensible_kv_cache:", "Model Runner V1 has been removed"), h_extensible_err, None),
    ("gdn", ("GDN prefill",), ("GDN prefill kernel (requested=",), h_gdn, None),
    ("env_npu", ("PYTORCH_NPU",), ("PYTORCH_NPU_ALLOC_CONF",), h_env_npu, None),
    ("export", ("export ",), ("export ",), h_export, None),
    ("engine", ("LLM engine",), ("LLM engine (v", "with config:"), h_engine, "raw"),
    ("version", ("LLM API", "LLM server", "LLM version", "█", "vllm"), ("server version", "█ version", "vLLM version", "vllm-0.", "serving model", "█  model",
                                         "█ model"), h_version, None),
    ("packages", ("vllm", "torch_npu", "torch-npu", "CANN"), ("vllm_ascend", "vllm-ascend", "torch_npu", "torch-npu", "CANN"),
     h_packages, None),
    ("args", ("non-default",), ("non-default args:",), h_args, "raw"),
    ("cfg_lines", ("Using max model", "Chunked prefill", "Defaulting", "Asynchronous", "Resolved architecture"),
     ("Using max model len", "Chunked prefill is enabled", "Defaulting max_num", "Asynchronous scheduling is",
      "Resolved architecture:"), h_cfg_lines, None),
    ("runner", ("Using V2", "Loading", "Starting to load"), ("Using V2 Model Runner", "Loading model from scratch", "Starting to load model"),
     h_runner, None),
    ("platform", ("Automatically", "NVIDIA", "AMD_", "ROCm", "VLLM_METAL", "vllm", "HCCL", "Ascend"),
     ("Automatically detected platform", "device_name=", "ROCmFlashAttention", "Using ROCm", "VLLM_METAL",
      "vllm_ascend", "vllm-ascend", "HCCL", "Ascend"), h_platform, None),
    ("dist", ("DP rank",), ("is assigned as DP rank",), h_dist, None),
    ("ready", ("warmup model)", "Application startup", "Starting vLLM"), ("init engine", "Application startup complete",
                                                                      "Starting vLLM API server", "Starting vLLM server"), h_ready, None),
    ("compile_t", ("torch.compile", "Dynamo", "Initial profiling"), ("torch.compile take", "torch.compile took",
                                                                    "Dynamo bytecode transform time", "Initial profiling/warmup run took"),
     h_compile_t, None),
    ("request", ("Avg prompt", "Added request", "Received request", "POST /", "Processed prompts"),
     ("Avg prompt throughput", "Added request", "Received request", "POST /v1/", "POST /generate", "Processed prompts"),
     h_request, None),
    ("command", ("vllm",), ("vllm serve", "vllm.entrypoints"), h_command, "space"),
]

WRAPPABLE = {name: wrap for name, _, _, _, wrap in FAMILIES if wrap}

_COMPLETE = {
    "prof_v0": re.compile(r"KV Cache is\s*-?\d", re.I),
    "prof_v1": re.compile(r"weights memory:\s*-?\d|Memory profiling takes [\d.]+ seconds\s*$"),
    "concurrency": re.compile(r"\d(?:\.\d+)?x\b"),
    "suggest": re.compile(r"(?:in use is|KV cache memory:)\s*\d"),
    "free_err": re.compile(r"GiB\)(?:\.|\s|$)"),
    "mml": re.compile(r"model length is \d+\.|initializing the engine|more details|larger than the available KV cache memory \([\d.]+ GiB\)\.\s*(?:Try|$)"),
    "mml_v0": re.compile(r"stored in KV cache\s*\(\d+\)"),
    "encoder": re.compile(r"items|feature size"),
    "kv_budget_err": re.compile(r"available for the KV cache|leaving none|for kv \(|GiB\)\."),
    "extensible": re.compile(r"Torch may reserve up to [\d.]+ ?GiB|blocks \([\d.]+ ?GiB\)|blocks to fit"),
    "extensible_warn": re.compile(r"out of the KV cache|Disabling the extensible KV cache: \S|Extensible KV cache off"),
}


def family_complete(name: str, text: str) -> bool:
    """Whether a wrappable message is complete in ``text`` (else the reader joins the next lines)."""
    if name == "engine":
        if "with config:" not in text:
            return True
        s = text.rstrip()
        return s.endswith((")", "]", "}", "...", "[...]")) or len(s) > 150_000
    if name == "args":
        i = text.find("non-default args:")
        return i < 0 or text.rstrip().endswith("}") or "{" not in text[i:]
    if name == "command":
        return not text.rstrip().endswith("\\")
    rx = _COMPLETE.get(name)
    return True if rx is None else rx.search(text) is not None


def _trie_pattern(words: list[str]) -> str:
    """A regex matching any of ``words``, factored as a trie (much faster than a flat alternation)."""
    trie: dict = {}
    for w in words:
        d = trie
        for ch in w:
            d = d.setdefault(ch, {})
        d[""] = {}

    def emit(d: dict) -> str:
        if "" in d:
            return ""  # a shorter word ends here: enough to match
        alts = [re.escape(ch) + emit(d[ch]) for ch in sorted(d)]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie)


def _build_gate() -> tuple[re.Pattern, tuple[tuple[str, tuple[int, ...]], ...], dict[str, tuple[int, ...]]]:
    """The gate: tokens starting with an upper-case letter or a symbol go in one trie regex (the regex engine
    skips lower-case text fast); the few lower-case tokens are tested with ``in``."""
    tokens: dict[str, list[int]] = {}
    for idx, (_, gate, _, _, _) in enumerate(FAMILIES):
        for g in gate:
            tokens.setdefault(g, []).append(idx)
    # a token that extends a shorter one is matched as the shorter one: give the shorter its families too
    for a in list(tokens):
        for b in tokens:
            if a != b and a.startswith(b):
                tokens[b] = sorted(set(tokens[b]) | set(tokens[a]))
    upper = [t for t in tokens if not t[0].islower()]
    lower = tuple((t, tuple(tokens[t])) for t in sorted(tokens) if t[0].islower())
    return re.compile(_trie_pattern(upper)), lower, {k: tuple(v) for k, v in tokens.items()}


GATE_RX, GATE_LOWER, GATE_FAMILIES = _build_gate()
