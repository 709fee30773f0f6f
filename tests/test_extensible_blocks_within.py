"""``blocks_within`` reads the block count off directly for one segment kind; the reference here is the
step-down loop vLLM v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.blocks_within describes (the most blocks
whose granule-rounded footprint fits), written out independently of the code under test."""

from hypothesis import given, settings, strategies as st

from vramplan.engines.vllm.sizing.extensible import GRANULE_BYTES, blocks_within


def _physical(n, strides, granule):
    return sum(c * (-(-n * s // granule) * granule) for s, c in strides)


def _reference(num_bytes, strides, cap, granule):
    per_block = sum(s * c for s, c in strides)
    if per_block <= 0 or num_bytes <= 0:
        return 0
    n = min(num_bytes // per_block, cap)
    while n > 0 and _physical(n, strides, granule) > num_bytes:
        n -= 1
    return n


@settings(max_examples=3000, deadline=None)
@given(num_bytes=st.integers(-(1 << 20), 1 << 42), stride=st.integers(0, 1 << 24), count=st.integers(0, 200),
       cap=st.integers(-5, 1 << 22), granule=st.sampled_from([GRANULE_BYTES, 1, 4096, 3 << 20, 1 << 21]))
def test_one_segment_kind_equals_the_step_down(num_bytes, stride, count, cap, granule):
    strides = ((stride, count),)
    assert blocks_within(num_bytes, strides, cap, granule) == _reference(num_bytes, strides, cap, granule)


@settings(max_examples=2000, deadline=None)
@given(num_bytes=st.integers(0, 1 << 36), stride=st.integers(1, 1 << 22), count=st.integers(1, 128),
       cap=st.integers(0, 1 << 20))
def test_real_sized_segments(num_bytes, stride, count, cap):
    strides = ((stride, count),)
    assert blocks_within(num_bytes, strides, cap) == _reference(num_bytes, strides, cap, GRANULE_BYTES)


@settings(max_examples=500, deadline=None)
@given(num_bytes=st.integers(0, 1 << 30),
       strides=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 8)), min_size=0, max_size=3),
       cap=st.integers(0, 1 << 12))
def test_several_segment_kinds(num_bytes, strides, cap):
    strides = tuple(strides)
    assert blocks_within(num_bytes, strides, cap) == _reference(num_bytes, strides, cap, GRANULE_BYTES)


def test_hand_example():
    # 3 segments of 1 MiB a block; 10 MiB fits ceil(n MiB / 2 MiB) x 2 MiB x 3 <= 10 MiB -> 2 MiB per segment
    # (6 MiB) -> n = 2; 4 MiB a segment would be 12 MiB
    mib = 1 << 20
    assert blocks_within(10 * mib, ((mib, 3),), 100) == 2
    assert blocks_within(12 * mib, ((mib, 3),), 100) == 4
    assert blocks_within(12 * mib, ((mib, 3),), 3) == 3
