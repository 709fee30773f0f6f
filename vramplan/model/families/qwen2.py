"""Qwen2 / Qwen2.5 dense text (also the language model of Qwen2-VL, Qwen2.5-VL and InternVL).

vLLM v0.26.0 vllm/model_executor/models/qwen2.py:Qwen2Attention: QKV always with a bias, o_proj without.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import dense_layers

register(Family(
    name="qwen2",
    builder=partial(dense_layers, qkv_bias=True),
    architectures={"Qwen2ForCausalLM": False, "Qwen2VLForConditionalGeneration": True,
                   "Qwen2_5_VLForConditionalGeneration": True},
    text_model_types=("qwen2",),
    wrappers=("InternVLChatModel",),
))
