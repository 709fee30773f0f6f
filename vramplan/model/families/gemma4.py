"""Gemma 4 (``Gemma4ForConditionalGeneration``, ``Gemma4ForCausalLM``): sliding / full attention with different head
sizes and KV head counts, optional MoE block beside the dense MLP, SigLIP-style vision tower.

Read from source only (no real startup checked this session): vLLM v0.34.0 vllm/model_executor/models/gemma4.py
and gemma4_mm.py.

- Gemma4DecoderLayer: the layer's head size and KV heads come from ``per_layer_config`` (transformers
  Gemma4TextConfig: full-attention layers take ``global_head_dim`` and, with ``attention_k_eq_v``,
  ``num_global_key_value_heads``); sliding layers keep ``head_dim`` / ``num_key_value_heads`` and
  ``sliding_window``. Gemma4Attention: QKVParallelLinear (k_eq_v layers still allocate the V slot and the KV cache
  keeps K and V), o_proj, q_norm and k_norm (v_norm has no weight); KV-shared layers (``num_kv_shared_layers``)
  have only q_proj and no KV cache of their own.
- Gemma4MLP (gate_up + down; doubled for KV-shared layers with ``use_double_wide_mlp``), four layer norms, a
  ``layer_scalar`` buffer; with ``num_experts``: Gemma4Router (scale, per_expert_scale, GateLinear proj in the
  model dtype on Hopper/Blackwell), gated FusedMoE of ``moe_intermediate_size`` and three more norms.
- Rotary: one cache per layer type (gemma4_rope.py:Gemma4RotaryEmbedding keeps the whole head for the
  proportional full-attention rope), (max_position, head) each.
- Vision: gemma4_mm.py builds the tower with transformers' AutoModel (Gemma4VisionModel, transformers 5.25
  modeling_gemma4.py) and replaces its nn.Linear by ReplicatedLinear (recursive_replace_linear): patch input_proj,
  2 x position_embedding_size x hidden position table, per layer q/k/v/o, q/k norms, gated MLP, four norms;
  std_bias / std_scale buffers; plus Gemma4MultimodalEmbedder's projection to the text width. The tower's weights
  are counted, replicated on every rank; its profile run and token counts are not modelled (the model is planned
  as text-only).
"""

from __future__ import annotations

from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param, Shard
from ._common import _experts, _gated_mlp, _get, _norm, _o_proj
from . import Family, register


def _per_layer(t: dict, raw_text: dict | None = None) -> dict[int, dict]:
    plc = t.get("per_layer_config")
    out: dict[int, dict] = {}
    if isinstance(plc, dict):
        for key, val in plc.items():
            if isinstance(val, dict):
                out[int(key)] = val
        return out
    # config.json as written (transformers not run): the Gemma4TextConfig rule
    over: dict = {"head_dim": int(t.get("global_head_dim") or 512)}
    if t.get("attention_k_eq_v", True) and t.get("num_global_key_value_heads") is not None:
        over["num_key_value_heads"] = int(t["num_global_key_value_heads"])
    for i, lt in enumerate(t.get("layer_types") or []):
        if lt == "full_attention":
            out[i] = over
    return out


def _layer_types(ctx) -> list[str]:
    types = ctx.text.get("layer_types")
    if isinstance(types, list) and len(types) == ctx.num_layers:
        return [str(x) for x in types]
    from ...errors import ConfigError

    raise ConfigError("Gemma 4 config has no layer_types for every layer", hint="compare it with the Hub config.json")


def build(ctx):
    t, h = ctx.text, ctx.hidden
    n = ctx.num_layers
    types = _layer_types(ctx)
    per = _per_layer(t)
    shared = int(t.get("num_kv_shared_layers") or 0)
    first_shared = n - shared
    bias = bool(t.get("attention_bias"))
    moe = None
    moe_block: list[Param] = []
    if t.get("num_experts") is not None:
        e = int(t["num_experts"])
        inter = int(_get(t, "moe_intermediate_size", "expert_intermediate_size"))
        moe_block = [
            Param(name="router.scale", shape=(h,), part="moe"),
            Param(name="router.per_expert_scale", shape=(e,), part="moe"),
            Param(name="router.proj.weight", shape=(e, h), part="moe"),
        ] + [Param(name=p.name.replace("mlp.", ""), shape=p.shape, shard=p.shard, part=p.part,
                   quantizable=p.quantizable) for p in _experts(h, inter, e)]
        moe_block += [_norm(f"{x}", h, "gemma4") for x in ("post_feedforward_layernorm_1",
                                                             "post_feedforward_layernorm_2",
                                                             "pre_feedforward_layernorm_2")]
        # the dense Gemma4MLP runs beside the experts in every layer, like a shared expert (activation estimate)
        moe = MoESpec(num_experts=e, top_k=int(_get(t, "top_k_experts", "num_experts_per_tok", default=8)),
                      intermediate_size=inter, num_shared_experts=1, shared_intermediate_size=ctx.inter)
    norms = [_norm(x, h, "gemma4") for x in ("input_layernorm", "post_attention_layernorm",
                                              "pre_feedforward_layernorm", "post_feedforward_layernorm")]
    scalar = [Param(name="layer_scalar", shape=(1,), part="buffer")]
    cache: dict[tuple, tuple[Param, ...]] = {}
    specs, params = [], []
    for i, lt in enumerate(types):
        over = per.get(i, {})
        hd = int(over.get("head_dim", ctx.head_dim))
        kv = int(over.get("num_key_value_heads", ctx.num_kv))
        sliding = lt == "sliding_attention"
        is_shared = shared > 0 and i >= first_shared
        wide = bool(t.get("use_double_wide_mlp")) and is_shared
        key = (hd, kv, is_shared, wide)
        if key not in cache:
            if is_shared:
                attn = [Param(name="self_attn.q_proj.weight", shape=(ctx.num_heads * hd, h), shard=Shard.COLUMN,
                              part="attention", quantizable=True)]
            else:
                attn = [Param(name="self_attn.qkv_proj.weight", shape=(ctx.num_heads, kv, hd, h), shard=Shard.QKV,
                              part="attention", quantizable=True),
                        Param(name="self_attn.k_norm.weight", shape=(hd,), part="norm")]
                if bias:
                    attn.append(Param(name="self_attn.qkv_proj.bias", shape=(ctx.num_heads, kv, hd, 1),
                                      shard=Shard.QKV, part="attention"))
            attn += [Param(name="self_attn.o_proj.weight", shape=(h, ctx.num_heads * hd), shard=Shard.ROW,
                           part="attention", quantizable=True),
                     Param(name="self_attn.q_norm.weight", shape=(hd,), part="norm")]
            if bias:
                attn.append(Param(name="self_attn.o_proj.bias", shape=(h,), part="attention"))
            mlp = _gated_mlp(h, ctx.inter * (2 if wide else 1))
            cache[key] = tuple(attn + mlp + moe_block + norms + scalar)
        params.append(cache[key])
        if is_shared:
            specs.append(LayerSpec(index=i, kind=LayerKind.NONE, is_moe=moe is not None))
        elif sliding:
            specs.append(LayerSpec(index=i, kind=LayerKind.SLIDING, is_moe=moe is not None,
                                   attention=AttentionSpec(num_kv_heads=kv, head_size=hd,
                                                           sliding_window=int(t["sliding_window"]))))
        else:
            specs.append(LayerSpec(index=i, kind=LayerKind.FULL, is_moe=moe is not None,
                                   attention=AttentionSpec(num_kv_heads=kv, head_size=hd)))
    return tuple(specs), tuple(params), moe


def _ropes(ctx, layers) -> tuple:
    """One rotary cache per layer type present: (max_position, head size of that type) in the model dtype
    (the proportional rope keeps the whole head; the default sliding rope rotates its whole head too)."""
    out, seen = [], set()
    for layer in layers:
        if layer.attention is None:
            continue
        kind = (layer.kind, layer.attention.head_size)
        if kind in seen:
            continue
        seen.add(kind)
        out.append(Param(name=f"rotary_emb[{len(out)}].cos_sin_cache",
                         shape=(ctx.max_pos, layer.attention.head_size), part="buffer"))
    return tuple(out)


def _vision(ctx, cfg: dict) -> tuple:
    vc = cfg.get("vision_config")
    if not isinstance(vc, dict):
        return ()
    vh, vi = int(vc["hidden_size"]), int(vc["intermediate_size"])
    heads, kvh = int(vc["num_attention_heads"]), int(vc.get("num_key_value_heads") or vc["num_attention_heads"])
    hd = int(vc.get("head_dim") or vh // heads)
    patch = int(vc.get("patch_size", 16))
    layers = int(vc["num_hidden_layers"])
    pos = int(vc.get("position_embedding_size", 10240))
    per_layer = (heads * hd * vh + 2 * kvh * hd * vh + vh * heads * hd  # q, k, v, o
                 + 2 * hd  # q_norm, k_norm
                 + 3 * vi * vh  # gate, up, down
                 + 4 * vh)  # four norms
    out = [
        Param(name="vision_tower.patch_embedder.input_proj.weight", shape=(vh, 3 * patch * patch), part="vision"),
        Param(name="vision_tower.patch_embedder.position_embedding_table", shape=(2, pos, vh), part="vision"),
        Param(name="vision_tower.encoder.layers.*", shape=(layers, per_layer), part="vision"),
        Param(name="embed_vision.embedding_projection.weight", shape=(ctx.hidden, vh), part="vision"),
    ]
    if vc.get("standardize"):
        out.append(Param(name="vision_tower.std_bias+std_scale", shape=(2, vh), part="vision"))
    return tuple(out)


register(Family(
    name="gemma4",
    builder=build,
    # The vision tower's weights are counted (extra_params); the model is planned text-only (no encoder profile).
    architectures={"Gemma4ForConditionalGeneration": False, "Gemma4ForCausalLM": False},
    buffers=_ropes,
    extra_params=_vision,
))
