"""Multimodal token counts and the encoder budget (vramplan.model.mm_tokens).

Every expected number is hand arithmetic written next to it (vLLM's formulas applied by hand),
or a figure from seed 001 (Qwen3-VL-8B, mnbt 32768: "profiled with 2 image items of the
maximum feature size", dummy image 4096 x 4096).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.errors import FlagError, UnsupportedError
from vramplan.model.mm_tokens import (
    dummy_item,
    encoder_budget,
    encoder_profile,
    image_item,
    max_tokens_per_item,
    max_tokens_per_modality,
    smart_resize,
    tokens_for_image,
)

CATALOG = Path(__file__).resolve().parents[2] / "vramplan" / "catalog"


def load(repo: str, name: str = "config.json"):
    path = CATALOG / repo / name
    return json.loads(path.read_text()) if path.exists() else None


Q25 = "Qwen/Qwen2.5-VL-3B-Instruct"
Q3 = "Qwen/Qwen3-VL-8B-Instruct"


def q25():
    return load(Q25), load(Q25, "preprocessor_config.json")


def q3():
    return load(Q3), load(Q3, "preprocessor_config.json")


# --------------------------------------------------------------------------- Qwen2.5-VL


def test_qwen25_max_image_tokens():
    # max_pixels 12845056 // 28^2 = 16384 = 128 x 128 merged tokens -> dummy image 3584 x 3584
    c, p = q25()
    assert max_tokens_per_item(None, c, p, "image", max_model_len=32768) == 16384
    item = dummy_item(None, c, p, "image", max_model_len=32768)
    assert (item.width, item.height) == (3584, 3584)
    assert item.num_patches == 256 * 256  # 3584 / 14 = 256 patches a side, before the 2x2 merge


@pytest.mark.parametrize("max_model_len,frames,tokens", [
    # tokens(f) = ceil_even(f) / 2 * 16384; frames counted up from 1 while tokens <= max_model_len, cap 14
    (128000, 14, 7 * 16384),   # f=14 -> 114688 <= 128000; f=15 -> 131072 > 128000
    (32768, 4, 2 * 16384),     # f=4 -> 32768; f=5 -> 49152 >
    (16384, 2, 16384),         # f=2 -> 16384; f=3 -> 32768 >
    (8192, 1, 16384),          # f=2 already > 8192: stays at the start value 1 (padded to 2 frames)
])
def test_qwen25_video_tokens(max_model_len, frames, tokens):
    c, p = q25()
    item = dummy_item(None, c, p, "video", max_model_len=max_model_len)
    assert item.num_frames == frames and item.num_tokens == tokens
    assert max_tokens_per_item(None, c, p, "video", max_model_len=max_model_len) == tokens


def test_qwen25_without_preprocessor_uses_checkpoint_bounds():
    # The 7B catalog entry has no preprocessor_config.json: the official checkpoints' 3136 / 12845056
    # apply (-> 16384), not transformers' class default 28*28*1280 (-> 1280 tokens).
    assert max_tokens_per_item(None, load("Qwen/Qwen2.5-VL-7B-Instruct"), None, "image", max_model_len=32768) == 16384
    assert max_tokens_per_item(None, load(Q25), {"image_processor_type": "Qwen2VLImageProcessor"}, "image",
                               max_model_len=32768) == 1280


def test_qwen25_real_image_1920x1080():
    # smart_resize(1080, 1920, factor 28): round(1080/28)=39 -> 1092, round(1920/28)=69 -> 1932;
    # 1092 * 1932 = 2,109,744 is inside [3136, 12845056]. tokens = 39 * 69 = 2691
    c, p = q25()
    assert smart_resize(1080, 1920, factor=28, min_pixels=3136, max_pixels=12845056) == (1092, 1932)
    assert tokens_for_image(None, c, p, 1920, 1080) == 2691
    item = image_item(None, c, p, 1920, 1080)
    assert item.num_patches == 78 * 138  # (1092/14) x (1932/14) patches = 4 x 2691


def test_qwen25_big_image_is_capped():
    # 8000 x 6000 = 48e6 px > max 12845056: beta = sqrt(48e6 / 12845056) = 1.9331;
    # h = floor(6000 / 1.9331 / 28) * 28 = 110 * 28 = 3080; w = floor(8000 / 1.9331 / 28) * 28 = 147 * 28 = 4116
    # tokens = 110 * 147 = 16170 (<= 16384)
    c, p = q25()
    assert tokens_for_image(None, c, p, 8000, 6000) == 16170


def test_qwen25_max_pixels_override():
    # max_pixels 1003520 // 784 = 1280 merged tokens; 1280 = 32 x 40 -> image 1120 x 896, 1280 tokens
    c, p = q25()
    kw = {"max_pixels": 1003520}
    assert max_tokens_per_item(None, c, p, "image", mm_processor_kwargs=kw, max_model_len=32768) == 1280
    assert dummy_item(None, c, p, "image", mm_processor_kwargs=kw, max_model_len=32768).width == 1120
    # the video follows the same bound: at 32768, frames grow while ceil_even(f)/2 * 1280 <= 32768 -> 14 (cap)
    assert max_tokens_per_item(None, c, p, "video", mm_processor_kwargs=kw, max_model_len=32768) == 7 * 1280


def test_qwen25_default_profile_is_video():
    # video 114688 > image 16384 at 128000: 1 video item, budget max(8192, 114688) = 114688
    c, p = q25()
    prof = encoder_profile(c, p, max_num_batched_tokens=8192, max_num_seqs=256, max_model_len=128000)
    assert prof.budget.modality == "video" and prof.budget.num_items == 1
    assert prof.budget.budget_tokens == 114688
    assert prof.item.num_patches == 7 * 65536  # 7 frame pairs of 256 x 256 patches


def test_qwen25_limit_video_zero_profiles_images():
    # budget max(32768, 16384) = 32768 -> 32768 // 16384 = 2 images (max_num_seqs 8 x per_prompt 2 = 16 > 2)
    c, p = q25()
    prof = encoder_profile(c, p, max_num_batched_tokens=32768, max_num_seqs=8, max_model_len=65536,
                           limit_mm_per_prompt={"video": 0})
    assert (prof.budget.modality, prof.budget.num_items, prof.budget.budget_tokens) == ("image", 2, 32768)
    assert "video" not in prof.budget.max_tokens_per_item


# --------------------------------------------------------------------------- Qwen3-VL


def test_seed001_qwen3_vl_8b_profile():
    # Seed 001: --max-model-len 65536 --max-num-seqs 8 --max-num-batched-tokens 32768 ->
    # "Encoder cache will be initialized with a budget of 32768 tokens, and profiled with 2 image items
    #  of the maximum feature size."; "Qwen3-VL dummy_mm_data target_width: 4096 / target_height: 4096".
    # image: 16777216 // 32^2 = 16384 = 128 x 128 -> 4096 x 4096.
    # video: (25165824 // 2) // 1024 = 12288 = 96 x 128 -> 4096 x 3072 at 2 frames -> 12288 tokens.
    c, p = q3()
    prof = encoder_profile(c, p, max_num_batched_tokens=32768, max_num_seqs=8, max_model_len=65536)
    assert prof.budget.max_tokens_per_item == {"image": 16384, "video": 12288}
    assert (prof.budget.modality, prof.budget.num_items, prof.budget.budget_tokens) == ("image", 2, 32768)
    assert prof.budget.log_line.endswith("profiled with 2 image items of the maximum feature size.")
    assert (prof.item.width, prof.item.height) == (4096, 4096)
    assert prof.item.num_patches == 65536  # 256 x 256 patches of 16 px


def test_qwen3_video_scoped_kwargs_v033():
    # v0.33 scopes kwargs: videos_kwargs max_pixels 2 * 1024 * 1024 = 2097152 ->
    # target = most features under 2097152 // 2 // 1024 = 1024 tokens = 32 x 32 -> 1024 x 1024 at 2 frames.
    c, p = q3()
    kw = {"videos_kwargs": {"max_pixels": 2 * 1024 * 1024}}
    assert max_tokens_per_item(None, c, p, "video", mm_processor_kwargs=kw, max_model_len=65536,
                               version=(0, 33, 0)) == 1024
    # before v0.33 the scoped mapping does not exist: the video keeps 12288
    assert max_tokens_per_item(None, c, p, "video", mm_processor_kwargs=kw, max_model_len=65536,
                               version=(0, 26, 0)) == 12288
    # images are untouched by videos_kwargs
    assert max_tokens_per_item(None, c, p, "image", mm_processor_kwargs=kw, max_model_len=65536,
                               version=(0, 33, 0)) == 16384


def test_qwen3_real_photo():
    # 4032 x 3024 phone photo: 12,192,768 px inside [65536, 16777216]; round(3024/32) = 94 -> 3008,
    # round(4032/32) = 126 -> 4032; tokens 94 * 126 = 11844
    c, p = q3()
    assert tokens_for_image(None, c, p, 4032, 3024) == 11844


# --------------------------------------------------------------------------- other families


def test_gemma3_256_tokens_and_pan_and_scan():
    c, p = load("google/gemma-3-4b-it"), load("google/gemma-3-4b-it", "preprocessor_config.json")
    # pan-and-scan off: 1 crop of 896 x 896 -> 64 x 64 = 4096 SigLIP patches pooled 4x4 to 256 tokens
    item = dummy_item(None, c, p, "image", max_model_len=8192)
    assert (item.num_tokens, item.num_patches, item.num_crops) == (256, 4096, 1)
    # pan-and-scan on: dummy 896 x 3584 (4 crops tall): crops = min(floor(3584/256)=14, floor(4+0.5)=4) = 4
    # -> (4 + 1) * 256 = 1280 tokens, 5 x 4096 patches
    kw = {"do_pan_and_scan": True}
    item = dummy_item(None, c, p, "image", mm_processor_kwargs=kw, max_model_len=8192)
    assert (item.num_tokens, item.num_patches) == (1280, 5 * 4096)


def test_llava_576():
    # (336 / 14)^2 = 576 patches + CLS = 577 positions; "default" strategy drops CLS -> 576 tokens
    c = load("llava-hf/llava-1.5-7b-hf")
    item = dummy_item(None, c, None, "image", max_model_len=4096)
    assert (item.num_tokens, item.num_patches) == (576, 577)


LLAVA_NEXT = {
    "model_type": "llava_next", "architectures": ["LlavaNextForConditionalGeneration"],
    "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
    "text_config": {"model_type": "llama", "hidden_size": 4096},
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336, "patch_size": 14,
                      "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24},
}


def test_llava_next_anyres_max():
    # 672 x 672: best fit (672, 672) -> 2 x 2 grid -> 48 x 48 features, no padding:
    # 2304 + 48 newlines + 576 base = 2928 tokens (LLaVA-NeXT's well-known maximum); crops 4 + 1 base
    item = dummy_item(None, LLAVA_NEXT, None, "image", max_model_len=4096)
    assert (item.input_width, item.input_height, item.num_tokens) == (672, 672, 2928)
    assert item.num_crops == 5 and item.num_patches == 5 * 577
    # 1008 x 336 (3 x 1 grid): 24 rows x 72 cols = 1728 + 24 + 576 = 2328
    assert tokens_for_image(None, LLAVA_NEXT, None, 1008, 336) == 2328


def test_mistral3_pixtral_tokens():
    # image_size 1540, patch 14 x merge 2 = 28 -> 55 x 55 = 3025 tokens; 110 x 110 = 12100 patches
    c = load("mistralai/Mistral-Small-3.1-24B-Instruct-2503")
    item = dummy_item(None, c, None, "image", max_model_len=8192)
    assert (item.num_tokens, item.num_patches) == (3025, 12100)


def test_internvl_tiles():
    # max_dynamic_patch 12 + thumbnail = 13 tiles x (448/14)^2 * 0.5^2 = 256 -> 3328 tokens
    c = {"model_type": "internvl_chat", "architectures": ["InternVLChatModel"], "llm_config": {"hidden_size": 4096},
         "vision_config": {}}
    assert max_tokens_per_item(None, c, None, "image", max_model_len=8192) == 3328
    # a 448 x 448 image is one tile, no thumbnail
    assert tokens_for_image(None, c, None, 448, 448) == 256


def test_kimi_vl_dummy():
    # 1024 x 1024 with patch 14: 73 x 73 = 5329 > 4096 -> scale sqrt(4096/5329) -> 897 x 897,
    # padded to a multiple of 28 -> 924 -> 33 x 33 = 1089 tokens
    c = {"model_type": "kimi_vl", "architectures": ["KimiVLForConditionalGeneration"],
         "text_config": {"hidden_size": 2048}, "vision_config": {}}
    assert max_tokens_per_item(None, c, None, "image", max_model_len=8192) == 1089


def test_mllama_refused():
    with pytest.raises(UnsupportedError):
        max_tokens_per_item(None, {"model_type": "mllama"}, None, "image", max_model_len=8192)


# --------------------------------------------------------------------------- the budget


def test_budget_formula():
    # budget = max(mnbt 8192, 16384) = 16384 -> 1 item; per_prompt = min(999, 32768 // 16384) = 2
    b = encoder_budget({"image": 16384}, max_num_batched_tokens=8192, max_num_seqs=256, max_model_len=32768)
    assert (b.modality, b.num_items, b.budget_tokens, b.items_per_prompt["image"]) == ("image", 1, 16384, 2)
    # small items: budget 8192 // 256 = 32 items; decoder side 4 seqs x min(999, 4096 // 256 = 16) = 64 -> 32
    b = encoder_budget({"image": 256}, max_num_batched_tokens=8192, max_num_seqs=4, max_model_len=4096)
    assert b.num_items == 32
    # ... and 1 seq x 4 per prompt (limit 4) = 4 caps it
    b = encoder_budget({"image": 256}, max_num_batched_tokens=8192, max_num_seqs=1, max_model_len=4096,
                       limit_mm_per_prompt={"image": 4})
    assert b.num_items == 4


def test_budget_ties_go_to_larger_name():
    b = encoder_budget({"image": 1000, "video": 1000}, max_num_batched_tokens=8192, max_num_seqs=8,
                       max_model_len=8192)
    assert b.modality == "video"


def test_budget_limit_zero_disables():
    b = encoder_budget({"image": 1000, "video": 5000}, max_num_batched_tokens=8192, max_num_seqs=8,
                       max_model_len=8192, limit_mm_per_prompt={"video": 0})
    assert b.modality == "image" and b.num_items == 8  # 8192 // 1000 = 8, 8 seqs x 8 per prompt = 64
    off = encoder_budget({"image": 1000}, max_num_batched_tokens=8192, max_num_seqs=8, max_model_len=8192,
                         limit_mm_per_prompt={"image": {"count": 0}})
    assert off.modality is None and off.num_items == 0 and "will not be initialized" in off.log_line


def test_budget_without_chunked_prefill():
    # reqs = min(max_num_seqs 8, mnbt 8192 // 3000 = 2) = 2; per_prompt = min(999, 8192 // 3000 = 2) = 2;
    # enc_items = 8192 // 3000 = 2 -> N = min(2, 2 x 2) = 2
    b = encoder_budget({"image": 3000}, max_num_batched_tokens=8192, max_num_seqs=8, max_model_len=8192,
                       enable_chunked_prefill=False)
    assert b.num_items == 2


def test_budget_disable_chunked_mm_input_error():
    with pytest.raises(FlagError, match="Chunked MM input disabled"):
        encoder_budget({"image": 16384}, max_num_batched_tokens=8192, max_num_seqs=8, max_model_len=32768,
                       disable_chunked_mm_input=True)


def test_max_tokens_per_modality_skips_disabled():
    c, p = q3()
    assert max_tokens_per_modality(None, c, p, max_model_len=65536, limit_mm_per_prompt={"video": 0}) == {"image": 16384}


def test_dummy_override_only_shrinks():
    # --limit-mm-per-prompt '{"image": {"count": 2, "width": 1024, "height": 1024}}' on Qwen3-VL:
    # the dummy becomes 1024 x 1024 = 32 x 32 merged = 1024 tokens (4096 patches); budget unchanged.
    c, p = q3()
    prof = encoder_profile(c, p, max_num_batched_tokens=32768, max_num_seqs=8, max_model_len=65536,
                           limit_mm_per_prompt={"image": {"count": 2, "width": 1024, "height": 1024}, "video": 0})
    assert prof.budget.tokens_per_item == 16384 and prof.budget.num_items == 2
    assert (prof.item.num_tokens, prof.item.num_patches) == (1024, 4096)


# --------------------------------------------------------------------------- real vLLM 0.26 startups

TRUTH = Path(__file__).resolve().parents[2] / "data" / "truth" / "cases.jsonl"


def _truth_cases():
    if not TRUTH.exists():
        return []
    out = []
    for line in TRUTH.read_text().splitlines():
        case = json.loads(line)
        if case.get("measured", {}).get("encoder_budget_tokens"):
            out.append(case)
    return out


@pytest.mark.skipif(not _truth_cases(), reason="no truth cases with an encoder profile")
@pytest.mark.parametrize("case", _truth_cases(), ids=lambda c: c["id"])
def test_budget_matches_vllm_026_logs(case):
    # "Encoder cache will be initialized with a budget of B tokens, and profiled with N <modality> items"
    # as logged by real vLLM 0.26.0 V1-runner startups on H100 (data/truth, issue 7).
    a, m = case["args"], case["measured"]
    repo = case["model"]
    pre = load(repo, "preprocessor_config.json")
    prof = encoder_profile(load(repo), pre, max_num_batched_tokens=a["max_num_batched_tokens"],
                           max_num_seqs=a["max_num_seqs"], max_model_len=a["max_model_len"],
                           limit_mm_per_prompt=a.get("limit_mm_per_prompt"),
                           mm_processor_kwargs=a.get("mm_processor_kwargs"), version=(0, 26, 0))
    assert prof.budget.budget_tokens == m["encoder_budget_tokens"]
    assert prof.budget.num_items == m["encoder_profile_items"]
    assert prof.budget.modality == m["encoder_profile_modality"]


def test_qwen2_5_vl_video_request_tokens_by_hand():
    # Qwen2.5-VL video frames use the image processor's limits: 720x1280 -> smart_resize with factor 28 ->
    # 728x1288 (26 x 46 units); 64 frames / temporal patch 2 = 32 grid steps of (728/14) x (1288/14) = 52 x 92
    # = 4784 patches; merge 2x2 -> 32 x 4784 / 4 = 38,272 tokens
    from vramplan.api import load_model
    from vramplan.model.mm_tokens import video_item

    m = load_model("Qwen/Qwen2.5-VL-3B-Instruct")
    item = video_item(None, m.hf_config, m.preprocessor_config, 1280, 720, 64)
    assert (item.width, item.height) == (1288, 728)
    assert item.num_patches == 32 * 4784 and item.num_tokens == 38_272


def test_video_request_longer_than_max_model_len_is_refused_not_oom():
    import vramplan
    from vramplan.serving import RequestShape, serving_check

    p = vramplan.plan("Qwen/Qwen2.5-VL-3B-Instruct", max_model_len=32768)
    s = serving_check(p, RequestShape(video=(1280, 720, 64)))
    assert not s.fits and s.verdict.startswith("refused") and s.tokens_per_image == 38_272
