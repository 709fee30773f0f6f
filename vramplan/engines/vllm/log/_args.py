"""Engine flags recovered from a log: the 'non-default args: {...}' dict, the engine config dump,
and ``vllm serve ...`` command lines quoted in the log. All tolerant of truncation."""

from __future__ import annotations

import ast
import json
import re
import shlex

from ....errors import InputError
from ....units import parse_human_int

__all__ = ["parse_pylike_dict", "parse_config_dump", "parse_command", "KNOWN_FLAGS", "normalise_arg_value"]

_OPEN = {"[": "]", "{": "}", "(": ")", "<": ">"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_MAX_TEXT = 200_000

# vLLM engine flags (vLLM v0.26.0 vllm/engine/arg_utils.py:EngineArgs) the planner cares about; used to
# expand argparse abbreviations ('--tensor_parallel 2', '--kv-cache-memory=N') and to type values.
KNOWN_FLAGS: dict[str, type] = {
    "model": str, "tokenizer": str, "dtype": str, "quantization": str, "kv_cache_dtype": str,
    "max_model_len": int, "max_num_seqs": int, "max_num_batched_tokens": int,
    "gpu_memory_utilization": float, "tensor_parallel_size": int, "pipeline_parallel_size": int,
    "data_parallel_size": int, "decode_context_parallel_size": int, "enable_expert_parallel": bool,
    "block_size": int, "enforce_eager": bool, "enable_prefix_caching": bool, "enable_chunked_prefill": bool,
    "kv_cache_memory_bytes": int, "num_gpu_blocks_override": int, "cpu_offload_gb": float, "swap_space": float,
    "limit_mm_per_prompt": str, "mm_processor_kwargs": str, "mm_processor_cache_gb": float,
    "mm_encoder_tp_mode": str, "skip_mm_profiling": bool, "max_cudagraph_capture_size": int,
    "compilation_config": str, "speculative_config": str, "enable_lora": bool, "max_loras": int,
    "max_lora_rank": int, "load_format": str, "trust_remote_code": bool, "served_model_name": str,
    "disable_hybrid_kv_cache_manager": bool, "async_scheduling": bool, "mamba_cache_mode": str,
    "max_num_partial_prefills": int, "seed": int, "disable_custom_all_reduce": bool,
    "calculate_kv_scales": bool, "enable_sleep_mode": bool, "performance_mode": str,
}
_INT_FLAGS = {k for k, t in KNOWN_FLAGS.items() if t is int}
_FLOAT_FLAGS = {k for k, t in KNOWN_FLAGS.items() if t is float}
_SHORT = {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size", "dp": "data_parallel_size",
          "q": "quantization", "O": "compilation_config", "cc": "compilation_config", "ep": "enable_expert_parallel"}
_BOOL_WORDS = {"true": True, "false": False, "none": None}


_SPECIAL = re.compile(r"[\\'\"\[\]{}()<>,:]")


def _unquoted(s: str, start: int = 0):
    """(index, char) of the brackets and separators of ``s`` that stand outside quoted strings."""
    quote: str | None = None
    skip_until = -1
    for m in _SPECIAL.finditer(s, start):
        i = m.start()
        if i < skip_until:
            continue
        c = s[i]
        if quote:
            if c == "\\":
                skip_until = i + 2
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        else:
            yield i, c


def _split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` where not inside quotes or brackets. Unbalanced input gives what it can."""
    out: list[str] = []
    depth: list[str] = []
    start = 0
    n = len(s)
    for i, c in _unquoted(s):
        if c in _OPEN:
            if c != "<" or (i + 1 < n and s[i + 1].isalpha()):  # '<Enum.X: 3>' but not 'a < b'
                depth.append(_OPEN[c])
        elif c in _CLOSE:
            if depth and depth[-1] == c:
                depth.pop()
        elif c == sep and not depth:
            out.append(s[start:i])
            start = i + 1
    out.append(s[start:])
    return out


def _matching_close(s: str, open_at: int) -> int | None:
    """Index of the bracket closing ``s[open_at]``, or None if the text ends first."""
    depth: list[str] = []
    for i, c in _unquoted(s, open_at):
        if c in "[{(":
            depth.append(_OPEN[c])
        elif c in "]})":
            if depth and depth[-1] == c:
                depth.pop()
                if not depth:
                    return i
    return None


_SIMPLE_STR = re.compile(r"'([^'\\]*)'|\"([^\"\\]*)\"")
_SIMPLE = {"True": True, "False": False, "None": None}


def _jsonable(v: object, depth: int = 0) -> object:
    """Values as JSON can hold them (watch writes events as JSON lines): tuples/sets become lists, the rest str."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if depth > 20:
        return repr(v)[:200]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted((_jsonable(x, depth + 1) for x in v), key=repr)
    return repr(v)[:200]


def _literal(text: str) -> tuple[bool, object]:
    text = text.strip()
    if not text or len(text) > 20_000:
        return False, None
    # fast paths for the common scalar values (ast.literal_eval compiles every call)
    if text in _SIMPLE:
        return True, _SIMPLE[text]
    m = _SIMPLE_STR.fullmatch(text)
    if m:
        return True, m.group(1) if m.group(1) is not None else m.group(2)
    if re.fullmatch(r"-?\d{1,18}", text):
        return True, int(text)
    if text[0] == "<":
        return False, None
    try:
        return True, _jsonable(ast.literal_eval(text))
    except Exception:  # SyntaxError, ValueError, RecursionError, MemoryError, ...
        return False, None


def _enum_name(text: str) -> str:
    m = re.fullmatch(r"<\w+\.(\w+):.*>", text.strip(), re.S)
    return m.group(1) if m else text.strip()


def parse_pylike_dict(text: str) -> dict:
    """Parse a Python-literal dict as vLLM logs it ('non-default args: {...}'), tolerating truncation.

    Items whose value is not a literal (``<CUDAGraphMode.FULL: 2>``, ``LoadFormat.AUTO``) keep the raw
    text (enum reprs reduced to the member name). A truncated last item is dropped.
    """
    text = text[:_MAX_TEXT]
    start = text.find("{")
    if start < 0:
        return {}
    ok, value = _literal(text[start:])
    if ok and isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    end = _matching_close(text, start)
    body = text[start + 1:end] if end is not None else text[start + 1:]
    truncated = end is None
    items = _split_top(body, ",")
    out: dict = {}
    for idx, item in enumerate(items):
        if not item.strip():
            continue
        kv = _split_top(item, ":")
        if len(kv) < 2:
            continue
        key_ok, key = _literal(kv[0])
        if not key_ok or not isinstance(key, (str, int, float, bool)) or key is None:
            continue
        raw_val = ":".join(kv[1:]).strip()
        val_ok, val = _literal(raw_val)
        last = idx == len(items) - 1
        if not val_ok:
            if last and truncated:
                continue
            val = _enum_name(raw_val)
        out[str(key)] = val
    return out


def normalise_arg_value(name: str, value: object) -> object:
    """Type a flag value as vLLM would read it (ints for int flags, '32K' -> 32768, 'true' -> True)."""
    if isinstance(value, str):
        v = value.strip()
        low = v.lower()
        if low in _BOOL_WORDS:
            return _BOOL_WORDS[low]
        if name in _INT_FLAGS:
            if low in ("auto", "-1"):
                return -1 if low == "-1" else "auto"
            try:
                return parse_human_int(v)
            except (InputError, ValueError, OverflowError):
                return v
        if name in _FLOAT_FLAGS:
            try:
                return float(v)
            except ValueError:
                return v
        if v[:1] in "{[":
            try:
                return _jsonable(json.loads(v))
            except Exception:
                ok, lit = _literal(v)
                return lit if ok else v
        if re.fullmatch(r"-?\d{1,18}", v):
            return int(v)
        if re.fullmatch(r"-?\d{1,18}\.\d{1,18}", v):
            return float(v)
        return v
    return value


_CONFIG_KEYS = {"max_seq_len": "max_model_len", "device_config": "device"}


def parse_config_dump(text: str) -> dict:
    """Parse "... with config: model='x', dtype=torch.bfloat16, max_seq_len=4096, ..." (any V0/V1 version).

    Returns vLLM flag names: max_seq_len becomes max_model_len, dtype loses 'torch.', the nested
    compilation_config contributes cudagraph_mode and max_cudagraph_capture_size.
    """
    text = text[:_MAX_TEXT]
    i = text.find("with config:")
    body = text[i + len("with config:"):] if i >= 0 else text
    out: dict = {}
    for item in _split_top(body, ","):
        item = item.strip()
        if "=" not in item:
            continue
        key, _, raw = item.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", key):
            continue
        raw = raw.strip()
        if raw.endswith("[...]"):
            raw = raw[:-5].strip()
        if key == "compilation_config":
            m = re.search(r"'cudagraph_mode': <\w+\.(\w+)", raw) or re.search(r"'cudagraph_mode': '?(\w+)", raw)
            if m:
                out["cudagraph_mode"] = m.group(1)
            m = re.search(r"'max_cudagraph_capture_size': (\d{1,9})\b", raw)
            if m:
                out["max_cudagraph_capture_size"] = int(m.group(1))
            continue
        if raw[:1] in "'\"":
            ok, val = _literal(raw)
            value: object = val if ok else raw.strip("'\"")
        elif raw in ("True", "False", "None"):
            value = {"True": True, "False": False, "None": None}[raw]
        elif re.fullmatch(r"-?\d{1,18}", raw):
            value = int(raw)
        elif re.fullmatch(r"-?\d{1,18}\.\d{1,18}", raw):
            value = float(raw)
        elif "(" in raw or "{" in raw or "<" in raw:
            continue  # nested config objects: not flags
        else:
            value = raw
            if key == "dtype" and raw.startswith("torch."):
                value = raw[len("torch."):]
            elif raw.startswith("LoadFormat."):
                value = raw[len("LoadFormat."):].lower()
        out[_CONFIG_KEYS.get(key, key)] = value
    return out


def _flag_name(token: str) -> str | None:
    name = token.lstrip("-").replace("-", "_")
    if not name or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,80}", name):
        return None
    if name in _SHORT:
        return _SHORT[name]
    if name in KNOWN_FLAGS:
        return name
    if name.startswith("no_") and name[3:] in KNOWN_FLAGS:
        return name
    matches = [k for k in KNOWN_FLAGS if k.startswith(name)]
    if len(matches) == 1 and len(name) >= 6:  # argparse abbreviations
        return matches[0]
    return name


def parse_command(text: str) -> tuple[dict, dict]:
    """Parse a ``vllm serve MODEL --flag v ...`` / ``python -m vllm.entrypoints... --model M`` command.

    Returns (args, env): flags under vLLM's names, typed; leading ``VAR=value`` words as env.
    """
    text = text[:20_000].replace("\\\n", " ").replace(" \\ ", " ")
    if text.rstrip().endswith("\\"):
        text = text.rstrip()[:-1]
    try:
        toks = shlex.split(text, comments=False, posix=True)
    except ValueError:
        toks = text.split()
    args: dict = {}
    env: dict = {}
    i = 0
    # leading env assignments and the program
    while i < len(toks):
        t = toks[i]
        m = re.fullmatch(r"([A-Z][A-Z0-9_]{1,80})=(.*)", t)
        if m:
            env[m.group(1)] = m.group(2)
            i += 1
            continue
        if t == "serve" or t.endswith("vllm.entrypoints.openai.api_server") or t.endswith("vllm.entrypoints.api_server"):
            i += 1
            if t == "serve" and i < len(toks) and not toks[i].startswith("-"):
                args["model"] = toks[i]
                i += 1
            break
        i += 1
    while i < len(toks):
        t = toks[i]
        i += 1
        if not t.startswith("-") or t in ("-", "--"):
            continue
        value: object
        if "=" in t:
            flag, _, raw = t.partition("=")
            value = raw
        else:
            flag = t
            nxt = toks[i] if i < len(toks) else None
            if nxt is not None and (not nxt.startswith("-") or re.fullmatch(r"-\d+(?:\.\d+)?", nxt)):
                value = nxt
                i += 1
            else:
                value = True
        name = _flag_name(flag)
        if name is None:
            continue
        if name.startswith("no_") and name[3:] in KNOWN_FLAGS and value is True:
            args[name[3:]] = False
            continue
        args[name] = normalise_arg_value(name, value)
    return args, env
