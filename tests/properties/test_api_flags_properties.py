"""The API's keyword arguments are read exactly as the CLI reads the same flags (issue 11): for any value,
both give the same EngineArgs, or both refuse it with the same one line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import FlagError
from vramplan.engines.vllm.flags import EngineArgs, args_with, parse_flags

FLAGS = {
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
    "max_num_seqs": "--max-num-seqs",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "tensor_parallel_size": "--tensor-parallel-size",
    "block_size": "--block-size",
    "cpu_offload_gb": "--cpu-offload-gb",
    "kv_cache_memory_bytes": "--kv-cache-memory-bytes",
}

values = st.one_of(
    st.integers(min_value=-3, max_value=300_000),
    st.floats(min_value=-1, max_value=2, allow_nan=False).map(lambda x: round(x, 3)),
    st.sampled_from(["32k", "8K", "auto", "-1", "0", "1.5", "0.9", "abc", "", "4096", "1e3", "2G", "25.6k"]),
)


def _read(fn):
    try:
        return "ok", fn()
    except FlagError as exc:
        return "refused", exc.one_line()


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(FLAGS)), value=values)
def test_keywords_and_flags_agree(field, value):
    api = _read(lambda: args_with(None, **{field: value}))
    cli = _read(lambda: parse_flags([FLAGS[field], str(value)], environ={}).args)
    if api[0] == "ok" and cli[0] == "ok":
        assert getattr(api[1], field) == getattr(cli[1], field)
        assert api[1] == EngineArgs(**{field: getattr(cli[1], field)})
    else:
        assert api == cli
