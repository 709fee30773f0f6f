#!/bin/bash
# Issue 11 item 4: the post-KV phase where it is tight, four single-GPU streams side by side (GPUs 0-3 of a
# warm nvidia-h100-x8 or -x4, vLLM 0.26 bundle). gpt-oss needs compressed-tensors 0.17.0 + loguru carried as
# wheels in .whl/ (carry [".vllm-bundle", ".whl"]); from the project root:
#   bash bench/truth/postkv_command.sh
# Every run prints vLLM's own lines; measure_truth.py adds NVML's used memory after init and after generating.
# A run that dies in the sampler warm-up or graph capture is a failed case with vLLM's error text.
export T0=$(date +%s) OUT=${OUT:-/tmp/out}
PD=${PD:-555}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/extra .whl/*.whl && export EXTRA_PYTHONPATH=/tmp/extra
fi
for g in 0 1 2 3; do
  CUDA_VISIBLE_DEVICES=$g bash bench/truth/run_truth.sh bench/truth/plans/postkv_g$g.tsv $PD postkv$g > /dev/null 2>&1 &
done
wait
cd "$OUT" && grep -h "process:\|rc=\|SKIP\|out of memory\|KV cache memory" summary-*.txt | cut -c1-220; cat procs-*.txt
tar czf postkv.tgz logs-*.tar summary-*.txt procs-*.txt && rm -f logs-*.tar summary-*.txt; ls -la
