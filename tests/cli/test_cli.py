"""The CLI as a user runs it: exit codes, the JSON contract, one-line errors, start-up imports."""

import json
import subprocess
import sys

from tests.conftest import ROOT, run_cli

CONTRACT = ["vllm_version", "model", "device", "tp", "pp", "dp", "max_model_len", "block_size", "verdict",
            "error_kind", "error_message", "memory_gib", "num_gpu_blocks", "kv_cache_tokens", "max_concurrency",
            "estimated_max_model_len"]
MEMORY_KEYS = ["requested", "weights", "activation_peak", "non_torch", "cudagraph_estimate", "non_kv_total",
               "kv_cache"]


def test_plan_json_contract():
    code, out, err = run_cli("plan", "Qwen/Qwen3-8B", "--max-model-len", "4096", "--json")
    assert code == 0, err
    obj = json.loads(out)
    for key in CONTRACT:
        assert key in obj
    for key in MEMORY_KEYS:
        assert key in obj["memory_gib"]
    assert set(obj["device"]) >= {"name", "total_gib", "count"}
    assert obj["verdict"] == "starts" and obj["error_kind"] is None
    assert obj["num_gpu_blocks"] > 0 and obj["kv_cache_tokens"] > 0


def test_failing_plan_is_still_exit_0():
    code, out, _ = run_cli("plan", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "0.15", "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["verdict"] == "fails" and obj["error_kind"] == "no_kv_cache_memory"


def test_pasted_serve_line():
    code, out, err = run_cli("plan", "--json", "--", "vllm", "serve", "Qwen/Qwen3-8B", "--max-model-len", "8192",
                             "-tp", "2", "--port", "8000")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["tp"] == 2 and obj["max_model_len"] == 8192 and obj["device"]["count"] == 2
    assert "--port" in obj["ignored_flags"]


def test_table_output():
    code, out, _ = run_cli("plan", "Qwen/Qwen3-8B", "--max-model-len", "4096")
    assert code == 0
    assert "Verdict: STARTS" in out and "KV cache" in out and "Available KV cache memory" in out


def test_unknown_model_offline_is_one_line_exit_2():
    code, out, err = run_cli("plan", "nobody/no-such-model")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "vramplan models" in err or "local folder" in err


def test_malformed_config(tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    code, _, err = run_cli("plan", str(tmp_path))
    assert code == 2 and "not valid JSON" in err and "Traceback" not in err


def test_folder_without_config(tmp_path):
    code, _, err = run_cli("plan", str(tmp_path))
    assert code == 2 and "config.json" in err


def test_invalid_config_json_is_plan_shaped():
    code, out, err = run_cli("plan", "Qwen/Qwen3-8B", "-tp", "3", "--json")
    assert code == 2
    obj = json.loads(out)
    assert obj["error_kind"] == "invalid_config" and "divisible by tensor parallel size (3)" in obj["error_message"]


def test_bad_flag_value():
    code, _, err = run_cli("plan", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "2")
    assert code == 2 and "gpu-memory-utilization" in err


def test_unknown_device():
    code, _, err = run_cli("plan", "Qwen/Qwen3-8B", "--device", "tpu-v9")
    assert code == 2 and "unknown device" in err


def test_models_and_devices_lists():
    code, out, _ = run_cli("models")
    assert code == 0 and "Qwen/Qwen3-8B" in out
    code, out, _ = run_cli("devices")
    assert code == 0 and "h100-80gb" in out and "ascend-910b4" in out


def test_cli_start_up_imports_no_heavy_library():
    code = ("import sys, vramplan.cli; "
            "heavy = [m for m in ('torch', 'vllm', 'transformers', 'matplotlib', 'huggingface_hub', 'pynvml') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT)).stdout
    assert out.strip() == "[]"


def test_catalog_plan_does_not_import_transformers():
    code = ("import sys, vramplan; vramplan.plan('Qwen/Qwen3-VL-8B-Instruct'); vramplan.plan('google/gemma-3-4b-it'); "
            "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT)).stdout
    assert out.strip().endswith("False")


def test_architecture_vllm_removed_is_refused_with_vllms_words(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["MllamaForConditionalGeneration"], '
                                          '"model_type": "mllama", "text_config": {"hidden_size": 4096}}')
    code, out, err = run_cli("plan", str(tmp_path))
    assert code == 2 and out == ""
    assert "was supported in vLLM until v0.10.2" in err and len(err.strip().splitlines()) == 1
