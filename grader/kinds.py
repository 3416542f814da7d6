"""What kind of input a case is, and how a hidden case is described to a student.

A ✔ in the notebook means full marks only if the visible cases hold every kind of input the
hidden ones use: ``tests/test_exercises.py`` checks, for every exercise and many secrets, that the
kinds of the hidden cases are among those of the visible ones. A case's kinds are those its
builder declares (what only the exercise knows: "ties at the k-th place", "p hit exactly") and
those derived here from its inputs, exactly:

- the dtype of every float array, anywhere in the inputs (``float32``, ``float64``), and of a
  dtype given as an argument (``dtype=float16``);
- the number of axes of every top-level array (``x.ndim=3``: a leading batch axis is a kind),
  an empty one (``cache_k empty``) and one holding ``-inf`` (``logits has -inf``); integers that
  are not one run (``positions not consecutive``), and rows whose largest entries are in
  different columns (``logits rows peak apart``), which a shortcut could pass without;
- each optional argument given a value other than its default (``eps given``) or ``None``
  (``k=None``), and every number equal to 0 or 1 (``temperature=0``, ``n_tokens=1``) but a
  seed's (``is_seed``: it picks random numbers and measures nothing);
- the switches of a config (``config.mlp=swiglu``, ``config.tie_embeddings=False``);
- a case that must raise (``raises``).

``describe`` says what a hidden case is without its values: the builder's words, then each
input's shape and dtype, or its value if it is a number.
"""

import dataclasses
import inspect
from collections.abc import Callable, Iterator

import numpy as np

EDGE_VALUES = (0, 1)


def derived(reference: Callable, case) -> frozenset[str]:
    """The kinds of ``case`` that its inputs show (see the module docstring)."""
    found = set()
    for value in leaves(case.inputs):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            found.add(str(value.dtype))
    optional = defaults(reference)
    for name, value in case.inputs.items():
        if isinstance(value, np.ndarray):
            found.add(f"{name}.ndim={value.ndim}")
            if 0 in value.shape:
                found.add(f"{name} empty")
            if value.dtype.kind == "f" and np.isneginf(value).any():
                found.add(f"{name} has -inf")
            found |= _patterns(name, value)
        elif isinstance(value, np.dtype):
            found.add(f"{name}={value}")
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            found |= {
                f"{name}.{f.name}={getattr(value, f.name)}"
                for f in dataclasses.fields(value)
                if isinstance(getattr(value, f.name), str | bool)
            }
        elif value is None:
            found.add(f"{name}=None")
        elif _number(value) and value in EDGE_VALUES and not is_seed(name):
            found.add(f"{name}={value:g}")
        if name in optional and not same(value, optional[name]):
            found.add(f"{name} given")
    if case.raises is not None:
        found.add("raises")
    return frozenset(found)


FREQUENCIES = "frequencies of many draws"  # declared where the output counts random draws (a 0 is chance)


def is_seed(name: str) -> bool:
    """Input ``name`` is a seed: its value picks random numbers and measures nothing, so no value
    of it is a kind of input, nor a size a function could have written in."""
    return "seed" in name


PATTERNS = (" not consecutive", " rows peak apart")  # the suffixes of the kinds ``_patterns`` finds


def _patterns(name: str, value: np.ndarray) -> set[str]:
    """Kinds a shortcut could pass without: integers that are not one run ``a, a + 1, ...`` (a
    function that rebuilds positions from the first one), rows whose largest entries sit in
    different columns (one that takes the first row's for all)."""
    found = set()
    if value.dtype.kind in "iu" and value.ndim == 1 and value.size > 1 and np.any(np.diff(value) != 1):
        found.add(f"{name} not consecutive")
    if value.dtype.kind == "f" and value.ndim >= 2 and value.shape[-1] > 1 and value.size:
        rows = value.reshape(-1, value.shape[-1])
        if (
            len(rows) > 1
            and np.all(np.isfinite(rows).any(axis=-1))
            and len(set(np.argmax(rows, axis=-1))) > 1
        ):
            found.add(f"{name} rows peak apart")
    return found


def words(kind: str) -> str:
    """A derived kind as a student reads it (``x.ndim=3``: "`x` with 3 axes"); a declared one as
    it is."""
    name, _, rest = kind.partition(".ndim=")
    if rest:
        return f"`{name}` with {rest} axes"
    for suffix, text in (
        (" given", "given"),
        (" empty", "empty"),
        (" has -inf", "holding -inf"),
        (" not consecutive", "not consecutive"),
        (" rows peak apart", "with rows whose largest entries are in different columns"),
    ):
        if kind.endswith(suffix) and " " not in kind[: -len(suffix)]:
            return f"`{kind[: -len(suffix)]}` {text}"
    name, equals, value = kind.partition("=")
    if equals and " " not in name:
        return f"`{name}` = {value}"
    return kind


def describe(inputs: dict, about: str = "") -> str:
    """What a student may be told about a hidden case: ``about``, then its inputs' sizes."""
    parts = []
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            dtype = f" {value.dtype}" if value.dtype.kind == "f" else ""
            parts.append(f"{name} {tuple(value.shape)}{dtype}")
        elif isinstance(value, str):
            parts.append(f"{name} of {len(value)} characters")
        elif value is None or _number(value):
            parts.append(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}")
        elif isinstance(value, np.dtype):
            parts.append(f"{name} = {value}")
        elif isinstance(value, dict):
            dtypes = {
                str(v.dtype) for v in leaves(value) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
            }
            if len(dtypes) == 1:
                parts.append(f"{name} {dtypes.pop()}")
    return "; ".join(p for p in (about, ", ".join(parts)) if p)


def leaves(value, objects: bool = True) -> Iterator:
    """Every value inside dicts, lists, tuples and (with ``objects``) plain objects' attributes."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v, objects)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v, objects)
    elif objects and hasattr(value, "__dict__") and not isinstance(value, type | np.random.Generator):
        for v in vars(value).values():
            yield from leaves(v, objects)
    else:
        yield value


def defaults(fn: Callable) -> dict:
    """The optional parameters of ``fn`` and their defaults."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def same(value, default) -> bool:
    """``value`` is ``default`` (a number equal to it, or both ``None``)."""
    if value is None or default is None:
        return value is default
    if _number(value) and _number(default):
        return value == default
    return False
