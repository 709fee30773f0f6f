"""The memoised encoder profile (no --limit-mm-per-prompt, no --mm-processor-kwargs) equals a fresh
``encoder_profile`` call, and a plan asked twice is the same plan (nothing shared is mutated)."""

import vramplan
from vramplan.estimate.encoder_profile import _plain_profile
from vramplan.model.mm_tokens import encoder_profile


def test_memo_equals_a_fresh_profile():
    model = vramplan.load_model("Qwen/Qwen3-VL-8B-Instruct")
    for mml in (4096, 32768):
        got = _plain_profile(model, 8192, 256, mml, True, (0, 34, 0))
        assert got is _plain_profile(model, 8192, 256, mml, True, (0, 34, 0))
        assert got == encoder_profile(model.hf_config, model.preprocessor_config, max_num_batched_tokens=8192,
                                      max_num_seqs=256, max_model_len=mml, version=(0, 34, 0))


def test_repeated_plans_are_identical_and_limits_still_apply():
    a = vramplan.plan("Qwen/Qwen3-VL-8B-Instruct", max_model_len=16384).to_dict()
    b = vramplan.plan("Qwen/Qwen3-VL-8B-Instruct", max_model_len=16384).to_dict()
    assert a == b
    c = vramplan.plan("Qwen/Qwen3-VL-8B-Instruct", max_model_len=16384, limit_mm_per_prompt={"image": 0, "video": 0})
    assert c.to_dict() != a
