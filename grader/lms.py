"""What a learning management system's export says about a submission, and the file it imports.

In: the student's name and LMS id, the LMS's own late verdict, and the submission time, with
where each came from (``describe``); an optional roster, Canvas's gradebook export, for the names,
SIS ids and sections of the whole class (``read_roster``).

Out: Canvas's gradebook import file (``canvas_rows``): the columns ``Student``, ``ID``,
``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment titled as Canvas
titles it, ``Name (id)``. Canvas matches a row to a student by ``ID`` (its user id, which its
submission file names carry) or the SIS ids, and a column to an assignment by the id in its title;
a title without an id makes Canvas offer to create a new assignment.
"""

import csv
import dataclasses
import io
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path, PurePosixPath

from nbgrader.utils import parse_utc

from .submissions import LMS_PATTERNS, MAX_STAMP, STAMP, Submission, plausible

CANVAS, BLACKBOARD = LMS_PATTERNS
IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
EXCHANGE_TIMESTAMP = STAMP.decode()  # what nbgrader's submit writes and collect keeps
TITLE_ID = re.compile(r"\((\d+)\)\s*$")  # Canvas's assignment id at the end of a column title
STAMP_SLACK = timedelta(minutes=1)  # a stamp this much earlier than the notebook's time still counts


def describe(sub: Submission, zone: tzinfo | None, trust_ctime: bool = False) -> Submission:
    """``sub`` with the name, id, late verdict and submission time its export carried.

    The time comes from, in order: nbgrader's ``timestamp.txt`` beside the notebook, a Blackboard
    file name, the notebook's entry in the zip, the file's modification time. Times written
    without a zone (Blackboard's, a zip's) stay without one: the reports read them in the term's
    ``timezone`` as it is when they are made (``in_zone``), so a zone set after grading applies
    to them too. ``zone`` (None: this machine's) is the term's zone now, for comparing times here.

    ``timestamp.txt`` is written on the student's own account (``nbgrader submit``), so it is a
    claim: nbgrader's submit and collect keep the notebook's modification time, which an honest
    submission's stamp never precedes. A stamp earlier than the notebook's last change (beyond a
    minute) is not believed: the later time counts, and the source says why. But the notebook's
    modification time is the student's too (``touch -d``; submit and collect keep it), so a student
    who sets both back is believed: from the exchange, no time the student writes is evidence.

    ``trust_ctime`` (the term's ``late.trust_ctime``: the instructor says the folder graded is
    where the submissions were put on the instructor's side, by nbgrader's collect run at the due
    date or the exchange itself, and was not copied since) makes a folder's file's ctime a bound no
    student can move back (``submissions._File.received``): the time is the later of what the
    sources above say and that one, whatever they say (a claim earlier than the evidence lowers no
    penalty), and the source says so. A zip has no such time: its entries' times are what the
    program that made it copied (an LMS's own, or the files' modification times).
    """
    name = lms_id = ""
    late = None
    when, source = None, ""
    file_name = PurePosixPath(sub.file).name  # as the export named it (a zip's are extracted anew)
    canvas = CANVAS.match(file_name)
    blackboard = BLACKBOARD.match(file_name)
    stamp = sub.path.parent / EXCHANGE_TIMESTAMP
    if canvas:
        name, lms_id, late = canvas["name"], canvas["student"], bool(canvas["late"])
    if stamp.is_file() and (claimed := _exchange_time(stamp)) is not None:
        when, source = claimed, "nbgrader exchange (timestamp.txt)"
        changed = sub.listed and in_zone(sub.listed, zone)
        if changed and changed > claimed + STAMP_SLACK:
            when, source = (
                changed,
                (
                    f"file modification time: timestamp.txt says {_utc(claimed)}, before the notebook was last "
                    "changed (an edited stamp, or files copied without their times)"
                ),
            )
    elif blackboard and (named := _blackboard_time(blackboard["timestamp"])):
        when, source = named, "Blackboard file name"
    elif sub.listed is not None and sub.listed.tzinfo is None:
        when, source = sub.listed, "time of the file in the zip"
    elif sub.listed is not None:
        when, source = sub.listed, "file modification time"
    if trust_ctime and sub.received is not None and (when is None or sub.received > in_zone(when, zone)):
        said = f"{source or 'nothing'} says {_utc(in_zone(when, zone))}" if when else "no other time"
        when, source = sub.received, f"time the file reached the graded folder (ctime): {said}, before it"
    return dataclasses.replace(
        sub, lms_name=name, lms_id=lms_id, late=late, submitted_at=when, time_source=source
    )


def _blackboard_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d-%H-%M-%S")
    except ValueError:  # not the pattern Blackboard writes: the next source decides
        return None


def _exchange_time(path: Path) -> datetime | None:
    """The time a ``timestamp.txt`` holds; None for one that is not a short text with a plausible
    time (``submissions.plausible``: it is written on the student's account, as is a huge file,
    which is not read whole)."""
    try:
        with path.open("rb") as file:
            text = file.read(MAX_STAMP + 1)
        if len(text) > MAX_STAMP:
            return None
        utc = parse_utc(text.decode().strip())
    except (OSError, ValueError, OverflowError):
        return None
    when = utc.replace(tzinfo=UTC) if utc else None
    return when if when and plausible(when) else None


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def in_zone(when: datetime, zone: tzinfo | None) -> datetime:
    """``when`` as an aware time: a time without a zone is read in ``zone`` (None: this machine's)."""
    if when.tzinfo is not None:
        return when
    return when.replace(tzinfo=zone) if zone else when.astimezone()


# ---- the class as the LMS knows it ----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A student as Canvas lists them."""

    name: str
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    def ids(self) -> set[str]:
        return {i for i in (self.canvas_id, self.sis_user_id, self.sis_login_id) if i}

    @property
    def student(self) -> str:
        """The id the reports give someone who is only on the roster (nothing graded)."""
        return self.sis_login_id or self.canvas_id


class RosterError(ValueError):
    """A roster that cannot be read as it was saved; the message names the file, the line and what
    to do."""


SAVE_AS = 'open it in Excel and save it again with File > Save As > "CSV UTF-8 (Comma delimited)"'
DELIMITERS = (",", ";", "\t")  # Excel's "CSV" in Europe writes ";"; its "Unicode Text" a tab


def _roster_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """The header, the (line, cells) of every other row, and the legacy encoding it was read in
    (``""`` for Unicode) of a CSV roster as spreadsheets save it: UTF-8 with or without a byte-order
    mark (Excel's "CSV UTF-8"), UTF-16 with one (Excel's "Unicode Text"), cells separated by commas,
    semicolons (Excel where the decimal mark is a comma) or tabs, lines ended by CRLF, LF or CR,
    rows and columns left empty at the end.

    Text that is not UTF-8 is Excel's "CSV (Comma delimited)", in Windows' code page: read as
    Windows-1252 (Western Europe and the Americas). Which code page it was cannot be told from the
    bytes (cp1250 or Mac Roman read an accented name differently), but Canvas matches a row by its
    ids, never by the name: ``read_roster`` refuses the file if an id is not ASCII. Refused with
    what to do: an Excel workbook (.xlsx, .xls) rather than CSV, and text that is not Windows-1252
    either."""
    data = path.read_bytes()
    legacy = ""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise RosterError(f"{path}: an Excel workbook, not a CSV file: {SAVE_AS}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise RosterError(f"{path}: starts as UTF-16 text but is not (cut short?): {SAVE_AS}") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            try:
                text, legacy = data.decode(LEGACY), LEGACY
            except UnicodeDecodeError:
                raise RosterError(_legacy_refused(path, data, err.start)) from None
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise RosterError(
            f"{path}, line 1: empty, where the header (Student, ID, ...) belongs: export it again from "
            "Canvas (Grades > Export)"
        )
    delimiter = max(
        DELIMITERS, key=lambda d: (next(csv.reader([first], delimiter=d), []).count("ID"), first.count(d))
    )
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        rows = [(reader.line_num, cells) for cells in reader]
    except csv.Error as err:
        raise RosterError(
            f"{path}, line {reader.line_num}: {err} (a quote not closed?): export it again from Canvas, "
            f"or {SAVE_AS}"
        ) from None
    header = [cell.strip() for cell in rows[0][1]]
    return header, [(line, cells) for line, cells in rows[1:] if any(cell.strip() for cell in cells)], legacy


LEGACY = "cp1252"  # Excel's "CSV (Comma delimited)" in Western Europe and the Americas


def _legacy_refused(path: Path, data: bytes, at: int) -> str:
    """Why a roster that is not UTF-8 is refused: the line and the byte at ``at``, shown."""
    line = data.count(b"\n", 0, at) + 1
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    shown = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace").strip()
    return (
        f"{path}, line {line}: not UTF-8 (byte 0x{data[at]:02x} in: {shown}): it was saved in a legacy "
        f'encoding, as Excel\'s "CSV (Comma delimited)" does; {SAVE_AS}'
    )


def read_roster(path: Path) -> list[Person]:
    """The students of a Canvas gradebook export (its "Points Possible" row and test student
    skipped), as a spreadsheet may have saved it (``_roster_table``).

    Exports pasted into one file (one per section) are read as one: a header repeated below is
    skipped, and so is a student's row repeated as it is. Two rows that give one id (Canvas ID or
    SIS id, but for case) to students that differ are refused, naming both lines: a graded student
    with that id could be matched to neither, and canvas.csv would carry the roster's row for that
    id with nothing submitted beside the graded one, which Canvas could import over the grade."""
    header, rows, legacy = _roster_table(path)
    missing = [column for column in IDENTITY[:2] if column not in header]
    if missing:
        raise RosterError(
            f"{path}, line 1: not a Canvas gradebook export (no {', '.join(missing)} column; the header "
            f"is {', '.join(repr(h) for h in header[:6] if h) or 'empty'}): export it again from Canvas "
            "(Grades > Export), or name the columns Student, ID, SIS User ID, SIS Login ID, Section"
        )
    where = {column: header.index(column) for column in IDENTITY if column in header}
    people: list[Person] = []
    given: dict[str, tuple[int, str, Person]] = {}  # an id, casefolded: (line, column, person)
    for line, cells in rows:
        row = {column: cells[i].strip() if i < len(cells) else "" for column, i in where.items()}
        if (
            not row["ID"]
            or "Points Possible" in row["Student"]
            or (row["Student"], row["ID"]) == IDENTITY[:2]
        ):
            continue
        person = Person(*(row.get(column, "") for column in IDENTITY))
        if legacy and (guessed := [i for i in dataclasses.astuple(person)[1:4] if not i.isascii()]):
            raise RosterError(
                f"{path}, line {line}: not UTF-8, and the id {guessed[0]!r} is not ASCII: read as "
                f"Windows-1252 it may not be the id Canvas has; {SAVE_AS}"
            )
        if person in people or person.name == "Student, Test":
            continue
        for column, value in zip(IDENTITY[1:4], dataclasses.astuple(person)[1:4], strict=True):
            if value and (earlier := given.setdefault(value.casefold(), (line, column, person)))[2] != person:
                raise RosterError(_one_id_twice(path, earlier, (line, column, person), value))
        people.append(person)
    if legacy:
        print(
            f'note: {path.name} is not UTF-8: read as Windows-1252 (Excel\'s "CSV (Comma delimited)"), '
            "whose ids match Canvas's; a name with letters of another code page may show wrong in the "
            f"reports. To silence this, {SAVE_AS}",
            file=sys.stderr,
        )
    return people


def _one_id_twice(
    path: Path, earlier: tuple[int, str, Person], later: tuple[int, str, Person], value: str
) -> str:
    (first, column, one), (second, _, other) = earlier, later
    differ = "; ".join(
        f"{field} {a!r} and {b!r}"
        for field, a, b in zip(IDENTITY, dataclasses.astuple(one), dataclasses.astuple(other), strict=True)
        if a != b
    )
    return (
        f"{path}, lines {first} and {second}: two students with the {column} {value!r} (they differ in: "
        f"{differ}): an id names one student, so a grade could not be matched to either. Keep one row "
        "for each student, or export the roster again from Canvas (Grades > Export)"
    )


def roster_titles(path: Path) -> list[str]:
    """The assignment columns of a Canvas gradebook export: the titles that end with an id."""
    return [title for title in _roster_table(path)[0] if TITLE_ID.search(title)]


def unknown_column(title: str, titles: list[str]) -> bool:
    """Whether Canvas would take ``title`` for a new assignment, its import matching a column to
    one of the roster's ``titles`` by the id in it (or, without one, by the whole title)."""
    ids = {TITLE_ID.search(t)[1] for t in titles}
    found = TITLE_ID.search(title)
    return found[1] not in ids if found else title not in titles


def match(student: str, roster: list[Person]) -> Person | None:
    """The roster entry whose Canvas ID or SIS id is the grader's student id: exactly, else but for
    case, else the one whose SIS login is an e-mail address with the id before its @."""
    for same in (
        lambda i: i == student,
        lambda i: i.casefold() == student.casefold(),
        lambda i: "@" in i and i.partition("@")[0].casefold() == student.casefold(),
    ):
        found = [person for person in roster if any(same(i) for i in person.ids())]
        if len(found) == 1:
            return found[0]
    return None


def canvas_rows(
    people: dict[str, Person], finals: dict[tuple[str, str], float], columns: dict[str, str]
) -> list[dict]:
    """Canvas import rows: ``people`` by student id, ``columns`` the title of each assignment's
    column, ``finals`` the score of each (student, assignment) after the late penalty."""
    rows = []
    for student, person in sorted(people.items(), key=lambda item: (item[1].name.lower(), item[0])):
        row = dict(
            zip(
                IDENTITY,
                (person.name, person.canvas_id, person.sis_user_id, person.sis_login_id, person.section),
                strict=True,
            )
        )
        for assignment, title in columns.items():
            score = finals.get((student, assignment))
            row[title] = "" if score is None else f"{score:g}"
        rows.append(row)
    return rows
