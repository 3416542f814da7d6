"""The order of steps: steps (``Exercise.steps``) in another order, a gain or a bias applied at
the other end of the computation, the items of a reduction (``Exercise.terms``) averaged another
way."""

import itertools

import numpy as np

from .cases import _everywhere
from .core import _composed_on, _matches, _near, _reference_on, _Wrong, contradicted


def _steps_reordered(w: _Wrong) -> str | None:
    """For a reference made of steps whose order matters (``Exercise.steps``): the output is the
    steps' in another order, here and on every other case the function gets wrong."""
    order = _steps_order(w)
    return None if order is None else _order_words(order, w.exercise.steps[0])


def _steps_order(w: _Wrong) -> tuple[str, ...] | None:
    """The order of the steps (``Exercise.steps``) that gives the output here and on every other
    case the function gets wrong, if one does."""
    if w.exercise.steps is None or w.actual.shape != w.expected.shape:
        return None
    names, composed = w.exercise.steps
    for order in itertools.permutations(names):
        if order == tuple(names):
            continue
        other = _composed_on(composed(order), w.case.inputs)
        if other is None or _near(other, w.expected) or not _matches(w.exercise, w.actual, other):
            continue
        if _everywhere(
            w,
            lambda case, value, order=order: _matches(
                w.exercise, value, _composed_on(composed(order), case.inputs)
            ),
        ) and not _variants_differ(w, composed(order)):
            return order
    return None


def _variants_differ(w: _Wrong, fn) -> bool:
    """On a variant of the case where the function's output is known, ``fn`` (the reference
    made another way) gives another output: two orders that agree on the case itself are told
    apart there."""
    for variant in w.all_variants():
        outcome = w.student.run(variant)
        if outcome is None or outcome.error:
            continue
        theirs = _composed_on(fn, variant.inputs)
        if theirs is not None and not _matches(w.exercise, outcome.value, theirs):
            return True
    return False


def reordered_instead(exercise, case, actual, table, student, cases, wrong) -> str | None:
    """For an exercise with steps, where a listed mistake (``wrong``) matches the output on
    ``case``: the order of the steps that gives the output on every case the function gets wrong
    and on the variants of this one, if a variant shows the mistake wrong in another way
    (``contradicted``). Two orders that agree on every visible case (filters in two orders) are
    told apart there, and the one the function follows is named."""
    if exercise.steps is None or student is None or not contradicted(exercise, case, student, wrong):
        return None
    expected = np.asarray(table[f"{case.name}::expected"])
    order = _steps_order(_Wrong(exercise, case, np.asarray(actual), expected, table, student, cases))
    return None if order is None else _order_words(order, exercise.steps[0])


def _order_words(order, names) -> str:
    return (
        f"your output is what the steps give in the order {', '.join(order)}; the reference applies them "
        f"in the order {', '.join(names)}: each step changes what the next one sees, so apply them in "
        "that order"
    )


def _applied_elsewhere(w: _Wrong) -> str | None:
    """A smaller input (a gain, a bias: one value per feature) applied at the other end of the
    computation: multiplied into (or added to) the larger input ``x`` before the other steps,
    where the reference applies it to the result, or to the result where the reference applies
    it to ``x`` (the gain applied before a norm, not after). Tried as the reference's output with
    that input moved and set to what changes nothing there (1 or 0)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.size < 2 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return None
    arrays = {
        n: v for n, v in w.case.inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size
    }
    for name, x in arrays.items():
        for other, y in arrays.items():
            if other == name or y.ndim >= x.ndim or y.shape != x.shape[x.ndim - y.ndim :]:
                continue
            for op, neutral, words in ((np.multiply, 1, "multiplied by"), (np.add, 0, "plus")):
                still = np.full_like(y, neutral)
                moved = _reference_on(w, {**w.case.inputs, name: op(x, y).astype(x.dtype), other: still})
                if (
                    moved is not None
                    and moved.shape == a.shape
                    and not _near(moved, e)
                    and _matches(w.exercise, a, moved)
                ):
                    return (
                        f"your output is what the reference gives on `{name}` {words} `{other}` (and `{other}` "
                        f"then left out, at {neutral}): you apply `{other}` to the input `{name}`, before the "
                        f"other steps, where the reference applies it to their result (after normalising?)"
                    )
                kept = _reference_on(w, {**w.case.inputs, other: still})
                if kept is None or kept.shape != a.shape or y.shape != a.shape[a.ndim - y.ndim :]:
                    continue
                with np.errstate(all="ignore"):
                    after = op(kept, y)
                if not _near(after, e) and _matches(w.exercise, a, after):
                    alike = [
                        f"`{n}`" for n, v in arrays.items() if n not in (name, other) and v.shape == y.shape
                    ]
                    earlier = (
                        f"before {' or '.join(alike)}, or to the input `{name}`" if alike else f"to `{name}`"
                    )
                    return (
                        f"your output is the reference's without `{other}` (at {neutral}), then {words} `{other}`: "
                        f"you apply `{other}` last, to the result of every other step, where the reference "
                        f"applies it earlier ({earlier}?)"
                    )
    return None


MAX_TERMS = 256  # items a reduction is split into (``Exercise.terms``), each a call of the reference


MEANS = {
    "arithmetic mean": lambda r: r.mean(),
    "geometric mean (exp of the mean of their logs)": lambda r: np.exp(np.log(r).mean()),
    "harmonic mean (1 / the mean of their inverses)": lambda r: 1 / (1 / r).mean(),
    "sum": lambda r: r.sum(),
}


def _combined(w: _Wrong) -> str | None:
    """For a reference that reduces one value per item (``Exercise.terms``, a loss over
    positions): the output is the items' values (the reference on each item alone) reduced
    another way than the reference reduces them, a mean of another kind (1 / the mean of the
    probabilities where the reference takes exp of the mean of their -logs)."""
    if w.exercise.terms is None or w.expected.ndim != 0 or w.actual.shape != ():
        return None
    item, split = w.exercise.terms
    try:
        items = split(w.case.inputs)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if len(items) < 2 or len(items) > MAX_TERMS:
        return None
    values = [_reference_on(w, inputs) for inputs in items]
    if any(v is None or v.shape != () for v in values):
        return None
    r = np.array(values, dtype=np.float64)
    if not np.isfinite(r).all() or np.ptp(r) <= 1e-6 * max(1.0, float(np.abs(r).max())):
        return None  # every item alike: every mean is the same
    with np.errstate(all="ignore"):
        found = {
            name: float(mean(r))
            for name, mean in MEANS.items()
            if (r > 0).all() or "arithmetic" in name or name == "sum"
        }
    theirs = next((n for n, v in found.items() if _near(v, w.expected)), None)
    yours = next((n for n, v in found.items() if n != theirs and _matches(w.exercise, w.actual, v)), None)
    if theirs is None or yours is None:
        return None
    return (
        f"your output is the {yours} of the {len(r)} values the reference gives on each {item} alone, where "
        f"the reference takes their {theirs}: you average another quantity than the reference does "
        "(probabilities where it averages log-probabilities, or the reverse?)"
    )
