"""Rewrites that only move data between names, undone: what is computed from what is kept.

A tuple assignment is split in its parts, annotations are dropped, a store nobody reads is
dropped, and a temporary bound once and read once is replaced by its value (red team, sixth
round: ``x, _ = v, 0``, ``_ = 0`` after every statement, ``_r = e; return _r``, each call lifted
into a temporary of its own).
"""

import ast
import bisect
import copy
import math
from collections import Counter


def dataflow(scope: ast.AST, keep: bool = False) -> None:
    """The statements of one function (or module) with only the data flow kept: tuple assignments
    split, annotations dropped, stores nobody reads dropped (but with ``keep``: a read the scan
    cannot see, ``locals()['n']``, made every store look dead; red team, eighth round), and each
    temporary bound once and read once replaced by its value. Names bound in nested functions
    count as this scope's."""
    Split().visit(scope)
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):  # a helper at the top is compared as one
        _called_thunks(scope)
    for _ in range(8):  # a temporary of a temporary: each round undoes one level
        loads, stores = _uses(scope)
        changed = _drop_dead(scope, loads, keep) | _inline_temporaries(scope, loads, stores)
        if not changed:
            return


def _called_thunks(scope: ast.AST) -> None:
    """A thunk bound once and only ever called (``n = lambda: e``, or a nested ``def n(): return
    e``, then ``n()``) is the value it returns: ``n = e``, read ``n`` (in place; red team, eighth
    round: every temporary of lib's code as a thunk). Its body is kept whole and each call becomes
    a name, so the code never grows (a thunk that calls another twice reads a name twice)."""
    loads, stores = _uses(scope)
    thunks = {}
    for _, _, body in _bodies(scope):
        for i, statement in enumerate(body):
            value = _thunk(statement)
            if value is not None:
                thunks[_thunk_name(statement)] = (body, i, value)
    defined = Counter(n.name for n in ast.walk(scope) if isinstance(n, NESTED) and n is not scope)
    calls = Counter(
        node.func.id
        for node in ast.walk(scope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not (node.args or node.keywords)
    )
    called = set()
    for name, (body, i, value) in thunks.items():
        if stores.get(name, 0) + defined[name] == 1 and loads.get(name) and loads.get(name) == calls[name]:
            body[i] = ast.Assign([ast.Name(name, ast.Store())], value)
            called.add(name)
    if called:
        _Called(called).visit(scope)  # one pass for all: a thousand thunks are not a thousand walks


NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _thunk(statement: ast.stmt) -> ast.expr | None:
    """What ``statement`` binds a thunk to return, if it is ``n = lambda: e`` or ``def n():
    return e`` (undecorated)."""
    if isinstance(statement, ast.Assign) and bound(statement) and isinstance(statement.value, ast.Lambda):
        function, value = statement.value, statement.value.body
    elif (
        isinstance(statement, ast.FunctionDef)
        and not statement.decorator_list
        and len(statement.body) == 1
        and isinstance(statement.body[0], ast.Return)
        and statement.body[0].value is not None
    ):
        function, value = statement, statement.body[0].value
    else:
        return None
    args = function.args
    parameters = (args.posonlyargs, args.args, args.kwonlyargs, args.vararg, args.kwarg)
    return None if any(parameters) else value


def _thunk_name(statement: ast.stmt) -> str:
    return bound(statement) if isinstance(statement, ast.Assign) else statement.name


class _Called(ast.NodeTransformer):
    """``n()``: ``n``, for each thunk ``n`` of ``names``."""

    def __init__(self, names: set[str]):
        self.names = names

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in self.names
            and not (node.args or node.keywords)
        ):
            return node.func
        return node


class Split(ast.NodeTransformer):
    """``a, b = x, y``: ``a = x`` then ``b = y``; ``r: T = v``: ``r = v``; ``if (n := e) is X:``
    (and a walrus in any statement's value): ``n = e`` first, then ``if n is X:`` (red team,
    eighth round: each temporary bound in an input check's test, which the form leaves out)."""

    def visit_If(self, node: ast.If) -> list[ast.AST]:
        self.generic_visit(node)
        return [*hoisted(node, "test"), node]

    def visit_Expr(self, node: ast.Expr) -> list[ast.AST]:
        return [*hoisted(node, "value"), node]

    def visit_Return(self, node: ast.Return) -> list[ast.AST]:
        return [*hoisted(node, "value"), node]

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.AST]:
        first = hoisted(node, "value")
        if first:
            return [*first, node]
        target, value = node.targets[0], node.value
        if (
            len(node.targets) == 1
            and isinstance(target, ast.Tuple | ast.List)
            and isinstance(value, ast.Tuple | ast.List)
            and len(target.elts) == len(value.elts)
            and all(isinstance(t, ast.Name) for t in target.elts)
            and not any(isinstance(v, ast.Starred) for v in value.elts)
        ):
            return [ast.Assign([t], v) for t, v in zip(target.elts, value.elts, strict=True)]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None and isinstance(node.target, ast.Name):
            return ast.Assign([node.target], node.value)
        return node


def hoisted(statement: ast.stmt, field: str) -> list[ast.Assign]:
    """The walruses of ``statement.field`` (not in a lambda or a comprehension), as assignments
    to come first; each is its name in ``statement``."""
    value = getattr(statement, field)
    if value is None:
        return []
    found = []

    class Hoist(ast.NodeTransformer):
        def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.AST:
            self.generic_visit(node)
            found.append(ast.Assign([ast.Name(node.target.id, ast.Store())], node.value))
            return ast.Name(node.target.id, ast.Load())

        def visit_Lambda(self, node):
            return node

        visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda

    setattr(statement, field, Hoist().visit(value))
    return found


def as_names(function: ast.AST) -> None:
    """The attributes ``function`` stores on one of its own names used as names (in place):
    ``s.centred = s.x - s.mean`` is ``s__centred = s__x - s__mean`` (red team, eighth round:
    every local kept as an attribute of one object, whose attribute names stayed tokens)."""
    nodes = list(_walk_scope(function))
    holders = {
        n.value.id
        for n in nodes
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
    }
    if holders:
        _AsNames(holders).generic_visit(function)


class _AsNames(ast.NodeTransformer):
    def __init__(self, holders: set[str]):
        self.holders = holders

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in self.holders:
            return ast.Name(f"{node.value.id}__{node.attr}", node.ctx)
        return node

    def visit_FunctionDef(self, node):
        return node  # its own scope

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef


def _uses(scope: ast.AST) -> tuple[dict[str, int], dict[str, int]]:
    """How often each name is read and bound in ``scope`` (``global`` and ``nonlocal`` names are
    read from outside: counted as read often; a parameter is bound without end: ``x = f(x)`` then
    one read of ``x`` made its reads as many as its bindings, and ``f(x)`` replaced a read of the
    parameter ``x`` too, unlike lib's code read at the top level)."""
    loads: dict[str, int] = {}
    stores: dict[str, int] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Name):
            counts = loads if isinstance(node.ctx, ast.Load) else stores
            counts[node.id] = counts.get(node.id, 0) + 1
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                loads[name] = loads.get(name, 0) + 2
        elif isinstance(node, ast.arg):  # a parameter is no temporary, however often it is read
            stores[node.arg] = math.inf
    return loads, stores


def _bodies(scope: ast.AST):
    """Every list of statements in ``scope``, but those of nested functions and classes."""
    for node in [scope, *_walk_scope(scope)]:
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield node, field, body


def _walk_scope(scope: ast.AST):
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield child
        yield from _walk_scope(child)


def bound(statement: ast.stmt) -> str | None:
    """The name ``statement`` binds, if it is ``name = value``."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    return None


def overwritten(scope: ast.AST, keep: bool = False) -> None:
    """A store bound again before anything reads it (``m = None`` then ``m = np.mean``) is
    dead: left out (with ``keep``, its value kept as a statement), in place, so that the name is
    bound once (red team, seventh round: an alias bound twice was no alias)."""
    for node, field, body in list(_bodies(scope)):
        names = [{n.id for n in ast.walk(s) if isinstance(n, ast.Name)} for s in body]  # one walk each
        kept = []
        for i, statement in enumerate(body):
            name = bound(statement)
            j = next((j for j in range(i + 1, len(body)) if name in names[j]), None) if name else None
            if j is not None and bound(body[j]) == name and not _mentions(body[j].value, name):
                if keep:
                    kept.append(ast.Expr(statement.value))
                continue
            kept.append(statement)
        setattr(node, field, kept)


def _mentions(node: ast.AST, name: str) -> bool:
    return any(_named(n, name) for n in ast.walk(node))


def _drop_dead(scope: ast.AST, loads: dict, keep: bool = False) -> bool:
    """Stores nobody reads (but with ``keep``), and what inlining left (``pass``), out of every
    body of ``scope``."""
    changed = False
    for node, field, body in list(_bodies(scope)):
        kept = [
            s
            for s in body
            if not (isinstance(s, ast.Pass) or (not keep and (name := bound(s)) and not loads.get(name)))
        ]
        if kept != body and not (len(body) == 1 and isinstance(body[0], ast.Pass)):
            setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
            changed = True
    return changed


def _inline_temporaries(scope: ast.AST, loads: dict, stores: dict) -> bool:
    """``t = e`` then a statement that reads ``t`` once: that statement with ``e`` in its place,
    where every binding of ``t`` in the scope is read once (``_r = e; return _r`` twice over)."""
    changed = False
    for _, _, body in list(_bodies(scope)):
        where: dict[str, list[int]] = {}  # the statements each name is in, in order: one walk each
        for i, statement in enumerate(body):
            for name in dict.fromkeys(n.id for n in ast.walk(statement) if isinstance(n, ast.Name)):
                where.setdefault(name, []).append(i)
        for i, statement in enumerate(body):
            name = bound(statement)
            if not name or not loads.get(name) or loads.get(name) != stores.get(name):
                continue
            places = where.get(name, [])
            j = next((k for k in places[bisect.bisect_right(places, i) :]), None)
            later = None if j is None else body[j]
            reads = [] if later is None else [n for n in _walk_scope(later) if _named(n, name)]
            if (
                isinstance(later, ast.Return | ast.Expr | ast.Assign)
                and sum(isinstance(n.ctx, ast.Load) for n in reads) == 1
                and all(isinstance(n.ctx, ast.Load) or n in _targets(later) for n in reads)
            ):
                Substitute({name: statement.value}).visit(later)  # ``h = b(h)``: ``h = b(a(x))``
                body[i] = ast.Pass()
                for moved in {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)}:
                    if j not in where.setdefault(moved, []):
                        bisect.insort(where[moved], j)  # its names are read at j now
                loads[name] -= 1
                stores[name] -= 1
                changed = True
    return changed


def _named(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _targets(statement: ast.stmt) -> list[ast.AST]:
    """The names an assignment binds."""
    return [n for t in getattr(statement, "targets", []) for n in ast.walk(t)]


class Substitute(ast.NodeTransformer):
    def __init__(self, aliases: dict[str, ast.AST]):
        self.aliases = aliases

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            return copy.deepcopy(self.aliases[node.id])
        return node
