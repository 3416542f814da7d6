"""The driver: runs the rules of every family in order and returns the first message, for a
wrong answer (``explain``) and for an error (``explain_error``); text outputs have their own few
rules."""

from collections.abc import Mapping

import numpy as np

from .. import variants
from .cases import (
    _apart,
    _as_if_fixed,
    _fixed_in,
    _fixed_int,
    _lengths_seen,
    _other_draws,
    _telling_right_cases,
    _values_seen,
)
from .core import Student, _Wrong
from .inputs import (
    _at_limit,
    _ignored,
    _input_scaled,
    _int_off_by_one,
    _normalisation_missing,
    _other_inputs,
    _scale_fitted,
    _shift_seen,
    _stabiliser_misused,
)
from .numeric import (
    _floored,
    _narrowed,
    _non_finite,
    _not_a_distribution,
    _overflow,
    _precision,
    _softmaxed_again,
    _truncated,
    _wrapped,
)
from .order import _applied_elsewhere, _combined, _steps_reordered
from .parts import _upstream
from .shapes import (
    _any_shape,
    _batch,
    _blocks_repeated,
    _column_factors,
    _localized,
    _over_axis,
    _reversing,
    _rows_taken,
    _sections,
    _shape,
)
from .values import (
    _growing_scaled,
    _normalised_again,
    _parts_missing,
    _product_with,
    _relation,
    _rest_scaled,
    _term_scaled,
)


def explain(exercise, case, actual, table: Mapping, student: Student | None = None, cases=()) -> str | None:
    """A structural explanation of why ``actual`` is wrong for ``case``, or ``None``; ``cases``
    are the exercise's others, to tell what sets this one apart."""
    expected = np.asarray(table[f"{case.name}::expected"])
    if exercise.kind == "text":
        return _text(exercise, case, actual, bytes(expected).decode("utf-8"), table, student or Student())
    wrong = _Wrong(exercise, case, np.asarray(actual), expected, table, student or Student(), cases)
    rules = (
        _shape,
        _narrowed,
        _truncated,
        _overflow,
        _softmaxed_again,
        _other_inputs,
        _at_limit,
        _other_draws,
        _values_seen,
        _int_off_by_one,
        _steps_reordered,
        _ignored,
        _stabiliser_misused,
        _batch,
        _precision,
        _floored,
        _non_finite,
        _applied_elsewhere,
        _normalisation_missing,
        _relation,
        _normalised_again,
        _combined,
        _term_scaled,
        _rest_scaled,
        _growing_scaled,
        _input_scaled,
        _product_with,
        _wrapped,
        _reversing,
        _rows_taken,
        _over_axis,
        _column_factors,
        _parts_missing,
        _shift_seen,
        _any_shape,
        _fixed_int,
        _lengths_seen,
        _apart,
        _scale_fitted,
        _blocks_repeated,
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


def _text(exercise, case, actual, expected: str, table, student) -> str | None:
    if not isinstance(actual, str):
        return None
    return _text_relation(actual, expected) or _text_ignored(exercise, case, actual, expected, table, student)


def _text_relation(actual: str, expected: str) -> str | None:
    """The reference's text with a character cut or added at an end, whitespace stripped, letters
    in another case, a separator between the characters, or printed as a list."""
    if actual == expected[1:] or actual == expected[:-1]:
        return f"your text is the reference without its {'first' if actual == expected[1:] else 'last'} character: an off-by-one?"
    if actual[1:] == expected or actual[:-1] == expected:
        return "your text has one character too many: an off-by-one?"
    if actual != expected and actual in (expected.strip(), expected.lstrip(), expected.rstrip()):
        return (
            "your text is the reference without the spaces or newlines at its start or end (a .strip()?): "
            "keep every character, whitespace too"
        )
    if actual.lower() == expected.lower():
        return "the letters are right but not their case: keep each character as the table gives it"
    if len(expected) >= 2 and len(actual) > len(expected):
        gap, rest = divmod(len(actual) - len(expected), len(expected) - 1)
        between = actual[1 : 1 + gap]
        if gap and not rest and between.join(expected) == actual:
            return (  # not the separator itself: on a hidden case it is the student's code's to choose
                "your text has the same separator between every two characters: join them with nothing in "
                'between ("".join(...))'
            )
    if actual in (str(list(expected)), str(tuple(expected)), str(np.array(list(expected)))):
        return (
            "your text is the printed form of a list of characters (str() of a list or an array): join the "
            'characters into one string with "".join(...)'
        )
    if sorted(actual) == sorted(expected):
        return (
            "your text has the right characters but in another order: keep the order of the ids "
            "(no sorting, reversing or set in between)"
        )
    return None


def _text_ignored(exercise, case, actual: str, expected: str, table, student) -> str | None:
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
    return None


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
    fixed = _fixed_in(case, cases, _telling_right_cases(w), "it fails", _as_if_fixed(w, raised=True))
    return f" {fixed[0].upper()}{fixed[1:]}" if fixed else ""
