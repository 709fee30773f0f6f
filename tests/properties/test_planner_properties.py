"""Properties the startup arithmetic must keep for any flags, whatever the constants.

These follow from vLLM's rules themselves (gpu_worker.determine_available_memory, kv_cache_utils), not from
vramplan's numbers: more memory never buys fewer blocks, a longer context never needs less, the blocks never
cost more than the memory they are carved from, and the plan only fails with one of the kinds vLLM fails with.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.errors import InvalidConfig
from vramplan.engines.vllm.log import ERROR_KINDS

SETTINGS = settings(max_examples=int(os.environ.get("VRAMPLAN_PLAN_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# dense, GQA with tied embeddings, MoE, hybrid sliding window, MLA, linear-attention hybrid, vision-language
MODELS = st.sampled_from([
    "Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
    "deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-Next-80B-A3B-Instruct", "Qwen/Qwen3-VL-8B-Instruct",
])
DEVICES = st.sampled_from(["h100-80gb", "h200", "a100-40gb", "l40s", "ascend-910b3"])
UTILS = st.floats(min_value=0.05, max_value=0.99, allow_nan=False)
LENS = st.sampled_from([1024, 4096, 8192, 32768, 131072])
SEQS = st.sampled_from([1, 16, 64, 256, 1024])


def _plan(model, device, **kw):
    """The plan, or a skipped example where vLLM refuses the configuration itself (before any memory)."""
    try:
        return vramplan.plan(model, device=device, **kw)
    except InvalidConfig as e:
        assert e.message
        assume(False)


@SETTINGS
@given(model=MODELS, device=DEVICES, u1=UTILS, u2=UTILS, mml=LENS, tp=st.sampled_from([1, 2, 4]))
def test_more_memory_never_gives_fewer_blocks(model, device, u1, u2, mml, tp):
    lo, hi = sorted((u1, u2))
    a = _plan(model, device, gpu_memory_utilization=lo, max_model_len=mml, tensor_parallel_size=tp)
    b = _plan(model, device, gpu_memory_utilization=hi, max_model_len=mml, tensor_parallel_size=tp)
    if a.starts and not b.starts:
        # the two ways asking for more hurts: more than is free at start (vLLM's startup check), or a KV cache
        # that leaves too little for what runs after it (CUDA graphs, the sampler warm-up)
        assert b.error_kind in ("free_memory_below_requested", "out_of_memory"), b.error_kind
        if b.error_kind == "out_of_memory":
            assert b.num_gpu_blocks >= a.num_gpu_blocks
    if a.starts and b.starts:
        assert b.num_gpu_blocks >= a.num_gpu_blocks
        assert b.kv_cache_tokens >= a.kv_cache_tokens


@SETTINGS
@given(model=MODELS, device=DEVICES, u=UTILS, tp=st.sampled_from([1, 2, 4]), mns=SEQS)
def test_blocks_fit_in_the_memory_they_are_carved_from(model, device, u, tp, mns):
    # vLLM 0.33's get_num_blocks floor (0.34's extensible cache rounds to 2 MiB granules: test_v034.py)
    p = _plan(model, device, gpu_memory_utilization=u, max_model_len=4096, tensor_parallel_size=tp,
              max_num_seqs=mns, vllm_version="0.33")
    for rank in p.ranks:
        if rank.available_kv_bytes > 0:
            # vLLM: num_blocks = available // (page bytes x layers per group): never more than the memory
            assert rank.num_blocks * rank.layout.bytes_per_block <= rank.available_kv_bytes
            assert (rank.num_blocks + 1) * rank.layout.bytes_per_block > rank.available_kv_bytes
    if p.starts:
        # the engine takes the smallest rank's blocks
        assert p.num_gpu_blocks == min(r.num_blocks for r in p.ranks)


@SETTINGS
@given(model=MODELS, device=DEVICES, u=UTILS, m1=LENS, m2=LENS)
def test_a_longer_context_never_starts_where_a_shorter_one_fails(model, device, u, m1, m2):
    short, long_ = sorted((m1, m2))
    a = _plan(model, device, gpu_memory_utilization=u, max_model_len=short)
    b = _plan(model, device, gpu_memory_utilization=u, max_model_len=long_)
    if b.starts:
        assert a.starts, (short, a.error_kind)
    if b.estimated_max_model_len is not None and a.estimated_max_model_len is not None:
        # the estimate is a property of the memory, not of the requested length (up to the profile's batch)
        assert a.estimated_max_model_len >= min(short, a.estimated_max_model_len)


@SETTINGS
@given(model=MODELS, device=DEVICES, u=UTILS, mml=LENS, mns=SEQS, tp=st.sampled_from([1, 2]))
def test_failures_are_the_kinds_vllm_fails_with(model, device, u, mml, mns, tp):
    p = _plan(model, device, gpu_memory_utilization=u, max_model_len=mml, max_num_seqs=mns,
              tensor_parallel_size=tp)
    assert p.verdict in ("starts", "fails")
    if p.starts:
        assert p.error_kind is None and p.num_gpu_blocks > 0 and p.kv_cache_tokens > 0
    else:
        assert p.error_kind in ERROR_KINDS and p.error_message


@SETTINGS
@given(model=MODELS, tp=st.sampled_from([1, 2, 4, 8]))
def test_tensor_parallel_never_grows_a_ranks_weights(model, tp):
    one = _plan(model, "h200", tensor_parallel_size=1, max_model_len=4096).ranks[0].bytes_of("weights")
    many = _plan(model, "h200", tensor_parallel_size=tp, max_model_len=4096).ranks[0].bytes_of("weights")
    assert many <= one
    # and the ranks together hold at least the whole model (replicated pieces count once per rank)
    assert many * tp >= one * 0.99
