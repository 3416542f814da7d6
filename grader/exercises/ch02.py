"""Chapter 2, the transformer block: norms, attention, the MLP, the block, and the modern variants.

Station names are ``lib``'s trace names (see ``lib/model.py``) without the ``h.{i}.`` prefix of
the block: ``ln_1``, ``attn.q``, ``attn.probs``, ``attn.heads``, ``attn.merged``, ``attn.out``,
``resid_mid``, ``ln_2``, ``mlp.pre_act``, ``mlp.post_act``, ``mlp.out``, ``resid_post``.
"""

import math

import numpy as np

import lib

from ..exercise import Case, Exercise, Part, choice, hidden, rng, size
from .wrong import activations, attention, block, mlp, norms, table

ASSIGNMENT = "02-transformer-block"
# The lib functions the scorer lends this chapter's students (``grader.lending``): the softmax,
# which the chapter's attention builds on. ``GRADED``: the lib functions that compute this
# chapter's exercises, which the scorer's lib must never hold.
LENDS = ("softmax",)
GRADED = (
    "layer_norm",
    "attention_scores",
    "causal_mask",
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "multi_head_attention",
    "gelu",
    "mlp",
    "block",
    "rms_norm",
    "apply_rope",
    "rope_angles",
    "swiglu",
)


def _normal(g, *shape, dtype=np.float32, scale=1.0, loc=0.0):
    return (loc + scale * g.standard_normal(shape)).astype(dtype)


def _lead(x):
    """``x`` with a batch axis (lib's attention wants (B, T, d)), and a function that undoes it."""
    if x.ndim == 2:
        return x[None], lambda y: y[0]
    return x, lambda y: y


# ---- LayerNorm ---------------------------------------------------------------------------------


def _ln_inputs(g, shape, dtype=np.float32, scale=1.0, loc=0.0, eps=None):
    inputs = {
        "x": _normal(g, *shape, dtype=dtype, loc=loc, scale=scale),
        "g": _normal(g, shape[-1], dtype=dtype, loc=1.0, scale=0.2),
        "b": _normal(g, shape[-1], dtype=dtype, scale=0.2),
    }
    return inputs if eps is None else {**inputs, "eps": eps}


QUIET = "a tiny variance, where eps matters"
FAR = "rows far from 0 with a small spread (a large mean)"


def far_from_zero(g, shape, power: int = 8) -> np.ndarray:
    """float32 rows around 2**``power`` on a grid of 1/64 (each a few steps from the next): the
    mean and every deviation from it are exact in float32 for rows of up to 16 entries, so
    every honest two-pass variance agrees with lib's, and E[x²] - E[x]² (which needs 29 bits
    here) is far off."""
    steps = g.integers(-40, 41, size=shape)
    return (2.0**power + steps / 64.0).astype(np.float32)


def _ln_visible():
    return [
        Case("small", _ln_inputs(rng(200), (5, 8), loc=1.0, scale=2.0)),
        Case("quiet", _ln_inputs(rng(201), (4, 8), np.float64, scale=1e-3), kinds={QUIET}),
        Case("batch-eps", _ln_inputs(rng(202), (2, 3, 6), scale=0.1, eps=0.02)),
        Case("far", {**_ln_inputs(rng(203), (3, 8)), "x": far_from_zero(rng(204), (3, 8))}, kinds={FAR}),
    ]


def _ln_hidden(g):
    shape, rows, wide = (size(g, 2, 3), size(g, 4, 7), size(g, 12, 20)), size(g, 2, 5), size(g, 48, 80)
    return [
        hidden("batch-eps", _ln_inputs(g, shape, scale=0.1, eps=float(10 ** g.uniform(-2.5, -1.5)))),
        hidden("wide64", _ln_inputs(g, (rows, wide), np.float64, loc=-2.0, scale=3.0)),
        hidden("quiet", _ln_inputs(g, (rows, size(g, 6, 12)), scale=2e-3), kinds={QUIET}, about=QUIET),
        hidden(
            "far",
            {**_ln_inputs(g, (rows, 16)), "x": far_from_zero(g, (rows, 16), size(g, 7, 9))},
            kinds={FAR},
            about=FAR,
        ),
    ]


LAYER_NORM = Exercise(
    name="layer_norm",
    visible=_ln_visible,
    hidden=_ln_hidden,
    reference=lambda x, g, b, eps=1e-5: lib.layer_norm(x, g, b, eps),
    mistakes=table(norms.layer_norm, norms.LAYER_NORM),
    error_hints=norms.ERROR_HINTS,
    steps=norms.LAYER_NORM_STEPS,
)

# ---- scores: scaled and causally masked ---------------------------------------------------------


def _qkv_arrays(g, lead, T, d_head, dtype):
    return {name: _normal(g, *lead, T, d_head, dtype=dtype) for name in "qkv"}


SHARP = "queries and keys large enough that exp of a score overflows unless each row's maximum is subtracted"
SHARP_GAP = 20.0  # exp(-20) is 2e-9: beside a row's largest score, the next weighs nothing a tolerance sees
SHARP_DRAWS = 1000  # the course's sizes take about 4


def sharp_qk(g, lead: tuple, T: int, d_head: int, scale: float, S: int = 0) -> dict:
    """float32 q (*lead, T, d_head) and k (*lead, S + T, d_head: ``S`` earlier keys, as in a
    cache) whose scaled scores reach the thousands (a softmax without its max subtraction gives
    NaN), drawn again until in every row the largest score the causal mask allows beats the next by
    more than ``SHARP_GAP``. Attention is then one-hot to
    float32's precision, so a right answer's does not depend on how its scores were rounded:
    scores this large are off by thousandths in another order of summing, which would move a
    softmax between two close scores by more than the tolerance."""
    allowed = np.tri(T, S + T, k=S, dtype=bool)
    rows = slice(1 if S == 0 else 0, None)  # without earlier keys, row 0 sees one key only
    for _ in range(SHARP_DRAWS):
        q, k = (_normal(g, *lead, n, d_head, dtype=np.float32) * np.float32(scale) for n in (T, S + T))
        scores = np.where(allowed, q.astype(np.float64) @ np.swapaxes(k, -1, -2) / math.sqrt(d_head), -np.inf)
        top = np.sort(scores, axis=-1)[..., -2:]
        if (top[..., rows, 1] - top[..., rows, 0] > SHARP_GAP).all():
            return {"q": q, "k": k}
    raise ValueError(
        f"no sharp q and k of {(*lead, T, d_head)} in {SHARP_DRAWS} draws: fewer rows or a larger scale"
    )


def _sharp(g, lead, T, d_head, scale):
    return {**sharp_qk(g, lead, T, d_head, scale), "v": _normal(g, *lead, T, d_head, dtype=np.float32)}


def _qk_visible(seed):
    specs = [
        ("one-head", (), 5, 4, np.float32),
        ("two-heads", (2,), 5, 4, np.float32),
        ("batch-heads64", (2, 2), 6, 8, np.float64),
    ]
    return [
        Case(name, _qkv_arrays(rng(seed + i), lead, T, d, dtype))
        for i, (name, lead, T, d, dtype) in enumerate(specs)
    ] + [Case("sharp", _sharp(rng(seed + len(specs)), (2,), 5, 4, 30.0), kinds={SHARP})]


def _qk_hidden(g):
    B, H, T, d_head = size(g, 2, 3), size(g, 2, 4), size(g, 5, 9), 4 * size(g, 1, 3)
    T_long, d_long = size(g, 8, 12), size(g, 12, 20)
    return [
        hidden("batch-heads64", _qkv_arrays(g, (B, H), T, d_head, np.float64)),
        hidden("long", _qkv_arrays(g, (1,), T_long, d_long, np.float32)),
        hidden("sharp", _sharp(g, (H,), T, d_head, float(g.uniform(25.0, 40.0))), kinds={SHARP}, about=SHARP),
    ]


def _without_v(cases):
    qk = [{"q": c.inputs["q"], "k": c.inputs["k"]} for c in cases]
    return [
        hidden(c.name, inputs) if c.hidden else Case(c.name, inputs)
        for c, inputs in zip(cases, qk, strict=True)
    ]


def _masked_scores_ref(q, k):
    T, S = q.shape[-2], k.shape[-2]
    scaled = lib.attention_scores(q, k) / math.sqrt(q.shape[-1])
    return np.where(lib.causal_mask(T, S), scaled, q.dtype.type(-np.inf))


MASKED_SCORES = Exercise(
    name="masked_scores",
    visible=lambda: _without_v(_qk_visible(210)),
    hidden=lambda g: _without_v(_qk_hidden(g)),
    reference=_masked_scores_ref,
    mistakes=table(
        attention.scores,
        {
            **attention.SCALE,
            **attention.MASK_SHAPE,
            **attention.FILL,
            "big-negative": (
                {"fill": "big"},
                "you filled the masked entries with a large negative number: softmax would be nearly "
                "right, but this function must return exactly -inf there (-np.inf)",
            ),
        },
    ),
    error_hints=attention.SCORES_PRODUCT_HINTS,
)

# ---- single-head attention ---------------------------------------------------------------------


def _attention_ref(q, k, v):
    return lib.scaled_dot_product_attention(q, k, v, lib.causal_mask(q.shape[-2], k.shape[-2]))


def _attention_stations(inputs):
    q, k = inputs["q"], inputs["k"]
    masked = _masked_scores_ref(q, k)
    return {"attn.scores_masked": masked, "attn.probs": lib.softmax(masked, axis=-1)}


ATTENTION = Exercise(
    name="attention",
    masked_softmax=True,
    visible=lambda: _qk_visible(220),
    hidden=_qk_hidden,
    reference=_attention_ref,
    stations=_attention_stations,
    parts=(Part("attn.scores_masked", "masked_scores", lambda inp, st: {"q": inp["q"], "k": inp["k"]}),),
    mistakes=table(
        attention.attention,
        {
            **attention.WEIGHTS,
            **attention.WEIGHTS_TRANSPOSED,
            **attention.SCALE,
            **attention.MASK_SHAPE,
            **attention.FILL,
        },
    ),
    error_hints={
        "matmul": "the inner sizes of a product differ. The scores are q @ k with k's last two axes swapped, "
        "k.swapaxes(-1, -2): k.T, or a transpose written for one number of axes, moves the other axes too. "
        "Then the weights (..., T, T) multiply v (..., T, d_head) as it is",
    },
)

# ---- splitting and merging heads ---------------------------------------------------------------


def heads(n_head: int) -> set[str]:
    """The kind of a case with ``n_head`` heads: every head count a hidden case uses, a visible one
    uses too, so that code written for the counts it was tried on (a head count written in, a
    branch or a slice per count, a cap) fails the check, not only the grader."""
    return {f"n_head = {n_head}"}


def _split_visible():
    return [
        Case("two-heads", {"x": _normal(rng(230), 5, 8), "n_head": 2}, kinds=heads(2)),
        Case(
            "batch-three64", {"x": _normal(rng(231), 2, 4, 9, dtype=np.float64), "n_head": 3}, kinds=heads(3)
        ),
        Case("four-heads", {"x": _normal(rng(232), 6, 12), "n_head": 4}, kinds=heads(4)),
    ]


def _split_hidden(g):
    batch = (size(g, 2, 3), size(g, 5, 8), 3 * size(g, 3, 5))
    four = (size(g, 6, 9), 4 * size(g, 3, 5))
    return [
        hidden("batch-three64", {"x": _normal(g, *batch, dtype=np.float64), "n_head": 3}, kinds=heads(3)),
        hidden("four", {"x": _normal(g, *four), "n_head": 4}, kinds=heads(4)),
    ]


def _merge_visible():
    return [
        Case("two-heads", {"x": _normal(rng(240), 2, 5, 4)}),
        Case("batch-three64", {"x": _normal(rng(241), 2, 3, 4, 3, dtype=np.float64)}),
    ]


def _merge_hidden(g):
    B, T, d_head = size(g, 2, 3), size(g, 5, 8), size(g, 3, 5)
    T4, d4 = size(g, 6, 9), size(g, 2, 3)
    return [
        hidden("batch-three64", {"x": _normal(g, B, 3, T, d_head, dtype=np.float64)}),
        hidden("four", {"x": _normal(g, 4, T4, d4)}),
    ]


SPLIT_HEADS = Exercise(
    name="split_heads",
    visible=_split_visible,
    hidden=_split_hidden,
    reference=lambda x, n_head: lib.split_heads(x, n_head),
    mistakes=table(
        attention.split,
        {
            **attention.SPLIT,
            "no-transpose": (
                {"split_mode": "no-transpose"},
                "the head axis is after T: after reshaping to (..., T, n_head, d_head), swap the last "
                "two-but-one axes so the result is (..., n_head, T, d_head)",
            ),
        },
    ),
    error_hints={"cannot reshape": "reshape (..., T, d) to (..., T, n_head, d // n_head) first"},
)

MERGE_HEADS = Exercise(
    name="merge_heads",
    visible=_merge_visible,
    hidden=_merge_hidden,
    reference=lambda x: lib.merge_heads(x),
    mistakes=table(attention.merge, attention.MERGE),
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


def _mha_inputs(g, lead, T, d, H, dtype):
    x = _normal(g, *lead, T, d, dtype=dtype)
    return {"x": x, "params": _attn_params(g, d, dtype), "n_head": H}


# The visible sizes of multi-head attention and of the block: (name, batch axes, T, d, n_head, dtype).
SIZES = [
    ("single", (), 5, 8, 2, np.float32),
    ("batch", (2,), 5, 8, 2, np.float32),
    ("batch-three64", (2,), 6, 9, 3, np.float64),
    ("four-heads", (), 6, 12, 4, np.float32),
]


def _visible_sizes(build, seed):
    """One visible case per row of ``SIZES``, its inputs from ``build(g, lead, T, d, H, dtype)``."""
    return [
        Case(name, build(rng(seed + i), *sizes), kinds=heads(sizes[3]))
        for i, (name, *sizes) in enumerate(SIZES)
    ]


def _mha_visible():
    return _visible_sizes(_mha_inputs, 250)


def _mha_hidden(g):
    B, T3, d3 = size(g, 2, 3), size(g, 5, 8), 3 * size(g, 3, 5)
    T4, d4 = size(g, 5, 8), 4 * size(g, 3, 5)
    T2, H2 = size(g, 3, 6), size(g, 3, 4)
    return [
        hidden("three64", _mha_inputs(g, (B,), T3, d3, 3, np.float64), kinds=heads(3)),
        hidden("four", _mha_inputs(g, (), T4, d4, 4, np.float32), kinds=heads(4)),
        hidden(
            "tiny-heads",
            _mha_inputs(g, (1,), T2, 2 * H2, H2, np.float64),
            kinds=heads(H2),
            about="heads of 2 features",
        ),
    ]


def _mha_ref(x, params, n_head):
    xb, undo = _lead(x)
    return undo(lib.multi_head_attention(xb, params, n_head))


def _mha_stations(inputs):
    xb, undo = _lead(inputs["x"])
    with lib.tracing() as trace, lib.scope("attn"):
        lib.multi_head_attention(xb, inputs["params"], inputs["n_head"])
    names = ("attn.q", "attn.k", "attn.v", "attn.probs", "attn.heads", "attn.merged", "attn.out")
    return {name: undo(trace[name]) for name in names}


def _q_of(inp):
    c = inp["params"]["c_attn"]
    return np.split(inp["x"] @ c["w"] + c["b"], 3, axis=-1)[0]


MULTI_HEAD_ATTENTION = Exercise(
    name="multi_head_attention",
    masked_softmax=True,
    visible=_mha_visible,
    hidden=_mha_hidden,
    reference=_mha_ref,
    stations=_mha_stations,
    parts=(
        Part("attn.q", "split_heads", lambda inp, st: {"x": _q_of(inp), "n_head": inp["n_head"]}),
        Part(
            "attn.heads",
            "attention",
            lambda inp, st: {"q": st["attn.q"], "k": st["attn.k"], "v": st["attn.v"]},
        ),
        Part("attn.merged", "merge_heads", lambda inp, st: {"x": st["attn.heads"]}),
    ),
    mistakes=table(
        attention.multi_head_attention,
        {
            "no-projection": (
                {"proj": False},
                "the output projection is missing: after merging the heads, apply c_proj "
                "(merged @ params['c_proj']['w'] + params['c_proj']['b']); it is what mixes the heads",
            ),
            **attention.SPLIT,
            **attention.MERGE,
            "both-reshape": (
                {"split_mode": "reshape", "merge_mode": "reshape"},
                "the heads are split and merged with plain reshapes: the two undo each other, but in "
                "between each 'head' held whole tokens instead of a slice of every token's features. "
                "Swap the T and head axes in split_heads and merge_heads",
            ),
            **attention.Q_K_SWAPPED,
            **attention.SCALE_D_MODEL,
            **attention.SCALE,
            **attention.WEIGHTS,
            **attention.WEIGHTS_TRANSPOSED,
            "no-bias": ({"bias": False}, "the biases are missing: c_attn and c_proj are affine, x @ w + b"),
        },
    ),
    error_hints={
        "cannot reshape": "split q, k and v first (three d-wide column blocks of x @ w + b), then split each "
        "into heads of d // n_head features",
        "matmul": "check the shapes: q, k, v should each be (..., n_head, T, d_head) before attention",
    },
)

# ---- GELU and the MLP --------------------------------------------------------------------------


def _gelu_visible():
    g = rng(260)
    return [
        Case("line", {"x": np.linspace(-4, 4, 17, dtype=np.float32)}),
        Case("grid", {"x": _normal(g, 3, 5, scale=2.0)}),
        Case("batch64", {"x": _normal(g, 2, 4, 5, dtype=np.float64, scale=3.0)}),
        # tanh written through exp overflows here: exp(2 * 1.6 * (x + 0.044715 x^3)) is inf in float32
        Case("far", {"x": np.array([[-30.0, -12.0, -6.0, 6.0, 12.0, 30.0]], dtype=np.float32)}),
    ]


def _gelu_hidden(g):
    shape = (size(g, 2, 3), size(g, 3, 6), size(g, 6, 12))
    return [
        hidden("wide64", {"x": _normal(g, *shape, dtype=np.float64, scale=3.0)}),
        hidden(
            "far", {"x": _normal(g, size(g, 3, 5), size(g, 6, 12), scale=30.0)}, about="inputs far from 0"
        ),
    ]


GELU = Exercise(
    name="gelu",
    visible=_gelu_visible,
    hidden=_gelu_hidden,
    reference=lambda x: lib.gelu(x),
    mistakes=table(
        activations.gelu,
        {
            **activations.GELU,
            "cube-only": (
                {"act": "cube-only"},
                "inside the tanh goes sqrt(2/pi) * (x + 0.044715 x^3): you left out the x + part",
            ),
        },
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


def _mlp_inputs(g, shape, dtype):
    return {"x": _normal(g, *shape, dtype=dtype), "params": _mlp_params(g, shape[-1], dtype)}


def _mlp_visible():
    return [
        Case("single", _mlp_inputs(rng(270), (5, 8), np.float32)),
        Case("batch64", _mlp_inputs(rng(271), (2, 3, 6), np.float64)),
    ]


def _mlp_hidden(g):
    batch = (size(g, 2, 3), size(g, 4, 7), size(g, 8, 14))
    wide = (size(g, 2, 5), size(g, 14, 20))
    return [
        hidden("batch64", _mlp_inputs(g, batch, np.float64)),
        hidden("wide", _mlp_inputs(g, wide, np.float32)),
    ]


def _mlp_stations(inputs):
    with lib.tracing() as trace, lib.scope("mlp"):
        lib.mlp(inputs["x"], inputs["params"])
    return trace


MLP = Exercise(
    name="mlp",
    visible=_mlp_visible,
    hidden=_mlp_hidden,
    reference=lambda x, params: lib.mlp(x, params),
    stations=_mlp_stations,
    parts=(Part("mlp.post_act", "gelu", lambda inp, st: {"x": st["mlp.pre_act"]}),),
    mistakes=table(mlp.mlp, mlp.MLP),
    steps=mlp.MLP_STEPS,
    error_hints=mlp.PRODUCT_HINTS,
)

# ---- the block ---------------------------------------------------------------------------------


def _config(d, n_head):
    return lib.Config(vocab_size=1, n_ctx=64, d_model=d, n_layer=1, n_head=n_head)


def _ln_params(g, d, dtype):
    return {"g": _normal(g, d, dtype=dtype, loc=1.0, scale=0.2), "b": _normal(g, d, dtype=dtype, scale=0.2)}


def _block_inputs(g, lead, T, d, H, dtype):
    x = _normal(g, *lead, T, d, dtype=dtype, scale=2.0)
    params = {
        "ln_1": _ln_params(g, d, dtype),
        "attn": _attn_params(g, d, dtype),
        "ln_2": _ln_params(g, d, dtype),
        "mlp": _mlp_params(g, d, dtype),
    }
    return {"x": x, "params": params, "n_head": H}


def _block_visible():
    return _visible_sizes(_block_inputs, 280)


def _block_hidden(g):
    B, T3, d3 = size(g, 2, 3), size(g, 4, 7), 3 * size(g, 3, 5)
    T4, d4 = size(g, 5, 8), 4 * size(g, 3, 5)
    return [
        hidden("three64", _block_inputs(g, (B,), T3, d3, 3, np.float64), kinds=heads(3)),
        hidden("four", _block_inputs(g, (), T4, d4, 4, np.float32), kinds=heads(4)),
    ]


def _block_ref(x, params, n_head):
    xb, undo = _lead(x)
    return undo(lib.block(xb, params, _config(x.shape[-1], n_head)))


def _block_stations(inputs):
    x = inputs["x"]
    xb, undo = _lead(x)
    with lib.tracing() as trace, lib.scope("h.0"):
        lib.block(xb, inputs["params"], _config(x.shape[-1], inputs["n_head"]))
    names = ("ln_1", "attn.out", "resid_mid", "ln_2", "mlp.out", "resid_post")
    return {name: undo(trace[f"h.0.{name}"]) for name in names}


BLOCK = Exercise(
    name="block",
    masked_softmax=True,
    visible=_block_visible,
    hidden=_block_hidden,
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
    mistakes=table(block.block, block.BLOCK),
)

# ---- the modern block: RMSNorm, RoPE, SwiGLU ----------------------------------------------------


def _rms_inputs(g, shape, dtype=np.float32, scale=1.0, loc=0.0, eps=None):
    inputs = {
        "x": _normal(g, *shape, dtype=dtype, loc=loc, scale=scale),
        "g": _normal(g, shape[-1], dtype=dtype, loc=1.0, scale=0.2),
    }
    return inputs if eps is None else {**inputs, "eps": eps}


def _rms_visible():
    return [
        Case("small", _rms_inputs(rng(290), (5, 8), loc=1.0, scale=2.0)),
        Case("quiet", _rms_inputs(rng(291), (4, 8), np.float64, scale=1e-3), kinds={QUIET}),
        Case("batch-eps", _rms_inputs(rng(292), (2, 3, 6), scale=0.1, loc=0.5, eps=0.02)),
    ]


def _rms_hidden(g):
    shape = (size(g, 2, 3), size(g, 4, 7), size(g, 12, 20))
    return [
        hidden(
            "batch-eps", _rms_inputs(g, shape, scale=0.1, loc=0.5, eps=float(10 ** g.uniform(-2.5, -1.5)))
        ),
        hidden(
            "quiet64",
            _rms_inputs(g, (size(g, 2, 5), size(g, 6, 12)), np.float64, scale=2e-3),
            kinds={QUIET},
            about=QUIET,
        ),
    ]


RMS_NORM = Exercise(
    name="rms_norm",
    visible=_rms_visible,
    hidden=_rms_hidden,
    reference=lambda x, g, eps=1e-6: lib.rms_norm(x, g, eps),
    mistakes=table(
        norms.rms_norm,
        {
            "centred": (
                {"centre": True},
                "you subtracted the mean: RMSNorm does not centre, it divides x by sqrt(mean(x**2) + eps)",
            ),
            "eps-outside": (
                {"eps_where": "outside"},
                "epsilon is outside the square root: sqrt(mean(x**2) + eps)",
            ),
            "std": (
                {"spread": True},
                "you divided by the standard deviation (np.std or np.var: the spread around the mean): "
                "RMSNorm divides by the root mean square of x itself, sqrt(mean(x**2) + eps)",
            ),
            "sum": (
                {"mean": False},
                "you summed the squares: RMS is the root of their MEAN over the last axis",
            ),
            "no-sqrt": ({"root": False}, "you divided by the mean square: divide by its square root"),
            "no-gain": ({"gain": False}, "the gain is missing: multiply by g"),
            "gain-added": (
                {"gain_added": True},
                "you added the gain g: RMSNorm multiplies by it, x / sqrt(mean(x**2) + eps) * g",
            ),
            "eps-1e-5": (
                {"eps": 1e-5},
                "your default eps is 1e-5 (LayerNorm's): rms_norm's signature has eps=1e-6, the value a "
                "call that leaves eps out must get",
            ),
        },
    ),
    error_hints=norms.ERROR_HINTS,
    steps=norms.RMS_NORM_STEPS,
)

LATER = "positions that do not start at 0"


def _rope_visible():
    g0, g1, g2, g3 = rng(300), rng(301), rng(302), rng(303)
    return [
        Case("start", {"x": _normal(g0, 5, 8), "positions": np.arange(5)}),
        Case("even", {"x": _normal(g3, 4, 6), "positions": 2 * np.arange(4)}),
        Case("continued", {"x": _normal(g1, 2, 5, 8), "positions": np.arange(3, 8)}, kinds={LATER}),
        Case(
            "batch-heads64",
            {"x": _normal(g2, 2, 2, 4, 4, dtype=np.float64), "positions": np.arange(6, 10), "theta": 500.0},
            kinds={LATER},
        ),
    ]


def _rope_hidden(g):
    B, H, T, d_head = size(g, 2, 3), size(g, 2, 4), size(g, 4, 8), 4 * size(g, 2, 4)
    start = size(g, 5, 40)
    T_even, d_even = size(g, 5, 9), 2 * size(g, 2, 3)
    return [
        hidden(
            "batch64",
            {"x": _normal(g, B, H, T, d_head, dtype=np.float64), "positions": np.arange(start, start + T)},
            kinds={LATER},
            about=f"positions {start}..{start + T - 1}",
        ),
        hidden(
            "theta",
            {
                "x": _normal(g, T_even, d_even),
                "positions": 2 * np.arange(T_even),
                "theta": float(g.uniform(100.0, 2000.0)),
            },
            about="even positions",
        ),
    ]


APPLY_ROPE = Exercise(
    name="apply_rope",
    visible=_rope_visible,
    hidden=_rope_hidden,
    reference=lambda x, positions, theta=10000.0: lib.apply_rope(x, positions, theta),
    mistakes=table(
        attention.apply_rope,
        {
            "interleaved": (
                {"pairs": "neighbours"},
                "you paired neighbouring features (2j, 2j+1), the RoFormer paper's 'interleaved' layout: lib "
                "(like Hugging Face Llama) pairs feature j with feature j + d_head/2, the two halves",
            ),
            "repeat": (
                {"angles": "repeated"},
                "the angles are repeated element by element ([a0, a0, a1, a1, ...]), the interleaved "
                "layout's order, while the rotation pairs the halves: concatenate the angles with "
                "themselves ([a0, a1, ..., a0, a1, ...]) so features j and j + d_head/2 share angle j",
            ),
            "direction": (
                {"sign": -1.0},
                "the rotation goes the wrong way (sin has the wrong sign): the first half becomes "
                "x1 cos - x2 sin and the second half x2 cos + x1 sin",
            ),
            "sin-cos-swapped": (
                {"trig": "swapped"},
                "cos and sin are swapped: x * cos(angle) + rotate_half(x) * sin(angle), so that at angle 0 "
                "(position 0) the rotation leaves x as it is",
            ),
            "freq": (
                {"exponent": "j/d"},
                "the frequencies are wrong: pair j turns at theta ** (-2j / d_head), you used -j / d_head",
            ),
            "ignore-positions": (
                {"given": False},
                "you used positions 0..T-1 instead of the positions you were given (a continued sequence "
                "starts later)",
            ),
            "positions-plus-one": (
                {"shift": 1},
                "your positions are off by one: each token is rotated as if it stood one position later. "
                "Use the positions exactly as given, angle = positions[i] * theta ** (-2j / d_head), with no + 1",
            ),
        },
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


def _swiglu_visible():
    g0, g1 = rng(310), rng(311)
    return [
        Case("single", {"x": _normal(g0, 5, 8), "params": _swiglu_params(g0, 8, 20, np.float32)}),
        Case(
            "batch64",
            {"x": _normal(g1, 2, 3, 6, dtype=np.float64), "params": _swiglu_params(g1, 6, 16, np.float64)},
        ),
        # gates far from 0: silu written as exp(z) / (1 + exp(z)) overflows to inf / inf in float32
        Case("far", {"x": _normal(g1, 4, 8, scale=40.0), "params": _swiglu_params(g1, 8, 16, np.float32)}),
    ]


def _swiglu_hidden(g):
    batch, d_ff = (size(g, 2, 3), size(g, 3, 6), size(g, 10, 14)), size(g, 24, 40)
    wide, wide_ff = (size(g, 2, 5), size(g, 14, 20)), size(g, 36, 56)
    return [
        hidden(
            "batch64",
            {
                "x": _normal(g, *batch, dtype=np.float64),
                "params": _swiglu_params(g, batch[-1], d_ff, np.float64),
            },
        ),
        hidden("wide", {"x": _normal(g, *wide), "params": _swiglu_params(g, wide[-1], wide_ff, np.float32)}),
        hidden(
            "far",
            {"x": _normal(g, *wide, scale=40.0), "params": _swiglu_params(g, wide[-1], wide_ff, np.float32)},
            about="inputs far from 0",
        ),
    ]


SWIGLU = Exercise(
    name="swiglu",
    visible=_swiglu_visible,
    hidden=_swiglu_hidden,
    reference=lambda x, params: lib.swiglu(x, params),
    mistakes=table(
        mlp.swiglu,
        {
            "swapped": (
                {"branch": "up"},
                "the SiLU is on the up branch: it goes on the gate, silu(x @ W_gate) * (x @ W_up)",
            ),
            "gelu": ({"gate": "gelu"}, "the gate uses GELU: SwiGLU's gate is SiLU, z * sigmoid(z)"),
            "sigmoid": (
                {"gate": "sigmoid"},
                "the gate is a plain sigmoid (that is the original GLU): SwiGLU uses SiLU, z * sigmoid(z)",
            ),
            "relu": (
                {"gate": "relu"},
                "the gate uses ReLU (that is ReGLU): SwiGLU uses SiLU, z * sigmoid(z)",
            ),
            "silu-both": (
                {"both": True},
                "the SiLU is on both branches: only the gate gets it, silu(x @ W_gate) * (x @ W_up)",
            ),
            "no-up": (
                {"up": False},
                "the up branch is missing: multiply the SiLU gate element-wise by x @ W_up before the down projection",
            ),
            "silu-of-product": (
                {"on_product": True},
                "you took the SiLU of the product (x @ W_gate) * (x @ W_up): the SiLU goes on the gate "
                "alone, then multiplies the up branch, silu(x @ W_gate) * (x @ W_up)",
            ),
            "added": (
                {"added": True},
                "you added the gate and the up branch: SwiGLU multiplies them element-wise, "
                "silu(x @ W_gate) * (x @ W_up), before the down projection",
            ),
        },
    ),
    error_hints=mlp.PRODUCT_HINTS,
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
