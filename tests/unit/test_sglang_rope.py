"""SGLang's rotary caches in its weights figure (issue 14): float32 on CUDA, M-RoPE at max_position x 1 rows.

Expected bytes are written out from the config keys (max_position_embeddings, head_dim, rope parameters, the
vision tower's width and heads) and SGLang 0.5.17 / 0.5.23 srt/layers/rotary_embedding: base.py
RotaryEmbedding.__init__ (cache computed in float32, cast to the model dtype only off CUDA/XPU (0.5.17) or off
CUDA/HIP/XPU (0.5.23)), mrope.py MRotaryEmbedding (max_position rows, no enlargement), factory.py get_rope (one
module per distinct key), and srt/utils/common.py reserve_rope_cache_for_long_sequences (align_128(ctx + 256)
rows after the weights figure).
"""

from __future__ import annotations

import math

import pytest

from vramplan.engines import sglang
from vramplan.engines.sglang.planner import _quant
from vramplan.engines.sglang.rope import reserve_rows
from vramplan.inputs.model_source import catalog_ids
from vramplan.resolve import load_model
from vramplan.rules.weights import weights_per_rank

VERSIONS = ("0.5.17", "0.5.23")
MiB = 1 << 20


def _exact(w) -> int:
    """The weights without the caching allocator's segment rounding (rules/allocator.py, checked on its own and on the
    real SGLang logs in test_sglang_measured.py): these tests count the tensors."""
    return w.total_bytes - w.part("allocator")


@pytest.mark.parametrize("version", VERSIONS)
def test_qwen3_8b_rope_cache_float32(version):
    # Qwen3-8B: max_position_embeddings 40960, head_dim 128, default rope: one cache of 40960 x 128 x 4 bytes
    p = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb", sglang_version=version)
    assert dict(p.logged_stage.weights.parts)["buffer"] == 40960 * 128 * 4 == 20 * MiB
    # the vLLM 0.26 plan prices it in bf16: SGLang's weights are 40960 x 128 x 2 bytes higher, less the caching
    # allocator's blocks the vLLM plan carries (rules/allocator.py): the embedding and the LM head (151936 x 4096
    # x 2 = 1187 MiB each) take 1188 MiB segments (2 MiB rounding, not split at 20 MiB and more), the 36 layers'
    # q_norm and k_norm (256 bytes) take 512-byte blocks
    v = sglang_vs_vllm = _exact(p.logged_stage.weights) - _vllm_weights("Qwen/Qwen3-8B")
    assert sglang_vs_vllm == v == 40960 * 128 * (4 - 2) - 2 * MiB - 36 * 2 * (512 - 256)
    # reserve: the context (40960) + 256 aligned to 128 = 41216 rows, 256 more than at load
    assert reserve_rows(40960) == 41216
    assert p.logged_stage.rope_reserve_bytes == (41216 - 40960) * 128 * 4
    assert p.to_dict()["memory_gib"]["rope_cache_reserve"] == round((41216 - 40960) * 128 * 4 / 2**30, 4)


def _vllm_weights(model: str) -> int:
    from vramplan.api import plan

    return plan(model, device="h100-80gb", vllm_version="0.26.0").ranks[0].weights.total_bytes


@pytest.mark.parametrize("version", VERSIONS)
def test_qwen3_vl_8b_mrope_x1_float32(version):
    # Qwen3-VL-8B: text max_position_embeddings 262144, head_dim 128, M-RoPE (mrope_section [24, 20, 20]):
    # SGLang 262144 x 128 x 4 (x1 rows, float32); the shared (vLLM < 0.32) description 262144 x 4 x 128 x 2.
    # Vision: hidden 1152 / 16 heads = head_dim 72, get_rope(rotary_dim=36, max_position=8192): 8192 x 36 x 4 in
    # SGLang, 8192 x 36 x 2 in the description.
    text_sglang, text_desc = 262144 * 128 * 4, 262144 * 4 * 128 * 2
    vis_sglang, vis_desc = 8192 * 36 * 4, 8192 * 36 * 2
    p = sglang.plan("Qwen/Qwen3-VL-8B-Instruct", device="h100-80gb", sglang_version=version)
    assert dict(p.logged_stage.weights.parts)["buffer"] == text_sglang + vis_sglang
    m = load_model("Qwen/Qwen3-VL-8B-Instruct")
    desc = weights_per_rank(m, dtype="bfloat16", quant=None)
    assert desc.total_bytes - _exact(p.logged_stage.weights) == (text_desc - text_sglang) - (vis_sglang - vis_desc)
    assert (text_desc - text_sglang) - (vis_sglang - vis_desc) == 133_627_904  # 0.1245 GiB (the issue's ~0.125)
    # reserve after loading: text 262144 -> 262400 rows; the vision cache (a RotaryEmbedding, reached by the same
    # recursion) 8192 -> 262400 rows
    assert reserve_rows(262144) == 262400
    assert p.logged_stage.rope_reserve_bytes == 256 * 128 * 4 + (262400 - 8192) * 36 * 4
    caches = p.to_dict()["engine"]["rope_caches"]
    assert [(c["rows"], c["rotary_dim"], c["element_bytes"], c["bytes"], c["description_bytes"]) for c in caches] == [
        (262144, 128, 4, text_sglang, text_desc), (8192, 36, 4, vis_sglang, vis_desc)]


@pytest.mark.parametrize("version", VERSIONS)
def test_qwen2_5_vl_vision_inv_freq_only(version):
    # Qwen2.5-VL-7B: text M-RoPE 128000 x 128 x 4; vision Qwen2_5_VisionRotaryEmbedding(head_dim 80 // 2 = 40):
    # only inv_freq, 40 / 2 = 20 float32 (the description has a 8192 x 40 bf16 cos/sin cache)
    p = sglang.plan("Qwen/Qwen2.5-VL-7B-Instruct", device="h100-80gb", sglang_version=version)
    assert dict(p.logged_stage.weights.parts)["buffer"] == 128000 * 128 * 4 + 20 * 4
    m = load_model("Qwen/Qwen2.5-VL-7B-Instruct")
    desc = weights_per_rank(m, dtype="bfloat16", quant=None)
    expected = (128000 * 128 * 4 - 128000 * 4 * 128 * 2) + (20 * 4 - 8192 * 40 * 2)
    assert _exact(p.logged_stage.weights) - desc.total_bytes == expected
    # reserve: align_128(128000 + 256) = 128256 rows for the text cache; the vision tower has none to grow
    assert p.logged_stage.rope_reserve_bytes == (128256 - 128000) * 128 * 4


def test_rope_cache_dtype_by_platform_and_release():
    # ROCm: 0.5.17 casts the cache to the model dtype (bf16), 0.5.23 keeps float32 on HIP
    old = sglang.plan("Qwen/Qwen3-8B", device="mi300x", sglang_version="0.5.17")
    new = sglang.plan("Qwen/Qwen3-8B", device="mi300x", sglang_version="0.5.23")
    assert dict(old.logged_stage.weights.parts)["buffer"] == 40960 * 128 * 2
    assert dict(new.logged_stage.weights.parts)["buffer"] == 40960 * 128 * 4
    # SGLANG_ROPE_CACHE_FP32=1 keeps float32 everywhere
    env = sglang.plan("Qwen/Qwen3-8B", device="mi300x", sglang_version="0.5.17",
                      flags=["SGLANG_ROPE_CACHE_FP32=1", "python", "-m", "sglang.launch_server"])
    assert dict(env.logged_stage.weights.parts)["buffer"] == 40960 * 128 * 4


def test_no_reserve_when_the_cache_is_longer_than_the_context():
    # Llama-3.1-8B (llama3 rope, 131072 rows) at --context-length 8192: align_128(8192 + 256) = 8448 < 131072
    p = sglang.plan("meta-llama/Llama-3.1-8B-Instruct", device="h100-80gb", context_length=8192)
    assert p.logged_stage.rope_reserve_bytes == 0 and p.term("rope_cache_reserve") is None
    assert dict(p.logged_stage.weights.parts)["buffer"] == 131072 * 128 * 4


def _text_cfg(m) -> dict:
    t = m.hf_config.get("text_config")
    return t if isinstance(t, dict) else m.hf_config


def _hand_mla_copies(m, quant) -> int:
    """SGLang's w_kc / w_vc: bfloat16 copies of every unquantized MLA kv_b_proj (deepseek_weight_loader.py:
    post_load_weights), which the description counts only when quantized (vLLM's views): layers x heads x
    (qk_nope_head_dim + v_head_dim) x kv_lora_rank x 2 bytes, from the config."""
    t = _text_cfg(m)
    if not t.get("kv_lora_rank") or quant is not None:
        return 0
    return (int(t["num_hidden_layers"]) * int(t["num_attention_heads"])
            * (int(t["qk_nope_head_dim"]) + int(t["v_head_dim"])) * int(t["kv_lora_rank"]) * 2)


def _hand_caches(m) -> tuple[int, list[tuple[int, int, bool]]]:
    """SGLang's rotary bytes minus the description's, from the config keys (CUDA: float32), and SGLang's caches as
    (rows, columns, grown by the reserve)."""
    t = _text_cfg(m)
    rope = t.get("rope_parameters") or t.get("rope_scaling") or {}
    mrope = isinstance(rope, dict) and "mrope_section" in rope
    max_pos = int(t["max_position_embeddings"])
    delta, caches = 0, []
    for p in m.buffer_params:
        if not (p.name.endswith("cos_sin_cache") and len(p.shape) == 2) or p.dtype not in (None, "float32"):
            continue
        rows, dim = p.shape
        elem = 4 if p.dtype == "float32" else 2  # the catalog's models are bf16 / fp16 unless a buffer says fp32
        sg_rows = rows
        if mrope:
            kind = str(rope.get("rope_type") or rope.get("type") or "default")
            assert kind in ("default", "mrope")
            assert rows in (max_pos, 4 * max_pos)  # x4 before vLLM 0.32 (Qwen2.5/3-VL), x1 (Qwen3.5)
            sg_rows = max_pos
        if m.architecture.startswith("Gemma3"):  # gemma3_causal.py: rope_type "default" on every layer
            sg_rows = max_pos
        delta += sg_rows * dim * 4 - rows * dim * elem
        caches.append((sg_rows, dim, True))
    if m.vision is not None:
        vc = m.hf_config.get("vision_config") or {}
        for p in m.vision.params:
            if not p.name.endswith("rotary_pos_emb.cos_sin_cache"):
                continue
            width = int(vc.get("hidden_size") or vc.get("embed_dim"))
            heads = int(vc.get("num_heads"))
            rot = width // heads // 2
            assert p.shape == (8192, rot)
            if m.architecture.startswith("Qwen2_5_VL"):  # inv_freq only
                delta += (rot // 2) * 4 - 8192 * rot * 2
            else:  # Qwen3-VL / Qwen3.5 vision: get_rope(max_position=8192) in float32
                delta += 8192 * rot * (4 - 2)
                caches.append((8192, rot, True))
    return delta, caches


@pytest.mark.parametrize("model", catalog_ids())
def test_catalog_sglang_minus_description_is_the_rope_difference(model):
    m = load_model(model)
    if m.dtype not in ("bfloat16", "float16"):  # gpt-oss: the model dtype is float32, caches already 4 bytes
        pytest.skip("float32 model")
    p = sglang.plan(m, device="h200", sglang_version="0.5.23")
    if _exact(p.logged_stage.weights) == 0:
        pytest.skip("no plan")
    from vramplan.engines.sglang.defaults import resolve
    from vramplan.engines.sglang.rules import rules_for

    r = resolve(m, p.args, p.device, rules_for("0.5.23"))
    # the same rule (vLLM 0.26's weights_per_rank) on the unchanged description, the SGLang planner's arguments
    desc = weights_per_rank(m, dtype=r.model_dtype, quant=_quant(m, p.args), tp=1, pp=1, pp_rank=0, dp=1,
                            expert_parallel=False, pp_partition=None)
    delta, caches = _hand_caches(m)
    assert _exact(p.logged_stage.weights) - desc.total_bytes == delta + _hand_mla_copies(m, _quant(m, p.args))
    # and the reserve: every cache shorter than align_128(ctx + 256) rows grows to it, in float32
    need = math.ceil((p.context_length + 256) / 128) * 128
    assert p.logged_stage.rope_reserve_bytes == sum((need - rows) * dim * 4 for rows, dim, grows in caches
                                                    if grows and need > rows)
    assert p.bytes_of("rope_cache_reserve") == p.logged_stage.rope_reserve_bytes


@pytest.mark.parametrize("version", VERSIONS)
def test_mrope_with_yarn_has_original_times_factor_rows(version):
    # Qwen3-VL-8B with the long-context YaRN its card suggests: rope_type yarn, factor 3.0, original 262144,
    # max_position_embeddings 1000000 (not a multiple): SGLang builds YaRNScalingMRotaryEmbedding(original_max_position
    # = 262144) whose cache is torch.arange(262144 x 3.0) = 786432 rows x 128 x 4 bytes
    import json

    from vramplan.inputs.model_source import catalog_root
    from vramplan.model.from_config import describe_config

    cfg = json.loads((catalog_root() / "Qwen/Qwen3-VL-8B-Instruct" / "config.json").read_text())
    text = cfg["text_config"]
    text["max_position_embeddings"] = 1_000_000
    rope = dict(text.get("rope_scaling") or text.get("rope_parameters"))
    rope.update(rope_type="yarn", factor=3.0, original_max_position_embeddings=262144)
    text.pop("rope_parameters", None)
    text["rope_scaling"] = rope
    m = describe_config(cfg, name="qwen3-vl-8b-yarn")
    assert m.vision is None  # no preprocessor_config given: the text model only
    p = sglang.plan(m, device="h200", sglang_version=version)
    assert dict(p.logged_stage.weights.parts)["buffer"] == 786432 * 128 * 4


@pytest.mark.parametrize("version", VERSIONS)
def test_longrope_keeps_the_model_dtype_and_three_caches(version):
    # Phi-3 with LongRoPE (the 128k variants): original 4096, max_position_embeddings 131072, head_dim 3072 / 32 = 96.
    # rope_variant.py:Phi3LongRoPEScaledRotaryEmbedding registers short (4096 rows), long (131072 rows) and their
    # concatenation (135168 rows), each .to(dtype) (bf16): 2 x (4096 + 131072) x 96 x 2 bytes; no reserve growth
    import json

    from vramplan.inputs.model_source import catalog_root
    from vramplan.model.from_config import describe_config

    cfg = json.loads((catalog_root() / "microsoft/Phi-3-mini-4k-instruct" / "config.json").read_text())
    cfg.update(max_position_embeddings=131072, original_max_position_embeddings=4096,
               rope_scaling={"type": "longrope", "short_factor": [1.0] * 48, "long_factor": [4.0] * 48})
    m = describe_config(cfg, name="phi3-longrope")
    p = sglang.plan(m, device="h100-80gb", sglang_version=version)
    assert dict(p.logged_stage.weights.parts)["buffer"] == 2 * (4096 + 131072) * 96 * 2
    assert p.logged_stage.rope_reserve_bytes == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_gemma3_caches_have_max_position_rows(version):
    # Gemma-3-12B: head_dim 256, max_position_embeddings 131072; the config's global rope is linear x8, but SGLang's
    # Gemma3Attention passes rope_type "default" to both kinds of layer: two caches (bases 1e6 and 1e4) of
    # 131072 x 256 x 4 bytes. The description (vLLM): 1048576 x 256 x 2 + 131072 x 256 x 2.
    p = sglang.plan("google/gemma-3-12b-it", device="h100-80gb", sglang_version=version)
    m = load_model("google/gemma-3-12b-it")
    text_buffers = 2 * 131072 * 256 * 4
    desc = weights_per_rank(m, dtype="bfloat16", quant=None)
    assert desc.total_bytes - _exact(p.logged_stage.weights) == (1048576 + 131072) * 256 * 2 - text_buffers
    # reserve: both caches 131072 -> 131328 rows
    assert p.logged_stage.rope_reserve_bytes == 2 * 256 * 256 * 4
