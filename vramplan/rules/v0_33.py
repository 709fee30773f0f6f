"""vLLM v0.33.0 (wheel commit g4ba787ec9), read end to end. Since v0.29: cuBLAS/cuBLASLt
handles are created in ``Worker.init_device`` before the snapshot (so their workspaces sit
outside the budget); the custom all-reduce's staging buffer grows to 16 MiB, it adds a
multicast-only symmetric-memory buffer, and FlashInfer's all-reduce is on by default (rules/comm.py
``COMM_V033``); GB10 stays on the small batch tier; the YaRN factor is no longer applied
to ``max_position_embeddings`` (v0.30); ``mamba_cache_mode="all"`` is gone (v0.32)."""

from dataclasses import replace

from .comm import COMM_V033
from .v0_29 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 33, 0), cublas_handles_in_init_device=True,
                comm=COMM_V033)
