"""SGLang's startup rules per release, as data.

Every field is a change point between releases, with the file and function it comes from. Planning code
asks the rule set, never the version number. Two releases are modelled: 0.5.17 (the last on torch 2.11)
and 0.5.23 (the newest read). A release between them gets the newest rule set at or below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import FlagError

__all__ = ["SGLangRules", "RULE_SETS", "rules_for", "SUPPORTED", "DEFAULT_VERSION"]

# srt/configs/model_config.py:is_deepseek_dsa, 0.5.17 and 0.5.23
_DSA_ARCHS_0517 = ("DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM", "DeepseekV3ForCausalLMNextN",
                   "MistralLarge3ForCausalLM", "PixtralForConditionalGeneration", "GlmMoeDsaForCausalLM",
                   "GlmMoeDsaForCausalLMNextN", "LongcatFlashForCausalLM", "LongcatFlashForCausalLMNextN")
_DSA_ARCHS_0523 = _DSA_ARCHS_0517 + ("Glm5NextForConditionalGenerationNextN", "Glm5NextForConditionalGeneration",
                                     "Dots3NoteForCausalLM", "Dots3NoteForCausalLMNextN", "HYV4ForCausalLM",
                                     "HYV4ForCausalLMNextN")


# sglang 0.5.17 srt/arg_groups/overrides.py:_MAMBA_EXTRA_BUFFER_ARCHS
_MAMBA_EXTRA_0517 = frozenset({
    "KimiLinearForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
    "Qwen3NextForCausalLM", "InternS2PreviewForConditionalGeneration", "MiniCPMV4_6ForConditionalGeneration",
    "BailingMoeV2_5ForCausalLM", "FalconH1ForCausalLM", "GraniteMoeHybridForCausalLM", "NemotronHForCausalLM",
    "NemotronHPuzzleForCausalLM", "KimiK3ForConditionalGeneration"})
# sglang 0.5.23 srt/arg_groups/overrides.py:_MAMBA_EXTRA_BUFFER_ARCHS
_MAMBA_EXTRA_0523 = _MAMBA_EXTRA_0517 | frozenset({
    "Qwen3_5MoeForCausalLM", "Qwen3_5ForCausalLM", "Qwen4ExpForConditionalGeneration",
    "MiniCPMV4_7ForConditionalGeneration", "BailingMoeV3ForCausalLM", "BailingMoeV3VLForConditionalGeneration",
    "Glm5NextForConditionalGeneration", "NemotronH_Omni_Reasoning_V3", "InklingForConditionalGeneration",
    "InklingForConditionalGenerationMTP"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLangRules:
    """What one SGLang release does where releases differ."""

    version: tuple[int, int, int]
    source: str
    """Where the defaults live in this release."""
    capacity_tiers: tuple[tuple[int | None, int, int, int], ...]
    """(upper bound in MiB of ``get_device_memory_capacity`` or None for the last tier, chunked_prefill_size,
    decode max_bs for tp < 4, decode max_bs for tp >= 4): ``_handle_gpu_memory_settings``."""
    no_gpu_fraction: float
    """``mem_fraction_static`` when the device memory is unknown (0.5.17: 0.88; 0.5.23: 0.95)."""
    mla_prefill_graph_max_bs: str
    """Prefill CUDA-graph max_bs for MLA models: ``fixed_2048`` (0.5.17) or ``min_8192_cps`` (0.5.23)."""
    clamp_decode_max_bs_to_running: bool
    """0.5.23 lowers the default decode max_bs to ``--max-running-requests`` when that is smaller."""
    post_capture_floor_mib: int
    """``reserved_mem`` base under post-capture KV sizing (SGLANG_ENABLE_POST_CAPTURE_KV_SIZING): 512 / 1536."""
    mm_kv_reservation: bool
    """0.5.23 ``kv_cache_configurator.py:mm_runtime_reservation_gb`` takes SGLANG_VLM_CACHE_SIZE_MB (100)
    out of the KV budget of a multimodal model; 0.5.17 has no such step."""
    warns_context_over_pool: bool
    """0.5.23 ``tp_worker.py:get_worker_info`` warns when the pool holds fewer tokens than --context-length."""
    legacy_aliases: bool
    """Deprecated flag aliases still accepted (0.5.17) or refused by argparse (0.5.23): flags._LEGACY_ALIASES."""
    prefill_graph_off_for_mla: bool
    """The prefill CUDA graph (breakable, the CUDA default) is turned off for MLA models that are not DSA
    (0.5.17 ``_disable_breakable_cudagraph_if_incompatible``: "MLA attention (non-DSA)"); 0.5.23 keeps it."""
    prefill_graph_off_for_pp: bool
    """0.5.23 ``cuda_graph_hook.py:apply_cuda_graph_compatibility`` turns it off under PP > 1."""
    prefill_graph_off_archs: tuple[str, ...]
    """Architectures whose breakable prefill graph is turned off by name."""
    multimodal_prefill_graph_archs: tuple[str, ...]
    prefill_graph_free_gate_gib: float | None
    aiter_fraction_honours_explicit: bool
    """ROCm aiter with context > 8192 multiplies the fraction by 0.85 (0.5.17 srt/server_args.py:
    _handle_attention_backend_compatibility, always; 0.5.23 attention_hook.py, except a given fraction with
    SGLANG_AITER_HONOR_EXPLICIT_MEM_FRACTION set)."""
    """0.5.17 ``cuda_graph_setup.py:should_skip_auto_prefill_cuda_graph_for_memory``: an auto-selected prefill graph
    is skipped (not an error) when less than 4 GiB is free after the pool; 0.5.23 has no such gate."""
    """Multimodal architectures that keep a prefill graph (every other multimodal model loses it:
    ``model_config.py:is_multimodal_breakable_cuda_graph_supported``, 0.5.17 also the tc_piecewise list)."""
    """0.5.17 still accepts ``--cuda-graph-max-bs`` (a deprecated alias of ``--cuda-graph-max-bs-decode``);
    0.5.23 removed it, and argparse calls it ambiguous."""
    rope_cache_fp32_platforms: tuple[str, ...] = ("cuda",)
    """Platforms where ``RotaryEmbedding.__init__`` keeps ``cos_sin_cache`` in float32 (elsewhere it is cast to the
    model dtype unless SGLANG_ROPE_CACHE_FP32 is set): srt/layers/rotary_embedding/base.py, 0.5.17 CUDA and XPU,
    0.5.23 CUDA, HIP and XPU (engines/sglang/rope.py)."""
    dsa_archs: tuple[str, ...] = _DSA_ARCHS_0517
    """``srt/configs/model_config.py:is_deepseek_dsa``: the architectures read as DeepSeek Sparse Attention (with
    ``index_topk`` in the config); 0.5.23 adds Glm5Next, Dots3Note and HYV4 (engines/sglang/dsa.py)."""
    dsa_indexer_skips_shared: bool = False
    """0.5.23 ``pool_configurator.py:_compute_dsa_indexer_cell_size`` counts the indexer cache only on layers that
    do not skip top-k (``dsa_layer_skips_topk``; ``_should_elide_dsa_index_k``); 0.5.17 ``_compute_cell_size``
    counts it on every layer."""
    dsa_index_kpool: bool = False
    """0.5.23 reads ``index_kpool``: indexer bytes ``ceil_div(132, index_kpool)`` and page size 64 x index_kpool;
    0.5.17 has no pooled index keys (page size 64)."""
    dsa_sinks_keep_bf16: bool = False
    """0.5.23 ``_dsa_kv_cache_dtype_default`` keeps bfloat16 for ``learnable_sink`` configs on SM >= 10."""
    dsa_rocm_backend: str = "tilelang"
    """Default DSA backends on ROCm (``_dsa_split_backend_resolution``): 0.5.17 tilelang, 0.5.23 triton."""
    dsa_backend_check: str = "0.5.17"
    """Which argument-time check of the DSA backends (engines/sglang/dsa.py:dsa_backend_refusal): 0.5.17
    ``_check_tilelang_dsa_fp8_kv``, 0.5.23 ``_check_dsa_backend_constraints``."""

    swa_cap_at_least_one_request: bool = True
    """The SWA request cap counts ``max(1, max_running_requests // attn_dp)`` requests (0.5.23
    ``compute_swa_request_cap``); 0.5.17 ``SWAChunkCapPoolConfigurator.__init__`` counts the bare quotient."""
    swa_cap_needs_positive_chunk: bool = True
    """0.5.23 ``SWARequestCapPoolConfigurator.is_applicable`` refuses ``chunked_prefill_size <= 0``; 0.5.17
    ``SWAChunkCapPoolConfigurator.is_applicable`` refuses only ``None``."""

    mamba_extra_buffer_archs: frozenset[str] = frozenset()
    """Architectures that support the extra_buffer mamba radix-cache strategy (``arg_groups/overrides.py:
    _MAMBA_EXTRA_BUFFER_ARCHS``); 0.5.23 adds the Qwen3.5 text-only entries, Qwen4-Exp, MiniCPM-V 4.7, Bailing V3,
    GLM-5-Next, Nemotron-H Omni and Inkling."""
    mamba_slots_at_least_one_request: bool = True
    graph_memory: str | None = None
    """Which reading prices the CUDA graphs' memory on CUDA (engines/sglang/graphs.py): ``0.5.17`` (read from
    sglang 0.5.17's runners and checked on its real startups); None: the vLLM-fitted stand-ins (0.5.23 changed
    graph_shared_output.py, breakable_cuda_graph_backend.py and the triton graph state, not read yet)."""
    mm_ipc_auto: bool = False
    """``--mm-feature-transport`` left unset resolves to ``cuda_ipc`` on single-node CUDA (0.5.17
    srt/server_args.py:_resolve_mm_feature_transport: "auto-resolved to cuda_ipc (single-node CUDA)"), so a
    multimodal model's tokenizer side holds a GPU feature pool; 0.5.23 arg_groups/serving_hook.py resolves it to
    ``cpu`` on one node ("Keep CUDA IPC opt-in because even an idle pool consumes HBM")."""
    """Under ``--disable-radix-cache`` with ``--max-running-requests`` the mamba pool holds
    ``max(1, requests // attn_dp)`` slots (0.5.23 ``_handle_max_mamba_cache``); 0.5.17 the bare quotient."""

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


# sglang 0.5.17 srt/server_args.py:ServerArgs._handle_gpu_memory_settings
_TIERS_0517 = ((20 * 1024, 2048, 8, 8), (35 * 1024, 2048, 24, 80), (60 * 1024, 4096, 32, 160),
               (90 * 1024, 8192, 256, 512), (160 * 1024, 8192, 256, 512), (None, 16384, 512, 512))
# sglang 0.5.23 srt/arg_groups/memory_hook.py:handle_gpu_memory_settings (the 20-35 GiB tier moved to 4k/48/160)
_TIERS_0523 = ((20 * 1024, 2048, 8, 8), (35 * 1024, 4096, 48, 160), (60 * 1024, 4096, 32, 160),
               (90 * 1024, 8192, 256, 512), (160 * 1024, 8192, 256, 512), (None, 16384, 512, 512))

RULE_SETS: dict[tuple[int, int, int], SGLangRules] = {
    (0, 5, 17): SGLangRules(
        version=(0, 5, 17), source="sglang 0.5.17 srt/server_args.py",
        graph_memory="0.5.17",
        capacity_tiers=_TIERS_0517, no_gpu_fraction=0.88, mla_prefill_graph_max_bs="fixed_2048",
        clamp_decode_max_bs_to_running=False, post_capture_floor_mib=512, mm_kv_reservation=False,
        warns_context_over_pool=False, legacy_aliases=True,
        prefill_graph_off_for_mla=True, prefill_graph_off_for_pp=False,
        prefill_graph_off_archs=("NemotronHForCausalLM", "DeepseekV4ForCausalLM"),
        # sglang 0.5.17 srt/configs/model_config.py: multimodal_breakable_/piecewise_cuda_graph_supported_model_archs
        multimodal_prefill_graph_archs=("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
                                        "Cohere2VisionForConditionalGeneration", "KimiK25ForConditionalGeneration",
                                        "MiniMaxM3SparseForCausalLM", "MiniMaxM3SparseForConditionalGeneration"),
        prefill_graph_free_gate_gib=4.0, aiter_fraction_honours_explicit=False,
        rope_cache_fp32_platforms=("cuda", "xpu"),
        dsa_archs=_DSA_ARCHS_0517, dsa_indexer_skips_shared=False, dsa_index_kpool=False, dsa_sinks_keep_bf16=False,
        dsa_rocm_backend="tilelang", dsa_backend_check="0.5.17", swa_cap_at_least_one_request=False, swa_cap_needs_positive_chunk=False,
        mamba_extra_buffer_archs=_MAMBA_EXTRA_0517, mamba_slots_at_least_one_request=False, mm_ipc_auto=True),
    (0, 5, 23): SGLangRules(
        version=(0, 5, 23), source="sglang 0.5.23 srt/arg_groups/memory_hook.py",
        capacity_tiers=_TIERS_0523, no_gpu_fraction=0.95, mla_prefill_graph_max_bs="min_8192_cps",
        clamp_decode_max_bs_to_running=True, post_capture_floor_mib=1536, mm_kv_reservation=True,
        warns_context_over_pool=True, legacy_aliases=False,
        prefill_graph_off_for_mla=False, prefill_graph_off_for_pp=True,
        prefill_graph_off_archs=("DeepseekV4ForCausalLM", "KimiLinearForCausalLM"),
        # sglang 0.5.23 srt/configs/model_config.py: multimodal_breakable_cuda_graph_supported_model_archs
        multimodal_prefill_graph_archs=("MiniMaxM3SparseForConditionalGeneration", "Cohere2VisionForConditionalGeneration",
                                        "Glm5NextForConditionalGeneration", "InternS2MobiusForConditionalGeneration",
                                        "PaddleOCRVLForConditionalGeneration", "Qwen3_5ForConditionalGeneration",
                                        "Qwen3_5MoeForConditionalGeneration", "Qwen4ExpForConditionalGeneration",
                                        "MuseGlimmerForConditionalGeneration", "MuseSparkForConditionalGeneration",
                                        "KimiK3ForConditionalGeneration", "KimiK25ForConditionalGeneration",
                                        "MiniMaxM3SparseForCausalLM"),
        prefill_graph_free_gate_gib=None, aiter_fraction_honours_explicit=True,
        rope_cache_fp32_platforms=("cuda", "rocm", "xpu"),
        dsa_archs=_DSA_ARCHS_0523, dsa_indexer_skips_shared=True, dsa_index_kpool=True, dsa_sinks_keep_bf16=True,
        dsa_rocm_backend="triton", dsa_backend_check="0.5.23", swa_cap_at_least_one_request=True, swa_cap_needs_positive_chunk=True,
        mamba_extra_buffer_archs=_MAMBA_EXTRA_0523, mamba_slots_at_least_one_request=True),
}
SUPPORTED = tuple(".".join(map(str, v)) for v in sorted(RULE_SETS))
DEFAULT_VERSION = SUPPORTED[-1]


def _parse(version: str) -> tuple[int, int, int]:
    parts = version.strip().lstrip("v").split(".")
    try:
        nums = [int(p) for p in parts[:3]]
    except ValueError:
        raise FlagError(f"not an SGLang version: {version!r}", hint=f"give one like {DEFAULT_VERSION}") from None
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


def rules_for(version: str | None = None) -> SGLangRules:
    """The rule set of a release: the newest modelled one at or below it (0.5.17 .. 0.5.23 and after)."""
    if not version:
        return RULE_SETS[max(RULE_SETS)]
    v = _parse(version)
    older = [k for k in RULE_SETS if k <= v]
    if not older:
        raise FlagError(f"SGLang {version} is older than the oldest modelled release ({SUPPORTED[0]})",
                        hint=f"use --sglang-version {SUPPORTED[0]} or later ({', '.join(SUPPORTED)})")
    return RULE_SETS[max(older)]
