"""The device demo: watch ``demo_alloc.py`` and write timeline, plot and table.

    PYTHONPATH=. python3 bench/watch/run_demo.py OUT_DIR [--backend nvml|nvidia-smi] [--interval S]

The same as ``vramplan watch --out OUT_DIR --level ... -- python3 bench/watch/demo_alloc.py``,
except that where :mod:`vramplan.inputs.vllm_log` is not there yet, the phases are read by
the few v0.26 line markers below (the lines demo_alloc.py prints). The planned levels are
the demo's own allocations: weights 2 GiB, weights + activation 6 GiB, and weights + KV +
graphs 10.5 GiB (the "requested budget" of this pretend server).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from vramplan.watch.runner import watch_command

GiB = 1 << 30

LEVELS = {"weights": 2 * GiB, "weights+activation": 6 * GiB, "requested budget": int(10.5 * GiB)}


@dataclass
class _Event:
    line_no: int
    kind: str
    rank: str | None = None
    values: dict = field(default_factory=dict)
    text: str = ""


class MarkerReader:
    """Stand-in for vramplan.inputs.vllm_log.LogReader: one marker per phase (v0.26 lines)."""

    MARKS = (
        ("Initializing a V1 LLM engine", "engine_start"),
        ("worker init memory snapshot", "device_ready"),
        ("Model loading took", "weights_loaded"),
        ("Available KV cache memory", "profiling_done"),
        ("GPU KV cache size", "kv_allocated"),
        ("Graph capturing finished", "graphs_captured"),
        ("Application startup complete", "ready"),
    )

    def __init__(self) -> None:
        self.n = 0

    def feed(self, line: str) -> list[_Event]:
        self.n += 1
        return [_Event(self.n, kind, text=line) for mark, kind in self.MARKS if mark in line]

    def finish(self) -> None:
        return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--interval", type=float, default=None)
    a = ap.parse_args()
    try:
        from vramplan.inputs.vllm_log import LogReader as factory

        reader = "vramplan.inputs.vllm_log.LogReader"
    except ImportError:
        factory, reader = MarkerReader, "bench/watch/run_demo.py MarkerReader (vllm_log not there yet)"
    print(f"run_demo: log reader = {reader}", file=sys.stderr)
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_alloc.py")
    r = watch_command([sys.executable, demo], out_dir=a.out, interval_s=a.interval, backend=a.backend, plan=LEVELS,
                      log_reader_factory=factory)
    print()
    print(r.levels_text)
    print(f"\nbackend {r.backend}, {r.num_samples} readings, exit {r.exit_code}, plot {r.plot_path or r.plot_error}")
    return r.exit_code


if __name__ == "__main__":
    sys.exit(main())
