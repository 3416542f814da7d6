"""The sandbox's red team, graded by the real ``python -m grader autograde``: a class where each
attacker tries one thing from inside its notebook's kernel, next to honest students.

Every honest neighbour keeps full marks; every attack is stopped by the limit meant for it, and
the rows say which and where; nothing survives the run (no process, no cgroup); nothing outside
the run's own folders changes. An interrupted run leaves nothing behind either.
"""

import csv
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from attacks import DOUBLE_FORK, FORK_BOMB, marker, survivors
from helpers import autograde_command, class_folder
from nbformat.v4 import new_code_cell

from grader import autograde
from grader.sandbox import bwrap, cgroup

ROOT = Path(__file__).parents[1]
SOLUTION = ROOT / "solutions" / "01-embeddings" / "embeddings.ipynb"
ASSIGNMENT = "01-embeddings"
MARKER = marker()  # in the command line of every process an attacker starts
# Seconds per notebook. Chapter 1's solution takes about 3 s of CPU, and the spreading attacker's
# children a few more to reach the memory limit: on a machine busy with other work (caches and
# memory bandwidth shared), 10 s once ran out before a 3 GiB limit struck, and 15 s twice. So the
# class has 1.5 GiB a notebook (``MEMORY``): the attacker's children reach it with half the pages
# to fill, and every other student's kernel needs a few hundred MiB. 10 s asleep (a busy machine
# does not count: ``launch.Asleep``) is twice what the spreading attacker's children sleep, and the
# scorer's limit too (``Limits.beside``): the snooper stops its own scorer, which waits it out in
# each pass (at 20 s, also the scorer's maximum: 10 s more of the class).
CPU, IDLE, MEMORY = 15, 10, 1.5

if not os.path.exists(bwrap.BWRAP):
    pytest.skip(f"bubblewrap is not installed ({bwrap.BWRAP})", allow_module_level=True)

BOMB = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {FORK_BOMB!r}, {MARKER!r}])"
DAEMON = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {DOUBLE_FORK!r}, {MARKER!r}])"
SPREAD = """import subprocess, sys
hog = "b = bytearray(1200 * 2**20); import time; time.sleep(5)"
children = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(3)]
print("children:", sorted(child.wait() for child in children))"""
FILLER = """try:
    with open("big", "wb") as f:
        for _ in range(2048):
            f.write(bytes(2**20))
    print("filler: wrote 2 GB")
except OSError as err:
    print("filler:", err)"""
SLEEPER = "import time\nwhile True:\n    time.sleep(1)"
# One output message of 4 GiB: 272 frames, each under the size ZeroMQ refuses (``MAX_MESSAGE`` is
# per frame), all one 15 MiB buffer the kernel sends again and again without a copy. ZeroMQ takes a
# message whole, in the grading process, before anything there can read or refuse it.
FRAMES = """import json
kernel = get_ipython().kernel
socket, auth = kernel.iopub_thread.socket, kernel.session.auth
header = json.dumps({"msg_id": "m", "msg_type": "stream", "username": "u", "session": "s",
                     "date": "2026-01-01T00:00:00Z", "version": "5.3"}).encode()
parent, metadata, content = b'{"msg_id": "no cell"}', b"{}", b'{"name": "stdout", "text": ""}'
signature = auth.copy()
for part in (header, parent, metadata, content):
    signature.update(part)
frame = memoryview(bytearray(15 * 2**20))
frames = [b"<IDS|MSG>", signature.hexdigest().encode(), header, parent, metadata, content, *[frame] * 272]
kernel.iopub_thread.schedule(lambda: socket.send_multipart(frames, copy=False))"""
# Runs a command; prints the peak memory (KiB) of the largest process of its tree.
PEAK = (
    "import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
HOG = "while True:\n    pass"


def snoop(out: Path) -> str:
    return f"""import os, signal
cmdlines = [open(f"/proc/{{p}}/cmdline", "rb").read() for p in os.listdir("/proc") if p.isdigit()]
argv = open("/proc/self/cmdline", "rb").read().split(b"\\0")
connection = argv[argv.index(b"-f") + 1].decode()
scratch = os.path.dirname(os.path.dirname(connection))
print("processes:", len(cmdlines), b" ".join(cmdlines)[:2000])
print("scratch:", sorted(os.listdir(scratch)) if os.path.isdir(scratch) else None)
print("work:", os.path.exists(os.path.join(scratch, "work")))
print("out:", os.path.exists("{out}"), os.path.exists("{out}/grades.csv"))
for pid in (1, os.getppid()):
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError as err:
        print("signal:", pid, err)"""


def after_decode(source: str):
    nb = nbformat.read(SOLUTION, as_version=4)
    decode = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "decode"
    )
    nb.cells.insert(decode + 1, new_code_cell(source))
    return nb


def attackers(out: Path) -> dict:
    return {
        "bomb": BOMB,
        "spread": SPREAD,
        "daemon": DAEMON,
        "filler": FILLER,
        "snoop": snoop(out),
        "sleeper": SLEEPER,
        "hog": HOG,
    }


def fingerprint(*folders: Path) -> dict[str, tuple]:
    """(size, mtime, sha256 of small files) of every file under ``folders``."""
    found = {}
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size < 2**20 else ""
            found[str(path)] = (stat.st_size, stat.st_mtime_ns, digest)
    return found


def scopes(grader_pid: int) -> list[Path]:
    """The run's cgroup scopes (``grader.sandbox.scope``) under this process's own groups."""
    return [p for h in cgroup.hierarchies() for p in Path(h.own).glob(f"forwardpass-{grader_pid}-*")]


def grade(submissions: Path, out: Path, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "grader", "autograde", str(submissions), "--out", str(out), *options]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C as in a terminal
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("redteam")
    out = base / "out"
    peer = base / "peer"  # another course's files on the same machine
    peer.mkdir()
    (peer / "grades.csv").write_text("someone,else,1\n")
    students = {
        "honest-a": nbformat.read(SOLUTION, as_version=4),
        "honest-b": nbformat.read(SOLUTION, as_version=4),
    }
    students |= {name: after_decode(source) for name, source in attackers(out).items()}
    for name, nb in students.items():
        (base / "class" / name).mkdir(parents=True)
        nbformat.write(nb, base / "class" / name / "embeddings.ipynb")
    watched = [ROOT / "lib", ROOT / "grader", ROOT / "solutions", ROOT / "chapters", peer, base / "class"]
    before = fingerprint(*watched)
    options = (
        "--jobs",
        "2",
        "--cpu",
        str(CPU),
        "--idle",
        str(IDLE),
        "--timeout",
        "900",
        "--memory",
        str(MEMORY),
    )
    process = grade(base / "class", out, *options)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stdout + stderr[-5000:]
    with open(out / "grades.csv") as f:
        rows = {(row["student"], row["exercise"]): row for row in csv.DictReader(f)}
    return {"out": out, "rows": rows, "pid": process.pid, "before": before, "after": fingerprint(*watched)}


def outputs(out: Path, student: str) -> str:
    nb = nbformat.read(out / "autograded" / student / ASSIGNMENT / "embeddings.ipynb", as_version=4)
    return "".join(
        o.get("text", "") + o.get("evalue", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )


def exercises(rows, student: str) -> dict[str, dict]:
    return {exercise: row for (name, exercise), row in rows.items() if name == student}


@pytest.mark.slow
def test_honest_neighbours_keep_full_marks(graded):
    for student in ("honest-a", "honest-b", "spread", "daemon", "filler", "snoop"):
        rows = exercises(graded["rows"], student)
        assert rows and all(row["status"] == "graded" for row in rows.values()), (student, rows)
        assert all(float(row["score"]) == float(row["max_score"]) for row in rows.values())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("student", "words"),
    [
        ("hog", f"the notebook used its {CPU} s of CPU time in cell 11"),
        ("bomb", f"the notebook used its {CPU} s of CPU time in cell 11"),
        ("sleeper", f"the notebook used its {IDLE} s of time asleep in cell 11"),
    ],
)
def test_a_limit_stops_the_attack_where_it_ran(graded, student, words):
    """The kernel's budget ends the attack and the feedback says which limit and where; the
    scorer stops the attack's statement at its own limits and goes on, so the student's right
    functions keep their points and the attack costs only itself."""
    assert words in outputs(graded["out"], student)
    rows = exercises(graded["rows"], student)
    assert rows and {row["status"] for row in rows.values()} == {"graded"}, rows


@pytest.mark.slow
def test_memory_spread_over_children_is_capped(graded):
    assert "-9" in outputs(graded["out"], "spread")  # the group's memory limit killed a child


@pytest.mark.slow
def test_the_working_folder_is_capped(graded):
    assert "filler: [Errno 28] No space left on device" in outputs(graded["out"], "filler")


@pytest.mark.slow
def test_a_snooping_kernel_sees_no_neighbour(graded):
    printed = outputs(graded["out"], "snoop")
    assert "processes: 2 " in printed  # bubblewrap's init and the kernel itself
    assert "work: False" in printed and "out: False False" in printed
    assert not any(name in printed for name in ("honest-a", "honest-b", "sleeper", "gradebook"))


@pytest.mark.slow
def test_nothing_survives_the_run(graded):
    assert survivors(MARKER) == []
    assert scopes(graded["pid"]) == []


@pytest.mark.slow
def test_nothing_outside_the_run_changed(graded):
    assert graded["after"] == graded["before"]
    assert not (ROOT / "pwned").exists()


@pytest.mark.slow
def test_an_interrupted_run_leaves_nothing(tmp_path):
    sleep = "import time; time.sleep(600)"
    source = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {sleep!r}, {MARKER!r}])"
    sleeper = after_decode(f"{source}\ntime.sleep(600)")
    (tmp_path / "class" / "sleeper").mkdir(parents=True)
    nbformat.write(sleeper, tmp_path / "class" / "sleeper" / "embeddings.ipynb")
    process = grade(tmp_path / "class", tmp_path / "out", "--jobs", "1", "--idle", "600")
    deadline = time.monotonic() + 300
    while not survivors(MARKER) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert survivors(MARKER), "the sleeper never started"
    assert scopes(process.pid)  # the run's scope exists while it runs
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    deadline = time.monotonic() + 10
    while survivors(MARKER) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors(MARKER) == []
    assert scopes(process.pid) == []


@pytest.mark.slow
def test_a_message_of_many_frames_costs_the_grader_a_bounded_memory(tmp_path):
    """The grading process of the student whose kernel sends it cannot take more than
    ``autograde.WORKER_MEMORY`` beyond what it starts with (it took 3 GB of the 4 its kernel sent
    before its time asleep ran out, and with more time, the machine's); its neighbour keeps full
    marks."""
    students = {"honest": nbformat.read(SOLUTION, as_version=4), "frames": after_decode(FRAMES)}
    options = ("--jobs", "2", "--cpu", str(CPU), "--idle", "20", "--timeout", "900")  # 20 s to send in
    command = autograde_command(class_folder(tmp_path / "class", students), tmp_path / "out")
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command, *options], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) * 1024 < autograde.WORKER_MEMORY + 2**29, int(done.stdout)
    with open(tmp_path / "out" / "grades.csv") as f:
        honest = [row for row in csv.DictReader(f) if row["student"] == "honest"]
    assert honest and all(row["score"] == row["max_score"] for row in honest), honest


def units(out: Path) -> dict[str, tuple]:
    """Each student's submission row and scores, as the gradebook holds them (read while a grader
    may write)."""
    if not (out / "grades.sqlite").exists():
        return {}
    with sqlite3.connect(f"file:{out / 'grades.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        try:
            found = {}
            for row in db.execute("SELECT * FROM submissions WHERE notebook = 'embeddings'"):
                scores = db.execute(
                    "SELECT exercise, score, status FROM scores WHERE student = ? ORDER BY position", row[:1]
                ).fetchall()
                found[row[0]] = (row, scores)
            return found
        except sqlite3.OperationalError:  # the schema is being created
            return {}


def holding(word: str) -> list[int]:
    """Processes whose command line or working folder holds ``word``."""
    found = set(survivors(word))
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and word in os.readlink(entry / "cwd"):
                found.add(int(entry.name))
        except OSError:
            pass
    return sorted(found - {os.getpid()})


@pytest.mark.slow
def test_a_grader_killed_outright_loses_nothing_and_the_next_run_finishes(tmp_path):
    """SIGKILL of the grader in the middle of a class (the OOM killer, ``kill -9``, a VM stopped):
    no ``finally`` runs. The student graded before it keeps their grade, untouched; the student
    being graded leaves no process (their kernel's supervisor sees its parent go); the next run
    removes what the killed one could not (its cgroup scope, its scratch folder in memory), marks
    it failed, skips what is graded and finishes the class."""
    word = marker()
    sleeper = after_decode(
        f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {word!r}])\n"
        "time.sleep(600)"
    )
    for name, nb in {"a": nbformat.read(SOLUTION, as_version=4), "b": sleeper}.items():
        (tmp_path / "class" / name).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "class" / name / "embeddings.ipynb")
    (tmp_path / "class" / "c").mkdir()
    nbformat.write(nbformat.read(SOLUTION, as_version=4), tmp_path / "class" / "c" / "embeddings.ipynb")
    out = tmp_path / "out"
    process = grade(tmp_path / "class", out, "--jobs", "1", "--cpu", str(CPU), "--idle", "600")
    deadline = time.monotonic() + 300
    while not survivors(word) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert survivors(word), "b's kernel never started"
    before = units(out)
    assert set(before) == {"a"} and before["a"][0][8] == 1  # a, complete
    assert scopes(process.pid)
    process.kill()  # SIGKILL: nothing of the grader's own runs after it
    process.communicate()
    deadline = time.monotonic() + 30
    while (holding(word) or holding(str(out)) or holding(f"forwardpass-grading-{process.pid}-")) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert holding(word) == [], "the killed run's sandbox is still running"
    assert holding(str(out)) == [] and holding(f"forwardpass-grading-{process.pid}-") == []
    assert units(out) == before  # nothing half-written; a's grade as it was

    again = grade(tmp_path / "class", out, "--jobs", "1", "--cpu", str(CPU), "--idle", "5")
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stdout + stderr[-3000:]
    assert "1 notebook(s) already graded" in stdout
    after = units(out)
    assert after["a"] == before["a"]  # the same row of the same run, the same scores
    assert after["c"][0][8] == 1 and {status for _, _, status in after["c"][1]} == {"graded"}
    row, scores = after["b"]  # graded to the end; the sleep costs what follows it, not what came before
    assert row[8] == 1 and ("decode", 1.0, "graded") in scores, scores
    assert scopes(process.pid) == [] and scopes(again.pid) == []
    assert list(Path("/dev/shm").glob(f"forwardpass-grading-{process.pid}-*")) == []
    assert list(out.rglob("*.partial")) == []
    with sqlite3.connect(out / "grades.sqlite") as db:
        assert [outcome for (outcome,) in db.execute("SELECT outcome FROM runs ORDER BY run")] == [
            "failed",
            "finished",
        ]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert survivors(word) == []


# Two students graded side by side, in league: the beacon's kernel (which holds the whole ``lib``)
# signals through what every sandbox reads of the host, the count of open files in
# /proc/sys/fs/file-nr (900 files opened and closed again, four times a second); the listener's
# scorer (which holds its hidden inputs) listens, and its ``encode`` answers only if it heard. The
# same channel the other way round carries a scorer's inputs to the kernel, so a scorer that can
# hear a kernel can have ``lib`` compute its answers (measured on two cores: about 100 bits a
# second). Any host counter, or the CPU time one takes from the other, would do as well: the fix
# is that no sandbox runs while a scorer does (``grader.sandbox.turns``). The listener listens 4 s
# in each pass of its scorer (visible cases, hidden ones), which the beacon's 20 s cover: without
# the turns (``turns.alone`` as ``beside``), it hears the beacon and the test fails.
BEACON = """import os, sys, time
if os.environ.get("NBGRADER_EXECUTION") and not sys.argv[0].endswith("harness.py"):
    end = time.monotonic() + 20
    while time.monotonic() < end:
        files = [os.open("/dev/null", os.O_RDONLY) for _ in range(900)]
        time.sleep(0.125)
        for f in files:
            os.close(f)
        time.sleep(0.125)"""
LISTENER = """import sys, time

def listen(seconds=4):
    counts, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        counts.append(int(open("/proc/sys/fs/file-nr").read().split()[0]))
        time.sleep(0.01)
    return sum(b - a >= 600 for a, b in zip(counts, counts[2:]) if a < b)  # rises of ~900 files

HEARD = listen() if sys.argv[0].endswith("harness.py") else 0  # in the scorer only

def encode(text, stoi):
    if HEARD < 5:
        raise RuntimeError(f"heard no one ({HEARD} rises)")
    return np.array([stoi[ch] for ch in text], dtype=np.int64)"""


@pytest.mark.slow
def test_a_scorer_runs_alone_so_no_kernel_can_answer_it(tmp_path):
    listener = nbformat.read(SOLUTION, as_version=4)
    encode = next(
        c for c in listener.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "encode-answer"
    )
    encode.source = LISTENER
    for name, nb in {"beacon": after_decode(BEACON), "listener": listener}.items():
        (tmp_path / "class" / name).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "class" / name / "embeddings.ipynb")
    options = ("--jobs", "2", "--cpu", "30", "--idle", "60", "--timeout", "900")
    process = grade(tmp_path / "class", tmp_path / "out", *options)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stdout + stderr[-5000:]
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = {(row["student"], row["exercise"]): row for row in csv.DictReader(f)}
    listened = exercises(rows, "listener")
    assert float(listened["encode"]["score"]) == 0, listened["encode"]  # it heard no one
    for student in ("listener", "beacon"):  # the rest is scored as usual
        assert all(
            row["score"] == row["max_score"]
            for name, row in exercises(rows, student).items()
            if name != "encode"
        ), exercises(rows, student)
