"""Kimi-K3.1: DeepSeek Sparse Attention (DSA) on Kimi-K3's MLA layers (``text_config.dsa_config``).

Read from the vLLM 0.34.0 source only (nothing measured):

- ``vllm/transformers_utils/configs/kimi_linear.py:KimiLinearDSAConfig``: ``dsa_layers`` (1-based; ``layers`` is
  an alias; required), ``index_topk`` 2048, ``index_head_dim`` 64, ``index_num_heads`` 16, ``index_rope_dim`` 0,
  ``index_k_norm_type`` "rmsnorm", ``indexer_use_fp8`` False, ``index_topk_freq`` 1, ``index_skip_topk_offset`` 1
  (the defaults; unknown keys are ignored with a warning). ``KimiLinearConfig.is_dsa_layer(i)``:
  ``i + 1 in dsa_layers``.
- ``vllm/models/kimi_k3/nvidia/dsa.py:KimiK3DSAAttention`` (the MLA layers named by ``dsa_layers``): the MLA
  projections of the dense Kimi-K3 MLA (``fused_qkv_a_proj`` replicated, ``q_b_proj``, ``kv_b_proj``, ``o_proj``,
  a column-parallel ``g_proj`` output gate, the generic ``MLAAttention``'s ``W_UK_T`` / ``W_UV`` copies) plus
  ``KimiK3DSAIndexer``: ``wq_index`` ReplicatedLinear(q_lora_rank or hidden, index_num_heads x index_head_dim) with
  the checkpoint's quantization, ``wkv_index`` MergedColumnParallelLinear(hidden, [index_head_dim,
  index_num_heads], quant_config=None, disable_tp=True) in the model dtype, ``k_index_norm`` a float32 LayerNorm
  (weight + bias) for ``index_k_norm_type == "layernorm"``, else an RMSNorm (weight, model dtype). Same tensors
  as DeepSeek-V3.2's ``DeepseekV32Indexer`` (families/deepseek_v32.py) except the selectable k-norm and the query
  input (hidden states when ``q_lora_rank`` is None).
- One model-level ``topk_indices_buffer`` (max_num_batched_tokens x index_topk, int32;
  ``vllm/models/kimi_k3/nvidia/model.py:KimiLinearModel.__init__``), as DeepSeek-V3.2's.
- The indexer cache (``vllm/models/kimi_k3/common/dsa_cache.py``): ``KimiK3IndexerCache`` is
  ``DeepseekV32IndexerCache`` (an ``MLAAttentionSpec`` of uint8, block size = ``cache_config.block_size``) with
  ``indexer_cache_entry_bytes``: ``index_head_dim + 4`` bytes a token (fp8 keys and ONE float32 scale per token:
  ``quant_block_size = index_head_dim``), where DeepSeek-V3.2 stores ``index_head_dim + index_head_dim // 128 x 4``
  (the two agree at 128, differ at vLLM's default 64: 68 against 64). MXFP4 keys (``index_head_dim / 2 +
  index_head_dim / 32``) only with ``--attention-config '{"indexer_kv_dtype": "mxfp4"}'`` on SM10x: not modelled.
- ``KimiK3IndexerBackend.supported_kv_cache_layouts`` is ``(BLHNC,)``: the resolved layout is block-outermost, so
  ``vllm/v1/core/kv_cache_planning.py:_get_packed_kv_cache_groups`` packs the MLA + indexer pages of every DSA
  layer into one group and splits the KDA states into groups that fit that block row (rules/kv.py
  ``_packed_layout``). The block size is still the hybrid alignment of one MLA page with one KDA state
  (``Platform._align_hybrid_block_size``): ``KimiK3ForConditionalGeneration.get_packed_hybrid_block_size``
  (``packed_dsa_block_size``) is defined but nothing in 0.34 calls it.
- The shared workspace (``vllm/v1/worker/workspace.py:WorkspaceManager``, one grow-only buffer, views rounded to
  256 bytes): ``sparse_attn_indexer``'s dummy-run branch reserves the K-gather views (``max_total_seq_len`` x
  index_head_dim fp8 + x 4 uint8, ``max_total_seq_len = max_model_len x (1152 // 132) x
  sparse_mla_prefill_workspace_factor``, ``vllm/v1/attention/backends/mla/indexer.py:get_max_prefill_buffer_size``)
  and the radix top-k workspace (1 MiB), and allocates a transient logits buffer; see :func:`profile_workspace`.

vLLM 0.33 has no ``dsa_config`` (its ``KimiLinearConfig`` keeps the dict as an unread attribute, the MLA layers
are dense, and ``KimiLinearModel.load_weights`` fails on the checkpoint's ``self_attn.indexer.*`` tensors with a
KeyError): :func:`for_release` refuses it (``RuleSet.kimi_k3_dsa``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, UnsupportedError
from ..description import Param

__all__ = ["DSAConfig", "dsa_config", "indexer_params", "indexer_entry_bytes", "for_release", "profile_workspace",
           "max_total_seq_len"]

_DEFAULTS = {"index_topk": 2048, "index_head_dim": 64, "index_num_heads": 16, "index_rope_dim": 0,
             "index_k_norm_type": "rmsnorm", "indexer_use_fp8": False, "index_topk_freq": 1,
             "index_skip_topk_offset": 1}
_KNOWN = set(_DEFAULTS) | {"dsa_layers"}
_WHERE = "Kimi-K3.1 text_config.dsa_config"


@dataclass(frozen=True, slots=True, kw_only=True)
class DSAConfig:
    """``KimiLinearDSAConfig`` as vLLM 0.34 reads it."""

    layers: frozenset[int]
    """0-based decoder layers with a DSA indexer (``dsa_layers`` is 1-based)."""
    index_topk: int
    index_head_dim: int
    index_num_heads: int
    index_rope_dim: int
    index_k_norm_type: str
    ignored_keys: tuple[str, ...] = ()
    """Keys ``KimiLinearDSAConfig.from_dict`` ignores with a warning."""


def _int(d: dict, key: str) -> int:
    v = d.get(key, _DEFAULTS.get(key))
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{_WHERE}.{key} is {v!r}, not an integer", hint="compare it with the model's config.json")
    return v


def dsa_config(text: dict, num_layers: int, kda: set[int]) -> DSAConfig | None:
    """The checked ``dsa_config`` (None when absent), with the refusals vLLM 0.34 raises while building."""
    raw = text.get("dsa_config")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{_WHERE} is {type(raw).__name__}, not an object", hint="compare it with the Hub config")
    raw = dict(raw)
    if "dsa_layers" not in raw and "layers" in raw:  # KimiLinearDSAConfig.from_dict: "layers" is an alias
        raw["dsa_layers"] = raw.pop("layers")
    layers = raw.get("dsa_layers")
    if not isinstance(layers, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                        for i in layers):
        raise ConfigError(f"{_WHERE} has no dsa_layers list (vLLM's KimiLinearDSAConfig requires it: TypeError)",
                          hint="give dsa_layers, the 1-based MLA layers that carry the indexer")
    freq = _int(raw, "index_topk_freq")
    if freq < 1:
        raise ConfigError(f"{_WHERE}: index_topk_freq must be >= 1, got {freq} (KimiLinearDSAConfig.from_dict)")
    if freq != 1:
        raise ConfigError(f"Kimi-K3.1 DSA does not support index_topk_freq != 1 (index share), got {freq} "
                          "(vLLM 0.34 KimiK3DSAAttention)", hint="set index_topk_freq to 1")
    head, heads, rope = _int(raw, "index_head_dim"), _int(raw, "index_num_heads"), _int(raw, "index_rope_dim")
    topk = _int(raw, "index_topk")
    if head <= 0 or heads <= 0 or topk <= 0:
        raise ConfigError(f"{_WHERE}: index_head_dim, index_num_heads and index_topk must be positive",
                          hint="compare them with the model's config.json")
    if heads > 64:
        raise ConfigError(f"Official DeepGEMM DSA indexer supports at most 64 index heads, got {heads} "
                          "(vLLM 0.34 KimiK3DSAIndexer)", hint="index_num_heads must be <= 64")
    if rope < 0 or rope % 2:
        raise ConfigError(f"dsa_config.index_rope_dim must be even and >= 0, got {rope} (vLLM 0.34 KimiK3DSAIndexer)")
    if rope > head:
        raise ConfigError(f"dsa_config.index_rope_dim ({rope}) must not exceed index_head_dim ({head})")
    if rope > 0 and text.get("mla_use_nope"):
        raise ConfigError("dsa_config.index_rope_dim > 0 is incompatible with mla_use_nope (there is no rotary "
                          "cache to share) (vLLM 0.34 KimiK3DSAAttention)", hint="Kimi-K3.1 uses index_rope_dim 0")
    norm = raw.get("index_k_norm_type", _DEFAULTS["index_k_norm_type"])
    if norm not in ("rmsnorm", "layernorm"):
        raise ConfigError(f"dsa_config.index_k_norm_type must be 'rmsnorm' or 'layernorm', got {norm!r}")
    chosen = frozenset(int(i) - 1 for i in layers if 1 <= int(i) <= num_layers)
    on_kda = sorted(i + 1 for i in chosen & kda)
    if on_kda:
        raise ConfigError(f"{_WHERE}.dsa_layers names KDA layers {on_kda[:5]}: vLLM 0.34 builds them as KDA and its "
                          "DSA wiring check fails (\"DSA wiring broken\")", hint="dsa_layers must be MLA layers")
    mla = set(range(num_layers)) - kda
    if chosen != mla:
        raise UnsupportedError("Kimi-K3.1 DSA on only some of the MLA layers (dense and sparse MLA in one model) is "
                               "not modelled", hint="vramplan plans dsa_layers equal to the MLA (full-attention) "
                               "layers, as Kimi-K3.1 ships it")
    return DSAConfig(layers=chosen, index_topk=topk, index_head_dim=head, index_num_heads=heads,
                     index_rope_dim=rope, index_k_norm_type=str(norm),
                     ignored_keys=tuple(sorted(k for k in raw if k not in _KNOWN)))


def indexer_entry_bytes(index_head_dim: int) -> int:
    """vLLM v0.34.0 vllm/models/kimi_k3/common/dsa_cache.py:indexer_cache_entry_bytes (fp8 keys): fp8 values and one
    4-byte scale a token."""
    return index_head_dim + 4


def indexer_params(dsa: DSAConfig, *, hidden: int, q_lora_rank: int | None) -> tuple[Param, ...]:
    """One DSA layer's indexer tensors (vLLM v0.34.0 nvidia/dsa.py:KimiK3DSAIndexer.__init__)."""
    head, heads = dsa.index_head_dim, dsa.index_num_heads
    norm = (Param(name="self_attn.dsa_indexer.k_index_norm.weight+bias", shape=(2 * head,), part="norm",
                  dtype="float32") if dsa.index_k_norm_type == "layernorm"
            else Param(name="self_attn.dsa_indexer.k_index_norm.weight", shape=(head,), part="norm"))
    return (
        Param(name="self_attn.dsa_indexer.wq_index.weight", shape=(heads * head, q_lora_rank or hidden),
              part="attention", quantizable=True),
        Param(name="self_attn.dsa_indexer.wkv_index.weight", shape=(head + heads, hidden), part="attention"),
        norm,
    )


def for_release(model: Any, rules: Any) -> Any:
    """The kimi_k3 family's release view: a Kimi-K3.1 (DSA) description is what vLLM 0.34 builds
    (``RuleSet.kimi_k3_dsa``); a release without it cannot serve the checkpoint."""
    if rules.kimi_k3_dsa or not any(layer.attention is not None and layer.attention.indexer_packed
                                    for layer in model.layers):
        return model
    asked = ".".join(map(str, getattr(rules, "requested", None) or rules.version))
    raise UnsupportedError(
        f"vLLM {asked} has no Kimi-K3.1 DSA (dsa_config): vLLM 0.33's KimiLinearConfig does not read dsa_config, "
        "builds the MLA layers dense, and KimiLinearModel.load_weights fails on the checkpoint's self_attn.indexer.* "
        "tensors (KeyError)", hint="plan it with --vllm-version 0.34.0, the first release that serves Kimi-K3.1")


_VIEW_ALIGN = 256  # vLLM v0.34.0 vllm/v1/worker/workspace.py (round_up(actual, 256) per view)
_RADIX_TOPK_WORKSPACE = 1024 * 1024  # vLLM v0.34.0 vllm/model_executor/layers/indexer_topk.py


def _view(nbytes: int) -> int:
    return -(-nbytes // _VIEW_ALIGN) * _VIEW_ALIGN


def max_total_seq_len(max_model_len: int) -> int:
    """vLLM v0.34.0 vllm/v1/attention/backends/mla/indexer.py:get_max_prefill_buffer_size: ``max_model_len x
    (576 x 2 // 132) x factor``, factor = ``sparse_mla_prefill_workspace_factor`` (vllm/config/vllm.py: 5 up to
    256K tokens, else 2)."""
    factor = 5 if max_model_len <= 256 * 1024 else 2
    return max_model_len * (576 * 2 // 132) * factor


def indexer_workspace_bytes(dsa: DSAConfig, max_model_len: int) -> int:
    """The dummy-run reservation of ``sparse_attn_indexer`` (vLLM v0.34.0
    vllm/model_executor/layers/sparse_attn_indexer.py, ``_gather_workspace_shapes`` fp8 path): K values
    (T, index_head_dim) fp8, scales (T, 4) uint8 and the radix top-k workspace, T = :func:`max_total_seq_len`."""
    t = max_total_seq_len(max_model_len)
    return _view(t * dsa.index_head_dim) + _view(t * 4) + _view(_RADIX_TOPK_WORKSPACE)


def logits_bytes(*, max_model_len: int, max_num_seqs: int, max_num_batched_tokens: int, sm100: bool) -> int:
    """The transient logits buffer of ``sparse_attn_indexer``'s dummy run (vLLM v0.34.0
    sparse_attn_indexer.py): ``max(VLLM_SPARSE_INDEXER_MAX_LOGITS_MB MiB (512), decode rows x round_up(max_model_len,
    lcm(split_kv, 256)) x 4)`` with float32 logits (``KimiK3DSAIndexer.score`` passes no ``logits_dtype``), decode rows
    ``min(max_num_seqs, max_num_batched_tokens)`` (no speculative tokens), split_kv 384 on SM100 else 256. On SM100 the
    decode rows are chunked to the 2048 MiB decode budget (``VLLM_SPARSE_INDEXER_MAX_DECODE_LOGITS_MB``)."""
    import math

    split = 384 if sm100 else 256
    row = -(-max_model_len // math.lcm(split, 256)) * math.lcm(split, 256)
    rows = min(max_num_seqs, max_num_batched_tokens)
    if sm100:
        rows = min(rows, 2048 * 1024 * 1024 // (4 * max_model_len))
    return max(512 * 1024 * 1024, rows * row * 4)


def profile_workspace(dsa: DSAConfig, *, max_model_len: int, max_num_seqs: int, max_num_batched_tokens: int,
                      device_capability: tuple[int, int] | None, load_buffer_bytes: int) -> tuple[tuple[str, int], ...]:
    """What the first DSA layer's indexer adds to the torch peak of the profile run: the shared workspace grown
    from what the layers reserved while being built (``load_buffer_bytes``) to the indexer's reservation (kept), and
    the transient logits buffer."""
    need = indexer_workspace_bytes(dsa, max_model_len)
    sm100 = bool(device_capability and device_capability[0] == 10)
    logits = logits_bytes(max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                          max_num_batched_tokens=max_num_batched_tokens, sm100=sm100)
    out = []
    if need > load_buffer_bytes:
        out.append(("DSA indexer K-gather workspace (shared buffer grown in the profile run, kept)",
                    need - load_buffer_bytes))
    out.append(("DSA indexer dummy logits (transient)", logits))
    return tuple(out)
