#!/bin/bash
# Issue 14: SGLang startups, four single-GPU streams side by side (GPUs 4-7 of a warm nvidia-h100-x8 next to
# postkv_command.sh on 0-3, or GPUs 0-3 of an -x4), after the SGLang bundle was carried and unpacked into /tmp/sgsite
# (bench/truth/sglang/README.md). From the project root:  bash bench/truth/sglang_command.sh [FIRST_GPU]
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
F=${1:-4}; PD=${PD:-555}
python3 -c "import sys; sys.path[:0]=['/tmp/sgsite']; import sglang, sgl_kernel; print('sglang', sglang.__version__)" 2>&1 | tail -2
for k in 0 1 2 3; do
  CUDA_VISIBLE_DEVICES=$((F + k)) bash bench/truth/sglang/run_sglang.sh bench/truth/plans/sglang_g$k.tsv $PD sg$k &
done
wait
cd "$OUT" && cat summary-sg*.txt | cut -c1-200
tar czf sglang.tgz logs-sg*.tar summary-sg*.txt && rm -f logs-sg*.tar summary-sg*.txt; ls -la
