"""After the KV cache (issue 11 step 4): vramplan's post-KV verdict and room against the vLLM 0.26 startups of
data/truth/logs/h100h, where bench/truth/alloc_probe.py logged the free memory after the warm-up (read into
data/truth/cases.jsonl by bench/truth/to_cases.py as ``alloc_free_after_warmup_gib``). Called by bench/accuracy.py."""
from __future__ import annotations

import statistics


def postkv_section(cases, plan_case) -> list[str]:
    rows = []
    for c in cases:
        if "-h100h-" not in c.id:
            continue
        real, free = ("fails" if c.logged.get("error_kind") else "starts"), c.logged.get("free_after_warmup_gib")
        p = plan_case(c)
        h = {t.key: t.bytes / 2**30 for t in p.headroom_terms}
        tight = any(w.startswith("tight:") for w in p.warnings)
        rows.append(dict(id=c.id, real=real, plan=p.verdict, phase=p.error_phase, free=free, tight=tight,
                         head=h.get("headroom_left"), worst=h.get("headroom_left_worst")))
    if not rows:
        return []
    right = [r for r in rows if r["real"] == r["plan"]]
    wrong = [r for r in rows if r["real"] != r["plan"]]
    flagged = [r for r in wrong if r["tight"]]
    errs = [r["head"] - r["free"] for r in rows if r["real"] == "starts" and r["free"] is not None
            and r["head"] is not None]
    worst = max(errs, key=abs) if errs else 0.0
    out = [f"\n### after the KV cache: vLLM 0.26 on one H100, util 0.95-0.99 (data/truth/logs/h100h): {len(rows)} "
           "startups\n",
           "| figure | value |", "|---|---|",
           f"| verdict right | {len(right)}/{len(rows)} |",
           f"| of the wrong ones, flagged tight (the worst measured case fails) | {len(flagged)}/{len(wrong)} |",
           f"| failures predicted | {sum(r['plan'] == 'fails' for r in rows if r['real'] == 'fails')}/"
           f"{sum(r['real'] == 'fails' for r in rows)} |",
           f"| room left after the warm-up, started runs: median abs error | "
           f"{statistics.median(abs(e) for e in errs):.2f} GiB |" if errs else "| room left | n/a |",
           f"| worst | {worst:+.2f} GiB |",
           "", "| case | real | planned | room planned / worst / real (GiB) |", "|---|---|---|---|"]
    for r in rows:
        real_free = "-" if r["free"] is None else f"{r['free']:.2f}"
        out.append(f"| `{r['id']}` | {r['real']} | {r['plan']}{' (' + r['phase'] + ')' if r['phase'] else ''}"
                   f"{' tight' if r['tight'] else ''} | {r['head']:+.2f} / {r['worst']:+.2f} / {real_free} |")
    return out
