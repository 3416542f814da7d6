"""What a notebook calls: ``check``, for immediate feedback on the visible cases.

``check("01-embeddings/embed", embed)`` runs the student's function on the visible cases
(through the exercise's runner, if it has one), compares with the stored references and either
prints a short confirmation or raises ``CheckFailed`` with a message that says what is wrong (a
known mistake, a shape or dtype, the first intermediate station that differs). The exception shows
as that message alone, without a Python traceback.

A ✔ means the function will get full marks when graded, as far as the notebook can tell: the
visible cases cover the kinds of input the hidden ones use, and a function that calls a ``lib``
function the grader does not lend in this chapter (``grader.lending``) fails here, with what to
write instead, rather than later in the scorer, where that function does not exist.

Grading does not go through this module: the scorer calls the student's functions itself, in a
process of its own (``grader.scoring``), so a test cell is this one call and nothing else.
"""

import traceback
from pathlib import Path

import numpy as np

from . import exercises, lending, references
from .compare import diagnose
from .exercise import Exercise


class CheckFailed(AssertionError):
    """A wrong answer: rendered in Jupyter as its message only."""

    def _render_traceback_(self):
        return [
            f"\x1b[1;31m✘ {line}\x1b[0m" if i == 0 else line for i, line in enumerate(str(self).splitlines())
        ]


class NotWrittenYet(CheckFailed):
    """The stub still raises ``NotImplementedError``."""

    def _render_traceback_(self):
        return [f"\x1b[1;33m✎ {self}\x1b[0m"]


def _call(fn, inputs: dict):
    return fn(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()})


def check(exercise_id: str, fn, **helpers) -> None:
    """Check ``fn`` on the visible cases of ``exercise_id``.

    ``helpers`` are the student's functions for the exercise's intermediate stations (e.g.
    ``token_embedding=token_embedding``): when the final output is wrong, each is tried on the
    reference inputs of its station and the first one that differs is named.
    """
    exercise = exercises.get(exercise_id)
    if exercise.kind == "choice":
        return _check_choice(exercise, fn)
    return check_called(exercise_id, exercise.called(fn), **helpers)


def check_called(exercise_id: str, called, **helpers) -> None:
    """``check`` for a function of the cases' inputs (the exercise's runner already applied, as
    the references and the known mistakes are)."""
    exercise = exercises.get(exercise_id)
    stored = references.load(exercise_id)
    cases = exercise.cases()
    with lending.unlent_calls(exercise_id.partition("/")[0]) as unlent:
        for case in cases:
            try:
                actual = _call(called, case.inputs)
            except NotImplementedError:
                raise NotWrittenYet(
                    f"`{exercise.name}` is not written yet: replace `raise NotImplementedError()` "
                    "with your code, run that cell, then this one."
                ) from None
            except Exception as err:
                where = _students_line(err)
                hints = exercise.hints_for(f"{type(err).__name__}: {err}")
                raise CheckFailed(
                    f"`{exercise.name}` raised {type(err).__name__}: {err}"
                    + (f"\n  (line {where.lineno}: {where.line})" if where else "")
                    + "".join(f"\n  Hint: {h}" for h in hints)
                ) from None
            message = diagnose(exercise, case.name, actual, stored)
            if message:
                station = _first_bad_station(exercise, case, stored, helpers)
                raise CheckFailed(
                    f"`{exercise.name}` on case '{case.name}': {message}"
                    + (f"\n{station}" if station else "")
                )
    if unlent:
        raise CheckFailed(
            f"`{exercise.name}` is right, but it calls {', '.join(unlent)}, which the grader does not lend in "
            "this chapter, so it would fail when graded: write that step yourself with NumPy (or with your "
            "own functions from this chapter)."
        )
    print(f"✔ {exercise.name} matches the reference on {len(cases)} visible case(s).")


def _students_line(err: BaseException):
    """The last frame of the traceback in the student's code (not in the grader's, nor lib's)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(_COURSE_CODE)]
    return frames[-1] if frames else None


_COURSE_CODE = (str(Path(__file__).resolve().parent), str(lending.LIB))


def _first_bad_station(exercise: Exercise, case, stored: dict, helpers: dict) -> str:
    for part in exercise.parts:
        helper = helpers.get(part.helper)
        expected = stored.get(f"{case.name}::station::{part.station}")
        if helper is None or expected is None:
            continue
        stations = {
            k.split("::")[-1]: v for k, v in stored.items() if k.startswith(f"{case.name}::station::")
        }
        try:
            actual = np.asarray(helper(**part.args(case.inputs, stations)))
        except Exception as err:
            return f"  First station that fails: {part.station} (your `{part.helper}` raised {type(err).__name__}: {err})"
        if actual.shape != expected.shape or not np.allclose(
            actual, expected, rtol=exercise.rtol, atol=exercise.atol
        ):
            return f"  First station that differs from the reference: {part.station} (computed by your `{part.helper}`)"
    if exercise.parts and helpers:
        return "  Every station before the output matches: look at how they are combined."
    return ""


def _check_choice(exercise: Exercise, answer) -> None:
    if answer is ... or answer is None:
        raise NotWrittenYet("set your answer above, then run this cell.")
    if answer not in exercise.choices:
        raise CheckFailed(f"answer with one of {', '.join(map(repr, exercise.choices))}; got {answer!r}")
    print(f"✔ answer {answer!r} recorded: it is graded when you submit.")
