"""The planner's verdicts and vLLM's own error texts, with hand-computed numbers."""

import math

import pytest

import vramplan
from vramplan.errors import InvalidConfig
from vramplan.engines.vllm.fixes import attach_fix
from vramplan.inputs.devices import get_device
from vramplan.units import GiB, format_gib

H100 = get_device("h100-80gb")


def test_free_memory_check_uses_total_times_util():
    # 20 GiB held by others + the 0.51 GiB CUDA context: free = 79.18 - 20 - 0.51 = 58.67 GiB;
    # requested = ceil(79.18 GiB x 0.92) = 72.85 GiB > free -> vLLM refuses to start.
    p = vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.26", used_by_others_gib=20)
    assert p.verdict == "fails" and p.error_kind == "free_memory_below_requested"
    requested = math.ceil(H100.total_bytes * 0.92)
    assert p.logged_rank.requested_bytes == requested
    assert p.error_message.startswith(
        f"Free memory on device cuda:0 (58.67/79.18 GiB) on startup is less than desired GPU memory "
        f"utilization (0.92, {format_gib(requested)} GiB). Decrease GPU memory utilization")


def test_fix_for_free_memory_lowers_util_to_what_is_free():
    import re

    p = attach_fix(vramplan.plan("Qwen/Qwen3-8B", used_by_others_gib=20, vllm_version="0.33"))
    # 0.33 (torch 2.14): 0.70 GiB in use at the snapshot (measured on 0.34, data/truth/logs/h100e), so
    # free = 79.18 - 20 - 0.70 = 58.48 GiB; the largest util with ceil(79.18 x util) <= 58.48 GiB is 0.73
    # (0.73 x 79.18 = 57.80; 0.74 x 79.18 = 58.59 > 58.48)
    assert "can be at most 0.73" in p.fix
    # the suggested value is at or below that bound, and the planner says it starts
    util = float(re.search(r"use --gpu-memory-utilization (0\.\d+)", p.fix).group(1))
    assert util <= 0.73
    assert vramplan.plan("Qwen/Qwen3-8B", used_by_others_gib=20, gpu_memory_utilization=util, vllm_version="0.33").starts


def test_no_memory_for_cache_blocks():
    # util 0.15 requests 11.88 GiB: less than the 15.27 GiB of Qwen3-8B weights alone
    p = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.15, vllm_version="0.33")
    assert p.error_kind == "no_kv_cache_memory"
    assert p.error_message.startswith("No available memory for the cache blocks. Try increasing "
                                      "`gpu_memory_utilization` when initializing the engine")


def test_max_model_len_check_quotes_the_needed_memory():
    # Qwen3-VL-2B: 28 layers x 2 x 8 kv heads x 128 x 2 bytes = 114,688 B/token;
    # its default max_model_len 262,144 needs exactly 28.0 GiB of KV cache.
    p = vramplan.plan("Qwen/Qwen3-VL-2B-Instruct", gpu_memory_utilization=0.36)
    assert p.error_kind == "max_model_len_exceeds_kv_cache"
    assert "max seq len (262144), (28.0 GiB KV cache is needed" in p.error_message
    assert p.estimated_max_model_len and p.estimated_max_model_len < 262144
    assert f"the estimated maximum model length is {p.estimated_max_model_len}." in p.error_message
    # the estimate is the longest length whose need fits: one block more would not
    need = lambda n: math.ceil(n / 16) * 16 * 114_688  # noqa: E731
    assert need(p.estimated_max_model_len) <= p.logged_rank.available_kv_bytes


def test_fixed_plan_starts():
    p = attach_fix(vramplan.plan("Qwen/Qwen3-VL-2B-Instruct", gpu_memory_utilization=0.36))
    assert p.fix
    assert "gpu-memory-utilization" in p.fix or "max-model-len" in p.fix


def test_tp_must_divide_heads_with_vllms_words():
    with pytest.raises(InvalidConfig, match=r"Total number of attention heads \(32\) must be divisible by "
                                            r"tensor parallel size \(3\)"):
        vramplan.plan("Qwen/Qwen3-8B", tensor_parallel_size=3)


def test_max_model_len_above_the_model_limit():
    with pytest.raises(InvalidConfig, match=r"User-specified max_model_len \(50000\) is greater than the derived "
                                            r"max_model_len \(max_position_embeddings=40960"):
        vramplan.plan("Qwen/Qwen3-8B", max_model_len=50000)


def test_allow_long_max_model_len_env():
    p = vramplan.plan("Qwen/Qwen3-8B", max_model_len=50000, env=(("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "1"),))
    assert p.max_model_len == 50000


def test_kv_cache_memory_bytes_bypasses_profiling():
    # 10 GiB / (36 layers x 2 x 8 x 128 x 2 x 16 = 2,359,296 B per block) = 4551 blocks
    p = vramplan.plan("Qwen/Qwen3-8B", kv_cache_memory_bytes=10 * GiB, max_model_len=4096, vllm_version="0.33")
    assert p.num_gpu_blocks == (10 * GiB) // 2_359_296 == 4551
    assert p.kv_cache_tokens == 4551 * 16


def test_kv_cache_memory_bytes_still_checks_free_memory():
    p = vramplan.plan("Qwen/Qwen3-8B", kv_cache_memory_bytes=10 * GiB, used_by_others_gib=30)
    assert p.error_kind == "free_memory_below_requested"


def test_num_gpu_blocks_override():
    p = vramplan.plan("Qwen/Qwen3-8B", num_gpu_blocks_override=1000, max_model_len=8192, vllm_version="0.33")
    assert p.num_gpu_blocks == 1000 and p.kv_cache_tokens == 16000


def test_auto_max_model_len_fits_the_cache():
    p = vramplan.plan("Qwen/Qwen3-8B", max_model_len=-1, gpu_memory_utilization=0.3, vllm_version="0.33")
    assert p.starts and p.engine.auto_max_model_len
    small = vramplan.plan("Qwen/Qwen3-8B", max_model_len=-1, gpu_memory_utilization=0.23, vllm_version="0.33")
    assert small.starts and small.max_model_len < 40960


def test_too_high_util_runs_out_of_memory_after_the_kv_cache():
    # util 0.99 leaves 0.79 GiB outside the budget, less the 0.51 GiB CUDA context: too little for CUDA graphs
    # and the warm-up that vLLM runs after allocating the KV cache
    p = attach_fix(vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.99, vllm_version="0.33"))
    assert p.error_kind == "out_of_memory" and "after the KV cache" in p.error_message
    assert p.num_gpu_blocks  # the KV cache itself was sized
    assert "lower --gpu-memory-utilization" in p.fix


def test_util_monotone_in_blocks():
    blocks = [vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=u, max_model_len=4096).num_gpu_blocks
              for u in (0.5, 0.6, 0.7, 0.8, 0.9)]
    assert blocks == sorted(blocks) and len(set(blocks)) == 5


def test_used_by_others_lowers_nothing_but_the_free_memory():
    a = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.5, max_model_len=4096)
    b = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.5, max_model_len=4096, used_by_others_gib=10)
    # util multiplies the total, so others do not change the KV budget while the check passes
    assert a.num_gpu_blocks == b.num_gpu_blocks


def test_versions_differ_where_vllm_changed():
    old = vramplan.plan("Qwen/Qwen3-30B-A3B", vllm_version="0.19.0", max_model_len=4096)
    new = vramplan.plan("Qwen/Qwen3-30B-A3B", vllm_version="0.26.0", max_model_len=4096)
    # v0.19 computes the CUDA-graph estimate but does not subtract it; v0.26 subtracts it
    assert old.logged_rank.bytes_of("cudagraph_estimate") == 0
    assert new.logged_rank.bytes_of("cudagraph_estimate") > 0
    assert old.engine.gpu_memory_utilization == 0.9 and new.engine.gpu_memory_utilization == 0.92


def test_estimate_env_var_is_honoured():
    on = vramplan.plan("Qwen/Qwen3-30B-A3B", vllm_version="0.26.0", max_model_len=4096)
    off = vramplan.plan("Qwen/Qwen3-30B-A3B", vllm_version="0.26.0", max_model_len=4096,
                        env=(("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "0"),))
    assert off.logged_rank.bytes_of("cudagraph_estimate") == 0
    assert off.num_gpu_blocks > on.num_gpu_blocks


def test_enforce_eager_has_no_graph_estimate():
    p = vramplan.plan("Qwen/Qwen3-30B-A3B", vllm_version="0.26.0", enforce_eager=True, max_model_len=4096)
    assert p.engine.cudagraph_mode == "NONE" and p.logged_rank.bytes_of("cudagraph_estimate") == 0


def test_unknown_version_is_refused():
    from vramplan.errors import UnsupportedError

    for version in ("0.5.0", "0.4.2"):  # older than every rule set
        with pytest.raises(UnsupportedError):
            vramplan.plan("Qwen/Qwen3-8B", vllm_version=version)


def test_ascend_requested_has_no_ceil_and_block_128():
    p = vramplan.plan("Qwen/Qwen3-8B", device="ascend-910b3", gpu_memory_utilization=0.95, max_model_len=4096)
    assert p.engine.block_size == 128
    assert p.logged_rank.requested_bytes == int(get_device("ascend-910b3").total_bytes * 0.95)
