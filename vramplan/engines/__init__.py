"""The engines, one package each, with the same shape: flag names and defaults per release, rule sets per release
as data, the sizing strategy, the log reader and the engine's own error texts.

- ``engines/vllm/``: vLLM (0.6 to 0.34) and vllm-ascend.
- ``engines/sglang/``: SGLang (0.5.17, 0.5.23).

Both read the same :class:`~vramplan.model.description.ModelDescription` and share the model-shape rules in
``vramplan/rules/`` (weights per rank, KV-cache specs); the composer (``vramplan/api.py``) picks the engine.
"""
