"""SGLang's server flags, with SGLang's names, and the parser of a pasted ``python -m sglang.launch_server`` line.

Only the flags that move memory are read; the others are listed as ignored. Defaults are ``None`` where
SGLang resolves them at startup (``ServerArgs`` fields default ``None`` and are filled by
``_handle_gpu_memory_settings`` in 0.5.17 ``srt/server_args.py``, ``memory_hook.py:handle_gpu_memory_settings``
in 0.5.23); :mod:`.defaults` resolves them the way SGLang does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ...errors import FlagError, InvalidConfig

__all__ = ["SGLangArgs", "ParsedSGLang", "parse_sglang_flags", "is_sglang_command", "FLAG_NAMES", "server_args_flags", "check_sglang_args"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangArgs:
    """The memory-relevant ``ServerArgs`` fields (sglang 0.5.17 srt/server_args.py:ServerArgs,
    0.5.23 srt/arg_groups/fields/*.py), same names and defaults."""

    model_path: str | None = None
    tp_size: int = 1
    pp_size: int = 1
    dp_size: int = 1
    ep_size: int = 1
    mem_fraction_static: float | None = None
    max_total_tokens: int | None = None
    context_length: int | None = None
    chunked_prefill_size: int | None = None
    max_prefill_tokens: int = 16384
    max_running_requests: int | None = None
    page_size: int | None = None
    kv_cache_dtype: str = "auto"
    dtype: str = "auto"
    quantization: str | None = None
    cuda_graph_max_bs_decode: int | None = None
    """``--cuda-graph-max-bs-decode`` (0.5.17 also the deprecated ``--cuda-graph-max-bs``)."""
    cuda_graph_max_bs_prefill: int | None = None
    cuda_graph_bs_decode: tuple[int, ...] | None = None
    disable_cuda_graph: bool = False
    disable_prefill_cuda_graph: bool = False
    disable_decode_cuda_graph: bool = False
    cuda_graph_backend_prefill: str | None = None
    cuda_graph_backend_decode: str | None = None
    disable_cuda_graph_padding: bool = False
    attention_backend: str | None = None
    dsa_prefill_backend: str | None = None
    dsa_decode_backend: str | None = None
    enable_dp_attention: bool = False
    language_only: bool = False
    disable_radix_cache: bool = False
    swa_full_tokens_ratio: float = 0.8
    mamba_full_memory_ratio: float = 0.9
    disable_hybrid_swa_memory: bool = False
    disable_overlap_schedule: bool = False
    mamba_radix_cache_strategy: str = "auto"
    """``--mamba-radix-cache-strategy`` (0.5.17 also ``--mamba-scheduler-strategy``): auto, no_buffer, extra_buffer,
    extra_buffer_lazy."""
    max_mamba_cache_size: int | None = None
    linear_attn_backend: str = "triton"
    skip_tokenizer_init: bool = False
    """No tokenizer, so no multimodal processor and no CUDA-IPC feature pool."""
    mm_feature_transport: str | None = None
    """``--mm-feature-transport`` (cpu, cuda_ipc, cuda_vmm; None = SGLang's auto policy, per release)."""
    tokenizer_worker_num: int = 1
    """``--disable-overlap-schedule``: one prefill chunk in flight instead of two (the SWA request cap)."""
    load_format: str = "auto"
    env: tuple[tuple[str, str], ...] = ()
    """Environment variables written before the command (``SGLANG_...=1 python -m ...``)."""

    def with_(self, **kw) -> "SGLangArgs":
        return replace(self, **kw)

    def env_value(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.env:
            if k == name:
                return v
        return default


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSGLang:
    args: SGLangArgs
    ignored: tuple[str, ...] = ()
    """Flags read but not modelled (they do not change memory, or not yet)."""
    unmodelled: tuple[str, ...] = field(default=())
    """Flags that change memory in ways vramplan does not model yet (a warning on the plan)."""


_INT = {"tp_size", "pp_size", "dp_size", "ep_size", "max_total_tokens", "context_length", "chunked_prefill_size",
        "max_prefill_tokens", "max_running_requests", "page_size", "cuda_graph_max_bs_decode",
        "cuda_graph_max_bs_prefill", "max_mamba_cache_size", "tokenizer_worker_num"}
_FLOAT = {"mem_fraction_static", "swa_full_tokens_ratio", "mamba_full_memory_ratio"}
_BOOL = {"disable_cuda_graph", "disable_prefill_cuda_graph", "disable_decode_cuda_graph", "disable_cuda_graph_padding",
         "enable_dp_attention", "language_only", "disable_radix_cache", "disable_hybrid_swa_memory",
         "disable_overlap_schedule", "skip_tokenizer_init"}
_STR = {"model_path", "kv_cache_dtype", "dtype", "quantization", "cuda_graph_backend_prefill",
        "cuda_graph_backend_decode", "attention_backend", "load_format",
        "dsa_prefill_backend", "dsa_decode_backend", "mamba_radix_cache_strategy", "linear_attn_backend",
        "mm_feature_transport"}

# SGLang's spellings (srt/server_args.py add_cli_args; aliases as SGLang declares them)
_ALIASES = {
    "--model-path": "model_path", "--model": "model_path",
    "--cuda-graph-max-bs": "cuda_graph_max_bs_decode",  # 0.5.17's alias (_LEGACY_ALIASES: 0.5.23 refuses it)
    "--tp-size": "tp_size", "--tp": "tp_size", "--tensor-parallel-size": "tp_size",
    "--pp-size": "pp_size", "--pipeline-parallel-size": "pp_size",
    "--dp-size": "dp_size", "--dp": "dp_size", "--data-parallel-size": "dp_size",
    "--ep-size": "ep_size", "--ep": "ep_size", "--expert-parallel-size": "ep_size",
    "--mamba-scheduler-strategy": "mamba_radix_cache_strategy",
}
for _f in sorted(_INT | _FLOAT | _BOOL | _STR):
    _ALIASES.setdefault("--" + _f.replace("_", "-"), _f)
FLAG_NAMES = tuple(sorted(_ALIASES))

# flags that change memory in ways not modelled: the plan warns
_UNMODELLED = {"--speculative-algorithm", "--lora-paths", "--enable-lora", "--cpu-offload-gb",
               "--enable-hierarchical-cache", "--enable-two-batch-overlap", "--moe-a2a-backend",
               "--enable-memory-saver", "--enable-symm-mem", "--dcp-size", "--attn-cp-size",
               "--disaggregation-mode",
               # DSA: HiSparse scales the indexer by host_to_device_ratio; the layer split keeps ceil(L / cp) + 1
               # layers (pool_configurator.py:_compute_dsa_indexer_cell_size, get_glm_dsa_layer_split_effective_num_layers)
               "--enable-hisparse", "--enable-dsa-cache-layer-split"}
# store_true flags SGLang has that take no value (so the parser does not swallow the next token)
_OTHER_BOOL = {"--trust-remote-code", "--enable-metrics", "--disable-overlap-schedule", "--enable-torch-compile",
               "--skip-server-warmup", "--enable-mixed-chunk", "--log-requests", "--disable-custom-all-reduce",
               "--enable-lora", "--enable-hierarchical-cache", "--enable-two-batch-overlap", "--enable-memory-saver",
               "--enable-symm-mem", "--enable-cache-report", "--skip-tokenizer-init", "--is-embedding",
               "--enable-multimodal", "--show-time-cost", "--enable-eplb", "--enable-deterministic-inference",
               "--enable-hisparse", "--enable-dsa-cache-layer-split"}


# vLLM's names for what SGLang calls otherwise: refused with SGLang's name (SGLang's argparse would refuse them too)
_VLLM_NAMES = {"--max-model-len": "--context-length", "--gpu-memory-utilization": "--mem-fraction-static",
               "--max-num-seqs": "--max-running-requests", "--max-num-batched-tokens": "--chunked-prefill-size",
               "--enforce-eager": "--disable-cuda-graph", "-tp": "--tp-size", "-pp": "--pp-size",
               "--block-size": "--page-size", "--kv-cache-memory-bytes": "--max-total-tokens"}


def is_sglang_command(tokens: list[str]) -> bool:
    """True for a pasted SGLang launch line (``python -m sglang.launch_server ...``, ``sglang serve ...``)."""
    toks = [t for t in tokens if "=" not in t or t.startswith("-")]
    joined = " ".join(toks[:4])
    return "sglang.launch_server" in joined or joined.startswith("sglang serve") or " sglang serve" in joined


def _strip_command(tokens: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    env: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens) and "=" in tokens[i] and not tokens[i].startswith("-") and tokens[i].split("=")[0].isupper():
        k, v = tokens[i].split("=", 1)
        env.append((k, v))
        i += 1
    rest = tokens[i:]
    if rest and rest[0] in ("env",):
        rest = rest[1:]
    if len(rest) >= 3 and rest[0].startswith("python") and rest[1] == "-m" and rest[2].startswith("sglang"):
        rest = rest[3:]
    elif len(rest) >= 2 and rest[0].endswith("sglang") and rest[1] == "serve":
        rest = rest[2:]
    return rest, env


def _value(flag: str, name: str, raw: str):
    try:
        if name in _INT:
            return int(raw)
        if name in _FLOAT:
            return float(raw)
    except ValueError:
        kind = "an integer" if name in _INT else "a number"
        raise FlagError(f"{flag} expects {kind}, got {raw!r}", hint=f"e.g. {flag} {'8192' if name in _INT else '0.85'}"
                        ) from None
    return raw


# Deprecated aliases 0.5.17 still accepts and 0.5.23 does not, with 0.5.23's argparse error (prepare_server_args:
# ArgumentParser(prog="sglang serve").parse_args) and what to write instead.
_LEGACY_ALIASES: dict[str, tuple[str, str]] = {
    # 0.5.17: alias of --cuda-graph-max-bs-decode; 0.5.23: a prefix of two options
    "--cuda-graph-max-bs": ("ambiguous option: --cuda-graph-max-bs could match --cuda-graph-max-bs-decode, "
                            "--cuda-graph-max-bs-prefill",
                            "this SGLang release has no --cuda-graph-max-bs: use --cuda-graph-max-bs-decode"),
    # 0.5.17 server_args.py: deprecated alias of --mamba-radix-cache-strategy; 0.5.23: no such option
    "--mamba-scheduler-strategy": ("unrecognized arguments: --mamba-scheduler-strategy",
                                   "this SGLang release names it --mamba-radix-cache-strategy"),
}


def parse_sglang_flags(tokens: list[str], *, base: SGLangArgs | None = None, legacy_aliases: bool = True
                       ) -> ParsedSGLang:
    """Read SGLang flags (and an optional pasted launch line) into :class:`SGLangArgs`.

    ``legacy_aliases``: whether the release still accepts the deprecated aliases of ``_LEGACY_ALIASES`` (0.5.17
    yes; 0.5.23 no: its argparse refuses them).
    """
    rest, env = _strip_command(list(tokens))
    values: dict = {}
    ignored: list[str] = []
    unmodelled: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(rest):
        tok = rest[i]
        if not tok.startswith("-"):
            positional.append(tok)
            i += 1
            continue
        flag, eq, inline = tok.partition("=")
        if flag in _VLLM_NAMES:
            raise FlagError(f"{flag} is vLLM's flag, not SGLang's", hint=f"SGLang's is {_VLLM_NAMES[flag]}")
        name = _ALIASES.get(flag)
        if flag in _LEGACY_ALIASES and not legacy_aliases:
            error, hint = _LEGACY_ALIASES[flag]
            raise InvalidConfig(f"sglang serve: error: {error}", hint=hint)
        if flag == "--cuda-graph-bs" or flag == "--cuda-graph-bs-decode":
            j = i + 1
            sizes = []
            while j < len(rest) and not rest[j].startswith("-"):
                sizes.append(int(rest[j]) if rest[j].isdigit() else 0)
                j += 1
            if not sizes or 0 in sizes:
                raise FlagError(f"{flag} expects positive batch sizes", hint=f"e.g. {flag} 1 2 4 8")
            values["cuda_graph_bs_decode"] = tuple(sizes)
            i = j
            continue
        if name is None:
            takes_value = not eq and flag not in _OTHER_BOOL and i + 1 < len(rest) and not rest[i + 1].startswith("--")
            (unmodelled if flag in _UNMODELLED else ignored).append(flag)
            i += 1 + (1 if takes_value else 0)
            continue
        if name in _BOOL:
            values[name] = True if not eq else inline.lower() in ("1", "true", "yes")
            i += 1
            continue
        if eq:
            raw = inline
            i += 1
        else:
            if i + 1 >= len(rest):
                raise FlagError(f"{flag} needs a value", hint=f"e.g. {flag} 8192")
            raw = rest[i + 1]
            i += 2
        values[name] = _value(flag, name, raw)
    if positional and "model_path" not in values:
        values["model_path"] = positional[0]
    args = replace(base or SGLangArgs(), **values)
    if env:
        args = replace(args, env=tuple(env))
    _check(args)
    return ParsedSGLang(args=args, ignored=tuple(ignored), unmodelled=tuple(unmodelled))


def check_sglang_args(a: SGLangArgs) -> None:
    """The checks the flag parser makes, for arguments given another way (the API's keyword arguments)."""
    try:
        _check(a)
    except TypeError:
        bad = [f.name for f in fields(SGLangArgs) if f.name in _INT | _FLOAT
               and getattr(a, f.name) is not None and not isinstance(getattr(a, f.name), (int, float))]
        raise FlagError(f"server argument(s) of the wrong type: {', '.join(bad) or 'see the values given'}",
                        hint="give numbers, e.g. mem_fraction_static=0.85, context_length=32768") from None


def _check(a: SGLangArgs) -> None:
    for name in ("tp_size", "pp_size", "dp_size", "ep_size", "tokenizer_worker_num"):
        if getattr(a, name) < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be at least 1", hint="give a positive size")
    if a.mem_fraction_static is not None and not 0 < a.mem_fraction_static <= 1:
        raise FlagError(f"--mem-fraction-static must be in (0, 1], got {a.mem_fraction_static}",
                        hint="e.g. --mem-fraction-static 0.85")
    for name in ("max_total_tokens", "context_length", "max_running_requests", "max_mamba_cache_size", "page_size", "cuda_graph_max_bs_decode",
                 "cuda_graph_max_bs_prefill"):
        v = getattr(a, name)
        if v is not None and v < 1:
            raise FlagError(f"--{name.replace('_', '-')} must be positive, got {v}", hint="give a positive integer")
    if a.mm_feature_transport not in _MM_TRANSPORTS:
        # sglang 0.5.17 ServerArgs.mm_feature_transport: Literal["cpu", "cuda_ipc"]; 0.5.23 adds cuda_vmm
        raise FlagError(f"--mm-feature-transport {a.mm_feature_transport!r} is not one SGLang accepts",
                        hint="one of: " + ", ".join(t for t in _MM_TRANSPORTS if t))
    if a.mamba_radix_cache_strategy not in _MAMBA_STRATEGIES:
        raise FlagError(f"--mamba-radix-cache-strategy {a.mamba_radix_cache_strategy!r} is not one SGLang accepts",
                        hint="one of: " + ", ".join(_MAMBA_STRATEGIES))
    if a.kv_cache_dtype in _KV_NOT_MODELLED:
        raise FlagError(f"--kv-cache-dtype {a.kv_cache_dtype} (scaled block formats) is not modelled for SGLang yet",
                        hint="one of: " + ", ".join(_KV_DTYPES))
    if a.kv_cache_dtype not in _KV_DTYPES:
        raise FlagError(f"--kv-cache-dtype {a.kv_cache_dtype!r} is not one SGLang accepts",
                        hint="one of: " + ", ".join(_KV_DTYPES))


# sglang 0.5.23 srt/arg_groups/fields/model.py kv_cache_dtype choices: those with one element size are modelled
_MM_TRANSPORTS = (None, "cpu", "cuda_ipc", "cuda_vmm")
_KV_DTYPES = ("auto", "fp8_e5m2", "fp8_e4m3", "bf16", "bfloat16")
# sglang 0.5.17 / 0.5.23 MAMBA_RADIX_CACHE_STRATEGY_CHOICES
_MAMBA_STRATEGIES = ("auto", "no_buffer", "extra_buffer", "extra_buffer_lazy")
_KV_NOT_MODELLED = ("mxfp8", "nvfp4", "fp4_e2m1", "fp4_mx_block16")

SGLANG_FIELDS = {f.name for f in fields(SGLangArgs)}


def server_args_flags(args: dict) -> list[str]:
    """SGLang's command-line flags for ``ServerArgs`` field values (its own names): ``True`` is a bare store_true
    flag, ``False`` and ``None`` are left out, anything else is ``--name value``."""
    out: list[str] = []
    for key, value in args.items():
        if value is None or value is False:
            continue
        out.append("--" + str(key).replace("_", "-"))
        if value is not True:
            out.append(str(value))
    return out
