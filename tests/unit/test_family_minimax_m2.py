"""MiniMax-M2.7 (full attention, per-layer QK norms, 256-expert MoE, block FP8): by hand from the config.

Read from vLLM v0.34.0 minimax_m2.py only; no real startup checked.
"""

import vramplan
from vramplan.api import load_model
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import layer_specs
from vramplan.rules.weights import weights_per_rank

M27 = "MiniMaxAI/MiniMax-M2.7"


def test_minimax_m27_weights_tp4_by_hand():
    m = load_model(M27)
    q = parse_quant(m.hf_config["quantization_config"])
    assert q.method == "fp8" and q.block == (128, 128)
    w = weights_per_rank(m, dtype="bfloat16", quant=q, tp=4)
    # hidden 3072, 48 heads, 8 kv heads, head 128, 62 layers. Block fp8: 1 byte + fp32 scale per 128 x 128 block.
    qkv = (12 + 2 * 2) * 128 * 3072 + (2048 // 128) * (3072 // 128) * 4  # 12 q + 2x2 kv heads per rank
    o = 3072 * 1536 + (3072 // 128) * (1536 // 128) * 4
    assert w.part("attention") == 62 * (qkv + o)
    # 256 experts, I 1536 split by TP 4 -> 384; router float32; e_score_correction_bias float32
    w13 = 256 * (768 * 3072 + (768 // 128) * (3072 // 128) * 4)
    w2 = 256 * (3072 * 384 + (3072 // 128) * (384 // 128) * 4)
    assert w.part("moe") == 62 * (w13 + w2 + 256 * 3072 * 4 + 256 * 4)
    # q_norm over 48 x 128 and k_norm over 8 x 128, both split by TP; two layer norms; final norm
    assert w.part("norm") == (62 * (6144 // 4 + 1024 // 4 + 2 * 3072) + 3072) * 2
    # rotary cache: max_position 204800 x rotary_dim 64, bf16; embed and head unquantized (lm_head excluded)
    assert w.part("buffer") == 204800 * 64 * 2
    assert w.part("embed") == w.part("lm_head") == 200064 // 4 * 3072 * 2


def test_minimax_kv_page_and_plan():
    m = load_model(M27)
    specs = layer_specs(m, tp=4, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    assert len(specs) == 62 and {s.page_bytes for s in specs.values()} == {16 * 2 * (128 + 128) * 2}
    p = vramplan.plan(M27, device="h100-80gb", tensor_parallel_size=4, max_model_len=131072)
    assert p.verdict == "starts", (p.error_kind, p.error_message)
