"""Issue 11's front-end defects, each tried as a user meets it (each of these failed before its fix)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import pytest

import vramplan
from tests.conftest import DATA, ROOT, run_cli
from vramplan.cli import build_parser, main
from vramplan.errors import FlagError

V0_LOG = str(DATA / "public" / "logs" / "llama31-8b-rtx3090-len29k-fail.log")
SEED001 = ["vllm", "serve", "Qwen/Qwen3-VL-8B-Instruct", "--tensor-parallel-size", "2", "--max-model-len", "65536",
           "--max-num-seqs", "8", "--max-num-batched-tokens", "32768", "--gpu-memory-utilization", "0.95",
           "--mm-processor-cache-gb", "0"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ----- a closed pipe, an internal error under --json ---------------------------------------------


@pytest.mark.parametrize("argv", [["knobs", "Qwen/Qwen3-8B"], ["explain", V0_LOG], ["plan", "Qwen/Qwen3-8B", "-v"],
                                  ["models"]])
def test_output_cut_short_by_a_closed_pipe_ends_quietly(argv):
    # `vramplan knobs ... | head -5`: the reader is gone before vramplan writes
    proc = subprocess.Popen([sys.executable, "-m", "vramplan", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=str(ROOT))
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == "" and proc.returncode == 141


def test_an_internal_error_under_json_is_still_a_json_object(capsys, monkeypatch):
    import vramplan.api

    def broken(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(vramplan.api, "plan", broken)
    code, out, err = _run(capsys, "plan", "Qwen/Qwen3-8B", "--json")
    assert code == 1 and "internal error" in err
    obj = json.loads(out)
    assert obj["error_kind"] == "internal_error" and "ZeroDivisionError" in obj["error"]


# ----- pasted command lines, vramplan's flags in the wrong place ----------------------------------


@pytest.mark.parametrize("line", [
    "python -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-8B --max-model-len 8192 --port 8000",
    "python3 -m vllm.entrypoints.cli.main serve Qwen/Qwen3-8B --max-model-len 8192 --port 8000",
    "/usr/bin/python3.12 -m vllm.entrypoints.openai.api_server --model=Qwen/Qwen3-8B --max-model-len=8192",
    "vllm serve Qwen/Qwen3-8B --max-model-len 8192",
])
def test_every_way_of_starting_the_server_can_be_pasted(capsys, line):
    code, out, err = _run(capsys, "plan", "--json", "--", *line.split())
    assert code == 0, err
    obj = json.loads(out)
    assert obj["model"] == "Qwen/Qwen3-8B" and obj["max_model_len"] == 8192


def test_a_python_module_that_is_not_vllm_is_refused():
    with pytest.raises(FlagError, match="not a vLLM server"):
        vramplan.plan(flags="python -m http.server 8000")


@pytest.mark.parametrize("cmd,flag", [("plan", "--device"), ("plan", "--json"), ("fit", "--concurrency"),
                                      ("knobs", "--used-by-others-gib"), ("sweep", "--steps")])
def test_vramplan_flags_after_dashdash_are_named_as_such(capsys, cmd, flag):
    extra = ["--vary", "tp=1,2"] if cmd == "sweep" else []
    code, out, err = _run(capsys, cmd, *extra, "--", "vllm", "serve", "Qwen/Qwen3-8B", flag, "4")
    assert code == 2
    assert f"{flag} is a vramplan flag: put it before --" in err and "did you mean" not in err


def test_another_commands_flag_is_named_as_such(capsys):
    code, out, err = _run(capsys, "plan", "Qwen/Qwen3-8B", "--concurrency", "4")
    assert code == 2 and "--concurrency is a flag of vramplan fit and knobs, not of plan" in err


# ----- fit keeps the user's flags --------------------------------------------------------------


def test_fit_serve_line_keeps_the_users_other_flags(capsys):
    line = ["vllm", "serve", "Qwen/Qwen3-8B", "--port", "8000", "--served-model-name", "my model", "--block-size", "32",
            "--max-model-len", "4096", "--host=0.0.0.0", "--enable-prefix-caching"]
    code, out, err = _run(capsys, "fit", "--concurrency", "4", "--json", "--", *line)
    assert code == 0, err
    obj = json.loads(out)
    for serve in (obj["serve_line"], obj["serve_line_kv_cache_memory_bytes"]):
        assert "--port 8000" in serve and "--served-model-name 'my model'" in serve and "--host=0.0.0.0" in serve
        assert "--block-size 32" in serve and "--enable-prefix-caching" in serve
        assert serve.count("--max-model-len") == 1  # the solved flags replace the given ones
    code, out, err = _run(capsys, "fit", "--concurrency", "4", "--", *line)
    assert "--port 8000" in out


# ----- knobs ----------------------------------------------------------------------------------


def test_knobs_on_a_failing_baseline():
    # Qwen3-8B on one L4 at its default 40,960 tokens: the KV cache cannot hold one request
    res = vramplan.knobs("Qwen/Qwen3-8B", device="l4")
    assert not res.baseline.starts
    names = [k.name for k in res.knobs]
    assert "gpu-memory-utilization" not in names  # a smaller budget cannot fix a KV cache that is too small
    started = [k for k in res.knobs if k.plan is not None and k.plan.starts]
    assert started
    for k in started:  # the baseline holds no tokens: a change that starts adds all of its own
        assert k.kv_tokens_added == k.plan.kv_cache_tokens > 0
    d = res.to_dict()
    assert d["baseline"]["error_kind"] == "max_model_len_exceeds_kv_cache"
    assert all(r["kv_tokens_added"] is not None for r in d["knobs"] if r["verdict"] == "starts")


def test_knobs_on_ascend_offer_no_fp8_and_no_cache_already_off():
    res = vramplan.knobs(device="ascend-910b3", flags=SEED001)
    changes = " ".join(k.change for k in res.knobs)
    assert "fp8" not in changes and "--mm-processor-cache-gb" not in changes
    # the same model on an H100 is offered both fp8 knobs, and the host cache when it is on
    res = vramplan.knobs("Qwen/Qwen3-VL-8B-Instruct")
    changes = " ".join(k.change for k in res.knobs)
    assert "--kv-cache-dtype fp8" in changes and "--quantization fp8" in changes
    assert "--mm-processor-cache-gb 0" in changes


def test_fit_alternatives_on_ascend_are_not_fp8():
    from vramplan.errors import NoFittingFlags

    with pytest.raises(NoFittingFlags) as exc:
        vramplan.fit("Qwen/Qwen3-32B", device="ascend-910b4", concurrency=256, context=32768)
    assert "tensor-parallel-size" in exc.value.hint and "fp8" not in exc.value.hint
    with pytest.raises(NoFittingFlags) as exc:  # on an H100 both fp8 alternatives are tried
        vramplan.fit("Qwen/Qwen3-32B", device="h100-80gb", concurrency=256, context=32768)
    assert "--kv-cache-dtype fp8" in exc.value.hint and "--quantization fp8" in exc.value.hint


# ----- sweep ----------------------------------------------------------------------------------


def test_sweep_marks_an_invalid_value_instead_of_aborting(capsys):
    code, out, err = _run(capsys, "sweep", "Qwen/Qwen3-8B", "--vary", "tensor-parallel-size=1,2,3,4", "--json")
    assert code == 0, err
    rows = {r["value"]: r for r in json.loads(out)["rows"]}
    assert rows[3]["verdict"] == "invalid" and "divisible by tensor parallel size (3)" in rows[3]["error_message"]
    assert rows[1]["verdict"] == rows[2]["verdict"] == rows[4]["verdict"] == "starts"
    code, out, err = _run(capsys, "sweep", "Qwen/Qwen3-8B", "--vary", "tensor-parallel-size=1,2,3,4")
    assert code == 0 and "invalid" in out and "(3)" in out


def test_failing_rows_show_the_failure_not_a_kv_cache(capsys):
    # seed 000: util 0.36 on a 910B4, max-model-len from 65,536 up cannot start
    argv = ["sweep", "Qwen/Qwen3-VL-2B-Instruct", "--device", "ascend-910b4", "--gpu-memory-utilization", "0.36",
            "--vary", "max-model-len=4096:262144", "--steps", "7"]
    code, out, err = _run(capsys, *argv, "--json")
    for r in json.loads(out)["rows"]:
        if r["verdict"] == "fails":
            assert r["kv_cache_tokens"] is None and r["kv_cache_gib"] is None and r["error_kind"]
        else:
            assert r["kv_cache_tokens"] > 0 and r["kv_cache_gib"] > 0
    code, out, err = _run(capsys, *argv)
    fails = [line for line in out.splitlines() if " fails " in line]
    assert fails and all("max_model_len_exceeds_kv_cache" in line and " 0 " not in line for line in fails)


@pytest.mark.parametrize("vary,field,values", [
    ("enforce-eager=true,false", "enforce_eager", [True, False]),
    ("cpu-offload-gb=0,4", "cpu_offload_gb", [0.0, 4.0]),
    ("block-size=16,32", "block_size", [16, 32]),
    ("enable-prefix-caching=false,true", "enable_prefix_caching", [False, True]),
    ("-tp=1,2", "tensor_parallel_size", [1, 2]),
])
def test_any_memory_flag_can_be_swept(vary, field, values):
    res = vramplan.sweep("Qwen/Qwen3-8B", vary=vary)
    assert list(res.values) == values
    assert [getattr(p.args, field) for p in res.plans] == values


def test_a_flag_without_memory_effect_is_refused_with_the_reason():
    with pytest.raises(vramplan.errors.InputError, match="no memory effect"):
        vramplan.sweep("Qwen/Qwen3-8B", vary="port=8000,8001")


# ----- terminal layout ------------------------------------------------------------------------


def test_numbers_are_never_cut_at_80_columns():
    code, out, _ = run_cli("plan", "Qwen/Qwen3-8B", "-v", env={"COLUMNS": "80"})
    assert code == 0
    assert not re.search(r"\d…", out), "a number was ellipsized"
    obj = json.loads(run_cli("plan", "Qwen/Qwen3-8B", "--json")[1])
    for key in ("requested", "weights", "non_kv_total", "kv_cache"):
        assert f"{obj['memory_gib'][key]:.2f}" in out
    assert max(len(line) for line in out.split("KV cache:")[0].splitlines()) <= 80


@pytest.mark.parametrize("flags", [["-pp", "4", "-v"], ["-tp", "2", "-pp", "2"], ["--device", "ascend-910b3", "-v"]])
def test_tables_of_several_ranks_fit_80_columns_whole_numbers(flags):
    code, out, _ = run_cli("plan", "Qwen/Qwen3-8B", *flags, env={"COLUMNS": "80"})
    table = out.split("* measured term")[0].splitlines()[1:]
    assert code == 0 and not re.search(r"\d…", out)
    assert max(len(line) for line in table) <= 80


def test_citations_use_the_width_there_is():
    # the rule of "left outside the budget" is 73 characters: cut at 57 before, whole at 160 columns
    # pinned to 0.33, whose table has that row (0.34's extensible cache tells its own story)
    wide = run_cli("plan", "Qwen/Qwen3-8B", "--vllm-version", "0.33", env={"COLUMNS": "160"})[1]
    assert "total - other processes - memory in use at the init snapshot - requested" in wide


@pytest.mark.parametrize("argv", [
    ["knobs", "Qwen/Qwen3-8B"], ["knobs", "Qwen/Qwen3-VL-8B-Instruct", "--concurrency", "4", "--context", "8192"],
    ["knobs", "Qwen/Qwen3-8B", "--device", "l4"],
    ["knobs", "--device", "ascend-910b3", "--", *SEED001],
    ["sweep", "Qwen/Qwen3-8B", "--vary", "max-model-len=4096:131072"],
    ["sweep", "Qwen/Qwen3-8B", "--vary", "tensor-parallel-size=1,2,3"],
])
def test_knobs_and_sweep_fit_80_columns(argv):
    code, out, err = run_cli(*argv, env={"COLUMNS": "80"})
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80


def test_fit_wraps_its_prose_at_80_columns_and_keeps_serve_lines_whole():
    code, out, err = run_cli("fit", "Qwen/Qwen3-VL-2B-Instruct", "--device", "ascend-910b4", "--used-by-others-gib",
                             "18", "--concurrency", "4", "--context", "8192", env={"COLUMNS": "80"})
    assert code == 0, err
    long = [line for line in out.splitlines() if len(line) > 80]
    assert long and all(line.strip().startswith("vllm serve") for line in long)


@pytest.mark.parametrize("cmd", ["plan", "fit", "knobs", "sweep"])
def test_help_says_a_serve_line_may_follow(cmd):
    code, out, _ = run_cli(cmd, "--help")
    assert code == 0 and "-- vllm serve" in out and "before --" in out


def test_every_option_has_help_text():
    _, parsers = build_parser()
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in parsers.items() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


# ----- explain on a V0 log ---------------------------------------------------------------------


def test_explain_v0_log_shows_the_activation_peak(capsys):
    # the log: "Loading model weights took 14.9888 GB" and "peak_torch_memory=17.98GiB" (torch peak with the
    # weights, vLLM 0.6.4's Worker.determine_num_available_blocks): the activation peak is 17.98 - 14.99 = 2.99
    code, out, _ = _run(capsys, "explain", V0_LOG, "--json")
    assert json.loads(out)["memory_gib"]["activation_peak"] == pytest.approx(2.99, abs=0.005)
    code, out, _ = _run(capsys, "explain", V0_LOG)
    assert re.search(r"torch peak increase.*2\.99", out)


# ----- pictures --------------------------------------------------------------------------------


def test_pictures_get_the_usual_file_mode(tmp_path):
    pytest.importorskip("matplotlib")
    old = os.umask(0o022)
    try:
        code, _, err = run_cli("plan", "Qwen/Qwen3-8B", "--plot", str(tmp_path / "p.png"))
        assert code == 0, err
        code, _, err = run_cli("sweep", "Qwen/Qwen3-8B", "--vary", "tp=1,2", "--plot", str(tmp_path / "s.svg"))
        assert code == 0, err
    finally:
        os.umask(old)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.svg").stat().st_mode & 0o777 == 0o644


# ----- the API validates as the CLI does ---------------------------------------------------------


def test_api_refuses_util_zero_and_reads_32k():
    with pytest.raises(FlagError) as exc:
        vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0)
    code, _, err = run_cli("plan", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "0")
    assert code == 2 and err.strip() == f"vramplan: {exc.value.one_line()}"
    assert vramplan.plan("Qwen/Qwen3-8B", max_model_len="32k").max_model_len == 32000  # vLLM: k = 1000
