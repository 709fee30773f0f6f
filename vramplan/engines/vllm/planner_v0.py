"""The plan for the V0 engine of vLLM 0.6 (rule set ``v0_6``).

V0 sizes the KV cache in one place, ``Worker.determine_num_available_blocks`` (vLLM v0.6.4.post1
vllm/worker/worker.py), and differs from the V1 engine of :mod:`vramplan.engines.vllm.planner` in ways that
change the verdict:

- no startup free-memory check: memory other programs hold is counted in ``non_torch_memory``
  (``total - free`` after profiling, minus torch's allocated bytes) and shrinks the KV cache;
- the profile run prefills ``max_num_batched_tokens`` tokens, which is ``max(max_model_len, 2048)``
  unless chunked prefill is on (by default only past 32K tokens);
- ``KV = total x util - (torch allocated peak + non-torch)``, blocks by floor division, one block
  size for every layer (sliding windows allocate full pages);
- ``raise_if_cache_size_invalid``: no block, or ``max_model_len > block_size x blocks``.

CUDA graphs are captured after the KV cache, outside the budget; V0's capture is not measured, so
no post-KV verdict is given.
"""

from __future__ import annotations

from ...estimate.activation import profile_peak
from ...estimate.overheads import non_torch_v0
from ...inputs.devices import Device
from .flags import EngineArgs
from ...model.description import ModelDescription
from ...plan import Plan, RankPlan, Term
from .rules.weights_note import weights_note as _weights_note
from .rules.weights_note import weights_source as _weights_source
from .rules.engine import resolve_engine
from ...rules.kv import build_layout, layer_specs
from .rules.versions import RuleSet
from ...rules.weights import pp_layer_split, weights_per_rank
from ...units import GiB, format_gib

__all__ = ["build_plan_v0"]

_WORKER = "vllm/worker/worker.py"


def _no_kv_message() -> str:
    # vLLM v0.6.4.post1 vllm/worker/worker.py:raise_if_cache_size_invalid
    return ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing "
            "the engine.")


def _max_len_message(max_len: int, max_seq_len: int) -> str:
    # vLLM v0.6.4.post1 vllm/worker/worker.py:raise_if_cache_size_invalid
    return (f"The model's max seq len ({max_len}) is larger than the maximum number of tokens that can be stored in "
            f"KV cache ({max_seq_len}). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            f"initializing the engine.")


def build_plan_v0(model: ModelDescription, args: EngineArgs, device: Device, rules: RuleSet, *,
                  used_by_others_bytes: int = 0, ignored_flags: tuple[str, ...] = ()) -> Plan:
    """Predict one vLLM 0.6 (V0 engine) startup."""
    cfg = resolve_engine(args, model, device, rules)
    cite = rules.cite
    total = device.total_bytes
    util = cfg.gpu_memory_utilization
    warnings = ([rules.stand_in_note] if rules.stand_in_note else []) + list(cfg.notes) + list(model.notes)
    weights_source, ckpt_warning = _weights_source(model, cfg)
    if ckpt_warning is not None:
        warnings.append(ckpt_warning)
    over = non_torch_v0(tp=cfg.tp, pp=cfg.pp, device_name=device.name, nvlink=device.nvlink, env=dict(args.env))
    # determine_num_available_blocks: total_gpu_memory * gpu_memory_utilization - peak_memory (a float)
    requested = int(total * util)
    stages = pp_layer_split(model.num_hidden_layers, cfg.pp, cfg.pp_partition)
    from .validate import check_pipeline_stages

    check_pipeline_stages(stages, model.num_hidden_layers)
    # vllm/worker/cache_engine.py:CacheEngine.get_cache_block_size: every attention layer, full pages
    specs = layer_specs(model, tp=cfg.tp, block_size=cfg.block_size, kv_cache_dtype=cfg.kv_cache_dtype,
                        model_dtype=cfg.model_dtype, disable_hybrid=True)
    ranks: list[RankPlan] = []
    for pp_rank, (start, end) in enumerate(stages):
        last = pp_rank == cfg.pp - 1
        shares = weights_per_rank(model, dtype=cfg.model_dtype, quant=cfg.quant, tp=cfg.tp, pp=cfg.pp,
                                  pp_rank=pp_rank, dp=1, pp_partition=cfg.pp_partition,
                                  max_num_batched_tokens=cfg.max_num_batched_tokens,
                                  cpu_offload_bytes=int(args.cpu_offload_gb * GiB))
        w_term = Term(key="weights", label="weights", bytes=shares.total_bytes, parts=shares.parts,
                      rule=cite("vllm/worker/model_runner.py", "GPUModelRunnerBase.load_model")
                      + " (\"Loading model weights took\"); tensors and sharding from the config",
                      note=_weights_note(shares, args, weights_source))
        peak = profile_peak(model, runner="v0", max_num_batched_tokens=cfg.max_num_batched_tokens,
                            max_num_seqs=cfg.max_num_seqs, tp=cfg.tp, moe_tp=cfg.tp, model_dtype=cfg.model_dtype,
                            layers=range(start, end), last_stage=last, platform=cfg.platform)
        a_term = Term(key="activation_peak", label="torch peak over the weights (profile run)",
                      bytes=peak.total_bytes, kind="measured", parts=peak.parts,
                      rule=cite(_WORKER, "Worker.determine_num_available_blocks")
                      + " (peak_torch_memory - weights); " + peak.basis,
                      note=f"peak set by the {peak.phase} of {cfg.max_num_seqs} dummy prompts sharing "
                           f"{cfg.max_num_batched_tokens} tokens")
        nt_parts = (("CUDA context and library workspaces", over.increase_bytes),)
        if used_by_others_bytes:
            nt_parts += (("other programs (V0 counts them here)", used_by_others_bytes),)
        nt_term = Term(key="non_torch", label="non-torch memory", bytes=over.increase_bytes + used_by_others_bytes,
                       kind="measured", parts=nt_parts,
                       rule=cite(_WORKER, "Worker.determine_num_available_blocks")
                       + " (non_torch_memory: used device memory - torch allocated); " + over.basis)
        cg_term = Term(key="cudagraph_estimate", label="CUDA-graph estimate", bytes=0,
                       rule=cite("vllm/worker/model_runner.py", "GPUModelRunnerBase.capture_model"),
                       note="V0 does not estimate CUDA graphs; they are captured after the KV cache")
        non_kv = w_term.bytes + a_term.bytes + nt_term.bytes
        nk_term = Term(key="non_kv_total", label="total non-KV (peak_memory)", bytes=non_kv,
                       rule=cite(_WORKER, "Worker.determine_num_available_blocks")
                       + " (torch allocated peak incl. weights + non-torch)")
        available = requested - non_kv
        layout = build_layout(specs, tuple(i for i in specs if start <= i < end))
        blocks = max(available // layout.bytes_per_block, 0) if layout.bytes_per_block else 0
        kv_term = Term(key="kv_cache", label="KV cache", bytes=available,
                       rule=cite(_WORKER, "Worker.determine_num_available_blocks")
                       + " (total x util - peak_memory; blocks = floor(KV / block bytes))")
        name = (f"PP{pp_rank}/" if cfg.pp > 1 else "") + "TP0"
        ranks.append(RankPlan(name=name, pp_rank=pp_rank, weights=shares,
                              terms=(w_term, a_term, nt_term, cg_term, nk_term, kv_term), requested_bytes=requested,
                              free_at_init_bytes=total - used_by_others_bytes, available_kv_bytes=available,
                              layout=layout, num_blocks=int(blocks)))

    # vllm/executor/distributed_gpu_executor.py:determine_num_available_blocks: the min over workers;
    # vllm/engine/llm_engine.py:_initialize_kv_caches: num_gpu_blocks_override replaces it
    num_blocks = min(r.num_blocks for r in ranks)
    if cfg.num_gpu_blocks_override is not None:
        num_blocks = cfg.num_gpu_blocks_override
    max_len = cfg.max_model_len
    tokens = num_blocks * cfg.block_size
    conc = tokens / max_len
    kind = message = None
    from .weights_oom import weights_oom

    # V0 loads before it profiles too; what the runtime holds by then is its measured non-torch memory
    oom = weights_oom(ranks, device=device, free_before_load_bytes=total - used_by_others_bytes - over.increase_bytes,
                      used_by_others_bytes=used_by_others_bytes, context_bytes=over.increase_bytes,
                      distributed=cfg.tp * cfg.pp > 1, loader="GPUModelRunnerBase.load_model")
    if oom is not None:
        kind, message = "out_of_memory", oom
    elif num_blocks <= 0:
        kind, message = "no_kv_cache_memory", _no_kv_message()
    elif max_len > tokens:
        kind, message = "max_model_len_exceeds_kv_cache", _max_len_message(max_len, tokens)
    swap_blocks = int(4 * GiB // ranks[-1].layout.bytes_per_block) if ranks[-1].layout.bytes_per_block else 0
    logs = ([message] if kind == "out_of_memory" else
            _log_lines(ranks[-1], total, util, used_by_others_bytes, num_blocks, swap_blocks, max_len, conc, message))
    host = (Term(key="swap_space", label="swap space (pinned host RAM)", bytes=4 * GiB * cfg.tp * cfg.pp,
                 rule=cite("vllm/config.py", "CacheConfig") + " (swap_space 4 GiB per GPU: the CPU blocks)",
                 note="CPU memory, not on the device"),)
    if not cfg.enforce_eager:
        warnings.append(f"V0 captures CUDA graphs for {len(cfg.capture_sizes)} decode batch sizes after the KV "
                        f"cache, in the {format_gib(total - requested)} GiB that util leaves; that capture is not "
                        f"measured for V0, so no out-of-memory verdict is given for it")
    return Plan(
        vllm_version=".".join(map(str, rules.requested)), rules=rules, model=model, device=device,
        device_count=cfg.tp * cfg.pp, args=args, engine=cfg, used_by_others_bytes=used_by_others_bytes,
        ranks=tuple(ranks), verdict="fails" if kind else "starts", error_kind=kind, error_message=message,
        error_phase=("weight_loading" if kind == "out_of_memory" else "kv_sizing") if kind else None,
        # V0 logs the blocks and the concurrency before its check refuses them (gpu_executor.initialize_cache)
        num_gpu_blocks=None if kind in ("no_kv_cache_memory", "out_of_memory") else num_blocks,
        kv_cache_tokens=None if kind in ("no_kv_cache_memory", "out_of_memory") else tokens,
        max_concurrency=None if kind in ("no_kv_cache_memory", "out_of_memory") else conc,
        # V0 states the most tokens the cache holds; that is the longest max_model_len it accepts
        estimated_max_model_len=tokens if kind == "max_model_len_exceeds_kv_cache" else None,
        max_model_len=max_len, host_terms=host, warnings=tuple(warnings), log_lines=tuple(logs),
        ignored_flags=ignored_flags,
    )


def _log_lines(r: RankPlan, total: int, util: float, others: int, num_blocks: int, swap_blocks: int, max_len: int,
               conc: float, message: str | None) -> list[str]:
    """The lines vLLM 0.6.4 prints (worker.py, gpu_executor.py)."""
    w = r.bytes_of("weights")
    nt = r.bytes_of("non_torch")
    g = format_gib
    lines = [
        f"Loading model weights took {w / GiB:.4f} GB",  # GiB figures, labelled GB by vLLM
        f"Memory profiling results: total_gpu_memory={g(total)}GiB initial_memory_usage={g(w + nt)}GiB "
        f"peak_torch_memory={g(w + r.bytes_of('activation_peak'))}GiB memory_usage_post_profile={g(w + nt)}GiB "
        f"non_torch_memory={g(nt)}GiB kv_cache_size={g(r.available_kv_bytes)}GiB gpu_memory_utilization={util:.2f}",
        f"# GPU blocks: {num_blocks}, # CPU blocks: {swap_blocks}",
        f"Maximum concurrency for {max_len} tokens per request: {conc:.2f}x",
    ]
    if message:
        lines.append(f"ValueError: {message}")
    return lines
