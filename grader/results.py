"""Score an autograded notebook: one row per exercise, from answers compared outside the kernel.

An exercise is a test cell (nbgrader ``grade: true`` code cell that is not a solution); its
``grade_id`` is the exercise's name and the answers ``record`` emitted there are its only evidence.
nbgrader's own pass/fail of the cell is ignored. Statuses:

- ``graded``: full marks; ``wrong``: the answers differ, or none were recorded;
- ``not_attempted``: the stub was left as released (it raises ``NotImplementedError``), or a
  concept check has no answer;
- ``timeout``: the test ran past the time limit, or the kernel stopped answering before it;
- ``kernel_died``: the kernel died before or during the test;
- ``integrity``: the code was flagged (``grader.integrity``);
- set by ``grader.autograde``: ``error`` (nbgrader itself failed), ``invalid_notebook``,
  ``unknown_assignment`` and ``missing`` (no notebook for an assignment the class submitted).
"""

from dataclasses import asdict, dataclass

from .compare import MIME, grade_answers
from .execute import KERNEL_DIED, KERNEL_UNRESPONSIVE

FIELDS = ("student", "assignment", "exercise", "score", "max_score", "status", "reason")
TIMEOUT = "CellTimeoutError"
NOT_ATTEMPTED = "not attempted"


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


def answers(cell) -> list[dict]:
    """The payloads ``record`` emitted in a cell (one, unless the student's code faked more)."""
    return [
        out.data[MIME]
        for out in cell.get("outputs", [])
        if out.output_type in ("display_data", "execute_result") and MIME in out.get("data", {})
    ]


def errors(cell) -> list[tuple[str, str]]:
    return [(out.ename, out.evalue) for out in cell.get("outputs", []) if out.output_type == "error"]


def score(nb, student: str, assignment: str, flagged: dict[str, list[str]], timeout: float) -> list[Row]:
    """Rows for every exercise of an autograded notebook; ``flagged`` maps exercise names to the
    integrity findings that void them (those score 0 whatever their answers)."""
    stop = _kernel_stop(nb)
    rows = []
    for test in test_cells(nb):
        points, status, reason = _verdict(nb.cells[test.index], test, assignment, flagged, stop, timeout)
        rows.append(Row(student, assignment, test.name, points, test.points, status, reason))
    return rows


def _verdict(cell, test: TestCell, assignment: str, flagged: dict, stop, timeout: float) -> tuple:
    if test.name in flagged:
        return 0, "integrity", "; ".join(flagged[test.name])
    payloads = answers(cell)
    if not payloads:
        return 0, *_why_no_answers(cell, test.index, stop, timeout)
    if _unwritten(payloads[-1]):
        return 0, "not_attempted", NOT_ATTEMPTED
    verdict = grade_answers(f"{assignment}/{test.name}", payloads[-1])
    return (test.points, "graded", verdict.reason) if verdict.ok else (0, "wrong", verdict.reason)


def _unwritten(payload: dict) -> bool:
    """Every case raised NotImplementedError (the stub), or a concept check has no answer."""
    answers = (payload or {}).get("answers") or {}
    errors = [record.get("error", "") for record in answers.values() if isinstance(record, dict)]
    return (
        bool(errors)
        and len(errors) == len(answers)
        and all(
            e.startswith("NotImplementedError") or e in ("answer is Ellipsis", "answer is None")
            for e in errors
        )
    )


def _kernel_stop(nb) -> tuple[int, str] | None:
    """(cell index, error name) where the kernel died or stopped responding, if it did."""
    for index, cell in enumerate(nb.cells):
        for name, _ in errors(cell):
            if name in (KERNEL_DIED, KERNEL_UNRESPONSIVE):
                return index, name
    return None


def _why_no_answers(cell, index: int, stop, timeout: float) -> tuple[str, str]:
    names = dict(errors(cell))
    if stop and stop[0] <= index:
        status = "kernel_died" if stop[1] == KERNEL_DIED else "timeout"
        where = "in this test" if stop[0] == index else f"in cell {stop[0]}, before this test ran"
        what = "the kernel died" if stop[1] == KERNEL_DIED else "the kernel stopped responding"
        return status, f"{what} {where}; no answers were recorded"
    if TIMEOUT in names:
        return "timeout", f"the test ran longer than {timeout:g} s and was interrupted"
    if set(names) & {"NotImplementedError", "NotWrittenYet"}:
        return "not_attempted", NOT_ATTEMPTED
    if names:
        name, value = next(iter(names.items()))
        return "wrong", f"no answers were recorded: the test cell raised {name}: {value[:200]}"
    return "wrong", "no answers were recorded: the test cell did not run to its end"
