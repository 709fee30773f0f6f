"""Extract the names of vLLM's command-line flags from its source (not part of the package).

Reads the unpacked wheels (``pip download --no-deps vllm==X`` + unzip) and writes
``vramplan/data/vllm_flags.json``: for each version, every ``--flag`` (and short alias)
passed to ``add_argument`` in the engine and OpenAI-server argument builders. vramplan uses
the list to accept any real vLLM flag in a pasted ``vllm serve`` line (listing those that do
not change memory as ignored) and to refuse typos.

usage: python tools/extract_vllm_flags.py /tmp/vsrc/v0.19.0 /tmp/vsrc/v0.26.0 /tmp/vsrc/v0.33.0
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

FILES = ["vllm/engine/arg_utils.py", "vllm/entrypoints/openai/cli_args.py", "vllm/entrypoints/common/cli_args.py", "vllm/entrypoints/cli/serve.py",
         "vllm/entrypoints/utils.py", "vllm/entrypoints/openai/server_utils.py"]
CALL = re.compile(r"add_argument\(\s*((?:\"-[^\"]+\"\s*,\s*)+)")
NAME = re.compile(r"\"(-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*)\"")


def _dataclass_flags(path: Path) -> set[str]:
    """``--field-name`` for each field of the *FrontendArgs dataclasses (their flags are generated)."""
    import ast

    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.endswith("FrontendArgs"):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    out.add("--" + item.target.id.replace("_", "-"))
    return out


def flags_of(root: Path) -> list[str]:
    found: set[str] = set()
    for rel in ("vllm/entrypoints/openai/cli_args.py", "vllm/entrypoints/common/cli_args.py"):
        if (root / rel).is_file():
            found |= _dataclass_flags(root / rel)
    for rel in FILES:
        path = root / rel
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for call in CALL.finditer(text):
            found.update(NAME.findall(call.group(1)))
    return sorted(found)


def main(argv: list[str]) -> int:
    out: dict[str, list[str]] = {}
    for folder in argv:
        root = Path(folder)
        version = root.name.lstrip("v")
        out[version] = flags_of(root)
        print(version, len(out[version]))
    dest = Path(__file__).resolve().parent.parent / "vramplan" / "data" / "vllm_flags.json"
    dest.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
