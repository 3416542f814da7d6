"""``python -m grader autograde SUBMISSIONS --out OUT``: grade a class with nbgrader, in parallel,
with the students' code in a sandbox and the scores computed outside it.

1. The submissions are found (``grader.submissions``) and each student's files fingerprinted; a
   student whose files are unchanged since a complete earlier run is skipped (unless ``force``).
2. Once per run, nbgrader ``generate_assignment`` builds a template gradebook (every assignment,
   no students) and the released notebooks; the class gradebook ``OUT/gradebook.db`` is created
   from it or updated; the sandboxed kernelspec is installed (``grader.sandbox``); the course's
   secret ``OUT/.secret`` is read, or made on the first run, and the scorer's read-only view is
   written to scratch space (``grader.scoring``: its harness, and per assignment the ``lib`` that
   the chapter lends, ``grader.lending``). Neither the kernels nor the scorers can see ``OUT``.
3. Each student is graded in a process of their own, forked from this one (nbgrader is imported
   once), ``jobs`` at a time: a private course folder with a copy of the template gradebook, real
   nbgrader ``Autograde`` per assignment with ``grader.execute.ResilientExecute`` running the
   kernel in the sandbox (its outputs make the feedback page; they score nothing). Then, for each
   notebook, the integrity scan, and the scorer: a second, minimal sandboxed process that runs the
   student's code again and calls their functions on the visible cases and on hidden cases drawn
   from the secret; their outputs are compared here, outside it, with references that ``lib``
   computes here (``grader.scoring``, ``grader.compare``). The result is written atomically to
   ``OUT/results/<student>.json``, last.
4. This process alone merges each result into the class gradebook (one transaction, an upsert)
   and finally writes ``OUT/grades.csv`` and ``OUT/integrity.csv`` from all results.

An interruption loses at most the students being graded at that moment: they have no result file
and are graded again by the next run; nothing is counted twice because every write is a replace.
"""

import csv
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
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from tqdm import tqdm

from . import course, feedback, gradebook, integrity, release, results, sandbox, scoring, submissions
from .execute import ResilientExecute
from .results import FIELDS, Row

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
    scorer: scoring.Scorer

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


def autograde(
    submitted: Path,
    out: Path,
    source: Path = course.SOLUTIONS,
    jobs: int = 2,
    timeout: int = 20,
    memory: int = 3 * 2**30,
    force: bool = False,
    progress: bool = True,
) -> list[Row]:
    """Grade every submission under ``submitted`` (a folder or a .zip) into ``out``; returns the
    rows of ``out/grades.csv``."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    known = course.notebooks(source)
    with _sigterm_as_ctrl_c(), course.scratch("forwardpass-grading-") as tmp:
        tmp = Path(tmp)
        folder = submissions.unpack(submitted, tmp / "unzipped") if submitted.suffix == ".zip" else submitted
        by_student, unclear = submissions.find(folder, known)
        for path in unclear:
            print(f"warning: cannot tell whose notebook {path} is; skipped", file=sys.stderr)
        assignments = {sub.assignment for subs in by_student.values() for sub in subs if sub.assignment}
        run = prepare(out, source.resolve(), assignments, tmp, timeout, memory, jobs)
        todo = {s: subs for s, subs in by_student.items() if force or not _up_to_date(run, s, subs)}
        for student in sorted(set(by_student) - set(todo)):
            _merge(run, student)
        if len(todo) < len(by_student):
            print(f"{len(by_student) - len(todo)} student(s) already graded (use --force to regrade)")
        grade_all(run, todo, jobs, progress)
    return write_reports(out)


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
    release.build(solutions, tmp, only=assignments)  # tmp/source, tmp/release, tmp/gradebook.db
    _update_class_gradebook(out / "gradebook.db", tmp)
    hidden = [
        course.ROOT,
        out,
        Path(tempfile.gettempdir()),
        tmp,
        solutions,
    ]
    shown = [course.ROOT / "lib", course.ROOT / "grader", Path(sys.prefix), Path(sys.base_prefix)]
    shown = [p for p in shown if any(p.is_relative_to(h) for h in hidden)]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    kernels = sandbox.install_kernel(tmp / "jupyter", hidden, shown, memory, threads)
    scorer = scoring.Scorer(
        tmp / "scorer", scoring.course_secret(out), scoring.Limits(memory, timeout, threads)
    )
    for assignment in assignments:
        scorer.lend(assignment)
    return Run(out, tmp, tmp / "source", tmp / "release", tmp / release.GRADEBOOK, kernels, timeout, scorer)


def _update_class_gradebook(class_db: Path, tmp: Path) -> None:
    """Create the class gradebook from the template, or add this run's assignments to it (in
    scratch space, then moved into place whole)."""
    updated = tmp / "class.db"
    if class_db.exists():
        shutil.copyfile(class_db, updated)
        release.generate(tmp / "source", tmp / "release-again", updated)
    else:
        shutil.copyfile(tmp / release.GRADEBOOK, updated)
    _atomic_write(class_db, updated.read_bytes())


def _fingerprint(subs: list[submissions.Submission]) -> str:
    digest = hashlib.sha256()
    for sub in sorted(subs, key=lambda s: s.notebook):
        digest.update(f"{sub.notebook}\0".encode() + hashlib.sha256(sub.path.read_bytes()).digest())
    return digest.hexdigest()


def _result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def _read_result(out: Path, student: str) -> dict | None:
    try:
        return json.loads(_result_path(out, student).read_text())
    except (OSError, ValueError):
        return None


def _up_to_date(run: Run, student: str, subs: list[submissions.Submission]) -> bool:
    result = _read_result(run.out, student)
    return bool(result and result["complete"] and result["fingerprint"] == _fingerprint(subs))


# ---- the class, in parallel ------------------------------------------------------------------------


def grade_all(run: Run, todo: dict[str, list[submissions.Submission]], jobs: int, progress: bool) -> None:
    """Grade every student in ``todo`` in a forked process, ``jobs`` at a time, merging each result
    as it arrives. On Ctrl-C (or SIGTERM) the running processes are killed; their kernels die with
    them (``sandbox.die_with_parent``)."""
    pending = list(todo.items())
    running: dict[int, tuple] = {}
    bar = tqdm(total=len(pending), unit="student", disable=not progress, file=sys.stderr)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                student, subs = pending.pop(0)
                process = _fork(_worker, run, student, subs, name=f"grade {student}")
                running[process.sentinel] = (process, student, subs, time.monotonic() + run.time_limit(subs))
            for sentinel in wait(list(running), timeout=5):
                process, student, subs, _ = running.pop(sentinel)
                _finish(run, process, student, subs)
                bar.update()
            for process, *_, deadline in running.values():
                if time.monotonic() > deadline:
                    process.kill()  # _finish records it at the next wait
    finally:
        for process, *_ in running.values():
            process.kill()
            process.join()
        bar.close()


CTRL_C = {signal.SIGINT, signal.SIGTERM}


def _fork(target, *args, name: str) -> multiprocessing.Process:
    """Start ``target(*args)`` in a forked process, holding Ctrl-C until the fork is done.

    Python runs at-fork handlers (``logging``'s lock among them) around a fork, and a
    KeyboardInterrupt raised inside one is printed and dropped: the run would go on. Held, the
    signal arrives just after the fork, where it stops the run as anywhere else.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, CTRL_C)
    try:
        process = multiprocessing.get_context("fork").Process(target=target, args=args, name=name)
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return process


def _finish(run: Run, process, student: str, subs: list[submissions.Submission]) -> None:
    process.join()
    result = _read_result(run.out, student)
    if process.exitcode != 0 or not result or result["fingerprint"] != _fingerprint(subs):
        reason = f"the grading process failed (exit code {process.exitcode}); see logs/{student}.log"
        _write_result(run.out, _failed_result(run, student, subs, reason))
    _merge(run, student)


def _merge(run: Run, student: str) -> None:
    result = _read_result(run.out, student)
    graded = [entry for entry in result["notebooks"] if entry["assignment"] and entry["rows"]]
    gradebook.merge(run.out / "gradebook.db", student, graded)


# ---- one student, in a process of its own ---------------------------------------------------------


def _worker(run: Run, student: str, subs: list[submissions.Submission]) -> None:
    sandbox.die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CTRL_C)  # held by _fork across the fork
    _log_to(run.out / "logs" / f"{student}.log")
    try:
        _write_result(run.out, grade_student(run, student, subs))
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
    """Integrity scan, scores from the scorer and feedback for one autograded notebook."""
    nb = nbformat.read(graded, as_version=4)
    released = run.release_notebook(sub.assignment, sub.notebook)
    sources = {cell.source for cell in released.cells}
    names = [test.name for test in results.test_cells(nb)]
    findings = integrity.scan(nb, sources, names)
    flagged: dict[str, list[str]] = {}
    for finding in findings:
        for name in finding.exercises:
            flagged.setdefault(name, []).append(
                f"{finding.reason} (cell {finding.cell}, line {finding.line})"
            )
    verdicts = run.scorer.score(nb, released, sub.assignment, student)
    rows = results.score(released, student, sub.assignment, flagged, verdicts)
    page = feedback.render(nb, released, rows, _title(student, sub))
    _atomic_write(run.out / "feedback" / student / f"{sub.assignment}.html", page.encode())
    _atomic_write(run.out / "autograded" / student / sub.assignment / graded.name, graded.read_bytes())
    return _entry(sub, rows, [f.__dict__ for f in findings])


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
    """Zero for every exercise of a notebook that could not be run, with a page saying why."""
    tests = results.test_cells(run.release_notebook(sub.assignment, sub.notebook))
    rows = [Row(student, sub.assignment, t.name, 0, t.points, status, reason) for t in tests]
    page = feedback.summary_page(_title(student, sub), rows)
    _atomic_write(run.out / "feedback" / student / f"{sub.assignment}.html", page.encode())
    return _entry(sub, rows, [])


def _failed_result(run: Run, student: str, subs: list[submissions.Submission], reason: str) -> dict:
    entries = [
        _unknown(student, sub) if sub.assignment is None else _without_run(run, student, sub, "error", reason)
        for sub in subs
    ]
    return {"student": student, "fingerprint": _fingerprint(subs), "complete": False, "notebooks": entries}


def _entry(sub: submissions.Submission, rows: list[Row], findings: list[dict]) -> dict:
    return {
        "assignment": sub.assignment,
        "notebook": sub.notebook,
        "file": sub.path.name,
        "rows": [row.as_dict() for row in rows],
        "findings": findings,
    }


def _title(student: str, sub: submissions.Submission) -> str:
    return f"{sub.assignment}: feedback for {student}"


def _write_result(out: Path, result: dict) -> None:
    _atomic_write(_result_path(out, result["student"]), json.dumps(result, indent=1).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# ---- reports ---------------------------------------------------------------------------------------


def write_reports(out: Path) -> list[Row]:
    """``grades.csv`` (with ``missing`` rows for assignments the class submitted and a student did
    not) and ``integrity.csv``, from every result in ``out/results``."""
    saved = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))]
    rows = [Row(**row) for result in saved for entry in result["notebooks"] for row in entry["rows"]]
    rows += _missing(rows)
    rows.sort(key=lambda r: (r.student, r.assignment, r.exercise))
    _write_csv(out / "grades.csv", FIELDS, [r.as_dict() for r in rows])
    flagged = [
        {"student": result["student"], "assignment": entry["assignment"], **finding}
        for result in saved
        for entry in result["notebooks"]
        for finding in entry["findings"]
    ]
    for finding in flagged:
        finding["exercises"] = " ".join(finding["exercises"])
    fields = ("student", "assignment", "exercises", "reason", "cell", "line", "code")
    _write_csv(out / "integrity.csv", fields, flagged)
    return rows


def _missing(rows: list[Row]) -> list[Row]:
    """Zero rows for each assignment a student did not submit and someone else did."""
    exercises: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.assignment:
            exercises.setdefault(row.assignment, {})[row.exercise] = row.max_score
    submitted = {(row.student, row.assignment) for row in rows}
    students = sorted({row.student for row in rows})
    return [
        Row(student, assignment, name, 0, points, "missing", "no notebook was submitted for this assignment")
        for assignment, names in sorted(exercises.items())
        for student in students
        if (student, assignment) not in submitted
        for name, points in names.items()
    ]


def _write_csv(path: Path, fields, records: list[dict]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    os.replace(partial, path)
