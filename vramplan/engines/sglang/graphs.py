"""What SGLang's CUDA-graph capture takes from the memory the fraction leaves (issue 14), read from sglang 0.5.17.

SGLang logs each phase as ``Capture target {prefill,decode} CUDA graph end. ... mem usage=X GB``: free memory
(``get_available_gpu_memory``, which empties torch's cache first, so blocks the eager warm-up forwards freed are
not counted) before the runner is built less free memory after (``model_runner_components/cuda_graph_setup.py``:
``capture_prefill_graph`` / ``capture_decode_graph``). With the prefill graph on, prefill is captured first. Per phase:

- exact buffers, from the source's shapes:
  * the shared logits buffer ``[max decode bs, vocab]`` float32 (``graph_shared_output.py:GraphSharedOutput.
    get_logits_buffer``, rows ``model_runner.py:max_decode_logits_rows``), allocated by the first runner that asks:
    the prefill runner's capture (``prefill_cuda_graph_runner.py:_next_token_logits_buffer``) when the prefill graph
    is on, else the decode runner (``decode_cuda_graph_runner.py``, ``next_token_logits_buffer``);
  * the breakable backend's output buffer ``[max num_tokens, hidden]`` in the model dtype, allocated outside the
    graph pool from the first (largest) size's warm-up output (``runner_backend/breakable_cuda_graph_backend.py:
    capture_one`` -> ``_alloc_full_buffer``);
  * the triton attention backend's decode graph state (``layers/attention/triton_backend.py:TritonAttnBackend.
    init_cuda_graph_state``, called by ``decode_cuda_graph_runner.py`` with ``max_bs`` tokens): ``attn_logits``
    ``[bs, heads/tp, max_kv_splits, v_head_dim]`` float32, ``attn_lse`` ``[bs, heads/tp, max_kv_splits]`` float32,
    ``num_kv_splits`` ``[bs]`` int32, ``kv_indices`` ``[bs x context_len]`` int64; ``max_kv_splits`` is
    ``--triton-attention-num-kv-splits`` (8), for MLA ``_mla_decode_kv_splits_cap``: ``max(8, min(next_pow2(SMs),
    next_pow2(ceil(context_len / 32))))`` with ``v_head_dim = kv_lora_rank``;
- the prefill graph pool: the largest size's transformer-body forward (sizes are captured largest first into one
  pool, ``_capture_one_stream``; the breakable backend captures the body only, the LM head runs eagerly), priced by
  vramplan's activation model (``estimate/activation.py:profile_peak``, no sampler, no runner constant);
- a measured cost per decoder layer per captured size (each size is a captured graph whose nodes scale with the
  layers): fitted on the real SGLang 0.5.17 startups of data/truth_sglang (H100), as the residual of each logged
  "mem usage" over the terms above. Checked: ``q8b_maxtok`` (52 decode sizes) and ``q8b_default`` (36) give the same
  per-(layer x size) residual (180 vs 179 KiB) while their rows differ 3.5x, so it scales with graphs, not rows.

Other releases (0.5.23 changed these files) and other platforms keep the planner's vLLM-fitted stand-ins.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...estimate.activation import COEFFICIENTS, profile_peak
from ...model.description import ModelDescription
from ...units import KiB

# Measured (not read): the per-(decoder layer x captured size) residual of the logged "mem usage", median over the
# real SGLang 0.5.17 H100 startups of data/truth_sglang with that graph captured (bench/accuracy.py's SGLang rows).
# Decode (FULL graphs), 11 runs: Llama-3.1-8B 155, Qwen3-30B-A3B 128, Qwen3-0.6B 168, Qwen3-8B 170-183 (5 runs, incl.
# --cuda-graph-max-bs 512), Qwen2.5-VL-3B 139, DeepSeek-V2-Lite (MLA, bf16 and fp8 KV) 262/272 -> median 179 KiB.
# Prefill (breakable graphs, one per size), 7 runs: Llama-3.1-8B 214, Qwen3-30B-A3B 274, Qwen3-0.6B 244,
# Qwen3-8B 209-211 (4 runs) -> median 211 KiB.
DECODE_PER_LAYER_GRAPH_BYTES = 179 * KiB
PREFILL_PER_LAYER_GRAPH_BYTES = 211 * KiB
DECODE_BASIS = ("measured: 179 KiB per decoder layer per captured decode size, the median residual of 11 SGLang "
                "0.5.17 H100 startups (data/truth_sglang; 128-183 KiB on dense/MoE/VL models, 262-272 on MLA)")
PREFILL_BASIS = ("measured: 211 KiB per decoder layer per captured prefill size, the median residual of 7 SGLang "
                 "0.5.17 H100 startups (data/truth_sglang; 209-274 KiB: Qwen3-8B, Llama-3.1-8B, Qwen3-0.6B, "
                 "Qwen3-30B-A3B)")


@dataclass(frozen=True, slots=True)
class GraphCost:
    bytes: int
    parts: tuple[tuple[str, int], ...]
    rule: str


def _next_pow2(x: int) -> int:
    p = 1
    while p < x:
        p *= 2
    return p


def _dtype_bytes(dtype: str) -> int:
    return 4 if dtype in ("float32", "fp32") else 2


def mla_kv_lora_rank(model: ModelDescription) -> int | None:
    cfg = model.hf_config or {}
    text = cfg.get("text_config") or cfg
    r = text.get("kv_lora_rank") or cfg.get("kv_lora_rank")
    return int(r) if model.uses_mla and r else None


def triton_max_kv_splits(model: ModelDescription, *, context_length: int, sm_count: int | None,
                         num_kv_splits: int = 8) -> int:
    """``TritonAttnBackend.__init__``: ``--triton-attention-num-kv-splits``; MLA: ``_mla_decode_kv_splits_cap``."""
    if mla_kv_lora_rank(model) is None:
        return num_kv_splits
    ctx_cap = _next_pow2(-(-context_length // 32))
    cap = ctx_cap if sm_count is None else min(_next_pow2(sm_count), ctx_cap)
    return max(num_kv_splits, cap)


def triton_decode_state(model: ModelDescription, *, max_bs: int, context_length: int, tp: int,
                        sm_count: int | None) -> tuple[tuple[str, int], ...]:
    """The buffers of ``TritonAttnBackend.init_cuda_graph_state(max_bs, max_num_tokens=max_bs)``."""
    heads = max(1, model.num_attention_heads // tp)
    rank = mla_kv_lora_rank(model)
    v_dim = rank if rank is not None else model.head_dim
    splits = triton_max_kv_splits(model, context_length=context_length, sm_count=sm_count)
    return ((f"triton attn_logits [{max_bs}, {heads}, {splits}, {v_dim}] float32", max_bs * heads * splits * v_dim * 4),
            (f"triton attn_lse [{max_bs}, {heads}, {splits}] float32", max_bs * heads * splits * 4),
            (f"triton num_kv_splits [{max_bs}] int32", max_bs * 4),
            (f"triton kv_indices [{max_bs} x {context_length}] int64", max_bs * context_length * 8))


def logits_buffer(model: ModelDescription, max_decode_bs: int) -> tuple[str, int]:
    return (f"shared logits buffer [{max_decode_bs}, {model.vocab_size}] float32", max_decode_bs * model.vocab_size * 4)


def decode_graph_cost(model: ModelDescription, *, sizes: tuple[int, ...], context_length: int, tp: int,
                      num_layers: int, attention_backend: str, owns_logits: bool, sm_count: int | None) -> GraphCost:
    max_bs = max(sizes)
    parts: list[tuple[str, int]] = []
    if owns_logits:
        parts.append(logits_buffer(model, max_bs))
    if attention_backend == "triton":
        parts += triton_decode_state(model, max_bs=max_bs, context_length=context_length, tp=tp, sm_count=sm_count)
    graphs = num_layers * len(sizes) * DECODE_PER_LAYER_GRAPH_BYTES
    parts.append((f"graphs: {num_layers} layers x {len(sizes)} sizes x 179 KiB (measured)", graphs))
    rule = ("sglang 0.5.17 decode_cuda_graph_runner.py + graph_shared_output.py:GraphSharedOutput.get_logits_buffer"
            + (" (allocated here: the prefill graph is off)" if owns_logits else " (allocated by the prefill capture)")
            + (" + layers/attention/triton_backend.py:init_cuda_graph_state"
               if attention_backend == "triton" else
               f"; the {attention_backend} backend's graph buffers are not read (measured with triton)")
            + f"; {DECODE_BASIS}")
    return GraphCost(bytes=sum(b for _, b in parts), parts=tuple(parts), rule=rule)


def prefill_graph_cost(model: ModelDescription, *, sizes: tuple[int, ...], max_decode_bs: int | None, tp: int,
                       moe_tp: int, model_dtype: str, layers: range, platform: str) -> GraphCost:
    max_tokens = max(sizes)
    parts: list[tuple[str, int]] = []
    if max_decode_bs:
        parts.append(logits_buffer(model, max_decode_bs))
    parts.append((f"breakable output buffer [{max_tokens}, {model.hidden_size}] {model_dtype}",
                  max_tokens * model.hidden_size * _dtype_bytes(model_dtype)))
    peak = profile_peak(model, runner="v1", max_num_batched_tokens=max_tokens, max_num_seqs=1, tp=tp, moe_tp=moe_tp,
                        model_dtype=model_dtype, layers=layers, last_stage=False, platform=platform)
    body = max(0, peak.total_bytes - COEFFICIENTS["v1"].constant_bytes)
    parts.append((f"graph pool: the {max_tokens}-token body forward (activation model)", body))
    graphs = len(layers) * len(sizes) * PREFILL_PER_LAYER_GRAPH_BYTES
    parts.append((f"graphs: {len(layers)} layers x {len(sizes)} sizes x 211 KiB (measured)", graphs))
    rule = ("sglang 0.5.17 prefill_cuda_graph_runner.py (_capture_one_stream: largest size first, one pool: "
            "runner_utils/pool.py) + runner_backend/breakable_cuda_graph_backend.py:capture_one (_alloc_full_buffer)"
            + (" + graph_shared_output.py:get_logits_buffer (first asked here)" if max_decode_bs else "")
            + f"; body forward: {peak.basis}; {PREFILL_BASIS}")
    return GraphCost(bytes=sum(b for _, b in parts), parts=tuple(parts), rule=rule)
