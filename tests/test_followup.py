"""The grader's diagnosis pass through the real scorer: a student's notebook run in the sandboxed
harness, twice for the exercises that came back wrong (``grader.followup``).

A chapter's solution notebook with some answers replaced by a student's wrong ones is scored by
``scoring.Scorer`` (bubblewrap, the harness, the lent ``lib``): a verdict names what the second
pass found (an ignored argument, a helper fed the wrong stream), an argument changed in place is
caught by the harness (in any exercise; returning an argument, where the docstring asks for a new
array), and a message that quotes a line quotes the student's, never one of the
grader's own files, in grading as in the notebook's check.
"""

import linecache
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import everything_lent, solution_functions

import lib
from grader import scoring
from grader.check import CheckFailed, check

ROOT = Path(__file__).resolve().parents[1]


def cell(source: str, namespace: dict, name: str) -> None:
    """Run ``source`` as a notebook cell does: compiled under a name of its own, with its lines
    where tracebacks find them (IPython keeps a cell's source in ``linecache``)."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), namespace)


def notebooks(assignment: str, name: str, answers: dict[str, str]):
    """The solution notebook with the student's ``answers`` (by exercise name), and the release."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{name}.ipynb", as_version=4)
    released = nbformat.read(ROOT / "chapters" / assignment / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("-answer") and grade_id.removesuffix("-answer") in answers:
            cell.source = answers[grade_id.removesuffix("-answer")]
    return nb, released


def scored(tmp_path, assignment, name, answers):
    nb, released = notebooks(assignment, name, answers)
    scorer = scoring.Scorer(tmp_path, b"f" * 32, scoring.Limits(2**32, 20.0, 1))
    return scorer.score(nb, released, assignment, "student")


TOP_K_IN_PLACE = """def top_k_filter(logits, k):
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    drop = np.argsort(-logits, axis=-1, kind="stable")[..., k:]
    np.put_along_axis(logits, drop, -np.inf, axis=-1)
    return logits"""
TOP_P_RETURNS_ITS_INPUT = """def top_p_filter(logits, p):
    if p is None or p >= 1:
        return logits
    order = np.argsort(-logits, axis=-1, kind="stable")
    probs = np.take_along_axis(softmax(logits, axis=-1), order, axis=-1)
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, np.cumsum(probs, axis=-1) - probs < p, axis=-1)
    return np.where(keep, logits, -np.inf)"""
GENERATE_WITHOUT_TOP_P = """def generate(next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None):
    sequence = [int(i) for i in ids]
    for _ in range(max_new_tokens):
        token = sample_next(next_logits(np.array(sequence)), rng, temperature, top_k)
        sequence.append(int(token))
        if token == stop_token:
            break
    return np.array(sequence, dtype=np.int64)"""
ATTEND_LAST_TOKEN = """def attend_with_cache(q_new, k_new, v_new, cache_k, cache_v):
    k = np.concatenate([cache_k, k_new], axis=-2)
    v = np.concatenate([cache_v, v_new], axis=-2)
    mask = causal_mask(q_new.shape[-2], q_new.shape[-2])
    return scaled_dot_product_attention(q_new, k, v, mask=mask), k, v"""


@pytest.fixture(scope="module")
def sampling(tmp_path_factory):
    answers = {
        "top_k_filter": TOP_K_IN_PLACE,
        "top_p_filter": TOP_P_RETURNS_ITS_INPUT,
        "generate": GENERATE_WITHOUT_TOP_P,
        "attend_with_cache": ATTEND_LAST_TOKEN,
    }
    return scored(tmp_path_factory.mktemp("scorer"), "04-sampling", "sampling", answers)


def test_the_second_pass_names_an_ignored_argument(sampling):
    verdict = sampling["generate"]
    assert not verdict.ok and verdict.status == "wrong"
    assert "ignores `top_p`" in verdict.reason, verdict.reason


def test_the_harness_catches_an_argument_changed_in_place_or_returned(sampling):
    assert "changed its argument `logits` in place" in sampling["top_k_filter"].reason
    assert "returned its argument `logits` itself" in sampling["top_p_filter"].reason


def test_right_answers_keep_full_marks(sampling):
    for name in ("apply_temperature", "filtered_probs", "sample_next"):
        assert sampling[name].ok, sampling[name].reason


def test_a_quoted_line_is_the_students(sampling):
    """The error comes from lib's attention (a mask of the wrong shape); the line quoted is the
    student's call, in their cell, not lib's nor the grader's."""
    reason = sampling["attend_with_cache"].reason
    assert "(line " in reason and "scaled_dot_product_attention(q_new, k, v, mask=mask)" in reason, reason
    assert not re.search(r"grader/|lib/|\.py", reason), reason


def test_the_check_quotes_the_students_line_too():
    namespace = solution_functions(
        ROOT / "solutions" / "04-sampling" / "sampling.py",
        {
            "np": np,
            "softmax": lib.softmax,
            "causal_mask": lib.causal_mask,
            "scaled_dot_product_attention": lib.scaled_dot_product_attention,
        },
    )
    cell(ATTEND_LAST_TOKEN, namespace, "<ipython-input-7>")
    with everything_lent(), pytest.raises(CheckFailed) as failed:
        check("04-sampling/attend_with_cache", namespace["attend_with_cache"])
    assert "scaled_dot_product_attention(q_new, k, v, mask=mask)" in str(failed.value)
    assert not re.search(r"grader/|lib/", str(failed.value)), str(failed.value)


def test_a_reproducibility_failure_quotes_no_grader_line(tmp_path):
    """The runner raises when a sampled step draws nothing from the rng it is given (a generator of
    its own: two runs of the same seed would differ too): the message names the problem and quotes
    no line of the grader (``grader/runners.py`` in the check, ``runners.py`` in the scorer)."""
    unseeded = """def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    probs = filtered_probs(logits, temperature, top_k, top_p).astype(np.float64)
    return int(np.random.default_rng().choice(len(probs), p=probs / probs.sum()))"""
    verdict = scored(tmp_path, "04-sampling", "sampling", {"sample_next": unseeded})["sample_next"]
    said = "without taking a number from the rng it was given"
    assert said in verdict.reason and "(line" not in verdict.reason, verdict.reason
    namespace = {"np": np, "filtered_probs": lib.filtered_probs}
    cell(unseeded, namespace, "<ipython-input-3>")
    with everything_lent(), pytest.raises(CheckFailed) as failed:
        check("04-sampling/sample_next", namespace["sample_next"])
    assert said in str(failed.value)
    assert "grader" not in str(failed.value) and "(line" not in str(failed.value), str(failed.value)


BLOCK_MLP_ON_THE_STREAM = """def block(x, params, n_head):
    x = x + multi_head_attention(layer_norm(x, **params["ln_1"]), params["attn"], n_head)
    return x + mlp(x, params["mlp"])"""


def test_the_second_pass_names_the_helper_fed_the_wrong_stream(tmp_path):
    verdict = scored(
        tmp_path, "02-transformer-block", "transformer_block", {"block": BLOCK_MLP_ON_THE_STREAM}
    )["block"]
    assert not verdict.ok
    assert "Your `mlp` is right, but `block` feeds it resid_mid where it needs ln_2" in verdict.reason, (
        verdict.reason
    )


MHA_WITHOUT_THE_PROJECTIONS_BIAS = """def multi_head_attention(x, params, n_head):
    q, k, v = np.split(x @ params["c_attn"]["w"], 3, axis=-1)
    heads = attention(split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head))
    return merge_heads(heads) @ params["c_proj"]["w"] + params["c_proj"]["b"]"""


def test_a_helper_fed_what_no_station_is_is_told_so_plainly(tmp_path):
    """The wrong input equals no station (a projection without its bias): the verdict says which
    argument of which helper differs, without naming a station it cannot name."""
    verdict = scored(
        tmp_path,
        "02-transformer-block",
        "transformer_block",
        {"multi_head_attention": MHA_WITHOUT_THE_PROJECTIONS_BIAS},
    )["multi_head_attention"]
    assert "Your `split_heads` is right, but `multi_head_attention` feeds it another `x`" in verdict.reason, (
        verdict.reason
    )
    assert "reference gives it where it needs" not in verdict.reason


LAYER_NORM_IN_PLACE = """def layer_norm(x, g, b, eps=1e-5):
    x -= x.mean(axis=-1, keepdims=True)
    x /= np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps)
    return x * g + b"""


def test_a_helper_that_overwrites_its_argument_is_named(tmp_path):
    """A layer_norm that normalises its argument in place returns the right values, but the harness
    sees its argument change (its verdict says so), and the block built on it adds to the overwritten
    stream: the verdict on the block names the helper and the argument."""
    verdicts = scored(
        tmp_path, "02-transformer-block", "transformer_block", {"layer_norm": LAYER_NORM_IN_PLACE}
    )
    assert not verdicts["layer_norm"].ok and not verdicts["block"].ok
    assert "changed its argument `x` in place" in verdicts["layer_norm"].reason, verdicts["layer_norm"]
    assert "Your `layer_norm` changes its argument `x` in place" in verdicts["block"].reason, verdicts[
        "block"
    ]


def test_a_case_not_written_yet_gets_no_second_run():
    """A function that still raises ``NotImplementedError`` (on some inputs) has nothing to explain:
    no follow-up calls, so no second scorer run; another error gets them."""
    from grader import compare, exercises, followup, references

    exercise_id = "04-sampling/top_k_filter"
    cases = exercises.get(exercise_id).cases(1)
    table = references.for_grading(exercise_id, exercises.get(exercise_id), cases)
    asked = {}
    for error in ("NotImplementedError: ", "ValueError: shapes do not match"):
        answers = {case.name: {"error": error if i == 0 else "TypeError: x"} for i, case in enumerate(cases)}
        verdict = compare.grade(exercise_id, cases, answers, table)
        asked[error.partition(":")[0]] = followup.questions(exercise_id, cases, answers, table, verdict)
    assert asked["NotImplementedError"] == [] and asked["ValueError"], asked
