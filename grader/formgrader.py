"""nbgrader's gradebook (``OUT/gradebook.db``), kept as a copy of ``OUT/grades.sqlite`` for
nbgrader's formgrader and ``nbgrader export``, and the scores an instructor enters there.

``copy`` writes one student's units into it (but a score typed in formgrader since the command
read them, ``_read``, which it leaves for the next command to read): the computed scores as nbgrader's *auto* scores
(nbgrader's own verdict on the cell is discarded), each override as the cell's *manual* score, the
verdict as the comment of the exercise's solution cell (``<exercise>-answer``), the submission
time and the late penalty. The comment is made inert (``as_text``): nbgrader's own feedback
(formgrader's "Generate Feedback") renders it as markdown with its HTML kept, and a verdict quotes
the student's error messages. ``manual_scores`` reads back the scores that differ from the
overrides, so that a score changed in formgrader becomes an override (with the formgrader
comment, if any, as its reason) at the next command; a manual score cleared in formgrader clears
an override that came from formgrader. A score there is nbgrader's: the manual score (or the auto
score) plus the extra credit, as ``nbgrader export`` counts it, so extra credit is part of the
override, the one score that can pass the exercise's points. A score nbgrader would not accept
from formgrader (a manual score outside 0 to the cell's points, negative extra credit), typed
into ``gradebook.db`` some other way, is not taken: ``manual_scores`` names it, and the next time
the student's units are copied it is put back. Formgrader finds this folder through ``OUT/nbgrader_config.py``,
which ``write_config`` writes.

Formgrader shows each submission as nbconvert renders it, in the instructor's JupyterLab, whose
pages may call the Jupyter server's API (start a kernel, write any file): nbconvert keeps the
HTML of markdown cells and outputs, image data and image metadata as they are, so a student's
``<img onerror=...>`` would run there with the instructor's rights (every grade, the solutions,
the keys). So formgrader reads its own copy of the autograded notebooks (``MIRROR``), made
``inert``: a student's markdown shown as its source, outputs only as text and PNG or JPEG images.
"""

import base64
import binascii
import copy as _copy
import functools
import sqlite3
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import DatabaseError, SAWarning

from . import atomic
from .gradebook import Override

FILE = "gradebook.db"
MIRROR = "formgrader-autograded"  # formgrader's copy of OUT/autograded, made inert
SHOWN = ("text/plain", "image/png", "image/jpeg")  # what an output keeps there, as on feedback pages
CONFIG = """\
# Written by `python -m grader`: nbgrader's formgrader on this grading folder. Start JupyterLab here
# (`jupyter lab` in this folder) and open Nbgrader > Formgrader; scores entered there become
# overrides in grades.sqlite at the next `python -m grader` command on this folder.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.source_directory = {source!r}
c.CourseDirectory.autograded_directory = "{mirror}"
c.CourseDirectory.feedback_directory = "nbgrader-feedback"
c.CourseDirectory.db_url = {db!r}
"""


@dataclass(frozen=True)
class Unit:
    """One student's notebook as nbgrader's gradebook should show it."""

    student: str
    assignment: str
    notebook: str
    rows: list  # grader.results.Row, computed scores
    overrides: dict[str, Override]  # by exercise
    timestamp: object  # datetime or None
    late_penalty: float


def write_config(out: Path, source: Path) -> None:
    text = CONFIG.format(root=str(out), source=str(source), db=f"sqlite:///{out / FILE}", mirror=MIRROR)
    path = out / "nbgrader_config.py"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def copy(db: Path, student: str, units: list[Unit]) -> None:
    """Write a student's units into nbgrader's gradebook (one transaction; an upsert), and remove
    the student's submissions of any other assignment (``keep_only``)."""
    with _gradebook(db) as gb:
        _drop_others(gb, gb.update_or_create_student(student), {unit.assignment for unit in units})
        for unit in units:
            submission = gb.update_or_create_submission(unit.assignment, student)
            if unit.timestamp is not None:
                # naive UTC, as nbgrader keeps it
                submission.timestamp = unit.timestamp.astimezone(UTC).replace(tzinfo=None)
            for row in unit.rows:
                _set_grade(gb, unit, row)
            try:
                gb.find_submission_notebook(
                    unit.notebook, unit.assignment, student
                ).late_submission_penalty = unit.late_penalty or None
            except MissingEntry:
                pass
        gb.db.commit()


def keep_only(db: Path, student: str, assignments: set[str]) -> None:
    """Remove from nbgrader's gradebook the submissions of ``student`` other than of
    ``assignments``, and the student with none left: what the reports no longer give that id (an
    id merged into another or removed, an assignment a merge had given it and an unmerge took
    back). ``nbgrader export`` and formgrader would show them as a student of their own, counting
    a merged student's work twice. Scores entered in formgrader were made overrides first (every
    command starts with ``import_formgrader_scores``): nothing is lost, and an undo copies them back."""
    with _gradebook(db) as gb:
        try:
            found = gb.find_student(student)
        except MissingEntry:
            return
        _drop_others(gb, found, assignments)
        if not assignments:
            gb.remove_student(student)


def _drop_others(gb: Gradebook, student, assignments: set[str]) -> None:
    """Remove ``student``'s submissions of every assignment but ``assignments``."""
    for assignment in sorted({s.assignment.name for s in student.submissions} - assignments):
        gb.remove_submission(assignment, student.id)


def _set_grade(gb: Gradebook, unit: Unit, row) -> None:
    try:
        grade = gb.find_grade(row.exercise, unit.notebook, unit.assignment, unit.student)
    except MissingEntry:
        return  # not a cell of the current source (it changed since)
    override = unit.overrides.get(row.exercise)
    key = (unit.student, unit.assignment, row.exercise)
    typed = _changed(grade, override)
    if (
        key in _read
        and _read[key] != (grade.manual_score, grade.extra_credit)
        and typed is not None
        and typed[0] is not None
        and not typed[1]
    ):
        return  # typed in formgrader since the command read its scores: the next command takes it
    grade.auto_score = row.score
    extra = (grade.extra_credit or 0) if override is not None else 0
    if override is not None and not 0 <= override.score - extra <= grade.max_score:
        extra = 0  # an override given since, by command, that this extra credit cannot be part of
    grade.manual_score = None if override is None else override.score - extra
    grade.extra_credit = extra or None
    grade.needs_manual_grade = False
    _read[key] = (grade.manual_score, grade.extra_credit)
    try:
        comment = gb.find_comment(f"{row.exercise}-answer", unit.notebook, unit.assignment, unit.student)
    except MissingEntry:
        return
    comment.auto_comment = as_text(f"{row.status}: {row.reason}")


@dataclass(frozen=True)
class Manual:
    """A score as formgrader has it: ``score`` None when the manual score was cleared;
    ``problem`` says why a score is not taken."""

    student: str
    assignment: str
    exercise: str
    score: float | None
    comment: str
    problem: str = ""


class Damaged(Exception):
    """nbgrader's gradebook cannot be read as one (``set_aside`` has moved it out of the way)."""


def set_aside(db: Path, err: BaseException) -> Path:
    """Move a damaged nbgrader gradebook out of the way, beside it, and say so; returns where."""
    aside = db.with_name(f"{db.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    db.replace(aside)
    print(
        f"warning: {db} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}): moved to "
        f"{aside} and made again from grades.sqlite; a score entered in formgrader since the last command "
        "is only in the damaged copy",
        file=sys.stderr,
    )
    return aside


def manual_scores(db: Path, overrides: dict[tuple[str, str, str], Override]) -> list[Manual]:
    """Scores in nbgrader's gradebook that differ from the overrides: set or changed in
    formgrader (a manual score, extra credit), or cleared there (for overrides that came from
    formgrader); and those not taken, with their ``problem``."""
    _read.clear()
    if not db.exists():
        return []
    try:
        return _manual_scores(db, overrides)
    except (DatabaseError, sqlite3.DatabaseError) as err:  # not a database, or a damaged one
        set_aside(db, err)
        raise Damaged(str(db)) from err


# What this command read of each grade of nbgrader's gradebook, (manual score, extra credit) by
# (student, assignment, exercise): a grade that differs from it when the command copies a student
# was typed in formgrader since, and is left for the next command to read (``_set_grade``).
_read: dict[tuple[str, str, str], tuple] = {}


def _manual_scores(db: Path, overrides: dict[tuple[str, str, str], Override]) -> list[Manual]:
    changed = []
    with _gradebook(db) as gb:
        for assignment in gb.assignments:
            for notebook in assignment.notebooks:
                for submitted in notebook.submissions:
                    for grade in submitted.grades:
                        key = (submitted.student.id, assignment.name, grade.name)
                        _read[key] = (grade.manual_score, grade.extra_credit)
                        found = _changed(grade, overrides.get(key))
                        if found is not None:
                            score, problem = found
                            comment = "" if score is None else _comment(submitted, grade.name)
                            changed.append(Manual(*key, score, comment, problem))
    return changed


def _changed(grade, override: Override | None) -> tuple[float | None, str] | None:
    """(score, problem) if ``grade`` says something new about ``override``, else None."""
    manual, extra = grade.manual_score, grade.extra_credit or 0
    if manual is None and not extra:
        cleared = override is not None and override.source == "formgrader"
        return (None, "") if cleared else None
    if manual is not None and not 0 <= manual <= grade.max_score:
        return manual, f"a manual score of {manual:g}, outside 0 to {grade.max_score:g}"
    if extra < 0:
        return extra, f"extra credit of {extra:g}, below 0"
    score = ((grade.auto_score or 0) if manual is None else manual) + extra
    return None if override is not None and override.score == score else (score, "")


def _comment(submitted, exercise: str) -> str:
    comment = next((c for c in submitted.comments if c.name == f"{exercise}-answer"), None)
    return (comment.manual_comment or "").strip() if comment else ""


class _gradebook:
    """nbgrader's ``Gradebook`` without its SQLAlchemy autoflush warnings."""

    def __init__(self, db: Path):
        self.gb = Gradebook(f"sqlite:///{db}")
        self.warnings = warnings.catch_warnings()

    def __enter__(self) -> Gradebook:
        self.warnings.__enter__()
        warnings.simplefilter("ignore", SAWarning)
        return self.gb

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        self.gb.close()


# ---- what formgrader shows -----------------------------------------------------------------------


def write_copy(out: Path, where: Path, autograded: str) -> None:
    """Formgrader's copy (``MIRROR``) of the autograded notebook ``where`` (student/assignment/
    notebook), whose text is ``autograded``, made ``inert``."""
    released = out / "release" / where.parts[1] / where.name
    stat = released.stat()
    nb = inert(nbformat.reads(autograded, as_version=4), _markdown(released, stat.st_mtime_ns, stat.st_size))
    atomic.write(out / MIRROR / where, nbformat.writes(nb).encode())


def fill_copies(out: Path) -> None:
    """Formgrader's copy of every autograded notebook that has none: one graded before the
    grader made these copies (formgrader would show that student's work as missing)."""
    for path in sorted((out / "autograded").glob("*/*/*.ipynb")):
        where = path.relative_to(out / "autograded")
        if (out / MIRROR / where).exists() or not (out / "release" / where.parts[1] / where.name).exists():
            continue
        try:
            write_copy(out, where, path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # unreadable: formgrader shows it as missing, as before
            print(f"warning: no formgrader copy of {where}: {error}", file=sys.stderr)


@functools.lru_cache(maxsize=64)
def _markdown(released: Path, mtime_ns: int, size: int) -> frozenset[str]:
    """The markdown cells of a released notebook, read once per version of the file (a run
    copies every student's notebooks of the same few releases)."""
    nb = nbformat.read(released, as_version=4)
    return frozenset(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def inert(nb, course: frozenset[str]):
    """A copy of the autograded notebook ``nb`` that nbconvert renders without any markup of the
    student's: markdown and raw cells not in the release (``course``, its markdown) as their
    source, in a markdown code block (no HTML, no ``javascript:`` link), without attachments (a raw
    cell, even without a format, is HTML to nbconvert, which only filters it: a student's link
    to a phishing page, a form of text that looks like the grader's, showed in formgrader); the
    student's cells without metadata (tags); each output's data only as text or base64 PNG or
    JPEG, without its metadata (nbconvert writes image sizes into the tag unquoted)."""
    nb = _copy.deepcopy(nb)
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:  # the student's (a graded cell has the release's)
            cell.metadata = {}  # tags, a raw cell's format: none of it need reach the page
        if cell.cell_type in ("markdown", "raw") and cell.source not in course:
            cell.cell_type = "markdown"
            cell.source = as_text(cell.source)
            cell.pop("attachments", None)
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if "data" in out:
                    out.data = {mime: value for mime, value in out.data.items() if _shown(mime, value)}
                    out.metadata = {}
    return nb


def as_text(text: str) -> str:
    """``text`` as markdown that shows it as it is: an indented code block, which nbconvert's
    ``markdown2html`` escapes (no HTML, no link). Whatever of a student's nbgrader renders as
    markdown goes through here: their markdown and raw cells, and the verdicts, which quote their
    error messages (nbgrader's own feedback renders a cell's comment as markdown, HTML kept)."""
    return "\n".join(f"    {line}" for line in text.splitlines())


def _shown(mime: str, value) -> bool:
    if mime not in SHOWN or not isinstance(value, str):
        return False
    if mime == "text/plain":
        return True
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
