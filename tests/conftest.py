"""One class graded once, for every suite that only reads a class's rows.

Grading a class with the real ``python -m grader autograde`` costs a start of its own (the release
built with nbgrader, the scorer's lending, the reports written) on top of each notebook's kernel,
and the workers keep busy best on one long queue. So the suites whose tests read the rows and
files of a class (``test_redteam``, ``test_forging``, ``test_inputs``' bad class and
``test_grading_chapters``) put their students into one zip, graded once with options that suit
them all, and each reads back what concerns its own students (and its own assignment:
``Graded.of``). Each such suite defines
``class_entries()``, the ``(name or ZipInfo, data)`` entries it adds under ``class/``; a name two
suites both add must hold the same bytes (the same honest student serves both); a suite may also
define ``finish_archive(path)``, called on the written zip. Only the suites collected in this
session are graded (running one file grades only its students).

The suites that grade with ``--zero-flagged`` (``test_inputs``, ``test_redteam``) share a second
class the same way (``flagged_entries()``, the ``flagged_class`` fixture). A suite whose claim needs
a class of its own stays apart: other limits (``test_sandbox_class``, ``test_grading``'s 8-second
cells), a rerun or an interrupted run, a gradebook's history (``test_workflow``).

``make test`` runs the suites on one pytest-xdist worker more than the machine has cores (``-n 3``
on two), which take whole groups of tests: each module is one group, so that a module's fixtures
are built once; the suites of the shared class form one group, and so do the book's (``test_book``
builds the editions that ``test_live`` reuses, in one ``_build``). The groups start longest first
(``FIRST``), so that no worker is left with a long one at the end. The worker more than the cores
keeps them busy while a worker's tests wait: for a kernel or a browser to start, a sandbox's limit
of time asleep, a scorer's turn. On this course's two-core machine the same tree took 925 s on two
workers and 785 s on three (2026-12-04); the tests are built for a busy machine (no limit of wall
time decides a result).
"""

import csv
import functools
import importlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.sandbox import turns

ROOT = Path(__file__).resolve().parents[1]
# Each pytest worker grades as if on a machine of its own: a scorer runs alone among the sandboxes
# of its worker's grading runs (``grader.sandbox.turns``), not among the other worker's, whose
# classes belong to other tests. Otherwise each worker's classes would wait on the other's scorers.
os.environ.setdefault(
    turns.VARIABLE, f"/tmp/forwardpass-turns-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)
# Backstops only (the CPU and idle budgets are the defaults): a cell that prints 50 MB must not
# race a wall clock on a busy machine.
OPTIONS = ("--jobs", "2", "--timeout", "900")


@dataclass(frozen=True)
class Graded:
    """What the run left: its folder, grades.csv and integrity.csv as rows, and its stderr."""

    out: Path
    rows: list[dict]
    flagged: list[dict]
    stderr: str

    def of(self, assignment: str) -> list[dict]:
        """The rows a class of ``assignment`` alone would have: its own, and those about files
        (no assignment); not the ``missing`` rows that other suites' assignments add."""
        return [row for row in self.rows if row["assignment"] in (assignment, "")]


HERE = Path(__file__).parent
# Every group over about 10 s, longest first (summed ``--durations`` of a whole run, in seconds on
# this machine, loaded), so that the workers end close together: a worker takes the next group
# when it is done with its own, and the last groups handed out are the shortest. (Before, the
# groups under 20 s followed in the order they were collected, and test_similarity, 75 s, was
# among the last: one worker then ran on alone.)
FIRST = (
    "book",  # 590
    "test_workflow",  # 540
    "shared-class",  # 470
    "test_sandbox_class",  # 450
    "test_catalogue",  # 340
    "test_sandbox",  # 330
    "test_grading",  # 320
    "test_similarity",  # 155
    "test_scoring",  # 75
    "test_exercises",  # 57
    "test_sampling",  # 57
    "test_student_notebooks",  # 44
    "test_diagnosis",  # 41
    "test_feedback_csp",  # 32
    "test_shakespeare",  # 31
    "test_lending",  # 16
    "test_parity",  # 16
    "test_followup",  # 15
    "test_audit",  # 14
    "test_students_tools",  # 13
    "test_worked_toy",  # 12
    "test_identities",  # 11
)


@functools.cache
def group(module: str) -> str:
    """The xdist group of a test module: its own name, or the group of the fixtures it shares
    (a suite that adds students to the shared class defines ``class_entries``)."""
    if module in ("test_book", "test_live"):
        return "book"
    if "\ndef class_entries(" in (HERE / f"{module}.py").read_text(encoding="utf-8"):
        return "shared-class"
    return module


def _group_of(nodeid: str) -> str:
    return group(Path(nodeid.split("::")[0]).stem)


def pytest_collection_modifyitems(items):
    """The tests in the order their groups start (``FIRST``), so that xdist hands them out so."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(_group_of(item.nodeid), len(FIRST)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under ``-n``, each worker runs whole groups (``group``), in the order they are collected."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group_of(nodeid)

    config.option.loadscopereorder = False
    return ByGroup(config, log)


def _suites(session, fixture: str) -> list:
    names = {item.module.__name__ for item in session.items if fixture in item.fixturenames}
    return [importlib.import_module(name) for name in sorted(names)]


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def shared_class(request, tmp_path_factory) -> Graded:
    return _graded_together(request.session, tmp_path_factory.mktemp("shared-class"), "shared_class", OPTIONS)


@pytest.fixture(scope="session")
def flagged_class(request, tmp_path_factory) -> Graded:
    """The students of every suite that grades with ``--zero-flagged`` (each defines
    ``flagged_entries()``, as ``class_entries()`` for the shared class), graded once."""
    base = tmp_path_factory.mktemp("flagged-class")
    return _graded_together(request.session, base, "flagged_class", (*OPTIONS, "--zero-flagged"))


ENTRIES = {"shared_class": "class_entries", "flagged_class": "flagged_entries"}


def _graded_together(session, base: Path, fixture: str, options: tuple) -> Graded:
    """One zip of the entries of every suite collected that uses ``fixture``, graded with ``options``."""
    archive = base / "class.zip"
    suites = _suites(session, fixture)
    entries: dict[str, tuple] = {}
    for suite in suites:
        for info, data in getattr(suite, ENTRIES[fixture])():
            name = info.filename if isinstance(info, zipfile.ZipInfo) else info
            kept = entries.setdefault(name, (suite.__name__, info, data))
            assert kept[2] == data, f"{suite.__name__} and {kept[0]} both add {name}, with different bytes"
    with zipfile.ZipFile(archive, "w") as zf:
        for _, info, data in entries.values():
            zf.writestr(info, data)
    for suite in suites:
        if fixture == "shared_class" and hasattr(suite, "finish_archive"):
            suite.finish_archive(archive)
    out = base / "out"
    command = [sys.executable, "-m", "grader", "autograde", str(archive), "--out", str(out), *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    return Graded(out, _read(out / "grades.csv"), _read(out / "integrity.csv"), done.stderr)
