"""Gemma 4 (sliding/full attention with different head sizes and KV heads, MoE block, vision tower weights).

Read from vLLM v0.34.0 gemma4.py / gemma4_mm.py (and transformers 5.25 Gemma4TextConfig / Gemma4VisionModel) only;
no real startup checked.
"""

import vramplan
from vramplan.api import load_model
from vramplan.model.description import LayerKind
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import build_layout, layer_specs
from vramplan.rules.weights import weights_per_rank

G26 = "google/gemma-4-26B-A4B"
G31 = "nvidia/Gemma-4-31B-IT-NVFP4"


def test_gemma4_31b_text_weights_tp2_bf16_by_hand():
    m = load_model(G31)
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=2)
    # 60 layers: 50 sliding (head 256, 16 kv heads), 10 full (global head 512, 4 global kv heads); 32 q heads
    sliding = (32 // 2 + 2 * 16 // 2) * 256 * 5376 + 5376 * (32 * 256 // 2)
    full = (32 // 2 + 2 * 4 // 2) * 512 * 5376 + 5376 * (32 * 512 // 2)
    assert w.part("attention") == (50 * sliding + 10 * full) * 2
    # gated MLP, intermediate 21504 split by TP 2
    assert w.part("mlp") == 60 * (21504 * 5376 + 5376 * 10752) * 2
    # tied embeddings: vocab 262144 / 2 x 5376; no lm_head part
    assert w.part("embed") == 262144 // 2 * 5376 * 2 and w.part("lm_head") == 0


def test_gemma4_26b_moe_and_vision_by_hand():
    m = load_model(G26)
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=1)
    # 128 experts of 704 (gated), hidden 2816; router: proj 128 x 2816, scale 2816, per_expert_scale 128
    per_layer = 128 * 2 * 704 * 2816 + 128 * 2816 * 704 + 128 * 2816 + 2816 + 128
    assert w.part("moe") == 30 * per_layer * 2
    # vision tower (replicated, bf16): 27 layers of hidden 1152, 16 heads x 72, MLP 4304 (gate, up, down), 4 norms,
    # q/k norms; patch proj 1152 x 768; position table 2 x 10240 x 1152; std bias/scale; projection 2816 x 1152
    layer = 4 * 1152 * 1152 + 2 * 72 + 3 * 4304 * 1152 + 4 * 1152
    vision = 27 * layer + 1152 * 768 + 2 * 10240 * 1152 + 2 * 1152 + 2816 * 1152
    assert w.part("vision") == vision * 2
    # rotary caches: sliding (262144 x 256) and full (262144 x 512, proportional rope keeps the whole head)
    assert w.part("buffer") == 262144 * (256 + 512) * 2 + 30 * 2  # + one layer_scalar per layer


def test_gemma4_kv_pages_and_groups():
    m = load_model(G26)
    specs = layer_specs(m, tp=1, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    sliding = {s.page_bytes for s in specs.values() if s.kind is LayerKind.SLIDING}
    full = {s.page_bytes for s in specs.values() if s.kind is LayerKind.FULL}
    assert sliding == {16 * 8 * (256 + 256) * 2} and full == {16 * 2 * (512 + 512) * 2}
    layout = build_layout(specs)
    assert layout.page_bytes == 131072  # full layers move to 32-token blocks to match the sliding page
    assert {g.spec.block_size for g in layout.groups if g.spec.kind is LayerKind.FULL} == {32}


def test_gemma4_nvfp4_excludes_attention():
    m = load_model(G31)
    q = parse_quant(m.hf_config["quantization_config"])
    assert q.method == "modelopt_fp4" and q.kv_cache_dtype == "fp8"
    w = weights_per_rank(m, dtype="bfloat16", quant=q, tp=1)
    # self_attn excluded in every layer (bf16); MLP NVFP4: out x in / 2 + out x in / 16 + 8 per weight
    gate_up = 2 * 21504 * 5376 // 2 + 2 * 21504 * 5376 // 16 + 8
    down = 5376 * 21504 // 2 + 5376 * 21504 // 16 + 8
    assert w.part("mlp") == 60 * (gate_up + down)
    sliding = (32 + 2 * 16) * 256 * 5376 + 5376 * 32 * 256
    full = (32 + 2 * 4) * 512 * 5376 + 5376 * 32 * 512
    assert w.part("attention") == (50 * sliding + 10 * full) * 2


def test_gemma4_plans_start():
    for model_id in (G26, G31):
        p = vramplan.plan(model_id, device="h100-80gb", max_model_len=65536)
        assert p.verdict == "starts", (model_id, p.error_kind, p.error_message)
