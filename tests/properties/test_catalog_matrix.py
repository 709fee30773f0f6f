"""The catalog x device x flags matrix: every combination gives a plan or one clean input error.

"Will it start?" must never be answered with a crash. Each case plans a catalog model on a catalog
device with a set of flags, through the Python API (``vramplan.plan``), then renders the plan every
way a user sees it (the rich table, the JSON object, the fix search); a sample goes through the CLI
in-process with ``--json``. A case passes when it gives a plan, or raises one :class:`InputError`
(the CLI's exit 2) whose message is a single line.

The full product (models x devices x flags x releases) is a few thousand plans, about a minute on
a small machine, so the suite runs a deterministic slice that plans every model and every device
at least once (and every flag set at least once), plus a derandomized hypothesis sample of the
rest (the same cases on every run, so CI is deterministic).
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.cli import main as cli_main
from vramplan.errors import InputError
from vramplan.engines.vllm.fixes import attach_fix
from vramplan.inputs.devices import DEVICES
from vramplan.inputs.model_source import catalog_ids
from vramplan.render.json import plan_to_dict
from vramplan.render.table import render_plan

MODELS = catalog_ids()
DEVICE_NAMES = tuple(DEVICES)

# flag sets, as a user writes them (vLLM's names); the API and the CLI both take them
FLAG_SETS: tuple[tuple[str, ...], ...] = (
    (),                                                   # every default (util left out)
    ("-tp", "2"),
    ("-tp", "4"),
    ("-tp", "8"),
    ("--gpu-memory-utilization", "0.9"),
    ("--kv-cache-dtype", "fp8"),
    ("--max-model-len", "1024"),
    ("--max-model-len", "auto"),
    ("-tp", "2", "--kv-cache-dtype", "fp8", "--max-model-len", "auto", "--gpu-memory-utilization", "0.95"),
    ("--max-model-len", "4096", "--enforce-eager"),
    ("-tp", "4", "--max-model-len", "32k", "--max-num-seqs", "64"),
    ("--hf-overrides", '{"max_position_embeddings": 8192}'),
    ("--hf-overrides.num_hidden_layers", "4", "--max-model-len", "auto"),
    ("-pp", "2", "-tp", "2"),
    ("-pp", "64"),                                        # more stages than most models have layers
)
# None: the platform's default rule set (vLLM on CUDA/ROCm, vllm-ascend on Ascend); then older releases
VERSIONS: tuple[str | None, ...] = (None, "0.26.0", "0.19.0", "0.10.0", "0.9.1", "0.6.3")
OTHERS_GIB = (0.0, 3.0)


def _check(model: str, device: str, flags: tuple[str, ...], version: str | None = None,
           others_gib: float = 0.0) -> str:
    """Plan one case and render it every way; returns ``plan`` or ``input error``. Any other
    exception fails the test (the case is in the message)."""
    case = f"{model} --device {device} {' '.join(flags)} (vllm {version or 'default'}, others {others_gib} GiB)"
    try:
        plan = vramplan.plan(model, device=device, flags=list(flags), vllm_version=version,
                             used_by_others_gib=others_gib)
    except InputError as exc:
        line = exc.one_line()
        assert line and "\n" not in line, f"{case}: an input error must be one line, got {line!r}"
        return "input error"
    except Exception as exc:  # pragma: no cover - the failure this module exists to catch
        pytest.fail(f"{case}: internal error {type(exc).__name__}: {exc}")
    try:
        plan = attach_fix(plan)
        obj = plan_to_dict(plan)
        json.dumps(obj)
        from rich.console import Console

        out = io.StringIO()
        render_plan(plan, Console(file=out, width=100, force_terminal=False), verbose=True)
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"{case}: rendering failed with {type(exc).__name__}: {exc}")
    assert plan.verdict in ("starts", "fails"), case
    assert obj["verdict"] == plan.verdict, case
    if plan.verdict == "fails":
        assert plan.error_kind and plan.error_message, f"{case}: a failing plan names its error"
    assert out.getvalue().strip(), case
    return "plan"


def _deterministic_slice() -> list[tuple[str, str, tuple[str, ...]]]:
    """Every model on two devices and every device with several models, flag sets rotating."""
    cases = []
    nd, nf = len(DEVICE_NAMES), len(FLAG_SETS)
    for i, model in enumerate(MODELS):
        cases.append((model, DEVICE_NAMES[i % nd], FLAG_SETS[i % nf]))
        cases.append((model, DEVICE_NAMES[(i * 7 + 3) % nd], FLAG_SETS[(i * 5 + 1) % nf]))
    for j, device in enumerate(DEVICE_NAMES):
        for k in range(3):
            cases.append((MODELS[(j * 11 + k * 17) % len(MODELS)], device, FLAG_SETS[(j + 4 * k) % nf]))
    return cases


SLICE = _deterministic_slice()


def test_slice_covers_every_model_device_and_flag_set():
    assert {m for m, _, _ in SLICE} == set(MODELS)
    assert {d for _, d, _ in SLICE} == set(DEVICE_NAMES)
    assert {f for _, _, f in SLICE} == set(FLAG_SETS)


@pytest.mark.parametrize("model,device,flags", SLICE, ids=[f"{m}@{d}:{' '.join(f) or 'defaults'}" for m, d, f in SLICE])
def test_slice_plans_or_refuses_cleanly(model, device, flags):
    _check(model, device, flags)


@settings(derandomize=True, max_examples=1000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), device=st.sampled_from(DEVICE_NAMES), flags=st.sampled_from(FLAG_SETS),
       version=st.sampled_from(VERSIONS), others=st.sampled_from(OTHERS_GIB))
def test_matrix_sample_plans_or_refuses_cleanly(model, device, flags, version, others):
    _check(model, device, flags, version, others)


def _cli_json(argv: list[str]) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    assert code in (0, 2), f"{argv}: exit {code}, stderr {err.getvalue()!r}"
    text = out.getvalue()
    obj = json.loads(text)  # exactly one JSON document (json.loads refuses trailing data)
    assert isinstance(obj, dict), argv
    if code == 2:
        assert "error" in obj, argv
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        assert len(lines) == 1, f"{argv}: one line on stderr, got {lines}"
    else:
        assert obj["verdict"] in ("starts", "fails"), argv
    return code, obj


_CLI_SAMPLE = [(MODELS[(i * 13) % len(MODELS)], DEVICE_NAMES[(i * 5) % len(DEVICE_NAMES)], FLAG_SETS[i % len(FLAG_SETS)])
               for i in range(24)]


@pytest.mark.parametrize("model,device,flags", _CLI_SAMPLE,
                         ids=[f"{m}@{d}:{' '.join(f) or 'defaults'}" for m, d, f in _CLI_SAMPLE])
def test_cli_json_sample(model, device, flags):
    _cli_json(["plan", model, "--device", device, *flags, "--json"])


def test_cli_json_matches_the_api():
    """The CLI's --json and the API agree on the verdict of the same case."""
    code, obj = _cli_json(["plan", "meta-llama/Llama-3.1-70B-Instruct", "--device", "h100-80gb", "-tp", "2", "--json"])
    plan = vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", device="h100-80gb", tensor_parallel_size=2)
    assert code == 0 and obj["verdict"] == plan.verdict and obj["error_kind"] == plan.error_kind


@pytest.mark.parametrize("model,device,flags", [
    ("Qwen/Qwen3-8B", "h100-80gb", ()),                                        # starts
    ("meta-llama/Llama-3.1-70B-Instruct", "h100-80gb", ("-tp", "2")),         # fails at KV sizing
    ("Qwen/Qwen3-14B", "l4", ()),                                              # fails loading the weights
    ("Qwen/Qwen3-VL-8B-Instruct", "ascend-910b3", ("--max-model-len", "auto")),
])
def test_plot_sample(model, device, flags, tmp_path):
    pytest.importorskip("matplotlib")
    from vramplan.render.plot import plot_plan

    plan = vramplan.plan(model, device=device, flags=list(flags))
    out = tmp_path / "p.png"
    plot_plan(plan, str(out))
    assert out.stat().st_size > 1000


# malformed or extreme values a user types: each gives a plan or one line and exit 2, with a JSON object
ODD_FLAGS = [
    ["--max-model-len", "abc"], ["-tp", "0"], ["-pp", "100"], ["-dp", "3"], ["--device-memory-gib", "-5"],
    ["--device-memory-gib", "abc"], ["--device-memory-gib", "0.1"], ["--device-memory-gib", "1e30"],
    ["--vllm-version", "0.1"], ["--vllm-version", "abc"], ["--vllm-version", "9.9.9"], ["--vllm-version", ""],
    ["--plot", "/nonexistent/x.png"], ["--plot", "x.txt"], ["--image", "10x"], ["--video", "abc"],
    ["--used-by-others-gib", "abc"], ["--used-by-others-gib", "1e30"], ["--used-by-others-gib=-1"],
    ["--gpu-memory-utilization", "2"], ["--gpu-memory-utilization", "0"], ["--hf-overrides"],
    ["--hf-overrides", "[1]"], ["--hf-overrides", '{"num_hidden_layers": 0}'], ["--device", "nope"], ["--device", ""],
    ["--device", "a100"], ["--max-model-len", "0"], ["--max-model-len", "99999999999"], ["--kv-cache-dtype", "int3"],
    ["--dtype", "int3"], ["--quantization", "awq"], ["--block-size", "7"], ["--max-num-seqs", "0"],
    ["--cpu-offload-gb", "-1"], ["--cpu-offload-gb", "1000"], ["--limit-mm-per-prompt", "{bad"],
    ["-cc.cudagraph_mode=BOGUS"], ["--image", "100000x100000"], ["--kv-cache-memory-bytes", "1"],
    ["--num-gpu-blocks-override", "1"], ["--max-num-batched-tokens", "1"],
]


@pytest.mark.parametrize("model", ["Qwen/Qwen3-8B", "Qwen/Qwen3-VL-8B-Instruct"])
@pytest.mark.parametrize("flags", ODD_FLAGS, ids=[" ".join(f) for f in ODD_FLAGS])
def test_odd_values_through_the_cli(model, flags):
    _cli_json(["plan", model, *flags, "--json"])
