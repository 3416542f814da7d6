"""Every chapter goes through the whole grading path with real nbgrader: the solution notebooks,
submitted as a student, get full marks; the released (blank) notebooks get zero, without errors.
Both students are graded in the class several suites share (``conftest.shared_class``)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
GRADED = sorted(p for p in ROOT.glob("solutions/0[1-9]-*/*.ipynb"))
PERFECT, BLANK = "every-solution", "every-blank"  # students of the shared class


def points(notebook: Path) -> dict[str, float]:
    nb = nbformat.read(notebook, as_version=4)
    return {
        c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def class_entries() -> list[tuple[str, bytes]]:
    """A student with every chapter's solution and one with every released notebook, in the
    class that ``conftest.shared_class`` grades."""
    entries = []
    for source in GRADED:
        released = ROOT / "chapters" / source.parent.name / source.name
        for student, notebook in ((PERFECT, source), (BLANK, released)):
            entries.append((f"class/{student}/{source.name}", notebook.read_bytes()))
    return entries


@pytest.fixture(scope="module")
def grades(shared_class):
    return {(r["student"], r["assignment"], r["exercise"]): r for r in shared_class.rows}


@pytest.mark.parametrize("source", GRADED, ids=lambda p: p.parent.name)
def test_solutions_get_full_marks_and_blanks_get_zero(grades, source):
    assignment = source.parent.name
    expected = points(source)
    assert expected, f"{assignment} has no graded cells"
    for exercise, max_score in expected.items():
        perfect = grades[(PERFECT, assignment, exercise)]
        assert float(perfect["score"]) == max_score, perfect
        blank = grades[(BLANK, assignment, exercise)]
        assert float(blank["score"]) == 0 and blank["status"] in {"not_attempted", "wrong", "missing"}, blank


def test_the_solutions_have_no_integrity_finding(shared_class):
    """Neither the scan nor the scorer's audit of what runs (``grader.audit``) finds anything in
    the course's own solutions: a finding there would be one on every honest student."""
    assert not [row for row in shared_class.flagged if row["student"] == PERFECT], shared_class.flagged


def test_integrity_resolves_names_in_the_functions_scope():
    """A parameter that shares its name with a notebook variable holding lib's output is the
    student's own value; lib reached through a local import or alias is still found."""
    from nbformat.v4 import new_code_cell, new_notebook

    from grader import integrity

    cells = [
        "import lib\nx = lib.layer_norm(stream, g, b)",
        "def layer_norm(x, g, b, eps=1e-5):\n    return (x - x.mean(-1, keepdims=True)) * g + b",
        "def embed(ids, wte, wpe):\n    import lib as L\n    return L.embed(ids, wte, wpe)",
        "helper = lib.gelu\ndef gelu(x):\n    return helper(x)",
    ]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    flagged = {f.exercises[0] for f in integrity.scan(nb, set(), ["layer_norm", "embed", "gelu"])}
    assert flagged == {"embed", "gelu"}
