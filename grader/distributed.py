"""``python -m grader autograde ... --scheduler tls://HOST:8786``: the students graded on a Dask
cluster (``dask.distributed``) instead of on this machine.

Whoever can join a Dask cluster can run code on every machine of it, read every task and return
any result: on a grading cluster, read the submissions and the hidden cases and forge any grade.
So the grader sends work only to a cluster that only the course's machines can join: every
connection TLS, each side showing a certificate that the course's own authority signed
(``make_keys``, ``python -m grader cluster-keys``), as Dask's configuration gives them
(``DASK_CONFIG``); anything else is refused before a task is sent (``security``). Nor does the
course's secret travel: a task carries its student's key (``grader.scoring.student_key``), from
which that student's hidden cases are drawn, and nobody else's.

The submitting process sends one task per student: the student's notebooks (their bytes), their
key, the run's limits and the course's version (a digest of ``solutions/``, ``grader/`` and ``lib/``). On a
worker, ``grade_remote`` prepares a run once per worker process and set of assignments, exactly as
local grading does (``grader.autograde.prepare``: the release, the template gradebook, the
sandbox's view and limits; the worker's sandboxes are held in one cgroup scope), writes the notebooks into its scratch space and calls
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

import atexit
import contextlib
import dataclasses
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

from . import autograde, course, sandbox, submissions

CONNECT_TIMEOUT = "30s"


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached."""


@dataclass(frozen=True)
class Job:
    """One student, as a worker needs them."""

    student: str
    notebooks: tuple[tuple[str, str | None, str, bytes], ...]  # (notebook, assignment, file as found, bytes)
    assignments: frozenset[str]
    timeout: int
    limits: sandbox.Limits
    isolate: bool
    version: str
    key: bytes  # the student's (``grader.scoring.student_key``): the same hidden cases on every worker
    zero_flagged: bool = False


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
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, security=security(scheduler))
    except (OSError, TimeoutError) as err:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    with client:
        futures = {}
        for student, subs in todo.items():
            notebooks = tuple((s.notebook, s.assignment, s.file, s.path.read_bytes()) for s in subs)
            job = Job(
                student,
                notebooks,
                assignments,
                run.timeout,
                run.limits,
                run.isolate,
                version,
                run.scorer.key(student),
                run.zero_flagged,
            )
            futures[client.submit(grade_remote, job, pure=False)] = (student, subs)
        try:
            for future in as_completed(futures):
                student, subs = futures.pop(future)
                try:
                    result, log = future.result()
                except Exception as err:  # the task raised, or its worker was lost for good
                    reason = f"the Dask worker could not grade this student: {type(err).__name__}: {err}"
                    result, log = autograde.failed_result(run, student, subs, reason), ""
                future.release()  # else its worker holds the result (notebooks, outputs) to the end of the run
                persist(student, subs, result, log)
                bar.update()
        finally:
            client.cancel(list(futures))


# ---- who may join -----------------------------------------------------------------------------------

OPEN_CLUSTER = (
    "refused: whoever can join a Dask cluster runs code on its machines and reads and returns its "
    "tasks, so on a cluster that anyone on its network can join they could read every submission "
    "and the hidden cases, and return any grade. Make the course's keys once (python -m grader "
    "cluster-keys KEYS), copy KEYS to the same path on every machine of the cluster, and run the "
    "scheduler, the workers and this command with DASK_CONFIG=KEYS and a tls:// address (see the "
    "instructor guide)"
)


def security(scheduler: str):
    """Dask's TLS settings for this process (its configuration), if they make a connection to
    ``scheduler`` one that only holders of a certificate the course's authority signed can join;
    else ``SchedulerError``."""
    from distributed.security import Security

    settings = Security()
    if scheduler.startswith("tls://") and settings.require_encryption and settings.tls_ca_file:
        if settings.tls_client_cert:
            return settings
    raise SchedulerError(f"--scheduler {scheduler}: {OPEN_CLUSTER}")


def make_keys(folder: Path) -> Path:
    """The course's own certificate authority (``ca.pem``), one certificate and key it signed for
    every machine of the grading cluster (``course.pem``), and a Dask configuration that makes
    every connection TLS with both sides shown (``dask.yaml``, read with ``DASK_CONFIG=folder``),
    made with ``openssl``. The authority's key is not kept: no other certificate can be signed.
    Returns ``folder``."""
    folder = folder.resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ca_key, key, request, cert = (
            Path(tmp) / name for name in ("ca-key.pem", "key.pem", "req.pem", "cert.pem")
        )
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for argv in (
            ["req", "-x509", *new_key, "-keyout", ca_key, "-out", folder / "ca.pem", "-days", "3650",
             "-subj", "/CN=Forward Pass grading authority"],
            ["req", *new_key, "-keyout", key, "-out", request, "-subj", "/CN=Forward Pass grading"],
            ["x509", "-req", "-in", request, "-CA", folder / "ca.pem", "-CAkey", ca_key, "-out", cert,
             "-days", "3650", "-set_serial", "1"],
        ):  # fmt: skip
            subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
        course_pem = folder / "course.pem"
        course_pem.touch(mode=0o600)
        course_pem.write_bytes(cert.read_bytes() + key.read_bytes())
    pem = str(course_pem)
    roles = {role: {"cert": pem, "key": pem} for role in ("scheduler", "worker", "client")}
    settings = {
        "distributed": {
            "comm": {"require-encryption": True, "tls": {"ca-file": str(folder / "ca.pem"), **roles}}
        }
    }
    (folder / "dask.yaml").write_text(json.dumps(settings, indent=2))  # JSON is YAML
    return folder


# ---- on a worker ---------------------------------------------------------------------------------

_runs: dict[tuple, tuple[autograde.Run, contextlib.ExitStack]] = {}
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
    run = dataclasses.replace(
        run, zero_flagged=job.zero_flagged, scorer=run.scorer.for_student(job.student, job.key)
    )
    folder = Path(tempfile.mkdtemp(prefix="student-", dir=run.scratch))
    try:
        subs = []
        for index, (notebook, assignment, file, data) in enumerate(job.notebooks):
            path = folder / f"{index}.ipynb"
            path.write_bytes(data)
            subs.append(submissions.Submission(job.student, job.student, path, file, notebook, assignment))
        return autograde.grade_one(run, job.student, subs, context="forkserver")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_for(job: Job) -> autograde.Run:
    """This worker's prepared run for the job's assignments and limits (made once, then kept for
    the life of the worker process; its scratch folder goes with it)."""
    key = (job.assignments, job.timeout, job.limits, job.isolate)
    with _prepare_lock:
        if key not in _runs:
            if job.isolate and sandbox.available():
                raise RuntimeError(f"this worker cannot sandbox students' code: {sandbox.available()}")
            multiprocessing.set_forkserver_preload(["grader.autograde"])
            scratch = contextlib.ExitStack()
            tmp = Path(scratch.enter_context(course.scratch("forwardpass-worker-")))
            # Every sandbox this worker starts is held in one group, removed when the worker exits
            # (set before the fork server starts, which passes its environment on).
            scratch.enter_context(sandbox.scope())
            atexit.register(scratch.close)
            out = tmp / "out"  # what local grading hides as its output folder; nothing is kept here
            out.mkdir()
            run = autograde.prepare(
                out, course.SOLUTIONS, set(job.assignments), tmp, job.timeout, job.limits, job.isolate, None
            )
            _runs[key] = (run, scratch)
        return _runs[key][0]


# ---- a cluster on this machine (tests, benchmarks, trying it out) -------------------------------


@dataclass(frozen=True)
class LocalCluster:
    address: str  # the scheduler's, tls://127.0.0.1:PORT
    keys: Path  # its ``make_keys`` folder: grade on it with ``env``

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DASK_CONFIG": str(self.keys)}


@contextlib.contextmanager
def local_cluster(workers: int = 2, logs: Path | None = None):
    """A Dask scheduler and ``workers`` workers on 127.0.0.1, each a process of its own started
    with the ``dask`` command as on a real cluster, with keys of its own; yields a ``LocalCluster``."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="forwardpass-dask-") as tmp:
        keys = make_keys(Path(tmp) / "keys")
        env = {**os.environ, "DASK_CONFIG": str(keys), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
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
            launch("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--protocol", "tls",
                   "--no-dashboard", "--scheduler-file", scheduler_file)  # fmt: skip
            address = _scheduler_address(scheduler_file, started[0], logs / "scheduler.log")
            for i in range(workers):
                launch(f"worker{i}", "worker", address, "--nthreads", "1", "--memory-limit", "0",
                       "--host", "127.0.0.1", "--no-dashboard")  # fmt: skip
            _wait_for_workers(address, keys, workers)
            yield LocalCluster(address, keys)
        finally:
            for process in reversed(started):
                process.send_signal(signal.SIGINT)
            for process in reversed(started):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _scheduler_address(path: Path, scheduler: subprocess.Popen, log: Path) -> str:
    """The address the Dask ``scheduler`` writes to ``path`` once it listens. Dask writes the file
    in place (``open``, then ``json.dump``), so it exists empty for a moment: read as soon as it
    existed, it could hold no JSON yet (a busy machine's scheduler stretches that moment)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return json.loads(path.read_text())["address"]
        except (FileNotFoundError, ValueError):
            pass  # not there yet, or not all written
        if time.monotonic() > deadline or scheduler.poll() is not None:
            raise RuntimeError(f"the Dask scheduler did not start; see {log}")
        time.sleep(0.2)


def _wait_for_workers(address: str, keys: Path, workers: int) -> None:
    from distributed import Client
    from distributed.security import Security

    pem = str(keys / "course.pem")
    shown = Security(
        tls_ca_file=str(keys / "ca.pem"), tls_client_cert=pem, tls_client_key=pem, require_encryption=True
    )
    with Client(address, timeout=CONNECT_TIMEOUT, security=shown) as client:
        client.wait_for_workers(workers, timeout=300)
