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

import copy
import textwrap
import traceback
from pathlib import Path

from . import diagnosis, exercises, keys, lending, references, watch
from .compare import diagnose, impure, must_raise, station_adds, wrong_and_impure
from .exercise import Exercise

MESSAGE_WIDTH = 80  # nbgrader validate cuts longer lines (its Validator.width, 90, less indentation)


class CheckFailed(AssertionError):
    """A wrong answer: rendered in Jupyter as its message only, wrapped so that ``nbgrader validate``
    prints every word of it."""

    mark, colour = "✘", "1;31"

    def _render_traceback_(self):
        lines = _wrapped(f"{self.mark} {self}")
        return [f"\x1b[{self.colour}m{lines[0]}\x1b[0m", *lines[1:]]


class NotWrittenYet(CheckFailed):
    """The stub still raises ``NotImplementedError``."""

    mark, colour = "✎", "1;33"


def _wrapped(message: str) -> list[str]:
    """Each line of ``message`` wrapped at ``MESSAGE_WIDTH``, continuations indented as it is."""
    lines = []
    for line in message.splitlines():
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        lines += textwrap.wrap(line, MESSAGE_WIDTH, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return lines


def _call(fn, inputs: dict):
    """``fn`` on a copy of ``inputs`` (arrays in dicts too): its output and the copy, as the call
    left it."""
    given = copy.deepcopy(inputs)
    return fn(**given), given


def check(exercise_id: str, fn, **helpers) -> None:
    """Check ``fn`` on the visible cases of ``exercise_id``.

    ``helpers`` are the student's functions for the exercise's intermediate stations (e.g.
    ``token_embedding=token_embedding``): when the final output is wrong, each is tried on the
    reference inputs of its station, and watched as ``fn`` calls it, and the first station that
    differs is named.
    """
    exercise = exercises.get(exercise_id)
    if exercise.kind == "choice":
        return _check_choice(exercise, fn)
    namespace = getattr(fn, "__globals__", None)
    return check_called(exercise_id, exercise.called(fn), _namespace=namespace, **helpers)


_FOLDED = 'the book\'s page folds the answer and its reason under "Show the answer"'


def reader_check(exercise_id: str, fn, **helpers) -> None:
    """``check`` for a reader on their own (the notebooks under ``reader/``, which the reader
    edition's launch button opens): nothing is submitted, so a concept check says at once whether
    the letter is right, and why, instead of recording it for a grader. A function is checked as
    in a class."""
    exercise = exercises.get(exercise_id)
    if exercise.kind != "choice" or _unanswered(fn) or fn not in exercise.choices:
        return check(exercise_id, fn, **helpers)
    try:
        key = keys.concept(exercise_id)
    except OSError:  # installed without the course's private folder, which holds the keys
        print(f"✔ answer {fn!r} recorded: {_FOLDED}.")
        return
    if fn != key.answer:
        raise CheckFailed(
            f"{fn!r} is not the answer to {exercise.name}: read the question again and try another letter "
            f"({_FOLDED})."
        )
    print(f"✔ {fn!r} is right. {key.explain}")


def check_called(exercise_id: str, called, _namespace: dict | None = None, **helpers) -> None:
    """``check`` for a function of the cases' inputs (the exercise's runner already applied, as
    the references and the known mistakes are)."""
    exercise = exercises.get(exercise_id)
    stored = references.load(exercise_id)
    cases = exercise.cases()
    student = diagnosis.InKernel(called, helpers, _namespace, [p.helper for p in exercise.parts])
    with lending.unlent_calls(exercise_id.partition("/")[0]) as unlent:
        for case in cases:
            try:
                (actual, given), error = _call(called, case.inputs), None
            except NotImplementedError:
                raise NotWrittenYet(
                    f"`{exercise.name}` is not written yet: replace `raise NotImplementedError()` "
                    "with your code, run that cell, then this one."
                ) from None
            except Exception as err:
                if case.raises is None:
                    raise _raised(exercise, case, err, stored, student, cases) from None
                actual, error = None, f"{type(err).__name__}: {err}"
            if case.raises is not None:
                message = must_raise(exercise, case, error, actual, stored)
                if message:
                    raise CheckFailed(f"`{exercise.name}` on case '{case.name}': {message}")
                continue
            interfered = watch.interfered(given, case.inputs, actual, exercise.pure)
            message = diagnose(exercise, case, actual, stored, student, cases)
            message = wrong_and_impure(message, interfered) or impure(exercise, interfered)
            if message:
                station = diagnosis.stations(exercise, case, stored, student)
                raise CheckFailed(
                    f"`{exercise.name}` on case '{case.name}': {message}"
                    + (f"\n  {station}" if station_adds(exercise, message, station) else "")
                )
    if unlent.lib:
        raise CheckFailed(
            f"`{exercise.name}` is right, but it calls {', '.join(unlent.lib)}, which the grader does not lend in "
            "this chapter, so it would fail when graded: write that step yourself with NumPy (or with your "
            "own functions from this chapter)."
        )
    if unlent.packages:
        raise CheckFailed(
            f"`{exercise.name}` is right, but it uses {', '.join(unlent.packages)}, which is not installed where "
            "it is graded (NumPy and Python's standard library are), so it would fail when graded: write it "
            "with NumPy."
        )
    print(f"✔ {exercise.name} matches the reference on {len(cases)} visible case(s).")


def _raised(exercise: Exercise, case, err: Exception, stored, student, cases=()) -> CheckFailed:
    where = _students_line(err)
    hints = exercise.hints_for(f"{type(err).__name__}: {err}")
    more = diagnosis.explain_error(exercise, case, stored, student, cases)
    return CheckFailed(
        f"`{exercise.name}` raised {type(err).__name__}: {err}"
        + (f"\n  (line {where.lineno}{': ' + where.line if where.line else ''})" if where else "")
        + "".join(f"\n  Hint: {h}" for h in hints)
        + (f"\n {more}" if more else "")
    )


def _students_line(err: BaseException):
    """The last frame of the traceback in the student's code (not in the grader's, nor lib's)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(_COURSE_CODE)]
    return frames[-1] if frames else None


_COURSE_CODE = (str(Path(__file__).resolve().parent), str(lending.LIB))


def _unanswered(answer) -> bool:
    """Whether a concept check's answer is still the notebook's placeholder (``...``) or None."""
    return answer is ... or answer is None


def _check_choice(exercise: Exercise, answer) -> None:
    """A letter among the choices is recorded; none yet is a note, not an error, so that "Run All"
    on a fresh notebook goes on (the grader scores a missing answer 0); anything else is wrong."""
    if _unanswered(answer):
        print(
            f"✎ {exercise.name} is not answered yet: set answer_{exercise.name} above to one of "
            f"{', '.join(map(repr, exercise.choices))}, then run this cell."
        )
        return
    if answer not in exercise.choices:
        raise CheckFailed(f"answer with one of {', '.join(map(repr, exercise.choices))}; got {answer!r}")
    print(f"✔ answer {answer!r} recorded: it is graded when you submit.")
