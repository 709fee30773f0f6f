#!/usr/bin/env python3
"""Measure the activation peak of real vision towers on one GPU (transformers reference code).

Builds only the vision module of Qwen2.5-VL-3B, Qwen3-VL-8B and Qwen3-VL-2B from their
catalog configs with transformers (random weights, bf16, on the device), and for several
square image sizes and item counts records, for one forward pass under ``torch.no_grad``:

- ``peak_bytes``: ``torch.cuda.max_memory_allocated() - baseline`` where the baseline is
  ``memory_allocated()`` just before the call (weights, pixel values and grid already on
  the GPU; the peak stats are reset first);
- ``held_bytes``: what the call leaves allocated (its outputs);
- per-module entry/peak bytes for one pass per (model, impl) (forward hooks), which show
  where the peak sits;
- a live-tensor count of the same pass (a dispatch-mode tracker that adds up the storages
  of op outputs while they are alive): the difference to ``peak_bytes`` is what kernels
  allocate internally (workspaces) plus allocator rounding.

Attention implementations: ``sdpa`` always; ``eager`` for the smaller sizes (its scores
grow with the square of the patches); ``flash_attention_2`` only if the ``flash_attn``
package imports (it is not installed on our device image).

Usage (device): ``python bench/vision/measure_towers.py --out $OUT/vision_measurements.json``
Local smoke test (no GPU): ``python bench/vision/measure_towers.py --device cpu --quick``
(on CPU only the live-tensor tracker measures anything).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
import weakref
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "vramplan" / "catalog"

MODELS = {
    "Qwen2.5-VL-3B": ("Qwen/Qwen2.5-VL-3B-Instruct", [448, 896, 1344, 1792, 3584]),
    "Qwen3-VL-8B": ("Qwen/Qwen3-VL-8B-Instruct", [448, 896, 1344, 1792, 4096]),
    "Qwen3-VL-2B": ("Qwen/Qwen3-VL-2B-Instruct", [896, 1792, 4096]),
}
ITEMS = [1, 2, 4]
EAGER_MAX_SCORE_BYTES = 24 << 30  # skip eager where one chunk's scores would pass this


def log(*args: object) -> None:
    print(*args, flush=True)


class LiveTracker(torch.utils._python_dispatch.TorchDispatchMode):
    """Adds up the bytes of op-output storages while they are alive (weakref on the storage)."""

    def __init__(self, existing: set[int] | None = None) -> None:
        super().__init__()
        self.existing = existing or set()
        self.live: dict[int, int] = {}
        self.cur = 0
        self.peak = 0
        self.peak_op = ""

    def _free(self, key: int, n: int) -> None:
        if self.live.pop(key, None) is not None:
            self.cur -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                s = t.untyped_storage()
                key, n = s.data_ptr(), s.nbytes()
                if n == 0 or key in self.live or key in self.existing:
                    continue
                self.live[key] = n
                self.cur += n
                weakref.finalize(s, self._free, key, n)
                if self.cur > self.peak:
                    self.peak, self.peak_op = self.cur, str(func)
        return out


def rope_bf16(q, k, cos, sin):
    """A rotary step that writes one model-dtype output per tensor (like vLLM's fused kernel).

    Replaces transformers' ``apply_rotary_pos_emb_vision`` (which works on float32 copies) in the
    ``sdpa_bf16rope`` runs, so that the peak moves to the stages vLLM's own peak is made of
    (attention projection, MLP) and those stages get measured too.
    """
    cos = cos.unsqueeze(-2).to(q.dtype)
    sin = sin.unsqueeze(-2).to(q.dtype)

    def one(x):
        h = x.shape[-1] // 2
        out = x * cos
        out[..., :h].addcmul_(x[..., h:], sin[..., :h], value=-1)
        out[..., h:].addcmul_(x[..., :h], sin[..., h:])
        return out

    return one(q), one(k)


_ORIGINAL_ROPE: dict = {}


def set_rope(model, variant: str) -> None:
    mod = sys.modules[type(model).__module__]
    _ORIGINAL_ROPE.setdefault(mod, mod.apply_rotary_pos_emb_vision)
    mod.apply_rotary_pos_emb_vision = rope_bf16 if variant == "bf16" else _ORIGINAL_ROPE[mod]


def load_config(repo: str) -> dict:
    return json.loads((CATALOG / repo / "config.json").read_text())


def build_tower(repo: str, impl: str, device: str, *, depth: int | None = None):
    import transformers

    raw = load_config(repo)
    cfg = transformers.AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items() if k != "model_type"})
    vcfg = cfg.vision_config
    if depth is not None:
        vcfg.depth = depth
        if hasattr(vcfg, "fullatt_block_indexes"):
            vcfg.fullatt_block_indexes = [i for i in vcfg.fullatt_block_indexes if i < depth] or [depth - 1]
        if getattr(vcfg, "deepstack_visual_indexes", None):
            vcfg.deepstack_visual_indexes = [i for i in vcfg.deepstack_visual_indexes if i < depth] or [0]
    if raw["model_type"] == "qwen2_5_vl":
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel as cls
    else:
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel as cls
    with torch.device(device):
        model = cls._from_config(vcfg, attn_implementation=impl, dtype=torch.bfloat16)
    return model.eval(), vcfg


def set_impl(model, impl: str) -> None:
    try:
        model.set_attn_implementation(impl)
    except Exception:  # noqa: BLE001
        model.config._attn_implementation = impl


def make_inputs(vcfg, size: int, n: int, device: str):
    patch, merge, tp = vcfg.patch_size, vcfg.spatial_merge_size, vcfg.temporal_patch_size
    unit = patch * merge
    assert size % unit == 0, (size, unit)
    grid = size // patch
    per = grid * grid
    cin = vcfg.in_channels * tp * patch * patch
    pv = torch.randn(n * per, cin, dtype=torch.bfloat16, device=device)
    thw = torch.tensor([[1, grid, grid]] * n, dtype=torch.long, device=device)
    return pv, thw, per


def cuda_sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_once(model, pv, thw, device: str) -> dict:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(pv, grid_thw=thw)
    cuda_sync(device)
    dt = time.perf_counter() - t0
    rec = {"time_s": round(dt, 4)}
    if device.startswith("cuda"):
        rec["peak_bytes"] = torch.cuda.max_memory_allocated() - base
        rec["held_bytes"] = torch.cuda.memory_allocated() - base
        rec["baseline_bytes"] = base
    pooled = getattr(out, "pooler_output", None)
    rec["out_shape"] = list(pooled.shape) if pooled is not None else None
    ds = getattr(out, "deepstack_features", None)
    rec["num_deepstack_out"] = len(ds) if ds else 0
    del out
    return rec


def run_tracked(model, pv, thw) -> dict:
    gc.collect()
    existing = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), pv, thw]}
    tr = LiveTracker(existing)
    with torch.no_grad(), tr:
        out = model(pv, grid_thw=thw)
    rec = {"tracker_peak_bytes": tr.peak, "tracker_peak_op": tr.peak_op, "tracker_held_bytes": tr.cur}
    del out
    return rec


def run_hooked(model, pv, thw, device: str) -> list[dict]:
    """Entry live bytes and peak (reset at entry) of each top-level stage."""
    rows: list[dict] = []
    mods = [("patch_embed", model.patch_embed)]
    mods += [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
    for i, m in enumerate(getattr(model, "deepstack_merger_list", []) or []):
        mods.append((f"deepstack_merger_list.{i}", m))
    mods.append(("merger", model.merger))
    handles = []
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    state: dict[str, int] = {}

    def pre(name):
        def f(_m, _a):
            torch.cuda.synchronize()
            state[name] = torch.cuda.memory_allocated() - base
            torch.cuda.reset_peak_memory_stats()
        return f

    def post(name):
        def f(_m, _a, _o):
            torch.cuda.synchronize()
            rows.append({"module": name, "entry_bytes": state[name],
                         "peak_bytes": torch.cuda.max_memory_allocated() - base,
                         "exit_bytes": torch.cuda.memory_allocated() - base})
        return f

    for name, m in mods:
        handles.append(m.register_forward_pre_hook(pre(name)))
        handles.append(m.register_forward_hook(post(name)))
    try:
        with torch.no_grad():
            out = model(pv, grid_thw=thw)
        torch.cuda.synchronize()
        del out
    finally:
        for h in handles:
            h.remove()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "vision_measurements.json"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="2 layers, small sizes (smoke test)")
    ap.add_argument("--time-limit", type=float, default=170.0, help="stop starting new runs after this many s")
    args = ap.parse_args()
    t_start = time.perf_counter()
    device = args.device
    import transformers

    env = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
           "platform": platform.platform(), "device": device, "flash_attn_installed":
               importlib.util.find_spec("flash_attn") is not None}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_total_bytes"] = torch.cuda.get_device_properties(0).total_memory
        env["sdpa_flash_enabled"] = torch.backends.cuda.flash_sdp_enabled()
        env["sdpa_mem_efficient_enabled"] = torch.backends.cuda.mem_efficient_sdp_enabled()
        env["cudnn_sdp_enabled"] = getattr(torch.backends.cuda, "cudnn_sdp_enabled", lambda: None)()
    impls = ["sdpa", "sdpa_bf16rope", "eager"] + (["flash_attention_2"] if env["flash_attn_installed"] else [])
    log("env", json.dumps(env))
    records: list[dict] = []
    hooks: list[dict] = []
    result = {"env": env, "records": records, "hooks": hooks, "notes": []}

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))

    for key in args.models.split(","):
        repo, sizes = MODELS[key]
        depth = 2 if args.quick else None
        if args.quick:
            sizes = sizes[:2]
        try:
            model, vcfg = build_tower(repo, "sdpa", device, depth=depth)
        except Exception as exc:  # noqa: BLE001
            result["notes"].append(f"{key}: build failed: {exc!r}")
            log(traceback.format_exc())
            save()
            continue
        nparams = sum(p.numel() for p in model.parameters())
        wbytes = torch.cuda.memory_allocated() if device.startswith("cuda") else None
        log(f"built {key}: {nparams} params, allocated {wbytes}")
        # warm-up (cuBLAS/cuDNN handles and workspaces become part of the baseline)
        pv, thw, _ = make_inputs(vcfg, sizes[0], 1, device)
        with torch.no_grad():
            model(pv, grid_thw=thw)
        del pv, thw
        for impl in impls:
            set_impl(model, "sdpa" if impl == "sdpa_bf16rope" else impl)
            set_rope(model, "bf16" if impl == "sdpa_bf16rope" else "fp32")
            for size in sizes:
                for n in ITEMS if not args.quick else [1, 2]:
                    if impl == "sdpa_bf16rope" and (n == 2 or size not in (sizes[1], sizes[-2], sizes[-1])):
                        continue
                    if time.perf_counter() - t_start > args.time_limit:
                        result["notes"].append(f"time limit: skipped {key} {impl} {size} N={n} and later")
                        save()
                        return 0
                    grid = size // vcfg.patch_size
                    per = grid * grid
                    if impl == "eager":
                        chunk = per
                        score = (2 + 2 * 4) * vcfg.num_heads * chunk * chunk  # bf16 scores + 2 fp32 copies
                        if score > EAGER_MAX_SCORE_BYTES or n > 2:
                            continue
                    rec = {"model": key, "repo": repo, "impl": impl, "image_size": size, "num_items": n,
                           "patches_per_item": per, "total_patches": n * per, "num_params": nparams,
                           "depth": vcfg.depth}
                    try:
                        pv, thw, _ = make_inputs(vcfg, size, n, device)
                        rec["pixel_bytes"] = pv.numel() * pv.element_size()
                        rec.update(run_once(model, pv, thw, device))
                        if device == "cpu" or (n == 1 and size == sizes[1] and impl == "sdpa"):
                            rec.update(run_tracked(model, pv, thw))
                        if device.startswith("cuda") and n == 1 and impl == "sdpa" and size in (sizes[1], sizes[-2]):
                            for row in run_hooked(model, pv, thw, device):
                                hooks.append({"model": key, "impl": impl, "image_size": size, "num_items": n, **row})
                        del pv, thw
                    except torch.cuda.OutOfMemoryError as exc:  # type: ignore[attr-defined]
                        rec["error"] = f"OOM: {str(exc)[:200]}"
                    except Exception as exc:  # noqa: BLE001
                        rec["error"] = repr(exc)[:300]
                        log(traceback.format_exc())
                    records.append(rec)
                    log(json.dumps(rec))
                    save()
        del model
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    save()
    log(f"done in {result['elapsed_s']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
