"""Qwen3.5 / Qwen3.6 (``Qwen3_5ForConditionalGeneration``, ``Qwen3_5MoeForConditionalGeneration``).

Read from source only (no real startup checked this session). The language model is Qwen3-Next's
hybrid: gated delta-net (GDN) layers with every ``full_attention_interval``-th layer gated full
attention, dense (``qwen3_5_text``) or sparse-MoE with a gated shared expert (``qwen3_5_moe_text``).

- Layers: vLLM v0.34.0 vllm/models/qwen3_5/nvidia/model.py:Qwen3_5DecoderLayer (CUDA; other platforms
  vllm/model_executor/models/qwen3_5.py, same tensors) builds ``QwenGatedDeltaNetAttention`` with
  ``gqa_interleaved_layout=False`` or ``Qwen3NextAttention``, then ``Qwen3NextSparseMoeBlock`` (MoE) or
  ``Qwen3NextMLP`` (dense).
- GDN tensors: vLLM v0.34.0 vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:
  QwenGatedDeltaNetAttention.__init__: in_proj_qkvz (MergedColumn [k, k, v, v]), in_proj_ba (MergedColumn
  [nv, nv]), conv1d (Column, conv_dim x kernel), dt_bias (nv/tp, model dtype), A_log (nv/tp, float32),
  norm (head_v_dim), out_proj (Row).
- MTP: ``Qwen3_5ForConditionalGeneration.hf_to_vllm_mapper`` maps ``mtp.`` to None: the next-token layer
  (``mtp_num_hidden_layers``) is not loaded without speculative decoding.
- Vision: ``Qwen3_VisionTransformer`` (the Qwen3-VL tower; ``deepstack_visual_indexes`` is empty), priced by
  the qwen3_vl tower of model/families/qwen_vl.py.
- State dtype: vLLM v0.34.0 vllm/model_executor/models/config.py:Qwen3_5ForConditionalGenerationConfig sets
  ``mamba_ssm_cache_dtype`` from the config's ``mamba_ssm_dtype`` (float32 in every released Qwen3.5) when left
  at auto (the same rule from v0.19.0). The conv state keeps the model dtype
  (MambaStateDtypeCalculator.gated_delta_net_state_dtype).
"""

from __future__ import annotations

from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param
from ._common import _experts, _gated_mlp, _get, _layer_types, _norm, _o_proj, _qkv, _router
from . import Family, register
from .qwen3_next import gdn_params as _gdn_params


def _qwen3_5_layer_types(ctx) -> list[str]:
    """``layer_types``, else every ``full_attention_interval``-th layer full (transformers Qwen3_5TextConfig)."""
    if isinstance(ctx.text.get("layer_types"), list):
        return _layer_types(ctx)
    every = int(ctx.text.get("full_attention_interval", 4))
    return ["full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(ctx.num_layers)]


def build(ctx):
    """Qwen3.5 decoder layers (dense or MoE, chosen by the text ``model_type``)."""
    t, h = ctx.text, ctx.hidden
    gdn, mamba = _gdn_params(ctx)
    # Qwen3NextAttention: qkv_proj emits query and output gate (x2 query heads when attn_output_gate), q/k norms.
    gate = 2 if t.get("attn_output_gate", True) else 1
    full = _qkv(ctx, bias=bool(t.get("attention_bias")), q_mult=gate) + _o_proj(ctx, bias=False) + [
        Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
        Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm"),
    ]
    norms = [_norm("input_layernorm", h, "qwen3_5"), _norm("post_attention_layernorm", h, "qwen3_5")]
    if t.get("layer_scale"):
        norms += [Param(name="attn_layer_scale", shape=(h,), part="norm"),
                  Param(name="ffn_layer_scale", shape=(h,), part="norm")]
    is_moe = str(t.get("model_type", "")) == "qwen3_5_moe_text" or t.get("num_experts") is not None
    moe = None
    if is_moe:
        num_experts = int(_get(t, "num_experts"))
        moe_inter = int(_get(t, "moe_intermediate_size"))
        shared_inter = int(_get(t, "shared_expert_intermediate_size", default=0))
        # Qwen3NextSparseMoeBlock: gate (E x H), FusedMoE, shared_expert (Qwen3NextMLP) + shared_expert_gate (1 x H)
        mlp = _router(h, num_experts) + _experts(h, moe_inter, num_experts)
        if shared_inter:
            mlp += _gated_mlp(h, shared_inter, prefix="mlp.shared_expert")
            mlp.append(Param(name="mlp.shared_expert_gate.weight", shape=(1, h), part="moe"))
        moe = MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok", default=8)),
                      intermediate_size=moe_inter, num_shared_experts=1 if shared_inter else 0,
                      shared_intermediate_size=shared_inter)
    else:
        mlp = _gated_mlp(h, ctx.inter)
    specs, params = [], []
    attn_spec = AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim)
    for i, lt in enumerate(_qwen3_5_layer_types(ctx)):
        if lt == "linear_attention":
            specs.append(LayerSpec(index=i, kind=LayerKind.MAMBA, mamba=mamba, is_moe=is_moe))
            params.append(tuple(gdn + norms + mlp))
        else:
            specs.append(LayerSpec(index=i, kind=LayerKind.FULL, attention=attn_spec, is_moe=is_moe))
            params.append(tuple(full + norms + mlp))
    return tuple(specs), tuple(params), moe


def _rope(ctx, layers) -> tuple:
    """One M-RoPE cache of (max_position x factor, head_dim x partial_rotary_factor) in the model dtype.

    vLLM v0.33.0 / v0.34.0 vllm/model_executor/models/qwen3_5.py (and the CUDA model in vllm/models/qwen3_5) build
    Qwen3NextAttention with ``mrope_positions_factor(vllm_config)`` (qwen3_vl.py): 1, or 4 with multimodal
    pruning; MRotaryEmbedding.cache_max_position_num = max_position x factor. Releases before 0.32 hard-coded x4:
    ``_for_release``.
    """
    t = ctx.text
    params = t.get("rope_parameters") or t.get("rope_scaling") or {}
    factor = float(t.get("partial_rotary_factor") or (params.get("partial_rotary_factor") if isinstance(params, dict)
                                                      else None) or 0.25)
    return (Param(name="rotary_emb.cos_sin_cache", shape=(ctx.max_pos, int(ctx.head_dim * factor)), part="buffer"),)


def _for_release(model, rules):
    """Before vLLM 0.32.0 MRotaryEmbedding hard-coded ``cache_max_position_num = max_position x 4`` (v0.19.0,
    v0.26.0, v0.31.0 vllm/model_executor/layers/rotary_embedding/mrope.py); 0.32.0 made it
    ``max_position x mrope_positions_factor`` (1 here; ``RuleSet.mrope_positions_factor``)."""
    if rules.mrope_positions_factor:
        return model
    from dataclasses import replace

    bufs = tuple(replace(p, shape=(p.shape[0] * 4,) + p.shape[1:], name=p.name + "[x4]")
                 if p.name == "rotary_emb.cos_sin_cache" else p for p in model.buffer_params)  # idempotent: renamed
    return replace(model, buffer_params=bufs)



register(Family(
    name="qwen3_5",
    builder=build,
    buffers=_rope,
    for_release=_for_release,
    architectures={
        "Qwen3_5ForConditionalGeneration": True,
        "Qwen3_5MoeForConditionalGeneration": True,
        "Qwen3_5ForCausalLM": False,
        "Qwen3_5MoeForCausalLM": False,
    },
    text_model_types=("qwen3_5_text", "qwen3_5_moe_text"),
))
