"""Causal self-attention: scores, mask, softmax over keys, weighted sum of values; many heads.

Shapes use ``T`` for queries (new tokens) and ``S`` for keys (every token so far: ``S = T``
without a cache, ``S = past + T`` with one).
"""

import math

import numpy as np

from ._validate import as_float_array
from .activations import softmax
from .linear import linear
from .rope import apply_rope

CHUNK = 128  # queries per step in the fast path: bounds the (T, S) score matrix (fastest in make bench)


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


def scaled_dot_product_attention(q, k, v, mask: np.ndarray | None = None) -> np.ndarray:
    """``softmax(q k^T / sqrt(d_head), over keys) @ v``, with masked scores set to -inf first.

    Parameters
    ----------
    q : array, shape (..., T, d_head)
    k, v : arrays, shape (..., S, d_head)
    mask : bool array broadcastable to (..., T, S), optional
        True where attention is allowed (the convention of ``causal_mask``).

    Returns
    -------
    array, shape (..., T, d_head)
    """
    return _attend(q, k, v, mask)[-1]


def _attend(q, k, v, mask):
    """Every station of one attention, in order: raw, scaled, masked, probs, output."""
    q = as_float_array(q, "q", min_ndim=2)
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit: q and k need the same "
            "d_head, k and v the same number of keys S"
        )
    raw = attention_scores(q, k)  # [..., T, S]
    scaled = raw / math.sqrt(q.shape[-1])
    if mask is None:
        masked = scaled
    else:
        if mask.shape[-2:] != raw.shape[-2:]:
            raise ValueError(f"mask has shape {mask.shape}, scores have shape {raw.shape}")
        masked = np.where(mask, scaled, q.dtype.type(-np.inf))  # before the softmax
    probs = softmax(masked, axis=-1)  # over keys
    return raw, scaled, masked, probs, probs @ v  # [..., T, d_head]


def _causal_attention_fast(q, k, v, n_rep: int):
    """The same result as ``_attend`` with a causal mask, computing only what is needed.

    Query heads sharing a key/value head are stacked so one matmul serves the group, queries go
    in chunks of ``CHUNK``, and each chunk only looks at the keys it can see. Only the chunk's
    last ``t`` keys (its own tokens) can be in some query's future: the mask is added there alone.

    q: [B, H, T, d_head]; k, v: [B, KV, S, d_head] -> [B, H, T, d_head]
    """
    B, H, T, d_head = q.shape
    S = k.shape[-2]
    KV = H // n_rep
    if T == 1:  # one new token (decoding) sees every key: no mask, no chunks
        q = (q * (1.0 / math.sqrt(d_head))).reshape(B, KV, n_rep, d_head)
        probs = softmax(q @ k.swapaxes(-1, -2), axis=-1)  # [B, KV, rep, S]
        return (probs @ v).reshape(B, H, 1, d_head)
    q = (q * (1.0 / math.sqrt(d_head))).reshape(B, KV, n_rep, T, d_head)
    future = np.triu(np.full((CHUNK, CHUNK), -np.inf, q.dtype), k=1)  # -inf above the diagonal
    out = np.empty_like(q)
    for start in range(0, T, CHUNK):
        stop = min(start + CHUNK, T)
        t = stop - start
        visible = S - T + stop  # keys the last query of this chunk can see
        qc = q[:, :, :, start:stop].reshape(B, KV, n_rep * t, d_head)
        scores = qc @ k[:, :, :visible].swapaxes(-1, -2)  # [B, KV, rep*t, visible]
        scores = scores.reshape(B, KV, n_rep, t, visible)
        scores[..., visible - t :] += future[:t, :t]  # the chunk's own keys: causal triangle
        probs = softmax(scores, axis=-1).reshape(B, KV, n_rep * t, visible)
        out[:, :, :, start:stop] = (probs @ v[:, :, :visible]).reshape(B, KV, n_rep, t, d_head)
    return out.reshape(B, H, T, d_head)


def multi_head_attention(
    x,
    params: dict,
    n_head: int,
    n_kv_head: int | None = None,
    *,
    positions: np.ndarray | None = None,
    rope_theta: float | None = None,
    kv_cache=None,
    last_n: int | None = None,
    trace: dict | None = None,
    prefix: str = "attn",
) -> np.ndarray:
    """Causal multi-head self-attention: project, split heads, attend, merge, project.

    ``q, k, v = x @ W_qkv`` (fused, as GPT-2's ``c_attn``); ``heads = softmax(q k^T / sqrt(d_head)
    + mask) v`` per head; ``out = merge(heads) @ W_o`` (``c_proj``).

    Parameters
    ----------
    x : array, shape (T, d) or (B, T, d)
    params : dict
        ``{"c_attn": {"w": (d, (n_head + 2 n_kv_head) d_head), "b"?}, "c_proj": {"w": (d, d), "b"?}}``
    n_head, n_kv_head : int
        Query heads and key/value heads (equal for plain multi-head attention).
    positions : int array, shape (T,), optional
        Absolute positions of the T tokens (needed with RoPE or a cache; default ``0..T-1``).
    rope_theta : float, optional
        If given, rotate queries and keys with RoPE.
    kv_cache : ``LayerCache``, optional
        Keys and values of earlier tokens; this call appends its own.
    last_n : int, optional
        Output only the last ``last_n`` positions. Their queries still attend to the keys and
        values of every position (and all of them go into the cache).
    trace : dict, optional
        If given, every intermediate is stored under ``f"{prefix}.<name>"``.

    Returns
    -------
    array, shape (T, d) or (B, T, d), as ``x`` (``last_n`` rows instead of T if given)
    """
    x = as_float_array(x, "x", min_ndim=2)
    if x.ndim == 2:  # one sequence: run it as a batch of one
        out = multi_head_attention(
            x[None],
            params,
            n_head,
            n_kv_head,
            positions=positions,
            rope_theta=rope_theta,
            kv_cache=kv_cache,
            last_n=last_n,
            trace=trace,
            prefix=prefix,
        )
        return out[0]
    n_kv_head = n_head if n_kv_head is None else n_kv_head
    B, T, d = x.shape
    qkv = linear(x, params["c_attn"]["w"], params["c_attn"].get("b"))  # [B, T, (H + 2KV) d_head]
    d_head = qkv.shape[-1] // (n_head + 2 * n_kv_head)
    q, k, v = np.split(qkv, [n_head * d_head, (n_head + n_kv_head) * d_head], axis=-1)
    q = split_heads(q, n_head)  # [B, H, T, d_head]
    k = split_heads(k, n_kv_head)  # [B, KV, T, d_head]
    v = split_heads(v, n_kv_head)
    if positions is None:
        start = 0 if kv_cache is None else kv_cache.length
        positions = np.arange(start, start + T)
    if trace is not None:
        trace[f"{prefix}.q"], trace[f"{prefix}.k"], trace[f"{prefix}.v"] = q, k, v
    if rope_theta is not None:
        q = apply_rope(q, positions, rope_theta)
        k = apply_rope(k, positions, rope_theta)
        if trace is not None:
            trace[f"{prefix}.q_rot"], trace[f"{prefix}.k_rot"] = q, k
    if kv_cache is not None:
        k, v = kv_cache.extend(k, v)  # [B, KV, S, d_head] with S = past + T
    if last_n is not None:
        if not 1 <= last_n <= T:
            raise ValueError(f"last_n must be between 1 and the {T} new positions, got {last_n}")
        q = q[:, :, -last_n:]  # [B, H, last_n, d_head]: the queries whose outputs are wanted
    n_rep = n_head // n_kv_head
    if trace is None:
        heads = _causal_attention_fast(q, k, v, n_rep)
    else:
        mask = causal_mask(q.shape[-2], k.shape[-2])
        stations = _attend(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)
        for name, value in zip(
            ("scores_raw", "scores_scaled", "scores_masked", "probs", "heads"), stations, strict=True
        ):
            trace[f"{prefix}.{name}"] = value
        heads = stations[-1]
    merged = merge_heads(heads)  # [B, T, H * d_head]
    out = linear(merged, params["c_proj"]["w"], params["c_proj"].get("b"))  # [B, T, d]
    if trace is not None:
        trace[f"{prefix}.merged"], trace[f"{prefix}.out"] = merged, out
    return out
