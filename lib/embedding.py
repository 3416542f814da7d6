"""Stage 1: token ids become vectors (token embedding plus learned positions)."""

import numpy as np

from ._validate import as_float_array, as_token_ids
from .trace import traced


def token_embedding(ids, wte: np.ndarray) -> np.ndarray:
    """Look up one row of the embedding matrix per token.

    ``E[ids]``: row ``i`` of ``wte`` is the vector of token ``i``.

    Parameters
    ----------
    ids : int array, shape (T,) or (B, T)
    wte : array, shape (V, d)

    Returns
    -------
    array, shape (T, d) or (B, T, d)
    """
    wte = as_float_array(wte, "wte", min_ndim=2)
    ids = as_token_ids(ids, wte.shape[0])
    return wte[ids]  # [..., T] -> [..., T, d]


def position_embedding(n_tokens: int, wpe: np.ndarray, start: int = 0) -> np.ndarray:
    """Rows ``start .. start + n_tokens - 1`` of the learned position table.

    Parameters
    ----------
    n_tokens : int
        Number of positions T.
    wpe : array, shape (n_ctx, d)
    start : int
        Position of the first token (non-zero when decoding with a KV cache).

    Returns
    -------
    array, shape (T, d)
    """
    wpe = as_float_array(wpe, "wpe", min_ndim=2)
    if start < 0 or n_tokens < 1:
        raise ValueError(f"positions need n_tokens >= 1 and start >= 0, got {n_tokens}, {start}")
    if start + n_tokens > wpe.shape[0]:
        raise ValueError(
            f"positions {start}..{start + n_tokens - 1} do not fit the context: the position "
            f"table has {wpe.shape[0]} rows (n_ctx)"
        )
    return wpe[start : start + n_tokens]  # [T, d]


def embed(ids, wte: np.ndarray, wpe: np.ndarray | None = None, start: int = 0) -> np.ndarray:
    """Token embeddings plus (when ``wpe`` is given) learned position embeddings.

    ``x = E[ids] + P[start : start + T]``

    Returns
    -------
    array, shape (T, d) or (B, T, d)
    """
    x = traced("tok", token_embedding(ids, wte))  # [..., T, d]
    if wpe is not None:
        x = x + traced("pos", position_embedding(x.shape[-2], wpe, start))  # + [T, d], for every sequence
    return traced("out", x)


def sinusoidal_positions(n_tokens: int, d: int, base: float = 10000.0) -> np.ndarray:
    """The fixed positions of the original transformer (Vaswani et al. 2017), float64.

    ``P[m, 2j] = sin(m / base**(2j/d))``, ``P[m, 2j+1] = cos(m / base**(2j/d))``

    Returns
    -------
    array, shape (n_tokens, d)
    """
    if d % 2:
        raise ValueError(f"sinusoidal positions need an even width, got d={d}")
    angles = np.arange(n_tokens)[:, None] / base ** (np.arange(0, d, 2) / d)  # [T, d/2]
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table
