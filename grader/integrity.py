"""The integrity report: what in a student's notebook deserves an instructor's look, with its
evidence (the cell, the line, the code, what matched).

Scores cannot be forged: they are computed outside the student's kernel, by a process with no
implementation of the graded stages. So a finding changes no score unless the instructor asks for
it (``python -m grader autograde ... --zero-flagged``, see ``zeroed``): it is a row of
``integrity.csv`` and of the instructor's feedback index. Only the student's cells are scanned:
code cells other than the tests nbgrader restores, and not cells left exactly as released. A
finding names the exercises it concerns: inside a function, those whose function reaches it
(through the student's own functions and names, transitively); at the top level of a cell, every
exercise of the notebook.

Reported:

- lib's own implementation: an exercise's function reaches a name of ``lib`` equal to the
  exercise's: ``lib.embed``, ``from lib import embed``, ``lib.embedding.embed``, an alias, or the
  same reached dynamically (``getattr(lib, "em" + "bed")``, ``vars(lib)[...]``,
  ``lib.__dict__[...]``, ``importlib.import_module("lib.embedding")``, ``sys.modules[...]``, a
  name bound through ``globals()``; a name only known at run time counts as any name); or a
  ``from lib... import *`` that provides the exercise's name with no definition of the student's
  after it.
- near-identical code: the exercise's function, with the helpers it uses, or any other function
  of the student's, contains ``lib``'s implementation of the stage, renamed or not
  (``grader.similarity``, ``NEAR`` of the part of ``lib``'s token sequence that neither the stub,
  the course's solution nor the honest alternatives of ``grader.alternatives`` have; where that
  part is too short to tell, lib's function is not compared). The implementation is lib's function of the exercise's name
  and every function of lib's its reference reaches (``grader.implements``: ``checkpoint_layout``
  for ``count_params``, ``Model``'s methods for ``toy_forward``), but what the chapter lends.
- tampering: assigning to attributes of numpy, ``lib``, ``grader`` or the scorer's own modules
  (also with ``setattr``) or to ``sys.modules``; importing ``importlib``, ``ctypes``, the
  grader's private parts (exercise definitions and references, keys, comparison) or the scorer's
  modules (``HARNESS``: the checks they make in the scorer, that a pure function leaves its
  arguments alone, are the student's to patch there, and would pass unearned);
  ``__globals__``-style escapes and frames (``sys._getframe``, ``f_locals``: the harness's own);
  notebook names bound through ``globals()``.
- private files: a string, or a constant expression, naming the stored references, the solutions,
  the grader's private keys or a process's ``/proc`` entry, in code or in a shell command.
- hidden code: ``exec``, ``eval`` and ``compile`` (also as ``builtins.exec``); when the code is a
  constant string, or its base64, hex or bytes, it is decoded and scanned as a cell of its own
  (its definitions count as the student's). Loading a pickle or marshalled code, naming the
  modules and attributes a constant pickle refers to. Importing a module that is neither the
  standard library nor the course's (``COURSE_MODULES``): its code was not scanned (a notebook
  can write lib's implementation to a file at run time and import it); importing the standard
  library's modules that load or run code given as text, a file or a code object (``runpy``,
  ``code``, ``cProfile``, ``types``, ``builtins``, ...: ``FORBIDDEN_MODULES``); ``sys.path``.
- cell magics: the body of a ``%%capture``, ``%%time``, ``%%timeit``, ``%%prun`` or ``%%python``
  cell is scanned as Python; shell cells and ``!`` lines are strings, scanned for private files.
- grading metadata changed in a way that would have moved points (``grader.clean``).
- code not scanned: the student's cells past the first ``SCANNED`` characters of their code.

Pairs of students with near-identical code for one exercise (stub and course solution left out)
are found when the reports are written (``report``).
"""

import ast
import base64
import binascii
import importlib
import inspect
import pickletools
import re
import sys
import textwrap
from dataclasses import asdict, dataclass, field, replace
from functools import cache

import lib

from . import alternatives, canonical, implements, lending, magics, results, similarity
from .results import Row

# The scorer's modules, importable by these names only where the scores are computed (the harness
# runs there with them on its path): ``watch`` tells whether a pure function changed its arguments,
# ``runners`` checks a sampler's draws, and code that patches them passes those checks unearned.
HARNESS = ("harness", "wire", "runners", "watch")
PATCHABLE = ("numpy", "lib", "grader", *HARNESS)
# The standard library's other ways to load or run code given as text, a file or a code object,
# or to reach exec by name: the scan would not read that code. (timeit runs a string too, but
# students time their code with it in the chapter on cost: its calls are left to the scorer.)
# Not types, gc and dis, which honest scratch cells import (SimpleNamespace, gc.collect(),
# dis.dis) and which run nothing by themselves: what they could be used for is refused as it
# happens, in the scorer (``grader.audit``: a code object made by hand, gc.get_objects and
# get_referrers, reading a function's __code__), and a finding on every exercise for an import
# alone zeroed an honest notebook with --zero-flagged (red team, fifth round). inspect stays: it
# reaches the scorer's frames without any name the scan looks for.
CODE_RUNNERS = (
    "imp runpy zipimport pkgutil modulefinder site code codeop bdb pdb trace profile cProfile "
    "doctest unittest builtins marshal inspect compileall py_compile"
).split()
FORBIDDEN_MODULES = {
    "importlib": "uses importlib",
    "ctypes": "uses ctypes",
    **{name: f"imports {name}, which can run code the scan does not read" for name in CODE_RUNNERS},
    **{name: f"imports the scorer's own {name} module" for name in HARNESS},
    "grader.references": "reads the stored references",
    "grader.compare": "imports the grader's comparison",
    "grader.exercises": "imports the grader's exercise definitions (with their references)",
    "grader.keys": "imports the grader's answer keys",
    "grader.private": "imports the grader's private files",
}
# What a notebook may import besides the standard library: what the scorer has (NumPy, the lent
# lib) and what the course's own cells use. Code the scan has not read is everything else: an
# installed package, or a module the notebook wrote at run time (its text in a string, rot13'd)
# and imported, which would carry lib's implementation past every other finding.
COURSE_MODULES = {"numpy", "lib", "grader", "bookkit", "matplotlib", "ipywidgets", "IPython"}
PRIVATE_GRADER = {"references", "compare", "exercises", "keys", "private", "reference"}
FORBIDDEN_NAMES = {"exec", "eval", "compile", "__import__"}
# Findings about code that runs code the scan does not read, which can define or replace any name:
# they concern every exercise, wherever they are written.
RUNS_CODE = (
    *(f"uses {name}" for name in sorted(FORBIDDEN_NAMES | {"__builtins__", "importlib", "ctypes"})),
    "imports ",
    "binds the notebook name",
)
ESCAPES = {
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__code__",
    "__closure__",
    "f_back",
    "f_locals",
    "f_globals",
    "_getframe",
}
# Seconds the comparison with lib's code may take on one notebook: honest notebooks take one or
# two; code made to take the canonical form long (red team, eighth round: nested functions, minutes
# each) stops there, with a finding.
SCAN_SECONDS = 30
PRIVATE_PATH = re.compile(
    r"references[/\\]|\.safetensors|(^|[/\\])references$|solutions[/\\]|grader[/\\]private"
    r"|concepts\.toml|/proc/(\d+|self)/(cmdline|environ|root|cwd|fd|mem)"
)
PATH_JOINS = {"os.path.join()", "posixpath.join()", "pathlib.Path()", "pathlib.PurePath()"}
PYTHON_MAGICS = {"capture", "time", "timeit", "prun", "python", "python3"}
PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
DECODERS = {
    "b64decode": base64.b64decode,
    "standard_b64decode": base64.standard_b64decode,
    "urlsafe_b64decode": base64.urlsafe_b64decode,
    "decodebytes": base64.decodebytes,
    "b32decode": base64.b32decode,
    "b16decode": base64.b16decode,
    "a85decode": base64.a85decode,
    "b85decode": base64.b85decode,
    "unhexlify": binascii.unhexlify,
    "fromhex": bytes.fromhex,
}
MAX_DECODED = 3  # levels of exec(decode(...)) followed
# Characters of the student's own code scanned, in notebook order (a chapter's solutions have a few
# thousand): the scan takes milliseconds a line, and a notebook may hold millions of characters.
SCANNED = 100_000
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
SCOPES = (*FUNCTIONS, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
FIELDS = ("student", "assignment", "exercises", "reason", "cell", "line", "code")


@dataclass(frozen=True)
class Finding:
    """Suspicious code; ``exercises`` are the exercise names it concerns."""

    exercises: tuple[str, ...]
    reason: str
    cell: int
    line: int
    code: str


@dataclass(frozen=True)
class _Cell:
    """Code to scan: a cell, the body of a Python cell magic, or code a cell runs with ``exec``."""

    index: int
    source: str  # as written (the evidence quotes it)
    tree: ast.Module
    offset: int = 0  # lines before ``source`` in the cell (a cell magic's first line)
    run_at: int = 0  # for code run by exec: the line of the exec in the cell
    decoded: str = ""  # for code run by exec: its first line, quoted in the reasons

    def line(self, node: ast.AST) -> int:
        return self.run_at or getattr(node, "lineno", 1) + self.offset


@dataclass
class Review:
    """One notebook's findings and, by exercise, the fingerprint of the student's code for it."""

    findings: list[Finding] = field(default_factory=list)
    fingerprints: dict[str, dict] = field(default_factory=dict)  # {"cell", "line", "hashes"}


def student_cells(nb, released_sources: set[str]) -> list[tuple[int, str]]:
    """(index, source) of the code cells the student wrote or changed."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        restored = meta.get("locked") and meta.get("grade_id")
        if cell.cell_type == "code" and not restored and cell.source not in released_sources:
            cells.append((index, cell.source))
    return cells


def review(nb, released, source, exercises: list[str], assignment: str, changes=()) -> Review:
    """Everything the report says about an executed notebook: ``released`` is the student
    version, ``source`` the instructor's (its solutions are what honest code looks like),
    ``changes`` what ``grader.clean`` changed."""
    sources = {cell.source for cell in released.cells}
    everything, cells, unscanned = _parse_cells(nb, sources)
    unscanned = _on_every(unscanned, exercises)
    result = Review(unscanned + _static(everything, cells, exercises) + _metadata(changes, exercises))
    try:
        with canonical.within(SCAN_SECONDS):
            _compare_with_lib(result, cells, released, source, exercises, assignment)
    except TimeoutError:
        reason = (
            f"the copy scan stopped after {SCAN_SECONDS} s (honest code takes a second or two): read the code"
        )
        result.findings.append(Finding(tuple(exercises), reason, 0, 1, ""))
    result.findings = sorted(set(result.findings), key=lambda f: (f.cell, f.line, f.reason))
    return result


def _compare_with_lib(
    result: Review, cells: list[_Cell], released, source, exercises, assignment: str
) -> None:
    """The near-identical findings and the fingerprints of ``review``, added to ``result``."""
    definitions = _definitions(cells)
    honest = {name: _honest(released, source, assignment, name) for name in exercises}
    compared = {}  # id of each definition compared here -> its exercise: every other pair is compared below
    known = _wrappers(cells)
    for name in exercises:
        try:
            code = _exercise_code(name, definitions, set(exercises))
        except RecursionError:
            continue
        if code is None:
            continue
        cell, node, text = code
        compared[id(node)] = name
        boilerplate = honest[name]
        body = similarity.bodies(text, known)
        mine = similarity.evidence(text, known, first=body)
        wider = _with_exercises_reached(name, definitions, honest, known)
        for function, theirs in _lib_implementations(assignment, name):
            shares = [
                similarity.containment(similarity.fingerprint(theirs, common), evidence)
                for evidence, common in [(mine, boilerplate), *([wider] if wider else [])]
            ]
            share = max((s for s in shares if s is not None), default=None)
            if share is not None and share >= similarity.NEAR:
                reason = f"near-identical to {function} ({share:.0%} of its own token sequence)"
                result.findings.append(_finding((name,), reason, cell, node))
        hashes = similarity.fingerprint(body, boilerplate)
        result.fingerprints[name] = {"cell": cell.index, "line": cell.line(node), "hashes": sorted(hashes)}
    result.findings += _copies_under_other_names(cells, honest, assignment, result.findings, compared, known)


def _with_exercises_reached(name: str, definitions: dict, honest: dict, known: dict):
    """(evidence, boilerplate) of exercise ``name`` with the other exercises it calls, or ``None``
    if it calls none: lib's function split between two exercises, its first half in one behind a
    keyword argument the other passes, was in neither (red team, eighth round). What honest code
    for those exercises holds is boilerplate too (an honest ``generate`` calls an honest
    ``sample_next``, which is not ``generate``'s copy of lib's)."""
    reached = sorted((_reachable([name], definitions) & set(honest)) - {name})
    whole = _exercise_code(name, definitions, {name}) if reached else None
    if whole is None:
        return None
    return similarity.evidence(whole[2], known), honest[name] + tuple(t for e in reached for t in honest[e])


def _wrappers(cells: list[_Cell]) -> dict:
    """The wrappers the notebook defines at the top of its cells (``canonical.wrappers``, read as
    one module: a name bound in two cells is none), which every function it compares may call."""
    return canonical.wrappers(ast.Module([s for cell in cells for s in cell.tree.body], []))


def _copies_under_other_names(
    cells: list[_Cell], honest: dict, assignment: str, found, compared: dict[int, str], known: dict
) -> list[Finding]:
    """lib's implementation of an exercise in any other function the student wrote (a method, a
    nested function, a lambda, one under another name, under the exercise's name where ``review``
    did not compare it, or another exercise's function): the comparison above follows only the
    exercise's last ``def``, its helpers and the exercises it calls, and lib's code as ``_impl`` with ``embed = _impl``
    (or a lambda, or a class's method) escaped it (red team, third round), and so did lib's
    ``rms_norm`` inside an honest ``layer_norm``, behind a keyword argument that ``rms_norm``
    passes (red team, seventh round). Each copy is a finding on the exercise lib's function
    implements; ``honest``: by exercise, the code of its released stub and its solution, left out
    of the comparison as in ``review``; ``compared``: the exercise of each definition ``review``
    compared (by id), whose pair with that exercise's lib is not compared twice; ``known``: the
    notebook's wrappers (red team, sixth round: lib's code as ``_layer_norm``, every name through
    a wrapper, was compared without them)."""
    told = {(f.exercises, f.reason) for f in found}
    libs = [
        (name, function, similarity.fingerprint(theirs, boilerplate))
        for name, boilerplate in honest.items()
        for function, theirs in _lib_implementations(assignment, name)
    ]
    findings = []
    for cell in cells:
        for node in ast.walk(cell.tree):
            if not isinstance(node, FUNCTIONS):
                continue
            mine = similarity.evidence(_source(node), known)
            for name, function, theirs in libs:
                if compared.get(id(node)) == name:
                    continue
                share = similarity.containment(theirs, mine)
                reason = f"near-identical to {function} ({share or 0:.0%} of its own token sequence)"
                if share is not None and share >= similarity.NEAR and ((name,), reason) not in told:
                    told.add(((name,), reason))
                    findings.append(_finding((name,), reason, cell, node))
    return findings


def _source(function: ast.AST) -> str:
    """A function's source as ``similarity`` compares it (a lambda's: ``return`` its expression)."""
    if isinstance(function, ast.Lambda):
        return f"def _():\n    return {ast.unparse(function.body)}"
    return ast.unparse(function)


def scan(nb, released_sources: set[str], exercises: list[str]) -> list[Finding]:
    """The static findings in the student's cells of a notebook, for the given exercise names."""
    everything, cells, unscanned = _parse_cells(nb, released_sources)
    return sorted(
        set(_on_every(unscanned, exercises) + _static(everything, cells, exercises)),
        key=lambda f: (f.cell, f.line, f.reason),
    )


def _on_every(findings: list[Finding], exercises: list[str]) -> list[Finding]:
    """``findings`` about code the scan did not read, on every exercise: that code runs in the
    scorer and can define any of them (red team, third round: padding that pushed the code past
    the scan gave a finding on no exercise, which --zero-flagged never zeroed)."""
    return [replace(finding, exercises=tuple(exercises)) for finding in findings]


def zeroed(rows: list[Row], findings: list[Finding]) -> list[Row]:
    """``rows`` with every exercise a finding concerns at 0, status ``integrity`` (the
    instructor's ``--zero-flagged``)."""
    reasons: dict[str, list[str]] = {}
    for finding in findings:
        for name in finding.exercises:
            reasons.setdefault(name, []).append(
                f"{finding.reason} (cell {finding.cell}, line {finding.line})"
            )
    return [
        replace(row, score=0, status="integrity", reason="; ".join(reasons[row.exercise]))
        if row.exercise in reasons
        else row
        for row in rows
    ]


def pairs(code: dict[tuple[str, str], dict[str, dict]]) -> list[dict]:
    """Findings for the pairs of students whose code for an exercise is near-identical.

    ``code`` maps (assignment, exercise) to each student's fingerprint (``Review.fingerprints``).
    """
    found = []
    for (assignment, name), by_student in sorted(code.items()):
        hashes = {student: set(fp["hashes"]) for student, fp in by_student.items()}
        for a, b, share in similarity.pairs(hashes):
            for student, other in ((a, b), (b, a)):  # the same evidence against each of the two
                theirs, ours = by_student[other], by_student[student]
                reason = (
                    f"near-identical to {other}'s {name} (cell {theirs['cell']}, line {theirs['line']}):"
                    f" {share:.0%} of their uncommon token sequences are shared"
                )
                found.append(
                    {
                        "student": student,
                        "assignment": assignment,
                        "exercises": [name],
                        "reason": reason,
                        "cell": ours["cell"],
                        "line": ours["line"],
                        "code": "",
                    }
                )
    return found


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(finding) for finding in findings]


# ---- cells --------------------------------------------------------------------------------------------


def _parse_cells(nb, released_sources: set[str]) -> tuple[list[_Cell], list[_Cell], list[Finding]]:
    """Every code cell parsed (what the notebook's names mean depends on all of them), the
    student's among them while ``SCANNED`` lasts, and a finding for each student cell too large or
    deep to parse, and one for the student's cells past ``SCANNED``. A cell that is not Python is
    skipped: it cannot run either."""
    everything, unscanned, left, budget = [], [], SCANNED, magics.Budget()
    students = {index for index, _ in student_cells(nb, released_sources)}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index in students:
            left -= len(cell.source)
            if left < 0:
                if left + len(cell.source) >= 0:  # the first cell past the budget
                    unscanned.append(_not_scanned(nb, students, index))
                continue
        try:
            everything += _parse(index, cell.source, budget)
        except (RecursionError, MemoryError, _Unread) as err:
            if index in students:
                reason = (
                    str(err) if isinstance(err, _Unread) else "the cell is nested too deeply to be scanned"
                )
                unscanned.append(Finding((), reason, index, 1, cell.source.partition("\n")[0][:200]))
    return everything, [cell for cell in everything if cell.index in students], unscanned


def _not_scanned(nb, students: set[int], first: int) -> Finding:
    rest = [index for index in sorted(students) if index >= first]
    size = sum(len(nb.cells[index].source) for index in rest)
    reason = (
        f"not scanned: {len(rest)} cells of the student's code from this one on ({size:,} characters), "
        f"past the first {SCANNED:,} characters the scan reads"
    )
    return Finding((), reason, first, 1, nb.cells[first].source.partition("\n")[0][:200])


class _Unread(Exception):
    """A cell the scan could not read, though the scorer runs it."""


def _parse(
    index: int, source: str, budget: magics.Budget, depth: int = 0, run_at: int = 0, decoded: str = ""
) -> list[_Cell]:
    """A cell (or a cell magic's Python body), then the code it runs with exec, decoded
    (``budget``: the notebook's, ``grader.magics``)."""
    magic, body, before = magics.cell_magic(source)
    text, offset = (body, before) if magic in PYTHON_MAGICS else (source, 0)
    try:
        tree = ast.parse(text)  # plain Python, as the scorer's program reads it first: no budget spent
    except (SyntaxError, ValueError):
        try:
            tree = ast.parse(magics.python(text, budget))
        except SyntaxError:
            return []  # not Python: it cannot run either
        except ValueError:  # past the notebook's budget for IPython syntax
            raise _Unread("not scanned: the cell holds more IPython syntax than the scan reads") from None
    cell = _Cell(index, source, tree, offset, run_at, decoded)
    cells = [cell]
    if depth < MAX_DECODED:
        for node in ast.walk(tree):
            if _calls_exec(node) and node.args and (code := _decoded(node.args[0])):
                quoted = code.strip().partition("\n")[0][:80]
                cells += _parse(index, code, budget, depth + 1, run_at or cell.line(node), decoded or quoted)
    return cells


def _finding(exercises, reason: str, cell: _Cell, node: ast.AST) -> Finding:
    """A finding with its evidence: the line of the cell, or for code run by exec, the line of
    the exec and the decoded line."""
    lines = cell.source.splitlines()
    at = getattr(node, "lineno", 1) + cell.offset
    code = lines[at - 1].strip() if 0 < at <= len(lines) else ""
    if cell.decoded:
        reason = f"{reason}, in code run by exec ({cell.decoded!r})"
    return Finding(tuple(exercises), reason, cell.index, cell.line(node), code[:200])


# ---- constants the code computes ------------------------------------------------------------------------


def _constant(node: ast.AST) -> str | bytes | None:
    """The value of a constant expression built from strings: literals, ``+``, f-strings of
    constants, ``"".join`` of constants, ``.decode()``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant(node.left), _constant(node.right)
        if left is not None and right is not None and type(left) is type(right):
            return left + right
    if isinstance(node, ast.JoinedStr):
        parts = [_constant(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values]
        return "".join(parts) if all(isinstance(p, str) for p in parts) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        base = _constant(node.func.value)
        if node.func.attr == "join" and isinstance(base, str) and node.args:
            items = node.args[0].elts if isinstance(node.args[0], ast.List | ast.Tuple) else []
            values = [_constant(item) for item in items]
            return base.join(values) if items and all(isinstance(v, str) for v in values) else None
        if node.func.attr == "decode" and isinstance(base, bytes):
            return base.decode("utf-8", "replace")
    return None


def _decoded(node: ast.AST) -> str | None:
    """Code given to exec as a constant, or as the base64, base32, hex or bytes of one."""
    value = _constant(node)
    if value is None and isinstance(node, ast.Call):
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if function == "decode" and isinstance(node.func, ast.Attribute):
            value = _decoded_bytes(node.func.value)
        elif function in DECODERS:
            value = _decoded_bytes(node)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def _decoded_bytes(node: ast.AST) -> bytes | None:
    value = _constant(node)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(node, ast.Call) and node.args:
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        inner = _decoded_bytes(node.args[0])
        if function in DECODERS and inner is not None:
            try:
                return DECODERS[function](inner.decode("ascii") if function == "fromhex" else inner)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return None
    return None


def _calls_exec(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES - {"__import__"}) or (
        isinstance(func, ast.Attribute)
        and func.attr in FORBIDDEN_NAMES - {"__import__"}
        and _is_builtins(func.value)
    )


def _is_builtins(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("builtins", "__builtins__")


# ---- names ----------------------------------------------------------------------------------------------


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
        for name, value in _assignments(nodes):
            if path := _dotted(value, aliases):
                aliases[name] = path
    return aliases


def _import_aliases(node: ast.AST) -> dict[str, str]:
    """The names an import statement binds, and what each stands for (star imports: none)."""
    if isinstance(node, ast.Import):
        return {
            alias.asname or alias.name.split(".")[0]: alias.name if alias.asname else alias.name.split(".")[0]
            for alias in node.names
        }
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return {
            alias.asname or alias.name: f"{node.module}.{alias.name}"
            for alias in node.names
            if alias.name != "*"
        }
    return {}


def _assignments(nodes) -> list[tuple[str, ast.AST]]:
    """(name, value) for every name the nodes bind to a value: ``x = v``, ``globals()["x"] = v``,
    ``globals().update(x=v)``, ``globals().update({"x": v})``, ``globals().__setitem__("x", v)``
    (a name only known at run time is ``?``)."""
    found = []
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.append((target.id, node.value))
                elif _is_globals_item(target):
                    found.append((_name_or_any(target.slice), node.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_globals(node.func.value)
        ):
            if node.func.attr == "update":
                found += [(k.arg, k.value) for k in node.keywords if k.arg]
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        found += [
                            (_name_or_any(k), v) for k, v in zip(arg.keys, arg.values, strict=True) if k
                        ]
            elif node.func.attr in ("__setitem__", "setdefault") and len(node.args) == 2:
                found.append((_name_or_any(node.args[0]), node.args[1]))
    return found


def _is_globals(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "globals"


def _is_globals_item(node: ast.AST) -> bool:
    return isinstance(node, ast.Subscript) and _is_globals(node.value)


def _name_or_any(node: ast.AST) -> str:
    value = _constant(node)
    return value if isinstance(value, str) else "?"


def _scoped(function: ast.AST, aliases: dict[str, str]) -> dict[str, str]:
    """The aliases seen inside a function (or a lambda): its parameters and local names shadow
    those around it, and its own imports and assignments add to them."""
    if not isinstance(function, FUNCTIONS):
        return aliases
    local = _local_names(function)
    scoped = {name: path for name, path in aliases.items() if name not in local}
    nodes = _own_nodes(function)
    for node in nodes:
        scoped.update(_import_aliases(node))
    for _ in range(3):  # local assignments may refer to each other
        for name, value in _assignments(nodes):
            if path := _dotted(value, scoped):
                scoped[name] = path
    return scoped


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """What an expression refers to, as a dotted path through known modules, or ``None``; an
    attribute whose name is only known at run time is ``?``."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):
        base = _dotted(node.value, aliases)
        if base and base.endswith(".__dict__"):  # vars(lib)["embed"], lib.__dict__["embed"]
            return f"{base.removesuffix('.__dict__')}.{_name_or_any(node.slice)}"
        if base == "sys.modules":  # sys.modules["lib.embedding"]
            key = _name_or_any(node.slice)
            return key if key != "?" else "sys.modules.?"
        return base
    if isinstance(node, ast.Call):
        return _called(node, aliases)
    return None


def _called(node: ast.Call, aliases: dict[str, str]) -> str | None:
    func = node.func.id if isinstance(node.func, ast.Name) and node.func.id not in aliases else None
    if func == "getattr" and len(node.args) >= 2:
        base = _dotted(node.args[0], aliases)
        return f"{base}.{_name_or_any(node.args[1])}" if base else None
    if func == "vars" and node.args:
        base = _dotted(node.args[0], aliases)
        return f"{base}.__dict__" if base else None
    if func == "__import__" and node.args:
        return _name_or_any(node.args[0]).split(".")[0]
    base = _dotted(node.func, aliases)
    if base in ("importlib.import_module", "importlib.__import__") and node.args:
        return _name_or_any(node.args[0])
    return f"{base}()" if base else None


def _walk_scoped(node: ast.AST, aliases: dict[str, str]):
    """(node, the aliases in force there) for ``node`` and every node in it: inside a function or a
    lambda, its own names shadow those around it (``_scoped``); its decorators and return
    annotation are read around it."""
    todo = [(node, aliases)]
    while todo:
        current, scope = todo.pop()
        yield current, scope
        if isinstance(current, FUNCTIONS):
            outside = {id(n) for n in getattr(current, "decorator_list", [])} | {
                id(getattr(current, "returns", None))
            }
            inner = _scoped(current, scope)
            todo += [
                (child, scope if id(child) in outside else inner) for child in ast.iter_child_nodes(current)
            ]
        else:
            todo += [(child, scope) for child in ast.iter_child_nodes(current)]


def _module_level(body: list[ast.stmt]):
    """The statements that run in the notebook's namespace: those of ``body`` and, inside its
    compound statements (``if``, ``for``, ``while``, ``try``, ``with``, ``match``), theirs: a
    ``def`` under ``if True:`` binds a notebook name as one at the top does (red team, fourth
    round: it escaped both comparisons with lib)."""
    for statement in body:
        yield statement
        if not isinstance(statement, DEFINITIONS):
            yield from _module_level(_children_statements(statement))


def _definitions(cells: list[_Cell]) -> dict[str, list[tuple[_Cell, ast.AST]]]:
    """Notebook-level name -> the student's statements that bind it."""
    found: dict[str, list] = {}
    for cell in cells:
        for statement in _module_level(cell.tree.body):
            for name in _bound_names(statement):
                found.setdefault(name, []).append((cell, statement))
    return found


def names_bound(source: str) -> set[str]:
    """Every name ``source`` defines or declares global anywhere in it (a function, a class, an
    assignment, ``global``); none if it is not Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, DEFINITIONS):
            names.add(node.name)
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _bound_names(statement: ast.stmt) -> list[str]:
    """The notebook names a statement binds itself (a compound statement: in its header, ``for``'s
    target, ``with``'s ``as``, ``except``'s name; ``_module_level`` gives the statements inside)."""
    if isinstance(statement, DEFINITIONS):
        return [statement.name]
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return [alias.asname or alias.name.split(".")[0] for alias in statement.names if alias.name != "*"]
    if _children_statements(statement):
        header = _header(statement)
        names = [name for name, _ in _assignments(header)]
        names += [n.id for n in header if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        names += [
            n.name
            for n in header
            if isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and n.name
        ]
        return list(dict.fromkeys(names))
    names = [name for name, _ in _assignments(ast.walk(statement))]
    if isinstance(statement, ast.AnnAssign | ast.AugAssign) and isinstance(statement.target, ast.Name):
        names.append(statement.target.id)
    if isinstance(statement, ast.Assign):
        names += [
            n.id
            for t in statement.targets
            for n in ast.walk(t)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        ]
    return list(dict.fromkeys(names))


def _top_level_names(cells: list[_Cell]) -> list[str]:
    """Names used by the statements that run when a cell runs (not inside a definition)."""
    statements = [s for cell in cells for s in cell.tree.body if not isinstance(s, DEFINITIONS)]
    return [n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name)]


def _reachable(names: list[str], definitions: dict) -> set[str]:
    """The student's top-level names reachable from ``names`` through the names each one uses;
    a name bound at run time (``?``) is reached from anywhere."""
    seen, todo = set(), [*names, "?"]
    while todo:
        current = todo.pop()
        if current in seen or current not in definitions:
            continue
        seen.add(current)
        for _, statement in definitions[current]:
            todo += _free_names(statement)
    return seen


def _children_statements(statement: ast.stmt) -> list[ast.stmt]:
    """The statements directly inside a compound statement (none for a simple one)."""
    inner = [
        *getattr(statement, "body", []),
        *getattr(statement, "orelse", []),
        *getattr(statement, "finalbody", []),
    ]
    inner += [
        s
        for part in (*getattr(statement, "handlers", []), *getattr(statement, "cases", []))
        for s in part.body
    ]
    return [s for s in inner if isinstance(s, ast.stmt)]


def _header(statement: ast.stmt) -> list[ast.AST]:
    """Every node of a compound statement but those of the statements inside it."""
    inside = {id(n) for s in _children_statements(statement) for n in ast.walk(s)}
    return [n for n in ast.walk(statement) if id(n) not in inside]


def _own_nodes(function: ast.AST) -> list[ast.AST]:
    """The nodes of a function's (or a lambda's) own scope: its body's, but not the bodies of the
    functions, lambdas, classes and comprehensions in it, which are scopes of their own."""
    todo = [function.body] if isinstance(function, ast.Lambda) else list(function.body)
    found = []
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, SCOPES):
            todo += ast.iter_child_nodes(node)
    return found


def _local_names(function: ast.AST) -> set[str]:
    """A function's (or a lambda's) parameters and the names it binds in its own scope: they
    shadow the names around it (``global`` and ``nonlocal`` ones do not)."""
    if not isinstance(function, FUNCTIONS):
        return set()
    args = function.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, *filter(None, [args.vararg, args.kwarg])]
    own = _own_nodes(function)
    stores = {n.id for n in own if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    stores |= {n.name for n in own if isinstance(n, DEFINITIONS)}
    stores |= {name for n in own for name in _import_aliases(n)}
    declared = {name for n in own if isinstance(n, ast.Global | ast.Nonlocal) for name in n.names}
    return ({a.arg for a in params} | stores) - declared


def _free_names(statement: ast.stmt) -> list[str]:
    """The notebook-level names a statement uses: those no function (or lambda) in it, around
    where the name is used, binds (a method's parameter ``x`` is not the notebook's ``x``)."""
    free, todo = [], [(statement, frozenset())]
    while todo:
        node, bound = todo.pop()
        if isinstance(node, ast.Name) and node.id not in bound:
            free.append(node.id)
        inner = bound | _local_names(node) if isinstance(node, FUNCTIONS) else bound
        todo += [(child, inner) for child in ast.iter_child_nodes(node)]
    return free


# ---- what is reported -----------------------------------------------------------------------------------


def _static(everything: list[_Cell], cells: list[_Cell], exercises: list[str]) -> list[Finding]:
    """The findings in the student's ``cells``, names resolved over ``everything``."""
    aliases = _aliases(everything)
    definitions = _definitions(cells)
    reach = {name: _reachable([name], definitions) for name in exercises}
    top_level = _reachable(_top_level_names(cells), definitions)
    findings = []
    for cell in cells:
        for statement in cell.tree.body:
            owner = statement.name if isinstance(statement, DEFINITIONS) else None
            runs_anyway = owner is None or owner in top_level
            concerned = tuple(n for n in exercises if runs_anyway or owner in reach[n])
            try:
                at_definition = _runs_when_defined(statement)
                for node, reason in _tampering(statement, aliases):
                    anywhere = id(node) in at_definition or reason.startswith(RUNS_CODE)
                    findings.append(_finding(tuple(exercises) if anywhere else concerned, reason, cell, node))
            except RecursionError:
                findings.append(
                    _finding(tuple(exercises), "code nested too deeply to be scanned", cell, statement)
                )
    for name in exercises:
        for cell, node, path in _lib_uses(name, reach[name], definitions, aliases):
            findings.append(_finding((name,), f"uses lib's own {name} ({path})", cell, node))
        findings += _star_imports(name, cells, definitions)
    return findings


def _runs_when_defined(statement: ast.stmt) -> set[int]:
    """The ids of the nodes of a definition that run when it is made, not when it is called: its
    decorators, default values and annotations, and a class's body but its methods' bodies
    (red team, third round: ``exec`` in a class body or a default value named no exercise)."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        args = statement.args
        parts = [
            *statement.decorator_list,
            *args.defaults,
            *filter(None, args.kw_defaults),
            statement.returns,
        ]
        parts += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.annotation]
    elif isinstance(statement, ast.ClassDef):
        parts = [*statement.decorator_list, *statement.bases, *statement.keywords]
        inner = [_runs_when_defined(s) for s in statement.body if isinstance(s, DEFINITIONS)]
        parts += [s for s in statement.body if not isinstance(s, DEFINITIONS)]
        return {id(n) for part in parts for n in ast.walk(part)}.union(*inner)
    else:
        return set()
    return {id(n) for part in parts if part is not None for n in ast.walk(part)}


def _lib_uses(name: str, reachable: set[str], definitions: dict, aliases: dict):
    """(cell, node, path) for each use of ``lib``'s ``name`` in the code reachable from ``name``."""
    for reached in sorted(reachable):
        for cell, statement in definitions[reached]:
            try:
                for node, scoped in _walk_scoped(statement, aliases):
                    path = _imported_path(node) or _dotted(node, scoped)
                    if path and _is_lib_name(path, name):
                        yield cell, node, path.replace("()", "")
            except RecursionError:
                continue


def _imported_path(node: ast.AST) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return " ".join(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*") or None
    return None


def _is_lib_name(path: str, name: str) -> bool:
    parts = re.split(r"[.\s]|\(\)", path)
    return parts[0] == "lib" and (name in parts or "?" in parts)


def _star_imports(name: str, cells: list[_Cell], definitions: dict) -> list[Finding]:
    """``from lib... import *`` providing ``name``, with no definition of the student's after it."""
    own = [(cell.index, cell.line(s)) for cell, s in definitions.get(name, [])]
    found = []
    for cell in cells:
        for statement in cell.tree.body:
            if not (isinstance(statement, ast.ImportFrom) and statement.module and _star(statement)):
                continue
            if name in _exported(statement.module) and not any(
                place > (cell.index, cell.line(statement)) for place in own
            ):
                reason = f"uses lib's own {name} (from {statement.module} import *, not redefined after it)"
                found.append(_finding((name,), reason, cell, statement))
    return found


def _star(statement: ast.ImportFrom) -> bool:
    return any(alias.name == "*" for alias in statement.names)


def _exported(module: str) -> set[str]:
    """The public names of a module of ``lib`` (the course's own code, safe to import)."""
    if module.split(".")[0] != "lib":
        return set()
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return set()
    return set(getattr(loaded, "__all__", None) or (n for n in dir(loaded) if not n.startswith("_")))


def _unread(node: ast.Import | ast.ImportFrom, module: str):
    """(node, reason) for an import of code the scan cannot read (``COURSE_MODULES``)."""
    top = module.partition(".")[0]
    if getattr(node, "level", 0) or not (top in sys.stdlib_module_names or top in COURSE_MODULES):
        shown = "." * getattr(node, "level", 0) + module
        yield (
            node,
            (
                f"imports {shown}, which is neither the standard library, NumPy nor the course's: its code "
                "was not scanned (a module the notebook wrote at run time, say), and the scorer cannot import it"
            ),
        )


def _tampering(statement: ast.stmt, notebook: dict):
    """(node, reason) for everything suspicious in a statement but uses of lib's implementation."""
    for node, aliases in _walk_scoped(statement, notebook):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                for forbidden, reason in FORBIDDEN_MODULES.items():
                    if module == forbidden or module.startswith(forbidden + "."):
                        yield node, reason
                yield from _unread(node, module)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if _is_globals_item(target):
                    yield node, f"binds the notebook name {_name_or_any(target.slice)!r} through globals()"
                elif isinstance(target, ast.Subscript) and _dotted(target.value, aliases) == "sys.modules":
                    yield node, "changes sys.modules"
                elif isinstance(target, ast.Attribute | ast.Subscript):
                    yield from _patch(node, _dotted(target, aliases))
        elif isinstance(node, ast.Call):
            yield from _suspicious_call(node, aliases)
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id == "__builtins__"):
            yield node, f"uses {node.id}"
        elif isinstance(node, ast.Attribute):
            yield from _suspicious_attribute(node, aliases)
        elif isinstance(node, ast.Constant | ast.BinOp | ast.JoinedStr):
            yield from _private_path(node)


def _suspicious_call(node: ast.Call, aliases: dict):
    if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
        base = _dotted(node.args[0], aliases)
        yield from _patch(node, base and f"{base}.?")
    if isinstance(node.func, ast.Attribute) and _is_globals(node.func.value):
        if node.func.attr in ("update", "__setitem__", "setdefault"):
            names = [name for name, _ in _assignments([node])] or ["?"]
            yield node, f"binds the notebook name(s) {', '.join(map(repr, names))} through globals()"
    path = _dotted(node, aliases) or ""
    module, _, function = path.removesuffix("()").rpartition(".")
    if module.split(".")[0] in PICKLERS and function in ("loads", "load", "Unpickler", "open"):
        yield (
            node,
            f"loads {'compiled code' if module == 'marshal' else 'pickled objects'} ({path}){_pickle_refs(node)}",
        )
    if path in PATH_JOINS and node.args:
        parts = [_constant(arg) for arg in node.args]
        if all(isinstance(p, str) for p in parts) and PRIVATE_PATH.search("/".join(parts)):
            yield node, "reads a private file of the course"


def _suspicious_attribute(node: ast.Attribute, aliases: dict):
    if node.attr in ESCAPES:
        yield node, f"reaches into {node.attr}"
    elif node.attr in FORBIDDEN_NAMES and _is_builtins(node.value):
        yield node, f"uses builtins.{node.attr}"
    path = _dotted(node, aliases) or ""
    if path.startswith("sys.modules"):
        yield node, "uses sys.modules"
    if path.startswith(("sys.path", "sys.meta_path")):  # where imports look: a module written at run time
        yield node, f"uses {path.split('.')[0]}.{path.split('.')[1]}"
    if path.startswith("grader.") and node.attr in PRIVATE_GRADER:
        yield node, f"reaches the grader's private parts ({path.replace('()', '')})"


def _private_path(node: ast.AST):
    value = _constant(node)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and (match := PRIVATE_PATH.search(value)):
        start = value.rfind("\n", 0, match.start()) + 1
        end = value.find("\n", match.end())
        line = value[start : end if end >= 0 else None].strip()[:120]
        yield node, f"reads a private file of the course ({match[0]!r} in {line!r})"


def _pickle_refs(node: ast.Call) -> str:
    """The module and attribute names a constant pickle argument refers to, as evidence."""
    data = _decoded_bytes(node.args[0]) if node.args else None
    if data is None:
        return ""
    try:
        names = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    except Exception:  # a damaged pickle: pickletools raises what it meets
        return ": not a readable pickle"
    named = [n for n in names if re.fullmatch(r"[\w.]+", n)][:6]
    return f": it names {' '.join(named)}" if named else ""


def _patch(node: ast.AST, path: str | None):
    """A change to a module's attribute (not to an object a call returned, like an array)."""
    if not path or "()" in path:
        return
    if path.split(".")[0] in PATCHABLE:
        yield node, f"changes {path}"
    elif path.startswith("sys.modules"):
        yield node, "changes sys.modules"


def _metadata(changes, exercises: list[str]) -> list[Finding]:
    """``grader.clean``'s suspicious changes, as findings about the exercise of the cell."""
    found = []
    for change in changes:
        if change.suspicious:
            name = change.grade_id.removesuffix("-answer")
            concerned = (name,) if name in exercises else ()
            found.append(Finding(concerned, f"grading metadata: {change.what}", change.cell, 0, ""))
    return found


# ---- near-identical code ----------------------------------------------------------------------------------


def _exercise_code(name: str, definitions: dict, exercises: set[str]):
    """(cell, node, source) of the student's last definition of ``name`` followed by the
    functions of theirs it uses that are not exercises themselves; ``None`` if they wrote none."""
    own = [(cell, s) for cell, s in definitions.get(name, []) if isinstance(s, ast.FunctionDef)]
    if not own:
        return None
    cell, node = own[-1]
    helpers = _reachable([name], definitions) - exercises - {name}
    parts = [(cell, node)] + [
        (c, s) for helper in sorted(helpers) for c, s in definitions[helper] if isinstance(s, ast.FunctionDef)
    ]
    text = "\n".join(ast.unparse(s) for _, s in parts)
    return cell, node, text


def _answer_code(nb, name: str) -> str:
    """The source of the answer cells of ``nb`` (the release's stub, the instructor's solution)
    that define ``name``."""
    sources = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if (
            cell.cell_type == "code"
            and meta.get("solution")
            and re.search(rf"\bdef {re.escape(name)}\b", cell.source)
        ):
            sources.append(similarity.bodies(cell.source))
    return "\n".join(sources)


def compared(released, source, assignment: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(exercise, lib's function, its body, the honest code left out) for every pair the scan
    compares in ``assignment`` (``released`` and ``source``: its student and instructor
    notebooks): those where lib's code, the honest code left out, is long enough to tell a copy."""
    found = []
    for test in results.test_cells(source):
        honest = _honest(released, source, assignment, test.name)
        for function, body in _lib_implementations(assignment, test.name):
            if similarity.containment(similarity.fingerprint(body, honest), set()) is not None:
                found.append((test.name, function, body, honest))
    return found


def _honest(released, source, assignment: str, name: str) -> tuple[str, ...]:
    """What honest code for exercise ``name`` holds, left out of lib's fingerprint and of the
    student's for the pairs: the released stub, the course's solution, and the honest
    alternatives to each function of lib's that implements it (``grader.alternatives``)."""
    others = (
        body
        for function, _ in _lib_implementations(assignment, name)
        for body in alternatives.bodies(function)
    )
    return (_answer_code(released, name), _answer_code(source, name), *others)


@cache
def _lib_implementations(assignment: str, name: str) -> list[tuple[str, str]]:
    """(name, body) of the functions of ``lib`` that implement exercise ``name``: the one of the
    same name, and those its reference reaches (``grader.implements``), but what the chapter lends."""
    same = getattr(lib, name, None)
    lent = lending.lent_definitions(assignment)
    functions = [same] if inspect.isfunction(same) and implements.key(same) not in lent else []
    try:
        functions += implements.reached(f"{assignment}/{name}")
    except KeyError:
        pass
    return [
        (_lib_name(function), similarity.bodies(_untraced(textwrap.dedent(inspect.getsource(function)))))
        for function in dict.fromkeys(functions)
    ]


def _lib_name(function) -> str:
    """How a reader reaches ``function``: ``lib.embed``, ``lib.Model.forward``,
    ``lib.checkpoint.checkpoint_layout`` (not exported at the top)."""
    top = function.__qualname__.split(".")[0]
    exported = getattr(lib, top, None) is getattr(sys.modules[function.__module__], top)
    return f"{'lib' if exported else function.__module__}.{function.__qualname__}"


class _Untraced(ast.NodeTransformer):
    """``traced("probs", value)`` -> ``value``: lib's trace records compute nothing, and a copy of
    lib's function made in a notebook leaves them out (``lib.trace``)."""

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "traced" and len(node.args) == 2:
            return node.args[1]
        return node


def _untraced(source: str) -> str:
    return ast.unparse(_Untraced().visit(ast.parse(source)))
