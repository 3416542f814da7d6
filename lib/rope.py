"""Rotary position embeddings (RoPE, Su et al. 2021).

Instead of adding a position vector to the stream, RoPE rotates each query and key: pair ``j``
of features at position ``m`` turns by the angle ``m * theta**(-2j / d_head)``. The dot product
of a rotated query and key then depends only on their distance.

Which features form a pair is a convention, the ``pairing``:

- ``"halves"``: feature ``j`` with feature ``j + d_head/2``, as Hugging Face's Llama does. Hugging
  Face checkpoints are stored for this pairing, so it is the default and what ``load_pretrained``
  uses.
- ``"interleaved"``: neighbours ``(2j, 2j+1)``, as in the RoFormer paper, Meta's original Llama
  code and CS336.

The two give the same model up to a fixed permutation of the query and key weights. Either way
the rotation is ``x * cos(angle) + rotate(x) * sin(angle)``: ``rotate`` turns every pair by 90
degrees, and each pair's angle sits on both of its features.
"""

import numpy as np

from ._validate import as_float_array, check_broadcasts_to

PAIRINGS = ("halves", "interleaved")


def rope_angles(positions, d_head: int, theta: float = 10000.0) -> np.ndarray:
    """The rotation angle of every (position, pair): ``m * theta**(-2j / d_head)``.

    Returns
    -------
    array, shape ``positions.shape + (d_head // 2,)`` ((T, d_head // 2) for positions (T,)), float64
    """
    positions = np.asarray(positions, dtype=np.float64)
    inv_freq = theta ** (-np.arange(0, d_head, 2, dtype=np.float64) / d_head)  # [d_head/2]
    return positions[..., None] * inv_freq  # [..., T, d_head/2]


def rotate_half(x: np.ndarray) -> np.ndarray:
    """``[x1, x2] -> [-x2, x1]`` on the last axis: the 90-degree turn of each (j, j + d/2) pair."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rotate_interleaved(x: np.ndarray) -> np.ndarray:
    """``(x_2j, x_2j+1) -> (-x_2j+1, x_2j)`` on the last axis: the turn of each neighbouring pair."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)  # [..., d/2, 2]
    return np.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)


def apply_rope(x, positions, theta: float = 10000.0, pairing: str = "halves") -> np.ndarray:
    """Rotate queries or keys by their positions: ``x * cos(angle) + rotate(x) * sin(angle)``.

    Parameters
    ----------
    x : array, shape (..., T, d_head)
        Queries or keys; ``d_head`` even.
    positions : int array, shape (T,) or (..., T)
        The position of each token. A shape with leading axes broadcasts against ``x.shape[:-1]``
        and must not add axes: (B, T) for x of shape (B, T, d_head), (B, 1, T) for per-sequence
        positions and x of shape (B, H, T, d_head).
    theta : float
        Base of the frequencies.
    pairing : {"halves", "interleaved"}
        Which features form a pair (see the module docstring).

    Returns
    -------
    array, same shape and dtype as ``x``
    """
    x = as_float_array(x, "x", min_ndim=2)
    d_head = x.shape[-1]
    if d_head % 2:
        raise ValueError(f"RoPE needs an even head size, got x with shape {x.shape}")
    if pairing not in PAIRINGS:
        raise ValueError(f"apply_rope: pairing={pairing!r}, expected one of {PAIRINGS}")
    positions = np.asarray(positions)
    if positions.ndim == 0 or positions.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"apply_rope: positions of shape {positions.shape} for x with {x.shape[-2]} tokens "
            f"(shape {x.shape}); expected (T,) or (..., T)"
        )
    check_broadcasts_to(positions.shape, x.shape[:-1], "apply_rope: positions", "x.shape[:-1]")
    angles = rope_angles(positions, d_head, theta)  # [..., T, d_head/2]: one angle per pair
    if pairing == "halves":
        angles, rotated = np.concatenate([angles, angles], axis=-1), rotate_half(x)  # at j and j + d/2
    else:
        angles, rotated = np.repeat(angles, 2, axis=-1), rotate_interleaved(x)  # at 2j and 2j + 1
    return x * np.cos(angles).astype(x.dtype) + rotated * np.sin(angles).astype(x.dtype)
