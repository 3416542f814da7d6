"""The supervisor of one sandbox: a small trusted process outside it (standard library only).

``grader.sandbox.wrap`` makes its command line; jupyter_client starts it as a kernel, or
``grader.sandbox.run`` starts it for a one-off program. It

1. makes the sandbox's cgroup (``grader.sandbox.cgroup``), or, where there is none, notes which
   limits fall back to per-process rlimits;
2. starts bubblewrap (``grader.sandbox.bwrap``) inside that group, with rlimits for file size,
   core dumps and address space (and, without a group, CPU time per process and, through
   ``prlimit`` inside the sandbox's user namespace, the number of processes);
3. watches the whole tree every ``TICK``: its CPU time, the time it spent asleep (neither running
   nor waiting for a CPU, read from every thread's ``/proc/<tid>/schedstat``, so that a busy
   machine does not count against it) and its wall-clock time; it passes the sandbox's stdout and
   stderr on, up to a byte limit;
4. ends the tree (the group's ``kill``, bubblewrap's PID namespace) when a budget is used up, when
   the sandboxed program exits, or when it gets SIGTERM, SIGINT or SIGHUP, its parent's death
   included (``PR_SET_PDEATHSIG``);
5. writes the report, a JSON file the sandbox cannot reach, when the sandbox starts and when it
   ends: which limit ended it, if any, with the tree's CPU, idle and wall seconds, memory peak and
   limit counters (see ``grader.sandbox.describe``); then removes the group and exits with the
   program's status.

If it is killed outright (jupyter_client kills a kernel with SIGKILL), bubblewrap dies with it and
takes the tree along (``--die-with-parent``, PID namespace), and ``grader.sandbox.finish`` does
steps 4 and 5 from the report it left.
"""

import ctypes
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import SCOPE_VARIABLE, Limits, View, bwrap, cgroup
from .report import cell_flag, limit_from_events

TICK = 0.2  # seconds between two looks at the tree
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    args, command = _parse(argv)
    spec = json.loads(args["spec"])
    view, limits = View.from_dict(spec["view"]), Limits(**spec["limits"])
    report = Report(Path(args["report"]), limits)
    stop = _catch_stop_signals()
    asleep = Asleep(None if spec["idle"] == "always" else Path(cell_flag(args["report"])))
    group = home = None
    try:
        group = _make_group(limits)
        cgroups = {c: str(d) for c, d in group.dirs.items()} if group else {}
        report.write(state="starting", guard=group.kind if group else "rlimits", cgroups=cgroups)
        home = None if spec["isolate"] else _private_home()
        keep = [int(fd) for fd in args.get("keep", "").split(",") if fd]
        process, fds = _start(command, view, limits, group, spec, args["copy"], home, keep)
        for fd in fds:
            os.close(fd)
        tree = Tree(group, process.pid)
        report.write(state="running")
        limit = Supervisor(process, tree, limits, stop, spec["relay"], asleep).run()
        report.write(state="ending", limit=limit)
        tree.kill()
        process.wait()
        events = tree.events()
        usage = {"cpu_seconds": round(tree.cpu_seconds(), 3), "idle_seconds": round(asleep.seconds, 3)}
        limit = limit or limit_from_events(events, process.returncode)
        report.write(state="ended", limit=limit, returncode=process.returncode, **events, **usage)
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


def _parse(argv: list[str]) -> tuple[dict, list[str]]:
    """``--spec JSON --report PATH [--copy PATH]... -- COMMAND...`` (no argparse: start-up time)."""
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    args: dict = {"copy": []}
    for name, value in zip(options[::2], options[1::2], strict=True):
        if name == "--copy":
            args["copy"].append(value)
        else:
            args[name.removeprefix("--")] = value
    return args, command


class Report:
    """The JSON report, replaced whole at each write."""

    def __init__(self, path: Path, limits: Limits):
        self.path = path
        self.content = {"launcher": os.getpid(), "limits": limits.as_dict(), "limit": None}
        self.started = time.monotonic()

    def write(self, **fields) -> None:
        self.content.update(fields, wall_seconds=round(time.monotonic() - self.started, 3))
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            partial.write_text(json.dumps(self.content))
            os.replace(partial, self.path)
        except OSError:
            pass  # the run's folder is gone (the grader was interrupted): nobody reads it any more


def _catch_stop_signals() -> list[int]:
    """Turn the stop signals and the parent's death into a wake-up of the supervisor's loop."""
    received: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        received.append(signal.SIGTERM)  # the parent died before the request took effect
    return received


def _make_group(limits: Limits) -> cgroup.Group | None:
    base = cgroup.parent(os.environ.get(SCOPE_VARIABLE))
    if base is None:
        return None
    name = f"sandbox-{os.getpid()}-{os.urandom(3).hex()}"
    return cgroup.Group.create(base, name, limits.memory, limits.pids + bwrap.OWN_PROCESSES)


def _start(command, view, limits, group, spec: dict, copies: list[str], home: Path | None, keep):
    """Start the sandbox (``keep``: descriptors the program gets); returns the process and the
    descriptors to close once it runs."""
    fds: list[int] = []
    isolate = spec["isolate"]
    if not isolate:
        argv, env, cwd = command, _unisolated_environment(view, spec["env"], home), None
    else:
        if group is None and Path("/usr/bin/prlimit").exists():
            command = ["/usr/bin/prlimit", f"--nproc={limits.pids}", "--", *command]
        python, work = [Path(p) for p in spec["python"]], _work_entries(view.work)
        copied = {path: _memfd(Path(path).read_bytes(), fds) for path in copies}
        hidden = [Path(p) for p in spec["hidden"]]
        inner = bwrap.inner(view, limits, python, hidden, spec["env"], work, copied)
        argv = [bwrap.BWRAP, "--args", str(_memfd(_nul_separated(inner), fds)), "--", *command]
        if os.geteuid() == 0:
            for path in view.writable:
                os.chown(path, bwrap.HOST_UID, bwrap.HOST_UID)
            outer = bwrap.outer(*bwrap.sources(view, python, work))
            argv = [bwrap.BWRAP, "--args", str(_memfd(_nul_separated(outer), fds)), *bwrap.demote(), *argv]
        env, cwd = {}, "/"

    def child() -> None:  # in the new process, before exec
        if group is not None:
            group.join()
        _set_rlimits(limits, bounded=group is not None)

    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        pass_fds=[*fds, *keep],
        preexec_fn=child,
        start_new_session=not isolate,
    )
    return process, fds


def _set_rlimits(limits: Limits, bounded: bool) -> None:
    """Per process, inherited by the whole tree: the file size, no core dumps, and the address
    space (an absurd allocation fails with MemoryError in the process that asked for it, where
    the group's limit would kill the largest process of the tree)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    space = limits.memory * (2 if bounded else 1)  # reserved address space is not yet memory
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
    if not bounded:  # the best there is without a group
        seconds = int(limits.cpu_seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))


def _work_entries(work: Path | None) -> list[Path]:
    """The entries of the folder shown in the working folder: files and folders, not links."""
    if work is None:
        return []
    folder = Path(os.path.abspath(work))
    return sorted(p for p in folder.iterdir() if not p.is_symlink() and (p.is_file() or p.is_dir()))[:256]


def _memfd(data: bytes, fds: list[int]) -> int:
    fd = os.memfd_create("sandbox", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    fds.append(fd)
    return fd


def _nul_separated(args: list[str]) -> bytes:
    return b"".join(arg.encode() + b"\0" for arg in args)


def _private_home() -> Path:
    """Home and temporary folder of a program run without isolation (``--no-sandbox``)."""
    import tempfile  # only then: start-up time

    return Path(tempfile.mkdtemp(prefix="sandbox-home-"))


def _unisolated_environment(view: View, env: dict[str, str], home: Path) -> dict[str, str]:
    """The allowed variables for a program run without isolation (``--no-sandbox``): the
    sandbox's home and temporary folders become a private folder on the host."""
    import shutil

    for inside, host in view.read_only_at.items():
        target = home / Path(inside).relative_to(bwrap.TMP)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host, target)
    return {name: value.replace(str(bwrap.TMP), str(home)) for name, value in env.items()}


class Tree:
    """The sandbox's processes: the group's members, or bubblewrap's descendants without one."""

    def __init__(self, group: cgroup.Group | None, root: int):
        self.group, self.root = group, root

    def pids(self) -> list[int]:
        if self.group is not None:
            return self.group.members()
        found, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in _listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in _read(f"/proc/{pid}/task/{task}/children").split()]
        return found

    def threads(self) -> list[int]:
        if self.group is not None:
            return self.group.threads()
        return [int(t) for pid in self.pids() for t in _listdir(f"/proc/{pid}/task")]

    def cpu_seconds(self) -> float:
        usage = self.group.cpu_seconds() if self.group is not None else None
        if usage is not None:
            return usage
        total = 0
        for pid in self.pids():  # own and reaped children's time (fields 14-17 of stat)
            fields = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:15]) if len(fields) > 14 else 0
        return total / CLOCK_TICKS

    def events(self) -> dict:
        if self.group is None:
            return {"oom_kills": None, "pids_refused": None, "memory_peak": None}
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
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    state = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()[:1]
    return bool(state) and state[0] not in ("Z", "X")


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

    def __init__(self, process, tree: Tree, limits: Limits, stop: list[int], relay: int, asleep: "Asleep"):
        self.process, self.tree, self.limits, self.stop, self.asleep = process, tree, limits, stop, asleep
        self.budget = {process.stdout.fileno(): relay, process.stderr.fileno(): relay}
        self.targets = {process.stdout.fileno(): 1, process.stderr.fileno(): 2}

    def run(self) -> str | None:
        """The limit that ended the sandbox, or None if it ended by itself or was stopped."""
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        exited = os.pidfd_open(self.process.pid)
        selector = selectors.DefaultSelector()
        for fd in (*self.targets, wake_read, exited):
            selector.register(fd, selectors.EVENT_READ)
        started = time.monotonic()
        next_look = started + TICK
        try:
            while not self.stop:
                for key, _ in selector.select(max(0.0, next_look - time.monotonic())):
                    if key.fd == exited:
                        self._drain(selector)
                        return None
                    if key.fd == wake_read:
                        os.read(wake_read, 512)
                    elif not self._relay(key.fd):
                        selector.unregister(key.fd)
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + TICK
                    limit = self._over_budget(time.monotonic() - started)
                    if limit:
                        return limit
            return None
        finally:
            signal.set_wakeup_fd(-1)
            selector.close()
            for fd in (wake_read, wake_write, exited):
                os.close(fd)

    def _over_budget(self, wall: float) -> str | None:
        self.asleep.update(self.tree.threads())
        if self.tree.cpu_seconds() > self.limits.cpu_seconds:
            return "cpu"
        if self.asleep.seconds > self.limits.idle_seconds:
            return "idle"
        if wall > self.limits.wall_seconds:
            return "wall"
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

    def _drain(self, selector) -> None:
        """What is left in the pipes once the program exited (its descendants are dead too)."""
        for fd in self.targets:
            if fd in selector.get_map():
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
    own pace between cells is not the student's."""

    def __init__(self, flag: Path | None):
        self.seconds = 0.0
        self.flag = flag
        self.last: dict[int, int] = {}
        self.at = time.monotonic()

    def update(self, threads: list[int]) -> None:
        now = time.monotonic()
        elapsed, self.at = now - self.at, now
        current, active = {}, 0
        for tid in threads:
            fields = _read(f"/proc/{tid}/schedstat").split()
            if len(fields) >= 2:
                current[tid] = int(fields[0]) + int(fields[1])
                active += current[tid] - self.last.get(tid, 0)
        self.last = current
        if (self.flag is None or self.flag.exists()) and elapsed > 0:
            self.seconds += elapsed * (1 - min(1.0, active / 1e9 / elapsed))


def _status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
