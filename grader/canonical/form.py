"""The canonical form of a piece of code: the folds of the syntax, then its data flow; within a
time budget (``within``), since the code is a student's and could be made to take the form long."""

import ast
import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from .dataflow import Split, as_names, dataflow, overwritten
from .folds import Canonical, inline_aliases


@lru_cache(maxsize=256)  # lib's code and the boilerplate come back for every notebook graded
def canonical(source: str, keep: bool = False) -> str:
    """``source`` with the rewrites above undone (unchanged if it does not parse)."""
    try:
        return ast.unparse(normalized(ast.parse(source), keep))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source


def normalized(tree: ast.Module, keep: bool = False) -> ast.Module:
    """``tree`` in the canonical form (changed in place). ``keep``: the form that leaves out no
    code that can run (``folds.Canonical``, ``dataflow``)."""
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        as_names(function)
    tree = Canonical(keep).visit(Split().visit(tree))  # what is an alias shows once ``getattr`` is gone
    for scope in _scopes(tree):
        overwritten(scope, keep)
    tree = Canonical(keep).visit(inline_aliases(tree))
    for scope in _scopes(tree):
        _on_time()
        dataflow(scope, keep)
    return ast.fix_missing_locations(tree)


def _scopes(tree: ast.Module) -> list[ast.AST]:
    """The module and each function in it."""
    return [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))]


_deadline: ContextVar[float] = ContextVar("canonical_deadline", default=math.inf)


@contextmanager
def within(seconds: float):
    """Inside the block, putting code in the canonical form raises ``TimeoutError`` once
    ``seconds`` have passed (checked between the scopes of a piece of code)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _on_time() -> None:
    if time.monotonic() > _deadline.get():
        raise TimeoutError("the canonical form ran out of its time budget")
