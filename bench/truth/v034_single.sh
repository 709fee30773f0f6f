#!/bin/bash
# Issues 13 and 17 on ONE lent GPU (nvidia-h100-x1 / nvidia-h200): the plans given run one after another under one
# deadline (most important first; what does not fit is skipped and listed), with the 0.34 bundle and torch 2.14
# already unpacked by gpu_setup.sh. From the project root:
#   PD=540 bash bench/truth/v034_single.sh bench/truth/plans/v034_g0.tsv bench/truth/plans/v034_g3.tsv ...
# Results: $OUT/v034-<first plan's name>.tgz (logs, summaries, per-process timings).
# vLLM 0.33 instead (its bundle unpacked by gpu_setup.sh into /tmp/site033): VSITE=/tmp/site033 TAG=v033.
export T0=${T0:-$(date +%s)} OUT=${OUT:-/tmp/out}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 VLLM_ALLREDUCE_USE_FLASHINFER=0
PD=${PD:-540}
bash bench/truth/gpu_setup.sh || { echo "setup not complete"; exit 3; }
export LD_PRELOAD=/tmp/t214/libnccl_stub.so   # see nccl_stub.c
first=""
for p in "$@"; do
  s=$(basename "$p" .tsv); first=${first:-$s}
  BUNDLE=.vllm034-bundle SITE=${VSITE:-/tmp/site034} EXTRA_PYTHONPATH=/tmp/t214 bash bench/truth/run_truth.sh "$p" $PD "$s" > /dev/null 2>&1
done
cd "$OUT" && grep -h "process:\|rc=\|SKIP\|Error\|GPU KV cache size\|Available KV" summary-*.txt | cut -c1-200
cat /tmp/vlogs-*/_procs.txt 2>/dev/null | tail -40
tar czf "${TAG:-v034}-$first.tgz" logs-*.tar summary-*.txt procs-*.txt && rm -f logs-*.tar summary-*.txt procs-*.txt; ls -la
