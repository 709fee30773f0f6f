"""What the vLLM log reader returns: events (one per recognised line) and facts (the summary).

Sizes are kept exactly as vLLM printed them (``9.1948`` stays ``9.1948``, ``9.20`` is ``9.2``).
vLLM's "GB" was GiB arithmetic (bytes / 2**30), so a ``GB`` figure is stored in a ``*_gib`` field
unchanged. Only two kinds of line are converted: raw byte counts (``Available memory: 4660...``,
old vllm-ascend) and the early-V0 ``MB`` weights line, which are divided by 2**30 and 2**10.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "LogEvent",
    "RankFacts",
    "LogFacts",
    "ERAS",
    "PHASE_KINDS",
    "FIGURE_KINDS",
    "ERROR_KINDS",
    "ERROR_SUBKINDS",
    "ERROR_PHASES",
    "RANK_FIELDS",
]

ERAS: dict[str, str] = {
    "v0-early": "V0 engine before PR #9352 (<= v0.6.3): weights + '# GPU blocks: N, # CPU blocks: M', no profiling breakdown",
    "v0-pr9352": "V0, one-line 'Memory profiling results: total_gpu_memory=...' (PR #9352, ~v0.6.3.post1-v0.6.4)",
    "v0-pr10511": "V0, 'the current vLLM instance can use ...' + 'model weights take ...; non_torch_memory takes ...' "
    "(PR #10511 and its tabular first form, ~v0.6.5-v0.10)",
    "v1-pre-pr19312": "V1 with no memory breakdown at INFO (~v0.7-v0.9.1): 'Model loading took', 'GPU KV cache size', '# GPU blocks: N'",
    "v1-pr19312": "V1 with 'Available KV cache memory' and the 'Memory profiling takes ... Total non KV cache memory' repr (~v0.9.2-v0.10.0)",
    "v1-pr21429": "V1 with 'Initial free memory ...; Requested memory: X.XX (util)', the --kv-cache-memory suggestion line, "
    "'Model loading took X GiB memory and' (~v0.10.1-v0.17)",
    "v1-v0.26": "V1 with the CUDA-graph estimate lines (PR #30515 family), util printed with %f, "
    "'init engine ... took X s (compilation: ...)' (~v0.18-v0.32)",
    "v1-v0.33": "V1 v0.33 family: 'total consumed (from mem_get_info)', one-line 'KV cache size: N tokens, Maximum concurrency ...'",
    "v1-v0.34": "V1 v0.34 family, the extensible KV cache: 'Memory after warmup: ... fit within the requested X GiB', "
    "'Extended KV cache to N blocks (X GiB).', the util warning 'gpu_memory_utilization=X caps this instance at ...'",
    "ascend": "vllm-ascend (Huawei NPU): 'Loading model weights took X GB' on V1, HCCL/NPU lines, the raw-bytes "
    "'Available memory: N, total memory: M', the DEBUG '<x> after profiling is N G' lines",
    "fork": "a fork or plugin format without upstream era markers (Gaudi 'Pre-loading model weights on hpu', vllm-metal, ...)",
    "unknown": "vLLM lines were found but none that fixes the format family (e.g. only an error message)",
}
"""Log format families the reader recognises (``LogFacts.era``). Versions are approximate: a family is
defined by the exact line formats seen, not by the version string (which is reported separately)."""

PHASE_KINDS: tuple[str, ...] = (
    "engine_start",  # config dump / non-default args / version banner
    "device_ready",  # distributed (NCCL/HCCL) init done, or the init memory snapshot
    "weights_loaded",  # 'Model loading took' / 'Loading model weights took'
    "profiling_done",  # memory profiling summary / 'Available KV cache memory'
    "kv_allocated",  # KV cache size / blocks / concurrency logged
    "graphs_captured",  # 'Graph capturing finished'
    "ready",  # 'init engine ... took' / 'Application startup complete' / 'Starting vLLM server'
    "request",  # start of a burst of request lines (stats, 'Added request', 'Received request', access log)
    "error",  # a failure recognised (values: error_kind, error_subkind)
)
"""Event kinds that mark time (``watch`` shades by them). A line that marks a phase and carries figures
yields two events: the phase event (empty values) and a figure event."""

FIGURE_KINDS: tuple[str, ...] = (
    "weights",  # weights_gib (+ model_load_s)
    "memory_snapshot",  # worker init snapshot (free/total/torch/non-torch at init)
    "requested_memory",  # requested_gib (+ gpu_memory_utilization, initial_free_gib)
    "memory_profile",  # profiling summary (any era): weights/peak/non-torch/non-KV/KV
    "free_after_profile",
    "kv_cache_memory",  # available KV cache memory (or kv_cache_memory_bytes reservation)
    "kv_cache_tokens",
    "max_concurrency",
    "num_gpu_blocks",
    "cudagraph_estimate",
    "cudagraph",  # actual graph pool size
    "kv_cache_suggestion",  # the '--kv-cache-memory=' suggestion line and its breakdown
    "encoder_budget",
    "block_size",
    "npu_memory_debug",  # vllm-ascend DEBUG '<torch_memory|torch_peak|...> <when> is N G'
    "config",  # engine flags recovered (non-default args, config dump, command line)
    "warning",  # a memory-relevant warning (also collected in LogFacts.warnings)
)
"""Figure-carrying event kinds (``LogEvent.values`` holds the numbers)."""

ERROR_KINDS: dict[str, str] = {
    "free_memory_below_requested": "startup check: free memory at init < total x gpu_memory_utilization",
    "no_kv_cache_memory": "nothing left for the KV cache (available <= 0, negative KV, 0 blocks, auto-fit impossible, "
    "fewer Mamba state blocks than max_num_seqs)",
    "max_model_len_exceeds_kv_cache": "one request of max_model_len does not fit in the KV cache",
    "invalid_config": "vLLM rejected a flag combination (e.g. TP not dividing the heads, max_model_len above the model's)",
    "out_of_memory": "an allocator out-of-memory (torch/NPU) or 'Failed to load model - not enough GPU memory'",
    "startup_failed": "the engine failed to start and the log does not say why (traceback cut, 'EngineCore failed to start')",
}
"""``LogFacts.error_kind`` values. ``startup_failed`` is an addition to the first five: it is what a log
that shows a failure without its cause gets."""

ERROR_SUBKINDS: tuple[str, ...] = (
    "mamba_blocks_below_max_num_seqs",
    "negative_kv_cache",
    "zero_gpu_blocks",
    "autofit_impossible",
    "external_weights_exceed_budget",
    "below_engine_budget_after_external_weights",
    "cpu_memory_below_requested",
    "mm_ipc_reservation_exceeds_kv",
    "oom_during_weight_loading",
    "oom_during_profiling",
    "oom_during_kv_allocation",
    "oom_during_graph_capture",
    "oom_during_sampler_warmup",
    "oom_during_pooler_warmup",
    "oom_during_warmup",
    "oom_while_serving",
    "memory_profiling_inconsistent",
)

ERROR_PHASES: tuple[str, ...] = (
    "startup_check", "weight_loading", "profiling", "kv_sizing", "kv_allocation", "graph_capture", "warmup", "serving",
)
"""``LogFacts.error_phase`` values (None when the log gives no clue)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEvent:
    """One recognised line (or a wrapped line joined back)."""

    line_no: int
    """1-based number of the raw line (the first one, for a wrapped line)."""
    kind: str
    """A phase kind (:data:`PHASE_KINDS`) or a figure kind (:data:`FIGURE_KINDS`)."""
    rank: str | None
    """Normalised worker prefix: "TP0", "PP1_TP0", "DP0", "EngineCore", "rank2" (``VllmWorker rank=2``),
    "pid534" (a V0 worker known only by pid), "APIServer"; None for a line without prefix."""
    values: dict
    """Numbers recovered from the line (GiB as float, counts as int, seconds as float)."""
    text: str
    """The cleaned line: no ANSI codes, no timestamp, no level/file prefix, no worker prefix."""
    timestamp: str | None = None
    """The line's time as printed (container ISO stamp, else vLLM's 'MM-DD HH:MM:SS'); None if absent."""


RANK_FIELDS: tuple[str, ...] = (
    "weights_gib",
    "profile_weights_gib",
    "torch_peak_increase_gib",
    "peak_activation_gib",
    "non_torch_gib",
    "total_consumed_gib",
    "non_kv_total_gib",
    "cudagraph_estimate_gib",
    "cudagraph_actual_gib",
    "kv_cache_gib",
    "requested_gib",
    "gpu_memory_utilization",
    "initial_free_gib",
    "free_after_profile_gib",
    "free_after_profile_within_requested_gib",
    "total_gib",
    "num_gpu_blocks",
    "num_cpu_blocks",
    "kv_cache_tokens",
    "max_concurrency",
    "max_concurrency_len",
    "estimated_max_model_len",
    "kv_needed_gib",
    "block_size",
    "encoder_budget_tokens",
    "encoder_profile_items",
    "encoder_profile_modality",
    "suggested_kv_cache_memory_bytes",
    "suggested_kv_cache_memory_bytes_gpu_limit",
)
"""The figure fields shared by :class:`RankFacts` and :class:`LogFacts`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RankFacts:
    """The figures one process (worker, engine core, or the unprefixed main process) logged.

    None means "this process did not log it". When a figure is logged twice by the same process the
    later line wins, except that a figure read from a fallback source (the --kv-cache-memory suggestion
    line, an error message, the old vllm-ascend 'Available memory' line) never replaces one read from
    its own line.
    """

    rank: str
    """The key in ``LogFacts.ranks``: a normalised prefix, or "main" for unprefixed lines."""
    weights_gib: float | None = None
    """Weights from the model-load line ('Loading model weights took' / 'Model loading took' / 'Pre-loading ...')."""
    profile_weights_gib: float | None = None
    """Weights as restated in the profiling summary ('model weights take', 'weights memory:', '... GiB for weight')."""
    torch_peak_increase_gib: float | None = None
    """Activation peak of the profile run ('PyTorch activation peak memory takes', 'torch peak memory increase')."""
    peak_activation_gib: float | None = None
    """'... GiB for peak activation' of the --kv-cache-memory suggestion line (v0.33: headroom + applied graph estimate)."""
    non_torch_gib: float | None = None
    """Non-torch memory growth during profiling ('non_torch_memory takes', 'non-torch forward increase memory')."""
    total_consumed_gib: float | None = None
    """v0.33: 'total consumed (from mem_get_info)' / '... GiB for consumed memory (weights + non-torch)'."""
    non_kv_total_gib: float | None = None
    """'Total non KV cache memory'."""
    cudagraph_estimate_gib: float | None = None
    """'Estimated CUDA graph memory: X GiB total' (or the pool line's estimate)."""
    cudagraph_actual_gib: float | None = None
    """'Graph capturing finished in N secs, took X GiB' (last one: v0.33 V2 prints a profiling capture first)."""
    kv_cache_gib: float | None = None
    """Available KV cache memory ('Available KV cache memory', 'reserved for KV Cache is', 'kv_cache_size=', ...)."""
    requested_gib: float | None = None
    """total x gpu_memory_utilization as logged."""
    gpu_memory_utilization: float | None = None
    """The utilization as printed in a memory line (0.9, 0.900000 -> 0.9)."""
    initial_free_gib: float | None = None
    """Free device memory at the init snapshot."""
    free_after_profile_gib: float | None = None
    free_after_profile_within_requested_gib: float | None = None
    total_gib: float | None = None
    """Device total memory as this process logged it."""
    num_gpu_blocks: int | None = None
    num_cpu_blocks: int | None = None
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    max_concurrency_len: int | None = None
    """The 'N tokens per request' of the concurrency line (= max_model_len)."""
    estimated_max_model_len: int | None = None
    """From the max_model_len error ('the estimated maximum model length is N')."""
    kv_needed_gib: float | None = None
    """From the max_model_len error ('(X GiB KV cache is needed')."""
    block_size: int | None = None
    encoder_budget_tokens: int | None = None
    encoder_profile_items: int | None = None
    encoder_profile_modality: str | None = None
    suggested_kv_cache_memory_bytes: int | None = None
    """The suggestion line's '--kv-cache-memory=N' to fit the requested memory."""
    suggested_kv_cache_memory_bytes_gpu_limit: int | None = None
    """The suggestion line's '--kv-cache-memory=N' to fully use free memory."""
    extras: dict = field(default_factory=dict)
    """Other figures this process logged: init snapshot parts, V0 'peak_torch_memory', vllm-ascend DEBUG
    figures ('torch_peak after profiling': 13.11), graph profiling details, ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFacts:
    """Everything the reader recovered from one vLLM log.

    The figure fields are those of "the worker vLLM logs": rank 0 of the last pipeline stage where ranks
    differ (PP is known from ``Worker_PP{p}_TP{t}`` prefixes, or from pipeline_parallel_size with
    ``VllmWorker rank=N``), else the lowest rank, the unprefixed main process before pid-only workers.
    A field that rank did not log is taken from the next rank in that order; ``figure_ranks`` says
    which rank each field came from.
    """

    vllm_version: str | None = None
    """e.g. "0.26.0" (engine config line, API server version, banner)."""
    era: str = "unknown"
    """The log format family (:data:`ERAS`)."""
    platform: str | None = None
    """"cuda" | "rocm" | "ascend" | "cpu" | "hpu" | "xpu" | "tpu" | "metal" | None."""
    device_name: str | None = None
    """e.g. "NVIDIA H100 80GB HBM3" (from a fused-MoE config file name); None if not logged."""
    total_memory_gib: float | None = None
    """Device total memory as logged (snapshot, profiling line, startup error, OOM message)."""
    model: str | None = None
    architecture: str | None = None
    """'Resolved architecture: X'."""
    runner: str | None = None
    """V1 model runner: "v1" | "v2" (None for V0 or when the log does not tell)."""
    args: dict = field(default_factory=dict)
    """Engine flags, under vLLM's own names (max_model_len, max_num_seqs, ...). Sources, later ones
    filling only what earlier ones lacked: non-default args dict, the engine config dump, command lines
    quoted in the log, then figures implied by log lines (Using max model len, Chunked prefill ...,
    Requested memory (util), the max seq len of an error)."""
    env: dict = field(default_factory=dict)
    """Environment variables seen (command prefixes, ``export``, 'Set PYTORCH_NPU_ALLOC_CONF=')."""
    packages: dict = field(default_factory=dict)
    """Package versions the log printed (a pasted ``pip list`` / environment report): ``vllm_ascend``,
    ``torch_npu``, ``cann`` -> the version as printed. Used to infer the release when no version line is logged
    (``log/release.py``)."""
    source_files: tuple = ()
    """Source files that tell a release apart, as the log names them: vllm-ascend worker modules in traceback
    frames ("vllm_ascend/worker/worker_v1.py") and in line prefixes ("worker_v1.py")."""
    source_lines: tuple = ()
    """(file:line as the prefix printed it, the cleaned text) of the first recognised line from each logging
    call (at most 400): where a message sits in the source names the release (``log/release.py``)."""
    ranks: dict = field(default_factory=dict)
    """dict[str, RankFacts], in the order the ranks first appeared."""
    primary_rank: str | None = None
    """The rank the figure fields come from (see class doc)."""
    figure_ranks: dict = field(default_factory=dict)
    """field name -> rank it was taken from."""

    weights_gib: float | None = None
    """Model-load line; falls back to the profiling summary's weights when no load line was logged."""
    profile_weights_gib: float | None = None
    """Weights as restated in the profiling summary or the suggestion line (see RankFacts)."""
    torch_peak_increase_gib: float | None = None
    """Activation peak of the profile run (V0 'PyTorch activation peak memory', V1 'torch peak memory increase')."""
    peak_activation_gib: float | None = None
    """The suggestion line's '... GiB for peak activation'."""
    non_torch_gib: float | None = None
    """Non-torch growth during profiling."""
    total_consumed_gib: float | None = None
    """v0.33 'total consumed (from mem_get_info)' / 'consumed memory (weights + non-torch)'."""
    non_kv_total_gib: float | None = None
    """'Total non KV cache memory'."""
    cudagraph_estimate_gib: float | None = None
    """'Estimated CUDA graph memory: X GiB total'."""
    cudagraph_actual_gib: float | None = None
    """Graph pool size after capture ('Graph capturing finished ..., took X GiB'); 0.0 when only the eager-mode
    suggestion line says '0.0 GiB for CUDAGraph memory'."""
    cudagraph_estimate_applied: bool | None = None
    """Whether the graph estimate was subtracted from the KV budget (from the 'CUDA graph memory profiling
    is enabled/disabled/will be enabled' lines); None if not logged."""
    kv_cache_gib: float | None = None
    """Available KV cache memory of that worker (may be negative: the engine then fails)."""
    requested_gib: float | None = None
    """total x gpu_memory_utilization as logged."""
    gpu_memory_utilization: float | None = None
    """The utilization printed in a memory line (also copied to args when the flags did not give it)."""
    initial_free_gib: float | None = None
    """Free device memory at the init snapshot (startup check)."""
    free_after_profile_gib: float | None = None
    free_after_profile_within_requested_gib: float | None = None
    total_gib: float | None = None
    """Same as total_memory_gib (the shared figure-field name)."""
    num_gpu_blocks: int | None = None
    """KV blocks (V0 '# GPU blocks', V1 '# GPU blocks' / cache_config_info / override / Mamba error)."""
    num_cpu_blocks: int | None = None
    """V0 swap blocks."""
    block_size: int | None = None
    """Logged block size ('Setting attention block size to', 'Block size is set to', ...), else args['block_size']."""
    kv_cache_tokens: int | None = None
    """'GPU KV cache size: N tokens', or the V0 error's 'maximum number of tokens that can be stored in KV cache (N)'."""
    max_concurrency: float | None = None
    max_concurrency_len: int | None = None
    """From the concurrency line; args['max_model_len'] when the line lost it (elided excerpts)."""
    estimated_max_model_len: int | None = None
    """The max_model_len error's 'estimated maximum model length is N'."""
    kv_needed_gib: float | None = None
    """The max_model_len error's '(X GiB KV cache is needed'."""
    encoder_budget_tokens: int | None = None
    encoder_profile_items: int | None = None
    """Items of the maximum feature size the encoder was profiled with."""
    encoder_profile_modality: str | None = None
    suggested_kv_cache_memory_bytes: int | None = None
    """The suggestion line's '--kv-cache-memory=N' to fit the requested memory."""
    suggested_kv_cache_memory_bytes_gpu_limit: int | None = None
    """The suggestion line's '--kv-cache-memory=N' to use all free memory."""

    error_kind: str | None = None
    """:data:`ERROR_KINDS` key, or None when no failure was recognised."""
    error_subkind: str | None = None
    """:data:`ERROR_SUBKINDS` value, or None."""
    error_message: str | None = None
    """vLLM's own words (the line, from the exception name on), wrapped lines joined."""
    error_phase: str | None = None
    """:data:`ERROR_PHASES` value, or None."""
    error_line_no: int | None = None

    timings: dict = field(default_factory=dict)
    """Seconds: weights_load_s, model_load_s, profile_s, torch_compile_s, dynamo_transform_s,
    initial_profiling_s, graph_capture_s, init_engine_s, compilation_s."""
    events: tuple = ()
    """tuple[LogEvent, ...] in line order."""
    warnings: tuple = ()
    """Memory-relevant warnings, each once, in order (graph-profiling util hints, padding layers, ...)."""
    num_lines: int = 0
    """Raw lines read."""
    num_request_lines: int = 0
    """Request/stat lines seen (each burst is one 'request' event)."""
