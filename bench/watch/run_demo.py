"""The device demo: watch ``demo_alloc.py`` and write timeline, plot and table.

    PYTHONPATH=. python3 bench/watch/run_demo.py OUT_DIR [--backend nvml|nvidia-smi] [--interval S]

The same as ``vramplan watch --out OUT_DIR --level ... -- python3 bench/watch/demo_alloc.py``: the
phases come from :class:`vramplan.engines.vllm.log.LogReader` reading the v0.26 lines demo_alloc.py
prints. The planned levels are the demo's own allocations: weights 2 GiB, weights + activation
6 GiB, and weights + KV + graphs 10.5 GiB (the "requested budget" of this pretend server).
"""

from __future__ import annotations

import argparse
import os
import sys

from vramplan.watch.runner import watch_command

GiB = 1 << 30

LEVELS = {"weights": 2 * GiB, "weights+activation": 6 * GiB, "requested budget": int(10.5 * GiB)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--interval", type=float, default=None)
    a = ap.parse_args()
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_alloc.py")
    r = watch_command([sys.executable, demo], out_dir=a.out, interval_s=a.interval, backend=a.backend, plan=LEVELS)
    print()
    print(r.levels_text)
    print(f"\nbackend {r.backend}, {r.num_samples} readings, exit {r.exit_code}, plot {r.plot_path or r.plot_error}")
    return r.exit_code


if __name__ == "__main__":
    sys.exit(main())
