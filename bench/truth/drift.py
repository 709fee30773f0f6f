#!/usr/bin/env python3
"""What drifted between vLLM 0.26 and 0.33 at the same flags (issue 13): the figures both releases logged.

Reads data/truth/cases.jsonl (the logs' own figures, bench/truth/to_cases.py); vramplan is not imported.
Each pair is one plan line run on 0.26 (h100a/h100b/x2/h100d) and on 0.33 (h100f/h100g): max_model_len 4096,
util 0.9, max_num_batched_tokens 8192 (32768 for q8b_e_mnbt32k), max_num_seqs 1024, eager except q06b_g_base.

Where the two runs differ in more than the release it says so (`note`): two 0.26 points ran on the H200 of the
x2 batch (KV GiB and tokens then differ by the card and are not compared), the 0.26 MoE point ran on the V1
runner (0.26's default for MoE models; 0.33 runs V2 by default), and the 0.26 vision point is the V2-runner run
(`vl3b_e_v2_base`, VLLM_USE_V2_MODEL_RUNNER=1), the runner 0.33 chose.

Terms (GiB unless marked):
  weights       "Model loading took X GiB"
  context       "worker init memory snapshot: ... cuda_memory=X" (CUDA context + handles before the snapshot)
  torch peak    "torch peak memory increase"
  non-torch     0.26: "non-torch forward increase memory"; 0.33: "total consumed (from mem_get_info)" - weights,
                i.e. non-torch plus what the profile leaves allocated (the V2 penalty state, 0.58 GiB at 1,024
                sequences of a 151,936 vocabulary)
  non-KV        "Total non KV cache memory"
  graph         compiled runs: the estimate taken off the KV budget (0.26 V2 logged none) / the pool captured
  KV GiB, tokens  "Available KV cache memory", "GPU KV cache size" (same card only)

usage: python3 bench/truth/drift.py [--cases data/truth/cases.jsonl]
"""
import argparse
import json
import os

PAIRS = [  # (point, 0.26 case id, 0.33 case id, note)
    ("q06b_e_base", "truth-v026-h100a-q06b_e_base", "truth-v033-h100f-q06b_e_base", ""),
    ("q8b_e_base", "truth-v026-h100a-q8b_e_base", "truth-v033-h100g-q8b_e_base", ""),
    ("q8b_e_mnbt32k", "truth-v026-h100a-q8b_e_mnbt32k", "truth-v033-h100g-q8b_e_mnbt32k", ""),
    ("mla_e_base", "truth-v026-h100b-mla_e_base", "truth-v033-h100g-mla_e_base", ""),
    ("vl3b_e_base", "truth-v026-h100b-vl3b_e_v2_base", "truth-v033-h100g-vl3b_e_base", "0.26 run: vl3b_e_v2_base"),
    ("moe_e_base", "truth-v026-x2-moe_e_base", "truth-v033-h100g-moe_e_base", "0.26 on H200, V1 runner"),
    ("q06b_g_base", "truth-v026-x2-q06b_g_base", "truth-v033-h100g-q06b_g_base", "0.26 on H200"),
]
MODELS = {"q06b": "Qwen3-0.6B", "q8b": "Qwen3-8B", "mla": "DeepSeek-V2-Lite", "vl3b": "Qwen2.5-VL-3B",
          "moe": "Qwen3-30B-A3B"}


def non_torch(m):
    if m.get("non_torch_gib") is not None:
        return m["non_torch_gib"]
    if m.get("total_consumed_gib") is not None and m.get("weights_gib") is not None:
        return round(m["total_consumed_gib"] - m["weights_gib"], 2)
    return None


def terms(c):
    m = c["measured"]
    return {
        "weights": m.get("weights_gib"), "context": m.get("init_cuda_memory_gib"),
        "torch peak": m.get("torch_peak_increase_gib"), "non-torch": non_torch(m),
        "non-KV": m.get("non_kv_total_gib"),
        "graph est": m.get("cudagraph_estimated_gib"), "graph pool": m.get("cudagraph_actual_gib"),
        "KV GiB": m.get("available_kv_cache_gib"), "KV tokens": m.get("kv_cache_tokens"),
    }


def drift(cases):
    """One dict per pair: point, note, same_card and, per term, (0.26, 0.33)."""
    rows = []
    for point, old_id, new_id, note in PAIRS:
        old, new = cases[old_id], cases[new_id]
        a, b = terms(old), terms(new)
        same_card = old["hardware"]["device"] == new["hardware"]["device"]
        row = {"point": point, "note": note, "same_card": same_card, "old": old_id, "new": new_id}
        for k in a:
            if k.startswith("KV") and not same_card:
                row[k] = None
            elif k.startswith("graph") and new["args"].get("enforce_eager"):
                row[k] = None
            else:
                row[k] = (a[k], b[k])
        rows.append(row)
    return rows


def _cell(pair, fmt="{:.2f}"):
    if pair is None:
        return "n/c"
    a, b = pair
    f = lambda x: "-" if x is None else fmt.format(x)
    if a is None or b is None:
        return f"{f(a)} → {f(b)}"
    d = b - a
    if isinstance(a, int):
        return f"{a:,} → {b:,} ({100.0 * d / a:+.1f}%)"
    return f"{f(a)} → {f(b)} ({d:+.2f})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=os.path.join(here, "..", "..", "data", "truth", "cases.jsonl"))
    a = ap.parse_args()
    cases = {c["id"]: c for c in map(json.loads, open(a.cases)) if c}
    rows = drift(cases)
    cols = ["weights", "context", "torch peak", "non-torch", "non-KV", "graph est", "graph pool", "KV GiB",
            "KV tokens"]
    print("| point | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        name = f"`{r['point']}` {MODELS[r['point'].split('_')[0]]}" + (f" ({r['note']})" if r["note"] else "")
        print(f"| {name} | " + " | ".join(_cell(r[k], "{:,}" if k == "KV tokens" else "{:.2f}") for k in cols)
              + " |")
    print("\nGiB, 0.26 → 0.33 (0.33 − 0.26); n/c: not compared (other card, or no graphs). non-torch on 0.33 is "
          "total consumed − weights (non-torch + the state the profile leaves allocated).")


if __name__ == "__main__":
    main()
