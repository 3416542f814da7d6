"""The wrong implementations the chapters share, each a right one with knobs that make one mistake.

A chapter declares its known mistakes as a table, ``table(variant, {name: (knobs, hint)})``: each
row is the variant with those knobs turned (``functools.partial``), so a mistake is its knobs and
its hint, and chapters 2 and 5 (and 1 and 5, 3 and 5) name the same mistake with the same code.
A variant with every knob at its default is the right function (``tests/test_exercises.py``
checks that against each exercise's reference).

The stages follow ``lib`` and the chapters' docstrings: LayerNorm over the last axis with the
biased variance and eps inside the square root; scores ``q k^T / sqrt(d_head)`` with ``-inf``
above the diagonal; heads as consecutive slices of the features; GELU's tanh form; the pre-norm
GPT-2 block.
"""

import functools
import math

import numpy as np

import lib

from ..exercise import Mistake


def table(variant, rows: dict[str, tuple[dict, str]], wrap=None) -> tuple[Mistake, ...]:
    """Known mistakes from a table: ``{name: (knobs, hint)}``, each ``variant`` with its knobs
    (passed through ``wrap``, e.g. a runner, if given)."""
    wrap = wrap or (lambda fn: fn)
    return tuple(Mistake(name, wrap(functools.partial(variant, **knobs)), hint) for name, (knobs, hint) in rows.items())


# ---- embeddings (chapters 1 and 5) --------------------------------------------------------------


def embed(ids, wte, wpe, *, positions="first-T", tokens=True):
    """``wte[ids] + wpe[:T]``; ``positions``: ``"first-T"`` (right), ``"shifted"`` (rows 1..T),
    ``"by-id"`` (``wpe[ids]``), ``"by-batch"`` (rows follow the batch axis), ``"none"``."""
    T = ids.shape[-1]
    if positions == "by-batch" and ids.ndim != 2:
        return None  # the same as the right answer without a batch axis
    rows = {
        "first-T": lambda: wpe[:T],
        "shifted": lambda: wpe[1 : T + 1],
        "by-id": lambda: wpe[ids],
        "by-batch": lambda: wpe[: ids.shape[0], None, :],
        "none": lambda: np.zeros_like(wpe[:1]),
    }[positions]()
    token_rows = wte[ids] if tokens else np.zeros(ids.shape + wte.shape[-1:], wte.dtype)
    return token_rows + rows


# ---- norms (chapters 2, 3 and 5) ----------------------------------------------------------------


def layer_norm(x, g, b, eps=1e-5, *, axis=-1, ddof=0, eps_where="inside", affine=True, centre=True):
    """LayerNorm; ``eps_where`` is ``"inside"`` the square root (right), ``"outside"`` or
    ``"none"``; ``centre=False`` skips the mean (RMS-style); ``axis=None`` normalises the whole
    array at once."""
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).sum(axis=axis, keepdims=True) / ((x.size if axis is None else x.shape[axis]) - ddof)
    if not centre:
        mean, var = 0, (x * x).mean(axis=axis, keepdims=True)
    denominator = {
        "inside": lambda: np.sqrt(var + eps),
        "outside": lambda: np.sqrt(var) + eps,
        "none": lambda: np.sqrt(var),
    }[eps_where]()
    y = (x - mean) / denominator
    return (y * g + b if affine else y).astype(x.dtype)


# ---- attention (chapters 2, 4 and 5) ------------------------------------------------------------


def scores(q, k, *, scale="sqrt", diagonal=0, fill="-inf", upper=False, inverted=False):
    """Scaled scores with the causal mask. ``scale``: ``"sqrt"`` (right, sqrt(d_head)), ``"none"``,
    ``"d"`` (d_head), ``"d_model"`` (sqrt(n_head * d_head)); ``diagonal`` shifts the mask's edge;
    ``upper`` keeps the upper triangle, ``inverted`` the masked part; ``fill``: ``"-inf"``,
    ``"+inf"``, ``"big"`` (-1e9) or ``"zero"``."""
    raw = q @ k.swapaxes(-1, -2)  # [..., T, S]
    d_head = q.shape[-1]
    n_head = q.shape[-3] if q.ndim >= 3 else 1
    divisor = {"sqrt": math.sqrt(d_head), "none": 1.0, "d": d_head, "d_model": math.sqrt(d_head * n_head)}[scale]
    scaled = raw / divisor
    T, S = q.shape[-2], k.shape[-2]
    allowed = np.tri(T, S, k=diagonal + S - T, dtype=bool)
    if upper:
        allowed = allowed.T if T == S else ~np.tri(T, S, k=S - T - 1, dtype=bool)
    if inverted:
        allowed = ~allowed
    if fill == "zero":
        return (scaled * allowed).astype(q.dtype)
    value = {"-inf": -np.inf, "+inf": np.inf, "big": -1e9}[fill]
    return np.where(allowed, scaled, value).astype(q.dtype)


def probs(q, k, *, mask="before", axis=-1, **score_knobs):
    """Attention weights: softmax of the scores. ``mask``: ``"before"`` the softmax (right),
    ``"after"`` it (weights of the future zeroed, rows no longer sum to 1) or ``"none"``;
    ``axis=-2`` normalises over the queries."""
    if mask != "before":
        score_knobs = {**score_knobs, "diagonal": q.shape[-2] + k.shape[-2]}  # a mask that hides nothing
    z = scores(q, k, **score_knobs)
    with np.errstate(invalid="ignore"):
        p = lib.softmax(z, axis=axis)
    if mask == "after":
        T, S = q.shape[-2], k.shape[-2]
        p = p * np.tri(T, S, k=S - T, dtype=bool)
    return p.astype(q.dtype)


def attention(q, k, v, *, weights_transposed=False, **knobs):
    """Causal attention, ``probs(q, k) @ v``, with any knob of ``probs`` and ``scores``;
    ``weights_transposed`` multiplies the values by the weights' transpose."""
    p = probs(q, k, **knobs)
    return ((p.swapaxes(-1, -2) if weights_transposed else p) @ v).astype(q.dtype)


def split(x, n_head, mode="ok"):
    """(..., T, d) -> (..., n_head, T, d_head). ``mode``: ``"ok"``, ``"reshape"`` (straight to
    (n_head, T, d_head)), ``"interleaved"`` (features dealt out in turn), ``"no-transpose"``
    (head axis after T)."""
    *lead, T, d = x.shape
    d_head = d // n_head
    return {
        "ok": lambda: x.reshape(*lead, T, n_head, d_head).swapaxes(-2, -3),
        "reshape": lambda: x.reshape(*lead, n_head, T, d_head),
        "interleaved": lambda: np.moveaxis(x.reshape(*lead, T, d_head, n_head), -1, -3),
        "no-transpose": lambda: x.reshape(*lead, T, n_head, d_head),
    }[mode]()


def merge(x, mode="ok"):
    """(..., n_head, T, d_head) -> (..., T, d). ``mode``: ``"ok"``, ``"reshape"`` (no swap first),
    ``"interleaved"`` (the heads' features interleaved)."""
    *lead, H, T, d_head = x.shape
    return {
        "ok": lambda: x.swapaxes(-2, -3).reshape(*lead, T, H * d_head),
        "reshape": lambda: x.reshape(*lead, T, H * d_head),
        "interleaved": lambda: np.moveaxis(x, -3, -1).reshape(*lead, T, d_head * H),
    }[mode]()


def qkv(x, w, b, n_head, *, split_mode="ok", bias=True, order=(0, 1, 2)):
    """q, k and v split into heads and stacked: (3, ..., n_head, T, d_head); ``order`` picks
    which column block is taken for q, k, v."""
    parts = np.split(x @ w + (b if bias else 0), 3, axis=-1)
    return np.stack([split(parts[i], n_head, split_mode) for i in order]).astype(x.dtype)


def multi_head_attention(x, params, n_head, *, split_mode="ok", merge_mode="ok", proj=True, bias=True, order=(0, 1, 2), **knobs):
    """GPT-2's causal self-attention, with any knob of ``qkv``, ``merge`` and ``attention``;
    ``proj=False`` leaves out the output projection."""
    c = params["c_attn"]
    q, k, v = qkv(x, c["w"], c["b"], n_head, split_mode=split_mode, bias=bias, order=order)
    return attention_output_of(attention(q, k, v, **knobs), params["c_proj"], merge_mode, bias, proj, x.dtype)


def attention_output(probs_, v, w, b, *, merge_mode="ok", bias=True, proj=True, transpose=False):
    """From attention weights and values to the sublayer's output (chapter 5's split of it)."""
    heads = (probs_.swapaxes(-1, -2) if transpose else probs_) @ v
    return attention_output_of(heads, {"w": w, "b": b}, merge_mode, bias, proj, v.dtype)


def attention_output_of(heads, c_proj, merge_mode, bias, proj, dtype):
    merged = merge(heads, merge_mode)
    if not proj:
        return merged.astype(dtype)
    return (merged @ c_proj["w"] + (c_proj["b"] if bias else 0)).astype(dtype)


# ---- activations and the MLP (chapters 2 and 5) -------------------------------------------------

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _tanh_gelu(x, cube=3, c=SQRT_2_OVER_PI):
    return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**cube)))


ACTIVATIONS = {
    "tanh-gelu": _tanh_gelu,
    "exact": lib.gelu_exact,
    "relu": lambda x: np.maximum(x, 0),
    "square": lambda x: _tanh_gelu(x, cube=2),
    "constant": lambda x: _tanh_gelu(x, c=math.sqrt(math.pi / 2)),
    "sigmoid": lambda x: x / (1 + np.exp(-1.702 * x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "cube-only": lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * 0.044715 * x**3)),
    "identity": lambda x: x,
}


def gelu(x, *, act="tanh-gelu"):
    """One of ``ACTIVATIONS`` in the dtype of ``x``."""
    with np.errstate(over="ignore"):
        return np.asarray(ACTIVATIONS[act](x)).astype(x.dtype)


def mlp(x, params, *, act="tanh-gelu", bias=True):
    """GPT-2's MLP with any of ``ACTIVATIONS``; ``bias=False`` drops both biases."""
    fc, proj = params["c_fc"], params["c_proj"]
    h = gelu(x @ fc["w"] + (fc["b"] if bias else 0), act=act)
    return (h @ proj["w"] + (proj["b"] if bias else 0)).astype(x.dtype)


def toy_mlp(x, w_fc, b_fc, w_proj, b_proj, **knobs):
    """``mlp`` with chapter 5's flat signature."""
    return mlp(x, {"c_fc": {"w": w_fc, "b": b_fc}, "c_proj": {"w": w_proj, "b": b_proj}}, **knobs)


# ---- the block (chapters 2 and 5) ---------------------------------------------------------------


def block(x, params, n_head, *, mode="pre-norm", eps=1e-5, mask=True):
    """A GPT-2 block on lib's stages. ``mode``: ``"pre-norm"`` (right), ``"post-norm"``,
    ``"no-first-residual"``, ``"no-second-residual"``, ``"no-residuals"``, ``"same-norm"`` (ln_1's
    weights for both norms), ``"normed-residual"`` (the residual adds to the normed stream),
    ``"parallel"`` (the MLP reads the block's input), ``"swapped"`` (the MLP first);
    ``mask=False`` drops the causal mask."""

    def ln(t, name):
        return lib.layer_norm(t, params[name]["g"], params[name]["b"], eps)

    def attn(t):
        return multi_head_attention(t, params["attn"], n_head, diagonal=0 if mask else t.shape[-2])

    def ff(t):
        return lib.mlp(t, params["mlp"])

    if mode == "post-norm":
        mid = ln(x + attn(x), "ln_1")
        return ln(mid + ff(mid), "ln_2")
    if mode == "swapped":
        mid = x + ff(ln(x, "ln_2"))
        return mid + attn(ln(mid, "ln_1"))
    if mode == "normed-residual":
        h = ln(x, "ln_1")
        mid = h + attn(h)
        h2 = ln(mid, "ln_2")
        return h2 + ff(h2)
    first = attn(ln(x, "ln_1"))
    mid = first if mode in ("no-first-residual", "no-residuals") else x + first
    second = ff(ln(x if mode == "parallel" else mid, "ln_1" if mode == "same-norm" else "ln_2"))
    return second if mode in ("no-second-residual", "no-residuals") else mid + second


# ---- losses (chapters 3 and 5) ------------------------------------------------------------------


def nll(logits, targets, *, reduce="mean", base="e", normalise="log-softmax", axis=-1, sign=1.0):
    """The mean negative log-likelihood of ``targets`` (no shift). ``reduce``: ``"mean"``,
    ``"sum"`` or ``"none"`` (one loss per position); ``base="2"`` is in bits; ``normalise``:
    ``"log-softmax"`` (right), ``"none"`` (raw logits), ``"probabilities"`` (probabilities, no
    log); ``axis=-2`` normalises over positions; ``sign=-1`` flips it."""
    z = logits.astype(np.float64)
    with np.errstate(divide="ignore"):
        scored = {
            "log-softmax": lambda: lib.log_softmax(z, axis=axis),
            "none": lambda: z,
            "probabilities": lambda: lib.softmax(z, axis=axis),
        }[normalise]()
    picked = -np.take_along_axis(scored, targets[..., None], axis=-1)[..., 0]
    if base == "2":
        picked = picked / math.log(2)
    loss = {"mean": picked.mean, "sum": picked.sum, "none": lambda: picked}[reduce]()
    return sign * loss


# ---- the hint tables the chapters share -----------------------------------------------------------

# The mask's shape: knobs of ``scores``, hence of ``probs`` and ``attention`` too.
MASK_SHAPE = {
    "no-self": (
        {"diagonal": -1},
        "the mask's diagonal is off by one: a token must see itself (key j = query i is allowed); only "
        "keys j > i are masked",
    ),
    "one-future": (
        {"diagonal": 1},
        "the mask's diagonal is off by one: each query also sees the next token; mask every key j > i "
        "(np.triu(..., k=1) marks exactly those)",
    ),
    "transposed-mask": (
        {"upper": True},
        "the mask is transposed: query i (a row) may see keys j <= i (the lower triangle); you kept the "
        "upper triangle",
    ),
    "inverted-mask": (
        {"inverted": True},
        "the mask is inverted: you kept the future keys (j > i) and hid the allowed ones; keep the scores "
        "where j <= i and put -inf where j > i",
    ),
}
SCALE = {
    "no-scale": (
        {"scale": "none"},
        "the scores are not scaled: divide q @ k^T by sqrt(d_head) (q.shape[-1]) before the softmax",
    ),
    "scale-d": ({"scale": "d"}, "you divided by d_head: the scale is 1 / sqrt(d_head) (math.sqrt(q.shape[-1]))"),
}
SCALE_D_MODEL = {
    "scale-d_model": (
        {"scale": "d_model"},
        "the scores are divided by sqrt(d_model): each head's scores are dot products of length d_head, "
        "so divide by sqrt(d_head) = sqrt(d_model / n_head)",
    ),
}
FILL = {
    "plus-inf": ({"fill": "+inf"}, "the masked entries are +inf: softmax would give them ALL the weight; use -np.inf"),
    "zero-fill": (
        {"fill": "zero"},
        "masked scores are 0: a score of 0 is an ordinary score that softmax still gives weight to; set "
        "the masked entries to -inf (e.g. np.where(mask, scores, -np.inf))",
    ),
}
# Where the mask and the softmax go: knobs of ``probs``, hence of ``attention`` too.
WEIGHTS = {
    "mask-after-softmax": (
        {"mask": "after"},
        "the mask is applied after the softmax: the future keys keep their share of the softmax's "
        "denominator and each row of weights sums to less than 1; mask the scores (-inf), then take the "
        "softmax",
    ),
    "no-mask": (
        {"mask": "none"},
        "there is no causal mask: every query attends to future keys too; set the scores of keys j > i "
        "to -inf before the softmax",
    ),
    "softmax-queries": (
        {"axis": -2},
        "the softmax runs over queries (axis=-2): each query's weights over the keys must sum to 1, so "
        "take it over the last axis (keys), axis=-1",
    ),
}
# How the weights meet the values: a knob of ``attention``.
WEIGHTS_TRANSPOSED = {
    "weights-transposed": (
        {"weights_transposed": True},
        "you multiplied the values by the transposed weights: row i of the weights (query i) mixes the "
        "value rows, so the output is weights @ v",
    ),
}
# LayerNorm: knobs of ``layer_norm``.
LAYER_NORM = {
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
    "no-centre": (
        {"centre": False},
        "the mean is not subtracted: that is RMSNorm; LayerNorm centres each row first, then divides by "
        "the standard deviation",
    ),
}
# Heads: knobs of ``split`` and ``merge``, through ``qkv``, ``multi_head_attention`` and
# ``attention_output``.
SPLIT = {
    "split-reshape": (
        {"split_mode": "reshape"},
        "the heads are split with a plain reshape to (n_head, T, d_head), which hands each head whole "
        "tokens: reshape to (T, n_head, d_head), then swap the T and head axes",
    ),
    "interleaved": (
        {"split_mode": "interleaved"},
        "the features are dealt out to the heads in turn (a reshape to (T, d_head, n_head)): head h owns "
        "the consecutive features h*d_head .. (h+1)*d_head - 1",
    ),
}
MERGE = {
    "merge-reshape": (
        {"merge_mode": "reshape"},
        "the heads are merged with a plain reshape of (n_head, T, d_head): swap the head and T axes "
        "first, so each token's row holds head 0's features, then head 1's",
    ),
    "merge-interleaved": (
        {"merge_mode": "interleaved"},
        "the heads' features are interleaved: the merged vector holds all of head 0's d_head features "
        "first, then head 1's; put the axes in the order (T, n_head, d_head) before reshaping",
    ),
}
# The MLP's activation: knobs of ``mlp`` and ``toy_mlp``.
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
    "gelu-constant": ({"act": "constant"}, "in the GELU, the constant inside the tanh is sqrt(2/pi), not sqrt(pi/2)"),
    "gelu-sigmoid": (
        {"act": "sigmoid"},
        "the activation is the sigmoid approximation h * sigmoid(1.702 h): GPT-2 uses the tanh form of GELU",
    ),
    "silu": ({"act": "silu"}, "the activation is SiLU, h * sigmoid(h) (Llama's): GPT-2's MLP uses GELU, the tanh form"),
    "no-bias": ({"bias": False}, "the biases are missing: both layers are affine, h @ w + b"),
}
# The block's wiring: knobs of ``block`` (and of chapter 5's whole forward pass).
BLOCK = {
    "post-norm": (
        {"mode": "post-norm"},
        "this is a post-norm block (norm after adding, as in the 2017 Transformer): GPT-2 is pre-norm, "
        "x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), and the stream itself is never normalised",
    ),
    "no-first-residual": (
        {"mode": "no-first-residual"},
        "the first residual connection is missing: add the attention output to the stream, "
        "x + attn(ln_1(x)), instead of replacing the stream with it",
    ),
    "no-second-residual": (
        {"mode": "no-second-residual"},
        "the second residual connection is missing: return resid_mid + mlp(ln_2(resid_mid)), not the "
        "MLP's output alone",
    ),
    "no-residuals": (
        {"mode": "no-residuals"},
        "both residual connections are missing: each sublayer's output is added to the stream, "
        "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
    ),
    "same-norm": (
        {"mode": "same-norm"},
        "the second norm uses ln_1's gain and bias: the MLP's norm has its own, params['ln_2']",
    ),
    "normed-residual": (
        {"mode": "normed-residual"},
        "you added the sublayer's output to the normalised stream: the residual adds to the raw stream "
        "x, x + attn(ln_1(x)); the norm only feeds the sublayer",
    ),
    "parallel": (
        {"mode": "parallel"},
        "the MLP reads the block's input instead of the stream after attention (a 'parallel' block, as "
        "in GPT-J): GPT-2's MLP reads resid_mid = x + attn(ln_1(x))",
    ),
    "swapped": (
        {"mode": "swapped"},
        "the sublayers are in the wrong order: attention (with ln_1) comes first, then the MLP (with ln_2)",
    ),
    "no-mask": (
        {"mask": False},
        "the first position's output depends on later tokens: the causal mask is missing in attention",
    ),
}
# The loss: knobs of ``nll``.
LOSS = {
    "sum": ({"reduce": "sum"}, "you summed the losses: the loss is the MEAN of -log p(target) over the predicted positions"),
    "bits": ({"base": "2"}, "you measured in bits (log base 2): the loss is in nats, with the natural log (np.log)"),
    "per-position": ({"reduce": "none"}, "you returned one loss per position: return their mean, a single number"),
    "sign": ({"sign": -1.0}, "the loss is negative: cross-entropy is MINUS the mean log-probability of the targets"),
    "probabilities": (
        {"normalise": "probabilities"},
        "you averaged probabilities: take the log-probabilities (a log-softmax) of the targets",
    ),
    "raw-logits": (
        {"normalise": "none"},
        "you used the logits themselves: turn each row into log-probabilities first (log-softmax: "
        "logits - max - log(sum(exp(logits - max))))",
    ),
    "softmax-positions": (
        {"axis": -2},
        "the softmax runs over positions (axis -2): each position's distribution is over the vocabulary, "
        "the last axis",
    ),
}
