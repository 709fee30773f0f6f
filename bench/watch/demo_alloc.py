"""A GPU process that takes memory in known steps, printing vLLM-like lines, for `vramplan watch`.

    PYTHONPATH=. python -m vramplan.watch --out docs/watch-example -- python bench/watch/demo_alloc.py

It plays a server's startup with plain PyTorch tensors (cudaMalloc through the caching
allocator; no managed memory), printing each vLLM v0.26 line right after the step it
reports, as vLLM does:

    engine_start     nothing on the device yet
    device_ready     CUDA context (+ a 2 MiB tensor)
    weights_loaded   + 2 GiB   "weights"; then + 4 GiB "activations" held 2 s and freed (the profile run)
    profiling_done   weights only again (empty_cache)
    kv_allocated     + 8 GiB   "KV cache"
    graphs_captured  + 0.5 GiB "CUDA graphs"
    ready            held STEP_S * 2, then exit 0

At each step it also prints, as DEBUG lines, what torch itself counts (allocated,
reserved) and what cudaMemGetInfo says (used = total - free), to check the watch's
readings against. Nothing of vramplan is imported here.
"""

from __future__ import annotations

import os
import sys
import time

import torch

GiB = 1 << 30
MiB = 1 << 20
STEP_S = float(os.environ.get("DEMO_STEP_S", "2.0"))


def stamp() -> str:
    return time.strftime("%m-%d %H:%M:%S")


def say(level: str, where: str, msg: str) -> None:
    print(f"(EngineCore pid={os.getpid()}) {level} {stamp()} [{where}] {msg}", flush=True)


def debug_memory(label: str) -> None:
    free, total = torch.cuda.mem_get_info()
    say(
        "DEBUG",
        "bench/watch/demo_alloc.py",
        f"demo {label}: torch_allocated={torch.cuda.memory_allocated() / GiB:.4f}GiB "
        f"torch_reserved={torch.cuda.memory_reserved() / GiB:.4f}GiB cuda_used={(total - free) / GiB:.4f}GiB "
        f"cuda_total={total / GiB:.4f}GiB",
    )


def take(num_bytes: int) -> torch.Tensor:
    t = torch.empty(num_bytes, dtype=torch.uint8, device="cuda")
    t.fill_(1)  # touch it
    torch.cuda.synchronize()
    return t


def main() -> int:
    if not torch.cuda.is_available():
        print("demo_alloc: no CUDA device", file=sys.stderr)
        return 1
    print(f"INFO {stamp()} [entrypoints/utils.py:273] non-default args: {{'model': 'demo/known-steps'}}", flush=True)
    time.sleep(STEP_S / 2)
    say("INFO", "v1/engine/core.py:116", "Initializing a V1 LLM engine (v0.26.0) with config: model='demo/known-steps', "
        "dtype=torch.bfloat16, max_seq_len=4096")
    time.sleep(STEP_S)

    torch.cuda.init()
    small = take(2 * MiB)  # makes the context
    free, total = torch.cuda.mem_get_info()
    say("DEBUG", "v1/worker/gpu_worker.py:390",
        f"worker init memory snapshot: torch_peak=0.0GiB, free_memory={free / GiB:.2f}GiB, total_memory={total / GiB:.2f}GiB, "
        f"cuda_memory={(total - free) / GiB:.2f}GiB, torch_memory=0.0GiB, non_torch_memory={(total - free) / GiB:.2f}GiB")
    debug_memory("after context")
    time.sleep(STEP_S)

    t0 = time.monotonic()
    weights = take(2 * GiB)
    say("INFO", "v1/worker/gpu/model_runner.py:305", f"Model loading took 2.00 GiB and {time.monotonic() - t0:.6f} seconds")
    debug_memory("after weights")
    time.sleep(STEP_S / 2)

    activations = take(4 * GiB)  # the profile run's peak
    debug_memory("profiling peak")
    time.sleep(STEP_S)
    del activations
    torch.cuda.empty_cache()
    say("INFO", "compilation/monitor.py:81", "Initial profiling/warmup run took 2.00 s")
    say("INFO", "v1/worker/gpu_worker.py:560", "Available KV cache memory: 8.00 GiB")
    debug_memory("after profiling")
    time.sleep(STEP_S)

    kv = take(8 * GiB)
    say("INFO", "v1/core/kv_cache_utils.py:2177", "GPU KV cache size: 58,254 tokens")
    debug_memory("after KV cache")
    time.sleep(STEP_S)

    graphs = take(512 * MiB)
    say("INFO", "v1/worker/gpu/model_runner.py:747", "Graph capturing finished in 1 secs, took 0.50 GiB")
    debug_memory("after graphs")
    time.sleep(STEP_S / 2)
    say("INFO", "v1/engine/core.py:340", "init engine (profile, create kv cache, warmup model) took 9.00 s (compilation: 0.00 s)")
    print(f"INFO {stamp()} [entrypoints/launcher.py:46] Application startup complete.", flush=True)
    time.sleep(STEP_S * 2)
    del small, weights, kv, graphs
    return 0


if __name__ == "__main__":
    sys.exit(main())
