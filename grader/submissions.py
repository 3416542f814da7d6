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

A zip (or folder) may hold any of these below top folders of its own: the folders that hold
every notebook read. A notebook maps to its assignment by file name; the names an LMS gives
resubmissions (``embeddings-1.ipynb``, ``embeddings (1).ipynb``) are understood.

Whose notebook it is comes from the first folder below the top folders, never from anything
inside it: a student controls every name in their folder, so an LMS's file name counts only for
a file with no folder of its own (an export's), and a notebook in a folder deeper than
``<student>/<assignment>/`` is not graded (an ``invalid_submission`` row under the student whose
folder it is in). Otherwise a file named ``x_bob_attempt_1_embeddings-9.ipynb``, or put in a
folder ``bob/``, in Alice's folder would be graded as Bob's latest resubmission, and Bob's own not
at all. The top folders never reach into a folder that is a student's by what it holds: the
folder above a chapter's folder, or one that holds a notebook named as a chapter's (not as an LMS
names its files); so a class folder that holds one student's folder so far, or one student's
folder graded alone, grades nobody else from it. (A student's folder that holds only files with
LMS names cannot be told from an export's folder: the instructor's guide says to grade one
student's folder with ``--student``, which grades that student's notebooks only.)

No input stops the class. A file that cannot be graded as it is gets a warning and a row of
grades.csv saying what happened to it; the rest is graded.

- Reading: every notebook to be graded is read once, into scratch space the grader alone writes
  (a folder's once the latest of each student's files is chosen), and graded from that copy (cleaned, its hidden cases drawn for its digest, the digest kept): a file that
  changes in place while a class is graded (an exchange's inbound folder graded where it is)
  changes nothing graded or kept. A folder is walked without following symbolic links. A zip is
  read entry by entry and only its notebooks are extracted, each to a file name chosen here, so an
  entry's own path never reaches the file system; a backslash in an entry's path is a folder separator (Windows tools
  write them). Not read, with an invalid_submission row each: a zip entry with an absolute path
  or a ".." in it, a symbolic link (in a folder or a zip), anything else that is not a regular
  file, an encrypted or damaged entry, a notebook over 1 GiB, entries past the first 20,000 or
  past 2 GiB unpacked in all, a notebook whose student is unclear.
- Room: the copies are read into scratch space (``course.scratch``, in memory where there is
  ``/dev/shm``), which grading needs too: its throwaway gradebooks, each notebook's working copy,
  its kernel's files. So reading leaves free a quarter of that space (at most ``RESERVE``
  bytes), and reads the notebooks smallest first: when a class's files are more than the
  space can hold, the largest are not read (an invalid_submission row each, naming the space and
  the size), and no few huge files can crowd out anyone else's notebook or the grading of all.
- Names: a name is decoded as UTF-8 (bytes that are not are shown as \\xNN), normalised to NFC
  (a name typed on a Mac is the same name from the LMS) and its control characters shown as
  escapes: that is the student's name in the reports. Their id, used for every folder and file
  name and in the gradebook, is the name itself when it holds only letters, digits, _ - . @ and
  inner spaces in at most 64 bytes and does not start with . - or _ (the reports' own folders,
  such as feedback/_static, start with _); otherwise the name with every other character replaced by _,
  shortened, and followed by - and 10 hex digits of its SHA-256, so ids stay readable and
  distinct. Such a student is graded as usual, with a renamed row saying why; so is a name written
  in two Unicode forms. Two names that would get the same id (which takes a deliberate effort)
  keep it for the first; the other is not graded.
- One notebook per student and chapter: when a student has several files for one notebook (a
  folder and an LMS file, two LMS submissions, resubmissions), the latest is graded (highest
  LMS submission id; then the later time, the zip entry's or the file's, when they are more than a
  minute apart; then the highest resubmission number) and every other one gets a
  duplicate_submission row naming it.
"""

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LMS_PATTERNS = (
    re.compile(r"^(?P<name>.+?)_(?P<late>late_)?(?P<student>\d+)_(?P<submission>\d+)_(?P<file>.+)$", re.I),
    re.compile(r"^(?P<assignment>.+?)_(?P<student>\w+?)_attempt_(?P<timestamp>[0-9-]+)_(?P<file>.+)$"),
)
RESUBMISSION = re.compile(r"^(?P<stem>.+?)(?:-(?P<n>\d+)| \((?P<m>\d+)\))$")
MAX_UNZIPPED = 2 * 2**30  # bytes extracted from one archive
MAX_NOTEBOOK = 2**30  # bytes of one notebook
MAX_ENTRIES = 20_000  # entries of one archive looked at
MAX_DEPTH = 8  # folder levels below the submissions folder
MAX_ID_BYTES = 64
SUFFIX = ".ipynb"
SAME_TIME = 60  # seconds: two files' times closer than this do not say which is the later
STAMP = b"timestamp.txt"  # nbgrader's exchange: beside the notebooks it stamps (grader.lms)
MAX_STAMP = 4096  # bytes of one timestamp.txt extracted from a zip
# Scratch space that reading the submissions leaves free for grading them: a quarter of its file
# system (a container's /dev/shm may have 64 MiB in all), at most RESERVE bytes (a disk's quarter
# may be more than is free).
RESERVE = 2**30


# What reading a damaged zip entry raises.
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)


class SubmissionsError(Exception):
    """The submissions as a whole cannot be read (not a zip, not a folder)."""


@dataclass(frozen=True)
class Submission:
    """One notebook of one student; ``assignment`` is ``None`` when no chapter has that name."""

    student: str  # the id: folder and file names, nbgrader, the gradebook
    name: str  # the student as found, printable: what the reports show
    path: Path  # where to read it
    file: str  # the file as found, relative to the submissions, printable
    notebook: str  # the chapter notebook's name, e.g. "embeddings" (the file's stem if unknown)
    assignment: str | None
    attempt: int = 0
    listed: datetime | None = None  # the time its listing gave: a zip entry's (no zone) or the file's
    received: datetime | None = None  # a folder's file: its ctime (see ``_File``); None from a zip
    # What the LMS export carried (``grader.lms.describe`` fills these in):
    lms_name: str = ""  # the student's name as the LMS wrote it
    lms_id: str = ""  # the student's id in the LMS
    late: bool | None = None  # the LMS's own verdict (Canvas's _LATE_), if it gave one
    submitted_at: datetime | None = None
    time_source: str = ""  # where submitted_at came from


@dataclass(frozen=True)
class Problem:
    """A file or a name that was not graded as it is, and why."""

    student: str  # id
    name: str
    file: str
    status: str  # invalid_submission, duplicate_submission or renamed
    reason: str


@dataclass
class Found:
    by_student: dict[str, list[Submission]] = field(default_factory=dict)  # by id
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class _File:
    """A notebook as listed: its path's names relative to the submissions, raw."""

    parts: tuple[bytes, ...]
    path: Path | None  # None when it is not read
    mtime: float = 0
    refused: str = ""  # why it is not read
    listed: datetime | None = None  # a zip entry's time (no zone), or the file's (local zone)
    # A folder's file: its status-change time (ctime, local zone), when it was last written,
    # copied or moved into place. Unlike its modification time, no user can set it back (not even
    # the file's owner: ``utime`` itself sets it to now), so on the instructor's side it bounds when
    # the file arrived. A zip entry has none: a zip stores the modification time.
    received: datetime | None = None


def find(submitted: Path, known: dict[str, str], scratch: Path) -> Found:
    """Every notebook under ``submitted`` (a folder or a .zip, extracted into ``scratch``), by
    student id, and the problems met. ``known`` maps notebook names to assignments."""
    if submitted.is_file() and zipfile.is_zipfile(submitted):
        files = _unzip(submitted, scratch)
    elif submitted.is_dir():
        return _read_once(_identify(_walk(submitted), known), scratch)
    else:
        raise SubmissionsError(f"{submitted} is neither a folder nor a readable zip file")
    return _identify(files, known)


# ---- listing ----------------------------------------------------------------------------------------


def _walk(root: Path) -> list[_File]:
    """The notebooks of a folder; symbolic links are listed as refused, never followed."""
    found: list[_File] = []
    pending = [(root, ())]
    while pending:
        folder, parts = pending.pop()
        hidden = any(map(_hidden, parts))
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            found.append(_File((*parts, b""), None, refused=f"its folder cannot be read ({err.strerror})"))
            continue
        for entry in entries:
            raw = os.fsencode(entry.name)
            here = (*parts, raw)
            if _skipped(raw):
                continue
            if entry.is_symlink():
                if raw.endswith(SUFFIX.encode()) or entry.is_dir():
                    found.append(_File(here, None, refused="it is a symbolic link, which is never followed"))
            elif entry.is_dir(follow_symlinks=False):
                if len(here) <= MAX_DEPTH:
                    pending.append((Path(entry.path), here))
            elif raw.endswith(SUFFIX.encode()):
                found.append(
                    _File(here, None, refused=HIDDEN)
                    if hidden or _hidden(raw)
                    else _regular_file(entry, here)
                )
    return sorted(found, key=lambda f: f.parts)


def _regular_file(entry: os.DirEntry, parts: tuple[bytes, ...]) -> _File:
    info = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        return _File(parts, None, refused="it is not a regular file")
    if info.st_size > MAX_NOTEBOOK:
        return _File(parts, None, refused=f"it is {info.st_size} bytes, over the {MAX_NOTEBOOK}-byte limit")
    try:
        os.close(os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
    except OSError as err:
        return _File(parts, None, refused=f"it cannot be read ({err.strerror})")
    listed = file_time(info.st_mtime)
    received = file_time(info.st_ctime)
    return _File(parts, Path(entry.path), info.st_mtime if listed else 0, listed=listed, received=received)


def _read_once(found: Found, destination: Path) -> Found:
    """``found`` (a folder's), each notebook to be graded read once into
    ``destination/f<n>/<its name>`` (with the ``timestamp.txt`` of its folder beside it, if there
    is one), as a zip's are extracted, and listed with the times its file had once it was read:
    every later step (cleaning, the hidden cases' seed, the digest kept in the gradebook, the
    exchange's stamp) reads that copy, which no student can write, so a file changed in the graded
    folder while it is graded changes nothing, and its ctime bounds every change to the bytes
    graded. Only the notebooks to be graded are copied (one per student and chapter, each at most
    ``MAX_NOTEBOOK`` bytes): no student's files can use up what another's need."""
    destination.mkdir(parents=True, exist_ok=True)
    pending = [(student, sub) for student, subs in found.by_student.items() for sub in subs]
    read = {}
    for n in sorted(range(len(pending)), key=lambda n: _size(pending[n][1].path)):  # smallest first
        read[n] = _copy_file(pending[n][1].path, destination / f"f{n}" / pending[n][1].path.name)
    kept = Found(problems=found.problems)
    for n, (student, sub) in enumerate(pending):  # in the order found
        if isinstance(read[n], str):
            reason = f"not graded: {read[n]}"
            kept.problems.append(Problem(student, sub.name, sub.file, "invalid_submission", reason))
            continue
        listed, received = read[n]
        copy = dataclasses.replace(
            sub, path=destination / f"f{n}" / sub.path.name, listed=listed, received=received
        )
        kept.by_student.setdefault(student, []).append(copy)
    return kept


def _size(path: Path) -> int:
    """The size of the file at ``path`` now (0 if it cannot be told: reading it will say why)."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _limit(destination: Path, size: int) -> "int | str":
    """How many bytes a notebook of ``size`` bytes may take when read into ``destination``: at most
    ``MAX_NOTEBOOK``, and at most what leaves free the scratch space that grading needs (see
    ``RESERVE``); or, if its size is already more, why it is not read."""
    usage = shutil.disk_usage(destination)
    room = usage.free - min(RESERVE, usage.total // 4)
    if size > room:
        return (
            f"it is {size} bytes, and the grader's scratch space has room for {max(room, 0)} more bytes"
            " (the smallest notebooks are read first): free some of it (/dev/shm, else the temporary"
            " folder), or grade this notebook alone"
        )
    return min(MAX_NOTEBOOK, room)


def _copy_file(path: Path, target: Path) -> "tuple[datetime | None, datetime | None] | str":
    """Copy the notebook at ``path`` to ``target`` through one descriptor: its modification time
    and ctime once read, or why it was not read."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # a FIFO or a device is not even opened
            return "it is not a regular file"
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        return (
            "it is a symbolic link, which is never followed"
            if err.errno == errno.ELOOP
            else f"it cannot be read ({err.strerror})"
        )
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "it is not a regular file"
        limit = _limit(target.parent.parent, info.st_size)
        if isinstance(limit, str):
            return limit
        shutil.rmtree(target.parent, ignore_errors=True)  # an earlier listing's
        target.parent.mkdir()
        try:
            _copy(source, target, limit, f"it grew past {limit} bytes while it was read")
        except (OSError, ValueError) as err:
            shutil.rmtree(target.parent, ignore_errors=True)
            return f"it cannot be read ({getattr(err, 'strerror', None) or err})"
        info = os.fstat(fd)  # after the read: every write to the bytes copied happened before it
    _copy_stamp(path.parent / STAMP.decode(), target.with_name(STAMP.decode()))
    return file_time(info.st_mtime), file_time(info.st_ctime)


def _copy(source, target: Path, limit: int, too_big: str) -> int:
    """Copy the open file ``source`` to ``target``, at most ``limit`` bytes (past them,
    ValueError saying ``too_big``); returns its size."""
    copied = 0
    with open(target, "wb") as sink:
        while chunk := source.read(2**20):
            copied += len(chunk)
            if copied > limit:
                raise ValueError(too_big)
            sink.write(chunk)
    return copied


def _copy_stamp(stamp: Path, target: Path) -> None:
    """The nbgrader exchange's ``timestamp.txt`` beside a notebook, copied if it is a regular file
    (its first ``MAX_STAMP + 1`` bytes: ``grader.lms`` refuses a longer one)."""
    try:
        fd = os.open(stamp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    with os.fdopen(fd, "rb") as source:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            with contextlib.suppress(OSError):
                target.write_bytes(source.read(MAX_STAMP + 1))


# The times a submission can have been made at. A file's time is the student's to set (an
# exchange keeps it), as is a timestamp.txt: a time outside these says nothing of when the work
# was submitted, and a year past datetime's range, or at its very edge (where one more minute or a
# time zone overflows), stopped the grading of the whole class.
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def plausible(when: datetime) -> bool:
    """``when`` (aware) lies where a submission's time can (``EARLIEST`` to ``LATEST``)."""
    return EARLIEST <= when < LATEST


def file_time(seconds: float) -> datetime | None:
    """A file's modification time as a local time, if it is a plausible one."""
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return when.astimezone() if plausible(when) else None


def _unzip(archive: Path, destination: Path) -> list[_File]:
    """Extract the notebooks of a zip one by one to ``destination/<n>/<n>.ipynb``, each with the
    ``timestamp.txt`` of its folder in the zip beside it, if there is one (an nbgrader exchange
    zipped: ``<student>/<assignment>/``)."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as err:
        raise SubmissionsError(f"{archive} cannot be read as a zip file: {err}") from None
    found: dict[int, _File] = {}  # by the entry's index
    total = 0
    with zf:
        entries = zf.infolist()
        stamps = {
            parts[:-1]: info
            for info in entries[:MAX_ENTRIES]
            if (parts := _entry_parts(info))[-1] == STAMP
            and info.file_size <= MAX_STAMP
            and not _refusal(info, 0)
        }
        notebooks = [
            (index, info, parts)
            for index, info in enumerate(entries[:MAX_ENTRIES])
            if not info.is_dir()
            and (parts := _entry_parts(info))[-1].endswith(SUFFIX.encode())
            and not any(map(_skipped, parts))
        ]
        for index, info, parts in sorted(notebooks, key=lambda n: n[1].file_size):  # smallest first
            mtime = _zip_time(info)
            limit = _limit(destination, info.file_size)
            refused = (
                (HIDDEN if any(map(_hidden, parts)) else "")
                or _refusal(info, total)
                or (limit if isinstance(limit, str) else "")
            )
            if refused:
                found[index] = _File(parts, None, mtime, refused)
                continue
            target = destination / str(index) / f"{index}{SUFFIX}"
            try:
                target.parent.mkdir(exist_ok=True)
                total += _extract(zf, info, target, limit)
            except DAMAGED as err:
                shutil.rmtree(target.parent, ignore_errors=True)
                found[index] = _File(parts, None, mtime, f"the zip entry is damaged ({err})")
                continue
            if stamp := stamps.get(parts[:-1]):
                with contextlib.suppress(*DAMAGED):  # then the time is the zip entry's
                    _extract(zf, stamp, target.with_name(STAMP.decode()), MAX_STAMP + 1)
            found[index] = _File(parts, target, mtime, listed=_zip_datetime(info))
        files = [found[index] for index in sorted(found)]  # in the archive's order
        if len(entries) > MAX_ENTRIES:
            reason = f"the archive has {len(entries)} entries; only the first {MAX_ENTRIES} were read"
            files.append(_File((os.fsencode(archive.name),), None, refused=reason))
    return files


def _entry_parts(info: zipfile.ZipInfo) -> tuple[bytes, ...]:
    """The raw names of a zip entry's path: bytes as stored (UTF-8 if the entry says so, else
    anything), split at ``/`` and ``\\``."""
    raw = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    return tuple(re.split(rb"[/\\]", raw))


def _refusal(info: zipfile.ZipInfo, total: int) -> str:
    raw = _entry_parts(info)
    if raw[0] == b"" or re.match(rb"^[A-Za-z]:$", raw[0]):
        return "the zip entry has an absolute path"
    if b".." in raw:
        return "the zip entry's path leads outside the archive (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "the zip entry is a symbolic link, which is never followed"
    if info.flag_bits & 0x1:
        return "the zip entry is encrypted"
    if info.file_size > MAX_NOTEBOOK:
        return f"it is {info.file_size} bytes, over the {MAX_NOTEBOOK}-byte limit"
    if total + info.file_size > MAX_UNZIPPED:
        return f"the archive unpacks to more than {MAX_UNZIPPED} bytes; this entry was not extracted"
    return ""


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limit: int) -> int:
    """Copy one entry's bytes to ``target``, at most ``limit`` of them (zipfile checks its size
    and CRC); returns its size."""
    with zf.open(info) as source:
        return _copy(source, target, limit, f"it unpacks to more than {limit} bytes")


def _zip_time(info: zipfile.ZipInfo) -> float:
    when = _zip_datetime(info)
    return when.timestamp() if when else 0


def _zip_datetime(info: zipfile.ZipInfo) -> datetime | None:
    """The time a zip stores for an entry: a local time with no zone."""
    try:
        return datetime(*info.date_time)
    except (ValueError, OverflowError):
        return None


def _skipped(raw: bytes) -> bool:
    """What tools leave beside notebooks: Jupyter's checkpoints (``.ipynb_checkpoints``) and
    half-saved copies (``.~name.ipynb``), macOS's metadata (``__MACOSX``, ``._name``)."""
    return raw in (b".ipynb_checkpoints", b"__MACOSX") or raw.startswith((b"._", b".~"))


def _hidden(raw: bytes) -> bool:
    """A hidden name (``.name``): what lies in it is refused, with a row, not read (a copy kept in
    ``alice/.old/`` is not alice's submission) and not dropped (``.alice/`` may be a student)."""
    return raw.startswith(b".") and raw not in (b".", b"..")


HIDDEN = 'it lies in a hidden file or folder (a name that starts with "."): rename it to grade it'


# ---- names --------------------------------------------------------------------------------------------


def printable(raw: bytes) -> str:
    """A name as the reports show it: UTF-8 (other bytes as ``\\xNN``), NFC, control characters
    as escapes."""
    text = unicodedata.normalize("NFC", raw.decode("utf-8", "backslashreplace"))
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def student_id(name: str) -> str:
    """The id of a student named ``name`` (see the module docstring)."""
    if _is_safe(name):
        return name
    kept = "".join(ch if ch.isalnum() or ch in "_-.@" else "_" for ch in name).lstrip("_-.")
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    head = kept.encode()[: MAX_ID_BYTES - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}-{digest}" if head else digest


def _is_safe(name: str) -> bool:
    return (
        0 < len(name.encode()) <= MAX_ID_BYTES
        and name == name.strip()
        and not name.startswith((".", "-", "_"))  # "_": the reports' own folders (feedback/_static)
        and all(ch.isalnum() or ch in "_-.@ " for ch in name)
    )


def _name_issues(raw: bytes) -> list[str]:
    """What makes a raw name unusable as it is, in words."""
    issues = []
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        issues.append("is not valid UTF-8")
        text = raw.decode("utf-8", "replace")
    if any(not ch.isprintable() for ch in text):
        issues.append("has control or invisible characters")
    if len(raw) > MAX_ID_BYTES:
        issues.append(f"is {len(raw)} bytes long (at most {MAX_ID_BYTES} are kept)")
    if re.search(r"[\\/:*?\"<>|,+]", text):
        issues.append("has characters that are unsafe in a file name")
    if not issues and not _is_safe(printable(raw)):
        issues.append("has characters other than letters, digits, _ - . @ and inner spaces")
    return issues


# ---- whose notebook is it ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    submission: Submission
    raw_name: bytes
    order: tuple  # (LMS submission id or -1, time, resubmission number, name as shown): ``_later``


def _identify(files: list[_File], known: dict[str, str]) -> Found:
    found = Found()
    candidates = []
    wrapping = _wrapping(files, set(known.values()))
    folded = {name.casefold(): name for name in known}  # notebook names but for case
    for listed in files:
        shown = "/".join(map(printable, listed.parts))
        parts = tuple(p for p in listed.parts if p not in (b"", b".", b".."))
        # Every notebook read lies in the top folders; a refused one (an absolute path, a "..")
        # may not, and its row is named after the folder that holds it.
        top = len(wrapping) if parts[: len(wrapping)] == wrapping else max(len(parts) - 2, 0)
        identified = _student_and_name(parts, [printable(p) for p in parts], set(known.values()), top)
        if listed.refused or identified is None:
            reason = (
                listed.refused
                or _inside_a_students_folder(parts, top)
                or "cannot tell whose notebook this is (put it in a folder named after the student)"
            )
            named = identified[0] if identified else parts[top] if len(parts) > top + 1 else None
            student = printable(named) if named else shown
            found.problems.append(
                Problem(student_id(student), student, shown, "invalid_submission", f"not graded: {reason}")
            )
            continue
        raw_name, file_name, lms_submission = identified
        stem, attempt = _strip_resubmission(Path(file_name).stem, folded)
        name = printable(raw_name)
        sub = Submission(
            student_id(name),
            name,
            listed.path,
            shown,
            stem,
            known.get(stem),
            attempt,
            listed.listed,
            received=listed.received,
        )
        candidates.append(_Candidate(sub, raw_name, (lms_submission, listed.mtime, attempt, shown)))
    candidates = _one_name_per_id(candidates, found.problems)
    by_unit: dict[tuple[str, str], list[_Candidate]] = {}
    for candidate in candidates:
        by_unit.setdefault((candidate.submission.student, candidate.submission.notebook), []).append(
            candidate
        )
    latest = {unit: max(files, key=functools.cmp_to_key(_later)) for unit, files in by_unit.items()}
    for candidate in candidates:
        graded = latest[(candidate.submission.student, candidate.submission.notebook)]
        if graded is not candidate:
            found.problems.append(_superseded(candidate.submission, graded.submission))
    for (student, _), candidate in sorted(latest.items()):
        found.by_student.setdefault(student, []).append(candidate.submission)
    return found


def _student_and_name(
    parts: tuple[bytes, ...], names: list[str], assignments: set[str], top: int
) -> tuple[bytes, str, int] | None:
    """(student's raw name, notebook file name, LMS submission id or -1) from a path relative to
    the submissions, whose first ``top`` folders wrap every notebook (an archive's top folder)
    and name no one. Below them, the first folder is the student's, and only an assignment's
    folder may come between it and the file: a student controls what is in their folder, so
    nothing in it names a student. A file with no folder of its own there is an LMS export's
    (its name says whose it is), or, when the top folders end with a student's folder (one
    student graded alone), that student's."""
    if not parts or not names[-1].endswith(SUFFIX):
        return None
    rest, inner = parts[top:], names[top:]
    if len(rest) == 1:
        match = next((m for p in LMS_PATTERNS if (m := p.match(names[-1]))), None)
        if match:
            submission = int(match["submission"]) if "submission" in match.groupdict() else -1
            return match["student"].encode(), match["file"], submission
        own = top - 1 if top >= 1 and names[top - 1] not in assignments else top - 2
        return (parts[own], names[-1], -1) if own >= 0 else None
    if len(rest) == 2 or (len(rest) == 3 and inner[1] in assignments):
        return rest[0], names[-1], -1
    return None


def _wrapping(files: list[_File], assignments: set[str]) -> tuple[bytes, ...]:
    """The folders that hold every notebook that is read (an archive's or an export's top
    folders): the longest common start of their folders, but never a student's folder, when what
    the folders hold shows whose it is (``_students_folder``); and but for its last if every
    notebook lies in a chapter's folder right below it: that folder is a student's, one student's
    notebooks of several chapters in nbgrader's layout (``alice/01-embeddings/embeddings.ipynb``),
    graded alone (a folder deeper in a chapter's folder is then inside hers)."""
    read = [f.parts for f in files if not f.refused]
    common = tuple(os.path.commonprefix([parts[:-1] for parts in read]))
    if (student := _students_folder(common, read, assignments)) is not None:
        return common[:student]
    below = {printable(parts[len(common)]) for parts in read if len(parts) > len(common) + 1}
    chapters = bool(read) and all(len(parts) >= len(common) + 2 for parts in read) and below <= assignments
    return common[:-1] if common and chapters else common


def _students_folder(common: tuple[bytes, ...], read: list[tuple], assignments: set[str]) -> int | None:
    """The position in ``common`` of a folder that is a student's by what it holds: the folder
    above a chapter's folder (``<student>/<assignment>/``; below a chapter's folder that comes
    first, an export by chapter's, the next), or one that holds a notebook named as a chapter's,
    not as an LMS names its files. A class folder that holds one student's folder so far has that
    folder as its common start: without this, a folder ``alice/`` the student made in it was
    taken for Alice's."""
    for i, part in enumerate(common):
        if printable(part) in assignments:
            return i - 1 if i else 1 if len(common) > 1 else None
        if any(parts[:-1] == common[: i + 1] and not _lms_name(parts[-1]) for parts in read):
            return i
    return None


def _lms_name(raw: bytes) -> bool:
    return any(pattern.match(printable(raw)) for pattern in LMS_PATTERNS)


def _inside_a_students_folder(parts: tuple[bytes, ...], top: int) -> str | None:
    """Why a notebook deeper in a student's folder than the layouts allow is not graded."""
    rest = parts[top:]
    if len(rest) < 3:
        return None
    return (
        f"it is in a folder inside {printable(rest[0])}'s folder ({'/'.join(map(printable, rest[1:-1]))}): a "
        "student's notebooks go directly in their folder, or in a folder named after the chapter"
    )


def _strip_resubmission(stem: str, folded: dict[str, str]) -> tuple[str, int]:
    """The chapter notebook a file's stem names (but for case: ``Embeddings``; ``folded`` maps
    each notebook's name casefolded to it), and its resubmission number (``embeddings-2``,
    ``embeddings (2)``); an unknown stem as it is."""
    if stem.casefold() in folded:
        return folded[stem.casefold()], 0
    match = RESUBMISSION.match(stem)
    if match and match["stem"].casefold() in folded:
        return folded[match["stem"].casefold()], int(match["n"] or match["m"])
    return stem, 0


def _one_name_per_id(candidates: list[_Candidate], problems: list[Problem]) -> list[_Candidate]:
    """Candidates whose id is theirs alone, with a ``renamed`` problem for every student whose id
    is not their name or whose name was written in several ways."""
    by_id: dict[str, dict[str, set[bytes]]] = {}
    for candidate in candidates:
        sub = candidate.submission
        by_id.setdefault(sub.student, {}).setdefault(sub.name, set()).add(candidate.raw_name)
    kept = []
    for candidate in candidates:
        sub = candidate.submission
        owner = min(by_id[sub.student])
        if sub.name == owner:
            kept.append(candidate)
        else:
            reason = (
                f"not graded: its student {sub.name!r} would get the same id as {owner!r} ({sub.student})"
            )
            problems.append(Problem(student_id(sub.file), sub.name, sub.file, "invalid_submission", reason))
    for student, names in sorted(by_id.items()):
        name = min(names)
        raws = sorted(names[name])
        issues = list(dict.fromkeys(issue for raw in raws for issue in _name_issues(raw)))
        if len(raws) > 1:
            issues.append(f"is written in {len(raws)} different ways (Unicode forms); they are one student")
        if student != name or len(raws) > 1:
            what = " and ".join(issues) or "is not usable as a file name"
            reason = f"the name {what}; graded under the id {student!r} (its folders and gradebook entry)"
            problems.append(Problem(student, name, "", "renamed", reason))
    return kept


def _later(a: _Candidate, b: _Candidate) -> int:
    """Which of two files of a notebook is the later (> 0: ``a``): the higher LMS submission id;
    then the later time, if they are more than ``SAME_TIME`` apart; then the higher resubmission
    number (a browser's "(1)", an LMS's "-1"), the later time, the name. Times closer than that
    are a copy's, not the student's (files copied without their times)."""
    (lms_a, time_a, number_a, name_a), (lms_b, time_b, number_b, name_b) = a.order, b.order
    if lms_a != lms_b:
        return lms_a - lms_b
    if abs(time_a - time_b) > SAME_TIME:
        return 1 if time_a > time_b else -1
    rest_a, rest_b = (number_a, time_a, name_a), (number_b, time_b, name_b)
    return (rest_a > rest_b) - (rest_a < rest_b)


def _superseded(older: Submission, graded: Submission) -> Problem:
    reason = (
        f"not graded: the same student's {graded.file} is a later {graded.notebook}{SUFFIX} and was"
        " graded instead"
    )
    return Problem(older.student, older.name, older.file, "duplicate_submission", reason)
