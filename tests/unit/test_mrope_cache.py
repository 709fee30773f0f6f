"""Qwen3-VL's M-RoPE cos/sin cache by vLLM release (model/families/_mrope.py).

vLLM v0.26.0 / v0.31.0 vllm/model_executor/layers/rotary_embedding/mrope.py:MRotaryEmbedding.__init__ keeps
``max_position_embeddings x 4`` rows; from v0.32.0 ``max_position_embeddings x positions_factor``, which Qwen3-VL
(qwen3_vl.py:Qwen3VLDecoderLayer) and Qwen3-VL-MoE (qwen3_vl_moe.py:Qwen3MoeLLMModel) pass as
``mrope_positions_factor(vllm_config)`` = 1 without video pruning. Expected values: the catalog configs' numbers,
multiplied out by hand below.
"""

from __future__ import annotations

import pytest

import vramplan
from vramplan.api import load_model
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.model.families import adapt_for_release
from vramplan.units import GiB, format_gib

VL8B = "Qwen/Qwen3-VL-8B-Instruct"
VL30B = "Qwen/Qwen3-VL-30B-A3B-Instruct"
# Both text_configs: max_position_embeddings 262144, head_dim 128, rope_scaling {"mrope_section": [24, 20, 20],
# "mrope_interleaved": true, "rope_type": "default"} (no partial rotary: rotary_dim 128), dtype bfloat16 (2 bytes);
# the cache holds cos and sin halves side by side: rotary_dim columns.
X4_BYTES = 262144 * 4 * 128 * 2   # 268,435,456 = 0.25 GiB
X1_BYTES = 262144 * 1 * 128 * 2   # 67,108,864 = 0.0625 GiB
SAVED = X4_BYTES - X1_BYTES       # 201,326,592 = 0.1875 GiB


def _cache(model_id: str, release: tuple[int, int, int]):
    m = adapt_for_release(load_model(model_id), for_version(release, allow_older=True))
    caches = [p for p in m.buffer_params if "cos_sin_cache" in p.name]
    assert len(caches) == 1
    return caches[0]


def test_hand_figures():
    assert X4_BYTES == 268_435_456 and X1_BYTES == 67_108_864 and SAVED == 201_326_592
    assert SAVED / GiB == 0.1875


@pytest.mark.parametrize("model_id", [VL8B, VL30B])
@pytest.mark.parametrize("release, rows", [
    ((0, 19, 0), 262144 * 4), ((0, 26, 0), 262144 * 4), ((0, 31, 0), 262144 * 4),  # x4 before 0.32.0
    ((0, 32, 0), 262144 * 1), ((0, 33, 0), 262144 * 1), ((0, 34, 0), 262144 * 1), ((0, 35, 0), 262144 * 1),
])
def test_cache_rows_by_release(model_id, release, rows):
    p = _cache(model_id, release)
    assert p.shape == (rows, 128) and p.dtype is None  # model dtype (bfloat16)


@pytest.mark.parametrize("model_id", [VL8B, VL30B])
@pytest.mark.parametrize("tp", [1, 2])
def test_weights_per_rank_drop_by_three_quarters_of_the_cache(model_id, tp):
    # The cache is a replicated buffer: every rank holds it whole, so each rank's weights drop by 201,326,592 bytes.
    kw = dict(device="h200", tensor_parallel_size=tp, max_model_len=8192, max_num_batched_tokens=8192)
    w = {v: vramplan.plan(model_id, vllm_version=v, **kw).logged_rank.term("weights") for v in
         ("0.26.0", "0.31.0", "0.32.0", "0.33.0", "0.34.0")}
    assert w["0.26.0"].bytes == w["0.31.0"].bytes
    assert w["0.32.0"].bytes == w["0.33.0"].bytes == w["0.34.0"].bytes == w["0.31.0"].bytes - SAVED
    assert dict(w["0.31.0"].parts)["buffer"] - dict(w["0.33.0"].parts)["buffer"] == SAVED


@pytest.mark.parametrize("model_id, device, logged", [
    # data/truth/logs/h100b/vl8b_e_v1_base.log and x2/vl30b_e_v1_base.log (vLLM 0.26.0, mnbt 8192, eager):
    # "Model loading took 16.79 GiB" / "58.24 GiB"; the plans meet them at x4 (with the caching allocator's blocks,
    # rules/allocator.py), and no Qwen3-VL log of vLLM >= 0.32 exists yet
    (VL8B, "h100-80gb", 16.79), (VL30B, "h200", 58.24),
])
def test_the_logged_0_26_weights_keep_x4_and_0_33_is_0_1875_gib_less(model_id, device, logged):
    kw = dict(device=device, max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024,
              enforce_eager=True)
    old = vramplan.plan(model_id, vllm_version="0.26.0", **kw).logged_rank.bytes_of("weights")
    new = vramplan.plan(model_id, vllm_version="0.33.0", **kw).logged_rank.bytes_of("weights")
    assert float(format_gib(old)) == pytest.approx(logged, abs=1e-9)
    # x1 at 0.26 would be 0.1875 GiB under the log: the x4 there is what vLLM allocated
    assert abs((old - SAVED) / GiB - logged) > 0.18
    assert old - new == SAVED


@pytest.mark.parametrize("model_id, rows", [
    ("Qwen/Qwen3-8B", 40960),  # no M-RoPE: max_position_embeddings 40960 x 1 at every release
    ("Qwen/Qwen3-30B-A3B", 40960),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 128000 * 4),  # M-RoPE without the factor (get_rope's default 4) at every release
])
@pytest.mark.parametrize("release", [(0, 26, 0), (0, 31, 0), (0, 33, 0), (0, 34, 0)])
def test_other_models_keep_their_cache(model_id, rows, release):
    assert _cache(model_id, release).shape[0] == rows


def test_the_switch_is_release_data():
    assert not for_version((0, 31, 0), allow_older=True).mrope_positions_factor
    assert for_version((0, 32, 0)).mrope_positions_factor


# --video-pruning-rate > 0 makes mrope_positions_factor 4 again (vLLM v0.33.0 qwen3_vl.py:mrope_positions_factor,
# MultiModalConfig.is_multimodal_pruning_enabled) and prunes video tokens: an engine flag, not a config key. vramplan
# does not model pruning yet, so a plan that turns it on says so instead of pricing x1 silently.
@pytest.mark.parametrize("rate, warned", [("0.5", True), ("0.0", False), ("0", False)])
def test_video_pruning_is_flagged_not_counted(rate, warned):
    p = vramplan.plan(flags=["vllm", "serve", VL8B, "--video-pruning-rate", rate, "--max-model-len", "8192"],
                      device="h100-80gb", vllm_version="0.33.0")
    assert any("--video-pruning-rate" in w for w in p.warnings) is warned
    assert vramplan.plan(VL8B, device="h100-80gb", vllm_version="0.33.0", max_model_len=8192,
                         video_pruning_rate=float(rate)).warnings == p.warnings


@pytest.mark.parametrize("rate", ["1", "1.5", "-0.1"])
def test_video_pruning_rate_out_of_range_is_bad_input(rate):
    from vramplan.errors import FlagError

    with pytest.raises(FlagError, match=r"--video-pruning-rate must be in \[0, 1\)"):
        vramplan.plan(flags=["vllm", "serve", VL8B, "--video-pruning-rate", rate], device="h100-80gb")


def _catalog_ids():
    from vramplan.inputs.model_source import catalog_ids

    return catalog_ids()


@pytest.mark.parametrize("model_id", _catalog_ids())
def test_every_catalog_model_changes_at_0_32_only_by_its_mrope_cache(model_id):
    # Elements of the init-time buffers at 0.31 minus at 0.32, from the raw config.json (not the description):
    # Qwen3-VL / Qwen3-VL-MoE: max_position x head_dim x (4 - 1); Qwen3.5/3.6: max_position x (head_dim x
    # partial_rotary_factor) x (4 - 1); every other architecture (Qwen2.5-VL's M-RoPE included): 0.
    import json
    import math

    from vramplan.inputs.model_source import catalog_root

    cfg = json.loads((catalog_root() / model_id / "config.json").read_text())
    text = cfg.get("text_config") or cfg
    arch = cfg["architectures"][0]
    if arch.startswith(("Qwen3VL", "Qwen3_5")):
        head = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    if arch.startswith("Qwen3VL"):
        want = text["max_position_embeddings"] * head * 3
    elif arch.startswith("Qwen3_5"):
        rope = text.get("rope_parameters") or text.get("rope_scaling") or {}
        partial = text.get("partial_rotary_factor") or rope.get("partial_rotary_factor") or 0.25
        want = text["max_position_embeddings"] * int(head * partial) * 3
    else:
        want = 0
    m = load_model(model_id)

    def elements(release):
        view = adapt_for_release(m, for_version(release, allow_older=True))
        return sum(math.prod(p.shape) for p in view.buffer_params)

    assert elements((0, 31, 0)) - elements((0, 32, 0)) == want
    assert elements((0, 32, 0)) == elements((0, 34, 0))


@pytest.mark.parametrize("model_id", ["Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B"])
def test_non_vl_qwen3_weights_do_not_move_at_0_32(model_id):
    kw = dict(device="h200", max_model_len=8192, max_num_batched_tokens=8192)
    w = {v: vramplan.plan(model_id, vllm_version=v, **kw).logged_rank.bytes_of("weights")
         for v in ("0.26.0", "0.31.0", "0.33.0", "0.34.0")}
    assert len(set(w.values())) == 1


@pytest.mark.parametrize("release, factor", [("0.31.0", 4), ("0.33.0", 1)])
def test_hf_overrides_of_max_position_resize_the_cache_by_the_release_factor(release, factor):
    # --hf-overrides max_position_embeddings 131072 (half of 262144): the cache loses 131072 x factor x 128 x 2 bytes
    kw = dict(device="h200", vllm_version=release, max_model_len=8192)
    full = vramplan.plan(VL8B, **kw).logged_rank.term("weights")
    half = vramplan.plan(VL8B, flags=["--hf-overrides", '{"text_config": {"max_position_embeddings": 131072}}'],
                         **kw).logged_rank.term("weights")
    assert dict(full.parts)["buffer"] - dict(half.parts)["buffer"] == 131072 * factor * 128 * 2
