"""Names to objects: a model id to its :class:`ModelDescription`, a device name to its :class:`Device`.

Used by the API (``api.py``) and by ``explain``'s comparison; ``vramplan.api`` re-exports both.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from .inputs.devices import Device, custom_device, get_device
from .inputs.model_source import load_model_files
from .model.description import ModelDescription
from .model.from_config import describe_config

__all__ = ["load_model", "resolve_device"]


@lru_cache(maxsize=128)
def load_model(model: str, revision: str | None = None) -> ModelDescription:
    """Read a model's config (catalog id, local folder or Hub id) into a :class:`ModelDescription`."""
    return describe_files(load_model_files(model, revision=revision), model)


def describe_files(files, name: str) -> ModelDescription:
    """The :class:`ModelDescription` of config files already read (``load_model``'s second half; the web app
    reads catalog files itself, never a local path, and hands the result to the API)."""
    desc = describe_config(files.config, name=name, resolved=files.resolved, preprocessor=files.preprocessor,
                           source=f"{files.source}: {files.location} ({files.resolved_by})")
    from .model.config_checks import library_default_notes
    from .model.from_config import text_config_of

    notes = library_default_notes(text_config_of(files.config), text_config_of(files.resolved),
                                  resolved_by=files.resolved_by, model_type=str(desc.text_model_type))
    if notes:
        desc = replace(desc, notes=desc.notes + notes)
    if files.checkpoint_bytes:
        desc = replace(desc, checkpoint_bytes=files.checkpoint_bytes,
                       checkpoint_source=f"{'Hub' if files.source == 'hub' else 'local'} safetensors headers")
    return _with_vision(desc, files)


def _with_vision(desc: ModelDescription, files) -> ModelDescription:
    """Attach the vision tower description when the model has one."""
    if not desc.is_multimodal:
        return desc
    from .model.vision import describe_vision

    vision = describe_vision(files.resolved, files.preprocessor)
    return replace(desc, vision=vision) if vision is not None else desc


def resolve_device(device: str | Device | None = None, *, device_memory_gib: float | str | None = None,
                   platform: str | None = None) -> Device:
    if isinstance(device, Device):
        return device
    if device_memory_gib is not None:
        from .inputs.devices import ambiguous_platform

        fuzzy = ambiguous_platform(device) if device else None  # "a100" + a size: the size settles it
        base = get_device(device) if device and not fuzzy else None
        plat = platform or (base.platform if base else fuzzy or "cuda")
        return custom_device(device_memory_gib, platform=plat,
                             label=base.label if base else (device if fuzzy else "custom"))
    return get_device(device or "h100-80gb")
