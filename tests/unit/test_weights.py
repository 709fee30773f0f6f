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


def test_cpu_offload_moves_whole_parameters_layer_by_layer():
    # vLLM UVAOffloader: parameters of decoder layers 0, 1, ... move while the total is below 1 GiB.
    # Qwen3-8B layer (bf16): qkv 6144x4096 = 50,331,648 B; o 33,554,432; q/k norms 256 each; gate_up 24576x4096
    # = 201,326,592; down 100,663,296; two norms 8,192 each -> 385,892,864 B a layer. Two layers (771,785,728),
    # then layer 2's qkv, o, norms, gate_up (1,056,998,912 < 1 GiB), then down crosses: 1,157,662,208.
    import vramplan

    p = vramplan.plan("Qwen/Qwen3-8B", cpu_offload_gb=1, max_model_len=4096)
    full = vramplan.plan("Qwen/Qwen3-8B", max_model_len=4096)
    # The full plan carries the caching allocator's blocks (rules/allocator.py), the offloading one does not: the
    # embedding and LM head (151936 x 4096 x 2 = 1187 MiB each) take 1188 MiB segments, the 36 layers' q/k norms
    # (256 bytes) 512-byte blocks.
    blocks = 2 * 2**20 + 36 * 2 * (512 - 256)
    assert dict(full.logged_rank.weights.parts)["allocator"] == blocks
    assert p.logged_rank.weights.offloaded_bytes == 1_157_662_208
    assert full.logged_rank.bytes_of("weights") - p.logged_rank.bytes_of("weights") == 1_157_662_208 + blocks
    host = {t.key: t.bytes for t in p.host_terms}
    assert host["cpu_offload"] == 1_157_662_208
    # more KV cache by the same amount (the profile peak does not change)
    assert p.logged_rank.available_kv_bytes - full.logged_rank.available_kv_bytes == 1_157_662_208 + blocks


def test_local_safetensors_headers_are_the_independent_check(tmp_path):
    import json
    import shutil
    import struct

    import vramplan
    from vramplan.api import load_model
    from vramplan.inputs.model_source import load_model_files

    src = load_model_files("Qwen/Qwen3-0.6B")
    (tmp_path / "config.json").write_text(json.dumps(src.config))
    # a header-only checkpoint: 0.5B bf16 elements where the config describes 0.596B (+19%)
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [500_000, 1000],
                                                       "data_offsets": [0, 0]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    load_model.cache_clear()
    p = vramplan.plan(str(tmp_path), max_model_len=4096)
    note = p.logged_rank.term("weights").note
    assert "local safetensors headers: 0.93 GiB in the checkpoint" in note  # 0.5e9 x 2 B = 0.93 GiB
    assert any("the checkpoint (local safetensors headers) holds 0.93 GiB" in w for w in p.warnings)
    shutil.rmtree(tmp_path)


@pytest.mark.parametrize("version,env,logged", [
    # public reports on one H100 (data/public): v0.14.1 Triton backend, "Model loading took 64.38 GiB";
    # ~v0.10.1 with no triton_kernels bundled: the Marlin fallback, 65.9651 GiB
    ("0.14.1", {}, 64.38),
    ("0.10.1", {}, 65.97),
    # the same Marlin layout when forced on a newer version
    ("0.19.0", {"VLLM_MXFP4_USE_MARLIN": "1"}, 65.97),
])
def test_gpt_oss_mxfp4_layout_follows_the_kernel_backend(version, env, logged):
    import vramplan
    from vramplan.engines.vllm.flags import EngineArgs

    p = vramplan.plan("openai/gpt-oss-120b", device="h100-80gb", vllm_version=version, allow_older_version=True,
                      args=EngineArgs(env=tuple(env.items())) if env else None)
    assert p.logged_rank.bytes_of("weights") / GiB == pytest.approx(logged, rel=0.002)


def test_internvl_plans_its_language_model_from_llm_config(tmp_path):
    # InternVL3-8B's remote-code config: InternViT-300M + an MLP projector + a Qwen2.5-7B language model with a
    # 151,674-token vocabulary. Hand count: Qwen2.5-7B 7,615,616,512 - (152,064 - 151,674) x 3,584 x 2 (embedding
    # and untied head) = 7,612,820,992; InternViT-300M about 0.304B (published); projector LN(4096) + 4096x3584
    # + 3584x3584 (+ biases) = 27,541,504. Together 7.94B, the model card's total.
    import json

    import vramplan

    cfg = {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
           "select_layer": -1, "force_image_size": 448, "ps_version": "v2", "dynamic_image_size": True,
           "max_dynamic_patch": 12, "min_dynamic_patch": 1, "use_thumbnail": True, "torch_dtype": "bfloat16",
           "llm_config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
                          "intermediate_size": 18944, "num_attention_heads": 28, "num_key_value_heads": 4,
                          "num_hidden_layers": 28, "vocab_size": 151674, "max_position_embeddings": 32768,
                          "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
           "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
                             "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                             "num_hidden_layers": 24, "image_size": 448, "patch_size": 14, "qkv_bias": True,
                             "norm_type": "layer_norm", "qk_normalization": False}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    p = vramplan.plan(str(tmp_path), max_model_len=8192)
    assert p.model.family == "qwen2" and p.model.is_multimodal
    assert p.logged_rank.weights.num_params / 1e9 == pytest.approx(7.94, rel=0.005)
    assert p.starts
