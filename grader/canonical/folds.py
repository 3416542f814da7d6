"""Rewrites of the syntax, undone: the same computation, spelt another way.

Every ``x`` as ``(x,)[0]``, every ``np.mean`` as ``getattr(np, 'mean')`` or through an alias ``m =
np.mean``, ``a + b`` as ``b + a``, ``a.__add__(b)`` or ``np.add(a, b)``, a ``pass`` or a stray
string after every statement (red team, fourth round: each broke enough token k-grams to pass
under the near-identical threshold); a block that runs its body once (``for _ in range(1)``,
``while True: ...; break``, ``if True``, ``try``, ``with``) and an attribute name spelt at run
time (``getattr(o, 'me' + 'an', None)``, ``o.__getattribute__('mean')``; red team, seventh round);
an array's method that NumPy also has as a function (``x.mean(-1)``) is that function (``np.mean(x,
-1)``), and the two sides of a comparison are in a fixed order (``b > a`` is ``a < b``).
"""

import ast
import inspect
from functools import cache

import numpy as np

from .dataflow import Substitute, hoisted

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


UFUNCS = {  # NumPy's, and the operator module's: ``np.subtract(a, b)``, ``operator.sub(a, b)``
    "add": ast.Add,
    "sub": ast.Sub,
    "mul": ast.Mult,
    "truediv": ast.Div,
    "floordiv": ast.FloorDiv,
    "pow": ast.Pow,
    "subtract": ast.Sub,
    "multiply": ast.Mult,
    "divide": ast.Div,
    "true_divide": ast.Div,
    "floor_divide": ast.FloorDiv,
    "power": ast.Pow,
    "matmul": ast.MatMult,
}


COMMUTATIVE = (ast.Add, ast.Mult)
# ``x.mean(-1)`` is ``np.mean(x, -1)``: an array's methods that NumPy also has as functions
ARRAY_FUNCTIONS = {
    name for name in dir(np.ndarray) if not name.startswith("_") and callable(getattr(np, name, None))
} - {"astype", "view"}
MODULES = {"np", "numpy", "math", "lib", "operator", "functools", "random", "torch"}
MIRRORED = {  # ``a < b`` is ``b > a``
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Is: ast.Is,
    ast.IsNot: ast.IsNot,
    ast.Lt: ast.Gt,
    ast.Gt: ast.Lt,
    ast.LtE: ast.GtE,
    ast.GtE: ast.LtE,
}


ALIASABLE = (ast.Name, ast.Attribute)  # ``m = np.mean``: an alias, not a computation


class Canonical(ast.NodeTransformer):
    """The folds. ``keep``: fold without leaving out any code that can run (a ``try``'s handlers,
    a ``with``'s context, an input check's test), for the second form the scan compares (red team,
    eighth round: lib's code in the handler of ``try: raise LookupError`` was left out)."""

    def __init__(self, keep: bool = False):
        self.keep = keep

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
                i = keys.index(index.value)
                return self.picked(node, node.value.values[i], [*node.value.keys, *node.value.values])
        if (
            isinstance(node.value, ast.Tuple | ast.List)
            and isinstance(index, ast.Constant)
            and type(index.value) is int
            and -len(node.value.elts) <= index.value < len(node.value.elts)
            and not any(isinstance(e, ast.Starred) for e in node.value.elts)
        ):
            return self.picked(node, node.value.elts[index.value], node.value.elts)
        if (
            isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) in ("locals", "vars")
            and not node.value.args
            and isinstance(index, ast.Constant)
            and isinstance(index.value, str)
            and index.value.isidentifier()
        ):
            return ast.Name(index.value, node.ctx)  # ``locals()['n']``: ``n`` (red team, eighth round)
        return node

    def picked(self, node: ast.expr, picked: ast.expr, among: list[ast.expr]) -> ast.expr:
        """``picked``, one of the parts ``among`` of ``node``; with ``keep``, only if the others
        hold no code (``inert``): ``(0, np.exp(e, out=e))[0]`` runs what it leaves out."""
        if self.keep and not all(inert(p) for p in among if p is not picked):
            return node
        return picked

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt]:
        """``if True: body``: the body (or the ``else``, for a false test); ``if not c: a else:
        b`` is ``if c: b else: a``."""
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            return (node.body if node.test.value else node.orelse) or [ast.Pass()]
        if _negated(node.test) and node.orelse:
            node.test, node.body, node.orelse = node.test.operand, node.orelse, node.body
        return node

    def visit_Delete(self, node: ast.Delete) -> ast.AST | None:
        """``del n``: nothing (it ends a name's binding, computes nothing; red team, seventh round:
        each temporary deleted after use was no temporary)."""
        return None if all(isinstance(t, ast.Name) for t in node.targets) else node

    def visit_Try(self, node: ast.Try) -> list[ast.stmt]:
        """A ``try`` is the code it runs when nothing fails: its body, ``else`` and ``finally``
        (and, with ``keep``, its handlers' bodies)."""
        self.generic_visit(node)
        handlers = [s for h in node.handlers for s in h.body] if self.keep else []
        return [*node.body, *handlers, *node.orelse, *node.finalbody]

    def visit_With(self, node: ast.With) -> list[ast.stmt]:
        """A ``with`` block is its body (what a context does is not the computation); with
        ``keep``, each context first, bound to its name (``with c as n``: ``n = c``)."""
        self.generic_visit(node)
        contexts = [
            ast.Assign([item.optional_vars], item.context_expr)
            if item.optional_vars
            else ast.Expr(item.context_expr)
            for item in node.items
        ]
        return [*contexts, *node.body] if self.keep else node.body

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
        """``a if True else b``: ``a``; ``b if not c else a``: ``a if c else b`` (red team, seventh
        round)."""
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        if _negated(node.test):
            node.test, node.body, node.orelse = node.test.operand, node.orelse, node.body
        if ast.dump(node.body) == ast.dump(node.orelse) and all(inert(n) for n in _operands(node.test)):
            return node.body  # ``r if r is not None else r``: ``r`` (red team, seventh round)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        """A call in one spelling (keywords spelt out and sorted, NumPy's functions in one form);
        then, given positional arguments alone, a call that only spells out an attribute, an
        operator or its own argument is that (``CALL_FOLDS``)."""
        self.generic_visit(node)
        node.keywords = _spelt_out(node.keywords)
        _numpy_call(node)
        if all(k.arg is not None for k in node.keywords):
            node.keywords.sort(key=lambda k: k.arg)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return node
        for fold in CALL_FOLDS:
            folded = fold(self, node)
            if folded is not None:
                return folded
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
        """The two sides of one comparison in a fixed order: ``b > a`` is ``a < b``, ``None is x``
        is ``x is None`` (red team, seventh round)."""
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in MIRRORED:
            if _order(node.comparators[0]) < _order(node.left):
                node.left, node.comparators = node.comparators[0], [node.left]
                node.ops = [MIRRORED[type(node.ops[0])]()]
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """Statements that do nothing (``pass``, a string or number alone) left out of every body;
        an input check is its ``raise`` alone (but with ``keep``): the test is what every docstring
        invites a student to write, the message is their own (red team, sixth round: an honest
        ``lm_head`` with lib's shape check and a message of its own was "85% of lib"). Each
        ``raise`` comes first in its body: where a check stands steers, it computes nothing (red
        team, eighth round: a check that never fails after every statement broke lib's data flow
        in runs too short to match)."""
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [r for s in body if not does_nothing(s) for r in _checked(s, self.keep)]
                kept = [s for s in kept if isinstance(s, ast.Raise)] + [
                    s for s in kept if not isinstance(s, ast.Raise)
                ]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
        return node


def _attribute_call(canonical: Canonical, node: ast.Call) -> ast.expr | None:
    """``getattr(o, 'a')``, ``o.__getattribute__('a')``, ``operator.attrgetter('a')(o)``: ``o.a``
    (``getattr(o, 'a', default)`` too, where the default holds no code or ``keep`` is off)."""
    func, args = node.func, node.args
    if isinstance(func, ast.Call) and _attribute_getter(func) and len(args) == 1:
        return ast.Attribute(args[0], func.args[0].value, ast.Load())
    if isinstance(func, ast.Attribute) and func.attr == "__getattribute__" and len(args) == 1:
        args = [func.value, args[0]]
    elif not (isinstance(func, ast.Name) and func.id == "getattr" and len(args) in (2, 3)):
        return None
    name = args[1]
    if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.isidentifier():
        return canonical.picked(node, ast.Attribute(args[0], name.value, ast.Load()), args[2:])
    return None


def _operator_call(canonical: Canonical, node: ast.Call) -> ast.expr | None:
    """``a.__add__(b)``, ``np.add(a, b)``, ``operator.sub(a, b)``, ``pow(a, b)``: ``a + b``,
    ``a - b``, ``a ** b``."""
    func, args = node.func, node.args
    if isinstance(func, ast.Attribute) and func.attr in DUNDERS and len(args) == 1:
        return canonical.visit_BinOp(ast.BinOp(func.value, DUNDERS[func.attr](), args[0]))
    if isinstance(func, ast.Attribute) and func.attr in UFUNCS and len(args) == 2 and _named(func.value):
        return canonical.visit_BinOp(ast.BinOp(args[0], UFUNCS[func.attr](), args[1]))
    if isinstance(func, ast.Name) and func.id == "pow" and len(args) == 2:
        return canonical.visit_BinOp(ast.BinOp(args[0], ast.Pow(), args[1]))
    return None


def _identity_call(canonical: Canonical, node: ast.Call) -> ast.expr | None:
    """``(lambda v: v)(x)``, ``nullcontext(x)`` (the context that gives back what it is given),
    ``min((x,))``, ``max([x])``, ``next(iter((x,)))``: ``x``."""
    func, args = node.func, node.args
    if len(args) != 1:
        return None
    if (isinstance(func, ast.Lambda) and _is_identity(func)) or _called("nullcontext", node):
        return args[0]
    name = func.id if isinstance(func, ast.Name) else None
    if name in ("min", "max"):
        return _single(args[0])
    if name == "next" and _called("iter", args[0]):
        return _single(args[0].args[0])
    return None


# The calls ``Canonical.visit_Call`` folds: each takes the call, gives what it spells or None.
CALL_FOLDS = (_attribute_call, _operator_call, _identity_call)


def _called(name: str, node: ast.AST) -> bool:
    """Whether ``node`` is a call of a function named ``name`` (``f(...)`` or ``m.f(...)``) with
    one argument."""
    if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
        return False
    func = node.func
    return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == name


def _spelt_out(keywords: list[ast.keyword]) -> list[ast.keyword]:
    """``f(**{'axis': -1})``: ``f(axis=-1)`` (red team, eighth round)."""
    found = []
    for keyword in keywords:
        value = keyword.value
        if (
            keyword.arg is None
            and isinstance(value, ast.Dict)
            and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.isidentifier()
                for k in value.keys
            )
        ):
            found += [ast.keyword(k.value, v) for k, v in zip(value.keys, value.values, strict=True)]
        else:
            found.append(keyword)
    return found


def _numpy_call(node: ast.Call) -> None:
    """A call of NumPy's in one spelling (in place): an array's method that NumPy also has as a
    function is that function (``x.mean(-1)``: ``np.mean(x, -1)``; ``x.astype(t)``:
    ``np.asarray(x, dtype=t)``), and its arguments after the first are given by keyword where
    NumPy's signature lets them (``np.mean(x, axis=-1)``)."""
    func = node.func
    if not isinstance(func, ast.Attribute):
        return
    if func.attr == "astype" and len(node.args) == 1 and not _module(func.value):
        node.keywords.append(ast.keyword("dtype", node.args[0]))
        node.func, node.args = _np("asarray"), [func.value]
    elif func.attr in ARRAY_FUNCTIONS and not _module(func.value):
        node.func, node.args = _np(func.attr), [func.value, *node.args]
    elif getattr(func.value, "id", "") not in ("np", "numpy"):
        return
    parameters = () if any(isinstance(a, ast.Starred) for a in node.args) else _signature(node.func.attr)
    for i in range(len(node.args) - 1, 0, -1):  # from the last: a keyword argument is given after all others
        if i < len(parameters) and parameters[i]:
            node.keywords.append(ast.keyword(parameters[i], node.args.pop(i)))
        else:
            break


def _np(name: str) -> ast.Attribute:
    return ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load())


@cache
def _signature(name: str) -> tuple[str | None, ...]:
    """For each position, the keyword NumPy's function ``name`` also takes that argument by
    (``None`` where it takes it by position only); empty where it has no signature to read."""
    try:
        parameters = inspect.signature(getattr(np, name)).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return ()
    found = []
    for p in parameters:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        found.append(p.name if p.kind == p.POSITIONAL_OR_KEYWORD else None)
    return tuple(found)


def _module(value: ast.expr) -> bool:
    """``np``, ``math``, ``np.linalg``: a module whose functions a call names, not an array."""
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id in MODULES


def _checked(statement: ast.stmt, keep: bool) -> list[ast.stmt]:
    """An input check (``if test: raise ...``) is what its test binds (``if (n := e) is X``: ``n =
    e``), then its ``raise`` (after its test, with ``keep``); any other statement is itself."""
    if not _raises_only(statement):
        return [statement]
    bound = hoisted(statement, "test")
    return [*bound, ast.Expr(statement.test), *statement.body] if keep else [*bound, *statement.body]


INERT = (ast.Name, ast.Constant, ast.Attribute, ast.Tuple, ast.List, ast.expr_context)


def inert(node: ast.AST | None) -> bool:
    """Whether ``node`` holds no code, only names and constants: what a fold may leave out in the
    form that leaves out no code that can run (red team, ninth round: lib's code in an element of
    ``(0, e)[0]``, an argument a wrapper ignores, a default of ``getattr``, ran but was left out)."""
    return node is None or all(isinstance(n, INERT) for n in ast.walk(node))


def _operands(test: ast.expr) -> list[ast.expr]:
    """The operands of a comparison or a boolean test (``[test]`` for any other test)."""
    if isinstance(test, ast.Compare):
        return [test.left, *test.comparators]
    if isinstance(test, ast.BoolOp):
        return [o for v in test.values for o in _operands(v)]
    return [test.operand] if isinstance(test, ast.UnaryOp) else [test]


def _named(value: ast.expr) -> bool:
    """``np``, ``operator``, ``np.linalg``: names alone (a call's receiver that folding the call
    leaves out must hold no code: ``(<lib's code>).add(a, b)`` is not ``a + b``)."""
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name)


def _negated(test: ast.expr) -> bool:
    return isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)


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


def does_nothing(statement: ast.stmt) -> bool:
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


def inline_aliases(tree: ast.AST) -> ast.AST:
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
            Substitute(aliases).visit(scope)
    return tree


def _alias_of(statement: ast.Assign, aliases: dict) -> bool:
    target = statement.targets[0]
    return isinstance(target, ast.Name) and aliases.get(target.id) is statement.value
