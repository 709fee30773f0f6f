"""Kimi-VL (``KimiVLForConditionalGeneration``, remote-code config) vision tower: MoonViT + projector; the
language model is DeepSeek-V2's (model/families/deepseek_v2.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import math

from ..description import Shard, VisionSpec
from . import VisionTower, register_vision
from ..mm_tokens import ImageSize, MMItem
from ._vit import _encoder_layers, _linear, _norm, _p, _text_hidden


# Defaults of the remote-code MoonViTConfig (Kimi-VL-A3B).
_MOONVIT_DEFAULTS = {"patch_size": 14, "init_pos_emb_height": 64, "init_pos_emb_width": 64, "num_attention_heads": 16,
                     "num_hidden_layers": 27, "hidden_size": 1152, "intermediate_size": 4304,
                     "merge_kernel_size": [2, 2]}


def _kimi_vl(cfg: dict, family: str) -> VisionSpec:
    """Kimi-VL: MoonViT + LayerNorm + 2-layer replicated projector.

    vLLM v0.26.0 vllm/model_executor/models/kimi_vl.py:KimiVLMultiModalProjector, moonvit.py.
    """
    vc = {**_MOONVIT_DEFAULTS, **{k: v for k, v in (cfg.get("vision_config") or {}).items() if v is not None}}
    width, heads, inter = int(vc["hidden_size"]), int(vc["num_attention_heads"]), int(vc["intermediate_size"])
    n = int(vc["num_hidden_layers"])
    patch = int(vc["patch_size"])
    kh, kw = (int(x) for x in vc["merge_kernel_size"])
    pre = "vision_tower"
    params = [_p(f"{pre}.patch_embed.proj.weight", (width, 3, patch, patch)),
              _p(f"{pre}.patch_embed.proj.bias", (width,)),
              _p(f"{pre}.patch_embed.pos_emb.weight", (int(vc["init_pos_emb_height"]), int(vc["init_pos_emb_width"]), width))]
    names = {"ln1": "norm0", "qkv": "wqkv", "o": "wo", "ln2": "norm1", "fc1": "mlp.fc0", "fc2": "mlp.fc1"}
    params += _encoder_layers(f"{pre}.encoder.blocks", n, width, heads, inter, names=names, qkv_bias=True,
                              o_bias=True, mlp_bias=True, gated=False, norm_bias=True)
    params += _norm(f"{pre}.encoder.final_layernorm", width, bias=True)
    text_hidden = _text_hidden(cfg)
    merged = width * kh * kw
    params += _norm("multi_modal_projector.pre_norm", width, bias=True)
    params += _linear("multi_modal_projector.linear_1", merged, merged, Shard.REPLICATED, bias=True, q=False)
    params += _linear("multi_modal_projector.linear_2", merged, text_hidden, Shard.REPLICATED, bias=True, q=False)
    extra = {
        "arch": "moonvit", "in_channels": 3, "patch_input_dim": 3 * patch * patch, "head_dim": width // heads,
        "mlp": "plain", "norm": "layer", "merge_kernel_size": (kh, kw), "loaded_layers": n, "config_layers": n,
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (f"{pre}.",),
        "notes": ("MoonViT remote-code config defaults written out in vramplan; rotary freqs_cis buffer "
                  "(complex64, max 512x512 grid) not listed",),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, spatial_merge_size=kh, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)


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


def _kimi_vl_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    tokens, patches = _kimi_tokens(cfg, pre, width, height)
    return MMItem(modality="image", width=width, height=height, num_tokens=tokens, num_patches=patches,
                  attn_seq_lens=(patches,), input_width=width, input_height=height)


def _kimi_vl_most_features(cfg, pre, kw) -> ImageSize:
    return ImageSize(width=1024, height=1024)  # kimi_vl.py:MaxImageTokenMeta

register_vision(VisionTower(name="kimi_vl", build=_kimi_vl, model_types=("kimi_vl",), item=_kimi_vl_item,
                            most_features=_kimi_vl_most_features,
                            architectures=("KimiVLForConditionalGeneration",), remote_config=True))
