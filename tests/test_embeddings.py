"""Chapter 1 (tokens and embeddings): the checks accept the reference and name each known mistake.

These are the chapter's wrong-implementation tests: for every exercise of
``grader/exercises/ch01.py`` the reference passes ``check``; every ``Mistake`` is caught with its own
hint; an answer hard-coded to the visible case fails the hidden cases in ``grade_answers``; the
error hints fire for the errors they describe; and the concept checks accept their answer only.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import lib
from grader import exercises, references
from grader.check import CheckFailed, NotWrittenYet, check
from grader.compare import diagnose, encode, grade_answers

ASSIGNMENT = "01-embeddings"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / ASSIGNMENT / "embeddings.py"
MODULE = exercises.chapter(ASSIGNMENT)
ALL = exercises.assignment_exercises(ASSIGNMENT)
GRADED = {eid: e for eid, e in ALL.items() if e.kind != "choice"}
CHOICES = {eid: e for eid, e in ALL.items() if e.kind == "choice"}
HELPERS = {
    "embed": {
        "token_embedding": lambda ids, wte: lib.token_embedding(ids, wte),
        "position_embedding": lambda n_tokens, wpe: lib.position_embedding(n_tokens, wpe),
    }
}


def payload(exercise_id, fn):
    """What ``record`` would emit for ``fn``, built without IPython."""
    exercise = ALL[exercise_id]
    answers = {}
    for case in exercise.cases():
        try:
            answers[case.name] = encode(fn(**references._copy(case.inputs)))
        except Exception as err:
            answers[case.name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"exercise": exercise_id, "answers": answers}


def where_defined(mistake, exercise):
    """``mistake.wrong`` where it applies, the reference elsewhere (a student who is wrong only
    on some shapes)."""

    def student(**inputs):
        out = mistake.wrong(**inputs)
        return exercise.reference(**inputs) if out is None else out

    return student


def test_reference_files_are_current_and_small():
    assert references.differences(ASSIGNMENT) == []
    for file in (references.ROOT).glob(f"*/{ASSIGNMENT}/*.safetensors"):
        assert file.stat().st_size < 200_000, file


@pytest.mark.parametrize("exercise_id", sorted(GRADED))
def test_reference_passes(exercise_id, capsys):
    exercise = ALL[exercise_id]
    check(exercise_id, exercise.reference, **HELPERS.get(exercise.name, {}))
    assert "✔" in capsys.readouterr().out
    assert grade_answers(exercise_id, payload(exercise_id, exercise.reference)).ok


@pytest.mark.parametrize("exercise_id", sorted(GRADED))
def test_stub_is_not_written_yet(exercise_id):
    def stub(**inputs):
        raise NotImplementedError()

    with pytest.raises(NotWrittenYet, match="not written yet"):
        check(exercise_id, stub)


MISTAKES = [(eid, m) for eid, e in sorted(GRADED.items()) for m in e.mistakes]


@pytest.mark.parametrize("exercise_id, mistake", MISTAKES, ids=[f"{e}:{m.name}" for e, m in MISTAKES])
def test_mistake_is_named(exercise_id, mistake):
    """Each mistake leaves a signature on some case, is diagnosed there with its own hint, and fails
    grading; if it shows on a visible case, the student's check names it too."""
    exercise = ALL[exercise_id]
    stored = {**references.load(exercise_id, hidden=False), **references.load(exercise_id, hidden=True)}
    student = where_defined(mistake, exercise)
    named = []
    for case in exercise.cases():
        if f"{case.name}::mistake::{mistake.name}" not in stored:
            continue
        message = diagnose(exercise, case.name, student(**references._copy(case.inputs)), stored)
        if message is not None:  # the mistake may coincide with the answer on some inputs
            assert message == mistake.hint, (case.name, message)
            named.append(case)
    assert named, f"{mistake.name} is never recognised on any case"
    verdict = grade_answers(exercise_id, payload(exercise_id, student))
    assert not verdict.ok
    if any(not case.hidden for case in named):
        with pytest.raises(CheckFailed) as failure:
            check(exercise_id, student)
        assert mistake.hint in str(failure.value)


@pytest.mark.parametrize("exercise_id", sorted(GRADED))
def test_hard_coded_answer_fails_hidden_cases(exercise_id):
    exercise = ALL[exercise_id]
    visible = [c for c in exercise.cases() if not c.hidden]
    assert any(c.hidden for c in exercise.cases()), "no hidden cases"
    answer = exercise.reference(**references._copy(visible[0].inputs))

    def hard_coded(**inputs):
        return answer

    hard = payload(exercise_id, hard_coded)
    for case in visible:  # pretend it also passes every visible case
        hard["answers"][case.name] = encode(exercise.reference(**references._copy(case.inputs)))
    verdict = grade_answers(exercise_id, hard)
    assert not verdict.ok
    assert "hidden case" in verdict.reason


def test_hidden_cases_vary_dtype():
    for exercise_id in ["token_embedding", "position_embedding", "embed"]:
        dtypes = {
            str(v.dtype)
            for c in ALL[f"{ASSIGNMENT}/{exercise_id}"].cases()
            for v in c.inputs.values()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        }
        assert dtypes == {"float32", "float64"}, (exercise_id, dtypes)


# ---- errors a common mistake raises ------------------------------------------------------------


def loop_lookup(ids, wte):
    return np.stack([wte[int(i)] for i in ids])


def columns_embed(ids, wte, wpe):
    return wte[:, ids].T + wpe[: ids.shape[-1]]


def batch_length_embed(ids, wte, wpe):
    return wte[ids] + wpe[: len(ids)]


def join_ids(ids, itos):
    return "".join(ids)


def whole_text_key(text, stoi):
    return np.array(stoi[text])


ERRORS = [
    ("token_embedding", loop_lookup, "(B, T) batch"),
    ("embed", columns_embed, "indexing columns"),
    ("embed", batch_length_embed, "ids.shape[-1] rows"),
    ("decode", join_ids, "join needs strings"),
]


@pytest.mark.parametrize("name, wrong, fragment", ERRORS, ids=[f"{n}:{w.__name__}" for n, w, _ in ERRORS])
def test_error_hint_in_check(name, wrong, fragment):
    exercise_id = f"{ASSIGNMENT}/{name}"
    check_failed = None
    try:
        check(exercise_id, wrong)
    except CheckFailed as err:
        check_failed = str(err)
    verdict = grade_answers(exercise_id, payload(exercise_id, wrong))
    assert not verdict.ok
    assert fragment in verdict.reason, verdict.reason
    assert check_failed is not None and fragment in check_failed, check_failed


def test_error_hint_in_grading_for_key_error():
    exercise_id = f"{ASSIGNMENT}/encode"
    verdict = grade_answers(exercise_id, payload(exercise_id, whole_text_key))
    assert not verdict.ok and "look up each character" in verdict.reason


# ---- stations ----------------------------------------------------------------------------------


def test_embed_names_the_first_wrong_station():
    def bad_token_embedding(ids, wte):
        return 2 * wte[ids]

    def student_embed(ids, wte, wpe):
        return bad_token_embedding(ids, wte) + wpe[: ids.shape[-1]]

    with pytest.raises(CheckFailed, match="embed.tok"):
        check(
            f"{ASSIGNMENT}/embed",
            student_embed,
            token_embedding=bad_token_embedding,
            position_embedding=HELPERS["embed"]["position_embedding"],
        )


def test_embed_stations_fine_points_at_the_sum():
    def student_embed(ids, wte, wpe):
        return wte[ids] - wpe[: ids.shape[-1]]

    with pytest.raises(CheckFailed, match="how they are combined"):
        check(f"{ASSIGNMENT}/embed", student_embed, **HELPERS["embed"])


# ---- concept checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", sorted(CHOICES))
def test_concept_check(exercise_id, capsys):
    exercise = ALL[exercise_id]
    answer = exercise.reference()
    with pytest.raises(NotWrittenYet):
        check(exercise_id, ...)
    with pytest.raises(CheckFailed, match="answer with one of"):
        check(exercise_id, "z")
    check(exercise_id, answer)
    assert "recorded" in capsys.readouterr().out
    ok = grade_answers(exercise_id, {"exercise": exercise_id, "answers": {"answer": encode(answer)}})
    assert ok.ok, ok.reason
    for wrong in set(exercise.choices) - {answer}:
        verdict = grade_answers(exercise_id, {"exercise": exercise_id, "answers": {"answer": encode(wrong)}})
        assert not verdict.ok


# ---- the notebook follows the module -----------------------------------------------------------


def graded_cells():
    """(grade_id, points) of the graded cells and the grade_ids of the answer cells, in order."""
    headers = [
        json.loads(m) for m in re.findall(r"^# %% nbgrader=(\{.*?\})(?: tags=.*)?$", SOURCE.read_text(), re.M)
    ]
    graded = [(h["grade_id"], h["points"]) for h in headers if h["grade"]]
    answers = [h["grade_id"] for h in headers if h["solution"]]
    return graded, answers


def test_notebook_has_every_exercise_in_order():
    graded, answers = graded_cells()
    names = [e.name for e in MODULE.EXERCISES]
    assert [g for g, _ in graded] == names
    assert answers == [f"{n}-answer" for n in names]
    for name, points in graded:
        assert 1 <= points <= (1 if ALL[f"{ASSIGNMENT}/{name}"].kind == "choice" else 3), (name, points)


def test_stub_docstrings_follow_the_order():
    text = SOURCE.read_text()
    for exercise in MODULE.EXERCISES:
        if exercise.kind == "choice":
            continue
        match = re.search(rf'def {exercise.name}\(.*?"""(.*?)"""', text, re.S)
        assert match, exercise.name
        doc = match.group(1)
        places = [doc.find(f"{part}:") for part in ("Task", "Shapes", "Example", "Hints")]
        assert -1 not in places and places == sorted(places), (exercise.name, places)
