"""vLLM v0.33.0 (wheel commit g4ba787ec9), read end to end. Since v0.29: cuBLAS/cuBLASLt
handles are created in ``Worker.init_device`` before the snapshot (so their workspaces sit
outside the budget); GB10 stays on the small batch tier; the YaRN factor is no longer applied
to ``max_position_embeddings`` (v0.30); ``mamba_cache_mode="all"`` is gone (v0.32)."""

from dataclasses import replace

from .v0_29 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 33, 0), cublas_handles_in_init_device=True)
