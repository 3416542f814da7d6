"""Score a graded notebook: one row per exercise, from the scorer's verdicts.

An exercise is a test cell of the released notebook (nbgrader ``grade: true`` code cell that is
not a solution); its ``grade_id`` is the exercise's name. The scorer (``grader.scoring``) is its
only evidence: nbgrader's own pass/fail of the cell, and anything the notebook displayed, are
ignored. Statuses:

- ``graded``: full marks; ``wrong``: an answer differs, raised, or never came back;
- ``not_attempted``: the stub was left as released (every case raised
  ``NotImplementedError``), or a concept check has no answer;
- ``timeout``: a call ran past the time limit, or the scorer stopped responding before it;
- ``kernel_died``: the student's code ended the scorer (or reached its memory or process
  limit) before the test ran;
- ``integrity``: the code was flagged (``grader.integrity``);
- set by ``grader.autograde``: ``error`` (nbgrader itself failed), ``invalid_notebook``,
  ``unknown_assignment`` and ``missing`` (no notebook for an assignment the class submitted);
- set by ``grader.reports`` when the release changed after a notebook was graded: ``not_counted``
  (an exercise it no longer has) and ``not_graded`` (one it gained).
"""

from dataclasses import asdict, dataclass

from .compare import Verdict

FIELDS = ("student", "assignment", "exercise", "score", "max_score", "status", "reason")
UNREAD = Verdict(False, "the scorer has no verdict for this test", "error")


@dataclass(frozen=True)
class Row:
    student: str
    assignment: str
    exercise: str
    score: float
    max_score: float
    status: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TestCell:
    index: int
    name: str
    points: float


def test_cells(nb) -> list[TestCell]:
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            found.append(TestCell(index, meta["grade_id"], float(meta.get("points", 0))))
    return found


def score(
    released, student: str, assignment: str, flagged: dict[str, list[str]], verdicts: dict[str, Verdict]
) -> list[Row]:
    """Rows for every exercise of the released notebook; ``flagged`` maps exercise names to the
    integrity findings that void them (those score 0 whatever their answers)."""
    rows = []
    for test in test_cells(released):
        if test.name in flagged:
            rows.append(
                Row(
                    student, assignment, test.name, 0, test.points, "integrity", "; ".join(flagged[test.name])
                )
            )
            continue
        verdict = verdicts.get(test.name, UNREAD)
        points = test.points if verdict.ok else 0
        rows.append(Row(student, assignment, test.name, points, test.points, verdict.status, verdict.reason))
    return rows
