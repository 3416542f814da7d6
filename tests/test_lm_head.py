"""Chapter 3 (the LM head), what is particular to it: the notebook's own solution functions pass the
check and get full marks, and the softmax and the head get the hints their typical errors need.

What every exercise guarantees (the reference passes, each known mistake is named, hard-coded
answers fail the hidden cases, stubs, float32 and float64 cases, concept checks) is in
test_exercises.py.
"""

from pathlib import Path

import numpy as np
import pytest
from helpers import graded, solution_functions

import lib
from grader import exercises
from grader.check import CheckFailed, check

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03-lm-head"
SOURCE = ROOT / "solutions" / ASSIGNMENT / "lm_head.py"
FUNCTIONS = ["lm_head", "softmax", "log_softmax", "cross_entropy", "perplexity"]
CHOICES = ["q_next_row", "q_final_norm", "q_uniform"]
SOLUTION = solution_functions(SOURCE, {"np": np, "layer_norm": lib.layer_norm})


def exercise_id(name):
    return f"{ASSIGNMENT}/{name}"


def test_every_exercise_is_in_the_notebook():
    registered = {e.name for e in exercises.chapter(ASSIGNMENT).EXERCISES}
    assert registered == set(FUNCTIONS) | set(CHOICES)
    assert set(FUNCTIONS) <= set(SOLUTION)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_solution_passes(name, capsys):
    check(exercise_id(name), SOLUTION[name])
    assert "✔" in capsys.readouterr().out
    verdict = graded(exercise_id(name), SOLUTION[name])
    assert verdict.ok, verdict.reason


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
    assert "wte.T" in str(failed.value)


def test_an_untied_head_transposed_is_told_to_use_it_as_it_is():
    def transposed(x, ln_f, wte, w_unembed=None):
        return lib.layer_norm(x, ln_f["g"], ln_f["b"]) @ (wte.T if w_unembed is None else w_unembed.T)

    with pytest.raises(CheckFailed) as failed:
        check(exercise_id("lm_head"), transposed)
    assert "w_unembed is (d, V) already" in str(failed.value), failed.value


def test_missing_keepdims_gets_a_broadcast_hint():
    def no_keepdims(x):
        e = np.exp(x - x.max(axis=-1))
        return e / e.sum(axis=-1)

    with pytest.raises(CheckFailed) as failed:
        check(exercise_id("softmax"), no_keepdims)
    assert "keepdims=True" in str(failed.value)
