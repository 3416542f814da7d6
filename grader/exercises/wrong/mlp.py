"""MLPs, wrong (chapters 2 and 5): GPT-2's two affine layers around GELU, and Llama's SwiGLU."""

import numpy as np

import lib

from .activations import GELU, gelu


def mlp(x, params, *, act="tanh-gelu", bias=True, fc_bias_after=False):
    """GPT-2's MLP with any of the ``activations.ACTIVATIONS``; ``bias=False`` drops both biases,
    ``fc_bias_after`` adds the first layer's bias after the activation."""
    fc, proj = params["c_fc"], params["c_proj"]
    if fc_bias_after:
        h = gelu(x @ fc["w"], act=act) + fc["b"]
    else:
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


def swiglu(x, params, *, gate="silu", branch="gate", up=True, both=False, added=False, on_product=False):
    """SwiGLU; ``gate`` is one of ``GATES``, ``branch="up"`` puts it on the up branch, ``both`` on
    both, ``up=False`` drops the up branch, ``added`` adds the two branches instead of multiplying
    them, ``on_product`` takes the gate of their product."""
    a, b = x @ params["gate_proj"]["w"], x @ params["up_proj"]["w"]
    if branch == "up":
        a, b = b, a
    act = GATES[gate]
    return (_gated(a, b, act, up, both, added, on_product) @ params["down_proj"]["w"]).astype(x.dtype)


def _gated(a, b, act, up: bool, both: bool, added: bool, on_product: bool):
    """SwiGLU's hidden layer from the gate branch ``a`` and the up branch ``b`` (``swiglu``'s knobs)."""
    if on_product:
        return act(a * b)
    if not up:
        return act(a)
    other = act(b) if both else b
    return act(a) + other if added else act(a) * other


# The MLP's activation and biases: knobs of ``mlp`` and ``toy_mlp``.
MLP = {
    **GELU,
    "no-activation": (
        {"act": "identity"},
        "there is no activation between the two layers: apply GELU to the d_ff-wide hidden layer",
    ),
    "no-bias": ({"bias": False}, "the biases are missing: both layers are affine, h @ w + b"),
    "fc-bias-after-activation": (
        {"fc_bias_after": True},
        "the first layer's bias is added after the GELU: it belongs inside, gelu(x @ W_fc + b_fc); "
        "then the second layer, @ W_proj + b_proj",
    ),
}


def mlp_steps(order):
    """GPT-2's MLP as steps (``Exercise.steps``) in ``order``: the first layer (``c_fc``), the
    GELU, the second layer (``c_proj``). Orders that put ``c_proj`` before ``c_fc`` meet a shape
    they cannot take, as a student's code would."""

    def run(x, params):
        z = np.asarray(x)
        for step in order:
            if step == "gelu":
                z = lib.gelu(z)
            else:
                z = z @ params[step]["w"] + params[step]["b"]
        return z

    return run


def toy_mlp_steps(order):
    """``mlp_steps`` for the toy's MLP, its weights given one by one."""

    def run(x, w_fc, b_fc, w_proj, b_proj):
        return mlp_steps(order)(x, {"c_fc": {"w": w_fc, "b": b_fc}, "c_proj": {"w": w_proj, "b": b_proj}})

    return run


# A product whose inner sizes differ: a weight transposed (GPT-2 stores them (in, out)) or a product
# taken in the wrong order.
PRODUCT_HINTS = {
    fragment: "the inner sizes of a matrix product differ: GPT-2 stores each weight as (in, out), so "
    "x (..., d) @ w (d, d_out) uses w as it is, with no .T; check the shapes of each product"
    for fragment in ("mismatch in its core dimension", "not aligned")
}

MLP_STEPS = (("c_fc", "gelu", "c_proj"), mlp_steps)
TOY_MLP_STEPS = (("c_fc", "gelu", "c_proj"), toy_mlp_steps)
