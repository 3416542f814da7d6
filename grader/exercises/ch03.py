"""Chapter 3, the LM head: from the last block's stream to logits, probabilities and a loss.

Conventions the notebook states and the checks follow:

- ``lm_head(x, ln_f, wte, w_unembed=None)`` applies the final LayerNorm, then unembeds: with
  ``w_unembed=None`` the head is tied (``x @ wte.T``), otherwise ``x @ w_unembed`` with
  ``w_unembed`` of shape (d, V).
- ``softmax`` and ``log_softmax`` work over the last axis.
- ``cross_entropy(logits, ids)`` takes the logits of the model's own input ``ids`` and shifts
  internally: ``logits[..., :-1, :]`` are scored against ``ids[..., 1:]``; it returns the mean
  negative log-likelihood in nats.
- ``perplexity(logits, ids)`` is ``exp(cross_entropy(logits, ids))``.
"""

import numpy as np

import lib

from ..exercise import Case, Exercise, choice, hidden, rng, size
from .wrong import activations, head, table

ASSIGNMENT = "03-lm-head"
# The lib functions the scorer lends this chapter's students (``grader.lending``): the LayerNorm
# of chapter 2, which the head applies first. ``GRADED``: the lib functions that compute this
# chapter's exercises, which the scorer's lib must never hold.
LENDS = ("layer_norm",)
GRADED = ("lm_head", "softmax", "log_softmax", "cross_entropy", "perplexity")
SQUARE = "a square input, so the shapes alone cannot tell one axis from the other"
LARGE = "large logits, where a naive exp overflows"
ROWS_APART = "rows far apart: every logit of one row far below those of another"


# ---- lm_head -----------------------------------------------------------------------------------


def _ln(x, ln_f):
    return lib.layer_norm(x, ln_f["g"], ln_f.get("b"))


def _lm_head(x, ln_f, wte, w_unembed=None):
    return lib.lm_head(_ln(x, ln_f), wte.T if w_unembed is None else w_unembed)


def _head_arrays(g, lead, d, V, dtype, tied):
    x = (3.0 * g.normal(size=(*lead, d)) + 1.0).astype(dtype)  # an un-normalised stream
    ln_f = {"g": (1.0 + 0.2 * g.normal(size=d)).astype(dtype), "b": (0.3 * g.normal(size=d)).astype(dtype)}
    wte = (0.5 * g.normal(size=(V, d))).astype(dtype)
    inputs = {"x": x, "ln_f": ln_f, "wte": wte}
    if not tied:
        inputs["w_unembed"] = (0.5 * g.normal(size=(d, V))).astype(dtype)
    return inputs


D_IS_V = "a tied head with d = V, so the shapes alone cannot tell wte from wte.T"
QUIET_ROW = "a position whose stream barely varies, where the final norm's eps matters"


def _quiet_row(g, inputs: dict) -> dict:
    """``inputs`` with the stream's first position spread by 1e-3 around its mean: a variance of
    about 1e-6, below LayerNorm's eps of 1e-5, so another eps gives other logits."""
    x = inputs["x"].copy()
    x[..., 0, :] = x[..., 0, :].mean(axis=-1, keepdims=True) + 1e-3 * g.normal(size=x.shape[-1])
    return {**inputs, "x": x}


def _lm_head_visible():
    return [
        Case("tied", _head_arrays(rng(31), (5,), 8, 11, np.float32, tied=True)),
        Case("untied", _head_arrays(rng(32), (4,), 8, 11, np.float32, tied=False)),
        Case("batch64", _head_arrays(rng(33), (2, 3), 6, 9, np.float64, tied=False)),
        Case("square", _head_arrays(rng(34), (3,), 7, 7, np.float32, tied=True), kinds={D_IS_V}),
        Case(
            "quiet",
            _quiet_row(rng(36), _head_arrays(rng(35), (3,), 8, 10, np.float32, tied=True)),
            kinds={QUIET_ROW},
        ),
    ]


def _lm_head_hidden(g):
    B, T, d, V = size(g, 2, 3), size(g, 4, 7), size(g, 8, 14), size(g, 16, 24)
    square = size(g, 6, 12)
    T_untied, d_untied, V_untied = size(g, 4, 8), size(g, 4, 8), size(g, 9, 14)
    return [
        hidden("batch64", _head_arrays(g, (B, T), d, V, np.float64, tied=True)),
        hidden(
            "square",
            _head_arrays(g, (size(g, 2, 5),), square, square, np.float32, tied=True),
            kinds={D_IS_V},
            about=D_IS_V,
        ),
        hidden("untied64", _head_arrays(g, (T_untied,), d_untied, V_untied, np.float64, tied=False)),
        hidden(
            "quiet",
            _quiet_row(
                g, _head_arrays(g, (size(g, 2, 5),), size(g, 6, 12), size(g, 9, 14), np.float32, tied=False)
            ),
            kinds={QUIET_ROW},
            about=QUIET_ROW,
        ),
    ]


LM_HEAD_PRODUCT = (
    "the inner dimensions of the product do not match: a tied head multiplies by wte.T (wte is (V, d), "
    "so wte.T is (d, V)); an untied head's w_unembed is (d, V) already: multiply by it as it is"
)

LM_HEAD = Exercise(
    name="lm_head",
    visible=_lm_head_visible,
    hidden=_lm_head_hidden,
    reference=_lm_head,
    mistakes=table(
        head.lm_head,
        {
            "no-final-norm": (
                {"norm": False},
                "the logits are off because the final norm is missing: apply layer_norm with ln_f's g "
                "and b to x first, then unembed",
            ),
            "norm-eps": (
                {"eps": 1e-6},
                "the final norm's eps is off: LayerNorm's eps is 1e-5 (what lib.layer_norm and GPT-2 use); "
                "it shows on a position whose stream barely varies",
            ),
            "norm-without-bias": (
                {"bias": False},
                "close: the final LayerNorm has a bias too; pass ln_f['b'] as well as ln_f['g']",
            ),
            "wte-not-transposed": (
                {"unembed": "wte"},
                "a tied head multiplies by wte.T, not wte: wte is (V, d), one row per token, and the "
                "logit of token v is the dot product of x with row v",
            ),
            "untied-ignored": (
                {"unembed": "tied"},
                "when w_unembed is given the head is untied: multiply by w_unembed (d, V), not by wte.T",
            ),
            "probabilities": (
                {"probabilities": True},
                "you returned probabilities: the LM head returns logits, the softmax comes after it",
            ),
        },
    ),
    error_hints={
        "mismatch in its core dimension": LM_HEAD_PRODUCT,
        "not aligned": LM_HEAD_PRODUCT,
    },
)


# ---- softmax and log-softmax -------------------------------------------------------------------


def _drawn(g, shape, dtype=np.float32, scale=2.0, shift=0.0):
    return (scale * g.normal(size=shape) + shift).astype(dtype)


def _masked(g, rows, cols, dtype=np.float32):
    allowed = np.tri(rows, cols, k=size(g, 0, 2), dtype=bool)
    return np.where(allowed, _drawn(g, (rows, cols), dtype), dtype(-np.inf))


def _apart(g, rows, cols, gap, dtype=np.float32):
    """Rows ``gap`` apart, rising: exp(x - the whole array's max) is 0 on every row but the last,
    and exp(x) overflows on every row but the first."""
    return _drawn(g, (rows, cols), dtype) + gap * np.arange(rows, dtype=dtype)[:, None]


def _apart_batch(g, rows, cols, gap, dtype=np.float32):
    """Two sequences of rows ``gap`` apart: the whole array's max fails on a batch as well, so code
    that takes it only when the input has more than two axes is caught too."""
    return _apart(g, 2 * rows, cols, gap, dtype).reshape(2, rows, cols)


def _spread(g, rows, cols, gap, dtype=np.float32):
    """A quarter of each row ``gap`` above the rest: the row's mean is far below its max, so exp of
    the logits minus the mean (any shift but the max) overflows in float32."""
    x = _drawn(g, (rows, cols), dtype)
    x[:, : max(1, cols // 4)] += gap
    return x - dtype(gap / 2)


def _first_low(g, rows, cols, gap, dtype=np.float32):
    """Rows whose first logit is ``gap`` below the rest, the last row's -inf (masked): a shift by
    anything but the row's maximum (its first entry) overflows, or is -inf."""
    x = _drawn(g, (rows, cols), dtype)
    x[:, 0] -= dtype(gap)
    x[-1, 0] = -np.inf
    return x


FIRST_LOW = "rows whose first logit is far below the others, or -inf"
ROW_MAX = (
    {"peak": "all"},
    "you subtracted the maximum of the whole array: subtract each row's own maximum "
    "(x.max(axis=-1, keepdims=True)), or a row far below the largest one underflows to exp(...) = 0",
)


def _softmax_visible():
    return [
        Case("rows", {"x": _drawn(rng(41), (3, 7))}),
        Case(
            # Logits in [84, 88]: every exp is finite in float32, but their sum overflows to inf.
            "large",
            {"x": (84.0 + 4.0 * rng(42).random((2, 16))).astype(np.float32)},
            kinds={LARGE},
        ),
        Case("huge64", {"x": _drawn(rng(43), (2, 2, 6), np.float64, scale=3.0, shift=750.0)}, kinds={LARGE}),
        Case("square", {"x": _drawn(rng(44), (5, 5))}, kinds={SQUARE}),
        Case("masked", {"x": _masked(rng(45), 4, 6)}),
        Case("apart", {"x": _apart(rng(46), 3, 6, 150.0)}, kinds={ROWS_APART}),
        Case("apart-batch", {"x": _apart_batch(rng(48), 2, 6, 150.0)}, kinds={ROWS_APART}),
        Case("first-low", {"x": _first_low(rng(47), 3, 6, 120.0)}, kinds={FIRST_LOW}),
    ]


def _softmax_hidden(g):
    shape3, square = (size(g, 2, 3), size(g, 2, 4), size(g, 4, 7)), size(g, 4, 7)
    shift = float(g.uniform(600.0, 1000.0))
    return [
        hidden("3d", {"x": _drawn(g, shape3, np.float64)}),
        hidden(
            "huge64",
            {"x": _drawn(g, (size(g, 2, 3), size(g, 5, 8)), np.float64, scale=3.0, shift=shift)},
            kinds={LARGE},
            about=f"logits around {shift:.0f}",
        ),
        hidden("square", {"x": _drawn(g, (square, square))}, kinds={SQUARE}, about="a square input"),
        hidden(
            "masked",
            {"x": _masked(g, size(g, 3, 5), size(g, 5, 8))},
            about="rows with some logits at -inf (masked out)",
        ),
        hidden(
            "apart64",
            {"x": _apart_batch(g, size(g, 2, 4), size(g, 4, 8), float(g.uniform(900.0, 1200.0)), np.float64)},
            kinds={ROWS_APART},
            about=ROWS_APART,
        ),
        hidden(
            "first-low",
            {"x": _first_low(g, size(g, 2, 4), size(g, 4, 8), float(g.uniform(100.0, 150.0)))},
            kinds={FIRST_LOW},
            about=FIRST_LOW,
        ),
    ]


SOFTMAX = Exercise(
    name="softmax",
    visible=_softmax_visible,
    hidden=_softmax_hidden,
    reference=lambda x: lib.softmax(x, axis=-1),
    mistakes=table(
        activations.softmax,
        {
            "no-max-subtraction": (
                {"shift": False},
                "on large logits your probabilities come out 0 or NaN: np.exp overflows float32 above "
                "about 88.7, so the sum is inf. Subtract each row's maximum before exponentiating "
                "(shifting a row does not change its softmax)",
            ),
            "axis-0": (
                {"axis": 0},
                "softmax over the wrong axis: each row (one position's scores for every token, the last "
                "axis) must sum to 1; use axis=-1",
            ),
            "whole-array": (
                {"total": "all"},
                "you divided by the sum of the whole array: divide each row by its own sum, "
                "e.sum(axis=-1, keepdims=True)",
            ),
            "whole-array-max": ROW_MAX,
            "first-entry": (
                {"peak": "first"},
                "you subtracted each row's first logit, not its largest: where the first is far below "
                "the others, exp overflows (inf / inf is NaN), and a first logit of -inf makes the row "
                "NaN. Subtract x.max(axis=-1, keepdims=True)",
            ),
            "no-keepdims": (
                {"keepdims": False},
                "the max and the sum are broadcast along the wrong axis: use keepdims=True so a (T, 1) "
                "column is subtracted from (and divides) each row",
            ),
        },
    ),
    error_hints={
        "could not be broadcast": activations.ROW_KEEPDIMS,
    },
)


def _log_softmax_visible():
    gaps = np.array([[30.0, 0.0, -50.0, -120.0, 5.0], [1.0, 2.0, 3.0, -200.0, 0.0]], dtype=np.float32)
    return [
        Case("rows", {"x": _drawn(rng(51), (3, 7))}),
        Case("large", {"x": _drawn(rng(52), (2, 8), scale=1.0, shift=100.0)}, kinds={LARGE}),
        Case("gaps", {"x": gaps}),
        Case("huge64", {"x": _drawn(rng(53), (2, 3, 5), np.float64, shift=800.0)}, kinds={LARGE}),
        Case("square", {"x": _drawn(rng(54), (6, 6))}, kinds={SQUARE}),
        Case("apart", {"x": _apart(rng(55), 3, 5, 150.0)}, kinds={ROWS_APART}),
        Case("spread", {"x": _spread(rng(56), 2, 8, 300.0)}),
    ]


def _log_softmax_hidden(g):
    shape3, square = (size(g, 2, 3), size(g, 3, 5), size(g, 5, 8)), size(g, 5, 8)
    shift = float(g.uniform(700.0, 1000.0))
    return [
        hidden("3d", {"x": _drawn(g, shape3, np.float64)}),
        hidden(
            "huge64",
            {"x": _drawn(g, (size(g, 2, 4), size(g, 4, 7)), np.float64, shift=shift)},
            kinds={LARGE},
            about=f"logits around {shift:.0f}",
        ),
        hidden("square", {"x": _drawn(g, (square, square))}, kinds={SQUARE}, about="a square input"),
        hidden(
            "apart64",
            {"x": _apart_batch(g, size(g, 2, 4), size(g, 4, 8), float(g.uniform(900.0, 1200.0)), np.float64)},
            kinds={ROWS_APART},
            about=ROWS_APART,
        ),
        hidden(
            "spread",
            {"x": _spread(g, size(g, 2, 4), size(g, 6, 10), float(g.uniform(250.0, 400.0)))},
            about="a few logits per row far above the others",
        ),
    ]


LOG_SOFTMAX = Exercise(
    name="log_softmax",
    visible=_log_softmax_visible,
    hidden=_log_softmax_hidden,
    reference=lambda x: lib.log_softmax(x, axis=-1),
    mistakes=table(
        activations.log_softmax,
        {
            "no-max-subtraction": (
                {"shift": False},
                "every entry came out -inf on large logits: the sum of np.exp(x) overflowed. Subtract the "
                "row maximum m first: log_softmax(x) = (x - m) - log(sum(exp(x - m)))",
            ),
            "log-of-softmax": (
                {"via": "softmax"},
                "you took the log of the softmax: probabilities smaller than float32 can hold round to 0 "
                "and their log is -inf. Compute (x - m) - log(sum(exp(x - m))) directly",
            ),
            "log2": (
                {"base": "2"},
                "you used log base 2: log-probabilities here are natural logs (np.log), in nats",
            ),
            "axis-0": (
                {"axis": 0},
                "log-softmax over the wrong axis: normalise over the last axis (the vocabulary)",
            ),
            "whole-array-max": ROW_MAX,
        },
    ),
    error_hints={
        "could not be broadcast": activations.ROW_KEEPDIMS,
    },
)


# ---- cross-entropy and perplexity --------------------------------------------------------------

TWO = "a sequence of 2 tokens (one prediction)"


def _loss_arrays(g, lead, V, dtype=np.float32, scale=2.0, shift=0.0):
    logits = (scale * g.normal(size=(*lead, V)) + shift).astype(dtype)
    ids = g.integers(0, V, size=lead)
    return {"logits": logits, "ids": ids}


FAR_TARGET = "a target whose probability underflows: its logit far below its row's largest"


def _far_target(g, lead, V, dtype=np.float32):
    """Loss inputs in which the first target's logit is 150 below its row's largest: its
    probability rounds to 0 in float32, its log-softmax does not."""
    arrays = _loss_arrays(g, lead, V, dtype)
    row, target = arrays["logits"][..., 0, :], arrays["ids"][..., 1, None]
    np.put_along_axis(row, target, row.max(axis=-1, keepdims=True) - 150, axis=-1)
    return arrays


def _loss_visible():
    return [
        Case("sentence", _loss_arrays(rng(61), (9,), V=12)),
        Case("batch", _loss_arrays(rng(62), (2, 6), V=10)),
        Case("batch64", _loss_arrays(rng(63), (3, 5), V=8, dtype=np.float64)),
        Case("two", _loss_arrays(rng(64), (2,), V=6), kinds={TWO}),
        Case("large", _loss_arrays(rng(65), (7,), V=12, scale=3.0, shift=110.0), kinds={LARGE}),
        Case("far-target", _far_target(rng(66), (6,), V=9), kinds={FAR_TARGET}),
    ]


def _loss_hidden(g):
    B, T, shift = size(g, 2, 4), size(g, 5, 9), float(g.uniform(100.0, 130.0))
    return [
        hidden("batch64", _loss_arrays(g, (B, T), V=size(g, 12, 24), dtype=np.float64)),
        hidden("two", _loss_arrays(g, (2,), V=size(g, 4, 8)), kinds={TWO}, about=TWO),
        hidden(
            "large",
            _loss_arrays(g, (size(g, 6, 10),), V=size(g, 12, 20), scale=3.0, shift=shift),
            kinds={LARGE},
            about=f"logits around {shift:.0f}",
        ),
        hidden(
            "far-target",
            _far_target(g, (size(g, 2, 3), size(g, 4, 7)), V=size(g, 8, 14)),
            kinds={FAR_TARGET},
            about=FAR_TARGET,
        ),
    ]


def _cross_entropy(logits, ids):
    return lib.cross_entropy(logits[..., :-1, :], ids[..., 1:])


def _predictions(inputs: dict) -> list[dict]:
    """Each prediction alone: the logits of one position and the ids of it and the next."""
    logits, ids = inputs["logits"], inputs["ids"]
    logits, ids = logits.reshape(-1, *logits.shape[-2:]), ids.reshape(-1, ids.shape[-1])
    return [
        {"logits": logits[b, t : t + 2], "ids": ids[b, t : t + 2]}
        for b in range(ids.shape[0])
        for t in range(ids.shape[1] - 1)
    ]


PREDICTIONS = ("position", _predictions)


SHIFTS = {
    "not-shifted": (
        {"shift": "none"},
        "the targets are not shifted: position t predicts token t + 1, so score logits[:-1] against "
        "ids[1:] (the last position has no target)",
    ),
    "shifted-backwards": (
        {"shift": "back"},
        "shifted the wrong way: logits at position t predict the NEXT token, so pair logits[:-1] with "
        "ids[1:], not logits[1:] with ids[:-1]",
    ),
    "both-shifted": (
        {"shift": "both"},
        "you shifted the logits as well as the targets: logits[1:] against ids[1:] scores each position "
        "against its own token; position t predicts the NEXT token, so pair logits[:-1] with ids[1:]",
    ),
    "rolled": (
        {"shift": "rolled"},
        "the targets are rolled round (np.roll): the last position is scored against the FIRST token, "
        "which it does not predict; the last position has no target, so pair logits[:-1] with ids[1:]",
    ),
    "flattened-then-shifted": (
        {"shift": "flattened"},
        "you flattened the batch into one long sequence before shifting: the last position of each "
        "sequence is then scored against the FIRST token of the next one, which it does not predict. "
        "Shift within each sequence, logits[..., :-1, :] against ids[..., 1:]",
    ),
}
CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    visible=_loss_visible,
    hidden=_loss_hidden,
    reference=_cross_entropy,
    mistakes=table(
        head.cross_entropy,
        {
            **SHIFTS,
            **{
                k: v
                for k, v in head.LOSS.items()
                if k
                in (
                    "sum",
                    "bits",
                    "per-position",
                    "sign",
                    "probabilities",
                    "log-of-probabilities",
                    "every-target",
                )
            },
        },
    ),
    check_dtype="float",
    terms=PREDICTIONS,
    error_hints={
        "index": "pick each position's target with np.take_along_axis(logp, targets[..., None], axis=-1) "
        "(or logp[np.arange(T - 1), targets] for one sequence)",
    },
)


PERPLEXITY = Exercise(
    name="perplexity",
    visible=_loss_visible,
    hidden=_loss_hidden,
    reference=lambda logits, ids: lib.perplexity(_cross_entropy(logits, ids)),
    terms=PREDICTIONS,
    mistakes=table(
        head.perplexity,
        {
            "base-2": (
                {"base": 2.0},
                "the loss is in nats, so its perplexity is e ** loss (np.exp), not 2 ** loss",
            ),
            "mean-of-exps": (
                {"reduce": "mean-of-exps"},
                "you averaged the per-position perplexities: perplexity is exp of the MEAN loss (a "
                "geometric mean of 1 / p), not the mean of exp(loss_t)",
            ),
            "per-sequence": (
                {"reduce": "per-sequence"},
                "you averaged one perplexity per sequence: the perplexity of a batch is exp of the mean loss "
                "over every predicted position of every sequence (exp of your cross_entropy), not the mean "
                "of the sequences' perplexities",
            ),
            "last-only": (
                {"reduce": "last"},
                "your perplexity uses the last prediction alone: it is exp of the MEAN loss over every "
                "predicted position (exp of your cross_entropy), not of the last position's loss",
            ),
            "exp-of-sum": (
                {"reduce": "sum"},
                "you exponentiated the summed loss: use the mean loss, so the perplexity does not grow "
                "with the length of the text",
            ),
            "exp-minus": (
                {"sign": -1.0},
                "exp(-loss) is the geometric-mean probability of the targets; perplexity is its inverse, exp(+loss)",
            ),
            "not-shifted": (
                {"shift": "none"},
                "the targets are not shifted: use your cross_entropy, which scores logits[:-1] against ids[1:]",
            ),
            "both-shifted": (
                {"shift": "both"},
                "the logits are shifted as well as the targets (logits[1:] against ids[1:]): use your "
                "cross_entropy, which scores logits[:-1] against ids[1:]",
            ),
        },
    ),
    check_dtype="float",
)


# ---- concept checks ----------------------------------------------------------------------------

Q_NEXT_ROW = choice("q_next_row", ("a", "b", "c", "d"))

Q_FINAL_NORM = choice("q_final_norm", ("a", "b", "c", "d"))

Q_UNIFORM = choice("q_uniform", ("a", "b", "c", "d"))

EXERCISES = [LM_HEAD, SOFTMAX, LOG_SOFTMAX, CROSS_ENTROPY, PERPLEXITY, Q_NEXT_ROW, Q_FINAL_NORM, Q_UNIFORM]
