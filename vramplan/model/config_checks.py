"""Checks on a config's values before any arithmetic: a wrong type or an impossible size is one ConfigError
naming the key, never a ValueError or ZeroDivisionError from deep inside a family builder.

vLLM reads config.json through transformers (``AutoConfig``, vLLM v0.33.0
``vllm/transformers_utils/config.py:get_config``), which stores what the file says without checking
types; the model's modules then fail building tensors of a size like ``"twenty-two"`` or ``0``. So a
value vLLM cannot build a model from is refused here with the key and the value.

Keys left out are filled by transformers' config class defaults, and vLLM uses those defaults too
(it never sees config.json except through that class): vramplan does the same and says so with a note
(:func:`library_default_notes`), since a default that does not match the checkpoint makes vLLM's
weight loading fail on a shape mismatch.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from ..errors import ConfigError

__all__ = ["check_config_values", "check_top_level", "library_default_notes", "POSITIVE_INT_KEYS"]

# sizes and counts every decoder builds tensors from: a positive integer when present (null = "not set").
# Family-specific keys are left to the family builders (whose errors become a ConfigError too): other
# architectures give them other types (MiniMax's moe_layer_freq is a list, Qwen3-Coder's
# shared_expert_intermediate_size is 0), so a shared list of them would refuse valid configs.
POSITIVE_INT_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
    "intermediate_size", "max_position_embeddings",
)
NON_NEGATIVE_INT_KEYS: tuple[str, ...] = ()
# real numbers
NUMBER_KEYS = ("partial_rotary_factor",)
# keys a model cannot be built without (vLLM's modules read them unconditionally)
# sanity bounds far beyond any released model (the largest have ~128 layers, ~262k vocabularies, 16k+ hidden):
# a config past them is a typo, and building its layer list would exhaust memory
_LARGEST = {"num_hidden_layers": 100_000, "hidden_size": 10_000_000, "vocab_size": 100_000_000,
            "num_attention_heads": 1_000_000, "num_key_value_heads": 1_000_000, "head_dim": 1_000_000,
            "intermediate_size": 100_000_000, "max_position_embeddings": 10**12}
REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
_DEFAULTED_KEYS = ("hidden_size", "num_hidden_layers")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bad(where: str, key: str, value: Any, want: str) -> ConfigError:
    try:
        shown = json.dumps(value)  # as config.json writes it: null, "twenty-two", [3072]
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return ConfigError(f"{where}: {key!r} is {shown}, not {want}",
                       hint="fix config.json (compare it with the model's Hub config) or pass --hf-overrides")


_SUB_CONFIGS = ("text_config", "llm_config", "language_config", "vision_config", "audio_config", "quantization_config",
                "rope_scaling", "rope_parameters")


def check_top_level(config: Mapping, where: str) -> None:
    """Sub-configs are objects; ``architectures`` is a list of names."""
    for key in _SUB_CONFIGS:
        value = config.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise _bad(where, key, value, "an object")
    archs = config.get("architectures")
    if archs is not None and (not isinstance(archs, list) or not all(isinstance(a, str) for a in archs)):
        raise _bad(where, "architectures", archs, "a list of class names")


def check_config_values(text: Mapping, where: str) -> None:
    """Refuse the first value of a known key that no model can be built from (one ConfigError naming the key)."""
    if not isinstance(text, Mapping):
        raise ConfigError(f"{where}: the text config is a {type(text).__name__}, not an object",
                          hint="fix config.json (text_config must be a JSON object)")
    check_top_level(text, where)
    for key in REQUIRED_KEYS:
        if key in text and text[key] is None:
            raise _bad(where, key, None, "a positive integer")
    for key in POSITIVE_INT_KEYS:
        value = text.get(key)
        if value is None:
            continue
        if not _is_int(value) or value <= 0:
            raise _bad(where, key, value, "a positive integer")
    for key in NON_NEGATIVE_INT_KEYS:
        value = text.get(key)
        if value is not None and (not _is_int(value) or value < 0):
            raise _bad(where, key, value, "an integer >= 0")
    for key in NUMBER_KEYS:
        value = text.get(key)
        if value is not None and (not _is_number(value) or value <= 0):
            raise _bad(where, key, value, "a positive number")
    for key, most in _LARGEST.items():
        value = text.get(key)
        if value is not None and value > most:
            raise _bad(where, key, value, f"a plausible size (at most {most:,})")
    heads, kv = text.get("num_attention_heads"), text.get("num_key_value_heads")
    if _is_int(heads) and _is_int(kv) and heads % kv:
        raise ConfigError(f"{where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv})",
                          hint="grouped-query attention needs whole groups; fix config.json")
    for key in ("rope_scaling", "rope_parameters"):
        rope = text.get(key)
        if rope is None:
            continue
        if not isinstance(rope, Mapping):
            raise _bad(where, key, rope, "an object")
        sets = [v for v in rope.values() if isinstance(v, Mapping)] or [rope]
        for rp in sets:
            for sub in ("factor", "original_max_position_embeddings"):
                v = rp.get(sub)
                if v is not None and (not _is_number(v) or v <= 0):
                    raise _bad(where, f"{key}.{sub}", v, "a positive number")
    for key in ("layer_types",):
        value = text.get(key)
        if value is not None and not isinstance(value, list):
            raise _bad(where, key, value, "a list")


def library_default_notes(raw_text: Mapping, resolved_text: Mapping, *, resolved_by: str, model_type: str) -> tuple[str, ...]:
    """A note for each core size config.json leaves to the library's default (vLLM takes the same default)."""
    if not resolved_by.startswith("transformers"):
        return ()
    missing = [k for k in _DEFAULTED_KEYS if raw_text.get(k) is None and resolved_text.get(k) is not None]
    if not missing:
        return ()
    values = ", ".join(f"{k}={resolved_text[k]}" for k in missing)
    return (f"config.json leaves {', '.join(missing)} out: {resolved_by}'s {model_type or 'config'} defaults "
            f"apply ({values}), as they do in vLLM, which reads the config through transformers; if the checkpoint "
            f"has other sizes vLLM fails loading it",)
