"""The ``vramplan`` command: a thin layer over the API (parse, call, render, map errors to exit codes).

Exit codes: 0 for any answer (a plan that fails to start is an answer), 2 for bad input
(one line on stderr, no traceback), 1 for a bug (set ``VRAMPLAN_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from . import __version__
from .errors import InvalidConfig, VramplanError

__all__ = ["main"]

_PLAN_EPILOG = """\
Any vLLM engine flag may follow, with vLLM's own names and defaults (--max-model-len 32k,
-tp 2, --kv-cache-dtype fp8, --limit-mm-per-prompt '{"image":2}', -cc.cudagraph_mode=PIECEWISE, ...),
or paste a whole command after --:   vramplan plan -- vllm serve Qwen/Qwen3-8B --max-model-len 32768
Environment variables vLLM reads (VLLM_USE_V2_MODEL_RUNNER, VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, ...)
are honoured, from the environment or written before `vllm serve` in the pasted line.
"""


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None,
                   help="device from the catalog (`vramplan devices`), default h100-80gb")
    p.add_argument("--device-memory-gib", default=None,
                   help="total memory the runtime reports, instead of (or overriding) the catalog's")
    p.add_argument("--used-by-others-gib", default="0",
                   help="memory other programs already hold on each device (GiB)")
    p.add_argument("--vllm-version", default=None,
                   help="vLLM version whose rules to apply (default: newest supported, 0.33.0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vramplan",
        description="Where your accelerator memory goes when vLLM starts, without a GPU.",
    )
    parser.add_argument("--version", action="version", version=f"vramplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plan", help="predict a vLLM startup: every memory term, KV blocks, tokens, the verdict",
                       epilog=_PLAN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="catalog id, local folder with config.json, or Hub id")
    _add_target_args(p)
    p.add_argument("--verbose", "-v", action="store_true", help="show the parts of each term")
    p.add_argument("--plot", default=None, help="write the stacked breakdown as a PNG or SVG")
    p.add_argument("--image", default=None, help="serving check: image size WIDTHxHEIGHT of a request")
    p.add_argument("--images-per-request", type=int, default=1,
                   help="serving check: images (or videos) in one request")
    p.add_argument("--video", default=None, help="serving check: video WIDTHxHEIGHTxFRAMES (sampled frames) of a request")

    sub.add_parser("models", help="list the bundled model catalog")
    sub.add_parser("devices", help="list the device catalog")
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Subcommands whose modules register themselves (explain, fit, knobs, sweep, watch)."""
    for name, module in (("explain", "vramplan.explain"), ("fit", "vramplan.fit"), ("watch", "vramplan.watch.cli"),
                         ("serve", "vramplan.web.cli")):
        try:
            mod = __import__(module, fromlist=["add_cli"])
        except ImportError:
            continue
        adder: Callable | None = getattr(mod, "add_cli", None)
        if adder is not None:
            adder(sub)


def _split_dashdash(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _cmd_plan(ns: argparse.Namespace, extra: list[str], pasted: list[str]) -> int:
    from .api import load_model, resolve_device
    from .fixes import attach_fix
    from .inputs.flags import parse_flags
    from .planner import build_plan
    from .rules.versions import for_version
    from .units import parse_size

    flags = list(extra) + list(pasted)
    parsed = parse_flags(flags)
    model_name = ns.model or parsed.args.model
    if not model_name:
        raise VramplanError("no model given", hint="vramplan plan MODEL [flags], or paste `-- vllm serve MODEL ...`")
    if ns.model and parsed.args.model and parsed.args.model != ns.model:
        raise VramplanError(f"two models given: {ns.model} and {parsed.args.model}", hint="name one")
    model = load_model(model_name)
    device = resolve_device(ns.device, device_memory_gib=ns.device_memory_gib)
    rules = for_version(ns.vllm_version, platform=device.platform)
    others = parse_size(ns.used_by_others_gib)
    plan = build_plan(model, parsed.args.with_(model=model_name), device, rules, used_by_others_bytes=others,
                      ignored_flags=parsed.ignored)
    plan = attach_fix(plan)
    if parsed.unmodelled:
        from dataclasses import replace

        plan = replace(plan, warnings=plan.warnings + (
            "not modelled yet, so not counted: " + " ".join(parsed.unmodelled),))
    serving = None
    if ns.image or ns.video:
        from .fit import _image, _video
        from .serving import RequestShape, serving_check

        serving = serving_check(plan, RequestShape(image=_image(ns.image), video=_video(ns.video),
                                                   images_per_request=ns.images_per_request))
    if ns.plot:
        from .render.plot import plot_plan

        plot_plan(plan, ns.plot)
    if ns.json:
        from .render.json import plan_to_dict

        obj = plan_to_dict(plan)
        if serving is not None:
            obj["serving"] = {"fits": serving.fits, "verdict": serving.verdict,
                              "tokens_per_image": serving.tokens_per_image,
                              "gib": {t.key: round(t.bytes / 2**30, 4) for t in serving.terms}}
        print(json.dumps(obj, indent=2))
    else:
        from rich.console import Console

        from .render.table import render_plan

        render_plan(plan, Console(), verbose=ns.verbose)
        if serving is not None:
            print("\nServing check (one request):")
            for t in serving.terms:
                print(f"  {t.label:60s} {t.bytes / 2**30:7.2f} GiB")
            print("  " + serving.verdict)
        if ns.plot:
            print(f"wrote {ns.plot}")
    return 0


def _cmd_models() -> int:
    from .inputs.model_source import catalog_ids

    for cid in catalog_ids():
        print(cid)
    return 0


def _cmd_devices() -> int:
    from .inputs.devices import DEVICES

    for d in DEVICES.values():
        print(f"{d.name:14s} {d.total_gib:7.2f} GiB  {d.platform:6s} {d.label}  [{d.source.split(':')[0]}]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, pasted = _split_dashdash(argv)
    parser = _build_parser()
    json_mode = "--json" in own
    try:
        ns, extra = parser.parse_known_args(own)
        if ns.command is None:
            parser.print_help()
            return 0
        if ns.command == "plan":
            return _cmd_plan(ns, extra, pasted)
        handler = getattr(ns, "handler", None)
        if handler is not None:  # explain, fit, knobs, sweep, watch: they take vLLM flags / a command too
            return int(handler(ns, list(extra) + list(pasted)) or 0)
        if extra:
            raise VramplanError(f"unrecognised arguments: {' '.join(extra)}", hint=f"see `vramplan {ns.command} --help`")
        if ns.command == "models":
            return _cmd_models()
        if ns.command == "devices":
            return _cmd_devices()
        parser.print_help()
        return 2
    except InvalidConfig as exc:
        return _fail(exc.one_line(), json_mode, kind="invalid_config", message=exc.message)
    except VramplanError as exc:
        return _fail(exc.one_line(), json_mode)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code) if isinstance(exc.code, int) else 2
    except Exception as exc:  # a bug
        if os.environ.get("VRAMPLAN_DEBUG"):
            raise
        print(f"vramplan: internal error: {type(exc).__name__}: {exc} (set VRAMPLAN_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


def _fail(line: str, json_mode: bool, *, kind: str | None = None, message: str | None = None) -> int:
    """One line on stderr; with --json also an object on stdout (a plan-shaped one for refused configs)."""
    print(f"vramplan: {line}", file=sys.stderr)
    if json_mode:
        obj: dict = {"error": line}
        if kind:
            obj.update({"verdict": "fails", "error_kind": kind, "error_message": message})
        print(json.dumps(obj))
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
