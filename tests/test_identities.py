"""A student's identity mended in the gradebook: one who submitted under two ids merged into one,
and one who dropped the course removed; each undone. Nothing graded is changed or deleted, and
every report shows the change at once (``python -m grader merge-student`` and the others).

The gradebook here is written as a grading run writes it, without running anybody's notebook."""

import csv
import sqlite3
from datetime import UTC, datetime

import pytest

from grader import gradebook
from grader.__main__ import main
from grader.results import Row

EMBEDDINGS, COST = "01-embeddings", "06-cost"


def grade(book, run, student, assignment, notebook, scores, when, hashes=None):
    """A run's result for one notebook of one student: ``scores`` exercise -> (score, points)."""
    rows = [
        Row(student, assignment, name, s, m, "correct" if s == m else "wrong", "")
        for name, (s, m) in scores.items()
    ]
    entry = {
        "assignment": assignment,
        "notebook": notebook,
        "rows": [r.as_dict() for r in rows],
        "findings": [],
    }
    if hashes:
        entry["fingerprints"] = {name: {"cell": 3, "line": 1, "hashes": hashes} for name in scores}
    unit = {
        "file": f"{student}/{notebook}.ipynb",
        "sha256": f"{student}{notebook}",
        "submitted_at": when,
        "time_source": "time of the file in the zip",
        "late": None,
        "name": "",
        "lms_id": "",
    }
    book.record(
        run, {"student": student, "complete": True, "notebooks": [entry]}, {(assignment, notebook): unit}
    )


@pytest.fixture
def out(tmp_path):
    """alice's week 1 at 20:00, and again as alice@uni.example at 22:00 with her week 2 and an
    override there; bob's week 1."""
    out = tmp_path / "out"
    out.mkdir()
    with gradebook.Gradebook(out) as book:
        book.set_exercises(EMBEDDINGS, "embeddings", [("encode", 6), ("decode", 6)])
        book.set_exercises(COST, "cost", [("loss", 4)])
        run = book.start_run("python -m grader autograde week1.zip", "")
        code = list(range(40))
        grade(
            book,
            run,
            "alice",
            EMBEDDINGS,
            "embeddings",
            {"encode": (6, 6), "decode": (2, 6)},
            datetime(2026, 10, 9, 20, tzinfo=UTC),
            code,
        )
        grade(
            book,
            run,
            "alice@uni.example",
            EMBEDDINGS,
            "embeddings",
            {"encode": (6, 6), "decode": (6, 6)},
            datetime(2026, 10, 9, 22, tzinfo=UTC),
            code,
        )
        grade(
            book,
            run,
            "alice@uni.example",
            COST,
            "cost",
            {"loss": (1, 4)},
            datetime(2026, 10, 16, 9, tzinfo=UTC),
        )
        grade(
            book,
            run,
            "bob",
            EMBEDDINGS,
            "embeddings",
            {"encode": (3, 6), "decode": (0, 6)},
            datetime(2026, 10, 9, 21, tzinfo=UTC),
        )
        book.finish_run(run, "finished")
        book.set_override(
            "alice@uni.example", COST, "loss", 4, "the loss was right; the check was wrong", "command"
        )
    assert main(["report", "--out", str(out)]) == 0
    return out


def read(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def totals(out) -> dict[tuple[str, str], float]:
    return {(r["student"], r["assignment"]): float(r["final_score"]) for r in read(out / "totals.csv")}


def raw_rows(out) -> int:
    with sqlite3.connect(out / gradebook.FILE) as db:
        return sum(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("scores", "submissions", "overrides", "history")
        )


def test_a_student_with_two_ids_is_merged_into_one_and_back(out, capsys):
    before = raw_rows(out)
    assert totals(out)[("alice@uni.example", COST)] == 4
    paired = [f["reason"] for f in read(out / "integrity.csv") if f["student"] == "alice"]
    assert paired and paired[0].startswith("near-identical to alice@uni.example's decode")
    capsys.readouterr()

    assert (
        main(
            [
                "merge-student",
                "alice@uni.example",
                "alice",
                "--reason",
                "one student, two logins",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert (
        "alice@uni.example merged into alice" in said
        and "undo with `python -m grader unmerge-student" in said
    )
    assert f"alice {EMBEDDINGS}: 12 / 12" in said  # the later copy counts
    shown = totals(out)
    assert not any(student == "alice@uni.example" for student, _ in shown)
    assert shown[("alice", EMBEDDINGS)] == 12 and shown[("alice", COST)] == 4  # the override followed her
    grades = read(out / "grades.csv")
    loss = next(r for r in grades if (r["student"], r["exercise"]) == ("alice", "loss"))
    assert loss["override_reason"] == "the loss was right; the check was wrong"
    duplicate = next(r for r in grades if r["status"] == "duplicate_submission")
    assert duplicate["student"] == "alice" and duplicate["exercise"] == "alice/embeddings.ipynb"
    assert (
        "the later submission counts" in duplicate["reason"]
        and "alice@uni.example/embeddings.ipynb" in duplicate["reason"]
    )
    assert [r["Student"] for r in read(out / "canvas.csv")] == ["alice", "bob"]
    assert not [f for f in read(out / "integrity.csv") if "alice" in f["student"]]  # not a pair with herself
    assert "alice@uni.example" not in (out / "summary.html").read_text().replace(
        "alice@uni.example/embeddings", ""
    )
    assert not (out / "feedback" / "alice@uni.example").exists()
    page = (out / "feedback" / "alice" / f"{EMBEDDINGS}.html").read_text()
    assert "Score: 12 / 12" in page
    assert "Score: 4 / 4" in (out / "feedback" / "alice" / f"{COST}.html").read_text()
    assert raw_rows(out) == before  # nothing graded changed or deleted
    with gradebook.Gradebook(out) as book:
        ((at, action, student, other, reason, who),) = book.identities().log
    assert (action, student, other, reason) == (
        "merge",
        "alice@uni.example",
        "alice",
        "one student, two logins",
    )
    assert who and at

    capsys.readouterr()
    assert main(["report", "--out", str(out)]) == 0
    assert (
        f"alice@uni.example is merged into alice: one student, two logins ({who}, {at})"
        in capsys.readouterr().out
    )
    assert main(["adjust", "alice@uni.example", "loss", "3", "--reason", "x", "--out", str(out)]) == 2
    assert "alice@uni.example was merged into alice: use alice" in capsys.readouterr().err
    assert main(["merge-student", "bob", "alice@uni.example", "--reason", "x", "--out", str(out)]) == 2
    assert "alice@uni.example was merged into alice" in capsys.readouterr().err

    assert (
        main(
            ["unmerge-student", "alice@uni.example", "--reason", "two students after all", "--out", str(out)]
        )
        == 0
    )
    shown = totals(out)
    assert shown[("alice", EMBEDDINGS)] == 8 and shown[("alice@uni.example", EMBEDDINGS)] == 12
    assert shown[("alice@uni.example", COST)] == 4 and shown[("alice", COST)] == 0
    assert (out / "feedback" / "alice@uni.example" / f"{COST}.html").exists()
    assert not any(r["status"] == "duplicate_submission" for r in read(out / "grades.csv"))


def test_a_student_who_dropped_is_removed_and_restored(out, capsys):
    before = raw_rows(out)
    assert main(["remove-student", "bob", "--reason", "dropped the course in week 2", "--out", str(out)]) == 0
    assert not any(s == "bob" for s, _ in totals(out))
    assert not any(r["student"] == "bob" for r in read(out / "grades.csv"))
    assert "bob" not in [r["Student"] for r in read(out / "canvas.csv")]
    assert not (out / "feedback" / "bob").exists()
    assert raw_rows(out) == before
    capsys.readouterr()
    assert main(["report", "--out", str(out)]) == 0
    assert "bob is removed from the reports: dropped the course in week 2 (" in capsys.readouterr().out
    assert main(["remove-student", "bob", "--reason", "again", "--out", str(out)]) == 2
    assert "bob was removed (dropped the course in week 2): undo it with" in capsys.readouterr().err
    assert main(["adjust", "bob", "encode", "6", "--reason", "x", "--out", str(out)]) == 2
    assert "bob was removed" in capsys.readouterr().err
    assert main(["restore-student", "bob", "--reason", "re-enrolled", "--out", str(out)]) == 0
    assert totals(out)[("bob", EMBEDDINGS)] == 3
    assert (out / "feedback" / "bob" / f"{EMBEDDINGS}.html").exists()
    with gradebook.Gradebook(out) as book:
        log = book.identities().log
    assert [(row[1], row[2], row[4]) for row in log] == [
        ("remove", "bob", "dropped the course in week 2"),
        ("restore", "bob", "re-enrolled"),
    ]


@pytest.mark.parametrize(
    "command, told",
    [
        (
            ["merge-student", "alcie", "alice"],
            "no student 'alcie' graded in the gradebook; did you mean alice?",
        ),
        (
            ["merge-student", "alice", "bbo"],
            "no student 'bbo' in the gradebook or on the roster; did you mean bob?",
        ),
        (["merge-student", "alice", "alice"], "alice cannot be merged into itself"),
        (["remove-student", "Bob"], "no student 'Bob' in the gradebook or on the roster; did you mean bob?"),
        (["restore-student", "bob"], "'bob' was not removed"),
        (["unmerge-student", "alice"], "'alice' was not merged into anyone"),
    ],
)
def test_an_unknown_or_impossible_identity_change_is_refused(out, capsys, command, told):
    """An id nobody has is named with the closest ones; nothing is written."""
    before = (out / gradebook.FILE).read_bytes()
    capsys.readouterr()
    assert main([*command, "--reason", "r", "--out", str(out)]) == 2
    assert told in capsys.readouterr().err
    assert (out / gradebook.FILE).read_bytes() == before


def test_a_change_without_a_reason_is_refused(out, capsys):
    with pytest.raises(SystemExit):
        main(["remove-student", "bob", "--out", str(out)])
    assert "--reason" in capsys.readouterr().err
    assert main(["remove-student", "bob", "--reason", "  ", "--out", str(out)]) == 2


def test_a_gradebook_of_version_2_gets_identities(tmp_path):
    with gradebook.Gradebook(tmp_path) as book:
        book.db.executescript("DROP TABLE identities; PRAGMA user_version = 2;")
    with gradebook.Gradebook(tmp_path) as book:
        assert book.identities() == gradebook.Identities()
        assert book.db.execute("PRAGMA user_version").fetchone()[0] == gradebook.VERSION == 4


def test_ids_on_the_roster_only_can_be_merged_into_and_removed(out, capsys):
    """bob's hub login is jbob on the roster: his work moves to the roster's row; carol never
    submitted and dropped: her row of missing work goes."""
    (out / "roster.csv").write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section\n"
        '"Bobson, Bob",201,S201,jbob,A\n"Carroll, Carol",202,S202,carol,A\n',
        encoding="utf-8-sig",
    )
    (out / "course.toml").write_text('[canvas]\nroster = "roster.csv"\n')
    assert main(["report", "--out", str(out)]) == 0
    assert totals(out)[("carol", EMBEDDINGS)] == 0 and ("jbob", EMBEDDINGS) in totals(out)
    assert main(["merge-student", "bob", "jbob", "--reason", "hub login", "--out", str(out)]) == 0
    assert main(["remove-student", "carol", "--reason", "dropped", "--out", str(out)]) == 0
    shown = totals(out)
    assert shown[("jbob", EMBEDDINGS)] == 3 and not {"bob", "carol"} & {s for s, _ in shown}
    canvas = {r["SIS Login ID"]: r for r in read(out / "canvas.csv")}
    assert set(canvas) == {"", "jbob"} and canvas["jbob"]["ID"] == "201"  # "": alice, not on the roster
    capsys.readouterr()
    assert main(["merge-student", "carol", "jbob", "--reason", "x", "--out", str(out)]) == 2
    assert "no student 'carol' graded in the gradebook" in capsys.readouterr().err


def nbgrader_students(out) -> dict[str, dict[str, float]]:
    """nbgrader's gradebook as ``nbgrader export`` reads it: each student's score by assignment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        return {
            student.id: {s.assignment.name: s.score for s in student.submissions} for student in gb.students
        }


def test_nbgraders_copy_follows_merges_and_removals(out, capsys):
    """nbgrader's gradebook (formgrader, ``nbgrader export``) kept a merged id as a student of its
    own beside the one it was merged into (its work counted twice by an export), and a removed
    student in full. It holds what the reports hold: the merged id and the removed one leave it,
    with their work under the id that counts, and come back when undone."""
    from nbgrader.api import Gradebook

    from grader import course

    course.new_gradebook(out / "gradebook.db")
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for assignment, notebook, cells in (
            (EMBEDDINGS, "embeddings", {"encode": 6, "decode": 6}),
            (COST, "cost", {"loss": 4}),
        ):
            gb.update_or_create_assignment(assignment)
            gb.update_or_create_notebook(notebook, assignment)
            for name, points in cells.items():
                gb.update_or_create_grade_cell(name, notebook, assignment, max_score=points, cell_type="code")
    assert main(["report", "--out", str(out)]) == 0
    before = nbgrader_students(out)
    assert set(before) == {"alice", "alice@uni.example", "bob"} and before["bob"] == {EMBEDDINGS: 3}
    assert (
        main(["merge-student", "alice", "alice@uni.example", "--reason", "two logins", "--out", str(out)])
        == 0
    )
    assert nbgrader_students(out) == {"alice@uni.example": {EMBEDDINGS: 12, COST: 4}, "bob": {EMBEDDINGS: 3}}
    assert main(["remove-student", "bob", "--reason", "dropped", "--out", str(out)]) == 0
    assert set(nbgrader_students(out)) == {"alice@uni.example"}
    assert main(["restore-student", "bob", "--reason", "back", "--out", str(out)]) == 0
    assert main(["unmerge-student", "alice", "--reason", "two people", "--out", str(out)]) == 0
    assert nbgrader_students(out) == before
