"""SGLang's DeepSeek Sparse Attention (DSA) KV pool: DeepSeek-V3.2 (``DeepseekV32ForCausalLM``) and GLM-5
(``GlmMoeDsaForCausalLM``).

Read in sglang 0.5.17 and 0.5.23:

- ``srt/configs/model_config.py:is_deepseek_dsa``: the architecture is on SGLang's list and the config has
  ``index_topk``; ``get_dsa_index_head_dim`` (``index_head_dim``), ``get_dsa_index_kpool`` (``index_kpool``, 1;
  0.5.23 only), ``dsa_layer_skips_topk``.
- ``srt/arg_groups/overrides.py:_dsa_kv_cache_dtype_default``: ``--kv-cache-dtype auto`` becomes ``fp8_e4m3`` on
  SM >= 10 (0.5.23: unless the config has ``learnable_sink``) and ``bfloat16`` below (Hopper); ``bf16`` is read as
  ``bfloat16``; anything else is refused ("DeepSeek DSA only supports bf16/bfloat16 or fp8_e4m3 kv_cache_dtype").
- ``_dsa_split_backend_resolution``: fp8 -> ``trtllm`` (SM >= 10) or ``flashmla_kv`` (Hopper) for both phases;
  bfloat16 -> prefill ``flashmla_sparse``, decode ``trtllm`` (SM >= 10) or ``fa3``; GLM fp8 on SM 12 ->
  ``flashinfer_sparse_mla``; ROCm: ``triton`` (0.5.23) / ``tilelang`` (0.5.17).
- ``srt/arg_groups/model_overrides/deepseek_v2.py:_deepseek_family_overrides`` (0.5.17
  ``overrides.py``): attention backend ``dsa``, page size ``64 x index_kpool`` on CUDA (0.5.17: 64).
- ``srt/mem_cache/kv_cache_configurator.py:calculate_mla_kv_cache_dim``: the latent row is
  ``kv_lora_rank + qk_rope_head_dim`` elements, except an fp8 cache read by a scaled-layout backend (not trtllm,
  not the raw HIP / CUDA-TileLang layouts): ``kv_lora_rank + kv_lora_rank // 128 x 4 + qk_rope_head_dim x 2``
  bytes (fp8 NoPE, float32 scales, bf16 RoPE: 656 for V3.2).
- ``srt/model_executor/pool_configurator.py:DefaultPoolConfigurator._compute_cell_size`` adds the indexer K cache:
  ``(index_head_dim + index_head_dim // DSATokenToKVPool.quant_block_size (128) x 4)`` uint8 per token and layer
  (0.5.23 ``_compute_dsa_indexer_cell_size``: ``ceil_div(.., index_kpool)``, and only the layers that do not skip
  top-k when ``_should_elide_dsa_index_k`` holds: no HiSparse, not the draft worker; 0.5.17 counts every layer).
- ``srt/mem_cache/memory_pool.py:DSATokenToKVPool`` (0.5.23 ``index_key_cache.py:IndexKeyCache``): per layer
  ``(size + page + 1) // page`` pages of ``page / index_kpool x 132`` bytes; 0.5.23 gives skip-top-k layers 0 pages.

Pure functions on the config; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidConfig
from ...model.description import ModelDescription

__all__ = ["DSAPool", "dsa_text", "dsa_pool", "resolve_dsa_kv_dtype", "dsa_backends", "skips_topk"]

QUANT_BLOCK = 128
"""``DSATokenToKVPool.quant_block_size`` (0.5.17, 0.5.23)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DSAPool:
    """What one rank's DSA pool costs per token, per layer."""

    mla_row_bytes: int
    """One layer's latent row in bytes (``calculate_mla_kv_cache_dim x kv_size``)."""
    indexer_bytes: int
    """One layer's indexer K record in bytes (fp8 keys + float32 scales as uint8, over ``index_kpool``)."""
    indexer_layers: frozenset[int]
    """Layer ids whose indexer cache the cell counts (0.5.23: the ones that do not skip top-k)."""
    prefill_backend: str
    decode_backend: str


def dsa_text(model: ModelDescription, archs: tuple[str, ...]) -> dict | None:
    """The config dict if SGLang treats the model as DSA (``is_deepseek_dsa``), else None."""
    if model.architecture not in archs:
        return None
    cfg = model.hf_config or {}
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    if text.get("index_topk") is None and cfg.get("index_topk") is None:
        return None
    return text


def skips_topk(text: dict, layer_id: int) -> bool:
    """sglang 0.5.23 srt/configs/model_config.py:dsa_layer_skips_topk: ``indexer_types[i] == "shared"``, else
    ``cli_factor`` (> 1: fresh every cli_factor layers), else ``index_topk_pattern[i] == "S"``, else
    ``max(i - offset + 1, 0) % index_topk_freq != 0`` (offset ``index_skip_topk_offset``, 2 when absent)."""
    types = text.get("indexer_types")
    if types is not None:
        return 0 <= layer_id < len(types) and types[layer_id] == "shared"
    cli = text.get("cli_factor") or 1
    if cli > 1:
        return layer_id % cli != 0
    pattern = text.get("index_topk_pattern")
    if pattern is not None:
        return layer_id < len(pattern) and pattern[layer_id] == "S"
    freq = text.get("index_topk_freq") or 1
    offset = text.get("index_skip_topk_offset")
    if offset is not None:
        return max(layer_id - offset + 1, 0) % freq != 0
    return max(layer_id - 1, 0) % freq != 0


def resolve_dsa_kv_dtype(flag: str, *, cc: tuple[int, int] | None, platform: str, text: dict,
                         sinks_keep_bf16: bool) -> str:
    """``_dsa_kv_cache_dtype_default`` (CUDA/ROCm; NPU/XPU are not modelled here)."""
    major = cc[0] if cc else 9
    sinks = bool(text.get("learnable_sink")) and sinks_keep_bf16
    kv = flag
    if sinks and kv not in ("auto", "bf16", "bfloat16"):
        raise InvalidConfig(f"ValueError: Learnable DSA attention sinks require a bfloat16 KV cache; got "
                            f"kv_cache_dtype={kv}.", hint="use --kv-cache-dtype bfloat16 (or auto)")
    if kv == "auto":
        kv = "fp8_e4m3" if major >= 10 and not sinks and platform == "cuda" else "bfloat16"
    if kv == "bf16":
        kv = "bfloat16"
    if kv not in ("bfloat16", "fp8_e4m3"):
        raise InvalidConfig(f"AssertionError: DeepSeek DSA only supports bf16/bfloat16 or fp8_e4m3 kv_cache_dtype "
                            f"(got --kv-cache-dtype {flag})", hint="use --kv-cache-dtype bfloat16 or fp8_e4m3")
    return kv


def dsa_backends(kv: str, *, cc: tuple[int, int] | None, platform: str, architecture: str,
                 prefill: str | None, decode: str | None, rocm_default: str) -> tuple[str, str]:
    """``_dsa_split_backend_resolution`` (no HiSparse, no learnable sinks): the flags win where given."""
    major = cc[0] if cc else 9
    if platform == "rocm":
        p = d = rocm_default
    elif architecture == "GlmMoeDsaForCausalLM" and major == 12 and kv == "fp8_e4m3":
        p = d = "flashinfer_sparse_mla"
    elif kv == "fp8_e4m3":
        p = d = "trtllm" if major >= 10 else "flashmla_kv"
    else:
        p, d = "flashmla_sparse", ("trtllm" if major >= 10 else "fa3")
    return prefill or p, decode or d


def mla_row_bytes(*, kv_lora_rank: int, rope_dim: int, kv: str, kv_bytes: int, prefill: str, decode: str,
                  platform: str) -> int:
    """``calculate_mla_kv_cache_dim x kv_size`` for a DSA model (no PD disaggregation)."""
    raw = (kv_lora_rank + rope_dim) * kv_bytes
    if "trtllm" in (prefill, decode):
        return raw
    if platform == "rocm" and ({prefill, decode} & {"tilelang", "triton", "aiter"}):
        return raw
    if prefill == "tilelang" and decode == "tilelang":
        return raw
    if kv == "fp8_e4m3":
        return kv_lora_rank + kv_lora_rank // QUANT_BLOCK * 4 + rope_dim * 2
    return raw


def dsa_pool(text: dict, *, kv: str, kv_bytes: int, prefill: str, decode: str, platform: str,
             num_layers: int, use_kpool: bool, elide_skipped: bool) -> DSAPool:
    head = int(text["index_head_dim"])
    kpool = int(text.get("index_kpool") or 1) if use_kpool else 1
    per = head + head // QUANT_BLOCK * 4
    per = -(-per // kpool)  # ceil_div
    layers = frozenset(i for i in range(num_layers) if not (elide_skipped and skips_topk(text, i)))
    return DSAPool(mla_row_bytes=mla_row_bytes(kv_lora_rank=int(text["kv_lora_rank"]),
                                               rope_dim=int(text["qk_rope_head_dim"]), kv=kv, kv_bytes=kv_bytes,
                                               prefill=prefill, decode=decode, platform=platform),
                   indexer_bytes=per, indexer_layers=layers, prefill_backend=prefill, decode_backend=decode)
