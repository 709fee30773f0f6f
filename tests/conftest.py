"""Shared test settings: offline, no colour, a fixed width, a private cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch, tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("VRAMPLAN_CACHE", str(home / "vramplan"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    for var in ("VLLM_USE_V2_MODEL_RUNNER", "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "VLLM_PP_LAYER_PARTITION",
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN"):
        monkeypatch.delenv(var, raising=False)
    yield


def run_cli(*argv: str, env: dict | None = None):
    """Run the CLI in a subprocess; returns (exit code, stdout, stderr)."""
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "vramplan", *argv], capture_output=True, text=True, env=e,
                          cwd=str(ROOT), timeout=120)
    return proc.returncode, proc.stdout, proc.stderr
