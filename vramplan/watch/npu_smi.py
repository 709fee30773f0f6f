"""Read the table that ``npu-smi info`` prints (Huawei Ascend), defensively.

The layout (910B, npu-smi 23.x; the 910A of npu-smi 22.x has the same columns)::

    | NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
    | Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
    +===========================+===============+====================================================+
    | 0     910B3               | OK            | 93.9        38                0    / 0             |
    | 0                         | 0000:C1:00.0  | 0           0    / 0          3409 / 65536         |
    ...
    | NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
    | 0       0                 | 2436761       | python3.11               | 56257                   |
    | No running processes found in NPU 1                                                            |

Each NPU takes two rows: the first names it, the second (one per chip) holds its
numbers. Values are matched to the column names of the header rows, so a column
added or moved by another driver version is still found; where no header can be
read, the last ``used / total`` pair of the chip row is taken. HBM is read where
its total is not 0, else Memory-Usage (inference cards without HBM).
``MB`` in npu-smi are MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..units import MiB

__all__ = ["NpuChip", "NpuProcess", "NpuSmiInfo", "parse_npu_smi_info"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NpuChip:
    """One chip of one NPU as a row pair of the device table."""

    npu_id: int
    """The NPU id of the first row (what ``npu-smi info -i`` takes)."""
    chip_id: int
    """The chip number inside that NPU (0 on single-chip cards)."""
    name: str
    """The product name printed, e.g. ``910B3``."""
    health: str = ""
    """``OK``, ``Warning``, ... as printed."""
    bus_id: str = ""
    used_bytes: int
    """HBM in use (or Memory-Usage on cards without HBM), MiB read as bytes."""
    total_bytes: int
    """HBM total (or Memory-Usage total)."""
    source_column: str = "HBM-Usage(MB)"
    """The column the two numbers were read from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NpuProcess:
    """One row of the process table."""

    npu_id: int
    chip_id: int
    pid: int
    name: str
    memory_bytes: int | None
    """Process memory; None where npu-smi prints ``-`` or ``NA``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NpuSmiInfo:
    """Everything read from one ``npu-smi info`` output."""

    version: str | None = None
    """The npu-smi version of the title row, e.g. ``23.0.6``."""
    chips: tuple[NpuChip, ...] = ()
    processes: tuple[NpuProcess, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    """Rows that looked like data but could not be read (kept for the record)."""


_PAIR = re.compile(r"(\S+?)\s*/\s*(\S+)")
_INT = re.compile(r"^-?\d+$")
_BUS = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_VERSION = re.compile(r"npu-smi\s+(\S+)", re.IGNORECASE)
_NONE_RUNNING = re.compile(r"no running process", re.IGNORECASE)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|"):
        inner = inner[:-1]
    return [c.strip() for c in inner.split("|")]


def _tokens(cell: str) -> list[str]:
    """Split a data cell into values, keeping ``a / b`` pairs as one ``a/b`` token."""
    return _PAIR.sub(lambda m: f"{m.group(1)}/{m.group(2)}", cell).split()


def _pair(token: str) -> tuple[int, int] | None:
    parts = token.split("/")
    if len(parts) != 2:
        return None
    try:
        return int(float(parts[0])), int(float(parts[1]))
    except ValueError:
        return None


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        return None


def _memory_from_row(values: list[str], names: list[str] | None) -> tuple[int, int, str] | None:
    """Pick (used MiB, total MiB, column) from a chip row's third cell."""
    if names and len(names) == len(values):
        by_name = dict(zip(names, values))
        for wanted in ("HBM-Usage(MB)", "Memory-Usage(MB)"):
            for col, token in by_name.items():
                if col.lower() == wanted.lower():
                    pair = _pair(token)
                    if pair and pair[1] > 0:
                        return pair[0], pair[1], col
    # no header to go by (or it does not line up): the last pair with a total
    for token in reversed(values):
        pair = _pair(token)
        if pair and pair[1] > 0:
            return pair[0], pair[1], "last used/total pair"
    return None


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """Parse the output of ``npu-smi info`` into chips and processes.

    Never raises on odd rows: rows that cannot be read are listed in ``warnings``.
    An output with no device table at all gives an ``NpuSmiInfo`` with no chips.
    """
    version = None
    chips: list[NpuChip] = []
    procs: list[NpuProcess] = []
    warnings: list[str] = []
    section = None  # "dev" or "proc"
    header2: list[str] | None = None  # column names of the chip row's third cell
    pending: tuple[int, str, str] | None = None  # (npu id, name, health) of a first row
    expecting_header2 = False

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip().startswith("|"):
            continue  # separators, blank lines, prompts
        cells = _cells(line)
        first = cells[0] if cells else ""
        if version is None and (m := _VERSION.search(line)):
            version = m.group(1)
            continue
        lower = line.lower()
        if first.startswith("NPU") and len(cells) >= 2 and "process" in lower:
            section, pending, expecting_header2 = "proc", None, False
            continue
        if first.startswith("NPU") and "name" in first.lower():
            section, pending, expecting_header2 = "dev", None, True
            continue
        if expecting_header2 and first.startswith("Chip"):
            header2 = cells[2].split() if len(cells) > 2 else None
            expecting_header2 = False
            continue
        if _NONE_RUNNING.search(line):
            continue

        if section == "dev" or section is None:
            toks = first.split()
            if not toks or not _INT.match(toks[0]):
                continue
            second = cells[1] if len(cells) > 1 else ""
            # a chip row holds numbers only in its first cell and a bus id (or NA) in its
            # second; an NPU row holds a name (which may be all digits) and a health word
            is_chip_row = all(_INT.match(t) for t in toks) and (
                bool(_BUS.match(second)) or ":" in second or second in ("", "NA", "-")
            )
            if not is_chip_row:
                # first row of an NPU: id, name (may hold spaces), health
                name = " ".join(toks[1:])
                health = cells[1] if len(cells) > 1 else ""
                pending = (int(toks[0]), name, health)
                continue
            if pending is None:
                warnings.append(f"chip row without its NPU row: {line.strip()}")
                continue
            values = _tokens(cells[2]) if len(cells) > 2 else []
            mem = _memory_from_row(values, header2)
            if mem is None:
                warnings.append(f"no memory figures in chip row: {line.strip()}")
                continue
            used, total, col = mem
            chips.append(
                NpuChip(
                    npu_id=pending[0],
                    chip_id=int(toks[0]),
                    name=pending[1],
                    health=pending[2],
                    bus_id=cells[1] if len(cells) > 1 else "",
                    used_bytes=used * MiB,
                    total_bytes=total * MiB,
                    source_column=col,
                )
            )
            # keep `pending`: a second chip row of the same NPU may follow
        elif section == "proc":
            toks = first.split()
            if len(toks) < 2 or not all(_INT.match(t) for t in toks[:2]) or len(cells) < 4:
                if first:
                    warnings.append(f"unreadable process row: {line.strip()}")
                continue
            pid = _int_or_none(cells[1])
            if pid is None:
                warnings.append(f"unreadable process row: {line.strip()}")
                continue
            mem_mib = _int_or_none(cells[3])
            procs.append(
                NpuProcess(
                    npu_id=int(toks[0]),
                    chip_id=int(toks[1]),
                    pid=pid,
                    name=cells[2],
                    memory_bytes=None if mem_mib is None else mem_mib * MiB,
                )
            )
    return NpuSmiInfo(version=version, chips=tuple(chips), processes=tuple(procs), warnings=tuple(warnings))
