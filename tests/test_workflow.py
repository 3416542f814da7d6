"""An instructor's term, end to end with real nbgrader: weekly zips graded into one folder, a late
Canvas submission, an override, a one-student regrade, a score changed in nbgrader's gradebook as
formgrader changes it, the feedback pages in Chromium, and the same class graded on a Dask cluster.

The term is one module fixture that advances step by step (each step is a real
``python -m grader`` command); each test reads the outputs one step left.
"""

import csv
import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import tomllib
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import nbformat
import pytest
from distributed import Client
from distributed.security import Security
from test_book import CHROMIUM, chromium, open_page
from test_grading import ONE_BASED, RELEASED, ROOT, answer, solution

from grader import distributed, late, lms, reports
from grader.distributed import local_cluster, make_keys
from grader.results import Row

ASSIGNMENT = "01-embeddings"
WEEK2 = "06-cost"
COURSE_TOML = """
timezone = "UTC"

[due]
"01-embeddings" = "2026-10-09 23:59"
"06-cost" = "2026-10-16 23:59"

[late]
policy = "per-day"
penalty_per_day = 10
max_penalty = 50
grace_minutes = 30

[canvas]
"01-embeddings" = "Embeddings (9001)"
"""
# (file in the zip, notebook, time of the zip entry)
WEEK1 = {
    "alice/embeddings.ipynb": (solution, (2026, 10, 9, 20, 0, 0)),
    "bob/embeddings.ipynb": (
        lambda: nbformat.read(RELEASED, as_version=4),
        (2026, 10, 10, 0, 15, 0),
    ),  # in grace
    "carolsmith_LATE_555_777_embeddings.ipynb": (solution, (2026, 10, 11, 10, 0, 0)),  # 2 days late
    "dansmith_556_778_embeddings.ipynb": (solution, (2026, 10, 20, 9, 0, 0)),  # Canvas says on time
}


def week2():
    return nbformat.read(ROOT / "solutions" / WEEK2 / "cost.ipynb", as_version=4)


def write_zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (build, when) in files.items():
            zf.writestr(zipfile.ZipInfo(f"export/{name}", date_time=when), nbformat.writes(build()))
    return path


def grader(*args: str, env: dict | None = None, rc: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert done.returncode == rc, done.stdout + done.stderr
    return done


def autograde(submitted: Path, out: Path, *more: str, **how) -> subprocess.CompletedProcess:
    return grader("autograde", str(submitted), "--out", str(out), "--jobs", "2", *more, **how)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grades(out: Path) -> dict[tuple[str, str, str], dict]:
    return {(r["student"], r["assignment"], r["exercise"]): r for r in read_csv(out / "grades.csv")}


def totals(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["student"], r["assignment"]): r for r in read_csv(out / "totals.csv")}


def of(rows: dict, student: str) -> dict:
    return {key: row for key, row in rows.items() if key[0] == student}


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """Every step of the term, with the outputs as each step left them."""
    base = tmp_path_factory.mktemp("term")
    out = base / "out"
    out.mkdir()
    (out / "course.toml").write_text(COURSE_TOML)
    steps = {}
    week1 = write_zip(base / "week1.zip", WEEK1)
    steps["week1"] = (autograde(week1, out), grades(out), totals(out))
    week2_zip = write_zip(base / "week2.zip", {"alice/cost.ipynb": (week2, (2026, 10, 16, 12, 0, 0))})
    steps["week2"] = (autograde(week2_zip, out), grades(out), totals(out))
    adjusted = grader(
        "adjust", "bob", "encode", "1", "--reason", "right idea, wrong offset", "--out", str(out)
    )
    steps["adjust"] = (adjusted, grades(out), totals(out))
    steps["regrade bob"] = (autograde(week1, out, "--student", "bob", "--force"), grades(out), totals(out))
    fixed = write_zip(
        base / "alice-fix.zip",
        {"alice/embeddings.ipynb": (lambda: answer("encode", ONE_BASED), (2026, 10, 9, 21, 0, 0))},
    )
    steps["alice resubmits"] = (autograde(fixed, out), grades(out), totals(out))
    return out, steps


@pytest.mark.slow
def test_week_by_week_keeps_every_earlier_grade(term):
    out, steps = term
    done, after, _ = steps["week2"]
    _, before, _ = steps["week1"]
    assert {k: v for k, v in after.items() if k[1] == ASSIGNMENT} == before
    assert {after[("alice", WEEK2, e)]["status"] for (s, a, e) in after if (s, a) == ("alice", WEEK2)} == {
        "graded"
    }
    for student in ("bob", "555", "556"):
        assert {row["status"] for key, row in after.items() if key[:2] == (student, WEEK2)} == {"missing"}
    assert "graded 1 notebook(s) this run" in done.stdout
    assert "every grade outside this run's selection is unchanged" in done.stdout
    assert "has no gradebook yet: this run starts the term's gradebook there" in steps["week1"][0].stderr
    assert "has no gradebook yet" not in done.stderr


@pytest.mark.slow
def test_a_late_canvas_submission_is_penalised_as_configured(term):
    _, steps = term
    _, _, week1 = steps["week1"]
    carol = week1[("555", ASSIGNMENT)]
    assert (carol["name"], carol["lms_id"]) == ("carolsmith", "555")
    assert carol["time_source"] == "time of the file in the zip"
    assert (carol["days_late"], carol["score"], carol["late_penalty"], carol["final_score"]) == (
        "2",
        "12",
        "2.4",
        "9.6",
    )
    bob = week1[("bob", ASSIGNMENT)]
    assert (bob["days_late"], bob["late_penalty"]) == ("0", "0") and "grace" in bob["late_note"]
    dan = week1[("556", ASSIGNMENT)]  # after the due date by the zip's clock, but Canvas says on time
    assert (dan["days_late"], dan["final_score"]) == ("0", "12")


@pytest.mark.slow
def test_an_override_is_kept_with_its_reason_and_survives_a_regrade(term):
    _, steps = term
    done, adjusted, adjusted_totals = steps["adjust"]
    row = adjusted[("bob", ASSIGNMENT, "encode")]
    assert (row["score"], row["auto_score"], row["override_reason"]) == (
        "1.0",
        "0.0",
        "right idea, wrong offset",
    )
    assert adjusted_totals[("bob", ASSIGNMENT)]["score"] == "1"
    assert "right idea, wrong offset" in done.stdout
    _, regraded, regraded_totals = steps["regrade bob"]
    assert regraded[("bob", ASSIGNMENT, "encode")] == row
    assert regraded_totals[("bob", ASSIGNMENT)] == adjusted_totals[("bob", ASSIGNMENT)]


@pytest.mark.slow
def test_regrading_one_student_changes_only_that_student(term):
    out, steps = term
    done, after, _ = steps["regrade bob"]
    _, before, _ = steps["adjust"]
    assert "graded 1 notebook(s) this run" in done.stdout
    assert "every grade outside this run's selection is unchanged" in done.stdout
    assert "has no gradebook yet: this run starts the term's gradebook there" in steps["week1"][0].stderr
    assert "has no gradebook yet" not in done.stderr
    assert {k: v for k, v in after.items() if k[0] != "bob"} == {
        k: v for k, v in before.items() if k[0] != "bob"
    }
    with sqlite3.connect(out / "grades.sqlite") as db:
        runs = db.execute("SELECT count(DISTINCT run) FROM history WHERE student = 'bob'").fetchone()[0]
    assert runs == 2  # graded in week 1 and again: both kept in the history


@pytest.mark.slow
def test_a_resubmitted_chapter_keeps_the_other_chapters(term):
    _, steps = term
    _, after, after_totals = steps["alice resubmits"]
    _, before, before_totals = steps["regrade bob"]
    assert after[("alice", ASSIGNMENT, "encode")]["status"] == "wrong"
    assert after_totals[("alice", WEEK2)] == before_totals[("alice", WEEK2)]
    assert after_totals[("alice", WEEK2)]["status"] == "graded"
    assert {k: v for k, v in after.items() if k[0] != "alice"} == {
        k: v for k, v in before.items() if k[0] != "alice"
    }


@pytest.mark.slow
def test_totals_and_the_canvas_file_match_the_exercise_rows(term):
    out, _ = term
    rows, sums = read_csv(out / "grades.csv"), {}
    for row in rows:
        if row["assignment"]:
            key = (row["student"], row["assignment"])
            sums[key] = sums.get(key, 0) + float(row["score"])
    by_unit = totals(out)
    assert set(by_unit) == set(sums)
    for key, total in by_unit.items():
        assert float(total["score"]) == pytest.approx(sums[key]), key
        assert float(total["final_score"]) == pytest.approx(
            float(total["score"]) - float(total["late_penalty"])
        )
    canvas = read_csv(out / "canvas.csv")
    assert list(canvas[0])[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert list(canvas[0])[5:] == ["Embeddings (9001)", WEEK2]
    students = {r["ID"] or r["Student"]: r for r in canvas}
    assert set(students) == {"alice", "bob", "555", "556"}
    assert students["555"]["Student"] == "carolsmith"
    for (student, assignment), total in by_unit.items():
        column = "Embeddings (9001)" if assignment == ASSIGNMENT else assignment
        assert float(students[student][column]) == pytest.approx(float(total["final_score"])), (
            student,
            assignment,
        )


@pytest.mark.slow
def test_the_class_summary_agrees_with_totals_and_names_what_to_look_at(term):
    """summary.html's students table: each final score as totals.csv has it (* when late), and
    what needs a look (late, not submitted, changed scores), each student linked to their
    feedback; a page for a phone (its viewport) under a policy that loads nothing."""
    out, _ = term
    page = (out / "summary.html").read_text()
    assert 'name="viewport"' in page and "Content-Security-Policy" in page and "default-src 'none'" in page
    shown = dict(re.findall(r'<tr><td><a href="feedback/(\w+)/index.html">\1</a>(.*?)</tr>', page))
    assert set(shown) == {"alice", "bob", "555", "556"}
    for (student, assignment), total in totals(out).items():
        late = "*" if total["days_late"] != "0" else ""
        assert f"<td class=n>{total['final_score']}{late}</td>" in shown[student], (student, assignment)
    assert f"{ASSIGNMENT}: 2 day(s) late, -2.4" in shown["555"]
    assert f"{ASSIGNMENT}: 1 score(s) changed; {WEEK2}: not submitted" in shown["bob"]
    assert shown["alice"].endswith("<td class=look></td>")


def test_the_class_summary_names_exercises_that_ran_out_of_time_or_memory():
    """A timeout or a killed scorer leaves a graded notebook with 0 on that exercise: the summary
    says so beside the student, as it says a notebook that could not be graded."""
    statuses = {"encode": "timeout", "embed": "kernel_died", "decode": "wrong"}
    lines = [
        reports.Line("embeddings", Row("ann", ASSIGNMENT, name, 0, 1, status, ""), 0, None)
        for name, status in statuses.items()
    ]
    totals = [reports.Total("ann", ASSIGNMENT, "graded", 0, 3, late.ON_TIME, None, 0, 0)]
    view = reports.View(lines, totals, {"ann": lms.Person("Ann")}, [], {ASSIGNMENT: []})
    assert f"<td class=look>{ASSIGNMENT}: 2 exercise(s) timed out or crashed</td>" in reports._students_table(
        view
    )


@pytest.mark.slow
def test_a_score_changed_in_nbgraders_gradebook_becomes_an_override(term):
    """What formgrader does when a score is typed in: nbgrader's API sets the manual score."""
    from nbgrader.api import Gradebook

    out, _ = term
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score = 0.5
        gb.find_comment(
            "decode-answer", "embeddings", ASSIGNMENT, "556"
        ).manual_comment = "half: see the docstring"
        gb.db.commit()
    done = grader("report", "--out", str(out))
    assert "formgrader: 556 01-embeddings/decode set to 0.5" in done.stdout
    row = grades(out)[("556", ASSIGNMENT, "decode")]
    assert (row["score"], row["override_reason"]) == ("0.5", "half: see the docstring")
    again = grader("report", "--out", str(out))  # imported once, then nothing more to import
    assert "formgrader:" not in again.stdout
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:  # and bob's override went the other way
        assert gb.find_grade("encode", "embeddings", ASSIGNMENT, "bob").manual_score == 1


@pytest.mark.slow
def test_extra_credit_in_formgrader_counts_as_nbgrader_export_counts_it(term):
    """Extra credit is part of nbgrader's score (manual or auto, plus extra credit): it becomes
    an override that passes the exercise's points, and the totals agree with nbgrader's. A manual
    score formgrader would refuse, written into its database some other way, is named, not taken,
    and put back."""
    from nbgrader.api import Gradebook

    out, _ = term
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        encode = gb.find_grade("encode", "embeddings", ASSIGNMENT, "alice")
        encode.extra_credit = 1.5
        wanted, points = encode.auto_score + 1.5, encode.max_score
        decode = gb.find_grade("decode", "embeddings", ASSIGNMENT, "alice")
        decode.manual_score = decode.max_score + 3
        kept = grades(out)[("alice", ASSIGNMENT, "decode")]["score"]
        gb.db.commit()
    done = grader("report", "--out", str(out))
    assert f"formgrader: alice {ASSIGNMENT}/encode set to {wanted:g}" in done.stdout
    assert f"alice {ASSIGNMENT}/decode has a manual score of {points + 3:g}" in done.stderr
    assert "not taken" in done.stderr
    rows = grades(out)
    assert float(rows[("alice", ASSIGNMENT, "encode")]["score"]) == wanted > points
    assert rows[("alice", ASSIGNMENT, "decode")]["score"] == kept
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        theirs = gb.find_submission(ASSIGNMENT, "alice").score
        assert gb.find_grade("decode", "embeddings", ASSIGNMENT, "alice").manual_score is None
        assert gb.find_grade("encode", "embeddings", ASSIGNMENT, "alice").extra_credit == 1.5
    assert float(totals(out)[("alice", ASSIGNMENT)]["score"]) == pytest.approx(theirs)
    again = grader("report", "--out", str(out))  # imported once, the refused one put back
    assert "formgrader" not in again.stdout + again.stderr


@pytest.mark.slow
def test_a_student_only_on_the_roster_can_be_given_a_score(term, tmp_path):
    """Someone who submitted nothing is in the reports (from the roster) with every exercise
    missing: ``adjust`` finds them by the id the reports give them, as it finds a graded student."""
    out = tmp_path / "out"
    shutil.copytree(term[0], out)
    (out / "roster.csv").write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section\n"
        "    Points Possible,,,,\n"
        '"Doe, Jane",999,S999,jdoe,Section A\n',
        encoding="utf-8-sig",
    )
    (out / "course.toml").write_text(COURSE_TOML + 'roster = "roster.csv"\n')
    done = grader("adjust", "jdoe", "encode", "1", "--reason", "excused: a doctor's note", "--out", str(out))
    assert "jdoe 01-embeddings/encode: 1 /" in done.stdout
    row = grades(out)[("jdoe", ASSIGNMENT, "encode")]
    assert (float(row["score"]), row["override_reason"]) == (1, "excused: a doctor's note")
    assert float(totals(out)[("jdoe", ASSIGNMENT)]["score"]) == 1
    unknown = subprocess.run(
        [sys.executable, "-m", "grader", "adjust", "jdoe2", "encode", "1", "--reason", "x", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no student 'jdoe2' in the gradebook or on the roster" in unknown.stderr


# Inside bubblewrap, the grading folder copied onto a tmpfs that then fills up; the gradebook's
# digest before and after a command that finds no room, the half-written files it left, and the
# same command once there is room again.
FULL_DISK = """
cp -a "$1" "$2/out" || exit 90
cat /dev/zero > "$2/fill" 2>/dev/null
before=$(sha256sum < "$2/out/grades.sqlite")
"$3" -m grader report --out "$2/out"; echo "rc=$?"
[ "$before" = "$(sha256sum < "$2/out/grades.sqlite")" ] && echo "gradebook kept"
find "$2/out" -name '*.partial' -printf 'left: %p\\n'
rm "$2/fill"
"$3" -m grader report --out "$2/out" > /dev/null && echo "then done"
"""


@pytest.mark.slow
@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_folder_that_cannot_be_written_is_named_and_loses_nothing(term, tmp_path, trouble):
    """A grading folder on a full disk, or mounted read-only: the command says which file it
    could not write and that the graded work is kept, leaves the gradebook as it was and no
    half-written file, and exits with 2; on a full disk, the same command then finishes once
    there is room."""
    out, disk = term[0], tmp_path / "disk"
    disk.mkdir()
    size = 2 * sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) + 2**20
    if trouble == "full":
        mounts = ["--size", str(size), "--tmpfs", str(disk)]
        command = ["sh", "-c", FULL_DISK, "sh", str(out), str(disk), sys.executable]
    else:
        mounts = ["--ro-bind", str(out), str(out)]
        command = [sys.executable, "-m", "grader", "report", "--out", str(out)]
    done = subprocess.run(
        ["bwrap", "--dev-bind", "/", "/", *mounts, "--chdir", str(ROOT), *command],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert "error: a file cannot be written" in done.stderr, done.stdout + done.stderr
    assert "Every notebook graded before this is kept" in done.stderr
    if trouble == "full":
        assert "No space left on device" in done.stderr or "full" in done.stderr
        assert done.stdout.splitlines() == ["rc=2", "gradebook kept", "then done"], done.stdout
    else:
        assert "Read-only file system" in done.stderr and done.returncode == 2


def test_a_refusal_of_the_disk_is_told_for_what_it_is(tmp_path):
    """A full disk is told to make room; a permission refused (reading or writing) is told as
    such, not as a full disk; an error raised while handling one is traced back to it; any
    other error is not the disk's, and is raised as it is."""
    from grader.__main__ import disk_refusal

    def raised_while_handling(first):
        try:
            try:
                raise first
            except OSError:
                raise RuntimeError("while cleaning up") from None
        except RuntimeError as err:
            return err

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "grades.csv"))
    assert "a file cannot be written" in disk_refusal(full, tmp_path)
    assert "Make room there" in disk_refusal(raised_while_handling(full), tmp_path)
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "alice"))
    told = disk_refusal(denied, tmp_path)
    assert "permission denied" in told and "alice" in told and "Make room" not in told
    assert "Every notebook graded before this is kept" in told
    assert disk_refusal(FileNotFoundError(errno.ENOENT, "No such file", "x"), tmp_path) == ""


@pytest.mark.slow
def test_report_makes_formgrader_copies_that_are_missing(term):
    """A student graded before the grader kept formgrader's copies (``formgrader.MIRROR``) gets
    one at the next command; one that is there is left as it is."""
    from grader import formgrader

    out, _ = term
    mirror = out / formgrader.MIRROR
    copies = sorted(p.relative_to(mirror) for p in mirror.glob("*/*/*.ipynb"))
    assert copies == sorted(
        p.relative_to(out / "autograded") for p in (out / "autograded").glob("*/*/*.ipynb")
    )
    kept = mirror / copies[0]
    before = kept.stat().st_mtime_ns
    lost = mirror / copies[-1]
    lost.unlink()
    grader("report", "--out", str(out))
    assert lost.is_file() and kept.stat().st_mtime_ns == before
    assert nbformat.read(lost, as_version=4).cells


@pytest.mark.slow
@pytest.mark.browser
def test_feedback_pages_work_offline_in_chromium(term):
    if CHROMIUM is None:
        pytest.skip("no Chromium")
    out, _ = term
    folder = out / "feedback" / "bob"
    with chromium() as context:
        page, errors, failed, foreign = open_page(context, (folder / f"{ASSIGNMENT}.html").as_uri())
        page.evaluate("() => MathJax.startup.promise")
        typeset = page.locator("mjx-container").count()
        text = page.inner_text("body")
        page.click("text=All your grades")
        page.wait_for_load_state()
        index = page.inner_text("body")
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.reload()
        page.wait_for_load_state("networkidle")
    assert typeset > 10, "MathJax did not typeset the page's math"
    assert not foreign and not errors and not failed, (foreign, errors, failed)
    assert all(url.startswith("file://") for url in requests), requests
    assert "not attempted" in text and "NotImplementedError" not in text.split("Tokens and embeddings")[0]
    assert "changed by your instructor from 0 to 1: right idea, wrong offset" in text
    assert "✔ encode: 1 / 1 (not attempted, changed by your instructor)" in text, (
        "the override gave full marks: a ✔ means full marks, whatever the status"
    )
    assert "not submitted" in index and "Grades of bob" in index


# ---- a Dask cluster ---------------------------------------------------------------------------------


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers on 127.0.0.1, as real processes, with keys of their own."""
    with local_cluster(workers=2, logs=tmp_path) as cluster:
        yield cluster


@pytest.mark.slow
def test_the_dask_path_gives_the_same_grades_as_the_local_one(tmp_path, dask_cluster):
    folder = tmp_path / "class"
    students = {  # every status: graded, and a wrong answer among exercises not attempted
        "perfect": solution(),
        "mistakes": answer("encode", ONE_BASED, nbformat.read(RELEASED, as_version=4)),
    }
    for student, nb in students.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / "embeddings.ipynb")
    local = autograde(folder, tmp_path / "local")
    remote = autograde(folder, tmp_path / "dask", "--scheduler", dask_cluster.address, env=dask_cluster.env)
    assert (
        "graded 2 notebook(s) this run" in local.stdout and "graded 2 notebook(s) this run" in remote.stdout
    )
    assert read_csv(tmp_path / "dask" / "grades.csv") == read_csv(tmp_path / "local" / "grades.csv")
    assert {r["status"] for r in read_csv(tmp_path / "dask" / "grades.csv")} == {
        "graded",
        "wrong",
        "not_attempted",
    }
    pages = sorted(
        p.relative_to(tmp_path / "dask") for p in (tmp_path / "dask" / "feedback").glob("*/*.html")
    )
    assert pages == sorted(
        p.relative_to(tmp_path / "local") for p in (tmp_path / "local" / "feedback").glob("*/*.html")
    )
    assert sorted(p.name for p in (tmp_path / "dask" / "logs").iterdir()) == [
        f"{s}.log" for s in sorted(students)
    ]
    # Only holders of the course's certificate join: one its authority did not sign is turned away.
    rogue = make_keys(tmp_path / "rogue")
    shown = Security(
        tls_ca_file=str(dask_cluster.keys / "ca.pem"),
        tls_client_cert=str(rogue / "course.pem"),
        tls_client_key=str(rogue / "course.pem"),
        require_encryption=True,
    )
    with pytest.raises(OSError):
        Client(dask_cluster.address, timeout="10s", security=shown)


@pytest.mark.parametrize(
    "address, keys",
    [("tcp://127.0.0.1:8786", True), ("tls://127.0.0.1:8786", False)],
    ids=["open-address", "no-keys"],
)
def test_a_cluster_anyone_can_join_is_refused_before_anything_is_done(tmp_path, address, keys):
    """Whoever can join a Dask cluster reads its tasks and returns any result: with the guide's
    tcp:// setup, a rogue client read the course's secret and every notebook, and a rogue worker
    could return any grade. A task carries its student's key, not the course's secret."""
    env = {**os.environ, "DASK_CONFIG": str(make_keys(tmp_path / "keys") if keys else tmp_path / "none")}
    (tmp_path / "class").mkdir()
    done = autograde(tmp_path / "class", tmp_path / "out", "--scheduler", address, env=env, rc=2)
    assert "refused: whoever can join a Dask cluster" in done.stderr and "cluster-keys" in done.stderr
    assert not (tmp_path / "out").exists()
    assert "secret" not in {field.name for field in dataclasses.fields(distributed.Job)}


# A ``dask`` command whose scheduler, as Dask's does, opens its scheduler file before it writes it,
# and here waits half a second between the two (a busy machine's scheduler, descheduled there).
SLOW_SCHEDULER = """#!{python}
import json, sys, time
if sys.argv[1] == "scheduler":
    with open(sys.argv[sys.argv.index("--scheduler-file") + 1], "w") as f:
        time.sleep(0.5)
        json.dump({{"address": "tls://127.0.0.1:8786"}}, f)
time.sleep(600)
"""


def test_a_scheduler_file_not_yet_written_is_waited_for(tmp_path, monkeypatch):
    """``local_cluster`` read the scheduler's file as soon as it existed, and Dask writes it in
    place: read while empty, it failed with a JSON error."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "dask").write_text(SLOW_SCHEDULER.format(python=sys.executable))
    (tmp_path / "bin" / "dask").chmod(0o755)
    monkeypatch.setattr(distributed, "sys", SimpleNamespace(executable=str(tmp_path / "bin" / "python")))
    monkeypatch.setattr(distributed, "_wait_for_workers", lambda address, keys, workers: None)
    with local_cluster(workers=0, logs=tmp_path) as cluster:
        assert cluster.address == "tls://127.0.0.1:8786"


def test_a_result_kept_here_is_no_longer_held_by_the_cluster(tmp_path, monkeypatch):
    """A task's result (a student's autograded notebooks, up to 64 MB of outputs each) stays in its
    worker's memory while the client holds its future: every student's stayed there until the run
    ended (the guide's workers run with --memory-limit 0, so nothing is spilled)."""
    import distributed as dask_distributed

    monkeypatch.setattr(distributed, "security", lambda scheduler: None)
    monkeypatch.setattr(distributed, "grade_remote", lambda job: ({"student": job.student}, ""))
    (tmp_path / "n.ipynb").write_text("{}")
    sub = SimpleNamespace(notebook="n", assignment="a", file="n.ipynb", path=tmp_path / "n.ipynb")
    todo = {f"s{i}": [sub] for i in range(4)}
    run = SimpleNamespace(timeout=1, limits=None, isolate=True, zero_flagged=False)
    run.scorer = SimpleNamespace(key=lambda student: b"key")
    held = []
    with dask_distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:

        def persist(student, subs, result, log):
            unkept = len(todo) - len(held) - 1  # results that may still wait to be kept here
            deadline = time.monotonic() + 30
            while in_memory(cluster) > unkept + 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # a release reaches the scheduler a moment later
            held.append(in_memory(cluster))

        distributed.grade_all(
            cluster.scheduler_address, run, todo, persist, SimpleNamespace(update=lambda: None)
        )
    assert held[-1] <= 1, held  # the last student's at most, released as it is kept


def in_memory(cluster) -> int:
    return sum(task.state == "memory" for task in list(cluster.scheduler.tasks.values()))


def test_cluster_keys_make_a_configuration_dask_reads(tmp_path):
    done = grader("cluster-keys", str(tmp_path / "keys"))
    assert "export DASK_CONFIG=" in done.stdout
    assert stat.S_IMODE((tmp_path / "keys" / "course.pem").stat().st_mode) == 0o600
    settings = json.loads((tmp_path / "keys" / "dask.yaml").read_text())["distributed"]["comm"]
    assert settings["require-encryption"] and settings["tls"]["ca-file"] == str(tmp_path / "keys" / "ca.pem")
    assert "exists" in grader("cluster-keys", str(tmp_path / "keys"), rc=2).stderr


# ---- the parts, without nbgrader ----------------------------------------------------------------------


def test_only_a_unit_inside_the_selection_changes_its_digest(tmp_path):
    from grader.gradebook import Gradebook

    def result(student: str, score: float) -> dict:
        row = {"student": student, "assignment": "a", "exercise": "e", "score": score, "max_score": 1.0,
               "status": "graded", "reason": ""}  # fmt: skip
        return {"student": student, "complete": True, "notebooks": [
            {"assignment": "a", "notebook": "n", "rows": [row], "findings": []}]}  # fmt: skip

    units = {("a", "n"): {"file": "n.ipynb", "sha256": "0"}}
    with Gradebook(tmp_path) as book:
        run = book.start_run("test", "all")
        for student in ("alice", "bob"):
            book.record(run, result(student, 1.0), units)
        outside_alice = lambda student, assignment: student != "alice"  # noqa: E731
        before = book.units_digest(outside_alice)
        book.record(run, result("alice", 0.0), units)
        assert book.units_digest(outside_alice) == before
        book.record(run, result("bob", 0.0), units)
        assert book.units_digest(outside_alice) != before
        assert [row.score for _, row in book.scores()] == [0.0, 0.0]  # replaced, never added


def test_a_run_that_ended_without_its_outcome_is_marked_failed_by_the_next(tmp_path):
    from grader.gradebook import Gradebook

    with Gradebook(tmp_path) as book:
        killed = book.start_run("killed before it could say", "all")
        done = book.start_run("the next command", "all")
        book.finish_run(done, "finished")
        outcomes = dict(book.db.execute("SELECT run, outcome FROM runs"))
    assert outcomes == {killed: "failed", done: "finished"}


@pytest.mark.parametrize(
    ("policy", "submitted", "lms_late", "days", "penalty"),
    [
        ({"policy": "per-day"}, (10, 1, 0), None, 1, 1.2),  # one minute late is a day
        ({"policy": "per-day"}, (12, 0, 1), None, 3, 3.6),  # two days and a minute
        ({"policy": "per-day", "max_penalty": 20}, (20, 0, 0), None, 10, 2.4),  # capped
        ({"policy": "per-day", "grace_minutes": 30}, (10, 0, 29), None, 0, 0.0),  # in the grace period
        ({"policy": "per-day", "grace_minutes": 30}, (10, 0, 31), None, 1, 1.2),  # past it: from the due date
        ({"policy": "none"}, (12, 0, 0), None, 2, 0.0),  # reported, free
        ({"policy": "per-day"}, (12, 0, 0), False, 0, 0.0),  # the LMS says on time
        ({"policy": "per-day"}, (9, 12, 0), True, 1, 1.2),  # the LMS says late; its time does not
        ({"policy": "per-day"}, None, None, 0, 0.0),  # no time known
    ],
)
def test_late_policy(policy, submitted, lms_late, days, penalty):
    from datetime import UTC, datetime

    from grader import late, settings

    rules = settings.parse({"timezone": "UTC", "late": policy}, Path("course.toml")).late
    due = datetime(2026, 10, 10, 0, 0, tzinfo=UTC)
    when = datetime(2026, 10, submitted[0], submitted[1], submitted[2], tzinfo=UTC) if submitted else None
    lateness = late.assess(rules, due, when, lms_late, score=12, max_score=12)
    assert (lateness.days, lateness.penalty) == (days, pytest.approx(penalty))


@pytest.mark.parametrize(
    ("submitted", "due", "said"),
    [
        (None, (10, 0), "late according to the LMS, whose export has no submission time: counted as 1 day"),
        (
            (9, 12),
            None,
            "late according to the LMS, and no due date is set to count days from: counted as 1 day",
        ),
        (
            (9, 12),
            (10, 0),
            "late according to the LMS, though the file's time (2026-10-09 12:00 UTC) is not after the due date "
            "(2026-10-10 00:00 UTC): a time the LMS does not keep (a copy's, or the file's own), which says "
            "nothing of how late: counted as 1 day",
        ),
    ],
)
def test_the_note_on_a_late_verdict_of_the_lms_says_what_the_time_known_says(submitted, due, said):
    """Canvas says late: the note names the time the grader has, if any, and why it does not count."""
    from datetime import UTC, datetime

    from grader import late, settings

    rules = settings.LatePolicy(policy="per-day", penalty_per_day=10, max_penalty=50)
    on = lambda day_hour: day_hour and datetime(2026, 10, *day_hour, tzinfo=UTC)  # noqa: E731
    assert late.assess(rules, on(due), on(submitted), True, 12, 12).note == said


def test_an_extension_outweighs_the_lms_verdict():
    """Canvas marks a submission late against its own due date; the student's extension in
    course.toml is later: the submission time decides."""
    from datetime import UTC, datetime, timedelta

    from grader import late, settings

    rules = settings.LatePolicy(policy="per-day", penalty_per_day=10, max_penalty=50)
    extended, when = datetime(2026, 10, 12, 23, 59, tzinfo=UTC), datetime(2026, 10, 10, 2, tzinfo=UTC)
    assert late.assess(rules, extended, when, True, 12, 12, extended=True).days == 0
    assert late.assess(rules, extended, when, True, 12, 12).days == 1  # no extension: the LMS's verdict
    assert late.assess(rules, extended, when + timedelta(days=3), True, 12, 12, extended=True).days == 1


def test_an_extension_for_a_student_nobody_has_is_named(capsys):
    """A typo in an extension's student applied it to nobody, silently."""
    from datetime import UTC, datetime

    from grader import reports, settings

    when = datetime(2026, 10, 12, 23, 59, tzinfo=UTC)
    term = settings.Settings(extensions={(ASSIGNMENT, "Alice"): when, (ASSIGNMENT, "bob"): when})
    reports._warn_about_extensions(term, {"alice", "bob"})
    (line,) = capsys.readouterr().err.splitlines()
    assert 'extensions."01-embeddings".Alice names no student graded or on the roster' in line
    assert line.endswith("did you mean alice?")


def test_a_graded_assignment_without_a_due_date_is_named(capsys):
    from datetime import UTC, datetime

    from grader import reports, settings

    term = settings.Settings(due={ASSIGNMENT: datetime(2026, 10, 9, 23, 59, tzinfo=UTC)})
    reports._warn_about_due_dates(term, {ASSIGNMENT, WEEK2})
    assert (
        "no due date for 06-cost ([due]): nothing submitted for it counts as late" in capsys.readouterr().err
    )
    reports._warn_about_due_dates(settings.Settings(), {ASSIGNMENT, WEEK2})  # a term without due dates
    reports._warn_about_due_dates(term, {ASSIGNMENT})
    assert not capsys.readouterr().err


def test_a_penalty_never_takes_a_score_below_zero():
    from datetime import UTC, datetime

    from grader import late, settings

    rules = settings.LatePolicy(policy="per-day", penalty_per_day=50, max_penalty=100)
    due = datetime(2026, 10, 10, tzinfo=UTC)
    assert late.assess(rules, due, datetime(2026, 10, 12, tzinfo=UTC), None, 1, 12).penalty == 1


def test_a_submission_time_in_the_future_is_named_not_taken_quietly():
    """A laptop's clock a year ahead (a folder of notebooks copied from it): the submission counted
    365 days late, the penalty at its cap, with nothing to say that no submission can be dated after
    the report itself. The time still counts (a time that would not count could be used to hide
    lateness), and the note says what to check."""
    from datetime import UTC, datetime, timedelta

    from grader import late, settings

    rules = settings.LatePolicy(policy="per-day", penalty_per_day=10, max_penalty=50)
    now = datetime.now(UTC)
    due = now - timedelta(days=3)
    ahead = late.assess(rules, due, now + timedelta(days=362), None, 12, 12)
    assert (ahead.days, ahead.penalty) == (365, 6)
    assert (
        "is after this report was made: a clock set wrong, or a time written by hand; check it" in ahead.note
    )
    assert "after this report" not in late.assess(rules, due, due + timedelta(days=1), None, 12, 12).note


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[due]\n"01-embeddings" = "next friday"', 'due.01-embeddings = "next friday" is not a date'),
        ('[late]\npolicy = "harsh"', "late.policy must be one of none, per-day"),
        ("[late]\npenalty_per_day = -5", "late.penalty_per_day must be a number from 0 to 100, not -5"),
        ("[late]\nmax_penalty = 150", "late.max_penalty must be a number from 0 to 100, not 150"),
        ("[late]\npenalty_per_day = nan", "late.penalty_per_day must be a number from 0 to 100, not nan"),
        ("[late]\ngrace_minutes = inf", "late.grace_minutes must be a number from 0 to 10080, not inf"),
        (
            '[due]\n"01-embeddings" = "2026-10-09"',  # midnight at its start: everyone a day late
            'due.01-embeddings = "2026-10-09" has no time of day: write it in full, such as "2026-10-09 23:59"',
        ),
        ('timezone = "Mars/Olympus"', "timezone 'Mars/Olympus' is not a time zone name"),
        ("[due", "not valid TOML"),
        (
            '[due]\n"01-embedding" = "2026-10-09 23:59"',
            'due."01-embedding" names no assignment (they are: 00-introduction, 01-embeddings',
        ),
        ('[extensions."06-cst"]\nbob = "2026-10-09 23:59"', 'extensions."06-cst" names no assignment'),
        (
            '[extensions."06-cost"]\nbob = "2026-10-09 23:59"',
            'extensions."06-cost".bob extends a due date that [due] does not give',
        ),
        ("[late]\npenalty_perday = 25", "late.penalty_perday is not a setting"),
        ('timezon = "UTC"', "timezon is not a setting"),
        (
            '[canvas]\nroster = "export.csv"\ntimezone = "UTC"',  # added at the end of the file
            "canvas.timezone: timezone belongs at the top of the file, above every [section]",
        ),
        ('[due]\npolicy = "per-day"', "due.policy: policy belongs in [late]"),
        (  # TOML reads a bare key with a dot as a table: "alice" with a student "smith"
            '[due]\n"01-embeddings" = "2026-10-09 23:59"\n[extensions."01-embeddings"]\nalice.smith = "2026-10-12 23:59"',
            'extensions."01-embeddings".alice.smith: an id with a dot in it must be quoted: "alice.smith" = ',
        ),
        (  # September for October: the student's "extension" made them a week late
            'timezone = "UTC"\n[due]\n"01-embeddings" = "2026-10-09 23:59"\n'
            '[extensions."01-embeddings"]\nbob = "2026-09-16 23:59"',
            'extensions."01-embeddings".bob = 2026-09-16 23:59 UTC is before the due date it extends '
            "(2026-10-09 23:59 UTC)",
        ),
        (
            '[roster_ids]\nalice.smith = "jdoe"',
            'roster_ids.alice.smith: an id with a dot in it must be quoted: "alice.smith" = ',
        ),
        ('[canvas]\n"01-embeddings" = "A (1)"\n"06-cost" = "A (1)"', "share the Canvas column 'A (1)'"),
        (
            '[canvas]\nroster = "canvas_export.csv"',
            "canvas.roster = 'canvas_export.csv': there is no such file",
        ),
    ],
)
def test_a_mistake_in_course_toml_is_named(tmp_path, text, words):
    from grader import settings

    (tmp_path / "course.toml").write_text(text)
    with pytest.raises(settings.SettingsError, match=re.escape(words)):
        settings.load(tmp_path)


def test_the_template_course_toml_loads_as_no_policy(tmp_path):
    from grader import settings

    settings.ensure(tmp_path)
    loaded = settings.load(tmp_path)
    assert loaded.due == {} and loaded.late.policy == "none" and loaded.roster is None


def test_what_an_lms_export_says_about_a_submission(tmp_path):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from grader import lms
    from grader.submissions import Submission

    def describe(relative: str, zip_time=None, changed=None) -> Submission:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        if changed:  # the notebook's modification time, as nbgrader's submit and collect keep it
            os.utime(path, (changed.timestamp(), changed.timestamp()))
        listed = zip_time or datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        sub = Submission("x", "x", path, relative, "embeddings", ASSIGNMENT, listed=listed)
        return lms.describe(sub, UTC)

    canvas = describe("a/doejane_LATE_999_111_embeddings.ipynb", datetime(2026, 10, 11, 9, 30))
    assert (canvas.lms_name, canvas.lms_id, canvas.late) == ("doejane", "999", True)
    # A time without a zone stays so: the reports read it in the term's zone as it is then.
    assert (canvas.submitted_at, canvas.time_source) == (
        datetime(2026, 10, 11, 9, 30),
        "time of the file in the zip",
    )
    zone = ZoneInfo("America/Los_Angeles")
    assert lms.in_zone(canvas.submitted_at, zone) == datetime(2026, 10, 11, 9, 30, tzinfo=zone)
    blackboard = describe("b/01-embeddings_carol_attempt_2026-11-02-10-00-00_embeddings.ipynb")
    assert (blackboard.submitted_at, blackboard.time_source) == (
        datetime(2026, 11, 2, 10),
        "Blackboard file name",
    )
    for student in ("bob", "eve"):
        (tmp_path / "c" / student / ASSIGNMENT).mkdir(parents=True)
        (tmp_path / "c" / student / ASSIGNMENT / "timestamp.txt").write_text("2026-10-09 21:33:12.123456 UTC")
    saved = datetime(2026, 10, 9, 21, 30, tzinfo=UTC)  # saved, then submitted three minutes later
    exchange = describe(f"c/bob/{ASSIGNMENT}/embeddings.ipynb", changed=saved)
    assert exchange.submitted_at == datetime(2026, 10, 9, 21, 33, 12, 123456, tzinfo=UTC)
    assert exchange.time_source == "nbgrader exchange (timestamp.txt)" and exchange.late is None
    # A stamp that precedes the notebook's last change is a claim the file contradicts: the later counts.
    changed = datetime(2026, 10, 20, 12, tzinfo=UTC)
    forged = describe(f"c/eve/{ASSIGNMENT}/embeddings.ipynb", changed=changed)
    assert forged.submitted_at == changed
    assert forged.time_source.startswith("file modification time: timestamp.txt says 2026-10-09 21:33:12 UTC")
    plain = describe("d/alice/embeddings.ipynb")
    assert plain.time_source == "file modification time" and plain.submitted_at is not None
    # The stamp is written on the student's account: one of 64 GiB (sparse) is not read whole.
    (tmp_path / "e" / "mallory").mkdir(parents=True)
    with (tmp_path / "e" / "mallory" / "timestamp.txt").open("wb") as huge:
        huge.write(b"2026-10-09 21:33:12 UTC")
        huge.truncate(64 * 2**30)
    assert describe("e/mallory/embeddings.ipynb").time_source == "file modification time"


def test_a_zipped_exchange_keeps_its_timestamps(tmp_path):
    """An nbgrader exchange sent as a zip (``<student>/<assignment>/``): each notebook is read
    with the ``timestamp.txt`` of its own folder, as it is from a folder."""
    from datetime import UTC, datetime

    from grader import lms, submissions

    stamp = "2026-10-09 21:33:12.123456 UTC"
    saved = (2026, 10, 9, 21, 30, 0)
    with zipfile.ZipFile(tmp_path / "exchange.zip", "w") as zf:
        for name, data in [
            (f"alice/{ASSIGNMENT}/timestamp.txt", stamp),
            (f"alice/{ASSIGNMENT}/embeddings.ipynb", "{}"),
            (f"bob/{ASSIGNMENT}/embeddings.ipynb", "{}"),
            ("carol/timestamp.txt", stamp),  # not bob's folder: it stamps nothing of his
            (f"dan/{ASSIGNMENT}/timestamp.txt", "x" * 5000),  # not a stamp: too long
            (f"dan/{ASSIGNMENT}/embeddings.ipynb", "{}"),
        ]:
            zf.writestr(zipfile.ZipInfo(name, date_time=saved), data)
    found = submissions.find(tmp_path / "exchange.zip", {"embeddings": ASSIGNMENT}, tmp_path / "x")
    told = {s: lms.describe(subs[0], UTC) for s, subs in found.by_student.items()}
    assert told["alice"].time_source == "nbgrader exchange (timestamp.txt)"
    assert told["alice"].submitted_at == datetime(2026, 10, 9, 21, 33, 12, 123456, tzinfo=UTC)
    for student in ("bob", "dan"):
        assert told[student].time_source == "time of the file in the zip"
        assert told[student].submitted_at == datetime(*saved)


def test_a_late_feedback_page_gives_the_score_after_the_penalty_at_the_top(tmp_path):
    """The top of a late student's page said 9 / 12, the note under it 6.6 / 12, their index and
    totals.csv 6.6: the page now gives the score that counts first, and says what was taken off."""
    from test_grading import SOLUTION

    from grader import feedback, gradebook

    rows = [
        Row("ann", ASSIGNMENT, "encode", 6, 6, "correct", ""),
        Row("ann", ASSIGNMENT, "decode", 3, 6, "wrong", "off by one"),
    ]
    lateness = late.Lateness(2, 2.4, "2 days late (due 2026-10-09 23:59 UTC, submitted 2026-10-11 10:00 UTC)")
    unit = gradebook.Submitted(
        "ann", ASSIGNMENT, "embeddings", "ann/embeddings.ipynb", "", None, "", None, True, 1, ""
    )
    total = reports.Total("ann", ASSIGNMENT, "graded", 9, 12, lateness, unit, 0, 0)
    lines = [reports.Line("embeddings", row, row.score, None) for row in rows]
    page = reports.assignment_page(tmp_path, unit, lines, total)
    assert (
        "Score: 6.6 / 12</strong> after the late penalty: 9 for the exercises below, less 2.4 points "
        "for 2 days late" in page
    )
    assert "Score: 9 / 12" not in page and "score after it: 6.6 / 12" in page
    assert "6.6&nbsp;/&nbsp;12" in reports.index_page("ann", lms.Person("Ann"), [total])
    assert reports._total_record(total, {"ann": lms.Person("Ann")})["final_score"] == "6.6"
    nb, released = (nbformat.read(path, as_version=4) for path in (SOLUTION, RELEASED))
    rendered = feedback.render(nb, released, rows, "t", "", (2, 2.4, 6.6))  # a notebook that was run
    assert "<strong>Score: 6.6 / 12</strong> after the late penalty" in rendered
    on_time = feedback.render(nb, released, rows, "t")
    assert "<strong>Score: 9 / 12</strong></p>" in on_time and "late penalty" not in on_time


@pytest.mark.parametrize(
    "written, told",
    [
        (
            '"01-embeddings" = "2027-03-14 02:30"',  # the clocks go from 02:00 to 03:00
            'due.01-embeddings = "2027-03-14 02:30" does not exist in America/New_York: the clocks skip it '
            'that day (they go forward). Write a time that exists, such as "2027-03-14 03:30" (the same '
            "instant as 02:30 by the clock before the change), or give it an offset, such as "
            '"2027-03-14 02:30-05:00"',
        ),
        (
            '"01-embeddings" = 2026-11-01T01:30:00',  # a TOML local date-time; 01:00 to 02:00 twice
            'due.01-embeddings = "2026-11-01 01:30" is ambiguous in America/New_York: the clocks pass it '
            'twice that day (they go back). Give it the offset it means: "2026-11-01 01:30-04:00" for the '
            'first time or "2026-11-01 01:30-05:00" for the second',
        ),
        (
            '"01-embeddings" = "2026-11-01 02:30"\n[extensions]\n"01-embeddings" = { ann = "2027-03-14 02:59" }',
            'extensions.01-embeddings.ann = "2027-03-14 02:59" does not exist',
        ),
    ],
)
def test_a_due_date_the_clocks_skip_or_repeat_is_refused(tmp_path, written, told):
    """A due date in the hour the clocks skip, or the one they pass twice, in the course's zone is
    no single instant: it is refused with the times that are, before anything is graded."""
    from grader import settings

    (tmp_path / "course.toml").write_text(f'timezone = "America/New_York"\n[due]\n{written}\n')
    with pytest.raises(settings.SettingsError) as refused:
        settings.parse(tomllib.loads((tmp_path / "course.toml").read_text()), tmp_path / "course.toml")
    assert told in str(refused.value), str(refused.value)


def test_a_due_date_beside_a_clock_change_is_the_time_it_says():
    """Either side of the clock change, and with an offset in the changed hour, a due date is read
    as written."""
    from grader import settings

    path = Path("course.toml")
    zone = ZoneInfo("America/New_York")
    term = settings.parse(
        {
            "timezone": "America/New_York",
            "due": {
                "01-embeddings": "2027-03-14 01:59",
                "06-cost": "2027-03-14 03:00",
                "02-x": "2026-11-01 01:30-05:00",
                "03-y": "2026-11-01 02:00",
            },
        },
        path,
    )
    assert term.due["01-embeddings"] == datetime(2027, 3, 14, 6, 59, tzinfo=UTC)
    assert term.due["06-cost"] == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)
    assert term.due["02-x"] == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert (
        term.due["03-y"]
        == datetime(2026, 11, 1, 2, 0, tzinfo=zone)
        == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
    )


def test_a_canvas_roster_names_the_class(tmp_path):
    from grader import lms

    export = tmp_path / "export.csv"
    export.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Embeddings (9001)\n"
        "    Points Possible,,,,,12\n"
        '"Doe, Jane",999,S999,jdoe,Section A,\n'
        '"Smith, Al",1001,S1001,al@uni.example,Section B,\n'
        '"Student, Test",1,,,Section A,\n',
        encoding="utf-8-sig",
    )
    roster = lms.read_roster(export)
    assert roster[0] == lms.Person("Doe, Jane", "999", "S999", "jdoe", "Section A") and len(roster) == 2
    assert lms.match("jdoe", roster) == lms.match("999", roster) == lms.match("JDoe", roster) == roster[0]
    assert lms.match("al", roster) == lms.match("AL@uni.example", roster) == roster[1]  # the login's name
    assert lms.match("bob", roster) is None
    rows = lms.canvas_rows(
        {"jdoe": roster[0]}, {("jdoe", ASSIGNMENT): 9.6}, {ASSIGNMENT: "Embeddings (9001)"}
    )
    assert rows == [{"Student": "Doe, Jane", "ID": "999", "SIS User ID": "S999", "SIS Login ID": "jdoe",
                     "Section": "Section A", "Embeddings (9001)": "9.6"}]  # fmt: skip


EXCEL_ROSTER = [
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Embeddings (9001)"],
    ["    Points Possible", "", "", "", "", "12"],
    ["Ñúñez, José", "103", "S103", "jnunez", "Section A, evening", ""],
    ["Smith, Al", "1001", "S1001", "al@uni.example", "Section B", "7,5"],
]


def _excel(rows, delimiter=",", encoding="utf-8-sig", empty_rows=2, empty_columns=2) -> bytes:
    """A roster as Excel saves it: CRLF, quoted where a cell holds the delimiter, empty rows and
    columns left at the end of a sheet that once had more."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for row in rows + [[""] * len(rows[0])] * empty_rows:
        writer.writerow(row + [""] * empty_columns)
    return buffer.getvalue().encode(encoding)


@pytest.mark.parametrize(
    "variant",
    [
        dict(),  # Excel's "CSV UTF-8": a byte-order mark
        dict(encoding="utf-8"),
        dict(delimiter=";"),  # Excel where the decimal mark is a comma
        dict(delimiter=";", empty_rows=0, empty_columns=0),
        dict(delimiter="\t", encoding="utf-16"),  # Excel's "Unicode Text"
    ],
)
def test_a_roster_saved_by_excel_is_read(tmp_path, variant):
    """Every way Excel saves a CSV roster in UTF-8 (or UTF-16) is read as Canvas wrote it: the
    accented name, the section with a comma in it, the assignment's title, and no empty person."""
    export = tmp_path / "export.csv"
    export.write_bytes(_excel(EXCEL_ROSTER, **variant))
    roster = lms.read_roster(export)
    assert roster == [
        lms.Person("Ñúñez, José", "103", "S103", "jnunez", "Section A, evening"),
        lms.Person("Smith, Al", "1001", "S1001", "al@uni.example", "Section B"),
    ]
    assert lms.roster_titles(export) == ["Embeddings (9001)"]


def test_a_roster_saved_in_windows_code_page_is_read_with_a_note(tmp_path, capsys):
    """Excel's "CSV (Comma delimited)", the file an instructor gets by default on Windows, was
    refused. Canvas matches rows by the ids, which are ASCII, never by the name: it is read as
    Windows-1252, with a note that names with accents may show wrong (and how to silence it)."""
    export = tmp_path / "export.csv"
    export.write_bytes(_excel(EXCEL_ROSTER, encoding="cp1252"))
    assert lms.read_roster(export) == [
        lms.Person("Ñúñez, José", "103", "S103", "jnunez", "Section A, evening"),
        lms.Person("Smith, Al", "1001", "S1001", "al@uni.example", "Section B"),
    ]
    note = capsys.readouterr().err
    assert "export.csv is not UTF-8: read as Windows-1252" in note and "CSV UTF-8" in note


@pytest.mark.parametrize(
    "saved, told",
    [
        (  # a legacy encoding, and an id that is not ASCII: which letter it is cannot be told
            lambda: _excel(
                EXCEL_ROSTER[:2] + [["Ñúñez, José", "103", "S103", "jnúñez", "A"]], encoding="cp1252"
            ),
            "export.csv, line 3: not UTF-8, and the id 'jnúñez' is not ASCII: read as Windows-1252 it may not",
        ),
        (  # not Windows' code page either: 0x81 has no character there
            lambda: _excel(
                EXCEL_ROSTER[:2] + EXCEL_ROSTER[3:] + [["Ab\x81", "1", "", "", ""]], encoding="latin-1"
            ),
            "export.csv, line 4: not UTF-8",
        ),
        (lambda: b"PK\x03\x04" + bytes(40), "export.csv: an Excel workbook, not a CSV file"),
        (lambda: "Student\tID\r\n".encode("utf-16")[:-1], "export.csv: starts as UTF-16 text but is not"),
        (lambda: b"\r\n\r\n", "export.csv, line 1: empty"),
        (
            lambda: _excel([["Name", "Login"], ["Doe, Jane", "jdoe"]]),
            "export.csv, line 1: not a Canvas gradebook export (no Student, ID column; the header is 'Name', 'Login')",
        ),
        (
            lambda: b'Student,ID\r\n"Doe, Jane,999\r\n',
            "export.csv, line 2: unexpected end of data (a quote not closed?)",
        ),
    ],
)
def test_a_roster_that_cannot_be_read_says_where_and_what_to_do(tmp_path, saved, told):
    """A roster in a legacy encoding (which one cannot be told from the bytes, and a name read in
    the wrong one would match nobody), a workbook, an empty file, another file, a broken quote: the
    command stops naming the file, the line and what to do, before anything is graded."""
    from grader import settings

    (tmp_path / "export.csv").write_bytes(saved())
    (tmp_path / "course.toml").write_text('[canvas]\nroster = "export.csv"\n')
    with pytest.raises(settings.SettingsError) as refused:
        settings.load(tmp_path)
    message = str(refused.value)
    assert told in message, message
    assert "line" not in told or "save it" in message or "export it again" in message


def test_two_section_exports_pasted_into_one_roster_give_each_student_one_row(tmp_path):
    """Two sections' exports pasted into one file: the second header was read as a student named
    Student with the ID "ID", and a student listed in both matched nobody (two entries for one id),
    so canvas.csv had the graded row and the roster's row with the same Canvas ID, the second
    with 0 for the assignment, which Canvas would have imported over the grade."""
    from grader import reports

    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    alice = ["Liddell, Alice", "101", "S101", "alice", "Section A"]
    export = tmp_path / "export.csv"
    export.write_bytes(_excel([header, alice, header, ["Hatter, M", "102", "S102", "hatter", "B"], alice]))
    roster = lms.read_roster(export)
    assert roster == [lms.Person(*alice), lms.Person("Hatter, M", "102", "S102", "hatter", "B")]
    people = reports._people({"101": ("aliceliddell", "101")}, roster, {})
    assert [p.canvas_id for p in people.values()] == ["101", "102"]


@pytest.mark.parametrize(
    "rows, told",
    [
        (
            [
                ["Liddell, Alice", "101", "S101", "alice", "A"],
                ["Liddell, Alice", "101", "S101", "alice", "B"],
            ],
            "export.csv, lines 2 and 3: two students with the ID '101' (they differ in: Section 'A' and 'B')",
        ),
        (
            [["Liddell, Alice", "101", "S101", "alice", "A"], ["Hatter, M", "102", "S102", "Alice", "A"]],
            "export.csv, lines 2 and 3: two students with the SIS Login ID 'Alice' (they differ in: Student 'Liddell, Alice' and 'Hatter, M'; ID",
        ),
    ],
)
def test_a_roster_that_gives_one_id_to_two_students_is_refused(tmp_path, rows, told):
    """Which of the two a graded student is cannot be told: both would be left out of canvas.csv's
    match, and one of them given 0 over the grade."""
    from grader import settings

    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    (tmp_path / "export.csv").write_bytes(_excel([header, *rows]))
    (tmp_path / "course.toml").write_text('[canvas]\nroster = "export.csv"\n')
    with pytest.raises(settings.SettingsError) as refused:
        settings.load(tmp_path)
    assert told in str(refused.value), str(refused.value)


def test_a_student_graded_under_another_id_is_given_their_roster_id(tmp_path):
    """A folder named "José Ñúñez" for the roster's jnunez: Canvas skipped the graded row and the
    roster's row for him said 0; [roster_ids] makes them one."""
    from grader import reports, settings

    (tmp_path / "export.csv").write_text(
        'Student,ID,SIS User ID,SIS Login ID,Section\n"Ñúñez, José",103,S103,jnunez,B\n', encoding="utf-8"
    )
    toml = '[canvas]\nroster = "export.csv"\n[roster_ids]\n"José Ñúñez" = "%s"\n'
    (tmp_path / "course.toml").write_text(toml % "jnunez")
    term = settings.load(tmp_path)
    people = reports._people({"José Ñúñez": ("", "")}, list(term.people), term.roster_ids)
    assert list(people) == ["José Ñúñez"] and people["José Ñúñez"].canvas_id == "103"
    (tmp_path / "course.toml").write_text(toml % "jnunes")
    with pytest.raises(
        settings.SettingsError, match='roster_ids."José Ñúñez" = "jnunes" is not the Canvas ID'
    ):
        settings.load(tmp_path)
    (tmp_path / "course.toml").write_text('[roster_ids]\n"José Ñúñez" = "jnunez"\n')
    with pytest.raises(settings.SettingsError, match=re.escape("[roster_ids] needs the roster")):
        settings.load(tmp_path)


def test_a_student_graded_under_two_ids_is_one_row_of_canvas_csv(capsys):
    """A Canvas zip's 101 one week and the hub's alice the next are one person on the roster:
    canvas.csv had two rows with ID 101, each with 0 for the other's assignment."""
    from grader import late, lms, reports

    alice = lms.Person("Liddell, Alice", "101", "S101", "alice@uni.example")

    def total(student, assignment, final, submitted=True):
        return reports.Total(student, assignment, "graded", final, 9, late.ON_TIME, submitted or None, 0, 0)

    view = reports.View(
        [],
        [
            total("101", ASSIGNMENT, 8),
            total("101", WEEK2, 0, submitted=False),
            total("alice", ASSIGNMENT, 0, submitted=False),
            total("alice", WEEK2, 7),
            total("emma", ASSIGNMENT, 5),
            total("emma", WEEK2, 0, submitted=False),
        ],
        {"101": alice, "alice": alice, "emma": lms.Person("emma")},
        [],
        {ASSIGNMENT: [], WEEK2: []},
    )
    people, finals = reports._one_row_each(view)
    assert people == {"101": alice, "emma": lms.Person("emma")}
    assert finals == {("101", ASSIGNMENT): 8, ("101", WEEK2): 7, ("emma", ASSIGNMENT): 5, ("emma", WEEK2): 0}
    assert not capsys.readouterr().err
    view.totals[1] = total("101", WEEK2, 3)  # both ids submitted 06-cost: the higher, and a warning
    assert reports._one_row_each(view)[1][("101", WEEK2)] == 7
    assert "101 and alice are one student on the roster (Liddell, Alice)" in capsys.readouterr().err


def test_a_canvas_column_the_roster_has_no_assignment_for_is_named(tmp_path, capsys):
    """Canvas imports a column whose title (id) the gradebook does not have as a new assignment."""
    from grader import lms, reports, settings

    export = tmp_path / "export.csv"
    export.write_text(
        "Student,ID,Section,Embeddings (9001),Cost (9002),Current Score\n", encoding="utf-8-sig"
    )
    titles = lms.roster_titles(export)
    assert titles == ["Embeddings (9001)", "Cost (9002)"]
    assert not lms.unknown_column("Embeddings, renamed (9001)", titles)  # Canvas matches by the id
    term = settings.Settings(roster=export, canvas_titles=tuple(titles))
    reports._warn_about_columns(term, {ASSIGNMENT: "Embeddings (9001)", WEEK2: "Cost(9003)", "x": "x"})
    cost, other = capsys.readouterr().err.splitlines()
    assert "the column 'Cost(9003)' (06-cost) is no assignment of the roster export.csv" in cost
    assert cost.endswith('[canvas] "06-cost" = "Cost (9002)"')
    assert other.endswith('[canvas] "x" = "Name (id)" as its header has it')


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (
            '=HYPERLINK("http://example.invalid/?"&A1,"open")',
            '\'=HYPERLINK("http://example.invalid/?"&A1,"open")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("-1.5", "-1.5"),
        ("cell 3, line 2: x = 1", "cell 3, line 2: x = 1"),
    ],
)
def test_a_csv_cell_a_spreadsheet_would_run_is_written_as_text(tmp_path, written, read):
    from grader import reports

    reports._write_csv(
        tmp_path / "x.csv", ("student", "code", "score"), [{"student": "ann", "code": written, "score": 1}]
    )
    with open(tmp_path / "x.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["code"], row["score"]) == (read, "1")


def test_a_folder_graded_into_whose_gradebook_is_gone_is_refused(tmp_path):
    """Grading on would start the term afresh and write this run's reports over the term's."""
    from grader import gradebook

    gradebook.refuse_a_lost_one(tmp_path)  # a new folder: nothing was graded into it
    (tmp_path / "grades.csv").write_text("student,assignment\n")
    with pytest.raises(gradebook.GradebookError, match=r"graded into before \(grades.csv\)"):
        gradebook.refuse_a_lost_one(tmp_path)
    with gradebook.Gradebook(tmp_path):
        pass
    gradebook.refuse_a_lost_one(tmp_path)  # with its gradebook


@pytest.mark.slow
def test_a_lost_secret_is_refused_once_there_are_grades_and_kept_out_of_them(term, tmp_path):
    """Made again quietly, a new secret would give the next regrade of the same files other hidden
    cases. The run stops before grading, changes nothing, and says what to do; --new-secret
    draws a new one and keeps every grade."""
    out = tmp_path / "out"
    shutil.copytree(term[0], out)
    (out / ".secret").unlink()
    before = grades(out)
    week1 = write_zip(tmp_path / "week1.zip", WEEK1)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", str(week1), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"\.secret is gone, but the gradebook holds \d+ graded notebook", done.stderr)
    assert "--new-secret" in done.stderr and not (out / ".secret").exists()
    assert grades(out) == before
    autograde(week1, out, "--new-secret")
    assert (out / ".secret").stat().st_size == 32 and grades(out) == before
    # Another folder's secret copied over is refused the same way (red team, third round).
    (out / ".secret").write_bytes(b"\1" * 32)
    done = autograde(week1, out, rc=2)
    assert "is not the secret this gradebook's grades were drawn with" in done.stderr, done.stderr


def test_the_grading_folder_is_closed_to_other_users(tmp_path, capsys):
    """A class's grades and feedback pages, under the usual umask, were readable by every user of
    a shared machine. Its group keeps its access; the note is for a folder that held grades."""
    from grader import gradebook

    new, graded, closed = tmp_path / "new", tmp_path / "graded", tmp_path / "closed"
    for folder, mode in [(graded, 0o775), (closed, 0o700)]:
        folder.mkdir(mode=mode)
        folder.chmod(mode)
    with gradebook.Gradebook(graded):
        pass
    for folder in (new, graded, closed):
        with gradebook.lock(folder):
            pass
    umask = os.umask(0)
    os.umask(umask)
    modes = [stat.S_IMODE(folder.stat().st_mode) for folder in (new, graded, closed)]
    assert modes == [0o777 & ~umask & ~0o007, 0o770, 0o700]
    told = capsys.readouterr().err
    assert told.count("note: ") == 1 and f"{graded} was open to every user" in told


def test_a_gradebook_of_an_older_grader_is_brought_up_to_date(tmp_path):
    """Version 1 had no fingerprints: reports and grading into it stopped with a traceback."""
    from grader import gradebook

    with gradebook.Gradebook(tmp_path) as book:
        book.db.executescript("DROP TABLE fingerprints; PRAGMA user_version = 1;")
    with gradebook.Gradebook(tmp_path) as book:
        assert book.fingerprints() == {}
        assert book.db.execute("PRAGMA user_version").fetchone()[0] == gradebook.VERSION


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda db: db.write_text("grades of week 3"), "is not a gradebook (file is not a database)"),
        (
            lambda db: sqlite3.connect(db).execute("CREATE TABLE marks (student)"),
            "is not a gradebook the grader made",
        ),
        (lambda db: sqlite3.connect(db).execute("PRAGMA user_version = 99"), "made by a newer grader"),
    ],
)
def test_a_file_that_is_no_gradebook_of_this_grader_is_named(tmp_path, make, words):
    from grader import gradebook

    make(tmp_path / gradebook.FILE)
    with pytest.raises(gradebook.GradebookError, match=re.escape(words)):
        gradebook.Gradebook(tmp_path)


def test_a_typo_in_a_selection_stops_the_run_before_it_starts(tmp_path, capsys):
    """--student alcie or --assignment 06-cst graded nothing and ended as if all was well."""
    from grader import autograde, settings, submissions

    def check(students=(), assignments=()):
        selection = autograde.Selection(frozenset(students), frozenset(assignments))
        autograde._check_selection(selection, {"alice", "bob"}, {ASSIGNMENT, WEEK2}, tmp_path)

    with pytest.raises(submissions.SubmissionsError, match=r"--assignment 06-cst: .* did you mean 06-cost\?"):
        check(assignments=["06-cst"])
    with pytest.raises(
        submissions.SubmissionsError, match=r"'alcie' in .*; did you mean alice\?\nnothing graded"
    ):
        check(students=["alcie"])
    check(students=["alcie", "bob"])  # bob is graded; alcie is a warning
    assert "warning: no submission of student 'alcie'" in capsys.readouterr().err
    (tmp_path / "week1" / "alice").mkdir(parents=True)
    (tmp_path / "week1" / "alice" / "embeddings.ipynb").write_text("{}")
    with pytest.raises(submissions.SubmissionsError, match=r"holds no submission of what was selected"):
        autograde._find(
            tmp_path / "week1",
            tmp_path / "x",
            {"embeddings": ASSIGNMENT, "cost": WEEK2},
            settings.Settings(),
            autograde.Selection(assignments=frozenset({WEEK2})),
        )


def test_submissions_without_a_notebook_stop_the_run_before_it_starts(tmp_path):
    """The wrong folder graded 0 notebooks and ended as if all was well."""
    from grader import autograde, settings, submissions

    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "notes.txt").write_text("not a notebook")
    with pytest.raises(submissions.SubmissionsError, match=r"no notebook \(.ipynb\) in .*: nothing graded"):
        autograde._find(tmp_path, tmp_path / "x", {"cost": WEEK2}, settings.Settings(), autograde.Selection())


def test_submissions_that_hold_the_grading_folder_are_refused(tmp_path):
    """`autograde grading --out grading` graded release/ and autograded/ as students: a gradebook
    never forgets them."""
    from grader import autograde, submissions

    out = tmp_path / "grading"
    for given in (out, tmp_path, out / "autograded", out / "release" / WEEK2):
        with pytest.raises(submissions.SubmissionsError, match="they would be graded as students"):
            autograde._check_apart(given, out)
    autograde._check_apart(out / "submitted", out)  # nbgrader's layout, beside the grader's folders
    autograde._check_apart(tmp_path / "week3.zip", out)


def test_a_typo_in_an_adjustment_is_named_with_what_was_meant(tmp_path):
    from grader import adjust, gradebook

    with gradebook.Gradebook(tmp_path) as book:
        book.set_exercises(WEEK2, "cost", [("count_params", 2.0), ("q_two", 1.0)])
        book.db.execute("INSERT INTO students (student) VALUES ('alice')")
        assert adjust._resolve(book, set(), "alice", "count_params")[1] == (WEEK2, "count_params", 2.0)
        assert adjust._resolve(book, {"bob"}, "alcie", "count_params")[0].endswith("did you mean alice?")
        assert adjust._resolve(book, set(), "alice", "count_param")[0].endswith("did you mean count_params?")
        wrong = adjust._resolve(book, set(), "alice", "06-cots/count_params")[0]
        assert wrong.endswith("did you mean 06-cost/count_params?")


def test_a_file_submitted_before_the_graded_one_is_not_graded_over_it(tmp_path, capsys):
    """An earlier week's zip graded again would put the older file back in place of the newer."""
    from datetime import UTC, datetime

    from grader import autograde, gradebook
    from grader.submissions import Submission

    graded = gradebook.Submitted(
        "alice",
        ASSIGNMENT,
        "embeddings",
        "late.zip",
        "f" * 64,
        datetime(2026, 10, 11, 10),
        "",
        None,
        True,
        2,
        "",
    )
    known = {("alice", ASSIGNMENT, "embeddings"): graded}
    path = tmp_path / "embeddings.ipynb"
    path.write_text("{}")

    def sub(when):
        return Submission(
            "alice", "alice", path, "alice/embeddings.ipynb", "embeddings", ASSIGNMENT, submitted_at=when
        )

    early = sub(datetime(2026, 10, 9, 20))
    assert "before the file graded for embeddings.ipynb" in autograde._older(known, early, UTC)
    assert autograde._to_grade([early], known, UTC, force=False) == []
    assert "before the file graded for embeddings.ipynb" in capsys.readouterr().err
    assert autograde._to_grade([early], known, UTC, force=True) == [early]
    assert not autograde._older(known, sub(datetime(2026, 10, 12, 9)), UTC)  # a resubmission
    assert not autograde._older(known, sub(None), UTC)  # no time to tell by


@pytest.mark.slow
def test_trust_ctime_bounds_a_stamp_set_back_through_the_real_autograde(tmp_path):
    """``late.trust_ctime`` end to end: an exchange folder (``<student>/<assignment>/``) whose
    ``timestamp.txt`` and notebook time both claim a time before the due date, while the file
    reached the folder (its ctime) after it. With the option the ctime counts, and totals.csv and
    the feedback page say so; without it the claim counts. A due date moved after grading is
    applied by ``report`` alone, without a regrade."""
    from datetime import timedelta

    mallory = tmp_path / "class" / "mallory" / ASSIGNMENT
    mallory.mkdir(parents=True)
    notebook = mallory / "embeddings.ipynb"
    nbformat.write(solution(), notebook)
    arrived = datetime.fromtimestamp(notebook.stat().st_ctime, UTC)
    due = (arrived - timedelta(days=10)).replace(second=0, microsecond=0)
    claimed = due - timedelta(days=10)
    (mallory / "timestamp.txt").write_text(claimed.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    os.utime(notebook, (claimed.timestamp(), claimed.timestamp()))  # the notebook's time agrees
    toml = COURSE_TOML.replace('"2026-10-09 23:59"', f'"{due:%Y-%m-%d %H:%M}"')
    outcomes = {}
    for trusted in (True, False):
        out = tmp_path / f"out-{trusted}"
        out.mkdir()
        policy = toml.replace(
            "grace_minutes = 30", f"grace_minutes = 30\ntrust_ctime = {str(trusted).lower()}"
        )
        (out / "course.toml").write_text(policy)
        autograde(tmp_path / "class", out)
        outcomes[trusted] = totals(out)[("mallory", ASSIGNMENT)]
    told, claim = outcomes[True], outcomes[False]
    assert told["time_source"].startswith("time the file reached the graded folder (ctime)"), told
    assert "nbgrader exchange (timestamp.txt) says" in told["time_source"]
    assert int(told["days_late"]) >= 10 and float(told["late_penalty"]) == 6.0  # 50 % of 12, the cap
    assert float(told["final_score"]) == 6.0
    assert claim["time_source"] == "nbgrader exchange (timestamp.txt)"
    assert (claim["days_late"], claim["late_penalty"], claim["final_score"]) == ("0", "0", "12")
    page = (tmp_path / "out-True" / "feedback" / "mallory" / f"{ASSIGNMENT}.html").read_text()
    assert f"{told['days_late']} days late" in page and "less 6 points" in page
    # The instructor moves the due date past the file's arrival after grading: `report` applies it.
    out = tmp_path / "out-True"
    later = (arrived + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    (out / "course.toml").write_text(
        (out / "course.toml").read_text().replace(f"{due:%Y-%m-%d %H:%M}", later)
    )
    grader("report", "--out", str(out))
    moved = totals(out)[("mallory", ASSIGNMENT)]
    assert (moved["days_late"], moved["late_penalty"], moved["final_score"]) == ("0", "0", "12")
    assert read_csv(out / "grades.csv") and {r["status"] for r in read_csv(out / "grades.csv")} == {"graded"}


def test_a_score_without_its_submission_row_is_shown_and_flagged(tmp_path):
    """Scores the gradebook holds without the row of the submission they were graded from (a
    gradebook changed by hand or by another program) were left out of every report: the student's
    points vanished without a word. They are shown and counted, the assignment is ``failed`` (its
    record is incomplete) and integrity.csv says what to check. An instructor's score for an
    exercise the student's graded notebook has no row for (the release gained it since) counts too,
    where it was dropped (and ``adjust`` stopped with a traceback)."""
    from grader.gradebook import Gradebook
    from grader.settings import Settings

    def result(student: str) -> dict:
        row = {"student": student, "assignment": "a", "exercise": "e", "score": 1.0, "max_score": 1.0,
               "status": "graded", "reason": ""}  # fmt: skip
        return {"student": student, "complete": True, "notebooks": [
            {"assignment": "a", "notebook": "n", "rows": [row], "findings": []}]}  # fmt: skip

    with Gradebook(tmp_path) as book:
        book.set_exercises("a", "n", [("e", 1.0)])
        run = book.start_run("test", "all")
        for student in ("alice", "bob"):
            book.record(run, result(student), {("a", "n"): {"file": "n.ipynb", "sha256": "0"}})
        book.db.execute("DELETE FROM submissions WHERE student = 'alice'")
        book.set_exercises("a", "n", [("e", 1.0), ("f", 2.0)])  # the release gained an exercise
        book.set_override("bob", "a", "f", 1.5, "answered in the text", "command")
        view = reports.write(tmp_path, book, Settings())
    lines = {(line.row.student, line.row.exercise): line.row for line in view.lines}
    assert lines[("alice", "e")].score == 1.0 and lines[("alice", "e")].status == "graded"
    alice = next(t for t in view.totals if t.student == "alice")
    assert (alice.score, alice.status, alice.flags) == (1.0, "failed", 1)
    flagged = read_csv(tmp_path / "integrity.csv")
    assert [f["student"] for f in flagged] == ["alice"] and "without a record of the submission" in flagged[
        0
    ]["reason"]
    assert lines[("bob", "f")].score == 1.5
    bob = next(t for t in view.totals if t.student == "bob")
    assert (bob.score, bob.max_score, bob.status) == (2.5, 3.0, "graded")
    done = subprocess.run(
        [sys.executable, "-m", "grader", "adjust", "bob", "f", "2", "--reason", "all of it", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "bob a/f: 2 / 2 (all of it)" in done.stdout


def test_a_second_command_on_a_folder_in_use_is_refused_and_changes_nothing(tmp_path):
    """Two terminals, the same command: the second stops at once, naming the folder and the process
    that holds it, and writes nothing there."""
    from grader import gradebook

    (tmp_path / "class" / "alice").mkdir(parents=True)
    nbformat.write(solution(), tmp_path / "class" / "alice" / "embeddings.ipynb")
    out = tmp_path / "out"
    with gradebook.lock(out):
        before = sorted(p.name for p in out.iterdir())
        for command in (["autograde", str(tmp_path / "class")], ["report"]):
            done = subprocess.run(
                [sys.executable, "-m", "grader", *command, "--out", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 2, done.stderr
            assert f"{out} is in use by another grader command (pid {os.getpid()})" in done.stderr
        assert sorted(p.name for p in out.iterdir() if p.name != "course.toml") == before


def test_a_regrade_the_grader_could_not_finish_keeps_the_earlier_grade_of_the_same_file(tmp_path, capsys):
    """``--force`` after an upgrade, on a busy machine: a student's grading process that failed
    (killed, out of memory, a bug of the grader's) replaced the grade of the very file it was
    regrading with zeros marked ``error``, and canvas.csv exported them. A failure of the grader is
    no new grade: the earlier one of the same file stays, with a warning; a new file that could not
    be graded is still an error (its next run grades it)."""
    from grader import autograde
    from grader.gradebook import Gradebook
    from grader.settings import Settings
    from grader.submissions import Submission

    out = tmp_path / "out"
    out.mkdir()
    notebook = tmp_path / "n.ipynb"
    notebook.write_text("the student's notebook")
    sub = Submission("alice", "alice", notebook, "alice/n.ipynb", "n", "a")

    def result(score: float, status: str, complete: bool) -> dict:
        row = {"student": "alice", "assignment": "a", "exercise": "e", "score": score, "max_score": 1.0,
               "status": status, "reason": "" if complete else "the grading process failed (exit code -9)"}  # fmt: skip
        return {"student": "alice", "complete": complete, "notebooks": [
            {"assignment": "a", "notebook": "n", "rows": [row], "findings": []}]}  # fmt: skip

    def scores(book) -> list[tuple]:
        return [(row.score, row.status) for _, row in book.scores()]

    with Gradebook(out) as book:
        book.set_exercises("a", "n", [("e", 1.0)])
        first = book.start_run("autograde", "all")
        autograde.persist(out, book, Settings(), first, "alice", [sub], result(1.0, "graded", True), "")
        regrade = book.start_run("autograde --force", "all")
        autograde.persist(out, book, Settings(), regrade, "alice", [sub], result(0.0, "error", False), "")
        assert scores(book) == [(1.0, "graded")]
        assert book.submissions()[("alice", "a", "n")].complete
        assert "the grade of a/n.ipynb graded before from this same file is kept" in capsys.readouterr().err
        notebook.write_text("the student's notebook, changed")
        autograde.persist(out, book, Settings(), regrade, "alice", [sub], result(0.0, "error", False), "")
        assert scores(book) == [(0.0, "error")]


@pytest.mark.parametrize(
    ("option", "value", "told"),
    [
        ("--cpu", "-1", "argument --cpu: must be a number of seconds above 0, not '-1'"),
        ("--cpu", "0", "argument --cpu: must be a number of seconds above 0, not '0'"),
        ("--idle", "nan", "argument --idle: must be a number of seconds above 0, not 'nan'"),
        ("--idle", "1", "argument --idle: must be at least 4 seconds, not '1': with less, an honest"),
        ("--memory", "0", "argument --memory: must be a number of GiB above 0, not '0'"),
        ("--memory", "inf", "argument --memory: must be a number of GiB above 0, not 'inf'"),
        ("--memory", "0.05", "argument --memory: must be at least 0.5 GiB, not '0.05': with less, an honest"),
        ("--cpu", "0.01", "argument --cpu: must be at least 10 seconds, not '0.01': with less, an honest"),
        ("--timeout", "-5", "argument --timeout: must be a whole number of seconds above 0, not '-5'"),
        ("--jobs", "-2", "argument --jobs: must be a whole number above 0, not '-2'"),
    ],
)
def test_a_budget_that_leaves_no_room_to_run_is_refused_before_grading(tmp_path, capsys, option, value, told):
    """``--cpu -1`` graded a notebook with full marks as 0 everywhere ("no function `encode` is
    defined": the kernel could not run it), as complete, so the next run with the right budget
    skipped it as "already graded with the same file". Such a value now stops the command."""
    from grader.__main__ import main

    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "embeddings.ipynb").write_text("{}")
    with pytest.raises(SystemExit) as stopped:
        main(["autograde", str(tmp_path), "--out", str(tmp_path / "out"), option, value])
    assert stopped.value.code == 2
    assert told in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_totals_count_the_exercises_of_the_release_as_it_is_now(tmp_path, capsys):
    """The release lost an exercise (f) and gained one (g) after alice was graded: her total
    counted f and not g, 3 of 3 where bob's was out of 4 and Canvas's column is out of 4. Every
    total is now out of the release's points: f is shown, not counted; g is 0 until her notebook
    is regraded, and a warning says which notebooks to regrade and how. A notebook of a two-notebook
    assignment that was not submitted counts its exercises as missing, not as nothing."""
    from grader.gradebook import Gradebook
    from grader.settings import Settings

    def result(student: str, scores: dict[str, tuple[float, float]], notebook: str = "n") -> dict:
        rows = [{"student": student, "assignment": "a", "exercise": name, "score": score, "max_score": most,
                 "status": "graded" if score == most else "wrong", "reason": ""}
                for name, (score, most) in scores.items()]  # fmt: skip
        return {"student": student, "complete": True, "notebooks": [
            {"assignment": "a", "notebook": notebook, "rows": rows, "findings": []}]}  # fmt: skip

    with Gradebook(tmp_path) as book:
        book.set_exercises("a", "n", [("e", 1.0), ("f", 2.0)])
        run = book.start_run("week 1", "all")
        book.record(
            run, result("alice", {"e": (1, 1), "f": (2, 2)}), {("a", "n"): {"file": "n.ipynb", "sha256": "0"}}
        )
        book.set_exercises("a", "n", [("e", 1.0), ("g", 3.0)])
        book.set_exercises("a", "m", [("h", 5.0)])  # a second notebook that bob did not submit
        book.record(
            run, result("bob", {"e": (1, 1), "g": (3, 3)}), {("a", "n"): {"file": "n.ipynb", "sha256": "1"}}
        )
        view = reports.write(tmp_path, book, Settings())
    totals = {t.student: (t.score, t.max_score) for t in view.totals}
    assert totals == {"alice": (1.0, 9.0), "bob": (4.0, 9.0)}
    lines = {(line.row.student, line.row.exercise): line for line in view.lines}
    removed, added = lines[("alice", "f")], lines[("alice", "g")]
    assert (removed.row.score, removed.row.max_score, removed.row.status, removed.auto_score) == (
        0,
        0,
        "not_counted",
        2,
    )
    assert (added.row.score, added.row.max_score, added.row.status) == (0, 3, "not_graded")
    assert (lines[("bob", "h")].row.status, lines[("bob", "h")].row.max_score) == ("missing", 5)
    warned = capsys.readouterr().err
    assert (
        "alice: a/n.ipynb was graded before the release changed its exercises (g added, f removed)" in warned
    )
    assert "--assignment a --student alice --force" in warned
    assert "bob: a/n.ipynb" not in warned


def test_totals_count_an_exercise_at_the_points_it_is_worth_now(tmp_path, capsys):
    """The release made e worth 2 points after alice and carol were graded on it at 4, and bob had
    been given 3 of 4 by hand: every total is out of the release's points (3), alice's right e
    counts 2 of 2, carol's wrong one 0 of 2, and bob's override counts 2, with a warning that
    names it and how to set it again."""
    from grader.gradebook import Gradebook
    from grader.settings import Settings

    def result(student: str, score: float) -> dict:
        rows = [{"student": student, "assignment": "a", "exercise": "e", "score": score, "max_score": 4.0,
                 "status": "graded" if score else "wrong", "reason": "checked"},
                {"student": student, "assignment": "a", "exercise": "f", "score": 1.0, "max_score": 1.0,
                 "status": "graded", "reason": ""}]  # fmt: skip
        return {"student": student, "complete": True, "notebooks": [
            {"assignment": "a", "notebook": "n", "rows": rows, "findings": []}]}  # fmt: skip

    with Gradebook(tmp_path) as book:
        book.set_exercises("a", "n", [("e", 4.0), ("f", 1.0)])
        run = book.start_run("week 1", "all")
        for i, (student, score) in enumerate((("alice", 4.0), ("bob", 0.0), ("carol", 0.0))):
            book.record(run, result(student, score), {("a", "n"): {"file": "n.ipynb", "sha256": str(i)}})
        book.set_override("bob", "a", "e", 3.0, "partly right", "command")
        book.set_exercises("a", "n", [("e", 2.0), ("f", 1.0)])
        view = reports.write(tmp_path, book, Settings())
    totals = {t.student: (t.score, t.max_score) for t in view.totals}
    assert totals == {"alice": (3.0, 3.0), "bob": (3.0, 3.0), "carol": (1.0, 3.0)}
    alice = next(line for line in view.lines if (line.row.student, line.row.exercise) == ("alice", "e"))
    assert alice.auto_score == 2.0 and "scored 4 of 4; the exercise is worth 2 now" in alice.row.reason
    warned = capsys.readouterr().err
    assert "bob: your score 3 for a e is above the 2 points the exercise is worth now: it counts 2" in warned
    assert "python -m grader adjust bob e SCORE" in warned
    assert "alice" not in warned and "carol" not in warned


@pytest.mark.parametrize("under", ["", "grading"])
@pytest.mark.parametrize(
    "command", [["autograde", "SUBMISSIONS"], ["report"], ["adjust", "alice", "encode", "1", "--reason", "x"]]
)
def test_an_out_that_is_a_file_is_named(tmp_path, capsys, command, under):
    """``--out grades.csv`` (the report, not its folder) ended in a FileExistsError traceback, or
    NotADirectoryError below it; now every command names the file and what --out is."""
    from grader.__main__ import main

    (tmp_path / "sub" / "alice").mkdir(parents=True)
    (tmp_path / "sub" / "alice" / "embeddings.ipynb").write_text("{}")
    taken = tmp_path / "grades.csv"
    taken.write_text("student\n")
    out = taken / under if under else taken
    argv = [str(tmp_path / "sub") if word == "SUBMISSIONS" else word for word in command]
    assert main([*argv, "--out", str(out)]) == 2
    assert (
        f"error: --out {out}: {taken} is a file, not a folder: give the grading folder"
        in capsys.readouterr().err
    )
    assert taken.read_text() == "student\n"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_gradebook_is_named_with_the_backup_to_restore(tmp_path, capsys):
    """A gradebook whose file was damaged (a disk fault, a copy cut short) ended every command in
    "sqlite3.DatabaseError: database disk image is malformed", and the messages that said "restore
    it from a backup" had none to offer: the grader kept none. Each command now checks the
    gradebook when it opens it and keeps a copy of a sound one in OUT/backups (the last few, one per
    state); a damaged one is named, with the newest backup and how to put it back."""
    from grader import gradebook
    from grader.__main__ import main

    for week in range(1, gradebook.KEEP_BACKUPS + 3):  # a command a week, each changing the gradebook
        with gradebook.Gradebook(tmp_path) as book:
            book.set_exercises(f"week{week}", "n", [("e", 1.0)])
    for _ in range(2):  # the second changed nothing since the first: no copy of its own
        with gradebook.Gradebook(tmp_path):
            pass
    kept = gradebook.backups(tmp_path)
    assert len(kept) == gradebook.KEEP_BACKUPS and len(set(map(sha256_of, kept))) == len(kept)
    data = bytearray((tmp_path / gradebook.FILE).read_bytes())
    data[100:-100] = bytes((b * 7 + 3) & 0xFF for b in data[100:-100])  # past SQLite's header
    (tmp_path / gradebook.FILE).write_bytes(bytes(data))
    assert main(["report", "--out", str(tmp_path)]) == 2
    told = capsys.readouterr().err
    assert f"{tmp_path / gradebook.FILE} is damaged" in told and f"copy {kept[-1]} to" in told, told
    shutil.copyfile(kept[-1], tmp_path / gradebook.FILE)
    with gradebook.Gradebook(tmp_path) as book:
        assert sorted({e.assignment for e in book.exercises()}) == [
            f"week{w}" for w in range(1, gradebook.KEEP_BACKUPS + 3)
        ]


def test_ids_that_differ_only_in_case_or_spaces_are_named_with_the_merge_that_joins_them(tmp_path, capsys):
    """Week 1's folder "Alice" and week 2's "alice" are two students to the gradebook: each had
    the other's assignment as missing (0) in totals.csv and canvas.csv, without a word. A warning
    names them and the command that makes them one; ids the roster already joins are not named."""
    from grader.gradebook import Gradebook
    from grader.settings import Settings

    def result(student: str, assignment: str) -> dict:
        row = {"student": student, "assignment": assignment, "exercise": "e", "score": 1.0, "max_score": 1.0,
               "status": "graded", "reason": ""}  # fmt: skip
        return {"student": student, "complete": True, "notebooks": [
            {"assignment": assignment, "notebook": "n", "rows": [row], "findings": []}]}  # fmt: skip

    with Gradebook(tmp_path) as book:
        run = book.start_run("test", "all")
        for student, assignment in (
            ("Alice", "a"),
            ("alice", "b"),
            ("Bob  Ray", "a"),
            ("bob ray", "b"),
            ("carol", "a"),
        ):
            book.set_exercises(assignment, "n", [("e", 1.0)])
            book.record(
                run, result(student, assignment), {(assignment, "n"): {"file": "n.ipynb", "sha256": student}}
            )
        reports.write(tmp_path, book, Settings())
    told = capsys.readouterr().err
    assert "Alice and alice differ only in case or spaces" in told, told
    assert "python -m grader merge-student alice Alice --reason" in told
    assert "Bob  Ray and bob ray differ only in case or spaces" in told
    assert "carol" not in told


@pytest.mark.slow
def test_a_damaged_nbgrader_gradebook_is_set_aside_and_made_again(term, tmp_path):
    """nbgrader's gradebook.db, formgrader's copy of grades.sqlite, damaged (a disk fault, a copy
    cut short): every command, grading included, ended in an SQLAlchemy traceback. It is set aside
    with a warning and made again from grades.sqlite, every student's scores in it."""
    from nbgrader.api import Gradebook as NbgraderGradebook

    from grader import formgrader

    out = tmp_path / "out"
    shutil.copytree(term[0], out)
    before = read_csv(out / "grades.csv")
    (out / formgrader.FILE).write_bytes(b"not a database" * 100)
    done = grader("report", "--out", str(out))
    assert "Traceback" not in done.stderr
    (aside,) = out.glob(f"{formgrader.FILE}.damaged-*")
    assert f"warning: {out / formgrader.FILE} cannot be read" in done.stderr and str(aside) in done.stderr
    assert read_csv(out / "grades.csv") == before
    gb = NbgraderGradebook(f"sqlite:///{out / formgrader.FILE}")
    try:
        score = gb.find_submission(ASSIGNMENT, "alice").score
    finally:
        gb.close()
    alice = totals(out)[("alice", ASSIGNMENT)]
    assert score == float(alice["score"])


@pytest.mark.slow
def test_a_score_typed_in_formgrader_while_a_command_runs_is_not_wiped(term, tmp_path):
    """A command reads formgrader's scores when it starts, then copies the students it touches
    into nbgrader's gradebook: a score typed in formgrader in between (grading takes minutes) was
    written over with the grader's, and lost. The copy leaves a score it has not read in place,
    and the next command takes it as an override."""
    from nbgrader.api import Gradebook

    from grader import autograde, gradebook, reports, settings

    out = tmp_path / "out"
    shutil.copytree(term[0], out)
    with gradebook.Gradebook(out) as book:
        autograde.import_formgrader_scores(out, book)  # what every command does first
        view = reports.build(book, settings.load(out))
        with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:  # typed in while the command runs
            gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score = 0.25
            gb.db.commit()
        autograde.copy_to_nbgrader(out, view, {"556"})
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score == 0.25
    done = grader("report", "--out", str(out))
    assert "formgrader: 556 01-embeddings/decode set to 0.25" in done.stdout
    assert grades(out)[("556", ASSIGNMENT, "decode")]["score"] == "0.25"
    # The command's own change is no score typed since: `adjust --clear` of that formgrader score
    # clears it in nbgrader's gradebook too, and the next command does not take it back.
    grader("adjust", "556", "decode", "--clear", "--out", str(out))
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score is None
    assert "formgrader:" not in grader("report", "--out", str(out)).stdout
    assert grades(out)[("556", ASSIGNMENT, "decode")]["override_reason"] == ""


def test_a_score_typed_in_formgrader_while_the_release_is_added_is_kept(term, tmp_path, monkeypatch):
    """Each grading run adds its assignments to nbgrader's gradebook with nbgrader's generate step
    (seconds). It ran on a copy, then moved the copy over the gradebook: a score typed in
    formgrader meanwhile went into the file that was replaced, and was lost. The run now adds them
    in place."""
    from nbgrader.api import Gradebook

    from grader import autograde, course, release

    out = tmp_path / "out"
    shutil.copytree(term[0], out)
    generate = release.generate

    def typed_meanwhile(source, released, db):
        with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
            gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score = 0.25
            gb.db.commit()
        generate(source, released, db)

    with course.scratch("forwardpass-test-") as tmp:
        (Path(tmp) / "source").mkdir()
        release.build(course.SOLUTIONS, Path(tmp), only={ASSIGNMENT})
        monkeypatch.setattr(release, "generate", typed_meanwhile)
        autograde._update_class_gradebook(out / "gradebook.db", Path(tmp))
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_grade("decode", "embeddings", ASSIGNMENT, "556").manual_score == 0.25


def test_a_canvas_file_whose_rows_canvas_cannot_match_says_so(tmp_path, capsys):
    """Students graded from the hub's folders (logins, no Canvas ID) and no roster: canvas.csv had
    rows without any id, which Canvas's import cannot match to anyone, and nothing said so (the
    warning came only with a roster)."""
    from grader.gradebook import Gradebook
    from grader.settings import Settings

    row = {"student": "alice", "assignment": "a", "exercise": "e", "score": 1.0, "max_score": 1.0,
           "status": "graded", "reason": ""}  # fmt: skip
    result = {"student": "alice", "complete": True, "notebooks": [
        {"assignment": "a", "notebook": "n", "rows": [row], "findings": []}]}  # fmt: skip
    with Gradebook(tmp_path) as book:
        book.set_exercises("a", "n", [("e", 1.0)])
        book.record(book.start_run("test", "all"), result, {("a", "n"): {"file": "n.ipynb", "sha256": "0"}})
        reports.write(tmp_path, book, Settings())
    told = capsys.readouterr().err
    assert "canvas.csv: no student in it has a Canvas ID: Canvas's import cannot match its rows" in told
    assert 'roster = "canvas-export.csv"' in told


def test_a_gradebook_damaged_while_a_command_runs_is_named(tmp_path, capsys, monkeypatch):
    """Damage that SQLite meets only once the command is under way (a disk fault) ended it in an
    sqlite3 traceback; it is named, with the copy to restore."""
    from grader import adjust, gradebook
    from grader.__main__ import main

    with gradebook.Gradebook(tmp_path):
        pass
    with gradebook.Gradebook(tmp_path):
        pass

    def damaged(out):
        err = sqlite3.DatabaseError("database disk image is malformed")
        err.sqlite_errorcode, err.sqlite_errorname = 11, "SQLITE_CORRUPT"
        raise err

    monkeypatch.setattr(adjust, "report", damaged)
    assert main(["report", "--out", str(tmp_path)]) == 2
    told = capsys.readouterr().err
    assert f"error: {tmp_path / gradebook.FILE} is damaged (database disk image is malformed)" in told, told
    assert "restore the newest copy the grader kept" in told


def test_due_dates_without_a_time_zone_say_whose_clock_they_follow(tmp_path, capsys):
    """course.toml without `timezone`: each due date is read in the zone of the machine that runs
    the command, so `report` on a laptop in New York moved every deadline of a class graded on a
    UTC server by five hours, and made students late, without a word. Every command now says
    so; a term with a timezone, or whose dates carry their offset, is not told."""
    from grader import settings

    (tmp_path / "course.toml").write_text('[due]\n"01-embeddings" = "2026-10-09 23:59"\n')
    settings.load(tmp_path)
    told = capsys.readouterr().err
    assert "course.toml sets no timezone: its due dates are read in the zone of the machine" in told
    assert 'timezone = "Europe/London"' in told
    for text in (
        'timezone = "UTC"\n[due]\n"01-embeddings" = "2026-10-09 23:59"\n',
        '[due]\n"01-embeddings" = "2026-10-09 23:59+01:00"\n',
        '[due]\n"01-embeddings" = 2026-10-09T23:59:00Z\n',
        '[late]\npolicy = "none"\n',
    ):
        (tmp_path / "course.toml").write_text(text)
        settings.load(tmp_path)
        assert "sets no timezone" not in capsys.readouterr().err, text


@pytest.mark.parametrize(
    ("argv", "told"),
    [
        (
            ["autograde", "sub", "--studnet", "alice"],
            "unrecognized arguments: --studnet alice (--studnet: did you mean --student?)",
        ),
        (["autograde", "sub", "--zero-flaged"], "(--zero-flaged: did you mean --zero-flagged?)"),
        (["report", "--outt", "grading"], "(--outt: did you mean --out?)"),
    ],
)
def test_a_misspelt_option_is_named_with_the_one_meant(capsys, argv, told):
    from grader.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert told in capsys.readouterr().err


def test_new_work_of_a_removed_student_is_named(tmp_path):
    """alice was removed (she dropped), then submitted again (she came back, or the wrong id was
    removed): the run graded her notebook into the gradebook and no report showed it, without a
    word. The run names it, with the command that shows it again; a merged id's work shows under
    the other id and is not named."""
    from grader import autograde
    from grader.gradebook import Gradebook

    with Gradebook(tmp_path) as book:
        book.change_identity("remove", "alice", "", "dropped the course", "me")
        book.change_identity("merge", "101", "bob", "two ids", "me")
        told = autograde.hidden_work(
            book, {"alice": [object(), object()], "101": [object()], "carol": [object()]}
        )
    assert told == [
        "alice was removed from the reports (dropped the course): this run graded 2 notebook(s) of theirs, "
        "kept in the gradebook and shown in no report; to show them: python -m grader restore-student alice "
        "--reason ..."
    ]


def test_canvas_gets_no_zero_for_work_not_yet_due(capsys):
    """Week 3 graded early (its first submissions), or bob with an extension past the export:
    canvas.csv gave everyone who had not submitted yet a 0, which Canvas imports and shows them
    before their due date. Work not submitted and not yet due is left blank; once due, it is 0."""
    from datetime import UTC, datetime, timedelta

    from grader import late, lms, reports, settings

    now = datetime.now(UTC)

    def total(student, assignment, final, submitted=True):
        return reports.Total(
            student,
            assignment,
            "graded" if submitted else "missing",
            final,
            9,
            late.ON_TIME,
            submitted or None,
            0,
            0,
        )

    people = {s: lms.Person(s, canvas_id=str(i)) for i, s in enumerate(("alice", "bob", "carol"))}
    view = reports.View(
        [],
        [total("alice", ASSIGNMENT, 8), total("bob", ASSIGNMENT, 0, False), total("carol", ASSIGNMENT, 0, False),
         total("alice", WEEK2, 7), total("bob", WEEK2, 0, False), total("carol", WEEK2, 0, False)],
        people, [], {ASSIGNMENT: [], WEEK2: []},
    )  # fmt: skip
    term = settings.Settings(
        due={ASSIGNMENT: now - timedelta(days=2), WEEK2: now + timedelta(days=5)},
        extensions={(ASSIGNMENT, "bob"): now + timedelta(days=1)},
    )
    _, finals = reports._one_row_each(view, term)
    assert finals == {("alice", ASSIGNMENT): 8, ("carol", ASSIGNMENT): 0, ("alice", WEEK2): 7}


def test_a_backup_of_the_gradebook_is_on_the_disk_before_an_older_one_is_removed(tmp_path, monkeypatch):
    """The copies in OUT/backups were written as any report is, without a sync: a power cut just
    after a command could leave its copy empty, after it had removed the oldest sound one. Each
    copy, and its folder's entry, is synced before an older copy is removed."""
    from grader import atomic, gradebook

    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(
        atomic.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd)
    )
    for week in range(gradebook.KEEP_BACKUPS + 2):
        with gradebook.Gradebook(tmp_path) as book:
            book.set_exercises(f"week{week}", "n", [("e", 1.0)])
    backups = tmp_path / gradebook.BACKUPS
    copies = [path for path in synced if path.startswith(str(backups / ".grades-"))]
    assert len(copies) == gradebook.KEEP_BACKUPS + 1  # every copy made (the first command had none to copy)
    assert synced.count(str(backups)) == gradebook.KEEP_BACKUPS + 1
