"""The canonical form of a piece of code: the folds of the syntax, then its data flow."""

import ast
from functools import lru_cache

from .dataflow import Split, dataflow
from .folds import Canonical, inline_aliases


@lru_cache(maxsize=256)  # lib's code and the boilerplate come back for every notebook graded
def canonical(source: str) -> str:
    """``source`` with the rewrites above undone (unchanged if it does not parse)."""
    try:
        return ast.unparse(normalized(ast.parse(source)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source


def normalized(tree: ast.Module) -> ast.Module:
    """``tree`` in the canonical form (changed in place)."""
    tree = Canonical().visit(Split().visit(tree))  # what is an alias shows once ``getattr`` is gone
    tree = Canonical().visit(inline_aliases(tree))
    for scope in [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
    ]:
        dataflow(scope)
    return ast.fix_missing_locations(tree)
