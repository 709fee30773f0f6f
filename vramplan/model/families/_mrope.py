"""Qwen3-VL's M-RoPE cache by release (the ``for_release`` view of the qwen3 and qwen3_moe families).

``MRotaryEmbedding`` keeps a ``cos_sin_cache`` buffer of ``cache_max_position_num x rotary_dim`` in the model dtype,
counted in "Model loading took". The description builds it as every release before 0.32 does, and as Qwen2-VL and
Qwen2.5-VL keep it in every release (``_common._rope_positions``): ``max_position x 4``.

- vLLM v0.26.0 / v0.31.0 vllm/model_executor/layers/rotary_embedding/mrope.py:MRotaryEmbedding.__init__:
  ``cache_max_position_num = max_position_embeddings * 4``.
- vLLM v0.32.0 / v0.33.0 / v0.34.0, same function: ``max_position_embeddings * positions_factor``, where
  ``get_rope(..., mrope_positions_factor=4)`` passes the factor. Qwen3-VL's decoder layers pass
  ``mrope_positions_factor(vllm_config)`` (vllm/model_executor/models/qwen3_vl.py: ``Qwen3VLDecoderLayer.__init__``;
  qwen3_vl_moe.py: ``Qwen3MoeLLMModel.__init__``), which is 4 when video pruning is on
  (``MultiModalConfig.is_multimodal_pruning_enabled``: ``--video-pruning-rate`` > 0, an engine flag, not a config
  key) and 1 otherwise. The plain ``Qwen3ForCausalLM`` / ``Qwen3MoeForCausalLM`` layers keep the default 4 (and have
  no M-RoPE in their configs anyway).

The switch is ``RuleSet.mrope_positions_factor`` (engines/vllm/rules/v0_32.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

__all__ = ["FACTOR_ARCHITECTURES", "mrope_positions_view", "PRUNED_FACTOR", "UNPRUNED_FACTOR"]

# Architectures whose language model passes mrope_positions_factor(vllm_config) to get_rope (vLLM >= 0.32.0):
# architecture -> where vLLM does it
FACTOR_ARCHITECTURES: dict[str, str] = {
    "Qwen3VLForConditionalGeneration": "qwen3_vl.py:Qwen3VLDecoderLayer.__init__",
    "Qwen3VLMoeForConditionalGeneration": "qwen3_vl_moe.py:Qwen3MoeLLMModel.__init__",
}
OLD_FACTOR = 4
"""``MRotaryEmbedding``'s fixed enlargement before 0.32.0, and ``get_rope``'s default ``mrope_positions_factor``."""
UNPRUNED_FACTOR = 1
"""``mrope_positions_factor(vllm_config)`` without video pruning (vLLM v0.32.0-v0.34.0 qwen3_vl.py)."""
PRUNED_FACTOR = 4
"""``mrope_positions_factor(vllm_config)`` with video pruning on."""


def _is_mrope_cache(name: str) -> bool:
    # the text model's rotary caches (_common._rope_buffers names them rotary_emb[i]); the vision tower's caches
    # live in model.vision, not in buffer_params
    return name.startswith("rotary_emb[") and name.endswith("].cos_sin_cache")


def mrope_positions_view(model: Any, rules: Any) -> Any:
    """The description as the release of ``rules`` allocates it: from 0.32.0 the M-RoPE cache of a Qwen3-VL model has
    ``max_position x 1`` rows instead of ``max_position x 4`` (video pruning, which restores x4, is not on)."""
    if not rules.mrope_positions_factor or model.architecture not in FACTOR_ARCHITECTURES:
        return model
    bufs = tuple(
        replace(p, shape=(p.shape[0] // OLD_FACTOR * UNPRUNED_FACTOR,) + p.shape[1:],
                name=p.name + f"[positions x{UNPRUNED_FACTOR}]")
        if _is_mrope_cache(p.name) and p.shape[0] == model.max_position_embeddings * OLD_FACTOR else p
        for p in model.buffer_params)
    return replace(model, buffer_params=bufs)
