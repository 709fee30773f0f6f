#!/bin/bash
# The command run on nvidia-h200-x2 (from the project root): TP=2 first on both GPUs, then one
# stream per GPU side by side. Symmetric-memory all-reduce is switched off (it would try NVLink
# multicast, which this workplace forbids); NCCL_NVLS_ENABLE=0 etc. stay as the image sets them.
export VLLM_ALLREDUCE_USE_SYMM_MEM=0
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
P1=${P1:-230}; P2=${P2:-400}
bash bench/truth/run_truth.sh bench/truth/plans/x2_tp2.tsv $P1 tp2 > /dev/null 2>&1
CUDA_VISIBLE_DEVICES=0 bash bench/truth/run_truth.sh bench/truth/plans/x2_gpu0.tsv $P2 g0 > /dev/null 2>&1 &
CUDA_VISIBLE_DEVICES=1 bash bench/truth/run_truth.sh bench/truth/plans/x2_gpu1.tsv $P2 g1 > /dev/null 2>&1 &
wait
cd "$OUT" && grep -h "== env\|NCCL\|process:\|rc=" summary-*.txt | cut -c1-200; cat procs-*.txt
tar czf x2.tgz logs-*.tar summary-*.txt && rm -f logs-*.tar summary-*.txt; ls -la
