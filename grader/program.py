"""The program the scorer runs for one notebook: the student's code, in notebook order, with a
probe where each test cell is.

Built in the grading process from the autograded notebook and the released one (the version the
students got), from source only (nothing of the student's is run here):

- every cell the student wrote or changed runs whole: the solution cells as the student left
  them, and any code cell whose source is not one of the release's course cells;
- of the course cells (a code cell whose source equals a released one that is neither a solution
  nor a test), only the top-level statements that bind a name the student's code reads, directly
  or through other such statements (a name-level slice with ``symtable``): imports, assignments,
  ``def``s. Demos, figures and model loading do not run. An import keeps only the names needed;
- a test cell becomes a probe, placed where the autograded notebook has it (the first copy, by
  nbgrader ``grade_id``), with the exercise id and the name it checks read from the RELEASED test
  cell's ``check(...)`` call, never from the student's copy. A test cell the notebook lacks is
  probed at the end;
- the program ends at its last probe (``until_last_probe``): what a notebook runs after it cannot
  change an answer, and a scorer runs alone on the machine (``grader.sandbox.turns``), so every
  second it spends there is every other student's. A student's cells after their last test (an
  experiment, a figure, or a loop that only burns the scorer's budget while the functions above
  it keep their points) do not run.

IPython syntax is turned into Python here with IPython's ``TransformerManager``: a cell that
starts with ``%%capture`` or ``%%time`` becomes its body; any other magic or shell command becomes
a call on ``get_ipython()``, which the harness answers with nothing. What that costs the grading
process is bounded for the whole notebook (``grader.magics``): past it, a cell is left as it is,
and the harness reports its syntax error. A cell too long to parse here (``magics.parsable``) is
left as it is too, and keeps every course statement.
"""

import ast
import functools
from dataclasses import dataclass

from . import magics, names, results

RUN_BODY = ("capture", "time")  # cell magics whose body the scorer runs


@dataclass(frozen=True)
class Test:
    """A released test cell: ``check(exercise, name, ...)``."""

    grade_id: str
    exercise: str
    name: str


def tests(released) -> list[Test]:
    """The released notebook's test cells and the ``check`` call each makes."""
    found = []
    for test in results.test_cells(released):
        call = _check_call(released.cells[test.index].source)
        if call is not None:
            found.append(Test(test.name, *call))
    return found


def _check_call(source: str) -> tuple[str, str] | None:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and len(node.args) >= 2:
            exercise, checked = node.args[:2]
            if isinstance(exercise, ast.Constant) and isinstance(checked, ast.Name):
                return exercise.value, checked.id
    return None


def build(nb, released) -> list[dict]:
    """The program for the autograded notebook ``nb``: cells ``{"index", "source"}`` and probes
    ``{"index", "probe", "grade_id", "exercise", "name"}``, in order (``probe`` numbers them)."""
    by_grade_id = {test.grade_id: test for test in tests(released)}
    course = _course_sources(released)
    items, placed, budget = [], set(), magics.Budget()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in by_grade_id:
            if grade_id not in placed:
                placed.add(grade_id)
                items.append(_probe(index, by_grade_id[grade_id]))
        elif cell.source in course:
            items.append({"index": index, "course": python(cell.source)})
        else:
            items.append({"index": index, "source": python(cell.source, budget)})
    items += [_probe(len(nb.cells), test) for grade_id, test in by_grade_id.items() if grade_id not in placed]
    for number, item in enumerate(i for i in items if "exercise" in i):
        item["probe"] = number
    return _sliced(until_last_probe(items))


def halves(items: list[dict]) -> tuple[list[dict], list[dict]]:
    """A program as two, each run on its own (``grader.scoring``): every cell with each probe
    asking its visible cases only; and the cells up to the last probe that asks a hidden case,
    with the probes that do, each asking those only (empty if none does)."""
    hidden = [item for item in _asking(items, hidden=True) if item.get("calls", True)]
    return _asking(items, hidden=False), until_last_probe(hidden)


def _asking(items: list[dict], hidden: bool) -> list[dict]:
    """``items`` with each probe's calls cut to its hidden cases' (or its visible ones')."""
    return [
        {**item, "calls": [call for call in item["calls"] if bool(call.get("hidden")) == hidden]}
        if "calls" in item
        else item
        for item in items
    ]


def skipping(items: list[dict], timed_out: dict[int, set[int]]) -> list[dict]:
    """``items`` with each cell told to skip, too, its statements in ``timed_out`` (cell ->
    positions): the ones that ran past their limit in an earlier run cost their limit once."""
    return [
        {**item, "skip": sorted({*item.get("skip", ()), *timed_out[item["index"]]})}
        if "source" in item and timed_out.get(item["index"])
        else item
        for item in items
    ]


def until_last_probe(items: list[dict]) -> list[dict]:
    """A program without what follows its last probe (nothing, if it has none): no answer can
    depend on it."""
    probes = [position for position, item in enumerate(items) if "exercise" in item]
    return items[: probes[-1] + 1] if probes else []


def _course_sources(released) -> set[str]:
    """The sources of the release's course cells: code cells neither solution nor test."""
    return {
        cell.source
        for cell in released.cells
        if cell.cell_type == "code"
        and not cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.metadata.get("nbgrader", {}).get("grade")
    }


def _probe(index: int, test: Test) -> dict:
    return {"index": index, "grade_id": test.grade_id, "exercise": test.exercise, "name": test.name}


def python(source: str, budget: magics.Budget | None = None) -> str:
    """A cell's IPython source as Python (``%%capture``/``%%time``: their body); ``budget``: the
    notebook's (``grader.magics``)."""
    magic, body, _ = magics.cell_magic(source)
    if magic in RUN_BODY:
        source = body
    if not magics.parsable(source):
        return source  # parsed in the scorer's sandbox only
    try:
        ast.parse(source)
        return source  # plain Python already (most cells): nothing to transform
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:
        return magics.python(source, budget)
    except Exception:  # the harness reports the syntax error, as the notebook did
        return source


@dataclass(frozen=True)
class Statement:
    """A top-level statement of a course cell: its source, the names it binds and reads."""

    source: str
    binds: frozenset[str]
    reads: frozenset[str]


@functools.cache
def statements(source: str) -> tuple[Statement, ...]:
    """A course cell's top-level statements. The course cells are the same in every student's
    notebook: each is analysed once in the grading process (``warm``), before it forks a
    process per student."""
    found = []
    for node in _parse(source):
        text = ast.unparse(node)
        found.append(Statement(text, frozenset(names.bound(text)), frozenset(names.read(text))))
    return tuple(found)


def warm(released) -> None:
    """Analyse the course cells of a released notebook ahead (``statements``)."""
    for source in _course_sources(released):
        statements(python(source))


def _sliced(items: list[dict]) -> list[dict]:
    """Course cells reduced to the statements the student's code needs (dropped if none)."""
    needed = {item["name"] for item in items if "exercise" in item}
    found = [(item, stmt) for item in items if "course" in item for stmt in statements(item["course"])]
    for item in items:
        if "source" in item:
            readable = magics.parsable(item["source"])
            needed |= names.read(item["source"]) if readable else {n for _, stmt in found for n in stmt.binds}
    kept, changed = set(), True
    while changed:
        changed = False
        for position, (_, stmt) in enumerate(found):
            if position not in kept and stmt.binds & needed:
                kept.add(position)
                needed |= stmt.reads
                changed = True
    out = []
    for item in items:
        if "course" not in item:
            out.append(item)
            continue
        body = [
            _reduced(stmt.source, needed)
            for position, (owner, stmt) in enumerate(found)
            if owner is item and position in kept
        ]
        if body:
            out.append({"index": item["index"], "source": "\n".join(body)})
    return out


def _parse(source: str) -> list[ast.stmt]:
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []


def _reduced(source: str, needed: set[str]) -> str:
    """An import keeps only the names needed; any other statement stays as it is."""
    if not source.startswith(("import ", "from ")):
        return source
    node = ast.parse(source).body[0]
    if isinstance(node, ast.Import | ast.ImportFrom):
        node.names = [a for a in node.names if (a.asname or a.name.split(".")[0]) in needed]
    return ast.unparse(node)
