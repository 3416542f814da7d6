"""``python -m grader autograde ... --scheduler tcp://HOST:8786``: the students graded on a Dask
cluster (``dask.distributed``) instead of on this machine.

The submitting process sends one task per student: the student's notebooks (their bytes), the
run's limits and the course's version (a digest of ``solutions/``, ``grader/`` and ``lib/``). On a
worker, ``grade_remote`` prepares a run once per worker process and set of assignments, exactly as
local grading does (``grader.autograde.prepare``: the release, the template gradebook, the
sandboxed kernelspec), writes the notebooks into its scratch space and calls
``grader.autograde.grade_one``, the same per-student function local grading runs, in a process of
its own with the same sandbox and time limit. That process is started by a fork server (a Dask
worker has threads of its own, whose locks a plain fork would copy). The task's value is the
result, autograded notebooks and log included; only the submitting process writes it, into its
own gradebook (``persist``), as results arrive. Ctrl-C cancels the tasks not yet finished.

Every worker must run the same commit of the course in the same environment (a worker whose
course differs refuses the task and says so), and must be allowed to start processes: start it
with ``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (Dask's worker processes are daemons by default,
and a daemon may not have children).
"""

import contextlib
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import autograde, course, submissions

CONNECT_TIMEOUT = "30s"


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached."""


@dataclass(frozen=True)
class Job:
    """One student, as a worker needs them."""

    student: str
    notebooks: tuple[tuple[str, str | None, str, bytes], ...]  # (notebook, assignment, file name, bytes)
    assignments: frozenset[str]
    timeout: int
    memory: int
    version: str


@functools.cache
def course_version() -> str:
    """A digest of everything that decides a grade: the chapters' sources, the grader and lib."""
    digest = hashlib.sha256()
    for folder in ("solutions", "grader", "lib"):
        for path in sorted((course.ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{path.relative_to(course.ROOT)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def grade_all(scheduler: str, run: autograde.Run, todo: dict[str, list], persist, bar) -> None:
    """Submit every student in ``todo`` to the cluster at ``scheduler``; ``persist`` each result
    here as it arrives (a task that failed gives the student a failed result saying why)."""
    from distributed import Client, as_completed

    assignments = frozenset(s.assignment for subs in todo.values() for s in subs if s.assignment)
    version = course_version()
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    with client:
        futures = {}
        for student, subs in todo.items():
            notebooks = tuple((s.notebook, s.assignment, s.path.name, s.path.read_bytes()) for s in subs)
            job = Job(student, notebooks, assignments, run.timeout, run.memory, version)
            futures[client.submit(grade_remote, job, pure=False)] = (student, subs)
        try:
            for future in as_completed(futures):
                student, subs = futures[future]
                try:
                    result, log = future.result()
                except Exception as err:  # the task raised, or its worker was lost for good
                    reason = f"the Dask worker could not grade this student: {type(err).__name__}: {err}"
                    result, log = autograde.failed_result(run, student, subs, reason), ""
                persist(student, subs, result, log)
                bar.update()
        finally:
            client.cancel(list(futures))


# ---- on a worker ---------------------------------------------------------------------------------

_runs: dict[tuple, tuple[autograde.Run, tempfile.TemporaryDirectory]] = {}
_prepare_lock = threading.Lock()


def grade_remote(job: Job) -> tuple[dict, str]:
    """A Dask task: grade one student on this worker, as local grading would. Returns (result, log)."""
    if job.version != course_version():
        raise RuntimeError(
            "this worker's course differs from the submitting machine's (another commit of the "
            "repository, or local changes): run the same commit on every worker"
        )
    if multiprocessing.current_process().daemon:
        raise RuntimeError(
            "this Dask worker is a daemon process and cannot start the grading process: start it "
            "with DASK_DISTRIBUTED__WORKER__DAEMON=False (see the instructor guide)"
        )
    run = _run_for(job)
    folder = Path(tempfile.mkdtemp(prefix="student-", dir=run.scratch))
    try:
        subs = []
        for index, (notebook, assignment, name, data) in enumerate(job.notebooks):
            path = folder / str(index) / name
            path.parent.mkdir()
            path.write_bytes(data)
            subs.append(submissions.Submission(job.student, path, notebook, assignment))
        return autograde.grade_one(run, job.student, subs, context="forkserver")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_for(job: Job) -> autograde.Run:
    """This worker's prepared run for the job's assignments and limits (made once, then kept for
    the life of the worker process; its scratch folder goes with it)."""
    key = (job.assignments, job.timeout, job.memory)
    with _prepare_lock:
        if key not in _runs:
            multiprocessing.set_forkserver_preload(["grader.autograde"])
            scratch = course.scratch("forwardpass-worker-")
            tmp = Path(scratch.name)
            out = tmp / "out"  # what local grading hides as its output folder; nothing is kept here
            out.mkdir()
            run = autograde.prepare(
                out,
                course.SOLUTIONS,
                set(job.assignments),
                tmp,
                job.timeout,
                job.memory,
                jobs=multiprocessing.cpu_count(),
            )
            _runs[key] = (run, scratch)
        return _runs[key][0]


# ---- a cluster on this machine (tests, benchmarks, trying it out) -------------------------------


@contextlib.contextmanager
def local_cluster(workers: int = 2, logs: Path | None = None):
    """A Dask scheduler and ``workers`` workers on 127.0.0.1, each a process of its own started
    with the ``dask`` command as on a real cluster; yields the scheduler's address."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    with tempfile.TemporaryDirectory(prefix="forwardpass-dask-") as tmp:
        logs = Path(logs or tmp)
        scheduler_file = Path(tmp) / "scheduler.json"
        started = []

        def launch(name: str, *args) -> None:
            log = open(logs / f"{name}.log", "w")
            started.append(
                subprocess.Popen([bin_dir / "dask", *args], stdout=log, stderr=log, env=env, cwd=tmp)
            )
            log.close()

        try:
            launch("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", scheduler_file)  # fmt: skip
            deadline = time.monotonic() + 120
            while not scheduler_file.exists():
                if time.monotonic() > deadline or started[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start; see {logs / 'scheduler.log'}")
                time.sleep(0.2)
            address = json.loads(scheduler_file.read_text())["address"]
            for i in range(workers):
                launch(f"worker{i}", "worker", address, "--nthreads", "1", "--memory-limit", "0",
                       "--host", "127.0.0.1", "--no-dashboard")  # fmt: skip
            _wait_for_workers(address, workers)
            yield address
        finally:
            for process in reversed(started):
                process.send_signal(signal.SIGINT)
            for process in reversed(started):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_for_workers(address: str, workers: int) -> None:
    from distributed import Client

    with Client(address, timeout=CONNECT_TIMEOUT) as client:
        client.wait_for_workers(workers, timeout=300)
