"""After the KV cache (issue 11.4): CUDA-graph capture and the warm-up in the room the KV cache left.

Expected values come from the real vLLM 0.26 startups on one H100 in data/truth/logs/h100h (what vLLM logged and what
the allocator probe recorded), from vLLM's source (its exact error text, its capture-size override for gpt-oss) and
from hand arithmetic on the configs; never from the planner itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import vramplan
from vramplan.engines.vllm.fixes import attach_fix
from vramplan.units import GiB

LOGS = Path(__file__).resolve().parents[2] / "data" / "truth" / "logs" / "h100h"
SERVE = dict(max_num_seqs=1024, max_num_batched_tokens=8192, max_model_len=8192)  # the plan lines of the runs
V1 = ("VLLM_USE_V2_MODEL_RUNNER", "0")
V2 = ("VLLM_USE_V2_MODEL_RUNNER", "1")
EXP = ("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def _plan(model: str, util: float, *env, version: str = "0.26.0", **kw):
    return vramplan.plan(model, device="h100-80gb", vllm_version=version, gpu_memory_utilization=util,
                         env=tuple(env), **{**SERVE, **kw})


def _terms(p) -> dict[str, int]:
    return {t.key: t.bytes for t in p.headroom_terms}


def _logged(name: str) -> str:
    return (LOGS / f"{name}.log").read_text(errors="replace")


def test_the_room_left_is_the_sum_of_its_terms():
    h = _terms(_plan("Qwen/Qwen3-8B", 0.95))
    assert h["headroom_left"] == (h["outside_budget"] + h["profile_room_returned"] - h["runner_state"]
                                  - h["allocator_unusable"] - h["cudagraph_actual"] - h["sampler_warmup"])
    assert h["headroom_left_worst"] < h["headroom_left"]


def test_v2_penalty_state_is_outside_the_budget_in_0_26_only():
    # vllm/v1/worker/gpu/sample/penalties.py: output_bin_counts (1024 x 151936 int32) + prompt_bin_mask
    # (1024 x ceil(151936/32) int32) = 641,777,664 B; from 0.27 the budget's total-consumed counts it
    pen = 1024 * 151936 * 4 + 1024 * 4748 * 4
    old = _terms(_plan("Qwen/Qwen3-8B", 0.9))["runner_state"]
    new = _terms(_plan("Qwen/Qwen3-8B", 0.9, version="0.33.0"))["runner_state"]
    assert old - new == pen


def test_sampler_warm_up_grows_with_requests_and_vocab():
    small = _terms(_plan("Qwen/Qwen3-8B", 0.9, V1, max_num_seqs=256))["sampler_warmup"]
    big = _terms(_plan("Qwen/Qwen3-8B", 0.9, V1))["sampler_warmup"]
    assert big == pytest.approx(4 * small, rel=1e-6)
    # the allocator probe logged the V1 warm-up peak 2.04 GiB above what was allocated before it (Qwen3-8B)
    assert big / GiB == pytest.approx(2.04, abs=0.05)


def test_expandable_segments_strand_less_memory():
    a = _terms(_plan("Qwen/Qwen3-8B", 0.95))
    b = _terms(_plan("Qwen/Qwen3-8B", 0.95, EXP))
    assert b["allocator_unusable"] < a["allocator_unusable"]
    assert b["headroom_left"] > a["headroom_left"]


@pytest.mark.parametrize("name,util,env", [("q8b_g_gmu095", 0.95, ()), ("q8b_g_gmu096", 0.96, ()),
                                           ("q8b_g_gmu097", 0.97, ()), ("q8b_g_v1_gmu097", 0.97, (V1,)),
                                           ("q8b_g_v1_gmu098", 0.98, (V1,)), ("gptoss_g_v1_gmu095", 0.95, (V1,)),
                                           ("gptoss_g_v2_gmu095", 0.95, (V2,))])
def test_startups_that_started_are_planned_to_start(name, util, env):
    assert "RESULT {" in _logged(name)  # vLLM started and generated
    model = "openai/gpt-oss-20b" if name.startswith("gptoss") else "Qwen/Qwen3-8B"
    assert _plan(model, util, *env).verdict == "starts"


def test_dense_v2_at_0_98_fails_in_the_warm_up_as_logged():
    log = _logged("q8b_g_gmu098")
    assert "TRUTH_ALLOC warmup_kernels_v2 raised" in log and "torch.OutOfMemoryError: CUDA out of memory" in log
    p = _plan("Qwen/Qwen3-8B", 0.98)
    assert (p.verdict, p.error_kind, p.error_phase) == ("fails", "out_of_memory", "warmup")
    assert p.num_gpu_blocks  # the KV cache itself was sized (vLLM logged "GPU KV cache size")
    assert "lower --gpu-memory-utilization to 0.97" in attach_fix(p).fix


def test_dense_v2_at_0_99_fails_in_graph_capture_as_logged():
    assert "TRUTH_ALLOC capture_v2 raised" in _logged("q8b_g_gmu099")
    p = _plan("Qwen/Qwen3-8B", 0.99)
    assert (p.error_kind, p.error_phase) == ("out_of_memory", "graph_capture")
    assert "after the KV cache" in p.error_message


def test_v1_sampler_failure_speaks_vllms_words():
    # vLLM v0.26.0 GPUModelRunner._dummy_sampler_run, as logged by gptoss_g_v1_gmu098
    said = ("RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests. Please try "
            "lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.")
    assert said in _logged("gptoss_g_v1_gmu098")
    p = _plan("openai/gpt-oss-20b", 0.99, V1)
    assert p.error_phase == "warmup" and p.error_message.startswith(said)


def test_tight_startups_warn():
    # gpt-oss-20b on the V2 runner at 0.97 died in graph capture (data/truth/logs/h100h/gptoss_g_v2_gmu097): the
    # median case fits, the worst measured case does not, and the plan says so
    assert "TRUTH_ALLOC capture_v2 raised" in _logged("gptoss_g_v2_gmu097")
    p = _plan("openai/gpt-oss-20b", 0.97, V2)
    assert any(w.startswith("tight:") for w in p.warnings)


def test_gpt_oss_captures_up_to_1024_tokens():
    # "Profiling CUDA graph memory: PIECEWISE=83 (largest=1024)" (gptoss_g_v1_gmu095); Qwen3-8B at the same flags
    # "PIECEWISE=51 (largest=512)" (q8b_g_v1_gmu097): [1, 2, 4] + 8..248 by 8 + 256..max by 16
    assert "PIECEWISE=83 (largest=1024)" in _logged("gptoss_g_v1_gmu095")
    assert "PIECEWISE=51 (largest=512)" in _logged("q8b_g_v1_gmu097")
    sizes = _plan("openai/gpt-oss-20b", 0.9, V1).engine.capture_sizes
    assert len(sizes) == 83 and max(sizes) == 1024
    assert len(_plan("Qwen/Qwen3-8B", 0.9, V1).engine.capture_sizes) == 51
    # a size the user gives wins (vllm/model_executor/models/config.py only overrides when none is set)
    assert max(_plan("openai/gpt-oss-20b", 0.9, V1, max_cudagraph_capture_size=512).engine.capture_sizes) == 512


def test_gpt_oss_capture_override_by_release():
    from vramplan.model.families.gpt_oss import gpt_oss_capture_override as o
    # v0.11.0: "Increase the max capture size from 512 to 992 ... from 67 to 81"
    assert len(o((0, 11, 0), device_capability=(9, 0), max_num_batched_tokens=8192, num_speculative_tokens=0,
                 user_set=False)["cudagraph_capture_sizes"]) == 81
    assert o((0, 26, 0), device_capability=(9, 0), max_num_batched_tokens=8192, num_speculative_tokens=0,
             user_set=False) == {"max_cudagraph_capture_size": 1024}
    new = o((0, 34, 0), device_capability=(9, 0), max_num_batched_tokens=512, num_speculative_tokens=0,
            user_set=False)
    assert max(new["prefill_cudagraph_capture_token_sizes"]) == 512
    assert new["max_decode_cudagraph_capture_requests"] == 1024
    assert o((0, 34, 0), device_capability=(10, 0), max_num_batched_tokens=8192, num_speculative_tokens=0,
             user_set=False) is None  # SM100 keeps its wider defaults
    assert o((0, 26, 0), device_capability=(9, 0), max_num_batched_tokens=8192, num_speculative_tokens=0,
             user_set=True) is None


def test_json_keeps_the_old_headroom_keys_and_adds_the_new():
    from vramplan.render.json import plan_to_dict as plan_dict
    d = json.loads(json.dumps(plan_dict(_plan("Qwen/Qwen3-8B", 0.95))))
    assert {"outside_budget", "cudagraph_actual", "sampler_warmup", "headroom_left"} <= set(d["headroom_gib"])
    assert {"profile_room_returned", "runner_state", "allocator_unusable", "headroom_left_worst"} <= set(
        d["headroom_gib"])


def test_v034_warm_up_commit_and_startup_peak_match_the_watched_startup():
    # data/watch/vllm-0.34-qwen3-8b-h100: "Committed 1025 of 7044 KV cache blocks (9.07 GiB physical)" during
    # warmup_kernels, and NVML read 26.98 GiB at its peak (README there); vllm serve defaults, max-model-len 8192
    log = (Path(__file__).resolve().parents[2] / "data" / "watch" / "vllm-0.34-qwen3-8b-h100" / "output.log")
    assert "Committed 1025 of 7044 KV cache blocks (9.07 GiB physical)" in log.read_text(errors="replace")
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", vllm_version="0.34.0", max_model_len=8192)
    h = _terms(p)
    assert round(h["warmup_kv_commit"] / GiB, 2) == 9.07
    assert abs(h["startup_peak"] / GiB - 26.98) < 0.25
    # and fit's process figure never sits below the startup's own peak
    from vramplan.fit import _process_bytes
    small = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", vllm_version="0.34.0", max_model_len=8192,
                          gpu_memory_utilization=0.3)
    assert _process_bytes(small) >= _terms(small)["startup_peak"]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(util=st.floats(min_value=0.80, max_value=0.985), step=st.floats(min_value=0.002, max_value=0.05),
       model=st.sampled_from(["Qwen/Qwen3-8B", "openai/gpt-oss-20b", "Qwen/Qwen3-0.6B"]),
       runner=st.sampled_from(["0", "1"]), exp=st.booleans())
def test_more_util_never_leaves_more_room_after_the_kv_cache(util, step, model, runner, exp):
    env = (("VLLM_USE_V2_MODEL_RUNNER", runner),) + ((EXP,) if exp else ())
    lo = _plan(model, round(util, 3), *env)
    hi = _plan(model, round(min(util + step, 0.99), 3), *env)
    if not (lo.headroom_terms and hi.headroom_terms):
        return
    assert _terms(hi)["headroom_left"] <= _terms(lo)["headroom_left"] + 2**20
    if not lo.starts and lo.error_phase in ("graph_capture", "warmup"):
        assert not hi.starts  # a post-KV failure does not go away with more util
