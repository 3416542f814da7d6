"""The committed tree is consistent: text sources, nbgrader and student notebooks, references.

`python -m grader release --check` compares `solutions/*/*.ipynb` with their Jupytext sources and
`chapters/` with what nbgrader generates from them.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_student_notebooks_are_released_from_the_sources():
    result = subprocess.run(
        [sys.executable, "-m", "grader", "release", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reference_outputs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "grader", "references", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_released_notebooks_hold_no_solutions_or_hidden_tests():
    for notebook in ROOT.glob("chapters/*/*.ipynb"):
        text = notebook.read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "record("):
            assert marker not in text, f"{notebook.relative_to(ROOT)} contains {marker!r}"
