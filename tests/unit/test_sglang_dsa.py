"""SGLang's DSA pool (DeepSeek-V3.2, GLM-5): bytes per token written out from the configs and SGLang's source.

Sources (0.5.17 and 0.5.23): srt/model_executor/pool_configurator.py:DefaultPoolConfigurator._compute_cell_size
(0.5.23 _compute_dsa_indexer_cell_size), srt/mem_cache/kv_cache_configurator.py:calculate_mla_kv_cache_dim,
srt/mem_cache/memory_pool.py:DSATokenToKVPool (quant_block_size 128, index_k_with_scale_buffer_dtype uint8,
rope_storage_dtype bfloat16), srt/arg_groups/overrides.py:_dsa_kv_cache_dtype_default / _dsa_split_backend_resolution,
model_overrides/deepseek_v2.py (page size 64). Expected values are hand arithmetic, never read from the code.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_cli
from vramplan.engines import sglang
from vramplan.errors import InvalidConfig

# DeepSeek-V3.2 config.json: kv_lora_rank 512, qk_rope_head_dim 64, index_head_dim 128, 61 layers
# GLM-5 config.json: the same geometry, 78 layers
MLA_BF16 = (512 + 64) * 2                 # latent row, bf16: 1152 B
MLA_FP8_SCALED = 512 + 512 // 128 * 4 + 64 * 2  # flashmla_kv fp8 row: fp8 NoPE + f32 scales + bf16 RoPE = 656 B
MLA_FP8_RAW = (512 + 64) * 1              # trtllm fp8 row: 576 B
INDEXER = 128 + 128 // 128 * 4            # fp8 keys + one f32 scale per 128, uint8: 132 B
VERSIONS = ["0.5.17", "0.5.23"]


def _cell(p):
    return p.logged_stage.cell


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tp", [1, 8])
def test_v32_hopper_default_is_bf16_latent_plus_indexer(version, tp):
    # Hopper (SM90): --kv-cache-dtype auto -> bfloat16; the latent is not split by TP, nor the indexer
    p = sglang.plan("deepseek-ai/DeepSeek-V3.2", device="h200", tp_size=tp, sglang_version=version)
    assert p.resolved.kv_cache_dtype == "bfloat16"
    assert _cell(p).bytes_per_token == 61 * (MLA_BF16 + INDEXER) == 78324
    assert _cell(p).bytes_per_token != 61 * MLA_BF16 == 70272  # the old figure without the indexer
    assert p.resolved.page_size == 64 and p.resolved.attention_backend == "dsa"
    assert p.resolved.dsa.prefill_backend == "flashmla_sparse" and p.resolved.dsa.decode_backend == "fa3"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tp", [1, 8])
def test_v32_hopper_fp8_uses_the_scaled_656_byte_row(version, tp):
    p = sglang.plan("deepseek-ai/DeepSeek-V3.2", device="h200", tp_size=tp, sglang_version=version,
                    kv_cache_dtype="fp8_e4m3")
    assert p.resolved.dsa.decode_backend == "flashmla_kv"
    assert _cell(p).bytes_per_token == 61 * (MLA_FP8_SCALED + INDEXER) == 61 * 788 == 48068


@pytest.mark.parametrize("version", VERSIONS)
def test_v32_blackwell_default_is_fp8_trtllm_raw_row(version):
    p = sglang.plan("deepseek-ai/DeepSeek-V3.2", device="b200", tp_size=8, sglang_version=version)
    assert p.resolved.kv_cache_dtype == "fp8_e4m3" and p.resolved.dsa.decode_backend == "trtllm"
    assert _cell(p).bytes_per_token == 61 * (MLA_FP8_RAW + INDEXER) == 43188


def test_bf16_alias_and_refused_dtypes():
    p = sglang.plan("deepseek-ai/DeepSeek-V3.2", device="h200", tp_size=8, kv_cache_dtype="bf16")
    assert p.resolved.kv_cache_dtype == "bfloat16" and _cell(p).bytes_per_token == 78324
    with pytest.raises(InvalidConfig, match="DeepSeek DSA only supports bf16/bfloat16 or fp8_e4m3"):
        sglang.plan("deepseek-ai/DeepSeek-V3.2", device="h200", tp_size=8, kv_cache_dtype="fp8_e5m2")


def test_page_size_is_forced_to_64():
    p = sglang.plan("deepseek-ai/DeepSeek-V3.2", device="h200", tp_size=8, page_size=16)
    assert p.resolved.page_size == 64 and p.max_total_num_tokens % 64 == 0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("model", ["zai-org/GLM-5", "zai-org/GLM-5.1", "zai-org/GLM-5-FP8"])
def test_glm5_every_layer_has_an_indexer(version, model):
    p = sglang.plan(model, device="h200", tp_size=8, sglang_version=version)
    assert _cell(p).bytes_per_token == 78 * (MLA_BF16 + INDEXER) == 100152
    assert _cell(p).num_indexer_layers == 78


def test_glm52_shared_indexer_layers_per_release():
    cfg = json.loads((ROOT / "vramplan/catalog/zai-org/GLM-5.2/config.json").read_text())
    types = cfg["indexer_types"]
    assert len(types) == 78 and types.count("full") == 21 and types.count("shared") == 57
    # 0.5.23: _should_elide_dsa_index_k -> only the 21 "full" layers keep an index-K cache
    p23 = sglang.plan("zai-org/GLM-5.2", device="h200", tp_size=8, sglang_version="0.5.23")
    assert _cell(p23).bytes_per_token == 78 * MLA_BF16 + 21 * INDEXER == 92628
    # 0.5.17: _compute_cell_size adds the indexer on every layer
    p17 = sglang.plan("zai-org/GLM-5.2", device="h200", tp_size=8, sglang_version="0.5.17")
    assert _cell(p17).bytes_per_token == 78 * (MLA_BF16 + INDEXER) == 100152


def test_glm52_pipeline_stages_count_their_own_indexer_layers():
    cfg = json.loads((ROOT / "vramplan/catalog/zai-org/GLM-5.2/config.json").read_text())
    full = [i for i, t in enumerate(cfg["indexer_types"]) if t == "full"]
    # get_pp_indices: 78 // 2 = 39 layers each
    p = sglang.plan("zai-org/GLM-5.2", device="h200", tp_size=8, pp_size=2, sglang_version="0.5.23")
    for stage, (lo, hi) in zip(p.stages, [(0, 39), (39, 78)]):
        n = sum(1 for i in full if lo <= i < hi)
        assert stage.cell.bytes_per_token == 39 * MLA_BF16 + n * INDEXER


def test_non_dsa_mla_unchanged():
    # DeepSeek-V2-Lite has no index_topk: the plain MLA row, page size 1 on Hopper
    p = sglang.plan("deepseek-ai/DeepSeek-V2-Lite", device="h100-80gb")
    assert _cell(p).bytes_per_token == 576 * 27 * 2 and p.resolved.dsa is None and p.resolved.page_size == 1


def test_printed_kv_pool_line_and_log_use_the_dsa_cell():
    code, out, err = run_cli("plan", "deepseek-ai/DeepSeek-V3.2", "--engine", "sglang", "--device", "H200-141GB",
                             "--tp", "8")
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.strip().startswith("KV pool:") and " x " in x)
    tokens = int(line.split("KV pool:")[1].split("tokens")[0])
    assert line.split(" x ")[1].split(" B")[0] == "78324"
    assert tokens % 64 == 0
    # DSATokenToKVPool: (size + page) latent rows per layer + (size + page + 1) // page index pages of 64 x 132 B
    kv_bytes = 61 * (tokens + 64) * MLA_BF16 + 61 * ((tokens + 64 + 1) // 64) * 64 * INDEXER
    assert f"#tokens: {tokens}, KV size: {kv_bytes / 2**30:.2f} GB" in out
    code, out, err = run_cli("plan", "deepseek-ai/DeepSeek-V3.2", "--engine", "sglang", "--device", "H200-141GB",
                             "--tp", "8", "--json")
    e = json.loads(out)["engine"]
    assert e["kv_cell_bytes_per_token"] == 78324 and e["dsa"]["indexer_layers"] == 61
    assert e["dsa"]["mla_row_bytes"] == MLA_BF16 and e["dsa"]["indexer_bytes_per_layer"] == INDEXER


# The whole space the two releases see on CUDA: (model, layers, layers with their own top-k under 0.5.23)
_MODELS = {"deepseek-ai/DeepSeek-V3.2": (61, 61), "zai-org/GLM-5": (78, 78), "zai-org/GLM-5.2": (78, 21)}
# device -> SM major (Hopper 9, Blackwell 10)
_DEVICES = {"h100-80gb": 9, "h200": 9, "b200": 10}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device", sorted(_DEVICES))
@pytest.mark.parametrize("kv", ["auto", "bf16", "bfloat16", "fp8_e4m3"])
@pytest.mark.parametrize("model", sorted(_MODELS))
def test_cell_matrix(version, device, kv, model):
    layers, own_topk = _MODELS[model]
    sm = _DEVICES[device]
    dtype = {"auto": "fp8_e4m3" if sm >= 10 else "bfloat16", "bf16": "bfloat16"}.get(kv, kv)
    if dtype == "bfloat16":
        row = MLA_BF16
    else:  # fp8: Blackwell's trtllm reads the raw 576-byte row, Hopper's flashmla_kv the scaled 656-byte one
        row = MLA_FP8_RAW if sm >= 10 else MLA_FP8_SCALED
    idx_layers = own_topk if version == "0.5.23" else layers
    p = sglang.plan(model, device=device, tp_size=8, sglang_version=version, kv_cache_dtype=kv)
    assert p.resolved.kv_cache_dtype == dtype and p.resolved.page_size == 64
    assert _cell(p).bytes_per_token == layers * row + idx_layers * INDEXER
    if p.max_total_num_tokens:
        assert p.max_total_num_tokens % 64 == 0


def test_skip_topk_rule_by_hand():
    from vramplan.engines.sglang.dsa import skips_topk
    # index_topk_freq 4, no offset: max(i - 1, 0) % 4 == 0 computes its own top-k -> 0, 1, 5, 9
    own = [i for i in range(12) if not skips_topk({"index_topk_freq": 4}, i)]
    assert own == [0, 1, 5, 9]
    # offset 3: max(i - 2, 0) % 4 == 0 -> 0, 1, 2, 6, 10
    assert [i for i in range(12) if not skips_topk({"index_topk_freq": 4, "index_skip_topk_offset": 3}, i)] == [0, 1, 2, 6, 10]
    # cli_factor 3 (LongCat): every third layer; a pattern: "S" skips
    assert [i for i in range(7) if not skips_topk({"cli_factor": 3}, i)] == [0, 3, 6]
    assert [i for i in range(4) if skips_topk({"index_topk_pattern": "FSFS"}, i)] == [1, 3]
    # GLM-5.2's freq 4 / offset 3 agree with its explicit indexer_types, which 0.5.23 reads first
    cfg = json.loads((ROOT / "vramplan/catalog/zai-org/GLM-5.2/config.json").read_text())
    by_freq = {k: cfg[k] for k in ("index_topk_freq", "index_skip_topk_offset")}
    assert [skips_topk(by_freq, i) for i in range(78)] == [t == "shared" for t in cfg["indexer_types"]]
    # V3.2 has none of these keys: every layer computes its own top-k
    assert not any(skips_topk({}, i) for i in range(61))


@pytest.mark.parametrize("model", ["deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5"])
def test_0517_keeps_the_prefill_graph_for_every_dsa_model(model):
    # 0.5.17 _disable_breakable_cudagraph_if_incompatible: "MLA attention (non-DSA)" = use_mla_backend and not
    # is_deepseek_dsa; GlmMoeDsaForCausalLM is on is_deepseek_dsa's list as well as DeepseekV32ForCausalLM
    p = sglang.plan(model, device="h200", tp_size=8, sglang_version="0.5.17")
    assert p.resolved.prefill_graph
    assert not sglang.plan("deepseek-ai/DeepSeek-V2-Lite", device="h200", sglang_version="0.5.17").resolved.prefill_graph


def test_dsa_flags_read_and_unmodelled_ones_warned():
    from vramplan.engines.sglang.flags import parse_sglang_flags
    parsed = parse_sglang_flags(["python", "-m", "sglang.launch_server", "--model-path", "deepseek-ai/DeepSeek-V3.2",
                                 "--tp", "8", "--kv-cache-dtype", "fp8_e4m3", "--dsa-decode-backend", "trtllm",
                                 "--dsa-prefill-backend", "trtllm", "--enable-hisparse"])
    assert "--enable-hisparse" in parsed.unmodelled
    p = sglang.plan(device="h200", args=parsed.args)
    # trtllm on either phase: calculate_mla_kv_cache_dim keeps the raw 576-element row, 1 byte in fp8
    assert _cell(p).bytes_per_token == 61 * (MLA_FP8_RAW + INDEXER)
