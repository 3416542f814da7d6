"""nbgrader configuration of the course.

Run nbgrader by hand with ``nbgrader <command> --config grader/nbgrader_config.py`` (with the
virtualenv's ``bin`` first on ``PATH``: creating a gradebook shells out to ``alembic``). The
instructor sources are in ``solutions/``, the student versions in ``chapters/``; everything nbgrader
writes while grading (gradebook, submissions, autograded notebooks, feedback) goes under the
git-ignored ``grading/``. ``python -m grader autograde`` loads this file and adds its own sandbox
and scoring on top.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # noqa: F821 (set by traitlets)
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"
c.CourseDirectory.submitted_directory = os.path.join("grading", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("grading", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("grading", "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(ROOT, "grading", "gradebook.db")
# The jupytext text source of a chapter (solutions/<a>/<slug>.py) is not part of the release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# A test cell the student deleted is put back from the source notebook.
c.OverwriteCells.add_missing_cells = True
# Per-cell limit: an endless loop is interrupted and the remaining cells still run.
c.ExecutePreprocessor.timeout = 20
