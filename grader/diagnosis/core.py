"""The student's side and comparing: what a diagnosis asks the student's function (``Student``:
``InKernel`` in the notebook's check, ``Returned`` in the grader), the calls the grader asks the
scorer for (``calls``), one wrong answer with what it is compared with (``_Wrong``), and the
comparisons and reference calls every family of rule shares."""

import builtins
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .. import variants, watch
from ..wire import decode

RTOL, ATOL = 1e-4, 1e-5  # for relations computed from the reference, looser than a plain check


@dataclass(frozen=True)
class Outcome:
    """What the student's function did: returned ``value``, or raised ``error`` (``"Type: msg"``)."""

    value: object = None
    error: str | None = None


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
    _right: list | None = None

    def all_variants(self) -> list[variants.Variant]:
        if self._variants is None:
            self._variants = variants.of(self.exercise, self.case)
        return self._variants

    def variant(self, what: str) -> list[variants.Variant]:
        return [v for v in self.all_variants() if v.what == what]

    def reference(self, variant) -> np.ndarray | None:
        try:
            return np.asarray(self.table[f"{variant.name}::expected"])
        except (KeyError, ValueError, TypeError, ArithmeticError, IndexError):
            return None

    def right_cases(self) -> list:
        """The exercise's other cases the student's function gets right (dtype too), run once."""
        if self._right is None:
            self._right = [
                case
                for case in self.cases
                if case.name != self.case.name
                and case.raises is None
                and f"{case.name}::expected" in self.table
                and _right_outcome(self.exercise, self.student.on(case), self.table[f"{case.name}::expected"])
            ]
        return self._right

    def right_on(self, variant) -> bool:
        """The student's function is right on ``variant`` (``False`` if it cannot be told)."""
        outcome, reference = self.student.run(variant), self.reference(variant)
        if outcome is None or outcome.error or reference is None:
            return False
        return _matches(self.exercise, outcome.value, reference)


def _right_outcome(exercise, outcome, expected) -> bool:
    return (
        outcome is not None and not outcome.error and _matches(exercise, outcome.value, expected, dtype=True)
    )


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


# The exception types a hidden case's reason may name: Python's and NumPy's own. Any other is a
# class the student's code defined, whose name (any text, hundreds of characters) the student chose
# on the hidden inputs: it is named by what it is.
KNOWN_ERRORS = frozenset(
    name
    for module in (builtins, np.exceptions, np.linalg)
    for name, value in vars(module).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
OWN_ERROR = "an exception of a class your code defines"


def error_type(error: str) -> str:
    """What a hidden case's reason says was raised (``error``: ``"Type: message"``): the type, if
    it is one of Python's or NumPy's (a choice among a fixed few), never the message."""
    name = error.partition(":")[0]
    return name if name in KNOWN_ERRORS else OWN_ERROR


def _shown(case, name: str) -> bool:
    """The student may be told ``name``'s value on ``case``: a visible case, or a hidden one
    whose description gives it (never a seed, nor anything a description leaves out)."""
    return not case.hidden or f"{name} = " in case.describe


def _composed_on(fn, inputs: dict):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(**copy.deepcopy(inputs)))
    except Exception:  # that order refuses the inputs
        return None


def _stations(table: Mapping, case) -> dict:
    prefix = f"{case.name}::station::"
    try:
        return {key: table[key] for key in table if key.startswith(prefix)}
    except (KeyError, TypeError):
        return {}


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
        rtol, atol = (0.0, 0.0) if exact else (exercise.rtol, exercise.atol_on(reference))
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
    atol = exercise.atol_on(b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isclose(a, b, rtol=exercise.rtol, atol=atol, equal_nan=True)


def _slice(a, axis, start, stop):
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def _softmax(x):
    with np.errstate(all="ignore"):
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


def contradicted(exercise, case, student: Student | None, wrong: Callable) -> bool:
    """On a variant of ``case``, the known mistake ``wrong`` gives a wrong answer and the
    student's function another wrong one: a match of the mistake on the case itself is a
    coincidence (two mistakes that agree there)."""
    if student is None:
        return False
    for variant in variants.of(exercise, case):
        outcome = student.run(variant)
        if outcome is None or outcome.error:
            continue
        reference = _called_on(exercise.reference, variant.inputs)
        theirs = _called_on(wrong, variant.inputs)
        if reference is None or theirs is None or _matches(exercise, theirs, reference):
            continue
        if not _matches(exercise, outcome.value, reference) and not _matches(exercise, outcome.value, theirs):
            return True
    return False


def _called_on(fn, inputs: dict):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(**copy.deepcopy(inputs)))
    except Exception:  # it refuses those inputs: nothing to compare with
        return None
