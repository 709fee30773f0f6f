"""The real SGLang startups of data/truth_sglang (bench/truth/sglang/to_cases.py) as the tests read them."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "data" / "truth_sglang" / "cases.jsonl"


def sglang_cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]


def case_flags(case: dict) -> list[str]:
    """The run's SGLang flags (``args`` keeps SGLang's names; True is a bare flag, False/None are absent)."""
    from vramplan.engines.sglang.flags import server_args_flags

    return server_args_flags(case["args"])
