#!/bin/bash
# GPU side: run a truth plan with the vLLM 0.26.0 bundle (.vllm-bundle/, built by
# /work/shared/vllm-on-gpu/prepare.sh) and bench/truth/measure_truth.py.
#
# usage, from the project root on the GPU machine:
#   bash bench/truth/run_truth.sh PLAN.tsv DEADLINE_S [STREAM]
# PLAN lines: NAME<TAB>ARGS (see measure_truth.py). Consecutive lines carrying the same
# `--proc TAG` run in one Python process (several startups, each with a fresh engine-core
# child); a line without --proc runs in its own process, like the bundle's run_plan.sh.
# DEADLINE_S: no run starts after that many seconds (counted from this script's start; set
# T0=epoch to share a clock between streams). STREAM names the output files
# ($OUT/logs-STREAM.tar, $OUT/summary-STREAM.txt), so two streams (one per GPU, set
# CUDA_VISIBLE_DEVICES) can run side by side.
# Other releases: BUNDLE (default .vllm-bundle) names the bundle folder, SITE (default /tmp/site) where
# it unpacks, EXTRA_PYTHONPATH what goes after it (e.g. /tmp/t214, the torch 2.14 overlay for 0.33/0.34).
# NVLink multicast stays off in this process and every child (the lent machines require it).
set -u
PLAN=${1:?plan file}
DEADLINE=${2:-540}
STREAM=${3:-main}
T0=${T0:-$(date +%s)}
ROOT=$PWD
B=${BUNDLE:-$ROOT/.vllm-bundle}; [[ $B == /* ]] || B=$ROOT/$B
SITE=${SITE:-/tmp/site}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
LOGDIR=/tmp/vlogs-$STREAM; mkdir -p "$LOGDIR"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0} TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1} \
       NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
export PYTHONPATH=$SITE${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 \
       DO_NOT_TRACK=1 PYTHONUNBUFFERED=1 VLLM_LOGGING_LEVEL=${VLLM_LOGGING_LEVEL:-DEBUG} \
       TOKENIZERS_PARALLELISM=false VLLM_USE_FLASHINFER_SAMPLER=${VLLM_USE_FLASHINFER_SAMPLER:-0} \
       CUDA_DEVICE_ORDER=PCI_BUS_ID
PY=${PY:-python3}
S="$OUT/summary-$STREAM.txt"
el() { echo $(( $(date +%s) - T0 )); }

# unpack once per machine (the same steps as the bundle's run_plan.sh); a lock lets two streams start together
(
  flock 9
  if [ ! -f $SITE/.done ]; then
    mkdir -p $SITE
    for f in "$B"/core.txz "$B"/moe.txz; do
      [ -f "$f" ] || { echo "missing $f" | tee -a "$S"; continue; }
      dest=$SITE; [[ $f == *moe* ]] && dest=$SITE/vllm
      if command -v xz >/dev/null; then tar -C $dest -xJf "$f"; else
        $PY -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='fully_trusted')" "$f" $dest; fi
    done
    touch $SITE/.done
    echo "[$(el)s] installed: $(du -sh $SITE | cut -f1)" | tee -a "$S"
  fi
) 9>$SITE.lock
{
  echo "== env ($(el)s) stream=$STREAM CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"
  nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv,noheader
  env | grep -E '^(NCCL_|TORCH_SYMM|NVSHMEM_)' | sort | tr '\n' ' '; echo
} 2>&1 | tee -a "$S"

run_group() {  # names...
  local names; names=$(IFS=,; echo "$*")
  local left=$(( DEADLINE - $(el) ))
  if [ $left -lt 30 ]; then echo "SKIP $names (only ${left}s left)" | tee -a "$S"; return; fi
  echo "== [$(el)s] process: $names" | tee -a "$S"
  setsid timeout -k 5 $((left + 60)) $PY "$ROOT/bench/truth/measure_truth.py" --plan "$PLAN" \
      --names "$names" --logdir "$LOGDIR" --deadline $(( T0 + DEADLINE )) \
      --proc-log "$LOGDIR/_procs.txt" >> "$S" 2>&1 &
  local pid=$!; wait $pid; local rc=$?
  kill -9 -- -$pid 2>/dev/null; sleep 1
  echo "   process rc=$rc at $(el)s" | tee -a "$S"
  for n in "$@"; do
    L=$LOGDIR/$n.log
    [ -f "$L" ] || continue
    echo "proc_rc=$rc" >> "$L"
    grep -E "Using V2 Model Runner|Model loading took|Memory profiling takes|Available KV cache memory|GPU KV cache size|Graph capturing finished|Estimated CUDA graph memory|CUDA graph pool memory|Encoder cache will be|Error|out of memory|RESULT|TRUTH " "$L" \
      | grep -v "DEBUG.*\(Registering\|Loaded\)\|TRUTH_ALLOC .* before" | cut -c1-400 | tail -30 >> "$S"
    tar -C "$LOGDIR" -rf "$OUT/logs-$STREAM.tar" "$n.log"
  done
}

group=(); gtag=""
while IFS=$'\t' read -r NAME ARGS; do
  [[ -z "$NAME" || "$NAME" == \#* ]] && continue
  tag=""
  [[ "$ARGS" =~ --proc[[:space:]]+([^[:space:]]+) ]] && tag=${BASH_REMATCH[1]}
  if [ ${#group[@]} -gt 0 ] && { [ -z "$tag" ] || [ "$tag" != "$gtag" ]; }; then
    run_group "${group[@]}"; group=()
  fi
  group+=("$NAME"); gtag=$tag
  if [ -z "$tag" ]; then run_group "${group[@]}"; group=(); fi
done < "$PLAN"
[ ${#group[@]} -gt 0 ] && run_group "${group[@]}"
cp "$LOGDIR/_procs.txt" "$OUT/procs-$STREAM.txt" 2>/dev/null
echo "== end ($(el)s)" | tee -a "$S"
