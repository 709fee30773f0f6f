"""MiMo-V2-Flash (``MiMoV2FlashForCausalLM``): sliding-window / full attention hybrid with K 192 / V 128 heads, MoE.

Read from source only (no real startup checked this session): vLLM v0.34.0
vllm/model_executor/models/mimo_v2.py.

- ``hybrid_layer_pattern[i] == 1`` (MiMoV2FlashDecoderLayer.is_compressed_softmax_layer): sliding-window attention
  (``sliding_window_size`` tokens, ``swa_num_attention_heads`` / ``swa_num_key_value_heads``, ``swa_head_dim`` /
  ``swa_v_head_dim``, rope base ``swa_rope_theta``, per-head attention sinks when ``add_swa_attention_sink_bias``);
  0: full attention (``num_key_value_heads``, ``head_dim`` / ``v_head_dim``, sinks when
  ``add_full_attention_sink_bias``).
- MiMoV2Attention: QKVParallelLinear with ``v_head_size`` (K rows head_dim, V rows v_head_dim), o_proj over
  heads x v_head_dim; KV pages hold K and V of their own sizes (``head_size_v``) from vLLM 0.20; before, V was padded
  to the K head size (``_for_release``).
- ``moe_layer_freq[i]``: MiMoV2MoE (GateLinear router in ``moe_router_dtype``, float32 by default, float32
  ``e_score_correction_bias``, gated FusedMoE, no shared expert) or MiMoV2MLP (``intermediate_size``).
- MTP: checkpoint names containing ``mtp`` are skipped by MiMoV2Model.load_weights; no MTP layer is built.
- With a different KV head count on the two kinds, the pages differ: vLLM unifies them by raising the block size
  of the smaller page (rules/kv.py: build_layout).
"""

from __future__ import annotations

from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param, Shard
from ._common import _experts, _gated_mlp, _get, _norm
from . import Family, register


def _attention(t: dict, h: int, *, heads: int, kv: int, hd: int, vd: int, sinks: bool) -> list[Param]:
    """QKV as a query part (column) and a K+V part (QKV-sharded with (hd + vd) / 2 per KV head, so a rank holds
    ``kv_per_rank x (hd + vd)`` rows), then o_proj; the fp8 block scales of the two parts add up to the fused
    param's for these shapes (query rows are whole 128-blocks)."""
    if (hd + vd) % 2:
        from ...errors import UnsupportedError

        raise UnsupportedError(f"K head {hd} + V head {vd} is odd", hint="not a MiMo-V2 shape vramplan models")
    out = [
        Param(name="self_attn.qkv_proj.weight[q]", shape=(heads * hd, h), shard=Shard.COLUMN, part="attention",
              quantizable=True),
        Param(name="self_attn.qkv_proj.weight[kv]", shape=(0, kv, (hd + vd) // 2, h), shard=Shard.QKV,
              part="attention", quantizable=True),
        Param(name="self_attn.o_proj.weight", shape=(h, heads * vd), shard=Shard.ROW, part="attention",
              quantizable=True),
    ]
    if t.get("attention_bias"):
        out += [Param(name="self_attn.qkv_proj.bias[q]", shape=(heads * hd,), shard=Shard.COLUMN, part="attention"),
                Param(name="self_attn.qkv_proj.bias[kv]", shape=(0, kv, (hd + vd) // 2, 1), shard=Shard.QKV,
                      part="attention")]
    if sinks:  # make_attention_sink: one per local head, model dtype
        out.append(Param(name="self_attn.attention_sink_bias", shape=(heads,), shard=Shard.COLUMN, part="attention"))
    return out


def build(ctx):
    t, h = ctx.text, ctx.hidden
    n = ctx.num_layers
    pattern = list(t.get("hybrid_layer_pattern") or [0] * n)
    freq = t.get("moe_layer_freq")
    moe_flags = [bool(x) for x in freq] if isinstance(freq, list) else [False] * n
    if len(pattern) != n or len(moe_flags) != n:
        from ...errors import ConfigError

        raise ConfigError("hybrid_layer_pattern / moe_layer_freq do not have num_hidden_layers entries",
                          hint="vLLM indexes both by layer; fix the config")
    hd, vd = ctx.head_dim, int(t.get("v_head_dim") or ctx.head_dim)
    full = _attention(t, h, heads=ctx.num_heads, kv=ctx.num_kv, hd=hd, vd=vd,
                      sinks=bool(t.get("add_full_attention_sink_bias")))
    s_heads = int(t.get("swa_num_attention_heads") or ctx.num_heads)
    s_kv = int(t.get("swa_num_key_value_heads") or ctx.num_kv)
    s_hd = int(t.get("swa_head_dim") or hd)
    s_vd = int(t.get("swa_v_head_dim") or s_hd)
    swa = _attention(t, h, heads=s_heads, kv=s_kv, hd=s_hd, vd=s_vd,
                     sinks=bool(t.get("add_swa_attention_sink_bias")))
    window = int(_get(t, "sliding_window_size", "sliding_window"))
    moe = None
    moe_block: list[Param] = []
    if any(moe_flags):
        e = int(_get(t, "n_routed_experts"))
        inter = int(_get(t, "moe_intermediate_size"))
        router = str(t.get("moe_router_dtype") or "float32")
        moe_block = [Param(name="mlp.gate.weight", shape=(e, h), part="moe", dtype=router),
                     Param(name="mlp.gate.e_score_correction_bias", shape=(e,), part="moe", dtype="float32")]
        moe_block += _experts(h, inter, e)
        moe = MoESpec(num_experts=e, top_k=int(_get(t, "num_experts_per_tok", default=8)), intermediate_size=inter)
    dense = _gated_mlp(h, ctx.inter)
    norms = [_norm("input_layernorm", h, "mimo_v2"), _norm("post_attention_layernorm", h, "mimo_v2")]
    full_spec = AttentionSpec(num_kv_heads=ctx.num_kv, head_size=hd, head_size_v=vd,
                              has_sinks=bool(t.get("add_full_attention_sink_bias")))
    swa_spec = AttentionSpec(num_kv_heads=s_kv, head_size=s_hd, head_size_v=s_vd, sliding_window=window,
                             has_sinks=bool(t.get("add_swa_attention_sink_bias")))
    cache: dict[tuple[int, bool], tuple[Param, ...]] = {}
    specs, params = [], []
    for i in range(n):
        is_swa, is_moe = pattern[i] == 1, moe_flags[i]
        if is_swa:
            specs.append(LayerSpec(index=i, kind=LayerKind.SLIDING, attention=swa_spec, is_moe=is_moe))
        else:
            specs.append(LayerSpec(index=i, kind=LayerKind.FULL, attention=full_spec, is_moe=is_moe))
        key = (int(is_swa), is_moe)
        if key not in cache:
            cache[key] = tuple((swa if is_swa else full) + norms + (moe_block if is_moe else dense))
        params.append(cache[key])
    return tuple(specs), tuple(params), moe


def _ropes(ctx, layers) -> tuple:
    """get_rope caches one module per (head, rotary dim, max position, base): the full layers' ``rope_theta`` and the
    sliding layers' ``swa_rope_theta``, each (max_position, int(head x partial_rotary_factor)) in the model dtype."""
    t = ctx.text
    factor = float(t.get("partial_rotary_factor") or 1.0)
    out = []
    seen = set()
    for head, base in ((ctx.head_dim, t.get("rope_theta")), (int(t.get("swa_head_dim") or ctx.head_dim),
                                                             t.get("swa_rope_theta", t.get("rope_theta")))):
        key = (head, base)
        if key in seen:
            continue
        seen.add(key)
        out.append(Param(name=f"rotary_emb[{len(out)}].cos_sin_cache", shape=(ctx.max_pos, int(head * factor)),
                         part="buffer"))
    return tuple(out)


def _for_release(model, rules):
    """Before vLLM 0.20.0 MiMoV2Attention padded V to the K head size before attention (v0.18.0 / v0.19.0
    mimo_v2_flash.py: ``torch.nn.functional.pad(v, [0, head_dim - v_head_dim])``), so the KV cache held V at 192;
    0.20.0 gives Attention ``head_size_v`` (the DiffKV backend) and the cache holds V at 128
    (``RuleSet.mimo_v2_v_head_unpadded``)."""
    if rules.mimo_v2_v_head_unpadded:
        return model
    from dataclasses import replace

    layers = tuple(replace(layer, attention=replace(layer.attention, head_size_v=None)) if layer.attention else layer
                   for layer in model.layers)
    return replace(model, layers=layers)


register(Family(
    name="mimo_v2",
    builder=build,
    for_release=_for_release,
    architectures={"MiMoV2FlashForCausalLM": False, "MiMoV2ForCausalLM": False},
    buffers=_ropes,
))
