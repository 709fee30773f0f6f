"""Views of every result: ``json.py`` (plan), ``table.py`` (plan), ``explain.py``, ``fit.py``, ``knobs.py``,
``sweep.py`` (each a ``*_to_dict`` and a ``render_*`` onto a rich Console) and ``plot.py`` (pictures).
``text(result)`` gives any result's terminal view as plain text (for web pages and logs)."""

from __future__ import annotations

from typing import Any

__all__ = ["text"]


def text(result: Any, *, width: int = 100, verbose: bool = False) -> str:
    """The terminal view of a Plan, Explanation, FitResult, KnobsResult or SweepResult, without colour."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    con = Console(file=buf, width=width, color_system=None, force_terminal=False)
    kind = type(result).__name__
    if kind == "Plan":
        from .table import render_plan

        render_plan(result, con, verbose=verbose)
    elif kind == "Explanation":
        from .explain import render_explanation

        render_explanation(result, con)
    elif kind == "FitResult":
        from .fit import render_fit

        render_fit(result, con)
    elif kind == "KnobsResult":
        from .knobs import render_knobs

        render_knobs(result, con)
    elif kind == "SweepResult":
        from .sweep import render_sweep

        render_sweep(result, con)
    else:
        raise TypeError(f"no terminal view for {kind}")
    return buf.getvalue()
