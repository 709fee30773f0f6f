"""Generic vision-tower pieces shared by the vision-language family modules (moved from model/vision.py).

Conventions (``model/vision.py`` describes them): QKV params ``(heads, kv_heads, head_dim, in_features)``,
``RowParallelLinear`` biases replicated, buffers with ``part="buffer"``, every other tensor ``part="vision"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import ConfigError
from ..description import REMOVED_FROM_VLLM, Param, Shard, VisionSpec

__all__ = ["VisionSpec", "REMOVED_FROM_VLLM"]


def _get(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


def _need(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    value = cfg.get(key)
    if value is None:
        raise ConfigError(
            f"{where}: config has no '{key}'",
            hint="Give the model's full config.json (with its vision_config).",
        )
    return value


def _text_hidden(cfg: Mapping[str, Any]) -> int:
    text = cfg.get("text_config") or cfg.get("llm_config") or {}
    value = _get(text, "hidden_size") or cfg.get("hidden_size")
    if value is None:
        raise ConfigError("config has no text hidden_size", hint="Give the model's full config.json.")
    return int(value)


def _p(name: str, shape: Iterable[int], shard: Shard = Shard.REPLICATED, *, q: bool = False,
       dtype: str | None = None, part: str = "vision") -> Param:
    return Param(name=name, shape=tuple(int(s) for s in shape), shard=shard, part=part, quantizable=q, dtype=dtype)


def _linear(prefix: str, in_f: int, out_f: int, kind: Shard, *, bias: bool, q: bool = True) -> list[Param]:
    """A vLLM linear layer: weight (out, in) and its bias, with vLLM's sharding."""
    out = [_p(f"{prefix}.weight", (out_f, in_f), kind, q=q)]
    if bias:
        bias_shard = Shard.REPLICATED if kind in (Shard.ROW, Shard.REPLICATED) else kind
        out.append(_p(f"{prefix}.bias", (out_f,), bias_shard))
    return out


def _qkv(prefix: str, hidden: int, num_heads: int, head_dim: int, *, bias: bool, q: bool = True) -> list[Param]:
    """``QKVParallelLinear`` with as many KV heads as query heads (all vision towers)."""
    out = [_p(f"{prefix}.weight", (num_heads, num_heads, head_dim, hidden), Shard.QKV, q=q)]
    if bias:
        out.append(_p(f"{prefix}.bias", (num_heads, num_heads, head_dim, 1), Shard.QKV))
    return out


def _norm(prefix: str, dim: int, *, bias: bool) -> list[Param]:
    out = [_p(f"{prefix}.weight", (dim,))]
    if bias:
        out.append(_p(f"{prefix}.bias", (dim,)))
    return out


def _rope_cache(prefix: str, max_position: int, rotary_dim: int, dtype: str | None = None) -> Param:
    """``RotaryEmbedding.cos_sin_cache``: (max_position, rotary_dim), default (model) dtype.

    vLLM v0.26.0 vllm/model_executor/layers/rotary_embedding/base.py:RotaryEmbeddingBase.__init__
    """
    return _p(f"{prefix}.cos_sin_cache", (max_position, rotary_dim), dtype=dtype, part="buffer")


def _layer_index(feature_layer: int, num_layers: int) -> int:
    # vLLM v0.26.0 vllm/model_executor/models/utils.py:get_layer_index
    return num_layers + feature_layer + 1 if feature_layer < 0 else feature_layer


def _llava_num_layers(feature_layer: int | list[int], num_layers: int) -> int:
    # vLLM v0.26.0 vllm/model_executor/models/llava.py:_get_num_hidden_layers
    if isinstance(feature_layer, int):
        return _layer_index(feature_layer, num_layers)
    return max(_layer_index(i, num_layers) for i in feature_layer)


def _encoder_layers(pre: str, n: int, width: int, heads: int, inter: int, *, names: dict, qkv_bias: bool,
                    o_bias: bool, mlp_bias: bool, gated: bool, norm_bias: bool) -> list[Param]:
    """Generic pre-norm ViT layers (CLIP, SigLIP, Pixtral-HF, InternViT, MoonViT, Llama4)."""
    head_dim = width // heads
    out: list[Param] = []
    for i in range(n):
        b = f"{pre}.{i}"
        out += _norm(f"{b}.{names['ln1']}", width, bias=norm_bias)
        out += _qkv(f"{b}.{names['qkv']}", width, heads, head_dim, bias=qkv_bias)
        out += _linear(f"{b}.{names['o']}", width, width, Shard.ROW, bias=o_bias)
        out += _norm(f"{b}.{names['ln2']}", width, bias=norm_bias)
        if gated:
            out += _linear(f"{b}.{names['fc1']}", width, 2 * inter, Shard.COLUMN, bias=mlp_bias)
        else:
            out += _linear(f"{b}.{names['fc1']}", width, inter, Shard.COLUMN, bias=mlp_bias)
        out += _linear(f"{b}.{names['fc2']}", inter, width, Shard.ROW, bias=mlp_bias)
    return out


_CLIP_NAMES = {"ln1": "layer_norm1", "qkv": "self_attn.qkv_proj", "o": "self_attn.out_proj",
               "ln2": "layer_norm2", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def _tower(vc: dict, pre: str, num_layers: int, *, post_norm: bool) -> tuple[list[Param], dict]:
    """CLIP / SigLIP / Pixtral-HF towers as ``init_vision_tower_for_llava`` builds them.

    vLLM v0.26.0 vllm/model_executor/models/clip.py:CLIPVisionTransformer,
    siglip.py:SiglipVisionTransformer, pixtral.py:PixtralHFVisionModel.
    """
    mt = str(vc.get("model_type") or "")
    width = int(vc["hidden_size"])
    heads = int(vc["num_attention_heads"])
    inter = int(vc["intermediate_size"])
    patch = int(vc["patch_size"])
    image = int(vc["image_size"])
    ch = int(_get(vc, "num_channels", default=3))
    grid = image // patch
    params: list[Param] = []
    if "clip" in mt:
        params += [_p(f"{pre}.embeddings.class_embedding", (width,)),
                   _p(f"{pre}.embeddings.patch_embedding.weight", (width, ch, patch, patch)),
                   _p(f"{pre}.embeddings.position_embedding.weight", (grid * grid + 1, width)),
                   _p(f"{pre}.embeddings.position_ids", (1, grid * grid + 1), dtype="int64", part="buffer")]
        params += _norm(f"{pre}.pre_layrnorm", width, bias=True)
        params += _encoder_layers(f"{pre}.encoder.layers", num_layers, width, heads, inter, names=_CLIP_NAMES,
                                  qkv_bias=True, o_bias=True, mlp_bias=True, gated=False, norm_bias=True)
        if post_norm:
            params += _norm(f"{pre}.post_layernorm", width, bias=True)
        arch, seq = "clip", grid * grid + 1
    elif "siglip" in mt:
        params += [_p(f"{pre}.embeddings.patch_embedding.weight", (width, ch, patch, patch)),
                   _p(f"{pre}.embeddings.patch_embedding.bias", (width,)),
                   _p(f"{pre}.embeddings.position_embedding.weight", (grid * grid, width)),
                   _p(f"{pre}.embeddings.position_ids", (1, grid * grid), dtype="int64", part="buffer")]
        params += _encoder_layers(f"{pre}.encoder.layers", num_layers, width, heads, inter, names=_CLIP_NAMES,
                                  qkv_bias=True, o_bias=True, mlp_bias=True, gated=False, norm_bias=True)
        if post_norm:
            params += _norm(f"{pre}.post_layernorm", width, bias=True)
        arch, seq = "siglip", grid * grid
    elif "pixtral" in mt:
        head_dim = int(_get(vc, "head_dim", default=width // heads))
        params += [_p(f"{pre}.patch_conv.weight", (width, ch, patch, patch))]
        params += _norm(f"{pre}.ln_pre", width, bias=False)
        names = {"ln1": "attention_norm", "qkv": "attention.qkv_proj", "o": "attention.o_proj",
                 "ln2": "ffn_norm", "fc1": "feed_forward.gate_up_proj", "fc2": "feed_forward.down_proj"}
        params += _encoder_layers(f"{pre}.transformer.layers", num_layers, width, heads, inter, names=names,
                                  qkv_bias=False, o_bias=False, mlp_bias=False, gated=True, norm_bias=False)
        # PixtralRotaryEmbedding (transformers): inv_freq buffer (max_side^2, head_dim), float32.
        params.append(_p(f"{pre}.patch_positional_embedding.inv_freq", (grid * grid, head_dim),
                         dtype="float32", part="buffer"))
        arch, seq = "pixtral", grid * grid
    else:
        raise ConfigError(f"unknown vision tower model_type '{mt}'",
                          hint="vramplan knows CLIP, SigLIP and Pixtral towers for LLaVA-style models.")
    info = {"tower": arch, "width": width, "heads": heads, "inter": inter, "patch": patch, "image_size": image,
            "seq_per_crop": seq, "in_channels": ch, "hidden_act": vc.get("hidden_act")}
    return params, info


def _removed_in(arch: str) -> tuple[int, ...]:
    return tuple(int(x) for x in REMOVED_FROM_VLLM[arch].split("."))


# Token helpers (moved from model/mm_tokens.py)


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
