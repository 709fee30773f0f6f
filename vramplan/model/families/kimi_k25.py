"""Kimi-K2.5 (``KimiK25ForConditionalGeneration``): DeepSeek-V3 text + the MoonViT-3D vision tower.

Read in vLLM v0.34.0 ``vllm/model_executor/models/kimi_k25.py:KimiK25ForConditionalGeneration.__init__``:

- the language model is ``init_vllm_registered_model(text_config, architectures=["DeepseekV2ForCausalLM"])``: the
  DeepSeek-V2/V3 decoder (MLA, ``DeepseekV2MoE`` with shared experts, ``noaux_tc`` bias) priced by
  ``model/families/deepseek_v2.py:build``; ``num_nextn_predict_layers`` is 0 in the public config;
- ``vision_tower`` = ``kimi_k25_vit.py:MoonViT3dPretrainedModel`` and ``mm_projector`` =
  ``KimiK25MultiModalProjector`` (patchmerger: LayerNorm + two ReplicatedLinear with bias), both in the model
  dtype: ``_maybe_ignore_quant_config`` drops a compressed-tensors quantization for them;
- the vision layers split by TP (``is_vit_use_data_parallel``: ``--mm-encoder-tp-mode data`` replicates them):
  ``wqkv`` QKVParallelLinear, ``wo`` RowParallelLinear, ``mlp.fc0`` Column, ``mlp.fc1`` Row, LayerNorms;
- the patch embedding is a Conv2d (patch x patch, bias by default), a learnable (pos_emb_height, pos_emb_width,
  hidden) position table and a float32 ``time_weight`` buffer (pos_emb_time, 1, hidden);
- the 2-D rope table (``Rope2DPosEmbRepeated.freqs_cis``, complex64, 512 x 512 x head_dim / 2) is registered on
  the first encoder call, i.e. during the profile run, not at load: it is not in the weights figure.

The INT4 checkpoint (compressed-tensors ``pack-quantized``, int4 symmetric, group 32) quantizes the routed
experts only (``ignore``: attention, shared experts, dense MLPs, lm_head): vLLM v0.34.0
``compressed_tensors_moe_wna16.py:CompressedTensorsWNA16MoEMethod.create_weights`` keeps ``w13/w2_weight_packed``
(int32, 8 values each: in/2 bytes per row), ``w13/w2_weight_scale`` (one per 32 inputs, in the model dtype) and
two (E, 2) ``weight_shape`` tensors; Marlin's repack keeps the sizes.
"""

from __future__ import annotations

from typing import Any

from ..description import Param, Shard, VisionSpec
from . import Family, VisionTower, register, register_vision

__all__ = ["vision_spec"]


def _build(ctx: Any):
    from .deepseek_v2 import build as _deepseek_layers

    return _deepseek_layers(ctx)


def vision_spec(cfg: dict, family: str) -> VisionSpec:
    """MoonViT-3D + the patchmerger projector of Kimi-K2.5, as vLLM v0.34.0 kimi_k25_vit.py allocates them."""
    from ._vit import _encoder_layers, _linear, _norm, _p, _text_hidden

    vc = dict(cfg.get("vision_config") or {})

    def get(*keys: str, default: Any = None) -> Any:
        for k in keys:
            if vc.get(k) is not None:
                return vc[k]
        return default

    width = int(get("hidden_size", "vt_hidden_size"))
    heads = int(get("num_attention_heads", "vt_num_attention_heads"))
    inter = int(get("intermediate_size", "vt_intermediate_size"))
    n = int(get("num_hidden_layers", "vt_num_hidden_layers"))
    patch = int(get("patch_size", default=14))
    kh, kw = (int(x) for x in get("merge_kernel_size", default=(2, 2)))
    pos_h = int(get("init_pos_emb_height", "pos_emb_height"))
    pos_w = int(get("init_pos_emb_width", "pos_emb_width"))
    pos_t = int(get("init_pos_emb_time", "pos_emb_time"))
    attn_bias = bool(get("attn_bias", default=True))
    linear_bias = bool(get("linear_bias", default=True))
    norm_bias = str(get("norm_type", default="layernorm")) == "layernorm"
    if str(get("mm_projector_type", default="patchmerger")) != "patchmerger":
        from ...errors import UnsupportedError

        raise UnsupportedError("Kimi vision projector " + str(get("mm_projector_type")) + " is not modelled",
                               hint="Kimi-K2.5's patchmerger is")
    pre = "vision_tower"
    params = [_p(f"{pre}.patch_embed.proj.weight", (width, 3, patch, patch))]
    if bool(get("patch_embed_proj_bias", default=True)):
        params.append(_p(f"{pre}.patch_embed.proj.bias", (width,)))
    params += [_p(f"{pre}.patch_embed.pos_emb.weight", (pos_h, pos_w, width)),
               _p(f"{pre}.patch_embed.pos_emb.time_weight", (pos_t, 1, width), dtype="float32", part="buffer")]
    names = {"ln1": "norm0", "qkv": "wqkv", "o": "wo", "ln2": "norm1", "fc1": "mlp.fc0", "fc2": "mlp.fc1"}
    params += _encoder_layers(f"{pre}.encoder.blocks", n, width, heads, inter, names=names, qkv_bias=attn_bias,
                              o_bias=attn_bias, mlp_bias=linear_bias, gated=False, norm_bias=norm_bias)
    params += _norm(f"{pre}.encoder.final_layernorm", width, bias=norm_bias)
    text_hidden = _text_hidden(cfg)
    merged = width * kh * kw
    params += _norm("mm_projector.pre_norm", width, bias=True)
    params += _linear("mm_projector.linear_1", merged, merged, Shard.REPLICATED, bias=True, q=False)
    params += _linear("mm_projector.linear_2", merged, text_hidden, Shard.REPLICATED, bias=True, q=False)
    # the checkpoint quantization is dropped for the tower and projector (_maybe_ignore_quant_config)
    params = [Param(name=p.name, shape=p.shape, shard=p.shard, part=p.part, quantizable=False, dtype=p.dtype)
              for p in params]
    extra = {
        "arch": "moonvit3d", "in_channels": 3, "patch_input_dim": 3 * patch * patch, "head_dim": width // heads,
        "mlp": "plain", "norm": "layer", "merge_kernel_size": (kh, kw), "loaded_layers": n, "config_layers": n,
        "embed_dim_per_token": text_hidden, "data_mode_replicated": (f"{pre}.",),
        # vLLM v0.26.0 kimi_k25.py:KimiK25ForConditionalGeneration passes vision num_attention_heads to
        # is_vit_use_data_parallel (planner._vit_heads_fallback, RuleSet.vit_heads_fallback)
        "dp_when_heads_indivisible": True,
        "notes": ("the 2-D rope table (complex64, 512 x 512 x head_dim / 2) is created on the first encoder call "
                  "(profile run), not at load", "encoder profile not modelled for Kimi-K2.5"),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, spatial_merge_size=kh, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


register(Family(
    name="kimi_k25",
    builder=_build,
    vision=vision_spec,
    architectures={"KimiK25ForConditionalGeneration": True},
    # vllm/model_executor/models/registry.py: absent from 0.14.1, present in 0.15.0
    introduced={"KimiK25ForConditionalGeneration": ((0, 15, 0), "absent from 0.14.1, present in 0.15.0")},
))
register_vision(VisionTower(name="kimi_k25", build=vision_spec, model_types=("kimi_k25",),
                            architectures=("KimiK25ForConditionalGeneration",)))
