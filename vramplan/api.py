"""The Python API: ``vramplan.plan(...)`` and ``vramplan.load_model(...)``.

    >>> import vramplan
    >>> p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=32768)
    >>> p.verdict, p.kv_cache_tokens                                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from typing import Any

from .errors import FlagError
from .inputs.devices import Device, custom_device, get_device
from .inputs.flags import EngineArgs, parse_flags
from .inputs.model_source import load_model_files
from .model.description import ModelDescription
from .model.from_config import describe_config
from .planner import Plan, build_plan
from .rules.versions import for_version
from .units import parse_size

__all__ = ["plan", "load_model", "resolve_device"]

_ARG_FIELDS = {f.name for f in fields(EngineArgs)}


@lru_cache(maxsize=128)
def load_model(model: str, revision: str | None = None) -> ModelDescription:
    """Read a model's config (catalog id, local folder or Hub id) into a :class:`ModelDescription`."""
    files = load_model_files(model, revision=revision)
    desc = describe_config(files.config, name=model, resolved=files.resolved, preprocessor=files.preprocessor,
                           source=f"{files.source}: {files.location} ({files.resolved_by})")
    from .model.config_checks import library_default_notes
    from .model.from_config import text_config_of

    notes = library_default_notes(text_config_of(files.config), text_config_of(files.resolved),
                                  resolved_by=files.resolved_by, model_type=str(desc.text_model_type))
    if notes:
        from dataclasses import replace

        desc = replace(desc, notes=desc.notes + notes)
    if files.checkpoint_bytes:
        from dataclasses import replace

        desc = replace(desc, checkpoint_bytes=files.checkpoint_bytes,
                       checkpoint_source=f"{'Hub' if files.source == 'hub' else 'local'} safetensors headers")
    return _with_vision(desc, files)


def _with_vision(desc: ModelDescription, files) -> ModelDescription:
    """Attach the vision tower description when the model has one."""
    if not desc.is_multimodal:
        return desc
    try:
        from .model.vision import describe_vision
    except ImportError:  # pragma: no cover - during development
        return desc
    from dataclasses import replace

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


def plan(
    model: str | ModelDescription | None = None,
    *,
    device: str | Device | None = None,
    device_memory_gib: float | None = None,
    vllm_version: str | None = None,
    used_by_others_gib: float = 0.0,
    args: EngineArgs | None = None,
    flags: list[str] | None = None,
    allow_older_version: bool = False,
    **engine_kwargs: Any,
) -> Plan:
    """Predict a vLLM startup.

    Engine flags can be given as keyword arguments with vLLM's names
    (``max_model_len=32768, tensor_parallel_size=2``), as a ready :class:`EngineArgs`, or as a
    list of command-line flags (``flags=["--max-model-len", "32k"]``, or a whole
    ``["vllm", "serve", MODEL, ...]`` line, whose model is used when ``model`` is not given).
    """
    ignored: tuple[str, ...] = ()
    if flags is not None:
        parsed = parse_flags(flags, base=args)
        base, ignored = parsed.args, parsed.ignored
    else:
        base = args or EngineArgs()
    if model is None:
        model = getattr(base, "model", None)
        if not model:
            raise FlagError("no model given", hint="pass the model id, or a `vllm serve MODEL ...` line as flags")
    desc = load_model(model) if isinstance(model, str) else model
    dev = resolve_device(device, device_memory_gib=device_memory_gib)
    rules = for_version(vllm_version, allow_older=allow_older_version, platform=dev.platform)
    unknown = set(engine_kwargs) - _ARG_FIELDS
    if unknown:
        raise FlagError(f"unknown engine argument(s): {', '.join(sorted(unknown))}",
                        hint="use vLLM's names, e.g. max_model_len, tensor_parallel_size")
    if engine_kwargs:
        base = base.with_(**engine_kwargs)
    others = parse_size(used_by_others_gib) if used_by_others_gib else 0
    return build_plan(desc, base, dev, rules, used_by_others_bytes=others, ignored_flags=ignored)
