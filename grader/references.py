"""Reference outputs: stored for the visible cases, computed live for the hidden ones.

The visible cases are fixed, so their outputs are made once from ``lib`` and stored in
``references/visible/<assignment>/<exercise>.safetensors``: a student's notebook checks against
them without ``lib`` computing what it grades. The hidden cases are drawn anew at every grading
(``Exercise.cases(secret)``), so their references are computed live by ``lib`` in the grading
process, outside the sandbox, and only on demand (``Live``): a known mistake's output, a station
or a variant's output (``grader.variants``) is computed only when a student's output is wrong.
Concept checks have no outputs: their keys are private (``grader.keys``). Keys are
``<case>::expected``, ``<case>::mistake::<name>``, ``<case>::station::<name>``,
``<case>~<variant>::expected`` and, for a case on which the function must raise,
``<case>::raises`` (the errors it expects). ``SHA256SUMS`` lists every stored file's checksum.

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

from . import exercises, keys, variants
from .exercise import ULPS, Case, Exercise

ROOT = Path(__file__).parent / "references"
SUMS = ROOT / "SHA256SUMS"


def path(exercise_id: str) -> Path:
    return ROOT / "visible" / f"{exercise_id}.safetensors"


def load(exercise_id: str) -> dict[str, np.ndarray]:
    """The stored arrays of one exercise's visible cases; ``{}`` if there are none."""
    file = path(exercise_id)
    return load_file(file) if file.is_file() else {}


def compute(exercise: Exercise, cases: list[Case]) -> dict[str, np.ndarray]:
    """Run the reference, the mistakes, the stations and the variants on ``cases``, all at once."""
    if exercise.kind == "choice":
        return {}
    out = {}
    for case in cases:
        table = Live(exercise, [case])
        out.update({key: table[key] for key in table if key in table})
    return out


class Live(Mapping):
    """What ``compare.diagnose`` needs for ``cases``, each entry computed by ``lib`` the first time
    it is asked for: the expected output, the known mistakes' outputs, the stations and the
    variants' expected outputs (an entry that cannot be computed is absent)."""

    def __init__(self, exercise: Exercise, cases: list[Case]):
        self.exercise = exercise
        self.cases = {case.name: case for case in cases}
        self.mistakes = {mistake.name: mistake for mistake in exercise.mistakes}
        self.variants: dict[str, dict[str, variants.Variant]] = {}
        self.stations: dict[str, dict] = {}
        self.computed: dict[str, np.ndarray | None] = {}

    def _variants_of(self, case: Case) -> dict[str, variants.Variant]:
        if case.name not in self.variants:
            self.variants[case.name] = {v.name: v for v in variants.of(self.exercise, case)}
        return self.variants[case.name]

    def _stations_of(self, case: Case) -> dict:
        if case.name not in self.stations:
            found = {}
            if self.exercise.stations is not None and case.raises is None:
                found = {k: np.asarray(v) for k, v in self.exercise.stations(_copy(case.inputs)).items()}
            self.stations[case.name] = found
        return self.stations[case.name]

    def _compute(self, key: str) -> np.ndarray | None:
        name, _, what = key.partition("::")
        kind, _, detail = what.partition("::")
        case = self.cases.get(variants.case_of(name))
        if case is None:
            return None
        if name != case.name:
            variant = self._variants_of(case).get(name)
            return (
                None
                if variant is None or kind != "expected" or detail or variant.what in variants.NO_REFERENCE
                else _output(self.exercise.reference, variant.inputs)
            )
        if kind == "expected" and not detail:
            return (
                None if case.raises is not None else as_stored(self.exercise.reference(**_copy(case.inputs)))
            )
        if kind == "raises" and not detail:
            return None if case.raises is None else as_stored(" ".join(case.raises.errors))
        if kind == "mistake" and detail in self.mistakes:
            return _signature(self.mistakes[detail], case)
        if kind == "station" and detail:
            return self._stations_of(case).get(detail)
        return None

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.computed:
            self.computed[key] = self._compute(key)
        if self.computed[key] is None:
            raise KeyError(key)  # e.g. a mistake that cannot even run on this input leaves no signature
        return self.computed[key]

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self):
        for case in self.cases.values():
            yield f"{case.name}::raises" if case.raises is not None else f"{case.name}::expected"
            yield from (f"{case.name}::mistake::{name}" for name in self.mistakes)
            yield from (f"{case.name}::station::{name}" for name in self._stations_of(case))
            yield from (f"{name}::expected" for name in self._variants_of(case))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _output(reference, inputs: dict) -> np.ndarray | None:
    """The reference's output on ``inputs``, or ``None`` where it refuses them."""
    try:
        with np.errstate(all="ignore"):
            out = as_stored(reference(**_copy(inputs)))
    except Exception:
        return None
    return None if out.dtype == object else out


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

    def __contains__(self, key) -> bool:
        return key in self.stored or key in self.live

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
        written.append(file)
        if file.exists() and _all_same(arrays, load(exercise_id)):
            continue  # kept as it is: another CPU's rounding is not a change (``_same``)
        file.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"kind": exercise.kind}
        save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(file), metadata)
        file.chmod(0o644)  # safetensors writes 0600; the sandboxed kernels read these as another user
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


def _all_same(arrays: dict, stored: dict) -> bool:
    return arrays.keys() == stored.keys() and all(_same(arrays[k], stored[k]) for k in arrays)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, floats up to rounding: a few units in the last place of the largest entry, as the
    exercises compare (``ULPS``). Another CPU's BLAS kernels or SIMD ``exp`` round differently
    (float32 products in the thousands, recomputed on a machine with AVX-512, were 6 ulps off)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        finite = np.abs(b[np.isfinite(b)])
        largest = float(finite.max()) if finite.size else 0.0
        atol = 1e-6 + ULPS * float(np.finfo(b.dtype).eps) * largest
        return bool(np.allclose(a, b, rtol=1e-6, atol=atol, equal_nan=True))
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
    print(f"{len(written)} reference files under {ROOT} are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
