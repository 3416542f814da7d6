"""Chapter 6 (what a forward pass costs): the reference counts, and the checks of every exercise.

The lib-derived references agree with weights actually allocated by ``lib.init_params`` and with
``KVCache.nbytes()``; each exercise's reference passes its check; every known mistake is caught
with its own hint; an answer that is right on the visible configs only fails the hidden ones; the
concept checks grade right and wrong answers.
"""

import copy

import numpy as np
import pytest

import lib
from grader import exercises
from grader.check import CheckFailed, check
from grader.compare import encode, grade_answers
from grader.exercises import ch06
from lib.model import _leaves

ASSIGNMENT = ch06.ASSIGNMENT
CODE = [e for e in ch06.EXERCISES if e.kind != "choice"]
CHOICES = [e for e in ch06.EXERCISES if e.kind == "choice"]

SMALL_CONFIGS = [
    ch06.TOY,
    ch06.SMALL_LLAMA,
    ch06.GPT2_UNTIED,
    lib.Config.gpt2(vocab_size=100, n_ctx=32, d_model=24, n_layer=2, n_head=3, d_ff=40),
    lib.Config.llama(
        vocab_size=50, n_ctx=16, d_model=16, n_layer=2, n_head=4, n_kv_head=1, d_ff=40, tie_embeddings=True
    ),
    lib.Config.llama(vocab_size=50, n_ctx=16, d_model=16, n_layer=1, n_head=4, n_kv_head=4, d_ff=24),
]


def exercise_id(exercise):
    return f"{ASSIGNMENT}/{exercise.name}"


# ---- the references against lib ----------------------------------------------------------------


@pytest.mark.parametrize(
    "config", SMALL_CONFIGS, ids=lambda c: f"{c.mlp}-{c.n_layer}-{c.n_kv_head}-{c.tie_embeddings}"
)
def test_counts_match_allocated_weights(config):
    allocated = sum(a.size for a in _leaves(lib.init_params(config)))
    assert ch06.lib_param_count(config) == allocated == ch06.count_variant(config)


def test_counts_of_shipped_models():
    toy = lib.load_pretrained("toy")
    assert ch06.lib_param_count(toy.config) == toy.num_params() == 280
    shakespeare = lib.load_pretrained("shakespeare")
    assert shakespeare.config == ch06.SHAKESPEARE
    assert ch06.lib_param_count(ch06.SHAKESPEARE) == shakespeare.num_params()


def test_published_counts():
    assert ch06.lib_param_count(ch06.GPT2_SMALL) == 124_439_808
    assert ch06.lib_param_count(ch06.LLAMA_7B) == 6_738_415_616
    for config in (ch06.GPT2_SMALL, ch06.GPT2_MEDIUM, ch06.LLAMA_7B, ch06.LLAMA_GQA_TIED, ch06.LLAMA_70B):
        assert ch06.lib_param_count(config) == ch06.count_variant(config)


def test_flops_of_the_toy():
    # N = 280 - 12 (wte) - 16 (wpe) = 252; 2N + 2 * L * T * d with L = 1, T = 4, d = 4
    assert ch06.lib_flops_per_token(ch06.TOY, 4) == 2 * 252 + 32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kv_bytes_match_the_cache(dtype):
    config = lib.Config.llama(vocab_size=50, n_ctx=16, d_model=16, n_layer=2, n_head=4, n_kv_head=2, d_ff=40)
    model = lib.Model(config, lib.init_params(config, dtype=dtype))
    cache = model.new_cache()
    model.forward(np.arange(7) % 50, cache=cache)
    assert cache.nbytes() == ch06.lib_kv_cache_bytes(config, 7, dtype)


# ---- the exercises -----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise", CODE, ids=lambda e: e.name)
def test_reference_passes(exercise, capsys):
    check(exercise_id(exercise), exercise.reference)
    assert "✔" in capsys.readouterr().out


MISTAKES = [(e, m) for e in CODE for m in e.mistakes]


@pytest.mark.parametrize("exercise,mistake", MISTAKES, ids=lambda x: getattr(x, "name", None))
def test_mistake_is_recognised(exercise, mistake):
    with pytest.raises(CheckFailed) as caught:
        check(exercise_id(exercise), mistake.wrong)
    assert mistake.hint in str(caught.value)


@pytest.mark.parametrize("exercise", CODE, ids=lambda e: e.name)
def test_hard_coded_answer_fails_hidden(exercise):
    """Right on the visible configs, the first visible answer everywhere else."""
    cases = exercise.cases()
    first = next(c for c in cases if not c.hidden)
    fixed = exercise.reference(**copy.deepcopy(first.inputs))
    answers = {c.name: encode(fixed if c.hidden else exercise.reference(**c.inputs)) for c in cases}
    verdict = grade_answers(exercise_id(exercise), {"exercise": exercise_id(exercise), "answers": answers})
    assert not verdict.ok and "hidden case" in verdict.reason


@pytest.mark.parametrize("exercise", CODE, ids=lambda e: e.name)
def test_reference_grades_full_marks(exercise):
    answers = {c.name: encode(exercise.reference(**c.inputs)) for c in exercise.cases()}
    assert grade_answers(exercise_id(exercise), {"exercise": exercise_id(exercise), "answers": answers}).ok


def test_float_answers_are_accepted():
    """An exact count returned as a float (e.g. after a division) is still right."""
    check(exercise_id(ch06.COUNT_PARAMS), lambda config: float(ch06.lib_param_count(config)))


def test_not_written_yet():
    def stub(config):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        check(exercise_id(ch06.COUNT_PARAMS), stub)


# ---- concept checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise", CHOICES, ids=lambda e: e.name)
def test_concept_checks(exercise):
    right = exercise.reference()
    wrong = next(c for c in exercise.choices if c != right)
    eid = exercise_id(exercise)
    assert grade_answers(eid, {"exercise": eid, "answers": {"answer": {"value": right}}}).ok
    assert not grade_answers(eid, {"exercise": eid, "answers": {"answer": {"value": wrong}}}).ok


def test_every_exercise_is_registered():
    assert set(exercises.assignment_exercises(ASSIGNMENT)) == {exercise_id(e) for e in ch06.EXERCISES}
