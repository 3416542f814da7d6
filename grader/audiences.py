"""Text for one audience only. A chapter's Markdown speaks to two: a class, whose students submit
their notebooks to a grader (and validate them first), and a reader on their own, who submits
nothing and reads the book's folded solutions and answers. The parts for one of them stand
between two marker lines, HTML comments that a notebook does not show::

    <!-- class only -->
    - Before you submit, run `nbgrader validate ...`
    <!-- end class only -->
    <!-- reader only -->
    - In the web book, the check's place shows what a correct function returns ...
    <!-- end reader only -->

The reader edition of the book and the reader's notebooks (``reader/``, from ``grader release``)
keep the reader's parts; the class and instructor editions and the student notebooks
(``chapters/``) keep the class's. The markers themselves are always dropped.
"""

import re

AUDIENCES = ("class", "reader")
MARKER = re.compile(r"\s*<!-- (?P<end>end )?(?P<who>\w+) only -->\s*")


class MarkerError(ValueError):
    pass


def for_audience(text: str, audience: str) -> str:
    """``text`` as ``audience`` reads it: the other audience's parts and every marker line left out."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}: one of {', '.join(AUDIENCES)}")
    kept, inside = [], None
    for line in text.splitlines(keepends=True):
        found = MARKER.fullmatch(line)
        if not found:
            if inside in (None, audience):
                kept.append(line)
            continue
        who = found["who"]
        if who not in AUDIENCES:
            raise MarkerError(f"{line.strip()!r}: the audiences are {', '.join(AUDIENCES)}")
        if found["end"] and inside != who:
            raise MarkerError(f"{line.strip()!r} closes no <!-- {who} only --> part")
        if not found["end"] and inside is not None:
            raise MarkerError(f"{line.strip()!r} inside a <!-- {inside} only --> part")
        inside = None if found["end"] else who
    if inside is not None:
        raise MarkerError(f"<!-- {inside} only --> is never closed")
    shown = "".join(kept)
    return shown if text.endswith("\n") else shown.rstrip("\n")  # a cell's source ends as it did
