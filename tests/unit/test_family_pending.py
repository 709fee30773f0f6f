"""Architectures read in vLLM 0.34 but not modelled yet: refused with one specific line, never a crash."""

import pytest

from vramplan.errors import UnsupportedError
from vramplan.model.from_config import describe_config


@pytest.mark.parametrize("arch,words", [
    ("KimiK3ForConditionalGeneration", "KDA"),
])
def test_pending_architectures_refuse_with_one_line(arch, words):
    cfg = {"architectures": [arch], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "vocab_size": 128}
    with pytest.raises(UnsupportedError) as exc:
        describe_config(cfg, name="x")
    msg = str(exc.value)
    assert words in msg and "\n" not in msg and "not modelled yet" in msg
