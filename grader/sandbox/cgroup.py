"""Bounds for a whole process tree: a cgroup where the machine lends us one, else nothing.

A sandbox's processes are kept in one group of their own (``Group``), made by the supervisor
(``grader.sandbox.launch``) before the sandbox starts and removed after the last process is gone.
The kernel then enforces the memory limit (tmpfs pages the tree writes included) and the process
limit (threads included) for the whole tree, counts its CPU time, and lets the supervisor kill
every member at once. Two kinds of machine are served:

- cgroup v2: a unified hierarchy where a group we may write to delegates the ``memory`` and
  ``pids`` controllers to its children (``memory.max``, ``pids.max``, ``cpu.stat``,
  ``cgroup.kill``);
- cgroup v1: separate ``memory`` and ``pids`` hierarchies, with ``cpu`` and ``cpuacct`` when
  mounted and writable (``memory.limit_in_bytes``, ``pids.max``, ``cpu.shares``,
  ``cpuacct.usage``): each sandbox a group of its own in ``cpu`` gets an equal share of the CPU
  when the machine is busy, as under v2, where sandboxes side by side are siblings with the same
  ``cpu.weight``. ``cpu`` and ``cpuacct`` are often mounted together (``cpu,cpuacct``): both
  controllers then name one directory, made and joined once. Without v2's ``cgroup.kill``,
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
and still need this code to choose a hierarchy. Groups are folders as strings (``os.path``) and
the classes plain ones: the supervisor imports this module, and its start-up is kept to builtin
modules (see ``grader.sandbox.launch``).
"""

import os
import time

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
V1_SHARES = 1024  # cpu.shares: the kernel's default, every sandbox the same (v2: cpu.weight, 100)
SCOPE_VARIABLE = "FORWARDPASS_SANDBOX_SCOPE"  # the name of the run's scope group, for its sandboxes
REQUIRED = ("memory", "pids")
GONE_WAIT = 5.0  # seconds to wait for killed members to leave the group


class Hierarchy:
    def __init__(self, version: int, controllers: frozenset[str], own: str):
        self.version = version  # 1 or 2
        self.controllers = controllers
        self.own = own  # the calling process's group in this hierarchy (a folder)


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted here, each with the caller's own group in it."""
    paths = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    found = []
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[fields.index("-") + 3]
        root, mountpoint = fields[3], _unescape(fields[4])
        if fstype == "cgroup2":
            version, controllers = 2, _read(os.path.join(mountpoint, "cgroup.controllers")).split()
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
        own = os.path.join(mountpoint, path[len(root.rstrip("/")) :].lstrip("/")).rstrip("/") or "/"
        found.append(Hierarchy(version, frozenset(controllers), own))
    return found


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _fields(path: str) -> dict[str, int]:
    """``key value`` lines (``memory.events``, ``cpu.stat``, ``memory.oom_control``)."""
    found = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def _number(path: str) -> int | None:
    text = _read(path).strip()
    return int(text) if text.isdigit() else None


class Parent:
    """Where groups are made: one directory per hierarchy used (v2: one; v1: two or three)."""

    def __init__(self, version: int, dirs: dict[str, str]):
        self.version = version
        self.dirs = dirs  # controller -> directory (v2: every controller -> the same one)


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
                inside = os.path.join(h.own, scope) if scope else h.own
                dirs[controller] = inside if scope and os.path.isdir(inside) else h.own
    if all(c in dirs and os.access(dirs[c], os.W_OK) for c in REQUIRED):
        return Parent(1, {c: d for c, d in dirs.items() if c in REQUIRED or os.access(d, os.W_OK)})
    return None


def _v2_base(h: Hierarchy, scope: str | None) -> str | None:
    """The nearest group, from ours upwards, that delegates memory and pids and that we may write
    (ours qualifies only if it is the root: a group with members cannot delegate), or the run's
    scope inside it."""
    candidate = h.own
    while True:
        if not os.path.exists(os.path.join(candidate, "cgroup.subtree_control")):
            return None
        if _delegates(candidate):
            inside = os.path.join(candidate, scope) if scope else candidate
            return inside if scope and _delegates(inside) else candidate
        if candidate == "/":
            return None
        candidate = os.path.dirname(candidate)


def _delegates(group: str) -> bool:
    enabled = set(_read(os.path.join(group, "cgroup.subtree_control")).split())
    return set(REQUIRED) <= enabled and os.access(group, os.W_OK)


def make_scope(name: str) -> Parent | None:
    """A run-level group that holds every sandbox of the run (see ``grader.sandbox.scope``)."""
    base = parent()
    if base is None:
        return None
    dirs = {}
    for controller, directory in base.dirs.items():
        dirs[controller] = os.path.join(directory, name)
        if not os.path.isdir(dirs[controller]):
            os.mkdir(dirs[controller])
    if base.version == 2:
        group = next(iter(dirs.values()))
        controllers = set(_read(os.path.join(group, "cgroup.controllers")).split())
        _write(
            os.path.join(group, "cgroup.subtree_control"),
            " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in controllers),
        )
    return Parent(base.version, dirs)


def remove_scope(scope: Parent) -> list[str]:
    """Kill whatever is left in the run's groups and remove them. Every directory is tried, one
    that cannot be removed (a member the kernel has not let go of within ``GONE_WAIT``) or another
    does not keep the rest; returns what could not be removed, with why."""
    names = {
        child.name
        for d in set(scope.dirs.values())
        if os.path.isdir(d)
        for child in _scandir(d)
        if child.is_dir()
    }
    left = []
    for group in [Group(scope.version, _group_dirs(scope, name)) for name in sorted(names)]:
        left += group.remove_all()
    return left + Group(scope.version, dict(scope.dirs)).remove_all()


# The groups this package makes in a caller's group: a run's scope (``grader.sandbox.scope``) and a
# sandbox made outside any scope (``launch._make_group``), each named after the process that made
# it and removed by it, unless that process was killed first (SIGKILL, the machine's OOM killer).
OWNED = ("forwardpass", "sandbox")  # <kind>-<pid>-<hex>


def _maker(name: str) -> int | None:
    """The pid in the name of a group ``OWNED`` names (``re`` costs the supervisor's start)."""
    parts = name.split("-")
    if len(parts) == 3 and parts[0] in OWNED and parts[1].isdigit() and parts[2].isalnum():
        return int(parts[1])
    return None


def reap() -> list[str]:
    """Remove the groups that a process killed before it could remove them left in the caller's
    own groups (the ones ``parent`` makes groups in): those whose maker is gone, with whatever
    is still running in them (a sandbox of a killed grader). A group whose maker still runs is
    another run's (another instructor's, on the same machine) and is left alone. Returns what
    could not be removed, with why."""
    base = parent()
    if base is None:
        return []
    names = {
        child.name
        for directory in set(base.dirs.values())
        for child in _scandir(directory)
        if (maker := _maker(child.name)) is not None and child.is_dir() and not _alive(maker)
    }
    left = []
    for name in sorted(names):  # in every hierarchy (v1: a folder of each), where it is left
        left += remove_scope(Parent(base.version, _group_dirs(base, name)))
    return left


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scandir(directory: str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _group_dirs(base: Parent, name: str) -> dict[str, str]:
    return {c: os.path.join(d, name) for c, d in base.dirs.items()}


class Group:
    """One sandbox's group (v2: one directory; v1: one per hierarchy)."""

    def __init__(self, version: int, dirs: dict[str, str]):
        self.version = version
        self.dirs = dirs

    @classmethod
    def create(cls, base: Parent, name: str, memory: int, pids: int) -> "Group":
        group = cls(base.version, _group_dirs(base, name))
        for directory in group.paths:
            os.mkdir(directory)
        memory_dir, pids_dir = group.dirs["memory"], group.dirs["pids"]
        if group.version == 2:
            _write(os.path.join(memory_dir, "memory.max"), memory)
            _write(os.path.join(memory_dir, "memory.swap.max"), 0, missing_ok=True)
        else:
            _write(os.path.join(memory_dir, "memory.limit_in_bytes"), memory)
            _write(os.path.join(memory_dir, "memory.memsw.limit_in_bytes"), memory, missing_ok=True)
        _write(os.path.join(pids_dir, "pids.max"), pids)
        if group.version == 1 and "cpu" in group.dirs:
            _write(os.path.join(group.dirs["cpu"], "cpu.shares"), V1_SHARES, missing_ok=True)
        return group

    @property
    def paths(self) -> list[str]:
        return sorted(set(self.dirs.values()))

    @property
    def kind(self) -> str:
        return f"cgroup v{self.version}"

    def join(self) -> None:
        """Move the calling process into the group (in the child, before ``exec``)."""
        for directory in self.paths:
            _write(os.path.join(directory, "cgroup.procs"), os.getpid())

    def members(self) -> list[int]:
        return [int(p) for p in _read(os.path.join(self.dirs["pids"], "cgroup.procs")).split()]

    def threads(self) -> list[int]:
        """Every thread of every member (host thread ids)."""
        name = "cgroup.threads" if self.version == 2 else "tasks"
        return [int(t) for t in _read(os.path.join(self.dirs["pids"], name)).split()]

    def cpu_seconds(self) -> float | None:
        if self.version == 2:
            usage = _fields(os.path.join(self.dirs["cpu"], "cpu.stat")).get("usage_usec")
            return None if usage is None else usage / 1e6
        if "cpuacct" in self.dirs:
            usage = _number(os.path.join(self.dirs["cpuacct"], "cpuacct.usage"))
            return None if usage is None else usage / 1e9
        return None

    def events(self) -> dict[str, int | None]:
        """How often the memory and process limits were hit, and the memory peak."""
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        if self.version == 2:
            oom = _fields(os.path.join(memory, "memory.events")).get("oom_kill")
            peak = _number(os.path.join(memory, "memory.peak"))
        else:
            oom = _fields(os.path.join(memory, "memory.oom_control")).get("oom_kill")
            peak = _number(os.path.join(memory, "memory.max_usage_in_bytes"))
        return {
            "oom_kills": oom,
            "pids_refused": _fields(os.path.join(pids, "pids.events")).get("max"),
            "memory_peak": peak,
        }

    def kill(self) -> None:
        """SIGKILL every member, the ones forked meanwhile included, and wait until none is left."""
        kill = os.path.join(self.paths[0], "cgroup.kill")
        if self.version == 2 and os.path.exists(kill):
            _write(kill, 1)
        deadline = time.monotonic() + GONE_WAIT
        while (members := self.members()) and time.monotonic() < deadline:
            for pid in members:
                _kill(pid)
            time.sleep(0.005)

    def remove(self) -> None:
        """Kill what is left and remove the group's directories."""
        if any(os.path.isdir(d) for d in self.paths):
            self.kill()
        for directory in self.paths:
            _rmdir(directory)

    def remove_all(self) -> list[str]:
        """``remove``, trying every directory whatever happens to another; returns the ones
        left, with why."""
        if any(os.path.isdir(d) for d in self.paths):
            self.kill()
        left = []
        for directory in self.paths:
            try:
                _rmdir(directory)
            except OSError as err:
                left.append(f"{directory} ({err.strerror or err})")
        return left


def _write(path: str, value, missing_ok: bool = False) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except FileNotFoundError:
        if not missing_ok:
            raise


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)  # SIGKILL (``signal`` imports ``enum``: start-up time)
    except ProcessLookupError:
        pass


def _rmdir(directory: str) -> None:
    """Remove an empty group; a member may need a moment to be reaped."""
    deadline = time.monotonic() + GONE_WAIT
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
