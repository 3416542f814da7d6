"""Bounds for a whole process tree: a cgroup where the machine lends us one, else nothing.

A sandbox's processes are kept in one group of their own (``Group``), made by the supervisor
(``grader.sandbox.launch``) before the sandbox starts and removed after the last process is gone.
The kernel then enforces the memory limit (tmpfs pages the tree writes included) and the process
limit (threads included) for the whole tree, counts its CPU time, and lets the supervisor kill
every member at once. Two kinds of machine are served:

- cgroup v2: a unified hierarchy where a group we may write to delegates the ``memory`` and
  ``pids`` controllers to its children (``memory.max``, ``pids.max``, ``cpu.stat``,
  ``cgroup.kill``);
- cgroup v1: separate ``memory`` and ``pids`` hierarchies, with ``cpuacct`` when mounted
  (``memory.limit_in_bytes``, ``pids.max``, ``cpuacct.usage``). Without v2's ``cgroup.kill``,
  members are killed until none is left; the sandbox's PID namespace already ends them all when
  its first process dies, so no fork can outrun that.

v2 is preferred when it has both controllers. Groups are made inside the caller's own group (or
inside the run's ``scope``, itself inside it), so whatever bounds the instructor's session has
still apply. Where neither works, ``parent`` returns None and the supervisor falls back to
per-process rlimits (see ``grader.sandbox.launch``). An out-of-memory kill takes the largest
process of the group, under both versions (v2's ``memory.oom.group`` is left off so that a
kernel survives a child that ran out of memory, as under v1).

All of it is a few files per group, written directly: ``cgcreate``/``cgexec`` (cgroup-tools) would
add a process per operation, know nothing of v2's ``cgroup.kill`` or of the counters read here,
and still need this code to choose a hierarchy.
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

V1_CONTROLLERS = ("memory", "pids", "cpuacct")
REQUIRED = ("memory", "pids")
GONE_WAIT = 5.0  # seconds to wait for killed members to leave the group


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    controllers: frozenset[str]
    own: Path  # the calling process's group in this hierarchy


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted here, each with the caller's own group in it."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[fields.index("-") + 3]
        root, mountpoint = fields[3], _unescape(fields[4])
        if fstype == "cgroup2":
            version, controllers = 2, _read(Path(mountpoint, "cgroup.controllers")).split()
            key = ""
        elif fstype == "cgroup":
            version = 1
            controllers = [c for c in options.split(",") if c in V1_CONTROLLERS]
            key = next((k for k in paths if controllers and set(controllers) <= set(k.split(","))), None)
        else:
            continue
        path = paths.get(key) if key is not None else None
        if path is None or not (path == root or path.startswith(root.rstrip("/") + "/")):
            continue  # not our hierarchy, or our group is outside what is mounted
        own = Path(mountpoint, path[len(root.rstrip("/")) :].lstrip("/"))
        found.append(Hierarchy(version, frozenset(controllers), own))
    return found


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _fields(path: Path) -> dict[str, int]:
    """``key value`` lines (``memory.events``, ``cpu.stat``, ``memory.oom_control``)."""
    found = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def _number(path: Path) -> int | None:
    text = _read(path).strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Parent:
    """Where groups are made: one directory per hierarchy used (v2: one; v1: two or three)."""

    version: int
    dirs: dict[str, Path]  # controller -> directory (v2: every controller -> the same one)


def parent(scope: str | None = None) -> Parent | None:
    """Where this process may make groups with memory and pids controllers, or None.

    With ``scope``, inside that group (made by ``make_scope``) where it exists."""
    found = hierarchies()
    for h in found:
        if h.version == 2:
            base = _v2_base(h, scope)
            if base is not None:
                return Parent(2, {c: base for c in (*REQUIRED, "cpu")})
    dirs = {}
    for h in found:
        if h.version == 1:
            for controller in h.controllers:
                inside = h.own / scope if scope else h.own
                dirs[controller] = inside if scope and inside.is_dir() else h.own
    if all(c in dirs and os.access(dirs[c], os.W_OK) for c in REQUIRED):
        return Parent(1, dirs)
    return None


def _v2_base(h: Hierarchy, scope: str | None) -> Path | None:
    """The nearest group, from ours upwards, that delegates memory and pids and that we may write
    (ours qualifies only if it is the root: a group with members cannot delegate), or the run's
    scope inside it."""
    for candidate in (h.own, *h.own.parents):
        if not (candidate / "cgroup.subtree_control").exists():
            return None
        if _delegates(candidate):
            return candidate / scope if scope and _delegates(candidate / scope) else candidate
    return None


def _delegates(group: Path) -> bool:
    enabled = set(_read(group / "cgroup.subtree_control").split())
    return set(REQUIRED) <= enabled and os.access(group, os.W_OK)


def make_scope(name: str) -> Parent | None:
    """A run-level group that holds every sandbox of the run (see ``grader.sandbox.scope``)."""
    base = parent()
    if base is None:
        return None
    dirs = {}
    for controller, directory in base.dirs.items():
        (directory / name).mkdir(exist_ok=True)
        dirs[controller] = directory / name
    if base.version == 2:
        controllers = set(_read(next(iter(dirs.values())) / "cgroup.controllers").split())
        wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in controllers)
        (next(iter(dirs.values())) / "cgroup.subtree_control").write_text(wanted)
    return Parent(base.version, dirs)


def remove_scope(scope: Parent) -> None:
    """Kill whatever is left in the run's groups and remove them."""
    names = {child.name for d in scope.dirs.values() if d.is_dir() for child in d.iterdir() if child.is_dir()}
    for name in sorted(names):
        Group(scope.version, _group_dirs(scope, name)).remove()
    Group(scope.version, dict(scope.dirs)).remove()


def _group_dirs(base: Parent, name: str) -> dict[str, Path]:
    return {c: d / name for c, d in base.dirs.items()}


class Group:
    """One sandbox's group (v2: one directory; v1: one per hierarchy)."""

    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version = version
        self.dirs = dirs

    @classmethod
    def create(cls, base: Parent, name: str, memory: int, pids: int) -> "Group":
        group = cls(base.version, _group_dirs(base, name))
        for directory in group.paths:
            directory.mkdir()
        if group.version == 2:
            _write(group.dirs["memory"] / "memory.max", memory)
            _write(group.dirs["memory"] / "memory.swap.max", 0, missing_ok=True)
        else:
            _write(group.dirs["memory"] / "memory.limit_in_bytes", memory)
            _write(group.dirs["memory"] / "memory.memsw.limit_in_bytes", memory, missing_ok=True)
        _write(group.dirs["pids"] / "pids.max", pids)
        return group

    @property
    def paths(self) -> list[Path]:
        return sorted(set(self.dirs.values()))

    @property
    def kind(self) -> str:
        return f"cgroup v{self.version}"

    def join(self) -> None:
        """Move the calling process into the group (in the child, before ``exec``)."""
        for directory in self.paths:
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    def members(self) -> list[int]:
        return [int(p) for p in _read(self.dirs["pids"] / "cgroup.procs").split()]

    def threads(self) -> list[int]:
        """Every thread of every member (host thread ids)."""
        name = "cgroup.threads" if self.version == 2 else "tasks"
        return [int(t) for t in _read(self.dirs["pids"] / name).split()]

    def cpu_seconds(self) -> float | None:
        if self.version == 2:
            usage = _fields(self.dirs["cpu"] / "cpu.stat").get("usage_usec")
            return None if usage is None else usage / 1e6
        if "cpuacct" in self.dirs:
            usage = _number(self.dirs["cpuacct"] / "cpuacct.usage")
            return None if usage is None else usage / 1e9
        return None

    def events(self) -> dict[str, int | None]:
        """How often the memory and process limits were hit, and the memory peak."""
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        if self.version == 2:
            oom = _fields(memory / "memory.events").get("oom_kill")
            peak = _number(memory / "memory.peak")
        else:
            oom = _fields(memory / "memory.oom_control").get("oom_kill")
            peak = _number(memory / "memory.max_usage_in_bytes")
        return {
            "oom_kills": oom,
            "pids_refused": _fields(pids / "pids.events").get("max"),
            "memory_peak": peak,
        }

    def kill(self) -> None:
        """SIGKILL every member, the ones forked meanwhile included, and wait until none is left."""
        if self.version == 2 and (self.paths[0] / "cgroup.kill").exists():
            _write(self.paths[0] / "cgroup.kill", 1)
        deadline = time.monotonic() + GONE_WAIT
        while (members := self.members()) and time.monotonic() < deadline:
            for pid in members:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self) -> None:
        """Kill what is left and remove the group's directories."""
        if any(d.is_dir() for d in self.paths):
            self.kill()
        for directory in self.paths:
            _rmdir(directory)


def _write(path: Path, value, missing_ok: bool = False) -> None:
    try:
        path.write_text(str(value))
    except FileNotFoundError:
        if not missing_ok:
            raise


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _rmdir(directory: Path) -> None:
    """Remove an empty group; a member may need a moment to be reaped."""
    deadline = time.monotonic() + GONE_WAIT
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
