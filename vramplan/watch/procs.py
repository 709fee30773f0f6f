"""The watched process and its descendants (vLLM's engine core and TP workers are children).

On Linux the tree is read from ``/proc`` (no dependency); elsewhere ``psutil`` is
used if it is installed, else only the root pid is known.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ProcessTree", "pid_alive", "command_line"]


def command_line(pid: int) -> list[str] | None:
    """The process's argv (Linux ``/proc/<pid>/cmdline``; else psutil if installed); None if unknown."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            return None
        parts = [p.decode("utf-8", errors="replace") for p in raw.split(b"\0") if p]
        return parts or None
    try:
        import psutil  # optional, not a dependency
    except ImportError:
        return None
    try:
        return list(psutil.Process(pid).cmdline()) or None
    except Exception:
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[:1]
        return state != ["Z"] and state != ["X"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parents_from_proc() -> dict[int, int]:
    parents: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return parents
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) >= 2 and rest[0] not in ("Z", "X"):
            parents[int(name)] = int(rest[1])
    return parents


def _parents_from_psutil() -> dict[int, int] | None:
    try:
        import psutil  # optional, not a dependency
    except ImportError:
        return None
    parents = {}
    for p in psutil.process_iter(["pid", "ppid", "status"]):
        info = p.info
        if info.get("status") != "zombie" and info.get("ppid") is not None:
            parents[info["pid"]] = info["ppid"]
    return parents


class ProcessTree:
    """A root pid and its descendants, re-read at each :meth:`pids` call."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.seen: set[int] = {root_pid}
        """Every pid ever found in the tree (workers that exited stay here)."""
        if sys.platform.startswith("linux") and os.path.isdir("/proc"):
            self._reader = _parents_from_proc
            self.method = "/proc"
        else:
            self._reader = _parents_from_psutil
            self.method = "psutil"

    def pids(self) -> set[int]:
        """The root and all its live descendants now."""
        parents = self._reader()
        if parents is None:
            self.method = "root only"
            return {self.root_pid} if pid_alive(self.root_pid) else set()
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        out: set[int] = set()
        stack = [self.root_pid] if self.root_pid in parents else []
        while stack:
            pid = stack.pop()
            if pid in out:
                continue
            out.add(pid)
            stack.extend(children.get(pid, ()))
        self.seen |= out
        return out
