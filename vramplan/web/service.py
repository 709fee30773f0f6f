"""Every call the web app makes into vramplan, in one place: requests in, the API's answers out.

Each ``*_json(req)`` takes the request as a plain dict (the JSON body) and returns the object the CLI's
``--json`` prints for the same inputs (``vramplan plan|explain|fit|knobs|sweep``), by calling the one
composer, :mod:`vramplan.api` (``vramplan.plan/explain/fit/knobs/sweep(...).to_dict()``), or for
``engine: "sglang"`` the SGLang engine's own entry points (``vramplan.plan(..., engine="sglang")``).
Bad input raises :class:`vramplan.errors.VramplanError`, as the CLI does.

What this module adds to the API is the web's safety rules, and nothing else: the model is read from
the bundled catalog, from a ``config.json`` the page sent (parsed in memory, never written), or from the
Hub when it answers; never from the server's file system (a model that names a path is refused). The
model is resolved here and handed to the API as a :class:`~vramplan.model.description.ModelDescription`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import time
from functools import lru_cache
from typing import Any

from ..errors import ConfigError, ConfigNotFound, InputError, VramplanError
from ..units import GiB

__all__ = ["plan_json", "explain_json", "fit_json", "knobs_json", "sweep_json", "catalog_json",
           "check_model_name", "flags_of", "ENGINES"]

ENGINES = ("vllm", "sglang")
"""Engines the page may pick."""

MAX_STEPS = 200
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")

SWEEPABLE = ("max-model-len", "max-num-seqs", "max-num-batched-tokens", "gpu-memory-utilization",
             "tensor-parallel-size", "pipeline-parallel-size", "block-size", "kv-cache-dtype", "used-by-others-gib")
"""The vLLM flags the page offers to sweep (the API sweeps any memory flag)."""


# ----- the model: catalog, dropped config.json, or the Hub; never a local path ---------------------


def check_model_name(name: str) -> str:
    """A catalog id or a Hub id; anything that could name a file on this machine is refused.

    A catalog id is read from the catalog whatever the server's working folder holds; any other
    name that exists as a path there is refused rather than read.
    """
    from pathlib import Path

    from ..inputs.model_source import _catalog_lookup

    name = (name or "").strip()
    if not name:
        raise ConfigNotFound("no model given", hint="pick a model from the catalog, or drop its config.json")
    if (not _HUB_ID.match(name) or ".." in name or name.startswith(("/", "~", "."))
            or "\\" in name or (_catalog_lookup(name) is None and Path(name).exists())):
        raise InputError(f"the web API does not read local paths ({name!r})",
                         hint="name a catalog id or a Hub id, or drop the model's config.json on the page")
    return name


@lru_cache(maxsize=256)
def _catalog_model(name: str):
    """A catalog model's description, read from the catalog's folder (whatever this process's cwd holds);
    None when the name is not in the catalog."""
    from ..inputs import model_source as ms
    from ..resolve import describe_files

    found = ms._catalog_lookup(name)
    if found is None:
        return None
    return describe_files(ms._load_folder(found, name=name, source="catalog"), name)


def _model(name: str):
    """What the API is given for a named model: the catalog's description, or the Hub id (when the Hub answers)."""
    desc = _catalog_model(check_model_name(name))
    if desc is not None:
        return desc
    if not _hub_answers():
        raise ConfigNotFound(f"{name} is not in the bundled catalog and the Hub cannot be reached",
                             hint="pick a catalog model (GET /api/models), or drop its config.json")
    return name  # the API reads it from the Hub


_HUB_CHECK: list = [0.0, False]
HUB_CHECK_TTL_S = 60.0


def _hub_answers() -> bool:
    """Whether the Hub can be asked, checked at most once a minute (a page may ask for many names)."""
    from ..inputs import model_source as ms

    if os.environ.get("HF_HUB_OFFLINE", "0").strip() not in ("0", "", "false", "False"):
        return False
    now = time.monotonic()
    if now - _HUB_CHECK[0] > HUB_CHECK_TTL_S:
        _HUB_CHECK[:] = [now, ms._hub_reachable()]
    return bool(_HUB_CHECK[1])


def _from_config(config: Any, name: str):
    """A dropped config.json, read in memory (transformers' config class fills defaults; no remote code)."""
    from types import SimpleNamespace

    from ..inputs import model_source as ms
    from ..resolve import describe_files

    if not isinstance(config, dict):
        raise ConfigError("the dropped config.json is not a JSON object", hint="drop a Hugging Face config.json")
    ms._check_config(config, "the dropped config.json")
    resolved, by = config, "as written"
    try:
        from transformers import CONFIG_MAPPING

        cls = CONFIG_MAPPING[config.get("model_type")]
        resolved, by = ms._jsonable(cls(**config).to_dict()), "transformers config class"
    except Exception:
        pass
    files = SimpleNamespace(config=config, resolved=resolved, preprocessor=None, source="uploaded",
                            location="config.json", resolved_by=by, checkpoint_bytes=None)
    return describe_files(files, name)


# ----- the request's target: model, device, release, flags --------------------------------------------


_SGLANG_ARGS = {"context_length", "mem_fraction_static", "tp_size", "pp_size", "max_running_requests",
                "max_total_tokens", "chunked_prefill_size", "kv_cache_dtype", "disable_cuda_graph"}


def flags_of(req: dict) -> list[str]:
    """The engine flags of a request: ``flags`` (a list, or a pasted ``vllm serve ...`` line) then ``args``
    (engine arguments by name, written as the flags they are, so that they are read as the CLI reads them)."""
    raw = req.get("flags") or []
    if isinstance(raw, str):
        try:
            raw = shlex.split(raw.replace("\\\n", " "))
        except ValueError as exc:
            raise InputError(f"cannot split the command line: {exc}", hint="check its quotes") from None
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InputError("flags must be a list of strings or one command line",
                         hint='e.g. ["--max-model-len", "32768"]')
    out = list(raw)
    args = req.get("args") or {}
    if not isinstance(args, dict):
        raise InputError("args must be an object of engine arguments", hint='e.g. {"max_model_len": 32768}')
    for k, v in args.items():
        if v is None:
            continue
        flag = "--" + str(k).replace("_", "-")
        if isinstance(v, bool):
            out.append(f"{flag}={'true' if v else 'false'}")
        elif isinstance(v, (dict, list)):
            out += [flag, json.dumps(v)]
        else:
            out += [flag, str(v)]
    return out


def _engine(req: dict) -> str:
    engine = req.get("engine") or "vllm"
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not available", hint="engines: " + ", ".join(ENGINES))
    return engine


def _named_in(flags: list[str], engine: str) -> str | None:
    """The model a pasted line names (read as the engine's parser reads it; the API reads the flags again)."""
    if engine == "sglang":
        from ..engines.sglang.flags import parse_sglang_flags

        return parse_sglang_flags(list(flags)).args.model_path
    from ..engines.vllm.flags import parse_flags

    return parse_flags(list(flags)).args.model


def _target(req: dict) -> tuple[str, dict]:
    """(engine, the API's keyword arguments) of a request, the model resolved under the web's rules."""
    from ..engines.vllm.flags import EngineArgs

    engine = _engine(req)
    flags = flags_of(req)
    given = req.get("model")
    config = req.get("config")
    in_line = _named_in(flags, engine) if flags else None
    if given and in_line and in_line != given:
        raise InputError(f"two models given: {given} and {in_line}", hint="name one")
    name = given or in_line
    if config is not None:
        name = name or (config.get("_name_or_path") if isinstance(config, dict) else None) or "uploaded-config"
        model: Any = _from_config(config, str(name))
    elif not name:
        raise InputError("no model given", hint="name a catalog id, or paste `vllm serve MODEL ...`")
    else:
        model = _model(name)
    mem = req.get("device_memory_gib")
    others = req.get("used_by_others_gib")
    kw: dict[str, Any] = {"model": model, "device": req.get("device") or None,
                          "device_memory_gib": None if mem in (None, "") else str(mem),
                          "used_by_others_gib": "0" if others in (None, "") else str(others), "flags": flags}
    if engine == "sglang":
        kw["sglang_version"] = req.get("sglang_version") or None
    else:
        kw["vllm_version"] = req.get("vllm_version") or None
        if not isinstance(model, str) and not in_line:
            kw["args"] = EngineArgs(model=str(name))  # the name the CLI would give (--model / the positional)
    return engine, kw


def _int(req: dict, key: str, default: int | None, lo: int = 0, hi: int = 10**9) -> int | None:
    v = req.get(key, default)
    if v is None or v == "":
        return default
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise InputError(f"{key} must be a whole number")
    try:
        n = int(v)
    except ValueError:
        raise InputError(f"{key} must be a whole number, got {v!r}") from None
    if not lo <= n <= hi:
        raise InputError(f"{key} must be between {lo} and {hi}, got {n}")
    return n


# ----- the five answers --------------------------------------------------------------------------------


def plan_json(req: dict) -> dict:
    """``vramplan plan ... --json`` (with ``image``/``images_per_request``/``video``: the serving check);
    ``engine: "sglang"``: ``vramplan plan --engine sglang ... --json``."""
    import vramplan

    engine, kw = _target(req)
    if engine == "sglang":
        from ..engines.sglang.render import sglang_plan_to_dict

        if req.get("image") or req.get("video"):
            raise InputError("the serving check (image, video) is modelled for vLLM only",
                             hint="leave image and video empty with engine sglang")
        return sglang_plan_to_dict(vramplan.plan(engine="sglang", **kw))
    return vramplan.plan(image=req.get("image") or None, video=req.get("video") or None,
                         images_per_request=_int(req, "images_per_request", 1, 0, 1024), **kw).to_dict()


def explain_json(req: dict) -> dict:
    """``vramplan explain LOG --json [--compare]``; the log is the request's text, parsed and dropped.

    For the comparison the log's model is matched to the catalog by name (a folder the log names is never
    read); a comparison that cannot be made is a note, as on the command line.
    """
    import vramplan

    from ..engines.sglang.log import looks_like_sglang_log

    log = req.get("log")
    if not isinstance(log, str) or not log.strip():
        raise InputError("no log given", hint="paste a vLLM server log, or upload the file")
    compare = bool(req.get("compare"))
    device = req.get("device") or None
    if looks_like_sglang_log(log):
        return _explain_sglang(log, compare, req.get("model") or None, device)
    version = req.get("vllm_version") or None  # as explain's --vllm-version (default: the log's, else inferred)
    x = vramplan.explain(io.StringIO(log, newline="\n"), vllm_version=version)
    if compare:
        try:
            model = _compare_model(req.get("model") or None, x.facts.model)
        except VramplanError as exc:
            obj = x.to_dict()
            obj["compare"] = {"unavailable": exc.one_line(), "vllm_version": None, "vllm_version_source": None,
                              "rules": None, "range_check": []}
            return json.loads(json.dumps(obj, default=str))
        x = vramplan.explain(io.StringIO(log, newline="\n"), compare=True, model=model, device=device,
                             vllm_version=version)
    return json.loads(x.to_json())


def _compare_model(given: str | None, logged: str | None) -> str | None:
    """The catalog id (or Hub id, when given and the Hub answers) the comparison plans; never a local path."""
    from ..inputs.model_source import catalog_ids

    if given:
        name = check_model_name(given)
        if name not in catalog_ids() and _catalog_model(name) is None and not _hub_answers():
            raise ConfigNotFound(f"{name} is not in the bundled catalog and the Hub cannot be reached",
                                 hint="name a catalog model")
    elif not logged:
        return None  # the API says the log names no model
    elif logged in catalog_ids():
        name = logged
    else:
        base = "/".join(logged.rstrip("/").split("/")[-2:]).lower()
        short = logged.rstrip("/").split("/")[-1].lower()
        hit = [c for c in catalog_ids() if c.lower() == base or c.split("/")[1].lower() == short]
        if not hit:
            raise InputError(f"the model {logged!r} is not in the catalog and its config is not available offline",
                             hint="pass --model with a catalog id or a local folder holding config.json")
        name = hit[0]
    if os.path.exists(name):  # the API would read a folder of that name in the server's working folder
        raise InputError(f"the web API does not read local paths ({name!r})", hint="name the model above")
    return name


def _explain_sglang(log: str, compare: bool, model: str | None, device: str | None) -> dict:
    """``vramplan explain LOG --json`` of an SGLang log (the CLI detects it the same way)."""
    from ..engines.sglang.explain import compare_with_plan, facts_to_dict
    from ..engines.sglang.log import read_sglang_log

    f = read_sglang_log(log)
    obj = facts_to_dict(f)
    if compare:
        rows = note = None
        try:
            name = _compare_model(model, f.server_args.get("model_path"))
            _p, rows = compare_with_plan(f, model=_model(name) if name else None, device=device)
        except VramplanError as exc:
            note = exc.one_line()
        obj["compare"] = ({"rows": [{"term": t, "predicted": p, "logged": lg} for t, p, lg in rows]}
                          if rows else {"unavailable": note})
    return json.loads(json.dumps(obj, default=str))


def fit_json(req: dict) -> dict:
    """``vramplan fit ... --json`` (``--engine sglang`` too)."""
    import vramplan

    engine, kw = _target(req)
    if engine == "sglang":
        from ..engines.sglang.fit import fit_dict

        return fit_dict(_sglang_make(kw), concurrency=req.get("concurrency", 1), context=req.get("context"))
    return vramplan.fit(concurrency=req.get("concurrency", 1), context=req.get("context"),
                        images_per_request=_int(req, "images_per_request", 0, 0, 1024), image=req.get("image") or None,
                        budget_gib=None if req.get("budget_gib") in (None, "") else str(req["budget_gib"]),
                        **kw).to_dict()


def knobs_json(req: dict) -> dict:
    """``vramplan knobs ... --json`` (``--engine sglang`` too)."""
    import vramplan

    engine, kw = _target(req)
    if engine == "sglang":
        from ..engines.sglang.fit import knobs_dict

        return knobs_dict(_sglang_make(kw))
    return vramplan.knobs(concurrency=req.get("concurrency") or None, context=req.get("context") or None,
                          **kw).to_dict()


def sweep_json(req: dict) -> dict:
    """``vramplan sweep ... --vary FLAG=RANGE --steps N --json`` (``--engine sglang`` too)."""
    import vramplan

    vary = req.get("vary")
    if not isinstance(vary, str) or not vary:
        raise InputError("no vary given", hint="e.g. max-model-len=4096:131072")
    steps = _int(req, "steps", 8, 1, MAX_STEPS)
    if vary.count(",") >= MAX_STEPS:
        raise InputError(f"at most {MAX_STEPS} values in a sweep, got {vary.count(',') + 1}")
    engine, kw = _target(req)
    if engine == "sglang":
        from ..engines.sglang.fit import sweep_dict

        return sweep_dict(_sglang_make(kw), vary, steps)
    return vramplan.sweep(vary=vary, steps=steps, **kw).to_dict()


def _sglang_make(kw: dict):
    """``make(**server_args) -> SGLangPlan`` for SGLang's fit, knobs and sweep: the API's SGLang plan."""
    import vramplan

    return lambda **over: vramplan.plan(engine="sglang", **kw, **over)


# ----- what the page's pickers list ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def catalog_json() -> dict:
    """The catalog models, devices, releases per engine, engines and sweepable flags."""
    from ..engines.sglang import rules as sglang_rules
    from ..engines.sglang.fit import SWEEPABLE as SGLANG_SWEEPABLE
    from ..inputs.devices import DEVICES
    from ..inputs.model_source import catalog_ids
    from ..engines.vllm.rules.versions import DEFAULT_VERSION, SUPPORTED

    vllm_versions = sorted({".".join(map(str, v)) for _m, v in SUPPORTED} | {DEFAULT_VERSION},
                           key=lambda s: tuple(int(x) for x in s.split(".")), reverse=True)
    sglang_versions = sorted(sglang_rules.SUPPORTED, key=lambda s: tuple(int(x) for x in s.split(".")), reverse=True)
    return {
        "models": list(catalog_ids()),
        "devices": [{"name": d.name, "label": d.label, "total_gib": round(d.total_bytes / GiB, 2),
                     "platform": d.platform} for d in DEVICES.values()],
        "vllm_versions": vllm_versions,
        "default_vllm_version": DEFAULT_VERSION,
        "engines": list(ENGINES),
        "sweepable": list(SWEEPABLE),
        "releases": {"vllm": {"versions": vllm_versions, "default": DEFAULT_VERSION,
                              "default_by_platform": _default_by_platform({d.platform for d in DEVICES.values()})},
                     "sglang": {"versions": sglang_versions, "default": sglang_rules.DEFAULT_VERSION}},
        "sweepable_by_engine": {"vllm": list(SWEEPABLE), "sglang": list(SGLANG_SWEEPABLE)},
    }


def _default_by_platform(platforms: set[str]) -> dict[str, str]:
    """The vLLM release planned when none is picked, per platform (Ascend's newest rule set is older)."""
    from ..engines.vllm.rules.versions import for_version

    return {p: ".".join(map(str, for_version(None, platform=p).version)) for p in sorted(platforms)}
