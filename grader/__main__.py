"""The instructor's commands: ``python -m grader COMMAND --help`` says what each one does."""

import argparse
import errno
import math
import sqlite3
import sys
from pathlib import Path

from . import spelling, submissions

AUTOGRADE_HELP = f"""\
Grade a class with nbgrader: every student in a process of their own, --jobs at a time
(or on a Dask cluster of the course's own with --scheduler), every notebook's kernel in a sandbox (bubblewrap:
only the course's public files, no network, nothing left running; per notebook --cpu seconds
of CPU time, --idle seconds asleep and --memory GiB for the kernel and all it starts). The
scores come from a second sandboxed process per notebook that calls the student's functions on
the visible cases and on hidden ones drawn from OUT/.secret (made on the first run; keep it to
regrade with the same cases: once the gradebook holds grades, a lost one is made again only with
--new-secret), compared outside it with references lib computes. Without a
sandbox (bubblewrap missing, not Linux) it refuses to run students' code unless --no-sandbox.

Every run adds to the class gradebook OUT/grades.sqlite: it grades only the submissions it finds
(narrowed by --student and --assignment) and keeps every other grade. Notebooks already graded
with the same file are skipped unless --force. Then every report is made from the gradebook:
OUT/grades.csv, totals.csv, integrity.csv (what deserves a look, with evidence, and pairs of
students with near-identical code; scores are kept unless --zero-flagged), canvas.csv,
summary.html, feedback/<student>/, and nbgrader's copy OUT/gradebook.db (for formgrader and
nbgrader export). Due dates and the late policy are in OUT/course.toml. A file that cannot be
graded (an unsafe zip entry, a link, a second notebook for the same student) is a warning and a
row of grades.csv; the rest of the class is graded. The instructor guide describes every file
and column.

{submissions.__doc__.partition(chr(10) * 2)[2]}"""


def above_zero(kind: type, unit: str):
    """An argparse type: a finite number of ``kind`` above 0. A budget of 0, a negative or NaN one
    lets no kernel run: every notebook would be graded 0, as complete, and skipped by the next run."""

    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            whole = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {whole}{unit} above 0, not {text!r}")
        return value

    return read


def at_least(kind: type, unit: str, floor: float):
    """An argparse type: ``above_zero``, and at least ``floor`` (with less, an honest notebook
    would lose points to the limit, blamed on the student)."""

    def read(text: str):
        value = above_zero(kind, f" of {unit}")(text)
        if value < floor:
            raise argparse.ArgumentTypeError(
                f"must be at least {floor:g} {unit}, not {text!r}: with less, an honest notebook runs out "
                f"of {'memory' if unit == 'GiB' else 'time'} and loses points for it"
            )
        return value

    return read


# Below these, the course's own solutions lost points, blamed on the student (and a --force regrade
# replaced their full marks): with --memory 0.05 to a MemoryError (0.1 was the least that kept them
# for chapter 1; a kernel holds about 0.1 GiB with NumPy before a student's first line); with --cpu
# 0.01 to timeouts (each call may use a third of --cpu; a chapter's solution takes about 5 s); with
# --idle 1 to a timeout now and then (each call may use a quarter of --idle, ``scoring.Limits.beside``:
# 0.25 s, and chapter 4's ``sample_next`` took 0.2 to 0.25 s on its ``frequencies`` case; at 0.8,
# always). At 4, a call gets 1 s.
MEMORY_FLOOR = 0.5
CPU_FLOOR = 10
IDLE_FLOOR = 4


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m grader",
        description="The instructor's commands for Forward Pass: "
        "release the notebooks, grade a class, and keep its gradebook. `python -m grader COMMAND --help` says more.",
    )
    commands = main.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate chapters/ from solutions/ with nbgrader")
    release.add_argument(
        "--check", action="store_true", help="write nothing; fail if anything is out of date"
    )

    grade = commands.add_parser(
        "autograde",
        help="grade a folder or .zip of submissions",
        description=AUTOGRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grade.add_argument("submissions", type=Path, help="a folder or a .zip of student notebooks")
    grade.add_argument("--out", type=Path, default=Path("grading"), help="output folder (default: grading)")
    grade.add_argument(
        "--jobs",
        type=above_zero(int, ""),
        help="students graded at once (default: the cores this process may use, as many as the "
        "machine's memory holds with --memory each)",
    )
    grade.add_argument(
        "--cpu",
        type=at_least(float, "seconds", CPU_FLOOR),
        default=60,
        help="seconds of CPU time per notebook, for the kernel and every process it starts (default: 60, "
        f"at least {CPU_FLOOR:g})",
    )
    grade.add_argument(
        "--idle",
        type=at_least(float, "seconds", IDLE_FLOOR),
        default=60,
        help="seconds a notebook's kernel may spend asleep, neither computing nor waiting for a "
        f"CPU (default: 60, at least {IDLE_FLOOR:g})",
    )
    grade.add_argument(
        "--memory",
        type=at_least(float, "GiB", MEMORY_FLOOR),
        default=3,
        help=f"GiB of memory per notebook, for the kernel and every process it starts (default: 3, at "
        f"least {MEMORY_FLOOR:g})",
    )
    grade.add_argument(
        "--timeout",
        type=above_zero(int, " of seconds"),
        default=300,
        help="seconds of wall-clock time per cell before it is interrupted: a backstop, the "
        "budgets above are the limits that count (default: 300)",
    )
    grade.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run students' code without the sandbox, where there is none (another OS): it can "
        "then read and change anything the grader can; only for code you trust",
    )
    grade.add_argument(
        "--force", action="store_true", help="regrade notebooks already graded with the same file"
    )
    grade.add_argument(
        "--new-secret",
        action="store_true",
        help="draw hidden cases from a new OUT/.secret when it is lost, or from another one put in its "
        "place (refused without this once the gradebook holds grades); the grades kept stay",
    )
    grade.add_argument(
        "--zero-flagged",
        action="store_true",
        help="score 0 for every exercise with an integrity finding (default: report them only)",
    )
    grade.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="ID",
        help="grade only this student (repeatable); give it to grade one student's folder alone",
    )
    grade.add_argument(
        "--assignment",
        action="append",
        default=[],
        metavar="NAME",
        help="grade only this assignment (repeatable)",
    )
    grade.add_argument(
        "--scheduler",
        metavar="tls://HOST:8786",
        help="run the students on this Dask scheduler's workers instead of here: a cluster only the "
        "course's machines can join (cluster-keys; see the instructor guide)",
    )

    adjust = commands.add_parser(
        "adjust",
        help="set or clear the instructor's score for one exercise of one student",
        description="Override the computed score of one exercise. The override is kept in the gradebook "
        "with its reason, shown in every report and on the student's feedback page, and survives regrades.",
    )
    adjust.add_argument("student")
    adjust.add_argument("exercise", help="the exercise, e.g. embed or 01-embeddings/embed")
    adjust.add_argument("score", nargs="?", type=float, help="the score to give (omit with --clear)")
    adjust.add_argument("--reason", help="why (required unless --clear): shown to the student")
    adjust.add_argument(
        "--clear", action="store_true", help="remove the override: the computed score counts again"
    )
    adjust.add_argument("--out", type=Path, default=Path("grading"), help="grading folder (default: grading)")

    for name, help, undo in (  # undo: the command this one undoes
        (
            "merge-student",
            "count everything graded under one id as another's (a student who submitted under two)",
            "",
        ),
        ("unmerge-student", "undo merge-student: the id is its own student again", "merge-student"),
        ("remove-student", "leave a student out of every report (one who dropped the course)", ""),
        ("restore-student", "undo remove-student: the student is in the reports again", "remove-student"),
    ):
        change = commands.add_parser(
            name,
            help=help,
            description=f"{help[0].upper()}{help[1:]}. Nothing graded is changed or deleted: the change is added "
            "to the gradebook's history with its reason, who made it and when, and every report is made "
            "again from the gradebook."
            + (
                " The other id's overrides follow the student; where both ids submitted one notebook, the "
                "later submission counts (then the one graded later) and the other is a duplicate_submission "
                "row of grades.csv."
                if name == "merge-student"
                else ""
            ),
        )
        given = {
            "merge-student": "the id that goes: what was graded under it counts as INTO's",
            "remove-student": "the id, as the reports give it",
        }
        change.add_argument("student", help=given.get(name, f"the id, as {undo} gave it"))
        if name == "merge-student":
            change.add_argument("into", help="the id that stays: the student's other id")
        change.add_argument("--reason", required=True, help="why: kept in the gradebook with the change")
        change.add_argument(
            "--out", type=Path, default=Path("grading"), help="grading folder (default: grading)"
        )

    report = commands.add_parser(
        "report",
        help="remake every report of a grading folder from its gradebook and print the class summary",
    )
    report.add_argument("--out", type=Path, default=Path("grading"), help="grading folder (default: grading)")

    keys = commands.add_parser(
        "cluster-keys",
        help="make the keys of a Dask grading cluster that only the course's machines can join",
        description="Make, in KEYS, the course's certificate authority (ca.pem; its key is not kept), "
        "one certificate it signed for every machine of the cluster (course.pem, keep it secret) and "
        "a Dask configuration (dask.yaml) that makes every connection TLS with both sides shown. Copy "
        "KEYS to the same path on every machine; run the scheduler, the workers and autograde "
        "--scheduler tls://HOST:8786 with DASK_CONFIG=KEYS (see the instructor guide).",
    )
    keys.add_argument("keys", type=Path, metavar="KEYS", help="the folder to make (it must not exist)")

    # Its options (--check, --only, -h) are grader.references.main's.
    commands.add_parser("references", help="regenerate the reference outputs from lib", add_help=False)
    return main


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args, rest = cli.parse_known_args(argv)
    if args.command == "references":
        from . import references

        return references.main(rest) or 0
    if rest:
        command = next(a for a in cli._actions if isinstance(a, argparse._SubParsersAction)).choices[
            args.command
        ]
        options = [option for action in command._actions for option in action.option_strings]
        meant = [
            f"{word}: did you mean {' or '.join(near)}?"
            for word in rest
            if word.startswith("-") and (near := spelling.closest(word.split("=")[0], options, n=2))
        ]
        command.error(
            f"unrecognized arguments: {' '.join(rest)}" + (f" ({'; '.join(meant)})" if meant else "")
        )
    if args.command == "release":
        from . import release

        return release.main(check=args.check)
    if args.command == "cluster-keys":
        return cluster_keys(args.keys)
    from . import gradebook, settings
    from .distributed import SchedulerError

    if problem := not_a_folder(args.out):
        print(f"error: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    try:
        if args.command == "adjust":
            from . import adjust

            return adjust.main(args.out, args.student, args.exercise, args.score, args.reason, args.clear)
        if args.command in ("merge-student", "unmerge-student", "remove-student", "restore-student"):
            from . import adjust

            action = args.command.removesuffix("-student")
            return adjust.identity(args.out, action, args.student, getattr(args, "into", ""), args.reason)
        if args.command == "report":
            from . import adjust

            return adjust.report(args.out)
        return autograde(args, argv)
    except (gradebook.GradebookError, settings.SettingsError, SchedulerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as err:
        if not (message := disk_refusal(err, args.out) or damage(err, args.out)):
            raise
        print(message, file=sys.stderr)
        return 2


def damage(err: BaseException, out: Path) -> str:
    """What to tell the instructor when SQLite finds the gradebook damaged once a command is under
    way (``gradebook.Gradebook`` checks it when it opens it); empty for any other error."""
    if not getattr(err, "sqlite_errorname", "").startswith("SQLITE_CORRUPT"):
        return ""
    from . import gradebook

    path = out.resolve() / gradebook.FILE
    return f"error: {path} is damaged ({err}): {gradebook.restore_hint(out.resolve())}"


def not_a_folder(out: Path) -> str:
    """Why ``out`` cannot be the grading folder (it, or a folder it would be made in, is a file:
    ``--out grading/grades.csv``), or ``""``."""
    for path in (out, *out.parents):
        if path.exists():
            return "" if path.is_dir() else f"{path} is a file, not a folder: give the grading folder"
    return ""


# What a full disk, a quota or a folder that cannot be written raise, from a file or from SQLite;
# a permission refused (EACCES, EPERM) may be a file that cannot be read as well.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM}
DISK_SQLITE = {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR"}


def disk_refusal(err: BaseException | None, out: Path) -> str:
    """What to tell the instructor when ``err``, or an error it was raised while handling, is the
    disk's or the file system's refusal; empty if it is not."""
    kept = (
        f"Every notebook graded before this is kept in the gradebook of {out}. {{fix}}, then run the "
        "same command again: it goes on from there."
    )
    while err is not None:
        if isinstance(err, OSError) and err.errno in PERMISSION_ERRNOS:
            fix = "Give your account read and write access to it"
            return f"error: permission denied for a file or folder ({err}). {kept.format(fix=fix)}"
        name = getattr(err, "sqlite_errorname", "")  # extended codes add to it: SQLITE_IOERR_WRITE
        if (isinstance(err, OSError) and err.errno in DISK_ERRNOS) or any(
            name == code or name.startswith(f"{code}_") for code in DISK_SQLITE
        ):
            fix = "Make room there (or make that folder writable)"
            return f"error: a file cannot be written ({err}). {kept.format(fix=fix)}"
        err = err.__context__
    return ""


def cluster_keys(folder: Path) -> int:
    from . import distributed

    if folder.exists():
        print(
            f"error: {folder} exists: give a new folder (keys already made stay as they are)", file=sys.stderr
        )
        return 2
    keys = distributed.make_keys(folder)
    print(
        f"made {keys}: ca.pem, course.pem (secret: whoever holds it can join the cluster) and dask.yaml.\n"
        f"Copy {keys} to the same path on every machine of the cluster, then:\n"
        f"  export DASK_CONFIG={keys}\n"
        "  dask scheduler --host HOST --port 8786 --protocol tls      # on the coordinating machine\n"
        "  DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker tls://HOST:8786 --nthreads 1 --memory-limit 0\n"
        "  python -m grader autograde SUBMITTED --out OUT --scheduler tls://HOST:8786"
    )
    return 0


def autograde(args: argparse.Namespace, argv: list[str] | None) -> int:
    from . import autograde, reports

    if not args.submissions.exists():
        print(f"no such file or folder: {args.submissions}", file=sys.stderr)
        return 2
    try:
        outcome = autograde.autograde(
            args.submissions,
            args.out,
            jobs=max(1, args.jobs or autograde.default_jobs(int(args.memory * 2**30))),
            timeout=args.timeout,
            cpu=args.cpu,
            idle=args.idle,
            memory=int(args.memory * 2**30),
            sandboxed=not args.no_sandbox,
            force=args.force,
            selection=autograde.Selection(frozenset(args.student), frozenset(args.assignment)),
            scheduler=args.scheduler,
            command=" ".join(["python -m grader", *(sys.argv[1:] if argv is None else argv)]),
            zero_flagged=args.zero_flagged,
            new_secret=args.new_secret,
        )
    except submissions.SubmissionsError as err:
        print(err, file=sys.stderr)
        return 2
    except autograde.SandboxUnavailable as err:
        print(
            f"cannot grade: students' code needs a sandbox and there is none here: {err}. "
            "Pass --no-sandbox to grade without one (only for code you trust).",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish", file=sys.stderr)
        return 130
    print(reports.summary_text(outcome.view))
    view = outcome.view
    statuses = {}
    for line in view.lines:
        statuses[line.row.status] = statuses.get(line.row.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    print(
        f"graded {outcome.graded} notebook(s) this run; the gradebook has {len(view.people)} students, "
        f"{len(view.lines)} rows ({summary}): {args.out / 'grades.csv'}"
    )
    if outcome.others_changed:
        print(
            "WARNING: this run changed grades outside what it selected to grade; this is a bug: "
            f"compare {args.out / 'grades.csv'} with the previous run's history in grades.sqlite",
            file=sys.stderr,
        )
    else:
        print("every grade outside this run's selection is unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
