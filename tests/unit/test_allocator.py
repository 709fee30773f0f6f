"""The caching allocator's blocks in "Model loading took" (rules/allocator.py).

Expected values are the logged figures (data/truth/logs) or block sizes worked out by hand from PyTorch's rules
(c10/cuda/CUDACachingAllocator.cpp: round_size, get_allocation_size, should_split, get_free_block).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.rules.allocator import Alloc, Free, allocated_block_bytes, rope_cache_events
from vramplan.units import format_gib

MiB = 1 << 20
VL3B = "Qwen/Qwen2.5-VL-3B-Instruct"


@pytest.mark.parametrize("version, device, tp, logged", [
    # data/truth/logs/h100e/vl3b_e_unset.log (vLLM 0.34.0, H100): "Model loading took 7.16 GiB memory"
    ("0.34.0", "h100-80gb", 1, "7.16"),
    # data/truth/logs/h100b/vl3b_e_v1_base.log (vLLM 0.26.0, H100): "Model loading took 7.16 GiB memory"
    ("0.26.0", "h100-80gb", 1, "7.16"),
    # data/truth/logs/x2/vl3b_e_v1_tp1.log and vl3b_e_v1_tp2.log (vLLM 0.26.0, H200): 7.16 and 3.68 GiB per rank
    ("0.26.0", "h200", 1, "7.16"),
    ("0.26.0", "h200", 2, "3.68"),
])
def test_qwen2_5_vl_3b_weights_meet_the_logs(version, device, tp, logged):
    p = vramplan.plan(VL3B, vllm_version=version, device=device, tensor_parallel_size=tp, max_model_len=4096,
                      max_num_batched_tokens=8192, max_num_seqs=1024, enforce_eager=True)
    assert format_gib(p.logged_rank.bytes_of("weights")) == logged


def test_qwen2_5_vl_3b_text_down_proj_keeps_a_2_mib_segment_whole():
    # Qwen2.5-VL-3B text layer: down_proj 2048 x 11008 bf16 = 45,088,768 B = 43 MiB. Under max_split_size 20 MiB
    # (vLLM >= 0.21 loads under it) a request of 20 MiB or more gets a new segment rounded up to 2 MiB (44 MiB)
    # and is not split: the block is 44 MiB. gate_up 22016 x 2048 x 2 = 86 MiB exactly: no rounding.
    down, gate_up = 2048 * 11008 * 2, 22016 * 2048 * 2
    assert down == 43 * MiB and gate_up == 86 * MiB
    assert allocated_block_bytes([Alloc(gate_up), Alloc(down)], max_split_bytes=20 * MiB) == (86 + 44) * MiB
    # Without the limit the 1 MiB left over is not split either (the large pool splits only above 1 MiB left).
    assert allocated_block_bytes([Alloc(down)]) == 44 * MiB
    # At TP 2 the shard is 21.5 MiB: 22 MiB segment; the 0.5 MiB stays in the block with or without the limit.
    assert allocated_block_bytes([Alloc(down // 2)], max_split_bytes=20 * MiB) == 22 * MiB
    # 12.5 MiB in a 14 MiB segment: 1.5 MiB left (more than 1 MiB), so the rest is split off, with the limit or
    # without it (12.5 MiB is under it); 22.5 MiB in a 24 MiB segment is split without the limit, kept whole with it
    half = MiB // 2
    assert allocated_block_bytes([Alloc(12 * MiB + half)]) == 12 * MiB + half
    assert allocated_block_bytes([Alloc(12 * MiB + half)], max_split_bytes=20 * MiB) == 12 * MiB + half
    assert allocated_block_bytes([Alloc(22 * MiB + half)]) == 22 * MiB + half
    assert allocated_block_bytes([Alloc(22 * MiB + half)], max_split_bytes=20 * MiB) == 24 * MiB


def test_small_pool_rounds_to_512_bytes_and_frees_merge():
    # 256-byte norms take 512-byte blocks; 1,000 bytes take 1,024
    assert allocated_block_bytes([Alloc(256), Alloc(1000)]) == 512 + 1024
    # a freed block merges with its free neighbours: after freeing both 5 MiB tensors, a 10 MiB one fits the
    # 20 MiB segment's front again and nothing new is counted beyond it
    ev = [Alloc(5 * MiB), Alloc(5 * MiB), Free(0), Free(1), Alloc(10 * MiB)]
    assert allocated_block_bytes(ev) == 10 * MiB


def test_freed_large_rope_temporaries_are_not_reused_under_the_limit():
    # Qwen2.5-VL text M-RoPE cache: 512,000 positions (128000 x 4) x 128 columns. Its float32 temporaries (freqs,
    # cos, sin of 125 MiB each: 126 MiB blocks; the 250 MiB concatenation) are freed; the bf16 cache (125 MiB)
    # takes one freed 126 MiB block (within 20 MiB of its size), whole: 126 MiB allocated.
    ev = rope_cache_events(0, 512000, 128, 2)
    assert allocated_block_bytes(ev, max_split_bytes=20 * MiB) == 126 * MiB
    # a 43 MiB tensor afterwards may not take a freed 126 MiB block (more than 20 MiB larger): new 44 MiB segment
    assert allocated_block_bytes(ev + [Alloc(43 * MiB)], max_split_bytes=20 * MiB) == (126 + 44) * MiB
    # without the limit it is carved from a freed block, 43 MiB exactly
    assert allocated_block_bytes(ev + [Alloc(43 * MiB)]) == (126 + 43) * MiB


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=64 * MiB), min_size=1, max_size=40),
       st.sampled_from([None, 20 * MiB]))
def test_blocks_cover_the_tensors_and_never_exceed_their_segments(sizes, limit):
    # every tensor's block is at least its size rounded to 512 bytes, and never more than its own new segment
    got = allocated_block_bytes([Alloc(n) for n in sizes], max_split_bytes=limit)
    rounded = sum(max(512, -(-n // 512) * 512) for n in sizes)
    assert rounded <= got <= rounded + len(sizes) * 20 * MiB
    # freeing everything leaves nothing allocated
    ev = [Alloc(n) for n in sizes] + [Free(i) for i in range(len(sizes))]
    assert allocated_block_bytes(ev, max_split_bytes=limit) == 0


def test_expandable_segments_and_quantized_models_carry_no_blocks():
    kw = dict(device="h100-80gb", max_model_len=4096)
    plain = vramplan.plan(VL3B, **kw).logged_rank.term("weights")
    assert dict(plain.parts)["allocator"] > 40 * MiB
    exp = vramplan.plan(VL3B, env=(("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),), **kw)
    assert "allocator" not in dict(exp.logged_rank.term("weights").parts)
    assert plain.bytes - exp.logged_rank.bytes_of("weights") == dict(plain.parts)["allocator"]


def test_vllm_0_20_loads_without_the_split_limit_and_0_21_with_it():
    # v0.20.0 gpu_worker.py:Worker.load_model has no _scoped_allocator_max_split; v0.21.0 adds it (20 MiB)
    from vramplan.engines.vllm.rules.versions import for_version

    assert for_version("0.20.0").load_max_split_mib is None
    assert for_version("0.21.0").load_max_split_mib == 20
    assert for_version("0.34.0").load_max_split_mib == 20


@pytest.mark.parametrize("model_id, version, logged", [
    # "Model loading took ... GiB" of our H100 runs (eager, max_model_len 4096, mnbt 8192, mns 1024):
    ("Qwen/Qwen3-VL-8B-Instruct", "0.26.0", "16.79"),    # data/truth/logs/h100b/vl8b_e_v1_base.log
    ("Qwen/Qwen3-0.6B", "0.26.0", "1.12"),               # h100a/q06b_e_base.log (embedding 296.75 MiB -> 298)
    ("meta-llama/Llama-3.2-1B-Instruct", "0.26.0", "2.32"),  # h100b/l1b_e_base.log
    ("Qwen/Qwen3-8B", "0.34.0", "15.27"),                # h100e/q8b_e_unset.log
    # MLA unquantized: W_UK_T / W_UV are views of kv_b_proj (Param.quantized_only)
    ("deepseek-ai/DeepSeek-V2-Lite", "0.34.0", "29.32"),  # h100e/mla_e_unset.log
])
def test_logged_weights_of_our_runs(model_id, version, logged):
    p = vramplan.plan(model_id, vllm_version=version, device="h100-80gb", max_model_len=4096,
                      max_num_batched_tokens=8192, max_num_seqs=1024, enforce_eager=True)
    assert format_gib(p.logged_rank.bytes_of("weights")) == logged


def test_llama_3_1_8b_tp8_to_the_fourth_decimal():
    # data/public/vllm_startup_cases.jsonl llama31-8b-tp8-mlcommons2267 (V0 ~v0.6.3, 8 ranks): "Loading model
    # weights took 1.9028 GB" (GiB). Per rank the embedding and the LM head are 128256 / 8 x 4096 x 2 bytes =
    # 125.25 MiB: a 126 MiB segment whose 0.75 MiB rest is not split off (1 MiB or less), twice; every other tensor
    # is a multiple of 2 MiB. Tensors alone: 1.9014 GiB. Planned as bench/cases.py does, with the 0.19 rules (no
    # split limit before 0.21, as in V0; the V0 planner does not replay the allocator).
    p = vramplan.plan("meta-llama/Llama-3.1-8B-Instruct", vllm_version="0.19.0", device="h200",
                      tensor_parallel_size=8, max_model_len=131072)
    w = p.logged_rank.term("weights")
    assert dict(w.parts)["allocator"] == 2 * (126 * MiB - 128256 // 8 * 4096 * 2) == int(1.5 * MiB)
    assert round(w.bytes / 2**30, 4) == 1.9028
