"""Shapes and axes: a wrong shape, axes permuted, a batch axis lost or mishandled, entries
reversed, shifted or in another order along an axis, a normalisation over another axis, rows
taken from a table with other indices, and where along an axis the output is wrong."""

import itertools

import numpy as np

from .cases import _fixed_int, _values_seen
from .core import ATOL, RTOL, _matches, _near, _near_each, _slice, _Wrong
from .counts import _counted, _counts


def _shape(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape == e.shape:
        return None
    batch = w.variant("one-sequence")
    if batch and w.right_on(batch[0]):
        return (
            f"right on one sequence, but on a batch your output has shape {a.shape}, not {e.shape}: count axes "
            "from the end (axis=-1, x.shape[-1]) and keep every leading axis"
        )
    if e.ndim == 0:
        return f"expected a single number, got an array of shape {a.shape}: reduce it (a mean? a sum?)"
    fixed = _fixed_int(w) or _values_seen(w)  # a size written in (a head count): another shape
    if fixed:
        return fixed
    if a.ndim == e.ndim and sorted(a.shape) == sorted(e.shape):
        for perm in itertools.permutations(range(e.ndim)):
            if e.transpose(perm).shape == a.shape and _near(a, e.transpose(perm)):
                return _permuted(perm)
        return f"wrong shape: expected {e.shape}, got {a.shape}, the same sizes in another order (a transpose? a reshape?)"
    if a.shape == e.shape[1:]:
        first = " (it is the result for the first sequence only)" if _near(a, e[0]) else ""
        return f"a leading axis is missing: expected {e.shape}, got {a.shape}{first}; keep every leading (batch) axis"
    if a.size == e.size and np.squeeze(a).shape == np.squeeze(e).shape:
        return (
            f"an axis of size 1 too many or too few: expected {e.shape}, got {a.shape} (keepdims? a [None]?)"
        )
    if a.ndim == e.ndim == 1 and 0 < a.size < e.size:
        firsts = e[np.sort(np.unique(e, return_index=True)[1])]
        if a.shape == firsts.shape and (np.array_equal(a, firsts) or np.array_equal(a, np.unique(e))):
            return (
                f"your output has each of the reference's values once ({a.size} of {e.size}): repeated entries "
                "are dropped (a set, dict.fromkeys or np.unique?); keep one entry per input item, repeats too"
            )
    if a.ndim == e.ndim:
        off = [i for i in range(e.ndim) if a.shape[i] != e.shape[i]]
        if len(off) == 1:
            axis, n = off[0] - e.ndim, a.shape[off[0]] - e.shape[off[0]]
            twin = next(
                (i - e.ndim for i in range(e.ndim) if i != off[0] and e.shape[i] == a.shape[off[0]]), None
            )
            if twin is not None and not _overlap_near(a, e, off[0]):
                return (
                    f"wrong shape: expected {e.shape}, got {a.shape}; along axis {axis} you have as many entries "
                    f"as along axis {twin} ({a.shape[off[0]]}): is this an intermediate (scores or weights, one "
                    "per pair of positions?) returned instead of the result made from it?"
                )
            if abs(n) == 1:
                more = "one entry too many" if n > 0 else "one entry too few"
                return f"{more} along axis {axis} (expected {e.shape}, got {a.shape}): an off-by-one in a slice or a range?"
            more = f"{n} entries too many" if n > 0 else f"{-n} entries too few"
            return f"{more} along axis {axis} (expected {e.shape}, got {a.shape}): is your code {'repeating' if n > 0 else 'skipping'} some?"
    return None


def _any_shape(w: _Wrong) -> str | None:
    """A shape that no more specific rule explains (those that call the function come first)."""
    a, e = w.actual, w.expected
    if a.shape == e.shape:
        return None
    if a.shape[1:] == e.shape:
        return (
            f"wrong shape: expected {e.shape}, got {a.shape}, an axis of {a.shape[0]} in front: did you return "
            f"{a.shape[0]} arrays together (a tuple or a list) where one belongs?"
        )
    if a.size == e.size:
        return (
            f"wrong shape: expected {e.shape}, got {a.shape}, as many entries in another shape: an axis split or "
            "merged where it should not be (into heads? back from them?)"
        )
    sizes = _sizes_named(a.shape, w.case.inputs)
    return f"wrong shape: expected {e.shape}, got {a.shape}{sizes}: check which axes your result has, and their sizes"


def _sizes_named(shape: tuple, inputs: dict) -> str:
    """Where each size of ``shape`` could come from among the inputs (" (16: `wpe`'s axis 0, 5:
    `n_tokens`)"); empty if a size comes from none, or from more than one place."""
    named = []
    for size in dict.fromkeys(shape):
        places = [f"`{n}`" for n, v in inputs.items() if isinstance(v, int | np.integer) and v == size] + [
            f"`{n}`'s axis {axis}"
            for n, v in inputs.items()
            if isinstance(v, np.ndarray)
            for axis, length in enumerate(v.shape)
            if length == size
        ]
        if len(places) != 1:
            return ""
        named.append(f"{size}: {places[0]}")
    return f" ({', '.join(named)})"


def _overlap_near(a, e, axis: int) -> bool:
    """Where ``a`` and ``e`` overlap along ``axis`` (from its start or from its end), they agree:
    one is the other with entries cut off or added there."""
    m = min(a.shape[axis], e.shape[axis])
    return any(
        _near(np.take(a, part, axis=axis), np.take(e, part, axis=axis)) for part in (range(m), range(-m, 0))
    )


def _permuted(perm) -> str:
    if list(perm[:-2]) == list(range(len(perm) - 2)):
        return (
            "your output is the reference transposed (its last two axes swapped): check which axis is which"
        )
    order = ", ".join(str(p - len(perm)) for p in perm)
    return f"your output is the reference with its axes in the order ({order}): check which axis is which"


def _batch(w: _Wrong) -> str | None:
    one = w.variant("one-sequence")
    if one and w.right_on(one[0]):
        a, e = w.actual.astype(np.float64), w.expected.astype(np.float64)
        finite = np.isfinite(e) & np.isfinite(a)
        if a.shape == e.shape and finite.all() and (e != 0).any():
            c = float(a.ravel() @ e.ravel() / (e.ravel() @ e.ravel()))
            counted = _counted(c, _counts(w.case.inputs), least=2) if _near(a, c * e) else None
            if counted:  # one sequence right, a batch off by its size: a sum over the batch
                return f"right on one sequence, but on a batch your output is the reference {counted}"
        return (
            "right on one sequence, wrong on a batch: treat every leading axis as a batch axis, and count "
            "axes from the end (axis=-1, x.shape[-1]), not from the front (axis=0, len(x), x.shape[0])"
        )
    return None


def _rearranged(a, e) -> str | None:
    """The reference's entries in another place: axes permuted, reversed or shifted by one."""
    if e.ndim >= 2:
        for perm in itertools.permutations(range(e.ndim)):
            if (
                perm != tuple(range(e.ndim))
                and e.transpose(perm).shape == a.shape
                and _near(a, e.transpose(perm))
            ):
                return _permuted(perm)
    for axis in range(-e.ndim, 0):
        n = e.shape[axis]
        if n >= 2 and _near(a, np.flip(e, axis)):
            return f"your output is the reference reversed along axis {axis}: keep the order"
        for later, step in ((True, "i - 1"), (False, "i + 1")):
            if n >= 3 and _near(
                _slice(a, axis, 1 if later else None, None if later else -1),
                _slice(e, axis, None if later else 1, -1 if later else None),
            ):
                return (
                    f"your output is the reference shifted by one along axis {axis} (entry i holds the "
                    f"reference's {step}): an off-by-one in an index or a slice"
                )
    return None


def _axis_order(a, e, axis: int, near=None) -> list[int] | None:
    """The order along ``axis`` in which ``a`` holds ``e``'s slices (entry i of ``a`` is entry
    ``order[i]`` of ``e``), if ``a`` is ``e`` with its slices along that axis rearranged. The slices
    are paired by sorting one random projection of each (n log n, for the wide hidden cases too),
    and each pair is then checked."""
    if a.shape != e.shape or e.shape[axis] < 2:
        return None
    near = near or _near
    n = e.shape[axis]
    sa = np.moveaxis(np.asarray(a, np.float64), axis, 0).reshape(n, -1)  # (n, rest)
    se = np.moveaxis(np.asarray(e, np.float64), axis, 0).reshape(n, -1)
    if not (np.isfinite(sa).all() and np.isfinite(se).all()):
        return None
    w = np.random.default_rng(0).normal(size=sa.shape[1])  # (rest,)
    order = np.empty(n, dtype=int)
    order[np.argsort(sa @ w, kind="stable")] = np.argsort(se @ w, kind="stable")
    if (order == np.arange(n)).all() or not all(near(x, y) for x, y in zip(sa, se[order], strict=True)):
        return None
    return order.tolist()


RANK = "; an index into a sorted copy is a rank, not a position in the input"


def _order_words(a, e, axis: int, order: list[int], near=None) -> str:
    """How an order differs from the reference's, in words."""
    near = near or _near
    if order == sorted(order, reverse=True):
        return "reversed"
    if e.ndim == 1 or e.shape[axis] == e.size:
        if near(a, np.sort(e, axis=axis)):
            return f"sorted in ascending order{RANK}: keep the input's order, do not sort"
        if near(a, np.flip(np.sort(e, axis=axis), axis)):
            return f"sorted in descending order{RANK}: keep the input's order, do not sort"
    n = len(order)
    for k in range(1, n):
        if order == [(i + k) % n for i in range(n)] or order == [(i - k) % n for i in range(n)]:
            return "rolled (a cyclic shift: np.roll, or an index taken modulo the length?)"
    shown = ", ".join(map(str, order[:8])) + (", ..." if n > 8 else "")
    return f"yours are the reference's in the order {shown}"


def _reordered(a, e, exercise=None) -> str | None:
    """The reference's values, in another order: along one axis (its rows, its heads, its
    positions in another order, a sequence reversed or sorted), or scattered. Values are the same
    within the diagnosis's tolerance, or within the exercise's where that is ten times looser (the
    frequencies of sampled draws, within ``atol`` of the probabilities: draws that return a rank,
    not a token id, give the probabilities sorted)."""
    loose = exercise is not None and exercise.atol_on(e) > 10 * ATOL * max(
        1.0, float(np.abs(e).max(initial=0))
    )

    def near(x, y):
        return _near(x, y) or (loose and _matches(exercise, x, y))

    if a.shape != e.shape or e.size < 2 or near(a, e):
        return None
    fa, fe = np.sort(a, axis=None), np.sort(e, axis=None)
    if not near(fa, fe):
        return None
    values = (
        "the reference's values (within the tolerance)"
        if loose and not _near(fa, fe)
        else "exactly the reference's values"
    )
    for axis in range(-e.ndim, 0):
        order = _axis_order(a, e, axis, near)
        if order is not None:
            what = "entries" if e.ndim == 1 else "slices (rows, heads, positions...)"
            return (
                f"your output holds {values}, but its {what} along axis {axis} are in "
                f"another order ({_order_words(a, e, axis, order, near)}): keep the order along axis {axis}"
            )
    return (
        f"your output holds {values}, but in other places (not one axis in another "
        "order): look at how your code indexes, reshapes or transposes"
    )


def _term_reordered(a, e, terms: dict) -> str | None:
    """The reference with one of ``terms`` (a station or an input, broadcast as the reference adds
    it) in another order along one of its axes: positions added reversed, heads in another order."""
    if e.ndim == 0 or e.size < 2 or not (np.isfinite(e).all() and np.isfinite(a).all()) or _near(a, e):
        return None
    for name, term in terms.items():
        if term.ndim == 0 or term.ndim > e.ndim or not np.isfinite(term).all() or not term.any():
            continue
        if term.shape != e.shape[e.ndim - term.ndim :]:
            continue  # added only along leading axes here (a size-1 axis stretched is another term)
        spread = np.broadcast_to(term, e.shape)
        given = (spread + (a - e))[(0,) * (e.ndim - term.ndim)]
        if not _near(np.broadcast_to(given, e.shape), spread + (a - e)):
            continue  # not the same term added at every leading index
        for axis in range(-term.ndim, 0):
            order = _axis_order(given, term, axis)
            if order is not None:
                return (
                    f"your output is the reference with {name} in another order along its axis {axis} "
                    f"({_order_words(given, term, axis, order)}): entry i of {name} belongs with entry i "
                    "of the rest; keep its order"
                )
    return None


def _reversing(w: _Wrong) -> str | None:
    """Right when the inputs come reversed along one axis: the function reverses that axis itself
    (the heads, the positions or the features taken in another order)."""
    for variant in w.variant("reversed"):
        outcome = w.student.run(variant)
        if outcome is not None and not outcome.error and _matches(w.exercise, outcome.value, w.expected):
            axis, _, names = variant.unit.partition(": ")
            return (
                f"your function gives the reference's output when {names} come{'s' if ',' not in names else ''} "
                f"reversed along axis {axis}: it takes that axis in reverse order somewhere (heads, positions "
                "or features taken from the end, a [::-1] too many?); keep the order along it"
            )
    for variant in w.variant("reordered"):
        outcome = w.student.run(variant)
        if outcome is not None and not outcome.error and _matches(w.exercise, outcome.value, w.expected):
            order, label, where = variant.unit.split(": ", 2)
            return (
                f"your function merges the heads in another order before the output projection: {label} "
                f"(heads {order.replace(',', ', ')}, in that order); it gives the reference's output when "
                f"the rows of {where} come by head in that order. Keep the heads in order (a roll, a "
                "reshape or a slice out of step?)"
            )
    return None


def _rows_taken(w: _Wrong) -> str | None:
    """Every row of the output (a vector along the last axis) is a row of a 2-D input table, as
    the reference's are, but not the same one everywhere: the rows are looked up with the wrong
    indices (positions for ids, a range that does not start at 0, an index scaled...)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.ndim < 2 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return None
    d = e.shape[-1]
    for name, table in w.case.inputs.items():
        if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] != d or table.shape[0] < 2:
            continue
        taken, wanted = _row_indices(a, table), _row_indices(e, table)
        if taken is None or wanted is None or taken == wanted:
            continue
        shown = ""
        if not w.case.hidden:
            shown = (
                f" (you take rows {', '.join(map(str, taken[:8]))}{', ...' if len(taken) > 8 else ''}; "
                f"the reference takes rows {', '.join(map(str, wanted[:8]))}{', ...' if len(wanted) > 8 else ''})"
            )
        return (
            f"every row of your output is a row of `{name}`, but not the one the reference takes at each "
            f"place{shown}: look at the indices you take the rows with"
        )
    return None


def _row_indices(x, table) -> list[int] | None:
    """The row of ``table`` each vector of ``x`` along its last axis equals (the first such), or
    ``None`` if one equals none."""
    table = np.asarray(table, np.float64)
    found = []
    for row in np.asarray(x, np.float64).reshape(-1, table.shape[1]):
        same = np.flatnonzero(np.isclose(table, row, rtol=RTOL, atol=ATOL).all(axis=1))
        if not same.size:
            return None
        found.append(int(same[0]))
    return found


def _over_axis(w: _Wrong) -> str | None:
    """A normalisation over another axis than the reference's last: along axis k the output is one
    scale and one shift of an input ``x`` (``a = s * x + t``, ``s`` and ``t`` the same along k: a
    mean and a scale taken over k), where the reference's is not."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.ndim < 2 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return None
    for name, x in w.case.inputs.items():
        if not isinstance(x, np.ndarray) or x.shape != e.shape or x.dtype.kind != "f":
            continue
        x = x.astype(np.float64)
        for axis in range(-e.ndim, -1):
            if e.shape[axis] >= 3 and _affine_along(a, x, axis) and not _affine_along(e, x, axis):
                return (
                    f"your output is normalised over axis {axis}: along it, each entry is the input `{name}` "
                    "times one same scale plus one same shift, so your mean or root-mean-square is taken "
                    f"over axis {axis}; the reference normalises each position's vector over the last "
                    "axis (axis=-1, keepdims=True)"
                )
    return None


def _column_factors(w: _Wrong) -> str | None:
    """Weights (positive, 0 where the reference's are) that are the reference's with each column
    scaled by a factor of its own, the same in every row, besides one factor per row: ``log(a / e)``
    is a row's number plus a column's. A quantity of each row (its max, its sum) was lined up with
    the columns: reduced without keepdims, then given its axis back in the wrong place
    (``m[:, None]`` on a batch, a transpose). Where each row has one entry, its factor cancels, so
    such an answer is right there and wrong everywhere else."""
    a, e = np.asarray(w.actual, np.float64), np.asarray(w.expected, np.float64)
    if a.shape != e.shape or e.ndim < 2 or min(e.shape[-2:]) < 3 or not np.isfinite(a).all():
        return None
    kept = np.isfinite(e) & (e > 0)
    if not (a[~kept] == np.where(np.isfinite(e), e, 0)[~kept]).all() or not (a[kept] > 0).all():
        return None
    T, S = e.shape[-2:]
    found = False
    for la, le, k in zip(a.reshape(-1, T, S), e.reshape(-1, T, S), kept.reshape(-1, T, S), strict=True):
        rows, cols = np.nonzero(k)
        design = np.zeros((len(rows), T + S))
        design[np.arange(len(rows)), rows] = design[np.arange(len(rows)), T + cols] = 1.0
        ratio = np.log(la[k]) - np.log(le[k])
        fit = np.linalg.lstsq(design, ratio, rcond=None)[0]
        if not _near(design @ fit, ratio):
            return None
        columns = fit[T:][np.bincount(cols, minlength=S) > 1]  # a column in one row only tells nothing
        found |= columns.size > 1 and np.ptp(columns) > 1e-3
    if not found:
        return None
    return (
        "your output is the reference's with each column scaled by a factor of its own, the same in every "
        "row: a quantity of each row (its max, or its sum) ends up lined up with the columns. Reduce with "
        "keepdims=True (s.max(axis=-1, keepdims=True)) so that each row keeps its own, rather than giving "
        "the axis back with [:, None] or a transpose"
    )


def _affine_along(y, x, axis: int) -> bool:
    """``y = s * x + t`` with ``s`` and ``t`` the same along ``axis`` (one pair per line along it)."""
    y, x = np.moveaxis(np.asarray(y, np.float64), axis, -1), np.moveaxis(x, axis, -1)
    xc = x - x.mean(axis=-1, keepdims=True)
    spread = (xc * xc).sum(axis=-1, keepdims=True)
    if (spread < 1e-12).any():
        return False
    s = (xc * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1, keepdims=True) / spread
    fit = s * xc + y.mean(axis=-1, keepdims=True)
    return _near(fit, y) and not _near(y, np.broadcast_to(y.mean(axis=-1, keepdims=True), y.shape))


def _which_sections(w: _Wrong) -> tuple[list[str], list[str]] | None:
    """For a runner that packs the returned arrays into one (``Exercise.sections``): the names of
    those that are wrong, and of those that are right (each in backquotes)."""
    a, e = w.actual, w.expected
    if w.exercise.sections is None or a.shape != e.shape or e.ndim < 2:
        return None
    try:
        parts = w.exercise.sections(w.case.inputs)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if sum(n for _, n in parts) != e.shape[-2]:
        return None
    right = _near_each(w.exercise, a, e)
    wrong, fine, start = [], [], 0
    for name, n in parts:
        if n:
            (fine if right[..., start : start + n, :].all() else wrong).append(f"`{name}`")
        start += n
    return wrong, fine


def _sections(w: _Wrong) -> str | None:
    """For a runner that packs the returned arrays into one (``Exercise.sections``): which of them
    are wrong and which are right."""
    found = _which_sections(w)
    if found is None:
        return None
    wrong, fine = found
    if not wrong or not fine:
        return None
    one = len(wrong) == 1
    return (
        f"of the arrays you return, {' and '.join(wrong)} {'is' if one else 'are'} wrong and {', '.join(fine)} "
        f"{'is' if len(fine) == 1 else 'are'} right: look at how your code computes {' and '.join(wrong)}"
    )


def _localized(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.ndim == 0 or e.size < 2 or w.exercise.sections is not None:
        return None  # several arrays packed into one: where along it is which of them (``_sections``)
    wrong = ~_near_each(w.exercise, a, e)
    if not wrong.any() or wrong.all():
        return None
    stacked = _stacked_wrong(w.exercise.stacked, wrong)
    if stacked:
        return stacked
    if e.ndim >= 2 and min(e.shape[-2:]) >= 2 and max(e.shape[-2:]) >= 3:
        rows, cols = np.indices(e.shape[-2:])
        where = np.broadcast_to(cols - rows, e.shape)
        masked = _causal(e)  # only then is the diagonal about a mask
        for test, text in (
            (where > 0, "only above the diagonal" + (" (the entries a causal mask hides)" if masked else "")),
            (where < 0, "only below the diagonal"),
            (where == 0, "only on the diagonal" + (" (each position with itself)" if masked else "")),
        ):
            if (wrong <= test).all():
                look = "look at your mask" if masked else "look at what your code does there"
                return f"your output is wrong {text}: {look}"
    found = []
    for axis in range(e.ndim):
        bad = wrong.any(axis=tuple(i for i in range(e.ndim) if i != axis)).tolist()
        text = _pattern(bad, axis - e.ndim)
        if text:
            found.append(text)
    if found:
        return f"your output is wrong {' and '.join(found[-2:])}: look at what your code does there"
    return None


def _stacked_wrong(stacked, wrong: np.ndarray) -> str | None:
    """For an output that stacks named arrays along one axis (``Exercise.stacked``), which of them
    are wrong, where some are right: index 0 of that axis is an array of its own (q), not an index
    or angle of 0."""
    if stacked is None:
        return None
    axis, names = stacked
    if wrong.ndim < -axis or wrong.shape[axis] != len(names):
        return None
    bad = np.moveaxis(wrong, axis, 0).reshape(len(names), -1).any(axis=1)
    if bad.all():
        return None
    wrong_names = [n for n, b in zip(names, bad, strict=True) if b]
    right_names = [n for n, b in zip(names, bad, strict=True) if not b]

    def listed(found):
        return " and ".join(found) if len(found) < 3 else ", ".join(found[:-1]) + f" and {found[-1]}"

    return (
        f"your {listed(right_names)} {'is' if len(right_names) == 1 else 'are'} right and your "
        f"{listed(wrong_names)} {'is' if len(wrong_names) == 1 else 'are'} wrong: look at how your code makes "
        f"{listed(wrong_names)}, where it differs from {listed(right_names)} (the columns of w or b each takes, "
        "a step done for one only?)"
    )


def _causal(e: np.ndarray) -> bool:
    """Whether ``e`` (its last two axes queries and keys, the queries the last of the keys) is
    masked as a causal mask masks: every entry above the diagonal -inf or 0. Only then is where a
    wrong entry lies about a mask."""
    T, S = e.shape[-2:]
    above = np.broadcast_to(np.triu(np.ones((T, S), dtype=bool), k=S - T + 1), e.shape)
    return bool(above.any()) and bool(np.all(np.isneginf(e[above]) | (e[above] == 0)))


def _pattern(bad: list[bool], axis: int) -> str | None:
    """Where along one axis the wrong entries are, if that is one of a few telling patterns (none
    along an axis of 2, where "only the last" is also "all but the first")."""
    n = len(bad)
    patterns = (
        (3, [True] + [False] * (n - 1), "only at index 0 along axis {a} (the start)"),
        (
            3,
            [False] * (n - 1) + [True],
            "only at the last index along axis {a} (the end: a range or slice one short?)",
        ),
        (
            3,
            [False] + [True] * (n - 1),
            "everywhere but index 0 along axis {a} (right only where an index or angle of 0 hides a "
            "wrong factor: a scale, a frequency, an exponent, a sign?)",
        ),
        (4, [i % 2 == 1 for i in range(n)], "only at the odd indices along axis {a}"),
        (4, [i % 2 == 0 for i in range(n)], "only at the even indices along axis {a}"),
    )
    return next(
        (text.format(a=axis) for least, pattern, text in patterns if n >= least and bad == pattern), None
    )


def _blocks_repeated(w: _Wrong) -> str | None:
    """The last axis cut into k equal blocks that are all the same, where the reference's differ:
    parts that belong side by side (one head's features each) were combined into one and repeated
    (averaged, summed, or one of them copied)."""
    a, e = np.asarray(w.actual, np.float64), np.asarray(w.expected, np.float64)
    if a.shape != e.shape or e.ndim == 0 or not (np.isfinite(a).all() and np.isfinite(e).all()):
        return None
    n = e.shape[-1]
    for k in (k for k in range(2, n // 2 + 1) if n % k == 0):  # blocks of two entries or more
        blocks, wanted = np.split(a, k, axis=-1), np.split(e, k, axis=-1)
        if (
            np.ptp(blocks[0]) == 0
            or not all(_near(b, blocks[0]) for b in blocks[1:])
            or all(_near(b, wanted[0]) for b in wanted[1:])
        ):
            continue
        which = next(
            (f"block {i} of the reference's" for i, b in enumerate(wanted) if _near(blocks[0], b)), None
        )
        which = which or next(
            (
                f"the {name} of the reference's blocks"
                for name, f in (("mean", np.mean), ("sum", np.sum))
                if _near(blocks[0], f(wanted, axis=0))
            ),
            "one block the reference has nowhere",
        )
        return (
            f"your output's last axis is {k} copies of the same block of {n // k} (it is {which}), where the "
            f"reference's {k} blocks differ: each block holds a part of its own (one head's features each?), "
            "so lay the parts side by side rather than combining them into one and repeating it"
        )
    return None
