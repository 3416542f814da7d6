"""The KV cache: keys and values of earlier tokens, kept so decoding never recomputes them.

Each layer owns a buffer sized for the whole context, filled left to right; decoding one token
writes one new key and value per head and reads all the earlier ones back.
"""

import numpy as np


class LayerCache:
    """Keys and values of one layer: buffers of shape (B, n_kv_head, n_ctx, d_head)."""

    def __init__(self, batch: int, n_kv_head: int, n_ctx: int, d_head: int, dtype):
        self.k = np.zeros((batch, n_kv_head, n_ctx, d_head), dtype)
        self.v = np.zeros_like(self.k)
        self.length = 0

    def extend(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append the new tokens' keys and values; return views of all of them.

        ``[B, KV, T, d_head] -> [B, KV, past + T, d_head]``
        """
        if k.shape[0] != self.k.shape[0]:
            raise ValueError(f"cache was made for batch {self.k.shape[0]}, got keys of shape {k.shape}")
        stop = self.length + k.shape[-2]
        if stop > self.k.shape[-2]:
            raise ValueError(f"KV cache full: {stop} tokens exceed the context of {self.k.shape[-2]}")
        self.k[:, :, self.length : stop] = k
        self.v[:, :, self.length : stop] = v
        self.length = stop
        return self.k[:, :, :stop], self.v[:, :, :stop]


class KVCache:
    """One ``LayerCache`` per block; ``length`` is the number of tokens already processed."""

    def __init__(self, config, batch: int = 1, dtype=np.float32):
        self.layers = [
            LayerCache(batch, config.n_kv_head, config.n_ctx, config.d_head, dtype)
            for _ in range(config.n_layer)
        ]

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def batch(self) -> int:
        return self.layers[0].k.shape[0]

    def nbytes(self) -> int:
        """Bytes of the keys and values stored so far."""
        return sum(2 * layer.k[:, :, : layer.length].nbytes for layer in self.layers)
