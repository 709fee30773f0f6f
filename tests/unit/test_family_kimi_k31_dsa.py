"""Kimi-K3.1: DSA (a sparse-attention indexer) on Kimi-K3's MLA layers, as vLLM 0.34 builds it.

THE CONFIG IS CONSTRUCTED: no Kimi-K3.1 config exists in /work/shared/model-configs. It is the bundled Kimi-K3
config plus a ``text_config.dsa_config`` with the keys vLLM 0.34's ``KimiLinearDSAConfig``
(vllm/transformers_utils/configs/kimi_linear.py) reads, valued from vLLM's defaults or what its source documents:
``dsa_layers`` = the MLA (full-attention) layers (nvidia/dsa.py: "Kimi-K3.1 puts DSA on every full-attention
(MLA) layer"), ``index_head_dim`` 128 (common/dsa_cache.py: "FP8 (132 B/token) indexer keys"), ``index_num_heads``
16 and ``index_topk`` 2048 (the defaults), ``index_rope_dim`` 0 ("Kimi-K3.1 is NoPE + index_rope_dim 0"),
``index_k_norm_type`` "layernorm" (the fused key insert's norm), ``index_topk_freq`` 1.

Expected numbers are hand calculations from these config values, written out below (vLLM 0.34.0 source only:
vllm/models/kimi_k3/nvidia/dsa.py, model.py, common/dsa_cache.py, vllm/v1/core/kv_cache_planning.py,
vllm/platforms/interface.py, vllm/model_executor/layers/sparse_attn_indexer.py); nothing measured.
"""

from __future__ import annotations

import json
import math

import pytest

from vramplan.api import plan
from vramplan.errors import InputError, UnsupportedError
from vramplan.model.description import LayerKind
from vramplan.model.from_config import describe_config, text_config_of
from vramplan.model.quant import parse_quant
from vramplan.rules.weights import weights_per_rank

H, Q_LORA, B = 7168, 1536, 2           # hidden_size, q_lora_rank, bfloat16
N_KDA, N_MLA = 69, 24                  # len(kda_layers), len(full_attn_layers)
KDA_HEADS, KDA_DIM, KERNEL = 96, 128, 4
P = KDA_HEADS * KDA_DIM
MLA_BYTES = 512 + 64                   # kv_lora_rank + qk_rope_head_dim
IDX_DIM, IDX_HEADS, TOPK = 128, 16, 2048

# one DSA layer's indexer (KimiK3DSAIndexer): wq_index (16 x 128, q_lora) and wkv_index (128 + 16, hidden) in bf16
# (the checkpoint's ignore list keeps self_attn unquantized; Mxfp4Config quantizes no linear), a float32 LayerNorm
INDEXER = IDX_HEADS * IDX_DIM * Q_LORA * B + (IDX_DIM + IDX_HEADS) * H * B + 2 * IDX_DIM * 4   # 8,356,864
ENTRY = IDX_DIM + 4                    # indexer_cache_entry_bytes: fp8 keys + one float32 scale a token (132)


def _raw(arch: str = "KimiK31ForConditionalGeneration", **dsa) -> dict:
    from vramplan.inputs.model_source import catalog_root

    cfg = json.loads((catalog_root() / "moonshotai/Kimi-K3/config.json").read_text())
    cfg["architectures"] = [arch]
    t = cfg["text_config"]
    d = {"dsa_layers": list(t["linear_attn_config"]["full_attn_layers"]), "index_topk": TOPK,
         "index_head_dim": IDX_DIM, "index_num_heads": IDX_HEADS, "index_rope_dim": 0,
         "index_k_norm_type": "layernorm", "index_topk_freq": 1}
    d.update(dsa)
    t["dsa_config"] = {k: v for k, v in d.items() if v is not None}
    return cfg


def _dir(tmp_path, cfg: dict, name: str = "k31") -> str:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return str(d)


def kda_state(tp: int, ssm_bytes: int = 4) -> int:
    """MambaStateShapeCalculator.kda_state_shape: conv (3P / tp, kernel - 1) bf16 + (heads / tp, 128, 128)."""
    return (3 * P // tp) * (KERNEL - 1) * B + (KDA_HEADS // tp) * KDA_DIM * KDA_DIM * ssm_bytes


def aligned(row: int, kv: str, entry: int) -> int:
    """_get_kv_cache_bytes_per_block: the row rounded up to the lcm of the cache layers' block-stride alignments
    (customize_attention_spec): the indexer backend's fixed 64-token kernel blocks (64 x entry bytes), the MLA
    backend's rows (FLASH_ATTN_MLA_SPARSE, bf16: one 1,152-byte token) or 64-token pages (FLASHMLA_SPARSE, fp8 on
    SM90: 64 x 656); KDA states align to 1 byte."""
    align = math.lcm(64 * entry, 64 * 656 if kv == "fp8" else 1152)
    return -(-row // align) * align


def hybrid_block(tp: int, per_token: int) -> int:
    """Platform._align_hybrid_block_size (MLA: 128-aligned): 128 x cdiv(state, 128 x one MLA token)."""
    return 128 * -(-kda_state(tp) // (128 * per_token))


@pytest.mark.parametrize("tp", [1, 8])
@pytest.mark.parametrize("arch", ["KimiK3ForConditionalGeneration", "KimiK31ForConditionalGeneration"])
def test_indexer_weights_and_topk_buffer_per_rank(tp, arch):
    # every DSA layer adds one replicated indexer; the model adds one (max_num_batched_tokens, index_topk) int32
    # topk_indices_buffer (KimiLinearModel.__init__); the rest equals Kimi-K3 (same arch, same quantization: Mxfp4Config
    # for the K3 name, compressed-tensors whose ignore list 're:.*self_attn.*' keeps the indexer in bf16 for K3.1)
    k3 = _raw(arch)
    del k3["text_config"]["dsa_config"]
    a = describe_config(_raw(arch), name="k31")
    b = describe_config(k3, name="k3")
    q = parse_quant(text_config_of(a.hf_config)["quantization_config"])
    kw = dict(dtype="bfloat16", quant=q, tp=tp, vision_replicated=True, max_num_batched_tokens=8192)
    got = weights_per_rank(a, **kw).total_bytes - weights_per_rank(b, **kw).total_bytes
    assert got == N_MLA * INDEXER + 8192 * TOPK * 4


def test_rmsnorm_key_norm_is_one_model_dtype_weight():
    a = describe_config(_raw(index_k_norm_type="rmsnorm"), name="k31")
    mla = next(layer_params for spec, layer_params in zip(a.layers, a.layer_params) if spec.kind is LayerKind.MLA)
    norm = [p for p in mla if "k_index_norm" in p.name]
    assert len(norm) == 1 and norm[0].shape == (IDX_DIM,) and norm[0].dtype is None


@pytest.mark.parametrize("kv,tp", [("auto", 8), ("auto", 1), ("fp8", 8)])
def test_packed_kv_layout_by_hand(tmp_path, kv, tp):
    # Block: the hybrid alignment of ONE MLA token (cache_config.cache_dtype: 1,152 B bf16, 576 B fp8; the fp8_ds_mla
    # record is not what _align_hybrid_block_size sees) with one KDA state:
    #   TP 8 bf16: state 814,080 -> 128 x cdiv(814,080, 147,456) = 768;  TP 1: 6,512,640 -> 128 x 45 = 5,760
    #   TP 8 fp8:  128 x cdiv(814,080, 73,728) = 1,536
    per_token_align = MLA_BYTES * (1 if kv == "fp8" else 2)
    block = hybrid_block(tp, per_token_align)
    assert (tp, kv, block) in {(8, "auto", 768), (1, "auto", 5760), (8, "fp8", 1536)}
    # pages: MLA bf16 1,152 B/token, or the 656-byte fp8_ds_mla record (FLASHMLA_SPARSE on SM90); indexer 132 B/token;
    # the KDA page padded to one MLA page of the alignment
    mla_page = block * (656 if kv == "fp8" else 1152)
    idx_page = block * ENTRY
    kda_page = block * per_token_align
    # _get_packed_kv_cache_groups (BLHNC from KimiK3IndexerBackend): the MLA + indexer bucket is balanced (24 + 24),
    # min repeats 24; _approximate_gcd([24, 69], >= 24) = 24 (padding 3) -> one attention group of 48 cache layers;
    # the KDA bucket is a state bucket: max(cdiv(69, 24), cdiv(69, states a block row fits)) = 3 groups of 23
    row = N_MLA * (mla_page + idx_page)
    assert -(-N_KDA // max(row // kda_page, 1)) <= 3
    p = plan(_dir(tmp_path, _raw()), device="h200", tensor_parallel_size=tp, max_model_len=32768, kv_cache_dtype=kv)
    assert p.engine.block_size == block
    assert p.engine.kv_cache_dtype == ("fp8_ds_mla" if kv == "fp8" else "auto")
    lay = p.logged_rank.layout
    assert lay.packed and lay.bytes_per_block == aligned(row, kv, ENTRY)
    attn = [g for g in lay.groups if g.spec.kind is LayerKind.MLA]
    kda = [g for g in lay.groups if g.spec.kind is LayerKind.MAMBA]
    assert len(attn) == 1 and len(attn[0].layers) == 2 * N_MLA
    assert [len(g.layers) for g in kda] == [23, 23, 23] and {g.spec.page_bytes for g in kda} == {kda_page}
    # written out: 934 x 25,344; 7,004 x 25,344; 21 x 1,385,472
    assert lay.bytes_per_block in (23_671_296, 177_509_376, 29_094_912)


def test_default_index_head_dim_stores_68_bytes_a_token(tmp_path):
    # vLLM's default index_head_dim 64: Kimi stores 64 + 4 (one scale a token); DeepSeek-V3.2's formula would give
    # 64 + 64 // 128 x 4 = 64
    p = plan(_dir(tmp_path, _raw(index_head_dim=None)), device="h200", tensor_parallel_size=8, max_model_len=32768)
    assert p.logged_rank.layout.bytes_per_block == aligned(N_MLA * 768 * (1152 + 68), "auto", 68)


def _trimmed(**dsa) -> dict:
    cfg = _raw(**dsa)
    cfg["text_config"]["num_experts"] = 16  # constructed further: 16 routed experts so TP 8 fits an H200
    return cfg


def test_blocks_and_capacity_of_a_starting_plan(tmp_path):
    p = plan(_dir(tmp_path, _trimmed()), device="h200", tensor_parallel_size=8, max_model_len=32768)
    assert p.starts, p.error_message
    row = aligned(N_MLA * 768 * (1152 + ENTRY), "auto", ENTRY)   # 23,666,688 rounded to 25,344: 23,671,296
    assert p.num_gpu_blocks == p.logged_rank.available_kv_bytes // row
    # a request: cdiv(32768, 768) = 43 attention blocks + 3 KDA groups x (2 + 1 FlashKDA checkpoint) in align mode
    assert p.engine.mamba_cache_mode == "align"
    assert p.max_concurrency == pytest.approx(p.num_gpu_blocks / (43 + 3 * 3))


@pytest.mark.parametrize("max_len,growth,logits", [
    # sparse_attn_indexer's dummy run: K-gather views T x 128 fp8 + T x 4 + 1 MiB radix workspace, T = max_model_len x
    # (1152 // 132 = 8) x (5 up to 256K, else 2); the shared buffer already holds the FlashKDA request
    # (8192 x 12 x 128 x 2 + 2 x 1024 x 12 x 128 x 128 x 4 + (512 + 1024) x 12 x 13824 = 1,890,582,528 bytes at TP 8,
    # H200 defaults T = 8192, N = 1024). Logits: max(512 MiB, 1024 decode rows x max_model_len x 4)
    (32768, 0, 512 * 2**20),
    (1048576, 1048576 * 8 * 2 * (128 + 4) + 2**20 - 1_890_582_528, 1024 * 1048576 * 4),
])
def test_indexer_profile_workspace(tmp_path, max_len, growth, logits):
    p = plan(_dir(tmp_path, _raw()), device="h200", tensor_parallel_size=8, max_model_len=max_len)
    term = next(t for t in p.logged_rank.terms if t.key == "activation_peak")
    parts = dict(term.parts)
    assert parts.get("DSA indexer K-gather workspace (shared buffer grown in the profile run, kept)", 0) == growth
    assert parts["DSA indexer dummy logits (transient)"] == logits


def test_fp8_kv_shares_the_workspace_with_flashmla_sparse(tmp_path):
    # FLASHMLA_SPARSE (fp8 on SM90) reserves its views in the same grow-only buffer as FlashKDA: the buffer is the
    # larger request, so the FlashKDA part is what exceeds FLASHMLA_SPARSE's (here nothing)
    p = plan(_dir(tmp_path, _raw()), device="h200", tensor_parallel_size=8, max_model_len=32768, kv_cache_dtype="fp8")
    parts = dict(p.logged_rank.terms[0].parts)
    flashmla = parts["FLASHMLA_SPARSE workspace reserved while the model is built (read from source)"]
    # q_concat (8192, 12, 576) + prefill (5 x 32768, 576) + (8192, 64, 576) + (8192, 64, 512) + (8192, 12, 512) bf16
    assert flashmla == 2 * (8192 * 12 * 576 + 5 * 32768 * 576 + 8192 * 64 * 576 + 8192 * 64 * 512 + 8192 * 12 * 512)
    kda = parts["FlashKDA prefill workspace beyond the FLASHMLA_SPARSE views (one shared buffer)"]
    assert kda == max(1_890_582_528 - flashmla, 0)


@pytest.mark.parametrize("arch", ["KimiK3ForConditionalGeneration", "KimiK31ForConditionalGeneration"])
def test_vllm_033_refuses_kimi_k31_in_one_line(tmp_path, arch):
    with pytest.raises(UnsupportedError) as exc:
        plan(_dir(tmp_path, _raw(arch)), device="h200", tensor_parallel_size=8, vllm_version="0.33.0")
    line = exc.value.one_line()
    assert "0.34.0" in line and "\n" not in line


@pytest.mark.parametrize("change,match", [
    ({"dsa_layers": None}, "dsa_layers"),
    ({"index_num_heads": 65}, "at most 64"),
    ({"index_topk_freq": 2}, "index_topk_freq"),
    ({"index_topk_freq": 0}, "index_topk_freq"),
    ({"index_rope_dim": 64}, "mla_use_nope"),
    ({"index_rope_dim": 3}, "even"),
    ({"index_k_norm_type": "batchnorm"}, "index_k_norm_type"),
    ({"dsa_layers": [1, 4]}, "KDA layers"),
    ({"dsa_layers": [4, 8]}, "some of the MLA layers"),
    ({"index_head_dim": "128"}, "not an integer"),
])
def test_bad_dsa_configs_are_one_line_input_errors(change, match):
    with pytest.raises(InputError, match=match) as exc:
        describe_config(_raw(**change), name="k31")
    assert "\n" not in exc.value.one_line()


def test_layers_alias_and_unknown_keys():
    # KimiLinearDSAConfig.from_dict: "layers" stands for dsa_layers; unknown keys are ignored with a warning
    cfg = _raw()
    d = cfg["text_config"]["dsa_config"]
    d["layers"] = d.pop("dsa_layers")
    d["index_future_knob"] = 1
    m = describe_config(cfg, name="k31")
    assert sum(1 for layer in m.layers if layer.attention is not None and layer.attention.indexer_packed) == N_MLA
    assert any("index_future_knob" in n for n in m.notes)


def test_cli_matrix_plans_or_refuses_in_one_line(tmp_path, capsys):
    # TP 1/2/4/8 on H100/H200 at 0.33 and 0.34, table and --json: a plan (exit 0) or one clean line (exit 2)
    from vramplan.cli import main

    path = _dir(tmp_path, _raw())
    for version in ("0.33.0", "0.34.0"):
        for device in ("h100-80gb", "h200"):
            for tp in (1, 2, 4, 8):
                for js in ((), ("--json",)):
                    capsys.readouterr()
                    code = main(["plan", path, "--device", device, "--vllm-version", version, *js, "-tp", str(tp)])
                    out, err = capsys.readouterr()
                    if version == "0.33.0":
                        assert code == 2 and len(err.strip().splitlines()) == 1, (version, device, tp, js, err)
                        if js:
                            assert "0.34.0" in json.loads(out)["error"]
                    else:
                        assert code == 0, (version, device, tp, js, err)
                        if js:
                            assert json.loads(out)["verdict"] in ("starts", "fails")


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
@pytest.mark.parametrize("kv", ["auto", "fp8"])
@pytest.mark.parametrize("idx_dim", [64, 128])
def test_packed_layout_matrix(tmp_path, tp, kv, idx_dim):
    # the same hand rules over TP, KV dtype and index_head_dim: one MLA + indexer group of every DSA layer's pages,
    # the 69 KDA states in max(cdiv(69, 24), cdiv(69, row // KDA page)) groups of near-equal size
    align_token = MLA_BYTES * (1 if kv == "fp8" else 2)
    block = hybrid_block(tp, align_token)
    row = N_MLA * block * ((656 if kv == "fp8" else 1152) + idx_dim + 4)
    kda_page = block * align_token
    n = max(-(-N_KDA // 24), -(-N_KDA // max(row // kda_page, 1)))
    p = plan(_dir(tmp_path, _raw(index_head_dim=idx_dim)), device="h100-80gb", tensor_parallel_size=tp,
             max_model_len=65536, kv_cache_dtype=kv)
    lay = p.logged_rank.layout
    assert p.engine.block_size == block and lay.bytes_per_block == aligned(row, kv, idx_dim + 4)
    kda = [g for g in lay.groups if g.spec.kind is LayerKind.MAMBA]
    assert len(kda) == n and sorted(i for g in kda for i in g.layers) == sorted(
        i for i, layer in enumerate(p.model.layers) if layer.kind is LayerKind.MAMBA)
    assert {len(g.layers) for g in kda} <= {N_KDA // n, -(-N_KDA // n)}


def test_b200_fp8_cache_on_flashinfer_mla_sparse(tmp_path):
    # SM10x keeps fp8 (576 B/token, FLASHINFER_MLA_SPARSE), whose customize_spec aligns blocks to 32 rows:
    # block 128 x cdiv(814,080, 73,728) = 1,536; row 24 x 1,536 x (576 + 132) = 26,099,712, rounded up to
    # lcm(32 x 576, 64 x 132) = 202,752: 129 x 202,752 = 26,155,008
    p = plan(_dir(tmp_path, _trimmed()), device="b200", tensor_parallel_size=8, max_model_len=32768,
             kv_cache_dtype="fp8")
    assert p.engine.kv_cache_dtype.startswith("fp8") and p.engine.kv_cache_dtype != "fp8_ds_mla"
    assert p.engine.block_size == 1536
    assert p.logged_rank.layout.bytes_per_block == 26_155_008 == -(-24 * 1536 * 708 // 202_752) * 202_752


def test_rocm_refuses_kimi_k31_in_one_line(tmp_path, capsys):
    # KimiK3DSAAttention: "Kimi-K3.1 DSA requires the CUDA FlashMLA sparse / DeepGEMM indexer kernels; ROCm is not
    # supported" (NotImplementedError while the model is built)
    from vramplan.cli import main

    code = main(["plan", _dir(tmp_path, _trimmed()), "--device", "mi300x", "-tp", "8"])
    err = capsys.readouterr().err
    assert code == 2 and "ROCm is not supported" in err and len(err.strip().splitlines()) == 1


def test_packed_state_buckets_are_capped_to_the_row():
    # vLLM 0.34 _get_packed_kv_cache_groups on a small hand-made case: 4 layers of (indexer 10 B + MLA 100 B) pages
    # and 9 mamba states of 100 B. _approximate_gcd([4, 9], >= 4): d = 4 pads 0 + 3, d = 5 pads 1 + 1 = 2 (least)
    # -> 5 repeats: one attention group (cdiv(4, 5)), the states cdiv(9, 5) = 2 groups ... but a row holds
    # anchor 4 x 110 = 440 B, i.e. 440 // 100 = 4 states, so cdiv(9, 4) = 3 groups (3, 3, 3); 440 B a block
    from vramplan.rules.kv import KVSpec, build_layout

    mla = KVSpec(kind=LayerKind.MLA, block_size=64, page_bytes=110, indexer_page_bytes=10, sub_specs=(
        KVSpec(kind=LayerKind.MLA, block_size=64, page_bytes=10, role="indexer"),
        KVSpec(kind=LayerKind.MLA, block_size=64, page_bytes=100, role="mla")))
    state = KVSpec(kind=LayerKind.MAMBA, block_size=64, page_bytes=100, mamba_mode="align")
    specs = {i: state for i in range(9)} | {i: mla for i in range(9, 13)}
    lay = build_layout(specs)
    assert lay.packed and lay.bytes_per_block == 440
    kinds = sorted(len(g.layers) for g in lay.groups if g.spec.kind is LayerKind.MAMBA)
    assert kinds == [3, 3, 3]
    assert [len(g.layers) for g in lay.groups if g.spec.kind is LayerKind.MLA] == [8]
