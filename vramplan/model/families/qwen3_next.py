"""Qwen3-Next (``Qwen3NextForCausalLM``): gated delta-net layers, every 4th layer gated full attention, MoE.

The rotary dim is ``partial_rotary_factor`` (default 0.25) of the head dim.
"""

from __future__ import annotations

from functools import partial

from ..description import AttentionSpec, LayerKind, LayerSpec, MambaSpec, MoESpec, Param, Shard
from . import Family, register
from ._common import _experts, _gated_mlp, _get, _layer_types, _norm, _o_proj, _qkv, _rope_buffers, _router


def gdn_params(ctx) -> tuple[list[Param], MambaSpec]:
    """A Gated DeltaNet layer's parameters and recurrent state (Qwen3-Next, Qwen3.5/3.6).

    vLLM v0.26.0 / v0.34.0 vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:QwenGatedDeltaNetAttention
    (``A_log`` is created in float32); the SSM state dtype from the config's ``mamba_ssm_dtype`` when it names one.
    """
    t, h = ctx.text, ctx.hidden
    nk, nv = int(t["linear_num_key_heads"]), int(t["linear_num_value_heads"])
    dk, dv = int(t["linear_key_head_dim"]), int(t["linear_value_head_dim"])
    kernel = int(t.get("linear_conv_kernel_dim", 4))
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    params = [
        Param(name="linear_attn.in_proj_qkvz.weight", shape=(2 * key_dim + 2 * value_dim, h), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        Param(name="linear_attn.in_proj_ba.weight", shape=(2 * nv, h), shard=Shard.COLUMN, part="attention",
              quantizable=True),
        Param(name="linear_attn.conv1d.weight", shape=(conv_dim, kernel), shard=Shard.COLUMN, part="attention"),
        Param(name="linear_attn.dt_bias", shape=(nv,), shard=Shard.COLUMN, part="attention"),
        Param(name="linear_attn.A_log", shape=(nv,), shard=Shard.COLUMN, part="attention", dtype="float32"),
        Param(name="linear_attn.norm.weight", shape=(dv,), part="norm"),
        Param(name="linear_attn.out_proj.weight", shape=(h, value_dim), shard=Shard.ROW, part="attention",
              quantizable=True),
    ]
    ssm = t.get("mamba_ssm_dtype")
    state_dtype = str(ssm).replace("torch.", "") if ssm else None
    mamba = MambaSpec(kind="gdn", conv_dim=conv_dim, conv_kernel=kernel, num_heads=nv, head_k_dim=dk, head_v_dim=dv,
                      state_dtype=state_dtype)
    return params, mamba


def build(ctx):
    """Qwen3-Next: gated delta-net (linear attention) layers with every 4th layer gated full attention."""
    t, h = ctx.text, ctx.hidden
    gdn, mamba = gdn_params(ctx)
    # Gated attention: q_proj emits query and gate (x2), per-head q/k norms.
    full = _qkv(ctx, bias=bool(t.get("attention_bias")), q_mult=2) + _o_proj(ctx, bias=False) + [
        Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
        Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm"),
    ]
    num_experts = int(_get(t, "num_experts"))
    moe_inter = int(_get(t, "moe_intermediate_size"))
    shared_inter = int(_get(t, "shared_expert_intermediate_size", default=0))
    moe_block = _router(h, num_experts) + _experts(h, moe_inter, num_experts)
    if shared_inter:
        moe_block += _gated_mlp(h, shared_inter, prefix="mlp.shared_expert")
        moe_block.append(Param(name="mlp.shared_expert_gate.weight", shape=(1, h), part="moe"))
    norms = [_norm("input_layernorm", h, "qwen3_next"), _norm("post_attention_layernorm", h, "qwen3_next")]
    specs, params = [], []
    mlp_only = set(t.get("mlp_only_layers") or [])
    step = int(t.get("decoder_sparse_step", 1))
    for i, lt in enumerate(_layer_types(ctx)):
        is_moe = i not in mlp_only and (i + 1) % step == 0
        mlp = moe_block if is_moe else _gated_mlp(h, ctx.inter)
        if lt == "linear_attention":
            specs.append(LayerSpec(index=i, kind=LayerKind.MAMBA, mamba=mamba, is_moe=is_moe))
            params.append(tuple(gdn + norms + mlp))
        else:
            specs.append(LayerSpec(index=i, kind=LayerKind.FULL,
                                   attention=AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim),
                                   is_moe=is_moe))
            params.append(tuple(full + norms + mlp))
    moe = MoESpec(num_experts=num_experts, top_k=int(t.get("num_experts_per_tok", 10)), intermediate_size=moe_inter,
                  num_shared_experts=1 if shared_inter else 0, shared_intermediate_size=shared_inter)
    return tuple(specs), tuple(params), moe


register(Family(
    name="qwen3_next",
    builder=build,
    architectures={"Qwen3NextForCausalLM": False},
    buffers=partial(_rope_buffers, rot_factor=0.25),
))
