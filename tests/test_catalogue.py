"""How the feedback does on answers nobody listed: the catalogues of ``tests/catalogue.py``,
``tests/catalogue_eighth.py``, ``tests/catalogue_ninth.py`` and ``tests/catalogue_tenth.py``.

Every wrong implementation there (written from the exercises' docstrings alone) goes through the
notebook's check and the grader, for two secrets: the first with the grader's diagnosis pass
(``helpers.explained``), whose message is the one reported; the second without it (the pass
changes a reason, never a score). Every right one too. The report printed (``pytest -s``) gives the share of wrong implementations
that lose points, the share of those the course's own lists do not name that get a message naming
their mistake (in the check and in grading), and each message. Asserted: every wrong one loses
points (at least 99%), none is told ✔ and then loses points, none fails the check and then keeps
full marks, at least 60% of the unlisted ones are named, and every right one passes the check and
gets full marks.
"""

import re
import warnings

import pytest
from catalogue import FIXED as LISTED_FIXED
from catalogue import RIGHT as LISTED_RIGHT
from catalogue import WRONG as LISTED_WRONG
from catalogue_eighth import EIGHTH_RIGHT
from catalogue_ninth import NINTH_FIXED, NINTH_RIGHT, NINTH_WRONG
from catalogue_tenth import TENTH_FIXED, TENTH_RIGHT, TENTH_WRONG
from helpers import SECRETS, everything_lent, explained
from helpers import graded as without_diagnosis

from grader import exercises
from grader.check import CheckFailed, check

RIGHT = LISTED_RIGHT + EIGHTH_RIGHT + NINTH_RIGHT + TENTH_RIGHT
WRONG = LISTED_WRONG + NINTH_FIXED + NINTH_WRONG + TENTH_FIXED + TENTH_WRONG
FIXED = LISTED_FIXED + NINTH_FIXED + TENTH_FIXED


def checked(entry) -> str | None:
    """``None`` for a ✔, else the check's message."""
    try:
        with everything_lent(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(entry.exercise, entry.fn, **entry.helpers)
    except CheckFailed as failed:
        return str(failed)
    return None


def verdicts(entry):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            explained(entry.exercise, entry.fn, SECRETS[0], entry.helpers),
            without_diagnosis(entry.exercise, entry.fn, SECRETS[1]),
        ]


def said(message: str) -> str:
    """A message without the label of its case (a case's name may say what it tests)."""
    return re.sub(r"^(`\w+` on )?(hidden )?case ('[^']*'|\(.*?\)): ", "", message, count=1)


def listed(message: str | None, exercise_id: str) -> bool:
    """The message is one of the exercise's own hints: the course's lists name this mistake."""
    exercise = exercises.get(exercise_id)
    hints = [m.hint for m in exercise.mistakes] + list(exercise.error_hints.values())
    return message is not None and any(hint in message for hint in hints)


@pytest.fixture(scope="module")
def report():
    rows = []
    for entry in WRONG:
        message, graded = checked(entry), verdicts(entry)
        rows.append(
            {
                "entry": entry,
                "check": message,
                "grade": graded[0].reason,
                "loses": any(not v.ok for v in graded),
                "ticked_then_loses": message is None and any(not v.ok for v in graded),
                "crossed_then_full": message is not None and all(v.ok for v in graded),
                "listed": listed(message, entry.exercise) or listed(graded[0].reason, entry.exercise),
                "named_check": bool(message and re.search(entry.names, said(message))),
                "named_grade": bool(re.search(entry.names, said(graded[0].reason))),
            }
        )
    unlisted = [r for r in rows if not r["listed"]]
    figures = {
        "wrong": len(rows),
        "lose points": sum(r["loses"] for r in rows) / len(rows),
        "unlisted": len(unlisted),
        "unlisted named by the check": sum(r["named_check"] for r in unlisted) / max(1, len(unlisted)),
        "unlisted named by the grader": sum(r["named_grade"] for r in unlisted) / max(1, len(unlisted)),
        "ticked then losing points": sum(r["ticked_then_loses"] for r in rows),
        "failing the check then full marks": sum(r["crossed_then_full"] for r in rows),
    }
    print("\n---- catalogue of wrong implementations ----")
    for r in rows:
        flag = "listed " if r["listed"] else ("NAMED  " if r["named_grade"] else "unnamed")
        print(f"[{flag}] {r['entry'].name}\n    check: {r['check']}\n    grade: {r['grade']}")
    print("---- figures ----")
    for key, value in figures.items():
        print(f"{key}: {value:.1%}" if isinstance(value, float) else f"{key}: {value}")
    return rows, figures


def test_the_catalogue_is_large_and_covers_every_chapter():
    assert len(WRONG) >= 60
    assert {e.exercise[:2] for e in WRONG} == {"01", "02", "03", "04", "05", "06"}


def test_wrong_implementations_lose_points(report):
    rows, figures = report
    assert figures["lose points"] >= 0.99, [r["entry"].name for r in rows if not r["loses"]]


def test_none_is_told_it_is_right_and_then_loses_points(report):
    rows, _ = report
    assert not [r["entry"].name for r in rows if r["ticked_then_loses"]]


CLASS = range(12)  # twelve students' hidden draws (a mistake lost by 18 in 100 shows in 9 runs in 10)


def test_a_tick_means_full_marks_for_every_students_draw(report):
    """Every answer the check ticks, right or wrong, keeps every point on twelve students' hidden
    cases, not only on ``SECRETS``: argsort's default sort in ``top_p_filter`` was ticked and then
    lost points for 18 students in 100, none of them among three."""
    rows, _ = report
    ticked = [r["entry"] for r in rows if r["check"] is None] + RIGHT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lost = [
            (entry.name, secret, verdict.reason)
            for entry in ticked
            for secret in CLASS
            if not (verdict := without_diagnosis(entry.exercise, entry.fn, secret)).ok
        ]
    assert len(ticked) >= len(RIGHT) and not lost, lost


def test_none_fails_the_check_and_then_keeps_full_marks(report):
    """The reverse of a ✔ that loses points: a check that fails where the grader gives every point
    would teach a student to distrust the check."""
    rows, _ = report
    assert not [r["entry"].name for r in rows if r["crossed_then_full"]]


def test_most_unlisted_mistakes_are_named(report):
    _, figures = report
    assert figures["unlisted named by the grader"] >= 0.6, figures
    assert figures["unlisted named by the check"] >= 0.6, figures


@pytest.mark.parametrize("entry", RIGHT, ids=[e.name for e in RIGHT])
def test_right_answers_written_another_way_keep_full_marks(entry):
    assert checked(entry) is None, checked(entry)
    for verdict in verdicts(entry):
        assert verdict.ok, verdict.reason


@pytest.mark.parametrize("entry", FIXED, ids=[e.name for e in FIXED])
def test_each_mistake_whose_feedback_was_fixed_is_named_in_the_check_and_in_grading(entry):
    """Each of these once got a vague message, or a ✔ and then lost points: now both the check
    and the grader name the mistake, and the hidden cases take points."""
    message = checked(entry)
    assert message is not None and re.search(entry.names, said(message)), message
    graded = verdicts(entry)
    assert any(not v.ok for v in graded)
    assert re.search(entry.names, said(graded[0].reason)), graded[0].reason
