"""Rotary position embeddings (RoPE, Su et al. 2021).

Instead of adding a position vector to the stream, RoPE rotates each query and key: pair ``j``
of features at position ``m`` turns by the angle ``m * theta**(-2j / d_head)``. The dot product
of a rotated query and key then depends only on their distance.

Which features form a pair? ``lib`` pairs feature ``j`` with feature ``j + d_head/2`` (the two
*halves*), as Hugging Face's Llama does. The original paper pairs neighbours ``(2j, 2j+1)``
(*interleaved*). The two give identical models up to a fixed permutation of the query and key
weights, and Hugging Face checkpoints are stored already permuted for halves, so that is what a
loader of those checkpoints must use.
"""

import numpy as np

from ._validate import as_float_array


def rope_angles(positions, d_head: int, theta: float = 10000.0) -> np.ndarray:
    """The rotation angle of every (position, pair): ``m * theta**(-2j / d_head)``.

    Returns
    -------
    array, shape (T, d_head // 2), float64
    """
    positions = np.asarray(positions, dtype=np.float64)
    inv_freq = theta ** (-np.arange(0, d_head, 2, dtype=np.float64) / d_head)  # [d_head/2]
    return positions[:, None] * inv_freq[None, :]  # [T, d_head/2]


def rotate_half(x: np.ndarray) -> np.ndarray:
    """``[x1, x2] -> [-x2, x1]`` on the last axis: the 90-degree turn of each (j, j + d/2) pair."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, positions, theta: float = 10000.0) -> np.ndarray:
    """Rotate queries or keys by their positions.

    ``x * cos(angle) + rotate_half(x) * sin(angle)`` with each angle repeated for both halves.

    Parameters
    ----------
    x : array, shape (..., T, d_head)
    positions : int array, shape (T,)

    Returns
    -------
    array, same shape and dtype as ``x``
    """
    x = as_float_array(x, "x", min_ndim=2)
    d_head = x.shape[-1]
    if d_head % 2:
        raise ValueError(f"RoPE needs an even head size, got x with shape {x.shape}")
    if len(positions) != x.shape[-2]:
        raise ValueError(
            f"apply_rope: {len(positions)} positions for x with {x.shape[-2]} tokens (shape {x.shape})"
        )
    angles = np.concatenate([rope_angles(positions, d_head, theta)] * 2, axis=-1)  # [T, d_head]
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    return x * cos + rotate_half(x) * sin
