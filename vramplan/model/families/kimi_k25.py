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

__all__ = ["moonvit3d_spec", "vision_spec"]


def _build(ctx: Any):
    from .deepseek_v2 import build as _deepseek_layers

    return _deepseek_layers(ctx)


# MoonViT-3D's vision_config defaults as each model's config class sets them: Kimi-K2.5 has none (its public config
# gives every size), Kimi-K3's are KimiK3VisionConfig's (vllm/transformers_utils/configs/kimi_k3.py)
K25_DEFAULTS: dict[str, Any] = {"attn_bias": True, "linear_bias": True, "norm_type": "layernorm",
                                "patch_embed_proj_bias": True, "mm_projector_type": "patchmerger"}


def moonvit3d_spec(cfg: dict, family: str, *, model: str, defaults: dict[str, Any],
                   projectors: tuple[str, ...]) -> VisionSpec:
    """MoonViT-3D and its projector as vLLM v0.34.0 ``kimi_k25_vit.py:MoonViT3dPretrainedModel`` and
    ``kimi_k25.py:KimiK25MultiModalProjector`` allocate them, for any Kimi model that uses them (Kimi-K2.5, Kimi-K3):
    ``wqkv`` of ``qkv_hidden_size`` (the width unless given), LayerNorm or RMSNorm (weight only), biases per
    ``attn_bias`` / ``linear_bias``; the ``patchmerger`` projector (LayerNorm + two biased linears) or
    ``patchmergerv2`` (two linears without bias + an RMSNorm post_norm of the text width). Model dtype, never
    quantized (``_maybe_ignore_quant_config``). ``defaults``: the model's config-class defaults; ``projectors``: the
    projector types the model's vLLM class builds."""
    from ...errors import ConfigError, UnsupportedError
    from ._vit import _get, _linear, _norm, _p, _text_hidden

    vc = dict(cfg.get("vision_config") or {})

    def get(*keys: str) -> Any:  # the first key given, else the model's default (keyed by the first name)
        return _get(vc, *keys, default=defaults.get(keys[0]))

    width = int(get("vt_hidden_size", "hidden_size"))
    heads = int(get("vt_num_attention_heads", "num_attention_heads"))
    inter = int(get("vt_intermediate_size", "intermediate_size"))
    n = int(get("vt_num_hidden_layers", "num_hidden_layers"))
    qkv = int(get("qkv_hidden_size") or width)
    patch = int(get("patch_size") or 14)
    kh, kw = (int(x) for x in (get("merge_kernel_size") or (2, 2)))
    pos_h = int(get("init_pos_emb_height", "pos_emb_height"))
    pos_w = int(get("init_pos_emb_width", "pos_emb_width"))
    pos_t = int(get("init_pos_emb_time", "pos_emb_time"))
    attn_bias = bool(get("attn_bias"))
    linear_bias = bool(get("linear_bias"))
    norm_type = str(get("norm_type"))
    if norm_type not in ("rmsnorm", "layernorm"):
        raise UnsupportedError(f"{model} vision norm_type {norm_type!r}: vLLM supports layernorm and rmsnorm",
                               hint="use the Hub vision_config")
    norm_bias = norm_type == "layernorm"
    projector = str(get("mm_projector_type"))
    if projector not in projectors:
        raise UnsupportedError(f"Kimi vision projector {projector} is not modelled",
                               hint=f"{model}'s {' and '.join(projectors)} {'is' if len(projectors) == 1 else 'are'}")
    if qkv % heads:
        raise ConfigError(f"{model} vision qkv_hidden_size is not a multiple of vt_num_attention_heads",
                          hint="compare vision_config with the model's Hub config.json")
    head_dim = qkv // heads
    pre = "vision_tower"
    params = [_p(f"{pre}.patch_embed.proj.weight", (width, 3, patch, patch))]
    if bool(get("patch_embed_proj_bias")):
        params.append(_p(f"{pre}.patch_embed.proj.bias", (width,)))
    params += [_p(f"{pre}.patch_embed.pos_emb.weight", (pos_h, pos_w, width)),
               _p(f"{pre}.patch_embed.pos_emb.time_weight", (pos_t, 1, width), dtype="float32", part="buffer")]
    for i in range(n):
        b = f"{pre}.encoder.blocks.{i}"
        params += _norm(f"{b}.norm0", width, bias=norm_bias)
        params.append(_p(f"{b}.wqkv.weight", (heads, heads, head_dim, width), Shard.QKV))
        if attn_bias:
            params.append(_p(f"{b}.wqkv.bias", (heads, heads, head_dim, 1), Shard.QKV))
        params += _linear(f"{b}.wo", qkv, width, Shard.ROW, bias=attn_bias, q=False)
        params += _norm(f"{b}.norm1", width, bias=norm_bias)
        params += _linear(f"{b}.mlp.fc0", width, inter, Shard.COLUMN, bias=linear_bias, q=False)
        params += _linear(f"{b}.mlp.fc1", inter, width, Shard.ROW, bias=linear_bias, q=False)
    params += _norm(f"{pre}.encoder.final_layernorm", width, bias=norm_bias)
    text_hidden = _text_hidden(cfg)
    merged = width * kh * kw
    if projector == "patchmergerv2":
        params += _linear("mm_projector.linear_1", merged, merged, Shard.REPLICATED, bias=False, q=False)
        params += _linear("mm_projector.linear_2", merged, text_hidden, Shard.REPLICATED, bias=False, q=False)
        params += _norm("mm_projector.post_norm", text_hidden, bias=False)
    else:  # patchmerger
        params += _norm("mm_projector.pre_norm", width, bias=True)
        params += _linear("mm_projector.linear_1", merged, merged, Shard.REPLICATED, bias=True, q=False)
        params += _linear("mm_projector.linear_2", merged, text_hidden, Shard.REPLICATED, bias=True, q=False)
    params = [Param(name=p.name, shape=p.shape, shard=p.shard, part=p.part, quantizable=False, dtype=p.dtype)
              for p in params]
    extra = {
        "arch": "moonvit3d", "in_channels": 3, "patch_input_dim": 3 * patch * patch, "head_dim": head_dim,
        "mlp": "plain", "norm": "rms" if norm_type == "rmsnorm" else "layer", "merge_kernel_size": (kh, kw),
        "loaded_layers": n, "config_layers": n, "embed_dim_per_token": text_hidden,
        "data_mode_replicated": (f"{pre}.",),
        # vLLM v0.26.0 kimi_k25.py:KimiK25ForConditionalGeneration (and Kimi-K3's class) pass the vision
        # num_attention_heads to is_vit_use_data_parallel (planner._vit_heads_fallback, RuleSet.vit_heads_fallback)
        "dp_when_heads_indivisible": True,
        # vLLM v0.19.0-v0.34.0 kimi_k25.py:KimiK25ForConditionalGeneration.__init__ marks the tower for the one
        # modality "vision_chunk" (_mark_tower_model): --limit-mm-per-prompt image/video 0 leaves it built (seen on
        # vLLM 0.34.0: kimi25_trim, data/truth/logs/h100f, weights 24.51 GiB with the tower)
        "modalities": ("vision_chunk",),
        "notes": ("the 2-D rope table (complex64, 512 x 512 x head_dim / 2) is created on the first encoder call "
                  "(profile run), not at load", f"encoder profile not modelled for {model}"),
    }
    return VisionSpec(
        family=family, params=tuple(params), num_layers=n, hidden_size=width, num_heads=heads,
        intermediate_size=inter, patch_size=patch, spatial_merge_size=kh, out_hidden_size=text_hidden,
        supports_encoder_tp_data=True, extra=extra,
    )


def vision_spec(cfg: dict, family: str) -> VisionSpec:
    """MoonViT-3D + the patchmerger projector of Kimi-K2.5 (``moonvit3d_spec``)."""
    return moonvit3d_spec(cfg, family, model="Kimi-K2.5", defaults=K25_DEFAULTS, projectors=("patchmerger",))


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
