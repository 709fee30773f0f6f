"""The plan: every memory term of a vLLM startup, with its reason, and the verdict.

``build_plan`` follows vLLM's startup order (research note §0):

1. ``Worker.init_device``: the init snapshot and ``request_memory`` — requested =
   ``ceil(total x util)``; the startup fails if free memory is below it.
2. ``load_model``: weights per rank.
3. ``determine_available_memory``: the profile run (activation peak, encoder profile),
   non-torch increase, the CUDA-graph estimate; KV memory = requested - non-KV - estimate.
4. ``get_kv_cache_configs``: blocks (min over ranks), the max-model-len check, capacity.
5. After the KV cache: CUDA-graph capture and the sampler warm-up in the headroom left.

Each step is a function citing the vLLM function it mirrors: ``_startup_check``, ``_load_model``,
``_profile_run``, ``_cudagraph_term``, ``_kv_budget``, ``_kv_sizing``, ``_post_kv_headroom``, ``_log_lines``.
Where the workers' budgets differ (non-torch memory, the KV budget, what the headroom counts), the step
asks the :class:`~.budget.Budget` chosen once from ``RuleSet.non_kv_formula`` (:func:`budget_for`):
vLLM's profile-and-subtract (:mod:`.budget`) or vllm-ascend <= 0.13's absolute peak (:mod:`.npu_budget`).

No I/O, no printing: renderers format a :class:`Plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...estimate.activation import Peak, coefficients_for, profile_peak
from ...estimate.encoder_profile import encoder_profile_term
from ...estimate.overheads import (CUDAGRAPH_WORST_RATIO, cudagraph, load_workspaces, non_torch, post_kv,
                                   sampler_penalty_state_bytes)
from ...inputs.devices import Device
from .flags import EngineArgs
from ...model.description import LayerKind, ModelDescription
from ...model.families import adapt_for_release
from .rules.engine import EngineConfig, attention_kinds, prefill_checkpoint_blocks, resolve_engine
from ...rules.kv import (
    KVLayout,
    build_layout,
    capacity,
    estimate_max_model_len,
    layer_spec_items,
    needed_bytes,
    num_blocks_for,
)
from .rules.versions import RuleSet
from ...model.vision import heads_whole_prefixes
from .budget import PROFILE_AND_SUBTRACT, Budget
from .failure import _Failure
from .npu_budget import ABSOLUTE_PEAK, npu_double_alloc
from ...rules.weights import WeightShares, pp_layer_split, weights_per_rank
from ...rules.allocator import expandable_segments
from .sizing import finish as finish_sizing
from ...plan import ERROR_KINDS, Plan, RankPlan, Term
from .rules.weights_note import weights_note as _weights_note
from .rules.weights_note import weights_source as _weights_source
from ...units import GiB, format_gib

__all__ = ["Term", "RankPlan", "Plan", "build_plan", "ERROR_KINDS"]

def _requested(total: int, util: float, rules: RuleSet, platform: str) -> int:
    """vLLM v0.26.0 vllm/v1/worker/utils.py:request_memory: ``ceil(total x util)``
    (vllm-ascend's NPUWorker: ``total x util`` without ceil)."""
    if platform == "ascend":
        return int(total * util)
    return math.ceil(total * util)


def _free_memory_message(free: int, total: int, util: float, requested: int, rules: RuleSet, platform: str) -> str:
    """The startup check's words (v0.26/v0.33 ``request_memory``; vllm-ascend keeps the older form)."""
    if platform == "ascend":
        return (f"Free memory on device ({format_gib(free)}/{format_gib(total)} GiB) on startup is less than "
                f"desired GPU memory utilization ({util}, {format_gib(requested)} GiB). Decrease GPU memory "
                f"utilization or reduce GPU memory used by other processes.")
    dev = "cuda:0" if platform == "cuda" else "cuda:0"
    return (f"Free memory on device {dev} ({format_gib(free)}/{format_gib(total)} GiB) on startup is less than "
            f"desired GPU memory utilization ({util}, {format_gib(requested)} GiB). Decrease GPU memory "
            f"utilization or reduce GPU memory used by other processes.")


_NO_KV = ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
          "the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name). "
          "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")


def _max_len_message(max_len: int, needed: int, available: int, estimate: int) -> str:
    """vLLM v0.26.0 vllm/v1/core/kv_cache_utils.py:_check_enough_kv_cache_memory."""
    est = (f"Based on the available memory, the estimated maximum model length is {estimate}. "
           if estimate > 0 else "")
    return (f"To serve at least one request with the model's max seq len ({max_len}), "
            f"({format_gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({format_gib(available)} GiB). {est}Try increasing `gpu_memory_utilization` (which also controls CPU "
            f"memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. "
            f"See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")



_BUDGETS = {"absolute_peak": ABSOLUTE_PEAK}


def budget_for(rules: RuleSet) -> Budget:
    """The worker's KV budget strategy, chosen once from the rule set's ``non_kv_formula``."""
    return _BUDGETS.get(rules.non_kv_formula, PROFILE_AND_SUBTRACT)


def build_plan(
    model: ModelDescription,
    args: EngineArgs,
    device: Device,
    rules: RuleSet,
    *,
    used_by_others_bytes: int = 0,
    ignored_flags: tuple[str, ...] = (),
) -> Plan:
    """Predict one vLLM startup."""
    from .validate import check_used_by_others

    check_used_by_others(used_by_others_bytes, device)
    if args.hf_overrides:
        from ...model.overrides import apply_hf_overrides

        # transformers 5 from vLLM 0.26 (its wheel requires transformers>=5.5.3; 0.19's requires <5)
        model = apply_hf_overrides(model, args.hf_overrides, transformers5=rules.transformers5)
    if rules.engine == "v0":
        from .planner_v0 import build_plan_v0

        return build_plan_v0(model, args, device, rules, used_by_others_bytes=used_by_others_bytes,
                             ignored_flags=ignored_flags)
    # a family rule that changed between releases (families/<name>.py: for_release); the plan keeps the model given
    base_model = model
    model = adapt_for_release(model, rules)
    cfg = resolve_engine(args, model, device, rules)
    budget = budget_for(rules)
    total = device.total_bytes
    platform = device.platform
    warnings: list[str] = ([rules.stand_in_note] if rules.stand_in_note else []) + list(cfg.notes) + list(model.notes)
    weights_source, ckpt_warning = _weights_source(model, cfg)
    if ckpt_warning is not None:
        warnings.append(ckpt_warning)
    cite = rules.cite

    over = non_torch(platform, tp=cfg.tp, pp=cfg.pp, nvlink=device.nvlink, comm=rules.comm, dp=cfg.dp,
                     is_moe=model.is_moe, device_name=device.name, compute_capability=device.compute_capability,
                     env=dict(args.env), disable_custom_all_reduce=args.disable_custom_all_reduce,
                     handles_before_snapshot=rules.cublas_handles_in_init_device)
    free_at_init = total - used_by_others_bytes - over.before_snapshot_bytes
    requested = _requested(total, cfg.gpu_memory_utilization, rules, platform)
    stages = pp_layer_split(model.num_hidden_layers, cfg.pp, cfg.pp_partition)
    from .validate import check_pipeline_stages

    check_pipeline_stages(stages, model.num_hidden_layers)
    from ...model.families import family as _registered_family

    fam = _registered_family(model.family)
    ckpt = 0
    if rules.prefill_checkpoint_blocks:
        ckpt = (fam.mamba_checkpoint_blocks(model, cfg, device) if fam is not None and fam.mamba_checkpoint_blocks
                else prefill_checkpoint_blocks(model, gdn_flashinfer=cfg.gdn_flashinfer_prefill))
    all_specs = layer_spec_items(model, tp=cfg.tp, block_size=cfg.block_size, kv_cache_dtype=cfg.kv_cache_dtype,
                            model_dtype=cfg.model_dtype, mamba_mode=cfg.mamba_cache_mode,
                            mamba_page_padded=cfg.mamba_page_padded, mamba_ssm_dtype=cfg.mamba_ssm_dtype,
                            disable_hybrid=cfg.disable_hybrid_kv_cache_manager,
                            **({"mamba_ckpt_blocks": ckpt} if ckpt else {}))
    graphs = cudagraph(model, mode=cfg.cudagraph_mode, capture_sizes=cfg.capture_sizes, runner=cfg.runner,
                       estimates=cfg.estimate_runs, num_layers=stages[-1][1] - stages[-1][0],
                       max_num_batched_tokens=cfg.max_num_batched_tokens, tp=cfg.tp,
                       v2_base_gib=rules.v2_graph_pool_base_gib)
    cg_applied = graphs.estimate_bytes if cfg.estimate_cudagraphs else 0

    error = _startup_check(free_at_init, requested, total, cfg, rules, platform, budget)
    enc_line = None
    ranks: list[RankPlan] = []
    for pp_rank, (start, end) in enumerate(stages):
        shares, w_term = _load_model(model, args, device, cfg, pp_rank, weights_source, cite, rules)
        a_term, line = _profile_run(model, args, cfg, rules, pp_rank, start, end, shares, warnings, cite)
        if fam is not None and fam.profile_workspace is not None:  # e.g. Kimi-K3.1's DSA indexer (kimi_k3.py)
            extra = tuple(fam.profile_workspace(model, cfg, device, pp_rank))
            if extra:
                from dataclasses import replace as _replace

                a_term = _replace(a_term, bytes=a_term.bytes + sum(b for _, b in extra), parts=a_term.parts + extra)
        if line is not None:
            enc_line = line
        nt_term = budget.non_torch_term(over, used_by_others_bytes, cite)
        if rules.non_kv_formula == "consumed" and cfg.runner == "v2" and platform == "cuda":
            nt_term = _with_penalty_state(nt_term, cfg, model, cite)
        ranks.append(_kv_budget(budget, cfg, rules, pp_rank, start, end, all_specs, shares,
                                (w_term, a_term, nt_term, _cudagraph_term(graphs, cg_applied, cfg, cite)),
                                requested, free_at_init, cg_applied, cite))

    logged = ranks[-1]
    error, num_blocks, tokens, conc, max_len, est_len = _kv_sizing(
        error, ranks, cfg, rules, device, free_at_init, used_by_others_bytes, over)
    if error is None and rules.npu_hybrid_double_alloc and num_blocks is not None:
        error = npu_double_alloc(logged, num_blocks, total, requested)
    headroom, error = _post_kv_headroom(error, budget, total, used_by_others_bytes, over, requested, graphs, cfg,
                                        model, logged, warnings, expandable=expandable_segments(args.env),
                                        penalty_in_budget=rules.non_kv_formula == "consumed")
    if error is None:
        after_capture = budget.after_capture_warning(total, requested, logged, graphs)
        if after_capture is not None:
            warnings.append(after_capture)
    logs = _log_lines(rules, cfg, ranks, num_blocks, tokens, conc, max_len, graphs, error, free_at_init, requested,
                      total, enc_line)
    return finish_sizing(Plan(
        vllm_version=".".join(map(str, rules.requested)), rules=rules, model=base_model, device=device,
        device_count=cfg.tp * cfg.pp * cfg.dp, args=args, engine=cfg, used_by_others_bytes=used_by_others_bytes,
        ranks=tuple(ranks), verdict="fails" if error else "starts", error_kind=error.kind if error else None,
        error_message=error.message if error else None, error_phase=error.phase if error else None,
        num_gpu_blocks=num_blocks if (not error or error.kind == "out_of_memory") else None,
        kv_cache_tokens=tokens if (not error or error.kind == "out_of_memory") else None,
        max_concurrency=conc if (not error or error.kind == "out_of_memory") else None,
        estimated_max_model_len=est_len, max_model_len=max_len, headroom_terms=headroom,
        host_terms=_host_terms(args, cfg, model, ranks), warnings=tuple(warnings), log_lines=tuple(logs),
        ignored_flags=ignored_flags,
    ))


def _startup_check(free_at_init: int, requested: int, total: int, cfg: EngineConfig, rules: RuleSet,
                   platform: str, budget: Budget) -> _Failure | None:
    """vLLM v0.26.0 vllm/v1/worker/utils.py:request_memory: the startup fails if free memory is below the
    requested memory (vLLM v0.34.0 skips the refusal under the extensible KV cache; vllm-ascend <= 0.13's
    absolute-peak budget has no such check)."""
    if free_at_init < requested and budget.checks_free_memory and not cfg.extensible_kv_cache:
        return _Failure("free_memory_below_requested",
                        _free_memory_message(free_at_init, total, cfg.gpu_memory_utilization, requested, rules,
                                             platform))
    return None


def _vit_heads_fallback(model: ModelDescription, tp: int, rules: RuleSet) -> bool:
    """vLLM v0.26.0 / v0.34.0 vllm/model_executor/models/vision.py:is_vit_use_data_parallel(num_heads): a tower
    whose heads TP does not divide falls back to data parallelism (replicated), where the family passes its heads
    (``VisionSpec.extra["dp_when_heads_indivisible"]``: Kimi-K2.5 and Kimi-K3's MoonViT-3D, e.g. K3's 12 heads at
    TP 8). The argument is new in v0.26.0 (``RuleSet.vit_heads_fallback``); v0.25.0 and older never fall back."""
    v = model.vision
    return bool(v is not None and rules.vit_heads_fallback and v.extra.get("dp_when_heads_indivisible")
                and v.num_heads % tp)


def _tower_built(model: ModelDescription, args: EngineArgs, cfg: EngineConfig, rules: RuleSet, pp_rank: int) -> bool:
    """vLLM v0.19.0-v0.34.0 vllm/model_executor/models/interfaces.py:SupportsMultiModal._mark_tower_model: the tower
    is a StageMissingLayer (no weights) when ``--limit-mm-per-prompt`` is 0 for every modality it serves, and from
    v0.33 with the V2 runner on every pipeline stage after the first. A tower carried as the family's extra params
    (part "vision", e.g. Gemma 4's) serves images and videos and sits on the first stage only anyway."""
    from ...model.mm_tokens import all_disabled, tower_modalities

    if model.vision is None:
        return not all_disabled(args.limit_mm_per_prompt, ("image", "video"))
    if rules.tower_first_pp_stage_only and cfg.runner == "v2" and pp_rank > 0:
        return False
    return not all_disabled(args.limit_mm_per_prompt, tower_modalities(model.vision))


def _allocator_blocks(args: EngineArgs, cfg: EngineConfig, platform: str) -> bool:
    """Whether the weights carry the caching allocator's block rounding (rules/allocator.py): CUDA's native
    allocator (``expandable_segments:True`` in ``PYTORCH_CUDA_ALLOC_CONF`` / ``PYTORCH_ALLOC_CONF`` maps pages and
    splits every block, so it leaves no such rounding), unquantized tensors (a quantized layer's several tensors
    are priced as one, so their blocks are not modelled) or MXFP4 experts on the Triton kernel on Hopper (gpt-oss,
    every other layer unquantized; its tensors and their post-load conversion are replayed one by one:
    rules/weights.py ``_mxfp4_triton_processing``), nothing offloaded to the CPU."""
    expandable = expandable_segments(args.env)
    q = cfg.quant
    replayed = q is None or (q.method == "mxfp4" and q.moe_layout == "triton_hopper" and q.expert_quant is None)
    return platform == "cuda" and not expandable and replayed and not args.cpu_offload_gb


def _load_model(model: ModelDescription, args: EngineArgs, device: Device, cfg: EngineConfig, pp_rank: int,
                weights_source, cite, rules: RuleSet) -> tuple[WeightShares, Term]:
    """vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.load_model: the weights of one rank
    and the workspaces allocated while loading."""
    platform = device.platform
    shares = weights_per_rank(model, dtype=cfg.model_dtype, quant=cfg.quant, tp=cfg.tp, pp=cfg.pp,
                              pp_rank=pp_rank, dp=cfg.dp, expert_parallel=cfg.expert_parallel,
                              pp_partition=cfg.pp_partition,
                              vision_replicated=(model.vision is not None and model.vision.supports_encoder_tp_data
                                                 and (args.mm_encoder_tp_mode == "data" or _vit_heads_fallback(
                                                     model, cfg.tp, rules))),
                              vision_whole_prefixes=(heads_whole_prefixes(model.vision, cfg.tp) if model.vision else ()),
                              max_num_batched_tokens=cfg.max_num_batched_tokens,
                              cpu_offload_bytes=int(args.cpu_offload_gb * GiB),
                              vision_built=_tower_built(model, args, cfg, rules, pp_rank),
                              deepstack_needs_tower=rules.deepstack_needs_tower,
                              allocator_blocks=_allocator_blocks(args, cfg, platform),
                              allocator_max_split_bytes=(rules.load_max_split_mib or 0) * 1024 * 1024 or None)
    load_extra = load_workspaces(kv_cache_dtype=cfg.kv_cache_dtype, platform=platform,
                                 fp8_kv_load_workspace=rules.fp8_kv_load_workspace)
    sparse = attention_kinds(model)[1]
    if sparse is not None:  # DSA: the sparse MLA backend's workspace (model/families/deepseek_v32.py)
        from ...model.families.deepseek_v32 import sparse_mla_load_workspace

        load_extra = load_extra + sparse_mla_load_workspace(
            cfg.version, platform=platform, device_capability=device.compute_capability,
            kv_cache_dtype=cfg.kv_cache_dtype, heads_per_rank=model.num_attention_heads // cfg.tp,
            kv_lora_rank=int(model.hf_config.get("kv_lora_rank")
                             or (model.hf_config.get("text_config") or {}).get("kv_lora_rank") or 512),
            q_head_size=sparse.head_size, max_num_batched_tokens=cfg.max_num_batched_tokens,
            max_model_len=cfg.max_model_len)
    from ...model.families import family as _registered_family

    fam = _registered_family(model.family)
    if fam is not None and fam.load_workspace is not None:  # e.g. Kimi-K3's FlashKDA views (families/kimi_k3.py)
        load_extra = load_extra + tuple(fam.load_workspace(model, cfg, device, pp_rank))
    w_bytes = shares.total_bytes + sum(b for _, b in load_extra)
    w_term = Term(key="weights", label="weights", bytes=w_bytes, parts=shares.parts + load_extra,
                  rule=cite("vllm/v1/worker/gpu_model_runner.py", "GPUModelRunner.load_model") +
                  " (allocated bytes after loading); tensors and sharding from the config",
                  note=_weights_note(shares, args, weights_source))
    return shares, w_term


def _profile_run(model: ModelDescription, args: EngineArgs, cfg: EngineConfig, rules: RuleSet, pp_rank: int,
                 start: int, end: int, shares: WeightShares, warnings: list[str], cite) -> tuple[Term, str | None]:
    """vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (profile_run): the torch
    peak increase of the dummy batch, and on the first stage of a multimodal model the encoder profile
    (GPUModelRunner.profile_run). Returns the term and the encoder's log line, if any."""
    last = pp_rank == cfg.pp - 1
    moe_tp = 1 if cfg.expert_parallel else cfg.tp * cfg.dp
    enc_line = None
    peak: Peak = profile_peak(model, runner=cfg.runner, max_num_batched_tokens=cfg.max_num_batched_tokens,
                              coefficients=coefficients_for(cfg.runner, cfg.sampler_path),
                              max_num_seqs=cfg.max_num_seqs, tp=cfg.tp, moe_tp=moe_tp,
                              model_dtype=cfg.model_dtype, layers=range(start, end),
                              last_stage=last and rules.profile_runs_sampler,
                              compiled=(cfg.runner == "v2" and cfg.cudagraph_mode != "NONE"
                                        and not model.is_multimodal and pp_rank == 0
                                        and rules.compiled_embedding_copy),
                              embed_bytes=shares.part("embed"), platform=cfg.platform,
                              persistent_moe_ws=not (cfg.quant is not None and cfg.quant.method == "mxfp4"),
                              **_profile_rules(model, cfg, rules, last))
    act_bytes, act_parts, act_basis = peak.total_bytes, peak.parts, peak.basis
    phase_note = f"peak set by the {peak.phase} of a {cfg.max_num_batched_tokens}-token dummy batch"
    if model.vision is not None and pp_rank == 0:
        enc = encoder_profile_term(model, args, cfg, rules)
        if enc is not None and enc.warning and enc.warning not in warnings:
            warnings.append(enc.warning)
        if enc is not None and enc.profiled:
            # vLLM keeps the N encoder outputs while the text dummy run and the sampler run
            with_held = act_bytes + enc.held_bytes
            if enc.peak_bytes > with_held:
                act_bytes, phase_note = enc.peak_bytes, f"peak set by the encoder profile ({enc.label})"
            else:
                act_bytes = with_held
            act_parts = act_parts + (("encoder profile: " + enc.label + " (peak)", enc.peak_bytes),
                                     ("encoder outputs held during the text profile", enc.held_bytes))
            act_basis += "; encoder: " + enc.basis
            enc_line = enc.log_line
    a_term = Term(key="activation_peak", label="torch peak increase (profile run)", bytes=act_bytes,
                  kind="measured", parts=act_parts, rule=cite("vllm/v1/worker/gpu_worker.py",
                  "Worker.determine_available_memory") + " (torch_peak_increase); " + act_basis,
                  note=phase_note)
    return a_term, enc_line


def _profile_rules(model: ModelDescription, cfg: EngineConfig, rules: RuleSet, last: bool) -> dict:
    """The profile-peak switches that differ by release (rules/versions.py: moe_workspace_manager,
    mla_profile_dummy, sampler_fp32_warmup_pass)."""
    from ...estimate.activation import mla_profile_context_rows

    if cfg.platform == "ascend":  # vllm-ascend's own runner, MoE and MLA layers: the fitted terms
        return {}
    rows = 0
    if rules.mla_profile_dummy and LayerKind.MLA in model.layer_kinds:
        rows = mla_profile_context_rows(max_model_len=cfg.max_model_len, max_num_seqs=cfg.max_num_seqs,
                                        block_size=cfg.block_size)
    return {"manager_moe_ws": rules.moe_workspace_manager, "mla_context_rows": rows,
            "sampler_fp32_pass": rules.sampler_fp32_warmup_pass and cfg.runner == "v2" and last}


def _with_penalty_state(nt_term: Term, cfg: EngineConfig, model, cite) -> Term:
    """From v0.27 the non-KV total is total consumed since the snapshot + the transient headroom
    (vllm/utils/mem_utils.py:memory_profiling), so the V2 runner's persistent penalty state counts: added to
    the non-torch term (the part of total consumed beyond the weights)."""
    from dataclasses import replace as _replace

    pen = sampler_penalty_state_bytes(max_num_seqs=cfg.max_num_seqs, vocab=model.vocab_size)
    base = nt_term.parts or (("non-torch increase", nt_term.bytes),)
    return _replace(nt_term, label="non-torch increase + runner state", bytes=nt_term.bytes + pen,
                    parts=base + (("V2 sampler penalty state (output_bin_counts, prompt_bin_mask)", pen),),
                    rule=nt_term.rule + "; + " + cite("vllm/v1/worker/gpu/sample/penalties.py",
                                                      "PenaltiesState.__init__")
                    + " (max_num_seqs x vocab int32, kept; counted in total consumed)")


def _cudagraph_term(graphs, cg_applied: int, cfg: EngineConfig, cite) -> Term:
    """vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.profile_cudagraph_memory: the CUDA-graph
    estimate, and whether it is subtracted from the KV budget."""
    return Term(key="cudagraph_estimate", label="CUDA-graph estimate", bytes=cg_applied, kind="measured",
                rule=cite("vllm/v1/worker/gpu_model_runner.py", "GPUModelRunner.profile_cudagraph_memory")
                + "; " + graphs.basis,
                note=("subtracted from the KV budget" if cg_applied else
                      ("computed but not subtracted (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0)"
                       if graphs.estimate_bytes and not cfg.estimate_cudagraphs else
                       "not estimated by this runner/version" if cfg.cudagraph_mode != "NONE" else
                       "enforce-eager: no CUDA graphs")))


def _kv_budget(budget: Budget, cfg: EngineConfig, rules: RuleSet, pp_rank: int, start: int, end: int, all_specs,
               shares: WeightShares, measured: tuple[Term, Term, Term, Term], requested: int, free_at_init: int,
               cg_applied: int, cite) -> RankPlan:
    """vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory: the non-KV total and the
    KV budget of one rank (by the worker's budget strategy, or --kv-cache-memory-bytes), its KV layout and
    blocks."""
    w_term, a_term, nt_term, cg_term = measured
    non_kv = w_term.bytes + a_term.bytes + nt_term.bytes
    nk_term = Term(key="non_kv_total", label="total non-KV", bytes=non_kv,
                   rule=cite("vllm/v1/worker/gpu_worker.py", "Worker.determine_available_memory")
                   + {"three_part": " (weights + torch peak increase + non-torch increase)",
                      "absolute_peak": " (torch allocated peak incl. weights + all non-torch memory)"}.get(
                       rules.non_kv_formula, " (total consumed since the snapshot + transient peak headroom)"))
    if cfg.kv_cache_memory_bytes:
        available = cfg.kv_cache_memory_bytes
        kv_rule = cite("vllm/v1/worker/gpu_worker.py", "Worker.determine_available_memory") + \
            " (--kv-cache-memory-bytes: profiling skipped for sizing)"
    else:
        available, kv_rule = budget.kv_available(requested, non_kv, cg_applied, cite)
    rank_layers = (None if cfg.pp == 1 else tuple(i for i, _ in all_specs if start <= i < end))
    layout = build_layout(all_specs, rank_layers)
    blocks = num_blocks_for(layout, available)
    kv_term = Term(key="kv_cache", label="KV cache", bytes=available, rule=kv_rule)
    terms = (w_term, a_term, nt_term, cg_term, nk_term, kv_term)
    name = (f"PP{pp_rank}/" if cfg.pp > 1 else "") + "TP0"
    return RankPlan(name=name, pp_rank=pp_rank, weights=shares, terms=terms, requested_bytes=requested,
                    free_at_init_bytes=free_at_init, available_kv_bytes=available, layout=layout,
                    num_blocks=blocks)


def _kv_sizing(error: _Failure | None, ranks: list[RankPlan], cfg: EngineConfig, rules: RuleSet, device: Device,
               free_at_init: int, used_by_others_bytes: int, over):
    """vLLM v0.26.0 vllm/v1/core/kv_cache_utils.py:get_kv_cache_configs: (after the weights-OOM check) the
    blocks (min over ranks), the max-model-len check, capacity, and the Mamba blocks check.
    Returns (error, num_blocks, tokens, concurrency, max_model_len, estimated max_model_len)."""
    logged = ranks[-1]
    max_len = cfg.max_model_len
    num_blocks = tokens = conc = est_len = None
    inflight = cfg.max_in_flight_tokens
    if error is None:
        from .weights_oom import weights_oom

        oom = weights_oom(ranks, device=device, free_before_load_bytes=free_at_init,
                          used_by_others_bytes=used_by_others_bytes, context_bytes=over.before_snapshot_bytes,
                          distributed=cfg.tp * cfg.pp > 1)
        if oom is not None:
            error = _Failure("out_of_memory", oom, phase="weight_loading")
    if error is None:
        try:
            num_blocks, max_len, est_len = _size_kv(ranks, cfg, rules)
        except _Failure as exc:
            error = exc
            est_len = getattr(exc, "estimate", None)
    if error is None and num_blocks is not None:
        tokens, conc = capacity(logged.layout, num_blocks, max_model_len=max_len, max_in_flight_tokens=inflight,
                                v033=rules.capacity_v033, tokens_from_concurrency=rules.kv_tokens_from_concurrency)
        if (rules.mamba_blocks_check and any(g.spec.kind.value == "mamba" for g in logged.layout.groups)
                and num_blocks - 1 < cfg.max_num_seqs):
            error = _Failure("no_kv_cache_memory",
                             f"max_num_seqs ({cfg.max_num_seqs}) exceeds available Mamba cache blocks "
                             f"({num_blocks - 1}). Each decode sequence requires one Mamba cache block, so CUDA "
                             f"graph capture cannot proceed. Please lower max_num_seqs to at most {num_blocks - 1} "
                             f"or increase gpu_memory_utilization.")
    return error, num_blocks, tokens, conc, max_len, est_len


def _post_kv_headroom(error: _Failure | None, budget: Budget, total: int, used_by_others_bytes: int, over,
                      requested: int, graphs, cfg: EngineConfig, model: ModelDescription, logged: RankPlan,
                      warnings: list[str], *, expandable: bool = False, penalty_in_budget: bool = False
                      ) -> tuple[tuple[Term, ...], _Failure | None]:
    """After the KV cache: vLLM v0.26.0 vllm/v1/worker/gpu_worker.py:Worker.compile_or_warm_up_model (CUDA-graph
    capture, then the warm-up: V1 ``_dummy_sampler_run``, V2 ``warmup_kernels``) in the memory the KV cache left.
    Returns the headroom terms and the error, if any. The allocator's share varies between models: the verdict
    takes the median measured, and a worst case below zero is a warning."""
    others, before_snapshot = budget.headroom_outside(used_by_others_bytes, over)
    headroom = _headroom_terms(total, others, before_snapshot, requested, graphs, cfg, model, logged,
                               expandable=expandable, penalty_in_budget=penalty_in_budget
                               ) if error is None and not cfg.extensible_kv_cache else ()
    if headroom and error is None:
        h = {t.key: t.bytes for t in headroom}
        room = h["headroom_left"] + h["cudagraph_actual"] + h["sampler_warmup"]  # free once the KV cache is in
        if h["headroom_left"] < 0:
            if room < h["cudagraph_actual"]:
                error = _Failure("out_of_memory", phase="graph_capture", message=(
                    f"torch.OutOfMemoryError: CUDA out of memory (predicted while capturing CUDA graphs, after the "
                    f"KV cache: the pool needs about {format_gib(h['cudagraph_actual'])} GiB and about "
                    f"{format_gib(max(room, 0))} GiB is free)"))
            elif cfg.runner == "v1":
                # vLLM v0.26.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner._dummy_sampler_run
                error = _Failure("out_of_memory", phase="warmup", message=(
                    f"RuntimeError: CUDA out of memory occurred when warming up sampler with "
                    f"{_post_kv_requests(cfg)} dummy requests. Please try lowering `max_num_seqs` or "
                    f"`gpu_memory_utilization` when initializing the engine. (predicted after the KV cache: the "
                    f"warm-up needs about {format_gib(h['sampler_warmup'])} GiB and about "
                    f"{format_gib(max(room - h['cudagraph_actual'], 0))} GiB is left once the CUDA graphs are in)"))
            else:
                error = _Failure("out_of_memory", phase="warmup", message=(
                    f"torch.OutOfMemoryError: CUDA out of memory (predicted after the KV cache, in warmup_kernels "
                    f"after the CUDA graphs: it needs about {format_gib(h['sampler_warmup'])} GiB and about "
                    f"{format_gib(max(room - h['cudagraph_actual'], 0))} GiB is left)"))
        elif h["headroom_left_worst"] < 0:
            warnings.append(
                f"tight: after the KV cache, CUDA graphs and the warm-up leave about {format_gib(h['headroom_left'])} "
                f"GiB, and up to {format_gib(h['headroom_left'] - h['headroom_left_worst'])} GiB less in the worst "
                f"measured case (allocator fragmentation, a larger graph pool); it may run out of memory in graph "
                f"capture or the warm-up (lower --gpu-memory-utilization a little to be safe"
                + ("" if expandable else ", or set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True") + ")")
    return headroom, error


def _post_kv_requests(cfg: EngineConfig) -> int:
    """The warm-up's dummy requests (vLLM v0.26.0 gpu_worker.py:compile_or_warm_up_model: min(max_num_seqs,
    max_num_batched_tokens))."""
    return min(cfg.max_num_seqs, cfg.max_num_batched_tokens)


def _size_kv(ranks: list[RankPlan], cfg: EngineConfig, rules: RuleSet) -> tuple[int, int, int | None]:
    """Blocks, the max-model-len check and auto-fit (vLLM v0.26.0 kv_cache_utils.py:get_kv_cache_configs)."""
    inflight = cfg.max_in_flight_tokens
    max_len = cfg.max_model_len
    availables = []
    for r in ranks:
        avail = r.available_kv_bytes
        if cfg.num_gpu_blocks_override is not None and r.layout.groups:
            avail = cfg.num_gpu_blocks_override * r.layout.bytes_per_block
        availables.append(avail)
    check_avail = [a - (r.layout.bytes_per_block if rules.null_block_in_check else 0)
                   for a, r in zip(availables, ranks)]
    if cfg.auto_max_model_len:
        fit = max_len
        for r, a in zip(ranks, check_avail):
            if r.layout.groups:
                fit = min(fit, estimate_max_model_len(r.layout, a, upper=max_len, max_in_flight_tokens=inflight))
        if fit <= 0:
            raise _Failure("no_kv_cache_memory", "Cannot auto-fit max_model_len: not enough GPU memory available to "
                           "serve even a single token. Try increasing `gpu_memory_utilization`.")
        max_len = fit
    for r, a in zip(ranks, check_avail):
        if not r.layout.groups:
            continue
        if a <= 0:
            raise _Failure("no_kv_cache_memory", _NO_KV)
        need = needed_bytes(r.layout, max_model_len=max_len, max_in_flight_tokens=inflight)
        if need > a:
            est = estimate_max_model_len(r.layout, a, upper=max_len, max_in_flight_tokens=inflight)
            f = _Failure("max_model_len_exceeds_kv_cache", _max_len_message(max_len, need, a, est))
            f.estimate = est  # type: ignore[attr-defined]
            raise f
    blocks = []
    for r, a in zip(ranks, availables):
        n = num_blocks_for(r.layout, a)
        if cfg.num_gpu_blocks_override is not None:
            n = cfg.num_gpu_blocks_override
        blocks.append(n)
    return min(blocks), max_len, None


def _headroom_terms(total: int, others: int, before_snapshot: int, requested: int, graphs, cfg: EngineConfig,
                    model: ModelDescription, logged: RankPlan, *, expandable: bool = False,
                    penalty_in_budget: bool = False) -> tuple[Term, ...]:
    """What is allocated after the KV cache, against what the device has left.

    After ``initialize_from_config`` the KV cache fills the budget except the room the profile run took
    (``activation_peak``, and the CUDA-graph estimate where it was subtracted), which is free again, less the
    runner state no budget term holds and what the caching allocator keeps but cannot hand out.
    ``compile_or_warm_up_model`` then captures the CUDA graphs and warms the model and sampler up in that room.
    """
    left = total - others - before_snapshot - requested
    # vllm-ascend (absolute-peak budget, ACL graphs after the KV cache) was not measured after the KV cache: its
    # graphs are charged against what is left outside the budget, as before
    returned = 0 if cfg.platform == "ascend" else (
        logged.bytes_of("activation_peak") + (graphs.estimate_bytes if cfg.estimate_cudagraphs else 0))
    pk = post_kv(runner=cfg.runner, max_num_seqs=cfg.max_num_seqs, requests=_post_kv_requests(cfg),
                 vocab=model.vocab_size, platform=cfg.platform, expandable_segments=expandable,
                 penalty_state_in_budget=penalty_in_budget)
    head = left + returned - pk.runner_state_bytes - pk.allocator_bytes - graphs.actual_bytes - pk.warmup_bytes
    step = ("V1 _dummy_run + _dummy_sampler_run (twice: the default path, then the sort path)" if cfg.runner == "v1"
            else "V2 warmup_kernels (execute_model + sample_tokens)")
    terms = [
        Term(key="outside_budget", label="left outside the budget (1 - util)", bytes=left,
             rule="total - other processes - memory in use at the init snapshot - requested"),
        Term(key="profile_room_returned", label="profile room free again after the KV cache", bytes=returned,
             rule="activation peak" + (" + the subtracted CUDA-graph estimate" if cfg.estimate_cudagraphs else "")
                  + ": vLLM v0.26.0 gpu_worker.py:Worker.determine_available_memory keeps it out of the KV cache"),
        Term(key="runner_state", label="runner state outside the budget", bytes=pk.runner_state_bytes,
             kind="measured", rule=("V2 penalty state (vllm/v1/worker/gpu/sample/penalties.py:PenaltiesState, "
                                    "counted by the budget from v0.27) + " if cfg.runner == "v2" and not
                                    penalty_in_budget else "") + f"{cfg.runner} runner buffers, {pk.basis}"),
        Term(key="allocator_unusable", label="allocator: reserved, not reusable", bytes=pk.allocator_bytes,
             kind="measured", rule=f"PyTorch caching allocator (split segments, rounding), median of the measured "
                                   f"configurations; worst {format_gib(pk.allocator_worst_bytes)} GiB; "
                                   + ("expandable_segments:True; " if expandable else "default allocator; ")
                                   + pk.basis),
        Term(key="cudagraph_actual", label="CUDA-graph pool (real capture)", bytes=graphs.actual_bytes,
             kind="measured", rule="vLLM compile_or_warm_up_model -> capture_model; " + graphs.basis,
             note="captured after the KV cache"),
        Term(key="sampler_warmup", label="warm-up after the capture", bytes=pk.warmup_bytes, kind="measured",
             rule=f"vLLM compile_or_warm_up_model: {step}, {pk.requests} requests x vocab {model.vocab_size}: "
                  f"peak above what it found allocated, {pk.basis}"),
        Term(key="headroom_left", label="room left after warm-up", bytes=head,
             rule="outside_budget + profile_room_returned - runner_state - allocator_unusable - cudagraph_actual "
                  "- sampler_warmup"),
        Term(key="headroom_left_worst", label="room left, worst measured case",
             bytes=head + pk.allocator_bytes - pk.allocator_worst_bytes
             - int(graphs.actual_bytes * (CUDAGRAPH_WORST_RATIO - 1)), kind="measured",
             rule=f"headroom_left with the largest allocator share measured and the CUDA-graph pool "
                  f"{CUDAGRAPH_WORST_RATIO}x (the worst measured pool against the model: gpt-oss-20b)"),
    ]
    return tuple(terms)


def _host_terms(args: EngineArgs, cfg: EngineConfig, model: ModelDescription,
                ranks: list[RankPlan]) -> tuple[Term, ...]:
    """Host (CPU) memory that users look for on the device: offloaded weights, the multimodal processor cache."""
    terms: list[Term] = []
    offloaded = sum(r.weights.offloaded_bytes for r in ranks) * cfg.tp * cfg.dp
    if offloaded:
        terms.append(Term(key="cpu_offload", label="weights offloaded to host (pinned RAM)", bytes=offloaded,
                          rule="vLLM vllm/model_executor/offloader/uva.py:UVAOffloader (per GPU, --cpu-offload-gb), "
                               "summed over every rank", kind="exact", note="CPU memory, not on the device"))
    if not model.is_multimodal:
        return tuple(terms)
    gb = 4.0 if args.mm_processor_cache_gb is None else args.mm_processor_cache_gb
    copies = (args.api_server_count or 1) + cfg.dp
    return tuple(terms) + (Term(key="mm_processor_cache", label="multimodal processor cache (host RAM)", bytes=int(gb * GiB) * copies,
                 rule="vLLM vllm/multimodal/cache.py: mm_processor_cache_gb x (api_server_count + data_parallel_size)",
                 kind="given", note="CPU memory, not on the device"),)


def _log_lines(rules: RuleSet, cfg: EngineConfig, ranks: list[RankPlan], num_blocks, tokens, conc, max_len,
               graphs, error: _Failure | None, free: int, requested: int, total: int,
               enc_line: str | None = None) -> list[str]:
    """The memory lines vLLM would print, in this version's format."""
    r = ranks[-1]
    g = format_gib
    lines = []
    if error and error.phase == "weight_loading":  # load_model never returns: no "Model loading took" line
        return [error.message]
    if error and error.kind == "free_memory_below_requested":
        # vLLM v0.26.0/v0.33.0 vllm/v1/worker/gpu_worker.py:Worker.init_device checks before load_model runs
        return [f"ValueError: {error.message}"]
    if cfg.runner == "v2" and not rules.v2_load_log_says_memory:
        lines.append(f"Model loading took {g(r.bytes_of('weights'))} GiB and X.XX seconds")
    else:
        lines.append(f"Model loading took {g(r.bytes_of('weights'))} GiB memory and X.XX seconds")
    if error and error.kind == "free_memory_below_requested":
        lines.append(f"ValueError: {error.message}")
        return lines
    if enc_line:
        lines.append(enc_line)
    if rules.non_kv_formula == "absolute_peak":
        # vllm-ascend 0.12.0rc1 / 0.13.0 NPUWorker.determine_available_memory (0.9 logs no memory line)
        # a vllm-ascend log line, keyed by the vllm-ascend release inside the v0_9 span (0.9-0.13)
        if rules.requested >= (0, 12, 0):
            lines.append(f"Available memory: {max(r.available_kv_bytes, 0)}, total memory: {total}")
        lines.append(f"Available KV cache memory: {g(r.available_kv_bytes)} GiB (not logged by vllm-ascend "
                     f"{'.'.join(map(str, rules.requested[:2]))}; weights {g(r.bytes_of('weights'))}, profile peak "
                     f"{g(r.bytes_of('activation_peak'))}, non-torch {g(r.bytes_of('non_torch'))} GiB)")
        if error and error.kind != "out_of_memory":
            lines.append(f"ValueError: {error.message}")
            return lines
        if tokens is not None:
            lines.append(f"GPU KV cache size: {tokens:,} tokens")
            lines.append(f"Maximum concurrency for {max_len:,} tokens per request: {conc:.2f}x")
        return lines
    lines.append(f"Initial free memory: {g(free)} GiB; Requested memory: {cfg.gpu_memory_utilization:f} (util), "
                 f"{g(requested)} GiB")
    if graphs.estimate_bytes and cfg.cudagraph_mode != "NONE" and cfg.runner != "v2":
        # the V1 runner's profile_cudagraph_memory logs it (v0.19.0-v0.33.0 gpu_model_runner.py); the V2 runner's
        # (v0.33.0 v1/worker/gpu/cudagraph_utils.py) logs only the pool line after capture
        lines.append(f"Estimated CUDA graph memory: {graphs.estimate_bytes / GiB:.2f} GiB total")
    if rules.non_kv_formula == "three_part":
        lines.append(f"Memory profiling takes X.XX seconds. Total non KV cache memory: {g(r.bytes_of('non_kv_total'))}GiB; "
                     f"torch peak memory increase: {g(r.bytes_of('activation_peak'))}GiB; non-torch forward increase "
                     f"memory: {g(r.bytes_of('non_torch'))}GiB; weights memory: {g(r.bytes_of('weights'))}GiB.")
    else:
        consumed = r.bytes_of("weights") + r.bytes_of("non_torch")
        lines.append(f"Memory profiling takes X.XX seconds. Total non KV cache memory: {g(r.bytes_of('non_kv_total'))}GiB; "
                     f"torch peak memory increase: {g(r.bytes_of('activation_peak'))}GiB; total consumed (from "
                     f"mem_get_info): {g(consumed)}GiB; weights memory: {g(r.bytes_of('weights'))}GiB.")
    lines.append(f"Available KV cache memory: {g(r.available_kv_bytes)} GiB")
    if error and error.kind != "out_of_memory":
        lines.append(f"ValueError: {error.message}")
        return lines
    if tokens is not None:
        if rules.kv_capacity_one_line:
            lines.append(f"GPU KV cache size: {tokens:,} tokens, Maximum concurrency for {max_len:,} tokens per "
                         f"request: {conc:.2f}x")
        else:
            lines.append(f"GPU KV cache size: {tokens:,} tokens")
            lines.append(f"Maximum concurrency for {max_len:,} tokens per request: {conc:.2f}x")
    if graphs.actual_bytes:
        lines.append(f"Graph capturing finished in X secs, took {graphs.actual_bytes / GiB:.2f} GiB")
        if graphs.estimate_bytes and cfg.cudagraph_mode != "NONE":
            # v0.19.0-v0.34.0 vllm/v1/worker/gpu_worker.py:Worker.compile_or_warm_up_model, after the capture,
            # whenever an estimate was profiled (figures as round(bytes / GiB, 2) printed with %s)
            a, e = graphs.actual_bytes, graphs.estimate_bytes
            lines.append(f"CUDA graph pool memory: {round(a / GiB, 2)} GiB (actual), {round(e / GiB, 2)} GiB "
                         f"(estimated), difference: {round(abs(a - e) / GiB, 2)} GiB "
                         f"({100 * abs(a - e) / max(a, 1):.1f}%).")
    return lines
