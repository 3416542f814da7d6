"""A student's IPython syntax as Python, read in the grading process at a bounded cost.

IPython's ``TransformerManager`` rewrites one piece of IPython syntax (a magic, a shell command, a
trailing ``?``) at a time and tokenizes the whole cell again after each, up to 500 times. That is
quick on a notebook's cells, but the grading process (outside every sandbox) reads the student's
cells with it three times (``grader.clean``, ``grader.integrity``, ``grader.program``), and a cell
of 400,000 characters with 499 ``%a`` lines kept it busy until the student's time limit, 400
seconds with ``--cpu 10`` (25 minutes a notebook with the defaults), on every run. Here one
notebook's reading has a ``Budget`` of characters tokenized; past it, the cell reads as invalid
Python (``ValueError``), as a cell still changing after IPython's 500 rewrites does. The course's
chapters tokenize less than 30,000 characters each.

Parsing costs memory too: ``ast`` and ``symtable`` take up to 750 bytes for a character of code
(a tuple of two million names, 4 MB of source, took a grading process to 3 GB). A cell longer than
``MAX_PARSED`` characters is not parsed in the grading process (``parsable``): the scorer runs it
as it is, in its sandbox and within its memory limit, and the analyses that need its names
assume the most (``grader.program`` keeps every course statement for it).
"""

import re

from IPython.core.inputtransformer2 import TRANSFORM_LOOP_LIMIT, TransformerManager

MAX_TOKENIZED = 1_000_000  # characters tokenized for one notebook's cells: a few seconds at most
MAX_PARSED = 100_000  # characters of one cell parsed (the course's longest cell has about 5,000)


def cell_magic(source: str) -> tuple[str | None, str, int]:
    """A cell's magic, as IPython finds it (after the blank lines it skips first): its name (None
    if the cell has none), its body, and the cell's lines before the body. The grader's readers
    (``grader.integrity``, ``grader.program``) must agree with IPython here: a cell with a blank
    line before ``%%capture`` was code to IPython and the scorer, and a string to the scan."""
    lines = source.split("\n")
    blank = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    magic = re.match(r"\s*%%(\w+)", lines[blank]) if blank < len(lines) else None
    if magic is None:
        return None, source, 0
    return magic[1], "\n".join(lines[blank + 1 :]), blank + 1


def parsable(source: str) -> bool:
    """Whether the grading process may parse a cell of ``source`` (``MAX_PARSED``)."""
    return len(source) <= MAX_PARSED


class Budget:
    """The characters that IPython's transformer may still tokenize for one notebook."""

    def __init__(self, characters: int = MAX_TOKENIZED):
        self.left = characters


class _Bounded(TransformerManager):
    def __init__(self, budget: Budget):
        super().__init__()
        self.budget = budget

    def do_token_transforms(self, lines):
        for _ in range(TRANSFORM_LOOP_LIMIT):
            size = max(1, sum(map(len, lines)))
            if size > self.budget.left:
                raise ValueError("too much IPython syntax to read in this notebook")
            self.budget.left -= size
            changed, lines = self.do_one_token_transform(lines)
            if not changed:
                return lines
        raise ValueError(f"IPython syntax still changing after {TRANSFORM_LOOP_LIMIT} rewrites")


def python(source: str, budget: Budget | None = None) -> str:
    """``source`` with its IPython syntax made Python, as IPython runs it; ``budget``: the
    notebook's (a new one if none). Raises ``ValueError`` past the budget, or for a cell that is
    not ``parsable``."""
    if not parsable(source):
        raise ValueError(f"the cell has more than {MAX_PARSED:,} characters, too many to read")
    return _Bounded(budget or Budget()).transform_cell(source)
