"""Model families as modules: each new family lives in one module here and registers itself.

A family module calls :func:`register` once at import with the architectures it serves and the
builder of its decoder layers (``builder(ctx) -> (layer specs, layer params, MoESpec | None)``,
the same signature as the builders in ``model/from_config.py``). ``from_config`` consults this
registry before its own tables, so adding an architecture is one module plus its tests, and a
line in :data:`_MODULES`.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Family", "register", "family_for_architecture", "builder_for", "registered_architectures",
           "introduced_in"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """One registered family: its name, its layer builder, and the architectures that use it."""

    name: str
    builder: Callable[[Any], tuple]
    architectures: dict[str, bool]
    """architecture name -> whether that architecture is multimodal."""
    text_model_types: tuple[str, ...] = ()
    """``model_type`` values of a text sub-config that select this family inside a vision-language wrapper."""
    introduced: dict[str, tuple[tuple[int, int, int], str]] | None = None
    """architecture -> (first vLLM release known to register it, what was read): older releases refuse it."""
    vision: Callable[[dict, str], Any] | None = None
    """The family's own vision-tower builder (``(config, family) -> VisionSpec``), used by ``model/vision.py``."""
    config_fix: Callable[[dict, dict], dict] | None = None
    """``config_fix(raw, resolved) -> resolved``: restore what a transformers release drops from ``to_dict()``
    but vLLM reads (e.g. Nemotron-H's ``hybrid_override_pattern``), before the description reads it."""
    extra_params: Callable[[Any, dict], tuple] | None = None
    """``extra_params(ctx, config) -> params`` loaded with the embeddings on the first stage (e.g. a vision tower that
    vramplan does not profile as a vision family: its weights still count)."""
    for_release: Callable[[Any, tuple], Any] | None = None
    """``for_release(model, version) -> model``: the description as one vLLM release allocates it, where a rule of
    the family changed between releases (applied to the weights by the planner)."""
    buffers: Callable[[Any, tuple], tuple] | None = None
    """``buffers(ctx, layers) -> params``: the family's init-time buffers instead of the default rotary caches
    (e.g. none for a model without rotary embeddings)."""


_FAMILIES: dict[str, Family] = {}
_BY_ARCH: dict[str, Family] = {}

# Architectures read in vLLM's source but not modelled yet: architecture -> what stands in the way (one line).
PENDING: dict[str, str] = {
    "KimiK3ForConditionalGeneration": (
        "Kimi-K3 (vLLM >= 0.33) is read but not modelled yet: KDA linear-attention state, sparse MLA, latent "
        "MoE experts in MXFP4 and attention residuals"),
}

# Family modules, imported once on first lookup (each calls register()).
_MODULES: tuple[str, ...] = (
    "deepseek_v32",
    "kimi_k25",
    "deepseek_v4",
    "qwen3_5",
    "nemotron_h",
    "minimax_m2",
    "mimo_v2",
    "gemma4",
)
_loaded = False


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    for arch in family.architectures:
        _BY_ARCH[arch] = family
    return family


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")


def family_for_architecture(arch: str) -> tuple[str, bool] | None:
    """``(family name, multimodal)`` for a registered architecture, else None."""
    _load()
    fam = _BY_ARCH.get(arch)
    return (fam.name, fam.architectures[arch]) if fam else None


def family_for_text_type(model_type: str) -> str | None:
    _load()
    for fam in _FAMILIES.values():
        if model_type in fam.text_model_types:
            return fam.name
    return None


def vision_builder_for(name: str) -> Callable[[dict, str], Any] | None:
    """The vision-tower builder a registered family brings, if any."""
    _load()
    fam = _FAMILIES.get(name)
    return fam.vision if fam else None


def builder_for(name: str) -> Callable[[Any], tuple] | None:
    _load()
    fam = _FAMILIES.get(name)
    return fam.builder if fam else None


def config_fix_for(arch: str) -> Callable[[dict, dict], dict] | None:
    _load()
    fam = _BY_ARCH.get(arch)
    return fam.config_fix if fam else None


def extra_params_for(name: str) -> Callable[[Any, dict], tuple] | None:
    _load()
    fam = _FAMILIES.get(name)
    return fam.extra_params if fam else None


@lru_cache(maxsize=512)
def adapt_for_release(model: Any, version: tuple) -> Any:
    """The family's ``for_release`` view of a model at a vLLM release (the model itself when none applies)."""
    _load()
    fam = _FAMILIES.get(getattr(model, "family", ""))
    if fam is None or fam.for_release is None:
        return model
    return fam.for_release(model, tuple(version[:3]))


def buffers_for(name: str) -> Callable[[Any, tuple], tuple] | None:
    _load()
    fam = _FAMILIES.get(name)
    return fam.buffers if fam else None


def registered_architectures() -> tuple[str, ...]:
    _load()
    return tuple(_BY_ARCH)


def introduced_in(arch: str) -> tuple[tuple[int, int, int], str] | None:
    """``(first release, evidence)`` for an architecture whose family says when vLLM added it, else None."""
    _load()
    fam = _BY_ARCH.get(arch)
    if fam is None or not fam.introduced:
        return None
    return fam.introduced.get(arch)
