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


# --- hybrid Mamba / linear attention: the state pool's slots ---------------------------------------------------

from vramplan.engines.sglang.flags import parse_sglang_flags  # noqa: E402
from vramplan.engines.sglang.pool import mamba_extra_buffer, mamba_ratio  # noqa: E402
from vramplan.engines.sglang.rules import rules_for  # noqa: E402
from vramplan.errors import FlagError  # noqa: E402

QNEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"
# Qwen3-Next at TP 4, per GDN layer: conv [(2 x 16 x 128 + 32 x 128) / 4, 4 - 1] bf16 + SSM [32 / 4, 128, 128] fp32;
# 36 GDN layers of 48
QNEXT_PER_REQ = ((2 * 16 * 128 + 32 * 128) // 4 * 3 * 2 + 8 * 128 * 128 * 4) * 36


def test_mamba_ratio_table():
    # _calculate_mamba_ratio (0.5.17 and 0.5.23 agree): no radix 1; no_buffer 3; extra_buffer 3 + 2 (overlap) / + 1
    assert mamba_ratio(disable_radix_cache=True, extra_buffer=False, lazy=False, overlap=True) == 1
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=False, lazy=False, overlap=True) == 3
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=True, lazy=False, overlap=True) == 5
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=True, lazy=False, overlap=False) == 4
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=True, lazy=True, overlap=True) == 4
    # SGLANG_OPT_MAMBA_SKIP_DECODE_LOCK: base 2; no_buffer adds the 1 back, extra_buffer adds its slots
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=False, lazy=False, overlap=True,
                       skip_decode_lock=True) == 3
    assert mamba_ratio(disable_radix_cache=False, extra_buffer=True, lazy=False, overlap=True,
                       skip_decode_lock=True) == 4


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_auto_strategy_resolution(version):
    archs = rules_for(version).mamba_extra_buffer_archs

    def eb(arch="Qwen3NextForCausalLM", strategy="auto", radix_off=False, overlap_off=False, page=None, be="triton"):
        return mamba_extra_buffer(arch=arch, strategy=strategy, disable_radix_cache=radix_off,
                                  disable_overlap_schedule=overlap_off, page_size=page, linear_attn_backend=be,
                                  extra_buffer_archs=archs)
    assert eb() == (True, False)
    assert eb(overlap_off=True) == (False, False)            # no overlap, no paging: no_buffer
    assert eb(overlap_off=True, page=64) == (True, False)    # paging asks for it
    assert eb(be="flashinfer") == (False, False)
    assert eb(arch="Lfm2ForCausalLM") == (False, False)      # mamba radix cache, but no extra-buffer support
    assert eb(radix_off=True, strategy="extra_buffer") == (False, False)
    assert eb(strategy="extra_buffer_lazy") == (True, True)
    assert eb(strategy="no_buffer") == (False, False)
    # the Qwen3.5 text-only class supports it only from 0.5.23
    assert eb(arch="Qwen3_5ForCausalLM") == ((True, False) if version == "0.5.23" else (False, False))


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
@pytest.mark.parametrize("kw,ratio", [({}, 5), (dict(disable_overlap_schedule=True), 3),
                                      (dict(mamba_radix_cache_strategy="no_buffer"), 3),
                                      (dict(mamba_radix_cache_strategy="extra_buffer_lazy"), 4),
                                      (dict(disable_overlap_schedule=True, mamba_radix_cache_strategy="extra_buffer"), 4)])
def test_qwen3_next_running_requests_capped_by_state_slots(version, kw, ratio):
    # Qwen3-Next supports extra_buffer: by default (overlap on) 5 state slots per running request, not 3
    p = sglang.plan(QNEXT, device="h100-80gb", sglang_version=version, tp_size=4, **kw)
    s = p.logged_stage
    k = s.mamba_cache_size
    assert s.mamba_state_bytes == (k + 1) * QNEXT_PER_REQ
    # the budget path: K = int((rest x 0.9 / 1.9 x 2^30 - per_req) // per_req); rest before the state is taken
    rest_before = s.rest_gb + s.mamba_state_bytes / 2**30
    assert abs(k - (rest_before * 0.9 / 1.9 * 2**30 - QNEXT_PER_REQ) / QNEXT_PER_REQ) < 1.001
    assert p.max_running_requests == k // ratio
    assert any(f"capped to {k // ratio} by the mamba state cache (max_mamba_cache_size={k}, {ratio} state slots"
               in w for w in p.warnings)


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_mamba_slots_from_max_running_requests_without_radix_cache(version):
    # --disable-radix-cache --max-running-requests 48: the pool holds 48 slots (+1 padding), 1 per request, and the
    # rest of the budget (not 0.9 / 1.9 of it) goes to the full-attention KV
    p = sglang.plan(QNEXT, device="h100-80gb", sglang_version=version, tp_size=4, disable_radix_cache=True,
                    max_running_requests=48)
    s = p.logged_stage
    assert s.mamba_cache_size == 48 and s.mamba_state_bytes == 49 * QNEXT_PER_REQ
    assert p.max_running_requests == 48
    # 12 full-attention layers, 2 KV heads / TP 4 -> 1, head_dim 256, K + V, bf16; page 1
    assert s.cell.bytes_per_token == 12 * 1 * 256 * 2 * 2
    assert p.max_total_num_tokens == s.budget_bytes // (12 * 256 * 2 * 2)


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_explicit_max_mamba_cache_size(version):
    p = sglang.plan(QNEXT, device="h100-80gb", sglang_version=version, tp_size=4, max_mamba_cache_size=300)
    s = p.logged_stage
    assert s.mamba_cache_size == 300 and s.mamba_state_bytes == 301 * QNEXT_PER_REQ
    assert p.max_running_requests == 300 // 5


def test_mamba_slots_per_dp_worker_differ_by_release():
    # --max-running-requests 2 over 4 DP-attention workers without radix cache: 0.5.17 2 // 4 = 0 slots (SGLang's
    # "Not enough GPU memory for hybrid ... state cache" error); 0.5.23 max(1, 0) = 1
    kw = dict(tp_size=4, dp_size=4, enable_dp_attention=True, disable_radix_cache=True, max_running_requests=2)
    old = sglang.plan(QNEXT, device="h100-80gb", sglang_version="0.5.17", **kw)
    assert not old.starts and "max_mamba_cache_size=0" in old.error_message
    new = sglang.plan(QNEXT, device="h100-80gb", sglang_version="0.5.23", **kw)
    assert new.logged_stage.mamba_cache_size == 1


def test_mamba_flags_parse():
    a = parse_sglang_flags(["--mamba-scheduler-strategy", "no_buffer", "--max-mamba-cache-size", "64",
                            "--disable-overlap-schedule"])
    assert a.args.mamba_radix_cache_strategy == "no_buffer" and a.args.max_mamba_cache_size == 64
    assert a.args.disable_overlap_schedule and "--max-mamba-cache-size" not in a.unmodelled
    assert parse_sglang_flags(["--mamba-radix-cache-strategy=extra_buffer"]).args.mamba_radix_cache_strategy == \
        "extra_buffer"
    with pytest.raises(FlagError):
        parse_sglang_flags(["--mamba-radix-cache-strategy", "double"])


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_mamba_state_charged_at_the_largest_stage_share_under_pp(version):
    # PP 5 over 48 layers (get_pp_indices: 9, 9, 10, 10, 10); full attention at i % 4 == 3, so the stages hold
    # 7, 7, 7, 8, 7 GDN layers. _handle_max_mamba_cache charges every rank int(per_req(36 layers) x 8 / 36); each rank
    # allocates its own layers' state. TP 1, per GDN layer: conv (2 x 16 x 128 + 32 x 128) x 3 bf16 + SSM 32 x 128 x
    # 128 fp32
    layer = (2 * 16 * 128 + 32 * 128) * 3 * 2 + 32 * 128 * 128 * 4
    charge = int(36 * layer * (8 / 36))
    p = sglang.plan(QNEXT, device="h100-80gb", sglang_version=version, pp_size=5)
    own = [7, 7, 7, 8, 7]
    for s, n in zip(p.stages, own):
        k = s.mamba_cache_size
        assert s.mamba_state_bytes == (k + 1) * n * layer
        rest_before = s.rest_gb + (k + 1) * charge / 2**30
        assert abs(k - (rest_before * 0.9 / 1.9 * 2**30 - charge) / charge) < 1.001
