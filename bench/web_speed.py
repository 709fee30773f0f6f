"""Speed of `vramplan serve`: round trips of the JSON API over loopback, as a client sees them.

usage: python bench/web_speed.py     (targets: plan request median <= 20 ms, 50-point sweep <= 300 ms)

Starts `vramplan serve` on 127.0.0.1 (a free port) in a subprocess, sends bounded numbers of
requests over one keep-alive connection, prints the medians and 90th percentiles, and stops the
server. Every request differs (its --max-model-len), so no memo of a whole answer helps.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(conn: http.client.HTTPConnection, path: str, body: dict) -> float:
    data = json.dumps(body).encode()
    t = time.perf_counter()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    payload = r.read()
    dt = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit(f"{path} answered {r.status}: {payload[:200]!r}")
    return dt


def stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs) * 1000, xs[int(0.9 * (len(xs) - 1))] * 1000


def main() -> int:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vramplan", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rows = []
        cases = [
            ("plan, Qwen/Qwen3-8B on h100-80gb", "/api/plan", 200,
             lambda i: {"model": "Qwen/Qwen3-8B", "args": {"max_model_len": 4096 + 64 * i}}),
            ("plan, Qwen3-VL-8B TP=2 on ascend-910b3 (seed 001 line)", "/api/plan", 200,
             lambda i: {"device": "ascend-910b3", "flags": "vllm serve Qwen/Qwen3-VL-8B-Instruct -tp 2 "
                                                           f"--max-model-len {8192 + 64 * i} --max-num-seqs 8"}),
            ("sweep, 50 points of --max-model-len, Qwen/Qwen3-8B", "/api/sweep", 30,
             lambda i: {"model": "Qwen/Qwen3-8B", "vary": f"max-model-len={1024 + i}:40960", "steps": 50}),
            ("sweep, 50 points of --gpu-memory-utilization, Qwen3-VL-8B", "/api/sweep", 30,
             lambda i: {"model": "Qwen/Qwen3-VL-8B-Instruct", "vary": f"gpu-memory-utilization=0.{50 + i % 9}:0.95",
                        "steps": 50}),
            ("knobs, Qwen/Qwen3-8B", "/api/knobs", 20,
             lambda i: {"model": "Qwen/Qwen3-8B", "args": {"max_model_len": 8192 + 64 * i}}),
            ("fit, Qwen/Qwen3-8B 8 x 16k on rtx-4090", "/api/fit", 20,
             lambda i: {"model": "Qwen/Qwen3-8B", "device": "rtx-4090", "concurrency": 8, "context": 16384 - i}),
            ("plan, SGLang, Qwen/Qwen3-8B on h100-80gb", "/api/plan", 200,
             lambda i: {"engine": "sglang", "model": "Qwen/Qwen3-8B", "args": {"context_length": 4096 + 64 * i}}),
            ("sweep, SGLang, 50 points of --mem-fraction-static", "/api/sweep", 30,
             lambda i: {"engine": "sglang", "model": "Qwen/Qwen3-8B",
                        "vary": f"mem-fraction-static=0.{50 + i % 9}:0.95", "steps": 50}),
        ]
        for label, path, n, make in cases:
            for i in range(3):  # warm-up: imports, the model's description
                timed(conn, path, make(n + i))
            med, p90 = stats([timed(conn, path, make(i)) for i in range(n)])
            rows.append((label, n, med, p90))
        print(f"{'request (loopback, keep-alive)':58s} {'n':>4s} {'median ms':>10s} {'p90 ms':>8s}")
        for label, n, med, p90 in rows:
            print(f"{label:58s} {n:4d} {med:10.1f} {p90:8.1f}")
        plan_ok = rows[0][2] <= 20 and rows[1][2] <= 20 and rows[6][2] <= 20
        sweep_ok = rows[2][2] <= 300 and rows[3][2] <= 300 and rows[7][2] <= 300
        print(f"targets: plan median <= 20 ms: {'met' if plan_ok else 'MISSED'}; "
              f"50-point sweep median <= 300 ms: {'met' if sweep_ok else 'MISSED'}")
        return 0 if plan_ok and sweep_ok else 1
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
