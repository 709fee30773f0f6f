"""The profile run's torch peak increase: what is live at its peak, not a constant per architecture.

vLLM measures ``torch peak memory increase`` as the allocated-bytes peak during
``profile_run`` minus the allocated bytes before it (v0.26.0
``vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory``). ``profile_run``
runs one dummy batch of ``max_num_batched_tokens`` tokens split over
``min(max_num_batched_tokens, max_num_seqs)`` requests with no attention metadata
(``_dummy_run(..., is_profile=True)``), then the sampler on one row per request
(``_dummy_sampler_run``). So the peak is the larger of:

- the forward pass: the residual stream (hidden + residual, ``2 x T x H``) plus the widest
  block's intermediates: attention (``qkv`` and its output) or the MLP (``gate_up`` of
  ``2 x I / tp`` and the activation output of ``I / tp``), or for MoE layers the router
  logits and the fused-MoE intermediate caches (``T x top_k x (2I + I + H)``);
- the sampler: the last hidden states, the logits in the model dtype, their float32 copy
  and the sampler's working buffers, all ``num_reqs x vocab``;

plus a small fixed amount the runner allocates lazily during its first step. The
coefficients of the sampler buffers and the fixed amount are fitted in
``bench/fit_activation.py`` against every measured startup in ``data/`` (one fit for all
models per runner, never per case), and their fitted values are recorded in
:data:`COEFFICIENTS` with the data they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..model.description import ModelDescription
from ..model.quant import dtype_bytes
from ..rules.weights import kv_heads_per_rank, pad_vocab_size
from ..units import MiB, cdiv

__all__ = ["Peak", "COEFFICIENTS", "profile_peak"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Peak:
    """An estimated peak of allocated memory, with its parts."""

    total_bytes: int
    phase: str
    """Which phase sets the peak: ``forward``, ``sampler`` or ``encoder``."""
    parts: tuple[tuple[str, int], ...]
    basis: str
    """One line on how the figure was obtained."""


@dataclass(frozen=True, slots=True)
class _Coeffs:
    sampler_fp32_copies: float
    """Float32 ``[num_reqs, vocab]`` buffers alive at the sampler's peak (logits copy, sort/softmax work)."""
    fixed_bytes: int
    """Allocated once during the first profile step (runner buffers, workspaces)."""
    source: str


# Fitted by bench/fit_activation.py; see its output in the README's accuracy section.
COEFFICIENTS: dict[str, _Coeffs] = {
    "v1": _Coeffs(sampler_fp32_copies=3.0, fixed_bytes=64 * MiB,
                  source="fit over V1-runner startups in data/device_v026 and data/truth"),
    "v2": _Coeffs(sampler_fp32_copies=2.0, fixed_bytes=64 * MiB,
                  source="fit over V2-runner startups in data/device_v026 and data/truth"),
}


def _forward_parts(model: ModelDescription, *, tokens: int, tp: int, moe_tp: int, b: float,
                   layers: range) -> list[tuple[str, int]]:
    per_token = _per_token_widths(model, tp, moe_tp, b, layers.start, layers.stop)
    return [(name, int(tokens * w)) for name, w in per_token]


@lru_cache(maxsize=1024)
def _per_token_widths(model: ModelDescription, tp: int, moe_tp: int, b: float, start: int,
                      stop: int) -> tuple[tuple[str, float], ...]:
    """Bytes per token of the residual stream and of the widest block, on one rank."""
    tokens = 1
    layers = range(start, stop)
    h = model.hidden_size
    resid = 2 * tokens * h * b
    attn = 0
    mlp = 0
    moe = 0
    for layer in (model.layers[i] for i in layers):
        if layer.attention is not None:
            a = layer.attention
            q = cdiv(model.num_attention_heads, tp) * model.head_dim
            kv = 2 * kv_heads_per_rank(a.num_kv_heads, tp) * (a.head_size if layer.kind.value != "mla" else model.head_dim)
            attn = max(attn, tokens * (q + kv + q) * b)
        if layer.is_moe and model.moe is not None:
            m = model.moe
            inter = cdiv(m.intermediate_size, moe_tp)
            per_tok = m.top_k * (2 * inter + inter + h) * b + m.num_experts * 4
            shared = (3 * cdiv(m.shared_intermediate_size, tp) * b) if m.shared_intermediate_size else 0
            moe = max(moe, tokens * (per_tok + shared))
        else:
            inter = cdiv(model.intermediate_size, tp)
            mlp = max(mlp, tokens * 3 * inter * b)
    block = max(attn, mlp, moe)
    name = "moe" if block == moe and moe else ("mlp" if block == mlp else "attention")
    return (("residual stream (hidden + residual)", resid), (f"widest block ({name} intermediates)", block))


def profile_peak(
    model: ModelDescription,
    *,
    runner: str,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    tp: int,
    moe_tp: int,
    model_dtype: str,
    layers: range,
    last_stage: bool,
) -> Peak:
    """The torch peak increase of ``profile_run`` on one rank (encoder excluded; see estimate.encoder)."""
    b = dtype_bytes(model_dtype)
    coeffs = COEFFICIENTS.get(runner, COEFFICIENTS["v1"])
    tokens = max_num_batched_tokens
    reqs = min(max_num_seqs, tokens)
    fwd = _forward_parts(model, tokens=tokens, tp=tp, moe_tp=moe_tp, b=b, layers=layers)
    fwd_total = sum(v for _, v in fwd)
    candidates = [("forward", fwd_total, fwd)]
    if last_stage:
        vocab = model.vocab_size
        local = pad_vocab_size(vocab) // tp
        sampler = [
            ("hidden states of the dummy batch", int(tokens * model.hidden_size * b)),
            ("logits (model dtype)", int(reqs * (vocab + (local if tp > 1 else 0)) * b)),
            ("sampler float32 buffers", int(reqs * vocab * 4 * coeffs.sampler_fp32_copies)),
        ]
        candidates.append(("sampler", sum(v for _, v in sampler), sampler))
    phase, total, parts = max(candidates, key=lambda c: c[1])
    parts = list(parts) + [("runner buffers allocated on the first step", coeffs.fixed_bytes)]
    return Peak(total_bytes=total + coeffs.fixed_bytes, phase=phase, parts=tuple(parts),
                basis=f"modelled from the live tensors of profile_run ({runner} runner); coefficients: {coeffs.source}")
