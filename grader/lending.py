"""What the scorer lends a chapter's students: a ``lib`` with only what they may build on.

Each chapter module declares ``LENDS``, the ``lib`` functions its course cells give students to
build on (``softmax`` in chapter 2, ``Config`` in chapter 6), and ``GRADED``, the ``lib``
functions that compute its exercises. The scorer's ``lib`` is made from ``lib``'s own source at
grading time: the lent names, and every top-level definition of ``lib`` they reference, followed
transitively through the package's modules and imports (an AST closure), written out as a package
with ``lib``'s module layout. Everything else, the graded stages and all that composes them
(``Model.forward``, ``generate``, ``block``), is absent by construction, not removed by a list;
``closure`` refuses a lending that would reach a graded name.

Inside the student's kernel, ``check`` watches the calls the student's function makes while the
visible cases run (``unlent_calls``): a call from the student's code into ``lib`` outside the
closure would fail when graded, and is reported at once. What the garbage collector runs meanwhile
(another package's ``gc`` callback, a finalizer) is not a call of the student's and is not watched.

The closure is built from source with ``ast`` and ``symtable``, so it follows ``lib`` as it is
refactored: it needs only that ``lib`` is a package of modules whose top-level statements bind
names (imports, assignments, ``def``, ``class``). A name reached only dynamically (``getattr``
with a computed string) is not followed; ``tests/test_lending.py`` runs every lent function in
the generated package against the real one.
"""

import ast
import dis
import functools
import gc
import importlib.util
import os
import sys
import sysconfig
import types
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import lib

from . import exercises, names

LIB = Path(lib.__file__).resolve().parent
PACKAGE = "lib"


@dataclass
class _Statement:
    """One top-level statement of a module, and what it needs."""

    node: ast.stmt
    binds: set[str]
    uses: set[str] = field(default_factory=set)  # top-level names of its own module it reads
    reaches: set[tuple[str, str]] = field(default_factory=set)  # (module, name) read through a module alias
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> what it imports


class Source:
    """``lib``'s modules, parsed: for every top-level statement, what it binds and needs."""

    def __init__(self, root: Path = LIB, package: str = PACKAGE):
        self.root, self.package = root, package
        trees = {}
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join((package, *(parts[:-1] if is_package else parts)))
            trees[name] = (ast.parse(path.read_text(), str(path)), is_package)
        self.packages = {name for name, (_, is_package) in trees.items() if is_package}
        self.docstrings = {name: ast.get_docstring(tree, clean=False) for name, (tree, _) in trees.items()}
        self.modules: dict[str, list[_Statement]] = {}
        for name, (tree, is_package) in trees.items():
            self.modules[name] = [self._statement(name, node, is_package, set(trees)) for node in tree.body]
        for statements in self.modules.values():
            aliases = {
                alias: target
                for s in statements
                for alias, (target, attr) in s.imports.items()
                if attr is None and target in self.modules
            }
            for stmt in statements:
                for sub in ast.walk(stmt.node):
                    if (
                        isinstance(sub, ast.Attribute)
                        and isinstance(sub.value, ast.Name)
                        and sub.value.id in aliases
                        and not stmt.imports
                    ):
                        stmt.reaches.add((aliases[sub.value.id], sub.attr))

    def _statement(self, module: str, node: ast.stmt, is_package: bool, modules: set[str]) -> _Statement:
        node = _without_annotations(node)
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports = _import_targets(node, module, is_package, modules, self.package)
            return _Statement(node, set(imports), imports=imports)
        source = ast.unparse(node)
        return _Statement(node, names.bound(source), uses=names.read(source))

    def closure(
        self, lent: Iterable[str], graded: Iterable[str] = ()
    ) -> dict[str, dict[int, set[str] | None]]:
        """For each module to write, the statements to keep by index: ``None`` for a definition,
        the aliases it must still bind for an import. Raises ``ValueError`` if a name is not in
        the package or the closure would reach a ``graded`` name."""
        graded = set(graded)
        kept: dict[str, dict[int, set[str] | None]] = {self.package: {}}
        todo = [(self.package, name) for name in lent]
        for module, name in todo:
            if not self._binders(module, name):
                raise ValueError(f"{self.package} has no {name!r} to lend")
        seen: set[tuple[str, str]] = set()
        while todo:
            module, name = todo.pop()
            if (module, name) in seen:
                continue
            seen.add((module, name))
            for index in self._binders(module, name):
                stmt = self.modules[module][index]
                kept.setdefault(module, {})
                if stmt.imports:
                    kept[module].setdefault(index, set()).add(name)
                    target, attr = stmt.imports[name]
                    if target in self.modules:
                        kept.setdefault(target, {})
                        if attr is not None:
                            todo.append((target, attr))
                    continue
                if stmt.binds & graded:
                    raise ValueError(
                        f"lending reaches {sorted(stmt.binds & graded)} in {module}, graded here"
                    )
                if index not in kept[module]:
                    kept[module][index] = None
                    todo += [(module, used) for used in stmt.uses]
                    todo += list(stmt.reaches)
        return kept

    def _binders(self, module: str, name: str) -> list[int]:
        return [i for i, stmt in enumerate(self.modules.get(module, [])) if name in stmt.binds]

    def write(self, lent: Iterable[str], target: Path, graded: Iterable[str] = ()) -> Path:
        """The package lending ``lent``, written under ``target`` (as ``target/lib/...``)."""
        for module, statements in self.closure(lent, graded).items():
            body = [_only(self.modules[module][i].node, aliases) for i, aliases in sorted(statements.items())]
            if self.docstrings.get(module) is not None:
                body.insert(0, ast.Expr(ast.Constant(self.docstrings[module])))
            parts = module.split(".")
            path = (
                target.joinpath(*parts, "__init__.py")
                if module in self.packages
                else target.joinpath(*parts[:-1], f"{parts[-1]}.py")
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(ast.unparse(ast.fix_missing_locations(ast.Module(body, []))) + "\n")
        for package in self.packages:  # every package on the way to a module is importable
            folder = target.joinpath(*package.split("."))
            if folder.is_dir() and not (folder / "__init__.py").exists():
                (folder / "__init__.py").write_text("")
        return target / self.package

    def defined(self, module: str, index: int) -> set[str]:
        return self.modules[module][index].binds

    def home(self, name: str) -> str | None:
        """The module whose top level defines ``name`` (not merely imports it)."""
        return next(
            (
                m
                for m, statements in self.modules.items()
                for s in statements
                if name in s.binds and not s.imports
            ),
            None,
        )


def _import_targets(node, module: str, is_package: bool, modules: set[str], package: str) -> dict:
    """What each alias of an import stands for: ``(module, name)`` for a name imported from a
    module of the package, ``(module, None)`` for a module of the package itself, and
    ``("", name)`` for anything from outside the package."""
    if isinstance(node, ast.Import):
        return {alias.asname or alias.name.split(".")[0]: ("", alias.name) for alias in node.names}
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    found = {}
    for alias in node.names:
        bound = alias.asname or alias.name
        if source.split(".")[0] != package:
            found[bound] = ("", alias.name)
        elif f"{source}.{alias.name}" in modules:
            found[bound] = (f"{source}.{alias.name}", None)
        else:
            found[bound] = (source, alias.name)
    return found


def _only(node: ast.stmt, aliases: set[str] | None) -> ast.stmt:
    """An import statement reduced to the aliases still needed (other statements as they are)."""
    if aliases is None:
        return node
    kept = [a for a in node.names if (a.asname or a.name.split(".")[0]) in aliases]
    if isinstance(node, ast.Import):
        return ast.Import(kept)
    return ast.ImportFrom(node.module, kept, node.level)


def _without_annotations(node: ast.stmt) -> ast.stmt:
    """The statement with every function's argument and return annotations removed: they are
    evaluated when the ``def`` runs, and would pull in names the code itself never uses. (A
    class's field annotations stay: a dataclass reads them.)"""
    node = ast.parse(ast.unparse(node)).body[0]  # a private copy
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            sub.returns = None
            for arg in [
                *sub.args.posonlyargs,
                *sub.args.args,
                *sub.args.kwonlyargs,
                sub.args.vararg,
                sub.args.kwarg,
            ]:
                if arg is not None:
                    arg.annotation = None
    return node


# ---- per assignment ----------------------------------------------------------------------------


@functools.cache
def source() -> Source:
    return Source()


def lends(assignment: str) -> tuple[str, ...]:
    """What the chapter lends (nothing, for an assignment without exercises)."""
    return _declared(assignment, "LENDS")


def graded(assignment: str) -> tuple[str, ...]:
    return _declared(assignment, "GRADED")


def _declared(assignment: str, name: str) -> tuple[str, ...]:
    try:
        return tuple(getattr(exercises.chapter(assignment), name))
    except ModuleNotFoundError:
        return ()


def write(assignment: str, target: Path) -> Path:
    """The scorer's ``lib`` for ``assignment``, written under ``target``; returns its folder."""
    return source().write(lends(assignment), target, graded(assignment))


def chains(assignments: Iterable[str]) -> list[list[str]]:
    """The assignments in sequences that one scorer process may take in turn: along a sequence,
    the ``lib``s lent so far (each is added to the process when its turn comes, none is taken
    away) never reach what the assignment at hand grades. Chapter 2 lends ``softmax``, which
    chapter 3 grades, so chapter 3 cannot follow chapter 2 in one process; chapter 4 lends the
    attention chapter 2 grades, so it may follow chapter 2. First fit, the assignments that lend
    the least first, so that the course's chapters need two processes a student, not six."""
    src = source()
    order = sorted(set(assignments), key=lambda a: (len(lent_definitions(a)), a))
    found: list[tuple[list[str], list[str]]] = []  # (assignments, the names they lend together)
    for assignment in order:
        for sequence, lent in found:
            try:
                src.closure([*lent, *lends(assignment)], graded(assignment))
            except ValueError:
                continue
            sequence.append(assignment)
            lent += lends(assignment)
            break
        else:
            found.append(([assignment], list(lends(assignment))))
    return [sequence for sequence, _ in found]


@functools.cache
def lent_definitions(assignment: str) -> frozenset[tuple[str, str]]:
    """``(module, name)`` of every top-level definition the scorer's lib for ``assignment`` holds."""
    src = source()
    kept = src.closure(lends(assignment), graded(assignment))
    return frozenset(
        (module, name)
        for module, statements in kept.items()
        for index, aliases in statements.items()
        if aliases is None
        for name in src.defined(module, index)
    )


# ---- the notebook side: calls into lib that grading will not lend -----------------------------


def _definition(code) -> tuple[str, str] | None:
    """``(module, top-level name)`` of a code object of ``lib``, ``None`` for any other code."""
    try:
        relative = Path(code.co_filename).resolve().relative_to(LIB)
    except ValueError:
        return None
    parts = relative.with_suffix("").parts
    module = ".".join((PACKAGE, *(parts[:-1] if parts[-1] == "__init__" else parts)))
    top = code.co_qualname.split(".")[0]
    return None if top.startswith("<") else (module, top)


@dataclass
class Borrowed:
    """What the student's code called while the visible cases ran that the scorer will not have."""

    lib: list[str] = field(default_factory=list)  # lib functions, as ``lib.<name>``
    packages: list[str] = field(default_factory=list)  # installed packages, e.g. ``tqdm``

    def __bool__(self) -> bool:
        return bool(self.lib or self.packages)


SCORER_PACKAGES = ("numpy",)  # the installed packages the scorer's sandbox holds (grader.scoring)
INSTALLED = ("site-packages", "dist-packages")


_STANDARD_LIBRARY = tuple({os.path.join(sysconfig.get_paths()[key], "") for key in ("stdlib", "platstdlib")})
# the grader, the import system, the standard library (which the scorer has: what it calls is not
# the student's call, e.g. ``warnings`` showing a warning through the kernel's own stream)
_NOT_STUDENTS = (str(Path(__file__).resolve().parent), "<frozen ", *_STANDARD_LIBRARY)


@functools.cache
def _installed(filename: str) -> str | None:
    """The installed package a file of code belongs to (``numpy``, ``tqdm``), or ``None``."""
    parts = Path(filename).parts
    where = next((i for i, part in enumerate(parts) if part in INSTALLED), None)
    return parts[where + 1].removesuffix(".py") if where is not None and where + 1 < len(parts) else None


@functools.cache
def _package(filename: str) -> str | None:
    """The installed package that a file of code belongs to (``tqdm``, ``torch``), if it is one
    the scorer does not hold; ``None`` for the standard library, NumPy, the course and a
    student's cell."""
    package = _installed(filename)
    return None if package is None or package in SCORER_PACKAGES or package.startswith("_") else package


@functools.cache
def _students_file(filename: str) -> bool:
    """Whether code from ``filename`` may be the student's: not an installed package's, the
    grader's or the import system's (``lib``'s is told apart by ``_definition``)."""
    return not filename.startswith(_NOT_STUDENTS) and _installed(filename) is None


@functools.cache
def _module_package(module: str | None) -> str | None:
    """``_package`` for a module's name, imported or not."""
    top = (module or "").partition(".")[0]
    if not top:
        return None
    found = sys.modules.get(top)
    if found is not None:
        return _package(getattr(found, "__file__", None) or "")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    return _package(spec.origin or "") if spec else None


def _packages_named(code, frame) -> set[str]:
    """The packages the scorer lacks that ``code`` (running in ``frame``) imports, or names
    through a global or a closure: a module, or a function, class or object from one. Looked at
    once per code object, so that a function written in C (``torch.from_numpy``) is seen without
    watching every call of one."""
    found = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME":
            found.add(_module_package(instruction.argval))
        elif instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"):
            scope = frame.f_globals if instruction.opname != "LOAD_DEREF" else frame.f_locals
            value = scope.get(instruction.argval)
            if value is not None:
                found.add(_module_package(_module_of(value)))
    return found - {None}


def _host_packages() -> set[str]:
    """The packages of the program that runs the student's code (in a kernel, IPython and
    ipykernel): the owners of the hooks that ``print``, a warning and a result's display reach.
    A call into them from the student's frame is the environment's, not a use of the package: in
    the scorer the same ``print`` reaches the scorer's own stream (and ``display`` is a builtin
    there too)."""
    hooks = [sys.stdout, sys.stderr, sys.displayhook, sys.excepthook, warnings.showwarning]
    hooks += [
        getattr(stream, name, None) for stream in (sys.stdout, sys.stderr) for name in ("write", "flush")
    ]
    return {_module_package(_module_of(hook)) for hook in hooks if hook is not None} - {None}


def _module_of(value) -> str | None:
    if isinstance(value, types.ModuleType):
        return value.__name__
    module = getattr(value, "__module__", None)
    return module if isinstance(module, str) else getattr(type(value), "__module__", None)


@contextmanager
def unlent_calls(assignment: str) -> Iterator[Borrowed]:
    """Collect what the student's code calls while the block runs that the scorer for
    ``assignment`` will not have: ``lib`` functions outside its lent closure, and code from
    installed packages other than NumPy (the kernel has the course's whole environment; the
    scorer, the standard library and NumPy only)."""
    lent, borrowed, known, host = lent_definitions(assignment), Borrowed(), {}, _host_packages()

    def where(code):
        if code not in known:
            known[code] = _definition(code)
        return known[code]

    def students(code) -> bool:
        return where(code) is None and _students_file(code.co_filename)

    def note(package: str | None) -> None:
        if package and package not in borrowed.packages:
            borrowed.packages.append(package)

    looked_at = set()  # the student's code objects whose imports and names were looked at
    collecting = False  # the garbage collector runs: its callbacks and finalizers are not the student's calls

    def collection_starts(phase, info):
        nonlocal collecting
        collecting = collecting or phase == "start"

    def collection_ends(phase, info):
        nonlocal collecting
        collecting = collecting and phase != "stop"

    def profile(frame, event, arg):
        if event != "call" or collecting:
            return
        code = frame.f_code
        if code not in looked_at and students(code):
            looked_at.add(code)
            for package in _packages_named(code, frame):
                note(package)
        if frame.f_back is None or not students(frame.f_back.f_code):
            return
        called = where(code)
        if called is None:
            package = _package(code.co_filename)
            note(package if package not in host else None)
            return
        if called in lent:
            return
        name = (
            called[1] if hasattr(lib, called[1]) else f"{called[0].removeprefix(PACKAGE + '.')}.{called[1]}"
        )
        if f"lib.{name}" not in borrowed.lib:
            borrowed.lib.append(f"lib.{name}")

    previous = sys.getprofile()
    gc.callbacks.insert(0, collection_starts)  # first to hear "start", last to hear "stop"
    gc.callbacks.append(collection_ends)
    sys.setprofile(profile)
    try:
        yield borrowed
    finally:
        sys.setprofile(previous)
        gc.callbacks.remove(collection_starts)
        gc.callbacks.remove(collection_ends)
