"""vLLM v0.30.0: YaRN-family rope scaling no longer multiplies ``max_position_embeddings`` when the max model
length is derived (vllm/config/model.py ``_get_and_verify_max_len``)."""

from dataclasses import replace

from .v0_29 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 30, 0), rope_scaling_factor_not_applied=True)
