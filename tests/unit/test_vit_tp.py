"""Vision towers' per-rank weights under tensor parallelism, by release.

What vLLM does when TP does not divide a vision tower's attention heads (read in v0.25.0, v0.26.0, v0.33.0,
v0.34.0 vllm/model_executor/models/vision.py:is_vit_use_data_parallel and the tower files):

- v0.26.0 added ``is_vit_use_data_parallel(num_heads)``: a tower whose model file passes its heads is built
  whole on every rank (data parallel) when TP does not divide them. In the towers vramplan models, only
  MoonViT-3D passes them (kimi_k25.py / kimi_k25_vit.py: Kimi-K2.5 and Kimi-K3). v0.25.0 takes no argument.
- InternViT (intern_vit.py, v0.12.0 .. v0.34.0 alike): the attention (qkv, proj, q/k norms) is built with
  ``disable_tp`` when ``(heads + dummy heads) % tp``, the MLP stays split; InternVLChatModel passes 0 dummy heads.
- every other tower (Qwen2/2.5/3-VL, CLIP/SigLIP/Pixtral LLaVA towers, MoonViT of Kimi-VL, Llama 4, Gemma 3)
  calls ``is_vit_use_data_parallel()`` without heads: split by TP, and vLLM's ``divide`` asserts when the heads
  do not divide (unchanged here: no fallback, 0.26 and 0.34 alike).

Expected bytes are hand arithmetic from the configs (bf16, 2 bytes), written out below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.api import load_model
from vramplan.engines.vllm.planner import _vit_heads_fallback
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.model.vision import describe_vision, heads_whole_prefixes, vision_weight_bytes
from vramplan.rules.weights import weights_per_rank

CATALOG = Path(__file__).resolve().parents[2] / "vramplan" / "catalog"
B = 2


def _planner_vision_bytes(model, tp: int, version: str) -> int:
    """The vision part of one rank's weights as the vLLM planner computes it (planner._load_model)."""
    rules = for_version(version)
    shares = weights_per_rank(model, dtype="bfloat16", quant=None, tp=tp,
                              vision_replicated=_vit_heads_fallback(model, tp, rules),
                              vision_whole_prefixes=heads_whole_prefixes(model.vision, tp))
    return shares.part("vision")


# --------------------------------------------------------------------------- the release switch

def test_heads_fallback_switch_by_release():
    assert not for_version("0.25.0").vit_heads_fallback
    for v in ("0.26.0", "0.33.0", "0.34.0"):
        assert for_version(v).vit_heads_fallback


# --------------------------------------------------------------------------- Kimi-K2.5 (MoonViT-3D, 16 heads)

def _kimi_k25_vision(tp: int) -> int:
    # vision_config: vt_hidden_size 1152, vt_intermediate_size 4304, 16 heads, 27 layers, patch 14,
    # pos_emb 64 x 64, merge 2 x 2; text hidden 7168. bias everywhere (attn_bias, linear_bias, layernorm).
    w, i, n, t = 1152, 4304, 27, 7168
    whole = (w * 3 * 14 * 14 + w            # patch_embed Conv2d + bias
             + 64 * 64 * w                  # pos_emb
             + 2 * w                        # final_layernorm
             + 2 * w                        # mm_projector.pre_norm
             + 4 * w * 4 * w + 4 * w        # linear_1 (4608 -> 4608) + bias, replicated
             + t * 4 * w + t)               # linear_2 (4608 -> 7168) + bias, replicated
    layer = (2 * w + 2 * w                  # norm0, norm1 (weight + bias)
             + (3 * w * w + 3 * w) // tp    # wqkv + bias, split by heads
             + w * w // tp + w              # wo (row) + its replicated bias
             + (i * w + i) // tp            # mlp.fc0 (column) + bias
             + w * i // tp + w)             # mlp.fc1 (row) + replicated bias
    return (whole + n * layer) * B


@pytest.mark.parametrize("version", ["0.26.0", "0.34.0"])
def test_kimi_k25_split_when_heads_divide_whole_when_not(version):
    m = load_model("moonshotai/Kimi-K2.5")
    assert m.vision.num_heads == 16
    assert _planner_vision_bytes(m, 8, version) == _kimi_k25_vision(8)  # 16 % 8 == 0: split
    assert _planner_vision_bytes(m, 4, version) == _kimi_k25_vision(4)
    assert _planner_vision_bytes(m, 3, version) == _kimi_k25_vision(1)  # 16 % 3: whole on every rank


def test_kimi_k25_no_fallback_before_026():
    m = load_model("moonshotai/Kimi-K2.5")
    assert not _vit_heads_fallback(m, 3, for_version("0.25.0"))
    assert _vit_heads_fallback(m, 3, for_version("0.26.0"))


# --------------------------------------------------------------------------- Kimi-K3 (MoonViT-3D, 12 heads)

@pytest.mark.parametrize("version", ["0.33.0", "0.34.0"])
def test_kimi_k3_whole_at_tp8_split_at_tp4(version):
    m = load_model("moonshotai/Kimi-K3")
    assert m.vision.num_heads == 12
    whole = _planner_vision_bytes(m, 1, version)
    assert _planner_vision_bytes(m, 8, version) == whole       # 12 % 8: replicated
    assert _planner_vision_bytes(m, 4, version) < whole        # 12 % 4 == 0: split
    assert _planner_vision_bytes(m, 2, version) < whole


# --------------------------------------------------------------------------- InternViT-6B (25 heads)

def _internvl_6b_cfg() -> dict:
    # InternVL2.5-78B-like: InternViT-6B-448px-V2_5 (3200 wide, 25 heads, 12800 MLP, 45 layers, RMSNorm,
    # qk_normalization, no qkv bias) + a 8192-wide language model.
    return {"model_type": "internvl_chat", "architectures": ["InternVLChatModel"], "select_layer": -1,
            "downsample_ratio": 0.5, "force_image_size": 448,
            "vision_config": {"hidden_size": 3200, "num_attention_heads": 25, "intermediate_size": 12800,
                              "num_hidden_layers": 45, "qkv_bias": False, "qk_normalization": True,
                              "norm_type": "rms_norm", "image_size": 448, "patch_size": 14},
            "llm_config": {"hidden_size": 8192}}


def _internvit_6b(tp: int, *, attn_whole: bool) -> int:
    w, i, n, t = 3200, 12800, 45, 8192
    grid = 448 // 14
    a = 1 if attn_whole else tp
    whole = (w                                        # class_embedding
             + w * 3 * 14 * 14 + w                    # patch_embedding + bias
             + (grid * grid + 1) * w                  # position_embedding (1025 positions)
             + 2 * 4 * w                              # mlp1.0 LayerNorm over 4 x 3200 (pixel shuffle 0.5)
             + 4 * w * t + t                          # mlp1.1 (12800 -> 8192), replicated
             + t * t + t)                             # mlp1.3 (8192 -> 8192), replicated
    layer = (w + w                                    # norm1, norm2 (RMSNorm: weight only)
             + w + w                                  # ls1, ls2
             + w + w                                  # attn.q_norm, attn.k_norm (whole)
             + 3 * w * w // a                         # attn.qkv (no bias)
             + w * w // a + w                         # attn.proj + replicated bias
             + (i * w + i) // tp                      # mlp.fc1 (column) + bias: always split
             + w * i // tp + w)                       # mlp.fc2 (row) + replicated bias
    return (whole + n * layer) * B


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_internvit_6b_attention_whole_when_heads_do_not_divide(tp):
    spec = describe_vision(_internvl_6b_cfg())
    assert spec.num_heads == 25 and 25 % tp
    assert vision_weight_bytes(spec, tp=tp) == _internvit_6b(tp, attn_whole=True)


def test_internvit_6b_split_when_heads_divide():
    spec = describe_vision(_internvl_6b_cfg())
    assert vision_weight_bytes(spec, tp=5) == _internvit_6b(5, attn_whole=False)  # 25 % 5 == 0
    assert vision_weight_bytes(spec, tp=1) == _internvit_6b(1, attn_whole=True)


def test_internvit_300m_splits_at_common_tp():
    # InternViT-300M: 16 heads divide 2/4/8: nothing held whole
    spec = describe_vision({"model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
                            "vision_config": {}, "llm_config": {"hidden_size": 3584}})
    for tp in (2, 4, 8):
        assert heads_whole_prefixes(spec, tp) == ()
    assert heads_whole_prefixes(spec, 3) and all(p.endswith(".attn.") for p in heads_whole_prefixes(spec, 3))


# --------------------------------------------------------------------------- towers with no fallback

def _cfg(repo: str) -> dict:
    return json.loads((CATALOG / repo / "config.json").read_text())


@pytest.mark.parametrize("repo", [
    "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "llava-hf/llava-1.5-7b-hf",
    "google/gemma-3-12b-it", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
])
@pytest.mark.parametrize("version", ["0.26.0", "0.34.0"])
def test_towers_without_heads_fallback_stay_split(repo, version):
    # these towers call is_vit_use_data_parallel() without heads (0.26 and 0.34): never replicated by TP alone
    m = load_model(repo)
    rules = for_version(version)
    for tp in (2, 3, 4, 8):
        assert not _vit_heads_fallback(m, tp, rules)
        assert heads_whole_prefixes(m.vision, tp) == ()


# --------------------------------------------------------------------------- vLLM refuses an indivisible split

def _plan_error(repo: str, tp: int, version: str, **kw):
    from vramplan.api import plan
    from vramplan.errors import InvalidConfig

    try:
        p = plan(repo, device="h200", tensor_parallel_size=tp, vllm_version=version, max_model_len=4096, **kw)
    except InvalidConfig as e:
        return e.message
    return p.error_message if not p.starts else None


def _with_vision_heads(repo: str, heads: int):
    from dataclasses import replace

    m = load_model(repo)
    return replace(m, vision=replace(m.vision, num_heads=heads))


@pytest.mark.parametrize("version", ["0.26.0", "0.34.0"])
def test_tower_without_fallback_refuses_indivisible_heads(version):
    # Qwen2.5-VL-7B: text 28 heads, 4 KV heads; vision 16 heads. At TP 2 and 4 both divide: it plans.
    assert _plan_error("Qwen/Qwen2.5-VL-7B-Instruct", 4, version) is None
    # A tower of 12 heads (same text) at TP 8: the config-time check (28 % 8) comes first, vLLM's own text
    m = _with_vision_heads("Qwen/Qwen2.5-VL-7B-Instruct", 12)
    assert _plan_error(m, 8, version).startswith("Total number of attention heads (28)")
    # ... at TP 4 the tower is built first: divide(12, ...) is fine -> plans; with 6 heads, divide(6, 4) asserts
    m6 = _with_vision_heads("Qwen/Qwen2.5-VL-7B-Instruct", 6)
    assert _plan_error(m6, 4, version) == "6 is not divisible by 4"
    # --mm-encoder-tp-mode data builds it whole (disable_tp): no assert
    assert _plan_error(m6, 4, version, flags="--mm-encoder-tp-mode data") is None


def test_kimi_k3_tp8_plans_with_replicated_tower():
    # 12 heads at TP 8: the v0.26+ fallback, not the assert (the plan may still not fit 8 x 141 GB)
    err = _plan_error("moonshotai/Kimi-K3", 8, "0.34.0")
    assert err is None or "is not divisible" not in err
