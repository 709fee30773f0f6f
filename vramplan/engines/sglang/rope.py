"""SGLang's rotary-embedding caches: what its weights figure holds instead of the shared description's.

The shared model description prices every ``cos_sin_cache`` as vLLM allocates it: in the model dtype, and for
Qwen2-VL / Qwen2.5-VL / Qwen3-VL M-RoPE with ``max_position x 4`` rows (vLLM before 0.32). SGLang differs, in both
releases read (0.5.17 and 0.5.23):

- dtype: ``RotaryEmbedding.__init__`` (srt/layers/rotary_embedding/base.py) computes the cache in float32
  (``_compute_cos_sin_cache``: ``torch.arange(..., dtype=torch.float)``) and casts it to the model dtype only off
  CUDA / XPU (0.5.17) or off CUDA / HIP / XPU (0.5.23), unless ``SGLANG_ROPE_CACHE_FP32`` is set; it is then
  ``register_buffer("cos_sin_cache", cache, persistent=False)``, built on the GPU inside the loader's device
  context, so it is in "Load weight end ... mem usage". (Forward passes may later cast it to the activation dtype:
  ``_match_cos_sin_cache_dtype``; that is after the figure and after the KV sizing.)
- rows: ``MRotaryEmbedding.__init__`` (srt/layers/rotary_embedding/mrope.py) passes ``max_position_embeddings``
  unchanged to the base class: ``max_position x 1`` rows. With YaRN, ``YaRNScalingMRotaryEmbedding`` has
  ``ceil(original_max_position x factor)`` rows (``torch.arange`` of a float end). Other kinds have the rows vLLM's
  have: default / llama3 ``max_position``, linear ``max_position x factor``, YaRN / DeepSeek-YaRN
  ``original_max_position x factor`` (srt/layers/rotary_embedding/base.py, yarn.py, rope_variant.py).
- sharing: ``factory.py:get_rope`` keeps one module per key (head_size, rotary_dim, max_position, base,
  is_neox_style, rope_scaling, dual_chunk, dtype) in ``_ROPE_DICT``, as vLLM's ``get_rope`` does: one cache per
  distinct rope, not per layer, so the description's cache instances are SGLang's. The partial rotary dim is
  ``int(rotary_dim x partial_rotary_factor)`` there too.
- vision: Qwen3-VL's (and Qwen3.5's, which reuses it) vision tower calls ``get_rope(head_size=head_dim,
  rotary_dim=head_dim // 2, max_position=8192)`` (srt/models/qwen3_vl.py: the vision model's ``__init__``): the
  description's shape, in float32. Qwen2-VL's and Qwen2.5-VL's towers keep no cache at all, only a float32
  ``inv_freq`` of ``rotary_dim / 2`` elements (srt/models/qwen2_vl.py: Qwen2VisionRotaryEmbedding, qwen2_5_vl.py:
  Qwen2_5_VisionRotaryEmbedding). Other vision towers keep the description's buffers.
- not re-derived: DeepSeek-V4's own rope buffers (srt/models/deepseek_v4.py) keep the description's rows (already
  float32); Llama 4's complex64 vision caches are left as described.
- Gemma 3: ``srt/models/gemma3_causal.py:Gemma3Attention.__init__`` gives local and global layers
  ``rope_scaling={"rope_type": "default"}``: both caches have ``max_position`` rows, where vLLM's global cache has
  ``max_position x 8`` (linear).
- LongRoPE (Phi-3): ``rope_variant.py:Phi3LongRoPEScaledRotaryEmbedding`` registers ``short_cos_sin_cache``
  (original_max_position rows), ``long_cos_sin_cache`` (max_position rows) and their concatenation, all cast to the
  model dtype: ``2 x (original + max_position)`` rows; it has no ``_ensure_cos_sin_cache_length`` (no reserve).

After "Load weight end" and before the KV pool is sized, ``ModelRunner.load_model`` calls
``reserve_rope_cache_for_long_sequences`` (srt/utils/common.py): every module with ``_ensure_cos_sin_cache_length``
and a ``cos_sin_cache`` (vision towers included) grows to ``reserve = align_128(context_length + 256)`` rows when
it holds fewer (``SGLANG_ROPE_CACHE_SAFETY_MARGIN`` 256, ``SGLANG_ROPE_CACHE_ALIGN`` 128, no speculative decoding);
the old cache is freed. The growth is not in the weights figure but is taken from the KV budget
(:func:`reserve_growth_bytes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from ...model.description import ModelDescription, Param
from ...model.quant import dtype_bytes

__all__ = ["RopeCache", "SGLangRope", "sglang_rope", "reserve_rows", "ROPE_CACHE_MARGIN", "ROPE_CACHE_ALIGN"]

ROPE_CACHE_MARGIN = 256
"""sglang srt/environ.py: SGLANG_ROPE_CACHE_SAFETY_MARGIN default (0.5.17 and 0.5.23)."""
ROPE_CACHE_ALIGN = 128
"""sglang srt/environ.py: SGLANG_ROPE_CACHE_ALIGN default (0.5.17 and 0.5.23)."""

# Vision towers whose rotary module is sglang's RotaryEmbedding (get_rope): a float32 cos_sin_cache of the
# description's shape, extended by the reserve like the text caches (sglang srt/models/qwen3_vl.py, reused by
# srt/models/qwen3_5.py).
_GET_ROPE_VISION_ARCHS = ("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration",
                          "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration")
# Vision towers with only an inv_freq buffer (sglang srt/models/qwen2_vl.py: Qwen2VisionRotaryEmbedding,
# qwen2_5_vl.py: Qwen2_5_VisionRotaryEmbedding).
_INV_FREQ_VISION_ARCHS = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")
_CACHE_DTYPES = (None, "bfloat16", "float16", "float32")
# Text models whose attention passes rope_scaling={"rope_type": "default"} to get_rope whatever the config says, so
# every cache has max_position rows (no linear x factor): sglang 0.5.17 / 0.5.23 srt/models/gemma3_causal.py:
# Gemma3Attention.__init__ (local and global layers alike; gemma3_mm.py wraps the same Gemma3ForCausalLM).
_DEFAULT_ROPE_ARCHS = ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")


@dataclass(frozen=True, slots=True, kw_only=True)
class RopeCache:
    """One rotary cache as SGLang allocates it at model init, next to what the shared description priced."""

    name: str
    rows: int
    """Positions: the cache's first dimension."""
    rotary_dim: int
    """Columns (cos and sin halves together)."""
    element_bytes: int
    description_bytes: int
    """What the description (vLLM's layout) prices for the same cache."""
    extendable: bool
    """A ``RotaryEmbedding`` that ``reserve_rope_cache_for_long_sequences`` grows (has ``_ensure_cos_sin_cache_length``)."""
    vision: bool = False
    reason: str = ""

    @property
    def bytes(self) -> int:
        return self.rows * self.rotary_dim * self.element_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangRope:
    """The description with SGLang's rotary caches, and the caches themselves."""

    model: ModelDescription
    caches: tuple[RopeCache, ...]
    fp32: bool
    """Caches kept in float32 (the platform, or SGLANG_ROPE_CACHE_FP32)."""

    @property
    def delta_bytes(self) -> int:
        """SGLang's cache bytes minus the description's (per rank: caches are not split)."""
        return sum(c.bytes - c.description_bytes for c in self.caches)

    def reserve_growth_bytes(self, context_length: int) -> int:
        """Bytes ``reserve_rope_cache_for_long_sequences`` adds after the weights figure (old caches freed)."""
        need = reserve_rows(context_length)
        return sum((need - c.rows) * c.rotary_dim * c.element_bytes for c in self.caches
                   if c.extendable and need > c.rows)


def reserve_rows(context_length: int) -> int:
    """Rows every extendable cache is grown to: ``reserve = align(ctx + margin)``; ``_ensure_cos_sin_cache_length
    (reserve - 1)`` then allocates ``((reserve - 1 + align) // align) x align`` = ``reserve`` rows.

    sglang 0.5.17 / 0.5.23 srt/utils/common.py:reserve_rope_cache_for_long_sequences and
    srt/layers/rotary_embedding/base.py:RotaryEmbedding._ensure_cos_sin_cache_length (no speculative decoding)."""
    reserve = context_length + ROPE_CACHE_MARGIN
    reserve = (reserve + ROPE_CACHE_ALIGN - 1) // ROPE_CACHE_ALIGN * ROPE_CACHE_ALIGN
    needed = reserve - 1
    return (needed + ROPE_CACHE_ALIGN) // ROPE_CACHE_ALIGN * ROPE_CACHE_ALIGN


def _text_rope(model: ModelDescription) -> dict:
    text = model.hf_config.get("text_config") if isinstance(model.hf_config.get("text_config"), dict) else model.hf_config
    params = text.get("rope_parameters") or text.get("rope_scaling") or {}
    return params if isinstance(params, dict) else {}


def _is_rope_cache(p: Param) -> bool:
    return p.name.endswith("cos_sin_cache") and len(p.shape) == 2 and p.dtype in _CACHE_DTYPES


def _mrope_rows(model: ModelDescription, rope: dict) -> tuple[int, str]:
    """Rows of SGLang's M-RoPE cache (the text model passes ``config.max_position_embeddings``)."""
    kind = str(rope.get("rope_type") or rope.get("type") or "default")
    max_pos = model.max_position_embeddings
    if kind == "yarn":
        # srt/layers/rotary_embedding/mrope.py:YaRNScalingMRotaryEmbedding._compute_cos_sin_cache:
        # torch.arange(original_max_position x factor): ceil of the float product
        orig = int(rope.get("original_max_position_embeddings") or max_pos)
        return math.ceil(orig * float(rope.get("factor") or 1.0)), "YaRNScalingMRotaryEmbedding: original x factor"
    return max_pos, "MRotaryEmbedding: max_position x 1 (SGLang never enlarges it)"


@lru_cache(maxsize=512)
def sglang_rope(model: ModelDescription, fp32: bool) -> SGLangRope:
    """The description as SGLang allocates its rotary caches (``fp32``: kept in float32, see the module notes).

    Memoised on the description's identity, so the weights of the returned view stay cached too."""
    rope = _text_rope(model)
    mrope = "mrope_section" in rope
    longrope = str(rope.get("rope_type") or rope.get("type") or "") == "longrope"
    caches: list[RopeCache] = []

    def convert(p: Param, *, vision: bool) -> Param:
        old = int(math.prod(p.shape) * dtype_bytes(p.dtype or model.dtype))
        keep32 = fp32 and not (longrope and not vision)
        elem = 4 if keep32 else int(dtype_bytes(p.dtype or model.dtype))
        rows, reason, grows = p.shape[0], "rows as the description (the same get_rope rule)", True
        if vision:
            reason = "vision tower get_rope(max_position=8192) (qwen3_vl.py)"
        if mrope and not vision:
            rows, reason = _mrope_rows(model, rope)
        elif model.architecture in _DEFAULT_ROPE_ARCHS and not vision:
            rows, reason = model.max_position_embeddings, "gemma3_causal.py: rope_type forced to default"
        elif longrope and not vision:
            text = model.hf_config.get("text_config") if isinstance(model.hf_config.get("text_config"), dict) \
                else model.hf_config
            orig = int(rope.get("original_max_position_embeddings") or text.get("original_max_position_embeddings")
                       or model.max_position_embeddings)
            rows = 2 * (orig + model.max_position_embeddings)
            reason, grows = "Phi3LongRoPEScaledRotaryEmbedding: short + long + their concatenation", False
        caches.append(RopeCache(name=p.name, rows=rows, rotary_dim=p.shape[1], element_bytes=elem,
                                description_bytes=old, extendable=grows, vision=vision,
                                reason=reason + ("; float32" if keep32 else "; model dtype")))
        return replace(p, shape=(rows, p.shape[1]), dtype="float32" if keep32 else (p.dtype or model.dtype),
                       name=p.name + " [sglang]")

    bufs = tuple(convert(p, vision=False) if _is_rope_cache(p) else p for p in model.buffer_params)
    vision = model.vision
    if vision is not None:
        vparams: list[Param] = []
        for p in vision.params:
            if _is_rope_cache(p) and model.architecture in _GET_ROPE_VISION_ARCHS:
                vparams.append(convert(p, vision=True))
            elif _is_rope_cache(p) and model.architecture in _INV_FREQ_VISION_ARCHS:
                # Qwen2_5_VisionRotaryEmbedding(head_dim // 2): inv_freq = arange(0, dim, 2) in float32
                n = (p.shape[1] + 1) // 2
                old = int(math.prod(p.shape) * dtype_bytes(p.dtype or model.dtype))
                caches.append(RopeCache(name=p.name, rows=1, rotary_dim=n, element_bytes=4, description_bytes=old,
                                        extendable=False, vision=True,
                                        reason="Qwen2_5_VisionRotaryEmbedding: a float32 inv_freq, no cos/sin cache"))
                vparams.append(Param(name=p.name.replace("cos_sin_cache", "inv_freq") + " [sglang]", shape=(n,),
                                     part=p.part, dtype="float32"))
            else:
                vparams.append(p)
        vision = replace(vision, params=tuple(vparams))
    if not caches:
        return SGLangRope(model=model, caches=(), fp32=fp32)
    return SGLangRope(model=replace(model, buffer_params=bufs, vision=vision), caches=tuple(caches), fp32=fp32)
