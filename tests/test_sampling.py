"""Chapter 4 (sampling and generation): the solutions pass, every known mistake is recognised with
its hint, answers hard-coded to the visible cases fail on the hidden ones, and the runners that
the check wraps around `sample_next` and `attend_with_cache` behave."""

from pathlib import Path

import jupytext
import numpy as np
import pytest

import lib
from grader import exercises, references
from grader.check import CheckFailed, check
from grader.compare import close, encode, grade_answers
from grader.exercises.ch04 import ToyLM, packed, sampler

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "04-sampling"
SOURCE = ROOT / "solutions" / ASSIGNMENT / "sampling.py"
FUNCTIONS = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "filtered_probs",
    "sample_next",
    "generate",
    "attend_with_cache",
]
CHOICES = ["q_top_p", "q_cache", "q_memory"]


def solution_functions(path: Path, namespace: dict) -> dict:
    """The functions defined in the chapter's solution cells, exactly as the notebook has them."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            if cell.source.lstrip().startswith("def "):
                exec(cell.source, namespace)
    return namespace


SOLUTION = solution_functions(
    SOURCE,
    {
        "np": np,
        "softmax": lib.softmax,
        "causal_mask": lib.causal_mask,
        "scaled_dot_product_attention": lib.scaled_dot_product_attention,
    },
)
# What the notebook's test cells pass to `check` and `record`.
AS_CHECKED = {
    **{name: SOLUTION[name] for name in FUNCTIONS},
    "sample_next": sampler(SOLUTION["sample_next"]),
    "attend_with_cache": packed(SOLUTION["attend_with_cache"]),
}


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


def failure(name, fn):
    with pytest.raises(CheckFailed) as failed:
        check(exercise_id(name), fn)
    return str(failed.value)


def test_every_exercise_is_in_the_notebook():
    registered = {e.name for e in exercises.chapter(ASSIGNMENT).EXERCISES}
    assert registered == set(FUNCTIONS) | set(CHOICES)
    assert set(FUNCTIONS) <= set(SOLUTION)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_solution_passes(name, capsys):
    check(exercise_id(name), AS_CHECKED[name])
    assert "✔" in capsys.readouterr().out
    verdict = grade_answers(exercise_id(name), payload(name, AS_CHECKED[name]))
    assert verdict.ok, verdict.reason


MISTAKES = [(e.name, m) for e in exercises.chapter(ASSIGNMENT).EXERCISES for m in e.mistakes]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m.name}" for n, m in MISTAKES])
def test_mistake_is_recognised(name, mistake):
    """The autograder names the mistake; so does the visible check when a visible case shows it."""
    exercise = exercises.get(exercise_id(name))
    verdict = grade_answers(exercise_id(name), payload(name, mistake.wrong))
    assert not verdict.ok
    assert mistake.hint in verdict.reason, verdict.reason
    stored = references.load(exercise_id(name), hidden=False)
    shown = [
        c.name
        for c in exercise.cases()
        if not c.hidden
        and f"{c.name}::mistake::{mistake.name}" in stored
        and not close(exercise, stored[f"{c.name}::mistake::{mistake.name}"], stored[f"{c.name}::expected"])
    ]
    if shown:  # a visible case tells this mistake apart: the student's own check names it
        assert mistake.hint in failure(name, mistake.wrong)


# ---- sample_next, written the ways students write it --------------------------------------------


def make_sample_next(kind):
    """A student's sample_next: right (`choice`) or with one known flaw."""

    def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
        greedy = temperature == 0 or top_k == 1
        if kind == "unseeded":
            rng = np.random.default_rng()
        if greedy and kind != "greedy-draws":
            return int(np.argmax(logits))
        if kind == "drops-boundary":
            z = lib.top_k_filter(lib.apply_temperature(logits, temperature), top_k)
            if top_p is not None:
                order = np.argsort(-z, kind="stable")
                p = lib.softmax(z)[order]
                z[order[np.cumsum(p) >= top_p]] = -np.inf
            probs = lib.softmax(z)
        elif kind == "no-temperature":
            probs = lib.filtered_probs(logits, 1.0, top_k, top_p)
        elif kind == "no-renormalise":
            kept = np.isfinite(lib.top_p_filter(lib.top_k_filter(logits / temperature, top_k), top_p))
            probs = np.where(kept, lib.softmax(logits / temperature), 0)
        else:
            probs = lib.filtered_probs(logits, temperature, top_k, top_p)
        probs = probs.astype(np.float64)
        if kind == "global-random":
            return int(np.searchsorted(np.cumsum(probs), np.random.random(), side="right"))
        if kind == "multinomial":
            return int(np.argmax(rng.multinomial(1, probs / probs.sum())))
        token = int(rng.choice(len(probs), p=probs if kind == "no-renormalise" else probs / probs.sum()))
        return int(np.argmax(logits)) if greedy else token

    return sample_next


def test_rng_choice_is_accepted(capsys):
    check(exercise_id("sample_next"), sampler(make_sample_next("choice")))
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["unseeded", "global-random"])
def test_unseeded_draws_are_caught(kind):
    message = failure("sample_next", sampler(make_sample_next(kind)))
    assert exercises.get(exercise_id("sample_next")).error_hints["same seed"] in message


def test_unnormalised_probabilities_are_caught():
    message = failure("sample_next", sampler(make_sample_next("no-renormalise")))
    assert exercises.get(exercise_id("sample_next")).error_hints["do not sum to 1"] in message


@pytest.mark.parametrize(
    "kind, mistake",
    [
        ("multinomial", "multinomial"),
        ("greedy-draws", "greedy-draws"),
        ("drops-boundary", "drops-boundary"),
        ("no-temperature", "no-temperature"),
    ],
)
def test_student_sampler_mistakes(kind, mistake):
    hint = next(m.hint for m in exercises.get(exercise_id("sample_next")).mistakes if m.name == mistake)
    assert hint in failure("sample_next", sampler(make_sample_next(kind)))


def test_lib_draws_are_reproduced_exactly():
    logits = np.random.default_rng(0).normal(size=12).astype(np.float32)
    settings = [{"temperature": 0.9, "top_p": 0.8}]
    ours = sampler(SOLUTION["sample_next"])(logits, 3, 50, "draws", settings)
    gen = np.random.default_rng(3)
    theirs = [int(lib.sample_next(logits, gen, temperature=0.9, top_p=0.8)) for _ in range(50)]
    assert ours.tolist() == theirs


# ---- generate and attend_with_cache ------------------------------------------------------------


def test_toy_model_needs_the_whole_sequence():
    toy = ToyLM(0, 5)
    assert toy([1, 2]).shape == (5,)
    assert not np.allclose(toy([1, 2]), toy([2]))


def test_cache_not_appended_is_caught():
    def not_appended(q_new, k_new, v_new, cache_k, cache_v):
        k = np.concatenate([cache_k, k_new], axis=-2)
        v = np.concatenate([cache_v, v_new], axis=-2)
        T = q_new.shape[-2]
        out = lib.scaled_dot_product_attention(q_new, k, v, mask=lib.causal_mask(T, k.shape[-2]))
        return out, cache_k, cache_v

    message = failure("attend_with_cache", packed(not_appended))
    assert "not appended" in message
    assert exercises.get(exercise_id("attend_with_cache")).error_hints["not appended"] in message


def test_cache_concatenated_on_the_wrong_axis_is_caught():
    def wrong_axis(q_new, k_new, v_new, cache_k, cache_v):
        k = np.concatenate([cache_k, k_new], axis=0)
        v = np.concatenate([cache_v, v_new], axis=0)
        return q_new, k, v

    hint = exercises.get(exercise_id("attend_with_cache")).error_hints["concatenation axis"]
    assert hint in failure("attend_with_cache", packed(wrong_axis))


def test_cached_attention_matches_full_recomputation():
    g = np.random.default_rng(1)
    q, k, v = (g.normal(size=(2, 9, 4)) for _ in range(3))
    full = lib.scaled_dot_product_attention(q, k, v, mask=lib.causal_mask(9))
    out, k_all, v_all = SOLUTION["attend_with_cache"](q[:, 6:], k[:, 6:], v[:, 6:], k[:, :6], v[:, :6])
    np.testing.assert_allclose(out, full[:, 6:], atol=1e-12)
    np.testing.assert_array_equal(k_all, k)


# ---- every exercise ----------------------------------------------------------------------------


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
