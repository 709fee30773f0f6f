"""--hf-overrides, applied to the config as vLLM does (vLLM v0.33.0 vllm/config/model.py:ModelConfig.__post_init__,
_apply_dict_overrides; vllm/transformers_utils/config.py:get_config), in the CLI flag and the API keyword."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import vramplan
from vramplan.cli import main
from vramplan.errors import InputError
from vramplan.engines.vllm.flags import parse_flags
from vramplan.model.overrides import merge_overrides

YARN4 = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}


def _cli_json(*argv: str) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, json.loads(out.getvalue())


def test_flag_parses_json_and_dotted_keys():
    a = parse_flags(["--hf-overrides", '{"max_position_embeddings": 131072}']).args
    assert a.hf_overrides == {"max_position_embeddings": 131072}
    b = parse_flags(["--hf-overrides.rope_scaling.factor", "4", "--hf-overrides.rope_scaling.rope_type=yarn"]).args
    assert b.hf_overrides == {"rope_scaling": {"factor": 4, "rope_type": "yarn"}}
    assert "--hf-overrides" not in parse_flags(["--hf-overrides", "{}"]).ignored


@pytest.mark.parametrize("bad", ["[1]", "not json", '"text"'])
def test_flag_refuses_what_is_not_a_json_object(bad):
    with pytest.raises(InputError):
        parse_flags(["--hf-overrides", bad])


def test_merge_follows_vllm():
    cfg = {"num_hidden_layers": 36, "rope_scaling": {"rope_type": "linear", "factor": 2.0, "x": 1},
           "text_config": {"model_type": "qwen3", "num_hidden_layers": 36, "hidden_size": 4096},
           "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
    out = merge_overrides(cfg, {"num_hidden_layers": 18, "rope_scaling": {"rope_type": "yarn", "factor": 4.0},
                                "text_config": {"num_hidden_layers": 12},
                                "quantization_config": {"quant_method": "fp8"}})
    assert out["num_hidden_layers"] == 18                                   # flat: setattr on the top level
    assert out["text_config"] == {"model_type": "qwen3", "num_hidden_layers": 12, "hidden_size": 4096}  # nested: merged
    assert out["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0}      # a dict attribute: replaced whole
    assert out["quantization_config"] == {"quant_method": "fp8"}
    assert cfg["num_hidden_layers"] == 36                                   # the input is not changed


def test_yarn_on_qwen3_8b_derives_max_model_len_as_vllm_does():
    # Qwen3-8B: max_position_embeddings 40960. YaRN factor 4 over an original 32768:
    # vLLM 0.33 (_get_and_verify_max_len) does not multiply yarn's factor (max_position_embeddings is taken as
    # already scaled): 40960. vLLM 0.26 replaces it by original_max_position_embeddings x factor = 131072.
    p33 = vramplan.plan("Qwen/Qwen3-8B", hf_overrides={"rope_scaling": YARN4})
    assert p33.max_model_len == 40960
    p26 = vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.26.0", hf_overrides={"rope_scaling": YARN4})
    assert p26.max_model_len == 32768 * 4
    # Qwen's own recipe also raises max_position_embeddings: 131072 on 0.33
    p = vramplan.plan("Qwen/Qwen3-8B", hf_overrides=json.dumps({"rope_scaling": YARN4,
                                                                "max_position_embeddings": 131072}))
    assert p.max_model_len == 131072
    assert vramplan.plan("Qwen/Qwen3-8B").max_model_len == 40960


def test_layer_count_override_scales_the_weights_by_hand():
    # Qwen3-8B decoder layer: q 4096x4096, k and v 4096x1024 each, o 4096x4096, gate/up/down 3 x 4096x12288,
    # two RMSNorms of 4096 and q/k norms of 128: 192,946,432 parameters, bf16.
    per_layer = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096 + 3 * 4096 * 12288 + 2 * 4096 + 2 * 128
    full = vramplan.plan("Qwen/Qwen3-8B", max_model_len=4096).logged_rank.bytes_of("weights")
    half = vramplan.plan("Qwen/Qwen3-8B", max_model_len=4096,
                         hf_overrides={"num_hidden_layers": 18}).logged_rank.bytes_of("weights")
    # the caching allocator gives each 256-byte q_norm / k_norm a 512-byte block (rules/allocator.py round_size)
    assert full - half == 18 * per_layer * 2 + 18 * 2 * (512 - 256)


def test_cli_flag_and_api_agree():
    code, obj = _cli_json("plan", "Qwen/Qwen3-8B", "--vllm-version", "0.26.0", "--hf-overrides",
                          json.dumps({"rope_scaling": YARN4}), "--json")
    assert code == 0 and obj["max_model_len"] == 131072
    code, obj = _cli_json("plan", "Qwen/Qwen3-8B", "--hf-overrides.num_hidden_layers", "18", "--json")
    api = vramplan.plan("Qwen/Qwen3-8B", hf_overrides={"num_hidden_layers": 18})
    assert code == 0 and obj["memory_gib"]["weights"] == round(api.logged_rank.bytes_of("weights") / 2**30, 4)
    assert any("--hf-overrides" in w for w in obj["warnings"])


def test_an_override_that_breaks_the_config_is_one_line():
    with pytest.raises(InputError) as info:
        vramplan.plan("Qwen/Qwen3-8B", hf_overrides={"num_attention_heads": 0})
    assert "--hf-overrides" in info.value.one_line() and "num_attention_heads" in info.value.one_line()
    with pytest.raises(InputError):
        vramplan.plan("Qwen/Qwen3-8B", hf_overrides="[1, 2]")


def test_the_fix_search_does_not_apply_overrides_twice():
    from vramplan.engines.vllm.fixes import attach_fix

    p = attach_fix(vramplan.plan("Qwen/Qwen3-8B", device="l4", hf_overrides={"max_position_embeddings": 131072}))
    assert p.verdict == "fails" and p.fix
    assert sum("--hf-overrides" in w for w in p.warnings) == 1


def test_rope_scaling_override_on_transformers_4_releases():
    # vLLM 0.19 runs on transformers < 5: patch_rope_parameters copies the file's RoPE (Qwen3-8B: default, no
    # factor) into rope_parameters before the dict override sets rope_scaling, and max_model_len is derived from
    # rope_parameters: still 40960. Overriding rope_parameters itself does reach it: yarn on 0.19 gives
    # original_max_position_embeddings x factor = 131072.
    assert vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.19.0", hf_overrides={"rope_scaling": YARN4}).max_model_len == 40960
    assert vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.19.0",
                         hf_overrides={"rope_parameters": YARN4}).max_model_len == 131072
