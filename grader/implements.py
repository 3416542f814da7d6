"""Which of ``lib``'s functions implement an exercise: those its reference reaches.

An exercise's reference is a function of the grader's (``grader.exercises``) that calls ``lib``:
directly (``lib.embed``), through a class (``lib.Model(...).forward``: every method of the class
counts), through a module's attribute, or through a helper of the grader's own
(``lib_param_count`` -> ``checkpoint_layout``) or one it wraps (``packed(_attend_with_cache)``).
A class counts when the chapter grades it (its ``GRADED``: ``Model`` in the worked toy), else it
is only data the reference builds (a ``Config``). ``reached`` follows the reference's bytecode through its globals and closure, and the helpers it
finds, and keeps the functions of ``lib``: what a copier would paste to earn the points without
writing the stage. What the scorer lends the chapter (``grader.lending``) is left out: calling it
is allowed, so a copy of it is no finding. So is a generic utility (``lib.model.leaves``, the
arrays of a nested dict in order, which the parameter count's reference walks ``param_shapes``
with): a function that reads nothing but its arguments, Python's builtins and the methods of
Python's own containers, and holds no constant of the course (a string, a size), computes nothing
of the course; any student may write the same walk, and did (red team, seventh round: a
``count_params`` summing ``np.prod`` over its own walk of ``lib.param_shapes`` was "100% of
``lib.model.leaves``"). Such a function is no stage, whatever the reference calls.

The walk follows names, not calls that only exist at run time (a name built from a string): the
references are the course's code, written plainly.
"""

import builtins
import dis
import functools
import inspect
import types
from collections.abc import Iterator

from . import exercises, lending

GRADER_HELPERS = "grader."  # the modules whose functions the walk follows into
# What a generic utility may read besides its arguments: the attributes of Python's own values.
CONTAINER_ATTRIBUTES = frozenset().union(
    *(dir(t) for t in (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, type(None)))
)
PLAIN_CONSTANTS = (None, True, False, 0, 1, -1)  # (a docstring aside) all a generic utility holds


def reached(exercise_id: str) -> list[types.FunctionType]:
    """The functions of ``lib`` that ``exercise_id``'s reference reaches and its chapter does not
    lend, in the order first reached (methods of a class reached in their class's order)."""
    exercise = exercises.get(exercise_id)
    reference = getattr(exercise, "reference", None)
    if reference is None:
        return []
    assignment = exercise_id.partition("/")[0]
    lent, graded = lending.lent_definitions(assignment), lending.graded(assignment)
    found: dict[types.FunctionType, None] = {}
    for value in _walk(reference, set()):
        if isinstance(value, type) and value.__name__ not in graded:
            continue
        for function in _functions_of(value):
            if key(function) not in lent and not generic(function):
                found[function] = None
    return list(found)


def _walk(fn, seen: set) -> Iterator[object]:
    """Every value of ``lib`` that ``fn`` names, following the grader's helpers it names."""
    fn = _unwrapped(fn)
    if not isinstance(fn, types.FunctionType) or fn in seen:
        return
    seen.add(fn)
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
    for value in _named(fn.__code__, fn.__globals__, cells):
        if _in_lib(value):
            yield value
        elif isinstance(value, types.FunctionType | functools.partial) and _is_helper(value):
            yield from _walk(value, seen)


def _named(code: types.CodeType, globals_: dict, cells: dict) -> Iterator[object]:
    """The values ``code`` (and the code nested in it) loads by name, with attribute chains on
    modules and classes followed (``lib.checkpoint.checkpoint_layout``)."""
    value = None
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            value = globals_.get(instruction.argval, None)
        elif instruction.opname == "LOAD_DEREF" and instruction.argval in cells:
            try:
                value = cells[instruction.argval].cell_contents
            except ValueError:  # an empty cell
                value = None
        elif instruction.opname in ("LOAD_ATTR", "LOAD_METHOD") and isinstance(
            value, types.ModuleType | type
        ):
            value = getattr(value, instruction.argval, None)
        else:
            continue
        if value is not None:
            yield value
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _named(constant, globals_, cells)


def _unwrapped(fn):
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _in_lib(value) -> bool:
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and (module == lending.PACKAGE or module.startswith(lending.PACKAGE + "."))


def _is_helper(value) -> bool:
    return getattr(_unwrapped(value), "__module__", "").startswith(GRADER_HELPERS)


def _functions_of(value) -> list[types.FunctionType]:
    """A function of lib's, or every method a class of lib's defines."""
    if isinstance(value, types.FunctionType):
        return [value]
    if isinstance(value, type):
        methods = (inspect.unwrap(getattr(m, "__func__", m)) for m in vars(value).values())
        return [m for m in methods if isinstance(m, types.FunctionType) and _in_lib(m) and _written(m)]
    return []


def generic(function: types.FunctionType) -> bool:
    """Whether ``function`` (and the code nested in it) reads nothing but its arguments, Python's
    builtins, itself and the methods of Python's containers, and holds no constant but
    ``PLAIN_CONSTANTS``: a utility that computes nothing of the course (a walk of a nested dict)."""
    todo, first = [function.__code__], True
    while todo:
        code = todo.pop()
        constants = code.co_consts[1:] if first and function.__doc__ is not None else code.co_consts
        first = False
        for constant in constants:
            if isinstance(constant, types.CodeType):
                todo.append(constant)
            elif not any(type(constant) is type(plain) and constant == plain for plain in PLAIN_CONSTANTS):
                return False
        for instruction in dis.get_instructions(code):
            name = instruction.argval
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"):
                if function.__globals__.get(name, getattr(builtins, name, None)) is not function and not (
                    name not in function.__globals__ and hasattr(builtins, name)
                ):
                    return False
            elif _reads_outside(instruction.opname):
                return False
            elif "ATTR" in instruction.opname or instruction.opname == "LOAD_METHOD":
                if name not in CONTAINER_ATTRIBUTES:
                    return False
    return True


def _reads_outside(opname: str) -> bool:
    """An import, or a read of a free variable (``LOAD_DEREF``; 3.11's ``LOAD_CLASSDEREF``, 3.12's
    ``LOAD_FROM_DICT_OR_DEREF``)."""
    return opname == "IMPORT_NAME" or (opname.startswith("LOAD") and opname.endswith("DEREF"))


def _written(function: types.FunctionType) -> bool:
    """Whether the function's code is in a file of lib's (not made by ``dataclasses``)."""
    return function.__code__.co_filename.startswith(str(lending.LIB))


def key(function: types.FunctionType) -> tuple[str, str]:
    """``(module, top-level name)``, as ``lending.lent_definitions`` lists what it lends."""
    return function.__module__, function.__qualname__.split(".")[0]
