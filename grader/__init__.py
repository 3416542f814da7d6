"""The course's grading side: exercise definitions, reference outputs, checks and the autograder.

- ``grader.exercise``: what an exercise is (cases, the reference, known mistakes, stations).
- ``grader.exercises``: one module per chapter with its exercises.
- ``grader.references``: stored reference outputs, made from ``lib`` by ``python -m grader references``.
- ``grader.compare``: the comparison and diagnosis, shared by the notebook checks and the autograder.
- ``grader.check``: what a notebook calls: ``check`` (visible feedback) and ``record`` (answers
  for the autograder, compared outside the student's kernel).
"""
