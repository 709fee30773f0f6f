"""vLLM 0.34.0 against its own startups on one H100 (data/truth/logs/h100e, bench/truth/plans/v034_x1_*.tsv).

Every expected figure is read from the committed log with a regex written here (vLLM's own words), never from
vramplan. Deterministic terms must be equal; the measured ones within the bars the README reports.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vramplan
from vramplan.engines.vllm.flags import EngineArgs
from vramplan.api import load_model

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "data" / "truth" / "logs" / "h100e"
Q8B = str(ROOT / "vramplan" / "catalog" / "Qwen" / "Qwen3-8B")
GiB = 1 << 30


def _log(name: str) -> str:
    return (LOGS / f"{name}.log").read_text(errors="replace")


def _num(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    assert m, pattern
    return float(m.group(1).replace(",", ""))


def _plan(model: str, **flags):
    base = dict(max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024, enforce_eager=True)
    args = EngineArgs(**{**base, **flags})
    return vramplan.plan(load_model(model), device="h100-80gb", vllm_version="0.34.0", args=args)


def test_context_at_the_snapshot_is_the_torch_214_one():
    """'worker init memory snapshot: ... cuda_memory=0.7GiB' and 'Initial free memory: 78.48 GiB' in every run."""
    text = _log("q8b_e_unset")
    free0 = _num(text, r"Initial free memory: ([\d.]+) GiB")
    p = _plan(Q8B)
    assert round(p.logged_rank.free_at_init_bytes / GiB, 2) == free0


def test_penalty_state_counts_in_total_consumed():
    """total consumed (16.07) = weights (15.27) + non-torch + 1024 x 151,936 x 4 B of output_bin_counts
    (+ the prompt mask): the plan's consumed is within 0.02 GiB of the log's."""
    text = _log("q8b_e_unset")
    consumed = _num(text, r"total consumed \(from mem_get_info\): ([\d.]+)GiB")
    p = _plan(Q8B)
    r = p.logged_rank
    planned = (r.bytes_of("weights") + r.bytes_of("non_torch")) / GiB
    assert abs(planned - consumed) <= 0.02
    # the part itself, by hand: 1024 x 151936 x 4 + 1024 x ceil(151936 / 32) x 4
    part = dict(r.term("non_torch").parts)["V2 sampler penalty state (output_bin_counts, prompt_bin_mask)"]
    assert part == 1024 * 151936 * 4 + 1024 * 4748 * 4


def test_fp8_kv_loads_no_extra_workspace_on_034():
    text = _log("q8b_e_kvfp8_unset")
    p = _plan(Q8B, kv_cache_dtype="fp8")
    assert round(p.logged_rank.bytes_of("weights") / GiB, 2) == _num(text, r"Model loading took ([\d.]+) GiB")


def test_kv_cache_memory_bytes_is_exact():
    """--kv-cache-memory-bytes 20 GiB: 20 GiB // (36 layers x 2 x 8 x 128 x 2 B x 64) = 2275 blocks, 145,600 tokens."""
    text = _log("q8b_e_kvbytes")
    p = _plan(Q8B, kv_cache_memory_bytes=21474836480)
    assert p.num_gpu_blocks == 2275 == 20 * GiB // (36 * 2 * 8 * 128 * 2 * 64)
    assert p.kv_cache_tokens == _num(text, r"GPU KV cache size: ([\d,]+) tokens")


@pytest.mark.parametrize("name,flags", [
    ("q8b_e_unset", {}),
    ("q8b_e_base", {"gpu_memory_utilization": 0.9}),
    ("q8b_e_gmu095", {"gpu_memory_utilization": 0.95}),
    ("q8b_e_kvfp8_unset", {"kv_cache_dtype": "fp8"}),
    ("q8b_e_noext_unset", {"enable_extensible_kv_cache": False}),
])
def test_committed_blocks_within_one_percent(name, flags):
    """The blocks vLLM 0.34 committed ("N KV cache blocks ... fit", or the 0.33 path's count), within 1%."""
    text = _log(name)
    m = re.search(r"; (\d+) KV cache blocks \(", text)
    logged = int(m.group(1)) if m else int(_num(text, r"GPU KV cache size: ([\d,]+) tokens")) // 64
    p = _plan(Q8B, **flags)
    assert abs(p.num_gpu_blocks - logged) / logged <= 0.01


@pytest.mark.parametrize("name,util,mml,kind", [
    ("q8b_e_gmu015_nokv", 0.15, 4096, "no_kv_cache_memory"),
    ("q8b_e_mml40k_gmu025", 0.25, 40960, "max_model_len_exceeds_kv_cache"),
])
def test_the_two_real_failures(name, util, mml, kind):
    text = _log(name)
    assert "ValueError" in text
    args = EngineArgs(max_model_len=mml, max_num_batched_tokens=8192, max_num_seqs=1024, enforce_eager=True,
                      gpu_memory_utilization=util)
    p = vramplan.plan(load_model(Q8B), device="h100-80gb", vllm_version="0.34.0", args=args)
    assert p.verdict == "fails" and p.error_kind == kind


def test_nemotron_h_requests_hold_a_checkpoint_page_per_mamba_group():
    """Nemotron-3-Nano trimmed (3 Mamba-2 groups + 1 attention group, block 2112): vLLM 0.34 logs 28,315 blocks and
    10,543,476 tokens at max-model-len 4096 -> concurrency 2574.1 = 28315 / 11 blocks a request = 3 x 3 + 2."""
    text = _log("nemo3nano_trim")
    blocks = 28315
    tokens = _num(text, r"GPU KV cache size: ([\d,]+) tokens")
    assert int(blocks / 11 * 4096) == tokens
    cfg = str(ROOT / "bench" / "truth" / "configs" / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16-trimmed")
    p = _plan(cfg, gpu_memory_utilization=0.9)
    assert p.kv_cache_tokens == int(p.num_gpu_blocks / 11 * 4096)


@pytest.mark.parametrize("release", ["0.33.0", "0.34.0"])
def test_qwen35_gdn_groups_hold_a_checkpoint_page_on_hopper(release):
    """With FlashInfer's GDN prefill (the default on Hopper) each GDN group keeps 3 state pages a request in align
    mode (2 + num_prefill_checkpoint_blocks=1); on an A100 (Triton prefill) 2. Attention groups take
    cdiv(max_model_len, block) pages either way (vLLM 0.33/0.34 qwen_gdn_linear_attn.py, MambaSpec)."""
    from vramplan.model.description import LayerKind

    per = {}
    for dev in ("h100-80gb", "a100-80gb"):
        p = vramplan.plan("Qwen/Qwen3.5-27B", device=dev, vllm_version=release, max_model_len=4096,
                          gpu_memory_utilization=0.9, max_num_seqs=128)
        assert p.starts, p.error_message
        L = p.logged_rank.layout
        gdn = sum(1 for g in L.groups if g.spec.kind is LayerKind.MAMBA)
        attn = len(L.groups) - gdn
        assert gdn > 0 and attn > 0
        per[dev] = (round(p.num_gpu_blocks / p.max_concurrency), gdn, attn, -(-4096 // L.block_size))
    n, gdn, attn, pages = per["h100-80gb"]
    assert n == 3 * gdn + attn * pages
    n, gdn, attn, pages = per["a100-80gb"]
    assert n == 2 * gdn + attn * pages


@pytest.mark.parametrize("backend,pages_per_gdn_group", [("auto", 3), ("flashinfer", 3), ("triton", 2)])
def test_gdn_prefill_backend_flag_decides_the_checkpoint_page(backend, pages_per_gdn_group):
    """``--gdn-prefill-backend triton`` on Hopper runs FLA's Triton prefill, which exports no checkpoints: 2 state
    pages a GDN group per request, as on an A100; ``auto``/``flashinfer`` keep FlashInfer's third (vLLM 0.34.0
    qwen_gdn_linear_attn.py:_resolve_gdn_prefill_backend)."""
    from vramplan.model.description import LayerKind

    p = vramplan.plan("Qwen/Qwen3.5-27B", device="h100-80gb", vllm_version="0.34.0", max_model_len=4096,
                      gpu_memory_utilization=0.9, max_num_seqs=128,
                      flags=["--gdn-prefill-backend", backend])
    assert p.starts, p.error_message
    L = p.logged_rank.layout
    gdn = sum(1 for g in L.groups if g.spec.kind is LayerKind.MAMBA)
    attn = len(L.groups) - gdn
    assert round(p.num_gpu_blocks / p.max_concurrency) == pages_per_gdn_group * gdn + attn * -(-4096 // L.block_size)


def test_the_log_says_which_gdn_prefill_kernel_ran():
    """vLLM's 'Using FlashInfer GDN prefill kernel (requested=auto, ...)' line becomes the compare's flag."""
    from vramplan.engines.vllm.log import read_log

    harness = ROOT / "data" / "truth" / "harness" / "q35_9b_trim.log"
    assert "Using FlashInfer GDN prefill kernel (requested=auto" in harness.read_text(errors="replace")
    assert read_log(str(harness)).args.get("gdn_prefill_backend") == "flashinfer"


def test_mamba2_hybrids_are_warned_about_the_warm_up_they_may_not_survive():
    """nemoh_trim died in warmup_kernels with CUDA out of memory after the commit (its log); the plan cannot size
    that step, so it says so: on 0.34's extensible path only, and only for Mamba-2 layers."""
    assert "CUDA out of memory" in _log("nemoh_trim") and "warmup_kernels" in _log("nemoh_trim")
    cfg = str(ROOT / "bench" / "truth" / "configs" / "nvidia--Nemotron-H-56B-Base-8K-trimmed")
    p = _plan(cfg, gpu_memory_utilization=0.9)
    assert any(w.startswith("Mamba-2 layers:") for w in p.warnings)
    p33 = vramplan.plan(load_model(cfg), device="h100-80gb", vllm_version="0.33.0",
                        args=EngineArgs(max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024,
                                        enforce_eager=True, gpu_memory_utilization=0.9))
    assert not any(w.startswith("Mamba-2 layers:") for w in p33.warnings)
    assert not any(w.startswith("Mamba-2 layers:") for w in _plan(Q8B).warnings)


HARNESS = ROOT / "data" / "truth" / "harness"


@pytest.mark.parametrize("name,cfg,limits", [
    ("q35_9b_trim", "Qwen--Qwen3.5-9B-trimmed", {"image": 0, "video": 0}),
    ("q35_35b_trim", "Qwen--Qwen3.5-35B-A3B-trimmed", {"image": 0, "video": 0}),
    ("gemma4_trim", "google--gemma-4-26B-A4B-trimmed", {"image": 0, "video": 0, "audio": 0}),
])
def test_a_tower_with_every_modality_at_zero_is_not_built(name, cfg, limits):
    """These startups ran text-only (limit 0 for every modality); vLLM 0.34 logged "Model loading took" before the
    harness stopped them (data/truth/harness): the towers were StageMissingLayers (_mark_tower_model)."""
    logged = _num((HARNESS / f"{name}.log").read_text(), r"Model loading took ([\d.]+) GiB")
    model = load_model(str(ROOT / "bench" / "truth" / "configs" / cfg))
    p = _plan(str(ROOT / "bench" / "truth" / "configs" / cfg), gpu_memory_utilization=0.9, limit_mm_per_prompt=limits)
    assert abs(p.logged_rank.bytes_of("weights") / GiB - logged) <= 0.015
    assert "vision" not in dict(p.logged_rank.term("weights").parts)
    with_tower = vramplan.plan(model, device="h100-80gb", vllm_version="0.34.0",
                               args=EngineArgs(max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024,
                                               enforce_eager=True, gpu_memory_utilization=0.9))
    assert "vision" in dict(with_tower.logged_rank.term("weights").parts)


@pytest.mark.parametrize("release,tower_on_stage_1", [("0.32.0", True), ("0.33.0", False), ("0.34.0", False)])
def test_the_tower_lives_on_the_first_pipeline_stage_from_033(release, tower_on_stage_1):
    """v0.33 _mark_tower_model: with the V2 runner, stages after the first get a StageMissingLayer."""
    p = vramplan.plan("Qwen/Qwen3-VL-8B-Instruct", device="h100-80gb", vllm_version=release, pipeline_parallel_size=2,
                      max_model_len=8192, env={"VLLM_USE_V2_MODEL_RUNNER": "1"} if release != "0.34.0" else None)
    first, last = p.ranks[0], p.ranks[-1]
    assert "vision" in dict(first.term("weights").parts)
    assert ("vision" in dict(last.term("weights").parts)) is tower_on_stage_1


def test_knobs_offer_text_only_for_a_vision_model_and_it_frees_the_tower():
    from vramplan.api import knobs

    ks = knobs("Qwen/Qwen3-VL-8B-Instruct", device="h100-80gb").knobs
    text_only = [k for k in ks if '"image": 0, "video": 0' in k.change]
    assert len(text_only) == 1 and text_only[0].freed_bytes > GiB // 2
    assert not [k for k in knobs("Qwen/Qwen3-8B", device="h100-80gb").knobs if '"image": 0' in k.change]


def test_mamba2_warmup_kernels_oom_is_predicted_in_vllms_numbers():
    """nemoh_trim: 'Tried to allocate 10.75 GiB' in warmup_kernels. By hand: 3,441 blocks were committable
    ('Committed 3441 of 3593'), 5 KV groups -> (3441 - 1) // 5 = 688 two-token requests, each a chunk of
    256 heads x 64 x 256 float32 = 16 MiB: 688 x 16 MiB = 10.75 GiB, twice (states and their output)."""
    text = _log("nemoh_trim")
    assert "Tried to allocate 10.75 GiB" in text and "Committed 3441 of 3593" in text
    cfg = str(ROOT / "bench" / "truth" / "configs" / "nvidia--Nemotron-H-56B-Base-8K-trimmed")
    p = _plan(cfg, gpu_memory_utilization=0.9)
    assert p.verdict == "fails" and p.error_kind == "out_of_memory" and p.error_phase == "warmup"
    assert p.error_message.startswith(f"CUDA out of memory. Tried to allocate {688 * 16 / 1024:.2f} GiB")
    assert "--max-num-seqs" in (p.fix or "")


def test_mamba2_warmup_transient_is_kept():
    """nemo3nano_trim kept 4.13 GiB for transients: 1,024 requests x 64 heads x 64 x 128 x 4 B x 2 = 4.0 GiB."""
    text = _log("nemo3nano_trim")
    kept = _num(text, r"GiB committed to the KV cache, ([\d.]+) GiB kept")
    cfg = str(ROOT / "bench" / "truth" / "configs" / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16-trimmed")
    p = _plan(cfg, gpu_memory_utilization=0.9)
    planned = p.logged_rank.bytes_of("warmup_transient_peak")
    assert planned == 2 * 1024 * 64 * 64 * 128 * 4
    assert abs(planned / GiB - kept) <= 0.15
    assert abs(p.num_gpu_blocks - 28315) / 28315 <= 0.015


H100F = ROOT / "data" / "truth" / "logs" / "h100f"


@pytest.mark.parametrize("name,cfg,logged_blocks", [
    ("q35_9b_trim_tri", "Qwen--Qwen3.5-9B-trimmed", 13136),
    ("q35_35b_trim_tri", "Qwen--Qwen3.5-35B-A3B-trimmed", 12002),
])
def test_gdn_warmup_transient_is_kept(name, cfg, logged_blocks):
    """Qwen3.5 trimmed with --gdn-prefill-backend triton (vLLM 0.34.0, one H100): warmup_kernels' 1,024 two-token
    prefills each gather a float32 state (32 v-heads x 128 x 128), write a float32 final state and, on FLA's Triton
    prefill, a bf16 chunk state: 1,024 x 524,288 x (4 + 4 + 2) B = 5.00 GiB; the logs keep 5.23 / 5.18 GiB."""
    text = (H100F / f"{name}.log").read_text(errors="replace")
    kept = _num(text, r"GiB committed to the KV cache, ([\d.]+) GiB kept")
    assert f"Extended KV cache to {logged_blocks} blocks" in text
    p = _plan(str(ROOT / "bench" / "truth" / "configs" / cfg), gpu_memory_utilization=0.9,
              limit_mm_per_prompt={"image": 0, "video": 0}, gdn_prefill_backend="triton")
    planned = p.logged_rank.bytes_of("warmup_transient_peak")
    assert planned == 1024 * 32 * 128 * 128 * (4 + 4 + 2)
    assert 0 <= kept - planned / GiB <= 0.3
    assert abs(p.num_gpu_blocks - logged_blocks) / logged_blocks <= 0.02
    assert any(w.startswith("GDN layers:") for w in p.warnings)


def test_gdn_warmup_without_the_triton_chunk_states_on_flashinfer():
    """FlashInfer's GDN prefill (the Hopper default) keeps no per-chunk states: 8 bytes a state element, not 10
    (vLLM 0.34.0 qwen_gdn_linear_attn.py:_forward_flashinfer_prefill; read from the source, not measured)."""
    cfg = str(ROOT / "bench" / "truth" / "configs" / "Qwen--Qwen3.5-9B-trimmed")
    p = _plan(cfg, gpu_memory_utilization=0.9, limit_mm_per_prompt={"image": 0, "video": 0})
    assert p.logged_rank.bytes_of("warmup_transient_peak") == 1024 * 32 * 128 * 128 * 8


def test_kimi_k25_tower_serves_vision_chunk_only():
    """Kimi-K2.5 marks its MoonViT for the modality 'vision_chunk' (vLLM kimi_k25.py _mark_tower_model): the trimmed
    run with image/video limits 0 logged 'Model loading took 24.51 GiB' with the tower; a vision_chunk limit of 0
    drops it."""
    text = (H100F / "kimi25_trim.log").read_text(errors="replace")
    logged = _num(text, r"Model loading took ([\d.]+) GiB")
    cfg = str(ROOT / "bench" / "truth" / "configs" / "moonshotai--Kimi-K2.5-trimmed")
    with_tower = _plan(cfg, gpu_memory_utilization=0.9, limit_mm_per_prompt={"image": 0, "video": 0})
    assert abs(with_tower.logged_rank.bytes_of("weights") / GiB - logged) / logged <= 0.005
    without = _plan(cfg, gpu_memory_utilization=0.9, limit_mm_per_prompt={"vision_chunk": 0})
    assert without.logged_rank.bytes_of("weights") < with_tower.logged_rank.bytes_of("weights") - GiB // 2


TRIMMED = [  # (log, config, extra flags): the trimmed-layer startups of issue 17 on vLLM 0.34.0, one H100
    ("h100f/q35_9b_trim_tri", "Qwen--Qwen3.5-9B-trimmed",
     dict(limit_mm_per_prompt={"image": 0, "video": 0}, gdn_prefill_backend="triton")),
    ("h100f/q35_35b_trim_tri", "Qwen--Qwen3.5-35B-A3B-trimmed",
     dict(limit_mm_per_prompt={"image": 0, "video": 0}, gdn_prefill_backend="triton")),
    ("h100f/gemma4_trim_tri", "google--gemma-4-26B-A4B-trimmed",
     dict(limit_mm_per_prompt={"image": 0, "video": 0, "audio": 0})),
    ("h100f/kimi25_trim", "moonshotai--Kimi-K2.5-trimmed", dict(limit_mm_per_prompt={"image": 0, "video": 0})),
    ("h100f/minimax_trim_nobf16x3", "MiniMaxAI--MiniMax-M2.7-trimmed", {}),
    ("h100f/nemoh_trim_mns256", "nvidia--Nemotron-H-56B-Base-8K-trimmed", dict(max_num_seqs=256)),
    ("h100e/nemo3nano_trim", "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16-trimmed", {}),
]


@pytest.mark.parametrize("log,cfg,flags", TRIMMED, ids=[t[0].split("/")[1] for t in TRIMMED])
def test_trimmed_architectures_kv_bytes_per_block_and_per_token_equal_vllms(log, cfg, flags):
    """Issue 17's exact check, per architecture, on vLLM's own lines: the blocks it committed ('Extended KV cache
    to N blocks (X GiB)') at the plan's bytes per block (in 2 MiB granules) give X GiB to the logged hundredth, and the plan's per-request pages of every KV
    group turn N blocks into exactly the tokens vLLM logs ('GPU KV cache size: T tokens', max-model-len 4096)."""
    from vramplan.rules.kv import capacity

    text = (ROOT / "data" / "truth" / "logs" / f"{log}.log").read_text(errors="replace")
    m = re.search(r"Extended KV cache to (\d+) blocks \(([\d.]+) GiB\)", text)
    assert m
    blocks, gib = int(m.group(1)), float(m.group(2))
    tokens = _num(text, r"GPU KV cache size: ([\d,]+) tokens")
    kw = dict(gpu_memory_utilization=0.9)
    kw.update(flags)
    p = _plan(str(ROOT / "bench" / "truth" / "configs" / cfg), **kw)
    layout = p.logged_rank.layout
    # the physical bytes of N blocks: each reserved segment rounded to 2 MiB granules (extensible_kv_cache.py)
    from vramplan.engines.vllm.sizing.extensible import physical_bytes_for, segment_strides

    assert abs(physical_bytes_for(blocks, segment_strides(layout)) / GiB - gib) <= 0.005
    got, _ = capacity(layout, blocks, max_model_len=4096, max_in_flight_tokens=p.engine.max_in_flight_tokens,
                      v033=p.rules.capacity_v033, tokens_from_concurrency=p.rules.kv_tokens_from_concurrency)
    assert got == tokens


@pytest.mark.parametrize("log,release", [("h100f/q06b_e_base", "0.33.0"), ("h100f/q06b_e_unset", "0.34.0"),
                                         ("h100e/q8b_e_unset", "0.34.0")])
def test_v2_dummy_sampler_warmup_pass_sets_the_profile_peak(log, release):
    """From vLLM 0.33 the V2 runner's dummy sampler runs a second pass with every sampler feature on
    (GPUModelRunner._dummy_sampler_run, SamplingParams.for_sampler_warmup): Qwen3-0.6B's profile peak went from
    0.34 GiB on 0.26 (data/truth/logs/h100a/q06b_e_base) to 0.99 on 0.33 and 0.34 at the same flags; Qwen3-8B's is
    1.04. The plan's (the float32 copy of the logits beside the model-dtype ones, read from the source) is within
    0.1 GiB; 0.32 has no such pass."""
    text = (ROOT / "data" / "truth" / "logs" / f"{log}.log").read_text(errors="replace")
    logged = _num(text, r"torch peak memory increase: ([\d.]+)GiB")
    model = str(ROOT / "vramplan" / "catalog" / "Qwen" / ("Qwen3-0.6B" if "q06b" in log else "Qwen3-8B"))
    args = EngineArgs(max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024, enforce_eager=True,
                      gpu_memory_utilization=0.9)
    p = vramplan.plan(load_model(model), device="h100-80gb", vllm_version=release, args=args)
    assert abs(p.logged_rank.bytes_of("activation_peak") / GiB - logged) <= 0.1
    assert vramplan.plan(load_model(model), device="h100-80gb", vllm_version=release, args=args).rules \
        .sampler_fp32_warmup_pass
    old = vramplan.plan(load_model(model), device="h100-80gb", vllm_version="0.32.0", args=args)
    assert not old.rules.sampler_fp32_warmup_pass


def test_knobs_offer_the_gdn_prefill_kernel_where_flashinfer_runs():
    """On Hopper a GDN model prefills with FlashInfer's kernel, which holds a checkpoint page per GDN group and
    request; `--gdn-prefill-backend triton` drops it (3 -> 2 pages a GDN group, as on an A100), so the knob adds
    tokens. Elsewhere Triton already runs and there is no such knob."""
    from vramplan.api import knobs

    rows = [k for k in knobs("Qwen/Qwen3.5-9B", device="h100-80gb", max_model_len=32768).knobs
            if k.change == "--gdn-prefill-backend triton"]
    assert len(rows) == 1 and rows[0].kv_tokens_added > 0
    assert not [k for k in knobs("Qwen/Qwen3.5-9B", device="a100-80gb", max_model_len=32768).knobs
                if k.change.startswith("--gdn-prefill-backend")]
    assert not [k for k in knobs("Qwen/Qwen3-8B", device="h100-80gb").knobs if "gdn" in k.change]


def test_compiled_profile_on_034_holds_no_embedding_copy():
    """vLLM 0.26's compiled V2 profile run held an embedding-sized copy (data/device_v026); 0.34's one compiled
    startup logs the eager peak: 1.04 GiB for Qwen3-8B compiled and eager alike (q8b_g_unset, q8b_e_unset)."""
    g = _num(_log("q8b_g_unset"), r"torch peak memory increase: ([\d.]+)GiB")
    e = _num(_log("q8b_e_unset"), r"torch peak memory increase: ([\d.]+)GiB")
    assert g == e == 1.04
    args = dict(max_model_len=4096, max_num_batched_tokens=8192, max_num_seqs=1024)
    comp = vramplan.plan(load_model(Q8B), device="h100-80gb", vllm_version="0.34.0", args=EngineArgs(**args))
    eager = vramplan.plan(load_model(Q8B), device="h100-80gb", vllm_version="0.34.0",
                          args=EngineArgs(enforce_eager=True, **args))
    assert comp.logged_rank.bytes_of("activation_peak") == eager.logged_rank.bytes_of("activation_peak")
    assert abs(comp.logged_rank.bytes_of("activation_peak") / GiB - g) <= 0.1
    old = vramplan.plan(load_model(Q8B), device="h100-80gb", vllm_version="0.26.0", args=EngineArgs(**args))
    old_e = vramplan.plan(load_model(Q8B), device="h100-80gb", vllm_version="0.26.0",
                          args=EngineArgs(enforce_eager=True, **args))
    assert old.logged_rank.bytes_of("activation_peak") > old_e.logged_rank.bytes_of("activation_peak") + GiB // 4


def test_text_only_knob_names_the_modalities_the_tower_serves():
    """Kimi-K2.5's tower is marked for `vision_chunk` (kimi_k25.py _mark_tower_model), so the text-only knob must
    zero that limit; image/video limits would leave the tower built and free nothing."""
    from vramplan.api import knobs

    rows = [k for k in knobs("moonshotai/Kimi-K2.5", device="h200", tensor_parallel_size=8).knobs
            if k.name == "text only"]
    assert len(rows) == 1 and rows[0].change == "--limit-mm-per-prompt '{\"vision_chunk\": 0}'"
    assert rows[0].freed_bytes > 0
