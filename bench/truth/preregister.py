"""Plan every line of run plans with vramplan BEFORE the runs (H100 and H200), so the figures the real startups are
compared with are written down first:  python3 bench/truth/preregister.py PLAN.tsv... > predictions.json

Plan lines are read with the GPU side's own parser (plan_lines.py, also imported by measure_truth.py), so both sides take the same arguments.
(bench/truth/predictions_v034_x1_t2_b2.json was written by the first version of this script, which left the
weights out.)"""
import json
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import vramplan  # noqa: E402
from vramplan.errors import VramplanError  # noqa: E402
from plan_lines import read_plan, run_parser  # noqa: E402
from vramplan.api import load_model  # noqa: E402
from vramplan.engines.vllm.flags import EngineArgs  # noqa: E402


def engine_args(r) -> EngineArgs:
    kw = dict(max_model_len=r.max_model_len, enforce_eager=r.eager, max_num_batched_tokens=r.mnbt,
              max_num_seqs=r.mns, gpu_memory_utilization=r.gmu, usage_context="llm",
              env=tuple(tuple(e.split("=", 1)) for e in r.env))
    if r.limit_mm:
        kw["limit_mm_per_prompt"] = json.loads(r.limit_mm)
    # LLM() keyword arguments that are also vramplan's flags (others, e.g. attention_backend, change no byte)
    kw.update({k: v for k, v in json.loads(r.extra or "{}").items() if k in EngineArgs.__dataclass_fields__})
    return EngineArgs(**kw)


def main() -> int:
    out = {}
    argv = sys.argv[1:]
    version = "0.34.0"
    if argv[:1] == ["--vllm-version"]:  # the release the plans run (0.34.0 unless given first)
        version, argv = argv[1], argv[2:]
    for plan in argv:
        for name, args in read_plan(plan).items():
            r = run_parser().parse_args(shlex.split(args))
            for dev in ("h100-80gb", "h200"):
                try:
                    p = vramplan.plan(load_model(r.src), device=dev, vllm_version=version, args=engine_args(r))
                    out[f"{name}@{dev}"] = dict(verdict=p.verdict, error_kind=p.error_kind,
                                                weights_gib=round(p.logged_rank.bytes_of("weights") / 2**30, 3),
                                                blocks=p.num_gpu_blocks, tokens=p.kv_cache_tokens,
                                                error_phase=p.error_phase, vllm_version=version,
                                                headroom_gib={t.key: round(t.bytes / 2**30, 3) for t in p.headroom_terms})
                except VramplanError as e:  # a refusal is a prediction too
                    out[f"{name}@{dev}"] = dict(error=f"{type(e).__name__}: {e}")
    json.dump(out, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
