"""The profile run's torch peak increase: what is live at its peak, not a constant per architecture.

vLLM measures ``torch peak memory increase`` as the allocated-bytes peak during
``profile_run`` minus the allocated bytes before it (v0.26.0
``vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory``). ``profile_run`` runs one
dummy batch of ``T = max_num_batched_tokens`` tokens over ``R = min(T, max_num_seqs)``
requests with no attention metadata (``_dummy_run(..., is_profile=True)``), then the sampler
on one row per request (``_dummy_sampler_run``). What is live at the peak:

- **forward, dense layers** (transient): the residual stream and the MLP's intermediates of
  one layer, ``T x (4 H + 3 I / tp)`` elements — hidden, residual, the norm's output and the
  ``down_proj`` output (4 H), the ``gate_up`` output (2 I) and the activation output (I).
- **forward, MoE layers**: the fused-MoE kernel's three intermediate caches
  ``T x top_k x (2 I' + I' + H)`` (``I' = I / (tp x dp)``), which vLLM's workspace keeps
  allocated once created, so they stay live through the sampler; plus the residual stream.
- **the sampler**: ``R x vocab`` elements: the logits and the sampler's working copies. The V1
  runner's dummy sampler run (top-k/top-p sort over float32 logits, then a second seeded pass)
  holds about 14.8 bytes per element; the V2 runner's (Triton sampler) about 2.4.

The peak is ``persistent MoE workspace + max(forward transient, sampler) + a small constant``.

Three terms are read from source and switched by release (rules/versions.py), not fitted:
``moe_workspace_manager`` (vLLM 0.19+: the workspace is the experts' ``workspace_shapes``,
:func:`fused_moe_workspace_per_token`, plus the layer's new ``[T, H]`` output), ``mla_profile_dummy``
(0.19+: MLA layers allocate the chunked-prefill context's up-projection instead of attending,
:func:`mla_profile`) and ``sampler_fp32_warmup_pass`` (0.33+ V2 runner: model-dtype logits + a float32 copy
+ the held ``[T, H]`` hidden states). Checked on vLLM 0.34.0 and 0.26 startups on one H100
(tests/unit/test_profile_kept_state_v034.py).
The three coefficients per runner (sampler bytes per element, constant, forward multiplier) are
fitted by ``bench/fit_activation.py`` over every measured startup in ``data/device_v026`` and
``data/truth`` (one fit for all models of a runner, never per case); :data:`COEFFICIENTS`
records the fitted values and the fit's error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..model.description import LayerKind, ModelDescription
from ..memo import by_identity
from ..model.quant import dtype_bytes
from ..units import MiB, cdiv, format_gib

__all__ = ["Peak", "Components", "MOE_WORKSPACE_PART", "MlaProfile", "mla_profile", "mla_profile_context_rows",
           "fused_moe_workspace_per_token", "COEFFICIENTS", "SAMPLER_PATHS", "coefficients_for", "components", "profile_peak"]


MOE_WORKSPACE_PART = "fused-MoE workspace (kept allocated)"
"""The label of the profile peak's part that stays allocated after the profile run (read by the 0.34 measure)."""


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
class Coefficients:
    sampler_bytes_per_element: float
    """Bytes live at the sampler's peak per (request x vocab) element."""
    constant_bytes: int
    """Allocated on the first profile step whatever the shapes (runner buffers, workspaces)."""
    forward_multiplier: float
    """Scale on the counted forward intermediates (1.0 = exactly the tensors listed above)."""
    source: str


# Fitted by bench/fit_activation.py on data/device_v026 + data/truth (vLLM 0.26, H100/H200,
# VLLM_USE_FLASHINFER_SAMPLER=0). Re-run it after adding measurements.
COEFFICIENTS: dict[str, Coefficients] = {
    "v1": Coefficients(sampler_bytes_per_element=14.7, constant_bytes=32 * MiB, forward_multiplier=1.0,
                       source="fit over the V1-runner startups of data/truth and data/device_v026"),
    "v2": Coefficients(sampler_bytes_per_element=2.2, constant_bytes=24 * MiB, forward_multiplier=1.0,
                       source="fit over the V2-runner startups of data/truth and data/device_v026"),
}
# vLLM 0.6 (V0): the same dummy prefill of max_num_batched_tokens tokens and a top-k/top-p sampler on one row per
# sequence (vllm/worker/model_runner.py:GPUModelRunnerBase.profile_run, SamplingParams(top_p=0.99, top_k=vocab-1));
# the V1 coefficients are used unchanged. Checked, not fitted, on the two vLLM 0.6 RTX 3090 logs of ../shared/data
# (Llama-3.1-8B, 20,000 and 29,000 tokens, where the forward sets the peak): +0.17 and +0.25 GiB (+8%).
COEFFICIENTS["v0"] = replace(COEFFICIENTS["v1"], source="the V1 runner's fit (vLLM 0.26) applied to V0's profile "
                                                        "run; +8% on the two vLLM 0.6 logs of ../shared/data")


# Bytes live per (request x vocab) element at the dummy sampler's peak on the paths older releases take
# (rules/engine_defaults.py:dummy_sampler_path), measured on an H100 (data/sampler_sort_h100).
SAMPLER_PATHS: dict[str, tuple[float, str]] = {
    "torch_sort": (38.0, "PyTorch sort top-k/top-p: 38 bytes per element, measured on an H100 "
                         "(data/sampler_sort_h100)"),
    "flashinfer": (14.0, "FlashInfer top-k/top-p (VLLM_USE_FLASHINFER_SAMPLER=1): 14 bytes per element, measured "
                         "on an H100 (data/sampler_sort_h100)"),
}


def coefficients_for(runner: str, sampler_path: str = "fitted") -> Coefficients:
    """The runner's fitted coefficients, with the sampler of ``sampler_path`` where it is not the fitted one."""
    base = COEFFICIENTS.get(runner, COEFFICIENTS["v1"])
    if sampler_path not in SAMPLER_PATHS:
        return base
    per, how = SAMPLER_PATHS[sampler_path]
    return replace(base, sampler_bytes_per_element=per, source=f"{base.source}; this version's sampler: {how}")


@dataclass(frozen=True, slots=True)
class Components:
    """Per-token and per-element sizes that set the profile peak (bytes)."""

    dense_per_token: float
    """Transient forward bytes per token of the widest dense (or attention-only) layer."""
    moe_ws_per_token: float
    """Persistent fused-MoE workspace bytes per token (0 for dense models)."""
    moe_rest_per_token: float
    """Transient bytes per token around a MoE layer (residual stream)."""
    vocab: int


@lru_cache(maxsize=1024)
def _mixer_per_token(m, tp: int) -> int:
    """Elements per token live inside a recurrent mixer at its peak, on one rank.

    Gated delta-net (vLLM v0.34.0 vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:
    QwenGatedDeltaNetAttention.forward): in_proj_qkvz output (2K + 2V) and in_proj_ba (2 x nv), the conv output
    (conv_dim) and the core attention output (V). Mamba-2 (mamba_mixer2.py:MambaMixer2.forward): in_proj output
    (2I + 2GN + H), the conv output (I + 2GN) and the SSM output (I). Read from source; not fitted.
    """
    if m.kind == "gdn":
        value = m.num_heads * m.head_v_dim
        return (m.conv_dim + value + 2 * m.num_heads + m.conv_dim + value) // tp
    if m.kind == "mamba2":
        inner = m.num_heads * m.head_k_dim
        return (m.conv_dim + inner + m.num_heads + m.conv_dim + inner) // tp
    return m.conv_dim // tp


@dataclass(frozen=True, slots=True)
class MlaProfile:
    """The MLA layers' profile-run live tensors (no attention metadata), on one rank."""

    per_token: float
    """Bytes per token: the norm output and residual (2 H) and the query and attention output
    (heads/TP x (qk + v))."""
    fixed_bytes: int
    """The dummy up-projected context, ``rows x heads/TP x (qk_nope + v)`` in the model dtype."""
    in_dense_layers: bool
    in_moe_layers: bool


def mla_profile_context_rows(*, max_model_len: int, max_num_seqs: int, block_size: int) -> int:
    """Rows of the chunked-prefill context workspace the MLA profile run sizes its dummy by.

    vLLM v0.26.0 / v0.33.0 / v0.34.0 vllm/model_executor/layers/attention/mla_attention.py:
    ``MLACommonMetadataBuilder.determine_chunked_prefill_workspace_size``: ``min(max(8 x max_model_len,
    4 x max_num_seqs x block_size), 64 x 1024)``, then ``align_mla_chunked_context_workspace_size`` (rounded up to
    the block size; decode context parallel, which changes the alignment, is not modelled)."""
    rows = min(max(8 * max_model_len, 4 * max_num_seqs * block_size), 64 * 1024)
    return cdiv(max(rows, block_size), block_size) * block_size


def fused_moe_workspace_per_token(*, top_k: int, intermediate: int, hidden: int, b: float) -> float:
    """Bytes per token of the fused-MoE workspace the workspace manager keeps (Triton and Marlin experts alike).

    vLLM v0.26.0-v0.34.0 vllm/model_executor/layers/fused_moe/modular_kernel.py:``_allocate_buffers``:
    ``get_simultaneous(max(workspace13, fused_out), workspace2)``; experts/triton_moe.py
    ``TritonExperts.workspace_shapes`` (N = 2 I): ``(M, top_k, max(I, K))`` and ``(M, top_k, max(2 I, K))``;
    experts/marlin_moe.py ``MarlinExperts.workspace_shapes`` (N = I): ``(M x top_k, max(I, K))`` and
    ``(M x top_k x max(2 I, K))``; the output ``(M, K)`` fits in the first. The manager
    (vllm/v1/worker/workspace.py:WorkspaceManager) keeps the buffer after the profile run."""
    return top_k * (max(intermediate, hidden) + max(2 * intermediate, hidden)) * b


@by_identity(maxsize=1024)
def mla_profile(model: ModelDescription, tp: int, b: float, start: int, stop: int, rows: int) -> MlaProfile | None:
    """vLLM v0.26.0-v0.34.0 mla_attention.py:MLAAttention.forward_impl with ``attn_metadata is None`` (the profile
    run): it allocates ``torch.empty((chunked_prefill_workspace_size, num_heads, qk_nope + v))`` "to simulate the
    worse case output size for kv_b_proj(kv_c_normed) in _compute_prefill_context", held to the end of the call,
    next to the query and the output buffer; no per-head K/V is built (no attention runs)."""
    per, fixed, dense_l, moe_l = 0.0, 0, False, False
    t = model.hf_config.get("text_config") or model.hf_config
    for layer in model.layers[start:stop]:
        if layer.kind is not LayerKind.MLA:
            continue
        heads = cdiv(model.num_attention_heads, tp)
        nope = int(t.get("qk_nope_head_dim", 128))
        qk = nope + int(t.get("qk_rope_head_dim", 64))
        v = int(t.get("v_head_dim", 128))
        per = max(per, 2 * model.hidden_size * b + heads * (qk + v) * b)
        fixed = max(fixed, int(rows * heads * (nope + v) * b))
        if layer.is_moe and model.moe is not None:
            moe_l = True
        else:
            dense_l = True
    if not fixed:
        return None
    return MlaProfile(per_token=per, fixed_bytes=fixed, in_dense_layers=dense_l, in_moe_layers=moe_l)


@by_identity(maxsize=1024)
def components(model: ModelDescription, tp: int, moe_tp: int, b: float, start: int, stop: int,
               persistent_moe_ws: bool = True, allreduce_copies: bool = True,
               manager_moe_ws: bool = False, mla_dummy: bool = False) -> Components:
    h = model.hidden_size
    dense = 0.0
    ws = 0.0
    rest = 0.0
    for layer in model.layers[start:stop]:
        # hidden, residual, norm output, down/o_proj output; with TP on CUDA the custom all-reduce keeps an
        # input and an output copy of [T, H] as well (measured: Qwen3-8B's peak is the same at TP=2 as at
        # TP=1); Ascend's HCCL all-reduce does not (seed 001's profile peak is the encoder's)
        stream = (8 if tp > 1 and allreduce_copies else 4) * h * b
        if layer.attention is not None and layer.kind is not LayerKind.MLA:
            q = cdiv(model.num_attention_heads, tp) * layer.attention.head_size  # per layer (Gemma 4: 256 / 512)
            attn = stream + 2 * q * b + 2 * max(1, layer.attention.num_kv_heads // tp) * layer.attention.head_size * b
        elif layer.kind is LayerKind.MLA and mla_dummy:
            attn = 0  # the profile run's MLA tensors: mla_profile, added by profile_peak
        elif layer.kind is LayerKind.MLA:
            # MLA prefill materialises per-head K (nope + rope) and V from the latent
            heads = cdiv(model.num_attention_heads, tp)
            t = model.hf_config.get("text_config") or model.hf_config
            qk = int(t.get("qk_nope_head_dim", 128)) + int(t.get("qk_rope_head_dim", 64))
            v = int(t.get("v_head_dim", 128))
            attn = stream + heads * (2 * qk + 2 * v) * b
        elif layer.kind is LayerKind.MAMBA and layer.mamba is not None:
            attn = stream + _mixer_per_token(layer.mamba, tp) * b
        else:
            attn = stream
        if layer.is_moe and model.moe is not None:
            m = model.moe
            inter = cdiv(m.intermediate_size, moe_tp)
            moe_ws = (fused_moe_workspace_per_token(top_k=m.top_k, intermediate=inter, hidden=h, b=b)
                      if manager_moe_ws else m.top_k * (3 * inter + h) * b)
            shared = 3 * cdiv(m.shared_intermediate_size, tp) * b if m.shared_intermediate_size else 0
            if persistent_moe_ws:
                ws = max(ws, moe_ws)
                # with the manager's workspace, the layer's output [T, H] is a new tensor beside it (v0.26.0-v0.34.0
                # fused_moe/modular_kernel.py FusedMoEKernel.apply: ``hidden_states.new_empty`` / ``empty_like``)
                out = h * b if manager_moe_ws else 0
                rest = max(rest, stream + shared + out, attn)
            else:  # kernels that allocate per call (gpt-oss's OAI Triton MoE): transient, like a dense MLP
                dense = max(dense, stream + shared + moe_ws, attn)
        else:
            mlp = stream + 3 * cdiv(model.intermediate_size, tp) * b
            dense = max(dense, mlp, attn)
    return Components(dense_per_token=dense, moe_ws_per_token=ws, moe_rest_per_token=rest, vocab=model.vocab_size)


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
    compiled: bool = False,
    embed_bytes: int = 0,
    persistent_moe_ws: bool = True,
    platform: str = "cuda",
    coefficients: Coefficients | None = None,
    manager_moe_ws: bool = False,
    mla_context_rows: int = 0,
    sampler_fp32_pass: bool = False,
) -> Peak:
    """The torch peak increase of ``profile_run`` on one rank (the encoder profile is added by the caller).

    ``compiled``: torch.compile + CUDA graphs on the V2 runner for a text-only model, whose compiled
    forward includes the embedding lookup: measured on H100 (data/device_v026: Qwen3-8B at 2k/8k
    tokens, Llama-3.1-8B at 8k) the peak then holds a copy the size of the embedding matrix plus two
    ``[T, H]`` buffers (``embed_bytes`` is this rank's embedding). Multimodal models embed outside the
    compiled region and show no such floor (Qwen3-VL-8B compiled = eager).
    """
    b = dtype_bytes(model_dtype)
    k = coefficients or COEFFICIENTS.get(runner, COEFFICIENTS["v1"])
    mla = mla_profile(model, tp, b, layers.start, layers.stop, mla_context_rows) if mla_context_rows else None
    c = components(model, tp, moe_tp, b, layers.start, layers.stop, persistent_moe_ws, platform != "ascend",
                   manager_moe_ws, mla is not None)
    tokens = max_num_batched_tokens
    reqs = min(max_num_seqs, tokens)
    ws = int(tokens * c.moe_ws_per_token * k.forward_multiplier)
    dense = int(tokens * c.dense_per_token * k.forward_multiplier)
    rest = int(tokens * c.moe_rest_per_token * k.forward_multiplier)
    dense_label, rest_label = "widest dense layer's intermediates", "residual stream"
    if mla is not None:
        mla_bytes = int(tokens * mla.per_token) + mla.fixed_bytes
        mla_label = f"MLA profile: {format_gib(mla.fixed_bytes)} GiB dummy context + query, output, stream"
        if mla.in_dense_layers and mla_bytes > dense:
            dense, dense_label = mla_bytes, mla_label
        if mla.in_moe_layers and mla_bytes > rest:
            rest, rest_label = mla_bytes, mla_label
    if not last_stage:
        sampler = 0
    elif sampler_fp32_pass:
        # vLLM v0.33.0/v0.34.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner._dummy_sampler_run: a second pass
        # with SamplingParams.for_sampler_warmup(), whose apply_sampling_params copies the model-dtype logits to a
        # new float32 tensor (sample/sampler.py); profile_run still holds the [T, H] hidden states
        sampler = int(reqs * c.vocab * (b + 4) + tokens * model.hidden_size * b)
    else:
        sampler = int(reqs * c.vocab * k.sampler_bytes_per_element)
    # dense layers run before the first MoE layer creates the workspace (DeepSeek's first_k_dense)
    after_ws = ws + max(rest, sampler)
    candidates = [("forward", dense, [(dense_label, dense)])]
    if ws:
        candidates.append(("forward" if rest >= sampler else "sampler", after_ws,
                           [(MOE_WORKSPACE_PART, ws),
                            (rest_label if rest >= sampler else "sampler buffers", max(rest, sampler))]))
    candidates.append(("sampler", sampler, [(f"sampler: {reqs} requests x {c.vocab} vocab", sampler)]))
    if compiled and embed_bytes:
        floor = embed_bytes + int(2 * tokens * model.hidden_size * b)
        candidates.append(("forward", floor, [("compiled forward: embedding-sized copy + 2 [T, H] buffers", floor)]))
    phase, total, parts = max(candidates, key=lambda x: x[1])
    parts = list(parts) + [("constant (runner buffers)", k.constant_bytes)]
    return Peak(total_bytes=total + k.constant_bytes, phase=phase, parts=tuple(parts),
                basis=f"modelled from the live tensors of profile_run ({runner} runner); {k.source}")
