"""Kimi-K2.5 (DeepSeek-V3 text + MoonViT-3D, INT4 compressed-tensors experts): weights per rank and KV bytes
against hand calculations from the config, and a plan on 8 x H200. Read from source only (vLLM v0.34.0)."""

import pytest

from vramplan.api import load_model, plan
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import build_layout, layer_specs
from vramplan.rules.weights import weights_per_rank
from vramplan.model.from_config import text_config_of

MODEL = "moonshotai/Kimi-K2.5"


def test_kv_bytes_mla():
    # 61 MLA layers, latent kv_lora_rank 512 + qk_rope_head_dim 64 = 576 bf16 = 1152 bytes per token and layer
    m = load_model(MODEL)
    lay = build_layout(layer_specs(m, tp=8, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16"))
    assert lay.bytes_per_block == 61 * 16 * 1152 == 1_124_352


def int4(out_f, in_f):
    """pack-quantized int4, group 32, symmetric: in/2 bytes per row + one bf16 scale per 32 inputs"""
    return out_f * in_f // 2 + out_f * (in_f // 32) * 2


def test_weights_tp8_by_hand():
    h, tp, b = 7168, 8, 2
    hr = 64 // tp  # 8 heads per rank
    attn = (
        (1536 + 512 + 64) * h * b              # q_a_proj + kv_a_proj_with_mqa (replicated; ignored by the quant)
        + (1536 + 512) * b                     # q_a_layernorm, kv_a_layernorm
        + hr * (128 + 64) * 1536 * b           # q_b_proj
        + 2 * hr * (128 + 128) * 512 * b       # kv_b_proj + its W_UK_T / W_UV copy
        + h * hr * 128 * b                     # o_proj
        + 2 * h * b                            # two RMSNorms
    )
    dense = 2 * (18432 // tp) * h * b + h * (18432 // tp) * b
    moe = (
        384 * h * b + 384 * 4                  # router + float32 e_score_correction_bias
        + 384 * int4(2 * 2048 // tp, h)        # w13 (E, 2 x 256, 7168), intermediate split by TP
        + 384 * int4(h, 2048 // tp)            # w2 (E, 7168, 256)
        + 2 * (2048 // tp) * h * b + h * (2048 // tp) * b  # shared expert, bf16 (ignored by the quant)
    )
    text = 61 * attn + 1 * dense + 60 * moe + 2 * (163840 // tp) * h * b + h * b
    rope = 4096 * 64 * 64 * b                  # deepseek yarn: 4096 original positions x factor 64, rotary dim 64
    w, heads, hd, inter = 1152, 16, 72, 4304
    layer = (
        2 * 2 * w * b                          # norm0, norm1 (LayerNorm weight + bias)
        + (2 + 2 * 2) * hd * w * b + (2 + 2 * 2) * hd * b  # wqkv: 16 heads / 8 = 2 q + 2 k + 2 v heads, + bias
        + w * (w // tp) * b + w * b            # wo (row) + bias (whole)
        + (inter // tp) * w * b + (inter // tp) * b        # mlp.fc0 (column) + bias
        + w * (inter // tp) * b + w * b        # mlp.fc1 (row) + bias
    )
    vision = (
        (w * 3 * 14 * 14 + w) * b              # patch_embed Conv2d + bias
        + 64 * 64 * w * b + 4 * 1 * w * 4      # pos_emb table + float32 time_weight buffer
        + 27 * layer + 2 * w * b               # 27 blocks + final LayerNorm
        + 2 * w * b                            # projector pre_norm
        + 4 * w * 4 * w * b + 4 * w * b        # linear_1 (4608 x 4608) + bias
        + h * 4 * w * b + h * b                # linear_2 (7168 x 4608) + bias
    )
    m = load_model(MODEL)
    q = parse_quant(text_config_of(m.hf_config)["quantization_config"])
    assert q.method == "compressed-tensors" and q.weight_bits == 4 and q.group_size == 32 and not q.zero_point
    got = weights_per_rank(m, dtype="bfloat16", quant=q, tp=tp)
    assert got.part("vision") + got.part("buffer") - rope == vision
    assert got.total_bytes == text + rope + vision


def test_plan_starts_on_h200_tp8():
    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768)
    assert p.starts, p.error_message
    assert p.engine.quant.method == "compressed-tensors"


def test_older_release_refuses():
    from vramplan.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="0.15.0"):
        plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version="0.14.1")


@pytest.mark.parametrize("version", ["0.19.0", "0.26.0", "0.33.0"])
def test_fp8_mla_cache_on_sm90_uses_flashmla_block_64(version):
    # FLASH_ATTN_MLA (SM90's first MLA backend) takes bf16/fp16 only; fp8 falls to FLASHMLA, kernel block 64.
    # Page: 576 fp8 bytes per token and layer (no scales for the plain fp8 MLA cache), 61 layers, 64 tokens.
    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768, kv_cache_dtype="fp8",
             vllm_version=version)
    assert p.engine.block_size == 64
    assert p.logged_rank.layout.bytes_per_block == 61 * 64 * 576
    # bf16 keeps FLASH_ATTN_MLA's 16
    assert plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768,
                vllm_version=version).engine.block_size == 16
