"""Weights per rank against published parameter counts and against figures vLLM logged."""

import pytest

from vramplan.api import load_model
from vramplan.model.quant import parse_quant
from vramplan.rules.weights import pad_vocab_size, pp_layer_split, weights_per_rank
from vramplan.units import GiB


def shares(model_id, **kw):
    m = load_model(model_id)
    q = parse_quant(m.hf_config.get("quantization_config"))
    return weights_per_rank(m, dtype=kw.pop("dtype", "bfloat16"), quant=q, **kw)


# Published parameter counts (model cards / Hub safetensors totals), in billions, to 0.5%.
PUBLISHED = [
    ("meta-llama/Llama-3.1-8B-Instruct", 8.03),
    ("meta-llama/Llama-3.1-70B-Instruct", 70.55),
    ("meta-llama/Llama-3.2-1B-Instruct", 1.24),
    ("Qwen/Qwen3-8B", 8.19),
    ("Qwen/Qwen3-0.6B", 0.596),  # tied embeddings: 0.75B on the card counts the shared matrix twice? no: 0.6B
    ("Qwen/Qwen3-14B", 14.77),
    ("Qwen/Qwen3-32B", 32.76),
    ("Qwen/Qwen3-30B-A3B", 30.53),
    ("Qwen/Qwen3-235B-A22B", 235.09),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46.70),
    ("deepseek-ai/DeepSeek-V2-Lite", 15.71),
    ("google/gemma-2-9b-it", 9.24),
    ("microsoft/phi-2", 2.78),
    ("microsoft/phi-4", 14.66),
    ("Qwen/Qwen2.5-7B-Instruct", 7.62),
    ("Qwen/Qwen2.5-72B-Instruct", 72.71),
    # config.json says tie_word_embeddings: false at the top level; the text sub-config's library default must not
    # override it (the separate LM head is 0.31B of these)
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", 31.07),
]


@pytest.mark.parametrize("model_id,billions", PUBLISHED)
def test_parameter_counts_match_published(model_id, billions):
    s = shares(model_id)
    assert s.num_params / 1e9 == pytest.approx(billions, rel=0.005)


# vLLM 0.26 on an H100 logged "Model loading took X GiB" (data/device_v026): text models.
LOGGED = [
    ("Qwen/Qwen3-8B", 15.27),
    ("Qwen/Qwen3-30B-A3B", 56.88),
]


@pytest.mark.parametrize("model_id,gib", LOGGED)
def test_weights_equal_vllm_log(model_id, gib):
    assert round(shares(model_id).total_bytes / GiB, 2) == gib


def test_llama_weights_are_params_plus_rope_cache():
    # 8,030,261,248 params x 2 bytes + cos/sin cache 131072 positions x 128 x 2 bytes
    assert shares("meta-llama/Llama-3.1-8B-Instruct").total_bytes == 8_030_261_248 * 2 + 131072 * 128 * 2


def test_vocab_padding_to_64():
    assert pad_vocab_size(151936) == 151936
    assert pad_vocab_size(32064) == 32064
    assert pad_vocab_size(49159) == 49216  # granite's 49159 rows become 49216


def test_tp_halves_linear_layers_and_vocab():
    one, two = shares("Qwen/Qwen3-8B"), shares("Qwen/Qwen3-8B", tp=2)
    # everything splits but norms and the rope cache: the rank holds just over half
    assert 0.5 < two.total_bytes / one.total_bytes < 0.502


def test_pipeline_split_gives_remainder_to_earlier_stages():
    # vLLM get_pp_indices: 36 layers over 5 stages -> 7 each, remainder 1 to the stage before the last
    assert [e - s for s, e in pp_layer_split(36, 5)] == [7, 7, 7, 8, 7]
    # 32 over 3: 10 each, remainder 2 -> partitions[-2] and partitions[-3] get one more
    assert [e - s for s, e in pp_layer_split(32, 3)] == [11, 11, 10]
    assert pp_layer_split(10, 2, "6,4") == [(0, 6), (6, 10)]


def test_pp_stages_split_embedding_and_head():
    first = shares("meta-llama/Llama-3.1-8B-Instruct", pp=2, pp_rank=0)
    last = shares("meta-llama/Llama-3.1-8B-Instruct", pp=2, pp_rank=1)
    assert first.part("embed") > 0 and first.part("lm_head") == 0
    assert last.part("embed") == 0 and last.part("lm_head") > 0


def test_moe_experts_split_over_tp_times_dp():
    one = shares("Qwen/Qwen3-30B-A3B")
    dp2 = shares("Qwen/Qwen3-30B-A3B", dp=2)
    ep2 = shares("Qwen/Qwen3-30B-A3B", dp=2, expert_parallel=True)
    assert dp2.part("moe") == pytest.approx(one.part("moe") / 2, rel=0.01)
    assert ep2.part("moe") == pytest.approx(one.part("moe") / 2, rel=0.01)
    assert dp2.part("attention") == one.part("attention")  # attention is replicated across DP


def test_fp8_block_checkpoint_is_about_one_byte_per_param():
    # Qwen3-32B-FP8: linear layers in fp8 with one fp32 scale per 128x128 block; embeddings stay bf16
    fp8 = shares("Qwen/Qwen3-32B-FP8")
    bf16 = shares("Qwen/Qwen3-32B")
    assert fp8.part("mlp") == pytest.approx(bf16.part("mlp") / 2, rel=0.01)
    assert fp8.part("embed") == bf16.part("embed")
