"""The scorer (``grader.scoring``, ``grader.program``, ``grader.harness``): the program it builds
from a notebook, and what the real sandboxed harness sends back, on chapter 1's notebooks.

nbgrader is not involved here (tests/test_grading.py and tests/test_forging.py run it): the
"autograded" notebook is the solution or the released notebook with cells changed or added.
"""

import os
import stat

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from grader import course, exercises, harness, program, scoring, wire

ASSIGNMENT = "01-embeddings"
SOLUTION = course.ROOT / "solutions" / ASSIGNMENT / "embeddings.ipynb"
RELEASED = course.ROOT / "chapters" / ASSIGNMENT / "embeddings.ipynb"
ENDLESS = "while True:\n    pass"
ENDLESS_DEF = "def {}(**inputs):\n    while True:\n        pass"


def notebook(path=SOLUTION):
    return nbformat.read(path, as_version=4)


def index_of(nb, grade_id: str) -> int:
    return next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def with_cell(nb, before: str, source: str):
    """``nb`` with a code cell of the student's just before the cell whose grade_id is ``before``."""
    nb.cells.insert(index_of(nb, before), new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    return scoring.Scorer(tmp_path_factory.mktemp("scorer"), b"k" * 32, scoring.Limits(2**30, per_call=2))


def score(scorer, nb, student="alice"):
    return scorer.score(nb, notebook(RELEASED), ASSIGNMENT, student)


# ---- the program -------------------------------------------------------------------------------


def test_course_cells_are_cut_to_what_the_students_code_reads():
    nb = notebook()
    nb.cells.insert(3, new_code_cell("def shout(ch):\n    return label(ch).upper()"))
    items = program.build(nb, notebook(RELEASED))
    course_code = "\n".join(i["source"] for i in items if "source" in i and "def shout" not in i["source"])
    assert "def label(ch)" in course_code  # read by the student's shout
    assert "import numpy as np" in course_code
    assert (
        "load_pretrained" not in course_code and "plt." not in course_code and "import os" not in course_code
    )
    assert "from grader.check import check" not in course_code  # nothing of the student's reads check


def test_probes_come_from_the_released_test_cells():
    nb = notebook()
    nb.cells[index_of(nb, "embed")].source = 'check("01-embeddings/encode", encode)'  # edited by the student
    probes = [i for i in program.build(nb, notebook(RELEASED)) if "exercise" in i]
    assert [(p["grade_id"], p["exercise"], p["name"]) for p in probes][-2:] == [
        ("embed", "01-embeddings/embed", "embed"),
        ("sinusoidal_positions", "01-embeddings/sinusoidal_positions", "sinusoidal_positions"),
    ]
    del nb.cells[index_of(nb, "encode")]
    probes = [i for i in program.build(nb, notebook(RELEASED)) if "exercise" in i]
    assert probes[-1]["grade_id"] == "encode" and probes[-1]["index"] == len(nb.cells)  # at the end


def test_magics_become_python():
    assert program.python("%%capture\nx = 1\n") == "x = 1\n"
    assert program.python("%%time\ny = 2") == "y = 2"
    assert program.python("x = 1  # plain Python") == "x = 1  # plain Python"
    assert "run_cell_magic('bash'" in program.python("%%bash\nrm -rf /")
    assert "get_ipython().system" in program.python("!ls")


# ---- the harness, in the sandbox ---------------------------------------------------------------


@pytest.mark.slow
def test_the_solution_gets_every_point(scorer):
    verdicts = score(scorer, notebook())
    assert {v.status for v in verdicts.values()} == {"graded"}, verdicts
    assert len(verdicts) == 9


@pytest.mark.slow
def test_a_failing_cell_or_an_endless_one_costs_only_itself(scorer):
    nb = with_cell(notebook(), "encode", "1 / 0")
    nb = with_cell(nb, "decode", ENDLESS)
    nb = with_cell(nb, "embed", ENDLESS_DEF.format("sinusoidal_positions"))
    verdicts = score(scorer, nb)
    assert verdicts["sinusoidal_positions"].status == "graded"  # redefined by its own solution cell later
    assert {v.status for v in verdicts.values()} == {"graded"}, verdicts


@pytest.mark.slow
def test_the_diagnosis_pass_skips_a_statement_that_ran_past_its_limit(scorer, monkeypatch):
    """A top-level endless loop costs its limit once: the second run, made to explain a wrong
    answer, runs the program without it (and the statements around it)."""
    nb = with_cell(notebook(), "position_embedding-answer", "before = 1\n" + ENDLESS + "\nafter = 2")
    nb.cells[
        index_of(nb, "position_embedding-answer")
    ].source = "def position_embedding(n_tokens, wpe):\n    return wpe[1 : n_tokens + 1]"
    endless = index_of(nb, "position_embedding-answer") - 1
    runs, run_all = [], scorer.run_all
    monkeypatch.setattr(
        scorer, "run_all", lambda programs, *a: runs.append((programs, run_all(programs, *a))) or runs[-1][1]
    )
    verdicts = score(scorer, nb)
    (first_programs, [first]), (diagnosis_programs, [diagnosis]) = runs
    assert first.timed_out == {endless: {1}} and "longer than 2 s" in first.failed[endless]
    cell = next(item for item in diagnosis_programs[0][0] if item.get("index") == endless)
    assert cell["skip"] == [1] and "skip" not in next(
        i for i in first_programs[0][0] if i.get("index") == endless
    )
    assert diagnosis.timed_out == {} and endless not in diagnosis.failed and diagnosis.done
    assert (
        verdicts["position_embedding"].status == "wrong"
        and "off-by-one" in verdicts["position_embedding"].reason
    )


@pytest.mark.slow
def test_the_diagnosis_pass_stops_a_sleeping_statement_within_the_time_asleep_left(scorer, monkeypatch):
    """The diagnosis pass has only the time asleep the first run left (``Allowance.cap``). A
    statement that sleeps is stopped at ``harness.WALL_FACTOR`` times its CPU limit: that must fit
    within ``SLEEPER_SHARE`` of what is left too, or one sleeping statement ends the process (and
    its later exercises' reasons) instead of being stopped."""
    given = []
    real = scoring._run_sandboxed
    monkeypatch.setattr(
        scoring,
        "_run_sandboxed",
        lambda argv, ro, limits, *a: given.append((argv, limits)) or real(argv, ro, limits, *a),
    )
    job = scorer.job(notebook(), notebook(RELEASED), ASSIGNMENT, "alice")
    left = scoring.Allowances(scoring.Allowance(cpu=100, idle=3), scoring.Allowance(cpu=100, idle=3))
    assert scorer.run(job.items, ASSIGNMENT, left).done
    for argv, limits in given:
        per_call = float(next(a for a in argv if a.startswith("--limit="))[len("--limit=") :])
        assert limits.idle_seconds <= 3
        assert per_call * harness.WALL_FACTOR <= scoring.SLEEPER_SHARE * limits.idle_seconds


@pytest.mark.slow
def test_an_endless_function_times_out_alone(scorer):
    nb = notebook()
    nb.cells[index_of(nb, "decode-answer")].source = ENDLESS_DEF.format("decode")
    verdicts = score(scorer, nb)
    assert verdicts["decode"].status == "timeout" and "longer than 2 s" in verdicts["decode"].reason
    assert all(v.status == "graded" for name, v in verdicts.items() if name != "decode")


@pytest.mark.slow
def test_a_scorer_that_cannot_start_blames_itself_not_the_student(tmp_path):
    """A memory limit too small for the harness itself (here for NumPy): no line of the student's
    code ran, so no exercise is the student's loss. Each is an error of the grader's (the notebook
    could not be graded, which the instructor's reports show), not a kernel the student's code
    ended."""
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits(24 * 2**20, per_call=2))
    verdicts = score(scorer, notebook())
    assert {v.status for v in verdicts.values()} == {"error"}, verdicts
    assert all("before it ran any of your code" in v.reason for v in verdicts.values())


@pytest.mark.slow
def test_a_process_that_exits_keeps_the_answers_it_sent(scorer):
    verdicts = score(scorer, with_cell(notebook(), "position_embedding", "import os\nos._exit(0)"))
    order = list(verdicts)
    cut = order.index("position_embedding")
    assert [verdicts[n].status for n in order[:cut]] == ["graded"] * cut
    assert {verdicts[n].status for n in order[cut:]} == {"kernel_died"}
    assert "ended the grading process" in verdicts["embed"].reason


@pytest.mark.slow
def test_a_stalled_process_keeps_the_answers_it_sent(tmp_path):
    """The student's code blocks the time limits: the process is killed at the whole budget (a
    budget of 0.5 s a call here, chapter 1's honest calls taking a few hundredths: the attack spends
    all of it, and the whole budget is counted in calls)."""
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits(2**30, per_call=0.5))
    stall = "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    verdicts = score(scorer, with_cell(notebook(), "embed", stall + ENDLESS))
    assert verdicts["position_embedding"].status == "graded"
    assert verdicts["embed"].status == "timeout" and "time limit" in verdicts["embed"].reason


@pytest.mark.slow
def test_what_comes_back_is_capped(scorer, monkeypatch):
    monkeypatch.setattr(scoring, "MAX_BYTES", 20_000)
    flood = "import os, sys\nfd = int([a for a in sys.argv if a.startswith('--fd=')][0][5:])\nos.write(fd, b'x' * 10**6)"
    verdicts = score(scorer, with_cell(notebook(), "decode", flood))
    assert verdicts["encode"].status == "graded"  # sent before the flood
    assert verdicts["decode"].status == "wrong" and "more than" in verdicts["decode"].reason


@pytest.mark.slow
def test_forged_lines_earn_nothing(scorer):
    """The student's code writes its own answer lines for the next probe, ahead of the harness:
    the right answer for every visible case, and the first visible answer for every hidden one."""
    encode = exercises.get(f"{ASSIGNMENT}/encode")
    right = {}
    for case in encode.visible():
        if case.raises:  # the failure it must show
            right[case.name] = {"error": f"{case.raises.errors[0]}: {case.raises.mentions}"}
        else:
            right[case.name] = {"output": wire.encode(encode.reference(**case.inputs))}
    some = next(answer for answer in right.values() if "output" in answer)
    forged = [{"probe": 0, "case": c.name, **right.get(c.name, some)} for c in encode.cases(0)]
    forge = (  # lines as the harness frames them, for the notebook it is on (the first)
        "import json, os, sys\n"
        "fd = int([a for a in sys.argv if a.startswith('--fd=')][0][5:])\n"
        f"for line in {forged!r}:\n"
        "    os.write(fd, ('0 ' + json.dumps(line) + '\\n').encode())\n"
    )
    nb = notebook(RELEASED)
    verdicts = score(scorer, with_cell(nb, "encode", forge))
    assert not verdicts["encode"].ok and verdicts["encode"].reason.startswith("hidden case ("), verdicts[
        "encode"
    ]


# ---- one process, several notebooks -------------------------------------------------------------


def chapter(assignment: str, released: bool = False):
    """The solution notebook of ``assignment`` (or its released notebook) and the released one."""
    name = next((course.ROOT / "solutions" / assignment).glob("*.ipynb")).name
    solution = nbformat.read(course.ROOT / "solutions" / assignment / name, as_version=4)
    release = nbformat.read(course.ROOT / "chapters" / assignment / name, as_version=4)
    return (release if released else solution), release


@pytest.fixture
def processes(monkeypatch):
    """The scorer processes started meanwhile: the jobs each was given."""
    started, run = [], scoring._run_sandboxed
    monkeypatch.setattr(
        scoring,
        "_run_sandboxed",
        lambda argv, *a: started.append([x for x in argv if x.startswith("--job=")]) or run(argv, *a),
    )
    return started


@pytest.mark.slow
def test_a_students_notebooks_share_a_process_as_far_as_lending_allows(scorer, processes):
    """Chapters 2 and 4 in one process (chapter 4 lends the attention chapter 2 grades: it goes
    second), chapter 3 in another (it grades the softmax chapter 2 lends), in each of the two
    passes (the visible cases, then the hidden ones); every point is earned."""
    jobs = [
        scorer.job(*chapter(assignment), assignment, "alice")
        for assignment in ("04-sampling", "03-lm-head", "02-transformer-block")
    ]
    verdicts = scorer.score_jobs(jobs)
    for assignment, got in zip(("04-sampling", "03-lm-head", "02-transformer-block"), verdicts, strict=True):
        assert got and all(v.ok for v in got.values()), (assignment, got)
    assert list(map(len, processes)) == [2, 1, 2, 1], processes


# Chapter 2's attention, answered by the reference that chapter 4's lib holds: the student's code
# asks the grader for every later notebook's lib, waits for the one that lends it, and returns what
# it computes. The grader closed chapter 2's answers before it wrote that lib, so nothing counted;
# now only the harness can ask (red team, ninth round: the next notebook's inputs were written with
# its lib), and the lib never comes.
BORROWED_ATTENTION = """import os, sys, time
def attention(q, k, v):
    fd = int([a for a in sys.argv if a.startswith('--fd=')][0][5:])
    libs = [a for a in sys.argv if a.startswith('--libs=')][0][7:]
    for j in range(1, 8):
        os.write(fd, f"lend {j}\\n".encode())
    while True:
        for j in sorted(os.listdir(libs)):
            found = os.path.join(libs, j, "lib", "attention.py")
            if os.path.exists(found) and "def scaled_dot_product_attention" in open(found).read():
                sys.path.insert(0, os.path.join(libs, j))
                from lib.attention import scaled_dot_product_attention
                return scaled_dot_product_attention(q, k, v)
        time.sleep(0.01)"""


@pytest.mark.slow
def test_an_answer_computed_with_a_later_notebooks_lib_earns_nothing(tmp_path, processes):
    """The borrower mostly sleeps while it waits, so its call reaches a limit of CPU time slowly (at
    the module scorer's 2 s a call, 25 s of the suite): a scorer of its own, at 0.5 s a call (chapters
    2 and 4's honest calls take a few hundredths), ends the wait four times sooner."""
    scorer = scoring.Scorer(tmp_path, b"k" * 32, scoring.Limits(2**30, per_call=0.5))
    ch2, released = chapter("02-transformer-block")
    ch2.cells[index_of(ch2, "attention-answer")].source = BORROWED_ATTENTION
    jobs = [scorer.job(ch2, released, "02-transformer-block", "mallory")]
    jobs.append(scorer.job(*chapter("04-sampling"), "04-sampling", "mallory"))
    attention = scorer.score_jobs(jobs)[0]["attention"]
    # both in one process, in each pass (visible cases, hidden ones): chapter 4's lib was there to be borrowed
    assert list(map(len, processes)) == [2, 2], processes
    assert not attention.ok, attention
    assert attention.status == "timeout", attention  # its asking lent nothing: it waited for its limit


@pytest.mark.slow
def test_a_notebook_that_ends_its_process_costs_the_next_nothing(scorer, processes):
    """The first notebook's code kills the harness; the next notebook is scored in a new process.
    The first notebook's own code, which never returns from the per-call time limit, is stopped
    by its CPU seconds, and the notebook after it runs in the same process."""
    kill = [{"index": 0, "source": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"}]
    stall = "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    endless = [{"index": 0, "source": stall + ENDLESS}]
    fine = [{"index": 0, "source": "x = 1"}, {"index": 1, "source": "import lib"}]
    runs = scorer.run_all([(kill, "01-embeddings"), (fine, "05-worked-toy")])
    assert runs[1].done and not runs[1].failed, runs[1]
    assert len(processes) == 2 and runs[0].returncode != 0, runs[0]
    processes.clear()
    runs = scorer.run_all([(endless, "01-embeddings"), (fine, "05-worked-toy")])
    assert runs[0].returncode in scoring.OUT_OF_TIME and "time limit" in runs[0].missing()[1], runs[0]
    assert runs[1].done and not runs[1].failed, runs[1]
    assert len(processes) == 1


@pytest.mark.slow
def test_the_scorer_sees_no_grader_no_keys_no_solutions(scorer):
    probes = [
        "import grader",
        "import IPython",
        "import nbgrader",
        f"open({str(course.ROOT / 'grader' / 'private' / 'concepts.toml')!r}).read()",
        f"import os\nos.listdir({str(course.ROOT / 'solutions')!r})",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)",
    ]
    # Writing where the course is lands in the sandbox's own scratch at most (the course may live
    # under /tmp, whose tmpfs is the sandbox's), never on the host.
    write = f"open({str(course.ROOT / 'pwned')!r}, 'w').write('x')"
    items = [{"index": i, "source": s} for i, s in enumerate([*probes, write])]
    run = scorer.run(items, ASSIGNMENT)
    assert run.done and set(run.failed) >= set(range(len(probes))), run.failed
    assert not (course.ROOT / "pwned").exists()


# ---- the secret --------------------------------------------------------------------------------


def test_the_course_secret_is_made_once_and_kept_private(tmp_path):
    first = scoring.course_secret(tmp_path)
    assert len(first) == 32 and scoring.course_secret(tmp_path) == first
    assert stat.S_IMODE(os.stat(tmp_path / scoring.SECRET).st_mode) == 0o600
    assert scoring.case_secret(first, "alice", "a/x") != scoring.case_secret(first, "bob", "a/x")
    assert scoring.case_secret(first, "alice", "a/x") != scoring.case_secret(first, "alice", "a/y")
    assert scoring.case_secret(first, "alice", "a/x") == scoring.case_secret(first, "alice", "a/x")


@pytest.mark.slow
def test_a_regrade_draws_the_same_cases(scorer):
    nb = notebook()
    float32 = "def embed(ids, wte, wpe):\n    return (wte[ids] + wpe[: ids.shape[-1]]).astype(np.float32)"
    nb.cells[index_of(nb, "embed-answer")].source = float32
    first, again = score(scorer, nb), score(scorer, nb)
    assert first == again
    embed = first["embed"]
    assert not embed.ok and "dtype" in embed.reason, embed
