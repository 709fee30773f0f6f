"""What a model is, as far as memory goes: typed, frozen, and free of I/O.

A :class:`ModelDescription` is built once from a model's config files
(:mod:`vramplan.model.from_config`) and then read by the engine rules. It holds
no engine flags: how the weights split over TP/PP ranks, how big a KV page is,
and how large the profile run gets are questions the rules answer from it.

Sizes are counted in elements, never bytes: the dtype is applied by the rules
(the model dtype, the KV-cache dtype, or a quantization scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from enum import Enum
from typing import Literal

__all__ = [
    "Shard",
    "Param",
    "LayerKind",
    "AttentionSpec",
    "ExtraCache",
    "MambaSpec",
    "LayerSpec",
    "MoESpec",
    "QuantSpec",
    "VisionSpec",
    "ModelDescription",
]


class Shard(str, Enum):
    """How vLLM splits one parameter over tensor-parallel ranks."""

    REPLICATED = "replicated"
    """Every rank holds the whole tensor (norms, biases of row-parallel layers, routers)."""
    COLUMN = "column"
    """``ColumnParallelLinear``: the output dim (dim 0) is split by TP."""
    ROW = "row"
    """``RowParallelLinear``: the input dim (dim 1) is split by TP."""
    VOCAB = "vocab"
    """``VocabParallelEmbedding`` / ``ParallelLMHead``: rows padded to 64, then split by TP."""
    QKV = "qkv"
    """``QKVParallelLinear``: query heads split by TP, KV heads split or replicated."""
    EXPERT_COLUMN = "expert_column"
    """``FusedMoE`` w13: experts split by EP, else the intermediate dim split by TP x DP."""
    EXPERT_ROW = "expert_row"
    """``FusedMoE`` w2: experts split by EP, else the intermediate dim split by TP x DP."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One weight tensor (or one buffer) of the checkpoint, before any sharding."""

    name: str
    """A readable name, e.g. ``layers.*.self_attn.qkv_proj.weight``."""
    shape: tuple[int, ...]
    """Full (unsharded) shape. QKV params use (num_heads, num_kv_heads, head_dim, in_features)."""
    shard: Shard = Shard.REPLICATED
    part: str = "other"
    """Which term of the breakdown it belongs to: embed, attention, mlp, moe, norm, lm_head, vision, buffer."""
    quantizable: bool = False
    """True for the linear layers a checkpoint quantization applies to."""
    dtype: str | None = None
    """A fixed dtype (e.g. ``float32`` for an fp32 buffer); None means the model dtype."""
    row_align: int = 0
    """``Shard.COLUMN`` only: vLLM pads each rank's rows (plus ``row_extra``) up to a multiple of this (0: none), as
    Kimi-K3's KDA ``in_proj_qkvgfab`` pads its TP-local output to 16 rows (vLLM v0.34.0
    vllm/models/kimi_k3/nvidia/kda.py:KimiK3DeltaAttention.__init__, ``in_proj_padding``)."""
    row_extra: int = 0
    """Rows of the same merged layer held by another (replicated) param, counted in the ``row_align`` rounding."""
    quantized_only: bool = False
    """A model-dtype copy that exists only when the model is quantized (0 bytes without a quantization): MLA's
    ``W_UK_T`` / ``W_UV``, which are views of an unquantized ``kv_b_proj`` weight (``get_and_maybe_dequant_weights``
    returns the weight itself when no dequantization is needed; vLLM v0.26.0 / v0.34.0
    vllm/model_executor/layers/attention/mla_attention.py:MLAAttention.process_weights_after_loading)."""
    min_inter_per_tp: int = 0
    """Expert shards only: with TP > 1 and no expert parallelism, an intermediate size whose ``I // TP`` is below this
    becomes ``this x TP`` (vLLM v0.34.0 vllm/models/kimi_k3/nvidia/model.py:KimiMoE ``padded_moe_intermediate_size``,
    ``min_moe_intermediate_per_partition`` 256); 0: none."""


class LayerKind(str, Enum):
    """The KV-cache kind of a decoder layer, as vLLM's ``KVCacheSpec`` classes name them."""

    FULL = "full_attention"
    SLIDING = "sliding_window"
    CHUNKED_LOCAL = "chunked_local_attention"
    MLA = "mla"
    MAMBA = "mamba"
    """Any recurrent state: Mamba-2, gated delta-net (linear attention), short conv."""
    CROSS = "cross_attention"
    NONE = "none"
    """A layer with no KV cache (e.g. a dense MLP-only layer)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtraCache:
    """One more KV-cache layer a decoder layer registers beside (or instead of) its attention cache (DeepSeek-V4:
    sliding-window cache, compressed MLA cache, compressor states, indexer cache)."""

    role: str
    kind: Literal["full", "sliding"]
    """``full``: an ``MLAAttentionSpec`` (blocks for the whole context); ``sliding``: a ``SlidingWindowMLASpec``."""
    head_size: int
    """Elements of one stored state."""
    dtype: str
    """``kv`` (the KV-cache dtype), ``float32`` or ``uint8``."""
    ds_mla_bytes: int = 0
    """Bytes of one state when the KV dtype is ``fp8_ds_mla`` and ``dtype`` is ``kv`` (its packed record)."""
    block_size: int | None = None
    """Tokens per block; None: ``cache_config.block_size``."""
    tokens_per_state: int = 1
    sliding_window: int | None = None
    align_ds_mla: int = 576
    """Page alignment with the ``fp8_ds_mla`` cache (``_apply_alignment_padding``)."""
    align_plain: int = 512
    """Page alignment otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionSpec:
    """The attention of one layer, as the KV cache sees it."""

    num_kv_heads: int
    """Total KV heads (before TP). MLA: 1 (the latent is not split by TP)."""
    head_size: int
    """K head size. MLA: kv_lora_rank + qk_rope_head_dim."""
    head_size_v: int | None = None
    """V head size when it differs from K (None: same). MLA stores no V."""
    sliding_window: int | None = None
    chunk_size: int | None = None
    has_sinks: bool = False
    sparse: bool = False
    """DeepSeek Sparse Attention (DSA): MLA read through a top-k indexer (sparse MLA backends)."""
    indexer_bytes_per_token: int = 0
    """Bytes per token of the layer's lightning-indexer K cache (fp8 keys + float32 scales, stored as uint8), a
    separate vLLM cache layer of the same block size; 0 when the layer has no indexer of its own."""
    indexer_packed: bool = False
    """The indexer's backend declares block-outermost layouts only (Kimi-K3.1 in vLLM 0.34:
    ``KimiK3IndexerBackend.supported_kv_cache_layouts`` is ``(BLHNC,)``), so vLLM packs the MLA and indexer pages
    (and the KDA states) by ``_get_packed_kv_cache_groups`` instead of one uniform-type group."""
    extra_caches: tuple[ExtraCache, ...] = ()
    """Several cache layers of one decoder layer, packed by vLLM's block-outermost grouping (DeepSeek-V4); when set,
    they are the layer's whole KV cache."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MambaSpec:
    """A recurrent layer's per-request state, as vLLM's ``MambaSpec`` holds it."""

    kind: Literal["gdn", "mamba2", "short_conv"]
    conv_dim: int
    """Channels of the causal conv state (split by TP)."""
    conv_kernel: int
    num_heads: int
    """Heads of the recurrent state (split by TP). GDN: num_v_heads."""
    head_k_dim: int
    head_v_dim: int
    state_dtype: str | None = None
    """dtype of the SSM state (GDN keeps it in float32 by default in some versions); None: model dtype."""
    n_groups: int = 0
    """Mamba-2: B/C groups (``n_groups``); when TP does not divide them vLLM replicates them up to TP
    (``MambaStateShapeCalculator.extra_groups_for_head_shards``). 0: not a Mamba-2 layer."""
    state_size: int = 0
    """Mamba-2: ``ssm_state_size`` (the N of the B/C groups in the conv channels)."""
    state_dtype_by_release: tuple[tuple[tuple[int, int, int], str], ...] = ()
    """When the config states no SSM dtype: (first vLLM release, dtype) pairs, the newest at or below the planned
    release applies (NemotronH's fallback moved from float16 to float32); empty: ``state_dtype``."""
    ssm_dtypes: tuple[str, ...] = ()
    """The ``--mamba-ssm-cache-dtype`` values the layer accepts besides ``auto`` (empty: any). Kimi-K3's KDA takes
    float32 and bfloat16 only (vLLM v0.34.0 mamba_utils.py:MambaStateDtypeCalculator.kda_state_dtype)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerSpec:
    """One decoder layer: its KV kind and its attention or recurrent state."""

    index: int
    kind: LayerKind
    attention: AttentionSpec | None = None
    mamba: MambaSpec | None = None
    is_moe: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MoESpec:
    num_experts: int
    top_k: int
    intermediate_size: int
    """Per expert."""
    num_shared_experts: int = 0
    shared_intermediate_size: int = 0
    has_bias: bool = False
    activation: str = ""
    """The experts' activation where it decides the MXFP4 kernel (Kimi-K3: ``situ``); empty: the family's usual."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantSpec:
    """A checkpoint quantization, from ``quantization_config`` (or the ``--quantization`` flag)."""

    method: str
    """vLLM's name: fp8, compressed-tensors, gptq, awq, gptq_marlin, awq_marlin, mxfp4, bitsandbytes, ..."""
    weight_bits: int
    group_size: int | None = None
    """Elements per scale along the input dim (None: per channel; -1: per tensor)."""
    block: tuple[int, int] | None = None
    """Block-wise scales (fp8 ``weight_block_size``)."""
    act_order: bool = False
    zero_point: bool = False
    scale_dtype: str = "float32"
    ignored: tuple[str, ...] = ()
    """Module name patterns left unquantized (``modules_to_not_convert`` / ``ignore``)."""
    kv_cache_dtype: str | None = None
    """KV-cache dtype the checkpoint asks for (e.g. fp8 ``kv_cache_scheme``)."""
    moe_pad: tuple[int, int] | None = None
    """(hidden, intermediate) round-up of MoE expert weights the chosen kernel backend needs
    (mxfp4 Marlin: 256, 128; mxfp4 Triton: 1, 64, the hidden size kept)."""
    moe_layout: str = ""
    """The mxfp4 expert layout the kernel backend converts to: ``marlin``, ``triton_hopper`` (OAI triton_kernels
    swizzle on sm90), or empty (as loaded)."""
    moe_scale_copy: bool = False
    """The loaded mxfp4 scales stay allocated next to the swizzled ones (vLLM 0.14-0.24 Triton path)."""
    moe_scale_pad_k: int = 1
    """Scale groups padded to this multiple before the Hopper swizzle (4 from vLLM 0.26)."""
    expert_quant: QuantSpec | None = None
    """A second scheme for the routed experts only (DeepSeek-V4: MXFP4 experts in an FP8 block checkpoint)."""
    weight_format: str = ""
    """``nvfp4``: e2m1 weights packed 2 per byte, fp8 scales per 16, fp32 global scales (ModelOpt NVFP4 and the
    compressed-tensors ``nvfp4-pack-quantized`` format); empty for the other formats."""
    per_module: tuple[tuple[str, str], ...] = ()
    """ModelOpt ``MIXED_PRECISION``: (module path inside a decoder layer, or ``lm_head``; quant_algo) from
    ``quantized_layers``. Modules not listed stay unquantized (vLLM v0.34.0
    vllm/model_executor/layers/quantization/modelopt.py:ModelOptMixedPrecisionConfig.get_quant_method)."""
    raw: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VisionSpec:
    """A vision (or audio) encoder and its projector. Filled by :mod:`vramplan.model.vision`."""

    family: str
    params: tuple[Param, ...]
    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    patch_size: int
    spatial_merge_size: int = 1
    temporal_patch_size: int = 1
    out_hidden_size: int = 0
    """Width of the embeddings handed to the language model."""
    num_deepstack: int = 0
    supports_encoder_tp_data: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)


# Architectures vLLM dropped before the oldest release vramplan models, with the last release that had them
# (vLLM v0.26.0 vllm/model_executor/models/registry.py:_PREVIOUSLY_SUPPORTED_MODELS): every modelled
# version refuses them.
REMOVED_FROM_VLLM: dict[str, str] = {
    "MllamaForConditionalGeneration": "0.10.2",
    "DonutForConditionalGeneration": "0.10.2",
    "MotifForCausalLM": "0.10.2",
    "Phi4FlashForCausalLM": "0.10.2",
    "Phi3SmallForCausalLM": "0.9.2",
    "Phi4MultimodalForCausalLM": "0.12.0",
}


def removed_from_vllm_message(arch: str) -> str:
    """vLLM's own refusal (registry.py: _ModelRegistry._raise_for_unsupported) for an architecture it dropped."""
    return (f"Model architecture {arch} was supported in vLLM until v{REMOVED_FROM_VLLM[arch]}, and is not "
            "supported anymore. Please use an older version of vLLM if you want to use this model architecture.")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ModelDescription:
    """Everything the rules need to know about one model, in elements and counts.

    Compared and hashed by identity (``eq=False``), so rules can cache per-model results cheaply.
    """

    name: str
    """What the user called it (catalog id, path or Hub id)."""
    architecture: str
    """``architectures[0]`` of the config, as vLLM resolves it."""
    family: str
    """vramplan's family key, e.g. ``llama``, ``qwen3_moe``, ``deepseek_v2``."""
    dtype: str
    """The model dtype vLLM picks with ``--dtype auto`` (from ``torch_dtype``)."""
    hidden_size: int
    vocab_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    num_hidden_layers: int
    max_position_embeddings: int
    """The config's context limit after vLLM's rope-scaling rules (``derived_max_model_len``)."""
    tie_word_embeddings: bool
    layers: tuple[LayerSpec, ...]
    layer_params: tuple[tuple[Param, ...], ...]
    """Params of each decoder layer (same order as ``layers``)."""
    embed_params: tuple[Param, ...]
    head_params: tuple[Param, ...]
    """Final norm and LM head (the head is absent when tied)."""
    buffer_params: tuple[Param, ...] = ()
    """Non-persistent buffers created at init (rotary cos/sin caches)."""
    token_buffers: tuple[Param, ...] = ()
    """Buffers created at init with one row per scheduled token: ``shape`` is one row, the rules multiply it by
    ``max_num_batched_tokens`` (e.g. DeepSeek-V3.2's int32 top-k indices buffer)."""
    moe: MoESpec | None = None
    quant: QuantSpec | None = None
    vision: VisionSpec | None = None
    is_multimodal: bool = False
    model_type: str = ""
    text_model_type: str = ""
    sliding_window: int | None = None
    rope_scaling: dict | None = None
    hf_config: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    """The resolved config (transformers defaults filled in)."""
    preprocessor_config: dict | None = field(default=None, compare=False, hash=False, repr=False)
    source: str = ""
    """Where the config came from: catalog, local folder, Hub cache."""
    checkpoint_bytes: int | None = None
    """Bytes of the checkpoint's tensors from its safetensors headers, when they could be read (Hub or local)."""
    checkpoint_source: str = ""
    notes: tuple[str, ...] = ()
    raw_config: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    """config.json as written (before library defaults); ``--hf-overrides`` re-describes from it."""

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def layer_kinds(self) -> frozenset[LayerKind]:
        return _layer_kinds(self)

    @property
    def is_hybrid(self) -> bool:
        """Attention and recurrent layers together (vLLM's ``is_hybrid``)."""
        kinds = self.layer_kinds
        return LayerKind.MAMBA in kinds and bool(kinds - {LayerKind.MAMBA, LayerKind.NONE})

    @property
    def uses_mla(self) -> bool:
        return LayerKind.MLA in self.layer_kinds

    @property
    def max_attention_head_size(self) -> int | None:
        """The largest K head size over the attention layers (None without attention)."""
        return _max_head(self)


@lru_cache(maxsize=256)
def _max_head(model: ModelDescription) -> int | None:
    return max((layer.attention.head_size for layer in model.layers if layer.attention), default=None)


@lru_cache(maxsize=256)
def _layer_kinds(model: ModelDescription) -> frozenset[LayerKind]:
    """The kinds of the model's layers (descriptions are immutable and hashed by identity)."""
    return frozenset(layer.kind for layer in model.layers)
