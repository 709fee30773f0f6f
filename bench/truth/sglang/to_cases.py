#!/usr/bin/env python3
"""SGLang truth logs (data/truth_sglang/logs/<batch>/<name>.log, from measure_sglang.py) -> data/truth_sglang/cases.jsonl.

Same layout as bench/truth/to_cases.py's cases, with `engine: "sglang"` and `engine_version`, SGLang's flags under
`args` (its own names) and the figures SGLang logs under `measured` (GiB as SGLang prints "GB", which is 2**30
bytes: get_available_gpu_memory divides by 1 << 30):

  weights_gib              "Load weight end. ... mem usage=X GB"
  avail_after_weights_gib  "Load weight end. ... avail mem=X GB"
  kv_cache_tokens          "KV Cache is allocated. #tokens: N" / "KV cache allocated. dtype: .., #tokens: N"
  kv_cache_gib             "KV size: X GB" (or "K size: a GB, V size: b GB", summed)
  max_total_num_tokens, max_running_requests, available_gpu_mem_gib   the scheduler's line
  cudagraph_gib            "Capture ... cuda graph end. ... mem usage=X GB" (summed over captures)
  mem_fraction_static      the resolved server_args (DEBUG print)
  error                    "Not enough memory. Please try to increase --mem-fraction-static", CUDA out of memory, ...

usage: python3 bench/truth/sglang/to_cases.py [--logs data/truth_sglang/logs] [--out data/truth_sglang/cases.jsonl]
"""
import argparse, json, os, re

NUM = r"(-?[\d.]+)"
PATTERNS = [
    ("weights_gib", r"Load weight end\..*?mem usage=" + NUM + " GB", float, "last"),
    ("avail_after_weights_gib", r"Load weight end\..*?avail mem=" + NUM + " GB", float, "last"),
    ("avail_before_weights_gib", r"Load weight begin\. avail mem=" + NUM + " GB", float, "last"),
    ("kv_cache_tokens", r"KV [Cc]ache (?:is )?allocated\..*?#tokens: (\d+)", int, "last"),
    ("kv_cache_gib", r"KV size: " + NUM + " GB", float, "last"),
    ("k_size_gib", r"K size: " + NUM + " GB", float, "last"),
    ("v_size_gib", r"V size: " + NUM + " GB", float, "last"),
    ("avail_after_kv_gib", r"KV [Cc]ache (?:is )?allocated\..*?avail mem=" + NUM + " GB", float, "last"),
    ("max_total_num_tokens", r"max_total_num_tokens=(\d+)", int, "last"),
    ("max_running_requests", r"max_running_requests=(\d+)", int, "last"),
    ("available_gpu_mem_gib", r"available_gpu_mem=" + NUM, float, "last"),
    ("cudagraph_gib", r"[Cc]apture .*?(?:cuda|CUDA) graph end\..*?mem usage=" + NUM + " GB", float, "sum"),
    ("mem_fraction_static", r"mem_fraction_static=" + NUM, float, "last"),
    ("chunked_prefill_size", r"chunked_prefill_size=(-?\d+)", int, "last"),
    ("cuda_graph_max_bs", r"cuda_graph_max_bs(?:_decode)?=(\d+)", int, "last"),  # 0.5.17: cuda_graph_max_bs_decode
    ("page_size", r"page_size=(\d+)", int, "last"),
    ("context_len", r"context_len=(\d+)", int, "last"),
]
ERRORS = [
    ("not_enough_memory", r"Not enough memory\. Please try to increase --mem-fraction-static"),
    ("out_of_memory", r"CUDA out of memory|OutOfMemoryError"),
    ("weights_exceed", r"[Ww]eights? .*(?:exceed|leave no)"),
]


def parse(path):
    text = open(path, errors="replace").read()
    m = {}
    for key, pat, conv, how in PATTERNS:
        vals = [conv(x) for x in re.findall(pat, text)]
        if vals:
            m[key] = round(sum(vals), 3) if how == "sum" else vals[-1]
    if "kv_cache_gib" not in m and "k_size_gib" in m:
        m["kv_cache_gib"] = round(m["k_size_gib"] + m.get("v_size_gib", 0.0), 3)
    run = json.loads(re.search(r"^SGTRUTH run (\{.*\})$", text, re.M).group(1))
    end_m = re.search(r"^SGTRUTH end (\{.*\})$", text, re.M)
    end = json.loads(end_m.group(1)) if end_m else {"status": "incomplete"}
    nv_m = re.search(r"^SGTRUTH nvml (\{.*\})$", text, re.M)
    nv = json.loads(nv_m.group(1)) if nv_m else {}
    kind = next((k for k, pat in ERRORS if re.search(pat, text)), None)
    ver = re.search(r"sglang(?:==| version[: ]+v?)(\d+\.\d+\.\d+(?:\.post\d+)?)", text)
    return run, end, nv, m, kind, (ver.group(1) if ver else run.get("sglang_version"))


def flags_dict(flags):
    out, i = {}, 0
    while i < len(flags):
        f = flags[i]
        if f.startswith("--"):
            if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
                out[f[2:].replace("-", "_")] = flags[i + 1]; i += 2; continue
            out[f[2:].replace("-", "_")] = True
        i += 1
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", default=os.path.join(root, "data/truth_sglang/logs"))
    ap.add_argument("--out", default=os.path.join(root, "data/truth_sglang/cases.jsonl"))
    ap.add_argument("--version", default="0.5.17", help="when the log does not say it")
    a = ap.parse_args()
    cases = []
    for batch in sorted(os.listdir(a.logs)):
        d = os.path.join(a.logs, batch)
        for f in sorted(x for x in os.listdir(d) if x.endswith(".log")) if os.path.isdir(d) else []:
            run, end, nv, m, kind, ver = parse(os.path.join(d, f))
            gpus = (run.get("nvml_before") or {}).get("gpus") or [{}]
            status = end.get("status", "incomplete")
            if status != "ok" and kind is None and end.get("rc") not in (None, 0):
                kind = "other"
            args = flags_dict(run.get("flags", []))
            tp = int(args.get("tp_size", args.get("tp", 1)))
            cases.append({
                "id": f"truth-sglang-{batch}-{f[:-4]}", "engine": "sglang", "engine_version": ver or a.version,
                "status": status, "model_src": run.get("src"),
                "hardware": {"device": gpus[0].get("name"), "count": tp,
                             "nvml_total_gib": round(gpus[0].get("total_mib", 0) / 1024, 2) or None},
                "args": args, "env": run.get("env", {}), "run_env": run.get("run_env", {}),
                "measured": {**m, "error_kind": kind if status != "ok" else None,
                             "nvml_used_before_gib": round(gpus[0].get("used_mib", 0) / 1024, 3),
                             "nvml_used_after_init_gib": (round(nv["after_init"]["gpus"][0]["used_mib"] / 1024, 3)
                                                          if nv.get("after_init", {}).get("gpus") else None)},
                "source": {"log": os.path.relpath(os.path.join(d, f), os.path.dirname(a.out)),
                           "ready_s": end.get("ready_s"), "wall_s": end.get("wall_s"), "rc": end.get("rc")},
            })
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fo:
        for c in cases:
            fo.write(json.dumps(c) + "\n")
    print(f"{len(cases)} cases ({sum(c['status'] == 'ok' for c in cases)} ok) -> {a.out}")


if __name__ == "__main__":
    main()
