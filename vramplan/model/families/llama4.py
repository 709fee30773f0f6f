"""Llama 4 (``Llama4ForConditionalGeneration``, Scout/Maverick) text: chunked local attention, interleaved MoE.

vLLM v0.26.0 vllm/model_executor/models/llama4.py: one rope (the config's first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functools import partial

from ..description import LayerSpec, MoESpec, Shard, VisionSpec
from . import Family, VisionTower, register, register_vision
from ..mm_tokens import ImageSize, MMItem
from ._vit import _get as _vget
from ._vit import _encoder_layers, _linear, _need, _p, _text_hidden
from ._vit import _norm as _vnorm
from ._common import _attention_kind, _experts, _gated_mlp, _get, _layer_types, _norm, _o_proj, _qkv, _rope_buffers, _router


def build(ctx):
    """Llama 4 (Scout/Maverick) text: chunked local attention on 3 of 4 layers, MoE on every step-th layer."""
    t, h = ctx.text, ctx.hidden
    num_experts = int(_get(t, "num_local_experts", default=16))
    moe_inter = int(_get(t, "intermediate_size", default=8192))
    dense_inter = int(_get(t, "intermediate_size_mlp", default=16384))
    step = int(_get(t, "interleave_moe_layer_step", default=1))
    moe_layers = set(t.get("moe_layers") or [i for i in range(ctx.num_layers) if (i + 1) % step == 0])
    attn = _qkv(ctx, bias=bool(t.get("attention_bias"))) + _o_proj(ctx, bias=False)
    norms = [_norm("input_layernorm", h, "llama4"), _norm("post_attention_layernorm", h, "llama4")]
    moe_block = _router(h, num_experts, name="feed_forward.router") + _experts(h, moe_inter, num_experts)
    moe_block += _gated_mlp(h, moe_inter, prefix="feed_forward.shared_expert")
    specs, params = [], []
    for i, lt in enumerate(_layer_types(ctx)):
        kind, spec = _attention_kind(ctx, lt)
        is_moe = i in moe_layers
        specs.append(LayerSpec(index=i, kind=kind, attention=spec, is_moe=is_moe))
        params.append(tuple(attn + norms + (moe_block if is_moe else _gated_mlp(h, dense_inter))))
    moe = MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok", default=1)),
                  intermediate_size=moe_inter, num_shared_experts=1, shared_intermediate_size=moe_inter)
    return tuple(specs), tuple(params), moe


register(Family(
    name="llama4",
    builder=build,
    architectures={"Llama4ForConditionalGeneration": True},
    buffers=partial(_rope_buffers, first_only=True),
))


def _vision(cfg: dict, family: str) -> VisionSpec:
    """Llama 4: unfold-conv patch embed, 34-layer ViT, pixel-shuffle MLP adapter, projector.

    vLLM v0.26.0 vllm/model_executor/models/mllama4.py:Llama4VisionModel, Llama4MultiModalProjector.
    """
    vc = _need(cfg, "vision_config", family)
    width, heads, inter = int(vc["hidden_size"]), int(vc["num_attention_heads"]), int(vc["intermediate_size"])
    n = int(vc["num_hidden_layers"])
    patch, image = int(vc["patch_size"]), int(vc["image_size"])
    ch = int(_vget(vc, "num_channels", default=3))
    grid = image // patch
    head_dim = width // heads
    pre = "vision_model"
    params = [_p(f"{pre}.patch_embedding.linear.weight", (width, ch * patch * patch), Shard.COLUMN),
              _p(f"{pre}.class_embedding", (width,)),
              _p(f"{pre}.positional_embedding_vlm", (grid * grid + 1, width))]
    params += _vnorm(f"{pre}.layernorm_pre", width, bias=True)
    params += _vnorm(f"{pre}.layernorm_post", width, bias=True)
    names = {"ln1": "input_layernorm", "qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj",
             "ln2": "post_attention_layernorm", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    params += _encoder_layers(f"{pre}.model.layers", n, width, heads, inter, names=names, qkv_bias=True,
                              o_bias=True, mlp_bias=True, gated=False, norm_bias=True)
    for i in range(n):
        # get_rope(..., dtype=torch.complex64): cache (grid^2, rotary_dim // 2) complex64 (partial 0.5).
        params.append(_p(f"{pre}.model.layers.{i}.self_attn.rotary_emb.cos_sin_cache",
                         (grid * grid, head_dim // 4), dtype="complex64", part="buffer"))
    proj_in, proj_out = int(vc["projector_input_dim"]), int(vc["projector_output_dim"])
    adapter_bias = bool(vc.get("multi_modal_projector_bias", False))
    params += _linear(f"{pre}.vision_adapter.mlp.fc1", inter, proj_in, Shard.COLUMN, bias=adapter_bias)
    params += _linear(f"{pre}.vision_adapter.mlp.fc2", proj_in, proj_out, Shard.ROW, bias=adapter_bias)
    text_hidden = _text_hidden(cfg)
    params += _linear("multi_modal_projector.linear_1", int(vc["vision_output_dim"]), text_hidden, Shard.COLUMN,
                      bias=False)
    ratio = float(vc.get("pixel_shuffle_ratio", 0.5))
    extra = {
        "arch": "llama4_vit", "in_channels": ch, "patch_input_dim": ch * patch * patch, "head_dim": head_dim,
        "mlp": "plain", "norm": "layer", "image_size": image, "seq_per_crop": grid * grid + 1,
        "tokens_per_tile": int(grid * grid * ratio * ratio), "loaded_layers": n, "config_layers": n,
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (f"{pre}.",),
        "notes": ("rotary cache shape inferred from get_rope(partial_rotary_factor=0.5, complex64)",),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


# --------------------------------------------------------------------------- token rules (moved from model/mm_tokens.py)


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


def _llama4_item(cfg, pre, kw, width: int, height: int) -> MMItem:
    vc = cfg.get("vision_config") or {}
    tiles = _llama4_tiles(cfg, pre, width, height)
    grid = int(vc["image_size"]) // int(vc["patch_size"])
    ratio = float(vc.get("pixel_shuffle_ratio") or 0.5)
    per_tile = int(grid * grid * ratio * ratio)
    side = int(vc["image_size"])
    return MMItem(modality="image", width=side, height=side, num_tokens=tiles * per_tile,
                  num_patches=tiles * (grid * grid + 1), attn_seq_lens=(grid * grid + 1,) * tiles,
                  num_crops=tiles, input_width=width, input_height=height)


def _llama4_most_features(cfg, pre, kw) -> ImageSize:
    vc = cfg.get("vision_config") or {}
    pc = dict(pre or {})
    side = int(vc["image_size"])
    return ImageSize(width=side, height=side * int(pc.get("max_patches") or 16))

register_vision(VisionTower(name="llama4", build=_vision, model_types=("llama4",), item=_llama4_item,
                            most_features=_llama4_most_features,
                            architectures=("Llama4ForConditionalGeneration",), needs_image_size=True))
