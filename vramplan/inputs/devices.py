"""The device catalog: total memory as the runtime reports it, not the marketing figure.

vLLM sizes everything from ``torch.cuda.mem_get_info()`` (``cudaMemGetInfo``) or
``torch.npu.mem_get_info()``: the total it sees is below the nominal size (an "80 GB"
H100 reports about 79.2 GiB), and it varies a little with driver and ECC settings.
Each entry says where its figure comes from: ``measured`` (a vLLM log in ``data/``),
``reported`` (a public log or error message quoting the runtime's total), or
``estimated`` (nominal size less the reserve seen on a sibling device).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DeviceError
from ..units import GiB, MiB, parse_size

__all__ = ["Device", "DEVICES", "get_device", "custom_device", "device_names", "ambiguous_platform"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    name: str
    """Catalog key, e.g. ``h100-80gb``."""
    label: str
    """What vLLM and nvidia-smi call it."""
    total_bytes: int
    """Total memory the runtime reports (``mem_get_info()[1]``)."""
    platform: str
    """``cuda``, ``rocm`` or ``ascend``."""
    source: str
    """``measured``, ``reported`` or ``estimated``, with where from."""
    compute_capability: tuple[int, int] | None = None
    count: int = 1
    context_bytes: int = 0
    """Memory the runtime and CUDA context take before vLLM's snapshot (outside the budget)."""
    nvlink: bool = False
    """GPUs of this kind are usually linked by NVLink/xGMI/HCCS (custom all-reduce buffers under TP)."""
    sm_count: int | None = None
    """Streaming multiprocessors (NVIDIA's public figures), where an engine sizes buffers by them (SGLang's MLA
    decode splits); None when not known."""

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GiB


def _gib(x: float) -> int:
    """A GiB figure as printed (2 decimals), turned into whole MiB."""
    return int(round(x * 1024)) * MiB


_ENTRIES = [
    # name, label, total GiB, platform, source, cc, context GiB
    ("h100-80gb", "NVIDIA H100 80GB HBM3", 79.18, "cuda",
     "measured: vLLM 0.26 worker snapshot total_memory=79.18GiB, data/device_v026 (driver-dependent: 79.18-79.25 seen)", (9, 0), 0.51),
    ("h100-pcie", "NVIDIA H100 PCIe", 79.18, "cuda", "estimated: same HBM size as h100-80gb", (9, 0), 0.51),
    ("h200", "NVIDIA H200", 139.81, "cuda", "reported: torch total capacity 139.81 GiB in public OOM messages", (9, 0), 0.55),
    ("a100-80gb", "NVIDIA A100-SXM4-80GB", 79.15, "cuda", "reported: vLLM log total 79.15 GiB (data/public phi4-bnb4-lora-a100-80g-util070)", (8, 0), 0.45),
    ("a100-40gb", "NVIDIA A100-SXM4-40GB", 39.49, "cuda", "reported: vLLM V0 log 39.49 GiB (data/public deepseek-v2.5-16xa100-40g-ray-pp)", (8, 0), 0.45),
    ("l40s", "NVIDIA L40S", 44.42, "cuda", "reported: vLLM log 44.42 GiB (data/public qwen3-235b-a22b-2507-fp8-4xl40s-tp4-ep)", (8, 9), 0.45),
    ("l4", "NVIDIA L4", 22.03, "cuda", "reported: torch total capacity 22.03 GiB in public OOM messages", (8, 9), 0.40),
    ("a10g", "NVIDIA A10G", 22.07, "cuda", "reported: vLLM V0 log 22.07 GiB (data/public llama31-8b-class-a10-22g-oci-fail)", (8, 6), 0.40),
    ("rtx-4090", "NVIDIA GeForce RTX 4090", 23.64, "cuda", "reported: torch total capacity 23.64 GiB in public OOM messages", (8, 9), 0.40),
    ("rtx-3090", "NVIDIA GeForce RTX 3090", 23.58, "cuda", "reported: vLLM V0 log 23.58 GiB (data/public llama31-8b-rtx3090-len20k)", (8, 6), 0.40),
    ("t4", "Tesla T4", 14.74, "cuda", "reported: vLLM V0 log 14.74 GiB (data/public llama31-8b-bnb4-t4-unsloth-lora)", (7, 5), 0.30),
    ("b200", "NVIDIA B200", 178.35, "cuda", "reported: torch total capacity 178.35 GiB in public OOM messages", (10, 0), 0.60),
    ("mi300x", "AMD Instinct MI300X", 191.98, "rocm", "reported: torch total capacity 191.98 GiB in public ROCm logs", None, 0.50),
    ("ascend-910b1", "Ascend 910B1", 60.96, "ascend", "estimated: same 64 GB HBM as the 910B in seed 001 (60.96 GiB)", None, 0.35),
    ("ascend-910b2", "Ascend 910B2", 60.96, "ascend", "estimated: same 64 GB HBM as the 910B in seed 001 (60.96 GiB)", None, 0.35),
    ("ascend-910b3", "Ascend 910B3", 60.96, "ascend", "measured: seed 001 log 'total memory: 60.96 GiB' (64 GB card, npu-smi 65536 MB)", None, 0.35),
    ("ascend-910b4", "Ascend 910B4", 28.96, "ascend", "estimated: 32 GB card (npu-smi 32768 MB = 32 GiB) less the 3.04 GiB the 64 GB 910B keeps (65536 MB -> 60.96 GiB); checked on the 4x910B4 vllm-ascend 0.9 log of ../shared/data (159,232 KV tokens logged, 159,104 planned)", None, 0.35),
]

_LINKED = {"h100-80gb", "h200", "a100-80gb", "a100-40gb", "b200", "mi300x", "ascend-910b1", "ascend-910b2",
           "ascend-910b3", "ascend-910b4"}

# NVIDIA's public SM counts
_SM_COUNT = {"h100-80gb": 132, "h100-pcie": 114, "h200": 132, "a100-80gb": 108, "a100-40gb": 108, "l40s": 142,
             "l4": 58, "a10g": 80, "rtx-4090": 128, "rtx-3090": 82, "t4": 40, "b200": 148}

DEVICES: dict[str, Device] = {
    name: Device(name=name, label=label, total_bytes=_gib(total), platform=platform, source=source,
                 compute_capability=cc, context_bytes=_gib(ctx), nvlink=name in _LINKED, sm_count=_SM_COUNT.get(name))
    for name, label, total, platform, source, cc, ctx in _ENTRIES
}

_ALIASES = {
    "h100": "h100-80gb", "h100-sxm": "h100-80gb", "h100-80g": "h100-80gb", "h100-sxm5": "h100-80gb",
    "h200-141gb": "h200", "a100-80g": "a100-80gb", "a100-40g": "a100-40gb", "a100-sxm4-80gb": "a100-80gb",
    "a100-sxm4-40gb": "a100-40gb",
    "4090": "rtx-4090", "rtx4090": "rtx-4090", "3090": "rtx-3090", "rtx3090": "rtx-3090",
    "910b1": "ascend-910b1", "910b2": "ascend-910b2", "910b3": "ascend-910b3", "910b4": "ascend-910b4",
    "mi300": "mi300x",
}
# Names that fit cards of different memory sizes: refused with the choices rather than guessed.
# (``h100`` stays an alias: the SXM and PCIe H100 report the same 80 GB.)
_AMBIGUOUS = {
    "a100": ("a100-80gb", "a100-40gb"),
    "910b": ("ascend-910b1", "ascend-910b2", "ascend-910b3", "ascend-910b4"),
    "ascend-910b": ("ascend-910b1", "ascend-910b2", "ascend-910b3", "ascend-910b4"),
}


def ambiguous_platform(name: str) -> str | None:
    """The platform of an ambiguous device name (``a100``), or None if the name is not ambiguous; with
    ``--device-memory-gib`` such a name is fine (the size is given)."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    choices = _AMBIGUOUS.get(key)
    return DEVICES[choices[0]].platform if choices else None


def device_names() -> tuple[str, ...]:
    return tuple(DEVICES)


def get_device(name: str) -> Device:
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    if key in _AMBIGUOUS:
        choices = _AMBIGUOUS[key]
        raise DeviceError(
            f"device {name!r} is ambiguous: " + ", ".join(f"{c} ({DEVICES[c].total_gib:.2f} GiB)" for c in choices),
            hint="name one of them, or give --device-memory-gib")
    key = _ALIASES.get(key, key)
    if key in DEVICES:
        return DEVICES[key]
    raise DeviceError(
        f"unknown device {name!r}",
        hint="known: " + ", ".join(DEVICES) + "; or give --device-memory-gib",
    )


def custom_device(total: str | float, *, platform: str = "cuda", label: str = "custom") -> Device:
    """A device of a given total memory (as the runtime reports it), e.g. ``--device-memory-gib 47.5``."""
    total_bytes = parse_size(total)
    if total_bytes <= 0:
        raise DeviceError("device memory must be positive", hint="give the total the runtime reports, e.g. 79.18")
    return Device(name="custom", label=label, total_bytes=total_bytes, platform=platform,
                  source="given on the command line", context_bytes=_gib(0.5 if platform == "cuda" else 0.35))
