"""``python -m grader adjust`` and ``python -m grader report``: an instructor's changes to a graded
folder, and its reports made again, both from the gradebook and without regrading anybody."""

import sys
from pathlib import Path

from . import autograde, formgrader, gradebook, reports, settings, spelling


def main(out: Path, student: str, exercise: str, score: float | None, reason: str | None, clear: bool) -> int:
    """Set (or clear) the override of one exercise of one student, then remake the reports."""
    out = out.resolve()
    with gradebook.lock(out), _open(out) as book:
        autograde.import_formgrader_scores(out, book)
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
        view = autograde.write_reports(out, book, term, {student})
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
        autograde.import_formgrader_scores(out, book)
        formgrader.fill_copies(out)
        view = autograde.write_reports(out, book, settings.load(out), set(book.students()))
    print(reports.summary_text(view))
    print(f"reports remade from {out / gradebook.FILE}")
    return 0


def _open(out: Path) -> gradebook.Gradebook:
    if not (out / gradebook.FILE).exists():
        raise gradebook.GradebookError(f"{out} has no gradebook ({gradebook.FILE}): grade into it first")
    return gradebook.Gradebook(out)


def _resolve(book: gradebook.Gradebook, roster: set[str], student: str, exercise: str):
    """(problem, None) or (None, (assignment, exercise, max_score)) for ``exercise`` given as
    ``name`` or ``assignment/name``, of a student graded or on the ``roster`` (by the id the
    reports give them)."""
    students = set(book.students()) | roster
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
