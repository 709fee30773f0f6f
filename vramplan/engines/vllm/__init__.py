"""vLLM as an engine package.

- ``flags.py``: vLLM's flag names, spellings and defaults, and the environment variables that change memory.
- ``rules/``: ``versions.py`` (``RuleSet``, ``for_version``), one module per release that changed a rule
  (``v0_6`` ... ``v0_34``: every change point is a field set in the release that introduced it),
  ``engine.py``/``engine_defaults.py`` (the flags resolved under a rule set), ``comm.py`` (multi-GPU buffers),
  ``weights_note.py``.
- The sizing strategies, picked by the rule set: ``planner.py`` (profile-and-subtract, V1; vllm-ascend <= 0.13's
  absolute-peak budget is the rule-set switch ``non_kv_formula``), ``planner_v0.py`` (the V0 engine of 0.6),
  ``sizing/extensible.py`` (0.34's reserve / warm-up / commit).
- ``validate.py``, ``weights_oom.py``: the refusals and the out-of-memory at loading, in vLLM's and torch's words.
- ``fixes.py``: the smallest fix of a failing plan, each re-planned.
- ``log/``: the reader of vLLM logs of every era (and vllm-ascend's), with the error phases.
"""
