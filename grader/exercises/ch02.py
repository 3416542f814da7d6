"""Chapter 2, the transformer block: norms, attention, the MLP, the block, and the modern variants.

Station names are ``lib``'s trace names (see ``lib/model.py``) without the ``h.{i}.`` prefix of
the block: ``ln_1``, ``attn.q``, ``attn.probs``, ``attn.heads``, ``attn.merged``, ``attn.out``,
``resid_mid``, ``ln_2``, ``mlp.pre_act``, ``mlp.post_act``, ``mlp.out``, ``resid_post``.
"""

import math

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, Part, choice, rng

ASSIGNMENT = "02-transformer-block"


def _normal(g, *shape, dtype=np.float32, scale=1.0, loc=0.0):
    return (loc + scale * g.standard_normal(shape)).astype(dtype)


def _lead(x):
    """``x`` with a batch axis (lib's attention wants (B, T, d)), and a function that undoes it."""
    if x.ndim == 2:
        return x[None], lambda y: y[0]
    return x, lambda y: y


# ---- LayerNorm ---------------------------------------------------------------------------------


def _ln_cases():
    g0, g1, g2, g3 = rng(200), rng(201), rng(202), rng(203)
    return [
        Case(
            "small",
            {
                "x": _normal(g0, 5, 8, loc=1.0, scale=2.0),
                "g": _normal(g0, 8, loc=1.0, scale=0.2),
                "b": _normal(g0, 8, scale=0.2),
            },
        ),
        Case(
            "quiet",
            {
                "x": _normal(g1, 4, 8, dtype=np.float64, scale=1e-3),
                "g": _normal(g1, 8, dtype=np.float64, loc=1.0, scale=0.2),
                "b": _normal(g1, 8, dtype=np.float64, scale=0.2),
            },
        ),
        Case(
            "batch-eps",
            {
                "x": _normal(g2, 2, 5, 16, scale=0.1),
                "g": _normal(g2, 16, loc=1.0, scale=0.2),
                "b": _normal(g2, 16, scale=0.2),
                "eps": 1e-2,
            },
            hidden=True,
            describe="a batch (2, 5, 16) with eps=1e-2 passed in",
        ),
        Case(
            "wide64",
            {
                "x": _normal(g3, 3, 64, dtype=np.float64, loc=-2.0, scale=3.0),
                "g": _normal(g3, 64, dtype=np.float64, loc=1.0, scale=0.2),
                "b": _normal(g3, 64, dtype=np.float64, scale=0.2),
            },
            hidden=True,
            describe="3 rows of width 64, float64",
        ),
    ]


def _ln_variant(x, g, b, eps=1e-5, *, axis=-1, ddof=0, eps_where="inside", affine=True):
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    if eps_where == "inside":
        y = (x - mean) / np.sqrt(var + eps)
    elif eps_where == "outside":
        y = (x - mean) / (np.sqrt(var) + eps)
    else:
        y = (x - mean) / np.sqrt(var)
    return (y * g + b if affine else y).astype(x.dtype)


LAYER_NORM = Exercise(
    name="layer_norm",
    cases=_ln_cases,
    reference=lambda x, g, b, eps=1e-5: lib.layer_norm(x, g, b, eps),
    mistakes=(
        Mistake(
            "eps-outside",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, eps_where="outside"),
            "epsilon is outside the square root: divide by sqrt(var + eps), not sqrt(var) + eps "
            "(it only shows when the variance is tiny, as in this case)",
        ),
        Mistake(
            "no-eps",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, eps_where="none"),
            "epsilon is missing: divide by sqrt(var + eps); without it a row with tiny variance blows up",
        ),
        Mistake(
            "unbiased",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, ddof=1),
            "you used the unbiased variance (dividing by d - 1, ddof=1): LayerNorm divides by d "
            "(np.var's default ddof=0)",
        ),
        Mistake(
            "wrong-axis",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, axis=0),
            "you normalised over the wrong axis (axis 0, across tokens or the batch): each token's "
            "vector is normalised on its own, over its d features, the last axis (axis=-1, keepdims=True)",
        ),
        Mistake(
            "all-axes",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, axis=None),
            "you took one mean and variance over the whole array: compute them per token, over the "
            "last axis (axis=-1, keepdims=True)",
        ),
        Mistake(
            "no-affine",
            lambda x, g, b, eps=1e-5: _ln_variant(x, g, b, eps, affine=False),
            "the normalisation is right but the gain and bias are missing: multiply by g, then add b",
        ),
    ),
)

# ---- scores: scaled and causally masked ---------------------------------------------------------


def _qk_cases(seed, specs):
    cases = []
    for i, (name, lead, T, d_head, dtype, hidden, describe) in enumerate(specs):
        g = rng(seed + i)
        cases.append(
            Case(
                name,
                {
                    "q": _normal(g, *lead, T, d_head, dtype=dtype),
                    "k": _normal(g, *lead, T, d_head, dtype=dtype),
                    "v": _normal(g, *lead, T, d_head, dtype=dtype),
                },
                hidden,
                describe,
            )
        )
    return cases


_QK_SPECS = [
    ("one-head", (), 5, 4, np.float32, False, ""),
    ("two-heads", (2,), 5, 4, np.float32, False, ""),
    ("batch-heads64", (2, 3), 7, 8, np.float64, True, "batch 2, 3 heads, T=7, d_head=8, float64"),
    ("long", (1,), 9, 16, np.float32, True, "one head, T=9, d_head=16"),
]


def _score_cases():
    return [
        Case(c.name, {"q": c.inputs["q"], "k": c.inputs["k"]}, c.hidden, c.describe)
        for c in _qk_cases(210, _QK_SPECS)
    ]


def _scores(q, k, *, scale="sqrt", diagonal=0, fill="-inf", upper=False, inverted=False):
    raw = q @ k.swapaxes(-1, -2)  # [..., T, S]
    d_head = q.shape[-1]
    scaled = {"sqrt": raw / math.sqrt(d_head), "none": raw, "d": raw / d_head}[scale]
    T = q.shape[-2]
    mask = np.tri(T, T, k=diagonal, dtype=bool)
    if upper:
        mask = mask.T
    if inverted:
        mask = ~mask
    if fill == "zero":
        return (scaled * mask).astype(q.dtype)
    value = {"big": -1e9, "+inf": np.inf}.get(fill, -np.inf)
    return np.where(mask, scaled, value).astype(q.dtype)


def _masked_scores_ref(q, k):
    T, S = q.shape[-2], k.shape[-2]
    scaled = lib.attention_scores(q, k) / math.sqrt(q.shape[-1])
    return np.where(lib.causal_mask(T, S), scaled, q.dtype.type(-np.inf))


MASKED_SCORES = Exercise(
    name="masked_scores",
    cases=_score_cases,
    reference=_masked_scores_ref,
    mistakes=(
        Mistake(
            "no-scale",
            lambda q, k: _scores(q, k, scale="none"),
            "the scores are not scaled: divide q @ k^T by sqrt(d_head) (q.shape[-1]) before masking",
        ),
        Mistake(
            "scale-d",
            lambda q, k: _scores(q, k, scale="d"),
            "you divided by d_head: the scale is 1 / sqrt(d_head) (math.sqrt(q.shape[-1]))",
        ),
        Mistake(
            "no-self",
            lambda q, k: _scores(q, k, diagonal=-1),
            "the mask's diagonal is off by one: a token must see itself (key j = query i is allowed); "
            "only keys j > i are masked",
        ),
        Mistake(
            "one-future",
            lambda q, k: _scores(q, k, diagonal=1),
            "the mask's diagonal is off by one: each query also sees the next token; mask every key "
            "j > i (np.triu(..., k=1) marks exactly those)",
        ),
        Mistake(
            "transposed-mask",
            lambda q, k: _scores(q, k, upper=True),
            "the mask is transposed: query i (a row) may see keys j <= i (the lower triangle); you "
            "kept the upper triangle",
        ),
        Mistake(
            "inverted-mask",
            lambda q, k: _scores(q, k, inverted=True),
            "the mask is inverted: you kept the future keys (j > i) and hid the allowed ones; "
            "keep the scores where j <= i and put -inf where j > i",
        ),
        Mistake(
            "plus-inf",
            lambda q, k: _scores(q, k, fill="+inf"),
            "the masked entries are +inf: softmax would give them ALL the weight; use -np.inf",
        ),
        Mistake(
            "zero-fill",
            lambda q, k: _scores(q, k, fill="zero"),
            "masked scores are 0: a score of 0 is an ordinary score that softmax still gives weight to; "
            "set the masked entries to -inf (e.g. np.where(mask, scores, -np.inf))",
        ),
        Mistake(
            "big-negative",
            lambda q, k: _scores(q, k, fill="big"),
            "you filled the masked entries with a large negative number: softmax would be nearly "
            "right, but this function must return exactly -inf there (-np.inf)",
        ),
    ),
)

# ---- single-head attention ---------------------------------------------------------------------


def _attn(q, k, v, *, scale="sqrt", mask="before", axis=-1, diagonal=0):
    scores = _scores(q, k, scale=scale, diagonal=diagonal) if mask == "before" else None
    if mask in ("after", "none"):
        raw = q @ k.swapaxes(-1, -2)
        scores = raw / math.sqrt(q.shape[-1])
    probs = lib.softmax(scores, axis=axis)
    if mask == "after":
        probs = probs * np.tri(q.shape[-2], k.shape[-2], dtype=bool)
    return (probs @ v).astype(q.dtype)


def _attention_ref(q, k, v):
    return lib.scaled_dot_product_attention(q, k, v, lib.causal_mask(q.shape[-2], k.shape[-2]))


def _attention_stations(inputs):
    q, k = inputs["q"], inputs["k"]
    masked = _masked_scores_ref(q, k)
    return {"attn.scores_masked": masked, "attn.probs": lib.softmax(masked, axis=-1)}


ATTENTION = Exercise(
    name="attention",
    cases=lambda: _qk_cases(220, _QK_SPECS),
    reference=_attention_ref,
    stations=_attention_stations,
    parts=(Part("attn.scores_masked", "masked_scores", lambda inp, st: {"q": inp["q"], "k": inp["k"]}),),
    mistakes=(
        Mistake(
            "mask-after-softmax",
            lambda q, k, v: _attn(q, k, v, mask="after"),
            "the mask is applied after the softmax: the future keys then keep their share of the "
            "softmax's denominator and each row of weights sums to less than 1; mask the scores "
            "(-inf), then take the softmax",
        ),
        Mistake(
            "no-mask",
            lambda q, k, v: _attn(q, k, v, mask="none"),
            "there is no causal mask: every query attends to future keys too; use your masked_scores",
        ),
        Mistake(
            "softmax-queries",
            lambda q, k, v: _attn(q, k, v, axis=-2),
            "the softmax runs over queries (axis=-2): each query's weights over the keys must sum to 1, "
            "so take it over the last axis (keys), axis=-1",
        ),
        Mistake(
            "no-scale",
            lambda q, k, v: _attn(q, k, v, scale="none"),
            "the scores are not scaled: divide by sqrt(d_head) before the softmax",
        ),
        Mistake(
            "one-future",
            lambda q, k, v: _attn(q, k, v, diagonal=1),
            "the mask lets each query see one future token: only keys j <= i are allowed",
        ),
    ),
)

# ---- splitting and merging heads ---------------------------------------------------------------


def _split(x, n_head, mode="ok"):
    *lead, T, d = x.shape
    d_head = d // n_head
    if mode == "ok":
        return x.reshape(*lead, T, n_head, d_head).swapaxes(-2, -3)
    if mode == "reshape":
        return x.reshape(*lead, n_head, T, d_head)
    if mode == "interleaved":
        return np.moveaxis(x.reshape(*lead, T, d_head, n_head), -1, -3)
    if mode == "no-transpose":
        return x.reshape(*lead, T, n_head, d_head)
    raise ValueError(mode)


def _merge(x, mode="ok"):
    *lead, H, T, d_head = x.shape
    if mode == "ok":
        return x.swapaxes(-2, -3).reshape(*lead, T, H * d_head)
    if mode == "reshape":
        return x.reshape(*lead, T, H * d_head)
    if mode == "interleaved":
        return np.moveaxis(x, -3, -1).reshape(*lead, T, d_head * H)
    raise ValueError(mode)


def _split_cases():
    g0, g1, g2 = rng(230), rng(231), rng(232)
    return [
        Case("two-heads", {"x": _normal(g0, 5, 8), "n_head": 2}),
        Case(
            "batch-three64",
            {"x": _normal(g1, 2, 6, 12, dtype=np.float64), "n_head": 3},
            hidden=True,
            describe="a batch (2, 6, 12) into 3 heads, float64",
        ),
        Case(
            "four",
            {"x": _normal(g2, 7, 16), "n_head": 4},
            hidden=True,
            describe="(7, 16) into 4 heads",
        ),
    ]


def _merge_cases():
    g0, g1, g2 = rng(240), rng(241), rng(242)
    return [
        Case("two-heads", {"x": _normal(g0, 2, 5, 4)}),
        Case(
            "batch-three64",
            {"x": _normal(g1, 2, 3, 6, 4, dtype=np.float64)},
            hidden=True,
            describe="batch 2, 3 heads of (6, 4), float64",
        ),
        Case("four", {"x": _normal(g2, 4, 7, 2)}, hidden=True, describe="4 heads of (7, 2)"),
    ]


SPLIT_HEADS = Exercise(
    name="split_heads",
    cases=_split_cases,
    reference=lambda x, n_head: lib.split_heads(x, n_head),
    mistakes=(
        Mistake(
            "reshape-only",
            lambda x, n_head: _split(x, n_head, "reshape"),
            "you reshaped straight to (n_head, T, d_head): that cuts the (T, d) array in memory order, "
            "so a 'head' gets whole tokens, not a slice of features. Reshape to (T, n_head, d_head), "
            "then swap the T and head axes",
        ),
        Mistake(
            "interleaved",
            lambda x, n_head: _split(x, n_head, "interleaved"),
            "the features are dealt out to the heads in the wrong order (a reshape to (T, d_head, "
            "n_head)): head h owns the consecutive features h*d_head .. (h+1)*d_head - 1, so reshape "
            "to (T, n_head, d_head)",
        ),
        Mistake(
            "no-transpose",
            lambda x, n_head: _split(x, n_head, "no-transpose"),
            "the head axis is after T: after reshaping to (..., T, n_head, d_head), swap the last "
            "two-but-one axes so the result is (..., n_head, T, d_head)",
        ),
    ),
    error_hints={"cannot reshape": "reshape (..., T, d) to (..., T, n_head, d // n_head) first"},
)

MERGE_HEADS = Exercise(
    name="merge_heads",
    cases=_merge_cases,
    reference=lambda x: lib.merge_heads(x),
    mistakes=(
        Mistake(
            "reshape-only",
            lambda x: _merge(x, "reshape"),
            "you reshaped (n_head, T, d_head) straight to (T, d): first move the head axis next to "
            "d_head (swap the head and T axes), then reshape",
        ),
        Mistake(
            "interleaved",
            lambda x: _merge(x, "interleaved"),
            "the heads' features are interleaved: the merged vector holds all of head 0's d_head "
            "features first, then head 1's; put the axes in the order (T, n_head, d_head) before reshaping",
        ),
    ),
)

# ---- multi-head attention ----------------------------------------------------------------------


def _attn_params(g, d, dtype):
    return {
        "c_attn": {
            "w": _normal(g, d, 3 * d, dtype=dtype, scale=d**-0.5),
            "b": _normal(g, 3 * d, dtype=dtype, scale=0.1),
        },
        "c_proj": {
            "w": _normal(g, d, d, dtype=dtype, scale=d**-0.5),
            "b": _normal(g, d, dtype=dtype, scale=0.1),
        },
    }


def _mha_cases():
    specs = [
        ("single", (), 5, 8, 2, np.float32, False, ""),
        ("batch", (2,), 5, 8, 2, np.float32, False, ""),
        ("three64", (2,), 7, 12, 3, np.float64, True, "a batch of 2 sequences, T=7, d=12, 3 heads, float64"),
        ("four", (), 6, 16, 4, np.float32, True, "one sequence, T=6, d=16, 4 heads"),
        ("tiny-heads", (1,), 4, 8, 4, np.float64, True, "d=8 in 4 heads of 2, float64"),
    ]
    cases = []
    for i, (name, lead, T, d, H, dtype, hidden, describe) in enumerate(specs):
        g = rng(250 + i)
        x = _normal(g, *lead, T, d, dtype=dtype)
        cases.append(Case(name, {"x": x, "params": _attn_params(g, d, dtype), "n_head": H}, hidden, describe))
    return cases


def _mha_ref(x, params, n_head):
    xb, undo = _lead(x)
    return undo(lib.multi_head_attention(xb, params, n_head))


def _mha_stations(inputs):
    xb, undo = _lead(inputs["x"])
    trace = {}
    lib.multi_head_attention(xb, inputs["params"], inputs["n_head"], trace=trace, prefix="attn")
    names = ("attn.q", "attn.k", "attn.v", "attn.probs", "attn.heads", "attn.merged", "attn.out")
    return {name: undo(trace[name]) for name in names}


def _qkv(x, params, bias=True):
    c = params["c_attn"]
    qkv = x @ c["w"] + (c["b"] if bias else 0)
    return np.split(qkv, 3, axis=-1)


def _mha_variant(
    x, params, n_head, *, split="ok", merge="ok", scale="sqrt", mask="before", axis=-1, proj=True, bias=True
):
    q, k, v = (_split(t, n_head, split) for t in _qkv(x, params, bias))
    if scale == "d_model":
        raw = q @ k.swapaxes(-1, -2) / math.sqrt(x.shape[-1])
        scores = np.where(np.tri(q.shape[-2], dtype=bool), raw, -np.inf)
        heads = lib.softmax(scores.astype(x.dtype), axis=-1) @ v
    else:
        heads = _attn(q, k, v, scale=scale, mask=mask, axis=axis)
    merged = _merge(heads, merge)
    if not proj:
        return merged.astype(x.dtype)
    c = params["c_proj"]
    return (merged @ c["w"] + (c["b"] if bias else 0)).astype(x.dtype)


MULTI_HEAD_ATTENTION = Exercise(
    name="multi_head_attention",
    cases=_mha_cases,
    reference=_mha_ref,
    stations=_mha_stations,
    parts=(
        Part(
            "attn.q",
            "split_heads",
            lambda inp, st: {"x": _qkv(inp["x"], inp["params"])[0], "n_head": inp["n_head"]},
        ),
        Part(
            "attn.heads",
            "attention",
            lambda inp, st: {"q": st["attn.q"], "k": st["attn.k"], "v": st["attn.v"]},
        ),
        Part("attn.merged", "merge_heads", lambda inp, st: {"x": st["attn.heads"]}),
    ),
    mistakes=(
        Mistake(
            "no-projection",
            lambda x, params, n_head: _mha_variant(x, params, n_head, proj=False),
            "the output projection is missing: after merging the heads, apply c_proj "
            "(merged @ params['c_proj']['w'] + params['c_proj']['b']); it is what mixes the heads",
        ),
        Mistake(
            "split-reshape",
            lambda x, params, n_head: _mha_variant(x, params, n_head, split="reshape"),
            "the heads are split with a plain reshape to (n_head, T, d_head): reshape to (T, n_head, "
            "d_head) and swap the T and head axes (your split_heads)",
        ),
        Mistake(
            "merge-reshape",
            lambda x, params, n_head: _mha_variant(x, params, n_head, merge="reshape"),
            "the heads are merged with a plain reshape of (n_head, T, d_head): swap the head and T "
            "axes first, then reshape to (T, d) (your merge_heads)",
        ),
        Mistake(
            "both-reshape",
            lambda x, params, n_head: _mha_variant(x, params, n_head, split="reshape", merge="reshape"),
            "the heads are split and merged with plain reshapes: the two undo each other, but in "
            "between each 'head' held whole tokens instead of a slice of every token's features. "
            "Swap the T and head axes in split_heads and merge_heads",
        ),
        Mistake(
            "interleaved",
            lambda x, params, n_head: _mha_variant(
                x, params, n_head, split="interleaved", merge="interleaved"
            ),
            "features are dealt to the heads in the wrong order (a reshape to (T, d_head, n_head)): "
            "head h owns the consecutive features h*d_head .. (h+1)*d_head - 1",
        ),
        Mistake(
            "scale-d_model",
            lambda x, params, n_head: _mha_variant(x, params, n_head, scale="d_model"),
            "the scores are divided by sqrt(d_model): each head's scores are dot products of length "
            "d_head, so divide by sqrt(d_head) = sqrt(d_model / n_head)",
        ),
        Mistake(
            "no-scale",
            lambda x, params, n_head: _mha_variant(x, params, n_head, scale="none"),
            "the scores are not scaled: divide them by sqrt(d_head) before the softmax",
        ),
        Mistake(
            "mask-after-softmax",
            lambda x, params, n_head: _mha_variant(x, params, n_head, mask="after"),
            "the mask is applied after the softmax: mask the scores with -inf, then take the softmax",
        ),
        Mistake(
            "no-mask",
            lambda x, params, n_head: _mha_variant(x, params, n_head, mask="none"),
            "there is no causal mask: each token attends to later tokens too",
        ),
        Mistake(
            "softmax-queries",
            lambda x, params, n_head: _mha_variant(x, params, n_head, axis=-2),
            "the softmax runs over queries (axis=-2): take it over the keys, the last axis",
        ),
        Mistake(
            "no-bias",
            lambda x, params, n_head: _mha_variant(x, params, n_head, bias=False),
            "the biases are missing: c_attn and c_proj are affine, x @ w + b",
        ),
    ),
    error_hints={
        "cannot reshape": "split q, k and v first (three d-wide column blocks of x @ w + b), then split each "
        "into heads of d // n_head features",
        "matmul": "check the shapes: q, k, v should each be (..., n_head, T, d_head) before attention",
    },
)

# ---- GELU and the MLP --------------------------------------------------------------------------


def _gelu_cases():
    g = rng(260)
    return [
        Case("line", {"x": np.linspace(-4, 4, 17, dtype=np.float32)}),
        Case("grid", {"x": _normal(g, 3, 5, scale=2.0)}),
        Case(
            "wide64",
            {"x": _normal(g, 2, 4, 8, dtype=np.float64, scale=3.0)},
            hidden=True,
            describe="a (2, 4, 8) float64 array",
        ),
    ]


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu_tanh(x, cube=3, c=_SQRT_2_OVER_PI):
    return (0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**cube)))).astype(x.dtype)


GELU = Exercise(
    name="gelu",
    cases=_gelu_cases,
    reference=lambda x: lib.gelu(x),
    mistakes=(
        Mistake(
            "exact",
            lambda x: lib.gelu_exact(x),
            "this is the exact GELU (with erf): GPT-2 uses the tanh approximation "
            "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        ),
        Mistake(
            "relu", lambda x: np.maximum(x, 0), "this is ReLU: GELU is x times a smooth gate, not max(x, 0)"
        ),
        Mistake(
            "square",
            lambda x: _gelu_tanh(x, cube=2),
            "the correction term is 0.044715 x^3 (a cube), not x^2",
        ),
        Mistake(
            "constant",
            lambda x: _gelu_tanh(x, c=math.sqrt(math.pi / 2)),
            "the constant inside the tanh is sqrt(2/pi), not sqrt(pi/2)",
        ),
        Mistake(
            "sigmoid",
            lambda x: (x / (1 + np.exp(-1.702 * x))).astype(x.dtype),
            "this is the sigmoid approximation x * sigmoid(1.702 x): use the tanh form",
        ),
    ),
)


def _mlp_params(g, d, dtype, d_ff=None):
    d_ff = 4 * d if d_ff is None else d_ff
    return {
        "c_fc": {
            "w": _normal(g, d, d_ff, dtype=dtype, scale=d**-0.5),
            "b": _normal(g, d_ff, dtype=dtype, scale=0.1),
        },
        "c_proj": {
            "w": _normal(g, d_ff, d, dtype=dtype, scale=d_ff**-0.5),
            "b": _normal(g, d, dtype=dtype, scale=0.1),
        },
    }


def _mlp_cases():
    specs = [
        ("single", (5,), 8, np.float32, False, ""),
        ("batch64", (2, 6), 12, np.float64, True, "a batch (2, 6, 12), float64"),
        ("wide", (3,), 16, np.float32, True, "(3, 16)"),
    ]
    cases = []
    for i, (name, lead, d, dtype, hidden, describe) in enumerate(specs):
        g = rng(270 + i)
        cases.append(
            Case(
                name,
                {"x": _normal(g, *lead, d, dtype=dtype), "params": _mlp_params(g, d, dtype)},
                hidden,
                describe,
            )
        )
    return cases


def _mlp_variant(x, params, act=lib.gelu, bias=True):
    fc, proj = params["c_fc"], params["c_proj"]
    h = act(x @ fc["w"] + (fc["b"] if bias else 0))
    return (h @ proj["w"] + (proj["b"] if bias else 0)).astype(x.dtype)


def _mlp_stations(inputs):
    trace = {}
    lib.mlp(inputs["x"], inputs["params"], trace=trace, prefix="mlp")
    return trace


MLP = Exercise(
    name="mlp",
    cases=_mlp_cases,
    reference=lambda x, params: lib.mlp(x, params),
    stations=_mlp_stations,
    parts=(Part("mlp.post_act", "gelu", lambda inp, st: {"x": st["mlp.pre_act"]}),),
    mistakes=(
        Mistake(
            "relu",
            lambda x, params: _mlp_variant(x, params, act=lambda h: np.maximum(h, 0)),
            "the activation is ReLU: GPT-2's MLP uses GELU (your gelu)",
        ),
        Mistake(
            "exact",
            lambda x, params: _mlp_variant(x, params, act=lib.gelu_exact),
            "the activation is the exact (erf) GELU: use the tanh approximation (your gelu)",
        ),
        Mistake(
            "no-activation",
            lambda x, params: _mlp_variant(x, params, act=lambda h: h),
            "there is no activation between the two layers: apply gelu to the d_ff-wide hidden layer",
        ),
        Mistake(
            "no-bias",
            lambda x, params: _mlp_variant(x, params, bias=False),
            "the biases are missing: both layers are affine, h @ w + b",
        ),
    ),
)

# ---- the block ---------------------------------------------------------------------------------


def _config(d, n_head):
    return lib.Config(vocab_size=1, n_ctx=64, d_model=d, n_layer=1, n_head=n_head)


def _ln_params(g, d, dtype):
    return {"g": _normal(g, d, dtype=dtype, loc=1.0, scale=0.2), "b": _normal(g, d, dtype=dtype, scale=0.2)}


def _block_cases():
    specs = [
        ("single", (), 5, 8, 2, np.float32, False, ""),
        ("batch", (2,), 5, 8, 2, np.float32, False, ""),
        ("three64", (2,), 6, 12, 3, np.float64, True, "a batch of 2, T=6, d=12, 3 heads, float64"),
        ("four", (), 7, 16, 4, np.float32, True, "T=7, d=16, 4 heads"),
    ]
    cases = []
    for i, (name, lead, T, d, H, dtype, hidden, describe) in enumerate(specs):
        g = rng(280 + i)
        x = _normal(g, *lead, T, d, dtype=dtype, scale=2.0)
        params = {
            "ln_1": _ln_params(g, d, dtype),
            "attn": _attn_params(g, d, dtype),
            "ln_2": _ln_params(g, d, dtype),
            "mlp": _mlp_params(g, d, dtype),
        }
        cases.append(Case(name, {"x": x, "params": params, "n_head": H}, hidden, describe))
    return cases


def _block_ref(x, params, n_head):
    xb, undo = _lead(x)
    return undo(lib.block(xb, params, _config(x.shape[-1], n_head)))


def _block_stations(inputs):
    x = inputs["x"]
    xb, undo = _lead(x)
    trace = {}
    lib.block(xb, inputs["params"], _config(x.shape[-1], inputs["n_head"]), trace=trace, prefix="h.0")
    names = ("ln_1", "attn.out", "resid_mid", "ln_2", "mlp.out", "resid_post")
    return {name: undo(trace[f"h.0.{name}"]) for name in names}


def _block_variant(x, params, n_head, mode):
    def ln(t, p):
        return lib.layer_norm(t, p["g"], p["b"])

    def attn(t):
        return _mha_ref(t, params["attn"], n_head)

    def ff(t):
        return lib.mlp(t, params["mlp"])

    if mode == "post-norm":
        mid = ln(x + attn(x), params["ln_1"])
        return ln(mid + ff(mid), params["ln_2"])
    if mode == "no-first-residual":
        mid = attn(ln(x, params["ln_1"]))
        return mid + ff(ln(mid, params["ln_2"]))
    mid = x + attn(ln(x, params["ln_1"]))
    if mode == "no-second-residual":
        return ff(ln(mid, params["ln_2"]))
    if mode == "no-residuals":
        mid = attn(ln(x, params["ln_1"]))
        return ff(ln(mid, params["ln_2"]))
    if mode == "same-norm":
        return mid + ff(ln(mid, params["ln_1"]))
    if mode == "normed-residual":
        h = ln(x, params["ln_1"])
        mid = h + attn(h)
        h2 = ln(mid, params["ln_2"])
        return h2 + ff(h2)
    if mode == "parallel":
        return mid + ff(ln(x, params["ln_2"]))
    raise ValueError(mode)


def _block_mistake(mode, hint):
    return Mistake(mode, lambda x, params, n_head: _block_variant(x, params, n_head, mode), hint)


BLOCK = Exercise(
    name="block",
    cases=_block_cases,
    reference=_block_ref,
    stations=_block_stations,
    parts=(
        Part("ln_1", "layer_norm", lambda inp, st: {"x": inp["x"], **inp["params"]["ln_1"]}),
        Part(
            "attn.out",
            "multi_head_attention",
            lambda inp, st: {"x": st["ln_1"], "params": inp["params"]["attn"], "n_head": inp["n_head"]},
        ),
        Part("ln_2", "layer_norm", lambda inp, st: {"x": st["resid_mid"], **inp["params"]["ln_2"]}),
        Part("mlp.out", "mlp", lambda inp, st: {"x": st["ln_2"], "params": inp["params"]["mlp"]}),
    ),
    mistakes=(
        _block_mistake(
            "post-norm",
            "this is a post-norm block (norm after adding, as in the 2017 Transformer): GPT-2 is pre-norm, "
            "x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), and the stream itself is never normalised",
        ),
        _block_mistake(
            "no-first-residual",
            "the first residual connection is missing: add the attention output to the stream, "
            "x + attn(ln_1(x)), instead of replacing the stream with it",
        ),
        _block_mistake(
            "no-second-residual",
            "the second residual connection is missing: return resid_mid + mlp(ln_2(resid_mid)), "
            "not the MLP's output alone",
        ),
        _block_mistake(
            "no-residuals",
            "both residual connections are missing: each sublayer's output is added to the stream, "
            "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
        ),
        _block_mistake(
            "same-norm",
            "the second norm uses ln_1's gain and bias: the MLP's norm has its own, params['ln_2']",
        ),
        _block_mistake(
            "normed-residual",
            "you added the sublayer's output to the normalised stream: the residual adds to the raw "
            "stream x, x + attn(ln_1(x)); the norm only feeds the sublayer",
        ),
        _block_mistake(
            "parallel",
            "the MLP reads the block's input instead of the stream after attention (a 'parallel' "
            "block, as in GPT-J): GPT-2's MLP reads resid_mid = x + attn(ln_1(x))",
        ),
    ),
)

# ---- the modern block: RMSNorm, RoPE, SwiGLU ----------------------------------------------------


def _rms_cases():
    g0, g1, g2 = rng(290), rng(291), rng(292)
    return [
        Case("small", {"x": _normal(g0, 5, 8, loc=1.0, scale=2.0), "g": _normal(g0, 8, loc=1.0, scale=0.2)}),
        Case(
            "quiet",
            {
                "x": _normal(g1, 4, 8, dtype=np.float64, scale=1e-3),
                "g": _normal(g1, 8, dtype=np.float64, loc=1.0, scale=0.2),
            },
        ),
        Case(
            "batch-eps",
            {
                "x": _normal(g2, 2, 5, 16, scale=0.1, loc=0.5),
                "g": _normal(g2, 16, loc=1.0, scale=0.2),
                "eps": 1e-2,
            },
            hidden=True,
            describe="a batch (2, 5, 16) with eps=1e-2 passed in",
        ),
    ]


def _rms_variant(x, g, eps=1e-6, mode="ok"):
    if mode == "centred":
        x = x - x.mean(axis=-1, keepdims=True)
    ms = (x * x).sum(axis=-1, keepdims=True) if mode == "sum" else (x * x).mean(axis=-1, keepdims=True)
    if mode == "eps-outside":
        y = x / (np.sqrt(ms) + eps)
    elif mode == "no-sqrt":
        y = x / (ms + eps)
    else:
        y = x / np.sqrt(ms + eps)
    return (y if mode == "no-gain" else y * g).astype(x.dtype)


RMS_NORM = Exercise(
    name="rms_norm",
    cases=_rms_cases,
    reference=lambda x, g, eps=1e-6: lib.rms_norm(x, g, eps),
    mistakes=(
        Mistake(
            "centred",
            lambda x, g, eps=1e-6: _rms_variant(x, g, eps, "centred"),
            "you subtracted the mean: RMSNorm does not centre, it divides x by sqrt(mean(x**2) + eps)",
        ),
        Mistake(
            "eps-outside",
            lambda x, g, eps=1e-6: _rms_variant(x, g, eps, "eps-outside"),
            "epsilon is outside the square root: sqrt(mean(x**2) + eps)",
        ),
        Mistake(
            "sum",
            lambda x, g, eps=1e-6: _rms_variant(x, g, eps, "sum"),
            "you summed the squares: RMS is the root of their MEAN over the last axis",
        ),
        Mistake(
            "no-sqrt",
            lambda x, g, eps=1e-6: _rms_variant(x, g, eps, "no-sqrt"),
            "you divided by the mean square: divide by its square root",
        ),
        Mistake(
            "no-gain",
            lambda x, g, eps=1e-6: _rms_variant(x, g, eps, "no-gain"),
            "the gain is missing: multiply by g",
        ),
    ),
)


def _rope_cases():
    g0, g1, g2, g3 = rng(300), rng(301), rng(302), rng(303)
    return [
        Case("start", {"x": _normal(g0, 5, 8), "positions": np.arange(5)}),
        Case("continued", {"x": _normal(g1, 2, 5, 8), "positions": np.arange(3, 8)}),
        Case(
            "batch64",
            {"x": _normal(g2, 2, 3, 6, 16, dtype=np.float64), "positions": np.arange(10, 16)},
            hidden=True,
            describe="(batch 2, 3 heads, 6 tokens, d_head 16) at positions 10..15, float64",
        ),
        Case(
            "theta",
            {"x": _normal(g3, 7, 4), "positions": np.array([0, 2, 4, 6, 8, 10, 12]), "theta": 500.0},
            hidden=True,
            describe="7 tokens at even positions, d_head 4, theta=500 passed in",
        ),
    ]


def _rope_variant(x, positions, theta=10000.0, mode="ok"):
    d = x.shape[-1]
    j = np.arange(d // 2)
    exponent = -j / d if mode == "freq" else -2 * j / d
    if mode == "ignore-positions":
        positions = np.arange(x.shape[-2])
    angles = np.asarray(positions, dtype=np.float64)[:, None] * theta**exponent  # [T, d/2]
    sign = -1.0 if mode == "direction" else 1.0
    if mode == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        cos, sin = np.cos(angles), sign * np.sin(angles)
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x1 * sin + x2 * cos
        return out
    full = np.repeat(angles, 2, axis=-1) if mode == "repeat" else np.concatenate([angles, angles], axis=-1)
    cos, sin = np.cos(full), sign * np.sin(full)
    return (x * cos + lib.rotate_half(x) * sin).astype(x.dtype)


def _rope_mistake(mode, hint):
    return Mistake(mode, lambda x, positions, theta=10000.0: _rope_variant(x, positions, theta, mode), hint)


APPLY_ROPE = Exercise(
    name="apply_rope",
    cases=_rope_cases,
    reference=lambda x, positions, theta=10000.0: lib.apply_rope(x, positions, theta),
    mistakes=(
        _rope_mistake(
            "interleaved",
            "you paired neighbouring features (2j, 2j+1), the RoFormer paper's 'interleaved' layout: "
            "lib (like Hugging Face Llama) pairs feature j with feature j + d_head/2, the two halves",
        ),
        _rope_mistake(
            "repeat",
            "the angles are repeated element by element ([a0, a0, a1, a1, ...]), the interleaved "
            "layout's order, while the rotation pairs the halves: concatenate the angles with "
            "themselves ([a0, a1, ..., a0, a1, ...]) so features j and j + d_head/2 share angle j",
        ),
        _rope_mistake(
            "direction",
            "the rotation goes the wrong way (sin has the wrong sign): the first half becomes "
            "x1 cos - x2 sin and the second half x2 cos + x1 sin",
        ),
        _rope_mistake(
            "freq",
            "the frequencies are wrong: pair j turns at theta ** (-2j / d_head), you used -j / d_head",
        ),
        _rope_mistake(
            "ignore-positions",
            "you used positions 0..T-1 instead of the positions you were given (a continued sequence "
            "starts later)",
        ),
    ),
    error_hints={
        "broadcast": "the angles have shape (T, d_head): one row per position, one column per feature"
    },
)


def _swiglu_params(g, d, d_ff, dtype):
    return {
        "gate_proj": {"w": _normal(g, d, d_ff, dtype=dtype, scale=d**-0.5)},
        "up_proj": {"w": _normal(g, d, d_ff, dtype=dtype, scale=d**-0.5)},
        "down_proj": {"w": _normal(g, d_ff, d, dtype=dtype, scale=d_ff**-0.5)},
    }


def _swiglu_cases():
    g0, g1, g2 = rng(310), rng(311), rng(312)
    return [
        Case("single", {"x": _normal(g0, 5, 8), "params": _swiglu_params(g0, 8, 20, np.float32)}),
        Case(
            "batch64",
            {"x": _normal(g1, 2, 4, 12, dtype=np.float64), "params": _swiglu_params(g1, 12, 32, np.float64)},
            hidden=True,
            describe="a batch (2, 4, 12), d_ff=32, float64",
        ),
        Case(
            "wide",
            {"x": _normal(g2, 3, 16), "params": _swiglu_params(g2, 16, 44, np.float32)},
            hidden=True,
            describe="(3, 16), d_ff=44",
        ),
    ]


def _swiglu_variant(x, params, mode):
    gate = x @ params["gate_proj"]["w"]
    up = x @ params["up_proj"]["w"]
    if mode == "swapped":
        gate, up = up, gate
    act = {
        "gelu": lib.gelu,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "relu": lambda z: np.maximum(z, 0),
    }.get(mode, lib.silu)
    hidden = act(gate) if mode == "no-up" else act(gate) * up
    return (hidden @ params["down_proj"]["w"]).astype(x.dtype)


def _swiglu_mistake(mode, hint):
    return Mistake(mode, lambda x, params: _swiglu_variant(x, params, mode), hint)


SWIGLU = Exercise(
    name="swiglu",
    cases=_swiglu_cases,
    reference=lambda x, params: lib.swiglu(x, params),
    mistakes=(
        _swiglu_mistake(
            "swapped",
            "the SiLU is on the up branch: it goes on the gate, silu(x @ W_gate) * (x @ W_up)",
        ),
        _swiglu_mistake("gelu", "the gate uses GELU: SwiGLU's gate is SiLU, z * sigmoid(z)"),
        _swiglu_mistake(
            "sigmoid",
            "the gate is a plain sigmoid (that is the original GLU): SwiGLU uses SiLU, z * sigmoid(z)",
        ),
        _swiglu_mistake("relu", "the gate uses ReLU (that is ReGLU): SwiGLU uses SiLU, z * sigmoid(z)"),
        _swiglu_mistake(
            "no-up",
            "the up branch is missing: multiply the SiLU gate element-wise by x @ W_up before the down projection",
        ),
    ),
)

# ---- concept checks ----------------------------------------------------------------------------

Q_SCALE = choice("q_scale", ("a", "b", "c", "d"))

Q_CAUSAL = choice("q_causal", ("a", "b", "c", "d"))

Q_SKIP_BLOCK = choice("q_skip_block", ("a", "b", "c", "d"))

EXERCISES = [
    LAYER_NORM,
    MASKED_SCORES,
    ATTENTION,
    SPLIT_HEADS,
    MERGE_HEADS,
    MULTI_HEAD_ATTENTION,
    GELU,
    MLP,
    BLOCK,
    RMS_NORM,
    APPLY_ROPE,
    SWIGLU,
    Q_SCALE,
    Q_CAUSAL,
    Q_SKIP_BLOCK,
]
