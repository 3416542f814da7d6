"""Calls of wrappers, functions that only pass their arguments on, replaced by what they return
(red team, fifth to seventh rounds: lib's code with every name ``n`` written ``I(n)``, or every
``x.a`` as ``A(x, 'a')``, was no longer near lib's)."""

import ast
import copy

from .dataflow import Substitute, bound
from .folds import Canonical, does_nothing
from .form import normalized


def wrappers(tree: ast.Module) -> dict[str, tuple[ast.arguments, ast.expr]]:
    """The wrappers defined at the top of ``tree``, by the name a call uses (``I``, or ``W.I`` for
    a static method of class ``W``): functions and lambdas whose one statement, in the canonical
    form, returns names, calls, attributes and constants (no arithmetic: what a wrapper returns is
    the arguments' business). ``def I(v): r = v; return r``, ``I = lambda v: v``, ``def I(v,
    _=None): return [v][0]``, ``def A(o, n): return operator.attrgetter(n)(o)`` are all wrappers
    (red team, sixth round: any shape but the one-statement ``return v`` hid lib's code), also
    when defined inside a function and called with keywords; each parameter is read at most once
    (``_once``). And a name imported from NumPy (``from numpy import mean``), as
    ``(None, np.mean)``."""
    found = {}
    nested = [n for f in tree.body if isinstance(f, ast.FunctionDef) for n in ast.walk(f) if n is not f]
    for node in [*tree.body, *(n for n in nested if isinstance(n, ast.FunctionDef | ast.Assign))]:
        if isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] == "numpy":
            module = ast.parse("np" + node.module[len("numpy") :], mode="eval").body
            for alias in node.names:  # ``from numpy import mean``: ``mean`` is ``np.mean``
                found[alias.asname or alias.name] = (None, ast.Attribute(module, alias.name, ast.Load()))
            continue
        functions = [("", node)]
        if isinstance(node, ast.ClassDef):
            functions = [
                (f"{node.name}.", f)
                for f in node.body
                if isinstance(f, ast.FunctionDef)
                and [ast.unparse(d) for d in f.decorator_list] == ["staticmethod"]
            ]
        for prefix, function in functions:
            if (
                isinstance(function, ast.Assign)
                and isinstance(function.value, ast.Lambda)
                and bound(function)
            ):
                name, args, returned = bound(function), function.value.args, function.value.body
            elif isinstance(function, ast.FunctionDef) and (prefix or not function.decorator_list):
                body = normalized(ast.Module([copy.deepcopy(function)], [])).body[0].body
                body = body[1:] if body and does_nothing(body[0]) else body
                if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
                    continue
                name, args, returned = function.name, function.args, body[0].value
            else:
                continue
            if (
                _plain(args)
                and all(isinstance(n, WRAPPED) for n in ast.walk(returned))
                and _once(args, returned)
            ):
                found[prefix + name] = (args, returned)
    return found


def _once(args: ast.arguments, returned: ast.expr) -> bool:
    """Each parameter read at most once in what the wrapper returns: inlining then never makes
    the code grow (red team, seventh round: a wrapper that repeats its argument thirty times,
    called three deep, took the scan minutes)."""
    names = [n.id for n in ast.walk(returned) if isinstance(n, ast.Name)]
    params = [a.arg for a in args.args] + ([args.vararg.arg] if args.vararg else [])
    return all(names.count(p) <= 1 for p in params)


WRAPPED = (
    ast.Name,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.Tuple,
    ast.keyword,
    ast.expr_context,
)


def inline_wrappers(tree: ast.Module, known: dict | None = None) -> ast.Module:
    """Each call of a wrapper (``wrappers``: of ``tree``'s, or ``known``, a notebook's) replaced
    by what the wrapper returns, its parameters replaced by the call's arguments (red team, fifth
    round: lib's code with every name ``n`` written ``I(n)``, or every ``x.a`` as ``A(x, 'a')``,
    was no longer near lib's)."""
    found = {**(known or {}), **wrappers(tree)}
    for _ in range(3 if found else 0):  # a wrapper of a wrapper, twice over
        tree = Canonical().visit(_Inline(found).visit(tree))
    return tree


def _plain(args: ast.arguments) -> bool:
    """Positional parameters (with defaults, or ``*rest``), no keyword-only ones."""
    return not (args.posonlyargs or args.kwonlyargs or args.kwarg)


class _Inline(ast.NodeTransformer):
    def __init__(self, wrappers: dict[str, tuple[ast.arguments | None, ast.expr]]):
        self.wrappers = wrappers

    def visit_Name(self, node: ast.Name) -> ast.AST:
        args, value = self.wrappers.get(node.id, (0, None))
        if args is None and isinstance(node.ctx, ast.Load):
            return copy.deepcopy(value)  # a name imported from NumPy
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            name = f"{func.value.id}.{func.attr}"
        wrapper = self.wrappers.get(name)
        if wrapper is None or wrapper[0] is None or any(isinstance(a, ast.Starred) for a in node.args):
            return node
        args, returned = wrapper
        params = [a.arg for a in args.args]
        defaults = dict(zip(params[len(params) - len(args.defaults) :], args.defaults, strict=True))
        values = {**defaults, **dict(zip(params, node.args, strict=False))}
        for keyword in node.keywords:  # ``I(v=x)``
            if keyword.arg not in params:
                return node
            values[keyword.arg] = keyword.value
        extra = node.args[len(params) :]
        if set(params) - set(values) or (extra and args.vararg is None):
            return node
        if args.vararg is not None:
            values[args.vararg.arg] = ast.Tuple(extra, ast.Load())
        return Substitute(values).visit(copy.deepcopy(returned))
