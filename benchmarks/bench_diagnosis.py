"""What the diagnosis pass costs: the scorer's time on a notebook with and without it.

The scorer runs a student's notebook in a sandboxed process and calls their functions on every case
(``grader.scoring``); for the exercises that came back wrong, ``grader.followup`` runs it a second
time with the calls that explain the first wrong case. This prints, for every chapter, the
scorer's wall-clock time on the solution notebook (no second pass: nothing is wrong), on the same
notebook with two exercises broken, once without the second pass and once with it, and the
ratio, all measured in the same run (the best of ``--repeats``).

    python benchmarks/bench_diagnosis.py
    python benchmarks/bench_diagnosis.py --repeats 5 --assignments 02-transformer-block
"""

import argparse
import functools
import tempfile
import timeit
from pathlib import Path

import nbformat

from grader import exercises, followup, scoring

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = {
    "01-embeddings": "embeddings",
    "02-transformer-block": "transformer_block",
    "03-lm-head": "lm_head",
    "04-sampling": "sampling",
    "05-worked-toy": "worked_toy",
    "06-cost": "cost",
}


def broken(nb, assignment: str, n: int = 2):
    """The notebook with the first ``n`` functions of the chapter returning half their answer."""
    nb = nbformat.from_dict(nb)
    names = [e.name for e in exercises.chapter(assignment).EXERCISES if e.kind != "choice"][:n]
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.removesuffix("-answer") in names and grade_id.endswith("-answer"):
            name = grade_id.removesuffix("-answer")
            cell.source += f"\n\n_{name} = {name}\n\ndef {name}(*args, **kwargs):\n    return _{name}(*args, **kwargs) * 2\n"
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--assignments", nargs="*", default=list(CHAPTERS))
    args = parser.parse_args()
    explain = followup.explain
    print(f"{'assignment':24} {'right':>8} {'wrong, 1 pass':>14} {'wrong, 2 passes':>16} {'ratio':>6}")
    for assignment in args.assignments:
        name = CHAPTERS[assignment]
        solution = nbformat.read(ROOT / "solutions" / assignment / f"{name}.ipynb", as_version=4)
        released = nbformat.read(ROOT / "chapters" / assignment / f"{name}.ipynb", as_version=4)
        wrong = broken(solution, assignment)
        with tempfile.TemporaryDirectory() as tmp:
            scorer = scoring.Scorer(Path(tmp), b"b" * 32, scoring.Limits(2**32, 20.0, 1))
            scorer.lend(assignment)
            score = functools.partial(scorer.score, released=released, assignment=assignment, student="bench")
            right = min(timeit.repeat(functools.partial(score, solution), number=1, repeat=args.repeats))
            twice = min(timeit.repeat(functools.partial(score, wrong), number=1, repeat=args.repeats))
            followup.explain = lambda scorer, items, cases, first, verdicts, assignment: verdicts
            try:
                once = min(timeit.repeat(functools.partial(score, wrong), number=1, repeat=args.repeats))
            finally:
                followup.explain = explain
        print(f"{assignment:24} {right:7.2f}s {once:13.2f}s {twice:15.2f}s {twice / once:5.2f}x")


if __name__ == "__main__":
    main()
