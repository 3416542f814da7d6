"""What an instructor may have meant by a name that matches nothing (a student, an exercise, an
assignment typed on the command line or in ``course.toml``)."""

import difflib
from collections.abc import Iterable


def hint(word: str, options: Iterable[str]) -> str:
    """``"; did you mean X or Y?"`` for the ``options`` closest to ``word`` (but for case), or ``""``."""
    folded = {option.casefold(): option for option in options}
    near = difflib.get_close_matches(word.casefold(), folded, n=3)
    return f"; did you mean {' or '.join(folded[n] for n in near)}?" if near else ""
