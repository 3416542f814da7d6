"""Running students' code: a bubblewrap sandbox per process tree, with limits for the whole tree.

Threat model: a student controls every byte of their notebook and runs any code, shell magics
included, for as long as the limits allow. What runs in a sandbox must not read anything but the
course's public files and its own working folder, write anything but that folder (a capped tmpfs)
and the folders the grader hands it (a kernel's socket folder), reach the network, the grader or
another sandbox (processes, signals, ptrace, sockets), gain a capability or a user namespace, or
leave anything running; and it shares the machine fairly.

The pieces:

- ``bwrap``: the file system and namespaces (an allow-list root, see its docstring);
- ``cgroup``: memory, processes and CPU time of the whole tree;
- ``launch``: the supervisor, a trusted process outside the sandbox that starts bubblewrap in the
  group, enforces the CPU, idle and wall-clock budgets, kills the tree and writes a report.

This module is the interface: ``Limits`` and ``View`` describe a sandbox; ``wrap`` gives the
command line that runs a program in one (what a kernelspec holds: ``install_kernel``), ``run``
runs a program to its end and returns its outcome; ``finish`` completes a report (and removes
what is left) after the supervisor was killed; ``describe`` says in words which limit ended a
sandbox; ``scope`` groups a run's sandboxes so that a run can remove all of them at once; and
``available`` says why there is no sandbox here, if there is none.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path

from . import bwrap, cgroup

KERNEL_NAME = "forwardpass-sandbox"
REPORT_SUFFIX = ".sandbox.json"
SCOPE_VARIABLE = "FORWARDPASS_SANDBOX_SCOPE"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds ``grader``
GiB = 2**30


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

    @classmethod
    def from_dict(cls, d: dict) -> "View":
        return cls(
            read_only=tuple(map(Path, d["read_only"])),
            writable=tuple(map(Path, d["writable"])),
            env=d["env"],
            python=d["python"],
            read_only_at={inside: Path(host) for inside, host in d["read_only_at"].items()},
            work=None if d["work"] is None else Path(d["work"]),
        )


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
    (between ``cell_starts`` and ``cell_ends``).
    ``isolate=False`` runs the
    program with the limits and the cleared environment but without bubblewrap (``--no-sandbox``).
    """
    python = bwrap.python(view.python)  # here: the supervisor runs without site, venv unknown
    bins = [str(bwrap.interpreter(view.python).parent)] if view.python == "full" else []
    spec = {
        "view": view.as_dict(),
        "limits": limits.as_dict(),
        "python": [str(p) for p in python],
        "hidden": [str(p) for p in bwrap.hidden(view.python)],
        "env": bwrap.environment(view, limits, bins),
        "isolate": isolate,
        "idle": "cells" if idle_in_cells else "always",
        "relay": limits.file_size if relay is None else relay,
    }
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); "
        "from grader.sandbox.launch import main; sys.exit(main(sys.argv[1:]))"
    )
    options = ["--spec", json.dumps(spec), "--report", str(report)]
    for path in copies:
        options += ["--copy", path]
    if keep:
        options += ["--keep", ",".join(map(str, keep))]
    return [sys.executable, "-I", "-S", "-c", bootstrap, *options, "--", *argv]


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
    with tempfile.TemporaryDirectory(prefix="sandbox-report-") as folder:
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


def install_kernel(directory: Path, view: View, limits: Limits, *, isolate: bool = True) -> Path:
    """Write the sandboxed kernelspec ``KERNEL_NAME`` under ``directory`` (put it first on
    ``JUPYTER_PATH``). The kernel's connection file is copied in; its socket folder must be one of
    ``view.writable``; its working folder shows its notebook's folder; interrupts are messages
    (a signal to the supervisor's process group would not reach into the sandbox); time asleep
    counts only while a cell runs (``cell_starts``, ``cell_ends``). The report is written next
    to the connection file (``report_for``)."""
    kernel = [str(bwrap.interpreter(view.python)), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
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


def cell_starts(report: str | Path) -> None:
    """Tell the supervisor of a kernel (by its report's path) that a cell runs: its time asleep
    counts from now."""
    Path(cell_flag(report)).touch()


def cell_ends(report: str | Path) -> None:
    """Tell the supervisor that the cell is done: the grader's own pace is not the student's."""
    Path(cell_flag(report)).unlink(missing_ok=True)


def cell_flag(report: str | Path) -> str:
    """The file that exists while a kernel's cell runs (next to its report, out of its reach)."""
    return f"{report}.cell"


def report_for(connection_file: str | Path) -> str:
    """Where the supervisor of a kernel writes its report."""
    return f"{connection_file}{REPORT_SUFFIX}"


def finish(report: Path | str) -> dict:
    """The completed report of a sandbox whose supervisor is gone or going: waits briefly for it,
    and if it was killed, ends what is left of the tree, reads the group's counters and removes
    the group. An empty dict if the supervisor never wrote one."""
    path = Path(report)
    content = read_report(path)
    deadline = time.monotonic() + 5
    while content.get("state") not in (None, "ended") and _alive(content["launcher"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        content = read_report(path)
    if not content or content.get("state") == "ended":
        return content
    version = 2 if content.get("guard") == "cgroup v2" else 1
    dirs = {c: Path(d) for c, d in content.get("cgroups", {}).items() if _is_sandbox_group(Path(d))}
    if dirs and {"memory", "pids"} <= set(dirs):
        group = cgroup.Group(version, dirs)
        group.kill()
        content.update(group.events())
        group.remove()
    content.update(
        state="ended", limit=content.get("limit") or limit_from_events(content, -9), returncode=None
    )
    path.write_text(json.dumps(content))
    return content


def read_report(path: Path | str) -> dict:
    """A supervisor's report as it is now (empty if there is none yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _is_sandbox_group(path: Path) -> bool:
    """Only a sandbox's own group under the cgroup file system is ever removed from a report."""
    return (
        path.is_relative_to("/sys/fs/cgroup") and path.name.startswith("sandbox-") and ".." not in path.parts
    )


def limit_from_events(events: Mapping, returncode: int) -> str | None:
    """The limit the kernel enforced (memory, processes), if the program did not end well."""
    if returncode == 0:
        return None
    if events.get("oom_kills"):
        return "memory"
    if events.get("pids_refused"):
        return "pids"
    return None


def describe(report: dict) -> str:
    """Which limit ended the sandbox, as the end of a sentence whose subject is the program:
    "used its 60 s of CPU time", "reached its memory limit of 3 GiB"."""
    limits, limit = report.get("limits", {}), report.get("limit")
    if limit == "cpu":
        return f"used its {limits['cpu_seconds']:g} s of CPU time"
    if limit == "idle":
        return f"used its {limits['idle_seconds']:g} s of time asleep"
    if limit == "wall":
        return f"used its {limits['wall_seconds']:g} s of wall-clock time"
    if limit == "memory":
        return f"reached its memory limit of {limits['memory'] / GiB:g} GiB"
    if limit == "pids":
        return f"reached its limit of {limits['pids']} processes and threads"
    return "ended"


def not_enforced() -> str | None:
    """What the limits cannot cover on this machine (no cgroup with memory and pids), or None."""
    if cgroup.parent() is not None:
        return None
    return (
        "no cgroup with the memory and pids controllers is writable here, so limits fall back to "
        "rlimits per process: memory is capped per process (address space), not for the whole "
        "process tree, and a sandbox's tmpfs is capped only by its own size; CPU time is counted "
        "for the processes alive at each look (children reaped without waiting escape it, each "
        "capped at the same CPU seconds); the number of processes is capped through RLIMIT_NPROC "
        "inside the sandbox's user namespace"
    )


@contextmanager
def scope():
    """Hold every sandbox started meanwhile (by this process and its children) in one group, and
    remove the group with whatever is left in it at the end, interrupted or not."""
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
            cgroup.remove_scope(group)


@cache
def available() -> str | None:
    """None if a sandbox works here, else why not (checked once, by running one)."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (bubblewrap, namespaces, cgroups); this is {sys.platform}"
    if not os.path.exists(bwrap.BWRAP):
        return f"bubblewrap is not installed ({bwrap.BWRAP}; Debian/Ubuntu: apt-get install bubblewrap)"
    if os.geteuid() == 0 and not os.path.exists(bwrap.SETPRIV):
        return (
            f"setpriv is missing ({bwrap.SETPRIV}, util-linux): as root, sandboxes run as nobody through it"
        )
    limits = Limits(GiB, 64, 30, 60, 2**20, 2**20)
    probe = run([str(bwrap.interpreter("full")), "-c", "print('ok')"], View(), limits, timeout=60)
    if probe.stdout.strip() != b"ok":
        return f"a test sandbox failed (exit status {probe.returncode}): {probe.stderr.strip()[-500:]}"
    return None
