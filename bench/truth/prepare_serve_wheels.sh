#!/bin/bash
# The OpenAI-server packages that `vllm serve` (0.34) imports and that neither the GPU image ('cuda', Python 3.12)
# nor prepare_vllm_bundle.sh's DEPS hold, unpacked into one site folder and packed as one transfer part:
# .xfer/srv.part00 (xz tar), which gpu_setup.sh unpacks into /tmp/srvsite and watch_v034.sh puts on PYTHONPATH.
#
# usage, from the project root:  bash bench/truth/prepare_serve_wheels.sh      (then add the part to .xfer/SHA256S:
#   (cd .xfer && sed -i '/ srv\.part/d' SHA256S && sha256sum srv.part00 >> SHA256S)   -- the other lines stay as they are)
#
# Found by running the real `vllm serve` front end (argument parsing, FastAPI app with every router, middleware and
# SageMaker bootstrap, uvicorn, then GET /health /v1/models /metrics /version /ping and a SIGTERM) on CPU with a
# stand-in engine client, in a Python 3.12 venv holding the image's packages, torch 2.14 and the 0.34 bundle:
#   uvicorn                        the HTTP server; launchers/launcher.py imports it at module level
#   watchfiles                     launchers/utils/ssl.py (SSL certificate refresher), imported by launcher.py
#   prometheus-fastapi-instrumentator  serve/instrumentator/metrics.py, the /metrics route, always registered
#   model-hosting-container-standards  serve/sagemaker/api_router.py: build_app always calls sagemaker_standards_bootstrap
#   jmespath                       imported by model-hosting-container-standards (its request transforms)
#   python-multipart               FastAPI Form routes (speech_to_text routers: only for transcription models; tiny)
# Not carried, not imported on this path: mcp (only with --tool-server), anthropic (not imported by 0.34),
# supervisor (a model-hosting-container-standards requirement that no Python code imports), httptools/websockets
# (uvicorn's "auto" falls back to the image's h11 and needs websockets only for WebSocket routes), fastapi-cli.
set -euo pipefail
REPO=$PWD
WORK=${WORK:-/tmp/serve-wheels-prep}
PIP=${PIP:-python3 -m pip}
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any"
WHEELS="uvicorn==0.55.0 watchfiles==1.3.0 prometheus-fastapi-instrumentator==8.1.0
model-hosting-container-standards==0.1.16 jmespath==1.1.0 python-multipart==0.0.34"

rm -rf "$WORK" && mkdir -p "$WORK/whl" "$WORK/site" "$REPO/.xfer"
$PIP download -q --no-deps $PLAT -d "$WORK/whl" $WHEELS
for w in "$WORK"/whl/*.whl; do unzip -q -o "$w" -d "$WORK/site"; done
find "$WORK/site" -name '__pycache__' -prune -exec rm -rf {} +
ls "$WORK/whl"
du -sh "$WORK/site"
tar -C "$WORK/site" -cf - . | xz -9 -T2 -c > "$REPO/.xfer/srv.part00"
ls -la "$REPO/.xfer/srv.part00"
