"""Vision towers from configs: every tensor vLLM allocates for the encoder and its projector.

:func:`describe_vision` turns a model's ``config.json`` dict (raw or with transformers
defaults filled) into a :class:`~vramplan.model.description.VisionSpec`. Its ``params``
list every tensor vLLM creates for the vision tower and the projector that feeds the
language model, one :class:`Param` per tensor (per layer too), with the
:class:`Shard` kind vLLM gives it under ``--mm-encoder-tp-mode weights`` (the default).
Layers that vLLM does not build (LLaVA-style towers stop at the deepest
``vision_feature_layer``) are not listed, so summing the params gives what vLLM
allocates.

Conventions (the same as the text model's):

- QKV params (``Shard.QKV``) have shape ``(num_heads, num_kv_heads, head_dim, in_features)``;
  their bias uses ``in_features = 1``. Elements: ``(h + 2 kv) * head_dim * in``.
- ``RowParallelLinear`` biases are replicated (every rank adds the full bias after the
  all-reduce), so they are listed as ``Shard.REPLICATED``.
- Buffers (rotary caches, ``position_ids``) have ``part="buffer"``; every other tensor
  has ``part="vision"``.

Under ``--mm-encoder-tp-mode data`` (only where ``supports_encoder_tp_data``) the tower
is built with ``disable_tp=True``: every param whose name starts with one of
``spec.extra["data_mode_replicated"]`` is then held whole on every rank;
:func:`vision_weight_elements` applies this.

Families (``VisionSpec.family``) and how complete they are:

======================  =====================================================  ==========
family                  architectures                                          status
======================  =====================================================  ==========
``qwen2_vl``            Qwen2VLForConditionalGeneration                        complete
``qwen2_5_vl``          Qwen2_5_VLForConditionalGeneration                     complete
``qwen3_vl``            Qwen3VLForConditionalGeneration (deepstack mergers)    complete
``qwen3_vl_moe``        Qwen3VLMoeForConditionalGeneration                     complete
``gemma3``              Gemma3ForConditionalGeneration (SigLIP + avg-pool)     complete
``llava``               LlavaForConditionalGeneration (CLIP/SigLIP/Pixtral)    complete
``llava_next``          LlavaNextForConditionalGeneration (incl. granite-      complete
                        vision: SigLIP tower, list ``vision_feature_layer``)
``mistral3``            Mistral3ForConditionalGeneration (Pixtral-HF tower)     complete
``internvl``            InternVLChatModel (remote-code config)                 params
``kimi_vl``             KimiVLForConditionalGeneration (MoonViT)               params
``llama4``              Llama4ForConditionalGeneration                         params
``mllama``              MllamaForConditionalGeneration (removed from vLLM      params from
                        in v0.10.2: no vLLM version we model can load it)      transformers
======================  =====================================================  ==========

"params" means the tensor list follows the vLLM model file but was not hand-checked
against a published parameter count; see ``spec.extra["notes"]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from .description import REMOVED_FROM_VLLM, Param, Shard, VisionSpec

__all__ = [
    "describe_vision",
    "vision_family",
    "resolve_config",
    "param_numel",
    "param_numel_per_rank",
    "vision_param_count",
    "vision_weight_elements",
    "vision_weight_bytes",
    "FAMILIES",
]

#: model_type (or architecture) -> vramplan vision family key.
_FAMILY_BY_MODEL_TYPE: dict[str, str] = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "qwen3_vl": "qwen3_vl",
    "qwen3_vl_moe": "qwen3_vl_moe",
    # Qwen3.5 / 3.6 use the Qwen3-VL tower (vLLM v0.34.0 vllm/models/qwen3_5/nvidia/model.py:
    # Qwen3_5ForConditionalGeneration builds Qwen3_VisionTransformer)
    "qwen3_5": "qwen3_vl",
    "qwen3_5_moe": "qwen3_vl_moe",
    "gemma3": "gemma3",
    "llava": "llava",
    "llava_next": "llava_next",
    "mistral3": "mistral3",
    "internvl_chat": "internvl",
    "kimi_vl": "kimi_vl",
    "kimi_k25": "kimi_k25",
    "llama4": "llama4",
    "mllama": "mllama",
}
_FAMILY_BY_ARCH: dict[str, str] = {
    "Qwen2VLForConditionalGeneration": "qwen2_vl",
    "Qwen2_5_VLForConditionalGeneration": "qwen2_5_vl",
    "Qwen3VLForConditionalGeneration": "qwen3_vl",
    "Qwen3VLMoeForConditionalGeneration": "qwen3_vl_moe",
    "Gemma3ForConditionalGeneration": "gemma3",
    "LlavaForConditionalGeneration": "llava",
    "LlavaNextForConditionalGeneration": "llava_next",
    "Mistral3ForConditionalGeneration": "mistral3",
    "InternVLChatModel": "internvl",
    "KimiVLForConditionalGeneration": "kimi_vl",
    "KimiK25ForConditionalGeneration": "kimi_k25",
    "Llama4ForConditionalGeneration": "llama4",
    "MllamaForConditionalGeneration": "mllama",
}
FAMILIES: tuple[str, ...] = tuple(sorted(set(_FAMILY_BY_MODEL_TYPE.values())))

# Families whose vLLM model class sets ``supports_encoder_tp_data = True``
# (vLLM v0.19.0, v0.26.0, v0.33.0 alike: grep of vllm/model_executor/models/*.py).
_SUPPORTS_TP_DATA = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "internvl", "kimi_vl", "llama4",
                     "kimi_k25"}


# --------------------------------------------------------------------------- config access


def vision_family(hf_config: Mapping[str, Any]) -> str | None:
    """The vision family of a config, or None for a text-only model."""
    model_type = str(hf_config.get("model_type") or "")
    if model_type in _FAMILY_BY_MODEL_TYPE:
        return _FAMILY_BY_MODEL_TYPE[model_type]
    for arch in hf_config.get("architectures") or ():
        if arch in _FAMILY_BY_ARCH:
            return _FAMILY_BY_ARCH[arch]
    return None


def resolve_config(hf_config: Mapping[str, Any]) -> dict:
    """The config with transformers' class defaults filled in (nested configs too).

    Uses ``transformers.AutoConfig.for_model`` (imported here, lazily). If transformers
    does not know the model type (remote-code configs such as ``internvl_chat`` or
    ``kimi_vl``), the dict is returned unchanged and the family builders use the
    defaults of the remote config class, written out below.
    """
    cfg = dict(hf_config)
    model_type = cfg.get("model_type")
    if not model_type or _looks_complete(cfg):
        return cfg
    try:
        from transformers import AutoConfig  # noqa: PLC0415  (kept off the CLI start-up path)

        kwargs = {k: v for k, v in cfg.items() if k != "model_type"}
        resolved = AutoConfig.for_model(model_type, **kwargs).to_dict()
    except Exception:  # unknown model type, or a transformers too old/new for it
        return cfg
    # Keep anything the file had that transformers dropped.
    for key, value in cfg.items():
        resolved.setdefault(key, value)
    for sub in ("vision_config", "text_config"):
        if isinstance(cfg.get(sub), dict) and isinstance(resolved.get(sub), dict):
            for key, value in cfg[sub].items():
                resolved[sub].setdefault(key, value)
    return resolved


def _looks_complete(cfg: Mapping[str, Any]) -> bool:
    """True when the keys the builders read are already there (a resolved config): then
    transformers is not imported at all (keeps ``vramplan plan`` light)."""
    vc = cfg.get("vision_config")
    if not isinstance(vc, Mapping):
        return cfg.get("model_type") in ("internvl_chat", "kimi_vl")
    text = cfg.get("text_config") or cfg.get("llm_config") or {}
    has_text = text.get("hidden_size") is not None or cfg.get("hidden_size") is not None
    width = vc.get("hidden_size") is not None or vc.get("embed_dim") is not None
    layers = vc.get("depth") is not None or vc.get("num_hidden_layers") is not None
    heads = vc.get("num_heads") is not None or vc.get("num_attention_heads") is not None
    inter = vc.get("intermediate_size") is not None or vc.get("mlp_ratio") is not None
    towered = cfg.get("model_type") in ("gemma3", "llava", "llava_next", "mistral3", "llama4", "mllama")
    return has_text and width and layers and heads and inter and vc.get("patch_size") is not None and (
        not towered or vc.get("image_size") is not None)


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


# --------------------------------------------------------------------------- param builders


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


# --------------------------------------------------------------------------- element counts


def param_numel(p: Param) -> int:
    """Elements of one (unsharded) param. QKV: ``(h + 2 kv) * head_dim * in``."""
    if p.shard is Shard.QKV:
        h, kv, d, in_f = p.shape
        return (h + 2 * kv) * d * in_f
    return math.prod(p.shape)


def param_numel_per_rank(p: Param, tp: int) -> int:
    """Elements one TP rank holds (vLLM's ``divide`` asserts exact division; we round up)."""
    if tp <= 1 or p.shard is Shard.REPLICATED:
        return param_numel(p)
    if p.shard is Shard.QKV:
        h, kv, d, in_f = p.shape
        h_r = -(-h // tp)
        kv_r = max(1, kv // tp) if tp >= kv else -(-kv // tp)
        return (h_r + 2 * kv_r) * d * in_f
    if p.shard is Shard.ROW and len(p.shape) >= 2:
        return p.shape[0] * -(-p.shape[1] // tp) * math.prod(p.shape[2:])
    if p.shard in (Shard.COLUMN, Shard.VOCAB, Shard.EXPERT_COLUMN, Shard.EXPERT_ROW):
        return -(-p.shape[0] // tp) * math.prod(p.shape[1:])
    return param_numel(p)


def vision_param_count(spec: VisionSpec, *, include_buffers: bool = False) -> int:
    """Total elements of the vision tower and projector (unsharded)."""
    return sum(param_numel(p) for p in spec.params if include_buffers or p.part != "buffer")


def _is_data_replicated(spec: VisionSpec, name: str) -> bool:
    return any(name.startswith(prefix) for prefix in spec.extra.get("data_mode_replicated", ()))


def vision_weight_elements(spec: VisionSpec, *, tp: int = 1, mm_encoder_tp_mode: str = "weights",
                           include_buffers: bool = True) -> int:
    """Elements of vision params held by one TP rank.

    ``mm_encoder_tp_mode="data"`` only takes effect where ``supports_encoder_tp_data``
    (otherwise vLLM warns and falls back to ``weights``:
    vLLM v0.26.0 vllm/config/model.py:ModelConfig.__post_init__; vllm/model_executor/models/vision.py:is_vit_use_data_parallel).
    """
    data = mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data
    total = 0
    for p in spec.params:
        if p.part == "buffer" and not include_buffers:
            continue
        if data and _is_data_replicated(spec, p.name):
            total += param_numel(p)
        else:
            total += param_numel_per_rank(p, tp)
    return total


_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "complex64": 8, "int32": 4}


def vision_weight_bytes(spec: VisionSpec, *, dtype_bytes: int = 2, tp: int = 1,
                        mm_encoder_tp_mode: str = "weights") -> int:
    """Bytes of vision params and buffers on one TP rank (unquantized)."""
    data = mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data
    total = 0
    for p in spec.params:
        n = param_numel(p) if (data and _is_data_replicated(spec, p.name)) else param_numel_per_rank(p, tp)
        total += n * (_DTYPE_BYTES[p.dtype] if p.dtype else dtype_bytes)
    return total


# --------------------------------------------------------------------------- families


def describe_vision(hf_config: Mapping[str, Any], preprocessor_config: Mapping[str, Any] | None = None) -> VisionSpec | None:
    """The vision tower and projector of a multimodal config; None for a text-only model.

    ``hf_config`` is the model's ``config.json`` dict; missing keys are filled from the
    transformers config class (see :func:`resolve_config`). ``preprocessor_config`` is
    only used for facts that live there (none of the tensors depend on it today; it is
    kept in ``extra`` for the token rules of :mod:`vramplan.model.mm_tokens`).
    """
    family = vision_family(hf_config)
    if family is None:
        return None
    cfg = resolve_config(hf_config)
    builder = _BUILDERS[family]
    spec = builder(cfg, family)
    if preprocessor_config is not None:
        spec.extra["preprocessor_config"] = dict(preprocessor_config)
    return spec


def _qwen_vl(cfg: dict, family: str) -> VisionSpec:
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL (dense and MoE).

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
        supports_encoder_tp_data=family in _SUPPORTS_TP_DATA, extra=extra,
    )


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
        "notes": ("InternVL remote-code config defaults written out in vramplan (not hand-checked against a checkpoint)",),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_load, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


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


def _kimi_k25(cfg: dict, family: str) -> VisionSpec:
    """Kimi-K2.5 MoonViT-3D (model/families/kimi_k25.py)."""
    from .families import vision_builder_for

    build = vision_builder_for("kimi_k25")
    assert build is not None  # registered by model/families/kimi_k25.py
    return build(cfg, family)


def _llama4(cfg: dict, family: str) -> VisionSpec:
    """Llama 4: unfold-conv patch embed, 34-layer ViT, pixel-shuffle MLP adapter, projector.

    vLLM v0.26.0 vllm/model_executor/models/mllama4.py:Llama4VisionModel, Llama4MultiModalProjector.
    """
    vc = _need(cfg, "vision_config", family)
    width, heads, inter = int(vc["hidden_size"]), int(vc["num_attention_heads"]), int(vc["intermediate_size"])
    n = int(vc["num_hidden_layers"])
    patch, image = int(vc["patch_size"]), int(vc["image_size"])
    ch = int(_get(vc, "num_channels", default=3))
    grid = image // patch
    head_dim = width // heads
    pre = "vision_model"
    params = [_p(f"{pre}.patch_embedding.linear.weight", (width, ch * patch * patch), Shard.COLUMN),
              _p(f"{pre}.class_embedding", (width,)),
              _p(f"{pre}.positional_embedding_vlm", (grid * grid + 1, width))]
    params += _norm(f"{pre}.layernorm_pre", width, bias=True)
    params += _norm(f"{pre}.layernorm_post", width, bias=True)
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


def _mllama(cfg: dict, family: str) -> VisionSpec:
    """Llama 3.2 Vision (mllama), from transformers' MllamaVisionConfig/MllamaTextConfig.

    vLLM removed ``MllamaForConditionalGeneration`` in v0.10.2 (vLLM v0.26.0
    vllm/model_executor/models/registry.py:_PREVIOUSLY_SUPPORTED_MODELS), so no version
    vramplan models can serve it. Tensors follow transformers' MllamaVisionModel; shards
    follow vLLM's column/row pattern as of its last mllama.py (not in our sources: marked).
    The text model's cross-attention layers are reported in ``extra["cross_attention_layers"]``.
    """
    vc = _need(cfg, "vision_config", family)
    tc = cfg.get("text_config") or {}
    width = int(vc["hidden_size"])
    heads = int(_get(vc, "attention_heads", "num_attention_heads"))
    inter = int(vc["intermediate_size"])
    n_local = int(vc["num_hidden_layers"])
    n_global = int(vc.get("num_global_layers", 8))
    patch, image = int(vc["patch_size"]), int(vc["image_size"])
    ch = int(_get(vc, "num_channels", default=3))
    tiles = int(vc.get("max_num_tiles", 4))
    ratios = int(len(vc.get("supported_aspect_ratios") or [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]))
    grid = image // patch
    head_dim = width // heads
    pre = "vision_model"
    params = [_p(f"{pre}.patch_embedding.weight", (width, ch, patch, patch)),
              _p(f"{pre}.class_embedding", (width,)),
              _p(f"{pre}.gated_positional_embedding.embedding", (grid * grid + 1, width)),
              _p(f"{pre}.gated_positional_embedding.gate", (1,)),
              _p(f"{pre}.gated_positional_embedding.tile_embedding.weight", (ratios + 1, tiles * (grid * grid + 1) * width)),
              _p(f"{pre}.pre_tile_positional_embedding.embedding.weight", (ratios + 1, tiles * width)),
              _p(f"{pre}.pre_tile_positional_embedding.gate", (1,)),
              _p(f"{pre}.post_tile_positional_embedding.embedding.weight", (ratios + 1, tiles * width)),
              _p(f"{pre}.post_tile_positional_embedding.gate", (1,))]
    params += _norm(f"{pre}.layernorm_pre", width, bias=True)
    params += _norm(f"{pre}.layernorm_post", width, bias=True)
    names = {"ln1": "input_layernorm", "qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj",
             "ln2": "post_attention_layernorm", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    params += _encoder_layers(f"{pre}.transformer.layers", n_local, width, heads, inter, names=names,
                              qkv_bias=False, o_bias=False, mlp_bias=True, gated=False, norm_bias=True)
    params += _encoder_layers(f"{pre}.global_transformer.layers", n_global, width, heads, inter, names=names,
                              qkv_bias=False, o_bias=False, mlp_bias=True, gated=False, norm_bias=True)
    for i in range(n_global):
        params += [_p(f"{pre}.global_transformer.layers.{i}.gate_attn", (1,)),
                   _p(f"{pre}.global_transformer.layers.{i}.gate_ffn", (1,))]
    inter_layers = list(vc.get("intermediate_layers_indices") or [3, 7, 15, 23, 30])
    v_out = int(vc.get("vision_output_dim", width * (len(inter_layers) + 1)))
    text_hidden = int(tc.get("hidden_size", 4096))
    params += _linear("multi_modal_projector", v_out, text_hidden, Shard.COLUMN, bias=True)
    cross = tuple(int(i) for i in (tc.get("cross_attention_layers") or ()))
    extra = {
        "arch": "mllama_vit", "in_channels": ch, "patch_input_dim": ch * patch * patch, "head_dim": head_dim,
        "mlp": "plain", "norm": "layer", "image_size": image, "seq_per_crop": grid * grid + 1,
        "max_num_tiles": tiles, "cross_attention_layers": cross, "num_text_layers": tc.get("num_hidden_layers"),
        "loaded_layers": n_local + n_global, "config_layers": n_local + n_global, "embed_dim_per_token": text_hidden,
        "data_mode_replicated": (), "vllm_removed_in": _removed_in("MllamaForConditionalGeneration"),
        "notes": ("MllamaForConditionalGeneration was removed from vLLM after v"
                  f"{REMOVED_FROM_VLLM['MllamaForConditionalGeneration']}: every modelled version refuses it",
                  "tensor list from transformers' MllamaVisionModel; TP shards assumed (vLLM's mllama.py is not in our sources)"),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_local + n_global, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, out_hidden_size=text_hidden, supports_encoder_tp_data=False,
        extra=extra,
    )


_BUILDERS = {
    "qwen2_vl": _qwen_vl,
    "qwen2_5_vl": _qwen_vl,
    "qwen3_vl": _qwen_vl,
    "qwen3_vl_moe": _qwen_vl,
    "gemma3": _gemma3,
    "llava": _llava,
    "llava_next": _llava,
    "mistral3": _mistral3,
    "internvl": _internvl,
    "kimi_vl": _kimi_vl,
    "kimi_k25": _kimi_k25,
    "llama4": _llama4,
    "mllama": _mllama,
}


def _removed_in(arch: str) -> tuple[int, ...]:
    return tuple(int(x) for x in REMOVED_FROM_VLLM[arch].split("."))
