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
from .description import removed_from_vllm_message
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
DEFAULT_LIMIT_PER_PROMPT = 999
"""vLLM v0.26.0 vllm/config/multimodal.py:MultiModalConfig.get_limit_per_prompt (unspecified -> 999)."""

QWEN3_VL_IMAGE_SIZE = {"shortest_edge": 65536, "longest_edge": 16777216}
"""Qwen3-VL checkpoints' ``preprocessor_config.json`` ``size`` (catalog copy; used when none is given)."""
QWEN3_VL_VIDEO_SIZE = {"shortest_edge": 4096, "longest_edge": 25165824}
"""Qwen3-VL checkpoints' ``video_preprocessor_config.json`` ``size`` (research note §2.5, corpus copies;
used when no video preprocessor config is given; transformers' class default is 131072/786432)."""
QWEN2_VL_IMAGE_SIZE = {"shortest_edge": 3136, "longest_edge": 12845056}
"""Qwen2-VL / Qwen2.5-VL checkpoints' ``preprocessor_config.json`` ``min_pixels`` / ``max_pixels``
(catalog copy of Qwen2.5-VL-3B; used when no preprocessor config is given)."""
_QWEN2_IMAGE_SIZE = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}
"""transformers Qwen2VLImageProcessor.size default (used when a preprocessor config names no size)."""
_QWEN2_MAX_FRAMES_PER_VIDEO = 14
"""vLLM v0.26.0 vllm/model_executor/models/qwen2_vl.py:_MAX_FRAMES_PER_VIDEO."""


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
    if fam == "mllama":
        raise UnsupportedError(removed_from_vllm_message("MllamaForConditionalGeneration"),
                               hint="Llama 3.2 Vision needs an older vLLM, or pick another vision model.")
    return fam


def supported_modalities(family: str) -> tuple[str, ...]:
    """``get_supported_mm_limits`` keys (InternVL video exists only with a video token; not modelled)."""
    if family.startswith("qwen"):
        return ("image", "video")
    return ("image",)


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


@dataclass(frozen=True, slots=True)
class _Qwen:
    qwen3: bool
    patch: int
    merge: int
    temporal: int
    image_size: dict
    video_size: dict

    @property
    def unit(self) -> int:
        return self.patch * self.merge


def _qwen(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, video_pre: Mapping[str, Any] | None) -> _Qwen:
    vc = cfg.get("vision_config") or {}
    qwen3 = fam.startswith("qwen3")
    patch = int(vc.get("patch_size") or vc.get("spatial_patch_size") or (16 if qwen3 else 14))
    merge = int(vc.get("spatial_merge_size") or 2)
    temporal = int(vc.get("temporal_patch_size") or 2)
    if pre is None:
        image_default = QWEN3_VL_IMAGE_SIZE if qwen3 else QWEN2_VL_IMAGE_SIZE
    else:
        image_default = _QWEN2_IMAGE_SIZE
    image_size = _processor_size(pre, image_default)
    if qwen3:
        video_size = _processor_size(video_pre, QWEN3_VL_VIDEO_SIZE)
        if video_pre is not None and video_pre.get("temporal_patch_size"):
            temporal = int(video_pre["temporal_patch_size"])
    else:
        video_size = image_size  # Qwen2/2.5 video uses the image processor's size in vLLM
    return _Qwen(qwen3, patch, merge, temporal, image_size, video_size)


def _closest_factor_pair(n: int) -> tuple[int, int]:
    for d in range(math.isqrt(n), 0, -1):
        if n % d == 0:
            return d, n // d
    return 1, n


def _qwen_most_features(q: _Qwen, max_pixels: int) -> ImageSize:
    """vLLM v0.26.0 vllm/model_executor/models/qwen2_vl.py:Qwen2VLProcessingInfo.get_image_size_with_most_features."""
    max_seq_len = max_pixels // (q.unit * q.unit)
    h_f, w_f = 1, max_seq_len
    for seq_len in range(max_seq_len, 0, -1):
        h_f, w_f = _closest_factor_pair(seq_len)
        if w_f / h_f <= 200:
            break
    return ImageSize(width=q.unit * w_f, height=q.unit * h_f)


def _qwen_vision_info(q: _Qwen, *, width: int, height: int, num_frames: int, size: Mapping[str, int],
                      video: bool, version: Version) -> tuple[ImageSize, int, int, int]:
    """``_get_vision_info`` -> (resized size, tokens, grid_t, patches_per_frame)."""
    if q.qwen3 and video:
        rh, rw = video_smart_resize(num_frames, height, width, temporal_factor=q.temporal, factor=q.unit,
                                    min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    else:
        rh, rw = smart_resize(height, width, factor=q.unit, min_pixels=size["shortest_edge"],
                              max_pixels=size["longest_edge"])
    if q.qwen3:
        padded = -(-num_frames // q.temporal) * q.temporal  # round_up
    elif _v(version) >= (0, 33, 0):
        padded = num_frames + (-num_frames % q.temporal)
    else:
        padded = num_frames + num_frames % q.temporal
    grid_t = max(padded // q.temporal, 1)
    per_frame = (rh // q.patch) * (rw // q.patch)
    return ImageSize(width=rw, height=rh), grid_t * per_frame // (q.merge ** 2), grid_t, per_frame


def _qwen_item(q: _Qwen, modality: str, *, width: int, height: int, num_frames: int, size: Mapping[str, int],
               version: Version) -> MMItem:
    video = modality == "video"
    frames = num_frames if video else 1
    rs, tokens, grid_t, per_frame = _qwen_vision_info(q, width=width, height=height, num_frames=frames, size=size,
                                                      video=video, version=version)
    return MMItem(modality=modality, width=rs.width, height=rs.height, num_frames=frames, num_tokens=tokens,
                  num_patches=grid_t * per_frame, attn_seq_lens=(per_frame,) * grid_t, num_crops=grid_t,
                  input_width=width, input_height=height)


def _qwen_max_frames(q: _Qwen, seq_len: int, target: ImageSize, size: Mapping[str, int], version: Version,
                     start: int = 1) -> int:
    """``_get_max_video_frames``: count up while the video fits ``seq_len`` tokens."""
    frames = start
    while True:
        nxt = frames + 1
        _, tokens, _, _ = _qwen_vision_info(q, width=target.width, height=target.height, num_frames=nxt, size=size,
                                            video=True, version=version)
        if tokens > seq_len:
            return frames
        frames = nxt


def _qwen_dummy(q: _Qwen, modality: str, *, max_model_len: int, kw_image: Mapping[str, Any],
                kw_video: Mapping[str, Any], version: Version, num_videos: int = 1) -> MMItem:
    image_size = _size_from(q.image_size, kw_image)
    if modality == "image":
        target = _qwen_most_features(q, image_size["longest_edge"])
        return _qwen_item(q, "image", width=target.width, height=target.height, num_frames=1, size=image_size,
                          version=version)
    if not q.qwen3:
        # vLLM v0.26.0 qwen2_vl.py:get_max_video_tokens / Qwen2VLDummyInputsBuilder.get_dummy_mm_data
        video_size = _size_from(q.image_size, kw_video)
        target = _qwen_most_features(q, image_size["longest_edge"])
        total = _qwen_max_frames(q, max_model_len, target, video_size, version)
        frames = max(min(total // max(num_videos, 1), _QWEN2_MAX_FRAMES_PER_VIDEO), 1)
        return _qwen_item(q, "video", width=target.width, height=target.height, num_frames=frames, size=video_size,
                          version=version)
    # Qwen3-VL: vLLM v0.26.0 qwen3_vl.py:Qwen3VLProcessingInfo.get_max_video_tokens (2 frames)
    if _v(version) >= (0, 33, 0):
        target_size = _size_from(q.video_size, kw_video)
    else:
        target_size = dict(kw_video["size"]) if kw_video.get("size") else dict(q.video_size)
    temporal = int(kw_video.get("temporal_patch_size") or q.temporal)
    target = _qwen_most_features(q, target_size["longest_edge"] // temporal)
    resize_size = _size_from(q.video_size, kw_video)
    return _qwen_item(q, "video", width=target.width, height=target.height, num_frames=2, size=resize_size,
                      version=version)


# --------------------------------------------------------------------------- tiled families


def _clip_positions(vc: Mapping[str, Any]) -> int:
    return (int(vc["image_size"]) // int(vc["patch_size"])) ** 2


def _select(num: int, strategy: str) -> int:
    # vLLM v0.26.0 vllm/model_executor/models/vision.py:get_num_selected_vision_tokens
    if strategy == "class":
        return 1
    if strategy == "default":
        return num - 1
    return num


def _tower_seq(vc: Mapping[str, Any]) -> int:
    """Positions per crop: CLIP adds a class token; SigLIP does not."""
    n = _clip_positions(vc)
    return n + 1 if "clip" in str(vc.get("model_type") or "clip") else n


def _llava_tokens_per_crop(cfg: Mapping[str, Any]) -> int:
    vc = cfg["vision_config"]
    return _select(_tower_seq(vc), str(cfg.get("vision_feature_select_strategy") or "default"))


def _select_best_resolution(size: tuple[int, int], possible: list) -> tuple[int, int]:
    """transformers ``image_processing_utils.select_best_resolution``; size = (height, width)."""
    oh, ow = size
    best, best_eff, best_waste = None, 0, float("inf")
    for h, w in possible:
        scale = min(w / ow, h / oh)
        dw, dh = int(ow * scale), int(oh * scale)
        eff = min(dw * dh, ow * oh)
        waste = w * h - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (h, w), eff, waste
    return best


def _llava_next_tokens(cfg: Mapping[str, Any], width: int, height: int) -> tuple[int, int]:
    """vLLM v0.26.0 llava_next.py:LlavaNextProcessingInfo.get_num_image_tokens -> (tokens, crops)."""
    vc = cfg["vision_config"]
    image = int(vc["image_size"])
    npatches = image // int(vc["patch_size"])
    base = _llava_tokens_per_crop(cfg)
    bh, bw = _select_best_resolution((height, width), [tuple(p) for p in cfg["image_grid_pinpoints"]])
    nph, npw = bh // image, bw // image
    cur_h, cur_w = npatches * nph, npatches * npw
    if width / height > cur_w / cur_h:
        new_h = int(round(height * (cur_w / width), 7))
        cur_h -= 2 * ((cur_h - new_h) // 2)
    else:
        new_w = int(round(width * (cur_h / height), 7))
        cur_w -= 2 * ((cur_w - new_w) // 2)
    return cur_h * cur_w + cur_h + base, nph * npw + 1


def _gemma3_crops(cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, kw: Mapping[str, Any], width: int,
                  height: int) -> int:
    """vLLM v0.26.0 gemma3_mm.py:Gemma3ProcessingInfo.get_num_crops (pan-and-scan)."""
    pc = dict(pre or {})

    def opt(key: str, default: Any) -> Any:
        for src in (kw, pc):
            if src.get(key) is not None:
                return src[key]
        return default

    if not opt("do_pan_and_scan", False):
        return 0
    min_crop = int(opt("pan_and_scan_min_crop_size", 256))
    max_crops = int(opt("pan_and_scan_max_num_crops", 4))
    min_ratio = float(opt("pan_and_scan_min_ratio_to_activate", 1.2))
    if width >= height:
        if width / height < min_ratio:
            return 0
        nw = min(int(math.floor(width / min_crop)), int(math.floor(width / height + 0.5)))
        nw, nh = min(max_crops, max(2, nw)), 1
    else:
        if height / width < min_ratio:
            return 0
        nh = min(int(math.floor(height / min_crop)), int(math.floor(height / width + 0.5)))
        nh, nw = min(max_crops, max(2, nh)), 1
    if min(int(math.ceil(width / nw)), int(math.ceil(height / nh))) < min_crop:
        return 0
    return nw * nh


def _pixtral_grid(vc: Mapping[str, Any], merge: int, width: int, height: int) -> tuple[int, int, int, int]:
    """vLLM v0.26.0 pixtral.py:PixtralHFEncoderInfo.get_patch_grid_size -> (cols, rows, W, H) in merged units."""
    max_side = int(vc["image_size"])
    p = int(vc["patch_size"]) * merge
    ratio = max(width / max_side, height / max_side)
    if ratio > 1:
        width, height = int(math.floor(width / ratio)), int(math.floor(height / ratio))
    rows, cols = (height - 1) // p + 1, (width - 1) // p + 1
    return cols, rows, width, height


def _internvl_opts(cfg: Mapping[str, Any], kw: Mapping[str, Any]) -> dict:
    from .vision import _INTERNVIT_DEFAULTS, _INTERNVL_DEFAULTS  # noqa: PLC0415

    top = {**_INTERNVL_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    vc = {**_INTERNVIT_DEFAULTS, **(cfg.get("vision_config") or {})}
    for key in ("max_dynamic_patch", "min_dynamic_patch", "dynamic_image_size", "use_thumbnail"):
        if kw.get(key) is not None:
            top[key] = kw[key]
    image = int(top.get("force_image_size") or vc["image_size"])
    per_tile = int((image // int(vc["patch_size"])) ** 2 * float(top["downsample_ratio"]) ** 2)
    return {"image": image, "per_tile": per_tile, "seq": (image // int(vc["patch_size"])) ** 2 + 1,
            "min": int(top["min_dynamic_patch"]) if top["dynamic_image_size"] else 1,
            "max": int(top["max_dynamic_patch"]) if top["dynamic_image_size"] else 1,
            "thumb": bool(top["use_thumbnail"])}


def _internvl_blocks(o: dict, width: int, height: int) -> int:
    """vLLM v0.26.0 transformers_utils/processors/internvl.py:calculate_internvl_targets (blocks)."""
    ratios = sorted({(i, j) for n in range(o["min"], o["max"] + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                     if o["min"] <= i * j <= o["max"]}, key=lambda r: r[0] * r[1])
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    for r in ratios:
        diff = abs(aspect - r[0] / r[1])
        if diff < best_diff:
            best, best_diff = r, diff
        elif diff == best_diff and width * height > 0.5 * o["image"] ** 2 * r[0] * r[1]:
            best = r
    blocks = best[0] * best[1]
    return blocks + 1 if o["thumb"] and blocks != 1 else blocks


def _kimi_tokens(cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, width: int, height: int) -> tuple[int, int]:
    """vLLM v0.26.0 kimi_vl.py:KimiVLProcessingInfo.get_num_image_tokens -> (tokens, patches)."""
    pc = dict(pre or {})
    vc = cfg.get("vision_config") or {}
    patch = int(pc.get("patch_size") or vc.get("patch_size") or 14)
    kh, kw = (int(x) for x in (pc.get("merge_kernel_size") or vc.get("merge_kernel_size") or (2, 2)))
    limit = int(pc.get("in_token_limit") or 4096)
    if (width // patch) * (height // patch) > limit:
        scale = math.sqrt(limit / ((width // patch) * (height // patch)))
        width, height = int(width * scale), int(height * scale)
    ph = (kh * patch - height % (kh * patch)) % (kh * patch)
    pw = (kw * patch - width % (kw * patch)) % (kw * patch)
    th, tw = (height + ph) // (kh * patch), (width + pw) // (kw * patch)
    return th * tw, th * tw * kh * kw


def _llama4_tiles(cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, width: int, height: int) -> int:
    """Tiles of Llama4ImageProcessor: best (rows, cols) fit with rows*cols <= max_patches, + 1 global tile."""
    pc = dict(pre or {})
    max_patches = int(pc.get("max_patches") or 16)
    tile = int(cfg["vision_config"]["image_size"])
    rows, cols = min(max_patches, -(-height // tile)), min(max_patches, -(-width // tile))
    while rows * cols > max_patches:
        if rows >= cols:
            rows -= 1
        else:
            cols -= 1
    n = rows * cols
    return n + 1 if n > 1 else n


def _tiled_item(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, kw: Mapping[str, Any], width: int,
                height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    if fam == "gemma3":
        crops = _gemma3_crops(cfg, pre, kw, width, height) + 1
        seq = _clip_positions(vc)
        tokens = crops * int(cfg.get("mm_tokens_per_image") or 256)
        side = int(vc["image_size"])
        return MMItem(modality="image", width=side, height=side, num_tokens=tokens, num_patches=crops * seq,
                      attn_seq_lens=(seq,) * crops, num_crops=crops, input_width=width, input_height=height)
    if fam == "llava":
        seq = _tower_seq(vc)
        side = int(vc["image_size"])
        return MMItem(modality="image", width=side, height=side, num_tokens=_llava_tokens_per_crop(cfg),
                      num_patches=seq, attn_seq_lens=(seq,), input_width=width, input_height=height)
    if fam == "llava_next":
        tokens, crops = _llava_next_tokens(cfg, width, height)
        seq = _tower_seq(vc)
        side = int(vc["image_size"])
        return MMItem(modality="image", width=side, height=side, num_tokens=tokens, num_patches=crops * seq,
                      attn_seq_lens=(seq,) * crops, num_crops=crops, input_width=width, input_height=height)
    if fam == "mistral3":
        merge = int(cfg.get("spatial_merge_size") or 2)
        cols, rows, w, h = _pixtral_grid(vc, merge, width, height)
        patches = (rows * merge) * (cols * merge)
        return MMItem(modality="image", width=w, height=h, num_tokens=cols * rows, num_patches=patches,
                      attn_seq_lens=(patches,), input_width=width, input_height=height)
    if fam == "internvl":
        o = _internvl_opts(cfg, kw)
        blocks = _internvl_blocks(o, width, height)
        return MMItem(modality="image", width=o["image"], height=o["image"], num_tokens=blocks * o["per_tile"],
                      num_patches=blocks * o["seq"], attn_seq_lens=(o["seq"],) * blocks, num_crops=blocks,
                      input_width=width, input_height=height)
    if fam == "kimi_vl":
        tokens, patches = _kimi_tokens(cfg, pre, width, height)
        return MMItem(modality="image", width=width, height=height, num_tokens=tokens, num_patches=patches,
                      attn_seq_lens=(patches,), input_width=width, input_height=height)
    if fam == "llama4":
        tiles = _llama4_tiles(cfg, pre, width, height)
        grid = int(vc["image_size"]) // int(vc["patch_size"])
        ratio = float(vc.get("pixel_shuffle_ratio") or 0.5)
        per_tile = int(grid * grid * ratio * ratio)
        side = int(vc["image_size"])
        return MMItem(modality="image", width=side, height=side, num_tokens=tiles * per_tile,
                      num_patches=tiles * (grid * grid + 1), attn_seq_lens=(grid * grid + 1,) * tiles,
                      num_crops=tiles, input_width=width, input_height=height)
    raise UnsupportedError(f"no token rules for vision family '{fam}'", hint="See vramplan.model.vision.FAMILIES.")


def _tiled_most_features(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None,
                         kw: Mapping[str, Any]) -> ImageSize:
    """Each model's ``get_image_size_with_most_features`` (the dummy image size)."""
    vc = cfg.get("vision_config") or {}
    if fam == "gemma3":
        pc = dict(pre or {})
        crops = kw.get("pan_and_scan_max_num_crops") or pc.get("pan_and_scan_max_num_crops") or 4
        side = int(vc["image_size"])
        return ImageSize(width=side, height=side * int(crops))
    if fam in ("llava", "mistral3"):
        side = int(vc["image_size"])
        return ImageSize(width=side, height=side)
    if fam == "llava_next":
        best, best_size = 0, None
        for h, w in cfg["image_grid_pinpoints"]:
            tokens, _ = _llava_next_tokens(cfg, w, h)
            if tokens > best:
                best, best_size = tokens, ImageSize(width=w, height=h)
        return best_size
    if fam == "internvl":
        o = _internvl_opts(cfg, kw)
        top = o["max"] + 1 if o["thumb"] and o["max"] != 1 else o["max"]
        ratios = sorted({(i, j) for n in range(o["min"], top + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                         if o["min"] <= i * j <= top}, key=lambda r: r[0] * r[1])
        best, best_size = 0, None
        for wr, hr in ratios:
            w, h = o["image"] * wr, o["image"] * hr
            tokens = _internvl_blocks(o, w, h) * o["per_tile"]
            if tokens > best:
                best, best_size = tokens, ImageSize(width=w, height=h)
        return best_size
    if fam == "kimi_vl":
        return ImageSize(width=1024, height=1024)  # kimi_vl.py:MaxImageTokenMeta
    if fam == "llama4":
        pc = dict(pre or {})
        side = int(vc["image_size"])
        return ImageSize(width=side, height=side * int(pc.get("max_patches") or 16))
    raise UnsupportedError(f"no token rules for vision family '{fam}'", hint="See vramplan.model.vision.FAMILIES.")


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
    if fam.startswith("qwen"):
        q = _qwen(fam, cfg, preprocessor_config, video_preprocessor_config)
        item = _qwen_dummy(q, modality, max_model_len=max_model_len, kw_image=kw_i, kw_video=kw_v, version=version)
        if not ov:
            return item
        w = min(item.input_width, int(ov.get("width") or item.input_width))
        h = min(item.input_height, int(ov.get("height") or item.input_height))
        frames = min(item.num_frames, int(ov.get("num_frames") or item.num_frames))
        if modality == "video" and q.qwen3:
            frames = max(frames, 2)
        size = _size_from(q.image_size if (modality == "image" or not q.qwen3) else q.video_size,
                          kw_i if modality == "image" else kw_v)
        return _qwen_item(q, modality, width=w, height=h, num_frames=frames, size=size, version=version)
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
    if fam.startswith("qwen"):
        q = _qwen(fam, cfg, preprocessor_config, None)
        return _qwen_item(q, "image", width=width, height=height, num_frames=1, size=_size_from(q.image_size, kw),
                          version=_v(version))
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
    if not fam.startswith("qwen"):
        raise UnsupportedError(f"the video request check is modelled for the Qwen-VL families, not {fam}",
                               hint="check the frames as images (--image WxH --images-per-request FRAMES)")
    if num_frames < 1:
        raise FlagError("a video needs at least one frame", hint="e.g. --video 1280x720x32")
    q = _qwen(fam, cfg, preprocessor_config, None)
    kw = _merge_kwargs(mm_processor_kwargs, "video", _v(version))
    size = _size_from(q.video_size if q.qwen3 else q.image_size, kw)
    return _qwen_item(q, "video", width=width, height=height, num_frames=num_frames, size=size, version=_v(version))


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
