"""The LM head and the loss, wrong (chapters 3 and 5): the final norm then the (tied) unembedding;
the mean negative log-likelihood in nats of each position's target; perplexity, exp of it."""

import math

import numpy as np

from .activations import log_softmax, softmax
from .norms import layer_norm


def lm_head(x, ln_f, wte, w_unembed=None, *, norm=True, unembed="given", probabilities=False, **norm_knobs):
    """The head; ``norm=False`` skips the final norm (any knob of ``norms.layer_norm`` changes it);
    ``unembed``: ``"given"`` (right: wte.T if tied, else w_unembed), ``"wte"`` (not transposed),
    ``"tied"`` (wte.T even when w_unembed is given); ``probabilities`` returns their softmax."""
    h = layer_norm(x, ln_f["g"], ln_f["b"], **norm_knobs) if norm else x
    untied = w_unembed is not None
    matrix = {"given": w_unembed if untied else wte.T, "wte": w_unembed if untied else wte, "tied": wte.T}[
        unembed
    ]
    logits = h @ matrix
    return softmax(logits) if probabilities else logits


def _pairs(logits, ids, shift):
    """The (logits, targets) a loss scores: ``"none"`` (row t with ids[t]), ``"next"`` (row t with
    ids[t + 1]), ``"back"`` (row t + 1 with ids[t]), ``"both"`` (rows and ids both from 1 on: row
    t with ids[t] again), ``"rolled"`` (every row with ids[t + 1], the last with ids[0]: np.roll)
    or ``"flattened"`` (the batch flattened into one sequence, then row t with ids[t + 1]: the last
    row of a sequence scored against the first id of the next)."""
    if shift == "flattened":
        return logits.reshape(-1, logits.shape[-1])[:-1], ids.reshape(-1)[1:]
    return {
        "rolled": (logits, np.roll(ids, -1, axis=-1)),
        "none": (logits, ids),
        "both": (logits[..., 1:, :], ids[..., 1:]),
        "next": (logits[..., :-1, :], ids[..., 1:]),
        "back": (logits[..., 1:, :], ids[..., :-1]),
    }[shift]


def nll(
    logits,
    targets,
    *,
    shift="none",
    reduce="mean",
    base="e",
    normalise="log-softmax",
    axis=-1,
    sign=1.0,
    pick="own",
):
    """The mean negative log-likelihood of the targets paired by ``shift`` (``"none"``: one target
    per row). ``reduce``: ``"mean"``, ``"sum"`` or ``"none"`` (one loss per position); ``base="2"``
    is in bits; ``normalise``: ``"log-softmax"`` (right), ``"none"`` (raw logits),
    ``"probabilities"`` (probabilities, no log), ``"log-of-probabilities"`` (the log of the
    softmax, in the logits' dtype); ``axis=-2`` normalises over positions; ``sign=-1`` flips it;
    ``pick="every"`` takes every target's entry in every row (logp[..., targets]), not each row's own."""
    logits, targets = _pairs(logits, targets, shift)
    z = logits.astype(np.float64)
    with np.errstate(divide="ignore"):
        scored = {
            "log-softmax": lambda: log_softmax(z, axis=axis),
            "none": lambda: z,
            "probabilities": lambda: softmax(z, axis=axis),
            "log-of-probabilities": lambda: np.log(softmax(logits, axis=axis)).astype(np.float64),
        }[normalise]()
    picked = (
        -np.take(scored, targets, axis=-1)
        if pick == "every"
        else -np.take_along_axis(scored, targets[..., None], axis=-1)[..., 0]
    )
    if base == "2":
        picked = picked / math.log(2)
    loss = {"mean": picked.mean, "sum": picked.sum, "none": lambda: picked}[reduce]()
    return sign * loss


def cross_entropy(logits, ids, *, shift="next", **knobs):
    """Chapter 3's loss: ``nll`` of the model's own input ``ids``, row t scored against ids[t + 1]
    (``shift``), with any knob of ``nll``."""
    return nll(logits, ids, shift=shift, **knobs)


def perplexity(logits, ids, *, shift="next", base=math.e, sign=1.0, reduce="mean"):
    """exp of the mean loss of ``ids`` (shifted by ``shift``); ``base=2``, ``sign=-1``
    (exp(-loss)), ``reduce``: ``"mean-of-exps"`` (the mean of the per-position perplexities),
    ``"per-sequence"`` (the mean of each sequence's perplexity), ``"last"`` (the last prediction
    of each sequence alone) or ``"sum"`` (exp of the summed loss)."""
    losses = nll(logits, ids, shift=shift, reduce="none")
    if reduce == "mean-of-exps":
        return float(np.exp(losses).mean())
    if reduce == "per-sequence":
        return float(np.exp(losses.mean(axis=-1)).mean())
    if reduce == "last":
        losses = losses[..., -1]
    return float(base ** (sign * (losses.sum() if reduce == "sum" else losses.mean())))


# The loss: knobs of ``nll``.
LOSS = {
    "sum": (
        {"reduce": "sum"},
        "you summed the losses: the loss is the MEAN of -log p(target) over the predicted positions",
    ),
    "bits": (
        {"base": "2"},
        "you measured in bits (log base 2): the loss is in nats, with the natural log (np.log)",
    ),
    "per-position": (
        {"reduce": "none"},
        "you returned one loss per position: return their mean, a single number",
    ),
    "sign": (
        {"sign": -1.0},
        "the loss is negative: cross-entropy is MINUS the mean log-probability of the targets",
    ),
    "probabilities": (
        {"normalise": "probabilities"},
        "you averaged probabilities: take the log-probabilities (a log-softmax) of the targets",
    ),
    "log-of-probabilities": (
        {"normalise": "log-of-probabilities"},
        "you took the log of the softmax: a target whose probability is below what the dtype can hold "
        "rounds to 0, and its log is -inf. Take a log-softmax instead, (z - m) - log(sum(exp(z - m)))",
    ),
    "every-target": (
        {"pick": "every"},
        "you took every target's log-probability in every row (logp[..., targets] is a block of T x T "
        "entries): pick one entry per row, the row's own target, with np.take_along_axis(logp, "
        "targets[..., None], axis=-1)",
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
