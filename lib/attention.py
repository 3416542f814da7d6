"""Causal self-attention: scores, mask, softmax over keys, weighted sum of values; many heads.

Shapes use ``T`` for queries (new tokens) and ``S`` for keys (every token so far: ``S = T``
without a cache, ``S = past + T`` with one). ``...`` is any number of leading axes: none for one
sequence, (B,) for a batch.
"""

import math

import numpy as np

from ._validate import as_float_array, check_broadcasts_to
from .activations import softmax
from .linear import linear
from .rope import apply_rope
from .trace import traced


def causal_mask(n_queries: int, n_keys: int | None = None) -> np.ndarray:
    """Boolean mask, True where query ``i`` may attend to key ``j``.

    The queries are the *last* ``n_queries`` of ``n_keys`` positions, so query ``i`` sits at
    position ``i + n_keys - n_queries`` and sees keys ``0 .. i + n_keys - n_queries``.

    Returns
    -------
    bool array, shape (T, S)
    """
    n_keys = n_queries if n_keys is None else n_keys
    if n_keys < n_queries:
        raise ValueError(f"causal_mask: {n_queries} queries cannot have only {n_keys} keys")
    offset = n_keys - n_queries
    return np.tri(n_queries, n_keys, k=offset, dtype=bool)  # [T, S]


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """``[..., T, n_head * d_head] -> [..., n_head, T, d_head]``."""
    *lead, T, width = x.shape
    if width % n_head:
        raise ValueError(f"split_heads: width {width} (x shape {x.shape}) is not divisible by {n_head} heads")
    return x.reshape(*lead, T, n_head, width // n_head).swapaxes(-2, -3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``[..., n_head, T, d_head] -> [..., T, n_head * d_head]`` (head 0's features first)."""
    *lead, H, T, d_head = x.shape
    return x.swapaxes(-2, -3).reshape(*lead, T, H * d_head)


def repeat_kv(x: np.ndarray, n_rep: int) -> np.ndarray:
    """Grouped-query attention: key/value head ``g`` serves query heads ``g*n_rep .. g*n_rep+n_rep-1``.

    ``[..., n_kv_head, S, d_head] -> [..., n_kv_head * n_rep, S, d_head]``
    """
    return x if n_rep == 1 else np.repeat(x, n_rep, axis=-3)


def attention_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Raw scores ``q @ k^T``: ``[..., T, d_head], [..., S, d_head] -> [..., T, S]``."""
    return q @ k.swapaxes(-1, -2)


def scaled_dot_product_attention(q, k, v, mask=None) -> np.ndarray:
    """``softmax(q k^T / sqrt(d_head), over keys) @ v``, with masked scores set to -inf first.

    Parameters
    ----------
    q : array, shape (..., T, d_head)
    k, v : arrays, shape (..., S, d_head)
        The leading axes of q, k and v broadcast together.
    mask : bool array, optional
        True where attention is allowed (the convention of ``causal_mask``). Any shape that
        broadcasts to the scores' (..., T, S) without changing it: (T, S), (B, 1, T, S),
        (B, H, T, S), ...

    Returns
    -------
    array, shape (..., T, d_head)
    """
    q, k, v = (as_float_array(a, name, min_ndim=2) for a, name in ((q, "q"), (k, "k"), (v, "v")))
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit: q and k need the same "
            "d_head, k and v the same number of keys S"
        )
    raw = traced("scores_raw", attention_scores(q, k))  # [..., T, S]
    scaled = traced("scores_scaled", raw / math.sqrt(q.shape[-1]))
    allowed = True if mask is None else _as_mask(mask, scaled.shape)
    masked = traced("scores_masked", np.where(allowed, scaled, q.dtype.type(-np.inf)))  # before the softmax
    probs = traced("probs", softmax(masked, axis=-1))  # over keys: each row sums to 1
    return traced("heads", probs @ v)  # [..., T, S] @ [..., S, d_head] -> [..., T, d_head]


def _as_mask(mask, scores_shape: tuple) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"mask must be boolean, True where attention is allowed; got dtype {mask.dtype}")
    check_broadcasts_to(mask.shape, scores_shape, "mask", "the scores")
    return mask


def multi_head_attention(
    x,
    params: dict,
    n_head: int,
    n_kv_head: int | None = None,
    *,
    positions=None,
    rope_theta: float | None = None,
    rope_pairing: str = "halves",
    kv_cache=None,
) -> np.ndarray:
    """Causal multi-head self-attention: project, split, RoPE, cache, attend, merge, project.

    ``q, k, v = x @ W_qkv`` (fused, as GPT-2's ``c_attn``); each head attends,
    ``softmax(q k^T / sqrt(d_head) + mask) v``; ``out = merge(heads) @ W_o`` (``c_proj``).

    Parameters
    ----------
    x : array, shape (..., T, d)
        One sequence (T, d), a batch (B, T, d), or more leading axes.
    params : dict
        ``{"c_attn": {"w": (d, (n_head + 2 n_kv_head) d_head), "b"?}, "c_proj": {"w": (d, d), "b"?}}``
    n_head, n_kv_head : int
        Query heads and key/value heads (equal for plain multi-head attention; fewer key/value
        heads for grouped-query attention, each serving ``n_head // n_kv_head`` query heads).
    positions : int array, shape (T,) or (..., T), optional
        Absolute positions of the T tokens, for RoPE (default ``past .. past + T - 1``, with
        ``past`` the tokens already in ``kv_cache``). Leading axes give each sequence its own.
    rope_theta : float, optional
        If given, rotate queries and keys with RoPE (``apply_rope``) with this base.
    rope_pairing : {"halves", "interleaved"}
        RoPE's pairing of features (see ``lib.rope``).
    kv_cache : ``LayerCache``, optional
        Keys and values of earlier tokens, with the same leading axes as ``x``; this call appends
        its own, and its queries attend to all of them.

    Returns
    -------
    array, shape (..., T, d), as ``x``
    """
    x = as_float_array(x, "x", min_ndim=2)
    n_kv_head = n_head if n_kv_head is None else n_kv_head
    T = x.shape[-2]
    qkv = linear(x, params["c_attn"]["w"], params["c_attn"].get("b"))  # [..., T, (H + 2 KV) d_head]
    d_head = qkv.shape[-1] // (n_head + 2 * n_kv_head)
    q, k, v = np.split(qkv, [n_head * d_head, (n_head + n_kv_head) * d_head], axis=-1)
    q = traced("q", split_heads(q, n_head))  # [..., H, T, d_head]
    k = traced("k", split_heads(k, n_kv_head))  # [..., KV, T, d_head]
    v = traced("v", split_heads(v, n_kv_head))  # [..., KV, T, d_head]
    if rope_theta is not None:
        if positions is None:
            past = 0 if kv_cache is None else kv_cache.length
            positions = np.arange(past, past + T)
        positions = np.asarray(positions)[..., None, :]  # [..., 1, T]: the same for every head
        q = traced("q_rot", apply_rope(q, positions, rope_theta, rope_pairing))
        k = traced("k_rot", apply_rope(k, positions, rope_theta, rope_pairing))
    if kv_cache is not None:
        k, v = kv_cache.extend(k, v)  # [..., KV, S, d_head]: every token so far, S = past + T
    n_rep = n_head // n_kv_head
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # [..., H, S, d_head]
    heads = scaled_dot_product_attention(q, k, v, causal_mask(T, k.shape[-2]))  # [..., H, T, d_head]
    merged = traced("merged", merge_heads(heads))  # [..., T, H * d_head]
    return traced("out", linear(merged, params["c_proj"]["w"], params["c_proj"].get("b")))  # [..., T, d]
