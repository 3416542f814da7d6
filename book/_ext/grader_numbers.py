"""Sphinx extension: the grader's settings that the instructor guide quotes, read from the grader
when the book is built, so the guide cannot drift from the code it describes.

A page writes ``{{ scorer_pids }}`` (MyST's substitution syntax) where it states a setting.
"""

import nbformat

from grader import __main__ as cli
from grader import autograde, course, exercises, integrity, results, scoring, similarity
from grader.sandbox import bwrap, launch

MiB = 2**20


def _cli_defaults() -> dict:
    """The defaults of ``python -m grader autograde``'s options, by option name."""
    commands = next(a for a in cli.parser()._actions if a.choices and "autograde" in a.choices)
    return {a.dest: a.default for a in commands.choices["autograde"]._actions}


def _copy_scan() -> dict[str, str]:
    """The exercises whose code the copy scan compares with lib's, and those it cannot (lib's code
    too short, once honest code is left out, to tell a copy from an answer)."""
    compared, not_compared = [], []
    for assignment in course.assignments():
        source = nbformat.read(next((course.SOLUTIONS / assignment).glob("*.ipynb")), as_version=4)
        released = nbformat.read(next((course.ROOT / "chapters" / assignment).glob("*.ipynb")), as_version=4)
        names = {name for name, *_ in integrity.compared(released, source, assignment)}
        for test in results.test_cells(source):
            if exercises.get(f"{assignment}/{test.name}").kind != "choice":  # a question is no code
                (compared if test.name in names else not_compared).append(f"`{test.name}`")
    return {"compared_exercises": ", ".join(compared), "uncompared_exercises": ", ".join(not_compared)}


def settings() -> dict[str, str]:
    defaults = _cli_defaults()
    return _copy_scan() | {
        "kgram_size": similarity.K,
        "scan_seconds": integrity.SCAN_SECONDS,
        "min_kgrams": similarity.MIN_KGRAMS,
        "kernel_tmpfs_mib": autograde.TMPFS // MiB,
        "kernel_pids": autograde.PIDS,
        "open_files": f"{launch.OPEN_FILES:,}",
        "first_host_uid": bwrap.HOST_UIDS.start,
        "cpu_default": defaults["cpu"],
        "cpu_floor": f"{cli.CPU_FLOOR:g}",
        "idle_default": defaults["idle"],
        "idle_floor": f"{cli.IDLE_FLOOR:g}",
        "memory_default": defaults["memory"],
        "memory_floor": f"{cli.MEMORY_FLOOR:g}",
        "timeout_default": defaults["timeout"],
        "scorer_pids": scoring.PIDS,
        "scorer_tmpfs_mib": scoring.TMPFS // MiB,
        "max_per_call": f"{scoring.MAX_PER_CALL:g}",
        "max_idle": f"{scoring.MAX_IDLE:g}",
    }


def substitute(app, config):
    config.myst_substitutions = {**config.myst_substitutions, **{k: str(v) for k, v in settings().items()}}


def setup(app):
    app.connect("config-inited", substitute, priority=100)  # before MyST reads its settings
    return {"parallel_read_safe": True, "parallel_write_safe": True}
