"""Write vramplan's predictions for the held-out runs before they run (bench/truth/holdout_predictions.json).

usage: python bench/truth/predict_holdout.py   (then run the plans; compare with bench/truth/compare_holdout.py)
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import vramplan  # noqa: E402
from vramplan.engines.vllm.flags import EngineArgs  # noqa: E402
from vramplan.units import GiB  # noqa: E402


def args_of(line: str) -> tuple[str, dict, dict]:
    toks = shlex.split(line)
    kw: dict = {"max_model_len": 4096, "gpu_memory_utilization": 0.9}
    env = {}
    src = None
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "--src":
            src, i = toks[i + 1], i + 2
        elif t == "--eager":
            kw["enforce_eager"], i = True, i + 1
        elif t in ("--mnbt", "--mns", "--max-model-len", "--gmu"):
            key = {"--mnbt": "max_num_batched_tokens", "--mns": "max_num_seqs", "--max-model-len": "max_model_len",
                   "--gmu": "gpu_memory_utilization"}[t]
            kw[key] = float(toks[i + 1]) if t == "--gmu" else int(toks[i + 1])
            i += 2
        elif t == "--env":
            k, v = toks[i + 1].split("=", 1)
            env[k], i = v, i + 2
        else:
            i += 2 if t in ("--proc", "--est") else 1
    model = "/".join(src.rstrip("/").split("/")[-2:])
    return model, kw, env


def main() -> int:
    out = {}
    for plan, others in (("h100_d_holdout.tsv", 0.0), ("h100_d_held.tsv", 40.0)):
        for line in (ROOT / "bench/truth/plans" / plan).read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, _, rest = line.partition("\t")
            model, kw, env = args_of(rest)
            args = EngineArgs(usage_context="llm", env=tuple(sorted(env.items())), **kw)
            p = vramplan.plan(model, device="h100-80gb", vllm_version="0.26.0", args=args, used_by_others_gib=others)
            r = p.logged_rank
            out[name] = {
                "model": model, "verdict": p.verdict, "error_kind": p.error_kind,
                "weights_gib": round(r.bytes_of("weights") / GiB, 3),
                "torch_peak_increase_gib": round(r.bytes_of("activation_peak") / GiB, 3),
                "non_torch_gib": round(r.bytes_of("non_torch") / GiB, 3),
                "available_kv_cache_gib": round(r.available_kv_bytes / GiB, 3),
                "kv_cache_tokens": p.kv_cache_tokens, "estimated_max_model_len": p.estimated_max_model_len,
                "warnings": list(p.warnings),
            }
    dest = ROOT / "bench/truth/holdout_predictions.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
