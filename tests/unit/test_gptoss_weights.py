"""gpt-oss (MXFP4 experts on the Triton kernel, Hopper): "Model loading took" to the byte.

Expected values: the figures vLLM logged (data/truth/logs, a public issue) and a hand calculation of every live
tensor's allocator block (PyTorch c10/cuda/CUDACachingAllocator.cpp: round_size, get_allocation_size, should_split;
``max_split_size`` 20 MiB from vLLM 0.21's Worker._scoped_allocator_max_split), written out below from
vramplan/catalog/openai/gpt-oss-20b/config.json, never read from the code under test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramplan
from vramplan.rules.allocator import Alloc, allocated_block_bytes, rope_cache_events
from vramplan.units import format_gib

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
GPTOSS_20B, GPTOSS_120B = "openai/gpt-oss-20b", "openai/gpt-oss-120b"


def _logged(log: str) -> str:
    text = (ROOT / "data/truth/logs" / log).read_text()
    return re.search(r"Model loading took ([\d.]+) GiB", text).group(1)


def _plan(model: str, version: str, *, tp: int = 1, ep: bool = False, device: str = "h100-80gb", **kw):
    return vramplan.plan(model, vllm_version=version, device=device, tensor_parallel_size=tp,
                         enable_expert_parallel=ep, max_model_len=4096, max_num_batched_tokens=8192,
                         max_num_seqs=1024, enforce_eager=True, **kw)


def _gptoss_20b_tp1_blocks() -> int:
    """Every tensor alive after vLLM loads gpt-oss-20b at TP 1 on H100, as the allocator's block bytes.

    config: hidden 2880, intermediate 2880, 32 experts, 24 layers, 64 q heads / 8 kv heads of 64, vocab 201088
    (a multiple of 64), YaRN factor 32 on 4096 positions, rotary dim 64.
    - tensors of 20 MiB or more (max_split_size) take a segment rounded up to 2 MiB and are never split:
      embedding and lm_head 201088 x 2880 x 2 = 1,158,266,880 B -> 553 x 2 MiB = 1,159,725,056;
      qkv (4096 + 2 x 512) x 2880 x 2 = 29,491,200 -> 30 MiB; o_proj 2880 x 4096 x 2 = 23,592,960 -> 24 MiB;
      w13 32 x 5760 x 1440 (uint8, two fp4 a byte) = 265,420,800 -> 254 MiB; w2 32 x 2880 x 1440 = 132,710,400 -> 128 MiB
      (the Hopper value swizzle pads (out, in/2) to (16, 32): nothing here, so the loaded blocks stay);
    - the rotary cache, float32 (gpt_oss.py OAIAttention: get_rope(dtype=torch.float32)), 131072 x 64 x 4 = 32 MiB;
    - split blocks, their bytes rounded up to 512: the swizzled scales (HopperMXScaleLayout, groups 90 -> 92 by the
      pad to 4, then rows to 256, groups to 2): w13 32 x 5888 x 92 = 17,334,272 (18 MiB segment, 1.47 MiB left: split),
      w2 32 x 3072 x 92 = 9,043,968 (a 20 MiB segment, split); the expert biases in float32: 32 x 5760 x 4 =
      737,280 and 32 x 2880 x 4 = 368,640; qkv bias 5120 x 2 = 10,240; o_proj bias 5,760 -> 6,144; sinks 64 -> 512;
      router 32 x 2880 x 2 = 184,320 and its bias 64 -> 512; two norms 5,760 -> 6,144 each; the final norm 6,144.
    - the loaded scales (32 x 5760 x 90 = 16,588,800, a whole 16 MiB segment) and bf16 biases are freed by the
      conversion (0.34 store_params_in_triton / replace_parameter, 0.26 ``del layer.w13_weight_scale``).
    """
    layer = (30 * MiB + 24 * MiB + 254 * MiB + 128 * MiB + 17_334_272 + 9_043_968 + 737_280 + 368_640
             + 10_240 + 6_144 + 512 + 184_320 + 512 + 2 * 6_144)
    return 2 * 1_159_725_056 + 24 * layer + 6_144 + 32 * MiB


@pytest.mark.parametrize("version, log", [
    ("0.34.0", "h100f/gptoss_e_unset.log"),  # vLLM 0.34.0, H100: "Model loading took 13.03 GiB"
    ("0.26.0", "h100c/gptoss_e_base.log"),  # vLLM 0.26.0, H100: "Model loading took 13.03 GiB"
])
def test_gptoss_20b_weights_meet_the_logs_to_the_byte(version, log):
    p = _plan(GPTOSS_20B, version)
    got = p.logged_rank.bytes_of("weights")
    assert got == _gptoss_20b_tp1_blocks() == 13_990_066_176
    assert format_gib(got) == _logged(log) == "13.03"


def test_gptoss_20b_tensor_bytes_alone_were_0_14_gib_short():
    # the tensors' own bytes (no block rounding): 12.89 GiB, the figure before the allocator was replayed here
    exact = (2 * 1_158_266_880 + 24 * (29_491_200 + 23_592_960 + 265_420_800 + 132_710_400 + 17_334_272 + 9_043_968
                                       + 737_280 + 368_640 + 10_240 + 5_760 + 256 + 184_320 + 64 + 2 * 5_760)
             + 5_760 + 32 * MiB)
    assert format_gib(exact) == "12.89"
    shares = _plan(GPTOSS_20B, "0.34.0").logged_rank.weights
    assert shares.total_bytes - shares.part("allocator") == exact
    assert shares.part("allocator") == _gptoss_20b_tp1_blocks() - exact  # 146,091,904 B: 0.136 GiB


def test_gptoss_120b_v0141_weights_meet_the_issue():
    # https://github.com/vllm-project/vllm/issues/33155 (vLLM 0.14.1, one H100): "Model loading took 64.38 GiB";
    # before 0.21 no max_split_size, and before 0.25 the loaded scales stay next to the swizzled ones
    p = _plan(GPTOSS_120B, "0.14.1")
    assert format_gib(p.logged_rank.bytes_of("weights")) == "64.38"


def test_triton_pads_the_intermediate_size_per_rank_to_64():
    # vLLM v0.34.0 fused_moe/oracle/mxfp4.py:mxfp4_round_up_hidden_size_and_intermediate_size (``else``: Triton):
    # TP 2 gives 2880 / 2 = 1440 per rank -> 1472. Expert parallelism keeps 2880 (a multiple of 64) per expert.
    # Per layer and rank at TP 2 (16 experts each under EP 2, 32 at 1472 under TP 2), the loaded w13 + w2 values:
    #   TP: 32 x (2 x 1472) x 1440 + 32 x 2880 x 736 = 135,659,520 + 67,829,760 = 203,489,280
    #   EP: 16 x 5760 x 1440 + 16 x 2880 x 1440        = 132,710,400 + 66,355,200 = 199,065,600
    # so TP 2 holds 24 x 4,423,680 = 106,168,320 B of values more than EP 2 (4.2 x 10^-3 of its ~6.5 GiB), plus
    # the scales and biases that grow with them.
    tp = _plan(GPTOSS_20B, "0.34.0", tp=2).logged_rank.bytes_of("weights")
    ep = _plan(GPTOSS_20B, "0.34.0", tp=2, ep=True).logged_rank.bytes_of("weights")
    assert tp - ep >= 24 * (203_489_280 - 199_065_600)


def test_a_float32_rope_cache_is_not_copied():
    # gpt-oss's cache is float32: ``Tensor.to(torch.float32)`` returns the concatenation itself, so no second
    # 32 MiB block is allocated and freed. Had it been, the next layer's 28.125 MiB qkv would take that freed 32 MiB
    # block whole (under max_split_size a request of 20 MiB or more takes a cached block less than 20 MiB larger);
    # instead it gets its own 30 MiB segment.
    ev = rope_cache_events(0, 131072, 64, 4)
    assert allocated_block_bytes(ev, max_split_bytes=20 * MiB) == 32 * MiB
    assert allocated_block_bytes(ev + [Alloc(29_491_200)], max_split_bytes=20 * MiB) == (32 + 30) * MiB


def test_marlin_is_not_replayed():
    # Marlin's repack (A100, sm80) is priced as before: no allocator part (its tensors are not replayed)
    p = _plan(GPTOSS_20B, "0.19.0", device="a100-80gb")
    assert p.logged_rank.weights.part("allocator") == 0


@settings(max_examples=25, deadline=None)
@given(version=st.sampled_from(["0.14.1", "0.21.0", "0.25.0", "0.26.0", "0.33.0", "0.34.0"]),
       tp=st.sampled_from([1, 2, 4, 8]), ep=st.booleans(), big=st.booleans())
def test_block_bytes_bound_the_tensor_bytes(version, tp, ep, big):
    """The allocator part is never negative and never more than 20 MiB a live tensor of 1 MiB or more (a block
    taken whole is less than 20 MiB larger than its request, a new segment at most 2 MiB)."""
    model = GPTOSS_120B if big else GPTOSS_20B
    p = _plan(model, version, tp=tp, ep=ep)
    extra = p.logged_rank.weights.part("allocator")
    layers = 36 if big else 24
    assert 0 < extra <= (layers * 8 + 3) * 20 * MiB
