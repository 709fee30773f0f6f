"""Non-torch memory, CUDA graphs and the post-KV warm-up: terms vLLM measures, modelled from measurements.

Non-torch memory comes in two parts that vLLM treats differently:

- memory in use when the worker takes its init snapshot (the CUDA context; with TP the NCCL
  communicators and custom all-reduce buffers, created before the snapshot on CUDA): outside
  the budget, but it lowers the free memory the startup check compares with ``total x util``;
- the non-torch increase during profiling (``non-torch forward increase memory``: lazily created
  library workspaces): inside the non-KV total. On Ascend the snapshot is taken before HCCL starts,
  so HCCL lands here instead.

CUDA graphs are captured after the KV cache (``compile_or_warm_up_model -> capture_model``).
The V1 runner estimates them first (``profile_cudagraph_memory``: per mode, the first capture
plus ``(n - 1) x`` the second) and, where the version and ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``
say so, subtracts the estimate from the KV budget. The V2 runner does not estimate before v0.29.

After the KV cache, ``compile_or_warm_up_model`` also warms the model and the sampler up with
``min(max_num_seqs, max_num_batched_tokens)`` requests. Whatever of that exceeds the profile
run's peak lands outside the budget.

Every number below comes from ``bench/fit_overheads.py`` over data/truth and data/device_v026
(vLLM 0.26 on H100/H200), with the cases it rests on named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..memo import by_identity
from ..model.description import ModelDescription
from ..engines.vllm.rules.comm import CommRules
from .multi_gpu import NVLS_BYTES, NVSWITCH_MULTICAST, multi_gpu_non_torch
from ..units import GiB, MiB

__all__ = ["Overheads", "GraphMemory", "non_torch", "non_torch_v0", "cudagraph", "post_kv", "PostKV",
           "CUDAGRAPH_WORST_RATIO", "V2_POOL_BASE_GIB", "sampler_penalty_state_bytes"]


def sampler_penalty_state_bytes(*, max_num_seqs: int, vocab: int) -> int:
    """The V2 runner's penalty state, allocated when the runner is built (before the profile run) and kept:
    ``output_bin_counts`` (max_num_reqs x vocab int32) and ``prompt_bin_mask`` (max_num_reqs x ceil(vocab/32)
    int32) (vLLM v0.26.0-v0.34.0 vllm/v1/worker/gpu/sample/penalties.py:PenaltiesState.__init__). From v0.27
    the non-KV total is the free-memory delta since the snapshot, so it counts them; v0.26's three-part sum did
    not. 1024 x 151,936 x 4 B = 0.58 GiB for Qwen3-8B at --max-num-seqs 1024: vLLM 0.34.0 logged total consumed
    16.07 GiB = 15.27 weights + 0.22 non-torch + 0.58 (data/truth/logs/h100e/q8b_e_unset)."""
    return max_num_seqs * vocab * 4 + max_num_seqs * (-(-vocab // 32)) * 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Overheads:
    before_snapshot_bytes: int
    """Used by this process before vLLM's snapshot: outside the budget, lowers free memory."""
    increase_bytes: int
    """Non-torch increase during profiling: inside the non-KV total."""
    basis: str
    increase_parts: tuple[tuple[str, int], ...] = ()
    """What the increase consists of, where known (TP/PP > 1 on CUDA: estimate/multi_gpu.py)."""
    before_parts: tuple[tuple[str, int], ...] = ()
    """What is in use at the snapshot, where known."""


# platform -> (in use at the snapshot, increase during profiling), TP=1, MiB
_TP1 = {
    "cuda": (522, 225, "measured: H100/H200, vLLM 0.26, 61 startups (data/truth, data/device_v026): 0.51-0.52 GiB "
                       "in use at the snapshot, non-torch forward increase 0.22-0.23 GiB"),
    "rocm": (522, 460, "reported: ROCm V0/V1 logs in data/public show 0.46-0.62 GiB non-torch"),
    "ascend": (358, 235, "measured: seed 001 (Ascend 910B, vllm-ascend): 0.35 GiB before HCCL"),
}
# TP/PP > 1: CUDA creates NCCL + custom all-reduce before the snapshot; the increase shrinks.
_MULTI = {
    "cuda": (1495, 92, "measured: 2xH200 TP=2, vLLM 0.26 (data/truth x2-*_tp2): 1.46 GiB in use at the snapshot "
                       "(+0.95 GiB NCCL/all-reduce), non-torch increase 0.06-0.11 GiB; symmetric-memory all-reduce "
                       "was off (no NVLink multicast); larger TP not measured"),
    "rocm": (1495, 92, "estimated like CUDA"),
    "ascend": (358, 573, "measured: seed 001 TP=2: non-torch forward increase 0.56 GiB (HCCL after the snapshot)"),
}


# vLLM >= 0.33 (torch 2.14.0+cu130; cuBLAS/cuBLASLt handles made in Worker.init_device, before the snapshot):
# the CUDA context at the snapshot, MiB. 0.70 GiB ("cuda_memory=0.7GiB" in "worker init memory snapshot",
# initial free 78.48 of 79.18 GiB) in all 14 vLLM 0.34.0 startups on one H100 (data/truth/logs/h100e); the
# increase during profiling stays 0.20-0.22 GiB there (total consumed - weights - the sampler's penalty state).
# 0.33 pins the same torch; it was not measured.
_CTX_HANDLES_FIRST = (717, "measured with vLLM 0.34.0 (torch 2.14): 0.70 GiB in use at the snapshot on H100, "
                           "14 startups (data/truth/logs/h100e)")


# PCIe-only GPUs (L4, L40S, RTX): vLLM's custom all-reduce needs NVLink (or 2 GPUs with P2P), so mostly NCCL.
_PCIE_EXTRA = (410, "estimated: NCCL without the custom all-reduce buffers on PCIe-only GPUs (not measured)")


def load_workspaces(*, kv_cache_dtype: str, platform: str, fp8_kv_load_workspace: bool = True
                    ) -> tuple[tuple[str, int], ...]:
    """Allocations made while loading the model, beyond its tensors, as (what, bytes) parts of the weights term.

    fp8 KV cache on CUDA: Qwen3-0.6B loads 1.12 GiB with the bf16 KV cache and 1.15 GiB with fp8 (vLLM 0.26,
    H100, data/truth h100a/q06b_e_kvfp8); the fp8 path (QuantFP8 on the query, DeepGEMM) allocates about
    32 MiB. One measured run: labelled so. vLLM 0.34.0 loads Qwen3-8B with fp8 KV in 15.27 GiB, as with bf16
    (data/truth/logs/h100e/q8b_e_kvfp8_unset): the rule set's ``fp8_kv_load_workspace`` is off there.
    """
    if fp8_kv_load_workspace and kv_cache_dtype.startswith("fp8") and platform == "cuda":
        return (("fp8 KV-cache path: workspace allocated during load (one measured run)", 32 * MiB),)
    return ()


def non_torch(platform: str, *, tp: int, pp: int = 1, nvlink: bool = True, comm: CommRules | None = None,
              dp: int = 1, is_moe: bool = False, device_name: str = "",
              compute_capability: tuple[int, int] | None = None, env: Mapping[str, str] | None = None,
              disable_custom_all_reduce: bool = False, handles_before_snapshot: bool = False) -> Overheads:
    """Non-torch memory of one rank, split at vLLM's init snapshot.

    ``handles_before_snapshot`` (the rule set's ``cublas_handles_in_init_device``, vLLM >= 0.33 here): the worker
    creates its cuBLAS/cuBLASLt handles in ``Worker.init_device``, before the snapshot, under torch 2.14; the
    context measured then (:data:`_CTX_HANDLES_FIRST`) replaces the 0.26 one on CUDA.

    On CUDA with TP/PP/DP > 1 and a release's communication rules (``comm``, from the rule set) the split
    follows that release's order of events (:func:`vramplan.estimate.multi_gpu.multi_gpu_non_torch`)."""
    handles = handles_before_snapshot and platform == "cuda"
    if platform == "cuda" and comm is not None and (tp > 1 or pp > 1 or dp > 1):
        return _multi_gpu(comm, tp, pp, dp, is_moe, nvlink, device_name, compute_capability,
                          tuple(env.items()) if env else (), disable_custom_all_reduce, handles)
    table = _MULTI if (tp > 1 or pp > 1) else _TP1
    ctx, inc, src = table.get(platform, table["cuda"])
    if handles:
        ctx += _CTX_HANDLES_FIRST[0] - _TP1["cuda"][0]
        src += "; at the snapshot instead: " + _CTX_HANDLES_FIRST[1]
    if table is _MULTI and platform == "cuda" and not nvlink:
        ctx = _TP1["cuda"][0] + _PCIE_EXTRA[0]
        src = _PCIE_EXTRA[1]
    return Overheads(before_snapshot_bytes=ctx * MiB, increase_bytes=inc * MiB, basis=src)


@by_identity(maxsize=1024)
def _multi_gpu(comm: CommRules, tp: int, pp: int, dp: int, is_moe: bool, nvlink: bool, device_name: str,
               compute_capability: tuple[int, int] | None, env: tuple[tuple[str, str], ...],
               disable_custom_all_reduce: bool, handles: bool = False) -> Overheads:
    """``non_torch`` at TP/PP/DP > 1 (pure in its arguments; memoised on the rule set's comm rules)."""
    ctx = (_CTX_HANDLES_FIRST if handles else _TP1["cuda"])[0]
    m = multi_gpu_non_torch(comm, context_bytes=ctx * MiB, tp=tp, pp=pp, dp=dp, is_moe=is_moe,
                            nvlink=nvlink, device_name=device_name, compute_capability=compute_capability,
                            env=dict(env), disable_custom_all_reduce=disable_custom_all_reduce)
    return Overheads(before_snapshot_bytes=m.before_bytes, increase_bytes=m.during_bytes, basis=m.basis,
                     increase_parts=m.during_parts, before_parts=m.before_parts)


# vLLM 0.6 (V0) counts every byte the device holds outside torch's allocator after profiling, the CUDA
# context included: 0.35 GiB in both RTX 3090 logs of ../shared/data (llama31-8b-rtx3090-len20k/-len29k,
# vLLM ~0.6.3-0.6.4, "non_torch_memory=0.35GiB"). With TP/PP the NCCL communicators and custom all-reduce
# buffers come on top: the increase measured with vLLM 0.26 on 2xH200 (0.95 GiB) is used, not measured on V0.
_V0_TP1 = 358
_V0_MULTI_EXTRA = _MULTI["cuda"][0] - _TP1["cuda"][0]


def non_torch_v0(*, tp: int, pp: int = 1, device_name: str = "", nvlink: bool = True,
                 env: Mapping[str, str] | None = None) -> Overheads:
    """V0's non-torch memory (vLLM v0.6.4.post1 vllm/worker/worker.py:Worker.determine_num_available_blocks):
    used device memory minus torch's allocated bytes after the profile run, inside the budget."""
    extra = _V0_MULTI_EXTRA if (tp > 1 or pp > 1) else 0
    basis = ("measured: 0.35 GiB in the two vLLM 0.6 RTX 3090 logs of ../shared/data (CUDA context and library "
             "workspaces)" + ("; + 0.95 GiB NCCL/all-reduce as measured with vLLM 0.26 on 2xH200 (not on V0)"
                              if extra else ""))
    nvls = 0
    if tp > 1 and nvlink and device_name in NVSWITCH_MULTICAST and (env or {}).get("NCCL_NVLS_ENABLE", "1") != "0":
        nvls = NVLS_BYTES
        basis += f"; + {NVLS_BYTES / GiB:.2f} GiB NCCL NVLS buffers (NVSwitch with multicast; estimate/multi_gpu.py)"
    parts = ((("CUDA context and library workspaces", _V0_TP1 * MiB),)
             + ((("NCCL communicator and custom all-reduce (vLLM 0.26, 2xH200)", extra * MiB),) if extra else ())
             + ((("NCCL NVLS buffers", nvls),) if nvls else ()))
    return Overheads(before_snapshot_bytes=0, increase_bytes=(_V0_TP1 + extra) * MiB + nvls, basis=basis,
                     increase_parts=parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphMemory:
    estimate_bytes: int
    """What ``profile_cudagraph_memory`` reports (0 where it does not run)."""
    actual_bytes: int
    """The pool the real capture takes after the KV cache is allocated."""
    num_piecewise: int
    num_full: int
    basis: str


# V1 estimate, per vLLM's own arithmetic: max(first captures) + (n-1) x per-graph of each mode.
# Measured first captures: FULL 130-258 MiB, PIECEWISE 62-128 MiB; per graph: PIECEWISE ~0.12 MiB per
# layer, FULL 1-2 MiB (Qwen3-0.6B, Qwen3-8B at TP 1 and 2, Qwen3-30B-A3B; data/truth x2-*_g_v1_*,
# data/device_v026 qwen3-30b-a3b). The real pool was 14-34% above the estimate (mean 1.25x).
_FIRST_FULL = 195 * MiB
_FIRST_PIECE = 101 * MiB
_PER_PIECE_PER_LAYER = 0.125 * MiB
_PER_FULL = 1.5 * MiB
_V1_ACTUAL_OVER_ESTIMATE = 1.25
# V2 (no estimate in v0.26): pool = a x (mnbt / 8192) + b x layers x hidden (fit over 6 graph runs: Qwen3-0.6B,
# Qwen3-8B x3, Llama-3.1-8B, Qwen2.5-VL-3B, Qwen3-VL-8B; max error 0.11 GiB).
V2_POOL_BASE_GIB = 0.38  # the fixed part at 8,192 batched tokens (RuleSet.v2_graph_pool_base_gib per release)
_V2_B = 4.2e-6 * GiB
# The worst measured ratio of the real pool to the modelled one, for the post-KV worst case: gpt-oss-20b compiled
# on H100 (data/truth/logs/h100h) logged 1.04 GiB on the V1 runner against 0.69 modelled (1.51x), 1.22 on V2
# against 0.96 (1.27x); the dense and Qwen3-MoE runs are within 0.77-1.13x.
CUDAGRAPH_WORST_RATIO = 1.51


def cudagraph(model: ModelDescription, *, mode: str, capture_sizes: tuple[int, ...], runner: str, estimates: bool,
              num_layers: int, max_num_batched_tokens: int, tp: int = 1,
              v2_base_gib: float | None = None) -> GraphMemory:
    """The CUDA-graph estimate and pool (pure; memoised on the model's identity, asked twice per 0.34 plan).
    ``v2_base_gib``: the V2 pool's fixed part in this release (``RuleSet.v2_graph_pool_base_gib``), None for the
    0.26 fit."""
    return _cudagraph(model, mode, tuple(capture_sizes), runner, estimates, num_layers, max_num_batched_tokens, tp,
                      V2_POOL_BASE_GIB if v2_base_gib is None else v2_base_gib)


@by_identity(maxsize=1024)
def _cudagraph(model: ModelDescription, mode: str, capture_sizes: tuple[int, ...], runner: str, estimates: bool,
               num_layers: int, max_num_batched_tokens: int, tp: int, v2_base_gib: float) -> GraphMemory:
    if mode == "NONE" or not capture_sizes:
        return GraphMemory(estimate_bytes=0, actual_bytes=0, num_piecewise=0, num_full=0, basis="no CUDA graphs")
    n = len(capture_sizes)
    n_piece = n if "PIECEWISE" in mode else 0
    n_full = n if mode.startswith("FULL") else 0
    firsts = [_FIRST_PIECE] * bool(n_piece) + [_FIRST_FULL] * bool(n_full)
    est = (max(firsts) + _PER_PIECE_PER_LAYER * num_layers * max(n_piece - 1, 0)
           + _PER_FULL * max(n_full - 1, 0))
    if runner == "v1":
        actual = est * _V1_ACTUAL_OVER_ESTIMATE
        basis = (f"{n} sizes: first capture + (n-1) x per-graph (vLLM's estimate rule), costs measured on H100/H200; "
                 f"real pool = 1.25 x estimate (measured)")
    else:
        # the per-layer term holds the largest graph's activations: fitted where that was 512 tokens; a larger
        # largest size (gpt-oss's 1024) scales it up (gpt-oss-20b: 0.96 GiB planned, 1.22 logged; was 0.67)
        largest = max(capture_sizes)
        per_layer = _V2_B * num_layers * model.hidden_size * max(1.0, min(largest, 1024) / 512)
        actual = v2_base_gib * GiB * max_num_batched_tokens / 8192 + per_layer
        basis = (f"{n} sizes: V2-runner pool fitted on 6 H100 graph runs (max error 0.11 GiB)"
                 + ("" if v2_base_gib == V2_POOL_BASE_GIB else
                    f", its fixed part {v2_base_gib:.2f} GiB in this release (RuleSet.v2_graph_pool_base_gib)")
                 + (f"; its per-layer part x {min(largest, 1024) / 512:.2f} for graphs up to {largest} tokens"
                    if largest > 512 else ""))
    if tp > 1:
        # measured: Qwen3-8B's V1 pool 0.67 GiB at TP=1, 0.55 at TP=2 (x0.82); beyond TP=2 extrapolated
        scale = 0.64 + 0.36 / tp
        est, actual = est * scale, actual * scale
    return GraphMemory(estimate_bytes=int(est) if estimates else 0, actual_bytes=int(actual),
                       num_piecewise=n_piece, num_full=n_full, basis=basis)


# After the KV cache (vLLM 0.26 Worker.compile_or_warm_up_model), measured with the allocator's own counters on one
# H100 (data/truth/logs/h100h: Qwen3-8B and gpt-oss-20b compiled, V1 and V2 runners, util 0.95-0.99, the default
# allocator and expandable segments; bench/truth/alloc_probe.py logged torch.cuda.memory_stats at each step):
# - the warm-up after the capture peaks at s x requests x vocab above what was allocated before it: V1 (model +
#   sampler at min(max_num_seqs, mnbt) requests, the sampler run twice, the second time on the sort path)
#   s = 14.1 B (gpt-oss-20b 14.09, Qwen3-8B 14.17); V2 (warmup_kernels: execute_model + sample_tokens) s = 4.7 B
#   (gpt-oss-20b 4.65, Qwen3-8B 4.72);
# - runner state in use after the KV cache that no budget term holds: V1 0.20-0.23 GiB (both models, not identified);
#   V2 the penalty state (vLLM 0.26 only: from 0.27 the budget counts it) + 0.07-0.08 GiB (grammar bitmask and
#   others);
# - the allocator: what it reserves but cannot hand to the warm-up (segments split by tensors that stay, and the
#   warm-up's growth beyond its own peak) is the part that varies: per configuration (model x runner) 0.15
#   (Qwen3-8B V1), 0.18 (Qwen3-8B V2), 0.41 (gpt-oss V2), 0.82 GiB (gpt-oss V1) with the default allocator; 0.11,
#   0.14 and 0.55 GiB with expandable_segments:True. The plan takes the median of the configurations and reports
#   the largest as its worst case.
_WARMUP_PER_ELEMENT = {"v1": 14.1, "v2": 4.7}
_RUNNER_STATE = {"v1": 0.20 * GiB, "v2": 0.08 * GiB}
_ALLOCATOR_LOSS = {False: (0.29 * GiB, 0.82 * GiB), True: (0.14 * GiB, 0.55 * GiB)}  # expandable: (median, worst)
_POST_KV_SOURCE = "measured on H100 with vLLM 0.26 (data/truth/logs/h100h, TRUTH_ALLOC lines)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PostKV:
    """What the steps after the KV cache need besides the CUDA-graph pool, and what they cannot reuse."""
    warmup_bytes: int
    """Peak of the warm-up after the capture (model + sampler), above what was allocated before it."""
    runner_state_bytes: int
    """In use after the KV cache beyond the weights and the KV cache, outside every budget term."""
    allocator_bytes: int
    """Reserved by the caching allocator but not reusable by the warm-up (median of the measured configurations)."""
    allocator_worst_bytes: int
    """The same, the worst measured configuration."""
    requests: int
    basis: str


def post_kv(*, runner: str, max_num_seqs: int, requests: int, vocab: int, platform: str,
            expandable_segments: bool, penalty_state_in_budget: bool) -> PostKV:
    """The memory the post-KV steps take besides the CUDA graphs (pure; see the measurements above). ``requests``:
    the warm-up's dummy requests, ``min(max_num_seqs, max_num_batched_tokens)``."""
    if platform == "ascend":  # vllm-ascend has no sampler warm-up after graph capture (docs/vllm-rules.md §12)
        return PostKV(warmup_bytes=0, runner_state_bytes=0, allocator_bytes=0, allocator_worst_bytes=0, requests=0,
                      basis="vllm-ascend: no sampler warm-up after the graph capture")
    runner = runner if runner in _WARMUP_PER_ELEMENT else "v1"
    state = int(_RUNNER_STATE[runner])
    if runner == "v2" and not penalty_state_in_budget:
        state += sampler_penalty_state_bytes(max_num_seqs=max_num_seqs, vocab=vocab)
    mid, worst = _ALLOCATOR_LOSS[expandable_segments]
    return PostKV(warmup_bytes=int(_WARMUP_PER_ELEMENT[runner] * requests * vocab), runner_state_bytes=state,
                  allocator_bytes=int(mid), allocator_worst_bytes=int(worst), requests=requests,
                  basis=_POST_KV_SOURCE)
