"""Compare a student's output with the reference, and say what is wrong.

The same code serves the visible checks (inside the student's kernel, against the stored
references) and the grader (outside every sandbox, on the outputs the scorer returned, against
references computed there). A diagnosis goes from the most specific to the most general: a known
mistake, then a structural explanation that needs no list (``grader.diagnosis``), then shape,
dtype, and the size and place of the largest error. A case that must raise is right when the
function raises one of the errors it expects, naming what it should.

A hidden case's reason tells the student nothing their code could choose on its inputs (which it
could otherwise carry out, for the next submission to know): besides its description, only words
from a vocabulary fixed before the code ran. An error by its type, if Python or NumPy defines it
(``diagnosis.error_type``), never its message, its line or a class the student named; an output
changed in place in ``watch.interfered``'s words for that case's arguments; a structural
explanation only if it holds no number but the description's (``told``); no shape, index, value,
count or length of the student's output, nor a time the scorer reported. The other way out, a
visible case's reason, which quotes the student's message whole, is closed by order: the visible
cases are answered and closed before any process that holds a hidden input starts
(``scoring.Scorer.run_all``). And beneath both, the real guarantee: each submitted file draws its
own hidden cases (``scoring.case_secret``), so what one learns of them is of no use to another.

Every comparison allows, besides the exercise's tolerance, for the rounding of a right answer
that sums in another order than the reference (``Exercise.atol_on``).
"""

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import diagnosis, exercises, keys, watch
from .exercise import Case, Exercise
from .wire import ZERO_D, decode, kind_of, returned, returned_in


@dataclass(frozen=True)
class Verdict:
    """``status`` is a ``results.Row`` status: ``graded``, ``wrong``, ``timeout`` or ``kernel_died``;
    ``case`` names the first case that came out wrong (``""`` if none did)."""

    ok: bool
    reason: str
    status: str
    case: str = ""
    ran: tuple[tuple[str, int, int], ...] = ()  # what ran unread by the scan in its run (``scoring.Run.ran``)


def describe(a: np.ndarray) -> str:
    return f"shape {a.shape}, dtype {a.dtype}"


def close(exercise: Exercise, actual: np.ndarray, expected: np.ndarray) -> bool:
    return actual.shape == expected.shape and bool(
        np.allclose(actual, expected, rtol=exercise.rtol, atol=exercise.atol_on(expected), equal_nan=False)
    )


def diagnose(
    exercise: Exercise, case: Case | str, actual, stored: Mapping, student=None, cases=(), sequence=None
) -> str | None:
    """``None`` if ``actual`` is right for ``case``, else a message for the student.

    ``student`` (a ``diagnosis.Student``) answers the questions a structural diagnosis asks of
    the student's function, and ``cases`` are the exercise's others; without them, only what
    the output itself shows is explained. ``sequence`` says that ``actual``, an array here, was
    returned as a ``"list"`` or ``"tuple"`` (the scorer's outputs arrive as arrays).
    """
    sequence = sequence or returned(actual)
    case = case if isinstance(case, Case) else _visible_case(exercise, case)
    if case.raises is not None:
        return must_raise(exercise, case, None, actual, stored)
    expected = stored[f"{case.name}::expected"]
    if exercise.kind == "text":
        return _diagnose_text(exercise, case, actual, stored, student)
    if actual is None:
        return "your function returned None: is a `return` missing?"
    try:
        array = np.asarray(actual)
    except (TypeError, ValueError):
        return f"expected an array ({describe(expected)}), got {type(actual).__name__}"
    if array.dtype.kind not in "biuf":
        return f"expected an array ({describe(expected)}), got {not_numbers(kind_of(actual, array))}"
    actual = array
    if close(exercise, actual, expected):
        return _dtype_message(exercise, actual, expected, sequence)
    known = _known_mistake(exercise, case, actual, stored, student, cases)
    if known:
        return known
    structural = told(case, diagnosis.explain(exercise, case, actual, stored, student, cases))
    return structural or _difference(exercise, actual, expected, case.hidden)


NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)?")  # a number on its own (not float32's 32)


def station_adds(exercise: Exercise, message: str, station: str) -> bool:
    """Whether the station note (``diagnosis.stations``) adds to ``message``: not when the message
    holds it, nor when it only says every station matches while the message names a listed
    mistake, which sits in a constant or in how the stations are combined ("look at how they are
    combined" pointed away from a block's LayerNorms at eps = 1e-6, stations within tolerance)."""
    if not station or station in message:
        return False
    return station != diagnosis.ALL_MATCH or message not in {m.hint for m in exercise.mistakes}


def told(case: Case, message: str | None) -> str:
    """``message``, a structural explanation (``grader.diagnosis``), if the student may be told it
    on ``case`` (else ``""``). Its rules are computed on the student's outputs, and some say a
    number they find there (an offset, a factor, a shape): on a hidden case that number is the
    student's code's to choose from the hidden inputs, so a hidden case's explanation is told only
    if every number in it is one its description gives (a size); which rule speaks, a choice among
    a fixed few, is all the student's code can steer."""
    if not message or not case.hidden:
        return message or ""
    allowed = set(NUMBER.findall(case.describe))
    return message if set(NUMBER.findall(message)) <= allowed else ""


def _visible_case(exercise: Exercise, name: str) -> Case:
    return next((c for c in exercise.cases() if c.name == name), Case(name, {}))


def _dtype_message(exercise: Exercise, actual: np.ndarray, expected: np.ndarray, sequence=None) -> str | None:
    if exercise.check_dtype in ("int", "float"):
        return _number_message(exercise.check_dtype, actual, sequence)
    sequence = sequence if sequence in ("list", "tuple") else None
    if exercise.check_dtype is True and actual.dtype != expected.dtype:
        if sequence:
            return (
                f"the values are right, but your function returned a {sequence}, which NumPy reads as "
                f"{actual.dtype}: return the NumPy array itself ({expected.dtype}, like the inputs), not a {sequence} of it"
            )
        return (
            f"the values are right but the dtype is {actual.dtype}, expected {expected.dtype}: "
            "keep the input's dtype (a float64 constant or np.float64 scalar can upcast float32)"
        )
    if exercise.check_dtype == "kind" and sequence and expected.ndim:
        return _sequence_of_ids_message(sequence)
    if exercise.check_dtype == "kind" and (actual.dtype.kind in "iu") != (expected.dtype.kind in "iu"):
        return (
            f"the values are right but they are {actual.dtype}: these are "
            f"{'integers (build the array with dtype=np.int64)' if expected.dtype.kind in 'iu' else 'floats'}"
        )
    if (
        exercise.check_dtype == "kind"
        and actual.dtype.kind in "iu"
        and actual.itemsize < min(expected.itemsize, 4)
    ):
        return (
            f"the values are right but they are {actual.dtype}, which holds numbers only up to "
            f"{np.iinfo(actual.dtype).max:,} (GPT-2's vocabulary has 50,257 tokens): build the array with "
            "dtype=np.int64"
        )
    return None


def _number_message(kind: str, actual: np.ndarray, sequence=None) -> str | None:
    """A right value that is not the Python ``kind`` (``"int"`` or ``"float"``) the docstring asks
    for: a float count (``/`` where ``//`` belongs), a float32 loss, a 0-d array. Each breaks its
    caller further on: a float count in ``range`` or a shape, a NumPy number or array in
    ``json.dumps`` or an f-string's ``:d``. An integer of any width is an int, and a float64 (a
    NumPy float64 is a Python float) a float."""
    if sequence == ZERO_D:
        return (
            f"the value is right, but your function returned a 0-d NumPy array: the docstring asks for "
            f"a Python {kind}, return {kind}(...)"
        )
    if kind == "int" and actual.dtype.kind not in "iu":
        return (
            f"the value is right, but it is a float ({actual.dtype}) where the docstring asks for an int: "
            "a count is a whole number, so divide with // (not /), or return int(...)"
        )
    if kind == "float" and actual.dtype != np.float64:
        return (
            f"the value is right, but it is a NumPy {actual.dtype} where the docstring asks for a "
            "Python float: return float(...)"
        )
    return None


def _sequence_of_ids_message(sequence: str) -> str:
    """Token ids returned as a list or tuple, where the docstring asks for an int64 array."""
    return (
        f"the ids are right, but your function returned a {sequence}: return a NumPy array, "
        f"np.array(..., dtype=np.int64); a {sequence} has no .shape, which the next functions use "
        "(embed reads ids.shape[-1])"
    )


def _known_mistake(
    exercise: Exercise, case: Case, actual, stored: Mapping, student=None, cases=()
) -> str | None:
    """The hint of the first known mistake whose output ``actual`` equals, unless the student's
    function (``student``) is wrong in another way on another of ``cases`` where that mistake
    shows too: then the match on this one is a coincidence (two mistakes that give the same number
    here). Right where the mistake shows, or wrong where it does not, says only that the student's
    version of it is narrower or broader. Of several that match, the first that gives the
    function's output on every other case too is named: two mistakes that agree here (a rounded
    mass and a dropped crossing token, on a mass just below p) are told apart where they do not.
    For an exercise with steps, the order the function follows is named instead where a variant
    tells it from the mistake (``diagnosis.reordered_instead``)."""
    others = [other for other in cases if other.name != case.name]
    matching = [
        mistake
        for mistake in exercise.mistakes
        if _same(exercise, actual, stored.get(f"{case.name}::mistake::{mistake.name}"))
        and not any(_contradicts(exercise, mistake, other, stored, student) for other in others)
    ]
    if not matching:
        return None
    mistake = (
        next(
            (m for m in matching if all(_agrees(exercise, m, other, stored, student) for other in others)),
            matching[0],
        )
        if len(matching) > 1
        else matching[0]
    )
    return (
        diagnosis.reordered_instead(exercise, case, actual, stored, student, cases, mistake.wrong)
        or mistake.hint
    )


def _agrees(exercise: Exercise, mistake, case: Case, stored: Mapping, student) -> bool:
    """On ``case``, the student's function gives what ``mistake`` gives (or one of them is unknown)."""
    signature = stored.get(f"{case.name}::mistake::{mistake.name}")
    outcome = None if student is None or case.raises is not None or signature is None else student.on(case)
    if outcome is None or outcome.error is not None:
        return True
    try:
        return _same(exercise, np.asarray(outcome.value), signature)
    except (TypeError, ValueError):
        return True


def _same(exercise: Exercise, actual, signature) -> bool:
    try:
        return (
            signature is not None
            and np.shape(actual) == signature.shape
            and np.allclose(
                actual, signature, rtol=exercise.rtol, atol=exercise.atol_on(signature), equal_nan=True
            )
        )
    except (TypeError, ValueError):
        return False


def _contradicts(exercise: Exercise, mistake, case: Case, stored: Mapping, student) -> bool:
    """On ``case``, ``mistake`` gives a wrong answer and the student's function another wrong one."""
    signature, expected = (
        stored.get(f"{case.name}::mistake::{mistake.name}"),
        stored.get(f"{case.name}::expected"),
    )
    if student is None or case.raises is not None or signature is None or expected is None:
        return False
    if _same(exercise, signature, expected):
        return False
    outcome = student.on(case)
    if outcome is None or outcome.error is not None:
        return False
    try:
        value = np.asarray(outcome.value)
    except (TypeError, ValueError):
        return False
    return not _same(exercise, value, expected) and not _same(exercise, value, signature)


def _difference(exercise: Exercise, actual: np.ndarray, expected: np.ndarray, hidden: bool = False) -> str:
    """What is wrong when nothing more specific is known: the shape, NaN and inf, or the largest
    error. On a ``hidden`` case, which of these it is and nothing more: a shape, a count, an index
    or a value of the student's output could be any number their code computed from the inputs."""
    if actual.shape != expected.shape:
        hint = " (transposed?)" if actual.shape == expected.shape[::-1] and actual.ndim > 1 else ""
        if hidden:
            return f"wrong shape{hint}"
        return f"wrong shape{hint}: expected {expected.shape}, got {actual.shape}"
    if hidden:
        finite = actual.dtype.kind != "f" or (np.isfinite(actual) == np.isfinite(expected)).all()
        return "values differ from the reference" if finite else "NaN or inf in the wrong places"
    if actual.dtype.kind == "f" and (np.isfinite(actual) != np.isfinite(expected)).any():
        places = np.isfinite(actual) != np.isfinite(expected)
        where = tuple(int(i) for i in np.argwhere(places)[0])
        return (
            f"NaN or inf in the wrong places: {int(places.sum())} entries, the first at index {where}, where you "
            f"have {actual[where]} and the reference has {'a finite number' if np.isfinite(expected[where]) else 'NaN or inf'}"
        )
    both = (
        np.isfinite(expected) & np.isfinite(actual)
        if actual.dtype.kind == "f"
        else np.ones(actual.shape, bool)
    )
    error = np.where(both, np.abs(actual.astype(np.float64) - expected.astype(np.float64)), 0.0)
    where = np.unravel_index(np.argmax(error), error.shape)
    wrong = error > exercise.atol_on(expected) + exercise.rtol * np.where(both, np.abs(expected), 0)
    return (
        f"values differ: largest error {error[where]:.3g} at index {tuple(int(i) for i in where)} "
        f"({int(wrong.sum())} of {error.size} entries wrong)"
    )


def impure(exercise: Exercise, what: str | None) -> str | None:
    """What to tell a student whose function did not leave its arguments alone (``what``, from
    ``watch.interfered``): no function may change them in place; one whose docstring asks for a new
    array (``Exercise.pure``) may not return one of them either."""
    if not what:
        return None
    if exercise.pure:
        return f"right values, but your function {what}: work on a copy (x.copy()) and return a new array, as the docstring asks"
    return (
        f"right values, but your function {what}: its caller still holds that array and would read the "
        "changed values (a residual stream x + f(x), say); compute into a new array (`y = x - m`, not `x -= m`)"
    )


def wrong_and_impure(message: str | None, what: str | None) -> str | None:
    """A wrong answer's message, with what the function did to its arguments (``what``, from
    ``watch.interfered``) when it changed one in place: the wrong values often come from there (an
    input read again after it was overwritten, ``wte[ids] += ...`` with an id twice)."""
    if not message or not what:
        return message
    return (
        f"{message}. Your function also {what}: compute into a new array (`y = x + p`, not `x += p` or "
        "`table[ids] += p`), which may be what makes the values wrong"
    )


def must_raise(exercise: Exercise, case: Case, error: str | None, actual, stored: Mapping) -> str | None:
    """``None`` if the function failed on ``case`` as it must (``error``: ``"Type: message"``),
    else what to tell the student."""
    expected = " or ".join(case.raises.errors)
    if error is not None:
        if case.raises.accepts(error):
            return None
        shown = diagnosis.error_type(error) if case.hidden else error[:120]
        return (
            f"your function raised {shown}, but here it must raise {expected} naming {case.raises.mentions!r}"
        )
    known = _known_mistake(exercise, case, actual, stored)
    return known or case.raises.because


def _diagnose_text(exercise: Exercise, case: Case, actual, stored: Mapping, student) -> str | None:
    expected = bytes(stored[f"{case.name}::expected"]).decode("utf-8")
    if actual is None:
        return "your function returned None: is a `return` missing?"
    sequence = isinstance(actual, list | tuple) or (isinstance(actual, np.ndarray) and actual.ndim > 0)
    if sequence and all(isinstance(a, str) for a in actual):  # (a number comes back as a 0-d array)
        return f'expected one str, got a {type(actual).__name__} of strings: join them, "".join(...)'
    if not isinstance(actual, str):
        number = isinstance(actual, int | float | np.generic) or (
            isinstance(actual, np.ndarray) and not actual.ndim
        )
        return f"expected a str, got {'a number' if number else type(actual).__name__}"
    if actual == expected:
        return None
    for mistake in exercise.mistakes:
        signature = stored.get(f"{case.name}::mistake::{mistake.name}")
        if signature is not None and actual == bytes(signature).decode("utf-8"):
            return mistake.hint
    structural = told(case, diagnosis.explain(exercise, case, actual, stored, student))
    if structural:
        return structural
    i = next(
        (i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b),
        min(len(actual), len(expected)),
    )
    if case.hidden:  # its values are the grader's, and the place and length the student's to choose
        return "the text differs from the reference"
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
    if _unwritten(exercise, cases, answers):
        return Verdict(False, NOT_ATTEMPTED, "not_attempted")
    if exercise.kind == "choice":
        if not answers.get("answer"):
            return Verdict(False, missing[1], missing[0])
        return _grade_choice(exercise_id, exercise, answers["answer"])
    student = diagnosis.Returned(answers)
    for case in cases:
        label = f"hidden case ({case.describe})" if case.hidden else f"case '{case.name}'"
        answer = answers.get(case.name)
        if not answer:
            return Verdict(False, f"{label}: {missing[1]}", missing[0], case.name)
        if "timeout" in answer:
            limit = "its time limit" if case.hidden else f"{answer['timeout']:g} s"
            return Verdict(
                False,
                f"{label}: your function ran longer than {limit} and was interrupted",
                "timeout",
                case.name,
            )
        if case.raises is not None:
            message = _graded_raise(exercise, case, answer, references)
            if message:
                return Verdict(False, f"{label}: {message}", "wrong", case.name)
            continue
        if answer.get("error", "").startswith("NotImplementedError"):
            return Verdict(
                False,
                f"{label}: not written yet (your function still raises NotImplementedError)",
                "wrong",
                case.name,
            )
        if answer.get("error", "").startswith(UNSENDABLE):
            returned = answer["error"][len(UNSENDABLE) :].partition(",")[0]
            returned = _kind_shown(returned) if case.hidden else returned
            nothing = ": is a `return` missing?" if returned == "NoneType" else ""
            rest = "" if returned.startswith("array of ") else f", not an array, a number or a str{nothing}"
            if exercise.kind == "text" and returned in ("list", "tuple"):
                rest = ': expected one str; if it holds the characters, join them, "".join(...)'
            shown = returned if returned == OWN_OBJECT else not_numbers(returned)
            return Verdict(False, f"{label}: your function returned {shown}{rest}", "wrong", case.name)
        if "error" in answer:
            hints = "".join(f" Hint: {h}" for h in exercise.hints_for(answer["error"]))
            # A hidden case's error shows its type only, if it is Python's or NumPy's, and not the
            # line: a message, a class's name or a forged line could carry the case's inputs out
            # to the student, whose next submission would then know them.
            where = f" (line {answer['line']})" if answer.get("line") and not case.hidden else ""
            more = told(case, diagnosis.explain_error(exercise, case, references, student, cases))
            raised = diagnosis.error_type(answer["error"]) if case.hidden else answer["error"]
            return Verdict(
                False,
                f"{label}: your function raised {raised}{where}{hints}{more}",
                "wrong",
                case.name,
            )
        try:
            actual = decode(answer.get("output"))
        except Exception as err:  # whatever the student's line holds: unreadable is all it is
            why = "" if case.hidden else f" ({err})"
            return Verdict(False, f"{label}: unreadable answer{why}", "wrong", case.name)
        sequence = returned_in(answer.get("output"))
        message = diagnose(exercise, case, _number_as_sent(actual), references, student, cases, sequence)
        what = _impure_shown(answer.get("impure"), case)
        message = wrong_and_impure(message, what) or impure(exercise, what)
        if message:
            station = told(case, diagnosis.stations(exercise, case, references, student))
            return Verdict(
                False,
                f"{label}: {message}" + (f" {station}" if station_adds(exercise, message, station) else ""),
                "wrong",
                case.name,
            )
    return Verdict(True, f"all {len(cases)} cases match the reference", "graded")


def _number_as_sent(actual):
    """A decoded output as the function returned it, as far as its record tells: a number travels
    as an array of no axes, and is one again here (a 0-d array returned is noted in the record,
    ``wire.returned_in``)."""
    return actual[()] if isinstance(actual, np.ndarray) and actual.ndim == 0 else actual


def _graded_raise(exercise: Exercise, case: Case, answer: dict, references: Mapping) -> str | None:
    if "error" in answer:
        return must_raise(exercise, case, answer["error"], None, references)
    try:
        actual = decode(answer.get("output"))
    except Exception as err:  # whatever the student's line holds: unreadable is all it is
        return "unreadable answer" + ("" if case.hidden else f" ({err})")
    return must_raise(exercise, case, None, actual, references)


OWN_OBJECT = "an object of a class your code defines"


def _kind_shown(returned: str) -> str:
    """What a hidden case's reason says an unsendable output was (``wire.kind_of``'s words, sent
    by the student's process): a type of Python's, or an array of a NumPy dtype named without a
    size of the student's choosing (``<U424242`` is an array of str_); any other name is the
    student's own, and named by what it is."""
    if returned in BUILTIN_TYPES:
        return returned
    dtype = returned.removeprefix("array of ")
    try:
        found = np.dtype(dtype)
        plain = dtype != returned and found.names is None and found.shape == () and str(found) == dtype
    except (TypeError, ValueError, SyntaxError):
        plain = False
    if not plain:
        return OWN_OBJECT
    return f"array of {UNSIZED.get(found.kind, dtype)}"


UNSIZED = {"U": "str_", "S": "bytes_", "V": "void", "M": "datetime64", "m": "timedelta64"}  # sized kinds


BUILTIN_TYPES = frozenset(
    {"NoneType", "generator", "function", "method", "module", "ellipsis", "NotImplementedType"}
    | {name for name, value in vars(builtins).items() if isinstance(value, type)}
)


def _impure_shown(what, case: Case) -> str | None:
    """What a function did to its arguments (``watch.interfered``'s words, sent by the student's
    process), for a hidden case only in words ``interfered`` can say of that case's arguments: a
    text of the student's own is not shown."""
    if not what or not case.hidden:
        return what
    return what if what in watch.said(case.inputs) else "changed one of its arguments in place"


UNSENDABLE = "TypeError: returned "  # how ``wire.encode`` reports an output it cannot send
NOT_NUMBERS = {  # what an array of each dtype kind that is not real numbers holds, and a likely cause
    "c": "complex numbers (the square root or log of a negative number?): the answer is real",
    "O": "Python objects (an array made from a list of arrays of different shapes, or of None?)",
    "U": "strings",
    "S": "bytes",
    "M": "dates",
    "m": "time spans",
    "V": "records",
}


def not_numbers(kind: str) -> str:
    """``wire.kind_of``'s words for a student: "an array of complex128: complex numbers (...)"."""
    dtype = kind.removeprefix("array of ")
    if dtype == kind:
        return f"a {kind}"
    try:
        held = NOT_NUMBERS.get(np.dtype(dtype).kind, "")
    except TypeError:
        held = ""
    return f"an array of {dtype}" + (f": {held}" if held else "")


NOT_ATTEMPTED = "not attempted"


def _unwritten(exercise: Exercise, cases: list[Case], answers: dict[str, dict]) -> bool:
    """The stub was left as released (every case raised ``NotImplementedError``), or a concept
    check has no answer (still ``...`` or ``None``)."""
    if exercise.kind == "choice":
        error = (answers.get("answer") or {}).get("error", "")
        return error.startswith("no answer given") and error.endswith((" is Ellipsis)", " is None)"))
    errors = [(answers.get(case.name) or {}).get("error", "") for case in cases]
    return bool(errors) and all(e.startswith("NotImplementedError") for e in errors)


def _grade_choice(exercise_id: str, exercise: Exercise, answer: dict) -> Verdict:
    given = answer.get("output") or {}
    if not isinstance(given.get("value"), str):
        return Verdict(False, answer.get("error") or "no answer given", "wrong")
    key = keys.concept(exercise_id)
    if given["value"] == key.answer:
        return Verdict(True, f"correct. {key.explain}", "graded")
    # The explanation gives the answer away, so only a right answer earns it: a wrong one could
    # otherwise be corrected by a resubmission, and the explanation passed round the class.
    return Verdict(
        False, f"{given['value'][:20]!r} is not the answer: reread the section it asks about", "wrong"
    )
