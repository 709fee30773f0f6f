"""Which vLLM releases can load the architectures of the family modules.

Read from ``vllm/model_executor/models/registry.py`` of the wheels at hand: an architecture absent from one
release's registry and present in a later one was added in between. A plan for a release that does not have it
is refused with vLLM's own error (``_ModelRegistry._raise_for_unsupported``: "Model architectures [...] are not
supported for now"); a release between the last checked without it and the first checked with it is planned with
a warning.
"""

from __future__ import annotations

from ...errors import UnsupportedError

__all__ = ["ARCH_RELEASES", "check_architecture"]

Version = tuple[int, int, int]

# architecture -> (newest release checked WITHOUT it, oldest release checked WITH it); None: none checked lacks it
ARCH_RELEASES: dict[str, tuple[Version | None, Version]] = {
    # registries read: 0.10.2, 0.11.0, 0.12.0, 0.13.0, 0.14.1, 0.15.0, 0.16.0, 0.17.0, 0.18.0, 0.19.0, 0.26.0,
    # 0.33.0, 0.34.0
    "NemotronHForCausalLM": (None, (0, 10, 2)),
    "MiniMaxM2ForCausalLM": ((0, 11, 0), (0, 12, 0)),
    "MiMoV2FlashForCausalLM": ((0, 13, 0), (0, 14, 1)),
    "Qwen3_5ForConditionalGeneration": ((0, 16, 0), (0, 17, 0)),
    "Qwen3_5MoeForConditionalGeneration": ((0, 16, 0), (0, 17, 0)),
    "Gemma4ForConditionalGeneration": ((0, 18, 0), (0, 19, 0)),
    "Gemma4ForCausalLM": ((0, 18, 0), (0, 19, 0)),
}


def _fmt(v: Version) -> str:
    return ".".join(map(str, v))


def check_architecture(arch: str, version: tuple[int, ...], notes: list[str]) -> None:
    """Refuse ``arch`` at a release whose registry lacks it; warn (in ``notes``) inside the unchecked gap."""
    span = ARCH_RELEASES.get(arch)
    if span is None:
        return
    absent, present = span
    v = tuple(version[:3])
    if absent is not None and v <= absent:
        raise UnsupportedError(
            f"vLLM {_fmt(v)}: Model architectures ['{arch}'] are not supported for now "
            f"(vLLM added {arch} after {_fmt(absent)}; {_fmt(present)} has it)",
            hint=f"plan it with --vllm-version {_fmt(present)} or newer")
    if v < present:
        since = f"after {_fmt(absent)}" if absent else "before it"
        notes.append(f"{arch} is in vLLM {_fmt(present)}'s registry; whether {_fmt(v)} has it was not checked "
                     f"(added {since})")
