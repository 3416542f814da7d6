"""Turns on this machine: a scorer's sandbox runs alone, every other sandbox beside the others.

Sandboxes alive at the same time share more of the host than any namespace or seccomp filter
hides: the host's counters (threads, open files, inodes, free memory, CPU time and pressure, all
readable in ``/proc`` and through ``sysinfo``), its CPUs, caches and memory bandwidth (what one
sandbox computes slows another, measurably), and free space of the file systems they both see.
Any of them carries bits from one sandbox to another; measured on two cores, a count of open files
carries about 100 bits a second. Closing each is a list without end (CPU contention has no file to
hide). What matters is who must never talk: a scorer holds a student's hidden inputs, while a
kernel holds the whole ``lib`` (which computes every answer) and another student's scorer holds a
``lib`` lent for another chapter (chapter 2's ``softmax``, which chapter 3 grades) and another
student's code. So a scorer has the machine to itself (``alone``), and the rest run side by side
(``beside``): a kernel beside another kernel holds nothing hidden.

The turns are two ``flock`` locks on files that every grading process on the machine opens (the
sandboxes cannot take locks, ``bwrap.LOCK_COMMANDS``): the room, shared by those beside each
other and exclusive to one alone, and a gate in front of it, which one waiting to be alone holds
so that no newcomer goes in before it (a scorer is not starved by a stream of kernels). A lock goes
with its process: a grading process that is killed leaves no turn behind. Time spent waiting is
added to ``waited`` (a shared counter the grading process sets, ``count_waits``), which the grader
adds to that student's time limit: waiting for a turn is not the student's time.

A turn has no time limit (a scorer of another grading run may rightly hold the room for minutes),
but a wait is never silent: every ``PATIENCE`` seconds a waiting grader says on stderr which
processes hold the lock it waits for (read from ``/proc/locks``), so that an instructor sees at once
a grader of another run, or another account's process holding a turn file it could read.
"""

import fcntl
import os
import pwd
import stat
import sys
import threading
import time
from contextlib import contextmanager

# Every grading process on the machine must find the same files: set the variable for a grader whose
# /tmp is private (a systemd service with PrivateTmp) to a folder all of them see.
VARIABLE = "FORWARDPASS_TURNS"
DEFAULT = "/tmp/forwardpass-turns"
PATIENCE = 120.0  # seconds a grader waits for a turn before it says who holds it (and again each time)
_waited = None  # a shared double (multiprocessing.Value) that waits are added to, or None


def count_waits(counter) -> None:
    """Add this process's waits for a turn to ``counter`` (``.value``, seconds) from now on."""
    global _waited
    _waited = counter


def _open(path: str) -> int:
    """The lock file at ``path``, made if missing (read-only: ``flock`` needs no more, and a file
    another user made in a sticky folder such as /tmp opens so, where a create would be refused)."""
    try:
        return _regular(path, os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except FileNotFoundError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another grader made it meanwhile
            return _regular(path, os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        os.fchmod(fd, 0o644)  # whatever the umask: other users' graders open it too
        return fd


def _regular(path: str, fd: int) -> int:
    """``fd``, if it is a regular file's. A FIFO or a device put at ``path`` in its place (by any
    account that can write the folder) is refused with the path named, rather than opened (a FIFO's
    open would wait for a writer for ever; ``O_NONBLOCK`` keeps it from waiting)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(
            f"{path} is not a regular file: grading cannot take its turns there; remove it, or set "
            f"{VARIABLE} to a folder only the grading account can write"
        )
    return fd


def _lock(fd: int, operation: int, path: str) -> None:
    """``flock(fd, operation)``, saying who holds the lock each ``PATIENCE`` seconds it waits."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass  # held: wait, and watch
    taken, started = threading.Event(), time.monotonic()

    def tell() -> None:
        while not taken.wait(PATIENCE):
            waited = time.monotonic() - started
            _say(f"warning: waiting {waited:.0f} s for a grading turn ({path}), held by {_holders(fd)}")

    threading.Thread(target=tell, name="turns-watch", daemon=True).start()
    try:
        fcntl.flock(fd, operation)
    finally:
        taken.set()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _holders(fd: int) -> str:
    """The processes holding a lock on ``fd``'s file (``/proc/locks``, whose lines read
    ``1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF``; waiters' lines have ``->`` after the number)."""
    st = os.fstat(fd)
    file = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            lines = [line.split() for line in f]
    except OSError as err:
        return f"processes this grader cannot name ({err.strerror})"
    pids = sorted({int(w[4]) for w in lines if len(w) > 5 and w[1] != "->" and w[5] == file})
    return "; ".join(map(_process, pids)) or "a process that has just let go"


def _process(pid: int) -> str:
    """``pid 1234 (user ann: python -m grader autograde ...)``, as far as /proc shows it."""
    try:
        owner = pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read(200).replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, KeyError):
        return f"pid {pid}"
    return f"pid {pid} (user {owner}: {command})"


@contextmanager
def _turn(alone: bool):
    base = os.environ.get(VARIABLE) or DEFAULT
    gate, room = _open(base + ".gate"), _open(base + ".room")
    started = time.monotonic()
    try:
        _lock(gate, fcntl.LOCK_EX, base + ".gate")
        _lock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH, base + ".room")
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)  # the next one in, beside or waiting to be alone
        if _waited is not None:
            _waited.value += time.monotonic() - started
        yield
    finally:
        os.close(room)  # releases the lock
        os.close(gate)


def alone():
    """``with alone():`` no sandbox of any grading process on this machine runs meanwhile (waits
    for those running to finish; those that come later wait for this one)."""
    return _turn(alone=True)


def beside():
    """``with beside():`` sandboxes that hold nothing hidden: side by side with each other, never
    beside one that runs ``alone``."""
    return _turn(alone=False)
