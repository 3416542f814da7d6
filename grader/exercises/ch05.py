"""Chapter 5, every number of one forward pass: the toy model's stations, recomputed by hand.

The cases run the toy model shipped in ``lib/models/toy`` (one block, d = 4, two heads, three
tokens) on "AI rocks" and, hidden, on other inputs, in float64, and with perturbed weights. Station
names are ``lib``'s trace names (see ``lib/model.py``); ``h.0.attn.qkv`` is the three of
``h.0.attn.q``, ``.k`` and ``.v`` stacked, the output of ``toy_qkv``.
"""

import copy
import functools
import math

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, Part, choice, rng

ASSIGNMENT = "05-worked-toy"

AI_ROCKS = np.array([0, 1])  # "AI rocks": the inputs; the targets are [1, 2] ("rocks <eos>")
EPS = 1e-5


@functools.cache
def _toy(dtype=np.float32) -> lib.Model:
    return lib.load_pretrained("toy", dtype=dtype)


def toy_params(dtype=np.float32, perturb_seed: int | None = None, scale: float = 0.3) -> dict:
    """A fresh copy of the toy's weights; with ``perturb_seed``, seeded noise added to every one."""
    params = copy.deepcopy(_toy(dtype).params)
    if perturb_seed is not None:
        g = rng(perturb_seed)

        def shake(tree):
            if isinstance(tree, dict):
                return {k: shake(v) for k, v in tree.items()}
            if isinstance(tree, list):
                return [shake(v) for v in tree]
            return (tree + scale * g.standard_normal(tree.shape)).astype(dtype)

        params = shake(params)
    return params


def toy_trace(ids, params) -> dict:
    """lib's trace of the toy config with ``params`` on ``ids`` (one sequence)."""
    model = lib.Model(_toy().config, params)
    return model.forward(np.asarray(ids), trace=True)[1]


# The inputs every exercise is checked on: (name, ids, dtype, perturbation seed, hidden, describe).
_RUNS = [
    ("ai-rocks", [0, 1], np.float32, None, False, ""),
    ("rocks-ai", [1, 0], np.float32, None, False, ""),
    ("three64", [0, 0, 1], np.float64, None, True, 'the input "AI AI rocks", float64'),
    ("perturbed", [0, 1, 2, 0], np.float32, 11, True, "four tokens with perturbed weights"),
    ("perturbed64", [2, 1], np.float64, 12, True, "other weights, float64"),
]


@functools.cache
def _runs():
    """Each run's ids, params and trace (computed once per process; cases copy what they use)."""
    out = []
    for name, ids, dtype, seed, hidden, describe in _RUNS:
        params = toy_params(dtype, seed)
        ids = np.array(ids)
        out.append((name, ids, params, toy_trace(ids, params), hidden, describe))
    return out


def _cases(build):
    """One case per run: ``build(ids, params, trace)`` gives its inputs."""
    return [
        Case(name, build(ids, copy.deepcopy(params), trace), hidden, describe)
        for name, ids, params, trace, hidden, describe in _runs()
    ]


# ---- embeddings --------------------------------------------------------------------------------


def _embed_cases():
    return _cases(lambda ids, p, tr: {"ids": ids.copy(), "wte": p["wte"], "wpe": p["wpe"]})


TOY_EMBED = Exercise(
    name="toy_embed",
    cases=_embed_cases,
    reference=lambda ids, wte, wpe: lib.embed(ids, wte, wpe),
    mistakes=(
        Mistake(
            "no-positions",
            lambda ids, wte, wpe: wte[ids],
            "these are the token rows only (embed.tok): add the position rows wpe[:T] (embed.pos)",
        ),
        Mistake(
            "positions-by-id",
            lambda ids, wte, wpe: wte[ids] + wpe[ids],
            "you looked up positions by token id (wpe[ids]): the token at position t gets row t of "
            "wpe, whatever its id",
        ),
        Mistake(
            "off-by-one",
            lambda ids, wte, wpe: wte[ids] + wpe[1 : len(ids) + 1],
            "positions are off by one: the first token is at position 0 and gets row 0 of wpe",
        ),
    ),
)

# ---- LayerNorm ---------------------------------------------------------------------------------


def _ln_cases():
    def build(stream, norm, eps=EPS):
        return lambda ids, p, tr: {
            "x": tr[stream].copy(),
            "g": _get(p, norm)["g"],
            "b": _get(p, norm)["b"],
            "eps": eps,
        }

    cases = _cases(build("embed.out", ("h", 0, "ln_1")))
    name, ids, params, trace, _, _ = _runs()[0]
    cases.insert(1, Case("big-eps", build("embed.out", ("h", 0, "ln_1"), eps=0.5)(ids, params, trace)))
    name, ids, params, trace, _, _ = _runs()[2]
    cases.append(
        Case(
            "ln_2", build("h.0.resid_mid", ("h", 0, "ln_2"))(ids, params, trace), True, "LayerNorm 2, float64"
        )
    )
    cases.append(Case("ln_f", build("h.0.resid_post", ("ln_f",))(ids, params, trace), True, "the final norm"))
    return cases


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _ln_variant(x, g, b, eps, *, ddof=0, eps_where="inside", affine=True, centre=True, axis=-1):
    mean = x.mean(axis=axis, keepdims=True) if centre else 0
    var = ((x - x.mean(axis=axis, keepdims=True)) ** 2).sum(axis=axis, keepdims=True) / (x.shape[axis] - ddof)
    if not centre:
        var = (x * x).mean(axis=axis, keepdims=True)
    y = (x - mean) / (np.sqrt(var + eps) if eps_where == "inside" else np.sqrt(var) + eps)
    return (y * g + b if affine else y).astype(x.dtype)


TOY_LAYER_NORM = Exercise(
    name="toy_layer_norm",
    cases=_ln_cases,
    reference=lambda x, g, b, eps: lib.layer_norm(x, g, b, eps),
    mistakes=(
        Mistake(
            "no-affine",
            lambda x, g, b, eps: _ln_variant(x, g, b, eps, affine=False),
            "this is the normalised vector before the gain and bias: multiply by g, then add b",
        ),
        Mistake(
            "unbiased",
            lambda x, g, b, eps: _ln_variant(x, g, b, eps, ddof=1),
            "you divided the squared deviations by d - 1 (the unbiased variance, ddof=1): LayerNorm "
            "divides by d, here 4",
        ),
        Mistake(
            "eps-outside",
            lambda x, g, b, eps: _ln_variant(x, g, b, eps, eps_where="outside"),
            "epsilon is outside the square root (the case with eps = 0.5 shows it): divide by "
            "sqrt(var + eps)",
        ),
        Mistake(
            "no-centre",
            lambda x, g, b, eps: _ln_variant(x, g, b, eps, centre=False),
            "the mean is not subtracted: that is RMSNorm; LayerNorm centres each row first, then "
            "divides by the standard deviation",
        ),
        Mistake(
            "wrong-axis",
            lambda x, g, b, eps: _ln_variant(x, g, b, eps, axis=0),
            "you normalised each feature across the tokens (axis 0): normalise each token's row over "
            "its d features (axis=-1, keepdims=True)",
        ),
    ),
)

# ---- queries, keys, values ---------------------------------------------------------------------


def _qkv_cases():
    return _cases(
        lambda ids, p, tr: {
            "x": tr["h.0.ln_1"].copy(),
            "w": p["h"][0]["attn"]["c_attn"]["w"],
            "b": p["h"][0]["attn"]["c_attn"]["b"],
            "n_head": 2,
        }
    )


def _qkv_ref(x, w, b, n_head):
    q, k, v = np.split(lib.linear(x, w, b), 3, axis=-1)  # [T, d] each
    return np.stack([lib.split_heads(t, n_head) for t in (q, k, v)])  # [3, H, T, d_head]


def _qkv_variant(x, w, b, n_head, *, split="ok", bias=True, order=(0, 1, 2)):
    qkv = x @ w + (b if bias else 0)
    parts = np.split(qkv, 3, axis=-1)
    T, d = parts[0].shape
    dh = d // n_head
    heads = []
    for i in order:
        t = parts[i]
        if split == "ok":
            heads.append(t.reshape(T, n_head, dh).swapaxes(0, 1))
        elif split == "reshape":
            heads.append(t.reshape(n_head, T, dh))
        elif split == "interleaved":
            heads.append(np.moveaxis(t.reshape(T, dh, n_head), -1, 0))
    return np.stack(heads).astype(x.dtype)


TOY_QKV = Exercise(
    name="toy_qkv",
    cases=_qkv_cases,
    reference=_qkv_ref,
    mistakes=(
        Mistake(
            "split-reshape",
            lambda x, w, b, n_head: _qkv_variant(x, w, b, n_head, split="reshape"),
            "the heads are split with a plain reshape to (n_head, T, d_head), which hands each head "
            "whole tokens: reshape q to (T, n_head, d_head), then swap the first two axes",
        ),
        Mistake(
            "interleaved",
            lambda x, w, b, n_head: _qkv_variant(x, w, b, n_head, split="interleaved"),
            "features are dealt to the heads alternately: head h owns the consecutive columns "
            "h*d_head .. (h+1)*d_head - 1 of q (and of k and v)",
        ),
        Mistake(
            "no-bias",
            lambda x, w, b, n_head: _qkv_variant(x, w, b, n_head, bias=False),
            "the bias of c_attn is missing: x @ w + b",
        ),
        Mistake(
            "kqv",
            lambda x, w, b, n_head: _qkv_variant(x, w, b, n_head, order=(1, 0, 2)),
            "q and k are swapped: the first d columns of x @ w + b are the queries, the next d the "
            "keys, the last d the values",
        ),
    ),
    error_hints={
        "cannot reshape": "split x @ w + b into three blocks of d columns first, then each into heads"
    },
)

# ---- attention probabilities -------------------------------------------------------------------


def _probs_cases():
    cases = _cases(lambda ids, p, tr: {"q": tr["h.0.attn.q"].copy(), "k": tr["h.0.attn.k"].copy()})
    g = rng(500)
    cases.insert(
        0,
        Case(
            "random",
            {
                "q": g.standard_normal((2, 3, 4)).astype(np.float32),
                "k": g.standard_normal((2, 3, 4)).astype(np.float32),
            },
        ),
    )
    g = rng(501)
    cases.append(
        Case(
            "random64",
            {"q": g.standard_normal((3, 5, 4)), "k": g.standard_normal((3, 5, 4))},
            True,
            "3 heads, T = 5, d_head = 4, float64",
        )
    )
    return cases


def _probs_ref(q, k):
    scaled = lib.attention_scores(q, k) / math.sqrt(q.shape[-1])
    masked = np.where(lib.causal_mask(q.shape[-2], k.shape[-2]), scaled, q.dtype.type(-np.inf))
    return lib.softmax(masked, axis=-1)


def _probs_variant(q, k, *, scale="sqrt", mask="before", axis=-1, fill=-np.inf):
    raw = q @ k.swapaxes(-1, -2)
    d_head, n_head = q.shape[-1], q.shape[-3]
    scaled = {
        "sqrt": raw / math.sqrt(d_head),
        "none": raw,
        "d": raw / d_head,
        "d_model": raw / math.sqrt(d_head * n_head),
    }[scale]
    allowed = np.tri(q.shape[-2], k.shape[-2], dtype=bool)
    if mask == "before":
        scaled = np.where(allowed, scaled, fill)
    probs = lib.softmax(scaled.astype(q.dtype), axis=axis)
    if mask == "after":
        probs = probs * allowed
    return probs.astype(q.dtype)


TOY_ATTENTION_PROBS = Exercise(
    name="toy_attention_probs",
    cases=_probs_cases,
    reference=_probs_ref,
    mistakes=(
        Mistake(
            "no-scale",
            lambda q, k: _probs_variant(q, k, scale="none"),
            "the scores are not scaled: divide q k^T by sqrt(d_head) before the softmax",
        ),
        Mistake(
            "scale-d_head",
            lambda q, k: _probs_variant(q, k, scale="d"),
            "you divided by d_head: the scale is 1 / sqrt(d_head)",
        ),
        Mistake(
            "scale-d_model",
            lambda q, k: _probs_variant(q, k, scale="d_model"),
            "you divided by sqrt(d_model): each head's dot products have d_head terms, so divide by "
            "sqrt(d_head) (q.shape[-1])",
        ),
        Mistake(
            "no-mask",
            lambda q, k: _probs_variant(q, k, mask="none"),
            "there is no causal mask: 'AI' (query 0) must not see 'rocks' (key 1); set the scores "
            "above the diagonal to -inf before the softmax",
        ),
        Mistake(
            "zero-fill",
            lambda q, k: _probs_variant(q, k, fill=0.0),
            "the masked scores are 0, and exp(0) = 1 still gives the future a share: set them to -inf",
        ),
        Mistake(
            "mask-after-softmax",
            lambda q, k: _probs_variant(q, k, mask="after"),
            "the mask is applied after the softmax, so a row no longer sums to 1: mask the scores "
            "with -inf first, then take the softmax",
        ),
        Mistake(
            "softmax-queries",
            lambda q, k: _probs_variant(q, k, axis=-2),
            "the softmax runs over the queries (axis -2): each query's weights over the keys sum to "
            "1, so take it over the last axis",
        ),
    ),
)

# ---- heads, merge, output projection -----------------------------------------------------------


def _attn_out_cases():
    return _cases(
        lambda ids, p, tr: {
            "probs": tr["h.0.attn.probs"].copy(),
            "v": tr["h.0.attn.v"].copy(),
            "w": p["h"][0]["attn"]["c_proj"]["w"],
            "b": p["h"][0]["attn"]["c_proj"]["b"],
        }
    )


def _attn_out_ref(probs, v, w, b):
    return lib.linear(lib.merge_heads(probs @ v), w, b)


def _attn_out_variant(probs, v, w, b, *, merge="ok", bias=True, transpose=False):
    heads = (probs.swapaxes(-1, -2) if transpose else probs) @ v
    H, T, dh = heads.shape
    merged = heads.swapaxes(0, 1).reshape(T, H * dh) if merge == "ok" else heads.reshape(T, H * dh)
    return (merged @ w + (b if bias else 0)).astype(v.dtype)


TOY_ATTENTION_OUTPUT = Exercise(
    name="toy_attention_output",
    cases=_attn_out_cases,
    reference=_attn_out_ref,
    mistakes=(
        Mistake(
            "merge-reshape",
            lambda probs, v, w, b: _attn_out_variant(probs, v, w, b, merge="reshape"),
            "the heads are merged with a plain reshape of (n_head, T, d_head): swap the head and T "
            "axes first, so each token's row holds head 0's features, then head 1's",
        ),
        Mistake(
            "no-bias",
            lambda probs, v, w, b: _attn_out_variant(probs, v, w, b, bias=False),
            "the bias of the output projection is missing: merged @ w + b",
        ),
        Mistake(
            "probs-transposed",
            lambda probs, v, w, b: _attn_out_variant(probs, v, w, b, transpose=True),
            "you used the transposed weights: row i of probs (query i) mixes the value rows, so "
            "each head's output is probs @ v",
        ),
    ),
)

# ---- the MLP -----------------------------------------------------------------------------------


def _mlp_cases():
    def build(ids, p, tr):
        m = p["h"][0]["mlp"]
        return {
            "x": tr["h.0.ln_2"].copy(),
            "w_fc": m["c_fc"]["w"],
            "b_fc": m["c_fc"]["b"],
            "w_proj": m["c_proj"]["w"],
            "b_proj": m["c_proj"]["b"],
        }

    return _cases(build)


def _mlp_ref(x, w_fc, b_fc, w_proj, b_proj):
    return lib.mlp(x, {"c_fc": {"w": w_fc, "b": b_fc}, "c_proj": {"w": w_proj, "b": b_proj}}, "tanh")


def _mlp_variant(act):
    def wrong(x, w_fc, b_fc, w_proj, b_proj):
        return (act(x @ w_fc + b_fc) @ w_proj + b_proj).astype(x.dtype)

    return wrong


TOY_MLP = Exercise(
    name="toy_mlp",
    cases=_mlp_cases,
    reference=_mlp_ref,
    mistakes=(
        Mistake("relu", _mlp_variant(lambda h: np.maximum(h, 0)), "this is ReLU: GPT-2's MLP uses GELU"),
        Mistake(
            "exact-gelu",
            _mlp_variant(lib.gelu_exact),
            "this is the exact GELU (with erf): GPT-2 uses the tanh approximation "
            "0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))",
        ),
        Mistake(
            "no-activation",
            _mlp_variant(lambda h: h),
            "there is no nonlinearity: apply GELU to the hidden layer, between the two linear maps",
        ),
        Mistake(
            "no-biases",
            lambda x, w_fc, b_fc, w_proj, b_proj: _mlp_variant(lib.gelu)(
                x, w_fc, 0 * b_fc, w_proj, 0 * b_proj
            ),
            "the biases are missing: both linear maps are x @ w + b",
        ),
    ),
)

# ---- the loss ----------------------------------------------------------------------------------


def _loss_cases():
    cases = []
    for name, ids, _params, trace, hidden, describe in _runs():
        if name == "ai-rocks":
            targets = np.array([1, 2])  # "rocks" after "AI", "<eos>" after "AI rocks"
        else:
            targets = np.roll(ids, -1)
        cases.append(Case(name, {"logits": trace["logits"].copy(), "targets": targets}, hidden, describe))
    g = rng(502)
    cases.append(
        Case(
            "batch64",
            {"logits": 3 * g.standard_normal((2, 5, 7)), "targets": g.integers(0, 7, size=(2, 5))},
            True,
            "a batch of 2 sequences of 5 tokens, 7-token vocabulary, float64",
        )
    )
    return cases


def _logp(logits):
    return lib.log_softmax(logits.astype(np.float64), axis=-1)


def _pick(a, targets):
    return np.take_along_axis(a, targets[..., None], axis=-1)[..., 0]


TOY_LOSS = Exercise(
    name="toy_loss",
    cases=_loss_cases,
    reference=lambda logits, targets: lib.cross_entropy(logits, targets),
    mistakes=(
        Mistake(
            "sum",
            lambda logits, targets: -_pick(_logp(logits), targets).sum(),
            "you summed over the positions: the loss is the MEAN of -log p(target) over them",
        ),
        Mistake(
            "bits",
            lambda logits, targets: -_pick(_logp(logits), targets).mean() / math.log(2),
            "this is in bits (log base 2): the loss is in nats, with the natural log (np.log)",
        ),
        Mistake(
            "raw-logits",
            lambda logits, targets: -_pick(logits.astype(np.float64), targets).mean(),
            "you used the logits themselves: turn each row into log-probabilities first "
            "(log-softmax: logits - max - log(sum(exp(logits - max))))",
        ),
        Mistake(
            "sign",
            lambda logits, targets: _pick(_logp(logits), targets).mean(),
            "the sign is wrong: the loss is MINUS the mean log-probability, a positive number",
        ),
        Mistake(
            "softmax-positions",
            lambda logits, targets: (
                -_pick(lib.log_softmax(logits.astype(np.float64), axis=-2), targets).mean()
            ),
            "the softmax runs over positions (axis -2): each position's distribution is over the "
            "vocabulary, the last axis",
        ),
    ),
    check_dtype=False,
)

# ---- the whole pass ----------------------------------------------------------------------------


def _forward_cases():
    return _cases(lambda ids, p, tr: {"ids": ids.copy(), "params": p})


def _forward_ref(ids, params):
    return lib.Model(_toy().config, params).forward(ids)


def _forward_stations(inputs):
    trace = toy_trace(inputs["ids"], inputs["params"])
    names = ("embed.out", "h.0.ln_1", "h.0.attn.probs", "h.0.attn.out", "h.0.resid_mid", "h.0.ln_2")
    names += ("h.0.mlp.out", "h.0.resid_post", "ln_f")
    stations = {name: trace[name] for name in names}
    stations["h.0.attn.qkv"] = np.stack([trace[f"h.0.attn.{n}"] for n in "qkv"])
    return stations


def _ln_args(stream, path):
    def args(inp, st):
        norm = _get(inp["params"], path)
        return {"x": st[stream], "g": norm["g"], "b": norm["b"], "eps": EPS}

    return args


def _block_args(inp, name):
    return inp["params"]["h"][0][name]


FORWARD_PARTS = (
    Part(
        "embed.out",
        "toy_embed",
        lambda inp, st: {"ids": inp["ids"], "wte": inp["params"]["wte"], "wpe": inp["params"]["wpe"]},
    ),
    Part("h.0.ln_1", "toy_layer_norm", _ln_args("embed.out", ("h", 0, "ln_1"))),
    Part(
        "h.0.attn.qkv",
        "toy_qkv",
        lambda inp, st: {
            "x": st["h.0.ln_1"],
            "w": _block_args(inp, "attn")["c_attn"]["w"],
            "b": _block_args(inp, "attn")["c_attn"]["b"],
            "n_head": 2,
        },
    ),
    Part(
        "h.0.attn.probs",
        "toy_attention_probs",
        lambda inp, st: {"q": st["h.0.attn.qkv"][0], "k": st["h.0.attn.qkv"][1]},
    ),
    Part(
        "h.0.attn.out",
        "toy_attention_output",
        lambda inp, st: {
            "probs": st["h.0.attn.probs"],
            "v": st["h.0.attn.qkv"][2],
            "w": _block_args(inp, "attn")["c_proj"]["w"],
            "b": _block_args(inp, "attn")["c_proj"]["b"],
        },
    ),
    Part("h.0.ln_2", "toy_layer_norm", _ln_args("h.0.resid_mid", ("h", 0, "ln_2"))),
    Part(
        "h.0.mlp.out",
        "toy_mlp",
        lambda inp, st: {
            "x": st["h.0.ln_2"],
            "w_fc": _block_args(inp, "mlp")["c_fc"]["w"],
            "b_fc": _block_args(inp, "mlp")["c_fc"]["b"],
            "w_proj": _block_args(inp, "mlp")["c_proj"]["w"],
            "b_proj": _block_args(inp, "mlp")["c_proj"]["b"],
        },
    ),
    Part("ln_f", "toy_layer_norm", _ln_args("h.0.resid_post", ("ln_f",))),
)


def variant_forward(
    ids,
    params,
    *,
    mask=True,
    residual=True,
    order=("attn", "mlp"),
    post_norm=False,
    final_norm=True,
    positions=True,
):
    """The toy's forward pass with one thing changed, built from lib's stage functions.

    ``mask=False`` lets every token see every other; ``residual=False`` replaces the stream by each
    sublayer's output instead of adding to it; ``order=("mlp", "attn")`` swaps the sublayers (each
    keeps its own norm and weights); ``post_norm=True`` normalises after each residual instead of
    before each sublayer; ``final_norm=False`` drops ``ln_f``; ``positions=False`` drops ``wpe``.
    """
    layer, n_head = params["h"][0], 2
    x = lib.embed(ids, params["wte"], params["wpe"] if positions else None)

    def attention(h):
        qkv = lib.linear(h, layer["attn"]["c_attn"]["w"], layer["attn"]["c_attn"]["b"])
        q, k, v = (lib.split_heads(t, n_head) for t in np.split(qkv, 3, axis=-1))
        allowed = lib.causal_mask(len(ids)) if mask else None
        heads = lib.scaled_dot_product_attention(q, k, v, allowed)
        return lib.linear(lib.merge_heads(heads), layer["attn"]["c_proj"]["w"], layer["attn"]["c_proj"]["b"])

    sublayers = {
        "attn": (attention, layer["ln_1"]),
        "mlp": (lambda h: lib.mlp(h, layer["mlp"]), layer["ln_2"]),
    }
    for name in order:
        f, norm = sublayers[name]
        if post_norm:
            x = lib.layer_norm(x + f(x), norm["g"], norm["b"], EPS)
        else:
            out = f(lib.layer_norm(x, norm["g"], norm["b"], EPS))
            x = x + out if residual else out
    if final_norm:
        x = lib.layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"], EPS)
    return lib.lm_head(x, params["wte"].T)


TOY_FORWARD = Exercise(
    name="toy_forward",
    cases=_forward_cases,
    reference=_forward_ref,
    stations=_forward_stations,
    parts=FORWARD_PARTS,
    mistakes=(
        Mistake(
            "no-mask",
            lambda ids, params: variant_forward(ids, params, mask=False),
            "the first position's logits depend on later tokens: the causal mask is missing in attention",
        ),
        Mistake(
            "no-residual",
            lambda ids, params: variant_forward(ids, params, residual=False),
            "the residual connections are missing: each sublayer ADDS its output to the stream, "
            "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
        ),
        Mistake(
            "swapped",
            lambda ids, params: variant_forward(ids, params, order=("mlp", "attn")),
            "the sublayers are in the wrong order: attention (with ln_1) comes first, then the MLP "
            "(with ln_2)",
        ),
        Mistake(
            "post-norm",
            lambda ids, params: variant_forward(ids, params, post_norm=True),
            "you normalised after each residual (post-norm, the original transformer's order): GPT-2 "
            "normalises the INPUT of each sublayer, x = x + attn(ln_1(x))",
        ),
        Mistake(
            "no-final-norm",
            lambda ids, params: variant_forward(ids, params, final_norm=False),
            "the final LayerNorm ln_f is missing: normalise the stream before the LM head",
        ),
        Mistake(
            "no-positions",
            lambda ids, params: variant_forward(ids, params, positions=False),
            "the position embeddings are missing: the stream starts as wte[ids] + wpe[:T]",
        ),
    ),
    error_hints={
        "matmul": "the LM head is tied: logits = ln_f(x) @ wte.T, a (T, d) @ (d, V) product",
        "not aligned": "the LM head is tied: logits = ln_f(x) @ wte.T, a (T, d) @ (d, V) product",
    },
)

# ---- concept checks ----------------------------------------------------------------------------

Q_EQUAL_KEYS = choice("q_equal_keys", ("a", "b", "c", "d"))
Q_LN_SHIFT = choice("q_ln_shift", ("a", "b", "c", "d"))

EXERCISES = [
    TOY_EMBED,
    TOY_LAYER_NORM,
    TOY_QKV,
    TOY_ATTENTION_PROBS,
    TOY_ATTENTION_OUTPUT,
    TOY_MLP,
    TOY_LOSS,
    TOY_FORWARD,
    Q_EQUAL_KEYS,
    Q_LN_SHIFT,
]
