"""What an exercise is: inputs, the right answer, the wrong answers we know, and their names.

An ``Exercise`` is data. Its ``cases`` build seeded inputs; ``reference`` is the correct
function (it calls ``lib``); each ``Mistake`` is a wrong function with the hint to give when a
student's output equals its output. ``python -m grader references`` runs them all once and stores
the outputs, so checks never call ``lib`` live. ``parts`` name the intermediate stations of a
multi-step exercise and the student's helper function that computes each one.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Case:
    """One set of keyword arguments for the student's function.

    ``describe`` is what a student may be told about a hidden case (never its values).
    """

    name: str
    inputs: dict
    hidden: bool = False
    describe: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation (same signature as the exercise) and what to say about it."""

    name: str
    wrong: Callable
    hint: str


@dataclass(frozen=True)
class Part:
    """An intermediate station: the student's ``helper`` called with ``args(inputs, stations)``
    should give the stored station ``station`` (a name from ``lib``'s trace where there is one)."""

    station: str
    helper: str
    args: Callable[[dict, dict], dict]


@dataclass(frozen=True)
class Exercise:
    """A graded exercise: ``name`` is the student's function and the nbgrader ``grade_id``.

    ``kind`` is ``"array"`` (compare arrays and numbers), ``"text"`` (compare strings) or
    ``"choice"`` (a concept check answered with one of ``choices``; its answer and explanation
    are private, in ``grader.keys``). ``error_hints`` maps a fragment of an exception's message to advice, for errors a
    common mistake raises instead of returning a wrong value.
    """

    name: str
    cases: Callable[[], list[Case]]
    reference: Callable
    mistakes: tuple[Mistake, ...] = ()
    stations: Callable[[dict], dict] | None = None
    parts: tuple[Part, ...] = ()
    kind: str = "array"
    choices: tuple[str, ...] = ()
    atol: float = 1e-5
    rtol: float = 1e-5
    check_dtype: bool = True
    error_hints: dict[str, str] = field(default_factory=dict)

    def hints_for(self, error: str) -> list[str]:
        """The advice for an error, given as ``"<ExceptionType>: <message>"``."""
        return [hint for fragment, hint in self.error_hints.items() if fragment in error]


def choice(name: str, choices: tuple[str, ...]) -> Exercise:
    """A concept check: the student assigns one of ``choices`` to a variable.

    Its answer and explanation are private (``grader.keys``): nothing a notebook can import knows
    them.
    """
    return Exercise(
        name=name,
        cases=lambda: [Case("answer", {})],
        reference=_no_public_reference,
        kind="choice",
        choices=choices,
    )


def _no_public_reference():
    raise LookupError("a concept check's answer is private: see grader.keys")


def rng(seed: int) -> np.random.Generator:
    """The generator every case builder uses, so inputs are reproducible."""
    return np.random.default_rng(seed)
