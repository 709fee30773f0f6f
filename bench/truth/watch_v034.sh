#!/bin/bash
# Issue 13 item 6: record a real vLLM 0.34 startup with `vramplan watch` (GPU given by CUDA_VISIBLE_DEVICES), from the
# project root, with the 0.34 bundle unpacked in /tmp/site034, torch 2.14 in /tmp/t214 (EXTRA_PYTHONPATH) and the
# OpenAI-server wheels (prepare_serve_wheels.sh: uvicorn, watchfiles, prometheus-fastapi-instrumentator,
# model-hosting-container-standards, jmespath, python-multipart) in /tmp/srvsite, all three unpacked by gpu_setup.sh.
# The server is `vllm serve` on dummy weights. Where `vllm serve` cannot start for want of those wheels, the same
# startup runs through the LLM class (bench/truth/measure_truth.py), which prints the same worker lines (reserve,
# warm-up, commit) that watch reads.
set -u
OUT=${OUT:-/tmp/out}; W=$OUT/watch034
export PYTHONPATH=/tmp/site034:${EXTRA_PYTHONPATH:-/tmp/t214}:/tmp/srvsite HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 \
       VLLM_USE_FLASHINFER_SAMPLER=0 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 \
       VLLM_LOGGING_LEVEL=${VLLM_LOGGING_LEVEL:-DEBUG}
# torch 2.14 does not import on the image without the NCCL 2.30 stubs (nccl_stub.c); gpu_setup.sh's export stays in
# its own shell, so it is set here too
[ -z "${LD_PRELOAD:-}" ] && [ -f /tmp/t214/libnccl_stub.so ] && export LD_PRELOAD=/tmp/t214/libnccl_stub.so
M=/tmp/models/watch-q8b; mkdir -p $M && cp vramplan/catalog/Qwen/Qwen3-8B/config.json $M/
# `vllm` as the wheel's console script would be (the bundle has no bin/), stopped VLLM_SERVE_S seconds after it starts:
# timeout sends SIGTERM to the server's whole process group (API server and engine core; SIGKILL 30 s later if one
# is still there) and exits 124; watch keeps the record and exits with that code. The command watch sees is then
# `vllm serve ...`, so it names the engine and plans the levels from the flags as it would for a user.
mkdir -p /tmp/srvbin
printf '#!/bin/sh\nexec timeout -k 30 "${VLLM_SERVE_S:-240}" python3 -m vllm.entrypoints.cli.main "$@"\n' > /tmp/srvbin/vllm
chmod +x /tmp/srvbin/vllm
export PATH=/tmp/srvbin:$PATH
if why=$(python3 -c "import uvicorn, prometheus_fastapi_instrumentator, model_hosting_container_standards.sagemaker, vllm.entrypoints.openai.api_server" 2>&1 >/dev/null); then
  timeout 400 python3 -m vramplan watch --out $W --engine vllm -- vllm serve $M \
    --load-format dummy --max-model-len 8192 --skip-tokenizer-init --port 8765 || true
else
  echo "vllm serve not importable here ($(echo "$why" | grep -v '^W[0-9]' | tail -1)): watching the LLM-class startup instead"
  printf 'watch_q8b\t--src vramplan/catalog/Qwen/Qwen3-8B --gmu unset --mnbt 8192 --mns 1024\n' > /tmp/watch_plan.tsv
  timeout 400 python3 -m vramplan watch --out $W -- python3 bench/truth/measure_truth.py --plan /tmp/watch_plan.tsv \
    --names watch_q8b --logdir /tmp/vlogs-watch || true
fi
ls -la $W 2>/dev/null
