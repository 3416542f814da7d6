"""Reference outputs: stored for the visible cases, computed live for the hidden ones.

The visible cases are fixed, so their outputs are made once from ``lib`` and stored in
``references/visible/<assignment>/<exercise>.safetensors``: a student's notebook checks against
them without ``lib`` computing what it grades. The hidden cases are drawn anew at every grading
(``Exercise.cases(secret)``), so their references are computed live by ``lib`` in the grading
process, outside the sandbox, and only on demand (``live``): a known mistake's output is computed
only when a student's output is wrong. Concept checks have no outputs: their keys are private
(``grader.keys``). Keys are ``<case>::expected``, ``<case>::mistake::<name>`` and
``<case>::station::<name>``. ``SHA256SUMS`` lists every stored file's checksum.

``python -m grader references`` rewrites the stored files; ``--check`` recomputes them in memory
and fails if a stored output differs (beyond float rounding) or a checksum does not match.
"""

import argparse
import copy
import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from . import exercises, keys
from .exercise import Case, Exercise

ROOT = Path(__file__).parent / "references"
SUMS = ROOT / "SHA256SUMS"


def path(exercise_id: str) -> Path:
    return ROOT / "visible" / f"{exercise_id}.safetensors"


def load(exercise_id: str) -> dict[str, np.ndarray]:
    """The stored arrays of one exercise's visible cases; ``{}`` if there are none."""
    file = path(exercise_id)
    return load_file(file) if file.is_file() else {}


def compute(exercise: Exercise, cases: list[Case]) -> dict[str, np.ndarray]:
    """Run the reference, the mistakes and the stations on ``cases``, all of it at once."""
    if exercise.kind == "choice":
        return {}
    out = {}
    for case in cases:
        table = Live(exercise, [case])
        out[f"{case.name}::expected"] = table[f"{case.name}::expected"]
        for mistake in exercise.mistakes:
            signature = table.get(f"{case.name}::mistake::{mistake.name}")
            if signature is not None:
                out[f"{case.name}::mistake::{mistake.name}"] = signature
        if exercise.stations is not None:
            for station, value in exercise.stations(_copy(case.inputs)).items():
                out[f"{case.name}::station::{station}"] = np.asarray(value)
    return out


class Live(Mapping):
    """The expected output and the known mistakes' outputs of ``cases``, each computed by ``lib``
    the first time it is asked for (no stations: grading does not need them)."""

    def __init__(self, exercise: Exercise, cases: list[Case]):
        self.exercise = exercise
        self.cases = {case.name: case for case in cases}
        self.mistakes = {mistake.name: mistake for mistake in exercise.mistakes}
        self.computed: dict[str, np.ndarray | None] = {}

    def _key_parts(self, key: str) -> tuple[Case, str, str] | None:
        case, _, what = key.partition("::")
        kind, _, name = what.partition("::")
        if case not in self.cases or (kind, bool(name)) not in {("expected", False), ("mistake", True)}:
            return None
        if kind == "mistake" and name not in self.mistakes:
            return None
        return self.cases[case], kind, name

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.computed:
            parts = self._key_parts(key)
            if parts is None:
                raise KeyError(key)
            case, kind, name = parts
            if kind == "expected":
                self.computed[key] = as_stored(self.exercise.reference(**_copy(case.inputs)))
            else:
                self.computed[key] = _signature(self.mistakes[name], case)
        if self.computed[key] is None:
            raise KeyError(key)  # a mistake that cannot even run on this input leaves no signature
        return self.computed[key]

    def __iter__(self):
        for case in self.cases:
            yield f"{case}::expected"
            yield from (f"{case}::mistake::{name}" for name in self.mistakes)

    def __len__(self) -> int:
        return len(self.cases) * (1 + len(self.mistakes))


def _signature(mistake, case: Case) -> np.ndarray | None:
    try:
        signature = as_stored(mistake.wrong(**_copy(case.inputs)))
    except Exception:
        return None
    return None if signature.dtype == object else signature


def for_grading(exercise_id: str, exercise: Exercise, cases: list[Case]) -> Mapping:
    """What ``compare.diagnose`` needs for ``cases``: stored for the visible ones, live for the
    hidden ones."""
    stored = load(exercise_id)
    return _Both(stored, Live(exercise, [case for case in cases if case.hidden]))


class _Both(Mapping):
    def __init__(self, stored: dict, live: Live):
        self.stored, self.live = stored, live

    def __getitem__(self, key):
        return self.stored[key] if key in self.stored else self.live[key]

    def __iter__(self):
        yield from self.stored
        yield from self.live

    def __len__(self):
        return len(self.stored) + len(self.live)


def as_stored(value) -> np.ndarray:
    """Arrays as they are; text as its UTF-8 bytes (safetensors stores numbers only)."""
    return np.frombuffer(value.encode("utf-8"), np.uint8) if isinstance(value, str) else np.asarray(value)


def _copy(inputs: dict) -> dict:
    return copy.deepcopy(inputs)


def sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def selected(only: str | None) -> dict:
    """Every exercise, or those of one assignment."""
    return exercises.registry() if only is None else exercises.assignment_exercises(only)


def write_all(only: str | None = None) -> list[Path]:
    """Regenerate the stored files (of one assignment with ``only``) and the checksum list."""
    written = []
    for exercise_id, exercise in sorted(selected(only).items()):
        arrays = compute(exercise, exercise.cases())
        if not arrays:
            continue
        file = path(exercise_id)
        file.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"kind": exercise.kind}
        save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(file), metadata)
        written.append(file)
    scope = "*.safetensors" if only is None else f"*/{only}/*.safetensors"
    for file in set(ROOT.rglob(scope)) - set(written):
        file.unlink()
    every = sorted(ROOT.rglob("*.safetensors"))
    SUMS.write_text("".join(f"{sha256(f)}  {f.relative_to(ROOT)}\n" for f in every))
    return written


def verify_checksums() -> list[str]:
    """Problems with the stored files: a missing file or a checksum that does not match."""
    problems = []
    if not SUMS.is_file():
        return [f"{SUMS} is missing: run `python -m grader references`"]
    listed = {}
    for line in SUMS.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
        file = ROOT / name
        if not file.is_file():
            problems.append(f"{name}: listed in SHA256SUMS but missing")
        elif sha256(file) != digest:
            problems.append(f"{name}: checksum does not match SHA256SUMS (edited or corrupted)")
    for file in ROOT.rglob("*.safetensors"):
        if str(file.relative_to(ROOT)) not in listed:
            problems.append(f"{file.relative_to(ROOT)}: not listed in SHA256SUMS")
    return problems


def differences(only: str | None = None) -> list[str]:
    """Recompute the stored references in memory and list what differs from the files."""
    problems = verify_checksums()
    for exercise_id, exercise in sorted(selected(only).items()):
        if exercise.kind == "choice":
            problems += _key_problems(exercise_id, exercise)
            continue
        arrays, stored = compute(exercise, exercise.cases()), load(exercise_id)
        for key in sorted(set(arrays) | set(stored)):
            if key not in stored or key not in arrays:
                problems.append(
                    f"{exercise_id} {key}: {'not stored' if key not in stored else 'no longer computed'}"
                )
            elif not _same(arrays[key], stored[key]):
                problems.append(f"{exercise_id} {key}: stored output differs from lib's")
    return problems


def _key_problems(exercise_id: str, exercise: Exercise) -> list[str]:
    try:
        key = keys.concept(exercise_id)
    except KeyError as err:
        return [str(err)]
    if key.answer not in exercise.choices:
        return [f"{exercise_id}: the key {key.answer!r} is not among the choices {exercise.choices}"]
    return []


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True))
    return bool(np.array_equal(a, b))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader references", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="recompute and compare; write nothing")
    parser.add_argument("--only", metavar="ASSIGNMENT", help="one assignment, e.g. 02-transformer-block")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.only)
        for line in problems:
            print(line, file=sys.stderr)
        print(f"references: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    written = write_all(args.only)
    print(f"wrote {len(written)} reference files under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
