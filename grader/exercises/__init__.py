"""One module per chapter: ``chNN`` holds the exercises of assignment ``NN-<slug>``.

Each module defines ``ASSIGNMENT`` (its nbgrader assignment, i.e. its folder name) and
``EXERCISES``, a list of ``Exercise``. Modules are imported on demand, so a notebook's checks load
only their own chapter.
"""

import importlib
import pkgutil
from types import ModuleType

from ..exercise import Exercise


def module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name.startswith("ch"))


def chapter(assignment: str) -> ModuleType:
    """The module of an assignment such as ``"01-embeddings"``."""
    module = importlib.import_module(f"{__name__}.ch{assignment[:2]}")
    if module.ASSIGNMENT != assignment:
        raise KeyError(
            f"unknown assignment {assignment!r} (module ch{assignment[:2]} is {module.ASSIGNMENT!r})"
        )
    return module


def assignment_exercises(assignment: str) -> dict[str, Exercise]:
    """Exercises of one assignment by id ``"<assignment>/<name>"``."""
    return {f"{assignment}/{e.name}": e for e in chapter(assignment).EXERCISES}


def registry() -> dict[str, Exercise]:
    """Every exercise of every chapter by id."""
    found = {}
    for name in module_names():
        module = importlib.import_module(f"{__name__}.{name}")
        found.update(assignment_exercises(module.ASSIGNMENT))
    return found


def get(exercise_id: str) -> Exercise:
    assignment, _, name = exercise_id.partition("/")
    try:
        exercises = assignment_exercises(assignment)
    except ModuleNotFoundError:
        raise KeyError(f"unknown assignment {assignment!r} in exercise id {exercise_id!r}") from None
    if exercise_id not in exercises:
        raise KeyError(f"unknown exercise {exercise_id!r}; {assignment} has {', '.join(sorted(exercises))}")
    return exercises[exercise_id]
