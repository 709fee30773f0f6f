"""Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3-VL-MoE vision towers (their language models: qwen2.py, qwen3.py,
qwen_moe.py; Qwen3.5/3.6 reuse the Qwen3-VL tower, vLLM v0.34.0 vllm/models/qwen3_5/nvidia/model.py:
Qwen3_5ForConditionalGeneration builds Qwen3_VisionTransformer).
"""

from __future__ import annotations

import math

from ..description import Param, Shard, VisionSpec
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..mm_tokens import ImageSize, MMItem, _processor_size, _size_from, _v, smart_resize, video_smart_resize
from . import VisionTower, register_vision
from ._vit import _get, _linear, _need, _norm, _p, _qkv, _rope_cache, _text_hidden


def _qwen_vl(cfg: dict, family: str) -> VisionSpec:
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL (dense and MoE); every one sets ``supports_encoder_tp_data``.

    vLLM v0.26.0 vllm/model_executor/models/qwen2_vl.py:Qwen2VisionTransformer,
    qwen2_5_vl.py:Qwen2_5_VisionTransformer, qwen3_vl.py:Qwen3_VisionTransformer.
    """
    vc = _need(cfg, "vision_config", family)
    qwen3 = family.startswith("qwen3")
    qwen25 = family == "qwen2_5_vl"
    depth = int(_get(vc, "depth", "num_hidden_layers"))
    patch = int(_get(vc, "patch_size", "spatial_patch_size", default=14))
    t_patch = int(_get(vc, "temporal_patch_size", default=2))
    merge = int(_get(vc, "spatial_merge_size", default=2))
    in_ch = int(_get(vc, "in_channels", "in_chans", default=3))
    if family == "qwen2_vl":
        # Qwen2VLVisionConfig: embed_dim is the ViT width, hidden_size the LLM width.
        width = int(_get(vc, "embed_dim", default=1280))
        heads = int(_get(vc, "num_heads", default=16))
        inter = int(width * float(_get(vc, "mlp_ratio", default=4)))
        out_hidden = int(_get(vc, "hidden_size", default=_text_hidden(cfg)))
    else:
        width = int(vc["hidden_size"])
        heads = int(vc["num_heads"])
        inter = int(vc["intermediate_size"])
        out_hidden = int(_get(vc, "out_hidden_size", default=_text_hidden(cfg)))
    head_dim = width // heads
    deepstack = list(vc.get("deepstack_visual_indexes") or []) if qwen3 else []
    params: list[Param] = []
    pre = "visual"
    kernel = in_ch * t_patch * patch * patch
    # Conv3dLayer: Qwen2/2.5 bias=False, Qwen3 bias=True.
    params += [_p(f"{pre}.patch_embed.proj.weight", (width, in_ch, t_patch, patch, patch))]
    if qwen3:
        params.append(_p(f"{pre}.patch_embed.proj.bias", (width,)))
        num_pos = int(_get(vc, "num_position_embeddings", default=2304))
        params.append(_p(f"{pre}.pos_embed.weight", (num_pos, width)))
    # Rotary cache: get_rope(head_size=head_dim, max_position=8192, partial_rotary_factor=0.5)
    # (Qwen2-VL v0.26 uses the same helper; vLLM v0.26.0 qwen2_vl.py:Qwen2VisionTransformer.__init__).
    params.append(_rope_cache(f"{pre}.rotary_pos_emb", 8192, head_dim // 2))
    norm_bias = qwen3 or family == "qwen2_vl"  # Qwen2.5 uses RMSNorm, the others LayerNorm
    for i in range(depth):
        b = f"{pre}.blocks.{i}"
        params += _norm(f"{b}.norm1", width, bias=norm_bias)
        params += _norm(f"{b}.norm2", width, bias=norm_bias)
        params += _qkv(f"{b}.attn.qkv", width, heads, head_dim, bias=True)
        params += _linear(f"{b}.attn.proj", width, width, Shard.ROW, bias=True)
        if qwen25:
            # MergedColumnParallelLinear [gate, up] + RowParallelLinear, bias=True
            params += _linear(f"{b}.mlp.gate_up_proj", width, 2 * inter, Shard.COLUMN, bias=True)
            params += _linear(f"{b}.mlp.down_proj", inter, width, Shard.ROW, bias=True)
        else:
            names = ("linear_fc1", "linear_fc2") if qwen3 else ("fc1", "fc2")
            params += _linear(f"{b}.mlp.{names[0]}", width, inter, Shard.COLUMN, bias=True)
            params += _linear(f"{b}.mlp.{names[1]}", inter, width, Shard.ROW, bias=True)
    merged = width * merge * merge

    def merger(prefix: str, postshuffle: bool) -> list[Param]:
        out = _norm(f"{prefix}.{'norm' if qwen3 else 'ln_q'}", merged if postshuffle else width, bias=not qwen25)
        fc = ("linear_fc1", "linear_fc2") if qwen3 else ("mlp.0", "mlp.2")
        out += _linear(f"{prefix}.{fc[0]}", merged, merged, Shard.COLUMN, bias=True)
        out += _linear(f"{prefix}.{fc[1]}", merged, out_hidden, Shard.ROW, bias=True)
        return out

    params += merger(f"{pre}.merger", False)
    for j in range(len(deepstack)):
        params += merger(f"{pre}.deepstack_merger_list.{j}", True)
    extra = {
        "arch": "qwen_vit",
        "in_channels": in_ch,
        "patch_input_dim": kernel,
        "head_dim": head_dim,
        "mlp": "gated" if qwen25 else "plain",
        "norm": "rms" if qwen25 else "layer",
        "hidden_act": vc.get("hidden_act"),
        "window_size": int(vc.get("window_size") or 0) if qwen25 else 0,
        "fullatt_block_indexes": tuple(vc.get("fullatt_block_indexes") or ()) if qwen25 else (),
        "deepstack_visual_indexes": tuple(deepstack),
        "embed_dim_per_token": out_hidden * (1 + len(deepstack)),
        "loaded_layers": depth,
        "config_layers": depth,
        "data_mode_replicated": (f"{pre}.",),
        "notes": (),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=depth, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, spatial_merge_size=merge, temporal_patch_size=t_patch,
        out_hidden_size=out_hidden, num_deepstack=len(deepstack),
        supports_encoder_tp_data=True, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)

Version = tuple[int, ...]

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


def _dummy(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, video_pre: Mapping[str, Any] | None,
           modality: str, *, kw_image: Mapping[str, Any], kw_video: Mapping[str, Any], overrides: Mapping[str, int],
           max_model_len: int, version: Version) -> MMItem:
    """The profiling item (``get_mm_max_tokens_per_item``'s target), shrunk by the ``--limit-mm-per-prompt`` options."""
    kw_i, kw_v, ov = kw_image, kw_video, overrides
    q = _qwen(fam, cfg, pre, video_pre)
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


def _image(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, kw: Mapping[str, Any], width: int,
           height: int, version: Version) -> MMItem:
    q = _qwen(fam, cfg, pre, None)
    return _qwen_item(q, "image", width=width, height=height, num_frames=1, size=_size_from(q.image_size, kw),
                      version=version)


def _video(fam: str, cfg: Mapping[str, Any], pre: Mapping[str, Any] | None, kw: Mapping[str, Any], width: int,
           height: int, num_frames: int, version: Version) -> MMItem:
    """vLLM v0.26.0 qwen2_vl.py / qwen3_vl.py ``_get_vision_info`` with the video processor's size: Qwen2/2.5-VL
    resize video frames with the image processor's limits, Qwen3-VL with its video processor's, over all frames."""
    q = _qwen(fam, cfg, pre, None)
    size = _size_from(q.video_size if q.qwen3 else q.image_size, kw)
    return _qwen_item(q, "video", width=width, height=height, num_frames=num_frames, size=size, version=version)


def _merger(spec: VisionSpec, b: int, tp: int, patches_per_out: float) -> tuple[str, dict]:
    """Patch merger: norm [T, D], then [T/m^2, m^2 D] fc1 and GELU (each b*D per patch), fc2 -> out."""
    D = spec.hidden_size
    out = spec.out_hidden_size or D
    return "merger", {"x": b * D, "merger_norm": b * D, "merger_fc1": b * (D / tp), "merger_act": b * (D / tp),
                      "merger_out": b * out / patches_per_out}


_QWEN3_TRAITS = frozenset({"pos_embeds", "concat_outputs"})
_TOKENS = {"modalities": ("image", "video"), "dummy": _dummy, "image": _image, "video": _video,
           "encoder_projector": _merger}


register_vision(VisionTower(name="qwen2_vl", build=_qwen_vl, **_TOKENS, model_types=("qwen2_vl",),
                            architectures=("Qwen2VLForConditionalGeneration",)))
register_vision(VisionTower(name="qwen2_5_vl", build=_qwen_vl, **_TOKENS, model_types=("qwen2_5_vl",),
                            architectures=("Qwen2_5_VLForConditionalGeneration",)))
register_vision(VisionTower(name="qwen3_vl", build=_qwen_vl, **_TOKENS, encoder_traits=_QWEN3_TRAITS,
                            model_types=("qwen3_vl", "qwen3_5"),
                            architectures=("Qwen3VLForConditionalGeneration",)))
register_vision(VisionTower(name="qwen3_vl_moe", build=_qwen_vl, **_TOKENS, encoder_traits=_QWEN3_TRAITS,
                            model_types=("qwen3_vl_moe", "qwen3_5_moe"),
                            architectures=("Qwen3VLMoeForConditionalGeneration",)))
