"""Activations, wrong (chapters 2, 3 and 5): GELU's tanh form and its look-alikes, softmax and
log-softmax over the last axis, stable (the maximum subtracted first)."""

import math

import numpy as np

import lib

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

# The error a softmax, log-softmax or loss without keepdims meets: a (..., T) maximum or sum
# against the (..., T, V) logits.
ROW_KEEPDIMS = "use keepdims=True in max and sum, so the (..., T, 1) result lines up with the rows of the (..., T, V) logits"


def _tanh_gelu(x, cube=3, c=SQRT_2_OVER_PI):
    return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**cube)))


ACTIVATIONS = {
    "tanh-gelu": _tanh_gelu,
    "exact": lib.gelu_exact,
    "relu": lambda x: np.maximum(x, 0),
    "square": lambda x: _tanh_gelu(x, cube=2),
    "constant": lambda x: _tanh_gelu(x, c=math.sqrt(math.pi / 2)),
    "no-root": lambda x: _tanh_gelu(x, c=2 / math.pi),
    "two-pi": lambda x: _tanh_gelu(x, c=math.sqrt(2 * math.pi)),
    "tanh": np.tanh,
    "sigmoid": lambda x: x / (1 + np.exp(-1.702 * x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "cube-only": lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * 0.044715 * x**3)),
    "identity": lambda x: x,
}


def gelu(x, *, act="tanh-gelu"):
    """One of ``ACTIVATIONS`` (GELU's tanh form is right) in the dtype of ``x``."""
    with np.errstate(over="ignore"):
        return np.asarray(ACTIVATIONS[act](x)).astype(x.dtype)


# GELU's look-alikes: the ``act`` knob of ``gelu``, ``mlp.mlp`` and ``mlp.toy_mlp``.
GELU = {
    "exact-gelu": (
        {"act": "exact"},
        "the activation is the exact GELU (with erf): GPT-2 uses the tanh approximation "
        "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    ),
    "relu": (
        {"act": "relu"},
        "the activation is ReLU, max(x, 0): GELU is x times a smooth gate, 0.5 (1 + tanh(...))",
    ),
    "gelu-square": ({"act": "square"}, "in the GELU, the correction term is 0.044715 x^3 (a cube), not x^2"),
    "gelu-constant": (
        {"act": "constant"},
        "in the GELU, the constant inside the tanh is sqrt(2/pi), not sqrt(pi/2)",
    ),
    "gelu-no-root": (
        {"act": "no-root"},
        "in the GELU, the constant inside the tanh is sqrt(2/pi): the square root is missing (2/pi)",
    ),
    "gelu-two-pi": (
        {"act": "two-pi"},
        "in the GELU, the constant inside the tanh is sqrt(2/pi), about 0.80: you took sqrt(2 pi)",
    ),
    "tanh": (
        {"act": "tanh"},
        "the activation is tanh itself: GELU uses tanh only inside its gate, x times 0.5 (1 + tanh(...))",
    ),
    "gelu-sigmoid": (
        {"act": "sigmoid"},
        "the activation is the sigmoid approximation x * sigmoid(1.702 x): GPT-2 uses the tanh form of GELU",
    ),
    "silu": (
        {"act": "silu"},
        "the activation is SiLU, x * sigmoid(x) (Llama's): GPT-2 uses GELU, 0.5 x (1 + tanh(...))",
    ),
}


def softmax(x, axis=-1, *, shift=True, keepdims=True, total="row", peak="row"):
    """Softmax; ``shift=False`` exponentiates x as it is, ``axis`` normalises another axis,
    ``keepdims=False`` broadcasts the row's max and sum along the wrong axis, ``total="all"``
    divides by the sum of the whole array, ``peak="all"`` subtracts the whole array's maximum,
    ``peak="first"`` each row's first entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        top = x.max() if peak == "all" else x.max(axis=axis, keepdims=keepdims)
        top = np.take(x, [0], axis=axis) if peak == "first" else top
        e = np.exp(x - top) if shift else np.exp(x)
        return e / (e.sum() if total == "all" else e.sum(axis=axis, keepdims=keepdims))


def log_softmax(x, axis=-1, *, shift=True, via="direct", base="e", peak="row"):
    """Log-softmax; ``shift=False`` sums np.exp(x) as it is, ``via="softmax"`` takes the log of
    the softmax, ``base="2"`` gives bits, ``peak="all"`` subtracts the whole array's maximum."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if via == "softmax":
            out = np.log(softmax(x, axis=axis))
        elif shift:
            shifted = x - (x.max() if peak == "all" else x.max(axis=axis, keepdims=True))
            out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        else:
            out = x - np.log(np.exp(x).sum(axis=axis, keepdims=True))
    return out / np.asarray(math.log(2), x.dtype) if base == "2" else out
