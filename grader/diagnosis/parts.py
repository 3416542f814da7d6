"""An exercise's parts: the first station (intermediate) that differs, a helper that changes its
argument in place, or a right helper fed something else by the function that calls it."""

import math
from collections.abc import Mapping

import numpy as np

from .core import ATOL, RTOL, Student, _matches, _near, _stations, _Wrong, error_type

ALL_MATCH = "Every station before the output matches: look at how they are combined."


def _upstream(w: _Wrong) -> str | None:
    """For an exercise with parts, when the output shows nothing more: the first station that
    differs, or what the function feeds a right helper (``stations``), as the message itself
    (not only as the line after "values differ")."""
    found = stations(w.exercise, w.case, w.table, w.student)
    return found if found.startswith(("Your `", "First station")) else None


def stations(exercise, case, table: Mapping, student: Student) -> str:
    """For an exercise with parts: the first station where the student's work differs, and why."""
    if not exercise.parts:
        return ""
    known = {name.partition("::station::")[2]: value for name, value in _stations(table, case).items()}
    if not known:
        return ""
    seen = student.watched(case)
    helpers = {part.helper for part in exercise.parts}
    clobbered = next(
        ((e["helper"], e["changed"][0]) for e in seen or [] if e.get("changed") and e["helper"] in helpers),
        None,
    )
    if clobbered:
        helper, name = clobbered
        return (
            f"Your `{helper}` changes its argument `{name}` in place: the array `{exercise.name}` gave it "
            f"is overwritten, and any later use of it (a residual stream?) reads the new values; compute "
            f"into a new array (`{name} = {name} - m`, not `{name} -= m`)"
        )
    used, compared = {}, False
    for part in exercise.parts:
        if part.station not in known:
            continue
        try:
            inputs = part.args(case.inputs, known)
        except (KeyError, IndexError, TypeError):
            continue
        outcome = student.helper(case, part, inputs)
        compared = compared or outcome is not None
        if outcome is not None and outcome.error:
            # As for the function itself (``compare.grade``): on a hidden case, the type only, since
            # a message could carry the case's inputs, or the stations it was given, to the student.
            raised = error_type(outcome.error) if case.hidden else outcome.error
            return f"First station that fails: {part.station} (your `{part.helper}` raised {raised})"
        if outcome is not None and not _matches(exercise, outcome.value, known[part.station]):
            return f"First station that differs from the reference: {part.station} (computed by your `{part.helper}`)"
        fed = [entry["args"] for entry in seen or [] if entry["helper"] == part.helper]
        unused = [i for i in range(len(fed)) if i not in used.setdefault(part.helper, set())]
        needed = {name: value for name, value in inputs.items() if isinstance(value, np.ndarray)}
        if outcome is None or not unused or not needed:
            continue
        alike = next((i for i in unused if _fed_alike(exercise, fed[i], needed)), None)
        used[part.helper].add(unused[0] if alike is None else alike)
        if alike is not None:
            continue
        args = fed[unused[0]]
        for name, value in needed.items():
            given = args.get(name)
            if given is not None and not _matches(exercise, given, value):
                fed_wrong = _fed_wrong(given, value, name, known, case.inputs)
                other = next(
                    (
                        n
                        for n, v in needed.items()
                        if n != name
                        and args.get(n) is not None
                        and _matches(exercise, args[n], value)
                        and _matches(exercise, given, v)
                    ),
                    None,
                )
                if other:
                    fed_wrong += f", and the reverse for its `{other}`: `{name}` and `{other}` are swapped"
                return f"Your `{part.helper}` is right, but `{exercise.name}` feeds it {fed_wrong}"
    if not compared:
        return ""
    return ALL_MATCH


def _fed_wrong(given, value, name: str, known: dict, inputs: dict) -> str:
    """What a helper was fed as its argument ``name`` instead of ``value``, in words: by the
    station or input it equals, where there is one, else as the right vectors split into another
    number of heads (``_heads_resplit``), else by its shape."""
    what, want = _which(given, known, inputs), _which(value, known, inputs)
    if what and what == want:  # near it, not within the tolerance
        return (
            f"{want} slightly off (its `{name}`): near the reference's, not within its tolerance; "
            "something small differs before it (an eps, a constant, float32 where it is float64?)"
        )
    if what and want:
        return f"{what} where it needs {want} (its `{name}`)"
    if what:
        return f"{what} as its `{name}`, which is not what the reference feeds it"
    heads = _heads_resplit(given, value)
    if heads is not None:
        theirs, ours = heads
        said = f"the vectors of {want}" if want else "the right vectors"
        return (
            f"{said} split into {theirs} head{'s' if theirs != 1 else ''} where the reference splits them into {ours} "
            f"(its `{name}`): another number of heads (is `n_head` passed on, or a number written in?)"
        )
    shapes = np.shape(given), np.shape(value)
    same_size = math.prod(shapes[0]) == math.prod(shapes[1])
    differ = (
        f" (shape {shapes[0]}, where the reference's has shape {shapes[1]}"
        + (
            ": as many entries, split into other axes: another number of heads, or a reshape in another order?)"
            if same_size
            else ")"
        )
        if shapes[0] != shapes[1]
        else " (off by the same vector at every position: a bias missing or extra?)"
        if _off_by_one_vector(given, value)
        else ""
    )
    if want:
        return f"something other than {want} as its `{name}`{differ}"
    return f"another `{name}` than the reference feeds it{differ}"


def _heads_resplit(given, value) -> tuple[int, int] | None:
    """``given`` and ``value`` are the same vectors split into heads along axis -3 (heads, T,
    d_head), each into another number of heads: ``(given's heads, value's heads)``."""
    given, value = np.asarray(given), np.asarray(value)
    if given.ndim < 3 or given.ndim != value.ndim or given.shape == value.shape:
        return None
    if given.shape[:-3] != value.shape[:-3] or given.shape[-2] != value.shape[-2] or given.size != value.size:
        return None
    if given.dtype.kind != "f" or value.dtype.kind != "f":
        return None

    def merged(x):
        x = np.moveaxis(x.astype(np.float64), -3, -2)
        return x.reshape(*x.shape[:-2], -1)

    return (given.shape[-3], value.shape[-3]) if _near(merged(given), merged(value)) else None


def _off_by_one_vector(given, value) -> bool:
    """``given`` is ``value`` plus one nonzero vector, the same at every position (a bias)."""
    given, value = np.asarray(given, dtype=np.float64), np.asarray(value, dtype=np.float64)
    if given.ndim < 2 or given.shape != value.shape:
        return False
    rows = (given - value).reshape(-1, given.shape[-1])
    return bool(
        np.all(np.isfinite(rows))
        and np.allclose(rows, rows[0], rtol=RTOL, atol=ATOL)
        and not np.allclose(rows[0], 0, atol=ATOL)
    )


def _fed_alike(exercise, args: dict, needed: dict) -> bool:
    return all(name in args and _matches(exercise, args[name], value) for name, value in needed.items())


def _which(value, known: dict, inputs: dict) -> str | None:
    """The station or input ``value`` equals; an array inside a dict of weights (``params["ln_2"]["g"]``)
    only if it alone does (a gain of ones in every norm names none)."""

    def equal(candidate) -> bool:
        candidate = np.asarray(candidate)
        return candidate.shape == np.shape(value) and _near(
            np.asarray(value, np.float64), candidate.astype(np.float64)
        )

    for name, candidate in list(known.items()) + [
        (n, v) for n, v in inputs.items() if isinstance(v, np.ndarray)
    ]:
        if equal(candidate):
            return name if name in known else f"the input `{name}`"
    nested = [path for path, leaf in _leaves(inputs) if "[" in path and equal(leaf)]
    return f"`{nested[0]}`" if len(nested) == 1 else None


def _leaves(tree, path: str = ""):
    """``(path, array)`` for every array in a dict of dicts, its path as code writes it."""
    for key, value in tree.items():
        here = f'{path}["{key}"]' if path else str(key)
        if isinstance(value, dict):
            yield from _leaves(value, here)
        elif isinstance(value, np.ndarray):
            yield here, value
