#!/bin/bash
# Build a trimmed SGLang bundle for the lent Hopper GPU image (Python 3.12, torch 2.11.0+cu130, transformers,
# triton, numpy, ... already there; no network), the way ../shared/vllm-on-gpu/prepare.sh carries vLLM.
# NOT YET RUN ON THE GPU (issue 14): the dependency closure below was checked on CPU only (step 2 says how); the
# GPU-side check is gpu_setup.sh's unpack, then sglang_command.sh's first line (`import sglang, sgl_kernel`).
# usage, from the project root:  bash bench/truth/sglang/prepare.sh [OUT_DIR]   (default ./.sglang-bundle)
# Output: core.txz split into part00, part01, ... of <= 50 MiB (one part per transfer call), SHA256, and the
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
# deps/ is emptied: step 3 unpacks every wheel in it, and an older run's other versions would overwrite these
rm -rf "$WORK/deps" && mkdir -p "$WORK/whl" "$WORK/deps"

# 1. SGLang and its compiled kernels. sglang-kernel carries cubins for every architecture: trimmed to sm_90 below.
#    flashinfer-python is JIT (python + sources); its prebuilt-kernel wheel (flashinfer-cubin) is not carried:
#    the runs use --attention-backend fa3 and --sampling-backend pytorch, which do not need it.
$PIP download -q --no-deps $PLAT -d "$WORK/whl" "sglang==$SGLANG_VERSION" "sglang-kernel==0.4.5" \
  "flashinfer_python==0.6.15.post1" "torch_memory_saver>=0.0.9.post1"

# 2. pure-Python (or small) dependencies the image lacks, or has in a version SGLang 0.5.17 cannot use: sglang 0.5.17's
#    Requires-Dist and what their imports need, less what only other features import (modelscope, py-spy, outlines,
#    ray, polars, cutlass-dsl, deep-gemm, tilelang, helion, torchcodec, audio/video). Every version is pinned: the ones
#    sglang pins as it pins them, the others as PyPI served them before sglang 0.5.17's wheel was built (2026-08-08;
#    pip 26's --uploaded-prior-to 2026-08-09T00:00:00Z), so that a later upload cannot break the bundle.
#    Checked on CPU (Python 3.12, torch 2.11.0, the image's other packages; torch.cuda faked as an H100 and sgl_kernel
#    stubbed): every module of sglang.srt our runs reach imports, `python -m sglang.launch_server --help` runs, and
#    ServerArgs + ModelConfig + the model class resolve for all 17 plan lines. What that check added, and why:
#    - transformers==5.12.1 (sglang's pin) + tokenizers==0.22.2 (transformers 5.12.1 asks <=0.23.0): the image's
#      transformers 5.17 breaks sglang 0.5.17 at import ("'qwen3_asr' is already used by a Transformers config";
#      Qwen2_5_VisionRotaryEmbedding is gone); on PYTHONPATH these shadow the image's copies
#    - IPython and its closure (ipython-pygments-lexers jedi parso matplotlib-inline pexpect ptyprocess prompt_toolkit
#      wcwidth stack_data executing asttokens pure_eval traitlets decorator): sglang/utils.py imports IPython.display
#      at `import sglang`
#    - dill (sglang/srt/sampling/custom_logit_processor.py, reached from server_args; comes with `datasets` upstream)
#    - jsonschema jsonschema-specifications referencing rpds-py (entrypoints/openai/serving_chat.py, from http_server)
#    - soundfile==0.13.1 (sglang's pin) cffi pycparser (entrypoints/openai/realtime/session.py, from http_server)
#    - opentelemetry-api importlib-metadata (fastapi >= 0.142 imports opentelemetry in fastapi/telemetry)
#    - pydantic-core==2.46.5 (the one pydantic 2.13.5 pins), blobfile==3.0.0 (sglang's pin, was unpinned)
DEPS="orjson==3.11.9 uvloop==0.22.1 uvicorn==0.54.0 fastapi==0.142.2 starlette==1.7.0 python-multipart==0.0.32
pyzmq==27.1.0 msgspec==0.21.1 pybase64==1.5.0 partial-json-parser==0.2.1.1.post7 setproctitle==1.3.7 interegular==0.3.3
prometheus-client==0.26.0 xxhash==3.8.1 zstandard==0.25.0 easydict==1.13 einops==0.8.2 gguf==0.19.0 blobfile==3.0.0
tiktoken==0.13.0 sentencepiece==0.2.2 pydantic==2.13.5 pydantic-core==2.46.5 typing-inspection==0.4.4
annotated-types==0.8.0 compressed-tensors==0.17.0 loguru==0.7.3 openai==2.6.1 openai-harmony==0.0.4 jiter==0.16.0
distro==1.9.0 sniffio==1.3.1 httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.15.1 llguidance==1.7.6 xgrammar==0.2.1
apache-tvm-ffi==0.1.11 timm==1.0.16 watchfiles==1.2.0 cuda-python==13.3.1 nvidia-ml-py==13.610.43 psutil==7.2.2
transformers==5.12.1 tokenizers==0.22.2
ipython==9.17.1 ipython-pygments-lexers==1.1.1 jedi==0.20.0 parso==0.8.7 matplotlib-inline==0.2.2 pexpect==4.9.0
ptyprocess==0.7.0 prompt-toolkit==3.0.53 wcwidth==0.9.1 stack-data==0.6.3 executing==2.2.1 asttokens==3.0.2
pure-eval==0.2.4 traitlets==5.16.1 decorator==5.3.1
dill==0.4.1 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.6.3
soundfile==0.13.1 cffi==2.1.1 pycparser==3.0 opentelemetry-api==1.45.0 importlib-metadata==9.0.1"
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
