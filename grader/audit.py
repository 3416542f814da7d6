"""What the scorer's harness tells of the code that runs without the integrity scan reading it.

The scan (``grader.integrity``) reads a notebook's cells, but what a program runs cannot be
decided by reading it: lib's implementation kept as text can run through ``exec``, and through
any of the standard library's dozens of routes to it (``timeit``, ``code``, ``pydoc.locate``,
``dataclasses``' own helpers...). Every route ends in one of a few operations of the interpreter,
each of which raises an audit event (PEP 578), and ``hook`` makes the audit hook that the harness
installs in each job's process before the student's first statement (a hook cannot be removed):

- **Text compiled** (``compile``, ``exec``/``eval`` of a string, ``timeit``, a dataclass's
  generated ``__init__``): the text goes to the grader, which scans it as it scans a cell
  (``scoring.Run.ran``, ``autograde.Examined``): timing a function or making a dataclass is no
  finding, lib's code in a string is. The files of the folders whose code is known (the standard
  library, NumPy, the lent ``lib``, the harness: ``roots``) compiled by an import are not sent.
- **Code that did not come from text compiled here** (a code object made by hand, loaded with
  ``marshal`` but from a known ``.pyc`` an import opened, run as a module's body but from a known
  file, a function's ``__code__`` replaced): refused (the operation raises ``PermissionError``)
  and reported. So are other programs started, and the calls that reach the harness's own objects
  (``gc``'s lists of every object, tracing).

Refused operations cannot run what they carried, so nothing computed by them can score. The hook
keeps its state in a closure and writes each report to the grader's pipe before the operation
goes on, after checking that the pipe is still the one it was given (a student's code that points
it elsewhere has its operations refused). All of this runs in the student's process and raises the
price of hiding code; it is not a proof: a frame reached through a traceback (``tb_frame``, which
honest code reads) leads to the harness's objects, and a program started without any audited call
runs unseen. The scores never depend on it.
"""

import importlib.util
import marshal
import os

MAX_TEXT = 64 * 1024  # characters of text compiled at run time sent to the grader, for one job
REFUSED = {
    "code.__new__": "makes a code object by hand (CodeType, code.replace)",
    "gc.get_objects": "lists every object of the process (gc.get_objects)",
    "gc.get_referrers": "looks for what refers to an object (gc.get_referrers)",
    "gc.get_referents": "looks into objects (gc.get_referents)",
    "sys.settrace": "traces the program (sys.settrace)",
    "sys.setprofile": "profiles the program (sys.setprofile)",
    "sys._current_frames": "reads every thread's frames",
    "ctypes.dlopen": "loads a C library (ctypes)",
    "ctypes.dlsym": "looks up a C function (ctypes)",
    "ctypes.cdata": "reads memory at an address (ctypes)",
}
PROGRAMS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork")


def hook(report, pipe: int, roots: list[str]):
    """The audit hook of one job's process: ``report(**event)`` writes a line to the grader's pipe
    (file descriptor ``pipe``). The harness says where the program is (``hook.at``, a dict: the
    cell and line, or the probe) and, before it compiles a cell's statement and runs it, the
    syntax tree and then the code object it made (``hook.expect(tree=...)``, ``(code=...)``)."""
    roots = tuple(os.path.join(os.path.realpath(root), "") for root in roots)
    expected = {"tree": None, "code": None}
    identity = _identity(pipe)
    where = {}  # the cell and line, or the probe, that runs: set by the harness (``at``)
    texts = set()  # (text, file name) compiled at run time, as sent
    module_code = {}  # known file -> the bytecode its source compiles to
    state = {"sent": 0, "opened": "", "busy": False}

    def known(path: str) -> bool:
        return os.path.realpath(path).startswith(roots)

    def send(**event) -> None:
        if _identity(pipe) != identity:
            raise PermissionError("the grader's pipe was replaced: nothing more runs here")
        report(**event, **where)

    def refuse(reason: str) -> None:
        send(audit=reason)
        raise PermissionError(f"the grader does not run this: {reason}")

    def compiled(source, filename) -> None:
        if not isinstance(source, str | bytes):  # a syntax tree: the harness compiles the cells' own
            if source is not expected["tree"]:
                refuse("compiles a syntax tree built at run time")
            return
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        name = os.fsdecode(filename) if isinstance(filename, str | bytes) else "?"
        if known(name) and os.path.isfile(name) and _source(name) == text:
            return  # an import of a file whose code is known
        if (text, name) in texts:
            return
        state["sent"] += len(text)
        if state["sent"] > MAX_TEXT:
            refuse(f"compiles more text at run time than the grader reads ({MAX_TEXT:,} characters)")
        texts.add((text, name))
        send(ran=text, name=name[:200])

    def ran(code) -> None:
        if code is expected["code"] or code.co_filename.startswith("<frozen "):
            return  # a cell's statement, or a module of the interpreter's own
        if _from_text(code, texts):
            return
        if known(code.co_filename) and os.path.isfile(code.co_filename):
            if code.co_filename not in module_code:
                module_code[code.co_filename] = _module_body(code.co_filename)
            if module_code[code.co_filename] == code.co_code:
                return
        refuse(f"runs code that was not compiled from text here ({code.co_filename[:120]})")

    def unmarshalled(data) -> None:
        opened = state["opened"]
        if opened.endswith(".pyc") and known(opened) and _bytes(opened)[16:] == bytes(data):
            return
        refuse("loads compiled code (marshal) that is not a known .pyc an import opened")

    def audit(event: str, args: tuple) -> None:
        if state["busy"]:  # the hook's own calls (reading a file, compiling it) audit nothing
            return
        state["busy"] = True
        try:
            if event == "compile":
                compiled(*args[:2])
            elif event == "exec":
                ran(args[0])
            elif event == "open" and isinstance(args[0], str) and args[1] in ("r", "rb", None):
                state["opened"] = args[0]
            elif event == "marshal.loads":
                unmarshalled(args[0])
            elif event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
                refuse("replaces a function's __code__")
            elif event in REFUSED:
                refuse(REFUSED[event])
            elif event.startswith(PROGRAMS):
                refuse(f"starts another program ({event})")
        finally:
            state["busy"] = False

    audit.at = where
    audit.expect = expected.update
    return audit


def _identity(fd: int) -> tuple:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _from_text(code, texts: set) -> bool:
    """Whether ``code`` is what one of ``texts`` (text, file name) compiles to, under its name."""
    for text, name in texts:
        if name != code.co_filename:
            continue
        for mode in ("exec", "eval", "single"):
            try:
                if compile(text, name, mode).co_code == code.co_code:
                    return True
            except (SyntaxError, ValueError):
                continue
    return False


def _module_body(path: str) -> bytes:
    """The bytecode of the module body of a known file: from its ``.pyc`` where the import system
    takes it from there (a cache of the same folder, up to date with the source by its time and
    size), else compiled from the source (the slower way: most of the hook's cost)."""
    try:
        with open(importlib.util.cache_from_source(path), "rb") as f:
            data = f.read()
        info = os.stat(path)
        header = importlib.util.MAGIC_NUMBER + bytes(4)
        header += (int(info.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (
            info.st_size & 0xFFFFFFFF
        ).to_bytes(4, "little")
        if data[:16] == header:
            return marshal.loads(data[16:]).co_code
    except (OSError, ValueError, EOFError, TypeError, NotImplementedError):
        pass
    return compile(_source(path), path, "exec").co_code


def _source(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
