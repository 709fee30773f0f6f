"""Turn a model's config files into a :class:`ModelDescription` (pure; no I/O).

The generic part: which family an architecture names (the registry in ``model/families/``, one module per
family listing the tensors vLLM allocates for it, with the TP sharding vLLM gives them), the embeddings, the
final norm and LM head, and the rotary buffers. Sizes are element counts; dtypes are applied by the rules.

Adding an architecture: a module in ``model/families/`` that registers it, plus its tests.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError, UnsupportedError, VramplanError
from ..memo import by_identity
from .description import (
    REMOVED_FROM_VLLM,
    LayerSpec,
    ModelDescription,
    MoESpec,
    Param,
    Shard,
    removed_from_vllm_message,
)
from .families._common import _get, _need, _norm, _rope_buffers, _rope_positions
# Re-exported for family modules written against the old layout (other branches): new code imports ._common.
from .families._common import (  # noqa: F401
    _attention_kind,
    _experts,
    _gated_mlp,
    _layer_types,
    _o_proj,
    _qkv,
    _router,
)

__all__ = ["describe_config", "supported_architectures", "text_config_of"]


def supported_architectures() -> tuple[str, ...]:
    from .families import registered_architectures, wrapper_architectures

    return tuple(sorted(set(registered_architectures()) | set(wrapper_architectures())))


def _wrapped_family(arch: str, text: dict, default: str) -> str:
    """The text family of a vision-language wrapper, from its language model's config."""
    from .families import family_for_architecture, family_for_text_type, text_model_types

    for text_arch in text.get("architectures") or ():
        registered = family_for_architecture(text_arch)
        if registered is not None:
            return registered[0]
    mt = text.get("model_type")
    registered = family_for_text_type(str(mt)) if mt else None
    if registered is not None:
        return registered
    if mt:
        raise UnsupportedError(f"{arch} with a {mt!r} language model is not modelled by vramplan yet",
                               hint="supported language models: " + ", ".join(sorted(text_model_types())))
    return default


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
    from .families import config_fix_for, family_for_architecture, wrapper_default

    fix = config_fix_for(arch)
    if fix is not None:
        cfg = fix(config, cfg)
    text = text_config_of(cfg)

    registered = family_for_architecture(arch)
    wrapped = wrapper_default(arch) if registered is None else None
    if registered is not None:
        family, multimodal = registered
    elif wrapped is not None:
        family, multimodal = _wrapped_family(arch, text, wrapped), True
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
    from .families import family as registered_family

    extra_fn = extra_params_for(family)
    if extra_fn is not None:
        embed += tuple(extra_fn(ctx, cfg))
    fam = registered_family(family)
    head: list[Param] = [_norm("norm", hidden, family, layernorm=bool(fam and fam.head_layernorm))]
    if not tie:
        head.append(Param(name="lm_head.weight", shape=(vocab, hidden), shard=Shard.VOCAB, part="lm_head"))
        if fam is not None and fam.lm_head_bias:
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
        notes=tuple(str(n) for n in extra.get("notes", ())),
    )


class _Ctx:
    """The handful of text-config values every family builder reads."""

    __slots__ = ("family", "text", "hidden", "num_heads", "num_kv", "head_dim", "inter", "num_layers", "max_pos")

    def __init__(self, **kw: Any) -> None:
        for key, value in kw.items():
            setattr(self, key, value)


def _layers(ctx: _Ctx) -> tuple[tuple[LayerSpec, ...], tuple[tuple[Param, ...], ...], MoESpec | None]:
    from .families import builder_for

    builder = builder_for(ctx.family)
    if builder is None:  # every family the description can name is registered (model/families/)
        raise UnsupportedError(f"no layer builder is registered for the {ctx.family!r} family")
    return builder(ctx)


def _buffers(ctx: _Ctx, layers: tuple[LayerSpec, ...]) -> tuple[Param, ...]:
    """A registered family's own buffers when it declares them, else the rotary caches."""
    from .families import buffers_for

    own = buffers_for(ctx.family)
    return own(ctx, layers) if own is not None else _rope_buffers(ctx, layers)


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


def _deepseek_layers(ctx: _Ctx):
    """DeepSeek V2/V3 decoder layers, now in model/families/deepseek_v2.py (kept for older imports)."""
    from .families.deepseek_v2 import build

    return build(ctx)
