"""What every exercise of every chapter guarantees, stated once for all of them.

Parametrized over ``grader.exercises.registry()``: ids such as ``"03-lm-head/softmax"``, and
``"03-lm-head/softmax:no-keepdims"`` for one of its known mistakes. The reference passes the visible
check and gets full marks; every known mistake fails grading with its hint, and the visible check
names it too; answers hard-coded to the visible cases fail a hidden case, whatever the secret the
hidden cases are drawn from; the hidden inputs change with the secret and the visible ones do not;
a stub is "not written yet"; a concept check takes its answer only and explains a wrong one; float
cases come in float32 and float64. Grading here is ``helpers.graded``: the scorer's calls and
comparison, in this process. What is particular to one chapter stays in that chapter's test file.
"""

import copy
import importlib
import pickle
import re
from collections import Counter
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import SECRETS, answers, everything_lent, graded

from grader import compare, exercises, keys, kinds, references, variants
from grader.check import CheckFailed, NotWrittenYet, check, check_called, reader_check

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = exercises.registry()
FUNCTIONS = sorted(eid for eid, e in REGISTRY.items() if e.kind != "choice")
CHOICES = sorted(eid for eid, e in REGISTRY.items() if e.kind == "choice")
MISTAKES = {f"{eid}:{m.name}": (eid, m) for eid in FUNCTIONS for m in REGISTRY[eid].mistakes}


def float_dtypes(value) -> set[str]:
    """The dtypes of the float arrays in a case's inputs, inside dicts and lists too."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return set().union(*map(float_dtypes, value))
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return {str(value.dtype)}
    return set()


FLOAT_CASES = [
    eid for eid in FUNCTIONS if any(float_dtypes(c.inputs) for c in REGISTRY[eid].cases(SECRETS[0]))
]


@pytest.fixture(autouse=True)
def lib_is_lent():
    """The references and mistakes are built on lib; the lending watch is test_lending's."""
    with everything_lent():
        yield


def student_making(exercise_id: str, mistake):
    """A student who makes ``mistake`` where it applies and is right elsewhere (a mistake's ``wrong``
    returns None on inputs where it makes no difference, e.g. a batch-only bug on one sequence)."""
    reference = REGISTRY[exercise_id].reference

    def student(**inputs):
        out = mistake.wrong(**inputs)
        return reference(**inputs) if out is None else out

    return student


def names_the_mistake(message: str, exercise_id: str, mistake) -> bool:
    """The message gives the mistake's hint, or one of the exercise's error hints (the advice a
    mistake gets when it raises an error instead of returning a wrong value)."""
    return any(hint in message for hint in [mistake.hint, *REGISTRY[exercise_id].error_hints.values()])


@pytest.mark.parametrize("module", exercises.module_names())
def test_each_chapter_exercise_has_its_own_id(module):
    chapter = importlib.import_module(f"grader.exercises.{module}")
    assert chapter.ASSIGNMENT.startswith(module[2:] + "-")
    ids = [f"{chapter.ASSIGNMENT}/{e.name}" for e in chapter.EXERCISES]
    assert len(set(ids)) == len(ids), ids
    assert all(REGISTRY[i] is e for i, e in zip(ids, chapter.EXERCISES, strict=True))


# ---- the right answer --------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_reference_passes_the_check(exercise_id, capsys):
    check_called(exercise_id, REGISTRY[exercise_id].reference)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
@pytest.mark.parametrize("secret", SECRETS)
def test_reference_gets_full_marks(exercise_id, secret):
    verdict = graded(exercise_id, REGISTRY[exercise_id].reference, secret, runner=False)
    assert verdict.ok, verdict.reason


def nudged(array: np.ndarray, g, ulps: int = 4) -> np.ndarray:
    """``array`` with each entry moved by up to ``ulps`` units in its last place: what a dot
    product summed in another order computes exactly (another BLAS, the student's own loop)."""
    moved = array.astype(np.float64) * (1 + ulps * np.finfo(array.dtype).eps * g.uniform(-1, 1, array.shape))
    return moved.astype(array.dtype)


SCORED = ("q", "k", "q_new", "k_new", "cache_k")  # the inputs a score is made of, with or without a cache
SHARP_SCORES = sorted(eid for eid in FUNCTIONS if "sharp" in {case.name for case in REGISTRY[eid].cases()})


@pytest.mark.parametrize("exercise_id", SHARP_SCORES)
def test_a_right_answer_that_rounds_its_scores_another_way_keeps_full_marks_on_every_draw(exercise_id):
    """Scores in the thousands are each off by thousandths when their products are summed in
    another order than the reference's, which the scorer's sandbox may do for the solution itself
    (it did: 2 points lost on one draw in eight). The comparison allows for that much rounding
    of the largest entry (``Exercise.atol_on``) and the sharp cases keep the top two scores of a
    row far apart (``grader.exercises.ch02.sharp_qk``), so the softmax does not turn on it."""
    exercise, g = REGISTRY[exercise_id], np.random.default_rng(0)
    for secret in range(200):
        for case in exercise.cases(secret):
            if case.name.endswith("sharp") and (case.hidden or secret == 0):
                other_way = {
                    name: nudged(value, g) if name in SCORED else value for name, value in case.inputs.items()
                }
                expected = exercise.reference(**case.inputs)
                assert compare.close(exercise, exercise.reference(**other_way), expected), (secret, case.name)


# ---- wrong answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", sorted({eid for eid, _ in MISTAKES.values()}))
def test_each_mistake_is_one_knob_of_an_implementation_that_is_right_without_it(exercise_id):
    """Every known mistake comes from a table of knobs (``exercises.wrong``), and the implementation
    it turns, with no knob turned, gives the reference's answer on every case (visible and hidden,
    raising where the reference raises): a mistake's output differs from the right one by what its
    knobs name, not by how its implementation was written."""
    exercise = REGISTRY[exercise_id]
    assert all(m.right is not None for m in exercise.mistakes)
    rights = {id(m.right): m.right for m in exercise.mistakes}.values()
    for secret in SECRETS:
        for case in exercise.cases(secret):
            expected = references._output(exercise.reference, case.inputs)
            for right in rights:
                got = references._output(right, case.inputs)
                assert (got is None) == (expected is None), case.name
                if expected is not None:
                    assert got.shape == expected.shape, (case.name, got.shape, expected.shape)
                    assert np.allclose(
                        got, expected, rtol=exercise.rtol, atol=exercise.atol, equal_nan=True
                    ), case.name


@pytest.mark.parametrize("mistake_id", sorted(MISTAKES))
def test_grading_names_each_mistake(mistake_id):
    exercise_id, mistake = MISTAKES[mistake_id]
    for secret in SECRETS:
        verdict = graded(exercise_id, student_making(exercise_id, mistake), secret, runner=False)
        assert not verdict.ok
        assert names_the_mistake(verdict.reason, exercise_id, mistake), verdict.reason


@pytest.mark.parametrize("mistake_id", sorted(MISTAKES))
def test_the_check_names_each_mistake(mistake_id):
    """Every known mistake shows on a visible case: none is told ✔ and then loses points."""
    exercise_id, mistake = MISTAKES[mistake_id]
    with pytest.raises(CheckFailed) as failed:
        check_called(exercise_id, student_making(exercise_id, mistake))
    assert names_the_mistake(str(failed.value), exercise_id, mistake), str(failed.value)


# ---- a ✔ means full marks ------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_the_visible_cases_hold_every_kind_of_input_the_hidden_ones_use(exercise_id):
    """Leading batch axes, float32 and float64, each optional argument at a value of its own, the
    edge values (k=None, k >= V, p hit exactly, T = 0 ...), cases that must raise: whatever the
    secret, every kind a hidden case is (``grader.kinds``) is a kind some visible case is too, so
    only an answer hard-coded to the visible cases can pass the notebook's check and lose points."""
    exercise = REGISTRY[exercise_id]
    visible = set().union(*(exercise.kinds(c) for c in exercise.cases()))
    for secret in range(20):
        for case in exercise.cases(secret):
            if case.hidden:
                assert exercise.kinds(case) <= visible, (case.name, exercise.kinds(case) - visible)


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_each_argument_value_a_hidden_case_tries_is_visible_with_the_same_patterns(exercise_id):
    """A branch for one value of an argument (``temperature=0``, ``stop_token=0``, ``k=None``) is
    seen in a visible case on inputs laid out as the hidden case's are: rows of logits that peak in
    different columns, positions or targets that are not one run. Else a branch that takes the
    first row's column for every row, or rebuilds positions from the first, passes the notebook's
    check and loses the hidden case."""
    exercise = REGISTRY[exercise_id]
    visible = [exercise.kinds(c) for c in exercise.cases()]
    for secret in range(20):
        for case in exercise.cases(secret):
            if not case.hidden:
                continue
            found = exercise.kinds(case)
            patterns = {kind for kind in found if kind.endswith(kinds.PATTERNS)}
            for value in (kind for kind in found if "=" in kind and ".ndim=" not in kind):
                assert any(value in seen and patterns <= seen for seen in visible), (
                    case.name,
                    value,
                    patterns,
                )


def sizes(cases) -> dict[tuple[str, int], set[int]]:
    """The sizes of the last two axes of every array argument, by (argument, axis)."""
    found = {}
    for case in cases:
        for name, value in case.inputs.items():
            if isinstance(value, np.ndarray):
                for axis in range(-min(value.ndim, 2), 0):
                    found.setdefault((name, axis), set()).add(value.shape[axis])
    return found


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_the_visible_cases_vary_the_sizes_the_hidden_ones_vary(exercise_id):
    """A size the hidden cases change (a width d, a length T, a vocabulary V) takes two values in
    the visible cases, so a function that hard-codes it fails the check."""
    exercise = REGISTRY[exercise_id]
    visible = sizes(exercise.cases())
    for secret in SECRETS:
        for key, found in sizes([c for c in exercise.cases(secret) if c.hidden]).items():
            assert found <= visible.get(key, set()) or len(visible.get(key, set())) >= 2, (
                key,
                visible.get(key),
                found,
            )


def depends_on(exercise, case) -> set[str]:
    """The inputs (arguments, groups of weights) whose change changes the reference's output on
    ``case``: its ``changed`` variants (``grader.variants``) whose output differs."""
    expected = references._output(exercise.reference, case.inputs)
    found = set()
    for variant in variants.of(exercise, case):
        if variant.what == "changed":
            out = references._output(exercise.reference, variant.inputs)
            if out is not None and (
                out.shape != expected.shape or not np.allclose(out, expected, equal_nan=True)
            ):
                found.add(variant.unit)
    return found


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_every_input_a_hidden_case_depends_on_a_visible_case_depends_on_too(exercise_id):
    """An optional argument given in a hidden case changes some visible case's answer too (top_p
    given where top-k has already removed what it would: not enough), and so does every other
    input: a function that ignores one fails the notebook's check, not only the grade."""
    exercise = REGISTRY[exercise_id]
    visible = set().union(*(depends_on(exercise, c) for c in exercise.cases()))
    for secret in SECRETS:
        for case in exercise.cases(secret):
            if case.hidden:
                assert depends_on(exercise, case) <= visible, (
                    case.name,
                    depends_on(exercise, case) - visible,
                )


MUST_RAISE = sorted(eid for eid in FUNCTIONS if any(c.raises for c in REGISTRY[eid].cases(SECRETS[0])))


def test_some_exercises_have_cases_that_must_raise():
    assert "01-embeddings/encode" in MUST_RAISE


@pytest.mark.parametrize("exercise_id", MUST_RAISE)
def test_a_case_that_must_raise_takes_the_error_it_names_only(exercise_id, capsys):
    """Returning a value there, or raising another error, fails in the check and in grading; the
    reference's own error passes."""
    exercise = REGISTRY[exercise_id]

    def returns_instead(**inputs):
        try:
            return exercise.reference(**inputs)
        except Exception:
            return np.zeros(3, dtype=np.int64)

    def raises_another(**inputs):
        try:
            return exercise.reference(**inputs)
        except Exception:
            raise TypeError("something else") from None

    for wrong, expected in ((returns_instead, "must raise"), (raises_another, "TypeError")):
        with pytest.raises(CheckFailed, match=expected):
            check_called(exercise_id, wrong)
        for secret in SECRETS:
            verdict = graded(exercise_id, wrong, secret, runner=False)
            assert not verdict.ok and expected in verdict.reason, verdict.reason
    check_called(exercise_id, exercise.reference)
    assert "✔" in capsys.readouterr().out


PURE = sorted(eid for eid in FUNCTIONS if REGISTRY[eid].pure)


@pytest.mark.parametrize("exercise_id", PURE)
def test_a_function_that_must_leave_its_arguments_alone_does(exercise_id):
    """The filters' docstrings ask for a new array: changing the logits in place, or returning them
    (for k=None, p=None, T=1), fails the check and the grade, with what to do instead."""
    reference = REGISTRY[exercise_id].reference

    def scribbles(**inputs):
        out = reference(**inputs)
        inputs["logits"][..., 0] = 0.0
        return out

    def returns_its_input(**inputs):
        out = reference(**inputs)
        return (
            inputs["logits"]
            if out.shape == inputs["logits"].shape and np.array_equal(out, inputs["logits"])
            else out
        )

    wrong = [(scribbles, "in place")] + (
        [(returns_its_input, "itself")] if exercise_id != "04-sampling/filtered_probs" else []
    )
    for fn, said in wrong:
        with pytest.raises(CheckFailed, match=said):
            check_called(exercise_id, fn)
        verdict = graded(exercise_id, fn, runner=False)
        assert not verdict.ok and said in verdict.reason, verdict.reason


def _scribbled(inputs: dict) -> bool:
    """Change the last non-empty array among ``inputs`` (inside dicts too: a weight) in place."""
    arrays = [v for v in kinds.leaves(inputs, objects=False) if isinstance(v, np.ndarray) and v.size]
    if arrays:
        arrays[-1].flat[0] += 1
    return bool(arrays)


WITH_ARRAYS = [
    eid for eid in FUNCTIONS if any(_scribbled(copy.deepcopy(c.inputs)) for c in REGISTRY[eid].visible())
]


@pytest.mark.parametrize("exercise_id", WITH_ARRAYS)
def test_no_function_may_change_its_arguments_in_place(exercise_id):
    """Whatever its docstring says, a function that changes an argument (an array, or a weight in
    a dict of them) in place fails the check and the grade, though its values are right: its caller
    (a residual stream x + f(x)) would read the changed array."""
    reference = REGISTRY[exercise_id].reference

    def scribbles(**inputs):
        out = copy.deepcopy(reference(**inputs))
        _scribbled(inputs)
        return out

    with pytest.raises(CheckFailed, match="in place"):
        check_called(exercise_id, scribbles)
    verdict = graded(exercise_id, scribbles, runner=False)
    assert not verdict.ok and "in place" in verdict.reason, verdict.reason


def test_encode_ids_are_integers():
    """Float ids are not ids: the dtype of encode's answer is checked (its kind: any integer)."""
    exercise_id = "01-embeddings/encode"

    def float_ids(text, stoi):
        return np.array([stoi[ch] for ch in text], dtype=np.float64)

    with pytest.raises(CheckFailed, match="integers"):
        check(exercise_id, float_ids)
    assert not graded(exercise_id, float_ids).ok
    assert graded(exercise_id, lambda text, stoi: np.array([stoi[ch] for ch in text], dtype=np.int32)).ok


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
@pytest.mark.parametrize("secret", SECRETS)
def test_answers_hard_coded_to_the_visible_cases_fail_a_hidden_case(exercise_id, secret):
    """Right on every visible case, and the first visible case's answer on every hidden one."""
    cases = REGISTRY[exercise_id].cases(secret)
    visible = [c.name for c in cases if not c.hidden]
    hidden = [c for c in cases if c.hidden]
    assert visible and hidden and all(c.describe for c in hidden)
    given = answers(exercise_id, REGISTRY[exercise_id].reference, secret, runner=False)
    for case in hidden:
        given[case.name] = given[visible[0]]
    verdict = graded(exercise_id, None, secret, given)
    assert not verdict.ok
    assert verdict.reason.startswith("hidden case ("), verdict.reason


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_hidden_inputs_change_with_the_secret_and_visible_ones_do_not(exercise_id):
    """Nothing about a hidden case can be computed before grading draws it; the visible cases are
    the ones the notebook checks against, stored once."""
    exercise = REGISTRY[exercise_id]
    draws = [exercise.cases(secret) for secret in SECRETS]
    assert all([c.name for c in cases] == [c.name for c in draws[0]] for cases in draws)
    for position, case in enumerate(draws[0]):
        inputs = {pickle.dumps(cases[position].inputs) for cases in draws}
        assert len(inputs) > 1 if case.hidden else len(inputs) == 1, case.name
    assert [c.name for c in draws[0] if not c.hidden] == [c.name for c in exercise.cases()]
    stored = {key.partition("::")[0].partition("~")[0] for key in references.load(exercise_id)}
    assert stored == {c.name for c in exercise.cases()}


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_the_same_secret_draws_the_same_hidden_cases(exercise_id):
    """A regrade of the same files gives the same inputs, hence the same verdict."""
    first, again = REGISTRY[exercise_id].cases(SECRETS[0]), REGISTRY[exercise_id].cases(SECRETS[0])
    assert [pickle.dumps(c.inputs) for c in first] == [pickle.dumps(c.inputs) for c in again]


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_a_stub_is_not_written_yet(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(NotWrittenYet, match="not written yet"):
        check(exercise_id, stub)


@pytest.mark.parametrize("exercise_id", FLOAT_CASES)
def test_float_cases_come_in_float32_and_float64(exercise_id):
    """So an answer that works in one precision only fails; where grading compares dtypes, the
    expected outputs come in both precisions too, so an answer that upcasts fails."""
    exercise = REGISTRY[exercise_id]
    cases = exercise.cases(SECRETS[0])
    assert set().union(*(float_dtypes(c.inputs) for c in cases)) == {"float32", "float64"}
    if exercise.check_dtype in (True, "kind"):
        expected = references.for_grading(exercise_id, exercise, cases)
        assert {str(expected[f"{c.name}::expected"].dtype) for c in cases} == {"float32", "float64"}


# ---- concept checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", CHOICES)
def test_concept_check_takes_its_answer_only(exercise_id, capsys):
    """An unanswered question prints a note (a fresh notebook runs to the end) and scores 0."""
    answer = keys.concept(exercise_id).answer
    for unanswered in (..., None):
        check(exercise_id, unanswered)
        assert "not answered yet" in capsys.readouterr().out
        verdict = graded(exercise_id, unanswered)
        assert (verdict.ok, verdict.status) == (False, "not_attempted"), verdict
    with pytest.raises(CheckFailed, match="answer with one of"):
        check(exercise_id, "z")
    check(exercise_id, answer)
    assert "recorded" in capsys.readouterr().out
    verdict = graded(exercise_id, answer)
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("exercise_id", CHOICES)
def test_concept_check_explains_only_a_right_answer(exercise_id):
    """The explanation gives the answer away: a wrong answer is told so, without it."""
    exercise, key = REGISTRY[exercise_id], keys.concept(exercise_id)
    wrong = [c for c in exercise.choices if c != key.answer]
    assert wrong and key.explain
    for choice in wrong:
        verdict = graded(exercise_id, choice)
        assert not verdict.ok and key.explain not in verdict.reason, verdict.reason
    assert key.explain in graded(exercise_id, key.answer).reason


@pytest.mark.parametrize("exercise_id", CHOICES)
def test_a_readers_concept_check_says_at_once_whether_the_letter_is_right(exercise_id, capsys, monkeypatch):
    """A reader on their own submits nothing: the reader's notebooks (``reader/``) tell a wrong
    letter so, without the reason that gives the answer away, and a right one with its reason;
    installed without the keys, the check records the letter and points to the book's fold."""
    exercise, key = REGISTRY[exercise_id], keys.concept(exercise_id)
    for choice in (c for c in exercise.choices if c != key.answer):
        with pytest.raises(CheckFailed, match="is not the answer") as wrong:
            reader_check(exercise_id, choice)
        assert key.explain not in str(wrong.value)
    reader_check(exercise_id, key.answer)
    assert key.explain in capsys.readouterr().out
    reader_check(exercise_id, ...)
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="answer with one of"):
        reader_check(exercise_id, "z")
    monkeypatch.setattr(keys, "CONCEPTS", Path("/nonexistent/concepts.toml"))
    keys._all.cache_clear()
    try:
        reader_check(exercise_id, key.answer)
    finally:
        keys._all.cache_clear()
    said = capsys.readouterr().out
    assert "recorded" in said and "Show the answer" in said and key.explain not in said


def test_a_readers_notebook_checks_a_function_as_a_class_does():
    """``reader_check`` differs only on concept checks: a function is checked as ``check`` does."""
    exercise_id = "01-embeddings/encode"
    with pytest.raises(CheckFailed) as by_reader:
        reader_check(exercise_id, lambda text, stoi: np.array([stoi[ch] for ch in text]) + 1)
    with pytest.raises(CheckFailed) as in_class:
        check(exercise_id, lambda text, stoi: np.array([stoi[ch] for ch in text]) + 1)
    assert str(by_reader.value) == str(in_class.value)


def test_every_concept_check_has_a_key_among_its_choices():
    assert set(keys.all_concepts()) == set(CHOICES)
    for exercise_id in CHOICES:
        assert keys.concept(exercise_id).answer in REGISTRY[exercise_id].choices, exercise_id


def test_an_unanswered_question_runs_to_the_end_in_the_student_notebook(capsys):
    """A released concept stub only assigns ``...`` (nbgrader's ``raise NotImplementedError()`` is
    taken out of it), and its check prints a note: "Run All" on a fresh notebook meets no error."""
    stubs = {}
    for notebook in sorted((ROOT / "chapters").glob("*/*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and cell.source.startswith("answer_"):
                stubs[f"{notebook.parent.name}/{cell.source.split()[0][len('answer_') :]}"] = cell.source
    assert set(stubs) == set(CHOICES)
    for exercise_id, source in stubs.items():
        namespace = {}
        exec(source, namespace)
        check(exercise_id, namespace[f"answer_{exercise_id.partition('/')[2]}"])
        assert "not answered yet" in capsys.readouterr().out, exercise_id


def test_concept_check_answers_are_spread_evenly_over_the_choices():
    """Every question offers (a) to (d), and each letter answers as many questions as any other,
    give or take one: answering one letter everywhere earns about a quarter of the points."""
    assert {REGISTRY[eid].choices for eid in CHOICES} == {("a", "b", "c", "d")}
    counts = Counter(keys.concept(eid).answer for eid in CHOICES)
    spread = [counts[letter] for letter in "abcd"]
    assert max(spread) - min(spread) <= 1, dict(counts)


def test_each_chapter_asks_two_to_four_questions_of_its_own():
    """2 to 4 concept checks per graded chapter, and no question (by name) in two chapters."""
    per_chapter = Counter(eid.partition("/")[0] for eid in CHOICES)
    graded = {eid.partition("/")[0] for eid in REGISTRY}
    assert {chapter: per_chapter[chapter] for chapter in graded if not 2 <= per_chapter[chapter] <= 4} == {}
    names = Counter(eid.partition("/")[2] for eid in CHOICES)
    assert [name for name, n in names.items() if n > 1] == []


def test_nothing_public_knows_a_concept_key():
    """The answers live only in grader/private: no public exercise definition carries one."""
    for exercise_id in CHOICES:
        with pytest.raises(LookupError):
            REGISTRY[exercise_id].reference()


def test_the_solution_notebooks_answer_with_the_keys():
    """Each chapter's solution cell sets ``answer_<name>`` to the private key's answer."""
    found = {}
    for source in sorted((ROOT / "solutions").glob("*/*.py")):
        assignment = source.parent.name
        for name, answer in re.findall(r'^answer_(\w+) = "(\w)"$', source.read_text(), re.M):
            found[f"{assignment}/{name}"] = answer
    assert found == {exercise_id: keys.concept(exercise_id).answer for exercise_id in CHOICES}


def _count(value) -> int | None:
    """``value`` as an int if it is one whole number (a count or a size), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu"
    ):
        return int(value)
    return None


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_an_answer_that_is_a_count_goes_above_int32_in_a_visible_and_in_a_hidden_case(exercise_id):
    """Parameters, FLOPs, bytes: an answer that is one whole number is above 2**31 in some visible
    case and, whatever the secret, in some hidden one, so a count kept in np.int32 wraps round,
    fails the check and loses points (and ``diagnosis.numeric._wrapped`` names it)."""
    exercise = REGISTRY[exercise_id]
    if exercise.kind != "array":
        return
    visible = [_count(exercise.reference(**c.inputs)) for c in exercise.cases() if c.raises is None]
    if not visible or any(v is None for v in visible):
        return
    assert max(visible) > 2**31, visible
    for secret in range(10):
        drawn = [_count(exercise.reference(**c.inputs)) for c in exercise.cases(secret) if c.hidden]
        assert max(drawn) > 2**31, (secret, drawn)
