"""A student's first "Run All": every released notebook, run top to bottom in a real kernel before
a single exercise is written.

Only the check cells of function exercises may fail (they say "not written yet", and are tagged
`raises-exception` so that the run goes on, as nbgrader's validation does). Everything else runs:
a concept check's stub and its check (which only notes that the question is waiting), and every
figure with controls, which in a notebook is live ipywidgets wired to the student's own functions
and falls back to `lib` while those raise `NotImplementedError`.
"""

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*/*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run_all(path: Path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("FORWARD_PASS_BOOK", "NBGRADER_EXECUTION")}
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    # nbclient imitates a front end's Output widgets (interact draws into one): it sends each
    # captured output back to the kernel on the shell socket while another of its tasks waits on
    # that socket for the cell's reply, and now and then that wait misses the reply and lasts the
    # whole timeout (jupyter/nbclient#312: about one widget cell in 30; chapter 2's 20-second Run
    # All took 308 s). Without the imitation, what an Output widget would capture, an interact
    # figure or the traceback of its drawing function, is the cell's own output, checked below.
    client.widget_registry = {}
    client.km = client.create_kernel_manager()
    client.start_new_kernel(env=env)
    try:
        client.start_new_kernel_client()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    finally:
        client._cleanup_kernel()
    return nb


def errors(cell) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", []) if o.output_type == "error"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.parent.name)
def test_a_fresh_notebook_runs_all_with_only_its_checks_failing(path):
    nb = run_all(path)
    unexpected = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grading = cell.metadata.get("nbgrader", {})
        may_fail = grading.get("grade") and not grading.get("solution") and "answer_" not in cell.source
        if errors(cell) and not may_fail:
            unexpected[index] = errors(cell)
        if may_fail and errors(cell):
            assert all(e.startswith("NotWrittenYet") for e in errors(cell)), (index, errors(cell))
    assert unexpected == {}
    concept_checks = [c for c in nb.cells if "check(" in c.source and "answer_" in c.source]
    for cell in concept_checks:
        shown = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "not answered yet" in shown, cell.source
    views = sum(WIDGET_VIEW in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    explorers = sum("bookkit.explore(" in c.source or "widgets.VBox(" in c.source for c in nb.cells)
    assert views >= explorers, "a figure with controls did not show its widgets"


@pytest.mark.slow
def test_a_readers_notebook_answers_its_concept_checks_at_once(tmp_path):
    """The notebook the reader edition's launch button opens (``reader/``), in a real kernel, with
    its concept checks answered: each says at once that the letter is right, and why (in a class's
    notebook it is only recorded, to be graded on submission)."""
    from grader import keys

    path = ROOT / "reader" / "chapters" / "01-embeddings" / "embeddings.ipynb"
    nb = nbformat.read(path, as_version=4)
    answered = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("answer_q"):
            name = cell.source.split()[0].removeprefix("answer_")
            answered[name] = keys.concept(f"01-embeddings/{name}")
            cell.source = f"answer_{name} = {answered[name].answer!r}"
    assert answered
    copy = tmp_path / "embeddings.ipynb"
    nbformat.write(nb, copy)
    shown = "".join(
        o.get("text", "") for c in run_all(copy).cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    for name, key in answered.items():
        assert f"{key.answer!r} is right. {key.explain}" in shown, name
