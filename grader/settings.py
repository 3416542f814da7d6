"""The settings an instructor edits for a term: ``OUT/course.toml`` (due dates, extensions, the late
policy, Canvas column titles and roster), next to the gradebook they apply to.

The first grading run into a folder copies the commented template ``grader/course.toml`` there.
The settings are read afresh by every command, so a due date changed after grading changes the
reports at the next ``python -m grader report`` without regrading anybody.
"""

import csv
import shutil
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import course, lms

TEMPLATE = Path(__file__).with_name("course.toml")
FILE = "course.toml"
POLICIES = ("none", "per-day")


class SettingsError(ValueError):
    """A mistake in ``course.toml``; the message names the file and the setting."""


@dataclass(frozen=True)
class LatePolicy:
    policy: str = "none"
    penalty_per_day: float = 10.0  # percent of the assignment's points
    max_penalty: float = 50.0  # percent
    grace_minutes: float = 0.0
    trust_ctime: bool = False  # a folder's files' ctimes bound their submission times (``lms.describe``)


@dataclass(frozen=True)
class Settings:
    timezone: tzinfo | None = None  # None: the machine's local zone
    due: dict[str, datetime] = field(default_factory=dict)
    extensions: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (assignment, student)
    late: LatePolicy = LatePolicy()
    canvas_columns: dict[str, str] = field(default_factory=dict)
    roster: Path | None = None
    people: tuple = ()  # the roster's students (``lms.Person``), read once when the settings load
    canvas_titles: tuple = ()  # the roster's assignment columns, as Canvas titles them
    roster_ids: dict[str, str] = field(default_factory=dict)  # a graded id -> the roster's id for them

    def due_for(self, assignment: str, student: str) -> datetime | None:
        return self.extensions.get((assignment, student), self.due.get(assignment))


def ensure(out: Path) -> Path:
    """``OUT/course.toml``, copied from the template if the folder has none yet."""
    path = out / FILE
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEMPLATE, path)
    return path


def load(out: Path) -> Settings:
    path = out / FILE
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"{path}: not valid TOML: {err}") from None
    term = parse(raw, path)
    check_assignments(term, course.assignments(), path)
    _warn_about_the_machines_zone(raw, path)
    if term.roster:  # read now, before any grading: a roster that cannot be read stops the command
        try:
            people, titles = lms.read_roster(term.roster), lms.roster_titles(term.roster)
            term = replace(term, people=tuple(people), canvas_titles=tuple(titles))
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
            raise SettingsError(f"{path}: canvas.roster: {err}") from None
    check_roster_ids(term, path)
    return term


SECTIONS = {"timezone", "due", "extensions", "late", "canvas", "roster_ids"}
LATE_KEYS = {"policy", "penalty_per_day", "max_penalty", "grace_minutes", "trust_ctime"}


# Where each setting that is not an assignment's or a student's belongs.
PLACES = {"timezone": "at the top of the file, above every [section]", "roster": "in [canvas]"}
PLACES |= {key: "in [late]" for key in LATE_KEYS}


def _misplaced(raw: dict, path: Path) -> None:
    """A setting written under the wrong [section] (``timezone`` added at the end of the file is
    the last section's, in TOML) is named with where it belongs."""
    for section, table in raw.items():
        for key in table if isinstance(table, dict) else ():
            if key in PLACES and PLACES[key] != f"in [{section}]":
                raise SettingsError(
                    f"{path}: {section}.{key}: {key} belongs {PLACES[key]} (in TOML, every line below a "
                    "[section] header is part of that section)"
                )


def parse(raw: dict, path: Path) -> Settings:
    _known(raw, SECTIONS, path, "")
    _misplaced(raw, path)
    _known(_table(raw, "late", path), LATE_KEYS, path, "late.")
    zone = _zone(raw.get("timezone"), path)
    due = {str(a): _when(v, zone, path, f"due.{a}") for a, v in _table(raw, "due", path).items()}
    extensions = {}
    for assignment, students in _table(raw, "extensions", path).items():
        if not isinstance(students, dict):
            raise SettingsError(f'{path}: extensions."{assignment}" must be a table of student = date')
        for student, value in _ids(students, path, f'extensions."{assignment}"').items():
            extensions[(assignment, student)] = _when(value, zone, path, f"extensions.{assignment}.{student}")
    canvas = _table(raw, "canvas", path)
    columns = {str(k): str(v) for k, v in canvas.items() if k != "roster"}
    shared = sorted(title for title, n in Counter(columns.values()).items() if n > 1)
    if shared:
        raise SettingsError(
            f"{path}: two assignments share the Canvas column {shared[0]!r}: each needs its own"
        )
    roster = canvas.get("roster")
    if roster is not None and not (path.parent / str(roster)).is_file():
        raise SettingsError(f"{path}: canvas.roster = {roster!r}: there is no such file in {path.parent}")
    return Settings(
        timezone=zone,
        due=due,
        extensions=extensions,
        late=_late(_table(raw, "late", path), path),
        canvas_columns=columns,
        roster=(path.parent / str(roster)) if roster else None,
        roster_ids={
            str(k): str(v) for k, v in _ids(_table(raw, "roster_ids", path), path, "roster_ids").items()
        },
    )


def _ids(table: dict, path: Path, where: str) -> dict:
    """A table keyed by student ids. TOML reads a bare key with a dot (``alice.smith = ...``, an id
    such as a login or an e-mail address) as a table ``alice`` holding ``smith``: named, with the
    quotes it needs, not taken for a student ``alice`` with a value that is a table."""
    for key, value in table.items():
        if isinstance(value, dict) and value:
            dotted, inner = key, value
            while isinstance(inner, dict) and inner:
                name, inner = next(iter(inner.items()))
                dotted += f".{name}"
            raise SettingsError(
                f'{path}: {where}.{dotted}: an id with a dot in it must be quoted: "{dotted}" = ... (TOML '
                f"reads {dotted} = ... as a table {key!r})"
            )
    return table


def _warn_about_the_machines_zone(raw: dict, path: Path) -> None:
    """Due dates without an offset and no ``timezone``: each command reads them in its machine's
    zone, so a report made on another machine (a laptop abroad, a server in UTC) moves every
    deadline by the difference. Said at every command, with the line that fixes it."""
    if "timezone" in raw:
        return
    dates = list(_table(raw, "due", path).values())
    dates += [v for students in _table(raw, "extensions", path).values() if isinstance(students, dict)
              for v in students.values()]  # fmt: skip
    naive = [v for v in dates if isinstance(v, datetime | str) and _naive(v)]
    if naive:
        here = datetime.now().astimezone()
        print(
            f"warning: {path} sets no timezone: its due dates are read in the zone of the machine each "
            f"command runs on (this one: {here.tzname()}, UTC{_offset(here)}), so a command run on a machine "
            "in another zone moves every deadline. Add the term's zone at the top, such as timezone = "
            '"Europe/London"',
            file=sys.stderr,
        )


def _naive(value: datetime | str) -> bool:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return False
    return value.tzinfo is None


def _known(table: dict, keys: set[str], path: Path, prefix: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise SettingsError(
            f"{path}: {prefix}{unknown[0]} is not a setting (the settings here: "
            f"{', '.join(prefix + key for key in sorted(keys))})"
        )


def check_assignments(term: Settings, assignments, path: Path) -> None:
    """Every assignment ``term`` names (a due date, an extension, a Canvas column) is one of
    ``assignments``: a misspelt one would silently apply to nothing."""
    named = [("due", a) for a in term.due] + [("extensions", a) for a, _ in term.extensions]
    named += [("canvas", a) for a in term.canvas_columns]
    for section, assignment in named:
        if assignment not in assignments:
            raise SettingsError(
                f'{path}: {section}."{assignment}" names no assignment (they are: {", ".join(sorted(assignments))})'
            )
    for (assignment, student), extended in term.extensions.items():
        if assignment not in term.due:  # only that student could be late
            raise SettingsError(
                f'{path}: extensions."{assignment}".{student} extends a due date that [due] does not give: '
                f'add "{assignment}" to [due]'
            )
        if extended < term.due[assignment]:  # a slip of the month or the day: they would be late
            raise SettingsError(
                f'{path}: extensions."{assignment}".{student} = {_shown(extended)} is before the due date it '
                f"extends ({_shown(term.due[assignment])}): {student} would be late by it before anyone "
                "else; write the date they were given"
            )


def _shown(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()


def check_roster_ids(term: Settings, path: Path) -> None:
    """Every id ``[roster_ids]`` gives is one of the roster's: a misspelt one would match nobody."""
    if term.roster_ids and not term.roster:
        raise SettingsError(f"{path}: [roster_ids] needs the roster it names ids of (canvas.roster)")
    for student, given in term.roster_ids.items():
        if lms.match(given, list(term.people)) is None:
            raise SettingsError(
                f'{path}: roster_ids."{student}" = "{given}" is not the Canvas ID, SIS user id or SIS login '
                f"of anyone on the roster {term.roster.name}"
            )


def _table(raw: dict, name: str, path: Path) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{path}: [{name}] must be a table")
    return value


def _zone(name, path: Path) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{path}: timezone {name!r} is not a time zone name such as 'Europe/London'"
        ) from None


def _when(value, zone: tzinfo | None, path: Path, where: str) -> datetime:
    """An aware datetime from a TOML date-time or a string; a naive one is in ``zone``."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SettingsError(
                f'{path}: {where} = "{value}" is not a date such as "2026-10-09 23:59"'
            ) from None
        if len(value.strip()) <= len("2026-10-09"):  # midnight at its start: a day early, if meant as the day
            raise SettingsError(
                f'{path}: {where} = "{value}" has no time of day: write it in full, such as "{value.strip()} 23:59"'
            )
        value = parsed
    if not isinstance(value, datetime):
        raise SettingsError(f'{path}: {where} must be a date and time, such as "2026-10-09 23:59"')
    if value.tzinfo:
        return value
    return _local(value, zone, path, where)


def _local(value: datetime, zone: tzinfo | None, path: Path, where: str) -> datetime:
    """A time without an offset read in ``zone`` (None: this machine's zone), refused where the
    clocks change make it no single instant: a time the clocks skip (02:30 on the day summer time
    starts in most of Europe and America) or one they pass twice (01:30 on the day it ends). Either
    reading would move the deadline by an hour without anyone choosing it, so the instructor does,
    with the time written in full or with its offset."""
    first, second = (
        (value.replace(fold=f, tzinfo=zone) if zone else value.replace(fold=f).astimezone()) for f in (0, 1)
    )
    if first.utcoffset() == second.utcoffset():
        return first
    name = getattr(zone, "key", None) or "this machine's time zone (course.toml sets no timezone)"
    shown = value.strftime("%Y-%m-%d %H:%M")
    back = first.astimezone(UTC).astimezone(zone) if zone else first.astimezone(UTC).astimezone()
    if back.replace(tzinfo=None, fold=0) != value.replace(fold=0):  # the clocks skip it
        raise SettingsError(
            f'{path}: {where} = "{shown}" does not exist in {name}: the clocks skip it that day (they '
            f'go forward). Write a time that exists, such as "{back.strftime("%Y-%m-%d %H:%M")}" (the same '
            f'instant as {value:%H:%M} by the clock before the change), or give it an offset, such as "{shown}{_offset(first)}"'
        )
    raise SettingsError(
        f'{path}: {where} = "{shown}" is ambiguous in {name}: the clocks pass it twice that day (they '
        f'go back). Give it the offset it means: "{shown}{_offset(first)}" for the first time or '
        f'"{shown}{_offset(second)}" for the second'
    )


def _offset(when: datetime) -> str:
    text = when.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def _late(raw: dict, path: Path) -> LatePolicy:
    policy = LatePolicy(
        policy=str(raw.get("policy", "none")),
        penalty_per_day=_number(raw, "penalty_per_day", LatePolicy.penalty_per_day, path, PERCENT),
        max_penalty=_number(raw, "max_penalty", LatePolicy.max_penalty, path, PERCENT),
        grace_minutes=_number(raw, "grace_minutes", LatePolicy.grace_minutes, path, WEEK_MINUTES),
        trust_ctime=raw.get("trust_ctime", False),
    )
    if not isinstance(policy.trust_ctime, bool):
        raise SettingsError(f"{path}: late.trust_ctime must be true or false, not {policy.trust_ctime!r}")
    if policy.policy not in POLICIES:
        raise SettingsError(
            f"{path}: late.policy must be one of {', '.join(POLICIES)}, not {policy.policy!r}"
        )
    return policy


PERCENT = 100
WEEK_MINUTES = 7 * 24 * 60  # a grace period longer than this is a slip (hours or seconds for minutes)


def _number(raw: dict, key: str, default: float, path: Path, most: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= most:
        raise SettingsError(f"{path}: late.{key} must be a number from 0 to {most}, not {value!r}")
    return float(value)
