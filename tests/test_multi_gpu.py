"""Non-torch memory at TP/PP > 1: each release's order of events (estimate/multi_gpu.py, rules/comm.py).

Expected values are written out by hand from vLLM's constants (cited in rules/comm.py) and the measured
per-communicator figure, or taken from logs (the 2xH200 0.26 runs, the llm-d 0.19 H100 report)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.estimate.multi_gpu import LAZY_INCREASE_BYTES, NCCL_COMM_BYTES, NVLS_BYTES
from vramplan.estimate.overheads import non_torch
from vramplan.inputs.devices import DEVICES
from vramplan.engines.vllm.flags import EngineArgs, parse_flags
from vramplan.engines.vllm.rules.comm import COMM_V019, COMM_V033
from vramplan.engines.vllm.rules.versions import for_version
from vramplan.units import GiB, MiB

CTX = 522 * MiB  # TP=1 CUDA context at the snapshot (measured, overheads._TP1)
OFF = {"NCCL_NVLS_ENABLE": "0", "VLLM_ALLREDUCE_USE_SYMM_MEM": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}


def _nt(version: str, tp: int, *, pp: int = 1, dp: int = 1, moe: bool = False, dev: str = "h100-80gb",
        env: dict | None = None, nvlink: bool = True, **kw):
    return non_torch("cuda", tp=tp, pp=pp, dp=dp, is_moe=moe, nvlink=nvlink, comm=for_version(version).comm,
                     device_name=dev, compute_capability=DEVICES[dev].compute_capability, env=env or {}, **kw)


def test_rule_sets_carry_their_release_comm_rules():
    assert for_version("0.19.0").comm is COMM_V019
    assert for_version("0.26.0").comm is COMM_V019
    assert for_version("0.29.0").comm is COMM_V019  # 0.27-0.29 keep the 0.26 rules (not read for this)
    assert for_version("0.33.0").comm is COMM_V033


def test_v026_tp2_as_measured_on_2xh200():
    # data/truth x2-q8b_e_tp2: "CUDA memory at the init snapshot" 1.46 GiB; non-torch increase 0.06-0.11 GiB.
    o = _nt("0.26.0", 2, dev="h200", env=OFF)
    # context 522 + NCCL tp 949 + custom all-reduce (8 metadata + 8 staging + 8 rank_data) MiB
    assert o.before_snapshot_bytes == (522 + 949 + 24) * MiB
    assert round(o.before_snapshot_bytes / GiB, 2) == 1.46
    assert o.increase_bytes == 92 * MiB


def test_v019_tp4_h100_defaults():
    o = _nt("0.19.0", 4)
    # symmetric memory 32 MiB (SYMM_MEM_ALL_REDUCE_MAX_SIZES 9.0/4); custom AR max_size min(32 MiB, 8 MiB) = 8 MiB
    assert o.before_snapshot_bytes == CTX + NCCL_COMM_BYTES + 32 * MiB + (8 + 8 + 8) * MiB
    assert o.increase_bytes == LAZY_INCREASE_BYTES + NVLS_BYTES


def test_v033_tp2_h100_defaults():
    o = _nt("0.33.0", 2)
    # symm 64; custom AR: metadata 8, staging max(8, 2, 16) = 16, rank_data 8, multicast buffer 6 x max(8x2, 16) = 96
    assert o.before_snapshot_bytes == CTX + NCCL_COMM_BYTES + (64 + 8 + 16 + 8 + 96) * MiB
    # FlashInfer all-reduce on by default in 0.33: its 64 MiB budget at TP=2 on sm_90, created in the profile run
    assert o.increase_bytes == LAZY_INCREASE_BYTES + NVLS_BYTES + 64 * MiB


def test_v033_tp8_without_multicast_keeps_symm_buffer_drops_multicast_buffer():
    o = _nt("0.33.0", 8, env={"TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NCCL_NVLS_ENABLE": "0",
                                "VLLM_ALLREDUCE_USE_FLASHINFER": "0"})
    # symm 64 MiB (9.0/8) allocated although the communicator disables itself; custom AR not capped (no multicast)
    assert o.before_snapshot_bytes == CTX + NCCL_COMM_BYTES + (64 + 8 + 16 + 8) * MiB
    assert o.increase_bytes == LAZY_INCREASE_BYTES


def test_v034_stand_in_uses_v033_comm_rules():
    assert for_version("0.34.0", allow_older=True).comm == COMM_V033


def test_unsupported_tp_size_has_no_custom_allreduce_or_symm_buffer():
    o = _nt("0.26.0", 3, env={"NCCL_NVLS_ENABLE": "0"})
    assert o.before_snapshot_bytes == CTX + NCCL_COMM_BYTES


def test_disable_custom_all_reduce_flag():
    assert parse_flags(["--disable-custom-all-reduce"]).args.disable_custom_all_reduce is True
    with_ca = _nt("0.26.0", 2, env=OFF)
    without = _nt("0.26.0", 2, env=OFF, disable_custom_all_reduce=True)
    assert with_ca.before_snapshot_bytes - without.before_snapshot_bytes == 24 * MiB


def test_moe_builds_an_ep_communicator_dense_does_not():
    dense = _nt("0.26.0", 2, env=OFF)
    moe = _nt("0.26.0", 2, env=OFF, moe=True)
    assert moe.before_snapshot_bytes - dense.before_snapshot_bytes == NCCL_COMM_BYTES


def test_pp_only_one_communicator_no_tp_buffers_no_nvls():
    o = _nt("0.26.0", 1, pp=2)
    assert o.before_snapshot_bytes == CTX + NCCL_COMM_BYTES
    # llm-d 0.19 H100: ~0.07 GiB non-torch increase at PP >= 2
    assert o.increase_bytes == LAZY_INCREASE_BYTES
    assert abs(o.increase_bytes / GiB - 0.07) < 0.05


def test_pcie_cards_keep_the_earlier_estimate():
    o = _nt("0.26.0", 2, dev="l40s", nvlink=False)
    assert o.before_snapshot_bytes == (522 + 410) * MiB
    assert o.increase_bytes == 92 * MiB


@pytest.mark.parametrize("tp", [2, 4])
def test_llm_d_public_figure_v019_h100(tp):
    # llm-d planner's vLLM 0.19 H100 report: logged non-torch forward increase ~2.1 GiB per GPU at TP >= 2
    p = vramplan.plan("Qwen/Qwen3-8B", device="h100-80gb", vllm_version="0.19.0", tensor_parallel_size=tp,
                      max_model_len=8192)
    assert abs(p.ranks[-1].terms[2].bytes / GiB - 2.1) < 0.1


def test_nvls_off_gives_back_the_kv_cache():
    def kv(env):
        a = EngineArgs(tensor_parallel_size=2, max_model_len=8192, env=env)
        return vramplan.plan("Qwen/Qwen3-8B", args=a, device="h100-80gb", vllm_version="0.26.0").ranks[-1].available_kv_bytes
    assert kv((("NCCL_NVLS_ENABLE", "0"),)) - kv(()) == NVLS_BYTES


@settings(max_examples=60, deadline=None)
@given(version=st.sampled_from(["0.19.0", "0.26.0", "0.29.0", "0.33.0"]), tp=st.sampled_from([1, 2, 3, 4, 6, 8]),
       pp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2]), moe=st.booleans(),
       dev=st.sampled_from(["h100-80gb", "h200", "a100-80gb", "l40s"]),
       nvls=st.sampled_from([None, "0", "1"]), symm=st.sampled_from([None, "0", "1"]))
def test_space(version, tp, pp, dp, moe, dev, nvls, symm):
    env = {k: v for k, v in (("NCCL_NVLS_ENABLE", nvls), ("VLLM_ALLREDUCE_USE_SYMM_MEM", symm)) if v is not None}
    nvlink = dev != "l40s"
    o = _nt(version, tp, pp=pp, dp=dp, moe=moe, dev=dev, env=env, nvlink=nvlink)
    if tp == pp == dp == 1:
        return
    comms = sum(n > 1 for n in (tp, pp, dp, tp * dp if moe else 1))
    per = NCCL_COMM_BYTES if nvlink else 410 * MiB
    assert o.before_snapshot_bytes >= CTX + comms * per
    # the TP buffers (symmetric memory <= 128 MiB, custom all-reduce <= 128 MiB) are bounded
    assert o.before_snapshot_bytes <= CTX + comms * per + 256 * MiB
    assert o.increase_bytes >= LAZY_INCREASE_BYTES
    has_nvls = tp > 1 and nvlink and dev in ("h100-80gb", "h200") and nvls != "0"
    assert (o.increase_bytes >= NVLS_BYTES) == has_nvls


def test_pasted_line_env_switches_nvls_off():
    line = ["vllm", "serve", "Qwen/Qwen3-8B", "-tp", "2", "--max-model-len", "8192"]
    on = vramplan.plan(flags=line, device="h100-80gb", vllm_version="0.26.0")
    off = vramplan.plan(flags=["NCCL_NVLS_ENABLE=0"] + line, device="h100-80gb", vllm_version="0.26.0")
    assert off.ranks[-1].available_kv_bytes - on.ranks[-1].available_kv_bytes == NVLS_BYTES
