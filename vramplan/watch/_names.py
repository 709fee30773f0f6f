"""The backend names, apart from ``watch.backends`` so that the CLI's parser (built on every ``vramplan`` start)
does not import subprocess and threading."""

BACKEND_NAMES = ("auto", "nvml", "npu-smi", "nvidia-smi")
