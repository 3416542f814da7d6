"""What a notebook calls: ``check`` for immediate feedback, ``record`` for the autograder.

``check("01-embeddings/embed", embed)`` runs the student's function on the visible cases, compares
with the stored references and either prints a short confirmation or raises ``CheckFailed`` with a
message that says what is wrong (a known mistake, a shape or dtype, the first intermediate station
that differs). The exception shows as that message alone, without a Python traceback.

``record(...)`` runs every case, visible and hidden, and emits the outputs as one display output;
the autograder grades them outside the kernel, where a notebook cannot reach.
"""

import textwrap
import traceback

import numpy as np

from . import exercises, references
from .compare import MIME, diagnose, encode
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
    return fn(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()})


def _visible_cases(exercise: Exercise):
    return [case for case in exercise.cases() if not case.hidden]


def check(exercise_id: str, fn, **helpers) -> None:
    """Check ``fn`` on the visible cases of ``exercise_id``.

    ``helpers`` are the student's functions for the exercise's intermediate stations (e.g.
    ``token_embedding=token_embedding``): when the final output is wrong, each is tried on the
    reference inputs of its station and the first one that differs is named.
    """
    exercise = exercises.get(exercise_id)
    if exercise.kind == "choice":
        return _check_choice(exercise, fn)
    stored = references.load(exercise_id, hidden=False)
    cases = _visible_cases(exercise)
    for case in cases:
        try:
            actual = _call(fn, case.inputs)
        except NotImplementedError:
            raise NotWrittenYet(
                f"`{exercise.name}` is not written yet: replace `raise NotImplementedError()` "
                "with your code, run that cell, then this one."
            ) from None
        except Exception as err:
            where = traceback.extract_tb(err.__traceback__)[-1]
            hints = exercise.hints_for(f"{type(err).__name__}: {err}")
            raise CheckFailed(
                f"`{exercise.name}` raised {type(err).__name__}: {err}\n"
                f"  (line {where.lineno}: {where.line})" + "".join(f"\n  Hint: {h}" for h in hints)
            ) from None
        message = diagnose(exercise, case.name, actual, stored)
        if message:
            station = _first_bad_station(exercise, case, stored, helpers)
            raise CheckFailed(
                f"`{exercise.name}` on case '{case.name}': {message}" + (f"\n{station}" if station else "")
            )
    print(f"✔ {exercise.name} matches the reference on {len(cases)} visible case(s).")


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
    """A letter among the choices is recorded; none yet is a note, not an error, so that "Run All"
    on a fresh notebook goes on (the grader scores a missing answer 0); anything else is wrong."""
    if answer is ... or answer is None:
        print(f"✎ {exercise.name} is not answered yet: set answer_{exercise.name} above to one of "
              f"{', '.join(map(repr, exercise.choices))}, then run this cell.")
        return
    if answer not in exercise.choices:
        raise CheckFailed(f"answer with one of {', '.join(map(repr, exercise.choices))}; got {answer!r}")
    print(f"✔ answer {answer!r} recorded: it is graded when you submit.")


def answers(exercise_id: str, fn) -> dict:
    """The payload ``record`` emits: every case's output (or error), encoded for JSON."""
    exercise = exercises.get(exercise_id)
    if exercise.kind == "choice":
        given = {"answer": encode(fn) if isinstance(fn, str) else {"error": f"answer is {fn!r}"}}
        return {"exercise": exercise_id, "answers": given}
    outputs = {}
    for case in exercise.cases():
        try:
            outputs[case.name] = encode(_call(fn, case.inputs))
        except Exception as err:  # KeyboardInterrupt (a timeout) is left to propagate
            outputs[case.name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"exercise": exercise_id, "answers": outputs}


def record(exercise_id: str, fn) -> None:
    """Run every case of ``exercise_id`` and emit the outputs for the autograder (no verdict here)."""
    from IPython.display import display

    display(
        {MIME: answers(exercise_id, fn), "text/plain": f"answers to {exercise_id} recorded for grading"},
        raw=True,
    )
