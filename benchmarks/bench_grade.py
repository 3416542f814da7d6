"""Grading throughput: ``python -m grader autograde`` against plain sequential ``nbgrader autograde``.

Builds a synthetic class (copies of every chapter's solution notebook; every student adds a cell of
their own and every third one leaves an exercise unwritten), grades it with both, and prints
seconds per notebook and per student, the speed-up, and our per-notebook overhead beyond what a
notebook costs anyway (starting its kernel and running it, measured by executing each solution
notebook directly with nbclient). Then it grades the same class twice on a Dask cluster of two
workers on this machine (``--scheduler``): with new workers (each prepares the run: the release,
the kernelspec) and again with the same workers, and prints each time against the local pool's.

    make bench-grade                                   # 30 students, every chapter
    python benchmarks/bench_grade.py --students 6 --assignments 01-embeddings
"""

import argparse
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

from grader import course, release
from grader.distributed import local_cluster

BIN = str(Path(sys.executable).parent)


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


def measured(command: list[str], **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and everything it started)."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def ours(submissions: Path, out: Path, jobs: int, *more: str) -> tuple[float, float]:
    command = [sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out)]
    return measured([*command, "--jobs", str(jobs), *more])


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
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--assignments", nargs="*", default=course.assignments())
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
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
        }
        for name, (seconds, cpu) in timings.items():
            print(
                f"{name:17s} {seconds:7.1f} s total, {seconds / notebooks:5.2f} s/notebook, "
                f"{seconds / args.students:5.2f} s/student; CPU {cpu / notebooks:5.2f} s/notebook"
            )
        (ours_wall, ours_cpu), (plain_wall, plain_cpu) = timings.values()
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
        with local_cluster(workers=2) as scheduler:  # a new cluster prepares its run once, then keeps it
            for label in ("new workers", "warm workers"):
                dask_wall, _ = ours(class_dir, work / f"out-dask-{label[:3]}", args.jobs, "--scheduler", scheduler)
                print(
                    f"Dask, 2 local workers ({label}): {dask_wall:7.1f} s total, {dask_wall / notebooks:5.2f} "
                    f"s/notebook; local pool time / Dask time: {ours_wall / dask_wall:.2f}"
                )


if __name__ == "__main__":
    main()
