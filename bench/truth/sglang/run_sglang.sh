#!/bin/bash
# GPU side: start real SGLang (dummy weights) once per plan line and keep its full log (issue 14).
# usage, from the project root, after the bundle's parts were carried to /tmp/sg and joined (sglang/README.md):
#   bash bench/truth/sglang/run_sglang.sh PLAN.tsv DEADLINE_S [STREAM]
# PLAN lines: NAME<TAB>ARGS, ARGS = `python -m sglang.launch_server` flags (SGLang's own names) without
# --model-path/--port, plus --src DIR (a folder holding config.json), --synth-tokenizer (vision-language models),
# --env K=V and --est S. Each run: the server starts, and either reaches "The server is fired up" (then one
# 8-token request, then it is stopped) or fails; $OUT/logs-STREAM.tar gets NAME.log.
set -u
PLAN=${1:?plan}; DEADLINE=${2:-540}; STREAM=${3:-sg}
T0=${T0:-$(date +%s)}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SITE=${SITE:-/tmp/sgsite}
export PYTHONPATH=$SITE${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 \
       NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 SGLANG_DISABLE_REQUEST_LOGGING=1
LOGDIR=/tmp/sglogs-$STREAM; mkdir -p "$LOGDIR"
PORT=$((30000 + ${CUDA_VISIBLE_DEVICES:-0} * 10 % 1000))
while IFS=$'\t' read -r NAME ARGS; do
  [[ -z "$NAME" || "$NAME" == \#* ]] && continue
  # a run that ended (ok or failed) in an earlier call to this warm machine is not repeated
  [ -f /tmp/sgdone/$NAME ] && continue
  left=$(( DEADLINE - ($(date +%s) - T0) ))
  est=$(sed -n 's/.*--est \([0-9]*\).*/\1/p' <<< "$ARGS"); est=${est:-90}
  if [ $left -lt $est ]; then echo "SKIP $NAME (${left}s left)" >> "$OUT/summary-$STREAM.txt"; continue; fi
  timeout -k 5 $((left + 30)) python3 bench/truth/sglang/measure_sglang.py --name "$NAME" --port $PORT \
      --logdir "$LOGDIR" --limit $(( left < 300 ? left : 300 )) -- $ARGS >> "$OUT/summary-$STREAM.txt" 2>&1
  tar -C "$LOGDIR" -rf "$OUT/logs-$STREAM.tar" "$NAME.log"
  grep -q '^SGTRUTH end .*"status": "\(ok\|failed\)"' "$LOGDIR/$NAME.log" && mkdir -p /tmp/sgdone && touch /tmp/sgdone/$NAME
  PORT=$((PORT + 1))
done < "$PLAN"
