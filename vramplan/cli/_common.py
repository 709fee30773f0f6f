"""What every subcommand shares: the target options, the epilog about pasted lines, output helpers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import FlagError

__all__ = ["add_target_args", "PASTE_EPILOG", "console", "print_json", "check_flag_places"]

PASTE_EPILOG = """\
Any vLLM engine flag may follow, with vLLM's own names and defaults (--max-model-len 32k,
-tp 2, --kv-cache-dtype fp8, --limit-mm-per-prompt '{"image":2}', -cc.cudagraph_mode=PIECEWISE, ...),
or paste a whole command after --:   vramplan %(cmd)s -- vllm serve Qwen/Qwen3-8B --max-model-len 32768
(also `python -m vllm.entrypoints.openai.api_server --model ...`). vramplan's own flags go before --.
Environment variables vLLM reads (VLLM_USE_V2_MODEL_RUNNER, VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, ...)
are honoured, from the environment or written before `vllm serve` in the pasted line.
"""


def epilog(cmd: str) -> str:
    return PASTE_EPILOG % {"cmd": cmd}


def add_target_args(p: argparse.ArgumentParser) -> None:
    """The model, the device, the release and ``--json``: what plan, fit, knobs and sweep all take."""
    p.add_argument("model", nargs="?",
                   help="catalog id (`vramplan models`), local folder with config.json, or Hub id; "
                        "or give it in a `vllm serve MODEL ...` line after --")
    p.add_argument("--device", default=None,
                   help="device from the catalog (`vramplan devices`), default h100-80gb")
    p.add_argument("--device-memory-gib", default=None,
                   help="total memory the runtime reports, instead of (or overriding) the catalog's")
    p.add_argument("--used-by-others-gib", default="0",
                   help="memory other programs already hold on each device (GiB)")
    p.add_argument("--vllm-version", default=None,
                   help="vLLM version whose rules to apply (default: 0.34.0 on CUDA/ROCm, 0.33.0 on Ascend)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    # SGLang (vramplan/engines/sglang): --engine sglang, or a pasted `python -m sglang.launch_server ...` line
    p.add_argument("--engine", default=None, choices=("vllm", "sglang"), help="engine to plan (default vllm)")
    p.add_argument("--sglang-version", default=None, help="SGLang release whose rules to apply (0.5.17, 0.5.23)")
    p.add_argument("--nvidia-smi-mib", default=None,
                   help="SGLang: nvidia-smi memory.total in MiB, if not the catalog's")


def target_kwargs(ns: argparse.Namespace, flags: list[str]) -> dict[str, Any]:
    """The API's keyword arguments for the target options and the vLLM flags."""
    return {"device": ns.device, "device_memory_gib": ns.device_memory_gib,
            "used_by_others_gib": ns.used_by_others_gib, "vllm_version": ns.vllm_version, "flags": flags}


def console():
    """The terminal. A closed pipe (``| head``) raises BrokenPipeError, which ``main`` ends quietly with 141."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich's own handler exits 1
            raise BrokenPipeError

    return _Console()


def print_json(text: str) -> None:
    sys.stdout.write(text + "\n")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def check_flag_places(command: str, parsers: dict[str, argparse.ArgumentParser], extra: list[str],
                      pasted: list[str]) -> None:
    """vramplan's own flags written after ``--`` (or another subcommand's flags) are named as such, instead of
    being read as misspelt vLLM flags."""
    from ..engines.vllm.flags import known_vllm_flags

    known = known_vllm_flags()
    own = _options(parsers[command])
    for tok in pasted:
        name = tok.split("=", 1)[0]
        if name in own and name not in known and name not in ("-h", "--help"):
            raise FlagError(f"{name} is a vramplan flag: put it before --",
                            hint=f"e.g. vramplan {command} {name} ... -- vllm serve MODEL ...")
    for tok in extra + pasted:
        name = tok.split("=", 1)[0]
        if not name.startswith("-") or name in known or name in own:
            continue
        others = [c for c, p in parsers.items() if c != command and name in _options(p)]
        if others:
            raise FlagError(f"{name} is a flag of vramplan {' and '.join(others)}, not of {command}",
                            hint=f"see vramplan {command} --help")
