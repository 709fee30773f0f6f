"""The streaming reader: ``LogReader.feed(line)`` per raw line, ``finish()`` for the facts."""

from __future__ import annotations

import io
import os
import sys
from collections import deque
from typing import IO, Iterator

from ....errors import LogParseError
from ._lines import clean_line, starts_new_record, strip_ansi
from ._model import ERAS, RANK_FIELDS, LogEvent, LogFacts, RankFacts
from ._rules import FAMILIES, GATE_FAMILIES, GATE_LOWER, GATE_RX, WRAPPABLE, family_complete

__all__ = ["LogReader", "read_log", "parse_log_text", "MAX_LINE_CHARS"]

MAX_LINE_CHARS = 1 << 20
"""Longer lines are cut (the rest of the line is ignored)."""

_MAX_CONT = {"raw": 8, "space": 6}
_V1_ERAS = ("v1-v0.34", "v1-v0.33", "v1-v0.26", "v1-pr21429", "v1-pr19312", "v1-pre-pr19312")
_V0_ERAS = ("v0-pr10511", "v0-pr9352", "v0-early")
_PHASE_ORDER = ("startup", "weight_loading", "profiling", "kv_sizing", "kv_allocation", "graph_capture", "warmup", "serving")
# internal phase after each phase event (for inferring where an OOM happened)
_AFTER_EVENT = {
    "weights_loaded": "profiling", "profiling_done": "kv_sizing", "kv_allocated": "kv_allocation",
    "graphs_captured": "warmup", "ready": "serving", "request": "serving",
}
_OOM_SUB = {
    "weight_loading": "oom_during_weight_loading", "profiling": "oom_during_profiling", "kv_sizing": "oom_during_kv_allocation",
    "kv_allocation": "oom_during_kv_allocation", "graph_capture": "oom_during_graph_capture", "warmup": "oom_during_warmup",
    "serving": "oom_while_serving",
}
# traceback frames -> phase, most specific first
_FRAME_PHASE = (
    ("_dummy_sampler_run", "warmup", "oom_during_sampler_warmup"),
    # vLLM v0.34.0 v1/worker/gpu/warmup.py:warmup_kernels, called from _initialize_kv_caches after the cache is
    # committed (a line of that frame also reads 'initialize_kv_cache')
    ("warmup_kernels", "warmup", "oom_during_warmup"),
    ("_dummy_pooler_run", "warmup", "oom_during_pooler_warmup"),
    ("capture_model", "graph_capture", "oom_during_graph_capture"),
    ("_capture_cudagraphs", "graph_capture", "oom_during_graph_capture"),
    ("_allocate_kv_cache_tensors", "kv_allocation", "oom_during_kv_allocation"),
    ("_allocate_kv_cache", "kv_allocation", "oom_during_kv_allocation"),
    ("initialize_kv_cache", "kv_allocation", "oom_during_kv_allocation"),
    ("_init_cache_engine", "kv_allocation", "oom_during_kv_allocation"),
    ("initialize_cache", "kv_allocation", "oom_during_kv_allocation"),
    ("profile_encoder_cache", "profiling", "oom_during_profiling"),
    ("profile_run", "profiling", "oom_during_profiling"),
    ("determine_available_memory", "profiling", "oom_during_profiling"),
    ("determine_num_available_blocks", "profiling", "oom_during_profiling"),
    ("initialize_from_config", "kv_allocation", "oom_during_kv_allocation"),
    ("compile_or_warm_up_model", "warmup", "oom_during_warmup"),
    ("load_weights", "weight_loading", "oom_during_weight_loading"),
    ("load_model", "weight_loading", "oom_during_weight_loading"),
    ("execute_model", "serving", "oom_while_serving"),
)
_FRAME_NAMES = tuple(n for n, _, _ in _FRAME_PHASE)
_ANCHORS = tuple(f[2] for f in FAMILIES)
_REQUEST_ANCHORS = next(f[2] for f in FAMILIES if f[0] == "request")
_CAPTURE_IDX = next(i for i, f in enumerate(FAMILIES) if f[0] == "capture_start")
_LOWER_TOKENS = tuple(t for t, _ in GATE_LOWER)
# families that vLLM logs at DEBUG level, and literals that every such line contains
_DEBUG_TOKENS = ("emory", "profiling", "HCCL", "Defaulting", "rror", "Traceback")
_FIXED_SUBS = ("oom_during_weight_loading", "oom_during_sampler_warmup", "oom_during_pooler_warmup")


def _join_wrapped(held: str, cont: str, last_len: int) -> str:
    """Join a continuation line to a held message. A terminal cuts at a fixed width, inside a word or number
    ('...weights memory: 16.' / '79GiB'): a long held line whose last and next characters are both word
    characters is joined as is; otherwise one space stands for the line break (prose reflowed by a copy)."""
    if cont[:1].isspace() or held[-1:].isspace():
        return held + cont
    if last_len >= 80 and (held[-1:].isalnum() or held[-1:] in "._") and (cont[:1].isalnum() or cont[:1] in "._"):
        return held + cont
    return held + " " + cont


class _Line:
    """One logical line (a raw line, or a wrapped one joined back) being recognised."""

    __slots__ = ("no", "raw", "text", "rank", "level", "timestamp", "src")

    def __init__(self, no: int, raw: str) -> None:
        self.no = no
        self.raw = raw
        c = clean_line(raw)
        self.text = c.text
        self.rank = c.rank
        self.level = c.level
        self.timestamp = c.timestamp
        self.src = c.src


class LogReader:
    """Streaming vLLM log reader.

    ``feed(line)`` takes one raw line (with or without its newline) and returns the events recognised
    so far: usually those of that line. A line that starts a message vLLM's text continues on the next
    line(s) (a terminal- or copy-paste-wrapped line) is held until the message is complete or the next
    line starts a new record; its events come with the call that completes it (or with ``finish()``),
    numbered with the first line. ``finish()`` returns the :class:`LogFacts`.
    """

    def __init__(self) -> None:
        self._n = 0
        self._events: list[LogEvent] = []
        self._out: list[LogEvent] | None = None
        self._ranks: dict[str, dict[str, tuple[object, int, int]]] = {}
        self._extras: dict[str, dict] = {}
        self._rank_order: list[str] = []
        self.args: dict = {}
        self._arg_prio: dict[str, int] = {}
        self.env: dict = {}
        self.packages: dict = {}
        self.source_files: set[str] = set()
        self._src_texts: dict[str, str] = {}
        self._timings: dict = {}
        self._warnings: dict[str, None] = {}
        self._errors: list[tuple[int, int, str, str | None, str | None, str | None, str | None]] = []
        self._era_markers: set[str] = set()
        self._engine_votes = {"v0": 0, "v1": 0}
        self._runner_markers: set[str] = set()
        self._platform: dict[str, int] = {}
        self._version: tuple[str, int] | None = None
        self._model: tuple[str, int] | None = None
        self.architecture: str | None = None
        self.device_name: str | None = None
        self._estimate_applied: bool | None = None
        self._phase = "startup"
        self._frames: deque[tuple[int, str]] = deque(maxlen=20_000)
        self._tb_window = 0
        self._table: dict | None = None
        self._pending: dict | None = None
        self._burst = False
        self._num_request_lines = 0
        self._nul_lines = 0
        self._vllm_lines = 0
        self.internal_errors: list[str] = []
        self._finished: LogFacts | None = None

    # ------------------------------------------------------------------------------------------ feeding

    def feed(self, line: str) -> list[LogEvent]:
        """Read one raw line; return the events recognised (see class doc)."""
        self._n += 1
        no = self._n
        if self._pending is None and self._table is None and self._tb_window <= 0 and no > 2000:
            # the hot path: most lines of a long log carry nothing for us; reject them with as few scans as possible
            if self._burst:
                for a in _REQUEST_ANCHORS:
                    if a in line:
                        self._num_request_lines += 1
                        return []
            if 0 <= line.find("DEBUG ", 0, 120):
                for tok in _DEBUG_TOKENS:
                    if tok in line:
                        break
                else:
                    return []
            elif GATE_RX.search(line) is None:
                for tok in _LOWER_TOKENS:
                    if tok in line:
                        break
                else:
                    return []
        out: list[LogEvent] = []
        self._out = out
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS]
        raw = line.rstrip("\r\n")
        if no <= 2000 and "\x00" in raw:
            self._nul_lines += 1
            raw = raw.replace("\x00", "")
        try:
            if self._pending is not None:
                if self._continue_pending(raw):
                    return out
            if self._table is not None and self._table_row(no, raw):
                return out
            if self._tb_window > 0:
                self._tb_window -= 1
                if "File \"" not in raw and "Traceback" not in raw:
                    self._frame_scan(raw)
            self._process(no, raw)
        except (ValueError, IndexError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError) as e:
            self.internal_errors.append(f"line {no}: {e!r}")
        return out

    def _process(self, no: int, raw: str, *, joined: bool = False) -> None:
        if self._burst and not joined:
            # request lines inside a burst are only counted (the hot path of a serving log)
            for a in _REQUEST_ANCHORS:
                if a in raw:
                    self._num_request_lines += 1
                    return
        m = GATE_RX.search(raw)
        low = None
        for tok, idxs in GATE_LOWER:
            if tok in raw:
                low = idxs if low is None else tuple(sorted(set(low) | set(idxs)))
        if m is None and low is None:
            return
        if m is not None:
            toks = GATE_RX.findall(raw, m.end())
            if toks or low:
                fams: set[int] = set(GATE_FAMILIES[m.group(0)])
                for tok in toks:
                    fams.update(GATE_FAMILIES[tok])
                if low:
                    fams.update(low)
                cand: tuple[int, ...] | list[int] = sorted(fams)
            else:
                cand = GATE_FAMILIES[m.group(0)]
        else:
            cand = low  # type: ignore[assignment]
        hits = []
        for idx in cand:
            for a in _ANCHORS[idx]:
                if a in raw:
                    hits.append(idx)
                    break
        if not hits:
            return
        if hits == [_CAPTURE_IDX]:  # tqdm 'Capturing CUDA graphs' bars: many, and only a phase hint
            self.set_phase("graph_capture")
            return
        ln = _Line(no, raw)
        if not joined:
            for idx in hits:
                name = FAMILIES[idx][0]
                if name in WRAPPABLE and not family_complete(name, ln.text):
                    self._pending = {"no": no, "raw": raw, "mode": WRAPPABLE[name], "count": 0, "last_len": len(raw)}
                    return
        if ln.src is not None:
            self._vllm_lines += 1
            src = ln.src
            if (src.startswith("worker_v1.py") or src.partition(":")[0].endswith("extensible_kv_cache.py")) \
                    and len(self.source_files) < 64:
                self.source_files.add(src.partition(":")[0])
            if src not in self._src_texts and len(self._src_texts) < 400:
                self._src_texts[src] = ln.text[:200]
            if "v1/" in src or src.startswith(("gpu_worker.py", "gpu_model_runner.py", "kv_cache_utils.py", "core.py")):
                self.engine_vote("v1")
            elif src.startswith(("worker.py", "executor_base.py", "gpu_executor.py", "distributed_gpu_executor.py",
                                 "llm_engine.py", "model_runner.py")):
                self.engine_vote("v0")
        for idx in hits:
            handler = FAMILIES[idx][3]
            try:
                handler(self, ln)  # type: ignore[operator]
            except (ValueError, IndexError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError) as e:
                self.internal_errors.append(f"line {no} ({FAMILIES[idx][0]}): {e!r}")

    def _continue_pending(self, raw: str) -> bool:
        """Try to append ``raw`` to the held line; True if it was consumed."""
        p = self._pending
        assert p is not None
        limit = _MAX_CONT[p["mode"]]
        if p["count"] < limit and not starts_new_record(raw) and len(p["raw"]) < 200_000:
            cont = strip_ansi(raw)
            p["raw"] = p["raw"] + cont if p["mode"] == "raw" else _join_wrapped(p["raw"], cont, p["last_len"])
            p["last_len"] = len(cont)
            p["count"] += 1
            text = clean_line(p["raw"]).text
            done = True
            for idx in range(len(FAMILIES)):
                name = FAMILIES[idx][0]
                if name in WRAPPABLE and any(a in p["raw"] for a in FAMILIES[idx][2]) and not family_complete(name, text):
                    done = False
                    break
            if done or p["count"] >= limit:
                self._flush_pending()
            return True
        self._flush_pending()
        return False

    def _flush_pending(self) -> None:
        p = self._pending
        self._pending = None
        if p is not None:
            self._process(p["no"], p["raw"], joined=True)

    # -- the PR #10511 table ('Memory profiling results:' then one 'key   value' row per line)

    def start_table(self, ln: _Line) -> None:
        self._table = {"rank": ln.rank, "left": 12, "vals": {}, "no": ln.no, "text": ln.text, "ts": ln.timestamp}

    def _table_row(self, no: int, raw: str) -> bool:
        from ._rules import TABLE_KEYS, TABLE_ROW

        t = self._table
        assert t is not None
        c = clean_line(raw)
        m = TABLE_ROW.fullmatch(c.text) if c.rank == t["rank"] and t["left"] > 0 else None
        key = m.group(1).strip().lower() if m else None
        if m is None or key not in TABLE_KEYS:
            self._close_table()
            return False
        t["left"] -= 1
        field = TABLE_KEYS[key]
        num = m.group(2)
        if num is not None:
            v = float(num)
            if field == "profile_s":
                self.timing("profile_s", v)
            else:
                ln = _Line(no, raw)
                self.put(ln, field, v, 3)
            t["vals"][field] = v
        return True

    def _close_table(self) -> None:
        t = self._table
        self._table = None
        if t and t["vals"]:
            ln = _Line(t["no"], t["text"])
            ln.rank, ln.timestamp = t["rank"], t["ts"]
            self.era_marker("v0-pr10511")
            self.emit(ln, "memory_profile", dict(t["vals"]), phase="profiling_done" if "kv_cache_gib" in t["vals"] else None)

    # ------------------------------------------------------------------------------------ handler API

    def _key(self, ln: _Line) -> str:
        k = ln.rank or "main"
        if k not in self._ranks:
            self._ranks[k] = {}
            self._extras[k] = {}
            self._rank_order.append(k)
        return k

    def put(self, ln: _Line, field: str, value: object, prio: int) -> None:
        """Record a figure for the line's rank; a lower-priority source never replaces a higher one."""
        if value is None:
            return
        d = self._ranks[self._key(ln)]
        old = d.get(field)
        if old is None or prio >= old[1]:
            d[field] = (value, prio, ln.no)

    def has(self, ln: _Line, field: str) -> bool:
        return field in self._ranks.get(ln.rank or "main", {})

    def extra(self, ln: _Line, key: str, value: object) -> None:
        if value is not None:
            self._extras[self._key(ln)][key] = value

    def timing(self, key: str, value: float | None) -> None:
        if value is not None:
            self._timings[key] = value

    def set_arg(self, key: str, value: object, prio: int) -> None:
        """Engine flag; later sources fill gaps, equal or higher priority replaces."""
        if value is None and prio < 3:
            return
        if key not in self.args or prio >= self._arg_prio.get(key, -1):
            self.args[key] = value
            self._arg_prio[key] = prio

    def set_version(self, v: str, prio: int) -> None:
        if self._version is None or prio > self._version[1]:
            self._version = (v, prio)

    def set_model(self, m: str, prio: int) -> None:
        if m and (self._model is None or prio > self._model[1]):
            self._model = (m, prio)

    def era_marker(self, era: str) -> None:
        self._era_markers.add(era)

    def engine_vote(self, gen: str) -> None:
        self._engine_votes[gen] += 1

    def runner_marker(self, r: str) -> None:
        self._runner_markers.add(r)

    def platform_hint(self, p: str, strength: int) -> None:
        if strength > self._platform.get(p, 0):
            self._platform[p] = strength

    def estimate_applied(self, v: bool) -> None:
        self._estimate_applied = v

    def warn(self, ln: _Line, values: dict) -> None:
        self._warnings[ln.text[:2000]] = None
        self.emit(ln, "warning", values)

    def set_phase(self, phase: str) -> None:
        if _PHASE_ORDER.index(phase) > _PHASE_ORDER.index(self._phase) or phase == "serving":
            self._phase = phase

    def is_serving(self) -> bool:
        return self._phase == "serving"

    def frames_reset(self) -> None:
        self._frames.clear()
        self._tb_window = 80

    def frame(self, name: str) -> None:
        self._frames.append((self._n, name))
        self._tb_window = max(self._tb_window, 40)

    def _frame_scan(self, raw: str) -> None:
        for name in _FRAME_NAMES:
            if name in raw:
                self._frames.append((self._n, name))
                return

    def _frames_near(self, no: int, side: str) -> tuple[str | None, str | None] | None:
        lo, hi = (no - 150, no) if side == "before" else (no, no + 150)
        near = {name for n, name in self._frames if lo <= n <= hi}
        for name, phase, sub in _FRAME_PHASE:
            if name in near:
                return sub, phase
        return None

    def oom_phase(self, ln: _Line, *, generic: bool = False) -> tuple[str | None, str | None]:
        """(subkind, phase) of a failure at this line: from the traceback frames just before it, else from
        the startup phase reached. ``finish()`` looks again, with the frames that follow too."""
        got = self._frames_near(ln.no, "before")
        if got is not None:
            return got
        if self._phase == "startup" and not self._events:
            return None, None
        phase = self._phase if self._phase != "startup" else None
        if phase == "kv_sizing":
            phase = "kv_allocation"
        return (_OOM_SUB.get(phase) if phase else None), phase

    def error(self, ln: _Line, kind: str, sub: str | None, phase: str | None, prio: int, *, start: str | None,
              values: dict | None = None) -> None:
        text = ln.text
        msg = text
        if start:
            i = text.find(start)
            if i >= 0:
                j = i
                # keep a leading 'torch.OutOfMemoryError: ' / 'ValueError: ' that names the exception
                k = text.rfind(": ", 0, i)
                if k >= 0 and i - k == 2:
                    exc_start = text.rfind(" ", 0, k) + 1
                    exc = text[exc_start:k].lstrip("`")
                    if exc.endswith(("Error", "Exception")) and exc.replace(".", "").replace("_", "").isalnum():
                        j = text.find(exc, exc_start)
                msg = text[j:]
        msg = msg.strip().strip("`").strip()
        resolve = "before" if kind == "out_of_memory" and sub not in _FIXED_SUBS else ("after" if kind == "startup_failed" else None)
        self._errors.append((prio, ln.no, kind, sub, msg, phase, resolve))
        vals = {"error_kind": kind, "error_subkind": sub, "error_phase": phase}
        if values:
            vals.update(values)
        self.emit(ln, "error", vals, as_phase=True)

    def emit(self, ln: _Line, kind: str, values: dict, *, phase: str | None = None, as_phase: bool = False) -> None:
        """Record an event (and the phase event before it, if ``phase``)."""
        if phase is not None:
            self._emit_one(ln, phase, {})
        self._emit_one(ln, kind, values)
        if as_phase:
            phase = kind
        if phase is not None and phase in _AFTER_EVENT:
            self.set_phase(_AFTER_EVENT[phase])
        self._burst = kind == "request"

    def _emit_one(self, ln: _Line, kind: str, values: dict) -> None:
        ev = LogEvent(line_no=ln.no, kind=kind, rank=ln.rank, values=values, text=ln.text, timestamp=ln.timestamp)
        self._events.append(ev)
        if self._out is not None:
            self._out.append(ev)
        if kind == "request":
            self._num_request_lines += 1

    # ------------------------------------------------------------------------------------------ finish

    def finish(self) -> LogFacts:
        """Flush held lines and return the facts. Raises LogParseError if nothing of vLLM was found."""
        if self._finished is not None:
            return self._finished
        self._out = []
        if self._pending is not None:
            self._flush_pending()
        if self._table is not None:
            self._close_table()
        facts = self._assemble()
        self._finished = facts
        return facts

    def flushed_events(self) -> list[LogEvent]:
        """Events released by ``finish()`` (held wrapped lines, an open table)."""
        return list(self._out or [])

    def _rank_sort_key(self, k: str) -> tuple:
        import re as _re

        parts = dict((a, int(b)) for a, b in _re.findall(r"(DP|PP|PCP|TP|DCP|EP)(\d+)", k))
        tp_size = self.args.get("tensor_parallel_size")
        pp_size = self.args.get("pipeline_parallel_size")
        m = _re.fullmatch(r"rank(\d+)", k)
        if m and isinstance(tp_size, int) and isinstance(pp_size, int) and tp_size > 0 and pp_size > 1:
            r = int(m.group(1))
            parts = {"PP": r // tp_size, "TP": r % tp_size}
        if parts and set(parts) != {"DP"}:  # a worker of a parallel layout
            return (0, -parts.get("PP", 0), parts.get("DP", 0), parts.get("PCP", 0), parts.get("TP", 0), parts.get("DCP", 0),
                    parts.get("EP", 0), 0)
        if m:
            return (0, 0, 0, 0, int(m.group(1)), 0, 0, 1)
        if parts:  # 'DP1': an engine core (its own worker when TP = PP = 1)
            return (1, 0, parts["DP"], 0, 0, 0, 0, 0)
        if k in ("main", "Worker", "EngineCore"):
            return (1, 0, 0, 0, 0, 0, 0, 0)
        if k.startswith("pid"):
            return (3, 0, 0, 0, 0, 0, 0, int(k[3:]) if k[3:].isdecimal() else 0)
        return (2, 0, 0, 0, 0, 0, 0, self._rank_order.index(k))

    def _assemble(self) -> LogFacts:
        # ranks in preference order (see LogFacts doc)
        order = sorted(self._ranks, key=self._rank_sort_key)
        ranks: dict[str, RankFacts] = {}
        for k in self._rank_order:
            d = self._ranks[k]
            ranks[k] = RankFacts(rank=k, extras=dict(self._extras.get(k, {})), **{f: v[0] for f, v in d.items() if f in RANK_FIELDS})
        fields: dict[str, object] = {}
        figure_ranks: dict[str, str] = {}
        for f in RANK_FIELDS:
            best = None
            for k in order:
                v = self._ranks[k].get(f)
                if v is not None and (best is None or v[1] > best[0][1]):
                    best = (v, k)
                    if v[1] >= 2:
                        break
            if best is not None:
                fields[f] = best[0][0]
                figure_ranks[f] = best[1]
        primary = next((k for k in order if any(f in self._ranks[k] for f in RANK_FIELDS)), None)
        if fields.get("weights_gib") is None and fields.get("profile_weights_gib") is not None:
            fields["weights_gib"] = fields["profile_weights_gib"]
            figure_ranks["weights_gib"] = figure_ranks["profile_weights_gib"]
        if fields.get("block_size") is None and isinstance(self.args.get("block_size"), int):
            fields["block_size"] = self.args["block_size"]
        if fields.get("max_concurrency") is not None and fields.get("max_concurrency_len") is None:
            mml = self.args.get("max_model_len")
            if isinstance(mml, int) and mml > 0:
                fields["max_concurrency_len"] = mml
        if isinstance(fields.get("gpu_memory_utilization"), float):
            self.set_arg("gpu_memory_utilization", fields["gpu_memory_utilization"], 0)

        # error: the most specific, then the earliest
        error = None
        if self._errors:
            error = sorted(self._errors, key=lambda e: (-e[0], e[1]))[0]
            if error[6] is not None:  # the traceback may come after the marker ('WorkerProc hit an exception.')
                sides = ("before", "after") if error[6] == "before" else ("after", "before")
                for side in sides:
                    got = self._frames_near(error[1], side)
                    if got is not None:
                        sub = got[0] if error[2] == "out_of_memory" else None
                        error = (error[0], error[1], error[2], sub, error[4], got[1], None)
                        break
        kv = fields.get("kv_cache_gib")
        if (error is None or error[0] < 2) and isinstance(kv, float) and kv < 0:
            src = next((self._ranks[k]["kv_cache_gib"] for k in order if "kv_cache_gib" in self._ranks[k]), None)
            line_no = src[2] if src else 0
            ev = next((e for e in self._events if e.line_no == line_no and e.kind in ("kv_cache_memory", "memory_profile")), None)
            error = (2, line_no, "no_kv_cache_memory", "negative_kv_cache", ev.text if ev else None, "kv_sizing", None)
        elif (error is None or error[0] < 2) and fields.get("num_gpu_blocks") == 0:
            src = next((self._ranks[k]["num_gpu_blocks"] for k in order if "num_gpu_blocks" in self._ranks[k]), None)
            line_no = src[2] if src else 0
            ev = next((e for e in self._events if e.line_no == line_no and e.kind == "num_gpu_blocks"), None)
            error = (2, line_no, "no_kv_cache_memory", "zero_gpu_blocks", ev.text if ev else None, "kv_sizing", None)

        era = self._era()
        platform = self._platform_choice(era)
        runner = None
        if era.startswith("v1") or era == "ascend":
            if "v2" in self._runner_markers:
                runner = "v2"
            elif "v1" in self._runner_markers or "weights_gib" in fields:
                runner = "v1" if "v1" in self._runner_markers else None
        model = self._model[0] if self._model else None
        if isinstance(self.args.get("model"), str) and self.args["model"] and (self._model is None or self._model[1] < 2):
            model = self.args["model"]

        evidence = (bool(self._events) or bool(self.args) or self._version is not None or self.architecture is not None
                    or self._vllm_lines > 0 or any(v >= 3 for v in self._platform.values()))
        if not evidence:
            if self._nul_lines:
                msg = f"no vLLM log lines found: this looks like a binary file ({self._nul_lines} of {self._n} lines hold NUL bytes)"
            elif self._n == 0:
                msg = "no vLLM log lines found: the log is empty"
            else:
                msg = f"no vLLM log lines found in {self._n} line(s)"
            raise LogParseError(
                msg,
                hint="pass the vLLM server's stdout+stderr (e.g. `vllm serve ... 2>&1 | tee vllm.log`); a vLLM log has "
                "lines like 'INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 12.3 GiB'",
            )
        return LogFacts(
            vllm_version=self._version[0] if self._version else None,
            era=era,
            platform=platform,
            device_name=self.device_name,
            total_memory_gib=fields.get("total_gib"),  # type: ignore[arg-type]
            model=model,
            architecture=self.architecture,
            runner=runner,
            args=dict(self.args),
            env=dict(self.env),
            packages=dict(self.packages),
            source_files=tuple(sorted(self.source_files)),
            source_lines=tuple(self._src_texts.items()),
            ranks=ranks,
            primary_rank=primary,
            figure_ranks=figure_ranks,
            cudagraph_estimate_applied=self._estimate_applied,
            error_kind=error[2] if error else None,
            error_subkind=error[3] if error else None,
            error_message=error[4] if error else None,
            error_phase=error[5] if error else None,
            error_line_no=error[1] if error else None,
            timings=dict(self._timings),
            events=tuple(self._events),
            warnings=tuple(self._warnings),
            num_lines=self._n,
            num_request_lines=self._num_request_lines,
            **fields,  # type: ignore[arg-type]
        )

    def _era(self) -> str:
        mk = self._era_markers
        if self._platform.get("ascend", 0) >= 1 and ("ascend" in mk or self._platform.get("ascend", 0) >= 2):
            return "ascend"
        for e in _V1_ERAS:
            if e in mk:
                return e
        for e in _V0_ERAS:
            if e in mk:
                return e
        if self._engine_votes["v1"] > self._engine_votes["v0"] or (self._runner_markers and not self._engine_votes["v0"]):
            return "v1-pre-pr19312"
        if self._engine_votes["v0"]:
            return "v0-early"
        if "fork" in mk:
            return "fork"
        return "unknown"

    def _platform_choice(self, era: str) -> str | None:
        if not self._platform:
            return None
        best = max(self._platform.items(), key=lambda kv: (kv[1], kv[0] != "cuda"))
        if era == "ascend" and best[0] == "cuda" and best[1] < 4:
            return "ascend"
        return best[0]


assert set(ERAS) >= set(_V1_ERAS) | set(_V0_ERAS)


def _iter_lines(f: IO[str]) -> Iterator[str]:
    """Lines of a text stream, split on '\\n' only, each at most MAX_LINE_CHARS (the rest skipped)."""
    readline = f.readline
    while True:
        chunk = readline(MAX_LINE_CHARS)
        if not chunk:
            return
        if len(chunk) == MAX_LINE_CHARS and not chunk.endswith("\n"):
            while True:
                more = readline(MAX_LINE_CHARS)
                if not more or more.endswith("\n"):
                    break
        yield chunk


def _read_stream(f: IO[str]) -> LogFacts:
    reader = LogReader()
    feed = reader.feed
    for line in _iter_lines(f):
        feed(line)
    return reader.finish()


def read_log(source: str | os.PathLike | IO[str]) -> LogFacts:
    """Read a vLLM log from a path, "-" (stdin) or a text stream, line by line (never all at once)."""
    if hasattr(source, "readline"):
        return _read_stream(source)  # type: ignore[arg-type]
    if source == "-":
        return _read_stream(sys.stdin)
    path = os.fspath(source)  # type: ignore[arg-type]
    try:
        f = open(path, encoding="utf-8", errors="replace", newline="\n")
    except OSError as e:
        raise LogParseError(f"cannot read the log {path!r}: {e.strerror or e}", hint="give the path of a vLLM server log, or - for stdin") from None
    with f:
        try:
            return _read_stream(f)
        except LogParseError as e:
            raise LogParseError(f"{e.message} ({path})", hint=e.hint) from None


def parse_log_text(text: str) -> LogFacts:
    """Read a vLLM log held in a string (lines split on '\\n' only, as ``read_log`` does)."""
    return _read_stream(io.StringIO(text, newline="\n"))
