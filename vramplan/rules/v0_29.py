"""vLLM v0.29.0: every model defaults to the V2 runner, which now estimates CUDA graphs; the
max-model-len check reserves the null block (``available - bytes_per_block``)."""

from dataclasses import replace

from .v0_28 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 29, 0), null_block_in_check=True, capacity_v033=True)
