"""KV bytes per token and per block, against hand calculations from each config.

Per layer and token, full attention stores K and V: 2 x kv_heads_per_rank x head_dim x
dtype bytes (vLLM AttentionSpec.real_page_size_bytes); a block holds block_size tokens.
MLA stores one latent of kv_lora_rank + qk_rope_head_dim (no x2, not split by TP).
"""

import pytest

from vramplan.api import load_model
from vramplan.model.description import LayerKind
from vramplan.rules.kv import build_layout, layer_specs, needed_bytes


def layout(model_id, *, tp=1, block_size=16, kv_cache_dtype="auto", dtype="bfloat16", disable_hybrid=False):
    m = load_model(model_id)
    specs = layer_specs(m, tp=tp, block_size=block_size, kv_cache_dtype=kv_cache_dtype, model_dtype=dtype,
                        disable_hybrid=disable_hybrid)
    return m, build_layout(specs)


# (model, layers, kv heads, head dim): dense GQA/MQA models, one group of identical layers
DENSE = [
    ("meta-llama/Llama-3.1-8B-Instruct", 32, 8, 128),
    ("meta-llama/Llama-3.1-70B-Instruct", 80, 8, 128),
    ("meta-llama/Llama-3.2-1B-Instruct", 16, 8, 64),
    ("Qwen/Qwen3-8B", 36, 8, 128),
    ("Qwen/Qwen3-0.6B", 28, 8, 128),
    ("Qwen/Qwen3-14B", 40, 8, 128),
    ("Qwen/Qwen3-32B", 64, 8, 128),
    ("Qwen/Qwen3-30B-A3B", 48, 4, 128),
    ("Qwen/Qwen3-235B-A22B", 94, 4, 128),
    ("Qwen/Qwen2.5-7B-Instruct", 28, 4, 128),
    ("Qwen/Qwen2.5-72B-Instruct", 80, 8, 128),
    ("Qwen/Qwen3-VL-8B-Instruct", 36, 8, 128),
    ("Qwen/Qwen3-VL-2B-Instruct", 28, 8, 128),
    ("Qwen/Qwen2.5-VL-3B-Instruct", 36, 2, 128),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 32, 8, 128),
    ("microsoft/phi-2", 32, 32, 80),
    ("microsoft/phi-4", 40, 10, 128),
    ("microsoft/Phi-3-mini-4k-instruct", 32, 32, 96),
    ("ibm-granite/granite-3.3-8b-instruct", 40, 8, 128),
    ("codellama/CodeLlama-7b-hf", 32, 32, 128),
    ("llava-hf/llava-1.5-7b-hf", 32, 32, 128),
]


@pytest.mark.parametrize("model_id,layers,kv,head", DENSE)
def test_dense_bytes_per_token_and_block(model_id, layers, kv, head):
    m, lay = layout(model_id)
    per_token = layers * 2 * kv * head * 2  # bf16
    assert lay.bytes_per_block == per_token * 16
    assert len(lay.groups) == 1 and lay.group_size == layers
    # one request of 4096 tokens needs cdiv(4096, 16) = 256 blocks
    assert needed_bytes(lay, max_model_len=4096, max_in_flight_tokens=8192) == 256 * per_token * 16


def test_llama_8b_hand_figure():
    # 32 layers x 2 x 8 heads x 128 x 2 bytes = 131,072 bytes per token; x16 = 2 MiB per block
    _, lay = layout("meta-llama/Llama-3.1-8B-Instruct")
    assert lay.bytes_per_block == 2_097_152


def test_tp_splits_kv_heads_and_replicates_past_their_number():
    # Qwen3-30B-A3B has 4 KV heads: TP=2 -> 2 per rank; TP=8 -> 1 per rank (replicated)
    _, lay2 = layout("Qwen/Qwen3-30B-A3B", tp=2)
    assert lay2.bytes_per_block == 48 * 2 * 2 * 128 * 2 * 16
    _, lay8 = layout("Qwen/Qwen3-30B-A3B", tp=8)
    assert lay8.bytes_per_block == 48 * 2 * 1 * 128 * 2 * 16


def test_fp8_kv_halves_the_page():
    _, lay = layout("Qwen/Qwen3-8B", kv_cache_dtype="fp8")
    assert lay.bytes_per_block == 36 * 2 * 8 * 128 * 1 * 16


def test_mla_latent_is_not_split_by_tp():
    # DeepSeek-V2-Lite: 27 layers of MLA, latent 512 + rope 64 = 576 values, bf16, no x2
    _, lay = layout("deepseek-ai/DeepSeek-V2-Lite", block_size=64)
    assert lay.bytes_per_block == 27 * 576 * 2 * 64
    _, lay_tp = layout("deepseek-ai/DeepSeek-V2-Lite", block_size=64, tp=2)
    assert lay_tp.bytes_per_block == lay.bytes_per_block
    _, v3 = layout("deepseek-ai/DeepSeek-V3", block_size=64)
    assert v3.bytes_per_block == 61 * 576 * 2 * 64


def test_gemma3_sliding_window_groups():
    # gemma-3-4b: 34 layers, every 6th is global (layers 5, 11, 17, 23, 29): 5 full + 29 sliding.
    # Same page (2 x 4 kv heads x 256 x 2 bytes = 4096 B/token), so groups of 5 layers:
    # full 1 group, sliding cdiv(29, 5) = 6 groups (1 padding layer). One block id costs 5 pages.
    m, lay = layout("google/gemma-3-4b-it")
    kinds = [layer.kind for layer in m.layers]
    assert kinds.count(LayerKind.FULL) == 5 and kinds.count(LayerKind.SLIDING) == 29
    assert lay.group_size == 5 and len(lay.groups) == 7 and lay.padding_layers == 1
    assert lay.bytes_per_block == 5 * 4096 * 16
    # a 4096-token request: full group cdiv(4096,16) = 256 blocks; each sliding group (window 1024,
    # 2 x 8192 in flight) min(1023 + 16384, 4096) -> 256 + 1 = 257 blocks
    need = needed_bytes(lay, max_model_len=4096, max_in_flight_tokens=16384)
    assert need == 5 * 4096 * 16 * (256 + 6 * 257)


def test_gemma3_long_context_sliding_layers_stop_at_the_window():
    # 131072-token request: full 8192 blocks; sliding min(1023 + 4096, 131072) = 5119 -> cdiv 320 + 1 = 321
    m, lay = layout("google/gemma-3-27b-it")
    kinds = [layer.kind for layer in m.layers]
    full, slide = kinds.count(LayerKind.FULL), kinds.count(LayerKind.SLIDING)
    assert (full, slide) == (10, 52)  # 62 layers, every 6th global
    # 27b: 16 kv heads x 128 head dim: 2 x 16 x 128 x 2 = 8192 B/token/layer; group size 10, 6 sliding groups
    need = needed_bytes(lay, max_model_len=131072, max_in_flight_tokens=2 * 2048)
    assert need == 10 * 8192 * 16 * (8192 + 6 * 321)


def test_disable_hybrid_makes_sliding_layers_full():
    _, lay = layout("google/gemma-3-4b-it", disable_hybrid=True)
    assert len(lay.groups) == 1 and lay.bytes_per_block == 34 * 4096 * 16


def test_gpt_oss_alternating_window():
    # gpt-oss-20b: 24 layers alternating sliding (128) / full; 8 kv heads x 64: 2048 B/token/layer
    m, lay = layout("openai/gpt-oss-20b")
    assert lay.group_size == 12 and len(lay.groups) == 2
    assert lay.bytes_per_block == 12 * 2048 * 16


def test_gemma2_alternating_window():
    # gemma-2-9b: 42 layers alternating sliding (4096) / full, 8 kv heads x 256: 8192 B/token/layer
    _, lay = layout("google/gemma-2-9b-it")
    assert lay.group_size == 21 and lay.bytes_per_block == 21 * 8192 * 16
