"""One mechanism for version-dependent behaviour (issue 12, item 4).

1. Planning code never compares release numbers: every change point is a named switch of the
   :class:`~vramplan.engines.vllm.rules.versions.RuleSet` of the release that introduced it. The walk below fails on a
   comparison against a release tuple, ``.version``/``.requested``, or an ``_at_least`` call, outside the
   allow-list of checks that are not vLLM change points of a rule set (each with its reason).
2. Every release from 0.6.0 to 0.35.0 resolves to the switches that docs/vllm-rules.md's "Where the rules
   changed" table gives (written out below by hand from that table, not from the rule files).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vramplan.engines.vllm.rules.versions import for_version

ROOT = Path(__file__).resolve().parents[2] / "vramplan"
PLANNING = ["engines/vllm/planner.py", "engines/vllm/planner_v0.py", "engines/vllm/budget.py", "engines/vllm/npu_budget.py", "engines/vllm/failure.py",
            "engines/vllm/sizing", "engines/vllm/rules/engine.py", "engines/vllm/rules/engine_defaults.py", "rules/kv.py",
            "rules/weights.py", "estimate"]

# (file, enclosing function) -> (how many, why it is not a rule-set change point)
ALLOWED = {
    ("engines/vllm/rules/engine_defaults.py", "_at_least"): (2, "the helper itself (its def and its one comparison)"),
    ("engines/vllm/rules/engine_defaults.py", "_release"): (1, "(0, 0, 0) is the 'no release asked' sentinel, not a release"),
    ("engines/vllm/rules/engine_defaults.py", "hybrid_attention_block_size"):
        (1, "vllm-ascend's own patch_mamba_config (vllm-ascend < 0.14), keyed by the vllm-ascend release"),
    ("engines/vllm/rules/engine_defaults.py", "supports_auto_max_model_len"):
        (1, "0.14 falls inside the v0_10 span (0.10-0.16) that one rule set covers"),
    ("engines/vllm/rules/engine_defaults.py", "supports_kv_cache_memory_bytes"):
        (1, "0.11 falls inside the v0_10 (0.10-0.16) and Ascend v0_9 (0.9-0.13) spans"),
    ("engines/vllm/rules/engine.py", "resolve_engine"): (1, "(0, 0, 0) is the 'no release asked' sentinel"),
    ("engines/vllm/rules/engine.py", "_mxfp4_backend"):
        (1, "triton_kernels bundled from 0.14, inside the v0_10 span (0.10-0.16) that one rule set covers"),
    ("engines/vllm/planner.py", "_log_lines"):
        (1, "vllm-ascend 0.12's 'Available memory' log line, inside the Ascend v0_9 span (0.9-0.13)"),
}
_RELEASE_NAMES = {"version", "wanted", "release", "_release"}
_RELEASE_ATTRS = {"version", "requested", "_release"}


def _files() -> list[Path]:
    out: list[Path] = []
    for p in PLANNING:
        path = ROOT / p
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def _is_release_tuple(node: ast.AST) -> bool:
    return (isinstance(node, ast.Tuple) and len(node.elts) == 3
            and all(isinstance(e, ast.Constant) and isinstance(e.value, int) for e in node.elts)
            and node.elts[0].value == 0)


def _mentions_release(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if _is_release_tuple(sub):
            return True
        if isinstance(sub, ast.Name) and sub.id in _RELEASE_NAMES:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in _RELEASE_ATTRS:
            return True
    return False


def _findings(path: Path) -> list[tuple[str, int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Compare) and any(_mentions_release(o) for o in [child.left, *child.comparators]):
                if any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq))
                       for op in child.ops):
                    found.append((name, child.lineno, ast.unparse(child)))
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == "_at_least":
                found.append((name, child.lineno, "def _at_least"))
            if isinstance(child, ast.Call):
                f = child.func
                if (isinstance(f, ast.Name) and f.id == "_at_least") or (
                        isinstance(f, ast.Attribute) and f.attr == "_at_least"):
                    found.append((name, child.lineno, ast.unparse(child)))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_planning_code_asks_the_rule_set_not_the_release_number() -> None:
    counts: dict[tuple[str, str], int] = {}
    bad: list[str] = []
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for func, line, text in _findings(path):
            key = (rel, func)
            counts[key] = counts.get(key, 0) + 1
            if key not in ALLOWED:
                bad.append(f"{rel}:{line} in {func}: {text}")
    assert not bad, "release-number checks in planning code (make them RuleSet switches):\n" + "\n".join(bad)
    over = {k: (counts.get(k, 0), n) for k, (n, _why) in ALLOWED.items() if counts.get(k, 0) > n}
    assert not over, f"more release checks than allowed: {over}"
    stale = [k for k in ALLOWED if k not in counts]
    assert not stale, f"allow-list entries with nothing left to allow (remove them): {stale}"


def test_family_release_views_read_switches_not_release_numbers() -> None:
    # model/families: a family's for_release(model, rules) view gets the release's RuleSet and reads its switches
    import inspect
    import textwrap

    from vramplan.model.families import _FAMILIES, _load

    _load()
    hooks = {f.name: f.for_release for f in _FAMILIES.values() if f.for_release is not None}
    assert {"qwen3", "qwen3_moe", "qwen3_5", "mimo_v2"} <= set(hooks)
    bad = []
    for name, hook in hooks.items():
        tree = ast.parse(textwrap.dedent(inspect.getsource(hook)))
        params = [a.arg for a in tree.body[0].args.args]
        if len(params) != 2 or params[1] != "rules":
            bad.append(f"{name}: {hook.__name__}{tuple(params)} (want (model, rules))")
        for sub in ast.walk(tree):
            if isinstance(sub, ast.Compare) and any(_mentions_release(o) for o in [sub.left, *sub.comparators]):
                bad.append(f"{name}: {ast.unparse(sub)}")
    assert not bad, "family for_release views that compare release numbers (make them RuleSet switches):\n" + \
        "\n".join(bad)


def test_the_walk_catches_what_it_should(tmp_path: Path) -> None:
    src = ("def f(rules, v):\n    a = rules.version >= (0, 26, 0)\n    b = v < (0, 14, 0)\n"
           "    c = _at_least(v, (0, 20, 0))\n    d = cc < (9, 0)\n    return a, b, c, d\n")
    tmp = tmp_path / "probe.py"
    tmp.write_text(src)
    texts = [t for _f, _l, t in _findings(tmp)]
    assert len(texts) == 3 and not any("cc <" in t for t in texts)  # two release comparisons + the _at_least call


# docs/vllm-rules.md "Where the rules changed": switch -> first release with the new rule (the value from then on)
CHANGE_POINTS: dict[str, tuple[tuple[int, int], object, object]] = {
    # switch: (first release, value before, value from then on)
    "default_gpu_memory_utilization": ((0, 20), 0.9, 0.92),
    "estimate_cudagraphs_default": ((0, 20), False, True),
    "batched_dp_moe_batch_default": ((0, 20), False, True),
    "hybrid_align_kernel_block": ((0, 20), False, True),
    "hybrid_block_from_backend": ((0, 20), False, True),
    "spec_decode_rounding_any_runner": ((0, 20), False, True),
    "mimo_v2_v_head_unpadded": ((0, 20), False, True),
    "graph_estimate_on_rocm": ((0, 21), False, True),
    "capture_max_num_tokens": ((0, 21), False, True),
    "kv_tokens_from_concurrency": ((0, 21), False, True),
    "kv_no_memory_text_cpu_note": ((0, 22), False, True),
    "v2_runner_auto": ((0, 22), False, True),
    "mm_prefix_lm_min_batched_tokens": ((0, 22), False, True),
    "decode_rounds_skip_v2": ((0, 25), False, True),
    "mxfp4_triton_drops_loaded_scales": ((0, 25), False, True),
    "admission_counts_concurrent_batches": ((0, 26), False, True),
    "mamba_all_counts_spec_blocks": ((0, 26), False, True),
    "flash_attn_xpu_block_64": ((0, 26), False, True),
    "modelopt_nvfp4_kv": ((0, 26), False, True),
    "kv_dtypes_v026": ((0, 26), False, True),
    "mxfp4_scale_pad_k4": ((0, 26), False, True),
    "transformers5": ((0, 26), False, True),
    "vit_heads_fallback": ((0, 26), False, True),
    "v2_profiles_encoder": ((0, 27), False, True),
    "plamo2_fp16": ((0, 27), False, True),
    "hybrid_prefix_caching_default": ((0, 28), False, True),
    "large_batch_tier": ((0, 28), False, True),
    "sm100_capture_max_1024": ((0, 28), False, True),
    "kv_capacity_one_line": ((0, 28), False, True),
    "sliding_window_extra_retained": ((0, 28), False, True),
    "v2_runner_every_model": ((0, 29), False, True),
    "v2_runner_estimates_graphs": ((0, 29), False, True),
    "uniform_decode_capture_sizes": ((0, 29), False, True),
    "null_block_in_check": ((0, 29), False, True),
    "rope_scaling_factor_not_applied": ((0, 30), False, True),
    "sp_capture_sizes_unchanged": ((0, 32), False, True),
    "mamba_cache_mode_all_removed": ((0, 32), False, True),
    "v2_runner_rocm_dsa": ((0, 32), False, True),
    "mrope_positions_factor": ((0, 32), False, True),
    "gb10_small_batch_tier": ((0, 33), False, True),
    "cublas_handles_in_init_device": ((0, 33), False, True),
    "fa4_head256_block": ((0, 33), False, True),
    "hybrid_mla_align_128": ((0, 33), False, True),
    "prefill_checkpoint_blocks": ((0, 33), False, True),
    "graph_estimate_on_xpu": ((0, 33), False, True),
    "kv_dtypes_v033": ((0, 33), False, True),
    "v2_load_log_says_memory": ((0, 33), False, True),
    "default_block_size": ((0, 34), 16, 64),
    "v1_model_runner": ((0, 34), True, False),
    "cudagraph_estimate_only_when_applied": ((0, 34), False, True),
    "kv_memory_hint_in_errors": ((0, 34), False, True),
    "split_capture_sizes": ((0, 34), False, True),
    "kimi_k3_dsa": ((0, 34), False, True),
    "flashkda_prefill_workspace": ((0, 34), False, True),
    "fp8_kv_load_workspace": ((0, 34), True, False),
    "tower_first_pp_stage_only": ((0, 33), False, True),
    "deepstack_needs_tower": ((0, 32), False, True),
    "sampler_fp32_warmup_pass": ((0, 33), False, True),
}
# VllmConfig._is_default_v2_model_runner_model's rule per release (docs/vllm-rules.md §5)
V2_RULE = {(0, 22): "dense_unquantized", (0, 23): "dense_unquantized", (0, 24): "listed"}

RELEASES = [(0, 6, 0), (0, 6, 4), (0, 6, 5)] + [(0, m, p) for m in range(7, 36) for p in (0, 1)]


@pytest.mark.parametrize("platform", ["cuda", "rocm", "ascend"])
@pytest.mark.parametrize("release", RELEASES, ids=lambda r: ".".join(map(str, r)))
def test_every_release_gets_the_documented_switches(release: tuple[int, int, int], platform: str) -> None:
    rules = for_version(release, allow_older=True, platform=platform)
    for name, (first, before, after) in CHANGE_POINTS.items():
        want = after if release[:2] >= first else before
        assert getattr(rules, name) == want, f"{name} for {release} on {platform}: {getattr(rules, name)}"
    rule = V2_RULE.get(release[:2], "dense_unquantized" if release[:2] < (0, 22) else "generate_non_hybrid")
    assert rules.v2_default_rule == rule
    assert bool(rules.extensible_kv_cache_platforms) == (release[:2] >= (0, 34))
    if platform != "ascend":  # vllm-ascend brings its own MoE and MLA layers: the planner reads these on CUDA/ROCm
        assert rules.moe_workspace_manager == rules.mla_profile_dummy == (release[:2] >= (0, 17))
    assert ("Qwen3ForCausalLM" in rules.v2_default_archs) == ((0, 22) <= release[:2] < (0, 25))
