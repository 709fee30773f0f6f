"""Tests for vramplan.engines.vllm.rules.engine_defaults.

Every expected value below is worked out by hand from the vLLM source (the arithmetic is in the
comment next to it); see docs/vllm-rules.md for the source reading.
"""

from __future__ import annotations

import pytest

from vramplan.errors import FlagError, UnsupportedError
from vramplan.engines.vllm.rules import engine_defaults as ed
from vramplan.units import GiB, MiB

V19, V20, V26, V28, V33 = (0, 19, 0), (0, 20, 0), (0, 26, 0), (0, 28, 0), (0, 33, 0)

H100 = dict(device_total_bytes=81559 * MiB, device_name="NVIDIA H100 80GB HBM3", platform="cuda")  # 79.6 GiB
A100 = dict(device_total_bytes=81920 * MiB, device_name="NVIDIA A100-SXM4-80GB", platform="cuda")  # 80 GiB
L4 = dict(device_total_bytes=23034 * MiB, device_name="NVIDIA L4", platform="cuda")  # 22.5 GiB
MI300X = dict(device_total_bytes=192 * GiB, device_name="AMD Instinct MI300X", platform="rocm")
ASCEND_910B = dict(device_total_bytes=64 * GiB, device_name="Ascend910B4", platform="ascend")


def limits(version, dev, **kw):
    base = dict(usage_context="serve", enable_chunked_prefill=True, max_model_len=40960)
    base.update(kw)
    return ed.default_batch_limits(version, **dev, **base)


# ----------------------------------------------------------------------------- 1. batch defaults

@pytest.mark.parametrize("version", [V19, V26, V33])
def test_h100_serve(version):
    # H100 80GB: 79.6 GiB >= 70 GiB and no "a100" -> serve 8192 / 1024 in all three versions;
    # min(1024 * 40960, 8192) = 8192; max_num_seqs = min(1024, 8192) = 1024
    assert limits(version, H100) == (8192, 1024)


@pytest.mark.parametrize("version", [V19, V26, V33])
def test_h100_llm_class(version):
    # LLM class: 16384 / 1024
    assert limits(version, H100, usage_context="llm") == (16384, 1024)


@pytest.mark.parametrize("version", [V19, V26, V33])
def test_a100_80gb_is_small_tier(version):
    # "a100" in the name -> small tier despite 80 GiB: serve 2048 / 256
    assert limits(version, A100) == (2048, 256)
    assert limits(version, A100, usage_context="llm") == (8192, 256)


def test_l4_serve():
    # 22.5 GiB < 70 GiB -> 2048 / 256
    assert limits(V26, L4) == (2048, 256)


@pytest.mark.parametrize("version", [V19, V26, V33])
def test_ascend_always_small_tier(version):
    # vllm-ascend get_device_total_memory raises NotImplementedError -> memory 0 -> 2048 / 256
    assert limits(version, ASCEND_910B) == (2048, 256)


def test_mi300x_tiers():
    # 192 GiB: v0.19/v0.26 ">= 70 GiB" tier -> 8192 / 1024; v0.28+ ">= 160 GiB" -> 16384 / 1024
    assert limits(V19, MI300X) == (8192, 1024)
    assert limits(V26, MI300X) == (8192, 1024)
    assert limits(V28, MI300X) == (16384, 1024)
    assert limits(V33, MI300X) == (16384, 1024)


def test_gb10_small_tier_only_in_v033():
    # DGX Spark GB10: cc (12, 1), 119 GiB shared memory; v0.33 keeps it small: 2048 / 256;
    # v0.26 has no GB10 check: 119 GiB >= 70 -> 8192 / 1024
    gb10 = dict(device_total_bytes=119 * GiB, device_name="NVIDIA GB10", platform="cuda")
    assert limits(V33, gb10, device_capability=(12, 1)) == (2048, 256)
    assert limits(V26, gb10, device_capability=(12, 1)) == (8192, 1024)


def test_engine_context_fallback():
    # UsageContext.ENGINE_CONTEXT is not in the tables: 2048 / 128
    assert limits(V26, H100, usage_context="engine") == (2048, 128)


def test_small_max_model_len_caps_mnbt():
    # L4 serve, max_num_seqs=4 (user), max_model_len=256: min(4 * 256, 2048) = 1024
    assert limits(V26, L4, max_model_len=256, max_num_seqs=4) == (1024, 4)


def test_chunked_prefill_off_raises_mnbt_to_max_model_len():
    # H100 serve, no chunked prefill, max_model_len 32768: max(32768, 8192) = 32768;
    # min(1024 * 32768, 32768) = 32768; max_num_seqs = min(1024, 32768) = 1024
    assert limits(V26, H100, enable_chunked_prefill=False, max_model_len=32768) == (32768, 1024)


def test_throughput_mode_doubles_both():
    # H100 serve throughput: 8192 * 2 = 16384, 1024 * 2 = 2048
    assert limits(V26, H100, performance_mode="throughput") == (16384, 2048)


def test_user_mnbt_limits_default_mns():
    # user mnbt 512 (kept), default mns 1024 -> min(1024, 512) = 512
    assert limits(V26, H100, max_num_batched_tokens=512) == (512, 512)


def test_batched_dp_moe():
    # v0.20+: batched DP MoE -> 256, then max_num_seqs = min(1024, 256) = 256; v0.19 has no such rule
    assert limits(V26, H100, use_batched_dp_moe=True) == (256, 256)
    assert limits(V19, H100, use_batched_dp_moe=True) == (8192, 1024)


def test_prefix_lm_floor_v022_plus():
    # L4 serve 2048; a prefix-LM MM model with 2496-token items raises it to 2496 (v0.22+)
    assert limits(V26, L4, mm_prefix_lm_min_tokens=2496)[0] == 2496
    assert limits(V19, L4, mm_prefix_lm_min_tokens=2496)[0] == 2048


def test_cpu_table_scales_with_world_size():
    # CPU serve: 2048 * 2 = 4096 tokens, 128 * 2 = 256 seqs
    cpu = dict(device_total_bytes=0, device_name="", platform="cpu")
    assert limits(V26, cpu, world_size=2) == (4096, 256)


def test_wrappers():
    assert ed.default_max_num_batched_tokens(V26, usage_context="serve", enable_chunked_prefill=True,
                                             max_model_len=4096, **H100) == 8192
    assert ed.default_max_num_seqs(V26, usage_context="serve", enable_chunked_prefill=True,
                                   max_model_len=4096, **L4) == 256


def test_validate_scheduler_messages():
    with pytest.raises(FlagError) as e:
        ed.validate_scheduler(V26, max_num_batched_tokens=2048, max_num_seqs=256, max_model_len=4096,
                              enable_chunked_prefill=False)
    assert e.value.message == (
        "max_num_batched_tokens (2048) is smaller than max_model_len (4096). This effectively limits "
        "the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences. "
        "Please increase max_num_batched_tokens or decrease max_model_len."
    )
    with pytest.raises(FlagError) as e:
        ed.validate_scheduler(V26, max_num_batched_tokens=100, max_num_seqs=256, max_model_len=64,
                              enable_chunked_prefill=True)
    assert e.value.message == "max_num_batched_tokens (100) must be greater than or equal to max_num_seqs (256)."


# ----------------------------------------------------------------------------- 2. utilization

def test_gpu_memory_utilization_default():
    # CacheConfig default: 0.9 in v0.19.0 (and 0.19.1), 0.92 from v0.20.0
    assert ed.default_gpu_memory_utilization(V19, "cuda") == 0.9
    assert ed.default_gpu_memory_utilization((0, 19, 1), "cuda") == 0.9
    assert ed.default_gpu_memory_utilization(V20, "cuda") == 0.92
    assert ed.default_gpu_memory_utilization(V26, "rocm") == 0.92
    assert ed.default_gpu_memory_utilization(V33, "ascend") == 0.92


# ----------------------------------------------------------------------------- 3. block size

def test_block_size_cuda_defaults():
    # FlashAttention MultipleOf(16) accepts 16 -> 16; FlashInfer [16, 32, 64] -> 16
    assert ed.default_block_size(V26, "cuda", device_capability=(9, 0)) == 16
    assert ed.default_block_size(V26, "cuda", device_capability=(10, 0)) == 16


def test_block_size_mla_backends():
    # FlashMLA [64] -> 64; CUTLASS MLA [128] -> 128; FlashInfer MLA [32, 64] -> 32; Triton MLA -> 16
    assert ed.default_block_size(V26, "cuda", use_mla=True, mla_backend="FLASHMLA") == 64
    assert ed.default_block_size(V26, "cuda", use_mla=True, mla_backend="CUTLASS_MLA") == 128
    assert ed.default_block_size(V26, "cuda", use_mla=True, mla_backend="FLASHINFER_MLA") == 32
    assert ed.default_block_size(V26, "cuda", use_mla=True, mla_backend="TRITON_MLA") == 16
    # default MLA backend: Hopper -> FLASH_ATTN_MLA (16), Blackwell -> FLASHINFER_MLA (32)
    assert ed.default_block_size(V26, "cuda", use_mla=True, device_capability=(9, 0)) == 16
    assert ed.default_block_size(V26, "cuda", use_mla=True, device_capability=(10, 0)) == 32


def test_block_size_user_kept_on_cuda_overridden_on_ascend():
    assert ed.default_block_size(V26, "cuda", user_block_size=32) == 32
    # vllm-ascend refresh_block_size: != 128 and chunked prefill on -> 128
    assert ed.default_block_size(V26, "ascend", user_block_size=32) == 128
    assert ed.default_block_size(V26, "ascend") == 128
    # neither prefix caching nor chunked prefill: upstream default 16 stays
    assert ed.default_block_size(V26, "ascend", enable_prefix_caching=False, enable_chunked_prefill=False) == 16


def test_block_size_rocm_and_xpu():
    assert ed.default_block_size(V26, "rocm") == 16  # ROCM_ATTN MultipleOf(16)
    assert ed.default_block_size(V26, "rocm", attention_backend="ROCM_AITER_UNIFIED_ATTN") == 64
    assert ed.default_block_size(V19, "xpu") == 16  # v0.19 FA has no XPU override
    assert ed.default_block_size(V26, "xpu") == 64  # v0.26: max(16, 64)


def test_qwen3_next_hybrid_block_544():
    # Qwen3-Next-80B-A3B, TP=1, bf16: GDN conv (3, 8192) -> 3*8192*2 = 49152 B,
    # temporal (32, 128, 128) -> 32*128*128*2 = 1048576 B; mamba page 1097728 B.
    # attention: 2 KV heads x (256 + 256) x 2 B = 2048 B/token.
    # block = 16 * cdiv(1097728, 16 * 2048) = 16 * cdiv(1097728, 32768) = 16 * 34 = 544
    # padded mamba page = 544 * 2048 = 1114112
    for v in (V19, V26):
        assert ed.hybrid_attention_block_size(
            v, block_size=16, attn_page_bytes_per_token=2048, mamba_page_bytes=1097728,
        ) == (544, 1114112)


def test_hybrid_block_v033_flashinfer_gdn_checkpoints():
    # v0.33, prefix caching on -> mode align; Hopper FlashInfer GDN prefill -> checkpoint alignment 64:
    # align = lcm(16, 64) = 64; block = 64 * cdiv(1097728, 64 * 2048) = 64 * 9 = 576
    assert ed.hybrid_attention_block_size(
        V33, block_size=16, attn_page_bytes_per_token=2048, mamba_page_bytes=1097728,
        mamba_cache_mode="align", prefill_checkpoint_alignment=64,
    ) == (576, 576 * 2048)


def test_hybrid_block_ascend():
    # vllm-ascend: 128 * cdiv(ssm 1048576, 128 * K 1024) = 128 * 8 = 1024 tokens (1024*1024 == ssm, ok);
    # mamba page padded = attention page 1024 * 2048 + conv 49152 = 2146304
    assert ed.hybrid_attention_block_size(
        V26, platform="ascend", block_size=128, attn_page_bytes_per_token=2048, mamba_page_bytes=1097728,
        ssm_page_bytes=1048576, conv_page_bytes=49152, attn_k_bytes_per_token=1024,
    ) == (1024, 2146304)


def test_gdn_state_shapes_tp2():
    # conv_dim = 128*16*2 + 128*32 = 8192; TP=2 -> conv (3, 4096), temporal (16, 128, 128)
    assert ed.gated_delta_net_state_shapes(
        tp=2, num_k_heads=16, num_v_heads=32, head_k_dim=128, head_v_dim=128, conv_kernel_size=4,
    ) == ((3, 4096), (16, 128, 128))


# ----------------------------------------------------------------------------- 4. CUDA graphs

def _expected_sizes(max_cap):
    out = [i for i in (1, 2, 4) if i <= max_cap]
    out += list(range(8, min(max_cap + 1, 256), 8))
    out += list(range(256, max_cap + 1, 16))
    return out


def test_capture_sizes_h100_serve_default():
    # mns 1024: max = min(1024 * 1 * 2, 512) = 512; min(8192, 512) = 512
    # [1, 2, 4] + 8..248 (31 sizes) + 256..512 step 16 (17 sizes) = 51 sizes
    for v in (V19, V26):
        sizes = ed.cudagraph_capture_sizes(v, max_num_seqs=1024, max_num_batched_tokens=8192)
        assert len(sizes) == 51 and sizes[-1] == 512 and sizes == _expected_sizes(512)
    # v0.33 on Hopper: 1024 <= 512 is false -> no uniform-decode extra; still 51
    assert len(ed.cudagraph_capture_sizes(V33, max_num_seqs=1024, max_num_batched_tokens=8192,
                                          device_capability=(9, 0))) == 51


def test_capture_sizes_blackwell_v028_plus():
    # sm100 family, v0.28+: max = min(1024 * 2, 1024) = 1024 -> 3 + 31 + (256..1024 step 16: 49) = 83;
    # v0.33 adds max_num_seqs=1024 (already present)
    sizes = ed.cudagraph_capture_sizes(V33, max_num_seqs=1024, max_num_batched_tokens=16384,
                                       device_capability=(10, 0))
    assert len(sizes) == 83 and sizes[-1] == 1024
    assert ed.cudagraph_capture_sizes(V26, max_num_seqs=1024, max_num_batched_tokens=16384,
                                      device_capability=(10, 0))[-1] == 512


def test_capture_sizes_mnbt_appended_from_v021():
    # mns 256, mnbt 300: max = min(512, 512) -> min(300, 512) = 300
    # sizes: 1,2,4, 8..248 (31), 256..300 step 16 -> 256, 272, 288 ; v0.21+ appends 300
    v19 = ed.cudagraph_capture_sizes(V19, max_num_seqs=256, max_num_batched_tokens=300)
    v26 = ed.cudagraph_capture_sizes(V26, max_num_seqs=256, max_num_batched_tokens=300)
    assert v19[-3:] == [256, 272, 288] and 300 not in v19
    assert v26[-1] == 300 and len(v26) == len(v19) + 1


def test_capture_sizes_v033_appends_max_num_seqs():
    # mns 100: max = min(200, 512) = 200; sizes 1,2,4, 8..200 step 8; 100 is not a multiple of 8;
    # v0.33 (uniform decode) adds 100
    v26 = ed.cudagraph_capture_sizes(V26, max_num_seqs=100, max_num_batched_tokens=2048)
    v33 = ed.cudagraph_capture_sizes(V33, max_num_seqs=100, max_num_batched_tokens=2048)
    assert 100 not in v26 and 100 in v33 and len(v33) == len(v26) + 1


def test_capture_sizes_spec_decode_rounding_v1():
    # k = 1 (q = 2), mns 4: max = min(4 * 2 * 2, 512) = 16; base [1, 2, 4, 8, 16]
    # v0.26 V1 with FULL decode: round up to multiples of 2 and <= 16 -> [2, 4, 8, 16]
    assert ed.cudagraph_capture_sizes(V26, max_num_seqs=4, max_num_batched_tokens=2048,
                                      num_speculative_tokens=1) == [2, 4, 8, 16]
    # V2 runner in v0.26 keeps them
    assert ed.cudagraph_capture_sizes(V26, max_num_seqs=4, max_num_batched_tokens=2048,
                                      num_speculative_tokens=1, runner="v2") == [1, 2, 4, 8, 16]


def test_capture_sizes_sequence_parallel_filter():
    # tp 4 with SP (v0.19/v0.26): keep multiples of 4 -> drops 1 and 2
    sizes = ed.cudagraph_capture_sizes(V26, max_num_seqs=1024, max_num_batched_tokens=8192,
                                       tp_size=4, enable_sp=True)
    assert sizes[:3] == [4, 8, 16] and len(sizes) == 49


def test_capture_sizes_interactivity():
    # mns 8: max = 16; interactivity 1..16 + range(8, 17, 8) -> 1..16 (16 sizes)
    assert ed.cudagraph_capture_sizes(V26, max_num_seqs=8, max_num_batched_tokens=2048,
                                      performance_mode="interactivity") == list(range(1, 17))


def test_capture_sizes_eager_and_ascend():
    assert ed.cudagraph_capture_sizes(V26, max_num_seqs=256, max_num_batched_tokens=2048, enforce_eager=True) == []
    # Ascend: max = min(256 * 1, 512) = 256 (no x2) -> 3 + 31 + [256] = 35 sizes
    asc = ed.cudagraph_capture_sizes(V26, max_num_seqs=256, max_num_batched_tokens=2048, platform="ascend")
    assert asc[-1] == 256 and len(asc) == 35


def test_graph_counts():
    # mns 256, mnbt 2048: max 512 -> 51 sizes; FULL decode graphs for sizes <= 256 -> 3 + 31 + 1 = 35
    sizes = ed.cudagraph_capture_sizes(V26, max_num_seqs=256, max_num_batched_tokens=2048)
    assert ed.cudagraph_graph_counts(sizes, cudagraph_mode="FULL_AND_PIECEWISE", max_num_seqs=256) == {
        "PIECEWISE": 51, "FULL": 35}
    assert ed.cudagraph_graph_counts(sizes, cudagraph_mode="PIECEWISE", max_num_seqs=256) == {"PIECEWISE": 51}
    assert ed.cudagraph_graph_counts(sizes, cudagraph_mode="NONE", max_num_seqs=256) == {}


def test_default_cudagraph_mode():
    assert ed.default_cudagraph_mode(V26) == "FULL_AND_PIECEWISE"
    assert ed.default_cudagraph_mode(V19, enforce_eager=True) == "NONE"
    assert ed.default_cudagraph_mode(V26, optimization_level=1) == "PIECEWISE"
    assert ed.default_cudagraph_mode(V26, is_pooling=True) == "PIECEWISE"
    assert ed.default_cudagraph_mode(V26, is_encoder_decoder=True) == "FULL_DECODE_ONLY"
    # spec decode with a backend below UNIFORM_BATCH (e.g. Triton MLA) -> PIECEWISE
    assert ed.default_cudagraph_mode(V26, attention_cg_support="UNIFORM_SINGLE_TOKEN_DECODE",
                                     num_speculative_tokens=2) == "PIECEWISE"
    assert ed.default_cudagraph_mode(V26, platform="cpu") == "NONE"


def test_estimate_env_default():
    # v0.19: "0"; v0.20+: "1"
    assert ed.estimate_cudagraphs_enabled(V19, {}) is False
    assert ed.estimate_cudagraphs_enabled((0, 19, 1), {}) is False
    assert ed.estimate_cudagraphs_enabled(V20, {}) is True
    assert ed.estimate_cudagraphs_enabled(V33, {}) is True
    assert ed.estimate_cudagraphs_enabled(V19, {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "1"}) is True
    assert ed.estimate_cudagraphs_enabled(V26, {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "0"}) is False
    with pytest.raises(FlagError):
        ed.estimate_cudagraphs_enabled(V26, {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "true"})


def test_estimate_runs():
    kw = dict(cudagraph_mode="FULL_AND_PIECEWISE")
    assert ed.cudagraph_estimate_runs(V19, platform="cuda", runner="v1", **kw)
    assert not ed.cudagraph_estimate_runs(V19, platform="rocm", runner="v1", **kw)
    assert ed.cudagraph_estimate_runs(V26, platform="rocm", runner="v1", **kw)
    assert not ed.cudagraph_estimate_runs(V26, platform="cuda", runner="v2", **kw)  # V2 returns 0
    assert ed.cudagraph_estimate_runs(V33, platform="cuda", runner="v2", **kw)
    assert not ed.cudagraph_estimate_runs(V33, platform="ascend", runner="v1", **kw)
    assert not ed.cudagraph_estimate_runs(V33, platform="cuda", runner="v1", cudagraph_mode="NONE")


# ----------------------------------------------------------------------------- 5. runner

def runner(version, arch, *, moe=False, hybrid=False, mm=False, pooling=False, env=None, **kw):
    return ed.uses_v2_model_runner(version, architecture=arch, is_moe=moe, is_hybrid=hybrid, is_multimodal=mm,
                                   is_pooling=pooling, env=env or {}, **kw)


def test_runner_v019_always_v1_unless_env():
    assert runner(V19, "Qwen3ForCausalLM") is False
    assert runner(V19, "Qwen3ForCausalLM", env={"VLLM_USE_V2_MODEL_RUNNER": "1"}) is True


def test_runner_v026_rules():
    assert runner(V26, "Qwen3ForCausalLM") is True  # dense generate
    assert runner(V26, "Qwen2_5_VLForConditionalGeneration", mm=True) is True  # dense VLM -> V2
    assert runner(V26, "Qwen3VLMoeForConditionalGeneration", moe=True, mm=True) is False  # MoE not listed
    assert runner(V26, "Qwen2MoeForCausalLM", moe=True) is True  # listed MoE
    assert runner(V26, "Qwen3NextForCausalLM", moe=True, hybrid=True) is False
    assert runner(V26, "Qwen3ForCausalLM", pooling=True) is False
    assert runner(V26, "Qwen3ForCausalLM", env={"VLLM_USE_V2_MODEL_RUNNER": "0"}) is False
    assert runner(V26, "Qwen3ForCausalLM", unsupported_features=("prompt embeds",)) is False


def test_runner_intermediate_versions():
    assert runner((0, 22, 0), "Qwen3ForCausalLM") is True
    assert runner((0, 22, 0), "LlamaForCausalLM") is False
    assert runner((0, 23, 0), "LlamaForCausalLM") is True
    assert runner((0, 23, 0), "LlamaForCausalLM", is_quantized=True) is False


def test_runner_v033_everything():
    assert runner(V33, "Qwen3NextForCausalLM", moe=True, hybrid=True) is True
    assert runner(V33, "BertModel", pooling=True) is True
    assert runner(V33, "Qwen3ForCausalLM", platform="ascend") is False


def test_prefix_caching_and_mamba_mode_defaults():
    assert ed.default_enable_prefix_caching(V26, is_hybrid=True) is False
    assert ed.default_enable_prefix_caching(V28, is_hybrid=True) is True
    assert ed.default_enable_prefix_caching(V19, is_hybrid=False) is True
    assert ed.default_mamba_cache_mode(V26, enable_prefix_caching=False) == "none"
    assert ed.default_mamba_cache_mode(V26, enable_prefix_caching=True, supports_mamba_prefix_caching=True) == "all"
    assert ed.default_mamba_cache_mode(V33, enable_prefix_caching=True, supports_mamba_prefix_caching=True) == "align"


# ----------------------------------------------------------------------------- 6. max_model_len

QWEN3_8B = {"model_type": "qwen3", "max_position_embeddings": 40960, "rope_theta": 1000000, "rope_scaling": None}
QWEN3_YARN = {**QWEN3_8B, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
LLAMA31 = {"model_type": "llama", "max_position_embeddings": 131072, "rope_theta": 500000.0,
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}}
PHI3_128K = {"model_type": "phi3", "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
             "rope_scaling": {"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]}}


def test_derived_plain():
    # factor 1.0 from the default RoPE entry -> 40960 * 1.0 = 40960.0 (float, as vLLM prints it)
    assert ed.derived_max_model_len_and_key(V26, QWEN3_8B) == (40960.0, "max_position_embeddings")
    assert ed.derived_max_model_len(V26, QWEN3_8B) == 40960


def test_derived_yarn_changed_in_v030():
    # v0.19/v0.26: yarn -> original 32768 * factor 4 = 131072; v0.30+: yarn takes no factor -> 40960
    assert ed.derived_max_model_len(V19, QWEN3_YARN) == 131072
    assert ed.derived_max_model_len(V26, QWEN3_YARN) == 131072
    assert ed.derived_max_model_len(V33, QWEN3_YARN) == 40960


def test_derived_llama3_and_longrope():
    # llama3 and longrope take no factor: 131072
    assert ed.derived_max_model_len(V26, LLAMA31) == 131072
    assert ed.derived_max_model_len(V26, PHI3_128K) == 131072
    # LongRoPE default uses original_max_position_embeddings 4096
    assert ed.default_max_model_len(V26, PHI3_128K) == 4096


def test_derived_dynamic_factor_and_gemma3():
    cfg = {"model_type": "llama", "max_position_embeddings": 4096, "rope_scaling": {"type": "dynamic", "factor": 2.0}}
    assert ed.derived_max_model_len(V26, cfg) == 8192  # 4096 * 2
    g3 = {"model_type": "gemma3_text", "max_position_embeddings": 131072,
          "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
    assert ed.derived_max_model_len(V26, g3) == 131072  # Gemma 3 skips the factor


def test_derived_smallest_key_and_model_max_length():
    cfg = {"n_positions": 1024, "max_position_embeddings": 2048}
    assert ed.derived_max_model_len_and_key(V26, cfg) == (1024, "n_positions")
    cohere = {"max_position_embeddings": 8192, "model_max_length": 131072}
    assert ed.derived_max_model_len_and_key(V26, cohere) == (131072, "model_max_length")
    assert ed.derived_max_model_len(V26, {}) == 2048


def test_disable_sliding_window_caps():
    mistral = {"max_position_embeddings": 32768, "sliding_window": 4096}
    assert ed.derived_max_model_len_and_key(V26, mistral, disable_sliding_window=True) == (4096, "sliding_window")


def test_verify_max_model_len():
    assert ed.verify_max_model_len(V26, None, 40960.0, {}) == 40960
    assert ed.verify_max_model_len(V26, -1, 40960.0, {}) == 40960
    assert ed.verify_max_model_len(V26, 32768, 40960.0, {}) == 32768
    with pytest.raises(FlagError) as e:
        ed.verify_max_model_len(V26, 65536, 40960.0, {})
    assert e.value.message == (
        "User-specified max_model_len (65536) is greater than the derived max_model_len "
        "(max_position_embeddings=40960.0 or model_max_length=None in model's config.json). "
        "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses relative "
        "position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model "
        "uses absolute position encoding, positions exceeding derived_max_model_len will cause a CUDA "
        "array out-of-bounds error."
    )
    assert ed.verify_max_model_len(V26, 65536, 40960.0, {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "true"}) == 65536
    assert ed.verify_max_model_len(V26, 65536, 40960.0, {}, model_max_length=131072) == 65536


# ----------------------------------------------------------------------------- 7. parallel

def test_heads_not_divisible():
    with pytest.raises(FlagError) as e:
        ed.validate_parallel(V26, num_attention_heads=40, num_kv_heads=8, vocab_size=151936, tp=3)
    assert e.value.message == "Total number of attention heads (40) must be divisible by tensor parallel size (3)."


def test_qwen3_14b_tp5_fails_on_vocab():
    # 40 heads % 5 == 0 passes the config check; vocab 151936 (already a multiple of 64) % 5 != 0 ->
    # AssertionError "151936 is not divisible by 5" while building the embedding
    with pytest.raises(FlagError) as e:
        ed.validate_parallel(V26, num_attention_heads=40, num_kv_heads=8, vocab_size=151936, tp=5)
    assert e.value.message == "151936 is not divisible by 5"


def test_kv_head_divisibility():
    # 8 KV heads, tp 16: replicate, 16 % 8 == 0 -> fine; tp 12: "12 is not divisible by 8"
    ed.validate_parallel(V26, num_attention_heads=64, num_kv_heads=8, vocab_size=128256, tp=16)
    with pytest.raises(FlagError) as e:
        ed.validate_parallel(V26, num_attention_heads=96, num_kv_heads=8, vocab_size=128256, tp=12)
    assert e.value.message == "12 is not divisible by 8"
    # MLA skips the KV-head rule
    ed.validate_parallel(V26, num_attention_heads=128, num_kv_heads=128, vocab_size=129280, tp=8, use_mla=True)


def test_pp_unsupported_and_world_size():
    with pytest.raises(FlagError) as e:
        ed.validate_parallel(V26, num_attention_heads=32, num_kv_heads=8, vocab_size=32000, tp=1, pp=2,
                             supports_pp=False)
    assert "Supported models implement the `SupportsPP` interface." in e.value.message
    with pytest.raises(FlagError) as e:
        ed.validate_parallel(V33, num_attention_heads=32, num_kv_heads=8, vocab_size=32000, tp=8,
                             available_devices=4)
    assert e.value.message.startswith("World size (8) is larger than the number of available GPUs (4) in this node.")


def test_pp_layer_split():
    # 30 layers, pp 4: 7 each, remainder 2 -> stages -2 and -3 get +1 -> [7, 8, 8, 7]
    assert ed.pp_layer_split(30, 4) == [(0, 7), (7, 15), (15, 23), (23, 30)]
    # 36 / 2 = 18 each
    assert ed.pp_layer_split(36, 2) == [(0, 18), (18, 36)]
    assert ed.pp_layer_split(32, 2, "20,12") == [(0, 20), (20, 32)]
    with pytest.raises(FlagError) as e:
        ed.pp_layer_split(32, 2, "20,10")
    assert e.value.message == "sum(partitions)=30 does not match num_hidden_layers=32."
    with pytest.raises(FlagError) as e:
        ed.pp_layer_split(32, 2, "8,8,16")
    assert e.value.message == "len(partitions)=3 does not match pp_size=2."
    with pytest.raises(FlagError) as e:
        ed.pp_layer_split(32, 2, "a,b")
    assert e.value.message == "Invalid partition string: a,b"


# ----------------------------------------------------------------------------- 8. dtypes

def test_resolve_dtype():
    assert ed.resolve_dtype(V26, "bfloat16", "cuda", "NVIDIA H100 80GB HBM3", "qwen3") == "bfloat16"
    # float32 config -> preferred (first supported) = bfloat16 on Ampere+
    assert ed.resolve_dtype(V26, "float32", "cuda", "NVIDIA A100-SXM4-80GB", "llama") == "bfloat16"
    # float16 config on a bf16 device stays float16 (it is supported)
    assert ed.resolve_dtype(V26, "float16", "cuda", "NVIDIA L4", "llama") == "float16"
    # Gemma 2 in float16: fp16 removed from the list -> falls back to bfloat16
    assert ed.resolve_dtype(V26, "float16", "cuda", "NVIDIA L4", "gemma2") == "bfloat16"
    # V100 (cc 7.0): bf16 config not supported -> float16
    assert ed.resolve_dtype(V26, "bfloat16", "cuda", "Tesla V100-SXM2-32GB", "llama") == "float16"
    # pooling models prefer float16 for a float32 config
    assert ed.resolve_dtype(V26, "float32", "cuda", "NVIDIA H100", "bert", is_pooling=True) == "float16"
    # no dtype in the config -> treated as float32 -> bfloat16
    assert ed.resolve_dtype(V26, None, "ascend", "Ascend910B4", "qwen3") == "bfloat16"
    # plamo2: no float16 up to v0.26, allowed from v0.27
    assert ed.resolve_dtype(V26, "float16", "cuda", "NVIDIA H100", "plamo2") == "bfloat16"
    assert ed.resolve_dtype(V33, "float16", "cuda", "NVIDIA H100", "plamo2") == "float16"


def test_resolve_dtype_errors():
    with pytest.raises(FlagError) as e:
        ed.resolve_dtype(V26, "bfloat16", "cuda", "NVIDIA H100", "gemma3", requested="half")
    assert e.value.message == ("The model type 'gemma3' does not support float16. Reason: Numerical instability. "
                               "Please use bfloat16 or float32 instead.")
    with pytest.raises(FlagError) as e:
        ed.resolve_dtype(V26, "bfloat16", "cuda", "NVIDIA H100", "llama", requested="fp8")
    assert e.value.message == "Unknown dtype: 'fp8'"


def test_kv_cache_dtypes():
    assert ed.kv_cache_dtype_bytes("auto", "bfloat16") == 2
    assert ed.kv_cache_dtype_bytes("auto", "float32") == 4
    assert ed.kv_cache_dtype_bytes("fp8", "bfloat16") == 1
    assert ed.kv_cache_dtype_bytes("fp8_e5m2", "bfloat16") == 1
    assert ed.kv_cache_dtype_bytes("int4_per_token_head", "bfloat16") == 0.5
    assert ed.kv_cache_dtype_bytes("nvfp4", "bfloat16") == 9 / 16  # 128/2 + 128/16 = 72 B per 128 elements
    with pytest.raises(UnsupportedError):
        ed.kv_cache_dtype_bytes("turboquant_k8v4", "bfloat16")
    assert "nvfp4" not in ed.valid_kv_cache_dtypes(V19)
    assert "nvfp4" in ed.valid_kv_cache_dtypes(V26)
    assert "nvfp4_4over6" in ed.valid_kv_cache_dtypes(V33)


def test_resolve_kv_cache_dtype_modelopt():
    qc = {"quant_method": "modelopt", "quantization": {"kv_cache_quant_algo": "FP8"}}
    assert ed.resolve_kv_cache_dtype(V26, "auto", qc) == "fp8_e4m3"
    assert ed.resolve_kv_cache_dtype(V26, "auto", {"quant_method": "fp8"}) == "auto"
    assert ed.resolve_kv_cache_dtype(V26, "fp8", qc) == "fp8"
    nv = {"quant_method": "modelopt", "kv_cache_scheme": {"num_bits": 4, "type": "float"}}
    assert ed.resolve_kv_cache_dtype(V26, "auto", nv) == "nvfp4"
    assert ed.resolve_kv_cache_dtype(V19, "auto", nv) == "auto"
    with pytest.raises(FlagError):
        ed.resolve_kv_cache_dtype(V19, "nvfp4")


# ----------------------------------------------------------------------------- 9. KV blocks

def test_sliding_window_blocks():
    # gpt-oss SW 128, mnbt 8192, bs 16, max_model_len 131072:
    # v0.19: min(127 + 8192, 131072) = 8319 -> cdiv(8319, 16) + 1 = 520 + 1 = 521
    assert ed.sliding_window_blocks_per_request(V19, sliding_window=128, max_model_len=131072, block_size=16,
                                                max_num_batched_tokens=8192, max_concurrent_batches=2) == 521
    # v0.26, V1 runner + async scheduling, pp 1 -> 2 batches: min(127 + 16384, .) = 16511 -> 1032 + 1 = 1033
    mcb = ed.max_concurrent_batches(V26, pp=1, async_scheduling=True, v2_runner=False)
    assert mcb == 2
    assert ed.sliding_window_blocks_per_request(V26, sliding_window=128, max_model_len=131072, block_size=16,
                                                max_num_batched_tokens=8192, max_concurrent_batches=mcb) == 1033
    assert ed.max_concurrent_batches(V33, pp=2, async_scheduling=True, v2_runner=True) == 3
    assert ed.max_concurrent_batches(V33, pp=2, async_scheduling=True, v2_runner=False) == 2


def test_chunked_local_and_mamba_blocks():
    # Llama 4 chunk 8192, mnbt 8192, bs 16: min(16384, 131072) / 16 = 1024
    assert ed.chunked_local_blocks_per_request(V19, attention_chunk_size=8192, max_model_len=131072,
                                               block_size=16, max_num_batched_tokens=8192) == 1024
    assert ed.mamba_blocks_per_request(V26, mamba_cache_mode="none") == 1
    assert ed.mamba_blocks_per_request(V26, mamba_cache_mode="align", num_speculative_blocks=2) == 4
    assert ed.mamba_blocks_per_request(V33, mamba_cache_mode="align", num_prefill_checkpoint_blocks=1) == 3
    assert ed.mamba_blocks_per_request(V19, mamba_cache_mode="all", max_model_len=4096, block_size=512,
                                       num_speculative_blocks=1) == 8
    assert ed.mamba_blocks_per_request(V26, mamba_cache_mode="all", max_model_len=4096, block_size=512,
                                       num_speculative_blocks=1) == 9
    with pytest.raises(FlagError):
        ed.mamba_blocks_per_request(V33, mamba_cache_mode="all", max_model_len=4096, block_size=512)


def test_kv_capacity():
    # dense model, 10000 blocks of 16, max_model_len 32768 -> 2048 blocks per request
    # concurrency 10000 / 2048 = 4.8828125; v0.26 tokens int(4.8828125 * 32768) = 160000;
    # v0.19 tokens 10000 // 1 * 16 = 160000 (same for one group)
    assert ed.kv_cache_capacity(V26, num_blocks=10000, blocks_per_request=[2048], max_model_len=32768,
                                min_block_size=16) == (160000, 4.8828125)
    # hybrid, 3 groups (1 full: 2048 blocks, 2 SW: 9 blocks each), 10000 blocks:
    # v0.19: 10000 // 3 * 16 = 53328 tokens; v0.26: 10000 * 32768 / 2066 = 327680000 / 2066 = 158606.0019
    # (2066 * 158606 = 327679996) -> 158606
    t19, c19 = ed.kv_cache_capacity(V19, num_blocks=10000, blocks_per_request=[2048, 9, 9], max_model_len=32768,
                                    min_block_size=16)
    t26, _ = ed.kv_cache_capacity(V26, num_blocks=10000, blocks_per_request=[2048, 9, 9], max_model_len=32768,
                                  min_block_size=16)
    assert t19 == 53328 and t26 == 158606 and c19 == pytest.approx(10000 / 2066)


def test_vocab_padded():
    assert ed.vocab_padded(151936) == 151936  # 2374 * 64
    assert ed.vocab_padded(32000) == 32000
    assert ed.vocab_padded(128257) == 128320  # cdiv(128257, 64) = 2005 -> 2005 * 64


def test_kv_error_messages():
    # needed 8 GiB, available 4 GiB, estimate 16384
    v19 = ed.not_enough_kv_cache_message(V19, max_model_len=32768, needed_bytes=8 * GiB,
                                         available_bytes=4 * GiB, estimated_max_len=16384)
    assert v19 == (
        "To serve at least one request with the models's max seq len (32768), (8.0 GiB KV cache is needed, "
        "which is larger than the available KV cache memory (4.0 GiB). Based on the available memory, the "
        "estimated maximum model length is 16384. Try increasing `gpu_memory_utilization` or decreasing "
        "`max_model_len` when initializing the engine. See "
        "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    )
    v26 = ed.not_enough_kv_cache_message(V26, max_model_len=32768, needed_bytes=8 * GiB,
                                         available_bytes=4 * GiB, estimated_max_len=0)
    assert v26 == (
        "To serve at least one request with the model's max seq len (32768), (8.0 GiB KV cache is needed, "
        "which is larger than the available KV cache memory (4.0 GiB). Try increasing "
        "`gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing "
        "`max_model_len` when initializing the engine. See "
        "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    )
    assert "despite its name" in ed.no_kv_cache_memory_message(V33)
    assert "despite its name" not in ed.no_kv_cache_memory_message(V19)


def test_api_server_context_is_not_serve():
    # UsageContext.API_SERVER (the old demo server) is not in the tables -> 2048 / 128
    assert limits(V26, H100, usage_context="api_server") == (2048, 128)
