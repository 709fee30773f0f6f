"""gpt-oss (``GptOssForCausalLM``): biases on QKV, o_proj, router and experts, per-head attention sinks.

vLLM v0.26.0 vllm/model_executor/models/gpt_oss.py: OAIAttention (sinks in float32) builds its rope with
``dtype=torch.float32`` (OAIAttention.__init__), so its cos/sin cache stays float32.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import _rope_buffers, moe_layers


# The prefill token grid up to 1024 that vLLM 0.34 writes for gpt-oss (the legacy 1024-token list, below 1024).
_GRID_1024 = frozenset({1, 2, 4, *range(8, 256, 8), *range(256, 1024, 16)})


def gpt_oss_capture_override(version: tuple[int, int, int], *, device_capability: tuple[int, int] | None,
                             max_num_batched_tokens: int, num_speculative_tokens: int, user_set: bool
                             ) -> dict[str, object] | None:
    """What ``GptOssForCausalLMConfig.verify_and_update_config`` writes into the compilation config when the user
    set no capture size (``None``: it leaves the sizes alone). Keys are vramplan's flag names.

    - v0.10.1: ``scheduler_config.cuda_graph_sizes`` = [1, 2, 4] + 8..248 + 256..1024 by 16 (83 graphs);
    - v0.11.0: the same list up to 992 ("the max supported size is 992" with FA3 full graphs; 81 graphs);
    - v0.12.0-v0.33.0: ``max_cudagraph_capture_size = 1024``
      (vLLM v0.26.0 vllm/model_executor/models/config.py, "Overriding max cuda graph capture size to 1024");
    - v0.34.0: not on the SM100 family; ``prefill_cudagraph_capture_token_sizes`` = the grid below
      ``min(mnbt, 1024)`` plus that value, ``max_decode_cudagraph_capture_requests = 1024 // (1 + k)``.
    """
    if user_set or version < (0, 10, 1):
        return None
    if version < (0, 12, 0):
        top = 992 if version >= (0, 11, 0) else 1024
        return {"cudagraph_capture_sizes": (1, 2, 4, *range(8, 256, 8), *range(256, top + 1, 16))}
    if version < (0, 34, 0):
        return {"max_cudagraph_capture_size": 1024}
    if device_capability is not None and device_capability[0] == 10:
        return None
    top = min(max_num_batched_tokens, 1024)
    return {"prefill_cudagraph_capture_token_sizes": tuple(sorted({s for s in _GRID_1024 if s < top} | {top})),
            "max_decode_cudagraph_capture_requests": 1024 // (1 + num_speculative_tokens)}


register(Family(
    name="gpt_oss",
    builder=partial(moe_layers, bias=True, sinks=True),
    architectures={"GptOssForCausalLM": False},
    buffers=partial(_rope_buffers, dtype="float32"),
    capture_override=gpt_oss_capture_override,
))

