"""KV cache: page sizes, groups, blocks, token capacity and the max-model-len check.

Mirrors vLLM's ``vllm/v1/kv_cache_interface.py`` (the per-layer specs) and
``vllm/v1/core/kv_cache_utils.py`` (v0.26.0; grouping and sizing moved to
``kv_cache_planning.py`` in v0.33.0). Functions take frozen inputs and return new
values; nothing is changed in place (vLLM's planner mutates ``max_model_len`` during
its binary searches, these do not).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache

from ..memo import by_identity
from ..model.description import LayerKind, ModelDescription
from ..units import cdiv
from .weights import kv_heads_per_rank, pp_layer_split

__all__ = [
    "KVSpec",
    "KVGroup",
    "KVLayout",
    "KVSizing",
    "layer_specs",
    "layer_spec_items",
    "build_layout",
    "max_memory_usage_bytes",
    "needed_bytes",
    "num_blocks_for",
    "capacity",
    "estimate_max_model_len",
]


@dataclass(frozen=True, slots=True)
class KVSpec:
    """One layer's KV spec on one rank (vLLM ``KVCacheSpec``); hashable so layers can be grouped."""

    kind: LayerKind
    block_size: int
    page_bytes: int
    """``page_size_bytes``: bytes one block of this layer occupies."""
    sliding_window: int | None = None
    chunk_size: int | None = None
    mamba_mode: str = "none"
    """For MAMBA layers: vLLM's ``mamba_cache_mode`` (none, align, all)."""
    spec_blocks: int = 0
    """Extra mamba blocks for speculative decoding (``num_speculative_blocks``)."""
    max_encoder_tokens: int = 0
    """For CROSS layers: ``max_num_encoder_input_tokens``."""
    sub_specs: tuple = ()
    """DeepSeek-V4: the layer's several cache layers (each a KVSpec), grouped by :func:`_packed_layout`."""
    role: str = ""
    """For a sub-spec: which cache of the layer it is (swa, mla, compressor, indexer, indexer_compressor)."""
    indexer_page_bytes: int = 0
    """Sparse MLA (DSA): the part of ``page_bytes`` that is the layer's indexer K cache. vLLM registers that cache
    as its own layer (``DeepseekV32IndexerCache``, an ``MLAAttentionSpec`` with ``cache_role=INDEXER``) with the
    same block size, so both land in the one uniform-type group whose block costs the sum of the pages."""
    stride_align: int = 1
    """For a sub-spec of a block-outermost layout: ``KVCacheSpec.get_block_stride_alignment`` (bytes the block
    stride must be a multiple of), set by the backend's ``customize_spec`` / kernel block sizes."""


@dataclass(frozen=True, slots=True)
class KVGroup:
    spec: KVSpec
    layers: tuple[int, ...]
    """Global layer indices in this group (on this rank)."""


@dataclass(frozen=True, slots=True)
class KVLayout:
    """How one rank's KV cache is laid out: vLLM's ``KVCacheConfig`` without the tensors."""

    groups: tuple[KVGroup, ...]
    uniform_type: bool
    """vLLM ``UniformTypeKVCacheSpecs``: one group whose layers differ only in page size."""
    bytes_per_block: int
    """Bytes one block id costs across the rank's layers (the divisor of available memory)."""
    group_size: int
    """Layers per group (vLLM ``num_layer_per_group``); 0 for attention-free models."""
    page_bytes: int
    """The unified page size (general case) or the sum of pages (uniform type)."""
    padding_layers: int = 0
    packed: bool = False
    """vLLM 0.34 block-outermost packing (``_get_packed_kv_cache_groups``): every group draws its block ids from one
    pool of ``bytes_per_block`` slabs and uses its own slice of each; a request needs the sum of its groups' blocks."""

    @property
    def block_size(self) -> int:
        """``cache_config.block_size`` after planning: the smallest group block size (packed DeepSeek-V4 layouts: the
        largest, ``cache_config.block_size``; the sliding-window and compressor caches keep their own smaller ones)."""
        if self.packed:
            return max((g.spec.block_size for g in self.groups), default=0)
        return min((g.spec.block_size for g in self.groups), default=0)


def _kv_bytes(kv_dtype: str, model_dtype: str) -> float:
    from ..model.quant import dtype_bytes

    if kv_dtype in ("auto", None):
        return dtype_bytes(model_dtype)
    if kv_dtype.startswith("fp8") or kv_dtype in ("int8",):
        return 1
    return dtype_bytes(kv_dtype)


def layer_specs(model: ModelDescription, **kw) -> dict[int, KVSpec]:
    """Each layer's KV spec on one rank (cached per model and settings; see ``_layer_specs``)."""
    return dict(_layer_specs_cached(model, tuple(sorted(kw.items()))))


def layer_spec_items(model: ModelDescription, **kw) -> tuple[tuple[int, KVSpec], ...]:
    """``layer_specs`` as the cached ``(layer, spec)`` tuple in layer order: the same object for the same
    model and settings, so :func:`build_layout` can recognise it without hashing every spec."""
    return _layer_specs_cached(model, tuple(sorted(kw.items())))


@lru_cache(maxsize=2048)
def _layer_specs_cached(model: ModelDescription, kw: tuple) -> tuple[tuple[int, KVSpec], ...]:
    return tuple(_layer_specs(model, **dict(kw)).items())


def _layer_specs(
    model: ModelDescription,
    *,
    tp: int,
    block_size: int,
    kv_cache_dtype: str,
    model_dtype: str,
    layers: tuple[int, int] | None = None,
    mamba_mode: str = "none",
    mamba_block_size: int | None = None,
    mamba_ssm_dtype: str | None = None,
    mamba_page_padded: int | None = None,
    max_encoder_tokens: int = 0,
    disable_hybrid: bool = False,
    mamba_ckpt_blocks: int = 0,
) -> dict[int, KVSpec]:
    """Each layer's KV spec on one rank (vLLM ``Attention.get_kv_cache_spec`` and friends).

    Full / sliding / chunked: ``page = block_size x kv_heads_per_rank x (head + head_v) x bytes``
    (vLLM v0.26.0 vllm/v1/kv_cache_interface.py:AttentionSpec.real_page_size_bytes).
    MLA: one latent head, not split by TP, no x2 (``MLAAttentionSpec.real_page_size_bytes``).
    Mamba / GDN: the per-request state (``MambaSpec.page_size_bytes``), padded later.
    ``disable_hybrid``: sliding/chunked layers become full attention
    (``unify_hybrid_kv_cache_specs``).
    """
    start, end = layers or (0, len(model.layers))
    kv_b = _kv_bytes(kv_cache_dtype, model_dtype)
    out: dict[int, KVSpec] = {}
    for layer in model.layers[start:end]:
        kind = layer.kind
        if kind is LayerKind.NONE:
            continue
        if kind is LayerKind.MAMBA:
            m = layer.mamba
            assert m is not None
            state = _mamba_state_bytes(m, tp=tp, model_dtype=model_dtype, ssm_dtype=mamba_ssm_dtype)
            # vLLM v0.33.0 vllm/v1/kv_cache_interface.py:MambaSpec.max_memory_usage_bytes: align mode adds the
            # layer's num_prefill_checkpoint_blocks (``mamba_ckpt_blocks``) per request
            out[layer.index] = KVSpec(kind=kind, block_size=mamba_block_size or block_size,
                                      page_bytes=mamba_page_padded or state, mamba_mode=mamba_mode,
                                      spec_blocks=mamba_ckpt_blocks if mamba_mode == "align" else 0)
            continue
        a = layer.attention
        assert a is not None
        if a.extra_caches:
            subs = tuple(_extra_cache_spec(c, block_size=block_size, kv_cache_dtype=kv_cache_dtype,
                                           kv_b=kv_b) for c in a.extra_caches)
            out[layer.index] = KVSpec(kind=kind, block_size=block_size, page_bytes=sum(x.page_bytes for x in subs),
                                      sub_specs=subs)
            continue
        if kind is LayerKind.MLA:
            page = int(block_size * 1 * a.head_size * kv_b)
            if kv_cache_dtype == "fp8_ds_mla":
                page = block_size * 656
            # vLLM v0.34.0 vllm/model_executor/models/deepseek_v2.py:DeepseekV32IndexerCache.get_kv_cache_spec
            # (uint8, head_dim index_head_dim + index_head_dim // 128 * 4, block_size = cache_config.block_size)
            indexer = block_size * a.indexer_bytes_per_token
            subs = ()
            if a.indexer_packed and indexer:
                # Kimi-K3.1 (vLLM v0.34.0 vllm/models/kimi_k3/common/dsa_cache.py:KimiK3IndexerBackend, BLHNC only):
                # the indexer cache (registered first, in KimiK3DSAIndexer.__init__) and the MLA cache are two
                # cache layers that _get_packed_kv_cache_groups packs block-outermost (:func:`_packed_layout`)
                subs = (KVSpec(kind=kind, block_size=block_size, page_bytes=indexer, role="indexer",
                               stride_align=_kernel_page(block_size, 64, a.indexer_bytes_per_token)),
                        KVSpec(kind=kind, block_size=block_size, page_bytes=page, role="mla",
                               stride_align=(_kernel_page(block_size, 64, page // block_size)
                                             if kv_cache_dtype == "fp8_ds_mla" else
                                             32 * (page // block_size) if kv_b == 1 else page // block_size)))
            out[layer.index] = KVSpec(kind=kind, block_size=block_size, page_bytes=page + indexer,
                                      indexer_page_bytes=indexer, sub_specs=subs)
            continue
        heads = kv_heads_per_rank(a.num_kv_heads, tp)
        head_v = a.head_size_v or a.head_size
        page = int(block_size * heads * (a.head_size + head_v) * kv_b)
        if disable_hybrid and kind in (LayerKind.SLIDING, LayerKind.CHUNKED_LOCAL):
            kind = LayerKind.FULL
        out[layer.index] = KVSpec(
            kind=kind,
            block_size=block_size,
            page_bytes=page,
            sliding_window=a.sliding_window if kind is LayerKind.SLIDING else None,
            chunk_size=a.chunk_size if kind is LayerKind.CHUNKED_LOCAL else None,
            max_encoder_tokens=max_encoder_tokens if kind is LayerKind.CROSS else 0,
        )
    return out


def _kernel_page(block_size: int, kernel: int, bytes_per_token: int) -> int:
    """``get_block_stride_alignment`` of a ``MultipleOf(kernel)`` alignment (vLLM v0.34.0
    vllm/v1/kv_cache_interface.py:KVCacheSpec.get_block_stride_alignment): the page of ``gcd(kernel, block)`` tokens,
    or 1 when that is the whole block.

    Kimi-K3.1's packed caches (vllm/v1/worker/gpu/attn_utils.py:get_kv_cache_spec applies
    vllm/v1/worker/utils.py:customize_attention_spec): the indexer's backend declares fixed ``[64]`` kernel blocks
    (``DeepseekV32IndexerBackend.get_supported_kernel_block_sizes`` on CUDA) -> ``MultipleOf(64)``; FLASHMLA_SPARSE
    with a quantized cache off SM100 sets ``MultipleOf(64)`` (flashmla_sparse.py ``customize_spec``); the bf16
    sparse MLA backends align blocks to one row (sparse_utils.py ``align_blocks_to_rows``: the token's bytes);
    FLASHINFER_MLA_SPARSE (SM10x, the fp8 cache that stays fp8) to 32 rows (flashinfer_mla_sparse.py
    ``customize_spec``: its ``MultipleOf(32)`` kernel page)."""
    k = math.gcd(kernel, block_size)
    return 1 if k == block_size else k * bytes_per_token


def _extra_cache_spec(c, *, block_size: int, kv_cache_dtype: str, kv_b: float) -> KVSpec:
    """One DeepSeek-V4 cache layer's spec (vLLM v0.34.0 vllm/models/deepseek_v4/attention.py
    ``DeepseekV4Attention.get_kv_cache_spec`` / ``DeepseekV4IndexerCache.get_kv_cache_spec``, compressor.py
    ``CompressorStateCache.get_kv_cache_spec``, vllm/v1/attention/backends/mla/sparse_swa.py
    ``DeepseekV4SWACache.get_kv_cache_spec``): ``block / tokens_per_state`` states of one record each, the page
    rounded up to the alignment (vllm/v1/kv_cache_interface.py:_apply_alignment_padding)."""
    bs = c.block_size or block_size
    ds = kv_cache_dtype == "fp8_ds_mla"
    if c.dtype == "kv":
        state = c.ds_mla_bytes if ds and c.ds_mla_bytes else int(c.head_size * kv_b)
    else:
        state = c.head_size * (4 if c.dtype == "float32" else 1)
    align = c.align_ds_mla if ds else c.align_plain
    page = (bs // c.tokens_per_state) * state
    page = -(-page // align) * align
    kind = LayerKind.SLIDING if c.kind == "sliding" else LayerKind.MLA
    return KVSpec(kind=kind, block_size=bs, page_bytes=page, sliding_window=c.sliding_window, role=c.role)


def _mamba_state_bytes(m, *, tp: int, model_dtype: str, ssm_dtype: str | None, conv_only: bool = False,
                       ssm_only: bool = False) -> int:
    """Per-request recurrent state of one layer on one rank.

    Gated delta-net (vLLM v0.26.0 vllm/model_executor/layers/mamba/mamba_utils.py:
    MambaStateShapeCalculator.gated_delta_net_state_shape): conv state
    ``(conv_dim / tp, kernel - 1)`` and temporal state ``(num_v_heads / tp, head_k, head_v)``.
    Mamba-2 (``mamba2_state_shape``): conv ``((I + 2 G' N) / tp, kernel - 1)``, temporal
    ``(num_heads / tp, head_dim, N)`` (here head_k_dim = head_dim, head_v_dim = N).
    """
    from ..model.quant import dtype_bytes

    conv_dim = m.conv_dim
    if m.kind == "mamba2" and m.n_groups and m.n_groups % tp:
        # vLLM v0.34.0 vllm/model_executor/layers/mamba/mamba_utils.py:MambaStateShapeCalculator.mamba2_state_shape:
        # groups not divisible by TP are extended to TP (extra_groups_for_head_shards), conv_dim = I + 2 x G' x N
        conv_dim += 2 * (tp - m.n_groups) * m.state_size
    conv = (conv_dim // tp) * (m.conv_kernel - 1) * dtype_bytes(model_dtype)
    state_dtype = ssm_dtype or m.state_dtype or model_dtype
    ssm = (m.num_heads // tp) * m.head_k_dim * m.head_v_dim * dtype_bytes(state_dtype)
    if conv_only:
        return int(conv)
    if ssm_only:
        return int(ssm)
    return int(conv + ssm)


def build_layout(all_specs: dict[int, KVSpec] | tuple, rank_layers: tuple[int, ...] | None = None) -> KVLayout:
    """Group layers and unify page sizes (vLLM v0.26.0 kv_cache_utils.py:get_kv_cache_groups).

    ``all_specs``: every layer of the model (all PP stages), used for grouping as vLLM merges
    the workers' specs first; ``rank_layers``: the layers of the rank being sized (its
    projection, ``_project_kv_cache_groups_to_worker``).
    """
    if isinstance(all_specs, tuple):
        return _layout_of_items(all_specs, rank_layers)
    return _build_layout_cached(tuple(sorted(all_specs.items())), rank_layers)


@by_identity(maxsize=1024)
def _layout_of_items(items: tuple, rank_layers: tuple[int, ...] | None) -> KVLayout:
    """The cached tuple of :func:`layer_spec_items`, recognised by identity (hashing 60 specs per plan is
    what a plan sweep would otherwise spend its time on)."""
    return _build_layout_cached(items, rank_layers)


@lru_cache(maxsize=1024)
def _build_layout_cached(items: tuple[tuple[int, KVSpec], ...], rank_layers: tuple[int, ...] | None) -> KVLayout:
    specs = dict(items)
    if not specs:
        return KVLayout(groups=(), uniform_type=False, bytes_per_block=0, group_size=0, page_bytes=0)
    keep = set(rank_layers) if rank_layers is not None else set(specs)
    if any(sp.sub_specs for sp in specs.values()):
        return _packed_layout(specs, keep)
    distinct = set(specs.values())
    if len(distinct) == 1:
        # All layers share one spec: one group (``_get_kv_cache_groups_uniform_spec``).
        spec = next(iter(distinct))
        layers = tuple(i for i in specs if i in keep)
        return KVLayout(groups=(KVGroup(spec=spec, layers=layers),), uniform_type=False,
                        bytes_per_block=spec.page_bytes * len(layers), group_size=len(layers),
                        page_bytes=spec.page_bytes)
    if _uniform_type(distinct):
        # Same token-slot type, different page sizes: one group, pages summed
        # (``UniformTypeKVCacheSpecs.page_size_bytes``).
        layers = tuple(i for i in specs if i in keep)
        pages = sum(specs[i].page_bytes for i in layers)
        first = specs[layers[0]] if layers else next(iter(distinct))
        return KVLayout(groups=(KVGroup(spec=first, layers=layers),), uniform_type=True, bytes_per_block=pages,
                        group_size=len(layers), page_bytes=pages)
    # Hybrid: unify page sizes (``unify_kv_cache_spec_page_size``): attention layers scale their
    # block size up to the largest page; mamba pages are padded to it.
    max_page = max(s.page_bytes for s in distinct)
    unified: dict[int, KVSpec] = {}
    for i, s in specs.items():
        if s.page_bytes == max_page:
            unified[i] = s
        elif s.kind is LayerKind.MAMBA or max_page % s.page_bytes:
            unified[i] = replace(s, page_bytes=max_page)
        else:
            unified[i] = replace(s, block_size=s.block_size * (max_page // s.page_bytes), page_bytes=max_page)
    # Group by spec and split into groups of equal size (``_get_kv_cache_groups_uniform_page_size``).
    by_spec: dict[KVSpec, list[int]] = {}
    for i, s in unified.items():
        by_spec.setdefault(s, []).append(i)
    counts = [len(v) for v in by_spec.values()]
    group_size = min(counts)
    if max(counts) < group_size * 1.5:
        group_size = max(counts)
    groups, padding = [], 0
    for spec, layers in by_spec.items():
        if len(layers) % group_size:
            padding += group_size - len(layers) % group_size
        n_groups = cdiv(len(layers), group_size)
        for g in range(n_groups):
            members = tuple(i for i in layers[g::n_groups] if i in keep)
            groups.append(KVGroup(spec=spec, layers=members))
    # On this rank the group size is its largest projected group.
    rank_group_size = max((len(g.layers) for g in groups), default=0)
    groups = [g for g in groups if g.layers]
    return KVLayout(groups=tuple(groups), uniform_type=False, bytes_per_block=max_page * rank_group_size,
                    group_size=rank_group_size, page_bytes=max_page, padding_layers=padding)


def _packed_layout(specs: dict[int, KVSpec], keep: set[int]) -> KVLayout:
    """vLLM v0.34.0 vllm/v1/core/kv_cache_planning.py:_get_packed_kv_cache_groups (block-outermost layout).

    The cache layers (each layer's sub-specs, in registration order) go greedily into uniform-type buckets (same
    block size, same spec family, same window: ``UniformTypeKVCacheSpecs.is_uniform_type``); balanced buckets
    (as many layers of each page size) are split into groups of ``_approximate_gcd`` pattern repeats (at least
    the largest mixed bucket's count); a block holds the widest group's pages
    (``_get_kv_cache_bytes_per_block``: sum of its pages; the DeepSeek-V4 specs carry no block-stride
    alignment). Mamba buckets (Kimi-K3.1's KDA states, ``MambaSpec.is_uniform_with_collection``: same page and
    extra blocks) are state buckets: split into as many groups as keep each group within the widest group any
    bucket needs (``anchor_bytes``, ``states_per_block``). No circular-buffer bucket is modelled here.
    """
    cache_layers = [(i, sub) for i, sp in specs.items() for sub in (sp.sub_specs or (sp,))]
    buckets: list[tuple[tuple, list[tuple[int, KVSpec]]]] = []
    for i, sub in cache_layers:
        if sub.kind is LayerKind.MAMBA:
            key = ("mamba", sub.block_size, sub.page_bytes, sub.spec_blocks, sub.mamba_mode)
        else:
            key = (sub.kind is LayerKind.SLIDING, sub.block_size,
                   sub.sliding_window if sub.kind is LayerKind.SLIDING else None)
        for bkey, members in buckets:
            if bkey == key:
                members.append((i, sub))
                break
        else:
            buckets.append((key, [(i, sub)]))
    info = []
    for _, members in buckets:
        by_page: dict[int, list[tuple[int, KVSpec]]] = {}
        for m in members:
            by_page.setdefault(m[1].page_bytes, []).append(m)
        balanced = len({len(v) for v in by_page.values()}) == 1
        info.append((members, by_page, balanced, max(len(v) for v in by_page.values())))
    min_repeats = max((most for _, by_page, bal, most in info if bal and len(by_page) > 1), default=0)
    repeats = (_approximate_gcd([most for _, _, bal, most in info if bal], lower_bound=min_repeats)
               if min_repeats else None)

    def n_groups(balanced: bool, most: int) -> int:
        return cdiv(most, repeats) if balanced and repeats is not None else 1

    def is_state(members: list) -> bool:
        return members[0][1].kind is LayerKind.MAMBA

    def widest(by_page: dict, n: int) -> int:
        return sum(cdiv(len(v), n) * page for page, v in by_page.items())

    # vLLM v0.34.0 kv_cache_planning.py:_get_packed_kv_cache_groups (anchor_bytes, states_per_block)
    anchor = max((widest(by_page, len(members) if is_state(members) else n_groups(bal, most))
                  for members, by_page, bal, most in info), default=0)
    groups: list[list[tuple[int, KVSpec]]] = []
    for members, by_page, balanced, most in info:
        n = n_groups(balanced, most)
        if anchor and is_state(members):
            n = max(n, cdiv(len(members), max(anchor // members[0][1].page_bytes, 1)))
        if n == 1:
            groups.append(members)
            continue
        pattern = list(zip(*by_page.values()))
        for g in range(n):
            groups.append([m for rep in pattern[g::n] for m in rep])
    rank_groups = [[m for m in g if m[0] in keep] for g in groups]
    bytes_per_block = max((sum(sp.page_bytes for _, sp in g) for g in rank_groups), default=0)
    # _get_kv_cache_bytes_per_block: rounded up to the lcm of every cache layer's block-stride alignment
    align = math.lcm(*(max(sp.stride_align, 1) for _, sp in cache_layers))
    bytes_per_block = cdiv(bytes_per_block, align) * align
    out = tuple(KVGroup(spec=g[0][1], layers=tuple(i for i, _ in g)) for g in rank_groups if g)
    return KVLayout(groups=out, uniform_type=False, bytes_per_block=bytes_per_block, group_size=1,
                    page_bytes=bytes_per_block, packed=True)


def _approximate_gcd(values: list[int], *, lower_bound: int) -> int:
    """vLLM v0.34.0 kv_cache_planning.py:_approximate_gcd: the repeat count in [lower_bound, max] with the least
    total round-up padding (ties: the larger)."""
    lo, hi = max(1, lower_bound), max(values)
    if lo > hi:
        return lo
    best, best_pad = lo, None
    for d in range(lo, hi + 1):
        pad = sum((d - x % d) % d for x in values)
        if best_pad is None or pad < best_pad or (pad == best_pad and d > best):
            best, best_pad = d, pad
    return best


def _packed_blocks_per_request(layout: KVLayout, *, max_model_len: int, max_in_flight_tokens: int) -> int:
    """Block ids one request at ``max_model_len`` takes: the sum over groups of ``cdiv(max memory, page)``
    (vLLM v0.34.0 kv_cache_planning.py:_max_memory_usage_bytes_from_groups)."""
    return sum(max_memory_usage_bytes(g.spec, max_model_len=max_model_len, max_in_flight_tokens=max_in_flight_tokens)
               // g.spec.page_bytes for g in layout.groups)


def _uniform_type(distinct: set[KVSpec]) -> bool:
    """vLLM ``UniformTypeKVCacheSpecs.is_uniform_type``: all full attention (any page), or all the same window."""
    kinds = {s.kind for s in distinct}
    if kinds <= {LayerKind.FULL, LayerKind.MLA} and len(kinds) == 1:
        return len({s.block_size for s in distinct}) == 1
    if kinds == {LayerKind.SLIDING}:
        return len({s.sliding_window for s in distinct}) == 1
    return False


def max_memory_usage_bytes(spec: KVSpec, *, max_model_len: int, max_in_flight_tokens: int) -> int:
    """Bytes one request at ``max_model_len`` needs in one layer of this spec.

    vLLM v0.26.0 vllm/v1/kv_cache_interface.py: ``FullAttentionSpec.max_memory_usage_bytes``
    (``cdiv(len, bs) x page``), ``SlidingWindowSpec`` (``cdiv(min(window - 1 + in_flight, len), bs) + 1``
    blocks), ``ChunkedLocalAttentionSpec`` (``cdiv(min(chunk + in_flight, len), bs)``),
    ``MambaSpec`` (1 block, 2 with mode ``align``, ``cdiv(len, bs)`` with ``all``; plus spec blocks),
    ``CrossAttentionSpec`` (``cdiv(max_encoder_tokens, bs)``).
    """
    bs, page = spec.block_size, spec.page_bytes
    if spec.kind is LayerKind.SLIDING:
        tokens = min((spec.sliding_window or 0) - 1 + max_in_flight_tokens, max_model_len)
        return (cdiv(tokens, bs) + 1) * page
    if spec.kind is LayerKind.CHUNKED_LOCAL:
        tokens = min((spec.chunk_size or 0) + max_in_flight_tokens, max_model_len)
        return cdiv(tokens, bs) * page
    if spec.kind is LayerKind.MAMBA:
        if spec.mamba_mode == "all":
            return (cdiv(max_model_len, bs) + spec.spec_blocks) * page
        return page * ((2 if spec.mamba_mode == "align" else 1) + spec.spec_blocks)
    if spec.kind is LayerKind.CROSS:
        return cdiv(spec.max_encoder_tokens, bs) * page
    return cdiv(max_model_len, bs) * page


def needed_bytes(layout: KVLayout, *, max_model_len: int, max_in_flight_tokens: int) -> int:
    """KV bytes one request at ``max_model_len`` needs on this rank.

    vLLM v0.26.0 kv_cache_utils.py:_max_memory_usage_bytes_from_groups: uniform type sums the
    layers; the general case is ``group_size x page x sum_g cdiv(max_mem_g, page)``.
    (v0.33.0 kv_cache_planning.py writes it as ``bytes_per_block x sum_g cdiv(max_mem_g, page_g)``,
    the same number for these layouts.)
    """
    if not layout.groups:
        return 0
    if layout.packed:
        return layout.bytes_per_block * _packed_blocks_per_request(layout, max_model_len=max_model_len,
                                                                   max_in_flight_tokens=max_in_flight_tokens)
    if layout.uniform_type:
        g = layout.groups[0]
        # per layer: cdiv(len, bs) blocks of its own page; summed over the rank's layers
        blocks = max_memory_usage_bytes(g.spec, max_model_len=max_model_len,
                                        max_in_flight_tokens=max_in_flight_tokens) // g.spec.page_bytes
        return blocks * layout.bytes_per_block
    blocks = sum(
        cdiv(max_memory_usage_bytes(g.spec, max_model_len=max_model_len, max_in_flight_tokens=max_in_flight_tokens),
             layout.page_bytes)
        for g in layout.groups
    )
    return layout.group_size * layout.page_bytes * blocks


def num_blocks_for(layout: KVLayout, available_bytes: int) -> int:
    """Blocks one rank can hold: ``available // page // group_size`` (vLLM v0.26.0 ``get_num_blocks``),
    or ``available // sum(pages)`` for uniform-type layouts; never below 0."""
    if not layout.groups:
        return 1
    if layout.uniform_type:
        return max(int(available_bytes // layout.bytes_per_block), 0)
    return max(int(available_bytes // layout.page_bytes // layout.group_size), 0)


def capacity(layout: KVLayout, num_blocks: int, *, max_model_len: int, max_in_flight_tokens: int,
             v033: bool = False, tokens_from_concurrency: bool = True) -> tuple[int, float]:
    """``GPU KV cache size: N tokens`` and ``Maximum concurrency``, as vLLM logs them.

    v0.26.0 kv_cache_utils.py:get_max_concurrency_for_kv_cache_config:
    ``concurrency = num_blocks / cdiv(nlpg x sum_g max_mem_g, page_0 x nlpg)``;
    v0.33.0: ``num_blocks / sum_g cdiv(max_mem_g, page_g)``; tokens = ``int(concurrency x max_model_len)``
    (v0.21+); before, ``num_blocks // num_groups x min block size`` (v0.19.0
    kv_cache_utils.py:_report_kv_cache_config).
    """
    if not layout.groups:
        return 0, 0.0
    mems = [max_memory_usage_bytes(g.spec, max_model_len=max_model_len, max_in_flight_tokens=max_in_flight_tokens)
            for g in layout.groups]
    if layout.packed:
        # vLLM v0.34.0 vllm/v1/core/kv_cache_utils.py:get_max_concurrency_for_kv_cache_config
        per_req = sum(m // g.spec.page_bytes for m, g in zip(mems, layout.groups))
        concurrency = num_blocks / per_req if per_req else 0.0
        return int(concurrency * max_model_len), concurrency
    if layout.uniform_type:
        per_req = cdiv(mems[0], layout.groups[0].spec.page_bytes)
    elif v033:
        per_req = sum(cdiv(m, layout.page_bytes) for m in mems)
    else:
        nlpg = layout.group_size
        per_req = cdiv(nlpg * sum(mems), layout.page_bytes * nlpg)
    concurrency = num_blocks / per_req if per_req else 0.0
    if not tokens_from_concurrency:
        return num_blocks // len(layout.groups) * layout.block_size, concurrency
    return int(concurrency * max_model_len), concurrency


def estimate_max_model_len(layout: KVLayout, available_bytes: int, *, upper: int, max_in_flight_tokens: int) -> int:
    """The longest ``max_model_len`` whose one-request need fits ``available_bytes``.

    vLLM v0.26.0 kv_cache_utils.py:_estimate_max_model_len_from_groups: binary search over
    ``[1, upper]``; 0 when not even one token fits.
    """

    def fits(n: int) -> bool:
        return needed_bytes(layout, max_model_len=n, max_in_flight_tokens=max_in_flight_tokens) <= available_bytes

    if not fits(1):
        return 0
    lo, hi, best = 1, upper, 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


@dataclass(frozen=True, slots=True)
class KVSizing:
    """The KV-cache figures vLLM logs for one startup."""

    layout: KVLayout
    num_blocks: int
    tokens: int
    concurrency: float
    needed_bytes: int
    """One request at max_model_len."""


def stage_layers(model: ModelDescription, pp: int, partition: str | None = None) -> list[tuple[int, int]]:
    return pp_layer_split(model.num_hidden_layers, pp, partition)


def page_summary(layout: KVLayout) -> dict[str, int]:
    """Layer counts per kind on this rank (for display)."""
    c: Counter = Counter()
    for g in layout.groups:
        c[g.spec.kind.value] += len(g.layers)
    return dict(c)


def per_token_bytes(layout: KVLayout) -> float:
    """Bytes per token of context for full-attention-like groups (display only)."""
    if not layout.groups:
        return 0.0
    return layout.bytes_per_block / max(layout.block_size, 1) if layout.uniform_type or len(layout.groups) == 1 \
        else math.nan
