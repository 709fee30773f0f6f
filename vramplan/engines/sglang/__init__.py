"""SGLang as an engine of its own: ``vramplan.engines.sglang.plan(...)``.

    >>> from vramplan.engines import sglang
    >>> p = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb")            # doctest: +SKIP
    >>> p.resolved.mem_fraction_static, p.max_total_num_tokens           # doctest: +SKIP

Layout: ``rules`` (per-release data), ``flags`` (SGLang's flag names, a pasted launch line), ``defaults``
(the derived defaults and ``--mem-fraction-static``), ``pool`` (the KV pool sizing), ``planner`` (the plan and
verdict), ``messages`` (SGLang's error texts and log lines), ``log`` (the log reader), ``explain``, ``fit``,
``compare``, ``render`` and ``watch_levels`` (the levels ``vramplan watch`` draws). Read from the SGLang 0.5.17 and 0.5.23 sources; not yet measured on a real startup.
"""

from __future__ import annotations

from typing import Any

from ...errors import FlagError

__all__ = ["plan", "SGLangPlan", "SGLangArgs", "SUPPORTED", "DEFAULT_VERSION", "rules_for"]

# imported on first use, so that the vLLM command line's SGLang hook (engines/sglang/cli.py) stays cheap
_LAZY = {"SGLANG_FIELDS": "flags", "SGLangArgs": "flags", "parse_sglang_flags": "flags", "SGLangPlan": "planner",
         "build_sglang_plan": "planner", "DEFAULT_VERSION": "rules", "SUPPORTED": "rules", "rules_for": "rules"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plan(
    model: Any = None,
    *,
    device: Any = None,
    device_memory_gib: float | None = None,
    sglang_version: str | None = None,
    used_by_others_gib: float = 0.0,
    nvidia_smi_mib: float | None = None,
    args: SGLangArgs | None = None,
    flags: list[str] | None = None,
    free_before_load_gib: float | None = None,
    **server_args: Any,
) -> SGLangPlan:
    """Predict an SGLang startup.

    Server args as keyword arguments with SGLang's names (``mem_fraction_static=0.85, tp_size=2``), as a ready
    :class:`SGLangArgs`, or as command-line flags (``flags=["--context-length", "32768"]`` or a whole
    ``["python", "-m", "sglang.launch_server", "--model-path", MODEL, ...]`` line).
    """
    from ...resolve import load_model, resolve_device
    from ...units import parse_size
    from .flags import SGLANG_FIELDS, SGLangArgs, check_sglang_args, parse_sglang_flags
    from .planner import build_sglang_plan
    from .rules import rules_for

    rules = rules_for(sglang_version)
    ignored: tuple[str, ...] = ()
    unmodelled: tuple[str, ...] = ()
    base = args or SGLangArgs()
    if flags is not None:
        parsed = parse_sglang_flags(list(flags), base=base, legacy_aliases=rules.legacy_aliases)
        base, ignored, unmodelled = parsed.args, parsed.ignored, parsed.unmodelled
    unknown = set(server_args) - SGLANG_FIELDS
    if unknown:
        raise FlagError(f"unknown SGLang server argument(s): {', '.join(sorted(unknown))}",
                        hint="use SGLang's names, e.g. mem_fraction_static, context_length, tp_size")
    if server_args:
        base = base.with_(**server_args)
        check_sglang_args(base)
    if model is not None and base.model_path and isinstance(model, str) and base.model_path != model:
        raise FlagError(f"two models given: {model} and {base.model_path}", hint="name one")
    if model is None:
        model = base.model_path
        if not model:
            raise FlagError("no model given", hint="pass the model id, or a `python -m sglang.launch_server "
                                                   "--model-path MODEL ...` line as flags")
    desc = load_model(model) if isinstance(model, str) else model
    if base.model_path is None:
        base = base.with_(model_path=desc.name)
    dev = resolve_device(device, device_memory_gib=device_memory_gib)
    others = parse_size(used_by_others_gib) if used_by_others_gib else 0
    pre = int(free_before_load_gib * (1 << 30)) if free_before_load_gib is not None else None
    return build_sglang_plan(desc, base, dev, rules, used_by_others_bytes=others, nvidia_smi_mib=nvidia_smi_mib,
                             ignored_flags=ignored, unmodelled=unmodelled, free_before_load_bytes=pre)
