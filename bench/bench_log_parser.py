"""Throughput of the vLLM log reader on ~100 MB synthetic logs, read streamed with ``read_log``.

    .venv/bin/python bench/bench_log_parser.py [--mb 100] [--mix serving|debug|both] [--keep]

Two logs are written to a temp dir from the real logs in data/ (nothing is downloaded):
- "serving": every startup log of data/device_v026 and data/public/logs in turn, each followed by about
  four times its length of serving noise (uvicorn access lines, 'Added request', engine stats lines,
  DEBUG lines, tqdm bars); colour codes and container timestamps on a share of the lines;
- "debug": the DEBUG-level device logs repeated as they are (the reader's worst case: few request lines,
  many long DEBUG lines with upper-case words).
It prints lines/s and MB/s for each, and the figures of the last startup read (a sanity check).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vramplan.engines.vllm.log import read_log  # noqa: E402

NOISE = [
    '(APIServer pid=1) INFO:     10.0.{a}.{b}:5{c}00 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    "(APIServer pid=1) INFO 07-01 10:{m:02d}:{s:02d} [async_llm.py:415] Added request chatcmpl-{h}.",
    "(APIServer pid=1) INFO 07-01 10:{m:02d}:{s:02d} [loggers.py:263] Engine 000: Avg prompt throughput: {a}.3 tokens/s, "
    "Avg generation throughput: {b}.1 tokens/s, Running: {c} reqs, Waiting: 0 reqs, GPU KV cache usage: {c}.{a}%, Prefix cache hit rate: 12.5%",
    "(EngineCore_DP0 pid=321) DEBUG 07-01 10:{m:02d}:{s:02d} [v1/engine/core.py:981] EngineCore loop active.",
    "(EngineCore_DP0 pid=321) DEBUG 07-01 10:{m:02d}:{s:02d} [compilation/cuda_graph.py:271] Capturing a cudagraph on "
    "(PIECEWISE,BatchDescriptor(num_tokens={c}, num_reqs=None, uniform=False, has_lora=False))",
    "(APIServer pid=1) DEBUG 07-01 10:{m:02d}:{s:02d} [v1/engine/async_llm.py:608] Called check_health.",
    "Processed prompts:  {c}%|█████     | {a}/{b} [00:0{c}<00:00, 13.21it/s, est. speed input: 845.86 toks/s, output: 105.71 toks/s]",
    "(APIServer pid=1) INFO 07-01 10:{m:02d}:{s:02d} [serving.py:1234] Finished request chatcmpl-{h} in {a}.{b} s.",
]


def make_log(path: Path, target_bytes: int, seed: int = 0) -> tuple[int, int]:
    rnd = random.Random(seed)
    real: list[list[str]] = []
    for p in sorted((ROOT / "data" / "device_v026").glob("*.log")) + sorted((ROOT / "data" / "public" / "logs").glob("*.log")):
        real.append(p.read_text(encoding="utf-8", errors="replace").splitlines())
    written = 0
    lines = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        i = 0
        while written < target_bytes:
            block = real[i % len(real)]
            i += 1
            out = []
            for line in block:
                if rnd.random() < 0.2:
                    line = f"2025-07-01T10:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}.{rnd.randrange(1000):03d}Z " + line
                if rnd.random() < 0.1:
                    line = "\x1b[0;36m" + line.replace(") ", ")\x1b[0;0m ", 1)
                out.append(line)
            # serving noise after each startup: ~4x the startup's size
            for _ in range(len(block) * 4):
                t = rnd.choice(NOISE)
                out.append(t.format(a=rnd.randrange(256), b=rnd.randrange(256), c=rnd.randrange(1, 10),
                                    m=rnd.randrange(60), s=rnd.randrange(60), h=f"{rnd.getrandbits(64):016x}"))
            text = "\n".join(out) + "\n"
            f.write(text)
            written += len(text.encode("utf-8"))
            lines += len(out)
    return lines, written


def make_debug_log(path: Path, target_bytes: int) -> tuple[int, int]:
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "data" / "device_v026").glob("*.log")))
    reps = max(1, target_bytes // len(text.encode("utf-8")) + 1)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(reps):
            f.write(text)
    return text.count("\n") * reps, path.stat().st_size


def _run(name: str, path: Path, lines: int, size: int) -> None:
    t = time.perf_counter()
    facts = read_log(path)
    dt = time.perf_counter() - t
    print(f"[{name}] {size / 1e6:.1f} MB, {lines:,} lines: read_log {dt:.2f} s -> {lines / dt:,.0f} lines/s, "
          f"{size / 1e6 / dt:.1f} MB/s")
    print(f"[{name}]   events {len(facts.events):,}, request lines {facts.num_request_lines:,}, era {facts.era}, "
          f"kv_cache_gib {facts.kv_cache_gib}, weights_gib {facts.weights_gib}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0, help="size of each synthetic log (MB)")
    ap.add_argument("--mix", choices=("serving", "debug", "both"), default="both")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vramplan-bench-"))
    made = []
    try:
        if a.mix in ("serving", "both"):
            p = tmp / "serving.log"
            made.append(p)
            _run("serving", p, *make_log(p, int(a.mb * 1e6)))
        if a.mix in ("debug", "both"):
            p = tmp / "debug.log"
            made.append(p)
            _run("debug", p, *make_debug_log(p, int(a.mb * 1e6)))
    finally:
        if a.keep:
            print(f"logs kept in {tmp}")
        else:
            for p in made:
                if p.exists():
                    os.remove(p)
            os.rmdir(tmp)


if __name__ == "__main__":
    main()
