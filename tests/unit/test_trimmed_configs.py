"""The trimmed-layer configs for real startups (bench/truth/configs/*-trimmed) stay loadable and plannable, and keep
every layer kind of their source model."""

from pathlib import Path

import pytest

import vramplan
from vramplan.api import load_model

ROOT = Path(__file__).resolve().parents[2] / "bench" / "truth" / "configs"
# the family engineers' trimmed configs carry a NOTE.md naming their source; the run plan's own (<org>--<model>-trimmed,
# bench/truth/plans/trimmed_v034_*.tsv) are checked for loading and planning only
TRIMMED = sorted(p.name for p in ROOT.glob("*-trimmed")
                 if (p / "NOTE.md").exists() and "vramplan/catalog/" in (p / "NOTE.md").read_text())
ALL = sorted(p.name for p in ROOT.glob("*-trimmed"))


def test_there_is_one_per_new_family():
    assert len(TRIMMED) >= 9


@pytest.mark.parametrize("name", TRIMMED)
def test_trimmed_config_plans_and_keeps_every_kind(name):
    import re

    m = load_model(str(ROOT / name))
    source = re.search(r"vramplan/catalog/([^`]+)/config.json", (ROOT / name / "NOTE.md").read_text()).group(1)
    full = load_model(source)
    assert {layer.kind for layer in m.layers} == {layer.kind for layer in full.layers}
    assert {layer.is_moe for layer in m.layers} == {layer.is_moe for layer in full.layers}
    p = vramplan.plan(m, device="h100-80gb", max_model_len=8192, max_num_seqs=64)
    assert p.verdict == "starts", (p.error_kind, p.error_message)


@pytest.mark.parametrize("name", ALL)
def test_every_trimmed_config_loads_and_plans(name):
    p = vramplan.plan(load_model(str(ROOT / name)), device="h100-80gb", max_model_len=8192, max_num_seqs=64)
    assert p.verdict in ("starts", "fails")
