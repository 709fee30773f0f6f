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

Before Hopper (CUDA, SM 8.x: A100, A10, L40S, RTX 4090), read in the same sources:

- SGLang does not check the device: ``_dsa_kv_cache_dtype_default`` gives ``bfloat16`` ("Setting KV cache dtype to
  bfloat16 for DeepSeek DSA on SM8 device.") and ``_dsa_split_backend_resolution`` prefill ``flashmla_sparse``, decode
  ``fa3`` ("Set DSA backends for bfloat16 KV Cache: prefill=flashmla_sparse, decode=fa3."), as on Hopper. There is
  no fallback backend: it loads the weights, sizes the pools, and dies at the first DSA forward.
- The DSA indexer's logits on CUDA are DeepGEMM's for every SM (``srt/layers/attention/dsa/dsa_indexer.py``:
  ``deep_gemm.fp8_mqa_logits`` / ``fp8_paged_mqa_logits``; a decode batch never skips them on CUDA,
  ``_should_skip_logits_computation``), and DeepGEMM has SM90, SM100 and SM120 paths only (host asserts on
  ``arch_major`` in sgl-deep-gemm 0.1.5.post1 and 0.2.3.post2, the releases' pins). So no ``--dsa-*-backend``
  choice runs on SM 8.x.
- The default prefill kernel refuses first where a prefill forward comes first: FlashMLA's sparse prefill
  (``flash_mla_sparse_fwd``: sgl-kernel 0.4.5 for 0.5.17, sgl-flash-mla 1.0.0's legacy kernels for 0.5.23) says
  "Sparse Attention Forward Kernel is only supported on SM90a and SM100f architectures."
- The first DSA forward: the prefill CUDA graph capture when it is on (``cuda_graph_setup.py:capture_cuda_graphs``
  captures prefill before decode, both releases), else the decode capture, else (``--disable-cuda-graph``) the
  server's warmup request (``entrypoints/http_server.py:_wait_and_warmup``: a short prefill, then decode).
- Argument time (``_check_tilelang_dsa_fp8_kv`` 0.5.17, ``_check_dsa_backend_constraints`` 0.5.23): ``tilelang``
  with an ``fp8_e4m3`` cache on CUDA is refused (0.5.17 always; 0.5.23 unless both phases are tilelang, and below
  SM89); 0.5.23 refuses ``triton`` on CUDA. These are SGLang's own words (:func:`dsa_backend_refusal`).

Pure functions on the config; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidConfig
from ...model.description import ModelDescription

__all__ = ["DSAPool", "dsa_text", "dsa_pool", "resolve_dsa_kv_dtype", "dsa_backends", "skips_topk",
           "dsa_backend_refusal", "dsa_kernel_failure", "FLASHMLA_SPARSE_SM"]

FLASHMLA_SPARSE_SM = "Sparse Attention Forward Kernel is only supported on SM90a and SM100f architectures."
"""FlashMLA's sparse prefill refusal (the string in sgl-kernel 0.4.5 ``flashmla_ops`` and sgl-flash-mla 1.0.0
``_C_legacy``), raised by ``flash_mla_sparse_fwd`` below SM90."""

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


def dsa_backend_refusal(kv: str, prefill: str, decode: str, *, cc: tuple[int, int] | None, platform: str,
                        check: str) -> str | None:
    """SGLang's argument-time refusal of a DSA backend choice (a ``ValueError`` at launch), or None.

    ``check``: ``"0.5.17"`` (``overrides.py:_check_tilelang_dsa_fp8_kv``: tilelang's fp8 path is ROCm-only) or
    ``"0.5.23"`` (``overrides.py:_check_dsa_backend_constraints``: triton is ROCm-only; CUDA TileLang FP8 needs both
    phases on tilelang and SM89). No ``--dcp-size`` is modelled (the 0.5.23 DCP refusal is left out)."""
    if platform != "cuda":
        return None
    chosen = {prefill, decode}
    if check == "0.5.17":
        if kv == "fp8_e4m3" and "tilelang" in chosen:
            return ("ValueError: The tilelang DSA prefill/decode kernels only support an fp8_e4m3 KV cache on "
                    "ROCm/HIP; on CUDA they require a bfloat16 KV cache. Use --kv-cache-dtype bfloat16 with the "
                    "tilelang backend, or keep --kv-cache-dtype fp8_e4m3 and pick an fp8-capable DSA backend "
                    "(flashmla_kv on Hopper, trtllm on Blackwell).")
        return None
    if "triton" in chosen:
        return ("ValueError: The triton DSA backend is only supported on ROCm/HIP. Pick an alternative DSA backend "
                "for CUDA (flashmla_kv on Hopper, trtllm on Blackwell).")
    if kv != "fp8_e4m3" or "tilelang" not in chosen:
        return None
    if prefill != "tilelang" or decode != "tilelang":
        return ("ValueError: CUDA TileLang FP8 KV requires both DSA backends to be tilelang; raw and scaled FP8 KV "
                "layouts cannot be mixed.")
    if cc is not None and cc < (8, 9):
        return "ValueError: CUDA TileLang FP8 KV requires SM89 or newer."
    return None


def dsa_kernel_failure(prefill: str, *, cc: tuple[int, int] | None, platform: str, prefill_graph: bool,
                       decode_graph: bool, version: str) -> tuple[str, str] | None:
    """(phase, message) where SGLang starts a DSA model whose kernels cannot run on this CUDA device (module doc);
    None where they can, off CUDA, or with the compute capability unknown.

    - ``--dsa-prefill-backend flashmla_sparse_q8`` off SM90: SGLang's own refusal when the attention backend is built
      (0.5.17 / 0.5.23 ``dsa_backend.py:DeepseekSparseAttnBackend.__init__``), after the pools;
    - below SM90, the first DSA forward: a prefill on ``flashmla_sparse`` (FlashMLA refuses) if one comes first, else
      the first decode (the indexer's DeepGEMM logits assert the architecture); a prefill on another backend with
      at most ``index_topk`` tokens skips the logits and passes."""
    if platform != "cuda" or cc is None:
        return None
    if prefill == "flashmla_sparse_q8" and cc[0] != 9:
        return "attention_backend_init", (f"ValueError: --dsa-prefill-backend flashmla_sparse_q8 is SM90-only; got "
                                          f"compute capability sm_{cc[0]}x.")
    if cc[0] >= 9:
        return None
    sm = f"SM{cc[0]}{cc[1]}"
    tail = (f"SGLang {version} picks its Hopper kernels on {sm} without checking the device and has no fallback for "
            "DeepSeek Sparse Attention: the indexer's logits are DeepGEMM kernels (SM90, SM100 and SM120 only) "
            "whatever --dsa-prefill-backend / --dsa-decode-backend say. It loads the weights and sizes the KV pool, "
            "then fails")
    refuses = prefill == "flashmla_sparse"
    if refuses and prefill_graph:
        phase, where, kernel = "graph_capture", "at the prefill CUDA graph capture", "flashmla"
    elif decode_graph:
        phase, where, kernel = "graph_capture", "at the decode CUDA graph capture", "deepgemm"
    else:
        phase, where, kernel = "warmup", "at the server's warmup request", ("flashmla" if refuses else "deepgemm")
    if kernel == "flashmla":
        return phase, (f"RuntimeError: {FLASHMLA_SPARSE_SM} (FlashMLA's sparse prefill, --dsa-prefill-backend "
                       f"{prefill}, {where}. {tail} there.)")
    return phase, (f"DeepGEMM assertion on arch_major in the DSA indexer's paged MQA logits kernel, {where} (the "
                   f"first decode forward). {tail} there.")
