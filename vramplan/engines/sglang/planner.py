"""The SGLang plan: every memory term of an SGLang startup, its reason, and the verdict.

SGLang's order (sglang 0.5.17 / 0.5.23 ``srt/model_executor/model_runner.py:ModelRunner.initialize``):

1. ``init_torch_distributed``: the CUDA context (and NCCL under TP/PP), then the baseline
   ``pre_model_load_memory`` = free memory (min over ranks).
2. ``load_model``: the weights ("Load weight begin/end").
3. ``KVCacheConfigurator._profile_available_bytes``: rest = free after loading - pre x (1 - fraction).
4. the pool configurator: tokens (page-aligned, ``--max-total-tokens`` cap, min over PP), the request pool.
5. attention backends and CUDA graphs (decode, prefill) captured in what the fraction left;
   then serving, where each chunked-prefill step's activations need the same room. SGLang does not budget
   (5); vramplan predicts it with vLLM-fitted models and gives the verdict.

No I/O, no printing: renderers format an :class:`SGLangPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...errors import InvalidConfig
from ...estimate.activation import profile_peak
from ...estimate.overheads import cudagraph, non_torch
from ...inputs.devices import Device
from ...model.description import ModelDescription
from ...model.quant import parse_quant
from ...plan import Term
from ...rules.weights import WeightShares, weights_per_rank
from ...units import GiB
from . import messages as M
from .defaults import Resolved, resolve
from .dsa import dsa_kernel_failure
from .flags import SGLangArgs
from ...rules.allocator import K_MIN_LARGE_ALLOC, allocation_size, round_size
from .measured import (AFTER_BASELINE_TP1_BYTES, NT_INCREASE_BASIS, NT_INCREASE_TP1_BYTES, PRELOAD_BASIS,
                       mm_ipc_pool_bytes, preload_use)
from .pool import (CellSize, cell_size, mamba_state, max_running_requests, pool_tokens, rest_bytes, sglang_pp_split,
                   swa_cap_pool_tokens, swa_request_cap, mamba_cache_size, mamba_extra_buffer, mamba_ratio)
from .rope import RopeCache, SGLangRope, reserve_rows, sglang_rope
from .rules import SGLangRules

__all__ = ["StagePlan", "SGLangPlan", "build_sglang_plan", "STANDIN"]

from .messages import STANDIN  # noqa: E402  (re-exported: the label of the vLLM-fitted stand-in terms)
_DT = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class StagePlan:
    """TP rank 0 of one pipeline stage (every TP rank of a stage is alike)."""

    pp_rank: int
    layers: tuple[int, int]
    weights: WeightShares
    free_before_load_bytes: int
    """Free at "Load weight begin" (what the log prints)."""
    free_after_load_bytes: int
    rest_gb: float
    """``rest_memory`` of ``_profile_available_bytes`` (GB float; <= 0 is the weights-leave-no-room error)."""
    budget_bytes: int
    cell: CellSize
    tokens: int
    """This stage's tokens before the min over PP ranks."""
    mamba_state_bytes: int = 0
    mamba_cache_size: int = 0
    rope_reserve_bytes: int = 0
    """What ``reserve_rope_cache_for_long_sequences`` adds after "Load weight end", before the KV sizing."""
    baseline_bytes: int | None = None
    """``pre_model_load_memory``: free at the end of ``init_torch_distributed``, the base the fraction multiplies
    (None: the same as ``free_before_load_bytes``)."""

    @property
    def fraction_base_bytes(self) -> int:
        return self.free_before_load_bytes if self.baseline_bytes is None else self.baseline_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangPlan:
    """A predicted SGLang startup."""

    engine_version: str
    rules: SGLangRules
    model: ModelDescription
    device: Device
    args: SGLangArgs
    resolved: Resolved
    used_by_others_bytes: int
    stages: tuple[StagePlan, ...]
    terms: tuple[Term, ...]
    """The logged rank's memory, in startup order."""
    headroom_terms: tuple[Term, ...]
    """What SGLang does not budget: it must fit in what the fraction leaves."""
    verdict: str
    error_kind: str | None
    error_message: str | None
    error_phase: str | None
    max_total_num_tokens: int | None
    swa_tokens: int | None
    max_running_requests: int | None
    max_concurrency: float | None
    """Full-length requests the pool holds at once: tokens / context length."""
    kv_pool_bytes: int
    headroom_bytes: int
    warnings: tuple[str, ...] = ()
    log_lines: tuple[str, ...] = ()
    ignored_flags: tuple[str, ...] = ()
    fix: str | None = None
    notes: tuple[str, ...] = ()
    engine: str = "sglang"
    rope_caches: tuple[RopeCache, ...] = ()
    """The rotary caches as SGLang allocates them at model init (engines/sglang/rope.py), inside ``weights``."""

    def __repr__(self) -> str:
        state = f"fails ({self.error_kind})" if self.error_kind else f"starts, {self.max_total_num_tokens or 0:,} KV tokens"
        return (f"SGLangPlan({self.model.name!r} on {self.args.tp_size}x {self.device.name}, SGLang "
                f"{self.engine_version}: {state})")

    @property
    def kv_cache_tokens(self) -> int | None:
        """The pool's tokens under the name vLLM plans use (``max_total_num_tokens``)."""
        return self.max_total_num_tokens

    def to_dict(self) -> dict:
        """The ``vramplan plan --engine sglang --json`` object (``engines/sglang/render.py``)."""
        from .render import sglang_plan_to_dict

        return sglang_plan_to_dict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)

    @property
    def starts(self) -> bool:
        return self.verdict == "starts"

    @property
    def startup_verdict(self) -> str:
        """What a startup shows: a plan that fails only while serving (``serving_prefill`` / ``serving_decode``: the
        first full chunked-prefill step, or the sampling of every running request) still starts and answers a first
        short request, as SGLang did at --mem-fraction-static 0.97 with 1.73 GB left (data/truth_sglang)."""
        if self.verdict == "fails" and (self.error_phase or "").startswith("serving_"):
            return "starts"
        return self.verdict

    @property
    def logged_stage(self) -> StagePlan:
        return self.stages[-1]

    @property
    def context_length(self) -> int:
        return self.resolved.context_length

    def term(self, key: str) -> Term | None:
        for t in self.terms + self.headroom_terms:
            if t.key == key:
                return t
        return None

    def bytes_of(self, key: str) -> int:
        t = self.term(key)
        return t.bytes if t else 0


def _gb(b: float) -> float:
    return b / GiB


def _quant(model: ModelDescription, a: SGLangArgs):
    """The checkpoint's quantization (``quantization_config``), or ``--quantization``: vramplan's parser, as the
    vLLM rules use it (SGLang reads the same config keys: srt/configs/model_config.py:_parse_quant_hf_config)."""
    text = model.hf_config.get("text_config") if isinstance(model.hf_config.get("text_config"), dict) else {}
    qcfg = model.hf_config.get("quantization_config") or text.get("quantization_config")
    return parse_quant(qcfg, a.quantization) or model.quant


def _validate(model: ModelDescription, a: SGLangArgs) -> None:
    """The checks SGLang makes before loading (its words)."""
    tp = a.tp_size
    if model.num_attention_heads % tp:
        # sglang 0.5.23 srt/distributed/utils.py:ensure_divisibility, asserted while the attention layers are built
        raise InvalidConfig(f"AssertionError: {model.num_attention_heads} is not divisible by {tp} (the attention heads "
                            "over --tp-size, at model load)", hint="choose a --tp-size that divides the head count")
    if a.pp_size > model.num_hidden_layers:
        raise InvalidConfig(f"pp_size ({a.pp_size}) is larger than the number of layers ({model.num_hidden_layers})",
                            hint="use fewer pipeline stages")
    if a.ep_size > 1 and a.ep_size != tp:
        raise InvalidConfig(f"--ep-size {a.ep_size} other than --tp-size is not modelled",
                            hint=f"plan with --ep-size {tp} (experts split over the TP ranks) or 1")


def build_sglang_plan(model: ModelDescription, args: SGLangArgs, device: Device, rules: SGLangRules, *,
                      used_by_others_bytes: int = 0, nvidia_smi_mib: float | None = None,
                      ignored_flags: tuple[str, ...] = (), unmodelled: tuple[str, ...] = (),
                      free_before_load_bytes: int | None = None) -> SGLangPlan:
    """Predict one SGLang startup (rank 0 of each pipeline stage).

    ``free_before_load_bytes``: the baseline as a log states it ("Load weight begin. avail mem="), instead of
    the device total less the (vLLM-measured) context estimate and other processes."""
    a = args
    _validate(model, a)
    r = resolve(model, a, device, rules, nvidia_smi_mib=nvidia_smi_mib)
    warnings: list[str] = list(r.notes)
    if unmodelled:
        warnings.append("not modelled yet, so not counted: " + " ".join(unmodelled))
    if model.is_moe and a.ep_size == 1 and a.enable_dp_attention:
        warnings.append("DP attention with MoE changes the expert layout: not modelled")
    quant = _quant(model, a)
    tp, pp = a.tp_size, a.pp_size
    total = device.total_bytes
    over = non_torch(device.platform, tp=tp, pp=pp, nvlink=device.nvlink)
    over1 = non_torch(device.platform, tp=1, pp=1, nvlink=device.nvlink)
    pre_use = preload_use(device.platform, standin_bytes=over.before_snapshot_bytes,
                          standin_tp1_bytes=over1.before_snapshot_bytes, standin_basis=over.basis, tp=tp, pp=pp)
    context_bytes = pre_use.bytes
    between = AFTER_BASELINE_TP1_BYTES if device.platform == "cuda" else 0
    mm_pool = _mm_ipc_pool(model, a, device, rules, context_bytes=over1.before_snapshot_bytes)
    pre = total - used_by_others_bytes - context_bytes - mm_pool  # the baseline (pre_model_load_memory)
    if free_before_load_bytes is not None:
        pre = free_before_load_bytes + between
        context_bytes = total - used_by_others_bytes - pre - mm_pool
    load_begin = pre - between
    splits = sglang_pp_split(model.num_hidden_layers, pp)
    partition = ",".join(str(e - s) for s, e in splits)
    mm_gb = (100 / 1024) if (rules.mm_kv_reservation and model.is_multimodal) else 0.0  # SGLANG_VLM_CACHE_SIZE_MB=100
    # SGLang's own rotary caches (float32 on CUDA, M-RoPE x1 rows) in place of the description's (engines/sglang/rope.py)
    # SGLANG_ROPE_CACHE_FP32 is an EnvBool (srt/environ.py): true / 1 / yes / y
    fp32_env = (a.env_value("SGLANG_ROPE_CACHE_FP32") or "").lower() in ("true", "1", "yes", "y")
    rope = sglang_rope(model, device.platform in rules.rope_cache_fp32_platforms or fp32_env)
    reserve = rope.reserve_growth_bytes(r.context_length)

    stages: list[StagePlan] = []
    failure: tuple[str, str, str] | None = None
    swa_cap: int | None = None
    for rank, (start, stop) in enumerate(splits):
        # SGLang's "mem usage" is free memory before minus after (get_available_gpu_memory): the caching allocator's
        # reserved segments, replayed in creation order on CUDA with no split limit (rules/allocator.py)
        w = weights_per_rank(rope.model, dtype=r.model_dtype, quant=quant, tp=tp, pp=pp, pp_rank=rank, dp=1,
                             expert_parallel=a.ep_size > 1, pp_partition=partition if pp > 1 else None,
                             allocator_blocks=_allocator_replayed(a, device, quant), allocator_reserved=True,
                             unquantized_copies=True)  # MLA's w_kc / w_vc (rules/weights.py)
        after = load_begin - w.total_bytes
        rest = rest_bytes(free_after_load_bytes=after - reserve, free_before_load_bytes=pre, fraction=r.mem_fraction_static,
                          mm_reservation_gb=mm_gb)
        cell = cell_size(model, tp=tp, kv_bytes=r.kv_bytes, layers=range(start, stop),
                         swa_ratio=a.swa_full_tokens_ratio, hybrid_swa=not a.disable_hybrid_swa_memory, dsa=r.dsa)
        state_bytes, cache_size = 0, 0
        if cell.kind == "hybrid_mamba" and rest > 0:
            # configs/mamba_utils.py:mamba2_state_dtype: conv bf16 (SGLANG_MAMBA_CONV_DTYPE), SSM float32 unless the
            # config's mamba_ssm_dtype or SGLANG_MAMBA_SSM_DTYPE says otherwise
            text = model.hf_config.get("text_config") if isinstance(model.hf_config.get("text_config"), dict) else {}
            ssm_name = (a.env_value("SGLANG_MAMBA_SSM_DTYPE") or text.get("mamba_ssm_dtype")
                        or model.hf_config.get("mamba_ssm_dtype") or "float32")
            conv_name = a.env_value("SGLANG_MAMBA_CONV_DTYPE") or "bfloat16"
            per_req, _n = mamba_state(model, tp=tp, layers=range(start, stop), conv_bytes=_DT.get(conv_name, 2),
                                      ssm_bytes=_DT.get(ssm_name, 4))
            charge = per_req
            if pp > 1:
                # _handle_max_mamba_cache charges every rank the largest stage's share,
                # int(mamba_cache_per_req x max stage mamba layers / all mamba layers), so every rank sizes the same
                # pool; the rank allocates its own layers' state (HybridReqToTokenPool mamba_layer_ids)
                per_all, n_all = mamba_state(model, tp=tp, layers=range(0, model.num_hidden_layers),
                                             conv_bytes=_DT.get(conv_name, 2), ssm_bytes=_DT.get(ssm_name, 4))
                n_max = max(mamba_state(model, tp=tp, layers=range(s0, s1), conv_bytes=2, ssm_bytes=4)[1]
                            for s0, s1 in splits)
                charge = int(per_all * (n_max / max(n_all, 1)))
            if charge:
                # kv_cache_configurator.py:_handle_max_mamba_cache (no speculative decoding)
                cache_size, _path = mamba_cache_size(
                    rest_gb=rest, per_req=charge, mamba_full_memory_ratio=a.mamba_full_memory_ratio,
                    max_mamba_cache_size=a.max_mamba_cache_size, disable_radix_cache=a.disable_radix_cache,
                    max_running_requests=a.max_running_requests, attn_dp=a.dp_size if a.enable_dp_attention else 1,
                    at_least_one_request=rules.mamba_slots_at_least_one_request)
                if cache_size <= 0 and failure is None:
                    failure = ("no_kv_cache_memory", M.mamba_state_too_small(cache_size, rest, charge), "kv_sizing")
                state_bytes = (cache_size + 1) * per_req
                rest = rest - (cache_size + 1) * charge / GiB
        if rest <= 0 and failure is None:
            failure = ("no_kv_cache_memory",
                       M.weights_leave_no_room(r.mem_fraction_static, (after - reserve) / GiB, pre / GiB), "kv_sizing")
        budget_bytes = int(rest * GiB) if rest > 0 else 0
        if swa_cap is None:
            swa_cap = _swa_cap(cell, a, r, rules)
        if swa_cap is not None:
            tokens, _swa = swa_cap_pool_tokens(budget_bytes, cell, cap=swa_cap, page_size=r.page_size)
            if tokens <= 0 and rest > 0 and failure is None:
                failure = ("no_kv_cache_memory", M.swa_cap_no_room(_swa, _swa * cell.swa_per_token * cell.num_swa_layers,
                                                                   budget_bytes), "kv_sizing")
            tokens = max(tokens, 0)
        else:
            tokens, _swa = pool_tokens(budget_bytes, cell, page_size=r.page_size, max_total_tokens=None)
        stages.append(StagePlan(pp_rank=rank, layers=(start, stop), weights=w, free_before_load_bytes=load_begin,
                                baseline_bytes=pre,
                                free_after_load_bytes=after, rest_gb=rest, budget_bytes=budget_bytes, cell=cell,
                                tokens=tokens, mamba_state_bytes=state_bytes, mamba_cache_size=cache_size,
                                rope_reserve_bytes=reserve))

    # _apply_token_constraints: the user cap, then the min over PP ranks
    profiled = min(s.tokens for s in stages)
    tokens = profiled
    if a.max_total_tokens is not None:
        if a.max_total_tokens > profiled:
            warnings.append(M.max_total_tokens_over_profiled(a.max_total_tokens, stages[-1].tokens))
        tokens = min(tokens, a.max_total_tokens)
    last = stages[-1]
    page = r.page_size
    swa_tokens = 0
    tokens = tokens // page * page
    if swa_cap is not None:
        # the request-capped SWA pool: ceil_align(cap) tokens, min'd with a lowered --max-total-tokens
        # (calculate_pool_sizes_from_max_tokens); no admission-floor check on this path
        swa_tokens = -(-swa_cap // page) * page
        if tokens != profiled:
            swa_tokens = min(swa_tokens, tokens)
    elif last.cell.kind == "hybrid_swa":
        swa_tokens = tokens if last.cell.num_layers == 0 else int(tokens * last.cell.swa_ratio) // page * page
        win = last.cell.sliding_window
        if failure is None and tokens > 0 and win is not None and win + page >= swa_tokens:
            failure = ("no_kv_cache_memory",
                       f"SWA pool ({swa_tokens} tokens) cannot hold even one request: the prefill admission floor "
                       f"is sliding_window_size ({win}) + page_size ({page}). Increase --swa-full-tokens-ratio or "
                       "the total KV budget.", "kv_sizing")
    if failure is None and tokens <= 0:
        failure = ("no_kv_cache_memory", M.not_enough_memory(r.mem_fraction_static), "kv_sizing")

    mrr = max_running_requests(tokens, r.context_length, a.max_running_requests,
                               a.dp_size if a.enable_dp_attention else 1) if tokens > 0 else None
    capped_by_mamba = False
    if mrr is not None and last.cell.kind == "hybrid_mamba" and last.mamba_cache_size > 0:
        ratio = _mamba_slots_per_request(model, a, rules)
        cap = last.mamba_cache_size // ratio
        if cap < mrr:
            capped_by_mamba = True
            warnings.append(f"max_running_requests is capped to {cap} by the mamba state cache "
                            f"(max_mamba_cache_size={last.mamba_cache_size}, {ratio} state slots per request). "
                            "To raise it: increase --mamba-full-memory-ratio or --max-mamba-cache-size, or halve the "
                            "state size with --mamba-ssm-dtype bfloat16.")
            mrr = cap
        if cap < 1 and failure is None:  # not one request's state slots fit: nothing can run
            failure = ("no_kv_cache_memory", M.not_enough_memory(r.mem_fraction_static)
                       + f" (the mamba state cache holds {last.mamba_cache_size} slot(s), fewer than the {ratio} one "
                       "request takes)", "kv_sizing")
    if a.max_running_requests is not None and mrr is not None and mrr < a.max_running_requests and not capped_by_mamba:
        warnings.append(f"max_running_requests was reduced from the requested {a.max_running_requests} to {mrr} "
                        "(per dp worker) due to the available KV cache capacity.")
    if tokens > 0 and tokens < r.context_length and failure is None:
        if rules.warns_context_over_pool:
            warnings.append(M.context_over_pool(tokens, r.context_length))
        else:
            warnings.append(f"the pool holds {tokens} tokens, fewer than the context length {r.context_length}: "
                            "one full-length request cannot fit (this release logs no warning)")

    # the pool as allocated: (size + page_size) cells per layer (memory_pool.py:MHATokenToKVPool._create_buffers)
    cell = last.cell
    if tokens > 0:
        if cell.kind == "hybrid_swa":
            pool_bytes = ((tokens + page) * cell.full_per_token * cell.num_layers
                          + (swa_tokens + page) * cell.swa_per_token * cell.num_swa_layers)
        else:
            pool_bytes = (tokens + page) * int(cell.bytes_per_token)
        req_bytes = ((mrr or 0) + 1) * (r.context_length + 4) * 4  # ReqToTokenPool int32 [size+1, ctx+4]
    else:
        pool_bytes, req_bytes = 0, 0
    w = last.weights
    weights_term = Term(key="weights", label="weights (this rank)", bytes=w.total_bytes, kind="exact",
                        rule="vramplan rules/weights.py:weights_per_rank with SGLang's sharding (TP as vLLM's "
                             "linear layers, vocab padded to 64: sglang 0.5.23 srt/layers/vocab_parallel_embedding.py; "
                             "PP split: srt/distributed/utils.py:get_pp_indices); experts over TP (ep_size 1); "
                             + _rope_rule(rope),
                        parts=w.parts)
    ctx_term = Term(key="non_torch", label="CUDA context (+ NCCL under TP/PP) before the baseline",
                    bytes=context_bytes, kind="measured",
                    rule=pre_use.basis if pre_use.measured_on_sglang else f"{STANDIN}: {pre_use.basis}")
    kv_term = Term(key="kv_cache", label=f"KV pool: {tokens} tokens x {int(cell.bytes_per_token) if cell.kind != 'hybrid_swa' else round(cell.bytes_per_token)} B"
                   + (f" (+ SWA {swa_tokens})" if swa_tokens else ""),
                   bytes=pool_bytes, kind="exact",
                   rule=cell.rule + "; tokens = int(rest x 2^30) // cell, page-aligned "
                        "(kv_cache_configurator.py:_profile_available_bytes, config_from_budget)",
                   parts=(("cell bytes per token", int(cell.bytes_per_token)), ("layers", cell.num_layers)))
    req_term = Term(key="req_to_token", label=f"ReqToTokenPool: ({mrr or 0} + 1) x ({r.context_length} + 4) x int32",
                    bytes=req_bytes, kind="exact",
                    rule="sglang 0.5.23 srt/mem_cache/memory_pool.py:ReqToTokenPool (allocated after the sizing)")
    terms = [ctx_term]
    if mm_pool:
        terms.append(Term(key="mm_feature_pool", label="multimodal CUDA-IPC feature pool (tokenizer side, + its CUDA "
                          "context) before the baseline", bytes=mm_pool, kind="measured",
                          rule=("sglang 0.5.17 multimodal/processors/base_processor.py: MmItemMemoryPool of "
                                "SGLANG_MM_FEATURE_CACHE_MB (1024) MiB split over --tokenizer-worker-num, allocated "
                                "when --mm-feature-transport resolves to cuda_ipc (0.5.17's auto on one CUDA node; "
                                "0.5.23 only when given); the context is the stand-in's per-process figure; measured "
                                "once: Qwen2.5-VL-3B 76.99 GB free before loading vs 78.50 (data/truth_sglang)")))
    if between:
        terms.append(Term(key="init_after_baseline", label="SGLang's init between the baseline and loading",
                          bytes=between, kind="measured", rule=PRELOAD_BASIS))
    terms.append(weights_term)
    if last.rope_reserve_bytes:
        terms.append(Term(key="rope_cache_reserve", label=f"rotary caches grown to {reserve_rows(r.context_length)} "
                          "positions after loading", bytes=last.rope_reserve_bytes, kind="exact",
                          rule="sglang 0.5.17 / 0.5.23 srt/utils/common.py:reserve_rope_cache_for_long_sequences: "
                               "align_128(context_length + 256) rows (RotaryEmbedding._ensure_cos_sin_cache_length), "
                               "after the weights figure, before the KV sizing"))
    if last.mamba_state_bytes:
        terms.append(Term(key="mamba_state", label=f"recurrent state: {last.mamba_cache_size} + 1 slots",
                          bytes=last.mamba_state_bytes, kind="exact",
                          rule="sglang 0.5.17 / 0.5.23 kv_cache_configurator.py:_handle_max_mamba_cache: "
                               "(max_mamba_cache_size + 1) x mamba_cache_per_req; size = --max-mamba-cache-size // dp, "
                               "else under --disable-radix-cache --max-running-requests // dp (0.5.23 at least 1), "
                               "else (rest x r / (1 + r) - per_req) // per_req, r = --mamba-full-memory-ratio (0.9)"))
    terms += [kv_term, req_term]
    kv_round = _kv_buffer_rounding(cell, tokens, page) if pool_bytes and _native_allocator(a, device) else 0
    if kv_round:
        terms.append(Term(key="kv_allocator_rounding", label="KV buffers rounded to the allocator's 2 MiB segments",
                          bytes=kv_round, kind="exact",
                          rule="sglang 0.5.17 / 0.5.23 mem_cache/memory_pool.py:MHATokenToKVPool._create_buffers "
                               "(one torch.zeros K and one V buffer per layer; MLATokenToKVPool one per layer), each "
                               "of 10 MiB or more taking a segment rounded up to 2 MiB (rules/allocator.py); "
                               "SGLang's free-memory readings see the segments"))
    # what the fraction leaves: free after the pools
    after_pool = (last.free_after_load_bytes - last.rope_reserve_bytes - pool_bytes - req_bytes
                  - last.mamba_state_bytes - kv_round)
    headroom = after_pool

    # --- what SGLang does not budget (graphs: engines/sglang/graphs.py on 0.5.17 CUDA; else vLLM stand-ins) ---
    head_terms: list[Term] = []
    layers = range(*last.layers)
    nt_inc = over.increase_bytes
    nt_rule = f"{STANDIN}: {over.basis}"
    if device.platform == "cuda" and tp * pp == 1:
        nt_inc, nt_rule = NT_INCREASE_TP1_BYTES, NT_INCREASE_BASIS
    head_terms.append(Term(key="non_torch_increase", label="NCCL / cuBLAS workspaces after the baseline",
                           bytes=nt_inc, kind="measured", rule=nt_rule))
    graphs = 0
    prefill_graph = r.prefill_graph
    gate_note = ""
    if (prefill_graph and rules.prefill_graph_free_gate_gib is not None and a.cuda_graph_backend_prefill is None
            and (after_pool - nt_inc) / GiB < rules.prefill_graph_free_gate_gib):
        prefill_graph = False
        gate_note = (f"Disabling auto-selected prefill CUDA graph: only {(after_pool - nt_inc) / GiB:.2f} GiB is free "
                     f"after model/KV/eager-buffer allocation; at least {rules.prefill_graph_free_gate_gib:.2f} GiB "
                     "is required for capture.")
        warnings.append(gate_note)
    captures = (
        (r.decode_graph and r.decode_bs, "FULL", r.decode_bs, "cudagraph_decode",
         f"decode CUDA graphs: {len(r.decode_bs)} sizes up to {r.decode_max_bs}", "FULL-graph"),
        (prefill_graph and r.prefill_bs, "PIECEWISE", r.prefill_bs, "cudagraph_prefill",
         f"prefill (breakable) CUDA graphs: {len(r.prefill_bs)} sizes up to {r.prefill_max_bs} tokens",
         "piecewise-graph"),
    )
    read_graphs = rules.graph_memory == "0.5.17" and device.platform == "cuda"
    for on, mode, sizes, key, label, pool in captures:
        if not on:
            continue
        if read_graphs:  # engines/sglang/graphs.py: read from sglang 0.5.17, residual measured on its startups
            gc = _sglang_graph_cost(model, key, r, a, device, tp, layers, prefill_on=bool(prefill_graph and r.prefill_bs))
            head_terms.append(Term(key=key, label=label, bytes=gc.bytes, kind="measured", rule=gc.rule,
                                   parts=gc.parts))
            graphs += gc.bytes
            continue
        g = cudagraph(model, mode=mode, capture_sizes=sizes, runner="v1", estimates=False,
                      num_layers=len(layers), max_num_batched_tokens=r.chunked_prefill_size, tp=tp)
        head_terms.append(Term(key=key, label=label, bytes=g.actual_bytes, kind="measured",
                               rule=f"{STANDIN}: vLLM {pool} pool model ({g.basis})"))
        graphs += g.actual_bytes
    step_tokens = r.chunked_prefill_size if r.chunked_prefill_size > 0 else a.max_prefill_tokens
    moe_tp = 1 if a.ep_size > 1 else tp
    peak = profile_peak(model, runner="v1", max_num_batched_tokens=step_tokens, max_num_seqs=mrr or 1, tp=tp,
                        moe_tp=moe_tp, model_dtype=r.model_dtype, layers=layers, last_stage=True,
                        platform=device.platform)
    sampling = peak.phase == "sampler"  # the logits and sampling buffers of the running requests set the peak
    peak_label = (f"activation peak while serving: sampling {min(mrr or 1, step_tokens)} running requests"
                  if sampling else f"activation peak of one {step_tokens}-token prefill step")
    head_terms.append(Term(key="activation_peak", label=peak_label,
                           bytes=peak.total_bytes, kind="measured", rule=f"{STANDIN}: {peak.basis}",
                           parts=peak.parts))
    need = nt_inc + graphs + peak.total_bytes
    head_terms.append(Term(key="headroom", label="free after the KV pool (what the fraction leaves)", bytes=headroom,
                           kind="exact", rule="free before loading - weights - pools"))

    # DeepSeek Sparse Attention below SM90: SGLang starts, then its kernels refuse the device (engines/sglang/dsa.py)
    dsa_fail = dsa_kernel_failure(r.dsa.prefill_backend, cc=device.compute_capability, platform=device.platform,
                                  prefill_graph=bool(prefill_graph and r.prefill_bs),
                                  decode_graph=bool(r.decode_graph and r.decode_bs),
                                  version=rules.version_str) if r.dsa is not None else None
    verdict, kind, msg, phase = "starts", None, None, None
    if failure is not None:
        verdict, (kind, msg, phase) = "fails", failure
    elif dsa_fail is not None:
        verdict, kind, (phase, msg) = "fails", "unsupported_device", dsa_fail
    elif nt_inc + graphs > headroom:
        verdict, kind, phase = "fails", "out_of_memory", "graph_capture"
        msg = M.cuda_oom(graphs, total, headroom - nt_inc)
    elif need > headroom:
        verdict, kind, phase = "fails", "out_of_memory", ("serving_decode" if sampling else "serving_prefill")
        msg = M.cuda_oom(peak.total_bytes, total, headroom - nt_inc - graphs)

    avail_after_graphs = after_pool - nt_inc - graphs
    logs: list[str] = [M.load_begin(load_begin / GiB), M.load_end(model.architecture, last.free_after_load_bytes / GiB,
                                                            w.total_bytes / GiB)]
    if tokens > 0 and failure is None:
        torch_dtype = r.kv_cache_dtype.replace("fp8_e4m3", "float8_e4m3fn").replace("fp8_e5m2", "float8_e5m2")
        if cell.kind == "mla":
            logs.append(M.kv_allocated(torch_dtype, tokens, pool_bytes / GiB))
        else:
            half = pool_bytes / 2 / GiB
            logs.append(M.kv_allocated(torch_dtype, tokens, half, half))
        logs.append(M.pool_end(after_pool / GiB))
        if dsa_fail is not None:
            logs.append(dsa_fail[1])
        else:
            logs.append(M.scheduler_line(tokens, r.chunked_prefill_size, a.max_prefill_tokens, mrr or 0, r.context_length,
                                           avail_after_graphs / GiB))
    elif msg:
        logs.append(msg)
    fix = _fix(verdict, kind, phase, r, last, need, headroom, pre)
    return SGLangPlan(
        engine_version=rules.version_str, rules=rules, model=model, device=device, args=a, resolved=r,
        used_by_others_bytes=used_by_others_bytes, stages=tuple(stages), terms=tuple(terms),
        headroom_terms=tuple(head_terms), verdict=verdict, error_kind=kind, error_message=msg, error_phase=phase,
        max_total_num_tokens=tokens if tokens > 0 else None, swa_tokens=swa_tokens or None,
        max_running_requests=mrr, max_concurrency=(tokens / r.context_length) if tokens > 0 else None,
        kv_pool_bytes=pool_bytes, headroom_bytes=headroom, warnings=tuple(warnings), log_lines=tuple(logs),
        ignored_flags=ignored_flags, fix=fix, notes=tuple(n for n in (gate_note,) if n), rope_caches=rope.caches)


def _sglang_graph_cost(model, key, r, a, device, tp, layers, *, prefill_on):
    """The decode or prefill graph term read from sglang 0.5.17 (engines/sglang/graphs.py)."""
    from .graphs import decode_graph_cost, prefill_graph_cost

    decode_sizes = r.decode_bs if (r.decode_graph and r.decode_bs) else ()
    if key == "cudagraph_decode":
        return decode_graph_cost(model, sizes=r.decode_bs, context_length=r.context_length, tp=tp,
                                 num_layers=len(layers), attention_backend=r.attention_backend,
                                 owns_logits=not prefill_on, sm_count=device.sm_count)
    return prefill_graph_cost(model, sizes=r.prefill_bs, max_decode_bs=max(decode_sizes) if decode_sizes else None,
                              tp=tp, moe_tp=1 if a.ep_size > 1 else tp, model_dtype=r.model_dtype, layers=layers,
                              platform=device.platform)


def _kv_buffer_rounding(cell: CellSize, tokens: int, page: int) -> int:
    """What the per-layer KV buffers add to the device by the caching allocator's 2 MiB rounding: MHA/GQA one K and
    one V buffer per layer (``k_buffer`` / ``v_buffer``, each (size + page) x heads x head_dim), MLA one per layer;
    other pool kinds (hybrid SWA, Mamba, DSA indexers) are left at 0 (their buffers not replayed)."""
    if cell.kind not in ("mha", "mla") or cell.num_layers <= 0 or tokens <= 0:
        return 0
    per_layer = int(cell.bytes_per_token) // cell.num_layers
    count = cell.num_layers if cell.kind == "mla" else 2 * cell.num_layers
    each = (tokens + page) * (per_layer if cell.kind == "mla" else per_layer // 2)
    if round_size(each) < K_MIN_LARGE_ALLOC:
        return 0
    return count * (allocation_size(round_size(each)) - each)


def _native_allocator(a: SGLangArgs, device: Device) -> bool:
    """CUDA's native caching allocator, whose 2 MiB segments SGLang's free-memory readings see
    (``expandable_segments:True`` maps pages instead: no rounding)."""
    from ...rules.allocator import expandable_segments

    return device.platform == "cuda" and not expandable_segments(a.env)


def _allocator_replayed(a: SGLangArgs, device: Device, quant) -> bool:
    """Whether the weights carry the caching allocator's segment rounding (rules/allocator.py): the native allocator
    and unquantized tensors (a quantized layer's several tensors are priced as one, so their segments are not
    modelled). Checked on the 15 real SGLang 0.5.17 startups: Qwen2.5-VL-3B 7.055 -> 7.258 GiB (log 7.25),
    Qwen3-0.6B 1.130 -> 1.186 (log 1.18)."""
    return _native_allocator(a, device) and quant is None


def _mm_ipc_pool(model: ModelDescription, a: SGLangArgs, device: Device, rules: SGLangRules, *, context_bytes: int) -> int:
    """The multimodal feature pool on the GPU before the weights load, or 0 (engines/sglang/measured.py)."""
    if not model.is_multimodal or a.skip_tokenizer_init or device.platform != "cuda":
        return 0
    transport = a.mm_feature_transport
    if transport is None:
        legacy = (a.env_value("SGLANG_USE_CUDA_IPC_TRANSPORT") or "").lower()
        if legacy:
            transport = "cuda_ipc" if legacy in ("true", "1", "yes", "y") else "cpu"
        else:
            transport = "cuda_ipc" if rules.mm_ipc_auto else "cpu"
    if transport != "cuda_ipc":
        return 0
    try:
        mib = int(a.env_value("SGLANG_MM_FEATURE_CACHE_MB") or 1024)
    except ValueError:
        mib = 1024
    return mm_ipc_pool_bytes(pool_mib=max(mib, 0), workers=a.tokenizer_worker_num, context_bytes=context_bytes)


def _mamba_slots_per_request(model: ModelDescription, a: SGLangArgs, rules: SGLangRules) -> int:
    """``_calculate_mamba_ratio`` with the strategy resolved as SGLang resolves ``auto`` (engines/sglang/pool.py)."""
    extra, lazy = mamba_extra_buffer(arch=model.architecture, strategy=a.mamba_radix_cache_strategy,
                                     disable_radix_cache=a.disable_radix_cache,
                                     disable_overlap_schedule=a.disable_overlap_schedule, page_size=a.page_size,
                                     linear_attn_backend=a.linear_attn_backend,
                                     extra_buffer_archs=rules.mamba_extra_buffer_archs)
    skip = (a.env_value("SGLANG_OPT_MAMBA_SKIP_DECODE_LOCK") or "").lower() in ("true", "1", "yes", "y")
    return mamba_ratio(disable_radix_cache=a.disable_radix_cache, extra_buffer=extra, lazy=lazy,
                       overlap=not a.disable_overlap_schedule, skip_decode_lock=skip)


def _swa_cap(cell: CellSize, a: SGLangArgs, r: Resolved, rules: SGLangRules) -> int | None:
    """The SWA request cap when SGLang sizes the SWA pool from ``--max-running-requests`` instead of
    ``--swa-full-tokens-ratio``, else None. Applicable (0.5.17 ``SWAChunkCapPoolConfigurator.is_applicable``, 0.5.23
    ``SWARequestCapPoolConfigurator.is_applicable``) to a hybrid-SWA pool with full layers and a window, given
    ``--max-running-requests`` and ``--disable-radix-cache``, and a chunked prefill (0.5.23: size > 0)."""
    if cell.kind != "hybrid_swa" or cell.num_layers == 0 or cell.sliding_window is None:
        return None
    if a.max_running_requests is None or not a.disable_radix_cache:
        return None
    if rules.swa_cap_needs_positive_chunk and r.chunked_prefill_size <= 0:
        return None
    raw = a.env_value("SGLANG_SWA_EVICTION_INTERVAL") or "128"
    try:
        interval = int(raw)
    except ValueError:
        interval = 128
    return swa_request_cap(window=cell.sliding_window, page_size=r.page_size, max_running_requests=a.max_running_requests,
                           attn_dp=a.dp_size if a.enable_dp_attention else 1, chunked_prefill_size=r.chunked_prefill_size,
                           disable_overlap_schedule=a.disable_overlap_schedule, eviction_interval=interval,
                           at_least_one_request=rules.swa_cap_at_least_one_request)


def _fix(verdict: str, kind: str | None, phase: str | None, r: Resolved, last: StagePlan, need: int, headroom: int,
         pre: int) -> str | None:
    """The smallest change of the fraction that makes the plan start (a suggestion, from the same arithmetic)."""
    if verdict == "starts":
        return None
    f = r.mem_fraction_static
    if kind == "unsupported_device" and phase == "attention_backend_init":
        return "--dsa-prefill-backend flashmla_sparse (flashmla_sparse_q8 runs on SM90 only)"
    if kind == "unsupported_device":
        return ("a GPU of SM90 or newer (H100, H200, B200): SGLang has no DeepSeek Sparse Attention kernels below "
                "SM90, whatever the flags")
    if kind == "out_of_memory":
        # headroom grows by pre x delta when the fraction drops by delta
        short = need - headroom
        delta = short / pre
        new = int((f - delta) * 1000) / 1000
        return (f"--mem-fraction-static {new} (leaves {short / GiB:.2f} GiB more for the "
                + ("sampling of the running requests), or a smaller --max-running-requests"
                   if phase == "serving_decode" else
                   f"{'CUDA graphs' if phase == 'graph_capture' else 'prefill activations'}), or a smaller "
                   f"--chunked-prefill-size / --cuda-graph-max-bs-decode"))
    if kind == "no_kv_cache_memory":
        # rest = pre x f - weights must hold one full-length request: f >= (weights + context x cell) / pre
        cell = max(last.cell.bytes_per_token, 1.0)
        weights = pre - last.free_after_load_bytes + last.rope_reserve_bytes
        need_f = (weights + last.mamba_state_bytes + r.context_length * cell) / pre
        if need_f >= 0.95:
            return ("the weights leave no room for one full-length request on this device: more GPUs (--tp-size), "
                    "a quantized checkpoint, --kv-cache-dtype fp8_e4m3 or a shorter --context-length")
        new = int(need_f * 1000 + 1) / 1000
        return f"--mem-fraction-static {new} or more (holds one {r.context_length}-token request)"
    return None


def _rope_rule(rope: SGLangRope) -> str:
    """The weights rule's note on the rotary caches."""
    if not rope.caches:
        return "no rotary cache"
    kept = "float32" if rope.fp32 else "the model dtype"
    parts = ", ".join(f"{c.name} {c.rows} x {c.rotary_dim} x {c.element_bytes} B" for c in rope.caches)
    return (f"rotary caches as SGLang keeps them ({kept}; M-RoPE x1 rows; sglang srt/layers/rotary_embedding/"
            f"base.py:RotaryEmbedding.__init__, mrope.py:MRotaryEmbedding): {parts}; "
            f"{rope.delta_bytes:+d} B against the shared (vLLM) description")


def replace_args(plan: SGLangPlan, **kw) -> SGLangArgs:
    return replace(plan.args, **kw)
