"""The supervisor of one sandbox: a small trusted process outside it (standard library only).

``grader.sandbox.wrap`` makes its command line; jupyter_client starts it as a kernel, or
``grader.sandbox.run`` starts it for a one-off program. It

1. makes the sandbox's cgroup (``grader.sandbox.cgroup``), or, where there is none, notes which
   limits fall back to per-process rlimits;
2. starts bubblewrap (``grader.sandbox.bwrap``) inside that group, the first process the
   machine's out-of-memory killer takes (``_first_to_go``), with rlimits for file size,
   core dumps and address space (and, without a group, CPU time per process and, through
   ``prlimit`` inside the sandbox's user namespace, the number of processes);
3. watches the whole tree every ``TICK`` (and marks each of its processes the first to go again,
   where one lowered its score: ``Tree.mark``): its CPU time, the time it spent asleep (neither running
   nor waiting for a CPU, read from every thread's ``/proc/<tid>/schedstat``, so that a busy
   machine does not count against it), its wall-clock time and, without a group, its memory
   (``Tree.memory``); it passes the sandbox's stdout and
   stderr on, up to a byte limit;
4. ends the tree (the group's ``kill``, bubblewrap's PID namespace) when a budget is used up, when
   the sandboxed program exits, when it gets SIGTERM, SIGINT or SIGHUP, or when its parent exits
   (the grader, jupyter_client's process: killed, say), seen through a pidfd of the parent, opened
   first thing and polled with the rest (``prctl(PR_SET_PDEATHSIG)`` would cost ``ctypes``, and
   fires when the parent's *thread* that started it ends);
5. writes the report (``grader.sandbox.report``), a file the sandbox cannot reach, when the
   sandbox starts and when it ends: which limit ended it, if any, with the tree's CPU, idle and
   wall seconds, memory peak and limit counters (see ``grader.sandbox.describe``), and how many
   processes the machine's out-of-memory killer ended meanwhile (``VMSTAT``); then removes
   the group and exits with the program's status.

If it is killed outright (jupyter_client kills a kernel with SIGKILL), bubblewrap dies with it and
takes the tree along (``--die-with-parent``, PID namespace), and ``grader.sandbox.finish`` does
steps 4 and 5 from the report it left. Run as root, the chain of parent-death signals stops at
``setpriv`` (see ``grader.sandbox.report._end_session``): there the group's ``kill`` ends the
tree, or, without a group, ``finish`` kills every process of the supervisor's session, which the
report names from the start and which holds both bubblewraps from their first instant
(``_own_session``).

Its start is paid twice per graded notebook (the kernel's sandbox, the scorer's), so it imports
only builtin and small modules: ``wrap``'s bootstrap loads this module, ``bwrap``, ``cgroup`` and
``report`` as parts of ``grader.sandbox`` without running the package's ``__init__`` (its
dataclasses, ``json``, ``subprocess``), which the modules never import. The spec comes as
``marshal`` data in hexadecimal (the grader and the supervisor are one interpreter), the limits
and view as dicts (``Limits.as_dict()``, ``View.as_dict()``), paths as strings; the report is
``marshal`` too. The program is started by a fork and exec of its own (``Child``; ``subprocess``
alone would cost more than everything else), signals are set through ``_signal`` (``signal`` only
wraps its numbers in ``enum`` classes), the loop polls with ``select.poll``, and the parent is
watched through a pidfd rather than ``prctl`` through ``ctypes``.
``tests/test_sandbox.py::test_the_supervisor_imports_little`` holds this.
"""

import _signal  # ``signal`` without its ``enum`` wrappers: start-up time (see above)
import marshal
import os
import resource
import select
import sys
import time

from . import bwrap, cgroup
from .report import cell_flag, children, limit_from_events, process_start, write_report

TICK = 0.2  # seconds between two looks at the tree
# Without a group: what one inode of the sandbox's tmpfs costs the machine (inode and dentry of
# kernel memory, about 1 KB each, charged to no process; measured by red team 12, finding 04).
INODE_BYTES = 1024
PSS_SHARE = 0.25  # at most this share of the supervisor's time walks page tables (``Tree.memory``)
# The machine's count of processes its out-of-memory killer ended (line ``oom_kill``), read when the
# sandbox starts and when it ends (``machine_oom_kills``); a test points it at a file of its own.
VMSTAT = "/proc/vmstat"
STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str]) -> int:
    args, command = _parse(argv)
    spec = marshal.loads(bytes.fromhex(args["spec"]))
    view, limits = spec["view"], spec["limits"]
    report = Report(args["report"], limits, _own_session())
    stop = _catch_stop_signals()
    parent = _watch_parent(stop)
    asleep = Asleep(None if spec["idle"] == "always" else cell_flag(args["report"]))
    group = home = None
    try:
        group = _make_group(limits)
        cgroups = dict(group.dirs) if group else {}
        report.write(state="starting", guard=group.kind if group else "rlimits", cgroups=cgroups)
        home = None if spec["isolate"] else _private_home()
        keep = [int(fd) for fd in args.get("keep", "").split(",") if fd]
        oom_kills = _machine_oom_kills()
        process, fds = _start(command, view, limits, group, spec, args["copy"], home, keep)
        for fd in fds:
            os.close(fd)
        tree = Tree(group, process.pid)
        report.write(state="running")
        limit = Supervisor(process, tree, limits, stop, spec["relay"], asleep).run(parent)
        report.write(state="ending", limit=limit)
        tree.kill()
        process.wait()
        events = tree.events()
        usage = {"cpu_seconds": round(tree.cpu_seconds(), 3), "idle_seconds": round(asleep.seconds, 3)}
        limit = limit or limit_from_events(events, process.returncode)
        machine = _rise(oom_kills, _machine_oom_kills())
        report.write(
            state="ended",
            limit=limit,
            returncode=process.returncode,
            machine_oom_kills=machine,
            **events,
            **usage,
        )
        return _status(process.returncode)
    except Exception as err:
        report.write(state="ended", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if group is not None:
            group.remove()
        if home is not None:
            import shutil

            shutil.rmtree(home, ignore_errors=True)


def _machine_oom_kills() -> int | None:
    """How many processes the machine's out-of-memory killer has ended since boot (None where
    ``VMSTAT`` does not say: not Linux, or older than 4.13). Without a group, its rise while a
    sandbox ran is the one trace that a SIGKILL with no limit of the sandbox's own may have come
    from the machine running out of memory, which a neighbour's sandbox can cause between two
    looks (``grader.execute.ResilientExecute`` runs such a notebook once more)."""
    for line in _read(VMSTAT).splitlines():
        name, _, count = line.partition(" ")
        if name == "oom_kill" and count.strip().isdigit():
            return int(count)
    return None


def _rise(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def _parse(argv: list[str]) -> tuple[dict, list[str]]:
    """``--spec HEX --report PATH [--copy PATH]... [--keep FDS] -- COMMAND...`` (no argparse:
    start-up time)."""
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    args: dict = {"copy": []}
    for name, value in zip(options[::2], options[1::2], strict=True):
        if name == "--copy":
            args["copy"].append(value)
        else:
            args[name.removeprefix("--")] = value
    return args, command


def _own_session() -> list[int | None] | None:
    """Lead a session of its own (jupyter_client starts a kernel's supervisor so; ``run`` does not),
    so that bubblewrap, started in it, is in it from its first instant; returns its id (this
    process's pid) and this process's start time, for ``grader.sandbox.finish`` to end what is in it
    (without a group nothing else does when this process was killed, see above). Its process group
    is the one jupyter_client kills when it kills the kernel: both bubblewraps go with it. None if
    it cannot (the leader of a process group in another's session, as a shell's job control makes
    one: ``setsid`` refuses it); the grader never starts one so."""
    if os.getsid(0) != os.getpid():
        try:
            os.setsid()
        except PermissionError:
            return None
    return [os.getpid(), process_start(os.getpid())]


class Report:
    """The report (``grader.sandbox.report``), replaced whole at each write."""

    def __init__(self, path: str, limits: dict, session: list | None):
        self.path = path
        self.content = {"launcher": os.getpid(), "limits": limits, "limit": None, "session": session}
        self.started = time.monotonic()

    def write(self, **fields) -> None:
        self.content.update(fields, wall_seconds=round(time.monotonic() - self.started, 3))
        try:
            write_report(self.path, self.content)
        except OSError:
            pass  # the run's folder is gone (the grader was interrupted): nobody reads it any more


def _catch_stop_signals() -> list[int]:
    """Turn the stop signals into a wake-up of the supervisor's loop (and a note in the list)."""
    received: list[int] = []
    for signum in STOP_SIGNALS:
        _signal.signal(signum, lambda signum, frame: received.append(signum))
    return received


def _watch_parent(stop: list[int]) -> int | None:
    """A pidfd of the parent, readable once it exited, for the loop to stop on; None, with a stop
    noted, if it is gone already (this process was given to another parent)."""
    parent = os.getppid()
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        fd = None
    if os.getppid() == parent and fd is not None:
        return fd  # opened while it was still our parent: it is that process
    if fd is not None:
        os.close(fd)
    stop.append(_signal.SIGTERM)
    return None


def _make_group(limits: dict) -> cgroup.Group | None:
    base = cgroup.parent(os.environ.get(cgroup.SCOPE_VARIABLE))
    if base is None:
        return None
    name = f"sandbox-{os.getpid()}-{os.urandom(3).hex()}"
    return cgroup.Group.create(base, name, limits["memory"], limits["pids"] + bwrap.OWN_PROCESSES)


def _start(command, view: dict, limits: dict, group, spec: dict, copies: list[str], home: str | None, keep):
    """Start the sandbox (``keep``: descriptors the program gets); returns the process and the
    descriptors to close once it runs."""
    fds: list[int] = []
    isolate = spec["isolate"]
    if not isolate:
        argv, env, cwd = command, _unisolated_environment(view, spec["env"], home), None
    else:
        if group is None and os.path.exists("/usr/bin/prlimit"):
            command = ["/usr/bin/prlimit", f"--nproc={limits['pids']}", "--", *command]
        python, work = spec["python"], _work_entries(view["work"])
        copied = {path: _memfd(_read_bytes(path), fds) for path in copies}
        seccomp = _memfd(spec["seccomp"], fds)
        inner = bwrap.inner(view, limits["tmpfs"], python, spec["hidden"], spec["env"], work, copied, seccomp)
        argv = [bwrap.BWRAP, "--args", str(_memfd(_nul_separated(inner), fds)), "--", *command]
        if os.geteuid() == 0:
            uid = bwrap.host_uid(os.getpid())  # its own: see ``bwrap``
            for path in view["writable"]:
                os.chown(path, uid, uid)
            outer = bwrap.outer(*bwrap.sources(view, python, work))
            argv = [bwrap.BWRAP, "--args", str(_memfd(_nul_separated(outer), fds)), *bwrap.demote(uid), *argv]
        env, cwd = {}, "/"

    def prepare() -> None:  # in the new process, before exec
        if group is not None:
            group.join()
        _set_rlimits(limits, bounded=group is not None)
        _first_to_go()

    process = Child(argv, env, cwd, [*fds, *keep], prepare, new_session=not isolate)
    return process, fds


class Child:
    """The program, started as ``subprocess.Popen`` would (whose import alone costs more than the
    rest of the supervisor's start): stdin from ``/dev/null``, stdout and stderr to pipes
    (``stdout``, ``stderr``: their reading ends), ``env`` its whole environment (``argv[0]``
    looked up on its ``PATH``), ``cwd`` its folder, ``pass_fds`` the only descriptors kept beyond
    0-2, the signals Python ignores set back to their default, a new session if asked, then
    ``prepare()``, then exec. A failure before exec (``prepare``'s, exec's) is raised here, in
    the parent, as an ``OSError`` where it was one, through a pipe closed on exec."""

    def __init__(
        self, argv: list[str], env: dict, cwd: str | None, pass_fds: list[int], prepare, new_session: bool
    ):
        stdout, stderr, errors = os.pipe(), os.pipe(), os.pipe()
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            try:
                self._exec(
                    argv, env, cwd, [null, stdout[1], stderr[1]], pass_fds, prepare, new_session, errors[1]
                )
            except BaseException as err:  # noqa: BLE001 (anything: reported to the parent)
                report = (
                    type(err).__name__,
                    getattr(err, "errno", None),
                    str(err),
                    getattr(err, "filename", None),
                )
                os.write(errors[1], marshal.dumps(report))
            finally:
                os._exit(255)
        for fd in (null, stdout[1], stderr[1], errors[1]):
            os.close(fd)
        self.stdout, self.stderr = stdout[0], stderr[0]
        failure = _read_all(errors[0])
        os.close(errors[0])
        if failure:
            self.wait()
            name, errno, message, filename = marshal.loads(failure)
            if errno:
                raise OSError(errno, os.strerror(errno), *([filename] if filename else []))
            raise RuntimeError(f"the program could not start: {name}: {message}")

    @staticmethod
    def _exec(argv, env, cwd, standard, pass_fds, prepare, new_session, errors) -> None:
        for target, fd in enumerate([_above_standard(fd) for fd in standard]):
            os.dup2(fd, target)  # inheritable
        if cwd is not None:
            os.chdir(cwd)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
        if new_session:
            os.setsid()
        prepare()
        keep = sorted({*pass_fds, errors})
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        for low, high in zip([2, *keep], [*keep, os.sysconf("SC_OPEN_MAX")], strict=True):
            os.closerange(low + 1, high)
        os.execvpe(argv[0], argv, env)

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _above_standard(fd: int) -> int:
    """A copy of ``fd`` numbered 3 or more (if the supervisor started with 0, 1 or 2 closed, a pipe
    may have one of their numbers), so that moving the others onto 0-2 cannot close it."""
    while fd < 3:
        fd = os.dup(fd)
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


OPEN_FILES = 1024  # per process (a kernel holds about 60)


def _set_rlimits(limits: dict, bounded: bool) -> None:
    """Per process, inherited by the whole tree: the file size, no core dumps, open files (the
    machine's ``fs.file-max`` counts every sandbox's, and root's grader alone is exempt from it:
    128 processes of 20,000 each could hold them all), and the address space, at twice the memory
    limit (an absurd allocation fails with MemoryError in the process that asked for it, where the
    group's limit, or without a group the supervisor's sum, ``Tree.memory``, would end the tree;
    reserved address space is not yet memory: a kernel reserves about 0.7 GiB for its threads'
    stacks and allocator arenas before a cell runs, and at ``--memory`` 0.5 none started without a
    group); the data size is set back to its hard limit (the grading process caps its own,
    ``grader.autograde.WORKER_MEMORY``, not the sandbox's)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size"], limits["file_size"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_AS, (2 * limits["memory"], 2 * limits["memory"]))
    _, data = resource.getrlimit(resource.RLIMIT_DATA)  # the grading process's own cap is not the sandbox's
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)  # a write past the limit fails instead of killing
    if not bounded:  # the best there is without a group
        seconds = int(limits["cpu_seconds"]) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))


OOM_SCORE_ADJ = "1000"  # the most the kernel allows: the first process its OOM killer takes


def _first_to_go() -> None:
    """Make the sandbox's processes (this one, and everything it starts inherits it) the first the
    machine's out-of-memory killer takes. Each sandbox's memory is capped, but not the sum of the
    caps: students graded side by side can fill the machine together (with memory no process's
    size shows, such as socket buffers), and the killer would then take the largest process by
    size, a grader's worker holding a class's results, or the grader itself. Raising one's own
    score needs no privilege. A process inside can lower it again only to where the last process
    with ``CAP_SYS_RESOURCE`` set it: not at all when the supervisor has that capability (root,
    as usual), to the default otherwise (a grader run as another user, a container whose root
    lacks it): so the supervisor sets it again on every process of the tree at each of its looks
    (``Tree.mark``), and a lowered score lasts a ``TICK`` at most."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(OOM_SCORE_ADJ)
    except OSError:  # no /proc (not Linux): nothing to adjust
        pass


def _work_entries(work: str | None) -> list[str]:
    """The entries of the folder shown in the working folder: files and folders, not links."""
    if work is None:
        return []
    folder = os.path.abspath(work)
    with os.scandir(folder) as entries:
        found = [e.path for e in entries if not e.is_symlink() and (e.is_file() or e.is_dir())]
    return sorted(found)[:256]


def _memfd(data: bytes, fds: list[int]) -> int:
    fd = os.memfd_create("sandbox", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    fds.append(fd)
    return fd


def _nul_separated(args: list[str]) -> bytes:
    return b"".join(arg.encode() + b"\0" for arg in args)


def _private_home() -> str:
    """Home and temporary folder of a program run without isolation (``--no-sandbox``)."""
    import tempfile  # only then: start-up time

    return tempfile.mkdtemp(prefix="sandbox-home-")


def _unisolated_environment(view: dict, env: dict[str, str], home: str) -> dict[str, str]:
    """The allowed variables for a program run without isolation (``--no-sandbox``): the
    sandbox's home and temporary folders become a private folder on the host."""
    import shutil

    for inside, host in view["read_only_at"].items():
        relative = os.path.relpath(inside, bwrap.TMP)
        if not os.path.isabs(inside) or relative.split("/")[0] == "..":
            raise ValueError(f"{inside!r} is not in {bwrap.TMP!r}")
        target = os.path.join(home, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(host, target)
    return {name: value.replace(bwrap.TMP, home) for name, value in env.items()}


class Tree:
    """The sandbox's processes: the group's members, or bubblewrap's descendants without one."""

    def __init__(self, group: cgroup.Group | None, root: int):
        self.group, self.root = group, root
        self.init: int | None = None  # host pid of the PID namespace's first process (no group)
        self.tmpfs: list[str] | None = None  # the sandbox's tmpfs mounts, seen from the host
        self.peak: int | None = None  # the most ``memory`` found (no group)
        self.walked, self.next_walk = 0, 0.0  # the last sum of proportional sizes, and the next's time
        self.cpu = 0.0  # the most CPU seconds a look found (no group)

    def pids(self) -> list[int]:
        if self.group is not None:
            return self.group.members()
        found, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children(pid)
        return found

    def _listed(self, pids: list[int] | None) -> list[int]:
        """``pids`` (a look's one listing of the tree, shared by its reads), else a new listing."""
        return self.pids() if pids is None else pids

    def namespace_init(self) -> int | None:
        """The host pid of the first process of the sandbox's own PID namespace (the one whose
        pid there is 1), once bubblewrap has made it."""
        for pid in self.pids():
            status = _read(f"/proc/{pid}/status").splitlines()
            nspids = next((line.split()[1:] for line in status if line.startswith("NSpid:")), [])
            if len(nspids) > 1 and nspids[-1] == "1":
                return pid
        return None

    def threads(self, pids: list[int] | None = None) -> list[int]:
        """The tree's threads (``pids``: see ``_listed``)."""
        if self.group is not None:
            return self.group.threads()
        return [int(t) for pid in self._listed(pids) for t in _listdir(f"/proc/{pid}/task")]

    def cpu_seconds(self, pids: list[int] | None = None) -> float:
        """The group's CPU time, or without one the most the tree's processes (``pids``: see
        ``_listed``) held at a look (the report's figure is read once the tree is gone, when they
        hold nothing)."""
        usage = self.group.cpu_seconds() if self.group is not None else None
        if usage is not None:
            return usage
        total = 0
        for pid in self._listed(pids):  # own and reaped children's time (fields 14-17 of stat)
            fields = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:15]) if len(fields) > 14 else 0
        self.cpu = max(self.cpu, total / CLOCK_TICKS)
        return self.cpu

    def mark(self, pids: list[int] | None = None) -> None:
        """Set every process's OOM score back to the first to go (see ``_first_to_go``) where a
        process inside lowered it (a member that exits meanwhile is skipped; ``pids``: see
        ``_listed``)."""
        for pid in self._listed(pids):
            path = f"/proc/{pid}/oom_score_adj"
            if _read(path).strip() not in ("", OOM_SCORE_ADJ):
                try:
                    with open(path, "w") as f:
                        f.write(OOM_SCORE_ADJ)
                except OSError:
                    pass  # it exited (or it is not ours to write: nothing better to do)

    def memory(self, limit: int, pids: list[int] | None = None) -> int:
        """Without a group, the tree's memory as a group would count it, or more, when that is at
        most ``limit``: what the sandbox's tmpfs mounts hold (their pages, and ``INODE_BYTES`` per
        file: charged to no process, 200,000 empty files fit in a 1 MiB tmpfs) and every
        process's proportional set size (``Pss`` of ``smaps_rollup``: pages that processes share,
        a forked parent's or a library's, count once for the tree, where the sum of resident sizes
        counts them in each and would end an honest ``multiprocessing`` pool). The proportional
        size walks every page table (about 3 ms for a process that loaded torch, 350 ms for 128):
        so the resident sizes come first (``statm``, cheap, never less), and the walk only when
        their sum is past ``limit``, and no more often than ``PSS_SHARE`` of the time allows
        (until then the last walk's sum stands). Keeps the peak found. ``pids``: see ``_listed``."""
        pids, held = self._listed(pids), sum(map(_tmpfs_bytes, self._tmpfs()))
        total = held + sum(map(_rss, pids))
        if total > limit:
            if time.monotonic() >= self.next_walk:
                started = time.monotonic()
                self.walked = sum(map(_pss, pids))
                self.next_walk = time.monotonic() + (time.monotonic() - started) / PSS_SHARE
            total = held + self.walked
        self.peak = max(self.peak or 0, total)
        return total

    def _tmpfs(self) -> list[str]:
        """The sandbox's tmpfs mounts as host paths through its first process's root, read once
        bubblewrap has made them (the sandbox cannot mount): /tmp, /dev, and the small ones over
        hidden folders."""
        if self.tmpfs is not None or self.init is None:
            return self.tmpfs or []
        lines = _read(f"/proc/{self.init}/mountinfo").splitlines()
        mounts = [line.split() for line in lines]
        found = [m[4] for m in mounts if "-" in m and m[m.index("-") + 1] == "tmpfs"]
        if bwrap.TMP in found:  # bubblewrap has built the sandbox's root (not so at its first instants)
            self.tmpfs = [f"/proc/{self.init}/root{path}" for path in found]
        return self.tmpfs or []

    def events(self) -> dict:
        if self.group is None:
            return {"oom_kills": None, "pids_refused": None, "memory_peak": self.peak}
        return self.group.events()

    def kill(self) -> None:
        """Kill every process of the tree and wait until they are gone. Without a group, the
        processes found now are killed, bubblewrap's PID namespace's first process among them:
        it exits only once the kernel has killed the rest of its namespace."""
        if self.group is not None:
            _kill(self.root)  # bubblewrap; its PID namespace goes with it
            self.group.kill()
            return
        pids = self.pids()
        for pid in pids:
            _kill(pid)
        deadline = time.monotonic() + cgroup.GONE_WAIT
        while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.005)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    state = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()[:1]
    return bool(state) and state[0] not in ("Z", "X")


def _rss(pid: int) -> int:
    """A process's resident size in bytes, never less than its proportional size (0 once gone)."""
    fields = _read(f"/proc/{pid}/statm").split()
    return int(fields[1]) * PAGE if len(fields) > 1 else 0


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (0 once it is gone)."""
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _tmpfs_bytes(path: str) -> int:
    """What a tmpfs holds: its used pages and ``INODE_BYTES`` per used inode (0 once it is gone)."""
    try:
        found = os.statvfs(path)
    except OSError:
        return 0
    return (found.f_blocks - found.f_bfree) * found.f_frsize + (found.f_files - found.f_ffree) * INODE_BYTES


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Supervisor:
    """The loop: relay output, look at the tree every tick, stop at the first limit reached."""

    def __init__(
        self, process: Child, tree: Tree, limits: dict, stop: list[int], relay: int, asleep: "Asleep"
    ):
        self.process, self.tree, self.limits, self.stop, self.asleep = process, tree, limits, stop, asleep
        self.budget = {process.stdout: relay, process.stderr: relay}
        self.targets = {process.stdout: 1, process.stderr: 2}
        self.open = set(self.targets)  # the pipes not yet at their end

    def run(self, parent: int | None) -> str | None:
        """The limit that ended the sandbox, or None if it ended by itself or was stopped (a stop
        signal, or ``parent``, a pidfd of the supervisor's parent, readable: it exited)."""
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        exited = os.pidfd_open(self.process.pid)
        poller = select.poll()
        for fd in (*self.targets, wake_read, exited, *([] if parent is None else [parent])):
            poller.register(fd, select.POLLIN)
        started = time.monotonic()
        next_look = started + TICK
        try:
            while not self.stop:
                for fd, _ in poller.poll(max(0.0, next_look - time.monotonic()) * 1000):  # ms, rounded up
                    if fd == exited:
                        self._drain()
                        return None
                    if fd == parent:
                        return None
                    if fd == wake_read:
                        os.read(wake_read, 512)
                    elif not self._relay(fd):
                        poller.unregister(fd)
                        self.open.discard(fd)
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + TICK
                    if self.tree.group is None and self.tree.init is None:
                        self.tree.init = self.tree.namespace_init()
                    limit = self._over_budget(time.monotonic() - started)
                    if limit:
                        return limit
            return None
        finally:
            _signal.set_wakeup_fd(-1)
            for fd in (wake_read, wake_write, exited, *([] if parent is None else [parent])):
                os.close(fd)

    def _over_budget(self, wall: float) -> str | None:
        pids = self.tree.pids()  # one listing of the tree for every read of this look
        self.tree.mark(pids)
        cpu = self.tree.cpu_seconds(pids)
        self.asleep.update(self.tree.threads(pids), cpu)
        if cpu > self.limits["cpu_seconds"]:
            return "cpu"
        if self.asleep.seconds > self.limits["idle_seconds"]:
            return "idle"
        if wall > self.limits["wall_seconds"]:
            return "wall"
        if self.tree.group is None and self.tree.memory(self.limits["memory"], pids) > self.limits["memory"]:
            return "memory"  # a group's limit takes care of itself
        return None

    def _relay(self, fd: int) -> bool:
        """Pass what the sandbox wrote on; False at the end of the stream."""
        data = os.read(fd, 1 << 16)
        if not data:
            return False
        allowed = data[: max(0, self.budget[fd])]
        crossed = self.budget[fd] >= 0 and len(data) > self.budget[fd]
        self.budget[fd] -= len(data)
        note = b"\n[sandbox: the rest of this output was dropped]\n" if crossed else b""
        try:
            os.write(self.targets[fd], allowed + note)
        except OSError:
            pass  # nobody reads our output any more
        return True

    def _drain(self) -> None:
        """What is left in the pipes once the program exited (its descendants are dead too)."""
        for fd in self.targets:
            if fd in self.open:
                os.set_blocking(fd, False)
                try:
                    while self._relay(fd):
                        pass
                except BlockingIOError:
                    pass


class Asleep:
    """Seconds the tree spent neither running nor waiting to run: a sleeping student's, which a
    busy machine does not inflate. From each thread's run time and run-queue delay, counted
    always, or (a kernel) only while its grader says a cell runs (``flag`` exists): the grader's
    own pace between cells is not the student's. A thread that ended since the last look is gone
    from ``/proc``, and its run time with it: so the tree's CPU time that no living thread
    accounts for counts as running too. Without it, a program whose children each compute and
    end between two looks (a scorer's job, a notebook's ``subprocess`` calls) was counted asleep
    for their work: 1.7 s of 3.2 s of a tree that never slept."""

    def __init__(self, flag: str | None):
        self.seconds = 0.0
        self.flag = flag
        self.last: dict[int, tuple[int, int]] = {}  # thread -> nanoseconds run, and waited to run
        self.cpu = 0.0  # the tree's CPU seconds at the last look, ended processes' included
        self.at = time.monotonic()

    def update(self, threads: list[int], cpu: float) -> None:
        """Count the time since the last look; ``cpu``: the tree's CPU seconds so far, those of
        its ended threads and processes included (``Tree.cpu_seconds``)."""
        now = time.monotonic()
        elapsed, self.at = now - self.at, now
        current, active, ran = {}, 0, 0
        for tid in threads:
            fields = _read(f"/proc/{tid}/schedstat").split()
            if len(fields) >= 2:
                current[tid] = (int(fields[0]), int(fields[1]))
                run, waited = self.last.get(tid, (0, 0))
                ran += current[tid][0] - run
                active += sum(current[tid]) - run - waited
        self.last = current
        active += max(0.0, (cpu - self.cpu) * 1e9 - ran)  # the ended threads' run time
        self.cpu = cpu
        if (self.flag is None or os.path.exists(self.flag)) and elapsed > 0:
            self.seconds += elapsed * (1 - min(1.0, active / 1e9 / elapsed))


def _status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
