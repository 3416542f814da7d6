"""Attention, wrong (chapters 2, 4 and 5): scores ``q k^T / sqrt(d_head)`` with ``-inf`` above the
(offset) diagonal, their softmax over the keys, the weighted sum of the values; heads as consecutive
slices of the features; GPT-2's projections; RoPE on the two halves; attention over a KV cache."""

import math

import numpy as np

import lib

from .activations import softmax


def scores(q, k, *, scale="sqrt", diagonal=0, offset=True, fill="-inf", upper=False, inverted=False):
    """Scaled scores with the causal mask. ``scale``: ``"sqrt"`` (right, sqrt(d_head)), ``"none"``,
    ``"d"`` (d_head), ``"d_model"`` (sqrt(n_head * d_head)); ``diagonal`` shifts the mask's edge,
    ``offset=False`` forgets that the last query sits at the last key when there are more keys;
    ``upper`` keeps the upper triangle, ``inverted`` the masked part; ``fill``: ``"-inf"``,
    ``"+inf"``, ``"big"`` (-1e9) or ``"zero"``."""
    raw = q @ k.swapaxes(-1, -2)  # [..., T, S]
    d_head = q.shape[-1]
    n_head = q.shape[-3] if q.ndim >= 3 else 1
    divisor = {"sqrt": math.sqrt(d_head), "none": 1.0, "d": d_head, "d_model": math.sqrt(d_head * n_head)}[
        scale
    ]
    scaled = raw / divisor
    T, S = q.shape[-2], k.shape[-2]
    allowed = np.tri(T, S, k=diagonal + (S - T if offset else 0), dtype=bool)
    if upper:
        allowed = allowed.T if T == S else ~np.tri(T, S, k=S - T - 1, dtype=bool)
    if inverted:
        allowed = ~allowed
    if fill == "zero":
        return (scaled * allowed).astype(q.dtype)
    value = {"-inf": -np.inf, "+inf": np.inf, "big": -1e9}[fill]
    return np.where(allowed, scaled, value).astype(q.dtype)


def probs(q, k, *, mask="before", axis=-1, shift=True, **score_knobs):
    """Attention weights: softmax of the scores. ``mask``: ``"before"`` the softmax (right),
    ``"after"`` it (weights of the future zeroed, rows no longer sum to 1) or ``"none"``;
    ``axis=-2`` normalises over the queries; ``shift=False`` exponentiates the scores as they are."""
    if mask != "before":
        score_knobs = {**score_knobs, "diagonal": q.shape[-2] + k.shape[-2]}  # a mask that hides nothing
    p = softmax(scores(q, k, **score_knobs), axis=axis, shift=shift)
    if mask == "after":
        T, S = q.shape[-2], k.shape[-2]
        p = p * np.tri(T, S, k=S - T, dtype=bool)
    return p.astype(q.dtype)


def attention(q, k, v, *, weights_transposed=False, **knobs):
    """Causal attention, ``probs(q, k) @ v``, with any knob of ``probs`` and ``scores``;
    ``weights_transposed`` multiplies the values by the weights' transpose."""
    p = probs(q, k, **knobs)
    return ((p.swapaxes(-1, -2) if weights_transposed else p) @ v).astype(q.dtype)


def attend_with_cache(q_new, k_new, v_new, cache_k, cache_v, *, keys="all", place="after", **knobs):
    """``(out, k, v)``: the new keys and values go ``place="after"`` the cached ones (right) or
    ``"before"``; the new queries attend to ``keys="all"`` (right) or to the ``"cached"`` ones only
    (unmasked), with any knob of ``attention``."""

    def grown(old, new):
        return np.concatenate([old, new] if place == "after" else [new, old], axis=-2)

    k, v = grown(cache_k, k_new), grown(cache_v, v_new)
    if keys == "cached":
        return attention(q_new, cache_k, cache_v, mask="none", **knobs), k, v
    return attention(q_new, k, v, **knobs), k, v


# ---- heads and projections ----------------------------------------------------------------------


def split(x, n_head, *, split_mode="ok"):
    """(..., T, d) -> (..., n_head, T, d_head). ``split_mode``: ``"ok"``, ``"reshape"`` (straight
    to (n_head, T, d_head)), ``"interleaved"`` (features dealt out in turn), ``"no-transpose"``
    (head axis after T)."""
    *lead, T, d = x.shape
    d_head = d // n_head
    return {
        "ok": lambda: x.reshape(*lead, T, n_head, d_head).swapaxes(-2, -3),
        "reshape": lambda: x.reshape(*lead, n_head, T, d_head),
        "interleaved": lambda: np.moveaxis(x.reshape(*lead, T, d_head, n_head), -1, -3),
        "no-transpose": lambda: x.reshape(*lead, T, n_head, d_head),
    }[split_mode]()


def merge(x, *, merge_mode="ok"):
    """(..., n_head, T, d_head) -> (..., T, d). ``merge_mode``: ``"ok"``, ``"reshape"`` (no swap
    first), ``"interleaved"`` (the heads' features interleaved)."""
    *lead, H, T, d_head = x.shape
    return {
        "ok": lambda: x.swapaxes(-2, -3).reshape(*lead, T, H * d_head),
        "reshape": lambda: x.reshape(*lead, T, H * d_head),
        "interleaved": lambda: np.moveaxis(x, -3, -1).reshape(*lead, T, d_head * H),
    }[merge_mode]()


def qkv(x, w, b, n_head, *, split_mode="ok", bias=True, order=(0, 1, 2)):
    """q, k and v split into heads and stacked: (3, ..., n_head, T, d_head); ``order`` picks
    which column block is taken for q, k, v."""
    parts = np.split(x @ w + (b if bias else 0), 3, axis=-1)
    return np.stack([split(parts[i], n_head, split_mode=split_mode) for i in order]).astype(x.dtype)


def attention_output(probs, v, w, b, *, transpose=False, **knobs):
    """From attention weights and values to the sublayer's output: each head's ``probs @ v``
    (``transpose`` uses the weights' transpose), then ``project``-ed with any of its knobs."""
    return project((probs.swapaxes(-1, -2) if transpose else probs) @ v, w, b, **knobs)


def project(heads, w, b, *, merge_mode="ok", bias=True, proj=True, w_transposed=False):
    """The heads merged, then ``merged @ w + b``; ``proj=False`` leaves out the projection,
    ``w_transposed`` multiplies by ``w.T`` (a square w)."""
    merged = merge(heads, merge_mode=merge_mode)
    w = w.T if w_transposed else w
    return (merged @ w + (b if bias else 0) if proj else merged).astype(heads.dtype)


def multi_head_attention(
    x, params, n_head, *, split_mode="ok", merge_mode="ok", proj=True, bias=True, order=(0, 1, 2), **knobs
):
    """GPT-2's causal self-attention, with any knob of ``qkv``, ``project`` and ``attention``."""
    c_attn, c_proj = params["c_attn"], params["c_proj"]
    q, k, v = qkv(x, c_attn["w"], c_attn["b"], n_head, split_mode=split_mode, bias=bias, order=order)
    return project(
        attention(q, k, v, **knobs), c_proj["w"], c_proj["b"], merge_mode=merge_mode, bias=bias, proj=proj
    )


# ---- RoPE ---------------------------------------------------------------------------------------


def apply_rope(
    x,
    positions,
    theta=10000.0,
    *,
    pairs="halves",
    angles="concatenated",
    sign=1.0,
    trig="ok",
    exponent="2j/d",
    given=True,
    shift=0,
):
    """RoPE; ``pairs="neighbours"`` rotates (2j, 2j+1), ``angles="repeated"`` lays the angles out
    [a0, a0, a1, a1, ...], ``sign=-1`` turns the other way, ``exponent="j/d"`` halves the
    frequencies' exponent, ``given=False`` uses positions 0..T-1, ``shift`` is added to every
    position (1: off by one), ``trig="swapped"`` puts the sine where the cosine goes."""
    d = x.shape[-1]
    j = np.arange(d // 2)
    power = -j / d if exponent == "j/d" else -2 * j / d
    positions = np.asarray(positions if given else np.arange(x.shape[-2]), dtype=np.float64) + shift
    a = positions[:, None] * theta**power  # [T, d/2]
    if pairs == "neighbours":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        cos, sin = np.cos(a), sign * np.sin(a)
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x1 * sin + x2 * cos
        return out
    full = np.repeat(a, 2, axis=-1) if angles == "repeated" else np.concatenate([a, a], axis=-1)
    cos, sin = np.cos(full), sign * np.sin(full)
    if trig == "swapped":
        cos, sin = sin, cos
    return (x * cos + lib.rotate_half(x) * sin).astype(x.dtype)


# ---- the hint tables the chapters share ---------------------------------------------------------

# The mask's shape: knobs of ``scores``, hence of ``probs`` and ``attention`` too.
# The scores' product with its inner sizes unequal: k not transposed, or k.T on a batched k.
SCORES_PRODUCT_HINTS = {
    fragment: "the inner sizes of q @ k^T differ: transpose only the last two axes of k, "
    "k.swapaxes(-1, -2) (k.T reverses EVERY axis of a batched k, and k itself is (..., T, d_head))"
    for fragment in ("mismatch in its core dimension", "not aligned")
}

MASK_SHAPE = {
    "no-self": (
        {"diagonal": -1},
        "the mask's diagonal is off by one: a token must see itself (key j = query i is allowed); only "
        "keys j > i are masked",
    ),
    "one-future": (
        {"diagonal": 1},
        "the mask's diagonal is off by one: each query also sees the next token; mask every key j > i "
        "(np.triu(..., k=1) marks exactly those)",
    ),
    "transposed-mask": (
        {"upper": True},
        "the mask is transposed: query i (a row) may see keys j <= i (the lower triangle); you kept the "
        "upper triangle",
    ),
    "inverted-mask": (
        {"inverted": True},
        "the mask is inverted: you kept the future keys (j > i) and hid the allowed ones; keep the scores "
        "where j <= i and put -inf where j > i",
    ),
}
SCALE = {
    "no-scale": (
        {"scale": "none"},
        "the scores are not scaled: divide q @ k^T by sqrt(d_head) (q.shape[-1]) before the softmax",
    ),
    "scale-d": (
        {"scale": "d"},
        "you divided by d_head: the scale is 1 / sqrt(d_head) (math.sqrt(q.shape[-1]))",
    ),
}
SCALE_D_MODEL = {
    "scale-d_model": (
        {"scale": "d_model"},
        "the scores are divided by sqrt(d_model): each head's scores are dot products of length d_head, "
        "so divide by sqrt(d_head) = sqrt(d_model / n_head)",
    ),
}
FILL = {
    "plus-inf": (
        {"fill": "+inf"},
        "the masked entries are +inf: softmax would give them ALL the weight; use -np.inf",
    ),
    "zero-fill": (
        {"fill": "zero"},
        "masked scores are 0: a score of 0 is an ordinary score that softmax still gives weight to; set "
        "the masked entries to -inf (e.g. np.where(mask, scores, -np.inf))",
    ),
}
# Where the mask and the softmax go: knobs of ``probs``, hence of ``attention`` too.
WEIGHTS = {
    "mask-after-softmax": (
        {"mask": "after"},
        "the mask is applied after the softmax: the future keys keep their share of the softmax's "
        "denominator and each row of weights sums to less than 1; mask the scores (-inf), then take the "
        "softmax",
    ),
    "no-mask": (
        {"mask": "none"},
        "there is no causal mask: every query attends to future keys too; set the scores of keys j > i "
        "to -inf before the softmax",
    ),
    "softmax-queries": (
        {"axis": -2},
        "the softmax runs over queries (axis=-2): each query's weights over the keys must sum to 1, so "
        "take it over the last axis (keys), axis=-1",
    ),
}
# Where the heads are the first axis (chapter 5's toy): a softmax taken over them.
SOFTMAX_OVER_HEADS = {
    "softmax-heads": (
        {"axis": 0},
        "the softmax runs over the heads (axis 0): each query's weights are a softmax over the KEYS, the "
        "last axis (axis=-1); across the heads a masked key is -inf in every head, and -inf - (-inf) is NaN",
    ),
}
# How the weights meet the values: a knob of ``attention``.
WEIGHTS_TRANSPOSED = {
    "weights-transposed": (
        {"weights_transposed": True},
        "you multiplied the values by the transposed weights: row i of the weights (query i) mixes the "
        "value rows, so the output is weights @ v",
    ),
}
# Heads: knobs of ``split`` and ``merge``, through ``qkv``, ``multi_head_attention`` and
# ``attention_output``.
SPLIT = {
    "split-reshape": (
        {"split_mode": "reshape"},
        "the heads are split with a plain reshape to (n_head, T, d_head), which hands each head whole "
        "tokens: reshape to (T, n_head, d_head), then swap the T and head axes",
    ),
    "interleaved": (
        {"split_mode": "interleaved"},
        "the features are dealt out to the heads in turn (a reshape to (T, d_head, n_head)): head h owns "
        "the consecutive features h*d_head .. (h+1)*d_head - 1",
    ),
}
MERGE = {
    "merge-reshape": (
        {"merge_mode": "reshape"},
        "the heads are merged with a plain reshape of (n_head, T, d_head): swap the head and T axes "
        "first, so each token's row holds head 0's features, then head 1's",
    ),
    "merge-interleaved": (
        {"merge_mode": "interleaved"},
        "the heads' features are interleaved: the merged vector holds all of head 0's d_head features "
        "first, then head 1's; put the axes in the order (T, n_head, d_head) before reshaping",
    ),
}
# What the projections add: knobs of ``qkv``, ``attention_output`` and ``multi_head_attention``.
Q_K_SWAPPED = {
    "q-k-swapped": (
        {"order": (1, 0, 2)},
        "q and k are swapped: the first d columns of x @ w + b are the queries, the next d the keys, "
        "the last d the values",
    ),
}
