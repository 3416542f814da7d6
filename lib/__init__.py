"""``lib``: the course's reference transformer in NumPy.

Each module is one stage of the forward pass, and each stage is a small pure function of arrays
and explicit weights, so a notebook can call any of them alone::

    ids -> embedding -> [block: norm, attention, residual, norm, MLP, residual] x L
        -> final norm -> LM head -> logits -> sampling

``Model.forward`` runs exactly these stages, and ``model.forward(ids, trace=True)`` returns every
intermediate by name (``lib.trace``). ``Engine(model)`` computes the same logits faster, for
generation (``lib.engine`` says how). ``load_pretrained`` reads Hugging Face GPT-2 and Llama
checkpoints, or a model shipped with the course by name (``"shakespeare"``, ``"toy"``).
"""

from .activations import gelu, gelu_exact, log_softmax, silu, softmax
from .attention import (
    attention_scores,
    causal_mask,
    merge_heads,
    multi_head_attention,
    repeat_kv,
    scaled_dot_product_attention,
    split_heads,
)
from .block import block
from .cache import KVCache
from .checkpoint import load_pretrained, save_pretrained
from .config import Config
from .embedding import embed, position_embedding, sinusoidal_positions, token_embedding
from .engine import Engine
from .head import cross_entropy, lm_head, perplexity
from .linear import linear
from .mlp import feed_forward, mlp, swiglu
from .model import Model, init_params, param_shapes
from .norms import layer_norm, norm, rms_norm
from .rope import apply_rope, rope_angles, rotate_half, rotate_interleaved
from .sampling import (
    apply_temperature,
    filtered_probs,
    generate,
    sample_next,
    top_k_filter,
    top_p_filter,
)
from .tokenizer import Tokenizer
from .trace import scope, tracing

__all__ = [
    "Config",
    "Model",
    "Engine",
    "KVCache",
    "Tokenizer",
    "init_params",
    "param_shapes",
    "load_pretrained",
    "save_pretrained",
    "token_embedding",
    "position_embedding",
    "embed",
    "sinusoidal_positions",
    "layer_norm",
    "rms_norm",
    "norm",
    "linear",
    "gelu",
    "gelu_exact",
    "silu",
    "softmax",
    "log_softmax",
    "causal_mask",
    "attention_scores",
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "repeat_kv",
    "multi_head_attention",
    "rope_angles",
    "rotate_half",
    "rotate_interleaved",
    "apply_rope",
    "mlp",
    "swiglu",
    "feed_forward",
    "block",
    "lm_head",
    "cross_entropy",
    "perplexity",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "filtered_probs",
    "sample_next",
    "generate",
    "tracing",
    "scope",
]
