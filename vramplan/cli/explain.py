"""``vramplan explain``."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ._common import console, print_json

__all__ = ["add_parsers"]


def add_parsers(sub) -> dict[str, argparse.ArgumentParser]:
    e = sub.add_parser("explain", help="read a vLLM log: where every GiB went, the failure, the fix")
    e.add_argument("log", help="the log file, or - for standard input")
    e.add_argument("--json", action="store_true",
                   help="print one JSON object (plan --json's keys) instead of the table")
    e.add_argument("--compare", action="store_true", help="also plan the startup the log describes, side by side")
    e.add_argument("--model", default=None, help="model for --compare when the log's path is not a catalog id")
    e.add_argument("--device", default=None, help="device for --compare when the log does not give its total")
    e.add_argument("--vllm-version", default=None,
                   help="release for --compare (default: the log's version line, else the release its lines "
                        "point to, which the report names)")
    e.add_argument("--sglang-version", default=None,
                   help="SGLang release for --compare on an SGLang log (default: the version the log states)")
    e.set_defaults(handler=_cmd_explain)
    return {"explain": e}


def _cmd_explain(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..api import explain

    if flags:
        raise InputError(f"unrecognised arguments: {' '.join(flags)}", hint="vramplan explain LOG [--json] [--compare]")
    x = explain(ns.log, compare=ns.compare, model=ns.model, device=ns.device, vllm_version=ns.vllm_version)
    if ns.json:
        print_json(x.to_json())
        return 0
    from ..render.explain import render_explanation

    render_explanation(x, console())
    return 0
