"""The committed tree is consistent: sources, nbgrader notebooks, student notebooks, references."""

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).parents[1]
SOURCES = sorted(ROOT.glob("solutions/*/*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.name)
def test_source_notebook_matches_its_text_source(source):
    """`solutions/X/x.ipynb` is what `make release` makes from `solutions/X/x.py`."""
    notebook = source.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.relative_to(ROOT)} is missing: run `make release`"
    expected = jupytext.read(source)
    actual = nbformat.read(notebook, as_version=4)
    strip = lambda nb: [(c.cell_type, c.source, c.metadata.get("nbgrader"), c.metadata.get("tags")) for c in nb.cells]
    assert strip(actual) == strip(expected), f"{notebook.relative_to(ROOT)} is out of date: run `make release`"


def test_student_notebooks_are_released_from_the_sources():
    result = subprocess.run([sys.executable, "-m", "grader", "release", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reference_outputs_are_up_to_date():
    result = subprocess.run([sys.executable, "-m", "grader", "references", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_released_notebooks_hold_no_solutions_or_hidden_tests():
    for notebook in ROOT.glob("chapters/*/*.ipynb"):
        text = notebook.read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "record("):
            assert marker not in text, f"{notebook.relative_to(ROOT)} contains {marker!r}"
