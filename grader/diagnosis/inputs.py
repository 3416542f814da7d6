"""Inputs: one input used where another belongs, a setting not passed on, a softmax taken too
early, an int argument off by one, a float argument that hardly matters or is ignored, an
output that moves with a per-row shift, an input scaled by a factor the sizes give."""

import copy
import itertools
import math

import numpy as np

from .cases import _everywhere, _fixed_int, _others_wrong
from .core import _holds, _matches, _near, _reference_on, _shown, _softmax, _Wrong
from .counts import _counts, _size_places
from .numeric import _not_a_distribution
from .shapes import _which_sections


def _where(w: _Wrong, held: str) -> str:
    """How a message says which part of the output ``_holds`` found another's: all of it, the
    returned arrays that are wrong (a packed output), or the entries that are wrong."""
    if held == "all":
        return "your output is"
    found = _which_sections(w)
    if found and found[0] and found[1]:
        wrong, fine = found
        return (
            f"{', '.join(fine)} {'is' if len(fine) == 1 else 'are'} right, but your {' and '.join(wrong)} "
            f"{'is' if len(wrong) == 1 else 'are'}"
        )
    return "where your output is wrong, it holds"


def _substitutions(inputs: dict) -> list[tuple[dict, str]]:
    """Ways to use one input where another belongs, each as ``({name: name it is replaced by},
    words)``: one array for another of its shape, two swapped, and every input whose name differs
    from another's by one word in the same way at once (``k_new`` for ``v_new`` and ``cache_k`` for
    ``cache_v``: the keys for the values)."""
    arrays = {
        n: v for n, v in inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.size
    }
    found, seen = [], set()

    def add(mapping: dict, words: str):
        key = frozenset(mapping.items())
        if key not in seen:
            seen.add(key)
            found.append((mapping, words))

    pairs = [(a, b) for a in arrays for b in arrays if a != b and arrays[a].shape == arrays[b].shape]
    for a, b in pairs:
        add({a: b}, f"`{b}` in place of `{a}`")
    for a, b in pairs:
        group = _renamed_alike(a, b, arrays)
        if len(group) > 1:
            add(group, " and ".join(f"`{y}` in place of `{x}`" for x, y in group.items()))
    for a, b in pairs:
        if a < b:
            add({a: b, b: a}, f"`{a}` and `{b}` swapped")
    return found


def _renamed_alike(a: str, b: str, arrays: dict) -> dict:
    """Where names ``a`` and ``b`` differ in one word (``k_new``, ``v_new``: k for v), every input
    whose name has that word and becomes another input's name of the same shape with the other
    word in its place, and that input."""
    wa, wb = a.split("_"), b.split("_")
    if len(wa) != len(wb) or sum(x != y for x, y in zip(wa, wb, strict=True)) != 1:
        return {}
    old, new = next((x, y) for x, y in zip(wa, wb, strict=True) if x != y)
    group = {}
    for name in arrays:
        words = name.split("_")
        if old in words:
            other = "_".join(new if word == old else word for word in words)
            if other in arrays and arrays[other].shape == arrays[name].shape:
                group[name] = other
    return group


def _settings_dropped(inputs: dict):
    """``(name, key, inputs)`` for each setting of an input that is a list of settings (dicts of
    keyword arguments), with that key left out of every one of them."""
    for name, value in inputs.items():
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            continue
        for key in dict.fromkeys(k for v in value for k, x in v.items() if x is not None):
            yield name, key, {**inputs, name: [{k: x for k, x in v.items() if k != key} for v in value]}


def _through(x: np.ndarray, log: bool) -> np.ndarray:
    """A softmax (or log-softmax) of ``x`` over its last axis, in its dtype."""
    with np.errstate(all="ignore"):
        z = x.astype(np.float64)
        z = z - z.max(axis=-1, keepdims=True)
        out = z - np.log(np.exp(z).sum(axis=-1, keepdims=True)) if log else _softmax(z)
    return out.astype(x.dtype)


def _other_inputs(w: _Wrong) -> str | None:
    """The reference's output on other inputs than the case's, as a mistake would make them: one
    input used where another belongs (values taken from the keys, two arguments swapped), or an
    input turned into probabilities or log-probabilities (a softmax taken too early) before a step
    that works on it as it is. A match on the entries the output gets wrong is enough: the
    others may be another returned array, right (the caches returned with attention's output)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.size < 2 or a.dtype.kind not in "biuf":
        return None
    for mapping, words in _substitutions(w.case.inputs)[:24]:
        other = _reference_on(w, {**w.case.inputs, **{x: w.case.inputs[y] for x, y in mapping.items()}})
        held = _holds(w, other)
        if held:
            return (
                f"{_where(w, held)} what the reference gives with {words}: your code uses one input where another "
                "belongs (a name mixed up, a line copied and not changed?)"
            )
    for name, key, inputs in _settings_dropped(w.case.inputs):
        held = _holds(w, _reference_on(w, inputs))
        if held:
            return (
                f"{_where(w, held)} what the reference gives with `{key}` left out of `{name}`: your function ignores "
                f"`{key}`; pass it on to where it belongs"
            )
    for name, x in w.case.inputs.items():
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim < 1 or x.shape[-1] < 2:
            continue
        for log, what in (
            (False, "probabilities (a softmax of"),
            (True, "log-probabilities (the log of a softmax of"),
        ):
            other = _reference_on(w, {**w.case.inputs, name: _through(x, log)})
            if other is not None and _near(other, e):
                continue  # the softmax changes nothing the reference's output shows
            held = _holds(w, other)
            if held:
                return (
                    f"{_where(w, held)} what the reference gives on {what} `{name}`) in place of `{name}`: this step "
                    f"works on `{name}` as they are given; take no softmax (or log) before it, or move it after"
                )
    return None


def _int_off_by_one(w: _Wrong) -> str | None:
    """The output (a number too) is the reference's with an int argument one more or one less,
    here and on every other case the function gets wrong that has the argument: a count or a range
    one long or one short (T + 1 tokens, n_tokens - 1 rows). A number written in for the argument
    that happens to be one off here is ``_fixed_int``'s."""
    if w.actual.shape != w.expected.shape:
        return None
    for name, value in w.case.inputs.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            continue
        for step in (1, -1):
            other = _reference_on(w, {**w.case.inputs, name: type(value)(value + step)})
            if other is None or _near(other, w.expected) or _holds(w, other) != "all":
                continue
            if not _off_everywhere(w, name, step) or _fixed_int(w):
                return None
            said = f"= {value + step} (here it is {value})" if _shown(w.case, name) else f"{step:+d}"
            return (
                f"your output is what the reference gives for `{name}` {said}: "
                f"an off-by-one in how your code uses `{name}` (a range or a count one "
                f"{'too long' if step > 0 else 'too short'}, a + 1 or - 1 too many?)"
            )
    return None


def _off_everywhere(w: _Wrong, name: str, step: int) -> bool:
    """On every other case the function gets wrong where ``name`` is an int, its output is the
    reference's with ``name`` off by ``step`` (a case it cannot be told on does not count)."""
    for case, output in _others_wrong(w):
        value = case.inputs.get(name)
        if not isinstance(value, int | np.integer):
            continue
        try:
            with np.errstate(all="ignore"):
                off = w.exercise.reference(**copy.deepcopy({**case.inputs, name: type(value)(value + step)}))
        except Exception:  # the reference refuses that value
            return False
        if not _matches(w.exercise, output, off):
            return False
    return True


LIMIT = 1e-6  # a number this many times smaller (or larger) than an argument's value: one end of its range


def _limits(value: float) -> list[tuple[float, str]]:
    """The ends of a float argument's range, as values to try: close to 0, and very large (1 for a
    fraction: a p, a share), each with how to say it."""
    found = [(value * LIMIT, "close to 0")]
    found.append((1.0, "1, its largest") if 0 < value < 1 else (value / LIMIT, "very large"))
    return [(type(value)(v), words) for v, words in found]


def _at_limit(w: _Wrong) -> str | None:
    """A float argument that reaches the output but hardly matters: the output is the reference's
    with that argument at one end of its range here, and at one end (the other one, or only on
    some rows) on other cases the function gets wrong. What it is compared with, or applied to, is
    on another scale (a running sum of logits where probabilities belong: large or negative, so
    the test passes or fails whatever the value). At the same end on every case, the argument may
    as well be ignored: ``_ignored`` says so."""
    if w.actual.shape != w.expected.shape:
        return None
    for name, value in w.case.inputs.items():
        if not isinstance(value, float | np.floating) or not value:
            continue
        for limit, words in _limits(value):
            other = _reference_on(w, {**w.case.inputs, name: limit})
            if other is None or _near(other, w.expected) or _holds(w, other) != "all":
                continue
            ends = _ends_elsewhere(w, name)
            if not any(ends) or all(words in found for found in ends):
                break
            said = f" = {limit:.2g} (here it is {value:g})" if _shown(w.case, name) else f" {words}"
            return (
                f"your function behaves as if `{name}` were {words}: your output is what the reference gives "
                f"for `{name}`{said}, while on other cases you get wrong it is not at "
                f"that end (at the other, or at neither). `{name}` reaches your "
                "result, but what it is compared with or applied to is on another scale than the reference's, "
                "so its value hardly matters (logits, which can be large or negative, where probabilities, "
                "which add up to 1, belong?)"
            )
    return None


def _ends_elsewhere(w: _Wrong, name: str) -> list[set[str]]:
    """For every other case the function gets wrong where ``name`` is a nonzero float: the ends of
    its range (``_limits``' words) at which the reference gives the function's output there."""
    found = []
    for case, output in _others_wrong(w):
        value = case.inputs.get(name)
        if isinstance(value, float | np.floating) and value:
            found.append(
                {words for limit, words in _limits(value) if _limit_matches(w, case, name, limit, output)}
            )
    return found


def _limit_matches(w: _Wrong, case, name: str, limit: float, value) -> bool:
    try:
        with np.errstate(all="ignore"):
            out = w.exercise.reference(**copy.deepcopy({**case.inputs, name: limit}))
    except Exception:  # the reference refuses that value
        return False
    return _matches(w.exercise, value, out)


def _ignored(w: _Wrong) -> str | None:
    """An argument whose change leaves the output as it is, while the reference's changes. A
    number argument is also pushed far (``variants.pushed``): a wrong function can leave a small
    change without effect (a top_k that the filter applied before it made a no-op) and still use
    the argument, and then its output moves. Only an argument that moves nothing, where the
    reference's output moves, is said to be ignored."""
    if w.actual.dtype.kind == "f" and np.isnan(w.actual).any():
        return None  # NaN stays NaN whatever changes: that says nothing about the inputs
    changed = w.variant("changed")
    ignored = []
    for variant in changed:
        outcome, reference = w.student.run(variant), w.reference(variant)
        if outcome is None or outcome.error or reference is None:
            continue
        if _matches(w.exercise, outcome.value, w.actual, exact=True) and not _matches(
            w.exercise, reference, w.expected
        ):
            ignored.append(variant.unit)
    if not ignored:
        return None
    right = w.right_cases()  # right elsewhere: the inputs reach the output there
    if len(ignored) == len(changed) > 1:
        if right:
            return None  # nothing moves it here, yet it is right elsewhere: what sets this case apart?
        return "your output does not change when any input does: does your function return a constant?"
    units = [unit for unit in dict.fromkeys(ignored) if not _moves_when_pushed(w, unit)]
    if not units:
        return None
    one = len(units) == 1
    if one and isinstance(w.case.inputs.get(units[0]), int | np.integer):
        fixed = _fixed_int(w)  # which number stands in for it, where the other cases tell
        if fixed:
            return fixed
    named = " or ".join(f"`{unit}`" for unit in units)
    if _one_key_each(w, units):
        return (
            f"your output does not change when {named} {'does' if one else 'do'}, because each query's "
            "output is one row of the values as it is: its weights are 1 on a single key, as when the mask "
            "leaves each query one key only. Check where your mask's diagonal starts (a query at position t "
            "sees every key up to t, the cached ones too)"
        )
    if right and all(_data(w.case.inputs.get(unit)) and _varied(right, unit) for unit in units):
        return (
            f"on this case your output does not change when {named} {'does' if one else 'do'}, while the "
            f"reference's does, yet you are right on {len(right)} other case(s): something stops "
            f"{'it' if one else 'them'} from reaching your result for values like these (a clip, a cap, a "
            "branch, a function that saturates?)"
        )
    return (
        f"your function ignores {named}: changing {'it' if one else 'them'} "
        f"leaves your output as it is, while the reference's changes; does {'it' if one else 'each'} reach "
        "your result (not a default, a constant or a global in its place)?"
    )


def _stabiliser_misused(w: _Wrong) -> str | None:
    """Right with the stabiliser (``eps``) at 0 and wrong here, where it changes the reference's
    output: the function uses it otherwise than the reference (added to the std, squared), which
    a tiny ``eps`` hides and the case's shows."""
    for variant in w.variant("zeroed"):
        outcome, reference = w.student.run(variant), _reference_on(w, variant.inputs)
        if outcome is None or outcome.error or reference is None or not np.isfinite(reference).all():
            continue
        if _matches(w.exercise, reference, w.expected) or not _matches(w.exercise, outcome.value, reference):
            continue
        name = variant.unit
        return (
            f"with `{name}` set to zero your output is the reference's, and with this case's `{name}` it is "
            f"not: your code uses `{name}` otherwise than the reference. It goes in as it is, added inside the "
            "square root (to the variance, or the mean of squares): not to the std, nor squared"
        )
    return None


def _one_key_each(w: _Wrong, units: list[str]) -> bool:
    """An attention whose output (its first returned array) is, row by row, a row of another input
    as it is: each query's weights are 1 on one key, whatever the scores, so the inputs that only
    make the scores (``units``: the queries) move nothing. A mask that leaves each query one key
    does this (its diagonal started at 0 for queries that follow a cache), not an ignored input."""
    if not w.exercise.masked_softmax or w.actual.ndim < 2:
        return False
    out = w.actual
    if w.exercise.sections is not None:
        out = out[..., : w.exercise.sections(w.case.inputs)[0][1], :]
    d = out.shape[-1]
    rows = [
        value.reshape(-1, d)
        for name, value in w.case.inputs.items()
        if name not in units and _data(value) and value.ndim >= 2 and value.shape[-1] == d
    ]
    if not rows or out.size < 2 * d:
        return False
    pool = np.concatenate(rows).astype(np.float64)
    found = np.isclose(out.reshape(-1, 1, d), pool[None], rtol=1e-5, atol=1e-6).all(axis=-1).any(axis=-1)
    return bool(found.all())


def _data(value) -> bool:
    """An array of floats: data (``x``, ``logits``), which no one writes into code as one does a
    setting (an ``eps``, a ``top_k``, a seed)."""
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size > 1


def _varied(cases: list, name: str) -> bool:
    """Whether ``cases`` hold two values of input ``name`` at least: data a function is right on
    in two of its values reaches its output (then, where a change of it moves nothing, something
    cuts it off for those values)."""
    values = [c.inputs.get(name) for c in cases if name in c.inputs]
    first = values[0] if values else None
    return any(
        type(v) is not type(first) or np.shape(v) != np.shape(first) or not np.array_equal(v, first)
        for v in values[1:]
    )


def _moves_when_pushed(w: _Wrong, unit: str) -> bool:
    """The function's output on ``unit`` pushed far (``variants.pushed``) is not its output here,
    or cannot be told (it raised, or was not asked): the argument is not shown to be ignored."""
    pushed = [v for v in w.variant("pushed") if v.unit == unit]
    if not pushed:
        return False
    outcome = w.student.run(pushed[0])
    if outcome is None or outcome.error:
        return True
    reference = _reference_on(w, pushed[0].inputs)
    if reference is None or _matches(w.exercise, reference, w.expected):
        return False  # the reference does not move either: this says nothing
    return not _matches(w.exercise, outcome.value, w.actual, exact=True)


# Constants an input may be scaled by where a base is mixed up, with how to say each.
CONSTANTS = {
    math.log(2): "ln 2 (= 0.6931: 2 ** x where e ** x belongs, or a log base 2?)",
    1 / math.log(2): "1/ln 2 (= 1.443: e ** x where 2 ** x belongs?)",
    math.log(10): "ln 10 (= 2.303: 10 ** x where e ** x belongs?)",
    -1.0: "-1 (a sign flipped?)",
    2.0: "2",
    0.5: "1/2",
}


def _input_scaled(w: _Wrong) -> str | None:
    """The reference's output with one float input times a factor the inputs' sizes give (n,
    1/n, sqrt(n), 1/sqrt(n)), and perhaps the result times the inverse: a scale applied to the
    wrong thing (to the output of a softmax where it belongs on the scores, by d where sqrt(d_head)
    belongs, to one input where it belongs on another)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.size < 2 or a.dtype.kind != "f" or not np.isfinite(a).any():
        return None
    counts = {n: where for n, where in _counts(w.case.inputs).items() if n <= 4096}
    factors = list(CONSTANTS.items())
    for n, where in counts.items():
        factors += [
            (c, f"{said} ({n}: {where})")
            for c, said in (
                (math.sqrt(n), f"sqrt({n})"),
                (1 / math.sqrt(n), f"1/sqrt({n})"),
                (n, f"{n}"),
                (1 / n, f"1/{n}"),
            )
        ]
    tried = 0
    for name, x in w.case.inputs.items():
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not x.size:
            continue
        for c, said in factors:
            tried += 1
            if tried > 96:
                return None
            other = _reference_on(w, {**w.case.inputs, name: (x * c).astype(x.dtype)})
            if other is None or other.shape != a.shape or _near(other, e):
                continue
            if _matches(w.exercise, a, other):
                if math.isclose(c, 2):
                    return (
                        f"your output is what the reference gives with `{name}` times 2: is `{name}` counted "
                        "twice (added once too often: a residual added twice?), or doubled somewhere?"
                    )
                return (
                    f"your output is what the reference gives with `{name}` times {said}: a factor on `{name}`, "
                    "or on what is made from it (the scores?), is extra, missing or the wrong one"
                )
            with np.errstate(all="ignore"):
                moved = other / c
            if np.isfinite(moved).any() and _matches(w.exercise, a, moved):
                return (
                    f"your output is the reference's with `{name}` times {said}, then the result divided by "
                    f"that factor: you apply it to the result, where the reference applies it to `{name}` "
                    f"(or to what is made from it, before a nonlinear step: the scores, before the softmax?)"
                )
    return None


# How a message says what ``variants.normalised`` did to each row of an input.
NORMALISED = {
    "log-softmax": ("the log-softmax of each row of `{}`", "through a log-softmax"),
    "softmax": ("the softmax of each row of `{}`", "through a softmax"),
    "mean subtracted": ("`{}` with each row's mean subtracted", "with each row's mean subtracted"),
}


SHIFTS = ("log-softmax", "mean subtracted")  # those of ``NORMALISED`` that only shift each row


def _normalisation_missing(w: _Wrong) -> str | None:
    """The function gives the reference's output when an input comes with each row normalised
    (``variants.normalised``: a log-softmax, a softmax, its mean subtracted): that step is what
    it leaves out, somewhere. Right on two of them that only shift each row (a log-softmax and
    the mean subtracted), or right on other cases as they come, the function is right on other
    values, not missing a step."""
    found: dict[str, list[str]] = {}
    for variant in w.variant("normalised"):
        outcome = w.student.run(variant)
        if outcome is not None and not outcome.error and _matches(w.exercise, outcome.value, w.expected):
            how, _, name = variant.unit.partition(": ")
            found.setdefault(name, []).append(how)
    if found and w.right_cases():
        return None  # right on other cases as they come: a missing step would show on them too
    for name, hows in found.items():
        if len([h for h in hows if h in SHIFTS]) > 1:
            continue
        how = hows[0]
        given, after = NORMALISED.get(how, (f"{how} of `{{}}`", f"with {how}"))
        return (
            f"your function gives the reference's output when it is given {given.format(name)} in place of "
            f"`{name}`: your code uses the raw values of `{name}` somewhere the reference uses them {after} "
            "(along the last axis): that step is missing there"
        )
    return None


def _shift_seen(w: _Wrong) -> str | None:
    """The output moves when a constant of each row's own is added to an input along its last
    axis (``variants.shifted``), while the reference's does not: a softmax or a log-softmax does
    not see such a constant, so the function uses the raw values where the reference normalises
    them (a loss from the logits themselves)."""
    if _not_a_distribution(w):
        return None  # the rows do not even sum to 1: that is said, more plainly
    for variant in w.variant("shifted"):
        outcome = w.student.run(variant)
        if outcome is None or outcome.error or _matches(w.exercise, outcome.value, w.actual):
            continue
        name = variant.unit
        return (
            f"your output changes when a constant is added to every entry of a row of `{name}` (along its last "
            "axis), and the reference's does not: a normalisation of each row (a log-softmax, a softmax, its "
            f"mean subtracted) does not see such a constant, so your code uses the raw values of `{name}` where "
            "the reference normalises each row first (a log-softmax missing, or taken over another axis?)"
        )
    return None


MAX_FITTED = (
    3  # float inputs a scale is fitted on (``_scale_fitted``), each in about 30 calls of the reference
)


def _fitted_factor(w: _Wrong, name: str, x: np.ndarray) -> float | None:
    """The factor on input ``name`` that brings the reference's output closest to the output: a
    grid over 1e-2..1e2, then a golden-section search on its log."""
    a = np.asarray(w.actual, np.float64)

    def miss(log_c):
        other = _reference_on(w, {**w.case.inputs, name: (x * math.exp(log_c)).astype(x.dtype)})
        if other is None or other.shape != a.shape:
            return math.inf
        other = np.asarray(other, np.float64)
        finite = np.isfinite(a)
        if not np.array_equal(finite, np.isfinite(other)) or not finite.any():
            return math.inf
        with np.errstate(all="ignore"):
            gap = float(np.abs(other[finite] - a[finite]).max())
        return gap if math.isfinite(gap) else math.inf

    grid = np.linspace(math.log(1e-2), math.log(1e2), 13)
    values = [miss(g) for g in grid]
    best = int(np.argmin(values))
    if not math.isfinite(values[best]):
        return None
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(24):
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if miss(m1) < miss(m2):
            hi = m2
        else:
            lo = m1
    return math.exp((lo + hi) / 2)


def _scale_fitted(w: _Wrong) -> str | None:
    """The reference's output with one float input times the square root of a ratio of two sizes
    (or the ratio), a sum of two axes among them (the keys' length, cache and new ones), here
    and on every other case the function gets wrong: a scale divided by the wrong size (sqrt of
    the keys' length where sqrt(d_head) belongs). The factor is fitted (``_fitted_factor``), then
    named by the sizes that give it, then checked exactly."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.size < 2 or a.dtype.kind != "f" or not np.isfinite(a).any():
        return None
    if not np.array_equal(np.isfinite(a), np.isfinite(e)):
        return None
    places = _size_places(w.case.inputs)
    arrays = [
        (n, v)
        for n, v in w.case.inputs.items()
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size
    ]
    for name, x in arrays[:MAX_FITTED]:
        c = _fitted_factor(w, name, x)
        if c is None or math.isclose(c, 1, rel_tol=1e-3):
            continue
        for root in (True, False):
            named = [
                (p, q)
                for p, q in itertools.permutations(places, 2)
                if math.isclose((math.sqrt if root else float)(places[p] / places[q]), c, rel_tol=1e-2)
            ]
            values = {(places[p], places[q]) for p, q in named}
            exact = [
                (pn, qn)
                for pn, qn in values
                if _scaled_matches(w, w.case, w.actual, name, math.sqrt(pn / qn) if root else pn / qn)
            ]
            named = [(p, q) for p, q in named if (places[p], places[q]) in exact]
            memo: dict = {}
            named = [
                (p, q)
                for p, q in named
                if _everywhere(
                    w,
                    lambda case, value, p=p, q=q, name=name, root=root, memo=memo: _scaled_by_places(
                        w, case, value, name, p, q, root, memo
                    ),
                )
            ]
            if not named:
                continue
            named.sort(key=lambda pq: (" + " in pq[0]) + (" + " in pq[1]))
            p, q = named[0]
            f = "sqrt" if root else ""
            numbers = "" if w.case.hidden else f" = {f}({places[p]}/{places[q]})"
            return (
                f"your output is what the reference gives with `{name}` times {f}(a / b){numbers}, a the size "
                f"{p}, b the size {q}: the scale on `{name}`, or on what is made from it (the scores?), is the "
                f"wrong one: you divide by {f}(b) where the reference divides by {f}(a)?"
            )
    return None


def _scaled_matches(w: _Wrong, case, value, name: str, factor: float) -> bool:
    x = case.inputs.get(name)
    if not isinstance(x, np.ndarray):
        return False
    try:
        with np.errstate(all="ignore"):
            other = w.exercise.reference(**copy.deepcopy({**case.inputs, name: (x * factor).astype(x.dtype)}))
    except Exception:  # the reference refuses it
        return False
    expected = w.table.get(f"{case.name}::expected")
    return _matches(w.exercise, value, other) and (expected is None or not _near(other, expected))


def _scaled_by_places(w: _Wrong, case, value, name: str, p: str, q: str, root: bool, memo: dict) -> bool:
    places = _size_places(case.inputs)
    if p not in places or q not in places or not places[q]:
        return False
    ratio = places[p] / places[q]
    key = (case.name, round(ratio, 12))
    if key not in memo:
        memo[key] = _scaled_matches(w, case, value, name, math.sqrt(ratio) if root else ratio)
    return memo[key]
