"""Resolve the user's flags into the engine configuration vLLM would run with.

Every default here is vLLM's own for the chosen version and platform (which model runner,
max_num_batched_tokens, max_num_seqs, block size, CUDA-graph sizes, dtypes, max_model_len),
each function citing where vLLM decides it. The result is a frozen :class:`EngineConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ....errors import InvalidConfig, UnsupportedError
from ....inputs.devices import Device
from ....memo import by_identity
from ..flags import EngineArgs
from ....model.description import LayerKind, ModelDescription, QuantSpec
from ....model.families import family
from ....model.from_config import text_config_of
from ....model.quant import parse_quant
from . import engine_defaults as d
from .versions import RuleSet

__all__ = ["EngineConfig", "resolve_engine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """The configuration vLLM runs with after applying its defaults (all resolved, no None)."""

    tp: int
    pp: int
    dp: int
    expert_parallel: bool
    max_model_len: int
    """After defaults; with ``auto`` this is the model's limit and ``auto_max_model_len`` is set."""
    auto_max_model_len: bool
    derived_max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    model_dtype: str
    kv_cache_dtype: str
    quant: QuantSpec | None
    block_size: int
    block_size_reason: str
    enforce_eager: bool
    cudagraph_mode: str
    capture_sizes: tuple[int, ...]
    runner: str
    """``v1`` or ``v2`` (vLLM's model runner)."""
    estimate_runs: bool
    """Whether ``profile_cudagraph_memory`` runs and measures something (it may still not be subtracted)."""
    estimate_cudagraphs: bool
    """Whether the CUDA-graph estimate is subtracted from the KV budget."""
    async_scheduling: bool
    max_concurrent_batches: int
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    disable_hybrid_kv_cache_manager: bool
    mamba_cache_mode: str
    kv_cache_memory_bytes: int | None
    num_gpu_blocks_override: int | None
    pp_partition: str | None
    platform: str
    version: tuple[int, int, int] = (0, 0, 0)
    """The vLLM version the defaults were taken from."""
    mamba_page_padded: int | None = None
    """Hybrid models: the mamba page after padding to the attention page."""
    mamba_ssm_dtype: str | None = None
    """dtype of the recurrent (SSM) state: ``--mamba-ssm-cache-dtype``, else the model's rule (None: as the spec)."""
    sampler_path: str = "fitted"
    """The dummy sampler's top-k/top-p path (engine_defaults.dummy_sampler_path)."""
    notes: tuple[str, ...] = ()
    extensible_kv_cache: bool = False
    """vLLM 0.34 ``enable_extensible_kv_cache`` after resolution (``vramplan.engines.vllm.sizing.extensible``)."""
    gdn_flashinfer_prefill: bool = False
    """GDN layers prefill with FlashInfer's kernel (:func:`gdn_flashinfer_prefill`), not FLA's Triton one."""

    @property
    def max_in_flight_tokens(self) -> int:
        """vLLM v0.26.0 vllm/config/vllm.py:VllmConfig.max_in_flight_tokens."""
        return self.max_concurrent_batches * self.max_num_batched_tokens

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def resolve_engine(args: EngineArgs, model: ModelDescription, device: Device, rules: RuleSet) -> EngineConfig:
    """Apply vLLM's defaults and validations for the requested version (``rules.requested``).

    The per-flag rules live in :mod:`vramplan.engines.vllm.rules.engine_defaults` (each citing vLLM), which
    knows the exact release of every change; this function only strings them together in the
    order ``EngineArgs.create_engine_config`` does.
    """
    v = rules.requested if rules.requested != (0, 0, 0) else rules.version
    _check_introduced(model, v)
    if rules.engine == "v0":
        return _resolve_v0(args, model, device, rules)
    env = dict(args.env)
    notes: list[str] = []
    tp, pp, dp = args.tensor_parallel_size, args.pipeline_parallel_size, args.data_parallel_size
    platform = device.platform
    m = _model_settings(args, model, device, rules, rules.engine, env, notes)
    model_dtype, quant, kv_dtype, max_len, auto, derived = (m.model_dtype, m.quant, m.kv_dtype, m.max_len, m.auto,
                                                            m.derived)
    # model runner
    is_quantized = quant is not None
    if not rules.v1_model_runner and platform != "ascend":
        _v2_only_env(env, notes)
    runner = "v2" if (not rules.v1_model_runner and platform != "ascend") or d.uses_v2_model_runner(
        rules, architecture=model.architecture, is_moe=model.is_moe, is_hybrid=model.is_hybrid,
        is_multimodal=model.is_multimodal, is_pooling=False, env=env, is_quantized=is_quantized,
        platform=platform) else "v1"
    # chunked prefill / prefix caching (EngineArgs._set_default_chunked_prefill_and_prefix_caching_args)
    chunked = True if args.enable_chunked_prefill is None else args.enable_chunked_prefill
    prefix = (args.enable_prefix_caching if args.enable_prefix_caching is not None
              else d.default_enable_prefix_caching(rules, is_hybrid=model.is_hybrid))
    # scheduler limits (EngineArgs._set_default_max_num_seqs_and_batched_tokens_args)
    mnbt, mns = d.default_batch_limits(
        rules, usage_context=args.usage_context, device_total_bytes=device.total_bytes, device_name=device.label,
        platform=platform, enable_chunked_prefill=chunked, max_model_len=max_len,
        max_num_batched_tokens=args.max_num_batched_tokens, max_num_seqs=args.max_num_seqs,
        performance_mode=args.performance_mode or "balanced", world_size=tp * pp,
        device_capability=device.compute_capability)
    d.validate_scheduler(rules, max_num_batched_tokens=mnbt, max_num_seqs=mns, max_model_len=max_len,
                         enable_chunked_prefill=chunked)
    from ..sizing.extensible import resolve_extensible_kv_cache

    extensible, ext_note = resolve_extensible_kv_cache(rules, args, platform)
    if ext_note:
        notes.append(ext_note)
    # vLLM v0.34.0 vllm/config/cache.py:CacheConfig.resolved_gpu_memory_utilization (1.0 under the extensible cache)
    util = args.gpu_memory_utilization or (1.0 if extensible else d.default_gpu_memory_utilization(rules, platform))
    has_mamba = LayerKind.MAMBA in model.layer_kinds
    mamba_mode = args.mamba_cache_mode or (d.default_mamba_cache_mode(rules, enable_prefix_caching=prefix)
                                           if has_mamba else "none")
    head = model.max_attention_head_size
    block_size = d.default_block_size(
        rules, platform, use_mla=model.uses_mla, device_capability=device.compute_capability,
        user_block_size=args.block_size, is_hybrid=has_mamba, enable_prefix_caching=prefix,
        enable_chunked_prefill=chunked, model_type=model.text_model_type, head_size=head, kv_cache_dtype=kv_dtype,
        default=rules.default_block_size)
    reason = "--block-size" if args.block_size else "vLLM's default block size for this backend/platform"
    if _attention_kinds(model)[0]:
        # DeepSeek-V4: fp8_ds_mla on the FlashMLA path, 256-token blocks (model/families/deepseek_v4.py)
        from dataclasses import replace as _replace

        from ....model.description import QuantSpec
        from ....model.families.deepseek_v4 import v4_engine

        kv_dtype, block_size, v4_notes = v4_engine(platform, device.compute_capability, kv_dtype, args.block_size)
        notes.extend(v4_notes)
        reason = "--block-size" if args.block_size else "DeepSeek-V4 sparse MLA / SWA / indexer backends (256)"
        text = text_config_of(model.hf_config)
        if quant is not None and str(text.get("expert_dtype", "fp4")) == "fp4":
            # vllm/models/deepseek_v4/quant_config.py:DeepseekV4FP8Config: MXFP4 routed experts
            quant = _replace(quant, expert_quant=QuantSpec(method="mxfp4", weight_bits=4, group_size=32,
                                                           scale_dtype="uint8"))
    elif _attention_kinds(model)[1] is not None:
        # DeepSeek Sparse Attention: its backends, KV format and block size (model/families/deepseek_v32.py)
        from ....model.families.deepseek_v32 import sparse_mla_engine

        kv_dtype, sparse_block, sparse_notes = sparse_mla_engine(
            v, platform, device.compute_capability, kv_dtype, args.block_size, model.text_model_type)
        notes.extend(sparse_notes)
        if sparse_block is not None and not args.block_size:
            block_size, reason = sparse_block, "sparse MLA + indexer backends (64 on CUDA)"
    mamba_page_padded = None
    ssm_dtype = _mamba_ssm_dtype(args, model, v) if has_mamba else None
    gdn_fi = has_mamba and gdn_flashinfer_prefill(model, device, args.gdn_prefill_backend)
    if has_mamba and any(layer.attention for layer in model.layers):
        block_size, mamba_page_padded, reason = _align_hybrid(rules, model, device, tp=tp, block_size=block_size,
                                                               kv_dtype=kv_dtype, model_dtype=model_dtype,
                                                               mamba_mode=mamba_mode, ssm_dtype=ssm_dtype,
                                                               gdn_flashinfer=gdn_fi)
    eager = args.enforce_eager
    mode = d.default_cudagraph_mode(rules, enforce_eager=eager, platform=platform, requested=args.cudagraph_mode)
    if platform == "ascend" and mode != "NONE":
        notes.append("vllm-ascend captures ACL graphs after the KV cache; vramplan sizes them like CUDA graphs")
    knobs = dict(cudagraph_capture_sizes=_tup(args.cudagraph_capture_sizes),
                 max_cudagraph_capture_size=args.max_cudagraph_capture_size,
                 prefill_cudagraph_capture_token_sizes=_tup(args.prefill_cudagraph_capture_token_sizes),
                 max_prefill_cudagraph_capture_tokens=args.max_prefill_cudagraph_capture_tokens,
                 decode_cudagraph_capture_request_sizes=_tup(args.decode_cudagraph_capture_request_sizes),
                 max_decode_cudagraph_capture_requests=args.max_decode_cudagraph_capture_requests)
    fam = family(model.family)
    if fam is not None and fam.capture_override is not None and platform == "cuda" and mode != "NONE":
        # v0.34 leaves the sizes alone when any of the six capture knobs is set; earlier releases look at two
        asked = knobs if rules.split_capture_sizes else {k: knobs[k] for k in ("cudagraph_capture_sizes",
                                                                             "max_cudagraph_capture_size")}
        override = fam.capture_override(
            v, device_capability=device.compute_capability, max_num_batched_tokens=mnbt, num_speculative_tokens=0,
            user_set=any(x is not None for x in asked.values()))
        if override:
            knobs.update(override)
            notes.append(f"{model.architecture} sets its own CUDA-graph capture sizes when none is given "
                         f"(vllm/model_executor/models/config.py: MODELS_CONFIG_MAP, verify_and_update_config)")
    sizes = () if mode == "NONE" else _capture_sizes(
        rules, mns, mnbt, mode, tp, platform, device.compute_capability, knobs["cudagraph_capture_sizes"],
        knobs["max_cudagraph_capture_size"], runner, args.performance_mode or "balanced", rules.split_capture_sizes,
        knobs["prefill_cudagraph_capture_token_sizes"], knobs["max_prefill_cudagraph_capture_tokens"],
        knobs["decode_cudagraph_capture_request_sizes"], knobs["max_decode_cudagraph_capture_requests"],
        args.max_decode_cudagraph_capture_tokens)
    estimate_runs = d.cudagraph_estimate_runs(rules, platform=platform, runner=runner, cudagraph_mode=mode,
                                              enforce_eager=eager)
    estimate = estimate_runs and d.estimate_cudagraphs_enabled(rules, env)
    if rules.cudagraph_estimate_only_when_applied:
        # vLLM v0.34.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory runs the estimate only when
        # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS applies it; under the extensible cache it is 0
        # (vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.profile_cudagraph_memory)
        estimate = estimate_runs = estimate and not extensible
    async_sched = True if args.async_scheduling is None else args.async_scheduling
    concurrent = d.max_concurrent_batches(rules, pp=pp, async_scheduling=async_sched, v2_runner=runner == "v2")
    return EngineConfig(
        tp=tp, pp=pp, dp=dp, expert_parallel=args.enable_expert_parallel,
        max_model_len=max_len, auto_max_model_len=auto, derived_max_model_len=int(derived or max_len),
        max_num_seqs=mns, max_num_batched_tokens=mnbt, gpu_memory_utilization=util,
        model_dtype=model_dtype, kv_cache_dtype=kv_dtype, quant=quant,
        block_size=block_size, block_size_reason=reason, enforce_eager=eager,
        cudagraph_mode=mode, capture_sizes=sizes, runner=runner, estimate_runs=estimate_runs,
        estimate_cudagraphs=estimate, async_scheduling=async_sched, max_concurrent_batches=concurrent,
        enable_prefix_caching=prefix, enable_chunked_prefill=chunked,
        disable_hybrid_kv_cache_manager=args.disable_hybrid_kv_cache_manager,
        mamba_cache_mode=mamba_mode, kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        num_gpu_blocks_override=args.num_gpu_blocks_override,
        pp_partition=args.env_get("VLLM_PP_LAYER_PARTITION"), platform=platform, version=v,
        mamba_page_padded=mamba_page_padded, mamba_ssm_dtype=ssm_dtype, notes=tuple(notes),
        sampler_path=d.dummy_sampler_path(rules, env, sort_sampler=rules.sort_sampler),
        extensible_kv_cache=extensible,
        gdn_flashinfer_prefill=gdn_fi,
    )


@lru_cache(maxsize=1024)
def _resolve_dtype(rules, config_dtype, platform, label, model_type, requested, capability) -> str:
    return d.resolve_dtype(rules, config_dtype, platform, label, model_type, requested=requested,
                           device_capability=capability)


@by_identity(maxsize=512)
def attention_kinds(model: ModelDescription) -> tuple[bool, object]:
    """``(any layer with extra caches (DeepSeek-V4), the first sparse attention (DSA) or None)`` of a model
    (descriptions are never mutated; asked on every plan)."""
    return (any(layer.attention is not None and layer.attention.extra_caches for layer in model.layers),
            next((layer.attention for layer in model.layers if layer.attention and layer.attention.sparse), None))


_attention_kinds = attention_kinds


def _tup(sizes):
    return None if sizes is None else tuple(sizes)


@lru_cache(maxsize=1024)
def _capture_sizes(rules, mns, mnbt, mode, tp, platform, capability, user_sizes, user_max, runner, performance_mode,
                   split, prefill_sizes, max_prefill, decode_sizes, max_decode_requests, max_decode_tokens
                   ) -> tuple[int, ...]:
    """The captured sizes (pure in its hashable arguments; a sweep asks for the same few thousands of times)."""
    sizes = tuple(d.cudagraph_capture_sizes(
        rules, max_num_seqs=mns, max_num_batched_tokens=mnbt, cudagraph_mode=mode, tp_size=tp, platform=platform,
        device_capability=capability, user_capture_sizes=user_sizes, user_max_capture_size=user_max,
        runner=runner, performance_mode=performance_mode))
    if split and sizes:
        # vLLM v0.34.0 vllm/config/vllm.py:VllmConfig._split_cudagraph_capture_sizes
        sizes = tuple(d.split_cudagraph_capture_sizes(
            sizes, max_num_seqs=mns, max_num_batched_tokens=mnbt, device_capability=capability,
            legacy_sizes=user_sizes is not None or user_max is not None,
            performance_mode=performance_mode, prefill_token_sizes=prefill_sizes, max_prefill_tokens=max_prefill,
            decode_request_sizes=decode_sizes, max_decode_requests=max_decode_requests,
            max_decode_tokens=max_decode_tokens))
    return sizes


def _check_introduced(model: ModelDescription, v: tuple[int, int, int]) -> None:
    """Refuse an architecture for a vLLM release older than the first one known to register it."""
    from ....model.families import introduced_in

    first = introduced_in(model.architecture)
    if first is not None and v < first[0]:
        asked, since = ".".join(map(str, v)), ".".join(map(str, first[0]))
        raise UnsupportedError(f"vLLM {asked} is older than {since}, the first release vramplan plans "
                               f"{model.architecture} for ({first[1]})", hint=f"plan it with --vllm-version {since} or newer")


def _v2_only_env(env: dict[str, str], notes: list[str]) -> None:
    """vLLM v0.34.0 vllm/platforms/interface.py:Platform.validate_environ: the V1 runner is gone;
    ``VLLM_USE_V2_MODEL_RUNNER`` other than ``1`` is an error, ``1`` a warning."""
    value = env.get("VLLM_USE_V2_MODEL_RUNNER")
    if value is None:
        return
    if value != "1":
        raise InvalidConfig(f"VLLM_USE_V2_MODEL_RUNNER={value} is no longer supported: Model Runner V1 has been "
                            f"removed. Unset this variable.", hint="unset VLLM_USE_V2_MODEL_RUNNER (vLLM 0.34 has "
                            "only the V2 runner), or plan --vllm-version 0.33 for the V1 runner")
    notes.append("VLLM_USE_V2_MODEL_RUNNER=1 is redundant and can be unset: Model Runner V1 has been removed.")


@dataclass(frozen=True, slots=True)
class _ModelSettings:
    model_dtype: str
    quant: QuantSpec | None
    kv_dtype: str
    max_len: int
    auto: bool
    derived: int | float | None


def _construction_time(message: str) -> bool:
    """A ``validate_parallel`` error raised by ``divide`` while building the model (not a config-time check)."""
    return "is not divisible by" in message and not message.startswith("Total number of attention heads")


def _vision_tp_error(model: ModelDescription, args: EngineArgs, rules: RuleSet) -> InvalidConfig | None:
    """The vision tower's heads over TP (model/vision.py:vision_tp_error), as the error vLLM raises."""
    if model.vision is None:
        return None
    from ....model.vision import vision_tp_error

    msg = vision_tp_error(model.vision, args.tensor_parallel_size, heads_fallback=rules.vit_heads_fallback,
                          mm_encoder_tp_mode=args.mm_encoder_tp_mode)
    if msg is None:
        return None
    hint = "vLLM asserts this while building the vision tower's attention: pick a --tensor-parallel-size that " \
           "divides its heads"
    if model.vision.supports_encoder_tp_data:
        hint += ", or pass --mm-encoder-tp-mode data"
    return InvalidConfig(msg, hint=hint)


def _model_settings(args: EngineArgs, model: ModelDescription, device: Device, rules: RuleSet, engine: str,
                    env: dict[str, str], notes: list[str]) -> _ModelSettings:
    """What every engine settles first: the parallel checks, dtype, quantization, KV dtype and max_model_len
    (``EngineArgs.create_engine_config`` -> ``ModelConfig``), each rule from engine_defaults by version."""
    from ....model.families.releases import check_architecture

    v = d._release(rules)  # the release asked for: the architecture registry and the messages name it
    check_architecture(model.architecture, v, notes)  # registry.py: is the architecture in this release?
    text = text_config_of(model.hf_config)
    vision_msg = _vision_tp_error(model, args, rules)
    try:
        d.validate_parallel(rules, num_attention_heads=model.num_attention_heads, num_kv_heads=model.num_kv_heads,
                            vocab_size=model.vocab_size, tp=args.tensor_parallel_size, pp=args.pipeline_parallel_size,
                            dp=args.data_parallel_size, num_layers=model.num_hidden_layers, platform=device.platform,
                            intermediate_size=model.intermediate_size, use_mla=model.uses_mla,
                            tie_word_embeddings=model.tie_word_embeddings)
    except InvalidConfig as e:
        # the divide() asserts of the text model (embedding, KV heads, MLP) come after the vision tower's: the
        # multimodal models build it first (e.g. v0.34.0 qwen2_5_vl.py, llava.py, gemma3_mm.py, mllama4.py)
        if vision_msg is None or not _construction_time(e.message):
            raise
    if vision_msg is not None:
        raise vision_msg
    model_dtype = _resolve_dtype(rules, model.dtype, device.platform, device.label, model.text_model_type,
                                 args.dtype or "auto", device.compute_capability)
    qcfg = model.hf_config.get("quantization_config") or text.get("quantization_config")
    quant = parse_quant(qcfg, args.quantization)
    if quant is not None and quant.method == "mxfp4":
        if engine == "v0":
            raise UnsupportedError("mxfp4 checkpoints arrived in vLLM 0.10",
                                   hint="plan it with --vllm-version 0.19 or newer")
        quant = _mxfp4_backend(quant, device, notes, rules, env,
                               activation=model.moe.activation if model.moe is not None else "")
    kv_dtype = d.resolve_kv_cache_dtype(rules, args.kv_cache_dtype or "auto", qcfg)
    if engine != "v0" and kv_dtype == "auto" and quant is not None and quant.kv_cache_dtype:
        kv_dtype = quant.kv_cache_dtype
    # max_model_len (vllm/config/model.py:_get_and_verify_max_len)
    derived, key, default_len = _max_len_defaults(text, rules)
    auto = args.max_model_len == -1
    asked = ".".join(map(str, v))
    if auto and not d.supports_auto_max_model_len(rules, engine=engine):
        raise UnsupportedError(f"--max-model-len auto arrived in vLLM 0.14 (asked for {asked})",
                               hint="give a number of tokens")
    if args.kv_cache_memory_bytes and not d.supports_kv_cache_memory_bytes(rules, engine=engine):
        raise UnsupportedError(f"--kv-cache-memory-bytes arrived in vLLM 0.11 (asked for {asked})",
                               hint="size the KV cache with --gpu-memory-utilization")
    max_len = d.verify_max_model_len(rules, None if auto else args.max_model_len, derived, env, max_len_key=key,
                                     default=default_len)
    return _ModelSettings(model_dtype=model_dtype, quant=quant, kv_dtype=kv_dtype, max_len=max_len, auto=auto,
                          derived=derived)


@by_identity(maxsize=512)
def _max_len_defaults(text: dict, rules: RuleSet) -> tuple:
    """``(derived max_model_len, its key, default max_model_len)`` for one text config (configs are never
    mutated; a plan sweep asks for the same config thousands of times)."""
    derived, key = d.derived_max_model_len_and_key(rules, text)
    return derived, key, d.default_max_model_len(rules, text)


# vLLM v0.6.4.post1 vllm/worker/model_runner.py:_BATCH_SIZES_TO_CAPTURE
_V0_CAPTURE_SIZES = (1, 2, 4) + tuple(8 * i for i in range(1, 33))


def _resolve_v0(args: EngineArgs, model: ModelDescription, device: Device, rules: RuleSet) -> EngineConfig:
    """The V0 engine's defaults (vLLM v0.6.4.post1 vllm/engine/arg_utils.py:EngineArgs.create_engine_config).

    What V0 did not have is refused here rather than planned with rules it never followed: hybrid
    Mamba layers, MLA, cross-attention, platforms other than CUDA and ROCm (and, in ``_model_settings``,
    mxfp4, auto max-model-len and ``--kv-cache-memory-bytes``).
    """
    if model.layer_kinds & {LayerKind.MAMBA, LayerKind.MLA, LayerKind.CROSS}:
        raise UnsupportedError(f"{model.name}: vramplan's V0 rules (vLLM 0.6) cover plain attention models only",
                               hint="plan it with --vllm-version 0.19 or newer")
    if device.platform not in ("cuda", "rocm"):
        raise UnsupportedError(f"vLLM 0.6 rules are modelled for CUDA and ROCm, not {device.platform}",
                               hint="plan it with --vllm-version 0.19 or newer")
    tp, pp, dp = args.tensor_parallel_size, args.pipeline_parallel_size, args.data_parallel_size
    m = _model_settings(args, model, device, rules, "v0", dict(args.env), [])
    max_len = m.max_len
    sliding = any(layer.attention is not None and layer.attention.sliding_window for layer in model.layers)
    # EngineArgs.create_engine_config: chunked prefill on by itself only past 32K tokens, on CUDA, text-only,
    # without a sliding window
    chunked = args.enable_chunked_prefill
    if chunked is None:
        chunked = (max_len > 32768 and device.platform == "cuda" and not model.is_multimodal and not sliding)
    # vllm/config.py:SchedulerConfig.__init__
    mnbt = args.max_num_batched_tokens or (512 if chunked else max(max_len, 2048))
    if args.max_num_batched_tokens is None and model.is_multimodal:
        mnbt = max(mnbt, 5120)  # _MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS
    mns = args.max_num_seqs or 256
    d.validate_scheduler(rules, max_num_batched_tokens=mnbt, max_num_seqs=mns, max_model_len=max_len,
                         enable_chunked_prefill=chunked)
    eager = args.enforce_eager
    # vllm/worker/model_runner.py:GPUModelRunnerBase.capture_model: decode batch sizes up to max_num_seqs
    sizes = () if eager else tuple(s for s in _V0_CAPTURE_SIZES if s <= max(mns, 1))
    notes = []
    if chunked and args.enable_chunked_prefill is None:
        notes.append(f"vLLM 0.6 turns chunked prefill on for max_model_len > 32768: the profile run uses {mnbt} "
                     f"tokens instead of {max(max_len, 2048)}")
    return EngineConfig(
        tp=tp, pp=pp, dp=dp, expert_parallel=False, max_model_len=max_len, auto_max_model_len=False,
        derived_max_model_len=int(m.derived or max_len), max_num_seqs=mns, max_num_batched_tokens=mnbt,
        gpu_memory_utilization=args.gpu_memory_utilization or 0.9, model_dtype=m.model_dtype,
        kv_cache_dtype=m.kv_dtype, quant=m.quant, block_size=args.block_size or 16,
        block_size_reason="--block-size" if args.block_size else "vLLM 0.6's default (vllm/config.py:CacheConfig)",
        enforce_eager=eager, cudagraph_mode="NONE" if eager else "FULL_DECODE_ONLY", capture_sizes=sizes,
        runner="v0", estimate_runs=False, estimate_cudagraphs=False, async_scheduling=False,
        max_concurrent_batches=1, enable_prefix_caching=bool(args.enable_prefix_caching),
        enable_chunked_prefill=chunked, disable_hybrid_kv_cache_manager=True, mamba_cache_mode="none",
        kv_cache_memory_bytes=None, num_gpu_blocks_override=args.num_gpu_blocks_override,
        pp_partition=args.env_get("VLLM_PP_LAYER_PARTITION"), platform=device.platform, version=d._release(rules),
        notes=tuple(notes))


def _mxfp4_backend(quant: QuantSpec, device: Device, notes: list[str], rules: RuleSet,
                   env: dict[str, str], *, activation: str = "") -> QuantSpec:
    """gpt-oss MoE kernels and the expert layout each converts the checkpoint to.

    vLLM v0.26.0 vllm/model_executor/layers/fused_moe/oracle/mxfp4.py:select_mxfp4_moe_backend tries
    FlashInfer TRT-LLM (sm100 with FlashInfer), then Triton (OAI triton_kernels, sm90 to sm10x, bundled in
    vllm/third_party from 0.14), then Marlin. ``VLLM_MXFP4_USE_MARLIN=1`` forces Marlin.

    - Marlin pads the experts (``mxfp4_round_up_hidden_size_and_intermediate_size``: hidden to 256,
      intermediate to 128).
    - Triton on Hopper swizzles values and scales (vllm/model_executor/layers/quantization/utils/mxfp4_utils.py:
      _swizzle_mxfp4, triton_kernels HopperMXValueLayout / HopperMXScaleLayout: scale rows padded to 256),
      turns the expert biases to float32, and until 0.24 keeps the loaded scales as well (``del
      layer.w13_weight_scale`` arrives in 0.25); from 0.26 the scale groups are padded to 4 first.
    """
    from dataclasses import replace as _replace

    cc = device.compute_capability
    if device.platform != "cuda" or cc is None:
        return quant
    marlin_env = env.get("VLLM_MXFP4_USE_MARLIN", "").strip().lower() in ("1", "true")
    if activation and activation != "swigluoai" and cc >= (9, 0) and cc < (10, 0):
        # vLLM v0.34.0 vllm/model_executor/layers/fused_moe/oracle/mxfp4.py:select_mxfp4_moe_backend filters by
        # activation: OAITritonExperts takes SWIGLUOAI only and FlashInfer CUTLASS no SITU
        # (experts/gpt_oss_triton_kernels_moe.py, flashinfer_cutlass_moe.py: _supports_activation); Marlin's
        # apply_moe_activation takes it (Kimi-K3's situ)
        notes.append(f"mxfp4 experts run on the Marlin kernel (the Triton and FlashInfer CUTLASS MXFP4 kernels do "
                     f"not take the {activation} activation): expert weights padded (hidden to 256, intermediate "
                     f"to 128)")
        return _replace(quant, moe_pad=(256, 128), moe_layout="marlin")
    # triton_kernels arrived inside the v0_10 span (0.10-0.16), which one rule set covers: kept by release
    if cc < (9, 0) or (cc < (11, 0) and (marlin_env or d._release(rules) < (0, 14, 0))):
        why = ("VLLM_MXFP4_USE_MARLIN=1" if marlin_env and cc >= (9, 0) else
               "no native FP4 on this GPU" if cc < (9, 0) else "triton_kernels not bundled before vLLM 0.14")
        notes.append(f"mxfp4 experts run on the Marlin kernel ({why}): expert weights padded "
                     f"(hidden to 256, intermediate to 128)")
        return _replace(quant, moe_pad=(256, 128), moe_layout="marlin")
    if cc < (10, 0):
        copy = not rules.mxfp4_triton_drops_loaded_scales
        if copy:
            notes.append("mxfp4 experts on the Triton kernel keep their loaded scales next to the swizzled ones "
                         "(vLLM before 0.25): about 1/16 of the expert bytes more")
        # the Triton backend rounds the intermediate size per partition up to 64 (1440 -> 1472 for gpt-oss at TP 2):
        # vLLM v0.14.1 vllm/model_executor/layers/quantization/mxfp4.py:Mxfp4MoEMethod.create_weights (``else``
        # branch), v0.19.0 / v0.26.0 / v0.34.0 vllm/model_executor/layers/fused_moe/oracle/mxfp4.py:
        # mxfp4_round_up_hidden_size_and_intermediate_size (``else``); the hidden size is kept
        return _replace(quant, moe_layout="triton_hopper", moe_scale_copy=copy, moe_pad=(1, 64),
                        moe_scale_pad_k=4 if rules.mxfp4_scale_pad_k4 else 1)
    return quant


def _mamba_ssm_dtype(args: EngineArgs, model: ModelDescription, v: tuple[int, int, int]) -> str | None:
    """The SSM state dtype: ``--mamba-ssm-cache-dtype`` when given (vLLM's CacheConfig; the Qwen3.5 and NemotronH
    config hooks only fill it in while it is ``auto``), else the model's own (config key, or its release fallback);
    None keeps each spec's dtype."""
    flag = getattr(args, "mamba_ssm_cache_dtype", None)
    spec = next((layer.mamba for layer in model.layers if layer.mamba), None)
    if flag not in (None, "", "auto"):
        if spec is not None and spec.ssm_dtypes and str(flag) not in spec.ssm_dtypes:
            # vLLM v0.34.0 vllm/model_executor/layers/mamba/mamba_utils.py:MambaStateDtypeCalculator.kda_state_dtype
            allowed = ", ".join(("auto",) + spec.ssm_dtypes[:-1]) + ", and " + spec.ssm_dtypes[-1]
            raise InvalidConfig(f"KDA recurrent state supports only {allowed}; got {flag}",
                                hint="--mamba-ssm-cache-dtype " + " or ".join(("auto",) + spec.ssm_dtypes))
        return str(flag)
    if spec is None or spec.state_dtype or not spec.state_dtype_by_release:
        return None
    return [dt for since, dt in spec.state_dtype_by_release if tuple(v[:3]) >= since][-1]


def _align_hybrid(rules: RuleSet, model: ModelDescription, device: Device, *, tp: int, block_size: int, kv_dtype: str,
                  model_dtype: str, mamba_mode: str, ssm_dtype: str | None = None,
                  gdn_flashinfer: bool = False) -> tuple[int, int | None, str]:
    """Raise the attention block size so one attention page holds at least one mamba state, and pad the
    mamba page to match (vLLM v0.26.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size;
    vllm-ascend: patch_mamba_config.verify_and_update_config)."""
    from ....rules.kv import _kv_bytes, _mamba_state_bytes
    from ....rules.weights import kv_heads_per_rank

    attn_layer = next(layer for layer in model.layers if layer.attention)
    attn = attn_layer.attention
    mamba = next(layer.mamba for layer in model.layers if layer.mamba)
    kv_b = _kv_bytes(kv_dtype, model_dtype)
    heads = kv_heads_per_rank(attn.num_kv_heads, tp)
    per_token = int(heads * (attn.head_size + (attn.head_size_v or attn.head_size)) * kv_b)
    if attn_layer.kind is LayerKind.MLA:
        # vLLM v0.34.0 vllm/platforms/interface.py:Platform._align_hybrid_block_size: with model_config.use_mla the
        # one-token page is MLAAttentionSpec(block_size=1, num_kv_heads=1, head_size=kv_lora + rope): no V half
        # (Kimi-K3, the only MLA + mamba hybrid modelled). It builds that spec without ``state_content_bytes``, from
        # cache_config.cache_dtype, so an fp8 cache counts 576 bytes here even where the sparse layers store the
        # 656-byte fp8_ds_mla record (Kimi-K3.1 on FLASHMLA_SPARSE)
        per_token = int(attn.head_size * kv_b)
    k_per_token = int(heads * attn.head_size * kv_b)
    page = _mamba_state_bytes(mamba, tp=tp, model_dtype=model_dtype, ssm_dtype=ssm_dtype)
    conv = page - _mamba_state_bytes(mamba, tp=tp, model_dtype=model_dtype, ssm_dtype=ssm_dtype, conv_only=False,
                                     ssm_only=True)
    # Only GDN layers export prefill checkpoints (vLLM v0.33.0 vllm/model_executor/layers/mamba/abstract.py:
    # MambaBase.get_prefill_checkpoint_alignment is None; qwen_gdn_linear_attn.py overrides it with the FlashInfer
    # alignment), and get_mamba_prefill_checkpoint_alignment is None unless every mamba layer declares one.
    hopper = gdn_flashinfer
    bs, padded = d.hybrid_attention_block_size(
        rules, block_size=block_size, attn_page_bytes_per_token=per_token, mamba_page_bytes=page,
        mamba_cache_mode=mamba_mode, platform=device.platform, use_mla=attn_layer.kind is LayerKind.MLA,
        prefill_checkpoint_alignment=64 if hopper else None,
        ssm_page_bytes=page - conv, conv_page_bytes=conv, attn_k_bytes_per_token=k_per_token)
    return bs, padded, f"attention block raised to {bs} tokens so a page holds one mamba state ({page:,} bytes)"


def gdn_flashinfer_prefill(model: ModelDescription, device: Device, backend: str | None = None) -> bool:
    """Every recurrent layer is a GDN layer and FlashInfer's GDN prefill runs, which is the default on Hopper
    (vLLM v0.34.0 qwen_gdn_linear_attn.py:_resolve_gdn_prefill_backend: ``--gdn-prefill-backend`` ``auto`` or
    ``flashinfer`` on SM90; any other backend, e.g. ``triton``, runs FLA's Triton kernels; on SM10x/SM12x only
    with head_k_dim 128, not modelled). Its checkpoints set the block alignment (above) and a page per request
    (:func:`prefill_checkpoint_blocks`)."""
    if backend not in (None, "", "auto", "flashinfer"):
        return False
    cc = device.compute_capability
    return (cc is not None and cc[0] == 9
            and all(layer.mamba.kind == "gdn" for layer in model.layers if layer.mamba))


def prefill_checkpoint_blocks(model: ModelDescription, *, gdn_flashinfer: bool) -> int:
    """``MambaSpec.num_prefill_checkpoint_blocks`` of the model's recurrent layers, counted per request in
    ``align`` mode where the rule set's ``prefill_checkpoint_blocks`` is on (0.33+); a family's own
    ``mamba_checkpoint_blocks`` (Kimi-K3's FlashKDA) takes precedence.

    - Mamba-2: ``MambaMixer2.get_kv_cache_spec`` always sets 1 (v0.33.0/v0.34.0 mamba_mixer2.py). Seen on vLLM
      0.34.0: Nemotron-3-Nano trimmed logs 28,315 blocks and 10,543,476 tokens at max-model-len 4096, i.e. 11
      blocks a request = 3 Mamba-2 groups x 3 pages + 2 attention pages (data/truth/logs/h100e/nemo3nano_trim).
    - GDN: ``QwenGatedDeltaNet.get_kv_cache_spec`` sets 1 when FlashInfer's prefill exports checkpoints
      (``_exports_checkpoints``; ``gdn_flashinfer``: :func:`gdn_flashinfer_prefill`, resolved once in
      ``EngineConfig.gdn_flashinfer_prefill``).
    """
    kinds = {layer.mamba.kind for layer in model.layers if layer.mamba}
    if kinds == {"mamba2"}:
        return 1
    return 1 if kinds == {"gdn"} and gdn_flashinfer else 0
