"""``vramplan plan``, ``models`` and ``devices``."""

from __future__ import annotations

import argparse
import json

from ._common import add_target_args, console, epilog, print_json, target_kwargs

__all__ = ["add_parsers"]


def add_parsers(sub) -> dict[str, argparse.ArgumentParser]:
    p = sub.add_parser("plan", help="predict a vLLM startup: every memory term, KV blocks, tokens, the verdict",
                       epilog=epilog("plan"), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_args(p)
    p.add_argument("--verbose", "-v", action="store_true", help="show the parts of each term")
    p.add_argument("--plot", default=None, help="write the stacked breakdown as a PNG or SVG")
    p.add_argument("--image", default=None, help="serving check: image size WIDTHxHEIGHT of a request")
    p.add_argument("--images-per-request", type=int, default=1,
                   help="serving check: images (or videos) in one request")
    p.add_argument("--video", default=None,
                   help="serving check: video WIDTHxHEIGHTxFRAMES (sampled frames) of a request")
    p.set_defaults(handler=_cmd_plan)
    m = sub.add_parser("models", help="list the bundled model catalog")
    m.add_argument("--json", action="store_true", help="print a JSON list of the catalog ids")
    m.set_defaults(handler=_cmd_models)
    d = sub.add_parser("devices", help="list the device catalog")
    d.add_argument("--json", action="store_true", help="print a JSON list of the devices")
    d.set_defaults(handler=_cmd_devices)
    return {"plan": p, "models": m, "devices": d}


def _cmd_plan(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..api import plan

    p = plan(ns.model, image=ns.image, video=ns.video, images_per_request=ns.images_per_request,
             **target_kwargs(ns, flags))
    if ns.plot:
        from ..render.plot import plot_plan

        plot_plan(p, ns.plot)
    if ns.json:
        print_json(p.to_json())
        return 0
    from ..render.table import render_plan

    render_plan(p, console(), verbose=ns.verbose)
    if ns.plot:
        print(f"wrote {ns.plot}")
    return 0


def _cmd_models(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..inputs.model_source import catalog_ids

    if ns.json:
        print_json(json.dumps(list(catalog_ids()), indent=2))
        return 0
    for cid in catalog_ids():
        print(cid)
    return 0


def _cmd_devices(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..inputs.devices import DEVICES

    if ns.json:
        print_json(json.dumps([{"name": d.name, "label": d.label, "total_gib": round(d.total_gib, 4),
                                "platform": d.platform, "source": d.source} for d in DEVICES.values()], indent=2))
        return 0
    for d in DEVICES.values():
        print(f"{d.name:14s} {d.total_gib:7.2f} GiB  {d.platform:6s} {d.label}  [{d.source.split(':')[0]}]")
    return 0
