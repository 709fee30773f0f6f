"""The KV budget strategies of vLLM's workers, one per ``RuleSet.non_kv_formula``.

A strategy holds the steps where the budgets differ: whether ``request_memory`` refuses a short
device, what counts as non-torch memory, how the KV budget is taken from the requested memory,
what the post-KV headroom counts outside the budget, and a warning after graph capture.
:data:`PROFILE_AND_SUBTRACT` is vLLM V1's CUDA worker; the NPU worker's absolute-peak budget of
vllm-ascend <= 0.13 is in :mod:`.npu_budget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ...plan import RankPlan, Term


@dataclass(frozen=True)
class Budget:
    name: str
    # request_memory refuses a device whose free memory at init is below the requested memory
    checks_free_memory: bool
    # (overheads, used_by_others_bytes, cite) -> the non-torch Term
    non_torch_term: Callable[[Any, int, Callable[[str, str], str]], Term]
    # (requested, non_kv, cg_applied, cite) -> (KV bytes available, the rule)
    kv_available: Callable[[int, int, int, Callable[[str, str], str]], tuple[int, str]]
    # (used_by_others_bytes, overheads) -> (others, before_snapshot) counted by the post-KV headroom
    headroom_outside: Callable[[int, Any], tuple[int, int]]
    # (total, requested, logged rank, graphs) -> a warning after graph capture, or None
    after_capture_warning: Callable[[int, int, RankPlan, Any], str | None]


def _non_torch_increase(over, used_by_others_bytes: int, cite) -> Term:
    """vLLM v0.26.0 vllm/utils/mem_utils.py:memory_profiling: the non-torch increase since the snapshot."""
    return Term(key="non_torch", label="non-torch increase", bytes=over.increase_bytes, kind="measured",
                parts=over.increase_parts,
                rule=cite("vllm/utils/mem_utils.py", "memory_profiling") + " (non_torch_increase); "
                + over.basis)


def _requested_less_non_kv(requested: int, non_kv: int, cg_applied: int, cite) -> tuple[int, str]:
    """vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory:
    requested - non-KV - the applied CUDA-graph estimate."""
    return (requested - non_kv - cg_applied,
            cite("vllm/v1/worker/gpu_worker.py", "Worker.determine_available_memory")
            + " (requested - non-KV - applied CUDA-graph estimate)")


def _others_and_context(used_by_others_bytes: int, over) -> tuple[int, int]:
    """Outside the profile-and-subtract budget: other programs and the context made before the snapshot."""
    return used_by_others_bytes, over.before_snapshot_bytes


def _no_capture_warning(total: int, requested: int, logged: RankPlan, graphs) -> str | None:
    """vLLM's CUDA worker: the post-KV headroom check covers graph capture (planner._post_kv_headroom)."""
    return None


PROFILE_AND_SUBTRACT = Budget(
    name="profile_and_subtract", checks_free_memory=True, non_torch_term=_non_torch_increase,
    kv_available=_requested_less_non_kv, headroom_outside=_others_and_context,
    after_capture_warning=_no_capture_warning)
