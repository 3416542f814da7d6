"""A static scan of a student's code for ways to earn points without doing the exercise.

Scores come from comparing recorded outputs outside the kernel, so patching numpy or the checks
cannot fake a right answer; what it cannot see is a right answer computed by ``lib`` itself. So:

- **lib's own implementation**: for each exercise, the scan follows the student's definition of
  the exercise's function (and every function or name of theirs it uses, transitively) and flags
  any use of ``lib`` that reaches a name equal to the exercise's (``lib.embed``,
  ``from lib import embed``, ``lib.embedding.embed``, ``getattr(lib, ...)``, an alias of any).
  ``lib`` used elsewhere (other stages, a self-test comparing with ``lib.embed``) is fine.
- **tampering and escapes**, anywhere in the student's cells: assigning to attributes of numpy,
  ``lib`` or ``grader`` (also via ``setattr``), ``sys.modules``, ``importlib``, ``__import__``,
  ``exec``, ``eval``, ``compile``, ``ctypes``, the course's reference modules, paths into the
  stored references, and ``__globals__``-style escapes. Inside a function such a finding voids the
  exercises that reach the function; at the top level of a cell, every exercise of the notebook.

Only the student's cells are scanned: code cells other than the locked cells nbgrader restores,
skipping cells left exactly as released.
"""

import ast
import re
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

PATCHABLE = ("numpy", "lib", "grader")
FORBIDDEN_MODULES = {
    "importlib": "uses importlib",
    "ctypes": "uses ctypes",
    "grader.references": "reads the stored references",
    "grader.compare": "imports the grader's comparison",
}
FORBIDDEN_NAMES = {"exec", "eval", "compile", "__import__"}
ESCAPES = {"__globals__", "__builtins__", "__subclasses__", "__code__", "__closure__"}
REFERENCE_PATH = re.compile(r"references[/\\]|\.safetensors|(^|[/\\])references$")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Finding:
    """Suspicious code; ``exercises`` are the exercise names it voids."""

    exercises: tuple[str, ...]
    reason: str
    cell: int
    line: int
    code: str


@dataclass(frozen=True)
class _Cell:
    index: int
    source: str
    tree: ast.Module


def student_cells(nb, released_sources: set[str]) -> list[tuple[int, str]]:
    """(index, source) of the code cells the student wrote or changed."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        restored = meta.get("locked") and meta.get("grade_id")
        if cell.cell_type == "code" and not restored and cell.source not in released_sources:
            cells.append((index, cell.source))
    return cells


def scan(nb, released_sources: set[str], exercises: list[str]) -> list[Finding]:
    """Findings in the student's cells of an executed notebook, for the given exercise names."""
    code = [_parse(i, cell.source) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    every = [cell for cell in code if cell]
    student_indices = {index for index, _ in student_cells(nb, released_sources)}
    student = [cell for cell in every if cell.index in student_indices]
    aliases = _aliases(every)
    definitions = _definitions(student)
    reach = {name: _reachable([name], definitions) for name in exercises}
    top_level = _reachable(_top_level_names(student), definitions)
    findings = []
    for cell in student:
        for statement in cell.tree.body:
            owner = statement.name if isinstance(statement, DEFINITIONS) else None
            runs_anyway = owner is None or owner in top_level
            voided = tuple(n for n in exercises if runs_anyway or owner in reach[n])
            for node, reason in _tampering(statement, aliases):
                findings.append(_finding(voided, reason, cell, node))
    for name in exercises:
        for cell, node, path in _lib_uses(name, reach[name], definitions, aliases):
            findings.append(_finding((name,), f"uses lib's own {name} ({path})", cell, node))
    return sorted(set(findings), key=lambda f: (f.cell, f.line, f.reason))


def _parse(index: int, source: str) -> _Cell | None:
    try:
        return _Cell(index, source, ast.parse(TransformerManager().transform_cell(source)))
    except SyntaxError:
        return None  # it cannot run either


def _finding(exercises, reason: str, cell: _Cell, node: ast.AST) -> Finding:
    line = getattr(node, "lineno", 1)
    code = cell.source.splitlines()[line - 1].strip() if cell.source.splitlines() else ""
    return Finding(tuple(exercises), reason, cell.index, line, code[:200])


# ---- names ---------------------------------------------------------------------------------------


def _aliases(cells: list[_Cell]) -> dict[str, str]:
    """Name -> the dotted thing it stands for (``np`` -> ``numpy``, ``E`` -> ``lib.embed``)."""
    aliases: dict[str, str] = {}
    # Only what runs at the top level of a cell binds a notebook-wide name; a function's own
    # names are resolved in its scope (``_scoped``).
    nodes = [
        node
        for cell in cells
        for s in cell.tree.body
        if not isinstance(s, DEFINITIONS)
        for node in ast.walk(s)
    ]
    for node in nodes:
        aliases.update(_import_aliases(node))
    for _ in range(3):  # assignments may refer to each other
        for node in nodes:
            if isinstance(node, ast.Assign) and (path := _dotted(node.value, aliases)):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        aliases[target.id] = path
    return aliases


def _import_aliases(node: ast.AST) -> dict[str, str]:
    """The names an import statement binds, and what each stands for."""
    if isinstance(node, ast.Import):
        return {
            alias.asname or alias.name.split(".")[0]: alias.name if alias.asname else alias.name.split(".")[0]
            for alias in node.names
        }
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names}
    return {}


def _scoped(statement: ast.stmt, aliases: dict[str, str]) -> dict[str, str]:
    """The aliases seen inside a function: its parameters and local names shadow the notebook's,
    and its own imports and assignments add to them."""
    if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        return aliases
    local = _local_names(statement)
    scoped = {name: path for name, path in aliases.items() if name not in local}
    for node in ast.walk(statement):
        scoped.update(_import_aliases(node))
    for _ in range(3):  # local assignments may refer to each other
        for node in ast.walk(statement):
            if isinstance(node, ast.Assign) and (path := _dotted(node.value, scoped)):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        scoped[target.id] = path
    return scoped


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """What an expression refers to, as a dotted path through known modules, or ``None``."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):
        return _dotted(node.value, aliases)
    if isinstance(node, ast.Call):
        if _calls(node, "getattr") and len(node.args) >= 2:
            base = _dotted(node.args[0], aliases)
            name = node.args[1]
            attribute = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else "?"
            return f"{base}.{attribute}" if base else None
        base = _dotted(node.func, aliases)
        return f"{base}()" if base else None
    return None


def _definitions(cells: list[_Cell]) -> dict[str, list[tuple[_Cell, ast.AST]]]:
    """Top-level name -> the student's statements that bind it."""
    found: dict[str, list] = {}
    for cell in cells:
        for statement in cell.tree.body:
            for name in _bound_names(statement):
                found.setdefault(name, []).append((cell, statement))
    return found


def _bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, DEFINITIONS):
        return [statement.name]
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return [alias.asname or alias.name.split(".")[0] for alias in statement.names]
    if isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _top_level_names(cells: list[_Cell]) -> list[str]:
    """Names used by the statements that run when a cell runs (not inside a definition)."""
    statements = [s for cell in cells for s in cell.tree.body if not isinstance(s, DEFINITIONS)]
    return [n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name)]


def _reachable(names: list[str], definitions: dict) -> set[str]:
    """The student's top-level names reachable from ``names`` through the names each one uses."""
    seen, todo = set(), list(names)
    while todo:
        current = todo.pop()
        if current in seen or current not in definitions:
            continue
        seen.add(current)
        for _, statement in definitions[current]:
            todo += _free_names(statement)
    return seen


def _local_names(statement: ast.stmt) -> set[str]:
    """A function's parameters and the names it assigns: they shadow the notebook's names."""
    if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        return set()
    args = statement.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, *filter(None, [args.vararg, args.kwarg])]
    stores = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return {a.arg for a in params} | stores


def _free_names(statement: ast.stmt) -> list[str]:
    """The notebook-level names a statement uses."""
    local = _local_names(statement)
    return [n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and n.id not in local]


# ---- what is flagged ------------------------------------------------------------------------------


def _lib_uses(name: str, reachable: set[str], definitions: dict, aliases: dict):
    """(cell, node, path) for each use of ``lib``'s ``name`` in the code reachable from ``name``."""
    for reached in sorted(reachable):
        for cell, statement in definitions[reached]:
            scoped = _scoped(statement, aliases)
            for node in ast.walk(statement):
                path = _imported_path(node) or _dotted(node, scoped)
                if path and _is_lib_name(path, name):
                    yield cell, node, path.replace("()", "")


def _imported_path(node: ast.AST) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return " ".join(f"{node.module}.{alias.name}" for alias in node.names)
    return None


def _is_lib_name(path: str, name: str) -> bool:
    parts = re.split(r"[.\s]|\(\)", path)
    return parts[0] == "lib" and (name in parts or "?" in parts)


def _tampering(statement: ast.stmt, aliases: dict):
    """(node, reason) for every tampering or escape in a statement."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                for forbidden, reason in FORBIDDEN_MODULES.items():
                    if module == forbidden or module.startswith(forbidden + "."):
                        yield node, reason
            if isinstance(node, ast.ImportFrom) and node.module == "lib" and node.names[0].name == "*":
                yield node, "imports everything from lib"
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute | ast.Subscript):
                    yield from _patch(node, _dotted(target, aliases))
        elif _calls(node, "setattr", "delattr") and node.args:
            base = _dotted(node.args[0], aliases)
            yield from _patch(node, base and f"{base}.?")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            yield node, f"uses {node.id}"
        elif isinstance(node, ast.Attribute) and node.attr in ESCAPES:
            yield node, f"reaches into {node.attr}"
        elif isinstance(node, ast.Attribute) and (_dotted(node, aliases) or "").startswith("sys.modules"):
            yield node, "uses sys.modules"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and REFERENCE_PATH.search(node.value)
        ):
            yield node, "reads the stored references"


def _calls(node: ast.AST, *names: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _patch(node: ast.AST, path: str | None):
    """A change to a module's attribute (not to an object a call returned, like an array)."""
    if not path or "()" in path:
        return
    if path.split(".")[0] in PATCHABLE:
        yield node, f"changes {path}"
    elif path.startswith("sys.modules"):
        yield node, "changes sys.modules"
