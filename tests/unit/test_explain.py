"""explain: the seed-001 equation, diagnoses and fixes from logged figures, the JSON, --compare."""

import json

import pytest

from tests.conftest import DATA, run_cli
from vramplan.explain import budget_checks, compare, diagnose, facts_to_dict
from vramplan.engines.vllm.log import read_log

SEED = next((DATA / "seeds").glob("001_*.txt"))


def test_seed_001_budget_equation():
    f = read_log(str(SEED))
    checks = {name: (ok, arith) for name, ok, arith in budget_checks(f)}
    # KV 44.30 + non-KV 13.61 = requested 57.91 = util 0.95 x total 60.96 (not x initial free 60.61)
    assert checks["requested = util x total"][0] is True
    assert checks["non-KV = weights + torch peak + non-torch"][0] is True
    assert checks["KV + non-KV = requested"][0] is True
    assert "57.58" in checks["requested is not util x initial free"][1]


def test_seed_001_json_has_the_plan_keys():
    f = read_log(str(SEED))
    obj = facts_to_dict(f, diagnose(f))
    for key in ("vllm_version", "model", "device", "tp", "pp", "dp", "max_model_len", "block_size", "verdict",
                "error_kind", "error_message", "memory_gib", "num_gpu_blocks", "kv_cache_tokens", "max_concurrency",
                "estimated_max_model_len"):
        assert key in obj
    assert obj["memory_gib"]["kv_cache"] == 44.30 and obj["kv_cache_tokens"] == 645_120
    assert obj["vllm_version"] is None  # not in the seed's log: null, not a guess


def test_free_memory_failure_fix():
    # "Free memory on device (4.98/6.0 GiB) ... (0.9, 5.4 GiB)": at most 4.98/6.0 = 0.83
    f = read_log(str(DATA / "public" / "logs" / "qwen3-0.6b-rtx3060-6g-wsl-util09-fail.log"))
    assert f.error_kind == "free_memory_below_requested"
    d = diagnose(f)
    assert "--gpu-memory-utilization 0.83" in d.fix


def test_max_model_len_failure_fix():
    # "... the estimated maximum model length is 34736" (Qwen3-Coder, 262144 tokens need 24 GiB)
    f = read_log(str(DATA / "public" / "logs" / "qwen3-coder-30b-a3b-fp8-pp2-5070ti-5090d.log"))
    assert f.error_kind == "max_model_len_exceeds_kv_cache"
    assert "--max-model-len 34736" in diagnose(f).fix


def test_max_model_len_failure_fix_from_an_older_log():
    # V0 (~v0.6.3) states the cache's capacity in tokens: "larger than the maximum number of tokens that can be
    # stored in KV cache (23648)"; 2.89 GiB for 23,648 tokens -> 29,000 tokens need 2.89 / 23648 x 29000 = 3.54 GiB
    d = diagnose(read_log(str(DATA / "public/logs/llama31-8b-rtx3090-len29k-fail.log")))
    assert "needs 3.54 GiB" in d.summary
    assert d.fix.startswith("--max-model-len 23648")


def test_compare_with_the_catalog_model():
    f = read_log(str(DATA / "device_v026" / "qwen3-8b_graph_8k-1024.log"))
    plan, rows = compare(f, model="Qwen/Qwen3-8B")
    table = {t: (p, lg) for t, p, lg in rows}
    assert round(table["weights (GiB)"][0], 2) == table["weights (GiB)"][1] == 15.27
    assert table["verdict"] == ("starts", "starts")
    assert abs(table["KV cache tokens"][0] / table["KV cache tokens"][1] - 1) < 0.05


def test_cli_explain_json_and_stdin():
    code, out, err = run_cli("explain", str(SEED), "--json")
    assert code == 0, err
    assert json.loads(out)["memory_gib"]["non_kv_total"] == 13.61
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, "-m", "vramplan", "explain", "-"], input=SEED.read_text(), text=True,
                          capture_output=True, cwd=str(ROOT))
    assert proc.returncode == 0 and "44.30" in proc.stdout


def test_cli_explain_compare_without_config_shows_log_side():
    log = DATA / "public" / "logs" / "deepseek-coder-6.7b-2xt4-tp2-v04.log"
    code, out, _ = run_cli("explain", str(log), "--compare")
    assert code == 0 and "showing the log side only" in out


def test_seed_001_compare_finds_the_catalog_model():
    code, out, _ = run_cli("explain", str(SEED), "--compare")
    assert code == 0 and "predicted (vramplan) vs logged (vLLM)" in out


@pytest.mark.parametrize("content", ["", "\x00\x01\x02 binary", "hello world\nnothing here\n"])
def test_cli_explain_garbage_is_one_line_exit_2(tmp_path, content):
    p = tmp_path / "x.log"
    p.write_text(content)
    code, _, err = run_cli("explain", str(p))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_cli_explain_missing_file():
    code, _, err = run_cli("explain", "/nonexistent/vllm.log")
    assert code == 2 and "no such log file" in err


def test_compare_runs_on_every_catalog_case_of_the_public_data():
    # as a user would run it: `explain LOG --compare --model ID [--device NAME]`, the device named from the report
    # where the log does not state its total; every case gives the comparison or one clear reason
    from vramplan.errors import VramplanError
    from vramplan.inputs.model_source import catalog_ids

    names = {"H100": "h100-80gb", "H200": "h200", "A100": "a100-80gb", "L40S": "l40s", "L4 ": "l4", "3090": "rtx-3090",
             "4090": "rtx-4090", "910B4": "ascend-910b4", "910B": "ascend-910b3", "Ascend": "ascend-910b3"}
    catalog = set(catalog_ids())
    compared = refused = 0
    for line in (DATA / "public" / "vllm_startup_cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        log = DATA / "public" / "logs" / f"{case['id']}.log"
        if case["model"] not in catalog or not log.is_file():
            continue
        hw = case["hardware"]["device"] + " "
        device = next((v for k, v in names.items() if k in hw), None)
        try:
            _, rows = compare(read_log(str(log)), model=case["model"], device=device)
            assert rows and rows[1][0] == "weights (GiB)"
            compared += 1
        except VramplanError as e:  # e.g. an Intel Gaudi (hpu) fork: one line, and the CLI shows the log side
            assert e.message and e.hint
            refused += 1
    # refused: the Gaudi fork (platform hpu) and a report that names no GPU (the user would pass --device)
    assert compared >= 12 and refused <= 2


def test_compare_plans_the_free_memory_the_log_saw():
    """--compare takes what the log's initial free memory lacks against the plan's own as held by others, so the
    planned startup sees the logged free memory (to the log's two decimals): the rest of the comparison is then
    about vLLM's terms, not about a guessed CUDA context. On the committed 0.26 H100 startups."""
    checked = 0
    for line in (DATA / "truth" / "cases.jsonl").read_text().splitlines()[:40]:
        case = json.loads(line)
        batch, name = case["id"].split("-")[2], case["id"].split("-", 3)[3]
        log = DATA / "truth" / "logs" / batch / f"{name}.log"
        if case["status"] != "ok" or case["hardware"]["device"] != "H100-80GB" or not log.is_file() \
                or "derived" in case["model"]:
            continue
        f = read_log(str(log))
        if f.initial_free_gib is None:
            continue
        plan, _ = compare(f, model=case["model"], device="h100-80gb")
        assert abs(plan.logged_rank.free_at_init_bytes / 2**30 - f.initial_free_gib) < 0.006, case["id"]
        checked += 1
    assert checked >= 10
