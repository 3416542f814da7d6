"""Variants of a case: its inputs with one thing changed, to explain a wrong answer.

A variant is data derived from a case, the same wherever it is made: the notebook's check calls
the student's function on it directly, the grader asks the scorer for it (``grader.followup``),
and the reference of a variant is stored with its visible case (``grader.references``) or
computed live by ``lib`` for a hidden one. ``grader.diagnosis`` reads the answers:

- ``changed:<unit>``: one argument, or one group of weights (``params['ln_2']``), changed (an
  optional argument given a value of its own: set back to its default). If the student's output
  stays the same while the reference's changes, the function ignores it;
- ``one-sequence``: the first sequence of a batch without its batch axes (the axes that the
  exercise's visible cases show to be optional);
- ``float32`` / ``float64``: every float array in the other precision;
- ``smaller``: the large float arguments scaled down to at most ``SMALL`` in size;
- ``reversed``: every array argument of the same length along one axis (-1, -2 or -3) reversed
  along it. It needs no reference: if the student's output on it is the case's own expected
  output, the function reverses that axis itself (heads, positions in another order);
- ``reordered``: with ``n_head`` among the arguments, the rows of attention's output projection
  (``params['c_proj']['w']``, ``params['attn']['c_proj']['w']``) permuted by head, in a few cheap
  orders (reversed, ``ORDERS``: rolled by one either way, even heads first, the inverse of that;
  at most 5 variants a case). It needs no reference either: if the student's output on it is the
  case's own, the function merges the heads in that order before the projection;
- ``pushed:<unit>``: a number argument (an int, a float) moved far, towards one end of its range
  (an int to 1, a float a thousand times smaller): where the ``changed`` variant moves it too
  little for a wrong function to show it (a top_k that another filter made no-op), this one
  tells a function that uses the argument from one that ignores it. Its reference is computed
  live, where it is needed (``grader.diagnosis``);
- ``zeroed:<name>``: a stabiliser (``eps``, ``STABILISERS``) set to 0: a function right there and
  wrong on the case uses it otherwise than the reference (outside the root, squared). Its
  reference is computed live;
- ``raised:<name>``: a positive float argument moved towards the other end (halfway to 1 for a
  fraction, a thousand times larger otherwise): two computations that agree on the case (a
  listed mistake and the student's, filters in two orders) are told apart there; its reference
  is computed live too;
- ``shifted:<name>``: a float array argument with a constant of each row's own added along its
  last axis, where the reference's output stays the same (a softmax or a log-softmax of it is
  unchanged). It needs no reference: a function whose output moves uses the raw values where
  the reference uses them normalised;
- ``normalised:<how>:<name>``: with each ``shifted`` argument, the same argument with each row
  normalised (a log-softmax, a softmax, its mean subtracted). It needs no reference: a function
  whose output on it is the case's reference is missing that step.

A variant's name is ``<case>~<what>``. Changes are fixed by the case (a generator seeded from the
case's and the unit's names), never drawn anew.
"""

import copy
import dataclasses
import hashlib
from collections.abc import Iterator

import numpy as np

from . import kinds

SEPARATOR = "~"
SMALL = 8.0  # values up to this size are "small": exp(8) and its sums are far from overflow
MAX_UNITS = 12


@dataclasses.dataclass(frozen=True)
class Variant:
    """``what`` is ``"changed"``, ``"one-sequence"``, ``"float32"``, ``"float64"`` or
    ``"smaller"``; ``unit`` is the changed argument as the student writes it."""

    name: str
    what: str
    inputs: dict
    unit: str = ""


def of(exercise, case) -> list[Variant]:
    """Every variant of ``case`` (a must-raise case has none)."""
    if case.raises is not None or exercise.kind == "choice":
        return []
    defaults = kinds.defaults(exercise.reference)
    found = [
        _changed(case, path, label, defaults)
        for path, label in units(case.inputs, arrays_only=exercise.runner is not None, optional=set(defaults))
    ]
    one = one_sequence(exercise, case)
    if one is not None:
        found.append(Variant(f"{case.name}{SEPARATOR}one-sequence", "one-sequence", one))
    other = other_dtype(case.inputs)
    if other is not None:
        dtype, inputs = other
        found.append(Variant(f"{case.name}{SEPARATOR}{dtype}", dtype, inputs))
    smaller = scaled_down(case.inputs)
    if smaller is not None:
        found.append(Variant(f"{case.name}{SEPARATOR}smaller", "smaller", smaller))
    found += reversed_along(case)
    found += reordered(case)
    found += pushed(case)
    found += raised(case)
    found += zeroed(case, defaults)
    found += shifted(exercise, case)
    return [v for v in found if v is not None]


NO_REFERENCE = (
    "reversed",
    "reordered",
    "pushed",
    "raised",
    "zeroed",
    "shifted",
)  # variants whose reference is not stored


def pushed(case) -> list[Variant]:
    """Each int or float argument moved towards one end of its range: an int to 1 (3 if it is
    1 or 2), a nonzero float a thousand times smaller."""
    found = []
    for name, value in case.inputs.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            continue
        if isinstance(value, int | np.integer):
            moved = type(value)(1 if value > 2 else 3)
        elif value:
            moved = type(value)(value * 1e-3)
        else:
            continue
        found.append(
            Variant(f"{case.name}{SEPARATOR}pushed:{name}", "pushed", {**case.inputs, name: moved}, name)
        )
    return found[:MAX_UNITS]


def raised(case) -> list[Variant]:
    """Each positive float argument moved towards the other end of its range: halfway to 1 for a
    fraction (a p), a thousand times larger otherwise (a temperature). Two ways of computing that
    agree on the case (filters in two orders) often part there."""
    found = []
    for name, value in case.inputs.items():
        if isinstance(value, bool) or not isinstance(value, float | np.floating) or not value > 0:
            continue
        moved = type(value)((1 + value) / 2 if value < 1 else value * 1e3)
        found.append(
            Variant(f"{case.name}{SEPARATOR}raised:{name}", "raised", {**case.inputs, name: moved}, name)
        )
    return found[:MAX_UNITS]


STABILISERS = ("eps",)  # arguments only added to keep a division finite: the output at 0 is defined


def zeroed(case, defaults: dict) -> list[Variant]:
    """Each positive stabiliser (``STABILISERS``), given or left at its default, set to 0: where it
    goes no longer matters there."""
    given = {**defaults, **case.inputs}
    return [
        Variant(
            f"{case.name}{SEPARATOR}zeroed:{name}",
            "zeroed",
            {**case.inputs, name: type(given[name])(0)},
            name,
        )
        for name in STABILISERS
        if isinstance(given.get(name), float | np.floating) and given[name] > 0
    ]


MAX_SHIFTED = 2


def shifted(exercise, case) -> list[Variant]:
    """Each float array argument (at most ``MAX_SHIFTED``) with a constant of each row's own added
    along its last axis, where the reference's output on it is the case's."""
    found = []
    try:
        expected = np.asarray(exercise.reference(**copy.deepcopy(case.inputs)))
    except Exception:  # the reference refuses the case: nothing to compare with
        return []
    for name, value in case.inputs.items():
        if len(found) >= MAX_SHIFTED:
            break
        if (
            not isinstance(value, np.ndarray)
            or value.dtype.kind != "f"
            or value.ndim < 1
            or value.shape[-1] < 2
        ):
            continue
        if not value.size or not np.isfinite(value).all():  # an empty cache: nothing to shift
            continue
        g = np.random.default_rng(
            int.from_bytes(hashlib.sha256(f"{case.name}/shift/{name}".encode()).digest()[:8], "big")
        )
        spread = float(value.std()) or 1.0
        moved = (value + 3 * spread * g.standard_normal(value.shape[:-1] + (1,))).astype(value.dtype)
        inputs = {**case.inputs, name: moved}
        try:
            with np.errstate(all="ignore"):
                there = np.asarray(exercise.reference(**copy.deepcopy(inputs)))
        except Exception:  # the reference refuses it
            continue
        if (
            there.shape != expected.shape
            or there.dtype.kind not in "biuf"
            or not np.allclose(there, expected, rtol=1e-4, atol=1e-5, equal_nan=True)
        ):
            continue
        found.append(Variant(f"{case.name}{SEPARATOR}shifted:{name}", "shifted", inputs, name))
        found += normalised(case, name, value)
    return found


# Ways to normalise each row of an input that a row's own constant does not change, by name.
NORMALISATIONS = {
    "log-softmax": lambda x: (
        x
        - x.max(axis=-1, keepdims=True)
        - np.log(np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True))
    ),
    "softmax": lambda x: (
        np.exp(x - x.max(axis=-1, keepdims=True))
        / np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)
    ),
    "mean subtracted": lambda x: x - x.mean(axis=-1, keepdims=True),
}


def normalised(case, name: str, value: np.ndarray) -> list[Variant]:
    """The argument ``name`` with each row normalised (``NORMALISATIONS``), where the reference
    does not see a row's own constant (``shifted``): a function that gives the reference's output
    on one of them is missing that step."""
    found = []
    for how, f in NORMALISATIONS.items():
        with np.errstate(all="ignore"):
            moved = f(value.astype(np.float64)).astype(value.dtype)
        found.append(
            Variant(
                f"{case.name}{SEPARATOR}normalised:{how.replace(' ', '-')}:{name}",
                "normalised",
                {**case.inputs, name: moved},
                f"{how}: {name}",
            )
        )
    return found


def reversed_along(case) -> list[Variant]:
    """For axes -1, -2 and -3: the case with every array argument as long along that axis as the
    first one that has it (and at least 2) reversed along it; ``unit`` names those arguments."""
    arrays = {n: v for n, v in case.inputs.items() if isinstance(v, np.ndarray) and v.ndim >= 1}
    found = []
    for axis in (-1, -2, -3):
        have = [v.shape[axis] for v in arrays.values() if v.ndim >= -axis]
        if not have or have[0] < 2:
            continue
        flipped = {n: v for n, v in arrays.items() if v.ndim >= -axis and v.shape[axis] == have[0]}
        inputs = {**case.inputs, **{n: np.flip(v, axis).copy() for n, v in flipped.items()}}
        unit = f"{axis}: " + ", ".join(f"`{n}`" for n in flipped)
        found.append(Variant(f"{case.name}{SEPARATOR}reversed{axis}", "reversed", inputs, unit))
    return found


# A few orders of n heads a student may take them in by mistake (n >= 3; at 2, each is the
# reversal or none), as what to call the order and the permutation of range(n).
ORDERS = (
    ("rolled by one", lambda n: np.roll(np.arange(n), 1)),
    ("rolled back by one", lambda n: np.roll(np.arange(n), -1)),
    ("even heads first, then odd ones", lambda n: np.r_[np.arange(0, n, 2), np.arange(1, n, 2)]),
    (
        "interleaved (first half, second half)",
        lambda n: np.argsort(np.r_[np.arange(0, n, 2), np.arange(1, n, 2)]),
    ),
)


def _orders(n: int) -> list[tuple[str, np.ndarray]]:
    """The reversal and ``ORDERS`` of ``n`` heads, each once, none the identity."""
    found, seen = [], {tuple(range(n))}
    for label, order in (("reversed", lambda n: np.arange(n)[::-1]), *ORDERS):
        perm = order(n)
        if tuple(perm) not in seen:
            seen.add(tuple(perm))
            found.append((label, perm))
    return found


def reordered(case) -> list[Variant]:
    """The case with the rows of attention's output projection permuted by head (see
    ``ORDERS``), when ``n_head`` is an argument. ``unit`` is ``"<order>: <label>: <where>"``,
    ``<order>`` the heads' order (comma-separated) in which a function that is right on the
    variant merges them."""
    found = []
    n_head = case.inputs.get("n_head")
    if isinstance(n_head, int | np.integer) and not isinstance(n_head, bool) and n_head >= 2:
        for path in _projections(case.inputs):
            w = _at(case.inputs, path)
            if not isinstance(w, np.ndarray) or w.ndim != 2 or w.shape[0] % n_head:
                continue
            label_path = path[0] + "".join(f"[{k!r}]" for k in path[1:])
            for i, (label, perm) in enumerate(_orders(int(n_head))):
                moved = w.reshape(n_head, -1, w.shape[1])[perm].reshape(w.shape)
                inputs = _replaced(case.inputs, path, moved)
                unit = f"{','.join(map(str, perm))}: {label}: `{label_path}`"
                found.append(Variant(f"{case.name}{SEPARATOR}reordered-w{i}", "reordered", inputs, unit))
            break
    return found


def _projections(inputs: dict) -> list[tuple]:
    """Paths to the output projection's weights of attention among the arguments."""
    found = []
    for name, value in inputs.items():
        if not isinstance(value, dict):
            continue
        for parent in (value, value.get("attn")):
            if isinstance(parent, dict) and "c_attn" in parent and isinstance(parent.get("c_proj"), dict):
                found.append((name, *(() if parent is value else ("attn",)), "c_proj", "w"))
    return found


def _at(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _replaced(tree, path, value):
    """``tree`` with the leaf at ``path`` replaced (the dicts along the path copied, nothing else)."""
    if not path:
        return value
    return {**tree, path[0]: _replaced(tree[path[0]], path[1:], value)}


def named(exercise, case, name: str) -> Variant | None:
    """The variant of ``case`` called ``name``, if there is one."""
    return next((v for v in of(exercise, case) if v.name == name), None)


def case_of(name: str) -> str:
    """The case a variant's name belongs to (a case's own name is its own)."""
    return name.partition(SEPARATOR)[0]


# ---- one argument changed ----------------------------------------------------------------------


def units(inputs: dict, arrays_only: bool = False, optional=frozenset()) -> list[tuple[tuple, str]]:
    """The parts of the inputs that can be changed one at a time, as (path, label): every
    argument (an ``optional`` one even when it is ``None``), except that a dict of dicts is split
    into its groups (``params['ln_2']``)."""
    found = []
    for name, value in inputs.items():
        if arrays_only and not isinstance(value, np.ndarray):
            continue
        found += [((name,), name)] if name in optional else _units_in(value, (name,), name)
    return found[:MAX_UNITS]


def _units_in(value, path: tuple, label: str) -> list[tuple[tuple, str]]:
    if isinstance(value, dict) and value and any(isinstance(v, dict | list) for v in value.values()):
        out = []
        for key, inner in value.items():
            out += _units_in(inner, (*path, key), f"{label}[{key!r}]")
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = []
        for i, inner in enumerate(value):
            out += _units_in(inner, (*path, i), f"{label}[{i}]")
        return out
    return [(path, label)] if _changeable(value) else []


def _changeable(value) -> bool:
    if isinstance(value, np.random.Generator):  # another seed: a sampler that ignores it stays put
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.size > 0
    if isinstance(value, dict):
        return bool(value) and all(isinstance(v, np.ndarray | int | str) for v in value.values())
    return isinstance(value, int | float | np.dtype) and not isinstance(value, bool)


def _changed(case, path: tuple, label: str, defaults: dict) -> Variant | None:
    """The case with one unit changed: an optional argument given a value of its own goes back to
    its default (so the change is the one that matters); anything else is changed a little."""
    inputs = dict(case.inputs)
    name = path[0]
    if name in defaults and len(path) == 1 and not kinds.same(inputs[name], defaults[name]):
        inputs[name] = defaults[name]
    else:
        if inputs[name] is None or not (_changeable(inputs[name]) or isinstance(inputs[name], dict | list)):
            return None
        g = np.random.default_rng(
            int.from_bytes(hashlib.sha256(f"{case.name}/{label}".encode()).digest()[:8], "big")
        )
        inputs[name] = _replace(case.inputs[name], path[1:], g)
    return Variant(f"{case.name}{SEPARATOR}changed:{label}", "changed", inputs, label)


def _replace(value, path: tuple, g):
    """``value`` with the part at ``path`` changed (containers copied on the way down)."""
    if path:
        container = dict(value) if isinstance(value, dict) else list(value)
        container[path[0]] = _replace(value[path[0]], path[1:], g)
        return container
    return _change(value, g)


def _change(value, g):
    if isinstance(value, np.random.Generator):
        return np.random.default_rng(int(g.integers(2**63)))
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            finite = np.isfinite(value)
            spread = float(value[finite].std()) if finite.any() else 0.0
            noise = (0.5 * (spread or 1.0) * g.standard_normal(value.shape)).astype(value.dtype)
            return np.where(finite, value + noise, value)
        rolled = np.roll(value, 1, axis=-1)
        return rolled if not np.array_equal(rolled, value) else value + 1
    if isinstance(value, dict):
        if all(isinstance(v, np.ndarray) for v in value.values()):
            return {k: _change(v, g) for k, v in value.items()}
        keys = list(value)
        return dict(zip(keys, [value[k] for k in keys[1:] + keys[:1]], strict=True))
    if isinstance(value, np.dtype):
        return np.dtype({2: "float32", 4: "float64"}.get(value.itemsize, "float16"))
    if isinstance(value, float):
        return 0.5 if value < 0.1 else value / 2 if value <= 1 else 2 * value
    return value - 1 if value > 1 else value + 1  # 1 head still divides any width; k = 1 is still a k


# ---- without the batch axes ---------------------------------------------------------------------


def batch_axes(exercise) -> dict[str, int]:
    """The arrays whose leading axes are optional, with their number of axes without them: the
    fewest a visible case gives them, for the arrays whose number of axes varies among the
    visible cases."""
    cached = _BATCH.get(id(exercise))
    if cached is None or cached[0] is not exercise:
        ndims: dict[str, set[int]] = {}
        for case in exercise.visible():
            for name, value in case.inputs.items():
                if isinstance(value, np.ndarray):
                    ndims.setdefault(name, set()).add(value.ndim)
        cached = (exercise, {name: min(found) for name, found in ndims.items() if len(found) > 1})
        _BATCH[id(exercise)] = cached
    return cached[1]


_BATCH: dict[int, tuple] = {}


def one_sequence(exercise, case) -> dict | None:
    """The case's first sequence without its batch axes, if it has any."""
    core = batch_axes(exercise)
    extra = {name: case.inputs[name].ndim - n for name, n in core.items() if name in case.inputs}
    if not any(n > 0 for n in extra.values()):
        return None
    inputs = dict(case.inputs)
    for name, n in extra.items():
        if n > 0:
            inputs[name] = case.inputs[name][(0,) * n]
    return inputs


# ---- the other precision, smaller values ---------------------------------------------------------


def other_dtype(inputs: dict) -> tuple[str, dict] | None:
    """The inputs with every float array in the other precision, if they are all of one."""
    dtypes = {v.dtype for v in _arrays(inputs) if v.dtype.kind == "f"}
    if dtypes not in ({np.dtype(np.float32)}, {np.dtype(np.float64)}):
        return None
    target = np.dtype(np.float64 if dtypes == {np.dtype(np.float32)} else np.float32)
    return target.name, _map_arrays(inputs, lambda a: a.astype(target) if a.dtype.kind == "f" else a)


def scaled_down(inputs: dict) -> dict | None:
    """The inputs with each large top-level float array scaled to at most ``SMALL``, if any is."""
    large = {}
    for name, value in inputs.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            finite = value[np.isfinite(value)]
            if finite.size and np.abs(finite).max() > SMALL:
                large[name] = (value * (SMALL / np.abs(finite).max())).astype(value.dtype)
    return {**inputs, **large} if large else None


def _arrays(value) -> Iterator[np.ndarray]:
    return (v for v in kinds.leaves(value, objects=False) if isinstance(v, np.ndarray))


def _map_arrays(value, fn):
    if isinstance(value, np.ndarray):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_arrays(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_arrays(v, fn) for v in value]
    return value
