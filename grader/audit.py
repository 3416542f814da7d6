"""What the scorer's harness tells of code that ran without the integrity scan reading it.

The scan (``grader.integrity``) reads a notebook's cells, but what a program runs cannot be
decided by reading it: lib's implementation kept as text can run through ``exec``, and through
any of the standard library's dozens of routes to it (``timeit``, ``code``, ``pydoc.locate``, a
module written to disk and imported, another interpreter started...). Each of those routes ends
in one of a few operations of the interpreter, and the interpreter raises an audit event for each
(PEP 578): compiling source, loading compiled code, making a code object, replacing a function's
code, starting a program. The harness installs ``Audit`` as an audit hook in each job's process
before the student's first statement (a hook cannot be removed), and it reports each such event,
with the cell or the probe that was running, on the grader's pipe at once
(``grader.scoring.Run.ran``). The grader makes them integrity findings that concern every
exercise of the notebook: the code can define or replace any of them.

What is not reported: compiling the files of the folders whose code is known (the standard
library, NumPy, the lent ``lib``, the harness: ``roots``) when the source is the file's own, the
cells' statements the harness compiles itself (``expect``; a ``%%capture`` or ``%%time`` cell's
body is one of them, ``grader.program``), and the code the standard library generates for a
dataclass or a named tuple (``GENERATORS``).

Like everything in the student's process, the hook's state can be reached by the student's code
(through ``gc``); it raises the price of hiding code from the scan, it does not make it
impossible. The scores never depend on it.
"""

import os
import sys

# Standard-library files that compile code they generate themselves (a dataclass's __init__, a
# named tuple's __new__), from the names they are given.
GENERATORS = ("dataclasses.py", os.path.join("collections", "__init__.py"))
PROGRAMS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen")
IMPORTLIB = "<frozen importlib._bootstrap_external>"
MAX_TOLD = 20  # reports per job, at most


class Audit:
    """The audit hook of one job's process; ``report(**event)`` writes a line to the grader."""

    def __init__(self, report, roots: list[str]):
        self.report = report
        self.roots = tuple(os.path.join(os.path.realpath(root), "") for root in roots)
        self.expected = None  # the syntax tree the harness compiles next
        self.where: dict = {}  # the cell and line, or the probe, that runs
        self.told: set = set()

    def expect(self, tree) -> None:
        """The harness compiles ``tree`` next: one of the cells' statements, as read."""
        self.expected = tree

    def __call__(self, event: str, args: tuple) -> None:
        try:
            reason = self.why(event, args)
        except Exception:  # a hook that raises would stop the operation: never the harness's doing
            return
        key = (reason, tuple(self.where.items()))
        if reason and key not in self.told and len(self.told) < MAX_TOLD:
            self.told.add(key)
            self.report(audit=reason, **self.where)

    def why(self, event: str, args: tuple) -> str | None:
        """What ``event`` did that the scan did not read, in words; None if nothing."""
        if event == "compile":
            return self._compiled(*args[:2])
        if event == "open" and isinstance(args[0], str) and args[0].endswith(".pyc"):
            return None if self._known(args[0]) else f"loads compiled code from {args[0]}"
        if event == "marshal.loads" and _caller().co_filename != IMPORTLIB:
            return "loads code with marshal"
        if event == "code.__new__":
            return "makes a code object (CodeType or code.replace)"
        if event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
            return "replaces a function's __code__"
        if event.startswith(PROGRAMS):
            return f"starts another program ({event})"
        return None

    def _compiled(self, source, filename) -> str | None:
        if not isinstance(source, str | bytes):  # a syntax tree
            if source is self.expected:
                self.expected = None
                return None
            return "compiles a syntax tree built at run time"
        if _caller().co_filename.endswith(GENERATORS):
            return None
        name = os.fsdecode(filename) if isinstance(filename, str | bytes) else "?"
        if not os.path.isfile(name):
            return f"runs code given as text (compiled as {name!r})"
        if self._known(name) and _same(name, source):
            return None  # an import of a file whose code is known
        return f"runs code from {name}, a file the scan did not read"

    def _known(self, path: str) -> bool:
        return os.path.realpath(path).startswith(self.roots)


def _caller():
    """The code of the Python function that made the audited call: the first frame outside this
    module (the audited functions are the interpreter's own, with no frame)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return frame.f_code


def _same(path: str, source) -> bool:
    with open(path, "rb") as f:
        data = f.read()
    return data == (source.encode() if isinstance(source, str) else source)
