#!/bin/bash
# Issue 14: SGLang startups, single-GPU streams side by side (GPUs 4-7 of a warm nvidia-h100-x8 next to
# postkv_command.sh on 0-3, or GPUs 0-3 of an -x4), after the SGLang bundle was carried and unpacked into /tmp/sgsite
# (bench/truth/sglang/README.md; gpu_setup.sh unpacks .xfer/sg.part*). From the project root:
#   bash bench/truth/sglang_command.sh [FIRST_GPU] [STREAMS]
# STREAMS (default "0 1 2 3") picks the plans bench/truth/plans/sglang_gK.tsv; the i-th runs on GPU FIRST_GPU+i.
# On a one-GPU machine: one stream per call (~9 min each), e.g. `bash bench/truth/sglang_command.sh 0 1`, or
# `bash bench/truth/sglang_command.sh 0 all` in consecutive calls: all 17 in order of worth, each call going on where the last stopped.
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
F=${1:-4}; STREAMS=${2:-0 1 2 3}; PD=${PD:-555}
# the import check: the carried transformers 5.12.1 must shadow the image's (5.17 breaks sglang 0.5.17's imports)
PYTHONPATH=/tmp/sgsite python3 -c "import sglang, sgl_kernel, transformers, sglang.srt.entrypoints.http_server; print('sglang', sglang.__version__, 'transformers', transformers.__version__)" 2>&1 | tail -3
i=0
for k in $STREAMS; do
  plan=bench/truth/plans/sglang_g$k.tsv; [ "$k" = all ] && plan=bench/truth/plans/sglang_all.tsv
  CUDA_VISIBLE_DEVICES=$((F + i)) bash bench/truth/sglang/run_sglang.sh $plan $PD sg$k &
  i=$((i + 1))
done
wait
cd "$OUT" && cat summary-sg*.txt | cut -c1-200
tar czf sglang.tgz logs-sg*.tar summary-sg*.txt && rm -f logs-sg*.tar summary-sg*.txt; ls -la
