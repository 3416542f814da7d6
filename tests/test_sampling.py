"""Chapter 4 (sampling and generation), what is particular to it: the notebook's own solution
functions pass the check and get full marks; `sample_next` written the ways students write it is
accepted or told what is wrong; the runners that the check wraps around `sample_next` and
`attend_with_cache` behave; the hidden frequency cases are fair to a sampler that draws as
documented; and the cached attention equals the full recomputation.

What every exercise guarantees (the reference passes, each known mistake is named, hard-coded
answers fail the hidden cases, stubs, float32 and float64 cases, concept checks) is in
test_exercises.py.
"""

from pathlib import Path

import numpy as np
import pytest
from helpers import SECRETS, graded, solution_functions

import lib
from grader import exercises
from grader.check import CheckFailed, check
from grader.runners import ToyLM, sampler

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
CHOICES = ["q_top_p", "q_order", "q_cache"]
SOLUTION = solution_functions(
    SOURCE,
    {
        "np": np,
        "softmax": lib.softmax,
        "causal_mask": lib.causal_mask,
        "scaled_dot_product_attention": lib.scaled_dot_product_attention,
    },
)


def exercise_id(name):
    return f"{ASSIGNMENT}/{name}"


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
    """As the notebook's test cells call them (the check and the grader apply the runners)."""
    check(exercise_id(name), SOLUTION[name])
    assert "✔" in capsys.readouterr().out
    for secret in SECRETS:
        verdict = graded(exercise_id(name), SOLUTION[name], secret)
        assert verdict.ok, verdict.reason


# ---- sample_next, written the ways students write it --------------------------------------------


def make_sample_next(kind):
    """A student's sample_next: right (`choice`) or with one known flaw."""

    def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
        greedy = temperature == 0 or top_k == 1
        if kind == "unseeded":
            rng = np.random.default_rng()
        if greedy and kind != "greedy-draws":
            return int(np.argmax(logits))
        filtered_probs = SOLUTION["filtered_probs"]
        if kind == "drops-boundary":
            z = lib.top_k_filter(lib.apply_temperature(logits, temperature), top_k)
            if top_p is not None:
                order = np.argsort(-z, kind="stable")
                p = lib.softmax(z)[order]
                z[order[np.cumsum(p) >= top_p]] = -np.inf
            probs = lib.softmax(z)
        elif kind == "no-temperature":
            probs = filtered_probs(logits, 1.0, top_k, top_p)
        elif kind == "no-renormalise":
            kept = np.isfinite(lib.top_p_filter(lib.top_k_filter(logits / temperature, top_k), top_p))
            probs = np.where(kept, lib.softmax(logits / temperature), 0)
        else:
            probs = filtered_probs(logits, temperature, top_k, top_p)
        probs = probs.astype(np.float64)
        if kind == "global-random":
            return int(np.searchsorted(np.cumsum(probs), np.random.random(), side="right"))
        if kind == "multinomial":
            return int(np.argmax(rng.multinomial(1, probs / probs.sum())))
        token = int(rng.choice(len(probs), p=probs if kind == "no-renormalise" else probs / probs.sum()))
        return int(np.argmax(logits)) if greedy else token

    return sample_next


def test_rng_choice_is_accepted(capsys):
    check(exercise_id("sample_next"), make_sample_next("choice"))
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["unseeded", "global-random"])
def test_unseeded_draws_are_caught(kind):
    message = failure("sample_next", make_sample_next(kind))
    assert exercises.get(exercise_id("sample_next")).error_hints["same seed"] in message


def test_unnormalised_probabilities_are_caught():
    message = failure("sample_next", make_sample_next("no-renormalise"))
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
    assert hint in failure("sample_next", make_sample_next(kind))


def test_lib_draws_are_reproduced_exactly():
    logits = np.random.default_rng(0).normal(size=12).astype(np.float32)
    settings = [{"temperature": 0.9, "top_p": 0.8}]
    ours = sampler(SOLUTION["sample_next"])(logits, 3, 50, "draws", settings)
    gen = np.random.default_rng(3)
    theirs = [int(lib.sample_next(logits, gen, temperature=0.9, top_p=0.8)) for _ in range(50)]
    assert ours.tolist() == theirs


# ---- generate and attend_with_cache ------------------------------------------------------------


def test_toy_model_needs_the_whole_sequence():
    toy = ToyLM(np.random.default_rng(0), 5)
    assert toy([1, 2]).shape == (5,)
    assert not np.allclose(toy([1, 2]), toy([2]))


def test_cache_not_appended_is_caught():
    def not_appended(q_new, k_new, v_new, cache_k, cache_v):
        k = np.concatenate([cache_k, k_new], axis=-2)
        v = np.concatenate([cache_v, v_new], axis=-2)
        T = q_new.shape[-2]
        out = lib.scaled_dot_product_attention(q_new, k, v, mask=lib.causal_mask(T, k.shape[-2]))
        return out, cache_k, cache_v

    message = failure("attend_with_cache", not_appended)
    assert "not appended" in message
    assert exercises.get(exercise_id("attend_with_cache")).error_hints["not appended"] in message


def test_cache_concatenated_on_the_wrong_axis_is_caught():
    def wrong_axis(q_new, k_new, v_new, cache_k, cache_v):
        k = np.concatenate([cache_k, k_new], axis=0)
        v = np.concatenate([cache_v, v_new], axis=0)
        return q_new, k, v

    hint = exercises.get(exercise_id("attend_with_cache")).error_hints["concatenation axis"]
    assert hint in failure("attend_with_cache", wrong_axis)


def test_hidden_frequency_cases_are_fair():
    """A sampler that draws as the docstring says (lib's way, or rng.choice) passes the hidden
    frequency case whatever the secret: its seed is chosen so that those draws come within half
    the tolerance of the exact distribution."""
    exercise = exercises.get(exercise_id("sample_next"))
    for secret in range(20):
        case = next(c for c in exercise.cases(secret) if c.name == "hidden-frequencies")
        expected = exercise.reference(**case.inputs)
        for sample_next in (SOLUTION["sample_next"], make_sample_next("choice")):
            drawn = sampler(sample_next)(**case.inputs)
            assert np.abs(drawn - expected).max() <= exercise.atol / 2


def test_cached_attention_matches_full_recomputation():
    g = np.random.default_rng(1)
    q, k, v = (g.normal(size=(2, 9, 4)) for _ in range(3))
    full = lib.scaled_dot_product_attention(q, k, v, mask=lib.causal_mask(9))
    out, k_all, v_all = SOLUTION["attend_with_cache"](q[:, 6:], k[:, 6:], v[:, 6:], k[:, :6], v[:, :6])
    np.testing.assert_allclose(out, full[:, 6:], atol=1e-12)
    np.testing.assert_array_equal(k_all, k)
