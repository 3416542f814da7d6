"""Running students' code: a bubblewrap sandbox per process tree, with limits for the whole tree.

Threat model: a student controls every byte of their notebook and runs any code, shell magics
included, for as long as the limits allow. What runs in a sandbox must not read anything but the
course's public files and its own working folder, write anything but that folder (a capped tmpfs)
and the folders the grader hands it (a kernel's socket folder), reach the network, the grader or
another sandbox (processes, signals, ptrace, sockets, locks and watches on the files they
share), gain a capability or a user namespace, or leave anything running; and it shares the
machine fairly.

What no sandbox can hide is the machine itself: two sandboxes alive at once share its kernel's
counters (threads, open files, inodes, free memory, CPU time and pressure, read in ``/proc`` or
through ``sysinfo``), its CPUs and caches (what one computes slows the other) and free space, and
any of these carries bits from one to the other (a count of open files, about 100 a second on
two cores). Masking them would be a list without end. So the grader makes sure that who must
not talk is never alive at once (``turns``): a scorer, which holds a student's hidden inputs,
runs alone on the machine; every other sandbox (a kernel: the whole ``lib``, nothing hidden)
runs beside others. A student's own sandboxes run one after the other anyway.

The pieces:

- ``bwrap``: the file system and namespaces (an allow-list root, see its docstring);
- ``cgroup``: memory, processes and CPU time of the whole tree;
- ``launch``: the supervisor, a trusted process outside the sandbox that starts bubblewrap in the
  group, enforces the CPU, idle and wall-clock budgets, kills the tree and writes a report.

- ``report``: the supervisor's report, and the files through which a grader talks to it;
- ``turns``: which sandboxes may be alive at the same time on this machine (``alone``,
  ``beside``), and how long a grading process waited for its turn (``count_waits``).

``interpreter(view.python)`` is the Python to name in a sandboxed command line: the virtual
environment's for ``"full"``, the base installation's for ``"minimal"``.

This module is the interface: ``Limits`` and ``View`` describe a sandbox; ``wrap`` gives the
command line that runs a program in one (what a kernelspec holds: ``install_kernel``), ``run``
runs a program to its end and returns its outcome; ``finish`` completes a report (and removes
what is left) after the supervisor was killed; ``describe`` says in words which limit ended a
sandbox; ``scope`` groups a run's sandboxes so that a run can remove all of them at once;
``seal`` makes a writable folder read-only to the sandbox once its program no longer needs to
write there (a kernel's socket folder, once the kernel is ready); ``available`` says why there is no sandbox here, if there is none, and ``not_enforced`` what the
limits cannot cover.
"""

import json
import marshal
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path

from . import bwrap, cgroup
from .bwrap import interpreter
from .cgroup import SCOPE_VARIABLE
from .report import (
    REPORT_SUFFIX,
    cell_ends,
    cell_flag,
    cell_starts,
    describe,
    finish,
    finish_all,
    killed_from_outside,
    limit_from_events,
    read_report,
    report_for,
)
from .turns import alone, beside, count_waits

__all__ = [
    "KERNEL_NAME",
    "Limits",
    "Outcome",
    "View",
    "alone",
    "available",
    "beside",
    "cell_ends",
    "cell_flag",
    "cell_starts",
    "count_waits",
    "describe",
    "finish",
    "finish_all",
    "install_kernel",
    "interpreter",
    "killed_from_outside",
    "limit_from_events",
    "not_enforced",
    "read_report",
    "report_for",
    "run",
    "scope",
    "seal",
    "wrap",
]

KERNEL_NAME = "forwardpass-sandbox"
HERE = os.path.dirname(os.path.abspath(__file__))  # this package's folder
# The supervisor's start (``launch``): the modules of this package it needs, under empty modules
# standing for ``grader`` and this package, so that their ``__init__`` files (dataclasses, ``json``,
# ``subprocess``) never run there.
SUPERVISOR = (
    "import sys; module = type(sys); sys.modules['grader'] = module('grader'); "
    f"package = sys.modules['grader.sandbox'] = module('grader.sandbox'); package.__path__ = [{HERE!r}]; "
    "from grader.sandbox.launch import main; sys.exit(main(sys.argv[1:]))"
)
GiB = 2**30
_seccomp_filter = cache(bwrap.seccomp_filter)  # the same for every sandbox
job_filter = cache(bwrap.job_filter)  # the same for every scorer (grader.scoring)


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use, for its whole process tree."""

    memory: int  # bytes, the tree's RAM and its tmpfs pages together
    pids: int  # processes and threads at once
    cpu_seconds: float  # CPU time of the tree, all processes together
    wall_seconds: float  # elapsed time: the backstop
    tmpfs: int  # bytes writable in the sandbox (/tmp: the working folder and home)
    file_size: int  # the largest file a process may write, and what stdout/stderr may carry
    threads: int = 1  # BLAS/OpenMP threads, set in the environment
    idle_seconds: float = math.inf  # time asleep (neither running nor waiting for a CPU)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class View:
    """What a sandbox sees beyond the system's programs and libraries."""

    read_only: tuple[Path, ...] = ()  # host paths, visible read-only at the same path
    writable: tuple[Path, ...] = ()  # host folders, writable (keep it to a kernel's socket folder)
    env: Mapping[str, str] = field(default_factory=dict)  # variables beyond the sandbox's own
    python: str = "full"  # "full": installation and virtual environment; "minimal": standard library
    read_only_at: Mapping[str, Path] = field(default_factory=dict)  # path inside -> host file
    work: Path | None = None  # folder whose entries show read-only in the working folder;
    # a relative path is the supervisor's working directory (a kernel's: its notebook's folder)

    def as_dict(self) -> dict:
        return {
            "read_only": [str(p) for p in self.read_only],
            "writable": [str(p) for p in self.writable],
            "env": dict(self.env),
            "python": self.python,
            "read_only_at": {inside: str(host) for inside, host in self.read_only_at.items()},
            "work": None if self.work is None else str(self.work),
        }


@dataclass(frozen=True)
class Outcome:
    returncode: int  # the program's exit status (128 + signal if a signal ended it)
    report: dict  # the supervisor's report (see ``describe``)
    stdout: bytes
    stderr: str  # its last 64 KiB


def wrap(
    argv: list[str],
    view: View,
    limits: Limits,
    report: Path | str,
    *,
    copies: tuple[str, ...] = (),
    keep: tuple[int, ...] = (),
    relay: int | None = None,
    idle_in_cells: bool = False,
    isolate: bool = True,
) -> list[str]:
    """The command line that runs ``argv`` in a sandbox under a supervisor, which writes its
    report to ``report``. ``copies`` are host files written read-only into the sandbox at their
    path (a path may be a template such as ``{connection_file}``); ``relay`` caps the bytes of
    stdout and stderr passed on (default: ``limits.file_size``); ``keep`` are descriptors passed
    through to the program. With ``idle_in_cells``, time asleep counts only while a cell runs
    (between ``cell_starts`` and ``cell_ends``). ``isolate=False`` runs the program with the
    limits and the cleared environment but without bubblewrap (``--no-sandbox``)."""
    python = bwrap.python(view.python)  # here: the supervisor runs without site, venv unknown
    bins = [os.path.dirname(bwrap.interpreter(view.python))] if view.python == "full" else []
    spec = {
        "view": view.as_dict(),
        "limits": limits.as_dict(),
        "python": python,
        "hidden": bwrap.hidden(view.python),
        "env": bwrap.environment(view, limits, bins),
        "isolate": isolate,
        "seccomp": _seccomp_filter() if isolate else b"",  # here: the supervisor has no site-packages
        "idle": "cells" if idle_in_cells else "always",
        "relay": limits.file_size if relay is None else relay,
    }
    options = ["--spec", marshal.dumps(spec).hex(), "--report", str(report)]
    for path in copies:
        options += ["--copy", path]
    if keep:
        options += ["--keep", ",".join(map(str, keep))]
    return [sys.executable, "-I", "-S", "-c", SUPERVISOR, *options, "--", *argv]


# The folders of ``run``'s reports, in the temporary folder, named after the process that runs it
# (``<RUN_REPORTS><pid>-<random>``): one a grader killed outright left is ``grader.course.scratch``'s
# to reap, with the sandbox its report names.
RUN_REPORTS = "sandbox-report-"


def run(
    argv: list[str],
    view: View,
    limits: Limits,
    *,
    pass_fds: tuple[int, ...] = (),
    timeout: float | None = None,
    isolate: bool = True,
) -> Outcome:
    """Run ``argv`` in a sandbox to its end (or its limits'); ``timeout`` (default: the wall
    budget plus a margin) stops the supervisor in any case. ``pass_fds`` are passed to the
    program, through the supervisor and bubblewrap."""
    with tempfile.TemporaryDirectory(prefix=f"{RUN_REPORTS}{os.getpid()}-") as folder:
        report = Path(folder) / f"run{REPORT_SUFFIX}"
        command = wrap(argv, view, limits, report, keep=pass_fds, isolate=isolate)
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout or limits.wall_seconds + 30)
        except subprocess.TimeoutExpired:
            process.terminate()
            stdout, stderr = process.communicate()
        return Outcome(process.returncode, finish(report), stdout, stderr[-65536:].decode(errors="replace"))


# The kernel's first step, before ipykernel starts (``install_kernel``): a Landlock domain of its
# own, handling one right nothing uses (making block devices), so that the kernel and its children
# can neither trace nor open ``/proc/PID/mem`` of bubblewrap's init (pid 1, dumpable, same user):
# code written there could clear its death signal and outlive the supervisor where no cgroup ends
# the tree (red team, round 11; the scorer's jobs do the same, ``harness.apart``). Fails closed.
# The notebook's folder ("" for ``-c``) leaves ``sys.path`` first, so that no file of the student's
# stands in for a module imported before the domain; IPython's ``init_path`` puts it back.
KERNEL_ALONE = """import sys
del sys.path[0]
import runpy
from grader.harness import apart
apart()
del sys, apart
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""


def install_kernel(directory: Path, view: View, limits: Limits, *, isolate: bool = True) -> Path:
    """Write the sandboxed kernelspec ``KERNEL_NAME`` under ``directory`` (put it first on
    ``JUPYTER_PATH``). The kernel's connection file is copied in; its socket folder must be one of
    ``view.writable``; its working folder shows its notebook's folder; interrupts are messages
    (a signal to the supervisor's process group would not reach into the sandbox); time asleep
    counts only while a cell runs (``cell_starts``, ``cell_ends``). The report is written next
    to the connection file (``report_for``)."""
    # IPython's history lives in memory: its file is an SQLite database, which needs file locks,
    # and a sandbox has none (``bwrap.LOCK_COMMANDS``).
    start = ["-c", KERNEL_ALONE] if isolate else ["-m", "ipykernel_launcher"]  # Landlock: Linux only
    kernel = [
        bwrap.interpreter(view.python),
        *start,
        "-f",
        "{connection_file}",
        "--HistoryManager.hist_file=:memory:",
    ]
    argv = wrap(
        kernel,
        replace(view, work=Path(".")),
        limits,
        report_for("{connection_file}"),
        copies=("{connection_file}",),
        relay=2**20,
        idle_in_cells=True,
        isolate=isolate,
    )
    spec = {
        "argv": argv,
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    target = directory / "kernels" / KERNEL_NAME
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=1))
    return directory


def seal(folder: Path) -> bool:
    """Make one of a sandbox's ``View.writable`` folders read-only to it from now on: a kernel
    writes its socket folder only when it binds its sockets, at start, and a folder left writable
    would be storage outside its capped tmpfs (bounded only by its memory limit). Done by giving
    the folder back to root (the supervisor gave it to the sandbox's host user, ``bwrap.host_uid``), so it
    holds only when the grader runs as root (as the supervisor's ``outer`` bubblewrap needs it
    to); otherwise the sandbox's user owns the folder and could make it writable again, and
    nothing is done. Returns whether the folder was sealed."""
    if os.geteuid() != 0 or folder.stat().st_uid not in bwrap.HOST_UIDS:
        return False
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o755)
    return True


def not_enforced() -> str | None:
    """What the limits cannot cover on this machine (no cgroup with memory and pids), or None."""
    if cgroup.parent() is not None:
        return None
    return (
        "no cgroup with the memory and pids controllers is writable here, so limits fall back to "
        "rlimits per process and to each sandbox's supervisor's looks (every 0.2 s): each process's "
        "address space is capped at twice --memory, and the whole process tree's memory, with its "
        "tmpfs (its pages and about 1 KB of kernel memory per file), is summed and ended past --memory "
        "at each look (pages its processes share, every few looks), not for the whole process tree in "
        "between; CPU time is counted for the processes alive at each look (children reaped without "
        "waiting escape it, each capped at the same CPU seconds); the number of processes is capped "
        "through RLIMIT_NPROC inside the sandbox's user namespace. Between two looks one student's code "
        "can still fill the machine's memory, and the out-of-memory killer may then end another "
        "student's kernel graded beside it: that notebook is run once more and named in the log (if "
        "killed again, it stops with a note saying it was killed from outside), and every notebook whose "
        "kernel ran meanwhile is named in the log with the most memory its sandbox was seen to hold, "
        "the one whose code filled it among them. --jobs 1 grades one student at a time and rules this out"
    )


@contextmanager
def scope():
    """Hold every sandbox started meanwhile (by this process and its children) in one group, and
    remove the group with whatever is left in it at the end, interrupted or not. A process killed
    outright (SIGKILL, the machine's OOM killer, a Dask nanny that gave up waiting) cannot remove
    its group: the groups such a process left, with whatever still runs in them, are removed
    first (``cgroup.reap``)."""
    _warn_left(cgroup.reap())
    name = f"forwardpass-{os.getpid()}-{os.urandom(3).hex()}"
    group = cgroup.make_scope(name)
    previous = os.environ.get(SCOPE_VARIABLE)
    if group is not None:
        os.environ[SCOPE_VARIABLE] = name
    try:
        yield group
    finally:
        if previous is None:
            os.environ.pop(SCOPE_VARIABLE, None)
        else:
            os.environ[SCOPE_VARIABLE] = previous
        if group is not None:
            _warn_left(cgroup.remove_scope(group))


def _warn_left(left: list[str]) -> None:
    if left:
        print(f"warning: cgroups that could not be removed: {', '.join(left)}", file=sys.stderr)


@cache
def available() -> str | None:
    """None if a sandbox works here, else why not (checked once, by running one)."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (bubblewrap, namespaces, cgroups); this is {sys.platform}"
    if not os.path.exists(bwrap.BWRAP):
        return f"bubblewrap is not installed ({bwrap.BWRAP}; Debian/Ubuntu: apt-get install bubblewrap)"
    if os.geteuid() == 0 and not os.path.exists(bwrap.SETPRIV):
        return f"setpriv is missing ({bwrap.SETPRIV}, util-linux): as root, sandboxes run as users of their own through it"
    if bwrap.landlock_abi() < 1:
        return (
            "Landlock is not enabled in this kernel (it needs Linux 5.13 or later, with landlock in its "
            "lsm= boot parameter): without it a scorer cannot keep a notebook's code from the sandbox's "
            "other processes"
        )
    limits = Limits(GiB, 64, 30, 60, 2**20, 2**20)
    probe = run([bwrap.interpreter("full"), "-c", "print('ok')"], View(), limits, timeout=60)
    if probe.stdout.strip() != b"ok":
        return f"a test sandbox failed (exit status {probe.returncode}): {probe.stderr.strip()[-500:]}"
    return None
