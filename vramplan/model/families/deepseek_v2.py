"""DeepSeek-V2 / V3 / R1 (``DeepseekV2ForCausalLM``, ``DeepseekV3ForCausalLM``): MLA attention and MoE.

vLLM v0.26.0 vllm/model_executor/models/deepseek_v2.py: DeepseekV2MLAAttention, DeepseekV2MoE (shared experts,
``noaux_tc`` score-correction bias) after ``first_k_dense_replace`` dense layers. Also Kimi-VL's language model,
and the decoder that DeepSeek-V3.2 and Kimi-K2.5 extend. The rotary cache has ``qk_rope_head_dim`` columns.
"""

from __future__ import annotations

from functools import partial

from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param, Shard
from . import Family, register
from ._common import _experts, _gated_mlp, _get, _need, _norm, _rope_buffers, _router


def build(ctx):
    """DeepSeek V2/V3 (and R1): MLA attention, MoE with shared experts after ``first_k_dense_replace``."""
    t, h = ctx.text, ctx.hidden
    heads = ctx.num_heads
    q_lora = t.get("q_lora_rank")
    kv_lora = int(_need(t, "kv_lora_rank", "DeepSeek config"))
    nope = int(_need(t, "qk_nope_head_dim", "DeepSeek config"))
    rope = int(_need(t, "qk_rope_head_dim", "DeepSeek config"))
    v_dim = int(_need(t, "v_head_dim", "DeepSeek config"))
    attn: list[Param] = []
    if q_lora:
        attn += [
            Param(name="self_attn.q_a_proj.weight", shape=(int(q_lora), h), part="attention", quantizable=True),
            Param(name="self_attn.q_a_layernorm.weight", shape=(int(q_lora),), part="norm"),
            Param(name="self_attn.q_b_proj.weight", shape=(heads * (nope + rope), int(q_lora)), shard=Shard.COLUMN,
                  part="attention", quantizable=True),
        ]
    else:
        attn.append(Param(name="self_attn.q_proj.weight", shape=(heads * (nope + rope), h), shard=Shard.COLUMN,
                          part="attention", quantizable=True))
    attn += [
        Param(name="self_attn.kv_a_proj_with_mqa.weight", shape=(kv_lora + rope, h), part="attention",
              quantizable=True),
        Param(name="self_attn.kv_a_layernorm.weight", shape=(kv_lora,), part="norm"),
        Param(name="self_attn.kv_b_proj.weight", shape=(heads * (nope + v_dim), kv_lora), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        # vLLM v0.26.0 vllm/model_executor/layers/attention/mla_attention.py:process_weights_after_loading
        # keeps model-dtype copies W_UV and W_UK_T of kv_b_proj (split by heads like it) when it is quantized;
        # unquantized, they are views of kv_b_proj's weight (Param.quantized_only).
        Param(name="self_attn.mla_attn.W_UK_T+W_UV", shape=(heads * (nope + v_dim), kv_lora), shard=Shard.COLUMN,
              part="attention", quantized_only=True),
        Param(name="self_attn.o_proj.weight", shape=(h, heads * v_dim), shard=Shard.ROW, part="attention",
              quantizable=True),
    ]
    norms = [_norm("input_layernorm", h, "deepseek"), _norm("post_attention_layernorm", h, "deepseek")]
    num_experts = int(_need(t, "n_routed_experts", "DeepSeek config"))
    moe_inter = int(_need(t, "moe_intermediate_size", "DeepSeek config"))
    n_shared = int(_get(t, "n_shared_experts", default=0))
    first_dense = int(_get(t, "first_k_dense_replace", default=0))
    freq = int(_get(t, "moe_layer_freq", default=1))
    has_bias_corr = t.get("topk_method") == "noaux_tc"
    moe_block = _router(h, num_experts) + _experts(h, moe_inter, num_experts)
    if has_bias_corr:
        moe_block.append(Param(name="mlp.gate.e_score_correction_bias", shape=(num_experts,), part="moe",
                               dtype="float32"))
    if n_shared:
        moe_block += _gated_mlp(h, moe_inter * n_shared, prefix="mlp.shared_experts")
    spec = AttentionSpec(num_kv_heads=1, head_size=kv_lora + rope)
    specs, params = [], []
    for i in range(ctx.num_layers):
        is_moe = i >= first_dense and i % freq == 0
        specs.append(LayerSpec(index=i, kind=LayerKind.MLA, attention=spec, is_moe=is_moe))
        params.append(tuple(attn + norms + (moe_block if is_moe else _gated_mlp(h, ctx.inter))))
    moe = MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok", default=6)),
                  intermediate_size=moe_inter, num_shared_experts=n_shared,
                  shared_intermediate_size=moe_inter * n_shared)
    return tuple(specs), tuple(params), moe


register(Family(
    name="deepseek_v2",
    builder=build,
    architectures={"DeepseekV2ForCausalLM": False, "DeepseekV3ForCausalLM": False},
    text_model_types=("deepseek_v2", "deepseek_v3"),
    wrappers=("KimiVLForConditionalGeneration",),
    buffers=partial(_rope_buffers, mla=True),
))
