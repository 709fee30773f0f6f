"""The SGLang section of ``bench/accuracy.py``: the SGLang planner against our real SGLang startups
(``data/truth_sglang``, loaded by ``cases.load_sglang_cases``).

Each case is planned as a user would plan it: ``vramplan.engines.sglang.plan(model, device=..., sglang_version=<the
run's release>, flags=<the run's SGLang flags>)``, with the device's catalog total and vramplan's own pre-load
baseline (not the log's). Whatever the planner predicts when this runs is what is scored; nothing is fitted here.

Figures compared (prediction - logged; SGLang's "GB" is GiB, bytes / 2^30):
- weights: the plan's ``weights`` term vs "Load weight end. ... mem usage";
- KV tokens: ``max_total_num_tokens`` vs the scheduler's ``max_total_num_tokens`` (else "KV Cache is allocated. #tokens");
  also planned from the log's own "Load weight begin. avail mem" (``free_before_load_gib``), which sets the baseline
  estimate aside;
- KV pool GiB: ``kv_pool_bytes`` vs K size + V size (MLA: KV size);
- ``mem_fraction_static`` resolved, and ``max_running_requests``: exact matches;
- available after startup: the plan's scheduler line (``available_gpu_mem``) vs the logged one: an empirical term
  (the CUDA context and workspaces SGLang does not budget are measured constants; the graphs are read from 0.5.17's
  runners with a measured per-size residual, engines/sglang/graphs.py, and vLLM-fitted stand-ins elsewhere);
- CUDA graphs: decode + prefill graph terms vs the logged "Capture ... graph end. mem usage" sum (0 when none was
  captured);
- verdict: ``status ok`` <-> ``plan.starts``; a failed run's error kind and phase vs the log's own error
  (``cases.sglang_log_error``).
"""

from __future__ import annotations

import re

from cases import SGLangCase

GiB = float(1 << 30)
_AVAIL = re.compile(r"available_gpu_mem=(-?\d+(?:\.\d+)?) GB")


def plan_sglang_case(c: SGLangCase):
    from vramplan.engines import sglang

    return sglang.plan(c.model, device=c.device, sglang_version=c.sglang_version, flags=c.flags)


def _predicted_available(p) -> float | None:
    """``available_gpu_mem`` as the plan's own scheduler line prints it; else free after the pools less the
    non-budgeted terms the plan counts before serving (workspaces, graphs)."""
    for line in p.log_lines:
        m = _AVAIL.search(line)
        if m:
            return float(m.group(1))
    if p.max_total_num_tokens is None:
        return None
    spent = p.bytes_of("non_torch_increase") + p.bytes_of("cudagraph_decode") + p.bytes_of("cudagraph_prefill")
    return (p.headroom_bytes - spent) / GiB


def _tokens_on_logged_baseline(c: SGLangCase) -> int | None:
    """KV tokens planned from the free memory the log states before loading ("Load weight begin. avail mem"), as
    ``explain --compare`` plans: the pool arithmetic without the baseline estimate (weights still planned)."""
    from vramplan.engines import sglang

    before = c.logged.get("avail_before_weights_gib")
    if before is None:
        return None
    p = sglang.plan(c.model, device=c.device, sglang_version=c.sglang_version, flags=c.flags,
                    free_before_load_gib=before)
    return p.max_total_num_tokens


def evaluate_sglang(c: SGLangCase) -> dict:
    lg = c.logged
    row: dict = {"id": c.id, "model": c.model, "version": c.sglang_version, "status": c.status,
                 "expected_error": c.expected_error}
    try:
        p = plan_sglang_case(c)
    except Exception as exc:  # noqa: BLE001  (an internal error is a result here, and a failed test elsewhere)
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    tokens_logged = lg.get("max_total_num_tokens") if lg.get("max_total_num_tokens") is not None else lg.get(
        "kv_cache_tokens")
    graphs_logged = lg.get("cudagraph_gib")
    if graphs_logged is None and c.status == "ok":
        graphs_logged = 0.0  # started without a "Capture ... graph end" line: no graph was captured
    kv_gib = lg.get("kv_cache_gib")
    if kv_gib is None and lg.get("k_size_gib") is not None:
        kv_gib = lg["k_size_gib"] + lg.get("v_size_gib", 0.0)
    row.update({
        "weights_gib": (p.bytes_of("weights") / GiB, lg.get("weights_gib")),
        "kv_cache_tokens": (p.max_total_num_tokens, tokens_logged),
        "kv_cache_gib": (p.kv_pool_bytes / GiB if p.max_total_num_tokens else None, kv_gib),
        "mem_fraction_static": (p.resolved.mem_fraction_static, lg.get("mem_fraction_static")),
        "max_running_requests": (p.max_running_requests, lg.get("max_running_requests")),
        "available_gpu_mem_gib": (_predicted_available(p), lg.get("available_gpu_mem_gib")),
        "cudagraph_gib": ((p.bytes_of("cudagraph_decode") + p.bytes_of("cudagraph_prefill")) / GiB, graphs_logged),
        "kv_cache_tokens_log_baseline": (_tokens_on_logged_baseline(c), tokens_logged),
        "verdict": (p.verdict, "starts" if c.status == "ok" else "fails"),
        "error_kind": ((p.error_kind, p.error_phase), c.expected_error),
    })
    return row


def _exact(rows: list[dict], key: str) -> tuple[int, int, list[str]]:
    n = right = 0
    wrong = []
    for r in rows:
        pair = r.get(key)
        if not pair or pair[1] is None:
            continue
        n += 1
        pred, logged = pair
        if pred is not None and (pred == logged if not isinstance(logged, float) else abs(pred - logged) < 1e-9):
            right += 1
        else:
            wrong.append(f"`{r['id']}` {pred} vs {logged}")
    return right, n, wrong


def sglang_section(rows: list[dict], summary) -> list[str]:
    """The Markdown lines of the SGLang section (``summary`` is accuracy.py's median/worst cell writer)."""
    by_version: dict[str, list[dict]] = {}
    for r in rows:
        by_version.setdefault(r["version"], []).append(r)
    out: list[str] = []
    for version, grp in sorted(by_version.items()):
        out += [f"\n### our runs: SGLang {version} on one H100 (data/truth_sglang/logs/h100a; dummy weights): "
                f"{len(grp)} cases\n",
                "| term | median abs error | worst abs error | cases | worst case |",
                "|---|---|---|---|---|",
                "| weights | " + summary(grp, "weights_gib"),
                "| KV cache tokens | " + summary(grp, "kv_cache_tokens"),
                "| KV cache tokens, from the log's free memory before loading | "
                + summary(grp, "kv_cache_tokens_log_baseline"),
                "| KV pool GiB | " + summary(grp, "kv_cache_gib"),
                "| available after startup (empirical) | " + summary(grp, "available_gpu_mem_gib", absolute=True),
                "| CUDA graphs (decode + prefill) | " + summary(grp, "cudagraph_gib", absolute=True)]
        for key, label in (("mem_fraction_static", "mem_fraction_static resolved exactly"),
                           ("max_running_requests", "max_running_requests exactly")):
            right, n, wrong = _exact(grp, key)
            out.append(f"| {label} | {right}/{n} | | | {'; '.join(wrong)} |")
        verdicts = [r for r in grp if r.get("verdict")]
        ok = [r for r in verdicts if r["verdict"][0] == r["verdict"][1]]
        bad = [f"`{r['id']}` planned {r['verdict'][0]}"
               + (f" ({r['error_kind'][0][0]} at {r['error_kind'][0][1]})" if r["verdict"][0] == "fails" else "")
               + f", ran: {r['verdict'][1]}" for r in verdicts if r not in ok]
        out.append(f"| verdict right | {len(ok)}/{len(verdicts)} | | | {'; '.join(bad)} |")
        # a plan that fails only while serving (serving_prefill / serving_decode) has started: each run here served
        # one 8-token request, so only the startup part of such a verdict is tested
        started = [r for r in verdicts if (r["verdict"][0] == "starts" or (r["error_kind"][0][1] or "").startswith(
            "serving")) == (r["verdict"][1] == "starts")]
        out.append(f"| startup verdict right (a planned serving-time failure reaches serving) | "
                   f"{len(started)}/{len(verdicts)} | | | |")
        fails = [r for r in verdicts if r["verdict"][1] == "fails"]
        right = [r for r in fails if r["verdict"][0] == "fails" and r["error_kind"][0] == r["error_kind"][1]]
        badk = [f"`{r['id']}` planned {r['error_kind'][0]}, logged {r['error_kind'][1]}" for r in fails
                if r not in right]
        out.append(f"| failed startups: right verdict, error kind and phase | {len(right)}/{len(fails)} | | | "
                   f"{'; '.join(badk)} |")
        for r in grp:
            if "error" in r:
                out.append(f"\nnot planned: `{r['id']}`: {r['error']}")
    return out


def pair_cell(r: dict, key: str, fmt: str = "{:.2f}") -> str:
    """``predicted / logged`` of one row's figure, ``-`` where absent."""
    p, lg = r[key]
    return (fmt.format(p) if p is not None else "-") + " / " + (fmt.format(lg) if lg is not None else "-")


def sglang_case_rows(rows: list[dict]) -> list[str]:
    out = ["\n| SGLang case | weights pred/logged GiB | KV tokens | fraction | max running | avail after startup GiB "
           "| graphs GiB | verdict (kind at phase) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            continue

        def f(key, fmt="{:.2f}", r=r):
            return pair_cell(r, key, fmt)

        (kind, phase), exp = r["error_kind"]
        v = f"{r['verdict'][0]}/{r['verdict'][1]}" + (f" ({kind} at {phase})" if kind else "")
        if exp:
            v += f", logged {exp[0]} at {exp[1]}"
        out.append(f"| `{r['id']}` | {f('weights_gib')} | {f('kv_cache_tokens', '{:,}')} | "
                   f"{f('mem_fraction_static', '{:g}')} | {f('max_running_requests', '{}')} | "
                   f"{f('available_gpu_mem_gib')} | {f('cudagraph_gib')} | {v} |")
    return out

