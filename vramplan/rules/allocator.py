"""PyTorch's CUDA caching allocator, as far as "Model loading took" sees it.

vLLM logs the weights as ``torch.cuda.max_memory_allocated()`` after loading minus before, with the peak reset
first (vLLM v0.26.0 / v0.34.0 vllm/platforms/cuda.py:CudaPlatform.get_current_memory_usage, read by
vllm/utils/mem_utils.py:DeviceMemoryProfiler). That statistic sums the sizes of the allocator's *blocks*, not the
bytes the tensors asked for: a tensor that takes a whole segment which cannot be split keeps the segment's rounding.
Where a model's tensors are not multiples of 2 MiB, the log is above the sum of the tensors (Qwen2.5-VL-3B:
~43 MiB at TP 1, ~60 MiB at TP 2; docs/vllm-rules.md, "Allocator blocks in the weights").

The rules mirrored (PyTorch 2.x c10/cuda/CUDACachingAllocator.cpp, native allocator, expandable segments off):

- ``round_size``: a request is rounded up to a multiple of 512 bytes (``kMinBlockSize``).
- ``get_pool``: requests up to 1 MiB (``kSmallSize``) use the small pool, others the large pool.
- ``get_allocation_size``: a new segment is 2 MiB for the small pool (``kSmallBuffer``), 20 MiB for requests under
  10 MiB (``kLargeBuffer``, ``kMinLargeAlloc``), else the request rounded up to 2 MiB (``kRoundLarge``).
- ``get_free_block``: best fit, the smallest cached free block of the pool at least as large (ties by address);
  a request under ``max_split_size`` does not take a block of ``max_split_size`` or more, and a request of
  ``max_split_size`` or more does not take a block ``kLargeBuffer`` (20 MiB) or more larger than itself.
- ``should_split``: small pool, split when 512 bytes or more remain; large pool, when the request is under
  ``max_split_size`` and more than 1 MiB remains. The allocated block keeps the front of the free block.
- ``free_block``: a freed block merges with free neighbours of its segment.

``max_split_size`` is unlimited unless set: from v0.21.0 vLLM loads the model under
``Worker._scoped_allocator_max_split(max_split_size_mb=20)`` (vLLM v0.21.0 .. v0.34.0
vllm/v1/worker/gpu_worker.py:Worker.load_model; ``RuleSet.load_max_split_mib``), so no tensor of 20 MiB or more is
split off its segment and the freed float32 temporaries of the rotary caches are not reused by the weights.

The simulation starts from an empty pool (``empty_cache`` runs before the first reading); what the runner allocated
before the load (persistent input buffers) is not modelled.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

__all__ = ["Alloc", "Free", "allocated_block_bytes", "rope_cache_events", "expandable_segments", "MiB"]

MiB = 1 << 20
K_MIN_BLOCK_SIZE = 512
K_SMALL_SIZE = 1 * MiB
K_SMALL_BUFFER = 2 * MiB
K_LARGE_BUFFER = 20 * MiB
K_MIN_LARGE_ALLOC = 10 * MiB
K_ROUND_LARGE = 2 * MiB


class Alloc(int):
    """An allocation event: the tensor's bytes (an ``int``); its key is its index in the event list."""


class Free(int):
    """A free event: the index, in the event list, of the ``Alloc`` whose tensor is freed."""


def expandable_segments(env) -> bool:
    """Whether ``expandable_segments:True`` is in ``PYTORCH_CUDA_ALLOC_CONF`` / ``PYTORCH_ALLOC_CONF`` of ``env``
    (``(name, value)`` pairs): the allocator then maps pages into growable segments instead of rounding blocks."""
    conf = ",".join(v for k, v in env if k in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"))
    return "expandable_segments:true" in conf.replace(" ", "").lower()


def round_size(nbytes: int) -> int:
    """``round_size``: up to a multiple of 512 bytes (at least 512)."""
    return max(K_MIN_BLOCK_SIZE, -(-nbytes // K_MIN_BLOCK_SIZE) * K_MIN_BLOCK_SIZE)


def allocation_size(nbytes: int) -> int:
    """``get_allocation_size``: the size of a new segment for a rounded request."""
    if nbytes <= K_SMALL_SIZE:
        return K_SMALL_BUFFER
    if nbytes < K_MIN_LARGE_ALLOC:
        return K_LARGE_BUFFER
    return -(-nbytes // K_ROUND_LARGE) * K_ROUND_LARGE


class _Block:
    __slots__ = ("seg", "off", "size", "free", "prev", "next", "small")

    def __init__(self, seg: int, off: int, size: int, small: bool) -> None:
        self.seg, self.off, self.size, self.small = seg, off, size, small
        self.free = True
        self.prev: _Block | None = None
        self.next: _Block | None = None

    def key(self) -> tuple[int, int, int]:
        return (self.size, self.seg, self.off)


def allocated_block_bytes(events: Iterable[int], *, max_split_bytes: int | None = None, reserved: bool = False) -> int:
    """The allocator's allocated bytes after ``events`` (``Alloc``/``Free``), from an empty pool; with ``reserved``,
    the bytes of the segments it still holds after ``torch.cuda.empty_cache()`` (which returns every segment with no
    live block), what ``torch.cuda.mem_get_info`` then sees: SGLang's "Load weight end. ... mem usage" is free memory
    before minus after, read by ``get_available_gpu_memory``, which empties the cache first (sglang 0.5.17 / 0.5.23
    srt/utils/common.py)."""
    limit = max_split_bytes if max_split_bytes else 1 << 62
    free: dict[bool, list[tuple[int, int, int, _Block]]] = {True: [], False: []}
    live: dict[int, _Block] = {}
    allocated = 0
    segments = 0
    seg_size: dict[int, int] = {}

    def insert(b: _Block) -> None:
        bisect.insort(free[b.small], (*b.key(), b), key=lambda e: e[:3])

    def remove(b: _Block) -> None:
        pool = free[b.small]
        i = bisect.bisect_left(pool, b.key(), key=lambda e: e[:3])
        del pool[i]

    for index, event in enumerate(events):
        if isinstance(event, Free):
            b = live.pop(int(event))
            allocated -= b.size
            b.free = True
            for side in ("prev", "next"):
                other = getattr(b, side)
                if other is not None and other.free:
                    remove(other)
                    if side == "prev":
                        other.size += b.size
                        other.next = b.next
                        if b.next is not None:
                            b.next.prev = other
                        b = other
                    else:
                        b.size += other.size
                        b.next = other.next
                        if other.next is not None:
                            other.next.prev = b
            insert(b)
            continue
        size = round_size(int(event))
        small = size <= K_SMALL_SIZE
        pool = free[small]
        i = bisect.bisect_left(pool, (size,), key=lambda e: e[:1])
        found = None
        if i < len(pool):
            cand = pool[i][0]
            if not ((size < limit and cand >= limit) or (size >= limit and cand >= size + K_LARGE_BUFFER)):
                found = pool.pop(i)[3]
        if found is None:
            found = _Block(segments, 0, allocation_size(size), small)
            seg_size[found.seg] = found.size
            segments += 1
        remaining = found.size - size
        split = remaining >= K_MIN_BLOCK_SIZE if small else (size < limit and remaining > K_SMALL_SIZE)
        if split:
            rest = _Block(found.seg, found.off + size, remaining, small)
            rest.prev, rest.next = found, found.next
            if found.next is not None:
                found.next.prev = rest
            found.next = rest
            found.size = size
            insert(rest)
        found.free = False
        live[index] = found
        allocated += found.size
    if reserved:
        return sum(seg_size[seg] for seg in {b.seg for b in live.values()})
    return allocated


def rope_cache_events(start: int, positions: int, rotary_dim: int, cache_dtype_bytes: int) -> list[int]:
    """The allocations of one rotary cache, ``start`` being the index of its first event.

    vLLM v0.26.0 / v0.34.0 vllm/model_executor/layers/rotary_embedding/base.py:RotaryEmbeddingBase.__init__ and
    ``_compute_cos_sin_cache``, on the device: ``t`` (positions, float32), ``freqs``, ``cos`` and ``sin``
    (positions x rotary_dim/2, float32), their concatenation (positions x rotary_dim, float32); the locals are
    freed when the function returns, the cache is cast to the model dtype (the buffer kept) and the float32
    concatenation freed. A float32 cache (gpt-oss: vLLM v0.26.0 / v0.34.0 vllm/model_executor/models/gpt_oss.py:
    OAIAttention.__init__, ``get_rope(..., dtype=torch.float32)``) is the concatenation itself: ``Tensor.to`` of
    the same dtype returns the tensor, so nothing is copied or freed. (The few-element ``inv_freq`` temporaries are
    left out.)
    """
    half = positions * (rotary_dim // 2) * 4
    ev: list[int] = [Alloc(positions * 4), Alloc(half), Alloc(half), Alloc(half), Alloc(positions * rotary_dim * 4)]
    ev += [Free(start + k) for k in range(4)]
    if cache_dtype_bytes != 4:
        ev.append(Alloc(positions * rotary_dim * cache_dtype_bytes))
        ev.append(Free(start + 4))
    return ev
