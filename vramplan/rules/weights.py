"""Weights per rank: what ``Model loading took X GiB`` measures, from the config alone.

vLLM measures weights as the allocated bytes after loading minus before
(v0.26.0 ``vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.load_model`` inside
``DeviceMemoryProfiler``), so the figure is every parameter and buffer the model
creates on this rank: its own shard of each tensor, padded vocab rows, replicated KV
heads, quantization scales, and the rotary caches. This rule did not change between
v0.19 and v0.33.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from ..model.description import ModelDescription, Param, QuantSpec, Shard
from ..model.quant import dtype_bytes, is_ignored, quantized_weight_bytes
from ..units import cdiv, round_up

__all__ = ["WeightShares", "weights_per_rank", "pp_layer_split", "pad_vocab_size", "kv_heads_per_rank"]

# vLLM v0.26.0 vllm/model_executor/layers/vocab_parallel_embedding.py:DEFAULT_VOCAB_PADDING_SIZE
VOCAB_PADDING = 64


def pad_vocab_size(vocab: int, pad_to: int = VOCAB_PADDING) -> int:
    """vLLM ``pad_vocab_size``: round the vocabulary up to a multiple of 64."""
    return round_up(vocab, pad_to)


def kv_heads_per_rank(num_kv_heads: int, tp: int) -> int:
    """KV heads each TP rank holds: split when ``tp <= kv``, else 1 head replicated.

    vLLM v0.26.0 vllm/model_executor/layers/linear.py:QKVParallelLinear (num_kv_head_replicas)
    and vllm/config/model.py:ModelConfig.get_num_kv_heads (``max(1, total // tp)``).
    """
    return max(1, num_kv_heads // tp)


def pp_layer_split(num_layers: int, pp: int, partition: str | None = None) -> list[tuple[int, int]]:
    """(start, end) layer indices of each pipeline stage.

    vLLM v0.26.0 vllm/distributed/utils.py:get_pp_indices: ``L // pp`` layers each, the
    remainder given one by one to the stages before the last (``partitions[-i] += 1`` for
    i = 2 .. r+1); ``VLLM_PP_LAYER_PARTITION`` ("12,11,...") overrides it.
    """
    if partition:
        sizes = [int(x) for x in partition.split(",")]
    else:
        sizes = [num_layers // pp] * pp
        for i in range(2, num_layers % pp + 2):
            sizes[-i] += 1
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightShares:
    """The weight bytes one rank allocates, split by part of the model."""

    total_bytes: int
    parts: tuple[tuple[str, int], ...]
    """(part, bytes): embed, attention, mlp, moe, norm, lm_head, vision, buffer."""
    num_layers: int
    """Decoder layers on this rank's pipeline stage."""
    num_params: int
    """Parameters (elements) on this rank, buffers excluded."""
    offloaded_bytes: int = 0
    """Decoder-layer weights moved to pinned host memory by ``--cpu-offload-gb`` (not in ``total_bytes``)."""

    def part(self, name: str) -> int:
        return dict(self.parts).get(name, 0)


def _rank_shape(p: Param, *, tp: int, moe_tp: int, ep: int) -> tuple[int, ...]:
    """The shape of one rank's shard of ``p`` (QKV expanded to (rows, in))."""
    s = p.shape
    if p.shard is Shard.REPLICATED:
        return s
    if p.shard is Shard.COLUMN:
        rows = cdiv(s[0], tp)
        if p.row_align:  # a merged layer padding its TP-local output (Param.row_align)
            rows = -(-(rows + p.row_extra) // p.row_align) * p.row_align - p.row_extra
        return (rows,) + s[1:]
    if p.shard is Shard.ROW:
        return (s[0], cdiv(s[1], tp)) + s[2:]
    if p.shard is Shard.VOCAB:
        return (pad_vocab_size(s[0]) // tp,) + s[1:]
    if p.shard is Shard.QKV:
        q, kv, d, n = s
        rows = (cdiv(q, tp) + 2 * kv_heads_per_rank(kv, tp)) * d
        return (rows, n)
    if p.shard in (Shard.EXPERT_COLUMN, Shard.EXPERT_ROW):
        if p.min_inter_per_tp and ep == 1 and tp > 1:  # Param.min_inter_per_tp (Kimi-K3's padded experts)
            inter = s[1] // 2 if p.shard is Shard.EXPERT_COLUMN else s[2]
            if inter // tp < p.min_inter_per_tp:
                inter = p.min_inter_per_tp * tp
                s = (s[0], 2 * inter) + s[2:] if p.shard is Shard.EXPERT_COLUMN else s[:2] + (inter,) + s[3:]
        e = cdiv(s[0], ep)
        if p.shard is Shard.EXPERT_COLUMN:
            return (e, cdiv(s[1], moe_tp)) + s[2:]
        return (e, s[1], cdiv(s[2], moe_tp)) + s[3:]
    raise AssertionError(p.shard)


def _param_bytes(p: Param, shape: tuple[int, ...], quant: QuantSpec | None, dtype: str, *,
                 unquantized_copies: bool = False) -> int:
    if p.quantized_only and quant is None and not unquantized_copies:
        return 0
    expert = p.part == "moe" and p.shard in (Shard.EXPERT_COLUMN, Shard.EXPERT_ROW)
    if quant is not None and quant.expert_quant is not None and expert and p.quantizable:
        return quantized_weight_bytes(shape, quant.expert_quant, dtype)
    if quant is not None and quant.moe_pad and expert:
        shape = _pad_expert(shape, p.shard, quant.moe_pad)
    if quant is not None and quant.moe_layout == "triton_hopper" and expert:
        if p.quantizable:
            return _triton_hopper_expert_bytes(shape, quant)
        return int(math.prod(shape) * 4)  # biases turned to float32 for the kernel
    if quant is not None and quant.method == "modelopt_mixed":
        # ModelOpt MIXED_PRECISION: each listed module (the LM head included) has its own algorithm
        from ..model.quant import algo_spec, mixed_algo

        algo = mixed_algo(quant, p.name) if (p.quantizable or p.name.startswith("lm_head")) else None
        if algo is not None:
            return quantized_weight_bytes(shape, algo_spec(quant, algo), dtype)
        return int(math.prod(shape) * dtype_bytes(p.dtype or dtype))
    if quant is not None and p.quantizable and not is_ignored(quant, p.name):
        if quant.method != "mxfp4" or p.part == "moe":  # gpt-oss: only the experts are mxfp4
            return quantized_weight_bytes(shape, quant, dtype)
    return int(math.prod(shape) * dtype_bytes(p.dtype or dtype))


def _triton_hopper_expert_bytes(shape: tuple[int, ...], quant: QuantSpec) -> int:
    """One mxfp4 expert weight (E, out, in) after the Triton swizzle on Hopper.

    vllm/model_executor/layers/quantization/utils/mxfp4_utils.py:_swizzle_mxfp4 transposes, then triton_kernels
    (vllm/third_party/triton_kernels/tensor_details/layout_details): HopperMXValueLayout pads the packed values
    (out, in/2) to multiples of (16, 32); HopperMXScaleLayout pads the scales (out, in/32) to (256, 2) with 8
    warps. Versions before 0.25 keep the loaded scales too.
    """
    e, out_f, in_f = shape if len(shape) == 3 else (1, *shape)
    values = e * round_up(out_f, 16) * round_up(cdiv(in_f, 2), 32)
    groups = round_up(cdiv(in_f, 32), quant.moe_scale_pad_k)
    scales = e * round_up(out_f, 256) * round_up(groups, 2)
    loaded = e * out_f * cdiv(in_f, 32) if quant.moe_scale_copy else 0
    return values + scales + loaded


def _pad_expert(shape: tuple[int, ...], shard: Shard, pad: tuple[int, int]) -> tuple[int, ...]:
    """Expert weights rounded up as the kernel backend allocates them.

    vLLM v0.26.0 vllm/model_executor/layers/fused_moe/oracle/mxfp4.py:
    mxfp4_round_up_hidden_size_and_intermediate_size (Marlin: hidden to 256, intermediate per
    partition to 128). w13 is (E, 2 x I, H), w2 is (E, H, I); biases follow their weight.
    """
    hid, inter = pad
    if shard is Shard.EXPERT_COLUMN:
        e, two_i, *rest = shape
        h = rest[0] if rest else 1
        return (e, 2 * round_up(two_i // 2, inter), round_up(h, hid) if h > 1 else h)
    e, h, *rest = shape
    i = rest[0] if rest else 1
    return (e, round_up(h, hid), round_up(i, inter) if i > 1 else i)


@lru_cache(maxsize=4096)
def weights_per_rank(
    model: ModelDescription,
    *,
    dtype: str,
    quant: QuantSpec | None,
    tp: int = 1,
    pp: int = 1,
    pp_rank: int = 0,
    dp: int = 1,
    expert_parallel: bool = False,
    pp_partition: str | None = None,
    vision_replicated: bool = False,
    vision_whole_prefixes: tuple[str, ...] = (),
    max_num_batched_tokens: int = 0,
    cpu_offload_bytes: int = 0,
    vision_built: bool = True,
    deepstack_needs_tower: bool = False,
    allocator_blocks: bool = False,
    allocator_max_split_bytes: int | None = None,
    allocator_reserved: bool = False,
    unquantized_copies: bool = False,
) -> WeightShares:
    """Bytes of weights on one rank (TP rank 0 of pipeline stage ``pp_rank``).

    MoE experts: vLLM v0.26.0 vllm/model_executor/layers/fused_moe/config.py:FusedMoEParallelConfig.make
    shards experts TP-style over ``tp x dp`` ranks, or with ``--enable-expert-parallel``
    gives each of the ``tp x dp`` ranks whole experts (EP) with no TP inside them.

    ``allocator_blocks``: add the caching allocator's rounding (part ``allocator``, rules/allocator.py), the
    tensors allocated in vLLM's creation order, under ``allocator_max_split_bytes`` (``max_split_size``);
    ``allocator_reserved``: the segments reserved instead of the blocks allocated (an engine that reads free memory).
    ``unquantized_copies``: the model-dtype copies (``Param.quantized_only``) exist also without a quantization, made
    after loading (SGLang's MLA ``w_kc`` / ``w_vc``: sglang 0.5.17 / 0.5.23
    models/deepseek_common/deepseek_weight_loader.py:post_load_weights, ``.contiguous()`` copies of ``kv_b_proj``).
    """
    moe_tp, ep = (1, tp * dp) if expert_parallel else (tp * dp, 1)
    start, end = pp_layer_split(model.num_hidden_layers, pp, pp_partition)[pp_rank]
    parts: dict[str, int] = {}
    numel = 0
    sections: list[tuple[str, tuple[Param, ...], int]] = []  # (group, params, shard_tp) in call order

    def add(params: tuple[Param, ...], count: int = 1, *, shard_tp: int = tp, group: str = "other") -> None:
        nonlocal numel
        sections.append((group, params, shard_tp))
        for p in params:
            shape = _rank_shape(p, tp=shard_tp, moe_tp=moe_tp, ep=ep)
            nbytes = _param_bytes(p, shape, quant, dtype, unquantized_copies=unquantized_copies) * count
            parts[p.part] = parts.get(p.part, 0) + nbytes
            if p.part != "buffer" and not (p.quantized_only and quant is None):
                numel += math.prod(shape) * count

    # Identical layers are priced once and multiplied (most models repeat one layer).
    counts: dict[int, tuple[tuple[Param, ...], int]] = {}
    for params in model.layer_params[start:end]:
        key = id(params)
        prev = counts.get(key)
        counts[key] = (params, (prev[1] if prev else 0) + 1)
    for params, count in counts.values():
        add(params, count, group="layers")
    offloaded = 0
    if cpu_offload_bytes > 0:
        for part, nbytes in _offloaded_parts(model.layer_params[start:end], cpu_offload_bytes, rank_bytes=lambda p: (
                _param_bytes(p, _rank_shape(p, tp=tp, moe_tp=moe_tp, ep=ep), quant, dtype))):
            parts[part] -= nbytes
            offloaded += nbytes
    if pp_rank == 0:
        # a tower carried with the embeddings (families' extra_params, part "vision", e.g. Gemma 4) is skipped
        # like a VisionSpec tower when it is not built
        add(model.embed_params if vision_built else tuple(p for p in model.embed_params if p.part != "vision"),
            group="embed")
    last = pp_rank == pp - 1
    if last:
        add(model.head_params)
        if model.tie_word_embeddings and pp > 1:
            # With PP the last stage cannot share the first stage's embedding: vLLM gives it its own lm_head.
            add(tuple(Param(name="lm_head.weight", shape=p.shape, shard=p.shard, part="lm_head")
                      for p in model.embed_params))
    add(model.buffer_params, group="buffers")
    if model.token_buffers and max_num_batched_tokens:
        # per-token buffers allocated at init on every rank (inside "Model loading took"), e.g. vLLM v0.34.0
        # vllm/models/deepseek_v32/nvidia/model.py:DeepseekV32Model.__init__ topk_indices_buffer
        add(tuple(Param(name=p.name, shape=(max_num_batched_tokens,) + p.shape, part=p.part, dtype=p.dtype)
                  for p in model.token_buffers))
    if model.vision is not None and not vision_built:
        # the tower is a StageMissingLayer (interfaces.py SupportsMultiModal._mark_tower_model): no weights; the
        # deepstack buffers go with it where the release ties them to the tower (qwen3_vl.py use_deepstack)
        if model.vision.num_deepstack and max_num_batched_tokens and not deepstack_needs_tower:
            add((Param(name="deepstack_input_embeds", shape=(model.vision.num_deepstack, max_num_batched_tokens,
                                                             model.hidden_size), part="buffer"),))
    elif model.vision is not None:
        if vision_whole_prefixes and not vision_replicated:  # parts of the tower held whole (e.g. InternViT attention)
            whole = tuple(p for p in model.vision.params if p.name.startswith(vision_whole_prefixes))
            add(whole, shard_tp=1, group="vision")
            add(tuple(p for p in model.vision.params if not p.name.startswith(vision_whole_prefixes)),
                group="vision")
        else:
            add(model.vision.params, shard_tp=1 if vision_replicated else tp, group="vision")
        if model.vision.num_deepstack and max_num_batched_tokens:
            # vLLM v0.26.0 vllm/model_executor/models/qwen3_vl.py:Qwen3VLForConditionalGeneration.__init__:
            # one zeroed [max_num_batched_tokens, text hidden] buffer per deepstack level, allocated at
            # init (so inside "Model loading took"), on every rank, not split by TP.
            add((Param(name="deepstack_input_embeds", shape=(model.vision.num_deepstack, max_num_batched_tokens,
                                                             model.hidden_size), part="buffer"),))
    if allocator_blocks:
        layers = [(params, tp) for params in model.layer_params[start:end]]
        exact = sum(parts.values())
        blocks = _allocator_bytes(sections, layers, moe_tp=moe_tp, ep=ep, quant=quant, dtype=dtype,
                                  max_split_bytes=allocator_max_split_bytes, reserved=allocator_reserved,
                                  unquantized_copies=unquantized_copies)
        if blocks > exact:
            parts["allocator"] = blocks - exact
    order = ("embed", "attention", "mlp", "moe", "norm", "lm_head", "vision", "buffer", "other", "allocator")
    ordered = tuple((k, parts[k]) for k in order if k in parts)
    return WeightShares(total_bytes=sum(parts.values()), parts=ordered, num_layers=end - start, num_params=numel,
                        offloaded_bytes=offloaded)


def _is_rope_cache(p: Param) -> bool:
    return p.name.endswith(("cos_sin_cache", "cos_sin_cache [sglang]"))


def _allocator_bytes(sections, layers, *, moe_tp: int, ep: int, quant: QuantSpec | None, dtype: str,
                     max_split_bytes: int | None, reserved: bool = False, unquantized_copies: bool = False) -> int:
    """The allocator's block bytes for the rank's tensors (rules/allocator.py), in vLLM's creation order as the
    multimodal wrappers build it: the vision tower first (e.g. vLLM v0.26.0
    vllm/model_executor/models/qwen2_5_vl.py:Qwen2_5_VLForConditionalGeneration.__init__), then the embedding, the
    decoder layers (the text rotary cache with the first layer's attention, ``get_rope`` building it once, v0.26.0
    vllm/model_executor/models/qwen2.py:Qwen2Attention.__init__), the final norm and head, and the other buffers.
    Each parameter is one tensor; a rotary cache (``*cos_sin_cache``) brings its float32 temporaries. MXFP4 experts
    on the Triton kernel on Hopper are their loaded tensors, then their post-load conversion
    (:func:`_mxfp4_triton_processing`)."""
    from .allocator import Alloc, Free, allocated_block_bytes, rope_cache_events

    groups: dict[str, list[tuple[tuple[Param, ...], int]]] = {}
    for group, params, shard_tp in sections:
        if group != "layers":
            groups.setdefault(group, []).append((params, shard_tp))
    # a rotary cache: vLLM's ``*.cos_sin_cache``, or the SGLang view's (engines/sglang/rope.py names it
    # ``... .cos_sin_cache [sglang]``)
    ropes = [p for params, _ in groups.get("buffers", ()) for p in params if _is_rope_cache(p)]
    others = [p for params, _ in groups.get("buffers", ()) for p in params if not _is_rope_cache(p)]
    ordered: list[tuple[tuple[Param, ...], int]] = [*groups.get("vision", ()), *groups.get("embed", ())]
    for i, (params, shard_tp) in enumerate(layers):
        if i == 0:  # the cache follows the first layer's leading attention tensors
            n = next((k for k, p in enumerate(params) if p.part != "attention"), len(params))
            ordered += [(params[:n], shard_tp), (tuple(ropes), 1), (params[n:], shard_tp)]
        else:
            ordered.append((params, shard_tp))
    if not layers:
        ordered.append((tuple(ropes), 1))
    ordered += [*groups.get("other", ()), (tuple(others), 1)]
    events: list[int] = []
    triton = quant is not None and quant.moe_layout == "triton_hopper" and quant.expert_quant is None
    after_load: list[int] = []  # process_weights_after_loading, run once every tensor exists
    for params, shard_tp in ordered:
        converted: list[tuple[bool, int, int]] = []  # (is bias, new bytes, loaded event freed or -1) of this layer
        for p in params:
            shape = _rank_shape(p, tp=shard_tp, moe_tp=moe_tp, ep=ep)
            nbytes = _param_bytes(p, shape, quant, dtype, unquantized_copies=unquantized_copies)
            if not nbytes:
                continue
            if p.quantized_only and quant is None:  # an unquantized copy: made after loading
                after_load.append(Alloc(nbytes))
                continue
            if triton and p.part == "moe" and p.shard in (Shard.EXPERT_COLUMN, Shard.EXPERT_ROW):
                if quant.moe_pad:
                    shape = _pad_expert(shape, p.shard, quant.moe_pad)
                loaded = _mxfp4_triton_loaded(p, shape, dtype)
                first = len(events)
                events += [Alloc(n) for n in loaded]
                converted.append(_mxfp4_triton_processing(p, shape, quant, first))
            elif _is_rope_cache(p) and len(shape) == 2:
                events += rope_cache_events(len(events), shape[0], shape[1], nbytes // max(1, math.prod(shape)))
            else:
                events.append(Alloc(nbytes))
        # the float32 biases, then the swizzled scales, are built before any loaded tensor is released (the
        # scales at the end of the swizzle, the biases by replace_parameter after it)
        converted.sort(key=lambda c: not c[0])
        after_load += [Alloc(n) for _, n, _ in converted]
        after_load += [Free(i) for bias, _, i in converted if not bias and i >= 0]
        after_load += [Free(i) for bias, _, i in converted if bias]
    events += after_load
    return allocated_block_bytes(events, max_split_bytes=max_split_bytes, reserved=reserved)


def _mxfp4_triton_loaded(p: Param, shape: tuple[int, ...], dtype: str) -> tuple[int, ...]:
    """The tensors one expert parameter is created as, in creation order.

    vLLM v0.26.0 / v0.34.0 vllm/model_executor/layers/quantization/mxfp4.py:Mxfp4MoEMethod.create_weights
    (GptOssMxfp4MoEMethod in 0.34): ``w13_weight`` (E, 2I, H/2) uint8 then ``w13_weight_scale`` (E, 2I, H/32) uint8,
    ``w2_weight`` (E, H, I/2) and ``w2_weight_scale`` (E, H, I/32), then ``w13_bias`` (E, 2I) and ``w2_bias`` (E, H)
    in the model dtype: each its own allocation.
    """
    e, out_f, in_f = shape if len(shape) == 3 else (1, *shape)
    if not p.quantizable:  # a bias, (E, out, 1) in this description
        return (e * out_f * dtype_bytes(dtype),)
    return (e * out_f * cdiv(in_f, 2), e * out_f * cdiv(in_f, 32))


def _mxfp4_triton_processing(p: Param, shape: tuple[int, ...], quant: QuantSpec, first: int) -> tuple[bool, int, int]:
    """What the post-load conversion allocates and frees for one expert parameter created at event ``first``:
    (is a bias, bytes of the new tensor, event index of the loaded tensor it frees or -1).

    vLLM v0.34.0 vllm/model_executor/layers/fused_moe/oracle/mxfp4.py:convert_gpt_oss_weight_to_mxfp4_moe_kernel_format
    (TRITON branch; v0.26.0 the same function):

    - the biases become float32 copies (``w13_bias.to(torch.float32)``) that replace the loaded ones
      (vllm/model_executor/utils.py:replace_parameter: a larger tensor is rebound, the loaded one freed);
    - ``_swizzle_mxfp4`` (quantization/utils/mxfp4_utils.py) builds new swizzled scales (HopperMXScaleLayout:
      rows to 256, groups to 2, after the pad of the groups to 4 from 0.26); the loaded scales are freed
      (0.34 ``store_params_in_triton`` rebinds the parameter to the larger swizzled storage; 0.25-0.33
      ``del layer.w13_weight_scale``), kept before 0.25 (``QuantSpec.moe_scale_copy``);
    - the swizzled values have the loaded byte count (HopperMXValueLayout pads (out, in/2) to (16, 32), a no-op
      for gpt-oss): 0.34 copies them back into the loaded storage (replace_parameter / ``_in_own_storage``), 0.26
      keeps the new tensor and drops the loaded one, which leaves a block of the same rounded size either way, so
      the values are not replayed.

    The conversion's own temporaries (pads, transposes, the value swizzle's copies) are freed before the next layer
    and not replayed; nor is 0.34's ``empty_cache`` before the conversion (vllm/model_executor/model_loader/
    base_loader.py:BaseModelLoader.load_model).
    """
    if not p.quantizable:
        return (True, int(math.prod(shape) * 4), first)
    full = _triton_hopper_expert_bytes(shape, replace(quant, moe_scale_copy=False))
    e, out_f, in_f = shape if len(shape) == 3 else (1, *shape)
    values = e * round_up(out_f, 16) * round_up(cdiv(in_f, 2), 32)
    return (False, full - values, -1 if quant.moe_scale_copy else first + 1)


def _offloaded_parts(layers, limit: int, *, rank_bytes) -> list[tuple[str, int]]:
    """The parameters ``--cpu-offload-gb`` moves to host memory, as (part, bytes).

    vLLM v0.26.0 vllm/model_executor/offloader/uva.py:UVAOffloader._maybe_offload_to_cpu, called by
    vllm/model_executor/models/utils.py:make_layers for each decoder layer of this stage in order: whole
    parameters move, one after another, while the offloaded total is below the limit (so the last one may
    overshoot it). Embeddings, the LM head, buffers and vision towers (not built by make_layers) stay.
    The order inside a layer is this description's (attention, then MLP or experts, then norms), close to
    the module registration order vLLM walks.
    """
    moved: list[tuple[str, int]] = []
    total = 0
    for params in layers:
        for p in params:
            if total >= limit:
                return moved
            if p.part == "buffer":
                continue
            nbytes = rank_bytes(p)
            moved.append((p.part, nbytes))
            total += nbytes
    return moved
