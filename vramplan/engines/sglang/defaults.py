"""SGLang's derived defaults: what ``ServerArgs`` resolves at startup before any memory is measured.

``resolve`` mirrors, in order, the steps that decide memory:

1. the CUDA-graph config (``_handle_cuda_graph_config`` / ``cuda_graph_hook.py:parse_cuda_graph_config`` and the
   compatibility cascade that turns the prefill graph off);
2. ``_handle_gpu_memory_settings`` (0.5.17 ``srt/server_args.py``; 0.5.23 ``srt/arg_groups/memory_hook.py:
   handle_gpu_memory_settings``): ``--chunked-prefill-size`` and the decode ``max_bs`` from the device memory, the
   batch-size lists, then ``--mem-fraction-static`` from a reserve in MiB;
3. the page size (``overrides.py:_page_size_default`` / ``_mla_backend_page_constraints``), the context length
   (``hf_transformers/common.py:get_context_length``, ``model_config.py:ModelConfig``) and the KV dtype.

The device memory SGLang reads is ``nvidia-smi --query-gpu=memory.total`` in MiB
(``utils/common.py:get_nvgpu_memory_capacity``), not torch's total: a per-device table below.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidConfig
from ...inputs.devices import Device
from ...model.description import ModelDescription
from ...units import MiB
from .dsa import DSAPool, dsa_backend_refusal, dsa_backends, dsa_pool, dsa_text, resolve_dsa_kv_dtype
from .flags import SGLangArgs
from .rules import SGLangRules

__all__ = ["Resolved", "resolve", "NVIDIA_SMI_MIB", "device_capacity_mib", "decode_capture_sizes",
           "prefill_capture_sizes", "context_length_of", "default_fraction"]

# nvidia-smi memory.total (MiB) as public nvidia-smi outputs print it; SGLang's get_nvgpu_memory_capacity reads it.
# Reported, not measured by vramplan; pass nvidia_smi_mib= (CLI --nvidia-smi-mib) to override.
NVIDIA_SMI_MIB: dict[str, int] = {
    "h100-80gb": 81559, "h100-pcie": 81559, "h200": 143771, "a100-80gb": 81920, "a100-40gb": 40960,
    "l40s": 46068, "l4": 23034, "a10g": 23028, "rtx-4090": 24564, "rtx-3090": 24576, "t4": 15360,
    "b200": 183359,
}

_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """SGLang's resolved server args that move memory, and where each came from."""

    gpu_mem_mib: float | None
    gpu_mem_source: str
    chunked_prefill_size: int
    decode_graph: bool
    decode_max_bs: int
    decode_bs: tuple[int, ...]
    prefill_graph: bool
    prefill_graph_note: str
    prefill_max_bs: int
    prefill_bs: tuple[int, ...]
    mem_fraction_static: float
    fraction_given: bool
    reserved_parts: tuple[tuple[str, float], ...]
    """The ``reserved_mem`` terms (MiB) of the default fraction; empty when the fraction is given."""
    page_size: int
    context_length: int
    derived_context_length: int
    model_dtype: str
    kv_cache_dtype: str
    kv_bytes: int
    is_mla: bool
    is_vlm: bool
    attention_backend: str
    notes: tuple[str, ...] = ()
    dsa: DSAPool | None = None
    """DeepSeek Sparse Attention models: the latent row, the indexer K record and the DSA backends (engines/sglang/dsa.py)."""


def device_capacity_mib(device: Device, override: float | None = None) -> tuple[float | None, str]:
    """What ``get_device_memory_capacity`` returns (MiB), and where vramplan got it."""
    if override:
        return float(override), "given (--nvidia-smi-mib)"
    if device.platform != "cuda":
        return device.total_bytes / MiB, f"estimated: the runtime total of {device.name} (not nvidia-smi)"
    if device.name in NVIDIA_SMI_MIB:
        return float(NVIDIA_SMI_MIB[device.name]), f"reported: nvidia-smi memory.total of {device.label}"
    return device.total_bytes / MiB, "estimated: the runtime total (nvidia-smi reports a few hundred MiB more)"


def decode_capture_sizes(max_bs: int, *, padding_disabled: bool = False) -> tuple[int, ...]:
    """sglang 0.5.17 srt/server_args.py:_generate_decode_cuda_graph_batch_sizes,
    0.5.23 srt/arg_groups/cuda_graph_hook.py:generate_decode_cuda_graph_batch_sizes (no speculative decoding)."""
    if padding_disabled:
        sizes = list(range(1, max_bs + 1))
    else:
        sizes = [1, 2, 4, 8, 12] + list(range(16, 257, 8)) + list(range(272, 512, 16)) + list(range(512, max_bs + 1, 32))
    sizes = [s for s in sizes if s <= max_bs]
    if max_bs not in sizes:
        sizes.append(max_bs)
    return tuple(sizes)


def prefill_capture_sizes(max_bs: int) -> tuple[int, ...]:
    """sglang 0.5.17 srt/server_args.py:_generate_prefill_cuda_graph_batch_sizes,
    0.5.23 srt/arg_groups/cuda_graph_hook.py:generate_prefill_cuda_graph_batch_sizes (token counts)."""
    sizes = (list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32)) + list(range(576, 1025, 64))
             + list(range(1280, 4097, 256)) + list(range(4608, max_bs + 1, 512)))
    return tuple(s for s in sizes if s <= max_bs)


def context_length_of(model: ModelDescription) -> int:
    """sglang 0.5.23 srt/utils/hf_transformers/common.py:get_context_length on the text config: the first of
    max_sequence_length, seq_length, max_seq_len, model_max_length, max_position_embeddings, times the rope
    scaling factor unless the scaling has original_max_position_embeddings or is llama3 (0.5.17 the same)."""
    cfg = model.hf_config or {}
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    # transformers v5 (which 0.5.23 reads, hf_transformers/common.py:get_rope_config) keeps the scaling in
    # rope_parameters; the v4 attribute rope_scaling is read first
    rs = text.get("rope_scaling") or text.get("rope_parameters") or None
    factor = 1
    if isinstance(rs, dict) and rs:
        factor = rs.get("factor", 1) or 1
        if "original_max_position_embeddings" in rs or rs.get("rope_type") == "llama3":
            factor = 1
    for key in ("max_sequence_length", "seq_length", "max_seq_len", "model_max_length", "max_position_embeddings"):
        val = text.get(key)
        if val is not None:
            return int(factor * val)
    return 2048


def _vlm_factor(model: ModelDescription) -> float | None:
    """0.5.17 srt/server_args.py:adjust_mem_fraction_for_vlm, 0.5.23 memory_hook.py:adjust_mem_fraction_for_vlm:
    0.95 x clamp(1 - 0.1 x (L x H^2 / (24 x 1024^2) - 1), 0.8, 1.05), L and H read from ``vision_config`` with
    the defaults 24 and 1024 where the config has no such key (Qwen2.5-VL names its depth ``depth``)."""
    vc = (model.hf_config or {}).get("vision_config")
    if vc is None:
        return None
    layers = vc.get("num_hidden_layers", 24) if isinstance(vc, dict) else 24
    hidden = vc.get("hidden_size", 1024) if isinstance(vc, dict) else 1024
    ratio = layers * hidden ** 2 / (24 * 1024 ** 2)
    dyn = max(0.8, min(1.05, 1.0 - 0.1 * (ratio - 1.0)))
    return 0.95 * dyn


def default_fraction(gpu_mem: float | None, *, rules: SGLangRules, chunked_prefill_size: int, max_prefill_tokens: int,
                     tp: int, pp: int, decode_graph: bool, decode_max_bs: int, prefill_graph: bool,
                     num_prefill_bs: int, is_mla: bool, dp_attention: int = 0, post_capture: bool = False
                     ) -> tuple[float, tuple[tuple[str, float], ...]]:
    """The default ``--mem-fraction-static`` before the VLM adjustment, and its reserve terms (MiB).

    0.5.17 srt/server_args.py:_handle_gpu_memory_settings / reserve_for_graph_mb;
    0.5.23 srt/arg_groups/memory_hook.py:handle_gpu_memory_settings / reserve_for_graph_mb:
    reserved = 512 + 1.5 x max(chunked_prefill_size, 2048) + tp x pp / 8 x 1024 + graphs
    (decode: 2 x max_bs; prefill: 8 x #sizes, or 1536 for MLA), at least 10 GiB above 60 GiB of device memory;
    fraction = round((gpu_mem - reserved) / gpu_mem, 3).
    """
    if gpu_mem is None:
        return rules.no_gpu_fraction, (("device memory unknown: fixed fraction", 0.0),)
    parts: list[tuple[str, float]] = []
    if post_capture:
        parts.append(("post-capture KV sizing floor", float(rules.post_capture_floor_mib)))
        parts.append(("tp x pp / 8 x 1024", tp * pp / 8 * 1024))
    else:
        act = max(chunked_prefill_size, 2048) if chunked_prefill_size > 0 else max(max_prefill_tokens, 2048)
        parts.append(("constant (attention metadata + slack)", 512.0))
        parts.append((f"activations: 1.5 x {act} tokens", act * 1.5))
        parts.append(("tp x pp / 8 x 1024", tp * pp / 8 * 1024))
        if decode_graph:
            parts.append((f"decode CUDA graphs: 2 x max_bs {decode_max_bs}", decode_max_bs * 2.0))
            if dp_attention:
                parts.append(("DP attention padding: 3 x max_bs x dp", decode_max_bs * dp_attention * 3.0))
                if decode_max_bs > 300:
                    parts.append(("DP attention, max_bs > 300: 1.5 x max_bs x dp", decode_max_bs * dp_attention * 1.5))
        if prefill_graph:
            if is_mla:
                parts.append(("prefill CUDA graphs (MLA)", 1.5 * 1024))
            else:
                parts.append((f"prefill CUDA graphs: 8 x {num_prefill_bs} sizes", num_prefill_bs * 8.0))
    reserved = sum(v for _, v in parts)
    if not post_capture and gpu_mem > 60 * 1024 and reserved < 10 * 1024:
        parts.append(("floor: at least 10 GiB above 60 GiB of device memory", 10 * 1024 - reserved))
        reserved = 10 * 1024
    return round((gpu_mem - reserved) / gpu_mem, 3), tuple(parts)


def _prefill_graph(model: ModelDescription, a: SGLangArgs, rules: SGLangRules, is_vlm: bool, platform: str
                   ) -> tuple[bool, str]:
    """Is the prefill CUDA graph on? (0.5.17 srt/server_args.py:_handle_cuda_graph_config ->
    _apply_cuda_graph_compatibility; 0.5.23 cuda_graph_hook.py:parse_cuda_graph_config ->
    apply_cuda_graph_compatibility). An explicit backend skips the cascade."""
    if a.cuda_graph_backend_prefill is not None:
        on = a.cuda_graph_backend_prefill != "disabled"
        return on, f"--cuda-graph-backend-prefill {a.cuda_graph_backend_prefill}"
    if a.disable_cuda_graph or a.disable_prefill_cuda_graph:
        return False, "disabled by flag"
    if platform != "cuda":
        return False, "default prefill backend off this platform (cuda_graph_config.py:default_prefill_backend)"
    if rules.prefill_graph_off_for_pp and a.pp_size > 1:
        return False, "off: pipeline parallelism"
    if model.architecture in rules.prefill_graph_off_archs:
        return False, f"off: {model.architecture}"
    # 0.5.17 server_args.py:_disable_breakable_cudagraph_if_incompatible: use_mla_backend and not is_deepseek_dsa
    # (GLM-5's GlmMoeDsaForCausalLM is DSA too)
    if rules.prefill_graph_off_for_mla and model.uses_mla and dsa_text(model, rules.dsa_archs) is None:
        return False, "off: MLA attention (non-DSA)"
    if is_vlm and model.architecture not in rules.multimodal_prefill_graph_archs:
        return False, "off: multimodal model"
    return True, "breakable prefill graph (CUDA default)"


def resolve(model: ModelDescription, a: SGLangArgs, device: Device, rules: SGLangRules, *,
            nvidia_smi_mib: float | None = None) -> Resolved:
    notes: list[str] = []
    gpu_mem, mem_src = device_capacity_mib(device, nvidia_smi_mib)
    is_mla = model.uses_mla
    is_vlm = model.is_multimodal and not a.language_only
    # 1. the CUDA-graph config
    decode_graph = not (a.disable_cuda_graph or a.disable_decode_cuda_graph
                        or (a.cuda_graph_backend_decode or "full") == "disabled")
    prefill_graph, prefill_note = _prefill_graph(model, a, rules, is_vlm, device.platform)
    # 2. the capacity tier
    cps = a.chunked_prefill_size
    max_bs = a.cuda_graph_max_bs_decode
    max_bs_default = max_bs is None
    if gpu_mem is not None:
        for upper, t_cps, bs_small, bs_large in rules.capacity_tiers:
            if upper is None or gpu_mem < upper:
                cps = t_cps if cps is None else cps
                max_bs = (bs_small if a.tp_size < 4 else bs_large) if max_bs is None else max_bs
                break
    else:
        cps = 4096 if cps is None else cps
        max_bs = 160 if max_bs is None else max_bs
    assert cps is not None and max_bs is not None
    if (rules.clamp_decode_max_bs_to_running and max_bs_default and a.max_running_requests is not None
            and max_bs > a.max_running_requests):
        max_bs = a.max_running_requests
    if a.cuda_graph_bs_decode:
        decode_bs = tuple(a.cuda_graph_bs_decode)
        max_bs = max(decode_bs)
    else:
        decode_bs = decode_capture_sizes(max_bs, padding_disabled=a.disable_cuda_graph_padding)
    pmax = a.cuda_graph_max_bs_prefill
    if pmax is None:
        if not is_mla:
            pmax = cps
        elif rules.mla_prefill_graph_max_bs == "fixed_2048":
            pmax = 2048
        else:
            pmax = min(8192, cps)
        if a.max_total_tokens is not None:
            pmax = min(pmax, a.max_total_tokens)
        if "llama-2" in (a.model_path or model.name).lower():
            pmax = min(pmax, 4096)
    prefill_bs = prefill_capture_sizes(pmax) if pmax > 0 else ()
    # 3. the fraction
    post_capture = (a.env_value("SGLANG_ENABLE_POST_CAPTURE_KV_SIZING", "0") or "0").lower() in ("1", "true")
    if post_capture:
        notes.append("SGLANG_ENABLE_POST_CAPTURE_KV_SIZING: the default fraction follows it, but the post-capture "
                     "resize of the pool is not modelled")
    dp_attn = a.dp_size if a.enable_dp_attention else 0
    fraction_given = a.mem_fraction_static is not None
    if fraction_given:
        fraction, parts = float(a.mem_fraction_static), ()
    else:
        fraction, parts = default_fraction(
            gpu_mem, rules=rules, chunked_prefill_size=cps, max_prefill_tokens=a.max_prefill_tokens,
            tp=a.tp_size, pp=a.pp_size, decode_graph=decode_graph, decode_max_bs=max_bs,
            prefill_graph=prefill_graph, num_prefill_bs=len(prefill_bs), is_mla=is_mla, dp_attention=dp_attn,
            post_capture=post_capture and not is_mla)
        if is_vlm:
            vf = _vlm_factor(model)
            if vf is not None:
                parts = parts + ((f"VLM: fraction x {vf:.6f} (vision tower size)", 0.0),)
                fraction = fraction * vf
    # 4. attention backend and page size
    backend = a.attention_backend or _default_backend(device, is_mla)
    page = a.page_size
    if page is None:
        page = 1
    if backend == "flashmla":
        page = 64
    elif backend in ("trtllm_mla", "cutedsl_mla") and page not in (32, 64):
        page = 64
    elif backend == "trtllm_mha" and page not in (16, 32, 64, 128):
        page = 64
    # 5. context length
    derived = context_length_of(model)
    ctx = a.context_length or derived
    if a.context_length is not None and a.context_length > derived:
        msg = (f"Warning: User-specified context_length ({a.context_length}) is greater than the derived "
               f"context_length ({derived}). This may lead to incorrect model outputs or CUDA errors. Note that the "
               f"derived context_length may differ from max_position_embeddings in the model's config.")
        if (a.env_value("SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN", "0") or "0") not in ("1", "true", "True"):
            # sglang 0.5.23 srt/configs/model_config.py:ModelConfig (context_length check)
            raise InvalidConfig(msg + " To allow overriding this maximum, set the env var "
                                "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1",
                                hint=f"use --context-length {derived} or less")
        notes.append(msg)
    # 5b. ROCm aiter, long context: x 0.85 (see SGLangRules.aiter_fraction_honours_explicit)
    if backend == "aiter" and ctx > 8192:
        honour = (rules.aiter_fraction_honours_explicit and fraction_given
                  and (a.env_value("SGLANG_AITER_HONOR_EXPLICIT_MEM_FRACTION", "0") or "0") in ("1", "true", "True"))
        if not honour:
            fraction = fraction * 0.85
            parts = parts + (("aiter backend, context > 8192: fraction x 0.85", 0.0),)
    # 6. dtypes
    model_dtype = _model_dtype(model, a.dtype)
    kv = a.kv_cache_dtype
    # sglang 0.5.23 srt/mem_cache/kv_cache_dtype.py:configure_kv_cache_dtype: "auto" follows a checkpoint whose
    # quant config says kv_cache_quant_algo FP8 (ModelOpt), else the model dtype
    q = model.quant
    if kv == "auto" and q is not None and q.method.startswith("modelopt") and (q.kv_cache_dtype or "").startswith("fp8"):
        kv = "fp8_e4m3"
    kv_dtype = {"auto": model_dtype, "bf16": "bfloat16", "bfloat16": "bfloat16"}.get(kv, kv)
    kv_bytes = _DTYPE_BYTES.get(kv_dtype, 2)
    # 7. DeepSeek Sparse Attention (engines/sglang/dsa.py): KV dtype default, DSA backends, page size, indexer cache
    dsa = None
    text = dsa_text(model, rules.dsa_archs)
    if text is not None and device.platform in ("cuda", "rocm"):
        kv_dtype = resolve_dsa_kv_dtype(a.kv_cache_dtype, cc=device.compute_capability, platform=device.platform,
                                        text=text, sinks_keep_bf16=rules.dsa_sinks_keep_bf16)
        kv_bytes = _DTYPE_BYTES[kv_dtype]
        prefill, decode = dsa_backends(kv_dtype, cc=device.compute_capability, platform=device.platform,
                                       architecture=model.architecture, prefill=a.dsa_prefill_backend,
                                       decode=a.dsa_decode_backend, rocm_default=rules.dsa_rocm_backend)
        refusal = dsa_backend_refusal(kv_dtype, prefill, decode, cc=device.compute_capability,
                                      platform=device.platform, check=rules.dsa_backend_check)
        if refusal:
            raise InvalidConfig(refusal, hint="choose the DSA backends and --kv-cache-dtype as the message says")
        if a.attention_backend is None:
            backend = "dsa"
        if device.platform == "cuda":
            # model_overrides/deepseek_v2.py:_deepseek_family_overrides: page size 64 x index_kpool (0.5.17: 64);
            # DSATokenToKVPool asserts 64-token physical index pages
            page = 64 * (int(text.get("index_kpool") or 1) if rules.dsa_index_kpool else 1)
        else:
            notes.append("DSA on ROCm: SGLang sets page size 1 unless aiter's preshuffle paged-MQA kernel is "
                         "available (not modelled: the page size given or 1 is used)")
        dsa = dsa_pool(text, kv=kv_dtype, kv_bytes=kv_bytes, prefill=prefill, decode=decode,
                       platform=device.platform, num_layers=model.num_hidden_layers, use_kpool=rules.dsa_index_kpool,
                       elide_skipped=rules.dsa_indexer_skips_shared)
    return Resolved(gpu_mem_mib=gpu_mem, gpu_mem_source=mem_src, chunked_prefill_size=cps, decode_graph=decode_graph,
                    decode_max_bs=max_bs, decode_bs=decode_bs, prefill_graph=prefill_graph,
                    prefill_graph_note=prefill_note, prefill_max_bs=pmax, prefill_bs=prefill_bs,
                    mem_fraction_static=fraction, fraction_given=fraction_given, reserved_parts=parts,
                    page_size=page, context_length=ctx, derived_context_length=derived, model_dtype=model_dtype,
                    kv_cache_dtype=kv_dtype, kv_bytes=kv_bytes, is_mla=is_mla, is_vlm=is_vlm,
                    attention_backend=backend, notes=tuple(notes), dsa=dsa)


_DTYPE_NAMES = {"half": "float16", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16",
                "float": "float32", "float32": "float32", "fp32": "float32"}


def _model_dtype(model: ModelDescription, requested: str) -> str:
    """sglang 0.5.23 srt/configs/model_config.py:_get_and_verify_dtype: with ``auto``, the config's ``dtype`` (or
    ``torch_dtype``), float32 when absent; float32 becomes float16 (bfloat16 for Gemma models)."""
    if requested != "auto":
        if requested not in _DTYPE_NAMES:
            raise InvalidConfig(f"Unknown dtype: {requested}", hint="--dtype auto, bfloat16, float16 or float32")
        return _DTYPE_NAMES[requested]
    cfg = model.hf_config or {}
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    raw = (text.get("dtype") or text.get("torch_dtype") or cfg.get("dtype") or cfg.get("torch_dtype")
           or model.dtype)
    name = _DTYPE_NAMES.get(str(raw).replace("torch.", ""), "float32")
    if name == "float32":
        return "bfloat16" if (model.model_type or "").startswith("gemma") else "float16"
    return name


def _default_backend(device: Device, is_mla: bool) -> str:
    """sglang 0.5.23 srt/arg_groups/model_override_base.py:get_default_attn_backend (no speculative decoding):
    Hopper fa3; SM100 trtllm_mha (MHA) / flashinfer (MLA); ROCm aiter/triton; else flashinfer (MHA) / triton (MLA)."""
    cc = device.compute_capability
    if device.platform == "rocm":
        return "aiter" if not is_mla else "triton"
    if cc == (9, 0):
        return "fa3"
    if cc is not None and cc[0] == 10:
        return "flashinfer" if is_mla else "trtllm_mha"
    return "triton" if is_mla else "flashinfer"
