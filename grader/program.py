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
  probed at the end.

IPython syntax is turned into Python here with IPython's ``TransformerManager``: a cell that
starts with ``%%capture`` or ``%%time`` becomes its body; any other magic or shell command becomes
a call on ``get_ipython()``, which the harness answers with nothing.
"""

import ast
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

from . import names, results

RUN_BODY = ("%%capture", "%%time")  # cell magics whose body the scorer runs


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
    course = {
        cell.source
        for cell in released.cells
        if cell.cell_type == "code"
        and not cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.metadata.get("nbgrader", {}).get("grade")
    }
    items, placed = [], set()
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
            items.append({"index": index, "source": python(cell.source)})
    items += [_probe(len(nb.cells), test) for grade_id, test in by_grade_id.items() if grade_id not in placed]
    for number, item in enumerate(i for i in items if "exercise" in i):
        item["probe"] = number
    return _sliced(items)


def _probe(index: int, test: Test) -> dict:
    return {"index": index, "grade_id": test.grade_id, "exercise": test.exercise, "name": test.name}


def python(source: str) -> str:
    """A cell's IPython source as Python (``%%capture``/``%%time``: their body)."""
    first, _, rest = source.partition("\n")
    if first.split(maxsplit=1)[:1] and first.split(maxsplit=1)[0] in RUN_BODY:
        source = rest
    try:
        ast.parse(source)
        return source  # plain Python already (most cells): nothing to transform
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # the harness reports the syntax error, as the notebook did
        return source


def _sliced(items: list[dict]) -> list[dict]:
    """Course cells reduced to the statements the student's code needs (dropped if none)."""
    needed = {item["name"] for item in items if "exercise" in item}
    for item in items:
        if "source" in item:
            needed |= names.read(item["source"])
    statements = []  # (item, statement, binds, reads) of every course cell
    for item in items:
        if "course" in item:
            for node in _parse(item["course"]):
                source = ast.unparse(node)
                statements.append((item, node, names.bound(source), names.read(source)))
    kept, changed = set(), True
    while changed:
        changed = False
        for position, (_, _, binds, reads) in enumerate(statements):
            if position not in kept and binds & needed:
                kept.add(position)
                needed |= reads
                changed = True
    out = []
    for item in items:
        if "course" not in item:
            out.append(item)
            continue
        body = [
            _reduced(node, needed)
            for position, (owner, node, _, _) in enumerate(statements)
            if owner is item and position in kept
        ]
        if body:
            out.append({"index": item["index"], "source": ast.unparse(ast.Module(body, []))})
    return out


def _parse(source: str) -> list[ast.stmt]:
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []


def _reduced(node: ast.stmt, needed: set[str]) -> ast.stmt:
    """An import keeps only the names needed; any other statement stays as it is."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        node.names = [a for a in node.names if (a.asname or a.name.split(".")[0]) in needed]
    return node
