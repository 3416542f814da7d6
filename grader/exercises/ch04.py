"""Chapter 4, sampling and generation: from a distribution to text, and the KV cache.

Every definition follows ``lib/sampling.py``: filters take logits and return logits with removed
tokens at ``-inf``; they combine as temperature, then top-k, then top-p, then softmax; ties rank
the lower id first (a stable sort); top-p keeps the token that crosses the threshold;
``temperature=0`` and ``top_k=1`` are greedy and draw no random number.

Two exercises are checked through a runner (``grader.runners``) that the check and the scorer
wrap around the student's function, because their answer is not a single array:

- ``sampler(sample_next)`` draws ``n`` tokens from one seeded generator and returns them (mode
  ``"draws"``, compared exactly with ``lib``'s draws) or their frequencies (mode
  ``"frequencies"``, compared with the exact filtered distribution within ``atol``);
- ``packed(attend_with_cache)`` checks the shapes of ``(out, cache_k, cache_v)`` and concatenates
  them into one array.

``generate`` is called directly, with a tiny fixed "model" (``runners.ToyLM``) as ``next_logits``.
"""

import copy

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, choice, hidden, rng
from ..runners import ToyLM, draw, packed, sampler

ASSIGNMENT = "04-sampling"
# The lib functions the scorer lends this chapter's students (``grader.lending``): the softmax of
# chapter 3 and the attention of chapter 2, which the chapter's setup cell imports for them.
# ``GRADED``: the lib functions that compute this chapter's exercises, which it never lends.
LENDS = ("softmax", "causal_mask", "scaled_dot_product_attention")
GRADED = (
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "filtered_probs",
    "sample_next",
    "generate",
    "KVCache",
    "multi_head_attention",
)
NEG_INF = -np.inf


def _logits(seed, shape, dtype=np.float32, scale=2.0):
    return _drawn(rng(seed), shape, dtype, scale)


def _drawn(g, shape, dtype=np.float32, scale=2.0):
    return (scale * g.normal(size=shape)).astype(dtype)


def _size(g, low, high):
    """An int drawn from ``low .. high`` (both included)."""
    return int(g.integers(low, high + 1))


def _with_tie_at_max(g, shape, dtype=np.float32):
    """Logits whose largest value occurs twice in every row, at drawn places."""
    x = _drawn(g, shape, np.float64)
    rows = x.reshape(-1, shape[-1])
    for row in rows:
        first, second = g.choice(shape[-1], size=2, replace=False)
        row[first] = row[second] = row.max() + 0.5
    return rows.reshape(shape).astype(dtype)


def _from_probs(probs, order, dtype=np.float32):
    """Logits whose softmax is ``probs`` placed at the token ids ``order``."""
    out = np.empty(len(probs))
    out[np.asarray(order)] = np.log(probs)
    return out.astype(dtype)


def _dropped(x, keep):
    return np.where(keep, x, x.dtype.type(NEG_INF))


def _rank(x):
    """Ranks in lib's order (lower id first among ties), as positions of each token."""
    order = np.argsort(-x, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(x.shape[-1]), x.shape), axis=-1)
    return ranks


# ---- temperature -------------------------------------------------------------------------------


def _temperature_visible():
    zero = _logits(72, (8,))
    zero[5] = zero.max()  # two equal largest logits: T = 0 keeps the lower id only
    return [
        Case("cool", {"logits": _logits(71, (8,)), "temperature": 0.5}),
        Case("zero", {"logits": zero, "temperature": 0.0}),
    ]


def _temperature_hidden(g):
    B, hot = _size(g, 2, 4), round(float(g.uniform(1.5, 3.5)), 2)
    B0 = _size(g, 2, 4)
    return [
        hidden(
            "hot64",
            f"a batch of {B} rows, float64, T = {hot}",
            {"logits": _drawn(g, (B, _size(g, 8, 12)), np.float64), "temperature": hot},
        ),
        hidden("one", "T = 1", {"logits": _drawn(g, (_size(g, 6, 12),)), "temperature": 1.0}),
        hidden(
            "zero-tie",
            "T = 0 with two equal largest logits",
            {"logits": _with_tie_at_max(g, (_size(g, 5, 9),)), "temperature": 0.0},
        ),
        hidden(
            "zero-batch64",
            f"T = 0 on a batch of {B0} rows, float64",
            {"logits": _drawn(g, (B0, _size(g, 5, 9)), np.float64), "temperature": 0.0},
        ),
    ]


def _zero_divide(logits, temperature):
    with np.errstate(divide="ignore", invalid="ignore"):
        return logits / logits.dtype.type(temperature)


def _zero_keeps_ties(logits, temperature):
    if temperature == 0:
        return _dropped(logits, logits == logits.max(axis=-1, keepdims=True))
    return lib.apply_temperature(logits, temperature)


APPLY_TEMPERATURE = Exercise(
    name="apply_temperature",
    visible=_temperature_visible,
    hidden=_temperature_hidden,
    reference=lambda logits, temperature: lib.apply_temperature(logits, temperature),
    mistakes=(
        Mistake(
            "multiply",
            lambda logits, temperature: logits * logits.dtype.type(temperature),
            "you multiplied by the temperature: divide the logits by T (T < 1 sharpens, T > 1 flattens)",
        ),
        Mistake(
            "on-probabilities",
            lambda logits, temperature: lib.softmax(logits) / logits.dtype.type(temperature or 1.0),
            "temperature divides the LOGITS, before any softmax: dividing probabilities by T changes "
            "nothing once they are renormalised",
        ),
        Mistake(
            "returns-probabilities",
            lambda logits, temperature: lib.softmax(lib.apply_temperature(logits, temperature)),
            "return logits, not probabilities: logits / T (for T = 0 the argmax keeps its logit and "
            "every other token gets -inf); the filters and the softmax come later",
        ),
        Mistake(
            "zero-divide",
            _zero_divide,
            "T = 0 cannot be a division: it is the greedy limit. Keep the largest logit as it is and "
            "set every other logit to -inf",
        ),
        Mistake(
            "zero-keeps-ties",
            _zero_keeps_ties,
            "with T = 0 keep exactly one token: among equal largest logits, the lowest id "
            "(np.argmax returns the first maximum)",
        ),
    ),
    error_hints={
        "division by zero": "T = 0 cannot be a division: it is the greedy limit. Keep the largest "
        "logit as it is and set every other logit to -inf",
    },
)


# ---- top-k -------------------------------------------------------------------------------------


def _top_k_visible():
    tie = np.array([2.0, 1.0, 3.0, 1.0, 0.5, 1.0, -1.0], dtype=np.float32)
    return [
        Case("k3", {"logits": _logits(82, (10,)), "k": 3}),
        Case("tie-at-k", {"logits": tie, "k": 3}),
    ]


def _ties_at_k(g, rows, V, k):
    """Rows of whole numbers where the k-th and the (k+1)-th largest are equal."""
    x = np.round(g.normal(size=(rows, V)) * 1.5)
    for row in x:
        order = np.argsort(-row, kind="stable")
        row[order[k]] = row[order[k - 1]]
    return x


def _top_k_hidden(g):
    B, k = _size(g, 2, 4), _size(g, 3, 5)
    V_small = _size(g, 5, 8)
    k_ties = _size(g, 3, 5)
    return [
        hidden(
            "batch64",
            f"a batch of {B} rows, float64, k = {k}",
            {"logits": _drawn(g, (B, _size(g, 10, 14)), np.float64), "k": k},
        ),
        hidden("k1", "k = 1", {"logits": _drawn(g, (_size(g, 8, 12),)), "k": 1}),
        hidden("k-equals-V", "k = V", {"logits": _drawn(g, (V_small,)), "k": V_small}),
        hidden(
            "k-above-V",
            "k > V",
            {"logits": _drawn(g, (V_small,)), "k": V_small + _size(g, 1, 4)},
        ),
        hidden(
            "ties-batch64",
            "rows of whole numbers with ties around the k-th place, float64",
            {"logits": _ties_at_k(g, _size(g, 2, 3), _size(g, 8, 11), k_ties), "k": k_ties},
        ),
    ]


def _keep_ranked(logits, n_keep, order):
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order[..., : max(n_keep, 0)], True, axis=-1)
    return _dropped(logits, keep)


def _threshold_ties(logits, k):
    if k >= logits.shape[-1]:
        return logits.copy()
    kth = -np.sort(-logits, axis=-1)[..., k - 1 : k]
    return _dropped(logits, logits >= kth)


def _ties_higher_id(logits, k):
    return _keep_ranked(logits, k, np.argsort(logits, axis=-1, kind="stable")[..., ::-1])


def _smallest_k(logits, k):
    return _keep_ranked(logits, k, np.argsort(logits, axis=-1, kind="stable"))


def _ranked(logits):
    return np.argsort(-logits, axis=-1, kind="stable")


TOP_K_FILTER = Exercise(
    name="top_k_filter",
    visible=_top_k_visible,
    hidden=_top_k_hidden,
    reference=lambda logits, k: lib.top_k_filter(logits, k),
    mistakes=(
        Mistake(
            "threshold-keeps-ties",
            _threshold_ties,
            "you kept every logit >= the k-th largest, so ties at the k-th place keep more than k "
            "tokens: keep exactly k, and among equal logits the lower id first "
            "(np.argsort(-logits, kind='stable'))",
        ),
        Mistake(
            "ties-higher-id",
            _ties_higher_id,
            "ties are broken the wrong way: among equal logits the LOWER id ranks first. Reversing an "
            "ascending argsort puts the higher id first; sort -logits with kind='stable' instead",
        ),
        Mistake(
            "smallest-k",
            _smallest_k,
            "you kept the k SMALLEST logits: sort in decreasing order (argsort of -logits)",
        ),
        Mistake(
            "k-plus-one",
            lambda logits, k: _keep_ranked(logits, k + 1, _ranked(logits)),
            "off by one: you kept k + 1 tokens; keep exactly k",
        ),
        Mistake(
            "k-minus-one",
            lambda logits, k: _keep_ranked(logits, k - 1, _ranked(logits)),
            "off by one: you kept k - 1 tokens; keep exactly k",
        ),
        Mistake(
            "zero-not-inf",
            lambda logits, k: np.where(np.isinf(lib.top_k_filter(logits, k)), 0, logits).astype(logits.dtype),
            "removed tokens must get -inf, not 0: a logit of 0 still has probability e^0 / Z > 0",
        ),
        Mistake(
            "probabilities",
            lambda logits, k: lib.softmax(lib.top_k_filter(logits, k)),
            "return the filtered LOGITS (removed ones at -inf), not probabilities",
        ),
    ),
    error_hints={
        "out of bounds": "k >= V keeps every token: return a copy of the logits unchanged",
    },
)


# ---- top-p -------------------------------------------------------------------------------------

NUCLEUS_PROBS = np.array([0.35, 0.25, 0.15, 0.10, 0.07, 0.05, 0.02, 0.01])


def _top_p_visible():
    clean = _from_probs(NUCLEUS_PROBS, [3, 0, 6, 1, 7, 2, 5, 4])
    peaked = _from_probs(np.array([0.6, 0.2, 0.1, 0.05, 0.05]), [2, 0, 4, 1, 3])
    return [
        Case("p0.7", {"logits": clean, "p": 0.7}),
        Case("one-token", {"logits": peaked, "p": 0.5}),
    ]


def _tie_at_boundary(g):
    """Float64 logits with one likeliest token, then several equally likely ones at drawn ids, then
    less likely ones, and a ``p`` that keeps exactly one of the tied: the lowest id, by lib's
    ranking."""
    top, tied = float(g.uniform(0.25, 0.4)), float(g.uniform(0.1, 0.15))
    probs = np.array([top, *[tied] * _size(g, 2, 4), *(tied * g.uniform(0.1, 0.9, size=_size(g, 1, 3)))])
    p = (top + tied * float(g.uniform(0.3, 0.7))) / probs.sum()
    return _from_probs(probs / probs.sum(), g.permutation(len(probs)), np.float64), p


def _top_p_hidden(g):
    B, p = _size(g, 2, 4), round(float(g.uniform(0.8, 0.95)), 2)
    tie, p_tie = _tie_at_boundary(g)
    masked = _drawn(g, (_size(g, 8, 12),))
    masked[g.choice(len(masked), size=3, replace=False)] = -np.inf
    return [
        hidden(
            "batch64",
            f"a batch of {B} rows, float64, p = {p}",
            {"logits": _drawn(g, (B, _size(g, 10, 14)), np.float64), "p": p},
        ),
        hidden("p-one", "p = 1.0", {"logits": _drawn(g, (_size(g, 7, 11),)), "p": 1.0}),
        hidden(
            "tie-at-boundary", "equal probabilities at the boundary, float64", {"logits": tie, "p": p_tie}
        ),
        hidden(
            "tiny-p",
            "a p below the largest probability",
            {"logits": _drawn(g, (_size(g, 5, 9),)), "p": round(float(g.uniform(0.005, 0.03)), 3)},
        ),
        hidden(
            "after-top-k",
            "logits where some tokens are already -inf",
            {"logits": masked, "p": round(float(g.uniform(0.7, 0.9)), 2)},
        ),
    ]


def _nucleus(logits, p, keep_rule, order=None):
    """Keep tokens by ``keep_rule(mass_before, cumulative)`` along ``order`` (lib's by default)."""
    if p >= 1.0:
        return logits.copy()
    order = _ranked(logits) if order is None else order
    probs = np.take_along_axis(lib.softmax(logits), order, axis=-1)
    cumulative = np.cumsum(probs, axis=-1)
    keep_sorted = keep_rule(cumulative - probs, cumulative)
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return _dropped(logits, keep)


def _unsorted(logits, p):
    order = np.broadcast_to(np.arange(logits.shape[-1]), logits.shape)
    return _nucleus(logits, p, lambda before, cum: before < p, order)


TOP_P_FILTER = Exercise(
    name="top_p_filter",
    visible=_top_p_visible,
    hidden=_top_p_hidden,
    reference=lambda logits, p: lib.top_p_filter(logits, p),
    mistakes=(
        Mistake(
            "drops-crossing",
            lambda logits, p: _nucleus(logits, p, lambda before, cum: cum < p),
            "you dropped the token that crosses p: keep a token while the probability ranked ABOVE "
            "it is still below p (so the crossing token stays, and at least one token always does)",
        ),
        Mistake(
            "drops-crossing-le",
            lambda logits, p: _nucleus(logits, p, lambda before, cum: cum <= p),
            "you dropped the token that crosses p: keep a token while the probability ranked ABOVE "
            "it is still below p (so the crossing token stays, and at least one token always does)",
        ),
        Mistake(
            "unsorted",
            _unsorted,
            "you accumulated probabilities in token-id order: sort the tokens from most to least "
            "likely first, then accumulate",
        ),
        Mistake(
            "ascending",
            lambda logits, p: _nucleus(
                logits, p, lambda before, cum: before < p, np.argsort(logits, axis=-1, kind="stable")
            ),
            "you accumulated from the LEAST likely token: sort in decreasing probability",
        ),
        Mistake(
            "ties-higher-id",
            lambda logits, p: _nucleus(
                logits,
                p,
                lambda before, cum: before < p,
                np.argsort(logits, axis=-1, kind="stable")[..., ::-1],
            ),
            "ties are broken the wrong way: among equal probabilities the LOWER id ranks first; sort "
            "-logits with kind='stable' rather than reversing an ascending sort",
        ),
        Mistake(
            "zero-not-inf",
            lambda logits, p: np.where(np.isneginf(lib.top_p_filter(logits, p)), 0, logits).astype(
                logits.dtype
            ),
            "removed tokens must get -inf, not 0: a logit of 0 still has probability e^0 / Z > 0",
        ),
        Mistake(
            "probabilities",
            lambda logits, p: lib.softmax(lib.top_p_filter(logits, p)),
            "return the filtered LOGITS (removed ones at -inf), not probabilities",
        ),
    ),
)


# ---- the three together ------------------------------------------------------------------------


def _filtered_visible():
    return [
        Case("all-three", {"logits": _logits(301, (12,)), "temperature": 1.5, "top_k": 5, "top_p": 0.75}),
        Case("defaults", {"logits": _logits(102, (9,)), "temperature": 1.0, "top_k": None, "top_p": None}),
    ]


def _filtered_hidden(g):
    B, T, k, p = (
        _size(g, 2, 4),
        round(float(g.uniform(1.2, 2.0)), 2),
        _size(g, 6, 9),
        round(float(g.uniform(0.7, 0.9)), 2),
    )
    hot = round(float(g.uniform(1.5, 3.0)), 2)
    V_small = _size(g, 5, 8)
    return [
        hidden(
            "batch64",
            f"a batch of {B} rows, float64, T = {T}, k = {k}, p = {p}",
            {
                "logits": _drawn(g, (B, _size(g, 12, 16)), np.float64),
                "temperature": T,
                "top_k": k,
                "top_p": p,
            },
        ),
        hidden(
            "greedy",
            "T = 0",
            {
                "logits": _drawn(g, (_size(g, 8, 12),)),
                "temperature": 0.0,
                "top_k": _size(g, 3, 6),
                "top_p": 0.9,
            },
        ),
        hidden(
            "hot-top-p",
            f"T = {hot} with top-p only",
            {
                "logits": _drawn(g, (_size(g, 12, 16),)),
                "temperature": hot,
                "top_k": None,
                "top_p": round(float(g.uniform(0.5, 0.7)), 2),
            },
        ),
        hidden(
            "k-above-V",
            "k > V, float64",
            {
                "logits": _drawn(g, (V_small,), np.float64),
                "temperature": round(float(g.uniform(0.6, 1.0)), 2),
                "top_k": V_small + _size(g, 1, 5),
                "top_p": 0.95,
            },
        ),
    ]


def _filtered(logits, temperature=1.0, top_k=None, top_p=None):
    return lib.filtered_probs(logits, temperature, top_k, top_p)


def _temperature_last(logits, temperature=1.0, top_k=None, top_p=None):
    z = lib.top_p_filter(lib.top_k_filter(logits, top_k), top_p)
    return lib.softmax(lib.apply_temperature(z, temperature))


def _p_before_k(logits, temperature=1.0, top_k=None, top_p=None):
    z = lib.apply_temperature(logits, temperature)
    return lib.softmax(lib.top_k_filter(lib.top_p_filter(z, top_p), top_k))


def _no_renormalise(logits, temperature=1.0, top_k=None, top_p=None):
    z = lib.apply_temperature(logits, temperature)
    kept = np.isfinite(lib.top_p_filter(lib.top_k_filter(z, top_k), top_p))
    return np.where(kept, lib.softmax(z), 0).astype(logits.dtype)


FILTERED_PROBS = Exercise(
    name="filtered_probs",
    visible=_filtered_visible,
    hidden=_filtered_hidden,
    reference=_filtered,
    mistakes=(
        Mistake(
            "temperature-last",
            _temperature_last,
            "temperature comes FIRST: it changes the probabilities that top-p measures, so apply "
            "it before top-k and top-p",
        ),
        Mistake(
            "top-p-before-top-k",
            _p_before_k,
            "top-k comes before top-p: top-p measures the probabilities of the tokens top-k kept "
            "(renormalised among them)",
        ),
        Mistake(
            "no-renormalise",
            _no_renormalise,
            "the probabilities do not sum to 1: you computed the softmax before filtering and then "
            "zeroed tokens. Filter the logits first (removed ones at -inf), then take the softmax",
        ),
        Mistake(
            "no-temperature",
            lambda logits, temperature=1.0, top_k=None, top_p=None: _filtered(logits, 1.0, top_k, top_p),
            "the temperature has no effect: divide the logits by T (with your apply_temperature) "
            "before filtering",
        ),
    ),
)


# ---- drawing a token ---------------------------------------------------------------------------


def _lib_sample(logits, rng, temperature=1.0, top_k=None, top_p=None):
    return lib.sample_next(logits, rng, temperature=temperature, top_k=top_k, top_p=top_p)


def _inverse_cdf(probs, rng):
    cdf = np.cumsum(probs.astype(np.float64))
    return int(min((cdf <= rng.random() * cdf[-1]).sum(), len(cdf) - 1))


def _wrong_sampler(distribution, greedy_uses_rng=False):
    """A sampler that draws like lib from a wrong distribution (and frequencies are exact)."""

    def sample(logits, rng, temperature=1.0, top_k=None, top_p=None):
        greedy = temperature == 0 or top_k == 1
        if greedy and not greedy_uses_rng:
            return int(np.argmax(logits))
        u_first = _inverse_cdf(distribution(logits, temperature, top_k, top_p), rng)
        return int(np.argmax(logits)) if greedy else u_first

    def run(logits, seed, n, mode, settings):
        if mode == "frequencies":
            s = settings[0]
            return distribution(logits, s.get("temperature", 1.0), s.get("top_k"), s.get("top_p"))
        return draw(sample, logits, seed, n, settings)

    return run


def _multinomial_run(logits, seed, n, mode, settings):
    def sample(logits, rng, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0 or top_k == 1:
            return int(np.argmax(logits))
        probs = lib.filtered_probs(logits, temperature, top_k, top_p).astype(np.float64)
        return int(np.argmax(rng.multinomial(1, probs / probs.sum())))

    if mode == "frequencies":
        s = settings[0]
        return _filtered(logits, s.get("temperature", 1.0), s.get("top_k"), s.get("top_p")).astype(np.float64)
    return draw(sample, logits, seed, n, settings)


def _drops_boundary(logits, temperature, top_k, top_p):
    z = lib.top_k_filter(lib.apply_temperature(logits, temperature), top_k)
    if top_p is not None and top_p < 1.0:
        z = _nucleus(z, top_p, lambda before, cum: cum < top_p)
    return lib.softmax(z).astype(np.float64)


def _exact(logits, seed, n, mode, settings):
    if mode == "frequencies":
        s = settings[0]
        return _filtered(logits, s.get("temperature", 1.0), s.get("top_k"), s.get("top_p")).astype(np.float64)
    return sampler(_lib_sample)(logits, seed, n, mode, settings)


SAMPLE_LOGITS = _from_probs(
    np.array([0.30, 0.20, 0.15, 0.12, 0.10, 0.05, 0.05, 0.03]), [0, 2, 3, 5, 4, 1, 6, 7]
)


def _sample_inputs(logits, seed, n, mode, settings):
    return {"logits": logits, "seed": seed, "n": n, "mode": mode, "settings": settings}


def _sample_visible():
    def case(name, logits, seed, n, mode, settings):
        return Case(name, _sample_inputs(logits, seed, n, mode, settings))

    return [
        case("frequencies", SAMPLE_LOGITS, 1, 6000, "frequencies", [{"temperature": 0.8, "top_p": 0.75}]),
        case("plain", _logits(111, (10,), scale=0.7), 2, 20, "draws", [{}]),
        case(
            "filtered",
            _logits(112, (12,), scale=0.7),
            3,
            20,
            "draws",
            [{"temperature": 0.7, "top_k": 5, "top_p": 0.9}],
        ),
        case(
            "mixed",
            _logits(113, (10,), scale=0.7),
            4,
            12,
            "draws",
            [{"temperature": 0.0}, {}, {"top_k": 1}, {"top_p": 0.8}],
        ),
    ]


FREQUENCY_DRAWS = 3000  # in the hidden frequency case (the visible one has 6000)
SAMPLE_ATOL = 0.025


def _fair_seed(g, logits, settings, atol):
    """A seed whose ``FREQUENCY_DRAWS`` draws, made as lib makes them, come within ``atol / 2`` of
    the exact distribution: a function that draws as the docstring says passes for sure, and any
    other correct sampler almost surely."""
    probs = _filtered(logits, **settings).astype(np.float64)
    cdf = np.cumsum(probs)
    while True:
        seed = int(g.integers(2**31))
        u = np.random.default_rng(seed).random(FREQUENCY_DRAWS) * cdf[-1]  # one number per draw
        draws = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
        if np.abs(np.bincount(draws, minlength=len(cdf)) / FREQUENCY_DRAWS - probs).max() <= atol / 2:
            return seed


def _sample_hidden(g):
    V, T, k = _size(g, 6, 10), round(float(g.uniform(1.2, 2.0)), 2), _size(g, 3, 5)
    frequent = _from_probs(g.dirichlet(np.full(V, 2.0)), g.permutation(V))
    settings = [{"temperature": T, "top_k": k}]
    V64, n64 = _size(g, 20, 40), _size(g, 20, 40)
    alternating = [
        {"temperature": round(float(g.uniform(1.1, 1.6)), 2)},
        {"top_p": round(float(g.uniform(0.5, 0.8)), 2)},
    ]
    return [
        hidden(
            "frequencies-hidden",
            f"{FREQUENCY_DRAWS} draws with T = {T} and top-k = {k}",
            _sample_inputs(
                frequent,
                _fair_seed(g, frequent, settings[0], SAMPLE_ATOL),
                FREQUENCY_DRAWS,
                "frequencies",
                settings,
            ),
        ),
        hidden(
            "draws64",
            f"{n64} draws over {V64} tokens, float64, alternating settings",
            _sample_inputs(
                _drawn(g, (V64,), np.float64, scale=0.7), int(g.integers(2**31)), n64, "draws", alternating
            ),
        ),
        hidden(
            "greedy-ties",
            "greedy steps on equal largest logits, between sampled steps",
            _sample_inputs(
                _with_tie_at_max(g, (_size(g, 5, 8),)),
                int(g.integers(2**31)),
                _size(g, 6, 10),
                "draws",
                [{"temperature": 0.0}, {"temperature": 1.0}],
            ),
        ),
    ]


SAMPLE_NEXT = Exercise(
    name="sample_next",
    visible=_sample_visible,
    hidden=_sample_hidden,
    runner=sampler,
    reference=_exact,
    mistakes=(
        Mistake(
            "multinomial",
            _multinomial_run,
            "your draws follow the right distribution but not the reference's sequence: draw the way "
            "the docstring says, with ONE u = rng.random() per token and the first index whose "
            "cumulative probability exceeds u (rng.choice(V, p=probs) does exactly that; "
            "rng.multinomial and other methods use the generator differently)",
        ),
        Mistake(
            "greedy-draws",
            _wrong_sampler(_filtered, greedy_uses_rng=True),
            "a greedy step (temperature 0 or top_k 1) must not draw a random number: return the argmax "
            "before touching the rng, or every later draw shifts",
        ),
        Mistake(
            "drops-boundary",
            _wrong_sampler(_drops_boundary),
            "you sample from a distribution without the token that crosses top_p: top-p keeps that "
            "token (check your top_p_filter and filtered_probs)",
        ),
        Mistake(
            "no-temperature",
            _wrong_sampler(lambda logits, t, k, p: _filtered(logits, 1.0, k, p).astype(np.float64)),
            "your draws ignore the temperature: sample from filtered_probs(logits, temperature, "
            "top_k, top_p)",
        ),
        Mistake(
            "unfiltered",
            _wrong_sampler(lambda logits, t, k, p: _filtered(logits, t).astype(np.float64)),
            "your draws ignore top_k and top_p: sample from filtered_probs(logits, temperature, "
            "top_k, top_p)",
        ),
    ),
    atol=SAMPLE_ATOL,
    rtol=0.0,
    check_dtype=False,
    error_hints={
        "same seed": "do not create a generator inside sample_next (np.random.default_rng() with no "
        "seed) or use np.random.random(): draw from the rng argument, so a seed fixes the draws",
        "do not sum to 1": "rng.choice insists that p sums to 1 within about 1e-8, which float32 "
        "probabilities rarely do: use p = probs.astype(np.float64); p /= p.sum() (or draw with "
        "rng.random() and np.cumsum as the docstring says). And take the softmax AFTER filtering; "
        "do not zero probabilities afterwards",
        "must return one integer": "return a single int token id, e.g. int(np.argmax(...))",
    },
)


# ---- the generation loop -----------------------------------------------------------------------


def _generate_inputs(model, ids, n, seed, settings, stop=None):
    return {
        "next_logits": model,
        "ids": np.array(ids, dtype=np.int64),
        "max_new_tokens": n,
        "rng": np.random.default_rng(seed),
        **settings,
        "stop_token": stop,
    }


def _generate_visible():
    def case(name, seed, V, ids, n, settings, stop=None):
        return Case(name, _generate_inputs(ToyLM(rng(seed), V), ids, n, seed + 1000, settings, stop))

    return [
        case("budget", 121, 12, [3, 1, 4], 10, {"temperature": 1.0}),
        case("stop", 122, 12, [5, 9], 20, {"temperature": 0.9, "top_k": 6}, stop=7),
    ]


def _greedy_tokens(model, ids, n):
    """The tokens greedy decoding appends to ``ids``, ``n`` of them."""
    out = list(ids)
    for _ in range(n):
        out.append(int(np.argmax(model(np.array(out)))))
    return out[len(ids) :]


def _generate_hidden(g):
    def prompt(V):
        return g.integers(0, V, size=_size(g, 1, 4)).tolist()

    def seed():
        return int(g.integers(2**31))

    greedy, greedy_ids, budget = ToyLM(g, _size(g, 12, 20)), None, _size(g, 12, 18)
    greedy_ids = prompt(greedy.table.shape[0])
    emitted = _greedy_tokens(greedy, greedy_ids, budget)
    stop = emitted[_size(g, 2, budget - 1)]  # a token greedy decoding emits after a few steps
    first = ToyLM(g, _size(g, 6, 10))
    first_ids = prompt(first.table.shape[0])
    V64, V0 = _size(g, 16, 24), _size(g, 8, 12)
    filtered = {
        "temperature": round(float(g.uniform(1.0, 1.4)), 2),
        "top_k": _size(g, 6, 10),
        "top_p": round(float(g.uniform(0.85, 0.95)), 2),
    }
    return [
        hidden(
            "greedy-stop",
            "greedy decoding with a stop token",
            _generate_inputs(greedy, greedy_ids, budget, seed(), {"temperature": 0.0}, stop),
        ),
        hidden(
            "filtered64",
            "T, top-k and top-p together, float64, no stop token",
            _generate_inputs(ToyLM(g, V64, np.float64), prompt(V64), _size(g, 8, 14), seed(), filtered),
        ),
        hidden(
            "zero-budget",
            "max_new_tokens = 0",
            _generate_inputs(ToyLM(g, V0), prompt(V0), 0, seed(), {}, stop=_size(g, 0, V0 - 1)),
        ),
        hidden(
            "stop-first",
            "the very first new token is the stop token",
            _generate_inputs(
                first,
                first_ids,
                _size(g, 5, 10),
                seed(),
                {"temperature": 0.0},
                _greedy_tokens(first, first_ids, 1)[0],
            ),
        ),
    ]


def _settings(kwargs):
    return {k: kwargs[k] for k in ("temperature", "top_k", "top_p") if k in kwargs}


def _loop(
    next_logits,
    ids,
    max_new_tokens,
    rng,
    stop_token=None,
    *,
    budget_extra=0,
    include_stop=True,
    stop=True,
    last_only=False,
    pick=None,
    only_new=False,
    **settings,
):
    rng = copy.deepcopy(rng)  # the reference and every mistake start from the case's seed
    pick = pick or (lambda logits: _lib_sample(logits, rng, **settings))
    out = [int(i) for i in ids]
    for _ in range(max_new_tokens + budget_extra):
        logits = next_logits(np.array(out[-1:] if last_only else out))
        token = int(pick(logits))
        if stop and token == stop_token and not include_stop:
            break
        out.append(token)
        if stop and token == stop_token:
            break
    result = np.array(out, dtype=np.int64)
    return result[len(ids) :] if only_new else result


def _generate(
    next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None
):
    return _loop(
        next_logits, ids, max_new_tokens, rng, stop_token, temperature=temperature, top_k=top_k, top_p=top_p
    )


def _wrong(**how):
    def wrong(
        next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None
    ):
        settings = {} if how.get("defaults") else {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        options = {k: v for k, v in how.items() if k != "defaults"}
        return _loop(next_logits, ids, max_new_tokens, rng, stop_token, **options, **settings)

    return wrong


GENERATE = Exercise(
    name="generate",
    visible=_generate_visible,
    hidden=_generate_hidden,
    reference=_generate,
    mistakes=(
        Mistake(
            "drops-stop",
            _wrong(include_stop=False),
            "you stopped one token early: append the stop token to the output, THEN stop",
        ),
        Mistake(
            "ignores-stop",
            _wrong(stop=False),
            "the loop ran past the stop token: stop right after emitting stop_token",
        ),
        Mistake(
            "one-extra",
            _wrong(budget_extra=1),
            "one token too many: the budget max_new_tokens counts new tokens only",
        ),
        Mistake(
            "one-short",
            _wrong(budget_extra=-1),
            "one token too few: make max_new_tokens new tokens (unless the stop token comes first)",
        ),
        Mistake(
            "new-only",
            _wrong(only_new=True),
            "return the whole sequence, the prompt ids followed by the new tokens",
        ),
        Mistake(
            "last-token-only",
            _wrong(last_only=True),
            "next_logits needs the whole sequence so far, not only its last token (a transformer "
            "attends to every earlier position)",
        ),
        Mistake(
            "greedy",
            _wrong(pick=lambda logits: int(np.argmax(logits))),
            "you always took the argmax: draw each token with your sample_next(logits, rng, ...)",
        ),
        Mistake(
            "settings-ignored",
            _wrong(defaults=True),
            "pass temperature, top_k and top_p on to sample_next: your tokens were drawn with the defaults",
        ),
    ),
    check_dtype=False,
)


# ---- the KV cache ------------------------------------------------------------------------------


def _attend_with_cache(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    out = lib.scaled_dot_product_attention(q_new, k, v, mask=lib.causal_mask(q_new.shape[-2], k.shape[-2]))
    return out, k, v


def _old_keys_only(q_new, k_new, v_new, cache_k, cache_v):
    out = lib.scaled_dot_product_attention(q_new, cache_k, cache_v)
    return out, np.concatenate([cache_k, k_new], -2), np.concatenate([cache_v, v_new], -2)


def _prepended(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([k_new, cache_k], axis=-2)
    v = np.concatenate([v_new, cache_v], axis=-2)
    T, S = q_new.shape[-2], k.shape[-2]
    return lib.scaled_dot_product_attention(q_new, k, v, mask=lib.causal_mask(T, S)), k, v


def _no_mask(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    return lib.scaled_dot_product_attention(q_new, k, v), k, v


def _mask_no_offset(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    mask = np.tri(q_new.shape[-2], k.shape[-2], dtype=bool)
    return lib.scaled_dot_product_attention(q_new, k, v, mask=mask), k, v


def _no_scale(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    q = q_new * q_new.dtype.type(np.sqrt(q_new.shape[-1]))  # undoes the 1/sqrt(d_head) inside
    return lib.scaled_dot_product_attention(q, k, v, mask=lib.causal_mask(q.shape[-2], k.shape[-2])), k, v


def _cache_inputs(g, H, S, T, d_head, dtype=np.float32):
    def arr(n):
        return g.normal(size=(H, n, d_head)).astype(dtype)

    return {"q_new": arr(T), "k_new": arr(T), "v_new": arr(T), "cache_k": arr(S), "cache_v": arr(S)}


def _cache_visible():
    return [
        Case("one-step", _cache_inputs(rng(131), H=2, S=5, T=1, d_head=4)),
        Case("chunk", _cache_inputs(rng(132), H=2, S=3, T=3, d_head=4)),
    ]


def _cache_hidden(g):
    T0, H0, d0 = _size(g, 3, 6), _size(g, 2, 4), _size(g, 3, 6)
    S_long, H_long = _size(g, 8, 16), _size(g, 3, 5)
    return [
        hidden(
            "empty-cache64",
            f"an empty cache and {T0} new tokens, float64",
            _cache_inputs(g, H0, 0, T0, d0, np.float64),
        ),
        hidden(
            "long64",
            f"{S_long} cached tokens, {H_long} heads, float64",
            _cache_inputs(g, H_long, S_long, 1, 2 * _size(g, 2, 5), np.float64),
        ),
        hidden("one-head", "one head, 2 new tokens", _cache_inputs(g, 1, _size(g, 4, 8), 2, _size(g, 3, 6))),
    ]


ATTEND_WITH_CACHE = Exercise(
    name="attend_with_cache",
    visible=_cache_visible,
    hidden=_cache_hidden,
    runner=packed,
    reference=packed(_attend_with_cache),
    mistakes=(
        Mistake(
            "old-keys-only",
            packed(_old_keys_only),
            "the new tokens attended only to the cached keys: append k_new and v_new FIRST, so each "
            "new token also attends to itself",
        ),
        Mistake(
            "prepended",
            packed(_prepended),
            "the new keys/values went BEFORE the cached ones: append them at the end, so the cache "
            "stays in position order",
        ),
        Mistake(
            "no-mask",
            packed(_no_mask),
            "with several new tokens, new token i may only see keys up to position past + i: use "
            "causal_mask(T, S + T) (one new token needs no mask)",
        ),
        Mistake(
            "mask-no-offset",
            packed(_mask_no_offset),
            "the mask is not offset by the cache: the new queries are the LAST T of S + T positions, "
            "so causal_mask(T, S + T) lets query i see keys 0 .. S + i",
        ),
        Mistake(
            "no-scale",
            packed(_no_scale),
            "the scores are not scaled: divide q k^T by sqrt(d_head) (or use scaled_dot_product_attention)",
        ),
    ),
    error_hints={
        "not appended": "the cache must grow by the new tokens: return np.concatenate([cache_k, k_new], "
        "axis=-2) and the same for v",
        "concatenation axis": "concatenate along the sequence axis, axis=-2: the arrays are "
        "(H, S, d_head) and (H, T, d_head), so only that axis differs",
    },
)


# ---- concept checks ----------------------------------------------------------------------------

Q_TOP_P = choice("q_top_p", ("a", "b", "c"))

Q_CACHE = choice("q_cache", ("a", "b", "c"))

Q_MEMORY = choice("q_memory", ("a", "b", "c"))

EXERCISES = [
    APPLY_TEMPERATURE,
    TOP_K_FILTER,
    TOP_P_FILTER,
    FILTERED_PROBS,
    SAMPLE_NEXT,
    GENERATE,
    ATTEND_WITH_CACHE,
    Q_TOP_P,
    Q_CACHE,
    Q_MEMORY,
]
