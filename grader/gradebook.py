"""Merge one student's results into the class gradebook (``OUT/gradebook.db``).

Each student is graded with a throwaway gradebook of their own; only the grading process writes
the class gradebook, one student per transaction, so an interruption leaves it consistent.
Merging is an upsert: running it twice gives the same gradebook. The out-of-kernel scores go in
as nbgrader's *auto* scores (nbgrader's own verdict on the cell is discarded), which leaves the
manual score free for an instructor's override in formgrader; the verdict goes into the comment
of the exercise's solution cell (``<exercise>-answer``) when there is one.
"""

import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning


def merge(db: Path, student: str, notebooks: list[dict]) -> None:
    """``notebooks``: ``{"assignment", "notebook", "rows": [Row as dict, ...]}`` each."""
    with Gradebook(f"sqlite:///{db}") as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own autoflush noise
        gb.update_or_create_student(student)
        for entry in notebooks:
            assignment, notebook = entry["assignment"], entry["notebook"]
            gb.update_or_create_submission(assignment, student)
            for row in entry["rows"]:
                _set_score(gb, row, notebook, assignment, student)
        gb.db.commit()


def _set_score(gb: Gradebook, row: dict, notebook: str, assignment: str, student: str) -> None:
    try:
        grade = gb.find_grade(row["exercise"], notebook, assignment, student)
    except MissingEntry:
        return  # not a cell of the current source (it changed since)
    grade.auto_score = row["score"]
    grade.needs_manual_grade = False
    try:
        comment = gb.find_comment(f"{row['exercise']}-answer", notebook, assignment, student)
    except MissingEntry:
        return
    comment.auto_comment = f"{row['status']}: {row['reason']}"
