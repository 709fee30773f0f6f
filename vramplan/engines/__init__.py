"""Engines other than vLLM, one package each (``engines/sglang/``): flag defaults, rule sets per release,
the sizing strategy, the log reader and the error texts of that engine."""
