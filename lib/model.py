"""The whole forward pass: embed, run the blocks, final norm, LM head.

Trace names
-----------
``model.forward(ids, trace=True)`` also returns a dict of every intermediate, in the order they
are computed. Shapes below are for one sequence of T tokens (a batch adds a leading B, except to
``embed.pos``, which every sequence shares); H is ``n_head``, KV is ``n_kv_head``, S the number of
keys (T, plus the cached tokens with a cache), ``i`` the block index. Each stage records its own
stations (``lib.trace``), named after the weights it owns: ``h.0.attn.probs`` comes from the
attention of ``params["h"][0]["attn"]``.

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

from contextlib import nullcontext

import numpy as np

from ._validate import as_model_input
from .block import block
from .cache import KVCache
from .config import Config
from .embedding import embed
from .head import lm_head
from .norms import norm
from .trace import scope, traced, tracing


class Model:
    """A decoder-only transformer: a ``Config`` and a nested dict of weights.

    ``params`` mirrors the checkpoint (GPT-2 names): ``wte``, ``wpe`` (learned positions),
    ``h`` (a list of blocks, each ``{"ln_1", "attn": {"c_attn", "c_proj"}, "ln_2", "mlp"}``),
    ``ln_f`` and, for an untied head, ``lm_head`` of shape (d, V).

    ``forward`` is the textbook forward pass, stage by stage. ``lib.Engine(model)`` computes the
    same logits faster, for generation (``lib.engine``).
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
        return sum(a.size for a in leaves(self.params))

    def new_cache(self, batch: int | None = None) -> KVCache:
        """An empty KV cache for one sequence, or for ``batch`` sequences."""
        return KVCache(self.config, batch, self.dtype)

    def forward(self, ids, *, trace: bool = False, cache: KVCache | None = None):
        """Logits for every position of ``ids``.

        Parameters
        ----------
        ids : int array, shape (T,) or (B, T)
        trace : bool
            Also return a dict of every intermediate, in the order computed (see the module
            docstring).
        cache : KVCache, optional
            Keys and values of earlier tokens (``new_cache()`` for ids of shape (T,),
            ``new_cache(B)`` for (B, T)); ``ids`` continue that sequence and the cache is extended
            with them.

        Returns
        -------
        logits : array, shape (T, V) or (B, T, V)
        trace : dict, only with ``trace=True``
        """
        c, p = self.config, self.params
        ids, start = as_model_input(ids, c, cache)  # [..., T]
        positions = np.arange(start, start + ids.shape[-1])  # [T]: where the new tokens sit
        with tracing() if trace else nullcontext() as stations:
            with scope("embed"):
                x = embed(ids, p["wte"], p.get("wpe"), start)  # [..., T, d]
            for i, layer in enumerate(p["h"]):
                with scope(f"h.{i}"):
                    kv_cache = None if cache is None else cache.layers[i]
                    x = block(x, layer, c, positions=positions, kv_cache=kv_cache)  # [..., T, d]
            x = traced("ln_f", norm(x, p["ln_f"], c))
            logits = traced("logits", lm_head(x, self.w_unembed))  # [..., T, V]
        return (logits, stations) if trace else logits

    __call__ = forward


def leaves(tree):
    """Every array (or shape) of a weight tree, in order."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from leaves(value)
    else:
        yield tree


def param_shapes(config: Config) -> dict:
    """The shape of every weight of ``config``, in ``lib``'s tree (what ``init_params`` fills)."""
    c = config
    d, V = c.d_model, c.vocab_size
    d_qkv = (c.n_head + 2 * c.n_kv_head) * c.d_head  # queries, then keys and values (grouped)

    def linear(d_in, d_out):  # x @ w + b
        return {"w": (d_in, d_out), "b": (d_out,)} if c.bias else {"w": (d_in, d_out)}

    def norm():  # g * normalized(x) + b
        return {"g": (d,), "b": (d,)} if c.norm == "layernorm" and c.bias else {"g": (d,)}

    def mlp():
        if c.mlp == "swiglu":
            return {
                "gate_proj": linear(d, c.d_ff),
                "up_proj": linear(d, c.d_ff),
                "down_proj": linear(c.d_ff, d),
            }
        return {"c_fc": linear(d, c.d_ff), "c_proj": linear(c.d_ff, d)}

    shapes = {"wte": (V, d)}
    if c.positions == "learned":
        shapes["wpe"] = (c.n_ctx, d)
    shapes["h"] = [
        {
            "ln_1": norm(),
            "attn": {"c_attn": linear(d, d_qkv), "c_proj": linear(d, d)},
            "ln_2": norm(),
            "mlp": mlp(),
        }
        for _ in range(c.n_layer)
    ]
    shapes["ln_f"] = norm()
    if not c.tie_embeddings:
        shapes["lm_head"] = (d, V)
    return shapes


def init_params(config: Config, seed: int = 0, dtype=np.float32, std: float = 0.02) -> dict:
    """Random weights in ``lib``'s layout: normal with ``std``, and a norm's gain 1 plus such a
    number."""
    rng = np.random.default_rng(seed)

    def fill(shapes, key=None):
        if isinstance(shapes, dict):
            return {k: fill(v, k) for k, v in shapes.items()}
        if isinstance(shapes, list):
            return [fill(v) for v in shapes]
        w = (rng.standard_normal(shapes) * std).astype(dtype)
        return (1 + w).astype(dtype) if key == "g" else w

    return fill(param_shapes(config))
