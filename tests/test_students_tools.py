"""What a student runs: `make lab`, and `nbgrader validate` in a chapter's folder."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_make_lab_starts_jupyterlab_as_any_user():
    """As root (a container) it says so and passes --allow-root instead of stopping."""
    lab = subprocess.Popen(
        ["make", "lab", "LAB_ARGS=--no-browser --port=0 --ServerApp.token=test"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and JupyterLab in a process group of their own, stopped together
    )
    seen = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "is running at" in line:
                break
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=60)
    output = "".join(seen)
    assert "is running at" in output, output[-3000:]
    assert "Running as root is not recommended" not in output
    if os.geteuid() == 0:
        assert "note: running JupyterLab as root with --allow-root" in output


@pytest.mark.slow
def test_nbgrader_validate_in_a_chapter_folder_prints_whole_messages(tmp_path):
    folder = tmp_path / "01-embeddings"
    shutil.copytree(ROOT / "chapters" / "01-embeddings", folder)
    done = subprocess.run(
        [BIN / "nbgrader", "validate", "embeddings.ipynb"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    output = done.stdout + done.stderr
    assert "No nbgrader_config.py file found" not in output
    assert "VALIDATION FAILED" in output, output[-3000:]
    messages = re.findall(r"✎ `(\w+)` is not written yet:(.*?)then this one\.", output, re.S)
    assert {name for name, _ in messages} >= {"encode", "decode", "embed"}, output[-3000:]
    assert "..." not in "".join(line for line in output.splitlines() if "✎" in line or "✘" in line)
