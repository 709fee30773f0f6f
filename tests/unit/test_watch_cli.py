"""The CLI layer of watch: arguments, ``--``, errors, and ``vramplan watch`` end to end on a fake device."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from vramplan.errors import InputError
from vramplan.watch import runner
from vramplan.watch.backends import FakeBackend
from vramplan.watch.cli import add_watch_arguments, main_watch, parse_levels
from vramplan.watch.timeline import load_timeline

GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]
FAKE = str(ROOT / "tests" / "fixtures" / "fake_vllm.py")


def _args(argv):
    p = argparse.ArgumentParser()
    add_watch_arguments(p)
    return p.parse_args(argv)


def test_cli_arguments_and_the_command_after_dashes():
    a = _args(["--out", "d", "--interval", "0.2", "--backend", "npu-smi", "--level", "weights=9.19GiB", "--",
               "vllm", "serve", "m", "--tensor-parallel-size", "2"])
    assert (a.out, a.interval, a.backend, a.pid) == ("d", 0.2, "npu-smi", None)
    assert [x for x in a.cmd if x != "--"] == ["vllm", "serve", "m", "--tensor-parallel-size", "2"]
    assert parse_levels(a.level) == {"weights": round(9.19 * GiB)}
    assert parse_levels(["budget=57.91"]) == {"budget": round(57.91 * GiB)}  # a bare number is GiB
    a = _args(["--pid", "123", "--log", "x.log"])
    assert (a.pid, a.log, a.cmd) == (123, "x.log", [])


@pytest.mark.parametrize(
    "argv, match",
    [
        ([], "nothing to watch"),
        (["--pid", "1", "--", "vllm"], "either --pid or a command"),
        (["--log", "x", "--", "vllm"], "--log goes with --pid"),
        (["--level", "weights", "--", "vllm"], "LABEL=SIZE"),
    ],
)
def test_cli_bad_input_is_an_input_error(argv, match):
    with pytest.raises(InputError, match=match):
        main_watch(_args(argv))


def test_vramplan_watch_end_to_end_passes_the_exit_code(tmp_path, monkeypatch, capsys):
    cli = pytest.importorskip("vramplan.cli")
    state = tmp_path / "state"
    monkeypatch.setattr(runner, "select_backend", lambda name: FakeBackend.from_state_file(state))
    out = tmp_path / "w"
    code = cli.main(["watch", "--out", str(out), "--interval", "0.02", "--level", "weights=15.27GiB", "--",
                     sys.executable, FAKE, "--state", str(state), "--step", "0.05", "--exit", "3"])
    assert code == 3
    captured = capsys.readouterr()
    assert "Measured device memory per phase" in captured.out
    assert "command exited with 3; watch exits with 3" in captured.err
    recs = load_timeline(out / "timeline.jsonl")
    assert recs[0]["argv"][1:] == [FAKE, "--state", str(state), "--step", "0.05", "--exit", "3"]
    assert recs[0]["levels"] == {"weights": round(15.27 * GiB)}
    assert (out / "timeline.png").exists() and (out / "output.log").exists()


def test_vramplan_watch_without_a_device_is_exit_2_with_the_message(tmp_path, monkeypatch, capsys):
    cli = pytest.importorskip("vramplan.cli")
    from vramplan.watch import backends

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(backends.shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["watch", "--", "vllm", "serve", "m"]) == 2
    err = capsys.readouterr().err
    assert "no NVIDIA driver (NVML) or Ascend npu-smi found on this machine" in err
    assert list(tmp_path.iterdir()) == []  # no output folder left behind
