"""Chapter 4, sampling and generation: from a distribution to text, and the KV cache.

Every definition follows ``lib/sampling.py``: filters take logits and return logits with removed
tokens at ``-inf``; they combine as temperature, then top-k, then top-p, then softmax; ties rank
the lower id first (a stable sort); top-p keeps the token that crosses the threshold;
``temperature=0`` and ``top_k=1`` are greedy and draw no random number.

Three exercises are checked through a small runner that the notebook's test cell wraps around the
student's function, because their answer is not a single array:

- ``sampler(sample_next)`` draws ``n`` tokens from one seeded generator and returns them (mode
  ``"draws"``, compared exactly with ``lib``'s draws) or their frequencies (mode
  ``"frequencies"``, compared with the exact filtered distribution within ``atol``);
- ``packed(attend_with_cache)`` checks the shapes of ``(out, cache_k, cache_v)`` and concatenates
  them into one array;
- ``generate`` is called directly, with a tiny fixed "model" (``ToyLM``) as ``next_logits``.
"""

import copy

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, choice, rng

ASSIGNMENT = "04-sampling"
NEG_INF = -np.inf


def _logits(seed, shape, dtype=np.float32, scale=2.0):
    return (scale * rng(seed).normal(size=shape)).astype(dtype)


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


def _temperature_cases():
    tie = np.array([1.0, 3.0, 0.0, 3.0, 2.0, -1.0], dtype=np.float32)
    zero = _logits(72, (8,))
    zero[5] = zero.max()  # two equal largest logits: T = 0 keeps the lower id only
    return [
        Case("cool", {"logits": _logits(71, (8,)), "temperature": 0.5}),
        Case("zero", {"logits": zero, "temperature": 0.0}),
        Case(
            "hot64",
            {"logits": _logits(73, (3, 10), np.float64), "temperature": 2.5},
            hidden=True,
            describe="a batch of 3 rows, float64, T = 2.5",
        ),
        Case("one", {"logits": _logits(74, (9,)), "temperature": 1.0}, hidden=True, describe="T = 1"),
        Case(
            "zero-tie",
            {"logits": tie, "temperature": 0.0},
            hidden=True,
            describe="T = 0 with two equal largest logits",
        ),
        Case(
            "zero-batch64",
            {"logits": _logits(75, (2, 7), np.float64), "temperature": 0.0},
            hidden=True,
            describe="T = 0 on a batch of 2 rows, float64",
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
    cases=_temperature_cases,
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


def _top_k_cases():
    tie = np.array([2.0, 1.0, 3.0, 1.0, 0.5, 1.0, -1.0], dtype=np.float32)
    ties64 = np.round(rng(81).normal(size=(2, 9)) * 1.5).astype(np.float64)
    return [
        Case("k3", {"logits": _logits(82, (10,)), "k": 3}),
        Case("tie-at-k", {"logits": tie, "k": 3}),
        Case(
            "batch64",
            {"logits": _logits(83, (3, 12), np.float64), "k": 4},
            hidden=True,
            describe="a batch of 3 rows, float64, k = 4",
        ),
        Case("k1", {"logits": _logits(84, (11,)), "k": 1}, hidden=True, describe="k = 1"),
        Case("k-equals-V", {"logits": _logits(85, (6,)), "k": 6}, hidden=True, describe="k = V"),
        Case("k-above-V", {"logits": _logits(86, (6,)), "k": 9}, hidden=True, describe="k > V"),
        Case(
            "ties-batch64",
            {"logits": ties64, "k": 4},
            hidden=True,
            describe="rows of whole numbers with ties around the k-th place, float64",
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
    cases=_top_k_cases,
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


def _top_p_cases():
    clean = _from_probs(NUCLEUS_PROBS, [3, 0, 6, 1, 7, 2, 5, 4])
    peaked = _from_probs(np.array([0.6, 0.2, 0.1, 0.05, 0.05]), [2, 0, 4, 1, 3])
    tie = _from_probs(np.array([0.3, 0.2, 0.2, 0.2, 0.1]), [4, 3, 0, 1, 2], np.float64)
    masked = _logits(91, (10,))
    masked[[1, 4, 8]] = -np.inf
    return [
        Case("p0.7", {"logits": clean, "p": 0.7}),
        Case("one-token", {"logits": peaked, "p": 0.5}),
        Case(
            "batch64",
            {"logits": _logits(92, (4, 12), np.float64), "p": 0.9},
            hidden=True,
            describe="a batch of 4 rows, float64, p = 0.9",
        ),
        Case("p-one", {"logits": _logits(93, (9,)), "p": 1.0}, hidden=True, describe="p = 1.0"),
        Case(
            "tie-at-boundary",
            {"logits": tie, "p": 0.45},
            hidden=True,
            describe="equal probabilities at the boundary, float64",
        ),
        Case("tiny-p", {"logits": _logits(94, (7,)), "p": 0.01}, hidden=True, describe="p = 0.01"),
        Case(
            "after-top-k",
            {"logits": masked, "p": 0.8},
            hidden=True,
            describe="logits where some tokens are already -inf",
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
    cases=_top_p_cases,
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


def _filtered_cases():
    return [
        Case("all-three", {"logits": _logits(301, (12,)), "temperature": 1.5, "top_k": 5, "top_p": 0.75}),
        Case("defaults", {"logits": _logits(102, (9,)), "temperature": 1.0, "top_k": None, "top_p": None}),
        Case(
            "batch64",
            {"logits": _logits(103, (3, 15), np.float64), "temperature": 1.5, "top_k": 8, "top_p": 0.8},
            hidden=True,
            describe="a batch of 3 rows, float64, T = 1.5, k = 8, p = 0.8",
        ),
        Case(
            "greedy",
            {"logits": _logits(104, (10,)), "temperature": 0.0, "top_k": 5, "top_p": 0.9},
            hidden=True,
            describe="T = 0",
        ),
        Case(
            "hot-top-p",
            {"logits": _logits(105, (14,)), "temperature": 2.0, "top_k": None, "top_p": 0.6},
            hidden=True,
            describe="T = 2 with top-p only",
        ),
        Case(
            "k-above-V",
            {"logits": _logits(106, (6,), np.float64), "temperature": 0.8, "top_k": 10, "top_p": 0.95},
            hidden=True,
            describe="k > V, float64",
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
    cases=_filtered_cases,
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


def _one_id(token):
    arr = np.asarray(token)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise TypeError(f"sample_next must return one integer token id, got {token!r}")
    return int(arr.reshape(-1)[0])


def _draw(sample_next, logits, seed, n, settings):
    generator = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = _one_id(sample_next(logits.copy(), generator, **settings[i % len(settings)]))
    return out


def sampler(sample_next):
    """How the check calls ``sample_next``: ``n`` draws from one generator seeded with ``seed``.

    ``settings`` is a list of keyword dicts (temperature, top_k, top_p) used in turn. Mode
    ``"draws"`` returns the token ids (and first makes sure the same seed gives the same draws);
    mode ``"frequencies"`` returns how often each token was drawn.
    """

    def run(logits, seed, n, mode, settings):
        draws = _draw(sample_next, logits, seed, n, settings)
        if mode == "frequencies":
            return np.bincount(draws, minlength=logits.shape[-1]) / n
        if not np.array_equal(draws, _draw(sample_next, logits, seed, n, settings)):
            raise RuntimeError(
                "two runs from the same seed gave different draws: sample_next must take its random "
                "numbers from the rng it is given"
            )
        return draws

    return run


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
        return _draw(sample, logits, seed, n, settings)

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
    return _draw(sample, logits, seed, n, settings)


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


def _sample_cases():
    def case(name, logits, seed, n, mode, settings, hidden=False, describe=""):
        inputs = {"logits": logits, "seed": seed, "n": n, "mode": mode, "settings": settings}
        return Case(name, inputs, hidden, describe)

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
        case(
            "frequencies-hidden",
            SAMPLE_LOGITS[::-1].copy(),
            5,
            6000,
            "frequencies",
            [{"temperature": 1.5, "top_k": 4}],
            hidden=True,
            describe="6000 draws with T = 1.5 and top-k = 4",
        ),
        case(
            "draws64",
            _logits(114, (30,), np.float64, scale=0.7),
            6,
            30,
            "draws",
            [{"temperature": 1.3}, {"top_p": 0.6}],
            hidden=True,
            describe="30 draws over 30 tokens, float64, alternating settings",
        ),
        case(
            "greedy-ties",
            np.array([0.5, 2.0, 2.0, -1.0, 1.0], dtype=np.float32),
            7,
            6,
            "draws",
            [{"temperature": 0.0}, {"temperature": 1.0}],
            hidden=True,
            describe="greedy steps on equal largest logits, between sampled steps",
        ),
    ]


SAMPLE_NEXT = Exercise(
    name="sample_next",
    cases=_sample_cases,
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
    atol=0.025,
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


class ToyLM:
    """A tiny fixed stand-in for a model: next-token logits from the last token and the length.

    ``ToyLM(seed, V)(ids)`` returns logits of shape (V,) for the sequence ``ids`` (shape (T,)).
    """

    def __init__(self, seed: int, V: int, dtype=np.float32):
        g = rng(seed)
        self.table = (2.0 * g.normal(size=(V, V))).astype(dtype)
        self.by_length = g.normal(size=(7, V)).astype(dtype)

    def __call__(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError(
                f"next_logits takes the whole sequence so far, shape (T,), got shape {ids.shape}"
            )
        return self.table[ids[-1]] + self.by_length[len(ids) % 7]

    def __repr__(self):
        return f"ToyLM(V={self.table.shape[0]})"


def _generate_cases():
    def case(name, seed, V, ids, n, settings, stop=None, dtype=np.float32, hidden=False, describe=""):
        inputs = {
            "next_logits": ToyLM(seed, V, dtype),
            "ids": np.array(ids, dtype=np.int64),
            "max_new_tokens": n,
            "rng": np.random.default_rng(seed + 1000),
            **settings,
            "stop_token": stop,
        }
        return Case(name, inputs, hidden, describe)

    return [
        case("budget", 121, 12, [3, 1, 4], 10, {"temperature": 1.0}),
        case("stop", 122, 12, [5, 9], 20, {"temperature": 0.9, "top_k": 6}, stop=7),
        case(
            "greedy-stop",
            123,
            16,
            [0, 2],
            15,
            {"temperature": 0.0},
            stop=4,
            hidden=True,
            describe="greedy decoding with a stop token",
        ),
        case(
            "filtered64",
            124,
            20,
            [1, 2, 3, 4],
            12,
            {"temperature": 1.2, "top_k": 8, "top_p": 0.9},
            dtype=np.float64,
            hidden=True,
            describe="T, top-k and top-p together, float64, no stop token",
        ),
        case("zero-budget", 125, 10, [6, 6], 0, {}, stop=2, hidden=True, describe="max_new_tokens = 0"),
        case(
            "stop-first",
            126,
            8,
            [1],
            9,
            {"temperature": 0.0},
            stop=0,
            hidden=True,
            describe="the very first new token is the stop token",
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
    cases=_generate_cases,
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


def packed(attend_with_cache):
    """How the check calls ``attend_with_cache``: check the three results, then stack them.

    Returns ``out``, the grown ``cache_k`` and ``cache_v`` concatenated along the sequence axis.
    """

    def run(q_new, k_new, v_new, cache_k, cache_v):
        result = attend_with_cache(q_new, k_new, v_new, cache_k, cache_v)
        if not isinstance(result, tuple | list) or len(result) != 3:
            raise TypeError("attend_with_cache must return three arrays: (out, cache_k, cache_v)")
        out, new_k, new_v = (np.asarray(r) for r in result)
        H, T, d_head = q_new.shape
        S = cache_k.shape[-2]
        if out.shape != (H, T, d_head):
            raise ValueError(f"out has shape {out.shape}: expected {(H, T, d_head)}, one row per new query")
        for name, grown in (("cache_k", new_k), ("cache_v", new_v)):
            if grown.shape == (H, S, d_head) and T > 0:
                raise ValueError(
                    f"the returned {name} has the old shape {grown.shape}: the cache was not appended "
                    "to. Concatenate the new keys/values after the cached ones"
                )
            if grown.shape != (H, S + T, d_head):
                raise ValueError(
                    f"the returned {name} has shape {grown.shape}: expected {(H, S + T, d_head)}, the "
                    "old and the new entries along the sequence axis (-2)"
                )
        return np.concatenate([out, new_k, new_v], axis=-2)

    return run


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


def _cache_cases():
    def case(name, seed, H, S, T, d_head, dtype=np.float32, hidden=False, describe=""):
        g = rng(seed)

        def arr(n):
            return g.normal(size=(H, n, d_head)).astype(dtype)

        inputs = {"q_new": arr(T), "k_new": arr(T), "v_new": arr(T), "cache_k": arr(S), "cache_v": arr(S)}
        return Case(name, inputs, hidden, describe)

    return [
        case("one-step", 131, H=2, S=5, T=1, d_head=4),
        case("chunk", 132, H=2, S=3, T=3, d_head=4),
        case(
            "empty-cache64",
            133,
            H=3,
            S=0,
            T=4,
            d_head=5,
            dtype=np.float64,
            hidden=True,
            describe="an empty cache and 4 new tokens, float64",
        ),
        case(
            "long64",
            134,
            H=4,
            S=12,
            T=1,
            d_head=8,
            dtype=np.float64,
            hidden=True,
            describe="12 cached tokens, 4 heads, float64",
        ),
        case("one-head", 135, H=1, S=6, T=2, d_head=3, hidden=True, describe="one head, 2 new tokens"),
    ]


ATTEND_WITH_CACHE = Exercise(
    name="attend_with_cache",
    cases=_cache_cases,
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

Q_TOP_P = choice("q_top_p", ("a", "b", "c", "d"))

Q_ORDER = choice("q_order", ("a", "b", "c", "d"))

Q_CACHE = choice("q_cache", ("a", "b", "c", "d"))

EXERCISES = [
    APPLY_TEMPERATURE,
    TOP_K_FILTER,
    TOP_P_FILTER,
    FILTERED_PROBS,
    SAMPLE_NEXT,
    GENERATE,
    ATTEND_WITH_CACHE,
    Q_TOP_P,
    Q_ORDER,
    Q_CACHE,
]
