"""The SGLang side of the command line: ``plan --engine sglang`` (or a pasted ``python -m sglang.launch_server``
line), ``explain`` on an SGLang log, ``fit``/``knobs``/``sweep --engine sglang`` and ``compare``.

``vramplan/cli.py`` only dispatches here (a few lines at the top of its handlers), so the logic can move with
the CLI package. Argparse namespaces come from the main parser; the SGLang flags come as the extra tokens.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

from ...errors import InputError, LogParseError

__all__ = ["wants_sglang", "cmd_plan", "maybe_explain", "dispatch", "add_cli"]


def wants_sglang(ns: argparse.Namespace, tokens: list[str]) -> bool:
    """``--engine sglang``, or a pasted SGLang launch line."""
    engine = getattr(ns, "engine", None)
    if engine == "sglang":
        return True
    if engine == "vllm" or not any("sglang" in t for t in tokens):  # no launch line to read (no import needed)
        return False
    from .flags import is_sglang_command

    return is_sglang_command(list(tokens))


def _plan_from(ns: argparse.Namespace, tokens: list[str], **override):
    from . import plan
    from .rules import rules_for

    rules = rules_for(getattr(ns, "sglang_version", None))
    from .flags import parse_sglang_flags

    parsed = parse_sglang_flags(list(tokens), legacy_aliases=rules.legacy_aliases)
    a = parsed.args
    name = getattr(ns, "model", None) or a.model_path
    if not name:
        raise InputError("no model given", hint="vramplan plan MODEL --engine sglang [flags], or paste "
                                                "`-- python -m sglang.launch_server --model-path MODEL ...`")
    if getattr(ns, "model", None) and a.model_path and a.model_path != ns.model:
        raise InputError(f"two models given: {ns.model} and {a.model_path}", hint="name one")
    a = a.with_(model_path=name, **override)
    p = plan(name, device=ns.device, device_memory_gib=ns.device_memory_gib, args=a,
             sglang_version=getattr(ns, "sglang_version", None), used_by_others_gib=float(ns.used_by_others_gib or 0),
             nvidia_smi_mib=float(ns.nvidia_smi_mib) if getattr(ns, "nvidia_smi_mib", None) else None)
    if parsed.ignored or parsed.unmodelled:
        from dataclasses import replace

        warn = p.warnings + (("not modelled yet, so not counted: " + " ".join(parsed.unmodelled),)
                             if parsed.unmodelled else ())
        p = replace(p, ignored_flags=parsed.ignored, warnings=warn)
    return p


def cmd_plan(ns: argparse.Namespace, extra: list[str], pasted: list[str]) -> int:
    from .render import render_sglang_plan, sglang_plan_to_dict

    p = _plan_from(ns, list(extra) + list(pasted))
    if ns.json:
        print(json.dumps(sglang_plan_to_dict(p), indent=2))
    else:
        render_sglang_plan(p, sys.stdout, verbose=getattr(ns, "verbose", False))
    return 0


_SNIFF_CHARS = 4 << 20
"""How much of a log's head is read to tell SGLang's from vLLM's (its startup lines come first)."""


class _Prefixed(io.TextIOBase):
    """A text stream that gives the lines already read first, then the rest of ``rest``."""

    def __init__(self, head: str, rest) -> None:
        self._head, self._rest = io.StringIO(head), rest

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        return self._head.readline(size) or self._rest.readline(size)

    def read(self, size: int = -1) -> str:  # type: ignore[override]
        return self._head.read(size) + (self._rest.read(size) if size < 0 else "")


def maybe_explain(ns: argparse.Namespace, extra: list[str]) -> int | None:
    """Explain an SGLang log; None when the log is not SGLang's (vLLM's reader takes it then)."""
    from .explain import compare_with_plan, explain_lines, facts_to_dict
    from .log import looks_like_sglang_log, read_sglang_log

    src = ns.log
    if src == "-":
        stream = sys.stdin
    else:
        if not os.path.exists(src):
            return None
        try:
            stream = open(src, encoding="utf-8", errors="replace")
        except OSError as e:
            raise LogParseError(f"cannot read the log {src!r}: {e.strerror or e}", hint="give the path of a log") from None
    # SGLang prints its markers at startup (server_args=..., Load weight begin): a log is recognised from its head,
    # so a vLLM log is not read twice (or held in memory) and `vllm serve ... | vramplan explain -` still streams
    head: list[str] = []
    size = 0
    while size < _SNIFF_CHARS:
        line = stream.readline()
        if not line:
            break
        head.append(line)
        size += len(line)
    text = "".join(head)
    if not looks_like_sglang_log(text):
        if src == "-":
            sys.stdin = _Prefixed(text, stream)  # hand the lines read on to vLLM's reader
        else:
            stream.close()
        return None
    text += stream.read()
    if src != "-":
        stream.close()
    if extra:
        raise InputError(f"unrecognised arguments: {' '.join(extra)}", hint="vramplan explain LOG [--json] [--compare]")
    f = read_sglang_log(text)
    rows = note = None
    if getattr(ns, "compare", False):
        try:
            _, rows = compare_with_plan(f, model=ns.model, device=ns.device,
                                        sglang_version=getattr(ns, "sglang_version", None))
        except Exception as exc:  # the comparison is optional; the log's own figures stand
            note = getattr(exc, "one_line", lambda: str(exc))()
    if ns.json:
        obj = facts_to_dict(f)
        if getattr(ns, "compare", False):
            obj["compare"] = ({"rows": [{"term": t, "predicted": p, "logged": lg} for t, p, lg in rows]}
                              if rows else {"unavailable": note})
        print(json.dumps(obj, indent=2, default=str))
    else:
        print("\n".join(explain_lines(f, rows, note)))
    return 0


def dispatch(ns: argparse.Namespace, tokens: list[str]) -> int:
    """fit / knobs / sweep with ``--engine sglang``."""
    from . import fit as F

    if ns.command == "fit":
        return F.cmd_fit(ns, tokens, _plan_from)
    if ns.command == "knobs":
        return F.cmd_knobs(ns, tokens, _plan_from)
    if ns.command == "sweep":
        return F.cmd_sweep(ns, tokens, _plan_from)
    raise InputError(f"`{ns.command}` has no SGLang form yet", hint="use plan, explain, fit, knobs, sweep or compare")


def add_cli(sub) -> None:
    """The ``compare`` subcommand."""
    c = sub.add_parser("compare", help="vLLM and SGLang side by side: KV tokens and concurrency on one device")
    c.add_argument("model", nargs="?", help="catalog id (`vramplan models`), local folder with config.json, or Hub id")
    c.add_argument("--device", default=None, help="device from the catalog (`vramplan devices`), default h100-80gb")
    c.add_argument("--device-memory-gib", default=None,
                   help="total memory the runtime reports, instead of (or overriding) the catalog's")
    c.add_argument("--tp", type=int, default=1, help="tensor-parallel size (both engines)")
    c.add_argument("--context", type=int, default=None,
                   help="context length (vLLM --max-model-len, SGLang --context-length); default: the model's")
    c.add_argument("--kv-cache-dtype", default="auto", choices=("auto", "fp8"), help="auto or fp8 (e4m3) in both")
    c.add_argument("--gpu-memory-utilization", type=float, default=None, help="vLLM's budget (default 0.9)")
    c.add_argument("--mem-fraction-static", type=float, default=None, help="SGLang's fraction (default: SGLang's)")
    c.add_argument("--vllm-version", default=None, help="vLLM release whose rules to apply (default: the newest)")
    c.add_argument("--sglang-version", default=None, help="SGLang release whose rules to apply (0.5.17, 0.5.23)")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    c.set_defaults(handler=_cmd_compare)


def _cmd_compare(ns: argparse.Namespace, extra: list[str]) -> int:
    from .compare import compare_engines, render_compare

    if extra:
        raise InputError(f"unrecognised arguments: {' '.join(extra)}",
                         hint="vramplan compare MODEL [--device D] [--tp N] [--context N] [--kv-cache-dtype fp8]")
    if not ns.model:
        raise InputError("no model given", hint="vramplan compare MODEL --device h100")
    res = compare_engines(ns.model, device=ns.device, device_memory_gib=ns.device_memory_gib, tp=ns.tp,
                          context=ns.context, kv_fp8=ns.kv_cache_dtype == "fp8",
                          gpu_memory_utilization=ns.gpu_memory_utilization,
                          mem_fraction_static=ns.mem_fraction_static, vllm_version=ns.vllm_version,
                          sglang_version=ns.sglang_version)
    if ns.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(render_compare(res))
    return 0
