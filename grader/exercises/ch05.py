"""Chapter 5, every number of one forward pass: the toy model's stations, recomputed by hand.

The cases run the toy model shipped in ``lib/models/toy`` (one block, d = 4, two heads, three
tokens) on "AI rocks" and "rocks AI" and, hidden, on drawn inputs, in float64, and with drawn
perturbations of its weights. Station
names are ``lib``'s trace names (see ``lib/model.py``); ``h.0.attn.qkv`` is the three of
``h.0.attn.q``, ``.k`` and ``.v`` stacked, the output of ``toy_qkv``.
"""

import copy
import functools
import math

import numpy as np

import lib

from ..exercise import Broadcast, Case, Exercise, Part, choice, hidden, rng
from .ch02 import FAR, SHARP, far_from_zero, sharp_qk
from .wrong import activations, attention, block, embedding, head, mlp, norms, table

ASSIGNMENT = "05-worked-toy"
# The lib functions the scorer lends this chapter's students (``grader.lending``): none, the
# chapter recomputes every number by hand. ``GRADED``: the lib functions that compute this
# chapter's exercises, which the scorer's lib must never hold.
LENDS: tuple[str, ...] = ()
GRADED = (
    "embed",
    "layer_norm",
    "linear",
    "split_heads",
    "merge_heads",
    "causal_mask",
    "scaled_dot_product_attention",
    "softmax",
    "log_softmax",
    "mlp",
    "cross_entropy",
    "Model",
)

AI_ROCKS = np.array([0, 1])  # "AI rocks": the inputs; the targets are [1, 2] ("rocks <eos>")
EPS = 1e-5
PERTURBED = "perturbed weights"


@functools.cache
def _toy(dtype=np.float32) -> lib.Model:
    return lib.load_pretrained("toy", dtype=dtype)


def toy_params(dtype=np.float32, perturb: np.random.Generator | None = None, scale: float = 0.3) -> dict:
    """A fresh copy of the toy's weights; with ``perturb``, noise drawn from it added to every one."""
    params = copy.deepcopy(_toy(dtype).params)
    if perturb is not None:
        g = perturb

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


def _run(name, ids, dtype, perturb=None, drawn=False):
    """One input of the toy: (name, ids, params, trace, drawn), ``drawn`` for a hidden case."""
    params = toy_params(dtype, perturb)
    ids = np.array(ids)
    return name, ids, params, toy_trace(ids, params), drawn


@functools.cache
def _visible_runs():
    """The toy's own weights on "AI rocks" and "rocks AI", and perturbed weights in float64 on
    three tokens, one of them twice (computed once per process; cases copy what they use)."""
    return (
        _run("ai-rocks", [0, 1], np.float32),
        _run("rocks-ai", [1, 0], np.float32),
        _run("perturbed64", [2, 2, 0], np.float64, rng(500)),
    )


def _hidden_runs(g):
    """Drawn inputs: three tokens in float64, four tokens with perturbed weights, and two or three
    tokens with other perturbed weights in float64."""
    return (
        _run("three64", g.integers(0, 3, size=3), np.float64, drawn=True),
        _run("perturbed", g.integers(0, 3, size=4), np.float32, g, drawn=True),
        _run("perturbed64", g.integers(0, 3, size=int(g.integers(2, 4))), np.float64, g, drawn=True),
    )


def _cases(runs, build):
    """One case per run: ``build(ids, params, trace)`` gives its inputs."""
    cases = []
    for name, ids, params, trace, drawn in runs:
        inputs = build(ids, copy.deepcopy(params), trace)
        kinds = {PERTURBED} if "perturbed" in name else set()
        if drawn:
            cases.append(hidden(name, inputs, kinds=kinds, about=", ".join(kinds)))
        else:
            cases.append(Case(name, inputs, kinds=kinds))
    return cases


def _both(build):
    """The visible and the hidden builder of an exercise checked on every run of the toy."""
    return {
        "visible": lambda: _cases(_visible_runs(), build),
        "hidden": lambda g: _cases(_hidden_runs(g), build),
    }


# ---- embeddings --------------------------------------------------------------------------------


TOY_EMBED = Exercise(
    name="toy_embed",
    **_both(lambda ids, p, tr: {"ids": ids.copy(), "wte": p["wte"], "wpe": p["wpe"]}),
    reference=lambda ids, wte, wpe: lib.embed(ids, wte, wpe),
    mistakes=table(embedding.embed, embedding.EMBED),
)

# ---- LayerNorm ---------------------------------------------------------------------------------


def _ln_build(stream, norm, eps=EPS):
    return lambda ids, p, tr: {
        "x": tr[stream].copy(),
        "g": _get(p, norm)["g"],
        "b": _get(p, norm)["b"],
        "eps": eps,
    }


def _ln_visible():
    cases = _cases(_visible_runs(), _ln_build("embed.out", ("h", 0, "ln_1")))
    _, ids, params, trace, _ = _visible_runs()[0]
    cases.insert(1, Case("big-eps", _ln_build("embed.out", ("h", 0, "ln_1"), eps=0.5)(ids, params, trace)))
    # As many tokens as features, as a hidden case can have: a row's mean taken without keepdims,
    # shape (T,), then broadcasts along the wrong axis without an error.
    _, ids, params, trace, _ = _run("four-tokens", [0, 1, 2, 1], np.float32)
    cases.append(Case("four-tokens", _ln_build("embed.out", ("h", 0, "ln_1"))(ids, params, trace)))
    far = {**cases[0].inputs, "x": far_from_zero(rng(505), cases[0].inputs["x"].shape)}
    cases.append(Case("far", far, kinds={FAR}))
    return cases


def _ln_hidden(g):
    runs = _hidden_runs(g)
    cases = _cases(runs, _ln_build("embed.out", ("h", 0, "ln_1")))
    _, ids, params, trace, _ = runs[0]
    ln_2 = _ln_build("h.0.resid_mid", ("h", 0, "ln_2"))(ids, params, trace)
    ln_f = _ln_build("h.0.resid_post", ("ln_f",))(ids, params, trace)
    x = far_from_zero(g, ln_f["x"].shape, int(g.integers(7, 10)))  # float32: in float64 E[x²] is exact
    far = {**ln_f, "x": x, "g": ln_f["g"].astype(x.dtype), "b": ln_f["b"].astype(x.dtype)}
    return [
        *cases,
        hidden("ln_2", ln_2, about="LayerNorm 2"),
        hidden("ln_f", ln_f, about="the final norm"),
        hidden("far", far, kinds={FAR}, about=FAR),
    ]


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


TOY_LAYER_NORM = Exercise(
    name="toy_layer_norm",
    visible=_ln_visible,
    hidden=_ln_hidden,
    reference=lambda x, g, b, eps: lib.layer_norm(x, g, b, eps),
    mistakes=table(norms.layer_norm, norms.LAYER_NORM),
    error_hints=norms.ERROR_HINTS,
    steps=norms.LAYER_NORM_STEPS,
)

# ---- queries, keys, values ---------------------------------------------------------------------


def _qkv_inputs(ids, p, tr):
    return {
        "x": tr["h.0.ln_1"].copy(),
        "w": p["h"][0]["attn"]["c_attn"]["w"],
        "b": p["h"][0]["attn"]["c_attn"]["b"],
        "n_head": 2,
    }


def _qkv_ref(x, w, b, n_head):
    q, k, v = np.split(lib.linear(x, w, b), 3, axis=-1)  # [T, d] each
    return np.stack([lib.split_heads(t, n_head) for t in (q, k, v)])  # [3, H, T, d_head]


OTHER_HEADS = "another number of heads than the toy's two"


def _qkv_visible():
    """Every run of the toy, and its first run as one head, and as four heads of one feature."""
    cases = _cases(_visible_runs(), _qkv_inputs)
    _, ids, params, trace, _ = _visible_runs()[0]
    one, four = (_qkv_inputs(ids, params, trace) | {"n_head": n} for n in (1, 4))
    return [*cases, Case("one-head", one, kinds={OTHER_HEADS}), Case("four-heads", four, kinds={OTHER_HEADS})]


def _qkv_hidden(g):
    """Every drawn run, and the first split into one head or four."""
    runs = _hidden_runs(g)
    _, ids, params, trace, _ = runs[0]
    other = _qkv_inputs(ids, params, trace) | {"n_head": int(g.choice([1, 4]))}
    return [*_cases(runs, _qkv_inputs), hidden("other-heads", other, kinds={OTHER_HEADS}, about=OTHER_HEADS)]


TOY_QKV = Exercise(
    name="toy_qkv",
    visible=_qkv_visible,
    hidden=_qkv_hidden,
    reference=_qkv_ref,
    mistakes=table(
        attention.qkv,
        {
            **attention.SPLIT,
            "no-bias": ({"bias": False}, "the bias of c_attn is missing: x @ w + b"),
            **attention.Q_K_SWAPPED,
        },
    ),
    error_hints={
        "cannot reshape": "split x @ w + b into three blocks of d columns first, then each into heads"
    },
    stacked=(-4, ("q", "k", "v")),
)

# ---- attention probabilities -------------------------------------------------------------------


def _probs_inputs(ids, p, tr):
    return {"q": tr["h.0.attn.q"].copy(), "k": tr["h.0.attn.k"].copy()}


def _random_qk(g, H, T, dtype):
    return {"q": g.standard_normal((H, T, 4)).astype(dtype), "k": g.standard_normal((H, T, 4)).astype(dtype)}


def _probs_visible():
    return [
        Case("random", _random_qk(rng(500), 2, 3, np.float32)),
        *_cases(_visible_runs(), _probs_inputs),
        Case("random64", _random_qk(rng(501), 3, 5, np.float64)),
        Case("sharp", sharp_qk(rng(505), (2,), 4, 4, 30.0), kinds={SHARP}),
    ]


def _probs_hidden(g):
    H, T = int(g.integers(2, 5)), int(g.integers(4, 8))
    return [
        *_cases(_hidden_runs(g), _probs_inputs),
        hidden("random64", _random_qk(g, H, T, np.float64)),
        hidden("sharp", sharp_qk(g, (H,), T, 4, float(g.uniform(25.0, 40.0))), kinds={SHARP}, about=SHARP),
    ]


def _probs_ref(q, k):
    scaled = lib.attention_scores(q, k) / math.sqrt(q.shape[-1])
    masked = np.where(lib.causal_mask(q.shape[-2], k.shape[-2]), scaled, q.dtype.type(-np.inf))
    return lib.softmax(masked, axis=-1)


TOY_ATTENTION_PROBS = Exercise(
    name="toy_attention_probs",
    masked_softmax=True,
    visible=_probs_visible,
    hidden=_probs_hidden,
    reference=_probs_ref,
    mistakes=table(
        attention.probs,
        {
            **attention.SCALE,
            **attention.SCALE_D_MODEL,
            **attention.WEIGHTS,
            **attention.MASK_SHAPE,
            **attention.FILL,
            **attention.SOFTMAX_OVER_HEADS,
        },
    ),
)

# ---- heads, merge, output projection -----------------------------------------------------------


def _attn_out_inputs(ids, p, tr):
    return {
        "probs": tr["h.0.attn.probs"].copy(),
        "v": tr["h.0.attn.v"].copy(),
        "w": p["h"][0]["attn"]["c_proj"]["w"],
        "b": p["h"][0]["attn"]["c_proj"]["b"],
    }


def _attn_out_ref(probs, v, w, b):
    return lib.linear(lib.merge_heads(probs @ v), w, b)


TOY_ATTENTION_OUTPUT = Exercise(
    name="toy_attention_output",
    masked_softmax=True,
    **_both(_attn_out_inputs),
    reference=_attn_out_ref,
    mistakes=table(
        attention.attention_output,
        {
            **attention.MERGE,
            "no-bias": ({"bias": False}, "the bias of the output projection is missing: merged @ w + b"),
            "no-projection": (
                {"proj": False},
                "the output projection is missing: after merging the heads, apply merged @ w + b",
            ),
            "probs-transposed": (
                {"transpose": True},
                "you used the transposed weights: row i of probs (query i) mixes the value rows, so each "
                "head's output is probs @ v",
            ),
            "w-transposed": (
                {"w_transposed": True},
                "you multiplied by w.T, the transposed projection matrix: the output projection is merged "
                "@ w + b with w as given (its rows match the merged features, its columns the outputs)",
            ),
        },
    ),
)

# ---- the MLP -----------------------------------------------------------------------------------


def _mlp_inputs(ids, p, tr):
    m = p["h"][0]["mlp"]
    return {
        "x": tr["h.0.ln_2"].copy(),
        "w_fc": m["c_fc"]["w"],
        "b_fc": m["c_fc"]["b"],
        "w_proj": m["c_proj"]["w"],
        "b_proj": m["c_proj"]["b"],
    }


def _mlp_ref(x, w_fc, b_fc, w_proj, b_proj):
    return lib.mlp(x, {"c_fc": {"w": w_fc, "b": b_fc}, "c_proj": {"w": w_proj, "b": b_proj}}, lib.gelu)


TOY_MLP = Exercise(
    name="toy_mlp",
    **_both(_mlp_inputs),
    reference=_mlp_ref,
    mistakes=table(mlp.toy_mlp, mlp.MLP),
    steps=mlp.TOY_MLP_STEPS,
    error_hints=mlp.PRODUCT_HINTS,
)

# ---- the loss ----------------------------------------------------------------------------------


def _loss_cases(runs):
    cases = []
    for name, ids, _params, trace, drawn in runs:
        if name == "ai-rocks":
            targets = np.array([1, 2])  # "rocks" after "AI", "<eos>" after "AI rocks"
        else:
            targets = np.roll(ids, -1)
        inputs = {"logits": trace["logits"].copy(), "targets": targets}
        cases.append(hidden(name, inputs) if drawn else Case(name, inputs))
    return cases


def _loss_batch(g, B, T, V):
    return {"logits": 3 * g.standard_normal((B, T, V)), "targets": g.integers(0, V, size=(B, T))}


FAR_TARGET = "a target whose probability underflows: its logit far below its row's largest"


def _far_target(g, T, V):
    """float32 loss inputs in which the first target's logit is 150 below its row's largest: its
    probability rounds to 0, its log-softmax does not."""
    logits = (3 * g.standard_normal((T, V))).astype(np.float32)
    targets = g.integers(0, V, size=T)
    logits[0, targets[0]] = logits[0].max() - 150
    return {"logits": logits, "targets": targets}


LARGE = "large logits, where exp of a logit overflows unless each row's maximum is subtracted"


def _large(g, T, V, shift):
    """float32 logits around ``shift`` (above 88.7, where np.exp of float32 overflows)."""
    logits = (3 * g.standard_normal((T, V)) + shift).astype(np.float32)
    return {"logits": logits, "targets": g.integers(0, V, size=T)}


def _loss_hidden(g):
    B, T, V = int(g.integers(2, 4)), int(g.integers(4, 7)), int(g.integers(5, 9))
    shift = float(g.uniform(100.0, 130.0))
    return [
        *_loss_cases(_hidden_runs(g)),
        hidden("batch64", _loss_batch(g, B, T, V)),
        hidden("far-target", _far_target(g, T, V), kinds={FAR_TARGET}, about=FAR_TARGET),
        hidden("large", _large(g, T, V, shift), kinds={LARGE}, about=f"logits around {shift:.0f}"),
    ]


TOY_LOSS = Exercise(
    name="toy_loss",
    visible=lambda: [
        *_loss_cases(_visible_runs()),
        Case("batch64", _loss_batch(rng(502), 2, 4, 5)),
        Case(
            "batch-three",
            {
                k: v.astype(np.float32) if v.dtype.kind == "f" else v
                for k, v in _loss_batch(rng(503), 3, 3, 6).items()
            },
        ),
        Case("far-target", _far_target(rng(504), 4, 6), kinds={FAR_TARGET}),
        Case("large", _large(rng(505), 4, 6, 110.0), kinds={LARGE}),
    ],
    hidden=_loss_hidden,
    reference=lambda logits, targets: lib.cross_entropy(logits, targets),
    terms=(
        "position",
        lambda inputs: [
            {"logits": row[None], "targets": target[None]}
            for row, target in zip(
                inputs["logits"].reshape(-1, inputs["logits"].shape[-1]),
                inputs["targets"].reshape(-1),
                strict=True,
            )
        ],
    ),
    mistakes=table(
        head.nll,
        {
            **{k: v for k, v in head.LOSS.items() if k != "per-position"},
            "shifted": (
                {"shift": "next"},
                "the targets are already the next tokens (targets[t] follows position t): score logits[t] "
                "against targets[t]; do not shift them again",
            ),
        },
    ),
    check_dtype="float",
    error_hints={Broadcast("lost-axis"): activations.ROW_KEEPDIMS},
)

# ---- the whole pass ----------------------------------------------------------------------------


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


# The toy's forward pass with one thing changed (``block.forward``'s knobs).
variant_forward = functools.partial(block.forward, n_head=2, eps=EPS)


TOY_FORWARD = Exercise(
    name="toy_forward",
    masked_softmax=True,
    **_both(lambda ids, p, tr: {"ids": ids.copy(), "params": p}),
    reference=_forward_ref,
    stations=_forward_stations,
    parts=FORWARD_PARTS,
    mistakes=table(
        variant_forward,
        {
            **block.BLOCK,
            "no-final-norm": (
                {"final_norm": False},
                "the final LayerNorm ln_f is missing: normalise the stream before the LM head",
            ),
            "no-positions": (
                {"positions": False},
                "the position embeddings are missing: the stream starts as wte[ids] + wpe[:T]",
            ),
        },
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
