"""Late work: how late a submission is, and what that costs under the term's policy.

The idea is nbgrader's ``LateSubmissionPlugin`` (a penalty computed from the submission time and
the due date, taken off the notebook's score, never below zero), with the policy instructors
usually write down: a percentage of the assignment's points for every day late or part of a day,
a cap, and a grace period. It is applied when reports are made, from the submission time kept
in the gradebook, so changing a due date or the policy never needs a regrade.

Where the time comes from is kept with it (``time_source``): nbgrader's exchange and Blackboard's
file names carry the submission time; a Canvas export carries only its own verdict (``_LATE_`` in
the file name), so there the LMS decides whether a submission is late and the file's time, when
it is later than the due date, says by how much. The exchange's times are written on the
student's account; with the term's ``late.trust_ctime``, a collected file's ctime bounds them
(``lms.describe``), so a stamp set back lowers no penalty.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from .settings import LatePolicy

DAY = 86400.0


@dataclass(frozen=True)
class Lateness:
    days: int  # days late, a part of a day counting as a day; 0 when on time
    penalty: float  # points taken off the assignment's score
    note: str  # how it was decided, for the reports ("" when there is nothing to say)


ON_TIME = Lateness(0, 0.0, "")


def assess(
    policy: LatePolicy,
    due: datetime | None,
    submitted: datetime | None,
    lms_late: bool | None,
    score: float,
    max_score: float,
    extended: bool = False,
) -> Lateness:
    """The lateness of one submission of one assignment and its penalty (``score`` is the points
    earned before the penalty). With an ``extended`` due date (the student's own, in
    ``course.toml``) the LMS's verdict, made against its due date, does not apply: the time does."""
    days, note = _days_late(policy, due, submitted, None if extended else lms_late)
    if days == 0:
        return Lateness(0, 0.0, note)
    percent = 0.0 if policy.policy == "none" else min(policy.max_penalty, policy.penalty_per_day * days)
    return Lateness(days, round(min(score, max_score * percent / 100), 6), note)


def _days_late(
    policy: LatePolicy, due: datetime | None, submitted: datetime | None, lms_late: bool | None
) -> tuple[int, str]:
    if lms_late is False:
        return 0, ""
    seconds = (submitted - due).total_seconds() if due and submitted else None
    if seconds is not None and seconds > policy.grace_minutes * 60:
        days = math.ceil(seconds / DAY)
        note = f"{days} day{'s' * (days > 1)} late (due {_show(due)}, submitted {_show(submitted)})"
        if submitted > datetime.now(UTC):  # still counted: a time that did not count could hide lateness
            note += (
                "; the submission time is after this report was made: a clock set wrong, or a time written "
                "by hand; check it"
            )
        return days, note
    if lms_late:
        return 1, f"late according to the LMS{_why_one_day(policy, due, submitted)}: counted as 1 day"
    if seconds is not None and seconds > 0:
        return 0, f"within the {policy.grace_minutes:g}-minute grace period"
    return 0, ""


def _why_one_day(policy: LatePolicy, due: datetime | None, submitted: datetime | None) -> str:
    """Why a submission the LMS calls late counts as one day: what the time known says."""
    if submitted is None:
        return ", whose export has no submission time"
    if due is None:
        return ", and no due date is set to count days from"
    within = (
        f"within the {policy.grace_minutes:g}-minute grace period after" if submitted > due else "not after"
    )
    return (
        f", though the file's time ({_show(submitted)}) is {within} the due date ({_show(due)}): a time"
        " the LMS does not keep (a copy's, or the file's own), which says nothing of how late"
    )


def _show(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()
