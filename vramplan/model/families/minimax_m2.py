"""MiniMax-M2 / M2.5 / M2.7 (``MiniMaxM2ForCausalLM``): full attention with per-layer QK norms, MoE on every layer.

Read from source only (no real startup checked this session): vLLM v0.34.0
vllm/model_executor/models/minimax_m2.py.

- MiniMaxM2Attention: QKV (bias when ``attention_bias``), o_proj, q_norm over all query heads and k_norm over the
  KV heads (vllm/model_executor/layers/minimax_rms_norm/rms_norm_tp.py:MiniMaxText01RMSNormTP: the weight is split
  by TP; k_norm by the KV heads when TP exceeds them), partial rotary of ``rotary_dim``.
- MiniMaxM2MoE: GateLinear router in float32 (``params_dtype=torch.float32``), ``e_score_correction_bias`` (float32,
  with ``use_routing_bias``), FusedMoE (gated, ``intermediate_size`` per expert), no shared expert.
- MTP: ``num_mtp_modules`` layers stored after the decoder layers are mapped to None (MiniMaxM2Model.__init__):
  not loaded.
"""

from __future__ import annotations

from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param, Shard
from ._common import _experts, _get, _norm, _o_proj, _qkv
from . import Family, register


def build(ctx):
    t, h = ctx.text, ctx.hidden
    num_experts = int(_get(t, "num_local_experts", "num_experts"))
    inter = int(_get(t, "intermediate_size"))
    attn = _qkv(ctx, bias=bool(t.get("attention_bias"))) + _o_proj(ctx, bias=False)
    if t.get("use_qk_norm", True):
        attn += [Param(name="self_attn.q_norm.weight", shape=(ctx.num_heads * ctx.head_dim,), shard=Shard.COLUMN,
                       part="norm"),
                 Param(name="self_attn.k_norm.weight", shape=(ctx.num_kv * ctx.head_dim,), shard=Shard.COLUMN,
                       part="norm")]
    moe = [Param(name="mlp.gate.weight", shape=(num_experts, h), part="moe", dtype="float32")]
    if t.get("use_routing_bias"):
        moe.append(Param(name="mlp.e_score_correction_bias", shape=(num_experts,), part="moe", dtype="float32"))
    moe += _experts(h, inter, num_experts)
    norms = [_norm("input_layernorm", h, "minimax_m2"), _norm("post_attention_layernorm", h, "minimax_m2")]
    layer = tuple(attn + moe + norms)
    spec = AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim)
    specs = tuple(LayerSpec(index=i, kind=LayerKind.FULL, attention=spec, is_moe=True) for i in range(ctx.num_layers))
    return specs, (layer,) * ctx.num_layers, MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok",
                                                                                                default=8)),
                                                     intermediate_size=inter)


def _rope(ctx, layers) -> tuple:
    """One rotary cache of (max_position, rotary_dim) (``partial_rotary_factor = rotary_dim / head_dim``)."""
    rot = int(ctx.text.get("rotary_dim") or ctx.head_dim)
    return (Param(name="rotary_emb.cos_sin_cache", shape=(ctx.max_pos, rot), part="buffer"),)


register(Family(
    name="minimax_m2",
    builder=build,
    architectures={"MiniMaxM2ForCausalLM": False},
    buffers=_rope,
))
