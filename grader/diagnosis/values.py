"""Values and scale: exact relations between the output and the reference (a constant factor or
offset, a count, a power, per row or per feature, an activation, a term added or missing), a
term that grows with a size off by a ratio, another weight matrix, a count off by one group of
tensors."""

import copy
import itertools
import math

import numpy as np

from .cases import _everywhere, _others_wrong
from .core import ATOL, RTOL, _matches, _near, _softmax, _stations, _Wrong
from .counts import MIN_FACTOR, _counted, _counts, _named, _size_places, _sizes
from .inputs import _scale_fitted
from .shapes import _rearranged, _reordered, _term_reordered

CONSTANT_FACTOR = "a missing or extra constant factor"


def _relation(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind not in "iuf" or e.dtype.kind not in "iuf":
        return None
    loose = (_near(a, e) or _slightly_off(a, e)) and (w.exercise.atol > 0 or w.exercise.rtol > 0)
    a, e = a.astype(np.float64), e.astype(np.float64)
    if loose:
        dtypes = (
            f" (your output's dtype is {w.actual.dtype}, the reference's {w.expected.dtype})"
            if w.actual.dtype != w.expected.dtype
            else ""
        )
        return (
            f"close, but not within the tolerance (rtol {w.exercise.rtol:g}, atol {w.exercise.atol:g}){dtypes}: "
            "precision is lost somewhere (float32 arithmetic, a rounded constant, a small eps?)"
        )
    counts = _counts(w.case.inputs)
    scaled = _scaled(a, e, counts, lambda p, q: _ratio_everywhere(w, p, q))
    if scaled and scaled.endswith(CONSTANT_FACTOR):
        scaled = _scale_fitted(w) or scaled  # a factor no count names alone: a ratio of sizes may
    return (
        _rearranged(a, e)
        or _reordered(a, e, w.exercise)
        or _term_reordered(a, e, _terms(w))
        or scaled
        or _powered(a, e, counts)
        or _per_row(a, e, w.exercise.masked_softmax)
        or _transformed(a, e)
        or _added(a, e, _terms(w))
        or _multiplied(a, e, _terms(w))
        or _input_factor(a, e, w.case.inputs)
    )


def _slightly_off(a, e, within: float = 1e-4) -> bool:
    """Whether ``a`` is off from ``e`` by less than ``within`` of the largest entry, everywhere: a
    rounded constant off in its fifth digit, not a missing term or factor (a variance over d - 1
    for d = 768 is off by 7e-4)."""
    finite = np.isfinite(e)
    if not np.array_equal(np.isfinite(a), finite) or not finite.any():
        return False
    largest = float(np.abs(e[finite]).max())
    return 0 < largest and float(np.abs(a[finite] - e[finite]).max()) <= within * largest


def _scaled(a, e, counts: dict, confirm=None) -> str | None:
    """The reference times a constant (a count's ratio, said as one), or plus one."""
    finite = np.isfinite(e)
    if not np.array_equal(np.isfinite(a), finite):
        return None
    af, ef = a[finite], e[finite]
    if not ef.size or not (ef != 0).any():
        return None
    c = float(af @ ef / (ef @ ef))
    if c != 0 and not math.isclose(c, 1, rel_tol=1e-4) and _near(af, c * ef):
        counted = _counted(c, counts, least=2 if ef.size == 1 else MIN_FACTOR)
        if counted:
            return f"your output is the reference {counted}"
        rooted = _root_of_counts(c, counts, confirm)
        if rooted:
            return rooted
        name = _named(c)
        if name or ef.size >= 4:
            return f"your output is the reference times {c:.4g}{f' (= {name})' if name else ''} everywhere: {CONSTANT_FACTOR}"
    offset = float((af - ef).mean())
    if ef.size >= 2 and _constant(af - ef, offset) and _near(af, ef + offset):
        return f"your output is the reference plus {offset:.4g} everywhere: a missing or extra constant term"
    return None


def _constant(d, offset: float) -> bool:
    """Whether the differences ``d`` are one term, ``offset``: not 0, and larger than their spread
    (a rounded constant, math.sqrt(2 / 3.14), is off by an amount that varies with x, within the
    tolerance: that is precision, not a term)."""
    return not math.isclose(offset, 0, abs_tol=1e-6) and float(np.ptp(d)) < abs(offset) / 2


def _ratio_everywhere(w: _Wrong, over: str, under: str) -> bool:
    """On every other case the function gets wrong, the counts found at ``over`` and ``under``
    (``_counts``' places) are one apart there too: two sizes one apart by chance here (d_head = T -
    1) do not make a mean divided by the wrong count."""

    def holds(case, value):
        places = _size_places(case.inputs)
        places.update({f"{where}, minus 1": n - 1 for where, n in list(places.items())})
        p, q = places.get(over), places.get(under)
        return p is not None and q is not None and abs(p - q) == 1

    return _everywhere(w, holds)


def _root_of_counts(c: float, counts: dict, confirm=None) -> str | None:
    """``c`` as the square root of a ratio of two counts one apart: a mean under a root (a
    root-mean-square, a standard deviation) divided by the wrong count."""
    for (p, over), (q, under) in itertools.permutations(counts.items(), 2):
        if abs(p - q) == 1 and min(p, q) >= MIN_FACTOR and math.isclose(c * c, p / q, rel_tol=1e-5):
            if confirm is not None and not confirm(over, under):
                continue
            return (
                f"your output is the reference times {c:.4g} = sqrt({p}/{q}): a mean under a square root (a "
                f"root-mean-square, a variance) divided by the wrong count; where the root divides (a norm), you "
                f"divide by {p} ({over}) where the reference divides by {q} ({under}): divide by the number of "
                "terms you add up"
            )
    return None


POWERS = {
    -1.0: "one over the reference: the sign of an exponent is flipped (exp(-x) where exp(x) belongs?)",
    math.log(2): "2 ** x where the reference has e ** x (np.exp)?",
    1 / math.log(2): "e ** x (np.exp) where the reference has 2 ** x?",
    math.log(10): "10 ** x where the reference has e ** x (np.exp)?",
}


def _powered(a, e, counts: dict) -> str | None:
    """The reference to a power: what goes into an exp (or comes out of a log) is scaled."""
    if a.shape != e.shape or not (e > 0).all() or not (a > 0).all() or not np.isfinite(a).all():
        return None
    la, le = np.log(a).ravel(), np.log(e).ravel()
    if np.abs(le).max() < 1e-3:
        return None
    c = float(la @ le / (le @ le))
    if math.isclose(c, 1, rel_tol=1e-4) or not _near(a, e**c):
        return None
    named = next((text for value, text in POWERS.items() if math.isclose(c, value, rel_tol=1e-4)), None)
    if named:
        return f"your output is the reference to the power {c:.4g}: {named}"
    counted = _counted(c, counts, least=2 if e.size == 1 else MIN_FACTOR)
    if counted:
        return (
            f"your output is the reference to the power {c:.4g}: what you exponentiate (a loss?) is "
            f"the reference's {counted}"
        )
    return None


def _per_row(a, e, masked_softmax: bool = False) -> str | None:
    """The reference off by a constant or a factor of each row's own, or by one vector (a value
    per feature) on every row. A row of its own needs two rows off: one wrong row is a place.
    Rows scaled down are a mask applied after the softmax only where the reference has one."""
    if e.ndim == 0 or e.shape[-1] < 2 or not np.isfinite(e).all() or e[..., 0].size < 2:
        return None
    d, rows = a - e, (a - e).reshape(-1, e.shape[-1])
    off = ~np.isclose(rows, 0, atol=ATOL * max(1.0, float(np.abs(e).max()))).all(axis=-1)
    if (
        off.sum() >= 2
        and _near(d, np.broadcast_to(d[..., :1], d.shape))
        and not _near(d[..., 0], np.full(d.shape[:-1], d.flat[0]))
    ):
        return (
            "each row of your output is off by a constant of its own (along the last axis): a per-row "
            "term is missing or extra (a row's maximum? a log-sum-exp?)"
        )
    if (e != 0).all():
        r = a / e
        if (
            off.sum() >= 2
            and _near(r, np.broadcast_to(r[..., :1], r.shape))
            and not _near(r[..., 0], np.full(r.shape[:-1], r.flat[0]))
        ):
            below = masked_softmax and bool(
                (r[..., :1] <= 1 + RTOL).all() and (r[..., :1] > 0).all() and (r[..., :1] < 1 - RTOL).any()
            )
            return (
                "each row of your output is the reference times a factor of its own: a per-row "
                "normalisation (dividing by the row's sum? by a root without its eps?) is missing or wrong"
                + (
                    "; no factor is above 1, as when a mask is applied after the softmax (the weights "
                    "left in a row then sum to less than 1): mask the scores with -inf, then take the softmax"
                    if below
                    else ""
                )
            )
    if _near(rows, np.broadcast_to(rows[:1], rows.shape)):
        return (
            "every row of your output is off by the same vector (one value per feature): a term "
            "added at every position is missing or extra (a bias?)"
        )
    if (e != 0).all():
        ratios = (a / e).reshape(-1, e.shape[-1])
        if _near(ratios, np.broadcast_to(ratios[:1], ratios.shape)):
            return (
                "every row of your output is the reference's times the same factor per feature: a "
                "per-feature factor is missing or extra (a gain?)"
            )
    return None


ACTIVATIONS = {
    "GELU": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "ReLU": lambda x: np.maximum(x, 0),
    "SiLU": lambda x: x / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


def _transformed(a, e) -> str | None:
    """The reference through exp, log, an activation (GELU, ReLU...), a running total along an
    axis or a softmax over the last axis (or the other way)."""
    if e.ndim == 0:
        return _transformed_number(a, e)
    if e.shape[-1] < 2 or not np.isfinite(e).all():
        return None
    with np.errstate(all="ignore"):
        if _near(a, np.exp(e)):
            return "your output is exp of the reference: probabilities where logs are asked for?"
        if (e > 0).all() and _near(a, np.log(e)):
            return "your output is the log of the reference: logs where probabilities are asked for?"
    with np.errstate(all="ignore"):
        for name, f in ACTIVATIONS.items():
            if _near(a, f(e)) and not _near(e, f(e)):
                return (
                    f"your output is the reference through a {name}: an activation applied once too often "
                    "(on the output as well as where it belongs?)"
                )
    for axis in range(-e.ndim, 0):
        if e.shape[axis] < 3:
            continue
        if _near(a, np.cumsum(e, axis=axis)):
            return (
                f"your output is the running total of the reference along axis {axis} (entry i holds the sum "
                "of entries 0 .. i): each entry stands alone, so leave out the cumulative sum (np.cumsum?)"
            )
        if _near(np.cumsum(a, axis=axis), e):
            return (
                f"the running total of your output along axis {axis} is the reference (its entry i is the sum "
                "of your entries 0 .. i): a cumulative sum (np.cumsum) is missing"
            )
    if _near(a, _softmax(e)):
        return (
            "you returned probabilities (a softmax over the last axis) where logits or scores are asked for"
        )
    if _near(_softmax(a), e) and not _near(a, e):
        return (
            "the softmax of your output is the reference: apply the softmax (or drop a step that undoes it)"
        )
    return None


def _transformed_number(a, e) -> str | None:
    """One number that is exp, or the log, of the reference's (not 0 or 1, where they meet)."""
    if not (np.isfinite(a) and np.isfinite(e)) or abs(float(e)) < 1e-3 or math.isclose(float(e), 1):
        return None
    with np.errstate(all="ignore"):
        if _near(a, np.exp(e)):
            return "your number is exp of the reference's: an exp too many (the reference is a log, a loss?)"
        if e > 0 and _near(a, np.log(e)):
            return (
                "your number is the log of the reference's: an exp is missing (the reference exponentiates, "
                "a perplexity from a loss?)"
            )
    return None


def _input_factor(a, e, inputs: dict) -> str | None:
    """The reference times, or divided by, an input of its shape, entry by entry: a factor of that
    input missing or extra (a gate without the value it gates: ``0.5 * (1 + tanh(...))`` for
    ``x * 0.5 * (1 + tanh(...))``)."""
    if e.ndim == 0 or e.size < 2 or not (np.isfinite(e).all() and np.isfinite(a).all()):
        return None
    for name, x in inputs.items():
        if not isinstance(x, np.ndarray) or x.shape != e.shape or x.dtype.kind != "f":
            continue
        x = x.astype(np.float64)
        apart = np.abs(x) > 1e-3 * max(1.0, float(np.abs(x).max()))
        if apart.sum() < 2 or _near(x, np.ones_like(x)):
            continue
        if _near(a[apart] * x[apart], e[apart]):
            return (
                f"your output is the reference divided by `{name}`, entry by entry: a factor of `{name}` is "
                f"missing (a gate or a weight computed, and not multiplied by the `{name}` it applies to?)"
            )
        if _near(a, e * x):
            return (
                f"your output is the reference times `{name}`, entry by entry: a factor of `{name}` is extra "
                "(multiplied in twice?)"
            )
    return None


def _normalised_again(w: _Wrong) -> str | None:
    """The output is the reference normalised over the last axis (each row's mean removed and
    divided by its spread, or divided by its root-mean-square), then scaled and shifted per
    feature, where the reference is not normalised: a norm applied once too often (at the end)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.ndim < 2 or e.shape[-1] < 3 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return None
    rows_a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    rows_e = e.reshape(-1, e.shape[-1]).astype(np.float64)
    if len(rows_e) < 5 or not np.isfinite(rows_e).all():  # two parameters per feature: more rows than that
        return None
    centred = rows_e - rows_e.mean(axis=-1, keepdims=True)
    norms = {
        "each row's mean removed and divided by its standard deviation: a LayerNorm": centred
        / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-5),
        "each row divided by its root-mean-square: an RMSNorm": rows_e
        / np.sqrt((rows_e**2).mean(axis=-1, keepdims=True) + 1e-6),
    }
    for words, n in norms.items():
        if _near(n, rows_e):
            continue  # the reference is normalised already
        for fit in (_per_feature_fit(n, rows_a, shift=True), _per_feature_fit(n, rows_a, shift=False)):
            if fit is not None and _near(fit, rows_a):
                return (
                    f"your output is the reference normalised ({words}), with a gain and a bias per feature: a "
                    "norm is applied once too often (at the end, on the output), or where the reference adds "
                    "without normalising"
                )
    return None


def _per_feature_fit(x, y, shift: bool):
    """The least-squares fit ``y ~ s * x + t`` per column (``t`` = 0 without ``shift``)."""
    if shift:
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        spread = (xc * xc).sum(axis=0)
        if (spread < 1e-12).any():
            return None
        s = (xc * yc).sum(axis=0) / spread
        return s * xc + y.mean(axis=0)
    spread = (x * x).sum(axis=0)
    if (spread < 1e-12).any():
        return None
    return (x * y).sum(axis=0) / spread * x


def _terms(w: _Wrong) -> dict[str, np.ndarray]:
    """What an output is made of, by name: the stations (intermediates), then the array inputs."""
    stations = {key.partition("::station::")[2]: v for key, v in _stations(w.table, w.case).items()}
    inputs = {f"the input `{n}`": v for n, v in w.case.inputs.items() if isinstance(v, np.ndarray)}
    return {name: np.asarray(v, np.float64) for name, v in {**stations, **inputs}.items()}


def _added(a, e, terms: dict) -> str | None:
    """The reference plus or minus one of ``terms``, or with a station counted a named number of
    times where the reference adds it once."""
    if e.ndim == 0 or e.size < 2 or not (np.isfinite(e).all() and np.isfinite(a).all()):
        return None
    d = (a - e).ravel()
    for name, term in terms.items():
        t = term.ravel()
        if term.shape != e.shape or not np.isfinite(t).all() or not t.any() or _near(term, e):
            continue
        m = float(d @ t / (t @ t))
        if not _near(a, e + m * term):
            continue
        if math.isclose(m, 1, rel_tol=1e-4):
            return (
                f"your output is the reference plus {name}: it is added once too often (a residual "
                "added here, or twice?)"
            )
        if math.isclose(m, -1, rel_tol=1e-4):
            return f"your output is the reference minus {name}: a term the reference adds is missing"
        factor = _named(m + 1)
        if factor and not name.startswith("the input"):
            return (
                f"{name} enters your output times {m + 1:.4g} (= {factor}), where the reference adds "
                "it once: a factor on that term is extra"
            )
    return None


def _multiplied(a, e, terms: dict) -> str | None:
    """Two of ``terms`` multiplied where the reference adds them."""
    if e.ndim == 0 or e.size < 2 or not (np.isfinite(e).all() and np.isfinite(a).all()):
        return None
    shaped = {name: t for name, t in terms.items() if t.shape == e.shape and np.isfinite(t).all()}
    for (one, x), (other, y) in itertools.combinations(shaped.items(), 2):
        if _near(x + y, e) and _near(a, x * y) and not _near(x * y, e):
            return f"your output is {one} times {other}, where the reference adds them: use + there, not *"
    return None


def _affine_in(w: _Wrong, case, name: str) -> tuple[float, float] | None:
    """Where the reference's number is affine in the int argument ``name`` (``A + B * n``): its
    two parts on ``case``, the one that does not grow with ``name`` (``A``) and the one that does
    (``B * n``)."""
    n = case.inputs.get(name)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        return None
    try:
        with np.errstate(all="ignore"):
            r = [float(w.exercise.reference(**copy.deepcopy({**case.inputs, name: n + i}))) for i in range(3)]
    except Exception:  # the reference refuses those values, or its output is not one number
        return None
    slope = r[1] - r[0]
    if not slope or not math.isclose(r[2] - r[1], slope, rel_tol=1e-9):
        return None
    return r[0] - slope * n, slope * n


def _number(actual) -> float | None:
    try:
        a = float(np.asarray(actual))
    except (TypeError, ValueError):
        return None
    return a if math.isfinite(a) else None


def _slope_ratio(w: _Wrong, case, name: str, actual) -> float | None:
    """The factor ``c`` on the reference's term that grows with ``name`` that gives ``actual``
    (``A + c * B * n``, ``_affine_in``)."""
    parts, a = _affine_in(w, case, name), _number(actual)
    if parts is None or a is None:
        return None
    rest, grows = parts
    return (a - rest) / grows


def _rest_ratio(w: _Wrong, case, name: str, actual) -> float | None:
    """The factor ``c`` on the reference's part that does not grow with ``name`` that gives
    ``actual`` (``c * A + B * n``, ``_affine_in``)."""
    parts, a = _affine_in(w, case, name), _number(actual)
    if parts is None or a is None or not parts[0]:
        return None
    rest, grows = parts
    return (a - grows) / rest


def _rest_scaled(w: _Wrong) -> str | None:
    """A number affine in an int argument whose term that grows with it is right and whose
    other part is the reference's times a named constant (2, 1/2, 8...), here and on every other
    case the function gets wrong: a factor on that part is missing or extra."""
    found = _part_named(w, _rest_ratio)
    if found is None:
        return None
    name, c = found
    return (
        f"the term of your result that grows with `{name}` is right, but the rest is the reference's "
        f"times {c:.4g} (= {_named(c)}): a factor on the part that does not depend on `{name}` is "
        "missing or extra (how many operations, or bytes, each item counts for?)"
    )


def _growing_scaled(w: _Wrong) -> str | None:
    """A number affine in an int argument whose part that does not grow with it is right and
    whose term that grows with it is the reference's times a named constant (1/2, 2...), here and
    on every other case the function gets wrong: a factor on that term is missing or extra."""
    found = _part_named(w, _slope_ratio)
    if found is None:
        return None
    name, c = found
    return (
        f"the part of your result that does not depend on `{name}` is right, but the term that grows with "
        f"`{name}` is the reference's times {c:.4g} (= {_named(c)}): a factor on that term is missing or "
        "extra (how many operations each item counts for, or a halving the formula already makes?)"
    )


def _part_named(w: _Wrong, ratio) -> tuple[str, float] | None:
    """The int argument, and the named constant ``c`` (not 1), such that ``ratio(w, case, name,
    output)`` (``_rest_ratio`` or ``_slope_ratio``) is ``c`` here and on every other case the
    function gets wrong."""
    if w.expected.ndim != 0 or w.actual.shape != ():
        return None
    for name in w.case.inputs:
        c = ratio(w, w.case, name, w.actual)
        if c is None or math.isclose(c, 1, rel_tol=1e-6) or not _named(c):
            continue
        if _everywhere(
            w,
            lambda case, value, name=name, c=c: math.isclose(
                ratio(w, case, name, value) or 0.0, c, rel_tol=1e-6
            ),
        ):
            return name, c
    return None


def _term_scaled(w: _Wrong) -> str | None:
    """A number (a count) that is affine in an int argument, whose term that grows with it is
    the reference's times a ratio of two sizes (``d_head / d_model``), here and on every other
    case the function gets wrong: that term uses one size where the other belongs."""
    if w.expected.ndim != 0 or w.actual.shape != ():
        return None
    for name in w.case.inputs:
        c = _slope_ratio(w, w.case, name, w.actual)
        if c is None or math.isclose(c, 1, rel_tol=1e-6) or not c > 0:
            continue
        sizes = _sizes(w.case.inputs)
        pairs = [
            (p, q)
            for p, q in itertools.permutations(sizes, 2)
            if f"`{name}`" not in (p, q) and math.isclose(sizes[p] / sizes[q], c, rel_tol=1e-9)
        ]
        for case, output in _others_wrong(w):
            if not pairs:
                break
            there, there_sizes = _slope_ratio(w, case, name, output), _sizes(case.inputs)
            pairs = [
                (p, q)
                for p, q in pairs
                if there is not None
                and p in there_sizes
                and q in there_sizes
                and math.isclose(there_sizes[p] / there_sizes[q], there, rel_tol=1e-9)
            ]
        if not pairs:
            continue
        said = " or ".join(f"{p} where the reference's uses {q}" for p, q in pairs[:2])
        ratio = f" (= {pairs[0][0]} / {pairs[0][1]})"
        return (
            f"the term of your result that grows with `{name}` is the reference's times "
            f"{f'{c:.4g}' if not w.case.hidden else 'a ratio of two sizes'}{ratio}, and the rest is right: "
            f"that term uses {said}?"
        )
    return None


def _leaves(value, label: str):
    """``(label, array)`` for each float array in an input, through dicts and lists
    (``params['wte']``, ``params['h'][0]['ln_1']['g']``)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and value.size:
            yield label, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{label}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{label}[{i}]")


def _product_with(w: _Wrong) -> str | None:
    """The output is a station (or an input) times one weight matrix among the inputs (its first
    rows, if it has more), as the reference's is, but another matrix than the reference's: one
    matrix where another of the same width belongs (the position table as the LM head)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.ndim < 1 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return None
    n = e.shape[-1]
    lefts = [
        (f"`{k}`", v) for k, v in w.case.inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
    ]
    lefts += [
        (key.partition("::station::")[2], np.asarray(v)) for key, v in _stations(w.table, w.case).items()
    ]
    matrices = [
        (label, m) for name, v in w.case.inputs.items() for label, m in _leaves(v, name) if m.ndim == 2
    ][:64]
    for left, x in lefts:
        if x.ndim < 1 or x.shape[:-1] != e.shape[:-1] or x.dtype.kind != "f":
            continue
        x = x.astype(np.float64)
        products = []
        for label, m in matrices:
            if m.shape[1] == x.shape[-1] and m.shape[0] >= n:
                rows = "" if m.shape[0] == n else f" (its first {n} rows)"
                products.append((f"`{label}`{rows}, transposed", x @ m[:n].astype(np.float64).T))
            elif m.shape[0] == x.shape[-1] and m.shape[1] >= n:
                cols = "" if m.shape[1] == n else f" (its first {n} columns)"
                products.append((f"`{label}`{cols}", x @ m[:, :n].astype(np.float64)))
        theirs = next((label for label, p in products if _near(p, e)), None)
        yours = next((label for label, p in products if label != theirs and _matches(w.exercise, a, p)), None)
        if theirs and yours:
            return (
                f"your output is {left} times {yours}, where the reference's is {left} times {theirs}: one "
                "matrix where another belongs (a weight taken from the wrong key?)"
            )
    return None


def _parts_missing(w: _Wrong) -> str | None:
    """A count of a config's weights (or twice it: FLOPs) off by exactly one group of tensors of
    its checkpoint: one tensor or module (a weight and its bias) in every block or once, a part of
    every block (its attention, its MLP), every norm's bias... Every other case the function was
    run on must agree: off by that group's size there too (nothing where the config has none)."""
    off = _off_by_tensors(w.case, w.actual, w.expected)
    if not off:
        return None
    diff, found = off
    for case in w.cases:
        configs = [v for v in case.inputs.values() if hasattr(v, "n_layer") and hasattr(v, "d_model")]
        outcome, expected = w.student.on(case), w.table.get(f"{case.name}::expected")
        if (
            case.name == w.case.name
            or len(configs) != 1
            or outcome is None
            or outcome.error
            or expected is None
        ):
            continue
        try:
            there = int(np.asarray(expected)) - int(np.asarray(outcome.value))
        except (TypeError, ValueError, OverflowError):
            continue
        sizes = _tensor_groups(configs[0])
        found = [
            (key, factor)
            for key, factor in found
            if sizes.get(key, 0) * factor * (1 if diff > 0 else -1) == there
        ]
    keys = list(dict.fromkeys(key for key, _ in found))
    whole = {key.partition(" (")[0] for key in keys if "(all its tensors" in key}
    keys = [key for key in keys if "(all its tensors" in key or key.partition(" (")[0] not in whole]
    if not keys or len(keys) > 2:
        return None
    why = " (times 2: two FLOPs per weight)" if found[0][1] == 2 else ""
    side, missing = (
        ("short", "it is missing from your count")
        if diff > 0
        else ("over", "you count it twice, or count it where this config has none")
    )
    return f"your count is {side} by exactly the size of {' or '.join(keys)}{why}: {missing}"


def _off_by_tensors(case, actual, expected):
    """``(reference - actual, [(tensor group, factor)])``: the groups of the case's config's
    checkpoint whose size, once or twice, is the difference; ``None`` if none is."""
    a, e = np.asarray(actual), np.asarray(expected)
    if e.ndim != 0 or e.dtype.kind not in "iu" or a.ndim != 0 or a.dtype.kind not in "iuf":
        return None
    configs = [v for v in case.inputs.values() if hasattr(v, "n_layer") and hasattr(v, "d_model")]
    if len(configs) != 1 or not np.isfinite(a) or not float(a).is_integer() or int(e) == int(a):
        return None
    groups = _tensor_groups(configs[0])
    diff = int(e) - int(a)
    found = [(key, factor) for factor in (1, 2) for key, n in groups.items() if n * factor == abs(diff)]
    return (diff, found) if found else None


def _tensors(config) -> list:
    """``(shape, path)`` of each of a config's tensors, ``path`` in ``lib``'s weight tree: from
    ``lib``'s table of a checkpoint's tensors (the query, key and value projections apart) or, for
    a config that mixes the two families (it has no checkpoint format), ``lib.param_shapes``."""
    import lib
    from lib.checkpoint import checkpoint_layout

    try:
        return [(shape, path) for shape, path, _ in checkpoint_layout(config).values()]
    except ValueError:
        return list(_shapes(lib.param_shapes(config), ()))


def _shapes(tree, path: tuple):
    """``(shape, path)`` of every shape of a tree of them."""
    if isinstance(tree, dict | list):
        for key, value in tree.items() if isinstance(tree, dict) else enumerate(tree):
            yield from _shapes(value, (*path, key))
    else:
        yield tree, path


def _tensor_groups(config) -> dict[str, int]:
    """The sizes of a config's checkpoint tensors, by name: each kind of tensor (a weight, a
    bias, a gain) of a module in every block together, a module's weight and bias together, a
    part of every block (its attention, its MLP), one kind of tensor across a part (every bias of
    the attention), and every norm's bias or gain."""
    try:
        tensors = _tensors(config)
    except Exception:
        return {}
    groups: dict[str, int] = {}

    def add(key, n):
        groups[key] = groups.get(key, 0) + n

    for shape, path in tensors:
        layered = any(isinstance(p, int) for p in path)
        words = [str(p) for p in path if not isinstance(p, int)][1 if layered else 0 :]
        kind = {"w": "weight", "g": "gain", "b": "bias"}.get(words[-1])
        module = ".".join(words[:-1] if kind and len(words) > 1 else words)
        n = math.prod(shape)
        every = ", in every block" if layered else ""
        add(f"`{module}` (all its tensors{every})", n)
        if kind:
            add(f"`{module}` (its {kind}{every})", n)
        if layered and "." in module:
            add(f"`{module.partition('.')[0]}` (all its tensors{every})", n)
            if kind:  # one kind of tensor across a part: every bias of the attention
                add(f"`{module.partition('.')[0]}` (every {kind} of its layers{every})", n)
        if module.startswith("ln") or "norm" in module:
            add(f"every norm's {kind or 'weight'} (two per block and the final one)", n)
    return groups
