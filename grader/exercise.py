"""What an exercise is: inputs, the right answer, the wrong answers we know, and their names.

An ``Exercise`` is data. Its cases come in two halves. ``visible`` builds the fixed, seeded inputs
a student's notebook checks against (their outputs are stored in ``grader/references/visible``);
``hidden`` draws fresh inputs from a generator, within the kind each case describes, so the
grader can ask for new ones at every grading (``cases(secret)``) and nothing about them can be
known, let alone precomputed, in advance. ``reference`` is the correct function (it calls
``lib``); each ``Mistake`` is a wrong function with the hint to give when a student's output
equals its output; the grader runs both live, outside the sandbox, on the hidden inputs.
``parts`` name the intermediate stations of a multi-step exercise and the student's helper
function that computes each one. ``runner`` turns a student's function into a function of a
case's inputs, for answers that are not one array (``grader.runners``); the reference and the
mistakes are such functions already.

Every case has kinds (``grader.kinds``: declared by its builder, or derived from its inputs),
and the visible cases hold every kind the hidden ones use, so that a ✔ in the notebook means full
marks. A case may be one where the function must raise (``Raises``).
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from . import kinds as input_kinds

ULPS = 8  # of a reference's largest entry, in every comparison's absolute tolerance (Exercise.atol_on)


@dataclass(frozen=True)
class Raises:
    """What a case on which the function must fail expects: an exception named in ``errors``
    whose message mentions ``mentions``; ``because`` is what a function that returns is told."""

    errors: tuple[str, ...]
    mentions: str
    because: str

    def accepts(self, error: str) -> bool:
        """Whether ``"<ExceptionType>: <message>"`` is one of the errors expected."""
        kind, _, message = error.partition(": ")
        return kind in self.errors and self.mentions in message


BROADCAST = "could not be broadcast"


@dataclass(frozen=True)
class Broadcast:
    """A key of ``error_hints`` for a broadcast error whose operands' shapes are of one ``kind``
    (``broadcast_kind``): ``"lost-axis"``, one operand is another without its last axis (a
    reduction that dropped it, without keepdims); ``"column"``, an (n, 1) operand against rows
    of n (a vector made a column); ``"other"``, any other. The same error text needs different
    advice by the shapes it names."""

    kind: str

    def found_in(self, error: str) -> bool:
        return BROADCAST in error and broadcast_kind(_operand_shapes(error)) == self.kind


def _operand_shapes(error: str) -> list[tuple[int, ...]]:
    """The shapes NumPy names in a broadcast error, ``(5,8) (8,1)`` -> ``[(5, 8), (8, 1)]``."""
    named = error.partition("shapes")[2]
    return [tuple(int(n) for n in shape.split(",") if n) for shape in re.findall(r"\(([\d,]*)\)", named)]


def broadcast_kind(shapes: list[tuple[int, ...]]) -> str:
    """Which ``Broadcast`` kind operands of these shapes are (the first that fits)."""
    pairs = [(a, b) for a in shapes for b in shapes if a is not b]
    if any(a and a[:-1] == b for a, b in pairs):
        return "lost-axis"
    if any(len(a) == 2 and a[1] == 1 and len(b) >= 2 and b[-1] == a[0] != 1 for a, b in pairs):
        return "column"
    return "other"


def _found(fragment, error: str) -> bool:
    return fragment.found_in(error) if isinstance(fragment, Broadcast) else fragment in error


@dataclass(frozen=True)
class Case:
    """One set of keyword arguments for the student's function.

    ``describe`` is what a student may be told about a hidden case (its kind and sizes, never its
    values); ``kinds`` are the kinds of input it is that only its builder knows (``grader.kinds``
    derives the others); ``raises``, if set, says the function must fail on it.
    """

    name: str
    inputs: dict
    hidden: bool = False
    describe: str = ""
    kinds: frozenset[str] = frozenset()
    raises: Raises | None = None

    def __post_init__(self):
        object.__setattr__(self, "kinds", frozenset(self.kinds))


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation (same signature as the exercise) and what to say about it;
    ``right`` is the same implementation with nothing turned wrong (``exercises.wrong.table``)."""

    name: str
    wrong: Callable
    hint: str
    right: Callable | None = None


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
    are private, in ``grader.keys``). ``check_dtype`` is ``True`` (the dtype must be the
    reference's), ``"kind"`` (integers must be integers, floats floats), ``"int"`` or ``"float"``
    (a number the docstring says is a Python int or float: an integer of any width, or a float64,
    and no 0-d array) or ``False``.
    ``error_hints`` maps a fragment of an exception's message (or a ``Broadcast``, a kind of
    broadcast error) to advice, for errors a common mistake raises instead of returning a wrong
    value. No function may change its arguments in
    place; ``pure``: nor may it return one of them, but a new array (its docstring says so).
    ``sections`` says, for a runner that packs several returned arrays into one along axis -2,
    which they are: ``sections(inputs)`` is ``[(name, length), ...]`` in order.
    ``steps``, for a reference made of steps whose order matters: ``(names, composed)``, the
    steps' names in the reference's order and ``composed(order)``, the reference with its steps
    applied in ``order`` (a function of a case's inputs). ``terms``, for a reference that reduces
    one value per item (a loss over positions): ``(item, split)``, what an item is called and
    ``split(inputs)``, the inputs of each item alone, on which the reference gives its value.
    ``masked_softmax``: the reference takes a softmax over masked scores (attention), so a wrong
    answer whose rows are scaled down may have masked the weights after the softmax.
    ``stacked``: ``(axis, names)`` for an output that stacks arrays of their own along one axis
    (toy_qkv's q, k and v along axis -4), so that feedback names which of them are wrong.
    """

    name: str
    visible: Callable[[], list[Case]]
    reference: Callable
    hidden: Callable[[np.random.Generator], list[Case]] | None = None
    mistakes: tuple[Mistake, ...] = ()
    stations: Callable[[dict], dict] | None = None
    parts: tuple[Part, ...] = ()
    runner: Callable[[Callable], Callable] | None = None
    kind: str = "array"
    choices: tuple[str, ...] = ()
    atol: float = 1e-5
    rtol: float = 1e-5
    check_dtype: bool | str = True
    error_hints: dict[str | Broadcast, str] = field(default_factory=dict)
    pure: bool = False
    sections: Callable[[dict], list[tuple[str, int]]] | None = None
    steps: tuple[tuple[str, ...], Callable[[tuple[str, ...]], Callable]] | None = None
    terms: tuple[str, Callable[[dict], list[dict]]] | None = None
    masked_softmax: bool = False
    stacked: tuple[int, tuple[str, ...]] | None = None

    def cases(self, secret: int | None = None) -> list[Case]:
        """The visible cases; with a ``secret``, followed by the hidden ones drawn from it.

        The same secret gives the same hidden inputs (a regrade is reproducible); the visible
        cases never depend on it.
        """
        visible = self.visible()
        if secret is None or self.hidden is None:
            return visible
        hidden = self.hidden(np.random.default_rng(secret))
        if any(case.hidden for case in visible) or not all(case.hidden and case.describe for case in hidden):
            raise ValueError(
                f"{self.name}: visible cases must not be hidden, hidden ones must say what they are"
            )
        if len({case.name for case in visible + hidden}) != len(visible + hidden):
            raise ValueError(f"{self.name}: two cases share a name")
        return visible + hidden

    def atol_on(self, expected) -> float:
        """The absolute tolerance on a reference ``expected``: ``atol``, plus ``ULPS`` units in the
        last place of its largest finite entry if it holds floats (nothing more where ``atol`` is
        0: that exercise is exact). A right answer summed in another order (by another BLAS, as
        in the scorer's sandbox, or by the student's own loop) is that far off anywhere, and so
        an entry much smaller than the terms it is the sum of (a score that cancels out of
        products in the thousands) is off by far more than ``rtol`` of itself."""
        expected = np.atleast_1d(np.asarray(expected))
        if self.atol == 0 or expected.dtype.kind != "f" or not np.isfinite(expected).any():
            return self.atol
        largest = float(np.abs(expected[np.isfinite(expected)]).max())
        return self.atol + ULPS * float(np.finfo(expected.dtype).eps) * largest

    def kinds(self, case: Case) -> frozenset[str]:
        """Every kind of input ``case`` is: declared by its builder or derived from its inputs."""
        return case.kinds | input_kinds.derived(self.reference, case)

    def hints_for(self, error: str) -> list[str]:
        """The advice for an error, given as ``"<ExceptionType>: <message>"``: each once, though
        several of its fragments are found."""
        return list(
            dict.fromkeys(hint for fragment, hint in self.error_hints.items() if _found(fragment, error))
        )

    def called(self, fn: Callable) -> Callable:
        """``fn`` as the cases call it: through the runner, if the exercise has one."""
        return fn if self.runner is None else self.runner(fn)


def choice(name: str, choices: tuple[str, ...]) -> Exercise:
    """A concept check: the student assigns one of ``choices`` to a variable.

    Its answer and explanation are private (``grader.keys``): nothing a notebook can import knows
    them.
    """
    return Exercise(
        name=name,
        visible=lambda: [Case("answer", {})],
        reference=_no_public_reference,
        kind="choice",
        choices=choices,
    )


def _no_public_reference():
    raise LookupError("a concept check's answer is private: see grader.keys")


def rng(seed: int) -> np.random.Generator:
    """The generator every visible case builder uses, so inputs are reproducible."""
    return np.random.default_rng(seed)


def hidden(
    name: str,
    inputs: dict,
    *,
    kinds: Iterable[str] = (),
    about: str = "",
    sizes: bool | tuple[str, ...] = True,
    raises: Raises | None = None,
) -> Case:
    """A hidden case (what ``Exercise.hidden`` builders return), described by ``about`` and the
    shapes and numbers of its inputs: all of them, none (``sizes=False``) or those named in
    ``sizes`` (a seed is a value, not a size). Its name starts with ``hidden-``, so it never
    shares one with a visible case (answers and references are found by case name)."""
    shown = inputs if sizes is True else {k: v for k, v in inputs.items() if sizes and k in sizes}
    describe = input_kinds.describe(shown, about)
    name = name if name.startswith(HIDDEN) else HIDDEN + name
    return Case(name, inputs, hidden=True, describe=describe, kinds=kinds, raises=raises)


HIDDEN = "hidden-"


def size(g: np.random.Generator, low: int, high: int) -> int:
    """An int drawn from ``low .. high`` (both included)."""
    return int(g.integers(low, high + 1))
