"""Grading throughput: ``python -m grader autograde`` against plain sequential ``nbgrader autograde``.

Builds a synthetic class (copies of every chapter's solution notebook; every student adds a cell of
their own and every third one leaves an exercise unwritten), grades it with both, and prints
seconds per notebook and per student, the speed-up, and our per-notebook overhead beyond what a
notebook costs anyway (starting its kernel and running it, measured by executing each solution
notebook directly with nbclient). The cost of the sandbox and the scorer is measured against a
peer graded in the same run: ``python -m grader autograde`` on the same class with both taken out
(``PEER``: a plain ``ipykernel`` kernelspec instead of the sandboxed one, and a scorer that scores
nothing), so that the difference is what they add per notebook (the issue's target: 0.5 s), in
worker-seconds (wall-clock time x jobs) and in CPU seconds. That difference of two whole runs
is noisy (other work on the machine, a kernel slow to start), so the cost is also measured by parts,
each alone: the kernel sandbox (each solution notebook executed on the sandboxed kernel and on a
plain one, in turn, which is noisy too; and, for the verdict, two small notebooks that measure what
it adds to start and stop a kernel and per second the kernel lives) and the scorer (with its
supervisor and bubblewrap). Then it grades the same class twice on a Dask cluster of two
workers on this machine (``--scheduler``): with new workers (each prepares the run: the release,
the kernelspec) and again with the same workers, and prints each time against the local pool's.
Then the scorer's share (``grader.scoring``), scoring one student's solution notebooks as grading
does (in as few processes as lending allows): per chapter, the CPU seconds of its program in its
process; in all, with the supervisors and bubblewrap, and of it the grader's own (references,
comparison); and what a process that runs nothing costs (sandbox, ``python -I -S``, NumPy).

    make bench-grade                                   # 30 students, every chapter
    python benchmarks/bench_grade.py --students 6 --assignments 01-embeddings
"""

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from grader import autograde, course, execute, lending, release, results, sandbox, scoring
from grader.distributed import local_cluster
from grader.sandbox import bwrap, cgroup

BIN = str(Path(sys.executable).parent)
TARGET = 0.5  # seconds per notebook that the sandbox and the scorer may add (issue 12)
# ``python -m grader autograde`` without the sandbox and without the scorer: the same pipeline
# otherwise (cleaning, nbgrader, integrity review, feedback pages, reports).
PEER = """
import json, sys
from pathlib import Path
from grader import sandbox, scoring
from grader.__main__ import main
from grader.sandbox import bwrap

def plain_kernel(directory, view, limits, *, isolate=True):
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    env = {name: str(limits.threads) for name in bwrap.THREAD_VARIABLES}  # as the sandboxed kernel's
    target = Path(directory, "kernels", sandbox.KERNEL_NAME)
    target.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "env": env, "display_name": "plain", "language": "python"}
    (target / "kernel.json").write_text(json.dumps(spec))
    return Path(directory)

sandbox.install_kernel = plain_kernel
scoring.Scorer.score = lambda self, *args, **kwargs: {}
sys.argv[0] = "grader"
sys.exit(main())
"""

# One notebook executed with nbclient on the kernel ``argv[2]`` (the sandboxed one over Unix
# sockets, as grading runs it, or plain ipykernel), in a process of its own so that ``measured``
# reads its CPU seconds and its kernel's.
EXECUTE = """
import sys
from pathlib import Path
import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
path, kernel, runtime = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
km = KernelManager(kernel_name=kernel, transport="ipc", connection_file=f"{runtime}/kernel.json", ip=f"{runtime}/sockets/kernel")
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, km=km, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
"""


def student_notebook(solution, index: int, released):
    """The solution with a cell of the student's own; every third student leaves the first
    exercise as released (unwritten)."""
    nb = nbformat.from_dict(solution)
    nb.cells.append(new_code_cell(f"print('student {index} was here')"))
    answers = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")]
    if index % 3 == 0 and answers:
        grade_id = nb.cells[answers[0]].metadata.nbgrader.grade_id
        nb.cells[answers[0]].source = next(
            c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
        )
    return nb


def build_class(work: Path, students: int, assignments: list[str]) -> Path:
    """``work/source`` (nbgrader source tree), ``work/release``, ``work/class/<student>/<a>/``."""
    release.build(course.SOLUTIONS, work, only=set(assignments))
    for assignment in assignments:
        for path in sorted((work / "source" / assignment).glob("*.ipynb")):
            solution = nbformat.read(path, as_version=4)
            released = nbformat.read(work / "release" / assignment / path.name, as_version=4)
            for index in range(students):
                folder = work / "class" / f"student{index:02d}" / assignment
                folder.mkdir(parents=True, exist_ok=True)
                nbformat.write(student_notebook(solution, index, released), folder / path.name)
    return work / "class"


def direct_execution(work: Path, assignments: list[str]) -> tuple[float, float, int]:
    """(mean kernel start, mean start + run, notebooks) executing each solution notebook (the second
    of two runs, so that disk caches are warm as they are while grading)."""
    paths = [p for a in assignments for p in sorted((work / "source" / a).glob("*.ipynb"))]
    starts, totals = [], []
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        for path in paths * 2:
            nb = nbformat.read(path, as_version=4)
            resources = {"metadata": {"path": str(path.parent)}}
            client = NotebookClient(nb, timeout=600, allow_errors=True, resources=resources)
            began = time.perf_counter()
            with client.setup_kernel():
                client.reset_execution_trackers()
                started = time.perf_counter()
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
            totals.append(time.perf_counter() - began)
            starts.append(started - began)
    finally:
        del os.environ["NBGRADER_EXECUTION"]
    starts, totals = starts[len(paths) :], totals[len(paths) :]
    return sum(starts) / len(starts), sum(totals) / len(totals), len(paths)


def measured(command: list[str], check: bool = True, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and everything it started).

    The CPU seconds are read from a cpuacct cgroup the command runs in (its sandboxes' groups are
    made inside it): a sandboxed process tree is killed and reaped inside its PID namespace, and
    its time never reaches ``RUSAGE_CHILDREN``. Without such a group, that is what is read, and
    the sandboxes' CPU time is missing from it (a line says so)."""
    group = _cpu_group()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    try:
        join = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group else None
        done = subprocess.run(command, stdout=subprocess.DEVNULL, preexec_fn=join, **kwargs)
        if done.returncode and check:
            raise subprocess.CalledProcessError(done.returncode, command)
        if done.returncode:
            print(f"note: {Path(command[0]).name} exited with status {done.returncode} (a notebook failed)")
        wall = time.perf_counter() - began
        if group:
            return wall, int((group / "cpuacct.usage").read_text()) / 1e9
    finally:
        if group:
            with contextlib.suppress(OSError):  # a group still in use is left to the system
                group.rmdir()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def _cpu_group() -> Path | None:
    """A new cgroup v1 ``cpuacct`` group inside this process's own, or None (a warning, once)."""
    own = next((h.own for h in cgroup.hierarchies() if h.version == 1 and "cpuacct" in h.controllers), None)
    if own is not None and os.access(own, os.W_OK):
        group = Path(own, f"bench-grade-{os.getpid()}-{os.urandom(3).hex()}")
        group.mkdir()
        return group
    if not _cpu_group.warned:
        print("note: no writable cpuacct cgroup here: CPU seconds leave out the sandboxes' processes")
        _cpu_group.warned = True
    return None


_cpu_group.warned = False


def ours(
    submissions: Path, out: Path, jobs: int, *more: str, peer: bool = False, env: dict | None = None
) -> tuple[float, float]:
    """``python -m grader autograde`` (``peer``: without the sandbox and the scorer, ``PEER``)."""
    start = ["-c", PEER] if peer else ["-m", "grader"]
    command = [sys.executable, *start, "autograde", str(submissions), "--out", str(out)]
    return measured([*command, "--jobs", str(jobs), *more, *(["--no-sandbox"] if peer else [])],
                    stderr=subprocess.DEVNULL if peer else None, env=env)  # fmt: skip


def plain_nbgrader(work: Path, class_dir: Path) -> tuple[float, float]:
    """``nbgrader autograde "*"`` over the whole class, one process, the course's config."""
    course_dir = work / "plain"
    shutil.copytree(class_dir, course_dir / "submitted")
    db = course_dir / "gradebook.db"
    shutil.copyfile(work / release.GRADEBOOK, db)
    return measured(
        [
            "nbgrader", "autograde", "*",
            f"--config={course.CONFIG_FILE}",
            f"--CourseDirectory.root={course_dir}",
            f"--CourseDirectory.source_directory={work / 'source'}",
            "--CourseDirectory.submitted_directory=submitted",
            "--CourseDirectory.autograded_directory=autograded",
            f"--db=sqlite:///{db}",
        ],
        check=False,  # nbgrader fails the run if any notebook failed (a kernel slow to start)
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip


@dataclasses.dataclass
class ScorerShare:
    """CPU seconds of scoring one student's solution notebooks, the mean of a few runs."""

    inside: dict[str, float]  # per assignment, the student's program in its process (harness-reported)
    outside: float  # this process's own: programs, cases, references, comparison
    whole: float | None  # all of it, supervisors and bubblewrap included (None without a cpuacct group)
    start: float | None  # one scorer process that runs nothing, in all
    processes: int  # scorer processes for the student
    notebooks: int  # notebooks scored


def scorer_share(work: Path, assignments: list[str], repeat: int = 3) -> ScorerShare:
    """Scoring every solution notebook of ``assignments`` as one student's (``Scorer.score_jobs``:
    as few processes as lending allows), measured as ``ScorerShare`` says. CPU seconds, unlike
    wall-clock ones, do not depend much on how busy the machine is."""
    scorer = scoring.Scorer(work / "scorer-bench", b"bench" * 8, scoring.Limits(3 * 2**30, per_call=20))
    passes, run_all = [], scorer.run_all

    def recorded(
        programs, allowance=None
    ):  # every run of the harness: (assignment, what came back) per program
        runs = run_all(programs, allowance)
        passes.extend(zip((assignment for _, assignment in programs), runs, strict=True))
        return runs

    scorer.run_all = recorded
    notebooks = []  # (solution, released, assignment)
    for assignment in assignments:
        for path in sorted((work / "source" / assignment).glob("*.ipynb")):
            released = nbformat.read(work / "release" / assignment / path.name, as_version=4)
            if results.test_cells(released):
                notebooks.append((nbformat.read(path, as_version=4), released, assignment))
                scorer.lend(assignment)
    with _counted() as usage:
        counted = usage()
        for _ in range(repeat):
            scorer.run([], notebooks[0][2])
        start = None if counted is None else (usage() - counted) / repeat
        passes.clear()
        own, counted = time.process_time(), usage()
        for _ in range(repeat):
            scorer.score_jobs(
                [scorer.job(nb, released, assignment, "bench") for nb, released, assignment in notebooks]
            )
        whole = None if counted is None else (usage() - counted) / repeat
    inside = {assignment: 0.0 for _, _, assignment in notebooks}
    for assignment, run in passes:
        inside[assignment] += ((run and run.cpu) or 0) / repeat
    return ScorerShare(
        inside,
        (time.process_time() - own) / repeat,
        whole,
        start,
        2 * len(lending.chains(inside)),  # a pass for the visible cases, then one for the hidden ones
        len(notebooks),
    )


@contextlib.contextmanager
def _counted():
    """``usage()``: CPU seconds so far of a new cpuacct group this process is in meanwhile (it and
    every process it starts), or None without one."""
    group = _cpu_group()
    if group is None:
        yield lambda: None
        return
    (group / "cgroup.procs").write_text(str(os.getpid()))
    try:
        yield lambda: int((group / "cpuacct.usage").read_text()) / 1e9
    finally:
        (group.parent / "cgroup.procs").write_text(str(os.getpid()))
        with contextlib.suppress(OSError):
            group.rmdir()


def sandbox_share(paths: list[Path], jobs: int, repeat: int = 2) -> tuple[float, float]:
    """The kernel sandbox's own cost: mean CPU seconds per notebook of executing each notebook of
    ``paths`` on the sandboxed kernel as grading installs it (``grader.execute.sandboxed_kernel``:
    supervisor, bubblewrap, cgroup, Unix sockets) and on a plain ipykernel with the same BLAS
    threads, in turn (``repeat`` rounds, so that a noisy moment hits both alike), after one
    execution on each that is not counted (the first start of a kernel reads files no later one
    does: over a second more). Unlike the whole class graded twice, this leaves out everything
    else that differs between two runs."""
    runtime = Path(tempfile.mkdtemp(prefix="k-", dir="/tmp"))  # a Unix socket path has < 108 bytes
    threads = max(1, (os.cpu_count() or 1) // jobs)
    limits = autograde.kernel_limits(cpu=600, idle=600, memory=3 * 2**30, threads=threads)
    kernels = execute.sandboxed_kernel(runtime, autograde.kernel_view(), limits)
    plain = kernels / "kernels" / "bench-plain"
    plain.mkdir(parents=True)
    plain_env = {name: str(threads) for name in bwrap.THREAD_VARIABLES}
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (plain / "kernel.json").write_text(json.dumps({"argv": argv, "env": plain_env, "language": "python"}))
    env = {**os.environ, "JUPYTER_PATH": str(kernels), "NBGRADER_EXECUTION": "autograde"}
    cpu = {"bench-plain": 0.0, sandbox.KERNEL_NAME: 0.0}
    try:
        for kernel in cpu:  # the warm-up
            measured([sys.executable, "-c", EXECUTE, str(paths[0]), kernel, str(runtime)], env=env)
        for _ in range(repeat):
            for path in paths:
                for kernel in cpu:
                    command = [sys.executable, "-c", EXECUTE, str(path), kernel, str(runtime)]
                    cpu[kernel] += measured(command, env=env)[1]
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    plain_cpu, sandboxed_cpu = (seconds / (repeat * len(paths)) for seconds in cpu.values())
    return plain_cpu, sandboxed_cpu


ASLEEP = 3  # seconds the second small notebook sleeps


def kernel_sandbox_cost(
    work: Path, jobs: int, lifetime: float, repeat: int = 4
) -> tuple[float, float, float]:
    """The kernel sandbox's cost from two small notebooks, without the noise of a whole notebook's
    own work (a kernel computes as fast inside the sandbox as outside: namespaces add nothing per
    instruction): what it adds to start and stop a kernel (one cell, ``pass``), what it adds per
    second the kernel lives (one cell asleep ``ASLEEP`` s: the supervisor's looks at the tree),
    and the two together for a notebook that lives ``lifetime`` seconds."""
    paths = []
    for name, source in (("empty", "pass"), ("asleep", f"import time\ntime.sleep({ASLEEP})")):
        nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell(source)]), work / f"{name}.ipynb")
        paths.append(work / f"{name}.ipynb")
    (empty_plain, empty), (asleep_plain, asleep) = (sandbox_share([path], jobs, repeat) for path in paths)
    start = empty - empty_plain
    per_second = max(0.0, (asleep - asleep_plain - start) / ASLEEP)
    return start, per_second, start + per_second * lifetime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--assignments", nargs="*", default=course.assignments())
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster's runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        work = Path(tmp)
        class_dir = build_class(work, args.students, args.assignments)
        notebooks = sum(1 for _ in class_dir.rglob("*.ipynb"))
        start, direct, per_student = direct_execution(work, args.assignments)
        print(
            f"class: {args.students} students x {per_student} notebooks = {notebooks} notebooks, {args.jobs} jobs"
        )
        print(f"direct execution: kernel start {start:.2f} s, start + run {direct:.2f} s per notebook (mean)")
        timings = {
            "grader autograde": ours(class_dir, work / "out", args.jobs),
            "plain nbgrader": plain_nbgrader(work, class_dir),
            "ours, no sandbox/scorer": ours(class_dir, work / "out-peer", args.jobs, peer=True),
        }
        for name, (seconds, cpu) in timings.items():
            print(
                f"{name:23s} {seconds:7.1f} s total, {seconds / notebooks:5.2f} s/notebook, "
                f"{seconds / args.students:5.2f} s/student; CPU {cpu / notebooks:5.2f} s/notebook"
            )
        (ours_wall, ours_cpu), (plain_wall, plain_cpu), (peer_wall, peer_cpu) = timings.values()
        ratio = plain_wall / ours_wall
        worker_seconds = ours_wall * args.jobs / notebooks
        print(
            f"speed-up: {ratio:.2f}x (target >= 1.8x on 2 cores; load average now {os.getloadavg()[0]:.1f})"
        )
        print(f"CPU per notebook, ours / plain: {ours_cpu / plain_cpu:.2f}")
        print(
            f"per notebook, per worker: {worker_seconds:.2f} s = {direct:.2f} s (kernel start + run) "
            f"+ {worker_seconds - direct:.2f} s overhead (sandbox, nbgrader, scoring, feedback, run set-up)"
        )
        added_wall = (ours_wall - peer_wall) * args.jobs / notebooks
        added_cpu = (ours_cpu - peer_cpu) / notebooks
        verdict = lambda seconds: "met" if seconds <= TARGET else "NOT met"  # noqa: E731
        print(
            f"sandbox + scorer per notebook (ours - ours without them; two whole runs, noisy): {added_wall:.2f} worker-s "
            f"(target <= {TARGET} s: {verdict(added_wall)}), {added_cpu:.2f} CPU s "
            f"(target <= {TARGET} s: {verdict(added_cpu)})"
        )
        share = scorer_share(work, args.assignments)
        print("scorer, CPU seconds of each solution notebook's program in its process:")
        for assignment, inside in share.inside.items():
            print(f"  {assignment:22s} {inside:5.2f} s")
        if share.whole is not None:
            print(
                f"scorer, one student's {share.notebooks} notebooks in {share.processes} processes: "
                f"{share.whole:.2f} CPU s in all ({share.whole / share.notebooks:.2f} s a notebook), of which "
                f"{share.outside:.2f} s in the grader; a process that runs nothing: {share.start:.2f} s"
            )
        solutions = [p for a in args.assignments for p in sorted((work / "source" / a).glob("*.ipynb"))]
        plain, sandboxed = sandbox_share(solutions, args.jobs)
        print(
            f"kernel, CPU seconds per solution notebook executed alone: {plain:.2f} s plain, "
            f"{sandboxed:.2f} s sandboxed ({sandboxed - plain:+.2f} s; a whole notebook's own work makes it noisy)"
        )
        to_start, per_second, kernel_cost = kernel_sandbox_cost(work, args.jobs, direct)
        print(
            f"kernel sandbox, from small notebooks: {to_start:+.2f} CPU s to start and stop a kernel, "
            f"{per_second * 1000:.1f} ms per second it lives: {kernel_cost:+.2f} s for a notebook of {direct:.1f} s"
        )
        if share.whole is not None:
            # Every notebook of the class is scored; the chapters without a test cell cost nothing.
            scorer_cost = share.whole / per_student
            added = kernel_cost + scorer_cost
            print(
                f"sandbox + scorer per notebook, by parts: {kernel_cost:+.2f} s kernel sandbox + "
                f"{scorer_cost:.2f} s scorer = {added:.2f} CPU s (target <= {TARGET} s: {verdict(added)})"
            )
        if args.no_dask:
            return
        with local_cluster(workers=2) as cluster:  # a new cluster prepares its run once, then keeps it
            for label in ("new workers", "warm workers"):
                out = work / f"out-dask-{label[:3]}"
                dask_wall, _ = ours(
                    class_dir, out, args.jobs, "--scheduler", cluster.address, env=cluster.env
                )
                print(
                    f"Dask, 2 local workers ({label}): {dask_wall:7.1f} s total, {dask_wall / notebooks:5.2f} "
                    f"s/notebook; local pool time / Dask time: {ours_wall / dask_wall:.2f}"
                )


if __name__ == "__main__":
    main()
