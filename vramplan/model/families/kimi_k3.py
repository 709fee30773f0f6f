"""Kimi-K3 (``KimiK3ForConditionalGeneration``; vLLM 0.34 also maps ``KimiK31ForConditionalGeneration`` to it).

Read from the vLLM 0.34.0 source only (nothing measured). The language model is Kimi-Linear
(``init_vllm_registered_model(text_config, architectures=["KimiLinearForCausalLM"])``), the vision side is
Kimi-K2.5's MoonViT-3D with the ``patchmergerv2`` projector.

Text (vLLM v0.34.0 vllm/models/kimi_k3/nvidia/model.py:KimiDecoderLayer, KimiMoE, KimiLinearModel):

- ``linear_attn_config.kda_layers`` / ``full_attn_layers`` are 1-based (``KimiLinearConfig.is_kda_layer``:
  ``layer_idx + 1 in kda_layers``); every other layer is MLA.
- KDA layers (nvidia/kda.py:KimiK3DeltaAttention, ``use_full_rank_gate``): ``in_proj_qkvgfab`` merges
  [q, k, v, g] (4 x P, P = num_heads x head_dim, split by TP), ``f_a`` (head_dim rows, replicated:
  ``replicated_shard_id=4``) and ``b`` (num_heads, split); the TP-local rows are padded to 16.
  ``f_b_proj`` (Column, head_dim -> P), ``dt_bias`` (P, float32), ``conv1d`` (Column, 3P x kernel, float32),
  ``A_log`` (heads, float32), ``o_norm`` (head_dim), ``o_proj`` (Row). The native fused decode (sm90/sm10x/sm12x,
  bf16, 12/24/48/96 heads a rank) keeps float32 copies ``decode_conv1d_weight`` (3, kernel, P/tp) and
  ``decode_norm_weight`` (head_dim): counted by :func:`flashkda_load_workspace` (device and TP decide).
- KDA state (vllm/model_executor/layers/mamba/mamba_utils.py:MambaStateShapeCalculator.kda_state_shape,
  MambaStateDtypeCalculator.kda_state_dtype): conv ``(3P / tp, kernel - 1)`` in the model dtype, recurrent
  ``(heads / tp, head_dim, head_dim)`` in float32 unless ``--mamba-ssm-cache-dtype`` says bfloat16 -- the GDN
  shape with key = value heads, so it is a ``MambaSpec(kind="gdn")`` here.
- MLA layers (nvidia/mla.py:MultiHeadLatentAttention; NoPE-only, asserted): ``fused_qkv_a_g_proj`` =
  [q_lora, kv_lora + rope] replicated + output gate (heads x v_head_dim, split), ``q_a_layernorm``, ``q_b_proj``,
  ``kv_a_layernorm``, ``kv_b_proj`` and its model-dtype ``W_UK_T`` / ``W_UV`` copies
  (``process_weights_after_loading``), ``o_proj``. Cache: ``MLAAttentionSpec(num_kv_heads=1,
  head_size=kv_lora_rank + qk_rope_head_dim)`` (576). No rotary cache: ``use_rope`` is False.
  ``dsa_config`` (Kimi-K3.1: a DSA indexer on the MLA layers, vLLM 0.34 only): families/kimi_k3_dsa.py.
- MoE from ``first_k_dense_replace`` (KimiMoE): ``gate`` (E x hidden, model dtype), float32
  ``e_score_correction_bias``, shared experts (KimiMLP, ``moe_intermediate_size x num_shared_experts``, split
  by TP), and the latent projections ``routed_expert_down_proj`` (hidden -> routed_expert_hidden_size),
  ``routed_expert_norm``, ``routed_expert_up_proj`` (both replicated); the routed experts run in the latent
  width (FusedMoE ``hidden_size = routed_expert_hidden_size``), padded to 256 x TP when
  ``moe_intermediate_size // TP < 256`` without expert parallel (``padded_moe_intermediate_size``).
- Attention residuals (``attn_res_block_size``): per layer ``self_attention_res_norm``, ``mlp_res_norm`` and two
  (1 x hidden) ``*_res_proj``; the model adds ``output_attn_res_norm`` / ``output_attn_res_proj`` on the last
  stage (counted with the last decoder layer here).

Quantization: vLLM v0.34.0 vllm/model_executor/models/config.py:KimiK3ForConditionalGenerationConfig rewrites a
compressed-tensors ``mxfp4-pack-quantized`` config to ``quant_method="mxfp4"`` (Mxfp4Config: experts through
Mxfp4MoEMethod, every linear layer unquantized): :func:`config_fix` does the same for that architecture.
``KimiK31ForConditionalGeneration`` is not in that table and stays compressed-tensors (MXFP4 linears too).
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError, UnsupportedError
from ..description import AttentionSpec, LayerKind, LayerSpec, MambaSpec, MoESpec, Param, Shard, VisionSpec
from . import Family, VisionTower, register, register_vision
from ._common import _get, _need

__all__ = ["build", "vision_spec", "config_fix", "kda_layers"]

_ARCH = "KimiK3ForConditionalGeneration"
_ALIAS = "KimiK31ForConditionalGeneration"


def kda_layers(text: dict, num_layers: int) -> set[int]:
    """0-based indices of the KDA layers (``linear_attn_config.kda_layers`` is 1-based)."""
    lac = text.get("linear_attn_config")
    if not isinstance(lac, dict) or lac.get("kda_layers") is None:
        return set()
    out = {int(i) - 1 for i in lac["kda_layers"]}
    if any(i < 0 or i >= num_layers for i in out):
        raise ConfigError("linear_attn_config.kda_layers names a layer outside 1..num_hidden_layers",
                          hint="the list is 1-based; compare it with the model's Hub config.json")
    return out


def _kda(ctx: Any) -> tuple[list[Param], MambaSpec]:
    t, h = ctx.text, ctx.hidden
    lac = t["linear_attn_config"]
    heads, dim = int(_need(lac, "num_heads", "linear_attn_config")), int(_need(lac, "head_dim", "linear_attn_config"))
    kernel = int(lac.get("short_conv_kernel_size", 4))
    if not lac.get("use_full_rank_gate", False):
        raise UnsupportedError("Kimi-Linear KDA without use_full_rank_gate (KimiLinearGatedDeltaNetAttention) is "
                               "not modelled", hint="Kimi-K3's full-rank-gate KDA is")
    p = heads * dim
    params = [
        Param(name="self_attn.in_proj_qkvgfab.weight[q,k,v,g,b]", shape=(4 * p + heads, h), shard=Shard.COLUMN,
              part="attention", quantizable=True, row_align=16, row_extra=dim),
        Param(name="self_attn.in_proj_qkvgfab.weight[f_a]", shape=(dim, h), part="attention", quantizable=True),
        Param(name="self_attn.f_b_proj.weight", shape=(p, dim), shard=Shard.COLUMN, part="attention",
              quantizable=True),
        Param(name="self_attn.dt_bias", shape=(p,), shard=Shard.COLUMN, part="attention", dtype="float32"),
        Param(name="self_attn.conv1d.weight", shape=(3 * p, kernel), shard=Shard.COLUMN, part="attention",
              dtype="float32"),
        Param(name="self_attn.A_log", shape=(heads,), shard=Shard.COLUMN, part="attention", dtype="float32"),
        Param(name="self_attn.o_norm.weight", shape=(dim,), part="norm"),
        Param(name="self_attn.o_proj.weight", shape=(h, p), shard=Shard.ROW, part="attention", quantizable=True),
    ]  # the fused-decode copies depend on the device and TP: flashkda_load_workspace
    state = MambaSpec(kind="gdn", conv_dim=3 * p, conv_kernel=kernel, num_heads=heads, head_k_dim=dim,
                      head_v_dim=dim, state_dtype="float32",
                      ssm_dtypes=("float32", "bfloat16"))
    return params, state


def _mla(ctx: Any) -> tuple[list[Param], AttentionSpec]:
    t, h, heads = ctx.text, ctx.hidden, ctx.num_heads
    where = "Kimi-K3 text_config"
    q_lora = t.get("q_lora_rank")
    kv_lora = int(_need(t, "kv_lora_rank", where))
    nope = int(_need(t, "qk_nope_head_dim", where))
    rope = int(_need(t, "qk_rope_head_dim", where))
    v_dim = int(_need(t, "v_head_dim", where))
    gate = bool(t.get("mla_use_output_gate"))
    if not t.get("mla_use_nope"):
        raise UnsupportedError("Kimi-K3 MLA without mla_use_nope is refused by vLLM 0.34 (\"Kimi-K3 MLA "
                               "(MultiHeadLatentAttention) is NoPE-only\")", hint="set mla_use_nope as the Hub "
                               "config does")
    params: list[Param] = []
    if q_lora:
        params.append(Param(name="self_attn.fused_qkv_a_proj.weight[q_a,kv_a]", shape=(int(q_lora) + kv_lora + rope, h),
                            part="attention", quantizable=True))
        if gate:
            params.append(Param(name="self_attn.fused_qkv_a_g_proj.weight[g]", shape=(heads * v_dim, h),
                                shard=Shard.COLUMN, part="attention", quantizable=True))
        params += [
            Param(name="self_attn.q_a_layernorm.weight", shape=(int(q_lora),), part="norm"),
            Param(name="self_attn.q_b_proj.weight", shape=(heads * (nope + rope), int(q_lora)), shard=Shard.COLUMN,
                  part="attention", quantizable=True),
        ]
    else:  # Kimi-Linear: full-rank q_proj, replicated kv_a, standalone gate
        params += [
            Param(name="self_attn.q_proj.weight", shape=(heads * (nope + rope), h), shard=Shard.COLUMN,
                  part="attention", quantizable=True),
            Param(name="self_attn.kv_a_proj_with_mqa.weight", shape=(kv_lora + rope, h), part="attention",
                  quantizable=True),
        ]
        if gate:
            params.append(Param(name="self_attn.g_proj.weight", shape=(heads * v_dim, h), shard=Shard.COLUMN,
                                part="attention", quantizable=True))
    params += [
        Param(name="self_attn.kv_a_layernorm.weight", shape=(kv_lora,), part="norm"),
        Param(name="self_attn.kv_b_proj.weight", shape=(heads * (nope + v_dim), kv_lora), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        Param(name="self_attn.W_UK_T+W_UV", shape=(heads * (nope + v_dim), kv_lora), shard=Shard.COLUMN,
              part="attention"),
        Param(name="self_attn.o_proj.weight", shape=(h, heads * v_dim), shard=Shard.ROW, part="attention",
              quantizable=True),
    ]
    return params, AttentionSpec(num_kv_heads=1, head_size=kv_lora + rope)


def _mlp(h: int, inter: int, prefix: str, part: str = "mlp") -> list[Param]:
    return [
        Param(name=f"{prefix}.gate_up_proj.weight", shape=(2 * inter, h), shard=Shard.COLUMN, part=part,
              quantizable=True),
        Param(name=f"{prefix}.down_proj.weight", shape=(h, inter), shard=Shard.ROW, part=part, quantizable=True),
    ]


def _moe(ctx: Any) -> tuple[list[Param], MoESpec]:
    t, h = ctx.text, ctx.hidden
    where = "Kimi-K3 text_config"
    experts = int(_need(t, "num_experts", where))
    inter = int(_need(t, "moe_intermediate_size", where))
    top_k = int(_need(t, "num_experts_per_token", where))
    shared = int(_get(t, "num_shared_experts", default=0))
    latent = t.get("routed_expert_hidden_size")
    width = int(latent) if latent is not None else h
    pre = "block_sparse_moe"
    params = [
        Param(name=f"{pre}.gate.weight", shape=(experts, h), part="moe"),
        Param(name=f"{pre}.gate.e_score_correction_bias", shape=(experts,), part="moe", dtype="float32"),
    ]
    if shared:
        params += _mlp(h, inter * shared, f"{pre}.shared_experts")
    if latent is not None:
        # ReplicatedLinear: linear layers, so compressed-tensors quantizes them; Mxfp4Config does not ("mlp" part)
        params.append(Param(name=f"{pre}.routed_expert_down_proj.weight", shape=(width, h), part="mlp",
                            quantizable=True))
        if t.get("latent_moe_use_norm"):
            params.append(Param(name=f"{pre}.routed_expert_norm.weight", shape=(width,), part="norm"))
        params.append(Param(name=f"{pre}.routed_expert_up_proj.weight", shape=(h, width), part="mlp",
                            quantizable=True))
    # KimiMoE pads the intermediate size to 256 x TP when I // TP < 256 without EP (min_moe_intermediate_per_partition)
    pad = int(t.get("min_moe_intermediate_per_partition", 256))
    params += [
        Param(name=f"{pre}.experts.w13_weight", shape=(experts, 2 * inter, width), shard=Shard.EXPERT_COLUMN,
              part="moe", quantizable=True, min_inter_per_tp=pad),
        Param(name=f"{pre}.experts.w2_weight", shape=(experts, width, inter), shard=Shard.EXPERT_ROW, part="moe",
              quantizable=True, min_inter_per_tp=pad),
    ]
    spec = MoESpec(num_experts=experts, top_k=top_k, intermediate_size=inter, num_shared_experts=shared,
                   shared_intermediate_size=inter * shared, activation=str(t.get("hidden_act") or "silu"))
    return params, spec


def build(ctx: Any):
    """Kimi-K3's decoder layers: KDA (linear attention) and NoPE MLA, dense MLP then latent MoE."""
    from .kimi_k3_dsa import dsa_config, indexer_entry_bytes, indexer_params

    t, h = ctx.text, ctx.hidden
    kda = kda_layers(t, ctx.num_layers)
    dsa = dsa_config(t, ctx.num_layers, kda)
    kda_params, state = _kda(ctx) if kda else ([], None)
    mla_params, mla_spec = _mla(ctx)
    if dsa is not None:
        # KimiK3DSAAttention (nvidia/dsa.py): the same MLA tensors with a standalone g_proj, plus the indexer; the
        # cache is sparse MLA with the indexer's record, packed block-outermost (KimiK3IndexerBackend: BLHNC)
        from dataclasses import replace as _replace

        mla_params = [_replace(p, name="self_attn.g_proj.weight") if p.name.endswith("[g]") else p
                      for p in mla_params]
        mla_params += list(indexer_params(dsa, hidden=h, q_lora_rank=t.get("q_lora_rank")))
        mla_spec = _replace(mla_spec, sparse=True, indexer_bytes_per_token=indexer_entry_bytes(dsa.index_head_dim),
                            indexer_packed=True)
    first_dense = int(_get(t, "first_k_dense_replace", default=0))
    freq = int(_get(t, "moe_layer_freq", default=1))
    moe_params, moe = _moe(ctx) if t.get("num_experts") is not None else ([], None)
    dense = _mlp(h, ctx.inter, "mlp")
    norms = [Param(name="input_layernorm.weight", shape=(h,), part="norm"),
             Param(name="post_attention_layernorm.weight", shape=(h,), part="norm")]
    if t.get("attn_res_block_size") is not None:
        norms += [Param(name="self_attention_res_norm.weight", shape=(h,), part="norm"),
                  Param(name="mlp_res_norm.weight", shape=(h,), part="norm"),
                  Param(name="self_attention_res_proj.weight", shape=(1, h), part="norm"),
                  Param(name="mlp_res_proj.weight", shape=(1, h), part="norm")]
    # identical layers share one tuple (weights.py prices each distinct tuple once)
    cache: dict[tuple[bool, bool], tuple[Param, ...]] = {}
    specs, params = [], []
    for i in range(ctx.num_layers):
        is_kda = i in kda
        is_moe = moe is not None and i >= first_dense and i % freq == 0
        key = (is_kda, is_moe)
        if key not in cache:
            cache[key] = tuple((kda_params if is_kda else mla_params) + norms + (moe_params if is_moe else dense))
        layer = cache[key]
        if i == ctx.num_layers - 1 and t.get("attn_res_block_size") is not None:
            # KimiLinearModel: output_attn_res_norm / _proj on the last PP stage
            layer = layer + (Param(name="output_attn_res_norm.weight", shape=(h,), part="norm"),
                             Param(name="output_attn_res_proj.weight", shape=(1, h), part="norm"))
        params.append(layer)
        if is_kda:
            specs.append(LayerSpec(index=i, kind=LayerKind.MAMBA, mamba=state, is_moe=is_moe))
        else:
            specs.append(LayerSpec(index=i, kind=LayerKind.MLA, attention=mla_spec, is_moe=is_moe))
    notes = [
        "Kimi-K3 read from the vLLM 0.34 source only (nothing measured). Not counted: the attention-residual "
        "activations (prefix sums over attn_res_block_size blocks) beyond the fitted profile terms. vLLM 0.34's "
        "FlashKDA prefill workspace is counted with the weights: max-num-batched-tokens x heads/tp x 128 bf16, "
        "2 x max-num-seqs x heads/tp x 128 x 128 in the recurrent dtype, and the scratch view the compiled op "
        "get_workspace_size sizes ((cdiv(max-num-batched-tokens, 16) + max-num-seqs) x heads/tp x 13,824 bytes, "
        "read from the 0.34 wheel's _flashkda_C binary, not from Python source).",
    ]
    if kda:
        notes.append("Kimi-K3: speculative decoding's KDA buffers (RecoverSSM records, wider conv states) are not "
                     "modelled")
    extra: dict = {"buffer_params": ()}
    if dsa is not None:
        notes.append("Kimi-K3.1 DSA read from the vLLM 0.34 source only (nothing measured; the config was not seen "
                     "either): the indexer keeps fp8 keys (MXFP4 keys, --attention-config indexer_kv_dtype=mxfp4 on "
                     "SM10x, are not modelled, nor a speculative dense MLA draft's caches in the DSA block row); its "
                     "profile-run logits buffer is added on top of the fitted activation peak")
        if dsa.ignored_keys:
            notes.append("vLLM ignores these dsa_config keys (KimiLinearDSAConfig.from_dict warns): "
                         + ", ".join(dsa.ignored_keys))
        # KimiLinearModel.__init__: one topk_indices_buffer (max_num_batched_tokens, index_topk) int32
        extra["token_buffers"] = (Param(name="topk_indices_buffer", shape=(dsa.index_topk,), part="buffer",
                                        dtype="int32"),)
    extra["notes"] = tuple(notes)
    return tuple(specs), tuple(params), moe, extra


def flashkda_load_workspace(model: Any, cfg: Any, device: Any, pp_rank: int = 0) -> tuple[tuple[str, int], ...]:
    """What the KDA layers allocate at build time depending on the device and flags (inside "Model loading took").

    Fused-decode copies (vLLM v0.33.0 / v0.34.0 nvidia/kda.py:KimiK3DeltaAttention.__init__): when
    ``resolve_kda_decode_backend("auto")`` picks ``native`` (``is_fused_kda_decode_supported``: 12, 24, 48 or 96 heads
    a rank, head_dim 128, conv width 4, no speculative tokens, bfloat16 activations and conv state, a float32
    recurrent state, capability 9.0 or the 10.x / 12.x families), each KDA layer keeps float32
    ``decode_conv1d_weight`` (3, kernel, P / tp) and ``decode_norm_weight`` (head_dim). Speculative decoding is not
    modelled here (it is counted as none).

    FlashKDA prefill views, vLLM 0.34 only (``RuleSet.flashkda_prefill_workspace``):

    vLLM v0.34.0 vllm/models/kimi_k3/nvidia/kda.py:KimiK3DeltaAttention.__init__: when the prefill backend resolves
    to ``flashkda`` (``resolve_kda_prefill_backend`` "auto": CUDA capability major 9, 10 or 12, head_dim 128,
    bfloat16 activations, a float32 or bfloat16 recurrent state, a ``gate_lower_bound``), every KDA layer calls
    ``current_workspace_manager().get_simultaneous`` with (1, T, heads / tp, D) in the model dtype, twice
    (N, heads / tp, D, D) in the recurrent dtype and (``get_workspace_size(T, H, N)``,) uint8, T =
    max_num_batched_tokens, N = max_num_seqs: one grow-only buffer for all layers (vllm/v1/worker/workspace.py:
    ``WorkspaceManager``, each view rounded up to 256 bytes). vLLM 0.33 reserves nothing here.

    The last view's size comes from the compiled op ``torch.ops._flashkda_C.get_workspace_size`` (no Python source
    in the wheel): :func:`flashkda_scratch_bytes` reads its arithmetic from the v0.34.0 wheel's
    ``vllm/_flashkda_C.abi3.so`` (x86-64 disassembly of ``get_workspace_size(long, long, long)``).

    Kimi-K3.1 (DSA) on FLASHMLA_SPARSE: that backend reserves its own views in the same buffer while the model is
    built (families/deepseek_v32.py ``sparse_mla_load_workspace``, added by the planner); the buffer is the larger
    of the two requests, so only the FlashKDA bytes beyond it are added here.
    """
    from ...engines.vllm.rules.versions import for_version
    from ...rules.weights import pp_layer_split

    cc = getattr(device, "compute_capability", None)
    if getattr(device, "platform", "cuda") != "cuda" or cc is None:
        return ()
    text = model.hf_config.get("text_config") or model.hf_config
    lac = text.get("linear_attn_config") or {}
    start, end = pp_layer_split(model.num_hidden_layers, cfg.pp, cfg.pp_partition)[pp_rank]
    kda = sum(1 for layer in model.layers[start:end] if layer.mamba is not None)
    if not kda or not lac.get("num_heads") or not lac.get("head_dim"):
        return ()
    heads, d, kernel = int(lac["num_heads"]) // cfg.tp, int(lac["head_dim"]), int(lac.get("short_conv_kernel_size", 4))
    ssm = cfg.mamba_ssm_dtype or "float32"
    bf16 = cfg.model_dtype == "bfloat16"
    out: list[tuple[str, int]] = []
    if (heads in (12, 24, 48, 96) and d == 128 and kernel == 4 and bf16 and ssm == "float32"
            and (cc == (9, 0) or cc[0] in (10, 12))):
        out.append(("KDA fused-decode weight copies (float32)", kda * (3 * kernel * heads * d * 4 + d * 4)))
    rules = for_version(tuple(cfg.version[:3]), allow_older=True, platform=cfg.platform)
    known, scratch = flashkda_views(model, cfg, device, rules)
    if known:
        shared = _sparse_mla_reservation(model, cfg, device)
        if shared:  # one grow-only buffer: FLASHMLA_SPARSE's views are counted by the planner
            out.append(("FlashKDA prefill workspace beyond the FLASHMLA_SPARSE views (one shared buffer)",
                        max(known + scratch - shared, 0)))
        else:
            out.append(("FlashKDA prefill workspace (known views)", known))
            out.append(("FlashKDA prefill workspace (get_workspace_size scratch)", scratch))
    out += _sequence_parallel_mlps(model, cfg, text, start, end)
    return tuple(out)


def flashkda_scratch_bytes(tokens: int, heads: int, seqs: int) -> int:
    """``torch.ops._flashkda_C.get_workspace_size(T, H, N)`` of the vLLM v0.34.0 wheel (vllm/_flashkda_C.abi3.so,
    read from its x86-64 disassembly): ``(T // 16 rounded up + N) x H x 27 x 512`` bytes."""
    return (-(-tokens // 16) + seqs) * heads * 27 * 512


def _view(nbytes: int) -> int:
    return -(-nbytes // 256) * 256  # vLLM v0.34.0 vllm/v1/worker/workspace.py: round_up(actual, 256) per view


def flashkda_views(model: Any, cfg: Any, device: Any, rules: Any) -> tuple[int, int]:
    """``(known views, get_workspace_size scratch)`` bytes of the FlashKDA prefill request (0, 0 when none)."""
    text = model.hf_config.get("text_config") or model.hf_config
    lac = text.get("linear_attn_config") or {}
    if not (rules.flashkda_prefill_workspace and lac.get("num_heads") and _flashkda(model, cfg, device)):
        return 0, 0
    heads, d = int(lac["num_heads"]) // cfg.tp, int(lac["head_dim"])
    t, n = cfg.max_num_batched_tokens, cfg.max_num_seqs
    state_b = 4 if (cfg.mamba_ssm_dtype or "float32") == "float32" else 2
    return (_view(t * heads * d * 2) + 2 * _view(n * heads * d * d * state_b),
            _view(flashkda_scratch_bytes(t, heads, n)))


def _sparse_mla_reservation(model: Any, cfg: Any, device: Any) -> int:
    """FLASHMLA_SPARSE's load-time views of a Kimi-K3.1 (DSA) model, as the planner counts them (0 otherwise)."""
    from .deepseek_v32 import sparse_mla_load_workspace

    sparse = next((layer.attention for layer in model.layers if layer.attention and layer.attention.sparse), None)
    if sparse is None:
        return 0
    text = model.hf_config.get("text_config") or model.hf_config
    return sum(b for _, b in sparse_mla_load_workspace(
        tuple(cfg.version[:3]), platform=cfg.platform, device_capability=getattr(device, "compute_capability", None),
        kv_cache_dtype=cfg.kv_cache_dtype, heads_per_rank=model.num_attention_heads // cfg.tp,
        kv_lora_rank=int(text.get("kv_lora_rank") or 512), q_head_size=sparse.head_size,
        max_num_batched_tokens=cfg.max_num_batched_tokens, max_model_len=cfg.max_model_len))


def dsa_profile_workspace(model: Any, cfg: Any, device: Any, pp_rank: int = 0) -> tuple[tuple[str, int], ...]:
    """Kimi-K3.1: what the DSA indexer adds to the profile run's torch peak on a rank that holds a DSA layer
    (families/kimi_k3_dsa.py ``profile_workspace``); the shared buffer already holds the larger of the load-time
    requests (FlashKDA views, FLASHMLA_SPARSE views)."""
    from ...engines.vllm.rules.versions import for_version
    from ...rules.weights import pp_layer_split
    from .kimi_k3_dsa import dsa_config, profile_workspace

    text = model.hf_config.get("text_config") or model.hf_config
    start, end = pp_layer_split(model.num_hidden_layers, cfg.pp, cfg.pp_partition)[pp_rank]
    if not any(layer.attention is not None and layer.attention.indexer_packed for layer in model.layers[start:end]):
        return ()
    platform = getattr(device, "platform", "cuda")
    if platform != "cuda":
        from ...errors import InvalidConfig

        # vLLM v0.34.0 vllm/models/kimi_k3/nvidia/dsa.py:KimiK3DSAAttention.__init__ (NotImplementedError on ROCm)
        raise InvalidConfig("Kimi-K3.1 DSA requires the CUDA FlashMLA sparse / DeepGEMM indexer kernels; "
                            f"{'ROCm' if platform == 'rocm' else platform} is not supported",
                            hint="serve Kimi-K3.1 on an NVIDIA GPU (vramplan devices lists them)")
    dsa = dsa_config(text, model.num_hidden_layers, kda_layers(text, model.num_hidden_layers))
    if dsa is None:
        return ()
    rules = for_version(tuple(cfg.version[:3]), allow_older=True, platform=cfg.platform)
    known, scratch = flashkda_views(model, cfg, device, rules)
    load_buffer = max(known + scratch, _sparse_mla_reservation(model, cfg, device))
    return profile_workspace(dsa, max_model_len=cfg.max_model_len, max_num_seqs=cfg.max_num_seqs,
                             max_num_batched_tokens=cfg.max_num_batched_tokens,
                             device_capability=getattr(device, "compute_capability", None),
                             load_buffer_bytes=load_buffer)


def _flashkda(model: Any, cfg: Any, device: Any) -> bool:
    """``resolve_kda_prefill_backend("auto") == "flashkda"`` (vLLM v0.33.0 / v0.34.0 nvidia/kda.py:
    is_flashkda_supported: CUDA capability major 9, 10 or 12, head_dim 128, bfloat16 activations, a float32 or
    bfloat16 recurrent state, a ``gate_lower_bound``)."""
    cc = getattr(device, "compute_capability", None)
    text = model.hf_config.get("text_config") or model.hf_config
    lac = text.get("linear_attn_config") or {}
    return bool(getattr(device, "platform", "cuda") == "cuda" and cc is not None and cc[0] in (9, 10, 12)
                and cfg.model_dtype == "bfloat16" and (cfg.mamba_ssm_dtype or "float32") in ("float32", "bfloat16")
                and int(lac.get("head_dim") or 0) == 128 and lac.get("gate_lower_bound") is not None)


def checkpoint_blocks(model: Any, cfg: Any, device: Any) -> int:
    """KimiK3DeltaAttention.get_kv_cache_spec: ``num_prefill_checkpoint_blocks = 1`` when FlashKDA prefills
    (``kda_prefill_checkpoint_alignment("flashkda")`` is 16), counted per request in mamba ``align`` mode."""
    return 1 if _flashkda(model, cfg, device) else 0


def _sequence_parallel_mlps(model: Any, cfg: Any, text: dict, start: int, end: int) -> list[tuple[str, int]]:
    """Sequence parallelism replicates the dense MLP and the shared experts (vLLM v0.34.0 nvidia/model.py:
    ``KimiDecoderLayer.use_sequence_parallel`` = PP 1, expert parallel, TP > 1 and DP > 1 (or MegaMoE); ``KimiMLP``
    then builds both projections with ``disable_tp`` unless ``VLLM_KIMI_K3_SHARD_SP_SHARED_EXPERT`` is set, taken
    as unset here): the bytes above the TP shard the description prices. Both stay in the model dtype (the
    checkpoint's ignore list; Mxfp4Config leaves linears unquantized)."""
    from ..quant import dtype_bytes

    tp = cfg.tp
    if not (cfg.pp == 1 and cfg.expert_parallel and tp > 1 and cfg.dp > 1):
        return []
    h = int(text["hidden_size"])
    b = dtype_bytes(cfg.model_dtype)

    def extra(inter: int) -> int:
        return int(((2 * inter - -(-2 * inter // tp)) + (inter - -(-inter // tp))) * h * b)

    shared = int(text.get("moe_intermediate_size") or 0) * int(text.get("num_shared_experts") or 0)
    total = 0
    for layer in model.layers[start:end]:
        if layer.is_moe:
            total += extra(shared) if shared else 0
        else:
            total += extra(int(text.get("intermediate_size") or 0))
    return [("dense MLP and shared experts replicated (sequence parallel)", total)] if total else []


def config_fix(raw: dict, resolved: dict) -> dict:
    """KimiK3ForConditionalGenerationConfig.verify_and_update_model_config (vLLM v0.34.0 / v0.33.0
    model_executor/models/config.py): compressed-tensors ``mxfp4-pack-quantized`` becomes ``quant_method="mxfp4"``
    for ``KimiK3ForConditionalGeneration`` (not for the K3.1 alias, absent from that table)."""
    archs = resolved.get("architectures") or raw.get("architectures") or []
    if not archs or archs[0] != _ARCH:
        return resolved
    out = dict(resolved)
    for holder in (out, "text_config"):
        cfg = out if holder is out else out.get(holder)
        if not isinstance(cfg, dict):
            continue
        q = cfg.get("quantization_config")
        if isinstance(q, dict) and q.get("quant_method") == "compressed-tensors" and \
                q.get("format") == "mxfp4-pack-quantized":
            q = dict(q, quant_method="mxfp4")
            if holder is out:
                out["quantization_config"] = q
            else:
                out["text_config"] = dict(cfg, quantization_config=q)
    return out


# KimiK3VisionConfig's defaults (vllm/transformers_utils/configs/kimi_k3.py)
_VISION_DEFAULTS: dict[str, Any] = {
    "vt_hidden_size": 1024, "vt_num_attention_heads": 12, "vt_intermediate_size": 4096, "vt_num_hidden_layers": 27,
    "qkv_hidden_size": 1536, "patch_size": 14, "merge_kernel_size": (2, 2), "init_pos_emb_height": 64,
    "init_pos_emb_width": 64, "init_pos_emb_time": 4, "attn_bias": False, "linear_bias": False,
    "norm_type": "rmsnorm", "patch_embed_proj_bias": False, "mm_projector_type": "patchmergerv2"}


def vision_spec(cfg: dict, family: str) -> VisionSpec:
    """MoonViT-3D as Kimi-K3 configures it (``qkv_hidden_size``, RMSNorm, no biases, the ``patchmergerv2``
    projector by default): ``kimi_k25.moonvit3d_spec``, the same vLLM module as Kimi-K2.5's tower."""
    from .kimi_k25 import moonvit3d_spec

    return moonvit3d_spec(cfg, family, model="Kimi-K3", defaults=_VISION_DEFAULTS,
                          projectors=("patchmergerv2", "patchmerger"))


def _for_release(model, rules):
    """Kimi-K3.1 (DSA) exists from the release with ``RuleSet.kimi_k3_dsa`` (families/kimi_k3_dsa.py)."""
    from .kimi_k3_dsa import for_release

    return for_release(model, rules)


register(Family(
    name="kimi_k3",
    builder=build,
    for_release=_for_release,
    profile_workspace=dsa_profile_workspace,
    vision=vision_spec,
    architectures={_ARCH: True, _ALIAS: True},
    config_fix=config_fix,
    load_workspace=flashkda_load_workspace,
    mamba_checkpoint_blocks=checkpoint_blocks,
    buffers=lambda ctx, layers: (),  # NoPE MLA: no rotary cache (MultiHeadLatentAttention use_rope=False)
    # vllm/model_executor/models/registry.py: KimiK3ForConditionalGeneration absent from 0.26.0, present in 0.31.0
    # to 0.34.0 (0.27-0.30 not read); the tensors read in 0.34.0 match 0.33.0 (nvidia/kda.py, mla.py, model.py).
    # KimiK31ForConditionalGeneration: absent from 0.33.0, present in 0.34.0.
    introduced={_ARCH: ((0, 33, 0), "read in the 0.34 source; 0.33's layers allocate the same tensors; 0.31 and "
                                    "0.32 register it but were not read"),
                _ALIAS: ((0, 34, 0), "absent from 0.33.0's registry, present in 0.34.0")},
))
register_vision(VisionTower(name="kimi_k3", build=vision_spec, model_types=("kimi_k3",),
                            architectures=(_ARCH, _ALIAS)))
