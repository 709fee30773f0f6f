"""Model-shape rules both engines use: weights per rank (``weights.py``) and KV-cache specs, groups and blocks
(``kv.py``), as vLLM allocates them (SGLang shards the same way where it says so)."""
