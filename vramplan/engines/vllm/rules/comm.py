"""How a vLLM release sets up multi-GPU communication, as far as it costs device memory.

Each :class:`~vramplan.engines.vllm.rules.versions.RuleSet` carries one :class:`CommRules` (field ``comm``). The
sizes are vLLM's own constants, cited; what NCCL and the CUDA driver allocate on top is measured and
lives in :mod:`vramplan.estimate.multi_gpu`.

The order of events is the same in 0.19, 0.26, 0.33 and 0.34 (``vllm/v1/worker/gpu_worker.py``
``Worker.init_device``): ``init_worker_distributed_environment`` -> ``init_distributed_environment`` +
``ensure_model_parallel_initialized`` (every ``GroupCoordinator`` of more than one rank builds a
``CudaCommunicator``: a ``PyNcclCommunicator`` whose ``__init__`` runs a one-element warm-up all-reduce,
and, for the ``tp`` group only, the torch symmetric-memory buffer and ``CustomAllreduce``), then
``gc.collect(); empty_cache()``, then the ``MemorySnapshot`` the budget starts from. So these buffers sit
before the snapshot (outside the budget: they only lower the free memory). What is allocated lazily at
the first collective of the profile run (NCCL connections for other algorithms, NVLS buffers, the
FlashInfer all-reduce workspace) falls inside it (``non-torch forward increase``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ....units import MiB

__all__ = ["CommRules", "COMM_V019", "COMM_V033"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommRules:
    """The communication buffers of one release, per rank of the tensor-parallel group."""

    custom_ar_world_sizes: tuple[int, ...]
    """``CustomAllreduce._SUPPORTED_WORLD_SIZES``: other TP sizes run without it."""
    custom_ar_max_size: int
    """``CustomAllreduce.__init__(max_size=8192 * 1024)``: the metadata buffer is ``meta_size() + max_size``."""
    custom_ar_staging_extra: tuple[int, ...]
    """Sizes the registered IPC staging buffer is the max of, besides ``max_size`` (0.33+: all-gather 2 MiB,
    reduce-scatter 16 MiB: ``legacy_buffer_size``)."""
    custom_ar_rank_data: int
    """``self.rank_data = torch.empty(8 * 1024 * 1024, dtype=torch.uint8)``."""
    custom_ar_mnnvl_stages: int
    """0.33+: ``_init_mnnvl_buffer`` allocates ``stage_size * 6`` bytes of torch symmetric memory and keeps them
    only where the GPUs have NVLink multicast (0 before 0.33)."""
    mnnvl_all_gather_max: tuple[tuple[int, int], ...] = ()
    """0.33+: ``_DEFAULT_MNNVL_ALL_GATHER_MAX_SIZES`` (world size -> bytes); stage = max(this x ws, 16 MiB)."""
    symm_mem_default: bool = True
    """``VLLM_ALLREDUCE_USE_SYMM_MEM`` default (``vllm/envs.py``): "1" in 0.19-0.34."""
    symm_mem_max_sizes: tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...] = ()
    """``SYMM_MEM_ALL_REDUCE_MAX_SIZES``: compute capability -> (world size -> buffer bytes)."""
    custom_ar_max_sizes_with_symm: tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...] = ()
    """``CUSTOM_ALL_REDUCE_MAX_SIZES``: with symmetric memory active, ``max_size = min(this, max_size)``."""
    flashinfer_allreduce_default: bool = False
    """``VLLM_ALLREDUCE_USE_FLASHINFER`` default: "0" in 0.19/0.26, "1" in 0.33/0.34."""
    flashinfer_max_sizes: tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...] = ()
    """``FI_ALLREDUCE_FUSION_MAX_SIZE_MB`` (capability -> world size -> bytes): the standalone workspace budget."""
    cite: str
    """Where the sizes were read."""

    def lookup(self, table: str, cc: tuple[int, int] | None, tp: int) -> int | None:
        for key, sizes in getattr(self, table):
            if key == cc:
                return dict(sizes).get(tp)
        return None


_SYMM = (((9, 0), ((2, 64 * MiB), (4, 32 * MiB), (6, 64 * MiB), (8, 64 * MiB))),
         ((10, 0), ((2, 8 * MiB), (4, 32 * MiB), (6, 128 * MiB), (8, 128 * MiB))))
_CA_WITH_SYMM = (((9, 0), ((2, 64 * MiB), (4, 32 * MiB), (6, MiB // 2), (8, MiB // 4))),
                 ((10, 0), ((2, 2 * MiB), (4, 2 * MiB), (6, MiB), (8, MiB))))

# vLLM v0.19.0 and v0.26.0 (identical): vllm/distributed/device_communicators/custom_all_reduce.py
# CustomAllreduce.__init__ (meta_ptrs = create_shared_buffer(meta_size() + max_size, uncached=True);
# buffer_ptrs = create_shared_buffer(max_size); rank_data 8 MiB), _SUPPORTED_WORLD_SIZES [2, 4, 6, 8];
# all_reduce_utils.py SYMM_MEM_ALL_REDUCE_MAX_SIZES / CUSTOM_ALL_REDUCE_MAX_SIZES; envs.py
# VLLM_ALLREDUCE_USE_SYMM_MEM "1", VLLM_ALLREDUCE_USE_FLASHINFER "0".
COMM_V019 = CommRules(
    custom_ar_world_sizes=(2, 4, 6, 8),
    custom_ar_max_size=8 * MiB,
    custom_ar_staging_extra=(),
    custom_ar_rank_data=8 * MiB,
    custom_ar_mnnvl_stages=0,
    symm_mem_max_sizes=_SYMM,
    custom_ar_max_sizes_with_symm=_CA_WITH_SYMM,
    flashinfer_allreduce_default=False,
    cite="vLLM v0.19.0/v0.26.0 vllm/distributed/device_communicators/custom_all_reduce.py:CustomAllreduce.__init__, "
         "symm_mem.py:SymmMemCommunicator.__init__, all_reduce_utils.py",
)

# vLLM v0.33.0 and v0.34.0 (identical here): CustomAllreduce gains world size 16, an IPC staging buffer of
# legacy_buffer_size = max(max_size, max_all_gather_size 2 MiB, max_reduce_scatter_size 16 MiB) and
# _init_mnnvl_buffer(max(_DEFAULT_MNNVL_ALL_GATHER_MAX_SIZES[ws] * ws, 16 MiB)) -> torch_symm_mem.empty(stage * 6),
# dropped again when handle.multicast_ptr == 0; VLLM_ALLREDUCE_USE_FLASHINFER defaults to "1"
# (flashinfer_all_reduce.py:FlashInferAllReduce, workspace created lazily in _ensure_workspace at the first
# all-reduce it accepts; budget compilation/passes/fusion/allreduce_rms_fusion.py FI_ALLREDUCE_FUSION_MAX_SIZE_MB).
COMM_V033 = CommRules(
    custom_ar_world_sizes=(2, 4, 6, 8, 16),
    custom_ar_max_size=8 * MiB,
    custom_ar_staging_extra=(2 * MiB, 16 * MiB),
    custom_ar_rank_data=8 * MiB,
    custom_ar_mnnvl_stages=6,
    mnnvl_all_gather_max=((2, 8 * MiB), (4, 4 * MiB), (6, 2 * MiB), (8, 2 * MiB), (16, 2 * MiB)),
    symm_mem_max_sizes=_SYMM,
    custom_ar_max_sizes_with_symm=_CA_WITH_SYMM,
    flashinfer_allreduce_default=True,
    flashinfer_max_sizes=(((9, 0), ((2, 64 * MiB), (4, 2 * MiB), (8, MiB // 2))),
                          ((10, 0), ((2, 64 * MiB), (4, 32 * MiB), (8, MiB), (16, 64 * MiB)))),
    cite="vLLM v0.33.0/v0.34.0 vllm/distributed/device_communicators/custom_all_reduce.py:CustomAllreduce.__init__ "
         "(legacy_buffer_size, _init_mnnvl_buffer), symm_mem.py:SymmMemCommunicator.__init__, "
         "flashinfer_all_reduce.py:FlashInferAllReduce, envs.py",
)
