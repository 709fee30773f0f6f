"""The V1-era rule sets older than v0.19: vLLM 0.10-0.16 on CUDA and vllm-ascend 0.9-0.13 on Ascend.

Expected values come from the logs of ../shared/data (numbers vLLM printed) and from hand arithmetic
on the configs, following the quoted vLLM / vllm-ascend source.
"""

import pytest

import vramplan
from vramplan.errors import UnsupportedError
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.units import GiB

NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"


def test_selection_is_per_platform():
    assert for_version("0.10.1").version == (0, 10, 1)
    assert for_version("0.12.0").version == (0, 10, 1)
    assert for_version("0.12.0", platform="ascend").non_kv_formula == "absolute_peak"
    assert for_version("0.9.0").non_kv_formula != "absolute_peak"  # the vllm-ascend rules are not CUDA's
    with pytest.raises(UnsupportedError):  # no vllm-ascend before 0.9
        for_version("0.8.0", platform="ascend")
    # vllm-ascend 0.14-0.18: on vLLM's memory_profiling, the v0.19 rules stand in
    assert for_version("0.15.0", platform="ascend").version == (0, 19, 0)
    # on Ascend, 0.10 is vllm-ascend's worker, not the CUDA 0.10 rules
    assert for_version("0.10.1", platform="ascend").non_kv_formula == "absolute_peak"
    assert not for_version("0.10.1", platform="ascend").sort_sampler


def test_gpt_oss_120b_h100_v0101_has_no_kv_memory():
    # logged (vLLM ~0.10.1, H100, default flags): "Model loading took 65.9651 GiB",
    # "Available KV cache memory: -2.14 GiB"; the sampler sorts 1024 x 201,088 float32 logits
    p = vramplan.plan("openai/gpt-oss-120b", device="h100-80gb", vllm_version="0.10.1")
    assert p.engine.max_num_seqs == 1024  # vLLM's H100 default for the API server
    assert p.verdict == "fails" and p.error_kind == "no_kv_cache_memory"
    assert abs(p.logged_rank.available_kv_bytes / GiB - (-2.14)) < 0.3
    # 1024 rows x 201,088 vocab x 38 bytes = 7.28 GiB at the sort
    assert p.logged_rank.bytes_of("activation_peak") >= 1024 * 201088 * 38


def test_flashinfer_sampler_env_shrinks_the_sort():
    plain = vramplan.plan("openai/gpt-oss-120b", device="h100-80gb", vllm_version="0.10.1")
    fi = vramplan.plan("openai/gpt-oss-120b", device="h100-80gb", vllm_version="0.10.1",
                       flags=["VLLM_USE_FLASHINFER_SAMPLER=1", "vllm", "serve", "openai/gpt-oss-120b"])
    saved = plain.logged_rank.bytes_of("activation_peak") - fi.logged_rank.bytes_of("activation_peak")
    assert saved == pytest.approx(1024 * 201088 * (38 - 14), rel=0.01)


def test_gpt_oss_120b_h100_v011_max_len_check():
    # logged (~v0.11.0, --max-num-batched-tokens 1024 --gpu-memory-utilization 0.95): KV 1.71 GiB, then the
    # max-model-len check refused the default 131,072 tokens
    p = vramplan.plan("openai/gpt-oss-120b", device="h100-80gb", vllm_version="0.11.0", max_num_batched_tokens=1024,
                      gpu_memory_utilization=0.95)
    assert p.error_kind == "max_model_len_exceeds_kv_cache"
    assert abs(p.logged_rank.available_kv_bytes / GiB - 1.71) < 0.3


def _next(util=0.85):
    return vramplan.plan(NEXT, device="ascend-910b3", vllm_version="0.12.0", tensor_parallel_size=4,
                         max_model_len=4096, gpu_memory_utilization=util)


def test_ascend_012_hybrid_block_and_pages_by_hand():
    p = _next()
    # mamba state per rank at TP4: conv (3 x 8192/4) bf16 = 12,288 B + temporal (8 x 128 x 128) bf16 = 262,144 B
    # = 274,432 B; attention per token: 2 x 1 KV head x 256 x 2 B = 1,024 B;
    # block = 128 x cdiv(274,432, 128 x 1,024) = 384; page = 384 x 1,024 = 393,216 B
    assert p.engine.block_size == 384
    layout = p.logged_rank.layout
    assert {g.spec.page_bytes for g in layout.groups} == {393216}
    assert len(layout.groups) == 4  # 12 attention layers + 36 linear-attention layers in groups of 12
    # logged form (vLLM 0.12 _report_kv_cache_config): tokens = blocks // 4 groups x 384;
    # concurrency = blocks / (cdiv(4096, 384) + 3 x 1)
    n = p.num_gpu_blocks
    assert p.kv_cache_tokens == n // 4 * 384
    assert p.max_concurrency == pytest.approx(n / 14)


def test_ascend_012_hybrid_allocation_runs_out_of_memory():
    # logged: 282,240 tokens (2,941 blocks), then the workers failed allocating the KV cache (out of memory)
    p = _next()
    assert p.verdict == "fails" and p.error_kind == "out_of_memory"
    assert "separate buffers" in p.error_message
    assert p.error_phase == "kv_allocation"  # the phase the log shows: initialize_from_config
    from vramplan.engines.vllm.fixes import attach_fix

    fix = attach_fix(p).fix
    assert fix.startswith("lower --gpu-memory-utilization to ") and "doubled KV allocation" in fix
    assert _next(float(fix.split()[3])).starts
    assert abs(p.num_gpu_blocks - 2941) / 2941 < 0.06


def test_ascend_012_budget_counts_all_non_torch_and_no_startup_check():
    busy = vramplan.plan("Qwen/Qwen3-8B", device="ascend-910b3", vllm_version="0.12.0", max_model_len=4096,
                         gpu_memory_utilization=0.95, used_by_others_gib=8.0)
    assert busy.error_kind != "free_memory_below_requested"
    base = vramplan.plan("Qwen/Qwen3-8B", device="ascend-910b3", vllm_version="0.12.0", max_model_len=4096,
                         gpu_memory_utilization=0.95)
    assert base.logged_rank.available_kv_bytes - busy.logged_rank.available_kv_bytes == int(8.0 * GiB)
    assert base.engine.block_size == 128


def test_ascend_09_qwen3_32b_tokens_near_logged():
    # logged (vllm-ascend 0.9.0rc2, 4 x 910B4, TP4, util 0.9): "GPU KV cache size: 159,232 tokens"
    p = vramplan.plan("Qwen/Qwen3-32B", device="ascend-910b4", vllm_version="0.9.0", tensor_parallel_size=4,
                      max_model_len=40960, gpu_memory_utilization=0.9)
    assert p.kv_cache_tokens % 128 == 0
    assert abs(p.kv_cache_tokens - 159232) / 159232 < 0.06
