"""Mixtral (``MixtralForCausalLM``): Llama attention, FusedMoE on every layer (vLLM v0.26.0 models/mixtral.py)."""

from __future__ import annotations

from . import Family, register
from ._common import moe_layers

register(Family(
    name="mixtral",
    builder=moe_layers,
    architectures={"MixtralForCausalLM": False},
))
