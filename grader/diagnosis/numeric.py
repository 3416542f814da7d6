"""Numbers and dtypes: overflow on large inputs, precision (float32 against float64), NaN and
-inf where they do not belong (a mask built with arithmetic, -1e9 for -inf), more or fewer
entries kept per row, rows that are not distributions, integers that wrapped round."""

import numpy as np

from .. import kinds
from .core import _near, _softmax, _Wrong


def _non_finite(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind != "f" or e.dtype.kind != "f":
        return None
    bad = ~np.isfinite(a) & np.isfinite(e)
    if np.isnan(a).all() and a.size > 1:
        return (
            "your output is NaN everywhere: an infinity met a 0 (0 * inf) or another infinity (inf - inf); "
            "build a mask with np.where(mask, x, -np.inf), not with arithmetic on infinities"
        )
    if bad.any() and np.isnan(a[bad]).all():
        zero = np.isfinite(e) & (e == 0)
        if zero.any() and np.array_equal(bad, zero):
            return (
                "NaN exactly where the reference has 0 (the masked entries): 0 * inf and -inf - (-inf) are NaN; "
                "mask the scores with -np.inf before the softmax and compute nothing else with infinities"
            )
        if a.ndim >= 1 and np.array_equal(np.isnan(a).all(axis=-1), bad.any(axis=-1)):
            return (
                "whole rows are NaN: every entry of those rows was -inf before the softmax (a mask that hides "
                "too much, even a token from itself?) or inf (an overflow)"
            )
    if np.isneginf(a).any() and not np.isneginf(e).any() and _distribution(e):
        return (
            "your output holds -inf, and the reference is a probability distribution (each row sums to 1, "
            "removed entries at 0): you return scores or logits; take their softmax"
        )
    masked = np.isneginf(e)
    if masked.any() and not np.isneginf(a[masked]).all():
        kept = a[masked & ~np.isneginf(a)]
        if np.isfinite(kept).all() and (kept <= -1e4).all():
            return (
                "where the reference has -inf, yours has large negative numbers: this function must put "
                "exactly -np.inf there"
            )
        if (kept == 0).all():
            return (
                "0 where the reference has -inf: a removed or masked entry must be -inf (0 is an ordinary "
                "value that a softmax still gives weight to)"
            )
        if not np.isneginf(a).any():
            return (
                "the reference removes entries (sets them to -inf) and your output removes none: set "
                "them to -np.inf (dividing by a tiny number instead is not the same)"
            )
    # Frequencies of draws: a token drawn 0 times is rare, not removed (its count is chance).
    support = None if kinds.FREQUENCIES in w.exercise.kinds(w.case) else _support(a, e)
    if support is not None:
        kept_a, kept_e, removed = support
        difference = np.unique(kept_a.sum(axis=-1) - kept_e.sum(axis=-1))
        if len(difference) == 1 and difference[0] != 0:
            n = int(difference[0])
            signs = {int(np.sign(n))} | _kept_signs(w)
            if signs >= {1, -1}:
                return (
                    f"you keep {abs(n)} {'more' if n > 0 else 'fewer'} entr{'y' if abs(n) == 1 else 'ies'} per row "
                    f"than the reference here (the others {removed}), and {'fewer' if n > 0 else 'more'} on other "
                    "cases you get wrong: not an off-by-one, the test that decides which entries stay is not the "
                    "reference's. Look at what your code compares with the threshold (each entry's own value, "
                    "the total of those ranked above it, a fraction of the largest?) and on which scale"
                )
            return (
                f"you keep {abs(n)} {'more' if n > 0 else 'fewer'} entr{'y' if abs(n) == 1 else 'ies'} per row "
                f"than the reference (the others {removed}): a <= where < belongs, or an off-by-one in a count?"
            )
        if (kept_a.sum(axis=-1) == kept_e.sum(axis=-1)).all() and not np.array_equal(kept_a, kept_e):
            return (
                "you keep as many entries per row as the reference, but not the same ones: look at the order "
                "you rank them in (largest first, and among equal values the lower index first)"
            )
    return None


def _kept_signs(w: _Wrong) -> set[int]:
    """Whether the function keeps more entries (1) or fewer (-1) than the reference on some row
    of the other cases it gets wrong."""
    signs = set()
    for case in w.cases:
        if case.name == w.case.name or case.raises is not None:
            continue
        outcome, expected = w.student.on(case), w.table.get(f"{case.name}::expected")
        if outcome is None or outcome.error or expected is None:
            continue
        signs |= {int(np.sign(d)) for d in _kept_more(outcome.value, expected) or ()} - {0}
    return signs


def _kept_more(a, e) -> set[int] | None:
    """How many more entries per row ``a`` keeps than ``e`` (``_support``), each difference once."""
    a, e = np.asarray(a), np.asarray(e)
    if a.shape != e.shape or a.dtype.kind != "f":
        return None
    support = _support(a, e)
    if support is None:
        return None
    kept_a, kept_e, _ = support
    return {int(d) for d in np.unique(kept_a.sum(axis=-1) - kept_e.sum(axis=-1))}


def _not_a_distribution(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind != "f" or not np.isfinite(a).all() or not _distribution(e):
        return None
    if np.allclose(a.sum(axis=-1), 1, atol=1e-3):
        return None
    return (
        "the reference's rows are probability distributions (each sums to 1), and yours do not: is a "
        "softmax, or the division by each row's sum, missing?"
    )


def _softmaxed_again(w: _Wrong) -> str | None:
    """The reference's rows are probabilities and the output is their softmax: a softmax taken
    once too often (on the probabilities, where the reference takes it once, on logits)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind != "f" or not _distribution(e) or _near(a, e):
        return None
    if not _near(a, _softmax(np.asarray(e, np.float64))):
        return None
    return (
        "your output is the softmax of the reference's probabilities: a softmax is taken once too often "
        "(on probabilities, where it belongs once, on logits or scores)"
    )


def _distribution(e: np.ndarray) -> bool:
    """``e`` is probabilities: non-negative rows that sum to 1."""
    return e.ndim >= 1 and bool((e >= 0).all()) and bool(np.allclose(e.sum(axis=-1), 1, atol=1e-4))


def _support(a, e):
    """Which entries each keeps, for outputs that remove some (at -inf, or at probability 0 in a
    distribution), and how removed ones are written."""
    if a.ndim == 0:
        return None
    if np.isneginf(e).any() or np.isneginf(a).any():
        return np.isfinite(a), np.isfinite(e), "at -inf"
    if np.isfinite(a).all() and (e >= 0).all() and (a >= 0).all() and ((e == 0).any() or (a == 0).any()):
        return a > 0, e > 0, "at probability 0"
    return None


def _overflow(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind != "f" or not (~np.isfinite(a) & np.isfinite(e)).any():
        return None
    smaller = w.variant("smaller")
    if not smaller:
        return None
    finite = [
        v[np.isfinite(v)]
        for v in w.case.inputs.values()
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.isfinite(v).any()
    ]
    largest = max(float(np.abs(v).max()) for v in finite)
    unknown = w.student.run(smaller[0]) is None  # the first pass of grading: judge by the sizes
    if not (w.right_on(smaller[0]) or (unknown and largest > 50)):
        return None
    if max(float(v.max()) for v in finite) < 50 <= largest:  # large only below zero: nothing overflows
        return _underflow_message(largest)
    return (
        f"NaN or inf on large values (up to about {largest:.0f} here), right on small ones: an np.exp "
        "overflows to inf (and inf / inf is NaN). Keep what goes into np.exp small: in a softmax, subtract "
        "each row's maximum first (it does not change the result); in an activation, use the docstring's "
        "form (np.tanh for a tanh, exp(-z) in a sigmoid), which stays finite"
    )


def _underflow_message(largest: float) -> str:
    """NaN or inf where the inputs are large only in the negative direction: exp of a number far
    below the others rounds to 0, and a log of it (or a division by it) is infinite."""
    return (
        f"NaN or inf where some values lie far below the rest (about -{largest:.0f} here), right on small "
        "ones: a probability rounds to 0 (np.exp of a very negative number), and its log (or 1 over it) "
        "is infinite; stay in log space, with a log-softmax: x - max - log(sum(exp(x - max)))"
    )


def _narrowed(w: _Wrong) -> str | None:
    """A float output of a dtype with fewer digits than the reference's, equal to the reference
    rounded to that dtype (within one unit in its last place): the right values, cast to a
    narrower dtype (float16, float32) on the way out."""
    a, e = w.actual, w.expected
    if (
        a.shape != e.shape
        or a.dtype.kind != "f"
        or e.dtype.kind != "f"
        or a.dtype.itemsize >= e.dtype.itemsize
    ):
        return None
    if not (np.isfinite(a).all() and np.isfinite(e).all()):
        return None
    rounded = e.astype(a.dtype).astype(np.float64)
    if not np.all(np.abs(a.astype(np.float64) - rounded) <= np.spacing(np.abs(rounded).astype(a.dtype))):
        return None
    return (
        f"your output is {a.dtype} where the reference's is {e.dtype}: the values are right to {a.dtype}'s "
        f"precision (about {np.finfo(a.dtype).precision} digits), which is too coarse here; keep the dtype "
        f"of the inputs (no .astype({a.dtype}) or np.{a.dtype} at the end)"
    )


def _truncated(w: _Wrong) -> str | None:
    """Integers where the reference's floats have fractions: floats written into an integer array
    (one made like the int ids, or with dtype=int) or cast to int on the way out."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind not in "iu" or e.dtype.kind != "f" or not np.isfinite(e).all():
        return None
    e = e.astype(np.float64)
    if (e == np.round(e)).all():
        return None
    how = next(
        (
            f": each of your numbers is the reference's {words}"
            for words, f in (
                ("rounded toward zero", np.trunc),
                ("rounded down", np.floor),
                ("rounded to the nearest integer", np.round),
            )
            if np.array_equal(a, f(e))
        ),
        "",
    )
    return (
        f"your output holds integers ({a.dtype}) where the reference's are floats{how}. Floats written into "
        "an integer array lose their fractions: an array made with an integer dtype (dtype=int, or "
        "np.zeros_like of an int array such as the ids) or an .astype(int)? Make it with a float dtype"
    )


def _precision(w: _Wrong) -> str | None:
    for variant in w.variant("float64") + w.variant("float32"):
        if w.right_on(variant):
            if variant.what == "float64":
                return (
                    "right in float64, wrong in float32: float32 keeps about 7 digits and overflows sooner "
                    "(np.exp above about 88); keep intermediate values in range"
                )
            return (
                "right in float32, wrong in float64: does your code force float32 somewhere (np.float32, "
                ".astype(np.float32), a float32 constant)?"
            )
    return None


def _wrapped(w: _Wrong) -> str | None:
    """Integers off from the reference's by whole multiples of 2**32 (or 2**64): a count kept in
    a 32-bit integer (np.int32, or NumPy's default int on Windows) wrapped round."""
    a, e = w.actual, w.expected
    if (
        a.shape != e.shape
        or a.dtype.kind not in "iuf"
        or e.dtype.kind not in "iu"
        or not np.isfinite(a).all()
    ):
        return None
    if a.dtype.kind == "f" and not (a == np.round(a)).all():
        return None
    off = [int(x) - int(y) for x, y in zip(a.ravel().tolist(), e.ravel().tolist(), strict=True)]
    if not any(off) or any(d % 2**32 for d in off):
        return None
    return (
        "your number is off by a whole multiple of 2**32 where the reference's is large: it wrapped round "
        "in a 32-bit integer (np.int32, or NumPy's default int on Windows); count in Python ints (int(...)) "
        "or np.int64"
    )


def _floored(w: _Wrong) -> str | None:
    """The reference with a floor under it: right wherever the reference is well above the least
    of the output's numbers, and at that number (a clip) or near it (the log of a probability plus
    a small eps) wherever the reference is below it or -inf, some finite entries among them."""
    if w.actual.dtype.kind != "f" or w.expected.dtype.kind != "f":
        return None
    a, e = np.asarray(w.actual, np.float64), np.asarray(w.expected, np.float64)
    if a.shape != e.shape or a.size < 3 or not np.isfinite(a).all() or np.isnan(e).any():
        return None
    low = float(a.min())
    below = e < low
    if not (below & np.isfinite(e)).any() or (~below).sum() < 2:
        return None  # a number in place of -inf alone is another rule's (``_non_finite``)
    if _near(a, np.maximum(e, low)):
        return (
            f"your output is the reference's with a floor at {low:.4g}: wherever the reference is below "
            f"{low:.4g} (or -inf), yours is {low:.4g}. Leave out the clip (np.clip, np.maximum) or the "
            "small number that keeps a log finite"
        )
    with np.errstate(all="ignore"):
        eps = float(np.median(np.exp(a[below]) - np.exp(e[below])))
        if not 0 < eps < 0.01 or not _near(a, np.log(np.exp(e) + eps)):
            return None
    return (
        f"your output is log(p + {eps:.2g}) where the reference is log(p): the small number added before "
        f"the log keeps it finite, but every probability below about {eps:.2g} then comes out near "
        f"log({eps:.2g}) = {np.log(eps):.1f} instead of its own log. Work in log space (subtract the log "
        "of the sum of exponentials) rather than taking the log of probabilities"
    )
