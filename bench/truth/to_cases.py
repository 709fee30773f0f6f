#!/usr/bin/env python3
"""Turn the truth-run logs (data/truth/logs/<batch>/<name>.log) into data/truth/cases.jsonl.

Schema: that of /work/shared/data/device_runs_v026/cases.jsonl (id, status, model, vllm_version,
hardware, args, measured, source), plus `env` (the run's environment: VLLM_*, NCCL_*, CUDA_*, ...),
`error` for runs that did not finish, and a few extra measured fields (marked below).

Figures are read from vLLM's own log lines with the small regex reader below (independent of the
product's parser in vramplan/inputs/vllm_log). With tensor parallelism the rank-0 worker's lines
are used (all ranks logged the same figures in these runs; `measured.per_rank` keeps them all).

status:
  ok          the startup finished and generated its 8 tokens (a RESULT line)
  failed      vLLM raised (the error is in `error`)
  incomplete  our own per-run deadline (measure_truth.py's alarm) stopped it; the figures vLLM had
              logged by then (weights, profile, KV size, ...) are kept

usage: python3 bench/truth/to_cases.py [--logs data/truth/logs] [--out data/truth/cases.jsonl] [--check]
"""
import argparse, json, os, re, shlex, sys

NUM = r"(-?[\d.]+)"
# one entry per figure: (key, regex, converter). All in GiB unless the key says otherwise.
PATTERNS = [
    ("weights_gib", r"Model loading took " + NUM + r" GiB", float),
    ("non_kv_total_gib", r"Total non KV cache memory: " + NUM + r" ?GiB", float),
    ("torch_peak_increase_gib", r"torch peak memory increase: " + NUM + r" ?GiB", float),
    ("non_torch_gib", r"non-torch forward increase memory: " + NUM + r" ?GiB", float),
    ("profile_weights_gib", r"; weights memory: " + NUM + r" ?GiB", float),
    ("profile_s", r"Memory profiling takes " + NUM + r" seconds", float),
    ("available_kv_cache_gib", r"Available KV cache memory: " + NUM + r" GiB", float),
    ("kv_cache_tokens", r"GPU KV cache size: ([\d,]+) tokens", lambda s: int(s.replace(",", ""))),
    ("max_concurrency", r"Maximum concurrency for [\d,]+ tokens per request: " + NUM + r"x", float),
    ("cudagraph_estimated_gib", r"Estimated CUDA graph memory: " + NUM + r" GiB total", float),
    # vLLM 0.27+ (utils/mem_utils.py MemoryProfilingResult.__repr__): consumed since the snapshot, weights included
    ("total_consumed_gib", r"total consumed \(from mem_get_info\): " + NUM + r" ?GiB", float),
    # vLLM 0.33 V2 (gpu_worker.py, after capture): the graph estimate the KV size took off, when no 0.26 line said it
    ("cudagraph_pool_estimated_gib", r"CUDA graph pool memory: [\d.]+ GiB \(actual\), " + NUM + r" GiB \(estimated\)",
     float),
    ("cudagraph_actual_gib", r"Graph capturing finished in \d+ secs, took " + NUM + r" GiB", float),
    ("cudagraph_capture_s", r"Graph capturing finished in (\d+) secs", int),
    ("cudagraph_profile_desc", r"Profiling CUDA graph memory: (.*)$", str),
    ("requested_memory_gib", r"Requested memory: [\d.]+ \(util\), " + NUM + r" GiB", float),
    ("initial_free_memory_gib", r"Initial free memory: " + NUM + r" GiB", float),
    ("free_after_profile_gib", r"Free memory after profiling: " + NUM + r" GiB \(total\)", float),
    ("init_cuda_memory_gib", r"worker init memory snapshot: .*?cuda_memory=" + NUM + r"GiB", float),
    ("init_torch_memory_gib", r"worker init memory snapshot: .*?torch_memory=" + NUM + r"GiB", float),
    ("init_non_torch_memory_gib", r"worker init memory snapshot: .*?non_torch_memory=" + NUM + r"GiB", float),
    ("vllm_total_memory_gib", r"worker init memory snapshot: .*?total_memory=" + NUM + r"GiB", float),
    ("torch_compile_s", r"torch.compile took " + NUM + r" s in total", float),
    ("init_engine_s", r"init engine \(profile, create kv cache, warmup model\) took " + NUM + r" s", float),
    ("encoder_budget_tokens", r"Encoder cache will be initialized with a budget of (\d+) tokens", int),
    ("encoder_profile_items", r"Encoder cache will be initialized .* profiled with (\d+) \w+ items", int),
    ("encoder_profile_modality", r"Encoder cache will be initialized .* profiled with \d+ (\w+) items", str),
    ("block_size_logged", r"Setting kv cache block size to (\d+)", int),
    # bench/truth/alloc_probe.py (issue 11.4): mem_get_info free once compile_or_warm_up_model returned
    ("alloc_free_after_warmup_gib", r"TRUTH_ALLOC compile_or_warm_up after .*? free=(\d+)", lambda s: int(s) / 2**30),
    # vLLM 0.34's extensible KV cache (v1/worker/extensible_kv_cache.py: measure_kv_cache_blocks, extend_kv_cache)
    ("warmup_free_gib", r"Memory after warmup: " + NUM + r" GiB free", float),
    ("warmup_committed_gib", r"Memory after warmup: [\d.]+ GiB free, " + NUM + r" GiB committed", float),
    ("warmup_transient_gib", r"GiB committed to the KV cache, " + NUM + r" GiB kept for transient", float),
    ("warmup_alloc_peak_gib", r"kept for transient activations \(" + NUM + r" GiB allocated at peak", float),
    ("warmup_reserve_growth_gib", r"GiB allocated at peak, " + NUM + r" GiB of torch reservation growth", float),
    ("warmup_fit_blocks", r"torch reservation growth\); (\d+) KV cache blocks", int),
    ("warmup_fit_gib", r"KV cache blocks \(" + NUM + r" GiB\) fit within", float),
    ("warmup_requested_gib", r"fit within the requested " + NUM + r" GiB", float),
    ("extended_kv_blocks", r"Extended KV cache to (\d+) blocks", int),
    ("extended_kv_gib", r"Extended KV cache to \d+ blocks \(" + NUM + r" GiB\)", float),
    ("remapped_kv_blocks", r"Remapping the KV cache from \d+ to (\d+) blocks", int),
    ("num_gpu_blocks", r"num_gpu_blocks(?:=|: )(\d+)", int),
]
PREFIX = re.compile(r"^\((?P<who>[A-Za-z_]+\d*)(?: pid=\d+)?\)")
MODEL_IDS = {"bench/truth/configs/gemma-3-4b-text": "google/gemma-3-4b-it:text-only (derived)"}
DEVICE_NAMES = {"NVIDIA H100 80GB HBM3": "H100-80GB", "NVIDIA H200": "H200-141GB"}


def model_id(src):
    src = src.rstrip("/")
    if src in MODEL_IDS:
        return MODEL_IDS[src]
    if "/catalog/" in src:
        return src.split("/catalog/", 1)[1]
    return src


def read_lines(text):
    """Yield (who, line) where who is the process prefix ('EngineCore', 'Worker_TP0', '' ...)."""
    for line in text.splitlines():
        m = PREFIX.match(line)
        yield (m.group("who") if m else ""), line


def rank_of(who):
    m = re.match(r"Worker_TP(\d+)", who)
    return int(m.group(1)) if m else (0 if who in ("EngineCore", "Worker", "") else None)


def parse_log(path):
    text = open(path, errors="replace").read()
    found = {}      # key -> list of (rank, value)
    for who, line in read_lines(text):
        for key, pat, conv in PATTERNS:
            m = re.search(pat, line)
            if m:
                try:
                    found.setdefault(key, []).append((rank_of(who), conv(m.group(1).strip())))
                except ValueError:
                    pass
    measured, per_rank = {}, {}
    for key, vals in found.items():
        r0 = [v for r, v in vals if r == 0] or [v for _, v in vals]
        measured[key] = r0[-1]
        ranks = sorted({r for r, _ in vals if r is not None})
        if len(ranks) > 1:
            per_rank[key] = {str(r): [v for rr, v in vals if rr == r][-1] for r in ranks}
    info = {"runner": "v2" if "Using V2 Model Runner" in text else "v1",
            "measured": measured, "per_rank": per_rank}
    m = re.search(r"^RESULT (\{.*\})$", text, re.M)
    info["result"] = json.loads(m.group(1)) if m else None
    m = re.search(r"^TRUTH run (\{.*\})$", text, re.M)
    info["truth"] = json.loads(m.group(1)) if m else {}
    m = re.search(r"^LLM kwargs: (\{.*\})$", text, re.M)
    info["kwargs"] = json.loads(m.group(1)) if m else {}
    m = re.search(r"^TRUTH-FAILED (\{.*\})$", text, re.M)
    info["failed"] = json.loads(m.group(1)) if m else None
    m = re.search(r"^TRUTH wall_s=([\d.]+)", text, re.M)
    info["wall_s"] = float(m.group(1)) if m else None
    m = re.search(r"^TRUTH released=(\w+)", text, re.M)
    info["released"] = (m.group(1) == "True") if m else None
    m = re.search(r"^gpu used before: (.*)$", text, re.M)
    info["used_before"] = m.group(1) if m else None
    # the root cause vLLM printed (last 'Error:' style line), for failures
    errs = re.findall(r"^(?:\([^)]*\) )?(?:\w+\.)*(\w*(?:Error|Exception)): (.+)$", text, re.M)
    info["last_error"] = f"{errs[-1][0]}: {errs[-1][1]}" if errs else None
    m = _ENGINE_VERSION.search(text)
    info["engine_version"] = m.group(1) if m else None
    return info


def plan_args(args_str):
    """Flags of a plan line (for runs that have no RESULT line)."""
    toks = shlex.split(args_str or "")
    out = {}
    for i, t in enumerate(toks):
        if t.startswith("--") and i + 1 < len(toks) and not toks[i + 1].startswith("--"):
            out[t[2:]] = toks[i + 1]
        elif t.startswith("--"):
            out[t[2:]] = True
    return out


_ENGINE_VERSION = re.compile(r"(?:LLM engine|vLLM API server version|vLLM version)[^\n]*?\(?v?(\d+\.\d+\.\d+)")


def release_of(truth, result, info):
    """The vLLM release of a run: measure_truth.py records it (since the multi-GPU/0.34 plans); older logs
    are the 0.26.0 batches, or say it in vLLM's own 'Initializing a V1 LLM engine (vX.Y.Z)' line."""
    v = (result or {}).get("vllm_version") or truth.get("vllm_version")
    if v and v != "unknown":
        return re.match(r"\d+\.\d+\.\d+", v).group(0) if re.match(r"\d+\.\d+\.\d+", v) else v
    return info.get("engine_version") or "0.26.0"


def to_case(batch, name, info, rel_log):
    res, kw, truth = info["result"], info["kwargs"], info["truth"]
    pa = plan_args(truth.get("args"))
    src = (res or {}).get("src") or pa.get("src", "")
    m = dict(info["measured"])
    r = res or {}
    tp = r.get("tensor_parallel_size") or kw.get("tensor_parallel_size", 1)
    pp = r.get("pipeline_parallel_size") or kw.get("pipeline_parallel_size", 1)
    dp = r.get("data_parallel_size") or kw.get("data_parallel_size", 1)
    version = release_of(truth, r, info)
    vtag = "v0" + version.split(".")[1] if version.startswith("0.") else "v" + version.replace(".", "")
    if res:
        status, error = "ok", None
    elif info["failed"] and "RunTimeout" in info["failed"]["error"]:
        status = "incomplete"
        error = ("stopped by measure_truth.py's per-run deadline (not a vLLM error); last stage logged: "
                 + ("KV cache sized" if "kv_cache_tokens" in m else "profiling done" if "torch_peak_increase_gib" in m
                    else "weights loaded" if "weights_gib" in m else "engine start"))
    else:
        status = "failed"
        error = (info["failed"] or {}).get("error") or info["last_error"] or "no RESULT line"
    dev_name = r.get("device_name")
    if dev_name is None:
        dev_name = "NVIDIA H200" if batch == "x2" else "NVIDIA H100 80GB HBM3"
    hardware = {"device": DEVICE_NAMES.get(dev_name, dev_name), "count": tp * pp * dp,
                "total_memory_gib": m.pop("vllm_total_memory_gib", None),
                "nvml_total_gib": round(r["total_gib"], 2) if res else None}
    if hardware["total_memory_gib"] is None:
        hardware["total_memory_gib"] = {"H100-80GB": 79.18, "H200-141GB": 139.8}.get(hardware["device"])
    if hardware["nvml_total_gib"] is None:
        hardware["nvml_total_gib"] = {"H100-80GB": 79.65, "H200-141GB": 140.4}.get(hardware["device"])
    mnbt = r.get("max_num_batched_tokens") or kw.get("max_num_batched_tokens")
    mns = r.get("max_num_seqs") or kw.get("max_num_seqs")
    args = {
        "tensor_parallel_size": tp, "pipeline_parallel_size": pp, "data_parallel_size": dp,
        "enable_expert_parallel": bool(r.get("enable_expert_parallel", kw.get("enable_expert_parallel", False))),
        "disable_custom_all_reduce": bool(kw.get("disable_custom_all_reduce", False)),
        "max_model_len": r.get("max_model_len") or kw.get("max_model_len"),
        "max_num_seqs": mns, "max_num_batched_tokens": mnbt,
        "gpu_memory_utilization": kw.get("gpu_memory_utilization"),
        "kv_cache_dtype": kw.get("kv_cache_dtype", "auto"), "dtype": kw.get("dtype", "auto"),
        "enforce_eager": kw.get("enforce_eager"), "load_format": kw.get("load_format"),
        "limit_mm_per_prompt": kw.get("limit_mm_per_prompt"),
        "mm_processor_kwargs": kw.get("mm_processor_kwargs"),
        "skip_tokenizer_init": kw.get("skip_tokenizer_init"),
        "seed": kw.get("seed"),
        # vLLM 0.34 (config/cache.py): the extensible KV cache switch and the fixed KV size, when the run set them
        "enable_extensible_kv_cache": kw.get("enable_extensible_kv_cache"),
        "kv_cache_memory_bytes": kw.get("kv_cache_memory_bytes"),
        # kernel choices the harness made where the one-GPU bundle lacks one (harness_patches.py, plan lines)
        "gdn_prefill_backend": kw.get("gdn_prefill_backend"),
        "attention_backend": kw.get("attention_backend"),
    }
    if res:
        args["resolved"] = {k: r.get(k) for k in ("cudagraph_mode", "compilation_mode", "cudagraph_capture_sizes_max",
                                                  "num_cudagraph_capture_sizes", "kv_cache_dtype", "block_size")}
    gib = lambda x: None if x is None else round(x, 3)
    measured = {
        "weights_gib": m.get("weights_gib"),
        "torch_peak_increase_gib": m.get("torch_peak_increase_gib"),
        "non_torch_gib": m.get("non_torch_gib"),
        "non_kv_total_gib": m.get("non_kv_total_gib"),
        "available_kv_cache_gib": m.get("available_kv_cache_gib"),
        "kv_cache_tokens": m.get("kv_cache_tokens"),
        "max_concurrency": m.get("max_concurrency"),
        "cudagraph_actual_gib": m.get("cudagraph_actual_gib"),
        "cudagraph_estimated_gib": m.get("cudagraph_estimated_gib", m.get("cudagraph_pool_estimated_gib")),
        "num_gpu_blocks": r.get("num_gpu_blocks"),
        "block_size": r.get("block_size") or m.get("block_size_logged"),
        "requested_memory_gib": m.get("requested_memory_gib"),
        "initial_free_memory_gib": m.get("initial_free_memory_gib"),
        "used_after_init_gib": gib(r.get("used_after_init_gib")),
        "used_after_gen_gib": gib(r.get("used_after_gen_gib")),
        "encoder_budget_tokens": m.get("encoder_budget_tokens"),
        "encoder_profile_items": m.get("encoder_profile_items"),
        "runner": info["runner"],
        # extra fields (not in the device_runs_v026 schema)
        "encoder_profile_modality": m.get("encoder_profile_modality"),
        "used_before_gib": gib(r.get("used_before_gib")),
        "per_gpu_used_after_init_gib": [gib(x) for x in r.get("per_gpu_used_after_init_gib", [])] or None,
        "init_cuda_memory_gib": m.get("init_cuda_memory_gib"),
        "init_non_torch_memory_gib": m.get("init_non_torch_memory_gib"),
        "free_after_profile_gib": m.get("free_after_profile_gib"),
        "cudagraph_profile_desc": m.get("cudagraph_profile_desc"),
        "cudagraph_capture_s": m.get("cudagraph_capture_s"),
        "profile_s": m.get("profile_s"),
        "torch_compile_s": m.get("torch_compile_s"),
        "init_engine_s": m.get("init_engine_s"),
        "llm_init_s": r.get("init_s"),
        "per_rank": info["per_rank"] or None,
        # vLLM 0.34's extensible KV cache (v1/worker/extensible_kv_cache.py), None where the run did not log them
        **{k: m.get(k) for k in ("warmup_free_gib", "warmup_committed_gib", "warmup_transient_gib",
                                 "warmup_alloc_peak_gib", "warmup_reserve_growth_gib", "warmup_fit_blocks",
                                 "warmup_fit_gib", "warmup_requested_gib", "extended_kv_blocks", "extended_kv_gib",
                                 "remapped_kv_blocks")},
        # vLLM 0.27+'s "total consumed (from mem_get_info)" (weights + non-torch + what stays allocated), where logged
        **({"total_consumed_gib": m["total_consumed_gib"]} if m.get("total_consumed_gib") is not None else {}),
        # bench/truth/alloc_probe.py runs (issue 11.4): free once the post-KV warm-up returned
        **({"alloc_free_after_warmup_gib": gib(m["alloc_free_after_warmup_gib"])}
           if m.get("alloc_free_after_warmup_gib") is not None else {}),
    }
    env = dict(truth.get("env", {}))
    case = {
        "id": f"truth-{vtag}-{batch}-{name}",
        "status": status,
        "model": model_id(src),
        "vllm_version": version,
        "hardware": hardware,
        "args": args,
        "env": env,
        "measured": measured,
        "source": {"kind": f"own run, vLLM {version} official wheel (trimmed bundle), load_format=dummy, "
                           "bench/truth/measure_truth.py",
                   "log": rel_log, "batch": batch, "model_src": src,
                   "plan_args": truth.get("args"), "run_env": truth.get("run_env"),
                   "proc_run_index": truth.get("proc_run_index"), "wall_s": info["wall_s"],
                   "gpu_released_after": info["released"]},
    }
    if error:
        case["error"] = error
    return case


def check(case):
    """Internal consistency of vLLM's own figures (v0.26 formulas, research note §1.3)."""
    m, notes = case["measured"], []
    if None not in (m["weights_gib"], m["torch_peak_increase_gib"], m["non_torch_gib"], m["non_kv_total_gib"]):
        s = m["weights_gib"] + m["torch_peak_increase_gib"] + m["non_torch_gib"]
        if abs(s - m["non_kv_total_gib"]) > 0.025:
            notes.append(f"weights+peak+non_torch={s:.2f} != non_kv {m['non_kv_total_gib']}")
    if None not in (m["requested_memory_gib"], m["non_kv_total_gib"], m["available_kv_cache_gib"]):
        est = m["cudagraph_estimated_gib"] or 0.0
        a = m["requested_memory_gib"] - m["non_kv_total_gib"] - est
        if abs(a - m["available_kv_cache_gib"]) > 0.03:
            notes.append(f"requested-non_kv-est={a:.2f} != available {m['available_kv_cache_gib']}")
    return notes


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap.add_argument("--logs", default=os.path.join(root, "data/truth/logs"))
    ap.add_argument("--out", default=os.path.join(root, "data/truth/cases.jsonl"))
    ap.add_argument("--check", action="store_true", help="print consistency notes")
    a = ap.parse_args()
    order = ["h100a", "h100b", "x2", "h100c", "h100d", "h100e"]
    batches = sorted(os.listdir(a.logs), key=lambda b: (order.index(b) if b in order else 99, b))
    cases = []
    for b in batches:
        d = os.path.join(a.logs, b)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(".log"):
                continue
            info = parse_log(os.path.join(d, f))
            rel = os.path.relpath(os.path.join(d, f), os.path.dirname(a.out))
            c = to_case(b, f[:-4], info, rel)
            cases.append(c)
            if a.check:
                for n in check(c):
                    print(f"{c['id']}: {n}", file=sys.stderr)
    with open(a.out, "w") as fo:
        for c in cases:
            fo.write(json.dumps(c) + "\n")
    n_ok = sum(c["status"] == "ok" for c in cases)
    print(f"{len(cases)} cases ({n_ok} ok, {len(cases) - n_ok} not) -> {a.out}")


if __name__ == "__main__":
    main()
