"""The V0 engine of vLLM 0.6 (rule set v0_6): version selection, defaults, the budget and its errors.

Expected values come from vLLM 0.6.4.post1's source (quoted rules) and from the two RTX 3090 logs of
../shared/data (Llama-3.1-8B-Instruct, vLLM ~0.6.3-0.6.4), never from the code under test.
"""

import json

import pytest

import vramplan
from tests.conftest import run_cli
from vramplan.errors import UnsupportedError
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.units import GiB, MiB

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _plan(max_len, **kw):
    return vramplan.plan(LLAMA, device="rtx-3090", vllm_version="0.6.4", max_model_len=max_len, **kw)


def test_version_selection():
    assert for_version("0.6.4").engine == "v0"
    assert for_version("0.6.0").engine == "v0" and not for_version("0.6.0").stand_in
    assert for_version("0.19.1").engine == "v1"
    # 0.6.5 rewrote the profiler; 0.8 made V1 the default; 0.17 brought the Triton sampler: releases between
    # the spans are planned by a neighbour with the same engine and sampler, marked as a stand-in
    assert for_version("0.6.5").engine == "v0" and for_version("0.6.5").stand_in
    assert for_version("0.8.5").version == (0, 10, 1) and for_version("0.8.5").stand_in
    assert for_version("0.18.0").version == (0, 19, 0) and for_version("0.18.0").stand_in
    assert for_version("0.16.0").version == (0, 10, 1) and not for_version("0.16.0").stand_in
    with pytest.raises(UnsupportedError):
        for_version("0.5.0")


def test_stand_in_is_said_in_the_plan():
    p = vramplan.plan(LLAMA, device="rtx-3090", vllm_version="0.7.3", max_model_len=8192)
    assert p.warnings[0].startswith("vLLM 0.7.3 has no rule set of its own: planned with the v0.6.4 rules")


def test_scheduler_defaults_follow_v06():
    # vllm/config.py:SchedulerConfig: max(max_model_len, 2048) without chunked prefill; 512 with it;
    # vllm/engine/arg_utils.py: chunked prefill turns on by itself only past 32768 tokens
    assert _plan(20000).engine.max_num_batched_tokens == 20000
    assert _plan(1024).engine.max_num_batched_tokens == 2048
    long = _plan(35000)
    assert long.engine.enable_chunked_prefill and long.engine.max_num_batched_tokens == 512
    assert _plan(20000).engine.max_num_seqs == 256
    assert _plan(20000).engine.block_size == 16


def test_block_bytes_by_hand():
    # Llama-3.1-8B: 32 layers x 2 (K, V) x 8 KV heads x 128 x 2 bytes x 16 tokens = 2 MiB a block
    p = _plan(20000)
    assert p.logged_rank.layout.bytes_per_block == 32 * 2 * 8 * 128 * 2 * 16 == 2 * MiB
    # the CPU blocks vLLM logs: swap_space 4 GiB // 2 MiB = 2048, as both logs say
    assert "# CPU blocks: 2048" in "\n".join(p.log_lines)


def test_budget_is_util_times_total_minus_absolute_peak():
    p = _plan(20000)
    r = p.logged_rank
    total = p.device.total_bytes
    non_kv = r.bytes_of("weights") + r.bytes_of("activation_peak") + r.bytes_of("non_torch")
    assert r.available_kv_bytes == int(total * 0.9) - non_kv
    assert p.num_gpu_blocks == r.available_kv_bytes // (2 * MiB)
    assert p.kv_cache_tokens == p.num_gpu_blocks * 16


def test_logged_rtx3090_verdicts():
    # data: 20,000 tokens started (3.81 GiB KV); 29,000 failed with V0's own words (23,648 tokens fit)
    ok = _plan(20000)
    assert ok.starts
    fail = _plan(29000)
    assert fail.verdict == "fails" and fail.error_kind == "max_model_len_exceeds_kv_cache"
    assert fail.error_phase == "kv_sizing"
    assert fail.error_message.startswith(
        "The model's max seq len (29000) is larger than the maximum number of tokens that can be stored in KV cache (")
    assert fail.estimated_max_model_len is not None and fail.estimated_max_model_len < 29000
    # the logged figures the plan is checked against (README accuracy): KV 3.81 GiB and 2.89 GiB
    assert abs(ok.logged_rank.available_kv_bytes / GiB - 3.81) < 0.25
    assert abs(fail.logged_rank.available_kv_bytes / GiB - 2.89) < 0.3


def test_no_startup_check_other_programs_shrink_kv():
    # V0 has no free-memory check: memory held by others is counted in non_torch_memory
    base = _plan(20000)
    busy = _plan(20000, used_by_others_gib=2.0)
    assert busy.error_kind != "free_memory_below_requested"
    assert base.logged_rank.available_kv_bytes - busy.logged_rank.available_kv_bytes == int(2.0 * GiB)


def test_no_blocks_error_text():
    p = _plan(4096, gpu_memory_utilization=0.6)
    assert p.error_kind == "no_kv_cache_memory"
    assert p.error_message == ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
                               "when initializing the engine.")


def test_fix_for_v0_failure_starts():
    from vramplan.engines.vllm.fixes import attach_fix

    p = attach_fix(_plan(29000))
    assert p.fix and p.fix.startswith("raise --gpu-memory-utilization to ")
    util = float(p.fix.split()[3])
    assert _plan(29000, gpu_memory_utilization=util).starts
    assert not _plan(29000, gpu_memory_utilization=round(util - 0.01, 2)).starts


@pytest.mark.parametrize("model", ["deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-Next-80B-A3B-Instruct"])
def test_cli_refuses_what_v0_did_not_have(model):
    code, out, err = run_cli("plan", model, "--vllm-version", "0.6.4", "--device", "h100-80gb")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err


def test_cli_v0_json():
    code, out, err = run_cli("plan", LLAMA, "--device", "rtx-3090", "--vllm-version", "0.6.4", "--max-model-len",
                             "29000", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["verdict"] == "fails" and obj["error_kind"] == "max_model_len_exceeds_kv_cache"
    assert obj["block_size"] == 16 and obj["memory_gib"]["cudagraph_estimate"] == 0.0


def test_knobs_and_fit_speak_v0():
    from vramplan.api import load_model, resolve_device
    from vramplan.fit import Workload, fit, knobs
    from vramplan.engines.vllm.flags import EngineArgs

    model, dev, rules = load_model(LLAMA), resolve_device("rtx-3090"), for_version("0.6.4")
    base, ks = knobs(model, dev, rules, EngineArgs(max_model_len=29000))
    names = {k.name for k in ks}
    # halving max-num-batched-tokens below max_model_len is refused by V0's scheduler check: no knob
    assert "max-num-batched-tokens" not in names and "CUDA-graph capture sizes" not in names
    chunked = next(k for k in ks if k.name == "enable-chunked-prefill")
    assert chunked.freed_bytes > 2 * GiB  # a 29,000-token profile batch becomes 512 tokens
    res = fit(model, dev, rules, EngineArgs(), Workload(concurrency=2, context=16384))
    assert res.kv_cache_memory_bytes is None  # V0 has no --kv-cache-memory-bytes


def test_flags_arrive_with_their_release():
    with pytest.raises(UnsupportedError):
        vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.13.0", max_model_len=-1)
    assert vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.14.0", max_model_len=-1).engine.auto_max_model_len
    with pytest.raises(UnsupportedError):
        vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.10.1", kv_cache_memory_bytes=8 * GiB)
    assert vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.11.0", kv_cache_memory_bytes=8 * GiB).starts
