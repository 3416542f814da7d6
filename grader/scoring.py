"""Scores computed outside the student's reach: a second, minimal process per notebook.

nbgrader executes the submitted notebook in the kernel sandbox; its outputs feed the feedback
page and nothing else. The score comes from here:

1. Outside, in the grading worker (trusted): ``grader.program`` builds the notebook's program (the
   student's cells, the course statements they need, a probe at each test cell), and each probe
   gets its calls: every case of its exercise, the visible ones and hidden ones drawn from a
   secret (``OUT/.secret``, made on the first run, mixed with the student, the exercise id and
   the submitted file's digest, so a regrade of the same file draws the same inputs and what one
   submission learns about them is of no use to another). The job goes to a folder of its own.
2. Inside, sandboxed (untrusted): ``python -I -S grader/harness.py`` runs the program and calls
   the student's functions, and streams back their outputs, one JSON line per call, over a pipe
   that the grader reads up to ``MAX_BYTES``. The process can see the standard library, NumPy,
   the harness with ``wire`` and ``runners``, the job, and a ``lib`` that lends only what the
   chapter lets students build on (``grader.lending``): no reference implementation of anything
   graded, no reference functions, no concept-check keys, no stored outputs.
3. Outside again: the references of the hidden cases are computed live by ``lib``, and every
   returned output is compared with them (``grader.compare``), which names a known mistake as the
   notebook's check does and shows a hidden case only by its description.
4. For the exercises that came back wrong, a second run asks for what explains the first wrong
   case (``grader.followup``); it changes the reasons of those verdicts, never a score.

Why forging the transport is harmless: whatever the student's code does in either process
(display fake answers, patch the checks, write its own lines to the pipe), the only thing that
can earn a point is an output equal to the reference on inputs drawn at grading time, and the
only code in the scorer that can compute one is code the student wrote. A cell that never ends
costs only itself (each statement and call has a time limit); a process that dies or stalls keeps
the answers it already sent.

``_run_sandboxed`` is this module's one tie to the sandbox: it runs the harness with
``grader.sandbox.run`` (an allow-list root: the standard library, NumPy and the scorer's
read-only view; no network, a private /tmp; memory, processes and CPU time of the whole tree).
"""

import hashlib
import json
import math
import os
import pickle
import secrets
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import compare, exercises, followup, lending, program, references, sandbox
from .compare import Verdict
from .exercise import Case

HERE = Path(__file__).resolve().parent
SHIPPED = ("harness.py", "wire.py", "runners.py", "watch.py")  # what the harness needs from the grader
SECRET = ".secret"
MAX_BYTES = 64 * 2**20  # of answers read back from one notebook's scorer
MAX_VALUES = 10_000  # JSON values in one line read back (an honest line has a few hundred at most)
READ_GRACE = 5  # seconds to finish reading once the scorer has ended
TMPFS = 64 * 2**20
READABLE = 0o755  # the sandbox runs as another user (nobody, when the grader is root)
PIDS = 32  # processes and threads of a scorer's tree
FILE_SIZE = 16 * 2**20


@dataclass(frozen=True)
class Limits:
    """What one scorer may use: bytes of memory, seconds of CPU time per statement or call, BLAS
    threads, seconds of CPU and of wall-clock time for the whole process (``for_probes``), and
    seconds asleep."""

    memory: int
    per_call: float
    threads: int = 1
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    idle_seconds: float = math.inf  # time asleep, for the whole process

    def for_probes(self, probes: int) -> "Limits":
        """The whole process's budget: a few statements' worth plus every probe's (each stops at
        its first call past the limit), twice as much wall-clock time for a busy machine."""
        cpu = self.per_call * (3 + probes)
        return replace(self, cpu_seconds=cpu, wall_seconds=2 * cpu + 10)


def course_secret(out: Path) -> bytes:
    """The course's secret, ``out/.secret``: 32 random bytes made on the first run, kept after."""
    path = out / SECRET
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes()
        if len(data) < 16:
            raise ValueError(
                f"{path} is damaged ({len(data)} bytes): remove it to draw new hidden cases"
            ) from None
        return data
    with os.fdopen(fd, "wb") as f:
        data = secrets.token_bytes(32)
        f.write(data)
    return data


def case_secret(secret: bytes, student: str, exercise_id: str, submission: str = "") -> int:
    """The seed of one student's hidden cases of one exercise, for one submitted file (its
    digest): a regrade of the same file draws the same cases, and any other file new ones, so
    what one submission learns about its hidden cases is of no use to the next."""
    parts = [secret, student.encode(), exercise_id.encode(), submission.encode()]
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    return int.from_bytes(digest[:16], "big")


class Scorer:
    """The scorer of one grading run: its read-only view (``work/view``: the harness, one lent
    ``lib`` per assignment), its limits, and whether it is sandboxed (not with ``--no-sandbox``)."""

    def __init__(self, work: Path, secret: bytes, limits: Limits, isolate: bool = True):
        self.work, self.secret, self.limits, self.isolate = work, secret, limits, isolate
        self.view = work / "view"
        self.view.mkdir(parents=True, exist_ok=True)
        self.view.chmod(READABLE)
        for name in SHIPPED:
            shutil.copyfile(HERE / name, self.view / name)
            (self.view / name).chmod(0o644)

    def lend(self, assignment: str) -> Path:
        """The folder holding the scorer's ``lib`` for ``assignment`` (made once)."""
        folder = self.work / f"lib-{assignment}"
        if not folder.exists():
            partial = Path(tempfile.mkdtemp(dir=self.work))
            partial.chmod(READABLE)
            lending.write(assignment, partial)
            try:
                partial.rename(folder)
            except OSError:  # another worker made it first
                shutil.rmtree(partial, ignore_errors=True)
        return folder

    def score(self, nb, released, assignment: str, student: str, submission: str = "") -> dict[str, Verdict]:
        """A verdict for every test cell of the released notebook, by ``grade_id``."""
        items = program.build(nb, released)
        probes = [item for item in items if "exercise" in item]
        if not probes:
            return {}
        cases = {}
        for item in probes:
            exercise = exercises.get(item["exercise"])
            cases[item["probe"]] = exercise.cases(
                case_secret(self.secret, student, item["exercise"], submission)
            )
            item["kind"] = exercise.kind
            item["runner"] = exercise.runner.__name__ if exercise.runner else None
            item["pure"] = exercise.pure
            item["calls"] = [{"case": c.name, "inputs": pickle.dumps(c.inputs)} for c in cases[item["probe"]]]
        run = self.run(items, assignment, self.limits.for_probes(len(probes)))
        verdicts = {
            item["grade_id"]: _verdict(
                item["exercise"], cases[item["probe"]], run.answers.get(item["probe"], {}), run
            )
            for item in probes
        }
        return followup.explain(self, items, cases, run, verdicts, assignment)

    def run(self, items: list[dict], assignment: str, limits: Limits) -> "Run":
        """Run the harness on a program; what came back."""
        job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=self.work))
        job_dir.chmod(READABLE)
        try:
            with open(job_dir / "job.pickle", "wb") as f:
                pickle.dump({"program": items}, f)
            (job_dir / "job.pickle").chmod(0o644)
            read, write = os.pipe()
            reader = _Reader(read)
            reader.start()
            lib_folder = self.lend(assignment)
            argv = [
                str(sandbox.interpreter("minimal")),
                "-I",
                "-S",
                str(self.view / "harness.py"),
                *(f"--path={p}" for p in (_numpy_paths()[0].parent, self.view, lib_folder)),
                f"--job={job_dir / 'job.pickle'}",
                f"--fd={write}",
                f"--limit={limits.per_call:g}",
            ]
            read_only = (self.view, lib_folder, job_dir)
            try:
                returncode = _run_sandboxed(argv, read_only, limits, (write,), self.isolate)
            finally:
                os.close(write)
                reader.join(timeout=READ_GRACE)  # whatever came back by then is all there is
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
        return Run.parse(reader.data, returncode, items, reader.capped)


class _Reader(threading.Thread):
    """Reads the harness's pipe to its end, or to ``MAX_BYTES`` (then closes it: the harness stops)."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.chunks, self.size = fd, [], 0

    def run(self):
        try:
            while self.size < MAX_BYTES:
                chunk = os.read(self.fd, 2**16)
                if not chunk:
                    break
                self.chunks.append(chunk)
                self.size += len(chunk)
        finally:
            os.close(self.fd)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)[:MAX_BYTES]

    @property
    def capped(self) -> bool:
        return self.size >= MAX_BYTES


@dataclass
class Run:
    """What one scorer run sent back: answers by probe and case, the last cell it started, the
    cells that failed, whether it finished, and how the process ended."""

    answers: dict[int, dict[str, dict]]
    last_cell: int | None
    failed: dict[int, str]
    done: bool
    returncode: int
    capped: bool = False
    cpu: float | None = None  # CPU seconds the harness says it used (for benchmarks; unverified)

    @classmethod
    def parse(cls, data: bytes, returncode: int, program: list[dict], capped: bool = False) -> "Run":
        """What came back from running ``program``. Every line is untrusted (the student's code
        may write its own): only events about the program's cells and the calls it asked for are
        kept, and a line of more than ``MAX_VALUES`` JSON values is dropped unread (parsed, 64 MB
        of ``[],`` would be millions of objects in the grading process)."""
        asked = {
            item["probe"]: {call["case"] for call in item["calls"]} for item in program if "calls" in item
        }
        cells = {item["index"] for item in program if "source" in item}
        answers, failed, last_cell, done, cpu = {}, {}, None, False, None
        for line in data.split(b"\n"):
            if sum(line.count(c) for c in b",[{") > MAX_VALUES:
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a partial last line, or something the student's code wrote
            if not isinstance(event, dict):
                continue
            probe, case, cell = event.get("probe"), event.get("case"), event.get("cell")
            if event.get("done") is True:
                done = True
                cpu = _seconds(event.get("cpu"))
            elif isinstance(probe, int) and isinstance(case, str) and case in asked.get(probe, ()):
                answer = {
                    k: event[k]
                    for k in ("output", "error", "line", "timeout", "seen", "impure")
                    if k in event
                }
                answers.setdefault(probe, {}).setdefault(case, _checked(answer))
            elif isinstance(cell, int) and cell in cells:
                last_cell = cell
                if isinstance(event.get("error"), str):
                    failed.setdefault(cell, event["error"][:300])
        return cls(answers, last_cell, failed, done, returncode, capped, cpu)

    def missing(self) -> tuple[str, str]:
        """The status and reason for a case that got no answer."""
        where = f"in cell {self.last_cell}" if self.last_cell is not None else "before your code ran"
        if self.done:
            return "wrong", "no answer came back"
        if self.capped:
            return "wrong", f"grading stopped {where}: your code sent back more than {MAX_BYTES:,} bytes"
        if self.returncode in OUT_OF_TIME:
            return "timeout", f"grading stopped {where}, which ran past the time limit, before this test ran"
        return (
            "kernel_died",
            f"your code ended the grading process {where} (os._exit, a crash or the memory limit), before this test ran",
        )


def _checked(answer: dict) -> dict:
    """An answer with fields of the types ``compare.grade`` expects (anything else dropped)."""
    kept = {}
    if isinstance(answer.get("output"), dict):
        kept["output"] = answer["output"]
    if isinstance(answer.get("error"), str):
        kept["error"] = answer["error"][:400]
        if isinstance(answer.get("line"), str):
            kept["line"] = answer["line"][:250]
    if (timeout := _seconds(answer.get("timeout"))) is not None:
        kept["timeout"] = timeout
    if isinstance(answer.get("impure"), str):
        kept["impure"] = answer["impure"][:120]
    if isinstance(answer.get("seen"), list):
        kept["seen"] = answer["seen"]  # what watched helpers were given (grader.diagnosis reads it warily)
    return kept


def _seconds(value) -> float | None:
    """``value`` as a number of seconds, if it is one (JSON's integers have no bound, a float's do)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _verdict(exercise_id: str, cases: list[Case], answers: dict, run: Run) -> Verdict:
    """The comparison of one exercise's answers; if it fails on what came back (anything the
    student's code sent), the exercise alone is an error that says so."""
    exercise = exercises.get(exercise_id)
    table = references.for_grading(exercise_id, exercise, cases)
    try:
        return compare.grade(exercise_id, cases, answers, table, missing=run.missing())
    except Exception as err:
        reason = f"the grader could not compare your answers ({type(err).__name__}); tell your instructor"
        return Verdict(False, reason, "error")


# ---- running the harness in the sandbox ----------------------------------------------------------

TIMED_OUT = -1000  # returncode of a scorer killed for running past its wall-clock limit
# How a process ends when it runs out of time: killed by us, or by its CPU limit (SIGXCPU), seen
# directly or through bubblewrap (which exits with 128 + the signal).
OUT_OF_TIME = {TIMED_OUT, *(code for sig in (signal.SIGKILL, signal.SIGXCPU) for code in (-sig, 128 + sig))}


def _numpy_paths() -> tuple[Path, ...]:
    """NumPy and its bundled libraries: all the harness needs beyond the standard library."""
    site = Path(np.__file__).resolve().parent.parent
    libs = site / "numpy.libs"
    return (site / "numpy", *((libs,) if libs.is_dir() else ()))


def _run_sandboxed(
    argv: list[str], read_only: tuple[Path, ...], limits: Limits, pass_fds: tuple[int, ...], isolate: bool
) -> int:
    """Run ``argv`` in the course's sandbox (``grader.sandbox``: the standard library, NumPy and
    ``read_only``; no network; a small private /tmp; limits for its whole process tree); its
    return code, ``TIMED_OUT`` if it used up its CPU or wall-clock time."""
    view = sandbox.View(read_only=(*_numpy_paths(), *read_only), python="minimal")
    budget = sandbox.Limits(
        memory=limits.memory,
        pids=PIDS,
        cpu_seconds=limits.cpu_seconds,
        wall_seconds=limits.wall_seconds,
        tmpfs=TMPFS,
        file_size=FILE_SIZE,
        threads=limits.threads,
        idle_seconds=limits.idle_seconds,
    )
    outcome = sandbox.run(argv, view, budget, pass_fds=pass_fds, isolate=isolate)
    return TIMED_OUT if outcome.report.get("limit") in ("cpu", "idle", "wall") else outcome.returncode
