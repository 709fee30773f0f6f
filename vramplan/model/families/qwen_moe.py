"""Qwen2-MoE and Qwen3-MoE (also Qwen3-VL-MoE's language model).

vLLM v0.26.0 vllm/model_executor/models/qwen2_moe.py (QKV with a bias, gated shared expert) and qwen3_moe.py
(per-head q/k RMSNorm, no shared expert); MoE on every ``decoder_sparse_step``-th layer not in ``mlp_only_layers``.
Qwen3-VL-MoE's M-RoPE cache by release: ``_mrope.py``.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import moe_layers
from ._mrope import mrope_positions_view

register(Family(
    name="qwen2_moe",
    builder=partial(moe_layers, qkv_bias=True),
    architectures={"Qwen2MoeForCausalLM": False},
    text_model_types=("qwen2_moe",),
))
register(Family(
    name="qwen3_moe",
    builder=partial(moe_layers, qk_norm=True),
    architectures={"Qwen3MoeForCausalLM": False, "Qwen3VLMoeForConditionalGeneration": True},
    text_model_types=("qwen3_moe",),
    for_release=mrope_positions_view,
))
