"""phi-2 (``PhiForCausalLM``): parallel attention + MLP under one LayerNorm, biases everywhere.

vLLM v0.26.0 vllm/model_executor/models/phi.py: PhiLayer (QKV and dense with bias, fc1/fc2 with bias, one
``input_layernorm`` LayerNorm), a final LayerNorm and an LM head with a bias.
"""

from __future__ import annotations

from ..description import LayerSpec, Param, Shard
from . import Family, register
from ._common import _attention_kind, _layer_types, _norm, _o_proj, _qkv


def build(ctx):
    h = ctx.hidden
    params: list[Param] = _qkv(ctx, bias=True) + _o_proj(ctx, bias=True)
    params += [  # fc1/fc2 with bias, one LayerNorm (parallel attention + MLP)
        Param(name="mlp.fc1.weight", shape=(ctx.inter, h), shard=Shard.COLUMN, part="mlp", quantizable=True),
        Param(name="mlp.fc1.bias", shape=(ctx.inter,), shard=Shard.COLUMN, part="mlp"),
        Param(name="mlp.fc2.weight", shape=(h, ctx.inter), shard=Shard.ROW, part="mlp", quantizable=True),
        Param(name="mlp.fc2.bias", shape=(h,), part="mlp"),
        _norm("input_layernorm", h, ctx.family, layernorm=True),
    ]
    layer_params = tuple(params)
    specs = []
    for i, lt in enumerate(_layer_types(ctx)):
        kind, attn = _attention_kind(ctx, lt)
        specs.append(LayerSpec(index=i, kind=kind, attention=attn))
    return tuple(specs), (layer_params,) * ctx.num_layers, None


register(Family(
    name="phi",
    builder=build,
    architectures={"PhiForCausalLM": False},
    head_layernorm=True,
    lm_head_bias=True,
))
