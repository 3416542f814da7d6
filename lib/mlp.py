"""The position-wise feed-forward sublayer: GELU MLP (GPT-2) and SwiGLU (Llama)."""

from collections.abc import Callable

import numpy as np

from .activations import gelu, gelu_exact, silu
from .linear import linear
from .trace import traced

GELUS = {"tanh": gelu, "exact": gelu_exact}  # Config.gelu -> the function


def mlp(x, params: dict, activation: Callable = gelu) -> np.ndarray:
    """Expand, activate, project, applied to each position on its own.

    ``out = gelu(x @ W_fc + b_fc) @ W_proj + b_proj``

    Parameters
    ----------
    x : array, shape (..., d)
    params : dict
        ``{"c_fc": {"w": (d, d_ff), "b"?}, "c_proj": {"w": (d_ff, d), "b"?}}``
    activation : function
        ``gelu`` (the tanh approximation, GPT-2's) unless given, e.g. ``gelu_exact``.

    Returns
    -------
    array, shape (..., d)
    """
    pre = traced("pre_act", linear(x, params["c_fc"]["w"], params["c_fc"].get("b")))  # [..., d_ff]
    post = traced("post_act", activation(pre))
    return traced("out", linear(post, params["c_proj"]["w"], params["c_proj"].get("b")))  # [..., d]


def swiglu(x, params: dict, activation: Callable = silu) -> np.ndarray:
    """SwiGLU (Shazeer 2020): a SiLU gate multiplies a second, linear branch.

    ``out = (silu(x @ W_gate) * (x @ W_up)) @ W_down``

    Parameters
    ----------
    x : array, shape (..., d)
    params : dict
        ``{"gate_proj": {"w": (d, d_ff)}, "up_proj": {"w": (d, d_ff)}, "down_proj": {"w": (d_ff, d)}}``
    activation : function
        The gate's nonlinearity: ``silu`` unless given (``gelu`` makes GeGLU).

    Returns
    -------
    array, shape (..., d)
    """
    gate = traced("pre_act", linear(x, params["gate_proj"]["w"], params["gate_proj"].get("b")))  # [..., d_ff]
    act = traced("post_act", activation(gate))
    up = traced("up", linear(x, params["up_proj"]["w"], params["up_proj"].get("b")))  # [..., d_ff]
    hidden = traced("gated", act * up)
    return traced("out", linear(hidden, params["down_proj"]["w"], params["down_proj"].get("b")))  # [..., d]


def feed_forward(x, params: dict, config) -> np.ndarray:
    """The MLP ``config.mlp`` names, with the GELU ``config.gelu`` names."""
    if config.mlp == "swiglu":
        return swiglu(x, params)
    return mlp(x, params, GELUS[config.gelu])
