"""DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5 / 5.1 / 5.2 / 5-FP8): KV bytes and weights per rank against
hand calculations from each config, and plans on 8 x H200.

Read from source only (vLLM v0.34.0, see vramplan/model/families/deepseek_v32.py); no real startup yet.
"""

import pytest

from vramplan.api import load_model, plan
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import build_layout, layer_specs, needed_bytes
from vramplan.rules.weights import weights_per_rank


def cdiv(a, b):
    return -(-a // b)


def kv_layout(model_id, *, kv_cache_dtype="auto", block_size=64, tp=8):
    m = load_model(model_id)
    specs = layer_specs(m, tp=tp, block_size=block_size, kv_cache_dtype=kv_cache_dtype, model_dtype="bfloat16")
    return m, build_layout(specs)


# --------------------------------------------------------------------------------------------- KV cache

def test_v32_kv_bytes_bf16():
    # DeepSeek-V3.2: kv_lora_rank 512 + qk_rope_head_dim 64 = 576 latent values, bf16: 1152 bytes per token;
    # indexer: index_head_dim 128 fp8 + 128 // 128 x 4 scale bytes = 132 bytes per token (uint8)
    # per layer and token 1152 + 132 = 1284; 61 layers (MTP layer 61 not built) -> 78,324 bytes per token
    m, lay = kv_layout("deepseek-ai/DeepSeek-V3.2")
    # vLLM: one uniform-type group of 122 cache layers (61 MLA + 61 indexer); here each layer carries both pages
    assert len(lay.groups) == 1 and lay.group_size == 61
    assert lay.bytes_per_block == 61 * 64 * (1152 + 132) == 5_012_736
    # one 32768-token request: cdiv(32768, 64) = 512 blocks
    assert needed_bytes(lay, max_model_len=32768, max_in_flight_tokens=8192) == 512 * 5_012_736
    spec = lay.groups[0].spec
    assert spec.indexer_page_bytes == 64 * 132 == 8448


def test_v32_kv_bytes_fp8_ds_mla():
    # fp8_ds_mla record: 512 fp8 NoPE + 4 float32 scales (16 B) + 64 bf16 RoPE (128 B) = 656 bytes per token
    # + indexer 132 -> 788 bytes per token and layer; a 64-token block of 61 layers = 61 x 64 x 788
    _, lay = kv_layout("deepseek-ai/DeepSeek-V3.2", kv_cache_dtype="fp8_ds_mla")
    assert lay.bytes_per_block == 61 * 64 * 788 == 3_076_352
    # the latent is not split by TP: the same bytes at TP 1
    _, lay1 = kv_layout("deepseek-ai/DeepSeek-V3.2", kv_cache_dtype="fp8_ds_mla", tp=1)
    assert lay1.bytes_per_block == lay.bytes_per_block


@pytest.mark.parametrize("model_id", ["zai-org/GLM-5", "zai-org/GLM-5.1", "zai-org/GLM-5-FP8"])
def test_glm5_kv_bytes(model_id):
    # GLM-5: 78 layers, kv_lora 512 + rope 64 = 576 (bf16 1152 B), indexer head 128 -> 132 B, every layer indexed
    _, lay = kv_layout(model_id)
    assert lay.bytes_per_block == 78 * 64 * (1152 + 132) == 6_409_728


def test_glm52_shared_indexer_layers_have_no_indexer_cache():
    # GLM-5.2 indexer_types: layers 0, 1, 2 and then every 4th from 6 to 74 are "full": 3 + 18 = 21 indexers;
    # the 57 "shared" layers reuse the previous top-k (compute_skip_topk_layers) and hold only the MLA latent
    m, lay = kv_layout("zai-org/GLM-5.2", kv_cache_dtype="fp8_ds_mla")
    full = [i for i, t in enumerate(m.hf_config["indexer_types"]) if t == "full"]
    assert full == [0, 1, 2] + list(range(6, 78, 4)) and len(full) == 21
    assert lay.bytes_per_block == 78 * 64 * 656 + 21 * 64 * 132 == 3_452_160
    # still one uniform-type group (same block size, both MLA specs): pages summed
    assert len(lay.groups) == 1 and lay.uniform_type


# --------------------------------------------------------------------------------------------- weights

def fp8(out_f, in_f):
    """one block-fp8 linear on a rank: fp8 weight + float32 weight_scale_inv per 128 x 128 block"""
    return out_f * in_f + cdiv(out_f, 128) * cdiv(in_f, 128) * 4


def test_v32_weights_tp8_by_hand():
    # DeepSeek-V3.2, FP8 128x128 blocks, bf16 elsewhere, TP 8 (128 heads -> 16 per rank), 8192 batched tokens
    h, heads, tp = 7168, 128, 8
    hr = heads // tp
    attn = (
        fp8(1536 + 512 + 64, h)                # fused_qkv_a_proj (q_a_proj + kv_a_proj_with_mqa), replicated
        + (1536 + 512) * 2                     # q_a_layernorm, kv_a_layernorm
        + fp8(hr * (128 + 64), 1536)           # q_b_proj, column
        + fp8(hr * (128 + 128), 512)           # kv_b_proj, column
        + hr * (128 + 128) * 512 * 2           # W_UK_T + W_UV, bf16 copies of kv_b_proj (per rank heads)
        + fp8(h, hr * 128)                     # o_proj, row
        + fp8(64 * 128, 1536)                  # indexer.wq_b, replicated, quantized
        + (128 + 64) * h * 2                   # indexer.wk_weights_proj (wk + weights_proj), bf16, replicated
        + 2 * 128 * 4                          # indexer.k_norm weight + bias, float32
        + 2 * h * 2                            # input / post-attention RMSNorm
    )
    dense_mlp = fp8(2 * 18432 // tp, h) + fp8(h, 18432 // tp)
    moe = (
        256 * h * 2 + 256 * 4                  # router (bf16) + e_score_correction_bias (float32)
        + 256 * fp8(2 * 2048 // tp, h)         # w13 per expert, intermediate split by TP
        + 256 * fp8(h, 2048 // tp)             # w2
        + fp8(2 * 2048 // tp, h) + fp8(h, 2048 // tp)  # one shared expert (MLP, TP-split)
    )
    layers = 3 * (attn + dense_mlp) + 58 * (attn + moe)
    vocab_rows = 129280 // tp                  # 129280 is already a multiple of 64
    embed_head = 2 * vocab_rows * h * 2 + h * 2
    rope = 2 * (4096 * 40) * 64 * 2            # MLA rope + indexer rope (neox), yarn: 4096 x 40 positions
    topk = 8192 * 2048 * 4                     # topk_indices_buffer, int32
    expected = layers + embed_head + rope + topk
    m = load_model("deepseek-ai/DeepSeek-V3.2")
    got = weights_per_rank(m, dtype="bfloat16", quant=parse_quant(m.hf_config["quantization_config"]), tp=tp,
                           max_num_batched_tokens=8192)
    assert got.total_bytes == expected


def test_glm52_weights_tp8_by_hand():
    # GLM-5.2 bf16, TP 8: 64 heads -> 8 per rank; qk_nope 192 + rope 64; v 256; q_lora 2048; 21 indexed layers
    h, tp, hr = 6144, 8, 8
    b = 2
    attn = (
        (2048 + 512 + 64) * h * b + (2048 + 512) * b
        + hr * (192 + 64) * 2048 * b           # q_b_proj
        + hr * (192 + 256) * 512 * b           # kv_b_proj (unquantized, W_UK_T / W_UV are views of it)
        + h * hr * 256 * b                     # o_proj
        + 2 * h * b                            # two RMSNorms
    )
    indexer = 32 * 128 * 2048 * b + (128 + 32) * h * b + 2 * 128 * 4
    dense = (2 * 12288 // tp) * h * b + h * (12288 // tp) * b
    moe = 256 * h * b + 256 * 4 + 256 * 3 * (2048 // tp) * h * b + 3 * (2048 // tp) * h * b
    layers = 78 * attn + 21 * indexer + 3 * dense + 75 * moe
    embed_head = 2 * (154880 // tp) * h * b + h * b
    rope = 1048576 * 64 * b                    # default rope at max_position 1048576; indexer rope shared
    topk = 4096 * 2048 * 4
    m = load_model("zai-org/GLM-5.2")
    got = weights_per_rank(m, dtype="bfloat16", quant=None, tp=tp, max_num_batched_tokens=4096)
    assert got.total_bytes == layers + embed_head + rope + topk


# --------------------------------------------------------------------------------------------- plans

@pytest.mark.parametrize("model_id,flags", [
    ("deepseek-ai/DeepSeek-V3.2", {}),
    ("zai-org/GLM-5-FP8", {}),
    ("zai-org/GLM-5", {"pipeline_parallel_size": 2}),
    ("zai-org/GLM-5.1", {"pipeline_parallel_size": 2}),
    ("zai-org/GLM-5.2", {"pipeline_parallel_size": 2}),
])
def test_plans_start_on_h200_tp8(model_id, flags):
    p = plan(model_id, device="h200", tensor_parallel_size=8, max_model_len=32768, **flags)
    assert p.starts, p.error_message
    assert p.engine.block_size == 64
    assert p.num_gpu_blocks and p.num_gpu_blocks > 0


def test_fp8_on_hopper_is_fp8_ds_mla_and_blackwell_keeps_fp8():
    hop = plan("deepseek-ai/DeepSeek-V3.2", device="h200", tensor_parallel_size=8, max_model_len=32768,
               kv_cache_dtype="fp8")
    assert hop.engine.kv_cache_dtype == "fp8_ds_mla"
    assert hop.logged_rank.layout.bytes_per_block == 61 * 64 * (656 + 132)
    # B200 (SM100): FLASHINFER_MLA_SPARSE takes plain fp8: 576 bytes per token; GLM-5 turns auto into fp8_e4m3
    bw = plan("zai-org/GLM-5-FP8", device="b200", tensor_parallel_size=8, max_model_len=32768)
    assert bw.engine.kv_cache_dtype == "fp8_e4m3"
    assert bw.logged_rank.layout.bytes_per_block == 78 * 64 * (576 + 132)


@pytest.mark.parametrize("model_id,old,first", [
    ("zai-org/GLM-5", "0.15.0", "0.16.0"),          # registry.py: absent in 0.15.0, present in 0.16.0
    ("deepseek-ai/DeepSeek-V3.2", "0.10.2", "0.12.0"),  # first release read that registers it
])
def test_older_releases_refuse_with_one_line(model_id, old, first):
    from vramplan.errors import UnsupportedError

    with pytest.raises(UnsupportedError) as exc:
        plan(model_id, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version=old)
    assert first in str(exc.value) and "\n" not in str(exc.value)
    assert plan(model_id, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version=first,
                pipeline_parallel_size=2).verdict in ("starts", "fails")


@pytest.mark.parametrize("version,kv,expected", [
    # v0.33+/0.34 fp8 (-> fp8_ds_mla on SM90, FLASHMLA_SPARSE), 8192 tokens, 128 / 8 = 16 heads, pad64 = 64:
    ("0.34.0", "fp8", 8192 * 16 * 576 * 2          # q_concat (quantized cache: heads not padded)
                      + 5 * 32768 * 576 * 2        # prefill workspace, factor 5 (max_model_len <= 256K)
                      + 8192 * 64 * 576 * 2        # (tokens, pad64(heads), 576)
                      + 8192 * 64 * 512 * 2        # (tokens, pad64(heads), kv_lora_rank)
                      + 8192 * 16 * 512 * 2),      # (tokens, heads, kv_lora_rank)  = 1,614,807,040 bytes
    ("0.26.0", "fp8", 8192 * 16 * 576 * 2 + 5 * 32768 * 576 * 2),
    ("0.34.0", "auto", 0),                         # bf16 on SM90: FLASH_ATTN_MLA_SPARSE reserves nothing
    ("0.19.0", "auto", 8192 * 16 * 576 * 2),       # 0.19 has only FLASHMLA_SPARSE on SM90: q_concat
])
def test_flashmla_sparse_workspace_is_in_the_weights(version, kv, expected):
    p = plan("deepseek-ai/DeepSeek-V3.2", device="h200", tensor_parallel_size=8, max_model_len=32768,
             max_num_batched_tokens=8192, kv_cache_dtype=kv, vllm_version=version)
    w = next(t for t in p.logged_rank.terms if t.key == "weights")
    got = sum(b for label, b in w.parts if label.startswith("FLASHMLA_SPARSE workspace"))
    assert got == expected
