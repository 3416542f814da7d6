"""Element-wise nonlinearities and the softmax family."""

import math

import numpy as np

from ._validate import as_float_array

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's; Hugging Face calls it ``gelu_new``).

    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    """
    x = as_float_array(x, "x", min_ndim=0)
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def gelu_exact(x) -> np.ndarray:
    """GELU with the Gaussian CDF (Hugging Face's ``gelu``): ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))``.

    Uses ``math.erf`` element by element: exact, but slow on large arrays.
    """
    x = as_float_array(x, "x", min_ndim=0)
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


def silu(x) -> np.ndarray:
    """SiLU (swish): ``x * sigmoid(x) = x / (1 + exp(-x))``."""
    x = as_float_array(x, "x", min_ndim=0)
    return x / (1.0 + np.exp(-x))


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: subtract the maximum before exponentiating.

    ``softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x)``

    Entries equal to ``-inf`` get probability 0; a row that is entirely ``-inf`` has no
    distribution and gives NaN.
    """
    x = as_float_array(x, "x")
    e = x - x.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """Stable log-softmax: ``x - max x - log(sum exp(x - max x))``."""
    x = as_float_array(x, "x")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
