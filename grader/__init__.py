"""The course's grading side: exercise definitions, reference outputs, checks and the autograder.

- ``grader.exercise``: what an exercise is (visible cases, hidden cases drawn from a secret, the
  reference, known mistakes, stations, a runner).
- ``grader.exercises``: one module per chapter with its exercises, and what it lends (``LENDS``)
  and grades (``GRADED``) of ``lib``.
- ``grader.references``: the visible cases' outputs, stored; the hidden ones', computed live.
- ``grader.compare``: the comparison and diagnosis, shared by the notebook checks and the grader.
- ``grader.check``: what a notebook calls: ``check``, feedback on the visible cases.
- ``grader.autograde``: ``python -m grader autograde``, nbgrader in parallel, with
  ``grader.scoring`` for the scores.

Where the score comes from. A notebook is executed twice when graded, and only the second run
counts. nbgrader executes it in the kernel sandbox (``grader.sandbox``); those outputs make the
student's feedback page. Then ``grader.scoring`` builds a program from the notebook (the student's
cells, the course statements they use, a probe at each test cell: ``grader.program``) and runs it in
a second, minimal sandboxed process (``grader.harness``: ``python -I -S``, the standard library,
NumPy, and a ``lib`` that lends only what the chapter lets students build on,
``grader.lending``). The probes call the student's functions on the visible cases and on hidden
cases drawn at grading time from a secret kept in the output folder, and stream back only the
student's outputs. The grader compares them, outside, with references that ``lib`` computes
there, and with the concept checks' private keys (``grader.keys``).

Nothing that could give a point away is where student code runs: not the reference of any graded
stage (it is absent from the scorer's ``lib`` by construction), not the references, keys or
solutions (outside the sandbox), not the hidden inputs ahead of time (drawn from a secret at
grading). So forging the transport is harmless: a student's code may print, display or write
anything, in either process, and the only answers that score are those computed by code the
student wrote.
"""
