"""SGLang's own words: the error texts and the startup log lines, as format functions.

Each function names the SGLang release, file and function whose text it reproduces. The log reader
(:mod:`.log`) reads the same lines back.
"""

from __future__ import annotations

import math

__all__ = ["not_enough_memory", "weights_leave_no_room", "context_over_pool", "max_total_tokens_over_profiled",
           "load_begin", "load_end", "kv_allocated", "pool_end", "scheduler_line", "cuda_oom",
           "mamba_state_too_small"]


def not_enough_memory(fraction: float | None) -> str:
    """sglang 0.5.17/0.5.23 srt/model_executor/pool_configurator.py:MemoryPoolConfig.__post_init__."""
    msg = "Not enough memory. Please try to increase --mem-fraction-static."
    if fraction is not None:
        msg += f" Current value: mem_fraction_static={fraction}"
    return msg


def weights_leave_no_room(fraction: float, available_gb: float, pre_gb: float) -> str:
    """sglang 0.5.17/0.5.23 srt/mem_cache/kv_cache_configurator.py:KVCacheConfigurator._profile_available_bytes."""
    minimum = 1 - available_gb / pre_gb
    suggested = math.ceil(minimum * 1000) / 1000
    return (f"Loaded weights leave no GPU memory for the KV cache under --mem-fraction-static={fraction}. "
            f"Raise --mem-fraction-static above {suggested:.3f} (minimum viable = 1 - available/pre = "
            f"{minimum:.4f}). If using speculative decoding, draft weights are now counted.")


def context_over_pool(tokens: int, context_len: int) -> str:
    """sglang 0.5.23 srt/managers/tp_worker.py:TpModelWorker.get_worker_info (a warning, not an error)."""
    return (f"KV pool holds {tokens} tokens, fewer than --context-length {context_len}. One full-length request "
            "cannot fit, so long requests will be refused or truncated at serving time. Lower --context-length, "
            "raise --mem-fraction-static, or free memory taken before the pool is sized.")


def max_total_tokens_over_profiled(user: int, profiled: int) -> str:
    """sglang 0.5.17/0.5.23 kv_cache_configurator.py:KVCacheConfigurator._apply_token_constraints (a warning)."""
    return (f"max_total_tokens={user} is larger than the profiled value {profiled}. "
            "Use the profiled value instead.")


def mamba_state_too_small(size: int, rest_gb: float, per_req: int) -> str:
    """sglang 0.5.17/0.5.23 kv_cache_configurator.py:KVCacheConfigurator._handle_max_mamba_cache."""
    return (f"Not enough GPU memory for hybrid (mamba/linear-attention) state cache. Computed "
            f"max_mamba_cache_size={size} (total_rest_memory={rest_gb:.2f} GB, mamba_cache_per_req="
            f"{per_req / (1 << 20):.2f} MB). Try: (1) reduce --max-running-requests, (2) increase "
            "--mem-fraction-static, (3) reduce --speculative-num-draft-tokens, or (4) use GPUs with more memory.")


def cuda_oom(need_bytes: int, total_bytes: int, free_bytes: int) -> str:
    """PyTorch's caching-allocator error (torch/csrc/c10/cuda/CUDACachingAllocator.cpp), as SGLang surfaces it."""
    gib = 1 << 30
    return (f"CUDA out of memory. Tried to allocate {need_bytes / gib:.2f} GiB. GPU 0 has a total capacity of "
            f"{total_bytes / gib:.2f} GiB of which {max(free_bytes, 0) / gib:.2f} GiB is free.")


# --- log lines (the formats the reader parses) ---

def load_begin(avail_gb: float) -> str:
    """sglang 0.5.17/0.5.23 srt/model_executor/model_runner.py:ModelRunner.load_model."""
    return f"Load weight begin. avail mem={avail_gb:.2f} GB"


def load_end(arch: str, avail_gb: float, usage_gb: float, elapsed_s: float | None = None) -> str:
    """sglang 0.5.17/0.5.23 srt/model_executor/model_runner.py:ModelRunner.load_model (elapsed left out when
    predicted)."""
    el = f"elapsed={elapsed_s:.2f} s, " if elapsed_s is not None else ""
    return f"Load weight end. {el}type={arch}, avail mem={avail_gb:.2f} GB, mem usage={usage_gb:.2f} GB."


def kv_allocated(dtype: str, tokens: int, k_gb: float, v_gb: float | None = None) -> str:
    """sglang 0.5.23 srt/mem_cache/memory_pool.py:KVCache._finalize_allocation_log (0.5.17 the same text)."""
    if v_gb is None:
        return f"KV Cache is allocated. dtype: torch.{dtype}, #tokens: {tokens}, KV size: {k_gb:.2f} GB"
    return f"KV Cache is allocated. dtype: torch.{dtype}, #tokens: {tokens}, K size: {k_gb:.2f} GB, V size: {v_gb:.2f} GB"


def pool_end(avail_gb: float) -> str:
    """sglang 0.5.17/0.5.23 srt/mem_cache/kv_cache_configurator.py:KVCacheConfigurator.configure."""
    return f"Memory pool end. avail mem={avail_gb:.2f} GB"


def scheduler_line(tokens: int, cps: int, max_prefill: int, mrr: int, ctx: int, avail_gb: float) -> str:
    """sglang 0.5.17/0.5.23 srt/managers/scheduler.py:Scheduler.init_model_worker (the 'Print debug info' line)."""
    return (f"max_total_num_tokens={tokens}, chunked_prefill_size={cps}, max_prefill_tokens={max_prefill}, "
            f"max_running_requests={mrr}, context_len={ctx}, available_gpu_mem={avail_gb:.2f} GB")


STANDIN = "vLLM-fitted, not measured on SGLang"
"""The label of the terms SGLang does not budget and vramplan takes from its vLLM fits (activations, graphs)."""


def swa_cap_no_room(swa_tokens: int, fixed_bytes: int, budget_bytes: int) -> str:
    """0.5.17 / 0.5.23 pool_configurator.py SWAChunkCapPoolConfigurator / SWARequestCapPoolConfigurator.
    calculate_pool_sizes, in SGLang's words."""
    return (f"RuntimeError: SWA pool cap ({swa_tokens} tokens, {fixed_bytes / (1 << 30):.2f} GiB) leaves no room for the "
            f"full KV pool within the available {budget_bytes / (1 << 30):.2f} GiB. Reduce --max-running-requests, "
            "lower SGLANG_SWA_EVICTION_INTERVAL, or increase --mem-fraction-static.")
