"""The scorer's harness: runs a student's programs and calls their functions, inside the sandbox.

Started by ``grader.scoring`` as::

    python -I -S harness.py --path DIR [--path DIR ...] --job JOB [--job JOB ...] --libs DIR
                            --fd FD --go FD --limit SECONDS

with nothing on ``sys.path`` but the standard library and the ``--path`` folders: NumPy's and this
file's own (``wire``, ``runners``, ``watch``; ``audit`` is loaded apart, ``_private``). No IPython, no ``grader``, no nbgrader. Each ``JOB``
(a pickle written by the grader) is one notebook's program, in notebook order: code cells, each
with the top-level statements to run (or to skip: the diagnosis pass, ``grader.followup``, skips
those that ran past their limit in the first run), and probes, each with the name of the student's function (or
concept-check variable), the exercise's runner and the calls to make, every case's inputs pickled
on their own; and the job's CPU and wall-clock seconds. A call may name another of the student's
functions to call instead (``"function"``: a helper, without the runner) and helpers to watch
while it runs (``"watch"``, see ``grader.watch``); what the watched helpers were given and
returned comes back as ``"seen"``. A call that changes its arguments in place comes back with
``"impure"``, as does one that returns one of them for a probe marked ``"pure"``.

The jobs are one student's notebooks, in the order the grader lends their ``lib``s
(``grader.lending.chains``): job ``j`` imports the ``lib`` in ``DIR/j``, which the grader writes
only once this process asks for it (a line ``lend j``, answered with a byte on the ``--go`` pipe),
and the grader takes no answer to an earlier job from then on. So the answers of a job are all
computed while the sandbox holds no ``lib`` that reaches what that job grades.

Each job runs in a child process of its own, forked once NumPy and the harness's modules are
imported (what a process per notebook would pay again and again), and every C module of the
standard library and NumPy with them (``_load_native``: the job's filter maps no new code), so that no Python state of one
notebook's code reaches the next. Files that code leaves in the scratch folder stay until the
sandbox ends (the audit hook tells of code read from them). A process it leaves behind would write
lines on the grader's pipe while the next job is the newest, and they would count as that job's:
this process adopts every such process, and if one is alive once its job's own process has ended,
asks for no further ``lib`` and ends, the sandbox with it (``_left_behind``). In the job's child,
the program runs statement by statement in one namespace, as a notebook would: a statement that
raises is reported and skipped, and the rest goes on. Each statement and each call has its own limit (``--limit`` seconds of CPU time, twice that of
wall-clock time, with ``setitimer``), so an endless loop costs only itself, and the child has the
job's CPU seconds (``RLIMIT_CPU``) and wall-clock seconds (this parent kills it after them). At a
probe it calls the student's function on each case, with fresh inputs (unpickled anew), through
the runner if there is one. Every line written to ``FD`` starts with its job's number: ``j
{"cell": i}`` when a cell starts, ``j {"cell": i, "line": n, "error": ...}`` when a statement
fails (with ``"statement"``, its position in the cell, and ``"timeout": true`` if it ran too long), ``j {"probe": k, "case": name, "output": <wire record>}`` (or ``"error"``, or
``"timeout"``) per call, ``j {"audit": reason, ...}`` (with the student's cell and line) when
code runs that the scan did not read (``grader.audit``), ``j {"done": true, "cpu": seconds}`` at
the end, and, from this parent,
``j {"exit": status}`` if the child ended otherwise.

Nothing here is trusted: the student's code runs in these processes and may change any of it, or
write lines of its own, ``lend`` lines included. That is harmless by design: what comes back is
only ever the student's outputs, the cases are drawn afresh at every grading, their references and
the comparison stay in the grading process, and the grader decides alone when a job's answers
close and the next ``lib`` is lent (see ``grader.scoring``).
"""

import argparse
import ast
import builtins
import ctypes
import functools
import io
import json
import math
import os
import pickle
import resource
import select
import signal
import sys
import time
import traceback

WALL_FACTOR = 2  # wall-clock seconds allowed per CPU second: a sleeping statement ends too
TOKEN = 32  # characters of the token that asks for a lib (``_lent``; ``grader.scoring``'s reader makes it)


class Timeout(BaseException):
    """A statement or a call ran past its limit (a BaseException: ``except Exception`` in the
    student's code does not swallow it)."""


def _expired(signum, frame):
    raise Timeout


class Limit:
    """``with Limit(seconds):`` raises ``Timeout`` in the block after ``seconds`` of CPU time (or
    ``WALL_FACTOR`` times as many of wall-clock time)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        signal.setitimer(signal.ITIMER_PROF, self.seconds)
        signal.setitimer(signal.ITIMER_REAL, self.seconds * WALL_FACTOR)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


class Report:
    """One line per event of job ``job``, written straight to the grader's pipe."""

    def __init__(self, fd: int, job: int):
        self.fd, self.prefix = fd, f"{job} "

    def __call__(self, **event):
        self.write(self.prefix + json.dumps(event))

    def write(self, line: str):
        data = (line + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:  # the grader stopped reading (its byte cap): nothing more will be heard
            os._exit(3)


class Shell:
    """What ``get_ipython()`` returns here: ``%%capture`` and ``%%time`` run their body, every
    other magic and every shell command does nothing. (IPython's ``display`` builtin, likewise,
    shows nothing.)"""

    def __init__(self, namespace: dict):
        self._namespace = namespace

    def run_cell_magic(self, name, line, body):
        if name in ("capture", "time"):
            exec(compile(body, "<cell magic>", "exec"), self._namespace)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class Inputs(pickle.Unpickler):
    """The grader's pickles name the stand-ins of ``grader.runners``; here that module is
    ``runners``. Everything else (NumPy, the lent ``lib``) is found as named."""

    def find_class(self, module, name):
        return super().find_class("runners" if module == "grader.runners" else module, name)


def inputs(data: bytes) -> dict:
    return Inputs(io.BytesIO(data)).load()


class Program:
    """The student's program and its probes, run in one namespace (``runners`` and ``wire``:
    those modules, imported before any of the student's code runs)."""

    def __init__(self, job: dict, report: Report, limit: float, runners, wire, watch):
        self.cells = {cell["index"]: cell["source"] for cell in job["program"] if "source" in cell}
        self.job, self.report, self.limit, self.runners, self.wire = job, report, limit, runners, wire
        self.watch = watch
        self.trees = {index: _parsed(source, index) for index, source in self.cells.items()}
        # every statement compiled now, before the audit hook is on: what compiles later is not the harness
        self.codes = {index: _compiled(tree, index, limit) for index, tree in self.trees.items()}
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        shell = Shell(self.namespace)
        self.namespace["get_ipython"] = lambda: shell
        self.namespace["display"] = lambda *args, **kwargs: None  # a builtin in IPython kernels

    def run(self):
        for item in self.job["program"]:
            if "probe" in item:
                self.probe(item)
            else:
                self.cell(item)
        self.report(done=True, cpu=time.process_time())

    def cell(self, item: dict):
        index = item["index"]
        self.report(cell=index)
        tree = self.trees[index]
        if isinstance(tree, BaseException):
            self.report(cell=index, line=getattr(tree, "lineno", None), error=_error(tree))
            return
        chosen, skipped = item.get("statements"), item.get("skip", ())
        for position, (statement, code) in enumerate(zip(tree.body, self.codes[index], strict=True)):
            if (chosen is not None and position not in chosen) or position in skipped:
                continue
            try:
                if isinstance(code, BaseException):
                    raise code
                with Limit(self.limit):
                    exec(code, self.namespace)
            except Timeout:
                self.report(
                    cell=index,
                    line=statement.lineno,
                    statement=position,
                    error=f"ran longer than {self.limit:g} s",
                    timeout=True,
                )
            except BaseException as err:  # as a notebook goes on after an error cell
                self.report(cell=index, line=statement.lineno, error=_error(err))

    def probe(self, item: dict):
        number, name = item["probe"], item["name"]
        if item["kind"] == "choice":
            value = self.namespace.get(name)
            if isinstance(value, str):
                self.report(probe=number, case="answer", output={"value": value[:1000]})
            else:
                self.report(probe=number, case="answer", error=f"no answer given ({name} is {_short(value)})")
            return
        runner = getattr(self.runners, item["runner"]) if item.get("runner") else None
        for call in item["calls"]:
            case, target = call["case"], call.get("function", name)
            fn = self.namespace.get(target)
            if not callable(fn):
                self.report(probe=number, case=case, error=f"NameError: no function `{target}` is defined")
                continue
            try:
                given = inputs(call["inputs"])
            except Exception as err:
                self.report(
                    probe=number, case=case, error=f"the grader could not set up this case ({_error(err)})"
                )
                continue
            seen, before = [], inputs(call["inputs"]) if "function" not in call else None
            try:
                with Limit(self.limit), self.watch.watching(self.namespace, call.get("watch", ()), seen):
                    called = fn if runner is None or "function" in call else runner(fn)
                    output = called(**given)
                    record = self.wire.encode(output)
            except Timeout:
                self.report(probe=number, case=case, timeout=self.limit)
                return  # the exercise is lost already: no more waiting on it
            except BaseException as err:
                self.report(probe=number, case=case, error=_error(err), line=self.line(err))
                continue
            extra = {"seen": self.watch.encoded(seen, self.wire.encode)} if seen else {}
            if before is not None:
                impure = self.watch.interfered(given, before, output, bool(item.get("pure")))
                extra.update({"impure": impure} if impure else {})
            self.report(
                probe=number, case=case, **({"output": record} if "error" not in record else record), **extra
            )

    def line(self, err: BaseException) -> str | None:
        """The student's line where ``err`` was raised: the last frame in one of their cells."""
        for frame in reversed(traceback.extract_tb(err.__traceback__)):
            if frame.filename.startswith("<cell ") and frame.filename[6:-1].isdigit():
                lines = self.cells.get(int(frame.filename[6:-1]), "").splitlines()
                if 0 < (frame.lineno or 0) <= len(lines):
                    return f"{frame.lineno}: {lines[frame.lineno - 1].strip()[:200]}"
        return None


def _parsed(source: str, index: int) -> "ast.Module | BaseException":
    """A cell's syntax tree, or why it has none (parsed before the audit hook is installed)."""
    try:
        return ast.parse(source, f"<cell {index}>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        return err


def _compiled(tree, index: int, limit: float) -> list:
    """The code of each top-level statement of a cell's syntax tree, or why it has none."""
    if isinstance(tree, BaseException):
        return []
    codes = []
    for statement in tree.body:
        try:
            with Limit(limit):
                codes.append(compile(ast.Module([statement], []), f"<cell {index}>", "exec"))
        except Timeout:
            codes.append(SyntaxError(f"took longer than {limit:g} s to compile"))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            codes.append(err)
    return codes


def _private(path: str) -> dict:
    """The names the Python file at ``path`` defines, run in a namespace of its own with a copy of
    the builtins: nothing the student's code can reach (``builtins``, ``sys.modules``) is what
    they use (``grader.audit``)."""
    namespace = {"__builtins__": dict(vars(builtins)), "__name__": "audit", "__file__": path}
    with open(path, "rb") as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:300]}"


def _short(value) -> str:
    try:
        return repr(value)[:40]
    except Exception:
        return type(value).__name__


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", action="append", default=[])
    parser.add_argument("--job", action="append", required=True)
    parser.add_argument("--libs", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--go", type=int, required=True)
    parser.add_argument("--limit", type=float, required=True)
    args = parser.parse_args(argv)
    sys.path[:0] = args.path
    import numpy  # noqa: F401 (imported before any student code: a failure here is the harness's)
    import runners
    import watch
    import wire

    _load_native(os.path.dirname(numpy.__file__))

    signal.signal(signal.SIGPROF, _expired)
    signal.signal(signal.SIGALRM, _expired)
    _adopt_orphans()
    _unreadable()
    sink = open(os.devnull, "w")
    sys.stdout = sys.stderr = sink  # the student's prints go nowhere (nbgrader's run shows them)
    for number, path in enumerate(args.job):
        if number and not _lent(args.fd, args.go, number):
            break
        with open(path, "rb") as f:
            job = pickle.load(f)
        lib = os.path.join(args.libs, str(number))
        report = Report(args.fd, number)
        report(ready=True)  # before any of the student's code runs: without it, none of it ran
        roots = [os.path.dirname(os.__file__), *args.path, lib]  # whose files' code is known
        hook = functools.partial(_audit_hook, args.fd, number, roots)
        status = _in_child(
            job["wall"], args.go, _run, job, lib, report, args.limit, runners, wire, watch, hook
        )
        if status:
            report(exit=status)
        if _left_behind():
            break  # the sandbox ends with this process, and the jobs not started run in a new one
    os._exit(0)  # without waiting for processes the student's code may have left running


def _adopt_orphans() -> None:
    """Make this process the parent of every process a job leaves behind (a child subreaper):
    ``_left_behind`` then sees them all."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "the harness could not adopt the processes its jobs leave")


def _left_behind() -> bool:
    """Whether a process the student's code started is still alive, once its job's own process
    has ended (reaping those that ended). Such a process can write lines on the grader's pipe
    for the next job, which the grader takes as that job's: it would answer the next notebook
    with code that lives only in this one (red team, ninth round). The job's filter refuses every
    route to one (``_confine``: ``_posixsubprocess.fork_exec`` ran a function of the student's in
    its child without any audit event); should one be found, no further ``lib``
    is asked for: the harness ends, its sandbox with every process in it, and the grader runs
    the jobs not started in a new one."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _lent(fd: int, go: int, number: int) -> bool:
    """Ask the grader for job ``number``'s ``lib``; whether it was lent (a byte on ``go``).

    The request carries the token the grader put on ``go`` for it (``TOKEN`` characters, after
    the byte that answered the request before): read only now, when no process of the student's
    is alive (``_left_behind``), from a pipe no job's process holds, in a process none can read
    (``_unreadable``), so the student's code, which can write any line on ``fd``, cannot ask."""
    token = _received(go, TOKEN)
    if token is None:
        return False
    # on a line of its own: a line the student's code began and left unfinished ends before it
    Report(fd, number).write(f"\nlend {number} {token.decode('ascii', 'replace')}")
    return _received(go, 1) == b"\0"


def _received(fd: int, size: int) -> bytes | None:
    """``size`` bytes read from ``fd``; None if it ends first."""
    data = b""
    try:
        while len(data) < size and (chunk := os.read(fd, size - len(data))):
            data += chunk
    except OSError:
        return None
    return data if len(data) == size else None


def _unreadable(readable: bool = False) -> None:
    """Make this process's memory and descriptors out of the reach of the other processes of the
    sandbox (``/proc/PID/mem``, ``/proc/PID/fd``, tracing: all run as one user), or, in a job's
    child (``readable``), as they were."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, int(readable), 0, 0, 0):
        raise OSError(ctypes.get_errno(), "the harness could not protect its memory")


def _run(job: dict, lib: str, report: Report, limit: float, runners, wire, watch, make_hook) -> None:
    """In the job's child: its ``lib`` on the path, its CPU time capped, the audit hook on
    (``grader.audit``), its program run."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)  # the sandbox's, without a cgroup
    cap = math.ceil(job["cpu"]) + 1
    cap = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (max(cap - 1, 1), cap))
    sys.path.insert(0, lib)
    _unreadable(readable=True)
    _confine(os.path.join(os.path.dirname(os.path.abspath(__file__)), "job.bpf"))
    program = Program(job, report, limit, runners, wire, watch)
    sys.addaudithook(make_hook())  # nothing here keeps it: the student's code cannot reach it
    program.run()


def _load_native(numpy_folder: str) -> None:
    """Import every C extension module of the standard library (``lib-dynload``) and of NumPy
    (but its test helpers, ``*_tests``, and CPython's, ``_test*``, ``_xx*``, ``xx*``, which the
    sandbox covers: ``grader.sandbox.bwrap.TEST_MODULES``), which no job's process could load once
    its filter refuses new code in memory (``grader.sandbox.bwrap.job_filter``): an honest ``import
    json``, ``np.random`` or an input holding a ``Generator`` finds them loaded. A tenth of a
    second, once per sandbox; one that fails to load is left out."""
    import importlib

    names = []
    for dynload in (
        path for path in sys.path if os.path.basename(path) == "lib-dynload" and os.path.isdir(path)
    ):
        stems = (name.partition(".")[0] for name in sorted(os.listdir(dynload)) if name.endswith(".so"))
        names += [stem for stem in stems if not stem.startswith(("_test", "_xx", "xx"))]
    for folder, _, files in os.walk(numpy_folder):
        inside = os.path.relpath(folder, os.path.dirname(numpy_folder)).split(os.sep)
        stems = (name.partition(".")[0] for name in sorted(files) if name.endswith(".so"))
        names += [".".join([*inside, stem]) for stem in stems if not stem.endswith("_tests")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 (not there, or not loadable here: left out)
            continue


def _audit_hook(fd: int, number: int, roots: list[str]):
    """Job ``number``'s audit hook (``grader.audit``), made from this file's folder's copy."""
    return _private(os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit.py"))["hook"](
        fd, number, roots
    )


def _confine(path: str) -> None:
    """Load the BPF program at ``path`` (``grader.sandbox.bwrap.job_filter``), if the scorer
    wrote one (it runs sandboxed), into this process: from here on, it starts no other program
    and no other process (threads only)."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        program = ctypes.create_string_buffer(f.read())
    libc = ctypes.CDLL(None, use_errno=True)
    fprog = _SockFprog((len(program) - 1) // 8, ctypes.addressof(program))  # sock_filter: 8 bytes
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "the harness could not forbid starting programs and processes")
    apart()


def apart() -> None:
    """Put this process in a Landlock domain of its own, which handles one right nothing here
    uses (making block devices): the kernel then lets it trace no process outside the domain, nor
    open such a process's ``/proc/PID/mem``. Every process of the sandbox runs as one user, and
    its pid 1 (bubblewrap's init, there to reap) is dumpable: code written into it would run in a
    process that no job's limits, filter or end reach, which could answer the next notebook (red
    team, tenth round). A notebook's kernel runs it too, before ipykernel starts
    (``grader.sandbox.KERNEL_ALONE``; round 11)."""
    libc = ctypes.CDLL(None, use_errno=True)
    handled = ctypes.c_uint64(LANDLOCK_ACCESS_FS_MAKE_BLOCK)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(handled), ctypes.sizeof(handled), 0)
    if ruleset < 0 or libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0):
        raise OSError(
            ctypes.get_errno(), "Landlock could not keep this process from the sandbox's other processes"
        )
    os.close(ruleset)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_DUMPABLE, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = (
    4,
    22,
    2,
    36,
    38,
)
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446  # the same on every architecture
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
WALL = 0x40000000  # waitpid's __WALL: children whatever signal they send their parent when they end


def _in_child(wall: float, keep_from_child: int, run, *args) -> int:
    """``run(*args)`` in a child process (without the descriptor ``keep_from_child``), stopped
    after ``wall`` seconds; how it ended (0, an exit status, or minus the signal)."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(keep_from_child)
            run(*args)
            status = 0
        finally:
            os._exit(status)
    ended = os.pidfd_open(pid)
    if not select.select([ended], [], [], wall)[0]:
        os.kill(pid, signal.SIGKILL)
    os.close(ended)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


if __name__ == "__main__":
    main(sys.argv[1:])
