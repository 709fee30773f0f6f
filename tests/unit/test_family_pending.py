"""Architectures read in vLLM 0.34 but not modelled yet: refused with one specific line, never a crash.

Kimi-K3 left this list with issue 17 (model/families/kimi_k3.py); the list is empty until the next one."""

import pytest

from vramplan.errors import UnsupportedError
from vramplan.model.families import PENDING
from vramplan.model.from_config import describe_config


@pytest.mark.parametrize("arch", sorted(PENDING))
def test_pending_architectures_refuse_with_one_line(arch):
    cfg = {"architectures": [arch], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "vocab_size": 128}
    with pytest.raises(UnsupportedError) as exc:
        describe_config(cfg, name="x")
    msg = str(exc.value)
    assert "\n" not in msg and "not modelled yet" in msg


def test_kimi_k3_is_no_longer_pending():
    assert "KimiK3ForConditionalGeneration" not in PENDING
