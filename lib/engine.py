"""The engine: ``Model.forward``'s numbers, computed faster.

``lib``'s stage functions are written to be read: each does one step of the lesson, on whole
arrays, exactly as the chapters teach it. Generation asks for less than that, the next token's
logits, again and again, and here the lesson's way is slow. The engine is a second
implementation of the same forward pass that changes how things are computed, never what: its
logits equal ``Model.forward``'s up to float rounding. ``make bench`` times both, beside PyTorch,
and undoes the changes one at a time to show what each buys.

What it changes, and why:

1. **Only what the last position needs** (``prefill``, ``decode``). Generation wants the logits
   of the last position alone. Every block but the last still runs on every position (later
   tokens attend to their keys and values), but the last block needs keys and values everywhere
   and its query, attention output and MLP at the last position only; so do the final norm and
   the LM head (for GPT-2 small the head alone is 2 d V = 77 MFLOP per position).
2. **Causal attention in chunks.** The textbook computes the whole (T, S) score matrix and then
   masks the upper half away. The engine takes ``CHUNK`` queries at a time and multiplies them
   only with the keys they can see; the mask is needed only where a chunk meets its own keys.
   That halves the score work at long T and keeps each score matrix small.
3. **Grouped heads without copies.** The textbook copies each key/value head for the query
   heads it serves (``repeat_kv``). The engine reshapes those query heads into one matrix that
   meets their shared keys in a single matmul.
4. **One new token** (decoding) sees every cached key: no mask, no chunks.
5. **A shorter softmax.** ``1 / sqrt(d_head)`` multiplies the T x d_head queries instead of the
   T x S scores, and the division by each row's sum waits until after the weighted sum of the
   values, where a row has d_head numbers instead of S.
6. **Weights laid out for decoding.** Decoding multiplies one vector by every weight matrix, so
   each token reads all the weights from memory once and runs at the speed of memory. OpenBLAS's
   matrix-vector kernels read a matrix fastest along a long contiguous axis (GPT-2's (3072, 768)
   MLP down-projection, and ``wte`` used as the LM head). The engine keeps a copy of every
   matrix in that order (``streaming_order``); where a matrix is laid out so already, the copy is
   the same array. (The embedding still looks up rows of the model's own ``wte``, where each
   token's row is contiguous.)
7. **Element-wise work in place, on all cores.** The norms, GELU, SiLU and the softmax's
   exponentials write into one buffer instead of a new array for every operation. And while
   BLAS runs the matrix products on every core, NumPy's element-wise loops run on one; they
   release the GIL, though, so the engine splits large ones into one block of rows per core and
   runs the blocks on helper threads (``_on_all_cores``).

The engine records the same trace stations as the stage functions wherever it computes them
(all but the attention scores and weights, which it never holds whole), so
``tests/test_engine.py`` checks it station by station against ``Model.forward``, and its logits and
KV-cache decoding, for both families.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from ._validate import as_model_input
from .activations import gelu_exact, softmax
from .attention import merge_heads, split_heads
from .embedding import embed
from .head import lm_head
from .linear import linear
from .mlp import mlp, swiglu
from .rope import apply_rope
from .trace import scope, traced

CHUNK = 128  # queries per step of the chunked attention (fastest in make bench)


class Engine:
    """Fast inference for a ``Model``, with the model's ``KVCache``.

    ``forward(ids, cache)`` gives every position's logits, like ``Model.forward``;
    ``prefill(ids, cache)`` the last position's; ``decode(token, cache)`` the logits after one more
    token. A cache can be filled by either the model or the engine and continued by the other.
    """

    def __init__(self, model):
        self.config = model.config
        self.new_cache = model.new_cache
        self.params = _streaming_layout(model.params)  # the embedding keeps wte's rows contiguous
        self.w_unembed = streaming_order(model.w_unembed)  # (d, V)

    def forward(self, ids, cache=None) -> np.ndarray:
        """Logits of every position of ``ids`` (T,) or (B, T): (T, V) or (B, T, V)."""
        return self._logits(ids, cache, last_only=False)

    def prefill(self, ids, cache=None) -> np.ndarray:
        """Logits of the last position of ``ids`` (T,) or (B, T): (V,) or (B, V).

        With a cache, the keys and values of every position go into it.
        """
        return self._logits(ids, cache, last_only=True)[..., -1, :]

    def decode(self, token, cache) -> np.ndarray:
        """Logits after one more token per sequence: ``token`` an int (or (B,) ints) -> (V,) (or (B, V))."""
        return self.prefill(np.asarray(token)[..., None], cache)

    def _logits(self, ids, cache, last_only: bool) -> np.ndarray:
        c, p = self.config, self.params
        ids, start = as_model_input(ids, c, cache)  # [..., T]
        positions = np.arange(start, start + ids.shape[-1])  # [T]
        with scope("embed"):
            x = embed(ids, p["wte"], p.get("wpe"), start)  # [..., T, d]
        for i, layer in enumerate(p["h"]):
            n_out = 1 if last_only and i == c.n_layer - 1 else x.shape[-2]  # positions leaving the block
            with scope(f"h.{i}"):
                kv_cache = None if cache is None else cache.layers[i]
                x = _block(x, layer, c, positions, kv_cache, n_out)  # [..., n_out, d]
        x = traced("ln_f", _norm(x, p["ln_f"], c))
        return traced("logits", lm_head(x, self.w_unembed))  # [..., n_out, V]


def _block(x, params: dict, config, positions, kv_cache, n_out: int) -> np.ndarray:
    """``lib.block`` for the last ``n_out`` positions (keys and values still come from all of them).

    ``[..., T, d] -> [..., n_out, d]``
    """
    h = traced("ln_1", _norm(x, params["ln_1"], config))
    with scope("attn"):
        attn = _attention(h, params["attn"], config, positions, kv_cache, n_out)
    x = traced("resid_mid", x[..., -n_out:, :] + attn)  # everything from here on works per position
    h = traced("ln_2", _norm(x, params["ln_2"], config))
    with scope("mlp"):
        if config.mlp == "swiglu":
            out = swiglu(h, params["mlp"], ACTIVATIONS["silu"])
        else:
            out = mlp(h, params["mlp"], ACTIVATIONS[config.gelu])
    return traced("resid_post", x + out)


def _attention(x, params: dict, config, positions, kv_cache, n_out: int) -> np.ndarray:
    """``lib.multi_head_attention`` with ``causal_attention`` and the queries of the last ``n_out``
    positions only. ``[..., T, d] -> [..., n_out, d]``"""
    H, KV, d_head = config.n_head, config.n_kv_head, config.d_head
    qkv = linear(x, params["c_attn"]["w"], params["c_attn"].get("b"))  # [..., T, (H + 2 KV) d_head]
    q = traced("q", split_heads(qkv[..., : H * d_head], H))  # [..., H, T, d_head]
    k = traced("k", split_heads(qkv[..., H * d_head : (H + KV) * d_head], KV))  # [..., KV, T, d_head]
    v = traced("v", split_heads(qkv[..., (H + KV) * d_head :], KV))
    if config.positions == "rope":
        q = traced("q_rot", apply_rope(q, positions, config.rope_theta, config.rope_pairing))
        k = traced("k_rot", apply_rope(k, positions, config.rope_theta, config.rope_pairing))
    if kv_cache is not None:
        k, v = kv_cache.extend(k, v)  # [..., KV, S, d_head]
    heads = traced("heads", causal_attention(q[..., -n_out:, :], k, v))  # [..., H, n_out, d_head]
    merged = traced("merged", merge_heads(heads))  # [..., n_out, H * d_head]
    return traced("out", linear(merged, params["c_proj"]["w"], params["c_proj"].get("b")))  # [..., n_out, d]


def causal_attention(q, k, v) -> np.ndarray:
    """Causal attention of queries that are the last T of S positions, computing only what is seen.

    The same result as ``scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep),
    causal_mask(T, S))`` up to float rounding, with changes 2 to 5 and 7 of the module docstring.

    ``q: [..., H, T, d_head]; k, v: [..., KV, S, d_head] -> [..., H, T, d_head]``
    """
    *lead, H, T, d_head = q.shape
    KV, S = k.shape[-3], k.shape[-2]
    rep = H // KV  # query heads per key/value head
    q = q * (1.0 / math.sqrt(d_head))  # scale the queries, not the scores
    if T == 1:  # one new token sees every key: no mask, no chunks
        q = q.reshape(*lead, KV, rep, d_head)  # a group's query heads: the rows of one matrix
        probs = softmax(q @ k.swapaxes(-1, -2), axis=-1)  # [..., KV, rep, S]
        return (probs @ v).reshape(*lead, H, 1, d_head)
    q = q.reshape(*lead, KV, rep, T, d_head)
    future = np.triu(np.full((CHUNK, CHUNK), -np.inf, q.dtype), k=1)  # -inf above the diagonal
    out = np.empty_like(q)
    for start in range(0, T, CHUNK):
        stop = min(start + CHUNK, T)
        t = stop - start
        visible = S - T + stop  # keys the chunk's last query can see; earlier queries see fewer
        qc = q[..., start:stop, :].reshape(*lead, KV, rep * t, d_head)
        scores = qc @ k[..., :visible, :].swapaxes(-1, -2)  # [..., KV, rep * t, visible]
        scores.reshape(*lead, KV, rep, t, visible)[..., visible - t :] += future[:t, :t]  # own keys
        totals = np.empty(scores.shape[:-1] + (1,), scores.dtype)  # [..., KV, rep * t, 1]
        _on_all_cores(_exp_shifted, scores, totals)  # scores -> exp(scores - row max), and row sums
        heads = scores @ v[..., :visible, :]  # [..., KV, rep * t, d_head], not yet normalised
        heads /= totals  # the softmax's division, on d_head columns instead of `visible`
        out[..., start:stop, :] = heads.reshape(*lead, KV, rep, t, d_head)
    return out.reshape(*lead, H, T, d_head)


def _exp_shifted(scores: np.ndarray, totals: np.ndarray) -> None:
    """The softmax's numerator in place, ``exp(s - max s)`` per row, and its row sums into ``totals``."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    np.sum(scores, axis=-1, keepdims=True, out=totals)


# ---- element-wise work: in place, on all cores (change 7) ----------------------------------------


def _norm(x: np.ndarray, params: dict, config) -> np.ndarray:
    """``lib.norm`` into one new buffer, rows split over the cores."""
    rms = config.norm == "rmsnorm"
    out = np.empty_like(x)
    _on_all_cores(partial(_norm_rows, g=params["g"], b=params.get("b"), eps=config.norm_eps, rms=rms), x, out)
    return out


def _norm_rows(x: np.ndarray, out: np.ndarray, g, b, eps: float, rms: bool) -> None:
    """LayerNorm (or RMSNorm) of the rows of ``x``, written into ``out`` in place."""
    d = x.shape[-1]
    if rms:  # no centring
        np.multiply(x, 1.0 / np.sqrt(_sum_squares(x) / d + eps), out=out)
    else:
        np.subtract(x, np.add.reduce(x, axis=-1, keepdims=True) / d, out=out)  # centred
        out *= 1.0 / np.sqrt(_sum_squares(out) / d + eps)  # / sqrt(variance + eps)
    out *= g
    if b is not None:
        out += b


def _gelu_into(x: np.ndarray, out: np.ndarray) -> None:
    """``lib.gelu`` (the tanh approximation) of ``x`` in nine passes over ``out``."""
    np.multiply(x, x, out=out)  # x^2
    out *= 0.044715
    out += 1.0
    out *= x  # x + 0.044715 x^3
    out *= math.sqrt(2.0 / math.pi)
    np.tanh(out, out=out)
    out += 1.0
    out *= x
    out *= 0.5


def _silu_into(x: np.ndarray, out: np.ndarray) -> None:
    """``lib.silu`` of ``x`` in four passes over ``out``."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(x, out, out=out)  # x / (1 + exp(-x))


def _activation(fill):
    """The activation ``x -> fill(x, out)`` into one new buffer, its rows split over the cores."""

    def activation(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        _on_all_cores(fill, x, out)
        return out

    return activation


ACTIVATIONS = {"tanh": _activation(_gelu_into), "exact": gelu_exact, "silu": _activation(_silu_into)}


def _sum_squares(x: np.ndarray) -> np.ndarray:
    """Row sums of ``x * x`` without a temporary, and without BLAS: helper threads must never call
    BLAS, whose own threads serialise (or worse) concurrent callers."""
    return np.einsum("ij,ij->i", x, x)[:, None]  # [rows, 1]


# ---- the cores ------------------------------------------------------------------------------

_CORES = os.cpu_count() or 1
_WORTH_THREADS = 1 << 16  # elements: below this (decoding), threads cost more than they save


def _new_helpers():
    global _helpers
    _helpers = ThreadPoolExecutor(_CORES - 1, "lib-engine") if _CORES > 1 else None


_new_helpers()
os.register_at_fork(after_in_child=_new_helpers)  # a forked child has none of its parent's threads


def _on_all_cores(fn, *arrays: np.ndarray) -> None:
    """``fn(*arrays)`` for arrays that ``fn`` fills row by row, split into one block of rows per core.

    NumPy's element-wise loops run on one core, but they release the GIL: ``fn`` on blocks of rows
    in threads runs on all cores at once. Small arrays (decoding) are not worth the threads. The
    arrays must be C-contiguous (so that their rows are views), and ``fn`` must not call BLAS.
    """
    rows = [a.reshape(-1, a.shape[-1]) for a in arrays]  # views: fn writes into the arrays
    if _helpers is None or arrays[0].size < _WORTH_THREADS:
        fn(*rows)
        return
    blocks = [np.array_split(r, _CORES) for r in rows]
    pending = [_helpers.submit(fn, *parts) for parts in list(zip(*blocks, strict=True))[1:]]
    fn(*(b[0] for b in blocks))
    for job in pending:
        job.result()


# ---- weights laid out for decoding (change 6) ------------------------------------------------


def streaming_order(w: np.ndarray) -> np.ndarray:
    """``w`` with the same shape and values, laid out in memory so its longer axis is contiguous.

    ``x @ w`` is the same product either way (equal up to float rounding); change 6 of the module
    docstring. Returns ``w`` itself when it is already laid out so, a copy otherwise.
    """
    rows, cols = w.shape
    return np.ascontiguousarray(w) if cols >= rows else np.asfortranarray(w)


def _streaming_layout(tree, key=None):
    """The weight tree with the matrix ``w`` of every linear layer in ``streaming_order``."""
    if isinstance(tree, dict):
        return {k: _streaming_layout(v, k) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_streaming_layout(v) for v in tree]
    return streaming_order(tree) if key == "w" else tree
