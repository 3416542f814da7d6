"""Compare a student's output with the reference, and say what is wrong.

The same code serves the visible checks (inside the student's kernel, against the stored
references) and the grader (outside every sandbox, on the outputs the scorer returned, against
references computed there). A diagnosis goes from the most specific to the most general: a known
mistake, then shape, then dtype, then the size and place of the largest error.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import exercises, keys
from .exercise import Case, Exercise
from .wire import decode


@dataclass(frozen=True)
class Verdict:
    """``status`` is a ``results.Row`` status: ``graded``, ``wrong``, ``timeout`` or ``kernel_died``."""

    ok: bool
    reason: str
    status: str


def describe(a: np.ndarray) -> str:
    return f"shape {a.shape}, dtype {a.dtype}"


def close(exercise: Exercise, actual: np.ndarray, expected: np.ndarray) -> bool:
    return actual.shape == expected.shape and bool(
        np.allclose(actual, expected, rtol=exercise.rtol, atol=exercise.atol, equal_nan=False)
    )


def diagnose(exercise: Exercise, case: str, actual, stored: Mapping) -> str | None:
    """``None`` if ``actual`` is right for ``case``, else a message for the student."""
    expected = stored[f"{case}::expected"]
    if exercise.kind == "text":
        return _diagnose_text(exercise, case, actual, stored)
    try:
        actual = np.asarray(actual)
        if actual.dtype.kind not in "biuf":
            raise TypeError
    except (TypeError, ValueError):
        return f"expected an array ({describe(expected)}), got {type(actual).__name__}"
    if close(exercise, actual, expected):
        if exercise.check_dtype and actual.dtype != expected.dtype:
            return (
                f"the values are right but the dtype is {actual.dtype}, expected {expected.dtype}: "
                "keep the input's dtype (a float64 constant or np.float64 scalar can upcast float32)"
            )
        return None
    for mistake in exercise.mistakes:
        signature = stored.get(f"{case}::mistake::{mistake.name}")
        if signature is not None and close(exercise, actual, signature):
            return mistake.hint
    if actual.shape != expected.shape:
        hint = " (transposed?)" if actual.shape == expected.shape[::-1] and actual.ndim > 1 else ""
        return f"wrong shape{hint}: expected {expected.shape}, got {actual.shape}"
    if actual.dtype.kind == "f" and (np.isfinite(actual) != np.isfinite(expected)).any():
        where = np.argwhere(np.isfinite(actual) != np.isfinite(expected))[0]
        return (
            f"NaN or inf in the wrong places: at index {tuple(int(i) for i in where)} you have "
            f"{actual[tuple(where)]}, the reference has {expected[tuple(where)]}"
        )
    both = (
        np.isfinite(expected) & np.isfinite(actual)
        if actual.dtype.kind == "f"
        else np.ones(actual.shape, bool)
    )
    error = np.where(both, np.abs(actual.astype(np.float64) - expected.astype(np.float64)), 0.0)
    where = np.unravel_index(np.argmax(error), error.shape)
    wrong = error > exercise.atol + exercise.rtol * np.where(both, np.abs(expected), 0)
    return (
        f"values differ: largest error {error[where]:.3g} at index {tuple(int(i) for i in where)} "
        f"({int(wrong.sum())} of {error.size} entries wrong)"
    )


def _diagnose_text(exercise: Exercise, case: str, actual, stored: Mapping) -> str | None:
    expected = bytes(stored[f"{case}::expected"]).decode("utf-8")
    if not isinstance(actual, str):
        return f"expected a str, got {type(actual).__name__}"
    if actual == expected:
        return None
    for mistake in exercise.mistakes:
        signature = stored.get(f"{case}::mistake::{mistake.name}")
        if signature is not None and actual == bytes(signature).decode("utf-8"):
            return mistake.hint
    i = next(
        (i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b),
        min(len(actual), len(expected)),
    )
    return (
        f"text differs from character {i} on: expected {expected[i : i + 12]!r}, got {actual[i : i + 12]!r} "
        f"(lengths {len(expected)} and {len(actual)})"
    )


# ---- outputs the scorer returned, graded outside it ---------------------------------------------


def grade(
    exercise_id: str,
    cases: list[Case],
    answers: dict[str, dict],
    references: Mapping,
    missing: tuple[str, str] = ("wrong", "no answer came back"),
) -> Verdict:
    """Grade the answers the scorer returned for one exercise, case by case, in order.

    ``answers`` maps a case name to what came back for it: ``{"output": record}`` (a ``wire``
    record), ``{"error": "TypeError: ...", "line": ...}`` or ``{"timeout": seconds}``. A case with
    nothing gets ``missing`` (its status and why). The reason is safe to show a student: hidden
    cases appear only by their description.
    """
    exercise = exercises.get(exercise_id)
    for case in cases:
        label = f"hidden case ({case.describe})" if case.hidden else f"case '{case.name}'"
        answer = answers.get(case.name)
        if not answer:
            return Verdict(
                False, missing[1] if exercise.kind == "choice" else f"{label}: {missing[1]}", missing[0]
            )
        if exercise.kind == "choice":
            return _grade_choice(exercise_id, exercise, answer)
        if "timeout" in answer:
            return Verdict(
                False,
                f"{label}: your function ran longer than {answer['timeout']:g} s and was interrupted",
                "timeout",
            )
        if answer.get("error", "").startswith("NotImplementedError"):
            return Verdict(
                False, f"{label}: not written yet (your function still raises NotImplementedError)", "wrong"
            )
        if "error" in answer:
            hints = "".join(f" Hint: {h}" for h in exercise.hints_for(answer["error"]))
            where = f" (line {answer['line']})" if answer.get("line") else ""
            return Verdict(False, f"{label}: your function raised {answer['error']}{where}{hints}", "wrong")
        try:
            actual = decode(answer.get("output"))
        except ValueError as err:
            return Verdict(False, f"{label}: unreadable answer ({err})", "wrong")
        message = diagnose(exercise, case.name, actual, references)
        if message:
            return Verdict(False, f"{label}: {message}", "wrong")
    return Verdict(True, f"all {len(cases)} cases match the reference", "graded")


def _grade_choice(exercise_id: str, exercise: Exercise, answer: dict) -> Verdict:
    given = answer.get("output") or {}
    if not isinstance(given.get("value"), str):
        return Verdict(False, answer.get("error") or "no answer given", "wrong")
    key = keys.concept(exercise_id)
    if given["value"] == key.answer:
        return Verdict(True, f"correct. {key.explain}", "graded")
    return Verdict(False, f"{given['value'][:20]!r} is not the answer. {key.explain}", "wrong")
