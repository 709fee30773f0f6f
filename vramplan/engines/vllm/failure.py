"""A startup failure found while planning: the error kind, vLLM's words, and the phase it happens in."""

from __future__ import annotations


class _Failure(Exception):
    def __init__(self, kind: str, message: str, phase: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # the explain reader's phase names (inputs/vllm_log ERROR_PHASES)
        self.phase = phase or ("startup_check" if kind == "free_memory_below_requested" else "kv_sizing")
