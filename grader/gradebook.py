"""The class gradebook, ``OUT/grades.sqlite``: the one source of truth that every report is made from.

Every grading run adds to it and never starts it over: a result replaces the rows of exactly the
(student, assignment, notebook) it grades, in one transaction, so grading a subset changes only
that subset, and an interrupted run leaves every unit either as it was or fully graded. It holds
what nbgrader's own gradebook cannot: each exercise's status and reason, the instructor's
overrides with their reasons, the submission time and where it came from, the LMS's name, id and
late verdict, integrity findings, and the history of every run. Only the process that runs a
command writes it (SQLite, one writer: ``lock``); grading workers, local or on a Dask cluster, send
their results back to it.

Schema (``PRAGMA user_version`` = ``VERSION``, to which an older gradebook is brought when it is
opened; a unit is (student, assignment, notebook), with assignment ``""`` for a notebook no chapter
has):

- ``runs``: one row per command that changed grades (started, finished, command line, what it
  selected, how many units it graded, its outcome: running, finished, interrupted or failed);
- ``students``: the student id used everywhere, and the name and LMS id the export carried;
- ``exercises``: every graded cell of every assignment graded so far (from the release), with its
  points and position: what a student who submitted nothing is missing;
- ``submissions``: one row per unit graded: the file, its SHA-256, the submission time and its
  source, the LMS's late verdict, whether grading completed, the run, and the digest of the
  feedback page last written for it;
- ``scores``: the computed score of each exercise of each unit (``grader.results.Row``);
- ``findings``: integrity findings of each unit, each a JSON object;
- ``fingerprints``: by exercise, the fingerprint of the code the student wrote for it (where it
  is, and its token hashes: ``grader.similarity``), from which the reports pair students whose
  code is near-identical;
- ``overrides``: the instructor's score for an exercise, with a reason and where it was given
  (``command`` or ``formgrader``); an override outlives every regrade until cleared;
- ``history``: every score every run computed; ``adjustments``: every override set or cleared;
- ``identities``: every change to who a student is, in order, with its reason, who made it and
  when: ``merge`` (a student who submitted under two ids: ``student`` is the id merged into
  ``other``), ``unmerge`` (that merge undone), ``remove`` (an id that should not be in the
  reports: a student who dropped the course) and ``restore`` (that removal undone). Nothing is
  deleted or rewritten for them: every row stays under the id it was graded under, and the reports
  read the gradebook through them (``identities``, ``grader.reports.build``).
"""

import fcntl
import hashlib
import json
import os
import sqlite3
import stat
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import atomic
from .results import Row

FILE = "grades.sqlite"
PROBLEMS = "(submission problems)"  # the notebook of a unit of submission problem rows
VERSION = 4
# Version 1 (the grader of November 2026 until the 30th) had no fingerprints; a version-1 gradebook
# made later has them already.
FINGERPRINTS = """
CREATE TABLE IF NOT EXISTS fingerprints (
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    exercise TEXT NOT NULL,
    cell INTEGER NOT NULL,
    line INTEGER NOT NULL,
    hashes TEXT NOT NULL
);
"""
# Version 2 (until December 2026) had no identities.
IDENTITIES = """
CREATE TABLE IF NOT EXISTS identities (
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    student TEXT NOT NULL,
    other TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    who TEXT NOT NULL
);
"""
# Version 3 (until the 3rd of December 2026) kept no digest of the course's secret.
SECRET_DIGEST = """
CREATE TABLE IF NOT EXISTS secret (
    digest TEXT NOT NULL
);
"""
UPGRADES = {
    1: FINGERPRINTS,
    2: IDENTITIES,
    3: SECRET_DIGEST,
}  # what brings a gradebook of each older version to the next
SCHEMA = (
    FINGERPRINTS
    + IDENTITIES
    + SECRET_DIGEST
    + """
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    command TEXT NOT NULL,
    selection TEXT NOT NULL,
    graded INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE students (
    student TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    lms_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE exercises (
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    exercise TEXT NOT NULL,
    max_score REAL NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (assignment, notebook, exercise)
);
CREATE TABLE submissions (
    student TEXT NOT NULL REFERENCES students,
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    submitted_at TEXT,
    time_source TEXT NOT NULL DEFAULT '',
    lms_late INTEGER,
    complete INTEGER NOT NULL,
    run INTEGER NOT NULL REFERENCES runs,
    page_digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (student, assignment, notebook)
);
CREATE TABLE scores (
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    exercise TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (student, assignment, notebook, exercise)
);
CREATE TABLE findings (
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    position INTEGER NOT NULL,
    finding TEXT NOT NULL
);
CREATE TABLE overrides (
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    exercise TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (student, assignment, exercise)
);
CREATE TABLE history (
    run INTEGER NOT NULL REFERENCES runs,
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    notebook TEXT NOT NULL,
    exercise TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE adjustments (
    at TEXT NOT NULL,
    student TEXT NOT NULL,
    assignment TEXT NOT NULL,
    exercise TEXT NOT NULL,
    score REAL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL
);
"""
)


BACKUPS = "backups"  # OUT/backups: copies of the gradebook as commands found it
KEEP_BACKUPS = 5


def backups(out: Path) -> list[Path]:
    """The copies of ``out``'s gradebook that commands kept, oldest first."""
    return sorted((out / BACKUPS).glob("grades-*.sqlite"))


def restore_hint(out: Path) -> str:
    """How to put back a gradebook that is lost or damaged."""
    kept = backups(out)
    if not kept:
        return "restore it from a backup of your own"
    return (
        f"restore the newest copy the grader kept: copy {kept[-1]} to {out / FILE} (the last "
        f"{KEEP_BACKUPS} are in {out / BACKUPS}; grade again the submissions graded since, and make "
        "again any override or identity change made since)"
    )


class GradebookError(RuntimeError):
    """A gradebook that cannot be used (another command holds it, a newer schema, a bad name)."""


# What a folder that was graded into holds besides the gradebook (the course's secret, the reports,
# the autograded notebooks): with those and no gradebook, the gradebook was lost, not never made.
SECRET = ".secret"  # the course's secret, from which hidden cases are drawn (grader.scoring)
GRADED_BEFORE = (SECRET, "grades.csv", "totals.csv", "autograded", BACKUPS)


def refuse_a_lost_one(out: Path) -> None:
    """Raise if ``out`` was graded into and its gradebook is gone: grading on would start the term
    afresh and write reports of this run alone over the term's."""
    left = [name for name in GRADED_BEFORE if (out / name).exists()]
    if left and not (out / FILE).exists():
        raise GradebookError(
            f"{out} was graded into before ({', '.join(left)}) but has no gradebook ({FILE}): "
            f"{restore_hint(out)}, or grade into a new folder; grading here would start the term afresh"
        )


def refuse_a_lost_secret(out: Path, book: "Gradebook") -> None:
    """Raise if ``out``'s secret is gone while ``book`` holds notebooks graded on the hidden cases
    drawn from it: made again quietly, it would give a regrade of the same file other hidden cases
    (``--new-secret`` says that is meant)."""
    graded = sum(1 for (_, _, notebook) in book.submissions() if notebook != PROBLEMS)
    if graded and not (out / SECRET).exists():
        raise GradebookError(
            f"{out / SECRET} is gone, but the gradebook holds {graded} graded notebook(s) whose hidden "
            "cases were drawn from it. Put it back (a copy of the grading folder made with `cp -r "
            "OUT/*` leaves it out: it is a dot file), or pass --new-secret to draw a new one: the "
            "grades kept stay, and the notebooks graded from now on, --force regrades included, get "
            "the new secret's hidden cases"
        )


@dataclass(frozen=True)
class Submitted:
    """A unit's row of ``submissions``."""

    student: str
    assignment: str
    notebook: str
    file: str
    sha256: str
    submitted_at: datetime | None
    time_source: str
    lms_late: bool | None
    complete: bool
    run: int
    page_digest: str
    graded_as: str = ""  # the id it was graded under, when the reports give it to another (a merge)


@dataclass(frozen=True)
class Override:
    student: str
    assignment: str
    exercise: str
    score: float
    reason: str
    source: str
    at: str


IDENTITY_ACTIONS = ("merge", "unmerge", "remove", "restore")


@dataclass(frozen=True)
class Identities:
    """Who each id is now, from ``identities`` replayed in order: ``merged`` an id -> the id it
    was merged into, ``removed`` an id -> why, ``log`` every change (at, action, student, other,
    reason, who)."""

    merged: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    log: tuple = ()

    def owner(self, student: str) -> str:
        """The id the reports give what was graded under ``student`` (itself unless merged; a
        merge into an id that was merged in turn follows on)."""
        seen = {student}
        while student in self.merged and self.merged[student] not in seen:
            student = self.merged[student]
            seen.add(student)
        return student

    def gone(self, student: str) -> bool:
        """Whether ``student`` is in no report under that id: merged into another, or removed."""
        return student in self.merged or self.owner(student) in self.removed


@dataclass(frozen=True)
class Exercise:
    assignment: str
    notebook: str
    name: str
    max_score: float


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def private(out: Path) -> None:
    """Take other users' access to ``out`` away (its group keeps its own, for teaching assistants):
    made under the usual umask (022), the folder of a whole class's grades and feedback pages is
    readable by every user of a shared machine. Told when the folder already held grades."""
    mode = stat.S_IMODE(out.stat().st_mode)
    if not mode & 0o007 or out.stat().st_uid != os.geteuid():
        return
    os.chmod(out, mode & ~0o007)
    if (out / FILE).exists():
        print(
            f"note: {out} was open to every user of this machine; it is now open to its owner and group only",
            file=sys.stderr,
        )


@contextmanager
def lock(out: Path):
    """Hold ``OUT/.lock`` for a command that writes grades: a second command on the same folder
    stops with a clear message instead of interleaving with the first."""
    out.mkdir(parents=True, exist_ok=True)
    private(out)
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise GradebookError(
                f"{out} is in use by another grader command ({holder}); wait for it to finish"
            ) from None
        f.truncate(0)
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


class Gradebook:
    """``OUT/grades.sqlite``, opened (and created on first use)."""

    def __init__(self, out: Path):
        self.path = out / FILE
        new = not self.path.exists()
        self.db = sqlite3.connect(self.path, isolation_level=None)  # transactions are explicit
        try:
            self._open(new)
            if not new:
                self._back_up()
        except BaseException:
            self.db.close()
            raise

    def _open(self, new: bool) -> None:
        """Make the schema of a new gradebook, or bring an older one's up to ``VERSION``."""
        self.db.execute("PRAGMA foreign_keys = ON")
        out = self.path.parent
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = self.db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            check = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as err:
            if err.sqlite_errorname == "SQLITE_NOTADB":
                raise GradebookError(f"{self.path} is not a gradebook ({err}): {restore_hint(out)}") from None
            if err.sqlite_errorname.startswith("SQLITE_CORRUPT"):
                raise GradebookError(f"{self.path} is damaged ({err}): {restore_hint(out)}") from None
            raise
        if check != "ok":
            raise GradebookError(f"{self.path} is damaged ({check}): {restore_hint(out)}")
        if new or (version, tables) == (0, 0):  # executescript commits first: a script is its own transaction
            self.db.executescript(f"BEGIN;\n{SCHEMA}\nPRAGMA user_version = {VERSION};\nCOMMIT;")
            return
        if version == 0:
            raise GradebookError(
                f"{self.path} is not a gradebook the grader made (it has tables but no schema version): "
                "restore it from a backup"
            )
        if version > VERSION:
            raise GradebookError(
                f"{self.path} has schema version {version}, made by a newer grader; this one reads versions "
                f"up to {VERSION}: grade with the newer one"
            )
        for older in range(version, VERSION):
            self.db.executescript(f"BEGIN;\n{UPGRADES[older]}\nPRAGMA user_version = {older + 1};\nCOMMIT;")

    def _back_up(self) -> None:
        """Keep a copy of the gradebook as this command found it (sound: ``_open`` checked it) in
        ``OUT/backups``, unless the newest copy is of the same state, and the last
        ``KEEP_BACKUPS`` copies only. The command holds ``lock`` and no transaction is open, so the
        file is the whole gradebook."""
        data = self.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        kept = backups(self.path.parent)
        if kept and kept[-1].stem.endswith(digest):
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")  # names sort by time
        atomic.write(self.path.parent / BACKUPS / f"grades-{stamp}-{digest}.sqlite", data, durable=True)
        for old in backups(self.path.parent)[:-KEEP_BACKUPS]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- the course's secret ------------------------------------------------------------------

    def keep_secret(self, secret: bytes, new: bool) -> None:
        """Keep the digest of the secret the hidden cases are drawn from; raise if the gradebook
        kept another one (the secret of another grading folder, copied over), unless ``new``
        (``--new-secret``): a regrade would draw other hidden cases than the grades kept had."""
        digest = hashlib.sha256(secret).hexdigest()[:16]
        kept = self.db.execute("SELECT digest FROM secret").fetchone()
        if kept and kept[0] != digest and not new:
            raise GradebookError(
                f"{self.path.parent / SECRET} is not the secret this gradebook's grades were drawn with "
                "(another grading folder's?): put the right one back, or pass --new-secret to draw the "
                "hidden cases of what is graded from now on from this one"
            )
        if kept and kept[0] == digest:
            return
        with self.transaction():
            self.db.execute("DELETE FROM secret")
            self.db.execute("INSERT INTO secret (digest) VALUES (?)", (digest,))

    # ---- runs ------------------------------------------------------------------------------------

    def start_run(self, command: str, selection: str) -> int:
        """A new run; one still ``running`` ended without saying so (the command holds ``lock``):
        its process was killed, or the disk filled before it could write its outcome."""
        with self.transaction():
            self.db.execute("UPDATE runs SET outcome = 'failed' WHERE outcome = 'running'")
            cursor = self.db.execute(
                "INSERT INTO runs (started, command, selection) VALUES (?, ?, ?)", (now(), command, selection)
            )
        return cursor.lastrowid

    def finish_run(self, run: int, outcome: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ?, outcome = ?, "
                "graded = (SELECT count(*) FROM submissions WHERE run = ?) WHERE run = ?",
                (now(), outcome, run, run),
            )

    # ---- what grading writes ---------------------------------------------------------------------

    def set_exercises(self, assignment: str, notebook: str, tests: Iterable[tuple[str, float]]) -> None:
        """The graded cells of a released notebook, in order (replacing what was known)."""
        with self.transaction():
            self.db.execute(
                "DELETE FROM exercises WHERE assignment = ? AND notebook = ?", (assignment, notebook)
            )
            self.db.executemany(
                "INSERT INTO exercises VALUES (?, ?, ?, ?, ?)",
                [(assignment, notebook, name, points, i) for i, (name, points) in enumerate(tests)],
            )

    def record(self, run: int, result: dict, units: dict[tuple[str, str], dict]) -> None:
        """One student's result (``grader.autograde``'s format), in one transaction.

        ``units`` describes each graded notebook by (assignment or "", notebook): ``file``,
        ``sha256``, and the LMS details ``name``, ``lms_id``, ``late``, ``submitted_at``,
        ``time_source``.
        """
        student = result["student"]
        with self.transaction():
            names = [u for u in units.values() if u.get("name") or u.get("lms_id")]
            self.db.execute("INSERT OR IGNORE INTO students (student) VALUES (?)", (student,))
            if names:
                self.db.execute(
                    "UPDATE students SET name = ?, lms_id = ? WHERE student = ?",
                    (names[-1]["name"], names[-1]["lms_id"], student),
                )
            for entry in result["notebooks"]:
                key = (student, entry["assignment"] or "", entry["notebook"])
                unit = units[key[1:]]
                for table in ("scores", "findings", "fingerprints"):
                    self.db.execute(
                        f"DELETE FROM {table} WHERE student = ? AND assignment = ? AND notebook = ?", key
                    )
                rows = [Row(**row) for row in entry["rows"]]
                self.db.executemany(
                    "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (*key, r.exercise, r.score, r.max_score, r.status, r.reason, i)
                        for i, r in enumerate(rows)
                    ],
                )
                self.db.executemany(
                    "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run, *key, r.exercise, r.score, r.max_score, r.status) for r in rows],
                )
                self.db.executemany(
                    "INSERT INTO findings VALUES (?, ?, ?, ?, ?)",
                    [(*key, i, json.dumps(f, default=str)) for i, f in enumerate(entry["findings"])],
                )
                self.db.executemany(
                    "INSERT INTO fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (*key, name, f["cell"], f["line"], json.dumps(f["hashes"]))
                        for name, f in entry.get("fingerprints", {}).items()
                    ],
                )
                when = unit.get("submitted_at")
                self.db.execute(
                    "INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                    (
                        *key,
                        unit["file"],
                        unit["sha256"],
                        when.isoformat() if when else None,
                        unit.get("time_source", ""),
                        None if unit.get("late") is None else int(unit["late"]),
                        int(result["complete"]),
                        run,
                    ),
                )

    def set_problems(self, run: int, student: str, rows: list[Row], name: str = "") -> None:
        """The rows of a student's submission problems (files not graded, or graded under another
        id, and why), as the unit (student, "", ``PROBLEMS``), replacing earlier ones; no rows
        removes the unit."""
        key = (student, "", PROBLEMS)
        with self.transaction():
            for table in ("scores", "submissions"):
                self.db.execute(
                    f"DELETE FROM {table} WHERE student = ? AND assignment = ? AND notebook = ?", key
                )
            if not rows:
                return
            self.db.execute("INSERT OR IGNORE INTO students (student, name) VALUES (?, ?)", (student, name))
            self.db.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*key, r.exercise, r.score, r.max_score, r.status, r.reason, i) for i, r in enumerate(rows)],
            )
            self.db.execute(
                "INSERT INTO submissions VALUES (?, ?, ?, '', '', NULL, '', NULL, 1, ?, '')", (*key, run)
            )

    def fingerprints(self, owner=None) -> dict[tuple[str, str], dict[str, dict]]:
        """By (assignment, exercise), each student's fingerprint: ``{"cell", "line", "hashes"}``;
        ``owner(student, assignment, notebook)``, if given, is the id to give it, or None to leave
        it out."""
        found: dict[tuple[str, str], dict[str, dict]] = {}
        query = "SELECT student, assignment, notebook, exercise, cell, line, hashes FROM fingerprints"
        for student, assignment, notebook, exercise, cell, line, hashes in self.db.execute(query):
            if owner is not None and (student := owner(student, assignment, notebook)) is None:
                continue
            found.setdefault((assignment, exercise), {})[student] = {
                "cell": cell,
                "line": line,
                "hashes": json.loads(hashes),
            }
        return found

    def set_page_digest(self, student: str, assignment: str, notebook: str, digest: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE submissions SET page_digest = ? WHERE student = ? AND assignment = ? AND notebook = ?",
                (digest, student, assignment, notebook),
            )

    # ---- overrides -------------------------------------------------------------------------------

    def set_override(
        self, student: str, assignment: str, exercise: str, score: float | None, reason: str, source: str
    ) -> None:
        """Set (or with ``score=None`` clear) the instructor's score for one exercise."""
        at = now()
        with self.transaction():
            if score is None:
                self.db.execute(
                    "DELETE FROM overrides WHERE student = ? AND assignment = ? AND exercise = ?",
                    (student, assignment, exercise),
                )
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (student, assignment, exercise, score, reason, source, at),
                )
            self.db.execute(
                "INSERT INTO adjustments VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, student, assignment, exercise, score, reason, source),
            )

    # ---- who a student is ------------------------------------------------------------------------

    def change_identity(self, action: str, student: str, other: str, reason: str, who: str) -> None:
        """Add a change to ``identities`` (``IDENTITY_ACTIONS``); the caller checks that it makes sense."""
        assert action in IDENTITY_ACTIONS, action
        with self.transaction():
            self.db.execute(
                "INSERT INTO identities VALUES (?, ?, ?, ?, ?, ?)",
                (now(), action, student, other, reason, who),
            )

    def identities(self) -> Identities:
        merged: dict[str, str] = {}
        removed: dict[str, str] = {}
        log = tuple(self.db.execute("SELECT * FROM identities ORDER BY rowid"))
        for _, action, student, other, reason, _ in log:
            if action == "merge":
                merged[student] = other
            elif action == "unmerge":
                merged.pop(student, None)
            elif action == "remove":
                removed[student] = reason
            elif action == "restore":
                removed.pop(student, None)
        return Identities(merged, removed, log)

    # ---- reading ---------------------------------------------------------------------------------

    def students(self) -> dict[str, tuple[str, str]]:
        """Student id -> (name, LMS id)."""
        return {
            s: (name, lms_id)
            for s, name, lms_id in self.db.execute("SELECT * FROM students ORDER BY student")
        }

    def exercises(self) -> list[Exercise]:
        query = "SELECT assignment, notebook, exercise, max_score FROM exercises ORDER BY assignment, notebook, position"
        return [Exercise(*row) for row in self.db.execute(query)]

    def submissions(self) -> dict[tuple[str, str, str], Submitted]:
        found = {}
        for row in self.db.execute("SELECT * FROM submissions"):
            when = datetime.fromisoformat(row[5]) if row[5] else None
            late = None if row[7] is None else bool(row[7])
            found[row[:3]] = Submitted(*row[:5], when, row[6], late, bool(row[8]), row[9], row[10])
        return found

    def scores(self) -> list[tuple[str, Row]]:
        """(notebook, row) for every computed score, in each unit's order."""
        query = (
            "SELECT notebook, student, assignment, exercise, score, max_score, status, reason FROM scores "
            "ORDER BY student, assignment, notebook, position"
        )
        return [(row[0], Row(*row[1:])) for row in self.db.execute(query)]

    def findings(self) -> list[dict]:
        query = "SELECT student, assignment, notebook, finding FROM findings ORDER BY student, assignment, notebook, position"
        return [
            {"student": s, "assignment": a, "notebook": n, **json.loads(f)}
            for s, a, n, f in self.db.execute(query)
        ]

    def overrides(self) -> dict[tuple[str, str, str], Override]:
        return {row[:3]: Override(*row) for row in self.db.execute("SELECT * FROM overrides")}

    def units_digest(self, keep) -> str:
        """A digest of the scores and submissions of every unit for which ``keep(student,
        assignment)`` is true: equal before and after a run that graded none of them."""
        digest = hashlib.sha256()
        for table in ("scores", "submissions"):
            for row in self.db.execute(f"SELECT * FROM {table} ORDER BY student, assignment, notebook"):
                if keep(row[0], row[1]):
                    digest.update(repr(row[:3] + row[3 : 10 if table == "submissions" else None]).encode())
        return digest.hexdigest()

    def runs(self) -> list[tuple]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY run"))
