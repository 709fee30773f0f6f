"""Non-torch memory of one rank at TP > 1 or PP > 1 on CUDA, following each release's order of events.

vLLM 0.19, 0.26, 0.33 and 0.34 all take the worker's init snapshot after
``init_worker_distributed_environment`` (``vllm/v1/worker/gpu_worker.py:Worker.init_device``), so what the
communicators allocate while they are built is outside the budget, and what they allocate lazily at the
first collectives of the profile run is inside it (rules/comm.py tells the order and the sizes):

before the snapshot (outside the budget, lowers the free memory the startup check sees):

- the CUDA context (as at TP=1, measured);
- one NCCL communicator per ``GroupCoordinator`` of more than one rank, each warmed up with a one-element
  all-reduce in ``PyNcclCommunicator.__init__``: ``tp`` (TP > 1), ``pp`` (PP > 1), ``dp`` (DP > 1) and,
  for MoE models only, ``ep`` (TP x DP > 1: ``initialize_model_parallel`` builds it whether or not
  ``--enable-expert-parallel`` is given). NCCL's own buffers are measured (one communicator, 2 ranks);
- for the ``tp`` group: the torch symmetric-memory buffer (``SymmMemCommunicator``; allocated wherever
  the capability and TP size are in ``SYMM_MEM_ALL_REDUCE_MAX_SIZES``, also when multicast is missing and
  the communicator disables itself) and ``CustomAllreduce``'s buffers (exact sizes per release);

during the profile run (inside the budget, the ``non-torch forward increase``):

- NCCL connections and library workspaces set up lazily (measured);
- NVLS (NVLink SHARP) buffers, where the GPUs sit on an NVSwitch with multicast and ``NCCL_NVLS_ENABLE``
  is not 0: NCCL connects them at the first large all-reduce (reported, not measurable on the lent
  machines, which keep NVLS off);
- 0.33+: the FlashInfer all-reduce workspace, created at the first all-reduce it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..engines.vllm.rules.comm import CommRules
from ..units import GiB, MiB

__all__ = ["MultiGpuNonTorch", "multi_gpu_non_torch", "NCCL_COMM_BYTES", "LAZY_INCREASE_BYTES", "NVLS_BYTES"]

# Measured: vLLM 0.26, 2xH200 TP=2, Qwen3-8B and Qwen2.5-VL-3B (data/truth x2-*_tp2, NCCL 2.28.3, NVLS and
# symmetric memory off): 1.46 GiB in use at the init snapshot vs 0.51 at TP=1 (0.95 GiB more). Less the custom
# all-reduce's 24 MiB (v0.26: 8 MiB metadata + 8 MiB staging + 8 MiB rank_data), one NCCL communicator of
# 2 ranks over NVLink holds 949 MiB. Larger TP sizes: assumed the same per communicator (not measured).
NCCL_COMM_BYTES = 949 * MiB
# Estimated (not measured): NCCL on PCIe-only GPUs, where the custom all-reduce is assumed off (no P2P).
NCCL_COMM_PCIE_BYTES = 410 * MiB
# Measured: non-torch forward increase 0.06-0.11 GiB at TP=2 (same runs), vs 0.22 at TP=1 on the same machine.
LAZY_INCREASE_BYTES = 92 * MiB
# Reported: llm-d planner's vLLM 0.19 H100 campaign (53 runs, TP 1-4; ../shared/research/anchors.md §1): the
# logged non-torch forward increase is ~2.1 GiB per GPU at TP >= 2 (~0.07 at PP >= 2), against 0.06-0.11 measured
# here with NCCL_NVLS_ENABLE=0. The difference, ~2.0 GiB, is taken as NCCL's NVLS buffers.
NVLS_BYTES = int(2.1 * GiB) - LAZY_INCREASE_BYTES
# Boards whose GPUs sit on an NVSwitch with multicast (HGX H100/H200/B200); NVLS and the symmetric-memory multicast
# paths need it. A100 NVSwitch has no multicast; PCIe and NVL cards have no NVSwitch.
NVSWITCH_MULTICAST = frozenset({"h100-80gb", "h200", "b200"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MultiGpuNonTorch:
    before_parts: tuple[tuple[str, int], ...]
    """Allocated before the init snapshot (outside the budget)."""
    during_parts: tuple[tuple[str, int], ...]
    """Allocated during the profile run (inside the budget)."""
    basis: str

    @property
    def before_bytes(self) -> int:
        return sum(b for _, b in self.before_parts)

    @property
    def during_bytes(self) -> int:
        return sum(b for _, b in self.during_parts)


def _on(env: Mapping[str, str], key: str, default: bool) -> bool:
    v = env.get(key)
    if v is None or v == "":
        return default
    return v.strip().lower() not in ("0", "false", "no", "off")


def custom_allreduce_bytes(comm: CommRules, *, tp: int, max_size: int, multicast: bool) -> tuple[tuple[str, int], ...]:
    """The buffers ``CustomAllreduce.__init__`` allocates on each rank (the C++ ``meta_size()``, a few KiB, left out)."""
    staging = max((max_size,) + comm.custom_ar_staging_extra)
    parts = [("custom all-reduce metadata (IPC)", max_size),
             ("custom all-reduce staging buffer (IPC)", staging),
             ("custom all-reduce rank_data", comm.custom_ar_rank_data)]
    if comm.custom_ar_mnnvl_stages and multicast:
        ag = dict(comm.mnnvl_all_gather_max).get(tp, 2 * MiB)
        stage = max(ag * tp, 16 * MiB)
        parts.append(("custom all-reduce multicast buffer", comm.custom_ar_mnnvl_stages * stage))
    return tuple(parts)


def multi_gpu_non_torch(comm: CommRules, *, context_bytes: int, tp: int, pp: int = 1, dp: int = 1,
                        is_moe: bool = False, nvlink: bool = True, device_name: str = "",
                        compute_capability: tuple[int, int] | None = None, env: Mapping[str, str] | None = None,
                        disable_custom_all_reduce: bool = False) -> MultiGpuNonTorch:
    """Per-rank non-torch memory at TP/PP/DP > 1 on CUDA, split at the init snapshot (see the module doc)."""
    env = env or {}
    nccl = NCCL_COMM_BYTES if nvlink else NCCL_COMM_PCIE_BYTES
    before: list[tuple[str, int]] = [("CUDA context", context_bytes)]
    groups = [g for g, n in (("tp", tp), ("pp", pp), ("dp", dp), ("ep", tp * dp if is_moe else 1)) if n > 1]
    for g in groups:
        before.append((f"NCCL communicator, {g} group", nccl))
    multicast = (device_name in NVSWITCH_MULTICAST and nvlink
                 and not _on(env, "TORCH_SYMM_MEM_DISABLE_MULTICAST", False))
    during: list[tuple[str, int]] = [("NCCL lazy connections", LAZY_INCREASE_BYTES)]
    if tp > 1:
        symm = (comm.lookup("symm_mem_max_sizes", compute_capability, tp)
                if _on(env, "VLLM_ALLREDUCE_USE_SYMM_MEM", comm.symm_mem_default) else None)
        if symm:
            before.append(("symmetric-memory all-reduce buffer", symm))
        if not disable_custom_all_reduce and tp in comm.custom_ar_world_sizes and nvlink:
            max_size = comm.custom_ar_max_size
            if symm and multicast:
                capped = comm.lookup("custom_ar_max_sizes_with_symm", compute_capability, tp)
                if capped:
                    max_size = min(capped, max_size)
            before.extend(custom_allreduce_bytes(comm, tp=tp, max_size=max_size, multicast=multicast))
        if device_name in NVSWITCH_MULTICAST and nvlink and _on(env, "NCCL_NVLS_ENABLE", True):
            during.append(("NCCL NVLS buffers", NVLS_BYTES))
        if _on(env, "VLLM_ALLREDUCE_USE_FLASHINFER", comm.flashinfer_allreduce_default):
            fi = comm.lookup("flashinfer_max_sizes", compute_capability, tp)
            if fi:
                during.append(("FlashInfer all-reduce workspace", fi))
    how = [f"NCCL {'measured: one communicator of 2 ranks over NVLink, vLLM 0.26 2xH200' if nvlink else 'estimated (PCIe)'}",
           "custom all-reduce and symmetric-memory sizes exact from the release's constants"]
    if any(w.startswith("NCCL NVLS") for w, _ in during):
        how.append("NVLS reported: ~2.1 GiB non-torch increase per GPU at TP >= 2 (llm-d, vLLM 0.19, H100); "
                   "NCCL_NVLS_ENABLE=0 drops it")
    if any(w.startswith("FlashInfer") for w, _ in during):
        how.append("FlashInfer workspace ~ vLLM's budget for it (FlashInfer's own sizing not read)")
    basis = ("before the init snapshot (outside the budget): " + ", ".join(f"{w} {b / MiB:.0f} MiB" for w, b in before)
             + "; during the profile run: " + ", ".join(f"{w} {b / MiB:.0f} MiB" for w, b in during)
             + "; " + "; ".join(how) + "; order of events: " + comm.cite)
    return MultiGpuNonTorch(before_parts=tuple(before), during_parts=tuple(during), basis=basis)
