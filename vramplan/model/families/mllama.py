"""Llama 3.2 Vision (``MllamaForConditionalGeneration``): removed from vLLM in v0.10.2, so every release vramplan
models refuses it; the tower is described (from transformers) so the refusal can say what it would have cost.
"""

from __future__ import annotations


from ..description import REMOVED_FROM_VLLM, Shard, VisionSpec
from . import VisionTower, register_vision
from ._vit import _encoder_layers, _get, _linear, _need, _norm, _p, _removed_in


def _mllama(cfg: dict, family: str) -> VisionSpec:
    """Llama 3.2 Vision (mllama), from transformers' MllamaVisionConfig/MllamaTextConfig.

    vLLM removed ``MllamaForConditionalGeneration`` in v0.10.2 (vLLM v0.26.0
    vllm/model_executor/models/registry.py:_PREVIOUSLY_SUPPORTED_MODELS), so no version
    vramplan models can serve it. Tensors follow transformers' MllamaVisionModel; shards
    follow vLLM's column/row pattern as of its last mllama.py (not in our sources: marked).
    The text model's cross-attention layers are reported in ``extra["cross_attention_layers"]``.
    """
    vc = _need(cfg, "vision_config", family)
    tc = cfg.get("text_config") or {}
    width = int(vc["hidden_size"])
    heads = int(_get(vc, "attention_heads", "num_attention_heads"))
    inter = int(vc["intermediate_size"])
    n_local = int(vc["num_hidden_layers"])
    n_global = int(vc.get("num_global_layers", 8))
    patch, image = int(vc["patch_size"]), int(vc["image_size"])
    ch = int(_get(vc, "num_channels", default=3))
    tiles = int(vc.get("max_num_tiles", 4))
    ratios = int(len(vc.get("supported_aspect_ratios") or [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]))
    grid = image // patch
    head_dim = width // heads
    pre = "vision_model"
    params = [_p(f"{pre}.patch_embedding.weight", (width, ch, patch, patch)),
              _p(f"{pre}.class_embedding", (width,)),
              _p(f"{pre}.gated_positional_embedding.embedding", (grid * grid + 1, width)),
              _p(f"{pre}.gated_positional_embedding.gate", (1,)),
              _p(f"{pre}.gated_positional_embedding.tile_embedding.weight", (ratios + 1, tiles * (grid * grid + 1) * width)),
              _p(f"{pre}.pre_tile_positional_embedding.embedding.weight", (ratios + 1, tiles * width)),
              _p(f"{pre}.pre_tile_positional_embedding.gate", (1,)),
              _p(f"{pre}.post_tile_positional_embedding.embedding.weight", (ratios + 1, tiles * width)),
              _p(f"{pre}.post_tile_positional_embedding.gate", (1,))]
    params += _norm(f"{pre}.layernorm_pre", width, bias=True)
    params += _norm(f"{pre}.layernorm_post", width, bias=True)
    names = {"ln1": "input_layernorm", "qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj",
             "ln2": "post_attention_layernorm", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    params += _encoder_layers(f"{pre}.transformer.layers", n_local, width, heads, inter, names=names,
                              qkv_bias=False, o_bias=False, mlp_bias=True, gated=False, norm_bias=True)
    params += _encoder_layers(f"{pre}.global_transformer.layers", n_global, width, heads, inter, names=names,
                              qkv_bias=False, o_bias=False, mlp_bias=True, gated=False, norm_bias=True)
    for i in range(n_global):
        params += [_p(f"{pre}.global_transformer.layers.{i}.gate_attn", (1,)),
                   _p(f"{pre}.global_transformer.layers.{i}.gate_ffn", (1,))]
    inter_layers = list(vc.get("intermediate_layers_indices") or [3, 7, 15, 23, 30])
    v_out = int(vc.get("vision_output_dim", width * (len(inter_layers) + 1)))
    text_hidden = int(tc.get("hidden_size", 4096))
    params += _linear("multi_modal_projector", v_out, text_hidden, Shard.COLUMN, bias=True)
    cross = tuple(int(i) for i in (tc.get("cross_attention_layers") or ()))
    extra = {
        "arch": "mllama_vit", "in_channels": ch, "patch_input_dim": ch * patch * patch, "head_dim": head_dim,
        "mlp": "plain", "norm": "layer", "image_size": image, "seq_per_crop": grid * grid + 1,
        "max_num_tiles": tiles, "cross_attention_layers": cross, "num_text_layers": tc.get("num_hidden_layers"),
        "loaded_layers": n_local + n_global, "config_layers": n_local + n_global, "embed_dim_per_token": text_hidden,
        "data_mode_replicated": (), "vllm_removed_in": _removed_in("MllamaForConditionalGeneration"),
        "notes": ("MllamaForConditionalGeneration was removed from vLLM after v"
                  f"{REMOVED_FROM_VLLM['MllamaForConditionalGeneration']}: every modelled version refuses it",
                  "tensor list from transformers' MllamaVisionModel; TP shards assumed (vLLM's mllama.py is not in our sources)"),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n_local + n_global, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, out_hidden_size=text_hidden, supports_encoder_tp_data=False,
        extra=extra,
    )


from ..description import removed_from_vllm_message  # noqa: E402

register_vision(VisionTower(name="mllama", build=_mllama, model_types=("mllama",),
                            refusal=(removed_from_vllm_message("MllamaForConditionalGeneration"),
                                     "Llama 3.2 Vision needs an older vLLM, or pick another vision model."),
                            architectures=("MllamaForConditionalGeneration",), needs_image_size=True))
