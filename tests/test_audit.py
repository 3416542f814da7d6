"""The scorer's audit hook (``grader.audit``) attacked from inside the process it watches.

Each attack below is what a student's notebook can do before it runs lib's code kept as text: reach
the hook's state (through a traceback of an error it raised, through the harness's frames below the
cell, through what a refused operation left), change what it calls (builtins, ``os``), hand it
values whose methods are the student's code, or interrupt it with a signal handler. After each,
the notebook runs the hidden ``embed``: the hook must still send its text to the grader, or refuse
it. (Red team, fourth round: a ``RecursionError`` raised inside the first hook led, through its
traceback, to a flag that switched it off.)
"""

import marshal
import os
import subprocess
import sys

import nbformat
import pytest
from test_grading import ASSIGNMENT, RELEASED
from test_redteam import EMBED, HIDDEN_EMBED, _embed_cell, answer

from grader import course, scoring

# Takes every object it can reach from ``value`` that could be the hook's state and spoils it as
# an attacker would: flags set, the hidden text marked as already sent, generators stopped,
# closures and frames followed.
SPOIL = """
import sys, types

def spoil(value, depth=0, seen=None):
    seen = set() if seen is None else seen
    if depth > 3 or id(value) in seen:
        return
    seen.add(id(value))
    try:
        if isinstance(value, dict):
            for key in list(value):
                if value[key] is False:
                    value[key] = True
            for item in list(value.values()):
                spoil(item, depth + 1, seen)
        elif isinstance(value, set):
            value.update({(TEXT, "<string>"), (TEXT, "x")})
        elif isinstance(value, list):
            for item in list(value):
                spoil(item, depth + 1, seen)
        elif isinstance(value, types.GeneratorType):
            for poke in (lambda: value.send(("open", ("/",))), lambda: value.throw(GeneratorExit), value.close):
                try:
                    poke()
                except BaseException:
                    pass
            spoil(getattr(value, "gi_" + "frame").f_locals, depth + 1, seen)
        elif isinstance(value, types.FunctionType):
            for cell in value.__closure__ or ():
                spoil(cell.cell_contents, depth + 1, seen)
            spoil(value.__globals__, depth + 1, seen)
            spoil(getattr(value, "__defaults__"), depth + 1, seen)
        elif isinstance(value, tuple):
            for item in value:
                spoil(item, depth + 1, seen)
        elif isinstance(value, types.FrameType):
            spoil(value.f_locals, depth + 1, seen)
            spoil(value.f_globals, depth + 1, seen)
        elif hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType)):
            spoil(vars(value), depth + 1, seen)
    except BaseException:
        pass

def spoil_stack(*args):
    frame = sys._getframe(1)
    while frame is not None:
        spoil(frame)
        frame = frame.f_back

def spoil_traceback(err):
    tb = err.__traceback__
    while tb is not None:
        spoil(getattr(tb, "tb_" + "frame"))
        tb = tb.tb_next
"""
PAYLOAD = marshal.dumps(compile(EMBED, "/usr/lib/python3/os.py", "exec"))
ATTACKS = {
    "a RecursionError raised inside the hook": """
import sys
def deep(n):
    if n:
        return deep(n - 1)
    try:
        compile("1", "probe", "exec")
    except BaseException as err:
        return err
for n in range(sys.getrecursionlimit(), 0, -5):
    try:
        err = deep(n)
    except RecursionError:
        continue
    if err is not None:
        spoil_traceback(err)
        break
""",
    "the traceback of a refused operation": """
try:
    compile("1", "x", "exec").replace(co_name="y")
except BaseException as err:
    spoil_traceback(err)
""",
    "the harness's frames below the cell": """
import sys
frame = sys._getframe()
while frame is not None:
    spoil(frame)
    frame = frame.f_back
""",
    "every object the harness's modules hold": """
import sys
for name, module in list(sys.modules.items()):
    if name in ("__main__", "runners", "wire", "watch", "audit"):
        spoil(vars(module))
""",
    "builtins and os replaced": f"""
import builtins, io, os, posixpath, marshal
real_open = builtins.open
builtins.open = lambda *a, **k: io.BytesIO(bytes(16) + {PAYLOAD!r})
os.path.realpath = posixpath.realpath = lambda path, **k: os.__file__
os.path.isfile = lambda path: True
try:
    real_open(os.__file__.replace("os.py", "__pycache__/os.cpython-311.pyc"), "rb").close()
except OSError:
    pass
try:
    exec(marshal.loads({PAYLOAD!r}))
except PermissionError:
    pass
builtins.open = real_open
""",
    "an audit hook of the student's": """
busy = []
def mine(event, args):
    if event == "open" and not busy:
        busy.append(event)
        spoil_stack()
        busy.clear()
try:
    sys.addaudithook(mine)
except BaseException:
    pass
compile("import os", os.__file__ if "os" in globals() else "/usr/lib/python3/os.py", "exec")
""",
    "finalizers and collection callbacks": """
import gc
class Trap:
    def __init__(self):
        self.me = self
    def __del__(self):
        spoil_stack()
gc.callbacks.append(spoil_stack)
for _ in range(500):
    Trap()
gc.set_threshold(1)
for _ in range(20):
    compile("x = 1", "probe", "exec")
    Trap()
gc.set_threshold(700)
gc.callbacks.clear()
""",
    "a str whose methods are the student's": """
class Sneaky(str):
    def _run(self, *args):
        exec(TEXT.replace("def embed", "def embed_hidden"), globals())
        return str.startswith(self, *args) if args else True
    startswith = endswith = __eq__ = __getitem__ = __fspath__ = _run
    __hash__ = str.__hash__
for route in (lambda: compile("1", Sneaky("/usr/lib/python3/os.py"), "exec"), lambda: open(Sneaky("/etc/hostname")).close()):
    try:
        route()
    except BaseException:
        pass
""",
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_hook_cannot_be_switched_off_from_inside(tmp_path, attack):
    """After the attack, the hidden ``embed`` (text the scan cannot read) still reaches the grader:
    the score is the student's own, and the integrity scan reads the text."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=20))
    nb = answer("embed", HIDDEN_EMBED + SPOIL + ATTACKS[attack] + "\nexec(TEXT)")
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    sent = [ran for ran in verdict.ran if "def embed(ids, wte, wpe):" in ran.text]
    assert sent and sent[-1].cell == _embed_cell(nb), (verdict, verdict.ran)
    hidden = [ran for ran in verdict.ran if "def embed_hidden" in ran.text]
    assert not hidden or all(ran.cell == _embed_cell(nb) for ran in hidden)


def test_a_signal_handler_of_the_students_stops_what_the_hook_would_judge(tmp_path):
    """A Python signal handler runs between any two instructions, the hook's too: while one of the
    student's is set, every operation the hook judges is refused and reported."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=20))
    handler = "import signal\nsignal.signal(signal.SIGUSR1, lambda *args: None)\n"
    nb = answer("embed", HIDDEN_EMBED + handler + "exec(TEXT)")
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status != "graded", verdict
    assert any("signal handler" in ran.reason and ran.cell == _embed_cell(nb) for ran in verdict.ran)


def test_text_compiled_while_a_test_calls_the_function_is_sent_with_the_functions_cell(tmp_path):
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=20))
    late = "def embed(ids, wte, wpe):\n    found = {'np': np}\n    exec(TEXT, found)\n    return found['embed'](ids, wte, wpe)\n"
    nb = answer("embed", HIDDEN_EMBED + late)
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status == "graded", verdict
    sent = [ran for ran in verdict.ran if "def embed(ids, wte, wpe):" in ran.text]
    assert sent and {ran.cell for ran in sent} == {_embed_cell(nb)}, verdict.ran
    assert sent[0].line == HIDDEN_EMBED.count("\n") + 3  # the exec in the function's body


HIDDEN_HALF_ONLY = """
import sys

def _hidden_half():
    for arg in sys.argv:
        if arg.startswith("--job="):
            with open(arg[6:], "rb") as f:
                return b"hidden\\x94\\x88" in f.read()  # the job pickled: "hidden": True
    return False

def embed(ids, wte, wpe):
    if _hidden_half():
        scope = {}
        exec(TEXT, scope)
        return scope["embed"](ids, wte, wpe)
    return wte[ids] + wpe[: ids.shape[-1]]
"""


def test_text_compiled_only_for_the_hidden_cases_reaches_the_grader(tmp_path):
    """Code can tell the scorer's hidden half from its visible one (its job says which cases it
    holds) and compile lib's code only there: what either half compiled reaches the integrity
    scan (red team, fifth round: only the visible half's was kept)."""
    scorer = scoring.Scorer(tmp_path / "scorer", b"k" * 32, scoring.Limits(2**30, per_call=20))
    nb = answer("embed", HIDDEN_EMBED + HIDDEN_HALF_ONLY)
    verdict = scorer.score(nb, nbformat.read(RELEASED, as_version=4), ASSIGNMENT, "mallory")["embed"]
    assert verdict.status == "graded", verdict
    assert any("def embed(ids, wte, wpe):" in ran.text for ran in verdict.ran), verdict.ran


def test_the_hook_refuses_another_interpreter():
    """A sub-interpreter has audit hooks of its own (none): code run there is seen by no one. The
    sandbox holds no module that makes one (``test_redteam``'s
    ``test_no_code_runs_in_another_interpreter_in_the_scorer``); a Python that has one elsewhere
    (3.13's ``_interpreters``) raises an event the hook refuses."""
    code = (
        "import os, sys\nfrom grader import audit\nr, w = os.pipe()\n"
        "sys.addaudithook(audit.hook(w, 0, []))\nimport _xxsubinterpreters as I\n"
        "try:\n    I.create()\n    print('made')\nexcept Exception:  # RuntimeError: creation failed\n"
        "    os.close(w)\n    print('refused', os.read(r, 4096).decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(course.ROOT)},
    )
    assert done.stdout.startswith("refused") and "another Python interpreter" in done.stdout, done
