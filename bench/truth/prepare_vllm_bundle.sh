#!/bin/bash
# Build a trimmed vLLM 0.33/0.34 bundle for a Hopper GPU machine (H100/H200) whose image has torch 2.11
# and no network; the torch 2.14 those releases pin travels separately (../shared/vllm-on-gpu/torch214).
# Like ../shared/vllm-on-gpu/prepare.sh (0.26), but for a newer release and split into transfer parts.
#
# usage, from the project root:  bash bench/truth/prepare_vllm_bundle.sh 0.34.0 [OUTDIR] [PART_MIB]
# Output OUTDIR (default ./.vllm034-bundle, git-ignored through .git/info/exclude): partNN (PART_MIB each,
# default 50, so one part plus the repository fits one 64 MiB transfer) and SHA256.
# On the GPU, after the parts arrived in /tmp/vb (one per call, calls back to back):
#   cd /tmp/vb && sha256sum -c SHA256 && cat part* | xz -d | (mkdir -p /tmp/site034 && tar -C /tmp/site034 -x)
#   touch /tmp/site034/.done        # run_truth.sh then skips its own unpacking
# and run with SITE=/tmp/site034 EXTRA_PYTHONPATH=/tmp/t214.
#
# Dependencies: the 0.26 bundle's set (checked there against the GPU image with imports), with the versions
# 0.34 asks for, plus what 0.34 imports that 0.26 did not (orjson) and compressed-tensors 0.17.0 + loguru
# (vLLM imports them for every quantized model). Kept from the image on purpose: transformers 5.17,
# huggingface_hub 1.33 and tokenizers 0.23.2 (inside 0.34's transformers range; 0.34's hub >= 2.0 and
# tokenizers >= 0.23.3 pins are not needed to build a model from a local config with dummy weights).
# Not carried: FlashAttention-2 (Ampere/Ada), DeepGEMM's extension, the Rust front end, FlashInfer,
# CuTe-DSL, tilelang, quack kernels (optional paths on Hopper with bf16 weights).
set -euo pipefail
VER=${1:?vLLM version, e.g. 0.34.0}
REPO=$PWD
SHARED=$( { cd "$REPO/../shared/vllm-on-gpu" 2>/dev/null || cd /work/shared/vllm-on-gpu; } && pwd)
TAG=$(echo "$VER" | awk -F. '{printf "%d%02d", $1, $2}' | sed 's/^0//')
OUTDIR=$(mkdir -p "${2:-$REPO/.vllm0${TAG}-bundle}" && cd "${2:-$REPO/.vllm0${TAG}-bundle}" && pwd)
PART=${3:-50}
WORK=${WORK:-/tmp/vllm-prep-$VER}
PIP=${PIP:-python3 -m pip}
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any"
case "$OUTDIR" in "$REPO"/.*) rel=/${OUTDIR#$REPO/}/
  grep -qx "$rel" "$REPO/.git/info/exclude" 2>/dev/null || echo "$rel" >> "$REPO/.git/info/exclude";; esac

mkdir -p "$WORK/whl" "$WORK/deps"
W=$(ls "$WORK"/whl/vllm-$VER-*.whl 2>/dev/null | head -1 || true)
if [ -z "$W" ]; then $PIP download -q --no-deps $PLAT -d "$WORK/whl" "vllm==$VER"; W=$(ls "$WORK"/whl/vllm-$VER-*.whl | head -1); fi

DEPS="pydantic==2.14.3 pydantic-core==2.50.4 typing-inspection==0.4.5 annotated-types==0.8.0
cbor2==6.3.0 pyzmq==27.3.0 openai-harmony==0.0.8 openai==2.54.0 jiter==0.19.0 distro==1.9.0
sniffio==1.3.1 msgspec==0.22.0 pybase64==1.5.1 cachetools==8.0.1 llguidance==1.7.6
xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2 fastapi==0.136.3 starlette==1.10.0
opentelemetry-api==1.45.2 partial-json-parser==0.2.1.1.post7 blake3==1.0.11 setproctitle==1.3.8
orjson compressed-tensors==0.17.0 loguru"
$PIP download -q --no-deps $PLAT -d "$WORK/deps" $DEPS

rm -rf "$WORK/site" && mkdir -p "$WORK/site"
for w in "$WORK"/deps/*.whl; do unzip -q -o "$w" -d "$WORK/site"; done
unzip -q -o "$W" -d "$WORK/site" -x \
  'vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so' 'vllm/vllm-rs' \
  'vllm/third_party/deep_gemm/include/*' 'vllm/third_party/deep_gemm/_C*' \
  'vllm/third_party/fmha_sm100/cutlass/*' 'vllm/third_party/fmha_sm100/csrc/*' \
  'vllm/entrypoints/serve/instrumentator/static/*' '*.jpg' "vllm-$VER.dist-info/RECORD"
# cubins of other architectures zeroed in every compiled library (sm_90 kept)
for so in "$WORK"/site/vllm/*.so "$WORK"/site/vllm/vllm_flash_attn/*.so; do
  [ -f "$so" ] || continue
  python3 "$SHARED/trim_fatbin.py" "$so" "$so.t" --arch 90 && mv "$so.t" "$so" || rm -f "$so.t"
done
find "$WORK/site" -name '__pycache__' -prune -exec rm -rf {} +
du -sh "$WORK/site"
rm -f "$OUTDIR"/part* "$OUTDIR"/SHA256
tar -C "$WORK/site" -cf - . | xz -9 -T2 -c > "$WORK/bundle.txz"
split -b ${PART}m -d "$WORK/bundle.txz" "$OUTDIR/part"
(cd "$OUTDIR" && sha256sum part* > SHA256)
ls -la "$OUTDIR"
