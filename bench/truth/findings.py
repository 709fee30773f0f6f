#!/usr/bin/env python3
"""Print the findings tables of bench/truth/README.md from data/truth/cases.jsonl.

usage: python3 bench/truth/findings.py [data/truth/cases.jsonl]
"""
import json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "data", "truth", "cases.jsonl")
cases = [json.loads(line) for line in open(path)]
with_profile = [c for c in cases if c["measured"]["torch_peak_increase_gib"] is not None]


def short(c):
    return c["id"].split("-", 3)[-1]


def table(title, rows, cols):
    print(f"\n### {title}\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("" if v is None else str(v) for v in r) + " |")


def key(c):
    a, m = c["args"], c["measured"]
    return (c["model"], m["runner"], c["hardware"]["device"], a["enforce_eager"], a["max_num_seqs"],
            a["max_num_batched_tokens"])


# 1. torch peak vs max_num_batched_tokens, per family (mns=1024, eager unless noted)
rows = []
for c in sorted(with_profile, key=key):
    a, m = c["args"], c["measured"]
    if a["max_num_seqs"] != 1024 or a["tensor_parallel_size"] != 1 or a["max_model_len"] != 4096:
        continue
    if a["gpu_memory_utilization"] != 0.9 or a["kv_cache_dtype"] != "auto" or a["limit_mm_per_prompt"] or a["mm_processor_kwargs"]:
        continue
    rows.append((c["model"], m["runner"], c["hardware"]["device"], "eager" if a["enforce_eager"] else "graphs",
                 a["max_num_batched_tokens"], m["torch_peak_increase_gib"], m["weights_gib"], c["status"], short(c)))
table("Torch peak increase of the profile run vs max_num_batched_tokens (max_num_seqs=1024, TP=1)", rows,
      ["model", "runner", "device", "mode", "mnbt", "torch_peak_GiB", "weights_GiB", "status", "run"])

# 2. max_num_seqs
rows = []
for c in sorted(with_profile, key=key):
    a, m = c["args"], c["measured"]
    if a["max_num_batched_tokens"] != 8192 or a["tensor_parallel_size"] != 1 or a["gpu_memory_utilization"] != 0.9:
        continue
    if a["max_model_len"] != 4096 or a["kv_cache_dtype"] != "auto" or a["limit_mm_per_prompt"] or a["mm_processor_kwargs"]:
        continue
    rows.append((c["model"], m["runner"], c["hardware"]["device"], "eager" if a["enforce_eager"] else "graphs",
                 a["max_num_seqs"], m["torch_peak_increase_gib"], m["used_after_init_gib"], short(c)))
table("Torch peak vs max_num_seqs (mnbt=8192; the sampler's [num_reqs, vocab] fp32 buffers)", rows,
      ["model", "runner", "device", "mode", "mns", "torch_peak_GiB", "NVML_used_after_init_GiB", "run"])

# 3. TP=1 vs TP=2 (same machine)
rows = []
for c in with_profile:
    if c["hardware"]["device"] != "H200-141GB" or c["model"] not in ("Qwen/Qwen3-8B", "Qwen/Qwen2.5-VL-3B-Instruct"):
        continue
    a, m = c["args"], c["measured"]
    rows.append((c["model"], a["tensor_parallel_size"], m["runner"], "eager" if a["enforce_eager"] else "graphs",
                 m["weights_gib"], m["torch_peak_increase_gib"], m["non_torch_gib"], m["init_cuda_memory_gib"],
                 m["cudagraph_estimated_gib"], m["cudagraph_actual_gib"], m["available_kv_cache_gib"],
                 m["kv_cache_tokens"], m["per_gpu_used_after_init_gib"], short(c)))
rows.sort()
table("TP=1 vs TP=2 on nvidia-h200-x2 (VLLM_ALLREDUCE_USE_SYMM_MEM=0)", rows,
      ["model", "TP", "runner", "mode", "weights", "torch_peak", "non_torch", "init_cuda_mem", "cg_est",
       "cg_actual", "avail_kv", "kv_tokens", "NVML used after init per GPU", "run"])

# 4. CUDA graphs
rows = []
for c in cases:
    m = c["measured"]
    if m["cudagraph_actual_gib"] is None and m["cudagraph_estimated_gib"] is None:
        continue
    est, act = m["cudagraph_estimated_gib"], m["cudagraph_actual_gib"]
    diff = None if est is None or act is None else f"{100 * (act - est) / est:+.0f}%"
    rows.append((c["model"], c["args"]["tensor_parallel_size"], m["runner"], c["hardware"]["device"],
                 m["cudagraph_profile_desc"], est, act, diff, m["torch_compile_s"], short(c)))
table("CUDA graphs: estimate (V1 runner only) vs actual pool", sorted(rows, key=str),
      ["model", "TP", "runner", "device", "captured", "estimate_GiB", "actual_GiB", "actual vs est", "compile_s", "run"])

# 5. VLM runners / encoder profile
rows = []
for c in with_profile:
    m, a = c["measured"], c["args"]
    if "VL" not in c["model"]:
        continue
    rows.append((c["model"], m["runner"], a["tensor_parallel_size"], a["max_num_batched_tokens"], a["max_num_seqs"],
                 json.dumps(a["limit_mm_per_prompt"]) if a["limit_mm_per_prompt"] else "",
                 json.dumps(a["mm_processor_kwargs"]) if a["mm_processor_kwargs"] else "",
                 m["encoder_budget_tokens"], f'{m["encoder_profile_items"] or ""} {m["encoder_profile_modality"] or ""}'.strip(),
                 m["torch_peak_increase_gib"], m["available_kv_cache_gib"], c["hardware"]["device"], short(c)))
table("Vision-language: V1 vs V2 runner, encoder profile", sorted(rows, key=str),
      ["model", "runner", "TP", "mnbt", "mns", "limit_mm", "mm_kwargs", "enc_budget", "enc_items", "torch_peak",
       "avail_kv", "device", "run"])

# 6. NVML vs budget
rows = []
for c in cases:
    m, a = c["measured"], c["args"]
    if c["status"] != "ok" or a["tensor_parallel_size"] != 1:
        continue
    grown = m["used_after_init_gib"] - m["used_before_gib"]
    over = grown - m["requested_memory_gib"]
    # what NVML sees beyond the CUDA context at the snapshot and vLLM's persistent terms
    held = grown - m["init_cuda_memory_gib"] - m["weights_gib"] - m["non_torch_gib"] - m["available_kv_cache_gib"] \
        - (m["cudagraph_actual_gib"] or 0.0)
    rows.append((c["hardware"]["device"], c["model"], m["runner"], "eager" if a["enforce_eager"] else "graphs",
                 a["gpu_memory_utilization"], a["max_num_batched_tokens"], a["max_num_seqs"], m["requested_memory_gib"],
                 m["used_before_gib"], m["used_after_init_gib"], m["init_cuda_memory_gib"], m["torch_peak_increase_gib"],
                 m["cudagraph_actual_gib"], round(over, 2), round(held, 2), short(c)))
table("NVML used after init vs vLLM's budget. over = (NVML used after init - NVML used before) - requested; "
      "held = (NVML used after init - used before) - init_cuda_memory - weights - non_torch - available_kv - cg_actual",
      sorted(rows, key=str),
      ["device", "model", "runner", "mode", "util", "mnbt", "mns", "requested", "NVML before", "NVML after init",
       "init_cuda_mem", "torch_peak", "cg_actual", "over", "held", "run"])
