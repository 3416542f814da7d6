"""Scores computed outside the student's reach: a second, minimal process for a student's notebooks.

nbgrader executes the submitted notebook in the kernel sandbox; its outputs feed the feedback
page and nothing else. The score comes from here:

1. Outside, in the grading worker (trusted): ``grader.program`` builds each notebook's program
   (the student's cells, the course statements they need, a probe at each test cell), and each
   probe gets its calls: every case of its exercise, the visible ones and hidden ones drawn from
   a secret (``OUT/.secret``, made on the first run, mixed with the student, the exercise id and
   the submitted file's digest, so a regrade of the same file draws the same inputs and what one
   submission learns about them is of no use to another). The programs go to a folder of their own.
2. Inside, sandboxed (untrusted): ``python -I -S grader/harness.py`` runs the programs, one child
   process each, and calls the student's functions, and streams back their outputs, one JSON line
   per call, over a pipe that the grader reads up to ``MAX_BYTES`` a program. It does so twice
   (``Scorer.run_all``): every program asking its visible cases only, then, in new processes,
   asking its hidden cases only, so that no hidden input is anywhere the student's code can reach
   until every visible case, whose reason shows what that code said, is closed. The process can see
   the standard library, NumPy, the harness with ``wire`` and ``runners``, the programs, and for
   each program a ``lib`` that lends only what its chapter lets students build on
   (``grader.lending``): no reference implementation of anything graded, no reference
   functions, no concept-check keys, no stored outputs.
3. Outside again: the references of the hidden cases are computed live by ``lib``, and every
   returned output is compared with them (``grader.compare``), which names a known mistake as the
   notebook's check does and shows a hidden case only by its description.
4. For the exercises that came back wrong, a second run asks for what explains the first wrong
   case (``grader.followup``); it changes the reasons of those verdicts, never a score. A scorer
   has the machine to itself (``grader.sandbox.turns``), so a student's scoring has an
   ``Allowance`` of time there: the first run's budgets, all of its processes together, as the
   sandbox measured them; one for the passes that ask visible cases and one for those that ask
   hidden ones (``Allowances``), so that what code that read a hidden input spends decides
   nothing a visible reason shows. The second run gets what the first left (an honest first run
   leaves nearly all of it); one that spent it all, its code burning the budget between right
   answers, gets no second run, and its reasons stay the first run's.

One process takes several notebooks (what it costs to start, NumPy above all, is paid once), in
an order where what is lent only grows and never reaches what the notebook at hand grades
(``lending.chains``: the course's six graded chapters make two such sequences). The ``lib`` of the
next notebook is written into the process's view only when the harness asks for it, and from
that moment the grader keeps no answer of the notebooks before (``_Reader``): every answer that
counts was computed while no ``lib`` in the process reached the stage it is graded on. A
notebook's program, its cases' inputs with it, is written there only then too, and only the
harness can ask for it (a token on ``go``, read when no process of the student's is alive): so the
answers of a notebook are computed by code of that notebook, which its integrity scan reads, and
not by a process the notebook before left behind, which saw its inputs (red team, ninth round).
A process that ends early (a limit, a crash, or one that leaves a process behind) keeps what it
sent, and the notebooks it did not start run in a new one.

Why forging the transport is harmless: whatever the student's code does in either process
(display fake answers, patch the checks, write its own lines to the pipe), the only thing that can
earn a point is an output equal to the reference on inputs drawn at grading time, and the only
code in the scorer that can compute one is code the student wrote in the notebook graded. A cell that never ends costs only itself (each statement and call has a time limit, each
program its CPU and wall-clock seconds); a process that dies or stalls keeps the answers it
already sent.

``_run_sandboxed`` is this module's one tie to the sandbox: it runs the harness with
``grader.sandbox.run`` (an allow-list root: the standard library, NumPy and the scorer's
read-only view; no network, a private /tmp; memory, processes and CPU time of the whole tree).
"""

import compileall
import copy
import hashlib
import hmac
import importlib
import json
import math
import os
import pickle
import secrets
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from . import audit, compare, exercises, followup, gradebook, harness, lending, program, references, sandbox
from .compare import Verdict
from .exercise import Case

HERE = Path(__file__).resolve().parent
# what the harness needs from the grader
SHIPPED = ("harness.py", "wire.py", "runners.py", "watch.py", "audit.py")
SECRET = gradebook.SECRET
MAX_BYTES = 64 * 2**20  # of answers read back from one notebook's scorer
MAX_VALUES = 10_000  # JSON values in one line read back (an honest line has a few hundred at most)
JOB_FILTER = "job.bpf"  # beside the harness: ``grader.sandbox.bwrap.job_filter``
MAX_RAN = 256  # audit events kept from one run (past them: one that says so, ``Ran.told``)
MAX_TIMED_OUT = 64  # statements past their limit kept from one run (each cost a limit of the job's budget)
# Bytes a line read back counts for at least, kept or not: reading one costs the grader about a
# microsecond whatever it holds, and 16 MiB of empty lines, which counted for nothing, took 25 s (a
# scorer sending them until its wall-clock limit took as long of the grader's CPU time). So a
# program sends at most ``MAX_BYTES / MIN_LINE`` lines (an honest one sends a few hundred).
MIN_LINE = 640
READ_GRACE = 5  # seconds to finish reading once the scorer has ended
TMPFS = 64 * 2**20
READABLE = 0o755  # the sandbox runs as another user (one of its own, when the grader is root)
PIDS = 32  # processes and threads of a scorer's tree
FILE_SIZE = 16 * 2**20


# A scorer calls functions on cases of a few dozen numbers and runs a notebook's statements up to
# its last test: an honest chapter takes under half a second of CPU time and none asleep, all of
# its calls together (measured on every chapter's solution). And it runs alone on the machine
# (``grader.sandbox.turns``), so each second it spends is every other student's too. So it gets
# the kernel's budget only up to these: a statement or a call at most ``MAX_PER_CALL`` seconds of
# CPU time, a process at most ``MAX_IDLE`` seconds asleep per notebook. One sleeping statement is
# stopped at ``harness.WALL_FACTOR`` times its CPU limit of wall-clock time and the next one runs,
# as in a notebook after an error: that must come well before the whole process's time asleep runs
# out, which would end it and zero every exercise after the statement. Its time asleep also counts
# the process's start and its earlier statements (a disk read on a busy machine is time asleep), so
# a statement gets at most ``SLEEPER_SHARE`` of it: at an equal share (``--idle 10``, 5 s of CPU a
# call, so 10 s of wall-clock time a statement) a CI run's one sleeping statement ended its process.
MAX_PER_CALL = 5.0
SLEEPER_SHARE = 0.5
MAX_IDLE = harness.WALL_FACTOR * MAX_PER_CALL / SLEEPER_SHARE


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

    @classmethod
    def beside(cls, kernel, timeout: float) -> "Limits":
        """A scorer's limits for a notebook whose kernel has ``kernel`` (``sandbox.Limits``) and
        ``timeout`` seconds a cell: a third of its CPU time per statement or call (at most
        ``timeout``) and its time asleep, each within the scorer's own maximum; and a statement's
        wall-clock limit within ``SLEEPER_SHARE`` of that time asleep."""
        idle = min(kernel.idle_seconds, MAX_IDLE)
        per_call = min(timeout, kernel.cpu_seconds / 3, MAX_PER_CALL, _per_call_within(idle))
        return cls(kernel.memory, per_call, kernel.threads, idle_seconds=idle)

    def for_probes(self, probes: int) -> "Limits":
        """The whole process's budget: a few statements' worth plus every probe's (each stops at
        its first call past the limit), twice as much wall-clock time for a busy machine."""
        cpu = self.per_call * (3 + probes)
        return replace(self, cpu_seconds=cpu, wall_seconds=_wall(cpu))


def _per_call_within(idle: float) -> float:
    """The most CPU seconds a statement may have in a process with ``idle`` seconds asleep: a
    statement that sleeps is stopped at ``harness.WALL_FACTOR`` times that, within ``SLEEPER_SHARE``
    of the process's time asleep, so the process outlives it."""
    return SLEEPER_SHARE * idle / harness.WALL_FACTOR


def _wall(cpu: float) -> float:
    """The wall-clock seconds of a budget of ``cpu`` seconds: twice as many, for a busy machine."""
    return 2 * cpu + 10


@dataclass
class Allowance:
    """The time a student's scoring may still spend alone on the machine: CPU seconds and seconds
    asleep, all of its processes together, as their sandboxes measured them (``spend``). Made
    from the first run's budgets (``Scorer.allowance``): the first run fits in it by construction,
    and the diagnosis pass gets only what it left (``cap``)."""

    cpu: float
    idle: float

    def cap(self, limits: Limits) -> "Limits | None":
        """``limits`` within what is left, a statement's limit within the time asleep left as
        ``Limits.beside`` puts it; None if that is less than one statement's worth (or no time
        asleep at all): a process would spend it starting."""
        cpu, idle = min(limits.cpu_seconds, self.cpu), min(limits.idle_seconds, self.idle)
        if cpu < limits.per_call or idle <= 0:
            return None
        return replace(
            limits,
            per_call=min(limits.per_call, _per_call_within(idle)),
            cpu_seconds=cpu,
            idle_seconds=idle,
            wall_seconds=min(limits.wall_seconds, _wall(cpu)),
        )

    def spend(self, given: Limits, report: dict) -> None:
        """Take off what a process given ``given`` used, by its sandbox's ``report`` (all it was
        given, where the report does not say)."""
        cpu, idle = _seconds(report.get("cpu_seconds")), _seconds(report.get("idle_seconds"))
        self.cpu -= given.cpu_seconds if cpu is None else cpu
        self.idle -= given.idle_seconds if idle is None else idle


class Allowances(NamedTuple):
    """A student's ``Allowance`` for the passes that ask visible cases and another for those that
    ask hidden ones (``Scorer.run_all``): what code that read a hidden input spends is taken
    from the second only, so it decides nothing that a visible case's reason shows."""

    visible: Allowance
    hidden: Allowance


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


def student_key(secret: bytes, student: str) -> bytes:
    """One student's key, from which all their hidden cases are drawn (``case_seed``): what a
    machine that grades them needs, without the course's secret (``grader.distributed``)."""
    return hashlib.sha256(b"\0".join([b"student", secret, student.encode()])).digest()


def case_seed(key: bytes, exercise_id: str, submission: str = "") -> int:
    """The seed of a student's hidden cases of one exercise (``key``: ``student_key``), for one
    submitted file (its digest): a regrade of the same file draws the same cases, and any other
    file new ones, so what one submission learns about its hidden cases is of no use to the next."""
    digest = hashlib.sha256(b"\0".join([key, exercise_id.encode(), submission.encode()])).digest()
    return int.from_bytes(digest[:16], "big")


def case_secret(secret: bytes, student: str, exercise_id: str, submission: str = "") -> int:
    """``case_seed`` of ``student``'s key under the course's ``secret``."""
    return case_seed(student_key(secret, student), exercise_id, submission)


class Scorer:
    """The scorer of one grading run: its read-only view (``work/view``: the harness, one lent
    ``lib`` per assignment), its limits, and whether it is sandboxed (not with ``--no-sandbox``).
    ``secret``: the course's, or None where only some students' keys are known (``for_student``)."""

    def __init__(self, work: Path, secret: bytes | None, limits: Limits, isolate: bool = True):
        self.work, self.secret, self.limits, self.isolate = work, secret, limits, isolate
        self.keys: dict[str, bytes] = {}  # student -> ``student_key``, given rather than computed
        self.view = work / "view"
        self.view.mkdir(parents=True, exist_ok=True)
        self.view.chmod(READABLE)
        for name in SHIPPED:
            shutil.copyfile(HERE / name, self.view / name)
            (self.view / name).chmod(0o644)
        if isolate:  # the harness loads it (without the sandbox, on trusted code, there is none)
            (self.view / JOB_FILTER).write_bytes(sandbox.job_filter())
            (self.view / JOB_FILTER).chmod(0o644)

    def for_student(self, student: str, key: bytes) -> "Scorer":
        """This scorer with ``student``'s key given (a machine that does not hold the secret)."""
        scorer = copy.copy(self)
        scorer.keys = {**self.keys, student: key}
        return scorer

    def key(self, student: str) -> bytes:
        if student in self.keys:
            return self.keys[student]
        if self.secret is None:
            raise ValueError(f"this scorer holds neither the course's secret nor {student}'s key")
        return student_key(self.secret, student)

    def lend(self, assignment: str) -> Path:
        """The folder holding the scorer's ``lib`` for ``assignment`` (made once)."""
        folder = self.work / f"lib-{assignment}"
        if not folder.exists():
            partial = Path(tempfile.mkdtemp(dir=self.work))
            partial.chmod(READABLE)
            lending.write(assignment, partial)
            # compiled here, where it may be written: the sandbox imports it from these caches, and
            # the audit hook compares what an import loads with them
            compileall.compile_dir(partial, quiet=1)
            try:
                partial.rename(folder)
            except OSError:  # another worker made it first
                shutil.rmtree(partial, ignore_errors=True)
        return folder

    def score(self, nb, released, assignment: str, student: str, submission: str = "") -> dict[str, Verdict]:
        """A verdict for every test cell of the released notebook, by ``grade_id``."""
        return self.score_jobs([self.job(nb, released, assignment, student, submission)])[0]

    def job(self, nb, released, assignment: str, student: str, submission: str = "") -> "Job":
        """What scoring one notebook takes: its program, with every probe's calls (its cases,
        visible and hidden, drawn for ``student`` and the ``submission``'s digest)."""
        items = program.build(nb, released)
        cases = {}
        for item in items:
            if "exercise" not in item:
                continue
            exercise = exercises.get(item["exercise"])
            cases[item["probe"]] = exercise.cases(case_seed(self.key(student), item["exercise"], submission))
            item["kind"] = exercise.kind
            item["runner"] = exercise.runner.__name__ if exercise.runner else None
            item["pure"] = exercise.pure
            item["calls"] = [
                {"case": c.name, "inputs": pickle.dumps(c.inputs), "hidden": c.hidden}
                for c in cases[item["probe"]]
            ]
        return Job(items, cases, assignment)

    def score_jobs(self, jobs: list["Job"]) -> list[dict[str, Verdict]]:
        """The verdicts of each of one student's notebooks (``job``), by ``grade_id``: their
        programs run in as few scorer processes as lending allows."""
        scored = [job for job in jobs if job.cases]
        allowance = self.allowance([job.items for job in scored])
        runs = iter(self.run_all([(job.items, job.assignment) for job in scored], allowance))
        verdicts = []
        for job in jobs:
            if not job.cases:
                verdicts.append({})
                continue
            run = next(runs) or Run.parse(b"", TIMED_OUT, job.items)  # not run: the allowance was spent
            first = {
                item["grade_id"]: _verdict(
                    item["exercise"], job.cases[item["probe"]], run.answers.get(item["probe"], {}), run
                )
                for item in job.items
                if "exercise" in item
            }
            explained = followup.explain(self, job.items, job.cases, run, first, job.assignment, allowance)
            verdicts.append({grade_id: replace(v, ran=run.ran) for grade_id, v in explained.items()})
        return verdicts

    def allowance(self, programs: list[list[dict]]) -> "Allowances":
        """The time alone of a student's scoring: the first run's budgets for ``programs``, each
        run in its two ``halves``, one allowance for each half."""
        halves = [program.halves(items) for items in programs]
        return Allowances(
            self._allowance_of([v for v, _ in halves]), self._allowance_of([h for _, h in halves])
        )

    def _allowance_of(self, programs: list[list[dict]]) -> Allowance:
        budgets = [self.budget(items) for items in programs if items]
        return Allowance(sum(b.cpu_seconds for b in budgets), self.limits.idle_seconds * len(budgets))

    def budget(self, items: list[dict]) -> Limits:
        """The limits of one program: the kernel's, within what its probes may take."""
        return self.limits.for_probes(sum("exercise" in item for item in items))

    def run(self, items: list[dict], assignment: str, allowance: "Allowances | None" = None) -> "Run | None":
        """Run the harness on one program; what came back (None if ``allowance`` had nothing left
        to run it with)."""
        return self.run_all([(items, assignment)], allowance)[0]

    def run_all(
        self, programs: list[tuple[list[dict], str]], allowance: "Allowances | None" = None
    ) -> list["Run | None"]:
        """Run the harness on programs ``(items, assignment)``; what came back from each (None if
        ``allowance`` had nothing left to run it with).

        In two passes (``program.halves``): first every program asking its visible cases only,
        then, in processes of their own, every program asking its hidden cases only. So no
        process that could read a hidden input runs before every answer whose reason shows what
        the student's code said (a visible case's error, its output) is closed: nothing can carry
        a hidden input out through one. The hidden pass's answers are its hidden cases' and
        nothing else, and it spends from an allowance of its own: how much it spends cannot
        decide whether a later visible pass (the diagnosis's) runs."""
        halves = [program.halves(items) for items, _ in programs]
        assignments = [assignment for _, assignment in programs]
        visible, hidden_allowance = (None, None) if allowance is None else allowance
        seen = self._in_chains([(halves[i][0], a) for i, a in enumerate(assignments)], visible)
        hidden = {  # each told to skip the statements that ran past their limit in the first pass
            i: program.skipping(half, seen[i].timed_out)
            for i, (_, half) in enumerate(halves)
            if half and seen[i] is not None
        }
        unseen = self._in_chains([(hidden[i], assignments[i]) for i in hidden], hidden_allowance)
        unseen = dict(zip(hidden, unseen, strict=True))
        return [Run.merge(run, unseen[i], hidden[i]) if i in hidden else run for i, run in enumerate(seen)]

    def _in_chains(
        self, programs: list[tuple[list[dict], str]], allowance: Allowance | None = None
    ) -> list["Run | None"]:
        """Run the harness on programs ``(items, assignment)``, the programs of each of
        ``lending.chains`` in one process; what came back from each. With an ``allowance``, each
        process runs within what is left of it, and spends from it; a program there is nothing
        left for is not run (None)."""
        runs: list[Run | None] = [None] * len(programs)
        for chain in lending.chains(assignment for _, assignment in programs):
            todo = [i for assignment in chain for i, (_, a) in enumerate(programs) if a == assignment]
            while todo:  # a process that ended before its last program: the rest in a new one
                done = self._in_one_process([programs[i] for i in todo], allowance)
                if not done:  # nothing left of the allowance
                    break
                for i, run in zip(todo, done, strict=False):
                    runs[i] = run
                todo = todo[len(done) :]
        return runs

    def _in_one_process(
        self, programs: list[tuple[list[dict], str]], allowance: Allowance | None = None
    ) -> list["Run"]:
        """One harness process for ``programs``, in order: what came back from each it started
        (at least the first; none if ``allowance`` has nothing left). The ``lib`` of program
        ``j`` is written where the harness finds it only when it asks, once program ``j - 1``'s
        answers are closed (``_Reader``)."""
        limits = [self.budget(items) for items, _ in programs]
        whole = replace(
            self.limits,
            cpu_seconds=sum(job.cpu_seconds for job in limits),
            wall_seconds=sum(job.wall_seconds for job in limits),
            idle_seconds=self.limits.idle_seconds * len(programs),
        )
        if allowance is not None:
            whole = allowance.cap(whole)
            if whole is None:
                return []
        folder = Path(tempfile.mkdtemp(prefix="job-", dir=self.work))
        folder.chmod(READABLE)
        libs = folder / "libs"
        libs.mkdir(mode=READABLE)
        try:

            def lend(j: int) -> None:
                """Write job ``j`` (its cases' inputs) and its ``lib`` where the harness finds
                them: only now, once every job before it has ended, so that no code of theirs
                read its inputs and left their answers behind (red team, ninth round)."""
                items, job_limits = programs[j][0], limits[j]
                job = {"program": items, "cpu": job_limits.cpu_seconds, "wall": job_limits.wall_seconds}
                with open(folder / f"{j}.pickle", "wb") as f:
                    pickle.dump(job, f)
                (folder / f"{j}.pickle").chmod(0o644)
                shutil.copytree(self.lend(programs[j][1]), libs / str(j), copy_function=shutil.copyfile)

            lend(0)
            read, write = os.pipe()
            go_read, go_write = os.pipe()
            reader = _Reader(read, go_write, len(programs), lend)
            reader.start()
            if len(programs) > 1:  # the token that asks for the next lib, read once job 0 has ended
                os.write(go_write, reader.tokens[1].encode())
            argv = [
                str(sandbox.interpreter("minimal")),
                "-I",
                "-S",
                str(self.view / "harness.py"),
                *(f"--path={p}" for p in (_package_paths()[0].parent, self.view)),
                *(f"--job={folder / f'{j}.pickle'}" for j in range(len(programs))),
                f"--libs={libs}",
                f"--fd={write}",
                f"--go={go_read}",
                f"--limit={whole.per_call:g}",
            ]
            try:
                returncode, report = _run_sandboxed(
                    argv, (self.view, folder), whole, (write, go_read), self.isolate
                )
                if allowance is not None:
                    allowance.spend(whole, report)
            finally:
                os.close(write)
                os.close(go_read)
                reader.join(timeout=READ_GRACE)  # whatever came back by then is all there is
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        last = reader.lent - 1  # the program that was running when the process ended
        return [
            Run.parse(reader.data(j), returncode if j == last else 0, items, reader.capped[j])
            for j, (items, _) in enumerate(programs[: reader.lent])
        ]


@dataclass
class Job:
    """One notebook to score: its program, its cases by probe number, the assignment it is from."""

    items: list[dict]
    cases: dict[int, list[Case]]
    assignment: str


class _Reader(threading.Thread):
    """Reads the harness's pipe to its end, and keeps the lines of the program the harness is on
    (the newest lent), each up to ``MAX_BYTES`` (then closes the pipe: the harness stops), every
    line read while a program is the newest counting for it (at least ``MIN_LINE`` bytes), the
    lines it does not keep too.

    The harness asks for program ``j``'s ``lib`` with a line ``lend j TOKEN``, the token this
    reader gave it on ``go`` (``_asks``); the reader then closes program ``j - 1`` (its lines from
    then on are dropped), writes program ``j`` and its ``lib`` (``lend``) and answers with a byte on
    ``go``, followed by the next token. Anything else asking is ignored, and whatever asks, the
    answers of a program are only those read before a ``lib`` beyond its own was written."""

    def __init__(self, fd: int, go: int, programs: int, lend):
        super().__init__(daemon=True)
        self.fd, self.go, self.lend = fd, go, lend
        self.chunks: list[list[bytes]] = [[] for _ in range(programs)]
        self.sizes = [0] * programs
        self.capped = [False] * programs
        self.lent = 1
        # What asks for each program's lib after the first (``harness._lent``): given to the harness
        # on ``go``, one at a time, each with the answer to the request before it.
        self.tokens = {j: secrets.token_hex(16) for j in range(1, programs)}

    def run(self):
        buffer = bytearray()
        try:
            while chunk := os.read(self.fd, 2**16):
                scanned = len(buffer)
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", max(start, scanned))) >= 0:
                    if not self._keep(bytes(buffer[start:end])):
                        return
                    start = end + 1
                del buffer[:start]
                if len(buffer) > MAX_BYTES:  # one line longer than a program may send
                    self.capped[self.lent - 1] = True
                    return
        finally:
            os.close(self.fd)
            os.close(self.go)

    def _keep(self, line: bytes) -> bool:
        """Route one line; False once the current program has sent all it may."""
        head, _, body = line.partition(b" ")
        current = self.lent - 1
        self.sizes[current] += max(len(line) + 1, MIN_LINE)
        if self.sizes[current] >= MAX_BYTES:
            self.capped[current] = True
            return False
        if head == b"lend":
            number, _, token = body.partition(b" ")
            if self._asks(number, token):
                self.lent += 1  # closes the program before, for good
                self.lend(self.lent - 1)
                following = self.tokens[self.lent].encode() if self.lent < len(self.chunks) else b""
                try:
                    os.write(self.go, b"\0" + following)
                except OSError:
                    pass  # the harness is gone
            return True
        if head != str(current).encode():
            return True  # another program's, or not the harness's
        self.chunks[current].append(body)
        return True

    def _asks(self, number: bytes, token: bytes) -> bool:
        """Whether a ``lend`` line is the harness's request for the next program: with the token
        this reader gave the harness for it on ``go``, which no process of the student's can read.
        Without it, the student's code could have the next program's inputs written while its own
        process runs, and answer them as that program (red team, ninth round)."""
        return (
            number == str(self.lent).encode()
            and self.lent < len(self.chunks)
            and hmac.compare_digest(token, self.tokens[self.lent].encode())
        )

    def data(self, program: int) -> bytes:
        return b"\n".join(self.chunks[program])


@dataclass(frozen=True)
class Ran:
    """What the scorer's audit hook told of one operation (``grader.audit``): code it refused
    (``reason``), or ``text`` compiled at run time, for the grader to scan; and where: the cell and
    line of the student's code that ran it (during a test's call, of the function called)."""

    reason: str
    text: str
    cell: int
    line: int

    @classmethod
    def told(cls, event: dict, program: list[dict]) -> "Ran":
        """An event of the hook, its place one of the program's own cells (the first cell if it
        names none)."""
        reason = event["audit"][:200] if isinstance(event.get("audit"), str) else ""
        text = event["ran"][: audit.MAX_TEXT] if not reason else ""
        cell, line = event.get("cell"), event.get("line")
        line = line if type(line) is int and line > 0 else 1
        for item in program:
            if type(cell) is int and "source" in item and item["index"] == cell:
                return cls(reason, text, cell, line)
        return cls(reason, text, 0, 1)


@dataclass
class Run:
    """What one scorer run sent back: answers by probe and case, the cells that failed, whether it
    finished, and how the process ended."""

    answers: dict[int, dict[str, dict]]
    failed: dict[int, str]
    done: bool
    returncode: int
    capped: bool = False
    cpu: float | None = None  # CPU seconds the harness says it used (for benchmarks; unverified)
    timed_out: dict[int, set[int]] = field(default_factory=dict)  # cell -> statements past the limit
    ready: bool = False  # the harness came as far as running the program (none of it ran otherwise)
    ran: tuple["Ran", ...] = ()  # what the audit hook told (``grader.audit``)

    @classmethod
    def parse(cls, data: bytes, returncode: int, program: list[dict], capped: bool = False) -> "Run":
        """What came back from running ``program`` (``returncode``: how the process running it
        ended, unless the harness says how the program's own process did). Every line is untrusted (the student's code
        may write its own): only events about the program's cells and the calls it asked for are
        kept, and a line of more than ``MAX_VALUES`` JSON values is dropped unread (parsed, 64 MB
        of ``[],`` would be millions of objects in the grading process)."""
        asked = {
            item["probe"]: {call["case"] for call in item["calls"]} for item in program if "calls" in item
        }
        cells = {item["index"] for item in program if "source" in item}
        answers, failed, timed_out, done, cpu, ready, ran = {}, {}, {}, False, None, False, []
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
            elif event.get("ready") is True:
                ready = True
            elif isinstance(event.get("audit") or event.get("ran"), str):
                told = sum(len(r.text) for r in ran) + len(event.get("ran") or "")
                if len(ran) == MAX_RAN or told > audit.MAX_TEXT:  # what the hook sends, at most
                    event = {"audit": "compiled more text at run time than the grader reads"}
                if len(ran) <= MAX_RAN and not (ran and ran[-1].reason.startswith("compiled more text")):
                    ran.append(Ran.told(event, program))
            elif isinstance(event.get("exit"), int) and not isinstance(event["exit"], bool):
                returncode = max(-255, min(255, event["exit"]))  # how the program's process ended
            elif isinstance(probe, int) and isinstance(case, str) and case in asked.get(probe, ()):
                answer = {
                    k: event[k]
                    for k in ("output", "error", "line", "timeout", "seen", "impure")
                    if k in event
                }
                answers.setdefault(probe, {}).setdefault(case, _checked(answer))
            elif isinstance(cell, int) and cell in cells:
                if isinstance(event.get("error"), str):
                    failed.setdefault(cell, event["error"][:300])
                if _timed_out_statement(event) and sum(map(len, timed_out.values())) < MAX_TIMED_OUT:
                    timed_out.setdefault(cell, set()).add(event["statement"])
        return cls(
            answers, failed, done, returncode, capped, cpu, timed_out, ready, tuple(dict.fromkeys(ran))
        )

    @classmethod
    def merge(cls, seen: "Run", unseen: "Run | None", hidden: list[dict]) -> "Run":
        """One program's run from its two ``program.halves``: ``seen``, what came back from the
        visible half (every cell's events, the visible cases' answers), and ``unseen``, from the
        hidden half ``hidden`` (its hidden cases' answers; None: not run, the allowance was
        spent). A case with no answer is explained by the first half that did not finish. What
        ran without the scan reading it is both halves': code can tell which half it runs in, and
        compile lib's code for hidden cases only (red team, fifth round); the report is the
        instructor's, so what the hidden half compiled shows no student a hidden input."""
        unseen = unseen or cls.parse(b"", TIMED_OUT, hidden)
        answers = {
            probe: {**seen.answers.get(probe, {}), **unseen.answers.get(probe, {})}
            for probe in seen.answers.keys() | unseen.answers.keys()
        }
        ended = seen if not seen.done else unseen
        cpu = None if seen.cpu is None or unseen.cpu is None else seen.cpu + unseen.cpu
        return replace(
            seen,
            answers=answers,
            done=seen.done and unseen.done,
            returncode=ended.returncode,
            capped=ended.capped,
            ready=ended.ready,
            cpu=cpu,
            ran=tuple(dict.fromkeys(seen.ran + unseen.ran)),
        )

    def missing(self) -> tuple[str, str]:
        """The status and reason for a case that got no answer. It does not say where the process
        stopped: the cell lines are the student's code's to write (or to make true, ending the
        process in the chosen one of thousands of cells), and that code can read every case's
        inputs, the hidden ones too, from the job it is handed; so the reason is one of a fixed few."""
        if self.done:
            return "wrong", "no answer came back"
        if self.capped:
            return "wrong", f"grading stopped: your code sent back more than {MAX_BYTES:,} bytes"
        if self.returncode in OUT_OF_TIME:
            return (
                "timeout",
                "grading stopped at the time limit (a cell or a call that ran too long) before this test ran",
            )
        if not self.ready:  # the harness writes its line before any of the student's code runs
            return (
                "error",
                "the grading process ended before it ran any of your code, the grader's failure (a memory "
                "limit too small for it, say) and not your notebook's: this test was not graded",
            )
        return (
            "kernel_died",
            "your code ended the grading process (os._exit, a crash or the memory limit) before this test ran",
        )


def _timed_out_statement(event: dict) -> bool:
    """Whether ``event`` says a top-level statement (its position in the cell) ran past its limit."""
    statement = event.get("statement")
    return event.get("timeout") is True and type(statement) is int and 0 <= statement


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


def _package_paths() -> tuple[Path, ...]:
    """The installed packages the scorer holds (``lending.SCORER_PACKAGES``: NumPy) and their
    bundled libraries: all the harness needs beyond the standard library."""
    paths = []
    for name in lending.SCORER_PACKAGES:
        package = Path(importlib.import_module(name).__file__).resolve().parent
        libs = package.parent / f"{name}.libs"
        paths += [package, *((libs,) if libs.is_dir() else ())]
    return tuple(paths)


def _run_sandboxed(
    argv: list[str], read_only: tuple[Path, ...], limits: Limits, pass_fds: tuple[int, ...], isolate: bool
) -> tuple[int, dict]:
    """Run ``argv`` in the course's sandbox (``grader.sandbox``: the standard library, NumPy and
    ``read_only``; no network; a small private /tmp; limits for its whole process tree); its
    return code, ``TIMED_OUT`` if it used up its CPU or wall-clock time, and the sandbox's report
    (what it used: ``cpu_seconds``, ``idle_seconds``)."""
    view = sandbox.View(read_only=(*_package_paths(), *read_only), python="minimal")
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
    out_of_time = outcome.report.get("limit") in ("cpu", "idle", "wall")
    return (TIMED_OUT if out_of_time else outcome.returncode), outcome.report
