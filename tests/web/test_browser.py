"""The page of ``vramplan serve`` in a real headless Chromium (Debian's chromium + chromium-driver).

One server (127.0.0.1, a free port) and one browser per module. Each test reads the numbers the
page shows and checks them against the JSON API's answer for the same inputs. Screenshots go to a
temporary folder; with VRAMPLAN_SCREENSHOTS=1 they are written to docs/images/ for the README.
Skipped, with the reason, only where chromium is absent outside CI; in CI (.ci/run installs it)
a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[test]')")
pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from tests.conftest import DATA, ROOT  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
LAPTOP, PHONE = (1366, 768), (390, 844)
SEED000 = {"model": "Qwen/Qwen3-VL-2B-Instruct", "device": "ascend-910b4", "gpu_memory_utilization": "0.36"}
SEED001_LINE = ("vllm serve Qwen/Qwen3-VL-8B-Instruct --tensor-parallel-size 2 --max-model-len 65536 --max-num-seqs 8 "
                "--max-num-batched-tokens 32768 --gpu-memory-utilization 0.95 --mm-processor-cache-gb 0")
SEED001 = {"device": "ascend-910b3", "line": SEED001_LINE}


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if not missing:
        return
    why = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {why}; .ci/run installs them")
    pytest.skip(why)


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from vramplan.web.app import create_app

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-quic", "--hide-scrollbars", "--lang=en-US"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield d
    d.quit()


def api(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def viewport(d, size, height: int | None = None) -> None:
    w, h = size
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": w, "height": height or h, "deviceScaleFactor": 1, "mobile": w < 600})


def open_page(d, base: str, params: dict, size=LAPTOP) -> None:
    viewport(d, size)
    d.get(f"{base}/?{urlencode(params)}")
    wait(d, "return document.body.dataset.ready === '1'")


def wait(d, script: str, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = d.execute_script(script)
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}; error shown: {text(d, 'error')!r}")


def text(d, element_id: str) -> str:
    return d.execute_script(f"const e = document.getElementById('{element_id}'); return e ? e.innerText : null;")


def shot(d, tmp_path: Path, name: str, full: bool = True) -> Path:
    """A screenshot of the whole page (the viewport stretched to it), kept in docs/images on request."""
    w = d.execute_script("return window.innerWidth")
    h = d.execute_script("return window.innerHeight")
    if full:
        viewport(d, (w, h), d.execute_script("return document.documentElement.scrollHeight"))
        time.sleep(0.3)
    out = tmp_path / f"web-{name}.png"
    d.save_screenshot(str(out))
    if os.environ.get("VRAMPLAN_SCREENSHOTS"):
        (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(out, ROOT / "docs" / "images" / out.name)
    viewport(d, (w, h))
    assert out.stat().st_size > 10_000
    return out


def shown(v) -> str:
    """A number as the page prints it (fmt in app.js: thousands separators; 2 decimals unless whole)."""
    if v is None:
        return "–"
    if float(v).is_integer():
        return f"{int(v):,}"
    from decimal import ROUND_HALF_UP, Decimal  # Intl.NumberFormat rounds the shortest decimal, half away from 0

    return f"{Decimal(repr(v)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def figure(d, key: str) -> str:
    return d.execute_script(f"return document.querySelector('#figures [data-key={key}] .v').innerText")


def request_of(params: dict) -> dict:
    """The API request the page sends for these URL parameters (what app.js's target() builds)."""
    req: dict = {}
    if "line" in params:
        req["flags"] = params["line"]
    elif "model" in params:
        req["model"] = params["model"]
    for k in ("device", "vllm_version", "used_by_others_gib", "device_memory_gib"):
        if k in params:
            req[k] = params[k]
    args = {k: params[k] for k in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size",
                                   "max_num_seqs", "kv_cache_dtype") if k in params}
    if args:
        req["args"] = args
    return req


# ----- the plan ----------------------------------------------------------------------------------


def test_seed000_plan_shows_the_apis_numbers(server, browser, tmp_path):
    d = browser
    open_page(d, server, SEED000)
    p = api(server, "/api/plan", request_of(SEED000))
    assert p["verdict"] == "fails"
    wait(d, "return document.getElementById('verdict').classList.contains('fails')")
    v = text(d, "verdict")
    # no release picked: the release select names the one planned for an Ascend device (the plan's rules)
    assert d.execute_script("return document.getElementById('vllm_version').options[0].text") == p["vllm_version"]
    assert "vLLM does not start" in v and p["error_message"][:80] in " ".join(v.split())
    assert p["fix"] in " ".join(v.split())
    for key, val in (("kv_cache", p["memory_gib"]["kv_cache"]), ("non_kv_total", p["memory_gib"]["non_kv_total"]),
                     ("requested", p["memory_gib"]["requested"]),
                     ("estimated_max_model_len", p["estimated_max_model_len"])):
        assert figure(d, key) == shown(val), key
    rows = d.execute_script("return [...document.querySelectorAll('#terms tr[data-key]')].map(r => "
                            "[r.dataset.key, r.cells[1].innerText, r.title])")
    terms = p["ranks"][0]["terms"]
    assert [r[0] for r in rows] == list(terms)
    for key, gib, rule in rows:
        assert gib == shown(terms[key]["gib"]) and rule == terms[key]["rule"]
    # the stacked bar: every term but the non-KV total, then what the util holds back
    names = d.execute_script("return document.getElementById('bar').data.map(t => t.name)")
    assert "weights" in names and any("holds back" in n for n in names)
    total = d.execute_script("return document.getElementById('bar').data.reduce((a, t) => a + t.x[0], 0)")
    assert abs(total - p["device"]["total_gib"]) < 0.01  # the stack is the whole device
    assert text(d, "loglines").splitlines() == p["log_lines"]
    shot(d, tmp_path, "plan-seed000")


def test_a_flag_change_replans_in_place_and_the_link_reproduces_it(server, browser):
    d = browser
    open_page(d, server, SEED000)
    d.execute_script("window.__same_page = 1")
    box = d.find_element("id", "max_model_len")
    box.clear()
    box.send_keys("32768")
    wait(d, "return document.getElementById('verdict').classList.contains('starts')")
    assert d.execute_script("return window.__same_page") == 1  # no reload
    url = d.current_url
    assert "max_model_len=32768" in url
    p = api(server, "/api/plan", request_of({**SEED000, "max_model_len": "32768"}))
    assert figure(d, "kv_cache_tokens") == shown(p["kv_cache_tokens"])
    d.get(url)  # the link alone gives the same plan
    wait(d, "return document.body.dataset.ready === '1'")
    assert d.find_element("id", "max_model_len").get_attribute("value") == "32768"
    assert figure(d, "kv_cache_tokens") == shown(p["kv_cache_tokens"])
    assert figure(d, "max_concurrency") == shown(p["max_concurrency"])


def test_seed001_pasted_line(server, browser, tmp_path):
    d = browser
    params = {**SEED001, "image": "4096x3072"}  # and the seed's photo size, for image 29 of 60
    open_page(d, server, params)
    p = api(server, "/api/plan", {**request_of(SEED001), "image": "4096x3072", "images_per_request": 1})
    assert p["tp"] == 2 and len(p["ranks"]) >= 1 and p["serving"]["fits"]
    wait(d, "return document.getElementById('servingbox') !== null")
    assert p["serving"]["verdict"] in text(d, "servingbox")
    wait(d, f"return document.querySelector('#figures [data-key=kv_cache_tokens] .v').innerText === "
            f"'{shown(p['kv_cache_tokens'])}'")
    assert figure(d, "num_gpu_blocks") == shown(p["num_gpu_blocks"])
    assert figure(d, "max_concurrency") == shown(p["max_concurrency"])
    shot(d, tmp_path, "plan-seed001")



def test_engine_select_switches_releases_flags_and_plan(server, browser, tmp_path):
    """Picking SGLang lists SGLang's releases, names the fields with SGLang's flags and plans with SGLang;
    back to vLLM, vLLM's releases come back. The figures shown are the API's."""
    from vramplan.engines.sglang.rules import DEFAULT_VERSION as SGL_DEFAULT
    from vramplan.engines.sglang.rules import SUPPORTED as SGL_SUPPORTED
    from vramplan.engines.vllm.rules.versions import DEFAULT_VERSION

    d = browser
    open_page(d, server, {"model": "Qwen/Qwen3-8B", "max_model_len": "32768"})
    releases = "return [...document.getElementById('vllm_version').options].map(o => o.text)"
    assert d.execute_script(releases)[0] == DEFAULT_VERSION
    d.execute_script("const e = document.getElementById('engine'); e.value = 'sglang';"
                     "e.dispatchEvent(new Event('change'))")
    wait(d, "return document.getElementById('verdict').innerText.includes('SGLang')")
    assert sorted(d.execute_script(releases)) == sorted(SGL_SUPPORTED)
    assert d.execute_script(releases)[0] == SGL_DEFAULT
    labels = d.execute_script("return document.getElementById('form').innerText")
    assert "--context-length" in labels and "--mem-fraction-static" in labels and "--max-model-len" not in labels
    assert d.execute_script("return document.getElementById('servingset').hidden")
    assert "engine=sglang" in d.current_url
    p = api(server, "/api/plan", {"engine": "sglang", "model": "Qwen/Qwen3-8B", "args": {"context_length": "32768"}})
    assert p["engine_name"] == "sglang" and p["context_length"] == 32768
    wait(d, f"return document.querySelector('#figures [data-key=kv_cache_tokens] .v').innerText === "
            f"'{shown(p['kv_cache_tokens'])}'")
    assert figure(d, "max_running_requests") == shown(p["max_running_requests"])
    assert text(d, "loglines").splitlines() == p["log_lines"]
    # the stacked bar is the whole device (context, weights, pool, request table, what the fraction leaves)
    total = d.execute_script("return document.getElementById('bar').data.reduce((a, t) => a + t.x[0], 0)")
    assert abs(total - p["device"]["total_gib"]) < 0.02
    shot(d, tmp_path, "plan-sglang")
    # the link reproduces it; an older SGLang release is picked from the list
    d.get(d.current_url + "&vllm_version=0.5.17")
    wait(d, "return document.body.dataset.ready === '1'")
    p = api(server, "/api/plan", {"engine": "sglang", "model": "Qwen/Qwen3-8B", "sglang_version": "0.5.17",
                                  "args": {"context_length": "32768"}})
    wait(d, "return document.getElementById('verdict').innerText.includes('SGLang 0.5.17')")
    assert figure(d, "kv_cache_tokens") == shown(p["kv_cache_tokens"])
    d.execute_script("const e = document.getElementById('engine'); e.value = 'vllm';"
                     "e.dispatchEvent(new Event('change'))")
    wait(d, "return document.getElementById('verdict').innerText.includes('vLLM')")
    assert d.execute_script(releases)[0] == DEFAULT_VERSION
    assert "--max-model-len" in d.execute_script("return document.getElementById('form').innerText")

def test_hover_shows_the_rule(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    d = browser
    open_page(d, server, {"model": "Qwen/Qwen3-8B", "max_model_len": "32768"})
    wait(d, "return document.querySelectorAll('#bar .barlayer .point path').length > 0")
    bar = d.find_element("css selector", "#bar .barlayer .point path")
    ActionChains(d).move_to_element(bar).perform()
    hover = wait(d, "const h = document.querySelector('#bar .hoverlayer'); return h && h.textContent;")
    assert "weights" in hover and "gpu_model_runner.py" in hover


def test_bad_input_shows_the_apis_line(server, browser):
    d = browser
    open_page(d, server, {"model": "nobody/no-such-model"})
    err = wait(d, "const e = document.getElementById('error'); return !e.hidden && e.innerText;")
    assert "not in the bundled catalog" in err


def test_no_request_leaves_the_machine(server, browser):
    d = browser
    open_page(d, server, {"model": "Qwen/Qwen3-8B"})
    urls = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(server) or u.startswith("data:") for u in urls), urls
    assert d.execute_script("return typeof Plotly === 'object' && Plotly.version")


def test_a_dropped_config_is_planned(server, browser, tmp_path):
    d = browser
    params = {"model": "my-upload", "max_model_len": "32768"}
    open_page(d, server, params)
    cfg = tmp_path / "config.json"
    shutil.copy(ROOT / "vramplan" / "catalog" / "Qwen" / "Qwen3-8B" / "config.json", cfg)
    d.find_element("id", "configfile").send_keys(str(cfg))
    p = api(server, "/api/plan", {"model": "Qwen/Qwen3-8B", "args": {"max_model_len": "32768"}})
    wait(d, "return document.getElementById('verdict').innerText.includes('my-upload')")
    assert figure(d, "kv_cache_tokens") == shown(p["kv_cache_tokens"])
    assert "config.json" in text(d, "confignote")
    assert "config" not in d.current_url  # the file is not put in the link


def test_an_uploaded_log_is_explained(server, browser, tmp_path):
    d = browser
    open_page(d, server, {"tab": "explain"})
    log = tmp_path / "server.log"
    shutil.copy(next((DATA / "seeds").glob("001_*.txt")), log)
    d.find_element("id", "logfile").send_keys(str(log))
    wait(d, "return document.getElementById('comparetable') !== null")
    x = api(server, "/api/explain", {"log": log.read_text(), "compare": True})
    assert " ".join(x["diagnosis"].split()) in " ".join(text(d, "explainout").split())


# ----- the tabs ----------------------------------------------------------------------------------


def test_sweep_tab_shades_the_failing_region(server, browser, tmp_path):
    d = browser
    params = {**SEED000, "tab": "sweep", "sweep_flag": "max-model-len", "sweep_range": "4096:262144",
              "sweep_steps": "7"}
    open_page(d, server, params)
    s = api(server, "/api/sweep", {**request_of(SEED000), "vary": "max-model-len=4096:262144", "steps": 7})
    wait(d, f"return document.querySelectorAll('#sweeptable tr').length === {len(s['rows']) + 1}")
    cells = d.execute_script("return [...document.querySelectorAll('#sweeptable tr')].slice(1).map(r => "
                             "[r.cells[0].innerText, r.cells[4].innerText])")
    assert cells == [[str(r["value"]), shown(r["kv_cache_tokens"])] for r in s["rows"]]
    failing = sum(r["verdict"] != "starts" for r in s["rows"])
    assert failing and d.execute_script("return document.getElementById('sweepchart').layout.shapes.length") == failing
    shot(d, tmp_path, "sweep-seed000")



def test_sglang_tabs_show_the_apis_answers(server, browser):
    """Sweep, knobs, fit and explain with engine sglang: the page shows the SGLang engine's answers."""
    d = browser
    target = {"engine": "sglang", "model": "Qwen/Qwen3-8B", "device": "a100-80gb"}
    open_page(d, server, {**target, "tab": "sweep", "sweep_flag": "mem-fraction-static", "sweep_range": "0.1:0.9",
                          "sweep_steps": "8"})
    s = api(server, "/api/sweep", {**target, "vary": "mem-fraction-static=0.1:0.9", "steps": 8})
    wait(d, f"return document.querySelectorAll('#sweeptable tr').length === {len(s['rows']) + 1}")
    cells = d.execute_script("return [...document.querySelectorAll('#sweeptable tr')].slice(1).map(r => "
                             "[r.cells[0].innerText, r.cells[4].innerText])")
    assert cells == [[str(r["value"]), shown(r["kv_cache_tokens"])] for r in s["rows"]]
    # 0.1 does not hold the weights, 0.9 leaves no room for graphs and the prefill peak: both ends fail
    assert s["rows"][0]["verdict"] != "starts" and any(r["verdict"] == "starts" for r in s["rows"])
    failing = sum(r["verdict"] != "starts" for r in s["rows"])
    assert d.execute_script("return document.getElementById('sweepchart').layout.shapes.length") == failing
    d.find_element("css selector", "#tabs button[data-tab=knobs]").click()
    k = api(server, "/api/knobs", target)
    wait(d, f"return document.querySelectorAll('#knobstable tr').length === {len(k['knobs']) + 1}")
    assert shown(k["baseline"]["kv_tokens"]) in text(d, "knobsbase")
    assert "--kv-cache-dtype fp8_e4m3" in text(d, "knobstable")
    d.find_element("css selector", "#tabs button[data-tab=fit]").click()
    d.execute_script("document.getElementById('fit_concurrency').value = '8';"
                     "document.getElementById('fit_context').value = '16384'")
    d.find_element("id", "fit_go").click()
    f = api(server, "/api/fit", {**target, "concurrency": 8, "context": 16384})
    wait(d, "return document.getElementById('fitline') !== null")
    assert text(d, "fitline") == f["launch_line"]
    d.find_element("css selector", "#tabs button[data-tab=explain]").click()
    log = (ROOT / "tests" / "fixtures" / "sglang_logs" / "qwen3-8b-h100-default.synthetic.log").read_text()
    d.execute_script("document.getElementById('log').value = arguments[0];"
                     "document.getElementById('explain_compare').checked = true", log)
    d.find_element("id", "explain_go").click()
    wait(d, "return document.getElementById('comparetable') !== null")
    x = api(server, "/api/explain", {"log": log, "compare": True})
    assert "SGLang started" in text(d, "explainout")
    shown_rows = d.execute_script("return document.querySelectorAll('#comparetable tr').length")
    assert shown_rows == len(x["compare"]["rows"]) + 1

def test_knobs_tab_is_the_apis_table(server, browser, tmp_path):
    d = browser
    open_page(d, server, {**SEED001, "tab": "knobs"})
    k = api(server, "/api/knobs", request_of(SEED001))
    wait(d, f"return document.querySelectorAll('#knobstable tr').length === {len(k['knobs']) + 1}")
    got = d.execute_script("return [...document.querySelectorAll('#knobstable tr')].slice(1).map(r => "
                           "[r.cells[0].innerText, r.cells[2].innerText])")
    want = [[x["knob"], ("host " + shown(x["host_freed_gib"])) if x["host_freed_gib"] else shown(x["freed_gib"])]
            for x in k["knobs"]]
    assert got == want
    shot(d, tmp_path, "knobs-seed001")


def test_fit_tab_gives_the_ready_command(server, browser, tmp_path):
    d = browser
    params = {"model": "Qwen/Qwen3-8B", "device": "rtx-4090", "max_model_len": "16384", "tab": "fit",
              "fit_concurrency": "4", "fit_context": "16384"}
    open_page(d, server, params)
    f = api(server, "/api/fit", {**request_of(params), "concurrency": 4, "context": 16384})
    wait(d, "return document.getElementById('fitline') !== null")
    assert text(d, "fitline") == f["serve_line"]
    assert f["answer"] in text(d, "fitout")
    shot(d, tmp_path, "fit")


def test_explain_tab_reads_a_pasted_log(server, browser, tmp_path):
    d = browser
    open_page(d, server, {"tab": "explain"})
    log = next((DATA / "seeds").glob("001_*.txt")).read_text()
    x = api(server, "/api/explain", {"log": log, "compare": True})
    d.execute_script("document.getElementById('log').value = arguments[0]", log)
    d.find_element("id", "explain_go").click()
    wait(d, "return document.getElementById('comparetable') !== null")
    out = " ".join(text(d, "explainout").split())
    assert " ".join(x["diagnosis"].split()) in out
    rows = d.execute_script("return [...document.querySelectorAll('#comparetable tr')].slice(1).map(r => "
                            "[r.cells[0].innerText, r.cells[1].innerText, r.cells[2].innerText])")
    assert rows == [[r["term"], shown(r["predicted"]) if isinstance(r["predicted"], (int, float)) else
                     str(r["predicted"] if r["predicted"] is not None else "–"),
                     shown(r["logged"]) if isinstance(r["logged"], (int, float)) else
                     str(r["logged"] if r["logged"] is not None else "–")] for r in x["compare"]["rows"]]
    d.execute_script("const t = document.getElementById('log'); const i = t.value.indexOf('Loading model weights');"
                     "t.focus(); t.setSelectionRange(i, i); t.blur();"
                     "t.scrollTop = t.scrollHeight * i / t.value.length - 10;")
    shot(d, tmp_path, "explain-seed001")


# ----- laptop and phone --------------------------------------------------------------------------


@pytest.mark.parametrize("size,name", [(LAPTOP, "laptop"), (PHONE, "phone")])
def test_layout_fits_the_screen(server, browser, tmp_path, size, name):
    d = browser
    open_page(d, server, SEED000, size=size)
    wait(d, "return document.getElementById('bar').data !== undefined")
    for tab in ("plan", "sweep", "knobs", "fit", "explain"):
        d.execute_script(f"document.querySelector('#tabs button[data-tab={tab}]').click()")
        time.sleep(0.2)
        width = d.execute_script("return document.documentElement.scrollWidth")
        assert width <= size[0], f"{tab}: the page is {width} px wide on a {size[0]} px screen"
    d.execute_script("document.querySelector('#tabs button[data-tab=plan]').click()")
    time.sleep(0.3)
    if name == "phone":  # the answer comes first, the form below it; the chart fits the width
        w = d.execute_script("return document.querySelector('#bar .main-svg').getBoundingClientRect().width")
        assert w <= size[0]
        assert d.execute_script("return document.getElementById('verdict').getBoundingClientRect().top < "
                                "document.getElementById('form').getBoundingClientRect().top")
    shot(d, tmp_path, f"plan-{name}", full=(name == "phone"))


def test_the_034_bar_is_the_device_after_the_commit(server, browser):
    """vLLM 0.34's extensible cache: the stack is context, weights, non-torch, graph pool, the kept transient, the
    margin and the committed KV, then what is free: the whole device once, not the reservation on top of it."""
    d = browser
    open_page(d, server, {"model": "Qwen/Qwen3-8B", "vllm_version": "0.34.0", "device": "h100-80gb"})
    p = api(server, "/api/plan", {"model": "Qwen/Qwen3-8B", "vllm_version": "0.34.0", "device": "h100-80gb"})
    names = d.execute_script("return document.getElementById('bar').data.map(t => t.name)")
    assert "weights" in names and not any("reserved bound" in n for n in names)
    total = d.execute_script("return document.getElementById('bar').data.reduce((a, t) => a + t.x[0], 0)")
    assert abs(total - p["device"]["total_gib"]) < 0.02
