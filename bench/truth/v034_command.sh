#!/bin/bash
# Issues 13 and 17 (and the 0.33 drift check) in one call on a warm nvidia-h100-x8 that already holds the torch 2.14
# overlay in /tmp/t214 (torch214/README.md) and the vLLM 0.34 / 0.33 bundles (.vllm034-bundle, .vllm033-bundle,
# built like ../shared/vllm-on-gpu/prepare.sh with VLLM_WHL set to the 0.34.0 / 0.33.0 wheel and its dependencies).
# Single-GPU streams side by side, from the project root:
#   GPUs 0-3: v034_g0..g3.tsv (issue 13, >= 24 startups of 0.34)
#   GPUs 4-5: trimmed_v034_g0/g1.tsv (issue 17, trimmed-layer configs of the new architectures)
#   GPU 6:    v033_g0.tsv (0.33 at points measured on 0.26)
#   GPU 7:    bench/truth/watch_v034.sh (issue 13 item 6: `vramplan watch` on a real 0.34 startup)
# gpt-oss and Kimi-K2.5 need compressed-tensors (+ loguru) carried as wheels in .whl/.
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 VLLM_ALLREDUCE_USE_FLASHINFER=0
PD=${PD:-555}
X=/tmp/t214
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/extra .whl/*.whl && X=$X:/tmp/extra
fi
R=bench/truth/run_truth.sh; D=bench/truth/plans
run034() { CUDA_VISIBLE_DEVICES=$1 BUNDLE=.vllm034-bundle SITE=/tmp/site034 EXTRA_PYTHONPATH=$X bash $R $D/$2 $PD $3 > /dev/null 2>&1; }
python3 -c "import sys; sys.path[:0]=['/tmp/t214']; import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
# unpack 0.34 once before the streams start (run_truth.sh's lock would serialize them anyway)
CUDA_VISIBLE_DEVICES=0 BUNDLE=.vllm034-bundle SITE=/tmp/site034 EXTRA_PYTHONPATH=$X bash $R /dev/null 0 unpack > /dev/null 2>&1
for g in 0 1 2 3; do run034 $g v034_g$g.tsv v034g$g & done
run034 4 trimmed_v034_g0.tsv trim0 &
run034 5 trimmed_v034_g1.tsv trim1 &
CUDA_VISIBLE_DEVICES=6 BUNDLE=.vllm033-bundle SITE=/tmp/site033 EXTRA_PYTHONPATH=$X bash $R $D/v033_g0.tsv $PD v033g0 > /dev/null 2>&1 &
CUDA_VISIBLE_DEVICES=7 EXTRA_PYTHONPATH=$X bash bench/truth/watch_v034.sh > "$OUT/watch.txt" 2>&1 &
wait
cd "$OUT" && grep -h "process:\|rc=\|SKIP\|Error" summary-*.txt | cut -c1-220; cat procs-*.txt; tail -5 watch.txt
tar czf v034.tgz logs-*.tar summary-*.txt procs-*.txt watch* && rm -f logs-*.tar summary-*.txt; ls -la
