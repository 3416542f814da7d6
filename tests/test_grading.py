"""The instructor's grading path: ``python -m grader release`` and ``python -m grader autograde``.

The end-to-end tests grade one synthetic class, built from chapter 1's real notebooks, with real
nbgrader on 2 workers (a module fixture, about a minute); each test then reads its outputs. The
scores come from the scorer (``grader.scoring``); tests/test_forging.py tries to forge them.
"""

import ast
import copy
import csv
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import autograde_command, class_folder
from nbformat.v4 import new_code_cell, new_notebook

import lib.embedding
from grader import integrity, program, results, scoring, submissions

ROOT = Path(__file__).parents[1]
ASSIGNMENT = "01-embeddings"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / "embeddings.ipynb"
RELEASED = ROOT / "chapters" / ASSIGNMENT / "embeddings.ipynb"
TIMEOUT = 8
# A notebook's CPU budget: ample for chapter 1 (its solution takes about 3 s; test_sandbox_class
# grades it at 15 s too), and it is what stops the student who ignores interrupts (``deaf``): at
# the default 60 s, that one student cost a minute of CPU and two of a busy machine's wall clock,
# at 25 s still 10 s more than at 15.
CPU = 15


def grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True)


def autograde(submitted: Path, out: Path) -> subprocess.CompletedProcess:
    options = ("--jobs", "2", "--timeout", str(TIMEOUT), "--cpu", str(CPU))
    done = grader("autograde", str(submitted), "--out", str(out), *options)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def read_grades(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "grades.csv") as f:
        return {(row["student"], row["exercise"]): row for row in csv.DictReader(f)}


# ---- building students ---------------------------------------------------------------------------


def solution():
    return nbformat.read(SOLUTION, as_version=4)


def index_of(nb, grade_id: str) -> int:
    return next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def answer(name: str, source: str, nb=None):
    """The solution notebook with the student's own code for exercise ``name``."""
    nb = nb or solution()
    nb.cells[index_of(nb, f"{name}-answer")].source = source
    return nb


def insert_after(grade_id: str, source: str, nb=None):
    nb = nb or solution()
    nb.cells.insert(index_of(nb, grade_id) + 1, new_code_cell(source))
    return nb


ONE_BASED = "def encode(text, stoi):\n    return np.array([stoi[ch] for ch in text]) + 1"
OFF_BY_ONE = "def embed(ids, wte, wpe):\n    return token_embedding(ids, wte) + wpe[1 : ids.shape[-1] + 1]"
SIN_COS_SWAPPED = """def sinusoidal_positions(n_tokens, d):
    angles = np.arange(n_tokens)[:, None] / 10000 ** (np.arange(0, d, 2) / d)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = np.cos(angles), np.sin(angles)
    return table"""
ENDLESS = "def encode(text, stoi):\n    while True:\n        pass"
IGNORES_INTERRUPT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
MEMORY_HOG = "def token_embedding(ids, wte):\n    np.ones(2**40)\n    return wte[ids]"
LIB_EMBED = "def embed(ids, wte, wpe):\n    return lib.embed(ids, wte, wpe)"
FAKE_ANSWERS = """def encode(text, stoi):
    from IPython.display import display

    display({"application/vnd.forwardpass.answers+json": {"exercise": "01-embeddings/encode", "answers": {}}}, raw=True)
    return np.array([stoi[ch] for ch in text], dtype=np.int64)"""
READS_REFERENCES = f"""def decode(ids, itos):
    open("{ROOT}/grader/references/visible/01-embeddings/decode.safetensors", "rb").read()
    return "".join(itos[int(i)] for i in ids)"""
PROBE = f"""import os, socket
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    print("network: open")
except OSError as err:
    print("network: blocked", err)
for target in ["{ROOT}/pwned", "{ROOT / "grader" / "pwned"}", "/usr/pwned-by-a-student"]:
    try:
        open(target, "w").write("x")
        print("write: open", target)
    except OSError:
        print("write: blocked", target)
print("solutions:", os.listdir("{ROOT}/solutions") if os.path.isdir("{ROOT}/solutions") else [])
private = os.path.join("{ROOT}/grader", "priv" + "ate")
print("private:", os.listdir(private) if os.path.isdir(private) else [])
open("scratch.txt", "w").write("the working folder is writable")"""


def endless_and_hungry():
    """An endless loop in ``encode`` and in a cell of its own, memory bombs in ``token_embedding``
    and in a cell of its own."""
    nb = answer("token_embedding", MEMORY_HOG, answer("encode", ENDLESS))
    return insert_after(
        "decode", "while True:\n    pass", insert_after("decode", "hog = bytearray(2**34)", nb)
    )


def probe_with_deleted_tests():
    """Tries the sandbox's walls; ``embed``'s test cell deleted, ``decode``'s emptied (nbgrader
    restores both)."""
    nb = insert_after("decode", PROBE)
    nb.cells[index_of(nb, "decode")].source = "pass"
    del nb.cells[index_of(nb, "embed")]
    return nb


CLASS = {
    "perfect": solution,
    "blank": lambda: nbformat.read(RELEASED, as_version=4),
    "mistakes": lambda: answer(
        "sinusoidal_positions", SIN_COS_SWAPPED, answer("embed", OFF_BY_ONE, answer("encode", ONE_BASED))
    ),
    "endless": endless_and_hungry,
    "deaf": lambda: insert_after("decode", IGNORES_INTERRUPT),
    "dies": lambda: insert_after("token_embedding", "import os\nos._exit(1)"),
    "probe": probe_with_deleted_tests,
    "cheats": lambda: answer(
        "decode", READS_REFERENCES, answer("encode", FAKE_ANSWERS, answer("embed", LIB_EMBED))
    ),
    "patcher": lambda: insert_after("decode", "np.allclose = lambda *args, **kwargs: True"),
}
# (exercise, status, words in the reason) for each exercise that must not get full marks.
EXPECTED = {
    "mistakes": [
        ("encode", "wrong", "one too large"),
        ("embed", "wrong", "off-by-one"),
        ("sinusoidal_positions", "wrong", "sin and cos are swapped"),
    ],
    "endless": [
        ("encode", "timeout", f"longer than {min(TIMEOUT, scoring.MAX_PER_CALL):g} s"),  # the scorer's limit
        ("token_embedding", "wrong", "MemoryError"),
        ("embed", "wrong", "MemoryError"),
    ],
    "probe": [],
    # encode displays a fake set of answers from IPython, which the scorer does not have; embed
    # calls lib's own embed, which the scorer does not lend.
    # decode reads the stored references, which the scorer cannot see.
    "cheats": [("embed", "wrong", ""), ("encode", "wrong", "IPython"), ("decode", "wrong", "")],
}
# (student, exercise, words in the finding) that integrity.csv must report; scores are kept.
FLAGGED = {
    ("cheats", "embed", "lib's own embed"),
    ("cheats", "decode", "private file of the course"),
    ("patcher", "embed", "changes numpy.allclose"),
    ("probe", "embed", "private file of the course"),
}
# Students an LMS export names its own way (Canvas), in the same zip.
CANVAS = {
    "smithjohn_1234_5678_embeddings.ipynb": solution,
    "doejane_LATE_999_111_embeddings (1).ipynb": CLASS["blank"],
}


def write_class(archive: Path) -> None:
    """The class as a zip: ``class/<student>/embeddings.ipynb`` and Canvas-named files."""
    with zipfile.ZipFile(archive, "w") as zf:
        for student, build in CLASS.items():
            zf.writestr(f"class/{student}/embeddings.ipynb", nbformat.writes(build()))
        for name, build in CANVAS.items():
            zf.writestr(f"class/{name}", nbformat.writes(build()))
        zf.writestr("class/broken/embeddings.ipynb", '{"cells": [')
        zf.writestr("class/stray/homework.ipynb", nbformat.writes(new_notebook()))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    write_class(base / "class.zip")
    autograde(base / "class.zip", base / "out")
    return base, read_grades(base / "out")


@pytest.fixture(scope="module")
def exercises() -> dict[str, float]:
    nb = solution()
    return {
        c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


# ---- the environment ---------------------------------------------------------------------------


def test_reading_notebooks_compiles_no_iri_grammar():
    """nbformat validates with jsonschema, whose optional IRI checker (rfc3987-syntax) compiles 35
    Lark grammars when imported: 1-2 s of CPU for every grader command and book build, for a
    format no notebook schema uses. The Makefile's environment leaves it out."""
    code = "import sys, nbformat, grader.autograde; nbformat.validate(nbformat.v4.new_notebook())\n"
    code += "print(sorted({'rfc3987_syntax', 'lark'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---- release ---------------------------------------------------------------------------------------


def test_release_check_passes_on_the_committed_tree():
    done = grader("release", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


# What only the pages' figures need: a graded notebook's kernel never imports it (matplotlib's pyplot
# was more than half a second of CPU in every notebook graded).
PRESENTATION = ("matplotlib", "bookkit")


def imported_while_grading(tree: ast.AST) -> list[str]:
    """The modules a cell imports outside its ``if not GRADING:`` blocks."""
    if isinstance(tree, ast.If) and ast.unparse(tree.test) == "not GRADING":
        return [name for node in tree.orelse for name in imported_while_grading(node)]
    if isinstance(tree, ast.Import):
        return [alias.name for alias in tree.names]
    if isinstance(tree, ast.ImportFrom):
        return [tree.module or ""]
    return [name for node in ast.iter_child_nodes(tree) for name in imported_while_grading(node)]


def test_grading_imports_nothing_only_the_figures_need():
    for notebook in [*ROOT.glob("chapters/*/*.ipynb"), *ROOT.glob("solutions/*/*.ipynb")]:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                names = imported_while_grading(ast.parse(cell.source))
                assert not [n for n in names if n.split(".")[0] in PRESENTATION], (notebook.name, names)


def test_released_notebooks_hold_no_hidden_tests():
    for notebook in ROOT.glob("chapters/*/*.ipynb"):
        assert "BEGIN HIDDEN TESTS" not in notebook.read_text(), notebook


def test_a_released_notebook_keeps_the_class_text_and_not_the_readers(tmp_path):
    """A student is in a class: a chapter's parts for readers on their own (the book's folds,
    grader.audiences) are left out of their notebook, the class's kept, the markers dropped."""
    from nbformat.v4 import new_markdown_cell, new_notebook

    from grader import release

    marked = "Checks.\n<!-- class only -->\nSubmit.\n<!-- end class only -->\n<!-- reader only -->\nUnfold.\n<!-- end reader only -->"
    path = tmp_path / "chapter.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(marked)]), path)
    released = nbformat.reads(release._student_file(path).decode(), as_version=4)
    assert released.cells[0].source == "Checks.\nSubmit."


def test_a_readers_notebook_keeps_the_readers_text_and_checks_alone(tmp_path):
    """The reader edition's launch button opens ``reader/``: the same notebook with the parts for
    readers on their own, and the reader's check (a concept check answers at once)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from grader import release

    marked = "Checks.\n<!-- class only -->\nSubmit.\n<!-- end class only -->\n<!-- reader only -->\nUnfold.\n<!-- end reader only -->"
    setup = "import lib\nfrom grader.check import CheckFailed, check"
    path = tmp_path / "chapter.ipynb"
    cells = [new_markdown_cell(marked), new_code_cell(setup), new_code_cell('check("x/q", answer_q)')]
    nbformat.write(new_notebook(cells=cells), path)
    read = nbformat.reads(release._student_file(path, "reader").decode(), as_version=4)
    assert read.cells[0].source == "Checks.\nUnfold."
    assert read.cells[1].source == "import lib\nfrom grader.check import CheckFailed, reader_check as check"
    nbformat.write(new_notebook(cells=[cells[2]]), path)  # a check without its import: refused
    with pytest.raises(release.ReleaseError, match="does not import it"):
        release._student_file(path, "reader")


def test_the_readers_notebooks_are_the_chapters_for_readers():
    """Every chapter has its reader's notebook, whose checks are the reader's; the book's own
    notebooks are there too, so that every launch button of the reader edition opens a file."""
    chapters = sorted(p.relative_to(ROOT) for p in ROOT.glob("chapters/*/*.ipynb"))
    assert sorted(p.relative_to(ROOT / "reader") for p in ROOT.glob("reader/chapters/*/*.ipynb")) == chapters
    for path in ROOT.glob("reader/chapters/*/*.ipynb"):
        text = path.read_text()
        assert "reader_check as check" in text and "nbgrader validate" not in text, path
    assert {p.name for p in ROOT.glob("reader/book/*.ipynb")} == {p.name for p in ROOT.glob("book/*.ipynb")}


# ---- submissions and integrity (fast) ----------------------------------------------------------------


def test_submission_layouts_and_lms_names(tmp_path):
    """Students' folders (with or without a chapter folder) beside an LMS export's flat files; a
    file's LMS name counts only where it has no folder of its own (see test_redteam for why)."""
    known = {"embeddings": "01-embeddings", "sampling": "04-sampling"}
    files = [
        "alice/embeddings.ipynb",
        "bob/01-embeddings/embeddings.ipynb",
        "smithjohn_1234_5678_embeddings.ipynb",
        "smithjohn_1234_5690_embeddings-1.ipynb",
        "doejane_LATE_999_111_sampling (2).ipynb",
        "01-embeddings_carol_attempt_2026-11-02-10-00-00_embeddings.ipynb",
        "dave/notes.ipynb",
        "loose.ipynb",
        "alice/.ipynb_checkpoints/embeddings-checkpoint.ipynb",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found = submissions.find(tmp_path, known, tmp_path / "scratch")
    summary = {
        s: [(x.notebook, x.assignment, x.path.name) for x in subs] for s, subs in found.by_student.items()
    }
    assert summary == {
        "alice": [("embeddings", "01-embeddings", "embeddings.ipynb")],
        "bob": [("embeddings", "01-embeddings", "embeddings.ipynb")],
        "1234": [("embeddings", "01-embeddings", "smithjohn_1234_5690_embeddings-1.ipynb")],
        "999": [("sampling", "04-sampling", "doejane_LATE_999_111_sampling (2).ipynb")],
        "carol": [
            (
                "embeddings",
                "01-embeddings",
                "01-embeddings_carol_attempt_2026-11-02-10-00-00_embeddings.ipynb",
            )
        ],
        "dave": [("notes", None, "notes.ipynb")],
    }
    assert sorted((p.file, p.status) for p in found.problems) == [
        ("loose.ipynb", "invalid_submission"),
        ("smithjohn_1234_5678_embeddings.ipynb", "duplicate_submission"),
    ]


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "zip"])
def test_a_notebook_under_a_hidden_name_is_named_not_dropped(tmp_path, archive):
    """Every name that started with "." was dropped at every level, so a student's folder named
    ``.alice`` or ``...`` vanished: no row, no warning. Only what tools leave (checkpoints, macOS's
    metadata, half-saved copies) is dropped now; a notebook under any other hidden name is refused
    with a row that says why, and is not taken for its folder's submission."""
    known = {"embeddings": "01-embeddings"}
    names = [
        "alice/embeddings.ipynb",
        "alice/.old/embeddings.ipynb",
        ".bob/embeddings.ipynb",
        ".../embeddings.ipynb",
        "carol/.embeddings.ipynb",
        "carol/embeddings.ipynb",
        "alice/.ipynb_checkpoints/embeddings-checkpoint.ipynb",
        "__MACOSX/alice/._embeddings.ipynb",
        "carol/.~embeddings.ipynb",
    ]
    base = tmp_path / "class"
    for name in names:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("{}")
    if archive:
        with zipfile.ZipFile(tmp_path / "class.zip", "w") as zf:
            for name in names:
                zf.write(base / name, name)
    found = submissions.find(tmp_path / "class.zip" if archive else base, known, tmp_path / "scratch")
    assert {s: [x.file for x in subs] for s, subs in found.by_student.items()} == {
        "alice": ["alice/embeddings.ipynb"],
        "carol": ["carol/embeddings.ipynb"],
    }
    refused = sorted(p.file for p in found.problems)
    assert refused == sorted(
        [
            ".../embeddings.ipynb",
            ".bob/embeddings.ipynb",
            "alice/.old/embeddings.ipynb",
            "carol/.embeddings.ipynb",
        ]
    ), refused
    assert all(p.status == "invalid_submission" and "hidden" in p.reason for p in found.problems)


@pytest.mark.parametrize("wrapped", ["", "export/"])
def test_one_students_folder_of_chapter_folders_is_theirs(tmp_path, wrapped):
    """One student graded alone, in nbgrader's layout with several chapters (the first to submit, a
    late one): their folder was taken for an archive's top folder and each chapter's folder for a
    student (``01-embeddings`` got 12/12, alice nothing, and no warning)."""
    known = {"embeddings": "01-embeddings", "sampling": "04-sampling"}
    for name in ["alice/01-embeddings/embeddings.ipynb", "alice/04-sampling/sampling.ipynb"]:
        (tmp_path / "class" / wrapped / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "class" / wrapped / name).write_text("{}")
    found = submissions.find(tmp_path / "class", known, tmp_path / "scratch")
    assert {s: sorted(x.assignment for x in subs) for s, subs in found.by_student.items()} == {
        "alice": ["01-embeddings", "04-sampling"]
    }
    assert not found.problems


def test_one_students_folder_regraded_alone_with_student_grades_only_theirs(tmp_path):
    """A folder that holds only Alice's folder was taken for an export's folder, so a file in it
    with an LMS name was graded for the student that name gives (Bob). Her folder holds a notebook
    named as a chapter's, so it is a student's, and every file in it hers; ``--student alice``
    (the instructor guide says so) grades Alice's notebooks only."""
    from grader import autograde, settings

    alice = tmp_path / "regrade" / "alice"
    alice.mkdir(parents=True)
    for name in ("embeddings.ipynb", "01-embeddings_bob_attempt_2026-11-02-10-00-00_embeddings.ipynb"):
        (alice / name).write_text("{}")
    known, term = {"embeddings": "01-embeddings"}, settings.load(tmp_path / "grading")
    everyone, _ = autograde._find(alice.parent, tmp_path, known, term, autograde.Selection())
    assert sorted(everyone) == ["alice"]
    only, _ = autograde._find(alice.parent, tmp_path, known, term, autograde.Selection(frozenset({"alice"})))
    assert {s: sorted(sub.notebook for sub in subs) for s, subs in only.items()} == {
        "alice": ["01-embeddings_bob_attempt_2026-11-02-10-00-00_embeddings", "embeddings"]
    }  # the file with Bob's LMS name is in Alice's folder: hers, and no chapter's notebook


@pytest.mark.parametrize(
    "files",
    [
        ["mallory/01-embeddings/embeddings.ipynb", "mallory/01-embeddings/alice/embeddings.ipynb"],
        ["mallory/01-embeddings/alice/embeddings.ipynb"],
        ["mallory/01-embeddings/alice/embeddings.ipynb", "mallory/04-sampling/alice/sampling.ipynb"],
        ["mallory/embeddings.ipynb", "mallory/alice/embeddings.ipynb"],
        ["01-embeddings/mallory/embeddings.ipynb", "01-embeddings/mallory/alice/embeddings.ipynb"],
        ["export/mallory/01-embeddings/alice/embeddings.ipynb"],
    ],
    ids=["own-and-alice", "only-alice", "alice-in-two-chapters", "flat", "export-by-chapter", "wrapped"],
)
def test_a_class_folder_with_one_students_folder_so_far_grades_nobody_else_from_it(tmp_path, files):
    """The top folders were the longest common start of every notebook's folders: with one
    student's folder in the class so far (the first to submit, a cron grading as they arrive),
    that start ended inside it, and a folder ``alice/`` its student made there named the student
    her file was graded for, a grade kept after (red team round 3, R8). A folder is a student's by
    what it holds: the one above a chapter's folder, or one that holds a chapter's notebook."""
    known = {"embeddings": "01-embeddings", "sampling": "04-sampling"}
    for name in files:
        (tmp_path / "class" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "class" / name).write_text("{}")
    found = submissions.find(tmp_path / "class", known, tmp_path / "scratch")
    assert set(found.by_student) <= {"mallory"}
    assert {p.student for p in found.problems} == {"mallory"}, found.problems
    assert all("inside mallory's folder" in p.reason for p in found.problems), found.problems


def scan(*sources: str, exercises=("embed",)) -> list[tuple[tuple, str]]:
    nb = new_notebook(cells=[new_code_cell("import numpy as np\nimport lib"), *map(new_code_cell, sources)])
    return [
        (f.exercises, f.reason)
        for f in integrity.scan(nb, {"import numpy as np\nimport lib"}, list(exercises))
    ]


@pytest.mark.parametrize(
    "source",
    [
        "def embed(ids, wte, wpe):\n    return lib.embed(ids, wte, wpe)",
        "from lib import embed",
        "embed = lib.embed",
        "from lib import embed as e\ndef embed(*args):\n    return e(*args)",
        "def helper(*args):\n    return lib.embedding.embed(*args)\ndef embed(*args):\n    return helper(*args)",
        "f = getattr(lib, 'em' + 'bed')\ndef embed(*args):\n    return f(*args)",
        "from lib import *",
    ],
)
def test_integrity_flags_lib_own_implementation(source):
    found = scan(source)
    assert found
    assert all(
        exercises == ("embed",) and reason.startswith("uses lib's own embed") for exercises, reason in found
    )


@pytest.mark.parametrize(
    "source",
    [
        "def embed(ids, wte, wpe):\n    return lib.token_embedding(ids, wte) + wpe[: ids.shape[-1]]",
        "def embed(ids, wte, wpe):\n    return wte[ids] + wpe[: ids.shape[-1]]\nassert np.allclose(embed(*x), lib.embed(*x))",
        "x = np.zeros(3)\nx[0] = 1\nx += 1",
        "%timeit np.zeros(3)",
        "import math\nfrom collections import Counter\nimport matplotlib.pyplot as plt\nfrom lib import softmax",
    ],
)
def test_integrity_leaves_honest_code_alone(source):
    assert scan(source) == []


@pytest.mark.parametrize(
    ("helper", "call"),
    [
        (
            "class Sum:\n    def of(self, {x}, y):\n        return {x}(y, y, y) if {x} is None else {x} + y\n",
            "Sum().of",
        ),
        (
            "def outer(a):\n    def inner({x}):\n        return {x}(a, a, a) if {x} is None else {x} + a\n    return inner\n",
            "outer(0)",
        ),
        ("add = lambda {x}, y: {x}(y, y, y) if {x} is None else {x} + y\n", "add"),
    ],
    ids=["method", "nested-function", "lambda"],
)
def test_a_parameter_is_not_the_notebooks_name_it_shadows(helper, call):
    """A method's (a nested function's, a lambda's) parameter ``x`` is not the notebook's ``x``
    (red team, fourth round: a class method's ``x`` next to ``x = lib.block(...)`` was read as a use
    of lib's ``block`` and zeroed an honest student); the same code using the notebook's ``x`` is."""
    embed = f"def embed(ids, wte, wpe):\n    return {call}(wte[ids], wpe[: ids.shape[-1]])"
    assert scan("x = lib.embed\n" + helper.format(x="x") + embed) == []
    found = scan("x = lib.embed\n" + helper.format(x="z").replace("z(", "x(") + embed)
    assert any(reason.startswith("uses lib's own embed") for _, reason in found), found


NESTINGS = {
    "if": "if True:\n{}",
    "else": "if False:\n    pass\nelse:\n{}",
    "try": "try:\n{}\nexcept Exception:\n    pass",
    "except": "try:\n    raise ValueError\nexcept ValueError:\n{}",
    "with": "import contextlib\nwith contextlib.nullcontext():\n{}",
    "for": "for _ in range(1):\n{}",
    "while": "while True:\n{}\n    break",
    "match": "match 1:\n    case _:\n    {}",
}


@pytest.mark.parametrize("nesting", NESTINGS)
def test_libs_code_nested_in_a_compound_statement_is_near_identical(nesting):
    """A ``def`` under ``if True:`` (or ``try``, ``with``, ``for``...) binds the notebook's name as
    one at the top does; the scan saw only top-level definitions, and skipped functions of an
    exercise's name elsewhere (red team, fourth round: lib's code so nested had no finding)."""
    body = textwrap.indent(POSITION_EMBEDDING, "    " * (2 if nesting == "match" else 1))
    code = NESTINGS[nesting].format(body.removeprefix("    ") if nesting == "match" else body)
    names = assert_near_identical_to_libs_position_embedding(code)
    honest = solution()
    cell = honest.cells[index_of(honest, "position_embedding-answer")]
    cell.source = "if True:\n" + textwrap.indent(cell.source, "    ")
    assert not integrity.review(
        honest, nbformat.read(RELEASED, as_version=4), solution(), names, ASSIGNMENT
    ).findings


@pytest.mark.parametrize("before", ["", "\n", " \n\t\n", "\r\n"], ids=["none", "blank", "spaces", "crlf"])
def test_a_cell_magics_body_is_read_as_code_after_blank_lines(before):
    """IPython skips a cell's blank first lines before it looks for a cell magic; the scan and the
    scorer's program did not, so after one blank line a ``%%capture`` cell's body was a string to
    the scan and code to the scorer (red team, third round: lib's code verbatim, no finding)."""
    cell = before + "%%capture\ndef embed(ids, wte, wpe):\n    return lib.embed(ids, wte, wpe)"
    assert any(reason.startswith("uses lib's own embed") for _, reason in scan(cell)), scan(cell)
    assert program.python(cell).strip().startswith("def embed(ids, wte, wpe):")


POSITION_EMBEDDING = inspect.getsource(lib.embedding.position_embedding)


@pytest.mark.parametrize(
    "answer_code",
    [
        POSITION_EMBEDDING.replace("def position_embedding", "def _lookup")
        + "\nposition_embedding = _lookup\n",
        POSITION_EMBEDDING.replace("def position_embedding", "def _lookup")
        + "\nposition_embedding = lambda n, w: _lookup(n, w)",
        "class T:\n    @staticmethod\n"
        + textwrap.indent(POSITION_EMBEDDING.replace("def position_embedding", "def run"), "    ")
        + "\nposition_embedding = T.run\n",
    ],
    ids=["rebound", "lambda", "method"],
)
def test_libs_code_under_another_name_is_near_identical_all_the_same(answer_code):
    """The comparison with lib followed only the exercise's own ``def``: lib's function verbatim
    under another name, then bound to the exercise's (red team, third round), had no finding."""
    assert_near_identical_to_libs_position_embedding(answer_code)


def test_libs_code_under_another_name_through_a_wrapper_is_near_identical():
    """lib's function with every name ``n`` read as ``I(n)``, defined as ``_lookup`` and bound to
    the exercise's name: the comparison of a function under another name did not know the
    notebook's wrappers (red team, sixth round)."""
    tree = ast.parse(POSITION_EMBEDDING.replace("def position_embedding", "def _lookup"))
    for node in ast.walk(tree):
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.Name) and isinstance(value.ctx, ast.Load):
                setattr(node, field, ast.Call(ast.Name("I", ast.Load()), [value], []))
            elif isinstance(value, list):
                value[:] = [
                    ast.Call(ast.Name("I", ast.Load()), [v], [])
                    if isinstance(v, ast.Name) and isinstance(v.ctx, ast.Load)
                    else v
                    for v in value
                ]
    wrapped = ast.unparse(ast.fix_missing_locations(tree))
    assert "I(wpe)" in wrapped
    assert_near_identical_to_libs_position_embedding(
        "def I(v):\n    return v\n\n" + wrapped + "\nposition_embedding = _lookup\n"
    )


def test_libs_code_for_one_exercise_inside_anothers_is_near_identical():
    """lib's ``position_embedding`` inside an honest ``token_embedding``, behind a keyword argument
    that ``position_embedding`` passes: ``token_embedding`` was compared only with lib's
    ``token_embedding``, and ``position_embedding`` without it, an exercise, not a helper (red
    team, seventh round)."""
    host = ast.parse(solution().cells[index_of(solution(), "token_embedding-answer")].source).body[0]
    guest = ast.parse(POSITION_EMBEDDING).body[0]
    host.args.args.append(ast.arg("_other"))
    host.args.defaults.append(ast.Constant(None))
    unpack = ast.parse("n_tokens, wpe, start = _other").body[0]
    host.body.insert(
        1, ast.If(ast.parse("_other is not None", mode="eval").body, [unpack, *guest.body[1:]], [])
    )
    nb = answer(
        "token_embedding",
        "from lib._validate import as_float_array\n" + ast.unparse(ast.fix_missing_locations(host)),
    )
    nb = answer(
        "position_embedding",
        "def position_embedding(n_tokens, wpe, start=0):\n"
        "    return token_embedding(None, None, _other=(n_tokens, wpe, start))\n",
        nb,
    )
    assert_libs_position_embedding_found(nb)


def test_libs_code_split_between_two_exercises_is_near_identical():
    """lib's ``position_embedding``, its first half inside an honest ``token_embedding`` behind a
    keyword argument, its second half in ``position_embedding``, which calls the first: neither
    function alone holds enough of it (red team, eighth round), what ``position_embedding`` reaches
    does."""
    host = ast.parse(solution().cells[index_of(solution(), "token_embedding-answer")].source).body[0]
    guest = ast.parse(POSITION_EMBEDDING).body[0].body[1:]  # without the docstring
    host.args.args.append(ast.arg("_other"))
    host.args.defaults.append(ast.Constant(None))
    first = [*ast.parse("n_tokens, wpe, start = _other").body, *guest[:3], ast.parse("return wpe").body[0]]
    host.body.insert(1, ast.If(ast.parse("_other is not None", mode="eval").body, first, []))
    nb = answer(
        "token_embedding",
        "from lib._validate import as_float_array\n" + ast.unparse(ast.fix_missing_locations(host)),
    )
    second = "wpe = token_embedding(None, None, _other=(n_tokens, wpe, start))\n" + ast.unparse(guest[3:])
    nb = answer(
        "position_embedding",
        "def position_embedding(n_tokens, wpe, start=0):\n" + textwrap.indent(second, "    "),
        nb,
    )
    assert_libs_position_embedding_found(nb)


def test_a_notebook_the_copy_scan_cannot_finish_in_time_is_a_finding_on_every_exercise(monkeypatch):
    """The comparison with lib's code runs within a time budget: code made to take the canonical
    form minutes (red team, eighth round: nested functions) stops it, with a finding on every
    exercise, instead of holding up the class's grading. A budget of 0 s stands for such code."""
    nb = solution()
    names = [t.name for t in results.test_cells(nb)]
    monkeypatch.setattr(integrity, "SCAN_SECONDS", 0)
    findings = integrity.review(
        nb, nbformat.read(RELEASED, as_version=4), solution(), names, ASSIGNMENT
    ).findings
    assert [(f.exercises, f.reason) for f in findings] == [
        (tuple(names), "the copy scan stopped after 0 s (honest code takes a second or two): read the code")
    ]


def assert_near_identical_to_libs_position_embedding(answer_code: str) -> list[str]:
    """``answer_code`` (with the validator lib's code calls imported) as the answer to
    ``position_embedding`` is found near-identical to lib's; the notebook's exercise names."""
    nb = answer("position_embedding", "from lib._validate import as_float_array\n" + answer_code)
    return assert_libs_position_embedding_found(nb)


def assert_libs_position_embedding_found(nb) -> list[str]:
    """``nb`` has a finding "near-identical to lib.position_embedding" on that exercise; returns
    the notebook's exercise names."""
    names = [t.name for t in results.test_cells(nb)]
    review = integrity.review(nb, nbformat.read(RELEASED, as_version=4), solution(), names, ASSIGNMENT)
    assert any(
        f.exercises == ("position_embedding",)
        and f.reason.startswith("near-identical to lib.position_embedding")
        for f in review.findings
    ), review.findings
    return names


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("np.allclose = lambda *a, **k: True", "changes numpy.allclose"),
        ("import grader.check\ngrader.check.record = print", "changes grader.check.record"),
        ("setattr(lib, 'embed', print)", "changes lib.?"),
        ("import sys\nsys.modules['lib'] = None", "changes sys.modules"),
        ("import importlib", "uses importlib"),
        ("eval('1')", "uses eval"),
        ("__import__('os')", "uses __import__"),
        ("open('grader/references/hidden/x.safetensors')", "reads a private file of the course"),
        # The scorer's own check that a pure function leaves its arguments alone, patched where it runs:
        # an impure function then passes it (the harness's modules are importable only there).
        (
            "try:\n    import watch\n    watch.interfered = lambda *a: None\nexcept ImportError:\n    pass",
            "imports the scorer's own watch module",
        ),
        ("import sys\nsys._getframe(1).f_locals['self'].watch.interfered = print", "reaches into f_locals"),
        # lib's implementation written to a file at run time (its text hidden) and imported: the
        # scan never reads the module (red team: 12/12 and no finding, where the same code in a
        # cell had three).
        (
            "import codecs, sys, tempfile\nhome = tempfile.mkdtemp()\n"
            "open(home + '/mytools.py', 'w').write(codecs.decode(TEXT, 'rot13'))\n"
            "sys.path.insert(0, home)\nimport mytools",
            "imports mytools, which is neither the standard library, NumPy nor the course's",
        ),
        ("from .mytools import embed", "imports .mytools"),
        ("import runpy\nmine = runpy.run_path('/tmp/mytools.py')", "imports runpy, which can run code"),
        # Ways the standard library runs code it is given as text (red team, second round: each of
        # them ran lib's embed, rot13'd in a string, to full marks with no finding).
        ("import code\ncode.InteractiveInterpreter(globals()).runsource(TEXT)", "imports code, which"),
        ("import cProfile\ncProfile.runctx(TEXT, globals(), globals())", "imports cProfile, which"),
        ("import bdb\nbdb.Bdb().run(TEXT, globals())", "imports bdb, which"),
        (
            "import types, codeop\nf = types.FunctionType(codeop.Compile()(TEXT, 'x', 'exec'), {})",
            "imports codeop",
        ),
        ("import builtins\ngetattr(builtins, 'ex' + 'ec')(TEXT)", "imports builtins, which"),
        ("import site\nsite.addsitedir('/tmp/mine')", "imports site, which"),
        ("import sys\nsys.path.insert(0, '/tmp/mine')\nimport this", "uses sys.path"),
    ],
)
def test_integrity_flags_tampering_for_every_exercise(source, reason):
    found = scan(source, exercises=("embed", "encode"))
    assert any(exercises == ("embed", "encode") and said.startswith(reason) for exercises, said in found), (
        found
    )


def test_an_honest_scratch_cells_standard_imports_are_no_finding():
    """types, gc and dis run nothing by themselves; what they could do is refused in the scorer
    (red team, fifth round: this cell was a finding on every exercise)."""
    source = (
        "from types import SimpleNamespace\nimport gc, dis\nshapes = SimpleNamespace(B=2, T=5)\n"
        "gc.collect()\ndis.dis(len)"
    )
    assert scan(source, exercises=("embed", "encode")) == []


def test_tampering_inside_an_unused_function_voids_nothing():
    assert scan("def never_called():\n    np.allclose = None") == [((), "changes numpy.allclose")]


# ---- the class, graded end to end --------------------------------------------------------------------


@pytest.mark.slow
def test_solution_gets_full_marks_and_blank_gets_zero(graded, exercises):
    _, grades = graded
    for name, points in exercises.items():
        assert grades[("perfect", name)]["status"] == "graded"
        assert float(grades[("perfect", name)]["score"]) == points
        assert grades[("blank", name)]["status"] == "not_attempted"
        assert grades[("blank", name)]["reason"] == "not attempted"
        assert float(grades[("blank", name)]["score"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_mistake_loses_points_on_its_exercise_only(graded, exercises, student):
    _, grades = graded
    expected = {name: (status, words) for name, status, words in EXPECTED[student]}
    for name, points in exercises.items():
        row = grades[(student, name)]
        status, words = expected.get(name, ("graded", ""))
        assert (row["status"], float(row["score"])) == (status, points if status == "graded" else 0), row
        assert words in row["reason"], row


@pytest.mark.slow
def test_deleted_and_edited_test_cells_are_restored(graded, exercises):
    _, grades = graded
    assert all(grades[("probe", name)]["status"] == "graded" for name in exercises)


@pytest.mark.slow
def test_a_dead_kernel_keeps_the_scores_before_it(graded, exercises):
    _, grades = graded
    order = list(exercises)
    cut = order.index("token_embedding") + 1
    assert [grades[("dies", n)]["status"] for n in order[:cut]] == ["graded"] * cut
    assert {grades[("dies", n)]["status"] for n in order[cut:]} == {"kernel_died"}


@pytest.mark.slow
def test_a_cell_that_never_ends_costs_only_itself(graded, exercises):
    """It ignores interrupts: nbgrader's kernel stops answering there, but the scorer runs each
    statement under its own limit and scores the exercises after it. The notebook's CPU budget
    is what ends the kernel."""
    base, grades = graded
    assert {grades[("deaf", n)]["status"] for n in exercises} == {"graded"}
    assert f"used its {CPU} s of CPU time" in (base / "out" / "logs" / "deaf.log").read_text()


@pytest.mark.slow
def test_suspicious_code_is_reported_with_evidence_and_keeps_its_score(graded, exercises):
    base, grades = graded
    assert {grades[("patcher", name)]["status"] for name in exercises} == {"graded"}
    assert "integrity" not in {row["status"] for row in grades.values()}
    with open(base / "out" / "integrity.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["student"] for row in rows} == {student for student, _, _ in FLAGGED}
    for student, exercise, words in FLAGGED:
        assert any(
            r["student"] == student
            and exercise in r["exercises"].split()
            and words in r["reason"]
            and r["code"]
            for r in rows
        ), (student, exercise, words)


@pytest.mark.slow
def test_the_sandbox_blocks_network_writes_and_hidden_files(graded, exercises):
    base, grades = graded
    assert all(grades[("probe", name)]["status"] == "graded" for name in exercises)
    nb = nbformat.read(base / "out" / "autograded" / "probe" / ASSIGNMENT / "embeddings.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "network: blocked" in printed and "network: open" not in printed
    # Writes land in the kernel's own scratch at most (the course may live under /tmp, whose tmpfs
    # is the sandbox's), never on the host.
    assert "write: blocked /usr/pwned-by-a-student" in printed
    assert not (ROOT / "grader" / "pwned").exists()
    assert "solutions: []" in printed and "private: []" in printed
    assert not (ROOT / "pwned").exists() and not Path("/usr/pwned-by-a-student").exists()


@pytest.mark.slow
def test_broken_unknown_and_missing_notebooks_get_rows(graded, exercises):
    _, grades = graded
    assert {grades[("broken", name)]["status"] for name in exercises} == {"invalid_notebook"}
    assert grades[("stray", "homework")]["status"] == "unknown_assignment"
    assert {grades[("stray", name)]["status"] for name in exercises} == {"missing"}


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_code(graded):
    base, _ = graded
    pages = [p for p in (base / "out" / "feedback").glob("*/*.html") if p.name != "index.html"]
    assert len(pages) == len(CLASS) + len(CANVAS) + 1  # every embeddings notebook, broken included
    for page in pages:
        text = page.read_text()
        assert "HIDDEN TESTS" not in text and "record(" not in text, page
    perfect = (base / "out" / "feedback" / "perfect" / f"{ASSIGNMENT}.html").read_text()
    assert "Score: 12 / 12" in perfect
    assert "off-by-one" in (base / "out" / "feedback" / "mistakes" / f"{ASSIGNMENT}.html").read_text()


@pytest.mark.slow
def test_class_gradebook_holds_the_out_of_kernel_scores(graded, exercises):
    from nbgrader.api import Gradebook

    base, grades = graded
    with Gradebook(f"sqlite:///{base / 'out' / 'gradebook.db'}") as gb:
        for student in ("perfect", "blank", "mistakes", "cheats"):
            submission = gb.find_submission(ASSIGNMENT, student)
            expected = sum(float(grades[(student, name)]["score"]) for name in exercises)
            assert submission.score == expected, student


@pytest.mark.slow
def test_running_again_skips_what_is_graded(graded):
    base, grades = graded
    before = (base / "out" / "gradebook.db").stat().st_size
    done = autograde(base / "class.zip", base / "out")
    assert f"{len(CLASS) + len(CANVAS) + 2} notebook(s) already graded" in done.stdout
    assert "graded 0 notebook(s) this run" in done.stdout
    assert read_grades(base / "out") == grades
    assert (base / "out" / "gradebook.db").stat().st_size == before


@pytest.mark.slow
def test_canvas_names_in_a_zip(graded, exercises):
    _, grades = graded
    assert {grades[("1234", name)]["status"] for name in exercises} == {"graded"}
    assert {grades[("999", name)]["status"] for name in exercises} == {"not_attempted"}


@pytest.mark.slow
def test_an_interrupted_run_resumes_without_losing_or_repeating(tmp_path):
    class_folder(tmp_path / "class", {student: solution() for student in ("a", "b")})
    out = tmp_path / "out"
    command = autograde_command(tmp_path / "class", out, "--jobs", "1")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as in a terminal, even when this test runs as a background job (which ignores it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not graded_units(out) and process.poll() is None:  # no deadline: a busy machine is slow
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()[-3000:]
    assert graded_units(out) == {("a", 1)}
    done = autograde(tmp_path / "class", out)
    assert "1 notebook(s) already graded" in done.stdout
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len({r["exercise"] for r in rows})
    assert {r["status"] for r in rows} == {"graded"}
    assert graded_units(out) == {("a", 1), ("b", 1)}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["kill", "terminal-closed"])
def test_kill_and_a_closed_terminal_stop_a_run_as_ctrl_c_does(stop):
    """Inside a run, SIGTERM and SIGHUP raise KeyboardInterrupt, which the run handles as Ctrl-C
    (the test above): finished students kept, the run marked interrupted, scratch removed."""
    from grader import autograde

    with pytest.raises(KeyboardInterrupt), autograde._signals_as_ctrl_c():
        os.kill(os.getpid(), stop)
        time.sleep(5)  # the signal arrives before this ends
    assert signal.getsignal(stop) is not signal.default_int_handler  # restored after the run


def test_a_grading_process_that_crashes_is_graded_again(tmp_path):
    """A worker that a signal ended (as libzmq's abort once did) gets one more try, and its
    student loses nothing; the grader says so."""
    out = tmp_path / "out"
    command = autograde_command(class_folder(tmp_path / "class", {"a": solution()}), out)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker = None
    while worker is None and process.poll() is None:
        worker = next((pid for pid in children(process.pid) if grading(pid, process.pid)), None)
        time.sleep(0.05)
    assert worker is not None, "the run ended before its worker had started a kernel"
    os.kill(worker, signal.SIGABRT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert "a: the grading process ended by signal 6; grading again" in stderr.decode()
    rows = read_grades(out).values()
    assert rows and all(
        row["status"] == "graded" and float(row["score"]) == float(row["max_score"]) for row in rows
    )


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def grading(pid: int, grader: int) -> bool:
    """Whether ``pid`` is a student's grading process (a fork of the grader, with the same command
    line) that has started a kernel."""
    try:
        same = Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{grader}/cmdline").read_bytes()
    except OSError:
        return False
    return same and bool(children(pid))


def graded_units(out: Path) -> set[tuple[str, int]]:
    """(student, complete) of every unit the gradebook holds (read while the grader may write)."""
    if not (out / "grades.sqlite").exists():
        return set()
    with sqlite3.connect(f"file:{out / 'grades.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        try:
            return set(db.execute("SELECT student, complete FROM submissions"))
        except sqlite3.OperationalError:  # the schema is being created
            return set()


def test_ctrl_c_during_a_fork_stops_the_run():
    """A signal that arrives while Python runs its at-fork handlers is not dropped."""
    script = """
import os, signal, sys
from grader.autograde import _fork
os.register_at_fork(before=lambda: os.kill(os.getpid(), signal.SIGINT))  # Ctrl-C mid-fork
try:
    _fork(sys.exit, 0, name="child").join()
except KeyboardInterrupt:
    sys.exit(130)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 130, done.stderr


PARAM_SHAPES = inspect.getsource(lib.param_shapes) + "\n" + inspect.getsource(lib.model.leaves)
MODEL_FORWARD = inspect.getsource(lib.Model.forward)


@pytest.mark.parametrize(
    ("assignment", "name", "answer_code", "copied"),
    [
        (
            "06-cost",
            "count_params",
            "from lib.config import Config\n"
            + PARAM_SHAPES.replace("def param_shapes", "def shapes")
            + "\ndef count_params(config):\n"
            "    return sum(math.prod(shape) for shape in leaves(shapes(config)))\n",
            "lib.param_shapes",
        ),
        (
            "05-worked-toy",
            "toy_forward",
            "class Toy:\n"
            + MODEL_FORWARD
            + "\ndef toy_forward(ids, params):\n    return Toy(params).forward(ids)\n",
            "lib.Model.forward",
        ),
    ],
    ids=["count_params", "toy_forward"],
)
def test_libs_code_that_the_reference_reaches_is_near_identical(assignment, name, answer_code, copied):
    """An exercise whose reference is not a lib function of its own name (``count_params`` sums the
    shapes of ``param_shapes``; ``toy_forward`` is ``Model.forward``) is compared with the lib
    functions its reference reaches (red team, third round, R14: lib's table of shapes pasted
    answered ``count_params`` with no finding)."""
    source_nb = nbformat.read(next((ROOT / "solutions" / assignment).glob("*.ipynb")), as_version=4)
    released = nbformat.read(next((ROOT / "chapters" / assignment).glob("*.ipynb")), as_version=4)
    nb = answer(name, answer_code, copy.deepcopy(source_nb))
    names = [t.name for t in results.test_cells(nb)]
    review = integrity.review(nb, released, source_nb, names, assignment)
    assert any(
        name in f.exercises and f.reason.startswith(f"near-identical to {copied}") for f in review.findings
    ), review.findings
    assert not [f for f in integrity.review(source_nb, released, source_nb, names, assignment).findings]
