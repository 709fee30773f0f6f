"""``measure_rank`` writes measure_kv_cache_bytes's arithmetic out inline; it must give what the function
(vLLM v0.34.0 extensible_kv_cache.py:measure_kv_cache_bytes, mirrored there) gives for the same measurements."""

from hypothesis import given, settings, strategies as st

import vramplan
from vramplan.engines.vllm.sizing.extensible import (
    margin_floor_bytes, measure_kv_cache_bytes, measure_rank, physical_bytes_for, segment_strides)

GIB = 1 << 30
_LAYOUT = vramplan.plan("Qwen/Qwen3-8B").logged_rank.layout


@settings(max_examples=400, deadline=None)
@given(init_free=st.integers(0, 200 * GIB), requested=st.integers(0, 200 * GIB), weights=st.integers(0, 100 * GIB),
       non_torch=st.integers(0, 4 * GIB), profile_peak=st.integers(0, 20 * GIB),
       warmup_peak=st.integers(0, 20 * GIB), graph_pool=st.integers(0, 4 * GIB),
       platform=st.sampled_from(["cuda", "rocm"]), util=st.floats(0.05, 1.0), util_given=st.booleans(),
       kept_frac=st.floats(0.0, 1.0))
def test_inline_arithmetic_equals_measure_kv_cache_bytes(init_free, requested, weights, non_torch, profile_peak,
                                                         warmup_peak, graph_pool, platform, util, util_given,
                                                         kept_frac):
    # kept: the part of the profile peak still allocated after it (the fused-MoE workspace): in use, not transient
    kept = int(profile_peak * kept_frac)
    s = measure_rank(init_free=init_free, requested=requested, weights=weights, non_torch=non_torch,
                     profile_peak=profile_peak, warmup_peak=warmup_peak, graph_pool=graph_pool, layout=_LAYOUT,
                     reserved_blocks=1 << 20, platform=platform, util=util, util_given=util_given, kept=kept)
    committed = physical_bytes_for(1, segment_strides(_LAYOUT))
    transient = max(profile_peak - kept, warmup_peak)
    free = init_free - weights - non_torch - graph_pool - kept - committed
    kw = dict(init_free_memory=init_free, free_memory=free, committed_bytes=committed,
              transient_peak_bytes=transient, torch_reserve_growth_bytes=transient,
              margin_floor=margin_floor_bytes(platform))
    expected = measure_kv_cache_bytes(requested_memory=requested, **kw)
    assert s.available_bytes == expected
    if util_given and 0.7 < util < 1.0:
        assert s.withheld_bytes == measure_kv_cache_bytes(requested_memory=init_free, **kw) - expected
    else:
        assert s.withheld_bytes is None
