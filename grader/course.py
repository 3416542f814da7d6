"""The course directory as nbgrader sees it: the config file, the assignments and their notebooks."""

from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
CHAPTERS = ROOT / "chapters"
CONFIG_FILE = Path(__file__).with_name("nbgrader_config.py")


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
