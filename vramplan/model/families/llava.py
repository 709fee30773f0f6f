"""LLaVA-1.5, LLaVA-NeXT (incl. granite-vision) and Mistral3 (Pixtral-HF tower) vision towers; the language
model is whatever the text sub-config names (model/families/llama.py by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import math

from ..description import Shard, VisionSpec
from . import VisionTower, register_vision
from ..mm_tokens import ImageSize, MMItem
from ._vit import _select, _tower_seq
from ._vit import _linear, _llava_num_layers, _need, _norm, _p, _text_hidden, _tower


def _llava(cfg: dict, family: str) -> VisionSpec:
    """LLaVA-1.5 / LLaVA-NeXT / granite-vision.

    vLLM v0.26.0 vllm/model_executor/models/llava.py:LlavaForConditionalGeneration,
    llava_next.py:LlavaNextForConditionalGeneration, llava.py:init_vision_tower_for_llava.
    """
    vc = _need(cfg, "vision_config", family)
    feature_layer = cfg.get("vision_feature_layer", -2)
    n_cfg = int(vc["num_hidden_layers"])
    n_load = _llava_num_layers(feature_layer, n_cfg)
    # require_post_norm=None -> post norm only when every layer is built (Pixtral has none).
    params, info = _tower(vc, "vision_tower", n_load, post_norm=n_load == n_cfg)
    text_hidden = _text_hidden(cfg)
    n_feat = len(feature_layer) if isinstance(feature_layer, (list, tuple)) else 1
    v_in = info["width"] * n_feat
    bias = bool(cfg.get("multimodal_projector_bias", True))
    params += _linear("multi_modal_projector.linear_1", v_in, text_hidden, Shard.COLUMN, bias=bias)
    params += _linear("multi_modal_projector.linear_2", text_hidden, text_hidden, Shard.ROW,
                      bias=bias)
    if family == "llava_next":
        params.append(_p("image_newline", (text_hidden,)))
    extra = {
        "arch": info["tower"],
        "in_channels": info["in_channels"],
        "patch_input_dim": info["in_channels"] * info["patch"] ** 2,
        "head_dim": info["width"] // info["heads"],
        "mlp": "plain" if info["tower"] != "pixtral" else "gated",
        "norm": "layer" if info["tower"] != "pixtral" else "rms",
        "hidden_act": info["hidden_act"],
        "image_size": info["image_size"],
        "seq_per_crop": info["seq_per_crop"],
        "vision_feature_layer": feature_layer,
        "vision_feature_select_strategy": cfg.get("vision_feature_select_strategy", "default"),
        "loaded_layers": n_load,
        "config_layers": n_cfg,
        "embed_dim_per_token": text_hidden,
        "data_mode_replicated": (),
        "notes": (f"vLLM builds {n_load} of {n_cfg} tower layers (vision_feature_layer={feature_layer})",)
        if n_load != n_cfg else (),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_load, hidden_size=info["width"], num_heads=info["heads"],
        intermediate_size=info["inter"], patch_size=info["patch"], out_hidden_size=text_hidden,
        supports_encoder_tp_data=False, extra=extra,
    )


def _mistral3(cfg: dict, family: str) -> VisionSpec:
    """Mistral3 (Mistral-Small-3.1): Pixtral-HF tower + RMSNorm + patch merger + 2-layer projector.

    vLLM v0.26.0 vllm/model_executor/models/mistral3.py:Mistral3MultiModalProjector.
    """
    vc = _need(cfg, "vision_config", family)
    feature_layer = cfg.get("vision_feature_layer", -1)
    n_cfg = int(vc["num_hidden_layers"])
    n_load = _llava_num_layers(feature_layer, n_cfg)
    params, info = _tower(vc, "vision_tower", n_load, post_norm=False)
    merge = int(cfg.get("spatial_merge_size", 2))
    text_hidden = _text_hidden(cfg)
    width = info["width"]
    bias = bool(cfg.get("multimodal_projector_bias", False))
    params += _norm("multi_modal_projector.norm", width, bias=False)
    params.append(_p("multi_modal_projector.patch_merger.merging_layer.weight", (width, width * merge * merge)))
    params += _linear("multi_modal_projector.linear_1", width, text_hidden, Shard.COLUMN, bias=bias)
    params += _linear("multi_modal_projector.linear_2", text_hidden, text_hidden, Shard.ROW, bias=bias)
    extra = {
        "arch": "pixtral", "in_channels": info["in_channels"], "patch_input_dim": info["in_channels"] * info["patch"] ** 2,
        "head_dim": width // info["heads"], "mlp": "gated", "norm": "rms", "hidden_act": info["hidden_act"],
        "image_size": info["image_size"], "loaded_layers": n_load, "config_layers": n_cfg,
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (),
        "attention_mask": "dense block-diagonal (sum of patches)^2 without xformers",
        "notes": (),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_load, hidden_size=width, num_heads=info["heads"],
        intermediate_size=info["inter"], patch_size=info["patch"], spatial_merge_size=merge,
        out_hidden_size=text_hidden, supports_encoder_tp_data=False, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)


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


def _pixtral_grid(vc: Mapping[str, Any], merge: int, width: int, height: int) -> tuple[int, int, int, int]:
    """vLLM v0.26.0 pixtral.py:PixtralHFEncoderInfo.get_patch_grid_size -> (cols, rows, W, H) in merged units."""
    max_side = int(vc["image_size"])
    p = int(vc["patch_size"]) * merge
    ratio = max(width / max_side, height / max_side)
    if ratio > 1:
        width, height = int(math.floor(width / ratio)), int(math.floor(height / ratio))
    rows, cols = (height - 1) // p + 1, (width - 1) // p + 1
    return cols, rows, width, height


def _llava_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    seq = _tower_seq(vc)
    side = int(vc["image_size"])
    return MMItem(modality="image", width=side, height=side, num_tokens=_llava_tokens_per_crop(cfg),
                  num_patches=seq, attn_seq_lens=(seq,), input_width=width, input_height=height)


def _llava_next_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    tokens, crops = _llava_next_tokens(cfg, width, height)
    seq = _tower_seq(vc)
    side = int(vc["image_size"])
    return MMItem(modality="image", width=side, height=side, num_tokens=tokens, num_patches=crops * seq,
                  attn_seq_lens=(seq,) * crops, num_crops=crops, input_width=width, input_height=height)


def _mistral3_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    merge = int(cfg.get("spatial_merge_size") or 2)
    cols, rows, w, h = _pixtral_grid(vc, merge, width, height)
    patches = (rows * merge) * (cols * merge)
    return MMItem(modality="image", width=w, height=h, num_tokens=cols * rows, num_patches=patches,
                  attn_seq_lens=(patches,), input_width=width, input_height=height)


def _one_crop(cfg, pre, kw) -> ImageSize:
    """LLaVA and Mistral3: the tower's square image."""
    side = int((cfg.get("vision_config") or {})["image_size"])
    return ImageSize(width=side, height=side)


def _llava_next_most_features(cfg, pre, kw) -> ImageSize:
    best, best_size = 0, None
    for h, w in cfg["image_grid_pinpoints"]:
        tokens, _ = _llava_next_tokens(cfg, w, h)
        if tokens > best:
            best, best_size = tokens, ImageSize(width=w, height=h)
    return best_size

def _two_linear_projector(spec: VisionSpec, b: int, tp: int, patches_per_out: float) -> tuple[str, dict]:
    """LlavaMultiModalProjector: linear_1 [.., text_hidden/tp], act, linear_2 [.., text_hidden]."""
    D = spec.hidden_size
    out = spec.out_hidden_size or D
    return "projector", {"x": b * D, "linear_1": b * (out / tp) / patches_per_out,
                         "act": b * (out / tp) / patches_per_out, "linear_2": b * out / patches_per_out}


def _llava_tokens(spec: VisionSpec, patches_per_item: int) -> int | None:
    """One token per patch; the "default" strategy drops each crop's class token."""
    if not spec.extra.get("seq_per_crop"):
        return None
    crops = max(1, patches_per_item // spec.extra["seq_per_crop"])
    drop = 1 if spec.extra.get("arch") == "clip" and spec.extra.get("vision_feature_select_strategy") == "default" else 0
    return patches_per_item - drop * crops


_LLAVA_ENCODER = {"encoder_projector": _two_linear_projector, "encoder_tokens": _llava_tokens}

register_vision(VisionTower(name="llava", build=_llava, model_types=("llava",), item=_llava_item, most_features=_one_crop,
                            **_LLAVA_ENCODER,
                            architectures=("LlavaForConditionalGeneration",), needs_image_size=True))
register_vision(VisionTower(name="llava_next", build=_llava, model_types=("llava_next",), item=_llava_next_item, **_LLAVA_ENCODER,
                            most_features=_llava_next_most_features,
                            architectures=("LlavaNextForConditionalGeneration",), needs_image_size=True))
register_vision(VisionTower(name="mistral3", build=_mistral3, model_types=("mistral3",), item=_mistral3_item,
                            encoder_projector=_two_linear_projector,
                            most_features=_one_crop,
                            architectures=("Mistral3ForConditionalGeneration",), needs_image_size=True))
