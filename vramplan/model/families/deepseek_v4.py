"""DeepSeek-V4 (``DeepseekV4ForCausalLM``: V4-Flash, V4-Pro, and their FP8 re-exports), as vLLM v0.34.0 builds it
on CUDA (vllm/models/deepseek_v4/nvidia/model.py, attention.py, compressor.py; the CUDA attention class is
``nvidia/flashmla.py:DeepseekV4FlashMLAAttention`` except on SM12x). Read from source only; see
docs/notes-deepseek-v4-kimi-k3.md for the worked example.

Layers (``layer_types`` from ``compress_ratios``: 0 = sliding only, 4 = C4, 128 = C128):

- every layer: a 64-token sliding-window cache (``DeepseekV4SWACache``, window ``sliding_window``);
- C4 / C128 layers: a compressed MLA cache (``tokens_per_state`` = ratio, block ``cache_config.block_size``) and a
  compressor with a float32 state cache (blocks of 4 / 8 tokens, window 8 / 128) and weights (``ape`` float32,
  ``fused_wkv_wgate`` bf16 unquantized, ``norm``);
- C4 layers: a lightning indexer (``wq_b`` quantized, ``weights_proj`` bf16, its own compressor) and its K cache
  (``index_head_dim + index_head_dim // 128 x 4`` uint8 per state, 4 tokens per state);
- attention weights: ``fused_wqa_wkv`` (replicated), ``wq_b`` (column), ``wo_a`` (grouped, column), ``wo_b``
  (row), ``q_norm``, ``kv_norm``, ``attn_sink`` (float32, heads padded to 64 or 128 by the FlashMLA kernel);
- hyper-connections (``hc_mult`` streams): ``hc_{attn,ffn}_fn`` float32 ((2 + hc) x hc, hc x hidden),
  ``hc_{attn,ffn}_base`` float32, ``hc_{attn,ffn}_scale`` float32 (3); two RMSNorms;
- MoE (``DeepseekV4MoE``): bf16 gate, ``tid2eid`` int32 (vocab x top_k) on the hash layers, else a float32
  ``e_score_correction_bias``; one shared expert (``DeepseekV4MLP``, FP8 block); routed experts in MXFP4
  (``quant_config.py:DeepseekV4FP8Config`` with ``expert_dtype="fp4"``), priced as loaded (uint8 pairs + one
  e8m0 scale per 32: the MoE backend's own re-layout is not modelled);
- model: ``hc_head_{fn,base,scale}`` float32, ``topk_indices_buffer`` (max_num_batched_tokens x index_topk, int32),
  two float32 rope tables (``DeepseekV4ScalingRotaryEmbedding``: sliding-only layers at ``rope_theta``, compressed
  layers at ``compress_rope_theta``; positions ``original_max_position x factor``, rotary dim qk_rope_head_dim).

The MTP layer (``num_nextn_predict_layers``) is built only with speculative decoding (``nvidia/mtp.py``).
"""

from __future__ import annotations

from typing import Any

from ..description import AttentionSpec, ExtraCache, LayerKind, LayerSpec, MoESpec, Param, Shard
from . import Family, register

__all__ = ["v4_engine", "compress_ratios"]

FP8_DS_MLA_V4_BYTES = 584
"""448 fp8 NoPE + 64 bf16 RoPE (128 B) + 7 ue8m0 scales and a pad byte (vllm/v1/attention/backends/mla/flashmla_sparse.py)."""


def compress_ratios(t: dict) -> list[int]:
    """Per-layer compression (vLLM v0.34.0 vllm/transformers_utils/deepseek_v4_utils.py:get_compress_ratios)."""
    rates = t.get("compress_rates")
    types = t.get("layer_types")
    if isinstance(rates, dict) and isinstance(types, list):
        return [int(rates.get(x, 0)) for x in types]
    raw = t.get("compress_ratios")
    if isinstance(raw, list):
        return [int(x) for x in raw][: int(t["num_hidden_layers"])]
    raise KeyError("compress_ratios")


def _num_hash_layers(t: dict) -> int:
    types = t.get("mlp_layer_types")
    if isinstance(types, list):
        return sum(1 for x in types if x == "hash_moe")
    return int(t.get("num_hash_layers") or 0)


def _caches(t: dict, ratio: int) -> tuple[ExtraCache, ...]:
    head = int(t["head_dim"])
    window = int(t["sliding_window"])
    out = [ExtraCache(role="swa", kind="sliding", head_size=head, dtype="kv", ds_mla_bytes=FP8_DS_MLA_V4_BYTES,
                      block_size=64, sliding_window=window)]
    if ratio > 1:
        coff = 2 if ratio == 4 else 1
        out.append(ExtraCache(role="mla", kind="full", head_size=head, dtype="kv", ds_mla_bytes=FP8_DS_MLA_V4_BYTES,
                              tokens_per_state=ratio))
        out.append(ExtraCache(role="compressor", kind="sliding", head_size=2 * coff * head, dtype="float32",
                              block_size=4 if ratio == 4 else 8, sliding_window=coff * ratio))
    if ratio == 4:
        ih = int(t["index_head_dim"])
        out.append(ExtraCache(role="indexer", kind="full", head_size=ih + ih // 128 * 4, dtype="uint8",
                              tokens_per_state=4))
        out.append(ExtraCache(role="indexer_compressor", kind="sliding", head_size=2 * 2 * ih, dtype="float32",
                              block_size=4, sliding_window=8))
    return tuple(out)


def _build(ctx: Any):
    t, h = ctx.text, ctx.hidden
    heads, head = ctx.num_heads, int(t["head_dim"])
    q_lora, o_lora, groups = int(t["q_lora_rank"]), int(t["o_lora_rank"]), int(t["o_groups"])
    hc = int(t.get("hc_mult", 4))
    mix = (2 + hc) * hc
    ratios = compress_ratios(t)
    n_hash = _num_hash_layers(t)
    experts, top_k = int(t["n_routed_experts"]), int(t["num_experts_per_tok"])
    moe_inter = int(t["moe_intermediate_size"])
    shared = moe_inter * int(t.get("n_shared_experts") or 0)
    ih, in_heads = int(t["index_head_dim"]), int(t["index_n_heads"])
    vocab = int(t["vocab_size"])
    attn = [
        Param(name="attn.fused_wqa_wkv.weight", shape=(q_lora + head, h), part="attention", quantizable=True),
        Param(name="attn.q_norm.weight", shape=(q_lora,), part="norm"),
        Param(name="attn.kv_norm.weight", shape=(head,), part="norm"),
        Param(name="attn.wq_b.weight", shape=(heads * head, q_lora), shard=Shard.COLUMN, part="attention",
              quantizable=True),
        Param(name="attn.wo_a.weight", shape=(groups * o_lora, heads * head // groups), shard=Shard.COLUMN,
              part="attention", quantizable=True),
        Param(name="attn.wo_b.weight", shape=(h, groups * o_lora), shard=Shard.ROW, part="attention",
              quantizable=True),
        # make_attention_sink(padded heads): FlashMLA pads the local heads to 64 (<= 64) or 128 (more than 64 heads
        # on one rank, i.e. V4-Pro at TP 1, which does not fit one GPU anyway)
        Param(name="attn.attn_sink", shape=(64,), part="attention", dtype="float32"),
    ]
    decoder = [
        Param(name="attn_norm.weight", shape=(h,), part="norm"),
        Param(name="ffn_norm.weight", shape=(h,), part="norm"),
        Param(name="hc_attn_fn+hc_ffn_fn", shape=(2, mix, hc * h), part="other", dtype="float32"),
        Param(name="hc_attn_base+hc_ffn_base", shape=(2, mix), part="other", dtype="float32"),
        Param(name="hc_attn_scale+hc_ffn_scale", shape=(2, 3), part="other", dtype="float32"),
    ]

    def compressor(prefix: str, ratio: int, dim: int) -> list[Param]:
        coff = 2 if ratio == 4 else 1
        return [
            Param(name=f"{prefix}.ape", shape=(ratio, coff * dim), part="attention", dtype="float32"),
            Param(name=f"{prefix}.fused_wkv_wgate.weight", shape=(2 * coff * dim, h), part="attention"),
            Param(name=f"{prefix}.norm.weight", shape=(dim,), part="norm"),
        ]

    indexer = [
        Param(name="attn.indexer.wq_b.weight", shape=(in_heads * ih, q_lora), part="attention", quantizable=True),
        Param(name="attn.indexer.weights_proj.weight", shape=(in_heads, h), part="attention"),
    ] + compressor("attn.indexer.compressor", 4, ih)
    moe_common = [
        Param(name="ffn.gate.weight", shape=(experts, h), part="moe"),
        Param(name="ffn.experts.w13_weight", shape=(experts, 2 * moe_inter, h), shard=Shard.EXPERT_COLUMN,
              part="moe", quantizable=True),
        Param(name="ffn.experts.w2_weight", shape=(experts, h, moe_inter), shard=Shard.EXPERT_ROW, part="moe",
              quantizable=True),
    ]
    if shared:
        moe_common += [
            Param(name="ffn.shared_experts.gate_up_proj.weight", shape=(2 * shared, h), shard=Shard.COLUMN,
                  part="moe", quantizable=True),
            Param(name="ffn.shared_experts.down_proj.weight", shape=(h, shared), shard=Shard.ROW, part="moe",
                  quantizable=True),
        ]
    hash_moe = moe_common + [Param(name="ffn.gate.tid2eid", shape=(vocab, top_k), part="moe", dtype="int32")]
    plain_moe = moe_common + [Param(name="ffn.gate.e_score_correction_bias", shape=(experts,), part="moe",
                                    dtype="float32")]
    specs, params = [], []
    cache: dict[tuple[int, bool], tuple[Param, ...]] = {}
    for i, ratio in enumerate(ratios):
        spec = AttentionSpec(num_kv_heads=1, head_size=head, extra_caches=_caches(t, ratio))
        specs.append(LayerSpec(index=i, kind=LayerKind.MLA, attention=spec, is_moe=True))
        key = (ratio, i < n_hash)
        if key not in cache:
            p = list(attn)
            if ratio > 1:
                p += compressor("attn.compressor", ratio, head)
            if ratio == 4:
                p += indexer
            cache[key] = tuple(p + decoder + (hash_moe if i < n_hash else plain_moe))
        params.append(cache[key])
    moe = MoESpec(num_experts=experts, top_k=top_k, intermediate_size=moe_inter,
                  num_shared_experts=int(t.get("n_shared_experts") or 0), shared_intermediate_size=shared)
    rope = int(t.get("qk_rope_head_dim", 64))
    buffers = []
    rp = t.get("rope_parameters") or t.get("rope_scaling") or {}
    comp = rp.get("compress") if isinstance(rp.get("compress"), dict) else rp
    if any(r <= 1 for r in ratios):  # deepseek_yarn, factor 1, original = max_position_embeddings
        buffers.append(Param(name="rotary_emb[main].cos_sin_cache", shape=(ctx.max_pos, rope), part="buffer",
                             dtype="float32"))
    if any(r > 1 for r in ratios):
        positions = int(int(comp.get("original_max_position_embeddings") or ctx.max_pos) * float(comp.get("factor") or 1))
        buffers.append(Param(name="rotary_emb[compress].cos_sin_cache", shape=(positions, rope), part="buffer",
                             dtype="float32"))
    buffers.append(Param(name="hc_head_fn+base+scale", shape=(hc * hc * h + hc + 1,), part="buffer", dtype="float32"))
    extra = {
        "token_buffers": (Param(name="topk_indices_buffer", shape=(int(t["index_topk"]),), part="buffer",
                                dtype="int32"),),
        "buffer_params": tuple(buffers),
    }
    return tuple(specs), tuple(params), moe, extra


def v4_engine(platform: str, device_capability: tuple[int, int] | None, kv_cache_dtype: str,
              user_block_size: int | None) -> tuple[str, int, list[str]]:
    """``(kv_cache_dtype, block_size, notes)`` for DeepSeek-V4 on CUDA.

    - vLLM v0.34.0 vllm/models/deepseek_v4/nvidia/model.py:_select_dsv4_attn_cls: FlashMLA (``fp8_ds_mla`` layout)
      except on SM12x (FlashInfer, plain rows); attention.py:_resolve_dsv4_kv_cache_dtype turns ``auto``/``fp8*``
      into ``fp8_ds_mla`` and refuses a bf16 cache on the FlashMLA path.
    - block size: the smallest size FLASHMLA_SPARSE_DSV4 ([256]), DEEPSEEK_SPARSE_SWA (multiple of 32),
      CompressorBackend (any) and DEEPSEEK_V4_INDEXER ([256]) all accept: 256
      (vllm/platforms/interface.py:Platform._preferred_block_size_for_backends).
    """
    from ...errors import InvalidConfig, UnsupportedError

    if platform != "cuda":
        raise UnsupportedError(f"DeepSeek-V4 is modelled for CUDA only (asked for {platform})",
                               hint="plan it on an NVIDIA device")
    major = device_capability[0] if device_capability else 9
    notes: list[str] = []
    kv = kv_cache_dtype
    if major != 12:
        if kv == "auto":
            kv = "fp8"
        if not kv.startswith("fp8"):
            raise InvalidConfig(
                "DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got " + kv_cache_dtype + ". Please set "
                "`--kv-cache-dtype fp8` or select a backend that supports bfloat16 KV cache.",
                hint="use --kv-cache-dtype fp8 (or auto)")
        if kv != "fp8_ds_mla":
            kv = "fp8_ds_mla"
            notes.append("vLLM: Using DeepSeek's fp8_ds_mla KV cache format (584 bytes per token and cache)")
    notes.append("DeepSeek-V4 read from the vLLM 0.34 source only: routed MXFP4 experts priced as loaded (the MoE "
                 "backend's re-layout not modelled); KV packing not yet checked against a real startup")
    return kv, user_block_size if user_block_size is not None else 256, notes


register(Family(
    name="deepseek_v4",
    builder=_build,
    architectures={"DeepseekV4ForCausalLM": False},
    text_model_types=("deepseek_v4",),
    introduced={"DeepseekV4ForCausalLM": ((0, 34, 0), "read from the 0.34 source; vLLM registers it from 0.26, "
                                                      "0.26-0.33 not read")},
))
