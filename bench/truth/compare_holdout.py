"""Compare the predictions made before the held-out runs (holdout_predictions.json) with what vLLM logged.

usage: python bench/truth/compare_holdout.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vramplan.engines.vllm.log import read_log  # noqa: E402


def main() -> int:
    pred = json.loads((ROOT / "bench/truth/holdout_predictions.json").read_text())
    print("| run | verdict pred / vLLM | weights GiB | torch peak GiB | KV GiB | KV tokens |")
    print("|---|---|---|---|---|---|")
    for name, p in pred.items():
        f = read_log(str(ROOT / "data/truth/logs/h100d" / f"{name}.log"))
        verdict = "fails" if f.error_kind else "starts"
        kinds = f"{p['verdict']}" + (f" ({p['error_kind']})" if p["error_kind"] else "")
        kinds += f" / {verdict}" + (f" ({f.error_kind})" if f.error_kind else "")

        def pair(a, b, fmt="{:.2f}"):
            return ("-" if a is None else fmt.format(a)) + " / " + ("-" if b is None else fmt.format(b))

        print(f"| `{name}` | {kinds} | {pair(p['weights_gib'], f.weights_gib)} | "
              f"{pair(p['torch_peak_increase_gib'], f.torch_peak_increase_gib)} | "
              f"{pair(p['available_kv_cache_gib'], f.kv_cache_gib)} | "
              f"{pair(p['kv_cache_tokens'], f.kv_cache_tokens, '{:,}')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
