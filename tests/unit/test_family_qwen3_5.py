"""Qwen3.5 / Qwen3.6 (GDN hybrid, dense and MoE, Qwen3-VL tower): weights and KV pages by hand from the configs.

Read from vLLM v0.34.0 source only (vllm/models/qwen3_5/nvidia/model.py, qwen_gdn_linear_attn.py,
mamba_utils.py); no real startup was checked. Every expected number below is arithmetic on the config values.
"""

import pytest

import vramplan
from vramplan.api import load_model
from vramplan.model.description import LayerKind
from vramplan.rules.kv import layer_specs
from vramplan.rules.weights import weights_per_rank


def _parts(model_id, **kw):
    m = load_model(model_id)
    return m, weights_per_rank(m, dtype="bfloat16", quant=None, **kw)


def test_qwen3_5_27b_text_weights_tp1():
    m, w = _parts("Qwen/Qwen3.5-27B")
    assert m.family == "qwen3_5" and m.is_multimodal and m.vision is not None
    # hidden 5120, vocab 248320 (a multiple of 64: no padding), untied head
    assert w.part("embed") == 248320 * 5120 * 2 == w.part("lm_head")
    # 64 layers, every 4th full attention: 48 GDN + 16 full.
    # GDN: nk 16, nv 48, dk = dv = 128 -> key_dim 2048, value_dim 6144, conv_dim 2*2048+6144 = 10240
    gdn = (2 * 2048 + 2 * 6144) * 5120  # in_proj_qkvz [k, k, v, v]
    gdn += 2 * 48 * 5120  # in_proj_ba [b, a]
    gdn += 10240 * 4  # conv1d (kernel 4)
    gdn += 48  # dt_bias (model dtype)
    gdn += 6144 * 5120  # out_proj
    a_log = 48 * 4  # A_log is float32
    # gated full attention: 24 heads x2 (query + output gate), 4 kv heads, head 256
    full = (24 * 2 + 2 * 4) * 256 * 5120 + 5120 * 24 * 256
    assert w.part("attention") == 48 * (gdn * 2 + a_log) + 16 * full * 2
    # dense MLP, intermediate 17408
    assert w.part("mlp") == 64 * (2 * 17408 * 5120 + 17408 * 5120) * 2
    # norms: 2 x 5120 per layer; GDN gated norm 128; q/k norms 256 each; final norm 5120
    assert w.part("norm") == (48 * (2 * 5120 + 128) + 16 * (2 * 5120 + 2 * 256) + 5120) * 2


def test_qwen3_5_35b_a3b_moe_weights_tp2():
    m, w = _parts("Qwen/Qwen3.5-35B-A3B", tp=2)
    assert m.moe is not None and m.moe.num_experts == 256
    # hidden 2048, 40 layers, 256 experts of 512, shared expert 512, all layers MoE
    experts = 256 * (2 * 512 * 2048 + 2048 * 512) // 2  # FusedMoE split by TP 2 (intermediate)
    router = 256 * 2048  # replicated
    shared = (2 * 512 * 2048 + 2048 * 512) // 2 + 2048  # shared_expert (TP split) + shared_expert_gate (1 x H)
    assert w.part("moe") + w.part("mlp") == 40 * (experts + router + shared) * 2


def test_qwen3_5_kv_pages_by_hand():
    m = load_model("Qwen/Qwen3.5-27B")
    specs = layer_specs(m, tp=1, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    full = [s for s in specs.values() if s.kind is LayerKind.FULL]
    mamba = [s for s in specs.values() if s.kind is LayerKind.MAMBA]
    assert len(full) == 16 and len(mamba) == 48
    # full attention: 16 tokens x 4 kv heads x (256 K + 256 V) x 2 bytes
    assert full[0].page_bytes == 16 * 4 * 512 * 2
    # GDN state: conv (kernel-1) x conv_dim x bf16 + temporal nv x dk x dv x float32 (mamba_ssm_dtype)
    assert mamba[0].page_bytes == 3 * 10240 * 2 + 48 * 128 * 128 * 4 == 3_207_168
    # TP 4: conv_dim and value heads split
    specs4 = layer_specs(m, tp=4, block_size=16, kv_cache_dtype="auto", model_dtype="bfloat16")
    m4 = next(s for s in specs4.values() if s.kind is LayerKind.MAMBA)
    assert m4.page_bytes == 3 * (10240 // 4) * 2 + (48 // 4) * 128 * 128 * 4


def test_qwen3_5_hybrid_block_on_hopper():
    # v0.33 on Hopper: attention block = 64 x cdiv(mamba page, 64 x attention bytes per token)
    # (GDN prefill-checkpoint alignment 64); 27B TP 2: attention 2 kv heads x 512 x 2 = 2048 B/token,
    # state 3 x 5120 x 2 + 24 x 128 x 128 x 4 = 1,603,584 B -> cdiv(1603584, 131072) = 13 -> 832 tokens
    p = vramplan.plan("Qwen/Qwen3.5-27B", device="h100-80gb", vllm_version="0.33.0", tensor_parallel_size=2,
                      max_model_len=32768, max_num_seqs=128)
    assert p.engine.block_size == 64 * -(-1603584 // (64 * 2048)) == 832
    assert p.verdict == "starts"


@pytest.mark.parametrize("model_id, tp, device", [
    ("Qwen/Qwen3.5-9B", 1, "h100-80gb"),
    ("Qwen/Qwen3.5-27B", 2, "h100-80gb"),
    ("Qwen/Qwen3.5-35B-A3B", 2, "h100-80gb"),
    ("Qwen/Qwen3.5-122B-A10B", 4, "h100-80gb"),
    ("Qwen/Qwen3.5-397B-A17B", 8, "h200"),
])
def test_qwen3_5_plans_start(model_id, tp, device):
    p = vramplan.plan(model_id, device=device, tensor_parallel_size=tp, max_model_len=32768, max_num_seqs=128)
    assert p.verdict == "starts", (p.error_kind, p.error_message)
    assert p.num_gpu_blocks and p.num_gpu_blocks > 0


def test_mamba_blocks_check_and_its_fix():
    # vLLM's default max_num_seqs on H100 (1024) exceeds the blocks left for 27B on one GPU: vLLM's
    # "max_num_seqs (1024) exceeds available Mamba cache blocks (N)" and its advice, lower max_num_seqs to N
    p = vramplan.plan("Qwen/Qwen3.5-27B", device="h100-80gb", vllm_version="0.33.0", max_model_len=32768)
    assert p.verdict == "fails" and "exceeds available Mamba cache blocks" in p.error_message
    import re

    n = int(re.search(r"Mamba cache blocks \((\d+)\)", p.error_message).group(1))
    from vramplan.engines.vllm.fixes import smallest_fix

    fix = smallest_fix(p)
    # fewer sequences also capture fewer CUDA graphs, so the fix may settle a block or two below vLLM's N
    m = int(re.match(r"lower --max-num-seqs to (\d+)", fix).group(1))
    assert n - 3 <= m <= n
    fixed = vramplan.plan("Qwen/Qwen3.5-27B", device="h100-80gb", vllm_version="0.33.0", max_model_len=32768,
                          max_num_seqs=m)
    assert fixed.verdict == "starts"


def test_qwen3_5_rope_cache_is_not_enlarged_without_pruning():
    # vLLM 0.33/0.34: mrope_positions_factor is 1 unless multimodal pruning: 262144 positions x (256 x 0.25) bf16
    m = load_model("Qwen/Qwen3.5-27B")
    assert [p.shape for p in m.buffer_params] == [(262144, 64)]  # the vision tower's own buffers are apart
