#!/bin/bash
# Issue 13 item 6: record a real vLLM 0.34 startup with `vramplan watch` (GPU given by CUDA_VISIBLE_DEVICES), from the
# project root, with the 0.34 bundle unpacked in /tmp/site034 and torch 2.14 in /tmp/t214 (EXTRA_PYTHONPATH).
# The server is `vllm serve` on dummy weights; it needs the OpenAI-server wheels (uvicorn, uvloop, prometheus_client,
# prometheus-fastapi-instrumentator, python-multipart, ...) in the 0.34 bundle. Where `vllm serve` cannot start for
# want of them, the same startup runs through the LLM class (bench/truth/measure_truth.py), which prints the same
# worker lines (reserve, warm-up, commit) that watch reads.
set -u
OUT=${OUT:-/tmp/out}; W=$OUT/watch034
export PYTHONPATH=/tmp/site034:${EXTRA_PYTHONPATH:-/tmp/t214} HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 \
       VLLM_USE_FLASHINFER_SAMPLER=0 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
M=/tmp/models/watch-q8b; mkdir -p $M && cp vramplan/catalog/Qwen/Qwen3-8B/config.json $M/
if python3 -c "import uvicorn, prometheus_client, vllm.entrypoints.openai.api_server" 2>/dev/null; then
  # the server is stopped 240 s after it starts (watch keeps the record and passes the exit code through)
  timeout 400 python3 -m vramplan watch --out $W -- timeout 240 python3 -m vllm.entrypoints.cli.main serve $M \
    --load-format dummy --max-model-len 8192 --skip-tokenizer-init --port 8765 || true
else
  echo "vllm serve not importable here: watching the LLM-class startup instead"
  printf 'watch_q8b\t--src vramplan/catalog/Qwen/Qwen3-8B --gmu unset --mnbt 8192 --mns 1024\n' > /tmp/watch_plan.tsv
  timeout 400 python3 -m vramplan watch --out $W -- python3 bench/truth/measure_truth.py --plan /tmp/watch_plan.tsv \
    --names watch_q8b --logdir /tmp/vlogs-watch || true
fi
ls -la $W 2>/dev/null
