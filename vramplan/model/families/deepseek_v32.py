"""DeepSeek Sparse Attention (DSA): DeepSeek-V3.2 and GLM-5 / 5.1 / 5.2 (``GlmMoeDsaForCausalLM``).

Read in vLLM v0.34.0 (the layer classes are the same in v0.19.0, v0.26.0 and v0.33.0 for what memory sees):

- ``vllm/models/deepseek_v32/nvidia/model.py:DeepseekV32DecoderLayer`` / ``DeepseekV32Model`` (the CUDA entry,
  ``vllm/models/deepseek_v32/__init__.py``: GLM-5's ``GlmMoeDsaForCausalLM`` is the same class);
- ``vllm/models/deepseek_v32/attention.py:DeepseekV32Attention`` (MLA: ``fused_qkv_a_proj`` = q_a_proj +
  kv_a_proj_with_mqa, ``q_b_proj``, ``kv_b_proj``, ``o_proj``, the latent norms) and ``DeepseekV32Indexer``
  (``wq_b`` ReplicatedLinear(q_lora_rank, index_n_heads x index_head_dim) with the checkpoint quantization,
  ``wk_weights_proj`` MergedColumnParallelLinear(hidden, [index_head_dim, index_n_heads], quant_config=None,
  disable_tp=True), ``k_norm`` LayerNorm(index_head_dim) in float32 with a bias);
- ``vllm/model_executor/models/utils.py:compute_skip_topk_layers``: layers that reuse the previous layer's top-k
  (GLM-5.2 ``indexer_types == "shared"``) build no indexer: no indexer weights, no indexer cache;
- ``vllm/model_executor/models/deepseek_v2.py:DeepseekV32IndexerCache.get_kv_cache_spec``: the indexer K cache is
  an ``MLAAttentionSpec`` of ``index_head_dim + index_head_dim // 128 x 4`` uint8 per token (fp8 keys and one
  float32 scale per 128), block size = ``cache_config.block_size``;
- the MoE block is ``DeepseekV2MoE`` (router, float32 ``e_score_correction_bias`` with ``noaux_tc``, routed
  experts, shared experts after ``first_k_dense_replace``);
- MTP / next-n layers (``num_nextn_predict_layers``): ``DeepseekV32Model.load_weights`` skips them and
  ``make_layers`` builds ``num_hidden_layers`` layers only, so without speculative decoding they are not
  allocated;
- ``DeepseekV32Model.__init__`` allocates ``topk_indices_buffer`` (max_num_batched_tokens x index_topk, int32)
  at init, on every rank: it is counted in the weights figure (``Model loading took``).

The KV cache (see :func:`sparse_mla_engine`): one MLA latent per token (kv_lora_rank + qk_rope_head_dim; bf16,
or the 656-byte ``fp8_ds_mla`` record) plus the indexer record, both with the same block size, so vLLM puts
both caches of every layer in one uniform-type group (``UniformTypeKVCacheSpecs``): a block costs the sum of
the pages.
"""

from __future__ import annotations

from typing import Any

from ..description import AttentionSpec, LayerKind, LayerSpec, Param, Shard
from . import Family, register

__all__ = ["skip_topk_layers", "indexer_bytes_per_token", "sparse_mla_engine", "FP8_DS_MLA_BYTES"]

FP8_DS_MLA_BYTES = 656
"""vLLM v0.34.0 vllm/v1/attention/backend.py:MLAAttentionImpl.get_fp8_ds_mla_row_bytes (V3.2 geometry):
512 fp8 NoPE values + 4 float32 scales (one per 128) + 64 bf16 RoPE values = 512 + 16 + 128 bytes
(layout in vllm/v1/attention/backends/mla/flashmla_sparse.py)."""

_QUANT_BLOCK = 128  # DeepseekV32Indexer.quant_block_size


def skip_topk_layers(text: dict, num_layers: int) -> set[int]:
    """Layers with no indexer of their own (vLLM v0.34.0 model_executor/models/utils.py:compute_skip_topk_layers)."""
    if "index_topk" not in text:
        return set()
    types = text.get("indexer_types")
    if types is not None:
        return {i for i, t in enumerate(types) if t == "shared"}
    freq = int(text.get("index_topk_freq") or 1)
    pattern = text.get("index_topk_pattern")
    offset = int(text.get("index_skip_topk_offset", 2))
    out = set()
    for i in range(num_layers):
        if pattern is None:
            if max(i - offset + 1, 0) % freq != 0:
                out.add(i)
        elif i < len(pattern) and pattern[i] == "S":
            out.add(i)
    return out


def indexer_bytes_per_token(index_head_dim: int) -> int:
    """``index_head_dim`` fp8 values + one float32 scale per 128 (DeepseekV32Indexer: ``head_dim + head_dim // 128 * 4``)."""
    return index_head_dim + index_head_dim // _QUANT_BLOCK * 4


def _build(ctx: Any):
    from .deepseek_v2 import build as _deepseek_layers

    specs, params, moe = _deepseek_layers(ctx)
    t, h = ctx.text, ctx.hidden
    n_heads = int(t["index_n_heads"])
    head = int(t["index_head_dim"])
    q_lora = int(t["q_lora_rank"])
    indexer = (
        Param(name="self_attn.indexer.wq_b.weight", shape=(n_heads * head, q_lora), part="attention",
              quantizable=True),
        Param(name="self_attn.indexer.wk_weights_proj.weight", shape=(head + n_heads, h), part="attention"),
        Param(name="self_attn.indexer.k_norm.weight+bias", shape=(2 * head,), part="norm", dtype="float32"),
    )
    skip = skip_topk_layers(t, ctx.num_layers)
    per_token = indexer_bytes_per_token(head)
    out_specs, out_params = [], []
    cache: dict[tuple[int, bool], tuple[Param, ...]] = {}
    for spec, layer_params in zip(specs, params):
        has_indexer = spec.index not in skip
        a = spec.attention
        assert a is not None
        attn = AttentionSpec(num_kv_heads=1, head_size=a.head_size, sparse=True,
                             indexer_bytes_per_token=per_token if has_indexer else 0)
        out_specs.append(LayerSpec(index=spec.index, kind=LayerKind.MLA, attention=attn, is_moe=spec.is_moe))
        key = (id(layer_params), has_indexer)
        if key not in cache:  # share tuples between identical layers (weights_per_rank prices each once)
            cache[key] = tuple(layer_params) + (indexer if has_indexer else ())
        out_params.append(cache[key])
    rope = int(t.get("qk_rope_head_dim", 64))
    extra = {
        "token_buffers": (
            Param(name="topk_indices_buffer", shape=(int(t["index_topk"]),), part="buffer", dtype="int32"),
        ),
        # the lightning indexer has its own rotary embedding (get_rope with is_neox_style = not
        # indexer_rope_interleave); get_rope caches by key, so it is a second cos/sin cache only when its
        # style differs from the MLA rope (is_neox_style=False): DeepSeek-V3.2 yes, GLM-5 (interleave) no
        "extra_rope_copies": 0 if t.get("indexer_rope_interleave") else 1,
        "rope_dim": rope,
    }
    return tuple(out_specs), tuple(out_params), moe, extra


def sparse_mla_engine(version: tuple[int, int, int], platform: str, device_capability: tuple[int, int] | None,
                      kv_cache_dtype: str, user_block_size: int | None, model_type: str,
                      ) -> tuple[str, int | None, list[str]]:
    """``(kv_cache_dtype, block_size or None to keep the default, notes)`` for a DSA model.

    - vLLM v0.34.0 vllm/model_executor/models/config.py:GlmMoeDsaForCausalLM.verify_and_update_config: GLM-5 on
      SM10x turns ``auto`` into ``fp8_e4m3``; DeepseekV32ForCausalLM turns ``bfloat16`` into ``auto``.
    - vllm/platforms/cuda.py:_get_backend_priorities: on SM90 the sparse MLA backends are FLASH_ATTN_MLA_SPARSE
      (bf16 only) then FLASHMLA_SPARSE; on SM10x a quantized cache prefers FLASHINFER_MLA_SPARSE.
    - vllm/model_executor/layers/attention/mla_attention.py:_canonicalize_sparse_mla_kv_cache_dtype:
      FLASHMLA_SPARSE stores any fp8 dtype as ``fp8_ds_mla`` (656 bytes per token).
    - vllm/platforms/interface.py:Platform._preferred_block_size_for_backends: the smallest block every backend
      accepts; the indexer backend (vllm/v1/attention/backends/mla/indexer.py:DeepseekV32IndexerBackend) takes
      only 64 on CUDA and every sparse MLA backend a multiple of 32 or 64, so the block is 64.
    """
    notes: list[str] = []
    major = device_capability[0] if device_capability else 9
    kv = kv_cache_dtype
    if kv == "bfloat16":
        kv = "auto"
    if platform != "cuda":
        notes.append(f"sparse MLA (DSA) on {platform}: vramplan keeps the platform's block size; the sparse "
                     "backends of this platform were not read")
        return kv, None, notes
    if model_type == "glm_moe_dsa" and kv == "auto" and major == 10 and version >= (0, 33, 0):
        kv = "fp8_e4m3"
        notes.append("vLLM: Using fp8 kv-cache for GlmMoeDsaForCausalLM on SM10x")
    quantized = kv not in ("auto", "float16", "bfloat16")
    if quantized and kv != "fp8_ds_mla" and not kv.startswith("nvfp4") and major != 10:
        # SM90: FLASH_ATTN_MLA_SPARSE takes bf16 only; FLASHMLA_SPARSE serves fp8 as fp8_ds_mla
        kv = "fp8_ds_mla"
        notes.append("sparse MLA with an fp8 KV cache on SM90: FLASHMLA_SPARSE stores it as fp8_ds_mla "
                     f"({FP8_DS_MLA_BYTES} bytes per token: 512 fp8 NoPE + 4 float32 scales + 64 bf16 RoPE)")
    block = user_block_size if user_block_size is not None else 64
    return kv, block, notes


register(Family(
    name="deepseek_v32",
    builder=_build,
    architectures={"DeepseekV32ForCausalLM": False, "GlmMoeDsaForCausalLM": False},
    text_model_types=("deepseek_v32", "glm_moe_dsa"),
    # vllm/model_executor/models/registry.py of the wheels read: DeepseekV32ForCausalLM is in 0.12.0 (0.10.x and
    # 0.11.x were not available to read); GlmMoeDsaForCausalLM is absent from 0.15.0 and present in 0.16.0
    introduced={
        "DeepseekV32ForCausalLM": ((0, 12, 0), "first release read that registers it; 0.10-0.11 not read"),
        "GlmMoeDsaForCausalLM": ((0, 16, 0), "absent from 0.15.0, present in 0.16.0"),
    },
))


_WORKSPACE_VIEW_ALIGN = 256  # vLLM v0.19.0 .. v0.34.0 vllm/v1/worker/workspace.py (round_up(actual, 256) per view)


def sparse_mla_load_workspace(version: tuple[int, int, int], *, platform: str, device_capability: tuple[int, int] | None,
                              kv_cache_dtype: str, heads_per_rank: int, kv_lora_rank: int, q_head_size: int,
                              max_num_batched_tokens: int, max_model_len: int) -> tuple[tuple[str, int], ...]:
    """The shared workspace FLASHMLA_SPARSE reserves while the model is built (so inside "Model loading took").

    ``FlashMLASparseImpl.__init__`` calls ``current_workspace_manager().get_simultaneous`` (one buffer for all
    layers, each view rounded up to 256 bytes), vLLM vllm/v1/attention/backends/mla/flashmla_sparse.py:
    - v0.19.0 / v0.26.0: ``q_concat`` (max_num_batched_tokens, heads, 576) bf16, plus with ``fp8_ds_mla`` the prefill
      workspace (5 x max_model_len, 576) bf16 (``get_prefill_workspace_size``);
    - v0.33.0 / v0.34.0: ``q_concat`` (heads rounded up to 64 unless the cache is quantized), and with
      ``fp8_ds_mla`` the prefill workspace (factor x max_model_len, 576) with factor 5 up to 256K tokens else 2
      (vllm/config/vllm.py), and (tokens, pad64(heads), 576), (tokens, pad64(heads), kv_lora_rank),
      (tokens, heads, kv_lora_rank), all bf16.
    Which backend holds the layer: SM90 (0.26+) runs a bf16 cache on FLASH_ATTN_MLA_SPARSE (no reservation) and
    fp8 on FLASHMLA_SPARSE; 0.19 has FLASHMLA_SPARSE only on SM90; SM10x runs fp8 (not fp8_ds_mla) on
    FLASHINFER_MLA_SPARSE (no reservation modelled).
    """
    if platform != "cuda":
        return ()
    major = device_capability[0] if device_capability else 9
    ds_mla = kv_cache_dtype == "fp8_ds_mla"
    if major == 10:
        flashmla = ds_mla or kv_cache_dtype in ("auto", "bfloat16") and heads_per_rank > 16
    elif major == 9:
        flashmla = ds_mla or version < (0, 26, 0)
    else:
        flashmla = False
    if not flashmla:
        return ()
    t, h = max_num_batched_tokens, heads_per_rank
    b = 2  # bf16
    new = version >= (0, 33, 0)
    pad = -(-h // 64) * 64
    specs = [t * (pad if new and not ds_mla else h) * q_head_size * b]
    if ds_mla:
        factor = (5 if max_model_len <= 256 * 1024 else 2) if new else 5
        specs.append(factor * max_model_len * q_head_size * b)
        if new:
            specs += [t * pad * q_head_size * b, t * pad * kv_lora_rank * b, t * h * kv_lora_rank * b]
    total = sum(-(-x // _WORKSPACE_VIEW_ALIGN) * _WORKSPACE_VIEW_ALIGN for x in specs)
    return (("FLASHMLA_SPARSE workspace reserved while the model is built (read from source)", total),)
