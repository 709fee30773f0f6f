"""The ASGI app of ``vramplan serve``: the page, its static files and the JSON API.

FastAPI is imported here only; the CLI imports this module inside ``serve`` (start-up stays light).
Every answer comes from :mod:`vramplan.web.service`; this module maps requests and errors.

Safety: request bodies are capped (:data:`BODY_LIMITS`) before they are read whole; a log is
parsed in memory and dropped; models come from the bundled catalog, a dropped config.json or the
Hub (never a path on this machine); nothing in a request is executed. When bound to loopback the
app answers only requests whose Host is a loopback name (no DNS rebinding).
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ConfigNotFound, InvalidConfig, VramplanError
from . import service

__all__ = ["create_app", "BODY_LIMITS"]

KiB = 1024
BODY_LIMITS = {"/api/explain": 8 * 1024 * KiB}
"""Largest request body per path (bytes); every other path takes :data:`DEFAULT_BODY_LIMIT`."""
DEFAULT_BODY_LIMIT = 512 * KiB
STATIC = Path(__file__).resolve().parent / "static"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


# ----- request bodies (the OpenAPI description is generated from these) --------------------------


Num = Union[float, str]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Optional[str] = Field(None, description="catalog id (GET /api/models) or Hub id; never a local path",
                                 examples=["Qwen/Qwen3-8B"])
    config: Optional[dict[str, Any]] = Field(None, description="a model's config.json, instead of `model`")
    engine: Optional[str] = Field("vllm", description="serving engine: vllm, or sglang (flags and args then take "
                                                      "SGLang's names: context_length, mem_fraction_static, tp_size)")
    device: Optional[str] = Field(None, description="device from the catalog (default h100-80gb)",
                                  examples=["h100-80gb"])
    device_memory_gib: Optional[Num] = Field(None, description="total memory the runtime reports, GiB")
    used_by_others_gib: Optional[Num] = Field(None, description="memory other programs hold on each device, GiB")
    vllm_version: Optional[str] = Field(None, description="vLLM release whose rules apply (default newest)")
    sglang_version: Optional[str] = Field(None, description="SGLang release whose rules apply (engine sglang)")
    flags: Optional[Union[list[str], str]] = Field(
        None, description="vLLM flags as a list, or one pasted `vllm serve MODEL ...` line",
        examples=[["--max-model-len", "32768"]])
    args: Optional[dict[str, Any]] = Field(None, description="engine arguments by name (vLLM: max_model_len: 32768; "
                                                             "SGLang: context_length: 32768)")


class PlanRequest(Target):
    image: Optional[str] = Field(None, description="serving check: WIDTHxHEIGHT of a request's image")
    images_per_request: Optional[int] = Field(None, ge=0, le=1024)
    video: Optional[str] = Field(None, description="serving check: WIDTHxHEIGHTxFRAMES")


class FitRequest(Target):
    concurrency: Optional[int] = Field(1, description="requests served at once")
    context: Optional[int] = Field(None, ge=1, description="tokens per request (prompt + output)")
    images_per_request: Optional[int] = Field(0, ge=0, le=1024)
    image: Optional[str] = None
    budget_gib: Optional[Num] = Field(None, description="the most this server may take per device")


class KnobsRequest(Target):
    concurrency: Optional[int] = Field(None, ge=0)
    context: Optional[int] = Field(None, ge=0)


class SweepRequest(Target):
    vary: str = Field(..., description="FLAG=LOW:HIGH or FLAG=A,B,C", examples=["max-model-len=4096:40960"])
    steps: Optional[int] = Field(8, ge=1, le=service.MAX_STEPS)


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log: str = Field(..., description="the log text (parsed, never stored)")
    compare: bool = False
    model: Optional[str] = Field(None, description="catalog id for the comparison when the log's is a path")
    device: Optional[str] = None
    vllm_version: Optional[str] = Field(None, description="release for the comparison (default: the log's version "
                                                          "line, else the release its lines point to)")


def _body(m: BaseModel) -> dict:
    return m.model_dump(exclude_none=True)


# ----- errors ------------------------------------------------------------------------------------


def _err(status: int, line: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(line).split()), **extra}, status_code=status)


def _validation_line(exc: RequestValidationError) -> tuple[int, str]:
    errs = exc.errors()
    for e in errs:
        if e.get("type") == "json_invalid":
            return 400, f"the body is not valid JSON ({e.get('ctx', {}).get('error', 'malformed')})"
    e = errs[0] if errs else {}
    loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
    if e.get("type") == "missing" and loc == "body":
        return 400, "no JSON body; send an object, e.g. {\"model\": \"Qwen/Qwen3-8B\"}"
    return 422, f"{loc}: {e.get('msg', 'invalid')}" + (f" (and {len(errs) - 1} more)" if len(errs) > 1 else "")


# ----- body size limit (before the body is read whole) ---------------------------------------------


class BodyLimit:
    """Refuses bodies over the path's limit: by Content-Length up front, else while they stream."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = BODY_LIMITS.get(scope["path"], DEFAULT_BODY_LIMIT)
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(limit)(scope, receive, send)
        seen, refused = 0, False

        async def counted():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:  # answer 413 now; the app sees the client gone and its answer is dropped
                    refused = True
                    await _too_large(limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return msg

        async def guarded(msg):
            if not refused:
                await send(msg)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise


def _too_large(limit: int):
    return _err(413, f"request body over {limit // KiB} KiB; send less (a log is read up to "
                     f"{BODY_LIMITS['/api/explain'] // (1024 * KiB)} MiB)")


class LoopbackHost:
    """When bound to loopback, answer only Host: localhost / 127.0.0.1 / [::1] (no DNS rebinding)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name not in _LOOPBACK:
                return await _err(421, f"this server answers only on localhost, not {host!r}; "
                                       "start it with --host to serve other names")(scope, receive, send)
        return await self.app(scope, receive, send)


# ----- static files --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _plotly() -> tuple[bytes, bytes]:
    """plotly.js as the installed ``plotly`` package ships it (no CDN), and its gzip."""
    data = resources.files("plotly").joinpath("package_data/plotly.min.js").read_bytes()
    return data, gzip.compress(data, 6)


@lru_cache(maxsize=16)
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")


def _headers(extra: dict | None = None) -> dict:
    return {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            **(extra or {})}


# ----- the app -----------------------------------------------------------------------------------


def create_app(*, loopback_only: bool = True) -> FastAPI:
    app = FastAPI(title="vramplan", version=__version__,
                  description="Where accelerator memory goes when vLLM (or SGLang) starts: each answer is the object "
                              "`vramplan <command> --json` prints for the same inputs. Errors are 4xx with "
                              "one line: {\"error\": \"...\"}.",
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")  # no Swagger UI: it loads from a CDN

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError):
        status, line = _validation_line(exc)
        return _err(status, line)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        return _err(exc.status_code, str(exc.detail))

    @app.exception_handler(VramplanError)
    async def _domain(_req: Request, exc: VramplanError):
        if isinstance(exc, InvalidConfig):  # vLLM itself refuses: the CLI's --json error object
            return _err(422, exc.one_line(), verdict="fails", error_kind="invalid_config", error_message=exc.message)
        return _err(404 if isinstance(exc, ConfigNotFound) else 422, exc.one_line())

    @app.exception_handler(Exception)
    async def _bug(_req: Request, exc: Exception):
        return _err(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.post("/api/plan", summary="vramplan plan --json")
    def api_plan(req: PlanRequest):
        return JSONResponse(service.plan_json(_body(req)))

    @app.post("/api/explain", summary="vramplan explain LOG --json [--compare]")
    def api_explain(req: ExplainRequest):
        return JSONResponse(service.explain_json(_body(req)))

    @app.post("/api/fit", summary="vramplan fit --json")
    def api_fit(req: FitRequest):
        return JSONResponse(service.fit_json(_body(req)))

    @app.post("/api/knobs", summary="vramplan knobs --json")
    def api_knobs(req: KnobsRequest):
        return JSONResponse(service.knobs_json(_body(req)))

    @app.post("/api/sweep", summary="vramplan sweep --vary FLAG=RANGE --json")
    def api_sweep(req: SweepRequest):
        return JSONResponse(service.sweep_json(_body(req)))

    @app.get("/api/catalog", summary="models, devices, releases per engine, engines, sweepable flags")
    def api_catalog():
        return JSONResponse(service.catalog_json())

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(_static("index.html"), media_type=_TYPES[".html"], headers=_headers())

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        raw, gz = _plotly()
        cache = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gz, media_type=_TYPES[".js"], headers=_headers({**cache, "Content-Encoding": "gzip"}))
        return Response(raw, media_type=_TYPES[".js"], headers=_headers(cache))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in ("app.js", "app.css"):
            return _err(404, f"no static file {name!r}")
        return Response(_static(name), media_type=_TYPES[Path(name).suffix], headers=_headers())

    app.add_middleware(BodyLimit)
    if loopback_only:
        app.add_middleware(LoopbackHost)
    return app


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK or host.startswith("127.")


def dumps(obj: Any) -> str:  # pragma: no cover - a helper for debugging
    return json.dumps(obj, indent=2)
