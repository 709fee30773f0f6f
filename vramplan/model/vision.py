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
from collections.abc import Mapping
from typing import Any

from .description import Param, Shard, VisionSpec
from .families import vision_tower, vision_tower_for
# Re-exported for family modules written against the old layout (other branches): new code imports families._vit.
from .families._vit import _encoder_layers, _linear, _need, _norm, _p, _qkv, _text_hidden, _tower  # noqa: F401

__all__ = [
    "describe_vision",
    "vision_family",
    "resolve_config",
    "param_numel",
    "param_numel_per_rank",
    "vision_param_count",
    "vision_weight_elements",
    "vision_weight_bytes",
    "heads_whole_prefixes",
    "vision_tp_error",
    "FAMILIES",
]

# --------------------------------------------------------------------------- config access


def __getattr__(name: str) -> Any:
    if name == "FAMILIES":  # every vision family a model_type selects (the registry, loaded on first use)
        from .families import vision_families

        return vision_families()
    raise AttributeError(name)


def vision_family(hf_config: Mapping[str, Any]) -> str | None:
    """The vision family of a config, or None for a text-only model."""
    tower = vision_tower_for(str(hf_config.get("model_type") or ""), tuple(hf_config.get("architectures") or ()))
    return tower.name if tower is not None else None


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
    tower = vision_tower_for(str(cfg.get("model_type") or ""))
    vc = cfg.get("vision_config")
    if not isinstance(vc, Mapping):
        return tower is not None and tower.remote_config
    text = cfg.get("text_config") or cfg.get("llm_config") or {}
    has_text = text.get("hidden_size") is not None or cfg.get("hidden_size") is not None
    # MoonViT-3D configs (Kimi-K2.5 / K3) name them vt_hidden_size, vt_num_hidden_layers, ...
    width = any(vc.get(k) is not None for k in ("hidden_size", "embed_dim", "vt_hidden_size"))
    layers = any(vc.get(k) is not None for k in ("depth", "num_hidden_layers", "vt_num_hidden_layers"))
    heads = any(vc.get(k) is not None for k in ("num_heads", "num_attention_heads", "vt_num_attention_heads"))
    inter = any(vc.get(k) is not None for k in ("intermediate_size", "mlp_ratio", "vt_intermediate_size"))
    towered = tower is not None and tower.needs_image_size
    return has_text and width and layers and heads and inter and vc.get("patch_size") is not None and (
        not towered or vc.get("image_size") is not None)


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


def heads_whole_prefixes(spec: VisionSpec, tp: int) -> tuple[str, ...]:
    """Name prefixes of the params held whole on every rank while the rest of the tower is split, when TP does
    not divide the tower's heads: InternViT's attention (vLLM v0.12.0 .. v0.34.0
    vllm/model_executor/models/intern_vit.py:InternVisionEncoderLayer._init_attn builds InternParallelAttention
    with ``disable_tp`` when ``(num_heads + num_dummy_heads) % tp``; InternVLChatModel passes no dummy heads; the
    MLP stays split). The family lists them in ``spec.extra["whole_when_heads_indivisible"]``; () otherwise."""
    if tp <= 1 or not spec.num_heads or not spec.num_heads % tp:
        return ()
    return tuple(spec.extra.get("whole_when_heads_indivisible", ()))


def vision_tp_error(spec: VisionSpec, tp: int, *, heads_fallback: bool, mm_encoder_tp_mode: str | None) -> str | None:
    """vLLM's message when it cannot split the tower's attention heads over TP, else None.

    Towers built with ``is_vit_use_data_parallel()`` (no heads: Qwen2/2.5/3-VL, CLIP, SigLIP, Pixtral,
    MoonViT of Kimi-VL, Llama 4) split their heads with ``vllm.distributed.utils.divide`` (Llama 4: a bare
    ``assert num_heads % tp_size == 0``), which fails at model construction when TP does not divide them
    (vLLM v0.19.0 .. v0.34.0, e.g. v0.34.0 qwen2_5_vl.py:Qwen2_5_VisionAttention, siglip.py:SiglipAttention).
    No error when the tower is held whole: ``--mm-encoder-tp-mode data`` where supported, the heads fallback
    (``heads_fallback``: ``RuleSet.vit_heads_fallback`` and a family passing its heads), InternViT's whole
    attention, or a tower with no TP-split attention (Gemma 4's ReplicatedLinear tower)."""
    if tp <= 1 or not spec.num_heads or not spec.num_heads % tp:
        return None
    if mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data:
        return None
    if (heads_fallback and spec.extra.get("dp_when_heads_indivisible")) or spec.extra.get("whole_when_heads_indivisible"):
        return None
    if not any(p.shard is Shard.QKV for p in spec.params):
        return None
    return f"{spec.num_heads} is not divisible by {tp}"


def vision_weight_elements(spec: VisionSpec, *, tp: int = 1, mm_encoder_tp_mode: str = "weights",
                           include_buffers: bool = True) -> int:
    """Elements of vision params held by one TP rank.

    ``mm_encoder_tp_mode="data"`` only takes effect where ``supports_encoder_tp_data``
    (otherwise vLLM warns and falls back to ``weights``:
    vLLM v0.26.0 vllm/config/model.py:ModelConfig.__post_init__; vllm/model_executor/models/vision.py:is_vit_use_data_parallel).
    """
    data = mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data
    whole = heads_whole_prefixes(spec, tp)
    total = 0
    for p in spec.params:
        if p.part == "buffer" and not include_buffers:
            continue
        if (data and _is_data_replicated(spec, p.name)) or (whole and p.name.startswith(whole)):
            total += param_numel(p)
        else:
            total += param_numel_per_rank(p, tp)
    return total


_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "complex64": 8, "int32": 4}


def vision_weight_bytes(spec: VisionSpec, *, dtype_bytes: int = 2, tp: int = 1,
                        mm_encoder_tp_mode: str = "weights") -> int:
    """Bytes of vision params and buffers on one TP rank (unquantized)."""
    data = mm_encoder_tp_mode == "data" and spec.supports_encoder_tp_data
    whole = heads_whole_prefixes(spec, tp)
    total = 0
    for p in spec.params:
        held_whole = (data and _is_data_replicated(spec, p.name)) or (whole and p.name.startswith(whole))
        n = param_numel(p) if held_whole else param_numel_per_rank(p, tp)
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
    tower = vision_tower(family)
    assert tower is not None  # vision_family names registered towers only
    spec = tower.build(cfg, family)
    if preprocessor_config is not None:
        spec.extra["preprocessor_config"] = dict(preprocessor_config)
    return spec
