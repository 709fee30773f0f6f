"""Llama and the decoders vLLM builds as Llama: Mistral, Granite, Phi-3, InternLM2 (as a wrapped language model).

vLLM v0.26.0 vllm/model_executor/models/llama.py:LlamaDecoderLayer (QKV + o_proj, bias on both when the config's
``attention_bias``), gated MLP (``mlp_bias``), two RMSNorms. A Mistral config's ``sliding_window`` applies to every
layer. Also the language model of the LLaVA / LLaVA-NeXT / Mistral3 wrappers when their text config names none.
"""

from __future__ import annotations

from functools import partial

from . import Family, register
from ._common import dense_layers

register(Family(
    name="llama",
    builder=partial(dense_layers, o_bias_from_config=True, mistral_sliding=True),
    architectures={"LlamaForCausalLM": False, "MistralForCausalLM": False, "Phi3ForCausalLM": False,
                   "GraniteForCausalLM": False},
    text_model_types=("llama", "mistral", "granite", "internlm2", "phi3"),
    wrappers=("LlavaForConditionalGeneration", "LlavaNextForConditionalGeneration",
              "Mistral3ForConditionalGeneration"),
))
