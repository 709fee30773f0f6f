"""Speed: cold CLI wall time against `python -c pass`, and plans per second in-process.

usage: python bench/speed.py     (prints a small table; targets: cold plan <= 1 s, >= 5,000 plans/s)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    py = sys.executable
    base = wall([py, "-c", "pass"])
    help_ = wall([py, "-m", "vramplan", "--help"])
    plan = wall([py, "-m", "vramplan", "plan", "Qwen/Qwen3-8B", "--max-model-len", "32768"])
    plan_json = wall([py, "-m", "vramplan", "plan", "Qwen/Qwen3-VL-8B-Instruct", "--json"])
    import vramplan

    vramplan.plan("Qwen/Qwen3-8B")
    n = 5000
    t = time.perf_counter()
    for i in range(n):
        vramplan.plan("Qwen/Qwen3-8B", max_model_len=4096 + i, gpu_memory_utilization=0.5 + (i % 40) / 100)
    rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n // 5):
        vramplan.plan("google/gemma-3-27b-it", max_model_len=8192 + i, tensor_parallel_size=2)
    rate_hybrid = (n // 5) / (time.perf_counter() - t)
    # the previous release's rules (profile-and-subtract sizing, no extensible KV cache)
    vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.33.0")
    t = time.perf_counter()
    for i in range(n):
        vramplan.plan("Qwen/Qwen3-8B", max_model_len=4096 + i, gpu_memory_utilization=0.5 + (i % 40) / 100,
                      vllm_version="0.33.0")
    rate_033 = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n // 5):
        vramplan.plan("google/gemma-3-27b-it", max_model_len=8192 + i, tensor_parallel_size=2, vllm_version="0.33.0")
    rate_hybrid_033 = (n // 5) / (time.perf_counter() - t)
    print("| measure | value |")
    print("|---|---|")
    print(f"| `python -c pass` | {base:.3f} s |")
    print(f"| `vramplan --help` | {help_:.3f} s |")
    print(f"| `vramplan plan Qwen/Qwen3-8B` (cold, table) | {plan:.3f} s |")
    print(f"| `vramplan plan Qwen/Qwen3-VL-8B-Instruct --json` (cold) | {plan_json:.3f} s |")
    print(f"| plans per second in-process (Qwen3-8B, varying flags; vLLM 0.34, the default) | {rate:,.0f} |")
    print(f"| plans per second in-process (gemma-3-27b, hybrid, TP=2; vLLM 0.34) | {rate_hybrid:,.0f} |")
    print(f"| plans per second in-process (Qwen3-8B, varying flags; vLLM 0.33) | {rate_033:,.0f} |")
    print(f"| plans per second in-process (gemma-3-27b, hybrid, TP=2; vLLM 0.33) | {rate_hybrid_033:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
