"""vramplan: where accelerator memory goes when vLLM starts, without a GPU.

The public API (``vramplan/api.py``) is loaded lazily so that ``import vramplan`` stays cheap::

    import vramplan
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=32768)
    print(p.verdict, p.kv_cache_tokens, p.to_json())
    vramplan.explain("server.log"), vramplan.fit(...), vramplan.knobs(...), vramplan.sweep(...)

``vramplan.fit`` and ``vramplan.explain`` are the API functions even though modules of the same names
exist (the search and the diagnosis, ``vramplan/fit.py`` and ``vramplan/explain.py``): import from those
modules with ``from vramplan.fit import ...``.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "plan", "explain", "fit", "knobs", "sweep", "load_model", "Plan", "Explanation",
           "FitResult", "KnobsResult", "SweepResult"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import explain, fit, knobs, load_model, plan, sweep
    from .explain import Explanation
    from .fit import FitResult, KnobsResult, SweepResult
    from .engines.vllm.planner import Plan

_API = ("plan", "explain", "fit", "knobs", "sweep", "load_model")
_TYPES = {"Plan": "planner", "Explanation": "explain", "FitResult": "fit", "KnobsResult": "fit",
          "SweepResult": "fit"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _TYPES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_TYPES[name]}"), name)
    raise AttributeError(f"module 'vramplan' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Importing ``vramplan.fit`` (or ``vramplan.explain``) would set the package's attribute of that name to
    the module, hiding the API function; the modules stay importable as ``vramplan.fit`` through sys.modules."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
