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
    # (pinned to 0.33, the release of the report; from 0.34 an unset util resolves to 1.0, tested below)
    plan = vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", device="h100-80gb", tensor_parallel_size=2,
                         vllm_version="0.33")
    assert plan.args.gpu_memory_utilization is None and plan.engine.gpu_memory_utilization == 0.92
    assert plan.error_kind == "max_model_len_exceeds_kv_cache"
    from vramplan.engines.vllm.fixes import attach_fix

    fixed = attach_fix(plan)
    assert fixed.fix and "--max-model-len" in fixed.fix


def test_default_util_failing_plan_gets_a_fix_on_034():
    # vLLM 0.34: util unset resolves to 1.0 under the extensible KV cache (CacheConfig.resolved_gpu_memory_utilization)
    plan = vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", device="h100-80gb", tensor_parallel_size=2)
    assert plan.args.gpu_memory_utilization is None and plan.engine.gpu_memory_utilization == 1.0
    assert plan.error_kind == "max_model_len_exceeds_kv_cache" and plan.fix and "--max-model-len" in plan.fix


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
    from vramplan.engines.vllm.fixes import attach_fix

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


# --- weights that do not fit: an out-of-memory failure in load_model, not no_kv_cache_memory ------------------------

def _qwen3_14b_weight_bytes() -> int:
    # Qwen3-14B config.json: hidden 5120, 40 layers, 40 heads, 8 KV heads, head_dim 128, intermediate 17408,
    # vocab 151936, untied LM head, bfloat16. vLLM pads the vocabulary to a multiple of 64 (151936 already is).
    h, layers, heads, kv, hd, inter, vocab = 5120, 40, 40, 8, 128, 17408, 151936
    per_layer = (h * heads * hd + 2 * h * kv * hd + heads * hd * h   # q, k, v, o
                 + 3 * h * inter                                     # gate, up, down
                 + 2 * h + 2 * hd)                                   # two RMSNorms, q_norm and k_norm
    params = layers * per_layer + 2 * vocab * h + h                  # + embed, lm_head, final norm
    return params * 2


def test_weights_larger_than_the_device_fail_while_loading():
    plan = vramplan.plan("Qwen/Qwen3-14B", device="l4")
    weights = _qwen3_14b_weight_bytes()
    assert weights > 22.03 * 2**30  # 27.5 GiB on a 22.03 GiB card
    assert plan.verdict == "fails"
    assert plan.error_kind == "out_of_memory" and plan.error_phase == "weight_loading"
    assert "CUDA out of memory" in plan.error_message and "Tried to allocate" in plan.error_message
    assert "not predicted" in plan.error_message  # which tensor fails is not knowable: said, not invented
    assert not any("Model loading took" in line for line in plan.log_lines)
    assert plan.num_gpu_blocks is None and plan.kv_cache_tokens is None
    # + the rotary cache (40960 x 128 x bf16 = 10 MiB) and the caching allocator's blocks (rules/allocator.py): the
    # embedding and the LM head (151936 x 5120 x 2 = 1483.75 MiB) take 1484 MiB segments, q/k norms 512-byte blocks
    blocks = 2 * (1484 - 1483.75) * 2**20 + 40 * 2 * (512 - 256)
    assert plan.logged_rank.bytes_of("weights") == weights + 40960 * 128 * 2 + blocks


def test_weights_oom_fix_is_checked_by_planning_it_again():
    from vramplan.engines.vllm.fixes import attach_fix

    fix = attach_fix(vramplan.plan("Qwen/Qwen3-14B", device="l4")).fix
    assert fix and "--tensor-parallel-size 2" in fix
    # each option offered starts when planned again
    assert vramplan.plan("Qwen/Qwen3-14B", device="l4", tensor_parallel_size=2).starts
    assert "bitsandbytes" in fix and vramplan.plan("Qwen/Qwen3-14B", device="l4", quantization="bitsandbytes").starts
    assert "a100-40gb" in fix and vramplan.plan("Qwen/Qwen3-14B", device="a100-40gb").starts


def test_weights_oom_triggers_on_free_memory_not_on_util():
    weights = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=4096).logged_rank.bytes_of("weights")
    ctx = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=4096)
    context = ctx.device.total_bytes - ctx.logged_rank.free_at_init_bytes  # what the runtime holds before loading
    # a card 0.1 GiB too small for weights + context: out of memory while loading
    small = (weights + context) / 2**30 - 0.1
    p = vramplan.plan("Qwen/Qwen3-8B", device_memory_gib=small, max_model_len=4096, gpu_memory_utilization=0.5)
    assert p.error_phase == "weight_loading"
    # 0.1 GiB more than that: the weights load; the budget (util 0.5, below the weights) fails later, at sizing
    big = (weights + context) / 2**30 + 0.1
    p = vramplan.plan("Qwen/Qwen3-8B", device_memory_gib=big, max_model_len=4096, gpu_memory_utilization=0.5)
    assert p.error_phase != "weight_loading" and p.error_kind == "no_kv_cache_memory"
    # other programs' memory counts: the same big card with 0.2 GiB used by others cannot load
    p = vramplan.plan("Qwen/Qwen3-8B", device_memory_gib=big, max_model_len=4096, gpu_memory_utilization=0.5,
                      used_by_others_gib=0.2)
    assert p.error_phase in ("weight_loading", "startup_check")


def test_startup_check_comes_before_loading():
    # util 0.99 on a card whose free memory is below 0.99 x total: the startup check refuses first
    # (0.33: vLLM 0.34's extensible KV cache skips this check, request_memory in v1/worker/utils.py)
    p = vramplan.plan("Qwen/Qwen3-14B", device="l4", gpu_memory_utilization=0.99, vllm_version="0.33")
    assert p.error_kind == "free_memory_below_requested" and p.error_phase == "startup_check"


def test_weights_oom_json_and_plot(tmp_path):
    code, out, err = _cli("plan", "Qwen/Qwen3-14B", "--device", "l4", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["error_kind"] == "out_of_memory" and obj["error_phase"] == "weight_loading"
    pytest.importorskip("matplotlib")
    from vramplan.render.plot import _stack, plot_plan

    plan = vramplan.plan("Qwen/Qwen3-14B", device="l4")
    stack = dict(_stack(plan))
    assert "kv_cache" not in stack and sum(stack.values()) > 22.03  # the bar runs past the device, uncut
    plot_plan(plan, str(tmp_path / "oom.png"))
    assert (tmp_path / "oom.png").stat().st_size > 0


def test_weights_oom_on_the_v0_engine():
    p = vramplan.plan("Qwen/Qwen3-14B", device="t4", vllm_version="0.6.3", max_model_len=2048)
    assert p.error_kind == "out_of_memory" and p.error_phase == "weight_loading"
    assert not any(line.startswith("Loading model weights took") for line in p.log_lines)


def test_explain_knows_the_weight_loading_phase():
    from vramplan.engines.vllm.log import ERROR_PHASES

    assert "weight_loading" in ERROR_PHASES


# --- --used-by-others-gib beyond the device, and ambiguous device names ---------------------------------------------

@pytest.mark.parametrize("others", ["30", "22.03", "21.6"])
def test_used_by_others_beyond_the_device_is_refused(others):
    # L4: 22.03 GiB reported, 0.51 GiB of CUDA context before vLLM's snapshot: 21.52 GiB is the most others can hold
    code, out, err = _cli("plan", "Qwen/Qwen3-0.6B", "--device", "l4", "--used-by-others-gib", others)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--used-by-others-gib" in err
    with pytest.raises(InputError):
        vramplan.plan("Qwen/Qwen3-0.6B", device="l4", used_by_others_gib=float(others))


def test_used_by_others_negative_is_refused():
    with pytest.raises(InputError):
        vramplan.plan("Qwen/Qwen3-0.6B", device="l4", used_by_others_gib=-1.0)
    code, out, err = _cli("plan", "Qwen/Qwen3-0.6B", "--device", "l4", "--used-by-others-gib=-1", "--json")
    assert code == 2 and "error" in json.loads(out)


def test_used_by_others_within_the_device_is_planned():
    p = vramplan.plan("Qwen/Qwen3-0.6B", device="l4", used_by_others_gib=21.0, vllm_version="0.33")
    assert p.error_kind == "free_memory_below_requested"
    # the startup check runs in init_device, before load_model: vLLM logs no "Model loading took" line
    assert not any("Model loading took" in line for line in p.log_lines)
    # 0.34 skips the check; 22.05 - 21 GiB less the context leaves less than the 1.12 GiB of weights
    p = vramplan.plan("Qwen/Qwen3-0.6B", device="l4", used_by_others_gib=21.0)
    assert p.error_kind == "out_of_memory" and p.error_phase == "weight_loading"


@pytest.mark.parametrize("name,choices", [("a100", ("a100-80gb", "a100-40gb")), ("A100", ("a100-80gb", "a100-40gb")),
                                          ("910b", ("ascend-910b3", "ascend-910b4"))])
def test_ambiguous_device_names_are_refused_with_the_choices(name, choices):
    code, out, err = _cli("plan", "Qwen/Qwen3-0.6B", "--device", name)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert all(c in err for c in choices)


@pytest.mark.parametrize("name,expected", [("a100-80gb", "a100-80gb"), ("a100-40g", "a100-40gb"), ("A100_80G", "a100-80gb"),
                                           ("h100", "h100-80gb"), ("4090", "rtx-4090"), ("910b4", "ascend-910b4")])
def test_exact_names_and_unambiguous_aliases_still_work(name, expected):
    from vramplan.inputs.devices import get_device

    assert get_device(name).name == expected


def test_ambiguous_name_with_a_size_is_fine():
    p = vramplan.plan("Qwen/Qwen3-0.6B", device="a100", device_memory_gib=39.49)
    assert abs(p.device.total_bytes - 39.49 * 2**30) < 2**20


def test_weights_oom_fix_combines_tp_with_the_next_fix_and_both_start():
    import re

    from vramplan.engines.vllm.fixes import attach_fix

    # Llama 4 Scout (109B parameters, bf16) cannot load on one H100; at TP 4 it loads, and its 10M-token
    # context then needs a shorter --max-model-len: the fix says both, and planning both starts
    fix = attach_fix(vramplan.plan("meta-llama/Llama-4-Scout-17B-16E-Instruct", device="h100-80gb")).fix
    m = re.search(r"--tensor-parallel-size (\d+).*--max-model-len to (\d+)", fix)
    assert m, fix
    assert vramplan.plan("meta-llama/Llama-4-Scout-17B-16E-Instruct", device="h100-80gb",
                         tensor_parallel_size=int(m.group(1)), max_model_len=int(m.group(2))).starts


def test_more_pipeline_stages_than_layers_is_one_line():
    # Qwen3-8B has 36 layers: -pp 100 left 64 stages empty and divided by zero sizing their KV cache
    with pytest.raises(InputError) as info:
        vramplan.plan("Qwen/Qwen3-8B", pipeline_parallel_size=100)
    assert "36" in info.value.one_line()
    assert vramplan.plan("Qwen/Qwen3-8B", pipeline_parallel_size=36, max_model_len=4096).verdict in ("starts", "fails")
