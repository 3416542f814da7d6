"""MLPs, wrong (chapters 2 and 5): GPT-2's two affine layers around GELU, and Llama's SwiGLU."""

import numpy as np

import lib

from .activations import gelu


def mlp(x, params, *, act="tanh-gelu", bias=True):
    """GPT-2's MLP with any of the ``activations.ACTIVATIONS``; ``bias=False`` drops both biases."""
    fc, proj = params["c_fc"], params["c_proj"]
    h = gelu(x @ fc["w"] + (fc["b"] if bias else 0), act=act)
    return (h @ proj["w"] + (proj["b"] if bias else 0)).astype(x.dtype)


def toy_mlp(x, w_fc, b_fc, w_proj, b_proj, **knobs):
    """``mlp`` with chapter 5's flat signature."""
    return mlp(x, {"c_fc": {"w": w_fc, "b": b_fc}, "c_proj": {"w": w_proj, "b": b_proj}}, **knobs)


GATES = {
    "silu": lib.silu,
    "gelu": lib.gelu,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0),
}


def swiglu(x, params, *, gate="silu", branch="gate", up=True, both=False):
    """SwiGLU; ``gate`` is one of ``GATES``, ``branch="up"`` puts it on the up branch, ``both`` on
    both, ``up=False`` drops the up branch."""
    a, b = x @ params["gate_proj"]["w"], x @ params["up_proj"]["w"]
    if branch == "up":
        a, b = b, a
    act = GATES[gate]
    h = act(a) * (act(b) if both else b) if up else act(a)
    return (h @ params["down_proj"]["w"]).astype(x.dtype)


# The MLP's activation and biases: knobs of ``mlp`` and ``toy_mlp``.
MLP = {
    "relu": ({"act": "relu"}, "the activation is ReLU: GPT-2's MLP uses GELU (the tanh approximation)"),
    "exact-gelu": (
        {"act": "exact"},
        "the activation is the exact GELU (with erf): GPT-2 uses the tanh approximation "
        "0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))",
    ),
    "no-activation": (
        {"act": "identity"},
        "there is no activation between the two layers: apply GELU to the d_ff-wide hidden layer",
    ),
    "gelu-square": ({"act": "square"}, "in the GELU, the correction term is 0.044715 h^3 (a cube), not h^2"),
    "gelu-constant": (
        {"act": "constant"},
        "in the GELU, the constant inside the tanh is sqrt(2/pi), not sqrt(pi/2)",
    ),
    "gelu-sigmoid": (
        {"act": "sigmoid"},
        "the activation is the sigmoid approximation h * sigmoid(1.702 h): GPT-2 uses the tanh form of GELU",
    ),
    "silu": (
        {"act": "silu"},
        "the activation is SiLU, h * sigmoid(h) (Llama's): GPT-2's MLP uses GELU, the tanh form",
    ),
    "no-bias": ({"bias": False}, "the biases are missing: both layers are affine, h @ w + b"),
}
