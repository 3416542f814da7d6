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

from .. import kinds
from ..exercise import Case, Exercise, choice, hidden, rng, size
from ..runners import ToyLM, packed, sampler
from .ch02 import SHARP, sharp_qk
from .wrong import attention, sampling, table

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


def _logits(seed, shape, dtype=np.float32, scale=2.0):
    return _drawn(rng(seed), shape, dtype, scale)


def _drawn(g, shape, dtype=np.float32, scale=2.0):
    return (scale * g.normal(size=shape)).astype(dtype)


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


# ---- temperature -------------------------------------------------------------------------------

TIE_AT_MAX = "two equal largest logits"
COLD = "a small temperature, far below 1 but not 0"


def _temperature_visible():
    zero = _logits(72, (8,))
    zero[5] = zero.max()  # two equal largest logits: T = 0 keeps the lower id only
    return [
        Case("cool", {"logits": _logits(71, (8,)), "temperature": 0.5}),
        Case("zero", {"logits": zero, "temperature": 0.0}, kinds={TIE_AT_MAX}),
        Case("hot64", {"logits": _logits(73, (3, 9), np.float64), "temperature": 2.5}),
        Case("one", {"logits": _logits(74, (7,)), "temperature": 1.0}),
        Case("cold", {"logits": _logits(75, (8,)), "temperature": 0.01}, kinds={COLD}),
        Case(
            "zero-batch64",
            {"logits": _with_tie_at_max(rng(78), (2, 6), np.float64), "temperature": 0.0},  # rows peak apart
            kinds={TIE_AT_MAX},
        ),
    ]


def _temperature_hidden(g):
    B, hot = size(g, 2, 4), round(float(g.uniform(1.5, 3.5)), 2)
    B0 = size(g, 2, 4)
    return [
        hidden("hot64", {"logits": _drawn(g, (B, size(g, 8, 12)), np.float64), "temperature": hot}),
        hidden("one", {"logits": _drawn(g, (size(g, 6, 12),)), "temperature": 1.0}),
        hidden(
            "cold",
            {"logits": _drawn(g, (size(g, 6, 12),)), "temperature": round(float(g.uniform(0.005, 0.02)), 3)},
            kinds={COLD},
            about=COLD,
        ),
        hidden(
            "zero-tie",
            {"logits": _with_tie_at_max(g, (size(g, 5, 9),)), "temperature": 0.0},
            kinds={TIE_AT_MAX},
            about=TIE_AT_MAX,
        ),
        hidden("zero-batch64", {"logits": _drawn(g, (B0, size(g, 5, 9)), np.float64), "temperature": 0.0}),
    ]


APPLY_TEMPERATURE = Exercise(
    name="apply_temperature",
    visible=_temperature_visible,
    hidden=_temperature_hidden,
    reference=lambda logits, temperature: lib.apply_temperature(logits, temperature),
    mistakes=table(
        sampling.apply_temperature,
        {
            "multiply": (
                {"op": "multiply", "zero": "divide"},
                "you multiplied by the temperature: divide the logits by T (T < 1 sharpens, T > 1 flattens)",
            ),
            "on-probabilities": (
                {"on": "probabilities"},
                "temperature divides the LOGITS, before any softmax: dividing probabilities by T changes "
                "nothing once they are renormalised",
            ),
            "returns-probabilities": (
                {"on": "returned-probabilities"},
                "return logits, not probabilities: logits / T (for T = 0 the argmax keeps its logit and "
                "every other token gets -inf); the filters and the softmax come later",
            ),
            "zero-divide": (
                {"zero": "divide"},
                "T = 0 cannot be a division: it is the greedy limit. Keep the largest logit as it is and "
                "set every other logit to -inf",
            ),
            "zero-kept-as-0": (
                {"zero": "kept-as-0"},
                "with T = 0 the kept token keeps its own logit (only the others become -inf): a 0 there "
                "is another logit than the model gave",
            ),
            "small-as-zero": (
                {"greedy_below": 0.05},
                "a small temperature (0.01, say) is not 0: divide the logits by it as by any other, "
                "which sharpens without removing anything. Only temperature == 0 is greedy",
            ),
            "floor-division": (
                {"op": "floor"},
                "you divided with // (floor division), which rounds each quotient down to a whole "
                "number: divide with /",
            ),
            "zero-keeps-ties": (
                {"zero": "every-max"},
                "with T = 0 keep exactly one token: among equal largest logits, the lowest id "
                "(np.argmax returns the first maximum)",
            ),
        },
    ),
    error_hints={
        "division by zero": "T = 0 cannot be a division: it is the greedy limit. Keep the largest "
        "logit as it is and set every other logit to -inf",
    },
    pure=True,
)


# ---- top-k -------------------------------------------------------------------------------------

K_IS_V = "k = V"
K_ABOVE_V = "k > V"
TIES_AT_K = "ties around the k-th place"


def _top_k_visible():
    tie = np.array([2.0, 1.0, 3.0, 1.0, 0.5, 1.0, -1.0], dtype=np.float32)
    return [
        Case("k3", {"logits": _logits(82, (10,)), "k": 3}),
        Case("tie-at-k", {"logits": tie, "k": 3}, kinds={TIES_AT_K}),
        Case("batch64", {"logits": _logits(83, (3, 9), np.float64), "k": 4}),
        Case("k1", {"logits": _logits(84, (8,)), "k": 1}),
        Case("k-equals-V", {"logits": _logits(85, (6,)), "k": 6}, kinds={K_IS_V}),
        Case("k-above-V", {"logits": _logits(86, (5,)), "k": 8}, kinds={K_ABOVE_V}),
        Case("k-none", {"logits": _logits(87, (7,)), "k": None}),
        Case("ties-batch64", {"logits": _ties_at_k(rng(88), 2, 9, 4), "k": 4}, kinds={TIES_AT_K}),
    ]


def _ties_at_k(g, rows, V, k):
    """Rows of whole numbers where the k-th and the (k+1)-th largest are equal."""
    x = np.round(g.normal(size=(rows, V)) * 1.5)
    for row in x:
        order = np.argsort(-row, kind="stable")
        row[order[k]] = row[order[k - 1]]
    return x


def _top_k_hidden(g):
    B, k = size(g, 2, 4), size(g, 3, 5)
    V_small = size(g, 5, 8)
    k_ties = size(g, 3, 5)
    return [
        hidden("batch64", {"logits": _drawn(g, (B, size(g, 10, 14)), np.float64), "k": k}),
        hidden("k1", {"logits": _drawn(g, (size(g, 8, 12),)), "k": 1}),
        hidden("k-equals-V", {"logits": _drawn(g, (V_small,)), "k": V_small}, kinds={K_IS_V}, about=K_IS_V),
        hidden(
            "k-above-V",
            {"logits": _drawn(g, (V_small,)), "k": V_small + size(g, 1, 4)},
            kinds={K_ABOVE_V},
            about=K_ABOVE_V,
        ),
        hidden("k-none", {"logits": _drawn(g, (size(g, 5, 9),), np.float64), "k": None}),
        hidden(
            "ties-batch64",
            {"logits": _ties_at_k(g, size(g, 2, 3), size(g, 8, 11), k_ties), "k": k_ties},
            kinds={TIES_AT_K},
            about=TIES_AT_K,
        ),
    ]


TOP_K_FILTER = Exercise(
    name="top_k_filter",
    visible=_top_k_visible,
    hidden=_top_k_hidden,
    reference=lambda logits, k: lib.top_k_filter(logits, k),
    mistakes=table(
        sampling.top_k_filter,
        {
            "threshold-keeps-ties": (
                {"threshold": True},
                "you kept every logit >= the k-th largest, so ties at the k-th place keep more than k "
                "tokens: keep exactly k, and among equal logits the lower id first "
                "(np.argsort(-logits, kind='stable'))",
            ),
            "ties-higher-id": (
                {"order": "ties-higher-id"},
                "ties are broken the wrong way: among equal logits the LOWER id ranks first. Reversing an "
                "ascending argsort puts the higher id first; sort -logits with kind='stable' instead",
            ),
            "smallest-k": (
                {"order": "smallest-first"},
                "you kept the k SMALLEST logits: sort in decreasing order (argsort of -logits)",
            ),
            "k-plus-one": ({"extra": 1}, "off by one: you kept k + 1 tokens; keep exactly k"),
            "k-minus-one": ({"extra": -1}, "off by one: you kept k - 1 tokens; keep exactly k"),
            **sampling.RETURNED,
        },
    ),
    error_hints={
        "out of bounds": "k >= V keeps every token: return a copy of the logits unchanged",
        "NoneType": "k=None keeps every token: return a copy of the logits unchanged",
    },
    pure=True,
)


# ---- top-p -------------------------------------------------------------------------------------

NUCLEUS_PROBS = np.array([0.35, 0.25, 0.15, 0.10, 0.07, 0.05, 0.02, 0.01])


TIED_BOUNDARY = "equal probabilities at the boundary"
P_EXACT = "the probability ranked above a token equal to p exactly"
BELOW_TOP = "a p below the largest probability"
LARGE = "large logits, where exp overflows unless each row's maximum is subtracted first"


def _exact_masses(g, V, n, dtype=np.float32):
    """Logits where ``n`` (a power of 2) drawn tokens are equally likely and the rest are -inf, and
    a ``p`` that the mass of the first ones hits exactly (every sum of 1/n is exact in float)."""
    logits = np.full(V, -np.inf)
    logits[g.choice(V, size=n, replace=False)] = float(g.normal())
    return logits.astype(dtype), size(g, 1, n - 1) / n


def _top_p_visible():
    clean = _from_probs(NUCLEUS_PROBS, [3, 0, 6, 1, 7, 2, 5, 4])
    peaked = _from_probs(np.array([0.6, 0.2, 0.1, 0.05, 0.05]), [2, 0, 4, 1, 3])
    tie, p_tie = _tie_at_boundary(rng(91))
    exact, p_exact = _exact_masses(rng(92), 11, 8)
    masked = _logits(93, (2, 9))
    masked[0, [1, 4, 6]] = masked[1, [0, 2, 7]] = -np.inf
    return [
        Case("p0.7", {"logits": clean, "p": 0.7}),
        Case("one-token", {"logits": peaked, "p": 0.5}, kinds={BELOW_TOP}),
        Case("batch64", {"logits": _logits(94, (3, 10), np.float64), "p": 0.85}),
        Case("p-one", {"logits": _saturating(rng(95), 64), "p": 1.0}, kinds={SATURATED}),
        Case("p-none", {"logits": _logits(96, (6,)), "p": None}),
        Case("tie-at-boundary", {"logits": tie, "p": p_tie}, kinds={TIED_BOUNDARY}),
        Case("p-exact", {"logits": exact, "p": p_exact}, kinds={P_EXACT}),
        Case("after-top-k", {"logits": masked, "p": 0.8}),
        Case("large", {"logits": _logits(97, (2, 8)) + np.float32(120.0), "p": 0.8}, kinds={LARGE}),
        Case(
            "near-p", {"logits": _just_below_p(rng(98), 0.875, 2, 8, np.float32), "p": 0.875}, kinds={NEAR_P}
        ),
    ]


NEAR_P = "a token whose mass ranked above it is within 1e-4 below p, closer than float16 can tell"
NEAR_P_PRECISION = (
    "the token ranked below a mass just under p (by 1e-4, less than float16's rounding near 1) was dropped: "
    "the probabilities lost precision before they were summed (cast to float16?). Sum them in the logits' "
    "own dtype, float32 or float64"
)


def _just_below_p(g, p: float, rows: int, V: int, dtype) -> np.ndarray:
    """Logits whose two likeliest tokens have a mass ``delta`` (60 to 110 millionths) below ``p``,
    each row at drawn ids: the third is kept. ``p`` and the first mass (0.5 or less) are exact in
    float16, and the second is within half of float16's spacing of ``p`` less the first, so
    probabilities rounded to float16 sum to ``p`` exactly and the third token is dropped."""
    out = np.empty((rows, V))
    for row in out:
        first = float(g.choice([0.5, 0.4375, 0.375]))
        delta = float(g.uniform(0.6e-4, 1.1e-4))
        tail = g.uniform(0.2, 1.0, size=V - 3) * (1 - p) / V
        probs = np.array([first, p - first - delta, 1 - p + delta - tail.sum(), *tail])
        row[:] = _from_probs(probs, g.permutation(V), np.float64)
    return out.astype(dtype)


def _saturating(g, V: int) -> np.ndarray:
    """float32 logits over ``V`` tokens with a long tail, drawn until the float32 probability
    ranked above some token rounds to 1.0 before the last one: there p = 1 must still keep
    everything, and a filter that runs for p = 1 (``p > 1`` where ``p >= 1`` belongs) drops the tail."""
    while True:
        logits = (4.0 * g.normal(size=V)).astype(np.float32)
        probs = np.sort(lib.softmax(logits))[::-1]
        if ((np.cumsum(probs) - probs)[:-1] >= 1.0).any():
            return logits


def _tie_at_boundary(g):
    """Float64 logits with one likeliest token, then many equally likely ones at drawn ids, then
    less likely ones, and a ``p`` that keeps about half of the tied: those of lowest id, by lib's
    ranking. The row is longer than 16, with ten or more tied: NumPy sorts 16 or fewer by
    insertion, which keeps ties in order, and only a longer row shows a sort that is not stable
    (``argsort``'s default, on any CPU) keeping others of the tied."""
    top, tied = float(g.uniform(0.1, 0.2)), float(g.uniform(0.03, 0.05))
    n_tied, n_rest = size(g, 10, 14), size(g, 12, 18)
    probs = np.array([top, *[tied] * n_tied, *(tied * g.uniform(0.1, 0.9, size=n_rest))])
    p = (top + tied * (n_tied // 2 + float(g.uniform(0.3, 0.7)))) / probs.sum()
    return _from_probs(probs / probs.sum(), g.permutation(len(probs)), np.float64), p


def _top_p_hidden(g):
    B, p = size(g, 2, 4), round(float(g.uniform(0.8, 0.95)), 2)
    tie, p_tie = _tie_at_boundary(g)
    n = int(2 ** size(g, 2, 3))
    exact, p_exact = _exact_masses(g, n + size(g, 1, 5), n, np.float64)
    masked = _drawn(g, (size(g, 8, 12),))
    masked[g.choice(len(masked), size=3, replace=False)] = -np.inf
    p_near = float(g.choice([0.8125, 0.84375, 0.875, 0.90625]))  # exact in float16
    return [
        hidden("batch64", {"logits": _drawn(g, (B, size(g, 10, 14)), np.float64), "p": p}),
        hidden(
            "p-one", {"logits": _saturating(g, size(g, 64, 96)), "p": 1.0}, kinds={SATURATED}, about=SATURATED
        ),
        hidden("p-none", {"logits": _drawn(g, (size(g, 5, 9),)), "p": None}),
        hidden("tie-at-boundary", {"logits": tie, "p": p_tie}, kinds={TIED_BOUNDARY}, about=TIED_BOUNDARY),
        hidden("p-exact", {"logits": exact, "p": p_exact}, kinds={P_EXACT}, about=P_EXACT),
        hidden(
            "tiny-p",
            {"logits": _drawn(g, (size(g, 5, 9),)), "p": round(float(g.uniform(0.005, 0.03)), 3)},
            kinds={BELOW_TOP},
            about=BELOW_TOP,
        ),
        hidden("after-top-k", {"logits": masked, "p": round(float(g.uniform(0.7, 0.9)), 2)}),
        hidden(
            "large",
            {"logits": _drawn(g, (B, size(g, 6, 10))) + np.float32(g.uniform(100.0, 150.0)), "p": p},
            kinds={LARGE},
            about=LARGE,
        ),
        hidden(
            "near-p",
            {"logits": _just_below_p(g, p_near, B, size(g, 6, 12), np.float32), "p": p_near},
            kinds={NEAR_P},
            about=NEAR_P,
        ),
    ]


SATURATED = "a long tail whose float32 cumulative probability reaches 1.0 before the last token"
DROPS_CROSSING = (
    "you dropped the token that crosses p: keep a token while the probability ranked ABOVE it is still "
    "below p (so the crossing token stays, and at least one token always does)"
)

TOP_P_FILTER = Exercise(
    name="top_p_filter",
    visible=_top_p_visible,
    hidden=_top_p_hidden,
    reference=lambda logits, p: lib.top_p_filter(logits, p),
    mistakes=table(
        sampling.top_p_filter,
        {
            "drops-crossing": ({"rule": "cum<p"}, DROPS_CROSSING),
            "filters-at-one": (
                {"filters_at_one": True},
                "p = 1 must keep every token, and yours drops some: in float32 the probability ranked "
                "above a tail token can round to 1.0. Return the logits as they are when p >= 1",
            ),
            "drops-crossing-le": ({"rule": "cum<=p"}, DROPS_CROSSING),
            "float16-mass": ({"precision": np.float16}, NEAR_P_PRECISION),
            "keeps-at-p": (
                {"rule": "before<=p"},
                "a token whose mass ranked above it is exactly p was kept: keep a token only while that "
                "mass is strictly below p (<, not <=)",
            ),
            "unsorted": (
                {"order": "id"},
                "you accumulated probabilities in token-id order: sort the tokens from most to least "
                "likely first, then accumulate",
            ),
            "ascending": (
                {"order": "smallest-first"},
                "you accumulated from the LEAST likely token: sort in decreasing probability",
            ),
            "ties-higher-id": (
                {"order": "ties-higher-id"},
                "ties are broken the wrong way: among equal probabilities the LOWER id ranks first; sort "
                "-logits with kind='stable' rather than reversing an ascending sort",
            ),
            **sampling.RETURNED,
        },
    ),
    error_hints={"NoneType": "p=None keeps every token: return a copy of the logits unchanged"},
    pure=True,
)


# ---- the three together ------------------------------------------------------------------------


def _filtered_visible():
    return [
        Case("all-three", {"logits": _logits(301, (12,)), "temperature": 1.5, "top_k": 5, "top_p": 0.75}),
        Case("defaults", {"logits": _logits(102, (9,)), "temperature": 1.0, "top_k": None, "top_p": None}),
        Case(
            "batch64",
            {"logits": _logits(103, (3, 12), np.float64), "temperature": 1.4, "top_k": 7, "top_p": 0.8},
        ),
        Case("greedy", {"logits": _logits(104, (9,)), "temperature": 0.0, "top_k": 4, "top_p": 0.9}),
        Case("hot-top-p", {"logits": _logits(105, (2, 14)), "temperature": 2.2, "top_k": None, "top_p": 0.6}),
        Case(
            "k-above-V64",
            {"logits": _logits(106, (6,), np.float64), "temperature": 0.8, "top_k": 9, "top_p": 0.95},
            kinds={K_ABOVE_V},
        ),
    ]


def _filtered_hidden(g):
    B, T, k, p = (
        size(g, 2, 4),
        round(float(g.uniform(1.2, 2.0)), 2),
        size(g, 6, 9),
        round(float(g.uniform(0.7, 0.9)), 2),
    )
    hot = round(float(g.uniform(1.5, 3.0)), 2)
    V_small = size(g, 5, 8)
    return [
        hidden(
            "batch64",
            {"logits": _drawn(g, (B, size(g, 12, 16)), np.float64), "temperature": T, "top_k": k, "top_p": p},
        ),
        hidden(
            "greedy",
            {
                "logits": _drawn(g, (size(g, 8, 12),)),
                "temperature": 0.0,
                "top_k": size(g, 3, 6),
                "top_p": 0.9,
            },
        ),
        hidden(
            "hot-top-p",
            {
                "logits": _drawn(g, (size(g, 12, 16),)),
                "temperature": hot,
                "top_k": None,
                "top_p": round(float(g.uniform(0.5, 0.7)), 2),
            },
        ),
        hidden(
            "k-above-V",
            {
                "logits": _drawn(g, (V_small,), np.float64),
                "temperature": round(float(g.uniform(0.6, 1.0)), 2),
                "top_k": V_small + size(g, 1, 5),
                "top_p": 0.95,
            },
            kinds={K_ABOVE_V},
            about=K_ABOVE_V,
        ),
    ]


def _filtered(logits, temperature=1.0, top_k=None, top_p=None):
    return lib.filtered_probs(logits, temperature, top_k, top_p)


FILTERED_PROBS = Exercise(
    name="filtered_probs",
    visible=_filtered_visible,
    hidden=_filtered_hidden,
    reference=_filtered,
    mistakes=table(
        sampling.filtered_probs,
        {
            "temperature-last": (
                {"order": ("top_k", "top_p", "temperature")},
                "temperature comes FIRST: it changes the probabilities that top-p measures, so apply it "
                "before top-k and top-p",
            ),
            "top-p-before-top-k": (
                {"order": ("temperature", "top_p", "top_k")},
                "top-k comes before top-p: top-p measures the probabilities of the tokens top-k kept "
                "(renormalised among them)",
            ),
            "no-renormalise": (
                {"renormalise": False},
                "the probabilities do not sum to 1: you computed the softmax before filtering and then "
                "zeroed tokens. Filter the logits first (removed ones at -inf), then take the softmax",
            ),
            "temperature-on-probabilities": (
                {"on_probabilities": True},
                "the temperature divides the LOGITS: dividing probabilities by T and taking a softmax again "
                "is not the same distribution; apply_temperature comes first, on the logits",
            ),
            "no-temperature": (
                {"order": ("top_k", "top_p")},
                "the temperature has no effect: divide the logits by T (with your apply_temperature) before filtering",
            ),
            "temperature-twice": (
                {"order": ("temperature", "temperature", "top_k", "top_p")},
                "the temperature is applied twice (the logits end up divided by T twice): divide them by T "
                "once, with your apply_temperature, then top-k, top-p and the softmax",
            ),
        },
    ),
    steps=(
        ("temperature", "top_k", "top_p"),
        lambda order: lambda **inputs: sampling.filtered_probs(**inputs, order=order),
    ),
    pure=True,
)


# ---- drawing a token ---------------------------------------------------------------------------


def _exact(logits, seed, n, mode, settings):
    """lib's draws, or the exact distribution they follow."""
    if mode == "frequencies":
        return _filtered(logits, **settings[0]).astype(np.float64)
    return sampler(lambda logits, rng, **chosen: lib.sample_next(logits, rng, **chosen))(
        logits, seed, n, mode, settings
    )


SAMPLE_LOGITS = _from_probs(
    np.array([0.30, 0.20, 0.15, 0.12, 0.10, 0.05, 0.05, 0.03]), [0, 2, 3, 5, 4, 1, 6, 7]
)


def _sample_inputs(logits, seed, n, mode, settings):
    return {"logits": logits, "seed": seed, "n": n, "mode": mode, "settings": settings}


GREEDY_TIES = "greedy steps on equal largest logits, between sampled steps"
CHANGING = "settings that change from one draw to the next"
U_NEAR_ONE = "a random number above the last entry of a float32 cumulative sum that rounding left below 1"
ONE_LEFT = "sampled steps whose top-p leaves a single token"
# Seeds whose generator's draw at the given index (0-based) is above 1 - 2**-24, float32's largest
# number below 1 (found by a search over seeds; such a draw comes once in 1.7e7).
NEAR_ONE_SEEDS = ((361910, 18), (440288, 36), (1183528, 15), (1234651, 31), (1820722, 36))
# float32 logits whose top-3 probabilities, summed in float32 in id order, end below 1 (0.99999994)
# however the softmax is written; id 7, the last, is not among the top 3.
BELOW_ONE = [1.5621033, -1.6121874, -0.2668709, 1.0021701, -0.4497797, 1.678416, 1.1418957, -3.3653133]


def _ends_below_one(logits, top_k):
    """Whether the float32 cumulative sum of the top-k probabilities ends below 1, and the last id
    is removed: a u above that end, compared unscaled, gives the removed last id."""
    probs = lib.filtered_probs(logits, top_k=top_k)
    return probs[-1] == 0 and np.cumsum(probs)[-1] < 1


def _below_one_logits(g, V, top_k, tries=1000):
    """float32 logits of ``V`` tokens that ``_ends_below_one`` with ``top_k``, drawn until they do."""
    for _ in range(tries):
        logits = _drawn(g, (V,), scale=1.5)
        logits[-1] = logits.min() - 1.0
        if _ends_below_one(logits, top_k):
            return logits
    raise RuntimeError("no logits whose float32 cumulative sum ends below 1")  # pragma: no cover


def _near_one_inputs(g, logits, top_k):
    """Draws from a seed of ``NEAR_ONE_SEEDS``, as many as reach its number near 1 and a few more."""
    seed, index = NEAR_ONE_SEEDS[size(g, 0, len(NEAR_ONE_SEEDS) - 1)]
    return _sample_inputs(logits, seed, index + 1 + size(g, 0, 3), "draws", [{"top_k": top_k}])


def _sample_visible():
    def case(name, logits, seed, n, mode, settings, kinds=()):
        return Case(name, _sample_inputs(logits, seed, n, mode, settings), kinds=kinds)

    return [
        case(
            "frequencies",
            SAMPLE_LOGITS,
            1,
            6000,
            "frequencies",
            [{"temperature": 0.8, "top_p": 0.75}],
            {kinds.FREQUENCIES},
        ),
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
            {CHANGING},
        ),
        case(
            "draws64",
            _logits(114, (24,), np.float64, scale=0.7),
            5,
            16,
            "draws",
            [{"temperature": 1.3}, {"top_p": 0.6}],
            {CHANGING},
        ),
        case(
            "greedy-ties",
            _with_tie_at_max(rng(115), (6,)),
            6,
            8,
            "draws",
            [{"temperature": 0.0}, {"temperature": 1.0}],
            {GREEDY_TIES, CHANGING},
        ),
        case(
            "u-near-one", np.array(BELOW_ONE, np.float32), 361910, 20, "draws", [{"top_k": 3}], {U_NEAR_ONE}
        ),
        case(
            "one-left",
            _logits(116, (10,), scale=0.7),
            7,
            12,
            "draws",
            [{"top_p": 0.05}, {"temperature": 1.2}],
            {ONE_LEFT, CHANGING},
        ),
    ]


DRAWS = ("logits", "n")  # what a hidden case's description shows: not its seed
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
    V, T, k = size(g, 6, 10), round(float(g.uniform(1.2, 2.0)), 2), size(g, 3, 5)
    frequent = _from_probs(g.dirichlet(np.full(V, 2.0)), g.permutation(V))
    settings = [{"temperature": T, "top_k": k}]
    V64, n64 = size(g, 20, 40), size(g, 20, 40)
    alternating = [
        {"temperature": round(float(g.uniform(1.1, 1.6)), 2)},
        {"top_p": round(float(g.uniform(0.5, 0.8)), 2)},
    ]
    one_left = [
        {"top_p": round(float(g.uniform(0.02, 0.06)), 3)},  # below 1/14: the top token alone reaches it
        {"temperature": round(float(g.uniform(1.1, 1.5)), 2)},
    ]
    return [
        hidden(
            "frequencies",
            _sample_inputs(
                frequent,
                _fair_seed(g, frequent, settings[0], SAMPLE_ATOL),
                FREQUENCY_DRAWS,
                "frequencies",
                settings,
            ),
            kinds={kinds.FREQUENCIES},
            about=f"T = {T}, top-k = {k}",
            sizes=DRAWS,
        ),
        hidden(
            "draws64",
            _sample_inputs(
                _drawn(g, (V64,), np.float64, scale=0.7), int(g.integers(2**31)), n64, "draws", alternating
            ),
            kinds={CHANGING},
            about="alternating settings",
            sizes=DRAWS,
        ),
        hidden(
            "greedy-ties",
            _sample_inputs(
                _with_tie_at_max(g, (size(g, 5, 8),)),
                int(g.integers(2**31)),
                size(g, 6, 10),
                "draws",
                [{"temperature": 0.0}, {"temperature": 1.0}],
            ),
            kinds={GREEDY_TIES, CHANGING},
            about=GREEDY_TIES,
            sizes=DRAWS,
        ),
        hidden(
            "u-near-one",
            _near_one_inputs(g, _below_one_logits(g, size(g, 6, 10), 3), 3),
            kinds={U_NEAR_ONE},
            about=U_NEAR_ONE,
            sizes=DRAWS,
        ),
        hidden(
            "one-left",
            _sample_inputs(
                _drawn(g, (size(g, 8, 14),), scale=0.7),
                int(g.integers(2**31)),
                size(g, 8, 14),
                "draws",
                one_left,
            ),
            kinds={ONE_LEFT, CHANGING},
            about=ONE_LEFT,
            sizes=DRAWS,
        ),
    ]


# What a sampler that draws from the right distribution with other random numbers is told.
OTHER_RANDOM_NUMBERS = (
    "your draws follow the right distribution but not the reference's sequence: draw the way the "
    "docstring says, with exactly ONE u = rng.random() per sampled token (no extra call, and u itself, "
    "not 1 - u) and the first index whose cumulative probability exceeds u, and no random number at all "
    "on a greedy step (temperature 0 or top_k 1). rng.choice(V, p=probs) draws exactly that way; "
    "rng.multinomial and other methods use the generator differently"
)

OWN_GENERATOR = (
    "do not create a generator inside sample_next (np.random.default_rng(), seeded or not) or use "
    "np.random.random(): draw from the rng argument, so the caller's seed fixes the draws"
)

SAMPLE_NEXT = Exercise(
    name="sample_next",
    visible=_sample_visible,
    hidden=_sample_hidden,
    runner=sampler,
    reference=_exact,
    mistakes=table(
        sampling.sample_next,
        {
            "multinomial": ({"draw_with": "multinomial"}, OTHER_RANDOM_NUMBERS),
            # before the rows below: on greedy steps between drawn ones, a spare draw can give its draws
            "greedy-draws": (
                {"greedy_draws": True},
                "a greedy step (temperature 0 or top_k 1) must not draw a random number: return the argmax "
                "before touching the rng, or every later draw shifts",
            ),
            "greedy-only-when-both": (
                {"greedy_when": "both"},
                "temperature 0 alone, or top_k 1 alone, is a greedy step too: return the argmax when either "
                "holds (temperature == 0 or top_k == 1), before touching the rng",
            ),
            "one-minus-u": ({"u": "1-u"}, OTHER_RANDOM_NUMBERS),
            "spare-draw-before": ({"spare_draw": "before"}, OTHER_RANDOM_NUMBERS),
            "spare-draw-after": ({"spare_draw": "after"}, OTHER_RANDOM_NUMBERS),
            "vector-draw": (
                {"spare_draw": "vector"},
                "draw ONE number per sampled token, u = rng.random(): rng.random(V) draws V of them, so "
                "even if you use only the first, every later draw comes out different from the reference's",
            ),
            "top-k-1-draws": ({"greedy_draws": "top_k"}, OTHER_RANDOM_NUMBERS),
            "one-left-no-draw": (
                {"one_left": "no-draw"},
                "a sampled step draws its u = rng.random() even when the filters leave a single token "
                "(a small top_p): only temperature 0 or top_k 1 skip the draw, and a draw skipped shifts "
                "every later one",
            ),
            "unscaled-u": (
                {"u": "unscaled32"},
                "a u just below 1 gave a token the filters removed: your cumulative sum ends below 1 "
                "(float32 rounding), and a u above its end fell past the last kept token. Scale u by "
                "cdf[-1], np.searchsorted(cdf, u * cdf[-1], side='right'), as the docstring says",
            ),
            "always-argmax": (
                {"draw_with": "argmax"},
                "your function never samples: it always returns the most likely token, so its output "
                "does not depend on the random generator. Draw u = rng.random() and take the first "
                "token whose cumulative probability exceeds u; only temperature 0 or top_k 1 is greedy",
            ),
            "uniform": (
                {"draw_with": "uniform"},
                "your draws pick every token left after filtering equally often: each must come up with "
                "its probability from filtered_probs, so a likely token is drawn more often than an "
                "unlikely one. Compare u with the cumulative probabilities",
            ),
            "drops-boundary": (
                {"rule": "cum<p"},
                "you sample from a distribution without the token that crosses top_p: top-p keeps that "
                "token (check your top_p_filter and filtered_probs)",
            ),
            "no-temperature": (
                {"order": ("top_k", "top_p")},
                "your draws ignore the temperature: sample from filtered_probs(logits, temperature, "
                "top_k, top_p)",
            ),
            "no-top-k": (
                {"order": ("temperature", "top_p")},
                "your draws ignore top_k: sample from filtered_probs(logits, temperature, top_k, top_p)",
            ),
            "unfiltered": (
                {"order": ("temperature",)},
                "your draws ignore top_k and top_p: sample from filtered_probs(logits, temperature, "
                "top_k, top_p)",
            ),
        },
    ),
    atol=SAMPLE_ATOL,
    rtol=0.0,
    check_dtype=False,
    error_hints={
        "same seed": OWN_GENERATOR,
        "without taking a number from the rng": OWN_GENERATOR,
        "do not sum to 1": "rng.choice insists that p sums to 1 within about 1e-8, which float32 "
        "probabilities rarely do: use p = probs.astype(np.float64); p /= p.sum() (or draw with "
        "rng.random() and np.cumsum as the docstring says). And take the softmax AFTER filtering; "
        "do not zero probabilities afterwards",
        "must return one integer": "return a single int token id, e.g. int(np.argmax(...))",
        "outside 0 ..": "an id past the last one: np.searchsorted gives V for a u at or above the cumulative "
        "sum's last entry, which float32 rounding can leave below 1. Search for u * cdf[-1] and keep "
        "min(..., V - 1), as the docstring says",
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


STOP_FIRST = "the very first new token is the stop token"
WIDE_STOP = (
    "a stop token above 256 (Python keeps one object per small int only: a test with is, not ==, misses it)"
)
PROMPT_STOP = "a prompt that ends with the stop token"
WATCHED = "a model that may not be called once the stop token has been drawn"


def _generate_visible():
    def case(name, seed, V, ids, n, settings, stop=None, dtype=np.float32, kinds=()):
        model = ToyLM(rng(seed), V, dtype)
        if stop == "first":
            stop = _greedy_tokens(model, ids, 1)[0]
        return Case(name, _generate_inputs(model, ids, n, seed + 1000, settings, stop), kinds=kinds)

    def wide_stop(name, g):
        model, ids, n, stop = _wide_stop(g)
        return Case(
            name, _generate_inputs(model, ids, n, 1130, {"temperature": 0.0}, stop), kinds={WIDE_STOP}
        )

    return [
        case("budget", 121, 12, [3, 1, 4], 10, {"temperature": 1.0}),
        case("stop", 122, 12, [5, 9], 20, {"temperature": 0.9, "top_k": 6}, stop=7),
        case("greedy-stop", 123, 14, [2], 12, {"temperature": 0.0}, stop=9),
        case(
            "filtered64", 124, 16, [1, 8], 9, {"temperature": 1.2, "top_k": 7, "top_p": 0.6}, dtype=np.float64
        ),
        case("zero-budget", 125, 9, [4, 4], 0, {}, stop=1),
        case("stop-zero", 128, 10, [3, 7], 8, {"temperature": 0.0}, stop=0),  # emits 8, then 0
        case("stop-first", 126, 8, [6, 0, 2], 7, {"temperature": 0.0}, stop="first", kinds={STOP_FIRST}),
        case("prompt-stop", 129, 11, [4, 2, 5], 6, {"temperature": 0.8}, stop=5, kinds={PROMPT_STOP}),
        wide_stop("wide-stop", rng(130)),
        Case("stop-watched", _watched(rng(127), 10, [2, 6], 12, 1134), kinds={WATCHED}),
    ]


def _watched(g, V, ids, budget, seed):
    """Greedy inputs whose model (``ToyLM(watch=...)``) refuses to be called after the stop token:
    the first token greedy decoding emits that it did not emit first (the first one itself if it
    emits nothing else), so that the budget outlasts the stop."""
    emitted = _greedy_tokens(ToyLM(copy.deepcopy(g), V), ids, budget)
    stop = next((t for t in emitted if t != emitted[0]), emitted[0])
    model = ToyLM(g, V, watch=(len(ids), stop))
    return _generate_inputs(model, ids, budget, seed, {"temperature": 0.0}, stop)


def _wide_stop(g, tries=100):
    """A model over 300 to 400 tokens, a prompt, a budget and a stop token above 256 that greedy
    decoding emits after a step or more (models redrawn until one does)."""
    for _ in range(tries):
        model = ToyLM(g, size(g, 300, 400))
        ids, budget = g.integers(0, model.table.shape[0], size=2).tolist(), size(g, 8, 12)
        emitted = _greedy_tokens(model, ids, budget)
        wide = [t for t in emitted[1:-1] if t > 256]
        if wide:
            return model, ids, budget, wide[0]
    raise RuntimeError("no greedy run emitted a token above 256")  # pragma: no cover


def _greedy_tokens(model, ids, n):
    """The tokens greedy decoding appends to ``ids``, ``n`` of them."""
    out = list(ids)
    for _ in range(n):
        out.append(int(np.argmax(model(np.array(out)))))
    return out[len(ids) :]


def _generate_hidden(g):
    def prompt(V):
        return g.integers(0, V, size=size(g, 1, 4)).tolist()

    def seed():
        return int(g.integers(2**31))

    greedy, greedy_ids, budget = ToyLM(g, size(g, 12, 20)), None, size(g, 12, 18)
    greedy_ids = prompt(greedy.table.shape[0])
    emitted = _greedy_tokens(greedy, greedy_ids, budget)
    stop = emitted[size(g, 2, budget - 1)]  # a token greedy decoding emits after a few steps
    first = ToyLM(g, size(g, 6, 10))
    first_ids = prompt(first.table.shape[0])
    V64, V0 = size(g, 16, 24), size(g, 8, 12)
    stop_at_end = size(g, 0, V0 - 1)
    filtered = {
        "temperature": round(float(g.uniform(1.0, 1.4)), 2),
        "top_k": size(g, 6, 10),
        "top_p": round(float(g.uniform(0.85, 0.95)), 2),
    }
    wide_model, wide_ids, wide_budget, wide_stop = _wide_stop(g)
    return [
        hidden(
            "greedy-stop",
            _generate_inputs(greedy, greedy_ids, budget, seed(), {"temperature": 0.0}, stop),
            about="greedy decoding with a stop token",
        ),
        hidden(
            "filtered64",
            _generate_inputs(ToyLM(g, V64, np.float64), prompt(V64), size(g, 8, 14), seed(), filtered),
            about="T, top-k and top-p together, float64, no stop token",
        ),
        hidden(
            "zero-budget", _generate_inputs(ToyLM(g, V0), prompt(V0), 0, seed(), {}, stop=size(g, 0, V0 - 1))
        ),
        hidden(
            "stop-first",
            _generate_inputs(
                first,
                first_ids,
                size(g, 5, 10),
                seed(),
                {"temperature": 0.0},
                _greedy_tokens(first, first_ids, 1)[0],
            ),
            kinds={STOP_FIRST},
            about=STOP_FIRST,
        ),
        hidden(
            "prompt-stop",
            _generate_inputs(
                ToyLM(g, V0), [*prompt(V0), stop_at_end], size(g, 4, 8), seed(), {}, stop_at_end
            ),
            kinds={PROMPT_STOP},
            about=PROMPT_STOP,
        ),
        hidden(
            "wide-stop",
            _generate_inputs(wide_model, wide_ids, wide_budget, seed(), {"temperature": 0.0}, wide_stop),
            kinds={WIDE_STOP},
            about=WIDE_STOP,
        ),
        hidden(
            "stop-watched",
            _watched(g, size(g, 8, 12), prompt(8), size(g, 10, 16), seed()),
            kinds={WATCHED},
            about=WATCHED,
        ),
    ]


def _generate(
    next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None
):
    """``lib.sample_next`` in a loop over the whole sequence so far, until the budget is spent or
    right after the stop token (``lib.generate``'s loop, with a function for the model)."""
    rng = copy.deepcopy(rng)  # the reference and every mistake start from the case's seed
    out = [int(i) for i in ids]
    for _ in range(max_new_tokens):
        logits = next_logits(np.array(out))
        out.append(int(lib.sample_next(logits, rng, temperature=temperature, top_k=top_k, top_p=top_p)))
        if out[-1] == stop_token:
            break
    return np.array(out, dtype=np.int64)


GENERATE = Exercise(
    name="generate",
    visible=_generate_visible,
    hidden=_generate_hidden,
    reference=_generate,
    mistakes=table(
        sampling.generate,
        {
            "drops-stop": (
                {"include_stop": False},
                "you stopped one token early: append the stop token to the output, THEN stop",
            ),
            "ignores-stop": (
                {"stop": False},
                "the loop ran past the stop token: stop right after emitting stop_token",
            ),
            "one-extra": (
                {"budget_extra": 1},
                "one token too many: the budget max_new_tokens counts new tokens only",
            ),
            "one-short": (
                {"budget_extra": -1},
                "one token too few: make max_new_tokens new tokens (unless the stop token comes first)",
            ),
            "new-only": (
                {"only_new": True},
                "return the whole sequence, the prompt ids followed by the new tokens",
            ),
            "last-token-only": (
                {"context": "last"},
                "next_logits needs the whole sequence so far, not only its last token (a transformer "
                "attends to every earlier position)",
            ),
            "prompt-only": (
                {"context": "prompt"},
                "next_logits needs the sequence so far, the prompt AND the tokens drawn since: you gave "
                "it the prompt alone at every step, so each token is drawn as if it were the first",
            ),
            "greedy": (
                {"pick": "argmax"},
                "you always took the argmax: draw each token with your sample_next(logits, rng, ...)",
            ),
            "settings-ignored": (
                {"settings": "defaults"},
                "pass temperature, top_k and top_p on to sample_next: your tokens were drawn with the defaults",
            ),
            "settings-first-only": (
                {"settings": "first"},
                "only your first new token was drawn with temperature, top_k and top_p; the tokens after "
                "it got sample_next's defaults: pass the same settings to sample_next at every step",
            ),
            "greedy-after-first": (
                {"settings": "first-greedy"},
                "your first new token was drawn with the settings given, and every token after it was the "
                "argmax (temperature 0): pass the same temperature, top_k and top_p to sample_next at "
                "every step",
            ),
            "stop-in-prompt": (
                {"stop_looked": "last"},
                "you stopped before drawing because the sequence already ended with the stop token (the "
                "prompt's last token): stop only right after a token you appended is the stop token",
            ),
            "one-past-stop": (
                {"stop": False, "stop_looked": "late"},
                "you drew one token after the stop token: stop right after appending stop_token (test "
                "the token you just appended, not the one before it)",
            ),
            "copied-rng": (
                {"step_rng": "copied"},
                "every token was drawn with the same random number: each step got a copy of rng (or a "
                "generator made afresh); pass rng itself to sample_next, so that each draw moves it on",
            ),
        },
    ),
    check_dtype="kind",
)


# ---- the KV cache ------------------------------------------------------------------------------


def _attend_with_cache(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    out = lib.scaled_dot_product_attention(q_new, k, v, mask=lib.causal_mask(q_new.shape[-2], k.shape[-2]))
    return out, k, v


def _cache_inputs(g, H, S, T, d_head, dtype=np.float32):
    def arr(n):
        return g.normal(size=(H, n, d_head)).astype(dtype)

    return {"q_new": arr(T), "k_new": arr(T), "v_new": arr(T), "cache_k": arr(S), "cache_v": arr(S)}


def _sharp_cache(g, H, S, T, d_head, scale):
    """Cache inputs whose scores reach the thousands (``ch02.sharp_qk``, with ``S`` cached keys)."""
    qk = sharp_qk(g, (H,), T, d_head, scale, S=S)
    v = g.normal(size=(H, S + T, d_head)).astype(np.float32)
    k = qk["k"]
    return {"q_new": qk["q"], "k_new": k[:, S:], "v_new": v[:, S:], "cache_k": k[:, :S], "cache_v": v[:, :S]}


ONE_HEAD = "one head"


def _cache_visible():
    return [
        Case("one-step", _cache_inputs(rng(131), H=2, S=5, T=1, d_head=4)),
        Case("chunk", _cache_inputs(rng(132), H=2, S=3, T=3, d_head=4)),
        Case("empty-cache64", _cache_inputs(rng(133), H=2, S=0, T=3, d_head=4, dtype=np.float64)),
        Case("one-head", _cache_inputs(rng(134), H=1, S=4, T=2, d_head=3), kinds={ONE_HEAD}),
        Case("sharp", _sharp_cache(rng(135), H=2, S=3, T=2, d_head=4, scale=30.0), kinds={SHARP}),
    ]


def _cache_hidden(g):
    T0, H0, d0 = size(g, 3, 6), size(g, 2, 4), size(g, 3, 6)
    S_long, H_long = size(g, 8, 16), size(g, 3, 5)
    return [
        hidden("empty-cache64", _cache_inputs(g, H0, 0, T0, d0, np.float64), about="an empty cache"),
        hidden("long64", _cache_inputs(g, H_long, S_long, 1, 2 * size(g, 2, 5), np.float64)),
        hidden(
            "one-head", _cache_inputs(g, 1, size(g, 4, 8), 2, size(g, 3, 6)), kinds={ONE_HEAD}, about=ONE_HEAD
        ),
        hidden(
            "sharp",
            _sharp_cache(g, size(g, 2, 3), size(g, 2, 5), size(g, 1, 3), 4, float(g.uniform(25.0, 40.0))),
            kinds={SHARP},
            about=SHARP,
        ),
    ]


ATTEND_WITH_CACHE = Exercise(
    name="attend_with_cache",
    masked_softmax=True,
    visible=_cache_visible,
    hidden=_cache_hidden,
    runner=packed,
    reference=packed(_attend_with_cache),
    sections=lambda inputs: [
        ("out", inputs["q_new"].shape[-2]),
        ("cache_k", inputs["cache_k"].shape[-2] + inputs["k_new"].shape[-2]),
        ("cache_v", inputs["cache_v"].shape[-2] + inputs["v_new"].shape[-2]),
    ],
    mistakes=table(
        attention.attend_with_cache,
        {
            "old-keys-only": (
                {"keys": "cached"},
                "the new tokens attended only to the cached keys: append k_new and v_new FIRST, so each "
                "new token also attends to itself",
            ),
            "prepended": (
                {"place": "before"},
                "the new keys/values went BEFORE the cached ones: append them at the end, so the cache "
                "stays in position order",
            ),
            "no-mask": (
                {"mask": "none"},
                "with several new tokens, new token i may only see keys up to position past + i: use "
                "causal_mask(T, S + T) (one new token needs no mask)",
            ),
            "mask-no-offset": (
                {"offset": False},
                "the mask is not offset by the cache: the new queries are the LAST T of S + T positions, "
                "so causal_mask(T, S + T) lets query i see keys 0 .. S + i",
            ),
            "mask-one-ahead": (
                {"diagonal": 1},
                "the mask's edge is one key too far: new query i (position S + i) may see keys 0 .. S + i, "
                "not S + i + 1; causal_mask(T, S + T) draws exactly that edge",
            ),
            "no-scale": (
                {"scale": "none"},
                "the scores are not scaled: divide q k^T by sqrt(d_head) (or use scaled_dot_product_attention)",
            ),
            "no-max": (
                {"shift": False},
                "on large scores your output is NaN: np.exp of a score above about 88 overflows float32, "
                "and inf / inf is NaN. Subtract each row's maximum score before np.exp (or use "
                "scaled_dot_product_attention, which does)",
            ),
            "softmax-over-queries": (
                {"axis": -2},
                "the softmax runs over the new queries (axis=-2): each query's weights over the keys must "
                "sum to 1, so take it over the last axis (keys), axis=-1; with one new token it makes every "
                "weight 1",
            ),
        },
        wrap=packed,
    ),
    error_hints={
        "could not be broadcast": "the mask must line up with the scores, (H, T, S + T): build it as "
        "causal_mask(T, S + T), where T and S are the lengths of the sequence axis, q_new.shape[-2] and "
        "cache_k.shape[-2] (the first axis holds the heads)",
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
