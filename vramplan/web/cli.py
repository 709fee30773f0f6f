"""``vramplan serve``: the local web page and JSON API (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError

__all__ = ["add_cli"]

DEFAULT_PORT = 8765


def add_cli(sub) -> None:
    s = sub.add_parser("serve", help="a local web page and JSON API (POST /api/plan, explain, fit, knobs, sweep)",
                       description="Serve the vramplan page and its JSON API. Bound to 127.0.0.1 unless --host "
                                   "says otherwise. Needs the web extra: pip install 'vramplan[web]'.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    s.set_defaults(handler=_cmd_serve)


def _cmd_serve(ns: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise InputError(f"unrecognised arguments: {' '.join(extra)}", hint="vramplan serve [--host H] [--port N]")
    if not 0 <= ns.port <= 65535:
        raise InputError(f"--port must be 0-65535, got {ns.port}")
    try:
        import uvicorn

        from .app import create_app, is_loopback
    except ImportError as exc:
        raise InputError(f"vramplan serve needs the web extra ({exc.name} is not installed)",
                         hint="pip install 'vramplan[web]'") from None
    local = is_loopback(ns.host)
    if not local:
        print(f"vramplan: warning: serving on {ns.host}, not only this machine: anyone who can reach it can "
              "send requests (no authentication). Use the default --host 127.0.0.1 unless you mean it.",
              file=sys.stderr)
    app = create_app(loopback_only=local)
    port = ns.port or _free_port(ns.host)
    shown = f"[{ns.host}]" if ":" in ns.host else ns.host
    print(f"vramplan serve: http://{shown}:{port}/  (API: POST /api/plan ..., description at /api/openapi.json; Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=ns.host, port=port, log_level="warning", server_header=False,
                limit_concurrency=64, timeout_keep_alive=5)
    return 0


def _free_port(host: str) -> int:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
