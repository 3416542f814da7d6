"""Norms, wrong (chapters 2, 3 and 5): LayerNorm over the last axis with the biased variance and
eps inside the square root, and RMSNorm."""

import numpy as np

from ...exercise import Broadcast

LINE_UP = "two of your arrays do not line up (the shapes are in the error): "
KEEPDIMS = (
    "a mean over the last axis has shape (..., T), so keep that axis (keepdims=True) and the (..., T, 1) "
    "result lines up with the rows of x, (..., T, d)"
)
GAIN_AS_IT_IS = "g and b are (d,), and broadcast along the rows as they are"

# The errors a norm meets, told apart by the shapes they name: a (..., T) mean against the
# (..., T, d) rows (no keepdims), or a gain made a (d, 1) column.
ERROR_HINTS = {
    Broadcast("lost-axis"): LINE_UP + KEEPDIMS,
    Broadcast("column"): LINE_UP + "g and b are (d,) and broadcast along the rows of x, (..., T, d), as they "
    "are; reshaped to a (d, 1) column, g lines up with the T axis instead: multiply by g itself",
    Broadcast("other"): LINE_UP + KEEPDIMS + "; " + GAIN_AS_IT_IS,
}


def layer_norm(
    x,
    g,
    b,
    eps=1e-5,
    *,
    axis=-1,
    ddof=0,
    eps_where="inside",
    root=True,
    affine=True,
    bias=True,
    centre=True,
    swapped=False,
    one_pass=False,
):
    """LayerNorm; ``eps_where`` is ``"inside"`` the square root (right), ``"outside"`` or
    ``"none"``; ``centre=False`` skips the mean (RMS-style); ``axis=None`` normalises the whole
    array at once; ``affine=False`` leaves out the gain and the bias, ``bias=False`` the bias;
    ``swapped`` multiplies by the bias and adds the gain; ``root=False`` divides by the variance
    (plus eps) itself; ``one_pass`` takes the variance as E[x²] - E[x]², in the input's dtype."""
    if swapped:
        g, b = b, g
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).sum(axis=axis, keepdims=True) / (
        (x.size if axis is None else x.shape[axis]) - ddof
    )
    if one_pass:
        var = (x * x).mean(axis=axis, keepdims=True) - mean * mean
    if not centre:
        mean, var = 0, (x * x).mean(axis=axis, keepdims=True)
    denominator = {
        "inside": lambda: np.sqrt(var + eps),
        "outside": lambda: np.sqrt(var) + eps,
        "none": lambda: np.sqrt(var),
    }[eps_where]()
    y = (x - mean) / (denominator if root else var + eps)
    return (y * g + (b if bias else 0) if affine else y).astype(x.dtype)


def rms_norm(
    x,
    g,
    eps=1e-6,
    *,
    centre=False,
    mean=True,
    eps_where="inside",
    root=True,
    gain=True,
    gain_added=False,
    spread=False,
):
    """RMSNorm; ``centre`` subtracts the mean first, ``spread`` divides by the standard deviation
    (the squares taken around the mean, x itself not centred), ``mean=False`` sums the squares,
    ``root=False`` divides by the mean square itself, ``gain=False`` leaves out g, ``gain_added``
    adds g instead of multiplying by it."""
    if centre:
        x = x - x.mean(axis=-1, keepdims=True)
    around = x - x.mean(axis=-1, keepdims=True) if spread else x
    ms = (around * around).mean(axis=-1, keepdims=True) if mean else (x * x).sum(axis=-1, keepdims=True)
    denominator = (np.sqrt(ms + eps) if eps_where == "inside" else np.sqrt(ms) + eps) if root else ms + eps
    y = x / denominator
    if gain_added:
        return (y + g).astype(x.dtype)
    return (y * g if gain else y).astype(x.dtype)


LAYER_NORM = {
    "one-pass-variance": (
        {"one_pass": True},
        "on rows far from 0 your output is far off: the variance as mean(x**2) - mean(x)**2 subtracts two "
        "nearly equal large numbers, and float32 keeps only 7 digits of each. Subtract the mean first: "
        "var = ((x - mean) ** 2).mean(...)",
    ),
    "eps-outside": (
        {"eps_where": "outside"},
        "epsilon is outside the square root: divide by sqrt(var + eps), not sqrt(var) + eps (it shows "
        "when the variance is tiny or eps is large)",
    ),
    "no-eps": (
        {"eps_where": "none"},
        "epsilon is missing: divide by sqrt(var + eps); without it a row with tiny variance blows up",
    ),
    "unbiased": (
        {"ddof": 1},
        "you used the unbiased variance (dividing by d - 1, ddof=1): LayerNorm divides by d (np.var's "
        "default ddof=0)",
    ),
    "wrong-axis": (
        {"axis": 0},
        "you normalised over the wrong axis (axis 0, across tokens or the batch): each token's vector is "
        "normalised on its own, over its d features, the last axis (axis=-1, keepdims=True)",
    ),
    "all-axes": (
        {"axis": None},
        "you took one mean and variance over the whole array: compute them per token, over the last "
        "axis (axis=-1, keepdims=True)",
    ),
    "no-affine": (
        {"affine": False},
        "the normalisation is right but the gain and bias are missing: multiply by g, then add b",
    ),
    "gain-bias-swapped": (
        {"swapped": True},
        "the gain and the bias are swapped: multiply the normalised rows by g (the gain), then add b "
        "(the bias)",
    ),
    "variance": (
        {"root": False},
        "you divided by the variance: divide by the standard deviation, its square root sqrt(var + eps)",
    ),
    "no-centre": (
        {"centre": False},
        "the mean is not subtracted: that is RMSNorm; LayerNorm centres each row first, then divides by "
        "the standard deviation",
    ),
}


def layer_norm_steps(order):
    """LayerNorm's steps (``Exercise.steps``) in ``order``: each row normalised, times the gain
    ``g``, plus the bias ``b``."""

    def run(x, g, b, eps=1e-5):
        z = np.asarray(x)
        for step in order:
            if step == "normalise":
                z = layer_norm(z, np.ones_like(g), np.zeros_like(b), eps)
            elif step == "gain":
                z = z * np.asarray(g).astype(z.dtype, copy=False)
            else:
                z = z + np.asarray(b).astype(z.dtype, copy=False)
        return z

    return run


def rms_norm_steps(order):
    """RMSNorm's steps (``Exercise.steps``) in ``order``: each row divided by its root-mean-square,
    times the gain ``g``."""

    def run(x, g, eps=1e-6):
        z = np.asarray(x)
        for step in order:
            if step == "normalise":
                z = rms_norm(z, np.ones_like(g), eps)
            else:
                z = z * np.asarray(g).astype(z.dtype, copy=False)
        return z

    return run


LAYER_NORM_STEPS = (("normalise", "gain", "bias"), layer_norm_steps)
RMS_NORM_STEPS = (("normalise", "gain"), rms_norm_steps)
