"""fit / knobs / sweep search with the planner itself: their answers are checked by planning again."""

from dataclasses import replace

import pytest

import vramplan
from vramplan.api import load_model, resolve_device
from vramplan.errors import InputError, NoFittingFlags
from vramplan.fit import Workload, fit, holds, knobs, parse_vary, sweep
from vramplan.engines.vllm.flags import EngineArgs
from vramplan.engines.vllm.planner import build_plan
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.units import GiB

CASES = [
    # seed 000: Qwen3-VL-2B on a 32 GB Ascend 910B4 beside other programs (3 GiB held)
    ("Qwen/Qwen3-VL-2B-Instruct", "ascend-910b4", 3.0, Workload(concurrency=4, context=8192)),
    ("Qwen/Qwen3-VL-2B-Instruct", "ascend-910b4", 0.0, Workload(concurrency=1, context=32768)),
    ("Qwen/Qwen3-8B", "h100-80gb", 10.0, Workload(concurrency=32, context=16384)),
    ("Qwen/Qwen3-8B", "l4", 0.0, Workload(concurrency=2, context=4096)),
    ("google/gemma-3-4b-it", "a100-40gb", 0.0, Workload(concurrency=8, context=32768)),
    ("Qwen/Qwen3-30B-A3B", "h200", 0.0, Workload(concurrency=16, context=32768)),
]


@pytest.mark.parametrize("model_id,device,others,workload", CASES)
def test_fit_answer_holds_and_one_step_lower_does_not(model_id, device, others, workload):
    model, dev, rules = load_model(model_id), resolve_device(device), for_version(None)
    res = fit(model, dev, rules, EngineArgs(model=model_id), workload, used_by_others_bytes=int(others * GiB))
    p = res.plan
    assert holds(p, workload)[0]
    util = p.engine.gpu_memory_utilization
    lower = build_plan(model, replace(p.args, gpu_memory_utilization=round(util - 0.01, 2)), dev, rules,
                       used_by_others_bytes=int(others * GiB))
    assert not holds(lower, workload)[0]
    assert f"--gpu-memory-utilization {util:.2f}" in res.serve_line


def test_fit_reports_nearest_alternative_when_it_does_not_fit():
    # 16 requests x 32k tokens of Qwen3-8B need 16 x 32768 x 147,456 B = 72 GiB of bf16 KV: too much
    # beside 15 GiB of weights on an 80 GB H100; fp8 KV halves it
    model, dev, rules = load_model("Qwen/Qwen3-8B"), resolve_device("h100-80gb"), for_version(None)
    res = fit(model, dev, rules, EngineArgs(), Workload(concurrency=16, context=32768))
    assert "kv-cache-dtype fp8" in res.answer
    assert res.plan.engine.kv_cache_dtype == "fp8" and holds(res.plan, Workload(concurrency=16, context=32768))[0]


def test_fit_gives_up_with_a_clear_error():
    model, dev, rules = load_model("Qwen/Qwen3-235B-A22B"), resolve_device("l4"), for_version(None)
    with pytest.raises(NoFittingFlags):
        fit(model, dev, rules, EngineArgs(), Workload(concurrency=1, context=4096))


def test_fit_with_fixed_util_reports_longest_context():
    model, dev, rules = load_model("Qwen/Qwen3-8B"), resolve_device("h100-80gb"), for_version(None)
    res = fit(model, dev, rules, EngineArgs(gpu_memory_utilization=0.5), Workload(concurrency=1))
    assert "longest max-model-len" in res.answer


def test_knobs_are_differences_of_two_plans():
    # seed 001's flags: Qwen3-VL-8B, TP=2, 65536 tokens, 8 seqs, 32768 batched tokens, util 0.95
    args = EngineArgs(model="Qwen/Qwen3-VL-8B-Instruct", tensor_parallel_size=2, max_model_len=65536, max_num_seqs=8,
                      max_num_batched_tokens=32768, gpu_memory_utilization=0.95, mm_processor_cache_gb=0)
    model, dev, rules = load_model("Qwen/Qwen3-VL-8B-Instruct"), resolve_device("ascend-910b3"), for_version(None)
    base, ks = knobs(model, dev, rules, args)
    assert base.starts
    nonkv = lambda p: p.logged_rank.bytes_of("non_kv_total") + p.logged_rank.bytes_of("cudagraph_estimate")  # noqa
    for k in ks:
        if k.plan is None:
            continue
        if k.name == "gpu-memory-utilization":
            # what the server stops taking: 0.05 x the device total
            assert k.freed_bytes == base.logged_rank.requested_bytes - k.plan.logged_rank.requested_bytes
            continue
        assert k.freed_bytes == nonkv(base) - nonkv(k.plan)
        if k.kv_tokens_added is not None:
            assert k.kv_tokens_added == k.plan.kv_cache_tokens - base.kv_cache_tokens
    names = {k.name for k in ks}
    assert {"max-num-batched-tokens", "limit-mm-per-prompt", "max_pixels", "cpu-offload-gb"} <= names
    # vllm-ascend has no fp8 (NPUPlatform.supported_quantization is ["ascend"]; no fp8 KV kernels), and the
    # processor cache is already 0 in seed 001's flags: neither is offered (issue 11)
    assert not names & {"KV-cache dtype", "checkpoint quantization", "mm-processor-cache-gb"}


def test_parse_vary():
    assert parse_vary("max-model-len=4096:65536", 5)[2] == [4096, 8192, 16384, 32768, 65536]
    assert parse_vary("kv-cache-dtype=auto,fp8")[2] == ["auto", "fp8"]
    with pytest.raises(InputError):
        parse_vary("max-model-len")
    with pytest.raises(InputError):
        parse_vary("seed=1:5")


def test_sweep_util_grows_kv():
    model, dev, rules = load_model("Qwen/Qwen3-8B"), resolve_device("h100-80gb"), for_version(None)
    plans = sweep(model, dev, rules, EngineArgs(max_model_len=8192), "gpu_memory_utilization", [0.3, 0.5, 0.7])
    tokens = [p.kv_cache_tokens for p in plans]
    assert tokens == sorted(tokens)


def test_sweep_and_plan_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    from vramplan.render.plot import plot_plan, plot_sweep

    p = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192)
    plot_plan(p, str(tmp_path / "plan.png"))
    model, dev, rules = load_model("Qwen/Qwen3-8B"), resolve_device("h100-80gb"), for_version(None)
    plans = sweep(model, dev, rules, EngineArgs(), "max_model_len", [4096, 40960])
    plot_sweep("max-model-len", [4096, 40960], plans, str(tmp_path / "sweep.svg"))
    assert (tmp_path / "plan.png").stat().st_size > 1000 and (tmp_path / "sweep.svg").stat().st_size > 1000
    with pytest.raises(InputError):
        plot_plan(p, str(tmp_path / "plan.txt"))


def test_serving_check_seed_001_image():
    # seed 001: each image's cached embedding was "cache: 384 M": a 4096x3072 photo is 12288 tokens;
    # 12288 x 4096 hidden x 2 bytes x (1 + 3 deepstack levels) = 384 MiB
    from vramplan.serving import RequestShape, serving_check

    p = vramplan.plan("Qwen/Qwen3-VL-8B-Instruct", device="ascend-910b3", tensor_parallel_size=2, max_model_len=65536,
                      max_num_seqs=8, max_num_batched_tokens=32768, gpu_memory_utilization=0.95)
    s = serving_check(p, RequestShape(image=(4096, 3072), images_per_request=1))
    emb = {t.key: t.bytes for t in s.terms}["request_embeddings"]
    assert s.tokens_per_image == 12288 and emb == 12288 * 4096 * 2 * 4 == 384 * 2**20
    assert s.fits


def test_watch_plans_the_watched_command():
    from vramplan.watch.cli import plan_levels_for

    levels, note = plan_levels_for(["vllm", "serve", "Qwen/Qwen3-8B", "--max-model-len", "4096"])
    # vLLM 0.34 (the default) with the extensible cache: six levels along the reserve, warm-up and commit
    # (watch/levels034.py); warmup_kernels commits 1 + 1,024 requests x 1 block (max_num_seqs 1024 on an H100)
    assert note is None and len(levels) == 6 and "planned warm-up commit (1,025 blocks)" in levels
    # weights level = memory in use at vLLM's snapshot + 15.27 GiB of weights; at the default release (0.34) the
    # snapshot holds 0.70 GiB ("cuda_memory=0.7GiB", data/truth/logs/h100e/q8b_e_unset.log)
    assert abs(levels["planned weights"] / GiB - (0.70 + 15.27)) < 0.02
    assert plan_levels_for(["python", "train.py"]) == (None, None)
