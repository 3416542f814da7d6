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
"""

from IPython.core.inputtransformer2 import TRANSFORM_LOOP_LIMIT, TransformerManager

MAX_TOKENIZED = 1_000_000  # characters tokenized for one notebook's cells: a few seconds at most


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
    notebook's (a new one if none). Raises ``ValueError`` past the budget."""
    return _Bounded(budget or Budget()).transform_cell(source)
