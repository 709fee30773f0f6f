"""gpt-oss (``GptOssForCausalLM``): biases on QKV, o_proj, router and experts, per-head attention sinks.

vLLM v0.26.0 vllm/model_executor/models/gpt_oss.py: OAIAttention (sinks in float32) builds its rope with
``dtype=torch.float32`` (OAIAttention.__init__), so its cos/sin cache stays float32.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import _rope_buffers, moe_layers

register(Family(
    name="gpt_oss",
    builder=partial(moe_layers, bias=True, sinks=True),
    architectures={"GptOssForCausalLM": False},
    buffers=partial(_rope_buffers, dtype="float32"),
))
