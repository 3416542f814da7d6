"""The whole forward pass: embed, run the blocks, final norm, LM head.

Trace names
-----------
``model.forward(ids, trace=True)`` also returns an ordered dict of every intermediate, in the
order they are computed. Shapes below are for one sequence of T tokens (a batch adds a leading
B); H is ``n_head``, KV is ``n_kv_head``, ``i`` is the block index.

=================================  =====================  ==========================================
name                               shape                  what
=================================  =====================  ==========================================
``embed.tok``                      (T, d)                 token embedding rows ``wte[ids]``
``embed.pos``                      (T, d)                 learned positions (GPT-2 family only)
``embed.out``                      (T, d)                 the stream entering block 0
``h.i.ln_1``                       (T, d)                 first norm
``h.i.attn.q`` / ``.k`` / ``.v``   (H or KV, T, d_head)   per-head projections
``h.i.attn.q_rot`` / ``.k_rot``    (H or KV, T, d_head)   after RoPE (Llama family only)
``h.i.attn.scores_raw``            (H, T, S)              ``q k^T``
``h.i.attn.scores_scaled``         (H, T, S)              divided by ``sqrt(d_head)``
``h.i.attn.scores_masked``         (H, T, S)              future keys set to ``-inf``
``h.i.attn.probs``                 (H, T, S)              softmax over keys
``h.i.attn.heads``                 (H, T, d_head)         each head's output
``h.i.attn.merged``                (T, d)                 heads concatenated
``h.i.attn.out``                   (T, d)                 after the output projection ``c_proj``
``h.i.resid_mid``                  (T, d)                 stream after the first residual
``h.i.ln_2``                       (T, d)                 second norm
``h.i.mlp.pre_act``                (T, d_ff)              before GELU (the gate for SwiGLU)
``h.i.mlp.post_act``               (T, d_ff)              after GELU (SiLU of the gate)
``h.i.mlp.up`` / ``.gated``        (T, d_ff)              SwiGLU only: up branch, gate * up
``h.i.mlp.out``                    (T, d)                 after the down projection
``h.i.resid_post``                 (T, d)                 stream leaving block i
``ln_f``                           (T, d)                 final norm
``logits``                         (T, V)                 LM head
=================================  =====================  ==========================================
"""

from collections import OrderedDict

import numpy as np

from ._validate import as_token_ids
from .block import block, norm
from .cache import KVCache
from .config import Config
from .embedding import position_embedding, token_embedding
from .head import lm_head
from .linear import streaming_order


class Model:
    """A decoder-only transformer: a ``Config`` and a nested dict of weights.

    ``params`` mirrors the checkpoint (GPT-2 names): ``wte``, ``wpe`` (learned positions),
    ``h`` (a list of blocks, each ``{"ln_1", "attn": {"c_attn", "c_proj"}, "ln_2", "mlp"}``),
    ``ln_f`` and, for an untied head, ``lm_head`` of shape (d, V).
    """

    def __init__(self, config: Config, params: dict, tokenizer=None):
        self.config = config
        self.params = params
        self.tokenizer = tokenizer
        self.dtype = params["wte"].dtype

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Model({c.n_layer} layers, d_model={c.d_model}, {c.n_head} heads, vocab={c.vocab_size}, "
            f"{self.num_params():,} parameters, {self.dtype})"
        )

    @property
    def w_unembed(self) -> np.ndarray:
        """The LM head matrix (d, V): ``wte.T`` when tied."""
        return self.params["wte"].T if self.config.tie_embeddings else self.params["lm_head"]

    def num_params(self) -> int:
        """Number of distinct weights (a tied head counts once)."""
        return sum(a.size for a in _leaves(self.params))

    def new_cache(self, batch: int = 1) -> KVCache:
        """An empty KV cache for ``batch`` sequences."""
        return KVCache(self.config, batch, self.dtype)

    def forward(self, ids, *, trace: bool = False, cache: KVCache | None = None, last_only=False):
        """Logits for every position (or the last one) of ``ids``.

        Parameters
        ----------
        ids : int array, shape (T,) or (B, T)
        trace : bool
            Also return an ordered dict of every intermediate (see the module docstring).
        cache : KVCache, optional
            Keys and values of earlier tokens; ``ids`` continue that sequence and the cache is
            extended with them.
        last_only : bool
            Compute logits for the last position only (all generation needs).

        Returns
        -------
        logits : array, shape (T, V) or (B, T, V) (T = 1 with ``last_only``)
        trace : OrderedDict, only with ``trace=True``
        """
        c = self.config
        ids = as_token_ids(ids, c.vocab_size)
        single = ids.ndim == 1
        ids = ids[None] if single else ids  # [B, T]
        B, T = ids.shape
        start = 0 if cache is None else cache.length
        if start + T > c.n_ctx:
            raise ValueError(
                f"sequence too long: {start} cached + {T} new tokens > context length n_ctx={c.n_ctx}"
            )
        if cache is not None and cache.batch != B:
            raise ValueError(f"cache holds {cache.batch} sequences, ids has {B}")
        record = OrderedDict() if trace else None
        positions = np.arange(start, start + T)

        x = token_embedding(ids, self.params["wte"])  # [B, T, d]
        if record is not None:
            record["embed.tok"] = x
        if c.positions == "learned":
            pos = position_embedding(T, self.params["wpe"], start)  # [T, d]
            x = x + pos
            if record is not None:
                record["embed.pos"] = pos
        if record is not None:
            record["embed.out"] = x

        # With last_only the final block computes its last position alone (it still caches every
        # position's keys and values); a trace keeps every position of every block.
        skip = last_only and record is None
        for i, layer in enumerate(self.params["h"]):
            x = block(
                x,
                layer,
                c,
                positions=positions,
                trace=record,
                prefix=f"h.{i}",
                kv_cache=None if cache is None else cache.layers[i],
                last_n=1 if skip and i == c.n_layer - 1 else None,
            )  # [B, T, d]

        if last_only:
            x = x[:, -1:]
        x = norm(x, self.params["ln_f"], c)
        logits = lm_head(x, self.w_unembed)  # [B, T, V]
        if record is not None:
            record["ln_f"] = x
            record["logits"] = logits
        if single:
            logits = logits[0]
            if record is not None:
                record = OrderedDict((k, _drop_batch(k, v)) for k, v in record.items())
        return (logits, record) if trace else logits

    __call__ = forward


def _drop_batch(name: str, value: np.ndarray) -> np.ndarray:
    return value if name == "embed.pos" else value[0]


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


def init_params(config: Config, seed: int = 0, dtype=np.float32, std: float = 0.02) -> dict:
    """Random weights in ``lib``'s layout (normal with ``std``; norms start at gain 1, bias 0)."""
    rng = np.random.default_rng(seed)
    c = config
    d, d_head = c.d_model, c.d_head

    def normal(*shape):
        return (rng.standard_normal(shape) * std).astype(dtype)

    def lin(d_in, d_out):
        layer = {"w": streaming_order(normal(d_in, d_out))}
        if c.bias:
            layer["b"] = normal(d_out)
        return layer

    def norm_params():
        p = {"g": (1 + normal(d)).astype(dtype)}
        if c.norm == "layernorm" and c.bias:
            p["b"] = normal(d)
        return p

    def mlp_params():
        if c.mlp == "swiglu":
            return {"gate_proj": lin(d, c.d_ff), "up_proj": lin(d, c.d_ff), "down_proj": lin(c.d_ff, d)}
        return {"c_fc": lin(d, c.d_ff), "c_proj": lin(c.d_ff, d)}

    params = {"wte": streaming_order(normal(c.vocab_size, d))}
    if c.positions == "learned":
        params["wpe"] = normal(c.n_ctx, d)
    params["h"] = [
        {
            "ln_1": norm_params(),
            "attn": {"c_attn": lin(d, (c.n_head + 2 * c.n_kv_head) * d_head), "c_proj": lin(d, d)},
            "ln_2": norm_params(),
            "mlp": mlp_params(),
        }
        for _ in range(c.n_layer)
    ]
    params["ln_f"] = norm_params()
    if not c.tie_embeddings:
        params["lm_head"] = streaming_order(normal(d, c.vocab_size))
    return params
