"""Watch a student's function call their own helpers: what each call was given and returned.

``with watching(namespace, ["mlp", "layer_norm"], seen):`` replaces those functions in the
namespace the student's function looks its helpers up in (its module globals: the notebook's
namespace) by recorders, for the duration of the block, and appends to ``seen`` one entry per
call, in the order the calls start: ``{"helper", "args": {parameter: array}, "output": array,
"changed": [parameter]}`` (arrays only, as they were given; ``changed``: those the call changed
in place; the first ``MAX_CALLS`` calls). ``grader.diagnosis`` compares them with the
reference's stations: "your `mlp` is right, but `block` feeds it ...". ``interfered`` tells how a
function that must leave its arguments alone (``Exercise.pure``) did not.

Used by the notebook's check (``grader.check``) and by the scorer's harness, inside the sandbox,
where it is loaded as ``watch``: NumPy and the standard library only.
"""

import functools
import inspect
from contextlib import contextmanager

import numpy as np

MAX_CALLS = 12
MAX_ELEMENTS = 2**16


@contextmanager
def watching(namespace: dict, names, seen: list):
    originals = {name: namespace[name] for name in names if callable(namespace.get(name))}
    for name, fn in originals.items():
        namespace[name] = _recorder(name, fn, seen)
    try:
        yield
    finally:
        namespace.update(originals)


def _recorder(name: str, fn, seen: list):
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None

    @functools.wraps(fn)
    def recorded(*args, **kwargs):
        entry = None
        if len(seen) < MAX_CALLS:
            entry = {"helper": name, "args": _arguments(signature, args, kwargs), "output": None}
            seen.append(entry)
        out = fn(*args, **kwargs)
        if entry is not None:
            entry["output"] = _array(out)
            entry["changed"] = _changed(entry["args"], _bound(signature, args, kwargs))
        return out

    return recorded


def _bound(signature, args, kwargs) -> dict:
    try:
        return dict(signature.bind(*args, **kwargs).arguments) if signature else dict(kwargs)
    except TypeError:
        return dict(kwargs)


def _changed(copies: dict, live: dict) -> list[str]:
    """The arguments a call changed in place: their copies from before it differ from them now."""
    return [
        name
        for name, copy in copies.items()
        if isinstance(live.get(name), np.ndarray)
        and (live[name].shape != copy.shape or not np.array_equal(live[name], copy, equal_nan=True))
    ]


def _arguments(signature, args, kwargs) -> dict:
    bound = _bound(signature, args, kwargs)
    found = {}
    for name, value in bound.items():
        array = _array(value)
        if array is not None:
            found[name] = array
    return found


def _array(value):
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or value.size > MAX_ELEMENTS:
        return None
    return value.copy()


def interfered(given: dict, before: dict, output, new_array: bool = True) -> str | None:
    """How a function did not leave its arguments alone: ``given`` as it was called with (after the
    call), ``before`` an untouched copy; ``None`` if it did. Every array counts, inside dicts and
    lists too (a weight in ``params``); ``new_array``: returning an argument itself (or a view of
    it) counts as well."""
    for name, value in given.items():
        for path, array, old in _paired(name, value, before[name]):
            if array.shape != old.shape or not np.array_equal(array, old, equal_nan=True):
                return f"changed its argument `{path}` in place"
            if new_array and isinstance(output, np.ndarray) and np.shares_memory(output, array):
                return f"returned its argument `{path}` itself (or a view of it), not a new array"
    return None


def said(given: dict) -> set[str]:
    """Every text ``interfered`` can give for a call with arguments ``given``."""
    return {
        text
        for name, value in given.items()
        for path, _, _ in _paired(name, value, value)
        for text in (
            f"changed its argument `{path}` in place",
            f"returned its argument `{path}` itself (or a view of it), not a new array",
        )
    }


def _paired(path: str, value, old):
    """``(path, array, its copy)`` for every array in ``value`` (and ``old``, its copy)."""
    if isinstance(value, np.ndarray) and isinstance(old, np.ndarray):
        yield path, value, old
    elif isinstance(value, dict) and isinstance(old, dict):
        for key in value.keys() & old.keys():
            yield from _paired(f"{path}[{key!r}]", value[key], old[key])
    elif isinstance(value, list | tuple) and isinstance(old, list | tuple) and len(value) == len(old):
        for i, (v, o) in enumerate(zip(value, old, strict=True)):
            yield from _paired(f"{path}[{i}]", v, o)


def encoded(seen: list, encode) -> list:
    """``seen`` as JSON-safe records (``encode``: ``wire.encode``)."""
    return [
        {
            "helper": entry["helper"],
            "args": {name: encode(array) for name, array in entry["args"].items()},
            "output": None if entry["output"] is None else encode(entry["output"]),
            "changed": entry.get("changed", []),
        }
        for entry in seen
    ]
