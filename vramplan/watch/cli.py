"""The ``vramplan watch`` subcommand: arguments and entry point (wired in by ``vramplan.cli``).

    vramplan watch [--out DIR] [--interval S] [--backend auto|nvml|npu-smi|nvidia-smi]
                   [--level LABEL=SIZE ...] [--plot-format png|svg] [--engine auto|vllm|sglang]
                   [--pid N [--log FILE]] [-- CMD ...]
    vramplan watch --replay DIR [--out DIR2] [-- CMD ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from ..errors import InputError
from ..units import parse_size
from ._names import BACKEND_NAMES

__all__ = ["add_watch_arguments", "main_watch", "parse_levels", "add_cli"]


def add_watch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add watch's options and the command (everything after ``--``) to ``parser``."""
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for timeline.jsonl, timeline.png and output.log (default: ./vramplan-watch-DATE-TIME)")
    parser.add_argument("--interval", metavar="S", type=float, default=None,
                        help="seconds between readings (default 0.1 with NVML, 0.2 with npu-smi or nvidia-smi)")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                        help="where readings come from (default: NVML if it starts, else npu-smi, else nvidia-smi)")
    parser.add_argument("--pid", metavar="N", type=int, default=None,
                        help="attach to this running process and its children instead of starting a command")
    parser.add_argument("--log", metavar="FILE", default=None,
                        help="with --pid: the server's log file, read (and followed) to mark the phases")
    parser.add_argument("--level", metavar="LABEL=SIZE", action="append", default=[],
                        help="a planned level above the baseline, drawn dashed and compared, e.g. weights=15.27GiB "
                             "(repeat; labels with weights, activation, non-KV, budget are compared with the "
                             "matching phase)")
    parser.add_argument("--replay", metavar="DIR", default=None,
                        help="re-render a recorded watch folder (timeline.jsonl + output.log): print the tables and "
                             "write the plot again, starting nothing; a command after -- is planned for the levels "
                             "instead of the recorded one (the plot goes to --out DIR, default ./vramplan-replay-DATE-TIME; the recorded "
                             "folder is never written)")
    parser.add_argument("--plot-format", choices=("png", "svg"), default="png", help="plot file type (default png)")
    parser.add_argument("--engine", choices=("auto", "vllm", "sglang"), default="auto",
                        help="whose log marks the phases (default auto: sglang.launch_server / sglang serve -> "
                             "SGLang, vllm serve -> vLLM, else the log's first recognisable line)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                        help="the server command to start and watch, e.g. -- vllm serve Qwen/Qwen3-8B")
    return parser


def parse_levels(items: list[str]) -> dict[str, int]:
    """``["weights=15.27GiB", "budget=71.26"]`` -> label -> bytes (a bare number is GiB)."""
    out: dict[str, int] = {}
    for item in items:
        label, sep, size = item.partition("=")
        if not sep or not label.strip():
            raise InputError(f"--level wants LABEL=SIZE, not {item!r}", hint="e.g. --level weights=15.27GiB")
        out[label.strip()] = parse_size(size)
    return out


def main_watch(args: argparse.Namespace) -> int:
    """Run watch from parsed arguments; returns the exit code (the watched command's).

    ``args.plan_levels`` (label -> bytes), if the caller sets it, is added to the
    ``--level`` values: the CLI can pass a plan's terms this way. Raises
    :class:`InputError` (exit 2 in the CLI) for bad arguments or no usable backend.
    """
    from .runner import watch_command, watch_pid

    cmd = list(getattr(args, "cmd", None) or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if getattr(args, "replay", None) is not None:
        return _main_replay(args, cmd)
    levels = parse_levels(list(getattr(args, "level", None) or []))
    extra: Mapping[str, int] | None = getattr(args, "plan_levels", None)
    if extra:
        levels = {**dict(extra), **levels}
    pid = getattr(args, "pid", None)
    log = getattr(args, "log", None)
    common = dict(out_dir=args.out, interval_s=args.interval, backend=args.backend, plan=levels or None,
                  plot_format=getattr(args, "plot_format", "png"), engine=getattr(args, "engine", None) or "auto")
    level_planner = getattr(args, "level_planner", None)
    if pid is not None and cmd:
        raise InputError("give either --pid or a command after --, not both", hint="vramplan watch --pid 1234, or vramplan watch -- vllm serve MODEL")
    if pid is None and not cmd:
        raise InputError("nothing to watch", hint="vramplan watch -- vllm serve MODEL, or vramplan watch --pid N")
    if log is not None and pid is None:
        raise InputError("--log goes with --pid", hint="a command started by watch is read from its own output")
    if pid is not None:
        result = watch_pid(pid, log_path=log, level_planner=level_planner, **common)
    else:
        result = watch_command(cmd, level_planner=level_planner, **common)

    err = sys.stderr
    print("", file=err)
    if result.sampler_error:
        print(f"vramplan watch: sampling stopped early: {result.sampler_error}", file=err)
    if result.interrupted:
        print("vramplan watch: interrupted; the record up to here is kept", file=err)
    print(result.levels_text)
    print("", file=err)
    print(f"timeline: {result.timeline_path} ({result.num_samples} readings, backend {result.backend})", file=err)
    if result.plot_path:
        print(f"plot:     {result.plot_path}", file=err)
    else:
        print(f"plot:     not written ({result.plot_error})", file=err)
    if result.log_path:
        print(f"log:      {result.log_path}", file=err)
    if result.returncode is not None:
        print(f"command exited with {result.returncode}; watch exits with {result.exit_code}", file=err)
    return result.exit_code


def _main_replay(args: argparse.Namespace, cmd: list[str]) -> int:
    """``--replay DIR``: the tables and the plot of a recorded watch (watch/replay.py); exit 0."""
    from .replay import replay

    if getattr(args, "pid", None) is not None:
        raise InputError("--replay re-renders a recorded folder; it does not go with --pid",
                         hint="vramplan watch --replay DIR [-- vllm serve MODEL ...]")
    if getattr(args, "level", None):
        raise InputError("--level does not go with --replay", hint="the levels come from planning the command")
    fmt = getattr(args, "plot_format", "png")
    out = getattr(args, "out", None)
    if out is None:  # never over the recorded folder (it may be a committed record)
        import time

        out = time.strftime("vramplan-replay-%Y%m%d-%H%M%S")
    plot_path = os.path.join(out, f"timeline.{fmt}")  # replay() creates the folder once the record reads
    r = replay(args.replay, cmd=cmd or None, plot_path=plot_path, plot_format=fmt, plan_levels=plan_levels_for)
    err = sys.stderr
    if r.note:
        print(f"vramplan watch: {r.note}", file=err)
    print(r.levels_text)
    print("", file=err)
    story = "vLLM 0.34 phases (reserve, warm-up, commit)" if r.story else "the log reader's phases"
    print(f"timeline: {r.timeline_path} ({r.num_samples} readings; {story}; levels: {r.levels_source})", file=err)
    print(f"plot:     {r.plot_path}" if r.plot_path else f"plot:     not written ({r.plot_error})", file=err)
    return 0


def add_cli(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Register ``watch`` on the main CLI's subparsers (``vramplan.cli`` looks for this).

    The main CLI splits its argv at ``--`` and calls ``handler(ns, rest)`` with what
    follows (plus unknown options): that is the command to watch.
    """
    p = sub.add_parser(
        "watch",
        help="record a live server's device memory over time, with its startup phases",
        description="Start a server (after --) or attach to one (--pid), sample device memory at 5-10 Hz "
        "(NVML, npu-smi or nvidia-smi), mark the phases from its log, and write timeline.jsonl, a plot "
        "and a table of levels per phase. Exits with the server's exit code.",
    )
    add_watch_arguments(p)
    p.set_defaults(handler=_handler)
    return p


def _handler(ns: argparse.Namespace, rest: list[str]) -> int:
    cmd = [c for c in (getattr(ns, "cmd", None) or [])]
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    ns.cmd = cmd + list(rest)
    if getattr(ns, "replay", None) is not None:
        return main_watch(ns)  # nothing is started: the levels are planned by the replay
    from .engine import engine_from_argv

    engine = getattr(ns, "engine", None) or "auto"
    pid = getattr(ns, "pid", None)
    attached: list[str] | None = None
    if pid is not None and not ns.cmd and isinstance(pid, int) and pid > 0:
        from .procs import command_line

        attached = command_line(pid)  # the attached server's own command line, planned like a started one
    watched = ns.cmd or attached or []
    if engine == "sglang" or (engine == "auto" and engine_from_argv(watched) == "sglang"):
        # SGLang's levels are planned on the device read before the server starts (engines/sglang/watch_levels.py)
        levels, note = None, None
        if watched and (pid is None) == bool(ns.cmd):
            ns.level_planner = _sglang_level_planner(list(watched))
    elif attached is not None:
        levels, note = None, None  # a vLLM server attached to: its levels are not planned (yet)
    else:
        levels, note = plan_levels_for(ns.cmd)
    if levels:
        ns.plan_levels = levels
    if note:
        print(f"vramplan watch: {note}", file=sys.stderr)
    return main_watch(ns)


def _sglang_level_planner(cmd: list[str]):
    """The runner's level planner for a watched SGLang command; says at once why there are no levels."""

    def planner(readings):
        from ..engines.sglang.watch_levels import plan_watched_sglang

        planned = plan_watched_sglang(cmd, readings)
        print(f"vramplan watch: {planned.note or planned.summary}", file=sys.stderr)
        return planned

    return planner


def plan_levels_for(cmd: list[str]) -> tuple[dict[str, int] | None, str | None]:
    """The planned levels (bytes above the device's baseline) for a watched ``vllm serve`` command.

    The plan runs on the flags recovered from the command line and on the device NVML reports
    (the catalog's entry of the same size), so the plot's dashed lines and the final table
    compare vLLM's measured memory with the plan term by term. Returns (None, why) when the
    command is not a vLLM server or its model's config is not available offline.
    """
    words = [w for w in cmd if "=" not in w or w.startswith("-")]
    if "serve" not in words[:3] and not any("vllm" in w for w in words[:2]):
        return None, None
    try:
        import vramplan
        from vramplan.engines.vllm.flags import parse_flags

        parsed = parse_flags(list(cmd))
        if not parsed.args.model:
            return None, None
        p = vramplan.plan(parsed.args.model, args=parsed.args)
    except Exception as exc:  # no config offline, unknown model, ...: watch still runs
        return None, f"no plan to compare with ({type(exc).__name__}: {str(exc)[:120]})"
    r = p.logged_rank
    ctx = p.device.total_bytes - r.free_at_init_bytes
    w = r.bytes_of("weights")
    a = r.bytes_of("activation_peak")
    n = r.bytes_of("non_torch")
    levels = {
        "planned weights": ctx + w,
        "planned weights + activation peak": ctx + w + a + n,
        "planned non-KV total": ctx + r.bytes_of("non_kv_total"),
        "planned requested budget": ctx + r.requested_bytes,
    }
    if p.engine.extensible_kv_cache and p.starts:
        # vLLM 0.34: the budget is only a cap; the levels follow its reserve, warm-up and commit (levels034.py)
        from .levels034 import extensible_levels

        try:
            told = extensible_levels(p)
        except Exception:  # a level that cannot be built must not stop the watch: the older levels stand
            told = None
        if told:
            return told, None
        del levels["planned requested budget"]
    return levels, None


def _standalone(argv: list[str] | None = None) -> int:
    """``python -m vramplan.watch ...`` until the main CLI has the subcommand."""
    parser = add_watch_arguments(argparse.ArgumentParser(prog="python -m vramplan.watch", description="Record a live server's device memory."))
    args = parser.parse_args(argv)
    try:
        return main_watch(args)
    except InputError as e:
        print(f"vramplan watch: {e.one_line()}", file=sys.stderr)
        return 2


