"""What an instructor may have meant by a name that matches nothing (a student, an exercise, an
assignment, a notebook or a Canvas column, typed on the command line or in ``course.toml``)."""

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The ``options`` most like ``word`` but for case, best first, as they are spelt."""
    folded = {option.casefold(): option for option in options}
    return [folded[near] for near in difflib.get_close_matches(word.casefold(), folded, n=n, cutoff=cutoff)]


def hint(word: str, options: Iterable[str]) -> str:
    """``"; did you mean X or Y?"`` for the ``options`` closest to ``word``, or ``""``."""
    near = closest(word, options)
    return f"; did you mean {' or '.join(near)}?" if near else ""
