"""bench/truth tooling that feeds the accuracy benchmark: trimmed configs (issue 17), release tagging, SGLang logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench" / "truth"))

import trim_config  # noqa: E402


def _load(rel: str, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trim_keeps_every_layer_kind_and_cuts_per_layer_fields():
    full = {"architectures": ["X"], "text_config": {
        "num_hidden_layers": 12, "first_k_dense_replace": 3, "num_hash_layers": 2,
        "layer_types": ["linear_attention"] * 3 + ["full_attention"] + ["linear_attention"] * 3 + ["full_attention"]
        + ["linear_attention"] * 3 + ["full_attention"],
        "compress_ratios": [0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 7],  # + one MTP entry
        "hybrid_override_pattern": "M-M*M-M*M-M*", "mlp_only_layers": [1, 5, 9], "eos_token_id": list(range(20))}}
    out = trim_config.trim(full, [0, 3, 4, 5])["text_config"]
    assert out["num_hidden_layers"] == 4
    assert out["layer_types"] == ["linear_attention", "full_attention", "linear_attention", "linear_attention"]
    assert out["compress_ratios"] == [0, 128, 4, 128, 7]
    assert out["hybrid_override_pattern"] == "M*M-"
    assert out["first_k_dense_replace"] == 1 and out["num_hash_layers"] == 1
    assert out["mlp_only_layers"] == [3]  # layer 5 is the 4th kept
    assert out["eos_token_id"] == list(range(20))  # not a per-layer field
    assert full["text_config"]["num_hidden_layers"] == 12  # input untouched


@pytest.mark.parametrize("name", sorted(trim_config.TABLE))
def test_committed_trimmed_configs_are_consistent(name):
    d = ROOT / "bench" / "truth" / "configs" / (name.replace("/", "--") + "-trimmed")
    cfg = json.loads((d / "config.json").read_text())
    t = trim_config.text_config(cfg)
    keep, _ = trim_config.TABLE[name]
    assert t["num_hidden_layers"] == len(keep)
    for key in ("layer_types", "attn_type_list", "hybrid_layer_pattern"):
        if key in t:
            assert len(t[key]) == len(keep)
    if "hybrid_override_pattern" in t:
        assert len(t["hybrid_override_pattern"]) == len(keep)
        assert "*" in t["hybrid_override_pattern"] and "M" in t["hybrid_override_pattern"]
    if "layer_types" in t:
        assert len(set(t["layer_types"])) == 2  # both kinds of every hybrid/sliding model kept
    assert (d / "NOTE.md").is_file()


def test_release_of_a_truth_log():
    to_cases = _load("bench/truth/to_cases.py", "truth_to_cases")
    assert to_cases.release_of({"vllm_version": "0.34.0+cu130"}, None, {}) == "0.34.0"
    assert to_cases.release_of({}, {"vllm_version": "0.33.0"}, {}) == "0.33.0"
    assert to_cases.release_of({}, None, {"engine_version": None}) == "0.26.0"  # the 0.26 batches


def test_sglang_log_figures(tmp_path):
    sg = _load("bench/truth/sglang/to_cases.py", "sglang_to_cases")
    log = tmp_path / "q.log"
    log.write_text(
        'SGTRUTH run {"name": "q", "src": "s", "flags": ["--mem-fraction-static", "0.18"], "nvml_before": {}}\n'
        "Load weight end. elapsed=4.00 s, type=Qwen3ForCausalLM, avail mem=63.20 GB, mem usage=15.30 GB.\n"
        "KV Cache is allocated. #tokens: 339000, K size: 23.28 GB, V size: 23.28 GB\n"
        "Capture decode CUDA graph end. elapsed=3 s, mem usage=0.50 GB, avail mem=10 GB.\n"
        "Capture prefill CUDA graph end. elapsed=3 s, mem usage=0.25 GB, avail mem=10 GB.\n"
        "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.\n"
        'SGTRUTH end {"status": "failed", "rc": 1}\n')
    run, end, nv, m, kind, ver = sg.parse(str(log))
    assert m["weights_gib"] == 15.30 and m["kv_cache_tokens"] == 339000
    assert m["kv_cache_gib"] == pytest.approx(46.56) and m["cudagraph_gib"] == pytest.approx(0.75)
    assert kind == "not_enough_memory" and end["status"] == "failed"
    assert sg.flags_dict(run["flags"]) == {"mem_fraction_static": "0.18"}


def test_sglang_0_5_17_log_lines(tmp_path):
    """Lines as SGLang 0.5.17 prints them (mem_cache/memory_pool.py, managers/scheduler.py, entrypoints/engine.py's
    `server_args=` repr with cuda_graph_max_bs_decode, the post-capture KV line of kv_pool_runtime.py); the version
    comes from measure_sglang.py's run record, since SGLang does not log it."""
    sg = _load("bench/truth/sglang/to_cases.py", "sglang_to_cases")
    log = tmp_path / "q.log"
    log.write_text(
        'SGTRUTH run {"name": "q", "src": "s", "flags": [], "sglang_version": "0.5.17", "nvml_before": {}}\n'
        "server_args=ServerArgs(model_path='/tmp/m', mem_fraction_static=0.83, chunked_prefill_size=4096, "
        "page_size=1, cuda_graph_max_bs_decode=256, context_length=32768)\n"
        "KV Cache is allocated. dtype: torch.bfloat16, #tokens: 400000, KV size: 42.00 GB\n"
        "Post-capture KV sizing: KV cache allocated. dtype: torch.bfloat16, #tokens: 390000, KV size: 41.00 GB, "
        "avail mem=5.00 GB\n"
        "max_total_num_tokens=390000, chunked_prefill_size=4096, max_prefill_tokens=16384, max_running_requests=2048, "
        "context_len=32768, available_gpu_mem=5.00 GB\n"
        'SGTRUTH end {"status": "ok", "rc": null}\n')
    run, end, nv, m, kind, ver = sg.parse(str(log))
    assert ver == "0.5.17" and kind is None
    assert m["cuda_graph_max_bs"] == 256 and m["mem_fraction_static"] == 0.83 and m["page_size"] == 1
    assert m["kv_cache_tokens"] == 390000 and m["kv_cache_gib"] == 41.0 and m["avail_after_kv_gib"] == 5.0
    assert m["max_running_requests"] == 2048 and m["context_len"] == 32768 and m["available_gpu_mem_gib"] == 5.0
