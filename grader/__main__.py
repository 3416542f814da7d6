"""``python -m grader {release,autograde,references}``: the instructor's commands."""

import argparse
import os
import sys
from pathlib import Path

from . import submissions

AUTOGRADE_HELP = f"""\
Grade a class with nbgrader: every student in a sandboxed process of their own, --jobs at a time.
The scores come from a second sandboxed process per notebook that calls the student's functions on
the visible cases and on hidden ones drawn from OUT/.secret (made on the first run; keep it to
regrade with the same cases), compared outside it with references lib computes.

Writes OUT/grades.csv (student, assignment, exercise, score, max_score, status, reason),
OUT/integrity.csv, OUT/feedback/<student>/<assignment>.html, OUT/autograded/ and the class
gradebook OUT/gradebook.db (for nbgrader export and formgrader). Students already graded with the
same files are skipped unless --force.

{submissions.__doc__.partition(chr(10) * 2)[2]}"""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
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
        "--jobs", type=int, default=os.cpu_count() or 1, help="students graded at once (default: cores)"
    )
    grade.add_argument(
        "--timeout",
        type=int,
        default=20,
        help="seconds per cell before it is interrupted, and of CPU time per statement or call when scored "
        "(default: 20)",
    )
    grade.add_argument(
        "--memory", type=float, default=3, help="GiB of address space for a kernel (default: 3)"
    )
    grade.add_argument("--force", action="store_true", help="regrade students already graded")

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
        cli.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "release":
        from . import release

        return release.main(check=args.check)
    return autograde(args)


def autograde(args: argparse.Namespace) -> int:
    from . import autograde

    if not args.submissions.exists():
        print(f"no such file or folder: {args.submissions}", file=sys.stderr)
        return 2
    try:
        rows = autograde.autograde(
            args.submissions,
            args.out,
            jobs=max(1, args.jobs),
            timeout=args.timeout,
            memory=int(args.memory * 2**30),
            force=args.force,
        )
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish", file=sys.stderr)
        return 130
    statuses = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    print(
        f"{len({r.student for r in rows})} students, {len(rows)} rows ({summary}): {args.out / 'grades.csv'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
