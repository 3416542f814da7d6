"""Helpers shared by the chapter tests: a chapter's notebook functions, and grading one function
in this process the way the scorer grades it.

``graded`` makes the calls the scorer's harness makes (every case, visible and hidden ones drawn
from ``secret``, through the exercise's runner), turns each output into the JSON record the
harness streams back, and compares outside as the grader does; ``explained`` adds the grader's
diagnosis pass (``grader.followup``), its calls made here too. What they leave out is the sandbox
and the program around the function: ``tests/test_scoring.py`` runs the real harness.
"""

import copy
import functools
import json
from contextlib import contextmanager
from pathlib import Path

import jupytext

from grader import compare, exercises, followup, lending, references, watch, wire

SECRETS = (1, 2**64 + 7, 31337)  # hidden cases are checked for several draws


def solution_functions(path: Path, namespace: dict) -> dict:
    """The functions defined in the chapter's solution cells, exactly as the notebook has them."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            if cell.source.lstrip().startswith("def "):
                exec(cell.source, namespace)
    return namespace


def answers(exercise_id: str, fn, secret: int, runner: bool = True) -> dict[str, dict]:
    """What the harness would send back for ``fn`` on every case, by case name; ``runner=False``
    for a function of the cases' inputs already (a reference or a known mistake)."""
    exercise = exercises.get(exercise_id)
    called = exercise.called(fn) if runner else fn
    if exercise.kind == "choice":
        given = (
            {"output": {"value": fn}}
            if isinstance(fn, str)
            else {"error": f"no answer given (the answer is {fn!r})"}
        )
        return {"answer": given}
    found = {}
    for case in exercise.cases(secret):
        given, impure = copy.deepcopy(case.inputs), None
        try:
            output = called(**given)
            record = wire.encode(output)
            impure = watch.interfered(given, case.inputs, output, exercise.pure)
        except Exception as err:
            record = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        answer = {"output": record} if "error" not in record else record
        found[case.name] = json.loads(json.dumps({**answer, **({"impure": impure} if impure else {})}))
    return found


@functools.cache
def graded_against(exercise_id: str, secret: int) -> tuple:
    """An exercise's cases for ``secret`` and what the grader compares with, made once per test
    process: ``references.Live`` computes each reference, known mistake's output and variant the
    first time it is asked for and keeps it, and none of them depends on whose answer is graded.
    (A catalogue of 14 wrong samplers computed the same 3,000-draw mistakes 14 times.)"""
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(secret)
    return cases, references.for_grading(exercise_id, exercise, cases)


def graded(
    exercise_id: str, fn, secret: int = SECRETS[0], given: dict | None = None, runner: bool = True
) -> compare.Verdict:
    """The grader's verdict on ``fn`` (or on the ``given`` answers instead)."""
    cases, table = graded_against(exercise_id, secret)
    given = answers(exercise_id, fn, secret, runner) if given is None else given
    return compare.grade(exercise_id, cases, given, table)


def explained(
    exercise_id: str, fn, secret: int = SECRETS[0], helpers: dict | None = None, runner: bool = True
) -> compare.Verdict:
    """The grader's verdict on ``fn`` with its diagnosis pass: the calls of the scorer's second run
    made here, on ``fn`` and the student's ``helpers`` (found by ``fn`` in its module's globals,
    as a notebook's functions find each other)."""
    exercise = exercises.get(exercise_id)
    cases, table = graded_against(exercise_id, secret)
    first = answers(exercise_id, fn, secret, runner)
    verdict = compare.grade(exercise_id, cases, first, table)
    more = {}
    for call in followup.questions(exercise_id, cases, first, table, verdict):
        target = (
            (helpers or {}).get(call["function"])
            if "function" in call
            else (exercise.called(fn) if runner else fn)
        )
        if target is None:
            continue
        seen = []
        try:
            with watch.watching(getattr(fn, "__globals__", {}), call.get("watch", ()), seen):
                record = wire.encode(target(**copy.deepcopy(call["inputs"])))
        except Exception as err:
            record = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        answer = {"output": record} if "error" not in record else record
        if seen:
            answer["seen"] = watch.encoded(seen, wire.encode)
        more[call["case"]] = json.loads(json.dumps(answer))
    return followup.refine(exercise_id, cases, first, more, table, verdict)


@contextmanager
def everything_lent():
    """``check`` without its lending watch, for functions built on ``lib`` itself (the exercises'
    references and mistakes): the watch is about a student's code and is tested on its own."""
    saved = lending.lent_definitions
    lending.lent_definitions = lambda assignment: _Everything()
    try:
        yield
    finally:
        lending.lent_definitions = saved


class _Everything:
    def __contains__(self, item):
        return True


def class_folder(folder: Path, notebooks: dict, name: str = "embeddings.ipynb") -> Path:
    """A class folder as an LMS export lays it out: ``folder/<student>/<name>`` for each student's
    notebook; returns ``folder``."""
    import nbformat

    for student, nb in notebooks.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / name)
    return folder


def autograde_command(classroom: Path, out: Path, *options: str) -> list[str]:
    """``python -m grader autograde CLASSROOM --out OUT [options]``, as an instructor types it."""
    import sys

    return [sys.executable, "-m", "grader", "autograde", str(classroom), "--out", str(out), *options]
