"""Forging a score earns nothing: chapter 1's blank notebook plus one extra cell, graded by the real
``python -m grader autograde`` with real nbgrader, with honest neighbours in the same run (the
class several suites share, ``conftest.shared_class``).

Each forger adds one cell to the released notebook, where it helps most: at the top for attacks
on the transport of answers (which the record-era grader read from the notebook's outputs), just
before the test cell it targets for attacks that borrow an implementation. Every one of them works
in the notebook's own kernel (the check there may even print ✔); none earns a point, because the
score comes from the scorer, whose ``lib`` lends chapter 1 nothing, which has no grader, keys,
solutions or references in sight, and whose hidden cases are drawn from a secret made by this run.
"""

import base64
import hashlib
import pickle
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

import lib
from grader import scoring, wire
from grader.exercises import ch01

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01-embeddings"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / "embeddings.ipynb"
RELEASED = ROOT / "chapters" / ASSIGNMENT / "embeddings.ipynb"
FAKE = "application/vnd.forwardpass.answers+json"  # what the record-era grader read from outputs
NAMES = ["encode", "decode", "token_embedding", "position_embedding", "embed", "sinusoidal_positions"]


def fake_payloads() -> str:
    """Display, for every exercise, the payload ``record`` used to emit, with made-up answers."""
    return (
        "from IPython.display import display\n"
        f"for name in {NAMES!r}:\n"
        f"    display({{{FAKE!r}: {{'exercise': '01-embeddings/' + name, 'answers': {{}}}}}}, raw=True)\n"
    )


def lookup_table(student: str) -> str:
    """``embed`` as a table of outputs made with the public lib for the visible cases and for the
    hidden cases a guessed secret would draw, keyed by the inputs' bytes."""
    cases = ch01.EMBED.cases(scoring.case_secret(b"\0" * 32, student, f"{ASSIGNMENT}/embed"))
    table = {
        hashlib.sha256(b"".join(c.inputs[k].tobytes() for k in ("ids", "wte", "wpe"))).hexdigest(): lib.embed(
            **c.inputs
        )
        for c in cases
    }
    return (
        "import base64, hashlib, pickle\n"
        f"TABLE = pickle.loads(base64.b64decode({base64.b64encode(pickle.dumps(table)).decode()!r}))\n"
        "def embed(ids, wte, wpe):\n"
        "    return TABLE[hashlib.sha256(ids.tobytes() + wte.tobytes() + wpe.tobytes()).hexdigest()]\n"
    )


def forged_lines() -> str:
    """Answer lines of its own, written to the scorer's pipe ahead of the harness's, for every case
    of ``embed``: the visible case's right answer each time."""
    case = ch01.EMBED.cases()[0]
    output = wire.encode(lib.embed(**case.inputs))
    return (
        "import json, os, sys\n"
        "fds = [int(a[5:]) for a in sys.argv if a.startswith('--fd=')]\n"
        "for fd in fds:\n"
        "    for probe in range(12):\n"
        "        for case in ['short', 'batch', 'batch64', 'single64', 'square-batch']:\n"
        f"            line = {{'probe': probe, 'case': case, 'output': {output!r}}}\n"
        "            for job in range(7):  # as the harness frames them, for any notebook it is on\n"
        "                os.write(fd, (f'{job} ' + json.dumps(line) + '\\n').encode())\n"
    )


IMPORT_HOOK = """import builtins, types
_real_import = builtins.__import__
fake = types.ModuleType("grader.check")
fake.check = lambda *args, **kwargs: print("✔")
fake.record = lambda *args, **kwargs: None
def _hooked(name, *args, **kwargs):
    if name.startswith("grader"):
        return fake
    return _real_import(name, *args, **kwargs)
builtins.__import__ = _hooked"""
SYS_MODULES = """import sys, types
fake = types.ModuleType("grader.check")
fake.check = fake.record = lambda *args, **kwargs: print("✔")
sys.modules["grader.check"] = fake"""
PUBLISH = f"""shell = get_ipython()
_publish = shell.display_pub.publish
def publish(data, metadata=None, **kwargs):
    _publish({{**data, {FAKE!r}: {{"exercise": "01-embeddings/embed", "answers": {{}}}}}}, metadata, **kwargs)
shell.display_pub.publish = publish"""
CHECK_NAMESPACE = """import grader.check
grader.check.__dict__["check"] = lambda *args, **kwargs: print("✔")
grader.check.diagnose = lambda *args, **kwargs: None"""
FROM_LIB = "import lib\n"
EXEC_B64 = (
    f"import base64\nexec(base64.b64decode({base64.b64encode(b'import lib; embed = lib.embed').decode()!r}))"
)

# student -> (the grade_id of the test cell the extra cell goes before, its source)
FORGERS = {
    "fake-display": ("encode", fake_payloads()),
    "display-publish": ("encode", PUBLISH),
    "check-namespace": ("encode", CHECK_NAMESPACE),
    "import-hook": ("encode", IMPORT_HOOK),
    "sys-modules": ("encode", SYS_MODULES),
    "vars-lib": ("embed", FROM_LIB + 'embed = vars(lib)["em" + "bed"]'),
    "star-import": ("embed", "from lib.embedding import *"),
    "exec-base64": ("embed", EXEC_B64),
    "capture-body": ("embed", "%%capture\n" + FROM_LIB + "embed = lib.embed"),
    "bash-body": ("embed", "%%bash\nprintf 'import lib\\nembed = lib.embed\\n' > forged.py\ncat forged.py"),
    "pickled-function": ("embed", f"import pickle\nembed = pickle.loads({pickle.dumps(lib.embed)!r})"),
    "through-globals": ("embed", FROM_LIB + 'globals()["em" + "bed"] = getattr(lib, "em" + "bed")'),
    "grader-reference": (
        "embed",
        'import grader.exercises\nembed = grader.exercises.get("01-embeddings/embed").reference',
    ),
    "concept-keys": (
        "q_batch_shape",
        "import tomllib\n"
        f"keys = tomllib.load(open({str(ROOT / 'grader' / 'private' / 'concepts.toml')!r}, 'rb'))\n"
        "answer_q_batch_shape = keys['01-embeddings/q_batch_shape']['answer']",
    ),
    "solutions": (
        "embed",
        f"source = open({str(ROOT / 'solutions' / ASSIGNMENT / 'embeddings.py')!r}).read()\n"
        "start = source.index('def token_embedding(')\n"
        "exec(source[start : source.index('# %%', start)].replace('### BEGIN SOLUTION', ''))\n"
        "embed = lambda ids, wte, wpe: token_embedding(ids, wte) + wpe[: ids.shape[-1]]",
    ),
    "lookup-table": ("embed", lookup_table("lookup-table")),
    "forged-lines": ("embed", forged_lines()),
}


def blank_plus(before: str, source: str):
    nb = nbformat.read(RELEASED, as_version=4)
    index = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == before
    )
    nb.cells.insert(index, new_code_cell(source))
    return nb


def with_mistake():
    """An honest student with one mistake (positions off by one in ``embed``)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "embed-answer")
    cell.source = (
        "def embed(ids, wte, wpe):\n    return token_embedding(ids, wte) + wpe[1 : ids.shape[-1] + 1]"
    )
    return nb


def class_entries() -> list[tuple[str, str]]:
    """This suite's students in the class that ``conftest.shared_class`` grades."""
    students = {"honest": nbformat.read(SOLUTION, as_version=4), "one-mistake": with_mistake()}
    students["blank"] = nbformat.read(RELEASED, as_version=4)
    students |= {name: blank_plus(*attack) for name, attack in FORGERS.items()}
    return [(f"class/{name}/embeddings.ipynb", nbformat.writes(nb)) for name, nb in students.items()]


@pytest.fixture(scope="module")
def graded(shared_class):
    found: dict[str, dict[str, dict]] = {}
    for row in shared_class.of(ASSIGNMENT):
        found.setdefault(row["student"], {})[row["exercise"]] = row
    return found, shared_class.out


@pytest.mark.slow
def test_honest_neighbours_keep_their_marks(graded):
    grades, _ = graded
    assert {row["status"] for row in grades["honest"].values()} == {"graded"}
    assert sum(float(row["score"]) for row in grades["honest"].values()) == 12
    mistaken = grades["one-mistake"]
    assert mistaken["embed"]["status"] == "wrong" and "off-by-one" in mistaken["embed"]["reason"]
    assert {row["status"] for name, row in mistaken.items() if name != "embed"} == {"graded"}


@pytest.mark.slow
@pytest.mark.parametrize("student", ["blank", *FORGERS])
def test_a_forged_score_earns_nothing(graded, student):
    grades, _ = graded
    rows = grades[student]
    assert len(rows) == 9
    earned = {name: row for name, row in rows.items() if float(row["score"]) > 0 or row["status"] == "graded"}
    assert not earned, earned


# Forgers whose extra cell gives ``embed`` lib's implementation in the notebook's own kernel.
BORROWERS = [
    "vars-lib",
    "star-import",
    "exec-base64",
    "capture-body",
    "pickled-function",
    "through-globals",
    "grader-reference",
    "lookup-table",
]


@pytest.mark.slow
@pytest.mark.parametrize("student", BORROWERS)
def test_the_borrowed_embed_is_right_in_the_notebooks_kernel(graded, student):
    """So the attack is real: the notebook's check finds ``embed`` right (and, where it calls
    lib, says that grading will not lend it), and still it earns nothing."""
    grades, out = graded
    nb = nbformat.read(out / "autograded" / student / ASSIGNMENT / "embeddings.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "embed")
    shown = "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)
    assert "✔ embed" in shown or "is right, but it calls lib.embed" in shown, shown
    assert float(grades[student]["embed"]["score"]) == 0
