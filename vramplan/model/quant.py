"""Checkpoint quantization: read ``quantization_config`` and price a quantized weight in bytes.

The byte counts follow the tensors each vLLM quantization method creates for one linear
layer (``create_weights``) and keeps after ``process_weights_after_loading``, as read in
vLLM v0.26.0 ``vllm/model_executor/layers/quantization/<method>.py``.
"""

from __future__ import annotations

import fnmatch
import math
import re

from ..errors import UnsupportedError
from ..units import cdiv
from .description import QuantSpec

__all__ = ["DTYPE_BYTES", "dtype_bytes", "parse_quant", "quantized_weight_bytes", "is_ignored"]

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "float": 4, "fp32": 4,
    "bfloat16": 2, "float16": 2, "half": 2, "fp16": 2, "bf16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1, "int8": 1, "uint8": 1,
    "int32": 4, "int64": 8,
    # torch dtypes of buffers some modules register (Llama 4's vision rotary cache is complex64)
    "float64": 8, "double": 8, "complex64": 8, "complex128": 16, "int16": 2, "bool": 1,
}


def dtype_bytes(dtype: str) -> float:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise UnsupportedError(f"unknown dtype {dtype!r}", hint="use bfloat16, float16, float32 or fp8") from None


# --quantization names that need no quantization_config (vLLM "online" quantization).
_ONLINE = {"fp8": 8, "bitsandbytes": 4}


def parse_quant(qcfg: dict | None, flag: str | None = None) -> QuantSpec | None:
    """The checkpoint's quantization, from ``quantization_config`` and/or ``--quantization``.

    Mirrors vLLM v0.26.0 ``vllm/config/model.py:ModelConfig._verify_quantization``: the method
    comes from ``quant_method`` (upgraded to its Marlin kernel where vLLM does so on CUDA
    sm80+: gptq -> gptq_marlin, awq -> awq_marlin); ``--quantization fp8`` on an unquantized
    checkpoint quantizes it online to fp8 per tensor.
    """
    if not qcfg:
        if flag in (None, "", "none"):
            return None
        if flag in _ONLINE:
            return QuantSpec(method=flag, weight_bits=_ONLINE[flag], group_size=-1 if flag == "fp8" else 64)
        raise UnsupportedError(
            f"--quantization {flag} needs a checkpoint quantized with {flag}",
            hint="online quantization is modelled for fp8 and bitsandbytes only",
        )
    method = _modelopt_method(qcfg) or str(qcfg.get("quant_method", "")).lower().replace("compressed_tensors",
                                                                                       "compressed-tensors")
    ignored = tuple(str(x) for x in (qcfg.get("modules_to_not_convert") or qcfg.get("ignore") or qcfg.get("ignored_layers") or []))
    if method in ("fp8", "fbgemm_fp8"):
        block = qcfg.get("weight_block_size")
        return QuantSpec(method="fp8", weight_bits=8, block=tuple(block) if block else None,
                         group_size=None if block else -1, ignored=ignored, raw=qcfg)
    if method in ("gptq", "gptq_marlin"):
        return QuantSpec(method="gptq_marlin", weight_bits=int(qcfg.get("bits", 4)),
                         group_size=int(qcfg.get("group_size", 128)), act_order=bool(qcfg.get("desc_act", False)),
                         zero_point=not bool(qcfg.get("sym", True)), scale_dtype="float16", ignored=ignored, raw=qcfg)
    if method in ("awq", "awq_marlin"):
        return QuantSpec(method="awq_marlin", weight_bits=int(qcfg.get("bits", qcfg.get("w_bit", 4))),
                         group_size=int(qcfg.get("group_size", qcfg.get("q_group_size", 128))), zero_point=True,
                         scale_dtype="float16", ignored=ignored, raw=qcfg)
    if method == "auto-round":
        fmt = str(qcfg.get("packing_format", "auto_round:auto_gptq"))
        return QuantSpec(method="awq_marlin" if "awq" in fmt else "gptq_marlin", weight_bits=int(qcfg.get("bits", 4)),
                         group_size=int(qcfg.get("group_size", 128)), zero_point=not bool(qcfg.get("sym", True)),
                         scale_dtype="float16", ignored=ignored, raw=qcfg)
    if method == "mxfp4":
        return QuantSpec(method="mxfp4", weight_bits=4, group_size=32, scale_dtype="uint8", ignored=ignored, raw=qcfg)
    if method == "bitsandbytes":
        bits = 4 if qcfg.get("load_in_4bit", True) else 8
        return QuantSpec(method="bitsandbytes", weight_bits=bits, group_size=64 if bits == 4 else None,
                         ignored=ignored, raw=qcfg)
    if method == "compressed-tensors":
        return _compressed_tensors(qcfg, ignored)
    if method in ("modelopt", "modelopt_fp4", "modelopt_mixed"):
        return _modelopt(qcfg)
    raise UnsupportedError(
        f"quantization method {method!r} is not modelled",
        hint="modelled: fp8, compressed-tensors, gptq, awq, auto-round, mxfp4, bitsandbytes, modelopt",
    )


_MODELOPT_FP8 = {"FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO"}
_MODELOPT_FP4 = {"NVFP4", "W4A16_NVFP4"}


def _modelopt_method(qcfg: dict) -> str | None:
    """vLLM's method name for a ModelOpt config that names its producer (or keeps the legacy ``quantization``
    block of ``hf_quant_config.json``).

    vLLM v0.34.0 vllm/transformers_utils/model_arch_config_convertor.py:_normalize_quantization_config: with
    ``producer.name == "modelopt"`` the legacy ``quantization.quant_algo`` selects modelopt (FP8 kinds),
    modelopt_fp4 (NVFP4) or modelopt_mixed (MIXED_PRECISION). A copy without ``producer`` (every ModelOpt export
    writes one; trimmed copies drop it) is read the same way here.
    """
    legacy = qcfg.get("quantization")
    producer = (qcfg.get("producer") or {}).get("name") if isinstance(qcfg.get("producer"), dict) else None
    if not isinstance(legacy, dict) or (producer not in (None, "modelopt") and "modelopt_quant_config" not in legacy):
        return None
    algo = legacy.get("quant_algo")
    if algo is None:
        return None
    algo = str(algo).upper()
    if algo in _MODELOPT_FP8:
        return "modelopt"
    if algo == "NVFP4":
        return "modelopt_fp4"
    if algo == "MIXED_PRECISION":
        return "modelopt_mixed"
    raise UnsupportedError(f"vLLM: Unknown ModelOpt quant algo: {algo}",
                           hint="vLLM reads FP8, NVFP4 and MIXED_PRECISION ModelOpt checkpoints")


_LAYER_PREFIX = re.compile(r"^(?:.*?\.)?layers\.\d+\.")


def _module_key(name: str) -> str:
    """A checkpoint module path as this description names it: the part inside a decoder layer, or ``lm_head``."""
    m = _LAYER_PREFIX.match(name)
    if m:
        return name[m.end():]
    return "lm_head" if name.endswith("lm_head") else name


def _modelopt_ignore(patterns: list) -> tuple[str, ...]:
    """``exclude_modules`` / ``ignore`` as patterns over this description's param names (``self_attn.qkv_proj.weight``):
    the layer prefix dropped (a per-layer list becomes one pattern), a trailing ``*`` a prefix, else the module
    and its ``.`` children (so ``mlp.gate`` does not match ``mlp.gate_up_proj``)."""
    out: list[str] = []
    for pat in patterns:
        key = _module_key(str(pat))
        if key.endswith("*"):
            rx = "re:^" + re.escape(key.rstrip("*"))
        else:
            rx = "re:^" + re.escape(key) + r"(\.|_|$)" if key.endswith("experts") else "re:^" + re.escape(key) + r"\."
        if rx not in out:
            out.append(rx)
    return tuple(out)


def _modelopt(qcfg: dict) -> QuantSpec:
    """ModelOpt FP8 / NVFP4 / MIXED_PRECISION (vLLM v0.34.0 vllm/model_executor/layers/quantization/modelopt.py:
    ModelOptQuantConfigBase.from_config reads the legacy ``quantization`` block or the top-level keys)."""
    legacy = qcfg.get("quantization") if isinstance(qcfg.get("quantization"), dict) else None
    src = legacy if legacy is not None else qcfg
    algo = str(src.get("quant_algo") or "FP8").upper()
    if legacy is not None:
        kv_algo = legacy.get("kv_cache_quant_algo")
        excl = legacy.get("exclude_modules") or []
    else:
        scheme = qcfg.get("kv_cache_scheme")
        kv_algo = qcfg.get("kv_cache_quant_algo") or (
            "FP8" if isinstance(scheme, dict) and scheme.get("type") == "float" and scheme.get("num_bits") == 8
            else None)
        excl = qcfg.get("ignore", qcfg.get("exclude_modules", [])) or []
    kv = "fp8" if kv_algo and "FP8" in str(kv_algo).upper() else None
    ignored = _modelopt_ignore(list(excl))
    if algo == "MIXED_PRECISION":
        layers = src.get("quantized_layers") or qcfg.get("quantized_layers") or {}
        per: dict[str, str] = {}
        for name, sub in layers.items():
            if isinstance(sub, dict) and sub.get("quant_algo"):
                per.setdefault(_module_key(str(name)), str(sub["quant_algo"]).upper())
        return QuantSpec(method="modelopt_mixed", weight_bits=4, group_size=16, scale_dtype="fp8", ignored=ignored,
                         kv_cache_dtype=kv, per_module=tuple(sorted(per.items())), weight_format="nvfp4", raw=qcfg)
    if algo in _MODELOPT_FP4 or "FP4" in algo:
        return QuantSpec(method="modelopt_fp4", weight_bits=4, group_size=int(src.get("group_size") or 16),
                         scale_dtype="fp8", ignored=ignored, kv_cache_dtype=kv, weight_format="nvfp4", raw=qcfg)
    return QuantSpec(method="modelopt", weight_bits=8, group_size=-1, ignored=ignored, kv_cache_dtype=kv, raw=qcfg)


# Fused params of this description -> the first checkpoint module vLLM's packed_modules_mapping fuses into them.
_UNFUSED = (("qkv_proj", "q_proj"), ("gate_up_proj", "gate_proj"), ("in_proj_qkvz", "in_proj_qkv"),
            ("in_proj_ba", "in_proj_b"))


def mixed_algo(quant: QuantSpec, param_name: str) -> str | None:
    """The ModelOpt MIXED_PRECISION algorithm of one param (None: not listed, so unquantized)."""
    if is_ignored(quant, param_name):
        return None
    per = dict(quant.per_module)
    module = param_name.rsplit(".", 1)[0]  # "mlp.experts.w13_weight" -> "mlp.experts"
    if param_name.startswith("lm_head"):
        return per.get("lm_head")
    candidates = [module]
    for fused, first in _UNFUSED:
        if module.endswith(fused):
            candidates.append(module[: -len(fused)] + first)
    for c in candidates:
        if c in per:
            return per[c]
    return None


def algo_spec(quant: QuantSpec, algo: str) -> QuantSpec:
    """The per-tensor FP8 or NVFP4 spec a MIXED_PRECISION module uses."""
    if algo in _MODELOPT_FP4:
        return QuantSpec(method="modelopt_fp4", weight_bits=4, group_size=16, scale_dtype="fp8", weight_format="nvfp4")
    if algo in _MODELOPT_FP8:
        return QuantSpec(method="modelopt", weight_bits=8, group_size=-1)
    raise UnsupportedError(f"ModelOpt MIXED_PRECISION module algorithm {algo} is not modelled",
                           hint="modelled: FP8, NVFP4, W4A16_NVFP4")


def _compressed_tensors(qcfg: dict, ignored: tuple[str, ...]) -> QuantSpec:
    groups = qcfg.get("config_groups") or {}
    group = next(iter(groups.values()), {}) if groups else {}
    weights = group.get("weights") or {}
    bits = int(weights.get("num_bits", 8))
    strategy = str(weights.get("strategy", "channel"))
    gsize = weights.get("group_size")
    kv = None
    kvs = qcfg.get("kv_cache_scheme")
    if isinstance(kvs, dict) and int(kvs.get("num_bits", 16)) == 8:
        kv = "fp8"
    if bits == 4 and str(weights.get("type", "int")) == "float" and int(gsize or 16) == 32:
        # MXFP4 (format mxfp4-pack-quantized; CompressedTensorsConfig._is_mxfp4: group 32): vLLM v0.34.0
        # compressed_tensors/schemes/compressed_tensors_w4a4_mxfp4.py and compressed_tensors_moe_w4a4_mxfp4.py:
        # create_weights: weight_packed (out, in/2) uint8 + weight_scale (out, in/32) uint8, no global scale
        return QuantSpec(method="compressed-tensors", weight_bits=4, group_size=32, scale_dtype="uint8",
                         ignored=ignored, kv_cache_dtype=kv, weight_format="mxfp4", raw=qcfg)
    if bits == 4 and str(weights.get("type", "int")) == "float":
        # NVFP4 (format nvfp4-pack-quantized): vLLM v0.34.0 vllm/model_executor/layers/quantization/
        # compressed_tensors/schemes/compressed_tensors_w4a4_nvfp4.py (and _w4a16_nvfp4.py):create_weights:
        # weight_packed (out, in/2) uint8, weight_scale (out, in/16) fp8, weight_global_scale (+ input_global_scale)
        return QuantSpec(method="compressed-tensors", weight_bits=4, group_size=int(gsize or 16), scale_dtype="fp8",
                         ignored=ignored, kv_cache_dtype=kv, weight_format="nvfp4", raw=qcfg)
    if strategy == "group" and gsize:
        group_size = int(gsize)
    elif strategy == "tensor":
        group_size = -1
    elif strategy == "block":
        block = weights.get("block_structure") or [128, 128]
        return QuantSpec(method="compressed-tensors", weight_bits=bits, block=tuple(block), ignored=ignored,
                         kv_cache_dtype=kv, raw=qcfg)
    else:
        group_size = None  # per channel
    return QuantSpec(method="compressed-tensors", weight_bits=bits, group_size=group_size,
                     zero_point=not bool(weights.get("symmetric", True)),
                     scale_dtype="float32" if bits == 8 else "bfloat16",
                     ignored=ignored, kv_cache_dtype=kv, raw=qcfg)


def is_ignored(quant: QuantSpec, param_name: str) -> bool:
    """True when the quantization leaves this module in the model dtype."""
    for pat in quant.ignored:
        core = pat[3:] if pat.startswith("re:") else pat
        if pat.startswith("re:"):
            if re.search(core, param_name):
                return True
        elif core in param_name or fnmatch.fnmatch(param_name, core):
            return True
    return False


def quantized_weight_bytes(shape: tuple[int, ...], quant: QuantSpec, model_dtype: str) -> int:
    """Bytes of one quantized linear weight of per-rank ``shape`` (out, in) or (E, out, in).

    The input dim is the last one. Scales and zero points are included.
    """
    *lead, out_f, in_f = shape
    n = math.prod(lead) if lead else 1
    numel = n * out_f * in_f
    m = quant.method
    if quant.weight_format == "nvfp4":
        # vLLM v0.34.0 vllm/model_executor/layers/quantization/modelopt.py:KNvfp4Static.create_weights: packed e2m1
        # (out, in/2) uint8 + fp8 block scales (out, in/16) + fp32 global scales; the Marlin repack on Hopper
        # (utils/marlin_utils_fp4.py:prepare_fp4_layer_for_marlin) keeps both sizes for tile-aligned shapes
        g = quant.group_size or 16
        return numel // 2 + n * out_f * cdiv(in_f, g) + n * 4 * 2
    if quant.weight_format == "mxfp4":
        return numel // 2 + n * out_f * cdiv(in_f, 32)  # uint8 e2m1 pairs + uint8 e8m0 scales per 32
    if m in ("fp8", "modelopt") or (m == "compressed-tensors" and quant.weight_bits == 8):
        if quant.block:
            bo, bi = quant.block
            scales = n * cdiv(out_f, bo) * cdiv(in_f, bi) * 4  # weight_scale_inv, float32
        elif quant.group_size == -1:
            scales = n * 4 * 2  # per-tensor weight_scale (+ input_scale)
        else:
            scales = n * out_f * 4  # per-channel, float32
        return numel + scales
    if m in ("gptq_marlin", "awq_marlin") or (m == "compressed-tensors" and quant.weight_bits == 4):
        packed = numel * quant.weight_bits // 8
        g = quant.group_size if quant.group_size and quant.group_size > 0 else in_f
        groups = cdiv(in_f, g)
        scales = n * groups * out_f * int(dtype_bytes(quant.scale_dtype if m != "compressed-tensors" else model_dtype))
        zeros = n * groups * out_f * quant.weight_bits // 8 if quant.zero_point else 0
        g_idx = n * in_f * 4 * 2 if quant.act_order else 0  # g_idx + g_idx_sort_indices (int32)
        return packed + scales + zeros + g_idx
    if m == "mxfp4":
        return numel // 2 + n * out_f * cdiv(in_f, 32)  # uint8 e2m1 pairs + uint8 e8m0 scales per 32
    if m == "modelopt_fp4":
        return numel // 2 + n * out_f * cdiv(in_f, 16) + n * 4 * 2
    if m == "bitsandbytes":
        if quant.weight_bits == 8:
            return numel + n * out_f * 4
        blocks = cdiv(numel, 64)
        return numel // 2 + blocks * 4  # packed nf4 + float32 absmax per 64
    raise UnsupportedError(f"no byte model for quantization {m!r}")
