"""Byte constants, size parsing, and vLLM's way of printing sizes.

All arithmetic in vramplan is in integer bytes; GiB appear only when printing.
"""

from __future__ import annotations

import math
import re

from .errors import InputError

__all__ = ["KiB", "MiB", "GiB", "gib", "format_gib", "parse_size", "parse_human_int", "cdiv", "round_up"]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


def gib(num_bytes: float) -> float:
    """Bytes to GiB as a float (no rounding)."""
    return num_bytes / GiB


def format_gib(num_bytes: float) -> str:
    """Print bytes as vLLM does: ``str(round(b / GiB, 2))``.

    Mirrors vLLM v0.26.0 ``vllm/utils/mem_utils.py:format_gib``; it prints
    ``9.2`` rather than ``9.20``.

    >>> format_gib(9.2 * GiB)
    '9.2'
    """
    return f"{round(num_bytes / GiB, 2)}"


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative integers (vLLM ``vllm.utils.math_utils.cdiv``)."""
    return -(a // -b)


def round_up(x: int, multiple: int) -> int:
    """Round ``x`` up to a multiple of ``multiple``."""
    return cdiv(x, multiple) * multiple


_HUMAN = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")


def parse_human_int(value: str | int) -> int:
    """Parse an integer the way vLLM's CLI does (``human_readable_int``).

    Lower-case suffixes are decimal (``1k`` = 1000, ``25.6k`` = 25600), upper-case
    suffixes are binary and take no decimals (``1K`` = 1024, ``8G`` = 8 GiB).
    Mirrors vLLM v0.26.0 ``vllm/utils/argparse_utils.py:human_readable_int``.
    """
    if isinstance(value, int):
        return value
    text = str(value).strip()
    m = _HUMAN.fullmatch(text)
    if m:
        number, suffix = m.groups()
        if suffix.islower():
            return int(float(number) * {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[suffix])
        if "." in number:
            raise InputError(
                f"decimals are not allowed with binary suffixes like {suffix} in {text!r}",
                hint=f"use {number}{suffix.lower()} or a whole number",
            )
        return int(number) * {"K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}[suffix]
    try:
        return int(text)
    except ValueError:
        raise InputError(f"not an integer: {text!r}", hint="write e.g. 8192, 8k or 8K") from None


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "kib": KiB,
    "m": 10**6, "mb": 10**6, "mib": MiB,
    "g": 10**9, "gb": 10**9, "gib": GiB,
    "t": 10**12, "tb": 10**12, "tib": 1 << 40,
}


def parse_size(value: str | float | int, *, default_unit: str = "gib") -> int:
    """Parse a memory size such as ``80GiB``, ``24 GB``, ``1.5e9`` or ``79.19``.

    A bare number is read in ``default_unit`` (GiB unless said otherwise).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        num, unit = float(value), default_unit
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise InputError(f"not a memory size: {value!r}", hint="write e.g. 24GiB, 80GB or 79.19")
        num, unit = float(m.group(1)), (m.group(2).lower() or default_unit)
    if unit not in _SIZE_UNITS:
        raise InputError(f"unknown size unit {unit!r} in {value!r}", hint="use B, KiB, MiB, GiB, GB or TB")
    if not math.isfinite(num) or num < 0:
        raise InputError(f"a memory size must be a non-negative number, not {value!r}")
    return int(round(num * _SIZE_UNITS[unit]))
