"""The KV cache: keys and values of earlier tokens, kept so decoding never recomputes them.

Each layer owns a buffer sized for the whole context, filled left to right; decoding one token
writes one new key and value per head and reads all the earlier ones back.
"""

import numpy as np


class LayerCache:
    """Keys and values of one layer: buffers of shape (*batch, n_kv_head, n_ctx, d_head).

    ``batch`` is ``()`` for one sequence and ``(B,)`` for a batch of B: the leading axes of the
    inputs it serves.
    """

    def __init__(self, batch: tuple, n_kv_head: int, n_ctx: int, d_head: int, dtype):
        self.k = np.zeros((*batch, n_kv_head, n_ctx, d_head), dtype)
        self.v = np.zeros_like(self.k)
        self.length = 0

    def extend(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append the new tokens' keys and values; return views of all of them.

        ``[..., KV, T, d_head] -> [..., KV, past + T, d_head]``
        """
        if k.shape[:-2] != self.k.shape[:-2] or k.shape[-1] != self.k.shape[-1]:
            raise ValueError(
                f"cache holds keys of shape (..., n_ctx, d_head) = {self.k.shape}, got new keys of shape "
                f"{k.shape}: the axes before the last two (batch and key/value heads) and d_head must match"
            )
        stop = self.length + k.shape[-2]
        if stop > self.k.shape[-2]:
            raise ValueError(f"KV cache full: {stop} tokens exceed the context of {self.k.shape[-2]}")
        self.k[..., self.length : stop, :] = k
        self.v[..., self.length : stop, :] = v
        self.length = stop
        return self.k[..., :stop, :], self.v[..., :stop, :]


class KVCache:
    """One ``LayerCache`` per block; ``length`` is the number of tokens already processed.

    ``batch=None`` keeps one sequence (ids of shape (T,)); ``batch=B`` keeps B sequences (ids of
    shape (B, T)).
    """

    def __init__(self, config, batch: int | None = None, dtype=np.float32):
        lead = () if batch is None else (batch,)
        self.layers = [
            LayerCache(lead, config.n_kv_head, config.n_ctx, config.d_head, dtype)
            for _ in range(config.n_layer)
        ]

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def batch(self) -> tuple:
        """The leading axes of the inputs this cache serves: ``()`` or ``(B,)``."""
        return self.layers[0].k.shape[:-3]

    def nbytes(self) -> int:
        """Bytes of the keys and values stored so far."""
        return sum(2 * layer.k[..., : layer.length, :].nbytes for layer in self.layers)
