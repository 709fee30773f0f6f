"""Issue 12 item 5: one module per model family, registered by architecture name; the generic modules dispatch
through the registry and name no family themselves (checked on their syntax trees)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT
from vramplan.model import families

PKG = ROOT / "vramplan"
# The generic modules: no comparison of a family/architecture expression with a string literal, and no family or
# architecture name as a string literal at all (tables keyed by them belong in the family modules).
GENERIC = ["model/from_config.py", "model/vision.py", "model/mm_tokens.py", "estimate/encoder.py"]
# (module, literal) pairs allowed: the encoder's stage model reads the ViT *kind* a tower declares in
# ``VisionSpec.extra["arch"]`` (the Qwen ViT's stages, InternViT's extra norms, Pixtral's dense mask), which several
# families share; those are layer kinds of the generic machinery, not family names.
ALLOWED: set[tuple[str, str]] = {("estimate/encoder.py", "qwen_vit"), ("estimate/encoder.py", "internvit"),
                                 ("estimate/encoder.py", "pixtral")}
_FAMILYISH = {"fam", "family", "arch", "architecture", "vision_family", "model_type"}


def _familyish(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _FAMILYISH
    if isinstance(node, ast.Attribute):
        return node.attr in _FAMILYISH
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return any(isinstance(a, ast.Constant) and a.value in _FAMILYISH for a in node.args)
    return False


def _str_literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _str_literals(e)]
    return []


@pytest.mark.parametrize("rel", GENERIC)
def test_generic_module_compares_no_family_literal(rel: str) -> None:
    tree = ast.parse((PKG / rel).read_text())
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if any(_familyish(s) for s in sides):
            for s in sides:
                bad += [(rel, lit, node.lineno) for lit in _str_literals(s) if (rel, lit) not in ALLOWED]
    assert not bad, f"family comparisons left in generic modules: {bad}"


@pytest.mark.parametrize("rel", GENERIC)
def test_generic_module_names_no_family(rel: str) -> None:
    names = set(families.registered_architectures()) | set(families.wrapper_architectures())
    names |= {f.name for f in families._FAMILIES.values()}
    tree = ast.parse((PKG / rel).read_text())
    found = sorted({(n.value, n.lineno) for n in ast.walk(tree)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names
                    and (rel, n.value) not in ALLOWED})
    assert not found, f"{rel} names families or architectures: {found}"


def test_every_family_module_registers_something() -> None:
    before = set(families._FAMILIES)
    assert before, "the registry loaded no family"
    for mod in families._MODULES:
        module = __import__(f"vramplan.model.families.{mod}", fromlist=["register"])
        assert module.__doc__, f"families/{mod}.py has no docstring saying what it reads"


def test_architecture_maps_to_its_family() -> None:
    """Hand-written expectations (the table that used to live in model/from_config.py)."""
    expected = {
        "LlamaForCausalLM": ("llama", False), "MistralForCausalLM": ("llama", False),
        "Phi3ForCausalLM": ("llama", False), "GraniteForCausalLM": ("llama", False),
        "PhiForCausalLM": ("phi", False), "Qwen2ForCausalLM": ("qwen2", False), "Qwen3ForCausalLM": ("qwen3", False),
        "Qwen2MoeForCausalLM": ("qwen2_moe", False), "Qwen3MoeForCausalLM": ("qwen3_moe", False),
        "Qwen3NextForCausalLM": ("qwen3_next", False), "Gemma2ForCausalLM": ("gemma2", False),
        "Gemma3ForCausalLM": ("gemma3", False), "MixtralForCausalLM": ("mixtral", False),
        "GptOssForCausalLM": ("gpt_oss", False), "DeepseekV2ForCausalLM": ("deepseek_v2", False),
        "DeepseekV3ForCausalLM": ("deepseek_v2", False), "Qwen2VLForConditionalGeneration": ("qwen2", True),
        "Qwen2_5_VLForConditionalGeneration": ("qwen2", True), "Qwen3VLForConditionalGeneration": ("qwen3", True),
        "Qwen3VLMoeForConditionalGeneration": ("qwen3_moe", True),
        "Gemma3ForConditionalGeneration": ("gemma3", True), "Llama4ForConditionalGeneration": ("llama4", True),
    }
    for arch, fam in expected.items():
        assert families.family_for_architecture(arch) == fam, arch
    wrappers = {"LlavaForConditionalGeneration": "llama", "LlavaNextForConditionalGeneration": "llama",
                "Mistral3ForConditionalGeneration": "llama", "InternVLChatModel": "qwen2",
                "KimiVLForConditionalGeneration": "deepseek_v2"}
    for arch, fam in wrappers.items():
        assert families.wrapper_default(arch) == fam, arch
    text_types = {"llama": "llama", "mistral": "llama", "granite": "llama", "internlm2": "llama", "phi3": "llama",
                  "qwen2": "qwen2", "qwen3": "qwen3", "qwen2_moe": "qwen2_moe", "qwen3_moe": "qwen3_moe",
                  "deepseek_v2": "deepseek_v2", "deepseek_v3": "deepseek_v2", "gemma2": "gemma2"}
    for mt, fam in text_types.items():
        assert families.family_for_text_type(mt) == fam, mt


def test_vision_towers_by_model_type_and_architecture() -> None:
    """Hand-written expectations (the tables that used to live in model/vision.py)."""
    from vramplan.model import vision

    by_type = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl",
               "qwen3_vl_moe": "qwen3_vl_moe", "qwen3_5": "qwen3_vl", "qwen3_5_moe": "qwen3_vl_moe", "gemma3": "gemma3",
               "llava": "llava", "llava_next": "llava_next", "mistral3": "mistral3", "internvl_chat": "internvl",
               "kimi_vl": "kimi_vl", "kimi_k25": "kimi_k25", "kimi_k3": "kimi_k3", "llama4": "llama4", "mllama": "mllama"}
    for mt, fam in by_type.items():
        assert vision.vision_family({"model_type": mt}) == fam, mt
    by_arch = {"Qwen2VLForConditionalGeneration": "qwen2_vl", "Qwen2_5_VLForConditionalGeneration": "qwen2_5_vl",
               "Qwen3VLForConditionalGeneration": "qwen3_vl", "Qwen3VLMoeForConditionalGeneration": "qwen3_vl_moe",
               "Gemma3ForConditionalGeneration": "gemma3", "LlavaForConditionalGeneration": "llava",
               "LlavaNextForConditionalGeneration": "llava_next", "Mistral3ForConditionalGeneration": "mistral3",
               "InternVLChatModel": "internvl", "KimiVLForConditionalGeneration": "kimi_vl",
               "KimiK25ForConditionalGeneration": "kimi_k25", "KimiK3ForConditionalGeneration": "kimi_k3",
               "KimiK31ForConditionalGeneration": "kimi_k3", "Llama4ForConditionalGeneration": "llama4",
               "MllamaForConditionalGeneration": "mllama"}
    for arch, fam in by_arch.items():
        assert vision.vision_family({"model_type": "unknown", "architectures": [arch]}) == fam, arch
    assert vision.vision_family({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}) is None
    assert vision.FAMILIES == tuple(sorted(set(by_type.values())))


def test_token_rules_per_tower() -> None:
    """Which towers count video, which refuse, and which have no token rules (as before the move)."""
    from vramplan.model.mm_tokens import supported_modalities

    for fam in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"):
        assert supported_modalities(fam) == ("image", "video")
    for fam in ("gemma3", "llava", "llava_next", "mistral3", "internvl", "kimi_vl", "llama4", "kimi_k25"):
        assert supported_modalities(fam) == ("image",)
    assert families.vision_tower("mllama").refusal is not None
    assert families.vision_tower("kimi_k25").item is None  # no token rules: the planner says so in one line
