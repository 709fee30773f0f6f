"""vLLM 0.34's extensible KV cache: reserve the address range, warm up and capture, then commit.

With ``enable_extensible_kv_cache`` (on by default on CUDA and ROCm from 0.34) the KV cache is no longer
sized from the profile run alone. The startup runs these steps, each mirrored by one function here:

1. :func:`resolve_extensible_kv_cache` -- whether it is on
   (vLLM v0.34.0 vllm/config/vllm.py:VllmConfig._resolve_extensible_kv_cache).
2. :func:`reserved_bound` -- the profile run still sizes a KV cache, ``requested - non-KV`` with no CUDA-graph
   estimate (``GPUModelRunner.profile_cudagraph_memory`` returns 0 under it); ``get_kv_cache_configs`` turns it
   into blocks and checks max_model_len against it. That block count is only the *reserved address range*
   (vllm/v1/worker/extensible_kv_cache.py:ExtensibleKVCache.__init__), of which one block is committed
   (``allocate``: ``min_committed_blocks``).
3. :func:`warmup_transient_peak` -- warm-up runs a full max-num-batched-tokens step
   (vllm/v1/worker/gpu/warmup.py:run_kv_cache_sizing_warmup) and ``record_transient_peak`` keeps
   ``max(profile peak + graph estimate, allocated peak - current)``; ``_measure_sizing_step`` records the torch
   reservation growth. CUDA graphs are captured after it (Worker._compile_or_warm_up_model).
4. :func:`measure_kv_cache_bytes` -- everything resident except the committed blocks is the engine's:
   ``min(requested - non_kv_used, headroom - margin) - max(transient, growth)`` with
   ``margin = max(1 GiB (3 on ROCm), 0.75 x transient)`` (vllm/v1/worker/extensible_kv_cache.py).
5. :func:`blocks_within` -- ``measure_kv_cache_blocks``: the most blocks whose physical footprint (each
   segment rounded to the 2 MiB commit granule) fits; torch's allocator is then capped so 0.5 GiB (1 GiB on
   ROCm) stays free for allocations outside it.
6. :func:`finish_plan` -- every rank takes the minimum (gpu_worker._min_across_ranks), capped by the reserved
   range; ``finalize_extensible_kv_cache`` refits ``--max-model-len auto`` and checks max_model_len again
   (``shrink_kv_cache_configs``: ``(blocks - 1) x bytes per block``); ``extend_kv_cache`` commits and logs.

The profile peak, non-torch memory and the graph pool are the models fitted on vLLM 0.26 (``vramplan.estimate``),
with what 14 real 0.34 startups on one H100 changed (data/truth/logs/h100e: the context at the snapshot, the
sampler's penalty state, the transient kept); the README's accuracy section gives their 0.34 errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ....errors import InvalidConfig
from ....estimate.overheads import cudagraph
from ....plan import Term
from ..flags import EngineArgs
from ....rules.kv import KVLayout, capacity, estimate_max_model_len, needed_bytes
from ..rules.versions import RuleSet
from ....rules.weights import pp_layer_split
from ....model.description import LayerKind
from ....units import GiB, MiB, cdiv, format_gib

__all__ = ["resolve_extensible_kv_cache", "reserved_bound", "warmup_transient_peak", "measure_kv_cache_bytes",
           "blocks_within", "physical_bytes_for", "segment_strides", "more_kv_cache_memory_hint", "finish_plan",
           "Sizing", "margin_floor_bytes", "NOT_MEASURED"]

_SRC = "vllm/v1/worker/extensible_kv_cache.py"
# vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:KV_CACHE_MARGIN_FLOOR_BYTES (3 << 30 on ROCm, else 1 << 30)
_MARGIN_FLOOR = {"rocm": 3 << 30}
_MARGIN_FLOOR_DEFAULT = 1 << 30
# vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:KV_CACHE_MARGIN_FRACTION
MARGIN_FRACTION = 0.75
# vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:KV_CACHE_NON_TORCH_RESERVE_BYTES (2 << 29 on ROCm, else 1 << 29)
_NON_TORCH_RESERVE = {"rocm": 2 << 29}
_NON_TORCH_RESERVE_DEFAULT = 1 << 29
# vLLM v0.34.0 vllm/utils/extensible_tensor.py:granule_size: the driver's granularity floored at 2 MiB
# (cuMemGetAllocationGranularity is 2 MiB on the H100/H200/A100; taken as 2 MiB everywhere)
GRANULE_BYTES = 2 * MiB
NOT_MEASURED = ("the vLLM 0.26 fits, checked against 14 real 0.34 startups on one H100 (README, accuracy: committed "
                "blocks median 0.39%, worst +6.2% on a Mamba-2 hybrid)")


def margin_floor_bytes(platform: str) -> int:
    return _MARGIN_FLOOR.get(platform, _MARGIN_FLOOR_DEFAULT)


def non_torch_reserve_bytes(platform: str) -> int:
    return _NON_TORCH_RESERVE.get(platform, _NON_TORCH_RESERVE_DEFAULT)


# --------------------------------------------------------------------------------------------- 1. on or off

def resolve_extensible_kv_cache(rules: RuleSet, args: EngineArgs, platform: str) -> tuple[bool, str | None]:
    """Whether the extensible KV cache is on, and a note when it is off by default's exception.

    vLLM v0.34.0 vllm/config/vllm.py:VllmConfig._resolve_extensible_kv_cache: off (with its reason) off CUDA/ROCm,
    with ``--kv-cache-memory-bytes``, ``--num-gpu-blocks-override``, elastic EP, a KV connector sharing the cache
    through legacy CUDA IPC (LMCacheMPConnector) or a custom memory pool, on ROCm with a connector that registers
    the cache (NIXL, Mooncake, MoRIIO), and by default with NIXL on device memory without an IMEX channel
    (vramplan assumes none: IMEX channels exist on multi-node NVLink systems). ``--enable-extensible-kv-cache``
    where unsupported is vLLM's ValueError; ``--no-enable-extensible-kv-cache`` turns it off.
    """
    requested = args.enable_extensible_kv_cache
    if not rules.extensible_kv_cache_platforms:
        if requested:
            raise InvalidConfig(f"--enable-extensible-kv-cache arrived in vLLM 0.34 (planning {rules.label})",
                                hint="plan it with --vllm-version 0.34 or drop the flag")
        return False, None
    kv = args.kv_transfer_config or {}
    connector = str(kv.get("kv_connector") or "")
    extra = kv.get("kv_connector_extra_config") or {}
    names = {connector} | {str(c.get("kv_connector") or "") for c in extra.get("connectors", []) or []}
    names.discard("")
    unsupported = None
    if platform not in rules.extensible_kv_cache_platforms:
        unsupported = "it is only supported on CUDA and ROCm"
    elif args.kv_cache_memory_bytes is not None:
        unsupported = "it sizes the KV cache from measured memory, which kv_cache_memory_bytes overrides"
    elif args.num_gpu_blocks_override is not None:
        unsupported = "it sizes the KV cache from measured memory, which num_gpu_blocks_override overrides"
    elif args.enable_elastic_ep:
        unsupported = ("elastic EP scale-up skips warmup and reuses the profiled KV cache size, so no measurement "
                       "would size the cache")
    elif "LMCacheMPConnector" in names:
        unsupported = ("a KV connector (e.g. LMCacheMPConnector) shares the KV cache through legacy CUDA IPC, "
                       "which cannot export driver-mapped memory")
    elif any(isinstance(c, dict) and c.get("custom_mem_pool") for c in
             [extra] + [ch.get("kv_connector_extra_config") or {} for ch in extra.get("connectors", []) or []]):
        unsupported = ("custom_mem_pool allocates the KV cache from a connector's memory pool, which a "
                       "driver-mapped cache cannot use")
    elif platform == "rocm" and names & {"NixlConnector", "MooncakeConnector", "MoRIIOConnector",
                                          "MooncakeStoreConnector"}:
        unsupported = ("on ROCm, UCX and RDMA cannot yet register driver-mapped memory, which connectors that "
                       "register the KV cache (e.g. NIXL, Mooncake, MoRIIO, UMBP) require")
    if requested is None:
        if unsupported is not None:
            return False, f"extensible KV cache off: {unsupported}; the KV cache is sized from the profile run"
        if "NixlConnector" in names and kv.get("kv_buffer_device", "cuda") != "cpu":
            return False, ("Extensible KV cache off: without an IMEX channel, KV transfers within a host (e.g. NIXL) "
                           "would lose NVLink and fall back to RDMA or TCP. If transfers only cross hosts, pass "
                           "--enable-extensible-kv-cache.")
        return True, None
    if requested and unsupported is not None:
        raise InvalidConfig(f"enable_extensible_kv_cache: {unsupported}.",
                            hint="drop --enable-extensible-kv-cache (the release then sizes from the profile run)")
    return bool(requested), None


# --------------------------------------------------------------------------------------------- 2-5. the steps

def segment_strides(layout: KVLayout) -> tuple[tuple[int, int], ...]:
    """The block stride of the reservation's segments, as ``(stride, number of segments)`` pairs.

    vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:ExtensibleKVCache._segments: under the default layout
    (``LBNHC``, layer-outermost and block-compact: vllm/v1/attention/backends/utils.py:_DEFAULT_LAYOUT_PREFERENCE)
    each layer slot is one segment of ``num_blocks`` pages. vramplan's layout gives ``group_size`` slots of one
    page each; a uniform-type layout (pages differing per layer) is taken as equal slots (an approximation that
    only moves the 2 MiB rounding).
    """
    if not layout.groups:
        return ()
    n = max(layout.group_size, 1)
    return ((layout.bytes_per_block // n, n),)


def physical_bytes_for(num_blocks: int, strides: tuple[tuple[int, int], ...], granule: int = GRANULE_BYTES) -> int:
    """vLLM v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.physical_bytes_for: each segment rounded to granules
    (``strides``: ``(block stride, number of segments)`` pairs)."""
    return sum(count * (-(-num_blocks * s // granule) * granule) for s, count in strides)


def blocks_within(num_bytes: int, strides: tuple[tuple[int, int], ...], capacity_blocks: int,
                  granule: int = GRANULE_BYTES) -> int:
    """vLLM v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.blocks_within: the most blocks whose physical
    footprint fits ``num_bytes`` (never above the reserved capacity)."""
    if len(strides) == 1:
        s, c = strides[0]
        if s > 0 and c > 0 and granule > 0:
            if num_bytes <= 0:
                return 0
            # one segment kind: c x ceil(n x s / granule) x granule <= num_bytes  <=>  n x s <= granule x
            # (num_bytes // (c x granule)), so the largest n is read off directly (no step-down; proven equal
            # to the step-down in tests/test_extensible_blocks_within.py)
            return min(granule * (num_bytes // (c * granule)) // s, capacity_blocks)
    per_block = sum(s * c for s, c in strides)
    if per_block <= 0 or num_bytes <= 0:
        return 0
    n = min(num_bytes // per_block, capacity_blocks)
    # the granule rounding costs at most one granule per segment: a few steps down from the unrounded count
    while n > 0 and physical_bytes_for(n, strides, granule) > num_bytes:
        n -= 1
    return n


def reserved_bound(available_bytes: int, layout: KVLayout) -> int:
    """Blocks of the reserved address range: the profile-based budget in blocks (vLLM v0.34.0
    kv_cache_planning.py:get_kv_cache_configs ``available // bytes_per_block``, then min over ranks)."""
    return max(available_bytes // layout.bytes_per_block, 0) if layout.groups else 0


def warmup_transient_peak(profile_peak_bytes: int, warmup_peak_bytes: int) -> int:
    """``reserved_headroom_bytes`` once warm-up ran: the profile's transient peak (``peak_activation_memory``,
    the graph estimate being 0) or the sizing warm-up's ``allocated peak - current``, whichever is larger
    (vLLM v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.record_transient_peak)."""
    return max(profile_peak_bytes, warmup_peak_bytes)


def measure_kv_cache_bytes(*, init_free_memory: int, free_memory: int, committed_bytes: int, requested_memory: int,
                           transient_peak_bytes: int = 0, torch_reserve_growth_bytes: int = 0,
                           margin_floor: int = _MARGIN_FLOOR_DEFAULT,
                           margin_fraction: float = MARGIN_FRACTION) -> int:
    """vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:measure_kv_cache_bytes, the same arithmetic."""
    non_kv_used = init_free_memory - free_memory - committed_bytes
    headroom = free_memory + committed_bytes
    margin = max(margin_floor, int(transient_peak_bytes * margin_fraction))
    available = min(requested_memory - non_kv_used, headroom - margin)
    available -= max(transient_peak_bytes, torch_reserve_growth_bytes)
    return max(available, 0)


def more_kv_cache_memory_hint(*, extensible: bool, util: float, after_warmup: bool) -> str:
    """vLLM v0.34.0 vllm/v1/core/kv_cache_planning.py:_more_kv_cache_memory_hint, verbatim."""
    if not extensible:
        return ("Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU "
                "memory reservation on the CPU backend, despite its name).")
    used_by = "the model and its activations"
    graphs_hint = ""
    if after_warmup:
        used_by = "the model, its activations, CUDA graphs and warmup"
        graphs_hint = " CUDA graphs take less with fewer or smaller capture sizes in the compilation config."
    if util < 1.0:
        return (f"The KV cache gets what is left after {used_by} within `gpu_memory_utilization`={util}; increase it "
                f"(with the extensible KV cache it defaults to 1.0) or decrease `max_model_len` or `max_num_seqs`."
                f"{graphs_hint}")
    return (f"The extensible KV cache already takes all device memory left after {used_by}; decrease `max_model_len` "
            f"or `max_num_seqs`, or the model needs a device with more memory.{graphs_hint}")


_DOCS = "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."


def no_kv_memory_message(hint: str) -> str:
    """vLLM v0.34.0 kv_cache_planning.py:_check_enough_kv_cache_memory, ``available_memory <= 0``."""
    return f"No available memory for the cache blocks. {hint} {_DOCS}"


def max_len_message(max_len: int, needed: int, available: int, estimate: int, hint: str) -> str:
    """vLLM v0.34.0 kv_cache_planning.py:_check_enough_kv_cache_memory, one request does not fit."""
    est = (f"Based on the available memory, the estimated maximum model length is {estimate}. "
           if estimate > 0 else "")
    return (f"To serve at least one request with the model's max seq len ({max_len}), ({format_gib(needed)} GiB KV "
            f"cache is needed, which is larger than the available KV cache memory ({format_gib(available)} GiB). "
            f"{est}{hint} Decreasing `max_model_len` also reduces what is needed. {_DOCS}")


def util_warning(util: float, requested: int, withheld: int) -> str:
    """vLLM v0.34.0 extensible_kv_cache.py:measure_kv_cache_blocks, the warning for 0.7 < util < 1.0 that holds
    back >= 1 GiB, verbatim."""
    return (f"gpu_memory_utilization={util} caps this instance at {format_gib(requested)} GiB, keeping "
            f"{format_gib(withheld)} GiB of free device memory out of the KV cache. The extensible KV cache is sized "
            f"from the memory measured after warmup and CUDA graph capture, so vLLM's own use needs no headroom below "
            f"1.0. Leave gpu_memory_utilization unset unless it leaves room for memory vLLM does not measure: other "
            f"processes sharing the GPU (including ones that allocate on it later), the CPU on a unified-memory "
            f"device, weight transfer buffers for weight updates, or a KV connector's own device buffers.")


# --------------------------------------------------------------------------------------------- one rank

@dataclass(frozen=True, slots=True, kw_only=True)
class Sizing:
    """One rank's post-warm-up measurement, as ``measure_kv_cache_blocks`` sees it."""

    reserved_blocks: int
    """The reserved address range in blocks (the profile-based budget)."""
    transient_peak_bytes: int
    """``reserved_headroom_bytes`` after the sizing warm-up (measured term: the 0.26 fits)."""
    torch_reserve_growth_bytes: int
    """Taken equal to the transient peak (the reservation growth is only measurable on a GPU)."""
    graph_pool_bytes: int
    committed_before_bytes: int
    """The null block(s) committed at allocation, each segment rounded to the granule."""
    non_kv_used_bytes: int
    free_after_warmup_bytes: int
    margin_bytes: int
    budget_cap_bytes: int
    """``requested - non_kv_used``: what util allows."""
    device_cap_bytes: int
    """``headroom - margin``: what the device allows."""
    available_bytes: int
    num_blocks: int
    withheld_bytes: int | None
    """What an explicit util in (0.7, 1.0) holds back against a budget of all free memory (None otherwise)."""
    torch_limit_bytes: int


def kept_after_profile(activation: Term | None) -> int:
    """The part of the profile peak that stays allocated after the profile run: the fused-MoE workspace, which
    the workspace manager keeps (vLLM v0.34.0 vllm/v1/worker/workspace.py:WorkspaceManager;
    fused_moe/modular_kernel.py ``_allocate_buffers``). It is in ``total consumed`` and in the memory measured
    after warm-up, not in the transient headroom (``torch_peak - torch_allocated``, vllm/utils/mem_utils.py:
    memory_profiling). Checked on vLLM 0.34.0 (data/truth/logs/h100e, h100f): torch peak increase less the
    headroom is 0.58 / 1.87 / 0.86 / 0.50 GiB for Qwen3-30B-A3B, Kimi-K2.5 (Marlin) and MiniMax-M2 trimmed,
    DeepSeek-V2-Lite, against workspaces of 0.50 / 1.75 / 0.75 / 0.45 GiB (+0.09 GiB kept by dense models too)."""
    from ....estimate.activation import MOE_WORKSPACE_PART

    if activation is None:
        return 0
    return sum(b for name, b in (activation.parts or ()) if name == MOE_WORKSPACE_PART)


def mla_builder_workspace_bytes(model, cfg, layers: range) -> int:
    """The MLA metadata builder's chunked-prefill workspace, ``(rows, kv_lora_rank + qk_rope_head_dim)`` in the
    model dtype (vLLM v0.34.0 mla_attention.py:MLACommonMetadataBuilder.__init__; rows as the profile's dummy,
    estimate/activation.py:mla_profile_context_rows; no DCP, no FP8 prefill query). The builders are made with
    the KV cache, after the profile run and before warm-up, so under the extensible cache it is in the memory
    measured after warm-up. Seen on vLLM 0.34.0: warm-up adds 0.14 GiB in use for DeepSeek-V2-Lite and 0.33 for
    Kimi-K2.5 trimmed against 0.00-0.08 for dense and GQA-MoE runs; this is 65,536 x 576 x 2 B = 72 MiB of it."""
    from ....estimate.activation import mla_profile_context_rows
    from ....model.quant import dtype_bytes

    if LayerKind.MLA not in model.layer_kinds or not any(
            layer.kind is LayerKind.MLA for layer in model.layers[layers.start:layers.stop]):
        return 0
    t = model.hf_config.get("text_config") or model.hf_config
    width = int(t.get("kv_lora_rank", 512)) + int(t.get("qk_rope_head_dim", 64))
    rows = mla_profile_context_rows(max_model_len=cfg.max_model_len, max_num_seqs=cfg.max_num_seqs,
                                    block_size=cfg.block_size)
    return int(rows * width * dtype_bytes(cfg.model_dtype))


def measure_rank(*, init_free: int, requested: int, weights: int, non_torch: int, profile_peak: int,
                 warmup_peak: int, graph_pool: int, layout: KVLayout, reserved_blocks: int, platform: str,
                 util: float, util_given: bool, kept: int = 0, after_profile: int = 0) -> Sizing:
    """Steps 3-5 on one rank (vLLM v0.34.0 extensible_kv_cache.py:measure_kv_cache_blocks). ``kept``: the part
    of ``profile_peak`` that stays allocated (:func:`kept_after_profile`): measured as in use, not transient.
    ``after_profile``: allocated after the profile run and kept (:func:`mla_builder_workspace_bytes`)."""
    strides = segment_strides(layout)
    committed = physical_bytes_for(1, strides)
    transient = warmup_transient_peak(profile_peak - kept, warmup_peak)
    growth = transient
    kept = kept + after_profile
    non_kv_used = weights + non_torch + graph_pool + kept
    free = init_free - non_kv_used - committed
    floor = margin_floor_bytes(platform)
    margin = max(floor, int(transient * MARGIN_FRACTION))
    # measure_kv_cache_bytes's arithmetic written out (its non_kv_used is init_free - free - committed, i.e.
    # non_kv_used here; its headroom is free + committed): the same numbers, without a keyword call per budget
    device_cap = free + committed - margin
    kept = max(transient, growth)
    available = max(min(requested - non_kv_used, device_cap) - kept, 0)
    withheld = None
    if util_given and 0.7 < util < 1.0:
        withheld = max(min(init_free - non_kv_used, device_cap) - kept, 0) - available
    n = blocks_within(available, strides, reserved_blocks)
    left_free = free - (physical_bytes_for(n, strides) - committed) - non_torch_reserve_bytes(platform)
    return Sizing(reserved_blocks=reserved_blocks, transient_peak_bytes=transient, torch_reserve_growth_bytes=growth,
                  graph_pool_bytes=graph_pool, committed_before_bytes=committed, non_kv_used_bytes=non_kv_used,
                  free_after_warmup_bytes=free, margin_bytes=margin, budget_cap_bytes=requested - non_kv_used,
                  device_cap_bytes=device_cap, available_bytes=available, num_blocks=n,
                  withheld_bytes=withheld, torch_limit_bytes=weights + graph_pool + kept + max(left_free, 0))


# --------------------------------------------------------------------------------------------- the plan

def _rewrite_kv_error(plan, *, extensible: bool):
    """The KV-sizing refusal (before warm-up) in 0.34's words: the same check, the new hint."""
    if plan.error_phase != "kv_sizing" or plan.error_kind not in ("no_kv_cache_memory",
                                                                   "max_model_len_exceeds_kv_cache"):
        return plan
    msg = plan.error_message or ""
    hint = more_kv_cache_memory_hint(extensible=extensible, util=plan.engine.gpu_memory_utilization,
                                     after_warmup=False)
    if msg.startswith("Cannot auto-fit"):
        new = ("Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single token. "
               + hint)
    elif msg.startswith("No available memory"):
        new = no_kv_memory_message(hint)
    elif msg.startswith("To serve at least one request"):
        cfg = plan.engine
        new = msg
        for r in plan.ranks:
            if not r.layout.groups:
                continue
            avail = (cfg.num_gpu_blocks_override * r.layout.bytes_per_block if cfg.num_gpu_blocks_override
                     else r.available_kv_bytes) - r.layout.bytes_per_block
            need = needed_bytes(r.layout, max_model_len=plan.max_model_len, max_in_flight_tokens=cfg.max_in_flight_tokens)
            if need > avail:
                est = estimate_max_model_len(r.layout, avail, upper=plan.max_model_len,
                                             max_in_flight_tokens=cfg.max_in_flight_tokens)
                new = max_len_message(plan.max_model_len, need, avail, est, hint)
                break
    else:
        return plan
    logs = tuple(f"ValueError: {new}" if line.startswith("ValueError: ") else line for line in plan.log_lines)
    return replace(plan, error_message=new, log_lines=logs)


WARMUP_RESERVE_FRACTION = 0.1
"""vLLM v0.34.0 extensible_kv_cache.py:KV_CACHE_WARMUP_RESERVE_FRACTION (what ``committable_blocks`` keeps back)."""


@dataclass(frozen=True, slots=True)
class RecurrentWarmup:
    """``warmup_kernels``' prefill step on a Mamba-2 or GDN model, before the KV cache is sized (vLLM v0.34.0
    vllm/v1/worker/gpu/warmup.py:_warmup_kernels): ``requests`` requests of 2 tokens, each its own chunk; what
    each holds per layer kind is :func:`_recurrent_warmup_bytes`. Its peak is not reset before the
    first sizing step, so ``record_transient_peak`` keeps it (``_measure_sizing_step``)."""
    requests: int
    chunk_state_bytes: int
    """One request's largest single tensor on this rank: a Mamba-2 chunk state, or a GDN float32 final state."""
    peak_bytes: int
    """What the step holds at once (:func:`_recurrent_warmup_bytes`; Mamba-2: 2 x requests x chunk_state_bytes)."""
    free_bytes: int
    """Free when the step runs: headroom less the blocks ``ensure_kv_cache_blocks`` committed for it."""
    kind: str = "mamba2"
    """The recurrent mixer that sets the peak: ``mamba2`` or ``gdn``."""

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.free_bytes


def _recurrent_warmup_bytes(model, cfg, layers: range, *, gdn_flashinfer: bool) -> tuple[int, int, str]:
    """Per request of ``warmup_kernels``' two-token prefill step, on this rank: (transient bytes, the largest single
    allocation, mixer kind), the largest recurrent layer of the stage; (0, 0, "") without one.

    - Mamba-2: ``_state_passing_fwd`` holds the chunk states and their output, both float32 ``(heads/TP, head_dim x
      state_size)`` a chunk, and every two-token request is its own chunk (ops/ssd_state_passing.py).
    - GDN (vLLM v0.34.0 qwen_gdn_linear_attn.py:QwenGatedDeltaNet._forward_core, prefill branch): the requests'
      initial states gathered from the cache (``gather_initial_states``, the SSM cache dtype) and the float32
      final states (``output_final_state=True``) live together, ``(num_v_heads/TP, head_k, head_v)`` each; FLA's
      Triton prefill also keeps every chunk's state in the key dtype (third_party/flash_linear_attention/ops/
      chunk_delta_h.py:chunk_gated_delta_rule_fwd_h, ``h = k.new_empty(B, NT, H, V, K)``; one chunk a request),
      FlashInfer's does not (flashinfer-python 0.7.4 gdn_prefill.py:chunk_gated_delta_rule, SM90 branch: only the
      float32 ``output_state`` of ``(num_seqs, heads, head, head)``; the output is vLLM's own buffer). Seen on vLLM 0.34.0 with the Triton prefill (data/truth/logs/h100f): Qwen3.5-9B and
      -35B-A3B trimmed, 1,024 requests x 32 x 128 x 128 x (4 + 4 + 2) bytes = 5.00 GiB of the 5.23 / 5.18 GiB kept.
    """
    from ....model.quant import dtype_bytes
    from ....rules.kv import _mamba_state_bytes

    best = (0, 0, "")
    for layer in model.layers[layers.start:layers.stop]:
        m = layer.mamba
        if m is None:
            continue
        if m.kind == "mamba2" and m.state_size:
            chunk = cdiv(m.num_heads, cfg.tp) * m.head_k_dim * m.state_size * 4
            cand = (2 * chunk, chunk, "mamba2")
        elif m.kind == "gdn":
            # the gathered states are the cache's own SSM state (rules/kv.py, ssm part of the page)
            gathered = _mamba_state_bytes(m, tp=cfg.tp, model_dtype=cfg.model_dtype, ssm_dtype=cfg.mamba_ssm_dtype,
                                          ssm_only=True)
            elems = (m.num_heads // cfg.tp) * m.head_k_dim * m.head_v_dim
            chunks = 0 if gdn_flashinfer else elems * dtype_bytes(cfg.model_dtype)
            cand = (gathered + elems * 4 + chunks, elems * 4, "gdn")
        else:
            continue
        if cand[0] > best[0]:
            best = cand
    return best


def recurrent_warmup(model, cfg, *, layers: range, init_free: int, non_kv_used: int, profile_peak: int,
                  layout: KVLayout, reserved_blocks: int, platform: str,
                  gdn_flashinfer: bool = False) -> RecurrentWarmup | None:
    """The warm-up step above on one rank, or None without Mamba-2 or GDN layers. Its requests: ``max_num_seqs``,
    capped by the token budget (``_cap_num_warmup_reqs``: max_num_batched_tokens // 2) and by the blocks
    ``committable_blocks`` allows (headroom - margin - max(transient, 0.1 x headroom)), one block per KV group
    per request (``_reserved_block_count`` of 5 tokens). Checked on vLLM 0.34.0 (data/truth/logs/h100e, h100f):
    Nemotron-H trimmed, 688 requests x 16 MiB = the 10.75 GiB it failed to allocate (twice), 256 x 16 MiB x 2 =
    8 GiB of the 8.15 GiB kept at --max-num-seqs 256; Nemotron-3-Nano trimmed, 1,024 x 2 MiB x 2 = 4 GiB of the
    4.13 GiB kept; Qwen3.5 trimmed (GDN, Triton prefill) 1,024 x 5 MiB = 5 GiB of 5.23 (:func:`_recurrent_warmup_bytes`)."""
    per_req, largest, kind = _recurrent_warmup_bytes(model, cfg, layers, gdn_flashinfer=gdn_flashinfer)
    if not per_req or not layout.groups:
        return None
    committable = warmup_committable_blocks(layout=layout, init_free=init_free, non_kv_used=non_kv_used,
                                            profile_peak=profile_peak, reserved_blocks=reserved_blocks,
                                            platform=platform)
    reqs = warmup_requests(cfg, committable, len(layout.groups))
    strides = segment_strides(layout)
    free = init_free - non_kv_used - max(physical_bytes_for(1 + reqs * len(layout.groups), strides),
                                         physical_bytes_for(1, strides))
    return RecurrentWarmup(requests=reqs, chunk_state_bytes=largest, peak_bytes=reqs * per_req, free_bytes=free,
                        kind=kind)


def warmup_committable_blocks(*, layout: KVLayout, init_free: int, non_kv_used: int, profile_peak: int,
                              reserved_blocks: int, platform: str) -> int:
    """``warmup_committable_blocks`` (vLLM v0.34.0 extensible_kv_cache.py:ExtensibleKVCache.committable_blocks, set
    in gpu_worker.initialize_from_config): the blocks within headroom - margin - max(transient, 0.1 x headroom)."""
    strides = segment_strides(layout)
    headroom = init_free - non_kv_used
    reserve = max(profile_peak, int(headroom * WARMUP_RESERVE_FRACTION))
    margin = max(margin_floor_bytes(platform), int(reserve * MARGIN_FRACTION))
    return max(blocks_within(max(headroom - margin - reserve, 0), strides, reserved_blocks), 1)


def warmup_requests(cfg, committable: int, groups: int) -> int:
    """How many synthetic requests ``warmup_kernels`` runs, on any model (vLLM v0.34.0
    vllm/v1/worker/gpu/warmup.py:_warmup_kernels): ``max_num_seqs``, capped by the token budget
    (``_cap_num_warmup_reqs``: max_num_batched_tokens // 2) and by the committable blocks, one block per KV group
    per request (``_reserved_block_count`` of 5 tokens); it then commits ``ensure_kv_cache_blocks(1 + requests x
    groups)``."""
    return max(1, min(cfg.max_num_seqs, cfg.max_num_batched_tokens // 2, max(1, (committable - 1) // max(groups, 1))))


def warmup_commits(p) -> tuple[int, int | None] | None:
    """``(warmup_kernels' commit, the sizing warm-up's commit)`` in blocks on the logged rank of a 0.34 plan under
    the extensible cache; the second is None where a KV group is not full attention (its per-request blocks are
    capped otherwise). None without a KV layout, with speculative decoding, or off the extensible cache.

    ``warmup_kernels`` commits ``1 + requests x groups`` (:func:`warmup_requests`); ``_compile_or_warm_up_model``
    releases them (``commit(min_committed_blocks, shrink=True)``) before the sizing warm-up, whose full
    max-num-batched-tokens step (``run_mixed_prefill_decode_warmup``: one 3-token decode and prefills of
    ``max_num_batched_tokens - 1`` tokens, ``max_model_len - 1`` at most each) commits ``1 +`` their blocks. MLA
    models also run a chunked-context step, not modelled: 1,089 blocks against 1,025 for DeepSeek-V2-Lite at
    max-model-len 4096 (data/truth/logs/h100e/mla_e_unset.log). Qwen3-8B at the H100 defaults: "Committed 1025 of
    7044 KV cache blocks (9.07 GiB physical)" (data/watch/vllm-0.34-qwen3-8b-h100)."""
    from ....model.description import LayerKind

    cfg, r = p.engine, p.logged_rank
    layout = r.layout
    if not layout.groups or r.term("reserved_bound") is None:
        return None
    if getattr(cfg, "num_speculative_tokens", 0) or getattr(p.args, "speculative_config", None):
        return None  # drafts change the prompt length and the blocks per request
    groups = len(layout.groups)
    # reserved_headroom_bytes = the profile's peak_activation_memory, less what the workspace manager keeps
    committable = warmup_committable_blocks(
        layout=layout, init_free=r.free_at_init_bytes,
        non_kv_used=r.bytes_of("non_kv_after_warmup") - r.bytes_of("cudagraph_pool"),
        profile_peak=max(r.bytes_of("activation_peak") - kept_after_profile(r.term("activation_peak")), 0),
        reserved_blocks=r.bytes_of("reserved_bound") // max(layout.bytes_per_block, 1), platform=p.device.platform)
    sizing: int | None = None
    if all(g.spec.sliding_window is None and g.spec.chunk_size is None and g.spec.kind is LayerKind.FULL
           for g in layout.groups) and cfg.max_num_seqs >= 2:
        bs = layout.block_size
        left = cfg.max_num_batched_tokens - 1
        per_req_max = -(-p.max_model_len // bs)
        prefills: list[int] = []
        while left > 0 and len(prefills) < cfg.max_num_seqs - 1:
            take = min(left, p.max_model_len - 1)
            prefills.append(groups * min(-(-take // bs), per_req_max))
            left -= take
        required = groups + sum(prefills)
        # prefills the committable blocks cannot hold are dropped; with one left that still does not fit, the
        # step is skipped ("Skipping V2 mixed prefill+decode warmup")
        while committable <= required and len(prefills) > 1:
            required -= prefills.pop()
        sizing = 1 + required if committable > required else None
    return 1 + warmup_requests(cfg, committable, groups) * groups, sizing


def warmup_commit_blocks(p) -> int | None:
    """Blocks committed at the warm-up's peak on the logged rank (:func:`warmup_commits`), or None."""
    c = warmup_commits(p)
    return None if c is None else max(c[0], c[1] or 0)


MAMBA2_WARMUP_WARNING = (
    "Mamba-2 layers: vLLM 0.34's warmup_kernels runs up to --max-num-seqs two-token requests before the KV cache is "
    "sized, each a chunk of the Mamba-2 scan with float32 states; the plan keeps that peak as the transient and "
    "checks it fits (checked on two real startups); the other warm-up temporaries of these layers are not modelled. "
    "--max-num-seqs scales it.")


GDN_WARMUP_WARNING = (
    "GDN layers: vLLM 0.34's warmup_kernels runs up to --max-num-seqs two-token prefills before the KV cache is "
    "sized; each gathers its recurrent state and writes a float32 final state (and, on the Triton prefill, a chunk "
    "state). The plan keeps that peak as the transient (checked with the Triton prefill on two real startups; the "
    "FlashInfer prefill's is read from the source). --max-num-seqs scales it.")


def finish_plan(plan):
    """The plan as vLLM 0.34 sizes it: the 0.34 error words, and under the extensible cache, steps 2-6."""
    cfg = plan.engine
    plan = _rewrite_kv_error(plan, extensible=cfg.extensible_kv_cache)
    if not cfg.extensible_kv_cache or plan.error_kind is not None or plan.num_gpu_blocks is None:
        return plan
    model, rules = plan.model, plan.rules
    platform = plan.device.platform
    reserved = plan.num_gpu_blocks
    stages = pp_layer_split(model.num_hidden_layers, cfg.pp, cfg.pp_partition)
    util_given = plan.args.gpu_memory_utilization is not None
    sizings: list[Sizing] = []
    warmup_oom: RecurrentWarmup | None = None
    for r in plan.ranks:
        start, end = stages[r.pp_rank]
        graphs = cudagraph(model, mode=cfg.cudagraph_mode, capture_sizes=cfg.capture_sizes, runner=cfg.runner,
                           estimates=False, num_layers=end - start,
                           max_num_batched_tokens=cfg.max_num_batched_tokens, tp=cfg.tp,
                           v2_base_gib=plan.rules.v2_graph_pool_base_gib)
        # The sampler warm-up runs after record_transient_peak, and measure_kv_cache_blocks empties torch's
        # cache before reading free memory: its peak is not kept (v0.34.0 gpu_worker.py
        # Worker._compile_or_warm_up_model). The sizing warm-up's full step is taken as the profile peak.
        kept = kept_after_profile(r.term("activation_peak"))
        builder_ws = mla_builder_workspace_bytes(model, cfg, range(start, end)) if platform != "ascend" else 0
        mw = recurrent_warmup(model, cfg, layers=range(start, end), init_free=r.free_at_init_bytes,
                           non_kv_used=r.bytes_of("weights") + r.bytes_of("non_torch") + kept + builder_ws,
                           profile_peak=r.bytes_of("activation_peak") - kept, layout=r.layout,
                           reserved_blocks=reserved,
                           platform=platform,
                           gdn_flashinfer=cfg.gdn_flashinfer_prefill)
        warm = mw.peak_bytes if mw is not None else 0
        if mw is not None and not mw.fits and warmup_oom is None:
            warmup_oom = mw
        sizings.append(measure_rank(
            init_free=r.free_at_init_bytes, requested=r.requested_bytes, weights=r.bytes_of("weights"),
            non_torch=r.bytes_of("non_torch"), profile_peak=r.bytes_of("activation_peak"), warmup_peak=warm,
            graph_pool=graphs.actual_bytes, layout=r.layout, reserved_blocks=reserved, platform=platform,
            util=cfg.gpu_memory_utilization, util_given=util_given, kept=kept, after_profile=builder_ws))
    # vLLM v0.34.0 vllm/v1/worker/gpu_worker.py:_min_across_ranks; kv_cache_planning.py:finalize_extensible_kv_cache
    num_blocks = min(min(s.num_blocks for s in sizings), reserved)
    logged, s_log = plan.logged_rank, sizings[-1]
    inflight = cfg.max_in_flight_tokens
    max_len = plan.max_model_len
    warnings = list(plan.warnings)
    notes = [f"vLLM {plan.vllm_version} extensible KV cache: the transient peak, the graph pool and non-torch "
             f"memory are {NOT_MEASURED}"]
    error_kind = error_msg = None
    est_len = plan.estimated_max_model_len
    usable = [(num_blocks - 1) * r.layout.bytes_per_block for r in plan.ranks]
    if cfg.auto_max_model_len:
        # finalize_extensible_kv_cache: _auto_fit_max_model_len(after_warmup=True) over (blocks - 1) x bytes per block
        upper = cfg.max_model_len
        fit = min((estimate_max_model_len(r.layout, a, upper=upper, max_in_flight_tokens=inflight)
                   for r, a in zip(plan.ranks, usable) if r.layout.groups), default=upper)
        if fit <= 0:
            error_kind = "no_kv_cache_memory"
            error_msg = ("Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single "
                         "token. CUDA graph capture and warmup left no memory for the KV cache. Increase "
                         "`gpu_memory_utilization`, reduce the memory CUDA graphs take (fewer or smaller capture "
                         "sizes in the compilation config), or use more GPUs.")
        else:
            max_len = fit
    phase = "kv_sizing"
    if error_kind is None and warmup_oom is not None:
        error_kind, phase = "out_of_memory", "warmup"
        w = warmup_oom
        what = ("each a chunk of the Mamba-2 scan; the states and their output" if w.kind == "mamba2" else
                "each a GDN prefill; the gathered initial states and the float32 final states")
        error_msg = (f"CUDA out of memory. Tried to allocate {w.requests * w.chunk_state_bytes / GiB:.2f} GiB "
                     f"(warmup_kernels: {w.requests} two-token requests, {what} need {w.peak_bytes / GiB:.2f} GiB, "
                     f"{w.free_bytes / GiB:.2f} GiB is free after the blocks committed for the step)")
    if error_kind is None:
        # kv_cache_planning.py:shrink_kv_cache_configs -> _check_enough_kv_cache_memory((blocks - 1) x bytes per block)
        for r, a in zip(plan.ranks, usable):
            if not r.layout.groups:
                continue
            if a <= 0:
                error_kind, error_msg = "no_kv_cache_memory", no_kv_memory_message(
                    more_kv_cache_memory_hint(extensible=True, util=cfg.gpu_memory_utilization, after_warmup=True))
                break
            need = needed_bytes(r.layout, max_model_len=max_len, max_in_flight_tokens=inflight)
            if need > a:
                est_len = estimate_max_model_len(r.layout, a, upper=max_len, max_in_flight_tokens=inflight)
                error_kind = "max_model_len_exceeds_kv_cache"
                error_msg = max_len_message(max_len, need, a, est_len, more_kv_cache_memory_hint(
                    extensible=True, util=cfg.gpu_memory_utilization, after_warmup=True))
                break
    tokens = conc = None
    if error_kind is None:
        tokens, conc = capacity(logged.layout, num_blocks, max_model_len=max_len, max_in_flight_tokens=inflight,
                                v033=rules.capacity_v033, tokens_from_concurrency=rules.kv_tokens_from_concurrency)
    if any(layer.mamba is not None and layer.mamba.kind == "mamba2" for layer in model.layers):
        warnings.append(MAMBA2_WARMUP_WARNING)
    elif any(layer.mamba is not None and layer.mamba.kind == "gdn" for layer in model.layers):
        warnings.append(GDN_WARMUP_WARNING)
    if s_log.withheld_bytes is not None and s_log.withheld_bytes >= GiB:
        warnings.append(util_warning(cfg.gpu_memory_utilization, logged.requested_bytes, s_log.withheld_bytes))
    ranks = tuple(_rank_with_sizing(r, s, num_blocks, rules, plan.vllm_version) for r, s in zip(plan.ranks, sizings))
    logs = _log_lines(plan, s_log, num_blocks, tokens, conc, max_len, error_msg, warnings)
    sized = replace(plan, ranks=ranks, verdict="fails" if error_kind else "starts", error_kind=error_kind,
                   error_message=error_msg, error_phase=phase if error_kind else None,
                   num_gpu_blocks=None if error_kind else num_blocks, kv_cache_tokens=tokens, max_concurrency=conc,
                   estimated_max_model_len=est_len if error_kind else plan.estimated_max_model_len,
                   max_model_len=max_len, headroom_terms=_sizing_terms(plan, s_log, num_blocks),
                   warnings=tuple(warnings),
                   log_lines=tuple(logs), notes=plan.notes + tuple(notes))
    return replace(sized, headroom_terms=_startup_terms(sized) + sized.headroom_terms)


def _startup_terms(p) -> tuple[Term, ...]:
    """The process while ``warmup_kernels`` holds the blocks committed for its requests (:func:`warmup_commits`):
    context + what is resident before capture + those blocks + the transient the commit keeps (the activations of
    the step: 1.14 GiB read by NVML for Qwen3-8B, 0.96 planned). Empty where the commit is not modelled."""
    blocks = warmup_commit_blocks(p)
    if not blocks:
        return ()
    r = p.logged_rank
    commit = physical_bytes_for(blocks, segment_strides(r.layout))
    peak = (p.device.total_bytes - p.used_by_others_bytes - r.free_at_init_bytes + r.bytes_of("non_kv_after_warmup")
            - r.bytes_of("cudagraph_pool") + commit + r.bytes_of("warmup_transient_peak"))
    return (
        Term(key="warmup_kv_commit", label="KV blocks committed for the warm-up", bytes=commit, kind="exact",
             rule=f"vLLM v0.34.0 vllm/v1/worker/gpu/warmup.py:_warmup_kernels -> ensure_kv_cache_blocks: {blocks:,} "
                  "blocks, released before the cache is sized"),
        Term(key="startup_peak", label="process during the warm-up", bytes=peak, kind="measured",
             rule="context + non-KV before capture + the warm-up's committed blocks + the kept transient "
                  "(data/watch/vllm-0.34-qwen3-8b-h100: 26.98 GiB read by NVML)"),
    )


@lru_cache(maxsize=64)
def _rule_texts(version: tuple[int, int, int]) -> dict[str, str]:
    """The citations the 0.34 pass writes into every plan, built once per release (they depend on nothing else)."""
    from ..rules.versions import _cite as cite

    def c(symbol: str, path: str = _SRC) -> str:
        return cite(version, path, symbol)

    return {
        "reserved_bound": c("ExtensibleKVCache.__init__") + " (capacity = the profile run's requested - non-KV in "
                          "blocks, min over ranks; address space only, one block committed)",
        "warmup_transient_peak": c("ExtensibleKVCache.record_transient_peak") + " after "
                                 "vllm/v1/worker/gpu/warmup.py:run_kv_cache_sizing_warmup (a full "
                                 "max-num-batched-tokens step): max(profile peak, warm-up peak); " + NOT_MEASURED,
        "cudagraph_pool": c("Worker._compile_or_warm_up_model", "vllm/v1/worker/gpu_worker.py")
                          + " (capture after the sizing warm-up, inside the measured non-KV memory); " + NOT_MEASURED,
        "non_kv_after_warmup": c("measure_kv_cache_bytes") + " (init free - free - committed: weights + non-torch + "
                               "graph pool + the fused-MoE workspace the workspace manager keeps)",
        "kv_margin": c("measure_kv_cache_bytes") + " (KV_CACHE_MARGIN_FLOOR_BYTES, KV_CACHE_MARGIN_FRACTION)",
        "kv_cache": c("measure_kv_cache_bytes") + " (min(requested - non-KV used, free + committed - margin)"
                    " - max(transient peak, torch reserve growth))",
        "kv_committed": c("measure_kv_cache_blocks") + " (blocks_within, 2 MiB granules per segment), min over "
                        "ranks (gpu_worker._min_across_ranks), then extend_kv_cache",
        "util_withheld": c("measure_kv_cache_blocks") + " (the KV cache at a budget of all free "
                         "memory, less the KV cache at util x total)",
        "free_after_warmup": c("measure_kv_cache_blocks") + " (device_memory_info after empty_cache)",
        "torch_memory_limit": c("measure_kv_cache_blocks") + " (memory_reserved + what stays free less "
                              "KV_CACHE_NON_TORCH_RESERVE_BYTES; reserved taken as weights + graph pool)",
    }


@lru_cache(maxsize=1024)
def _warmup_terms(version: tuple[int, int, int], transient: int, growth: int, graph_pool: int, non_kv_used: int,
                  margin: int) -> tuple[Term, ...]:
    """The four after-warm-up terms; they depend on the batch limits and the model, not on max_model_len or util,
    so a sweep shares them (Terms are frozen)."""
    rt = _rule_texts(version)
    return (
        Term(key="warmup_transient_peak", label="warm-up transient peak", bytes=transient,
             kind="measured", rule=rt["warmup_transient_peak"],
             note=f"torch reservation growth taken equal ({format_gib(growth)} GiB)"),
        Term(key="cudagraph_pool", label="CUDA-graph pool (captured before the commit)", bytes=graph_pool,
             kind="measured", rule=rt["cudagraph_pool"]),
        Term(key="non_kv_after_warmup", label="non-KV in use after warm-up", bytes=non_kv_used,
             rule=rt["non_kv_after_warmup"]),
        Term(key="kv_margin", label="margin max(floor, 0.75 x transient)", bytes=margin,
             rule=rt["kv_margin"]),
    )


_GRAPH_NOTE = ("0 under the extensible cache (GPUModelRunner.profile_cudagraph_memory): the "
               "capture footprint is measured after warm-up instead")


def _rank_with_sizing(r, s: Sizing, num_blocks: int, rules: RuleSet, version: str):
    rt = _rule_texts(rules.version)
    terms = []
    for t in r.terms:
        if t.key == "cudagraph_estimate":
            # Term(...) rather than dataclasses.replace: the same value, without replace's field walk (every 0.34 plan)
            t = Term(key=t.key, label=t.label, bytes=0, rule=t.rule, kind=t.kind, parts=t.parts,
                     note=_GRAPH_NOTE)
        elif t.key == "kv_cache":
            t = Term(key="reserved_bound", label="reserved bound (address range, profile-based)",
                     bytes=s.reserved_blocks * r.layout.bytes_per_block,
                     rule=rt["reserved_bound"],
                     kind=t.kind, parts=t.parts, note=f"{s.reserved_blocks:,} blocks reserved")
        terms.append(t)
    terms += _warmup_terms(rules.version, s.transient_peak_bytes, s.torch_reserve_growth_bytes, s.graph_pool_bytes,
                           s.non_kv_used_bytes, s.margin_bytes)
    terms += [
        Term(key="kv_cache", label="KV cache (measured after warm-up)", bytes=s.available_bytes,
             rule=rt["kv_cache"],
             note=("bound by util x total" if s.budget_cap_bytes <= s.device_cap_bytes else
                   "bound by the device (free memory less the margin)")),
        Term(key="kv_committed", label="KV cache committed", bytes=num_blocks * r.layout.bytes_per_block,
             rule=rt["kv_committed"], note=f"{num_blocks:,} blocks"),
    ]
    if s.withheld_bytes is not None:
        terms.append(Term(key="util_withheld", label="held back by gpu_memory_utilization", bytes=s.withheld_bytes,
                          rule=rt["util_withheld"]))
    return replace(r, terms=tuple(terms), available_kv_bytes=s.available_bytes, num_blocks=s.num_blocks)


def _sizing_terms(plan, s: Sizing, num_blocks: int):
    """The plan's room story under 0.34: nothing is captured after the commit, so what is left is the margin."""
    rt = _rule_texts(plan.rules.version)
    r = plan.logged_rank
    strides = segment_strides(r.layout)
    phys = physical_bytes_for(num_blocks, strides)
    left = s.free_after_warmup_bytes - (phys - s.committed_before_bytes)
    return (
        Term(key="free_after_warmup", label="free after warm-up and capture", bytes=s.free_after_warmup_bytes,
             rule=rt["free_after_warmup"]),
        Term(key="headroom_left", label="free after the KV commit", bytes=left,
             rule="free after warm-up - the blocks committed by extend_kv_cache; the margin and the transient peak "
                  "stay free for serving", kind="exact"),
        Term(key="torch_memory_limit", label="torch allocator cap", bytes=s.torch_limit_bytes,
             rule=rt["torch_memory_limit"]),
    )


@lru_cache(maxsize=1024)
def _memory_after_warmup_head(free: int, committed: int, transient: int, growth: int) -> str:
    """The first half of measure_kv_cache_blocks's log line (the same for every plan of a sweep over max_model_len
    or util)."""
    g = format_gib
    return (f"Memory after warmup: {g(free)} GiB free, {g(committed)} GiB committed to "
            f"the KV cache, {g(max(transient, growth))} GiB kept for transient "
            f"activations ({g(transient)} GiB allocated at peak, {g(growth)} GiB of "
            f"torch reservation growth); ")


def _log_lines(plan, s: Sizing, num_blocks: int, tokens, conc, max_len: int, error: str | None,
               warnings: list[str]) -> list[str]:
    """The lines vLLM 0.34 logs for this startup, in order (format strings quoted in each function's source)."""
    g = format_gib
    r = plan.logged_rank
    drop = ("GPU KV cache size", "Maximum concurrency", "Graph capturing finished", "Estimated CUDA graph memory")
    lines = [x for x in plan.log_lines if not x.startswith(drop)]
    if s.graph_pool_bytes:
        # vLLM v0.34.0 vllm/v1/worker/gpu/model_runner.py capture log
        lines.append(f"Graph capturing finished in X secs, took {s.graph_pool_bytes / GiB:.2f} GiB")
    strides = segment_strides(r.layout)
    if error and error.startswith("CUDA out of memory"):
        # torch raises inside warmup_kernels, before capture and before the KV cache is measured
        return [x for x in lines if not x.startswith("Graph capturing")] + [f"torch.OutOfMemoryError: {error}"]
    if s.withheld_bytes is not None and s.withheld_bytes >= GiB:
        lines.append("WARNING " + util_warning(plan.engine.gpu_memory_utilization, r.requested_bytes,
                                               s.withheld_bytes))
    # vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:measure_kv_cache_blocks
    lines.append(
        _memory_after_warmup_head(s.free_after_warmup_bytes, s.committed_before_bytes, s.transient_peak_bytes,
                                  s.torch_reserve_growth_bytes)
        + f"{s.num_blocks} KV cache blocks ({g(s.num_blocks * r.layout.bytes_per_block)} GiB) fit within "
        f"the requested {g(r.requested_bytes)} GiB. Torch may reserve up to {g(s.torch_limit_bytes)} GiB.")
    if error:
        lines.append(f"ValueError: {error}")
        return lines
    if tokens is not None:
        # vLLM v0.34.0 vllm/v1/core/kv_cache_utils.py:update_kv_cache_capacity
        lines.append(f"GPU KV cache size: {tokens:,} tokens, Maximum concurrency for {max_len:,} tokens per request: "
                     f"{conc:.2f}x")
    # vLLM v0.34.0 vllm/v1/worker/extensible_kv_cache.py:extend_kv_cache
    lines.append(f"Extended KV cache to {num_blocks} blocks ({physical_bytes_for(num_blocks, strides) / GiB:.2f} GiB).")
    return lines


# --------------------------------------------------------------------------------------------- fit and knobs

def is_extensible(plan) -> bool:
    return plan.logged_rank.term("reserved_bound") is not None


def non_kv_bytes(plan) -> int:
    """What is not KV cache on the logged rank: under the extensible cache, everything resident after warm-up
    (weights, non-torch, graph pool) plus what stays free for transients (the transient peak and the margin);
    otherwise the profile's non-KV total plus the subtracted graph estimate."""
    r = plan.logged_rank
    if is_extensible(plan):
        return r.bytes_of("non_kv_after_warmup") + r.bytes_of("warmup_transient_peak") + r.bytes_of("kv_margin")
    return r.bytes_of("non_kv_total") + r.bytes_of("cudagraph_estimate")


def process_bytes(plan) -> int:
    """The server's device memory at its peak under the extensible cache: the context, what is resident after
    warm-up, the committed KV cache (granule-rounded) and the transient peak."""
    r = plan.logged_rank
    context = plan.device.total_bytes - plan.used_by_others_bytes - r.free_at_init_bytes
    committed = physical_bytes_for(plan.num_gpu_blocks or 0, segment_strides(r.layout))
    return context + r.bytes_of("non_kv_after_warmup") + committed + r.bytes_of("warmup_transient_peak")


def fit_notes(plan, unset) -> tuple[str, ...]:
    """What ``fit`` adds for a 0.34 answer: util only caps the budget; unset it is 1.0; the deterministic
    alternative turns the extensible cache off (``_resolve_extensible_kv_cache``) and brings back the free-memory
    check at util x total (``request_memory``)."""
    if not is_extensible(plan):
        return ()
    notes = ["vLLM 0.34 extensible KV cache: --gpu-memory-utilization only caps the budget (nothing is refused "
             "at startup for it); the cache is sized from the memory free after warm-up and CUDA-graph capture"]
    if unset is not None and unset.starts and unset.kv_cache_tokens is not None:
        notes.append(f"left unset (1.0) the cache holds {unset.kv_cache_tokens:,} tokens "
                     f"({unset.max_concurrency:.2f} requests of {unset.max_model_len:,}); set a lower util only "
                     f"to leave memory to other programs")
    notes.append("--kv-cache-memory-bytes turns the extensible cache off: util defaults to 0.92 again and the "
                 "free-memory check at startup applies (vllm/config/vllm.py:_resolve_extensible_kv_cache)")
    return tuple(notes)
