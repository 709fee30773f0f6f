"""The ``vramplan`` command: argparse and printing only. Every answer comes from the API (``vramplan/api.py``)
and is printed by ``vramplan/render/``.

Exit codes: 0 for any answer (a plan that fails to start is an answer), 2 for bad input
(one line on stderr, no traceback; with ``--json`` also a JSON object on stdout), 1 for a bug
(a JSON object too under ``--json``; set ``VRAMPLAN_DEBUG=1`` for the traceback).
Output cut short by a closed pipe (``| head``) ends quietly.

    cli/__init__.py   main(): split at --, parse, dispatch, map errors to exit codes
    cli/_common.py    the target options, the pasted-line epilog, where flags belong
    cli/plan.py       plan, models, devices
    cli/explain.py    explain
    cli/fit.py        fit, knobs, sweep
    watch/cli.py      watch (registered here)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import InvalidConfig, VramplanError

__all__ = ["main", "build_parser"]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and each subcommand's parser, by name."""
    from ..watch.cli import add_cli as add_watch
    from . import explain, fit, plan

    parser = argparse.ArgumentParser(
        prog="vramplan",
        description="Where your accelerator memory goes when vLLM starts, without a GPU.",
    )
    parser.add_argument("--version", action="version", version=f"vramplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers: dict[str, argparse.ArgumentParser] = {}
    parsers.update(plan.add_parsers(sub))
    parsers.update(explain.add_parsers(sub))
    parsers.update(fit.add_parsers(sub))
    parsers["watch"] = add_watch(sub)
    from ..engines.sglang.cli import add_cli as add_compare

    add_compare(sub)
    parsers["compare"] = sub.choices["compare"]
    from ..web.cli import add_cli as add_serve

    add_serve(sub)
    parsers["serve"] = sub.choices["serve"]
    return parser, parsers


def _split_dashdash(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, pasted = _split_dashdash(argv)
    json_mode = "--json" in own or (bool(own) and own[0] != "watch" and "--json" in pasted)
    try:
        parser, parsers = build_parser()
        ns, extra = parser.parse_known_args(own)
        if ns.command is None:
            parser.print_help()
            return 0
        if ns.command == "watch":  # what follows -- (and unknown options) is the command to watch
            return _flushed(int(ns.handler(ns, list(extra) + list(pasted)) or 0))
        tokens = list(extra) + list(pasted)
        if ns.command in ("plan", "explain", "fit", "knobs", "sweep"):  # SGLang logs, --engine sglang, a pasted
            from ..engines.sglang import cli as sglang_cli               # `python -m sglang.launch_server` line

            if ns.command == "explain":
                done = sglang_cli.maybe_explain(ns, tokens)
                if done is not None:
                    return _flushed(done)
            elif sglang_cli.wants_sglang(ns, tokens):
                if ns.command == "plan":
                    return _flushed(sglang_cli.cmd_plan(ns, extra, pasted))
                return _flushed(sglang_cli.dispatch(ns, tokens))
        from ._common import check_flag_places

        check_flag_places(ns.command, parsers, list(extra), list(pasted))
        if ns.command in ("models", "devices") and (extra or pasted):
            raise VramplanError(f"unrecognised arguments: {' '.join(extra + pasted)}",
                                hint=f"see `vramplan {ns.command} --help`")
        return _flushed(int(ns.handler(ns, list(extra) + list(pasted)) or 0))
    except InvalidConfig as exc:
        return _fail(exc.one_line(), json_mode, kind="invalid_config", message=exc.message)
    except VramplanError as exc:
        return _fail(exc.one_line(), json_mode)
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code) if isinstance(exc.code, int) else 2
    except Exception as exc:  # a bug
        if os.environ.get("VRAMPLAN_DEBUG"):
            raise
        line = f"internal error: {type(exc).__name__}: {exc}"
        try:
            print(f"vramplan: {line} (set VRAMPLAN_DEBUG=1 for the traceback)", file=sys.stderr)
            if json_mode:
                print(json.dumps({"error": line, "error_kind": "internal_error"}))
        except BrokenPipeError:
            return _closed_pipe()
        return 1


def _flushed(code: int) -> int:
    sys.stdout.flush()  # here, so that a reader gone away (`| head`) is caught like any other closed pipe
    return code


def _closed_pipe() -> int:
    """The reader went away (``| head``): stop quietly, and keep Python from complaining when it flushes
    stdout at exit. 141 is what a shell reports for a program ended by SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 141


def _fail(line: str, json_mode: bool, *, kind: str | None = None, message: str | None = None) -> int:
    """One line on stderr; with --json also an object on stdout (a plan-shaped one for refused configs)."""
    from ..render.json import error_to_dict

    try:
        print(f"vramplan: {line}", file=sys.stderr)
        if json_mode:
            print(json.dumps(error_to_dict(line, kind=kind, message=message)))
    except BrokenPipeError:
        return _closed_pipe()
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
