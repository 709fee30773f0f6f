"""SGLang 0.5.17's CUDA-graph memory (engines/sglang/graphs.py) against hand calculations from the source's buffer
shapes and against the real startups' logged "Capture target ... CUDA graph end. ... mem usage=X GB" (SGLang's GB is
GiB: bytes / 2^30).

Hand calculations (sglang 0.5.17):
- graph_shared_output.py:GraphSharedOutput.get_logits_buffer: torch.zeros((max_rows, vocab), float) with max_rows the
  largest decode capture size: Qwen3-8B (vocab 151936), 256 rows: 256 x 151936 x 4 = 155,582,464 B;
- layers/attention/triton_backend.py:init_cuda_graph_state(max_bs=256, max_num_tokens=256), Qwen3-8B (32 heads,
  head_dim 128, --triton-attention-num-kv-splits 8, context 4096):
  attn_logits (256, 32, 8, 128) float32 = 33,554,432; attn_lse (256, 32, 8) float32 = 262,144;
  num_kv_splits (256,) int32 = 1,024; kv_indices (256 x 4096,) int64 = 8,388,608;
- DeepSeek-V2-Lite (MLA, 16 heads, kv_lora_rank 512) on an H100 (132 SMs), context 4096:
  _mla_decode_kv_splits_cap = max(8, min(next_pow2(132) = 256, next_pow2(ceil(4096 / 32)) = 128)) = 128;
  attn_logits (256, 16, 128, 512) float32 = 1,073,741,824 B;
- breakable_cuda_graph_backend.py:capture_one -> _alloc_full_buffer: (8192, 4096) bfloat16 = 67,108,864 B.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DATA
from tests.sglang_truth import case_flags

TRUTH = DATA / "truth_sglang"
CASES = [json.loads(line) for line in (TRUTH / "cases.jsonl").read_text().splitlines() if line.strip()]


def _model(name: str):
    from vramplan.resolve import load_model

    return load_model(name)


def _flags(case: dict) -> list[str]:
    return case_flags(case)


def _logged(text: str, phase: str) -> float | None:
    """This test's own reading of SGLang's line."""
    m = re.search(rf"Capture target {phase} CUDA graph end\. elapsed=[\d.]+ s, mem usage=(\d+\.\d+) GB", text)
    return float(m.group(1)) if m else None


def test_triton_decode_state_by_hand():
    from vramplan.engines.sglang.graphs import logits_buffer, triton_decode_state

    m = _model("Qwen/Qwen3-8B")
    parts = dict(triton_decode_state(m, max_bs=256, context_length=4096, tp=1, sm_count=132))
    assert list(parts.values()) == [33_554_432, 262_144, 1_024, 8_388_608]
    assert logits_buffer(m, 256)[1] == 155_582_464


def test_mla_split_cap_by_hand():
    from vramplan.engines.sglang.graphs import triton_decode_state, triton_max_kv_splits

    m = _model("deepseek-ai/DeepSeek-V2-Lite")
    assert triton_max_kv_splits(m, context_length=4096, sm_count=132) == 128
    assert triton_max_kv_splits(m, context_length=65536, sm_count=132) == 256  # the SM cap
    assert triton_max_kv_splits(m, context_length=64, sm_count=132) == 8  # never below the flag's 8
    assert triton_decode_state(m, max_bs=256, context_length=4096, tp=1, sm_count=132)[0][1] == 1_073_741_824


@pytest.mark.parametrize("case", [c for c in CASES if c["status"] == "ok" or "frac097" in c["id"]],
                         ids=lambda c: c["id"].rsplit("-", 1)[-1])
def test_graph_terms_against_the_logs(case):
    """Each captured phase within 0.18 GiB of its logged mem usage (worst seen: Qwen3-30B-A3B prefill, -0.17: a MoE
    layer's graphs hold more than the median per-(layer x size) residual), both together within 0.10 GiB (worst
    seen: DeepSeek-V2-Lite, -0.09), and a phase not captured is not priced."""
    from vramplan.engines import sglang

    text = (TRUTH / case["source"]["log"]).read_text(errors="replace")
    p = sglang.plan(case["model_src"], device="h100-80gb", sglang_version=case["engine_version"], flags=_flags(case))
    terms = {t.key: t.bytes / float(1 << 30) for t in p.headroom_terms}
    for phase, key in (("prefill", "cudagraph_prefill"), ("decode", "cudagraph_decode")):
        logged = _logged(text, phase)
        if logged is None:
            assert key not in terms
        else:
            assert terms[key] == pytest.approx(logged, abs=0.18), (phase, terms[key], logged)
    total = sum(_logged(text, ph) or 0.0 for ph in ("prefill", "decode"))
    assert terms.get("cudagraph_prefill", 0) + terms.get("cudagraph_decode", 0) == pytest.approx(total, abs=0.10)


def test_the_logits_buffer_goes_to_whichever_phase_asks_first():
    """Prefill on: the prefill capture allocates the [256, vocab] float32 buffer (q8b_default: decode 0.26 GB);
    prefill off (q8b_frac097_fail, the free-memory gate): the decode capture does (0.41 GB): 0.145 GiB apart."""
    from vramplan.engines import sglang

    on = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb", sglang_version="0.5.17",
                     flags=["--attention-backend", "triton", "--context-length", "4096"])
    off = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb", sglang_version="0.5.17",
                      flags=["--attention-backend", "triton", "--context-length", "4096",
                             "--cuda-graph-backend-prefill", "disabled"])
    dec_on = on.bytes_of("cudagraph_decode")
    dec_off = off.bytes_of("cudagraph_decode")
    assert dec_off - dec_on == 155_582_464
    assert off.bytes_of("cudagraph_prefill") == 0


def test_verdicts_of_the_tight_runs():
    """q8b_frac0995 dies in the decode capture (the 150 MiB logits buffer did not fit); q8b_frac097_fail starts."""
    from vramplan.engines import sglang

    by = {c["id"].rsplit("-", 1)[-1]: c for c in CASES}
    p = sglang.plan(by["q8b_frac0995"]["model_src"], device="h100-80gb", sglang_version="0.5.17",
                    flags=_flags(by["q8b_frac0995"]))
    assert (p.verdict, p.error_kind, p.error_phase) == ("fails", "out_of_memory", "graph_capture")
    p = sglang.plan(by["q8b_frac097_fail"]["model_src"], device="h100-80gb", sglang_version="0.5.17",
                    flags=_flags(by["q8b_frac097_fail"]))
    assert p.error_phase != "graph_capture"


def test_0523_keeps_the_stand_ins():
    from vramplan.engines import sglang

    p = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb", sglang_version="0.5.23", flags=["--context-length", "4096"])
    rules = [t.rule for t in p.headroom_terms if t.key.startswith("cudagraph_")]
    assert rules and all("vLLM" in r for r in rules)


@settings(max_examples=30, deadline=None)
@given(bs=st.sampled_from([1, 8, 64, 256, 512]), ctx=st.sampled_from([512, 4096, 32768]),
       tp=st.sampled_from([1, 2, 4, 8]))
def test_triton_state_scales_with_its_shapes(bs, ctx, tp):
    """Each buffer is linear in its own dimensions (the shapes written out in the module docstring)."""
    from vramplan.engines.sglang.graphs import triton_decode_state

    m = _model("Qwen/Qwen3-8B")
    heads = 32 // tp
    got = [b for _, b in triton_decode_state(m, max_bs=bs, context_length=ctx, tp=tp, sm_count=132)]
    assert got == [bs * heads * 8 * 128 * 4, bs * heads * 8 * 4, bs * 4, bs * ctx * 8]


@pytest.mark.parametrize("case", [c for c in CASES if c["status"] == "ok" or "frac097" in c["id"]],
                         ids=lambda c: c["id"].rsplit("-", 1)[-1])
def test_what_is_spent_after_the_pool(case):
    """Logged "Memory pool end. avail mem" less the scheduler's ``available_gpu_mem`` (graphs and workspaces) against
    the plan's workspace and graph terms: within 0.05 GiB on the dense runs, 0.21 on MoE / MLA (worst seen:
    DeepSeek-V2-Lite fp8 KV, -0.20)."""
    from vramplan.engines import sglang

    text = (TRUTH / case["source"]["log"]).read_text(errors="replace")
    pool_end = float(re.search(r"Memory pool end\. avail mem=(\d+\.\d+) GB", text).group(1))
    available = float(re.search(r"available_gpu_mem=(\d+\.\d+) GB", text).group(1))
    p = sglang.plan(case["model_src"], device="h100-80gb", sglang_version=case["engine_version"], flags=_flags(case))
    spent = sum(p.bytes_of(k) for k in ("non_torch_increase", "cudagraph_decode", "cudagraph_prefill")) / (1 << 30)
    tol = 0.21 if (p.model.moe is not None or p.model.uses_mla) else 0.05
    assert spent == pytest.approx(pool_end - available, abs=tol)
