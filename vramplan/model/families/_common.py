"""Pieces every family's decoder description is built from (shared by the modules of this package).

The tensors are vLLM's layer classes as read in vLLM v0.26.0 ``vllm/model_executor/layers/linear.py``
(``QKVParallelLinear``, ``MergedColumnParallelLinear``, ``RowParallelLinear``) and
``vllm/model_executor/layers/fused_moe/layer.py`` (``FusedMoE``); sizes are element counts, dtypes
are applied by the rules. ``ctx`` is ``model/from_config.py``'s ``_Ctx`` (the text config's values).
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ..description import AttentionSpec, LayerKind, LayerSpec, MoESpec, Param, Shard

def _get(cfg: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


def _need(cfg: dict, key: str, where: str) -> Any:
    value = cfg.get(key)
    if value is None:
        raise ConfigError(f"{where} has no {key!r}", hint="the config is incomplete; compare it with the model's Hub config.json")
    return value


def _norm(name: str, size: int, family: str, *, layernorm: bool = False) -> Param:
    return Param(name=f"{name}.weight", shape=(size,), part="norm") if not layernorm else Param(
        name=f"{name}.weight+bias", shape=(2 * size,), part="norm"
    )


def _qkv(ctx: Any, *, bias: bool, q_heads: int | None = None, q_mult: int = 1) -> list[Param]:
    """``QKVParallelLinear`` (+bias): shape (q_heads, kv_heads, head_dim, in_features)."""
    q = (q_heads or ctx.num_heads) * q_mult
    out = [Param(name="self_attn.qkv_proj.weight", shape=(q, ctx.num_kv, ctx.head_dim, ctx.hidden),
                 shard=Shard.QKV, part="attention", quantizable=True)]
    if bias:
        out.append(Param(name="self_attn.qkv_proj.bias", shape=(q, ctx.num_kv, ctx.head_dim, 1),
                         shard=Shard.QKV, part="attention"))
    return out


def _o_proj(ctx: Any, *, bias: bool) -> list[Param]:
    out = [Param(name="self_attn.o_proj.weight", shape=(ctx.hidden, ctx.num_heads * ctx.head_dim),
                 shard=Shard.ROW, part="attention", quantizable=True)]
    if bias:  # RowParallelLinear keeps its bias whole on every rank
        out.append(Param(name="self_attn.o_proj.bias", shape=(ctx.hidden,), part="attention"))
    return out


def _gated_mlp(hidden: int, inter: int, *, prefix: str = "mlp", bias: bool = False) -> list[Param]:
    """``MergedColumnParallelLinear`` gate_up + ``RowParallelLinear`` down."""
    out = [
        Param(name=f"{prefix}.gate_up_proj.weight", shape=(2 * inter, hidden), shard=Shard.COLUMN,
              part="mlp", quantizable=True),
        Param(name=f"{prefix}.down_proj.weight", shape=(hidden, inter), shard=Shard.ROW, part="mlp",
              quantizable=True),
    ]
    if bias:
        out += [
            Param(name=f"{prefix}.gate_up_proj.bias", shape=(2 * inter,), shard=Shard.COLUMN, part="mlp"),
            Param(name=f"{prefix}.down_proj.bias", shape=(hidden,), part="mlp"),
        ]
    return out


def _experts(hidden: int, moe_inter: int, num_experts: int, *, bias: bool = False) -> list[Param]:
    """``FusedMoE``: w13 (E, 2I, H) and w2 (E, H, I)."""
    out = [
        Param(name="mlp.experts.w13_weight", shape=(num_experts, 2 * moe_inter, hidden), shard=Shard.EXPERT_COLUMN,
              part="moe", quantizable=True),
        Param(name="mlp.experts.w2_weight", shape=(num_experts, hidden, moe_inter), shard=Shard.EXPERT_ROW,
              part="moe", quantizable=True),
    ]
    if bias:
        out += [
            Param(name="mlp.experts.w13_bias", shape=(num_experts, 2 * moe_inter, 1), shard=Shard.EXPERT_COLUMN,
                  part="moe"),
            Param(name="mlp.experts.w2_bias", shape=(num_experts, hidden, 1), shard=Shard.EXPERT_ROW, part="moe"),
        ]
    return out


def _router(hidden: int, num_experts: int, *, bias: bool = False, name: str = "mlp.gate") -> list[Param]:
    out = [Param(name=f"{name}.weight", shape=(num_experts, hidden), part="moe")]
    if bias:
        out.append(Param(name=f"{name}.bias", shape=(num_experts,), part="moe"))
    return out


def _layer_types(ctx: Any) -> list[str]:
    types = ctx.text.get("layer_types")
    if isinstance(types, list) and len(types) == ctx.num_layers:
        return [str(t) for t in types]
    return ["full_attention"] * ctx.num_layers


def _attention_kind(ctx: Any, layer_type: str, *, sinks: bool = False, mistral_sliding: bool = False) -> tuple[LayerKind, AttentionSpec]:
    window = ctx.text.get("sliding_window")
    if layer_type == "sliding_attention" and isinstance(window, int):
        return LayerKind.SLIDING, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                 sliding_window=window, has_sinks=sinks)
    if layer_type == "chunked_attention":
        chunk = int(ctx.text.get("attention_chunk_size") or 8192)
        return LayerKind.CHUNKED_LOCAL, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                       chunk_size=chunk)
    # Mistral-style configs put sliding_window on every layer (no layer_types).
    if mistral_sliding and isinstance(window, int) and ctx.text.get("model_type") == "mistral":
        return LayerKind.SLIDING, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                 sliding_window=window)
    return LayerKind.FULL, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim, has_sinks=sinks)


def _rope_buffers(ctx: Any, layers: tuple[LayerSpec, ...], *, mla: bool = False, rot_factor: float | None = None,
                  first_only: bool = False, dtype: str | None = None) -> tuple[Param, ...]:
    """The rotary cos/sin caches vLLM registers as buffers (one per distinct rope; model dtype).

    vLLM v0.26.0 vllm/model_executor/layers/rotary_embedding/__init__.py:get_rope caches one
    module per distinct (head_size, rotary_dim, max_position, params); each holds
    ``cos_sin_cache`` of shape (positions, rotary_dim). Positions: ``max_position`` for the
    default and llama3 kinds; x4 for M-RoPE (``MRotaryEmbedding.cache_max_position_num``);
    ``max_position x factor`` for linear scaling; ``original_max_position x factor`` for YaRN
    and DeepSeek-YaRN.

    A family passes what differs: ``mla`` (the rotary dim is ``qk_rope_head_dim``), ``rot_factor`` (its default
    ``partial_rotary_factor``), ``first_only`` (one rope although the config lists several) and ``dtype`` (a cache
    kept in another dtype than the model's).
    """
    t = ctx.text
    params = t.get("rope_parameters") or t.get("rope_scaling") or {}
    if mla or (t.get("kv_lora_rank") and t.get("qk_rope_head_dim")):  # MLA families
        rot_dim = int(t.get("qk_rope_head_dim", 64))
    else:
        factor = float(t.get("partial_rotary_factor") or (params.get("partial_rotary_factor") if isinstance(params, dict) else None) or 1.0)
        rot_dim = int(ctx.head_dim * factor)
    if rot_factor is not None:  # a family whose rotary fraction has its own default (Qwen3-Next: 0.25)
        rot_dim = int(ctx.head_dim * float(t.get("partial_rotary_factor", rot_factor)))
    ropes: list[dict] = []
    if isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values()):
        ropes = list(params.values())  # transformers v5 per-layer-type ropes (Gemma 3)
    else:
        ropes = [params if isinstance(params, dict) else {}]
    if first_only:
        ropes = ropes[:1]
    out = []
    for i, rope in enumerate(ropes):
        positions = _rope_positions(ctx.max_pos, rope)
        if positions:
            out.append(Param(name=f"rotary_emb[{i}].cos_sin_cache", shape=(positions, rot_dim), part="buffer",
                             dtype=dtype))
    return tuple(out)


def _rope_positions(max_pos: int, rope: dict) -> int:
    kind = str(rope.get("rope_type") or rope.get("type") or "default")
    factor = float(rope.get("factor") or 1.0)
    if "mrope_section" in rope or kind == "mrope":
        # MRotaryEmbedding enlarges its cache to 4x max_position (Qwen2/2.5/3-VL alike; only
        # openpangu's MRotaryEmbeddingInterleaved keeps 1x). From vLLM 0.32 Qwen3-VL passes a factor of 1:
        # the qwen3 / qwen3_moe families' for_release view (_mrope.py).
        return max_pos * 4
    if kind == "linear":
        return int(max_pos * factor)
    if kind in ("yarn", "deepseek_yarn"):
        return int(int(rope.get("original_max_position_embeddings") or max_pos) * factor)
    return max_pos


def dense_layers(ctx: Any, *, qkv_bias: bool | None = None, o_bias_from_config: bool = False, qk_norm: bool = False,
                 sandwich_norms: bool = False, mistral_sliding: bool = False):
    """A generic gated-MLP decoder layer (Llama, Mistral, Qwen2/3, Phi-3, Granite, Gemma 2/3).

    ``qkv_bias``: forced on (Qwen2) or, when None, the config's ``attention_bias``; ``o_bias_from_config``: o_proj
    takes ``attention_bias`` too (Llama); ``qk_norm``: per-head q/k RMSNorm (Qwen3, Gemma 3); ``sandwich_norms``:
    pre/post feed-forward norms (Gemma 2/3); ``mistral_sliding``: a Mistral config's ``sliding_window`` applies to
    every layer.
    """
    t, h = ctx.text, ctx.hidden
    fam = ctx.family
    qkv_bias = bool(t.get("attention_bias", False)) or bool(qkv_bias)
    o_bias = bool(t.get("attention_bias", False)) and o_bias_from_config
    mlp_bias = bool(t.get("mlp_bias", False))
    params: list[Param] = []
    params += _qkv(ctx, bias=qkv_bias)
    params += _o_proj(ctx, bias=o_bias)
    if qk_norm:  # per-head q/k RMSNorm
        params += [Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
                   Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm")]
    params += _gated_mlp(h, ctx.inter, bias=mlp_bias)
    norms = ["input_layernorm", "post_attention_layernorm"]
    if sandwich_norms:
        norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
    params += [_norm(n, h, fam) for n in norms]
    layer_params = tuple(params)
    specs = []
    for i, lt in enumerate(_layer_types(ctx)):
        kind, attn = _attention_kind(ctx, lt, mistral_sliding=mistral_sliding)
        specs.append(LayerSpec(index=i, kind=kind, attention=attn))
    return tuple(specs), (layer_params,) * ctx.num_layers, None


def moe_layers(ctx: Any, *, bias: bool = False, qkv_bias: bool = False, qk_norm: bool = False, sinks: bool = False):
    """A sparse-MoE decoder layer with an optional gated shared expert (Mixtral, Qwen2-MoE, Qwen3-MoE, gpt-oss).

    ``bias``: router, experts and o_proj carry biases (gpt-oss); ``qkv_bias``: the QKV bias is on whatever the config
    says (Qwen2-MoE); ``qk_norm``: per-head q/k RMSNorm (Qwen3-MoE); ``sinks``: per-head attention sinks (gpt-oss).
    """
    fam, t, h = ctx.family, ctx.text, ctx.hidden
    num_experts = int(_get(t, "num_local_experts", "num_experts", "n_routed_experts"))
    top_k = int(_get(t, "num_experts_per_tok", "experts_per_token", default=2))
    moe_inter = int(_get(t, "moe_intermediate_size", default=ctx.inter))
    shared_inter = int(_get(t, "shared_expert_intermediate_size", default=0))
    attn: list[Param] = _qkv(ctx, bias=bias or qkv_bias or bool(t.get("attention_bias")))
    attn += _o_proj(ctx, bias=bias)
    if qk_norm:
        attn += [Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
                 Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm")]
    if sinks:  # per-head attention sinks, split with the heads (fp32 in vLLM v0.26 gpt_oss.py)
        attn.append(Param(name="self_attn.sinks", shape=(ctx.num_heads,), shard=Shard.COLUMN, part="attention",
                          dtype="float32"))
    norms = [_norm("input_layernorm", h, fam), _norm("post_attention_layernorm", h, fam)]
    moe_block = _router(h, num_experts, bias=bias) + _experts(h, moe_inter, num_experts, bias=bias)
    if shared_inter:
        moe_block += _gated_mlp(h, shared_inter, prefix="mlp.shared_expert")
        moe_block.append(Param(name="mlp.shared_expert_gate.weight", shape=(1, h), part="moe"))
    sparse_step = int(_get(t, "decoder_sparse_step", default=1))
    mlp_only = set(t.get("mlp_only_layers") or [])
    specs, params = [], []
    for i, lt in enumerate(_layer_types(ctx)):
        is_moe = i not in mlp_only and (i + 1) % sparse_step == 0
        kind, spec = _attention_kind(ctx, lt, sinks=sinks)
        specs.append(LayerSpec(index=i, kind=kind, attention=spec, is_moe=is_moe))
        mlp = moe_block if is_moe else _gated_mlp(h, ctx.inter)
        params.append(tuple(attn + norms + mlp))
    moe = MoESpec(num_experts=num_experts, top_k=top_k, intermediate_size=moe_inter,
                  num_shared_experts=1 if shared_inter else 0, shared_intermediate_size=shared_inter, has_bias=bias)
    return tuple(specs), tuple(params), moe
