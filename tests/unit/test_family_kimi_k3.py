"""Kimi-K3 (KDA + NoPE MLA hybrid, latent MoE with MXFP4 experts, attention residuals, MoonViT-3D): weights per
rank, KV bytes per layer and block sizes against hand calculations from the config keys, written out below.

Read from the vLLM 0.34.0 source only (vllm/models/kimi_k3/nvidia/{model,kda,mla}.py,
vllm/model_executor/layers/mamba/mamba_utils.py, vllm/model_executor/models/config.py); nothing measured.
"""

import pytest

from vramplan.api import load_model, plan
from vramplan.errors import InputError, UnsupportedError
from vramplan.model.description import LayerKind
from vramplan.model.from_config import describe_config, text_config_of
from vramplan.model.quant import parse_quant
from vramplan.rules.kv import layer_specs
from vramplan.rules.weights import weights_per_rank

MODEL = "moonshotai/Kimi-K3"

# config keys (text_config), copied by hand
H = 7168                      # hidden_size
LAYERS = 93                   # num_hidden_layers
KDA_HEADS, KDA_DIM, KERNEL = 96, 128, 4   # linear_attn_config num_heads, head_dim, short_conv_kernel_size
P = KDA_HEADS * KDA_DIM       # 12288, the KDA projection size
N_KDA, N_MLA = 69, 24         # len(kda_layers), len(full_attn_layers); layer 1 (index 0) is KDA
HEADS = 96                    # num_attention_heads
Q_LORA, KV_LORA, ROPE, NOPE, V = 1536, 512, 64, 128, 128
INTER = 33792                 # intermediate_size (the dense layer 0: first_k_dense_replace = 1)
E, MOE_I, SHARED, LATENT = 896, 3072, 2, 3584  # num_experts, moe_intermediate_size, shared, routed_expert_hidden
VOCAB = 163840
B = 2                         # bfloat16


def mxfp4(out_f: int, in_f: int) -> int:
    """e2m1 values two a byte + one uint8 e8m0 scale per 32 inputs (Mxfp4MoEMethod.create_weights, as loaded)"""
    return out_f * in_f // 2 + out_f * in_f // 32


def kda_layer(tp: int) -> int:
    local = 4 * P // tp + KDA_DIM + KDA_HEADS // tp          # in_proj_qkvgfab rows: q,k,v,g split, f_a whole, b split
    local += -local % 16                                      # padded to a multiple of 16 per rank
    return (local * H * B
            + (P // tp) * KDA_DIM * B                         # f_b_proj (column)
            + (P // tp) * 4                                   # dt_bias, float32
            + (3 * P // tp) * KERNEL * 4                      # conv1d, float32
            + (KDA_HEADS // tp) * 4                           # A_log, float32
            + KDA_DIM * B                                     # o_norm
            + H * (P // tp) * B)                              # o_proj (row)


def kda_buffers(tp: int) -> int:
    return 3 * KERNEL * (P // tp) * 4 + KDA_DIM * 4           # decode_conv1d_weight, decode_norm_weight (float32)


def mla_layer(tp: int) -> int:
    hr = HEADS // tp
    return ((Q_LORA + KV_LORA + ROPE) * H * B                 # fused q_a + kv_a (replicated)
            + hr * V * H * B                                  # the output gate shard of fused_qkv_a_g_proj
            + Q_LORA * B + hr * (NOPE + ROPE) * Q_LORA * B    # q_a_layernorm, q_b_proj
            + KV_LORA * B + 2 * hr * (NOPE + V) * KV_LORA * B  # kv_a_layernorm, kv_b_proj + W_UK_T / W_UV
            + H * hr * V * B)                                 # o_proj


NORMS = 4 * H * B + 2 * H * B  # input / post-attention / self_attention_res / mlp_res norms + two (1 x H) res projs


def dense(tp: int) -> int:
    return 3 * (INTER // tp) * H * B


def moe(tp: int) -> int:
    return (E * H * B + E * 4                                  # gate + float32 e_score_correction_bias
            + 3 * (MOE_I * SHARED // tp) * H * B               # shared experts (bf16: ignored by the quant)
            + 2 * LATENT * H * B + LATENT * B                  # routed_expert_down/up_proj (unquantized) + norm
            + E * (mxfp4(2 * MOE_I // tp, LATENT) + mxfp4(LATENT, MOE_I // tp)))  # w13, w2 in the latent width


def vision(tp: int) -> int:
    w, heads, hd, inter = 1024, 12, 128, 4096                  # vt_hidden_size, heads, qkv_hidden_size / heads
    if heads % tp:
        tp = 1                                                 # is_vit_use_data_parallel: replicated
    block = (2 * w * B                                         # norm0, norm1 (RMSNorm, no bias)
             + 3 * (heads // tp) * hd * w * B                  # wqkv
             + w * (heads * hd // tp) * B                      # wo (row, 1536 -> 1024)
             + 2 * (inter // tp) * w * B)                      # mlp fc0 / fc1, no biases
    return (w * 3 * 14 * 14 * B + 64 * 64 * w * B + 4 * w * 4  # patch conv (no bias), pos table, f32 time_weight
            + 27 * block + w * B                               # 27 blocks, final norm
            + (4 * w) * (4 * w) * B + H * (4 * w) * B + H * B)  # patchmergerv2 linear_1, linear_2, post_norm


def total(tp: int) -> int:
    layers = (N_KDA * kda_layer(tp) + N_MLA * mla_layer(tp) + LAYERS * NORMS
              + dense(tp) + (LAYERS - 1) * moe(tp))
    return (layers + 2 * (VOCAB // tp) * H * B + H * B        # embed, lm_head, final norm
            + 2 * H * B                                       # output_attn_res_norm / _proj
            + vision(tp))


@pytest.mark.parametrize("tp", [1, 8])
def test_weights_per_rank_by_hand(tp):
    m = load_model(MODEL)
    q = parse_quant(text_config_of(m.hf_config)["quantization_config"])
    # KimiK3ForConditionalGenerationConfig: compressed-tensors mxfp4-pack-quantized -> quant_method mxfp4
    assert q.method == "mxfp4"
    got = weights_per_rank(m, dtype="bfloat16", quant=q, tp=tp,
                           vision_replicated=bool(m.vision.extra.get("dp_when_heads_indivisible") and 12 % tp))
    assert got.part("vision") == vision(tp) - 4 * 1024 * 4  # time_weight is counted as a buffer
    assert got.total_bytes == total(tp)


def test_layers_and_kinds():
    m = load_model(MODEL)
    kinds = [layer.kind for layer in m.layers]
    assert kinds.count(LayerKind.MAMBA) == N_KDA and kinds.count(LayerKind.MLA) == N_MLA
    # full_attn_layers are 1-based: 4, 8, ..., 92, 93 -> indices 3, 7, ..., 91, 92
    assert [i for i, k in enumerate(kinds) if k is LayerKind.MLA] == list(range(3, 92, 4)) + [92]
    assert not m.layers[0].is_moe and all(layer.is_moe for layer in m.layers[1:])
    assert m.buffer_params == ()  # NoPE MLA: no rotary cache


@pytest.mark.parametrize("tp,kv,mla_per_token", [(1, "auto", 1152), (8, "auto", 1152), (8, "fp8", 576)])
def test_kv_bytes_per_layer(tp, kv, mla_per_token):
    # MLA: one latent head of kv_lora_rank + qk_rope_head_dim = 576 elements per token, not split by TP
    # KDA: conv state (3P / tp, kernel - 1) bf16 + recurrent (heads / tp, 128, 128) float32
    m = load_model(MODEL)
    specs = layer_specs(m, tp=tp, block_size=64, kv_cache_dtype=kv, model_dtype="bfloat16")
    state = (3 * P // tp) * (KERNEL - 1) * B + (KDA_HEADS // tp) * KDA_DIM * KDA_DIM * 4
    assert {s.page_bytes for i, s in specs.items() if s.kind is LayerKind.MAMBA} == {state}
    assert {s.page_bytes for i, s in specs.items() if s.kind is LayerKind.MLA} == {64 * mla_per_token}
    assert state == {1: 6_512_640, 8: 814_080}[tp]


def _groups(p):
    return [(g.spec.kind, g.spec.block_size, g.spec.page_bytes, len(g.layers)) for g in p.logged_rank.layout.groups]


@pytest.mark.parametrize("tp,kv,max_len", [(8, "auto", 32768), (8, "fp8", 32768), (1, "auto", 8192),
                                           (8, "auto", 1024)])
def test_block_sizes_per_group(tp, kv, max_len):
    # vLLM 0.34 Platform._align_hybrid_block_size: MLA hybrids align to 128 tokens; the attention block becomes
    # 128 x cdiv(state, 128 x MLA bytes per token) and the KDA page is padded to that attention page
    state = (3 * P // tp) * (KERNEL - 1) * B + (KDA_HEADS // tp) * KDA_DIM * KDA_DIM * 4
    per_token = 576 * (1 if kv == "fp8" else 2)
    block = 128 * -(-state // (128 * per_token))
    assert (tp, kv, block) in {(8, "auto", 768), (8, "fp8", 1536), (1, "auto", 5760)}
    p = plan(MODEL, device="h200", tensor_parallel_size=tp, max_model_len=max_len, kv_cache_dtype=kv,
             device_memory_gib=2048)
    assert p.engine.block_size == block
    groups = _groups(p)
    assert (LayerKind.MLA, block, block * per_token, N_MLA) in groups
    mamba = [g for g in groups if g[0] is LayerKind.MAMBA]
    assert sum(g[3] for g in mamba) == N_KDA and {g[2] for g in mamba} == {block * per_token}


def test_plan_warns_what_is_not_counted_and_never_crashes():
    p = plan(MODEL, device="h100-80gb", tensor_parallel_size=8, max_model_len=32768)
    assert not p.starts  # about 191 GiB of weights a rank
    text = " ".join(p.warnings)
    assert "FlashKDA prefill workspace" in text and "attention-residual" in text


def test_release_gates():
    with pytest.raises(UnsupportedError, match="0.33.0"):
        plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version="0.26.0")
    plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=8192, vllm_version="0.33.0")


def _raw():
    import json

    from vramplan.inputs.model_source import catalog_root

    return json.loads((catalog_root() / MODEL / "config.json").read_text())


def test_k31_alias_keeps_compressed_tensors_mxfp4():
    # KimiK31ForConditionalGeneration is not in vLLM 0.34's MODELS_CONFIG_MAP: compressed-tensors
    # CompressedTensorsW4A4Mxfp4 (linear) and ...MoEMethod keep weight_packed (in/2) + uint8 scales (in/32);
    # the latent projections (ReplicatedLinear, not in the ignore list) are quantized too
    cfg = _raw()
    cfg["architectures"] = ["KimiK31ForConditionalGeneration"]
    m = load_model(str(_tmp_model(cfg)))
    q = parse_quant(text_config_of(m.hf_config)["quantization_config"])
    assert q.method == "compressed-tensors" and q.weight_format == "mxfp4"
    tp = 8
    k3 = load_model(MODEL)
    a = weights_per_rank(m, dtype="bfloat16", quant=q, tp=tp, vision_replicated=True)
    b = weights_per_rank(k3, dtype="bfloat16", quant=parse_quant(
        text_config_of(k3.hf_config)["quantization_config"]), tp=tp, vision_replicated=True)
    assert b.total_bytes - a.total_bytes == (LAYERS - 1) * 2 * (LATENT * H * B - mxfp4(LATENT, H))
    with pytest.raises(UnsupportedError, match="0.34.0"):
        plan(str(_tmp_model(cfg)), device="h200", tensor_parallel_size=8, vllm_version="0.33.0")


def _tmp_model(cfg):
    import json
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp()) / "k31"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def test_dsa_on_some_mla_layers_is_refused_in_one_line():
    # Kimi-K3.1's DSA on every MLA layer is modelled (test_family_kimi_k31_dsa.py); on only some it is not
    cfg = _raw()
    cfg["text_config"] = dict(cfg["text_config"], dsa_config={"dsa_layers": [4, 8], "index_topk": 2048})
    with pytest.raises(InputError) as exc:
        describe_config(cfg, name="k31-dsa")
    assert "DSA" in exc.value.one_line() and "\n" not in exc.value.one_line()


@pytest.mark.parametrize("version", ["0.33.0", "0.34.0"])
def test_h200_runs_the_experts_on_marlin_as_loaded(version):
    # situ is neither OAITritonExperts' (SWIGLUOAI only) nor FlashInfer CUTLASS's: Marlin, whose padding (hidden to
    # 256, intermediate per rank to 128) leaves 3584 and 3072 / 8 = 384 as they are, and whose repack keeps the
    # sizes (e2m1 pairs, e8m0 scales): the plan's weights are the hand figure above, vision replicated (12 % 8)
    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768, vllm_version=version)
    assert p.engine.quant.method == "mxfp4" and p.engine.quant.moe_layout == "marlin"
    assert p.logged_rank.weights.total_bytes == total(8)


@pytest.mark.parametrize("tp,ep,per_rank", [(8, False, 384), (16, False, 256), (32, False, 256), (16, True, 3072)])
def test_experts_padded_when_the_tp_share_is_under_256(tp, ep, per_rank):
    # KimiMoE: with TP > 1 and no expert parallel, moe_intermediate_size // TP < 256 (3072 // 16 = 192) pads the
    # experts to 256 x TP, i.e. 256 a rank; with EP each rank holds E / TP whole experts
    m = load_model(MODEL)
    q = parse_quant(text_config_of(m.hf_config)["quantization_config"])
    got = weights_per_rank(m, dtype="bfloat16", quant=q, tp=tp, expert_parallel=ep)
    experts = E // tp if ep else E
    moe_part = (LAYERS - 1) * (E * H * B + E * 4 + experts * (mxfp4(2 * per_rank, LATENT) + mxfp4(LATENT, per_rank)))
    assert got.part("moe") == moe_part


def test_mamba_ssm_cache_dtype_flag():
    # bfloat16 halves the recurrent state: 27,648 conv + 12 x 128 x 128 x 2 = 420,864 B at TP 8 -> block 128 x 3
    state = (3 * P // 8) * (KERNEL - 1) * B + (KDA_HEADS // 8) * KDA_DIM * KDA_DIM * 2
    assert state == 420_864
    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=8192, device_memory_gib=2048,
             mamba_ssm_cache_dtype="bfloat16")
    assert p.engine.block_size == 128 * -(-state // (128 * 1152)) == 384
    # kda_state_dtype: "KDA recurrent state supports only auto, float32, and bfloat16"
    with pytest.raises(InputError, match="KDA recurrent state"):
        plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=8192, mamba_ssm_cache_dtype="float16")


def test_vision_config_needs_no_transformers():
    import sys

    from vramplan.model.vision import resolve_config

    before = "transformers" in sys.modules
    cfg = _raw()
    assert resolve_config(cfg) == cfg
    assert ("transformers" in sys.modules) == before


@pytest.mark.parametrize("version,ssm,expected", [
    # FlashKDA views (0.34): (1, T, 12, 128) bf16 + 2 x (N, 12, 128, 128) recurrent dtype, T = 8192, N = 1024
    # (H200 defaults); native fused decode (float32 recurrent state only): 69 x (3 x 4 x 1536 + 128) float32;
    # the scratch view get_workspace_size(T, 12, N) = (cdiv(T, 16) + N) x 12 x 27 x 512 (the 0.34 wheel's
    # _flashkda_C.abi3.so, disassembled): (512 + 1024) x 12 x 13824 = 254,803,968 bytes
    ("0.34.0", None, 8192 * 12 * 128 * 2 + 2 * 1024 * 12 * 128 * 128 * 4 + (512 + 1024) * 12 * 13824
     + N_KDA * kda_buffers(8)),
    ("0.34.0", "bfloat16", 8192 * 12 * 128 * 2 + 2 * 1024 * 12 * 128 * 128 * 2 + (512 + 1024) * 12 * 13824),
    ("0.33.0", None, N_KDA * kda_buffers(8)),  # 0.33's KimiK3DeltaAttention reserves no workspace at init
])
def test_flashkda_workspace_in_the_weights_term(version, ssm, expected):
    from vramplan.render.json import plan_to_dict

    kw = {"mamba_ssm_cache_dtype": ssm} if ssm else {}
    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768, vllm_version=version, **kw)
    assert p.engine.max_num_batched_tokens == 8192 and p.engine.max_num_seqs == 1024
    term = plan_to_dict(p)["ranks"][0]["terms"]["weights"]
    assert term["bytes"] == total(8) + expected


@pytest.mark.parametrize("tp,copies", [(8, True), (16, False)])
def test_fused_decode_copies_follow_the_heads_a_rank(tp, copies):
    # is_fused_kda_decode_supported: 96 / 8 = 12 heads a rank is supported, 96 / 16 = 6 is not (Triton decode)
    from vramplan.render.json import plan_to_dict

    p = plan(MODEL, device="h200", tensor_parallel_size=tp, max_model_len=32768, vllm_version="0.33.0")
    parts = plan_to_dict(p)["ranks"][0]["terms"]["weights"]["parts_gib"]
    assert ("KDA fused-decode weight copies (float32)" in parts) == copies


def test_sequence_parallel_replicates_the_dense_mlp_and_shared_experts():
    # KimiDecoderLayer.use_sequence_parallel (PP 1, EP, TP 8, DP 2): KimiMLP with disable_tp -> each rank holds the
    # whole dense MLP (layer 0) and the whole shared experts (92 MoE layers) instead of a TP 8 shard
    from vramplan.render.json import plan_to_dict

    p = plan(MODEL, device="h200", tensor_parallel_size=8, data_parallel_size=2, enable_expert_parallel=True,
             max_model_len=32768, vllm_version="0.33.0")
    parts = plan_to_dict(p)["ranks"][0]["terms"]["weights"]
    got = parts["bytes"] - p.logged_rank.weights.total_bytes - N_KDA * kda_buffers(8)
    expected = 3 * (INTER - INTER // 8) * H * B + (LAYERS - 1) * 3 * (MOE_I * SHARED - MOE_I * SHARED // 8) * H * B
    assert got == expected
    # DP 1 (no sequence parallel): nothing replicated
    q = plan(MODEL, device="h200", tensor_parallel_size=8, enable_expert_parallel=True, max_model_len=32768,
             vllm_version="0.33.0")
    assert plan_to_dict(q)["ranks"][0]["terms"]["weights"]["bytes"] == (
        q.logged_rank.weights.total_bytes + N_KDA * kda_buffers(8))


@pytest.mark.parametrize("prefix_caching,blocks", [(True, 3), (False, 1)])
def test_flashkda_prefill_checkpoint_block_in_align_mode(prefix_caching, blocks):
    # KimiK3DeltaAttention.get_kv_cache_spec: num_prefill_checkpoint_blocks = 1 under FlashKDA (Hopper, bf16);
    # MambaSpec.max_memory_usage_bytes: align mode (prefix caching on) 2 + 1 pages a request, else 1
    from vramplan.rules.kv import max_memory_usage_bytes

    p = plan(MODEL, device="h200", tensor_parallel_size=8, max_model_len=32768, device_memory_gib=None,
             enable_prefix_caching=prefix_caching)
    mamba = [g.spec for g in p.logged_rank.layout.groups if g.spec.kind is LayerKind.MAMBA]
    assert mamba and all(max_memory_usage_bytes(s, max_model_len=32768, max_in_flight_tokens=8192)
                         == blocks * 768 * 1152 for s in mamba)
