"""The SGLang commands as a user runs them: plan --engine sglang, a pasted launch line, explain on SGLang logs
(text and JSON, auto-detected), fit / knobs / sweep --engine sglang, compare."""

import json

from tests.conftest import ROOT, run_cli

LOGS = ROOT / "tests" / "fixtures" / "sglang_logs"
CONTRACT = ["vllm_version", "model", "device", "tp", "pp", "dp", "max_model_len", "block_size", "verdict",
            "error_kind", "error_message", "memory_gib", "num_gpu_blocks", "kv_cache_tokens", "max_concurrency",
            "estimated_max_model_len"]


def test_plan_engine_sglang_json():
    code, out, err = run_cli("plan", "Qwen/Qwen3-8B", "--engine", "sglang", "--json")
    assert code == 0, err
    obj = json.loads(out)
    for key in CONTRACT:
        assert key in obj
    assert obj["engine_name"] == "sglang" and obj["engine_version"] == "0.5.23"
    # 363087: test_pool_tokens_qwen3_8b_h100_by_hand
    assert obj["kv_cache_tokens"] == 363087 and obj["engine"]["mem_fraction_static"] == 0.83


def test_pasted_sglang_line_and_release():
    code, out, err = run_cli("plan", "--json", "--sglang-version", "0.5.17", "--", "python", "-m",
                             "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B", "--cuda-graph-max-bs", "64",
                             "--port", "30000")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["engine_version"] == "0.5.17" and obj["engine"]["cuda_graph_max_bs_decode"] == 64
    assert "--port" in obj["ignored_flags"]


def test_removed_flag_is_one_line_exit_2():
    code, out, err = run_cli("plan", "--", "python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B",
                             "--cuda-graph-max-bs", "64")
    assert code == 2 and "ambiguous option: --cuda-graph-max-bs" in err and len(err.strip().splitlines()) == 1


def test_explain_sglang_text_and_json_logs():
    for name in ("qwen3-8b-h100-default.synthetic.log", "qwen3-8b-h100-default.synthetic.jsonl"):
        code, out, err = run_cli("explain", str(LOGS / name), "--json", "--compare")
        assert code == 0, err
        obj = json.loads(out)
        assert obj["engine_name"] == "sglang"
        assert (obj["weights_gib"], obj["kv_cache_tokens"], obj["max_running_requests"]) == (15.27, 364306, 4096)
        rows = {r["term"]: (r["predicted"], r["logged"]) for r in obj["compare"]["rows"]}
        # planned from the log's own "Load weight begin. avail mem=78.67 GB" (+ the 79 MiB SGLang allocates after the
        # baseline): rest = (78.67 GiB - weights - rope reserve) - (78.67 GiB + 79 MiB) x 0.17, // 147456 B
        assert rows["KV tokens"] == (364114, 364306)


def test_explain_sglang_failure():
    code, out, err = run_cli("explain", str(LOGS / "llama-3.1-70b-h100-tp1-no-room.synthetic.log"))
    assert code == 0, err
    assert "no_kv_cache_memory" in out and "Loaded weights leave no GPU memory" in out


def test_fit_knobs_sweep_sglang():
    code, out, err = run_cli("fit", "Qwen/Qwen3-8B", "--engine", "sglang", "--concurrency", "4", "--context", "32768",
                             "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["launch_line"].startswith("python -m sglang.launch_server --model-path Qwen/Qwen3-8B")
    assert 0.3 <= obj["flags"]["mem-fraction-static"] <= 0.99
    code, out, err = run_cli("knobs", "Qwen/Qwen3-8B", "--engine", "sglang", "--json")
    assert code == 0, err
    assert json.loads(out)["knobs"][0]["kv_tokens_added"] > 0
    code, out, err = run_cli("sweep", "Qwen/Qwen3-8B", "--engine", "sglang", "--vary", "mem-fraction-static=0.7,0.8",
                             "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert rows[0]["kv_cache_tokens"] < rows[1]["kv_cache_tokens"]


def test_compare_table():
    code, out, err = run_cli("compare", "Qwen/Qwen3-8B", "--device", "h100", "--json")
    assert code == 0, err
    obj = json.loads(out)
    engines = {e["engine"]: e for e in obj["engines"]}
    assert engines["sglang"]["kv_tokens"] == 363087 and engines["vllm"]["kv_tokens"] > 0
    assert obj["more_kv_tokens"] in ("vllm", "sglang", "equal")
