#!/bin/bash
# Build a trimmed SGLang bundle for the lent Hopper GPU image (Python 3.12, torch 2.11.0+cu130, transformers,
# triton, numpy, ... already there; no network), the way ../shared/vllm-on-gpu/prepare.sh carries vLLM.
# WRITTEN, NOT YET RUN END TO END (issue 14): the dependency closure below is read from sglang 0.5.17's wheel
# metadata, less what the image has; check it on the GPU with the first call (step 3 of sglang/README.md) and
# add what `import sglang.launch_server` still misses.
# usage, from the project root:  bash bench/truth/sglang/prepare.sh [OUT_DIR]   (default ./.sglang-bundle)
# Output: core.txz split into part00, part01, ... of <= 60 MiB (one part per transfer call), SHA256, and the
# GPU-side scripts. Never commit the bundle (it is added to .git/info/exclude).
set -euo pipefail
REPO=$PWD
HERE=$(cd "$(dirname "$0")" && pwd)
SGLANG_VERSION=${SGLANG_VERSION:-0.5.17}      # the newest release on torch 2.11 (0.5.2x pin newer torch)
WORK=${WORK:-/tmp/sglang-prep}
OUTDIR=$(mkdir -p "${1:-$REPO/.sglang-bundle}" && cd "${1:-$REPO/.sglang-bundle}" && pwd)
PIP=${PIP:-python3 -m pip}
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
if [ -d "$REPO/.git" ] && [ "$OUTDIR" = "$REPO/.sglang-bundle" ]; then
  grep -qx '/.sglang-bundle/' "$REPO/.git/info/exclude" 2>/dev/null || echo '/.sglang-bundle/' >> "$REPO/.git/info/exclude"
fi
mkdir -p "$WORK/whl" "$WORK/deps"

# 1. SGLang and its compiled kernels. sglang-kernel carries cubins for every architecture: trimmed to sm_90 below.
#    flashinfer-python is JIT (python + sources); its prebuilt-kernel wheel (flashinfer-cubin) is not carried:
#    the runs use --attention-backend fa3 and --sampling-backend pytorch, which do not need it.
$PIP download -q --no-deps $PLAT -d "$WORK/whl" "sglang==$SGLANG_VERSION" "sglang-kernel==0.4.5" \
  "flashinfer_python==0.6.15.post1" "torch_memory_saver>=0.0.9.post1"

# 2. pure-Python (or small) dependencies the image lacks (sglang 0.5.17 Requires-Dist, less the image's packages
#    and less what only other features import: datasets, modelscope, IPython, py-spy, outlines' extras, audio/video).
DEPS="orjson uvloop uvicorn fastapi starlette python-multipart pyzmq msgspec pybase64 partial_json_parser
setproctitle interegular prometheus-client xxhash zstandard easydict einops gguf blobfile tiktoken sentencepiece
pydantic pydantic-core typing-inspection annotated-types compressed-tensors==0.17.0 loguru openai==2.6.1
openai-harmony==0.0.4 jiter distro sniffio httpx httpcore h11 anyio llguidance xgrammar==0.2.1 apache-tvm-ffi==0.1.11
timm==1.0.16 watchfiles cuda-python nvidia-ml-py psutil"
$PIP download -q --no-deps $PLAT -d "$WORK/deps" $DEPS

# 3. unpack into one site folder, trimmed
rm -rf "$WORK/site" && mkdir -p "$WORK/site"
for w in "$WORK"/deps/*.whl "$WORK"/whl/*.whl; do unzip -q -o "$w" -d "$WORK/site"; done
find "$WORK/site" -name '__pycache__' -prune -exec rm -rf {} +
rm -rf "$WORK/site"/sglang/test "$WORK/site"/sglang/multimodal_gen 2>/dev/null || true
# FlashAttention-3 (flash_ops, 1.1 GB even for sm_90 alone), the Blackwell kernels and a CPython 3.10 extension are
# left behind: the runs use --attention-backend triton (sgl_kernel imports flash_ops only for the fa3 backend).
rm -rf "$WORK/site"/sgl_kernel/flash_ops.abi3.so "$WORK/site"/sgl_kernel/sm100 "$WORK/site"/sgl_kernel/*cpython-310*
# zero the cubins of other architectures in every compiled library of sglang-kernel (sgl_kernel/*.so)
for so in $(find "$WORK/site" -path '*sgl_kernel*' -name '*.so'); do
  python3 /work/shared/vllm-on-gpu/trim_fatbin.py "$so" "$so.trim" --arch 90 && mv "$so.trim" "$so"
done
du -sh "$WORK/site"

# 4. compress and split into parts that fit one transfer each
rm -f "$OUTDIR"/part* "$OUTDIR"/SHA256
tar -C "$WORK/site" -cf - . | xz -9 -T2 -c > "$WORK/core.txz"
split -b ${PART_MIB:-50}M -d "$WORK/core.txz" "$OUTDIR/part"
(cd "$OUTDIR" && sha256sum part* > SHA256)
cp "$HERE"/run_sglang.sh "$HERE"/measure_sglang.py /work/shared/vllm-on-gpu/synth_tokenizer.py "$OUTDIR"/
ls -la "$OUTDIR"
echo OK
