"""The vLLM log reader (vramplan.engines.vllm.log).

Expected values come from the logs themselves (the public cases' ``reported`` records, our device runs'
``measured`` records, the seed 001 notes) or are written by hand next to the line they come from.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from vramplan.errors import LogParseError
from vramplan.engines.vllm.log import (
    ERAS,
    ERROR_KINDS,
    ERROR_PHASES,
    ERROR_SUBKINDS,
    FIGURE_KINDS,
    PHASE_KINDS,
    LogFacts,
    LogReader,
    parse_log_text,
    read_log,
)
from vramplan.engines.vllm.log._args import parse_command, parse_config_dump, parse_pylike_dict
from vramplan.engines.vllm.log._lines import clean_line, normalise_rank

DATA = Path(__file__).resolve().parents[2] / "data"
PUBLIC = DATA / "public"
DEVICE = DATA / "device_v026"
SEED = next((DATA / "seeds").glob("001_*.txt"))


def _cases(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


PUBLIC_CASES = _cases(PUBLIC / "vllm_startup_cases.jsonl")
DEVICE_CASES = _cases(DEVICE / "cases.jsonl")

# record field -> LogFacts attributes that may hold it. Weights and the activation peak are printed twice by
# vLLM (model-load line vs profiling summary; profiling repr vs --kv-cache-memory suggestion line) and the
# collectors recorded one or the other; the figure must equal one of the two.
FIELD = {
    "weights_gib": ("weights_gib", "profile_weights_gib"),
    "non_torch_gib": ("non_torch_gib",),
    "activation_peak_gib": ("torch_peak_increase_gib", "peak_activation_gib"),
    "torch_peak_increase_gib": ("torch_peak_increase_gib",),
    "kv_cache_gib": ("kv_cache_gib",),
    "available_kv_cache_gib": ("kv_cache_gib",),
    "kv_cache_tokens": ("kv_cache_tokens",),
    "gpu_blocks": ("num_gpu_blocks",),
    "num_gpu_blocks": ("num_gpu_blocks",),
    "block_size": ("block_size",),
    "max_concurrency": ("max_concurrency",),
    "max_concurrency_len": ("max_concurrency_len",),
    "cudagraph_gib": ("cudagraph_actual_gib",),
    "cudagraph_actual_gib": ("cudagraph_actual_gib",),
    "cudagraph_estimated_gib": ("cudagraph_estimate_gib",),
    "non_kv_total_gib": ("non_kv_total_gib",),
    "requested_memory_gib": ("requested_gib",),
    "initial_free_memory_gib": ("initial_free_gib",),
}

# (case id, field) -> why the figure is not in the case's log excerpt (read from the case's notes).
SKIP = {
    ("kimi-linear-48b-a3b-awq-2x3090-tp2", "kv_cache_gib"): "2.30 GiB is quoted in the author's prose, no log line",
    ("minimax-m2-2xmi300x-tp2-v0171", "kv_cache_tokens"): "PR author's summary ('KV cache: 497,600 tokens'), not a log line",
    ("mistral-7b-gptq-128g-class-nvcr2511", "block_size"): "16 is the collector's inference (52510 x 16 = 840,160), not logged",
    ("qwen25-7b-1m-rtx3050-6g-wsl-v073-negative", "gpu_blocks"): "'0 GPU cache blocks allocated' is the author's prose",
    ("qwen25-7b-1m-rtx3050-6g-wsl-v073-negative", "max_concurrency"): "'0.00x concurrency at 4200 tokens' is prose",
    ("qwen25-7b-1m-rtx3050-6g-wsl-v073-negative", "max_concurrency_len"): "'0.00x concurrency at 4200 tokens' is prose",
    ("qwen25-vl-32b-gb10-v0240-util092-fail", "weights_gib"): "author's Korean summary line, not vLLM's",
    ("qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778", "weights_gib"): "commenter prose",
    ("qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778", "non_torch_gib"): "commenter prose",
    ("qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778", "activation_peak_gib"): "commenter prose",
    ("qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778", "cudagraph_gib"): "commenter prose",
    ("qwen38-27b-2x7900xt-rocm-tp2-v0231-mamba161", "kv_cache_gib"): "'(3.86 GiB, 123 399 tokens)' is author prose",
    ("qwen38-27b-2x7900xt-rocm-tp2-v0231-mamba161", "kv_cache_tokens"): "'(3.86 GiB, 123 399 tokens)' is author prose",
    ("r1-distill-qwen14b-2x4090-tp2", "kv_cache_gib"): "user paraphrase 'reserved for KV Cache is only 8.69GiB'",
}
# the five qwen3-14b-awq arms are the author's markdown tables, not log lines
for _cid in ("qwen3-14b-awq-2xl4-pp2-v0280", "qwen3-14b-awq-2xl4-tp2-v0280", "qwen3-14b-awq-l4-replica-v0280",
             "qwen3-14b-awq-l4-single-v0280", "qwen3-14b-awq-l40s-v0280-tuned"):
    for _f in ("kv_cache_gib", "kv_cache_tokens", "max_concurrency", "max_concurrency_len"):
        SKIP[(_cid, _f)] = "author's summary table (markdown), not vLLM log lines"
for _c in DEVICE_CASES:
    SKIP[(_c["id"], "num_gpu_blocks")] = "v0.26 does not log num_gpu_blocks; the figure is the harness's RESULT line"
    SKIP[(_c["id"], "used_after_init_gib")] = "nvidia-smi reading by the harness, not a vLLM line"

# Cases whose excerpt holds no vLLM line at all (only tables or prose): reading them is a LogParseError.
NO_VLLM_LINES = {
    "minimax-m2-2xmi300x-tp2-v0171", "qwen3-14b-awq-2xl4-pp2-v0280", "qwen3-14b-awq-2xl4-tp2-v0280",
    "qwen3-14b-awq-l4-replica-v0280", "qwen3-14b-awq-l4-single-v0280", "qwen36-35b-a3b-w4a16-lora-l40s-v0240-mamba13",
}

# The error kind each failing case's excerpt shows, classified by hand from the record's error text.
EXPECTED_ERROR = {
    "deepseek-coder-6.7b-2xt4-tp2-v04": "startup_failed",  # 'Error execut' (cut)
    "gemma4-31b-it-m2ultra-vllm-metal-frac05": "max_model_len_exceeds_kv_cache",
    "gpt-oss-120b-h100-negative-kv": "no_kv_cache_memory",
    "llama31-8b-class-a10-22g-oci-fail": "max_model_len_exceeds_kv_cache",
    "llama31-8b-rtx3090-len29k-fail": "max_model_len_exceeds_kv_cache",
    "llama32-11b-vision-instruct-32g-profile-oom": "out_of_memory",
    "nemotron-120b-2xh100-nim-mamba524": "no_kv_cache_memory",
    "qwen25-0.5b-mi350x-288g-busy-fail": "free_memory_below_requested",
    "qwen25-7b-1m-rtx3050-6g-wsl-v073-negative": "no_kv_cache_memory",
    "qwen25-7b-rtx4060-8g-negative-kv": "no_kv_cache_memory",
    "qwen25-vl-32b-gb10-v0240-util092-fail": "free_memory_below_requested",
    "qwen3-0.6b-rtx3060-6g-wsl-util09-fail": "free_memory_below_requested",
    "qwen3-32b-4x910b4-tp4-v090-ascend": "startup_failed",  # capture_model traceback, cause cut
    "qwen3-coder-30b-a3b-fp8-pp2-5070ti-5090d": "max_model_len_exceeds_kv_cache",
    "qwen3-next-80b-ascend-v0130-npu-oom": "out_of_memory",
    "qwen35-4b-w4a16-lora-l40s-v0240-mamba243": "no_kv_cache_memory",
    "qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778": "max_model_len_exceeds_kv_cache",
    "qwen36-27b-fp8-h100-util095-recipes551-mamba856": "no_kv_cache_memory",
    "qwen36-27b-h100-kaito-v0251-mamba614": "no_kv_cache_memory",
    "qwen38-27b-2x7900xt-rocm-tp2-v0231-mamba161": "no_kv_cache_memory",
    "qwen38-27b-h100-v0280-len132k-mamba969": "no_kv_cache_memory",
    "r1-distill-qwen14b-2x4090-tp2": "max_model_len_exceeds_kv_cache",
    "vlm-jetson-orin-jp6-mm-image1-video-default-fail": "max_model_len_exceeds_kv_cache",
}
# error records whose kind is not in the excerpt: (what the log shows instead, why)
ERROR_SKIP = {
    "gpt-oss-120b-h100-kv1.71-fail": ("startup_failed", "excerpt stops at 'EngineCore failed to start'; the cause is the user's prose"),
    "gpt-oss-120b-h100-v0141-oom": (None, "the OOM is the issue title; the excerpt ends at torch.compile"),
    "qwen25-vl-72b-4xa100-tp4-v083-oom": (None, "the OOM is the user's words; the excerpt only has weights lines"),
    "qwen3-30b-a3b-4gpu-tp4-v085-oom": ("startup_failed", "OOM only in the issue title; the log shows the capture_model traceback"),
    "qwen3-next-80b-ascend-tp4-v012rc1": ("startup_failed", "OOM only in the issue title; the log shows initialize_from_config"),
    "qwen36-35b-a3b-w4a16-lora-l40s-v0240-mamba13": (None, "the failure is the author's bullet, no log line"),
}
# record fields stored under another name than the log's meaning: (case, field) -> (attribute, why)
REMAP = {
    ("qwen38-27b-bf16-dgx-spark-gb10", "non_kv_total_gib"): (
        "total_consumed_gib", "the record stores v0.33's 'X GiB for consumed memory (weights + non-torch)' as non-KV total"),
}


def _log_path(case: dict, device: bool) -> Path:
    return DEVICE / case["source"]["log"] if device else PUBLIC / "logs" / f"{case['id']}.log"


def _read(case: dict, device: bool) -> LogFacts:
    reader = LogReader()
    with open(_log_path(case, device), encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            reader.feed(line)
    facts = reader.finish()
    assert reader.internal_errors == []
    return facts


def _check_record(case: dict, record: dict, facts: LogFacts) -> list[str]:
    misses = []
    for key, want in record.items():
        if want is None or key == "error" or (case["id"], key) in SKIP:
            continue
        if (case["id"], key) in REMAP:
            attrs: tuple[str, ...] = (REMAP[(case["id"], key)][0],)
        else:
            assert key in FIELD, f"no mapping for record field {key}"
            attrs = FIELD[key]
        got = [getattr(facts, a) for a in attrs]
        if want not in got:
            misses.append(f"{key}: want {want!r}, got {dict(zip(attrs, got))}")
    return misses


@pytest.mark.parametrize("case", PUBLIC_CASES, ids=[c["id"] for c in PUBLIC_CASES])
def test_public_case_figures(case):
    if case["id"] in NO_VLLM_LINES:
        with pytest.raises(LogParseError, match="no vLLM log lines found"):
            read_log(_log_path(case, False))
        return
    facts = _read(case, False)
    assert _check_record(case, case["reported"], facts) == []
    err = case["reported"]["error"]
    if err is None:
        return
    if case["id"] in ERROR_SKIP:
        assert facts.error_kind == ERROR_SKIP[case["id"]][0]
    else:
        assert facts.error_kind == EXPECTED_ERROR[case["id"]], err
        assert facts.error_message


@pytest.mark.parametrize("case", DEVICE_CASES, ids=[c["id"] for c in DEVICE_CASES])
def test_device_case_figures(case):
    facts = _read(case, True)
    assert _check_record(case, case["measured"], facts) == []
    # a null in our own measurements: no graph was captured / estimated, and the reader must not invent one
    if case["measured"]["cudagraph_estimated_gib"] is None:
        assert facts.cudagraph_estimate_gib is None
    if case["measured"]["cudagraph_actual_gib"] is None:  # eager: only the suggestion line's '0.0 GiB for CUDAGraph memory'
        assert facts.cudagraph_actual_gib == 0.0 and not any(e.kind == "graphs_captured" for e in facts.events)
    assert facts.vllm_version == "0.26.0" and facts.era == "v1-v0.26" and facts.platform == "cuda"
    assert facts.total_memory_gib == case["hardware"]["total_memory_gib"]
    assert facts.args["max_model_len"] == case["args"]["max_model_len"]
    assert facts.args["gpu_memory_utilization"] == case["args"]["gpu_memory_utilization"]
    assert facts.args["enforce_eager"] is case["args"]["enforce_eager"]
    assert facts.error_kind is None


def test_skip_lists_are_live():
    """Every skipped figure really is missing from what the reader finds (else drop it from the list)."""
    by_id = {c["id"]: (c, False) for c in PUBLIC_CASES} | {c["id"]: (c, True) for c in DEVICE_CASES}
    for (cid, key) in SKIP:
        case, device = by_id[cid]
        rec = case["measured" if device else "reported"]
        if rec.get(key) is None or cid in NO_VLLM_LINES:
            continue
        facts = _read(case, device)
        got = [getattr(facts, a) for a in FIELD.get(key, ())]
        assert rec[key] not in got, f"{cid}/{key} is recovered now: remove it from SKIP"


def test_device_runner_and_phases():
    facts = read_log(DEVICE / "qwen3-vl-8b_graph_8k-1024.log")
    assert facts.runner == "v2"  # 'Using V2 Model Runner' and 'Model loading took 16.79 GiB and'
    assert read_log(DEVICE / "qwen3-30b-a3b_graph_8k-1024.log").runner == "v1"
    phases = [e.kind for e in facts.events if e.kind in PHASE_KINDS]
    firsts = list(dict.fromkeys(phases))
    assert firsts == ["engine_start", "device_ready", "weights_loaded", "profiling_done", "kv_allocated",
                      "graphs_captured", "ready", "request"]
    assert facts.timings["init_engine_s"] == 67.82 and facts.timings["compilation_s"] == 40.76
    assert facts.device_name is None and facts.model == "/tmp/models/qwen3-vl-8b_graph_8k-1024"
    assert facts.architecture == "Qwen3VLForConditionalGeneration"
    moe = read_log(DEVICE / "qwen3-30b-a3b_graph_8k-1024.log")
    assert moe.device_name == "NVIDIA H100 80GB HBM3"  # from the fused-MoE config file name
    assert moe.cudagraph_estimate_applied is True
    assert moe.args["cudagraph_mode"] == "FULL_AND_PIECEWISE" and moe.args["max_cudagraph_capture_size"] == 512
    assert any("0.9081" in w for w in moe.warnings)


def test_seed_001():
    f = read_log(SEED)
    assert (f.weights_gib, f.profile_weights_gib) == (9.1948, 9.19)
    assert f.torch_peak_increase_gib == 3.86
    assert f.non_torch_gib == 0.56
    assert f.non_kv_total_gib == 13.61
    assert f.kv_cache_gib == 44.30
    assert f.kv_cache_tokens == 645_120
    assert f.initial_free_gib == 60.61
    assert f.requested_gib == 57.91 and f.gpu_memory_utilization == 0.95
    assert f.total_memory_gib == 60.96
    assert (f.free_after_profile_gib, f.free_after_profile_within_requested_gib) == (50.30, 47.60)
    assert (f.encoder_budget_tokens, f.encoder_profile_items, f.encoder_profile_modality) == (32768, 2, "image")
    assert f.era == "ascend" and f.platform == "ascend"
    assert f.args["tensor_parallel_size"] == 2 and f.args["max_model_len"] == 65536
    assert f.args["max_num_seqs"] == 8 and f.args["max_num_batched_tokens"] == 32768
    assert f.env["PYTORCH_NPU_ALLOC_CONF"] == "expandable_segments:True"
    extras = f.ranks["main"].extras
    assert extras["peak_activation_memory new"] == 4.11
    assert extras["non_torch_memory before init HCCL"] == 0.35
    assert extras["torch_memory after profiling multi-modal"] == 17.69
    assert f.timings["weights_load_s"] == 4.29


# ------------------------------------------------------------------------------------------------------
# every line format, one line at a time: (line, {field: expected}) with the numbers written by hand

LINES = [
    # model loading
    ("INFO 12-22 10:55:34 model_runner.py:1097] Loading model weights took 8.5107 GB", {"weights_gib": 8.5107}),
    (">> INFO 02-29 19:21:45 model_runner.py:90] Loading model weights took 244.61 MB", {"weights_gib": 244.61 / 1024}),
    ("(EngineCore_DP0 pid=1) INFO 01-16 14:20:17 [gpu_model_runner.py:3659] Model loading took 1.9148 GiB memory and 1.283947 seconds",
     {"weights_gib": 1.9148, "runner": "v1"}),
    ("(EngineCore pid=3) INFO 11-22 16:36:40 [v1/worker/gpu/model_runner.py:305] Model loading took 15.0 GiB and 2.174258 seconds",
     {"weights_gib": 15.0, "runner": "v2"}),
    ("INFO 03-28 05:51:33 [gpu_model_runner.py:1201] Model loading took 1.9134 GB and 2.125815 seconds", {"weights_gib": 1.9134}),
    ("(VllmWorkerProcess pid=880) INFO 02-07 14:50:41 hpu_model_runner.py:712] Pre-loading model weights on hpu:0 took 79.41 GiB "
     "of device memory (79.41 GiB/94.62 GiB used) and 4.706 GiB of host memory (98.92 GiB/1007 GiB used)",
     {"weights_gib": 79.41, "total_memory_gib": 94.62, "platform": "hpu", "era": "fork"}),
    # profiling, V0
    ("INFO 11-20 worker.py:233] Memory profiling results: total_gpu_memory=23.58GiB initial_memory_usage=15.34GiB "
     "peak_torch_memory=17.06GiB memory_usage_post_profile=15.35Gib non_torch_memory=0.35GiB kv_cache_size=3.81GiB "
     "gpu_memory_utilization=0.90", {"total_memory_gib": 23.58, "non_torch_gib": 0.35, "kv_cache_gib": 3.81,
                                     "gpu_memory_utilization": 0.9, "era": "v0-pr9352"}),
    ("Memory profiling results: duration=3.12 seconds, total_gpu_memory=79.22GiB, initial_memory_usage=15.3GiB, "
     "peak_torch_memory=17.1GiB, memory_usage_post_profile=15.4GiB, non_torch_memory=0.4GiB, kv_cache_size=54.0GiB, "
     "gpu_memory_utilization=0.90.", {"kv_cache_gib": 54.0, "non_torch_gib": 0.4, "total_memory_gib": 79.22}),
    ("INFO 02-26 09:54:05 worker.py:267] the current vLLM instance can use total_gpu_memory (8.00GiB) x "
     "gpu_memory_utilization (0.70) = 5.60GiB", {"total_memory_gib": 8.0, "gpu_memory_utilization": 0.7, "requested_gib": 5.6,
                                                  "era": "v0-pr10511"}),
    ("INFO 02-26 09:54:05 worker.py:267] model weights take 5.20GiB; non_torch_memory takes 0.03GiB; PyTorch activation "
     "peak memory takes 1.42GiB; the rest of the memory reserved for KV Cache is -1.05GiB.",
     {"weights_gib": 5.2, "non_torch_gib": 0.03, "torch_peak_increase_gib": 1.42, "kv_cache_gib": -1.05,
      "error_kind": "no_kv_cache_memory", "error_subkind": "negative_kv_cache"}),
    ("INFO 03-13 08:56:40 [executor_base.py:111] # cuda blocks: 5148, # CPU blocks: 9362",
     {"num_gpu_blocks": 5148, "num_cpu_blocks": 9362, "era": "v0-early"}),
    ("INFO 12-31 08:01:48 [executor_base.py:112] # rocm blocks: 6495, # CPU blocks: 2340", {"num_gpu_blocks": 6495, "platform": "rocm"}),
    ("INFO 01-30 03:19:14 kv_cache_utils.py:395] # GPU blocks: 1381", {"num_gpu_blocks": 1381, "era": "v1-pre-pr19312"}),
    ("INFO 03-13 08:56:40 [executor_base.py:116] Maximum concurrency for 2000 tokens per request: 41.18x",
     {"max_concurrency": 41.18, "max_concurrency_len": 2000}),
    ("INFO 02-13 15:57:03 model_runner.py:1562] Graph capturing finished in 41 secs, took 0.58 GiB",
     {"cudagraph_actual_gib": 0.58}),
    ("INFO 10-18 01:45:27 model_runner.py:1428] Graph capturing finished in 11 secs.", {"cudagraph_actual_gib": None}),
    # profiling, V1
    ("(EngineCore pid=1) DEBUG 11-22 16:39:56 [v1/worker/gpu_worker.py:559] Memory profiling takes 44.56 seconds. Total non KV "
     "cache memory: 17.79GiB; torch peak memory increase: 0.78GiB; non-torch forward increase memory: 0.22GiB; weights memory: 16.79GiB.",
     {"non_kv_total_gib": 17.79, "torch_peak_increase_gib": 0.78, "non_torch_gib": 0.22, "profile_weights_gib": 16.79,
      "era": "v1-pr19312"}),
    ("DEBUG 07-01 10:00:00 [gpu_worker.py:700] Memory profiling takes 12.01 seconds. Total non KV cache memory: 20.5GiB; torch "
     "peak memory increase: 2.1GiB; total consumed (from mem_get_info): 18.9GiB; weights memory: 15.27GiB.",
     {"non_kv_total_gib": 20.5, "total_consumed_gib": 18.9, "torch_peak_increase_gib": 2.1, "era": "v1-v0.33"}),
    ("DEBUG 11-22 16:39:56 [v1/worker/gpu_worker.py:548] Initial free memory: 78.66 GiB; Requested memory: 0.900000 (util), 71.26 GiB",
     {"initial_free_gib": 78.66, "gpu_memory_utilization": 0.9, "requested_gib": 71.26, "era": "v1-v0.26"}),
    ("Initial free memory: 60.61 GiB; Requested memory: 0.95 (util), 57.91 GiB", {"requested_gib": 57.91, "era": "v1-pr21429"}),
    ("DEBUG 06-20 10:00:00 [gpu_worker.py:230] Initial free memory: 70.1 GiB, free memory: 20.5 GiB, requested GPU memory: 71.3 GiB",
     {"initial_free_gib": 70.1, "free_after_profile_gib": 20.5, "requested_gib": 71.3, "era": "v1-pr19312"}),
    ("DEBUG 11-22 16:39:56 [v1/worker/gpu_worker.py:554] Free memory after profiling: 60.88 GiB (total), 53.48 GiB (within requested)",
     {"free_after_profile_gib": 60.88, "free_after_profile_within_requested_gib": 53.48}),
    ("(EngineCore pid=3913) DEBUG 11-22 16:39:08 [v1/worker/gpu_worker.py:390] worker init memory snapshot: torch_peak=0.0GiB, "
     "free_memory=78.66GiB, total_memory=79.18GiB, cuda_memory=0.51GiB, torch_memory=0.0GiB, non_torch_memory=0.51GiB, "
     "timestamp=1795365548.2651262, auto_measure=True", {"initial_free_gib": 78.66, "total_memory_gib": 79.18}),
    ("DEBUG 11-22 16:39:08 [v1/worker/gpu_worker.py:391] worker requested memory: 71.26GiB", {"requested_gib": 71.26}),
    ("(Worker_TP0 pid=118) INFO 05-04 01:05:57 [gpu_worker.py:440] Available KV cache memory: 9.74 GiB", {"kv_cache_gib": 9.74}),
    ("INFO 07-01 [gpu_worker.py:470] Initial free memory 70.12 GiB, reserved 40.0 GiB memory for KV Cache as specified by "
     "kv_cache_memory_bytes config and skipped memory profiling. This does not respect the gpu_memory_utilization config.",
     {"kv_cache_gib": 40.0, "initial_free_gib": 70.12}),
    ("INFO 07-01 [kv_cache_utils.py:2177] GPU KV cache size: 118,192 tokens", {"kv_cache_tokens": 118192}),
    ("INFO 07-01 [kv_cache_utils.py:2178] Maximum concurrency for 4,096 tokens per request: 28.86x",
     {"max_concurrency": 28.86, "max_concurrency_len": 4096}),
    ("INFO 07-01 [kv_cache_utils.py:1500] GPU KV cache size: 622,408 tokens, Maximum concurrency for 262,144 tokens per request: 2.37x",
     {"kv_cache_tokens": 622408, "max_concurrency": 2.37, "max_concurrency_len": 262144, "era": "v1-v0.33"}),
    ("INFO 07-01 [kv_cache_utils.py:829] Overriding num_gpu_blocks=0 with num_gpu_blocks_override=512",
     {"num_gpu_blocks": None}),  # before any KV figure: the minimal cache of CUDA-graph profiling
    ("(APIServer pid=1) INFO 01-23 15:50:32 [loggers.py:147] Engine 000: vllm cache_config_info with initialization after "
     "num_gpu_blocks is: 52510", {"num_gpu_blocks": 52510}),
    ("INFO 03-26 10:43:50 [config.py:228] Setting attention block size to 1056 tokens to ensure that attention page size is >= "
     "mamba page size.", {"block_size": 1056}),
    ("INFO 07-01 [platforms/interface.py:500] Setting kv cache block size to 64 for FLASHMLA backend.", {"block_size": 64}),
    ("INFO 03-26 11:03:49 [gpu_model_runner.py:5744] Encoder cache will be initialized with a budget of 16384 tokens, and "
     "profiled with 1 image items of the maximum feature size.",
     {"encoder_budget_tokens": 16384, "encoder_profile_items": 1, "encoder_profile_modality": "image"}),
    # CUDA graphs
    ("INFO 11-22 16:42:00 [v1/worker/gpu_model_runner.py:6737] Estimated CUDA graph memory: 0.64 GiB total",
     {"cudagraph_estimate_gib": 0.64, "era": "v1-v0.26"}),
    ("INFO 03-26 11:06:38 [gpu_worker.py:597] CUDA graph pool memory: 0.04 GiB (actual), 1.65 GiB (estimated), difference: "
     "1.61 GiB (4316.2%).", {"cudagraph_actual_gib": 0.04, "cudagraph_estimate_gib": 1.65}),
    ("INFO 07-01 [gpu_worker.py:590] CUDA graph memory profiling is disabled (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0). "
     "Without it, ... Consider re-enabling it (the default as of v0.21.0) and increasing --gpu-memory-utilization from "
     "0.9000 to 0.9150.", {"cudagraph_estimate_applied": False}),
    ("INFO 03-26 11:06:09 [gpu_worker.py:470] In v0.19, CUDA graph memory profiling will be enabled by default "
     "(VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1), which more accurately accounts for CUDA graph memory during KV cache "
     "allocation. To try it now, set VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 and increase --gpu-memory-utilization from "
     "0.8000 to 0.8136 to maintain the same effective KV cache size.", {"cudagraph_estimate_applied": False}),
    # the --kv-cache-memory suggestion line
    ("(Worker_TP2_EP2 pid=2080) INFO 09-24 20:54:35 [gpu_worker.py:391] Free memory on device (43.93/44.42 GiB) on startup. "
     "Desired GPU memory utilization is (0.9, 39.98 GiB). Actual usage is 27.72 GiB for weight, 1.4 GiB for peak activation, "
     "0.21 GiB for non-torch memory, and 3.45 GiB for CUDAGraph memory. Replace gpu_memory_utilization config with "
     "`--kv-cache-memory=7564378828` to fit into requested memory, or `--kv-cache-memory=11809093120` to fully utilize gpu "
     "memory. Current kv cache memory in use is 11423138508 bytes.",
     {"profile_weights_gib": 27.72, "peak_activation_gib": 1.4, "non_torch_gib": 0.21, "cudagraph_actual_gib": 3.45,
      "initial_free_gib": 43.93, "total_memory_gib": 44.42, "requested_gib": 39.98,
      "suggested_kv_cache_memory_bytes": 7564378828, "suggested_kv_cache_memory_bytes_gpu_limit": 11809093120,
      "kv_cache_gib": 11423138508 / 2**30}),
    ("INFO 07-01 [worker.py:760] Free memory on device (58.1/60.96 GiB) on startup. Desired GPU memory utilization is (0.9, "
     "54.86 GiB). Actual usage: 9.19 GiB for weights, 3.86 GiB for peak activation, 0.56 GiB for non-torch memory, 0.31 GiB "
     "for NPU graph memory. Replace gpu_memory_utilization with `--kv-cache-memory=1` (0.0 GiB) to fit into requested memory, "
     "or `--kv-cache-memory=2` (0.0 GiB) to fully utilize NPU free memory. Current KV cache memory: 41.0 GiB.",
     {"profile_weights_gib": 9.19, "cudagraph_actual_gib": 0.31, "kv_cache_gib": 41.0, "platform": "ascend"}),
    # failures
    ("ValueError: Free memory on device cuda:0 (12.38/287.69 GiB) on startup is less than desired GPU memory utilization "
     "(0.92, 264.67 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
     {"error_kind": "free_memory_below_requested", "error_phase": "startup_check", "initial_free_gib": 12.38,
      "total_memory_gib": 287.69, "requested_gib": 264.67}),
    ("Free memory on device (4.98/6.0 GiB) on startup is less than desired GPU memory utilization (0.9, 5.4 GiB).",
     {"error_kind": "free_memory_below_requested", "initial_free_gib": 4.98}),
    ("ValueError: Externally held weights on device cuda:0 (70.0/79.18 GiB) exceed the desired GPU memory utilization (0.8, "
     "63.34 GiB). Increase GPU memory utilization or reduce GPU memory used by other processes.",
     {"error_kind": "free_memory_below_requested", "error_subkind": "external_weights_exceed_budget", "initial_free_gib": None}),
    ("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
     {"error_kind": "no_kv_cache_memory", "error_phase": "kv_sizing"}),
    ("ValueError: To serve at least one request with the models's max seq len (262144), (24.0 GiB KV cache is needed, which is "
     "larger than the available KV cache memory (3.18 GiB). Based on the available memory, the estimated maximum model length "
     "is 34736. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
     {"error_kind": "max_model_len_exceeds_kv_cache", "kv_needed_gib": 24.0, "kv_cache_gib": 3.18,
      "estimated_max_model_len": 34736, "max_model_len": 262144}),
    ("ERROR 03-25 21:32:48 engine.py:387] The model's max seq len (131072) is larger than the maximum number of tokens that can "
     "be stored in KV cache (37696). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
     {"error_kind": "max_model_len_exceeds_kv_cache", "kv_cache_tokens": 37696, "max_model_len": 131072}),
    ("ValueError: max_num_seqs (1024) exceeds available Mamba cache blocks (856). Each decode sequence requires one Mamba cache "
     "block, so CUDA graph capture cannot proceed.",
     {"error_kind": "no_kv_cache_memory", "error_subkind": "mamba_blocks_below_max_num_seqs", "num_gpu_blocks": 856}),
    ("ValueError: Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single token. Try increasing "
     "`gpu_memory_utilization`.", {"error_kind": "no_kv_cache_memory", "error_subkind": "autofit_impossible"}),
    ("ValueError: Failed to load model - not enough GPU memory. Try lowering --gpu-memory-utilization to free memory for weights, "
     "increasing --tensor-parallel-size, or using --quantization. (original error: CUDA out of memory)",
     {"error_kind": "out_of_memory", "error_subkind": "oom_during_weight_loading", "error_phase": "weight_loading"}),
    ("RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests. Please try lowering "
     "`max_num_seqs` or `gpu_memory_utilization` when initializing the engine.",
     {"error_kind": "out_of_memory", "error_subkind": "oom_during_sampler_warmup"}),
    ("AssertionError: Error in memory profiling. Initial free memory 70.5 GiB, current free memory 71.2 GiB. This happens when "
     "other processes sharing the same container release GPU memory while vLLM is profiling during initialization.",
     {"error_kind": "startup_failed", "error_subkind": "memory_profiling_inconsistent"}),
    # engine, version, platform
    ("INFO 11-22 [utils.py:299] █▄█▀ █ █ █ █ ▀▄▀ █ version 0.19.0", {"vllm_version": "0.19.0"}),
    ("INFO [...] vLLM API server version 0.11.2", {"vllm_version": "0.11.2"}),
    ("INFO 11-22 [platforms/__init__.py:245] Automatically detected platform rocm.", {"platform": "rocm"}),
    ("INFO 07-01 [kv_cache_utils.py:1033] Add 2 padding layers, may waste at most 9.09% KV cache memory", {"warnings": 1}),
    ("WARNING 07-01 [vision.py:90] This model does not support `--mm-encoder-tp-mode data`. Falling back to "
     "`--mm-encoder-tp-mode weights`.", {"warnings": 1}),
    ("INFO 07-01 [kv_cache_utils.py:1987] Auto-fit max_model_len: reduced from 262144 to 123872 to fit in available GPU memory "
     "(3.86 GiB available for KV cache)", {"max_model_len": 123872, "warnings": 1}),
    ("INFO 07-01 [startup_plan.py:80] Applying persisted startup plan (fingerprint ab12): kv_cache_memory_bytes=42949672960 "
     "(40.00 GiB), recorded free-memory baseline 78.50 GiB, current 78.66 GiB. Memory profiling will be skipped.",
     {"warnings": 1}),
    ("INFO 07-01 [gpu_worker.py:222] Sleep mode freed 60.2 GiB memory, 1.3 GiB memory is still in use.", {"warnings": 1}),
    ("INFO 07-01 [utils.py:770] Weights are held outside this process: of the 71.26 GiB utilization budget, 15.27 GiB is "
     "externally held and 55.99 GiB remains for the engine's own allocations.", {"warnings": 1}),
    ("ValueError: frontend multimodal GPU decoding reserves 3.6 GiB (1.8 GiB raw-frame budget, 1.8 GiB decoder cache budget), "
     "but only 2.1 GiB is available for the KV cache. Reduce mm_ipc_gpu_memory_gb.",
     {"error_kind": "no_kv_cache_memory", "error_subkind": "mm_ipc_reservation_exceeds_kv", "kv_cache_gib": 2.1}),
    ("ValueError: The worker already uses 30.5 GiB (model weights and runtime), more than the 28.0 GiB of CPU memory reserved "
     "for it on node 0, leaving none for the KV cache.", {"error_kind": "no_kv_cache_memory", "platform": "cpu"}),
    ("INFO 07-01 [kv_cache_utils.py:1500] GPU + host KV cache size: 1,000,000 tokens, Maximum concurrency for 8,192 tokens per "
     "request: 122.07x", {"kv_cache_tokens": 1_000_000, "max_concurrency": 122.07}),
    ("(EngineCore_DP0 pid=5) INFO 07-01 [v1/engine/core.py:116] Initializing a V1 LLM engine (v0.24.0) with config: "
     "model='Qwen/Qwen3-8B', dtype=torch.bfloat16, max_seq_len=40960, tensor_parallel_size=1, enforce_eager=True)",
     {"vllm_version": "0.24.0", "model": "Qwen/Qwen3-8B", "max_model_len": 40960, "era": "v1-pre-pr19312"}),
    ("INFO 12-13 [llm_engine.py:234] Initializing an LLM engine (v0.6.4) with config: model='m', max_seq_len=2048, seed=0)",
     {"vllm_version": "0.6.4", "era": "v0-early"}),
]


@pytest.mark.parametrize("line,expect", LINES, ids=[f"line{i}" for i in range(len(LINES))])
def test_line_formats(line, expect):
    reader = LogReader()
    reader.feed(line)
    facts = reader.finish()
    assert reader.internal_errors == []
    for key, want in expect.items():
        if key == "max_model_len":
            assert facts.args.get("max_model_len") == want
        elif key == "warnings":
            assert len(facts.warnings) == want
        else:
            assert getattr(facts, key) == want, key


def test_all_events_are_known_kinds_and_json():
    for path in [*sorted((PUBLIC / "logs").glob("*.log")), *sorted(DEVICE.glob("*.log")), SEED]:
        try:
            facts = read_log(path)
        except LogParseError:
            continue
        for e in facts.events:
            assert e.kind in PHASE_KINDS or e.kind in FIGURE_KINDS, e.kind
            json.dumps(e.values)
        json.dumps(facts.args)
        assert facts.era in ERAS
        assert facts.error_kind is None or facts.error_kind in ERROR_KINDS
        assert facts.error_subkind is None or facts.error_subkind in ERROR_SUBKINDS
        assert facts.error_phase is None or facts.error_phase in ERROR_PHASES


# ------------------------------------------------------------------------------------------------------
# cleaning, ranks, wrapping


@pytest.mark.parametrize("raw,text,rank,ts", [
    ("\x1b[0;36m(EngineCore_DP0 pid=70073)\x1b[0;0m INFO 01-27 00:31:44 [gpu_model_runner.py:3808] Starting to load model x...",
     "Starting to load model x...", "DP0", "01-27 00:31:44"),
    ("^[[0;36m(EngineCore_DP0 pid=70073)^[[0;0m INFO 01-27 00:31:59 [gpu_model_runner.py:3905] Model loading took 64.38 GiB memory",
     "Model loading took 64.38 GiB memory", "DP0", "01-27 00:31:59"),
    ("2025-07-01T10:00:00.123Z (Worker_PP1_TP0 pid=12) INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 1 GiB",
     "Available KV cache memory: 1 GiB", "PP1_TP0", "2025-07-01T10:00:00.123Z"),
    ("qwen3-1  | (VllmWorker rank=2 pid=107) INFO 04-29 01:07:41 [gpu_model_runner.py:1347] Model loading took 14.2474 GiB",
     "Model loading took 14.2474 GiB", "rank2", "04-29 01:07:41"),
    ("INFO 02-13 15:56:20 [worker.py:267](http://worker.py:267/)] Memory profiling takes 11.34 seconds",
     "Memory profiling takes 11.34 seconds", None, "02-13 15:56:20"),
    ("(RayWorkerWrapper pid=661) INFO 04-20 17:00:56 [worker.py:267] model weights take 27.63GiB [repeated 14x across cluster]",
     "model weights take 27.63GiB", "pid661", "04-20 17:00:56"),
    ("# A40 - INFO 10-13 23:43:48 distributed_gpu_executor.py:57] # GPU blocks: 19941, # CPU blocks: 6826",
     "# GPU blocks: 19941, # CPU blocks: 6826", None, "10-13 23:43:48"),
    ("(APIServer pid=4555)  INFO [utils.py:1404]  Block size is set to 128", "Block size is set to 128", "APIServer", None),
    ("INFO [...] GPU KV cache size: 188,512 tokens", "GPU KV cache size: 188,512 tokens", None, None),
    ("[pod/vllm-0/vllm] 2025-07-01T10:00:00Z INFO 07-01 10:00:00 [core.py:1] x", "x", None, "2025-07-01T10:00:00Z"),
])
def test_clean_line(raw, text, rank, ts):
    c = clean_line(raw)
    assert (c.text, c.rank, c.timestamp) == (text, rank, ts)


def test_normalise_rank():
    assert normalise_rank("Worker_TP1", None, "1") == "TP1"
    assert normalise_rank("Worker_DP1_PP0_TP3_EP3", None, "1") == "DP1_PP0_TP3_EP3"
    assert normalise_rank("EngineCore_DP0", None, "1") == "DP0"
    assert normalise_rank("EngineCore_0", None, "1") == "DP0"
    assert normalise_rank("EngineCore", None, "1") == "EngineCore"
    assert normalise_rank("VllmWorker", "3", "1") == "rank3"
    assert normalise_rank("VllmWorkerProcess", None, "534") == "pid534"
    assert normalise_rank("APIServer", None, "1") == "APIServer"


def test_rank_choice_last_pipeline_stage():
    log = "\n".join([
        "(Worker_PP0_TP0 pid=1) INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 12.13 GiB",
        "(Worker_PP0_TP1 pid=2) INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 12.13 GiB",
        "(Worker_PP1_TP1 pid=4) INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 11.30 GiB",
        "(Worker_PP1_TP0 pid=3) INFO 07-01 10:00:00 [gpu_worker.py:298] Available KV cache memory: 11.33 GiB",
        "(Worker_PP0_TP0 pid=1) INFO 07-01 10:00:00 [gpu_model_runner.py:1] Model loading took 7.5 GiB memory and 1.0 seconds",
        "(EngineCore_DP0 pid=9) INFO 07-01 10:00:01 [kv_cache_utils.py:1] GPU KV cache size: 100,000 tokens",
    ])
    f = parse_log_text(log)
    assert f.kv_cache_gib == 11.33 and f.figure_ranks["kv_cache_gib"] == "PP1_TP0"
    assert f.primary_rank == "PP1_TP0"
    assert f.weights_gib == 7.5 and f.figure_ranks["weights_gib"] == "PP0_TP0"  # the last stage did not log it
    assert f.kv_cache_tokens == 100_000 and f.figure_ranks["kv_cache_tokens"] == "DP0"
    assert set(f.ranks) == {"PP0_TP0", "PP0_TP1", "PP1_TP1", "PP1_TP0", "DP0"}
    assert f.ranks["PP1_TP1"].kv_cache_gib == 11.30


def test_rank_choice_vllmworker_rank_with_pp_args():
    lines = ["INFO 07-01 [api_utils.py:1] non-default args: {'tensor_parallel_size': 2, 'pipeline_parallel_size': 2}"]
    for r, kv in ((0, 12.13), (1, 12.13), (2, 11.33), (3, 11.33)):
        lines.append(f"(VllmWorker rank={r} pid={r}) INFO 07-01 [gpu_worker.py:233] Available KV cache memory: {kv} GiB")
    assert parse_log_text("\n".join(lines)).kv_cache_gib == 11.33  # rank 2 = PP1_TP0
    assert parse_log_text("\n".join(lines[1:])).kv_cache_gib == 12.13  # layout unknown: rank 0


def test_wrapped_lines_are_joined():
    # a copy-paste reflow of the V1 max_model_len error (from pr46778's excerpt)
    f = read_log(PUBLIC / "logs" / "qwen35-arch-hybrid-rtx5090-len262k-prefixalign-pr46778.log")
    assert (f.kv_needed_gib, f.kv_cache_gib, f.estimated_max_model_len) == (9.29, 9.28, 260800)
    assert f.error_message.endswith("estimated maximum model length is 260800.")
    # a terminal hard-wrap in the middle of a word of the config dump (opt-125m-rocm excerpt)
    f = read_log(PUBLIC / "logs" / "opt-125m-rocm-24g-sllm-v066.log")
    assert f.args["tensor_parallel_size"] == 1 and f.args["max_model_len"] == 2048 and f.vllm_version == "0.6.6"
    # a wrapped concurrency line: events come when the message is complete, numbered with its first line
    r = LogReader()
    assert r.feed("Maximum concurrency for 4096 tokens") == []
    evs = r.feed("  per request: 29.41x")
    assert [(e.kind, e.line_no) for e in evs] == [("kv_allocated", 1), ("max_concurrency", 1)]
    assert evs[1].values == {"max_concurrency": 29.41, "max_concurrency_len": 4096}
    # the V1 profiling repr cut by an 80-column terminal between a label and its number
    r = LogReader()
    for part in ("DEBUG 11-22 16:39:56 [v1/worker/gpu_worker.py:559] Memory profiling takes 44.56 seconds. Total non KV cache",
                 " memory: 17.79GiB; torch peak memory increase: 0.78GiB; non-torch forward increase memory: 0.22GiB; weights",
                 " memory: 16.79GiB."):
        r.feed(part)
    f = r.finish()
    assert (f.non_kv_total_gib, f.torch_peak_increase_gib, f.non_torch_gib, f.profile_weights_gib) == (17.79, 0.78, 0.22, 16.79)
    # a new record ends the hold: both lines are read on their own
    r = LogReader()
    r.feed("INFO 07-01 [x.py:1] Maximum concurrency for 4096 tokens per request:")
    evs = r.feed("INFO 07-01 [kv_cache_utils.py:1] GPU KV cache size: 10 tokens")
    assert [e.kind for e in evs] == ["kv_allocated", "kv_cache_tokens"]
    assert r.finish().kv_cache_tokens == 10


def test_pr10511_table_form():
    f = read_log(PUBLIC / "logs" / "llama3-8b-tp2-80g-pr10511.log")
    assert (f.profile_weights_gib, f.non_torch_gib, f.torch_peak_increase_gib) == (7.48, 3.58, 1.26)
    assert (f.total_memory_gib, f.requested_gib, f.gpu_memory_utilization) == (79.22, 71.29, 0.9)
    assert f.timings["profile_s"] == 3.49 and f.era == "v0-pr10511"


# ------------------------------------------------------------------------------------------------------
# out-of-memory phases


def _oom_after(*frames: str, prefix: list[str] | None = None) -> LogFacts:
    lines = list(prefix or [])
    lines.append("(Worker_TP0 pid=5) ERROR 07-01 10:00:05 [multiproc_executor.py:800] Traceback (most recent call last):")
    for fn in frames:
        lines.append(f'(Worker_TP0 pid=5) ERROR 07-01 10:00:05 [multiproc_executor.py:800]   File "/x/vllm/v1/worker/w.py", line 1, in {fn}')
    lines.append("(Worker_TP0 pid=5) ERROR 07-01 10:00:05 [multiproc_executor.py:800] torch.OutOfMemoryError: CUDA out of memory. "
                 "Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.18 GiB of which 1.02 GiB is free.")
    return parse_log_text("\n".join(lines))


@pytest.mark.parametrize("frames,sub,phase", [
    (("determine_available_memory", "profile_run", "_dummy_run"), "oom_during_profiling", "profiling"),
    (("compile_or_warm_up_model", "capture_model", "_dummy_run"), "oom_during_graph_capture", "graph_capture"),
    (("compile_or_warm_up_model", "_dummy_sampler_run"), "oom_during_sampler_warmup", "warmup"),
    (("initialize_from_config", "initialize_kv_cache", "_allocate_kv_cache_tensors"), "oom_during_kv_allocation", "kv_allocation"),
    (("load_model", "load_weights"), "oom_during_weight_loading", "weight_loading"),
])
def test_oom_phase_from_traceback(frames, sub, phase):
    f = _oom_after(*frames)
    assert (f.error_kind, f.error_subkind, f.error_phase) == ("out_of_memory", sub, phase)
    assert f.error_message.startswith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert f.total_memory_gib == 79.18


def test_oom_phase_from_startup_progress():
    served = ["INFO 07-01 [core.py:1] init engine (profile, create kv cache, warmup model) took 60.0 seconds",
              "INFO 07-01 [api_server.py:1] Application startup complete."]
    f = _oom_after(prefix=served)
    assert (f.error_subkind, f.error_phase) == ("oom_while_serving", "serving")
    f = _oom_after(prefix=["INFO 07-01 [gpu_model_runner.py:1] Model loading took 7.5 GiB memory and 1.0 seconds"])
    assert (f.error_subkind, f.error_phase) == ("oom_during_profiling", "profiling")


def test_failure_marker_before_its_traceback():
    f = read_log(PUBLIC / "logs" / "qwen3-30b-a3b-4gpu-tp4-v085-oom.log")
    assert (f.error_kind, f.error_phase) == ("startup_failed", "graph_capture")  # frames come after the marker
    f = read_log(PUBLIC / "logs" / "qwen3-next-80b-ascend-tp4-v012rc1.log")
    assert (f.error_kind, f.error_phase) == ("startup_failed", "kv_allocation")


def test_npu_oom_in_kv_allocation():
    f = read_log(PUBLIC / "logs" / "qwen3-next-80b-ascend-v0130-npu-oom.log")
    assert (f.error_kind, f.error_subkind, f.platform) == ("out_of_memory", "oom_during_kv_allocation", "ascend")
    assert f.error_message.startswith("RuntimeError: NPU out of memory. Tried to allocate 2.57 GiB")
    assert f.total_memory_gib == 60.96


# ------------------------------------------------------------------------------------------------------
# engine flags


def test_non_default_args_truncated():
    d = parse_pylike_dict("{'model': 'x', 'max_model_len': 262144, 'limit_mm_per_prompt': {'image': 2, 'audio': 0}, "
                          "'speculative_config': {'method': 'mtp', 'num_speculative_tokens': 3}, 'served_model_name': ['a', 'b-")
    assert d == {"model": "x", "max_model_len": 262144, "limit_mm_per_prompt": {"image": 2, "audio": 0},
                 "speculative_config": {"method": "mtp", "num_speculative_tokens": 3}}
    assert parse_pylike_dict("{'mode': <CompilationMode.VLLM_COMPILE: 3>, 'n': 1}") == {"mode": "VLLM_COMPILE", "n": 1}
    assert parse_pylike_dict("no dict here") == {}


def test_config_dump():
    d = parse_config_dump(
        "Initializing a V1 LLM engine (v0.26.0) with config: model='/m', speculative_config=None, dtype=torch.bfloat16, "
        "max_seq_len=4096, load_format=dummy, tensor_parallel_size=2, quantization=None, enforce_eager=False, "
        "kv_cache_dtype=auto, device_config=cuda, structured_outputs_config=StructuredOutputsConfig(backend='auto'), "
        "enable_prefix_caching=True, compilation_config={'mode': <CompilationMode.VLLM_COMPILE: 3>, 'cudagraph_mode': "
        "<CUDAGraphMode.FULL_AND_PIECEWISE: (2, 1)>, 'max_cudagraph_capture_size': 512}")
    assert d["model"] == "/m" and d["dtype"] == "bfloat16" and d["max_model_len"] == 4096
    assert d["tensor_parallel_size"] == 2 and d["quantization"] is None and d["enforce_eager"] is False
    assert d["cudagraph_mode"] == "FULL_AND_PIECEWISE" and d["max_cudagraph_capture_size"] == 512
    assert "structured_outputs_config" not in d
    assert parse_config_dump("... with config: model='x', load_format=LoadFormat.AUTO, seed=0")["load_format"] == "auto"


def test_command_lines():
    args, env = parse_command("VLLM_USE_V1=1 CUDA_VISIBLE_DEVICES=0,1 vllm serve org/m --port 8111 --gpu-memory-utilization 0.95 "
                              "--max_model_len 120000 --tensor_parallel 2 --enable_prefix_caching --max-model-len 32K -tp 4 "
                              "--kv-cache-memory=4G --no-enable-prefix-caching")
    assert env == {"VLLM_USE_V1": "1", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert args["model"] == "org/m" and args["gpu_memory_utilization"] == 0.95
    assert args["max_model_len"] == 32768 and args["tensor_parallel_size"] == 4  # later flags win, as argparse
    assert args["kv_cache_memory_bytes"] == 4 << 30 and args["enable_prefix_caching"] is False
    args, _ = parse_command("python -m vllm.entrypoints.openai.api_server --model M --compilation-config "
                            "'{\"cudagraph_mode\":\"FULL_DECODE_ONLY\"}'")
    assert args == {"model": "M", "compilation_config": {"cudagraph_mode": "FULL_DECODE_ONLY"}}


def test_args_in_facts_and_priorities():
    f = read_log(PUBLIC / "logs" / "qwen3-235b-a22b-2507-fp8-4xl40s-tp4-ep.log")
    assert f.args["tensor_parallel_size"] == 4 and f.args["max_model_len"] == 32768 and f.args["enable_expert_parallel"] is True
    f = read_log(PUBLIC / "logs" / "gemma3-1b-it-v0130-eole.log")  # non-default args + config dump + info lines
    assert f.args["max_model_len"] == 2048 and f.args["gpu_memory_utilization"] == 0.95
    assert f.args["max_num_batched_tokens"] == 8192 and f.model == "google/gemma-3-1b-it" and f.vllm_version == "0.13.0"
    assert f.architecture == "Gemma3ForCausalLM" and f.cudagraph_actual_gib == -0.22 and f.runner == "v1"
    assert any("padding layers" in w for w in f.warnings)


# ------------------------------------------------------------------------------------------------------
# reading: sources, errors, streaming


def test_read_log_sources(tmp_path, monkeypatch):
    text = (PUBLIC / "logs" / "qwen3-14b-fp16-l40s-v0280-default.log").read_text(encoding="utf-8")
    a = parse_log_text(text)
    assert read_log(io.StringIO(text)) == a
    p = tmp_path / "x.log"
    p.write_text(text, encoding="utf-8")
    assert read_log(p) == a and read_log(str(p)) == a
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert read_log("-") == a
    assert (a.weights_gib, a.kv_cache_gib, a.kv_cache_tokens, a.max_concurrency, a.max_concurrency_len) == (
        27.52, 11.57, 75824, 1.85, 40960)


def test_parse_errors(tmp_path):
    with pytest.raises(LogParseError, match="the log is empty") as e:
        parse_log_text("")
    assert "stdout+stderr" in e.value.hint and "Available KV cache memory" in e.value.hint
    with pytest.raises(LogParseError, match="no vLLM log lines found in 3 line"):
        parse_log_text("hello\nworld\n42\n")
    p = tmp_path / "b.bin"
    p.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(LogParseError, match="binary"):
        read_log(p)
    with pytest.raises(LogParseError, match="cannot read the log"):
        read_log(tmp_path / "missing.log")


@pytest.mark.parametrize("path", [*sorted(DEVICE.glob("*.log"))[:3], PUBLIC / "logs" / "vlm-jetson-orin-jp6-mm-image1-video-default-fail.log", SEED],
                         ids=lambda p: Path(p).name)
def test_streaming_equals_whole_text(path):
    text = Path(path).read_text(encoding="utf-8")
    reader = LogReader()
    events = []
    lines = text.split("\n")
    if lines[-1] == "":  # the text ends with a newline: no line after it
        lines.pop()
    for line in lines:
        events.extend(reader.feed(line))
    facts = reader.finish()
    events.extend(reader.flushed_events())
    whole = parse_log_text(text)
    assert facts == whole
    assert tuple(events) == whole.events


def test_fast_path_after_many_lines():
    """Past the first 2000 lines the reader rejects noise lines early; figures after that point are still read."""
    noise = ["(EngineCore pid=1) DEBUG 07-01 10:00:00 [compilation/cuda_graph.py:271] Capturing a cudagraph on (PIECEWISE)",
             '(APIServer pid=1) INFO:     10.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
             "(APIServer pid=1) INFO 07-01 10:00:00 [async_llm.py:415] Added request chatcmpl-1.",
             "(EngineCore pid=1) INFO 07-01 10:00:00 [core.py:981] EngineCore loop active."] * 700
    log_text = (DEVICE / "qwen3-30b-a3b_graph_8k-1024.log").read_text(encoding="utf-8")
    plain = parse_log_text(log_text)
    late = parse_log_text("\n".join(noise) + "\n" + log_text + "\n" + "\n".join(noise))
    for f in ("weights_gib", "torch_peak_increase_gib", "non_torch_gib", "non_kv_total_gib", "kv_cache_gib", "kv_cache_tokens",
              "max_concurrency", "cudagraph_actual_gib", "cudagraph_estimate_gib", "requested_gib", "initial_free_gib",
              "free_after_profile_gib", "total_memory_gib", "vllm_version", "era", "args", "timings", "warnings"):
        assert getattr(late, f) == getattr(plain, f), f
    assert late.num_request_lines >= 1400


def test_finish_is_idempotent():
    r = LogReader()
    r.feed("INFO 07-01 [gpu_worker.py:1] Available KV cache memory: 3.0 GiB")
    assert r.finish() is r.finish()


def test_max_concurrency_len_from_args_when_elided():
    f = read_log(PUBLIC / "logs" / "vlm-jetson-orin-jp6-mm-image1-video-default-fail.log")
    assert f.max_concurrency == 0.89 and f.max_concurrency_len == 4096 and f.kv_cache_tokens == 3664
