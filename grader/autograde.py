"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a class with nbgrader, in parallel,
with the students' code in a sandbox and the scores computed outside it.

1. The submissions are found (``grader.submissions``), described with what the LMS export carried
   (``grader.lms``: names, ids, late verdicts, submission times) and narrowed to ``--student`` and
   ``--assignment``. A unit (student, assignment, notebook) whose file is unchanged since it was
   last graded completely is skipped (unless ``force``).
2. Once per run, nbgrader ``generate_assignment`` builds a template gradebook (every assignment,
   no students) and the released notebooks; the sandboxed kernelspec is installed
   (``grader.sandbox``); the gradebook learns each assignment's exercises.
3. Each student is graded in a process of their own, ``jobs`` at a time, forked from this one
   (nbgrader is imported once), or on a Dask cluster (``grader.distributed``), which calls the
   same per-student function on its workers: a private course folder with a copy of the template
   gradebook, real nbgrader ``Autograde`` per assignment with ``grader.execute.ResilientExecute``
   running the kernel in the sandbox, then, outside the kernel, the integrity scan and the
   comparison of the recorded answers with the references (``grader.compare``). The result, with
   the autograded notebooks in it, comes back to this process.
4. This process alone persists each result as it arrives (``persist``): the autograded notebooks,
   then one transaction in the class gradebook ``OUT/grades.sqlite`` (``grader.gradebook``). At the
   end it makes every report from the gradebook (``grader.reports``), updates nbgrader's copy for
   formgrader (``grader.formgrader``) and checks that no unit outside the selection changed.

An interruption loses at most the students being graded at that moment: their units keep their
earlier grades and are graded again by the next run; nothing is counted twice because a unit's
rows are replaced, never added to.
"""

import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from tqdm import tqdm

from . import (
    course,
    formgrader,
    gradebook,
    integrity,
    lms,
    release,
    reports,
    results,
    sandbox,
    settings,
    submissions,
)
from .execute import ResilientExecute
from .results import Row

KERNEL_START_LIMIT = 60  # seconds added to each notebook's time limit
NBGRADER_LOG = "grader.nbgrader"


@dataclass(frozen=True)
class Run:
    """What every student's grading shares."""

    out: Path
    scratch: Path  # temporary, in memory if possible: work folders, throwaway gradebooks
    source: Path  # nbgrader source folder
    release: Path  # the student versions generate_assignment made, this run
    template_db: Path
    kernels: Path  # JUPYTER_PATH entry holding the sandboxed kernelspec
    timeout: int
    memory: int = 3 * 2**30  # bytes a kernel may use (for Dask workers, which prepare their own run)

    def release_notebook(self, assignment: str, notebook: str):
        return nbformat.read(self.release / assignment / f"{notebook}.ipynb", as_version=4)

    def time_limit(self, subs: list[submissions.Submission]) -> float:
        """Wall-clock limit for a student: kernel start plus the timeout for every code cell."""
        cells = sum(
            sum(c.cell_type == "code" for c in self.release_notebook(s.assignment, s.notebook).cells)
            for s in subs
            if s.assignment
        )
        return KERNEL_START_LIMIT * (1 + len(subs)) + self.timeout * cells


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
    timeout: int = 20,
    memory: int = 3 * 2**30,
    force: bool = False,
    progress: bool = True,
    selection: Selection = Selection(),
    scheduler: str | None = None,
    command: str = "",
) -> Outcome:
    """Grade the submissions under ``submitted`` (a folder or a .zip) that ``selection`` names into
    the gradebook of ``out``, then write every report from it."""
    out = out.resolve()
    settings.ensure(out)
    term = settings.load(out)
    known = course.notebooks(source)
    with gradebook.lock(out), _sigterm_as_ctrl_c(), course.scratch("forwardpass-grading-") as tmp:
        tmp = Path(tmp)
        with gradebook.Gradebook(out) as book:
            import_formgrader_scores(out, book)
            by_student = _find(submitted, tmp, known, term, selection)
            assignments = {sub.assignment for subs in by_student.values() for sub in subs if sub.assignment}
            run = prepare(out, source.resolve(), assignments, tmp, timeout, memory, jobs)
            learn_exercises(run, book, assignments)
            known = book.submissions()
            todo = {
                s: [sub for sub in subs if force or not _up_to_date(known, sub)]
                for s, subs in by_student.items()
            }
            todo = {s: subs for s, subs in todo.items() if subs}
            skipped = sum(map(len, by_student.values())) - sum(map(len, todo.values()))
            if skipped:
                print(f"{skipped} notebook(s) already graded with the same file (use --force to regrade)")
            untouched = lambda student, assignment: (student, assignment) not in selection  # noqa: E731
            before = book.units_digest(untouched)
            run_id = book.start_run(command, str(selection))
            try:
                grade_all(
                    run, todo, jobs, progress, lambda *a: persist(out, book, term, run_id, *a), scheduler
                )
            except KeyboardInterrupt:
                book.finish_run(run_id, "interrupted")
                reports.write(out, book, term)
                raise
            except BaseException:
                book.finish_run(run_id, "failed")
                raise
            book.finish_run(run_id, "finished")
            others_changed = book.units_digest(untouched) != before
            view = reports.write(out, book, term)
    return Outcome(view, sum(map(len, todo.values())), skipped, others_changed)


def _find(
    submitted: Path, tmp: Path, known: dict[str, str], term: settings.Settings, selection: Selection
) -> dict[str, list[submissions.Submission]]:
    """The selected submissions by student, with what their LMS export carried."""
    if submitted.suffix == ".zip":
        folder = submissions.unpack(submitted, tmp / "unzipped")
        times = lms.zip_times(submitted, folder)
    else:
        folder, times = submitted, {}
    by_student, unclear = submissions.find(folder, known)
    for path in unclear:
        print(f"warning: cannot tell whose notebook {path} is; skipped", file=sys.stderr)
    for student in sorted(selection.students - set(by_student)):
        print(f"warning: no submission of student {student!r} in {submitted}", file=sys.stderr)
    for assignment in sorted(selection.assignments - set(known.values())):
        print(
            f"warning: no chapter is called {assignment!r}; known: {', '.join(sorted(set(known.values())))}",
            file=sys.stderr,
        )
    chosen = {}
    for student, subs in by_student.items():
        subs = [
            lms.describe(sub, times, term.timezone)
            for sub in subs
            if (student, sub.assignment or "") in selection
        ]
        if subs:
            chosen[student] = subs
    return chosen


def import_formgrader_scores(out: Path, book: gradebook.Gradebook) -> None:
    """Scores changed in nbgrader's formgrader since the last command become overrides."""
    for manual in formgrader.manual_scores(out / formgrader.FILE, book.overrides()):
        reason = manual.comment or "score set in nbgrader's formgrader"
        book.set_override(
            manual.student, manual.assignment, manual.exercise, manual.score, reason, "formgrader"
        )
        what = "cleared" if manual.score is None else f"set to {manual.score:g}"
        print(f"formgrader: {manual.student} {manual.assignment}/{manual.exercise} {what}")


def learn_exercises(run: "Run", book: gradebook.Gradebook, assignments: set[str]) -> None:
    """Record each released notebook's exercises, and keep a copy of it for feedback pages."""
    for assignment in sorted(assignments):
        for path in sorted((run.release / assignment).glob("*.ipynb")):
            tests = results.test_cells(nbformat.read(path, as_version=4))
            book.set_exercises(assignment, path.stem, [(t.name, t.points) for t in tests])
            _atomic_write(run.out / "release" / assignment / path.name, path.read_bytes())


@contextmanager
def _sigterm_as_ctrl_c():
    """``kill`` cleans up as Ctrl-C does (workers killed, temporary files removed)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- once per run ----------------------------------------------------------------------------------


def prepare(
    out: Path, solutions: Path, assignments: set[str], tmp: Path, timeout: int, memory: int, jobs: int
) -> Run:
    (tmp / "source").mkdir(parents=True, exist_ok=True)  # empty when only unknown notebooks are graded
    release.build(solutions, tmp, only=assignments)  # tmp/source, tmp/release, tmp/gradebook.db
    _update_class_gradebook(out / "gradebook.db", tmp)
    formgrader.write_config(out, solutions)
    hidden = [
        course.ROOT,
        out,
        Path(tempfile.gettempdir()),
        tmp,
        solutions,
        course.ROOT / "grader" / "references" / "hidden",
    ]
    shown = [course.ROOT / "lib", course.ROOT / "grader", Path(sys.prefix), Path(sys.base_prefix)]
    shown = [p for p in shown if any(p.is_relative_to(h) for h in hidden)]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    kernels = sandbox.install_kernel(tmp / "jupyter", hidden, shown, memory, threads)
    return Run(out, tmp, tmp / "source", tmp / "release", tmp / release.GRADEBOOK, kernels, timeout, memory)


def _update_class_gradebook(class_db: Path, tmp: Path) -> None:
    """Create nbgrader's class gradebook from the template, or add this run's assignments to it
    (in scratch space, then moved into place whole)."""
    updated = tmp / "class.db"
    if class_db.exists():
        shutil.copyfile(class_db, updated)
        release.generate(tmp / "source", tmp / "release-again", updated)
    else:
        shutil.copyfile(tmp / release.GRADEBOOK, updated)
    _atomic_write(class_db, updated.read_bytes())


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
    """Each student in a forked process, ``jobs`` at a time. On Ctrl-C (or SIGTERM) the running
    processes are killed; their kernels die with them (``sandbox.die_with_parent``)."""
    pending = list(todo.items())
    running: dict[int, tuple] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                student, subs = pending.pop(0)
                process = start(run, student, subs)
                running[process.sentinel] = (process, student, subs, time.monotonic() + run.time_limit(subs))
            for sentinel in wait(list(running), timeout=5):
                process, student, subs, _ = running.pop(sentinel)
                persist(student, subs, *finish(run, process, student, subs))
                bar.update()
            for process, *_, deadline in running.values():
                if time.monotonic() > deadline:
                    process.kill()  # finished at the next wait
    finally:
        for process, *_ in running.values():
            process.kill()
            process.join()


def grade_one(
    run: Run, student: str, subs: list[submissions.Submission], context: str = "fork"
) -> tuple[dict, str]:
    """Grade one student in a process of their own, here, within the time limit: (result, log)."""
    process = start(run, student, subs, context)
    process.join(run.time_limit(subs))
    if process.exitcode is None:
        process.kill()
    return finish(run, process, student, subs)


CTRL_C = (signal.SIGINT, signal.SIGTERM)


def start(
    run: Run, student: str, subs: list[submissions.Submission], context: str = "fork"
) -> multiprocessing.Process:
    """The process that grades one student (``_worker``), started."""
    _result_path(run, student).unlink(missing_ok=True)
    return _fork(_worker, run, student, subs, name=f"grade {student}", context=context)


def _fork(target, *args, name: str, context: str = "fork") -> multiprocessing.Process:
    """Start ``target(*args)`` in a new process (forked by default), holding Ctrl-C until the fork
    is done.

    Python runs at-fork handlers (``logging``'s lock among them) around a fork, and a
    KeyboardInterrupt raised inside one is printed and dropped: the run would go on. Blocking the
    signal is not enough (NumPy's BLAS threads do not block it, and any thread that takes it makes
    the main thread run the handler), so during the fork the handlers only note the signal; it is
    acted on once the fork is done, and the new process is killed with the run.
    """
    noted = []
    previous = {number: signal.signal(number, lambda n, _: noted.append(n)) for number in CTRL_C}
    try:
        process = multiprocessing.get_context(context).Process(target=target, args=args, name=name)
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
    """The result a worker wrote, or a failed one, and its log."""
    process.join()
    result = _read_result(run, student)
    if process.exitcode != 0 or not result or result["fingerprint"] != _fingerprint(subs):
        reason = f"the grading process failed (exit code {process.exitcode}); see logs/{student}.log"
        result = failed_result(run, student, subs, reason)
    log = _log_path(run, student)
    return result, log.read_text(errors="replace") if log.exists() else ""


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
    nbgrader's copy, while the other students are still being graded."""
    _atomic_write(out / "logs" / f"{student}.log", log.encode())
    for entry in result["notebooks"]:
        if not entry["assignment"]:
            continue
        path = out / "autograded" / student / entry["assignment"] / f"{entry['notebook']}.ipynb"
        if entry.get("autograded") is None:
            path.unlink(missing_ok=True)
        else:
            _atomic_write(path, entry["autograded"].encode())
    book.record(run_id, result, {(sub.assignment or "", sub.notebook): _unit(sub) for sub in subs})
    view = reports.build(book, term, only={student})
    reports.write_feedback(out, book, view)
    copy_to_nbgrader(out, view, {student})


def _unit(sub: submissions.Submission) -> dict:
    return {
        "file": sub.path.name,
        "sha256": sha256(sub.path),
        "name": sub.name,
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


def _worker(run: Run, student: str, subs: list[submissions.Submission]) -> None:
    sandbox.die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # _fork's noting handler came along
    _log_to(_log_path(run, student))
    try:
        _write_result(run, grade_student(run, student, subs))
    except BaseException:
        traceback.print_exc()
        raise


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
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(run.kernels), os.environ.get("JUPYTER_PATH", "")])
    try:
        notebooks = []
        for assignment, group in itertools.groupby(
            sorted(subs, key=_assignment_key), key=lambda s: s.assignment
        ):
            notebooks += grade_assignment(run, work, runtime, student, assignment, list(group))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return {"student": student, "fingerprint": _fingerprint(subs), "complete": True, "notebooks": notebooks}


def _assignment_key(sub: submissions.Submission) -> tuple[str, str]:
    return sub.assignment or "", sub.notebook


def grade_assignment(
    run: Run, work: Path, runtime: Path, student: str, assignment: str | None, subs: list
) -> list[dict]:
    if assignment is None:
        return [_unknown(student, sub) for sub in subs]
    entries, valid = [], []
    for sub in subs:
        problem = _invalid(sub.path)
        if problem:
            entries.append(_without_run(run, student, sub, "invalid_notebook", problem))
        else:
            submissions.copy_to(sub, work / "submitted" / student / assignment)
            valid.append(sub)
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
    for sub in valid:
        graded = work / "autograded" / student / assignment / f"{sub.notebook}.ipynb"
        if graded.exists():
            entries.append(grade_notebook(run, student, sub, graded))
        else:
            entries.append(_without_run(run, student, sub, "error", _nbgrader_error(outcome)))
    return entries


def nbgrader_settings(run: Run, work: Path, runtime: Path):
    """The course's nbgrader config for a private course folder, with the sandboxed kernel
    talking over Unix sockets next to its connection file in ``runtime``."""
    config = course.nbgrader_config(
        root=work,
        source_directory=run.source,
        submitted_directory=work / "submitted",
        autograded_directory=work / "autograded",
        db=work / "gradebook.db",
    )
    stock = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [ResilientExecute if p is Execute else p for p in stock]
    config.Execute.kernel_name = sandbox.KERNEL_NAME  # whatever kernel the notebook asks for
    config.ExecutePreprocessor.timeout = run.timeout
    config.KernelManager.transport = "ipc"  # the kernel has no network, not even loopback
    config.KernelManager.connection_file = str(runtime / "kernel.json")
    return config


def grade_notebook(run: Run, student: str, sub: submissions.Submission, graded: Path) -> dict:
    """Integrity scan and out-of-kernel scores for one autograded notebook; the entry carries the
    notebook itself back to the grading process (which makes the feedback page from it)."""
    nb = nbformat.read(graded, as_version=4)
    released = run.release_notebook(sub.assignment, sub.notebook)
    sources = {cell.source for cell in released.cells}
    names = [test.name for test in results.test_cells(nb)]
    findings = integrity.scan(nb, sources, names) + integrity.duplicate_answers(nb)
    flagged: dict[str, list[str]] = {}
    for finding in findings:
        for name in finding.exercises:
            flagged.setdefault(name, []).append(
                f"{finding.reason} (cell {finding.cell}, line {finding.line})"
            )
    rows = results.score(nb, student, sub.assignment, flagged, run.timeout)
    return _entry(sub, rows, [f.__dict__ for f in findings], graded.read_text())


def _invalid(path: Path) -> str | None:
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as err:  # not JSON, not a notebook, not valid: all the same to the student
        return f"not a valid notebook: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return None


def _nbgrader_error(outcome: dict) -> str:
    """The first exception named in nbgrader's log (not its closing "see the traceback above")."""
    lines = f"{outcome.get('log', '')}\n{outcome.get('error') or ''}".splitlines()
    causes = [
        line for line in lines if re.match(r"[\w.]+(Error|Exception): ", line) and "NbGrader" not in line
    ]
    return f"nbgrader could not grade the notebook: {(causes or ['unknown error'])[0][:300]}"


def _unknown(student: str, sub: submissions.Submission) -> dict:
    reason = f"{sub.path.name}: no chapter has a notebook named {sub.notebook}.ipynb"
    return _entry(sub, [Row(student, "", sub.notebook, 0, 0, "unknown_assignment", reason)], [])


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
    sub: submissions.Submission, rows: list[Row], findings: list[dict], autograded: str | None = None
) -> dict:
    return {
        "assignment": sub.assignment,
        "notebook": sub.notebook,
        "file": sub.path.name,
        "rows": [row.as_dict() for row in rows],
        "findings": findings,
        "autograded": autograded,
    }


def _write_result(run: Run, result: dict) -> None:
    _atomic_write(_result_path(run, result["student"]), json.dumps(result).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# ---- reports ---------------------------------------------------------------------------------------


def write_reports(out: Path, book: gradebook.Gradebook, term: settings.Settings, students) -> reports.View:
    """Every report from the gradebook, and nbgrader's copy of it for ``students``."""
    view = reports.write(out, book, term)
    copy_to_nbgrader(out, view, set(students))
    return view


def copy_to_nbgrader(out: Path, view: reports.View, students: set[str]) -> None:
    """nbgrader's gradebook (for formgrader, ``nbgrader export``) gets these students' units as the
    gradebook has them: scores, overrides, submission time and late penalty."""
    db = out / formgrader.FILE
    if not db.exists():
        return
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
