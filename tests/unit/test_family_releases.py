"""Releases that can load the new architectures, and the SSM-state dtype chosen by release and flag.

Expected values: the registries and config hooks of the vLLM wheels named in vramplan/model/families/releases.py,
and hand arithmetic on the configs.
"""

import pytest

import vramplan
from vramplan.errors import UnsupportedError


@pytest.mark.parametrize("model_id, version", [
    ("Qwen/Qwen3.5-9B", "0.16.0"),  # 0.16.0's registry has no Qwen3_5ForConditionalGeneration (0.17.0 has)
    ("google/gemma-4-26B-A4B", "0.18.0"),  # 0.18.0 lacks Gemma4ForConditionalGeneration (0.19.0 has)
    ("XiaomiMiMo/MiMo-V2-Flash", "0.13.0"),  # added between 0.13.0 and 0.14.1
    ("MiniMaxAI/MiniMax-M2.7", "0.11.0"),  # added between 0.11.0 and 0.12.0
])
def test_release_without_the_architecture_is_refused_in_vllms_words(model_id, version):
    with pytest.raises(UnsupportedError, match=r"Model architectures \['\w+'\] are not supported for now"):
        vramplan.plan(model_id, vllm_version=version, max_model_len=8192)


def test_release_inside_the_unchecked_gap_plans_with_a_warning():
    # MiniMax-M2: 0.11.0 lacks it, 0.12.0 has it; 0.11.1 was not read
    p = vramplan.plan("MiniMaxAI/MiniMax-M2.7", vllm_version="0.11.1", tensor_parallel_size=4, max_model_len=32768)
    assert any("was not checked" in w for w in p.warnings)
    q = vramplan.plan("Qwen/Qwen3.5-9B", vllm_version="0.17.0", max_model_len=32768, max_num_seqs=64)
    assert not any("was not checked" in w for w in q.warnings)


def _nemotron_block(version, **kw):
    return vramplan.plan("nvidia/Nemotron-H-56B-Base-8K", device="h100-80gb", vllm_version=version,
                         tensor_parallel_size=4, max_model_len=8192, max_num_seqs=64, **kw).engine


def test_nemotron_ssm_dtype_fallback_by_release():
    # Nemotron-H-56B states no mamba_ssm_cache_dtype: float16 in v0.19.0, float32 from v0.20.0 (config.py:
    # NemotronHForCausalLMConfig). TP 4: H 256 / 4 = 64 heads x 64 x N 256; conv (16384 + 2 x 8 x 256) / 4 x 3 x 2;
    # attention 8 / 4 = 2 kv heads x 256 x 2 = 1024 B/token; block = 16 x cdiv(state, 16 x 1024)
    conv = (16384 + 2 * 8 * 256) // 4 * 3 * 2
    f16 = conv + 64 * 64 * 256 * 2
    f32 = conv + 64 * 64 * 256 * 4
    old, new = _nemotron_block("0.19.0"), _nemotron_block("0.21.0")
    assert old.mamba_ssm_dtype == "float16" and new.mamba_ssm_dtype == "float32"
    assert old.block_size == 16 * -(-f16 // (16 * 1024))
    assert new.block_size == 16 * -(-f32 // (16 * 1024))


def test_mamba_ssm_cache_dtype_flag_overrides_the_config():
    # Qwen3.5 asks float32; --mamba-ssm-cache-dtype bfloat16 wins (vLLM warns and uses the user's value).
    # 27B TP 2 on Hopper (v0.33): state 3 x 5120 x 2 + 24 x 128 x 128 x 2 = 817,152 B; 2048 B/token attention
    p = vramplan.plan("Qwen/Qwen3.5-27B", device="h100-80gb", vllm_version="0.33.0", tensor_parallel_size=2,
                      max_model_len=32768, max_num_seqs=64, flags=["--mamba-ssm-cache-dtype", "bfloat16"])
    assert p.engine.mamba_ssm_dtype == "bfloat16"
    assert p.engine.block_size == 64 * -(-817_152 // (64 * 2048))
