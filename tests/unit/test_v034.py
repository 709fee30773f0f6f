"""vLLM 0.34: the extensible KV cache (reserve, warm up, commit), its switches and its words.

Expected values are hand calculations from the 0.34 source's formulas, written out here:
vllm/v1/worker/extensible_kv_cache.py (KV_CACHE_MARGIN_FLOOR_BYTES = 1 << 30, KV_CACHE_MARGIN_FRACTION = 0.75,
measure_kv_cache_bytes, blocks_within with 2 MiB granules), vllm/config/cache.py (DEFAULT_BLOCK_SIZE = 64,
resolved_gpu_memory_utilization), vllm/v1/worker/utils.py (request_memory = ceil(total x util)).
The empirical inputs (profile peak, non-torch, graph pool) are read from the plan's own measured terms: what is
checked is the 0.34 arithmetic on top of them. The warm-up peak is written out from the 0.26 fit
(0.6 GiB + 9.5 B x min(max_num_seqs, mnbt) x vocab).
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.errors import InvalidConfig
from vramplan.render.json import plan_to_dict
from vramplan.engines.vllm.rules.versions import DEFAULT_VERSION, for_version
from vramplan.engines.vllm.sizing.extensible import measure_kv_cache_bytes

GiB, MiB = 1 << 30, 1 << 20
# Qwen3-8B: 36 layers x (K + V) x 8 kv heads x 128 x 2 bytes = 147,456 B per token; a 64-token block per layer is
# 262,144 B (one segment per layer under the default LBNHC layout), 9,437,184 B across the 36 layers.
PAGE = 64 * 2 * 8 * 128 * 2
BPB = 36 * PAGE


def _phys(n: int) -> int:
    """ExtensibleKVCache.physical_bytes_for: 36 segments, each rounded up to 2 MiB."""
    return 36 * math.ceil(n * PAGE / (2 * MiB)) * 2 * MiB


def _blocks_within(num_bytes: int, capacity: int) -> int:
    n = min(num_bytes // BPB, capacity)
    while n > 0 and _phys(n) > num_bytes:
        n -= 1
    return n


def _by_hand(p, util: float):
    """measure_kv_cache_blocks for Qwen3-8B on one H100, from the plan's measured inputs."""
    r = p.logged_rank
    total = p.device.total_bytes
    w, peak, nt = r.bytes_of("weights"), r.bytes_of("activation_peak"), r.bytes_of("non_torch")
    pool = r.bytes_of("cudagraph_pool")
    free0 = r.free_at_init_bytes
    requested = math.ceil(total * util)
    reserved = (requested - (w + nt + peak)) // BPB  # profile: requested - (consumed + transient), no graph estimate
    # record_transient_peak runs before capture and before the sampler warm-up, and measure_kv_cache_blocks empties
    # torch's cache first (v0.34.0 gpu_worker.py Worker._compile_or_warm_up_model): the profile peak is what is kept
    # (vLLM 0.34.0 on Qwen3-8B kept 0.95-0.98 GiB, data/truth/logs/h100e/q8b_e_unset.log)
    transient = peak
    committed = _phys(1)  # the null block, 36 x 2 MiB
    non_kv_used = w + nt + pool
    free = free0 - non_kv_used - committed
    margin = max(GiB, int(0.75 * transient))
    avail = max(min(requested - non_kv_used, free + committed - margin) - transient, 0)
    return dict(reserved=reserved, transient=transient, margin=margin, avail=avail, free=free,
                blocks=_blocks_within(avail, reserved), requested=requested, non_kv_used=non_kv_used)


def test_default_release_is_034_on_cuda_and_033_on_ascend():
    assert DEFAULT_VERSION == "0.34.0"
    assert for_version(None).version == (0, 34, 0)
    assert for_version(None, platform="rocm").version == (0, 34, 0)
    # no vllm-ascend release runs on vLLM 0.34 (newest on PyPI: 0.23.0.post1), and the cache is CUDA/ROCm only
    assert for_version(None, platform="ascend").version == (0, 33, 0)
    assert vramplan.plan("Qwen/Qwen3-8B").vllm_version == "0.34.0"


@pytest.mark.parametrize("release", ["0.35.0", "0.40.2", "1.0.0"])
def test_a_release_past_the_newest_rule_set_warns_and_names_the_stand_in(release):
    p = vramplan.plan("Qwen/Qwen3-8B", vllm_version=release)
    assert p.rules.version == (0, 34, 0)
    assert p.warnings[0].startswith(f"vLLM {release} is newer than the newest rule set") and "v0.34.0" in p.warnings[0]
    d = plan_to_dict(p)
    assert d["warnings"][0] == p.warnings[0] and d["rules_stand_in"] is True and d["rules_version"] == "0.34.0"


def test_patch_releases_of_the_newest_line_do_not_warn():
    assert not any("newer than" in w for w in vramplan.plan("Qwen/Qwen3-8B", vllm_version="0.34.1").warnings)


def test_qwen3_8b_on_h100_by_hand():
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=32768)
    e = p.engine
    assert e.extensible_kv_cache and e.gpu_memory_utilization == 1.0 and e.block_size == 64
    assert e.runner == "v2" and not e.estimate_cudagraphs
    h = _by_hand(p, 1.0)
    r = p.logged_rank
    assert r.requested_bytes == h["requested"] == p.device.total_bytes  # ceil(total x 1.0)
    assert r.bytes_of("reserved_bound") == h["reserved"] * BPB
    assert r.bytes_of("warmup_transient_peak") == h["transient"]
    assert r.bytes_of("kv_margin") == h["margin"]
    assert r.available_kv_bytes == h["avail"]
    assert p.num_gpu_blocks == h["blocks"] and h["blocks"] < h["reserved"]
    # one full-attention group: concurrency = blocks / (32768 / 64), tokens = blocks x 64
    assert p.kv_cache_tokens == h["blocks"] * 64
    assert f"Extended KV cache to {h['blocks']} blocks ({_phys(h['blocks']) / GiB:.2f} GiB)." in p.log_lines
    # vLLM's format_gib prints round(bytes / GiB, 2) (vllm/utils/mem_utils.py): 61.6, not 61.60
    assert any(x.startswith(f"Memory after warmup: {round(h['free'] / GiB, 2)} GiB free, {round(_phys(1) / GiB, 2)} "
                            f"GiB committed")
               for x in p.log_lines)
    # util 1.0: the device, not util, bounds the cache (free + committed - margin < requested - non-KV used)
    assert h["free"] + _phys(1) - h["margin"] < h["requested"] - h["non_kv_used"]
    assert r.bytes_of("cudagraph_estimate") == 0


def test_util_below_one_caps_the_cache_and_warns_verbatim():
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", max_model_len=32768, gpu_memory_utilization=0.9)
    h = _by_hand(p, 0.9)
    assert p.num_gpu_blocks == h["blocks"]
    assert h["requested"] - h["non_kv_used"] < h["free"] + _phys(1) - h["margin"]  # util binds here
    full = max(min(p.logged_rank.free_at_init_bytes - h["non_kv_used"], h["free"] + _phys(1) - h["margin"])
               - h["transient"], 0)
    withheld = full - h["avail"]
    assert withheld >= GiB
    text = (f"gpu_memory_utilization=0.9 caps this instance at {h['requested'] / GiB:.2f} GiB, keeping "
            f"{withheld / GiB:.2f} GiB of free device memory out of the KV cache.")
    assert any(w.startswith(text) for w in p.warnings)
    assert plan_to_dict(p)["extensible_kv_cache"]["util_withheld_gib"] == round(withheld / GiB, 4)
    # util 0.7 and below: no warning (0.7 < util < 1.0 only)
    assert not any("caps this instance" in w for w in
                   vramplan.plan("Qwen/Qwen3-8B", max_model_len=32768, gpu_memory_utilization=0.7).warnings)


def test_measure_kv_cache_bytes_formula():
    # init free 78 GiB, 60 GiB free after warm-up with 0.5 GiB committed: non-KV used 17.5 GiB, headroom 60.5 GiB.
    # transient 2 GiB: margin max(1, 1.5) = 1.5 GiB. requested 70 GiB: min(70 - 17.5, 60.5 - 1.5) - 2 = 50.5 GiB.
    got = measure_kv_cache_bytes(init_free_memory=78 * GiB, free_memory=60 * GiB, committed_bytes=GiB // 2,
                                 requested_memory=70 * GiB, transient_peak_bytes=2 * GiB)
    assert got == int(50.5 * GiB)
    # the floor: a 0.4 GiB transient keeps a 1 GiB margin; reserve growth above the peak is kept instead
    got = measure_kv_cache_bytes(init_free_memory=78 * GiB, free_memory=60 * GiB, committed_bytes=0,
                                 requested_memory=80 * GiB, transient_peak_bytes=int(0.4 * GiB),
                                 torch_reserve_growth_bytes=GiB)
    assert got == 60 * GiB - GiB - GiB
    assert measure_kv_cache_bytes(init_free_memory=10, free_memory=0, committed_bytes=0, requested_memory=5) == 0


def test_no_free_memory_refusal_under_the_extensible_cache():
    # 20 GiB held by another program: 0.33 refuses at util 0.92 (request_memory); 0.34 only over-reserves address space
    assert vramplan.plan("Qwen/Qwen3-8B", used_by_others_gib=20, vllm_version="0.33").error_kind == \
        "free_memory_below_requested"
    p = vramplan.plan("Qwen/Qwen3-8B", used_by_others_gib=20, max_model_len=32768)
    assert p.starts and p.engine.gpu_memory_utilization == 1.0
    # turned off, 0.34 sizes as 0.33 did, util 0.92, and refuses
    off = vramplan.plan("Qwen/Qwen3-8B", used_by_others_gib=20, enable_extensible_kv_cache=False)
    assert off.error_kind == "free_memory_below_requested" and off.engine.gpu_memory_utilization == 0.92


@pytest.mark.parametrize("kw", [
    {"kv_cache_memory_bytes": 10 * GiB}, {"num_gpu_blocks_override": 1000}, {"enable_elastic_ep": True},
    {"enable_extensible_kv_cache": False}, {"kv_transfer_config": {"kv_connector": "LMCacheMPConnector"}},
    {"kv_transfer_config": {"kv_connector": "NixlConnector", "kv_role": "kv_both"}},
])
def test_what_turns_it_off(kw):
    p = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192, **kw)
    assert not p.engine.extensible_kv_cache and p.engine.gpu_memory_utilization == 0.92
    assert plan_to_dict(p)["extensible_kv_cache"] is None and plan_to_dict(p)["kv_sizing"] == "profile"


def test_kv_cache_memory_bytes_is_the_deterministic_alternative():
    # 10 GiB / 9,437,184 B per 64-token block = 1137 blocks
    p = vramplan.plan("Qwen/Qwen3-8B", kv_cache_memory_bytes=10 * GiB, max_model_len=4096)
    assert p.num_gpu_blocks == (10 * GiB) // BPB == 1137 and p.kv_cache_tokens == 1137 * 64


def test_explicit_request_where_unsupported_is_vllms_error():
    with pytest.raises(InvalidConfig, match=r"^enable_extensible_kv_cache: it sizes the KV cache from measured memory, "
                                            r"which kv_cache_memory_bytes overrides\.$"):
        vramplan.plan("Qwen/Qwen3-8B", kv_cache_memory_bytes=10 * GiB, enable_extensible_kv_cache=True)
    with pytest.raises(InvalidConfig, match="arrived in vLLM 0.34"):
        vramplan.plan("Qwen/Qwen3-8B", enable_extensible_kv_cache=True, vllm_version="0.33")


def test_ascend_with_the_034_rules_keeps_the_profile_sizing():
    p = vramplan.plan("Qwen/Qwen3-8B", device="ascend-910b3", vllm_version="0.34")
    assert not p.engine.extensible_kv_cache and p.engine.gpu_memory_utilization == 0.92
    assert p.engine.block_size == 128  # vllm-ascend refresh_block_size, prefix caching on


def test_the_v1_runner_is_gone():
    with pytest.raises(InvalidConfig, match=r"VLLM_USE_V2_MODEL_RUNNER=0 is no longer supported: Model Runner V1 has "
                                            r"been removed\. Unset this variable\."):
        vramplan.plan(flags="VLLM_USE_V2_MODEL_RUNNER=0 vllm serve Qwen/Qwen3-8B".split())
    p = vramplan.plan(flags="VLLM_USE_V2_MODEL_RUNNER=1 vllm serve Qwen/Qwen3-8B".split())
    assert p.engine.runner == "v2"
    assert "VLLM_USE_V2_MODEL_RUNNER=1 is redundant and can be unset: Model Runner V1 has been removed." in p.warnings
    assert vramplan.plan(flags="VLLM_USE_V2_MODEL_RUNNER=0 vllm serve Qwen/Qwen3-8B".split(),
                         vllm_version="0.33").engine.runner == "v1"


@pytest.mark.parametrize("model,device,release,block", [
    ("Qwen/Qwen3-8B", "h100-80gb", "0.34", 64),            # FLASH_ATTN MultipleOf(16) takes the default 64
    ("Qwen/Qwen3-8B", "h100-80gb", "0.33", 16),
    ("Qwen/Qwen3-8B", "b200", "0.34", 64),                 # FLASHINFER [16, 32, 64]
    ("deepseek-ai/DeepSeek-V2-Lite", "h100-80gb", "0.34", 64),  # FLASH_ATTN_MLA MultipleOf(16)
    ("deepseek-ai/DeepSeek-V2-Lite", "h100-80gb", "0.33", 16),
    ("deepseek-ai/DeepSeek-V2-Lite", "b200", "0.34", 64),  # FLASHINFER_MLA [32, 64] (0.33: 32)
    ("deepseek-ai/DeepSeek-V2-Lite", "b200", "0.33", 32),
    ("Qwen/Qwen3-8B", "mi300x", "0.34", 16),               # ROCM_ATTN's get_preferred_block_size returns 16
])
def test_default_block_size(model, device, release, block):
    assert vramplan.plan(model, device=device, vllm_version=release, max_model_len=4096).engine.block_size == block


def test_graph_estimate_only_with_the_variable_and_never_under_the_extensible_cache():
    on = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192)
    assert not on.engine.estimate_runs and on.logged_rank.bytes_of("cudagraph_estimate") == 0
    off = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192, enable_extensible_kv_cache=False)
    assert off.engine.estimate_runs and off.logged_rank.bytes_of("cudagraph_estimate") > 0
    off0 = vramplan.plan(flags=["VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0", "vllm", "serve", "Qwen/Qwen3-8B",
                                "--max-model-len", "8192", "--no-enable-extensible-kv-cache"])
    assert not off0.engine.estimate_runs and off0.logged_rank.bytes_of("cudagraph_estimate") == 0


def test_max_model_len_is_checked_again_after_warm_up():
    # util 0.29: the reserved bound holds 40,960 tokens (640 blocks of 64) but what is measured after warm-up does not
    p = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.29)
    h = _by_hand(p, 0.29)
    assert h["reserved"] - 1 >= 640 > h["blocks"] - 1
    assert p.error_kind == "max_model_len_exceeds_kv_cache" and p.error_phase == "kv_sizing"
    assert p.error_message.startswith(
        f"To serve at least one request with the model's max seq len (40960), (5.62 GiB KV cache is needed, which is "
        f"larger than the available KV cache memory ({(h['blocks'] - 1) * BPB / GiB:.2f} GiB). Based on the available "
        f"memory, the estimated maximum model length is {(h['blocks'] - 1) * 64}. The KV cache gets what is left after "
        f"the model, its activations, CUDA graphs and warmup within `gpu_memory_utilization`=0.29; increase it")
    assert p.error_message.endswith("Decreasing `max_model_len` also reduces what is needed. See "
                                    "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")
    assert p.estimated_max_model_len == (h["blocks"] - 1) * 64


def test_auto_max_model_len_is_refitted_after_warm_up():
    p = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.29, max_model_len=-1)
    h = _by_hand(p, 0.29)
    assert p.starts and p.max_model_len == (h["blocks"] - 1) * 64 < 40960


def test_the_capacity_check_before_warm_up_speaks_034():
    # util 0.15: the profile leaves nothing (weights alone are 15.27 GiB of the 11.88 GiB requested)
    p = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.15)
    assert p.error_kind == "no_kv_cache_memory"
    assert p.error_message == (
        "No available memory for the cache blocks. The KV cache gets what is left after the model and its "
        "activations within `gpu_memory_utilization`=0.15; increase it (with the extensible KV cache it defaults to "
        "1.0) or decrease `max_model_len` or `max_num_seqs`. See "
        "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.")
    off = vramplan.plan("Qwen/Qwen3-8B", gpu_memory_utilization=0.15, enable_extensible_kv_cache=False)
    assert off.error_message.startswith("No available memory for the cache blocks. Try increasing "
                                        "`gpu_memory_utilization` when initializing the engine (this flag also "
                                        "controls CPU memory reservation on the CPU backend, despite its name). See")


def test_json_keeps_the_contract_and_adds_the_034_story():
    d = plan_to_dict(vramplan.plan("Qwen/Qwen3-8B", max_model_len=32768))
    for key in ("vllm_version", "model", "device", "tp", "pp", "dp", "max_model_len", "block_size", "verdict",
                "error_kind", "error_message", "memory_gib", "num_gpu_blocks", "kv_cache_tokens", "max_concurrency",
                "estimated_max_model_len"):
        assert key in d
    assert set(d["memory_gib"]) >= {"requested", "weights", "activation_peak", "non_torch", "cudagraph_estimate",
                                    "non_kv_total", "kv_cache"}
    ext = d["extensible_kv_cache"]
    assert d["kv_sizing"] == "extensible" and ext["committed_blocks"] == d["num_gpu_blocks"]
    assert ext["reserved_blocks"] > ext["committed_blocks"] and ext["margin_gib"] >= 1.0
    assert d["memory_gib"]["kv_cache"] == ext["kv_measured_gib"]


SETTINGS = settings(max_examples=int(os.environ.get("VRAMPLAN_PLAN_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(model=st.sampled_from(["Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
                              "deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-VL-8B-Instruct"]),
       device=st.sampled_from(["h100-80gb", "h200", "a100-40gb", "l40s", "mi300x"]),
       u=st.one_of(st.none(), st.floats(min_value=0.3, max_value=1.0)), tp=st.sampled_from([1, 2]),
       others=st.sampled_from([0, 4, 20]))
def test_committed_blocks_fit_the_measured_memory_and_the_reserved_range(model, device, u, tp, others):
    try:
        p = vramplan.plan(model, device=device, gpu_memory_utilization=u, max_model_len=4096,
                          tensor_parallel_size=tp, used_by_others_gib=others)
    except InvalidConfig:
        assume(False)
        return
    assert p.error_kind != "free_memory_below_requested"
    if not p.starts:
        return
    for r in p.ranks:
        n, bpb = r.num_blocks, r.layout.bytes_per_block
        assert p.num_gpu_blocks <= n
        assert n * bpb <= r.available_kv_bytes  # blocks_within: the physical footprint fits
        assert n * bpb <= r.bytes_of("reserved_bound")
        # at most one 2 MiB granule per segment is lost to rounding
        if n < r.bytes_of("reserved_bound") // bpb:
            assert (n + 1) * bpb + r.layout.group_size * 2 * MiB > r.available_kv_bytes
    more = vramplan.plan(model, device=device, gpu_memory_utilization=u, max_model_len=4096,
                         tensor_parallel_size=tp, used_by_others_gib=max(others - 4, 0))
    assert not more.starts or more.num_gpu_blocks >= p.num_gpu_blocks  # less held by others never costs blocks


def test_fit_speaks_034():
    from vramplan.api import load_model, resolve_device
    from vramplan.fit import Workload, fit
    from vramplan.engines.vllm.flags import EngineArgs

    model, dev = load_model("Qwen/Qwen3-8B"), resolve_device("h100-80gb")
    res = fit(model, dev, for_version(None), EngineArgs(model="Qwen/Qwen3-8B"), Workload(concurrency=8, context=32768))
    assert res.plan.engine.extensible_kv_cache
    notes = " ".join(res.notes)
    assert "only caps the budget" in notes and "left unset (1.0)" in notes
    assert "--kv-cache-memory-bytes turns the extensible cache off" in notes
    # the unset plan holds more than the answer's
    unset = vramplan.plan("Qwen/Qwen3-8B", max_model_len=32768, max_num_seqs=8)
    assert f"left unset (1.0) the cache holds {unset.kv_cache_tokens:,} tokens" in notes
    old = fit(model, dev, for_version("0.33"), EngineArgs(model="Qwen/Qwen3-8B"), Workload(concurrency=8, context=32768))
    assert old.notes == ()


def test_knobs_offer_the_extensible_cache_on_cuda_034_only():
    from vramplan.api import load_model, resolve_device
    from vramplan.fit import knobs
    from vramplan.engines.vllm.flags import EngineArgs

    model = load_model("Qwen/Qwen3-8B")
    args = EngineArgs(model="Qwen/Qwen3-8B", max_model_len=32768)
    base, ks = knobs(model, resolve_device("h100-80gb"), for_version(None), args)
    k = {x.name: x for x in ks}
    assert k["extensible KV cache"].change == "--no-enable-extensible-kv-cache"
    off = k["extensible KV cache"].plan
    assert not off.engine.extensible_kv_cache and off.engine.gpu_memory_utilization == 0.92

    def process(p):  # context + resident after warm-up + committed KV (36 x 2 MiB granules) + transient peak
        r = p.logged_rank
        ctx = p.device.total_bytes - r.free_at_init_bytes
        return ctx + r.bytes_of("non_kv_after_warmup") + _phys(p.num_gpu_blocks) + r.bytes_of("warmup_transient_peak")

    u = k["gpu-memory-utilization"]
    assert u.change == "--gpu-memory-utilization 0.95" and u.freed_bytes == process(base) - process(u.plan)
    for device, release in (("h100-80gb", "0.33"), ("ascend-910b3", "0.34")):
        _, ks = knobs(model, resolve_device(device), for_version(release, platform=resolve_device(device).platform),
                      args)
        assert "extensible KV cache" not in {x.name for x in ks}


@pytest.mark.parametrize("backend,default,expected", [
    # vLLM v0.34.0 get_preferred_block_size(64): the default if supported, else the smallest supported size
    ("FLASH_ATTN", 64, 64), ("FLASHINFER", 64, 64), ("TRITON_ATTN", 64, 64), ("FLASHMLA", 64, 64),
    ("CUTLASS_MLA", 64, 128), ("FLASHINFER_MLA", 64, 64), ("FLASH_ATTN_MLA", 64, 64), ("TRITON_MLA", 64, 64),
    ("ROCM_ATTN", 64, 16), ("ROCM_AITER_FA", 64, 16), ("ROCM_AITER_UNIFIED_ATTN", 64, 64), ("CPU_ATTN", 64, 64),
    ("SPARSE_SWA", 64, 256),
    # the 0.33 default (16) keeps the 0.33 table
    ("FLASH_ATTN", 16, 16), ("FLASHINFER_MLA", 16, 32), ("CUTLASS_MLA", 16, 128),
])
def test_preferred_block_per_backend(backend, default, expected):
    from vramplan.engines.vllm.rules.engine_defaults import default_block_size

    assert default_block_size((0, 34, 0), "cuda", attention_backend=backend, default=default) == expected


def test_capture_grids_match_the_counts_vllm_documents():
    from vramplan.engines.vllm.rules.engine_defaults import (
        decode_cudagraph_capture_grid,
        prefill_cudagraph_capture_grid,
    )

    # vLLM v0.34.0 config/compilation.py docstrings: "54 sizes at 8192", "64 sizes at 1024"; "1, 2, 4, every 8 up
    # to 64, four sizes per doubling up to 1024"; "every count up to 6, then ... 2 from 8, 4 from 16"
    pre = prefill_cudagraph_capture_grid(8192)
    assert len(pre) == 54 and pre[:12] == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 80] and pre[-1] == 8192
    dec = decode_cudagraph_capture_grid(1024)
    assert len(dec) == 64 and dec[:10] == [1, 2, 3, 4, 5, 6, 8, 10, 12, 14] and dec[-1] == 1024


def test_capture_sizes_034():
    # H100: no wide defaults, the 0.33 list is kept (prefill = shared sizes, decode = their request counts)
    new = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192).engine.capture_sizes
    old = vramplan.plan("Qwen/Qwen3-8B", max_model_len=8192, vllm_version="0.33").engine.capture_sizes
    assert new == old
    # SM100: the prefill grid up to min(8192, mnbt) and the decode grid up to max_num_seqs, as token counts
    from vramplan.engines.vllm.rules.engine_defaults import (
        decode_cudagraph_capture_grid,
        prefill_cudagraph_capture_grid,
    )

    p = vramplan.plan("Qwen/Qwen3-8B", device="b200", max_model_len=8192)
    e = p.engine
    expect = set(prefill_cudagraph_capture_grid(min(8192, e.max_num_batched_tokens)))
    expect |= {min(n, e.max_num_seqs) for n in decode_cudagraph_capture_grid(e.max_num_seqs)}
    assert set(e.capture_sizes) == expect
    # the legacy knob turns the wide defaults off
    legacy = vramplan.plan(flags="vllm serve Qwen/Qwen3-8B --max-model-len 8192 -cc.max_cudagraph_capture_size=64".split(),
                           device="b200")
    assert max(legacy.engine.capture_sizes) == 64
    # an explicit prefill list above its own cap is vLLM's error
    with pytest.raises(InvalidConfig, match=r"prefill_cudagraph_capture_token_sizes holds 4096, above "
                                            r"max_prefill_cudagraph_capture_tokens=1024\."):
        vramplan.plan(flags=["vllm", "serve", "Qwen/Qwen3-8B", "--max-model-len", "8192",
                             "-cc.prefill_cudagraph_capture_token_sizes=[1,2,4096]",
                             "-cc.max_prefill_cudagraph_capture_tokens=1024"])


def test_watch_levels_under_the_extensible_cache():
    from vramplan.watch.cli import plan_levels_for

    levels, why = plan_levels_for("vllm serve Qwen/Qwen3-8B --max-model-len 32768".split())
    p = vramplan.plan("Qwen/Qwen3-8B", max_model_len=32768)
    r = p.logged_rank
    ctx = p.device.total_bytes - r.free_at_init_bytes
    assert why is None and "planned requested budget" not in levels  # util 1.0 is only a cap
    assert levels["planned total after the KV commit"] == ctx + r.bytes_of("non_kv_after_warmup") + _phys(p.num_gpu_blocks)


@SETTINGS
@given(model=st.sampled_from(["Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
                              "deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-0.6B"]),
       device=st.sampled_from(["h100-80gb", "h200", "a100-40gb", "l40s", "l4"]),
       u=st.floats(min_value=0.2, max_value=0.97), tp=st.sampled_from([1, 2]),
       mml=st.sampled_from([2048, 8192, 32768]), eager=st.booleans())
def test_with_the_cache_off_034_keeps_the_033_arithmetic(model, device, u, tp, mml, eager):
    kw = dict(device=device, gpu_memory_utilization=u, tensor_parallel_size=tp, max_model_len=mml,
              enforce_eager=eager, block_size=16)
    try:
        old = vramplan.plan(model, vllm_version="0.33", **kw)
        new = vramplan.plan(model, vllm_version="0.34", enable_extensible_kv_cache=False, **kw)
    except InvalidConfig:
        assume(False)
        return
    assert (new.verdict, new.error_kind, new.num_gpu_blocks, new.kv_cache_tokens) == \
        (old.verdict, old.error_kind, old.num_gpu_blocks, old.kv_cache_tokens)
    assert new.logged_rank.available_kv_bytes == old.logged_rank.available_kv_bytes


def test_fix_explains_why_it_is_below_vllms_first_estimate():
    """Llama-3.1-70B on 2 H100s, defaults: vLLM 0.34 first checks max_model_len against the reserved bound, then
    again after warm-up on the committed blocks. The fix must be a length that passes both checks, and say why it is
    below the estimate in vLLM's first error."""
    p = vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2, device="h100-80gb")
    assert not p.starts and p.error_kind == "max_model_len_exceeds_kv_cache"
    first = p.estimated_max_model_len
    n = int(p.fix.split("--max-model-len to ")[1].split()[0])
    assert n < first and f"first check estimates {first}" in p.fix
    assert vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2, device="h100-80gb",
                         max_model_len=n).starts
    assert not vramplan.plan("meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2, device="h100-80gb",
                             max_model_len=first).starts
