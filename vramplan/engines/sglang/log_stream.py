"""A streaming reader for SGLang server logs: one line at a time, events as they come (for ``vramplan watch``).

Same interface as :class:`vramplan.engines.vllm.log.LogReader`: ``feed(line)`` returns the events of that line,
``finish()`` returns the facts (:class:`~vramplan.engines.sglang.log.SGLangLogFacts`, read by the batch reader
from the lines kept), ``flushed_events()`` is empty (no line is held). It never raises on a line.

The lines and the phase each marks (format strings read in sglang 0.5.17 and 0.5.23; same text in both unless
said):

- ``engine_start``: ``server_args=ServerArgs(...)`` (0.5.17 entrypoints/engine.py:Engine.__init__
  ``logger.info(f"{server_args=}")``; 0.5.23 the same function, ``f"server_args={_server_args_for_logging(...)}"``);
- ``device_ready``: 0.5.17 distributed/bootstrap.py:init_torch_distributed "Init torch distributed ends.";
  0.5.23 distributed/bootstrap.py:measure_pre_model_load_memory "Memory baseline taken. mem usage="; else the first "Load weight begin. avail mem=X GB"
  (model_executor/model_runner.py:ModelRunner.load_model, both releases);
- ``weights_loaded``: "Load weight end. elapsed=..., type=..., avail mem=X GB, mem usage=Y GB."
  (model_runner.py:ModelRunner.load_model, both releases) with a ``weights`` event (``weights_gib`` = mem usage);
- ``kv_allocated``: "[<label> ]KV Cache is allocated. dtype: D, #tokens: N, K size: .. GB, V size: .. GB" or
  "..., KV size: .. GB" (mem_cache/memory_pool.py:MHATokenToKVPool._finalize_allocation_log, both releases)
  with a ``kv_cache_tokens`` event; else "Memory pool end. avail mem=X GB"
  (mem_cache/kv_cache_configurator.py:KVCacheConfigurator.configure, both releases), a ``memory_pool_end`` event;
- ``graphs_captured``: "max_total_num_tokens=N, chunked_prefill_size=..., max_running_requests=..., ..."
  (managers/scheduler.py:Scheduler.init_model_worker, both releases). SGLang prints it once the model worker is
  built, i.e. after every CUDA graph capture (or none, with --disable-cuda-graph): one capture's end line
  cannot say it was the last. Each "Capture <role> <prefill|decode|verify> CUDA graph end. ... mem usage=X GB,
  avail mem=Y GB." (model_executor/model_runner_components/cuda_graph_setup.py:capture_prefill_graph and
  capture_decode_graph, both releases) is a ``cudagraph`` event; the scheduler line a ``kv_pool`` event;
- ``ready``: "The server is fired up and ready to roll!" (entrypoints/http_server.py:_wait_and_warmup, both);
- ``error``: "Not enough memory. Please try to increase --mem-fraction-static."
  (model_executor/pool_configurator.py:MemoryPoolConfig.__post_init__, both), "Loaded weights leave no GPU
  memory for the KV cache under --mem-fraction-static=" (kv_cache_configurator.py:_profile_available_bytes,
  both): ``no_kv_cache_memory``; torch's "CUDA out of memory. Tried to allocate": ``out_of_memory``;
  "Scheduler hit an exception:" (managers/scheduler.py:run_scheduler_process, both) and "Received sigquit
  from a child process" (entrypoints/engine.py, the launch-phase SIGQUIT handler, both): ``startup_failed``
  (the cause, when a later line names it, comes as a further ``error`` event);
- ``request`` (not a phase; a burst of batches, as the vLLM reader reports request bursts): the first
  "Prefill batch[ [N]], #new-seq: ..." or "Decode batch[ [N]], #running-req: ..." line after any other event
  (managers/scheduler_components/metrics_reporter.py:report_prefill_stats and report_decode_stats, both);
  the lines of a burst are only counted (``num_request_lines``).

Startup phases only move forward (TP ranks print the same line one after another: the first rank to reach a
phase marks it; a line of an earlier phase after a later one is a figure event only). ``error`` can follow any
phase; after it no startup phase is marked. SGLang's "GB" is bytes / 2**30 (utils/common.py:
get_available_gpu_memory, memory_pool.py ``GB = 1024 * 1024 * 1024``), so figures are kept as printed in
``*_gib`` fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .log import _ARGS, _RANK, _RE, MARKERS, _parse_args, read_sglang_log

__all__ = ["SGLangLogEvent", "SGLangLogReader", "SGLANG_PHASES", "is_sglang_line"]

SGLANG_PHASES = ("engine_start", "device_ready", "weights_loaded", "kv_allocated", "graphs_captured", "ready")
"""Startup phases SGLang's log marks, in order (SGLang has no profiling run: no ``profiling_done``)."""

MAX_LINE_CHARS = 65536
"""Longer lines are cut here before matching (a runaway line must not stall watch)."""

MAX_KEPT_CHARS = 4 << 20
"""Text kept for ``finish()`` (the batch reader's facts): the first 4 MiB, as ``explain`` reads."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\^\[\[[0-9;]*m")
_PREFIX = re.compile(r"^\s*\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?[^\]]{0,80}\]\s*")
_DEVICE_READY = ("Init torch distributed ends.", "Memory baseline taken.", "Load weight begin.")
_FAILED = ("Scheduler hit an exception", "Received sigquit from a child process")
_READY = "The server is fired up and ready to roll!"
_BATCH = re.compile(r"^(Prefill|Decode) batch(?: \[\d+\])?, #(?:new-seq|running-req): ")
_GRAPH_BEGIN = re.compile(r"Capture (?:target |draft )?(?:decode|prefill|verify|extend) (?:CUDA|CPU|NPU|XPU) graph begin\.")
_SPECIFIC = (*MARKERS, "Init torch distributed", "Memory baseline taken.", _READY, "Capture target ",
             "Scheduler hit an exception", "Received sigquit from a child process")
"""Text only SGLang prints (what decides the engine when watch reads an unknown log)."""


def is_sglang_line(line: str) -> bool:
    """True when the line carries text only SGLang prints."""
    return any(m in line for m in _SPECIFIC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangLogEvent:
    """One recognised line (the fields of the vLLM reader's ``LogEvent``)."""

    line_no: int
    kind: str
    rank: str | None
    values: dict = field(default_factory=dict)
    text: str = ""
    timestamp: str | None = None


class SGLangLogReader:
    """Streaming SGLang log reader (see the module doc for the lines and phases)."""

    def __init__(self) -> None:
        self._n = 0
        self._phase_idx = -1
        self._error = False
        self._capturing = False
        self._burst = False
        self.num_request_lines = 0
        self._kept: list[str] = []
        self._kept_chars = 0
        self.internal_errors: list[str] = []

    # the phase events actually emitted, for tests and the timeline
    @property
    def phase(self) -> str | None:
        if self._error:
            return "error"
        return SGLANG_PHASES[self._phase_idx] if self._phase_idx >= 0 else None

    def feed(self, line: str) -> list[SGLangLogEvent]:
        """Read one raw line (with or without its newline); return its events. Never raises."""
        self._n += 1
        try:
            if not isinstance(line, str):
                line = bytes(line).decode("utf-8", errors="replace") if isinstance(line, (bytes, bytearray)) else str(line)
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS]
            raw = line.rstrip("\r\n").replace("\x00", "")
            if "\x1b" in raw or "^[[" in raw:
                raw = _ANSI.sub("", raw)
            if self._kept_chars < MAX_KEPT_CHARS:
                self._kept.append(raw)
                self._kept_chars += len(raw) + 1
            out = self._process(self._n, raw)
            if out and out[-1].kind != "request":
                self._burst = False
            return out
        except Exception as e:  # a reader bug must not end the watch: note it, carry on
            self.internal_errors.append(f"line {self._n}: {e!r}")
            return []

    def _process(self, no: int, raw: str) -> list[SGLangLogEvent]:
        out: list[SGLangLogEvent] = []
        pm = _PREFIX.match(raw)
        timestamp = pm.group(1) if pm else None
        text = raw[pm.end():] if pm else raw.strip()
        rm = _RANK.search(raw[: pm.end()]) if pm else None
        rank = rm.group(1) if rm else None

        def emit(kind: str, values: dict | None = None) -> None:
            out.append(SGLangLogEvent(line_no=no, kind=kind, rank=rank, values=values or {}, text=text[:2000],
                                      timestamp=timestamp))

        def phase(name: str) -> None:
            if self._error:
                return
            idx = SGLANG_PHASES.index(name)
            if idx > self._phase_idx:
                self._phase_idx = idx
                emit(name)

        def error(kind: str, **values) -> None:
            values = {"error_kind": kind, **{k: v for k, v in values.items() if v is not None}}
            if not self._error:
                values.setdefault("error_phase", "graph_capture" if self._capturing else (self.phase or "startup"))
            self._error = True
            emit("error", values)

        bm = _BATCH.match(text)
        if bm:
            self.num_request_lines += 1
            if not self._burst:
                self._burst = True
                emit("request", {"batch": bm.group(1).lower()})
            return out
        if "server_args=ServerArgs(" in text or "server_args=" in text and "ServerArgs(" in text:
            phase("engine_start")
            m = _ARGS.search(text)
            if m:
                emit("config", _parse_args(m.group(1)))
            return out
        if any(s in text for s in _DEVICE_READY):
            phase("device_ready")
            m = _RE["load_begin"].search(text)
            if m:
                emit("memory_snapshot", {"free_before_load_gib": float(m.group(1))})
            return out
        if "Load weight end." in text:
            phase("weights_loaded")
            m = _RE["load_end"].search(text)
            if m:
                vals: dict = {"weights_gib": float(m.group(3)), "free_after_load_gib": float(m.group(2)),
                              "architecture": m.group(1)}
                em = re.search(r"elapsed=(\d+(?:\.\d+)?) s", text)
                if em:
                    vals["model_load_s"] = float(em.group(1))
                emit("weights", vals)
            return out
        if "Cache is allocated." in text:
            m = _RE["kv_kv"].search(text)
            m2 = None if m else _RE["kv_kv2"].search(text)
            if m or m2:
                phase("kv_allocated")
                mm = m or m2
                assert mm is not None
                gib = float(mm.group(3)) + (float(mm.group(4)) if m2 else 0.0)
                label = text[: text.find("KV Cache is allocated")].strip() or None
                emit("kv_cache_tokens", {"kv_cache_tokens": int(mm.group(2)), "kv_cache_gib": round(gib, 4),
                                         "kv_dtype": mm.group(1), **({"pool": label} if label else {})})
            return out
        m = _RE["pool_end"].search(text)
        if m:
            phase("kv_allocated")
            emit("memory_pool_end", {"free_after_pool_gib": float(m.group(1))})
            return out
        m = _RE["graph_end"].search(text)
        if m:
            self._capturing = False
            emit("cudagraph", {"graph": m.group(1), "graph_gib": float(m.group(2)), "free_after_gib": float(m.group(3))})
            return out
        if _GRAPH_BEGIN.search(text):
            self._capturing = True  # an error before its end line happened while capturing
            return out
        m = _RE["sched"].search(text)
        if m:
            phase("graphs_captured")
            emit("kv_pool", {"max_total_num_tokens": int(m.group(1)), "chunked_prefill_size": int(m.group(2)),
                             "max_prefill_tokens": int(m.group(3)), "max_running_requests": int(m.group(4)),
                             "context_len": int(m.group(5)), "available_gpu_mem_gib": float(m.group(6))})
            return out
        if _READY in text:
            phase("ready")
            return out
        m = _RE["not_enough"].search(text)
        if m:
            error("no_kv_cache_memory", mem_fraction_static=float(m.group(1)) if m.group(1) else None)
            return out
        m = _RE["no_room"].search(text)
        if m:
            mv = re.search(r"minimum viable = 1 - available/pre = (-?\d+(?:\.\d+)?)", text)
            error("no_kv_cache_memory", mem_fraction_static=float(m.group(1)),
                  minimum_mem_fraction_static=float(mv.group(1)) if mv else None)
            return out
        m = _RE["oom"].search(text)
        if m:
            gib = float(m.group(1)) / (1024 if m.group(2) == "MiB" else 1)
            error("out_of_memory", tried_to_allocate_gib=round(gib, 6))
            return out
        if any(s in text for s in _FAILED):
            self._capturing = self._capturing and not self._error
            error("startup_failed")
            return out
        m = _RE["ctx_over"].search(text)
        if m:
            emit("warning", {"kv_pool_tokens": int(m.group(1)), "context_length": int(m.group(2))})
        return out

    def finish(self):
        """The facts of the lines kept (the batch reader's); raises LogParseError if no line was SGLang's."""
        return read_sglang_log("\n".join(self._kept))

    def flushed_events(self) -> list[SGLangLogEvent]:
        """No line is ever held: always empty."""
        return []
