"""Helpers shared by the chapter tests: a chapter's notebook functions, and how its cells call `check`."""

from pathlib import Path

import jupytext

from grader.exercises.ch04 import packed, sampler

# The notebooks hand a student's function to `check` and `record` as it is, except where a chapter
# wraps it in a runner (chapter 4, for answers that are not one array). The exercises' references
# and mistakes come wrapped already; a student's function, or a stub, has to be wrapped here.
RUNNERS = {"04-sampling/sample_next": sampler, "04-sampling/attend_with_cache": packed}


def as_checked(exercise_id: str, fn):
    """``fn`` as the notebook's test cell passes it to ``check``."""
    runner = RUNNERS.get(exercise_id)
    return fn if runner is None else runner(fn)


def solution_functions(path: Path, namespace: dict) -> dict:
    """The functions defined in the chapter's solution cells, exactly as the notebook has them."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            if cell.source.lstrip().startswith("def "):
                exec(cell.source, namespace)
    return namespace
