"""Where a plan's weights figure comes from, in words: the note on the weights term and the checkpoint check
(shared by the V1 planner and the V0 planner)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....units import GiB, format_gib
from ....rules.weights import weights_per_rank

if TYPE_CHECKING:
    from ..flags import EngineArgs
    from ....model.description import ModelDescription
    from .engine import EngineConfig

__all__ = ["weights_note", "weights_source"]


def weights_note(shares, args: EngineArgs, source: str) -> str:
    """Where the weights figure comes from, in a line."""
    note = f"{shares.num_params / 1e9:.3f}B parameters on this rank, {shares.num_layers} layers"
    if shares.offloaded_bytes:
        note += (f"; {format_gib(shares.offloaded_bytes)} GiB of decoder-layer weights held in pinned host memory "
                 f"(--cpu-offload-gb {args.cpu_offload_gb:g}, vLLM UVAOffloader: whole parameters, layer by layer)")
    return note + "; " + source


def weights_source(model: ModelDescription, cfg: EngineConfig) -> tuple[str, str | None]:
    """Which source the weights figure comes from, and a warning when the checkpoint disagrees with it.

    vLLM allocates what the model's modules declare (shapes from the config, dtype from --dtype and the
    quantization), then copies the checkpoint in; so the plan prices the modules. The checkpoint's headers,
    when readable, are the independent check.
    """
    base = "sizes from the config's tensor shapes (vLLM allocates its modules' parameters, then loads into them)"
    ckpt = model.checkpoint_bytes
    if not ckpt:
        return base + "; checkpoint headers not read (catalog or offline)", None
    full = weights_per_rank(model, dtype=cfg.model_dtype, quant=cfg.quant)
    config_bytes = full.total_bytes - full.part("buffer")
    diff = (config_bytes - ckpt) / ckpt
    note = (f"{base}; {model.checkpoint_source}: {ckpt / GiB:.2f} GiB in the checkpoint vs "
            f"{config_bytes / GiB:.2f} GiB from the config for the whole model ({diff:+.1%})")
    warn = None
    if abs(diff) > 0.03:
        warn = (f"the checkpoint ({model.checkpoint_source}) holds {ckpt / GiB:.2f} GiB but the config describes "
                f"{config_bytes / GiB:.2f} GiB ({diff:+.1%}): vLLM allocates what the config describes, so the plan "
                f"follows it; check --dtype and --quantization if the checkpoint is what you expect")
    return note, warn
