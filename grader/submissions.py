"""Find the students' notebooks in a folder or in a ``.zip`` exported from an LMS.

Accepted layouts (``<notebook>`` is a chapter notebook's file name, e.g. ``embeddings.ipynb``):

- ``<student>/<notebook>``
- ``<student>/<assignment>/<notebook>`` (nbgrader's ``submitted/`` layout, and what
  ``nbgrader zip_collect`` produces)
- flat files named by an LMS:

  - Canvas: ``<name>_<studentid>_<submissionid>_<notebook>`` and
    ``<name>_LATE_<studentid>_<submissionid>_<notebook>`` (the student is ``<studentid>``)
  - Blackboard, the pattern nbgrader's ``zip_collect`` documents:
    ``<assignment>_<student>_attempt_<timestamp>_<notebook>``

A zip (or folder) may hold any of these below a top folder of its own. A notebook maps to its
assignment by file name; the names an LMS gives resubmissions (``embeddings-1.ipynb``,
``embeddings (1).ipynb``) are understood, and the highest number wins when a student has several.
"""

import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LMS_PATTERNS = (
    re.compile(r"^(?P<name>.+?)_(?P<late>late_)?(?P<student>\d+)_(?P<submission>\d+)_(?P<file>.+)$", re.I),
    re.compile(r"^(?P<assignment>.+?)_(?P<student>\w+?)_attempt_(?P<timestamp>[0-9-]+)_(?P<file>.+)$"),
)
RESUBMISSION = re.compile(r"^(?P<stem>.+?)(?:-(?P<n>\d+)| \((?P<m>\d+)\))$")
MAX_UNZIPPED = 2 * 2**30


@dataclass(frozen=True)
class Submission:
    """One notebook of one student; ``assignment`` is ``None`` when no chapter has that name."""

    student: str
    path: Path
    notebook: str  # the chapter notebook's name, e.g. "embeddings" (the file's stem if unknown)
    assignment: str | None
    attempt: int = 0
    # What the LMS export carried (``grader.lms.describe`` fills these in):
    name: str = ""  # the student's name as the LMS wrote it
    lms_id: str = ""  # the student's id in the LMS
    late: bool | None = None  # the LMS's own verdict (Canvas's _LATE_), if it gave one
    submitted_at: datetime | None = None
    time_source: str = ""  # where submitted_at came from


def find(root: Path, known: dict[str, str]) -> tuple[dict[str, list[Submission]], list[Path]]:
    """Submissions under ``root`` by student, and the notebooks whose student is unclear.

    ``known`` maps notebook names to assignments.
    """
    found: dict[tuple[str, str], Submission] = {}
    unclear = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        identified = _student_and_name(parts, set(known.values()))
        if identified is None:
            unclear.append(path)
            continue
        stem, attempt = _strip_resubmission(Path(identified[1]).stem, known)
        submission = Submission(identified[0], path, stem, known.get(stem), attempt)
        key = (submission.student, submission.notebook)
        if key not in found or submission.attempt > found[key].attempt:
            found[key] = submission
    by_student: dict[str, list[Submission]] = {}
    for (student, _), submission in sorted(found.items()):
        by_student.setdefault(student, []).append(submission)
    return by_student, unclear


def _student_and_name(parts: tuple[str, ...], assignments: set[str]) -> tuple[str, str] | None:
    """(student, notebook file name) from a path relative to the submissions folder; any folders
    above the student's (an archive's top folder) are ignored."""
    match = next((m for p in LMS_PATTERNS if (m := p.match(parts[-1]))), None)
    if match:
        return match["student"], match["file"]
    if len(parts) >= 3 and parts[-2] in assignments:
        return parts[-3], parts[-1]
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None


def _strip_resubmission(stem: str, known: dict[str, str]) -> tuple[str, int]:
    if stem in known:
        return stem, 0
    match = RESUBMISSION.match(stem)
    if match and match["stem"] in known:
        return match["stem"], int(match["n"] or match["m"])
    return stem, 0


def unpack(archive: Path, destination: Path) -> Path:
    """Extract a zip safely (no paths outside ``destination``, bounded size)."""
    with zipfile.ZipFile(archive) as zf:
        if sum(info.file_size for info in zf.infolist()) > MAX_UNZIPPED:
            raise ValueError(f"{archive} unpacks to more than {MAX_UNZIPPED} bytes")
        for info in zf.infolist():
            if not (destination / info.filename).resolve().is_relative_to(destination.resolve()):
                raise ValueError(f"{archive}: refusing to extract {info.filename!r} outside the folder")
        zf.extractall(destination)
    return destination


def copy_to(submission: Submission, folder: Path) -> Path:
    """Copy a submission as ``folder/<notebook>.ipynb`` (the name nbgrader expects)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{submission.notebook}.ipynb"
    shutil.copyfile(submission.path, target)
    return target
