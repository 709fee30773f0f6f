"""InternVL (``InternVLChatModel``, remote-code config) vision tower: InternViT + pixel shuffle + mlp1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


from ..description import Shard, VisionSpec
from . import VisionTower, register_vision
from ..mm_tokens import ImageSize, MMItem
from ._vit import _encoder_layers, _linear, _norm, _p, _text_hidden


# Defaults of the remote-code InternVLChatConfig / InternVisionConfig (InternViT-300M-448px),
# used where the config omits a key (transformers has no class for ``internvl_chat``).
_INTERNVL_DEFAULTS = {"select_layer": -1, "downsample_ratio": 0.5, "force_image_size": None,
                      "max_dynamic_patch": 12, "min_dynamic_patch": 1, "use_thumbnail": True,
                      "dynamic_image_size": True, "ps_version": "v2"}
_INTERNVIT_DEFAULTS = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                       "intermediate_size": 4096, "image_size": 448, "patch_size": 14, "qkv_bias": True,
                       "qk_normalization": False, "norm_type": "layer_norm", "num_channels": 3}


def _internvl(cfg: dict, family: str) -> VisionSpec:
    """InternVL (InternVLChatModel): InternViT + pixel shuffle + mlp1.

    vLLM v0.26.0 vllm/model_executor/models/internvl.py:InternVLChatModel,
    intern_vit.py:InternVisionModel. Defaults of the remote-code config are written out
    in ``_INTERNVL_DEFAULTS`` / ``_INTERNVIT_DEFAULTS`` (not in the catalog; not hand-checked).
    """
    top = {**_INTERNVL_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    vc = {**_INTERNVIT_DEFAULTS, **{k: v for k, v in (cfg.get("vision_config") or {}).items() if v is not None}}
    width, heads, inter = int(vc["hidden_size"]), int(vc["num_attention_heads"]), int(vc["intermediate_size"])
    n_cfg = int(vc["num_hidden_layers"])
    sel = int(top["select_layer"])
    n_load = n_cfg + sel + 1 if sel < 0 else sel + 1
    image = int(top["force_image_size"] or vc["image_size"])
    patch = int(vc["patch_size"])
    grid = image // patch
    rms = vc.get("norm_type") == "rms_norm"
    pre = "vision_model"
    params = [_p(f"{pre}.embeddings.class_embedding", (1, 1, width)),
              _p(f"{pre}.embeddings.patch_embedding.weight", (width, 3, patch, patch)),
              _p(f"{pre}.embeddings.patch_embedding.bias", (width,)),
              _p(f"{pre}.embeddings.position_embedding", (1, grid * grid + 1, width))]
    names = {"ln1": "norm1", "qkv": "attn.qkv", "o": "attn.proj", "ln2": "norm2", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    layers = _encoder_layers(f"{pre}.encoder.layers", n_load, width, heads, inter, names=names,
                             qkv_bias=bool(vc["qkv_bias"]), o_bias=True, mlp_bias=True, gated=False, norm_bias=not rms)
    params += layers
    for i in range(n_load):
        params += [_p(f"{pre}.encoder.layers.{i}.ls1", (width,)), _p(f"{pre}.encoder.layers.{i}.ls2", (width,))]
        if vc.get("qk_normalization"):
            params += _norm(f"{pre}.encoder.layers.{i}.attn.q_norm", width, bias=False)
            params += _norm(f"{pre}.encoder.layers.{i}.attn.k_norm", width, bias=False)
    ratio = float(top["downsample_ratio"])
    shuffled = width * int(1 / ratio) ** 2
    text_hidden = _text_hidden(cfg)
    params += _norm("mlp1.0", shuffled, bias=True)
    params += _linear("mlp1.1", shuffled, text_hidden, Shard.REPLICATED, bias=True, q=False)
    params += _linear("mlp1.3", text_hidden, text_hidden, Shard.REPLICATED, bias=True, q=False)
    extra = {
        "arch": "internvit", "in_channels": 3, "patch_input_dim": 3 * patch * patch, "head_dim": width // heads,
        "mlp": "plain", "norm": "rms" if rms else "layer", "image_size": image, "seq_per_crop": grid * grid + 1,
        "tokens_per_tile": int(grid * grid * ratio * ratio), "loaded_layers": n_load, "config_layers": n_cfg,
        "max_dynamic_patch": int(top["max_dynamic_patch"]), "min_dynamic_patch": int(top["min_dynamic_patch"]),
        "use_thumbnail": bool(top["use_thumbnail"]), "dynamic_image_size": bool(top["dynamic_image_size"]),
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (f"{pre}.",),
        # vLLM v0.26.0 intern_vit.py:InternParallelAttention: heads (+ 0 dummy heads for InternVLChatModel) not
        # divisible by TP -> qkv, proj (and q/k norms) built with disable_tp; the MLP stays split
        "whole_when_heads_indivisible": tuple(f"{pre}.encoder.layers.{i}.attn." for i in range(n_load)),
        "notes": ("InternVL remote-code config defaults written out in vramplan (not hand-checked against a checkpoint)",),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_load, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)


def _internvl_opts(cfg: Mapping[str, Any], kw: Mapping[str, Any]) -> dict:
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


def _internvl_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    o = _internvl_opts(cfg, kw)
    blocks = _internvl_blocks(o, width, height)
    return MMItem(modality="image", width=o["image"], height=o["image"], num_tokens=blocks * o["per_tile"],
                  num_patches=blocks * o["seq"], attn_seq_lens=(o["seq"],) * blocks, num_crops=blocks,
                  input_width=width, input_height=height)


def _internvl_most_features(cfg, pre, kw) -> ImageSize:
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

register_vision(VisionTower(name="internvl", build=_internvl, model_types=("internvl_chat",), item=_internvl_item,
                            most_features=_internvl_most_features,
                            architectures=("InternVLChatModel",), remote_config=True))
