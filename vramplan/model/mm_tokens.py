"""Multimodal token counts and vLLM's encoder budget, as pure functions of configs and flags.

Three questions, one per function group:

- How many placeholder tokens does one item take at most (:func:`max_tokens_per_item`)?
  This is vLLM's ``processor.info.get_mm_max_tokens_per_item`` where the model implements
  it (Qwen2/2.5/3-VL) and otherwise the number of embeddings of the dummy item vLLM builds
  for profiling (``get_mm_max_toks_per_item`` falls back to ``get_dummy_mm_inputs``).
- What does the profiling dummy item look like (:func:`dummy_item`): its pixel size, its
  encoder patches and attention sequences, its tokens.
- How many items of which modality does vLLM push through the encoder in one profiling
  call (:func:`encoder_budget`, vLLM's ``MultiModalBudget`` / ``compute_mm_encoder_budget``),
  and :func:`encoder_profile` for all three at once.

``tokens_for_image`` / :func:`image_item` give the same numbers for a real request's image.

Versions: ``version`` is a ``(major, minor, patch)`` tuple. The budget arithmetic is the
same in v0.19.0, v0.26.0 and v0.33.0. Differences handled here: v0.33 scopes
``mm_processor_kwargs`` per modality (``images_kwargs`` / ``videos_kwargs``, flat keys routed
to both, scoped keys win) and Qwen3-VL video accepts ``min_pixels`` / ``max_pixels``; before
v0.33 only flat keys exist. Which *runner* profiles the encoder at all (the v0.26 V2 runner
does not) is a planner question, not answered here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, FlagError, UnsupportedError
from .families import vision_tower
from .vision import resolve_config, vision_family

__all__ = [
    "ImageSize",
    "MMItem",
    "EncoderBudget",
    "EncoderProfile",
    "supported_modalities",
    "smart_resize",
    "video_smart_resize",
    "max_tokens_per_item",
    "max_tokens_per_modality",
    "tokens_for_image",
    "image_item",
    "dummy_item",
    "encoder_budget",
    "encoder_profile",
    "QWEN3_VL_VIDEO_SIZE",
    "QWEN3_VL_IMAGE_SIZE",
    "QWEN2_VL_IMAGE_SIZE",
]

Version = tuple[int, ...]
_MOVED = ("QWEN3_VL_IMAGE_SIZE", "QWEN3_VL_VIDEO_SIZE", "QWEN2_VL_IMAGE_SIZE")


def __getattr__(name: str) -> Any:
    """The Qwen-VL processor defaults, which live with their family (model/families/qwen_vl.py)."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.families.qwen_vl"), name)
    raise AttributeError(name)
DEFAULT_LIMIT_PER_PROMPT = 999
"""vLLM v0.26.0 vllm/config/multimodal.py:MultiModalConfig.get_limit_per_prompt (unspecified -> 999)."""



@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSize:
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MMItem:
    """One image or video as the encoder sees it."""

    modality: str
    width: int
    """Pixel width after the processor's resize (Qwen: ``smart_resize``; tiles: the tile size)."""
    height: int
    num_frames: int = 1
    num_tokens: int
    """Placeholder tokens in the prompt (= embeddings handed to the language model)."""
    num_patches: int
    """Vision-tower sequence positions, before any merge (Qwen: ``grid_t*grid_h*grid_w``; tiled
    towers: ``crops * positions_per_crop`` incl. class tokens)."""
    attn_seq_lens: tuple[int, ...]
    """Lengths of the attention sequences the tower runs (one per crop / video frame group)."""
    num_crops: int = 1
    input_width: int = 0
    """The pixel size the dummy builder (or the user) handed to the processor."""
    input_height: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderBudget:
    """vLLM's ``MultiModalBudget`` result for the profile run."""

    modality: str | None
    """The modality profiled (``get_modality_with_max_tokens``); None when all are disabled."""
    tokens_per_item: int
    num_items: int
    """``mm_max_items_per_batch[modality]``: items pushed through ``embed_multimodal`` at once."""
    budget_tokens: int
    """``min(encoder_compute_budget, encoder_cache_size)`` (the number in the log line)."""
    max_tokens_per_item: dict = field(default_factory=dict)
    """Per tower modality (limit > 0)."""
    items_per_prompt: dict = field(default_factory=dict)
    items_per_batch: dict = field(default_factory=dict)
    encoder_compute_budget_tokens: int = 0
    encoder_cache_size_tokens: int = 0
    log_line: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderProfile:
    """What vLLM's encoder profiling runs: the budget and the dummy item repeated ``num_items`` times."""

    budget: EncoderBudget
    item: MMItem | None
    family: str


# --------------------------------------------------------------------------- small helpers


def _v(version: Version | None) -> Version:
    return tuple(version) if version else (0, 26, 0)


def _merge_kwargs(mm_processor_kwargs: Mapping[str, Any] | None, modality: str, version: Version) -> dict:
    """The processor kwargs one modality sees.

    v0.33 routes flat kwargs into ``images_kwargs`` / ``videos_kwargs`` and lets scoped
    values win (vLLM v0.33.0 vllm/multimodal/processing/context.py:_merge_and_resolve_mm_processor_kwargs);
    earlier versions pass only the flat dict.
    """
    kw = dict(mm_processor_kwargs or {})
    flat = {k: v for k, v in kw.items() if k not in ("images_kwargs", "videos_kwargs")}
    if _v(version) < (0, 33, 0):
        return flat
    scoped = kw.get("images_kwargs" if modality == "image" else "videos_kwargs") or {}
    return {**flat, **dict(scoped)}


def _size_from(defaults: Mapping[str, int], kw: Mapping[str, Any]) -> dict:
    """``size`` then ``min_pixels`` / ``max_pixels`` override (``_get_vision_info``)."""
    size = dict(defaults)
    if kw.get("size"):
        size.update(kw["size"])
    if kw.get("min_pixels") is not None:
        size["shortest_edge"] = int(kw["min_pixels"])
    if kw.get("max_pixels") is not None:
        size["longest_edge"] = int(kw["max_pixels"])
    return size


def _processor_size(preprocessor_config: Mapping[str, Any] | None, default: Mapping[str, int]) -> dict:
    """The image processor's ``size`` after its own ``__init__`` (min/max_pixels keys win)."""
    pc = dict(preprocessor_config or {})
    size = dict(default)
    raw = pc.get("size")
    if isinstance(raw, Mapping):
        if "shortest_edge" in raw or "longest_edge" in raw:
            size.update({k: int(v) for k, v in raw.items() if k in ("shortest_edge", "longest_edge") and v is not None})
        if raw.get("min_pixels") is not None:
            size["shortest_edge"] = int(raw["min_pixels"])
        if raw.get("max_pixels") is not None:
            size["longest_edge"] = int(raw["max_pixels"])
    if pc.get("min_pixels") is not None:
        size["shortest_edge"] = int(pc["min_pixels"])
    if pc.get("max_pixels") is not None:
        size["longest_edge"] = int(pc["max_pixels"])
    return size


def _family(family: str | None, hf_config: Mapping[str, Any]) -> str:
    fam = family or vision_family(hf_config)
    if fam is None:
        raise ConfigError("not a multimodal config", hint="Give a vision-language model's config.json.")
    tower = _tower(fam)
    if tower is not None and tower.refusal is not None:
        raise UnsupportedError(tower.refusal[0], hint=tower.refusal[1])
    return fam


def tower_modalities(vision: Any) -> tuple[str, ...]:
    """The modalities a model's tower is marked for (``_mark_tower_model``): the family's override
    (``VisionSpec.extra["modalities"]``, e.g. Kimi-K2.5's ``vision_chunk``), else its supported limits."""
    return tuple(vision.extra.get("modalities") or supported_modalities(vision.family))


def supported_modalities(family: str) -> tuple[str, ...]:
    """``get_supported_mm_limits`` keys (InternVL video exists only with a video token; not modelled)."""
    tower = _tower(family)
    return tower.modalities if tower is not None else ("image",)


# --------------------------------------------------------------------------- Qwen rules


def smart_resize(height: int, width: int, *, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers ``qwen2_vl/image_processing_qwen2_vl.py:smart_resize`` -> (height, width)."""
    if max(height, width) / min(height, width) > 200:
        raise FlagError(f"aspect ratio {max(height, width) / min(height, width):.0f} > 200",
                        hint="Qwen-VL processors refuse images more than 200 times wider than tall.")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def video_smart_resize(num_frames: int, height: int, width: int, *, temporal_factor: int, factor: int,
                       min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers ``qwen3_vl/video_processing_qwen3_vl.py:smart_resize`` -> (height, width)."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


















# --------------------------------------------------------------------------- tiled families


























def _tower(fam: str) -> Any:
    """The registered vision tower of a vision family (its token rules), else None."""
    return vision_tower(fam)


def _no_rules(fam: str) -> UnsupportedError:
    return UnsupportedError(f"no token rules for vision family '{fam}'", hint="See vramplan.model.vision.FAMILIES.")


def _tiled_item(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, kw: Mapping[str, Any], width: int,
                height: int) -> MMItem:
    tower = _tower(fam)
    if tower is None or tower.item is None:
        raise _no_rules(fam)
    return tower.item(cfg, pre, kw, width, height)


def _tiled_most_features(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None,
                         kw: Mapping[str, Any]) -> ImageSize:
    """Each model's ``get_image_size_with_most_features`` (the dummy image size)."""
    tower = _tower(fam)
    if tower is None or tower.most_features is None:
        raise _no_rules(fam)
    return tower.most_features(cfg, pre, kw)


# --------------------------------------------------------------------------- public API


def dummy_item(family: str | None, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None,
               modality: str, *, mm_processor_kwargs: Mapping[str, Any] | None = None, max_model_len: int,
               version: Version = (0, 26, 0), video_preprocessor_config: Mapping[str, Any] | None = None,
               overrides: Mapping[str, int] | None = None) -> MMItem:
    """The item vLLM's dummy builder makes for profiling (``get_dummy_mm_data`` with count 1).

    ``overrides`` are the ``--limit-mm-per-prompt`` dummy options (``width``/``height``/``num_frames``):
    they only shrink the item (vLLM v0.26.0 vllm/multimodal/processing/dummy_inputs.py:_get_dummy_images),
    and change neither ``max_tokens_per_item`` nor the budget.
    """
    cfg = resolve_config(hf_config)
    fam = _family(family, cfg)
    version = _v(version)
    if modality not in supported_modalities(fam):
        raise FlagError(f"{fam} has no '{modality}' modality", hint=f"Use one of {supported_modalities(fam)}.")
    kw_i = _merge_kwargs(mm_processor_kwargs, "image", version)
    kw_v = _merge_kwargs(mm_processor_kwargs, "video", version)
    ov = dict(overrides or {})
    tower = _tower(fam)
    if tower is not None and tower.dummy is not None:
        return tower.dummy(fam, cfg, preprocessor_config, video_preprocessor_config, modality, kw_image=kw_i,
                           kw_video=kw_v, overrides=ov, max_model_len=max_model_len, version=version)
    target = _tiled_most_features(fam, cfg, preprocessor_config, kw_i)
    w = min(target.width, int(ov.get("width") or target.width))
    h = min(target.height, int(ov.get("height") or target.height))
    return _tiled_item(fam, cfg, preprocessor_config, kw_i, w, h)


def max_tokens_per_item(family: str | None, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None,
                        modality: str, *, mm_processor_kwargs: Mapping[str, Any] | None = None, max_model_len: int,
                        version: Version = (0, 26, 0),
                        video_preprocessor_config: Mapping[str, Any] | None = None) -> int:
    """vLLM's max placeholder tokens of one item of ``modality``.

    Qwen2/2.5/3-VL implement ``get_mm_max_tokens_per_item`` (vLLM v0.26.0
    vllm/model_executor/models/qwen2_vl.py:Qwen2VLProcessingInfo.get_mm_max_tokens_per_item);
    the others are measured on their dummy item (vLLM v0.26.0
    vllm/multimodal/encoder_budget.py:get_mm_max_toks_per_item), which is what this returns.
    ``mm_counts`` is always 1 per modality there, so ``limit_mm_per_prompt`` does not enter.
    """
    return dummy_item(family, hf_config, preprocessor_config, modality, mm_processor_kwargs=mm_processor_kwargs,
                      max_model_len=max_model_len, version=version,
                      video_preprocessor_config=video_preprocessor_config).num_tokens


def max_tokens_per_modality(family: str | None, hf_config: Mapping[str, Any],
                            preprocessor_config: Mapping[str, Any] | None, *,
                            mm_processor_kwargs: Mapping[str, Any] | None = None, max_model_len: int,
                            version: Version = (0, 26, 0), limit_mm_per_prompt: Mapping[str, Any] | None = None,
                            video_preprocessor_config: Mapping[str, Any] | None = None) -> dict[str, int]:
    """``max_tokens_per_item`` for every modality whose limit is > 0 (the tower modalities)."""
    cfg = resolve_config(hf_config)
    fam = _family(family, cfg)
    limits = _limits(fam, limit_mm_per_prompt)
    return {m: max_tokens_per_item(fam, cfg, preprocessor_config, m, mm_processor_kwargs=mm_processor_kwargs,
                                   max_model_len=max_model_len, version=version,
                                   video_preprocessor_config=video_preprocessor_config)
            for m in supported_modalities(fam) if limits[m] > 0}


def image_item(family: str | None, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None,
               width: int, height: int, *, mm_processor_kwargs: Mapping[str, Any] | None = None,
               version: Version = (0, 26, 0)) -> MMItem:
    """A real request's image as the encoder sees it (tokens, patches, crops)."""
    cfg = resolve_config(hf_config)
    fam = _family(family, cfg)
    kw = _merge_kwargs(mm_processor_kwargs, "image", _v(version))
    tower = _tower(fam)
    if tower is not None and tower.image is not None:
        return tower.image(fam, cfg, preprocessor_config, kw, width, height, _v(version))
    return _tiled_item(fam, cfg, preprocessor_config, kw, width, height)


def video_item(family: str | None, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None,
               width: int, height: int, num_frames: int, *, mm_processor_kwargs: Mapping[str, Any] | None = None,
               version: Version = (0, 26, 0)) -> MMItem:
    """A real request's video (``num_frames`` sampled frames of ``width`` x ``height``) as the encoder sees it.

    Qwen families only (vLLM v0.26.0 qwen2_vl.py / qwen3_vl.py ``_get_vision_info`` with the video
    processor's size: Qwen2/2.5-VL resize video frames with the image processor's limits, Qwen3-VL with its
    video processor's, over all frames together).
    """
    cfg = resolve_config(hf_config)
    fam = _family(family, cfg)
    tower = _tower(fam)
    if tower is None or tower.video is None:
        raise UnsupportedError(f"the video request check is modelled for the Qwen-VL families, not {fam}",
                               hint="check the frames as images (--image WxH --images-per-request FRAMES)")
    if num_frames < 1:
        raise FlagError("a video needs at least one frame", hint="e.g. --video 1280x720x32")
    kw = _merge_kwargs(mm_processor_kwargs, "video", _v(version))
    return tower.video(fam, cfg, preprocessor_config, kw, width, height, num_frames, _v(version))


def tokens_for_image(family: str | None, hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None,
                     width: int, height: int, *, mm_processor_kwargs: Mapping[str, Any] | None = None,
                     version: Version = (0, 26, 0)) -> int:
    """Placeholder tokens of one real image of ``width`` x ``height`` pixels."""
    return image_item(family, hf_config, preprocessor_config, width, height, mm_processor_kwargs=mm_processor_kwargs,
                      version=version).num_tokens


def _limit(limit_mm_per_prompt: Mapping[str, Any] | None, modality: str) -> int:
    """``--limit-mm-per-prompt`` count for one modality (an int or ``{"count": n, ...}``; absent: 999)."""
    raw = (limit_mm_per_prompt or {}).get(modality)
    if raw is None:
        return DEFAULT_LIMIT_PER_PROMPT
    if isinstance(raw, Mapping):
        return int(raw.get("count", DEFAULT_LIMIT_PER_PROMPT))
    return int(raw)


def all_disabled(limit_mm_per_prompt: Mapping[str, Any] | None, modalities: tuple[str, ...]) -> bool:
    """``--limit-mm-per-prompt`` is 0 for every one of ``modalities`` (absent counts as the default, not 0)."""
    return all(_limit(limit_mm_per_prompt, m) == 0 for m in modalities)


def _limits(fam: str, limit_mm_per_prompt: Mapping[str, Any] | None) -> dict[str, int]:
    return {m: _limit(limit_mm_per_prompt, m) for m in supported_modalities(fam)}


def encoder_budget(mm_max_tokens: Mapping[str, int], *, max_num_batched_tokens: int, max_num_seqs: int,
                   max_model_len: int, limit_mm_per_prompt: Mapping[str, Any] | None = None,
                   enable_chunked_prefill: bool = True, disable_chunked_mm_input: bool = False,
                   embed_only_tokens: Mapping[str, int] | None = None,
                   version: Version = (0, 26, 0)) -> EncoderBudget:
    """vLLM's ``MultiModalBudget`` for the profile run.

    ``mm_max_tokens`` holds the max tokens per item of every *tower* modality (limit > 0);
    a modality with limit 0 must be left out (or is dropped here). ``embed_only_tokens``
    are modalities with limit 0 and ``enable_mm_embeds``: they enter the budget, not the
    profile. Identical in v0.19.0, v0.26.0 and v0.33.0:

    - vLLM v0.26.0 vllm/v1/core/encoder_cache_manager.py:compute_mm_encoder_budget
    - vLLM v0.26.0 vllm/multimodal/encoder_budget.py:MultiModalBudget._get_max_items
    - vLLM v0.26.0 vllm/multimodal/encoder_budget.py:MultiModalBudget.get_modality_with_max_tokens
    """
    limits = {m: _limit(limit_mm_per_prompt, m) for m in mm_max_tokens}
    tower = {m: int(t) for m, t in mm_max_tokens.items() if limits[m] > 0}
    active = {**{m: int(t) for m, t in (embed_only_tokens or {}).items()}, **tower}
    if not active:
        return EncoderBudget(modality=None, tokens_per_item=0, num_items=0, budget_tokens=0,
                             log_line="All non-text modalities supported by the model have been explicitly disabled "
                                      "via limit_mm_per_prompt. Encoder cache will not be initialized.")
    max_item = max(active.values())
    if disable_chunked_mm_input and max_item > max_num_batched_tokens:
        raise FlagError(
            f"Chunked MM input disabled but max_tokens_per_mm_item ({max_item}) is larger than "
            f"max_num_batched_tokens ({max_num_batched_tokens}). Please increase max_num_batched_tokens.",
            hint=f"Set --max-num-batched-tokens >= {max_item}.")
    # Both scheduler fields equal max_num_batched_tokens (not user-settable).
    compute = max(max_num_batched_tokens, max_item)
    cache = max(max_num_batched_tokens, max_item)
    budget = min(compute, cache)
    per_prompt, per_batch = {}, {}
    for m, t in tower.items():
        if t == 0:
            per_prompt[m], per_batch[m] = 0, 0
            continue
        enc_items = budget // t
        pp = max(1, min(limits[m], max_model_len // t))
        reqs = max_num_seqs if enable_chunked_prefill else min(max_num_seqs, max_num_batched_tokens // t)
        per_prompt[m], per_batch[m] = pp, max(1, min(enc_items, reqs * pp))
    if not tower:
        return EncoderBudget(modality=None, tokens_per_item=0, num_items=0, budget_tokens=budget,
                             max_tokens_per_item={}, encoder_compute_budget_tokens=compute,
                             encoder_cache_size_tokens=cache,
                             log_line="Skipping encoder profiling for embedding-only mode (all modality limits=0 "
                                      "with enable_mm_embeds=True).")
    modality = max(tower.items(), key=lambda kv: (kv[1], kv[0]))[0]
    n = per_batch[modality]
    return EncoderBudget(
        modality=modality, tokens_per_item=tower[modality], num_items=n, budget_tokens=budget,
        max_tokens_per_item=dict(tower), items_per_prompt=per_prompt, items_per_batch=per_batch,
        encoder_compute_budget_tokens=compute, encoder_cache_size_tokens=cache,
        log_line=(f"Encoder cache will be initialized with a budget of {budget} tokens, and profiled with "
                  f"{n} {modality} items of the maximum feature size."),
    )


def encoder_profile(hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None = None, *,
                    max_num_batched_tokens: int, max_num_seqs: int, max_model_len: int,
                    limit_mm_per_prompt: Mapping[str, Any] | None = None,
                    mm_processor_kwargs: Mapping[str, Any] | None = None, enable_chunked_prefill: bool = True,
                    disable_chunked_mm_input: bool = False, version: Version = (0, 26, 0),
                    video_preprocessor_config: Mapping[str, Any] | None = None,
                    family: str | None = None) -> EncoderProfile:
    """Budget plus dummy item: everything the encoder profile run needs, from config and flags."""
    cfg = resolve_config(hf_config)
    fam = _family(family, cfg)
    tokens = max_tokens_per_modality(fam, cfg, preprocessor_config, mm_processor_kwargs=mm_processor_kwargs,
                                     max_model_len=max_model_len, version=version,
                                     limit_mm_per_prompt=limit_mm_per_prompt,
                                     video_preprocessor_config=video_preprocessor_config)
    budget = encoder_budget(tokens, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                            max_model_len=max_model_len, limit_mm_per_prompt=limit_mm_per_prompt,
                            enable_chunked_prefill=enable_chunked_prefill,
                            disable_chunked_mm_input=disable_chunked_mm_input, version=version)
    item = None
    if budget.modality is not None:
        raw = (limit_mm_per_prompt or {}).get(budget.modality)
        overrides = {k: v for k, v in raw.items() if k != "count"} if isinstance(raw, Mapping) else None
        item = dummy_item(fam, cfg, preprocessor_config, budget.modality, mm_processor_kwargs=mm_processor_kwargs,
                          max_model_len=max_model_len, version=version,
                          video_preprocessor_config=video_preprocessor_config, overrides=overrides)
    return EncoderProfile(budget=budget, item=item, family=fam)
