"""The affine map every sublayer is made of."""

import numpy as np

from ._validate import as_float_array


def linear(x, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w + b``, with ``w`` stored input-major as ``(d_in, d_out)`` (GPT-2's Conv1D layout).

    Parameters
    ----------
    x : array, shape (..., d_in)
    w : array, shape (d_in, d_out)
    b : array, shape (d_out,), optional

    Returns
    -------
    array, shape (..., d_out)
    """
    x = as_float_array(x, "x")
    if w.ndim != 2 or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"linear: x has shape {x.shape} but w has shape {w.shape}; "
            f"x's last axis must equal w's first axis (d_in)"
        )
    y = x @ w  # [..., d_in] @ [d_in, d_out] -> [..., d_out]
    if b is not None:
        y += b
    return y
