"""The position-wise feed-forward sublayer: GELU MLP (GPT-2) and SwiGLU (Llama)."""

import numpy as np

from .activations import gelu, gelu_exact, silu
from .linear import linear

ACTIVATIONS = {"tanh": gelu, "exact": gelu_exact}


def mlp(x, params: dict, activation: str = "tanh", *, trace: dict | None = None, prefix="mlp"):
    """Expand, GELU, project, applied to each position on its own.

    ``out = gelu(x @ W_fc + b_fc) @ W_proj + b_proj``

    Parameters
    ----------
    x : array, shape (..., d)
    params : dict
        ``{"c_fc": {"w": (d, d_ff), "b"?}, "c_proj": {"w": (d_ff, d), "b"?}}``
    activation : {"tanh", "exact"}
        Which GELU.

    Returns
    -------
    array, shape (..., d)
    """
    pre = linear(x, params["c_fc"]["w"], params["c_fc"].get("b"))  # [..., d_ff]
    post = ACTIVATIONS[activation](pre)
    out = linear(post, params["c_proj"]["w"], params["c_proj"].get("b"))  # [..., d]
    if trace is not None:
        trace[f"{prefix}.pre_act"], trace[f"{prefix}.post_act"], trace[f"{prefix}.out"] = pre, post, out
    return out


def swiglu(x, params: dict, *, trace: dict | None = None, prefix="mlp"):
    """SwiGLU (Shazeer 2020): a SiLU gate multiplies a second, linear branch.

    ``out = (silu(x @ W_gate) * (x @ W_up)) @ W_down``

    Parameters
    ----------
    x : array, shape (..., d)
    params : dict
        ``{"gate_proj": {"w": (d, d_ff)}, "up_proj": {"w": (d, d_ff)}, "down_proj": {"w": (d_ff, d)}}``

    Returns
    -------
    array, shape (..., d)
    """
    gate = linear(x, params["gate_proj"]["w"], params["gate_proj"].get("b"))  # [..., d_ff]
    up = linear(x, params["up_proj"]["w"], params["up_proj"].get("b"))  # [..., d_ff]
    act = silu(gate)
    hidden = act * up
    out = linear(hidden, params["down_proj"]["w"], params["down_proj"].get("b"))  # [..., d]
    if trace is not None:
        trace.update(
            {
                f"{prefix}.pre_act": gate,
                f"{prefix}.post_act": act,
                f"{prefix}.up": up,
                f"{prefix}.gated": hidden,
                f"{prefix}.out": out,
            }
        )
    return out


def feed_forward(x, params: dict, config, *, trace=None, prefix="mlp") -> np.ndarray:
    """The MLP the config asks for (``config.mlp``)."""
    if config.mlp == "swiglu":
        return swiglu(x, params, trace=trace, prefix=prefix)
    return mlp(x, params, config.gelu, trace=trace, prefix=prefix)
