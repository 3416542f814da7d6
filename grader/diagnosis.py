"""Naming a mistake nobody listed: structural explanations of a wrong answer.

``grader.compare`` names an exercise's known mistakes first. When none matches, ``explain`` tries,
in this order, explanations that need no list, and returns the first that fits, as one line that
says what to look at without showing an expected value:

1. the shape: axes permuted, a batch axis lost (the first sequence alone is right), an axis of
   size 1 too many, entries too many or too few along one axis;
2. overflow: NaN or inf on large inputs, while the same inputs scaled down come out right;
3. an argument that changes nothing: the output stays the same when it changes, while the
   reference's does not ("your function ignores `eps`");
4. a batch axis: right on one sequence, wrong on a batch;
5. the precision: right in float64 and not in float32, or the reverse;
6. where NaN and -inf are: NaN everywhere, NaN exactly where the reference masks, whole rows of
   NaN, large finite numbers or zeros where the reference has -inf, more or fewer entries kept per
   row (at -inf, or at probability 0), as many but not the same ones;
7. an exact relation: close but outside the tolerance, transposed or axes permuted, reversed or
   shifted by one along an axis, a constant factor or offset (a factor that is a count of the
   inputs, or a ratio of two counts one apart, said as a sum divided by the wrong count), the
   reference to a power (an exponent scaled: 2 ** x for e ** x, a loss divided by the wrong
   count), a constant or factor per row, one vector (a bias) or one factor per feature on every
   row, exp, log or softmax of the reference, the reference plus or minus an input or a station
   (a residual added twice, a term missing), or with a station counted a named number of times;
8. what sets the case apart: the kinds of input (``grader.kinds``) it has and every case the
   function gets right lacks ("`stop_token` = 0");
9. where it is wrong: only the first or last entry along an axis, everywhere but the first, only
   the odd or even entries, only above, below or on the diagonal;
10. what it is not: rows that do not sum to 1 where the reference's are probabilities.

Then, with the reference called on inputs changed here: the steps of an exercise that declares
them (``Exercise.steps``) in another order; a gain or a bias applied to the input where the
reference applies it to the result, or the reverse; the items of a reduction (``Exercise.terms``)
averaged another way (a harmonic mean where a geometric one belongs); a term that grows with an
int argument off by a ratio of two sizes (``d_head`` where ``d_model`` belongs); the output a
station (or an input) times another weight matrix than the reference's; an input scaled by the
square root of a ratio of sizes, fitted (sqrt of the keys' length where sqrt(d_head) belongs);
an output that moves when each row of an input is shifted by a constant, where the reference's
does not (raw logits where log-probabilities belong). Last, for an exercise with parts, what
``stations`` finds is the message itself. An argument is said to be ignored only if pushed far
(``variants.pushed``) it still moves nothing; more or fewer entries kept is said to be an
off-by-one only if the other cases the function gets wrong keep more, or fewer, the same way.

1, 6 and 7 compare the output with the reference; 2-5 call the student's function on variants of
the case (``grader.variants``), 8 on the exercise's other cases. For an exercise with parts,
``stations`` finds the first intermediate that differs: a helper of the student's that is wrong
on the reference's inputs, or one that is right but is fed something else by the function that
calls it ("your `mlp` is right, but `block` feeds it resid_mid where it needs ln_2").

The student's side comes through a ``Student``: ``InKernel`` calls the functions (the notebook's
check), ``Returned`` reads what the scorer sent back (the grader; ``grader.followup`` asks for it).
"""

import copy
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import kinds, variants, watch
from .wire import decode

RTOL, ATOL = 1e-4, 1e-5  # for relations computed from the reference, looser than a plain check


@dataclass(frozen=True)
class Outcome:
    """What the student's function did: returned ``value``, or raised ``error`` (``"Type: msg"``)."""

    value: object = None
    error: str | None = None


# ---- the student's side --------------------------------------------------------------------------


class Student:
    """Answers to the questions a diagnosis asks; ``None`` where there is no answer."""

    def run(self, variant: variants.Variant) -> Outcome | None:
        return None

    def helper(self, case, part, inputs: dict) -> Outcome | None:
        return None

    def watched(self, case) -> list[dict] | None:
        return None

    def on(self, case) -> Outcome | None:
        """What the function did on another case of the exercise."""
        return None


class InKernel(Student):
    """The notebook's check: ``called`` is the student's function of a case's inputs, ``helpers``
    their functions for the exercise's parts, ``namespace`` where ``called`` looks them up."""

    def __init__(self, called: Callable, helpers: dict, namespace: dict | None, watched_names=()):
        self.called, self.helpers, self.namespace = called, helpers, namespace
        self.names = [
            n for n in watched_names if namespace is not None and namespace.get(n) is helpers.get(n)
        ]

    def run(self, variant):
        return _outcome(lambda: self.called(**copy.deepcopy(variant.inputs)))

    def on(self, case):
        return _outcome(lambda: self.called(**copy.deepcopy(case.inputs)))

    def helper(self, case, part, inputs):
        helper = self.helpers.get(part.helper)
        return None if helper is None else _outcome(lambda: helper(**copy.deepcopy(inputs)))

    def watched(self, case):
        if not self.names:
            return None
        seen = []
        with watch.watching(self.namespace, self.names, seen):
            _outcome(lambda: self.called(**copy.deepcopy(case.inputs)))
        return seen


class Returned(Student):
    """The grader: the answers the scorer sent back, by call name (see ``calls``)."""

    def __init__(self, answers: Mapping):
        self.answers = answers

    def _outcome(self, name: str) -> Outcome | None:
        answer = self.answers.get(name) or {}
        if "error" in answer:
            return Outcome(error=answer["error"])
        try:
            return Outcome(decode(answer["output"])) if "output" in answer else None
        except ValueError:
            return None

    def run(self, variant):
        return self._outcome(variant.name)

    def on(self, case):
        return self._outcome(case.name)

    def helper(self, case, part, inputs):
        return self._outcome(part_call(case, part))

    def watched(self, case):
        seen = (self.answers.get(watched_call(case)) or {}).get("seen")
        if not isinstance(seen, list):
            return None
        try:
            return [
                {
                    "helper": str(entry["helper"]),
                    "args": {str(k): decode(v) for k, v in entry["args"].items()},
                    "output": None if entry.get("output") is None else decode(entry["output"]),
                    "changed": [  # parameter names, as the student's process sent them
                        name
                        for name in entry.get("changed", [])[:8]
                        if isinstance(name, str) and name.isidentifier() and len(name) <= 60
                    ],
                }
                for entry in seen
            ]
        except (KeyError, TypeError, AttributeError, ValueError):
            return None


def _outcome(call) -> Outcome:
    try:
        with np.errstate(all="ignore"):
            return Outcome(call())
    except Exception as err:  # the student's code: any error is an answer
        return Outcome(error=f"{type(err).__name__}: {err}")


def part_call(case, part) -> str:
    return f"{case.name}@{part.station}"


def watched_call(case) -> str:
    return f"{case.name}@watched"


def calls(exercise, case, table: Mapping) -> list[dict]:
    """What the grader asks the scorer for to diagnose ``case`` (``table``: its references):
    every variant, each part's helper on the reference's inputs, and the function watched calling
    its helpers. Each call is ``{"case": name, "inputs": kwargs}``, with ``"function"`` to call a
    helper instead, or ``"watch"``: the helpers to watch."""
    out = [{"case": v.name, "inputs": v.inputs} for v in variants.of(exercise, case)]
    stations = {key.partition("::station::")[2]: value for key, value in _stations(table, case).items()}
    if exercise.parts and stations:
        for part in exercise.parts:
            try:
                inputs = part.args(case.inputs, stations)
            except (KeyError, IndexError, TypeError):
                continue
            out.append({"case": part_call(case, part), "inputs": inputs, "function": part.helper})
        out.append(
            {
                "case": watched_call(case),
                "inputs": case.inputs,
                "watch": sorted({p.helper for p in exercise.parts}),
            }
        )
    return out


# ---- the explanations ----------------------------------------------------------------------------


@dataclass
class _Wrong:
    """One wrong answer and what there is to compare it with."""

    exercise: object
    case: object
    actual: np.ndarray
    expected: np.ndarray
    table: Mapping
    student: Student
    cases: tuple = ()
    _variants: list | None = None

    def variant(self, what: str) -> list[variants.Variant]:
        if self._variants is None:
            self._variants = variants.of(self.exercise, self.case)
        return [v for v in self._variants if v.what == what]

    def reference(self, variant) -> np.ndarray | None:
        try:
            return np.asarray(self.table[f"{variant.name}::expected"])
        except (KeyError, ValueError, TypeError, ArithmeticError, IndexError):
            return None

    def right_on(self, variant) -> bool:
        """The student's function is right on ``variant`` (``False`` if it cannot be told)."""
        outcome, reference = self.student.run(variant), self.reference(variant)
        if outcome is None or outcome.error or reference is None:
            return False
        return _matches(self.exercise, outcome.value, reference)


def explain(exercise, case, actual, table: Mapping, student: Student | None = None, cases=()) -> str | None:
    """A structural explanation of why ``actual`` is wrong for ``case``, or ``None``; ``cases``
    are the exercise's others, to tell what sets this one apart."""
    expected = np.asarray(table[f"{case.name}::expected"])
    if exercise.kind == "text":
        return _text(exercise, case, actual, bytes(expected).decode("utf-8"), table, student or Student())
    wrong = _Wrong(exercise, case, np.asarray(actual), expected, table, student or Student(), cases)
    rules = (
        _shape,
        _overflow,
        _other_inputs,
        _at_limit,
        _values_seen,
        _int_off_by_one,
        _steps_reordered,
        _ignored,
        _batch,
        _precision,
        _non_finite,
        _applied_elsewhere,
        _relation,
        _combined,
        _term_scaled,
        _input_scaled,
        _product_with,
        _wrapped,
        _reversing,
        _rows_taken,
        _over_axis,
        _parts_missing,
        _shift_seen,
        _any_shape,
        _fixed_int,
        _apart,
        _scale_fitted,
        _sections,
        _localized,
        _not_a_distribution,
        _upstream,
    )
    for rule in rules:
        message = rule(wrong)
        if message:
            return message
    return None


def _upstream(w: _Wrong) -> str | None:
    """For an exercise with parts, when the output shows nothing more: the first station that
    differs, or what the function feeds a right helper (``stations``), as the message itself
    (not only as the line after "values differ")."""
    found = stations(w.exercise, w.case, w.table, w.student)
    return found if found.startswith(("Your `", "First station")) else None


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
    support = _support(a, e)
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
    largest = max(
        float(np.abs(v[np.isfinite(v)]).max())
        for v in w.case.inputs.values()
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.isfinite(v).any()
    )
    unknown = w.student.run(smaller[0]) is None  # the first pass of grading: judge by the sizes
    if w.right_on(smaller[0]) or (unknown and largest > 50):
        return (
            f"NaN or inf on large values (up to about {largest:.0f} here), right on small ones: an np.exp "
            "overflows; subtract each row's maximum first (it does not change the result)"
        )
    return None


def _reference_on(w: _Wrong, inputs: dict):
    """The reference's output on ``inputs`` (the case's, some changed), or ``None`` if it refuses
    them."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(w.exercise.reference(**copy.deepcopy(inputs)))
    except Exception:  # the reference refuses those inputs: nothing to compare with
        return None


def _holds(w: _Wrong, other) -> str | None:
    """``"all"`` if the output is ``other`` (within tolerance), ``"wrong"`` if it is ``other`` where
    it is wrong (and right elsewhere: one part of a packed output), else ``None``."""
    a, e = w.actual, w.expected
    if (
        other is None
        or other.shape != a.shape
        or a.dtype.kind not in "biuf"
        or other.dtype.kind not in "biuf"
    ):
        return None
    right, same = _near_each(w.exercise, a, e), _near_each(w.exercise, a, other)
    if right.all() or not same[~right].all():
        return None
    bad = np.asarray(a, np.float64)[~right]
    if not np.isfinite(bad).any() or not bad[np.isfinite(bad)].any():
        return None  # wrong only at inf, NaN or 0: too common a value to say where it comes from
    return "all" if same.all() else "wrong"


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


def _shown(case, name: str) -> bool:
    """The student may be told ``name``'s value on ``case``: a visible case, or a hidden one
    whose description gives it (never a seed, nor anything a description leaves out)."""
    return not case.hidden or f"{name} = " in case.describe


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


def _values_seen(w: _Wrong) -> str | None:
    """Right on every case where an int argument has one of a few values (two at least, on two
    cases at least), wrong here, where it has a value beyond them and no kind of input but that
    value sets the case apart: the code handles only the values it was tried on (a head count
    written in, a branch or a slice per value)."""
    right = _right_cases(w)
    if len(right) < 2:
        return None
    apart = _apart_kinds(w, right)
    names = {r.name for r in right}
    split = []
    for name, value in w.case.inputs.items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
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
    if len(ignored) == len(changed) > 1:
        return "your output does not change when any input does: does your function return a constant?"
    units = [unit for unit in dict.fromkeys(ignored) if not _moves_when_pushed(w, unit)]
    if not units:
        return None
    one = len(units) == 1
    if one and isinstance(w.case.inputs.get(units[0]), int | np.integer):
        fixed = _fixed_int(w)  # which number stands in for it, where the other cases tell
        if fixed:
            return fixed
    return (
        f"your function ignores {' or '.join(f'`{unit}`' for unit in units)}: changing {'it' if one else 'them'} "
        f"leaves your output as it is, while the reference's changes; does {'it' if one else 'each'} reach "
        "your result (not a default, a constant or a global in its place)?"
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


def _steps_reordered(w: _Wrong) -> str | None:
    """For a reference made of steps whose order matters (``Exercise.steps``): the output is the
    steps' in another order, here and on every other case the function gets wrong."""
    if w.exercise.steps is None or w.actual.shape != w.expected.shape:
        return None
    names, composed = w.exercise.steps
    for order in itertools.permutations(names):
        if order == tuple(names):
            continue
        other = _composed_on(composed(order), w.case.inputs)
        if other is None or _near(other, w.expected) or not _matches(w.exercise, w.actual, other):
            continue
        if not _everywhere(
            w,
            lambda case, value, order=order: _matches(
                w.exercise, value, _composed_on(composed(order), case.inputs)
            ),
        ):
            continue
        return (
            f"your output is what the steps give in the order {', '.join(order)}; the reference applies them "
            f"in the order {', '.join(names)}: each step changes what the next one sees, so apply them in "
            "that order"
        )
    return None


def _composed_on(fn, inputs: dict):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(**copy.deepcopy(inputs)))
    except Exception:  # that order refuses the inputs
        return None


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


NAMED = {
    -1.0: "-1: the sign is flipped",
    2.0: "2",
    0.5: "1/2",
    math.log(2): "ln 2",
    1 / math.log(2): "1/ln 2: a log base 2?",
    math.e: "e",
    1 / math.e: "1/e",
    8.0: "8: bits for bytes?",
    0.125: "1/8",
}
NAMED.update({math.sqrt(n): f"sqrt({n})" for n in range(2, 1025) if math.isqrt(n) ** 2 != n})
NAMED.update({1 / math.sqrt(n): f"1/sqrt({n})" for n in range(2, 1025) if math.isqrt(n) ** 2 != n})


def _named(c: float) -> str | None:
    return next((name for value, name in NAMED.items() if math.isclose(c, value, rel_tol=1e-4)), None)


CONSTANT_FACTOR = "a missing or extra constant factor"


def _relation(w: _Wrong) -> str | None:
    a, e = w.actual, w.expected
    if a.shape != e.shape or a.dtype.kind not in "iuf" or e.dtype.kind not in "iuf":
        return None
    loose = _near(a, e) and (w.exercise.atol > 0 or w.exercise.rtol > 0)
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
        or _reordered(a, e)
        or _term_reordered(a, e, _terms(w))
        or scaled
        or _powered(a, e, counts)
        or _per_row(a, e)
        or _transformed(a, e)
        or _added(a, e, _terms(w))
    )


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


def _axis_order(a, e, axis: int) -> list[int] | None:
    """The order along ``axis`` in which ``a`` holds ``e``'s slices (entry i of ``a`` is entry
    ``order[i]`` of ``e``), if ``a`` is ``e`` with its slices along that axis rearranged. The slices
    are paired by sorting one random projection of each (n log n, for the wide hidden cases too),
    and each pair is then checked."""
    if a.shape != e.shape or e.shape[axis] < 2:
        return None
    n = e.shape[axis]
    sa = np.moveaxis(np.asarray(a, np.float64), axis, 0).reshape(n, -1)  # (n, rest)
    se = np.moveaxis(np.asarray(e, np.float64), axis, 0).reshape(n, -1)
    if not (np.isfinite(sa).all() and np.isfinite(se).all()):
        return None
    w = np.random.default_rng(0).normal(size=sa.shape[1])  # (rest,)
    order = np.empty(n, dtype=int)
    order[np.argsort(sa @ w, kind="stable")] = np.argsort(se @ w, kind="stable")
    if (order == np.arange(n)).all() or not all(_near(x, y) for x, y in zip(sa, se[order], strict=True)):
        return None
    return order.tolist()


def _order_words(a, e, axis: int, order: list[int]) -> str:
    """How an order differs from the reference's, in words."""
    if order == sorted(order, reverse=True):
        return "reversed"
    if e.ndim == 1 or e.shape[axis] == e.size:
        if _near(a, np.sort(e, axis=axis)):
            return "sorted in ascending order: keep the input's order, do not sort"
        if _near(a, np.flip(np.sort(e, axis=axis), axis)):
            return "sorted in descending order: keep the input's order, do not sort"
    n = len(order)
    for k in range(1, n):
        if order == [(i + k) % n for i in range(n)] or order == [(i - k) % n for i in range(n)]:
            return "rolled (a cyclic shift: np.roll, or an index taken modulo the length?)"
    shown = ", ".join(map(str, order[:8])) + (", ..." if n > 8 else "")
    return f"yours are the reference's in the order {shown}"


def _reordered(a, e) -> str | None:
    """Exactly the reference's values, in another order: along one axis (its rows, its heads, its
    positions in another order, a sequence reversed or sorted), or scattered."""
    if a.shape != e.shape or e.size < 2 or _near(a, e):
        return None
    fa, fe = np.sort(a, axis=None), np.sort(e, axis=None)
    if not _near(fa, fe):
        return None
    for axis in range(-e.ndim, 0):
        order = _axis_order(a, e, axis)
        if order is not None:
            what = "entries" if e.ndim == 1 else "slices (rows, heads, positions...)"
            return (
                f"your output holds exactly the reference's values, but its {what} along axis {axis} are in "
                f"another order ({_order_words(a, e, axis, order)}): keep the order along axis {axis}"
            )
    return (
        "your output holds exactly the reference's values, but in other places (not one axis in another "
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
    if ef.size >= 2 and not math.isclose(offset, 0, abs_tol=1e-6) and _near(af, ef + offset):
        return f"your output is the reference plus {offset:.4g} everywhere: a missing or extra constant term"
    return None


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


# ---- a factor that is a ratio of counts: a sum divided by the wrong number of terms --------------


def _counts(inputs: dict) -> dict[int, str]:
    """The counts the inputs give, each with where it comes from: an int argument, an array's size
    along an axis, or one less (``"8: `ids`'s axis -1, minus 1"``); the first place names a count
    found in several."""
    found: dict[int, str] = {}
    sizes = [
        (v, f"`{n}`")
        for n, v in inputs.items()
        if isinstance(v, int | np.integer) and not isinstance(v, bool)
    ]
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            sizes += [(n, f"`{name}`'s axis {axis - value.ndim}") for axis, n in enumerate(value.shape)]
    for n, where in sizes:
        found.setdefault(int(n), where)
    for n, where in sizes:
        found.setdefault(int(n) - 1, f"{where}, minus 1")
    return {n: where for n, where in found.items() if 2 <= n <= MAX_COUNT}


MAX_COUNT = 100_000  # larger ints are seeds or budgets, not counts of terms
MIN_FACTOR = 4  # on an array, a factor of 2 or 3 is as often a constant as a count


def _counted(c: float, counts: dict, least: int = 2) -> str | None:
    """``c`` as a ratio of counts (each at least ``least``), in words that follow "your output
    is the reference": times n (a sum where the reference averages), divided by n, or divided by
    a count one off from the reference's (n where n - 1 belongs)."""
    for n, where in counts.items():
        if n < least:
            continue
        if math.isclose(c, n, rel_tol=1e-5):
            return (
                f"times {n} ({n}: {where}): a sum where the reference averages? divide by the number "
                "of terms you add up"
            )
        if math.isclose(c, 1 / n, rel_tol=1e-5):
            return (
                f"divided by {n} ({n}: {where}): an average where the reference sums, or one division "
                "too many?"
            )
    for (p, over), (q, under) in itertools.permutations(counts.items(), 2):
        if abs(p - q) == 1 and min(p, q) >= least and math.isclose(c, p / q, rel_tol=1e-5):
            return (
                f"times {p}/{q}: you divide by {q} ({under}) where the reference divides by {p} "
                f"({over}); divide by the number of terms you add up"
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


def _per_row(a, e) -> str | None:
    """The reference off by a constant or a factor of each row's own, or by one vector (a value
    per feature) on every row. A row of its own needs two rows off: one wrong row is a place."""
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
            below = bool(
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
    """The reference through exp, log, an activation (GELU, ReLU...) or a softmax over the last
    axis (or the other way)."""
    if e.ndim == 0 or e.shape[-1] < 2 or not np.isfinite(e).all():
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
    if _near(a, _softmax(e)):
        return (
            "you returned probabilities (a softmax over the last axis) where logits or scores are asked for"
        )
    if _near(_softmax(a), e) and not _near(a, e):
        return (
            "the softmax of your output is the reference: apply the softmax (or drop a step that undoes it)"
        )
    return None


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


def _input_scaled(w: _Wrong) -> str | None:
    """The reference's output with one float input times a factor the inputs' sizes give (n,
    1/n, sqrt(n), 1/sqrt(n)), and perhaps the result times the inverse: a scale applied to the
    wrong thing (to the output of a softmax where it belongs on the scores, by d where sqrt(d_head)
    belongs, to one input where it belongs on another)."""
    a, e = w.actual, w.expected
    if a.shape != e.shape or e.size < 2 or a.dtype.kind != "f" or not np.isfinite(a).any():
        return None
    counts = {n: where for n, where in _counts(w.case.inputs).items() if n <= 4096}
    factors = []
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
                    return (
                        f"your output is the reference's without `{other}` (at {neutral}), then {words} `{other}`: "
                        f"you apply `{other}` to the result, where the reference applies it to the input "
                        f"`{name}`, before the other steps"
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


MAX_TERMS = 256  # items a reduction is split into (``Exercise.terms``), each a call of the reference

# Ways to reduce n values to one, as (name, how it is computed): the means and the sum.
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


def _sizes(inputs: dict) -> dict[str, int]:
    """The sizes among the inputs, by name: int arguments, and the int attributes of an object
    argument (a config's ``d_model``, ``d_head``...)."""
    found = {}
    for name, value in inputs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | np.integer):
            found[f"`{name}`"] = int(value)
        elif hasattr(value, "__dataclass_fields__"):
            for attr in dir(value):
                if attr.startswith("_"):
                    continue
                try:
                    x = getattr(value, attr)
                except Exception:  # a property that refuses this config
                    continue
                if isinstance(x, int | np.integer) and not isinstance(x, bool) and x > 0:
                    found[f"`{name}.{attr}`"] = int(x)
    return found


def _slope_ratio(w: _Wrong, case, name: str, actual) -> float | None:
    """Where the reference's number is affine in the int argument ``name`` (``A + B * n``): the
    factor ``c`` on its term that grows with ``name`` that gives ``actual`` (``A + c * B * n``)."""
    n = case.inputs.get(name)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        return None
    try:
        with np.errstate(all="ignore"):
            r = [float(w.exercise.reference(**copy.deepcopy({**case.inputs, name: n + i}))) for i in range(3)]
        a = float(np.asarray(actual))
    except Exception:  # the reference refuses those values, or the output is not one number
        return None
    slope = r[1] - r[0]
    if not slope or not math.isclose(r[2] - r[1], slope, rel_tol=1e-9) or not math.isfinite(a):
        return None
    return (a - (r[0] - slope * n)) / (slope * n)


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


MAX_FITTED = (
    3  # float inputs a scale is fitted on (``_scale_fitted``), each in about 30 calls of the reference
)


def _size_places(inputs: dict) -> dict[str, int]:
    """Every size the inputs give, by where it comes from: an int argument, an array's axis, the
    sum of two axes of different arrays (the keys' length: cache and new ones)."""
    found = {
        f"`{n}`": int(v)
        for n, v in inputs.items()
        if isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 < v <= MAX_COUNT
    }
    axes = [
        (f"`{name}`'s axis {axis - v.ndim}", name, int(v.shape[axis]))
        for name, v in inputs.items()
        if isinstance(v, np.ndarray)
        for axis in range(v.ndim)
    ]
    found.update({where: n for where, _, n in axes if n > 0})
    for (x, a, p), (y, b, q) in itertools.combinations(axes, 2):
        if a != b and x.rpartition(" ")[2] == y.rpartition(" ")[2] and p + q > 0:  # along the same axis
            found.setdefault(f"{x} + {y}", p + q)
    return found


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


# ---- a statistic over the wrong axis, a count short by one tensor, a number written in ---------


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


def _tensor_groups(config) -> dict[str, int]:
    """The sizes of a config's checkpoint tensors, by name: each kind of tensor (a weight, a
    bias, a gain) of a module in every block together, a module's weight and bias together, a
    part of every block (its attention, its MLP), and every norm's bias or gain."""
    try:
        from lib.checkpoint import checkpoint_layout

        layout = checkpoint_layout(config)
    except Exception:
        return {}
    groups: dict[str, int] = {}

    def add(key, n):
        groups[key] = groups.get(key, 0) + n

    for shape, path, _ in layout.values():
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
        if module.startswith("ln") or "norm" in module:
            add(f"every norm's {kind or 'weight'} (two per block and the final one)", n)
    return groups


def _right_cases(w: _Wrong) -> list:
    """The exercise's other cases the student's function gets right (dtype too)."""
    right = []
    for case in w.cases:
        if case.name == w.case.name or case.raises is not None or f"{case.name}::expected" not in w.table:
            continue
        outcome = w.student.on(case)
        if (
            outcome is not None
            and not outcome.error
            and _matches(w.exercise, outcome.value, w.table[f"{case.name}::expected"], dtype=True)
        ):
            right.append(case)
    return right


def _fixed_int(w: _Wrong) -> str | None:
    """Right on the cases where an int argument has one value (two at least, or one if the
    reference with that value in place of the argument gives this wrong answer), wrong on this
    one, where it has another: that value is written in the code in place of the argument."""
    return _fixed_in(w.case, w.cases, _right_cases(w), "wrong", _as_if_fixed(w, raised=False))


def _as_if_fixed(w: _Wrong, raised: bool) -> Callable[[str, int], bool]:
    """Whether the reference, called on this case with ``value`` in place of argument ``name``,
    does what the student's function did: gives its output (within tolerance), or raises too
    (``raised``: the student's function raised)."""

    def same(name: str, value: int) -> bool:
        try:
            with np.errstate(all="ignore"):
                out = w.exercise.reference(**copy.deepcopy({**w.case.inputs, name: value}))
        except Exception:  # the reference refuses that value here: so would the function
            return raised
        return not raised and _matches(w.exercise, w.actual, out)

    return same


def _fixed_in(case, cases, right: list, how: str, as_if_fixed=None) -> str | None:
    """The int argument whose value splits the cases as the function's answers do (right on
    every case where it is ``v``, on two at least, or on one if ``as_if_fixed(name, v)``: the
    reference with ``v`` written in does what the function did on ``case``; wrong where it is
    not), if one alone does."""
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


def _apart(w: _Wrong) -> str | None:
    """What kinds of input (``grader.kinds``) this case has that every case the function gets
    right lacks, if there are a few."""
    right = _right_cases(w)
    if not right:
        return None
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
    if e.ndim >= 2 and min(e.shape[-2:]) >= 2 and max(e.shape[-2:]) >= 3:
        rows, cols = np.indices(e.shape[-2:])
        where = np.broadcast_to(cols - rows, e.shape)
        for test, text in (
            (where > 0, "only above the diagonal (the entries a causal mask hides)"),
            (where < 0, "only below the diagonal"),
            (where == 0, "only on the diagonal (each position with itself)"),
        ):
            if (wrong <= test).all():
                return f"your output is wrong {text}: look at your mask"
    found = []
    for axis in range(e.ndim):
        bad = wrong.any(axis=tuple(i for i in range(e.ndim) if i != axis)).tolist()
        text = _pattern(bad, axis - e.ndim)
        if text:
            found.append(text)
    if found:
        return f"your output is wrong {' and '.join(found[-2:])}: look at what your code does there"
    return None


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
            "wrong factor: a scale, a frequency, an exponent?)",
        ),
        (4, [i % 2 == 1 for i in range(n)], "only at the odd indices along axis {a}"),
        (4, [i % 2 == 0 for i in range(n)], "only at the even indices along axis {a}"),
    )
    return next(
        (text.format(a=axis) for least, pattern, text in patterns if n >= least and bad == pattern), None
    )


# ---- text ----------------------------------------------------------------------------------------


def _text(exercise, case, actual, expected: str, table, student) -> str | None:
    if not isinstance(actual, str):
        return None
    for variant in variants.of(exercise, case):
        if variant.what != "changed":
            continue
        outcome = student.run(variant)
        try:
            reference = bytes(table[f"{variant.name}::expected"]).decode("utf-8")
        except (KeyError, TypeError, ValueError):
            continue
        if (
            outcome is not None
            and isinstance(outcome.value, str)
            and outcome.value == actual
            and reference != expected
        ):
            return f"your function ignores `{variant.unit}`: changing it leaves your text as it is; use the {variant.unit} you are given"
    if actual == expected[1:] or actual == expected[:-1]:
        return f"your text is the reference without its {'first' if actual == expected[1:] else 'last'} character: an off-by-one?"
    if actual[1:] == expected or actual[:-1] == expected:
        return "your text has one character too many: an off-by-one?"
    if actual.lower() == expected.lower():
        return "the letters are right but not their case: keep each character as the table gives it"
    return None


# ---- the first intermediate that differs ----------------------------------------------------------


def stations(exercise, case, table: Mapping, student: Student) -> str:
    """For an exercise with parts: the first station where the student's work differs, and why."""
    if not exercise.parts:
        return ""
    known = {name.partition("::station::")[2]: value for name, value in _stations(table, case).items()}
    if not known:
        return ""
    seen = student.watched(case)
    helpers = {part.helper for part in exercise.parts}
    clobbered = next(
        ((e["helper"], e["changed"][0]) for e in seen or [] if e.get("changed") and e["helper"] in helpers),
        None,
    )
    if clobbered:
        helper, name = clobbered
        return (
            f"Your `{helper}` changes its argument `{name}` in place: the array `{exercise.name}` gave it "
            f"is overwritten, and any later use of it (a residual stream?) reads the new values; compute "
            f"into a new array (`{name} = {name} - m`, not `{name} -= m`)"
        )
    used, compared = {}, False
    for part in exercise.parts:
        if part.station not in known:
            continue
        try:
            inputs = part.args(case.inputs, known)
        except (KeyError, IndexError, TypeError):
            continue
        outcome = student.helper(case, part, inputs)
        compared = compared or outcome is not None
        if outcome is not None and outcome.error:
            # As for the function itself (``compare.grade``): on a hidden case, the type only, since
            # a message could carry the case's inputs, or the stations it was given, to the student.
            raised = outcome.error.partition(":")[0] if case.hidden else outcome.error
            return f"First station that fails: {part.station} (your `{part.helper}` raised {raised})"
        if outcome is not None and not _matches(exercise, outcome.value, known[part.station]):
            return f"First station that differs from the reference: {part.station} (computed by your `{part.helper}`)"
        fed = [entry["args"] for entry in seen or [] if entry["helper"] == part.helper]
        unused = [i for i in range(len(fed)) if i not in used.setdefault(part.helper, set())]
        needed = {name: value for name, value in inputs.items() if isinstance(value, np.ndarray)}
        if outcome is None or not unused or not needed:
            continue
        alike = next((i for i in unused if _fed_alike(exercise, fed[i], needed)), None)
        used[part.helper].add(unused[0] if alike is None else alike)
        if alike is not None:
            continue
        args = fed[unused[0]]
        for name, value in needed.items():
            given = args.get(name)
            if given is not None and not _matches(exercise, given, value):
                fed_wrong = _fed_wrong(given, value, name, known, case.inputs)
                other = next(
                    (
                        n
                        for n, v in needed.items()
                        if n != name
                        and args.get(n) is not None
                        and _matches(exercise, args[n], value)
                        and _matches(exercise, given, v)
                    ),
                    None,
                )
                if other:
                    fed_wrong += f", and the reverse for its `{other}`: `{name}` and `{other}` are swapped"
                return f"Your `{part.helper}` is right, but `{exercise.name}` feeds it {fed_wrong}"
    if not compared:
        return ""
    return "Every station before the output matches: look at how they are combined."


def _fed_wrong(given, value, name: str, known: dict, inputs: dict) -> str:
    """What a helper was fed as its argument ``name`` instead of ``value``, in words: by the
    station or input it equals, where there is one, else by its shape."""
    what, want = _which(given, known, inputs), _which(value, known, inputs)
    if what and want:
        return f"{what} where it needs {want} (its `{name}`)"
    if what:
        return f"{what} as its `{name}`, which is not what the reference feeds it"
    shapes = np.shape(given), np.shape(value)
    same_size = math.prod(shapes[0]) == math.prod(shapes[1])
    differ = (
        f" (shape {shapes[0]}, where the reference's has shape {shapes[1]}"
        + (
            ": as many entries, split into other axes: another number of heads, or a reshape in another order?)"
            if same_size
            else ")"
        )
        if shapes[0] != shapes[1]
        else " (off by the same vector at every position: a bias missing or extra?)"
        if _off_by_one_vector(given, value)
        else ""
    )
    if want:
        return f"something other than {want} as its `{name}`{differ}"
    return f"another `{name}` than the reference feeds it{differ}"


def _off_by_one_vector(given, value) -> bool:
    """``given`` is ``value`` plus one nonzero vector, the same at every position (a bias)."""
    given, value = np.asarray(given, dtype=np.float64), np.asarray(value, dtype=np.float64)
    if given.ndim < 2 or given.shape != value.shape:
        return False
    rows = (given - value).reshape(-1, given.shape[-1])
    return bool(
        np.all(np.isfinite(rows))
        and np.allclose(rows, rows[0], rtol=RTOL, atol=ATOL)
        and not np.allclose(rows[0], 0, atol=ATOL)
    )


def _fed_alike(exercise, args: dict, needed: dict) -> bool:
    return all(name in args and _matches(exercise, args[name], value) for name, value in needed.items())


def _stations(table: Mapping, case) -> dict:
    prefix = f"{case.name}::station::"
    try:
        return {key: table[key] for key in table if key.startswith(prefix)}
    except (KeyError, TypeError):
        return {}


def _which(value, known: dict, inputs: dict) -> str | None:
    for name, candidate in list(known.items()) + [
        (n, v) for n, v in inputs.items() if isinstance(v, np.ndarray)
    ]:
        candidate = np.asarray(candidate)
        if candidate.shape == np.shape(value) and _near(
            np.asarray(value, np.float64), candidate.astype(np.float64)
        ):
            return name if name in known else f"the input `{name}`"
    return None


# ---- comparing -------------------------------------------------------------------------------------


def _matches(exercise, value, reference, exact=False, dtype=False) -> bool:
    """``value`` equals ``reference`` within the exercise's tolerance (text: exactly); with
    ``dtype``, in the dtype the exercise asks for too."""
    if isinstance(reference, str) or isinstance(value, str):
        return value == reference
    try:
        value, reference = np.asarray(value), np.asarray(reference)
        if value.dtype.kind not in "biuf" or value.shape != reference.shape:
            return False
        if dtype and exercise.check_dtype is True and value.dtype != reference.dtype:
            return False
        rtol, atol = (0.0, 0.0) if exact else (exercise.rtol, exercise.atol)
        return bool(np.allclose(value, reference, rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _near(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size == 0:
        return False
    scale = float(np.abs(b[np.isfinite(b)]).max()) if np.isfinite(b).any() else 1.0
    return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL * max(1.0, scale), equal_nan=True))


def _near_each(exercise, a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isclose(a, b, rtol=exercise.rtol, atol=exercise.atol, equal_nan=True)


def _slice(a, axis, start, stop):
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def _softmax(x):
    with np.errstate(all="ignore"):
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


def explain_error(exercise, case, table: Mapping, student: Student, cases=()) -> str:
    """What the variants, and the other ``cases``, show when the function raised on ``case``
    (``""`` if nothing)."""
    w = _Wrong(exercise, case, np.zeros(0), np.zeros(0), table, student, cases)
    if any(w.right_on(v) for v in w.variant("one-sequence")):
        return (
            " It works on one sequence: treat every leading axis as a batch axis (count axes from the end)."
        )
    for variant in w.variant("float64") + w.variant("float32"):
        if w.right_on(variant):
            return f" It works in {variant.what}: look for what depends on the dtype."
    fixed = _fixed_in(case, cases, _right_cases(w), "it fails", _as_if_fixed(w, raised=True))
    return f" {fixed[0].upper()}{fixed[1:]}" if fixed else ""
