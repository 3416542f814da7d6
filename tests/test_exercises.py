"""What every exercise of every chapter guarantees, stated once for all of them.

Parametrized over ``grader.exercises.registry()``: ids such as ``"03-lm-head/softmax"``, and
``"03-lm-head/softmax:no-keepdims"`` for one of its known mistakes. The reference passes the visible
check and gets full marks; every known mistake fails grading with its hint, and the visible check
names it too; answers hard-coded to the visible cases fail a hidden case; a stub is "not written
yet"; a concept check takes its answer only and explains a wrong one; float cases come in float32
and float64. What is particular to one chapter stays in that chapter's test file.
"""

import importlib
import json
import re
from collections import Counter
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import as_checked

from grader import exercises, keys, references
from grader.check import CheckFailed, NotWrittenYet, answers, check
from grader.compare import grade_answers

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = exercises.registry()
FUNCTIONS = sorted(eid for eid, e in REGISTRY.items() if e.kind != "choice")
CHOICES = sorted(eid for eid, e in REGISTRY.items() if e.kind == "choice")
MISTAKES = {f"{eid}:{m.name}": (eid, m) for eid in FUNCTIONS for m in REGISTRY[eid].mistakes}

# Mistakes that no visible case tells apart from the answer: the student's check passes, and only
# the hidden cases catch them.
UNSEEN_BY_THE_CHECK = {"04-sampling/top_p_filter:ties-higher-id"}


def float_dtypes(value) -> set[str]:
    """The dtypes of the float arrays in a case's inputs, inside dicts and lists too."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return set().union(*map(float_dtypes, value))
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return {str(value.dtype)}
    return set()


FLOAT_CASES = [eid for eid in FUNCTIONS if any(float_dtypes(c.inputs) for c in REGISTRY[eid].cases())]


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
    check(exercise_id, REGISTRY[exercise_id].reference)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_reference_gets_full_marks(exercise_id):
    recorded = json.loads(json.dumps(answers(exercise_id, REGISTRY[exercise_id].reference)))
    verdict = grade_answers(exercise_id, recorded)
    assert verdict.ok, verdict.reason


# ---- wrong answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("mistake_id", sorted(MISTAKES))
def test_grading_names_each_mistake(mistake_id):
    exercise_id, mistake = MISTAKES[mistake_id]
    verdict = grade_answers(exercise_id, answers(exercise_id, student_making(exercise_id, mistake)))
    assert not verdict.ok
    assert names_the_mistake(verdict.reason, exercise_id, mistake), verdict.reason


@pytest.mark.parametrize("mistake_id", sorted(set(MISTAKES) - UNSEEN_BY_THE_CHECK))
def test_the_check_names_each_mistake(mistake_id):
    exercise_id, mistake = MISTAKES[mistake_id]
    with pytest.raises(CheckFailed) as failed:
        check(exercise_id, student_making(exercise_id, mistake))
    assert names_the_mistake(str(failed.value), exercise_id, mistake), str(failed.value)


@pytest.mark.parametrize("mistake_id", sorted(UNSEEN_BY_THE_CHECK))
def test_mistakes_unseen_by_the_check_pass_it(mistake_id, capsys):
    """Keeps UNSEEN_BY_THE_CHECK true: a mistake that a visible case starts to show leaves it."""
    exercise_id, mistake = MISTAKES[mistake_id]
    check(exercise_id, student_making(exercise_id, mistake))
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_answers_hard_coded_to_the_visible_cases_fail_a_hidden_case(exercise_id):
    """Right on every visible case, and the first visible case's answer on every hidden one."""
    cases = REGISTRY[exercise_id].cases()
    visible = [c.name for c in cases if not c.hidden]
    hidden = [c for c in cases if c.hidden]
    assert visible and hidden and all(c.describe for c in hidden)
    recorded = answers(exercise_id, REGISTRY[exercise_id].reference)
    for case in hidden:
        recorded["answers"][case.name] = recorded["answers"][visible[0]]
    verdict = grade_answers(exercise_id, recorded)
    assert not verdict.ok
    assert verdict.reason.startswith("hidden case ("), verdict.reason


@pytest.mark.parametrize("exercise_id", FUNCTIONS)
def test_a_stub_is_not_written_yet(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(NotWrittenYet, match="not written yet"):
        check(exercise_id, as_checked(exercise_id, stub))


@pytest.mark.parametrize("exercise_id", FLOAT_CASES)
def test_float_cases_come_in_float32_and_float64(exercise_id):
    """So an answer that works in one precision only fails; where grading compares dtypes, the
    expected outputs come in both precisions too, so an answer that upcasts fails."""
    exercise = REGISTRY[exercise_id]
    cases = exercise.cases()
    assert set().union(*(float_dtypes(c.inputs) for c in cases)) == {"float32", "float64"}
    if exercise.check_dtype:
        stored = {**references.load(exercise_id, hidden=False), **references.load(exercise_id, hidden=True)}
        assert {str(stored[f"{c.name}::expected"].dtype) for c in cases} == {"float32", "float64"}


# ---- concept checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", CHOICES)
def test_concept_check_takes_its_answer_only(exercise_id, capsys):
    """An unanswered question prints a note (a fresh notebook runs to the end) and scores 0."""
    answer = keys.concept(exercise_id).answer
    for unanswered in (..., None):
        check(exercise_id, unanswered)
        assert "not answered yet" in capsys.readouterr().out
        assert not grade_answers(exercise_id, answers(exercise_id, unanswered)).ok
    with pytest.raises(CheckFailed, match="answer with one of"):
        check(exercise_id, "z")
    check(exercise_id, answer)
    assert "recorded" in capsys.readouterr().out
    verdict = grade_answers(exercise_id, answers(exercise_id, answer))
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("exercise_id", CHOICES)
def test_concept_check_explains_a_wrong_answer(exercise_id):
    exercise, key = REGISTRY[exercise_id], keys.concept(exercise_id)
    wrong = [c for c in exercise.choices if c != key.answer]
    assert wrong and key.explain
    for choice in wrong:
        verdict = grade_answers(exercise_id, answers(exercise_id, choice))
        assert not verdict.ok
        assert key.explain in verdict.reason, verdict.reason


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
                stubs[f"{notebook.parent.name}/{cell.source.split()[0][len('answer_'):]}"] = cell.source
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
