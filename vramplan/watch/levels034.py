"""The planned levels ``watch`` draws over a vLLM 0.34 startup with the extensible KV cache.

Each level is device memory above the baseline (the CUDA context included, ``total - free at init``) at one
point of 0.34's startup (watch/vllm034.py names the phases), built from the plan's own terms:

=======================================  ==========================================  ===========================
level                                    terms                                       measured as
=======================================  ==========================================  ===========================
``planned weights``                      context + weights                           first of ``weights_loaded``
``planned weights + activation peak``    + non-torch + the profile peak              peak of ``weights_loaded``
                                                                                     or ``compiled``
``planned at the reserve (1 block)``     context + non-KV before capture + the       first of ``kv_reserved``
                                         reserve's one block (2 MiB granules)
``planned warm-up commit (N blocks)``    + the blocks ``warmup_kernels`` commits     peak of ``warmup``
``planned after capture + transient``    context + non-KV after warm-up (graph pool  peak of ``graphs_captured``
                                         in) + the transient the plan keeps free
``planned total after the KV commit``    context + non-KV after warm-up + the        first of ``kv_committed``
                                         committed blocks (granules)
=======================================  ==========================================  ===========================

The warm-up commit is vLLM v0.34.0 vllm/v1/worker/gpu/warmup.py:_warmup_kernels: ``num_reqs`` two-token requests
(``_cap_num_warmup_reqs``: ``min(max_num_seqs, max_num_batched_tokens // 2)``), each holding one block per KV
group (``_reserved_block_count`` of 5 tokens), capped by ``warmup_committable_blocks``
(extensible_kv_cache.py:ExtensibleKVCache.committable_blocks, set in gpu_worker.initialize_from_config), then
``ensure_kv_cache_blocks(1 + num_reqs x blocks per request)``. ``Worker._compile_or_warm_up_model`` releases them
(``commit(min_committed_blocks, shrink=True)``) before the sizing warm-up, whose full max-num-batched-tokens step
commits ``1 + one request's blocks`` (taken as the larger of the two where every KV group is full attention; MLA
models also run a chunked-context step, not modelled: 1,089 blocks against 1,025 for DeepSeek-V2-Lite at
max-model-len 4096, data/truth/logs/h100e/mla_e_unset.log). The activations of these steps (a ``--max-num-seqs`` batch through the sampler with every sampling feature) are
not modelled: the planned warm-up level is what is resident plus the committed blocks.
"""

from __future__ import annotations

from typing import Any

from ..engines.vllm.sizing.extensible import warmup_commit_blocks, warmup_commits

__all__ = ["extensible_levels", "warmup_commit_blocks", "warmup_commits"]


def extensible_levels(p: Any) -> dict[str, int] | None:
    """Label -> bytes above the baseline for a 0.34 plan under the extensible cache that starts; None otherwise."""
    from ..engines.vllm.sizing.extensible import physical_bytes_for, segment_strides

    r = p.logged_rank
    if r.term("reserved_bound") is None or not p.starts or not p.num_gpu_blocks:
        return None
    ctx = p.device.total_bytes - r.free_at_init_bytes
    strides = segment_strides(r.layout)
    after = r.bytes_of("non_kv_after_warmup")
    before_capture = after - r.bytes_of("cudagraph_pool")
    levels = {
        "planned weights": ctx + r.bytes_of("weights"),
        "planned weights + activation peak": ctx + r.bytes_of("weights") + r.bytes_of("activation_peak")
        + r.bytes_of("non_torch"),
        "planned at the reserve (1 block)": ctx + before_capture + physical_bytes_for(1, strides),
    }
    warm = warmup_commit_blocks(p)
    if warm:
        levels[f"planned warm-up commit ({warm:,} blocks)"] = ctx + before_capture + physical_bytes_for(warm,
                                                                                                          strides)
    levels["planned after capture + transient"] = ctx + after + r.bytes_of("warmup_transient_peak")
    levels["planned total after the KV commit"] = ctx + after + physical_bytes_for(p.num_gpu_blocks, strides)
    return levels
