"""The concept checks' keys: their answers and explanations, read from ``grader/private/``.

Everything under ``grader/private/`` stays on the instructor's side: the grading sandboxes mount
only the course's public files, so a student's code can neither import nor read a key. The public
side of a concept check (its name and choices) is declared with ``grader.exercise.choice``.
"""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONCEPTS = Path(__file__).parent / "private" / "concepts.toml"


@dataclass(frozen=True)
class Key:
    answer: str
    explain: str


@cache
def _all() -> dict[str, Key]:
    with open(CONCEPTS, "rb") as f:
        return {exercise_id: Key(**entry) for exercise_id, entry in tomllib.load(f).items()}


def concept(exercise_id: str) -> Key:
    """The key of one concept check, e.g. ``concept("01-embeddings/q_tied")``."""
    keys = _all()
    if exercise_id not in keys:
        raise KeyError(f"no key for the concept check {exercise_id!r} in {CONCEPTS}")
    return keys[exercise_id]


def all_concepts() -> dict[str, Key]:
    return dict(_all())
