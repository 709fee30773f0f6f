"""The Python API, and the one place that turns names and flags into results.

Every front end (the ``vramplan`` command, the web page, scripts) calls these functions; each
result has ``to_dict()`` (the command's ``--json`` object) and ``to_json()``::

    >>> import vramplan
    >>> p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len="32k")
    >>> p.verdict, p.kv_cache_tokens                                   # doctest: +SKIP
    >>> vramplan.fit("Qwen/Qwen3-8B", concurrency=16, context=8192).serve_line   # doctest: +SKIP
    >>> vramplan.explain("server.log", compare=True).to_dict()["fix"]         # doctest: +SKIP

The inputs are those of the command line: ``model`` (catalog id, local folder or Hub id),
``device``/``device_memory_gib``/``used_by_others_gib``/``vllm_version``, and the engine flags as
keyword arguments with vLLM's names (``max_model_len=32768`` or ``"32k"``, ``tensor_parallel_size=2``),
as a ready :class:`EngineArgs` (``args=``), or as command-line words (``flags=["--max-model-len", "32k"]``,
a whole ``vllm serve MODEL ...`` line as a list or a string). Values are read and checked exactly as on
the command line, and bad input raises the same :class:`~vramplan.errors.InputError` subclass with the
same one line (``exc.one_line()``).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import FlagError, InputError, VramplanError
from .engines.vllm.fixes import attach_fix
from .inputs.devices import Device
from .engines.vllm.flags import EngineArgs, ParsedFlags, args_with, parse_flags, unmodelled_fields
from .model.description import ModelDescription
from .engines.vllm.planner import Plan, build_plan
from .resolve import load_model, resolve_device
from .engines.vllm.rules.versions import RuleSet, for_version
from .units import parse_size

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation
    from .fit import FitResult, KnobsResult, SweepResult

__all__ = ["plan", "explain", "fit", "knobs", "sweep", "load_model", "resolve_device", "Inputs", "compose"]


# ----- the composer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """Names and flags resolved into what the planner takes."""

    model: ModelDescription
    device: Device
    rules: RuleSet
    args: EngineArgs
    """The engine flags, ``model`` set to the name given."""
    used_by_others_bytes: int
    parsed: ParsedFlags
    """The flags as read (ignored and not-modelled ones, each flag's words)."""

    def __repr__(self) -> str:
        return f"Inputs({self.model.name!r}, {self.device.name}, vLLM {self.rules.label})"


def compose(model: str | ModelDescription | None = None, *, device: str | Device | None = None,
            device_memory_gib: float | str | None = None, used_by_others_gib: float | str | None = 0.0,
            vllm_version: str | None = None, args: EngineArgs | None = None,
            flags: Sequence[str] | str | None = None, allow_older_version: bool = False,
            **engine_kwargs: Any) -> Inputs:
    """Resolve a model, a device, a vLLM release and engine flags, checking them as the CLI does."""
    if isinstance(flags, str):
        flags = _split_line(flags)
    # command-line words are read as the CLI reads them (the environment included); without them, ``args``
    # (or vLLM's defaults) stand as given
    parsed = parse_flags(list(flags), base=args) if flags is not None else None
    base = parsed.args if parsed is not None else args
    name = model.name if isinstance(model, ModelDescription) else model
    given = base.model if base is not None else None
    if not name and not given:
        raise FlagError("no model given", hint="name the model, or give a whole `vllm serve MODEL ...` line")
    if name and given and given != name and isinstance(model, str):
        raise FlagError(f"two models given: {name} and {given}", hint="name one")
    name = name or given
    desc = model if isinstance(model, ModelDescription) else load_model(name)
    dev = resolve_device(device, device_memory_gib=device_memory_gib)
    rules = for_version(vllm_version, allow_older=allow_older_version, platform=dev.platform)
    others = parse_size(used_by_others_gib) if used_by_others_gib else 0
    named = {} if isinstance(model, ModelDescription) else {"model": name}
    if engine_kwargs or base is None:
        engine = args_with(base, **engine_kwargs, **named)
    else:
        engine = base.with_(**named) if named else base
    if parsed is None:
        parsed = ParsedFlags(args=engine)
    more = _unmodelled(engine, parsed.unmodelled)
    if more:
        parsed = replace(parsed, unmodelled=parsed.unmodelled + more)
    return Inputs(model=desc, device=dev, rules=rules, args=engine, used_by_others_bytes=others, parsed=parsed)


_UNMODELLED = unmodelled_fields()


def _unmodelled(args: EngineArgs, listed: Sequence[str]) -> tuple[str, ...]:
    """Memory flags set through keywords or ``args`` that vramplan does not model yet (flags list their own)."""
    return tuple(flag for flag, name in _UNMODELLED if flag not in listed and getattr(args, name) not in (None, False))


def _split_line(line: str) -> list[str]:
    try:
        return shlex.split(line.replace("\\\n", " "))
    except ValueError as exc:
        raise FlagError(f"cannot read the command line: {exc}", hint="check the quotes") from None


# ----- the commands ---------------------------------------------------------------------------


def plan(
    model: str | ModelDescription | None = None,
    *,
    device: str | Device | None = None,
    device_memory_gib: float | str | None = None,
    used_by_others_gib: float | str | None = 0.0,
    vllm_version: str | None = None,
    args: EngineArgs | None = None,
    flags: Sequence[str] | str | None = None,
    allow_older_version: bool = False,
    engine: str = "vllm",
    image: str | tuple[int, int] | None = None,
    video: str | tuple[int, int, int] | None = None,
    images_per_request: int = 1,
    **engine_kwargs: Any,
) -> Plan:
    """Predict a vLLM startup: every memory term, the verdict, and for a failing one the smallest fix.

    The plan carries what ``vramplan plan`` shows: the fix (checked by planning it again), a warning
    for flags that change memory but are not modelled yet, the flags ignored as having no memory effect,
    and with ``image="WxH"`` (or ``video="WxHxFRAMES"``) the serving check of one request.

    ``engine="sglang"`` plans an SGLang startup instead (:func:`vramplan.engines.sglang.plan`, SGLang's flag
    names; ``sglang_version=`` picks the release) and returns its ``SGLangPlan``.
    """
    if engine == "sglang":
        from .engines.sglang import plan as _sglang_plan

        if vllm_version is not None:
            raise FlagError("vllm_version applies to vLLM plans", hint="give sglang_version='0.5.23' (or 0.5.17)")

        return _sglang_plan(model, device=device, device_memory_gib=device_memory_gib, args=None, flags=flags,
                            used_by_others_gib=used_by_others_gib, **engine_kwargs)  # type: ignore[return-value]
    if engine != "vllm":
        raise FlagError(f"unknown engine {engine!r}", hint="engine='vllm' or engine='sglang'")
    inp = compose(model, device=device, device_memory_gib=device_memory_gib, used_by_others_gib=used_by_others_gib,
                  vllm_version=vllm_version, args=args, flags=flags, allow_older_version=allow_older_version,
                  **engine_kwargs)
    p = build_plan(inp.model, inp.args, inp.device, inp.rules, used_by_others_bytes=inp.used_by_others_bytes,
                   ignored_flags=inp.parsed.ignored)
    if not p.starts:
        p = attach_fix(p)
    if inp.parsed.unmodelled:
        p = replace(p, warnings=p.warnings + ("not modelled yet, so not counted: " + " ".join(inp.parsed.unmodelled),))
    if image is not None or video is not None:
        from .serving import RequestShape, serving_check

        shape = RequestShape(image=_dims(image, "--image", "WIDTHxHEIGHT", "1920x1080"),
                             video=_dims(video, "--video", "WIDTHxHEIGHTxFRAMES", "1280x720x32 (32 sampled frames)"),
                             images_per_request=images_per_request)
        p = replace(p, serving=serving_check(p, shape))
    return p


def explain(log: str | os.PathLike | Iterable[str], *, compare: bool = False, model: str | None = None,
            device: str | None = None, vllm_version: str | None = None) -> "Explanation":
    """Read a real vLLM log: where every GiB went, vLLM's budget re-checked, the failure and its fix.

    ``log`` is a path (``str`` or ``os.PathLike``), ``"-"`` for standard input, the log's text (a string
    holding newlines), an open text file, or its lines. With ``compare=True`` the startup the log
    describes is planned with its release's rules and put beside it (``model``/``device`` when the log
    does not name them); a comparison that cannot be made is a note, not an error. The release is
    ``vllm_version`` if given, else the log's version line, else the one its lines point to (the
    explanation's ``release`` says which lines and how sure).
    """
    from .explain import compare as compare_log
    from .explain import explanation
    from .engines.vllm.log import parse_log_text, read_log

    if isinstance(log, os.PathLike) or (isinstance(log, str) and "\n" not in log):
        path = os.fspath(log)
        if path != "-" and not os.path.exists(path):
            raise InputError(f"no such log file: {path}",
                             hint="pass the path of a vLLM log, or - to read standard input")
        facts = read_log(path)
    elif isinstance(log, str):
        facts = parse_log_text(log)
    elif hasattr(log, "readline"):
        facts = read_log(log)  # type: ignore[arg-type]
    else:
        facts = parse_log_text("\n".join(line.rstrip("\n") for line in log))
    from .explain import release_for

    rows = note = p = None
    source = used = None
    if vllm_version is not None:
        release_for(facts, vllm_version=vllm_version)  # a malformed version is an error even without --compare
    if compare:
        try:
            p, rows = compare_log(facts, model=model, device=device, vllm_version=vllm_version)
        except VramplanError as exc:
            note = exc.one_line()
    platform = p.device.platform if p is not None else None
    used, source, inference = release_for(facts, platform=platform, vllm_version=vllm_version)
    checks: list = []
    if p is None:  # no comparison asked for, or it could not be made
        used = source = None
    elif source == "inferred" and len(inference.rule_sets) > 1:
        from .explain import range_check

        checks = range_check(facts, inference, rows, model=model, device=device, chosen_label=p.rules.label)
    return explanation(facts, compared=compare, compare_rows=rows, compare_note=note, plan=p, release=inference,
                       release_source=source, compared_version=used, range_check=tuple(checks))


def fit(
    model: str | ModelDescription | None = None,
    *,
    concurrency: int = 1,
    context: int | str | None = None,
    images_per_request: int = 0,
    image: str | tuple[int, int] | None = None,
    budget_gib: float | str | None = None,
    device: str | Device | None = None,
    device_memory_gib: float | str | None = None,
    used_by_others_gib: float | str | None = 0.0,
    vllm_version: str | None = None,
    args: EngineArgs | None = None,
    flags: Sequence[str] | str | None = None,
    allow_older_version: bool = False,
    **engine_kwargs: Any,
) -> "FitResult":
    """Solve for the flags that hold a workload: the smallest util that starts and holds ``concurrency``
    requests of ``context`` tokens (or, with the util given, what it holds), and the ready ``vllm serve``
    line, which keeps the other flags given (``--port 8000``, ...)."""
    from .fit import Workload, other_flags
    from .fit import fit as solve

    inp = compose(model, device=device, device_memory_gib=device_memory_gib, used_by_others_gib=used_by_others_gib,
                  vllm_version=vllm_version, args=args, flags=flags, allow_older_version=allow_older_version,
                  **engine_kwargs)
    conc = _positive_int(concurrency, "--concurrency", what="a number of requests", example="16")
    ctx = _positive_int(context, "--context")
    w = Workload(concurrency=conc or 1, context=ctx, images_per_request=images_per_request,
                 image=_dims(image, "--image", "WIDTHxHEIGHT", "1920x1080"),
                 budget_bytes=parse_size(budget_gib) if budget_gib else None)
    return solve(inp.model, inp.device, inp.rules, inp.args, w, used_by_others_bytes=inp.used_by_others_bytes,
                 extra_flags=other_flags(inp.parsed.spans))


def knobs(
    model: str | ModelDescription | None = None,
    *,
    concurrency: int | None = None,
    context: int | str | None = None,
    device: str | Device | None = None,
    device_memory_gib: float | str | None = None,
    used_by_others_gib: float | str | None = 0.0,
    vllm_version: str | None = None,
    args: EngineArgs | None = None,
    flags: Sequence[str] | str | None = None,
    allow_older_version: bool = False,
    **engine_kwargs: Any,
) -> "KnobsResult":
    """Every memory knob, planned: the GiB it frees, the KV tokens it adds, its cost (and with a workload,
    the util it needs)."""
    from .fit import KnobsResult, Workload
    from .fit import knobs as rank_knobs

    inp = compose(model, device=device, device_memory_gib=device_memory_gib, used_by_others_gib=used_by_others_gib,
                  vllm_version=vllm_version, args=args, flags=flags, allow_older_version=allow_older_version,
                  **engine_kwargs)
    ctx = _positive_int(context, "--context")
    conc = _positive_int(concurrency, "--concurrency", what="a number of requests", example="16")
    w = Workload(concurrency=conc or 1, context=ctx) if (conc or ctx) else None
    base, ks = rank_knobs(inp.model, inp.device, inp.rules, inp.args, workload=w,
                          used_by_others_bytes=inp.used_by_others_bytes)
    return KnobsResult(baseline=base, knobs=tuple(ks), workload=w)


def sweep(
    model: str | ModelDescription | None = None,
    *,
    vary: str,
    steps: int = 8,
    values: Sequence | None = None,
    device: str | Device | None = None,
    device_memory_gib: float | str | None = None,
    used_by_others_gib: float | str | None = 0.0,
    vllm_version: str | None = None,
    args: EngineArgs | None = None,
    flags: Sequence[str] | str | None = None,
    allow_older_version: bool = False,
    **engine_kwargs: Any,
) -> "SweepResult":
    """Vary one flag: ``vary="max-model-len=4096:131072"`` (``steps`` values, geometric for integers) or
    ``"kv-cache-dtype=auto,fp8"``, or ``vary="max-num-seqs", values=[64, 128, 256]``. Any vLLM flag that
    changes memory can be swept, and ``used-by-others-gib``. A value that cannot be planned (TP 3 for 32
    heads) marks its row with the reason."""
    from .fit import SweepResult, parse_vary, sweep_rows

    inp = compose(model, device=device, device_memory_gib=device_memory_gib, used_by_others_gib=used_by_others_gib,
                  vllm_version=vllm_version, args=args, flags=flags, allow_older_version=allow_older_version,
                  **engine_kwargs)
    if not isinstance(steps, int) or steps < 1:
        raise InputError("--steps must be at least 1")
    if values is not None:
        vary = f"{vary.split('=', 1)[0]}=" + ",".join(str(v) for v in values)
    flag, field_name, vals = parse_vary(vary, steps)
    rows = sweep_rows(inp.model, inp.device, inp.rules, inp.args, field_name, vals,
                      used_by_others_bytes=inp.used_by_others_bytes)
    return SweepResult(flag=flag, values=tuple(vals), plans=tuple(p for p, _ in rows),
                       errors=tuple(e for _, e in rows))


# ----- small readers --------------------------------------------------------------------------


def _positive_int(value: int | str | None, flag: str, *, what: str = "a number of tokens",
                  example: str = "8192") -> int | None:
    """A count as the CLI reads it (``8192``, ``8k``), or None."""
    from .units import parse_human_int

    if value is None:
        return None
    try:
        n = parse_human_int(str(value)) if not isinstance(value, bool) else -1
    except (ValueError, TypeError, InputError):
        raise InputError(f"{flag} takes {what}, got {value!r}", hint=f"e.g. {flag} {example}") from None
    if n < 1:
        raise InputError(f"{flag} must be at least 1, got {value!r}")
    return n


def _dims(value: str | Sequence[int] | None, flag: str, names: str, example: str) -> Any:
    """``WxH`` (or ``WxHxF``): as many whole numbers as ``names`` has parts."""
    if value is None or value == "":
        return None
    parts = value.lower().split("x") if isinstance(value, str) else list(value)
    try:
        if len(parts) != len(names.split("x")):
            raise ValueError
        return tuple(int(p) for p in parts)
    except (ValueError, TypeError):
        raise InputError(f"{flag} takes {names}, got {value!r}", hint=f"e.g. {flag} {example}") from None
