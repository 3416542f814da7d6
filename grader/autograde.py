"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a class with nbgrader, in parallel,
with the students' code in a sandbox and the scores computed outside it.

1. The submissions are found and their names made safe (``grader.submissions``: what cannot be
   graded is a warning and a row), described with what the LMS export carried (``grader.lms``:
   names, ids, late verdicts, submission times) and narrowed to ``--student`` and
   ``--assignment``. A unit (student, assignment, notebook) whose file is unchanged since it was
   last graded completely is skipped (unless ``force``).
2. Once per run, nbgrader ``generate_assignment`` builds a template gradebook (every assignment,
   no students) and the released notebooks; the gradebook learns each assignment's exercises.
   Every kernel of the run will run in a sandbox (``grader.sandbox``): its view (the course's
   public files), its limits (per notebook: CPU time and time asleep of the whole process tree,
   memory, processes) and one cgroup scope that holds all of them, removed with whatever is left
   in it when the run ends, interrupted or not. The course's secret ``OUT/.secret`` is read, or
   made on the first run, and the scorer's read-only view is written to scratch space
   (``grader.scoring``: its harness, and per assignment the ``lib`` that the chapter lends,
   ``grader.lending``). Neither the kernels nor the scorers can see ``OUT``.
3. Each student is graded in a process of their own, ``jobs`` at a time, forked from this one
   (nbgrader is imported once), or on a Dask cluster (``grader.distributed``), which calls the
   same per-student function on its workers: a private course folder with a copy of the template
   gradebook, the sandboxed kernelspec with the student's own socket folder, each notebook
   cleaned against its release (``grader.clean``), real nbgrader ``Autograde`` per assignment with
   ``grader.execute.ResilientExecute`` running the kernel in the
   sandbox (its outputs make the feedback page; they score nothing: a notebook nbgrader could not
   run is scored all the same, from its cleaned submission, its outputs cleared and the reason
   shown in their place). Then, for each notebook, the
   integrity review (``grader.integrity``: findings for the instructor, which zero nothing unless
   ``zero_flagged``), and its outputs capped (``grader.outputs``); and, once nbgrader has run
   them all, the scorer for all the student's notebooks: a second, minimal sandboxed process
   (two, for the course's chapters) that runs the student's code again and calls their
   functions on the visible cases and on hidden cases drawn from the secret; their outputs are
   compared outside it with references that ``lib`` computes here (``grader.scoring``,
   ``grader.compare``). The result, with the autograded notebooks in it, comes back to this
   process.
4. This process alone persists each result as it arrives (``persist``): the autograded notebooks,
   then one transaction in the class gradebook ``OUT/grades.sqlite`` (``grader.gradebook``),
   submission problems included. At the end it makes every report from the gradebook
   (``grader.reports``: grades, totals, the integrity report with the pairs of students whose code
   is near-identical, the LMS file, the summary and the feedback pages), updates nbgrader's copy
   for formgrader (``grader.formgrader``) and checks that no unit outside the selection changed.

An interruption loses at most the students being graded at that moment: their units keep their
earlier grades and are graded again by the next run; nothing is counted twice because a unit's
rows are replaced, never added to.
"""

import ctypes
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from lib.engine import usable_cores

from . import (
    atomic,
    clean,
    course,
    execute,
    failures,
    formgrader,
    gradebook,
    integrity,
    lms,
    outputs,
    program,
    release,
    reports,
    results,
    sandbox,
    scoring,
    scrub,
    settings,
    spelling,
    submissions,
)
from .execute import ResilientExecute
from .results import Row

KERNEL_START_LIMIT = 60  # seconds added to each notebook's time limit
PIDS = 128  # processes and threads of a kernel's tree
TMPFS = 256 * 2**20  # bytes a kernel may write (its working folder and home)
FILE_SIZE = 256 * 2**20
MATPLOTLIB_CACHE = "/tmp/home/.cache/matplotlib"  # inside the sandbox
NBGRADER_LOG = "grader.nbgrader"
PR_SET_PDEATHSIG = 1
# Bytes of memory a student's grading process may take beyond what it holds when it starts (it
# needs a few hundred MB: nbgrader, the notebooks with their capped outputs, the references).
WORKER_MEMORY = 2 * 2**30


def default_jobs(memory: int, cores: int | None = None, machine: int | None = None) -> int:
    """Students graded at once unless ``--jobs`` says: one per core, but no more than the machine's
    memory holds when each uses all it may (``memory`` bytes for the kernel or the scorer, whichever
    runs, and ``WORKER_MEMORY`` for the student's grading process). Each sandbox's cap does not
    bound their sum: on a machine with more cores than memory for them, students whose code takes
    all it may would make the machine's out-of-memory killer choose among everyone's processes.
    The same without a cgroup (``sandbox.not_enforced``), not one: each tree's memory is then summed
    and ended at each look of its supervisor, and a kernel the killer takes between two looks from
    beside another is run once more (``execute.ResilientExecute``); one job would make every such
    machine grade as if it had one core, for a harm that is bounded, named in the log, and ruled
    out by ``--jobs 1`` where it must be (the warning says so)."""
    cores = cores or usable_cores()
    if machine is None:
        try:
            machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not a POSIX machine: no way to tell
            return cores
    return max(1, min(cores, machine // (memory + WORKER_MEMORY)))


@dataclass(frozen=True)
class Run:
    """What every student's grading shares."""

    out: Path
    scratch: Path  # temporary, in memory if possible: work folders, throwaway gradebooks
    source: Path  # nbgrader source folder
    release: Path  # the student versions generate_assignment made, this run
    template_db: Path
    view: sandbox.View  # what kernels see (each student's socket folder is added)
    limits: sandbox.Limits  # per notebook
    isolate: bool  # False with --no-sandbox
    timeout: int  # per cell, wall clock: the backstop
    scorer: scoring.Scorer
    zero_flagged: bool = False  # flagged exercises score 0 (the instructor's option)

    def release_notebook(self, assignment: str, notebook: str):
        return nbformat.read(self.release / assignment / f"{notebook}.ipynb", as_version=4)

    def source_notebook(self, assignment: str, notebook: str):
        return nbformat.read(self.source / assignment / f"{notebook}.ipynb", as_version=4)

    def time_limit(self, subs: list[submissions.Submission]) -> float:
        """Wall-clock limit for a student: every notebook's wall-clock limit and kernel start,
        twice (a notebook may run again)."""
        return KERNEL_START_LIMIT + 2 * len(subs) * (self.limits.wall_seconds + KERNEL_START_LIMIT)


@dataclass(frozen=True)
class Selection:
    """What a run grades: every submission found, or only these students and assignments."""

    students: frozenset[str] = frozenset()
    assignments: frozenset[str] = frozenset()

    def __contains__(self, unit: tuple[str, str]) -> bool:
        student, assignment = unit
        return (not self.students or student in self.students) and (
            not self.assignments or assignment in self.assignments
        )

    def __str__(self) -> str:
        students = ", ".join(sorted(self.students)) or "all"
        assignments = ", ".join(sorted(self.assignments)) or "all"
        return f"students: {students}; assignments: {assignments}"


@dataclass(frozen=True)
class Outcome:
    """What a run did, for the end-of-run lines."""

    view: reports.View
    graded: int  # units graded by this run
    skipped: int  # units already graded with the same file
    others_changed: bool  # a unit outside the selection changed (it never should)


def autograde(
    submitted: Path,
    out: Path,
    source: Path = course.SOLUTIONS,
    jobs: int = 2,
    timeout: int = 300,
    cpu: float = 60,
    idle: float = 60,
    memory: int = 3 * 2**30,
    sandboxed: bool = True,
    force: bool = False,
    progress: bool = True,
    selection: Selection = Selection(),
    scheduler: str | None = None,
    command: str = "",
    zero_flagged: bool = False,
    new_secret: bool = False,
) -> Outcome:
    """Grade the submissions under ``submitted`` (a folder or a .zip) that ``selection`` names into
    the gradebook of ``out``, then write every report from it. Per notebook, ``cpu`` seconds of CPU
    time and ``idle`` seconds asleep for the kernel's whole process tree, ``memory`` bytes;
    ``timeout`` seconds per cell is a wall-clock backstop. ``zero_flagged``: exercises with an
    integrity finding score 0 (in the notebooks this run grades). ``new_secret``: a lost
    ``OUT/.secret`` is made anew, or another one taken (else refused once the gradebook holds grades). Raises ``SandboxUnavailable`` if
    students' code cannot be sandboxed here, unless ``sandboxed=False``."""
    out = out.resolve()
    _check_apart(submitted.resolve(), out)
    if scheduler:  # a cluster anyone can join is refused before anything is done
        from . import distributed

        distributed.security(scheduler)
    if sandboxed and sandbox.available():
        raise SandboxUnavailable(sandbox.available())
    _warn_about_limits(sandboxed)
    settings.ensure(out)
    term = settings.load(out)
    known = course.notebooks(source)
    limits = kernel_limits(cpu, idle, memory, max(1, usable_cores() // jobs))
    with (
        gradebook.lock(out),
        _signals_as_ctrl_c(),
        course.scratch("forwardpass-grading-") as tmp,
        sandbox.scope(),
    ):
        tmp = Path(tmp)
        gradebook.refuse_a_lost_one(out)
        atomic.reap(out)  # a grader killed outright mid-write left these
        if not (out / gradebook.FILE).exists():  # a misspelt --out in week 10 starts a term of its own
            print(
                f"note: {out} has no gradebook yet: this run starts the term's gradebook there",
                file=sys.stderr,
            )
        with gradebook.Gradebook(out) as book:
            if not new_secret:
                gradebook.refuse_a_lost_secret(out, book)
            remade = import_formgrader_scores(out, book)
            by_student, problems = _find(submitted, tmp, known, term, selection)
            assignments = {sub.assignment for subs in by_student.values() for sub in subs if sub.assignment}
            secret = scoring.course_secret(out)
            book.keep_secret(secret, new_secret)
            run = prepare(out, source.resolve(), assignments, tmp, timeout, limits, sandboxed, secret)
            run = dataclasses.replace(run, zero_flagged=zero_flagged)
            learn_exercises(run, book, assignments)
            known = book.submissions()
            todo = {s: _to_grade(subs, known, term.timezone, force) for s, subs in by_student.items()}
            todo = {s: subs for s, subs in todo.items() if subs}
            skipped = sum(map(len, by_student.values())) - sum(map(len, todo.values()))
            if skipped:
                print(
                    f"{skipped} notebook(s) already graded with the same file or a newer one (use --force to regrade)"
                )
            rewritten = {(student, "") for student in set(by_student) | {p.student for p in problems}}
            untouched = lambda student, assignment: (  # noqa: E731
                (student, assignment) not in selection and (student, assignment) not in rewritten
            )  # the problem rows of the students whose files this run saw are written anew
            before = book.units_digest(untouched)
            run_id = book.start_run(command, str(selection))
            try:
                _record_problems(book, run_id, by_student, problems)
                grade_all(run, todo, jobs, progress, lambda *a: keep(run, book, term, run_id, *a), scheduler)
            except KeyboardInterrupt:
                book.finish_run(run_id, "interrupted")
                reports.write(out, book, term)
                raise
            except BaseException:
                book.finish_run(run_id, "failed")
                raise
            book.finish_run(run_id, "finished")
            for told in hidden_work(book, todo):
                print(f"warning: {told}", file=sys.stderr)
            others_changed = book.units_digest(untouched) != before
            view = reports.write(out, book, term)
            copy_to_nbgrader(out, view, remade)  # a damaged one made again: every student
    return Outcome(view, sum(map(len, todo.values())), skipped, others_changed)


def hidden_work(book: gradebook.Gradebook, graded: dict[str, list]) -> list[str]:
    """What to tell of the students this run graded (``graded``: by id, their notebooks) whom the
    reports leave out: an id removed (``remove-student``), whose new work the gradebook keeps and no
    report shows."""
    ids = book.identities()
    told = []
    for student, subs in sorted(graded.items()):
        if (owner := ids.owner(student)) in ids.removed:
            told.append(
                f"{student} was removed from the reports ({ids.removed[owner]}): this run graded "
                f"{len(subs)} notebook(s) of theirs, kept in the gradebook and shown in no report; to show "
                f"them: python -m grader restore-student {shlex.quote(owner)} --reason ..."
            )
    return told


# The folders of a grading folder that hold notebooks the grader wrote, not students.
GRADER_FOLDERS = ("autograded", "release", "feedback", "logs", formgrader.MIRROR)


def _check_apart(submitted: Path, out: Path) -> None:
    """Refuse submissions that hold the grading folder, or lie in one of the folders the grader
    writes: its own notebooks would be graded as students' ("release", "autograded"), and a
    gradebook never forgets a student."""
    inside = [out / name for name in GRADER_FOLDERS if submitted.is_relative_to(out / name)]
    if out.is_relative_to(submitted) or inside:
        raise submissions.SubmissionsError(
            f"error: {submitted} holds notebooks the grader wrote into {out} ({', '.join(GRADER_FOLDERS)}): "
            "they would be graded as students. Give the folder or zip of the students' submissions"
        )


def _find(
    submitted: Path, tmp: Path, known: dict[str, str], term: settings.Settings, selection: Selection
) -> tuple[dict[str, list[submissions.Submission]], list[submissions.Problem]]:
    """The selected submissions by student, with what their LMS export carried, and the
    problems met among the selected students' files (each also a warning here)."""
    found = submissions.find(submitted, known, tmp / "unzipped")
    seen = set(found.by_student) | {problem.student for problem in found.problems}
    if not seen:  # the wrong folder, or an export of another kind of file
        raise submissions.SubmissionsError(
            f"error: no notebook (.ipynb) in {submitted}: nothing graded. Give the folder or zip that "
            "holds the students' folders (<student>/<notebook>.ipynb, <student>/<assignment>/<notebook>.ipynb) "
            "or the LMS's files"
        )
    _check_selection(selection, seen, set(known.values()), submitted)
    problems = [p for p in found.problems if p.student in selection.students or not selection.students]
    for problem in problems:
        print(f"warning: {problem.file or problem.name}: {problem.reason}", file=sys.stderr)
    chosen = {}
    for student, subs in found.by_student.items():
        subs = [
            lms.describe(sub, term.timezone, term.late.trust_ctime)
            for sub in subs
            if (student, sub.assignment or "") in selection
        ]
        if subs:
            chosen[student] = subs
        for sub in subs:
            if sub.assignment is None:
                print(f"warning: {unknown_reason(sub)}", file=sys.stderr)
    if not chosen and not problems:  # --assignment 06-cost given with last week's zip
        raise submissions.SubmissionsError(
            f"error: {submitted} holds no submission of what was selected ({selection}): nothing graded"
        )
    return chosen, problems


def _check_selection(
    selection: Selection, students: set[str], assignments: set[str], submitted: Path
) -> None:
    """Stop before grading when ``--assignment`` names no chapter, or no ``--student`` has a
    submission here (a typo would grade nothing, and say so only in passing); a student missing
    beside others who are here is a warning."""
    unknown = sorted(selection.assignments - assignments)
    if unknown:
        said = [
            f"--assignment {a}: no chapter is called that{spelling.hint(a, assignments)}" for a in unknown
        ]
        raise submissions.SubmissionsError(
            "error: "
            + "\n".join(said)
            + f"\n(the chapters: {', '.join(sorted(assignments))}); nothing graded"
        )
    absent = sorted(selection.students - students)
    said = [f"no submission of student {s!r} in {submitted}{spelling.hint(s, students)}" for s in absent]
    if absent and len(absent) == len(selection.students):
        raise submissions.SubmissionsError("error: " + "\n".join(said) + "\nnothing graded")
    for line in said:
        print(f"warning: {line}", file=sys.stderr)


def _record_problems(
    book: gradebook.Gradebook,
    run_id: int,
    by_student: dict[str, list[submissions.Submission]],
    problems: list[submissions.Problem],
) -> None:
    """Each student's submission problems (rows saying what was not graded, or graded under another
    id, and why), replacing those of an earlier run that saw the student's files."""
    mine: dict[str, list[submissions.Problem]] = {}
    for problem in problems:
        mine.setdefault(problem.student, []).append(problem)
    for student in sorted(set(by_student) | set(mine)):
        rows = [Row(student, "", p.file, 0, 0, p.status, p.reason) for p in mine.get(student, [])]
        name = next((p.name for p in mine.get(student, [])), "")
        book.set_problems(run_id, student, rows, name)


def import_formgrader_scores(out: Path, book: gradebook.Gradebook) -> set[str]:
    """Scores changed in nbgrader's formgrader since the last command become overrides. A damaged
    nbgrader gradebook is set aside and made again, empty, for every assignment graded
    (``remake_nbgrader_gradebook``): returns the students whose units the command is then to copy
    into it (all of them), or none."""
    try:
        found = formgrader.manual_scores(out / formgrader.FILE, book.overrides())
    except formgrader.Damaged:
        remake_nbgrader_gradebook(out, {e.assignment for e in book.exercises()})
        return set(book.students())
    for manual in found:
        where = f"{manual.student} {manual.assignment}/{manual.exercise}"
        if manual.problem:
            print(f"warning: formgrader: {where} has {manual.problem}: not taken", file=sys.stderr)
            continue
        reason = manual.comment or "score set in nbgrader's formgrader"
        book.set_override(
            manual.student, manual.assignment, manual.exercise, manual.score, reason, "formgrader"
        )
        what = "cleared" if manual.score is None else f"set to {manual.score:g}"
        print(f"formgrader: {where} {what}")
    return set()


def remake_nbgrader_gradebook(out: Path, assignments: set[str]) -> None:
    """nbgrader's gradebook made anew from the release, with ``assignments`` and no students."""
    with course.scratch("forwardpass-nbgrader-") as tmp:
        tmp = Path(tmp)
        (tmp / "source").mkdir()
        release.build(course.SOLUTIONS, tmp, only=assignments)
        _update_class_gradebook(out / formgrader.FILE, tmp)


def learn_exercises(run: "Run", book: gradebook.Gradebook, assignments: set[str]) -> None:
    """Record each released notebook's exercises, and keep a copy of it for feedback pages."""
    for assignment in sorted(assignments):
        for path in sorted((run.release / assignment).glob("*.ipynb")):
            tests = results.test_cells(nbformat.read(path, as_version=4))
            book.set_exercises(assignment, path.stem, [(t.name, t.points) for t in tests])
            atomic.write(run.out / "release" / assignment / path.name, path.read_bytes())


class SandboxUnavailable(RuntimeError):
    """Students' code cannot be sandboxed on this machine (the message says why)."""


def _warn_about_limits(sandboxed: bool) -> None:
    if not sandboxed:
        print(
            "WARNING: --no-sandbox: students' code runs with the grader's rights. It can read and "
            "write every file the grader can (solutions, hidden references, other students' "
            "work, the grades), use the network, and signal or outlive the grader; only the "
            "time limits and a cleared environment apply. Use it only for code you trust.",
            file=sys.stderr,
        )
    problem = sandbox.not_enforced()
    if problem:
        print(f"warning: {problem}", file=sys.stderr)


def kernel_view() -> sandbox.View:
    """What a kernel sees: the course's public files, and matplotlib's font cache (made here)."""
    fonts = _matplotlib_font_cache()
    return sandbox.View(
        read_only=tuple(course.public_paths()),
        env={"NBGRADER_EXECUTION": "autograde", "MPLCONFIGDIR": MATPLOTLIB_CACHE},
        read_only_at={f"{MATPLOTLIB_CACHE}/{fonts.name}": fonts} if fonts else {},
    )


def kernel_limits(cpu: float, idle: float, memory: int, threads: int) -> sandbox.Limits:
    """A kernel's limits for one notebook; the wall-clock limit only backs up the CPU and idle
    budgets (a notebook that uses all of its CPU time on a machine ten times oversubscribed)."""
    return sandbox.Limits(
        memory=memory,
        pids=PIDS,
        cpu_seconds=cpu,
        wall_seconds=10 * cpu + idle,
        tmpfs=TMPFS,
        file_size=FILE_SIZE,
        threads=threads,
        idle_seconds=idle,
    )


@contextmanager
def _signals_as_ctrl_c():
    """``kill``, and a terminal or ssh session closed (SIGHUP), clean up as Ctrl-C does (workers
    killed, temporary files removed, the run marked interrupted)."""
    caught = (signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, signal.default_int_handler) for number in caught}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# ---- once per run ----------------------------------------------------------------------------------


def prepare(
    out: Path,
    solutions: Path,
    assignments: set[str],
    tmp: Path,
    timeout: int,
    limits: sandbox.Limits,
    isolate: bool,
    secret: bytes | None,
) -> Run:
    """The run's release, template gradebook, formgrader files and scorer (``secret``: the
    course's, or None on a machine given each student's key with their notebooks)."""
    (tmp / "source").mkdir(parents=True, exist_ok=True)  # empty when only unknown notebooks are graded
    release.build(solutions, tmp, only=assignments)  # tmp/source, tmp/release, tmp/gradebook.db
    _update_class_gradebook(out / "gradebook.db", tmp)
    formgrader.write_config(out, solutions)
    formgrader.fill_copies(out)
    view = kernel_view()
    scorer = scoring.Scorer(tmp / "scorer", secret, scoring.Limits.beside(limits, timeout), isolate)
    for assignment in assignments:
        scorer.lend(assignment)
        for path in (tmp / "release" / assignment).glob("*.ipynb"):
            program.warm(nbformat.read(path, as_version=4))  # before the fork of each student's process
    return Run(
        out,
        tmp,
        tmp / "source",
        tmp / "release",
        tmp / release.GRADEBOOK,
        view,
        limits,
        isolate,
        timeout,
        scorer,
    )


def _matplotlib_font_cache() -> Path | None:
    """matplotlib's font list (made here if there is none), shown to every kernel: otherwise each
    kernel that imports pyplot would build it again, a second or more."""
    import matplotlib
    from matplotlib import font_manager

    path = Path(matplotlib.get_cachedir(), f"fontlist-v{font_manager.FontManager.__version__}.json")
    return path if path.is_file() else None


def _update_class_gradebook(class_db: Path, tmp: Path) -> None:
    """Create nbgrader's class gradebook from the template (moved into place whole), or add this
    run's assignments to it in place: formgrader may be writing to it meanwhile (an instructor's
    score), and a copy moved over it would lose what it wrote. nbgrader's ``generate_assignment``
    only adds or updates the assignments it is given, so a run stopped half way leaves them for the
    next run to finish."""
    if class_db.exists():
        release.generate(tmp / "source", tmp / "release-again", class_db)
    else:
        atomic.write(class_db, (tmp / release.GRADEBOOK).read_bytes())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint(subs: list[submissions.Submission]) -> str:
    digest = hashlib.sha256()
    for sub in sorted(subs, key=lambda s: s.notebook):
        digest.update(f"{sub.notebook}\0{sha256(sub.path)}".encode())
    return digest.hexdigest()


def _up_to_date(known: dict[tuple[str, str, str], gradebook.Submitted], sub: submissions.Submission) -> bool:
    """Graded completely before, from a file with the same content."""
    unit = known.get((sub.student, sub.assignment or "", sub.notebook))
    return bool(unit and unit.complete and unit.sha256 == sha256(sub.path))


def _to_grade(subs: list[submissions.Submission], known, zone, force: bool) -> list[submissions.Submission]:
    """A student's submissions this run grades: not one graded before from the same file, nor one
    submitted before the file graded for its notebook (said in a warning); ``force`` grades all."""
    if force:
        return subs
    todo = []
    for sub in subs:
        if _up_to_date(known, sub):
            continue
        if older := _older(known, sub, zone):
            print(f"warning: {older}", file=sys.stderr)
            continue
        todo.append(sub)
    return todo


def _older(known: dict[tuple[str, str, str], gradebook.Submitted], sub: submissions.Submission, zone) -> str:
    """Why a file is not graded over the one graded for the same notebook, if it was submitted
    before it (an earlier week's zip graded again); empty if it was not."""
    unit = known.get((sub.student, sub.assignment or "", sub.notebook))
    if not (unit and unit.submitted_at and sub.submitted_at and sub.assignment):
        return ""
    graded, this = lms.in_zone(unit.submitted_at, zone), lms.in_zone(sub.submitted_at, zone)
    if this >= graded:
        return ""
    return (
        f"{sub.student}: {sub.file} was submitted at {this:%Y-%m-%d %H:%M %Z}, before the file graded for "
        f"{sub.notebook}.ipynb ({graded:%Y-%m-%d %H:%M %Z}): not graded over it (--force grades it)"
    )


# ---- the class, in parallel ------------------------------------------------------------------------


Persist = Callable[[str, list[submissions.Submission], dict, str], None]


def grade_all(
    run: Run,
    todo: dict[str, list[submissions.Submission]],
    jobs: int,
    progress: bool,
    persist: Persist,
    scheduler: str | None = None,
) -> None:
    """Grade every student in ``todo``, calling ``persist(student, subs, result, log)`` in this
    process as each result arrives: on this machine (forked processes, ``jobs`` at a time), or
    with ``scheduler`` on a Dask cluster (``grader.distributed``)."""
    if not todo:
        return
    bar = tqdm(total=len(todo), unit="student", disable=not progress, file=sys.stderr)
    try:
        if scheduler:
            from . import distributed

            distributed.grade_all(scheduler, run, todo, persist, bar)
        else:
            grade_here(run, todo, jobs, persist, bar)
    finally:
        bar.close()


def grade_here(
    run: Run, todo: dict[str, list[submissions.Submission]], jobs: int, persist: Persist, bar
) -> None:
    """Each student in a forked process, ``jobs`` at a time; a process that a signal ended, not
    sent by the grader, is started once more (``crashed``). On Ctrl-C (or SIGTERM) the running
    processes are killed; their kernels' supervisors then end their sandboxes (they get SIGTERM
    when their parent dies), and the run's cgroup scope removes whatever is left."""
    pending = list(todo.items())
    running: dict[int, tuple] = {}
    again: set[str] = set()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                student, subs = pending.pop(0)
                process = start(run, student, subs)
                running[process.sentinel] = (process, student, subs, time.monotonic() + run.time_limit(subs))
            for sentinel in wait(list(running), timeout=5):
                process, student, subs, deadline = running.pop(sentinel)
                process.join()
                if crashed(process, killed=_past(process, deadline)) and student not in again:
                    again.add(student)
                    pending.insert(0, (student, subs))
                    continue
                persist(student, subs, *finish(run, process, student, subs))
                bar.update()
            for process, *_, deadline in running.values():
                if _past(process, deadline):
                    process.kill()  # finished at the next wait
    finally:
        for process, *_ in running.values():
            process.kill()
            process.join()


def grade_one(
    run: Run, student: str, subs: list[submissions.Submission], context: str = "fork"
) -> tuple[dict, str]:
    """Grade one student in a process of their own, here, within the time limit: (result, log);
    once more if a signal the grader did not send ended the process (``crashed``)."""
    for attempt in (1, 2):
        process = start(run, student, subs, context)
        deadline = time.monotonic() + run.time_limit(subs)
        while process.exitcode is None and not _past(process, deadline):
            process.join(max(0.1, min(5, deadline + process.waited.value - time.monotonic())))
        killed = process.exitcode is None
        if killed:
            process.kill()
        process.join()
        if attempt == 2 or not crashed(process, killed):
            return finish(run, process, student, subs)


def _past(process, deadline: float) -> bool:
    """Whether a student's grading process is past its time limit (``deadline``, on the monotonic
    clock), not counting the time it waited for its sandboxes' turns (``sandbox.turns``)."""
    return time.monotonic() > deadline + process.waited.value


def crashed(process, killed: bool) -> bool:
    """Whether a signal the grader did not send ended a student's grading process. A student's
    code cannot send one (its kernel is sandboxed), so this is the grader's own fault, or the
    machine's (a library that aborts, the kernel's OOM killer): worth one more try."""
    if process.exitcode is None or process.exitcode >= 0 or killed:
        return False
    student = process.name.removeprefix("grade ")
    print(
        f"warning: {student}: the grading process ended by signal {-process.exitcode}; grading again",
        file=sys.stderr,
    )
    return True


CTRL_C = (signal.SIGINT, signal.SIGTERM)


def start(
    run: Run, student: str, subs: list[submissions.Submission], context: str = "fork"
) -> multiprocessing.Process:
    """The process that grades one student (``_worker``), started; its ``waited`` counts the
    seconds it has waited for its sandboxes' turns (``sandbox.turns``)."""
    _result_path(run, student).unlink(missing_ok=True)
    waited = multiprocessing.get_context(context).Value("d", 0.0, lock=False)
    process = _fork(_worker, run, student, subs, waited, name=f"grade {student}", context=context)
    process.waited = waited
    return process


def _fork(target, *args, name: str, context: str = "fork") -> multiprocessing.Process:
    """Start ``target(*args)`` in a new process (forked by default), holding Ctrl-C until the fork
    is done.

    Python runs at-fork handlers (``logging``'s lock among them) around a fork, and a
    KeyboardInterrupt raised inside one is printed and dropped: the run would go on. Blocking the
    signal is not enough (NumPy's BLAS threads do not block it, and any thread that takes it makes
    the main thread run the handler), so during the fork the handlers only note the signal; it is
    acted on once the fork is done, and the new process is killed with the run. Off the main
    thread (a Dask worker's task) signals are not ours to handle, and the fork is plain.
    """
    process = multiprocessing.get_context(context).Process(target=target, args=args, name=name)
    if threading.current_thread() is not threading.main_thread():
        process.start()
        return process
    noted = []
    previous = {number: signal.signal(number, lambda n, _: noted.append(n)) for number in CTRL_C}
    try:
        process.start()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if noted:
        process.kill()
        process.join()
        signal.raise_signal(noted[0])  # through the handler restored above, as if it came now
    return process


def finish(run: Run, process, student: str, subs: list[submissions.Submission]) -> tuple[dict, str]:
    """The result a worker wrote, or a failed one, and its log, both taken out of the scratch
    space: it is memory (``/dev/shm``), and a result holds the autograded notebooks, up to
    ``execute.MAX_OUTPUT`` of outputs each; left there, every student's stayed until the run
    ended (a Dask worker's, until the worker did), however large the class."""
    process.join()
    result = _read_result(run, student)
    _result_path(run, student).unlink(missing_ok=True)
    if process.exitcode != 0 or not result or result["fingerprint"] != _fingerprint(subs):
        reason = f"the grading process failed (exit code {process.exitcode}); see logs/{student}.log"
        result = failed_result(run, student, subs, reason)
    log = _log_path(run, student)
    text = log.read_text(errors="replace") if log.exists() else ""
    log.unlink(missing_ok=True)
    return result, text


def keep(
    run: Run,
    book: gradebook.Gradebook,
    term: settings.Settings,
    run_id: int,
    student: str,
    subs: list,
    result: dict,
    log: str,
) -> None:
    """``persist`` one student's result, its strings made safe first (``grader.scrub``: they come
    from the student's code). If keeping it fails all the same, the student's notebooks are kept
    as failed, with the reason, and the rest of the class goes on."""
    try:
        persist(run.out, book, term, run_id, student, subs, scrub.strings(result), scrub.text(log))
    except Exception as err:
        traceback.print_exc()
        reason = f"the grader could not keep this result ({type(err).__name__}: {str(err)[:200]})"
        print(f"warning: {student}: {reason}", file=sys.stderr)
        failed = failed_result(run, student, subs, scrub.text(reason))
        persist(run.out, book, term, run_id, student, subs, failed, scrub.text(log))


def persist(
    out: Path,
    book: gradebook.Gradebook,
    term: settings.Settings,
    run_id: int,
    student: str,
    subs: list,
    result: dict,
    log: str,
) -> None:
    """Keep one student's result: autograded notebooks and log first, then the gradebook in one
    transaction (which is what marks the units graded), then the student's feedback pages and
    nbgrader's copy, while the other students are still being graded. Once the gradebook holds the
    result, a failure to make the pages is a warning: it never turns kept grades into failures. A
    failure of the grading process replaces no grade of the same file (``_earlier_kept``)."""
    atomic.write(out / "logs" / f"{student}.log", log.encode())
    result = _earlier_kept(book, student, subs, result)
    for entry in result["notebooks"]:
        if not entry["assignment"]:
            continue
        where = Path(student, entry["assignment"], f"{entry['notebook']}.ipynb")
        path, shown = out / "autograded" / where, out / formgrader.MIRROR / where
        if entry.get("autograded") is None:
            path.unlink(missing_ok=True)
            shown.unlink(missing_ok=True)
        else:
            atomic.write(path, entry["autograded"].encode())
            formgrader.write_copy(out, where, entry["autograded"])
    book.record(run_id, result, {(sub.assignment or "", sub.notebook): _unit(sub) for sub in subs})
    try:  # the grades are kept now: what follows is made from them, and can be made again
        shown = book.identities().owner(student)  # an id merged into another: the other's pages
        view = reports.build(book, term, only={shown})
        reports.write_feedback(out, book, view)
        copy_to_nbgrader(out, view, {shown})
    except Exception as err:
        traceback.print_exc()
        print(
            f"warning: {student}: graded and kept, but the feedback pages could not be made "
            f"({type(err).__name__}: {str(err)[:200]}); `python -m grader report` makes them again",
            file=sys.stderr,
        )


def _earlier_kept(book: gradebook.Gradebook, student: str, subs: list, result: dict) -> dict:
    """``result`` without the notebooks that the gradebook holds a complete grade of from the same
    file, when it is a failure of the grading process (``failed_result``: killed, out of memory, the
    grader's own error), which says nothing of the student's code: a ``--force`` regrade that fails
    keeps the grade it was to redo, with a warning. A failure for a new file is kept (as ``error``,
    so the next run grades it again)."""
    if result["complete"]:
        return result
    known = book.submissions()
    same = {_assignment_key(sub) for sub in subs if sub.assignment and _up_to_date(known, sub)}
    if not same:
        return result
    reason = next((row["reason"] for e in result["notebooks"] for row in e["rows"] if row["reason"]), "")
    for assignment, notebook in sorted(same):
        print(
            f"warning: {student}: {reason or 'the grading process failed'}: the grade of "
            f"{assignment}/{notebook}.ipynb graded before from this same file is kept",
            file=sys.stderr,
        )
    kept = [e for e in result["notebooks"] if (e["assignment"] or "", e["notebook"]) not in same]
    return {**result, "notebooks": kept}


def _unit(sub: submissions.Submission) -> dict:
    return {
        "file": sub.file,
        "sha256": sha256(sub.path),
        "name": sub.lms_name or sub.name,
        "lms_id": sub.lms_id,
        "late": sub.late,
        "submitted_at": sub.submitted_at,
        "time_source": sub.time_source,
    }


def _result_path(run: Run, student: str) -> Path:
    return run.scratch / "results" / f"{student}.json"


def _log_path(run: Run, student: str) -> Path:
    return run.scratch / "logs" / f"{student}.log"


def _read_result(run: Run, student: str) -> dict | None:
    try:
        return json.loads(_result_path(run, student).read_text())
    except (OSError, ValueError):
        return None


# ---- one student, in a process of its own ---------------------------------------------------------


def _worker(run: Run, student: str, subs: list[submissions.Submission], waited) -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the grader
    sandbox.count_waits(waited)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # _fork's noting handler came along
    _log_to(_log_path(run, student))
    threadpool_limits(1)  # its arrays are small; each BLAS thread takes tens of MB (of the cap below)
    _cap_memory()
    try:
        _write_result(run, grade_student(run, student, subs))
    except BaseException:
        traceback.print_exc()
        raise


def _cap_memory() -> None:
    """Cap what this process may allocate (``RLIMIT_DATA``: its private writable memory) at what it
    holds now plus ``WORKER_MEMORY``. It reads what the student's kernel sends, and ZeroMQ refuses
    only a frame over ``execute.MAX_MESSAGE``: a message of thousands of such frames (one buffer
    the kernel sends again and again, without a copy) it takes whole, in this process's memory,
    before anything here can read or refuse it. Past the cap an allocation fails and this process
    ends: that student's notebooks fail, and the machine's memory stays the class's. The soft limit
    only: a sandbox started from here sets its own (``grader.sandbox.launch``)."""
    try:
        with open("/proc/self/status") as f:
            held = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
    except (OSError, StopIteration):
        return  # not Linux: no sandbox either, nothing sends what is refused here
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = held + WORKER_MEMORY
    if hard == resource.RLIM_INFINITY or cap < hard:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))


def _log_to(path: Path) -> None:
    """Send this process's output, the kernel's stderr included, to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    course.quiet_logger(NBGRADER_LOG).addHandler(logging.StreamHandler(sys.stderr))


def grade_student(run: Run, student: str, subs: list[submissions.Submission]) -> dict:
    work = run.scratch / "work" / student
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(run.template_db, work / "gradebook.db")
    runtime = Path(tempfile.mkdtemp(prefix="k-", dir=run.scratch))  # a Unix socket path has < 108 bytes
    kernels = execute.sandboxed_kernel(runtime, run.view, run.limits, run.isolate)
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(kernels), os.environ.get("JUPYTER_PATH", "")])
    try:
        notebooks = []  # an entry, or an ``Examined`` notebook waiting for its verdicts
        for assignment, group in itertools.groupby(
            sorted(subs, key=_assignment_key), key=lambda s: s.assignment
        ):
            notebooks += grade_assignment(run, work, runtime, student, assignment, list(group))
        examined = [nb for nb in notebooks if isinstance(nb, Examined)]
        # The student's hidden inputs are in the scorer: it runs alone on the machine, all of its
        # processes (every chain, a process that ended early, the diagnosis pass) in one turn.
        with _alone(run):
            verdicts = iter(run.scorer.score_jobs([nb.job for nb in examined]))
        notebooks = [nb.entry(run, next(verdicts)) if isinstance(nb, Examined) else nb for nb in notebooks]
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return {"student": student, "fingerprint": _fingerprint(subs), "complete": True, "notebooks": notebooks}


def _alone(run: Run):
    """A turn alone on this machine for a student's scorer (``sandbox.turns``; its kernels take
    theirs in ``execute.ResilientExecute``). None without the sandbox (``--no-sandbox``: nothing
    is isolated)."""
    return sandbox.alone() if run.isolate else nullcontext()


def _assignment_key(sub: submissions.Submission) -> tuple[str, str]:
    return sub.assignment or "", sub.notebook


def grade_assignment(
    run: Run, work: Path, runtime: Path, student: str, assignment: str | None, subs: list
) -> list["dict | Examined"]:
    if assignment is None:
        return [_unknown(student, sub) for sub in subs]
    entries, valid = [], []
    for sub in subs:
        target = work / "submitted" / student / assignment / f"{sub.notebook}.ipynb"
        try:
            changes = clean.clean_file(sub.path, run.release_notebook(assignment, sub.notebook), target)
        except clean.NotANotebook as err:
            entries.append(_without_run(run, student, sub, "invalid_notebook", str(err)))
            continue
        for change in changes:  # to the student's log
            print(f"{sub.file}: cell {change.cell}: {change.what}")
        valid.append((sub, changes))
    if not valid:
        return entries
    outcome = course.run(
        Autograde,
        nbgrader_settings(run, work, runtime),
        course.quiet_logger(NBGRADER_LOG),
        assignment,
        student,
        force=True,
        create_student=True,
    )
    for sub, changes in valid:
        graded = work / "autograded" / student / assignment / f"{sub.notebook}.ipynb"
        if graded.exists():
            entries.append(examine(run, student, sub, graded, changes))
        else:  # the scorer does not need nbgrader's run: the cleaned submission is scored all the same
            reason = failures.reason(outcome, f"logs/{student}.log")
            print(f"{sub.file}: {reason}; scored without nbgrader's outputs")
            cleaned = work / "submitted" / student / assignment / f"{sub.notebook}.ipynb"
            entries.append(examine(run, student, sub, cleaned, changes, unrun=reason))
    return entries


def nbgrader_settings(run: Run, work: Path, runtime: Path):
    """The course's nbgrader config for a private course folder, with the sandboxed kernel
    talking over Unix sockets in ``runtime/sockets`` (the one folder it may write to) and its
    connection file and supervisor's report in ``runtime`` (out of its reach)."""
    config = course.nbgrader_config(
        root=work,
        source_directory=run.source,
        submitted_directory=work / "submitted",
        autograded_directory=work / "autograded",
        db=work / "gradebook.db",
    )
    stock = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [ResilientExecute if p is Execute else p for p in stock]
    execute.kernel_settings(config, runtime, run.release, run.timeout)
    config.ResilientExecute.take_turns = run.isolate  # each kernel beside others, never beside a scorer
    return config


@dataclasses.dataclass
class Examined:
    """A notebook nbgrader has run, reviewed and ready to score: what its scorer job needs, and
    all of its entry but the rows (the verdicts come when all the student's notebooks are scored,
    ``scoring.Scorer.score_jobs``)."""

    sub: submissions.Submission
    student: str
    released: object  # the released notebook
    job: scoring.Job
    review: integrity.Review
    autograded: str  # the notebook, its outputs capped

    def entry(self, run: Run, verdicts: dict) -> dict:
        rows = results.score(self.released, self.student, self.sub.assignment, {}, verdicts)
        findings = self.review.findings + self.ran(run, verdicts, [row.exercise for row in rows])
        if run.zero_flagged:
            rows = integrity.zeroed(rows, findings)
        findings = integrity.as_dicts(findings)
        return _entry(self.sub, rows, findings, self.autograded, self.review.fingerprints)

    def ran(self, run: Run, verdicts: dict, exercises: list[str]) -> list[integrity.Finding]:
        """Findings for what the scorer's audit hook told (``grader.audit``): code it refused, on
        every exercise (it could have defined any of them), and what the integrity scan finds in
        the text compiled at run time, read as cells of the notebook."""
        told = dict.fromkeys(ran for verdict in verdicts.values() for ran in verdict.ran)
        found = [
            integrity.Finding(
                tuple(exercises), f"at run time, in the scorer: {ran.reason}", ran.cell, ran.line, ""
            )
            for ran in told
            if ran.reason
        ]
        texts = [ran for ran in told if ran.text]
        for ran in texts:  # honest code times functions, makes dataclasses: it never defines an answer so
            if defined := integrity.names_bound(ran.text) & set(exercises):
                reason = f"at run time, in the scorer: text compiled by cell {ran.cell} defines {', '.join(sorted(defined))}"
                found.append(integrity.Finding(tuple(sorted(defined)), reason, ran.cell, ran.line, ""))
        if not texts:
            return found
        nb = nbformat.reads(self.autograded, as_version=4)
        first = len(nb.cells)
        nb.cells += [nbformat.v4.new_code_cell(ran.text) for ran in texts]
        source = run.source_notebook(self.sub.assignment, self.sub.notebook)
        scanned = integrity.review(nb, self.released, source, exercises, self.sub.assignment)
        static = set(self.review.findings)
        for finding in scanned.findings:
            if finding.cell >= first:
                ran = texts[finding.cell - first]
                where, cell, line = f"in text compiled by cell {ran.cell}", ran.cell, ran.line
            elif finding not in static:  # the notebook's own code, read with what it compiled (a
                # function calling lib's code that exists only as text): new since the static scan
                where, cell, line = "with the text its cells compiled", finding.cell, finding.line
            else:
                continue
            reason = f"at run time, in the scorer, {where}: {finding.reason}"
            found.append(
                integrity.Finding(finding.exercises or tuple(exercises), reason, cell, line, finding.code)
            )
        return found


def examine(
    run: Run, student: str, sub: submissions.Submission, graded: Path, changes=(), unrun: str = ""
) -> Examined:
    """Integrity review and the scorer's job for one autograded notebook (``changes``: what
    cleaning it changed); the entry carries the notebook itself, its outputs capped, back to the
    grading process (which stores it and makes the feedback page from it). ``unrun``: why nbgrader
    could not run it; ``graded`` is then the cleaned submission, shown without its outputs (they
    are not the grader's) and with that reason, and scored like any other."""
    nb = nbformat.read(graded, as_version=4)
    if unrun:
        _without_outputs(nb, f"nbgrader could not run this notebook, so its outputs are not shown ({unrun}); "
                         "the scores come from the grader's own run of your code")  # fmt: skip
    released = run.release_notebook(sub.assignment, sub.notebook)
    names = [test.name for test in results.test_cells(nb)]
    source = run.source_notebook(sub.assignment, sub.notebook)
    try:
        review = integrity.review(nb, released, source, names, sub.assignment, changes)
    except Exception as err:  # the scan is a report: it never costs the student a score
        reason = f"the integrity scan could not read this notebook ({type(err).__name__}): look at it"
        review = integrity.Review([integrity.Finding((), reason, 0, 1, "")])
    job = run.scorer.job(nb, released, sub.assignment, student, submission=sha256(sub.path))
    outputs.capped(nb)
    return Examined(sub, student, released, job, review, nbformat.writes(nb))


def _without_outputs(nb, note: str) -> None:
    """Clear every code cell's outputs, and say why in the first one."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code:
        cell.outputs, cell.execution_count = [], None
    if code:
        code[0].outputs.append(outputs.note(note))


def _unknown(student: str, sub: submissions.Submission) -> dict:
    reason = unknown_reason(sub)
    return _entry(sub, [Row(student, "", sub.notebook, 0, 0, "unknown_assignment", reason)], [])


def unknown_reason(sub: submissions.Submission) -> str:
    """Why a notebook no chapter has is not graded, with the chapter notebook it may have been."""
    close = spelling.closest(sub.notebook, course.notebooks(), n=1)
    guess = f" (is it {close[0]}.ipynb, renamed? rename it back and grade it again)" if close else ""
    return f"{sub.file}: no chapter has a notebook named {sub.notebook}.ipynb{guess}"


def _without_run(run: Run, student: str, sub: submissions.Submission, status: str, reason: str) -> dict:
    """Zero for every exercise of a notebook that could not be run, saying why."""
    tests = results.test_cells(run.release_notebook(sub.assignment, sub.notebook))
    rows = [Row(student, sub.assignment, t.name, 0, t.points, status, reason) for t in tests]
    return _entry(sub, rows, [])


def failed_result(run: Run, student: str, subs: list[submissions.Submission], reason: str) -> dict:
    entries = [
        _unknown(student, sub) if sub.assignment is None else _without_run(run, student, sub, "error", reason)
        for sub in subs
    ]
    return {"student": student, "fingerprint": _fingerprint(subs), "complete": False, "notebooks": entries}


def _entry(
    sub: submissions.Submission,
    rows: list[Row],
    findings: list[dict],
    autograded: str | None = None,
    fingerprints: dict | None = None,
) -> dict:
    """A notebook's part of a result: its rows, its integrity findings, the autograded notebook
    and, by exercise, the fingerprint of the student's code (the reports pair students with them)."""
    return {
        "assignment": sub.assignment,
        "notebook": sub.notebook,
        "file": sub.file,
        "rows": [row.as_dict() for row in rows],
        "findings": findings,
        "autograded": autograded,
        "fingerprints": fingerprints or {},
    }


def _write_result(run: Run, result: dict) -> None:
    atomic.write(_result_path(run, result["student"]), json.dumps(result).encode())


# ---- reports ---------------------------------------------------------------------------------------


def write_reports(out: Path, book: gradebook.Gradebook, term: settings.Settings, students) -> reports.View:
    """Every report from the gradebook, and nbgrader's copy of it for ``students``."""
    view = reports.write(out, book, term)
    copy_to_nbgrader(out, view, set(students))
    return view


def copy_to_nbgrader(out: Path, view: reports.View, students: set[str]) -> None:
    """nbgrader's gradebook (for formgrader, ``nbgrader export``) gets these students' units as the
    gradebook has them: scores, overrides, submission time and late penalty; and only those: an
    id the reports no longer give (merged into another, removed) is taken out of it, and so is an
    assignment they no longer give an id (``formgrader.keep_only``)."""
    db = out / formgrader.FILE
    if not db.exists():
        return
    for student in sorted(students & view.gone):
        formgrader.keep_only(db, student, set())
    students = students - view.gone
    lines: dict[tuple[str, str, str], list] = {}
    for line in view.lines:
        if line.row.student in students and line.row.assignment:
            lines.setdefault((line.row.student, line.row.assignment, line.notebook), []).append(line)
    totals = {(t.student, t.assignment): t for t in view.totals if t.submitted}
    for student in sorted(students):
        units = []
        for (who, assignment, notebook), mine in lines.items():
            total = totals.get((who, assignment))
            if who != student or total is None:
                continue
            units.append(
                formgrader.Unit(
                    student,
                    assignment,
                    notebook,
                    [replace(line.row, score=line.auto_score) for line in mine],
                    {line.row.exercise: line.override for line in mine if line.override},
                    total.submitted.submitted_at,
                    total.lateness.penalty,
                )
            )
        if units:
            formgrader.copy(db, student, units)
        else:
            formgrader.keep_only(db, student, set())
