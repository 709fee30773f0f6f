"""DSA (DeepSeek-V3.2 / GLM-5 layout) over the space of configs: the KV block and the indexer weights follow the
hand formula for any layer count, indexer pattern, latent size, block size and KV dtype, and a plan never
errors internally."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.errors import VramplanError
from vramplan.model.from_config import describe_config
from vramplan.rules.kv import build_layout, layer_specs
from vramplan.rules.weights import weights_per_rank

SETTINGS = settings(max_examples=int(os.environ.get("VRAMPLAN_PLAN_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dsa_configs(draw):
    layers = draw(st.integers(min_value=1, max_value=12))
    types = draw(st.lists(st.sampled_from(["full", "shared"]), min_size=layers, max_size=layers))
    kv_lora = draw(st.sampled_from([256, 512]))
    rope = draw(st.sampled_from([32, 64]))
    index_head = draw(st.sampled_from([64, 128, 256]))
    cfg = {
        "architectures": [draw(st.sampled_from(["DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM"]))],
        "model_type": "deepseek_v32", "hidden_size": 1024, "num_hidden_layers": layers, "num_attention_heads": 16,
        "num_key_value_heads": 16, "vocab_size": 4096, "intermediate_size": 2048, "moe_intermediate_size": 256,
        "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
        "q_lora_rank": 512, "kv_lora_rank": kv_lora, "qk_nope_head_dim": 64, "qk_rope_head_dim": rope,
        "v_head_dim": 64, "index_n_heads": 8, "index_head_dim": index_head, "index_topk": 256,
        "max_position_embeddings": 8192, "torch_dtype": "bfloat16", "indexer_types": types,
    }
    return cfg, types


@SETTINGS
@given(dsa_configs(), st.sampled_from([16, 64, 128]), st.sampled_from(["auto", "fp8_ds_mla"]))
def test_kv_block_is_latent_plus_indexer_pages(cfg_types, block, kv):
    cfg, types = cfg_types
    m = describe_config(cfg, name="synthetic-dsa")
    lay = build_layout(layer_specs(m, tp=2, block_size=block, kv_cache_dtype=kv, model_dtype="bfloat16"))
    latent = 656 if kv == "fp8_ds_mla" else (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2
    indexer = cfg["index_head_dim"] + cfg["index_head_dim"] // 128 * 4
    n_full = types.count("full")
    assert lay.bytes_per_block == block * (len(types) * latent + n_full * indexer)


@SETTINGS
@given(dsa_configs())
def test_indexer_weights_only_on_full_layers(cfg_types):
    cfg, types = cfg_types
    shared = dict(cfg, indexer_types=["shared"] * len(types))
    m, m0 = describe_config(cfg, name="a"), describe_config(shared, name="b")
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=1).total_bytes
    w0 = weights_per_rank(m0, dtype="bfloat16", quant=None, tp=1).total_bytes
    h, n, d, q = 1024, cfg["index_n_heads"], cfg["index_head_dim"], cfg["q_lora_rank"]
    per_indexer = n * d * q * 2 + (d + n) * h * 2 + 2 * d * 4  # wq_b + wk_weights_proj (bf16) + k_norm (fp32)
    assert w - w0 == types.count("full") * per_indexer


@SETTINGS
@given(st.sampled_from(["deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2", "zai-org/GLM-5-FP8", "moonshotai/Kimi-K2.5",
                        "deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro"]),
       st.sampled_from(["h100-80gb", "h200", "b200"]), st.sampled_from([4, 8]),
       st.sampled_from(["auto", "fp8", "bfloat16"]), st.sampled_from([4096, 65536]),
       st.sampled_from(["0.26.0", "0.33.0", "0.34.0"]))
def test_plans_never_error_internally(model, device, tp, kv, length, version):
    try:
        p = vramplan.plan(model, device=device, tensor_parallel_size=tp, kv_cache_dtype=kv, max_model_len=length,
                          vllm_version=version)
    except VramplanError as e:  # a clear refusal is allowed, a crash is not
        assert e.message and "\n" not in e.message
        return
    assert p.verdict in ("starts", "fails")
