"""Qwen3 dense text (also Qwen3-VL's language model).

vLLM v0.26.0 vllm/model_executor/models/qwen3.py:Qwen3Attention: QKV (bias when ``attention_bias``), per-head
q/k RMSNorm. Qwen3-VL's M-RoPE cache by release: ``_mrope.py``.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import dense_layers
from ._mrope import mrope_positions_view

register(Family(
    name="qwen3",
    builder=partial(dense_layers, qk_norm=True),
    architectures={"Qwen3ForCausalLM": False, "Qwen3VLForConditionalGeneration": True},
    text_model_types=("qwen3",),
    for_release=mrope_positions_view,
))
