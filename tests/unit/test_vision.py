"""Vision towers from configs (vramplan.model.vision).

Expected parameter counts are hand arithmetic from the catalog configs, written out next to
each test; published figures are quoted where they exist (Qwen2.5-VL: "675M"-class ViT,
Qwen3-VL-8B ~576M, SigLIP-so400m ~400M, CLIP ViT-L/14-336 ~304M).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.model.description import Shard
from vramplan.model.vision import (
    describe_vision,
    param_numel,
    param_numel_per_rank,
    vision_family,
    vision_param_count,
    vision_weight_bytes,
    vision_weight_elements,
)

CATALOG = Path(__file__).resolve().parents[2] / "vramplan" / "catalog"


def cfg(repo: str) -> dict:
    return json.loads((CATALOG / repo / "config.json").read_text())


def by_name(spec, name):
    return next(p for p in spec.params if p.name == name)


def test_qwen25_vl_3b_vit_params():
    # patch_embed Conv3d 1280 x (3*2*14*14=1176), no bias             = 1,505,280
    # per block: norm1 + norm2 (RMSNorm weights)          2 * 1280     =     2,560
    #   qkv 1280 x 3840 + 3840                                         = 4,919,040
    #   proj 1280 x 1280 + 1280                                        = 1,639,680
    #   gate_up 1280 x 6840 + 6840                                     = 8,762,040
    #   down 3420 x 1280 + 1280                                        = 4,378,880
    #   block total                                                    = 19,702,200;  x 32 = 630,470,400
    # merger: ln_q 1280; mlp.0 5120x5120+5120 = 26,219,520; mlp.2 5120x2048+2048 = 10,487,808 -> 36,708,608
    # total 1,505,280 + 630,470,400 + 36,708,608                       = 668,684,288  (~669M)
    spec = describe_vision(cfg("Qwen/Qwen2.5-VL-3B-Instruct"))
    assert spec.family == "qwen2_5_vl"
    assert vision_param_count(spec) == 668_684_288
    assert (spec.num_layers, spec.hidden_size, spec.num_heads, spec.intermediate_size) == (32, 1280, 16, 3420)
    assert (spec.patch_size, spec.spatial_merge_size, spec.temporal_patch_size) == (14, 2, 2)
    assert spec.out_hidden_size == 2048
    assert spec.supports_encoder_tp_data
    assert spec.extra["fullatt_block_indexes"] == (7, 15, 23, 31)
    assert spec.extra["window_size"] == 112


def test_qwen25_vl_7b_vit_params():
    # Same tower; merger mlp.2 is 5120 x 3584 + 3584 = 18,353,664 instead of 10,487,808:
    # 668,684,288 - 10,487,808 + 18,353,664 = 676,550,144 (the "675M" class ViT of the report)
    assert vision_param_count(describe_vision(cfg("Qwen/Qwen2.5-VL-7B-Instruct"))) == 676_550_144


def test_qwen3_vl_8b_vit_params():
    # patch_embed 1152 x (3*2*16*16=1536) + bias 1152                  = 1,770,624
    # pos_embed 2304 x 1152                                            = 2,654,208
    # per block: 2 LayerNorms (w+b) 4 x 1152 = 4,608; qkv 1152x3456+3456 = 3,984,768;
    #   proj 1152x1152+1152 = 1,328,256; fc1 1152x4304+4304 = 4,962,512; fc2 4304x1152+1152 = 4,959,360
    #   block total 15,239,504; x 27                                   = 411,466,608
    # merger: LayerNorm(1152) 2,304; fc1 4608x4608+4608 = 21,238,272; fc2 4608x4096+4096 = 18,878,464
    #                                                                  = 40,119,040
    # deepstack merger: LayerNorm(4608) 9,216 + same fc1/fc2 = 40,125,952; x 3 = 120,377,856
    # total                                                            = 576,388,336  (~576M)
    spec = describe_vision(cfg("Qwen/Qwen3-VL-8B-Instruct"))
    assert spec.family == "qwen3_vl"
    assert vision_param_count(spec) == 576_388_336
    assert spec.num_deepstack == 3
    assert spec.extra["deepstack_visual_indexes"] == (8, 16, 24)
    # embeddings handed to the LM: out_hidden * (1 + deepstack) = 4096 * 4
    assert spec.extra["embed_dim_per_token"] == 16384


def test_qwen3_vl_moe_family():
    spec = describe_vision(cfg("Qwen/Qwen3-VL-30B-A3B-Instruct"))
    assert spec.family == "qwen3_vl_moe" and spec.supports_encoder_tp_data
    # Same tower as 8B with out_hidden 2048: the 4 mergers' fc2 shrink by 4608 x 2048 + 2048 each:
    # 576,388,336 - 4 * (4608*2048 + 2048) = 576,388,336 - 4 * 9,439,232 = 538,631,408
    assert vision_param_count(spec) == 538_631_408


def test_gemma3_siglip_and_projector():
    # SigLIP so400m/14 @ 896: patch conv 1152x3x14x14 + 1152 = 678,528; pos 4096 x 1152 = 4,718,592;
    # 27 layers x 15,239,504 (same layer as Qwen3-VL-8B's) = 411,466,608; post_layernorm 2,304
    #   tower = 416,866,032
    # projector: mm_input_projection_weight 1152 x 2560 = 2,949,120 + mm_soft_emb_norm 1,152
    #   total = 419,816,304
    spec = describe_vision(cfg("google/gemma-3-4b-it"))
    assert spec.family == "gemma3"
    assert vision_param_count(spec) == 419_816_304
    assert not spec.supports_encoder_tp_data
    assert spec.extra["pool_kernel"] == 4  # 64 patches a side pooled to 16
    assert by_name(spec, "multi_modal_projector.mm_input_projection_weight").shard is Shard.REPLICATED


def test_llava15_drops_last_clip_layer():
    # vision_feature_layer -2 -> vLLM builds 24 - 2 + 1 = 23 layers and no post_layernorm.
    # embeddings: class 1024 + patch conv 1024x3x14x14 = 602,112 + pos 577 x 1024 = 590,848; pre LN 2,048
    # layer: 2 LN 4,096 + qkv 1024x3072+3072 = 3,148,800 + out 1,049,600 + fc1 4,198,400 + fc2 4,195,328
    #        = 12,596,224; x 23 = 289,713,152
    # projector: 1024x4096+4096 = 4,198,400; 4096x4096+4096 = 16,781,312
    # total 1,024 + 602,112 + 590,848 + 2,048 + 289,713,152 + 4,198,400 + 16,781,312 = 311,888,896
    spec = describe_vision(cfg("llava-hf/llava-1.5-7b-hf"))
    assert spec.family == "llava"
    assert spec.num_layers == 23 and spec.extra["config_layers"] == 24
    assert not any("post_layernorm" in p.name for p in spec.params)
    assert not any(".layers.23." in p.name for p in spec.params)
    assert vision_param_count(spec) == 311_888_896
    assert by_name(spec, "multi_modal_projector.linear_1.weight").shard is Shard.COLUMN
    assert by_name(spec, "multi_modal_projector.linear_2.weight").shard is Shard.ROW


def test_shard_kinds_follow_vllm():
    spec = describe_vision(cfg("Qwen/Qwen2.5-VL-3B-Instruct"))
    qkv = by_name(spec, "visual.blocks.0.attn.qkv.weight")
    assert qkv.shard is Shard.QKV and qkv.shape == (16, 16, 80, 1280)
    assert param_numel(qkv) == 3 * 1280 * 1280
    assert by_name(spec, "visual.blocks.0.attn.qkv.bias").shape == (16, 16, 80, 1)
    assert by_name(spec, "visual.blocks.0.attn.proj.weight").shard is Shard.ROW
    assert by_name(spec, "visual.blocks.0.attn.proj.bias").shard is Shard.REPLICATED
    assert by_name(spec, "visual.blocks.0.mlp.gate_up_proj.weight").shard is Shard.COLUMN
    assert by_name(spec, "visual.blocks.0.mlp.gate_up_proj.bias").shard is Shard.COLUMN
    assert by_name(spec, "visual.merger.mlp.0.weight").shard is Shard.COLUMN
    assert by_name(spec, "visual.patch_embed.proj.weight").shard is Shard.REPLICATED
    # rotary cache: get_rope(head 80, max_position 8192, partial 0.5) -> (8192, 40), model dtype
    rope = by_name(spec, "visual.rotary_pos_emb.cos_sin_cache")
    assert rope.part == "buffer" and rope.shape == (8192, 40)
    assert param_numel_per_rank(qkv, 2) == 3 * 640 * 1280


def test_tp_weight_bytes_qwen25_3b():
    # Replicated under TP: patch_embed 1,505,280; per block norm1+norm2+proj.bias+down.bias 4 x 1280 = 5,120
    # (x 32 = 163,840); merger ln_q 1,280 + mlp.2 bias 2,048 -> 1,672,448 replicated elements.
    # Sharded: 668,684,288 - 1,672,448 = 667,011,840 -> 333,505,920 per rank at TP=2.
    # Per rank: 335,178,368 elements x 2 bytes = 670,356,736 + rope cache 8192 x 40 x 2 = 655,360
    spec = describe_vision(cfg("Qwen/Qwen2.5-VL-3B-Instruct"))
    assert vision_weight_bytes(spec, tp=2) == 670_356_736 + 655_360
    # --mm-encoder-tp-mode data: whole tower on every rank = (668,684,288 + 327,680) x 2
    assert vision_weight_bytes(spec, tp=2, mm_encoder_tp_mode="data") == (668_684_288 + 327_680) * 2
    assert vision_weight_elements(spec, tp=1) == 668_684_288 + 327_680


def test_data_mode_ignored_where_unsupported():
    spec = describe_vision(cfg("google/gemma-3-4b-it"))
    assert vision_weight_bytes(spec, tp=2, mm_encoder_tp_mode="data") == vision_weight_bytes(spec, tp=2)


def test_mistral3_pixtral_tower():
    spec = describe_vision(cfg("mistralai/Mistral-Small-3.1-24B-Instruct-2503"))
    assert spec.family == "mistral3" and spec.num_layers == 24  # vision_feature_layer -1
    # patch merger: Linear(1024 * 4 -> 1024), no bias, replicated
    merger = by_name(spec, "multi_modal_projector.patch_merger.merging_layer.weight")
    assert merger.shape == (1024, 4096) and merger.shard is Shard.REPLICATED
    # Pixtral-HF layers have no biases
    assert not any(p.name.endswith(".bias") and ".transformer." in p.name for p in spec.params)


def test_llama4_scout_vision():
    spec = describe_vision(cfg("meta-llama/Llama-4-Scout-17B-16E-Instruct"))
    assert spec.family == "llama4" and spec.num_layers == 34 and spec.supports_encoder_tp_data
    assert by_name(spec, "vision_model.vision_adapter.mlp.fc1.weight").shape == (4096, 5632)
    assert by_name(spec, "multi_modal_projector.linear_1.weight").shape == (5120, 4096)


def test_mllama_cross_attention_layers_from_transformers_defaults():
    # Not in the catalog: the transformers MllamaConfig defaults give an 11B-shaped model whose
    # text cross-attention layers are [3, 8, 13, 18, 23, 28, 33, 38] (MllamaTextConfig default).
    spec = describe_vision({"model_type": "mllama", "architectures": ["MllamaForConditionalGeneration"]})
    assert spec.family == "mllama"
    assert spec.extra["cross_attention_layers"] == (3, 8, 13, 18, 23, 28, 33, 38)
    assert spec.extra["vllm_removed_in"] == (0, 10, 2)
    assert spec.num_layers == 32 + 8  # local + global encoder layers


def test_internvl_remote_config_defaults():
    # InternVL2.5-8B-like remote-code config: InternViT-300M (24 layers), select_layer -1,
    # pixel shuffle 0.5 -> mlp1 input 1024 * 4 = 4096.
    spec = describe_vision({"model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
                            "llm_config": {"hidden_size": 4096}, "vision_config": {}})
    assert spec.family == "internvl" and spec.num_layers == 24 and spec.supports_encoder_tp_data
    assert by_name(spec, "mlp1.1.weight").shape == (4096, 4096)
    assert spec.extra["tokens_per_tile"] == 256


def test_text_only_is_none():
    assert describe_vision(cfg("Qwen/Qwen3-8B")) is None
    assert vision_family(cfg("Qwen/Qwen3-8B")) is None


@pytest.mark.parametrize("repo", ["Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-32B-Instruct",
                                  "google/gemma-3-12b-it", "google/gemma-3-27b-it"])
def test_every_catalog_vlm_builds(repo):
    spec = describe_vision(cfg(repo))
    assert spec is not None and vision_param_count(spec) > 0
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names))
