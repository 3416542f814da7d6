"""Python code rewritten to one canonical form, so that rewrites that keep its meaning do not keep
it from being compared (``grader.similarity``).

A copier who wants lib's code to look like their own, without understanding it, rewrites it
mechanically: every ``x`` as ``(x,)[0]``, every ``np.mean`` as ``getattr(np, 'mean')`` or through
an alias ``m = np.mean``, ``a + b`` as ``b + a``, ``a.__add__(b)`` or ``np.add(a, b)``, a ``pass``
or a stray string after every statement (red team, fourth round: each broke enough token k-grams
to pass under the near-identical threshold). ``canonical`` undoes each of those rewrites, wherever
it stands, so that they change nothing of the fingerprint; code honest students write is left as
it is but for the order of the two sides of ``+``, ``*`` and ``==``, which the canonical form
sorts. Code that does not parse is returned unchanged.
"""

import ast
import copy
from functools import lru_cache

# ``a.__add__(b)`` and ``np.add(a, b)`` are ``a + b``
DUNDERS = {
    "__add__": ast.Add,
    "__sub__": ast.Sub,
    "__mul__": ast.Mult,
    "__truediv__": ast.Div,
    "__floordiv__": ast.FloorDiv,
    "__mod__": ast.Mod,
    "__pow__": ast.Pow,
    "__matmul__": ast.MatMult,
}
UFUNCS = {
    "add": ast.Add,
    "subtract": ast.Sub,
    "multiply": ast.Mult,
    "divide": ast.Div,
    "true_divide": ast.Div,
    "floor_divide": ast.FloorDiv,
    "power": ast.Pow,
    "matmul": ast.MatMult,
}
COMMUTATIVE = (ast.Add, ast.Mult)
ALIASABLE = (ast.Name, ast.Attribute)  # ``m = np.mean``: an alias, not a computation


@lru_cache(maxsize=256)  # lib's code and the boilerplate come back for every notebook graded
def canonical(source: str) -> str:
    """``source`` with the rewrites above undone (unchanged if it does not parse)."""
    try:
        tree = ast.parse(source)
        tree = _Canonical().visit(_inline_aliases(tree))
        return ast.unparse(ast.fix_missing_locations(tree))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source


class _Canonical(ast.NodeTransformer):
    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        """``(x,)[0]``, ``[a, b][1]``: the element."""
        self.generic_visit(node)
        index = node.slice
        if (
            isinstance(node.value, ast.Tuple | ast.List)
            and isinstance(index, ast.Constant)
            and type(index.value) is int
            and -len(node.value.elts) <= index.value < len(node.value.elts)
            and not any(isinstance(e, ast.Starred) for e in node.value.elts)
        ):
            return node.value.elts[index.value]
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func, args = node.func, node.args
        if node.keywords or any(isinstance(a, ast.Starred) for a in args):
            return node
        if isinstance(func, ast.Name) and func.id == "getattr" and len(args) == 2:
            name = args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.isidentifier():
                return ast.Attribute(args[0], name.value, ast.Load())
        if isinstance(func, ast.Attribute) and func.attr in DUNDERS and len(args) == 1:
            return self.visit_BinOp(ast.BinOp(func.value, DUNDERS[func.attr](), args[0]))
        if isinstance(func, ast.Attribute) and func.attr in UFUNCS and len(args) == 2:
            return self.visit_BinOp(ast.BinOp(args[0], UFUNCS[func.attr](), args[1]))
        if isinstance(func, ast.Lambda) and _is_identity(func) and len(args) == 1:
            return args[0]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        """``x + 0``, ``x * 1``: ``x``; the sides of ``+`` and ``*`` in a fixed order."""
        self.generic_visit(node)
        for side, other in ((node.right, node.left), (node.left, node.right)):
            neutral = 0 if isinstance(node.op, ast.Add) else 1 if isinstance(node.op, ast.Mult) else None
            if neutral is not None and isinstance(side, ast.Constant) and side.value == neutral:
                if type(side.value) in (int, float):
                    return other
        if isinstance(node.op, COMMUTATIVE) and _order(node.right) < _order(node.left):
            node.left, node.right = node.right, node.left
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            if _order(node.comparators[0]) < _order(node.left):
                node.left, node.comparators = node.comparators[0], [node.left]
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """Statements that do nothing (``pass``, a string or number alone) left out of every body."""
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [s for s in body if not _does_nothing(s)]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
        return node


def _does_nothing(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Pass) or (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
    )


def _is_identity(function: ast.Lambda) -> bool:
    """``lambda v: v``."""
    args = function.args
    return (
        len(args.args) == 1
        and not (args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg)
        and isinstance(function.body, ast.Name)
        and function.body.id == args.args[0].arg
    )


def _order(node: ast.AST) -> str:
    """A key for an operand that no renaming changes: its syntax with every name left out."""
    parts = []
    for part in ast.walk(node):
        parts.append(type(part).__name__)
        if isinstance(part, ast.Constant):
            parts.append(repr(part.value))
        elif isinstance(part, ast.Attribute):
            parts.append(part.attr)
    return " ".join(parts)


def _inline_aliases(tree: ast.AST) -> ast.AST:
    """``m = np.mean`` then ``m(x)``: ``np.mean(x)``, in each scope, for a name bound once, to a
    name or an attribute, and never bound again."""
    for scope in [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
    ]:
        stores: dict[str, int] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                stores[node.id] = stores.get(node.id, 0) + 1
            elif isinstance(node, ast.arg):
                stores[node.arg] = stores.get(node.arg, 0) + 2  # a parameter is not an alias
        aliases = {
            s.targets[0].id: s.value
            for s in scope.body
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ALIASABLE)
            and stores.get(s.targets[0].id) == 1
            and not (isinstance(s.value, ast.Name) and s.value.id == s.targets[0].id)
        }
        if aliases:
            scope.body = [s for s in scope.body if not (isinstance(s, ast.Assign) and _alias_of(s, aliases))]
            _Substitute(aliases).visit(scope)
    return tree


def inline_wrappers(tree: ast.Module) -> ast.Module:
    """``def I(v): return v`` or ``def A(o, n): return getattr(o, n)`` at the top of ``tree``, and
    then ``I(x)``, ``A(x, "mean")``: each call replaced by what the function returns, its
    parameters replaced by the call's arguments. Only for a function whose one statement returns
    names and calls (a wrapper: what it returns is the arguments' business), called with as many
    positional arguments as it has parameters (red team, fifth round: lib's code with every name
    ``n`` written ``I(n)``, or every ``x.a`` as ``A(x, 'a')``, was no longer near lib's)."""
    wrappers = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.decorator_list or not _plain(node.args):
            continue
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            if all(isinstance(n, ast.Name | ast.Call | ast.expr_context) for n in ast.walk(body[0].value)):
                wrappers[node.name] = ([a.arg for a in node.args.args], body[0].value)
    for _ in range(3 if wrappers else 0):  # a wrapper of a wrapper, twice over
        tree = _Inline(wrappers).visit(tree)
    return tree


def _plain(args: ast.arguments) -> bool:
    """Positional parameters only, without defaults."""
    return not (args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg or args.defaults)


class _Inline(ast.NodeTransformer):
    def __init__(self, wrappers: dict[str, tuple[list[str], ast.expr]]):
        self.wrappers = wrappers

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        wrapper = self.wrappers.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if wrapper is None or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return node
        params, returned = wrapper
        if len(params) != len(node.args):
            return node
        return _Substitute(dict(zip(params, node.args, strict=True))).visit(copy.deepcopy(returned))


def _alias_of(statement: ast.Assign, aliases: dict) -> bool:
    target = statement.targets[0]
    return isinstance(target, ast.Name) and aliases.get(target.id) is statement.value


class _Substitute(ast.NodeTransformer):
    def __init__(self, aliases: dict[str, ast.AST]):
        self.aliases = aliases

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            return copy.deepcopy(self.aliases[node.id])
        return node
