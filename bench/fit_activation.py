"""Fit the activation model's coefficients per model runner over every measured startup.

usage: python bench/fit_activation.py

For each startup of data/device_v026 and data/truth with a logged torch peak increase (and no
multimodal encoder profile in it), the model of ``vramplan.estimate.activation`` predicts the
peak from the live tensors; this script searches the three coefficients per runner (sampler bytes
per request x vocab element, a constant, a forward multiplier) that minimise the mean absolute
error over all of that runner's startups at once, and prints them with the residuals. The
values go into ``COEFFICIENTS``; the README quotes the residuals.
"""

from __future__ import annotations

import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import load_cases  # noqa: E402
from vramplan.estimate.activation import Coefficients, profile_peak  # noqa: E402
from vramplan.units import GiB, MiB  # noqa: E402


def rows():
    from accuracy import plan_case
    from vramplan.engines.vllm.planner import _profile_rules

    out = []
    for c in load_cases():
        if c.source == "public" or c.logged.get("activation_gib") is None:
            continue
        p = plan_case(c)
        if p.model.is_multimodal and p.engine.runner == "v1":
            continue  # encoder profile in the peak: fitted separately (estimate/encoder_profile.py)
        e = p.engine
        out.append(dict(id=c.id, model=p.model, runner=e.runner, T=e.max_num_batched_tokens, R=e.max_num_seqs,
                        tp=e.tp, moe_tp=e.tp * e.dp, dtype=e.model_dtype, measured=c.logged["activation_gib"],
                        compiled=e.runner == "v2" and e.cudagraph_mode != "NONE" and not p.model.is_multimodal,
                        embed=p.logged_rank.weights.part("embed"),
                        persistent=not (e.quant is not None and e.quant.method == "mxfp4"),
                        # the release's source-read terms (rules/versions.py: moe_workspace_manager,
                        # mla_profile_dummy, sampler_fp32_warmup_pass), as the planner passes them
                        switches=_profile_rules(p.model, e, p.rules, True)))
    return out


def predict(r, k: Coefficients) -> float:
    peak = profile_peak(r["model"], runner=r["runner"], max_num_batched_tokens=r["T"], max_num_seqs=r["R"],
                        tp=r["tp"], moe_tp=r["moe_tp"], model_dtype=r["dtype"],
                        layers=range(0, r["model"].num_hidden_layers), last_stage=True, compiled=r["compiled"],
                        embed_bytes=r["embed"], persistent_moe_ws=r["persistent"], coefficients=k, **r["switches"])
    return peak.total_bytes / GiB


def main() -> int:
    data = rows()
    for runner in ("v1", "v2"):
        rs = [r for r in data if r["runner"] == runner]
        if not rs:
            continue
        best = None
        for s, c, m in itertools.product([x / 20 for x in range(20, 400)], range(0, 160, 8),
                                         [0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2]):
            k = Coefficients(sampler_bytes_per_element=s, constant_bytes=c * MiB, forward_multiplier=m, source="")
            err = statistics.mean(abs(predict(r, k) - r["measured"]) for r in rs)
            if best is None or err < best[0]:
                best = (err, s, c, m)
        err, s, c, m = best
        k = Coefficients(sampler_bytes_per_element=s, constant_bytes=c * MiB, forward_multiplier=m, source="")
        print(f"\n## {runner} runner: {len(rs)} startups -> sampler {s:.2f} B/element, constant {c} MiB, "
              f"forward x{m:.2f}; mean abs error {err:.3f} GiB")
        for r in sorted(rs, key=lambda r: r["id"]):
            p = predict(r, k)
            print(f"  {r['id'][:52]:52s} T={r['T']:6d} R={r['R']:5d} measured {r['measured']:5.2f} "
                  f"predicted {p:5.2f} ({p - r['measured']:+.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
