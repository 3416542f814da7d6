"""The course directory as nbgrader sees it: the config file, the assignments and their notebooks."""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import sqlalchemy
from alembic.script import ScriptDirectory
from nbgrader.api import Base
from nbgrader.coursedir import CourseDirectory
from nbgrader.dbutil import ALEMBIC_DIR
from nbgrader.utils import capture_log
from traitlets.config import Config, PyFileConfigLoader

from . import atomic, sandbox

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
CONFIG_FILE = Path(__file__).with_name("nbgrader_config.py")


def public_paths() -> list[Path]:
    """The course's files that students' code may read: ``lib/``, ``chapters/``, and in
    ``grader/`` the Python modules, ``diagnosis/`` and ``exercises/`` (the notebook's check imports
    them) and ``references/visible/``. Each is shown to
    the sandboxes on its own (``grader.sandbox.View.read_only``), so anything added elsewhere
    (``solutions/``, ``grader/private/``, the hidden references) stays private until listed here."""
    grader = ROOT / "grader"
    return [
        ROOT / "lib",
        ROOT / "chapters",
        *sorted(grader.glob("*.py")),
        grader / "diagnosis",
        grader / "exercises",
        grader / "references" / "visible",
    ]


def nbgrader_config(**course_directory) -> Config:
    """``grader/nbgrader_config.py``, with ``CourseDirectory`` settings overridden by keyword.

    Paths may be ``Path`` objects; ``db`` is a path to an SQLite file (becomes ``db_url``).
    """
    config = PyFileConfigLoader(CONFIG_FILE.name, str(CONFIG_FILE.parent)).load_config()
    db = course_directory.pop("db", None)
    if db is not None:
        course_directory["db_url"] = f"sqlite:///{Path(db).resolve()}"
    for name, value in course_directory.items():
        config.CourseDirectory[name] = str(value) if isinstance(value, Path) else value
    return config


def assignments(source: Path = SOLUTIONS) -> list[str]:
    """Assignment names: the folders of ``source`` that hold a notebook or a jupytext source."""
    return sorted(
        folder.name
        for folder in source.iterdir()
        if folder.is_dir() and (any(folder.glob("*.ipynb")) or any(folder.glob("*.py")))
    )


def notebooks(source: Path = SOLUTIONS) -> dict[str, str]:
    """Notebook name (without ``.ipynb``) -> assignment, e.g. ``"embeddings" -> "01-embeddings"``."""
    found = {}
    for assignment in assignments(source):
        folder = source / assignment
        for path in [*folder.glob("*.ipynb"), *folder.glob("*.py")]:
            found[path.stem] = assignment
    return found


def run(
    converter: type, config: Config, log: logging.Logger, assignment: str, student: str = "", **flags
) -> dict:
    """Run an nbgrader converter (``GenerateAssignment``, ``Autograde``) as ``NbGraderAPI`` does,
    without its exchange set-up; returns ``{"success", "log", "error"}``."""
    coursedir = CourseDirectory(config=config, assignment_id=assignment, student_id=student)
    app = converter(coursedir=coursedir, config=config, log=log)
    for name, value in flags.items():
        setattr(app, name, value)
    return capture_log(app)


def quiet_logger(name: str) -> logging.Logger:
    """A logger that keeps nbgrader's messages out of the terminal (``capture_log`` collects them)."""
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def scratch(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder in memory (``/dev/shm``) where there is one. Throwaway gradebooks live
    there: nbgrader commits cell by cell, and on disk each commit waits tens of ms for a sync.

    Its name carries this process's id (``<prefix><pid>-<random>``): a process killed outright
    (SIGKILL, the OOM killer, a Dask worker its nanny killed) cannot remove its folder, and in
    ``/dev/shm`` that is memory held until the machine restarts; each new one removes the folders
    of the same prefix whose process is gone (``reap_scratch``), and so do the folders of
    one-off sandboxes' reports (``sandbox.RUN_REPORTS``)."""
    memory = "/dev/shm"
    where = memory if os.path.isdir(memory) and os.access(memory, os.W_OK) else None
    reap_scratch(prefix, Path(where or tempfile.gettempdir()))
    reap_scratch(sandbox.RUN_REPORTS, Path(tempfile.gettempdir()))
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=where)


def reap_scratch(prefix: str, where: Path) -> list[Path]:
    """Remove this user's folders of ``prefix`` under ``where`` whose process is gone; returns them.

    A sandbox whose report lies in one is ended first (``sandbox.finish_all``): a grader killed
    outright together with its supervisors leaves them running where there is no cgroup. Only
    this user's folders (made private by ``tempfile``) are read: a report names processes to
    kill, and ``/dev/shm`` and ``/tmp`` are anyone's to write in."""
    removed = []
    for folder in where.glob(f"{prefix}*-*"):
        pid = folder.name.removeprefix(prefix).partition("-")[0]
        if not (pid.isdigit() and folder.is_dir() and not folder.is_symlink()):
            continue  # an older grader's (no process id in the name), or not a folder of ours
        info = folder.stat()
        if atomic.running(int(pid)) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            continue  # another run's, or another user's
        sandbox.finish_all(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def new_gradebook(path: Path) -> None:
    """An empty nbgrader gradebook, made as ``nbgrader.api.Gradebook`` makes one but without the
    ``alembic`` subprocess it runs to learn the schema version (seconds per run)."""
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(bind=engine)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        head = ScriptDirectory(ALEMBIC_DIR).get_current_head()
        connection.execute(sqlalchemy.text("INSERT INTO alembic_version VALUES (:head)"), {"head": head})
    engine.dispose()
