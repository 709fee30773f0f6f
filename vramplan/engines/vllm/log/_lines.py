"""Cleaning one raw log line: colour codes, container timestamps, worker prefixes, vLLM's header.

vLLM prints ``(EngineCore_DP0 pid=123) INFO 07-01 10:00:00 [gpu_worker.py:298] message``, the prefix
in colour (``\\x1b[0;36m``), and with the process name that
``vllm/utils/system_utils.py:decorate_logs`` gives it. Copies found in the wild add container or kubectl
timestamps in front, ``cat -v`` caret codes (``^[[0;36m``), markdown links around the file name
(``[worker.py:267](http://worker.py:267/)]``), ``[...]`` for an elided header, comment or bullet marks.
"""

from __future__ import annotations

import re

__all__ = ["Cleaned", "clean_line", "strip_ansi", "starts_new_record", "normalise_rank"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\^\[\[[0-9;]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]")
_ISO_TS = re.compile(
    r"\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s+"
)
_LEAD_JUNK = re.compile(r"(?:\[pod/[^\]\s]*\]\s*|[\w.-]{1,64}\s+\|\s|[#>$*]+\s*|-\s+|`+\s*)")
_PREFIX = re.compile(
    r"\((?P<name>[A-Za-z][A-Za-z0-9_]{0,63}?)(?: rank=(?P<rank>[0-9]{1,6}))? pid=(?P<pid>[0-9]{1,10})(?:, ip=[^)]{0,64})?\)\s*"
)
_LEVEL = r"(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)"
_HEADER = re.compile(
    _LEVEL
    + r"(?::\s+|\s+(?:(?P<date>\d\d-\d\d(?: \d\d:\d\d:\d\d(?:\.\d+)?)?)\s+)?"
    r"(?:\[(?P<src>[^\]\s]{1,200}?:\d{1,6})\](?:\(https?://[^)\s]{0,200}\)\])?"
    r"|(?P<src2>[\w./-]{1,200}\.py:\d{1,6})\]|\[\.\.\.\])?\s*|$)"
)
_REPEATED = re.compile(r"\s*\[repeated \d+x across cluster\]\s*$")
_NEWREC = re.compile(
    r"\s*(?:\x1b\[[0-9;]*m|\^\[\[[0-9;]*m)*(?:\(\w+(?: rank=\d+)? pid=\d+|\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d"
    r"|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b|Traceback|File \"|[-*|#>$]\s|```|\d\d-\d\d \d\d:\d\d:\d\d)"
)
_RANK_PARTS = re.compile(r"(DP|PP|PCP|TP|DCP|EP)([0-9]{1,6})")


def strip_ansi(s: str) -> str:
    """Remove terminal colour codes, real (ESC) or in ``cat -v`` caret form."""
    if "\x1b" in s or "^[" in s:
        return _ANSI.sub("", s)
    return s


def starts_new_record(raw: str) -> bool:
    """True if this raw line begins a new log record (so it cannot continue a wrapped line)."""
    return not raw.strip() or _NEWREC.match(raw) is not None


def normalise_rank(name: str, rank: str | None, pid: str | None) -> str | None:
    """Turn a vLLM process prefix into a short rank key.

    ``Worker_TP1`` -> "TP1", ``Worker_PP1_TP0`` -> "PP1_TP0", ``EngineCore_DP0``/``EngineCore_0`` -> "DP0",
    ``EngineCore`` -> "EngineCore", ``VllmWorker rank=2`` -> "rank2", ``VllmWorkerProcess pid=534``
    -> "pid534", ``RayWorkerWrapper pid=627`` -> "pid627", ``APIServer`` -> "APIServer".
    Process names from vLLM v0.26.0 vllm/v1/executor/multiproc_executor.py:WorkerProc.worker_main and
    vllm/v1/engine/utils.py (EngineCore_DP{n}).
    """
    if rank is not None:
        return f"rank{int(rank)}"
    if name.startswith("Worker"):
        rest = name[len("Worker"):].lstrip("_")
        if not rest:
            return "Worker"
        if rest.isdecimal():
            return f"rank{int(rest)}"
        parts = _RANK_PARTS.findall(rest)
        return "_".join(f"{a}{int(b)}" for a, b in parts) if parts else rest
    if name.startswith("EngineCore"):
        rest = name[len("EngineCore"):].lstrip("_")
        if not rest:
            return "EngineCore"
        if rest.startswith("DP"):
            rest = rest[2:]
        return f"DP{int(rest)}" if rest.isdecimal() else name
    if name.startswith("DPEngineCoreActor"):
        rest = name.rsplit("_DP", 1)[-1]
        return f"DP{int(rest)}" if rest.isdecimal() else name
    if name in ("VllmWorkerProcess", "RayWorkerWrapper", "RayWorkerProc", "VllmWorker") and pid is not None:
        return f"pid{int(pid)}"
    return name


class Cleaned:
    """A cleaned line: ``text`` plus what was cut from its front."""

    __slots__ = ("text", "rank", "level", "timestamp", "src")

    def __init__(self, text: str, rank: str | None, level: str | None, timestamp: str | None, src: str | None) -> None:
        self.text = text
        self.rank = rank
        self.level = level
        self.timestamp = timestamp
        self.src = src


def clean_line(raw: str) -> Cleaned:
    """Strip colour codes, timestamps, the worker prefix and vLLM's 'LEVEL MM-DD hh:mm:ss [file.py:N]' header."""
    s = strip_ansi(raw)
    if "\r" in s:  # progress bars redraw with \r: keep the last non-empty state
        parts = [p for p in s.split("\r") if p.strip()]
        s = parts[-1] if parts else ""
    s = s.strip()
    timestamp: str | None = None
    rank: str | None = None
    level: str | None = None
    src: str | None = None
    # leading junk, container timestamps and the worker prefix, in any order (a few rounds)
    for _ in range(6):
        m = _ISO_TS.match(s)
        if m:
            timestamp = timestamp or m.group("ts")
            s = s[m.end():]
            continue
        if s.startswith("("):
            m = _PREFIX.match(s)
            if m:
                rank = normalise_rank(m.group("name"), m.group("rank"), m.group("pid"))
                s = s[m.end():]
                continue
        m = _LEAD_JUNK.match(s)
        if m and m.end() > 0 and not _HEADER.match(s):
            s = s[m.end():]
            continue
        break
    head = s[:260]
    m = _HEADER.match(head)
    if m is None:
        # 'INFO' a little further on ('#  A100 - INFO 09-27 ...', '... | INFO ...'), only with a date or source
        m2 = re.search(r"(?<![\w])" + _LEVEL + r"\s+(?:\d\d-\d\d \d\d:\d\d:\d\d|\[[^\]\s]{1,200}:\d{1,6}\]|\[\.\.\.\])", head[:80])
        if m2:
            m = _HEADER.match(head, m2.start())
            if m is not None and rank is None:
                pm = _PREFIX.search(head, 0, m2.start())
                if pm:
                    rank = normalise_rank(pm.group("name"), pm.group("rank"), pm.group("pid"))
    if m is not None:
        level = m.group("level")
        if level == "WARN":
            level = "WARNING"
        date = m.group("date")
        if date and timestamp is None:
            timestamp = date
        src = m.group("src") or m.group("src2")
        s = s[m.end():]
    if "[repeated" in s:
        s = _REPEATED.sub("", s)
    if "**" in s:
        s = s.replace("**", "")
    return Cleaned(s.strip(), rank, level, timestamp, src)
