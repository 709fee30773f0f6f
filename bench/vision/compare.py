#!/usr/bin/env python3
"""Predicted vs measured vision-tower activation peaks (bench/data/vision_measurements.json).

For each measured (model, attention implementation, image size, items) the prediction is
``vramplan.estimate.encoder.encoder_peak(spec, N, T, attn_impl="hf_<impl>", include_pixels=False)``
(the measurement's baseline already holds the pixel values). Prints one row per run with
the ratio predicted/measured and, per model and implementation, the worst relative error.
Also prints, next to each hf prediction, what the vLLM paths would need for the same input
(``vllm_flash``), which is the number the planner uses.

Usage: ``python bench/vision/compare.py [path/to/vision_measurements.json]``
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vramplan.estimate.encoder import encoder_peak  # noqa: E402
from vramplan.model.vision import describe_vision  # noqa: E402

MiB = 1 << 20
TARGET = 0.15


def spec_for(repo: str, depth: int | None = None):
    raw = json.loads((ROOT / "vramplan" / "catalog" / repo / "config.json").read_text())
    if depth is not None and depth != raw["vision_config"]["depth"]:
        raw = copy.deepcopy(raw)
        raw["vision_config"]["depth"] = depth
    return describe_vision(raw)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else ROOT / "bench" / "data" / "vision_measurements.json"
    data = json.loads(path.read_text())
    env = data.get("env", {})
    print(f"measured on {env.get('gpu', '?')}, torch {env.get('torch')}, transformers {env.get('transformers')}, "
          f"flash_attn installed: {env.get('flash_attn_installed')}")
    hdr = f"{'model':14s} {'impl':6s} {'size':>5s} {'N':>2s} {'patches':>8s} {'measured':>10s} {'predicted':>10s} " \
          f"{'ratio':>6s} {'tracker':>9s} {'vllm_flash':>10s}  peak stage"
    print(hdr)
    print("-" * len(hdr))
    worst: dict[tuple[str, str], float] = {}
    specs: dict[tuple[str, int], object] = {}
    for rec in data["records"]:
        if "peak_bytes" not in rec:
            print(f"{rec['model']:14s} {rec['impl']:6s} {rec['image_size']:5d} {rec['num_items']:2d}  "
                  f"{rec.get('error', 'no measurement')}")
            continue
        key = (rec["repo"], rec.get("depth"))
        if key not in specs:
            specs[key] = spec_for(rec["repo"], rec.get("depth"))
        spec = specs[key]
        n, t = rec["num_items"], rec["patches_per_item"]
        pred = encoder_peak(spec, n, t, attn_impl=f"hf_{rec['impl']}", include_pixels=False)
        vllm = encoder_peak(spec, n, t, attn_impl="vllm_flash", include_pixels=False)
        meas = rec["peak_bytes"]
        ratio = pred.peak_bytes / meas
        k = (rec["model"], rec["impl"])
        worst[k] = max(worst.get(k, 0.0), abs(ratio - 1))
        tracker = rec.get("tracker_peak_bytes")
        tr = f"{tracker / MiB:9.0f}" if tracker else f"{'':9s}"
        print(f"{rec['model']:14s} {rec['impl']:6s} {rec['image_size']:5d} {n:2d} {n * t:8d} "
              f"{meas / MiB:10.0f} {pred.peak_bytes / MiB:10.0f} {ratio:6.3f} {tr} {vllm.peak_bytes / MiB:10.0f}  "
              f"{pred.peak_stage}")
    print()
    print("MiB throughout. 'tracker' = live op outputs counted by a dispatch-mode tracker in the same pass")
    print("(no kernel workspaces); 'vllm_flash' = the vLLM path's prediction for the same input (not measured).")
    print()
    ok = True
    for (model, impl), err in sorted(worst.items()):
        flag = "ok" if err <= TARGET else "OVER TARGET"
        ok &= err <= TARGET
        print(f"worst |pred/meas - 1| {model:14s} {impl:6s}: {err * 100:5.1f}%  ({flag}, target {TARGET * 100:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
