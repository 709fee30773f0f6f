"""The JSON API of ``vramplan serve``: every endpoint, the bad-input classes, parity with ``--json``.

Parity: each endpoint's answer is compared with what ``vramplan <command> ... --json`` prints for
the same inputs (the CLI in-process), so the two can never drift apart.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[test]')")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from tests.conftest import DATA, ROOT  # noqa: E402
from vramplan.cli import main  # noqa: E402
from vramplan.web.app import BODY_LIMITS, DEFAULT_BODY_LIMIT, create_app  # noqa: E402

SEED001 = next((DATA / "seeds").glob("001_*.txt"))
SEED001_LINE = ("vllm serve /root/.cache/modelscope/hub/models/Qwen/Qwen3-VL-8B-Instruct --tensor-parallel-size 2 "
                "--max-model-len 65536 --max-num-seqs 8 --max-num-batched-tokens 32768 "
                "--gpu-memory-utilization 0.95 --mm-processor-cache-gb 0")
SEED001_CATALOG_LINE = SEED001_LINE.replace("/root/.cache/modelscope/hub/models/", "")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


def cli_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    argv = list(argv)
    at = argv.index("--") if "--" in argv else len(argv)
    code = main(argv[:at] + ["--json"] + argv[at:])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def post(client, path: str, body) -> tuple[int, dict]:
    r = client.post(path, json=body)
    return r.status_code, r.json()


# ----- parity with the CLI's --json, endpoint by endpoint -------------------------------------------

PLAN_CASES = [
    ({"model": "Qwen/Qwen3-8B", "flags": ["--max-model-len", "32768"]},
     ["plan", "Qwen/Qwen3-8B", "--max-model-len", "32768"]),
    # seed 000: Qwen3-VL-2B on a 910B4 at util 0.36 (fails; the fix is attached)
    ({"model": "Qwen/Qwen3-VL-2B-Instruct", "device": "ascend-910b4", "args": {"gpu_memory_utilization": 0.36}},
     ["plan", "Qwen/Qwen3-VL-2B-Instruct", "--device", "ascend-910b4", "--gpu-memory-utilization", "0.36"]),
    # seed 001's own line, pasted (the model named as the catalog id)
    ({"device": "ascend-910b3", "flags": SEED001_CATALOG_LINE},
     ["plan", "--device", "ascend-910b3", "--", *SEED001_CATALOG_LINE.split()]),
    ({"model": "Qwen/Qwen3-8B", "device": "rtx-4090", "vllm_version": "0.26", "used_by_others_gib": 2,
      "flags": ["-tp", "2", "--kv-cache-dtype", "fp8", "--enforce-eager"]},
     ["plan", "Qwen/Qwen3-8B", "--device", "rtx-4090", "--vllm-version", "0.26", "--used-by-others-gib", "2",
      "-tp", "2", "--kv-cache-dtype", "fp8", "--enforce-eager"]),
    ({"model": "Qwen/Qwen3-8B", "device_memory_gib": 40, "device": "a100-80gb"},
     ["plan", "Qwen/Qwen3-8B", "--device", "a100-80gb", "--device-memory-gib", "40"]),
    ({"model": "Qwen/Qwen3-VL-8B-Instruct", "image": "1920x1080", "images_per_request": 2},
     ["plan", "Qwen/Qwen3-VL-8B-Instruct", "--image", "1920x1080", "--images-per-request", "2"]),
    ({"model": "meta-llama/Llama-3.1-8B-Instruct", "flags": ["--unknown-not-a-flag-but-ignored"]}, None),
]


@pytest.mark.parametrize("body,argv", [c for c in PLAN_CASES if c[1] is not None])
def test_plan_equals_cli_json(client, capsys, body, argv):
    status, got = post(client, "/api/plan", body)
    assert status == 200, got
    assert got == cli_json(capsys, *argv)


def test_plan_seed000_answers_the_question(client):
    """Seed 000: a '2B' VL model asks for far more than 4 GiB, and util 0.36 fails with vLLM's words and a fix."""
    status, p = post(client, "/api/plan", PLAN_CASES[1][0])
    assert status == 200
    assert p["verdict"] == "fails" and p["error_kind"] == "max_model_len_exceeds_kv_cache"
    assert "estimated maximum model length" in p["error_message"]
    assert p["fix"] and "--max-model-len" in p["fix"]
    # weights + activation + non-torch + graphs = non-KV; + KV = requested (the stacked bar's arithmetic)
    r = p["ranks"][0]["memory_gib"]
    parts = r["weights"] + r["activation_peak"] + r["non_torch"] + r["cudagraph_estimate"]
    assert abs(parts - r["non_kv_total"]) < 1e-3
    assert abs(r["non_kv_total"] + r["kv_cache"] - r["requested"]) < 1e-3
    assert all(t["rule"] for t in p["ranks"][0]["terms"].values())


def test_explain_equals_cli_json(client, capsys):
    text = SEED001.read_text()
    for extra in ([], ["--compare"]):
        status, got = post(client, "/api/explain", {"log": text, "compare": bool(extra)})
        assert status == 200, got
        assert got == cli_json(capsys, "explain", str(SEED001), *extra)


@pytest.mark.parametrize("log", sorted((DATA / "public" / "logs").glob("*.log"))[:6], ids=lambda p: p.name)
def test_explain_public_logs_equal_cli(client, capsys, log):
    status, got = post(client, "/api/explain", {"log": log.read_text(encoding="utf-8", errors="replace"),
                                                "compare": True})
    assert status == 200, got
    assert got == cli_json(capsys, "explain", str(log), "--compare")


def test_fit_equals_cli_json(client, capsys):
    body = {"model": "Qwen/Qwen3-8B", "concurrency": 8, "context": 16384, "flags": ["--max-model-len", "16384"]}
    status, got = post(client, "/api/fit", body)
    assert status == 200, got
    assert got == cli_json(capsys, "fit", "Qwen/Qwen3-8B", "--concurrency", "8", "--context", "16384",
                           "--max-model-len", "16384")
    assert got["serve_line"].startswith("vllm serve Qwen/Qwen3-8B")


def test_fit_seed000_with_others_equals_cli(client, capsys):
    body = {"model": "Qwen/Qwen3-VL-2B-Instruct", "device": "ascend-910b4", "used_by_others_gib": 18,
            "concurrency": 4, "context": 8192, "budget_gib": 10}
    status, got = post(client, "/api/fit", body)
    assert status in (200, 422), got
    capsys.readouterr()
    code = main(["fit", "Qwen/Qwen3-VL-2B-Instruct", "--device", "ascend-910b4", "--used-by-others-gib", "18",
                 "--concurrency", "4", "--context", "8192", "--budget-gib", "10", "--json"])
    out = capsys.readouterr().out
    if status == 200:
        assert code == 0 and got == json.loads(out)
    else:  # no fitting flags: both refuse with the same line
        assert code == 2 and json.loads(out)["error"] == got["error"]


def test_knobs_equals_cli_json(client, capsys):
    """Seed 002's question (which flags buy back how much) on seed 001's setup."""
    status, got = post(client, "/api/knobs", {"device": "ascend-910b3", "flags": SEED001_CATALOG_LINE})
    assert status == 200, got
    assert got == cli_json(capsys, "knobs", "--device", "ascend-910b3", "--", *SEED001_CATALOG_LINE.split())
    assert len(got["knobs"]) >= 3


def test_knobs_with_workload_equals_cli(client, capsys):
    status, got = post(client, "/api/knobs", {"model": "Qwen/Qwen3-8B", "concurrency": 16, "context": 8192})
    assert status == 200
    assert got == cli_json(capsys, "knobs", "Qwen/Qwen3-8B", "--concurrency", "16", "--context", "8192")


@pytest.mark.parametrize("vary,steps", [("max-model-len=4096:40960", 7), ("gpu-memory-utilization=0.3:0.9", 5),
                                        ("kv-cache-dtype=auto,fp8", 8), ("used-by-others-gib=0:70", 6)])
def test_sweep_equals_cli_json(client, capsys, vary, steps):
    status, got = post(client, "/api/sweep", {"model": "Qwen/Qwen3-8B", "vary": vary, "steps": steps})
    assert status == 200, got
    assert got == cli_json(capsys, "sweep", "Qwen/Qwen3-8B", "--vary", vary, "--steps", str(steps))


def test_sweep_has_a_failing_region(client):
    status, s = post(client, "/api/sweep", {"model": "Qwen/Qwen3-VL-2B-Instruct", "device": "ascend-910b4",
                                            "args": {"gpu_memory_utilization": 0.36},
                                            "vary": "max-model-len=4096:262144", "steps": 7})
    assert status == 200
    verdicts = [r["verdict"] for r in s["rows"]]
    assert verdicts[0] == "starts" and verdicts[-1] == "fails"



# ----- SGLang: engine "sglang" equals `vramplan <command> --engine sglang --json` -------------------------

SGLANG_LOGS = ROOT / "tests" / "fixtures" / "sglang_logs"
SGLANG_PLAN_CASES = [
    ({"engine": "sglang", "model": "Qwen/Qwen3-8B"}, ["plan", "Qwen/Qwen3-8B", "--engine", "sglang"]),
    ({"engine": "sglang", "model": "Qwen/Qwen3-8B", "device": "a100-40gb", "sglang_version": "0.5.17",
      "used_by_others_gib": 2, "args": {"context_length": 32768, "mem_fraction_static": 0.8, "tp_size": 2}},
     ["plan", "Qwen/Qwen3-8B", "--engine", "sglang", "--device", "a100-40gb", "--sglang-version", "0.5.17",
      "--used-by-others-gib", "2", "--context-length", "32768", "--mem-fraction-static", "0.8", "--tp-size", "2"]),
    # a pasted launch line, the model named in it; an unknown-to-memory flag is listed as ignored
    ({"engine": "sglang", "flags": "python -m sglang.launch_server --model-path Qwen/Qwen3-VL-8B-Instruct "
                                   "--kv-cache-dtype fp8_e4m3 --chunked-prefill-size 4096 --port 30000"},
     ["plan", "--engine", "sglang", "--", "python", "-m", "sglang.launch_server", "--model-path",
      "Qwen/Qwen3-VL-8B-Instruct", "--kv-cache-dtype", "fp8_e4m3", "--chunked-prefill-size", "4096", "--port",
      "30000"]),
    # does not start: the fraction leaves no room (SGLang's words, the fix)
    ({"engine": "sglang", "model": "Qwen/Qwen3-8B", "device": "rtx-4090", "args": {"mem_fraction_static": 0.3}},
     ["plan", "Qwen/Qwen3-8B", "--engine", "sglang", "--device", "rtx-4090", "--mem-fraction-static", "0.3"]),
    ({"engine": "sglang", "model": "Qwen/Qwen3-8B", "device_memory_gib": 40},
     ["plan", "Qwen/Qwen3-8B", "--engine", "sglang", "--device-memory-gib", "40"]),
]


@pytest.mark.parametrize("body,argv", SGLANG_PLAN_CASES)
def test_sglang_plan_equals_cli_json(client, capsys, body, argv):
    status, got = post(client, "/api/plan", body)
    assert status == 200, got
    assert got["engine_name"] == "sglang"
    assert got == cli_json(capsys, *argv)


def test_sglang_plan_figures_are_sglangs(client):
    """KV tokens = the pool's bytes over the cell's bytes per token (SGLang's max_total_num_tokens), checked
    from the answer's own figures; the release picked is the one applied."""
    for version in ("0.5.17", "0.5.23"):
        status, p = post(client, "/api/plan", {"engine": "sglang", "model": "Qwen/Qwen3-8B", "sglang_version": version})
        assert status == 200 and p["engine_version"] == version and p["vllm_version"] is None
        r = p["ranks"][0]
        # Qwen3-8B: 36 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes (bf16) = 147,456 bytes per token
        assert r["cell_bytes_per_token"] == 36 * 8 * 128 * 2 * 2
        assert r["tokens"] <= r["kv_budget_bytes"] // r["cell_bytes_per_token"]


def test_sglang_fit_knobs_sweep_equal_cli_json(client, capsys):
    base = {"engine": "sglang", "model": "Qwen/Qwen3-8B", "device": "a100-80gb"}
    argv = ["Qwen/Qwen3-8B", "--engine", "sglang", "--device", "a100-80gb"]
    status, got = post(client, "/api/fit", {**base, "concurrency": 8, "context": 16384})
    assert status == 200, got
    assert got == cli_json(capsys, "fit", *argv, "--concurrency", "8", "--context", "16384")
    assert got["launch_line"].startswith("python -m sglang.launch_server")
    status, got = post(client, "/api/knobs", base)
    assert status == 200, got
    assert got == cli_json(capsys, "knobs", *argv)
    status, got = post(client, "/api/sweep", {**base, "vary": "mem-fraction-static=0.5:0.9", "steps": 5})
    assert status == 200, got
    assert got == cli_json(capsys, "sweep", *argv, "--vary", "mem-fraction-static=0.5:0.9", "--steps", "5")


@pytest.mark.parametrize("log", sorted(SGLANG_LOGS.glob("*.synthetic.log"))[:3], ids=lambda p: p.name)
def test_sglang_log_explain_equals_cli_json(client, capsys, log):
    for extra in ([], ["--compare"]):
        status, got = post(client, "/api/explain", {"log": log.read_text(), "compare": bool(extra)})
        assert status == 200, got
        assert got == cli_json(capsys, "explain", str(log), *extra)


def test_sglang_bad_input_is_one_line(client):
    for body, words in (({"engine": "sglang", "model": "Qwen/Qwen3-8B", "sglang_version": "0.1.0"}, "older"),
                        ({"engine": "sglang", "model": "Qwen/Qwen3-8B", "args": {"kv_cache_dtype": "nvfp4"}}, "nvfp4"),
                        ({"engine": "sglang", "model": "Qwen/Qwen3-VL-8B-Instruct", "image": "640x480"}, "vLLM only"),
                        ({"engine": "sglang", "model": "/etc"}, "local paths"),
                        ({"engine": "sglang", "model": "Qwen/Qwen3-8B",
                          "flags": "python -m sglang.launch_server --model-path Qwen/Qwen3-14B"}, "two models")):
        assert words in one_line_error(client.post("/api/plan", json=body), 422)
    assert "cannot sweep" in one_line_error(client.post("/api/sweep", json={
        "engine": "sglang", "model": "Qwen/Qwen3-8B", "vary": "max-model-len=1024:2048"}), 422)

def test_catalog_lists_what_the_pickers_need(client):
    c = client.get("/api/catalog").json()
    assert "Qwen/Qwen3-8B" in c["models"] and c["engines"] == ["vllm", "sglang"]
    assert any(d["name"] == "h100-80gb" for d in c["devices"])
    assert c["default_vllm_version"] in c["vllm_versions"] and "max-model-len" in c["sweepable"]
    from vramplan.engines.sglang.rules import DEFAULT_VERSION, SUPPORTED
    from vramplan.engines.vllm.rules.versions import DEFAULT_VERSION as VLLM_DEFAULT

    assert c["releases"]["vllm"]["default"] == VLLM_DEFAULT == c["default_vllm_version"]
    assert sorted(c["releases"]["sglang"]["versions"]) == sorted(SUPPORTED)
    assert c["releases"]["sglang"]["default"] == DEFAULT_VERSION
    assert "mem-fraction-static" in c["sweepable_by_engine"]["sglang"]


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/api/openapi.json").json()
    for path in ("/api/plan", "/api/explain", "/api/fit", "/api/knobs", "/api/sweep"):
        assert "post" in spec["paths"][path], path
    assert client.get("/api/docs").status_code == 404  # Swagger UI would load from a CDN: not served


def test_page_and_bundled_plotly_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text
    assert "https://" not in page.text  # no CDN
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    for name in ("app.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../service.py").status_code == 404


# ----- bad input: 4xx with one line of JSON ---------------------------------------------------------


def one_line_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"]
    assert "Traceback" not in r.text
    return body["error"]


def test_malformed_json_is_400(client):
    r = client.post("/api/plan", content=b'{"model": "Qwen/Qwen3-8B",', headers={"content-type": "application/json"})
    assert "not valid JSON" in one_line_error(r, 400)
    assert "no JSON body" in one_line_error(client.post("/api/plan"), 400)


@pytest.mark.parametrize("body,status,words", [
    ({"model": "nobody/no-such-model-xyz"}, 404, "not in the bundled catalog"),
    ({"model": "Qwen/Qwen3-8B", "flags": ["--max-model-len", "999999"]}, 422, "max_model_len"),
    ({"model": "Qwen/Qwen3-8B", "flags": ["-tp", "3"]}, 422, ""),
    ({"model": "Qwen/Qwen3-8B", "flags": ["--gpu-memory-utilization", "1.5"]}, 422, ""),
    ({"model": "Qwen/Qwen3-8B", "device": "no-such-gpu"}, 422, "no-such-gpu"),
    ({"model": "Qwen/Qwen3-8B", "vllm_version": "0.1.0"}, 422, "no rule set"),
    ({"model": "Qwen/Qwen3-8B", "engine": "tgi"}, 422, "engine"),
    ({"model": "Qwen/Qwen3-8B", "flags": "vllm serve 'unclosed"}, 422, "quotes"),
    ({"model": "Qwen/Qwen3-8B", "args": {"no_such_arg": 1}}, 422, ""),
    ({"model": "Qwen/Qwen3-8B", "surprise": 1}, 422, "surprise"),
    ({"model": 12}, 422, "model"),
    ({"flags": ["--max-model-len", "4096"]}, 422, "no model"),
    ({"model": "Qwen/Qwen3-8B", "flags": "vllm serve Qwen/Qwen3-14B"}, 422, "two models"),
    ({"config": {"hidden_size": 1}}, 422, "model_type"),
])
def test_bad_plan_input_is_one_line_4xx(client, body, status, words):
    assert words in one_line_error(client.post("/api/plan", json=body), status)


def test_impossible_config_is_the_clis_json_error(client, capsys):
    r = client.post("/api/plan", json={"model": "Qwen/Qwen3-8B", "flags": ["--max-model-len", "999999"]})
    one_line_error(r, 422)
    capsys.readouterr()
    assert main(["plan", "Qwen/Qwen3-8B", "--max-model-len", "999999", "--json"]) == 2
    assert r.json() == json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["/etc", "/etc/passwd", "../../etc", "~/models/x", "./vramplan", "vramplan",
                                  "tests", "C:\\models\\x", "a/b/c", "..", "Qwen/../../etc"])
def test_local_path_as_model_is_refused(client, name):
    for path, extra in (("/api/plan", {}), ("/api/fit", {}), ("/api/knobs", {}),
                        ("/api/sweep", {"vary": "max-model-len=1024:2048"})):
        err = one_line_error(client.post(path, json={"model": name, **extra}), 422)
        assert "local paths" in err


def test_explain_compare_never_reads_the_logs_local_folder(client, tmp_path):
    """A log whose model is a folder on this machine is matched to the catalog by name, never read."""
    folder = tmp_path / "secret-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    log = SEED001.read_text().replace("/root/.cache/modelscope/hub/models/Qwen/Qwen3-VL-8B-Instruct", str(folder))
    status, got = post(client, "/api/explain", {"log": log, "compare": True})
    assert status == 200
    assert "not in the catalog" in got["compare"]["unavailable"]
    r = client.post("/api/explain", json={"log": SEED001.read_text(), "compare": True, "model": str(folder)})
    assert r.status_code == 200 and "local paths" in r.json()["compare"]["unavailable"]


def test_a_one_line_log_is_text_never_a_path(client):
    """The API reads a string without a newline as a path; the web hands it the text, so a log that names a
    file on the server is parsed as a (useless) log, never opened."""
    for text in ("/etc/passwd", str(ROOT / "README.md"), "-"):
        err = one_line_error(client.post("/api/explain", json={"log": text}), 422)
        assert "in 1 line" in err  # the one line given, not the file's lines (nor standard input)


def test_a_dropped_config_plans_with_sglang(client, capsys):
    cfg = json.loads((ROOT / "vramplan" / "catalog" / "Qwen" / "Qwen3-8B" / "config.json").read_text())
    status, got = post(client, "/api/plan", {"engine": "sglang", "config": cfg, "model": "my-qwen"})
    assert status == 200, got
    ref = cli_json(capsys, "plan", "Qwen/Qwen3-8B", "--engine", "sglang")
    assert got["model"] == "my-qwen" and got["kv_cache_tokens"] == ref["kv_cache_tokens"]
    assert got["memory_gib"]["weights"] == ref["memory_gib"]["weights"]


def test_oversize_bodies_are_413(client):
    big = {"model": "Qwen/Qwen3-8B", "flags": ["--x" * (DEFAULT_BODY_LIMIT // 3)]}
    assert "request body over" in one_line_error(client.post("/api/plan", json=big), 413)
    log = "INFO x\n" * (BODY_LIMITS["/api/explain"] // 7 + 10)
    one_line_error(client.post("/api/explain", json={"log": log}), 413)

    def chunks():  # no Content-Length: counted while it streams
        yield b'{"model": "'
        for _ in range(DEFAULT_BODY_LIMIT // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    one_line_error(client.post("/api/plan", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_bad_requests_of_every_endpoint(client):
    assert "log" in one_line_error(client.post("/api/explain", json={}), 422)
    assert "no log" in one_line_error(client.post("/api/explain", json={"log": "   "}), 422)
    assert "vary" in one_line_error(client.post("/api/sweep", json={"model": "Qwen/Qwen3-8B"}), 422)
    assert "sweep" in one_line_error(client.post("/api/sweep", json={"model": "Qwen/Qwen3-8B",
                                                                     "vary": "model=1:2"}), 422)
    assert "cannot sweep" in one_line_error(client.post("/api/sweep", json={"model": "Qwen/Qwen3-8B",
                                                                            "vary": "no-such-flag=1:2"}), 422)
    one_line_error(client.post("/api/sweep", json={"model": "Qwen/Qwen3-8B", "vary": "max-model-len=1:2",
                                                   "steps": 10_000}), 422)
    assert "concurrency" in one_line_error(client.post("/api/fit", json={"model": "Qwen/Qwen3-8B",
                                                                          "concurrency": 0}), 422)
    one_line_error(client.post("/api/fit", json={"model": "Qwen/Qwen3-8B", "image": "big"}), 422)
    one_line_error(client.post("/api/knobs", json={"model": "Qwen/Qwen3-8B", "context": -5}), 422)
    one_line_error(client.get("/api/plan"), 405)
    one_line_error(client.get("/api/nothing"), 404)
    one_line_error(client.post("/api/plan", json=[1, 2]), 422)


def test_explain_of_garbage_is_an_answer_or_one_line(client):
    for text in ("hello\nworld\n", "\x00\x01binary", "INFO 01-01 Available KV cache memory: nan GiB"):
        r = client.post("/api/explain", json={"log": text})
        assert r.status_code in (200, 422), r.text
        if r.status_code != 200:
            one_line_error(r, 422)


def test_dropped_config_is_planned_in_memory(client):
    cfg = json.loads((ROOT / "vramplan" / "catalog" / "Qwen" / "Qwen3-8B" / "config.json").read_text())
    status, got = post(client, "/api/plan", {"config": cfg, "model": "my-qwen", "args": {"max_model_len": 32768}})
    assert status == 200, got
    status, ref = post(client, "/api/plan", {"model": "Qwen/Qwen3-8B", "args": {"max_model_len": 32768}})
    assert got["model"] == "my-qwen"
    assert got["ranks"][0]["memory_gib"]["weights"] == ref["ranks"][0]["memory_gib"]["weights"]
    assert got["kv_cache_tokens"] == ref["kv_cache_tokens"]


def test_other_hosts_are_refused_on_loopback(client):
    r = client.get("/", headers={"host": "attacker.example:8765"})
    assert "only on localhost" in one_line_error(r, 421)
    with TestClient(create_app(loopback_only=False), base_url="http://box.lan") as open_client:
        assert open_client.get("/").status_code == 200


_values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**7), st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.text(max_size=12), st.lists(st.text(max_size=8), max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["model", "device", "device_memory_gib", "used_by_others_gib",
                                             "vllm_version", "flags", "args", "engine", "image", "concurrency",
                                             "context", "vary", "steps"]), _values, max_size=5),
       path=st.sampled_from(["/api/plan", "/api/fit", "/api/knobs", "/api/sweep"]))
def test_no_body_is_an_internal_error(client, body, path):
    body.setdefault("model", "Qwen/Qwen3-8B")
    r = client.post(path, json=body)
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        one_line_error(r, r.status_code)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["device", "device_memory_gib", "used_by_others_gib", "sglang_version",
                                             "flags", "args", "concurrency", "context", "vary", "steps"]),
                            _values, max_size=4),
       args=st.dictionaries(st.sampled_from(["context_length", "mem_fraction_static", "tp_size", "kv_cache_dtype",
                                             "max_running_requests", "disable_cuda_graph"]),
                            st.one_of(st.integers(-5, 10**6), st.floats(-1, 2), st.booleans(),
                                      st.sampled_from(["fp8_e4m3", "auto", "x"])), max_size=3),
       path=st.sampled_from(["/api/plan", "/api/fit", "/api/knobs", "/api/sweep"]))
def test_no_sglang_body_is_an_internal_error(client, body, args, path):
    body = {**body, "engine": "sglang", "model": "Qwen/Qwen3-8B"}
    if args:
        body["args"] = args
    r = client.post(path, json=body)
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        one_line_error(r, r.status_code)


# ----- the serve command -------------------------------------------------------------------------


def test_serve_warns_off_loopback_and_checks_its_port(monkeypatch, capsys):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert main(["serve"]) == 0
    assert calls[-1][1]["host"] == "127.0.0.1" and calls[-1][1]["port"] == 8765
    assert "warning" not in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--port", "9999"]) == 0
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err and "http://0.0.0.0:9999/" in err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--bogus"]) == 2


def test_serve_starts_and_answers(tmp_path):
    """The real command in a subprocess: it binds 127.0.0.1 and answers the API."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "vramplan", "serve", "--port", str(port)], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, body = time.time() + 30, None
        while body is None and time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/catalog", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.1)
        assert body is not None and "Qwen/Qwen3-8B" in body["models"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_hub_id_is_asked_only_when_the_hub_answers(client, monkeypatch):
    """Offline, a name outside the catalog is a 404 at once; online, it goes to the Hub loader."""
    from vramplan.web import service

    r = client.post("/api/plan", json={"model": "someorg/some-model"})
    assert "Hub cannot be reached" in one_line_error(r, 404)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(service, "_HUB_CHECK", [1e18, True])  # "checked just now: it answers"
    asked = []

    def fake_load(name, revision=None):
        asked.append(name)
        raise service.ConfigNotFound(f"{name} is not on the Hub", hint="check the id")

    monkeypatch.setattr("vramplan.api.load_model", fake_load)
    r = client.post("/api/plan", json={"model": "someorg/some-model"})
    assert "not on the Hub" in one_line_error(r, 404) and asked == ["someorg/some-model"]
