"""SGLang's DeepSeek Sparse Attention below Hopper (A100 SM80, A10G SM86, L40S / L4 SM89): the verdict by release.

The rules, read in sglang 0.5.17 and 0.5.23 (expected values below are written from them, not read from the code):

- srt/arg_groups/overrides.py:_dsa_kv_cache_dtype_default: ``auto`` -> bfloat16 below SM100;
  _dsa_split_backend_resolution: bfloat16 -> prefill flashmla_sparse, decode fa3 below SM100. No device check, no
  fallback backend: the weights load and the pools are sized as on Hopper (same cell, same tokens).
- srt/layers/attention/dsa/dsa_indexer.py: the indexer's logits are DeepGEMM's on CUDA, never skipped for decode;
  DeepGEMM (sgl-deep-gemm 0.1.5.post1 / 0.2.3.post2) has SM90/SM100/SM120 paths only.
- FlashMLA's sparse prefill (sgl-kernel 0.4.5, sgl-flash-mla 1.0.0) raises "Sparse Attention Forward Kernel is only
  supported on SM90a and SM100f architectures." below SM90; a prefill of at most index_topk tokens on another
  backend skips the indexer's logits.
- The first DSA forward: the prefill CUDA graph capture (captured before decode, cuda_graph_setup.py:
  capture_cuda_graphs), else the decode capture, else the server's warmup request (http_server.py:_wait_and_warmup).
- Argument time: 0.5.17 _check_tilelang_dsa_fp8_kv, 0.5.23 _check_dsa_backend_constraints; at backend init
  dsa_backend.py refuses flashmla_sparse_q8 off SM90 (both).
"""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from vramplan.engines import sglang
from vramplan.errors import InvalidConfig
from vramplan.inputs.devices import DEVICES

VERSIONS = ["0.5.17", "0.5.23"]
FLASHMLA = "Sparse Attention Forward Kernel is only supported on SM90a and SM100f architectures."
# catalog devices below SM90 and enough pipeline stages for the FP8 checkpoints' weights (8 GPUs a stage)
PRE_HOPPER = {"a100-80gb": 2, "a100-40gb": 4, "a10g": 16, "l40s": 4, "l4": 16}
# DeepSeek-V3.2 / GLM-5 configs: kv_lora_rank 512 + qk_rope_head_dim 64 bf16, indexer 128 fp8 + one f32 scale
# (every layer of both models computes its own top-k); per layer of the logged pipeline stage
PER_LAYER = (512 + 64) * 2 + 132
CELL = {"deepseek-ai/DeepSeek-V3.2": 61, "zai-org/GLM-5-FP8": 78}
GRAPHS = {"default": {}, "no graphs": {"disable_cuda_graph": True},
          "no prefill graph": {"disable_prefill_cuda_graph": True}, "tilelang prefill": {"dsa_prefill_backend": "tilelang"}}


def test_the_catalog_devices_are_pre_hopper():
    assert {d: DEVICES[d].compute_capability[0] for d in PRE_HOPPER} == {d: 8 for d in PRE_HOPPER}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device", sorted(PRE_HOPPER))
@pytest.mark.parametrize("model", sorted(CELL))
@pytest.mark.parametrize("graphs", sorted(GRAPHS))
def test_sglang_starts_then_its_dsa_kernels_refuse_the_device(version, device, model, graphs):
    # a fraction given, so that the small cards' default (a few percent) does not stop it at the KV sizing first
    p = sglang.plan(model, device=device, tp_size=8, pp_size=PRE_HOPPER[device], sglang_version=version,
                    mem_fraction_static=0.85, **GRAPHS[graphs])
    r = p.resolved
    # SGLang's choices below SM100, with no device check
    assert r.kv_cache_dtype == "bfloat16" and r.page_size == 64
    assert r.dsa.decode_backend == "fa3"
    assert r.dsa.prefill_backend == ("tilelang" if graphs == "tilelang prefill" else "flashmla_sparse")
    # the pools are sized as on Hopper: the bf16 latent row plus the indexer record on every layer
    cell = p.logged_stage.cell
    assert cell.bytes_per_token == cell.num_layers * PER_LAYER
    assert sum(st.cell.num_layers for st in p.stages) == CELL[model]
    assert p.max_total_num_tokens and p.max_total_num_tokens % 64 == 0
    assert p.verdict == "fails" and p.error_kind == "unsupported_device"
    # the first DSA forward decides which kernel speaks
    flashmla_prefill = r.dsa.prefill_backend == "flashmla_sparse"
    # 0.5.17 drops an auto-selected prefill graph when under 4 GiB is free after the pools (its own warning)
    prefill_captured = r.prefill_graph and not any("Disabling auto-selected prefill CUDA graph" in n for n in p.notes)
    if flashmla_prefill and prefill_captured:
        phase, words = "graph_capture", FLASHMLA
    elif r.decode_graph:
        phase, words = "graph_capture", "DeepGEMM"
    else:
        phase, words = "warmup", FLASHMLA if flashmla_prefill else "DeepGEMM"
    assert (p.error_phase, words in p.error_message) == (phase, True)
    assert f"SGLang {version}" in p.error_message and "SM8" in p.error_message
    if graphs == "no graphs":
        assert p.error_phase == "warmup"
    # SGLang logs the pool, never the scheduler line
    assert any("KV Cache is allocated" in line for line in p.log_lines)
    assert not any(line.startswith("max_total_num_tokens=") for line in p.log_lines)
    assert "SM90" in p.fix


@pytest.mark.parametrize("version", VERSIONS)
def test_a_pool_that_cannot_be_sized_fails_first(version):
    # 8 x A100-80GB, one stage: GLM-5-FP8's ~700 GiB of weights leave no KV room; SGLang stops at the sizing, before
    # any DSA kernel runs
    p = sglang.plan("zai-org/GLM-5-FP8", device="a100-80gb", tp_size=8, sglang_version=version)
    assert (p.error_kind, p.error_phase) == ("no_kv_cache_memory", "kv_sizing")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device", ["h100-80gb", "h200", "b200"])
def test_hopper_and_blackwell_have_no_device_verdict(version, device):
    p = sglang.plan("zai-org/GLM-5-FP8", device=device, tp_size=8, pp_size=2, sglang_version=version)
    assert p.error_kind != "unsupported_device"


def test_unknown_compute_capability_gives_no_device_verdict():
    p = sglang.plan("zai-org/GLM-5-FP8", device_memory_gib=80, tp_size=8, pp_size=2)
    assert p.error_kind != "unsupported_device"


@pytest.mark.parametrize("device", ["a100-80gb", "l40s", "h200"])
def test_0517_refuses_tilelang_with_fp8_on_cuda(device):
    with pytest.raises(InvalidConfig, match="The tilelang DSA prefill/decode kernels only support an fp8_e4m3 KV cache "
                                            "on ROCm/HIP; on CUDA they require a bfloat16 KV cache"):
        sglang.plan("zai-org/GLM-5-FP8", device=device, tp_size=8, pp_size=4, sglang_version="0.5.17",
                    kv_cache_dtype="fp8_e4m3", dsa_prefill_backend="tilelang", dsa_decode_backend="tilelang")


@pytest.mark.parametrize("device, refused", [("a100-80gb", True), ("a10g", True), ("l40s", False), ("h200", False)])
def test_0523_cuda_tilelang_fp8_needs_sm89(device, refused):
    kw = dict(device=device, tp_size=8, pp_size=4, sglang_version="0.5.23", kv_cache_dtype="fp8_e4m3",
              dsa_prefill_backend="tilelang", dsa_decode_backend="tilelang")
    if refused:
        with pytest.raises(InvalidConfig, match="CUDA TileLang FP8 KV requires SM89 or newer."):
            sglang.plan("zai-org/GLM-5-FP8", **kw)
    else:
        p = sglang.plan("zai-org/GLM-5-FP8", **kw)
        # SM89 passes the check, then the indexer's DeepGEMM kernel refuses it; SM90 starts
        assert (p.error_kind == "unsupported_device") == (DEVICES[device].compute_capability < (9, 0))
    with pytest.raises(InvalidConfig, match="requires both DSA backends to be tilelang"):
        sglang.plan("zai-org/GLM-5-FP8", **{**kw, "dsa_decode_backend": "flashmla_kv"})


@pytest.mark.parametrize("device", ["a100-80gb", "h200"])
def test_0523_refuses_triton_on_cuda(device):
    with pytest.raises(InvalidConfig, match="The triton DSA backend is only supported on ROCm/HIP"):
        sglang.plan("zai-org/GLM-5-FP8", device=device, tp_size=8, pp_size=4, sglang_version="0.5.23",
                    dsa_decode_backend="triton")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device, sm", [("a100-80gb", 8), ("l40s", 8), ("b200", 10), ("h200", None)])
def test_flashmla_sparse_q8_is_sm90_only(version, device, sm):
    p = sglang.plan("zai-org/GLM-5-FP8", device=device, tp_size=8, pp_size=4, sglang_version=version,
                    kv_cache_dtype="fp8_e4m3", dsa_prefill_backend="flashmla_sparse_q8")
    if sm is None:
        assert p.error_kind != "unsupported_device"
    else:
        assert (p.error_kind, p.error_phase) == ("unsupported_device", "attention_backend_init")
        assert p.error_message == (f"ValueError: --dsa-prefill-backend flashmla_sparse_q8 is SM90-only; got compute "
                                   f"capability sm_{sm}x.")
        assert "--dsa-prefill-backend flashmla_sparse" in p.fix


def test_cli_plan_and_fit_say_it():
    code, out, _ = run_cli("plan", "deepseek-ai/DeepSeek-V3.2", "--engine", "sglang", "--device", "a100-80gb",
                           "--tp-size", "8", "--pp-size", "2", "--sglang-version", "0.5.17")
    assert code == 0 and "Verdict: fails (unsupported_device, graph_capture)" in out and FLASHMLA in out
    code, out, err = run_cli("fit", "deepseek-ai/DeepSeek-V3.2", "--engine", "sglang", "--device", "a100-80gb",
                             "--tp-size", "8", "--pp-size", "2")
    assert "no flag makes this start on NVIDIA A100-SXM4-80GB" in out + err
