"""Run (or attach to) a server, sample device memory on a thread, mark phases from its log.

The record is never lost: the timeline is written line by line and flushed, and the
end of a watch (the command exiting, Ctrl-C, a signal, the sampler failing, or an
error in watch itself) always goes through one ``finally`` that closes the file,
writes the plot of what was seen and computes the per-phase table.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from ..errors import DeviceError, InputError
from .backends import Backend, DeviceReading, select_backend
from .procs import ProcessTree, pid_alive
from .timeline import TIMELINE_FORMAT, TimelineWriter, format_levels, load_timeline
from .vllm034 import apply_story, classify as _classify

__all__ = ["WatchResult", "watch_command", "watch_pid", "PHASE_KINDS"]

PHASE_KINDS = frozenset(
    {"engine_start", "device_ready", "weights_loaded", "profiling_done", "kv_allocated", "graphs_captured", "ready", "error"}
)
"""Log-event kinds that start a phase (``error``: a failure the log reader recognised). Others
("request" bursts, figure events such as "weights") are recorded as ``log_event`` lines."""

LogReaderFactory = Callable[[], Any]
LevelPlanner = Callable[[Sequence[DeviceReading]], Any]


def _run_level_planner(level_planner: LevelPlanner, readings: Sequence[DeviceReading], writer: TimelineWriter,
                       clock: Callable[[], float]) -> Any:
    """Call the level planner on the baseline readings and record its result; None if it failed."""
    try:
        planned = level_planner(readings)
        record = planned.record() if hasattr(planned, "record") else None
    except Exception as e:  # a planner bug must not stop the watch
        writer.write({"type": "warning", "t_s": round(clock(), 4), "message": f"no planned levels: the planner failed ({e!r})"})
        return None
    if record:
        writer.write({**record, "t_s": round(clock(), 4)})
    return planned


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchResult:
    """What one watch produced."""

    out_dir: str
    timeline_path: str
    """The JSON-lines timeline (complete up to the end, whatever ended it)."""
    plot_path: str | None
    """The plot; None where it could not be drawn (see ``plot_error``)."""
    log_path: str | None
    """The watched command's own output, verbatim (None when attached to a pid)."""
    backend: str
    returncode: int | None
    """The command's exit status as ``subprocess`` gives it (negative: killed by that signal); None for a pid."""
    exit_code: int
    """What watch exits with: the command's status, 128 + N if signal N killed it, 0 for a pid watched to its end."""
    num_samples: int
    """Device readings written (one per device per tick)."""
    phases: tuple[tuple[float, str], ...]
    """(t_s, phase) of each phase change, in order."""
    interrupted: bool
    """True if watch got SIGINT/SIGTERM (and forwarded it to the command)."""
    sampler_error: str | None
    """Why sampling stopped early, if it did."""
    plot_error: str | None
    levels_text: str
    """The per-phase table (and planned vs measured) as printed at the end."""
    log_facts: Any = None
    """What the log reader's ``finish()`` returned (None without a reader)."""
    planned: Any = None
    """What the level planner returned (None without one, or if it failed)."""


def _default_log_reader_factory(engine: str | None = "vllm") -> LogReaderFactory:
    """The reader for ``engine`` ("vllm", "sglang"; None: decided by the log's first recognisable line)."""
    from .engine import reader_factory

    return reader_factory(engine)


def _check_engine(engine: str) -> str:
    from .engine import ENGINES

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}", hint="use --engine auto, vllm or sglang")
    return engine


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class _Phases:
    """The current phase, fed by log lines (from any thread)."""

    def __init__(self, writer: TimelineWriter, clock: Callable[[], float], initial: str, reader_factory: LogReaderFactory | None,
                 *, needs_reader: bool = True) -> None:
        self._writer = writer
        self._clock = clock
        self._lock = threading.Lock()
        self.current = initial
        self.changes: list[tuple[float, str]] = []
        self._reader = None
        self._reader_broken = False
        self._engine_noted = False
        self._line_no = 0
        if reader_factory is not None:
            try:
                self._reader = reader_factory()
            except Exception as e:  # a broken reader must not stop the watch
                writer.write({"type": "warning", "t_s": 0.0, "message": f"log reader could not start: {e!r}"})
        elif needs_reader:
            writer.write({"type": "warning", "t_s": 0.0, "message": "no log reader: phases are not marked"})

    def set(self, phase: str, t: float | None = None, **extra: Any) -> None:
        with self._lock:
            if phase == self.current:
                return
            t = self._clock() if t is None else t
            self.current = phase
            self.changes.append((t, phase))
            self._writer.write({"type": "phase", "t_s": round(t, 4), "phase": phase, **extra})

    def feed(self, line: str, t: float | None = None, **extra: Any) -> None:
        if self._reader is None or self._reader_broken:
            return
        with self._lock:
            self._line_no += 1
            mark = _classify(line)
            if mark is not None:  # a line of vLLM 0.34's startup story (watch/vllm034.py), timed as it comes
                self._writer.write({"type": "mark", "t_s": round(self._clock() if t is None else t, 4),
                                    "kind": mark[0], "blocks": mark[1], "line_no": self._line_no,
                                    "text": line[-300:], **extra})
            try:
                events = self._reader.feed(line) or []
            except Exception as e:
                self._reader_broken = True
                self._writer.write({"type": "warning", "t_s": round(self._clock(), 4), "message": f"log reader failed, phases stop here: {e!r}"})
                return
        t = self._clock() if t is None else t
        if not self._engine_noted and getattr(self._reader, "engine", None) is not None:
            # the auto reader decided which engine's log this is (watch.engine.AutoLogReader)
            self._engine_noted = True
            self._writer.write({"type": "engine", "t_s": round(t, 4), "engine": self._reader.engine,
                                "line_no": getattr(self._reader, "decided_at", None), "source": "log", **extra})
        for ev in events:
            kind = str(getattr(ev, "kind", ""))
            info = {
                "line_no": getattr(ev, "line_no", None),
                "rank": getattr(ev, "rank", None),
                "text": str(getattr(ev, "text", ""))[:500],
                **extra,
            }
            if kind in PHASE_KINDS and kind != self.current:
                self.set(kind, t, values=getattr(ev, "values", None), **info)
            else:
                self._writer.write({"type": "log_event", "t_s": round(t, 4), "kind": kind, "values": getattr(ev, "values", None), **info})

    def finish(self) -> Any:
        if self._reader is None or self._reader_broken or not hasattr(self._reader, "finish"):
            return None
        try:
            with self._lock:
                facts = self._reader.finish()
        except Exception as e:  # e.g. LogParseError: the command printed nothing of vLLM
            self._writer.write({"type": "warning", "t_s": round(self._clock(), 4), "message": f"log reader: {e}"})
            return None
        # lines the reader held (a message that might continue on the next line) come out at the end
        flushed = getattr(self._reader, "flushed_events", None)
        if callable(flushed):
            t = round(self._clock(), 4)
            for ev in flushed() or []:
                self._writer.write({"type": "log_event", "t_s": t, "kind": str(getattr(ev, "kind", "")),
                                    "values": getattr(ev, "values", None), "line_no": getattr(ev, "line_no", None),
                                    "rank": getattr(ev, "rank", None), "text": str(getattr(ev, "text", ""))[:500],
                                    "at_finish": True})
        return facts


class _Sampler(threading.Thread):
    """Reads the backend every ``interval_s`` and writes one sample line per device."""

    def __init__(self, backend: Backend, interval_s: float, writer: TimelineWriter, clock: Callable[[], float],
                 phases: _Phases, tree: ProcessTree | None, max_errors: int = 5) -> None:
        super().__init__(name="vramplan-watch-sampler", daemon=True)
        self.backend = backend
        self.interval_s = interval_s
        self.writer = writer
        self.clock = clock
        self.phases = phases
        self.tree = tree
        self.max_errors = max_errors
        self.stop_event = threading.Event()
        self.error: str | None = None

    def sample_once(self, phase: str | None = None) -> list[DeviceReading]:
        t = self.clock()
        phase = self.phases.current if phase is None else phase
        readings = self.backend.read()
        pids = self.tree.pids() if self.tree is not None else set()
        for r in readings:
            watched = sum(b for p, b in r.processes.items() if p in pids) if r.processes else None
            self.writer.write(
                {
                    "type": "sample",
                    "t_s": round(t, 4),
                    "device": r.device,
                    "name": r.name,
                    "used_bytes": int(r.used_bytes),
                    "total_bytes": int(r.total_bytes),
                    "processes": {str(p): int(b) for p, b in sorted(r.processes.items())},
                    "watched_bytes": watched,
                    "phase": phase,
                }
            )
        return readings

    def run(self) -> None:
        errors = 0
        next_t = self.clock()
        while not self.stop_event.is_set():
            try:
                self.sample_once()
                errors = 0
            except Exception as e:  # the backend failed: record, retry a few times, then stop
                errors += 1
                msg = f"{type(e).__name__}: {e}"
                self.writer.write({"type": "warning", "t_s": round(self.clock(), 4), "message": f"reading failed ({errors}/{self.max_errors}): {msg}"})
                if errors >= self.max_errors:
                    self.error = msg
                    self.writer.write({"type": "sampler_error", "t_s": round(self.clock(), 4), "error": msg})
                    return
            next_t += self.interval_s
            now = self.clock()
            if next_t < now:  # a slow reading (npu-smi): no burst to catch up
                next_t = now
            self.stop_event.wait(next_t - now)

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


class _Pump(threading.Thread):
    """Copies one pipe of the child to our terminal as it comes, and its lines to the log and the reader."""

    def __init__(self, fd: int, target: Any, stream_name: str, on_line: Callable[[str, str], None]) -> None:
        super().__init__(name=f"vramplan-watch-{stream_name}", daemon=True)
        self.fd = fd
        self.target = target
        self.stream_name = stream_name
        self.on_line = on_line

    def _write(self, chunk: bytes) -> None:
        if self.target is None:
            return
        try:
            buf: BinaryIO | None = getattr(self.target, "buffer", None)
            if buf is not None:
                buf.write(chunk)
                buf.flush()
            else:
                self.target.write(chunk.decode("utf-8", errors="replace"))
                self.target.flush()
        except (OSError, ValueError):
            self.target = None  # our terminal went away: keep recording anyway

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self._write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._line(raw)
        if pending:
            self._line(pending)
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if "\r" in text:  # progress bars redraw with \r: the reader gets the last state
            text = text.rsplit("\r", 1)[-1]
        try:
            self.on_line(text, self.stream_name)
        except Exception:
            pass


class _Signals:
    """SIGINT/SIGTERM set a flag instead of raising; restored on exit. Main thread only."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.count = 0
        self.last: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.last = signum
        self.event.set()

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old[s] = signal.signal(s, self._handler)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            try:
                signal.signal(s, h)
            except (ValueError, OSError):
                pass


def _resolve_backend(backend: str | Backend) -> Backend:
    return select_backend(backend) if isinstance(backend, str) else backend


def _check_interval(interval_s: float | None, backend: Backend) -> float:
    if interval_s is None:
        return float(getattr(backend, "default_interval_s", 0.2))
    if not (0 < interval_s <= 3600):
        raise InputError(f"the sampling interval must be above 0 s, not {interval_s}", hint="use e.g. --interval 0.1 (10 Hz) or 0.2 (5 Hz)")
    return float(interval_s)


def _prepare_out_dir(out_dir: str | os.PathLike[str] | None) -> str:
    if out_dir is None:
        out_dir = "vramplan-watch-" + time.strftime("%Y%m%d-%H%M%S")
    out = os.fspath(out_dir)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder {out}: {e.strerror}", hint="pass --out with a folder you can write") from None
    return out


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return 0
    return 128 + (-returncode) if returncode < 0 else returncode


def _finish(
    *, out_dir: str, writer: TimelineWriter, sampler: _Sampler | None, phases: _Phases | None, backend: Backend,
    clock: Callable[[], float], plan: Mapping[str, int] | None, plot_format: str, log_path: str | None, returncode: int | None,
    exit_code: int, interrupted: bool, planned: Any = None,
) -> WatchResult:
    """Stop everything and write what was seen. Must not raise."""
    if sampler is not None:
        sampler.stop()
    try:
        backend.close()
    except Exception:
        pass
    facts = phases.finish() if phases is not None else None
    sampler_error = sampler.error if sampler is not None else None
    writer.write({"type": "end", "t_s": round(clock(), 4), "num_samples": writer.num_samples, "exit_code": exit_code})
    writer.close()
    records = load_timeline(writer.path)
    try:  # a vLLM 0.34 log with the extensible KV cache is told in its own phases (watch/vllm034.py)
        records = apply_story(records)[0]
    except Exception as e:  # the record is kept as the reader marked it
        writer_note = f"(the vLLM 0.34 phases could not be marked: {e!r})"
    else:
        writer_note = ""
    try:
        levels_text = format_levels(records, plan, level_phases=getattr(planned, "level_phases", None) or None)
    except Exception as e:  # the table is a courtesy; the file is the record
        levels_text = f"(could not tabulate the levels: {e!r})"
    if writer_note:
        levels_text += "\n" + writer_note
    if planned is not None:  # a plan made by the level planner (SGLang): what it was, or why there is none
        try:
            extra = [x for x in (getattr(planned, "summary", None), getattr(planned, "note", None)) if x]
            table = planned.log_table(facts) if hasattr(planned, "log_table") else ""
            levels_text = "\n\n".join([levels_text, *(["\n".join(extra)] if extra else []), *([table] if table else [])])
        except Exception as e:
            levels_text += f"\n(could not compare the plan with the log: {e!r})"
    plot_path, plot_error = None, None
    try:
        from .plot import plot_timeline

        plot_path = plot_timeline(records, os.path.join(out_dir, f"timeline.{plot_format}"), levels=plan)
    except ImportError as e:
        plot_error = f"matplotlib is not installed ({e}); pip install 'vramplan[plot]' and run vramplan.watch.plot_timeline on the file"
    except Exception as e:
        plot_error = f"{type(e).__name__}: {e}"
    return WatchResult(
        out_dir=out_dir,
        timeline_path=writer.path,
        plot_path=plot_path,
        log_path=log_path,
        backend=getattr(backend, "name", type(backend).__name__),
        returncode=returncode,
        exit_code=exit_code,
        num_samples=writer.num_samples,
        phases=tuple(phases.changes) if phases is not None else (),
        interrupted=interrupted,
        sampler_error=sampler_error,
        plot_error=plot_error,
        levels_text=levels_text,
        log_facts=facts,
        planned=planned,
    )


def watch_command(
    argv: Sequence[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    interval_s: float | None = None,
    backend: str | Backend = "auto",
    plan: Mapping[str, int] | None = None,
    log_reader_factory: LogReaderFactory | None | str = "default",
    stdout: Any = "inherit",
    stderr: Any = "inherit",
    env: Mapping[str, str] | None = None,
    plot_format: str = "png",
    grace_s: float = 15.0,
    engine: str = "auto",
    level_planner: LevelPlanner | None = None,
) -> WatchResult:
    """Start ``argv``, record device memory until it exits, and write timeline, log and plot.

    The command's stdout and stderr are passed through to ours as they come (pass
    ``stdout=None``/``stderr=None`` to silence them) and read line by line for phases.
    It runs in a session of its own with ``PYTHONUNBUFFERED=1``, so log lines come at
    once and a Ctrl-C reaches it only through watch: SIGINT/SIGTERM to watch are
    forwarded to its process group, sampling stops and the record is written; if it
    has not exited ``grace_s`` later (or on a second Ctrl-C) it is killed.

    ``interval_s`` defaults to the backend's (0.1 s NVML, 0.2 s npu-smi / nvidia-smi).
    ``plan`` maps labels to planned bytes above the baseline (dashed lines, and the
    planned-vs-measured table). ``level_planner``, if given, is called with the baseline readings
    (before the command starts) and returns an object with ``levels`` (added under ``plan``'s),
    ``level_phases`` (label -> (phase, statistic)), ``note``, ``summary``, ``record()`` (written to the
    timeline) and ``log_table(facts)``; watch plans a watched SGLang command this way
    (engines/sglang/watch_levels.py). It must not raise; if it does, a warning is recorded and watch goes on.
    Raises :class:`DeviceError` before starting anything
    if no backend works, :class:`InputError` if the command cannot be started.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise InputError("no command to watch", hint="put it after --, e.g. vramplan watch -- vllm serve MODEL")
    engine = _check_engine(engine)
    chosen: str | None
    if engine == "auto":
        from .engine import engine_from_argv

        chosen, source = engine_from_argv(argv), "command"
        if chosen is None:
            source = "log"  # neither server named: the log's first recognisable line decides
    else:
        chosen, source = engine, "flag"
    be = _resolve_backend(backend)
    interval = _check_interval(interval_s, be)
    out = _prepare_out_dir(out_dir)
    if log_reader_factory == "default":
        log_reader_factory = _default_log_reader_factory(chosen)
    if stdout == "inherit":
        stdout = sys.stdout
    if stderr == "inherit":
        stderr = sys.stderr

    t0 = time.monotonic()
    clock = lambda: time.monotonic() - t0  # noqa: E731
    writer = TimelineWriter(os.path.join(out, "timeline.jsonl"))
    writer.write({"type": "header", "format": TIMELINE_FORMAT, "backend": getattr(be, "name", "?"), "interval_s": interval,
                  "argv": argv, "pid": None, "started_at": _now_iso(), "levels": dict(plan) if plan else None,
                  "engine": chosen, "engine_source": source})
    phases = _Phases(writer, clock, "before_start", log_reader_factory)
    sampler = _Sampler(be, interval, writer, clock, phases, None)
    log_path = os.path.join(out, "output.log")
    log_file = open(log_path, "w", encoding="utf-8")
    log_lock = threading.Lock()
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    interrupted = False
    pumps: list[_Pump] = []
    planned: Any = None

    def on_line(text: str, stream: str) -> None:
        t = clock()
        with log_lock:
            if not log_file.closed:
                log_file.write(text + "\n")
                log_file.flush()
        phases.feed(text, t, stream=stream)

    try:
        try:
            baseline = sampler.sample_once("before_start")  # the baseline: what is in use before the server
        except Exception as e:
            writer.write({"type": "sampler_error", "t_s": round(clock(), 4), "error": f"{type(e).__name__}: {e}"})
            raise DeviceError(f"the {getattr(be, 'name', '')} backend could not read the devices: {e}", hint="check the driver, or choose another --backend") from e
        if level_planner is not None:
            planned = _run_level_planner(level_planner, baseline, writer, clock)
            if planned is not None and getattr(planned, "levels", None):
                plan = {**planned.levels, **dict(plan or {})}  # --level values win over the plan's
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        with _Signals() as sig:
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                        env=child_env, start_new_session=True)
            except OSError as e:
                writer.write({"type": "warning", "t_s": round(clock(), 4), "message": f"could not start the command: {e}"})
                raise InputError(f"cannot start {argv[0]!r}: {e.strerror or e}", hint="check the command after --") from None
            sampler.tree = ProcessTree(proc.pid)
            writer.write({"type": "started", "t_s": round(clock(), 4), "pid": proc.pid, "process_tree": sampler.tree.method})
            phases.set("starting")
            assert proc.stdout is not None and proc.stderr is not None
            pumps = [
                _Pump(os.dup(proc.stdout.fileno()), stdout, "stdout", on_line),
                _Pump(os.dup(proc.stderr.fileno()), stderr, "stderr", on_line),
            ]
            proc.stdout.close()
            proc.stderr.close()
            for p in pumps:
                p.start()
            sampler.start()

            deadline: float | None = None
            handled = 0
            while proc.poll() is None:
                if sig.count > handled:
                    handled = sig.count
                    if not interrupted:
                        interrupted = True
                        name = signal.Signals(sig.last).name if sig.last else "SIGINT"
                        writer.write({"type": "interrupted", "t_s": round(clock(), 4), "signal": name})
                        sampler.stop()
                        _signal_group(proc, sig.last or signal.SIGINT)
                        deadline = time.monotonic() + grace_s
                    else:  # a second Ctrl-C: no more waiting
                        _signal_group(proc, signal.SIGKILL)
                if deadline is not None and time.monotonic() > deadline:
                    writer.write({"type": "warning", "t_s": round(clock(), 4), "message": f"command still running {grace_s:g}s after the signal: killed"})
                    _signal_group(proc, signal.SIGKILL)
                    deadline = None
                sig.event.wait(0.05)
                sig.event.clear()
            returncode = proc.returncode
            signame = None
            if returncode is not None and returncode < 0:
                try:
                    signame = signal.Signals(-returncode).name
                except ValueError:
                    signame = str(-returncode)
            writer.write({"type": "exit", "t_s": round(clock(), 4), "returncode": returncode, "signal": signame})
            for p in pumps:
                p.join(2.0)  # workers that outlive the command may hold the pipes open
            phases.set("exited")
            if sampler.is_alive() and not sampler.stop_event.is_set():
                sampler.stop_event.wait(min(1.5 * interval, 2.0))  # one reading after the exit
    except BaseException as e:  # watch itself failed (or KeyboardInterrupt off the main thread)
        failure = e
        if proc is not None and proc.poll() is None:  # do not leave the server orphaned
            writer.write({"type": "warning", "t_s": round(clock(), 4), "message": f"watch failed ({e!r}); stopping the command"})
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            returncode = proc.returncode
            writer.write({"type": "exit", "t_s": round(clock(), 4), "returncode": returncode, "signal": None})
        if not isinstance(e, Exception):
            interrupted = True
    else:
        failure = None
    with log_lock:
        log_file.close()
    if returncode is not None:
        code = _exit_code(returncode)
    else:
        code = 130 if interrupted else (2 if isinstance(failure, InputError) else 1)
    result = _finish(out_dir=out, writer=writer, sampler=sampler, phases=phases, backend=be, plan=plan, clock=clock,
                     plot_format=plot_format, log_path=log_path, returncode=returncode, exit_code=code,
                     interrupted=interrupted, planned=planned)
    if isinstance(failure, Exception):
        raise failure
    return result


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # its own session: pid == pgid
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass


class _LogFollower(threading.Thread):
    """Reads a log file as it grows (``tail -f``), feeding lines to the phase tracker."""

    def __init__(self, path: str, phases: _Phases, clock: Callable[[], float]) -> None:
        super().__init__(name="vramplan-watch-log", daemon=True)
        self.path = path
        self.phases = phases
        self.clock = clock
        self.stop_event = threading.Event()

    def catch_up(self) -> int:
        """Feed what the file holds already (events stamped at t=0, marked ``before_attach``)."""
        self._f = open(self.path, encoding="utf-8", errors="replace")
        n = 0
        for line in self._f:
            self.phases.feed(line.rstrip("\r\n"), 0.0, before_attach=True)
            n += 1
        return n

    def run(self) -> None:
        pending = ""
        while not self.stop_event.is_set():
            chunk = self._f.readline()
            if not chunk:
                self.stop_event.wait(0.1)
                continue
            pending += chunk
            if pending.endswith("\n"):
                self.phases.feed(pending.rstrip("\r\n"), self.clock())
                pending = ""
        self._f.close()


def watch_pid(
    pid: int,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    interval_s: float | None = None,
    backend: str | Backend = "auto",
    plan: Mapping[str, int] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    log_reader_factory: LogReaderFactory | None | str = "default",
    plot_format: str = "png",
    engine: str = "auto",
    level_planner: LevelPlanner | None = None,
) -> WatchResult:
    """Attach to a running process (and its children, the TP workers) until it exits or Ctrl-C.

    Nothing is forwarded to it: Ctrl-C ends the watch only (exit code 0). Phases come
    from ``log_path`` if given, a file the server writes (read from its start, then
    followed); without it the samples carry the phase ``attached``. ``level_planner`` as for
    :func:`watch_command`, called with one reading taken on attaching, less what the watched
    processes hold (the server's memory is not the baseline).
    """
    if pid <= 0 or not pid_alive(pid):
        raise InputError(f"no running process with pid {pid}", hint="check the pid with ps, or start the server through watch")
    be = _resolve_backend(backend)
    interval = _check_interval(interval_s, be)
    out = _prepare_out_dir(out_dir)
    if log_path is not None and not os.path.isfile(log_path):
        raise InputError(f"no log file at {os.fspath(log_path)}", hint="pass the file the server writes its log to, or leave --log out")
    engine = _check_engine(engine)
    chosen: str | None
    if engine != "auto":
        chosen, source = engine, "flag"
    elif log_path is not None:
        from .engine import engine_from_log_file

        chosen, source = engine_from_log_file(log_path), "log"  # None: the lines still to come decide
    else:
        chosen, source = None, None
    if log_reader_factory == "default":
        log_reader_factory = _default_log_reader_factory(chosen)
    t0 = time.monotonic()
    clock = lambda: time.monotonic() - t0  # noqa: E731
    writer = TimelineWriter(os.path.join(out, "timeline.jsonl"))
    writer.write({"type": "header", "format": TIMELINE_FORMAT, "backend": getattr(be, "name", "?"), "interval_s": interval,
                  "argv": None, "pid": pid, "started_at": _now_iso(), "levels": dict(plan) if plan else None,
                  "engine": chosen, "engine_source": source})
    phases = _Phases(writer, clock, "attached", log_reader_factory if log_path is not None else None,
                     needs_reader=log_path is not None)
    tree = ProcessTree(pid)
    writer.write({"type": "started", "t_s": 0.0, "pid": pid, "process_tree": tree.method, "attached": True})
    sampler = _Sampler(be, interval, writer, clock, phases, tree)
    planned: Any = None
    if level_planner is not None:
        try:
            pids = tree.pids()
            readings = [replace(r, used_bytes=int(r.used_bytes) - sum(b for q, b in r.processes.items() if q in pids))
                        for r in be.read()]
        except Exception as e:  # the sampler will meet the same failure and record it
            readings = []
            writer.write({"type": "warning", "t_s": round(clock(), 4), "message": f"no reading to plan on: {e!r}"})
        if readings:
            planned = _run_level_planner(level_planner, readings, writer, clock)
            if planned is not None and getattr(planned, "levels", None):
                plan = {**planned.levels, **dict(plan or {})}
    follower = _LogFollower(os.fspath(log_path), phases, clock) if log_path is not None else None
    interrupted = False
    try:
        with _Signals() as sig:
            if follower is not None:
                follower.catch_up()
                follower.start()
            sampler.start()
            while pid_alive(pid):
                if sig.count:
                    interrupted = True
                    writer.write({"type": "interrupted", "t_s": round(clock(), 4),
                                  "signal": signal.Signals(sig.last).name if sig.last else "SIGINT"})
                    break
                if not sampler.is_alive():
                    break  # sampling failed for good: nothing more to record
                sig.event.wait(0.1)
            else:
                writer.write({"type": "exit", "t_s": round(clock(), 4), "returncode": None, "signal": None})
                phases.set("exited")
                if sampler.is_alive():
                    sampler.stop_event.wait(min(1.5 * interval, 2.0))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if follower is not None:
            follower.stop_event.set()
            follower.join(1.0)
        result = _finish(out_dir=out, writer=writer, sampler=sampler, phases=phases, backend=be, plan=plan, clock=clock,
                         plot_format=plot_format, log_path=None, returncode=None, exit_code=0, interrupted=interrupted,
                         planned=planned)
    return result
