"""Checks on inputs that every entry point shares (API, CLI, fit, sweeps): refused with one line, never planned.

Kept apart from the parsers so that the planner itself can call them: whatever path builds a plan,
an impossible input is an :class:`~vramplan.errors.InputError` (exit 2), not a plan with negative memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import FlagError

if TYPE_CHECKING:  # pragma: no cover
    from ...inputs.devices import Device

__all__ = ["check_used_by_others"]


def check_used_by_others(used_by_others_bytes: int, device: "Device") -> None:
    """Memory other programs hold must be >= 0 and leave the device room for the runtime's own context."""
    g = used_by_others_bytes / 2**30
    if used_by_others_bytes < 0:
        raise FlagError(f"--used-by-others-gib must not be negative (got {g:.2f})",
                        hint="give what other programs hold on each device, e.g. 0 or 2.5")
    from ...estimate.overheads import non_torch

    # the smallest context the planner counts before vLLM's snapshot (one GPU, no communicators)
    context = non_torch(device.platform, tp=1, nvlink=device.nvlink).before_snapshot_bytes
    room = device.total_bytes - context
    if used_by_others_bytes >= room:
        raise FlagError(
            f"--used-by-others-gib {g:.2f} leaves nothing for vLLM: the {device.label} holds "
            f"{device.total_gib:.2f} GiB and its runtime context takes about {context / 2**30:.2f} GiB",
            hint=f"give what other programs hold on each device (below {room / 2**30:.2f} GiB), "
                 f"as nvidia-smi or npu-smi shows it")


def check_pipeline_stages(stages: list[tuple[int, int]], num_layers: int) -> None:
    """Every pipeline stage holds at least one decoder layer (``-pp`` above the layer count leaves some
    empty: vLLM builds them with ``PPMissingLayer`` only, a case vramplan does not model)."""
    empty = sum(1 for start, end in stages if end <= start)
    if empty:
        from ...errors import UnsupportedError

        raise UnsupportedError(
            f"--pipeline-parallel-size {len(stages)} leaves {empty} pipeline stage(s) without a decoder layer "
            f"(the model has {num_layers})",
            hint=f"use at most {num_layers} stages (or a VLLM_PP_LAYER_PARTITION with no zero)")
