"""What the profile run keeps and what it only peaks at, against vLLM 0.34.0's own DEBUG logs (data/truth/logs).

From each log's ``Memory profiling`` line: the transient headroom is ``Total non KV cache memory - total consumed``
(vllm/utils/mem_utils.py:memory_profiling: non-KV = consumed + torch_peak - torch_allocated) and what the profile
run left allocated is ``torch peak increase - headroom``. Dense runs leave 0.09 GiB (Qwen3-8B: 1.04 - (17.02 -
16.07); Qwen3-0.6B: 0.99 - (2.88 - 1.98)); MoE runs leave that plus the fused-MoE workspace, which the workspace
manager keeps (vllm/v1/worker/workspace.py). Hand calculations below use the configs' numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from vramplan.estimate.activation import fused_moe_workspace_per_token, mla_profile_context_rows

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30
T = 8192  # max_num_batched_tokens of every run below


# (name, top_k, moe_intermediate, hidden, logged: torch peak increase, non-KV total, total consumed)
_WORKSPACE = [
    # Qwen3-30B-A3B, Triton experts: 8 x (max(768, 2048) + max(1536, 2048)) x 2 B = 65,536 B a token -> 0.5 GiB
    ("moe_e_unset", 8, 768, 2048, 1.49, 59.08, 58.17, 0.5),
    # Kimi-K2.5 trimmed, Marlin WNA16 experts: 8 x (max(2048, 7168) + max(4096, 7168)) x 2 = 229,376 B -> 1.75 GiB
    ("kimi25_trim", 8, 2048, 7168, 4.38, 29.67, 27.16, 1.75),
    # MiniMax-M2 trimmed: 8 x (max(1536, 3072) + max(3072, 3072)) x 2 = 98,304 B -> 0.75 GiB
    ("minimax_trim_nobf16x3", 8, 1536, 3072, 2.06, 18.97, 17.77, 0.75),
    # DeepSeek-V2-Lite: 6 x (max(1408, 2048) + max(2816, 2048)) x 2 = 58,368 B -> 0.4453 GiB
    ("mla_e_unset", 6, 1408, 2048, 1.14, 31.01, 30.37, 0.4453125),
    # Gemma 4 26B-A4B trimmed: 8 x (max(704, 2816) + max(1408, 2816)) x 2 = 90,112 B -> 0.6875 GiB
    ("gemma4_trim_tri", 8, 704, 2816, 2.37, 14.42, 12.87, 0.6875),
]


@pytest.mark.parametrize("name,top_k,inter,hidden,peak,non_kv,consumed,hand_gib", _WORKSPACE)
def test_fused_moe_workspace_is_what_the_profile_leaves_allocated(name, top_k, inter, hidden, peak, non_kv,
                                                                  consumed, hand_gib):
    ws = T * fused_moe_workspace_per_token(top_k=top_k, intermediate=inter, hidden=hidden, b=2)
    assert ws == hand_gib * GIB
    left = peak - (non_kv - consumed)  # what the profile run left allocated, from the log
    dense_left = 0.09  # what dense runs leave (module docstring)
    assert abs(left - dense_left - ws / GIB) <= 0.07, (name, left, ws / GIB)


def test_mla_context_rows_by_hand():
    # min(max(8 x 4096, 4 x 1024 x 64), 65,536): the 0.34 runs (block 64) and the 0.26 runs (block 16) alike
    assert mla_profile_context_rows(max_model_len=4096, max_num_seqs=1024, block_size=64) == 65536
    assert mla_profile_context_rows(max_model_len=4096, max_num_seqs=1024, block_size=16) == 65536
    # max(8 x 4096, 4 x 64 x 16 = 4,096) = 32,768
    assert mla_profile_context_rows(max_model_len=4096, max_num_seqs=64, block_size=16) == 32768
    # 8 x 1,001 = 8,008, rounded up to the block: 8,064
    assert mla_profile_context_rows(max_model_len=1001, max_num_seqs=1, block_size=64) == 8064


@given(mml=st.integers(1, 1 << 21), mns=st.integers(1, 4096), bs=st.sampled_from([16, 32, 64, 128, 256]))
def test_mla_context_rows_space(mml, mns, bs):
    rows = mla_profile_context_rows(max_model_len=mml, max_num_seqs=mns, block_size=bs)
    assert rows % bs == 0
    assert min(max(8 * mml, 4 * mns * bs), 65536) <= rows < min(max(8 * mml, 4 * mns * bs), 65536) + bs


# The 0.34 runs: (case id, logged non-KV total, logged transient kept after warm-up ("allocated at peak"),
# logged committed blocks). Kimi-K2.5's headroom 2.51 GiB = the MLA profile dummy, 65,536 rows x 64 heads x
# (128 + 128) x 2 B = 2 GiB, + the query (64 x 192), the output (64 x 128) and 2 x [T, 7168] = 0.53 GiB.
_RUNS = [
    ("truth-v034-h100e-moe_e_unset", 59.08, 0.91, 3136),
    ("truth-v034-h100f-moe_e_noext", 59.08, None, 2078),
    ("truth-v034-h100f-kimi25_trim", 29.67, 2.51, 200277),
    ("truth-v034-h100f-minimax_trim_nobf16x3", 18.97, 1.21, 53488),
    ("truth-v034-h100f-gemma4_trim_tri", 14.42, 1.56, 116228),
    ("truth-v034-h100e-mla_e_unset", 31.01, 0.64, 24860),
    ("truth-v034-h100f-q06b_e_unset", 2.88, 0.89, 10912),
]


@pytest.fixture(scope="module")
def plans():
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import plan_case
    from cases import load_cases

    want = {r[0] for r in _RUNS}
    return {c.id: plan_case(c) for c in load_cases() if c.id in want}


@pytest.mark.parametrize("case_id,non_kv,transient,blocks", _RUNS)
def test_v034_moe_and_mla_runs_meet_their_logs(plans, case_id, non_kv, transient, blocks):
    p = plans[case_id]
    r = p.logged_rank
    assert abs(r.bytes_of("non_kv_total") / GIB - non_kv) <= 0.1
    if transient is not None:
        assert abs(r.bytes_of("warmup_transient_peak") / GIB - transient) <= 0.06
    assert abs(p.num_gpu_blocks - blocks) / blocks <= 0.01


def test_mla_builder_workspace_is_in_use_after_warmup(plans):
    from vramplan.engines.vllm.sizing.extensible import mla_builder_workspace_bytes

    p = plans["truth-v034-h100e-mla_e_unset"]
    # DeepSeek-V2-Lite, 0.34 defaults (block 64, max_model_len 4096, max_num_seqs 1024): 65,536 rows x (512 + 64) x 2 B
    assert mla_builder_workspace_bytes(p.model, p.engine, range(0, p.model.num_hidden_layers)) == 65536 * 576 * 2
    # the log: "Memory after warmup: 45.91 GiB free, 2.06 GiB committed" on 78.48 GiB free at the snapshot -> 30.51
    # GiB in use besides the KV cache (the profile's total consumed was 30.37)
    assert abs(p.logged_rank.bytes_of("non_kv_after_warmup") / GIB - (78.48 - 45.91 - 2.06)) <= 0.08
    # a dense model has none
    q = plans["truth-v034-h100f-q06b_e_unset"]
    assert mla_builder_workspace_bytes(q.model, q.engine, range(0, q.model.num_hidden_layers)) == 0
