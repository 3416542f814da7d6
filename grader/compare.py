"""Compare a student's output with the stored reference, and say what is wrong.

The same code serves the visible checks (inside the student's kernel) and the autograder (outside
it, on answers the kernel recorded). A diagnosis goes from the most specific to the most general:
a known mistake, then shape, then dtype, then the size and place of the largest error.
"""

import base64
from dataclasses import dataclass

import numpy as np

from . import exercises, keys, references
from .exercise import Exercise

MIME = "application/vnd.forwardpass.answers+json"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def describe(a: np.ndarray) -> str:
    return f"shape {a.shape}, dtype {a.dtype}"


def close(exercise: Exercise, actual: np.ndarray, expected: np.ndarray) -> bool:
    return actual.shape == expected.shape and bool(
        np.allclose(actual, expected, rtol=exercise.rtol, atol=exercise.atol, equal_nan=False)
    )


def diagnose(exercise: Exercise, case: str, actual, stored: dict) -> str | None:
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


def _diagnose_text(exercise: Exercise, case: str, actual, stored: dict) -> str | None:
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


# ---- answers recorded in the kernel, graded outside it ----------------------------------------


def encode(value) -> dict:
    """A JSON-safe record of one output."""
    if isinstance(value, str):
        return {"value": value}
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return {"error": f"TypeError: returned {type(value).__name__}, not an array or number"}
    array = np.require(array, requirements="C")  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
    return {
        "array": {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "b64": base64.b64encode(array.tobytes()).decode("ascii"),
        }
    }


def decode(record: dict):
    """Inverse of ``encode``; raises ``ValueError`` on a malformed record."""
    if "array" in record:
        spec = record["array"]
        dtype = np.dtype(spec["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"dtype {dtype} is not numeric")
        return np.frombuffer(base64.b64decode(spec["b64"]), dtype=dtype).reshape(spec["shape"])
    if "value" in record:
        return record["value"]
    raise ValueError("record has neither an array nor a value")


def grade_answers(exercise_id: str, payload: dict | None) -> Verdict:
    """Grade the answers a kernel recorded for one exercise against the stored references.

    The reason is safe to show a student: hidden cases appear only by their description.
    """
    exercise = exercises.get(exercise_id)
    if not payload or payload.get("exercise") != exercise_id:
        return Verdict(False, "no answers were recorded: the test cell did not run to its end")
    answers = payload.get("answers") or {}
    if exercise.kind == "choice":
        return _grade_choice(exercise_id, exercise, answers.get("answer"))
    stored = {**references.load(exercise_id, hidden=False), **references.load(exercise_id, hidden=True)}
    cases = exercise.cases()
    for case in cases:
        label = f"hidden case ({case.describe})" if case.hidden else f"case '{case.name}'"
        record = answers.get(case.name)
        if record is None:
            return Verdict(False, f"{label}: no answer recorded")
        if "error" in record:
            hints = "".join(f" Hint: {h}" for h in exercise.hints_for(record["error"]))
            return Verdict(False, f"{label}: your function raised {record['error']}{hints}")
        try:
            actual = decode(record)
        except (ValueError, KeyError, TypeError) as err:
            return Verdict(False, f"{label}: unreadable answer ({err})")
        message = diagnose(exercise, case.name, actual, stored)
        if message:
            return Verdict(False, f"{label}: {message}")
    return Verdict(True, f"all {len(cases)} cases match the reference")


def _grade_choice(exercise_id: str, exercise: Exercise, record: dict | None) -> Verdict:
    if not record or "value" not in record:
        return Verdict(False, "no answer given")
    key = keys.concept(exercise_id)
    if record["value"] == key.answer:
        return Verdict(True, f"correct. {key.explain}")
    return Verdict(False, f"{record['value']!r} is not the answer. {key.explain}")
