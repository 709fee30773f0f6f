"""Find a model's config files: a local folder, the bundled catalog, or the Hugging Face Hub.

This is I/O at the edge. It returns plain dicts; :mod:`vramplan.model.from_config`
turns them into a :class:`~vramplan.model.description.ModelDescription`.

Config defaults are filled the way vLLM reads configs, through ``transformers``
config classes (``AutoConfig``), so that fields a checkpoint leaves to the library
(Gemma 3's ``head_dim`` and sliding-window pattern, LLaVA's vision tower) are right.
Importing transformers costs about a second, so its result is cached on disk per
config (``~/.cache/vramplan/resolved``) and pre-computed for the bundled catalog
(``catalog/<org>/<name>/resolved.json``, written by ``tools/resolve_catalog.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

from ..errors import ConfigError, ConfigNotFound

__all__ = ["ModelFiles", "load_model_files", "catalog_ids", "catalog_root", "resolve_with_transformers"]

_CATALOG = Path(__file__).resolve().parent.parent / "catalog"
CONFIG_FILES = ("config.json", "preprocessor_config.json", "video_preprocessor_config.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFiles:
    """The config files of one model, read and (where possible) resolved."""

    name: str
    """The id the user gave (a catalog id, a path, or a Hub repo id)."""
    source: str
    """``catalog``, ``local`` or ``hub``."""
    location: str
    """The folder or ``repo@revision`` the files came from."""
    config: dict
    """config.json as written."""
    resolved: dict
    """config.json with transformers' defaults filled in (``PretrainedConfig.to_dict()``)."""
    resolved_by: str
    """``transformers X.Y`` or ``as written`` when transformers could not read it."""
    preprocessor: dict | None = None
    video_preprocessor: dict | None = None
    safetensors_params: dict[str, int] | None = None
    """Parameter counts per dtype from the checkpoint's safetensors headers (Hub or local folder)."""

    @property
    def checkpoint_bytes(self) -> int | None:
        """Bytes of the checkpoint's tensors, from the headers' dtypes and element counts."""
        if not self.safetensors_params:
            return None
        return int(sum(n * _SAFETENSORS_DTYPE_BYTES.get(dt, 2) for dt, n in self.safetensors_params.items()))
    notes: tuple[str, ...] = field(default_factory=tuple)


def catalog_root() -> Path:
    return _CATALOG


@lru_cache(maxsize=1)
def catalog_ids() -> tuple[str, ...]:
    """Every ``org/name`` in the bundled catalog."""
    ids = []
    for cfg in sorted(_CATALOG.glob("*/*/config.json")):
        ids.append(f"{cfg.parent.parent.name}/{cfg.parent.name}")
    return tuple(ids)


def _catalog_lookup(model: str) -> Path | None:
    key = model.strip().strip("/").lower()
    for cid in catalog_ids():
        if cid.lower() == key or cid.split("/", 1)[1].lower() == key:
            return _CATALOG / cid
    return None


def _read_json(path: Path, what: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", hint="check the path and its permissions") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint=f"fix the {what} or download it again",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object", hint=f"a {what} is a JSON object")
    return data


def _read_optional(folder: Path, name: str) -> dict | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        return _read_json(path, name)
    except ConfigError:
        return None


def load_model_files(model: str, *, revision: str | None = None) -> ModelFiles:
    """Find and read the config files of ``model``.

    Looks, in order, for: a local folder holding ``config.json``; a bundled catalog id
    (``Qwen/Qwen3-8B`` or just ``Qwen3-8B``); a Hugging Face Hub repo (cached by
    ``huggingface_hub``; honours ``HF_HUB_OFFLINE`` and ``HF_HOME``).
    """
    if not model or not model.strip():
        raise ConfigNotFound("no model given", hint="name a catalog id (vramplan models), a local folder or a Hub id")
    path = Path(model).expanduser()
    if path.is_dir():
        return _load_folder(path, name=model, source="local")
    if path.is_file() and path.name.endswith(".json"):
        return _load_folder(path.parent, name=model, source="local", config_name=path.name)
    if (path.exists() or model.startswith(("/", "./", "../", "~"))) and not path.is_dir():
        raise ConfigNotFound(f"{model} is not a folder holding config.json", hint="pass the model folder")
    found = _catalog_lookup(model)
    if found is not None and revision is None:
        return _load_folder(found, name=model, source="catalog")
    return _load_hub(model, revision=revision)


def _load_folder(folder: Path, *, name: str, source: str, config_name: str = "config.json") -> ModelFiles:
    cfg_path = folder / config_name
    if not cfg_path.is_file():
        raise ConfigNotFound(
            f"{folder} holds no config.json",
            hint="pass the folder of a Hugging Face model (the one with config.json)",
        )
    config = _read_json(cfg_path, "config.json")
    _check_config(config, cfg_path)
    resolved, resolved_by = _resolved_for(folder, config, source)
    config, resolved = _with_hf_quant_config(folder, config, resolved)
    return ModelFiles(
        name=name,
        source=source,
        location=str(folder),
        config=config,
        resolved=resolved,
        resolved_by=resolved_by,
        preprocessor=_read_optional(folder, "preprocessor_config.json"),
        video_preprocessor=_read_optional(folder, "video_preprocessor_config.json"),
        safetensors_params=_local_safetensors_params(folder) if source == "local" else None,
    )


# bytes per element of the safetensors dtype names
_SAFETENSORS_DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                            "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1, "F4": 0.5,
                            "F6_E2M3": 0.75, "F6_E3M2": 0.75}


def _local_safetensors_params(folder: Path) -> dict[str, int] | None:
    """Parameter counts per dtype from the headers of the folder's safetensors checkpoint (no tensor is read).

    ``huggingface_hub.get_local_safetensors_metadata`` reads ``model.safetensors`` or the shards listed in
    ``model.safetensors.index.json``. No checkpoint, a damaged one, or a huggingface_hub too old to have the
    function gives None: the headers only cross-check the config.
    """
    if not any(folder.glob("*.safetensors")):
        return None
    try:
        from huggingface_hub import get_local_safetensors_metadata

        return {str(k): int(v) for k, v in get_local_safetensors_metadata(folder).parameter_count.items()}
    except Exception:
        return None


def _check_config(config: dict, where: object) -> None:
    if "model_type" not in config and "architectures" not in config:
        raise ConfigError(
            f"{where} has neither 'model_type' nor 'architectures'",
            hint="it does not look like a Hugging Face model config",
        )


def _resolved_for(folder: Path, config: dict, source: str) -> tuple[dict, str]:
    """The transformers-resolved config: pre-computed, cached, or computed now."""
    pre = folder / "resolved.json"
    if source == "catalog" and pre.is_file():
        data = json.loads(pre.read_text(encoding="utf-8"))
        return data["config"], data.get("resolved_by", "transformers")
    # keyed by the config and the installed transformers release (read from its metadata, not imported), so
    # "as written" outcomes (model types transformers does not know) are cached too until transformers changes
    digest = hashlib.sha256((json.dumps(config, sort_keys=True) + _transformers_release()).encode()).hexdigest()[:24]
    cache = _cache_dir() / f"{digest}.json"
    if cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            return data["config"], data["resolved_by"]
        except (OSError, ValueError, KeyError):
            pass
    resolved, by = resolve_with_transformers(folder, config)
    _write_atomic(cache, json.dumps({"resolved_by": by, "config": resolved}))
    return resolved, by


def _transformers_release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformers")
    except PackageNotFoundError:
        return "none"


def resolve_with_transformers(folder: Path, config: dict) -> tuple[dict, str]:
    """Fill a config's defaults through ``transformers.AutoConfig`` (imported here, lazily).

    Falls back to the config as written when transformers is missing or does not know
    the model type (remote code); the description then uses vramplan's own defaults.
    """
    import logging
    import warnings

    try:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import transformers
        from transformers import AutoConfig
    except Exception:  # pragma: no cover - transformers is a dependency
        return config, "as written"
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        resolved = hf.to_dict()
    except Exception:
        return config, "as written"
    return _jsonable(resolved), f"transformers {transformers.__version__}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _cache_dir() -> Path:
    base = os.environ.get("VRAMPLAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vramplan"
    )
    return Path(base) / "resolved"


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written is not an error


def _load_hub(repo_id: str, *, revision: str | None) -> ModelFiles:
    if repo_id.count("/") != 1 or any(c.isspace() for c in repo_id):
        raise ConfigNotFound(
            f"unknown model {repo_id!r}: not a folder, not in the bundled catalog, and not a Hub id (org/name)",
            hint="run `vramplan models` for the catalog, or pass a local folder holding config.json",
        )
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except Exception:  # pragma: no cover - huggingface_hub is a dependency
        raise ConfigNotFound(f"{repo_id} is not in the bundled catalog and huggingface_hub is not installed") from None

    online = _hub_reachable()

    def not_cached() -> NoReturn:
        raise ConfigNotFound(
            f"cannot fetch {repo_id}: no network and no cached copy",
            hint="use a bundled catalog id (`vramplan models` lists them) or a local folder holding config.json",
        ) from None

    def fetch(name: str, required: bool) -> Path | None:
        try:
            # the cache first (works offline), then the Hub if it answers at all
            return Path(hf_hub_download(repo_id, name, revision=revision, local_files_only=True))
        except Exception:
            if not online:
                return None if not required else not_cached()
        try:
            return Path(hf_hub_download(repo_id, name, revision=revision))
        except LocalEntryNotFoundError:  # offline (HF_HUB_OFFLINE or no network) and not cached
            return None if not required else not_cached()
        except EntryNotFoundError:
            if required:
                raise ConfigNotFound(f"{repo_id} has no {name} on the Hub", hint="is it a model repository?") from None
            return None
        except GatedRepoError:
            raise ConfigNotFound(
                f"{repo_id} is gated on the Hub",
                hint="accept its licence on huggingface.co and log in (`hf auth login`), or pass a local folder",
            ) from None
        except RepositoryNotFoundError:
            raise ConfigNotFound(
                f"{repo_id} was not found on the Hub (or is private)",
                hint="check the id; run `vramplan models` for the bundled catalog",
            ) from None
        except Exception as exc:  # network errors of every kind
            if not required:
                return None
            raise ConfigNotFound(
                f"cannot fetch {repo_id} from the Hub ({type(exc).__name__})",
                hint="use a bundled catalog id (`vramplan models` lists them) or a local folder holding config.json",
            ) from None

    cfg_path = fetch("config.json", True)
    assert cfg_path is not None
    folder = cfg_path.parent
    config = _read_json(cfg_path, "config.json")
    _check_config(config, f"{repo_id}/config.json")
    for name in ("preprocessor_config.json", "video_preprocessor_config.json", "hf_quant_config.json"):
        fetch(name, False)
    resolved, by = _resolved_for(folder, config, "hub")
    config, resolved = _with_hf_quant_config(folder, config, resolved)
    params = _safetensors_params(repo_id, revision)
    return ModelFiles(
        name=repo_id,
        source="hub",
        location=f"{repo_id}@{revision or 'main'}",
        config=config,
        resolved=resolved,
        resolved_by=by,
        preprocessor=_read_optional(folder, "preprocessor_config.json"),
        video_preprocessor=_read_optional(folder, "video_preprocessor_config.json"),
        safetensors_params=params,
    )


def _with_hf_quant_config(folder: Path, config: dict, resolved: dict) -> tuple[dict, dict]:
    """ModelOpt checkpoints up to 0.29 keep their quantization in ``hf_quant_config.json`` next to config.json:
    vLLM reads it as the ``quantization_config`` when config.json has none (vLLM v0.34.0
    vllm/transformers_utils/config.py:get_config)."""
    if config.get("quantization_config") is not None or resolved.get("quantization_config") is not None:
        return config, resolved
    qcfg = _read_optional(folder, "hf_quant_config.json")
    if not isinstance(qcfg, dict):
        return config, resolved
    from ..model.quant import _modelopt_method

    # vLLM v0.34.0 vllm/transformers_utils/model_arch_config_convertor.py:_normalize_quantization_config names the
    # method of a ModelOpt producer (modelopt, modelopt_fp4, modelopt_mixed), which the KV dtype rule then reads
    method = _modelopt_method(qcfg)
    if method and "quant_method" not in qcfg:
        qcfg = {**qcfg, "quant_method": method}
    return {**config, "quantization_config": qcfg}, {**resolved, "quantization_config": qcfg}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub can be asked at all: offline mode is off and its host answers within a few seconds.

    Checked once up front so that a machine with no network fails in seconds with one line,
    instead of huggingface_hub's retries.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").strip() not in ("0", "", "false", "False"):
        return False
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _safetensors_params(repo_id: str, revision: str | None) -> dict[str, int] | None:
    """Parameter counts per dtype from the safetensors headers (range reads; None offline)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return None
    try:
        from huggingface_hub import get_safetensors_metadata

        meta = get_safetensors_metadata(repo_id, revision=revision)
        return {str(k): int(v) for k, v in meta.parameter_count.items()}
    except Exception:
        return None
