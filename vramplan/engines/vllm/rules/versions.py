"""Rule sets: how vLLM's startup arithmetic differs from one version to the next.

Each supported version is a :class:`RuleSet` (a frozen record of switches) defined in
its own module (``v0_19``, ``v0_26``, ``v0_33``); a later module starts from the earlier
one and changes only what vLLM changed, saying where. :func:`for_version` picks the
newest rule set not newer than the version asked for (as rich picks Unicode tables).

Every change point is a named :class:`RuleSet` field (default: the older behaviour; its docstring cites the vLLM
file and function and the first release), switched in the rule file of the release that introduced it. Planning
code reads the fields, never the release number (tests/unit/test_version_mechanism.py). Adding a release: one
``v0_NN.py`` plus its tests (docs/vllm-rules.md, "Adding a release").
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache

from ....errors import UnsupportedError
from .comm import COMM_V019, CommRules

__all__ = ["RuleSet", "SUPPORTED", "for_version", "parse_version", "DEFAULT_VERSION", "default_version"]

# (module, version) oldest first
SUPPORTED: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("v0_6", (0, 6, 0)),
    ("v0_9", (0, 9, 0)),
    ("v0_10", (0, 10, 0)),
    ("v0_19", (0, 19, 0)),
    ("v0_20", (0, 20, 0)),
    ("v0_21", (0, 21, 0)),
    ("v0_22", (0, 22, 0)),
    ("v0_23", (0, 23, 0)),
    ("v0_24", (0, 24, 0)),
    ("v0_25", (0, 25, 0)),
    ("v0_26", (0, 26, 0)),
    ("v0_27", (0, 27, 0)),
    ("v0_28", (0, 28, 0)),
    ("v0_29", (0, 29, 0)),
    ("v0_30", (0, 30, 0)),
    ("v0_32", (0, 32, 0)),
    ("v0_33", (0, 33, 0)),
    ("v0_34", (0, 34, 0)),
)
# The three releases read end to end; the others are the change points found between them
# (docs/vllm-rules.md, "Where the rules changed").
STUDIED = ((0, 19, 0), (0, 26, 0), (0, 33, 0), (0, 34, 0))
DEFAULT_VERSION = "0.34.0"
# The default release per platform where it is not DEFAULT_VERSION. No vllm-ascend release runs on vLLM 0.34
# (the newest on PyPI is 0.23.0.post1) and 0.34's extensible KV cache is CUDA/ROCm only
# (vLLM v0.34.0 vllm/config/vllm.py:VllmConfig._resolve_extensible_kv_cache), so Ascend keeps 0.33.0.
PLATFORM_DEFAULT_VERSION: dict[str, str] = {"ascend": "0.33.0"}
# Rule sets that stop before the next one starts: module -> first release they do not cover.
# v0_6 is the V0 engine's old profiler (0.6.0-0.6.4); 0.6.5 rewrote determine_num_available_blocks
# around a baseline snapshot and 0.8 made V1 the default, neither of which vramplan models.
# v0_9 is vllm-ascend 0.9-0.13's own NPU worker (vllm-ascend 0.14 moved to vLLM's memory_profiling).
# v0_10 is the V1 engine of 0.10-0.16 as far as its sampler and mxfp4 paths differ from v0.19.
ENDS: dict[str, tuple[int, int, int]] = {"v0_6": (0, 6, 5), "v0_9": (0, 14, 0), "v0_10": (0, 17, 0)}
# Rule sets read for one platform only: module -> platforms.
PLATFORMS: dict[str, tuple[str, ...]] = {"v0_9": ("ascend",), "v0_10": ("cuda", "rocm")}
# Releases between the spans, planned with the neighbouring rule set that shares their engine and
# sampler, and marked as stand-ins (the plan says which rules it used): (first, end, platforms, module).
GAPS: tuple[tuple[tuple[int, int, int], tuple[int, int, int], tuple[str, ...], str], ...] = (
    ((0, 6, 5), (0, 8, 0), ("cuda", "rocm"), "v0_6"),     # V0 engine, memory_profiling-era profiler
    ((0, 8, 0), (0, 10, 0), ("cuda", "rocm"), "v0_10"),   # V1 by default from 0.8, PyTorch-sort sampler
    ((0, 17, 0), (0, 19, 0), ("cuda", "rocm"), "v0_19"),  # Triton top-k/top-p sampler from 0.17
    ((0, 14, 0), (0, 19, 0), ("ascend",), "v0_19"),       # vllm-ascend on vLLM's memory_profiling
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """The switches that make one vLLM version's startup arithmetic differ from another's."""

    version: tuple[int, int, int]
    """The vLLM release these rules were read from."""
    stand_in: bool = False
    """True when the requested release has no rule set of its own and a neighbouring one plans it."""
    engine: str = "v1"
    """``v1`` (the V1 engine: EngineCore, KV cache groups) or ``v0`` (the V0 LLMEngine of vLLM 0.6)."""
    profile_runs_sampler: bool = True
    """Whether the profile run samples (vllm-ascend <= 0.13 runs ``compute_logits`` only)."""
    sort_sampler: bool = False
    """The dummy sampler's top-k/top-p sorts the float32 logits in PyTorch unless FlashInfer is used
    (vLLM < 0.17: ``topk_topp_sampler.py:apply_top_k_top_p``); later releases run the Triton kernel the
    activation fit measured."""
    compiled_embedding_copy: bool = True
    """The compiled V2 profile run of a text-only model holds an embedding-sized copy and two ``[T, H]`` buffers
    (measured on vLLM 0.26, estimate/activation.py ``compiled``). Off from 0.33 (torch 2.14): 0.34's one compiled
    startup (data/truth/logs/h100e/q8b_g_unset) logs the eager peak, 1.04 GiB, where the copy would make it 1.31;
    0.33, on the same torch, was not measured compiled."""
    v2_graph_pool_base_gib: float | None = None
    """The V2 runner's CUDA-graph pool, its part that does not grow with layers (at 8,192 batched tokens). None: the
    vLLM 0.26 fit (estimate/overheads.py ``V2_POOL_BASE_GIB``, 0.38 GiB over six runs). 0.10 from 0.33 (torch 2.14):
    Qwen3-0.6B compiled logged 0.24 GiB on 0.33 (data/truth/logs/h100g/q06b_g_base), Qwen3-8B 0.70 on 0.34
    (h100e/q8b_g_unset), i.e. 0.12 and 0.08 above the 0.26 per-layer part, where 0.26 logged 0.50 and 1.00."""
    mamba_blocks_check: bool = True
    """The ``max_num_seqs exceeds available Mamba cache blocks`` check (absent from vLLM 0.12)."""
    npu_hybrid_double_alloc: bool = False
    """vllm-ascend 0.12-0.13 ``_allocate_kv_cache_tensors``: a KV tensor shared by attention and linear-attention
    layers gets one buffer per kind (twice the planned bytes)."""
    requested: tuple[int, int, int] = (0, 0, 0)
    """The version the user asked for (may be newer than ``version``)."""
    estimate_cudagraphs_default: bool
    """Default of ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` (vllm/envs.py)."""
    non_kv_formula: str
    """``three_part``: weights + torch peak increase + non-torch increase (v0.19-v0.26);
    ``consumed``: free-memory delta + transient peak headroom (v0.33);
    ``absolute_peak``: no init snapshot and no startup check, ``KV = total x util - (torch allocated peak,
    weights included, + every non-torch byte on the device)`` (the V0 engine of vLLM 0.6; vllm-ascend
    <= 0.13 ``NPUWorker.determine_available_memory``, which also clamps at 0)."""
    graph_estimate_inside_profile: bool
    """v0.26: the graph estimate runs inside ``memory_profiling`` (its leftovers count as non-torch)."""
    null_block_in_check: bool
    """v0.33 reserves the null block in the max-model-len check (``available - bytes_per_block``)."""
    capacity_v033: bool
    """Concurrency = ``num_blocks / sum_g cdiv(max_mem_g, page_g)`` (v0.33) vs the v0.26 form."""
    v2_profiles_encoder: bool
    """Whether the V2 runner profiles the multimodal encoder (v0.27+)."""
    kv_capacity_one_line: bool
    """``GPU KV cache size: N tokens, Maximum concurrency ...`` on one line (v0.28+)."""
    kv_tokens_from_concurrency: bool = True
    """The logged token count is ``int(concurrency x max_model_len)`` (v0.21+); before,
    ``num_blocks // num_groups x min_block_size``."""
    override_in_check: bool = True
    """``num_gpu_blocks_override`` replaces the available memory in auto-fit and the max-len check (v0.21+)."""
    models_typo: bool = False
    """The max-len error says "models's" (v0.19-v0.21)."""
    cublas_handles_in_init_device: bool
    """v0.33 creates cuBLAS/cuBLASLt handles in ``init_device`` before the snapshot."""
    default_gpu_memory_utilization: float
    comm: CommRules = COMM_V019
    """Multi-GPU communication buffers and defaults (rules/comm.py): custom all-reduce, symmetric memory,
    FlashInfer all-reduce; where they fall relative to the init snapshot is in estimate/multi_gpu.py."""
    extensible_kv_cache_platforms: tuple[str, ...] = ()
    """Platforms where ``enable_extensible_kv_cache`` defaults to on (vLLM 0.34: CUDA and ROCm,
    ``VllmConfig._resolve_extensible_kv_cache``); the KV cache is then sized after warm-up and graph capture
    (``vramplan.engines.vllm.sizing.extensible``)."""
    default_block_size: int = 16
    """``CacheConfig.DEFAULT_BLOCK_SIZE``, the size each attention backend's ``get_preferred_block_size`` starts
    from (16 until 0.33, 64 from 0.34)."""
    v1_model_runner: bool = True
    """Whether the V1 model runner exists (removed in 0.34: ``VLLM_USE_V2_MODEL_RUNNER=0`` is refused by
    ``Platform.validate_environ``, ``=1`` warns)."""
    cudagraph_estimate_only_when_applied: bool = False
    """``profile_cudagraph_memory`` runs only when ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` applies it (v0.34;
    before, it ran and was subtracted only with the variable)."""
    split_capture_sizes: bool = False
    """Prefill token sizes and decode request sizes resolved apart, with wide defaults on SM100 (v0.34
    ``VllmConfig._split_cudagraph_capture_sizes``; ``engine_defaults.split_cudagraph_capture_sizes``)."""
    kv_memory_hint_in_errors: bool = False
    """The KV-memory errors end with ``_more_kv_cache_memory_hint`` and "Decreasing `max_model_len` also reduces
    what is needed." (v0.34 ``kv_cache_planning._check_enough_kv_cache_memory``)."""
    fp8_kv_load_workspace: bool = True
    """Loading with an fp8 KV cache allocates ~32 MiB beyond the tensors on CUDA (measured on 0.26); not on 0.34
    (estimate/overheads.py ``load_workspaces``)."""
    load_max_split_mib: int | None = None
    """``max_split_size_mb`` the model is loaded under (v0.21+: 20, vllm/v1/worker/gpu_worker.py:Worker.load_model
    ``_scoped_allocator_max_split``); None: PyTorch's default, no limit. Used by the allocator-block rounding of
    the weights (rules/allocator.py)."""
    tower_first_pp_stage_only: bool = False
    """With the V2 runner the vision tower is built on the first pipeline stage only (v0.33.0 vllm/model_executor/
    models/interfaces.py ``SupportsMultiModal._mark_tower_model``; 0.32 builds it on every stage)."""
    deepstack_needs_tower: bool = False
    """Qwen3-VL's deepstack buffers are allocated only when the tower is built (``use_deepstack`` is False for a
    ``StageMissingLayer``: v0.31.0-v0.34.0 qwen3_vl.py; v0.26.0 allocates them whatever the tower)."""
    """Loading with an fp8 KV cache allocates ~32 MiB beyond the tensors on CUDA (measured on 0.26); not on 0.34
    (estimate/overheads.py ``load_workspaces``)."""
    kimi_k3_dsa: bool = False
    """Kimi-K3.1's DSA (``dsa_config``): a sparse-attention indexer on the MLA layers, its indexer cache packed
    block-outermost beside the MLA pages (v0.34 vllm/models/kimi_k3/nvidia/dsa.py, common/dsa_cache.py
    ``KimiK3IndexerBackend.supported_kv_cache_layouts``); v0.33 has no indexer (its ``KimiLinearConfig`` takes
    no ``dsa_config``). Read by the kimi_k3 family's ``for_release`` view (model/families/kimi_k3_dsa.py)."""
    moe_workspace_manager: bool = False
    """The fused-MoE workspace is the workspace manager's, sized by the experts' ``workspace_shapes``:
    ``top_k x (max(I, H) + max(2 I, H))`` per token, kept after the profile run (v0.19.0-v0.34.0
    fused_moe/modular_kernel.py ``_allocate_buffers``, vllm/v1/worker/workspace.py); off: the 0.26-fitted
    ``top_k x (3 I + H)`` (estimate/activation.py ``fused_moe_workspace_per_token``)."""
    mla_profile_dummy: bool = False
    """The profile run's MLA layers allocate the chunked-prefill context's up-projection size,
    ``rows x heads x (qk_nope + v)``, instead of running attention (v0.19.0-v0.34.0 mla_attention.py
    ``forward_impl`` with ``attn_metadata is None``; estimate/activation.py ``mla_profile``)."""
    sampler_fp32_warmup_pass: bool = False
    """The V2 runner's dummy sampler runs a second pass with ``SamplingParams.for_sampler_warmup()`` that copies
    the logits to float32 (v0.33.0/v0.34.0 vllm/v1/worker/gpu/model_runner.py ``_dummy_sampler_run``; v0.26.0
    runs the default pass only)."""
    flashkda_prefill_workspace: bool = False
    """Kimi-K3's FlashKDA prefill reserves its views in the shared workspace while the model is built (v0.34
    vllm/models/kimi_k3/nvidia/kda.py ``KimiK3DeltaAttention.__init__``); v0.33 reserves nothing there."""
    # ---- change points of the general V1 line (0.20 and later). Each defaults to the older behaviour and is
    # switched in the rule file of the release that introduced it (docs/vllm-rules.md, "Where the rules changed").
    batched_dp_moe_batch_default: bool = False
    """Batched data-parallel MoE gets its own ``max_num_batched_tokens`` default (v0.20: vllm/engine/arg_utils.py
    ``EngineArgs._set_default_max_num_seqs_and_batched_tokens_args``)."""
    hybrid_block_from_backend: bool = False
    """Hybrid models take the attention backend's preferred block size instead of 16 (v0.20:
    vllm/platforms/interface.py ``Platform.update_block_size_for_backend``)."""
    hybrid_align_kernel_block: bool = False
    """The hybrid attention block aligns to ``max(kernel block alignment, block size)`` (v0.20:
    vllm/platforms/interface.py ``Platform._align_hybrid_block_size``); before, 16 or the MLA kernel's 64/128
    (v0.19 vllm/model_executor/models/config.py ``HybridAttentionMambaModelConfig.verify_and_update_config``)."""
    spec_decode_rounding_any_runner: bool = False
    """Capture sizes are rounded to the speculative query length for every FULL decode mode and runner (v0.20:
    vllm/config/compilation.py ``CompilationConfig.adjust_cudagraph_sizes_for_spec_decode``); v0.19 only for the
    V1 runner's separate decode routine."""
    mimo_v2_v_head_unpadded: bool = False
    """MiMo-V2's KV cache keeps V at ``v_head_dim`` (v0.20: mimo_v2_flash.py gives ``Attention`` ``head_size_v``);
    v0.18/v0.19 padded V to the K head size (``torch.nn.functional.pad(v, ...)``). Applied by the family's
    ``for_release`` view (model/families/mimo_v2.py)."""
    capture_max_num_tokens: bool = False
    """``max_num_batched_tokens`` is added to the capture sizes when it fits (v0.21: vllm/config/vllm.py
    ``VllmConfig._set_cudagraph_sizes``, "ensure max_num_tokens is captured")."""
    graph_estimate_on_rocm: bool = False
    """``profile_cudagraph_memory`` also runs on ROCm (v0.21: vllm/v1/worker/gpu_worker.py
    ``Worker.determine_available_memory``; v0.19-v0.20 skip it there)."""
    mm_prefix_lm_min_batched_tokens: bool = False
    """Prefix-LM multimodal models raise ``max_num_batched_tokens`` to their minimum (v0.22:
    vllm/engine/arg_utils.py ``EngineArgs._get_min_mm_batched_tokens``)."""
    v2_runner_auto: bool = False
    """``VLLM_USE_V2_MODEL_RUNNER`` unset means automatic (v0.22: vllm/envs.py, vllm/config/vllm.py
    ``VllmConfig.use_v2_model_runner``); before, unset means 0."""
    v2_default_archs: frozenset[str] = frozenset()
    """The architectures the automatic rule puts on the V2 runner (vllm/config/vllm.py
    ``VllmConfig._is_default_v2_model_runner_model``: v0.22 Qwen3; v0.23 Llama/Mistral/Qwen3; v0.24 a list with
    MoE models; v0.25 a short MoE list for the MoE case)."""
    v2_default_rule: str = "dense_unquantized"
    """How ``v2_default_archs`` is applied: ``dense_unquantized`` (v0.22-v0.23: listed, dense, unquantized),
    ``listed`` (v0.24: listed), ``generate_non_hybrid`` (v0.25: any non-hybrid, not attention-free model that is
    dense or listed)."""
    kv_no_memory_text_cpu_note: bool = False
    """The KV-memory errors carry the v0.22 wording (the CPU-backend note, no "models's" typo;
    vllm/v1/core/kv_cache_utils.py ``_check_enough_kv_cache_memory``)."""
    decode_rounds_skip_v2: bool = False
    """The spec-decode capture-size rounding no longer applies to the V2 runner (v0.25:
    vllm/config/compilation.py ``CompilationConfig.adjust_cudagraph_sizes_for_spec_decode``)."""
    flash_attn_xpu_block_64: bool = False
    """FlashAttention on XPU prefers 64-token blocks (v0.26: vllm/v1/attention/backends/flash_attn.py
    ``FlashAttentionBackend.get_preferred_block_size``)."""
    modelopt_nvfp4_kv: bool = False
    """A ModelOpt ``kv_cache_scheme`` of 4-bit floats means an ``nvfp4`` KV cache (v0.26: vllm/config/cache.py /
    ModelOpt config normalisation)."""
    admission_counts_concurrent_batches: bool = False
    """Sliding-window and chunked-local admission count ``max_concurrent_batches x max_num_batched_tokens``
    in-flight tokens (v0.26: vllm/v1/kv_cache_interface.py ``max_admission_blocks_per_request``)."""
    mamba_all_counts_spec_blocks: bool = False
    """``mamba_cache_mode="all"`` adds the speculative blocks per request (v0.26: vllm/v1/kv_cache_interface.py
    ``MambaSpec.max_memory_usage_bytes``)."""
    transformers5: bool = False
    """The release pins transformers 5, whose config classes read ``--hf-overrides`` differently (v0.26:
    requirements/common.txt)."""
    plamo2_fp16: bool = False
    """PLaMo 2 leaves the float16-unsupported list (v0.27: vllm/config/model.py ``_FLOAT16_NOT_SUPPORTED_MODELS``)."""
    large_batch_tier: bool = False
    """A >= 160 GiB device gets the large batch-default tier (v0.28: vllm/engine/arg_utils.py
    ``EngineArgs.get_batch_defaults``)."""
    sm100_capture_max_1024: bool = False
    """SM100/SM110 devices capture up to 1024 (v0.28: vllm/config/vllm.py ``VllmConfig._set_cudagraph_sizes``)."""
    hybrid_prefix_caching_default: bool = False
    """Hybrid (attention + mamba/GDN) models default to prefix caching (v0.28: vllm/engine/arg_utils.py
    ``EngineArgs._set_default_chunked_prefill_and_prefix_caching_args``)."""
    sliding_window_extra_retained: bool = False
    """Sliding-window admission adds the extra retained tokens (v0.28: vllm/v1/kv_cache_interface.py
    ``SlidingWindowSpec.max_admission_blocks_per_request``)."""
    uniform_decode_capture_sizes: bool = False
    """Uniform-decode capture sizes are added for speculative decoding (v0.29: vllm/config/vllm.py
    ``VllmConfig._set_cudagraph_sizes``)."""
    v2_runner_estimates_graphs: bool = False
    """The V2 runner's ``profile_cudagraph_memory`` measures instead of returning 0 (v0.29:
    vllm/v1/worker/gpu/model_runner.py ``GPUModelRunner.profile_cudagraph_memory``)."""
    v2_runner_every_model: bool = False
    """Automatic V2 runner for every model unless a feature is unsupported (v0.29: vllm/config/vllm.py
    ``VllmConfig.use_v2_model_runner``)."""
    rope_scaling_factor_not_applied: bool = False
    """YaRN-family rope scaling no longer multiplies ``max_position_embeddings`` (v0.30: vllm/config/model.py
    ``_get_and_verify_max_len``)."""
    sp_capture_sizes_unchanged: bool = False
    """Sequence parallelism no longer filters or rounds the capture sizes to the TP size (v0.32: vllm/config/vllm.py
    ``VllmConfig.update_sizes_for_sequence_parallelism`` removed)."""
    mamba_cache_mode_all_removed: bool = False
    """``mamba_cache_mode="all"`` no longer exists (v0.32: vllm/config/cache.py, vllm/model_executor/models/config.py
    ``MambaModelConfig.verify_and_update_config``)."""
    v2_runner_rocm_dsa: bool = False
    """DeepSeek-V3.2/V4 run on the V2 runner on ROCm too (v0.32: vllm/config/vllm.py
    ``VllmConfig.use_v2_model_runner``)."""
    mrope_positions_factor: bool = False
    """M-RoPE's cos/sin cache has ``max_position x positions_factor`` rows, which Qwen3-VL, Qwen3-VL-MoE and Qwen3.5
    pass as ``mrope_positions_factor(vllm_config)``: 1, or 4 with video pruning (v0.32:
    vllm/model_executor/layers/rotary_embedding/mrope.py ``MRotaryEmbedding.__init__``,
    vllm/model_executor/models/qwen3_vl.py ``mrope_positions_factor``); before, ``max_position x 4`` for every
    M-RoPE model (v0.31.0 ``MRotaryEmbedding.__init__``). Applied by the families' ``for_release`` views."""
    gb10_small_batch_tier: bool = False
    """GB10 (SM 12.1) keeps the small batch-default tier (v0.33: vllm/engine/arg_utils.py
    ``EngineArgs.get_batch_defaults``)."""
    fa4_head256_block: bool = False
    """FlashAttention 4 on SM100/SM110 with head size 256 prefers a larger block (v0.33:
    vllm/v1/attention/backends/flash_attn.py ``FlashAttentionBackend.get_preferred_block_size``)."""
    hybrid_mla_align_128: bool = False
    """MLA hybrids align their attention block to at least 128 (v0.33: vllm/platforms/interface.py
    ``Platform._align_hybrid_block_size``, TRTLLM/FlashInfer MLA)."""
    prefill_checkpoint_blocks: bool = False
    """Mamba ``align`` mode aligns to and reserves prefill checkpoint blocks (v0.33: vllm/platforms/interface.py
    ``Platform._align_hybrid_block_size``; vllm/v1/kv_cache_interface.py ``MambaSpec.max_memory_usage_bytes``)."""
    graph_estimate_on_xpu: bool = False
    """``profile_cudagraph_memory`` also runs on XPU (v0.33: vllm/v1/worker/gpu_worker.py
    ``Worker.determine_available_memory``, ``is_xpu`` added)."""
    kv_dtypes_v026: bool = False
    """``--kv-cache-dtype`` takes the v0.26 choices (vllm/config/cache.py ``CacheDType``)."""
    kv_dtypes_v033: bool = False
    """``--kv-cache-dtype`` takes the v0.33 choices (vllm/config/cache.py ``CacheDType``)."""
    mxfp4_triton_drops_loaded_scales: bool = False
    """mxfp4 experts on the Hopper Triton kernel no longer keep their loaded scales beside the swizzled ones
    (v0.25: vllm/model_executor/layers/quantization/mxfp4.py ``Mxfp4MoEMethod.process_weights_after_loading``)."""
    mxfp4_scale_pad_k4: bool = False
    """The Hopper Triton mxfp4 scales are padded to a multiple of 4 along K (v0.26:
    vllm/model_executor/layers/quantization/utils/mxfp4_utils.py ``_swizzle_mxfp4``)."""
    vit_heads_fallback: bool = False
    """``is_vit_use_data_parallel(num_heads)``: a vision tower whose model file passes its head count is built
    whole on every rank (data parallel) when TP does not divide the heads (v0.26: vllm/model_executor/models/
    vision.py ``is_vit_use_data_parallel``; v0.25.0 and older take no argument). Which towers pass their heads is
    the family's (``VisionSpec.extra["dp_when_heads_indivisible"]``)."""
    v2_load_log_says_memory: bool = False
    """The V2 runner's "Model loading took N GiB memory" line says "memory" (v0.33:
    vllm/v1/worker/gpu/model_runner.py ``GPUModelRunner.load_model``)."""
    newer_than_read: bool = False
    """True when the requested release is newer than the newest rule set (these rules stand in for it)."""

    @property
    def label(self) -> str:
        return "v" + ".".join(str(x) for x in self.version)

    @property
    def stand_in_note(self) -> str | None:
        """The warning a plan carries when these rules stand in for a release vramplan has not read."""
        asked = ".".join(map(str, self.requested))
        if self.newer_than_read:
            return (f"vLLM {asked} is newer than the newest rule set vramplan has: planned with the {self.label} "
                    f"rules standing in; what changed after {self.label[1:]} is not modelled")
        if not self.stand_in:
            return None
        return (f"vLLM {asked} has no rule set of its own: planned with the {self.label} rules, the nearest with "
                f"the same engine and sampler; figures that changed in between are not modelled")

    def cite(self, path: str, symbol: str) -> str:
        """A citation of a vLLM rule in this version: ``vLLM v0.26.0 vllm/...py:symbol``."""
        return _cite(self.version, path, symbol)


@lru_cache(maxsize=512)
def _cite(version: tuple[int, int, int], path: str, symbol: str) -> str:
    return f"vLLM v{'.'.join(str(x) for x in version)} {path}:{symbol}"


def _span(module: str, version: tuple[int, int, int]) -> str:
    first = ".".join(map(str, version))
    if module in ENDS:
        end = ENDS[module]
        last = f"{end[0]}.{end[1]}.{end[2] - 1}" if end[2] else f"{end[0]}.{end[1] - 1}.x"
        what = {"v0_6": "V0 engine", "v0_9": "vllm-ascend", "v0_10": "V1, sampler and mxfp4 rules"}[module]
        return f"{first}-{last} ({what})"
    return first


_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | tuple[int, ...]) -> tuple[int, int, int]:
    if isinstance(text, tuple):
        return tuple((list(text) + [0, 0, 0])[:3])  # type: ignore[return-value]
    m = _VERSION.match(str(text).strip())
    if not m:
        raise UnsupportedError(f"not a vLLM version: {text!r}", hint="write e.g. 0.26.0 or 0.33")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@lru_cache(maxsize=64)
def for_version(text: str | tuple[int, ...] | None = None, *, allow_older: bool = False,
                platform: str = "cuda") -> RuleSet:
    """The rule set for vLLM ``text`` (default: the newest supported).

    Versions between two supported ones use the older rule set. A release between the spans
    (:data:`GAPS`) gets its neighbouring rule set, marked ``stand_in``. Older releases are refused
    unless ``allow_older`` (then the oldest general rule set stands in).
    """
    wanted = parse_version(text or default_version(platform))
    # the newest rule set of this platform that starts at or before the release (SUPPORTED is oldest first);
    # a closed span must also reach it
    started = [m for m, v in SUPPORTED if v <= wanted and platform in PLATFORMS.get(m, (platform,))]
    chosen = started[-1] if started and (started[-1] not in ENDS or wanted < ENDS[started[-1]]) else None
    stand_in = False
    if chosen is None:
        gap = next((m for first, end, plats, m in GAPS if first <= wanted < end and platform in plats), None)
        if gap is not None:
            chosen, stand_in = gap, True
    if chosen is None:
        if not allow_older:
            raise UnsupportedError(
                f"vLLM {'.'.join(map(str, wanted))} has no rule set in vramplan",
                hint="supported: " + ", ".join(_span(m, v) for m, v in SUPPORTED
                                               if m not in PLATFORMS or platform in PLATFORMS[m])
                + " (a release between two single versions uses the older one's rules; releases between the "
                "spans use a neighbouring span's rules, with a warning)",
            )
        # the nearest newer general rule set (the accuracy benchmark reports such cases apart)
        chosen = next((m for m, v in SUPPORTED if v > wanted and m not in PLATFORMS and m not in ENDS),
                      SUPPORTED[-1][0])
        stand_in = True
    rules: RuleSet = importlib.import_module(f"{__package__}.{chosen}").RULES
    from dataclasses import replace

    # a release past the newest rule set's minor line (0.35.0 when the newest is 0.34.0) is planned by it, with a warning
    newest = max(v for m, v in SUPPORTED if platform in PLATFORMS.get(m, (platform,)) and m not in ENDS)
    newer = not stand_in and wanted[:2] > newest[:2]
    return replace(rules, requested=wanted, stand_in=stand_in, newer_than_read=newer)


def default_version(platform: str = "cuda") -> str:
    """The release a plan uses when none is given (:data:`DEFAULT_VERSION`, or the platform's own)."""
    return PLATFORM_DEFAULT_VERSION.get(platform, DEFAULT_VERSION)
