"""The SGLang log reader: the memory figures an SGLang startup prints, in SGLang's own words.

Reads text logs (any prefix: ``[2026-01-01 12:00:00 TP0] ...``) and JSON logs (JSON lines with a ``message``,
``msg`` or ``text`` field, a JSON array of such objects or strings, or an object with a ``log``/``lines``
field). The formats are those of sglang 0.5.17 and 0.5.23 (see :mod:`.messages` for the source of each).
A log with no SGLang line raises one :class:`LogParseError`; anything else is a result, however partial.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ...errors import LogParseError

__all__ = ["SGLangLogFacts", "read_sglang_log", "looks_like_sglang_log", "MARKERS"]

MARKERS = ("Load weight end.", "Load weight begin.", "KV Cache is allocated", "Memory pool end.",
           "max_total_num_tokens=", "server_args=ServerArgs(", "Not enough memory. Please try to increase "
           "--mem-fraction-static", "Loaded weights leave no GPU memory for the KV cache", "sglang.launch_server",
           "KV pool holds")

_NUM = r"(-?\d+(?:\.\d+)?)"
_RANK = re.compile(r"\b((?:DP\d+ )?(?:PP\d+ )?TP\d+(?: EP\d+)?)\]")
_RE = {
    "load_begin": re.compile(r"Load weight begin\. avail mem=" + _NUM + " GB"),
    "load_end": re.compile(r"Load weight end\..*?type=([\w.]+),.*?avail mem=" + _NUM + r" GB, mem usage=" + _NUM + " GB"),
    "kv_kv": re.compile(r"KV Cache is allocated\. dtype: (?:torch\.)?(\w+), #tokens: (\d+), KV size: " + _NUM + " GB"),
    "kv_kv2": re.compile(r"KV Cache is allocated\. dtype: (?:torch\.)?(\w+), #tokens: (\d+), K size: " + _NUM
                         + r" GB, V size: " + _NUM + " GB"),
    "pool_end": re.compile(r"Memory pool end\. avail mem=" + _NUM + " GB"),
    "sched": re.compile(r"max_total_num_tokens=(\d+), chunked_prefill_size=(-?\d+), max_prefill_tokens=(\d+), "
                        r"max_running_requests=(\d+), context_len=(\d+), available_(?:gpu|cpu)_mem=" + _NUM + " GB"),
    "graph_end": re.compile(r"Capture (?:target |draft )?(decode|prefill|verify) (?:CUDA|CPU|NPU|XPU) graph end\..*?"
                            r"mem usage=" + _NUM + r" GB, avail mem=" + _NUM + " GB"),
    "swa": re.compile(r"full_layer_tokens=(\d+), swa_layer_tokens=(\d+)"),
    "no_room": re.compile(r"Loaded weights leave no GPU memory for the KV cache under --mem-fraction-static=" + _NUM
                          + r"\..*?(?:minimum viable = 1 - available/pre = " + _NUM + r"\))?"),
    "not_enough": re.compile(r"Not enough memory\. Please try to increase --mem-fraction-static\."
                             r"(?: Current value: mem_fraction_static=" + _NUM + ")?"),
    "ctx_over": re.compile(r"KV pool holds (\d+) tokens, fewer than --context-length (\d+)"),
    "oom": re.compile(r"(?:torch\.)?(?:cuda\.)?(?:OutOfMemoryError: )?CUDA out of memory\. Tried to allocate "
                      + _NUM + r" ([GM]iB)"),
    "version": re.compile(r"\bsglang(?:[ =]|==|, version |\s+version\s+|_version\"?:\s*\"?)v?(\d+\.\d+\.\d+)"),
}
# a line SGLang prints when graph capture starts, and a traceback frame of the capture: an out-of-memory error after
# one of them (before the capture's "end" line) is the capture failing (sglang 0.5.17
# srt/model_executor/runner/decode_cuda_graph_runner.py, model_runner_components/cuda_graph_setup.py:capture_*)
_CAPTURE_BEGIN = re.compile(r"Capture (?:target |draft )?(?:decode|prefill|verify) (?:CUDA|CPU|NPU|XPU) graph begin\.")
_CAPTURE_FRAME = re.compile(r'File "[^"]*(?:cuda_graph|graph_runner|graph_shared_output)[^"]*"|in capture_\w*graph')
_ARGS = re.compile(r"server_args=ServerArgs\((.*)\)")
_ARG_FIELDS = ("model_path", "mem_fraction_static", "tp_size", "pp_size", "dp_size", "context_length",
               "chunked_prefill_size", "max_total_tokens", "max_running_requests", "kv_cache_dtype", "page_size",
               "cuda_graph_max_bs", "disable_cuda_graph", "dtype", "quantization",
               # 0.5.17's names (its --cuda-graph-max-bs is an alias of --cuda-graph-max-bs-decode)
               "cuda_graph_max_bs_decode", "cuda_graph_max_bs_prefill", "disable_prefill_cuda_graph",
               "disable_decode_cuda_graph", "cuda_graph_backend_decode", "cuda_graph_backend_prefill",
               "max_prefill_tokens", "attention_backend", "ep_size", "enable_dp_attention", "disable_radix_cache")


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangLogFacts:
    """What one SGLang log says about memory (rank 0's figures where ranks print their own)."""

    num_lines: int
    server_args: dict = field(default_factory=dict)
    sglang_version: str | None = None
    architecture: str | None = None
    free_before_load_gb: float | None = None
    free_after_load_gb: float | None = None
    weights_gb: float | None = None
    kv_dtype: str | None = None
    kv_tokens: int | None = None
    kv_gb: float | None = None
    pool_end_avail_gb: float | None = None
    swa_tokens: int | None = None
    max_total_num_tokens: int | None = None
    chunked_prefill_size: int | None = None
    max_prefill_tokens: int | None = None
    max_running_requests: int | None = None
    context_len: int | None = None
    available_gpu_mem_gb: float | None = None
    decode_graph_gb: float | None = None
    prefill_graph_gb: float | None = None
    ranks: tuple[str, ...] = ()
    error_kind: str | None = None
    error_message: str | None = None
    error_phase: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def mem_fraction_static(self) -> float | None:
        v = self.server_args.get("mem_fraction_static")
        return v if isinstance(v, float) else None

    @property
    def tokens(self) -> int | None:
        """The pool's token count: the scheduler's figure, else the allocation line's."""
        return self.max_total_num_tokens if self.max_total_num_tokens is not None else self.kv_tokens


def _lines(text: str) -> list[str]:
    """Text lines of a text or JSON log."""
    s = text.lstrip()
    if s[:1] in "[{":
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if obj is not None:
            return _from_json(obj)
        # JSON lines
        out: list[str] = []
        jsonish = 0
        for raw in text.splitlines():
            raw = raw.strip()
            if raw.startswith("{"):
                try:
                    out.extend(_from_json(json.loads(raw)))
                    jsonish += 1
                    continue
                except ValueError:
                    pass
            out.append(raw)
        if jsonish:
            return out
    return text.splitlines()


def _from_json(obj) -> list[str]:
    if isinstance(obj, str):
        return obj.splitlines()
    if isinstance(obj, list):
        out: list[str] = []
        for x in obj:
            out.extend(_from_json(x))
        return out
    if isinstance(obj, dict):
        for key in ("message", "msg", "text", "log", "lines", "output"):
            if key in obj:
                return _from_json(obj[key])
    return []


def looks_like_sglang_log(text: str) -> bool:
    """True when any line is one SGLang prints (used by ``explain`` to pick the reader)."""
    return any(m in text for m in MARKERS)  # vLLM prints none of these


def _parse_args(body: str) -> dict:
    out: dict = {}
    for name in _ARG_FIELDS:
        m = re.search(r"(?:^|, )" + name + r"=('(?:[^'\\]|\\.)*'|[^,()]+)", body)
        if not m:
            continue
        raw = m.group(1).strip()
        if raw.startswith("'"):
            out[name] = raw[1:-1]
        elif raw in ("None",):
            out[name] = None
        elif raw in ("True", "False"):
            out[name] = raw == "True"
        else:
            try:
                out[name] = int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
            except ValueError:
                out[name] = raw
    return out


def read_sglang_log(text: str) -> SGLangLogFacts:
    """Read an SGLang startup log (text or JSON). Raises :class:`LogParseError` only when no line is SGLang's."""
    if not isinstance(text, str):
        raise LogParseError("the log is not text", hint="pass the log's contents as a string")
    lines = _lines(text)
    f: dict = {}
    ranks: list[str] = []
    warnings: list[str] = []
    found = False

    def first(key: str, value) -> None:
        if value is not None and f.get(key) is None:
            f[key] = value

    for line in lines:
        if not line:
            continue
        if _CAPTURE_BEGIN.search(line) or _CAPTURE_FRAME.search(line):
            f["_capturing"] = True
        rm = _RANK.search(line)
        rank = rm.group(1) if rm else None
        if rank and rank not in ranks:
            ranks.append(rank)
        if "server_args=ServerArgs(" in line:
            m = _ARGS.search(line)
            if m and "server_args" not in f:
                f["server_args"] = _parse_args(m.group(1))
            found = True
        m = _RE["version"].search(line)
        if m:
            first("sglang_version", m.group(1))
        for key, rx in _RE.items():
            if key == "version":
                continue
            m = rx.search(line)
            if not m:
                continue
            found = True
            try:
                _take(key, m, f, first, warnings, line)
            except (ValueError, IndexError):  # a mutated number: skip the line, keep reading
                continue
        if "sglang.launch_server" in line:
            found = True
    if not found:
        raise LogParseError("no SGLang startup line found in the log",
                            hint="give the log of `python -m sglang.launch_server` (text or JSON), from its first "
                                 "line through 'The server is fired up' or the error")
    f.setdefault("server_args", {})
    f.pop("_capturing", None)
    return SGLangLogFacts(num_lines=len(lines), ranks=tuple(ranks), warnings=tuple(warnings), **f)


def _take(key: str, m: re.Match, f: dict, first, warnings: list[str], line: str) -> None:
    if key == "load_begin":
        first("free_before_load_gb", float(m.group(1)))
    elif key == "load_end":
        first("architecture", m.group(1))
        first("free_after_load_gb", float(m.group(2)))
        first("weights_gb", float(m.group(3)))
    elif key == "kv_kv":
        first("kv_dtype", m.group(1))
        first("kv_tokens", int(m.group(2)))
        first("kv_gb", float(m.group(3)))
    elif key == "kv_kv2":
        first("kv_dtype", m.group(1))
        first("kv_tokens", int(m.group(2)))
        first("kv_gb", float(m.group(3)) + float(m.group(4)))
    elif key == "pool_end":
        first("pool_end_avail_gb", float(m.group(1)))
    elif key == "sched":
        first("max_total_num_tokens", int(m.group(1)))
        first("chunked_prefill_size", int(m.group(2)))
        first("max_prefill_tokens", int(m.group(3)))
        first("max_running_requests", int(m.group(4)))
        first("context_len", int(m.group(5)))
        first("available_gpu_mem_gb", float(m.group(6)))
    elif key == "graph_end":
        first("prefill_graph_gb" if m.group(1) == "prefill" else "decode_graph_gb", float(m.group(2)))
        f["_capturing"] = False
    elif key == "swa":
        first("swa_tokens", int(m.group(2)))
    elif key == "no_room":
        _error(f, "no_kv_cache_memory", line[line.find("Loaded weights"):], "kv_sizing")
    elif key == "not_enough":
        _error(f, "no_kv_cache_memory", line[line.find("Not enough memory"):], "kv_sizing")
    elif key == "ctx_over":
        warnings.append(line[line.find("KV pool holds"):])
    elif key == "oom":
        phase = "serving_prefill" if f.get("max_total_num_tokens") is not None else (
            "graph_capture" if f.get("_capturing") or f.get("pool_end_avail_gb") is not None else (
                "model_loading" if f.get("weights_gb") is None else "kv_allocation"))
        _error(f, "out_of_memory", line[line.find("CUDA out of memory"):], phase)


def _error(f: dict, kind: str, message: str, phase: str) -> None:
    if f.get("error_kind") is None:
        f["error_kind"], f["error_message"], f["error_phase"] = kind, message.strip(), phase
