"""Gemma 2 and Gemma 3 text (Gemma 3 also as the language model of ``Gemma3ForConditionalGeneration``).

vLLM v0.26.0 vllm/model_executor/models/gemma2.py / gemma3.py: sandwich norms (pre/post feed-forward), Gemma 3
adds per-head q/k RMSNorm. Gemma 2 builds one rope (the config's first).
"""

from __future__ import annotations

from collections.abc import Mapping

import math
from functools import partial
from typing import Any

from ..description import VisionSpec
from . import Family, VisionTower, register, register_vision
from ._common import _rope_buffers, dense_layers
from ._vit import _clip_positions, _need, _norm, _p, _text_hidden, _tower
from ..mm_tokens import ImageSize, MMItem

register(Family(
    name="gemma2",
    builder=partial(dense_layers, sandwich_norms=True),
    architectures={"Gemma2ForCausalLM": False},
    text_model_types=("gemma2",),
    buffers=partial(_rope_buffers, first_only=True),
))
register(Family(
    name="gemma3",
    builder=partial(dense_layers, qk_norm=True, sandwich_norms=True),
    architectures={"Gemma3ForCausalLM": False, "Gemma3ForConditionalGeneration": True},
))


def _gemma3(cfg: dict, family: str) -> VisionSpec:
    """Gemma 3: SigLIP tower (all layers, post-norm) + RMSNorm + avg-pool + projection matrix.

    vLLM v0.26.0 vllm/model_executor/models/gemma3_mm.py:Gemma3MultiModalProjector.
    """
    vc = _need(cfg, "vision_config", family)
    vc = dict(vc)
    vc.setdefault("model_type", "siglip_vision_model")
    n = int(vc["num_hidden_layers"])
    params, info = _tower(vc, "vision_tower.vision_model", n, post_norm=True)
    text_hidden = _text_hidden(cfg)
    width = info["width"]
    tokens = int(cfg.get("mm_tokens_per_image", 256))
    params.append(_p("multi_modal_projector.mm_input_projection_weight", (width, text_hidden)))
    params += _norm("multi_modal_projector.mm_soft_emb_norm", width, bias=False)
    side = info["image_size"] // info["patch"]
    extra = {
        "arch": "siglip", "in_channels": info["in_channels"], "patch_input_dim": info["in_channels"] * info["patch"] ** 2,
        "head_dim": width // info["heads"], "mlp": "plain", "norm": "layer", "hidden_act": info["hidden_act"],
        "image_size": info["image_size"], "seq_per_crop": side * side, "mm_tokens_per_image": tokens,
        "pool_kernel": side // int(math.isqrt(tokens)), "loaded_layers": n, "config_layers": n,
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (), "notes": (),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n, hidden_size=width, num_heads=info["heads"],
        intermediate_size=info["inter"], patch_size=info["patch"], out_hidden_size=text_hidden,
        supports_encoder_tp_data=False, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)


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


def _gemma3_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    crops = _gemma3_crops(cfg, pre, kw, width, height) + 1
    seq = _clip_positions(vc)
    tokens = crops * int(cfg.get("mm_tokens_per_image") or 256)
    side = int(vc["image_size"])
    return MMItem(modality="image", width=side, height=side, num_tokens=tokens, num_patches=crops * seq,
                  attn_seq_lens=(seq,) * crops, num_crops=crops, input_width=width, input_height=height)


def _gemma3_most_features(cfg, pre, kw) -> ImageSize:
    vc = cfg.get("vision_config") or {}
    pc = dict(pre or {})
    crops = kw.get("pan_and_scan_max_num_crops") or pc.get("pan_and_scan_max_num_crops") or 4
    side = int(vc["image_size"])
    return ImageSize(width=side, height=side * int(crops))

def _gemma3_projector(spec: VisionSpec, b: int, tp: int, patches_per_out: float) -> tuple[str, dict]:
    """gemma3_mm.py:Gemma3MultiModalProjector: reshape(..).contiguous() copy, then pooled (1/k^2)."""
    D = spec.hidden_size
    return "projector", {"x": b * D, "post_layernorm": b * D, "pool_input_copy": b * D}


def _gemma3_tokens(spec: VisionSpec, patches_per_item: int) -> int:
    """Average pooling by ``pool_kernel`` x ``pool_kernel``."""
    return patches_per_item // (spec.extra.get("pool_kernel", 4) ** 2)


register_vision(VisionTower(name="gemma3", build=_gemma3, model_types=("gemma3",), item=_gemma3_item,
                            encoder_projector=_gemma3_projector, encoder_tokens=_gemma3_tokens,
                            most_features=_gemma3_most_features,
                            architectures=("Gemma3ForConditionalGeneration",), needs_image_size=True))
