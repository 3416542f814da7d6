"""Python code rewritten to one canonical form, so that rewrites that keep its data flow do not
keep it from being compared (``grader.similarity``). The form is for fingerprints, not for running:
it keeps what is computed from what, and drops what only steers (a ``try``'s handlers, a ``with``'s
context, an input check's test).

A copier who wants lib's code to look like their own, without understanding it, rewrites it
mechanically: every ``x`` as ``(x,)[0]``, every ``np.mean`` as ``getattr(np, 'mean')`` or through
an alias ``m = np.mean``, ``a + b`` as ``b + a``, ``a.__add__(b)`` or ``np.add(a, b)``, a ``pass``
or a stray string after every statement (red team, fourth round: each broke enough token k-grams
to pass under the near-identical threshold). ``canonical`` undoes each of those rewrites, wherever
it stands, so that they change nothing of the fingerprint; code honest students write is left as
it is but for the order of the two sides of ``+``, ``*`` and ``==``, which the canonical form
sorts; an input check (``if ...: raise``) is its ``raise`` alone. Code that does not parse is
returned unchanged.

Rewrites that only move data about are undone by ``dataflow``, in each function: a tuple
assignment split in its parts, a temporary used once replaced by its value, a store nobody reads
dropped (red team, sixth round: ``x, _ = v, 0``, ``_ = 0`` after every statement, ``_r = e;
return _r``, each call lifted into a temporary of its own); keyword arguments are sorted. A block
that runs its body once (``for _ in range(1)``, ``while True: ...; break``, ``if True``, ``try``,
``with``) is its body, and an attribute name spelt at run time (``getattr(o, 'me' + 'an', None)``,
``o.__getattribute__('mean')``) is the attribute (red team, seventh round).
"""

import ast
import bisect
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
        return ast.unparse(normalized(ast.parse(source)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source


def normalized(tree: ast.Module) -> ast.Module:
    """``tree`` in the canonical form (changed in place)."""
    tree = _Canonical().visit(_Split().visit(tree))  # what is an alias shows once ``getattr`` is gone
    tree = _Canonical().visit(_inline_aliases(tree))
    for scope in [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
    ]:
        dataflow(scope)
    return ast.fix_missing_locations(tree)


class _Canonical(ast.NodeTransformer):
    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        """``(x,)[0]``, ``[a, b][1]``, ``{0: x}[0]``: the element."""
        self.generic_visit(node)
        index = node.slice
        if (
            isinstance(node.value, ast.Dict)
            and isinstance(index, ast.Constant)
            and None not in node.value.keys
        ):
            keys = [k.value if isinstance(k, ast.Constant) else object() for k in node.value.keys]
            if keys.count(index.value) == 1:
                return node.value.values[keys.index(index.value)]
        if (
            isinstance(node.value, ast.Tuple | ast.List)
            and isinstance(index, ast.Constant)
            and type(index.value) is int
            and -len(node.value.elts) <= index.value < len(node.value.elts)
            and not any(isinstance(e, ast.Starred) for e in node.value.elts)
        ):
            return node.value.elts[index.value]
        return node

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt]:
        """``if True: body``: the body (or the ``else``, for a false test)."""
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            return (node.body if node.test.value else node.orelse) or [ast.Pass()]
        return node

    def visit_Try(self, node: ast.Try) -> list[ast.stmt]:
        """A ``try`` is the code it runs when nothing fails: its body, ``else`` and ``finally``."""
        self.generic_visit(node)
        return [*node.body, *node.orelse, *node.finalbody]

    def visit_With(self, node: ast.With) -> list[ast.stmt]:
        """A ``with`` block is its body (what a context does is not the computation)."""
        self.generic_visit(node)
        return node.body

    def visit_For(self, node: ast.For) -> ast.AST | list[ast.stmt]:
        """``for _ in range(1): body``, ``for v in [x]: body``: the body, run once."""
        self.generic_visit(node)
        once = _single(node.iter)
        if once is None or node.orelse or _jumps(node.body):
            return node
        return [ast.Assign([node.target], once), *node.body]

    def visit_While(self, node: ast.While) -> ast.AST | list[ast.stmt]:
        """``while True: body; break``: the body, run once."""
        self.generic_visit(node)
        body = node.body
        if (
            isinstance(node.test, ast.Constant)
            and node.test.value
            and body
            and isinstance(body[-1], ast.Break)
            and not _jumps(body[:-1])
            and not node.orelse
        ):
            return body[:-1] or [ast.Pass()]
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        """``a if True else b``: ``a``."""
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func, args = node.func, node.args
        if all(k.arg is not None for k in node.keywords):
            node.keywords.sort(key=lambda k: k.arg)
        if node.keywords or any(isinstance(a, ast.Starred) for a in args):
            return node
        if isinstance(func, ast.Call) and _attribute_getter(func) and len(args) == 1:
            return ast.Attribute(args[0], func.args[0].value, ast.Load())  # operator.attrgetter("a")(x)
        if isinstance(func, ast.Attribute) and func.attr == "__getattribute__" and len(args) == 1:
            func, args = ast.Name("getattr", ast.Load()), [func.value, args[0]]  # o.__getattribute__('a')
        if isinstance(func, ast.Name) and func.id == "getattr" and len(args) in (2, 3):  # a default too
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
        """``x + 0``, ``x * 1``: ``x``; ``'me' + 'an'``: ``'mean'``; the sides of ``+`` and ``*`` in
        a fixed order."""
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(node.op, ast.Add) and all(
            isinstance(v, ast.Constant) and type(v.value) is str for v in (left, right)
        ):
            return ast.Constant(left.value + right.value)
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
        """Statements that do nothing (``pass``, a string or number alone) left out of every body;
        an input check is its ``raise`` alone: the test is what every docstring invites a student
        to write, the message is their own (red team, sixth round: an honest ``lm_head`` with
        lib's shape check and a message of its own was "85% of lib")."""
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [r for s in body if not _does_nothing(s) for r in (s.body if _raises_only(s) else [s])]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
        return node


def _single(iterable: ast.expr) -> ast.expr | None:
    """The one value ``iterable`` gives, if it is ``range(1)`` or a literal of one element."""
    if isinstance(iterable, ast.List | ast.Tuple) and len(iterable.elts) == 1:
        return None if isinstance(iterable.elts[0], ast.Starred) else iterable.elts[0]
    if (
        isinstance(iterable, ast.Call)
        and getattr(iterable.func, "id", "") == "range"
        and len(iterable.args) == 1
        and isinstance(iterable.args[0], ast.Constant)
        and iterable.args[0].value == 1
    ):
        return ast.Constant(0)
    return None


def _jumps(body: list[ast.stmt]) -> bool:
    """Whether ``body`` holds a ``break`` or ``continue`` of its own loop (not of a nested one)."""
    for statement in body:
        if isinstance(statement, ast.Break | ast.Continue):
            return True
        if isinstance(
            statement,
            ast.For | ast.AsyncFor | ast.While | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
        ):
            continue
        children = [c for f in ("body", "orelse", "finalbody", "handlers") for c in getattr(statement, f, [])]
        if _jumps([c for c in children if isinstance(c, ast.stmt)]) or any(
            _jumps(h.body) for h in children if isinstance(h, ast.ExceptHandler)
        ):
            return True
    return False


def _attribute_getter(call: ast.Call) -> bool:
    """``operator.attrgetter("a")``."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name == "attrgetter"
        and len(call.args) == 1
        and not call.keywords
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
        and call.args[0].value.isidentifier()
    )


def dataflow(scope: ast.AST) -> None:
    """The statements of one function (or module) with only the data flow kept: tuple assignments
    split, annotations dropped, stores nobody reads dropped, and each temporary bound once and
    read once replaced by its value. Names bound in nested functions count as this scope's."""
    _Split().visit(scope)
    for _ in range(8):  # a temporary of a temporary: each round undoes one level
        loads, stores = _uses(scope)
        changed = _drop_dead(scope, loads) | _inline_temporaries(scope, loads, stores)
        if not changed:
            return


class _Split(ast.NodeTransformer):
    """``a, b = x, y``: ``a = x`` then ``b = y``; ``r: T = v``: ``r = v``."""

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.AST]:
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


def _uses(scope: ast.AST) -> tuple[dict[str, int], dict[str, int]]:
    """How often each name is read and bound in ``scope`` (``global`` and ``nonlocal`` names are
    read from outside: counted as read often)."""
    loads: dict[str, int] = {}
    stores: dict[str, int] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Name):
            counts = loads if isinstance(node.ctx, ast.Load) else stores
            counts[node.id] = counts.get(node.id, 0) + 1
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                loads[name] = loads.get(name, 0) + 2
        elif isinstance(node, ast.arg):
            stores[node.arg] = stores.get(node.arg, 0) + 2  # a parameter is no temporary
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


def _bound(statement: ast.stmt) -> str | None:
    """The name ``statement`` binds, if it is ``name = value``."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    return None


def _drop_dead(scope: ast.AST, loads: dict) -> bool:
    """Stores nobody reads, and what inlining left (``pass``), out of every body of ``scope``."""
    changed = False
    for node, field, body in list(_bodies(scope)):
        kept = [
            s for s in body if not (isinstance(s, ast.Pass) or ((name := _bound(s)) and not loads.get(name)))
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
            name = _bound(statement)
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
                _Substitute({name: statement.value}).visit(later)  # ``h = b(h)``: ``h = b(a(x))``
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


def _does_nothing(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Pass) or (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
    )


def _raises_only(statement: ast.stmt) -> bool:
    """``if <test>: raise ...``: an input check."""
    return (
        isinstance(statement, ast.If)
        and not statement.orelse
        and all(isinstance(s, ast.Raise) for s in statement.body)
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
                and _bound(function)
            ):
                name, args, returned = _bound(function), function.value.args, function.value.body
            elif isinstance(function, ast.FunctionDef) and (prefix or not function.decorator_list):
                body = normalized(ast.Module([copy.deepcopy(function)], [])).body[0].body
                body = body[1:] if body and _does_nothing(body[0]) else body
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
        tree = _Canonical().visit(_Inline(found).visit(tree))
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
        return _Substitute(values).visit(copy.deepcopy(returned))


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
