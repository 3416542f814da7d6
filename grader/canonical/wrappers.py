"""Calls of wrappers, functions that only pass their arguments on, replaced by what they return
(red team, fifth to seventh rounds: lib's code with every name ``n`` written ``I(n)``, or every
``x.a`` as ``A(x, 'a')``, was no longer near lib's)."""

import ast
import copy

from .dataflow import Split, Substitute, bound
from .folds import Canonical, does_nothing, inert
from .form import normalized


def wrappers(tree: ast.Module) -> dict[str, tuple[ast.arguments, ast.expr]]:
    """The wrappers defined in ``tree``, by the name a call uses (``I``; ``W.I`` for a static or
    class method of class ``W``; ``w.I`` and ``W().I`` for a method called on an instance, ``w =
    W()`` bound once): functions, lambdas and methods that only pass their arguments on. Two kinds:

    - one statement that, in the canonical form, returns names, calls, attributes and constants
      (no arithmetic: what a wrapper returns is the arguments' business). ``def I(v): r = v;
      return r``, ``I = lambda v: v``, ``def I(v, _=None): return [v][0]``, ``def A(o, n): return
      operator.attrgetter(n)(o)`` (red team, sixth round: any shape but the one-statement ``return
      v`` hid lib's code); each parameter is read at most once (``_once``);
    - the identity on a parameter, whatever its shape (``_identity``): every ``return`` gives
      back the same parameter, never rebound, or the function's own call that passes it on (red
      team, seventh round: two ``return``s, keyword-only parameters, recursion, methods).

    Called with keywords, or bound by ``functools.partial``. A wrapper defined inside a function
    is one inside that function only (``_Inline``'s scopes), and a name bound more than once at the
    top (``class np`` with identity methods, then ``import numpy as np``) is none (red team, eighth
    round: decoys named like the calls of lib's code erased them). And a name imported from NumPy
    (``from numpy import mean``) or bound to one of its names (``_mean = np.mean``, a class's
    ``K.mean``, NumPy itself as ``import numpy as xp``), as ``(None, np.mean)``; a literal of its
    names (``OPS = {'mean': np.mean}``) too, read only where a constant picks a name out."""
    found, instances = {}, _instances(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] == "numpy":
            module = ast.parse("np" + node.module[len("numpy") :], mode="eval").body
            for alias in node.names:  # ``from numpy import mean``: ``mean`` is ``np.mean``
                found[alias.asname or alias.name] = (None, ast.Attribute(module, alias.name, ast.Load()))
            continue
        if isinstance(node, ast.Import):  # ``import numpy as xp``: ``xp`` is ``np``
            found |= {
                a.asname: (None, ast.Name("np", ast.Load()))
                for a in node.names
                if a.name == "numpy" and a.asname
            }
            continue
        if isinstance(node, ast.ClassDef):  # ``class K: mean = np.mean``: ``K.mean`` is ``np.mean``
            found |= {f"{node.name}.{bound(s)}": (None, s.value) for s in node.body if _numpy_alias(s)}
        if isinstance(node, ast.Assign) and bound(node) and _numpy_names(node.value):
            found[bound(node)] = (None, node.value)  # ``_mean = np.mean``, ``OPS = {'mean': np.mean}``
            continue
        for name, function in _callables(node, instances):
            wrapper = _wrapper(function)
            if wrapper is not None:
                found[name] = wrapper
    for node in tree.body:  # ``J = functools.partial(I, k=0)``: ``J`` calls ``I``
        partial = _partial_of(node.value, found) if isinstance(node, ast.Assign) and bound(node) else None
        if partial is not None:
            found[bound(node)] = partial
    rebound = {name for name, n in _bindings(tree.body).items() if n > 1}
    return {
        key: value for key, value in found.items() if key.partition(".")[0].partition("(")[0] not in rebound
    }


def _bindings(body: list[ast.stmt]) -> dict[str, int]:
    """How often each name is bound by the statements of ``body`` and the blocks in them (not
    inside functions or classes): definitions, imports, assignments."""
    counts: dict[str, int] = {}
    for statement in body:
        if isinstance(statement, NESTED):
            names = [statement.name]
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            names = [(a.asname or a.name).partition(".")[0] for a in statement.names]
        else:
            targets = [
                t for field in ("targets", "target", "items") for t in _as_list(getattr(statement, field, []))
            ]
            names = [
                n.id
                for t in targets
                for n in ast.walk(t)
                if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
            ]
            blocks = [
                s
                for field in ("body", "orelse", "finalbody", "handlers")
                for s in getattr(statement, field, [])
            ]
            inner = [s for b in blocks for s in (b.body if isinstance(b, ast.ExceptHandler) else [b])]
            for name, n in _bindings(inner).items():
                counts[name] = counts.get(name, 0) + n
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def _instances(tree: ast.Module) -> dict[str, list[str]]:
    """By class name, the names bound once at the top of ``tree`` to an instance of it (``w =
    W()``)."""
    found: dict[str, list[str]] = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign) and bound(node) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            found.setdefault(value.func.id, []).append(bound(node))
    return found


def _callables(node: ast.AST, instances: dict[str, list[str]]) -> list[tuple[str, ast.AST]]:
    """(the name a call uses, the definition) of what ``node`` defines: itself, or the methods of
    a class (``W.I`` for a static or class method; ``w.I`` and ``W().I`` for a method called on an
    instance, ``instances`` by class), without the ``self`` or ``cls`` a call does not pass."""
    if not isinstance(node, ast.ClassDef):
        name = (
            node.name
            if isinstance(node, ast.FunctionDef)
            else bound(node)
            if isinstance(node, ast.Assign)
            else None
        )
        return [(name, node)] if name else []
    found = []
    for method in node.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in method.decorator_list]
        if decorators == ["staticmethod"]:
            found.append((f"{node.name}.{method.name}", method))
        elif decorators in ([], ["classmethod"]) and method.args.args:
            unbound = copy.deepcopy(method)
            unbound.args.args.pop(0)  # ``self`` or ``cls``
            receivers = [*instances.get(node.name, []), f"{node.name}()"]
            found += [(f"{receiver}.{method.name}", unbound) for receiver in receivers]
            if decorators:
                found.append((f"{node.name}.{method.name}", unbound))
    return found


def _numpy_alias(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Assign) and bool(bound(statement)) and _numpy_attribute(statement.value)


def _numpy_names(value: ast.expr) -> bool:
    """``np.mean``, or a literal of NumPy's names (``{'mean': np.mean}``, ``(np.mean, np.var)``),
    whose elements a subscript picks out (red team, seventh round: ``OPS['mean'](x)``)."""
    if isinstance(value, ast.Dict):
        keys = [k for k in value.keys if not isinstance(k, ast.Constant)]
        return not keys and bool(value.values) and all(_numpy_attribute(v) for v in value.values)
    if isinstance(value, ast.Tuple | ast.List):
        return bool(value.elts) and all(_numpy_attribute(v) for v in value.elts)
    return _numpy_attribute(value)


def _numpy_attribute(value: ast.expr) -> bool:
    """``np.mean``, ``numpy.linalg.norm``: a name of NumPy's."""
    while isinstance(value, ast.Attribute):
        value = value.value
    return (
        isinstance(value, ast.Name) and value.id in ("np", "numpy") and not isinstance(value.ctx, ast.Store)
    )


def _wrapper(function: ast.AST) -> tuple[ast.arguments, ast.expr] | None:
    """(parameters, what it returns) of a wrapper (``wrappers``), or ``None``."""
    if isinstance(function, ast.Assign) and isinstance(function.value, ast.Lambda) and bound(function):
        args, returned = function.value.args, function.value.body
    elif isinstance(function, ast.FunctionDef) and all(
        ast.unparse(d) in ("staticmethod", "classmethod") for d in function.decorator_list
    ):
        identity = _identity(function)
        if identity is not None:
            return function.args, ast.Name(identity, ast.Load())
        returned = _returned(function)
        if returned is None:
            return None
        args = function.args
    else:
        return None
    if (all(isinstance(n, WRAPPED) for n in ast.walk(returned)) or _operator(returned, args)) and _once(
        args, returned
    ):
        return args, returned
    return None


def _operator(returned: ast.expr, args: ast.arguments) -> bool:
    """``a - b``, ``-a``: an operator on the parameters, each read (none left out, with what a call
    passes it), the function an operator spelt as a call (``def _sub(a, b): return a - b``; red
    team, seventh round), as ``operator.sub`` is."""
    operands = (
        [returned.left, returned.right]
        if isinstance(returned, ast.BinOp)
        else [returned.operand]
        if isinstance(returned, ast.UnaryOp)
        else []
    )
    names = [o.id for o in operands if isinstance(o, ast.Name)]
    return bool(operands) and len(names) == len(operands) and set(names) == _parameters(args)


def _returned(function: ast.FunctionDef) -> ast.expr | None:
    """What ``function`` returns, if its body in the canonical form is one ``return``: read without
    the functions and classes it defines (a wrapper's result does not depend on them, and
    normalising them level by level took the scan minutes: red team, eighth round, twenty nested
    functions of twenty statements), once for each function of the notebook."""
    outer = copy.copy(function)
    outer.body = [s for s in function.body if not isinstance(s, NESTED)] or [ast.Pass()]
    key = ast.dump(outer)
    if key not in _RETURNED:
        if len(_RETURNED) > 4096:
            _RETURNED.clear()
        body = normalized(ast.Module([copy.deepcopy(outer)], [])).body[0].body
        body = body[1:] if body and does_nothing(body[0]) else body
        single = len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None
        _RETURNED[key] = body[0].value if single else None
    return _RETURNED[key]


NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
CONTAINERS = (ast.Dict, ast.Tuple, ast.List)
_RETURNED: dict[str, ast.expr | None] = {}  # by ast.dump: every function compared reads them again


def _identity(function: ast.FunctionDef) -> str | None:
    """The parameter ``function`` gives back unchanged on every ``return``, if there is one: each
    returns that parameter, never rebound, or ``function``'s own call passing it on in its place
    (``return v if n else I(v, n - 1)``)."""
    params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    returns = [n for n in _own_nodes(function) if isinstance(n, ast.Return)]
    rebound = {
        n.id for n in _own_nodes(function) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    for i, param in enumerate(params):
        if (
            param not in rebound
            and returns
            and all(_gives(r.value, function.name, param, i) for r in returns)
        ):
            return param
    return None


def _gives(value: ast.expr | None, name: str, param: str, position: int) -> bool:
    """Whether ``value`` is ``param``, whichever way a conditional goes, or the call ``name(...)``
    with ``param`` in its place."""
    if isinstance(value, ast.Name):
        return value.id == param
    if isinstance(value, ast.IfExp):
        return _gives(value.body, name, param, position) and _gives(value.orelse, name, param, position)
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == name:
        passed = value.args[position] if position < len(value.args) else None
        passed = passed or next((k.value for k in value.keywords if k.arg == param), None)
        return isinstance(passed, ast.Name) and passed.id == param
    return False


def _own_nodes(function: ast.FunctionDef):
    """The nodes of ``function``'s body, but those of the functions and classes it defines."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _partial_of(value: ast.expr, found: dict) -> tuple[ast.arguments, ast.expr] | None:
    """The wrapper ``value`` calls if it is ``functools.partial(I, k=...)`` (keywords only) of a
    wrapper ``I``, named or a lambda."""
    if not (isinstance(value, ast.Call) and ast.unparse(value.func) in ("partial", "functools.partial")):
        return None
    first = value.args[0] if len(value.args) == 1 else None
    if isinstance(first, ast.Lambda):
        return _wrapper(ast.Assign([ast.Name("_", ast.Store())], first))
    wrapper = found.get(first.id) if isinstance(first, ast.Name) else None
    return wrapper if wrapper is not None and wrapper[0] is not None else None


def _once(args: ast.arguments, returned: ast.expr) -> bool:
    """Each parameter read at most once in what the wrapper returns: inlining then never makes
    the code grow (red team, seventh round: a wrapper that repeats its argument thirty times,
    called three deep, took the scan minutes)."""
    names = [n.id for n in ast.walk(returned) if isinstance(n, ast.Name)]
    return all(names.count(p) <= 1 for p in _parameters(args))


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


def inline_wrappers(tree: ast.Module, known: dict | None = None, keep: bool = False) -> ast.Module:
    """Each call of a wrapper (``wrappers``: of ``tree``'s, or ``known``, a notebook's) replaced
    by what the wrapper returns, its parameters replaced by the call's arguments (red team, fifth
    round: lib's code with every name ``n`` written ``I(n)``, or every ``x.a`` as ``A(x, 'a')``,
    was no longer near lib's); folded as the form that follows will be (``keep``: leaving out no
    code that can run; else an input check is its ``raise`` alone, as that form has it)."""
    found = {**(known or {}), **wrappers(tree)}
    tree = Split().visit(tree)  # ``I(0, (n := e))``: ``n = e`` first, before a fold leaves it out
    for _ in range(3):  # a wrapper of a wrapper, twice over (and those defined inside functions)
        tree = Canonical(keep).visit(_Inline(found, keep).visit(tree))
    return tree


class _Inline(ast.NodeTransformer):
    """Calls of ``wrappers`` replaced, by scope: inside a function, its own wrappers first, and a
    name it binds itself (a parameter, a local) is not the notebook's of that name (red team,
    eighth round: ``x = np.e`` at the top, for every parameter ``x`` of lib's code, turned every
    ``x`` into ``np.e``)."""

    def __init__(self, wrappers: dict[str, tuple[ast.arguments | None, ast.expr]], keep: bool = False):
        self.scopes = [(wrappers, set())]  # (wrappers, names bound there), innermost last
        self.keep = keep

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        own = wrappers(ast.Module(node.body, []))
        self.scopes.append((own, _locals(node) - set(own)))
        try:
            return self.generic_visit(node)
        finally:
            self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.scopes.append(({}, _parameters(node.args)))
        try:
            return self.generic_visit(node)
        finally:
            self.scopes.pop()

    def _find(self, key: str):
        name = key.partition(".")[0].partition("(")[0]
        for found, bound_here in reversed(self.scopes):
            if key in found:
                return found[key]
            if name in bound_here:
                return None
        return None

    def visit_Name(self, node: ast.Name) -> ast.AST:
        args, value = self._find(node.id) or (0, None)
        if args is None and isinstance(node.ctx, ast.Load) and not isinstance(value, CONTAINERS):
            return copy.deepcopy(value)  # a name of NumPy's
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        """``K.mean``, a class's name for one of NumPy's: NumPy's."""
        self.generic_visit(node)
        found = self._find(f"{node.value.id}.{node.attr}") if isinstance(node.value, ast.Name) else None
        if found and found[0] is None and isinstance(node.ctx, ast.Load):
            return copy.deepcopy(found[1])
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        """``OPS['mean']``, a literal of NumPy's names indexed by a constant: the name picked out
        (not the literal wherever its name is read: that would make the code grow)."""
        self.generic_visit(node)
        found = self._find(node.value.id) if isinstance(node.value, ast.Name) else None
        if found and found[0] is None and isinstance(found[1], CONTAINERS) and isinstance(node.ctx, ast.Load):
            picked = Canonical().visit_Subscript(
                ast.Subscript(copy.deepcopy(found[1]), node.slice, ast.Load())
            )
            if not isinstance(picked, ast.Subscript):
                return picked
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        wrapper = self._called(node.func)
        if wrapper is None or wrapper[0] is None or any(isinstance(a, ast.Starred) for a in node.args):
            return node
        args, returned = wrapper
        values = _arguments(args, node)
        read = {n.id for n in ast.walk(returned) if isinstance(n, ast.Name)} & _parameters(args)
        if values is None or read - set(values) or (self.keep and not _passed_on(node, values, read)):
            return node
        return Substitute(values).visit(copy.deepcopy(returned))

    def _called(self, func: ast.expr):
        """The wrapper ``func`` names: ``I``, ``W.I``, ``w.I``, ``W().I``."""
        if isinstance(func, ast.Name):
            return self._find(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return self._find(f"{func.value.id}.{func.attr}")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
            made = func.value
            if isinstance(made.func, ast.Name) and not made.args and not made.keywords:
                return self._find(f"{made.func.id}().{func.attr}")
        return None


def _passed_on(call: ast.Call, values: dict[str, ast.expr], read: set[str]) -> bool:
    """Whether every argument of ``call`` that holds code is one the wrapper reads (``values``: by
    parameter), so that inlining it leaves out no code that can run (``I(0, e)`` for ``def I(v,
    _=None): return v`` runs ``e``)."""
    used = {id(values[p]) for p in read}
    used |= {id(e) for p in read if isinstance(values[p], ast.Tuple) for e in values[p].elts}  # ``*args``
    return all(inert(a) for a in (*call.args, *(k.value for k in call.keywords)) if id(a) not in used)


def _locals(function: ast.FunctionDef) -> set[str]:
    """The names ``function`` binds itself: its parameters, and what it stores (not in the
    functions it defines, but their names)."""
    names = _parameters(function.args)
    for node in _own_nodes(function):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, NESTED):
            names.add(node.name)
    return names


def _parameters(args: ast.arguments) -> set[str]:
    return {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}


def _arguments(args: ast.arguments, call: ast.Call) -> dict[str, ast.expr] | None:
    """The value of each parameter of ``args`` in ``call`` (defaults included); ``None`` if the
    call does not fit the parameters."""
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    values = dict(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
    values |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None}
    values |= dict(zip(positional, call.args, strict=False))
    extra = call.args[len(positional) :]
    if extra and args.vararg is None:
        return None
    if args.vararg is not None:
        values[args.vararg.arg] = ast.Tuple(extra, ast.Load())
    by_keyword = positional[len(args.posonlyargs) :] + [a.arg for a in args.kwonlyargs]
    for keyword in call.keywords:  # ``I(v=x)``
        if keyword.arg in by_keyword:
            values[keyword.arg] = keyword.value
        elif args.kwarg is None:
            return None
    return values
