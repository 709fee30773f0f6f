"""vLLM engine flags, read with vLLM's own names, spellings and value syntax.

Accepts what a user would paste: ``vllm serve MODEL --max-model-len 32k -tp 2 ...``,
with leading environment assignments (``VLLM_USE_V2_MODEL_RUNNER=0 vllm serve ...``),
``--flag=value`` and ``--flag value``, underscores or dashes (``--max_model_len``),
human-readable integers (``32k``, ``8K``), JSON options (``--limit-mm-per-prompt '{"image":2}'``)
and dotted compilation options (``-cc.cudagraph_mode=PIECEWISE``, ``-O0``).

Flags that change memory are parsed into :class:`EngineArgs`; every other real vLLM flag
(from ``vramplan/data/vllm_flags.json``, extracted from vLLM's argument builders) is
accepted and listed as ignored; anything else is refused with the nearest real flag.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ...errors import FlagError
from ...units import parse_human_int

__all__ = ["EngineArgs", "ParsedFlags", "parse_flags", "parse_serve_line", "MEMORY_ENV_VARS", "known_vllm_flags"]

# Environment variables vLLM reads that change memory at startup.
MEMORY_ENV_VARS = (
    "VLLM_USE_V2_MODEL_RUNNER",
    "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS",
    "VLLM_PP_LAYER_PARTITION",
    "VLLM_ALLOW_LONG_MAX_MODEL_LEN",
    "VLLM_ENABLE_STARTUP_PLAN",
    "VLLM_USE_FLASHINFER_SAMPLER",
    "VLLM_FUSED_MOE_CHUNK_SIZE",
    "VLLM_MXFP4_USE_MARLIN",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_NPU_ALLOC_CONF",
    # multi-GPU buffers (estimate/multi_gpu.py)
    "VLLM_ALLREDUCE_USE_SYMM_MEM",
    "VLLM_ALLREDUCE_USE_FLASHINFER",
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineArgs:
    """The engine flags that change memory. ``None`` means "vLLM's default for this version"."""

    model: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    disable_custom_all_reduce: bool = False
    max_model_len: int | None = None
    """-1 means ``auto`` (fit the longest context the KV cache holds)."""
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_dtype: str = "auto"
    dtype: str = "auto"
    quantization: str | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    kv_cache_memory_bytes: int | None = None
    num_gpu_blocks_override: int | None = None
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    cpu_offload_gb: float = 0.0
    cudagraph_mode: str | None = None
    cudagraph_capture_sizes: tuple[int, ...] | None = None
    max_cudagraph_capture_size: int | None = None
    limit_mm_per_prompt: dict | None = None
    mm_processor_kwargs: dict | None = None
    mm_processor_cache_gb: float | None = None
    mm_encoder_tp_mode: str | None = None
    skip_mm_profiling: bool = False
    video_pruning_rate: float | None = None
    """``--video-pruning-rate``: > 0 turns on video token pruning, which vramplan does not model yet (it also keeps
    Qwen3-VL's and Qwen3.5's M-RoPE cache at ``max_position x 4`` from vLLM 0.32: model/families/_mrope.py)."""
    disable_hybrid_kv_cache_manager: bool = False
    mamba_cache_mode: str | None = None
    mamba_ssm_cache_dtype: str | None = None
    mamba_block_size: int | None = None
    async_scheduling: bool | None = None
    speculative_config: dict | None = None
    enable_lora: bool = False
    max_loras: int | None = None
    max_lora_rank: int | None = None
    performance_mode: str | None = None
    api_server_count: int | None = None
    prefill_cudagraph_capture_token_sizes: tuple[int, ...] | None = None
    """vLLM 0.34 compilation-config capture knobs (``-cc.<name>=...``); None: the release's default."""
    max_prefill_cudagraph_capture_tokens: int | None = None
    decode_cudagraph_capture_request_sizes: tuple[int, ...] | None = None
    max_decode_cudagraph_capture_requests: int | None = None
    max_decode_cudagraph_capture_tokens: int | None = None
    enable_extensible_kv_cache: bool | None = None
    """vLLM 0.34 ``--enable-extensible-kv-cache`` / ``--no-enable-extensible-kv-cache`` (None: the release's default)."""
    gdn_prefill_backend: str | None = None
    """``--gdn-prefill-backend`` (auto, flashinfer, triton, cutedsl, ...): which kernel runs GDN prefill. On Hopper
    ``auto``/``flashinfer`` pick FlashInfer's, whose checkpoints change the hybrid block alignment and add a page per
    request (rules/engine.py gdn_flashinfer_prefill); None is ``auto``."""
    enable_elastic_ep: bool = False
    kv_transfer_config: dict | None = None
    hf_overrides: dict | None = None
    """``--hf-overrides``: merged into the model's config as vLLM does (``vramplan.model.overrides``)."""
    usage_context: str = "serve"
    """``serve`` (``vllm serve``, the OpenAI server) or ``llm`` (the offline ``LLM`` class): defaults differ."""
    env: tuple[tuple[str, str], ...] = ()
    """The memory-relevant environment variables in force (see MEMORY_ENV_VARS)."""

    def env_get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.env:
            if k == key:
                return v
        return default

    def with_(self, **changes: Any) -> "EngineArgs":
        """A copy with some flags changed (``dataclasses.replace``)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFlags:
    args: EngineArgs
    ignored: tuple[str, ...] = ()
    """Real vLLM flags that do not change memory (accepted, not used)."""
    unmodelled: tuple[str, ...] = ()
    """Flags that change memory but that vramplan does not model yet (a warning)."""
    given: tuple[str, ...] = ()
    """The EngineArgs fields the user set explicitly."""
    spans: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Each flag as the user wrote it, in order: (canonical name such as ``--max-model-len``, its tokens)."""


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _json(value: str) -> dict:
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        # vLLM also accepts key=value,key2=value2 for some dict flags
        data = {}
        for part in value.split(","):
            if "=" not in part:
                raise ValueError(value) from None
            k, v = part.split("=", 1)
            try:
                data[k.strip()] = json.loads(v)
            except json.JSONDecodeError:
                data[k.strip()] = v.strip()
    if not isinstance(data, dict):
        raise ValueError(value)
    return data


def _json_object(value: str, flag: str) -> dict:
    """A flag vLLM reads with ``json.loads`` (vLLM v0.33.0 vllm/engine/arg_utils.py:_compute_kwargs, dict fields)."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise FlagError(f"{flag} takes a JSON object, got {value!r} ({exc.msg})",
                        hint=f"""e.g. {flag} '{{"max_position_embeddings": 131072}}' (mind the shell quotes)""") from None
    if not isinstance(data, dict):
        raise FlagError(f"{flag} takes a JSON object, got a JSON {type(data).__name__}",
                        hint=f"""e.g. {flag} '{{"max_position_embeddings": 131072}}'""")
    return data


def _set_dotted(values: dict, dest: str, path: list[str], raw: str) -> None:
    """``--hf-overrides.rope_scaling.factor 4``: vLLM's FlexibleArgumentParser nests dotted keys into the
    flag's JSON object, each value read as JSON when it parses (else kept as text)."""
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    node = values.setdefault(dest, {})
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[path[-1]] = value


def _int_or_auto(value: str) -> int:
    if value.strip().lower() in ("-1", "auto"):
        return -1
    return parse_human_int(value)


def _util(value: str) -> float:
    v = float(value)
    if not 0.0 < v <= 1.0:
        raise FlagError(
            f"--gpu-memory-utilization must be in (0, 1], got {value}",
            hint="it is a fraction of the device's total memory, e.g. 0.9",
        )
    return v


def _sizes(value: str) -> tuple[int, ...]:
    text = value.strip().strip("[]")
    return tuple(int(x) for x in text.replace(",", " ").split())


# flag (dashed, without --) -> (EngineArgs field, converter, takes a value)
_FLAGS: dict[str, tuple[str, Callable[[str], Any], bool]] = {
    "model": ("model", str, True),
    "tensor-parallel-size": ("tensor_parallel_size", int, True),
    "pipeline-parallel-size": ("pipeline_parallel_size", int, True),
    "data-parallel-size": ("data_parallel_size", int, True),
    "enable-expert-parallel": ("enable_expert_parallel", _bool, False),
    "disable-custom-all-reduce": ("disable_custom_all_reduce", _bool, False),
    "max-model-len": ("max_model_len", _int_or_auto, True),
    "max-num-seqs": ("max_num_seqs", parse_human_int, True),
    "max-num-batched-tokens": ("max_num_batched_tokens", parse_human_int, True),
    "gpu-memory-utilization": ("gpu_memory_utilization", _util, True),
    "kv-cache-dtype": ("kv_cache_dtype", str, True),
    "dtype": ("dtype", str, True),
    "quantization": ("quantization", str, True),
    "block-size": ("block_size", int, True),
    "enforce-eager": ("enforce_eager", _bool, False),
    "kv-cache-memory-bytes": ("kv_cache_memory_bytes", parse_human_int, True),
    "kv-cache-memory": ("kv_cache_memory_bytes", parse_human_int, True),
    "num-gpu-blocks-override": ("num_gpu_blocks_override", int, True),
    "enable-prefix-caching": ("enable_prefix_caching", _bool, False),
    "enable-chunked-prefill": ("enable_chunked_prefill", _bool, False),
    "cpu-offload-gb": ("cpu_offload_gb", float, True),
    "limit-mm-per-prompt": ("limit_mm_per_prompt", _json, True),
    "mm-processor-kwargs": ("mm_processor_kwargs", _json, True),
    "mm-processor-cache-gb": ("mm_processor_cache_gb", float, True),
    "mm-encoder-tp-mode": ("mm_encoder_tp_mode", str, True),
    "skip-mm-profiling": ("skip_mm_profiling", _bool, False),
    "video-pruning-rate": ("video_pruning_rate", float, True),
    "disable-hybrid-kv-cache-manager": ("disable_hybrid_kv_cache_manager", _bool, False),
    "mamba-cache-mode": ("mamba_cache_mode", str, True),
    "mamba-ssm-cache-dtype": ("mamba_ssm_cache_dtype", str, True),
    "mamba-block-size": ("mamba_block_size", int, True),
    "async-scheduling": ("async_scheduling", _bool, False),
    "speculative-config": ("speculative_config", _json, True),
    "enable-lora": ("enable_lora", _bool, False),
    "max-loras": ("max_loras", int, True),
    "max-lora-rank": ("max_lora_rank", int, True),
    "performance-mode": ("performance_mode", str, True),
    "api-server-count": ("api_server_count", int, True),
    "cuda-graph-sizes": ("cudagraph_capture_sizes", _sizes, True),
    "max-cudagraph-capture-size": ("max_cudagraph_capture_size", int, True),
    "usage-context": ("usage_context", str, True),
    "enable-extensible-kv-cache": ("enable_extensible_kv_cache", _bool, False),
    "enable-elastic-ep": ("enable_elastic_ep", _bool, False),
    "gdn-prefill-backend": ("gdn_prefill_backend", lambda v: str(v).strip().lower(), True),
    "kv-transfer-config": ("kv_transfer_config", _json, True),
    "hf-overrides": ("hf_overrides", lambda v: _json_object(v, "--hf-overrides"), True),
}
_SHORT = {"-tp": "tensor-parallel-size", "-pp": "pipeline-parallel-size", "-dp": "data-parallel-size",
          "-q": "quantization", "-ep": "enable-expert-parallel"}
# Memory flags vramplan accepts but does not model yet.
_UNMODELLED = {"speculative-config", "enable-lora", "max-loras", "max-lora-rank", "video-pruning-rate"}


@lru_cache(maxsize=None)
def known_vllm_flags() -> frozenset[str]:
    """Every flag any supported vLLM version accepts (dashed, with leading dashes)."""
    path = Path(__file__).resolve().parents[2] / "data" / "vllm_flags.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for flags in data.values():
        names.update(flags)
    return frozenset(names)


def _compilation(args: dict, key: str, value: str) -> None:
    """``-cc.cudagraph_mode=X``, ``--compilation-config '{...}'``, ``-O3``."""
    if key in ("", None):
        try:
            data = _json(value)
        except ValueError:
            raise FlagError(f"--compilation-config takes JSON, got {value!r}",
                            hint='e.g. -cc \'{"cudagraph_mode": "PIECEWISE"}\'') from None
        for k, v in data.items():
            _compilation(args, k, json.dumps(v) if not isinstance(v, str) else v)
        return
    if key == "cudagraph_mode":
        args["cudagraph_mode"] = str(value).strip('"').upper()
    elif key in ("cudagraph_capture_sizes", "cuda_graph_sizes"):
        args["cudagraph_capture_sizes"] = _sizes(value)
    elif key == "max_cudagraph_capture_size":
        args["max_cudagraph_capture_size"] = int(value)
    elif key in ("prefill_cudagraph_capture_token_sizes", "decode_cudagraph_capture_request_sizes"):
        args[key] = _sizes(value)  # vLLM 0.34 vllm/config/compilation.py:CompilationConfig
    elif key in ("max_prefill_cudagraph_capture_tokens", "max_decode_cudagraph_capture_requests",
                 "max_decode_cudagraph_capture_tokens"):
        args[key] = int(value)
    # other compilation options do not change memory


def parse_flags(argv: list[str], *, environ: dict[str, str] | None = None,
                base: EngineArgs | None = None) -> ParsedFlags:
    """Parse vLLM flags (``argv`` after ``vllm serve``) into :class:`EngineArgs`."""
    values: dict[str, Any] = {}
    ignored: list[str] = []
    unmodelled: list[str] = []
    env = dict(environ if environ is not None else os.environ)
    tokens = list(argv)
    # leading KEY=VALUE environment assignments and the `vllm serve` words
    while tokens and "=" in tokens[0] and not tokens[0].startswith("-") and tokens[0].split("=", 1)[0].isupper():
        k, v = tokens.pop(0).split("=", 1)
        env[k] = v
    tokens = _strip_launcher(tokens)
    known = known_vllm_flags()
    i = 0
    positional: list[str] = []
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.startswith("-") or tok == "-":
            positional.append(tok)
            continue
        name, _, inline = tok.partition("=")
        has_inline = "=" in tok
        # -O3 / -O0 (optimisation level): level 0 means eager
        if name.startswith("-O") and not name.startswith("--") and len(name) > 2:
            if name[2:].isdigit() and int(name[2:]) == 0:
                values["enforce_eager"] = True
            continue
        if name.startswith(("-cc.", "--compilation-config.", "--compilation_config.")):
            key = name.split(".", 1)[1]
            val = inline if has_inline else (tokens[i] if i < len(tokens) else "")
            if not has_inline:
                i += 1
            _compilation(values, key, val)
            continue
        if name in ("-cc", "--compilation-config", "--compilation_config"):
            val = inline if has_inline else (tokens[i] if i < len(tokens) else "")
            if not has_inline:
                i += 1
            if val.strip().isdigit():  # -cc 3 is an optimisation level
                continue
            _compilation(values, "", val)
            continue
        if name.startswith(("--hf-overrides.", "--hf_overrides.")):
            path = name.split(".")[1:]
            val = inline if has_inline else (tokens[i] if i < len(tokens) else "")
            if not has_inline:
                i += 1
            if not all(path):
                raise FlagError(f"cannot read {name}", hint="e.g. --hf-overrides.max_position_embeddings 131072")
            _set_dotted(values, "hf_overrides", path, val)
            continue
        long = _SHORT.get(name, name)
        key = long.lstrip("-").replace("_", "-")
        negated = False
        if key.startswith("no-") and key[3:] in _FLAGS:
            key, negated = key[3:], True
        if key in _FLAGS:
            dest, conv, takes_value = _FLAGS[key]
            if takes_value:
                if has_inline:
                    raw = inline
                elif i < len(tokens):
                    raw = tokens[i]
                    i += 1
                else:
                    raise FlagError(f"--{key} needs a value", hint=f"e.g. --{key} VALUE")
            else:
                # booleans: --flag, --no-flag, --flag=true, or --flag false
                if has_inline:
                    raw = inline
                elif i < len(tokens) and tokens[i].lower() in ("true", "false"):
                    raw = tokens[i]
                    i += 1
                else:
                    raw = "false" if negated else "true"
            try:
                got = conv(raw)
                if dest == "hf_overrides" and isinstance(values.get(dest), dict):  # with dotted keys given before
                    got = {**values[dest], **got}
                values[dest] = got
            except FlagError:
                raise
            except (ValueError, TypeError):
                raise FlagError(f"--{key}: cannot read {raw!r}", hint=_hint_for(key)) from None
            if key in _UNMODELLED and got not in (None, False):  # 0 / false: the feature stays off
                unmodelled.append("--" + key)
            continue
        dashed = "--" + key if name.startswith("--") else name
        if dashed in known or name in known:
            ignored.append(dashed)
            # consume its value, if any (a following token that is not a flag)
            if not has_inline and i < len(tokens) and not tokens[i].startswith("-"):
                i += 1
            continue
        close = difflib.get_close_matches(dashed, list(known) + ["--" + k for k in _FLAGS], n=1)
        raise FlagError(f"unknown vLLM flag {name}",
                        hint=f"did you mean {close[0]}?" if close else "check the spelling against `vllm serve --help`")
    if positional:
        if "model" not in values:
            values["model"] = positional[0]
        extra = positional[1:] if "model" not in values or values["model"] == positional[0] else positional
        if extra:
            raise FlagError(f"unexpected argument {extra[0]!r}", hint="only one model can be served")
    mem_env = tuple((k, env[k]) for k in MEMORY_ENV_VARS if k in env)
    args = replace(base or EngineArgs(), **values, env=mem_env)
    _validate(args)
    return ParsedFlags(args=args, ignored=tuple(ignored), unmodelled=tuple(unmodelled), given=tuple(values),
                       spans=_spans(tokens))


# The ways a vLLM server is started, as pasted: `vllm serve`, the module forms of the same CLI and the
# OpenAI server module (vLLM v0.26.0 vllm/entrypoints/cli/main.py:main, vllm/entrypoints/openai/api_server.py).
_MODULES = {"vllm.entrypoints.openai.api_server": 0, "vllm.entrypoints.cli.main": 1, "vllm": 1}


def _strip_launcher(tokens: list[str]) -> list[str]:
    """Drop ``vllm serve`` / ``python -m vllm.entrypoints.openai.api_server`` / ``python3 -m
    vllm.entrypoints.cli.main serve`` from the front of a pasted command."""
    if tokens and os.path.basename(tokens[0]).startswith("python") and tokens[1:2] == ["-m"] and len(tokens) > 2:
        module = tokens[2]
        if module not in _MODULES:
            raise FlagError(f"python -m {module} is not a vLLM server",
                            hint="paste `vllm serve MODEL ...` or `python -m vllm.entrypoints.openai.api_server "
                                 "--model MODEL ...`")
        tokens = tokens[3:]
        if _MODULES[module] and tokens[:1] == ["serve"]:
            tokens = tokens[1:]
        return tokens
    if tokens[:2] == ["vllm", "serve"]:
        return tokens[2:]
    if tokens[:1] in (["serve"], ["vllm"]):
        return tokens[1:]
    return tokens


def _spans(tokens: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each flag of an already parsed command with the tokens it took, walking them as parse_flags does."""
    out: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        start, i = i, i + 1
        if not tok.startswith("-") or tok == "-":
            continue
        name, has_inline = tok.partition("=")[0], "=" in tok
        if name.startswith("-O") and not name.startswith("--") and len(name) > 2:
            out.append(("-O", (tok,)))
            continue
        if name.startswith(("-cc", "--compilation-config", "--compilation_config")):
            i += 0 if has_inline else 1
            out.append(("--compilation-config", tuple(tokens[start:i])))
            continue
        key = _SHORT.get(name, name).lstrip("-").replace("_", "-")
        if key.startswith("no-") and key[3:] in _FLAGS:
            key = key[3:]
        if key in _FLAGS:
            if not has_inline and (_FLAGS[key][2] or (i < len(tokens) and tokens[i].lower() in ("true", "false"))):
                i += 1
        elif not has_inline and i < len(tokens) and not tokens[i].startswith("-"):
            i += 1
        out.append(("--" + key if name.startswith("--") or key in _FLAGS else name, tuple(tokens[start:i])))
    return tuple(out)


def parse_serve_line(line: str, **kw: Any) -> ParsedFlags:
    """Parse a whole pasted ``vllm serve ...`` command line (shell quoting, backslash newlines)."""
    text = line.replace("\\\n", " ")
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise FlagError(f"cannot read the command line: {exc}", hint="check the quotes") from None
    return parse_flags(tokens, **kw)


def _hint_for(key: str) -> str:
    examples = {
        "max-model-len": "an integer like 32768, 32k or auto",
        "limit-mm-per-prompt": "JSON like '{\"image\": 2, \"video\": 0}'",
        "mm-processor-kwargs": "JSON like '{\"max_pixels\": 1003520}'",
        "kv-cache-memory-bytes": "bytes, e.g. 20G or 21474836480",
    }
    return f"expected {examples.get(key, 'a value of the right type')}"


def _validate(args: EngineArgs) -> None:
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if getattr(args, name) < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be at least 1", hint="use 1 for no parallelism")
    for name in ("max_num_seqs", "max_num_batched_tokens", "block_size", "num_gpu_blocks_override"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be positive, got {v}")
    if args.max_model_len is not None and args.max_model_len != -1 and args.max_model_len < 1:
        raise FlagError(f"--max-model-len must be positive or auto, got {args.max_model_len}")
    if args.kv_cache_memory_bytes is not None and args.kv_cache_memory_bytes <= 0:
        raise FlagError("--kv-cache-memory-bytes must be positive")
    if args.usage_context not in ("serve", "llm"):
        raise FlagError(f"--usage-context is serve or llm, not {args.usage_context!r}")
    if args.video_pruning_rate is not None and not 0 <= args.video_pruning_rate < 1:
        # vLLM v0.33.0 vllm/config/multimodal.py:MultiModalConfig.video_pruning_rate (Field(ge=0.0, lt=1.0))
        raise FlagError(f"--video-pruning-rate must be in [0, 1), got {args.video_pruning_rate}",
                        hint="it is the fraction of video tokens to prune, e.g. --video-pruning-rate 0.5")
    if args.limit_mm_per_prompt:
        for k, v in args.limit_mm_per_prompt.items():
            if isinstance(v, dict):
                v = v.get("count", 1)
            if not isinstance(v, int) or v < 0:
                raise FlagError(f"--limit-mm-per-prompt: {k} must be a count >= 0, got {v!r}")


@lru_cache(maxsize=None)
def engine_arg_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(EngineArgs))


@lru_cache(maxsize=None)
def _arg_name_set() -> frozenset[str]:
    return frozenset(engine_arg_names())


def unmodelled_fields() -> tuple[tuple[str, str], ...]:
    """(flag, EngineArgs field) of the memory flags vramplan accepts but does not model yet."""
    return tuple(("--" + flag, _FLAGS[flag][0]) for flag in sorted(_UNMODELLED))


@lru_cache(maxsize=None)
def _by_dest() -> dict[str, tuple[str, Callable[[str], Any]]]:
    """EngineArgs field -> (its flag's first spelling, the flag's converter)."""
    return {dest: (flag, conv) for flag, (dest, conv, _) in reversed(list(_FLAGS.items()))}


def _env_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """``env=`` of the Python API: None, a mapping, or (name, value) pairs -> the sorted pairs EngineArgs keeps."""
    if value is None:
        return ()
    try:
        items = value.items() if hasattr(value, "items") else value
        pairs = tuple(sorted((str(k), str(v)) for k, v in items))
    except (TypeError, ValueError):
        raise FlagError(f"env: cannot read {value!r}",
                        hint='give a mapping such as {"VLLM_USE_V2_MODEL_RUNNER": "1"}') from None
    return pairs


def args_with(base: EngineArgs | None, **kwargs: Any) -> EngineArgs:
    """``base`` (None: vLLM's defaults) with engine arguments given by their vLLM field names (the Python API's
    keywords), read and checked exactly as the same flags on the command line: ``max_model_len="32k"``
    works, and ``gpu_memory_utilization=0`` is refused with the CLI's own line."""
    names = _arg_name_set()
    unknown = sorted(k for k in kwargs if k not in names)
    if unknown:
        raise FlagError(f"unknown engine argument(s): {', '.join(unknown)}",
                        hint="use vLLM's names, e.g. max_model_len, tensor_parallel_size")
    by_dest = _by_dest()
    values: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name == "env":
            values[name] = _env_pairs(value)
            continue
        flag, conv = by_dest.get(name, (None, None))
        if flag is None or value is None or isinstance(value, (dict, list, tuple)):
            values[name] = tuple(value) if isinstance(value, list) else value
            continue
        if type(value) is int and conv in (int, parse_human_int, _int_or_auto):  # as typed: nothing to read
            values[name] = value
            continue
        if type(value) in (int, float) and conv in (float, _util):
            values[name] = conv(value)  # _util checks the range, with the CLI's words
            continue
        if isinstance(value, bool) and conv is not _bool:
            raise FlagError(f"--{flag}: cannot read {value!r}", hint=_hint_for(flag))
        raw = value if isinstance(value, str) else (json.dumps(value) if isinstance(value, bool) else str(value))
        try:
            values[name] = conv(raw)
        except FlagError:
            raise
        except (ValueError, TypeError):
            raise FlagError(f"--{flag}: cannot read {raw!r}", hint=_hint_for(flag)) from None
    args = EngineArgs(**values) if base is None else replace(base, **values)
    _validate(args)
    return args
