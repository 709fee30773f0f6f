"""The measured startups the accuracy benchmark compares against, mapped to vramplan inputs.

Three sources:
- ``data/device_v026`` and ``data/truth``: our own vLLM 0.26 runs (dummy weights) on lent H100/H200s;
  their model ids are catalog ids and their flags are complete.
- ``data/public``: real startups from public reports of many vLLM versions. Only cases whose
  model is in the catalog (or shape-identical to a catalog model, said below) are mapped;
  forks and plugins other than vllm-ascend are left out (they feed the log reader only).

Each public mapping states the catalog model, the device, the flags the report gives, and
any assumption. Nothing here is tuned to a result: the flags are the report's, and the
rest are vLLM's defaults for that version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@dataclass
class Case:
    id: str
    source: str
    """``device`` (our runs) or ``public``."""
    model: str
    device: str | None
    device_memory_gib: float | None
    count: int
    vllm_version: str
    version_note: str
    flags: dict
    env: dict = field(default_factory=dict)
    logged: dict = field(default_factory=dict)
    """Figures vLLM logged: weights_gib, activation_gib, non_torch_gib, kv_cache_gib, kv_cache_tokens,
    cudagraph_estimate_gib, cudagraph_actual_gib, num_gpu_blocks, error_kind."""
    used_by_others_gib: float = 0.0
    note: str = ""
    usage_context: str = "serve"
    era: str = "modelled"
    """``modelled``: a vLLM version vramplan has rules for (0.6.0-0.6.4 V0, >= 0.19); ``older``: a release
    between them, planned with the v0.19 rules and reported apart."""
    scope: str = "all"
    error_kind_from_report: str | None = None
    """The failure a report names when its (cut) log excerpt stops before the exception."""
    """``weights``: the report lacks the flags or the device needed for anything but the weights."""


# public case id -> mapping (catalog model, device, flags from the report, vLLM version used, note)
PUBLIC_MAP: dict[str, dict] = {
    "deepseek-v2-lite-4xl4-pp-pr20665": dict(era="older", 
        model="deepseek-ai/DeepSeek-V2-Lite", device="l4", count=4, version="0.9.2",
        flags={"max_model_len": 1024, "pipeline_parallel_size": 2, "tensor_parallel_size": 2, "trust": True},
        note="dev build ~v0.9.2 (between the spans: the v0.10 rules stand in); PP2xTP2 assumed from the 4 ranks"),
    "gpt-oss-120b-h100-negative-kv": dict(era="modelled",
        model="openai/gpt-oss-120b", device="h100-80gb", count=1, version="0.10.1",
        flags={}, note="V1 ~v0.10.1: the v0.10 rules (PyTorch-sort sampler; Marlin mxfp4, as the log says)"),
    "gpt-oss-120b-h100-kv1.71-fail": dict(era="modelled",
        model="openai/gpt-oss-120b", device="h100-80gb", count=1, version="0.11.0",
        flags={"max_num_batched_tokens": 1024, "gpu_memory_utilization": 0.95},
        error_kind="max_model_len_exceeds_kv_cache",
        note="V1 ~v0.11.0: the v0.10 rules; default max_model_len 131072; the commenter quotes the KV line and "
             "says the error asks to decrease the context (vLLM's max-model-len check)"),
    "gpt-oss-120b-h100-v0141-oom": dict(era="older", scope="weights", 
        model="openai/gpt-oss-120b", device="h100-80gb", count=1, version="0.14.1",
        flags={}, note="v0.14.1 (v0.19 rules with that version's mxfp4 backend: Triton); weights only"),
    "gpt-oss-20b-a100-v0190-util065": dict(era="modelled", 
        model="openai/gpt-oss-20b", device="a100-80gb", count=1, version="0.19.0",
        flags={"max_model_len": 131072, "gpu_memory_utilization": 0.65},
        note="A100-80GB presumed by the report's author"),
    "llama3-8b-tp2-80g-pr10511": dict(era="older", 
        model="meta-llama/Llama-3.1-8B", device=None, device_memory_gib=79.22, count=2, version="0.6.5",
        flags={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9, "max_model_len": 8192},
        note="Meta-Llama-3-8B: same shapes as Llama-3.1-8B except the rope (its 8,192 positions are its default "
             "max_model_len); V0 ~v0.6.5 (between the spans: the v0.6 rules stand in)"),
    "llama31-8b-l40s-pr17122": dict(era="older", 
        model="meta-llama/Llama-3.1-8B-Instruct", device="l40s", count=1, version="0.8.5",
        flags={"max_model_len": 32768},
        note="V1 ~v0.8.5 (between the spans: the v0.10 rules stand in); max_model_len 32768 from the concurrency line"),
    "llama31-8b-rtx3090-len20k": dict(era="modelled",
        model="meta-llama/Llama-3.1-8B-Instruct", device="rtx-3090", count=1, version="0.6.4",
        flags={"max_model_len": 20000, "gpu_memory_utilization": 0.9},
        note="V0 ~v0.6.3-0.6.4 (single-line 'Memory profiling results'): the v0.6 (V0) rules"),
    "llama31-8b-rtx3090-len29k-fail": dict(era="modelled",
        model="meta-llama/Llama-3.1-8B-Instruct", device="rtx-3090", count=1, version="0.6.4",
        flags={"max_model_len": 29000, "gpu_memory_utilization": 0.9},
        note="V0 ~v0.6.3-0.6.4 (single-line 'Memory profiling results'): the v0.6 (V0) rules"),
    "llama31-8b-tp8-mlcommons2267": dict(era="older", scope="weights", 
        model="meta-llama/Llama-3.1-8B-Instruct", device="h200", count=8, version="0.19.0",
        flags={"tensor_parallel_size": 8, "max_model_len": 131072}, note="weights only (GPU not stated)"),
    "qwen3-0.6b-rtx3060-6g-wsl-util09-fail": dict(era="older", 
        model="Qwen/Qwen3-0.6B", device=None, device_memory_gib=6.0, count=1, version="0.19.0",
        flags={"gpu_memory_utilization": 0.9}, free_gib=4.98,
        note="WSL desktop holds memory: others set so that free = the logged 4.98 GiB"),
    "qwen3-14b-fp16-l40s-v0280-default": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l40s", count=1, version="0.28.0", flags={},
        note="default args (vllm serve Qwen/Qwen3-14B)"),
    "qwen3-14b-awq-l4-single-v0280": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l4", count=1, version="0.28.0", flags={}, quant="awq",
        note="Qwen3-14B-AWQ: the catalog's Qwen3-14B shapes with Qwen's AWQ config (4-bit, group 128, zero point)"),
    "qwen3-14b-awq-l4-replica-v0280": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l4", count=1, version="0.28.0", flags={}, quant="awq",
        note="as above; the author saw 9.10 or 10.33 GiB KV on the same setup (run-to-run)"),
    "qwen3-14b-awq-2xl4-tp2-v0280": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l4", count=2, version="0.28.0", flags={"tensor_parallel_size": 2},
        quant="awq", note="AWQ as above"),
    "qwen3-14b-awq-2xl4-pp2-v0280": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l4", count=2, version="0.28.0", flags={"pipeline_parallel_size": 2},
        quant="awq", note="AWQ as above"),
    "qwen3-14b-awq-l40s-v0280-tuned": dict(era="modelled", 
        model="Qwen/Qwen3-14B", device="l40s", count=1, version="0.28.0",
        flags={"max_model_len": 1024, "max_num_seqs": 8, "max_num_batched_tokens": 8192,
               "gpu_memory_utilization": 0.95, "enable_prefix_caching": True, "block_size": 16},
        quant="awq", note="AWQ as above"),
    "qwen3-30b-a3b-4gpu-tp4-v085-oom": dict(era="older", scope="weights", 
        model="Qwen/Qwen3-30B-A3B", device="h100-80gb", count=4, version="0.8.5",
        flags={"tensor_parallel_size": 4, "max_model_len": 8192}, note="weights only (GPU not stated); v0.8.5"),
    "qwen3-30b-a3b-ascend910b3-weights-offload-notes": dict(era="older", scope="weights", 
        model="Qwen/Qwen3-30B-A3B", device="ascend-910b3", count=1, version="0.19.0", flags={},
        note="weights only (vllm-ascend)"),
    "qwen3-32b-4x910b4-tp4-v090-ascend": dict(era="modelled",
        model="Qwen/Qwen3-32B", device="ascend-910b4", count=4, version="0.9.0",
        flags={"tensor_parallel_size": 4, "max_model_len": 40960, "gpu_memory_utilization": 0.9},
        note="vllm-ascend 0.9.0rc2; the idle HBM npu-smi shows (2785 MB) is the runtime's reserved part, outside "
             "the total torch_npu reports (seed 001: 3409 MB idle on a 64 GB card whose runtime total is 60.96 GiB), "
             "so nothing is counted as held by others"),
    "qwen3-next-80b-ascend-tp4-v012rc1": dict(era="modelled",
        model="Qwen/Qwen3-Next-80B-A3B-Instruct", device="ascend-910b3", count=4, version="0.12.0",
        flags={"tensor_parallel_size": 4, "max_model_len": 4096, "gpu_memory_utilization": 0.85,
               "cudagraph_mode": "FULL_DECODE_ONLY"}, error_kind="out_of_memory",
        note="vllm-ascend 0.12.0rc1; NPU model not stated (64 GB 910B assumed); the excerpt stops inside the "
             "traceback of initialize_from_config, the report (issue title, record) says out of memory"),
}

_AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def _error_kind(text: str | None) -> str | None:
    if not text:
        return None
    t = text.lower()
    if "free memory on device" in t:
        return "free_memory_below_requested"
    if "max seq len" in t or "estimated maximum model length" in t:
        return "max_model_len_exceeds_kv_cache"
    if "no available memory" in t or "mamba cache blocks" in t or "negative" in t or "kv cache -" in t:
        return "no_kv_cache_memory"
    if "out of memory" in t or "oom" in t:
        return "out_of_memory"
    return "other"


def _jsonl(path: Path):
    """The objects of a JSON-lines file, blank lines skipped."""
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def _device_cases(path: Path, source: str) -> list[Case]:
    if not path.is_file():
        return []
    out = []
    for c in _jsonl(path):
        if c.get("status", "ok") not in ("ok", "failed") or "missing package" in str(c.get("error", "")):
            continue
        if c.get("status") == "failed" and "compressed_tensors" in str(c.get("error", "")):
            continue
        a, m = c["args"], c["measured"]
        flags = {k: a[k] for k in ("tensor_parallel_size", "pipeline_parallel_size", "max_model_len", "max_num_seqs",
                                    "max_num_batched_tokens", "gpu_memory_utilization", "kv_cache_dtype",
                                    "enforce_eager", "limit_mm_per_prompt", "mm_processor_kwargs",
                                    "data_parallel_size", "enable_expert_parallel", "disable_custom_all_reduce",
                                    "enable_extensible_kv_cache", "kv_cache_memory_bytes", "gdn_prefill_backend")
                 if a.get(k) is not None}
        hw = c["hardware"]
        device = "h200" if "H200" in hw.get("device", "") else "h100-80gb"
        model = c["model"]
        if model.startswith("google/gemma-3-4b-it:text-only"):
            model = str(ROOT / "bench" / "truth" / "configs" / "gemma-3-4b-text")  # derived config (its NOTE.md)
        out.append(Case(
            id=c["id"], source=source, model=model, device=device, device_memory_gib=None,
            count=hw.get("count", 1), vllm_version=c.get("vllm_version", "0.26.0"), version_note="measured",
            flags=flags, env={k: v for k, v in (c.get("env") or {}).items()
                 if k.startswith(("VLLM_", "PYTORCH_", "NCCL_NVLS", "TORCH_SYMM_MEM"))},
            usage_context="llm",
            logged={
                "weights_gib": m.get("weights_gib"), "activation_gib": m.get("torch_peak_increase_gib"),
                "non_torch_gib": m.get("non_torch_gib"), "kv_cache_gib": m.get("available_kv_cache_gib"),
                "kv_cache_tokens": m.get("kv_cache_tokens"), "num_gpu_blocks": m.get("num_gpu_blocks"),
                "cudagraph_estimate_gib": m.get("cudagraph_estimated_gib"),
                "cudagraph_actual_gib": m.get("cudagraph_actual_gib"), "error_kind": None,
                "requested_gib": m.get("requested_memory_gib"), "non_kv_gib": m.get("non_kv_total_gib"),
                # vLLM 0.34's extensible cache: the bytes committed ("Extended KV cache to N blocks (X GiB)")
                "extended_kv_gib": m.get("extended_kv_gib"),
                # 0.27+: "total consumed (from mem_get_info)" (bench/truth/to_cases.py), None where not logged
                "total_consumed_gib": m.get("total_consumed_gib"),
                # bench/truth/alloc_probe.py: free once the post-KV warm-up returned (data/truth/logs/h100h)
                "free_after_warmup_gib": m.get("alloc_free_after_warmup_gib"),
            }))
    return out


def _public_cases() -> list[Case]:
    out = []
    path = DATA / "public" / "vllm_startup_cases.jsonl"
    for line in path.read_text().splitlines():
        c = json.loads(line)
        spec = PUBLIC_MAP.get(c["id"])
        if spec is None:
            continue
        r = c["reported"]
        total = c["hardware"].get("total_memory_gib")
        others = spec.get("others_gib", 0.0)
        if "free_gib" in spec and total:
            others = max(total - spec["free_gib"] - 0.51, 0.0)
        flags = dict(spec["flags"])
        flags.pop("trust", None)
        out.append(Case(
            id=c["id"], source="public", model=spec["model"], device=spec.get("device"),
            device_memory_gib=spec.get("device_memory_gib") or (total if spec.get("device") is None else None),
            count=spec["count"], vllm_version=spec["version"], version_note=c["vllm_version"], flags=flags,
            used_by_others_gib=others, note=spec["note"], era=spec.get("era", "modelled"),
            scope=spec.get("scope", "all"), error_kind_from_report=spec.get("error_kind"),
            logged={
                "weights_gib": r.get("weights_gib"), "activation_gib": r.get("activation_peak_gib"),
                "non_torch_gib": r.get("non_torch_gib"), "kv_cache_gib": r.get("kv_cache_gib"),
                "kv_cache_tokens": r.get("kv_cache_tokens"), "num_gpu_blocks": r.get("gpu_blocks"),
                "cudagraph_estimate_gib": None, "cudagraph_actual_gib": r.get("cudagraph_gib"),
                "error_kind": _error_kind(r.get("error")),
                "max_concurrency": r.get("max_concurrency"), "max_concurrency_len": r.get("max_concurrency_len"),
            }))
        if spec.get("quant") == "awq":
            out[-1].flags["__quant_config"] = _AWQ
    return out


def _log_figures(path: Path) -> dict:
    """The logged figures as ``vramplan explain``'s reader recovers them (None where the log is silent)."""
    from vramplan.errors import LogParseError
    from vramplan.engines.vllm.log import read_log

    try:
        f = read_log(str(path))
    except LogParseError:
        return {}
    weights = f.weights_gib if f.weights_gib is not None else f.profile_weights_gib
    activation = f.torch_peak_increase_gib
    main = f.ranks.get(f.primary_rank) if f.ranks else None
    peak_abs = (main.extras.get("peak_torch_memory_gib") if main is not None else None)
    if activation is None and peak_abs is not None and weights is not None:
        activation = round(peak_abs - weights, 2)  # V0 (vLLM 0.6) logs the torch peak with the weights in it
    return {
        "weights_gib": weights,
        "activation_gib": activation, "non_torch_gib": f.non_torch_gib,
        "kv_cache_gib": f.kv_cache_gib, "kv_cache_tokens": f.kv_cache_tokens, "num_gpu_blocks": f.num_gpu_blocks,
        "cudagraph_estimate_gib": f.cudagraph_estimate_gib, "cudagraph_actual_gib": f.cudagraph_actual_gib,
        "error_kind": f.error_kind, "max_concurrency": f.max_concurrency,
    }


def _with_log(case: Case, path: Path) -> Case:
    """Take every figure the log states from the log reader; keep the record's for the rest.

    A failed run's error kind comes from the log. Memory held by another process is taken from
    the log's startup check (total - free - this process's CUDA context), as a user would state it.
    """
    if path.is_file():
        for key, value in _log_figures(path).items():
            if value is not None or key == "error_kind":
                case.logged[key] = value
        case.logged["_from_log"] = True
        if case.error_kind_from_report:
            case.logged["error_kind"] = case.error_kind_from_report
        if case.source != "public" and case.logged.get("error_kind") == "free_memory_below_requested":
            import re

            m = re.search(r"\((\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) GiB\)", path.read_text())
            if m:
                case.used_by_others_gib = round(float(m.group(2)) - float(m.group(1)) - 0.51, 2)
    return case


def load_cases() -> list[Case]:
    out = []
    for c in _device_cases(DATA / "device_v026" / "cases.jsonl", "device"):
        out.append(_with_log(c, DATA / "device_v026" / (c.id.replace("device-v026-", "") + ".log")))
    for c in _device_cases(DATA / "truth" / "cases.jsonl", "truth"):
        batch, name = re.sub(r"^truth-v\d+-", "", c.id).split("-", 1)  # truth-v026-h100a-..., truth-v034-...
        out.append(_with_log(c, DATA / "truth" / "logs" / batch / (name + ".log")))
    for c in _public_cases():
        out.append(_with_log(c, DATA / "public" / "logs" / (c.id + ".log")))
    return out


# --- SGLang (issue 14): data/truth_sglang, our SGLang 0.5.17 runs on one H100 (bench/truth/sglang/to_cases.py) ---

@dataclass
class SGLangCase:
    id: str
    model: str
    device: str
    sglang_version: str
    args: dict
    """SGLang's flags as ``to_cases.py`` wrote them (SGLang's names; True = a bare flag)."""
    status: str
    """``ok`` (the server came up) or ``failed``, as the run ended."""
    logged: dict
    """What SGLang logged (``measured`` of the case)."""
    log: Path
    expected_error: tuple[str, str] | None = None
    """(vramplan error kind, phase) of a failed run, classified from the log's own error text (below)."""

    @property
    def flags(self) -> list[str]:
        from vramplan.engines.sglang.flags import server_args_flags

        return server_args_flags(self.args)


def sglang_log_error(text: str) -> tuple[str, str] | None:
    """The failure an SGLang log shows, as (vramplan error kind, phase), read from SGLang's own words here rather
    than by vramplan's log reader (which the figures check): sglang 0.5.17
    mem_cache/kv_cache_configurator.py:_profile_available_bytes raises "ValueError: Loaded weights leave no GPU
    memory for the KV cache" (older releases: "Not enough memory. Please try to increase --mem-fraction-static");
    a torch OutOfMemoryError whose traceback runs through the CUDA-graph runners is the capture failing."""
    if "Loaded weights leave no GPU memory for the KV cache" in text or "Not enough memory. Please try to increase" in text:
        return ("no_kv_cache_memory", "kv_sizing")
    if "OutOfMemoryError" in text or "CUDA out of memory" in text:
        tb = text[:text.find("CUDA out of memory")] if "CUDA out of memory" in text else text
        if "cuda_graph" in tb[tb.rfind("Traceback"):] or re.search(r"capture_\w*graph", tb[tb.rfind("Traceback"):]):
            return ("out_of_memory", "graph_capture")
        if "max_total_num_tokens=" in text:
            return ("out_of_memory", "serving")
        return ("out_of_memory", "startup")
    return ("other", "unknown") if text.strip() else None


def load_sglang_cases() -> list[SGLangCase]:
    """``data/truth_sglang/cases.jsonl``: planned with ``engine="sglang"`` and SGLang's flags (``bench/accuracy.py``)."""
    path = DATA / "truth_sglang" / "cases.jsonl"
    if not path.is_file():
        return []
    out = []
    for c in _jsonl(path):
        if c.get("engine") != "sglang":
            continue
        hw = c.get("hardware") or {}
        log = DATA / "truth_sglang" / c["source"]["log"]
        status = c.get("status", "ok")
        err = sglang_log_error(log.read_text(errors="replace")) if status == "failed" and log.is_file() else None
        out.append(SGLangCase(
            id=c["id"], model=c["model_src"], device="h200" if "H200" in hw.get("device", "") else "h100-80gb",
            sglang_version=c["engine_version"], args=dict(c["args"]), status=status, logged=dict(c["measured"]),
            log=log, expected_error=err))
    return out
