"""Sizes and counts the inputs give, and constants a factor is named by (sqrt(2), ln 2, 8): what
the rules about values and scale word a factor with."""

import itertools
import math

import numpy as np

NAMED = {
    -1.0: "-1: the sign is flipped",
    2.0: "2",
    0.5: "1/2",
    math.log(2): "ln 2",
    1 / math.log(2): "1/ln 2: a log base 2?",
    math.e: "e",
    1 / math.e: "1/e",
    8.0: "8: bits for bytes?",
    0.125: "1/8",
}


NAMED.update({math.sqrt(n): f"sqrt({n})" for n in range(2, 1025) if math.isqrt(n) ** 2 != n})


NAMED.update({1 / math.sqrt(n): f"1/sqrt({n})" for n in range(2, 1025) if math.isqrt(n) ** 2 != n})


def _named(c: float) -> str | None:
    return next((name for value, name in NAMED.items() if math.isclose(c, value, rel_tol=1e-4)), None)


def _counts(inputs: dict) -> dict[int, str]:
    """The counts the inputs give, each with where it comes from: an int argument, an array's size
    along an axis, or one less (``"8: `ids`'s axis -1, minus 1"``); the first place names a count
    found in several."""
    found: dict[int, str] = {}
    sizes = [
        (v, f"`{n}`")
        for n, v in inputs.items()
        if isinstance(v, int | np.integer) and not isinstance(v, bool)
    ]
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            sizes += [(n, f"`{name}`'s axis {axis - value.ndim}") for axis, n in enumerate(value.shape)]
    for n, where in sizes:
        found.setdefault(int(n), where)
    for n, where in sizes:
        found.setdefault(int(n) - 1, f"{where}, minus 1")
    return {n: where for n, where in found.items() if 2 <= n <= MAX_COUNT}


MAX_COUNT = 100_000  # larger ints are seeds or budgets, not counts of terms


MIN_FACTOR = 4  # on an array, a factor of 2 or 3 is as often a constant as a count


def _counted(c: float, counts: dict, least: int = 2) -> str | None:
    """``c`` as a ratio of counts (each at least ``least``), in words that follow "your output
    is the reference": times n (a sum where the reference averages), divided by n, or divided by
    a count one off from the reference's (n where n - 1 belongs)."""
    for n, where in counts.items():
        if n < least:
            continue
        if math.isclose(c, n, rel_tol=1e-5):
            return (
                f"times {n} ({n}: {where}): a sum where the reference averages? divide by the number "
                "of terms you add up"
            )
        if math.isclose(c, 1 / n, rel_tol=1e-5):
            return (
                f"divided by {n} ({n}: {where}): an average where the reference sums, or one division "
                "too many?"
            )
    for (p, over), (q, under) in itertools.permutations(counts.items(), 2):
        if abs(p - q) == 1 and min(p, q) >= least and math.isclose(c, p / q, rel_tol=1e-5):
            return (
                f"times {p}/{q}: you divide by {q} ({under}) where the reference divides by {p} "
                f"({over}); divide by the number of terms you add up"
            )
    return None


def _sizes(inputs: dict) -> dict[str, int]:
    """The sizes among the inputs, by name: int arguments, and the int attributes of an object
    argument (a config's ``d_model``, ``d_head``...)."""
    found = {}
    for name, value in inputs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | np.integer):
            found[f"`{name}`"] = int(value)
        elif hasattr(value, "__dataclass_fields__"):
            for attr in dir(value):
                if attr.startswith("_"):
                    continue
                try:
                    x = getattr(value, attr)
                except Exception:  # a property that refuses this config
                    continue
                if isinstance(x, int | np.integer) and not isinstance(x, bool) and x > 0:
                    found[f"`{name}.{attr}`"] = int(x)
    return found


def _size_places(inputs: dict) -> dict[str, int]:
    """Every size the inputs give, by where it comes from: an int argument, an array's axis, the
    sum of two axes of different arrays (the keys' length: cache and new ones)."""
    found = {
        f"`{n}`": int(v)
        for n, v in inputs.items()
        if isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 < v <= MAX_COUNT
    }
    axes = [
        (f"`{name}`'s axis {axis - v.ndim}", name, int(v.shape[axis]))
        for name, v in inputs.items()
        if isinstance(v, np.ndarray)
        for axis in range(v.ndim)
    ]
    found.update({where: n for where, _, n in axes if n > 0})
    for (x, a, p), (y, b, q) in itertools.combinations(axes, 2):
        if a != b and x.rpartition(" ")[2] == y.rpartition(" ")[2] and p + q > 0:  # along the same axis
            found.setdefault(f"{x} + {y}", p + q)
    return found
