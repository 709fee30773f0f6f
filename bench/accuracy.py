"""Accuracy of the planner against every measured startup whose model is in the catalog.

usage: python bench/accuracy.py [--markdown] [--cases]

The SGLang section (issue 14; bench/accuracy_sglang.py) follows vLLM's: our SGLang startups (data/truth_sglang)
planned by ``vramplan.engines.sglang.plan`` with each run's release and flags.

Prints, per source (our H100/H200 runs of vLLM 0.26; public reports of many versions), the
error of each term: weights, torch peak increase (activation), non-torch, KV GiB, KV tokens,
and the verdict / error kind of failed startups. ``--cases`` adds one row per case.
Errors are prediction - logged; percentages are relative to the logged figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import vramplan  # noqa: E402
from accuracy_sglang import pair_cell  # noqa: E402
from cases import Case, load_cases  # noqa: E402
from vramplan.api import load_model  # noqa: E402
from vramplan.engines.vllm.flags import EngineArgs  # noqa: E402
from vramplan.units import GiB  # noqa: E402


def plan_case(c: Case):
    flags = dict(c.flags)
    qcfg = flags.pop("__quant_config", None)
    model = load_model(c.model)
    if qcfg:
        model = replace(model, hf_config={**model.hf_config, "quantization_config": qcfg})
    args = EngineArgs(usage_context=c.usage_context, env=tuple(sorted(c.env.items())), **flags)
    return vramplan.plan(model, device=c.device, device_memory_gib=c.device_memory_gib, vllm_version=c.vllm_version,
                         used_by_others_gib=c.used_by_others_gib, args=args, allow_older_version=True)


def _pct(pred: float | None, logged: float | None) -> float | None:
    if pred is None or logged in (None, 0):
        return None
    return 100.0 * (pred - logged) / abs(logged)


def evaluate(c: Case) -> dict:
    row: dict = {"id": c.id, "source": c.source, "model": c.model, "note": c.note, "era": c.era, "scope": c.scope,
                 "version": c.vllm_version}
    try:
        p = plan_case(c)
    except Exception as exc:  # a refused config is a result too
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    r = p.logged_rank
    lg = c.logged
    pred = {
        "weights_gib": r.bytes_of("weights") / GiB,
        "activation_gib": r.bytes_of("activation_peak") / GiB,
        "non_torch_gib": r.bytes_of("non_torch") / GiB,
        "kv_cache_gib": r.available_kv_bytes / GiB,
        "kv_cache_tokens": p.kv_cache_tokens,
        "cudagraph_estimate_gib": r.bytes_of("cudagraph_estimate") / GiB,
        # 0.27+ logs "total consumed (from mem_get_info)" (weights + non-torch + what the profile leaves allocated)
        # where 0.26 logged the non-torch increase
        "total_consumed_gib": (r.bytes_of("weights") + r.bytes_of("non_torch")) / GiB,
        "num_gpu_blocks": p.num_gpu_blocks,
    }
    for key, value in pred.items():
        if c.scope == "weights" and key != "weights_gib":
            continue
        logged = lg.get(key)
        if key == "kv_cache_gib" and lg.get("extended_kv_gib") is not None:
            logged = lg["extended_kv_gib"]  # 0.34 extensible: what was committed, not the first estimate
        elif key == "kv_cache_gib" and r.term("reserved_bound") is not None:
            value = r.bytes_of("reserved_bound") / GiB  # died before the commit: the first estimate, as logged
        row[key] = (value, logged)
    if c.scope != "weights":
        row["verdict"] = (p.verdict, "fails" if lg.get("error_kind") else "starts")
        row["error_kind"] = (p.error_kind, lg.get("error_kind"))
    return row


def _summary(rows: list[dict], key: str, *, absolute: bool = False) -> str:
    errs = []
    worst = (0.0, "")
    for row in rows:
        pair = row.get(key)
        if not pair or pair[1] is None or pair[0] is None:
            continue
        pred, logged = pair
        e = (pred - logged) if absolute else _pct(pred, logged)
        if e is None:
            continue
        errs.append(abs(e))
        if abs(e) >= abs(worst[0]):
            worst = (e, row["id"])
    if not errs:
        return "n/a | n/a | 0 | "
    unit = " GiB" if absolute else "%"
    return (f"{statistics.median(errs):.2f}{unit} | {max(errs):.2f}{unit} | {len(errs)} | "
            f"{worst[0]:+.2f}{unit} `{worst[1]}`")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", action="store_true", help="one row per case")
    ns = ap.parse_args(argv)
    cases = load_cases()
    rows = [evaluate(c) for c in cases]
    groups = {
        "the shared yardstick: every catalog case of ../shared/data (its 8 vLLM 0.26 H100 runs and the public "
        "reports of every version)": [r for r in rows if r["source"] in ("device", "public")],
        "our runs: vLLM 0.34.0 on one H100 (data/truth/logs/h100e, h100f; KV blocks = the blocks committed)": [
            r for r in rows if r["source"] != "public" and r["version"].startswith("0.34")],
        "our runs: vLLM 0.33.0 on one H100 (data/truth/logs/h100f, h100g; the 0.26 points of bench/truth/drift.py)": [
            r for r in rows if r["source"] != "public" and r["version"].startswith("0.33")],
        "our runs: vLLM 0.26 on H100/H200 (data/device_v026, data/truth)": [
            r for r in rows if r["source"] != "public" and r["version"].startswith("0.26")],
        "public reports of modelled versions (0.6.0-0.6.4 V0, 0.10-0.16, >= 0.19; vllm-ascend 0.9-0.13; catalog "
        "models)": [
            r for r in rows if r["source"] == "public" and r["era"] == "modelled"],
        "public reports of releases between the spans (0.6.5-0.9, 0.17-0.18) or of an unknown release (a "
        "neighbouring rule set stands in)": [
            r for r in rows if r["source"] == "public" and r["era"] == "older"],
    }
    for title, grp in groups.items():
        print(f"\n### {title}: {len(grp)} cases\n")
        print("| term | median abs error | worst abs error | cases | worst case |")
        print("|---|---|---|---|---|")
        print("| weights | " + _summary(grp, "weights_gib"))
        print("| torch peak increase (activation) | " + _summary(grp, "activation_gib", absolute=True))
        print("| non-torch increase | " + _summary(grp, "non_torch_gib", absolute=True))
        print("| total consumed (0.27+: weights + non-torch + kept state) | "
              + _summary(grp, "total_consumed_gib", absolute=True))
        print("| CUDA-graph estimate | " + _summary(grp, "cudagraph_estimate_gib", absolute=True))
        print("| KV cache GiB | " + _summary(grp, "kv_cache_gib"))
        print("| KV cache tokens | " + _summary(grp, "kv_cache_tokens"))
        print("| KV blocks | " + _summary(grp, "num_gpu_blocks"))
        fails = [r for r in grp if r.get("verdict") and r["verdict"][1] == "fails"]
        right = [r for r in fails if r["verdict"][0] == "fails" and r["error_kind"][0] == r["error_kind"][1]]
        verdicts = [r for r in grp if r.get("verdict")]
        ok = [r for r in verdicts if r["verdict"][0] == r["verdict"][1]]
        print(f"| verdict right | {len(ok)}/{len(verdicts)} | | | |")
        print(f"| failed startups: right verdict and error kind | {len(right)}/{len(fails)} | | | |")
        errs = [r for r in grp if "error" in r]
        for r in errs:
            print(f"\nnot planned: `{r['id']}`: {r['error']}")
    # after the KV cache (issue 11.4): verdicts and room against the allocator-probe runs (bench/accuracy_postkv.py)
    from accuracy_postkv import postkv_section

    print("\n".join(postkv_section(cases, plan_case)))
    # SGLang (issue 14): our SGLang runs, planned by vramplan.engines.sglang (bench/accuracy_sglang.py)
    from accuracy_sglang import evaluate_sglang, sglang_case_rows, sglang_section
    from cases import load_sglang_cases

    sg_rows = [evaluate_sglang(c) for c in load_sglang_cases()]
    print("\n".join(sglang_section(sg_rows, _summary)))
    if ns.cases:
        print("\n| case | weights pred/logged GiB | activation | KV GiB | KV tokens | verdict |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                continue

            def f(key, fmt="{:.2f}", r=r):
                return pair_cell(r, key, fmt)

            if r["scope"] == "weights":
                print(f"| `{r['id']}` | {f('weights_gib')} | (weights only) | | | |")
                continue
            print(f"| `{r['id']}` | {f('weights_gib')} | {f('activation_gib')} | {f('kv_cache_gib')} | "
                  f"{f('kv_cache_tokens', '{:,}')} | {r['verdict'][0]}/{r['verdict'][1]} |")
        print("\n".join(sglang_case_rows(sg_rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
