"""The graders' stored reference outputs are what `lib` computes today.

(`tests/test_grading.py` checks the other half of the committed tree: that `chapters/` and
`solutions/*.ipynb` are what `make release` makes from the sources.)
"""

import subprocess
import sys
from pathlib import Path

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
