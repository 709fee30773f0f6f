"""Nemotron-H / Nemotron-3 (Mamba-2 + attention + MLP/MoE): weights and KV pages by hand from the configs.

Read from vLLM v0.34.0 source only (nemotron_h.py, mamba_mixer2.py, mamba_utils.py); no real startup was checked.
"""

import pytest

import vramplan
from vramplan.api import load_model
from vramplan.model.description import LayerKind, MambaSpec
from vramplan.rules.kv import _mamba_state_bytes, layer_specs
from vramplan.rules.weights import weights_per_rank

NANO = "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"
H56 = "nvidia/Nemotron-H-56B-Base-8K"


def test_nano_weights_tp1_by_hand():
    m = load_model(NANO)
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=1)
    # pattern MEMEM*EMEMEM*...: 23 Mamba, 23 MoE, 6 attention layers; hidden 2688, vocab 131072, untied
    assert w.part("embed") == w.part("lm_head") == 131072 * 2688 * 2
    # Mamba-2: H 64, head 64 -> I 4096; G 8, N 128 -> conv_dim 4096 + 2*8*128 = 6144; kernel 4
    in_proj = (2 * 4096 + 2 * 8 * 128 + 64) * 2688  # z, x, B, C, dt
    conv = 6144 * 4 + 6144  # weight + bias (use_conv_bias)
    d_dt = 64 + 64  # D, dt_bias (model dtype); A is float32
    out_proj = 2688 * 4096
    mamba = (in_proj + conv + d_dt + out_proj) * 2 + 64 * 4
    # attention: 32 heads, 2 kv heads, head 128, no bias, no rope
    attn = ((32 + 2 * 2) * 128 * 2688 + 2688 * 32 * 128) * 2
    assert w.part("attention") == 23 * mamba + 6 * attn
    # MoE: 128 experts, relu2 (non-gated): w13 is E x I x H, w2 E x H x I; I 1856; shared expert 3712 (up + down);
    # router 128 x 2688 (model dtype), e_score_correction_bias float32
    moe = (2 * 128 * 1856 * 2688 + 128 * 2688 + 2 * 3712 * 2688) * 2 + 128 * 4
    assert w.part("moe") == 23 * moe
    # norms: one RMSNorm per layer (52), final norm, Mamba gated norm (4096) in 23 layers
    assert w.part("norm") == (52 * 2688 + 2688 + 23 * 4096) * 2
    assert m.buffer_params == ()  # no rotary embedding in NemotronHAttention


def test_nano_kv_pages_and_block_by_hand():
    m = load_model(NANO)
    specs = layer_specs(m, tp=1, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    kinds = [s.kind for s in specs.values()]
    assert kinds.count(LayerKind.FULL) == 6 and kinds.count(LayerKind.MAMBA) == 23 and len(specs) == 29
    full = next(s for s in specs.values() if s.kind is LayerKind.FULL)
    mamba = next(s for s in specs.values() if s.kind is LayerKind.MAMBA)
    assert full.page_bytes == 16 * 2 * (128 + 128) * 2
    # conv (kernel-1) x conv_dim x bf16 + temporal H x head x N x float32 (mamba_ssm_cache_dtype)
    assert mamba.page_bytes == 3 * 6144 * 2 + 64 * 64 * 128 * 4 == 2_134_016
    # Hopper, v0.33: Mamba-2 layers declare no prefill-checkpoint alignment, so the attention block is
    # 16 x cdiv(state, 16 x 1024 B/token) = 16 x 131 = 2096 (TP 1); TP 2 halves both sides: the same block
    p = vramplan.plan(NANO, device="h100-80gb", vllm_version="0.33.0", max_model_len=32768, max_num_seqs=128)
    assert p.engine.block_size == 16 * -(-2_134_016 // (16 * 1024)) == 2096
    assert p.verdict == "starts"


def test_mamba2_groups_replicated_up_to_tp():
    # n_groups 1 at TP 4: vLLM extends the groups to 4 (extra_groups_for_head_shards), conv_dim = I + 2 x 4 x N
    spec = MambaSpec(kind="mamba2", conv_dim=4096 + 2 * 1 * 128, conv_kernel=4, num_heads=64, head_k_dim=64,
                     head_v_dim=128, state_dtype="float32", n_groups=1, state_size=128)
    conv = (4096 + 2 * 4 * 128) // 4 * 3 * 2
    ssm = 64 // 4 * 64 * 128 * 4
    assert _mamba_state_bytes(spec, tp=4, model_dtype="bfloat16", ssm_dtype=None) == conv + ssm
    # 8 groups at TP 4: divisible, no extension
    spec8 = MambaSpec(kind="mamba2", conv_dim=4096 + 2 * 8 * 128, conv_kernel=4, num_heads=64, head_k_dim=64,
                      head_v_dim=128, state_dtype="float32", n_groups=8, state_size=128)
    assert _mamba_state_bytes(spec8, tp=4, model_dtype="bfloat16", ssm_dtype=None) == \
        (4096 + 2048) // 4 * 3 * 2 + ssm


def test_56b_dense_mlp_layers_by_hand():
    m = load_model(H56)
    w = weights_per_rank(m, dtype="bfloat16", quant=None, tp=4)
    # 54 '-' layers: up (32768 x 8192, column) + down (8192 x 32768, row), non-gated, split by TP 4
    assert w.part("mlp") == 54 * (32768 * 8192 // 4 + 8192 * 32768 // 4) * 2
    assert m.moe is None and m.max_position_embeddings == 8192


@pytest.mark.parametrize("model_id, tp, max_len", [(NANO, 1, 32768), (NANO, 2, 131072), (H56, 4, 8192)])
def test_nemotron_plans_start(model_id, tp, max_len):
    p = vramplan.plan(model_id, device="h100-80gb", tensor_parallel_size=tp, max_model_len=max_len, max_num_seqs=128)
    assert p.verdict == "starts", (p.error_kind, p.error_message)


def test_bad_pattern_is_a_clear_error():
    from vramplan.errors import ConfigError
    from vramplan.model.from_config import describe_config

    cfg = dict(load_model(NANO).hf_config)
    cfg["hybrid_override_pattern"] = "MX" + cfg["hybrid_override_pattern"][2:]
    with pytest.raises(ConfigError, match="unknown layer type 'X'"):
        describe_config(cfg, name="bad")


def test_mixer_activation_per_token_by_hand():
    from vramplan.estimate.activation import _mixer_per_token

    m = next(layer.mamba for layer in load_model(NANO).layers if layer.mamba)
    # Mamba-2, TP 2: in_proj out 2I + 2GN + H = 8192 + 2048 + 64, conv out I + 2GN = 6144, SSM out I = 4096
    assert _mixer_per_token(m, 2) == (8192 + 2048 + 64 + 6144 + 4096) // 2
    g = next(layer.mamba for layer in load_model("Qwen/Qwen3.5-27B").layers if layer.mamba)
    # GDN, TP 1: qkvz 2K + 2V = 16384, ba 2 x 48, conv out 10240, core out V = 6144
    assert _mixer_per_token(g, 1) == 16384 + 96 + 10240 + 6144
