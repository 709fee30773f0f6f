#!/usr/bin/env python3
"""Write configs trimmed to a few layers, keeping every layer type and every KV-cache group kind (issue 17).

vLLM builds a model from its config alone with `load_format="dummy"`, so a config cut to a few decoder
layers starts on one GPU and shows, exactly, the weights per layer, the KV bytes per token of each KV-cache
group, the block sizes and the block count. Each entry below names the layers kept (by index in the full
model); every per-layer field is cut the same way:

- lists as long as the layer count (``layer_types``, ``attn_type_list``, ``hybrid_layer_pattern``,
  ``moe_layer_freq`` as a list, ``compress_ratios``), their entries past the layer count (MTP layers) kept;
- strings as long as the layer count (Nemotron-H ``hybrid_override_pattern``);
- ``first_k_dense_replace`` and ``num_hash_layers`` become the number of kept layers below them;
- ``mlp_only_layers`` (indices) are renumbered.

Everything else (vocabulary, hidden size, heads, experts, MTP count, vision tower, quantization) is kept,
so per-layer figures equal the full model's. Output: bench/truth/configs/<org>--<model>-trimmed/config.json
and a NOTE.md saying what was kept.

usage: python3 bench/truth/trim_config.py [--src /work/shared/model-configs] [NAME ...]
"""
import argparse, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
# model (under --src) -> layers kept, and why
TABLE = {
    "Qwen/Qwen3.5-9B": (list(range(8)), "two periods of full_attention_interval 4: 6 linear-attention (GDN) + 2 full"),
    "Qwen/Qwen3.5-35B-A3B": (list(range(8)), "two periods: 6 linear-attention (GDN) + 2 full, all MoE"),
    "deepseek-ai/DeepSeek-V3.2": ([0, 3, 4], "1 dense (first_k_dense_replace 3 -> 1) + 2 MoE; MLA + indexer on every layer"),
    "deepseek-ai/DeepSeek-V4-Flash": (list(range(6)), "compress_ratios 0, 0, 4, 128, 4, 128 and the MTP entry; hash-routed "
                                      "layers 0-2 (num_hash_layers 3) and 3 learned-routing layers"),
    "zai-org/GLM-5": ([0, 3, 4], "1 dense (first_k_dense_replace 3 -> 1) + 2 MoE; MLA + DSA indexer"),
    "moonshotai/Kimi-K2.5": ([0, 1, 2], "1 dense (first_k_dense_replace 1) + 2 MoE (DeepSeek-V3 text model); vision tower whole"),
    "MiniMaxAI/MiniMax-M2.7": ([0, 1, 2, 3], "attn_type_list is all 1 (full attention): 4 MoE layers"),
    "XiaomiMiMo/MiMo-V2-Flash": (list(range(6)), "hybrid_layer_pattern 0,1,1,1,1,0 (full, 4 sliding, full); layer 0 dense, 1-5 MoE"),
    "nvidia/Nemotron-H-56B-Base-8K": (list(range(9)), "pattern M-M-M-M*: 4 Mamba-2, 4 MLP, 1 attention"),
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": (list(range(7)), "pattern MEMEM*E: 3 Mamba-2, 3 MoE, 1 attention"),
    "google/gemma-4-26B-A4B": (list(range(6)), "5 sliding (window 1024) + 1 full attention (global head dim 512), MoE"),
}


def text_config(cfg):
    for k in ("text_config", "language_config", "llm_config"):
        if isinstance(cfg.get(k), dict) and "num_hidden_layers" in cfg[k]:
            return cfg[k]
    return cfg


def trim(cfg, keep):
    cfg = json.loads(json.dumps(cfg))
    t = text_config(cfg)
    n = t["num_hidden_layers"]
    keep = sorted(keep)
    assert keep and keep[-1] < n, (keep, n)
    for k, v in list(t.items()):
        if isinstance(v, list) and len(v) >= n and k not in ("architectures", "eos_token_id", "bos_token_id"):
            t[k] = [v[i] for i in keep] + v[n:]
        elif isinstance(v, str) and len(v) >= n and k == "hybrid_override_pattern":
            t[k] = "".join(v[i] for i in keep) + v[n:]
    for k in ("first_k_dense_replace", "num_hash_layers"):
        if isinstance(t.get(k), int):
            t[k] = sum(i < t[k] for i in keep)
    if isinstance(t.get("mlp_only_layers"), list):
        t["mlp_only_layers"] = [keep.index(i) for i in t["mlp_only_layers"] if i in keep]
    t["num_hidden_layers"] = len(keep)
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/work/shared/model-configs")
    ap.add_argument("--out", default=os.path.join(HERE, "configs"))
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    for name in a.names or TABLE:
        keep, why = TABLE[name]
        src = os.path.join(a.src, name, "config.json")
        cfg = json.load(open(src))
        n = text_config(cfg)["num_hidden_layers"]
        out = os.path.join(a.out, name.replace("/", "--") + "-trimmed")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(trim(cfg, keep), f, indent=2)
            f.write("\n")
        for extra in ("hf_quant_config.json", "preprocessor_config.json", "generation_config.json"):
            p = os.path.join(a.src, name, extra)
            if os.path.isfile(p):
                with open(p) as fi, open(os.path.join(out, extra), "w") as fo:
                    fo.write(fi.read())
        with open(os.path.join(out, "NOTE.md"), "w") as f:
            f.write(f"# {name}, trimmed to {len(keep)} of {n} decoder layers\n\n"
                    f"From `../shared/model-configs/{name}/config.json` (provenance in its SOURCES.md) by "
                    f"`bench/truth/trim_config.py`: layers {keep} kept ({why}). Every per-layer field is cut the same "
                    f"way; everything else is the full model's. For trimmed-layer startups with dummy weights "
                    f"(issue 17): weights per layer, KV bytes per token and per block of each KV-cache group, block "
                    f"counts.\n")
        print(f"{out}: {len(keep)}/{n} layers")


if __name__ == "__main__":
    sys.exit(main())
