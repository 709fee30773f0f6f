"""vramplan: where accelerator memory goes when vLLM starts, without a GPU.

The public API is loaded lazily so that ``import vramplan`` stays cheap::

    import vramplan
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=32768)
    print(p.verdict, p.kv_cache_tokens)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "plan", "load_model", "Plan"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import load_model, plan
    from .planner import Plan


def __getattr__(name: str) -> Any:
    if name in ("plan", "load_model"):
        from . import api

        return getattr(api, name)
    if name == "Plan":
        from .planner import Plan

        return Plan
    raise AttributeError(f"module 'vramplan' has no attribute {name!r}")
