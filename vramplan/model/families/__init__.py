"""Model families as modules: each family lives in one module here and registers itself.

A family module calls :func:`register` once at import with the architectures it serves and the
builder of its decoder layers (``builder(ctx) -> (layer specs, layer params, MoESpec | None)``; ``ctx``
is ``model/from_config.py``'s ``_Ctx``), and, for a vision-language family, :func:`register_vision`
with its :class:`VisionTower`: the tower's tensors (``model/vision.py``), its tokens per item
(``model/mm_tokens.py``) and its encoder projector and pooling (``estimate/encoder.py``). Those four
generic modules look families up here and name none themselves (tests/unit/test_family_modules.py),
so adding an architecture is one module plus its tests, and a line in :data:`_MODULES`.
Shared pieces: ``_common.py`` (decoder layers, rotary caches) and ``_vit.py`` (ViT layers and towers).
The modules are imported with importlib on the first lookup, so they may import the generic modules
without an import cycle.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Family", "VisionTower", "register", "register_vision", "vision_tower", "vision_tower_for", "family", "family_for_architecture", "builder_for", "registered_architectures",
           "introduced_in", "wrapper_default"]


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
    for_release: Callable[[Any, Any], Any] | None = None
    """``for_release(model, rules) -> model``: the description as one vLLM release allocates it, where a rule of
    the family changed between releases (applied to the weights by the planner). ``rules`` is the release's
    ``RuleSet`` (engines/vllm/rules/versions.py): the hook reads its named switches, never a release number."""
    buffers: Callable[[Any, tuple], tuple] | None = None
    """``buffers(ctx, layers) -> params``: the family's init-time buffers instead of the default rotary caches
    (e.g. none for a model without rotary embeddings)."""
    wrappers: tuple[str, ...] = ()
    """Vision-language wrapper architectures whose language model is whatever their text sub-config names (vLLM
    builds it with ``init_vllm_registered_model``); this family when the sub-config names none."""
    head_layernorm: bool = False
    """The final norm is a LayerNorm (weight and bias) instead of an RMSNorm (phi-2)."""
    lm_head_bias: bool = False
    """The untied LM head carries a bias (phi-2)."""
    mamba_checkpoint_blocks: Callable[..., int] | None = None
    """``mamba_checkpoint_blocks(model, cfg, device) -> blocks``: ``MambaSpec.num_prefill_checkpoint_blocks`` of the
    family's recurrent layers (counted per request in ``align`` mode from vLLM 0.33), e.g. Kimi-K3's FlashKDA."""
    load_workspace: Callable[..., tuple] | None = None
    """``load_workspace(model, cfg, device, pp_rank) -> ((name, bytes), ...)``: what a family's layers allocate while
    the model is built (inside "Model loading took") that depends on the device or the flags, e.g. Kimi-K3's
    FlashKDA prefill views and fused-decode weight copies; ``cfg`` is the vLLM planner's ``EngineConfig``."""
    capture_override: Callable[..., dict | None] | None = None
    """``capture_override(version, *, device_capability, max_num_batched_tokens, num_speculative_tokens, user_set)
    -> {flag: value} | None``: what the family's ``VerifyAndUpdateConfig`` (vllm/model_executor/models/config.py
    ``MODELS_CONFIG_MAP``) writes into the CUDA-graph capture sizes, e.g. gpt-oss's 1,024 tokens."""
    profile_workspace: Callable[..., tuple] | None = None
    """``profile_workspace(model, cfg, device, pp_rank) -> ((name, bytes), ...)``: what a family's layers add to the
    torch peak of the profile run beyond the fitted activation terms (e.g. Kimi-K3.1's DSA indexer: the shared
    workspace grown by its dummy-run reservation and its transient logits buffer)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VisionTower:
    """One vision-language family's encoder side, keyed by the vision family name ``VisionSpec.family`` carries."""

    name: str
    build: Callable[[dict, str], Any]
    """``build(config, name) -> VisionSpec``: every tensor vLLM allocates for the tower and its projector."""
    model_types: tuple[str, ...] = ()
    """Top-level ``model_type`` values served (looked up before the architectures)."""
    architectures: tuple[str, ...] = ()
    remote_config: bool = False
    """A remote-code config transformers has no class for: complete as it is even without a ``vision_config``
    (the builder writes out the remote config class's defaults)."""
    needs_image_size: bool = False
    """Its builder reads ``vision_config.image_size``: a config without it is resolved through transformers first."""
    modalities: tuple[str, ...] = ("image",)
    """``get_supported_mm_limits`` keys."""
    refusal: tuple[str, str] | None = None
    """(message, hint) when no vLLM release vramplan models can serve it: the token rules refuse it."""
    item: Callable[..., Any] | None = None
    """``item(config, preprocessor, kwargs, width, height) -> MMItem``: an image as the encoder sees it (the tiled
    families; model/mm_tokens.py builds the profiling dummy from it and ``most_features``)."""
    most_features: Callable[..., Any] | None = None
    """``most_features(config, preprocessor, kwargs) -> ImageSize``: ``get_image_size_with_most_features``."""
    dummy: Callable[..., Any] | None = None
    """``dummy(name, config, preprocessor, video_preprocessor, modality, *, kw_image, kw_video, overrides,
    max_model_len, version) -> MMItem``: the profiling item, where the family does not build it from ``item``."""
    image: Callable[..., Any] | None = None
    """``image(name, config, preprocessor, kwargs, width, height, version) -> MMItem`` instead of ``item``."""
    video: Callable[..., Any] | None = None
    """``video(name, config, preprocessor, kwargs, width, height, num_frames, version) -> MMItem``: a real request's
    video (None: the video request check is not modelled for the family)."""
    encoder_projector: Callable[..., tuple] | None = None
    """``encoder_projector(spec, dtype_bytes, tp, patches_per_output) -> (stage name, {tensor: bytes per patch})``:
    the merger / projector stage after the tower's last layer (estimate/encoder.py; default: one linear)."""
    encoder_tokens: Callable[..., int | None] | None = None
    """``encoder_tokens(spec, patches_per_item) -> tokens | None``: the output tokens of an item of that many tower
    positions, where the family pools or drops positions (None: estimate/encoder.py's tile / merge default)."""
    encoder_traits: frozenset[str] = frozenset()
    """What estimate/encoder.py's Qwen-ViT stages read of the tower: ``"pos_embeds"`` (learned position embeddings
    [T, D] kept for the whole call) and ``"concat_outputs"`` (merger and deepstack outputs concatenated at the end);
    both Qwen3-VL's (vLLM v0.26.0 qwen3_vl.py:Qwen3_VisionTransformer)."""


_FAMILIES: dict[str, Family] = {}
_BY_ARCH: dict[str, Family] = {}
_BY_WRAPPER: dict[str, Family] = {}
_TOWERS: dict[str, VisionTower] = {}
_TOWER_BY_TYPE: dict[str, VisionTower] = {}
_TOWER_BY_ARCH: dict[str, VisionTower] = {}
_BY_TEXT_TYPE: dict[str, Family] = {}

# Architectures read in vLLM's source but not modelled yet: architecture -> what stands in the way (one line).
PENDING: dict[str, str] = {}

# Family modules, imported once on first lookup (each calls register()).
_MODULES: tuple[str, ...] = (
    "deepseek_v32",
    "kimi_k25",
    "kimi_k3",
    "deepseek_v4",
    "qwen3_5",
    "nemotron_h",
    "minimax_m2",
    "mimo_v2",
    "gemma4",
    # the families vramplan modelled first (issue 12: moved here from model/from_config.py)
    "llama",
    "phi",
    "qwen2",
    "qwen3",
    "qwen_moe",
    "mixtral",
    "gpt_oss",
    "deepseek_v2",
    "qwen3_next",
    "gemma",
    "llama4",
    # vision-language towers (issue 12: moved here from model/vision.py)
    "qwen_vl",
    "llava",
    "internvl",
    "kimi_vl",
    "mllama",
)
_loaded = False


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    for arch in family.architectures:
        _BY_ARCH[arch] = family
    for arch in family.wrappers:
        _BY_WRAPPER[arch] = family
    for mt in family.text_model_types:
        _BY_TEXT_TYPE.setdefault(mt, family)
    return family


def register_vision(tower: VisionTower) -> VisionTower:
    _TOWERS[tower.name] = tower
    vision_tower.cache_clear()
    vision_tower_for.cache_clear()
    for mt in tower.model_types:
        _TOWER_BY_TYPE[mt] = tower
    for arch in tower.architectures:
        _TOWER_BY_ARCH[arch] = tower
    return tower


@lru_cache(maxsize=256)
def vision_tower(name: str) -> VisionTower | None:
    """The registered vision tower of that vision family name, else None (memoised: asked several times a plan)."""
    _load()
    return _TOWERS.get(name)


@lru_cache(maxsize=256)
def vision_tower_for(model_type: str, architectures: tuple = ()) -> VisionTower | None:
    """The vision tower a config selects: by its ``model_type``, else by its first registered architecture."""
    _load()
    tower = _TOWER_BY_TYPE.get(model_type)
    if tower is not None:
        return tower
    for arch in architectures:
        tower = _TOWER_BY_ARCH.get(arch)
        if tower is not None:
            return tower
    return None


def vision_families() -> tuple[str, ...]:
    _load()
    return tuple(sorted({t.name for t in _TOWER_BY_TYPE.values()}))


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
    fam = _BY_TEXT_TYPE.get(model_type)
    return fam.name if fam else None


def text_model_types() -> tuple[str, ...]:
    """Every text sub-config ``model_type`` a registered family serves."""
    _load()
    return tuple(_BY_TEXT_TYPE)


def wrapper_default(arch: str) -> str | None:
    """The default language-model family of a vision-language wrapper architecture, else None."""
    _load()
    fam = _BY_WRAPPER.get(arch)
    return fam.name if fam else None


def wrapper_architectures() -> tuple[str, ...]:
    _load()
    return tuple(_BY_WRAPPER)


def family(name: str) -> Family | None:
    """The registered family of that name, else None."""
    _load()
    return _FAMILIES.get(name)


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
def adapt_for_release(model: Any, rules: Any) -> Any:
    """The family's ``for_release`` view of a model under a vLLM release's ``RuleSet`` (the model itself when none
    applies). A release tuple such as ``(0, 33, 0)`` stands for the rule set that plans it."""
    _load()
    fam = _FAMILIES.get(getattr(model, "family", ""))
    if fam is None or fam.for_release is None:
        return model
    if isinstance(rules, tuple):
        from ...engines.vllm.rules.versions import for_version

        return adapt_for_release(model, for_version(rules, allow_older=True))
    return fam.for_release(model, rules)


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
