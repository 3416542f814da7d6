"""Sampling, wrong (chapter 4): the filters as ``lib/sampling.py`` defines them (logits in, logits
out with removed tokens at ``-inf``; temperature, then top-k, then top-p, then softmax; ties rank
the lower id first; top-p keeps the token that crosses p), a draw by the inverse CDF with one
``rng.random()`` per token, and the generation loop."""

import copy

import numpy as np

import lib

from ...runners import draw
from .activations import softmax


def _dropped(x, keep):
    return np.where(keep, x, x.dtype.type(-np.inf))


# How tokens are ranked: right (the lower id first among ties), ties reversed, or upside down.
ORDERS = {
    "largest-first": lambda logits: np.argsort(-logits, axis=-1, kind="stable"),
    "ties-higher-id": lambda logits: np.argsort(logits, axis=-1, kind="stable")[..., ::-1],
    "smallest-first": lambda logits: np.argsort(logits, axis=-1, kind="stable"),
    "id": lambda logits: np.broadcast_to(np.arange(logits.shape[-1]), logits.shape),
}


def _returned(logits, out, *, removed="-inf", probabilities=False):
    """A filter's answer: ``removed="zero"`` puts 0 where it removed a token, ``probabilities``
    returns the softmax instead of the logits (``"kept"``: the unfiltered softmax where a token is
    kept, 0 where it is removed)."""
    if probabilities == "kept":
        return np.where(np.isneginf(out) & ~np.isneginf(logits), 0, softmax(logits)).astype(logits.dtype)
    if removed == "zero":
        out = np.where(np.isneginf(out) & ~np.isneginf(logits), 0, out).astype(logits.dtype)
    return softmax(out) if probabilities else out


def apply_temperature(logits, temperature, *, op="divide", zero="first-max", on="logits", greedy_below=0.0):
    """Temperature; ``op="multiply"`` or ``"floor"`` (//), ``zero``: ``"first-max"`` (right),
    ``"divide"`` (a plain division by 0), ``"every-max"`` (ties all kept) or ``"kept-as-0"`` (the
    kept token's logit replaced by 0); ``on="probabilities"`` divides the softmax,
    ``on="returned-probabilities"`` returns the softmax of the right logits; a temperature below
    ``greedy_below`` is taken for 0."""
    temperature = 0.0 if temperature < greedy_below else temperature
    if on == "probabilities":
        return softmax(logits) / logits.dtype.type(temperature or 1.0)
    if on == "returned-probabilities":
        return softmax(apply_temperature(logits, temperature))
    if temperature == 0 and zero == "kept-as-0":
        return np.where(np.isneginf(top_k_filter(logits, 1)), -np.inf, 0).astype(logits.dtype)
    if temperature == 0 and zero != "divide":
        return (
            _dropped(logits, logits == logits.max(axis=-1, keepdims=True))
            if zero == "every-max"
            else top_k_filter(logits, 1)
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        t = logits.dtype.type(temperature)
        return {"multiply": np.multiply, "floor": np.floor_divide}.get(op, np.divide)(logits, t)


def top_k_filter(logits, k, *, extra=0, order="largest-first", threshold=False, **returned):
    """Top-k; ``extra`` tokens more (or fewer), another of the ``ORDERS``, ``threshold=True`` keeps
    every logit >= the k-th largest; any knob of ``_returned``."""
    if k is None or k >= logits.shape[-1]:
        out = logits.copy()
    elif threshold:
        out = _dropped(logits, logits >= -np.sort(-logits, axis=-1)[..., k - 1 : k])
    else:
        keep = np.zeros(logits.shape, dtype=bool)
        np.put_along_axis(keep, ORDERS[order](logits)[..., : max(k + extra, 0)], True, axis=-1)
        out = _dropped(logits, keep)
    return _returned(logits, out, **returned)


KEEP_RULES = {
    "before<p": lambda before, cum, p: before < p,
    "before<=p": lambda before, cum, p: before <= p,
    "cum<p": lambda before, cum, p: cum < p,
    "cum<=p": lambda before, cum, p: cum <= p,
}


def top_p_filter(
    logits, p, *, rule="before<p", order="largest-first", filters_at_one=False, precision=None, **returned
):
    """Top-p: keep tokens by ``KEEP_RULES[rule](mass ranked before, cumulative mass, p)``, ranked
    by one of the ``ORDERS``; ``filters_at_one``: p = 1 runs the filter too; ``precision``, a
    dtype the probabilities are cast to before they are summed; any knob of ``_returned``."""
    if p is None or p > 1.0 or (p == 1.0 and not filters_at_one):
        return _returned(logits, logits.copy(), **returned)
    ranked = ORDERS[order](logits)
    probs = np.take_along_axis(softmax(logits), ranked, axis=-1).astype(precision or logits.dtype)
    cumulative = np.cumsum(probs, axis=-1)
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, ranked, KEEP_RULES[rule](cumulative - probs, cumulative, p), axis=-1)
    return _returned(logits, _dropped(logits, keep), **returned)


def filtered_probs(
    logits,
    temperature=1.0,
    top_k=None,
    top_p=None,
    *,
    order=("temperature", "top_k", "top_p"),
    renormalise=True,
    on_probabilities=False,
    rule="before<p",
):
    """The three filters in another ``order`` (a step left out is not applied, one named twice is
    applied twice), then the softmax;
    ``renormalise=False`` zeroes the removed tokens' probabilities after one softmax instead;
    ``on_probabilities`` divides the filtered probabilities by T and takes a softmax again;
    ``rule`` is top-p's."""
    if on_probabilities and temperature:
        return softmax(filtered_probs(logits, 1.0, top_k, top_p) / logits.dtype.type(temperature))
    steps = {
        "temperature": lambda z: apply_temperature(z, temperature),
        "top_k": lambda z: top_k_filter(z, top_k),
        "top_p": lambda z: top_p_filter(z, top_p, rule=rule),
    }
    z = logits
    for step in order:
        z = steps[step](z)
    if renormalise:
        return softmax(z)
    return np.where(np.isfinite(z), softmax(apply_temperature(logits, temperature)), 0).astype(logits.dtype)


def sample_next(
    logits,
    seed,
    n,
    mode,
    settings,
    *,
    draw_with="inverse-cdf",
    greedy_draws=False,
    greedy_when="either",
    u="u",
    spare_draw=None,
    one_left="draw",
    **filter_knobs,
):
    """``sample_next`` as the check runs it (``runners.sampler``): ``n`` draws, or in mode
    ``"frequencies"`` the distribution they follow, ``filtered_probs`` with any of its knobs.
    ``draw_with="multinomial"`` draws with rng.multinomial, ``draw_with="argmax"`` never draws (the
    most likely token every time), ``draw_with="uniform"`` draws every token left in equally often;
    ``greedy_draws`` draws a random number on a greedy step too
    (temperature 0 or top_k 1; ``"top_k"``: on a top_k 1 step only); ``greedy_when="both"`` takes
    the argmax only when temperature is 0 and top_k 1 together, and samples the others (temperature 0
    as 1e-6); ``u="1-u"`` goes down the
    cumulative probabilities with 1 - rng.random(), ``u="unscaled32"`` compares u, not u * cdf[-1],
    with the float32 cumulative sum (a u above its last entry, below 1 by rounding, gives the last id);
    ``spare_draw`` calls rng.random() once more per token, ``"before"`` or ``"after"`` the one it uses,
    or ``"vector"`` draws V numbers and uses the first; ``one_left="no-draw"`` returns the only token
    the filters leave without drawing."""

    def probs(logits, temperature=1.0, top_k=None, top_p=None):
        p = filtered_probs(logits, temperature, top_k, top_p, **filter_knobs)
        p = p if u == "unscaled32" else p.astype(np.float64)
        return (p > 0) / np.count_nonzero(p) if draw_with == "uniform" else p

    def sample(logits, rng, temperature=1.0, top_k=None, top_p=None):
        greedy = temperature == 0 or top_k == 1
        if greedy_when == "both":
            greedy, temperature = temperature == 0 and top_k == 1, temperature or 1e-6
        draws = greedy_draws is True or (greedy_draws == "top_k" and top_k == 1 and temperature != 0)
        if greedy and not draws:
            return int(np.argmax(logits))
        p = probs(logits, temperature, top_k, top_p)
        if one_left == "no-draw" and np.count_nonzero(p) == 1:
            return int(np.argmax(p))
        if draw_with == "argmax":
            return int(np.argmax(p))
        if draw_with == "multinomial":
            return int(np.argmax(rng.multinomial(1, p / p.sum())))
        cdf = np.cumsum(p)
        if spare_draw == "before":
            rng.random()
        drawn = rng.random(len(cdf))[0] if spare_draw == "vector" else rng.random()
        if spare_draw == "after":
            rng.random()
        drawn = 1 - drawn if u == "1-u" else drawn
        total = 1 if u == "unscaled32" else cdf[-1]
        token = int(min((cdf <= drawn * total).sum(), len(cdf) - 1))
        return int(np.argmax(logits)) if greedy else token

    if mode == "frequencies" and draw_with == "argmax":
        p = probs(logits, **settings[0])
        return (np.arange(len(p)) == np.argmax(p)).astype(np.float64)
    return probs(logits, **settings[0]) if mode == "frequencies" else draw(sample, logits, seed, n, settings)


# What the model is given at each step of ``generate``: the sequence so far, its last token, the prompt.
CONTEXTS = {
    "all": lambda out, T: out,
    "last": lambda out, T: out[-1:],
    "prompt": lambda out, T: out[:T],
}


def generate(
    next_logits,
    ids,
    max_new_tokens,
    rng,
    temperature=1.0,
    top_k=None,
    top_p=None,
    stop_token=None,
    *,
    budget_extra=0,
    include_stop=True,
    stop=True,
    context="all",
    pick="sample",
    settings="given",
    only_new=False,
    stop_looked="drawn",
    step_rng="shared",
):
    """The loop: ``lib.sample_next`` on ``next_logits`` of the sequence so far, until
    ``max_new_tokens`` (plus ``budget_extra``) or right after the stop token. ``include_stop=False``
    stops before it, ``stop=False`` runs past it, ``stop_looked="last"`` looks for it at the end of
    the sequence before each draw (so a prompt that ends with it stops at once), ``"late"`` (with
    ``stop=False``) one token before the end (so one token follows it); ``context="last"`` gives
    the model the last token only, ``context="prompt"`` the prompt alone at every step;
    ``pick="argmax"`` is greedy; ``settings="defaults"`` drops temperature, top_k and top_p,
    ``"first"`` passes them on the first step only (the defaults after), ``"first-greedy"`` on the
    first step only (temperature 0 after); ``only_new`` returns the new tokens without the prompt;
    ``step_rng="copied"`` gives each step a copy of the generator, so every token is drawn with the
    same number."""
    rng = copy.deepcopy(rng)  # the reference and every mistake start from the case's seed
    given = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    out = [int(i) for i in ids]
    for step in range(max_new_tokens + budget_extra):
        chosen = _step_settings(settings, step, given)
        if stop_looked == "last" and out[-1] == stop_token:
            break
        if stop_looked == "late" and len(out) > len(ids) + 1 and out[-2] == stop_token:
            break
        logits = next_logits(np.array(CONTEXTS[context](out, len(ids))))
        drawn_with = copy.deepcopy(rng) if step_rng == "copied" else rng
        token = (
            int(np.argmax(logits)) if pick == "argmax" else int(lib.sample_next(logits, drawn_with, **chosen))
        )
        if stop and token == stop_token and not include_stop:
            break
        out.append(token)
        if stop and token == stop_token:
            break
    return np.array(out[len(ids) :] if only_new else out, dtype=np.int64)


def _step_settings(settings: str, step: int, given: dict) -> dict:
    """The keyword arguments ``generate``'s mistake passes to ``sample_next`` at ``step``."""
    if settings == "given" or (step == 0 and settings.startswith("first")):
        return given
    return {"temperature": 0.0} if settings == "first-greedy" else {}


# What a filter returns: knobs of ``top_k_filter`` and ``top_p_filter``.
RETURNED = {
    "zero-not-inf": (
        {"removed": "zero"},
        "removed tokens must get -inf, not 0: a logit of 0 still has probability e^0 / Z > 0",
    ),
    "probabilities": (
        {"probabilities": True},
        "return the filtered LOGITS (removed ones at -inf), not probabilities",
    ),
    "kept-probabilities": (
        {"probabilities": "kept"},
        "return the filtered LOGITS (removed ones at -inf), not probabilities: yours are each kept "
        "token's probability (the softmax of all the logits) and 0 for the removed ones",
    ),
}
