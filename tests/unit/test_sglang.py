"""SGLang engine package: hand calculations from SGLang's formulas, written out here.

Sources: sglang 0.5.17 srt/server_args.py:_handle_gpu_memory_settings, 0.5.23
srt/arg_groups/memory_hook.py:handle_gpu_memory_settings, pool_configurator.py, kv_cache_configurator.py.
The expected values are computed in the tests from the config numbers, never read from the code under test.
"""

from __future__ import annotations

import pytest

from vramplan.engines import sglang
from vramplan.engines.sglang.defaults import decode_capture_sizes, prefill_capture_sizes
from vramplan.engines.sglang.flags import parse_sglang_flags
from vramplan.engines.sglang.pool import max_running_requests, sglang_pp_split
from vramplan.engines.sglang.rules import rules_for
from vramplan.errors import FlagError, InvalidConfig

H100_SMI_MIB = 81559  # nvidia-smi memory.total of an H100 80GB HBM3



def _exact(w) -> int:
    """The weights without the caching allocator's segment rounding (rules/allocator.py, checked on its own and on the
    real SGLang logs in test_sglang_measured.py): these tests count the tensors."""
    return w.total_bytes - w.part("allocator")


def _prefill_sizes_8192() -> int:
    # range(4,33,4)=8, range(48,257,16)=14, range(288,513,32)=8, range(576,1025,64)=8, range(1280,4097,256)=12,
    # range(4608,8193,512)=8
    return 8 + 14 + 8 + 8 + 12 + 8


def test_prefill_and_decode_capture_sizes():
    assert len(prefill_capture_sizes(8192)) == _prefill_sizes_8192() == 58
    # decode, max_bs 256: [1,2,4,8,12] + 16..256 step 8 (31)
    assert len(decode_capture_sizes(256)) == 5 + 31
    assert decode_capture_sizes(100)[-1] == 100  # max_bs appended when not on the list


@pytest.mark.parametrize("version", ["0.5.17", "0.5.23"])
def test_default_fraction_h100_dense(version):
    # chunked_prefill_size 8192, decode max_bs 256 (tier 60-90 GiB, tp < 4), prefill graph on (58 sizes)
    reserved = 512 + 1.5 * 8192 + 1 * 1 / 8 * 1024 + 256 * 2 + 58 * 8  # = 13904 MiB > the 10 GiB floor
    expected = round((H100_SMI_MIB - reserved) / H100_SMI_MIB, 3)
    assert expected == 0.83
    p = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb", sglang_version=version)
    assert p.resolved.mem_fraction_static == expected
    assert p.resolved.chunked_prefill_size == 8192 and p.resolved.decode_max_bs == 256


def test_default_fraction_h100_mla_per_release():
    # 0.5.17 turns the breakable prefill graph off for MLA (non-DSA): no prefill reserve
    r17 = 512 + 1.5 * 8192 + 128 + 256 * 2
    # 0.5.23 keeps it, and reserves 1.5 GiB for MLA prefill graphs
    r23 = r17 + 1.5 * 1024
    p17 = sglang.plan("deepseek-ai/DeepSeek-V2-Lite", device="h100-80gb", sglang_version="0.5.17")
    p23 = sglang.plan("deepseek-ai/DeepSeek-V2-Lite", device="h100-80gb", sglang_version="0.5.23")
    assert p17.resolved.mem_fraction_static == round((H100_SMI_MIB - r17) / H100_SMI_MIB, 3) == 0.835
    assert p23.resolved.mem_fraction_static == round((H100_SMI_MIB - r23) / H100_SMI_MIB, 3) == 0.816


def test_default_fraction_h100_vlm():
    # Qwen2.5-VL: multimodal, not on the breakable-prefill list -> prefill graph off
    base = round((H100_SMI_MIB - (512 + 1.5 * 8192 + 128 + 512)) / H100_SMI_MIB, 3)  # 0.835
    # vision_config has depth=32 (not num_hidden_layers) -> SGLang's default 24 layers; hidden 1280
    ratio = 24 * 1280 ** 2 / (24 * 1024 ** 2)
    factor = 0.95 * max(0.8, min(1.05, 1 - 0.1 * (ratio - 1)))
    p = sglang.plan("Qwen/Qwen2.5-VL-7B-Instruct", device="h100-80gb")
    assert p.resolved.mem_fraction_static == pytest.approx(base * factor, abs=1e-12)
    assert base == 0.835


def test_default_fraction_tier_change_between_releases():
    # a 24 GiB card (RTX 4090, nvidia-smi 24564 MiB): 0.5.17 2048/24, 0.5.23 4096/48
    p17 = sglang.plan("Qwen/Qwen3-0.6B", device="rtx-4090", sglang_version="0.5.17")
    p23 = sglang.plan("Qwen/Qwen3-0.6B", device="rtx-4090", sglang_version="0.5.23")
    assert (p17.resolved.chunked_prefill_size, p17.resolved.decode_max_bs) == (2048, 24)
    assert (p23.resolved.chunked_prefill_size, p23.resolved.decode_max_bs) == (4096, 48)
    # 0.5.17: 512 + 1.5*2048 + 128 + 2*24 + 8 * len(prefill sizes up to 2048)
    n = len([s for s in list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32))
             + list(range(576, 1025, 64)) + list(range(1280, 4097, 256)) if s <= 2048])
    r17 = 512 + 1.5 * 2048 + 128 + 48 + 8 * n
    assert p17.resolved.mem_fraction_static == round((24564 - r17) / 24564, 3)


def test_decode_max_bs_clamped_to_max_running_requests_only_in_0523():
    p17 = sglang.plan("Qwen/Qwen3-8B", sglang_version="0.5.17", max_running_requests=64)
    p23 = sglang.plan("Qwen/Qwen3-8B", sglang_version="0.5.23", max_running_requests=64)
    assert p17.resolved.decode_max_bs == 256 and p23.resolved.decode_max_bs == 64


def test_cell_bytes_gqa_and_mla():
    # Qwen3-8B: 8 KV heads x (128 + 128) x 36 layers x 2 bytes
    assert sglang.plan("Qwen/Qwen3-8B").logged_stage.cell.bytes_per_token == 8 * 256 * 36 * 2 == 147456
    # TP 2 splits the KV heads; TP 16 keeps max(1, 8 // 16) = 1 head
    assert sglang.plan("Qwen/Qwen3-8B", tp_size=2).logged_stage.cell.bytes_per_token == 4 * 256 * 36 * 2
    # DeepSeek-V2-Lite (MLA): (kv_lora_rank 512 + qk_rope_head_dim 64) x 27 layers x 2 bytes, not split by TP
    assert sglang.plan("deepseek-ai/DeepSeek-V2-Lite").logged_stage.cell.bytes_per_token == 576 * 27 * 2 == 31104
    p = sglang.plan("deepseek-ai/DeepSeek-V2-Lite", kv_cache_dtype="fp8_e4m3", tp_size=2)
    assert p.logged_stage.cell.bytes_per_token == 576 * 27 * 1


def test_gemma3_sliding_layers_take_full_kv_in_sglang():
    # Gemma 3 is not in SGLang's hybrid-SWA list: every layer keeps full-length KV (vLLM splits them)
    p = sglang.plan("google/gemma-3-12b-it")
    assert p.logged_stage.cell.kind == "mha" and p.swa_tokens is None
    assert p.logged_stage.cell.num_layers == 48


def test_pool_tokens_qwen3_8b_h100_by_hand():
    # the baseline (pre_model_load_memory) on the lent H100, torch total 81080 MiB: real SGLang 0.5.17's
    # q8b_frac018_fail.log says "minimum viable = 1 - available/pre = 0.1953" with available 63.23 GB, so pre =
    # 63.23 / 0.8047 = 78.577 GB (617 MiB in use); its "Load weight begin. avail mem=78.50 GB" is 79 MiB later
    pre = (81080 - 617) * 2**20
    load_begin = pre - 79 * 2**20
    assert round(pre / 2**30, 2) == 78.58 and round(load_begin / 2**30, 2) == 78.50
    # weights: embed + lm_head 2 x 151936 x 4096, 36 layers x (qkv 48x128x4096 + o 4096^2 + gate_up 2x12288x4096
    # + down 12288x4096 + norms 2x4096 + q/k norm 2x128), final norm 4096, all bf16; + rotary cache 40960 x 128
    # float32 (SGLang keeps it in fp32 on CUDA: rotary_embedding/base.py:RotaryEmbedding.__init__)
    layer = 48 * 128 * 4096 + 4096 * 4096 + 2 * 12288 * 4096 + 12288 * 4096 + 2 * 4096 + 2 * 128
    weights = 2 * (2 * 151936 * 4096 + 36 * layer + 4096) + 40960 * 128 * 4
    # after "Load weight end" reserve_rope_cache_for_long_sequences grows the cache to align_128(40960 + 256) = 41216
    # rows: + 256 x 128 x 4 bytes out of the KV budget
    reserve = (41216 - 40960) * 128 * 4
    p = sglang.plan("Qwen/Qwen3-8B", device="h100-80gb")
    assert _exact(p.logged_stage.weights) == weights
    # the tensors in the caching allocator's segments (rules/allocator.py, tested there): a few MiB more, and the
    # whole as real SGLang logged it (q8b_default.log: "Load weight end. ... mem usage=15.28 GB")
    held = p.logged_stage.weights.total_bytes
    assert 0 < held - weights < 8 * 2**20 and round(held / 2**30, 2) == 15.28
    rest_gb = (load_begin - held - reserve) / 2**30 - pre / 2**30 * (1 - 0.83)
    tokens = int(rest_gb * 2**30) // (8 * 256 * 36 * 2)
    assert p.bytes_of("rope_cache_reserve") == reserve
    assert p.max_total_num_tokens == tokens == 363087  # q8b_default.log (context 4096): 363133
    # resolve_max_num_reqs: clamp(int(363087 / 40960 x 512), 2048, 4096) = 4096, <= tokens // 2
    assert p.max_running_requests == min(max(min(int(tokens / 40960 * 512), 4096), 2048), tokens // 2) == 4096
    assert any(line.startswith("max_total_num_tokens=363087, chunked_prefill_size=8192, max_prefill_tokens=16384, "
                                "max_running_requests=4096, context_len=40960, available_gpu_mem=")
               for line in p.log_lines)


def test_max_total_tokens_and_page_size():
    p = sglang.plan("Qwen/Qwen3-8B", max_total_tokens=100_003, page_size=16)
    assert p.max_total_num_tokens == 100_003 // 16 * 16
    # profiled below the cap: SGLang warns and keeps the profiled value
    p2 = sglang.plan("Qwen/Qwen3-8B", max_total_tokens=10_000_000)
    assert p2.max_total_num_tokens == 363087  # test_pool_tokens_qwen3_8b_h100_by_hand
    assert any("is larger than the profiled value" in w for w in p2.warnings)


def test_max_running_requests_rule():
    assert max_running_requests(1000, 40960, None) == 500          # tokens // 2 wins
    assert max_running_requests(10_000_000, 4096, None) == 4096    # capped at 4096
    assert max_running_requests(100_000, 131072, None) == 2048     # at least 2048
    assert max_running_requests(100_000, 4096, 64) == 64


def test_pp_split_gives_the_extra_layers_to_the_last_stages():
    # sglang get_pp_indices: 10 layers over 4 stages -> 2, 2, 3, 3 (vLLM: 3, 3, 2, 2... before the last)
    assert [e - s for s, e in sglang_pp_split(10, 4)] == [2, 2, 3, 3]


def test_weights_leave_no_room_in_sglang_words():
    p = sglang.plan("meta-llama/Llama-3.1-70B-Instruct", device="h100-80gb")
    assert p.verdict == "fails" and p.error_kind == "no_kv_cache_memory" and p.error_phase == "kv_sizing"
    assert p.error_message.startswith("Loaded weights leave no GPU memory for the KV cache under "
                                      "--mem-fraction-static=0.83. Raise --mem-fraction-static above ")


def test_out_of_memory_when_the_fraction_leaves_too_little():
    p = sglang.plan("Qwen/Qwen3-8B", mem_fraction_static=0.99)
    assert p.verdict == "fails" and p.error_kind == "out_of_memory"
    assert p.error_phase in ("graph_capture", "serving_prefill")
    assert "activations" in " ".join(t.rule for t in p.headroom_terms) or p.headroom_terms
    assert all("vLLM-fitted, not measured on SGLang" in t.rule for t in p.headroom_terms
               if t.key in ("activation_peak", "cudagraph_decode", "cudagraph_prefill"))


def test_context_over_pool_warning_only_in_0523():
    kw = dict(device="h100-80gb", mem_fraction_static=0.25)
    p23 = sglang.plan("Qwen/Qwen3-8B", sglang_version="0.5.23", **kw)
    p17 = sglang.plan("Qwen/Qwen3-8B", sglang_version="0.5.17", **kw)
    assert p23.max_total_num_tokens and p23.max_total_num_tokens < 40960
    assert any(w.startswith("KV pool holds ") and "fewer than --context-length 40960" for w in p23.warnings)
    assert not any(w.startswith("KV pool holds ") for w in p17.warnings)


def test_pasted_launch_line_and_flag_names_per_release():
    line = ("SGLANG_ENABLE_POST_CAPTURE_KV_SIZING=0 python -m sglang.launch_server --model-path Qwen/Qwen3-8B "
            "--tp 2 --mem-fraction-static=0.8 --trust-remote-code --port 30000 --cuda-graph-max-bs 64").split()
    parsed = parse_sglang_flags(line, legacy_aliases=True)
    a = parsed.args
    assert (a.model_path, a.tp_size, a.mem_fraction_static, a.cuda_graph_max_bs_decode) == ("Qwen/Qwen3-8B", 2, 0.8, 64)
    assert "--port" in parsed.ignored and "--trust-remote-code" in parsed.ignored
    # 0.5.23 removed --cuda-graph-max-bs: argparse calls it ambiguous
    with pytest.raises(InvalidConfig, match="ambiguous option: --cuda-graph-max-bs"):
        sglang.plan(flags=line, sglang_version="0.5.23")
    # --mamba-scheduler-strategy: a deprecated alias in 0.5.17 (server_args.py), no such option in 0.5.23
    old_name = ["--model-path", "x", "--mamba-scheduler-strategy", "no_buffer"]
    assert parse_sglang_flags(old_name, legacy_aliases=True).args.mamba_radix_cache_strategy == "no_buffer"
    with pytest.raises(InvalidConfig, match="unrecognized arguments: --mamba-scheduler-strategy"):
        parse_sglang_flags(old_name, legacy_aliases=False)
    with pytest.raises(FlagError):
        parse_sglang_flags(["--model-path", "x", "--mem-fraction-static", "1.5"])
    with pytest.raises(FlagError):
        parse_sglang_flags(["--model-path", "x", "--tp-size", "two"])


def test_context_length_longer_than_derived_is_refused():
    with pytest.raises(InvalidConfig, match="is greater than the derived context_length \\(40960\\)"):
        sglang.plan("Qwen/Qwen3-8B", context_length=100_000)


def test_rules_for_versions():
    assert rules_for("0.5.20").version == (0, 5, 17)
    assert rules_for("0.6.0").version == (0, 5, 23)
    with pytest.raises(FlagError):
        rules_for("0.4.0")


def test_json_contract_keys():
    from vramplan.engines.sglang.render import sglang_plan_to_dict
    from vramplan.render.json import plan_to_dict
    import vramplan

    d = sglang_plan_to_dict(sglang.plan("Qwen/Qwen3-8B"))
    v = plan_to_dict(vramplan.plan("Qwen/Qwen3-8B"))
    assert set(v) - set(d) == set()  # every vLLM contract key is there
    assert d["engine_name"] == "sglang" and d["engine_version"] == "0.5.23" and d["vllm_version"] is None
    assert v["engine_name"] == "vllm" and v["engine_version"] == v["vllm_version"]
    assert d["kv_cache_tokens"] == 363087 and isinstance(d["engine"], dict)


def test_api_engine_switch():
    import vramplan

    p = vramplan.plan("Qwen/Qwen3-8B", engine="sglang", sglang_version="0.5.17", mem_fraction_static=0.8)
    assert p.engine == "sglang" and p.engine_version == "0.5.17" and p.resolved.mem_fraction_static == 0.8
    with pytest.raises(FlagError):
        vramplan.plan("Qwen/Qwen3-8B", engine="tgi")


def test_hybrid_mamba_state_per_request_qwen3_next_tp4():
    # Qwen3-Next GDN layers at TP 4: conv [(2 x 16 x 128 + 32 x 128) / 4, kernel 4 - 1] bf16
    # + SSM [32 / 4 heads, 128, 128] float32 (configs/mamba_utils.py defaults)
    from vramplan.engines.sglang.pool import mamba_state
    import vramplan

    m = vramplan.load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    per, n = mamba_state(m, tp=4, layers=range(0, m.num_hidden_layers), conv_bytes=2, ssm_bytes=4)
    one = (2 * 16 * 128 + 32 * 128) // 4 * 3 * 2 + 8 * 128 * 128 * 4
    assert n == 36 and per == one * 36
    p = sglang.plan("Qwen/Qwen3-Next-80B-A3B-Instruct", tp_size=4)
    assert p.logged_stage.cell.kind == "hybrid_mamba" and p.logged_stage.cell.num_layers == 12
    assert p.bytes_of("mamba_state") > 0 and p.starts


def test_vllm_flag_names_are_refused_with_sglangs_name():
    with pytest.raises(FlagError, match="--max-model-len is vLLM's flag") as e:
        sglang.plan(flags=["--model-path", "Qwen/Qwen3-8B", "--max-model-len", "4096"])
    assert "--context-length" in e.value.hint


def test_tp_not_dividing_heads_in_sglangs_words():
    with pytest.raises(InvalidConfig, match="32 is not divisible by 3"):
        sglang.plan("Qwen/Qwen3-8B", tp_size=3)


def test_fp8_block_checkpoint_weights_by_hand():
    # Qwen3-32B-FP8: linear layers fp8 (1 byte) with float32 block scales [ceil(out/128), ceil(in/128)]
    # (SGLang's Fp8LinearMethod weight_scale_inv); embeddings and norms in bf16, the rotary cache in float32 (CUDA)
    qkv = 10240 * 5120 + 80 * 40 * 4          # (64 + 2 x 8) x 128 rows
    o = 5120 * 8192 + 40 * 64 * 4
    gate_up = 51200 * 5120 + 400 * 40 * 4
    down = 5120 * 25600 + 40 * 200 * 4
    norms = (2 * 5120 + 2 * 128) * 2
    layers = 64 * (qkv + o + gate_up + down + norms)
    total = layers + 2 * 151936 * 5120 * 2 + 5120 * 2 + 40960 * 128 * 4
    p = sglang.plan("Qwen/Qwen3-32B-FP8", device="h100-80gb")
    assert _exact(p.logged_stage.weights) == total


def test_model_dtype_auto_downcasts_float32():
    # _get_and_verify_dtype: a float32 (or absent) config dtype becomes float16, bfloat16 for Gemma
    from dataclasses import replace

    import vramplan
    from vramplan.engines.sglang.defaults import _model_dtype

    q = vramplan.load_model("Qwen/Qwen3-8B")
    cfg = {k: v for k, v in q.hf_config.items() if k not in ("torch_dtype", "dtype")}
    assert _model_dtype(replace(q, hf_config=cfg, dtype="float32"), "auto") == "float16"
    assert _model_dtype(replace(q, hf_config=cfg | {"torch_dtype": "float32"}, model_type="gemma2"), "auto") == "bfloat16"
    assert _model_dtype(q, "auto") == "bfloat16" and _model_dtype(q, "half") == "float16"
    with pytest.raises(InvalidConfig):
        _model_dtype(q, "int3")


def test_fix_for_no_room_holds_one_request():
    p = sglang.plan("Qwen/Qwen3-8B", mem_fraction_static=0.19)
    assert p.error_kind == "no_kv_cache_memory" and p.fix.startswith("--mem-fraction-static ")
    f = float(p.fix.split()[1])
    assert sglang.plan("Qwen/Qwen3-8B", mem_fraction_static=f).max_total_num_tokens >= 40960


def test_api_plan_sglang_has_the_json_and_refuses_mixed_inputs():
    # the composer's contract: every result has to_dict() (= the CLI's --json) and a short repr
    import json

    import vramplan
    from vramplan.errors import FlagError

    p = vramplan.plan("Qwen/Qwen3-8B", engine="sglang")
    d = p.to_dict()
    assert d["engine_name"] == "sglang" and d["kv_cache_tokens"] == p.kv_cache_tokens == p.max_total_num_tokens
    assert json.loads(p.to_json()) == d and len(repr(p)) < 200
    with pytest.raises(FlagError):
        vramplan.plan("Qwen/Qwen3-8B", engine="sglang", vllm_version="0.34")
    with pytest.raises(FlagError):
        vramplan.plan("Qwen/Qwen3-8B", engine="sglang",
                      flags=["python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-14B"])


def test_fit_finds_the_window_when_the_lowest_fraction_does_not_start():
    # Qwen3-8B (15.27 GiB of weights) on an L40S (44.5 GiB): a fraction of 0.30 does not even hold the weights,
    # so starting is a window in the fraction; fit must search from a fraction that starts (here the default)
    from vramplan.engines import sglang
    from vramplan.engines.sglang.fit import fit_sglang

    assert not sglang.plan("Qwen/Qwen3-8B", device="l40s", mem_fraction_static=0.30).starts
    res = fit_sglang(lambda **kw: sglang.plan("Qwen/Qwen3-8B", device="l40s", **kw), concurrency=4, context=8192)
    assert res.plan.starts and res.flags["mem-fraction-static"] > 0.30


def test_sampling_of_many_running_requests_is_its_own_phase():
    """gpt-oss-20b (201,088-entry vocabulary) on one H100 at SGLang's defaults: 4096 running requests. What sets the
    serving peak is then the logits and sampling buffers of the running requests, not the prefill step: the plan
    says so (label, phase) and its fix names --max-running-requests; at 256 running requests that part is 16x
    smaller and the plan starts."""
    import vramplan

    p = vramplan.plan("openai/gpt-oss-20b", engine="sglang", device="h100-80gb")
    label = next(t.label for t in p.headroom_terms if t.key == "activation_peak")
    assert label == "activation peak while serving: sampling 4096 running requests"
    if p.verdict != "starts":
        assert p.error_phase == "serving_decode" and "--max-running-requests" in p.fix
    q = vramplan.plan("openai/gpt-oss-20b", engine="sglang", device="h100-80gb", max_running_requests=256)
    assert q.verdict == "starts"
    # 8 running requests of a 152k vocabulary: the 8192-token prefill step sets the peak
    r = vramplan.plan("Qwen/Qwen3-8B", engine="sglang", device="h100-80gb", max_running_requests=8)
    assert "prefill step" in next(t.label for t in r.headroom_terms if t.key == "activation_peak")


@pytest.mark.parametrize("kw", [dict(mem_fraction_static=5), dict(mem_fraction_static="abc"),
                                dict(tokenizer_worker_num=0), dict(mm_feature_transport="x"), dict(tp_size="two")])
def test_keyword_arguments_are_checked_as_the_flags_are(kw):
    """The API's keyword arguments get the flag parser's checks: a FlagError (one line, exit 2 on the CLI), never a
    silent plan or a TypeError."""
    from vramplan.errors import FlagError

    with pytest.raises(FlagError):
        sglang.plan("Qwen/Qwen3-8B", **kw)
