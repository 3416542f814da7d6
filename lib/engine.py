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
   each token reads all the weights from memory once and runs at the speed of memory. How fast
   OpenBLAS's matrix-vector product streams a matrix depends on its layout, and the engine keeps a
   copy of every matrix in the faster one (``streaming_order``): a block's matrices with each
   output's weights contiguous (column-major ``w_stream``: every output is then one dot product
   over a contiguous run, and BLAS's threads each stream their own outputs), the LM head the
   other way, ``wte.T`` copied row-major (its 50,257 outputs contiguous). On this course's
   machine (AMD EPYC, OpenBLAS 0.3.31), matrices timed one shape at a time, the block layout read
   GPT-2's (768, 768) and (3072, 768) matrices about 20-65% faster than row-major, and the head's
   layout read ``wte`` 10-30% faster than its own rows. The (768, 2304) and (768, 3072) ones,
   alone, went either way from one day to the next (up to 9% faster, up to 20% slower), and a
   whole decoding step with those two row-major took the same time (12 rounds in turn); ``make
   bench`` shows what the layout buys a step (row 6). A product of many rows (a prompt) is the other way round: BLAS's matrix product read
   the model's own row-major matrices 3-5% faster than column-major ones on one thread, and
   5-11% faster on two at 128 rows, so it keeps using them, and the copies serve one row only.
   (The embedding looks up rows of the model's own ``wte``, where each token's row is
   contiguous.) And one token's row goes to BLAS as a vector: its matrix-vector product streams
   the weights faster than a matrix product with one row.
7. **Element-wise work in place, in cache-sized pieces.** The norms, GELU, SiLU and the
   softmax's exponentials write into buffers instead of a new array for every operation, and go
   through a few rows at a time (``_in_cache_sized_pieces``), so that each of their passes reads
   what the last one left in the core's cache rather than the whole array from memory. GELU is
   computed as ``x / (1 + exp(-2 z))``, equal to ``0.5 x (1 + tanh z)``: NumPy's ``exp`` is
   faster than its ``tanh``, and the form takes two passes fewer.
8. **Every core on its own share of the work.** NumPy's element-wise loops run on one core, and
   BLAS's threads do not help them: worse, after a threaded matrix product OpenBLAS's worker
   threads spin for a while waiting for the next one, on the very core a second thread of
   element-wise work would use (attention right after a threaded product measured about 1.4x
   slower than after a pause). So for a long prompt the engine sets BLAS to one thread
   (``_cores_share``) and runs each round of a block on all cores itself, a block of rows
   (positions) per core: the norm and the q, k, v projection; then everything from the output
   projection to the second residual. The attention between them goes out to the cores by
   groups of heads; the final norm and the LM head follow (the head's one row by columns), so
   no BLAS thread is woken to spin beside the next prompt's work (about 0.1 s, measured; setting
   BLAS to one thread does not stop it). The loops and BLAS release the GIL, so Python threads
   run them in parallel. It pays only there, where the element-wise work and the attention
   (which grows with T^2) are a large part of the time: shorter inputs (a short prompt, decoding
   one token) stay on the calling thread with BLAS's own threads, which multiply a matrix of few
   rows faster than each core its half of the rows (``SHARED_FROM``).
9. **One token without the scaffolding** (``decode``). A decoding step of GPT-2 small spends
   about 18 ms streaming the weights through its 49 matrix-vector products; the general path
   took about 2 ms more, much of it in some 2,400 Python calls made for one row: scopes and
   stations, row blocks and cache-sized pieces, buffers per block, heads split and merged, RoPE
   for any positions. Outside ``tracing()``, ``decode`` takes its own path (``_step``, about 700
   calls and 1.2 ms besides the products, the attention over the cache included): each
   block's weights looked up once per engine, one set of buffers per step for all the blocks,
   the stream updated in place, RoPE as ``x cos + x[pairs] sin`` with the factors of the one
   position, the new key and value appended to the cache from the projection's output, and the
   attention of change 4. It does the general path's arithmetic in the same order, so its
   logits are the same; inside ``tracing()`` ``decode`` takes the general path, which records
   the stations.

The engine records the same trace stations as the stage functions wherever it computes them
(all but the attention scores and weights, which it never holds whole), so
``tests/test_engine.py`` checks it station by station against ``Model.forward``, and its logits and
KV-cache decoding, for both families.
"""

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import numpy as np

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # a sandbox that lends lib with NumPy alone: the engine's work stays on one thread
    ThreadpoolController = None

from ._validate import as_model_input
from .activations import gelu_exact
from .attention import merge_heads, split_heads
from .embedding import embed
from .rope import apply_rope, rope_angles
from .trace import recording, scope, traced

CHUNK = 128  # queries per step of the chunked attention (fastest in make bench)
_FUTURE = np.triu(np.full((CHUNK, CHUNK), -np.inf, np.float32), k=1)  # -inf above the diagonal


class Engine:
    """Fast inference for a ``Model``, with the model's ``KVCache``.

    ``forward(ids, cache)`` gives every position's logits, like ``Model.forward``;
    ``prefill(ids, cache)`` the last position's; ``decode(token, cache)`` the logits after one more
    token. A cache can be filled by either the model or the engine and continued by the other.
    """

    def __init__(self, model):
        self.config = model.config
        self.new_cache = model.new_cache
        self.params = _with_streaming_copies(model.params)  # the model's arrays, and copies for one row
        self.w_unembed = streaming_order(model.w_unembed, head=True)  # (d, V)
        self._layers = [_step_weights(layer, self.config) for layer in self.params["h"]]  # change 9
        self._ln_f = _norm_weights(self.params["ln_f"], self.config)

    def forward(self, ids, cache=None) -> np.ndarray:
        """Logits of every position of ``ids`` (T,) or (B, T): (T, V) or (B, T, V)."""
        return self._logits(ids, cache, last_only=False)

    def prefill(self, ids, cache=None) -> np.ndarray:
        """Logits of the last position of ``ids`` (T,) or (B, T): (V,) or (B, V).

        With a cache, the keys and values of every position go into it.
        """
        return self._logits(ids, cache, last_only=True)[..., -1, :]

    def decode(self, token, cache) -> np.ndarray:
        """Logits after one more token per sequence: ``token`` an int (or (B,) ints) -> (V,) (or (B, V)).

        Its own path (change 9), but while tracing (the stations are wanted) or without a cache.
        """
        ids = np.asarray(token)[..., None]  # [..., 1]
        if recording() or cache is None:
            return self.prefill(ids, cache)
        return self._step(ids, cache)

    def _step(self, ids, cache) -> np.ndarray:
        """``prefill`` of one new token per sequence, without its stations (change 9)."""
        c, p = self.config, self.params
        ids, start = as_model_input(ids, c, cache)  # [..., 1]
        x = embed(ids, p["wte"], p.get("wpe"), start).reshape(-1, c.d_model)  # [rows, d]: a new array
        space = _StepSpace(len(x), c, x.dtype, start)
        for weights, kv_cache in zip(self._layers, cache.layers, strict=True):
            _step_block(x, weights, c, kv_cache, space)
        _norm_rows(x, space.h, *self._ln_f)
        logits = np.empty((len(x), self.w_unembed.shape[1]), x.dtype)  # [rows, V]: the caller keeps it
        _linear_into(space.h, {"w": self.w_unembed}, logits)
        return logits.reshape(*ids.shape[:-1], -1)

    def _logits(self, ids, cache, last_only: bool) -> np.ndarray:
        c, p = self.config, self.params
        ids, start = as_model_input(ids, c, cache)  # [..., T]
        positions = np.arange(start, start + ids.shape[-1])  # [T]
        with scope("embed"):
            x = embed(ids, p["wte"], p.get("wpe"), start)  # [..., T, d]
        with _cores_share(x.size // x.shape[-1]):  # positions of every sequence
            for i, layer in enumerate(p["h"]):
                n_out = 1 if last_only and i == c.n_layer - 1 else x.shape[-2]  # positions leaving the block
                with scope(f"h.{i}"):
                    kv_cache = None if cache is None else cache.layers[i]
                    x = _block(x, layer, c, positions, kv_cache, n_out)  # [..., n_out, d]
            x = traced("ln_f", _norm(x, p["ln_f"], c))
            logits = np.empty((*x.shape[:-1], self.w_unembed.shape[1]), x.dtype)  # [..., n_out, V]
            _head_into(x.reshape(-1, x.shape[-1]), self.w_unembed, logits.reshape(-1, logits.shape[-1]))
        return traced("logits", logits)


def _block(x, params: dict, config, positions, kv_cache, n_out: int) -> np.ndarray:
    """``lib.block`` for the last ``n_out`` positions (keys and values still come from all of them).

    Two rounds of work shared among the cores by rows (positions), with the attention between
    them shared by heads (change 8): norm and q, k, v projection; then the output projection,
    residual, norm, MLP and residual. ``[..., T, d] -> [..., n_out, d]``
    """
    lead, d = x.shape[:-2], x.shape[-1]
    stream = x.reshape(-1, d)  # [rows, d]: every position of every sequence
    h = np.empty_like(stream)
    qkv = np.empty((len(stream), params["attn"]["c_attn"]["w"].shape[1]), x.dtype)  # [rows, (H+2KV) d_head]

    def project(rows):
        _norm_into(stream[rows], h[rows], params["ln_1"], config)
        _linear_into(h[rows], params["attn"]["c_attn"], qkv[rows])

    _each_block(project, len(stream))
    traced("ln_1", h.reshape(x.shape))
    with scope("attn"):
        merged = _attention(qkv.reshape(*x.shape[:-1], -1), config, positions, kv_cache, n_out)
    merged = merged.reshape(-1, d)  # [rows out, d]: the last n_out positions of every sequence
    # everything from here on works per position
    resid = np.ascontiguousarray(x[..., -n_out:, :]).reshape(-1, d)  # [rows out, d]
    out, mid, h, post = (np.empty_like(merged) for _ in range(4))
    mlp = _mlp_buffers(len(merged), params["mlp"], config, x.dtype)

    def finish(rows):
        _linear_into(merged[rows], params["attn"]["c_proj"], out[rows])
        np.add(resid[rows], out[rows], out=mid[rows])
        _norm_into(mid[rows], h[rows], params["ln_2"], config)
        _mlp_into(h[rows], params["mlp"], config, {name: a[rows] for name, a in mlp.items()})
        np.add(mid[rows], mlp["out"][rows], out=post[rows])

    _each_block(finish, len(merged))
    shape = (*lead, n_out, -1)
    with scope("attn"):
        traced("out", out.reshape(shape))
    traced("resid_mid", mid.reshape(shape))
    traced("ln_2", h.reshape(shape))
    with scope("mlp"):
        for name, a in mlp.items():
            traced(name, a.reshape(shape))
    return traced("resid_post", post.reshape(shape))


def _attention(qkv, config, positions, kv_cache, n_out: int) -> np.ndarray:
    """``lib.multi_head_attention`` after its projection, for the queries of the last ``n_out``
    positions only: ``[..., T, (H + 2 KV) d_head] -> [..., n_out, d]``, before ``c_proj``."""
    H, KV, d_head = config.n_head, config.n_kv_head, config.d_head
    q = traced("q", split_heads(qkv[..., : H * d_head], H))  # [..., H, T, d_head]
    k = traced("k", split_heads(qkv[..., H * d_head : (H + KV) * d_head], KV))  # [..., KV, T, d_head]
    v = traced("v", split_heads(qkv[..., (H + KV) * d_head :], KV))
    if config.positions == "rope":
        q = traced("q_rot", apply_rope(q, positions, config.rope_theta, config.rope_pairing))
        k = traced("k_rot", apply_rope(k, positions, config.rope_theta, config.rope_pairing))
    if kv_cache is not None:
        k, v = kv_cache.extend(k, v)  # [..., KV, S, d_head]
    heads = traced("heads", causal_attention(q[..., -n_out:, :], k, v))  # [..., H, n_out, d_head]
    return traced("merged", merge_heads(heads))  # [..., n_out, H * d_head]


# ---- one token per sequence, on the calling thread (change 9) ----------------------------------


def _step_weights(layer: dict, config) -> tuple:
    """One block's weights as ``_step_block`` takes them, looked up once per engine."""
    mlp = layer["mlp"]
    names = ("gate_proj", "up_proj", "down_proj") if config.mlp == "swiglu" else ("c_fc", "c_proj")
    return (
        _norm_weights(layer["ln_1"], config),
        layer["attn"]["c_attn"],
        layer["attn"]["c_proj"],
        _norm_weights(layer["ln_2"], config),
        tuple(mlp[name] for name in names),
    )


def _norm_weights(params: dict, config) -> tuple:
    """``_norm_rows``'s arguments after ``x`` and ``out``: gain, bias, eps, RMSNorm or not."""
    return params["g"], params.get("b"), config.norm_eps, config.norm == "rmsnorm"


class _StepSpace:
    """The buffers of one decoding step, shared by its blocks, and its position's RoPE rows."""

    def __init__(self, rows: int, config, dtype, position: int):
        H, KV, d_head = config.n_head, config.n_kv_head, config.d_head
        self.h = np.empty((rows, config.d_model), dtype)  # a norm's output
        self.qkv = np.empty((rows, (H + 2 * KV) * d_head), dtype)
        self.out = np.empty_like(self.h)  # a sublayer's output, before its residual
        self.mlp = [np.empty((rows, config.d_ff), dtype) for _ in range(2)]
        if config.positions == "rope":
            self.turned = np.empty((rows, H + KV, d_head), dtype)  # rotate(q) and rotate(k)
            self.cos, self.sin, self.pairs = _rope_row(position, config, dtype)


def _rope_row(position: int, config, dtype) -> tuple:
    """``apply_rope``'s factors at one position: ``x * cos + x[pairs] * sin`` is its rotation.

    ``rotate(x)`` is ``x[pairs]`` with one feature of each pair negated; the sign goes into ``sin``.
    ``-> cos, sin: [d_head]; pairs: [d_head] indices``
    """
    d_head = config.d_head
    angles = rope_angles(position, d_head, config.rope_theta)  # [d_head/2], float64 as apply_rope's
    features = np.arange(d_head)
    if config.rope_pairing == "halves":  # j with j + d/2: rotate(x) = [-x2, x1]
        angles, pairs, negated = (
            np.concatenate([angles, angles]),
            (features + d_head // 2) % d_head,
            features < d_head // 2,
        )
    else:  # 2j with 2j + 1: rotate(x) = (-x_2j+1, x_2j)
        angles, pairs, negated = np.repeat(angles, 2), features ^ 1, features % 2 == 0
    sin = np.sin(angles).astype(dtype)
    sin[negated] *= -1
    return np.cos(angles).astype(dtype), sin, pairs


def _step_block(x: np.ndarray, weights: tuple, config, kv_cache, space: _StepSpace) -> None:
    """``_block`` for one new position per sequence: the stream ``x`` [rows, d] gains both sublayers
    in place (equal to ``x + attn`` and ``... + mlp``)."""
    ln_1, c_attn, c_proj, ln_2, mlp = weights
    _norm_rows(x, space.h, *ln_1)
    _linear_into(space.h, c_attn, space.qkv)
    _step_attention(space.qkv, config, kv_cache, space)  # [rows, d] into space.h
    _linear_into(space.h, c_proj, space.out)
    x += space.out
    _norm_rows(x, space.h, *ln_2)
    _step_mlp(space.h, mlp, config, space)
    x += space.out


def _step_attention(qkv: np.ndarray, config, kv_cache, space: _StepSpace) -> None:
    """``_attention`` of one new position per sequence, its merged heads into ``space.h``.

    ``qkv: [rows, (H + 2 KV) d_head]``, rotated in place; the new key and value go into the cache.
    """
    H, KV, d_head = config.n_head, config.n_kv_head, config.d_head
    rows = len(qkv)
    if config.positions == "rope":
        qk = qkv[:, : (H + KV) * d_head].reshape(rows, H + KV, d_head)  # queries and keys
        np.take(qk, space.pairs, axis=-1, out=space.turned)
        space.turned *= space.sin
        qk *= space.cos
        qk += space.turned  # apply_rope: x cos + rotate(x) sin
    lead = kv_cache.k.shape[:-3]  # () or (B,)
    new_k = qkv[:, H * d_head : (H + KV) * d_head].reshape(*lead, KV, 1, d_head)
    new_v = qkv[:, (H + KV) * d_head :].reshape(*lead, KV, 1, d_head)
    k, v = kv_cache.extend(new_k, new_v)  # [..., KV, S, d_head]
    S = k.shape[-2]
    q = qkv[:, : H * d_head].reshape(rows, KV, H // KV, d_head)  # groups of heads sharing keys
    q *= 1.0 / math.sqrt(d_head)  # the queries, not the scores (change 5)
    heads = _attend_one(q, k.reshape(rows, KV, S, d_head), v.reshape(rows, KV, S, d_head))
    space.h[...] = heads.reshape(rows, H * d_head)  # merge_heads


def _step_mlp(x: np.ndarray, weights: tuple, config, space: _StepSpace) -> None:
    """``_mlp_into`` of ``x`` [rows, d] into ``space.out``, without its stations."""
    pre, post = space.mlp
    if config.mlp == "swiglu":
        gate_proj, up_proj, down_proj = weights
        _linear_into(x, gate_proj, pre)
        ACTIVATIONS["silu"](pre, post)
        _linear_into(x, up_proj, pre)
        post *= pre  # silu(gate) * up
    else:
        c_fc, down_proj = weights
        _linear_into(x, c_fc, pre)
        ACTIVATIONS[config.gelu](pre, post)
    _linear_into(post, down_proj, space.out)


def _linear_into(x: np.ndarray, layer: dict, out: np.ndarray) -> None:
    """``lib.linear`` of the rows of ``x`` into ``out``: ``[rows, d_in] -> [rows, d_out]``.

    One row (decoding) goes in as a vector, on the copy laid out for streaming where the layer has
    one: BLAS's matrix-vector product streams the weights faster than its matrix product with one
    row (change 6).
    """
    if len(x) == 1:
        np.matmul(x[0], layer.get("w_stream", layer["w"]), out=out[0])
    else:
        np.matmul(x, layer["w"], out=out)
    if layer.get("b") is not None:
        out += layer["b"]


def _head_into(x: np.ndarray, w_unembed: np.ndarray, out: np.ndarray) -> None:
    """The LM head's product ``x @ w_unembed`` into ``out``: ``[rows, d] -> [rows, V]``.

    Inside ``_cores_share`` the cores share it too, so that no BLAS thread is woken (change 8):
    by positions, or for one position (prefill) by the vocabulary's columns, each core streaming
    its share of the head's weights.
    """
    if len(x) > 1:
        _each_block(lambda rows: np.matmul(x[rows], w_unembed, out=out[rows]), len(x))
    else:
        _each_block(lambda cols: np.matmul(x[0], w_unembed[:, cols], out=out[0, cols]), out.shape[1])


def _mlp_buffers(rows: int, params: dict, config, dtype) -> dict:
    """Empty arrays for the MLP's stations, in the order ``lib.mlp`` (or ``lib.swiglu``) records them."""
    d_ff, d = (params["down_proj"] if config.mlp == "swiglu" else params["c_proj"])["w"].shape
    names = ["pre_act", "post_act", "up", "gated"] if config.mlp == "swiglu" else ["pre_act", "post_act"]
    return {**{name: np.empty((rows, d_ff), dtype) for name in names}, "out": np.empty((rows, d), dtype)}


def _mlp_into(x: np.ndarray, params: dict, config, out: dict) -> None:
    """``lib.mlp`` or ``lib.swiglu`` of ``x`` [rows, d], each station into its array in ``out``."""
    if config.mlp == "swiglu":
        _linear_into(x, params["gate_proj"], out["pre_act"])
        _in_cache_sized_pieces(ACTIVATIONS["silu"], out["pre_act"], out["post_act"])
        _linear_into(x, params["up_proj"], out["up"])
        np.multiply(out["post_act"], out["up"], out=out["gated"])
        _linear_into(out["gated"], params["down_proj"], out["out"])
    else:
        _linear_into(x, params["c_fc"], out["pre_act"])
        _in_cache_sized_pieces(ACTIVATIONS[config.gelu], out["pre_act"], out["post_act"])
        _linear_into(out["post_act"], params["c_proj"], out["out"])


def causal_attention(q, k, v) -> np.ndarray:
    """Causal attention of queries that are the last T of S positions, computing only what is seen.

    The same result as ``scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep),
    causal_mask(T, S))`` up to float rounding, with changes 2 to 5 and 8 of the module docstring.
    The result is laid out as ``merge_heads`` wants it, so merging the heads copies nothing.

    ``q: [..., H, T, d_head]; k, v: [..., KV, S, d_head] -> [..., H, T, d_head]``
    """
    *lead, H, T, d_head = q.shape
    KV = k.shape[-3]
    rep = H // KV  # query heads per key/value head
    q = q.reshape(-1, KV, rep, T, d_head)  # [groups of heads sharing keys]: [n, KV, rep, T, d_head]
    k, v = k.reshape(-1, KV, *k.shape[-2:]), v.reshape(-1, KV, *v.shape[-2:])  # [n, KV, S, d_head]
    merged = np.empty((q.shape[0], T, H * d_head), q.dtype)  # [n, T, H d_head]
    out = merged.reshape(-1, T, KV, rep, d_head).transpose(0, 2, 3, 1, 4)  # [n, KV, rep, T, d_head]: views
    if T == 1:  # one new token (decoding)
        out[..., 0, :] = _attend_one(q[..., 0, :] * (1.0 / math.sqrt(d_head)), k, v)
    else:
        groups = [(q[i, g], k[i, g], v[i, g], out[i, g]) for i in range(q.shape[0]) for g in range(KV)]
        _share(lambda group: _attend_group(*group), groups)  # whole groups of heads per core (change 8)
    return merged.reshape(*lead, T, H, d_head).swapaxes(-2, -3)


def _attend_one(q, k, v) -> np.ndarray:
    """Attention of one scaled query per head: every group in one matmul, no mask, no chunks
    (change 4). ``q: [n, KV, rep, d_head]; k, v: [n, KV, S, d_head] -> [n, KV, rep, d_head]``"""
    return _weighted_values(q @ k.swapaxes(-1, -2), v)


def _attend_group(q, k, v, out) -> None:
    """The causal attention of the query heads that share one key/value head, into ``out``.

    ``q, out: [rep, T, d_head]; k, v: [S, d_head]``, the queries the last T of S positions.
    """
    rep, T, d_head = q.shape
    S = k.shape[-2]
    for start in range(0, T, CHUNK):
        stop = min(start + CHUNK, T)
        t = stop - start
        visible = S - T + stop  # keys the chunk's last query can see; earlier queries see fewer
        qc = q[:, start:stop, :] * (1.0 / math.sqrt(d_head))  # scale the queries, not the scores
        scores = qc.reshape(rep * t, d_head) @ k[:visible].T  # [rep * t, visible]: heads stacked
        scores.reshape(rep, t, visible)[..., visible - t :] += _FUTURE[:t, :t]  # the chunk's own keys
        out[:, start:stop, :] = _weighted_values(scores, v[:visible]).reshape(rep, t, d_head)


def _weighted_values(scores: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``softmax(scores) @ v``, the softmax in place and its division after the product.

    ``scores: [..., n, S]; v: [..., S, d_head] -> [..., n, d_head]``
    """
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)  # the softmax's numerator, exp(s - max s)
    totals = scores.sum(axis=-1, keepdims=True)  # [..., n, 1]
    heads = scores @ v  # not yet normalised
    heads /= totals  # the softmax's division, on d_head columns instead of S
    return heads


# ---- element-wise work: in place, in cache-sized pieces (change 7) -------------------------------


def _norm(x: np.ndarray, params: dict, config) -> np.ndarray:
    """``lib.norm`` into one new buffer."""
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    _each_block(lambda block: _norm_into(rows[block], out[block], params, config), len(rows))
    return out.reshape(x.shape)


def _norm_into(x: np.ndarray, out: np.ndarray, params: dict, config) -> None:
    """``lib.norm`` of the rows of ``x`` into ``out``."""
    rms = config.norm == "rmsnorm"
    _in_cache_sized_pieces(
        partial(_norm_rows, g=params["g"], b=params.get("b"), eps=config.norm_eps, rms=rms), x, out
    )


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
    """``lib.gelu`` (the tanh approximation) of ``x`` into ``out``, in seven passes.

    ``0.5 x (1 + tanh(z)) = x sigmoid(2 z) = x / (1 + exp(-2 z))`` with ``z = sqrt(2/pi) (x +
    0.044715 x^3)``: one ``exp`` instead of a ``tanh`` (NumPy's is slower) and two passes fewer.
    """
    np.multiply(x, x, out=out)  # x^2
    out *= _GELU_C3
    out += _GELU_C1
    out *= x  # -2 z
    np.exp(out, out=out)
    out += 1.0
    np.divide(x, out, out=out)  # x / (1 + exp(-2 z))


_GELU_C1 = -2 * math.sqrt(2 / math.pi)  # -2 z = C1 x + C3 x^3
_GELU_C3 = _GELU_C1 * 0.044715


def _silu_into(x: np.ndarray, out: np.ndarray) -> None:
    """``lib.silu`` of ``x`` into ``out``, in four passes."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(x, out, out=out)  # x / (1 + exp(-x))


def _gelu_exact_into(x: np.ndarray, out: np.ndarray) -> None:
    """``lib.gelu_exact`` of ``x`` into ``out`` (the textbook's own: ``math.erf`` has no faster form)."""
    out[...] = gelu_exact(x)


ACTIVATIONS = {"tanh": _gelu_into, "exact": _gelu_exact_into, "silu": _silu_into}  # (x, out) -> None


def _sum_squares(x: np.ndarray) -> np.ndarray:
    """Row sums of ``x * x`` without a temporary."""
    return np.vecdot(x, x)[:, None]  # [rows, 1]


# ---- the cores ------------------------------------------------------------------------------


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask (a container's or ``taskset``'s share of
    the machine), where the OS has one."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_CORES = usable_cores()
# Positions from which change 8 pays: 192 for each core, so that each core's block of rows makes
# a matrix product BLAS runs well. GPT-2 small on 2 cores, the same prompts timed both ways in
# turn, each from a machine at rest (no BLAS thread of the call before still spinning): the
# shared cores' time / BLAS's own threads' 1.06 at T = 128, 1.01 at 256, 0.98 at 384, 0.84 at
# 512, 0.85 at 768 (2026-12-04). (Timed back to back, the head's spinning BLAS thread of one
# call slowed the next shared one, and BLAS's threads looked faster up to T = 512.)
SHARED_FROM = 192 * _CORES
# Elements of one array a core works through at a time: 256 KiB of float32, so that a pass's input
# and output stay in a core's L2 (1 MiB here). Timed in turn against 128 and 512 KiB: 3% faster
# than 128 KiB at T = 512, 2% at 1024, the same at 128 (512 KiB: the same as 256).
_PIECE = 1 << 16


def _new_helpers():
    global _helpers
    _helpers = ThreadPoolExecutor(_CORES - 1, "lib-engine") if _CORES > 1 else None


_new_helpers()
os.register_at_fork(after_in_child=_new_helpers)  # a forked child has none of its parent's threads


_blocks: ContextVar[int] = ContextVar("lib_engine_blocks", default=1)  # slices (rows or columns) per round


@contextmanager
def _cores_share(rows: int):
    """Inside the block, rounds of work on ``rows`` positions are shared among the cores, BLAS on
    one thread (change 8).

    Only from ``SHARED_FROM`` positions on; fewer (a short prompt, decoding) are worked on the
    calling thread, with BLAS's own threads.
    """
    if _helpers is None or not _BLAS or rows < SHARED_FROM:
        yield
        return
    token = _blocks.set(_CORES)
    try:
        with _blas_threads(1):
            yield
    finally:
        _blocks.reset(token)


def _each_block(fn, size: int) -> None:
    """``fn(block)`` for slices ``block`` that cover ``range(size)`` (rows, or the head's columns):
    one per core inside ``_cores_share``, else one slice on this thread."""
    n = min(_blocks.get(), size)
    if n == 1:  # one slice, on this thread (decoding's every step): nothing to hand out
        fn(slice(0, size))
        return
    bounds = [size * i // n for i in range(n + 1)]
    _share(fn, [slice(start, stop) for start, stop in itertools.pairwise(bounds)])


def _in_cache_sized_pieces(fn, *rows: np.ndarray) -> None:
    """``fn(*rows)`` a few rows at a time: each of its passes then reads what the last one left in
    the core's cache, instead of the whole array from memory."""
    step = max(1, _PIECE // rows[0].shape[-1])
    if rows[0].shape[0] <= step:  # one piece (decoding's one row): nothing to slice
        fn(*rows)
        return
    for start in range(0, rows[0].shape[0], step):
        fn(*(r[start : start + step] for r in rows))


def _share(fn, items: list) -> None:
    """``fn(item)`` for every item, handed out to the cores as each frees up (inside
    ``_cores_share``; else all on this thread)."""
    queue = iter(items)  # next() hands each item to exactly one thread (the GIL guards it)

    def work():
        for item in queue:
            fn(item)

    helpers = min(_blocks.get(), len(items)) - 1
    pending = [_helpers.submit(work) for _ in range(helpers)]
    work()
    for job in pending:
        job.result()


# the BLAS libraries whose threads _blas_threads sets; none found: the engine shares no work itself
_BLAS = [] if ThreadpoolController is None else ThreadpoolController().select(user_api="blas").lib_controllers


@contextmanager
def _blas_threads(n: int):
    """BLAS on ``n`` threads inside the block (process-wide while it runs), its own setting after."""
    before = [c.get_num_threads() for c in _BLAS]
    for c in _BLAS:
        c.set_num_threads(n)
    try:
        yield
    finally:
        for c, n_before in zip(_BLAS, before, strict=True):
            c.set_num_threads(n_before)


# ---- weights laid out for decoding (change 6) ------------------------------------------------


def streaming_order(w: np.ndarray, head: bool = False) -> np.ndarray:
    """``w`` (d_in, d_out) with the same shape and values, laid out as its matrix-vector product
    streams it fastest (change 6 of the module docstring): a block's matrix with each output's
    weights contiguous (column-major), the LM head (``head``) with its outputs contiguous (row-major).

    ``x @ w`` is the same product either way (equal up to float rounding). Returns ``w`` itself
    when it is already laid out so, a copy otherwise.
    """
    return np.ascontiguousarray(w) if head else np.asfortranarray(w)


def _with_streaming_copies(tree):
    """The weight tree with, beside the matrix ``w`` of every linear layer, ``w_stream``: ``w`` in
    ``streaming_order``, for products with one row. ``w`` itself stays the model's own array."""
    if isinstance(tree, list):
        return [_with_streaming_copies(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    laid_out = {k: _with_streaming_copies(v) for k, v in tree.items()}
    return laid_out | ({"w_stream": streaming_order(tree["w"])} if "w" in tree else {})
