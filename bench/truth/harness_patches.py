"""GPU side: harness substitutions for kernels the one-GPU bundle leaves out (FlashInfer, the CuTe DSL), applied to
an unpacked vLLM site (``python3 bench/truth/harness_patches.py /tmp/site034``; idempotent, one line per patch).

Each swaps a compute kernel for plain PyTorch or the engine's own fallback and leaves alone what vramplan checks
exactly: the model's parameters, every KV-cache spec and page, block sizes, the budget rules. What it can move is
the profile run's transient peak, by the temporaries of the replacement (kept to a few MiB by working in chunks).
Runs that used one say so in their plan line and log (``data/truth/harness/README.md``).

1. Qwen3.5/3.6 (``models/qwen3_5/nvidia/model.py``, the CUDA variant): its Gemma-style RMSNorm imports FlashInfer's
   ``gemma_rmsnorm`` / ``gemma_fused_add_rmsnorm`` unconditionally. Replaced by ``_truth_norm_shim`` (same maths,
   float32 inside, the fused variant in place like FlashInfer's, 2,048 rows at a time).
2. Routers with float32 weights (MiniMax-M2, MiMo-V2; ``layers/fused_moe/router/gate_linear.py``) build the SM90
   bf16x3 router GEMM, which imports the CuTe DSL, on Hopper. With ``TRUTH_NO_BF16X3=1`` in a run's environment the
   eligibility is false and ``GateLinear`` takes its own ``F.linear(x.float(), w)`` path.
"""
from __future__ import annotations

import sys
from pathlib import Path

SHIM = '''"""harness shim (bench/truth/harness_patches.py): FlashInfer's Gemma RMSNorm in plain PyTorch, in chunks."""
import torch

_ROWS = 2048


def _norm_rows(x2, weight, eps, out):
    for s in range(0, x2.shape[0], _ROWS):
        xf = x2[s:s + _ROWS].float()
        var = xf.pow(2).mean(-1, keepdim=True)
        out[s:s + _ROWS] = (xf * torch.rsqrt(var + eps) * (1.0 + weight.float())).to(out.dtype)


def gemma_rmsnorm(x, weight, eps, out=None, enable_pdl=None):
    x2 = x.reshape(-1, x.shape[-1])
    o = torch.empty_like(x2) if out is None else out.reshape(-1, x.shape[-1])
    _norm_rows(x2, weight, eps, o)
    return o.reshape(x.shape)


def gemma_fused_add_rmsnorm(x, residual, weight, eps, enable_pdl=None):
    x2 = x.reshape(-1, x.shape[-1])
    r2 = residual.reshape(-1, residual.shape[-1])
    for s in range(0, x2.shape[0], _ROWS):
        r2[s:s + _ROWS] += x2[s:s + _ROWS]
    _norm_rows(r2, weight, eps, x2)
'''

PATCHES = [
    ("vllm/models/qwen3_5/nvidia/model.py",
     "from flashinfer.norm import gemma_fused_add_rmsnorm, gemma_rmsnorm",
     "from _truth_norm_shim import gemma_fused_add_rmsnorm, gemma_rmsnorm  # harness shim"),
    ("vllm/model_executor/layers/fused_moe/router/gate_linear.py",
     "            and input_size % 8 == 0\n",
     "            and input_size % 8 == 0\n"
     "            and not __import__('os').environ.get('TRUTH_NO_BF16X3')  # harness switch\n"),
]


def apply(site: Path) -> int:
    bad = 0
    (site / "_truth_norm_shim.py").write_text(SHIM)
    for rel, old, new in PATCHES:
        f = site / rel
        if not f.exists():
            print(f"{site}: {rel} absent, skipped")
            continue
        text = f.read_text()
        if new in text:
            print(f"{site}: {rel} already patched")
            continue
        if text.count(old) != 1:
            print(f"{site}: {rel}: expected text found {text.count(old)} times, NOT patched")
            bad += 1
            continue
        f.write_text(text.replace(old, new))
        print(f"{site}: {rel} patched")
    return bad


if __name__ == "__main__":
    sys.exit(1 if sum(apply(Path(p)) for p in sys.argv[1:]) else 0)
