"""``vramplan fit``, ``knobs`` and ``sweep``."""

from __future__ import annotations

import argparse

from ._common import add_target_args, console, epilog, print_json, target_kwargs

__all__ = ["add_parsers"]


def add_parsers(sub) -> dict[str, argparse.ArgumentParser]:
    raw = argparse.RawDescriptionHelpFormatter
    f = sub.add_parser("fit", help="solve for the flags that fit a workload (util, max-model-len, concurrency)",
                       epilog=epilog("fit"), formatter_class=raw)
    add_target_args(f)
    f.add_argument("--concurrency", default=1, help="requests served at once (default 1)")
    f.add_argument("--context", default=None,
                   help="tokens per request, prompt + output (8192 or 8k); default: the model's max-model-len")
    f.add_argument("--images-per-request", type=int, default=0, help="images in each request (multimodal models)")
    f.add_argument("--image", default=None, help="image size WxH, e.g. 1920x1080")
    f.add_argument("--budget-gib", default=None, help="the most this server may take per device")
    f.set_defaults(handler=_cmd_fit)

    k = sub.add_parser("knobs", help="every memory-saving knob, with the GiB it frees and its cost",
                       epilog=epilog("knobs"), formatter_class=raw)
    add_target_args(k)
    k.add_argument("--concurrency", default=None,
                   help="with a workload, each knob also shows the smallest util that holds it")
    k.add_argument("--context", default=None, help="tokens per request of that workload (8192 or 8k)")
    k.set_defaults(handler=_cmd_knobs)

    s = sub.add_parser("sweep", help="vary one flag over a range: a table and a picture",
                       epilog=epilog("sweep"), formatter_class=raw)
    add_target_args(s)
    s.add_argument("--vary", required=True,
                   help="FLAG=LOW:HIGH or FLAG=A,B,C: any vLLM memory flag (or used-by-others-gib), "
                        "e.g. max-model-len=4096:131072, tensor-parallel-size=1,2,4")
    s.add_argument("--steps", type=int, default=8, help="values in a LOW:HIGH range (default 8)")
    s.add_argument("--plot", default=None, help="write the picture (PNG/SVG)")
    s.set_defaults(handler=_cmd_sweep)
    return {"fit": f, "knobs": k, "sweep": s}


def _cmd_fit(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..api import fit

    res = fit(ns.model, concurrency=ns.concurrency, context=ns.context, images_per_request=ns.images_per_request,
              image=ns.image, budget_gib=ns.budget_gib, **target_kwargs(ns, flags))
    if ns.json:
        print_json(res.to_json())
        return 0
    from ..render.fit import render_fit

    render_fit(res, console())
    return 0


def _cmd_knobs(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..api import knobs

    res = knobs(ns.model, concurrency=ns.concurrency, context=ns.context, **target_kwargs(ns, flags))
    if ns.json:
        print_json(res.to_json())
        return 0
    from ..render.knobs import render_knobs

    render_knobs(res, console())
    return 0


def _cmd_sweep(ns: argparse.Namespace, flags: list[str]) -> int:
    from ..api import sweep

    res = sweep(ns.model, vary=ns.vary, steps=ns.steps, **target_kwargs(ns, flags))
    drawn = False
    if ns.plot:
        from ..render.plot import plot_sweep

        ok = [(v, p) for v, p in zip(res.values, res.plans) if p is not None]
        if ok:  # the values that could be planned
            plot_sweep(res.flag, [v for v, _ in ok], [p for _, p in ok], ns.plot)
            drawn = True
    if ns.json:
        print_json(res.to_json())
        return 0
    from ..render.sweep import render_sweep

    render_sweep(res, console())
    if ns.plot:
        print(f"wrote {ns.plot}" if drawn else f"no picture: no value of {res.flag} could be planned")
    return 0
