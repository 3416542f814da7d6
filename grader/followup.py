"""The diagnosis pass: a second scorer run, for the exercises that the first found wrong.

The first run (``grader.scoring``) asks each probe for its cases' outputs only, so a right answer
costs nothing more. For an exercise whose first wrong case came back as a wrong value or an error,
this pass (unless that case is still ``NotImplementedError``: nothing is written to explain) runs
the student's program again (less the statements that ran past their limit the first time, and
ending at the last of its probes, as the first run does), with only those exercises' probes, each asking for
what ``grader.diagnosis`` needs to explain that case (``diagnosis.calls``): the function on every
variant of the case, each of the exercise's helpers on the reference's stations, and the function
once more with its helpers watched. The references of the variants and the stations are computed
live by ``lib`` here, outside the sandbox, as the hidden cases' are.

What comes back changes only a verdict's reason, never its score or status: the student's code
runs in a sandbox as in the first pass, and nothing it returns in this one can earn a point. If the
run fails, stalls or sends nothing, or what it sends cannot be diagnosed, the first pass's reasons
stand.

The stations handed to the helpers are the reference's intermediates of a hidden case: the one
place where something ``lib`` computed on hidden inputs enters a sandbox. That is harmless by
order and by draw, not by trust: every verdict of the notebook is fixed before this pass runs,
the only way out of the sandbox is the reasons of the wrong verdicts (where a hidden case's
errors show their type only, and a wrong value its largest difference and where it is), and
what a student could learn about the hidden cases of one submitted file is of no use to any
other: each file draws its own.
"""

import pickle
from dataclasses import replace

from . import compare, diagnosis, exercises, references
from .compare import Verdict
from .program import skipping, until_last_probe


def explain(
    scorer,
    items: list[dict],
    cases: dict,
    first,
    verdicts: dict[str, Verdict],
    assignment: str,
    allowance=None,
) -> dict[str, Verdict]:
    """``verdicts`` (by grade_id) with the reasons of the wrong ones made more specific.

    ``items`` is the program of the first run and ``cases`` its cases by probe number; ``first`` is
    what that run sent back (a ``scoring.Run``); ``allowance`` (``scoring.Allowances``) what is
    left of the student's time alone on the machine: the second run takes no more, and does not
    run if nothing is left."""
    asked = {}
    for item in items:
        if "exercise" not in item or item["grade_id"] not in verdicts:
            continue
        table = references.for_grading(
            item["exercise"], exercises.get(item["exercise"]), cases[item["probe"]]
        )
        calls = questions(
            item["exercise"],
            cases[item["probe"]],
            first.answers.get(item["probe"], {}),
            table,
            verdicts[item["grade_id"]],
        )
        if calls:
            asked[item["probe"]] = (
                {**item, "calls": [{**c, "inputs": pickle.dumps(c["inputs"])} for c in calls]},
                table,
            )
    if not asked:
        return verdicts
    program = until_last_probe(
        [
            asked[item["probe"]][0] if "exercise" in item else item
            for item in skipping(items, first.timed_out)
            if "exercise" not in item or item["probe"] in asked
        ]
    )
    run = scorer.run(program, assignment, allowance)
    if run is None:  # the first run spent the student's time alone
        return verdicts
    refined = dict(verdicts)
    for number, (item, table) in asked.items():
        grade_id = item["grade_id"]
        refined[grade_id] = refine(
            item["exercise"],
            cases[number],
            first.answers.get(number, {}),
            run.answers.get(number, {}),
            table,
            verdicts[grade_id],
        )
    return refined


def questions(exercise_id: str, cases: list, answers: dict, table, verdict: Verdict) -> list[dict]:
    """The calls that would explain ``verdict`` (none if it is right, not a wrong value or error,
    or for a case that must raise)."""
    exercise = exercises.get(exercise_id)
    if verdict.ok or verdict.status != "wrong" or not verdict.case or exercise.kind == "choice":
        return []
    case = next((c for c in cases if c.name == verdict.case), None)
    answer = answers.get(verdict.case, {})
    if case is None or case.raises is not None or not ("output" in answer or "error" in answer):
        return []
    if answer.get("error", "").startswith("NotImplementedError"):
        return []  # not written yet: nothing to explain, and no second run to pay for
    return [{**call, "hidden": case.hidden} for call in diagnosis.calls(exercise, case, table)]


def refine(exercise_id: str, cases: list, answers: dict, more: dict, table, before: Verdict) -> Verdict:
    """``before`` with the reason the answers to ``questions`` (``more``) give it."""
    names = {case.name for case in cases}
    try:
        again = compare.grade(
            exercise_id, cases, {**answers, **{k: v for k, v in more.items() if k not in names}}, table
        )
    except Exception:  # on what the student's code sent back: the first pass's reason stands
        return before
    if again.ok or again.case != before.case:
        return before
    return replace(before, reason=again.reason)
