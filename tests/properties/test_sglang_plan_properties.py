"""The SGLang planner over the catalog x devices x releases, and its monotonicity in the fraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.engines import sglang
from vramplan.errors import VramplanError
from vramplan.inputs.model_source import catalog_ids

CASES = [("h100-80gb", 1), ("h100-80gb", 8), ("a100-40gb", 2), ("rtx-4090", 1), ("b200", 1), ("mi300x", 1)]


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_catalog_matrix_never_crashes(version):
    for cid in catalog_ids():
        for dev, tp in CASES:
            try:
                p = sglang.plan(cid, device=dev, tp_size=tp, sglang_version=version)
            except VramplanError:
                continue  # a refused configuration: one clear line
            assert p.verdict in ("starts", "fails")
            if p.starts:
                assert p.max_total_num_tokens > 0 and p.max_total_num_tokens % p.resolved.page_size == 0
                assert 1 <= p.max_running_requests <= max(p.max_total_num_tokens // 2, 1)
            else:
                assert p.error_kind and p.error_message and p.error_phase


@settings(max_examples=40, deadline=None)
@given(st.integers(300, 980), st.integers(1, 20), st.sampled_from(["Qwen/Qwen3-8B", "deepseek-ai/DeepSeek-V2-Lite",
                                                                   "google/gemma-3-12b-it"]))
def test_more_fraction_never_fewer_tokens(th, step, model):
    lo = sglang.plan(model, mem_fraction_static=th / 1000)
    hi = sglang.plan(model, mem_fraction_static=min(th + step, 1000) / 1000)
    assert (hi.max_total_num_tokens or 0) >= (lo.max_total_num_tokens or 0)
    assert hi.headroom_bytes <= lo.headroom_bytes
