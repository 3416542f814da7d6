"""What the scorer's harness tells of the code that runs without the integrity scan reading it.

The scan (``grader.integrity``) reads a notebook's cells, but what a program runs cannot be
decided by reading it: lib's implementation kept as text can run through ``exec``, and through
any of the standard library's dozens of routes to it (``timeit``, ``code``, ``pydoc.locate``,
``dataclasses``' own helpers...). Each route needs a code object, and a code object comes from one
of three operations of the interpreter, each of which raises an audit event (PEP 578):

- **Text compiled** (``compile``, ``exec``/``eval`` of a string, ``timeit``, a dataclass's
  generated ``__init__``): the text goes to the grader, which scans it as it scans a cell
  (``scoring.Run.ran``, ``autograde.Examined``): timing a function or making a dataclass is no
  finding, lib's code in a string is. The files of the folders whose code is known (the standard
  library, NumPy, the lent ``lib``, the harness: ``roots``) compiled by an import are not sent.
- **Compiled code loaded** (``marshal``): allowed for the bytes of a known ``.pyc`` that was just
  opened (an import), refused otherwise.
- **A code object made or changed by hand** (``CodeType``, ``code.replace``, a function's
  ``__code__`` replaced, a syntax tree built at run time and compiled): refused.

So is what reaches the process's own machinery (``gc``'s lists of every object, tracing, reading
memory or calling C through ``ctypes``), another interpreter in the process (a hook added with
``sys.addaudithook`` is its own interpreter's: in a sub-interpreter nothing above is seen or
refused; ``_testcapi``, which makes one with no audit event, is kept out of the sandbox with the
rest of CPython's test modules, ``sandbox.bwrap.hidden``) and other programs started. A refused operation raises
``PermissionError`` and is reported, so nothing computed by it can score. The harness compiles the
cells' own statements before it installs the hook (``harness.Program``), so none of that is the
student's, and the hook finds the cell and line it reports from the stack.

**What the student's code cannot change.** It runs in the same process, so the hook is built to
depend on nothing that code can reach. The harness loads this file in a namespace of its own with
a copy of the builtins (``harness._private``), before any student code runs, and keeps no
reference to it: replacing ``builtins.open``, ``os.path.realpath`` or ``json.dumps`` changes
nothing here, because the judge calls only the C functions bound below. Its state lives in the
frame of a generator (``_judge``), which nothing refers to but the entry function the interpreter
calls; that function's globals are empty and it holds the generator, whose frame is read only
through ``gi_frame`` (refused). No student code runs inside the judge: it reads the events' values
only as exact ``str``/``bytes``/``int`` (a ``str`` subclass's methods are the student's code), and
an exception inside it (a ``RecursionError`` the student provoked, a timeout) is replaced by a
fresh one, the operation refused, so no traceback leads into it. While it runs, an event raised by
something else (a signal handler, another thread) that could bring code in is refused.

What is left: a Python signal handler of the student's runs between any two instructions,
including the judge's first. The hook refuses every operation while such a handler is set and
reports it, so only a handler that fires within the judge's first instructions on its first try is
not seen. A program started without any audited call would run unseen: the sandbox forbids
starting programs (``grader.sandbox``). The scores never depend on the hook: it raises the price of
hiding lib's code, and every attempt that it refuses is a finding.
"""

from _json import encode_basestring_ascii as _quoted
from _signal import getsignal as _getsignal
from _signal import valid_signals as _valid_signals
from gc import disable as _gc_off
from gc import enable as _gc_on
from gc import isenabled as _gc_enabled
from importlib.util import MAGIC_NUMBER as _MAGIC
from posix import O_CLOEXEC, O_NONBLOCK, O_RDONLY
from posix import close as _close
from posix import fstat as _fstat
from posix import open as _open
from posix import read as _read
from posix import readlink as _readlink
from posix import write as _write
from sys import _getframe
from sys import getrecursionlimit as _getrecursionlimit
from types import FunctionType as _Function

MAX_TEXT = 64 * 1024  # characters of text compiled at run time sent to the grader, for one job
MAX_FILE = 64 * 1024 * 1024  # bytes of a known file the hook reads to compare
REFUSED = {
    "code.__new__": "makes a code object by hand (CodeType, code.replace)",
    "gc.get_objects": "lists every object of the process (gc.get_objects)",
    "gc.get_referrers": "looks for what refers to an object (gc.get_referrers)",
    "gc.get_referents": "looks into objects (gc.get_referents)",
    "sys.settrace": "traces the program (sys.settrace)",
    "sys.setprofile": "profiles the program (sys.setprofile)",
    "sys._current_frames": "reads every thread's frames",
    "sys.addaudithook": "adds an audit hook of its own (it would run inside this one's work)",
    "ctypes.dlopen": "loads a C library (ctypes)",
    "ctypes.dlsym": "looks up a C function (ctypes)",
    "ctypes.cdata": "reads memory at an address (ctypes)",
    "ctypes.call_function": "calls a C function (ctypes)",
    "ctypes.PyObj_FromPtr": "makes an object of an address (ctypes)",
    "ctypes.string_at": "reads memory at an address (ctypes)",
    "ctypes.wstring_at": "reads memory at an address (ctypes)",
    # every interpreter made in the process raises it, by whatever module or C call
    "cpython.PyInterpreterState_New": "starts another Python interpreter, which no audit hook of this one watches",
}
PROGRAMS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork")
# what the judge looks at; while it runs, these are refused (they could bring code in)
JUDGED = frozenset({"compile", "marshal.loads", "open", "object.__setattr__", "object.__getattr__", *REFUSED})


def hook(pipe: int, job: int, roots: list[str]):
    """The audit hook of one job's process: it writes ``job {event}`` lines to the grader's pipe
    (file descriptor ``pipe``). Made before any of the student's code runs, with the signal
    handlers the harness set (any other one is the student's)."""
    resolved = (_resolved(root) for root in roots)
    judge = _judge(pipe, job, tuple(real + "/" for real in resolved if real is not None))
    next(judge)
    handlers = tuple((number, _getsignal(number)) for number in _valid_signals())
    defaults = (judge, JUDGED, PROGRAMS, handlers, _getsignal, _getframe, _getrecursionlimit)
    defaults += (_gc_enabled, _gc_off, _gc_on)
    exceptions = (BaseException, ValueError, PermissionError, RecursionError)
    return _Function(_entry.__code__, {"__builtins__": {}}, "audit", (*defaults, *exceptions))


def _entry(  # noqa: PLR0913 (what it uses, bound once: it has no globals)
    event,
    args,
    judge,
    judged,
    programs,
    handlers,
    getsignal,
    getframe,
    limit,
    gc_enabled,
    gc_off,
    gc_on,
    BaseException,
    ValueError,
    PermissionError,
    RecursionError,
):
    """The function the interpreter calls on every event, made by ``hook`` with empty globals and
    these defaults. A frame reached from it (a traceback) holds only the judge, a generator whose
    own frame is refused (``gi_frame``) and which its ``send`` cannot stop."""
    if event not in judged and not event.startswith(programs):
        return
    if event == "object.__getattr__" and args[0] is not judge:
        return
    if judge.gi_running:  # an event inside the judge's own work: its file reads, or an intruder
        if event == "open" or event == "object.__getattr__":
            return
        raise PermissionError("the grader does not run this while it checks another operation")
    for number, handler in handlers:
        if getsignal(number) is not handler:
            event, args = "signal", (number,)
            break
    depth, deep = limit() - 60, True
    try:  # a generator started past the recursion limit ends, and the judge with it: not here
        getframe(depth if depth > 0 else 1)
    except ValueError:
        deep = False
    except BaseException:  # noqa: BLE001 (too deep even to look)
        pass
    if deep:
        raise RecursionError("maximum recursion depth exceeded (in the grader's audit hook)")
    collecting = gc_enabled()
    gc_off()  # a collection inside the judge would run the student's finalizers there
    try:
        refusal = judge.send((event, args))
    except BaseException:  # noqa: BLE001
        refusal = PermissionError("the grader's audit hook could not check this operation")
    if collecting:
        gc_on()
    if refusal is not None:
        raise refusal


def _judge(pipe: int, job: int, roots: tuple[str, ...]):
    """A generator: sent ``(event, args)``, it yields ``None`` or the exception that refuses the
    operation (after reporting it). Its state is its frame's own; nothing stops it (its ``yield``
    is inside its ``try``: a timeout or ``throw`` there refuses one operation)."""
    identity = _identity(pipe)
    texts = set()  # (text, file name) compiled at run time, as sent
    sent = 0
    opened = ""  # the last file an import opened, for ``marshal.loads``
    verdict = None
    while True:
        try:
            event, args = yield verdict
            verdict = None
            if event == "open":
                opened = args[0] if type(args[0]) is str else ""
            elif event == "compile":
                source, name = _exact(args[0]), _exact(args[1] if len(args) > 1 else None)
                name = name if type(name) is str else "?"
                text = source.decode("utf-8", "replace") if type(source) is bytes else source
                if text is None:
                    verdict = _refused(pipe, identity, job, "compiles a syntax tree built at run time")
                elif (text, name) not in texts and not _known_source(name, source, roots):
                    sent += len(text)
                    if sent > MAX_TEXT:
                        reason = (
                            f"compiles more text at run time than the grader reads ({MAX_TEXT:,} characters)"
                        )
                        verdict = _refused(pipe, identity, job, reason)
                    else:
                        texts.add((text, name))
                        _send(pipe, identity, job, {"ran": text, "name": name[:200]})
            elif event == "marshal.loads":
                if not (type(args[0]) is bytes and _known_pyc(opened, args[0], roots)):
                    reason = "loads compiled code (marshal) that is not a known .pyc an import opened"
                    verdict = _refused(pipe, identity, job, reason)
            elif event == "object.__setattr__":
                if len(args) > 1 and type(args[1]) is str and args[1] == "__code__":
                    verdict = _refused(pipe, identity, job, "replaces a function's __code__")
            elif event == "object.__getattr__":
                verdict = _refused(pipe, identity, job, "reads the grader's audit hook")
            elif event == "signal":
                reason = f"sets a signal handler of its own (signal {args[0]}): the grader runs nothing more"
                verdict = _refused(pipe, identity, job, reason)
            elif event in REFUSED:
                verdict = _refused(pipe, identity, job, REFUSED[event])
            else:
                verdict = _refused(pipe, identity, job, f"starts another program ({event})")
        except BaseException as err:  # noqa: BLE001 (a timeout, a RecursionError: the operation does not go on)
            verdict = _failure(type(err))
        # the event's values are let go here, while the entry still holds them: a finalizer of the
        # student's (``__del__``) never runs inside the judge
        event = args = source = name = text = None


def _failure(kind: type) -> BaseException:
    """What refuses an operation the judge could not check: a fresh exception of the same kind
    for those the interpreter or the harness raise on their own (a timeout), else a refusal."""
    if not issubclass(kind, Exception) or kind in (RecursionError, MemoryError):
        try:
            return kind()
        except BaseException:  # noqa: BLE001
            pass
    return PermissionError(f"the grader could not check this operation ({kind.__name__})")


def _refused(pipe: int, identity: tuple, job: int, reason: str) -> PermissionError:
    _send(pipe, identity, job, {"audit": reason})
    return PermissionError(f"the grader does not run this: {reason}")


def _send(pipe: int, identity: tuple, job: int, event: dict) -> None:
    """One line to the grader: ``job {event}`` as JSON, with the cell and line that ran, written
    with the C functions bound above (after checking that ``pipe`` is still the grader's)."""
    if _identity(pipe) != identity:
        raise PermissionError("the grader's pipe was replaced: nothing more runs here")
    cell, line = _where()
    if cell is not None:
        event = {**event, "cell": cell, "line": line}
    fields = []
    for key, value in event.items():
        fields.append(_quoted(key) + ": " + (_quoted(value) if type(value) is str else str(value)))
    data = (str(job) + " {" + ", ".join(fields) + "}\n").encode()
    while data:
        data = data[_write(pipe, data) :]


def _where() -> tuple[int | None, int]:
    """The innermost frame of a cell of the student's (the harness compiles them as ``<cell N>``)
    on the stack: its cell and line."""
    frame = _getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if type(name) is str and name.startswith("<cell ") and name.endswith(">") and name[6:-1].isdigit():
            return int(name[6:-1]), frame.f_lineno or 1
        frame = frame.f_back
    return None, 1


def _exact(value) -> str | bytes | None:
    """``value`` as an exact ``str`` or ``bytes``, without running any method of its own (a
    subclass's are the student's code, and so is ``__class__``, which ``isinstance`` reads), or
    ``None``."""
    kind = type(value)
    if kind is str or kind is bytes:
        return value
    if issubclass(kind, str):
        return str.__getitem__(value, slice(None))
    if issubclass(kind, bytes):
        return bytes.__getitem__(value, slice(None))
    return None


def _known_source(name: str, source: str | bytes, roots: tuple[str, ...]) -> bool:
    """Whether ``source`` is the source of the file ``name`` under one of ``roots`` (an import)."""
    real = _resolved(name)
    data = source if type(source) is bytes else source.encode("utf-8", "surrogatepass")
    return real is not None and real.startswith(roots) and _contents(real) == data


def _known_pyc(path: str, data: bytes, roots: tuple[str, ...]) -> bool:
    """Whether ``data`` is the code in the ``.pyc`` at ``path`` (under one of ``roots``)."""
    real = _resolved(path) if path.endswith(".pyc") else None
    if real is None or not real.startswith(roots):
        return False
    contents = _contents(real)
    return contents is not None and contents[:4] == _MAGIC and contents[16:] == data


def _resolved(path: str) -> str | None:
    """The real path of a folder or a regular file, as the kernel resolves it (``/proc/self/fd``),
    or ``None``."""
    try:
        fd = _open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  # a FIFO's open would wait for a writer
    except (OSError, ValueError, TypeError):
        return None
    try:
        if _fstat(fd).st_mode & 0o170000 not in (0o040000, 0o100000):  # a folder, a regular file
            return None
        return _readlink("/proc/self/fd/" + str(fd))
    except OSError:
        return None
    finally:
        _close(fd)


def _contents(path: str) -> bytes | None:
    """The bytes of the regular file at ``path`` (up to ``MAX_FILE``), or ``None``."""
    try:
        fd = _open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if _fstat(fd).st_mode & 0o170000 != 0o100000:
            return None
        chunks, size = [], 0
        while size <= MAX_FILE:
            chunk = _read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        return None
    finally:
        _close(fd)


def _identity(fd: int) -> tuple:
    info = _fstat(fd)
    return info.st_dev, info.st_ino
