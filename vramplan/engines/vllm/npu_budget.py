"""vllm-ascend's NPU worker: the absolute-peak KV budget of vllm-ascend <= 0.13 and the KV double
allocation of vllm-ascend 0.12/0.13.

There is no init snapshot: every byte outside torch (runtime context, HCCL, other programs) is
non-torch memory, and the KV budget is ``total x util`` less the torch peak (weights included) and
all of it.
"""

from __future__ import annotations

from ...plan import RankPlan, Term
from ...units import GiB, format_gib
from .budget import Budget
from .failure import _Failure


def _all_non_torch(over, used_by_others_bytes: int, cite) -> Term:
    """vllm-ascend <= 0.13 vllm_ascend/worker/worker_v1.py:NPUWorker.determine_available_memory:
    non-torch is total - free - torch allocated, i.e. everything outside torch."""
    nt_bytes = over.before_snapshot_bytes + over.increase_bytes + used_by_others_bytes
    return Term(key="non_torch", label="non-torch memory (all of it)", bytes=nt_bytes, kind="measured",
                parts=(("runtime context (before the worker)", over.before_snapshot_bytes),
                       ("HCCL and workspaces", over.increase_bytes),
                       ("other programs", used_by_others_bytes)),
                rule="vllm-ascend <= 0.13 vllm_ascend/worker/worker_v1.py:NPUWorker."
                     "determine_available_memory (total - free - torch allocated); " + over.basis)


def _absolute_peak_kv(requested: int, non_kv: int, cg_applied: int, cite) -> tuple[int, str]:
    """vllm-ascend <= 0.13 vllm_ascend/worker/worker_v1.py:NPUWorker.determine_available_memory:
    ``max(int(total x util - peak incl. weights - non-torch), 0)``; no CUDA-graph estimate."""
    return (max(requested - non_kv, 0),
            "vllm-ascend <= 0.13 vllm_ascend/worker/worker_v1.py:NPUWorker.determine_available_memory "
            "(max(int(total x util - peak incl. weights - non-torch), 0))")


def _nothing_outside(used_by_others_bytes: int, over) -> tuple[int, int]:
    """Other programs and the runtime context are inside the absolute-peak budget already."""
    return 0, 0


def _acl_graph_warning(total: int, requested: int, logged: RankPlan, graphs) -> str | None:
    """vllm-ascend 0.9.1 vllm_ascend/worker/model_runner_v1.py:NPUModelRunner.capture_model warns when less
    than LOW_MEMORY_THRESHOLD_GB = 3 is free after ACL graph capture ("may potentially trigger Out-of-Memory")."""
    if not graphs.actual_bytes:
        return None
    after = total - requested + logged.bytes_of("activation_peak") - graphs.actual_bytes
    if after < 3 * GiB:
        return (f"about {format_gib(after)} GiB stays free after ACL graph capture, below the 3 GiB under which "
                f"vllm-ascend warns of out-of-memory; ACL graph memory is not measured (graphs sized like CUDA "
                f"graphs): lower --gpu-memory-utilization or add --enforce-eager if capture fails")
    return None


# vllm-ascend <= 0.13: no snapshot, so no free-memory refusal at init
ABSOLUTE_PEAK = Budget(
    name="absolute_peak", checks_free_memory=False, non_torch_term=_all_non_torch,
    kv_available=_absolute_peak_kv, headroom_outside=_nothing_outside, after_capture_warning=_acl_graph_warning)


def npu_double_alloc(r: RankPlan, num_blocks: int, total: int, requested: int) -> _Failure | None:
    """vllm-ascend 0.12/0.13 ``NPUModelRunner._allocate_kv_cache_tensors``: a KV tensor whose layers mix
    attention and linear attention gets a K/V buffer pair and a separate linear-attention buffer.

    The planned tensors are ``num_blocks x page`` per layer slot (one slot per layer of a group); the
    allocation is that twice where both kinds share the slot. What is free when it allocates: the device
    less everything non-KV still held (weights, non-torch), i.e. ``total - requested + planned KV``
    plus the profile peak's transient room, which is released by then.
    """
    kinds = {g.spec.kind.value for g in r.layout.groups}
    if "mamba" not in kinds or len(kinds) < 2:
        return None
    planned = num_blocks * r.layout.bytes_per_block
    allocated = 2 * planned
    free = total - requested + r.available_kv_bytes + r.bytes_of("activation_peak")
    if allocated <= free:
        return None
    return _Failure(
        "out_of_memory",
        f"NPU out of memory while allocating the KV cache: vllm-ascend 0.12/0.13 gives the attention and the "
        f"linear-attention layers that share a KV tensor separate buffers, {format_gib(allocated)} GiB for the "
        f"{format_gib(planned)} GiB planned, and about {format_gib(free)} GiB is free "
        f"(_allocate_kv_cache_tensors; fixed in vllm-ascend 0.18)", phase="kv_allocation")
