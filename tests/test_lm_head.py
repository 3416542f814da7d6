"""Chapter 3 (the LM head): the solutions pass, every known mistake is recognised with its hint,
and answers hard-coded to the visible cases fail on the hidden ones."""

from pathlib import Path

import jupytext
import numpy as np
import pytest

import lib
from grader import exercises, references
from grader.check import CheckFailed, check
from grader.compare import close, encode, grade_answers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03-lm-head"
SOURCE = ROOT / "solutions" / ASSIGNMENT / "lm_head.py"
FUNCTIONS = ["lm_head", "softmax", "log_softmax", "cross_entropy", "perplexity"]
CHOICES = ["q_tied", "q_positions", "q_uniform"]


def solution_functions(path: Path, namespace: dict) -> dict:
    """The functions defined in the chapter's solution cells, exactly as the notebook has them."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            if cell.source.lstrip().startswith("def "):
                exec(cell.source, namespace)
    return namespace


SOLUTION = solution_functions(SOURCE, {"np": np, "layer_norm": lib.layer_norm})


def exercise_id(name):
    return f"{ASSIGNMENT}/{name}"


def run_case(fn, case):
    return fn(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.inputs.items()})


def payload(name, fn):
    """What ``record`` would emit for ``fn``: every case's output, or its error."""
    answers = {}
    for case in exercises.get(exercise_id(name)).cases():
        try:
            answers[case.name] = encode(run_case(fn, case))
        except Exception as err:
            answers[case.name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"exercise": exercise_id(name), "answers": answers}


def test_every_exercise_is_in_the_notebook():
    registered = {e.name for e in exercises.chapter(ASSIGNMENT).EXERCISES}
    assert registered == set(FUNCTIONS) | set(CHOICES)
    assert set(FUNCTIONS) <= set(SOLUTION)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_solution_passes(name, capsys):
    check(exercise_id(name), SOLUTION[name])
    assert "✔" in capsys.readouterr().out
    verdict = grade_answers(exercise_id(name), payload(name, SOLUTION[name]))
    assert verdict.ok, verdict.reason


MISTAKES = [(e.name, m) for e in exercises.chapter(ASSIGNMENT).EXERCISES for m in e.mistakes]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m.name}" for n, m in MISTAKES])
def test_mistake_is_recognised(name, mistake):
    """The autograder names the mistake; so does the visible check when a visible case shows it."""
    exercise = exercises.get(exercise_id(name))
    verdict = grade_answers(exercise_id(name), payload(name, mistake.wrong))
    assert not verdict.ok
    hints = [mistake.hint, *exercise.error_hints.values()]
    assert any(h in verdict.reason for h in hints), verdict.reason
    stored = references.load(exercise_id(name), hidden=False)
    shown = [
        c.name
        for c in exercise.cases()
        if not c.hidden
        and f"{c.name}::mistake::{mistake.name}" in stored
        and not close(exercise, stored[f"{c.name}::mistake::{mistake.name}"], stored[f"{c.name}::expected"])
    ]
    if shown:  # a visible case tells this mistake apart: the student's own check names it
        with pytest.raises(CheckFailed) as failed:
            check(exercise_id(name), mistake.wrong)
        assert any(h in str(failed.value) for h in hints), str(failed.value)


def test_naive_softmax_is_told_about_overflow():
    def naive(x):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)

    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(CheckFailed) as failed:
        check(exercise_id("softmax"), naive)
    assert "Subtract each row's maximum" in str(failed.value)


def test_wte_not_transposed_gets_a_shape_hint():
    def untransposed(x, ln_f, wte, w_unembed=None):
        return lib.layer_norm(x, ln_f["g"], ln_f["b"]) @ (wte if w_unembed is None else w_unembed)

    with pytest.raises(CheckFailed) as failed:
        check(exercise_id("lm_head"), untransposed)
    assert "x @ wte.T" in str(failed.value)


def test_missing_keepdims_gets_a_broadcast_hint():
    def no_keepdims(x):
        e = np.exp(x - x.max(axis=-1))
        return e / e.sum(axis=-1)

    with pytest.raises(CheckFailed) as failed:
        check(exercise_id("softmax"), no_keepdims)
    assert "keepdims=True" in str(failed.value)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_hard_coded_visible_answers_fail_hidden_cases(name):
    """Answers copied from the visible references (and reused for every hidden case) fail."""
    exercise = exercises.get(exercise_id(name))
    stored = references.load(exercise_id(name), hidden=False)
    cases = exercise.cases()
    visible = [c.name for c in cases if not c.hidden]
    assert any(c.hidden for c in cases)
    answers = {c.name: encode(stored[f"{c.name if not c.hidden else visible[0]}::expected"]) for c in cases}
    verdict = grade_answers(exercise_id(name), {"exercise": exercise_id(name), "answers": answers})
    assert not verdict.ok
    assert "hidden case" in verdict.reason


def test_hidden_cases_vary_dtype():
    for name in ["lm_head", "softmax", "log_softmax", "cross_entropy"]:
        dtypes = {
            v.dtype
            for c in exercises.get(exercise_id(name)).cases()
            for v in c.inputs.values()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        }
        assert {np.dtype(np.float32), np.dtype(np.float64)} <= dtypes, name


@pytest.mark.parametrize("name", CHOICES)
def test_concept_checks(name):
    exercise = exercises.get(exercise_id(name))
    right = exercise.reference()
    ok = grade_answers(
        exercise_id(name), {"exercise": exercise_id(name), "answers": {"answer": {"value": right}}}
    )
    assert ok.ok, ok.reason
    wrong = next(c for c in exercise.choices if c != right)
    bad = grade_answers(
        exercise_id(name), {"exercise": exercise_id(name), "answers": {"answer": {"value": wrong}}}
    )
    assert not bad.ok
