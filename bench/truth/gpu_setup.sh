#!/bin/bash
# GPU side, single lent machine: join the transfer parts that arrived in /tmp/xfer (one per call, carried from
# .xfer/: t214.partNN = the torch 2.14 overlay of ../shared/vllm-on-gpu/torch214, v034/v033.partNN = the bundles of
# prepare_vllm_bundle.sh, sg.partNN = sglang/prepare.sh's, srv.part00 = prepare_serve_wheels.sh's OpenAI-server wheels), check them
# against .xfer/SHA256S, unpack once (/tmp/t214, /tmp/site034, /tmp/srvsite, ...), and check
# that torch 2.14 sees the GPU, that inductor compiles with the carried triton, and that vLLM imports.
# usage, from the project root: bash bench/truth/gpu_setup.sh   (idempotent; prints one line per step)
#        ONLY="sg" bash bench/truth/gpu_setup.sh   unpacks the named bundles only, no torch 2.14 check
set -u
X=/tmp/xfer; mkdir -p $X
cp .xfer/SHA256S $X/ 2>/dev/null
cd $X || exit 1
declare -A DEST=([t214]=/tmp/t214 [v034]=/tmp/site034 [v033]=/tmp/site033 [sg]=/tmp/sgsite [dg]=/tmp/dg034 [srv]=/tmp/srvsite)
for name in ${ONLY:-t214 v034 v033 sg dg srv}; do
  dest=${DEST[$name]}
  [ -f $dest/.done ] && { echo "$name: already unpacked"; continue; }
  grep " $name\.part" SHA256S > $name.sha || continue
  if ! sha256sum --quiet -c $name.sha 2>/dev/null; then echo "$name: parts missing or bad: $(ls $name.part* 2>/dev/null | tr '\n' ' ')"; continue; fi
  mkdir -p $dest && cat $name.part* | xz -d -T4 | tar -C $dest -x && touch $dest/.done && rm -f $name.part* \
    && echo "$name: unpacked into $dest ($(du -sh $dest | cut -f1))"
done
cd - >/dev/null
# ONLY=sg: unpack SGLang alone (torch 2.11, the image's) and stop here
[ -n "${ONLY:-}" ] && { [ -f .xfer/synth_tokenizer.py ] && cp -n .xfer/synth_tokenizer.py bench/truth/; exit 0; }
# the overlay leaves out torch/bin; `import torch` only checks that torch_shm_manager exists: take the image's
if [ -f /tmp/t214/.done ] && [ ! -e /tmp/t214/torch/bin/torch_shm_manager ]; then
  d=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))" 2>/dev/null)
  mkdir -p /tmp/t214/torch/bin && cp "$d/bin/torch_shm_manager" /tmp/t214/torch/bin/ && echo "t214: torch_shm_manager from the image"
fi
# vLLM 0.34's kernel_warmup imports MiniMax-M3's MSA warm-up (and with it the CuTe DSL, not carried) on every CUDA
# start; the real function returns at once without MiniMax-M3 sparse-attention modules or off SM100, so the
# harness puts that no-op in its place (data/truth/README.md says so next to the logs)
for site in /tmp/site034 /tmp/site033; do
  f=$site/vllm/model_executor/warmup/minimax_m3_msa_warmup.py
  [ -f "$f" ] && ! grep -q "harness no-op" "$f" && printf 'def minimax_m3_msa_warmup(worker):  # harness no-op (bench/truth/gpu_setup.sh)\n    return None\n' > "$f" && echo "$site: MiniMax-M3 MSA warm-up replaced by its no-op"
done
# DeepGEMM (dg.part00: vllm/third_party/deep_gemm/_C* and include/ of the 0.34 wheel, which the bundle leaves out;
# it JIT-compiles with the image's nvcc): DeepSeek-V3.2 / GLM-5's sparse-attention indexer needs it
if [ -f /tmp/dg034/.done ] && [ -d /tmp/site034/vllm/third_party/deep_gemm ] && [ ! -f /tmp/site034/.dg ]; then
  cp -r /tmp/dg034/vllm/third_party/deep_gemm/. /tmp/site034/vllm/third_party/deep_gemm/ && touch /tmp/site034/.dg \
    && echo "site034: DeepGEMM extension and headers added"
fi
# kernels the bundle leaves out, swapped for plain PyTorch or vLLM's own fallback (harness_patches.py says which)
for site in /tmp/site034 /tmp/site033; do [ -f $site/.done ] && python3 bench/truth/harness_patches.py $site; done
# --tokenizer synth needs ../shared/vllm-on-gpu/synth_tokenizer.py (carried in .xfer/)
[ -f .xfer/synth_tokenizer.py ] && [ ! -f bench/truth/synth_tokenizer.py ] && cp .xfer/synth_tokenizer.py bench/truth/
[ -f /tmp/t214/.done ] && [ -f /tmp/site034/.done ] || exit 3
# torch 2.14 links 11 NCCL 2.30 symbols that the image's NCCL 2.28.9 lacks: preload stubs (nccl_stub.c says why)
[ -f /tmp/t214/libnccl_stub.so ] || cc -shared -fPIC -O2 -o /tmp/t214/libnccl_stub.so bench/truth/nccl_stub.c 2>/dev/null \
  || cp .xfer/libnccl_stub.so /tmp/t214/ || exit 3
export LD_PRELOAD=/tmp/t214/libnccl_stub.so
export PYTHONPATH=/tmp/site034:/tmp/t214 HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
[ -f /tmp/site034/.checked ] && exit 0
timeout 240 python3 - <<'PY' 2>&1 | tail -15
import time; t=time.time()
import torch, triton
print("torch", torch.__version__, torch.version.cuda, "triton", triton.__version__, "gpu", torch.cuda.is_available(), torch.cuda.get_device_name(0))
f = torch.compile(lambda x: (x.sin() + 1).sum())
print("compile ok", float(f(torch.ones(1024, device="cuda"))), f"{time.time()-t:.0f}s")
import vllm, vllm._C_stable_libtorch
from vllm import LLM
print("vllm", vllm.__version__, "imports ok", f"{time.time()-t:.0f}s")
PY
[ ${PIPESTATUS[0]} = 0 ] && touch /tmp/site034/.checked
