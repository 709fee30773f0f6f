"""vLLM rule sets per release (``versions.py``) and the flags resolved under them (``engine.py``)."""
