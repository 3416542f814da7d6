"""``python -m grader adjust``, ``merge-student``, ``unmerge-student``, ``remove-student``,
``restore-student`` and ``report``: an instructor's changes to a graded folder, and its reports
made again, all from the gradebook and without regrading anybody."""

import getpass
import sys
from pathlib import Path

from . import autograde, formgrader, gradebook, reports, settings, spelling


def main(out: Path, student: str, exercise: str, score: float | None, reason: str | None, clear: bool) -> int:
    """Set (or clear) the override of one exercise of one student, then remake the reports."""
    out = out.resolve()
    with gradebook.lock(out), _open(out) as book:
        remade = autograde.import_formgrader_scores(out, book)
        term = settings.load(out)
        problem, found = _resolve(book, {p.student for p in term.people}, student, exercise)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        assignment, name, max_score = found
        key = (student, assignment, name)
        if clear:
            if key not in book.overrides():
                print(f"error: {student} has no override on {assignment}/{name}", file=sys.stderr)
                return 2
            book.set_override(*key, None, reason or "cleared", "command")
        else:
            if score is None or not reason or not reason.strip():
                print("error: give the score and --reason (the student sees it), or --clear", file=sys.stderr)
                return 2
            if not 0 <= score <= max_score:
                print(
                    f"error: {assignment}/{name} is worth 0 to {max_score:g} points, not {score:g}",
                    file=sys.stderr,
                )
                return 2
            book.set_override(*key, score, reason.strip(), "command")
        view = autograde.write_reports(out, book, term, {student} | remade)
    line = next(
        line for line in view.lines if (line.row.student, line.row.assignment, line.row.exercise) == key
    )
    total = next(t for t in view.totals if (t.student, t.assignment) == (student, assignment))
    why = f" ({line.override.reason})" if line.override else " (computed; no override)"
    print(f"{student} {assignment}/{name}: {line.row.score:g} / {line.row.max_score:g}{why}")
    print(
        f"{student} {assignment}: {total.final:g} / {total.max_score:g} after late penalty; reports in {out}"
    )
    return 0


def report(out: Path) -> int:
    """Remake every report of ``out`` from its gradebook and print the class summary."""
    out = out.resolve()
    with gradebook.lock(out), _open(out) as book:
        autograde.import_formgrader_scores(out, book)  # made again if damaged: all are copied below
        formgrader.fill_copies(out)
        view = autograde.write_reports(out, book, settings.load(out), set(book.students()))
        ids = book.identities()
    print(reports.summary_text(view))
    for line in _identity_notes(ids):
        print(line)
    print(f"reports remade from {out / gradebook.FILE}")
    return 0


def _identity_notes(ids: gradebook.Identities) -> list[str]:
    """What the reports apply of ``merge-student`` and ``remove-student``, each with its reason, who
    and when (the last change of each id that still holds)."""
    last = {(action, student): (at, reason, who) for at, action, student, _, reason, who in ids.log}
    notes = []
    for student, into in sorted(ids.merged.items()):
        at, reason, who = last[("merge", student)]
        notes.append(f"{student} is merged into {into}: {reason} ({who}, {at})")
    for student, reason in sorted(ids.removed.items()):
        at, _, who = last[("remove", student)]
        notes.append(f"{student} is removed from the reports: {reason} ({who}, {at})")
    return notes


def _open(out: Path) -> gradebook.Gradebook:
    if not (out / gradebook.FILE).exists():
        raise gradebook.GradebookError(f"{out} has no gradebook ({gradebook.FILE}): grade into it first")
    return gradebook.Gradebook(out)


def _resolve(book: gradebook.Gradebook, roster: set[str], student: str, exercise: str):
    """(problem, None) or (None, (assignment, exercise, max_score)) for ``exercise`` given as
    ``name`` or ``assignment/name``, of a student graded or on the ``roster`` (by the id the
    reports give them)."""
    ids = book.identities()
    if problem := _gone(ids, student):
        return problem, None
    students = {s for s in set(book.students()) | roster if not ids.gone(s)}
    if student not in students:
        return (
            f"no student {student!r} in the gradebook or on the roster{spelling.hint(student, students)}",
            None,
        )
    assignment, _, name = exercise.rpartition("/")
    found = [e for e in book.exercises() if e.name == name and assignment in ("", e.assignment)]
    if not found:
        names = {f"{e.assignment}/{e.name}" if assignment else e.name for e in book.exercises()}
        return f"no exercise {exercise!r} in any graded assignment{spelling.hint(exercise, names)}", None
    if len(found) > 1:
        options = ", ".join(f"{e.assignment}/{e.name}" for e in found)
        return f"{exercise!r} is in several assignments: say which ({options})", None
    return None, (found[0].assignment, found[0].name, found[0].max_score)


# ---- who a student is ---------------------------------------------------------------------------------


def identity(out: Path, action: str, student: str, other: str, reason: str | None) -> int:
    """``merge-student`` (``student`` into ``other``), ``unmerge-student``, ``remove-student`` and
    ``restore-student``: the change is added to the gradebook's ``identities`` with the reason,
    who made it and when (nothing graded is changed or deleted), then every report is remade."""
    out = out.resolve()
    if not reason or not reason.strip():
        print(f"error: give --reason: it is kept in the gradebook with the {action}", file=sys.stderr)
        return 2
    with gradebook.lock(out), _open(out) as book:
        remade = autograde.import_formgrader_scores(out, book)
        term = settings.load(out)
        before = book.identities()
        problem = _check_identity(book, {p.student for p in term.people}, action, student, other, before)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        book.change_identity(action, student, other, reason.strip(), _who())
        ids = book.identities()
        # nbgrader's copy of every id whose units this moves: the id, the one it was merged into
        # (before and after) and the other named
        moved = {student, other, before.owner(student), ids.owner(student)} - {""}
        view = autograde.write_reports(out, book, term, moved | remade)
    done = {
        "merge": f"{student} merged into {other}: everything graded as {student} counts as {other}'s",
        "unmerge": f"{student} is its own student again",
        "remove": f"{student} removed from every report (kept in the gradebook)",
        "restore": f"{student} is back in every report",
    }[action]
    print(
        f"{done}; undo with `python -m grader {UNDO[action]} {student} --reason ...`"
        if action in UNDO
        else done
    )
    for line in view.lines:
        if line.row.status == "duplicate_submission" and line.row.student == (other or student):
            print(f"{line.row.student}: {line.row.reason}")
    shown = other if action == "merge" else student
    for total in view.totals:
        if total.student == shown:
            print(f"{shown} {total.assignment}: {total.final:g} / {total.max_score:g} ({total.status})")
    print(f"reports remade in {out}")
    return 0


UNDO = {"merge": "unmerge-student", "remove": "restore-student"}


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


def _gone(ids: gradebook.Identities, student: str) -> str:
    """Why ``student`` is no id to act on now (merged or removed), with what to do; ``""`` if it is."""
    if student in ids.merged:
        return (
            f"{student} was merged into {ids.owner(student)}: use {ids.owner(student)}, or undo the merge with "
            f"`python -m grader unmerge-student {student} --reason ...`"
        )
    if student in ids.removed:
        return (
            f"{student} was removed ({ids.removed[student]}): undo it with "
            f"`python -m grader restore-student {student} --reason ...`"
        )
    return ""


def _check_identity(
    book: gradebook.Gradebook, roster: set[str], action: str, student: str, other: str, ids
) -> str:
    """Why the change cannot be made (an unknown id, named with the closest ones), or ``""``;
    ``ids``: the gradebook's identities, read once by the caller."""
    graded = set(book.students())
    if action == "unmerge" and student not in ids.merged:
        return f"{student!r} was not merged into anyone{spelling.hint(student, ids.merged)}"
    if action == "restore" and student not in ids.removed:
        return f"{student!r} was not removed{spelling.hint(student, ids.removed)}"
    if action in ("unmerge", "restore"):
        return ""
    present = {s for s in graded | roster if not ids.gone(s)}
    known = graded if action == "merge" else graded | roster
    if student not in known:
        where = "graded in the gradebook" if action == "merge" else "in the gradebook or on the roster"
        return f"no student {student!r} {where}{spelling.hint(student, present & known)}"
    if problem := _gone(ids, student):
        return problem
    if action == "remove":
        return ""
    if other == student:
        return f"{student} cannot be merged into itself"
    if other not in graded | roster:
        return f"no student {other!r} in the gradebook or on the roster{spelling.hint(other, present - {student})}"
    if problem := _gone(ids, other):
        return problem
    return ""
