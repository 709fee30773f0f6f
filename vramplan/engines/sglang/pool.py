"""SGLang's KV pool sizing: bytes per token cell, the budget left after loading, tokens, running requests.

The strategy (sglang 0.5.17 and 0.5.23 ``srt/mem_cache/kv_cache_configurator.py``):

- ``_profile_available_bytes``: rest = free after loading - free before loading x (1 - mem_fraction_static)
  (0.5.23 also takes the multimodal reservation out); both figures in GB floats from
  ``get_available_gpu_memory`` (min over ranks when distributed); returned as ``int(rest x 2^30)`` bytes;
  ``rest <= 0`` raises "Loaded weights leave no GPU memory for the KV cache ...".
- ``config_from_budget``: the pool configurator turns bytes into tokens
  (``srt/model_executor/pool_configurator.py``: ``DefaultPoolConfigurator`` for MHA/GQA/MLA,
  ``HybridSWAPoolConfigurator`` for hybrid sliding-window models), aligned down to the page size; then
  ``_apply_token_constraints`` caps by ``--max-total-tokens`` and takes the min over PP ranks.
- ``MemoryPoolConfig.__post_init__``: tokens <= 0 raises "Not enough memory. Please try to increase
  --mem-fraction-static."
- ``resolve_max_num_reqs``: the running-request limit from the token capacity and the context length.

Pure functions on integers; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...model.description import LayerKind, ModelDescription
from ...units import GiB
from .dsa import DSAPool

__all__ = ["CellSize", "cell_size", "sglang_pp_split", "rest_bytes", "pool_tokens", "max_running_requests",
           "mamba_state", "HYBRID_SWA_ARCHS", "swa_request_cap", "swa_cap_pool_tokens",
           "mamba_extra_buffer", "mamba_ratio", "mamba_cache_size"]

# sglang 0.5.23 srt/configs/model_config.py:is_hybrid_swa_model (the architectures in vramplan's reach;
# 0.5.17 has the same minus the SWA_SINK_ARCHS Granite/IQuest entries). Gemma 2/3 are not in it: SGLang gives
# their sliding layers full-size KV.
HYBRID_SWA_ARCHS = frozenset({
    "Llama4ForConditionalGeneration", "GptOssForCausalLM", "MiMoV2ForCausalLM", "MiMoV2FlashForCausalLM",
    "Step3p5ForCausalLM", "Gemma4ForCausalLM", "Gemma4ForConditionalGeneration", "MellumForCausalLM",
    "LagunaForCausalLM",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class CellSize:
    """Bytes one token takes in the KV pool of one rank."""

    kind: str
    """``mha``, ``mla``, ``hybrid_swa`` or ``hybrid_mamba``."""
    bytes_per_token: float
    """Per token over all layers of the stage (hybrid SWA: full layers + ratio x SWA layers, a float)."""
    num_layers: int
    """Layers whose KV the pool holds (full-attention layers for hybrid models)."""
    full_per_token: int = 0
    """Hybrid SWA: bytes per token of one full layer; MHA/MLA: of one layer."""
    swa_per_token: int = 0
    num_swa_layers: int = 0
    swa_ratio: float = 0.0
    sliding_window: int | None = None
    rule: str = ""
    indexer_per_token: int = 0
    """DSA: bytes per token of one layer's indexer K cache (included in ``bytes_per_token``)."""
    num_indexer_layers: int = 0
    """DSA: layers of the stage whose indexer cache the cell counts."""


def sglang_pp_split(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """sglang 0.5.23 srt/distributed/utils.py:get_pp_indices: ``L // pp`` each, the last ``L % pp`` stages one
    more (vLLM gives the extra layers to the stages before the last)."""
    base, rem = divmod(num_layers, pp)
    out, start = [], 0
    for r in range(pp):
        n = base + (1 if r >= pp - rem else 0)
        out.append((start, start + n))
        start += n
    return out


def _kv_heads(total: int, tp: int) -> int:
    """``ModelConfig.get_num_kv_heads``: ``max(1, total // tp)``."""
    return max(1, total // tp)


def cell_size(model: ModelDescription, *, tp: int, kv_bytes: int, layers: range, swa_ratio: float = 0.8,
              hybrid_swa: bool = True, dsa: DSAPool | None = None) -> CellSize:
    """Bytes per token cell (``pool_configurator.py``, 0.5.17 and 0.5.23).

    - MHA/GQA: ``get_num_kv_heads(tp) x (head_dim + v_head_dim) x layers x kv_size``
      (``DefaultPoolConfigurator._compute_cell_size``); every attention layer counts, sliding ones too unless the
      architecture is a hybrid-SWA one.
    - MLA: ``(kv_lora_rank + qk_rope_head_dim) x layers x kv_size`` (``calculate_mla_kv_cache_dim``), not split by TP.
    - hybrid SWA: ``full_per_token x full_layers + swa_full_tokens_ratio x swa_per_token x swa_layers``
      over the whole model (``HybridSWAPoolConfigurator.__init__``).
    - hybrid Mamba/linear attention: the full-attention layers of the stage only (``mambaish_config``).
    """
    stage = [lay for lay in model.layers if layers.start <= lay.index < layers.stop]
    if dsa is not None:
        mla = [lay for lay in stage if lay.kind == LayerKind.MLA and lay.attention]
        n_idx = sum(1 for i in layers if i in dsa.indexer_layers)
        return CellSize(kind="mla", bytes_per_token=dsa.mla_row_bytes * len(mla) + dsa.indexer_bytes * n_idx,
                        num_layers=len(mla), full_per_token=dsa.mla_row_bytes, indexer_per_token=dsa.indexer_bytes,
                        num_indexer_layers=n_idx,
                        rule="sglang 0.5.23 srt/model_executor/pool_configurator.py:DefaultPoolConfigurator."
                             "_compute_cell_size (DSA: calculate_mla_kv_cache_dim x kv_size x layers + indexer K "
                             "(index_head_dim + index_head_dim // 128 x 4) uint8 x indexer layers: "
                             "_compute_dsa_indexer_cell_size; 0.5.17 counts every layer)")
    if model.uses_mla:
        mla = [lay for lay in stage if lay.kind == LayerKind.MLA and lay.attention]
        dim = mla[0].attention.head_size if mla else 0
        return CellSize(kind="mla", bytes_per_token=dim * len(mla) * kv_bytes, num_layers=len(mla),
                        full_per_token=dim * kv_bytes,
                        rule="sglang 0.5.23 srt/model_executor/pool_configurator.py:DefaultPoolConfigurator."
                             "_compute_cell_size (MLA: (kv_lora_rank + qk_rope_head_dim) x layers x kv_size)")

    def per_token(lay) -> int:
        at = lay.attention
        return _kv_heads(at.num_kv_heads, tp) * (at.head_size + (at.head_size_v or at.head_size)) * kv_bytes

    swa_kinds = (LayerKind.SLIDING, LayerKind.CHUNKED_LOCAL)
    if hybrid_swa and model.architecture in HYBRID_SWA_ARCHS and any(lay.kind in swa_kinds for lay in model.layers):
        full = [lay for lay in model.layers if lay.kind == LayerKind.FULL and lay.attention]
        swa = [lay for lay in model.layers if lay.kind in swa_kinds and lay.attention]
        fpt = per_token(full[0]) if full else 0
        spt = per_token(swa[0])
        window = swa[0].attention.sliding_window or swa[0].attention.chunk_size
        if full:
            b = fpt * len(full) + swa_ratio * spt * len(swa)
        else:
            b = float(spt * len(swa))
        return CellSize(kind="hybrid_swa", bytes_per_token=b, num_layers=len(full), full_per_token=fpt,
                        swa_per_token=spt, num_swa_layers=len(swa), swa_ratio=swa_ratio, sliding_window=window,
                        rule="sglang 0.5.23 srt/model_executor/pool_configurator.py:HybridSWAPoolConfigurator "
                             "(full x layers + swa_full_tokens_ratio x swa x layers)")
    if model.is_hybrid:
        att = [lay for lay in stage if lay.kind == LayerKind.FULL and lay.attention]
        kind = "hybrid_mamba"
        rule = ("sglang 0.5.23 srt/model_executor/pool_configurator.py:DefaultPoolConfigurator (mambaish: the "
                "full-attention layers of the stage)")
    else:
        att = [lay for lay in stage if lay.attention is not None]
        kind = "mha"
        rule = ("sglang 0.5.23 srt/model_executor/pool_configurator.py:DefaultPoolConfigurator._compute_cell_size "
                "(kv_heads(tp) x (head_dim + v_head_dim) x layers x kv_size)")
    one = per_token(att[0]) if att else 0
    total = sum(per_token(lay) for lay in att)
    return CellSize(kind=kind, bytes_per_token=total, num_layers=len(att), full_per_token=one, rule=rule)


def rest_bytes(*, free_after_load_bytes: int, free_before_load_bytes: int, fraction: float,
               mm_reservation_gb: float = 0.0) -> float:
    """``_profile_available_bytes`` in SGLang's float arithmetic (GB floats), before ``int(rest x 2^30)``.

    Returns the float ``rest_memory`` in GB (may be <= 0: the weights-leave-no-room error)."""
    avail = free_after_load_bytes / GiB
    pre = free_before_load_bytes / GiB
    return avail - pre * (1 - fraction) - mm_reservation_gb


def pool_tokens(budget_bytes: int, cell: CellSize, *, page_size: int, max_total_tokens: int | None = None
                ) -> tuple[int, int]:
    """Tokens of the pool (and of the SWA pool, 0 if none) from the byte budget
    (``calculate_pool_sizes`` then ``_apply_token_constraints``; the PP min is taken by the caller)."""
    if cell.bytes_per_token <= 0:
        tokens = max_total_tokens or 0
    elif cell.kind == "hybrid_swa":
        tokens = int(budget_bytes // cell.bytes_per_token)
    else:
        tokens = budget_bytes // int(cell.bytes_per_token)
    tokens = tokens // page_size * page_size
    if max_total_tokens is not None and max_total_tokens < tokens:
        tokens = max_total_tokens // page_size * page_size
    swa = 0
    if cell.kind == "hybrid_swa":
        if cell.num_layers == 0:
            swa = tokens
        else:
            swa = int(tokens * cell.swa_ratio) // page_size * page_size
    return tokens, swa


def swa_request_cap(*, window: int, page_size: int, max_running_requests: int, attn_dp: int, chunked_prefill_size: int,
                    disable_overlap_schedule: bool, eviction_interval: int = 128, at_least_one_request: bool = True
                    ) -> int:
    """The SWA pool's worst-case tokens at ``--max-running-requests`` (no speculative decoding, no PD decode):
    per request ``window + eviction_interval + page`` (trailing tokens) ``+ page`` (decode allocation), times
    ``max_running_requests // attn_dp`` (0.5.23 at least 1), plus ``chunks_in_flight x chunked_prefill_size + page``,
    chunks_in_flight = 1 under ``--disable-overlap-schedule``, else 2. ``eviction_interval`` is
    ``max(1, SGLANG_SWA_EVICTION_INTERVAL)`` (128).

    sglang 0.5.17 ``model_executor/pool_configurator.py:SWAChunkCapPoolConfigurator.__init__``;
    0.5.23 ``model_executor/pool_configurator.py:compute_swa_request_cap``."""
    per_request = window + max(1, eviction_interval) + page_size + page_size
    n = max_running_requests // attn_dp
    if at_least_one_request:
        n = max(1, n)
    chunks = 1 if disable_overlap_schedule else 2
    return per_request * n + chunks * chunked_prefill_size + page_size


def swa_cap_pool_tokens(budget_bytes: int, cell: CellSize, *, cap: int, page_size: int) -> tuple[int, int]:
    """(full tokens, SWA tokens) when the SWA pool is sized from the request cap: SWA = ceil_align(cap, page), its
    bytes ``swa x swa_per_token x swa_layers`` come off the budget and the rest goes to the full layers,
    ``int((budget - fixed) // full_cell) // page x page`` (``calculate_pool_sizes`` of 0.5.17
    ``SWAChunkCapPoolConfigurator`` / 0.5.23 ``SWARequestCapPoolConfigurator``). Full tokens may be <= 0 (the
    "SWA pool cap ... leaves no room for the full KV pool" error)."""
    swa = -(-cap // page_size) * page_size
    fixed = swa * cell.swa_per_token * cell.num_swa_layers
    full_cell = cell.full_per_token * cell.num_layers
    full = int((budget_bytes - fixed) // full_cell) // page_size * page_size
    return full, swa


def max_running_requests(tokens: int, context_len: int, requested: int | None, attn_dp: int = 1) -> int:
    """``KVCacheConfigurator.resolve_max_num_reqs`` (0.5.17, 0.5.23): estimated = clamp(int(tokens / context_len x
    512), 2048, 4096); the limit is min(estimated or the requested per DP worker, tokens // 2)."""
    if requested is not None:
        return min(max(1, requested // attn_dp), tokens // 2)
    estimated = max(min(int(tokens / context_len * 512), 4096), 2048)
    return min(estimated, tokens // 2)


def mamba_state(model: ModelDescription, *, tp: int, layers: range, conv_bytes: int, ssm_bytes: int = 4
                ) -> tuple[int, int]:
    """(bytes per request of the recurrent state on one rank, number of recurrent layers):
    ``configs/mamba_utils.py:mamba_cache_per_req`` = (conv numel x conv dtype + ssm numel x state dtype) x layers.
    Conv state ``[conv_dim / tp, kernel - 1]``, temporal state ``[heads / tp, head_k, head_v]`` (float32 assumed)."""
    per, n = 0, 0
    for lay in model.layers:
        if lay.kind != LayerKind.MAMBA or lay.mamba is None or not (layers.start <= lay.index < layers.stop):
            continue
        m = lay.mamba
        conv = (m.conv_dim // tp) * (m.conv_kernel - 1) * conv_bytes
        ssm = max(1, m.num_heads // tp) * m.head_k_dim * m.head_v_dim * ssm_bytes
        per += conv + ssm
        n += 1
    return per, n


def mamba_extra_buffer(*, arch: str, strategy: str, disable_radix_cache: bool, disable_overlap_schedule: bool,
                       page_size: int | None, linear_attn_backend: str, extra_buffer_archs: frozenset[str]
                       ) -> tuple[bool, bool]:
    """(extra buffer on, lazy) for a hybrid Mamba/linear-attention model.

    ``auto`` resolves to ``extra_buffer`` when overlap scheduling is on or ``--page-size`` > 1 and the architecture
    supports it on the triton linear-attention backend, else to ``no_buffer`` (sglang 0.5.17 / 0.5.23
    ``arg_groups/overrides.py:_mamba_radix_cache_resolution``, ``supports_mamba_cache_extra_buffer``). The buffer
    exists only with the radix cache on (``enable_mamba_extra_buffer`` / ``mamba_extra_buffer_of``)."""
    if disable_radix_cache:
        return False, False
    if strategy == "auto":
        wants = (not disable_overlap_schedule) or (page_size is not None and page_size > 1)
        supported = arch in extra_buffer_archs and linear_attn_backend == "triton"
        strategy = "extra_buffer" if wants and supported else "no_buffer"
    return strategy in ("extra_buffer", "extra_buffer_lazy"), strategy == "extra_buffer_lazy"


def mamba_ratio(*, disable_radix_cache: bool, extra_buffer: bool, lazy: bool, overlap: bool,
                skip_decode_lock: bool = False) -> int:
    """State slots per running request (``_calculate_mamba_ratio``, 0.5.17 and 0.5.23 alike): 1 without the radix
    cache; else 3 (``MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO``, 2 under SGLANG_OPT_MAMBA_SKIP_DECODE_LOCK) plus the
    extra buffer's tracking slots (2 with overlap scheduling, 1 without or lazy: 0.5.23
    ``allocation_sizing.py:get_mamba_tracking_slots``, 0.5.17 ``MAMBA_CACHE_V2_ADDITIONAL_RATIO_*``), or 1 for
    no_buffer under the skip."""
    if disable_radix_cache:
        return 1
    base = 3 - (1 if skip_decode_lock else 0)
    if extra_buffer:
        return base + (1 if lazy else (2 if overlap else 1))
    return base + (1 if skip_decode_lock else 0)


def mamba_cache_size(*, rest_gb: float, per_req: int, mamba_full_memory_ratio: float,
                     max_mamba_cache_size: int | None, disable_radix_cache: bool, max_running_requests: int | None,
                     attn_dp: int, at_least_one_request: bool) -> tuple[int, str]:
    """(max_mamba_cache_size per DP shard, which path) of ``_handle_max_mamba_cache`` without speculative decoding:

    - ``--max-mamba-cache-size`` given: that // attn_dp (``mamba_pool.per_dp_shard``);
    - else ``--disable-radix-cache`` with ``--max-running-requests``: max_running_requests // attn_dp (0.5.23 at least
      1; ``mamba_pool.from_max_running_requests``);
    - else ``int((rest x r / (1 + r) x 2^30 - per_req) // per_req)``, r = ``--mamba-full-memory-ratio``
      (``mamba_pool.memory_budget``).
    The caller takes ``(size + 1) x per_req`` off the KV budget."""
    if max_mamba_cache_size is not None:
        return max_mamba_cache_size // attn_dp, "max_mamba_cache_size"
    if disable_radix_cache and max_running_requests is not None:
        n = max_running_requests // attn_dp
        return (max(1, n) if at_least_one_request else n), "max_running_requests"
    budget = rest_gb * mamba_full_memory_ratio / (1 + mamba_full_memory_ratio) * GiB
    return int((budget - per_req) // per_req), "memory_budget"
