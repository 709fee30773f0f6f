"""vLLM v0.28.0: capacity and concurrency are logged on one line
(``GPU KV cache size: N tokens, Maximum concurrency for L tokens per request: X.XXx``);
hybrid models default to prefix caching (mamba ``align`` mode); a >= 160 GiB batch tier."""

from dataclasses import replace

from .v0_27 import RULES as _PREVIOUS

RULES = replace(_PREVIOUS, version=(0, 28, 0), kv_capacity_one_line=True)
