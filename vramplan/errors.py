"""Every exception vramplan raises on purpose.

The CLI maps each to an exit code (see ``vramplan.cli``): every subclass of
:class:`InputError` means "the input is wrong" (exit 2, one line, no traceback).
A plan whose verdict is "fails" is an answer, not an error, and raises nothing.
"""

from __future__ import annotations

__all__ = [
    "VramplanError",
    "InputError",
    "ConfigNotFound",
    "ConfigError",
    "FlagError",
    "InvalidConfig",
    "LogParseError",
    "UnsupportedError",
    "DeviceError",
    "NoFittingFlags",
]


class VramplanError(Exception):
    """Base class. ``hint`` says what the user can do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and the hint, as the single line the CLI prints."""
        msg = self.message.rstrip(". ")
        return f"{msg}. {self.hint}" if self.hint else f"{msg}."


class InputError(VramplanError, ValueError):
    """Something the user gave is wrong: a flag, a size, a file."""


class ConfigNotFound(InputError):
    """No config.json could be found for the model named."""


class ConfigError(InputError):
    """A config.json exists but cannot be read as a model vramplan knows."""


class FlagError(InputError):
    """An engine flag is unknown, malformed or impossible."""


class InvalidConfig(FlagError):
    """vLLM itself refuses this configuration at startup; the message is vLLM's own."""


class LogParseError(InputError):
    """A log could not be read at all (not: a log that says little)."""

    def __init__(self, message: str, *, line_no: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.line_no = line_no


class UnsupportedError(InputError):
    """An architecture, layer kind, platform or vLLM version outside what vramplan models."""


class DeviceError(InputError):
    """No way to read the device (no NVML, no npu-smi) or an unknown device name."""


class NoFittingFlags(VramplanError):
    """``fit`` searched and found no flags that start and hold the workload."""
