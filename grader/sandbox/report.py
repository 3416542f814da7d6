"""The supervisor's report, and the files through which a grader and a supervisor talk.

The report is a dict the supervisor (``grader.sandbox.launch``) writes to a file, replaced whole
at each step, in a folder the sandbox cannot reach: ``state`` (``starting``, ``running``,
``ending``, ``ended``), ``launcher`` (its pid), ``limits`` (``Limits`` as a dict), ``guard``
(``cgroup v2``, ``cgroup v1`` or ``rlimits``), ``cgroups`` (controller -> the group's folder), and
at the end ``limit`` (``cpu``, ``idle``, ``wall``, ``memory``, ``pids`` or None: which limit ended
the sandbox), ``returncode``, ``cpu_seconds``, ``idle_seconds``, ``wall_seconds``, ``memory_peak``,
``oom_kills`` and ``pids_refused`` (None where unknown), ``machine_oom_kills`` (how many processes
the machine's out-of-memory killer ended while the sandbox ran; None where unknown, or when the
supervisor was killed); ``session``: the pid and start time of the supervisor, which leads the
session bubblewrap runs in (``finish`` ends the sandbox through it where there is no group). A
kernel's report lies next to its connection file (``report_for``); while one of its cells runs,
``cell_flag`` exists beside it.

The file is in ``marshal``'s format, read here only (``read_report``): the supervisor and the
grader are the same interpreter, ``marshal`` is built in where ``json`` costs the supervisor's
start-up ``re``, ``enum`` and more, and the file is written by a trusted process only. This module
imports nothing else the supervisor would not (``os``, ``time``, ``cgroup``).
"""

import marshal
import os
import time

from . import cgroup

GiB = 2**30
REPORT_SUFFIX = ".sandbox-report"
SUPERVISOR_WAIT = 5.0  # seconds ``finish`` waits for a supervisor that is still ending


def report_for(connection_file: str | os.PathLike) -> str:
    """Where the supervisor of a kernel writes its report."""
    return f"{connection_file}{REPORT_SUFFIX}"


def cell_flag(report: str | os.PathLike) -> str:
    """The file that exists while a kernel's cell runs (next to its report, out of its reach)."""
    return f"{report}.cell"


def cell_starts(report: str | os.PathLike) -> None:
    """Tell the supervisor of a kernel (by its report's path) that a cell runs: its time asleep
    counts from now."""
    with open(cell_flag(report), "a"):
        pass


def cell_ends(report: str | os.PathLike) -> None:
    """Tell the supervisor that the cell is done: the grader's own pace is not the student's."""
    try:
        os.unlink(cell_flag(report))
    except FileNotFoundError:
        pass


def write_report(path: str | os.PathLike, content: dict) -> None:
    """Replace the report at ``path`` whole (a reader never sees half of one)."""
    folder, name = os.path.split(os.fspath(path))
    partial = os.path.join(folder, f".{name}.partial")
    with open(partial, "wb") as f:
        f.write(marshal.dumps(content))
    os.replace(partial, path)


def read_report(path: str | os.PathLike) -> dict:
    """A supervisor's report as it is now (empty if there is none yet)."""
    try:
        with open(path, "rb") as f:
            content = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return content if isinstance(content, dict) else {}


def finish(report: str | os.PathLike) -> dict:
    """The completed report of a sandbox whose supervisor is gone or going: waits briefly for it,
    and if it was killed, ends what is left of the tree, reads the group's counters and removes
    the group. An empty dict if the supervisor never wrote one."""
    content = read_report(report)
    deadline = time.monotonic() + SUPERVISOR_WAIT
    while content.get("state") not in (None, "ended") and _alive(content["launcher"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        content = read_report(report)
    if not content or content.get("state") == "ended":
        return content
    dirs = {c: d for c, d in content.get("cgroups", {}).items() if _is_sandbox_group(d)}
    if {"memory", "pids"} <= set(dirs):
        group = cgroup.Group(2 if content.get("guard") == "cgroup v2" else 1, dirs)
        group.kill()
        content.update(group.events())
        group.remove()
    elif content.get("session"):
        _end_session(*content["session"])
    limit = content.get("limit") or limit_from_events(content, -9)
    content.update(state="ended", limit=limit, returncode=None)
    write_report(report, content)
    return content


def finish_all(folder: str | os.PathLike) -> list[str]:
    """``finish`` every report in ``folder`` or in a folder in it whose sandbox has not ended: what a
    grader killed outright together with its supervisors left running (a whole process group's
    SIGKILL; without a cgroup nothing else ends those sandboxes). Returns those reports.

    Only there, where the grader puts them (a scorer's folder, a run's ``k-*`` folders), never
    deeper: a kernel's socket folder, below its report, is the sandbox's to write in (sealed only
    when the grader is root), and a report planted there would name processes for the grader to
    kill."""
    top = _entries(folder)
    inside = [entry for d in top if d.is_dir(follow_symlinks=False) for entry in _entries(d.path)]
    found = [
        e.path for e in top + inside if e.name.endswith(REPORT_SUFFIX) and e.is_file(follow_symlinks=False)
    ]
    left = [path for path in sorted(found) if read_report(path).get("state") not in (None, "ended")]
    for path in left:
        finish(path)
    return left


def _entries(folder: str | os.PathLike) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _end_session(leader: int, start: int | None) -> None:
    """Kill every process of the supervisor's session (``leader``, the supervisor, and ``start``,
    when it started, as the report names them from its first write), and their children, until
    none is left: without a cgroup nothing else ends a sandbox whose supervisor was killed
    outright. When the grader is root, the parent-death signals that tie each process to its
    parent stop at the change of user between the two bubblewraps (a dying parent without
    ``CAP_KILL`` may not signal a child of another user), and the inner bubblewrap, with
    everything under it, outlived its supervisor. The session holds both bubblewraps from their
    first instant; the first process of the sandbox's PID namespace, the inner one's child, is in a
    session of its own, and the rest of the namespace dies with it. So a supervisor killed at any
    moment leaves nothing (but for a first process made in the instant between a look at the
    inner bubblewrap's children and its death, before it asked to die with its parent). A
    session's id stays taken while any process is in it: a ``leader`` pid that names a process
    started at another time means the session is gone."""
    deadline = time.monotonic() + SUPERVISOR_WAIT
    while time.monotonic() < deadline and process_start(leader) in (start, None):
        members = _members(leader)
        if not members:
            return
        for pid in members + [child for member in members for child in children(member)]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _members(session: int) -> list[int]:
    """The processes of ``session``, but those that have ended and wait for their parent to see it."""
    found = []
    for name in os.listdir("/proc"):
        fields = _stat(int(name)) if name.isdigit() else []
        if fields[3:4] == [str(session)] and fields[0] not in ("Z", "X"):
            found.append(int(name))
    return found


def children(pid: int) -> list[int]:
    """The children of every thread of process ``pid`` (none once it is gone)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(child) for child in f.read().split()]
        except OSError:
            pass
    return found


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or None if there is none: with its
    pid, it names one process for good (a pid is used again, never with the same start)."""
    fields = _stat(pid)
    return int(fields[19]) if len(fields) > 19 else None


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command's name (state, parent, group,
    session, ...), none once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _is_sandbox_group(path: str) -> bool:
    """Only a sandbox's own group, under the cgroup file system, is ever removed from a report."""
    return (
        path.startswith("/sys/fs/cgroup/")
        and os.path.basename(path).startswith("sandbox-")
        and ".." not in path.split("/")
    )


def limit_from_events(events: dict, returncode: int) -> str | None:
    """The limit the kernel enforced (memory, processes), if the program did not end well."""
    if returncode == 0:
        return None
    if events.get("oom_kills"):
        return "memory"
    if events.get("pids_refused"):
        return "pids"
    return None


SIGKILL_STATUSES = (-9, 128 + 9)  # the program's, or bubblewrap's for it (128 + the signal)


def killed_from_outside(report: dict) -> bool:
    """Whether the sandbox's program died of SIGKILL that none of its own limits sent, without a
    group, while the machine's out-of-memory killer was ending processes: then the machine ran out
    of memory, which another sandbox beside it can cause between two looks of its supervisor
    (``launch.Tree.memory``), and the killer takes the largest process of all the sandboxes, not
    the culprit's. With a group, a sandbox's own limit is the group's and the killer stays inside
    it (``limit`` is "memory")."""
    return (
        report.get("guard") == "rlimits"
        and report.get("limit") is None
        and report.get("returncode") in SIGKILL_STATUSES
        and bool(report.get("machine_oom_kills"))
    )


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
