"""Which engine's log reader watch uses: from ``--engine``, the command line, or the log's first recognisable line.

- ``--engine vllm|sglang``: that one.
- ``auto`` with a command: ``python -m sglang.launch_server ...`` or ``sglang serve ...`` -> SGLang; ``vllm serve``
  (or ``python -m vllm.entrypoints...``) -> vLLM; any other command (a wrapper script, a fake server) -> the
  log decides (:class:`AutoLogReader`), vLLM until a line says otherwise.
- ``auto`` with ``--pid --log FILE``: what the file holds when watch attaches decides (first 4 MiB, as
  ``explain`` reads), else the lines that follow (:class:`AutoLogReader`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ENGINES", "engine_from_argv", "engine_from_lines", "reader_factory", "AutoLogReader"]

ENGINES = ("auto", "vllm", "sglang")


def engine_from_argv(argv: Sequence[str]) -> str | None:
    """"sglang", "vllm", or None when the command line names neither server."""
    words = [os.path.basename(str(w)) for w in argv[:6]]
    for i, w in enumerate(words):
        if w.startswith("sglang.launch_server") or w == "sglang.launch_server":
            return "sglang"
        if w == "sglang" and i + 1 < len(words) and words[i + 1] == "serve":
            return "sglang"
        if w == "vllm" and i + 1 < len(words) and words[i + 1] == "serve":
            return "vllm"
        if w.startswith("vllm.entrypoints"):
            return "vllm"
    return None


def _vllm_reader() -> Any:
    from ..engines.vllm.log import LogReader  # imported here: the CLI's start-up stays light

    return LogReader()


def _sglang_reader() -> Any:
    from ..engines.sglang.log_stream import SGLangLogReader

    return SGLangLogReader()


def engine_from_lines(lines: Sequence[str]) -> str | None:
    """The engine of the first recognisable line (SGLang-only text, or any line vLLM's reader recognises)."""
    probe = AutoLogReader()
    for line in lines:
        probe.feed(line)
        if probe.engine is not None:
            return probe.engine
    return None


def engine_from_log_file(path: str | os.PathLike[str], limit: int = 4 << 20) -> str | None:
    """What a log file holds so far decides (its first ``limit`` bytes); None if no line does."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return None
    return engine_from_lines(data.decode("utf-8", errors="replace").splitlines())


def reader_factory(engine: str | None) -> Callable[[], Any]:
    """The log reader class (a zero-argument factory) for a decided engine, or the auto reader for None."""
    if engine == "sglang":
        return _sglang_reader
    if engine == "vllm":
        return _vllm_reader
    return AutoLogReader


class AutoLogReader:
    """Feeds both readers until one line decides, then only that one.

    A line decides for SGLang when it carries text only SGLang prints (or SGLang's reader marks it and vLLM's
    does not); for vLLM when vLLM's reader marks it and it is not SGLang's. Until then the events returned are
    vLLM's (a line both recognise, such as torch's "CUDA out of memory", decides nothing). ``engine`` and
    ``decided_at`` (the line number) say what was chosen.
    """

    def __init__(self) -> None:
        self._vllm: Any = _vllm_reader()
        self._sglang: Any = _sglang_reader()
        self.engine: str | None = None
        self.decided_at: int | None = None
        self._n = 0

    def feed(self, line: str) -> list[Any]:
        self._n += 1
        if self.engine == "vllm":
            return self._vllm.feed(line)
        if self.engine == "sglang":
            return self._sglang.feed(line)
        from ..engines.sglang.log_stream import is_sglang_line

        s_events = self._sglang.feed(line)
        v_events = self._vllm.feed(line)
        if is_sglang_line(line) or (s_events and not v_events):
            self.engine, self.decided_at = "sglang", self._n
            return s_events
        if v_events:
            if not s_events:
                self.engine, self.decided_at = "vllm", self._n
            return v_events
        return []

    def finish(self) -> Any:
        return (self._sglang if self.engine == "sglang" else self._vllm).finish()

    def flushed_events(self) -> list[Any]:
        r = self._sglang if self.engine == "sglang" else self._vllm
        f = getattr(r, "flushed_events", None)
        return f() if callable(f) else []
