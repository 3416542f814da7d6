"""Chapter 1 (tokens and embeddings), what is particular to it: each known mistake is named on every
case where it shows (chapter 1's mistakes never coincide with one another); the error hints fire for
the errors they describe; `embed` names the first wrong station; and the notebook has every
exercise, in order, with stubs documented alike.

What every exercise guarantees (the reference passes, each known mistake is named, hard-coded
answers fail the hidden cases, stubs, float32 and float64 cases, concept checks) is in
test_exercises.py; that its references are current and small, in test_references.py.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import SECRETS, graded

import lib
from grader import exercises, references
from grader.check import CheckFailed, check
from grader.compare import diagnose

ASSIGNMENT = "01-embeddings"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / ASSIGNMENT / "embeddings.py"
MODULE = exercises.chapter(ASSIGNMENT)
ALL = exercises.assignment_exercises(ASSIGNMENT)
HELPERS = {
    "embed": {
        "token_embedding": lambda ids, wte: lib.token_embedding(ids, wte),
        "position_embedding": lambda n_tokens, wpe: lib.position_embedding(n_tokens, wpe),
    }
}


MISTAKES = [(eid, m) for eid, e in sorted(ALL.items()) for m in e.mistakes]


@pytest.mark.parametrize("exercise_id, mistake", MISTAKES, ids=[f"{e}:{m.name}" for e, m in MISTAKES])
def test_mistake_is_named_on_every_case_it_shows(exercise_id, mistake):
    """Wherever a mistake leaves a signature, its output gets its own hint (or none, where the
    mistake coincides with the answer), never another mistake's."""
    exercise = ALL[exercise_id]
    cases = exercise.cases(SECRETS[0])
    stored = references.for_grading(exercise_id, exercise, cases)
    messages = {
        case.name: diagnose(exercise, case, mistake.wrong(**references._copy(case.inputs)), stored)
        for case in cases
        if f"{case.name}::mistake::{mistake.name}" in stored
    }
    assert mistake.hint in messages.values(), f"{mistake.name} is never recognised on any case"
    assert set(messages.values()) <= {None, mistake.hint}, messages


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
    verdict = graded(exercise_id, wrong)
    assert not verdict.ok
    assert fragment in verdict.reason, verdict.reason
    assert check_failed is not None and fragment in check_failed, check_failed


def test_error_hint_in_grading_for_key_error():
    exercise_id = f"{ASSIGNMENT}/encode"
    verdict = graded(exercise_id, whole_text_key)
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
