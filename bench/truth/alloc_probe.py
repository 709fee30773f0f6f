"""GPU side: log the CUDA caching allocator's state at the steps of a vLLM startup after the KV cache (issue 11.4).

``install()`` runs in measure_truth.py's parent after ``import vllm`` and before ``LLM()`` forks the engine-core
child, so the wrapped methods are the child's. It only reads counters (``torch.cuda.memory_stats``,
``torch.cuda.mem_get_info``): no tensor is allocated and nothing vLLM reads is changed. One line per step:

    TRUTH_ALLOC <step> <when> reserved=B allocated=B inactive_split=B peak_allocated=B peak_reserved=B free=B total=B

``reserved - allocated`` is what the allocator holds but no tensor uses; ``inactive_split`` the part of it in
blocks already split (the fragmentation that makes a large request fail although the bytes are there). The peak
counters are reset before each wrapped step once the KV cache is allocated (never before: vLLM's profile reads
them), so each later step's own peak is logged. ``when`` is
``before``, ``after`` or ``raised`` (with the exception's first line).
"""
from __future__ import annotations

import functools
import sys

_STEPS = [  # (module, attribute path, step name, reset the peak counters before it)
    ("vllm.v1.worker.gpu_worker", "Worker.initialize_from_config", "kv_cache_init", False),
    ("vllm.v1.worker.gpu_worker", "Worker.compile_or_warm_up_model", "compile_or_warm_up", True),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner.capture_model", "capture_v1", True),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner._dummy_sampler_run", "sampler_v1", True),
    ("vllm.v1.worker.gpu.model_runner", "GPUModelRunner.capture_model", "capture_v2", True),
    ("vllm.v1.worker.gpu.model_runner", "GPUModelRunner._dummy_sampler_run", "sampler_v2", True),
    ("vllm.v1.worker.gpu_worker", "warmup_kernels", "warmup_kernels_v2", True),
]


_STATE = {"after_kv": False}  # set once initialize_from_config has returned in this process


def _line(step: str, when: str, extra: str = "") -> None:
    import torch
    try:
        s = torch.cuda.memory_stats()
        free, total = torch.cuda.mem_get_info()
        print(f"TRUTH_ALLOC {step} {when} reserved={s.get('reserved_bytes.all.current', 0)} "
              f"allocated={s.get('allocated_bytes.all.current', 0)} "
              f"inactive_split={s.get('inactive_split_bytes.all.current', 0)} "
              f"peak_allocated={s.get('allocated_bytes.all.peak', 0)} peak_reserved={s.get('reserved_bytes.all.peak', 0)} "
              f"num_alloc_retries={s.get('num_alloc_retries', 0)} num_ooms={s.get('num_ooms', 0)} "
              f"free={free} total={total}{extra}", file=sys.stderr, flush=True)
    except Exception as e:  # noqa: BLE001 - a probe never breaks the run it watches
        print(f"TRUTH_ALLOC {step} {when} unreadable: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def _wrap(fn, step: str, reset: bool):
    @functools.wraps(fn)
    def probe(*a, **k):
        import torch
        _line(step, "before")
        if reset and _STATE["after_kv"]:
            try:
                torch.cuda.reset_peak_memory_stats()
            except Exception:  # noqa: BLE001
                pass
        try:
            out = fn(*a, **k)
        except BaseException as e:
            _line(step, "raised", " error=" + (str(e).splitlines() or [type(e).__name__])[0][:300].replace(" ", "_"))
            raise
        _line(step, "after")
        if step == "kv_cache_init":
            _STATE["after_kv"] = True
        return out
    probe.__truth_probe__ = True
    return probe


def install() -> list[str]:
    import importlib
    done = []
    for mod_name, path, step, reset in _STEPS:
        try:
            mod = importlib.import_module(mod_name)
        except Exception:  # noqa: BLE001 - not in this release
            continue
        owner, _, attr = path.rpartition(".")
        obj = getattr(mod, owner) if owner else mod
        fn = getattr(obj, attr, None)
        if fn is None or getattr(fn, "__truth_probe__", False):
            continue
        setattr(obj, attr, _wrap(fn, step, reset))
        done.append(step)
    return done
