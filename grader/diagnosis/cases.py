"""What the other cases tell: the cases the function gets right and wrong, and what sets this one
apart (an int argument written in, values it was only tried on, kinds of input the right cases
lack)."""

import copy
from collections.abc import Callable

import numpy as np

import lib.sampling

from .. import kinds
from .core import _matches, _shown, _Wrong


def _values_seen(w: _Wrong) -> str | None:
    """Right on every case where an int argument has one of a few values (two at least, on two
    cases at least), wrong here, where it has a value beyond them and no kind of input but that
    value sets the case apart: the code handles only the values it was tried on (a head count
    written in, a branch or a slice per value)."""
    right = w.right_cases()
    if len(right) < 2 or w.actual.ndim != w.expected.ndim:
        return None  # an axis lost or gained: the shape rules say which
    apart = _apart_kinds(w, right)
    names = {r.name for r in right}
    split = []
    for name, value in w.case.inputs.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or kinds.is_seed(name):
            continue
        values = {r.inputs.get(name) for r in right}
        if None in values or len(values) < 2 or min(values) <= value <= max(values):
            continue
        if any(not kind.startswith((f"{name}=", f"{name} =")) for kind in apart):
            continue  # another kind of input sets this case apart: ``_apart`` says which
        if not (_shown(w.case, name) and all(_shown(r, name) for r in right)):
            continue  # values the student may not be told
        if all(c.name in names for c in w.cases if c.raises is None and c.inputs.get(name) in values):
            split.append((name, sorted(int(v) for v in values), int(value)))
    if len(split) != 1:
        return None
    name, values, value = split[0]
    shown = ", ".join(map(str, values[:-1])) + f" or {values[-1]}"
    return (
        f"your function is right on every case where `{name}` is {shown} ({len(right)} other case(s)), and "
        f"wrong here, where `{name}` == {value}: does your code handle only the values of `{name}` it was "
        f"tried on (a number written in, a branch or a slice for each value, a min() or a cap)? Make it work "
        f"for any `{name}`"
    )


def _other_draws(w: _Wrong) -> str | None:
    """A sampler right on every case that counts how often each id is drawn, wrong on most cases
    that compare the ids drawn one by one, and every id it drew there one its step's settings
    keep: it draws from the right distribution, with other random numbers (not an argument's
    values, which ``_values_seen`` would blame). A few draws can agree by chance (a short case, a
    float32 u that takes half of a float64 one's bits), so a draws case right does not rule it
    out; an id the filters remove does (a filter's mistake)."""
    counted = {c.name for c in w.cases if c.raises is None and kinds.FREQUENCIES in w.exercise.kinds(c)}
    right = {r.name for r in w.right_cases()}
    if not counted or w.case.name in counted or not counted <= right:
        return None
    told = [
        c for c in w.cases if c.raises is None and c.name not in counted and f"{c.name}::expected" in w.table
    ]
    wrong = [(w.case, w.actual), *((c, v) for c, v in _others_wrong(w) if c.name not in counted)]
    if 2 * len(wrong) < len(told) or not all(_kept_ids(case, value) for case, value in wrong):
        return None
    return (
        "your draws come out with the right frequencies (the frequency case passes) but are not the "
        "reference's ids, draw by draw: use the rng as the docstring says, one u = rng.random() per sampled "
        "token and the first id whose cumulative probability exceeds u; any other use of the generator "
        "gives other ids from the same seed"
    )


def _kept_ids(case, draws) -> bool:
    """Whether every id in ``draws`` is one that its step's settings keep (``sampler``'s settings,
    used in turn) on the case's logits."""
    inputs, draws = case.inputs, np.asarray(draws)
    logits, settings = inputs.get("logits"), inputs.get("settings")
    if logits is None or not settings or draws.ndim != 1 or draws.dtype.kind not in "iu":
        return False
    kept = [lib.sampling.filtered_probs(logits, **chosen) > 0 for chosen in settings]
    V = np.shape(logits)[-1]
    return all(0 <= t < V and kept[i % len(kept)][t] for i, t in enumerate(draws.tolist()))


def _others_wrong(w: _Wrong):
    """``(case, output)`` for every other case the function gets wrong (not those it cannot be
    told on: an error, a case that raises, one with no expected output)."""
    for case in w.cases:
        if case.name == w.case.name or case.raises is not None:
            continue
        outcome, expected = w.student.on(case), w.table.get(f"{case.name}::expected")
        if (
            outcome is None
            or outcome.error
            or expected is None
            or _matches(w.exercise, outcome.value, expected)
        ):
            continue
        yield case, outcome.value


def _everywhere(w: _Wrong, holds) -> bool:
    """``holds(case, output)`` on every other case the function gets wrong (``_others_wrong``)."""
    return all(holds(case, value) for case, value in _others_wrong(w))


def _fixed_int(w: _Wrong) -> str | None:
    """Right on the cases where an int argument has one value (two at least, or one if the
    reference with that value in place of the argument gives this wrong answer), wrong on this
    one, where it has another: that value is written in the code in place of the argument."""
    return _fixed_in(
        w.case, w.cases, _telling_right_cases(w), "wrong", _as_if_fixed(w, raised=False), _shaped_by(w)
    )


def _shaped_by(w: _Wrong) -> Callable[[str, int], bool]:
    """Whether argument ``name`` shapes the output, and the function's output has this case's
    shape, not the one ``value`` in its place gives: the code reads the argument, so being right
    only where it is ``value`` comes of something else (``d`` = 2 has one frequency, whose
    exponent is 0 however it is computed)."""

    def shaped(name: str, value: int) -> bool:
        try:
            out = _reference_with(w, name, value)
        except Exception:  # the reference refuses that value here: the shape tells nothing
            return False
        return np.shape(out) != w.expected.shape == w.actual.shape

    return shaped


def _telling_right_cases(w: _Wrong) -> list:
    """``_Wrong.right_cases`` but those whose answer is one of their inputs unchanged (``generate`` with
    a budget of 0 tokens returns its prompt): being right there says nothing of the code."""

    def passed_through(case) -> bool:
        expected = np.asarray(w.table[f"{case.name}::expected"])
        return any(
            isinstance(v, np.ndarray) and v.shape == expected.shape and np.array_equal(v, expected)
            for v in case.inputs.values()
        )

    return [case for case in w.right_cases() if not passed_through(case)]


def _as_if_fixed(w: _Wrong, raised: bool) -> Callable[[str, int], bool]:
    """Whether the reference, called on this case with ``value`` in place of argument ``name``,
    does what the student's function did: gives its output (within tolerance), or raises too
    (``raised``: the student's function raised)."""

    def same(name: str, value: int) -> bool:
        try:
            out = _reference_with(w, name, value)
        except Exception:  # the reference refuses that value here: so would the function
            return raised
        return not raised and _matches(w.exercise, w.actual, out)

    return same


def _reference_with(w: _Wrong, name: str, value: int):
    """The reference's output on this case with ``value`` in place of argument ``name``."""
    with np.errstate(all="ignore"):
        return w.exercise.reference(**copy.deepcopy({**w.case.inputs, name: value}))


def _fixed_in(case, cases, right: list, how: str, as_if_fixed=None, shaped=None) -> str | None:
    """The int argument whose value splits the cases as the function's answers do (right on
    every case where it is ``v``, on two at least, or on one if ``as_if_fixed(name, v)``: the
    reference with ``v`` written in does what the function did on ``case``; wrong where it is
    not), if one alone does; not one whose value the output's shape shows the code reads
    (``shaped(name, v)``)."""
    if not right or (len(right) < 2 and as_if_fixed is None):
        return None
    right_names = {r.name for r in right}
    split = []
    for name, value in case.inputs.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            continue
        values = {r.inputs.get(name) for r in right}
        if len(values) != 1 or None in values or (fixed := values.pop()) == value:
            continue
        if not all(c.name in right_names for c in cases if c.raises is None and c.inputs.get(name) == fixed):
            continue
        if shaped is not None and shaped(name, int(fixed)):
            continue
        if len(right) >= 2 or as_if_fixed(name, int(fixed)):
            split.append((name, fixed, value))
    if len(split) != 1:
        return None
    name, fixed, value = split[0]
    return (
        f"your function is right only when `{name}` == {fixed} (on {len(right)} other case(s)), and "
        f"{how} here, where `{name}` == {value}: is {fixed} written in your code (or in a helper's "
        f"call) where `{name}` belongs?"
    )


def _lengths_seen(w: _Wrong) -> str | None:
    """Right on every case whose answer is at most ``m`` long along one axis (two cases at least,
    of two lengths), wrong on every case whose answer is longer, this one among them: the code
    handles lengths only up to a cap (a window of the last few entries, a size written in)."""
    right = {r.name for r in w.right_cases()}
    told = [c for c in w.cases if c.raises is None and f"{c.name}::expected" in w.table]
    split = []
    for axis in range(-w.expected.ndim, 0):
        lengths = {c.name: _length(w, c, axis) for c in told}
        seen = {n for name, n in lengths.items() if name in right}
        if None in seen or len(seen) < 2 or w.expected.shape[axis] <= max(seen):
            continue
        if all((n is not None and n <= max(seen)) == (name in right) for name, n in lengths.items()):
            if _capped_here(w, axis, max(seen)):
                split.append((axis, max(seen)))
    if len(split) != 1:
        return None
    axis, longest = split[0]
    answer = (
        f"has at most {longest} entries"
        if w.expected.ndim == 1
        else f"is at most {longest} long along axis {axis}"
    )
    return (
        f"your function is right on every case whose answer {answer} ({len(right)} other case(s)), and wrong "
        f"on every longer one, this one ({w.expected.shape[axis]}) among them: does your code keep only a "
        f"window of the last few entries, or cap a length (a slice such as [-n:] with n written in)? Make it "
        f"work for any length"
    )


def _capped_here(w: _Wrong, axis: int, longest: int) -> bool:
    """Whether every wrong answer looks cut at ``longest``: of another length along ``axis``, or
    right on its first ``longest`` entries there (by the exercise's own comparison). Code that
    keeps a window or a written-in size is right up to the cap on every case (a window of n that
    is right on answers of n + 1 entries is right on the first n + 1 entries of a longer one); an
    answer wrong before it went wrong for another reason (keys in another order, a generator
    copied at each step, settings passed on the first step only) that longer cases merely happen
    to show."""
    wrong = [(w.actual, w.expected)]
    wrong += [(value, w.table[f"{case.name}::expected"]) for case, value in _others_wrong(w)]
    return all(_cut_at(w.exercise, actual, expected, axis, longest) for actual, expected in wrong)


def _cut_at(exercise, actual, expected, axis: int, longest: int) -> bool:
    """Whether ``actual`` is of another shape than ``expected`` or matches it on its first
    ``longest`` entries along ``axis``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return True
    head = (slice(None),) * (expected.ndim + axis) + (slice(0, longest),)
    return _matches(exercise, actual[head], expected[head])


def _length(w: _Wrong, case, axis: int) -> int | None:
    """The length of ``case``'s expected answer along ``axis``, if it has as many axes as this one's."""
    expected = np.asarray(w.table[f"{case.name}::expected"])
    return expected.shape[axis] if expected.ndim == w.expected.ndim else None


def _apart(w: _Wrong) -> str | None:
    """What kinds of input (``grader.kinds``) this case has that every case the function gets
    right lacks, if there are a few."""
    right = w.right_cases()
    if len(right) < 2:
        return None  # one case right can be luck (a tanh saturated, a mask that hid nothing)
    apart = _apart_kinds(w, right)
    if not apart or len(apart) > 5:
        return None
    named = ", ".join(kinds.words(kind) for kind in sorted(apart))
    return (
        f"your function is right on {len(right)} other case(s) but not on this one, which has what they do not: "
        f"{named}; look at how your code handles {'that' if len(apart) == 1 else 'those'}"
    )


def _apart_kinds(w: _Wrong, right: list) -> set[str]:
    """The kinds of input this case has and none of the ``right`` cases has (but how values lie:
    for the coverage of cases, too weak a clue here)."""
    return {
        kind
        for kind in w.exercise.kinds(w.case) - set().union(*(w.exercise.kinds(c) for c in right))
        if not kind.endswith(kinds.PATTERNS)
    }
