"""KV-cache sizing strategies after the profile run, picked by the rule set.

- profile-and-subtract (V0/V1 up to vLLM 0.33, and 0.34 with the extensible cache off): in ``planner.py``;
- reserve, warm up, commit (vLLM 0.34's extensible KV cache): :mod:`vramplan.engines.vllm.sizing.extensible`.

:func:`finish` is the planner's last step: it hands a plan to the strategy its engine configuration resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ....plan import Plan

__all__ = ["finish"]


def finish(plan: "Plan") -> "Plan":
    """The plan as the release sizes its KV cache (unchanged for the profile-and-subtract releases)."""
    if plan.engine.extensible_kv_cache or plan.rules.kv_memory_hint_in_errors:
        from .extensible import finish_plan

        return finish_plan(plan)
    return plan
