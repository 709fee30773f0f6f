"""The run-plan line format (``NAME<TAB>ARGS``) of bench/truth/plans/*.tsv, without importing vLLM: read by
measure_truth.py on the GPU and by preregister.py here."""
import argparse


def run_parser():
    ap = argparse.ArgumentParser(prog="run")
    ap.add_argument("--src", required=True)
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--gmu", type=lambda v: None if v.lower() in ("none", "unset") else float(v), default=0.9,
                    help="gpu_memory_utilization; 'unset' leaves vLLM's default (0.34: 1.0 with the extensible cache)")
    ap.add_argument("--mnbt", type=int, default=None)
    ap.add_argument("--mns", type=int, default=None)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--limit-mm", default=None)
    ap.add_argument("--extra", default=None)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--est", type=float, default=40.0, help="expected seconds (skip if less is left)")
    ap.add_argument("--proc", default=None, help="process group tag (read by run_truth.sh)")
    return ap


def read_plan(path):
    runs = {}
    for line in open(path):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, _, args = line.partition("\t")
        runs[name.strip()] = args
    return runs
