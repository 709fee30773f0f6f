#!/bin/bash
# Issue 16: the multi-GPU matrix on nvidia-h100-x8 (one call per release, from the project root):
#   bash bench/truth/tp_command.sh v026              # the lent image's torch 2.11 + .vllm-bundle (vLLM 0.26.0)
#   BUNDLE=.vllm034-bundle SITE=/tmp/site034 EXTRA_PYTHONPATH=/tmp/t214 bash bench/truth/tp_command.sh v034
# Phase 1: TP=8 on all GPUs; phase 2: two TP=4 streams side by side; phase 3: four TP=2/PP=2 streams.
# P1/P2/P3: the second (from the call's start) after which each phase starts no new run.
# NVLink multicast stays off in every child: run_truth.sh exports NCCL_NVLS_ENABLE=0,
# TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1 (the image sets them too).
# Torch symmetric memory is off except on the one line that measures its buffer (`*_symm`).
# vLLM 0.33+ turns FlashInfer's all-reduce on by default; FlashInfer is not carried, and its default
# (mnnvl) backend would create multicast objects: it is switched off here.
REL=${1:?v026 or v034}
export VLLM_ALLREDUCE_USE_SYMM_MEM=${VLLM_ALLREDUCE_USE_SYMM_MEM:-0} VLLM_ALLREDUCE_USE_FLASHINFER=0
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
P1=${P1:-220}; P2=${P2:-390}; P3=${P3:-555}
D=bench/truth/plans
R=bench/truth/run_truth.sh
nvidia-smi topo -m > "$OUT/topo-$REL.txt" 2>&1
bash $R $D/tp_${REL}_p1_tp8.tsv $P1 ${REL}p1 > /dev/null 2>&1
CUDA_VISIBLE_DEVICES=0,1,2,3 bash $R $D/tp_${REL}_p2_g0123.tsv $P2 ${REL}p2a > /dev/null 2>&1 &
CUDA_VISIBLE_DEVICES=4,5,6,7 bash $R $D/tp_${REL}_p2_g4567.tsv $P2 ${REL}p2b > /dev/null 2>&1 &
wait
for g in 01 23 45 67; do
  CUDA_VISIBLE_DEVICES=${g:0:1},${g:1:1} bash $R $D/tp_${REL}_p3_g$g.tsv $P3 ${REL}p3g$g > /dev/null 2>&1 &
done
wait
cd "$OUT" && grep -h "== env\|NCCL\|process:\|rc=\|SKIP" summary-*.txt | cut -c1-200; cat procs-*.txt
tar czf tp-$REL.tgz logs-*.tar summary-*.txt procs-*.txt topo-$REL.txt && rm -f logs-*.tar summary-*.txt; ls -la
