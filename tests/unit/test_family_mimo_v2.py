"""MiMo-V2-Flash (sliding/full hybrid, K 192 / V 128 heads, sinks, MoE): by hand from the config.

Read from vLLM v0.34.0 mimo_v2.py only; no real startup checked.
"""

import vramplan
from vramplan.api import load_model
from vramplan.model.description import LayerKind
from vramplan.rules.kv import build_layout, layer_specs
from vramplan.rules.weights import weights_per_rank

MIMO = "XiaomiMiMo/MiMo-V2-Flash"


def test_mimo_v2_flash_weights_tp1_bf16_by_hand():
    m = load_model(MIMO)
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=1)
    # hybrid_layer_pattern: 9 full layers (0), 39 sliding (1); hidden 4096
    # full: 64 q heads x 192, 4 kv heads x (192 K + 128 V), o_proj 64 x 128 -> 4096
    full = 64 * 192 * 4096 + 4 * (192 + 128) * 4096 + 4096 * 64 * 128
    # sliding: 64 q heads, 8 kv heads, same head sizes, + 64 attention-sink biases
    swa = 64 * 192 * 4096 + 8 * (192 + 128) * 4096 + 4096 * 64 * 128 + 64
    assert w.part("attention") == (9 * full + 39 * swa) * 2
    # moe_layer_freq: layer 0 dense (16384), 47 MoE layers of 256 experts x 2048; router and bias float32
    assert w.part("mlp") == 3 * 16384 * 4096 * 2
    assert w.part("moe") == 47 * ((2 * 2048 * 4096 + 4096 * 2048) * 256 * 2 + 256 * 4096 * 4 + 256 * 4)
    # two rope caches (base 5e6 and 1e4): 262144 positions x int(192 x 0.334) = 64
    assert w.part("buffer") == 2 * 262144 * 64 * 2


def test_mimo_v2_kv_pages_and_groups():
    m = load_model(MIMO)
    specs = layer_specs(m, tp=1, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    full = {s.page_bytes for s in specs.values() if s.kind is LayerKind.FULL}
    swa = {(s.page_bytes, s.sliding_window) for s in specs.values() if s.kind is LayerKind.SLIDING}
    assert full == {16 * 4 * (192 + 128) * 2} and swa == {(16 * 8 * (192 + 128) * 2, 128)}
    layout = build_layout(specs)
    # pages unified to the larger (sliding) page: full layers get 2 x 16 = 32-token blocks
    assert layout.page_bytes == 81920
    assert {g.spec.block_size for g in layout.groups if g.spec.kind is LayerKind.FULL} == {32}


def test_mimo_v2_plans_start_tp8():
    p = vramplan.plan(MIMO, device="h100-80gb", tensor_parallel_size=8, max_model_len=131072)
    assert p.verdict == "starts", (p.error_kind, p.error_message)


def test_mimo_v2_v_padded_before_0_20():
    # v0.19.0 pads V to the K head (192) before attention; v0.20.0 stores V at 128 (head_size_v). TP 8: full layers
    # 1 kv head, sliding 1 kv head -> 0.19: 16 x (192 + 192) x 2 = 12288 B per 16-token page; 0.20: 16 x 320 x 2 = 10240
    old = vramplan.plan(MIMO, device="h100-80gb", vllm_version="0.19.0", tensor_parallel_size=8, max_model_len=32768)
    new = vramplan.plan(MIMO, device="h100-80gb", vllm_version="0.21.0", tensor_parallel_size=8, max_model_len=32768)
    assert old.logged_rank.layout.page_bytes == 16 * 384 * 2
    assert new.logged_rank.layout.page_bytes == 16 * 320 * 2
    assert old.model is new.model  # the plan keeps the description it was given
