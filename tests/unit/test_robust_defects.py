"""Defects found trying vramplan as a new user would (issue 11), each pinned by a test that failed before its fix."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import vramplan
from vramplan.cli import main as cli_main
from vramplan.errors import InputError


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(argv))
    return code, out.getvalue(), err.getvalue()


# --- the default-util crash: fixes._fix_capacity compared the flag (None when left out) with a float -------------

def test_default_util_failing_plan_gets_a_fix_through_the_api():
    # 70B bf16 on two H100s at the default util and the model's 131072-token context: the KV cache is too
    # small for one request (the verdict), and the fix search must run with util at its default (0.92).
    plan = vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", device="h100-80gb", tensor_parallel_size=2)
    assert plan.args.gpu_memory_utilization is None and plan.engine.gpu_memory_utilization == 0.92
    assert plan.error_kind == "max_model_len_exceeds_kv_cache"
    from vramplan.fixes import attach_fix

    fixed = attach_fix(plan)
    assert fixed.fix and "--max-model-len" in fixed.fix


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_default_util_failing_plan_through_the_cli(json_flag):
    code, out, err = _cli("plan", "meta-llama/Llama-3.1-70B-Instruct", "--device", "h100-80gb", "-tp", "2", *json_flag)
    assert code == 0, err
    assert "internal error" not in err
    if json_flag:
        obj = json.loads(out)
        assert obj["verdict"] == "fails" and obj["fix"]


def test_fix_search_skips_candidates_vllm_refuses():
    # vLLM 0.6 refuses max_num_batched_tokens < max_model_len without chunked prefill: a candidate fix that
    # lowers the batch must count as "does not start", not raise out of the fix search.
    plan = vramplan.plan("Qwen/Qwen2.5-72B-Instruct", device="h100-80gb", vllm_version="0.6.3")
    from vramplan.fixes import attach_fix

    assert attach_fix(plan).verdict == plan.verdict


# --- Llama 4 Scout: a complex64 rotary buffer in its vision tower ------------------------------------------------

def test_complex64_is_eight_bytes():
    from vramplan.model.quant import dtype_bytes

    assert dtype_bytes("complex64") == 8  # two float32
    assert dtype_bytes("complex128") == 16


@pytest.mark.parametrize("device", ["h100-80gb", "h200", "b200", "ascend-910b3"])
def test_llama4_scout_plans_on_every_device(device):
    plan = vramplan.plan("meta-llama/Llama-4-Scout-17B-16E-Instruct", device=device, tensor_parallel_size=4,
                         max_model_len=8192)
    assert plan.verdict in ("starts", "fails")
