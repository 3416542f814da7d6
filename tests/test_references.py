"""The graders' stored reference outputs are what `lib` computes today.

(`tests/test_grading.py` checks the other half of the committed tree: that `chapters/` and
`solutions/*.ipynb` are what `make release` makes from the sources.)
"""

import subprocess
import sys
from pathlib import Path

import numpy as np

from grader import references

ROOT = Path(__file__).parents[1]


def test_reference_outputs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "grader", "references", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reference_files_are_small():
    """Every assignment's references stay small enough to commit and to read in a kernel."""
    files = list(references.ROOT.rglob("*.safetensors"))
    assert files
    for file in files:
        assert file.stat().st_size < 200_000, file


def test_the_check_forgives_rounding_and_nothing_more():
    """Another CPU rounds float32 products differently by a few units in the last place of the
    largest entry; a change of lib's numbers is far more than that."""
    stored = np.array([3944.415, 1316.8464, -0.25, 1e-3], np.float32)
    ulp = np.finfo(np.float32).eps * 3944.415
    assert references._same(stored + np.float32(6 * ulp), stored)
    assert not references._same(stored * np.float32(1 + 1e-4), stored)
    assert not references._same(stored + np.float32([0, 0, 0, 1e-2]), stored)  # a small entry moved
    assert not references._same(stored.astype(np.float64), stored)
