"""Nemotron-H and Nemotron-3 Nano / Super (``NemotronHForCausalLM``): Mamba-2 + attention + MLP / MoE layers.

Read from source only (no real startup checked this session): vLLM v0.34.0
vllm/model_executor/models/nemotron_h.py. ``hybrid_override_pattern`` gives one character per layer, and each
layer is a single mixer behind one RMSNorm:

- ``M`` NemotronHMambaDecoderLayer: ``MambaMixer2`` (vllm/model_executor/layers/mamba/mamba_mixer2.py): in_proj
  (Column, ``2I + 2GN + H`` rows, I = mamba_num_heads x mamba_head_dim), conv1d (Column, ``I + 2GN`` x kernel,
  + bias when use_conv_bias), A (H, float32), D and dt_bias (H), gated RMSNorm (I, split by TP), out_proj (Row).
  G groups not divisible by TP are replicated up to TP, which this description does not widen in the weights
  (every config here has n_groups 8); the state does (rules/kv.py).
- ``*`` NemotronHAttentionDecoderLayer: QKV + o_proj without bias, and no rotary embedding (no rope buffer).
- ``-`` NemotronHMLPDecoderLayer: up_proj (Column) + down_proj (Row), non-gated (relu2).
- ``E`` NemotronHMoEDecoderLayer: GateLinear router (E x hidden; model dtype on Hopper/Blackwell, float32 elsewhere:
  the model dtype is used here), ``e_score_correction_bias`` (E, float32), FusedMoE with a non-gated activation
  (w13 is E x I x hidden, not 2I: unquantized_fused_moe_method.py:create_weights, ``is_act_and_mul`` False),
  shared experts (NemotronHMLP of ``moe_shared_expert_intermediate_size x n_shared_experts``), and for latent MoE
  (``moe_latent_size``, Nemotron-3 Super) the replicated fc1/fc2 latent projections, the experts then working
  at the latent width.
- MTP: ``hf_to_vllm_mapper`` maps ``mtp`` to None: the next-token layers are not loaded without speculative
  decoding.
- SSM state dtype: vLLM v0.34.0 vllm/model_executor/models/config.py:NemotronHForCausalLMConfig sets
  ``mamba_ssm_cache_dtype`` from the config's key, else float32 (from v0.20.0; v0.18 and v0.19 fall back to
  float16: selected by release, see ``MambaSpec.state_dtype_by_release``).
"""

from __future__ import annotations

from ..description import AttentionSpec, LayerKind, LayerSpec, MambaSpec, MoESpec, Param, Shard
from ._common import _get, _norm, _o_proj, _qkv
from . import Family, register


def _mlp(hidden: int, inter: int, *, prefix: str, bias: bool, part: str) -> list[Param]:
    out = [
        Param(name=f"{prefix}.up_proj.weight", shape=(inter, hidden), shard=Shard.COLUMN, part=part,
              quantizable=True),
        Param(name=f"{prefix}.down_proj.weight", shape=(hidden, inter), shard=Shard.ROW, part=part,
              quantizable=True),
    ]
    if bias:
        out += [Param(name=f"{prefix}.up_proj.bias", shape=(inter,), shard=Shard.COLUMN, part=part),
                Param(name=f"{prefix}.down_proj.bias", shape=(hidden,), part=part)]
    return out


def pattern_of(t: dict, num_layers: int) -> str:
    pattern = str(t.get("hybrid_override_pattern") or "")
    if len(pattern) != num_layers:
        from ...errors import ConfigError

        raise ConfigError(f"hybrid_override_pattern has {len(pattern)} layers, num_hidden_layers says {num_layers}",
                          hint="vLLM builds one layer per pattern character; fix the config")
    return pattern


def build(ctx):
    t, h = ctx.text, ctx.hidden
    pattern = pattern_of(t, ctx.num_layers)
    heads, hd = int(t["mamba_num_heads"]), int(t["mamba_head_dim"])
    groups, n = int(t.get("n_groups", 1)), int(t["ssm_state_size"])
    kernel = int(t.get("conv_kernel", 4))
    inner = heads * hd
    conv_dim = inner + 2 * groups * n
    use_bias = bool(t.get("use_bias", False))
    mamba_params = [
        Param(name="mixer.in_proj.weight", shape=(2 * inner + 2 * groups * n + heads, h), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        Param(name="mixer.conv1d.weight", shape=(conv_dim, kernel), shard=Shard.COLUMN, part="attention"),
        Param(name="mixer.A", shape=(heads,), shard=Shard.COLUMN, part="attention", dtype="float32"),
        Param(name="mixer.D", shape=(heads,), shard=Shard.COLUMN, part="attention"),
        Param(name="mixer.dt_bias", shape=(heads,), shard=Shard.COLUMN, part="attention"),
        Param(name="mixer.norm.weight", shape=(inner,), shard=Shard.COLUMN, part="norm"),
        Param(name="mixer.out_proj.weight", shape=(h, inner), shard=Shard.ROW, part="attention", quantizable=True),
    ]
    if t.get("use_conv_bias", True):
        mamba_params.append(Param(name="mixer.conv1d.bias", shape=(conv_dim,), shard=Shard.COLUMN, part="attention"))
    if use_bias:
        mamba_params += [
            Param(name="mixer.in_proj.bias", shape=(2 * inner + 2 * groups * n + heads,), shard=Shard.COLUMN,
                  part="attention"),
            Param(name="mixer.out_proj.bias", shape=(h,), part="attention"),
        ]
    ssm = t.get("mamba_ssm_cache_dtype")
    # NemotronHForCausalLMConfig: the config's key, else float16 (vLLM v0.18.0, v0.19.0) or float32 from v0.20.0
    # (DEFAULT_MAMBA_SSM_CACHE_DTYPE, read in the 0.20.0 wheel)
    mamba = MambaSpec(kind="mamba2", conv_dim=conv_dim, conv_kernel=kernel, num_heads=heads, head_k_dim=hd,
                      head_v_dim=n, state_dtype=str(ssm).replace("torch.", "") if ssm else None,
                      state_dtype_by_release=() if ssm else (((0, 0, 0), "float16"), ((0, 20, 0), "float32")),
                      n_groups=groups, state_size=n)
    attn_params = [p for p in _qkv(ctx, bias=False)] + _o_proj(ctx, bias=False)
    attn_params = [Param(name=p.name.replace("self_attn", "mixer"), shape=p.shape, shard=p.shard, part=p.part,
                         quantizable=p.quantizable) for p in attn_params]
    norm = [_norm("norm", h, "nemotron_h")]
    mlp_bias = bool(t.get("mlp_bias", False))
    inter = t.get("intermediate_size")

    moe_params: list[Param] = []
    moe = None
    if "E" in pattern:
        num_experts = int(_get(t, "n_routed_experts"))
        moe_inter = int(_get(t, "moe_intermediate_size"))
        latent = t.get("moe_latent_size")
        width = int(latent) if latent else h
        moe_params = [
            Param(name="mixer.gate.weight", shape=(num_experts, h), part="moe"),
            Param(name="mixer.gate.e_score_correction_bias", shape=(num_experts,), part="moe", dtype="float32"),
            Param(name="mixer.experts.w13_weight", shape=(num_experts, moe_inter, width),
                  shard=Shard.EXPERT_COLUMN, part="moe", quantizable=True),
            Param(name="mixer.experts.w2_weight", shape=(num_experts, width, moe_inter), shard=Shard.EXPERT_ROW,
                  part="moe", quantizable=True),
        ]
        n_shared = int(_get(t, "n_shared_experts", default=0))
        shared_inter = int(_get(t, "moe_shared_expert_intermediate_size", default=0)) * n_shared
        if shared_inter:
            moe_params += _mlp(h, shared_inter, prefix="mixer.shared_experts", bias=False, part="moe")
        if latent:
            moe_params += [
                Param(name="mixer.fc1_latent_proj.weight", shape=(width, h), part="moe", quantizable=True),
                Param(name="mixer.fc2_latent_proj.weight", shape=(h, width), part="moe", quantizable=True),
            ]
            if mlp_bias:
                moe_params += [Param(name="mixer.fc1_latent_proj.bias", shape=(width,), part="moe"),
                               Param(name="mixer.fc2_latent_proj.bias", shape=(h,), part="moe")]
        moe = MoESpec(num_experts=num_experts, top_k=int(_get(t, "num_experts_per_tok", default=6)),
                      intermediate_size=moe_inter, num_shared_experts=n_shared, shared_intermediate_size=shared_inter)

    specs, params = [], []
    attn_spec = AttentionSpec(num_kv_heads=ctx.num_kv, head_size=ctx.head_dim)
    mlp_index = -1
    for i, ch in enumerate(pattern):
        if ch == "M":
            specs.append(LayerSpec(index=i, kind=LayerKind.MAMBA, mamba=mamba))
            params.append(tuple(mamba_params + norm))
        elif ch == "*":
            specs.append(LayerSpec(index=i, kind=LayerKind.FULL, attention=attn_spec))
            params.append(tuple(attn_params + norm))
        elif ch == "-":
            mlp_index += 1
            size = inter[0] if isinstance(inter, list) and len(inter) == 1 else (
                inter[mlp_index] if isinstance(inter, list) else inter)
            specs.append(LayerSpec(index=i, kind=LayerKind.NONE))
            params.append(tuple(_mlp(h, int(size), prefix="mixer", bias=mlp_bias, part="mlp") + norm))
        elif ch == "E":
            specs.append(LayerSpec(index=i, kind=LayerKind.NONE, is_moe=True))
            params.append(tuple(moe_params + norm))
        else:
            from ...errors import ConfigError

            raise ConfigError(f"hybrid_override_pattern has an unknown layer type {ch!r} at layer {i}",
                              hint="vLLM's NemotronH knows M (Mamba), * (attention), - (MLP) and E (MoE)")
    return tuple(specs), tuple(params), moe


def _no_buffers(ctx, layers) -> tuple:
    """NemotronHAttention applies no rotary embedding: no cos/sin cache."""
    return ()


def _fix(raw: dict, resolved: dict) -> dict:
    """transformers 5.x ``NemotronHConfig.to_dict()`` turns ``hybrid_override_pattern`` into ``layers_block_type``
    and drops ``num_hidden_layers``; vLLM's nemotron_h.py reads both from the config, as config.json states them."""
    if resolved is raw:
        return resolved
    out = dict(resolved)
    if "mamba_ssm_cache_dtype" not in raw:
        # transformers 5.x's NemotronHConfig fills in float32; the file states nothing, so vLLM's own fallback
        # (float16 to 0.19, float32 from 0.20) decides, by release
        out.pop("mamba_ssm_cache_dtype", None)
    for key in ("hybrid_override_pattern", "num_hidden_layers", "head_dim", "attention_head_dim"):
        if key in raw and out.get(key) is None:
            out[key] = raw[key]
    if out.get("num_hidden_layers") is None and out.get("hybrid_override_pattern"):
        out["num_hidden_layers"] = len(out["hybrid_override_pattern"])
    return out


register(Family(
    name="nemotron_h",
    builder=build,
    config_fix=_fix,
    architectures={"NemotronHForCausalLM": False, "NemotronHPuzzleForCausalLM": False},
    buffers=_no_buffers,
))
