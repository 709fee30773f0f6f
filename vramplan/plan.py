"""The plan as a value: every memory term of a startup with its reason, per rank, and the verdict.

Pure data (frozen dataclasses); ``planner.build_plan`` (vLLM), ``sizing/`` and ``engines/`` make them,
``render/`` formats them. Nothing here imports a planning module at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .units import GiB

if TYPE_CHECKING:
    from .inputs.devices import Device
    from .engines.vllm.flags import EngineArgs
    from .model.description import ModelDescription
    from .engines.vllm.rules.engine import EngineConfig
    from .rules.kv import KVLayout
    from .engines.vllm.rules.versions import RuleSet
    from .rules.weights import WeightShares

__all__ = ["ERROR_KINDS", "Term", "RankPlan", "Plan"]

ERROR_KINDS = (
    "free_memory_below_requested",
    "no_kv_cache_memory",
    "max_model_len_exceeds_kv_cache",
    "invalid_config",
    "out_of_memory",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One memory term: bytes, where vLLM decides it, and how vramplan got it."""

    key: str
    label: str
    bytes: int
    rule: str
    """The vLLM rule (version, file, function) or the measurement behind the figure."""
    kind: str = "exact"
    """``exact`` (vLLM's arithmetic, reproduced), ``measured`` (a model fitted to measurements), ``given``."""
    parts: tuple[tuple[str, int], ...] = ()
    note: str = ""

    @property
    def gib(self) -> float:
        return self.bytes / GiB


@dataclass(frozen=True, slots=True, kw_only=True)
class RankPlan:
    """The figures of one worker (TP rank 0 of one pipeline stage; every TP rank of a stage is alike)."""

    name: str
    pp_rank: int
    weights: WeightShares
    terms: tuple[Term, ...]
    requested_bytes: int
    free_at_init_bytes: int
    available_kv_bytes: int
    layout: KVLayout
    num_blocks: int
    """This rank's blocks before the min over ranks."""

    def term(self, key: str) -> Term | None:
        for t in self.terms:
            if t.key == key:
                return t
        return None

    def bytes_of(self, key: str) -> int:
        t = self.term(key)
        return t.bytes if t else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A predicted vLLM startup."""

    vllm_version: str
    rules: RuleSet
    model: ModelDescription
    device: Device
    device_count: int
    args: EngineArgs
    engine: EngineConfig
    used_by_others_bytes: int
    ranks: tuple[RankPlan, ...]
    verdict: str
    """``starts`` or ``fails``."""
    error_kind: str | None
    error_message: str | None
    num_gpu_blocks: int | None
    kv_cache_tokens: int | None
    max_concurrency: float | None
    estimated_max_model_len: int | None
    max_model_len: int
    """After auto-fit, when ``--max-model-len auto``."""
    headroom_terms: tuple[Term, ...] = ()
    """What runs after the KV cache is allocated, and the room it has."""
    host_terms: tuple[Term, ...] = ()
    warnings: tuple[str, ...] = ()
    log_lines: tuple[str, ...] = ()
    fix: str | None = None
    error_phase: str | None = None
    """Where the startup fails, in ``explain``'s phase names: ``startup_check``, ``weight_loading``,
    ``kv_sizing``, ``kv_allocation``, ``graph_capture`` or ``warmup``."""
    ignored_flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    serving: Any = None
    """The serving check of one request shape (``serving.ServingCheck``), when one was asked for."""

    def __repr__(self) -> str:
        return (f"Plan({self.model.name!r} on {self.device_count}x {self.device.name}, vLLM {self.vllm_version}: "
                f"{self.verdict}" + (f" ({self.error_kind})" if self.error_kind else
                                     f", {self.kv_cache_tokens:,} KV tokens" if self.kv_cache_tokens else "") + ")")

    def to_dict(self) -> dict:
        """The ``vramplan plan --json`` object (``render/json.py``)."""
        from .render.json import plan_to_dict

        return plan_to_dict(self)

    def to_json(self) -> str:
        """``to_dict()`` as the JSON text ``vramplan plan --json`` prints."""
        import json

        return json.dumps(self.to_dict(), indent=2)

    @property
    def logged_rank(self) -> RankPlan:
        """The worker whose figures vLLM logs: rank 0 of the last pipeline stage."""
        return self.ranks[-1]

    @property
    def starts(self) -> bool:
        return self.verdict == "starts"


