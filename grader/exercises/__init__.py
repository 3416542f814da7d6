"""One module per chapter; ``ASSIGNMENT`` is its nbgrader assignment (folder) name."""

import importlib
import pkgutil
from functools import cache

from ..exercise import Exercise


@cache
def registry() -> dict[str, Exercise]:
    """Every exercise by id ``"<assignment>/<name>"``."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for exercise in module.EXERCISES:
            found[f"{module.ASSIGNMENT}/{exercise.name}"] = exercise
    return found


def get(exercise_id: str) -> Exercise:
    exercises = registry()
    if exercise_id not in exercises:
        raise KeyError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(exercises))}")
    return exercises[exercise_id]
