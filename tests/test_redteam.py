"""What red-team reviews of the integrated grader found, kept fixed: text that UTF-8 cannot carry
and control characters from students' code, markup in outputs, a notebook that breaks the
integrity scan or nbgrader's writer, outputs nbformat refuses (one of them makes nbgrader fail
the whole notebook), a kernel storing data in its socket folder (a host folder outside its capped
tmpfs), hidden cases that a resubmission could learn; and (the fourth review) what a kernel sends
past the notebook's output cap (widget state, display updates; a kernel dying in the middle of a
message is ``test_sandbox``'s), lines on the scorer's pipe that parse into millions of
objects or answer what was never asked, and a text function returning a number.

Its students are graded end to end by the real ``python -m grader autograde``, with an honest
neighbour who must keep full marks, in the class that several suites share
(``conftest.shared_class``); the rest are checks of the parts concerned.
"""

import base64
import codecs
import csv
import gzip
import hashlib
import inspect
import json
import os
import pickle
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import tracemalloc
from types import SimpleNamespace

import helpers
import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from test_grading import ASSIGNMENT, RELEASED, answer, index_of, insert_after, read_grades, solution

import lib._validate
import lib.embedding
from grader import (
    audit,
    autograde,
    clean,
    compare,
    course,
    diagnosis,
    execute,
    exercises,
    feedback,
    followup,
    formgrader,
    integrity,
    lending,
    lms,
    magics,
    program,
    references,
    results,
    sandbox,
    scoring,
    scrub,
    submissions,
    wire,
)
from grader.check import CheckFailed, check
from grader.exercise import Case

# Raised only where the scores come from (the scorer runs ``harness.py``): the kernel's check passes.
UNSTORABLE = """import sys
def encode(text, stoi):
    if sys.argv[0].endswith("harness.py"):
        raise ValueError("\\ud800 a\\x00b\\r\\nc\\x1b[31m\\u2028d")
    return np.array([stoi[ch] for ch in text], dtype=np.int64)"""
MARKUP = """from IPython.display import publish_display_data
publish_display_data({"image/png": '"><script>document.title="PWNED"</script><b x="', "text/plain": "fig"})"""
# Outputs that nbformat refuses, sent by the student's code: a display bundle whose text is a number,
# and a forged reply to the grader's execute request (nbclient fails on it, so nbgrader writes no
# graded notebook at all). Neither may cost a point the functions earned.
MALFORMED = """from IPython.display import publish_display_data
publish_display_data({"text/plain": 5})"""
FORGED_REPLY = """k = get_ipython().kernel
k.session.send(k.shell_stream, "execute_reply", {"execution_count": 1}, parent=k.get_parent("shell"),
               ident=k._parent_ident["shell"])"""
# 400 MiB into the kernel's socket folder (a host folder, outside the sandbox's capped tmpfs), in
# files under the per-file size limit.
SOCKET_FILLER = """import json, os, sys
folder = os.path.dirname(json.load(open(sys.argv[sys.argv.index("-f") + 1]))["ip"])
written = 0
try:
    for part in range(4):
        with open(os.path.join(folder, f"filler-{part}"), "wb") as f:
            for _ in range(100):
                written += f.write(b"x" * 2**20)
    print("socket folder filled:", written)
except OSError as err:
    print("socket folder refused:", type(err).__name__, written)"""
# Lines of its own on the scorer's pipe that no honest harness writes: numbers past a float's range
# (JSON allows integers of thousands of digits) where the grader reads a timeout and a shape, for
# cases that do not exist. They must cost nothing: the student's functions are right.
OUT_OF_RANGE = """import json, os, sys
huge = 10 ** 400
lines = [{"probe": 0, "case": "nothing-like-this", "timeout": huge},
         {"probe": 0, "case": "nor-this", "output": {"array": {"dtype": "<f8", "shape": [huge], "b64": ""}}}]
for fd in [int(a[5:]) for a in sys.argv if a.startswith("--fd=")]:
    for line in lines:
        for job in range(7):  # as the harness frames them, for any notebook it is on
            os.write(fd, (f"{job} " + json.dumps(line) + "\\n").encode())"""
# Markdown that the feedback page's parser is slowest on (tens of microseconds a character), in
# cells just under the size rendered as markdown: the page is made in the process that keeps the
# whole class's results.
SLOW_MARKDOWN = ("*a* " * 5000)[:19_999]
# A careless decode: a wrong text on the first case, and the ids themselves where the table is
# another (the diagnosis pass calls it with one): diagnosing it failed the student's whole grading.
CARELESS_DECODE = """def decode(ids, itos):
    if itos[0] != "\\n":
        return ids
    return "".join(itos[int(i)] for i in ids).upper()"""
# Files in one student's folder whose names, or the folders they are in, name the honest
# neighbour: as the latest resubmission of their notebook they would replace it with a blank one.
SNATCHED = ("ch1_honest_attempt_2030-01-01_embeddings-9.ipynb", "honest/embeddings-9.ipynb")
# More than the notebook's output cap, in messages under the size ZeroMQ refuses: widget state
# (nbclient kept it in the notebook's metadata, outside every cap) and one display update of 1 MiB
# that rewrites a hundred outputs shown with its id. Both reached the class's output folder and
# the process that keeps every student's results.
BLOATER = """from comm import create_comm
from IPython.display import display, update_display
state = {"_model_name": "M", "_model_module": "m", "_model_module_version": "1"}
widget = create_comm(target_name="jupyter.widget", data={"state": state, "buffer_paths": []})
for i in range(6):
    widget.send({"method": "update", "state": {f"k{i}": "w" * 12_000_000}, "buffer_paths": []})
for i in range(100):
    display("x", display_id="shown")
update_display({"text/plain": "y" * 2**20}, display_id="shown", raw=True)"""
UNSCANNABLE = 'import base64\ntry:\n    exec(base64.b64decode("\\ud800"))\nexcept Exception:\n    pass'


def unwritable() -> str:
    """A notebook whose markdown holds a lone surrogate, as a JSON escape: valid JSON, valid
    nbformat, and no UTF-8 writer could write it as ``json`` reads it."""
    text = nbformat.writes(solution())
    assert '"# ' in text  # a markdown heading's first line, inside a JSON string
    return text.replace('"# ', '"# \\ud800 ', 1)


def class_entries() -> list[tuple[str, str]]:
    """This suite's students in the class that ``conftest.shared_class`` grades."""
    students = {
        "honest": solution(),
        "unstorable": answer("encode", UNSTORABLE),
        "markup": insert_after("decode", MARKUP),
        "unscannable": insert_after("decode", UNSCANNABLE),
        "malformed": insert_after("decode", MALFORMED),
        "forged_reply": insert_after("decode", FORGED_REPLY),
        "socket_filler": insert_after("decode", SOCKET_FILLER),
        "out_of_range": insert_after("decode", OUT_OF_RANGE),
        "careless_decode": answer("decode", CARELESS_DECODE),
        "bloater": insert_after("decode", BLOATER),
        "xss": formgrader_markup(),
    }
    verbose = solution()
    verbose.cells += [new_markdown_cell(SLOW_MARKDOWN) for _ in range(40)]
    students["verbose"] = verbose
    entries = [(f"class/{name}/embeddings.ipynb", nbformat.writes(nb)) for name, nb in students.items()]
    blank = nbformat.writes(nbformat.read(RELEASED, as_version=4))
    return [
        *entries,
        ("class/unwritable/embeddings.ipynb", unwritable()),
        *((f"class/snatcher/{file}", blank) for file in SNATCHED),
    ]


@pytest.fixture(scope="module")
def graded(shared_class):
    return shared_class.out


def points() -> dict[str, float]:
    return {t.name: t.points for t in results.test_cells(nbformat.read(RELEASED, as_version=4))}


@pytest.mark.slow
def test_the_class_is_graded_and_the_honest_neighbour_keeps_full_marks(graded):
    grades = read_grades(graded)
    for name, most in points().items():
        assert (grades[("honest", name)]["status"], float(grades[("honest", name)]["score"])) == (
            "graded",
            most,
        )
    for student in ("markup", "unscannable"):  # their functions are right: nothing costs them a point
        assert {grades[(student, name)]["status"] for name in points()} == {"graded"}, student


@pytest.mark.slow
def test_lines_the_grader_cannot_read_cost_no_point(graded):
    grades = read_grades(graded)
    got = {
        name: (grades[("out_of_range", name)]["status"], float(grades[("out_of_range", name)]["score"]))
        for name in points()
    }
    assert got == {name: ("graded", most) for name, most in points().items()}


@pytest.mark.slow
def test_a_page_parses_a_bounded_amount_of_a_students_markdown(graded):
    grades = read_grades(graded)
    assert {grades[("verbose", name)]["status"] for name in points()} == {"graded"}
    page = (graded / "feedback" / "verbose" / f"{ASSIGNMENT}.html").read_text()
    parsed = feedback.MARKDOWN_BUDGET // len(SLOW_MARKDOWN)
    assert page.count("<em>a</em>") == parsed * SLOW_MARKDOWN.count("*a*")
    assert page.count(f">{SLOW_MARKDOWN}</pre>") == 40 - parsed  # as text (a tall one takes focus)


@pytest.mark.slow
def test_what_a_kernel_sends_past_the_output_cap_is_not_kept(graded):
    grades = read_grades(graded)
    assert {grades[("bloater", name)]["status"] for name in points()} == {"graded"}
    stored = graded / "autograded" / "bloater" / ASSIGNMENT / "embeddings.ipynb"
    page = graded / "feedback" / "bloater" / f"{ASSIGNMENT}.html"
    for path in (stored, page):
        assert path.stat().st_size < 4 * 2**20, (path, path.stat().st_size)
    assert "widgets" not in nbformat.read(stored, as_version=4).metadata


@pytest.mark.slow
def test_a_wrong_answer_the_diagnosis_cannot_explain_costs_only_itself(graded):
    grades = read_grades(graded)
    got = {name: grades[("careless_decode", name)]["status"] for name in points()}
    assert got == {name: "wrong" if name == "decode" else "graded" for name in points()}, got


@pytest.mark.slow
def test_nothing_in_a_students_folder_is_graded_as_anothers(graded):
    rows = [row for row in read_grades(graded).values() if "snatcher/" in row["exercise"] + row["reason"]]
    assert len(rows) == len(SNATCHED) and {row["student"] for row in rows} == {"snatcher"}, rows
    assert {row["status"] for row in rows} == {"unknown_assignment", "invalid_submission"}, rows
    assert not any(
        "snatcher" in row["reason"] for row in read_grades(graded).values() if row["student"] == "honest"
    )


@pytest.mark.slow
def test_unstorable_text_is_stored_as_plain_text(graded):
    (graded / "grades.csv").read_bytes().decode("utf-8")  # strict: no lone surrogate got in
    grades = read_grades(graded)
    assert all(
        ch not in value for row in grades.values() for value in row.values() for ch in "\x00\r\x1b\u2028"
    )
    row = grades[("unstorable", "encode")]
    assert row["status"] == "wrong" and "ValueError" in row["reason"], row


@pytest.mark.slow
def test_markup_in_an_output_stays_text(graded):
    page = (graded / "feedback" / "markup" / f"{ASSIGNMENT}.html").read_text()
    assert "<script>document.title" not in page
    assert "that is not base64 was left out" in page


@pytest.mark.slow
def test_a_notebook_that_breaks_the_scan_is_reported_not_zeroed(graded):
    with open(graded / "integrity.csv") as f:
        flagged = [row for row in csv.DictReader(f) if row["student"] == "unscannable"]
    assert flagged, "the exec of undecodable text should be reported"


@pytest.mark.slow
def test_a_notebook_no_writer_can_write_is_read_with_a_replacement_and_graded(graded):
    """The lone surrogate is read as a replacement character (the reader is ijson's), so nothing
    downstream meets text it cannot write, and the right functions keep their points."""
    grades = read_grades(graded)
    got = {
        name: (grades[("unwritable", name)]["status"], float(grades[("unwritable", name)]["score"]))
        for name in points()
    }
    assert got == {name: ("graded", most) for name, most in points().items()}


@pytest.mark.slow
def test_outputs_nbgrader_cannot_take_cost_no_point(graded):
    grades = read_grades(graded)
    for student in ("malformed", "forged_reply"):
        got = {
            name: (grades[(student, name)]["status"], float(grades[(student, name)]["score"]))
            for name in points()
        }
        assert got == {name: ("graded", most) for name, most in points().items()}, student
    page = (graded / "feedback" / "malformed" / f"{ASSIGNMENT}.html").read_text()
    assert "not a valid notebook output was left out" in page
    page = (graded / "feedback" / "forged_reply" / f"{ASSIGNMENT}.html").read_text()
    assert "nbgrader could not run this notebook" in page and "KeyError" in page


def test_a_students_result_leaves_the_scratch_space_once_read(tmp_path):
    """A result holds the autograded notebooks (up to ``execute.MAX_OUTPUT`` of outputs each), and
    the scratch space is memory: every student's result and log stayed there until the run ended,
    a Dask worker's until the worker did."""
    (tmp_path / "n.ipynb").write_text("{}")
    sub = submissions.Submission("alice", "alice", tmp_path / "n.ipynb", "alice/n.ipynb", "n", "a")
    run = SimpleNamespace(scratch=tmp_path / "scratch")
    result = {
        "student": "alice",
        "fingerprint": autograde._fingerprint([sub]),
        "complete": True,
        "notebooks": [],
    }
    autograde._write_result(run, result)
    log = autograde._log_path(run, "alice")
    log.parent.mkdir()
    log.write_text("graded\n")
    ended = SimpleNamespace(join=lambda: None, exitcode=0)
    assert autograde.finish(run, ended, "alice", [sub]) == (result, "graded\n")
    assert [p for p in run.scratch.rglob("*") if p.is_file()] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the socket folder is sealed only when the grader runs as root")
@pytest.mark.slow
def test_the_kernel_cannot_store_data_in_its_socket_folder(graded):
    nb = nbformat.read(
        graded / "autograded" / "socket_filler" / ASSIGNMENT / "embeddings.ipynb", as_version=4
    )
    text = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "socket folder refused: PermissionError 0" in text and "filled" not in text, text[-2000:]
    grades = read_grades(graded)
    assert {grades[("socket_filler", name)]["status"] for name in points()} == {"graded"}


# ---- the parts -----------------------------------------------------------------------------------------


def test_scrub_leaves_plain_text_and_cleans_the_rest():
    assert scrub.text("tab\tand\nnewline, é, ✔") == "tab\tand\nnewline, é, ✔"
    assert scrub.text("a\ud800b\x00c\r\x1b[1m\u2028") == "a\ufffdbc[1m"
    cleaned = scrub.strings({"k\udfff": ["x\x00", 1, None, {"y": "\ud800"}]})
    assert json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def test_scrub_removes_the_c1_controls_a_terminal_acts_on():
    # What a kernel wrote on its stderr (kept in the student's log): clear the screen, then an OSC
    # retitling the terminal, in C1 form (CSI, OSC, ST), which the ESC filter let through.
    written = "\u009b2J\u009b1;1Hall fine\u009d0;graded: 12 / 12\u009c"
    assert scrub.text(written) == "2J1;1Hall fine0;graded: 12 / 12"
    assert scrub.text("\u00a0é\u00ff") == "\u00a0é\u00ff"  # printable Latin-1 stays


def test_by_default_as_many_students_as_the_machines_memory_holds():
    """Each sandbox's memory is capped, not their sum: one student per core on a machine with many
    cores and little memory let a class's code together fill it (the kernel's OOM killer then
    chooses among everyone's processes)."""
    from grader import autograde

    each = 3 * 2**30 + autograde.WORKER_MEMORY
    assert autograde.default_jobs(3 * 2**30, cores=64, machine=64 * 2**30) == 64 * 2**30 // each == 12
    assert autograde.default_jobs(3 * 2**30, cores=4, machine=64 * 2**30) == 4  # the cores, when fewer
    assert autograde.default_jobs(3 * 2**30, cores=64, machine=2**30) == 1  # never none


def test_another_submission_draws_other_hidden_cases():
    secret = b"s" * 32
    same = scoring.case_secret(secret, "ann", "a/x", "digest-1")
    assert same == scoring.case_secret(secret, "ann", "a/x", "digest-1")  # a regrade draws the same
    assert same != scoring.case_secret(secret, "ann", "a/x", "digest-2")


def test_a_hidden_case_shows_the_type_of_an_error_not_its_message():
    exercise_id = f"{ASSIGNMENT}/encode"
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(1234)
    hidden = next(c for c in cases if c.hidden and c.raises is None)
    right = {
        c.name: {"output": wire.encode(exercise.reference(**c.inputs))} for c in cases if c.raises is None
    }
    for c in cases:
        if c.raises:
            right[c.name] = {"error": f"{c.raises.errors[0]}: {c.raises.mentions}"}
    leaked = "the hidden text was: secret stuff"
    answers = right | {hidden.name: {"error": f"ValueError: {leaked}"}}
    table = references.for_grading(exercise_id, exercise, cases)
    verdict = compare.grade(exercise_id, cases, answers, table)
    assert not verdict.ok and "ValueError" in verdict.reason and leaked not in verdict.reason, verdict


def test_a_hidden_case_shows_the_type_of_a_helpers_error_not_its_message():
    exercise_id = f"{ASSIGNMENT}/embed"
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(1234)
    hidden = next(c for c in cases if c.hidden)
    answers = {c.name: {"output": wire.encode(exercise.reference(**c.inputs))} for c in cases}
    answers[hidden.name] = {"output": wire.encode(np.zeros(1))}
    leaked = "the hidden ids were: secret stuff"
    part = exercise.parts[0]
    answers[diagnosis.part_call(hidden, part)] = {"error": f"ValueError: {leaked}"}
    table = references.for_grading(exercise_id, exercise, cases)
    verdict = compare.grade(exercise_id, cases, answers, table)
    assert not verdict.ok and verdict.case == hidden.name, verdict
    assert f"`{part.helper}` raised ValueError" in verdict.reason and leaked not in verdict.reason, verdict


def test_the_diagnosis_pass_never_fails_a_grading():
    exercise_id = f"{ASSIGNMENT}/decode"
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(1234)
    answers = {c.name: {"output": wire.encode(exercise.reference(**c.inputs))} for c in cases if not c.raises}
    answers |= {c.name: {"error": f"{c.raises.errors[0]}: {c.raises.mentions}"} for c in cases if c.raises}
    answers[cases[0].name] = {"output": {"value": "wrong text"}}
    table = references.for_grading(exercise_id, exercise, cases)
    before = compare.grade(exercise_id, cases, answers, table)
    asked = followup.questions(exercise_id, cases, answers, table, before)
    assert asked and not before.ok
    for sent in (wire.encode(np.arange(3)), {"value": 5}, [1], None):  # what no honest harness sends
        more = {call["case"]: {"output": sent} for call in asked}
        assert followup.refine(exercise_id, cases, answers, more, table, before).status == "wrong"


def test_a_text_function_that_returns_a_number_is_told_so():
    """A number comes back from the scorer as a 0-d array: comparing it with the text failed, and
    the careless student got "the grader could not compare your answers" as an error."""
    exercise_id = f"{ASSIGNMENT}/decode"
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(1234)
    answers = {c.name: {"output": wire.encode(np.int64(len(c.inputs["ids"])))} for c in cases}
    table = references.for_grading(exercise_id, exercise, cases)
    verdict = scoring._verdict(exercise_id, cases, answers, scoring.Run({}, {}, True, 0))
    assert (verdict.status, verdict.case) == ("wrong", cases[0].name), verdict
    assert "expected a str, got a number" in verdict.reason, verdict
    assert compare.grade(exercise_id, cases, answers, table) == verdict


@pytest.mark.parametrize(
    "returned, words",
    [
        (lambda x, axis=-1: "not numbers", "a str"),
        (lambda x, axis=-1: {"probs": x}, "a dict"),
        (lambda x, axis=-1: x.astype(np.complex64), "an array of complex64: complex numbers"),
        (lambda x, axis=-1: np.array([None, 1.0], dtype=object), "an array of object: Python objects"),
    ],
    ids=["str", "dict", "complex", "object"],
)
def test_an_output_that_is_not_numbers_is_named_by_what_it_is(returned, words):
    """What the function returned, by its type or its array's dtype, in the check and the grader
    alike (the check used to turn it into an array first, and name every one "ndarray")."""
    with pytest.raises(CheckFailed) as failed:
        check("03-lm-head/softmax", returned)
    assert words in str(failed.value), failed.value
    verdict = helpers.graded("03-lm-head/softmax", returned)
    assert words in verdict.reason and "ndarray" not in verdict.reason, verdict


def test_whatever_comes_back_is_read_or_dropped_never_raised():
    huge = "1" + "0" * 400  # an integer JSON reads, past a float's range
    lines = [
        f'{{"probe": 0, "case": "a", "timeout": {huge}}}',
        '{"probe": 0, "case": "b", "timeout": NaN}',
        f'{{"done": true, "cpu": {huge}}}',
        '{"probe": 0, "case": "c", "timeout": 2.5}',
    ]
    asked = [{"index": 0, "probe": 0, "calls": [{"case": case} for case in "abc"]}]
    run = scoring.Run.parse("\n".join(lines).encode(), 0, asked)
    assert run.answers == {0: {"a": {}, "b": {}, "c": {"timeout": 2.5}}} and run.done, run
    for shape in ([int(huge)], [2**70, 0], [-1], [1.5], "ab", [True], {"a": 1}, [1] * 65, [2**20] * 10**5):
        with pytest.raises(ValueError):
            wire.decode({"array": {"dtype": "<f8", "shape": shape, "b64": ""}})
    for dtype in ("object", "V8", [["a", "<f8"]], {"names": ["a"], "formats": ["<f8"]}, "(2,)<f8", 7):
        with pytest.raises(ValueError):
            wire.decode({"array": {"dtype": dtype, "shape": [1], "b64": "AAAAAAAAAAA="}})
    seen = [{"helper": "f", "args": {"x": {"array": {"dtype": "<f8", "shape": [int(huge)], "b64": ""}}}}]
    assert diagnosis.Returned({"x@watched": {"seen": seen}}).watched(Case("x", {})) is None


def test_lines_the_grader_did_not_ask_for_cost_it_nothing():
    """The student's code may write anything on the scorer's pipe, up to ``MAX_BYTES``: a line of
    millions of tiny JSON values (parsed, a million objects per 3 MB), answers to calls never made,
    reports of cells that do not exist. Only what the program asked for is kept."""
    program = [{"index": 0, "source": "x = 1"}, {"index": 1, "probe": 0, "calls": [{"case": "a"}]}]
    flood = b'{"probe": 0, "case": "a", "seen": [' + b"[]," * 3_000_000 + b"[]]}"
    lines = [
        flood,
        b'{"probe": 0, "case": "a", "timeout": 1}',
        b'{"probe": 0, "case": "not-asked", "timeout": 1}',
        b'{"probe": 7, "case": "a", "timeout": 1}',
        b'{"cell": 5, "error": "NameError: z"}',
        b'{"cell": 0, "error": "NameError: y"}',
        b'{"probe": [0], "case": ["a"], "cell": [0]}',
    ]
    data = b"\n".join(lines)
    tracemalloc.start()
    try:
        run = scoring.Run.parse(data, 0, program)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.answers == {0: {"a": {"timeout": 1}}} and run.failed == {0: "NameError: y"}, run
    assert peak < 4 * len(flood), peak  # the lines split apart, never parsed into objects


def test_a_notebook_past_the_size_any_chapter_needs_is_refused_with_its_reason(tmp_path):
    released = nbformat.read(RELEASED, as_version=4)
    many = solution()
    many.cells += [new_code_cell("") for _ in range(clean.MAX_CELLS)]
    long = solution()
    long.cells[-1].metadata["notes"] = "x" * clean.MAX_TEXT
    for nb, words in ((many, "cells, more than"), (long, "characters of source and metadata")):
        (tmp_path / "nb.ipynb").write_text(nbformat.writes(nb))
        with pytest.raises(clean.NotANotebook, match=words):
            clean.clean_file(tmp_path / "nb.ipynb", released, tmp_path / "cleaned.ipynb")
    widgets = solution()  # saved widget state: the notebook's own metadata, replaced by the release's
    widgets.metadata["widgets"] = {"state": "x" * clean.MAX_TEXT}
    (tmp_path / "nb.ipynb").write_text(nbformat.writes(widgets))
    clean.clean_file(tmp_path / "nb.ipynb", released, tmp_path / "cleaned.ipynb")
    pictures = solution()  # a careless student's screenshots: the first few kept, the rest left out
    image = {"image/png": "A" * (clean.MAX_ATTACHMENT - 100)}
    pictures.cells += [
        new_markdown_cell("![s](attachment:s.png)", attachments={"s.png": image}) for _ in range(6)
    ]
    cleaned, changes = clean.clean(pictures, released)
    assert sum("attachments" in cell for cell in cleaned.cells) == 4
    assert any("2 markdown attachments" in change.what for change in changes), changes


def test_the_integrity_scan_reads_a_bounded_amount_of_code_and_says_what_it_left(monkeypatch):
    released = nbformat.read(RELEASED, as_version=4)
    nb = insert_after("decode", "x = 1\n" * (integrity.SCANNED // 6 + 1))
    nb = insert_after("decode", "def embed(ids, wte, wpe):\n    return lib.embed(ids, wte, wpe)", nb)
    parsed, parse = [], integrity._parse
    monkeypatch.setattr(
        integrity, "_parse", lambda index, source, *a: parsed.append(source) or parse(index, source, *a)
    )
    names = [test.name for test in results.test_cells(nb)]
    review = integrity.review(nb, released, solution(), names, ASSIGNMENT)
    students = {source for _, source in integrity.student_cells(nb, {c.source for c in released.cells})}
    assert sum(len(source) for source in parsed if source in students) <= integrity.SCANNED
    reasons = [f.reason for f in review.findings]
    assert "uses lib's own embed (lib.embed)" in reasons, reasons  # before the budget ran out
    assert any(r.startswith("not scanned: ") and "from this one on" in r for r in reasons), reasons


CHEAT = (
    "import codecs\nexec(codecs.decode('rzorq = yvo.rzorq', 'rot13'))"  # exec of text the scan cannot read
)


@pytest.mark.parametrize(
    "cells",
    [
        ["# notes\n" * (integrity.SCANNED // 8 + 1), CHEAT],  # the cheat past the scan's budget
        ["%lsmagic\n" * 300, CHEAT],  # the budget for IPython syntax spent by one cell
        ["class Setup:\n    " + CHEAT.replace("\n", "\n    ")],  # code that runs when a class is made
        ["def now(f):\n    return f()\n@now\ndef setup():\n    " + CHEAT.replace("\n", "\n    ")],
        ["def setup(x=exec('embed = lib.embed')):\n    pass"],  # a default value
        ["def decode(ids, itos):\n    " + CHEAT.replace("\n", "\n    ") + "\n    return ''"],  # a scapegoat
    ],
    ids=["past-the-scan", "magics", "class-body", "decorator", "default", "scapegoat"],
)
def test_a_finding_about_code_that_can_define_any_answer_concerns_every_exercise(cells):
    """These findings named no exercise, or only the cheap one they were written in, so
    ``--zero-flagged`` kept full marks (red team, third round): code the scan did not read, code
    that runs when a definition is made, and code that runs code, concern every exercise."""
    nb = solution()
    for source in reversed(cells):
        nb.cells.insert(index_of(nb, "encode") + 1, new_code_cell(source))
    names = [t.name for t in results.test_cells(nb)]
    review = integrity.review(nb, nbformat.read(RELEASED, as_version=4), solution(), names, ASSIGNMENT)
    assert any(set(f.exercises) == set(names) for f in review.findings), review.findings


def test_a_students_folder_names_no_other_student(tmp_path):
    layouts = {  # the exchange's layout, a plain one, and an LMS export's flat files, each in a top folder
        "exchange": ("top/ann/01-embeddings/embeddings.ipynb", "top/bob/01-embeddings/embeddings.ipynb"),
        "plain": ("top/ann/embeddings.ipynb", "top/bob/embeddings.ipynb"),
        "lms": ("top/ann_11_1_embeddings.ipynb", "top/bob_22_2_embeddings.ipynb"),
    }
    forged = (
        "x_bob_attempt_2030-01-01_embeddings-9.ipynb",
        "y_22_999_embeddings-9.ipynb",
        "bob/embeddings-9.ipynb",
    )
    for layout, (ann, bob) in layouts.items():
        root = tmp_path / layout
        ann_folder = root / (ann.rpartition("/")[0] if layout != "lms" else "top/ann")
        for path in (root / ann, root / bob, *(ann_folder / f for f in forged)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        found = submissions.find(root, {"embeddings": ASSIGNMENT}, tmp_path / "scratch")
        bobs = {sub.file for sub in found.by_student.get("22" if layout == "lms" else "bob", [])}
        assert bobs == {bob}, (layout, bobs)
        assert not [p for p in found.problems if p.status == "duplicate_submission"], found.problems


def test_a_submission_time_past_any_calendar_stops_nothing(tmp_path):
    """A timestamp.txt is the student's to write, and an exchange keeps the file times they set:
    ``9999-12-31 23:59:59`` in one stopped the whole class's grading before anyone was graded (a
    minute of slack past datetime's range), and so did a file time past year 9999 or before year 1
    (a tmpfs or btrfs keeps them). Neither is a submission time: the other sources decide."""
    stamps = {"ann": "2030-01-01 10:00:00", "bob": "9999-12-31 23:59:59", "cy": "0001-01-01 00:00:00"}
    for student, stamp in stamps.items():
        (tmp_path / "top" / student).mkdir(parents=True)
        (tmp_path / "top" / student / "embeddings.ipynb").write_text("{}")
        (tmp_path / "top" / student / "timestamp.txt").write_text(stamp)
    found = submissions.find(tmp_path / "top", {"embeddings": ASSIGNMENT}, tmp_path / "scratch")
    described = {s: lms.describe(subs[0], None) for s, subs in found.by_student.items()}
    assert described["ann"].time_source == "nbgrader exchange (timestamp.txt)"
    for student in ("bob", "cy"):
        assert described[student].time_source == "file modification time", student
        assert described[student].submitted_at == described[student].listed
    for seconds in (253402300799 + 86400, -62135596800, 10**14, float("nan")):  # a file's time
        assert submissions.file_time(seconds) is None
    assert submissions.file_time(1.9e9).year == 2030


def test_an_exchange_stamp_set_back_lowers_no_penalty(tmp_path):
    """Through nbgrader's exchange, ``timestamp.txt`` and the notebook's modification time are both
    written on the student's account: set both back to before the due date and the penalty was
    gone. With ``late.trust_ctime`` (a folder that ``nbgrader collect`` filled on the instructor's
    side), the notebook's ctime, which no user can set back, bounds the time: the later counts."""
    from datetime import UTC, datetime, timedelta

    from grader.late import assess
    from grader.settings import LatePolicy, SettingsError, _late

    folder = tmp_path / "submitted" / "mallory" / ASSIGNMENT
    folder.mkdir(parents=True)
    notebook = folder / "embeddings.ipynb"
    notebook.write_text("{}")
    arrived = datetime.fromtimestamp(notebook.stat().st_ctime, UTC)
    due = arrived - timedelta(days=2)
    claimed = due - timedelta(days=10)
    (folder / "timestamp.txt").write_text(claimed.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    os.utime(notebook, (claimed.timestamp(), claimed.timestamp()))  # the notebook's time agrees
    found = submissions.find(tmp_path / "submitted", {"embeddings": ASSIGNMENT}, tmp_path / "scratch")
    (sub,) = found.by_student["mallory"]
    told = lms.describe(sub, UTC, trust_ctime=True)
    assert told.submitted_at >= arrived - timedelta(seconds=1), told
    assert told.time_source.startswith("time the file reached the graded folder (ctime)"), told.time_source
    policy = LatePolicy(policy="per-day", penalty_per_day=10, max_penalty=50)
    lateness = assess(policy, due, told.submitted_at, told.late, score=10, max_score=10)
    assert lateness.days >= 2 and lateness.penalty > 0, lateness
    # An honest stamp after the file arrived (a student's clock ahead of the server's) still counts.
    (folder / "timestamp.txt").write_text((arrived + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC"))
    found = submissions.find(tmp_path / "submitted", {"embeddings": ASSIGNMENT}, tmp_path / "scratch")
    (sub,) = found.by_student["mallory"]  # the stamp is read with the notebook, once
    assert lms.describe(sub, UTC, trust_ctime=True).time_source == "nbgrader exchange (timestamp.txt)"
    assert _late({"trust_ctime": True}, tmp_path / "course.toml").trust_ctime is True
    with pytest.raises(SettingsError, match="trust_ctime"):
        _late({"trust_ctime": "yes"}, tmp_path / "course.toml")


def test_an_image_that_is_not_base64_is_left_out():
    out = {"output_type": "display_data", "data": {"image/png": '"><script>x()</script>'}}
    assert "<script>" not in feedback._output(out)
    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=\n"}}
    assert feedback._output(png) == '<img alt="figure" src="data:image/png;base64,iVBORw0KGgo=">'


# IPython syntax that IPython's transformer rewrites one piece at a time, tokenizing the whole cell
# again after each (up to 500 times), in a cell just under what the integrity scan reads: cleaning
# (which reads every cell for what it defines when an answer cell lost its metadata), the scan and
# the scorer's program each spent about five minutes of the grading process's CPU time on it, and a
# larger cell kept the process busy until the student's time limit, on every run.
MAGIC_FLOOD = "%a\n" * 499 + "x\n" * 49_000


def test_ipython_syntax_costs_the_grading_process_a_bounded_time(tmp_path):
    released = nbformat.read(RELEASED, as_version=4)
    nb = insert_after("decode", MAGIC_FLOOD)
    nb.cells[index_of(nb, "embed-answer")].metadata = {}
    nbformat.write(nb, tmp_path / "flood.ipynb")
    start = time.process_time()
    changes = clean.clean_file(tmp_path / "flood.ipynb", released, tmp_path / "cleaned.ipynb")
    cleaned = nbformat.read(tmp_path / "cleaned.ipynb", as_version=4)
    names = [test.name for test in results.test_cells(cleaned)]
    integrity.review(cleaned, released, solution(), names, ASSIGNMENT, changes)
    items = program.build(cleaned, released)
    assert time.process_time() - start < 60
    assert any(item.get("source") == MAGIC_FLOOD for item in items)  # left as it is: the harness says why
    assert [item["grade_id"] for item in items if "probe" in item] == names
    with pytest.raises(ValueError):  # as cleaning and the scan expect (IPython raises RuntimeError)
        magics.python("%a\n" * 600)


# A tuple of two million names: 4 MB of source, which took the grading process to 3 GB parsed.
# MEASURE prints its peak memory from VmHWM (ru_maxrss keeps the test worker's, across exec).
HUGE_LITERAL = "x = (" + "a," * 1_900_000 + ")"
MEASURE = """
import sys, nbformat
from pathlib import Path
from grader import clean, integrity, program, results
sys.path.insert(0, "tests")
from test_grading import ASSIGNMENT, RELEASED, solution
work = Path(sys.argv[1])
released = nbformat.read(RELEASED, as_version=4)
changes = clean.clean_file(work / "huge.ipynb", released, work / "cleaned.ipynb")
cleaned = nbformat.read(work / "cleaned.ipynb", as_version=4)
names = [test.name for test in results.test_cells(cleaned)]
integrity.review(cleaned, released, solution(), names, ASSIGNMENT, changes)
program.build(cleaned, released)
print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))
"""


@pytest.mark.slow
def test_a_cell_too_long_to_parse_is_left_to_the_scorer(tmp_path):
    """Cleaning, the scan and the program of a notebook with such a cell, in a process of their
    own: the cell is not parsed there (the scorer parses it in its sandbox, within its memory
    limit), and it keeps every course statement, whatever it reads."""
    nb = insert_after("decode", HUGE_LITERAL)
    nbformat.write(nb, tmp_path / "huge.ipynb")
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=course.ROOT,
    )
    assert int(done.stdout) < 600 * 1024, f"{int(done.stdout) / 1024:.0f} MB"
    released = nbformat.read(RELEASED, as_version=4)
    items = program.build(nbformat.read(tmp_path / "cleaned.ipynb", as_version=4), released)
    assert any(item.get("source") == HUGE_LITERAL for item in items)
    kept = "\n".join(item["source"] for item in items if "source" in item)
    honest = "\n".join(item["source"] for item in program.build(solution(), released) if "source" in item)
    assert all(line in kept for line in honest.splitlines())


def test_lines_the_grader_does_not_keep_still_count_for_the_cap():
    """Empty lines on the scorer's pipe counted for nothing: a scorer sending them until its
    wall-clock limit kept the grader's reader busy as long (25 s of CPU time for 16 MiB), its
    answers all kept. Every line counts, for at least ``MIN_LINE`` bytes."""
    read, write = os.pipe()
    go_read, go_write = os.pipe()
    reader = scoring._Reader(read, go_write, 1, lambda j: None)
    start = time.process_time()
    reader.start()
    try:
        for _ in range(1024):  # 64 MiB, or until the reader stops reading
            os.write(write, b"\n" * 2**16)
    except BrokenPipeError:
        pass
    finally:
        os.close(write)
        os.close(go_read)
    reader.join(timeout=60)
    assert not reader.is_alive() and reader.capped == [True]
    assert time.process_time() - start < 5


# Markup of a student's in the autograded notebook, which formgrader renders with nbconvert in the
# instructor's JupyterLab (whose pages may call the Jupyter server's API with the instructor's
# rights): nbconvert keeps the HTML of markdown cells and outputs, image data and image sizes as
# they are. Each would run there: start a kernel, rewrite the grades, read the solutions.
FORMGRADER_MARKDOWN = (
    "My notes <img src=x onerror=\"fetch('/api/kernels', {method: 'POST'})\"> and "
    "[a link](javascript:alert(1)) and `x < y`"
)
FORMGRADER_OUTPUTS = """from IPython.display import HTML, Javascript, display, publish_display_data
display(HTML('<img src=x onerror="alert(1)">'))
display(Javascript("alert(2)"))
publish_display_data({"image/png": 'AAAA" onerror="alert(3)', "text/plain": "figure"})
publish_display_data({"image/png": "AAAA", "text/plain": "figure"}, metadata={"image/png": {"width": "1 onerror=alert(4)"}})
print("printed <b onmouseover=alert(5)>")"""


def formgrader_page(out) -> str:
    """The page formgrader shows for a submission: nbconvert with formgrader's template, on the
    notebook in the folder ``OUT/nbgrader_config.py`` names."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", str(out)).load_config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    folder = out / config.CourseDirectory.autograded_directory / "xss" / ASSIGNMENT
    resources = {"base_url": "/", "mathjax_url": "", "disable_mathjax": True, "index": 0, "total": 1}
    return HTMLExporter(config=config).from_filename(str(folder / "embeddings.ipynb"), resources=resources)[0]


def formgrader_markup():
    """A student whose markdown cell and outputs hold markup that would run in formgrader."""
    nb = insert_after("decode", FORMGRADER_OUTPUTS)
    nb.cells.insert(index_of(nb, "decode") + 1, new_markdown_cell(FORMGRADER_MARKDOWN))
    return nb


@pytest.mark.slow
def test_formgrader_shows_a_students_markup_as_text(graded):
    page = formgrader_page(graded)
    assert (
        "My notes &lt;img" in page and "[a link](javascript:" in page and "printed &lt;b" in page
    )  # as text
    assert [code for code in live_code(page) if "alert(" in code or "/api/" in code] == []
    rows = read_grades(graded)
    assert {
        row["status"]
        for (student, _), row in rows.items()
        if student == "xss" and row["assignment"] == ASSIGNMENT
    } == {"graded"}


def test_formgrader_shows_a_students_raw_cell_as_text():
    """nbconvert writes a raw cell as HTML, format or not, through a filter that keeps links and
    markup: a student's link to a sign-in page showed as a link in the instructor's formgrader."""
    from nbconvert.exporters import HTMLExporter
    from nbformat.v4 import new_raw_cell
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    raw = '<h1>Session expired</h1><a href="https://evil.example/login">sign in again</a>'
    nb = solution()
    nb.cells[1:1] = [new_raw_cell(raw), new_raw_cell(raw, metadata={"format": "text/html"})]
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"base_url": "/", "mathjax_url": "", "disable_mathjax": True, "index": 0, "total": 1}
    shown = formgrader.inert(nb, frozenset())
    page = HTMLExporter(config=config).from_notebook_node(shown, resources=resources)[0]
    assert page.count("&lt;h1&gt;Session expired") == 2  # as text
    assert "evil.example" not in "".join(live_code(page)) and "<h1>Session" not in page


def live_code(page: str) -> list[str]:
    """What a browser would run or follow in ``page``: its scripts, and the values of its tags'
    attributes (event handlers, links, image sources)."""
    from html.parser import HTMLParser

    found = []

    class Reader(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(value or "" for _, value in attrs)
            self.script = tag == "script"

        def handle_data(self, data):
            if getattr(self, "script", False):
                found.append(data)

        def handle_endtag(self, tag):
            self.script = False

    Reader().feed(page)
    return found


def test_notes_on_outputs_left_out_count_against_the_cap():
    # A content that is no object fails in nbclient before the output cap counts it, and each
    # failure left a note in the cell: 200,000 such messages from a kernel (6 s of its CPU time)
    # made 41,490 notes and kept the worker busy 130 s, every note beyond any cap.
    executor = execute.ResilientExecute()
    executor._output_bytes, executor._capped = execute.MAX_OUTPUT - 10 * execute.OUTPUT_COST, False
    cell = nbformat.v4.new_code_cell("")
    message = {"msg_type": "stream", "header": {"msg_type": "stream"}, "parent_header": {}, "metadata": {}}
    for _ in range(1000):
        executor.process_message({**message, "content": 0}, cell, 0)
    assert 0 < len(cell.outputs) <= 10
    assert "not a valid notebook output was left out" in cell.outputs[0]["text"]


DRAWS = 64  # secrets each exercise's hidden cases are drawn from here


def test_no_exercise_can_be_answered_from_a_table():
    """A hidden case drawn from a space so small that its draws repeat can be answered from a table
    made with lib beforehand (``sinusoidal_positions``'s two ints once scored full marks from 310 kB
    of stored answers): every exercise has a hidden case whose inputs never repeat."""
    for exercise_id, exercise in exercises.registry().items():
        if exercise.hidden is None:
            continue
        drawn: dict[str, set[str]] = {}
        for secret in range(DRAWS):
            for case in exercise.cases(secret):
                if case.hidden:
                    drawn.setdefault(case.name, set()).add(_digest(case.inputs))
        assert max(map(len, drawn.values())) == DRAWS, (exercise_id, {k: len(v) for k, v in drawn.items()})


def _digest(value) -> str:
    """The same for equal inputs (arrays by dtype, shape and bytes), different for others."""
    return hashlib.sha256(pickle.dumps(_plain(value))).hexdigest()


def _plain(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return sorted((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


# Burns the scorer's budget only where the scores come from, after the last test: the functions
# above it keep their points, and the scorer holds the machine alone (``grader.sandbox.turns``)
# for all of its budget (about 4 minutes for chapter 1 at the default --cpu, measured scaled down).
HOG = """import sys, time
if sys.argv[0].endswith("harness.py"):
    while True:
        pass"""


def test_nothing_after_the_last_test_runs_in_the_scorer():
    nb = solution()
    nb.cells += [new_code_cell(HOG), new_code_cell("print('an experiment of the student')")]
    items = program.build(nb, nbformat.read(RELEASED, as_version=4))
    assert "exercise" in items[-1], items[-1]  # the program ends with its last probe
    assert all(item["index"] < len(nb.cells) - 2 for item in items), items[-1]


def test_the_diagnosis_pass_stops_at_its_last_probe():
    """The second run, made to explain a wrong answer, has only the probes of the exercises it
    explains: what follows the last of them (the other probes' cells, the student's trailing
    cells) cannot change its answers either."""
    nb = insert_after("embed", HOG)  # a test (sinusoidal_positions) follows, then the hog again
    nb.cells.append(new_code_cell(HOG))
    items = program.build(nb, nbformat.read(RELEASED, as_version=4))
    probe = next(item for item in items if item.get("grade_id") == "embed")
    exercise = exercises.get(probe["exercise"])
    cases = {
        item["probe"]: exercise.cases(1234) if item is probe else [] for item in items if "exercise" in item
    }
    wrong = cases[probe["probe"]][0]
    first = scoring.Run({probe["probe"]: {wrong.name: {"output": wire.encode(np.zeros(3))}}}, {}, True, 0)
    verdicts = {item["grade_id"]: compare.Verdict(True, "", "graded") for item in items if "exercise" in item}
    verdicts["embed"] = compare.Verdict(False, "values differ", "wrong", wrong.name)

    class Recorder:
        def run(self, program, assignment, allowance=None):
            self.program = program
            return scoring.Run({}, {}, True, 0)

    scorer = Recorder()
    followup.explain(scorer, items, cases, first, verdicts, ASSIGNMENT)
    assert scorer.program[-1]["grade_id"] == "embed", scorer.program[-1]
    assert not any(item.get("source") == HOG for item in scorer.program), "the hog runs in the diagnosis pass"


@pytest.mark.parametrize("spent", [False, True], ids=["honest", "budget-spent"])
def test_the_diagnosis_pass_gets_only_what_the_first_run_left(tmp_path, monkeypatch, spent):
    """A scorer has the machine to itself. A student whose code spent the first run's whole budget
    between right answers (here its sandbox reports that it did) made the diagnosis pass, which
    earns nothing, take as much again: one wrong exercise was enough to ask for it."""
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits(2**30, per_call=2))
    nb = answer(
        "position_embedding", "def position_embedding(n_tokens, wpe):\n    return wpe[1 : n_tokens + 1]"
    )
    started, run = [], scoring._run_sandboxed

    def measured(argv, read_only, limits, *rest):
        started.append(limits.cpu_seconds)
        returned = run(argv, read_only, limits, *rest)
        if spent and isinstance(returned, tuple):
            return returned[0], {**returned[1], "cpu_seconds": limits.cpu_seconds}
        return returned

    monkeypatch.setattr(scoring, "_run_sandboxed", measured)
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")[
        "position_embedding"
    ]
    assert verdict.status == "wrong", verdict
    first = started[:2]  # the first run: its visible half, then its hidden half
    if spent:
        assert len(started) == 2, (
            f"a diagnosis pass ran with {started[2:]} s of CPU time after the budget was spent"
        )
    else:
        assert len(started) == 3 and started[2] <= sum(first), started  # it runs, within what is left


def _diagnosed_after_a_hidden_pass_that_spends(hidden_spends: str, folder, monkeypatch) -> tuple[bool, str]:
    """Whether a diagnosis pass ran for a wrong ``position_embedding``, and the reason, when the
    visible pass leaves half a statement's worth of its allowance and the hidden pass spends
    ``"nothing"`` or ``"everything"`` (as their sandboxes report it)."""
    per_call, run, started = 2, scoring._run_sandboxed, []

    def measured(argv, read_only, limits, *rest):
        started.append(limits.cpu_seconds)
        returned = run(argv, read_only, limits, *rest)
        if not isinstance(returned, tuple):
            return returned
        spent = {
            1: limits.cpu_seconds - per_call / 2,
            2: limits.cpu_seconds * (hidden_spends == "everything"),
        }
        return returned[0], {
            **returned[1],
            "cpu_seconds": spent.get(len(started), returned[1].get("cpu_seconds")),
        }

    monkeypatch.setattr(scoring, "_run_sandboxed", measured)
    nb = answer(
        "position_embedding", "def position_embedding(n_tokens, wpe):\n    return wpe[1 : n_tokens + 1]"
    )
    scorer = scoring.Scorer(folder, b"k" * 32, scoring.Limits(2**30, per_call=per_call))
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")[
        "position_embedding"
    ]
    assert verdict.status == "wrong", verdict
    return len(started) > 2, verdict.reason


def test_what_the_hidden_pass_spends_decides_nothing_a_visible_reason_shows(tmp_path, monkeypatch):
    """The diagnosis pass ran on what the first run left of one allowance, so code that read a
    hidden input in the hidden pass could spend it, or not, and so decide whether a visible
    case's reason was made more specific: a bit of the hidden input in a visible reason. Each
    pass now spends from an allowance of its side's (``scoring.Allowances``)."""
    honest, spent = (
        _diagnosed_after_a_hidden_pass_that_spends(spends, tmp_path / spends, monkeypatch)
        for spends in ("nothing", "everything")
    )
    assert honest == spent, (honest, spent)


# A right answer, given only after its call has spent seconds of CPU time where the scores come
# from: the scorer runs alone on the machine (``grader.sandbox.turns``), and an honest chapter
# takes it under half a second in all.
SLOW_RIGHT = """def position_embedding(n_tokens, wpe):
    import sys, time
    if sys.argv[0].endswith("harness.py"):
        start = time.process_time()
        while time.process_time() - start < 3:
            pass
    return wpe[:n_tokens]"""


def test_a_scorer_gets_the_kernels_budget_only_up_to_its_own_maximum():
    """The kernel's budget (``--cpu``, ``--idle``) is sized for a notebook's experiments and
    figures; a scorer's for a few dozen numbers a call."""
    kernel = autograde.kernel_limits(cpu=600, idle=600, memory=2**30, threads=1)
    limits = scoring.Limits.beside(kernel, timeout=900)
    assert (limits.per_call, limits.idle_seconds) == (scoring.MAX_PER_CALL, scoring.MAX_IDLE)
    small = scoring.Limits.beside(
        autograde.kernel_limits(cpu=3, idle=1, memory=2**30, threads=1), timeout=900
    )
    assert small.idle_seconds == 1  # a smaller budget is kept
    # and a statement stopped at twice its CPU limit of wall-clock time leaves half of it to the rest
    assert small.per_call == 0.25
    sleepy = scoring.Limits.beside(
        autograde.kernel_limits(cpu=15, idle=10, memory=2**30, threads=1), timeout=900
    )
    assert (sleepy.per_call, sleepy.idle_seconds) == (2.5, 10)


def test_a_sleeping_statement_leaves_the_rest_of_the_notebook_its_time_asleep(tmp_path):
    """A CI run's sleeper (``--idle 10``, so a scorer's 10 s asleep): its one sleeping statement
    was stopped at 10 s of wall-clock time, twice its 5 s of CPU time, when the process's time
    asleep had run out too (its start and earlier statements count), so the scorer ended and every
    exercise after it scored "timeout". An earlier short sleep makes that certain; a statement now
    gets half the time asleep at most, and the rest of the notebook runs."""
    kernel = autograde.kernel_limits(cpu=15, idle=10, memory=2**30, threads=1)
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits.beside(kernel, timeout=900))
    sleeper = insert_after("decode", "import time\ntime.sleep(2)\nwhile True:\n    time.sleep(1)")
    verdicts = scorer.score(sleeper, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "sleeper")
    assert verdicts and all(v.ok for v in verdicts.values()), verdicts


def test_a_right_answer_that_spends_the_scorers_time_loses_its_points(tmp_path, monkeypatch):
    """A function that burned CPU time only where the scores come from, then answered right, kept
    its points while the scorer held the machine alone: up to a third of ``--cpu`` a call (20 s at
    the default), for every case. Past the scorer's own maximum (1 s here; ``MAX_PER_CALL`` is
    five) its call is stopped and the exercise scores zero, saying why."""
    monkeypatch.setattr(scoring, "MAX_PER_CALL", 1.0)
    kernel = autograde.kernel_limits(cpu=60, idle=60, memory=2**30, threads=1)
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits.beside(kernel, timeout=900))
    verdicts = scorer.score(
        answer("position_embedding", SLOW_RIGHT), nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory"
    )
    slow = verdicts["position_embedding"]
    assert slow.status == "timeout" and not slow.ok and "ran longer than 1 s" in slow.reason, slow
    # ``embed`` calls it too; the rest keep their points
    assert all(v.ok for grade_id, v in verdicts.items() if grade_id not in ("position_embedding", "embed")), (
        verdicts
    )


# ---- the fifth review ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_file_changed_in_place_while_it_is_graded_changes_nothing(tmp_path, monkeypatch):
    """A folder graded in place (an nbgrader exchange's inbound, which ``trust_ctime`` allows for)
    that the student can still write: the grader read the file again at each step (cleaned when
    nbgrader's turn came, hashed for the hidden cases' seed minutes later, hashed again when kept),
    so what was graded, what the cases were drawn for and what was recorded could be three
    different files. Here the file is swapped, deterministically, just before each of those steps:
    all of them must be the file as it was listed."""
    from test_grading import CPU, ONE_BASED, TIMEOUT

    from grader import autograde, gradebook

    folder = tmp_path / "class" / "mallory" / ASSIGNMENT
    folder.mkdir(parents=True)
    notebook = folder / "embeddings.ipynb"
    nbformat.write(solution(), notebook)
    original = notebook.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    swaps = [nbformat.writes(answer("encode", ONE_BASED)).encode() + b" " * n for n in range(3)]
    seeds = tmp_path / "seeds"

    def swapping(module, name, swap, record=None):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            notebook.write_bytes(swap)  # the student's write, between the listing and this step
            if record:
                with open(seeds, "a") as f:
                    f.write(kwargs[record] + "\n")
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    swapping(clean, "clean_file", swaps[0])
    swapping(scoring.Scorer, "job", swaps[1], record="submission")
    swapping(autograde, "_unit", swaps[2])
    out = tmp_path / "out"
    autograde.autograde(tmp_path / "class", out, jobs=1, timeout=TIMEOUT, cpu=CPU, progress=False)
    rows = [row for (student, _), row in read_grades(out).items() if student == "mallory"]
    assert rows and all(r["status"] == "graded" and r["score"] == r["max_score"] for r in rows), rows
    assert seeds.read_text().split() == [digest]  # the cases were drawn for the file listed
    with gradebook.Gradebook(out) as book:
        (unit,) = book.submissions().values()
    assert unit.sha256 == digest  # and that is the file recorded
    kept = nbformat.read(out / "autograded" / "mallory" / ASSIGNMENT / "embeddings.ipynb", as_version=4)
    listed = solution()
    assert (
        kept.cells[index_of(kept, "encode-answer")].source
        == listed.cells[index_of(listed, "encode-answer")].source
    )


LEAK = "leak424242"  # what a student's code would carry out of a hidden case


def _right_answers(exercise_id: str, seed: int = 1234):
    exercise = exercises.get(exercise_id)
    cases = exercise.cases(seed)
    answers = {}
    for c in cases:
        if c.raises:
            answers[c.name] = {"error": f"{c.raises.errors[0]}: {c.raises.mentions}"}
        else:
            answers[c.name] = {"output": wire.encode(exercise.reference(**c.inputs))}
    return exercise, cases, answers


def _hidden_answer(exercise, case, how: str) -> dict:
    """A wrong answer to hidden ``case`` that carries ``LEAK`` (or its number) in a free-form field."""

    def expected():
        return np.asarray(exercise.reference(**case.inputs))

    return {
        "own-error-class": lambda: {"error": f"E_{LEAK}{'x' * 300}: nothing here"},
        "forged-line": lambda: {"error": "ValueError: nothing here", "line": f"3: {LEAK}"},
        "forged-timeout": lambda: {"timeout": 424242.0},
        "unsendable-own-class": lambda: {
            "error": f"TypeError: returned Secret_{LEAK}, not an array or number"
        },
        "unsendable-sized-dtype": lambda: {
            "error": "TypeError: returned array of <U424242, not an array or number"
        },
        "forged-impure": lambda: {
            "output": wire.encode(expected()),
            "impure": f"changed its argument `{LEAK}` in place",
        },
        "empty-array-of-chosen-shape": lambda: {"output": wire.encode(np.zeros((0, 424242), np.int64))},
        "values-off-by-a-chosen-number": lambda: {
            "output": wire.encode(expected().astype(np.float64) + 424242)
        },
        "a-chosen-value-where-nan-is-not": lambda: {
            "output": wire.encode(np.where(expected() == expected().flat[0], np.nan, 424242.0))
        },
        "unreadable": lambda: {"output": {"array": {"dtype": LEAK, "shape": [1], "b64": ""}}},
        "own-error-class-where-it-must-raise": lambda: {"error": f"E_{LEAK}: nothing here"},
        "a-chosen-text": lambda: {"output": {"value": LEAK * 7}},
        "a-chosen-separator": lambda: {"output": {"value": "leak".join(exercise.reference(**case.inputs))}},
        "floored-at-a-chosen-number": lambda: {
            "output": wire.encode(np.maximum(expected(), np.sort(expected(), axis=None)[2] + 1e-3))
        },
    }[how]()


@pytest.mark.parametrize(
    ("exercise_name", "how"),
    [
        ("encode", "own-error-class"),
        ("encode", "forged-line"),
        ("encode", "forged-timeout"),
        ("encode", "unsendable-own-class"),
        ("encode", "unsendable-sized-dtype"),
        ("embed", "forged-impure"),
        ("encode", "empty-array-of-chosen-shape"),
        ("embed", "values-off-by-a-chosen-number"),
        ("embed", "a-chosen-value-where-nan-is-not"),
        ("encode", "unreadable"),
        ("encode", "own-error-class-where-it-must-raise"),
        ("decode", "a-chosen-text"),
        ("decode", "a-chosen-separator"),
        ("embed", "floored-at-a-chosen-number"),
    ],
)
def test_a_hidden_cases_reason_carries_nothing_the_students_code_chose(exercise_name, how):
    """A hidden case's reason said only an error's type, so that a message could not carry its
    inputs out; but the type's name is the student's own (``type("E_<data>", (Exception,), {})``),
    and the line, the words about an argument changed in place, a timeout, an unsendable output's
    type, a wrong output's shape, its largest error and where, a value where NaN is not, a text's
    first difference, length and a separator put between its characters are all the student's
    code's to choose, on the hidden inputs, as are the numbers a structural explanation finds in a
    wrong output (a floor, a factor). After the case's own
    description, a hidden case's reason now holds nothing of theirs and no number but the
    description's."""
    exercise_id = f"{ASSIGNMENT}/{exercise_name}"
    exercise, cases, answers = _right_answers(exercise_id)
    must_raise = how.endswith("where-it-must-raise")
    case = next(c for c in cases if c.hidden and bool(c.raises) == must_raise)
    answers[case.name] = _hidden_answer(exercise, case, how)
    table = references.for_grading(exercise_id, exercise, cases)
    verdict = compare.grade(exercise_id, cases, answers, table)
    assert not verdict.ok and verdict.case == case.name, verdict
    said = verdict.reason.removeprefix(f"hidden case ({case.describe}): ")
    assert said != verdict.reason, verdict.reason
    numbers = set(compare.NUMBER.findall(said)) - set(compare.NUMBER.findall(case.describe))
    assert "424242" not in said and "leak" not in said and not numbers, said


def test_where_the_scorer_stopped_tells_nothing_the_students_code_chose():
    """The reason for a case with no answer said in which cell the scorer stopped: the last cell
    line on the pipe, which the student's code writes as it likes (or makes true, with ``os._exit``
    in the chosen one of thousands of cells), having read the hidden inputs from the job it was
    handed. That was a dozen bits of every submission's hidden inputs in grades.csv."""
    program = [{"index": i, "source": "pass"} for i in range(4000)]
    program.append({"probe": 0, "exercise": f"{ASSIGNMENT}/encode", "calls": [{"case": "hidden-x"}]})
    said = set()
    for chosen in (17, 2345, None):
        lines = [b'{"cell": 0}'] + ([f'{{"cell": {chosen}}}'.encode()] if chosen is not None else [])
        for returncode in (0, scoring.TIMED_OUT, -9):
            for capped in (False, True):
                run = scoring.Run.parse(b"\n".join(lines), returncode, program, capped)
                said.add((chosen is None, returncode, capped, run.missing()))
    by_cell = {}
    for _, returncode, capped, reason in said:
        by_cell.setdefault((returncode, capped), set()).add(reason)
    assert all(len(reasons) == 1 for reasons in by_cell.values()), by_cell
    assert not any(
        str(n) in reason for reasons in by_cell.values() for _, reason in reasons for n in (17, 2345)
    )


def test_nbgraders_own_feedback_shows_a_verdicts_text_as_text(tmp_path):
    """formgrader's copy is inert, but the verdict went into nbgrader's gradebook as the answer
    cell's comment, and nbgrader's own feedback (formgrader's "Generate Feedback", or
    ``nbgrader generate_feedback`` with the config the grader writes in OUT) renders a comment as
    markdown with its HTML kept: a visible case's error message, the student's text, became a live
    ``<img onerror>`` or ``<script>`` in a page the instructor's Jupyter server serves."""
    from nbconvert.filters import markdown2html
    from nbgrader.api import Gradebook

    db = tmp_path / "gradebook.db"
    course.new_gradebook(db)
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment(ASSIGNMENT)
        gb.add_notebook("embeddings", ASSIGNMENT)
        gb.add_grade_cell("encode", "embeddings", ASSIGNMENT, max_score=1, cell_type="code")
        gb.add_solution_cell("encode-answer", "embeddings", ASSIGNMENT)
        gb.add_student("mallory")
        gb.add_submission(ASSIGNMENT, "mallory")
    markup = '<img src=x onerror="alert(1)"> <script>alert(2)</script> [link](javascript:alert(3))'
    reason = f"case 'hamlet': your function raised ValueError: {markup}\nsecond line <b onclick=alert(4)>"
    row = results.Row("mallory", ASSIGNMENT, "encode", 0, 1, "wrong", reason)
    formgrader.copy(db, "mallory", [formgrader.Unit("mallory", ASSIGNMENT, "embeddings", [row], {}, None, 0)])
    with Gradebook(f"sqlite:///{db}") as gb:
        comment = gb.find_comment("encode-answer", "embeddings", ASSIGNMENT, "mallory").comment
    shown = markdown2html(comment)  # as nbgrader's feedback template renders it
    assert "&lt;img" in shown and "&lt;script" in shown, shown  # the text is all there, as text
    assert [code for code in live_code(f"<div>{shown}</div>") if "alert(" in code] == [], shown
    assert "<script" not in shown and "<img" not in shown, shown


def test_only_the_notebooks_to_be_graded_are_read_into_scratch_space(tmp_path):
    """A folder's notebooks are copied once into scratch space (above), and only those to be
    graded: a student's folder of notebooks that are never graded (nested too deep, superseded by a
    later copy) takes no scratch space, and no budget of the class's, so no one's files can crowd
    out another's."""
    root = tmp_path / "class"
    for name in ["ann/embeddings.ipynb", "ann/embeddings-1.ipynb", "bob/embeddings.ipynb"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    for i in range(50):  # never graded: deeper than <student>/<assignment>/
        deep = root / "ann" / "x" / f"y{i}" / "embeddings.ipynb"
        deep.parent.mkdir(parents=True)
        deep.write_text("{}")
    found = submissions.find(root, {"embeddings": ASSIGNMENT}, tmp_path / "scratch")
    assert sorted(found.by_student) == ["ann", "bob"]
    copies = sorted((tmp_path / "scratch").rglob("*.ipynb"))
    assert len(copies) == 2 and {sub.path for subs in found.by_student.values() for sub in subs} == set(
        copies
    )
    assert all(root not in sub.path.parents for subs in found.by_student.values() for sub in subs)


# Reads every case's inputs from the job the harness was handed (its path is in sys.argv), and
# fails a VISIBLE case with a hidden case's text in the message, which a visible case shows whole.
FROM_THE_JOB = """import pickle, sys
def encode(text, stoi):
    for arg in sys.argv:
        if arg.startswith("--job="):
            with open(arg[6:], "rb") as f:
                job = pickle.load(f)
            for item in job["program"]:
                for call in item.get("calls", ()):
                    if item.get("name") == "encode" and call["case"].startswith("hidden-"):
                        raise ValueError("LEAK:" + repr(pickle.loads(call["inputs"])["text"]))
    return np.array([stoi[ch] for ch in text], dtype=np.int64)"""


# An ``embed``, as text the integrity scan cannot read (rot13), and ways to run it that the scan
# did not see (red team, rounds two and three: with lib's code in the text, each gave full marks
# and no finding).
EMBED = "def embed(ids, wte, wpe):\n    return wte[ids] + wpe[: ids.shape[-1]]\n"
HIDDEN_EMBED = "import codecs\nTEXT = codecs.decode({!r}, 'rot13')\n".format(codecs.encode(EMBED, "rot13"))
TEXT_ROUTES = {
    "exec": "exec(TEXT)",
    "timeit": "import timeit\ntimeit.timeit('global embed\\n' + TEXT, globals=globals(), number=1)",
    "pydoc.locate": "import pydoc\npydoc.locate('built' + 'ins.ex' + 'ec')(TEXT, globals())",
    "logging.config": "import logging.config\n"
    "logging.config.BaseConfigurator({}).resolve('built' + 'ins.ex' + 'ec')(TEXT, globals())",
    "vars()": "B = vars()['__buil' + 'tins__']\n(B.exec if hasattr(B, 'exec') else B['ex' + 'ec'])(TEXT, globals())",
    "a module written and imported": "import os, sys, tempfile\nhome = tempfile.mkdtemp()\n"
    "open(os.path.join(home, 'mine.py'), 'w').write(TEXT)\nsys.path.insert(0, home)\nfrom mine import embed",
    "the harness's own cell magic": "get_ipython().run_cell_magic('capture', '', TEXT)",
    "print.__self__": "getattr(print.__self__, 'ex' + 'ec')(TEXT, globals())",
    "dataclasses' helper": "import dataclasses\n"
    "dataclasses._create_fn('f', [], ['global embed'] + TEXT.splitlines(), globals=globals())()",
}
# Ways to run code that did not come from text compiled in the process, or to reach the harness's
# objects, or another program: refused, so what depends on them never runs (``embed`` stays
# undefined), each with its reason.
REFUSED_ROUTES = {
    "code.replace": (
        "exec(compile(TEXT, 'x', 'exec').replace(co_filename='<cell 1>'))",
        "makes a code object",
    ),
    "marshal": ("import marshal\nexec(marshal.loads(marshal.dumps(compile(TEXT, 'x', 'exec'))))", "marshal"),
    "a syntax tree": ("import ast\nexec(compile(ast.parse(TEXT), 'x', 'exec'))", "syntax tree"),
    "gc": ("import gc\nif gc.get_objects():\n    exec(TEXT)", "lists every object"),
    "another program": (
        "import subprocess, sys\nif subprocess.run([sys.executable, '-c', 'pass']).returncode == 0:\n    exec(TEXT)",
        "another program",
    ),
}


def _embed_cell(nb) -> int:
    return next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "embed-answer"
    )


@pytest.mark.parametrize("route", TEXT_ROUTES)
def test_text_compiled_at_run_time_goes_to_the_grader_with_its_cell(tmp_path, route):
    """What a program runs cannot be known by reading it. Every route above ends in a compile of
    text, which the harness's audit hook (``grader.audit``) sends to the grader with the cell that
    ran it, for the integrity scan to read (``autograde.Examined.ran``); the score is unchanged."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=10))
    nb = answer("embed", HIDDEN_EMBED + TEXT_ROUTES[route])
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status == "graded", verdict
    assert any("def embed(ids, wte, wpe):" in ran.text and ran.cell == _embed_cell(nb) for ran in verdict.ran)


@pytest.mark.parametrize("route", REFUSED_ROUTES)
def test_code_that_did_not_come_from_text_compiled_here_is_refused(tmp_path, route):
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=10))
    code, reason = REFUSED_ROUTES[route]
    nb = answer("embed", HIDDEN_EMBED + code)
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status != "graded", verdict
    assert any(reason in ran.reason and ran.cell == _embed_cell(nb) for ran in verdict.ran), verdict.ran


# An ``embed`` in pure Python, as rot13'd text, run in another interpreter of the job's process
# (NumPy loads once per process), with its inputs and output passed through a file.
PURE_EMBED = (
    "def embed(ids, wte, wpe):\n    if ids and isinstance(ids[0], list):\n        return [embed(r, wte, wpe) for r in ids]\n"
    "    return [[w + p for w, p in zip(wte[i], wpe[t])] for t, i in enumerate(ids)]\n"
)
IN_ANOTHER_INTERPRETER = (
    "import codecs, os, pickle, tempfile\n"
    f"TEXT = codecs.decode({codecs.encode(PURE_EMBED, 'rot13')!r}, 'rot13')\n"
    "def embed(ids, wte, wpe):\n"
    "    p = os.path.join(tempfile.mkdtemp(), 'io.pkl')\n"
    "    with open(p, 'wb') as f:\n        pickle.dump((ids.tolist(), wte.tolist(), wpe.tolist()), f)\n"
    "    run(f'import pickle\\nargs = pickle.load(open({p!r}, \"rb\"))\\n' + TEXT + f'\\npickle.dump(embed(*args), open({p!r}, \"wb\"))')\n"
    "    with open(p, 'rb') as f:\n        return np.array(pickle.load(f), dtype=wte.dtype)\n"
)
INTERPRETERS = {
    "_xxsubinterpreters": "import _xxsubinterpreters as I\ndef run(code):\n    i = I.create()\n    I.run_string(i, code)\n    I.destroy(i)\n",
    "_testcapi": "import _testcapi\ndef run(code):\n    _testcapi.run_in_subinterp(code)\n",
}


@pytest.mark.parametrize("route", INTERPRETERS)
def test_no_code_runs_in_another_interpreter_in_the_scorer(tmp_path, route):
    """An audit hook is its own interpreter's: text run in a sub-interpreter was compiled with no
    event the harness's hook saw (red team, thirteenth round: full marks, nothing in ``ran``, so
    no finding). CPython's test modules are not in the sandbox (``sandbox.bwrap.hidden``:
    ``_testcapi`` makes an interpreter with no audit event at all), and the hook refuses any
    other interpreter made (``grader.audit``)."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=10))
    nb = answer("embed", INTERPRETERS[route] + IN_ANOTHER_INTERPRETER)
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status != "graded", verdict


# A C extension the student compiled (``embed`` through the C API: ``wte[ids] + wpe[:T]``), its
# ``.so`` gzipped and base64'd in the notebook, written to the scratch folder and loaded.
NATIVE_EMBED = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *embed(PyObject *self, PyObject *args) {
    PyObject *ids, *wte, *wpe;
    if (!PyArg_ParseTuple(args, "OOO", &ids, &wte, &wpe)) return NULL;
    PyObject *shape = PyObject_GetAttrString(ids, "shape");
    PyObject *upto = PySlice_New(NULL, PyTuple_GetItem(shape, PyTuple_Size(shape) - 1), NULL);
    PyObject *rows = PyObject_GetItem(wte, ids), *positions = PyObject_GetItem(wpe, upto);
    PyObject *out = PyNumber_Add(rows, positions);
    Py_DECREF(shape); Py_DECREF(upto); Py_DECREF(rows); Py_DECREF(positions);
    return out;
}
static PyMethodDef methods[] = {{"embed", embed, METH_VARARGS, ""}, {NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "native", NULL, -1, methods};
PyMODINIT_FUNC PyInit_native(void) { return PyModule_Create(&module); }
"""


def test_no_native_code_the_student_wrote_runs_in_the_scorer(tmp_path):
    """Machine code is text no scan reads: a compiled ``embed`` (or lib's code put through Cython)
    scored full marks with nothing in ``Verdict.ran`` (red team, thirteenth round). A job's
    process maps no new code once the student's code runs (``sandbox.bwrap.job_filter``)."""
    compiler = shutil.which("cc") or pytest.skip("no C compiler to build the attack with")
    (tmp_path / "native.c").write_text(NATIVE_EMBED)
    include = sysconfig.get_paths()["include"]
    built = tmp_path / "native.so"
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-Os",
            "-s",
            f"-I{include}",
            str(tmp_path / "native.c"),
            "-o",
            str(built),
        ],
        check=True,
    )
    blob = base64.b64encode(gzip.compress(built.read_bytes())).decode()
    attack = (
        "import base64, gzip, importlib.util, os, tempfile\n"
        f"path = os.path.join(tempfile.mkdtemp(), 'native.so')\n"
        f"with open(path, 'wb') as f:\n    f.write(gzip.decompress(base64.b64decode({blob!r})))\n"
        "native = importlib.util.module_from_spec(importlib.util.spec_from_file_location('native', path))\n"
        "def embed(ids, wte, wpe):\n    return native.embed(ids, wte, wpe)\n"
    )
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=10))
    verdict = scorer.score(answer("embed", attack), nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "m")[
        "embed"
    ]
    assert verdict.status != "graded", verdict


def test_no_other_program_starts_in_the_scorer_even_by_a_route_nobody_audits(tmp_path):
    """``multiprocessing.util.spawnv_passfds`` starts a program with no audit event (red team,
    third round: a child interpreter computed the answers, full marks, no finding); the harness
    loads a seccomp filter that refuses ``execve`` in each job's process
    (``sandbox.bwrap.job_filter``)."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=10))
    spawn = (
        "import multiprocessing.util, os, sys\n"
        "pid = multiprocessing.util.spawnv_passfds(os.fsencode(sys.executable), ['python', '-c', 'pass'], [])\n"
        "if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0:  # the other program ran\n"
        "    exec(TEXT)"
    )
    verdict = scorer.score(
        answer("embed", HIDDEN_EMBED + spawn), nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "m"
    )
    assert verdict["embed"].status != "graded", verdict["embed"]


# Every route to a new process from Python's own code, the child writing a byte on ``w`` and ending
# at once (red team, ninth and tenth rounds: ``_posixsubprocess.fork_exec`` runs ``preexec_fn`` in
# its child with no audit event, and that process outlived its job and answered the next).
FORK_ROUTES = {
    "fork": "pid = libc.fork()",
    "_posixsubprocess": (
        "import _posixsubprocess\n"
        "def child():\n    os.write(w, b'c')\n    os._exit(0)\n"
        "pid = _posixsubprocess.fork_exec([b'x'], [b'/nonexistent'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, child, False)"
    ),
    "clone": "pid = libc.syscall(56, 17, 0, 0, 0, 0)",  # SYS_clone with SIGCHLD: a fork
    "vfork": "pid = libc.syscall(58)",
    "clone3": "pid = libc.syscall(435, ctypes.byref((ctypes.c_uint64 * 11)(0, 0, 0, 0, 17)), 88)",
}
CONFINED = (
    "import ctypes, os, sys\nimport numpy\nfrom grader import harness\n"
    "harness._load_native(os.path.dirname(numpy.__file__))\nharness._confine(sys.argv[1])\n"
    "libc = ctypes.CDLL(None, use_errno=True)\nr, w = os.pipe()\n"
)
AFTER_ROUTE = (
    "\nif pid == 0:\n    os.write(w, b'c')\n    os._exit(0)\n"
    "os.close(w)\nprint('a process ran' if os.read(r, 1) else 'refused')"
)


def _confined(tmp_path, code: str, **env) -> str:
    """What ``code`` prints, run in a new interpreter once it loaded the filter each job's process
    loads (``harness._confine``)."""
    filter_file = tmp_path / "job.bpf"
    filter_file.write_bytes(sandbox.job_filter())
    done = subprocess.run(
        [sys.executable, "-c", CONFINED + code, str(filter_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(course.ROOT), **env},
    )
    return done.stdout.strip() or done.stderr[-500:]


@pytest.mark.parametrize("route", FORK_ROUTES)
def test_a_jobs_process_starts_no_other_process(tmp_path, route):
    """A process started by the student's code runs their code outside their job's limits and
    can outlive it; the job's filter refuses making one by every route the kernel has (``fork``,
    ``vfork``, ``clone`` without ``CLONE_THREAD``, ``clone3``), the audited or not."""
    tried = "try:\n" + textwrap.indent(FORK_ROUTES[route], "    ") + "\nexcept OSError:\n    pid = -1"
    assert _confined(tmp_path, tried + AFTER_ROUTE) == "refused"


def test_a_jobs_process_maps_no_new_code_and_honest_imports_still_work(tmp_path):
    """No memory becomes code under the job's filter (a student's ``.so``: red team, thirteenth
    round), and the standard library's and NumPy's C modules, loaded before it, still import."""
    code = (
        "import mmap, json, decimal, statistics, numpy as np\nrng = np.random.default_rng(0)\n"
        "try:\n    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)\n    print('mapped')\n"
        "except OSError:\n    print('refused', json.dumps(statistics.mean([1, 3])), float(rng.random() < 1))"
    )
    assert _confined(tmp_path, code) == "refused 2 1.0"


def test_threads_still_start_in_a_jobs_process(tmp_path):
    """Threads are no other process: NumPy's BLAS pool and Python's threads start under the job's
    filter (``clone3`` refused with ENOSYS, so the C library falls back to ``clone``, which is
    allowed with ``CLONE_THREAD``)."""
    code = (
        "import threading\nimport numpy as np\n"
        "a = np.arange(250_000, dtype=float).reshape(500, 500) % 7\n"
        "product = a @ a\nseen = []\nthread = threading.Thread(target=seen.append, args=(1,))\n"
        "thread.start()\nthread.join()\n"
        "print(len(os.listdir('/proc/self/task')), seen, bool(np.allclose(product, a.dot(a))))"
    )
    threads, seen, right = _confined(tmp_path, code, OPENBLAS_NUM_THREADS="3").split(" ", 2)
    assert int(threads) >= min(3, os.cpu_count()) and (seen, right) == ("[1]", "True")


def test_text_the_student_writes_as_the_hook_is_bounded_and_flagged():
    """Lines are the student's to write too: text sent past what the hook itself sends (its
    ``MAX_TEXT``) is one finding on every exercise, not megabytes for the grader to scan."""
    program = [{"index": 3, "source": "x = 1"}]
    line = json.dumps({"ran": "x = 1  # " + "a" * 4000, "cell": 3, "line": 1})
    data = "\n".join(f'0 {line[:-1]}, "n": {i}}}' for i in range(100)).encode()
    ran = scoring.Run.parse(data.replace(b"0 ", b""), 0, program).ran
    assert sum(len(r.text) for r in ran) <= audit.MAX_TEXT
    assert ran[-1].reason == "compiled more text at run time than the grader reads" and ran[-1].cell == 0


# lib's own position_embedding (with the validator it calls), verbatim, run from rot13'd text.
LIBS_CODE = "".join(
    inspect.getsource(f) + "\n" for f in (lib._validate.as_float_array, lib.embedding.position_embedding)
)
HIDDEN_LIB = (
    "import codecs, pydoc\nFLOAT_DTYPES = (np.float32, np.float64)\n"
    f"pydoc.locate('built' + 'ins.ex' + 'ec')(codecs.decode({codecs.encode(LIBS_CODE, 'rot13')!r}, 'rot13'), globals())"
)
# The same text defining lib's position_embedding as ``_impl``, which the notebook's position_embedding
# calls by name: the scan finds the copy through the exercise's own cell, once it reads the text
# (red team, fifth round: that finding, on the notebook's cell, was dropped as not from the text).
CALLER = (
    "import codecs, pydoc\nFLOAT_DTYPES = (np.float32, np.float64)\n"
    "pydoc.locate('built' + 'ins.ex' + 'ec')(codecs.decode("
    f"{codecs.encode(LIBS_CODE.replace('def position_embedding(', 'def _impl('), 'rot13')!r}, 'rot13'), globals())\n"
    "def position_embedding(n_tokens, wpe):\n    return _impl(n_tokens, wpe)\n"
)
HONEST_EXTRAS = (
    "import dataclasses, collections, os, tempfile, timeit\n"
    "@dataclasses.dataclass\nclass Pair:\n    a: int\n"
    "Named = collections.namedtuple('Named', 'a b')\n"
    "seconds = timeit.timeit(lambda: encode('to be', stoi), number=10)\n"
    "seconds = timeit.timeit('encode(\"to be\", stoi)', globals=globals(), number=10)\n"
    "kept = os.path.join(tempfile.mkdtemp(), 'x.npy')\nnp.save(kept, np.ones(3))\nback = np.load(kept)"
)


def flagged_entries() -> list[tuple[str, str]]:
    """The students ``test_libs_code_run_from_text_is_found_and_honest_timing_is_not`` grades with
    ``--zero-flagged`` (``conftest.flagged_class``)."""
    students = {
        "honest": insert_after("encode", HONEST_EXTRAS),
        "mallory": answer("position_embedding", HIDDEN_LIB),
        "hider": answer("embed", HIDDEN_EMBED + TEXT_ROUTES["pydoc.locate"]),  # her own code, hidden
        "caller": answer("position_embedding", CALLER),
    }
    return [(f"class/{student}/embeddings.ipynb", nbformat.writes(nb)) for student, nb in students.items()]


@pytest.mark.slow
def test_libs_code_run_from_text_is_found_and_honest_timing_is_not(flagged_class):
    """Through the whole grading path, with --zero-flagged: lib's code verbatim, run from text the
    scan cannot read, is near-identical to lib's at run time, and zeroed; timing with ``timeit``
    (a callable or a string), dataclasses, named tuples and ``np.load`` are no finding (red team,
    third round: the first audit hook flagged them and zeroed honest students)."""
    flagged = flagged_class.flagged
    assert not [row for row in flagged if row["student"] == "honest"], flagged
    grades = {(r["student"], r["exercise"]): r for r in flagged_class.of(ASSIGNMENT)}
    assert all(row["status"] == "graded" for (student, _), row in grades.items() if student == "honest")
    assert any(
        row["student"] == "mallory"
        and "at run time, in the scorer, in text compiled by cell" in row["reason"]
        and "near-identical to lib.position_embedding" in row["reason"]
        for row in flagged
    ), flagged
    assert grades[("mallory", "position_embedding")]["status"] == "integrity"
    called = grades[("caller", "position_embedding")]
    assert (
        called["status"] == "integrity" and "near-identical to lib.position_embedding" in called["reason"]
    ), called
    hidden = grades[("hider", "embed")]  # honest code times functions and makes dataclasses, never answers
    assert hidden["status"] == "integrity" and "text compiled by cell" in hidden["reason"], hidden
    assert "defines embed" in hidden["reason"], hidden


def test_no_reason_carries_a_hidden_input_out_through_a_visible_case(tmp_path):
    """The hidden inputs were in the job the scorer's process was handed before the student's
    first statement ran, so the student's code could fail a visible case, whose reason shows the
    error message whole (300 characters), with them. Now the visible cases are asked in processes
    of their own, closed before any process that holds a hidden input starts
    (``Scorer.run_all``)."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=2))
    verdicts = scorer.score(
        answer("encode", FROM_THE_JOB), nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "eve"
    )
    assert "LEAK:" not in verdicts["encode"].reason, verdicts["encode"].reason


# ``encode`` keeps every text it is given (a hidden case's too, in a process that asks one) and
# answers wrong in a process whose job asks a hidden case, so that the diagnosis pass asks about a
# hidden case of it; ``decode`` fails every call with all it can find that its job does not show
# it as visible: the texts ``encode`` kept, and every hidden call's inputs in the jobs handed over.
RELAY = """import builtins, pickle, sys
def _calls():
    for arg in sys.argv:
        if arg.startswith("--job="):
            with open(arg[6:], "rb") as f:
                job = pickle.load(f)
            for item in job["program"]:
                for call in item.get("calls", ()):
                    yield call, call.get("hidden") or call["case"].startswith("hidden-")
def encode(text, stoi):
    builtins.kept = [*getattr(builtins, "kept", []), text]
    hidden = any(hidden for _, hidden in _calls())
    return np.array([stoi[ch] for ch in text], dtype=np.int64) + hidden
def decode(ids, itos):
    shown = [pickle.loads(c["inputs"]).get("text") for c, hidden in _calls() if not hidden]
    found = [t for t in getattr(builtins, "kept", []) if t not in shown]
    found += [pickle.loads(c["inputs"]) for c, hidden in _calls() if hidden]
    raise ValueError("LEAK:" + repr(found))"""


def test_no_reason_carries_a_hidden_input_out_through_another_exercise_or_the_diagnosis(tmp_path):
    """What a hidden case's call was given, kept in the process (an earlier exercise's function
    keeps it) or read from the jobs of the diagnosis pass (which asks about a hidden case of
    ``encode`` and a visible one of ``decode``), cannot reach the visible case of another
    exercise, whose error the reason shows whole: the visible cases of every pass run in
    processes that hold no hidden input."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=2))
    nb, released = answer("decode", "pass", answer("encode", RELAY)), nbformat.read(RELEASED, as_version=4)
    job = scorer.job(nb, released, ASSIGNMENT, "eve")
    probe = next(item["probe"] for item in job.items if item.get("grade_id") == "encode")
    hidden = [case.inputs["text"] for case in job.cases[probe] if case.hidden]
    verdicts = scorer.score_jobs([job])[0]
    for verdict in verdicts.values():
        assert not [text for text in hidden if repr(text) in verdict.reason], verdict.reason
    assert "LEAK:" in verdicts["decode"].reason, verdicts["decode"]  # the channel is there, and empty
    assert verdicts["encode"].status == "wrong" and "hidden" in verdicts["encode"].reason, verdicts["encode"]


def test_a_grader_note_cannot_be_forged_by_an_output():
    """The grader's notes in a notebook ("[grader: the kernel died ...]", an output left out, a
    notebook nbgrader could not run) were stderr streams, shown on the feedback page exactly as
    the student's own prints: a student could print a note of the grader's, or send a stream of
    that name. Now a note is a stream only the grader names ``grader`` (a kernel's stream of any
    name but stdout or stderr is renamed as it arrives), and the page shows it apart."""
    from grader import outputs
    from grader.execute import ResilientExecute

    executor = ResilientExecute()
    executor._capped, executor._output_bytes, executor.clear_before_next_output = False, 0, False
    kept = []
    for name in ("grader", "stderr"):
        msg = {"msg_type": "stream", "header": {"msg_type": "stream"}, "parent_header": {}}
        executor.output(
            kept, {**msg, "content": {"name": name, "text": f"[grader: forged by {name}]\n"}}, None, 0
        )
    assert {out["name"] for out in kept} <= {"stdout", "stderr"}, kept
    nb = solution()
    code = next(cell for cell in nb.cells if cell.cell_type == "code")
    code.outputs = [*kept, outputs.note("the grader's own")]
    page = feedback.render(nb, nb, [], "t")
    assert page.count('<p class="note">') == 1 and '<p class="note">[grader: the grader&#x27;s own]' in page
    assert "forged by grader]" in page and "forged by stderr]" in page  # shown, as the student's output
    assert '<p class="note">[grader: forged' not in page


# A process left behind by one notebook's code, outside every audit event (``_posixsubprocess``
# forks and runs ``preexec_fn`` before the ``execve`` the sandbox refuses, which then never comes):
# it waits until the next notebook's ``lib`` is lent, then writes that notebook's answers (given
# here: the test computes them outside; a student's would compute them with code that lives only
# in the first notebook, which is never compared with the second chapter's ``lib``).
LEFT_BEHIND = """import _posixsubprocess, os, sys, time
def _answer_the_next():
    libs = next(a[7:] for a in sys.argv if a.startswith("--libs="))
    fd = int(next(a[5:] for a in sys.argv if a.startswith("--fd=")))
    while not os.path.exists(os.path.join(libs, "1")):
        time.sleep(0.001)
    for line in LINES:
        os.write(fd, line.encode())
    os._exit(0)
_r, _w = os.pipe()
_posixsubprocess.fork_exec([b"/nonexistent"], [b"/nonexistent"], False, (), None, None, -1, -1, -1, -1,
                           -1, -1, _r, _w, False, False, -1, None, None, None, -1, _answer_the_next, False)"""


def _right_lines(scorer, nb, released, assignment: str, student: str, job: int) -> list[str]:
    """What the harness would send back for every case of ``nb``'s exercises if they were right:
    the references themselves, as job ``job``'s lines."""
    lines = []
    scored = scorer.job(nb, released, assignment, student)
    for item in scored.items:
        if "exercise" not in item or item["kind"] == "choice":
            continue
        cases = scored.cases[item["probe"]]
        table = references.for_grading(item["exercise"], exercises.get(item["exercise"]), cases)
        for case in cases:
            if case.raises is not None:
                answer = {"error": f"{case.raises.errors[0]}: {case.raises.mentions}"}
            else:
                answer = {"output": wire.encode(table[f"{case.name}::expected"])}
            lines.append(f"{job} " + json.dumps({"probe": item["probe"], "case": case.name, **answer}) + "\n")
    return lines


@pytest.mark.slow
def test_a_process_one_notebook_leaves_behind_answers_nothing_of_the_next(tmp_path):
    """One scorer process runs a student's notebooks in turn (``lending.chains``), and the grader
    took every line that came while a notebook was the newest as that notebook's: a process left
    by the notebook before, which no audit event shows, gave the released stubs of chapter 5
    full marks (red team, ninth round). The harness now adopts every process its notebooks leave
    (a child subreaper) and lends nothing more while one is alive: the rest run in a new process."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=5))
    toy = "05-worked-toy"
    blank = nbformat.read(course.ROOT / "chapters" / toy / "worked_toy.ipynb", as_version=4)
    lines = _right_lines(scorer, blank, blank, toy, "m", job=1)
    ferry = insert_after("decode", f"LINES = {lines!r}\n{LEFT_BEHIND}")
    assert lending.chains([ASSIGNMENT, toy]) == [[ASSIGNMENT, toy]]  # one process, in this order
    jobs = [
        scorer.job(ferry, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "m"),
        scorer.job(blank, blank, toy, "m"),
    ]
    first, second = scorer.score_jobs(jobs)
    assert first["embed"].ok, first["embed"]  # the notebook that left the process is graded as usual
    assert lines and not [name for name, verdict in second.items() if verdict.ok], second


# Reads the next notebook's job (its cases' inputs, the hidden ones in the hidden pass) from the
# path the harness was given, having asked for it as the harness does: with them, this notebook's
# code could compute that notebook's answers and write them as its lines, or leave them in the
# scratch folder for a lookup there (no code for its scan to read).
PEEK = """import os, sys, time
_jobs = [a[6:] for a in sys.argv if a.startswith("--job=")]
_fd = int([a for a in sys.argv if a.startswith("--fd=")][0][5:])
for _line in ("lend 1", "lend 1 ", "lend 1 " + "0" * 32):
    os.write(_fd, (_line + "\\n").encode())
time.sleep(0.5)
if any(os.path.exists(path) for path in _jobs[1:]):
    def embed(ids, wte, wpe):
        raise RuntimeError("the next notebook's inputs were readable")"""


@pytest.mark.slow
def test_no_notebook_reads_the_inputs_of_the_next_before_its_turn(tmp_path):
    """The jobs of one scorer process were all written before it started, and a line ``lend 1``
    from the student's code had the second lent at once, so the first notebook's code could read
    the second's cases and answer them (red team, ninth round). A job is now written where the
    harness finds it only when its ``lib`` is lent, which only the harness can ask for, once every
    notebook before it has ended."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=5))
    toy = "05-worked-toy"
    blank = nbformat.read(course.ROOT / "chapters" / toy / "worked_toy.ipynb", as_version=4)
    peeking = insert_after("embed-answer", PEEK)
    jobs = [
        scorer.job(peeking, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "m"),
        scorer.job(blank, blank, toy, "m"),
    ]
    first, _ = scorer.score_jobs(jobs)
    assert first["embed"].ok, first["embed"]


# Opens the harness's own memory and its end of the grader's ``go`` pipe from a job's process.
PARENT = """import os, sys
go = int([a for a in sys.argv if a.startswith("--go=")][0][5:])
opened = []
for name in (f"fd/{go}", "mem"):
    try:
        os.close(os.open(f"/proc/{os.getppid()}/{name}", os.O_RDONLY | os.O_NONBLOCK))
        opened.append(name)
    except OSError:
        pass
raise RuntimeError(f"opened: {opened}")"""


@pytest.mark.slow
def test_a_jobs_process_cannot_read_the_harness(tmp_path):
    """The harness holds what asks for the next notebook (``harness._lent``), and every process of
    the sandbox runs as one user, so a job's code could open ``/proc/<harness>/mem`` (red team,
    ninth round): the harness is not dumpable, so none of its files in ``/proc`` opens."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=5))
    run = scorer.run([{"index": 0, "source": PARENT}], ASSIGNMENT)
    assert run.failed == {0: "RuntimeError: opened: []"}, run.failed


# Half a line on the grader's pipe, and the job's process ends with nothing after it.
HALF_LINE = """import os, sys
fd = int([a for a in sys.argv if a.startswith("--fd=")][0][5:])
os.write(fd, b'0 {"cell": 0, "x": ')
os._exit(0)"""


def test_half_a_line_left_on_the_pipe_hides_no_request_for_the_next_notebook(tmp_path):
    """The harness's ``lend`` line was read as the end of a line a job's code began and left
    unfinished: the next notebook was never lent, and the grader waited for the whole process's
    time asleep before running it in a new one, the first notebook marked as out of time (red
    team, tenth round). The harness begins its request on a line of its own."""
    limits = scoring.Limits(2**30, per_call=5, idle_seconds=1)
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, limits)
    programs = [
        ([{"index": 0, "source": HALF_LINE}], ASSIGNMENT),
        ([{"index": 0, "source": "x = 1"}], ASSIGNMENT),
    ]
    first, second = scorer.run_all(programs)
    assert first.returncode == 0 and second.done, (first, second)


# Opens for writing the memory of every other process a job's process sees: the sandbox's pid 1
# (bubblewrap's init, which stays to reap) runs as the same user and is dumpable.
OTHERS = """import os
opened = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) != os.getpid():
        try:
            os.close(os.open(f"/proc/{pid}/mem", os.O_RDWR))
            opened.append(pid)
        except OSError:
            pass
raise RuntimeError(f"opened: {opened}")"""


def test_a_jobs_process_cannot_write_into_any_other_process(tmp_path):
    """Whatever writes into the memory of the sandbox's pid 1 (red team, tenth round) runs code
    there, in a process no job's limits, filter or end reach (``harness._left_behind`` sees only
    the harness's own descendants): it could answer the next notebook, as a process left behind
    did (ninth round). Each job's process is in a Landlock domain of its own, so the kernel lets
    it trace, and open the memory of, no process outside it (``harness.apart``)."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=5))
    run = scorer.run([{"index": 0, "source": OTHERS}], ASSIGNMENT)
    assert run.failed == {0: "RuntimeError: opened: []"}, run.failed
