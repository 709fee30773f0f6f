"""SGLang pool-sizing rules of issue 14: the request-capped SWA pool and the mamba state slots.

Expected values are hand calculations from the model config and the flags written here (sglang 0.5.17 and 0.5.23
``model_executor/pool_configurator.py``, ``mem_cache/kv_cache_configurator.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.engines import sglang
from vramplan.engines.sglang.pool import swa_request_cap

# gpt-oss-20b (config.json): 24 layers alternating sliding (window 128) / full, 8 KV heads, head_dim 64, bf16 KV.
# per token of one layer at TP 1: 8 x (64 + 64) x 2 = 2048 B; 12 full + 12 SWA layers; page 1; chunked prefill 8192
GPT_OSS = "openai/gpt-oss-20b"
PER_LAYER = 8 * (64 + 64) * 2
FULL_L = SWA_L = 12


def _cap(window, page, mrr, dp, cps, overlap_off, interval=128, at_least_one=True):
    # per request: window + eviction interval x 1 draft token + page (trailing) + page (decode allocation)
    n = mrr // dp
    if at_least_one:
        n = max(1, n)
    return (window + interval + page + page) * n + (1 if overlap_off else 2) * cps + page


def test_swa_request_cap_formula_per_release():
    # 0.5.23 compute_swa_request_cap: max(1, 64 // 1) x (128 + 128 + 1 + 1) + 2 x 8192 + 1
    assert swa_request_cap(window=128, page_size=1, max_running_requests=64, attn_dp=1, chunked_prefill_size=8192,
                           disable_overlap_schedule=False) == 258 * 64 + 16384 + 1 == 32897
    # --disable-overlap-schedule: one chunk in flight
    assert swa_request_cap(window=128, page_size=1, max_running_requests=64, attn_dp=1, chunked_prefill_size=8192,
                           disable_overlap_schedule=True) == 258 * 64 + 8192 + 1
    # 0.5.17 SWAChunkCapPoolConfigurator counts 3 // 4 = 0 requests; 0.5.23 at least one
    assert swa_request_cap(window=4096, page_size=64, max_running_requests=3, attn_dp=4, chunked_prefill_size=4096,
                           disable_overlap_schedule=False, at_least_one_request=False) == 2 * 4096 + 64
    assert swa_request_cap(window=4096, page_size=64, max_running_requests=3, attn_dp=4, chunked_prefill_size=4096,
                           disable_overlap_schedule=False) == (4096 + 128 + 128) + 2 * 4096 + 64
    # SGLANG_SWA_EVICTION_INTERVAL=0 counts as 1 (max(1, ...))
    assert swa_request_cap(window=128, page_size=1, max_running_requests=1, attn_dp=1, chunked_prefill_size=0,
                           disable_overlap_schedule=True, eviction_interval=0) == 128 + 1 + 1 + 1 + 1


@settings(max_examples=60, deadline=None)
@given(window=st.integers(1, 1 << 17), page=st.sampled_from([1, 16, 32, 64, 128]), mrr=st.integers(1, 5000),
       dp=st.integers(1, 8), cps=st.integers(-1, 32768), off=st.booleans(), one=st.booleans())
def test_swa_request_cap_matches_the_hand_formula(window, page, mrr, dp, cps, off, one):
    assert swa_request_cap(window=window, page_size=page, max_running_requests=mrr, attn_dp=dp,
                           chunked_prefill_size=cps, disable_overlap_schedule=off,
                           at_least_one_request=one) == _cap(window, page, mrr, dp, cps, off, at_least_one=one)


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_gpt_oss_default_split_by_ratio(version):
    # HybridSWAPoolConfigurator: cell = 2048 x 12 + 0.8 x 2048 x 12; swa = int(full x 0.8) page-aligned
    p = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version)
    b = p.logged_stage.budget_bytes
    full = int(b // (PER_LAYER * FULL_L + 0.8 * PER_LAYER * SWA_L))
    assert p.max_total_num_tokens == full and p.swa_tokens == int(full * 0.8)


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
@pytest.mark.parametrize("overlap_off", [False, True])
def test_gpt_oss_swa_pool_from_max_running_requests(version, overlap_off):
    # --max-running-requests 64 --disable-radix-cache: SWA pool = the request cap, the rest of the budget is full KV
    # (0.5.17 SWAChunkCapPoolConfigurator / 0.5.23 SWARequestCapPoolConfigurator.calculate_pool_sizes)
    kw = dict(max_running_requests=64, disable_radix_cache=True, disable_overlap_schedule=overlap_off)
    p = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, **kw)
    b = p.logged_stage.budget_bytes
    swa = 258 * 64 + (1 if overlap_off else 2) * 8192 + 1
    full = (b - swa * PER_LAYER * SWA_L) // (PER_LAYER * FULL_L)
    assert p.swa_tokens == swa and p.max_total_num_tokens == full
    assert p.max_running_requests == 64 and p.starts
    # the pool as allocated: (size + page) cells per layer on both sides
    assert p.kv_pool_bytes == (full + 1) * PER_LAYER * FULL_L + (swa + 1) * PER_LAYER * SWA_L
    # the same budget through the ratio path gives fewer full tokens
    assert full > int(b // (PER_LAYER * FULL_L + 0.8 * PER_LAYER * SWA_L))


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_swa_cap_with_a_lower_max_total_tokens(version):
    # calculate_pool_sizes_from_max_tokens: full = the cap given, SWA = min(ceil_align(cap), max_total_tokens)
    p = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, max_running_requests=64,
                    disable_radix_cache=True, max_total_tokens=100_000)
    assert p.max_total_num_tokens == 100_000 and p.swa_tokens == 32897
    p = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, max_running_requests=64,
                    disable_radix_cache=True, max_total_tokens=20_000)
    assert p.max_total_num_tokens == 20_000 and p.swa_tokens == 20_000


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_swa_cap_needs_both_flags(version):
    ratio = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, max_running_requests=64)
    assert ratio.swa_tokens == int(ratio.max_total_num_tokens * 0.8)
    no_mrr = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, disable_radix_cache=True)
    assert no_mrr.swa_tokens == int(no_mrr.max_total_num_tokens * 0.8)


def test_swa_cap_without_chunked_prefill_differs_by_release():
    # --chunked-prefill-size -1: 0.5.23 is_applicable refuses (<= 0) and keeps the ratio; 0.5.17 refuses only None,
    # so the cap counts 2 x -1: 258 x 64 - 2 + 1
    kw = dict(max_running_requests=64, disable_radix_cache=True, chunked_prefill_size=-1)
    new = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version="0.5.23", **kw)
    assert new.swa_tokens == int(new.max_total_num_tokens * 0.8)
    old = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version="0.5.17", **kw)
    assert old.swa_tokens == 258 * 64 - 2 + 1


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_swa_cap_leaving_no_room_for_full_kv_is_sglangs_error(version):
    # 100000 requests x 258 tokens x 24576 B is ~590 GiB: more than the budget
    p = sglang.plan(GPT_OSS, device="h100-80gb", sglang_version=version, max_running_requests=100_000,
                    disable_radix_cache=True)
    assert not p.starts and p.error_kind == "no_kv_cache_memory"
    assert p.error_message.startswith(f"RuntimeError: SWA pool cap ({258 * 100_000 + 16385} tokens, ")
    assert "leaves no room for the full KV pool" in p.error_message
