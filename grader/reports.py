"""Every report of a grading folder, made from the gradebook (``OUT/grades.sqlite``) and the term's
settings (``OUT/course.toml``) alone, so that no two of them can disagree.

``build`` turns the gradebook into lines (one per student and exercise: the computed score, or the
instructor's override of it) and totals (one per student and assignment, with the late penalty);
``write`` makes every file from them:

- ``grades.csv``, ``totals.csv``, ``integrity.csv``, ``canvas.csv`` (see the instructor guide for
  their columns). Students write some of what they hold (their names, code quoted as evidence,
  their functions' error messages), so a cell that a spreadsheet would run as a formula (it starts
  with = + - @, a tab or a carriage return, and is not a number) is written with a leading ``'``,
  which makes it text (OWASP's advice against CSV injection);
- ``summary.html``: the class at a glance, with a figure of how each exercise went;
- ``feedback/<student>/index.html`` and ``feedback/<student>/<assignment>.html``: what a student
  gets back, rewritten only when what they show has changed (a digest kept in the gradebook);
- ``feedback/_static/mathjax``: the book's MathJax, so that feedback pages work offline.

A student who submitted nothing for an assignment that has been graded for anyone (or who is on
the Canvas roster) gets ``missing`` lines, with that assignment's exercises and points.
"""

import csv
import hashlib
import html
import io
import json
import shlex
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import nbformat

from . import atomic, course, feedback, integrity, late, lms, spelling
from .gradebook import PROBLEMS, Exercise, Gradebook, Override, Submitted
from .results import FIELDS, Row
from .settings import Settings
from .submissions import SAME_TIME

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FAILED = {"error", "invalid_notebook"}  # the grader could not grade the notebook
GRADES_FIELDS = (*FIELDS, "auto_score", "override_reason")
TOTALS_FIELDS = (
    "student", "name", "lms_id", "assignment", "status", "score", "max_score", "days_late",
    "late_penalty", "final_score", "submitted_at", "time_source", "late_note", "overrides", "flags",
)  # fmt: skip
INTEGRITY_FIELDS = ("student", "assignment", "notebook", "exercises", "reason", "cell", "line", "code")
MATHJAX = course.ROOT / "book" / "_static" / "mathjax"
# What tex-mml-chtml.js loads from beside itself: fonts, TeX extensions on demand, the menu's
# accessibility parts (2.5 MB, not the 24 MB of every MathJax build).
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "LICENSE",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "a11y",
    "ui",
    "adaptors",
)
PAGE_VERSION = "10"  # change to rewrite every feedback page at the next report


@dataclass(frozen=True)
class Line:
    """One exercise of one student, as every report shows it."""

    notebook: str
    row: Row  # the score that counts: the override's when there is one
    auto_score: float  # what the grader computed
    override: Override | None


@dataclass(frozen=True)
class Total:
    """One assignment of one student."""

    student: str
    assignment: str
    status: str  # graded, failed or missing
    score: float  # before the late penalty
    max_score: float
    lateness: late.Lateness
    submitted: Submitted | None
    overrides: int
    flags: int

    @property
    def final(self) -> float:
        return round(self.score - self.lateness.penalty, 6)


@dataclass(frozen=True)
class View:
    lines: list[Line]
    totals: list[Total]
    people: dict[str, lms.Person]
    findings: list[dict]
    exercises: dict[str, list[Exercise]]  # by assignment
    gone: frozenset = frozenset()  # ids merged into another or removed: no report is theirs


def build(book: Gradebook, settings: Settings, only: set[str] | None = None) -> View:
    """The gradebook as the reports show it (for the students in ``only``, if given), read through
    its identity changes (``Gradebook.identities``): what was graded under an id merged into
    another counts as the other's, and a removed id is in no report."""
    ids = book.identities()
    students = {s: who for s, who in book.students().items() if not ids.gone(s)}
    for student, (name, lms_id) in book.students().items():  # a merged id's name, if theirs has none
        owner = ids.owner(student)
        if owner in students and student != owner and not any(students[owner]):
            students[owner] = (name, lms_id)
    roster = [
        p for p in settings.people if not any(ids.owner(i) in ids.removed for i in p.ids() | {p.student})
    ]
    people = _people(students, roster, settings.roster_ids)
    if only is not None:
        people = {student: person for student, person in people.items() if student in only}
    exercises: dict[str, list[Exercise]] = defaultdict(list)
    for exercise in book.exercises():
        exercises[exercise.assignment].append(exercise)
    submitted = book.submissions()
    units, counted, superseded = _units(submitted, ids, settings)
    unrecorded: set[tuple[str, str, str]] = set()  # scores whose unit has no submission row

    def owner(student: str, assignment: str, notebook: str) -> str | None:
        key = (student, assignment, notebook)
        if key in counted or key in submitted:  # a unit left out (removed, superseded): None
            return counted.get(key)
        who = ids.owner(student)  # no row at all: the scores are shown, and flagged
        if who in ids.removed:
            return None
        unrecorded.add((who, assignment, notebook))
        return who

    overrides = _overrides(book.overrides(), ids)
    findings = [
        {**f, "student": who}
        for f in book.findings()
        if (who := owner(f["student"], f["assignment"], f["notebook"]))
    ]
    findings += integrity.pairs(book.fingerprints(owner))
    scored: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for notebook, row in book.scores():
        if (who := owner(row.student, row.assignment, notebook)) is None:
            continue
        row = replace(row, student=who)
        override = overrides.get((row.student, row.assignment, row.exercise))
        counted_row = row if override is None else replace(row, score=override.score)
        scored[(row.student, row.assignment)].append(Line(notebook, counted_row, row.score, override))
    for kept, unit in superseded:
        row = Row(kept.student, "", unit.file, 0, 0, "duplicate_submission", _superseded(kept, unit))
        scored[(kept.student, "")].append(Line(PROBLEMS, row, 0.0, None))
    for who, assignment, notebook in sorted(unrecorded):
        findings.append(_unrecorded(who, assignment, notebook))
    for (student, assignment), mine in scored.items():  # every total out of the release's points
        mine[:] = _to_release(student, assignment, mine, exercises.get(assignment, []), overrides)
    flags = Counter((f["student"], f["assignment"]) for f in findings)
    lines, totals = [], []
    for student in sorted(people):
        lines += scored.get((student, ""), [])  # notebooks no chapter has, and submission problems
        if not any(k[0] == student and k[2] != PROBLEMS for k in units) and (student, "") in scored:
            continue  # only files that could not be graded (a name nobody has): nothing is missing
        for assignment, expected in sorted(exercises.items()):
            mine = scored.get((student, assignment)) or _to_release(
                student, assignment, [], expected, overrides
            )
            lines += mine
            subs = [units[k] for k in sorted(units) if k[:2] == (student, assignment)]
            totals.append(_total(student, assignment, mine, subs, flags[(student, assignment)], settings))
    gone = frozenset(ids.merged) | frozenset(ids.removed)
    return View(lines, totals, people, findings, dict(exercises), gone)


def _units(submitted: dict[tuple[str, str, str], Submitted], ids, settings: Settings):
    """The submissions that count, by (student, assignment, notebook) as the reports give them:
    ``(units, counted, superseded)``, ``counted`` the id the reports give each unit of the
    gradebook that counts, ``superseded`` (the one that counts, the other) for each pair of
    copies of a notebook that a merge made one student's (``_later_copy``). A time without a zone
    (a zip's) is read in the term's zone as it is now."""
    units: dict[tuple[str, str, str], Submitted] = {}
    counted: dict[tuple[str, str, str], str] = {}
    superseded = []
    for key, unit in sorted(submitted.items()):
        who = ids.owner(key[0])
        if who in ids.removed:
            continue
        unit = replace(
            unit, submitted_at=unit.submitted_at and lms.in_zone(unit.submitted_at, settings.timezone)
        )
        if who != key[0]:
            unit = replace(unit, student=who, graded_as=key[0])
        mine = (who, *key[1:])
        counted[key] = who
        if key[2] == PROBLEMS:  # every id's problem rows are kept
            units.setdefault(mine, unit)
            continue
        if mine in units:
            kept = _later_copy(units[mine], unit)
            other = unit if kept is units[mine] else units[mine]
            counted.pop((other.graded_as or other.student, *key[1:]))
            superseded.append((kept, other))
            unit = kept
        units[mine] = unit
    return units, counted, superseded


def _later_copy(a: Submitted, b: Submitted) -> Submitted:
    """Which of two graded copies of one student's notebook counts, by the rule for two files of a
    notebook in one submission (``grader.submissions``): the later submission time, when both are
    known and more than ``SAME_TIME`` seconds apart; else the one graded later; else the one
    graded under the id the reports give the student."""
    if (
        a.submitted_at
        and b.submitted_at
        and abs((a.submitted_at - b.submitted_at).total_seconds()) > SAME_TIME
    ):
        return a if a.submitted_at > b.submitted_at else b
    if a.run != b.run:
        return a if a.run > b.run else b
    return b if a.graded_as and not b.graded_as else a


def _superseded(kept: Submitted, other: Submitted) -> str:
    def named(unit: Submitted) -> str:
        when = f", submitted {unit.submitted_at:%Y-%m-%d %H:%M %Z}".rstrip() if unit.submitted_at else ""
        return f"{unit.file} (graded as {unit.graded_as or unit.student}{when})"

    return (
        f"not counted: {named(other)} and {named(kept)} are copies of {kept.assignment}/{kept.notebook} of "
        "one student (merged); the later submission counts (at the same time, the one graded later). "
        "Both stay in the gradebook"
    )


def _overrides(overrides: dict[tuple[str, str, str], Override], ids) -> dict[tuple[str, str, str], Override]:
    """The overrides by the id the reports give the student: a merged id's follow them (of two for
    one exercise, the later set counts); a removed id's are left out."""
    found: dict[tuple[str, str, str], Override] = {}
    for (student, assignment, exercise), override in sorted(overrides.items(), key=lambda item: item[1].at):
        who = ids.owner(student)
        if who not in ids.removed:
            found[(who, assignment, exercise)] = replace(override, student=who)
    return found


def _unrecorded(student: str, assignment: str, notebook: str) -> dict:
    """The finding that flags scores the gradebook holds without the unit's submission row (a
    gradebook changed by hand or by another program, a row lost): they count, and deserve a look."""
    reason = (
        f"scores of {assignment or '(no chapter)'}/{notebook} are in the gradebook without a record of "
        "the submission they were graded from (file, time, run): they are shown and counted; check "
        "them, or regrade the notebook (--force)"
    )
    return {"student": student, "assignment": assignment, "notebook": notebook, "exercises": [],
            "reason": reason, "cell": "", "line": "", "code": ""}  # fmt: skip


def _to_release(
    student: str, assignment: str, lines: list[Line], expected: list[Exercise], overrides: dict
) -> list[Line]:
    """A student's lines of an assignment counted against its exercises as released now, so that
    every total is out of the same points (as Canvas's column is): an exercise the release no
    longer has is shown, not counted (0 of 0, ``not_counted``; its score stays in ``auto_score``);
    one it gained after the notebook was graded is 0 of its points (``not_graded``: a regrade scores
    it), and one of a notebook of the assignment the student did not submit is ``missing``. The
    instructor's score of an exercise counts as for any other."""
    if not expected:
        return lines
    released = {e.name: e for e in expected}
    counted = []
    for line in lines:
        if line.row.exercise in released:
            counted.append(_repointed(line, released[line.row.exercise].max_score))
            continue
        reason = (
            f"not counted: the assignment no longer has this exercise (it was worth {line.row.max_score:g} "
            f"points; the grader's score was {line.auto_score:g})"
        )
        row = replace(line.row, score=0.0, max_score=0.0, status="not_counted", reason=reason)
        counted.append(replace(line, row=row))
    have, notebooks = {line.row.exercise for line in lines}, {line.notebook for line in lines}
    for e in expected:
        if e.name in have:
            continue
        override = overrides.get((student, assignment, e.name))
        if e.notebook in notebooks:
            status, reason = (
                "not_graded",
                (
                    f"added to the assignment after your {e.notebook}.ipynb was graded: it is scored when the "
                    "notebook is graded again"
                ),
            )
        else:
            status, reason = "missing", f"no {e.notebook}.ipynb was submitted for this assignment"
        if override is not None:
            reason += "; the instructor's score counts"
        row = Row(student, assignment, e.name, _within(override, e.max_score), e.max_score, status, reason)
        counted.append(Line(e.notebook, row, 0.0, override))
    return counted


def _repointed(line: Line, points: float) -> Line:
    """``line`` out of the ``points`` its exercise is worth now, if it was graded when it was worth
    others: the grader's score scaled (a case is right or wrong, so the score is all or nothing
    of the points), the instructor's kept up to the new points."""
    before = line.row.max_score
    if before == points:
        return line
    auto = line.auto_score * points / before if before else 0.0
    reason = (
        f"{line.row.reason} (scored {line.auto_score:g} of {before:g}; the exercise is worth {points:g} now)"
    )
    score = auto if line.override is None else _within(line.override, points)
    return replace(line, row=replace(line.row, score=score, max_score=points, reason=reason), auto_score=auto)


def _within(override: Override | None, points: float) -> float:
    """The score an instructor's override gives an exercise worth ``points`` (0 without one): an
    override typed when it was worth more counts for all of its points, no more."""
    return 0.0 if override is None else min(override.score, points)


def release_changes(view: View) -> list[str]:
    """What to regrade: each student's notebook graded before the release changed its exercises."""
    changed: dict[tuple[str, str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in view.lines:
        if line.row.status in ("not_graded", "not_counted"):
            what = "added" if line.row.status == "not_graded" else "removed"
            changed[(line.row.student, line.row.assignment, line.notebook)][what].append(line.row.exercise)
    return [
        f"{student}: {assignment}/{notebook}.ipynb was graded before the release changed its exercises ("
        + ", ".join(f"{' '.join(names)} {what}" for what, names in sorted(whats.items()))
        + f"): its total counts the release's exercises; regrade it with `python -m grader autograde "
        f"SUBMISSIONS --assignment {assignment} --student {student} --force`"
        for (student, assignment, notebook), whats in sorted(changed.items())
    ]


def _people(
    students: dict[str, tuple[str, str]], roster: list[lms.Person], roster_ids: dict[str, str]
) -> dict[str, lms.Person]:
    """Everyone in the gradebook, as the roster (by their id, or the one ``roster_ids`` gives
    them) or else their submissions name them, and everyone else on the roster."""
    people = {}
    for student, (name, lms_id) in students.items():
        found = lms.match(roster_ids.get(student, student), roster)
        people[student] = found or lms.Person(name or student, canvas_id=lms_id)
    matched = set(people.values())
    for person in roster:
        if person not in matched:
            people[person.student] = person
    return people


def _total(
    student: str, assignment: str, lines: list[Line], subs: list[Submitted], flags: int, settings: Settings
) -> Total:
    score = round(sum(line.row.score for line in lines), 6)
    max_score = sum(line.row.max_score for line in lines)
    if not subs:
        status = "failed" if any(line.row.status != "missing" for line in lines) else "missing"
    elif any(line.row.status in FAILED for line in lines) or not all(s.complete for s in subs):
        status = "failed"
    else:
        status = "graded"
    first = subs[0] if subs else None
    lateness = (
        late.assess(
            settings.late,
            settings.due_for(assignment, student),
            first.submitted_at,
            first.lms_late,
            score,
            max_score,
            extended=(assignment, student) in settings.extensions,
        )
        if first
        else late.ON_TIME
    )
    overrides = sum(line.override is not None for line in lines)
    return Total(student, assignment, status, score, max_score, lateness, first, overrides, flags)


# ---- files -----------------------------------------------------------------------------------------


def write(out: Path, book: Gradebook, settings: Settings) -> View:
    """Every report file of ``out`` (see the module docstring); returns what they were made from."""
    view = build(book, settings)
    _write_csv(out / "grades.csv", GRADES_FIELDS, [_grade_record(line) for line in view.lines])
    _write_csv(out / "totals.csv", TOTALS_FIELDS, [_total_record(t, view.people) for t in view.totals])
    _write_csv(out / "integrity.csv", INTEGRITY_FIELDS, [_finding_record(f) for f in view.findings])
    columns = {a: settings.canvas_columns.get(a, a) for a in sorted(view.exercises)}
    canvas = lms.canvas_rows(*_one_row_each(view, settings), columns)
    _write_csv(out / "canvas.csv", (*lms.IDENTITY, *columns.values()), canvas)
    unmatched = sorted(student for student, person in view.people.items() if not person.canvas_id)
    if settings.roster and unmatched:
        print(
            f"warning: canvas.csv: {len(unmatched)} graded student(s) match no one on the roster "
            f"({', '.join(unmatched[:10])}): Canvas cannot match their rows; add them to the roster, or give "
            'each their roster id in course.toml ([roster_ids] "folder name" = "roster id")',
            file=sys.stderr,
        )
    elif unmatched:  # graded from folders (hub logins), with no roster to give them their Canvas IDs
        some = len(unmatched) < len(view.people)
        print(
            f"{'warning' if some else 'note'}: canvas.csv: "
            + (
                f"{len(unmatched)} student(s) have no Canvas ID ({', '.join(unmatched[:10])}): "
                if some
                else "no student in it has a Canvas ID: "
            )
            + f"Canvas's import cannot match {'their' if some else 'its'} rows without one. For Canvas, give the roster in "
            'course.toml ([canvas] roster = "canvas-export.csv", its gradebook export)',
            file=sys.stderr,
        )
    for change in release_changes(view):
        print(f"warning: {change}", file=sys.stderr)
    _warn_about_look_alikes(view)
    _warn_about_overrides(view)
    _warn_about_columns(settings, columns)
    _warn_about_due_dates(settings, set(view.exercises))
    _warn_about_extensions(settings, set(view.people))
    _write_summary(out / "summary.html", view)
    write_feedback(out, book, view)
    return view


def _one_row_each(
    view: View, settings: Settings | None = None
) -> tuple[dict[str, lms.Person], dict[tuple[str, str], float]]:
    """canvas.csv's people and final scores, one row per person: students graded under two ids that
    the roster or the LMS says are one person (a Canvas zip's 101 one week, the hub's alice the
    next) are one row (Canvas took one of two rows with one ID over the other), each assignment's
    score from the id it was submitted under. Work not submitted whose due date (the student's,
    with an extension) has not come is left blank: a 0 imported into Canvas would show before it
    is due; once due (or with no due date), it is 0."""
    settings, now = settings or Settings(), datetime.now(UTC)
    groups: dict[object, list[str]] = defaultdict(list)
    for student, person in sorted(view.people.items()):
        groups[person if person.ids() else student].append(student)
    totals = {(t.student, t.assignment): t for t in view.totals}
    people, finals = {}, {}
    for students in groups.values():
        people[students[0]] = view.people[students[0]]
        for assignment in view.exercises:
            mine = [totals[(s, assignment)] for s in students if (s, assignment) in totals]
            submitted = [t for t in mine if t.submitted]
            if len(submitted) > 1:
                print(
                    f"warning: canvas.csv: {' and '.join(t.student for t in submitted)} are one student on the "
                    f"roster ({people[students[0]].name}) and each submitted {assignment}: their row has the "
                    "higher final score; check which submission counts",
                    file=sys.stderr,
                )
            chosen = max(submitted or mine, key=lambda t: t.final, default=None)
            due = chosen and settings.due_for(assignment, chosen.student)
            if chosen and (submitted or not due or due <= now):
                finals[(students[0], assignment)] = chosen.final
    return people, finals


def _warn_about_overrides(view: View) -> None:
    """An instructor's score above the points its exercise is worth now (the release changed them
    after it was given) counts for those points only: name each, with the command that sets it
    again."""
    for line in view.lines:
        if line.override is not None and line.override.score > line.row.max_score:
            r = line.row
            print(
                f"warning: {r.student}: your score {line.override.score:g} for {r.assignment} {r.exercise} is above "
                f"the {r.max_score:g} points the exercise is worth now: it counts {r.score:g}. Set it again with "
                f"python -m grader adjust {shlex.quote(r.student)} {shlex.quote(r.exercise)} SCORE --reason ...",
                file=sys.stderr,
            )


def _warn_about_look_alikes(view: View) -> None:
    """Ids that differ only in case or spaces (a folder "Alice" one week, "alice" the next) are two
    students to the gradebook, each missing what the other submitted: name them, with the command
    that makes them one. Ids the roster or the LMS already gives one person are one row already."""
    alike: dict[str, list[str]] = defaultdict(list)
    for student in sorted(view.people):
        alike[" ".join(student.split()).casefold()].append(student)
    for ids in alike.values():
        if len(ids) < 2 or (view.people[ids[0]].ids() and len({view.people[i] for i in ids}) == 1):
            continue
        merges = "; ".join(
            f"python -m grader merge-student {shlex.quote(other)} {shlex.quote(ids[0])} --reason ..."
            for other in ids[1:]
        )
        print(
            f"warning: {' and '.join(ids)} differ only in case or spaces: each is a student of their own in "
            f"every report, missing what the other submitted. If they are one student: {merges}",
            file=sys.stderr,
        )


def _warn_about_columns(settings: Settings, columns: dict[str, str]) -> None:
    """A column of canvas.csv that the roster has no assignment for becomes a new assignment when
    Canvas imports it: name it, with the roster's title that looks most like it."""
    if not settings.roster:
        return
    for assignment, title in columns.items():
        if not lms.unknown_column(title, list(settings.canvas_titles)):
            continue
        near = spelling.closest(title, settings.canvas_titles, n=1, cutoff=0.3)
        meant = f' = "{near[0]}"' if near else ' = "Name (id)" as its header has it'
        print(
            f"warning: canvas.csv: the column {title!r} ({assignment}) is no assignment of the roster "
            f"{settings.roster.name}: Canvas would import it as a new assignment. Give its title in "
            f'course.toml, [canvas] "{assignment}"{meant}',
            file=sys.stderr,
        )


def _warn_about_due_dates(settings: Settings, assignments: set[str]) -> None:
    """A term with due dates and a graded assignment without one (this week's date not written
    yet): nothing of it is late, which the reports would show without a word."""
    undated = sorted(assignments - set(settings.due) - {""})
    if settings.due and undated:
        print(
            f"warning: course.toml: no due date for {', '.join(undated)} ([due]): nothing submitted for "
            "it counts as late",
            file=sys.stderr,
        )


def _warn_about_extensions(settings: Settings, students: set[str]) -> None:
    """An extension for a student nobody has (a typo, another id) applies to nothing: say so, with
    the ids it may have meant."""
    for assignment, student in sorted(settings.extensions):
        if student in students:
            continue
        print(
            f'warning: course.toml: extensions."{assignment}".{student} names no student graded or on '
            f"the roster: it applies to nobody{spelling.hint(student, students)}",
            file=sys.stderr,
        )


def _write_summary(path: Path, view: View) -> None:
    """``summary.html``, remade only when its content has changed since it was last written."""
    content = [PAGE_VERSION, [(line.row.as_dict(), line.notebook) for line in view.lines]]
    content += [
        (t.student, t.assignment, t.status, t.final, t.lateness.days, t.flags, t.overrides)
        for t in view.totals
    ]
    content += [sorted(view.people.items())]
    stamp = f"<!-- content {hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()} -->"
    if path.exists() and stamp in path.read_text(encoding="utf-8"):
        return
    atomic.write_text(path, summary_page(view) + stamp + "\n")


def _grade_record(line: Line) -> dict:
    return {
        **line.row.as_dict(),
        "auto_score": line.auto_score,
        "override_reason": line.override.reason if line.override else "",
    }


def _total_record(t: Total, people: dict[str, lms.Person]) -> dict:
    when = t.submitted.submitted_at if t.submitted else None
    return {
        "student": t.student,
        "name": people[t.student].name,
        "lms_id": people[t.student].canvas_id,
        "assignment": t.assignment,
        "status": t.status,
        "score": f"{t.score:g}",
        "max_score": f"{t.max_score:g}",
        "days_late": t.lateness.days,
        "late_penalty": f"{t.lateness.penalty:g}",
        "final_score": f"{t.final:g}",
        "submitted_at": when.isoformat(timespec="seconds") if when else "",
        "time_source": t.submitted.time_source if t.submitted else "",
        "late_note": t.lateness.note,
        "overrides": t.overrides,
        "flags": t.flags,
    }


def _finding_record(finding: dict) -> dict:
    exercises = finding.get("exercises", [])
    return {**finding, "exercises": " ".join(exercises) if isinstance(exercises, list) else exercises}


def _write_csv(path: Path, fields, records: list[dict]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _inert(value) for key, value in record.items()} for record in records)
    atomic.write_text(path, buffer.getvalue())


def _inert(value):
    """``value`` as a cell no spreadsheet runs: text that starts like a formula gets a leading ``'``."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value  # a negative number is not a formula
    except ValueError:
        return "'" + value


# ---- feedback ----------------------------------------------------------------------------------


def write_feedback(out: Path, book: Gradebook, view: View) -> None:
    """Each student's index page, and every assignment page whose content has changed."""
    _install_mathjax(out / "feedback" / "_static")
    by_unit: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for line in view.lines:
        by_unit[(line.row.student, line.row.assignment)].append(line)
    for total in view.totals:
        if total.submitted is None:
            continue
        unit = total.submitted
        lines = by_unit[(total.student, total.assignment)]
        digest = _page_digest(unit, lines, total)
        page = out / "feedback" / total.student / f"{total.assignment}.html"
        if unit.page_digest != digest or not page.exists():
            atomic.write_text(page, assignment_page(out, unit, lines, total))
            book.set_page_digest(unit.graded_as or unit.student, unit.assignment, unit.notebook, digest)
    by_student: dict[str, list[Total]] = defaultdict(list)
    for total in view.totals:
        by_student[total.student].append(total)
    with_pages = {t.student for t in view.totals if t.submitted}
    with_pages |= {line.row.student for line in view.lines if not line.row.assignment}
    for student in sorted(with_pages):
        page = index_page(student, view.people[student], by_student[student])
        atomic.write_text(out / "feedback" / student / "index.html", page)
    for student in sorted(view.gone - with_pages):  # merged or removed: made again if that is undone
        folder = out / "feedback" / student
        if student and folder.is_dir() and folder.parent == out / "feedback":
            shutil.rmtree(folder)


def _page_digest(unit: Submitted, lines: list[Line], total: Total) -> str:
    content = [PAGE_VERSION, unit.run, unit.sha256, unit.student, total.lateness.__dict__]
    content += [(line.row.as_dict(), line.override.reason if line.override else None) for line in lines]
    return hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()


def assignment_page(out: Path, unit: Submitted, lines: list[Line], total: Total) -> str:
    title = f"{unit.assignment}: feedback for {unit.student}"
    rows = [_shown(line) for line in lines]
    header = '<nav><a href="index.html">All your grades</a></nav>' + _late_note(total)
    late = (total.lateness.days, total.lateness.penalty, total.final)
    graded = (
        out / "autograded" / (unit.graded_as or unit.student) / unit.assignment / f"{unit.notebook}.ipynb"
    )
    released = out / "release" / unit.assignment / f"{unit.notebook}.ipynb"
    if graded.exists() and released.exists():
        nb = nbformat.read(graded, as_version=4)
        return feedback.render(nb, nbformat.read(released, as_version=4), rows, title, header, late)
    return feedback.summary_page(title, rows, header, late)


def _shown(line: Line) -> Row:
    """The row as the student sees it: an override says so in the status (a ✔ beside "wrong"
    reads as a mistake of the grader's), and gives its reason."""
    if line.override is None:
        return line.row
    changed = (
        f"changed by your instructor from {line.auto_score:g} to {line.row.score:g}: {line.override.reason}"
    )
    status = f"{line.row.status}, changed by your instructor"
    return replace(line.row, status=status, reason=f"{line.row.reason} ({changed})")


def _late_note(total: Total) -> str:
    if not total.lateness.note:
        return ""
    cost = (
        f" Late penalty: {total.lateness.penalty:g} points; score after it: {total.final:g} / {total.max_score:g}."
        if total.lateness.penalty
        else ""
    )
    return f'<p class="note">Submitted {html.escape(total.lateness.note)}.{cost}</p>'


def index_page(student: str, person: lms.Person, totals: list[Total]) -> str:
    head = "<tr><th>assignment</th><th>score</th><th>status</th></tr>"
    rows = []
    for t in totals:
        name = html.escape(t.assignment)
        link = f'<a href="{html.escape(t.assignment)}.html">{name}</a>' if t.submitted else name
        rows.append(
            f"<tr><td>{link}</td><td>{t.final:g}&nbsp;/&nbsp;{t.max_score:g}</td><td>{_status_words(t)}</td></tr>"
        )
    final, out_of = sum(t.final for t in totals), sum(t.max_score for t in totals)
    rows.append(f"<tr><th>total</th><th>{final:g}&nbsp;/&nbsp;{out_of:g}</th><td></td></tr>")
    note = "<p>Scores are after any late penalty.</p>"
    body = "\n".join([note, '<div class="wide"><table>', head, *rows, "</table></div>"])
    return feedback.page(f"Grades of {person.name or student}", body, static="../_static")


def _status_words(t: Total) -> str:
    words = {"graded": "graded", "failed": "could not be graded: see the page", "missing": "not submitted"}[
        t.status
    ]
    if t.lateness.days:
        words += f", {t.lateness.days} day{'s' * (t.lateness.days > 1)} late"
    if t.lateness.penalty:
        words += f": {t.lateness.penalty:g} points off {t.score:g} / {t.max_score:g}"
    if t.overrides:
        words += f", {t.overrides} score(s) changed by your instructor"
    return words


def _install_mathjax(static: Path) -> None:
    """The book's MathJax (``make book-assets``) beside the feedback pages, copied once."""
    target = static / "mathjax"
    entry = "tex-mml-chtml.js"
    if not (MATHJAX / entry).exists():
        print(
            f"warning: {MATHJAX} is missing (run `make book-assets`): feedback pages show math as TeX source",
            file=sys.stderr,
        )
        return
    if (target / entry).exists() and (target / entry).stat().st_size == (MATHJAX / entry).stat().st_size:
        return
    shutil.rmtree(target, ignore_errors=True)
    for part in MATHJAX_PARTS:
        source = MATHJAX / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / part)


# ---- the class at a glance ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExerciseStats:
    assignment: str
    exercise: str
    max_score: float
    mean: float
    outcomes: Counter  # OUTCOMES label -> students
    scores: Counter  # score -> students

    @property
    def students(self) -> int:
        return sum(self.outcomes.values())

    def share(self, outcome: str) -> float:
        return self.outcomes[outcome] / self.students if self.students else 0.0


OUTCOMES = {  # label -> colour in the figure
    "full marks": "#4caf50",
    "less than full marks": "#e57373",
    "not attempted": "#bdbdbd",
    "timeout, crash, error": "#ffb74d",
}
STOPPED = {"timeout", "kernel_died"}  # the student's code was stopped (the notebook was graded)
RUN_FAILED = STOPPED | {"error", "invalid_notebook"}


def outcome(line: Line) -> str:
    """Which OUTCOMES label a student's exercise falls under (an override counts as its score)."""
    if line.row.score >= line.row.max_score:
        return "full marks"
    if line.row.status == "not_attempted":
        return "not attempted"
    return "timeout, crash, error" if line.row.status in RUN_FAILED else "less than full marks"


def exercise_stats(view: View) -> list[ExerciseStats]:
    """How each exercise went, over the students who submitted its assignment."""
    submitted = {(t.student, t.assignment) for t in view.totals if t.status != "missing"}
    by_exercise: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for line in view.lines:
        if (line.row.student, line.row.assignment) in submitted:
            by_exercise[(line.row.assignment, line.row.exercise)].append(line)
    stats = []
    for assignment, expected in sorted(view.exercises.items()):
        for e in expected:
            lines = by_exercise.get((assignment, e.name), [])
            scores = [line.row.score for line in lines]
            stats.append(
                ExerciseStats(
                    assignment,
                    e.name,
                    e.max_score,
                    sum(scores) / len(scores) if scores else 0.0,
                    Counter(map(outcome, lines)),
                    Counter(scores),
                )
            )
    return stats


def assignment_counts(view: View, assignment: str) -> dict[str, int]:
    totals = [t for t in view.totals if t.assignment == assignment]
    counts = Counter(t.status for t in totals)
    return {
        "graded": counts["graded"],
        "failed": counts["failed"],
        "missing": counts["missing"],
        "flagged": sum(t.flags > 0 for t in totals),
        "late": sum(t.lateness.days > 0 for t in totals),
    }


def summary_text(view: View) -> str:
    """The class summary printed at the end of a run: per assignment, how many were graded,
    failed, missing and flagged, then each exercise, hardest first."""
    lines = [f"Class summary: {len(view.people)} students, {len(view.exercises)} assignment(s)"]
    stats = exercise_stats(view)
    for assignment in sorted(view.exercises):
        counts = assignment_counts(view, assignment)
        done = [t for t in view.totals if t.assignment == assignment and t.status != "missing"]
        out_of = sum(e.max_score for e in view.exercises[assignment])
        mean = sum(t.final for t in done) / len(done) if done else 0.0
        lines.append(
            f"{assignment}: {counts['graded']} graded, {counts['failed']} failed, {counts['missing']} missing, "
            f"{counts['flagged']} flagged, {counts['late']} late; mean {mean:.1f} / {out_of:g}"
        )
        lines.append(
            f"  {'exercise (hardest first)':30} {'points':>6} {'mean':>6} {'full':>5} {'not tried':>9}  scores"
        )
        mine = sorted(
            (s for s in stats if s.assignment == assignment), key=lambda s: s.mean / (s.max_score or 1)
        )
        for s in mine:
            spread = " ".join(f"{score:g}:{n}" for score, n in sorted(s.scores.items()))
            lines.append(
                f"  {s.exercise:30} {s.max_score:6g} {s.mean:6.2f} {s.share('full marks'):5.0%} {s.share('not attempted'):9.0%}  {spread}"
            )
    return "\n".join(lines)


SUMMARY_CSS = """body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } td, th { border: 1px solid #ddd; padding: .2rem .5rem; }
td.n { text-align: right; } .wide { overflow-x: auto; } td.look { min-width: 14rem; }
.outcomes { margin: 1rem 0; } .outcomes dl { display: grid; grid-template-columns: minmax(0, max-content) minmax(50%, 1fr); gap: .3rem .8rem; }
.outcomes dt { font-family: monospace; overflow-wrap: anywhere; } .outcomes dd { margin: 0; }
.bar { display: flex; height: 1.2rem; border: 1px solid #999; } .bar span { height: 100%; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
.swatch { display: inline-block; width: .9rem; height: .9rem; margin-right: .3rem; vertical-align: -.1rem; border: 1px solid #999; }"""
# A table in a box that scrolls sideways on a narrow screen, which the keyboard can focus (to scroll
# it with the arrow keys).
SCROLLING = '<div class="wide" tabindex="0"><table>'
SUMMARY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"
)


def summary_page(view: View) -> str:
    """``summary.html``: per assignment, the counts, a figure and a table of the exercises; then
    every student's final scores."""
    stats = exercise_stats(view)
    parts = [f"<h1>Class summary</h1><p>{len(view.people)} students.</p>"]
    for assignment in sorted(view.exercises):
        counts = assignment_counts(view, assignment)
        mine = [s for s in stats if s.assignment == assignment]
        parts.append(f"<h2>{html.escape(assignment)}</h2>")
        parts.append("<p>" + ", ".join(f"{n} {word}" for word, n in counts.items()) + "</p>")
        parts.append(exercise_figure(assignment, mine))
        parts.append(_stats_table(mine))
    parts.append(_students_table(view))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{SUMMARY_POLICY}"><title>Class summary</title>'
        f"<style>{SUMMARY_CSS}</style></head><body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n"
    )


def _stats_table(stats: list[ExerciseStats]) -> str:
    head = "<tr><th>exercise</th><th>points</th><th>mean</th><th>full marks</th><th>not attempted</th><th>scores (students)</th></tr>"
    rows = [
        f"<tr><td>{html.escape(s.exercise)}</td><td class=n>{s.max_score:g}</td><td class=n>{s.mean:.2f}</td>"
        f"<td class=n>{s.share('full marks'):.0%}</td><td class=n>{s.share('not attempted'):.0%}</td>"
        f"<td>{html.escape(', '.join(f'{k:g}: {n}' for k, n in sorted(s.scores.items())))}</td></tr>"
        for s in stats
    ]
    return "\n".join([SCROLLING, head, *rows, "</table></div>"])


def _students_table(view: View) -> str:
    assignments = sorted(view.exercises)
    finals = {(t.student, t.assignment): t for t in view.totals}
    stopped = Counter(
        (line.row.student, line.row.assignment) for line in view.lines if line.row.status in STOPPED
    )
    head = (
        "<tr><th>student</th><th>name</th>"
        + "".join(f"<th>{html.escape(a)}</th>" for a in assignments)
        + "<th>total</th><th>to look at</th></tr>"
    )
    rows = []
    for student, person in sorted(view.people.items()):
        cells = [finals.get((student, a)) for a in assignments]
        shown = "".join(
            f"<td class=n>{t.final:g}{'*' * (t.lateness.days > 0)}</td>" if t else "<td></td>" for t in cells
        )
        total = sum(t.final for t in cells if t)
        look = "; ".join(filter(None, (_to_look_at(t, stopped[(student, t.assignment)]) for t in cells if t)))
        rows.append(
            f"<tr><td>{_student_link(student, cells)}</td><td>{html.escape(person.name)}</td>{shown}"
            f"<td class=n>{total:g}</td><td class=look>{html.escape(look)}</td></tr>"
        )
    note = (
        "<p>Final scores, after late penalties (* late). <em>To look at</em>: notebooks that could not be "
        "graded or were not submitted, exercises that ran out of time or memory, lateness, integrity flags "
        "(integrity.csv) and changed scores.</p>"
    )
    table = [SCROLLING, head, *rows, "</table></div>"]
    return "\n".join(["<h2>Students</h2>", note, *table])


def _student_link(student: str, totals: list[Total | None]) -> str:
    """The student's id, a link to their feedback when they have a page."""
    name = html.escape(student)
    if not any(t and t.submitted for t in totals):
        return name
    return f'<a href="feedback/{html.escape(quote(student))}/index.html">{name}</a>'


def _to_look_at(t: Total, stopped: int) -> str:
    """What of a student's assignment needs a look, in words ("" for nothing); ``stopped``: its
    exercises whose run was stopped (a timeout, the scorer killed)."""
    words = {"failed": ["could not be graded"], "missing": ["not submitted"]}.get(t.status, [])
    if stopped:
        words.append(f"{stopped} exercise(s) timed out or crashed")
    if t.lateness.days:
        words.append(f"{t.lateness.days} day(s) late, -{t.lateness.penalty:g}")
    if t.flags:
        words.append(f"{t.flags} integrity flag(s)")
    if t.overrides:
        words.append(f"{t.overrides} score(s) changed")
    return f"{t.assignment}: {', '.join(words)}" if words else ""


def exercise_figure(assignment: str, stats: list[ExerciseStats]) -> str:
    """A stacked bar per exercise: the share of the students who submitted with full marks, less,
    no attempt, or a run that failed. Plain HTML, so that it fits any screen width with its text at
    the reader's size, and says each bar's shares in words to a screen reader."""
    if not stats:
        return ""
    legend = "".join(
        f'<li><span class="swatch" style="background:{colour}"></span>{html.escape(label)}</li>'
        for label, colour in OUTCOMES.items()
    )
    bars = "".join(_exercise_bar(s) for s in stats)
    caption = html.escape(f"{assignment}: how each exercise went, as shares of the students who submitted")
    return (
        f'<figure class="outcomes"><figcaption>{caption}</figcaption>'
        f'<ul class="legend">{legend}</ul><dl>{bars}</dl></figure>'
    )


def _exercise_bar(s: ExerciseStats) -> str:
    shares = [(label, colour, share) for label, colour in OUTCOMES.items() if (share := s.share(label))]
    words = ", ".join(f"{share:.0%} {label}" for label, _, share in shares) or "no student submitted"
    segments = "".join(
        f'<span style="width:{share:.2%};background:{colour}" title="{share:.0%} {label}"></span>'
        for label, colour, share in shares
    )
    return (
        f"<dt>{html.escape(s.exercise)}</dt>"
        f'<dd><span class="bar" role="img" aria-label="{html.escape(words)}">{segments}</span></dd>'
    )
