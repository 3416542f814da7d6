"""What a forward pass costs, wrong (chapter 6): the parameter count from a config's switches, the
forward FLOPs per token (Kaplan et al. 2020), the KV cache's bytes; counted by hand here, so that
``tests/test_cost.py`` can hold ``lib``'s checkpoint table against an independent count."""

import numpy as np


def count_params(
    config,
    *,
    biases=True,
    norms=True,
    final_norm=True,
    positions=True,
    kv_heads="n_kv_head",
    swiglu_matrices=3,
    swiglu_biases="2 d_ff + d",
    untied_head=True,
    tied_twice=False,
    d_ff=None,
) -> int:
    """Every weight of ``config``, with one thing optionally done wrong: ``kv_heads="n_head"`` gives
    keys and values as many heads as queries, ``d_ff="4d"`` takes the MLP's width to be 4 d,
    ``positions="always"`` counts a wpe table for RoPE too, ``swiglu_biases="3 d_ff"`` gives the down
    projection d_ff biases as if it were as wide as gate and up; the
    others leave out (or, ``tied_twice``, add) one group of weights."""
    c = config
    d, dh, L, V = c.d_model, c.d_head, c.n_layer, c.vocab_size
    kv = c.n_head if kv_heads == "n_head" else c.n_kv_head
    width = 4 * d if d_ff == "4d" else c.d_ff
    bias = c.bias and biases
    norm = (2 * d if c.norm == "layernorm" and c.bias else d) if norms else 0
    qkv = (c.n_head + 2 * kv) * dh
    per_layer = 2 * norm + d * qkv + bias * qkv + d * d + bias * d
    if c.mlp == "swiglu":
        mlp_biases = 3 * width if swiglu_biases == "3 d_ff" else 2 * width + d
        per_layer += swiglu_matrices * d * width + bias * mlp_biases
    else:
        per_layer += 2 * d * width + bias * (width + d)
    total = V * d + L * per_layer + (norm if final_norm else 0)
    if (c.positions == "learned" and positions) or positions == "always":
        total += c.n_ctx * d
    if (not c.tie_embeddings and untied_head) or (c.tie_embeddings and tied_twice):
        total += V * d
    return int(total)


def _embedding_weights(config) -> int:
    """The token table, a learned position table and an untied LM head: what N leaves out."""
    c = config
    return c.vocab_size * c.d_model * (1 if c.tie_embeddings else 2) + (
        c.n_ctx * c.d_model if c.positions == "learned" else 0
    )


def flops_per_token(config, T, *, n="non-embedding", factor=2, attention=2, layers=True, keys="T"):
    """``factor * N + attention * n_layer * T * d_model``; ``n="all"`` counts the embeddings in N,
    ``layers=False`` counts the attention term once, ``keys="T*T"`` counts the whole sequence's
    query-key pairs (T * T) for one token."""
    N = count_params(config) - (0 if n == "all" else _embedding_weights(config))
    pairs = T * T if keys == "T*T" else T
    return factor * N + attention * (config.n_layer if layers else 1) * pairs * config.d_model


def kv_cache_bytes(config, T, dtype, *, kv=True, heads="n_kv_head", layers=True, unit="bytes", tokens="T"):
    """Keys and values of T tokens; ``kv=False`` keys only, ``heads="n_head"``, ``layers=False`` one
    block, ``unit="bits"``, ``tokens="n_ctx"``."""
    itemsize = np.dtype(dtype).itemsize * (8 if unit == "bits" else 1)
    n_heads = config.n_head if heads == "n_head" else config.n_kv_head
    n_tokens = config.n_ctx if tokens == "n_ctx" else T
    return (
        (2 if kv else 1) * (config.n_layer if layers else 1) * n_heads * config.d_head * n_tokens * itemsize
    )
