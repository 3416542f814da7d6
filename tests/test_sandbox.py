"""The grading sandbox, attacked for real: each escape and resource attack runs inside a real
bubblewrap sandbox, directly (``sandbox.run``) and through a real kernel (``ResilientExecute``
with the sandboxed kernelspec, as a grading worker runs it).

Nothing here depends on speed: limits are CPU seconds, time asleep or sizes, and the wall-clock
limits are far above what any machine needs. A machine without bubblewrap skips this module; one
with bubblewrap where the sandbox fails, fails it.
"""

import asyncio
import csv
import errno
import getpass
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from attacks import DOUBLE_FORK, FORK_BOMB, marker, survivors
from nbformat.v4 import new_code_cell, new_notebook

from grader import course, execute, outputs, sandbox
from grader.sandbox import Limits, View, bwrap, cgroup, launch, turns

ROOT = Path(__file__).parents[1]
MiB, GiB = 2**20, 2**30
PY = str(bwrap.interpreter("full"))
LIMITS = Limits(
    memory=GiB, pids=64, cpu_seconds=30, wall_seconds=600, tmpfs=64 * MiB, file_size=GiB, idle_seconds=60
)
PUBLIC = View(read_only=tuple(course.public_paths()))

if not os.path.exists(bwrap.BWRAP):
    pytest.skip(f"bubblewrap is not installed ({bwrap.BWRAP})", allow_module_level=True)
GROUP = cgroup.parent()
needs_cgroup = pytest.mark.skipif(
    GROUP is None, reason="no writable cgroup with memory and pids: only per-process rlimits apply here"
)


def test_the_sandbox_works_here():
    assert sandbox.available() is None


def test_a_kernel_without_landlock_is_named_before_any_notebook_is_graded(monkeypatch):
    """The scorer puts each notebook's process in a Landlock domain, and fails closed without
    one: a kernel that lacks it must stop grading before it starts, with the reason, not fail
    every notebook of the class one by one."""
    assert bwrap.landlock_abi() >= 1  # this machine's kernel has it
    monkeypatch.setattr(bwrap, "landlock_abi", lambda: 0)
    told = sandbox.available.__wrapped__()
    assert told.startswith("Landlock is not enabled in this kernel"), told


def python(code: str, *args: str, view: View = PUBLIC, limits: Limits = LIMITS) -> sandbox.Outcome:
    return sandbox.run([PY, "-c", code, *args], view, limits)


def shell(script: str, view: View = PUBLIC, limits: Limits = LIMITS) -> sandbox.Outcome:
    return sandbox.run(["/bin/sh", "-c", script], view, limits)


def printed(outcome: sandbox.Outcome) -> dict:
    assert outcome.returncode == 0, outcome.stderr
    return json.loads(outcome.stdout)


def groups_removed(report: dict) -> bool:
    return not any(Path(p).exists() for p in report.get("cgroups", {}).values())


# ---- walls ------------------------------------------------------------------------------------------


def test_no_user_namespace_mount_or_remount():
    out = shell(
        "unshare -r true; echo unshare-r=$?; unshare -U true; echo unshare-U=$?; unshare -m true; "
        "echo unshare-m=$?; umount /usr; echo umount=$?; mount -o remount,rw /; echo remount=$?; "
        "mount -t tmpfs none /tmp/work; echo mount=$?"
    )
    results = dict(line.split("=") for line in out.stdout.decode().split())
    assert results and all(code != "0" for code in results.values()), results


def test_private_files_are_out_of_reach(tmp_path):
    peer = tmp_path / "peer" / "embeddings.ipynb"
    grades = tmp_path / "out" / "grades.csv"
    for path in (peer, grades):
        path.parent.mkdir(parents=True)
        path.write_text("secret")
    private = [
        ROOT / "solutions",
        ROOT / "grader" / "private" / "concepts.toml",
        ROOT / "grader" / "references" / "hidden",
        ROOT / ".git",
        ROOT / "Makefile",
        peer,
        grades,
    ]
    public = [
        ROOT / "lib" / "__init__.py",
        ROOT / "grader" / "check.py",
        ROOT / "grader" / "diagnosis",
        ROOT / "grader" / "exercises",
    ]
    code = """import json, os, sys
paths = sys.argv[1:]
sys.path.insert(0, paths[0])
try:
    import grader.check  # what a notebook's first cell imports
    imported = "grader.check"
except Exception as err:
    imported = repr(err)
print(json.dumps({
    "imported": imported,
    "exists": {p: os.path.exists(p) for p in paths},
    "root": sorted(os.listdir(paths[0])),
    "grader": sorted(os.listdir(os.path.join(paths[0], "grader"))),
    "references": sorted(os.listdir(os.path.join(paths[0], "grader", "references"))),
}))"""
    seen = printed(python(code, str(ROOT), *map(str, private), *map(str, public)))
    assert [p for p in private if seen["exists"][str(p)]] == []
    assert all(seen["exists"][str(p)] for p in public)
    assert set(seen["root"]) <= {"lib", "chapters", "grader", ".venv"}  # .venv: the Python it runs
    assert seen["imported"] == "grader.check", seen["imported"]
    assert {name for name in seen["grader"] if not name.endswith(".py")} == {
        "diagnosis",
        "exercises",
        "references",
    }
    assert seen["references"] == ["visible"]


def test_public_paths_name_no_private_file():
    private = [ROOT / "solutions", ROOT / "grader" / "private", ROOT / "grader" / "references" / "hidden"]
    for path in course.public_paths():
        assert path.exists(), path
        assert not any(path.is_relative_to(p) or p.is_relative_to(path) for p in private), path


def test_proc_shows_only_the_sandbox():
    code = """import json, os
print(json.dumps({"pids": [int(p) for p in os.listdir("/proc") if p.isdigit()],
                  "init": open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode(),
                  "environ": open("/proc/1/environ", "rb").read().decode()}))"""
    seen = printed(python(code))
    assert os.getpid() not in seen["pids"] and max(seen["pids"]) < 20, seen
    assert seen["init"] == bwrap.BWRAP
    assert {entry.split("=")[0] for entry in seen["environ"].split("\0") if entry} <= {"PWD"}


def test_environment_holds_only_allowed_variables(monkeypatch):
    monkeypatch.setenv("FORWARDPASS_SECRET", "grader-only")
    view = View(env={"NBGRADER_EXECUTION": "autograde"})
    env = printed(python("import json, os; print(json.dumps(dict(os.environ)))", view=view))
    allowed = {"PATH", "HOME", "TMPDIR", "LANG", "USER", "LOGNAME", "PWD", "PYTHONDONTWRITEBYTECODE"}
    allowed |= {*bwrap.THREAD_VARIABLES, "NBGRADER_EXECUTION"}
    assert set(env) <= allowed, set(env) - allowed
    assert env["OMP_NUM_THREADS"] == "1" and env["HOME"] == "/tmp/home"


def test_no_network_and_no_host_socket(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"forwardpass-{uuid.uuid4().hex}"
    listener.bind(f"\0{name}")  # an abstract socket: reachable from the host's network namespace only
    listener.listen()
    code = """import json, socket, sys
found = {}
for what, family, address in [("internet", socket.AF_INET, ("1.1.1.1", 80)),
                               ("loopback", socket.AF_INET, ("127.0.0.1", 22)),
                               ("abstract", socket.AF_UNIX, "\\0" + sys.argv[1])]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(address)
        found[what] = "open"
    except OSError as err:
        found[what] = type(err).__name__
found["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
print(json.dumps(found))"""
    try:
        seen = printed(python(code, name))
    finally:
        listener.close()
    assert "open" not in seen.values(), seen
    assert seen["interfaces"] == ["lo"]


# Families a network namespace does not hold, each opened as the kernel reads the call: the family
# is an int, so a number with bits above 32 set is the same family (a filter that compared all 64
# bits would let it through). AF_VSOCK reaches a virtual machine's hypervisor from any namespace.
FAMILIES = """import ctypes, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
found = dict()
for name, kind in (("AF_UNIX", "SOCK_STREAM"), ("AF_INET", "SOCK_STREAM"), ("AF_VSOCK", "SOCK_STREAM"),
                   ("AF_PACKET", "SOCK_RAW"), ("AF_ALG", "SOCK_SEQPACKET"), ("AF_BLUETOOTH", "SOCK_STREAM")):
    family, kind = getattr(socket, name, None), getattr(socket, kind)
    if family is None:
        continue
    for form, number in ((name, family), (name + " + 2**32", family | 2**32)):
        fd = libc.syscall(ctypes.c_long({socket}), ctypes.c_long(number), kind, 0)
        found[form] = "opened" if fd >= 0 else os.strerror(ctypes.get_errno())
print(json.dumps(found))"""
SOCKET_SYSCALL = {"x86_64": 41, "aarch64": 198}


@pytest.mark.skipif(os.uname().machine not in SOCKET_SYSCALL, reason="socket's syscall number known here")
def test_sockets_only_of_the_families_a_network_namespace_holds():
    found = printed(python(FAMILIES.format(socket=SOCKET_SYSCALL[os.uname().machine])))
    for name in ("AF_UNIX", "AF_INET"):
        assert found[name] == found[name + " + 2**32"] == "opened", found
    refused = {form: seen for form, seen in found.items() if not form.startswith(("AF_UNIX", "AF_INET"))}
    assert set(refused.values()) == {os.strerror(errno.EAFNOSUPPORT)}, refused


# Two sandboxes at once, as two students are graded side by side: the first signals through what
# the host's kernel keeps per file (both see the standard library), the second listens. A lock at
# a chosen offset carries 63 bits that the other reads back with F_OFD_GETLK; a directory notice
# (F_NOTIFY) or an inotify watch hears the other's reads; fadvise drops a page that the other
# then finds missing with RWF_NOWAIT. A kernel with the whole ``lib`` could answer a scorer so.
SIGNAL = """import fcntl, os, struct, sys, time
f = os.open(os.__file__, os.O_RDONLY)
try:
    fcntl.fcntl(f, 37, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 0x5EC2E7, 1, 0))  # F_OFD_SETLK
    print("locked", flush=True)
except OSError as err:
    print(err.strerror, flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    os.close(os.open(os.__file__, os.O_RDONLY))
    os.posix_fadvise(f, 0, 0, os.POSIX_FADV_DONTNEED)
    time.sleep(0.01)"""
LISTEN = """import ctypes, fcntl, json, os, select, signal, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
f = os.open(os.__file__, os.O_RDONLY)
heard, deadline = {}, time.monotonic() + float(sys.argv[1])
def attempt(name, call):
    try:
        heard[name] = call()
    except OSError as err:
        heard[name] = err.strerror
notify = os.open(os.path.dirname(os.__file__), os.O_RDONLY)
signal.signal(signal.SIGIO, lambda *args: heard.__setitem__("F_NOTIFY", "heard a read"))
attempt("F_NOTIFY", lambda: fcntl.fcntl(notify, 1026, 1 | 0x80000000) and None)  # DN_ACCESS, multishot
watch = libc.inotify_init1(os.O_NONBLOCK)
heard["inotify"] = os.strerror(ctypes.get_errno()) if watch < 0 else None
if watch >= 0:
    libc.inotify_add_watch(watch, os.__file__.encode(), 0x20)  # IN_OPEN
while time.monotonic() < deadline and not heard.get("lock"):
    def query():
        lock = fcntl.fcntl(f, 36, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))  # F_OFD_GETLK
        kind, _, start, _, _ = struct.unpack("hhqqi4x", lock)
        return hex(start) if kind != fcntl.F_UNLCK else None
    attempt("lock", query)
    if watch >= 0 and select.select([watch], [], [], 0)[0]:
        heard["inotify"] = "heard an open"
    attempt("RWF_NOWAIT", lambda: os.preadv(f, [bytearray(1)], 0, os.RWF_NOWAIT) and "cached")
    time.sleep(0.05)
print(json.dumps(heard))"""


def test_one_sandbox_cannot_signal_to_another_through_shared_files():
    with ThreadPoolExecutor(1) as pool:
        minimal = [bwrap.interpreter("minimal"), "-c", SIGNAL, "12"]  # a scorer's view: the standard library
        sender = pool.submit(sandbox.run, minimal, View(python="minimal"), LIMITS)
        heard = printed(python(LISTEN, "10"))
        sent = sender.result()
    assert sent.returncode == 0 and sent.stdout.decode().strip() == os.strerror(errno.ENOLCK), sent
    assert heard == {
        "F_NOTIFY": os.strerror(errno.EPERM),
        "inotify": os.strerror(errno.EPERM),
        "lock": os.strerror(errno.ENOLCK),
        "RWF_NOWAIT": os.strerror(errno.EOPNOTSUPP),
    }, heard


def test_a_scorer_has_the_machine_alone_and_kernels_share_it(tmp_path, monkeypatch):
    """``turns``: kernels (``beside``) run together; a scorer (``alone``) waits until those in
    have left, and no kernel that asks meanwhile goes in before it has finished; the time waited
    is counted (the grader adds it to the student's time limit). Threads stand for the grading
    processes: each turn opens the lock files anew, and ``flock`` takes each opening apart."""
    monkeypatch.setenv(turns.VARIABLE, str(tmp_path / "turns"))
    waited = type("Counter", (), {"value": 0.0})()
    turns.count_waits(waited)
    asked, inside = set(), {}
    leave = {name: threading.Event() for name in ("k1", "k2", "scorer", "k3")}

    def take(name: str, turn) -> None:
        asked.add(name)
        with turn():
            inside[name] = True
            leave[name].wait(60)
            inside[name] = False

    def soon(condition) -> bool:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    def start(name: str, turn) -> threading.Thread:
        """A thread that asks for its turn, once it has asked (its wait starts there, however late a
        busy machine runs it: the sleeps below each add to the waits, whatever the load)."""
        thread = threading.Thread(target=take, args=(name, turn))
        thread.start()
        assert soon(lambda: name in asked)
        return thread

    try:
        threads = [start("k1", turns.beside)]
        assert soon(lambda: inside.get("k1"))
        threads.append(start("k2", turns.beside))
        assert soon(lambda: inside.get("k2")) and inside["k1"]  # side by side
        threads.append(start("scorer", turns.alone))
        time.sleep(0.5)
        assert "scorer" not in inside  # two kernels in
        threads.append(start("k3", turns.beside))
        time.sleep(0.5)
        assert "k3" not in inside  # a scorer waits: no newcomer goes in first
        leave["k1"].set()
        time.sleep(0.3)
        assert "scorer" not in inside  # one kernel still in
        leave["k2"].set()
        assert soon(lambda: inside.get("scorer"))
        time.sleep(0.3)
        assert "k3" not in inside  # the scorer is alone
        leave["scorer"].set()
        assert soon(lambda: inside.get("k3"))
        leave["k3"].set()
        for thread in threads:
            thread.join(30)
    finally:
        turns.count_waits(None)
        for event in leave.values():
            event.set()
    assert waited.value > 2  # the scorer's wait (at least 1.3 s of sleeps) and k3's (at least 1.1 s)


@pytest.mark.parametrize("turn", ["alone", "beside"])
def test_a_fifo_in_place_of_a_turns_file_is_refused_with_its_path(tmp_path, monkeypatch, turn):
    """Anyone who can write the turns' folder can put a FIFO where a lock file goes: opening it
    would wait for a writer for ever, silently, and every grader on the machine with it (red team,
    ninth round). It is refused instead, with the path named."""
    monkeypatch.setenv(turns.VARIABLE, str(tmp_path / "turns"))
    os.mkfifo(tmp_path / "turns.gate")
    outcome = {}

    def take():
        try:
            with getattr(turns, turn)():
                outcome["entered"] = True
        except OSError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(60)
    assert "turns.gate is not a regular file" in outcome.get("error", ""), outcome


def test_a_grader_waiting_for_a_turn_names_the_process_that_holds_it(tmp_path, monkeypatch):
    """Any account that can read a turns file can hold its lock, and a grader of another run rightly
    holds it while its scorer runs: either way every grader on the machine waits. The wait has no
    limit, but it is never silent: the waiting grader names the holder, pid, user and command."""
    monkeypatch.setenv(turns.VARIABLE, str(tmp_path / "turns"))
    monkeypatch.setattr(turns, "PATIENCE", 0.2)
    said = queue.Queue()
    monkeypatch.setattr(turns, "_say", said.put)
    hold = "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path / "turns.room")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    entered = threading.Event()

    def take():
        with turns.alone():
            entered.set()

    try:
        assert holder.stdout.readline() == "held\n"
        threading.Thread(target=take, daemon=True).start()
        message = said.get(timeout=60)
        assert not entered.is_set()
    finally:
        holder.communicate("", timeout=60)  # lets go
    assert entered.wait(60)
    assert message.startswith("warning: waiting") and "turns.room" in message, message
    assert f"pid {holder.pid} (user {getpass.getuser()}: {sys.executable} -c import fcntl" in message, message


def test_no_capabilities_and_not_root_on_the_host():
    code = """import json
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
try:
    value = open("/proc/sys/vm/swappiness").read()
    open("/proc/sys/vm/swappiness", "w").write(value)  # the same value: harmless if it worked
    sysctl = "written"
except OSError as err:
    sysctl = type(err).__name__
print(json.dumps({key: status[key].strip() for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")}
                 | {"uid_map": open("/proc/self/uid_map").read().split(), "sysctl": sysctl}))"""
    seen = printed(python(code))
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"
    inside, outside, _ = seen["uid_map"]
    assert inside == str(bwrap.UID) and outside != "0"
    assert seen["sysctl"] != "written"


def test_the_sandbox_is_the_first_the_oom_killer_takes():
    """Each sandbox's memory is capped, not the sum of the caps: when students graded side by side
    fill the machine, the kernel's out-of-memory killer must take their code, not a grader's worker
    or the grader (the largest processes by size, when the memory is in socket buffers)."""
    code = "import os; print(open('/proc/self/oom_score_adj').read().strip()); os.system('cat /proc/self/oom_score_adj')"
    assert python(code).stdout.decode().split() == [launch.OOM_SCORE_ADJ] * 2  # and what it starts
    assert Path("/proc/self/oom_score_adj").read_text().strip() != launch.OOM_SCORE_ADJ  # not the grader


CAP_SYS_RESOURCE = 24


def _has_capability(number: int) -> bool:
    status = dict(
        line.split(":\t", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":\t" in line
    )
    return bool(int(status["CapEff"], 16) >> number & 1)


def test_a_lowered_oom_score_does_not_stay_lowered():
    """Without ``CAP_SYS_RESOURCE`` (a grader run as another user, a container whose root lacks
    it), the supervisor's mark sets no floor: code inside may lower its score again, and a child's.
    The supervisor must set it back on every process of the tree. The program lowers both, then
    waits (a generous deadline: no speed is assumed) until both hold the mark again."""
    code = """
import os, subprocess, sys, time
def lower(pid):
    try:
        open(f"/proc/{pid}/oom_score_adj", "w").write("0")
    except OSError as err:
        return type(err).__name__
    return open(f"/proc/{pid}/oom_score_adj").read().strip()
child = subprocess.Popen(["/bin/sleep", "300"])
lowered = [lower(os.getpid()), lower(child.pid)]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    held = [open(f"/proc/{pid}/oom_score_adj").read().strip() for pid in (os.getpid(), child.pid)]
    if held == ["1000", "1000"]:
        break
    time.sleep(0.1)
child.kill()
print(json.dumps({"lowered": lowered, "held": held}))
""".replace("import os,", "import json, os,")
    limits = Limits(**{**LIMITS.as_dict(), "idle_seconds": 300})
    runner = (
        "import json, sys\nfrom grader import sandbox\nfrom grader.sandbox import Limits, View\n"
        "outcome = sandbox.run(json.loads(sys.argv[1]), View(read_only=tuple(json.loads(sys.argv[2]))), "
        "Limits(**json.loads(sys.argv[3])))\n"
        "sys.stdout.write(json.dumps({'returncode': outcome.returncode, 'stdout': outcome.stdout.decode(), "
        "'stderr': str(outcome.stderr)}))"
    )
    argv = [
        sys.executable,
        "-c",
        runner,
        json.dumps([PY, "-c", code]),
        json.dumps([str(p) for p in PUBLIC.read_only]),
    ]
    argv.append(json.dumps(limits.as_dict()))
    if _has_capability(CAP_SYS_RESOURCE):  # the supervisor must lack it, as it may elsewhere
        argv = ["setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource", *argv]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
    outcome = json.loads(done.stdout)
    assert outcome["returncode"] == 0, outcome["stderr"]
    seen = json.loads(outcome["stdout"])
    assert seen["held"] == [launch.OOM_SCORE_ADJ] * 2, seen  # lowered: what the writes left at first


@pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes run as the grader's own user unless it is root")
def test_each_sandbox_runs_as_a_host_user_of_its_own(tmp_path):
    """Not ``nobody`` for all: the kernel counts some resources per host user whatever the
    namespaces (epoll watches: one sandbox holding ``fs.epoll.max_user_watches`` of them made
    every other sandbox's ZeroMQ abort, so a neighbour's kernel could not start)."""
    word = marker()
    tmp_path.chmod(0o755)  # readable by the sandboxes' users
    go = tmp_path / "go"
    wait = f"import os, time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.05)"

    def programs() -> list[int]:  # the sandboxed programs, not their supervisors
        found = []
        for pid in survivors(word):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"-c"]:
                    found.append(pid)
            except OSError:
                pass
        return found

    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(sandbox.run, [PY, "-c", wait, word], View(read_only=(tmp_path,)), LIMITS)
            for _ in "ab"
        ]
        deadline = time.monotonic() + 60
        while len(found := programs()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        uids = {Path(f"/proc/{pid}").stat().st_uid for pid in found}
        go.touch()
        assert all(run.result().returncode == 0 for run in runs)
    assert len(found) == 2 and len(uids) == 2, (found, uids)
    assert all(uid in bwrap.HOST_UIDS for uid in uids)


# The kernel's keyrings are not a file, a process or an IPC object: a key added to a user's or
# session keyring outlives the process that added it, so a keyring shared by sandboxes (the host
# user's, or the grader's session keyring inherited) would carry data from one student to the next.
SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
KEYRINGS = {"session": -3, "user": -4, "user-session": -5}
KEYS = """import ctypes, json, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
add_key, keyctl = {syscalls}[platform.machine()]
found = {{}}
for name, ring in {keyrings}.items():
    if sys.argv[1] == "add":
        done = libc.syscall(add_key, b"user", b"redteam-note", b"from A", ctypes.c_size_t(6), ctypes.c_long(ring))
    else:  # KEYCTL_SEARCH
        done = libc.syscall(keyctl, ctypes.c_long(10), ctypes.c_long(ring), b"user", b"redteam-note", ctypes.c_long(0))
    found[name] = done > 0 or os.strerror(ctypes.get_errno())
print(json.dumps(found))"""


@pytest.mark.skipif(os.uname().machine not in SYSCALLS, reason="keyctl's syscall numbers known here")
def test_keyrings_carry_nothing_from_one_sandbox_to_the_next():
    code = KEYS.format(syscalls=SYSCALLS, keyrings=KEYRINGS)
    refused = dict.fromkeys(KEYRINGS, os.strerror(errno.EPERM))  # no keyring at all (seccomp)
    assert printed(python(code, "add")) == refused
    assert printed(python(code, "search")) == refused


# The kernel's most exploited interfaces, which nothing in a notebook needs: each worked from
# inside (io_uring, userfaultfd in its user-mode-only form, perf events, keyrings). Their numbers,
# from the kernel's tables (not libseccomp's, which compiles the filter), on x86_64 and arm64.
REFUSED = {"io_uring_setup": (2, "params"), "userfaultfd": (1,), "perf_event_open": ("attr", 0, -1, -1, 0),
           "keyctl": (1, 0), "bpf": (0, 0, 0), "unshare": (0,), "mount": (0, 0, 0, 0, 0)}  # fmt: skip
NUMBERS = {
    "x86_64": {"io_uring_setup": 425, "userfaultfd": 323, "perf_event_open": 298, "keyctl": 250, "bpf": 321,
               "unshare": 272, "mount": 165},
    "aarch64": {"io_uring_setup": 425, "userfaultfd": 282, "perf_event_open": 241, "keyctl": 219, "bpf": 280,
                "unshare": 97, "mount": 40},
}  # fmt: skip
CALLS = """import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
buffers = {{"params": ctypes.create_string_buffer(120), "attr": ctypes.create_string_buffer(128)}}
buffers["attr"][0:8] = (1).to_bytes(4, sys.byteorder) + (128).to_bytes(4, sys.byteorder)  # a software clock
found = {{}}
for name, (number, args) in {calls}.items():
    args = [ctypes.addressof(buffers[a]) if isinstance(a, str) else a for a in args]
    done = libc.syscall(ctypes.c_long(number), *map(ctypes.c_long, args))
    found[name] = "worked" if done >= 0 else os.strerror(ctypes.get_errno())
print(json.dumps(found))"""


@pytest.mark.skipif(os.uname().machine not in NUMBERS, reason="their numbers are known here")
def test_the_kernels_riskiest_interfaces_are_refused():
    table = NUMBERS[os.uname().machine]
    calls = {name: (table[name], args) for name, args in REFUSED.items()}
    assert printed(python(CALLS.format(calls=calls))) == dict.fromkeys(REFUSED, os.strerror(errno.EPERM))


# getpid through x86_64's other ABIs, whose numbers a table of 64-bit ones would not catch (the
# 32-bit int 0x80 calls: keyctl is 288 there), and through the native one: mov eax, N; call; ret.
OTHER_ABIS = """import ctypes, json, mmap
found = {}
for abi, code in (("int 0x80", "b814000000cd80c3"), ("x32", "b8270000400f05c3"),
                  ("x86_64", "b8270000000f05c3")):
    memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    memory.write(bytes.fromhex(code))
    found[abi] = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))()
print(json.dumps(found))"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64's other system call ABIs")
def test_calls_through_another_abi_are_refused():
    found = printed(python(OTHER_ABIS))
    assert found == {"int 0x80": -errno.ENOSYS, "x32": -errno.ENOSYS, "x86_64": found["x86_64"]}
    assert found["x86_64"] > 0  # the native getpid works


def test_writes_land_only_in_the_working_tmpfs():
    targets = [
        "/x",
        "/usr/x",
        "/etc/x",
        "/dev/x",
        "/dev/shm/x",
        f"{ROOT}/lib/x",
        "/tmp/work/x",
        "/tmp/home/x",
    ]
    code = """import json, sys
found = {}
for path in sys.argv[1:]:
    try:
        open(path, "w").write("x")
        found[path] = "written"
    except OSError as err:
        found[path] = type(err).__name__
print(json.dumps(found))"""
    seen = printed(python(code, *targets))
    assert [p for p, result in seen.items() if result == "written"] == ["/tmp/work/x", "/tmp/home/x"]
    assert not (ROOT / "lib" / "x").exists()


def test_the_tmpfs_cap_holds_and_counts_as_memory():
    out = shell("dd if=/dev/zero of=/tmp/work/big bs=1M count=2048 2>&1; echo status=$?")
    assert "No space left on device" in out.stdout.decode() and "status=0" not in out.stdout.decode()
    if out.report["memory_peak"] is not None:
        assert out.report["memory_peak"] < LIMITS.memory


def test_stdout_is_passed_on_up_to_the_file_size_limit():
    limits = Limits(**{**LIMITS.as_dict(), "file_size": MiB})
    out = python("import sys; sys.stdout.write('x' * 8 * 2**20)", limits=limits)
    assert MiB <= len(out.stdout) < MiB + 100 and out.stdout.endswith(b"dropped]\n")


def test_descriptors_can_be_passed_in():
    read, write = os.pipe()
    try:
        outcome = sandbox.run(
            [PY, "-c", f"import os; os.write({write}, b'through')"], PUBLIC, LIMITS, pass_fds=(write,)
        )
        os.close(write)
        assert outcome.returncode == 0 and os.read(read, 100) == b"through"
    finally:
        os.close(read)


def test_minimal_python_has_the_standard_library_only():
    view = View(python="minimal")
    code = """import json, os, sys
try:
    import numpy
    numpy_found = True
except ImportError:
    numpy_found = False
print(json.dumps({"numpy": numpy_found, "venv": os.path.exists(sys.argv[1])}))"""
    outcome = sandbox.run(
        [str(bwrap.interpreter("minimal")), "-I", "-S", "-c", code, str(ROOT / ".venv")], view, LIMITS
    )
    assert printed(outcome) == {"numpy": False, "venv": False}


def _package_folders(top: str = "/usr", depth: int = 5) -> list[str]:
    """Every folder of installed packages of a Python of the system's (``site-packages``,
    ``dist-packages``) down to ``depth`` below ``top``."""
    found = []
    for folder, subfolders, _ in os.walk(top):
        if folder.endswith(("/site-packages", "/dist-packages")):
            found.append(folder)
            subfolders.clear()
        elif folder.count("/") - top.count("/") >= depth:
            subfolders.clear()
    return found


def test_minimal_python_sees_none_of_the_systems_installed_packages():
    """Debian's ``dist-packages`` (``apt install python3-scipy``) and ``pip``'s under ``/usr/local``
    are in ``/usr``, which the view shows: a scorer's code could put one on its path and import
    ``scipy.special.softmax``. Each shows empty, but for a path the view binds inside it."""
    folders = [f for f in _package_folders() if os.listdir(f)]
    if not folders:
        pytest.skip("no Python of the system's has installed packages here")
    bound = os.path.join(folders[0], sorted(os.listdir(folders[0]))[0])
    code = "import json, os, sys\nprint(json.dumps({f: os.listdir(f) for f in sys.argv[1:]}))"
    view = View(read_only=(bound,), python="minimal")
    outcome = sandbox.run([str(bwrap.interpreter("minimal")), "-I", "-S", "-c", code, *folders], view, LIMITS)
    assert printed(outcome) == {f: [os.path.basename(bound)] if f == folders[0] else [] for f in folders}


# ---- processes ---------------------------------------------------------------------------------------


def test_the_sandbox_cannot_signal_the_grader():
    code = """import json, os, signal, sys
found = {}
for pid in map(int, sys.argv[1:]):
    try:
        os.kill(pid, signal.SIGSTOP)
        found[pid] = "signalled"
    except OSError as err:
        found[pid] = type(err).__name__
try:
    os.kill(-1, signal.SIGKILL)  # everything it may signal: none but itself and its namespace's init
    found["all"] = "signalled"
except OSError as err:
    found["all"] = type(err).__name__
print(json.dumps(found))"""
    seen = printed(python(code, str(os.getpid()), str(os.getppid())))
    assert set(seen.values()) == {"ProcessLookupError"}


def test_open_files_are_capped_per_process():
    """The machine's open files (fs.file-max) are shared by every sandbox; the grader, root, is
    exempt. Each process of a sandbox may hold OPEN_FILES, however many the grader may."""
    code = """import json, os, resource
opened = []
try:
    while len(opened) < 5000:
        opened.append(os.eventfd(0))
except OSError as err:
    print(json.dumps({"limit": resource.getrlimit(resource.RLIMIT_NOFILE), "opened": len(opened)}))"""
    seen = printed(python(code))
    assert seen["limit"] == [launch.OPEN_FILES] * 2 and seen["opened"] < launch.OPEN_FILES


def test_a_setsid_double_fork_does_not_survive():
    word = marker()
    outcome = python(DOUBLE_FORK + "\nprint('parent exits')", word)
    assert outcome.stdout == b"parent exits\n"
    assert survivors(word) == [] and groups_removed(outcome.report)


def test_the_cpu_budget_ends_a_busy_loop():
    limits = Limits(**{**LIMITS.as_dict(), "cpu_seconds": 3})
    outcome = python("while True:\n    pass", limits=limits)
    assert outcome.report["limit"] == "cpu", outcome.report
    assert sandbox.describe(outcome.report) == "used its 3 s of CPU time"
    assert outcome.report["cpu_seconds"] >= 3 and groups_removed(outcome.report)


def test_a_sleeper_is_stopped_by_the_idle_budget():
    limits = Limits(**{**LIMITS.as_dict(), "idle_seconds": 2})
    outcome = python("import time\ntime.sleep(600)", limits=limits)
    assert outcome.report["limit"] == "idle", outcome.report
    assert sandbox.describe(outcome.report) == "used its 2 s of time asleep"


def test_a_child_that_computed_and_ended_between_two_looks_was_not_asleep(monkeypatch):
    """A thread that ended since the supervisor's last look is gone from ``/proc``, its run time
    with it; the tree's CPU time still holds it. A tree that never slept, its children each
    computing and ending within a tick (a scorer's job, a notebook's ``subprocess`` calls), was
    counted asleep for their work: 1.7 s of 3.2 s (20 children of 0.15 s), and an idle budget of
    1 s ended it. Here one look sees the parent (thread 10) and a child (11); by the next, 10 s
    later, the child has computed 9.9 s and ended while the parent waited for it."""
    schedstat = {10: "10000000 0 5", 11: "0 0 0"}  # nanoseconds run, waited to run; time slices
    monkeypatch.setattr(launch, "_read", lambda path: schedstat.get(int(path.split("/")[2]), ""))
    asleep = launch.Asleep(None)
    asleep.update([10, 11], cpu=0.01)
    asleep.seconds, asleep.at = 0.0, time.monotonic() - 10
    del schedstat[11]
    asleep.update([10], cpu=9.91)
    assert asleep.seconds < 5, asleep.seconds  # about 0.1 s; 10 s when the child's work was lost


def test_the_wall_clock_backstop():
    limits = Limits(**{**LIMITS.as_dict(), "wall_seconds": 2, "idle_seconds": float("inf")})
    outcome = python("import time\ntime.sleep(600)", limits=limits)
    assert outcome.report["limit"] == "wall", outcome.report


@needs_cgroup
def test_a_fork_bomb_is_contained_and_leaves_nothing():
    word = marker()
    limits = Limits(**{**LIMITS.as_dict(), "cpu_seconds": 5, "pids": 32})
    outcome = python(FORK_BOMB, word, limits=limits)
    assert outcome.report["limit"] == "cpu" and outcome.report["pids_refused"] > 0, outcome.report
    assert survivors(word) == [] and groups_removed(outcome.report)


@needs_cgroup
def test_memory_spread_over_children_is_capped_in_total():
    code = """import os, time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 2**20)  # written: every page is touched
        time.sleep(2)
        os._exit(0)
    children.append(pid)
print(sorted(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children))"""
    limits = Limits(**{**LIMITS.as_dict(), "memory": 768 * MiB})
    outcome = python(code, limits=limits)
    assert outcome.report["oom_kills"] >= 1, outcome.report
    assert outcome.report["memory_peak"] <= limits.memory
    assert "-9" in outcome.stdout.decode()  # a child was killed for the group's memory


def test_a_program_that_cannot_start_is_reported():
    """Started by the supervisor itself (``--no-sandbox``; bubblewrap reports its own failures)."""
    outcome = sandbox.run(["/nonexistent/program"], PUBLIC, LIMITS, isolate=False)
    assert outcome.returncode == 1 and "FileNotFoundError" in outcome.stderr
    assert outcome.report["state"] == "ended" and groups_removed(outcome.report)
    assert outcome.report["error"].startswith("FileNotFoundError: [Errno 2]"), outcome.report


def test_the_supervisor_imports_little():
    """Its start is paid twice per notebook: builtin and small modules only (no timing here, the
    modules it loads; ``benchmarks/bench_sandbox_start.py`` measures the time)."""
    argv = sandbox.wrap(["true"], PUBLIC, LIMITS, "/nonexistent")
    imports = argv[argv.index("-c") + 1].replace("sys.exit(main(sys.argv[1:]))", "")
    listing = "print(' '.join(sorted(sys.modules))); print(hasattr(sys.modules['grader.sandbox'], 'wrap'))"
    done = subprocess.run([argv[0], "-I", "-S", "-c", imports + listing], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    modules, package_ran = done.stdout.splitlines()
    loaded = set(modules.split())
    assert {"grader.sandbox.launch", "grader.sandbox.bwrap", "grader.sandbox.cgroup"} <= loaded
    heavy = {
        "json",
        "re",
        "pathlib",
        "dataclasses",
        "subprocess",
        "selectors",
        "enum",
        "signal",
        "functools",
        "ctypes",
    }
    assert loaded & heavy == set()
    assert package_ran == "False"  # grader/sandbox/__init__.py did not run


def test_the_supervisor_ends_the_sandbox_when_its_parent_dies(tmp_path):
    """The grader killed outright (or jupyter_client's process): no ``finish`` will come, so the
    supervisor ends the tree, writes its report and removes the group by itself."""
    word = marker()
    report = tmp_path / "report"
    argv = sandbox.wrap([PY, "-c", "import time; time.sleep(600)", word], PUBLIC, LIMITS, report)
    code = (
        "import subprocess as s, sys, time; print(s.Popen(sys.argv[1:], stdout=s.DEVNULL).pid, flush=True); "
        "time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, text=True)
    with parent.stdout:
        supervisor = int(parent.stdout.readline())  # its command line holds the word too
    deadline = time.monotonic() + 60
    while sandbox.read_report(report).get("state") != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.read_report(report).get("state") == "running", "the sandbox did not start"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60
    while sandbox.read_report(report).get("state") != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
    final = sandbox.read_report(report)  # the supervisor's own, not ``finish``'s
    assert final["state"] == "ended" and final["limit"] is None and final["returncode"] is not None
    assert set(survivors(word)) <= {supervisor}  # the sandboxed program is gone before "ended"
    while (survivors(word) or not groups_removed(final)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the supervisor removes the group and exits just after
    assert survivors(word) == [] and groups_removed(final)


V1_CPU = any(  # a cgroup v1 hierarchy with the cpu controller is mounted (read apart from the code tested)
    " - cgroup " in line and "cpu" in line.split()[-1].split(",")
    for line in Path("/proc/self/mountinfo").read_text().splitlines()
)


@pytest.mark.skipif(
    GROUP is None or GROUP.version != 1 or not V1_CPU, reason="cgroup v1 with a cpu controller only"
)
def test_on_cgroup_v1_each_sandbox_has_a_cpu_group_with_an_equal_share(tmp_path):
    """As under v2 (siblings with the same ``cpu.weight``): each sandbox its own group in v1's
    ``cpu`` hierarchy, with the same ``cpu.shares``, so that a student whose code starts many
    processes gets no more of a busy machine than one who starts one."""
    word = marker()
    report = tmp_path / "report"
    argv = sandbox.wrap([PY, "-c", "import time; time.sleep(600)", word], PUBLIC, LIMITS, report)
    supervisor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sandbox.read_report(report).get("state") != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        running = sandbox.read_report(report)
        assert running.get("state") == "running", "the sandbox did not start"
        cpu = Path(running["cgroups"]["cpu"])
        assert (cpu / "cpu.shares").read_text().strip() == str(cgroup.V1_SHARES)
        members = {int(p) for p in (cpu / "cgroup.procs").read_text().split()}
        assert members and members == set(cgroup.Group(1, running["cgroups"]).members())
    finally:
        supervisor.terminate()
        supervisor.wait(timeout=60)
    assert groups_removed(sandbox.read_report(report))


def test_a_v1_group_whose_cpu_and_cpuacct_share_a_mount_is_one_directory(tmp_path):
    """``cpu,cpuacct`` mounted together (the usual v1 layout): one directory for both, made,
    limited and removed once (files here stand for the kernel's)."""
    shared, memory, pids = tmp_path / "cpu,cpuacct", tmp_path / "memory", tmp_path / "pids"
    for folder in (shared, memory, pids):
        folder.mkdir()
    base = cgroup.Parent(
        1, {"cpu": str(shared), "cpuacct": str(shared), "memory": str(memory), "pids": str(pids)}
    )
    group = cgroup.Group.create(base, "sandbox-x", 2**20, 8)
    assert group.paths == sorted(
        {str(shared / "sandbox-x"), str(memory / "sandbox-x"), str(pids / "sandbox-x")}
    )
    assert (shared / "sandbox-x" / "cpu.shares").read_text() == str(cgroup.V1_SHARES)


def test_a_killed_supervisor_leaves_nothing_after_finish(tmp_path):
    word = marker()
    report = tmp_path / "report.json"
    argv = sandbox.wrap([PY, "-c", "import time; time.sleep(600)", word], PUBLIC, LIMITS, report)
    supervisor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sandbox.read_report(report).get("state") != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.read_report(report).get("state") == "running", "the sandbox did not start"
    supervisor.kill()  # as jupyter_client kills a kernel
    supervisor.wait()
    final = sandbox.finish(report)
    assert final["state"] == "ended" and groups_removed(final)
    deadline = time.monotonic() + 10
    while survivors(word) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(word) == []


@needs_cgroup
def test_the_groups_a_killed_process_left_are_removed_by_the_next_scope(tmp_path, monkeypatch):
    """A grader killed outright (SIGKILL, the OOM killer, a Dask worker its nanny gave up on) runs
    no ``finally``: its scope stayed, empty or with a sandbox still in it, and so did the group of
    a supervisor killed outside any scope. The next scope removes both, kills what still runs in
    them, and leaves alone the groups of a run that still runs (another instructor's)."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id nobody has now
    word = marker()
    dead = cgroup.make_scope(f"forwardpass-{gone.pid}-0a0b0c")
    monkeypatch.setenv(cgroup.SCOPE_VARIABLE, f"forwardpass-{gone.pid}-0a0b0c")
    started = []
    for name in ("inside", "outside"):
        report = tmp_path / f"{name}.report"
        argv = sandbox.wrap([PY, "-c", "import time; time.sleep(600)", word], PUBLIC, LIMITS, report)
        started.append((subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), report))
        monkeypatch.delenv(cgroup.SCOPE_VARIABLE, raising=False)  # the second outside any scope
    groups = []
    for supervisor, report in started:
        deadline = time.monotonic() + 60
        while sandbox.read_report(report).get("state") != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox.read_report(report).get("state") == "running", "the sandbox did not start"
        mine = list(sandbox.read_report(report)["cgroups"].values())
        # checked before the kill: from then on any scope may remove them (another grader's on a
        # busy machine as well as the one below), which is what the test is about
        assert all(Path(g).exists() for g in mine) and survivors(word)
        groups += mine
        supervisor.kill()  # SIGKILL: its group stays, with the sandbox in it
        supervisor.wait()
    alive = cgroup.make_scope(f"forwardpass-{os.getpid()}-0d0e0f")  # a run that still runs
    try:
        with sandbox.scope():
            pass
        assert not any(Path(d).exists() for d in dead.dirs.values())
        assert not any(Path(g).exists() for g in groups)
        assert all(Path(d).is_dir() for d in alive.dirs.values())
        deadline = time.monotonic() + 10
        while survivors(word) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert survivors(word) == []
    finally:
        cgroup.remove_scope(alive)


# ---- through a kernel --------------------------------------------------------------------------------


def run_notebook(
    tmp_path, sources: list[str], released: list[str] = (), timeout: int = 300, supervisor: str = "", **limits
):
    """Execute a notebook of these cells in the sandboxed kernel, in a worker process of its own
    (``supervisor``: statements its supervisor runs first); returns (the executed notebook, the
    worker's peak RSS, its stderr)."""
    folder = tmp_path / "notebook"
    folder.mkdir(exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), folder / "n.ipynb")
    (tmp_path / "release" / "a").mkdir(parents=True, exist_ok=True)
    nbformat.write(
        new_notebook(cells=[new_code_cell(s) for s in released]), tmp_path / "release" / "a" / "n.ipynb"
    )
    spec = {
        "notebook": str(folder / "n.ipynb"),
        "out": str(tmp_path / "executed.ipynb"),
        "runtime": str(runtime(tmp_path)),
        "release": str(tmp_path / "release"),
        "timeout": timeout,
        "limits": {**LIMITS.as_dict(), **limits},
        "public": [str(p) for p in course.public_paths()],
        "writable": [str(outside(tmp_path))],
        "supervisor": supervisor,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "sandboxed_notebook.py"), str(tmp_path / "spec.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    maxrss = json.loads(done.stdout.splitlines()[-1])["maxrss"]  # after the kernel's banner
    return nbformat.read(tmp_path / "executed.ipynb", as_version=4), maxrss, done.stderr


def outside(tmp_path) -> Path:
    """A host folder the test's kernels may write (the socket folder is sealed before cells run)."""
    path = tmp_path / "outside"
    path.mkdir(exist_ok=True)
    return path


def runtime(tmp_path) -> Path:
    path = tmp_path / "k"
    path.mkdir(exist_ok=True)
    return path


def text(cell) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


def stopped(cell) -> str | None:
    """What the grader's note in ``cell`` says stopped the notebook there, if one does."""
    for out in cell.outputs:
        if out.output_type == "stream" and out.name == outputs.GRADER_STREAM:
            if found := re.fullmatch(r"\[grader: (.*); the remaining cells were not run\]\n", out.text):
                return found[1]
    return None


def test_kernel_walls(tmp_path):
    neighbour = tmp_path / "neighbour" / "sockets"
    neighbour.mkdir(parents=True)
    (neighbour / "kernel-1").write_text("another student's kernel")
    probe = f"""import json, os, signal
own = "{runtime(tmp_path)}"
found = {{
    "neighbour": os.path.exists("{neighbour}"),
    "runtime": sorted(os.listdir(own)),
    "connection": os.path.exists(own + "/kernel.json"),
    "pids": [int(p) for p in os.listdir("/proc") if p.isdigit()],
    "ppid": os.getppid(),
    "env": sorted(os.environ),
}}
for name in ("kernel.json", "{sandbox.report_for("kernel.json")}", "sockets/extra"):
    try:
        open(os.path.join(own, name), "a").close()
        found[name] = "written"
    except OSError as err:
        found[name] = type(err).__name__
try:
    os.kill({os.getpid()}, signal.SIGSTOP)
    found["signal"] = "sent"
except OSError as err:
    found["signal"] = type(err).__name__
print(json.dumps(found))"""
    nb, _, _ = run_notebook(tmp_path, [probe])
    seen = json.loads(text(nb.cells[0]))
    assert not seen["neighbour"] and seen["runtime"] == ["kernel.json", "sockets"] and seen["connection"]
    assert seen["kernel.json"] != "written"
    report = sandbox.read_report(sandbox.report_for(runtime(tmp_path) / "kernel.json"))  # the host's, intact
    assert report["state"] == "ended" and report["limit"] is None
    # Its own socket folder: sealed once the kernel is ready, when the grader runs as root.
    assert seen["sockets/extra"] == ("PermissionError" if os.geteuid() == 0 else "written")
    assert seen["signal"] == "ProcessLookupError" and seen["ppid"] == 1 and max(seen["pids"]) < 40
    assert "NBGRADER_EXECUTION" in seen["env"] and "JPY_PARENT_PID" not in seen["env"]


def test_an_endless_cell_is_interrupted_and_the_next_cells_run(tmp_path):
    nb, _, _ = run_notebook(tmp_path, ["while True:\n    pass", "print('next cell ran')"], timeout=5)
    assert [o.ename for o in nb.cells[0].outputs if o.output_type == "error"][-1] in (
        "KeyboardInterrupt",
        "CellTimeoutError",
    )
    assert text(nb.cells[1]) == "next cell ran\n"


def test_the_cpu_budget_stops_the_notebook_and_says_where(tmp_path):
    """5 s: the kernel's start takes about one, and the endless cell spends the rest (a larger
    budget is only a longer wait)."""
    nb, _, _ = run_notebook(tmp_path, ["x = 1", "while True:\n    pass", "print('never')"], cpu_seconds=5)
    assert stopped(nb.cells[1]) == "the notebook used its 5 s of CPU time in cell 2"
    assert nb.cells[2].outputs == []


class _QuietKernel:
    """A kernel client and manager whose output stream stays quiet (``quiet=None`` waits for ever,
    as a real stream with no message does) and whose kernel is alive for ``alive`` checks."""

    dropped = 0

    def __init__(self, alive: int):
        self.alive, self.checks = alive, 0

    async def next_output(self, quiet):
        if quiet is None:
            await asyncio.Event().wait()
        await asyncio.sleep(quiet)

    def is_alive(self) -> bool:
        self.checks += 1
        return self.checks <= self.alive


def test_a_cells_outputs_are_not_awaited_from_a_kernel_that_is_gone(monkeypatch):
    """A kernel that ignored the timeout's interrupt and was then ended by a limit sends no
    "idle": the wait for its outputs ends once the stream is quiet and the kernel is gone, not
    after ``IOPUB_WAIT`` (30 s of every such notebook, and of its neighbour's scorer waiting for
    the turn); while the kernel lives, the wait goes on."""
    monkeypatch.setattr(execute, "QUIET_ALIVE_CHECK", 0.01)
    executor = execute.ResilientExecute()
    executor.kc = executor.km = kernel = _QuietKernel(alive=3)
    asyncio.run(asyncio.wait_for(executor._async_poll_output_msg("m", None, 0), timeout=10))
    assert kernel.checks == 4


def test_the_idle_budget_stops_a_sleeping_notebook(tmp_path):
    sleeps = ["import time\ntime.sleep(3)"] * 20
    nb, _, _ = run_notebook(tmp_path, sleeps, idle_seconds=4)
    stops = [i for i, cell in enumerate(nb.cells) if stopped(cell)]
    assert len(stops) == 1 and stops[0] <= 3, [text(c) for c in nb.cells]
    assert stopped(nb.cells[stops[0]]) == f"the notebook used its 4 s of time asleep in cell {stops[0] + 1}"


@needs_cgroup
def test_the_memory_limit_stops_the_notebook_and_says_where(tmp_path):
    hog = """import subprocess, sys, time
mine = bytearray(600 * 2**20)
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(500 * 2**20); import time; time.sleep(60)"])
time.sleep(30)"""
    nb, _, _ = run_notebook(tmp_path, ["x = 1", hog, "print('never')"], memory=GiB)
    assert stopped(nb.cells[1]) == "the notebook reached its memory limit of 1 GiB in cell 2"


def test_a_kernel_that_fails_before_student_code_runs_again(tmp_path):
    flag = outside(tmp_path) / "first-attempt"
    course_cell = (
        f"import os\nif not os.path.exists('{flag}'):\n    open('{flag}', 'w').close()\n    os._exit(1)"
    )
    nb, _, stderr = run_notebook(tmp_path, [course_cell, "print('student code ran')"], released=[course_cell])
    assert text(nb.cells[0]) == "" and text(nb.cells[1]) == "student code ran\n"
    assert "running the notebook again" in stderr


def test_a_kernel_that_dies_in_student_code_is_not_run_again(tmp_path):
    count = outside(tmp_path) / "attempts"
    student = f"open('{count}', 'a').write('x')\nimport os\nos._exit(1)"
    nb, _, _ = run_notebook(tmp_path, ["x = 1", student, "print('never')"], released=["x = 1"])
    assert stopped(nb.cells[1]) == "the kernel died in cell 2" and count.read_text() == "x"


def test_a_stop_is_a_note_of_the_graders_which_no_error_can_imitate(tmp_path):
    """The words of a stop are a note (the grader's own stream, ``outputs.note``); an error the
    student's code raises under the name and message the grader once used for a stop is the
    student's error, and the notebook goes on."""
    forged = 'raise type("KernelDied", (Exception,), {})("the kernel died in cell 2")'
    nb, _, _ = run_notebook(tmp_path, ["x = 1", forged, "print('next cell ran')"])
    assert [o.ename for o in nb.cells[1].outputs if o.output_type == "error"] == ["KernelDied"]
    assert not any(map(stopped, nb.cells)) and text(nb.cells[2]) == "next cell ran\n"


DIES_PRINTING = (
    "import os, threading, time\n"
    "def flood():\n    while True:\n        print('x' * 1000, flush=True)\n"
    "threading.Thread(target=flood, daemon=True).start()\ntime.sleep(1)\nos._exit(0)"
)


def test_a_kernel_that_dies_while_it_prints_ends_only_its_notebook(tmp_path):
    # A kernel that dies in the middle of sending a message: with the old reconnection, libzmq
    # aborted the worker (and the student lost every grade) in about one run out of two.
    nb, _, _ = run_notebook(tmp_path, ["x = 1", DIES_PRINTING, "print('never')"], released=["x = 1"])
    assert stopped(nb.cells[1]) == "the kernel died in cell 2" and not nb.cells[2].outputs


def test_a_huge_output_does_not_reach_the_worker(tmp_path):
    cells = ["print('x' * 160 * 2**20)", "print('next cell ran')"]
    nb, maxrss, _ = run_notebook(tmp_path, cells, memory=3 * GiB, file_size=GiB)
    assert "an output larger than 16 MiB was not kept" in text(nb.cells[0])
    assert text(nb.cells[1]) == "next cell ran\n"
    assert maxrss < 300 * MiB, maxrss  # taking the message would have cost twice its size, 320 MiB


# Messages under ``MAX_MESSAGE`` that the worker holds unread, in ZeroMQ's receiving thread (its
# default high-water mark, 1,000 messages, is 16 GB: past this machine's memory): 14 MiB of JSON
# that the kernel signs and sends in a few milliseconds (one buffer, sent again and again without
# a copy) and the grader parses in ten times as long, with a parent that is no cell's so that
# nothing is kept (100 took a grading worker to 2.4 GB, 24 to 590 MB); and requests for input, on a channel
# the grader never reads.
QUEUE_FLOODS = {
    "outputs": """import json
kernel = get_ipython().kernel
socket, auth = kernel.iopub_thread.socket, kernel.session.auth
content = b'{"name": "stdout", "text": "", "junk": [' + b"0," * (7 * 2**20) + b'0]}'
parent, metadata = b'{"msg_id": "no cell"}', b"{}"
for i in range(24):
    header = json.dumps({"msg_id": str(i), "msg_type": "stream", "username": "u", "session": "s",
                         "date": "2026-01-01T00:00:00Z", "version": "5.3"}).encode()
    signature = auth.copy()
    for part in (header, parent, metadata, content):
        signature.update(part)
    frames = [b"<IDS|MSG>", signature.hexdigest().encode(), header, parent, metadata, content]
    kernel.iopub_thread.schedule(lambda frames=frames: socket.send_multipart(frames, copy=False))
print("sent")""",
    "input-requests": """kernel = get_ipython().kernel
request = {"prompt": "x" * 14 * 2**20, "password": False}
for i in range(48):
    kernel.session.send(kernel.stdin_socket, "input_request", request, parent=kernel.get_parent("shell"),
                        ident=kernel._parent_ident["shell"])
print("sent")""",
}


@pytest.mark.parametrize("way", QUEUE_FLOODS)
def test_the_kernel_cannot_queue_messages_in_the_worker(tmp_path, way):
    nb, maxrss, _ = run_notebook(tmp_path, [QUEUE_FLOODS[way], "print('next cell ran')"], memory=3 * GiB)
    assert maxrss < 400 * MiB, maxrss
    assert text(nb.cells[1]) == "next cell ran\n"


CUT_WHILE_READ_AHEAD = """
import asyncio, sys, zmq
from grader.execute import CappedKernelClient

async def main(folder):
    kc = CappedKernelClient(transport="ipc", ip=f"{folder}/k", iopub_port=1, shell_port=2,
                            stdin_port=3, hb_port=4, control_port=5)
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(f"ipc://{folder}/k-1")
    kc.start_channels(shell=False, iopub=True, stdin=False, hb=False, control=False)
    while not await kc.iopub_channel.socket.poll(50):  # a poll reads a message's first frame ahead
        kc.session.send(pub, "stream", {"name": "stdout", "text": "sent before the cut"})
    pub.close(linger=0)  # the kernel's end of the stream is gone, as when a kernel dies
    while not kc.dropped:
        await asyncio.sleep(0.01)
    print((await kc.next_output(quiet=5))["content"]["text"])
    kc.stop_channels()

asyncio.run(main(sys.argv[1]))
"""


def test_a_cut_output_stream_loses_no_message_already_read_ahead(tmp_path):
    # Once, the watcher of cuts disconnected the socket itself, at once, and libzmq then aborted
    # the whole grading process on the half-read message (it did, now and then, when a kernel died).
    done = subprocess.run(
        [sys.executable, "-c", CUT_WHILE_READ_AHEAD, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.splitlines()[0] == "sent before the cut"


# Ways past the notebook's output cap (``grader.execute.MAX_OUTPUT``, 64 MiB) that send no single
# message over ``MAX_MESSAGE``: widget state (nbclient keeps it in the notebook's metadata), one
# display update that rewrites every output shown with its id (2 MiB sent, 128 MiB written),
# output metadata, and JSON of many tiny values (four outputs of 12 MB took a worker to 3.6 GB).
# Each makes the executed notebook, which nbgrader writes and reads back in the worker's scratch
# space (memory), far larger than the cap.
PAST_THE_CAP = {
    "widget-state": """from comm import create_comm
state = {"_model_name": "M", "_model_module": "m", "_model_module_version": "1"}
widget = create_comm(target_name="jupyter.widget", data={"state": state, "buffer_paths": []})
for i in range(6):
    widget.send({"method": "update", "state": {f"k{i}": "w" * 12_000_000}, "buffer_paths": []})""",
    "display-update": """from IPython.display import display, update_display
for i in range(64):
    display("x", display_id="shown")
update_display({"text/plain": "y" * 2 * 2**20}, display_id="shown", raw=True)""",
    "output-metadata": """from IPython.display import publish_display_data
for i in range(6):
    publish_display_data({"text/plain": "m"}, metadata={"m": "m" * 12_000_000})""",
    # 12 MB of JSON, 250 MB of objects in the grading process
    "json-values": """from IPython.display import publish_display_data
publish_display_data({"application/json": {"v": [[]] * 4_000_000}, "text/plain": "j"})""",
}


@pytest.mark.parametrize("way", PAST_THE_CAP)
def test_nothing_the_kernel_sends_grows_the_notebook_past_its_cap(tmp_path, way):
    nb, _, _ = run_notebook(tmp_path, [PAST_THE_CAP[way]])
    stored = nbformat.writes(nb)
    assert len(stored) < execute.MAX_OUTPUT + MiB
    assert sum(map(stored.count, ",[{")) < execute.MAX_OUTPUT // execute.VALUE_COST  # JSON values
    assert "widgets" not in nb.metadata
    if way != "widget-state":  # ignored whole; the others are kept up to the cap, with a note
        assert "the rest was not kept" in text(nb.cells[0])


def test_the_kernel_cannot_flood_the_worker_log(tmp_path):
    nb, _, stderr = run_notebook(tmp_path, ["import os\nos.write(2, b'z' * 8 * 2**20)", "print('ok')"])
    assert text(nb.cells[1]) == "ok\n"
    assert stderr.count("z") <= MiB and "the rest of this output was dropped" in stderr


# ---- without a cgroup, and without a sandbox ----------------------------------------------------------


def without_cgroups(argv: list[str], limits: Limits, tmp_path) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``argv`` under a supervisor that finds no cgroup, as on a machine without one."""
    report = tmp_path / "report.json"
    done = subprocess.run(supervised_without_cgroups(argv, limits, report), capture_output=True, text=True)
    return done, sandbox.finish(report)


def supervised_without_cgroups(argv: list[str], limits: Limits, report: Path) -> list[str]:
    """The command of a supervisor of ``argv`` that finds no cgroup (its report at ``report``)."""
    return supervised(argv, limits, report, NO_CGROUP)


NO_CGROUP = "import grader.sandbox.cgroup as cgroup; cgroup.parent = lambda scope=None: None; "


def supervised(argv: list[str], limits: Limits, report: Path, patch: str) -> list[str]:
    """The command of a supervisor of ``argv`` that runs the statements ``patch`` first."""
    command = sandbox.wrap(argv, PUBLIC, limits, report)
    args = command[command.index("-c") + 2 :]
    start = "from grader.sandbox.launch import main"
    bootstrap = sandbox.SUPERVISOR.replace(start, patch + start)
    return [sys.executable, "-I", "-S", "-c", bootstrap, *args]


def fake_vmstat(path: Path, oom_kills: int) -> str:
    """Write a ``/proc/vmstat`` with this count of the machine's OOM kills at ``path`` (writable by
    a sandbox's user); returns the statements that point a supervisor without a cgroup at it."""
    path.write_text(f"pgfault 1\noom_kill {oom_kills}\n")
    path.chmod(0o666)
    return f"{NO_CGROUP}import grader.sandbox.launch as launch; launch.VMSTAT = {str(path)!r}; "


def test_without_a_cgroup_rlimits_still_bound_each_process(tmp_path):
    word = marker()
    code = (
        """try:
    bytearray(2 * 2**30)
    print("allocated", flush=True)
except MemoryError:
    print("MemoryError", flush=True)
"""
        + FORK_BOMB
    )
    limits = Limits(**{**LIMITS.as_dict(), "cpu_seconds": 5, "pids": 32})
    done, report = without_cgroups([PY, "-c", code, word], limits, tmp_path)
    assert report["guard"] == "rlimits" and report["limit"] == "cpu", report
    assert done.stdout.startswith("MemoryError")  # the address space of one process is capped
    assert survivors(word) == []


SPREAD = """import os, time
for _ in range(4):
    if os.fork() == 0:
        block = bytearray(100 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(60)
        os._exit(0)
time.sleep(60)"""


def test_without_a_cgroup_memory_spread_over_children_ends_the_sandbox(tmp_path):
    """Red team 12, finding 04: each process's address space was capped, not the tree's memory;
    a kernel held up to 128 processes x its limit, and the machine's OOM killer then took a
    neighbour's kernel. The supervisor now sums the tree's memory at each look."""
    limits = Limits(**{**LIMITS.as_dict(), "memory": 256 * MiB, "cpu_seconds": 20, "wall_seconds": 60})
    _, report = without_cgroups([PY, "-c", SPREAD], limits, tmp_path)  # 400 MiB in four children
    assert report["guard"] == "rlimits" and report["limit"] == "memory", report
    assert sandbox.describe(report) == "reached its memory limit of 0.25 GiB"


def test_without_a_cgroup_the_tmpfs_files_count_as_memory(tmp_path):
    """Empty files take no page of the tmpfs but about 1 KB of the machine's memory each: 200,000
    fitted in a 1 MiB tmpfs."""
    code = """import time
for n in range(300_000):
    open(f"/tmp/f{n}", "w").close()
time.sleep(60)"""
    limits = Limits(**{**LIMITS.as_dict(), "memory": 128 * MiB, "tmpfs": MiB, "wall_seconds": 120})
    _, report = without_cgroups([PY, "-c", code], limits, tmp_path)
    assert report["guard"] == "rlimits" and report["limit"] == "memory", report


def test_without_a_cgroup_pages_children_share_count_once(tmp_path):
    """An honest ``multiprocessing`` pool forks a parent that holds its data: the children share
    its pages (their resident sizes would count them in each, 500 MiB here), so a tree's memory
    is summed by proportional set size, and this one is not ended."""
    code = """import os, time
block = bytearray(100 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
for _ in range(4):
    if os.fork() == 0:
        sum(block[::4096])
        time.sleep(2)
        os._exit(0)
time.sleep(3)
print("done", flush=True)"""
    limits = Limits(**{**LIMITS.as_dict(), "memory": 320 * MiB})
    done, report = without_cgroups([PY, "-c", code], limits, tmp_path)
    assert report["guard"] == "rlimits" and report["limit"] is None and done.stdout == "done\n", report
    assert 100 * MiB < report["memory_peak"] < 320 * MiB


def test_without_a_cgroup_the_report_keeps_the_trees_cpu_time(tmp_path):
    """Read once the tree was killed, the CPU time of a tree without a group was 0.0 in every
    report, so a scorer's CPU was never taken off its student's allowance (``Allowance.spend``).
    The report keeps the most a look found."""
    code = """import time
started = time.process_time()
while time.process_time() - started < 1:
    pass
time.sleep(1)"""
    _, report = without_cgroups([PY, "-c", code], LIMITS, tmp_path)
    assert report["guard"] == "rlimits" and report["cpu_seconds"] >= 0.9, report


@pytest.mark.parametrize("moment", ["running", "started"])
def test_without_a_cgroup_a_killed_supervisor_leaves_nothing_after_finish(tmp_path, moment):
    """jupyter_client kills a supervisor outright when it is slow to end. Run as root, the
    parent-death signals stopped at the change of user between the two bubblewraps, and the
    whole sandbox (a daemon in it too) outlived it: without a group, ``finish`` ends it through
    the supervisor's session, which holds both bubblewraps. Red team 12 ended it through the PID namespace's first
    process, which the supervisor noted at its first look; killed before that look (at
    "running"), the supervisor left the whole sandbox running."""
    word, report = marker(), tmp_path / "report"
    program = DOUBLE_FORK + "\nprint('started', flush=True)\ntime.sleep(600)"
    argv = supervised_without_cgroups([PY, "-c", program, word], LIMITS, report)
    supervisor = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if moment == "started":
        assert supervisor.stdout.readline() == b"started\n"
    deadline = time.monotonic() + 60
    while sandbox.read_report(report).get("state") != "running" and time.monotonic() < deadline:
        time.sleep(0.001)
    supervisor.kill()
    supervisor.wait()
    supervisor.stdout.close()
    assert sandbox.finish(report)["guard"] == "rlimits"
    assert survivors(word) == []
    time.sleep(1)  # nothing the sandbox was starting comes up later
    assert survivors(word) == []


def test_a_supervisor_that_cannot_lead_a_session_of_its_own_names_none():
    """``setsid`` refuses a process group's leader (as a shell's job control starts a command):
    the supervisor then names no session rather than failing (or naming its shell's)."""
    code = (
        "import os; os.setpgid(0, 0); from grader.sandbox.launch import _own_session; print(_own_session())"
    )
    leader = (
        "import os; from grader.sandbox.launch import _own_session; print(_own_session()[0] == os.getpid())"
    )
    assert printed_by(code) == "None" and printed_by(leader) == "True"


def printed_by(code: str) -> str:
    return subprocess.run(
        [PY, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()


def test_without_a_cgroup_killing_a_kernels_process_group_ends_its_sandbox(tmp_path):
    """jupyter_client kills a kernel by its process group (SIGKILL): both bubblewraps are in it, so
    the sandbox ends with it even before ``finish`` (the inner one's child, the namespace's first
    process, dies with it: the same user)."""
    word, report = marker(), tmp_path / "report"
    program = DOUBLE_FORK + "\nprint('started', flush=True)\ntime.sleep(600)"
    argv = supervised_without_cgroups([PY, "-c", program, word], LIMITS, report)
    supervisor = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    assert supervisor.stdout.readline() == b"started\n"
    os.killpg(supervisor.pid, signal.SIGKILL)
    supervisor.wait()
    supervisor.stdout.close()
    deadline = time.monotonic() + 10
    while survivors(word) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(word) == []
    sandbox.finish(report)


@pytest.mark.parametrize(
    ("prefix", "report"),
    [("forwardpass-grading-", "k-1/kernel.json.sandbox-report"), (sandbox.RUN_REPORTS, "run.sandbox-report")],
)
def test_without_a_cgroup_the_next_run_ends_what_a_grader_killed_outright_left(tmp_path, prefix, report):
    """A grader killed outright together with its supervisors (SIGKILL to its process group) runs
    no ``finish``: run as root without a cgroup, its sandboxes ran on, unsupervised (red team 12).
    The next run's reaping of dead runs' folders (a kernel's report lies in its run's scratch
    folder, a scorer's in a folder of its own) ends each sandbox a report names."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # a grader's process id, gone
    folder = tmp_path / f"{prefix}{dead.pid}-x"
    (folder / report).parent.mkdir(parents=True)
    folder.chmod(0o700)
    word = marker()
    program = DOUBLE_FORK + "\nprint('started', flush=True)\ntime.sleep(600)"
    argv = supervised_without_cgroups([PY, "-c", program, word], LIMITS, folder / report)
    supervisor = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert supervisor.stdout.readline() == b"started\n"
    supervisor.kill()
    supervisor.wait()
    supervisor.stdout.close()
    assert course.reap_scratch(prefix, tmp_path) == [folder]
    assert survivors(word) == [] and not folder.exists()


def test_reaping_reads_no_report_where_a_sandbox_could_have_written_it(tmp_path):
    """A kernel's socket folder lies below its report and is the sandbox's to write in (sealed only
    for a root grader): a report planted there, naming another session, is not read."""
    from grader.sandbox.report import process_start, write_report

    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / f"forwardpass-grading-{dead.pid}-x"
    (folder / "k-1" / "sockets").mkdir(parents=True)
    folder.chmod(0o700)
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    planted = {"state": "running", "launcher": dead.pid, "session": [victim.pid, process_start(victim.pid)]}
    write_report(folder / "k-1" / "sockets" / "x.sandbox-report", planted)
    try:
        assert course.reap_scratch("forwardpass-grading-", tmp_path) == [folder]
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_reaping_reads_no_other_users_folder(tmp_path):
    """A report names processes to kill, and anyone may write in /dev/shm and /tmp: a folder the
    grader's user could not have made (open to others) is neither read nor removed."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / f"forwardpass-grading-{dead.pid}-x"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    (folder / "planted.sandbox-report").write_bytes(b"not marshal data")
    assert course.reap_scratch("forwardpass-grading-", tmp_path) == []
    assert folder.exists()


def test_without_a_cgroup_the_report_counts_the_machines_oom_kills_meanwhile(tmp_path):
    """Red team 12, finding 04: the trace that the machine ran out of memory while the sandbox
    ran, for the grader to tell a kernel killed from outside (``sandbox.killed_from_outside``)."""
    vmstat, report = tmp_path / "vmstat", tmp_path / "report"
    argv = supervised(
        [PY, "-c", "print('started', flush=True); input()"], LIMITS, report, fake_vmstat(vmstat, 5)
    )
    supervisor = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert supervisor.stdout.readline() == b"started\n"
    fake_vmstat(vmstat, 7)
    supervisor.communicate(b"\n")
    assert sandbox.finish(report)["machine_oom_kills"] == 2


def test_only_a_sigkill_from_outside_without_a_cgroup_is_killed_from_outside():
    """The one case of a kernel's death that is not its own doing: SIGKILL (bubblewrap passes it on
    as 137), no limit of its own, no group, and the machine's OOM killer at work meanwhile."""
    killed = {"guard": "rlimits", "limit": None, "returncode": 137, "machine_oom_kills": 1}
    assert sandbox.killed_from_outside(killed)
    assert sandbox.killed_from_outside({**killed, "returncode": -9})
    for own in ({"returncode": 1}, {"limit": "memory"}, {"machine_oom_kills": 0}, {"guard": "cgroup v2"}):
        assert not sandbox.killed_from_outside({**killed, **own}), own
    assert not sandbox.killed_from_outside({**killed, "machine_oom_kills": None})  # a killed supervisor


def test_a_kernel_killed_from_outside_runs_once_more_and_the_log_names_it(tmp_path):
    """Without a cgroup, between two looks of its supervisor a neighbour's kernel can fill the
    machine's memory, and the OOM killer then takes the largest process of all: maybe this
    kernel, whose notebook stopped as if it had crashed. It runs once more (and once only: here
    the machine kills it each time), named in the log; its own death is not run again
    (``test_a_kernel_that_dies_in_student_code_is_not_run_again``)."""
    vmstat, count = outside(tmp_path) / "vmstat", outside(tmp_path) / "attempts"
    patch = fake_vmstat(vmstat, 3)
    count.touch()
    count.chmod(0o666)  # each run's sandbox is a host user of its own
    oom_killer = f"""import os, signal
open('{count}', 'a').write('x')
kills = int(open('{vmstat}').read().split()[-1])
open('{vmstat}', 'w').write(f"oom_kill {{kills + 1}}")
os.kill(os.getpid(), signal.SIGKILL)"""
    nb, _, stderr = run_notebook(
        tmp_path, ["x = 1", oom_killer, "print('never')"], ["x = 1"], supervisor=patch
    )
    assert count.read_text() == "xx" and not nb.cells[2].outputs
    assert (
        stopped(nb.cells[1]) == "the kernel was killed from outside in cell 2 (the machine ran out of memory)"
    )
    assert "the kernel of ?/a/n was killed from outside" in stderr and "running the notebook again" in stderr


def test_a_kernel_that_ran_while_the_machine_ran_out_of_memory_is_named_with_its_memory(tmp_path):
    """The OOM killer may take a neighbour's kernel rather than the one whose code filled the
    memory: every kernel that ran meanwhile is named in the log with the most memory its sandbox
    held, so that the instructor can tell whose it was (red team 12, finding 04: nothing named it)."""
    vmstat = outside(tmp_path) / "vmstat"
    neighbour_killed = f"""kills = int(open('{vmstat}').read().split()[-1])
open('{vmstat}', 'w').write(f"oom_kill {{kills + 1}}")"""
    nb, _, stderr = run_notebook(
        tmp_path, ["x = 1", neighbour_killed, "print('ran')"], ["x = 1"], supervisor=fake_vmstat(vmstat, 3)
    )
    assert nb.cells[2].outputs[0].text == "ran\n"
    assert re.search(
        r"while the kernel of \?/a/n ran, the machine's out-of-memory killer ended 1 process\(es\); "
        r"its sandbox held up to 0\.\d\d GiB \(its limit: \d+\.\d\d GiB\)",
        stderr,
    ), stderr


def test_without_a_cgroup_the_heaviest_chapter_is_not_ended_by_the_memory_guard(tmp_path):
    """The supervisor's sum of the tree's memory (``launch.Tree.memory``) must not end an honest
    notebook. Every chapter's solution, graded without a cgroup, peaked at 96-112 MiB in its
    kernel and 37-76 MiB in its scorer (notes/redteam12/04-memory-without-cgroup/README.md);
    chapter 4's kernel is the largest and the longest. Here at the least ``--memory`` the grader
    takes, 0.5 GiB: with each process's address space capped at that without a group, no kernel
    started (a kernel reserves about 0.7 GiB before a cell runs)."""
    solution = nbformat.read(ROOT / "solutions" / "04-sampling" / "sampling.ipynb", as_version=4)
    sources = [cell.source for cell in solution.cells if cell.cell_type == "code"]
    nb, _, _ = run_notebook(tmp_path, sources, supervisor=NO_CGROUP, memory=GiB // 2)
    report = sandbox.read_report(sandbox.report_for(runtime(tmp_path) / "kernel.json"))
    assert report["guard"] == "rlimits" and report["limit"] is None, report
    errors = [o.ename for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert not any(map(stopped, nb.cells)) and errors == [], errors
    assert 0 < report["memory_peak"] < GiB // 4


def test_the_warning_names_what_is_not_enforced():
    assert (sandbox.not_enforced() is None) == (GROUP is not None)
    message = sandbox.not_enforced() or ""
    assert message == "" or ("not for the whole process tree" in message and "RLIMIT_NPROC" in message)


def test_without_a_cgroup_the_warning_says_what_becomes_of_a_kernel_killed_beside_another(monkeypatch):
    """The warning every run without a cgroup prints: said before that a neighbour's notebook
    killed by the machine's OOM killer stops as if its own code had crashed, and that each
    process's address space was --memory (red team 12, finding 04)."""
    monkeypatch.setattr(cgroup, "parent", lambda scope=None: None)
    message = sandbox.not_enforced()
    assert "run once more and named in the log" in message and "twice --memory" in message
    assert "--jobs 1 grades one student at a time" in message and "crashed" not in message


def test_autograde_refuses_to_run_without_a_sandbox(tmp_path):
    (tmp_path / "class" / "a").mkdir(parents=True)
    nbformat.write(new_notebook(), tmp_path / "class" / "a" / "embeddings.ipynb")
    script = (
        "import sys; import grader.sandbox.bwrap as bwrap; bwrap.BWRAP = '/nonexistent/bwrap'; "
        "from grader.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [
        sys.executable,
        "-c",
        script,
        "autograde",
        str(tmp_path / "class"),
        "--out",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "bubblewrap is not installed (/nonexistent/bwrap" in done.stderr and "--no-sandbox" in done.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


@pytest.mark.slow
def test_no_sandbox_grades_with_a_loud_warning(tmp_path):
    (tmp_path / "class" / "a").mkdir(parents=True)
    nbformat.write(
        nbformat.read(ROOT / "solutions" / "01-embeddings" / "embeddings.ipynb", as_version=4),
        tmp_path / "class" / "a" / "embeddings.ipynb",
    )
    command = ["autograde", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--no-sandbox"]
    done = subprocess.run(
        [sys.executable, "-m", "grader", *command], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING: --no-sandbox" in done.stderr and "read and write every file" in done.stderr
    with open(tmp_path / "out" / "grades.csv") as f:
        assert {row["status"] for row in csv.DictReader(f)} == {"graded"}


def test_a_kernel_cannot_write_into_its_sandboxs_other_processes(tmp_path):
    """Red team, round 11: the notebook's kernel opened ``/proc/1/mem`` read-write (bubblewrap's
    init); code written there could clear its death signal and keep the sandbox's processes
    alive after their supervisor is killed, where no cgroup ends them. The kernel runs in a
    Landlock domain of its own, as the scorer's jobs do: only its own processes are open to it."""
    code = """import os
opened = []
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDWR))
        opened.append(pid)
    except OSError:
        pass
print("opened", opened, "self", os.getpid())"""
    nb, _, _ = run_notebook(tmp_path, [code])
    printed = text(nb.cells[0]).split()
    assert printed[0] == "opened" and printed[-2] == "self", printed
    assert printed[1:-2] == [f"[{printed[-1]}]"], printed
