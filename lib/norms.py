"""Normalisation over the feature axis: LayerNorm (GPT-2) and RMSNorm (Llama)."""

import numpy as np

from ._validate import as_float_array, check_last_dim


def layer_norm(x, g: np.ndarray, b: np.ndarray | None = None, eps: float = 1e-5) -> np.ndarray:
    """LayerNorm over the last axis, with the biased variance and epsilon inside the root.

    ``y = (x - mean(x)) / sqrt(var(x) + eps) * g + b``

    Parameters
    ----------
    x : array, shape (..., d)
    g, b : arrays, shape (d,)
        Gain and bias (``b=None`` for a bias-free norm).
    eps : float

    Returns
    -------
    array, shape (..., d), same dtype as ``x``
    """
    x = as_float_array(x, "x")
    check_last_dim(x, np.shape(g)[-1], "x", "the size of the gain g")
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)  # biased: divide by d
    y = centred / np.sqrt(var + x.dtype.type(eps)) * g.astype(x.dtype, copy=False)
    return y if b is None else y + b.astype(x.dtype, copy=False)


def rms_norm(x, g: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """RMSNorm over the last axis: no centring, no bias.

    ``y = x / sqrt(mean(x**2) + eps) * g``

    Parameters
    ----------
    x : array, shape (..., d)
    g : array, shape (d,)
    eps : float

    Returns
    -------
    array, shape (..., d), same dtype as ``x``
    """
    x = as_float_array(x, "x")
    check_last_dim(x, np.shape(g)[-1], "x", "the size of the gain g")
    mean_square = np.mean(x * x, axis=-1, keepdims=True)  # [..., 1]
    return x / np.sqrt(mean_square + x.dtype.type(eps)) * g.astype(x.dtype, copy=False)


def norm(x, params: dict, config) -> np.ndarray:
    """The norm ``config.norm`` names: LayerNorm (``params = {"g", "b"?}``) or RMSNorm (``{"g"}``)."""
    if config.norm == "rmsnorm":
        return rms_norm(x, params["g"], config.norm_eps)
    return layer_norm(x, params["g"], params.get("b"), config.norm_eps)
