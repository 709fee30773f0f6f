"""DeepSeek-V4 (Flash / Pro) as vLLM 0.34 builds it on CUDA: the packed KV groups, bytes per block and blocks per
request, and weights per rank against hand calculations from the config; plans on 8 x H200.
Read from source only (no real startup yet)."""

import pytest

from vramplan.api import load_model, plan
from vramplan.errors import InvalidConfig, UnsupportedError
from vramplan.model.description import QuantSpec
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import build_layout, capacity, layer_specs, needed_bytes
from vramplan.rules.weights import weights_per_rank
from dataclasses import replace

FLASH = "deepseek-ai/DeepSeek-V4-Flash"


def cdiv(a, b):
    return -(-a // b)


def r576(x):
    return cdiv(x, 576) * 576


def test_flash_layer_mix():
    # compress_ratios (43 decoder layers; the 44th entry is the MTP layer): 0, 0, then (4, 128) x 20, then 4
    m = load_model(FLASH)
    roles = [tuple(c.role for c in layer.attention.extra_caches) for layer in m.layers]
    assert roles.count(("swa",)) == 2
    assert roles.count(("swa", "mla", "compressor", "indexer", "indexer_compressor")) == 21
    assert roles.count(("swa", "mla", "compressor")) == 20


def test_flash_packed_groups_and_bytes_per_block():
    m = load_model(FLASH)
    lay = build_layout(layer_specs(m, tp=8, block_size=256, kv_cache_dtype="fp8_ds_mla", model_dtype="bfloat16"))
    # pages, fp8_ds_mla (584 B per state), rounded up to 576:
    swa = r576(64 * 584)            # 37440: 64-token SWA block
    c4 = r576(256 // 4 * 584)       # 37440: 64 states of 4 tokens
    c128 = r576(256 // 128 * 584)   # 1728: 2 states of 128 tokens
    idx = r576(256 // 4 * 132)      # 8640: indexer K, 128 fp8 + 4 scale bytes per state
    idx_state = r576(4 * 512 * 4)   # 8640: indexer compressor, 4 tokens x (2 x 2 x 128) float32
    c4_state = r576(4 * 2048 * 4)   # 32832: C4 compressor, 4 tokens x (2 x 2 x 512) float32
    c128_state = r576(8 * 1024 * 4)  # 32832: C128 compressor, 8 tokens x (2 x 512) float32
    assert (swa, c4, c128, idx, idx_state, c4_state, c128_state) == (37440, 37440, 1728, 8640, 8640, 32832, 32832)
    # buckets: A MLA-type @256 {21 C4, 20 C128, 21 indexer} (unbalanced: one group); B window 8 @4 {21 + 21}
    # (balanced, 21 repeats); C SWA window 128 @64 {43}; D window 128 @8 {20};
    # _approximate_gcd([21, 43, 20], lower_bound=21) = 22 (padding 1 + 1 + 2 = 4) -> C splits in 2 (22 + 21)
    sizes = sorted(len(g.layers) for g in lay.groups)
    assert sizes == [20, 21, 22, 42, 62]
    # widest group = A: 21 x 37440 + 20 x 1728 + 21 x 8640 = 1,002,240 bytes per block
    assert lay.packed and lay.bytes_per_block == 21 * c4 + 20 * c128 + 21 * idx == 1_002_240
    # one 65536-token request with 16384 tokens in flight takes, per group, block ids:
    # A cdiv(65536, 256) = 256; B cdiv(7 + 16384, 4) + 1 = 4099; C 2 x (cdiv(127 + 16384, 64) + 1) = 2 x 259;
    # D cdiv(127 + 16384, 8) + 1 = 2065  -> 6938
    per_req = 256 + 4099 + 2 * 259 + 2065
    assert needed_bytes(lay, max_model_len=65536, max_in_flight_tokens=16384) == per_req * 1_002_240
    tokens, conc = capacity(lay, 100_000, max_model_len=65536, max_in_flight_tokens=16384, v033=True)
    assert conc == 100_000 / per_req and tokens == int(100_000 / per_req * 65536)


def fp8(o, i):
    return o * i + cdiv(o, 128) * cdiv(i, 128) * 4


def mxfp4(o, i):
    return o * i // 2 + o * (i // 32)


def test_flash_weights_tp8_by_hand():
    h, t = 4096, 8
    attn = (fp8(1024 + 512, h) + (1024 + 512) * 2       # fused_wqa_wkv (replicated) + q_norm, kv_norm
            + fp8(64 * 512 // t, 1024)                  # wq_b, column
            + fp8(8 * 1024 // t, 64 * 512 // 8)         # wo_a: 8 groups x o_lora 1024 out (column), 4096 in
            + fp8(h, 8 * 1024 // t)                     # wo_b, row
            + 64 * 4)                                   # attn_sink, float32, padded to 64 heads
    comp4 = 4 * 1024 * 4 + 2048 * h * 2 + 512 * 2       # ape (4, 2 x 512) fp32, fused_wkv_wgate bf16, norm
    comp128 = 128 * 512 * 4 + 1024 * h * 2 + 512 * 2
    indexer = fp8(64 * 128, 1024) + 64 * h * 2 + (4 * 256 * 4 + 512 * h * 2 + 128 * 2)
    decoder = 2 * h * 2 + 2 * 24 * 4 * h * 4 + 2 * 24 * 4 + 2 * 3 * 4   # norms, hc fn/base/scale (fp32)
    moe = (256 * h * 2                                   # gate, bf16
           + 256 * mxfp4(2 * 2048 // t, h) + 256 * mxfp4(h, 2048 // t)  # routed experts, MXFP4 as loaded
           + fp8(2 * 2048 // t, h) + fp8(h, 2048 // t))  # shared expert
    hash_extra, plain_extra = 129280 * 6 * 4, 256 * 4   # tid2eid int32 / e_score_correction_bias fp32
    layers = (2 * (attn + decoder + moe)                # layers 0, 1: sliding only (hash MoE)
              + 21 * (attn + comp4 + indexer + decoder + moe) + 20 * (attn + comp128 + decoder + moe)
              + 3 * hash_extra + 40 * plain_extra)      # layers 0-2 hash MoE
    model = (2 * (129280 // t) * h * 2 + h * 2          # embed + lm_head (vocab / TP), final norm
             + 2 * 1048576 * 64 * 4                     # rope tables (fp32): main 1M positions, compress 65536 x 16
             + (4 * 4 * h + 4 + 1) * 4                  # hc_head fn/base/scale
             + 8192 * 512 * 4)                          # topk_indices_buffer
    m = load_model(FLASH)
    q = replace(parse_quant(m.hf_config["quantization_config"]),
                expert_quant=QuantSpec(method="mxfp4", weight_bits=4, group_size=32, scale_dtype="uint8"))
    got = weights_per_rank(m, dtype="bfloat16", quant=q, tp=t, max_num_batched_tokens=8192)
    assert got.total_bytes == layers + model


@pytest.mark.parametrize("model_id", [FLASH, "deepseek-ai/DeepSeek-V4-Pro"])
def test_plans_start_on_h200_tp8(model_id):
    p = plan(model_id, device="h200", tensor_parallel_size=8, max_model_len=65536, vllm_version="0.34.0")
    assert p.starts, p.error_message
    assert p.engine.kv_cache_dtype == "fp8_ds_mla" and p.engine.block_size == 256
    assert p.engine.quant.expert_quant.method == "mxfp4"


def test_bf16_cache_is_refused_like_vllm_and_older_releases_refuse():
    with pytest.raises(InvalidConfig, match="fp8_ds_mla layout only supports fp8"):
        plan(FLASH, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version="0.34.0",
             kv_cache_dtype="bfloat16")
    with pytest.raises(UnsupportedError, match="0.34.0"):
        plan(FLASH, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version="0.33.0")
