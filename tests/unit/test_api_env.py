"""The Python API's ``env=``: None, a mapping or (name, value) pairs plan alike; anything else is one FlagError
(it was an internal TypeError/ValueError)."""

import pytest
from hypothesis import given, settings, strategies as st

import vramplan
from vramplan.errors import FlagError


def test_none_mapping_and_pairs_plan_alike():
    a = vramplan.plan("Qwen/Qwen3-8B", env=None)
    b = vramplan.plan("Qwen/Qwen3-8B", env={})
    c = vramplan.plan("Qwen/Qwen3-8B", env=[])
    assert a.num_gpu_blocks == b.num_gpu_blocks == c.num_gpu_blocks
    m = vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.26", env={"VLLM_USE_V2_MODEL_RUNNER": "0"})
    p = vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.26", env=[("VLLM_USE_V2_MODEL_RUNNER", "0")])
    assert m.engine.runner == p.engine.runner == "v1"


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.lists(st.integers(), max_size=3)))
def test_anything_else_is_one_flag_error(value):
    try:
        vramplan.plan("Qwen/Qwen3-8B", env=value)
    except FlagError as e:
        assert "env" in str(e)
