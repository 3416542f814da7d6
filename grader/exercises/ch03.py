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

from ..exercise import Case, Exercise, Mistake, choice, rng

ASSIGNMENT = "03-lm-head"
LN2 = float(np.log(2.0))


# ---- lm_head -----------------------------------------------------------------------------------


def _ln(x, ln_f):
    return lib.layer_norm(x, ln_f["g"], ln_f.get("b"))


def _lm_head(x, ln_f, wte, w_unembed=None):
    return lib.lm_head(_ln(x, ln_f), wte.T if w_unembed is None else w_unembed)


def _head_inputs(seed, lead, d, V, dtype=np.float32, tied=True):
    g = rng(seed)
    x = (3.0 * g.normal(size=(*lead, d)) + 1.0).astype(dtype)  # an un-normalised stream
    ln_f = {"g": (1.0 + 0.2 * g.normal(size=d)).astype(dtype), "b": (0.3 * g.normal(size=d)).astype(dtype)}
    wte = (0.5 * g.normal(size=(V, d))).astype(dtype)
    inputs = {"x": x, "ln_f": ln_f, "wte": wte}
    if not tied:
        inputs["w_unembed"] = (0.5 * g.normal(size=(d, V))).astype(dtype)
    return inputs


def _lm_head_cases():
    return [
        Case("tied", _head_inputs(31, (5,), d=8, V=11)),
        Case("untied", _head_inputs(32, (4,), d=8, V=11, tied=False)),
        Case(
            "batch64",
            _head_inputs(33, (2, 6), d=12, V=20, dtype=np.float64),
            hidden=True,
            describe="a batch of 2 x 6 positions, tied, float64",
        ),
        Case(
            "square",
            _head_inputs(34, (3,), d=10, V=10),
            hidden=True,
            describe="a tied head with d = V, so the shapes alone cannot tell wte from wte.T",
        ),
        Case(
            "untied64",
            _head_inputs(35, (7,), d=6, V=9, dtype=np.float64, tied=False),
            hidden=True,
            describe="an untied head, float64",
        ),
    ]


LM_HEAD = Exercise(
    name="lm_head",
    cases=_lm_head_cases,
    reference=_lm_head,
    mistakes=(
        Mistake(
            "no-final-norm",
            lambda x, ln_f, wte, w_unembed=None: x @ (wte.T if w_unembed is None else w_unembed),
            "the logits are off because the final norm is missing: apply layer_norm with ln_f's g "
            "and b to x first, then unembed",
        ),
        Mistake(
            "norm-without-bias",
            lambda x, ln_f, wte, w_unembed=None: (
                lib.layer_norm(x, ln_f["g"]) @ (wte.T if w_unembed is None else w_unembed)
            ),
            "close: the final LayerNorm has a bias too; pass ln_f['b'] as well as ln_f['g']",
        ),
        Mistake(
            "wte-not-transposed",
            lambda x, ln_f, wte, w_unembed=None: _ln(x, ln_f) @ (wte if w_unembed is None else w_unembed),
            "a tied head multiplies by wte.T, not wte: wte is (V, d), one row per token, and the "
            "logit of token v is the dot product of x with row v",
        ),
        Mistake(
            "untied-ignored",
            lambda x, ln_f, wte, w_unembed=None: _ln(x, ln_f) @ wte.T,
            "when w_unembed is given the head is untied: multiply by w_unembed (d, V), not by wte.T",
        ),
        Mistake(
            "probabilities",
            lambda x, ln_f, wte, w_unembed=None: lib.softmax(_lm_head(x, ln_f, wte, w_unembed)),
            "you returned probabilities: the LM head returns logits, the softmax comes after it",
        ),
    ),
    error_hints={
        "mismatch in its core dimension": "the inner dimensions of the product do not match: wte has "
        "shape (V, d), so a tied head multiplies by its transpose, x @ wte.T of shape (d, V)",
        "not aligned": "the inner dimensions of the product do not match: wte has shape (V, d), so a tied "
        "head multiplies by its transpose, x @ wte.T of shape (d, V)",
    },
)


# ---- softmax and log-softmax -------------------------------------------------------------------


def _logits(seed, shape, dtype=np.float32, scale=2.0, shift=0.0):
    return (scale * rng(seed).normal(size=shape) + shift).astype(dtype)


def _softmax_cases():
    return [
        Case("rows", {"x": _logits(41, (3, 7))}),
        Case(
            # Logits in [84, 88]: every exp is finite in float32, but their sum overflows to inf.
            "large",
            {"x": (84.0 + 4.0 * rng(42).random((2, 16))).astype(np.float32)},
        ),
        Case(
            "3d", {"x": _logits(43, (2, 3, 5), np.float64)}, hidden=True, describe="shape (2, 3, 5), float64"
        ),
        Case(
            "huge64",
            {"x": _logits(44, (2, 6), np.float64, scale=3.0, shift=800.0)},
            hidden=True,
            describe="float64 logits around 800",
        ),
        Case("square", {"x": _logits(45, (5, 5))}, hidden=True, describe="a square (5, 5) input"),
        Case(
            "masked",
            {"x": np.where(np.tri(4, 6, k=2, dtype=bool), _logits(46, (4, 6)), np.float32(-np.inf))},
            hidden=True,
            describe="rows with some logits equal to -inf (masked out)",
        ),
    ]


def _naive_softmax(x):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)


def _softmax_axis0(x):
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _softmax_whole(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum()


def _softmax_no_keepdims(x):
    e = np.exp(x - x.max(axis=-1))
    return e / e.sum(axis=-1)


SOFTMAX = Exercise(
    name="softmax",
    cases=_softmax_cases,
    reference=lambda x: lib.softmax(x, axis=-1),
    mistakes=(
        Mistake(
            "no-max-subtraction",
            _naive_softmax,
            "on large logits your probabilities come out 0 or NaN: np.exp overflows float32 above "
            "about 88.7, so the sum is inf. Subtract each row's maximum before exponentiating "
            "(shifting a row does not change its softmax)",
        ),
        Mistake(
            "axis-0",
            _softmax_axis0,
            "softmax over the wrong axis: each row (one position's scores for every token, the last "
            "axis) must sum to 1; use axis=-1",
        ),
        Mistake(
            "whole-array",
            _softmax_whole,
            "you divided by the sum of the whole array: divide each row by its own sum, "
            "e.sum(axis=-1, keepdims=True)",
        ),
        Mistake(
            "no-keepdims",
            _softmax_no_keepdims,
            "the max and the sum are broadcast along the wrong axis: use keepdims=True so a (T, 1) "
            "column is subtracted from (and divides) each row",
        ),
    ),
    error_hints={
        "could not be broadcast": "use keepdims=True in max and sum, so the (T, 1) result lines up "
        "with the rows of the (T, V) logits",
    },
)


def _log_softmax_cases():
    gaps = np.array([[30.0, 0.0, -50.0, -120.0, 5.0], [1.0, 2.0, 3.0, -200.0, 0.0]], dtype=np.float32)
    return [
        Case("rows", {"x": _logits(51, (3, 7))}),
        Case("large", {"x": _logits(52, (2, 8), scale=1.0, shift=100.0)}),
        Case("gaps", {"x": gaps}),
        Case(
            "3d", {"x": _logits(53, (2, 4, 6), np.float64)}, hidden=True, describe="shape (2, 4, 6), float64"
        ),
        Case(
            "huge64",
            {"x": _logits(54, (3, 5), np.float64, scale=2.0, shift=900.0)},
            hidden=True,
            describe="float64 logits around 900",
        ),
        Case("square", {"x": _logits(55, (6, 6))}, hidden=True, describe="a square (6, 6) input"),
    ]


def _naive_log_softmax(x):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _log_of_softmax(x):
    with np.errstate(divide="ignore"):
        return np.log(lib.softmax(x, axis=-1))


LOG_SOFTMAX = Exercise(
    name="log_softmax",
    cases=_log_softmax_cases,
    reference=lambda x: lib.log_softmax(x, axis=-1),
    mistakes=(
        Mistake(
            "no-max-subtraction",
            _naive_log_softmax,
            "every entry came out -inf on large logits: the sum of np.exp(x) overflowed. Subtract the "
            "row maximum m first: log_softmax(x) = (x - m) - log(sum(exp(x - m)))",
        ),
        Mistake(
            "log-of-softmax",
            _log_of_softmax,
            "you took the log of the softmax: probabilities smaller than float32 can hold round to 0 "
            "and their log is -inf. Compute (x - m) - log(sum(exp(x - m))) directly",
        ),
        Mistake(
            "log2",
            lambda x: lib.log_softmax(x, axis=-1) / np.asarray(LN2, x.dtype),
            "you used log base 2: log-probabilities here are natural logs (np.log), in nats",
        ),
        Mistake(
            "axis-0",
            lambda x: lib.log_softmax(x, axis=0),
            "log-softmax over the wrong axis: normalise over the last axis (the vocabulary)",
        ),
    ),
    error_hints={
        "could not be broadcast": "use keepdims=True in max and sum, so the (T, 1) result lines up "
        "with the rows of the (T, V) logits",
    },
)


# ---- cross-entropy and perplexity --------------------------------------------------------------


def _loss_inputs(seed, lead, V, dtype=np.float32, scale=2.0, shift=0.0):
    g = rng(seed)
    logits = (scale * g.normal(size=(*lead, V)) + shift).astype(dtype)
    ids = g.integers(0, V, size=lead)
    return {"logits": logits, "ids": ids}


def _loss_cases():
    return [
        Case("sentence", _loss_inputs(61, (9,), V=12)),
        Case("batch", _loss_inputs(62, (2, 6), V=10)),
        Case(
            "batch64",
            _loss_inputs(63, (3, 7), V=20, dtype=np.float64),
            hidden=True,
            describe="a batch of 3 sequences of 7 tokens, float64",
        ),
        Case("two", _loss_inputs(64, (2,), V=5), hidden=True, describe="a sequence of 2 tokens"),
        Case(
            "large",
            _loss_inputs(65, (8,), V=16, scale=3.0, shift=120.0),
            hidden=True,
            describe="float32 logits around 120",
        ),
    ]


def _nll(logits, ids):
    """Per-position negative log-likelihood of the next token: shape (..., T - 1)."""
    logp = lib.log_softmax(logits[..., :-1, :], axis=-1)
    return -np.take_along_axis(logp, ids[..., 1:, None], axis=-1)[..., 0]


def _cross_entropy(logits, ids):
    return lib.cross_entropy(logits[..., :-1, :], ids[..., 1:])


def _not_shifted(logits, ids):
    return lib.cross_entropy(logits, ids)


def _shift_backwards(logits, ids):
    return lib.cross_entropy(logits[..., 1:, :], ids[..., :-1])


def _probability_loss(logits, ids):
    p = lib.softmax(logits[..., :-1, :], axis=-1)
    return float(-np.take_along_axis(p, ids[..., 1:, None], axis=-1).mean())


CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    cases=_loss_cases,
    reference=_cross_entropy,
    mistakes=(
        Mistake(
            "not-shifted",
            _not_shifted,
            "the targets are not shifted: position t predicts token t + 1, so score logits[:-1] "
            "against ids[1:] (the last position has no target)",
        ),
        Mistake(
            "shifted-backwards",
            _shift_backwards,
            "shifted the wrong way: logits at position t predict the NEXT token, so pair "
            "logits[:-1] with ids[1:], not logits[1:] with ids[:-1]",
        ),
        Mistake(
            "sum",
            lambda logits, ids: float(_nll(logits, ids).sum()),
            "you summed the losses: the cross-entropy is the mean over the predicted positions",
        ),
        Mistake(
            "log2",
            lambda logits, ids: _cross_entropy(logits, ids) / LN2,
            "you measured in bits (log base 2): the loss is in nats, with the natural log",
        ),
        Mistake(
            "per-position",
            _nll,
            "you returned one loss per position: return their mean, a single number",
        ),
        Mistake(
            "sign",
            lambda logits, ids: -_cross_entropy(logits, ids),
            "the loss is negative: cross-entropy is the NEGATIVE mean log-probability of the targets",
        ),
        Mistake(
            "probabilities",
            _probability_loss,
            "you averaged probabilities: take the log-probabilities (log_softmax) of the targets",
        ),
    ),
    check_dtype=False,
    error_hints={
        "index": "pick each position's target with np.take_along_axis(logp, targets[..., None], axis=-1) "
        "(or logp[np.arange(T - 1), targets] for one sequence)",
    },
)


PERPLEXITY = Exercise(
    name="perplexity",
    cases=_loss_cases,
    reference=lambda logits, ids: lib.perplexity(_cross_entropy(logits, ids)),
    mistakes=(
        Mistake(
            "base-2",
            lambda logits, ids: float(2.0 ** _cross_entropy(logits, ids)),
            "the loss is in nats, so its perplexity is e ** loss (np.exp), not 2 ** loss",
        ),
        Mistake(
            "mean-of-exps",
            lambda logits, ids: float(np.exp(_nll(logits, ids)).mean()),
            "you averaged the per-position perplexities: perplexity is exp of the MEAN loss "
            "(a geometric mean of 1 / p), not the mean of exp(loss_t)",
        ),
        Mistake(
            "exp-of-sum",
            lambda logits, ids: float(np.exp(_nll(logits, ids).sum())),
            "you exponentiated the summed loss: use the mean loss, so the perplexity does not grow "
            "with the length of the text",
        ),
        Mistake(
            "exp-minus",
            lambda logits, ids: float(np.exp(-_cross_entropy(logits, ids))),
            "exp(-loss) is the geometric-mean probability of the targets; perplexity is its inverse, "
            "exp(+loss)",
        ),
        Mistake(
            "not-shifted",
            lambda logits, ids: lib.perplexity(_not_shifted(logits, ids)),
            "the targets are not shifted: use your cross_entropy, which scores logits[:-1] against ids[1:]",
        ),
    ),
    check_dtype=False,
)


# ---- concept checks ----------------------------------------------------------------------------

Q_NEXT_ROW = choice("q_next_row", ("a", "b", "c", "d"))

Q_FINAL_NORM = choice("q_final_norm", ("a", "b", "c", "d"))

Q_UNIFORM = choice("q_uniform", ("a", "b", "c", "d"))

EXERCISES = [LM_HEAD, SOFTMAX, LOG_SOFTMAX, CROSS_ENTROPY, PERPLEXITY, Q_NEXT_ROW, Q_FINAL_NORM, Q_UNIFORM]
