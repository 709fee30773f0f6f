"""NVFP4 checkpoints: ModelOpt (hf_quant_config.json, config.json, MIXED_PRECISION) and compressed-tensors.

Byte counts by hand from vLLM v0.34.0 modelopt.py:KNvfp4Static.create_weights (packed e2m1 2 per byte, fp8 scale
per 16 inputs, fp32 global scales) and compressed_tensors_w4a4_nvfp4.py:create_weights. Read from source only.
"""

import pytest

from vramplan.api import load_model
from vramplan.errors import UnsupportedError
from vramplan.model.quant import mixed_algo, parse_quant, quantized_weight_bytes
from vramplan.rules.weights import weights_per_rank


def _nvfp4(e, out_f, in_f):
    # e x out x in/2 packed + e x out x in/16 fp8 scales + e x (weight global + input) fp32 scalars
    return e * out_f * in_f // 2 + e * out_f * (in_f // 16) + e * 8


def test_hf_quant_config_is_read_as_the_quantization_config():
    # ModelOpt 0.33 keeps it beside config.json (config.json has no quantization_config)
    m = load_model("nvidia/Qwen3-235B-A22B-NVFP4")
    q = parse_quant(m.hf_config["quantization_config"])
    assert q.method == "modelopt_fp4" and q.weight_format == "nvfp4" and q.kv_cache_dtype == "fp8"
    w = weights_per_rank(m, dtype="bfloat16", quant=q, tp=4)
    # Qwen3-235B: 94 layers of 128 experts, I 1536, H 4096; experts split by TP 4 (I/4 = 384)
    experts = _nvfp4(128, 2 * 384, 4096) + _nvfp4(128, 4096, 384)
    router = 128 * 4096 * 2  # mlp.gate is excluded (bf16)
    assert w.part("moe") == 94 * (experts + router)


def test_nvfp4_linear_bytes():
    q = parse_quant({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "group_size": 16}})
    assert quantized_weight_bytes((4096, 5120), q, "bfloat16") == 4096 * 5120 // 2 + 4096 * 320 + 8


def test_compressed_tensors_nvfp4():
    qcfg = {"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
            "config_groups": {"group_0": {"targets": ["Linear"],
                                          "weights": {"num_bits": 4, "type": "float", "strategy": "tensor_group",
                                                      "group_size": 16, "symmetric": True},
                                          "input_activations": {"num_bits": 4, "type": "float",
                                                                "strategy": "tensor_group", "group_size": 16}}},
            "ignore": ["lm_head"]}
    q = parse_quant(qcfg)
    assert q.weight_format == "nvfp4"
    # weight_packed (out, in/2) uint8 + weight_scale (out, in/16) fp8 + weight_global_scale + input_global_scale
    assert quantized_weight_bytes((1024, 2048), q, "bfloat16") == 1024 * 1024 + 1024 * 128 + 8


def test_mixed_precision_per_module():
    m = load_model("nvidia/Qwen3.6-35B-A3B-NVFP4")
    q = parse_quant(m.hf_config["quantization_config"])
    assert q.method == "modelopt_mixed"
    assert mixed_algo(q, "linear_attn.in_proj_qkvz.weight") == "FP8"  # in_proj_qkv + in_proj_z, both FP8
    assert mixed_algo(q, "linear_attn.in_proj_ba.weight") is None  # not listed: unquantized
    assert mixed_algo(q, "mlp.experts.w13_weight") == "W4A16_NVFP4"
    assert mixed_algo(q, "lm_head.weight") == "W4A16_NVFP4"
    w = weights_per_rank(m, dtype="bfloat16", quant=q, tp=1)
    # hidden 2048, 40 layers (30 GDN, 10 full); 256 experts of 512
    experts = _nvfp4(256, 1024, 2048) + _nvfp4(256, 2048, 512)
    shared = _nvfp4(1, 1024, 2048) + _nvfp4(1, 2048, 512)  # shared expert gate_up + down, W4A16_NVFP4
    small = 256 * 2048 * 2 + 2048 * 2  # router and shared_expert_gate stay bf16
    assert w.part("moe") + w.part("mlp") == 40 * (experts + shared + small)  # the shared expert is in "mlp"
    # lm_head W4A16_NVFP4: vocab 248320 x 2048
    assert w.part("lm_head") == _nvfp4(1, 248320, 2048)
    # GDN in_proj_qkvz as per-tensor FP8: (2 x 2048 + 2 x 4096) x 2048 bytes + weight and input scales (fp32)
    fp8 = 12288 * 2048 + 8
    ba = 2 * 32 * 2048 * 2  # bf16
    out = 2048 * 4096 + 8
    conv = 8192 * 4 * 2
    gdn = fp8 + ba + out + conv + 32 * 2 + 32 * 4  # + dt_bias (bf16) + A_log (fp32)
    # full attention FP8: q x2 (gate) 16 heads, 2 kv heads, head 256
    attn = ((16 * 2 + 2 * 2) * 256 * 2048 + 8) + (2048 * 16 * 256 + 8)
    assert w.part("attention") == 30 * gdn + 10 * attn


def test_unknown_modelopt_algo_is_vllms_error():
    with pytest.raises(UnsupportedError, match="Unknown ModelOpt quant algo: INT4_AWQ"):
        parse_quant({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "INT4_AWQ"}})


def test_exclusions_drop_the_layer_prefix_and_keep_module_boundaries():
    q = parse_quant({"producer": {"name": "modelopt"},
                     "quantization": {"quant_algo": "NVFP4", "exclude_modules": ["model.layers.0.mlp.gate",
                                                                                 "model.layers.1.mlp.gate",
                                                                                 "model.layers.3.self_attn*"]}})
    from vramplan.model.quant import is_ignored

    assert is_ignored(q, "mlp.gate.weight") and not is_ignored(q, "mlp.gate_up_proj.weight")
    assert is_ignored(q, "self_attn.qkv_proj.weight")


@pytest.mark.parametrize("model_id, tp", [("nvidia/Qwen3.6-27B-NVFP4", 1), ("nvidia/Qwen3.6-35B-A3B-NVFP4", 1),
                                          ("nvidia/Qwen3-235B-A22B-NVFP4", 4)])
def test_nvfp4_plans_start(model_id, tp):
    import vramplan

    p = vramplan.plan(model_id, device="h100-80gb", tensor_parallel_size=tp, max_model_len=32768, max_num_seqs=128)
    assert p.verdict == "starts", (p.error_kind, p.error_message)


def test_qwen3_6_kv_scheme_gives_fp8_pages():
    import vramplan

    # config.json quantization_config carries kv_cache_scheme {float, 8 bits}: fp8 KV. 27B TP 1 on Hopper:
    # 4 kv heads x 512 x 1 byte = 2048 B/token; GDN state 3 x 10240 x 2 + 48 x 128 x 128 x 4 = 3,207,168 B
    # -> 64 x cdiv(3207168, 64 x 2048) = 64 x 25 = 1600 tokens
    p = vramplan.plan("nvidia/Qwen3.6-27B-NVFP4", device="h100-80gb", vllm_version="0.33.0", max_model_len=32768,
                      max_num_seqs=128)
    assert p.engine.kv_cache_dtype.startswith("fp8")
    assert p.engine.block_size == 64 * -(-3_207_168 // (64 * 2048)) == 1600


def test_nemotron_super_fp8_hf_quant_config():
    import vramplan

    # hf_quant_config.json: ModelOpt FP8 with FP8 KV. Mamba-2 state at TP 2: H 128, head 64 -> I 8192,
    # conv (8192 + 2 x 8 x 128) / 2 x 3 x 2 = 30,720 B + 64 x 64 x 128 x 4 = 2,097,152 B; attention 1 kv head x 256 x 1
    # -> 16 x cdiv(2127872, 16 x 256) = 16 x 520 = 8320
    p = vramplan.plan("nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8", device="h100-80gb", vllm_version="0.33.0",
                      tensor_parallel_size=2, max_model_len=32768, max_num_seqs=128)
    assert p.engine.quant is not None and p.engine.quant.method == "modelopt"
    assert p.engine.block_size == 16 * -(-2_127_872 // (16 * 256)) == 8320
    assert p.verdict == "starts"


def test_modelopt_fp8_llama_hf_quant_config():
    # ModelOpt 0.23 FP8 (hf_quant_config.json): per-tensor FP8 linears (+ weight and input scales), FP8 KV,
    # lm_head excluded. Llama-3.1-70B TP 4: qkv (64/4 + 2 x 8/4) x 128 x 8192, o 8192 x 2048; MLP 2 x 28672/4 x 8192
    # and 8192 x 7168; each linear 1 byte per weight + 8 bytes of scales
    m = load_model("nvidia/Llama-3.1-70B-Instruct-FP8")
    q = parse_quant(m.hf_config["quantization_config"])
    assert q.method == "modelopt" and q.kv_cache_dtype == "fp8"
    w = weights_per_rank(m, dtype="bfloat16", quant=q, tp=4)
    assert w.part("attention") == 80 * ((16 + 4) * 128 * 8192 + 8 + 8192 * 2048 + 8)
    assert w.part("mlp") == 80 * (2 * 7168 * 8192 + 8 + 8192 * 7168 + 8)
    assert w.part("lm_head") == 128256 // 4 * 8192 * 2
