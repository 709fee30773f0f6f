"""Every call the web app makes into vramplan, in one place.

Each ``*_json(req)`` takes the request as a plain dict (the JSON body) and returns exactly the
object the CLI's ``--json`` prints for the same inputs (``vramplan plan|explain|fit|knobs|sweep``).
It raises :class:`vramplan.errors.VramplanError` for bad input, as the CLI does.

This module is the only one that knows how the domain is called: when the Python API gains one
composer per command (``vramplan.plan/explain/fit/knobs/sweep`` with ``.to_dict()``), only the
bodies below change.

What the web asks for differs from the CLI in one way, on purpose: the model is read from the
bundled catalog, from a ``config.json`` the page sent (parsed in memory, never written), or from
the Hub when it answers; never from the server's file system (a model that names a path is refused).
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache
from typing import Any

from ..errors import ConfigError, ConfigNotFound, InputError
from ..units import GiB

__all__ = ["plan_json", "explain_json", "fit_json", "knobs_json", "sweep_json", "catalog_json",
           "check_model_name", "flags_of", "ENGINES"]

ENGINES = ("vllm",)
"""Engines the page may pick (room for SGLang: its package adds its name here)."""

MAX_STEPS = 200
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


# ----- inputs ------------------------------------------------------------------------------------


def check_model_name(name: str) -> str:
    """A catalog id or a Hub id; anything that could name a file on this machine is refused.

    A catalog id is read from the catalog whatever the server's working folder holds; any other
    name that exists as a path there is refused rather than read.
    """
    from pathlib import Path

    name = (name or "").strip()
    if not name:
        raise ConfigNotFound("no model given", hint="pick a model from the catalog, or drop its config.json")
    from ..inputs.model_source import _catalog_lookup

    if (not _HUB_ID.match(name) or ".." in name or name.startswith(("/", "~", "."))
            or "\\" in name or (_catalog_lookup(name) is None and Path(name).exists())):
        raise InputError(f"the web API does not read local paths ({name!r})",
                         hint="name a catalog id or a Hub id, or drop the model's config.json on the page")
    return name


@lru_cache(maxsize=256)
def _load(name: str):
    """The model description, from the catalog (by its folder, whatever this process's cwd holds) or the Hub."""
    from ..resolve import _with_vision, load_model
    from ..inputs import model_source as ms
    from ..model.from_config import describe_config

    found = ms._catalog_lookup(name)
    if found is None:
        if not _hub_answers():
            raise ConfigNotFound(f"{name} is not in the bundled catalog and the Hub cannot be reached",
                                 hint="pick a catalog model (GET /api/models), or drop its config.json")
        return load_model(name)
    files = ms._load_folder(found, name=name, source="catalog")
    desc = describe_config(files.config, name=name, resolved=files.resolved, preprocessor=files.preprocessor,
                           source=f"{files.source}: {files.location} ({files.resolved_by})")
    return _with_vision(desc, files)


_HUB_CHECK: list = [0.0, False]
HUB_CHECK_TTL_S = 60.0


def _hub_answers() -> bool:
    """Whether the Hub can be asked, checked at most once a minute (a page may ask for many names)."""
    import time

    from ..inputs import model_source as ms

    import os

    if os.environ.get("HF_HUB_OFFLINE", "0").strip() not in ("0", "", "false", "False"):
        return False
    now = time.monotonic()
    if now - _HUB_CHECK[0] > HUB_CHECK_TTL_S:
        _HUB_CHECK[:] = [now, ms._hub_reachable()]
    return bool(_HUB_CHECK[1])


def _from_config(config: Any, name: str):
    """A dropped config.json, read in memory (transformers' config class fills defaults; no remote code)."""
    from ..inputs import model_source as ms
    from ..model.from_config import describe_config

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
    return describe_config(config, name=name, resolved=resolved, preprocessor=None,
                           source=f"uploaded config.json ({by})")


def flags_of(req: dict) -> list[str]:
    """The vLLM flags of a request: ``flags`` (a list, or a pasted ``vllm serve ...`` line) then ``args``."""
    raw = req.get("flags") or []
    if isinstance(raw, str):
        try:
            raw = shlex.split(raw.replace("\\\n", " "))
        except ValueError as exc:
            raise InputError(f"cannot split the command line: {exc}", hint="check its quotes") from None
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InputError("flags must be a list of strings or one command line", hint='e.g. ["--max-model-len", "32k"]')
    out = list(raw)
    args = req.get("args") or {}
    if not isinstance(args, dict):
        raise InputError("args must be an object of vLLM engine arguments", hint='e.g. {"max_model_len": 32768}')
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


def _engine(req: dict) -> None:
    engine = req.get("engine") or "vllm"
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not available", hint="engines: " + ", ".join(ENGINES))


def _setup(req: dict):
    """(model description, model name, device, rules, EngineArgs, others bytes, parsed flags) as the CLI's."""
    from ..resolve import resolve_device
    from ..inputs.flags import parse_flags
    from ..rules.versions import for_version
    from ..units import parse_size

    _engine(req)
    parsed = parse_flags(flags_of(req))
    given = req.get("model")
    if given and parsed.args.model and parsed.args.model != given:
        raise InputError(f"two models given: {given} and {parsed.args.model}", hint="name one")
    name = given or parsed.args.model
    config = req.get("config")
    if config is not None:
        name = name or (config.get("_name_or_path") if isinstance(config, dict) else None) or "uploaded-config"
        desc = _from_config(config, str(name))
    else:
        if not name:
            raise InputError("no model given", hint="name a catalog id, or paste `vllm serve MODEL ...`")
        desc = _load(check_model_name(name))
    mem = req.get("device_memory_gib")
    device = resolve_device(req.get("device") or None, device_memory_gib=None if mem in (None, "") else str(mem))
    rules = for_version(req.get("vllm_version") or None, platform=device.platform)
    others = parse_size(str(req.get("used_by_others_gib") or "0"))
    return desc, name, device, rules, parsed.args.with_(model=name), others, parsed


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


# ----- the five answers ------------------------------------------------------------------------


def plan_json(req: dict) -> dict:
    """``vramplan plan ... --json`` (with ``image``/``images_per_request``/``video``: the serving check)."""
    from dataclasses import replace

    from ..fixes import attach_fix
    from ..planner import build_plan
    from ..render.json import plan_to_dict

    desc, _name, device, rules, args, others, parsed = _setup(req)
    plan = attach_fix(build_plan(desc, args, device, rules, used_by_others_bytes=others,
                                 ignored_flags=parsed.ignored))
    if parsed.unmodelled:
        plan = replace(plan, warnings=plan.warnings + ("not modelled yet, so not counted: "
                                                       + " ".join(parsed.unmodelled),))
    obj = plan_to_dict(plan)
    if req.get("image") or req.get("video"):
        from ..fit import _image, _video
        from ..serving import RequestShape, serving_check

        s = serving_check(plan, RequestShape(image=_image(req.get("image")), video=_video(req.get("video")),
                                             images_per_request=_int(req, "images_per_request", 1, 0, 1024)))
        obj["serving"] = {"fits": s.fits, "verdict": s.verdict, "tokens_per_image": s.tokens_per_image,
                          "gib": {t.key: round(t.bytes / GiB, 4) for t in s.terms}}
    return obj


def explain_json(req: dict) -> dict:
    """``vramplan explain LOG --json [--compare]``; the log is the request's text, parsed and dropped."""
    from ..errors import VramplanError
    from ..explain import compare, diagnose, facts_to_dict
    from ..inputs.model_source import catalog_ids
    from ..inputs.vllm_log import parse_log_text

    log = req.get("log")
    if not isinstance(log, str) or not log.strip():
        raise InputError("no log given", hint="paste a vLLM server log, or upload the file")
    f = parse_log_text(log)
    obj = facts_to_dict(f, diagnose(f))
    if req.get("compare"):
        rows, note = None, None
        try:
            model = req.get("model") or None
            if model:
                check_model_name(model)
            elif f.model and f.model not in catalog_ids():
                # the log's model path is matched to the catalog by name; a server-side folder is never read
                base = "/".join(f.model.rstrip("/").split("/")[-2:]).lower()
                short = f.model.rstrip("/").split("/")[-1].lower()
                hit = [c for c in catalog_ids() if c.lower() == base or c.split("/")[1].lower() == short]
                if not hit:
                    raise InputError(f"the model {f.model!r} is not in the catalog and its config is not "
                                     "available offline",
                                     hint="pass --model with a catalog id or a local folder holding config.json")
                model = hit[0]
            _p, rows = compare(f, model=model, device=req.get("device") or None)
        except VramplanError as exc:
            note = exc.one_line()
        obj["compare"] = ({"rows": [{"term": t, "predicted": p, "logged": lg} for t, p, lg in rows]}
                          if rows else {"unavailable": note})
    return json.loads(json.dumps(obj, default=str))


def fit_json(req: dict) -> dict:
    """``vramplan fit ... --json``."""
    from ..fit import Workload, _image, fit, serve_line
    from ..render.json import plan_to_dict
    from ..units import parse_size

    desc, _name, device, rules, args, others, _parsed = _setup(req)
    conc = _int(req, "concurrency", 1, -10**9, 10**7)
    if conc is None or conc < 1:
        raise InputError("--concurrency must be at least 1")
    budget = req.get("budget_gib")
    w = Workload(concurrency=conc, context=_int(req, "context", None, 1, 10**9),
                 images_per_request=_int(req, "images_per_request", 0, 0, 1024), image=_image(req.get("image")),
                 budget_bytes=parse_size(str(budget)) if budget not in (None, "") else None)
    res = fit(desc, device, rules, args, w, used_by_others_bytes=others)
    return {"answer": res.answer, "serve_line": res.serve_line,
            "serve_line_kv_cache_memory_bytes": serve_line(res.plan, kv_bytes=True),
            "kv_cache_memory_bytes": res.kv_cache_memory_bytes,
            "margin_gib": None if res.margin_bytes is None else round(res.margin_bytes / GiB, 3),
            "lower_fails": res.lower_fails, "alternatives": list(res.alternatives),
            "plan": plan_to_dict(res.plan)}


def knobs_json(req: dict) -> dict:
    """``vramplan knobs ... --json``."""
    from ..fit import Workload, knobs

    desc, _name, device, rules, args, others, _parsed = _setup(req)
    conc = _int(req, "concurrency", None, 0, 10**7)
    ctx = _int(req, "context", None, 0, 10**9)
    w = Workload(concurrency=conc or 1, context=ctx) if (conc or ctx) else None
    base, ks = knobs(desc, device, rules, args, workload=w, used_by_others_bytes=others)
    return {"baseline": {"verdict": base.verdict, "kv_cache_tokens": base.kv_cache_tokens,
                         "non_kv_gib": round(base.logged_rank.bytes_of("non_kv_total") / GiB, 3)},
            "knobs": [{"knob": k.name, "change": k.change,
                       "freed_gib": None if k.freed_bytes is None else round(k.freed_bytes / GiB, 3),
                       "kv_tokens_added": k.kv_tokens_added, "util_needed": k.util_needed,
                       "host_freed_gib": None if k.host_bytes is None else round(k.host_bytes / GiB, 3),
                       "verdict": k.plan.verdict if k.plan else None, "cost": k.cost} for k in ks]}


def sweep_json(req: dict) -> dict:
    """``vramplan sweep ... --vary FLAG=RANGE --steps N --json``."""
    from ..fit import parse_vary, sweep

    vary = req.get("vary")
    if not isinstance(vary, str) or not vary:
        raise InputError("no vary given", hint="e.g. max-model-len=4096:131072")
    steps = _int(req, "steps", 8, 1, MAX_STEPS)
    desc, _name, device, rules, args, others, _parsed = _setup(req)
    flag, field_name, values = parse_vary(vary, steps)
    if len(values) > MAX_STEPS:
        raise InputError(f"at most {MAX_STEPS} values in a sweep, got {len(values)}")
    plans = sweep(desc, device, rules, args, field_name, values, used_by_others_bytes=others)
    rows = [{"value": v, "verdict": p.verdict, "error_kind": p.error_kind, "kv_cache_tokens": p.kv_cache_tokens,
             "max_concurrency": None if p.max_concurrency is None else round(p.max_concurrency, 2),
             "non_kv_gib": round(p.logged_rank.bytes_of("non_kv_total") / GiB, 3),
             "kv_cache_gib": round(p.logged_rank.available_kv_bytes / GiB, 3)} for v, p in zip(values, plans)]
    return {"flag": flag, "rows": rows}


# ----- what the page's pickers list --------------------------------------------------------------


@lru_cache(maxsize=1)
def catalog_json() -> dict:
    """The catalog models, devices, rule-set releases, engines and sweepable flags."""
    from ..fit import _SWEEPABLE
    from ..inputs.devices import DEVICES
    from ..inputs.model_source import catalog_ids
    from ..rules.versions import DEFAULT_VERSION, SUPPORTED

    return {
        "models": list(catalog_ids()),
        "devices": [{"name": d.name, "label": d.label, "total_gib": round(d.total_bytes / GiB, 2),
                     "platform": d.platform} for d in DEVICES.values()],
        "vllm_versions": sorted({".".join(map(str, v)) for _m, v in SUPPORTED} | {DEFAULT_VERSION},
                                key=lambda s: tuple(int(x) for x in s.split(".")), reverse=True),
        "default_vllm_version": DEFAULT_VERSION,
        "engines": list(ENGINES),
        "sweepable": list(_SWEEPABLE),
    }
