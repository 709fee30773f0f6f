"""Seed 001 (Ascend 910B, Qwen3-VL-8B-Instruct, TP=2): vLLM's logged arithmetic, reproduced.

From the seed's log: total 60.96 GiB, util 0.95 -> requested 57.91 GiB; available KV 44.30 GiB;
GPU KV cache size 645,120 tokens with --max-model-len 65536 and the Ascend block size 128.
"""

import math

from vramplan.api import load_model
from vramplan.rules.kv import build_layout, capacity, layer_specs, num_blocks_for
from vramplan.units import GiB, format_gib


def test_requested_is_util_times_total_not_free():
    total = 60.96 * GiB
    assert format_gib(0.95 * total) == "57.91"
    # ... and not util x initial free memory (60.61 GiB), which would be 57.58
    assert format_gib(0.95 * 60.61 * GiB) == "57.58"


def test_kv_equation_of_the_seed():
    # KV 44.30 + non-KV 13.61 = requested 57.91; non-KV = 9.19 weights + 3.86 peak + 0.56 non-torch
    assert round(9.19 + 3.86 + 0.56, 2) == 13.61
    assert round(44.30 + 13.61, 2) == 57.91


def test_blocks_and_tokens_from_the_logged_kv_memory():
    m = load_model("Qwen/Qwen3-VL-8B-Instruct")
    specs = layer_specs(m, tp=2, block_size=128, kv_cache_dtype="auto", model_dtype="bfloat16")
    lay = build_layout(specs)
    # per rank: 36 layers x 128 tokens x (8 kv heads / 2) x (128 + 128) x 2 bytes = 9,437,184 bytes per block
    assert lay.bytes_per_block == 36 * 128 * 4 * 256 * 2 == 9_437_184
    available = int(44.30 * GiB)  # the log's rounded figure
    blocks = num_blocks_for(lay, available)
    assert blocks == math.floor(44.30 * GiB / 9_437_184) == 5040
    tokens, concurrency = capacity(lay, blocks, max_model_len=65536, max_in_flight_tokens=2 * 32768)
    # 5040 blocks / cdiv(65536, 128) = 9.84375 requests x 65536 tokens
    assert tokens == 645_120
    assert round(concurrency, 2) == 9.84


def test_the_plan_for_the_seeds_flags_is_within_5_percent_of_its_log():
    # seed 001: vllm serve Qwen3-VL-8B-Instruct --tensor-parallel-size 2 --max-model-len 65536 --max-num-seqs 8
    #   --max-num-batched-tokens 32768 --gpu-memory-utilization 0.95 --mm-processor-cache-gb 0, on 64 GB 910B NPUs;
    # its log: weights 9.19 GiB, torch peak increase 3.86 GiB, KV 44.30 GiB, 645,120 tokens
    import vramplan

    p = vramplan.plan(flags=["vllm", "serve", "Qwen/Qwen3-VL-8B-Instruct", "--tensor-parallel-size", "2",
                             "--max-model-len", "65536", "--max-num-seqs", "8", "--max-num-batched-tokens", "32768",
                             "--gpu-memory-utilization", "0.95", "--mm-processor-cache-gb", "0"],
                      device="ascend-910b3")
    r = p.logged_rank
    assert abs(r.bytes_of("weights") / GiB / 9.19 - 1) < 0.05
    assert abs(r.bytes_of("activation_peak") / GiB / 3.86 - 1) < 0.05
    assert abs(p.kv_cache_tokens / 645_120 - 1) < 0.05
    assert p.starts
