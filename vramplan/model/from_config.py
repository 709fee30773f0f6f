"""Turn a model's config files into a :class:`ModelDescription` (pure; no I/O).

Each family lists the tensors vLLM allocates for it, with the TP sharding vLLM gives
them, as read in vLLM v0.26.0 ``vllm/model_executor/models/<family>.py`` (the layer
classes are unchanged in v0.19.0 and v0.33.0 for the families below unless a comment
says otherwise). Sizes are element counts; dtypes are applied by the rules.

Adding an architecture: map it in ``_ARCHITECTURES`` to a text family, and (if its
layers differ from the generic decoder) give the family a branch in ``_layer_params``.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError, UnsupportedError, VramplanError
from ..memo import by_identity
from .description import (
    REMOVED_FROM_VLLM,
    AttentionSpec,
    LayerKind,
    LayerSpec,
    MambaSpec,
    ModelDescription,
    MoESpec,
    Param,
    Shard,
    removed_from_vllm_message,
)

__all__ = ["describe_config", "supported_architectures", "text_config_of"]

# architecture -> (text family, is multimodal)
_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("llama", False),
    "MistralForCausalLM": ("llama", False),
    "Qwen2ForCausalLM": ("qwen2", False),
    "Qwen3ForCausalLM": ("qwen3", False),
    "Qwen2MoeForCausalLM": ("qwen2_moe", False),
    "Qwen3MoeForCausalLM": ("qwen3_moe", False),
    "Qwen3NextForCausalLM": ("qwen3_next", False),
    "Phi3ForCausalLM": ("llama", False),
    "PhiForCausalLM": ("phi", False),
    "GraniteForCausalLM": ("llama", False),
    "Gemma2ForCausalLM": ("gemma2", False),
    "Gemma3ForCausalLM": ("gemma3", False),
    "MixtralForCausalLM": ("mixtral", False),
    "GptOssForCausalLM": ("gpt_oss", False),
    "DeepseekV2ForCausalLM": ("deepseek_v2", False),
    "DeepseekV3ForCausalLM": ("deepseek_v2", False),
    "Qwen2VLForConditionalGeneration": ("qwen2", True),
    "Qwen2_5_VLForConditionalGeneration": ("qwen2", True),
    "Qwen3VLForConditionalGeneration": ("qwen3", True),
    "Qwen3VLMoeForConditionalGeneration": ("qwen3_moe", True),
    "Gemma3ForConditionalGeneration": ("gemma3", True),
    "Llama4ForConditionalGeneration": ("llama4", True),
}

# Vision-language wrappers whose language model is whatever their text sub-config names (vLLM builds it with
# init_vllm_registered_model from text_config / llm_config): the text family comes from that config.
_WRAPPERS: dict[str, str] = {
    "LlavaForConditionalGeneration": "llama",
    "LlavaNextForConditionalGeneration": "llama",
    "Mistral3ForConditionalGeneration": "llama",
    "InternVLChatModel": "qwen2",
    "KimiVLForConditionalGeneration": "deepseek_v2",
}
_TEXT_FAMILY_BY_TYPE = {
    "llama": "llama", "mistral": "llama", "granite": "llama", "internlm2": "llama", "phi3": "llama",
    "qwen2": "qwen2", "qwen3": "qwen3", "qwen2_moe": "qwen2_moe", "qwen3_moe": "qwen3_moe",
    "deepseek_v2": "deepseek_v2", "deepseek_v3": "deepseek_v2", "gemma2": "gemma2",
}

# Families whose q/k projections carry a bias by default.
_QKV_BIAS = {"qwen2": True, "qwen2_moe": True}


def supported_architectures() -> tuple[str, ...]:
    from .families import registered_architectures

    return tuple(sorted(set(_ARCHITECTURES) | set(_WRAPPERS) | set(registered_architectures())))


def _wrapped_family(arch: str, text: dict) -> str:
    """The text family of a vision-language wrapper, from its language model's config."""
    for text_arch in text.get("architectures") or ():
        if text_arch in _ARCHITECTURES:
            return _ARCHITECTURES[text_arch][0]
    mt = text.get("model_type")
    if mt in _TEXT_FAMILY_BY_TYPE:
        return _TEXT_FAMILY_BY_TYPE[mt]
    from .families import family_for_text_type

    registered = family_for_text_type(str(mt)) if mt else None
    if registered is not None:
        return registered
    if mt:
        raise UnsupportedError(f"{arch} with a {mt!r} language model is not modelled by vramplan yet",
                               hint="supported language models: " + ", ".join(sorted(_TEXT_FAMILY_BY_TYPE)))
    return _WRAPPERS[arch]


@by_identity(maxsize=256)
def text_config_of(config: dict) -> dict:
    """The language model's config (``get_text_config()``), with the top level's shared keys.

    The same merged dict is returned for the same config object (configs are never mutated), so per-config
    memos downstream (the max-model-len defaults) hit; callers must not mutate it.
    """
    text = config.get("text_config") or config.get("llm_config") or config.get("language_config")
    if not isinstance(text, dict):
        return config
    merged = dict(text)
    for key in ("tie_word_embeddings", "dtype", "torch_dtype", "quantization_config"):
        if key not in merged and key in config:
            merged[key] = config[key]
    return merged


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


def _tie_word_embeddings(raw: dict, text: dict, resolved: dict) -> bool:
    """Whether the LM head shares the embedding: what config.json says, before library defaults.

    The text sub-config's default differs between transformers releases (Qwen3VLMoeTextConfig defaults to True
    in 5.x, False in 4.57), while config.json states it at the top level; vLLM 0.26 allocated a separate LM head
    for Qwen3-VL-30B-A3B (data/truth x2/vl30b_*: +0.58 GiB), as the top-level ``false`` says.
    """
    raw_text = raw.get("text_config") or raw.get("llm_config") or raw.get("language_config")
    for source in (raw_text if isinstance(raw_text, dict) else {}, raw, text, resolved):
        if source.get("tie_word_embeddings") is not None:
            return bool(source["tie_word_embeddings"])
    return False


def _dtype_of(config: dict, text: dict) -> str:
    raw = _get(text, "dtype", "torch_dtype") or _get(config, "dtype", "torch_dtype") or "float32"
    raw = str(raw).replace("torch.", "")
    return {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}.get(raw, raw)


def describe_config(
    config: dict,
    *,
    name: str,
    resolved: dict | None = None,
    preprocessor: dict | None = None,
    source: str = "",
) -> ModelDescription:
    """Describe a model from its config.json (``resolved``: the same with transformers' defaults).

    A config that cannot be read as its architecture raises one :class:`ConfigError` (never a
    ``ValueError``/``TypeError`` from the arithmetic)."""
    from .config_checks import check_config_values, check_top_level

    if not isinstance(config, dict) or (resolved is not None and not isinstance(resolved, dict)):
        raise ConfigError(f"{name}: config.json is not a JSON object", hint="a model config is a JSON object")
    for c in (config, resolved) if resolved is not None else (config,):
        check_top_level(c, f"{name} config")
    check_config_values(text_config_of(resolved or config), f"{name} config")
    try:
        return _describe(config, name=name, resolved=resolved, preprocessor=preprocessor, source=source)
    except VramplanError:
        raise
    except KeyError as exc:
        raise ConfigError(f"{name} config has no {exc.args[0]!r}, which its architecture needs",
                          hint="the config is incomplete; compare it with the model's Hub config.json") from None
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, IndexError, OverflowError) as exc:
        raise ConfigError(f"{name} config cannot be read as its architecture ({type(exc).__name__}: {exc})",
                          hint="a value has the wrong type or size; compare config.json with the model's Hub "
                               "config.json") from None


def _describe(
    config: dict,
    *,
    name: str,
    resolved: dict | None = None,
    preprocessor: dict | None = None,
    source: str = "",
) -> ModelDescription:
    cfg = resolved or config
    archs = cfg.get("architectures") or config.get("architectures") or []
    if not archs:
        raise ConfigError(f"{name}: config.json lists no 'architectures'", hint="vLLM needs it to pick the model class")
    arch = archs[0]
    from .families import config_fix_for, family_for_architecture

    fix = config_fix_for(arch)
    if fix is not None:
        cfg = fix(config, cfg)
    text = text_config_of(cfg)

    registered = family_for_architecture(arch)
    if registered is not None:
        family, multimodal = registered
    elif arch in _WRAPPERS:
        family, multimodal = _wrapped_family(arch, text), True
    elif arch in _ARCHITECTURES:
        family, multimodal = _ARCHITECTURES[arch]
    elif arch in REMOVED_FROM_VLLM:
        raise UnsupportedError("vLLM: " + removed_from_vllm_message(arch),
                               hint="no vLLM release vramplan models (0.19 and later) can load it")
    else:
        from .families import PENDING

        if arch in PENDING:
            raise UnsupportedError(PENDING[arch], hint="docs/notes-deepseek-v4-kimi-k3.md lists what vLLM 0.34 "
                                   "allocates for it; plan another architecture meanwhile")
        raise UnsupportedError(
            f"architecture {arch} is not modelled by vramplan yet",
            hint="supported: " + ", ".join(supported_architectures()),
        )
    where = f"{name} config"
    hidden = int(_need(text, "hidden_size", where))
    num_layers = int(_need(text, "num_hidden_layers", where))
    num_heads = int(_need(text, "num_attention_heads", where))
    num_kv = int(_get(text, "num_key_value_heads", default=num_heads))
    head_dim = int(_get(text, "head_dim", default=hidden // num_heads))
    vocab = int(_need(text, "vocab_size", where))
    inter = int(_get(text, "intermediate_size", default=4 * hidden))
    max_pos = int(_get(text, "max_position_embeddings", default=2048))
    tie = _tie_word_embeddings(config, text, cfg)
    dtype = _dtype_of(cfg, text)

    ctx = _Ctx(family=family, text=text, hidden=hidden, num_heads=num_heads, num_kv=num_kv,
               head_dim=head_dim, inter=inter, num_layers=num_layers, max_pos=max_pos)
    built = _layers(ctx)
    layers, layer_params, moe = built[:3]
    # a family module may return a 4th element: extras for the description (model/families/__init__.py)
    extra: dict = built[3] if len(built) > 3 else {}

    embed = (Param(name="embed_tokens.weight", shape=(vocab, hidden), shard=Shard.VOCAB, part="embed"),)
    from .families import extra_params_for

    extra_fn = extra_params_for(family)
    if extra_fn is not None:
        embed += tuple(extra_fn(ctx, cfg))
    head: list[Param] = [_norm("norm", hidden, family, layernorm=family == "phi")]
    if not tie:
        head.append(Param(name="lm_head.weight", shape=(vocab, hidden), shard=Shard.VOCAB, part="lm_head"))
        if family == "phi":
            head.append(Param(name="lm_head.bias", shape=(vocab,), shard=Shard.VOCAB, part="lm_head"))

    sliding = _get(text, "sliding_window")
    rope_scaling = text.get("rope_parameters") or text.get("rope_scaling")
    return ModelDescription(
        name=name,
        architecture=arch,
        family=family,
        dtype=dtype,
        hidden_size=hidden,
        vocab_size=vocab,
        num_attention_heads=num_heads,
        num_kv_heads=num_kv,
        head_dim=head_dim,
        intermediate_size=inter,
        num_hidden_layers=num_layers,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tie,
        layers=layers,
        layer_params=layer_params,
        embed_params=embed,
        head_params=tuple(head),
        buffer_params=(tuple(extra["buffer_params"]) if "buffer_params" in extra else _buffers(ctx, layers))
        + _extra_rope_copies(ctx, extra),
        token_buffers=tuple(extra.get("token_buffers", ())),
        moe=moe,
        is_multimodal=multimodal,
        model_type=str(cfg.get("model_type", "")),
        text_model_type=str(text.get("model_type", cfg.get("model_type", ""))),
        sliding_window=int(sliding) if isinstance(sliding, int) else None,
        rope_scaling=rope_scaling if isinstance(rope_scaling, dict) else None,
        hf_config=cfg,
        raw_config=config,
        preprocessor_config=preprocessor,
        source=source,
    )


class _Ctx:
    """The handful of text-config values every family builder reads."""

    __slots__ = ("family", "text", "hidden", "num_heads", "num_kv", "head_dim", "inter", "num_layers", "max_pos")

    def __init__(self, **kw: Any) -> None:
        for key, value in kw.items():
            setattr(self, key, value)


def _norm(name: str, size: int, family: str, *, layernorm: bool = False) -> Param:
    return Param(name=f"{name}.weight", shape=(size,), part="norm") if not layernorm else Param(
        name=f"{name}.weight+bias", shape=(2 * size,), part="norm"
    )


def _qkv(ctx: _Ctx, *, bias: bool, q_heads: int | None = None, q_mult: int = 1) -> list[Param]:
    """``QKVParallelLinear`` (+bias): shape (q_heads, kv_heads, head_dim, in_features)."""
    q = (q_heads or ctx.num_heads) * q_mult
    out = [Param(name="self_attn.qkv_proj.weight", shape=(q, ctx.num_kv, ctx.head_dim, ctx.hidden),
                 shard=Shard.QKV, part="attention", quantizable=True)]
    if bias:
        out.append(Param(name="self_attn.qkv_proj.bias", shape=(q, ctx.num_kv, ctx.head_dim, 1),
                         shard=Shard.QKV, part="attention"))
    return out


def _o_proj(ctx: _Ctx, *, bias: bool) -> list[Param]:
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


def _layer_types(ctx: _Ctx) -> list[str]:
    types = ctx.text.get("layer_types")
    if isinstance(types, list) and len(types) == ctx.num_layers:
        return [str(t) for t in types]
    return ["full_attention"] * ctx.num_layers


def _attention_kind(ctx: _Ctx, layer_type: str) -> tuple[LayerKind, AttentionSpec]:
    window = ctx.text.get("sliding_window")
    sinks = ctx.family == "gpt_oss"
    if layer_type == "sliding_attention" and isinstance(window, int):
        return LayerKind.SLIDING, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                 sliding_window=window, has_sinks=sinks)
    if layer_type == "chunked_attention":
        chunk = int(ctx.text.get("attention_chunk_size") or 8192)
        return LayerKind.CHUNKED_LOCAL, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                       chunk_size=chunk)
    # Mistral-style configs put sliding_window on every layer (no layer_types).
    if ctx.family == "llama" and isinstance(window, int) and ctx.text.get("model_type") == "mistral":
        return LayerKind.SLIDING, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim,
                                                 sliding_window=window)
    return LayerKind.FULL, AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim, has_sinks=sinks)


def _layers(ctx: _Ctx) -> tuple[tuple[LayerSpec, ...], tuple[tuple[Param, ...], ...], MoESpec | None]:
    from .families import builder_for

    builder = builder_for(ctx.family) or _FAMILY_BUILDERS.get(ctx.family, _dense_layers)
    return builder(ctx)


def _dense_layers(ctx: _Ctx):
    """Llama, Mistral, Qwen2/3, Phi-3, Granite, Gemma 2/3 and phi-2 decoder layers."""
    fam, t, h = ctx.family, ctx.text, ctx.hidden
    qkv_bias = bool(t.get("attention_bias", _QKV_BIAS.get(fam, False))) or fam in ("qwen2", "phi")
    o_bias = bool(t.get("attention_bias", False)) and fam in ("llama",) or fam == "phi"
    mlp_bias = bool(t.get("mlp_bias", False)) or fam == "phi"
    params: list[Param] = []
    params += _qkv(ctx, bias=qkv_bias)
    params += _o_proj(ctx, bias=o_bias)
    if fam in ("qwen3", "gemma3"):  # per-head q/k RMSNorm
        params += [Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
                   Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm")]
    if fam == "phi":  # fc1/fc2 with bias, one LayerNorm (parallel attention + MLP)
        params += [
            Param(name="mlp.fc1.weight", shape=(ctx.inter, h), shard=Shard.COLUMN, part="mlp", quantizable=True),
            Param(name="mlp.fc1.bias", shape=(ctx.inter,), shard=Shard.COLUMN, part="mlp"),
            Param(name="mlp.fc2.weight", shape=(h, ctx.inter), shard=Shard.ROW, part="mlp", quantizable=True),
            Param(name="mlp.fc2.bias", shape=(h,), part="mlp"),
            _norm("input_layernorm", h, fam, layernorm=True),
        ]
    else:
        params += _gated_mlp(h, ctx.inter, bias=mlp_bias)
        norms = ["input_layernorm", "post_attention_layernorm"]
        if fam in ("gemma2", "gemma3"):
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        params += [_norm(n, h, fam) for n in norms]
    layer_params = tuple(params)
    specs = []
    for i, lt in enumerate(_layer_types(ctx)):
        kind, attn = _attention_kind(ctx, lt)
        specs.append(LayerSpec(index=i, kind=kind, attention=attn))
    return tuple(specs), (layer_params,) * ctx.num_layers, None


def _moe_layers(ctx: _Ctx):
    """Mixtral, Qwen2-MoE, Qwen3-MoE (incl. Qwen3-VL-MoE) and gpt-oss."""
    fam, t, h = ctx.family, ctx.text, ctx.hidden
    num_experts = int(_get(t, "num_local_experts", "num_experts", "n_routed_experts"))
    top_k = int(_get(t, "num_experts_per_tok", "experts_per_token", default=2))
    moe_inter = int(_get(t, "moe_intermediate_size", default=ctx.inter))
    shared_inter = int(_get(t, "shared_expert_intermediate_size", default=0))
    bias = fam == "gpt_oss"
    attn: list[Param] = _qkv(ctx, bias=bias or fam == "qwen2_moe" or bool(t.get("attention_bias")))
    attn += _o_proj(ctx, bias=bias)
    if fam == "qwen3_moe":
        attn += [Param(name="self_attn.q_norm.weight", shape=(ctx.head_dim,), part="norm"),
                 Param(name="self_attn.k_norm.weight", shape=(ctx.head_dim,), part="norm")]
    if fam == "gpt_oss":  # per-head attention sinks, split with the heads (fp32 in vLLM v0.26 gpt_oss.py)
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
        kind, spec = _attention_kind(ctx, lt)
        specs.append(LayerSpec(index=i, kind=kind, attention=spec, is_moe=is_moe))
        mlp = moe_block if is_moe else _gated_mlp(h, ctx.inter)
        params.append(tuple(attn + norms + mlp))
    moe = MoESpec(num_experts=num_experts, top_k=top_k, intermediate_size=moe_inter,
                  num_shared_experts=1 if shared_inter else 0, shared_intermediate_size=shared_inter, has_bias=bias)
    return tuple(specs), tuple(params), moe


def _deepseek_layers(ctx: _Ctx):
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
        # keeps model-dtype copies W_UV and W_UK_T of kv_b_proj (split by heads like it).
        Param(name="self_attn.mla_attn.W_UK_T+W_UV", shape=(heads * (nope + v_dim), kv_lora), shard=Shard.COLUMN,
              part="attention"),
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


def _qwen3_next_layers(ctx: _Ctx):
    """Qwen3-Next: gated delta-net (linear attention) layers with every 4th layer gated full attention."""
    t, h = ctx.text, ctx.hidden
    nk, nv = int(t["linear_num_key_heads"]), int(t["linear_num_value_heads"])
    dk, dv = int(t["linear_key_head_dim"]), int(t["linear_value_head_dim"])
    kernel = int(t.get("linear_conv_kernel_dim", 4))
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    # vLLM v0.26.0 vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:QwenGatedDeltaNetAttention
    gdn = [
        Param(name="linear_attn.in_proj_qkvz.weight", shape=(2 * key_dim + 2 * value_dim, h), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        Param(name="linear_attn.in_proj_ba.weight", shape=(2 * nv, h), shard=Shard.COLUMN, part="attention",
              quantizable=True),
        Param(name="linear_attn.conv1d.weight", shape=(conv_dim, kernel), shard=Shard.COLUMN, part="attention"),
        Param(name="linear_attn.dt_bias", shape=(nv,), shard=Shard.COLUMN, part="attention"),
        Param(name="linear_attn.A_log", shape=(nv,), shard=Shard.COLUMN, part="attention"),
        Param(name="linear_attn.norm.weight", shape=(dv,), part="norm"),
        Param(name="linear_attn.out_proj.weight", shape=(h, value_dim), shard=Shard.ROW, part="attention",
              quantizable=True),
    ]
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
    mamba = MambaSpec(kind="gdn", conv_dim=conv_dim, conv_kernel=kernel, num_heads=nv, head_k_dim=dk, head_v_dim=dv)
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


def _llama4_layers(ctx: _Ctx):
    """Llama 4 (Scout/Maverick) text: chunked local attention on 3 of 4 layers, MoE on every step-th layer."""
    t, h = ctx.text, ctx.hidden
    num_experts = int(_get(t, "num_local_experts", default=16))
    moe_inter = int(_get(t, "intermediate_size", default=8192))
    dense_inter = int(_get(t, "intermediate_size_mlp", default=16384))
    step = int(_get(t, "interleave_moe_layer_step", default=1))
    moe_layers = set(t.get("moe_layers") or [i for i in range(ctx.num_layers) if (i + 1) % step == 0])
    attn = _qkv(ctx, bias=bool(t.get("attention_bias"))) + _o_proj(ctx, bias=False)
    norms = [_norm("input_layernorm", h, "llama4"), _norm("post_attention_layernorm", h, "llama4")]
    moe_block = _router(h, num_experts, name="feed_forward.router") + _experts(h, moe_inter, num_experts)
    moe_block += _gated_mlp(h, moe_inter, prefix="feed_forward.shared_expert")
    specs, params = [], []
    for i, lt in enumerate(_layer_types(ctx)):
        kind, spec = _attention_kind(ctx, lt)
        is_moe = i in moe_layers
        specs.append(LayerSpec(index=i, kind=kind, attention=spec, is_moe=is_moe))
        params.append(tuple(attn + norms + (moe_block if is_moe else _gated_mlp(h, dense_inter))))
    moe = MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok", default=1)),
                  intermediate_size=moe_inter, num_shared_experts=1, shared_intermediate_size=moe_inter)
    return tuple(specs), tuple(params), moe


_FAMILY_BUILDERS = {
    "mixtral": _moe_layers,
    "qwen2_moe": _moe_layers,
    "qwen3_moe": _moe_layers,
    "gpt_oss": _moe_layers,
    "deepseek_v2": _deepseek_layers,
    "qwen3_next": _qwen3_next_layers,
    "llama4": _llama4_layers,
}


def _buffers(ctx: _Ctx, layers: tuple[LayerSpec, ...]) -> tuple[Param, ...]:
    """A registered family's own buffers when it declares them, else the rotary caches."""
    from .families import buffers_for

    own = buffers_for(ctx.family)
    return own(ctx, layers) if own is not None else _rope_buffers(ctx, layers)


def _rope_buffers(ctx: _Ctx, layers: tuple[LayerSpec, ...]) -> tuple[Param, ...]:
    """The rotary cos/sin caches vLLM registers as buffers (one per distinct rope; model dtype).

    vLLM v0.26.0 vllm/model_executor/layers/rotary_embedding/__init__.py:get_rope caches one
    module per distinct (head_size, rotary_dim, max_position, params); each holds
    ``cos_sin_cache`` of shape (positions, rotary_dim). Positions: ``max_position`` for the
    default and llama3 kinds; x4 for M-RoPE (``MRotaryEmbedding.cache_max_position_num``);
    ``max_position x factor`` for linear scaling; ``original_max_position x factor`` for YaRN
    and DeepSeek-YaRN.
    """
    t = ctx.text
    params = t.get("rope_parameters") or t.get("rope_scaling") or {}
    if ctx.family == "deepseek_v2" or (t.get("kv_lora_rank") and t.get("qk_rope_head_dim")):  # MLA families
        rot_dim = int(t.get("qk_rope_head_dim", 64))
    else:
        factor = float(t.get("partial_rotary_factor") or (params.get("partial_rotary_factor") if isinstance(params, dict) else None) or 1.0)
        rot_dim = int(ctx.head_dim * factor)
    if ctx.family == "qwen3_next":
        rot_dim = int(ctx.head_dim * float(t.get("partial_rotary_factor", 0.25)))
    ropes: list[dict] = []
    if isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values()):
        ropes = list(params.values())  # transformers v5 per-layer-type ropes (Gemma 3)
    else:
        ropes = [params if isinstance(params, dict) else {}]
    if ctx.family == "gemma2" or (ctx.family == "llama4"):
        ropes = ropes[:1]
    # gpt-oss builds its rope with dtype=torch.float32 (vLLM v0.26.0 vllm/model_executor/models/gpt_oss.py:
    # OAIAttention.__init__), so its cache stays float32
    dtype = "float32" if ctx.family == "gpt_oss" else None
    out = []
    for i, rope in enumerate(ropes):
        positions = _rope_positions(ctx.max_pos, rope)
        if positions:
            out.append(Param(name=f"rotary_emb[{i}].cos_sin_cache", shape=(positions, rot_dim), part="buffer",
                             dtype=dtype))
    return tuple(out)


def _extra_rope_copies(ctx: _Ctx, extra: dict) -> tuple[Param, ...]:
    """Further cos/sin caches a family module asks for (``extra_rope_copies`` x the first rope's shape, with
    ``rope_dim`` as its rotary dim): a second ``get_rope`` key, e.g. DeepSeek-V3.2's indexer rope."""
    copies = int(extra.get("extra_rope_copies", 0))
    if not copies:
        return ()
    t = ctx.text
    params = t.get("rope_parameters") or t.get("rope_scaling") or {}
    positions = _rope_positions(ctx.max_pos, params if isinstance(params, dict) else {})
    rot = int(extra.get("rope_dim") or ctx.head_dim)
    return tuple(Param(name=f"rotary_emb[extra {i}].cos_sin_cache", shape=(positions, rot), part="buffer")
                 for i in range(copies))


def _rope_positions(max_pos: int, rope: dict) -> int:
    kind = str(rope.get("rope_type") or rope.get("type") or "default")
    factor = float(rope.get("factor") or 1.0)
    if "mrope_section" in rope or kind == "mrope":
        # MRotaryEmbedding enlarges its cache to 4x max_position (Qwen2/2.5/3-VL alike; only
        # openpangu's MRotaryEmbeddingInterleaved keeps 1x).
        return max_pos * 4
    if kind == "linear":
        return int(max_pos * factor)
    if kind in ("yarn", "deepseek_yarn"):
        return int(int(rope.get("original_max_position_embeddings") or max_pos) * factor)
    return max_pos


def param_count(params: tuple[Param, ...]) -> int:
    """Elements in a list of params, unsharded (QKV shapes are expanded)."""
    total = 0
    for p in params:
        if p.shard is Shard.QKV:
            q, kv, d, n = p.shape
            total += (q + 2 * kv) * d * n
        else:
            total += math.prod(p.shape)
    return total
