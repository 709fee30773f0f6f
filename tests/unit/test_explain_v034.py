"""``explain`` on vLLM 0.34 logs: the extensible KV cache's lines and failures, and --compare with the 0.34 rules.

The logs are synthetic (tests/fixtures/vllm034/README.md): built from the v0.34.0 format strings, figures written
by hand. Expected values below are the figures written in those files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vramplan.explain import Diagnosis, compare, diagnose, facts_to_dict
from vramplan.engines.vllm.log import read_log
from vramplan.engines.vllm.sizing.extensible_log import extensible_figures

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "vllm034"


def _read(name: str):
    return read_log(str(HERE / name))


def test_a_034_startup_is_read_in_its_terms():
    f = _read("qwen3-8b-h100-starts.log")
    assert f.era == "v1-v0.34" and f.vllm_version == "0.34.0"
    assert f.num_gpu_blocks == 6680 and f.kv_cache_tokens == 427_520 and f.kv_cache_gib == 62.38
    x = extensible_figures(f)
    assert x == {"free_after_warmup_gib": 62.12, "committed_before_gib": 0.07, "kept_transient_gib": 1.95,
                 "transient_peak_gib": 1.95, "torch_reserve_growth_gib": 1.9, "kv_after_warmup_blocks": 6680,
                 "kv_after_warmup_gib": 58.71, "torch_memory_limit_gib": 19.25, "kv_committed_gib": 58.75}
    d = diagnose(f)
    assert "after warm-up" in d.summary and "6680 blocks (58.71 GiB) fit within the requested 79.18 GiB" in d.summary
    assert facts_to_dict(f, d)["extensible_kv_cache"]["kv_committed_gib"] == 58.75


def test_the_util_warning_is_read():
    f = _read("qwen3-8b-h100-util09.log")
    assert f.gpu_memory_utilization == 0.9 and f.requested_gib == 71.26
    assert extensible_figures(f)["util_withheld_gib"] == 5.94
    assert any(w.startswith("gpu_memory_utilization=0.9 caps this instance at 71.26 GiB") for w in f.warnings)
    assert "leave --gpu-memory-utilization unset" in diagnose(f).fix


def test_the_max_len_check_after_warm_up_is_read():
    f = _read("qwen3-8b-h100-maxlen-after-warmup.log")
    assert f.error_kind == "max_model_len_exceeds_kv_cache" and f.error_phase == "kv_sizing"
    assert f.estimated_max_model_len == 38528 and f.kv_needed_gib == 5.62
    d = diagnose(f)
    assert d.fix.startswith("--max-model-len 38528") and "shrink_kv_cache_configs" in d.summary


def test_the_removed_v1_runner_is_an_invalid_config():
    f = _read("v1-runner-env.log")
    assert f.error_kind == "invalid_config" and "Model Runner V1 has been removed" in f.error_message


REAL = Path(__file__).resolve().parents[2] / "data" / "truth" / "logs" / "h100e"


@pytest.mark.parametrize("name,verdict,kind", [
    ("qwen3-8b-h100-starts.log", "starts", None),
    ("qwen3-8b-h100-util09.log", "starts", None),
    # a real 0.34 refusal (a 40,960-token context at util 0.25); the synthetic after-warm-up fixture carried the
    # transient of a model since measured (1.95 GiB kept, where real 0.34 startups of Qwen3-8B keep 0.98)
    (str(REAL / "q8b_e_mml40k_gmu025.log"), "fails", "max_model_len_exceeds_kv_cache"),
])
def test_compare_plans_them_with_the_034_rules(name, verdict, kind):
    plan, rows = compare(read_log(name) if name.startswith("/") else _read(name), device="h100-80gb",
                         **({"model": str(REAL.parents[3] / "vramplan" / "catalog" / "Qwen" / "Qwen3-8B")}
                            if name.startswith("/") else {}))
    assert plan.rules.version == (0, 34, 0) and plan.engine.extensible_kv_cache
    got = {t: (p, lg) for t, p, lg in rows}
    assert got["verdict"] == (verdict, verdict) and got["error kind"] == (kind, kind)
    if verdict == "starts":  # a refusal at the reserved bound never reaches the warm-up
        assert "KV blocks measured (this rank)" in got and "free after warm-up (GiB)" in got


def test_a_log_without_its_version_is_planned_by_its_lines(tmp_path):
    text = (HERE / "qwen3-8b-h100-starts.log").read_text().replace("vLLM API server version 0.34.0", "")
    path = tmp_path / "no-version.log"
    path.write_text(text)
    f = read_log(str(path))
    assert f.vllm_version is None and f.era == "v1-v0.34"
    assert compare(f, device="h100-80gb")[0].rules.version == (0, 34, 0)
    assert isinstance(diagnose(f), Diagnosis)


def test_a_log_that_turned_the_cache_off_is_planned_with_it_off(tmp_path):
    path = tmp_path / "off.log"
    path.write_text("INFO 12-05 10:00:00 [api_server.py:1] vLLM API server version 0.34.0\n"
                    "INFO 12-05 10:00:00 [utils.py:273] non-default args: {'model': 'Qwen/Qwen3-8B', "
                    "'max_model_len': 8192, 'enable_extensible_kv_cache': False}\n")
    plan, _ = compare(read_log(str(path)), device="h100-80gb")
    assert plan.rules.version == (0, 34, 0) and not plan.engine.extensible_kv_cache
    assert plan.engine.gpu_memory_utilization == 0.92
