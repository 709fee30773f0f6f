"""``--hf-overrides``: change the model's config the way vLLM does, then describe the model again.

vLLM v0.19.0 to v0.34.0 ``vllm/config/model.py:ModelConfig.__post_init__`` splits the overrides:

* values that are not dicts go to ``get_config(hf_overrides_kw=...)``, which calls
  ``config.update(hf_overrides_kw)`` (``vllm/transformers_utils/config.py:get_config``): a
  ``setattr`` on the top-level config for each key. A flat ``num_hidden_layers`` on a
  vision-language wrapper therefore lands on the wrapper, not on its ``text_config``;
* dict values are applied after loading by ``ModelConfig._apply_dict_overrides``: where the
  config's attribute is a nested config (``text_config``, ``vision_config``, ...) it is updated
  key by key, recursively (``_update_nested``); any other dict-valued key (``rope_scaling``,
  ``quantization_config``) is replaced whole.

Then ``patch_rope_parameters`` standardises RoPE, and ``hf_text_config`` (``get_hf_text_config``)
and ``_get_and_verify_max_len`` derive max_model_len from the overridden config. With transformers 5
setting ``rope_scaling`` sets ``rope_parameters`` (the property's setter), so both keys take the value
here (vLLM 0.26+ requires transformers 5; 0.19 requires transformers < 5, see :func:`merge_overrides`;
the releases between were not read, and take the older behaviour). vLLM also accepts a callable; the CLI and JSON cannot carry one.

Kept: the vision tower's description (overrides of ``vision_config`` are not re-read: said in a note)
and the checkpoint headers.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from ..errors import FlagError, InputError
from .description import ModelDescription

__all__ = ["apply_hf_overrides", "normalise_overrides", "merge_overrides"]

# keys holding a nested PretrainedConfig (updated key by key); other dict values are plain attributes (replaced)
_NESTED_NOT = {"quantization_config", "rope_scaling", "rope_parameters"}


def normalise_overrides(value: Any) -> dict:
    """A dict, or a JSON object written as text (as the CLI and ``hf_overrides='{...}'`` give it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FlagError(f"hf_overrides is not valid JSON ({exc.msg})",
                            hint="""give a dict or a JSON object, e.g. '{"max_position_embeddings": 131072}'""") from None
    if not isinstance(value, dict):
        raise FlagError(f"hf_overrides must be a dict (a JSON object), got {type(value).__name__}",
                        hint="""e.g. {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}""")
    return value


def _is_sub_config(key: str, current: Any) -> bool:
    return isinstance(current, dict) and key not in _NESTED_NOT and (
        key.endswith("_config") or "model_type" in current)


def _update_nested(target: dict, updates: dict) -> None:
    """vLLM ``ModelConfig._update_nested``: recurse where both sides are dicts, else set."""
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _update_nested(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def merge_overrides(config: dict, overrides: dict, *, transformers5: bool = True) -> dict:
    """A copy of ``config`` (a config as a dict) with ``overrides`` applied as vLLM applies them.

    ``transformers5``: whether the release runs on transformers 5, whose ``rope_scaling`` setter writes
    ``rope_parameters``. On transformers 4 (vLLM <= 0.19 requires ``transformers<5``) a dict override of
    ``rope_scaling`` is set after ``patch_rope_parameters`` already copied the file's RoPE into
    ``rope_parameters``, which is what ``_get_and_verify_max_len`` reads: the override then changes nothing
    there (override ``rope_parameters`` instead)."""
    out = copy.deepcopy(config)
    for key, value in overrides.items():
        if not isinstance(value, dict):
            out[key] = copy.deepcopy(value)  # config.update(hf_overrides_kw): setattr on the top level
        elif _is_sub_config(key, out.get(key)):
            _update_nested(out[key], value)  # _apply_dict_overrides: a nested config, updated recursively
        else:
            out[key] = copy.deepcopy(value)  # a dict-valued attribute: replaced whole
    _rope_setter(config, out, overrides, transformers5)
    for key, value in overrides.items():
        if isinstance(value, dict) and _is_sub_config(key, config.get(key)):
            _rope_setter(config[key], out[key], value, transformers5)
    return out


def _rope_setter(before: dict, after: dict, overrides: dict, transformers5: bool) -> None:
    """What a ``rope_scaling`` override does to ``rope_parameters`` (the key vLLM reads)."""
    rope = overrides.get("rope_scaling")
    if not isinstance(rope, dict) or "rope_parameters" in overrides:
        return
    if transformers5:
        # transformers 5 PreTrainedConfig.rope_scaling setter: rope_parameters takes the value
        after["rope_parameters"] = copy.deepcopy(rope)
    else:
        # vLLM v0.19.0 vllm/transformers_utils/config.py:patch_rope_parameters ran on the file's values first
        patched = before.get("rope_parameters") or before.get("rope_scaling")
        if patched is None and any(before.get(k) is not None for k in ("rope_theta", "rotary_emb_base")):
            patched = {"rope_type": "default"}
        after["rope_parameters"] = copy.deepcopy(patched) if patched is not None else {}


_CACHE: dict[tuple[int, str], tuple[ModelDescription, ModelDescription]] = {}
_APPLIED: dict[int, tuple[ModelDescription, str]] = {}


def apply_hf_overrides(model: ModelDescription, overrides: Any, *, transformers5: bool = True) -> ModelDescription:
    """The model described again from its config with the overrides applied (memoised per model and overrides)."""
    overrides = normalise_overrides(overrides)
    if not overrides:
        return model
    key = (id(model), json.dumps(overrides, sort_keys=True, default=str) + f"|t5={transformers5}")
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    done = _APPLIED.get(id(model))
    if done is not None and done[0] is model and done[1] == key[1]:
        return model  # already the overridden description (the fix search plans plan.model again)
    from .from_config import describe_config

    resolved = model.hf_config or model.raw_config
    raw = model.raw_config or resolved
    try:
        new = describe_config(merge_overrides(raw, overrides, transformers5=transformers5), name=model.name,
                              resolved=merge_overrides(resolved, overrides, transformers5=transformers5),
                              preprocessor=model.preprocessor_config,
                              source=model.source)
    except InputError as exc:
        raise FlagError(f"with --hf-overrides applied: {exc.message}",
                        hint="check the keys and values given to --hf-overrides") from None
    shown = json.dumps(overrides, sort_keys=True)
    notes = model.notes + (f"--hf-overrides applied to the config as vLLM does: {shown if len(shown) < 200 else shown[:197] + '...'}",)
    if model.vision is not None and any("vision" in k for k in overrides):
        notes += ("the vision tower is described from the config without the overrides (not re-read)",)
    new = replace(new, vision=model.vision, checkpoint_bytes=model.checkpoint_bytes,
                  checkpoint_source=model.checkpoint_source, notes=notes)
    if len(_CACHE) > 256:
        _CACHE.clear()
        _APPLIED.clear()
    _CACHE[key] = (model, new)
    _APPLIED[id(new)] = (new, key[1])
    return new
