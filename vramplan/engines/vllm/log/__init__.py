"""Reading vLLM server logs: every memory line of every era, as events (for ``watch``) and facts (for ``explain``).

    from vramplan.engines.vllm.log import read_log
    facts = read_log("vllm.log")            # a path, "-" for stdin, or a text stream; streamed
    facts.kv_cache_gib, facts.weights_gib, facts.error_kind, facts.era

    reader = LogReader()                    # live: one raw line at a time
    for line in proc.stdout: events = reader.feed(line)
    facts = reader.finish()

What is recognised (exact format strings are quoted in ``_rules.py``, one handler per message):

- model load: V0 'Loading model weights took %.4f GB' (and the v0.3 'MB' form), 'Model loading took %s GiB
  memory and' (V1 runner), 'Model loading took %s GiB and' (V2 runner v0.26; 4-decimal V0/V1-early forms),
  Gaudi 'Pre-loading model weights on hpu:0 took', DEBUG 'Peak GPU memory after loading weights';
- profiling: V0 'Memory profiling results: total_gpu_memory=...' (PR #9352) and its table form (PR #10511
  first version), the three-line V0 'the current vLLM instance can use ...' / 'model weights take ...;
  non_torch_memory takes ...; PyTorch activation peak memory takes ...; the rest of the memory reserved for
  KV Cache is ...', V1 'Memory profiling takes ... Total non KV cache memory: ...; torch peak memory
  increase: ...; non-torch forward increase memory | total consumed (from mem_get_info): ...; weights memory:
  ...', 'Initial free memory ...; Requested memory: ... (util), ...' (and the PR #19312 form), 'Free memory
  after profiling', 'worker init memory snapshot: ...', 'worker requested memory', 'Available KV cache memory',
  the kv_cache_memory_bytes bypass line, old vllm-ascend 'Available memory: N, total memory: M' (bytes);
- KV sizing: 'GPU KV cache size: N tokens' (v0.26 two-line and v0.33 one-line with concurrency), 'Maximum
  concurrency for N tokens per request: X.XXx', V0 '# GPU|CUDA|cuda|rocm blocks: N, # CPU blocks: M', V1
  '# GPU blocks: N', 'cache_config_info ... num_gpu_blocks is: N', 'Overriding num_gpu_blocks=...', block
  size lines, 'Encoder cache will be initialized with a budget of N tokens, and profiled with N image items';
- CUDA graphs: 'Graph capturing finished in N secs[, took X GiB]', 'Estimated CUDA graph memory: X GiB total',
  'CUDA graph pool memory: A GiB (actual), E GiB (estimated)', 'Profiling CUDA graph memory: ...', the
  'CUDA graph memory profiling is enabled|disabled / will be enabled' util hints, encoder graphs;
- the '--kv-cache-memory=' suggestion line (v0.26, v0.33, vllm-ascend forms, bytes form of ~v0.10);
- failures: startup check (old/new forms, with/without device, external-weights and CPU variants), 'No
  available memory for the cache blocks', the max_model_len errors (V1 incl. 'models's', V0), auto-fit,
  'max_num_seqs (N) exceeds available Mamba cache blocks (M)', torch/NPU 'out of memory. Tried to
  allocate' with the phase from the traceback or the startup phase reached, 'Failed to load model - not
  enough GPU memory', sampler/pooler warm-up OOM, 'Error in memory profiling', and the generic 'EngineCore
  failed to start' / 'WorkerProc hit an exception' when the cause is not in the log;
- vllm-ascend DEBUG '<torch_memory|torch_peak|non_torch_memory> <when> is N G', 'Set PYTORCH_NPU_ALLOC_CONF=';
- engine flags: 'non-default args: {...}', the 'Initializing a V1 LLM engine (vX) with config: ...' dump,
  quoted 'vllm serve ...' commands, 'Using max model len', 'Chunked prefill is enabled with ...'; the
  version from the engine line, 'vLLM (API) server version', the banner.

Lines may carry worker prefixes, ANSI colours (real or ``^[[``), container/kubectl timestamps, docker-compose
prefixes, markdown links around file names, or be wrapped (a message cut over lines is joined back).
"""

from __future__ import annotations

from ._model import (
    ERAS,
    ERROR_KINDS,
    ERROR_PHASES,
    ERROR_SUBKINDS,
    FIGURE_KINDS,
    PHASE_KINDS,
    RANK_FIELDS,
    LogEvent,
    LogFacts,
    RankFacts,
)
from ._reader import MAX_LINE_CHARS, LogReader, parse_log_text, read_log

__all__ = [
    "LogEvent",
    "RankFacts",
    "LogFacts",
    "LogReader",
    "read_log",
    "parse_log_text",
    "ERAS",
    "PHASE_KINDS",
    "FIGURE_KINDS",
    "ERROR_KINDS",
    "ERROR_SUBKINDS",
    "ERROR_PHASES",
    "RANK_FIELDS",
    "MAX_LINE_CHARS",
]
