"""Stored reference outputs: made once from ``lib``, then only read.

Layout: ``references/visible/<assignment>/<exercise>.safetensors`` holds the outputs for the cases a
student's notebook checks (the kernel reads them); ``references/hidden/...`` holds everything the
autograder needs beyond that (hidden cases) and is never readable from a grading kernel.
Concept checks have no stored outputs: their keys are private (``grader.keys``). Keys are ``<case>::expected``, ``<case>::mistake::<name>`` and
``<case>::station::<name>``. ``SHA256SUMS`` lists every file's checksum.

``python -m grader references`` rewrites them; ``--check`` recomputes everything in memory and
fails if a stored output differs (beyond float rounding) or a checksum does not match.
"""

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from . import exercises, keys
from .exercise import Exercise

ROOT = Path(__file__).parent / "references"
SUMS = ROOT / "SHA256SUMS"


def path(exercise_id: str, hidden: bool) -> Path:
    return ROOT / ("hidden" if hidden else "visible") / f"{exercise_id}.safetensors"


def load(exercise_id: str, hidden: bool) -> dict[str, np.ndarray]:
    """The stored arrays of one exercise (visible or hidden part); ``{}`` if there are none."""
    file = path(exercise_id, hidden)
    return load_file(file) if file.is_file() else {}


def compute(exercise: Exercise) -> tuple[dict, dict, dict]:
    """Run the reference, the mistakes and the stations on every case: (visible, hidden, metadata)."""
    visible, hidden = {}, {}
    for case in exercise.cases():
        if exercise.kind == "choice":
            continue
        out = hidden if case.hidden else visible
        out[f"{case.name}::expected"] = as_stored(exercise.reference(**_copy(case.inputs)))
        for mistake in exercise.mistakes:
            try:
                signature = as_stored(mistake.wrong(**_copy(case.inputs)))
            except Exception:  # a mistake that cannot even run on this input leaves no signature
                continue
            if signature.dtype != object:
                out[f"{case.name}::mistake::{mistake.name}"] = signature
        if exercise.stations is not None:
            for station, value in exercise.stations(_copy(case.inputs)).items():
                out[f"{case.name}::station::{station}"] = np.asarray(value)
    return visible, hidden, {"kind": exercise.kind}


def as_stored(value) -> np.ndarray:
    """Arrays as they are; text as its UTF-8 bytes (safetensors stores numbers only)."""
    return np.frombuffer(value.encode("utf-8"), np.uint8) if isinstance(value, str) else np.asarray(value)


def _copy(inputs: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()}


def sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def selected(only: str | None) -> dict:
    """Every exercise, or those of one assignment."""
    return exercises.registry() if only is None else exercises.assignment_exercises(only)


def write_all(only: str | None = None) -> list[Path]:
    """Regenerate the reference files (of one assignment with ``only``) and the checksum list."""
    written = []
    for exercise_id, exercise in sorted(selected(only).items()):
        visible, hidden, metadata = compute(exercise)
        for arrays, is_hidden in ((visible, False), (hidden, True)):
            if not arrays:
                continue
            file = path(exercise_id, is_hidden)
            file.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(file), metadata)
            written.append(file)
    scope = "*.safetensors" if only is None else f"*/{only}/*.safetensors"
    for file in set(ROOT.glob(scope)) - set(written):
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
    """Recompute the references in memory and list what differs from the stored files."""
    problems = verify_checksums()
    for exercise_id, exercise in sorted(selected(only).items()):
        visible, hidden, metadata = compute(exercise)
        if exercise.kind == "choice":
            problems += _key_problems(exercise_id, exercise)
            continue
        for arrays, is_hidden in ((visible, False), (hidden, True)):
            stored = load(exercise_id, is_hidden)
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
