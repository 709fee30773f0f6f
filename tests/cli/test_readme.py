"""The README's two first commands stay true."""

from tests.conftest import ROOT


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_install_and_test_commands():
    install, test = _readme_commands()[:2]
    assert "pip install" in install and "vramplan plan" in install
    assert "pip install" in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    test = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    # the part after creating and activating the venv is the same in both
    assert test.split("&& ", 2)[2] in ci
