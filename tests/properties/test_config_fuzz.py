"""Random and mutated configs: the loader gives a description or one ConfigError/UnsupportedError, and a
description plans or refuses cleanly. Never a ValueError, TypeError or ZeroDivisionError from inside."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.inputs.devices import get_device
from vramplan.engines.vllm.flags import EngineArgs
from vramplan.inputs.model_source import catalog_ids, catalog_root
from vramplan.model.from_config import describe_config
from vramplan.engines.vllm.planner import build_plan
from vramplan.engines.vllm.rules.versions import for_version

MODELS = catalog_ids()
CORE = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
        "intermediate_size", "max_position_embeddings", "sliding_window", "rope_scaling", "rope_parameters",
        "tie_word_embeddings", "torch_dtype", "layer_types", "num_experts", "num_local_experts", "n_routed_experts",
        "moe_intermediate_size", "num_experts_per_tok", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
        "architectures", "text_config", "quantization_config")
VALUES = st.one_of(
    st.integers(min_value=-4, max_value=4), st.integers(min_value=-2**40, max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=12), st.lists(st.integers(min_value=-3, max_value=64), max_size=3),
    st.dictionaries(st.sampled_from(["factor", "rope_type", "type", "original_max_position_embeddings"]),
                    st.one_of(st.integers(-2, 8), st.text(max_size=5), st.none()), max_size=3),
    st.just("DELETE"),
)


def _resolved(model: str) -> tuple[dict, dict]:
    folder = catalog_root() / model
    raw = json.loads((folder / "config.json").read_text())
    return raw, json.loads((folder / "resolved.json").read_text())["config"]


def _mutate(cfg: dict, key: str, value, nested: bool) -> dict:
    out = json.loads(json.dumps(cfg))
    target = out
    if nested and isinstance(out.get("text_config"), dict):
        target = out["text_config"]
    if value == "DELETE":
        target.pop(key, None)
    else:
        target[key] = value
    return out


@settings(derandomize=True, max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), key=st.sampled_from(CORE), value=VALUES, nested=st.booleans(),
       plan_it=st.booleans())
def test_mutated_config_describes_or_refuses_cleanly(model, key, value, nested, plan_it):
    raw, resolved = _resolved(model)
    mutated = _mutate(resolved, key, value, nested)
    try:
        desc = describe_config(_mutate(raw, key, value, nested), name="m", resolved=mutated)
    except InputError as exc:
        assert "\n" not in exc.one_line()
        return
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"{model} {key}={value!r}: {type(exc).__name__}: {exc}")
    if not plan_it:
        return
    try:
        build_plan(desc, EngineArgs(max_model_len=4096), get_device("h100-80gb"), for_version(None))
    except InputError:
        return
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"{model} {key}={value!r}, planning: {type(exc).__name__}: {exc}")


@settings(derandomize=True, max_examples=150, deadline=None, database=None)
@given(config=st.dictionaries(st.sampled_from(CORE + ("model_type",)), VALUES, max_size=8))
def test_random_config_describes_or_refuses_cleanly(config):
    config = {k: v for k, v in config.items() if v != "DELETE"}
    config.setdefault("architectures", ["LlamaForCausalLM"])
    try:
        describe_config(config, name="r")
    except InputError:
        return
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"{config!r}: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("change,key", [
    ({"num_hidden_layers": "twenty-two"}, "num_hidden_layers"),
    ({"num_attention_heads": 0}, "num_attention_heads"),
    ({"hidden_size": -1024}, "hidden_size"),
    ({"hidden_size": None}, "hidden_size"),
    ({"intermediate_size": [3072]}, "intermediate_size"),
    ({"vocab_size": True}, "vocab_size"),
])
def test_wrong_values_give_one_config_error_naming_the_key(change, key, tmp_path):
    import contextlib
    import io

    from vramplan.cli import main

    raw, _ = _resolved("Qwen/Qwen3-0.6B")
    raw.update(change)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["plan", str(tmp_path), "--device", "l4"])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "internal error" not in lines[0]


@pytest.mark.parametrize("key,default", [("hidden_size", 4096), ("num_hidden_layers", 32)])
def test_a_left_out_size_takes_transformers_default_and_says_so(key, default, tmp_path):
    pytest.importorskip("transformers")
    import vramplan

    raw, _ = _resolved("Qwen/Qwen3-0.6B")
    del raw[key]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    plan = vramplan.plan(str(tmp_path), device="h100-80gb", max_model_len=4096)
    # transformers' Qwen3Config defaults (hidden_size=4096, num_hidden_layers=32): what vLLM builds too
    assert getattr(plan.model, key) == default
    assert any(key in w and "default" in w for w in plan.warnings)
