"""Bad inputs never stop the class: unsafe archives, odd names, damaged grading metadata, huge
outputs, nbgrader's own failures; and the integrity report says what it saw without zeroing.

The end-to-end tests grade one class of bad inputs with honest neighbours through the real
``python -m grader autograde`` (real nbgrader, 2 jobs; in the class several suites share,
``conftest.shared_class``), and a small class with ``--zero-flagged``. The rest run
``grader.submissions``, ``clean``, ``failures``, ``outputs`` and ``integrity`` directly, nbgrader
included where it is the subject.
"""

import codecs
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.converters import Autograde
from test_grading import ASSIGNMENT, RELEASED, index_of, read_grades, solution

from grader import (
    clean,
    course,
    failures,
    gradebook,
    integrity,
    outputs,
    release,
    results,
    similarity,
    submissions,
)

KNOWN = {"embeddings": ASSIGNMENT}
LONG_NAME = "long" + "x" * 236  # 240 bytes: fine for the file system, too long for an id
NOT_UTF8 = b"Jos\xe9_Mar"  # Latin-1, as a Windows zip tool writes it
PLACEHOLDER = b"NONUTF8_"  # the same length, replaced in the zip's bytes
HUGE = 50_000_000  # bytes one cell prints


def released():
    return nbformat.read(RELEASED, as_version=4)


def points() -> dict[str, float]:
    return {test.name: test.points for test in results.test_cells(released())}


def source():
    return solution()


# ---- students ----------------------------------------------------------------------------------------


def careless():
    """The test of embed pasted twice, decode's test with its metadata emptied, no cell ids,
    another kernel, 20 MB of output saved in the file: nbgrader alone gives this notebook
    nothing."""
    nb = solution()
    nb.cells[index_of(nb, "encode-answer")].outputs = [
        new_output("stream", name="stdout", text="y" * 20_000_000)
    ]
    nb.cells.insert(index_of(nb, "embed") + 1, copy.deepcopy(nb.cells[index_of(nb, "embed")]))
    nb.cells[index_of(nb, "decode")].metadata.nbgrader = {}
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.pop("id", None)
    nb.metadata.kernelspec = {"name": "my-conda-env", "display_name": "Python (course)", "language": "python"}
    return nb


def remarked():
    """embed's test marked as a solution, sinusoidal_positions's turned into text, encode's
    edited."""
    nb = solution()
    nb.cells[index_of(nb, "embed")].metadata.nbgrader["solution"] = True
    test = nb.cells[index_of(nb, "sinusoidal_positions")]
    test.cell_type = "markdown"
    del test["outputs"], test["execution_count"]
    nb.cells[index_of(nb, "encode")].source = "print('all good')"
    return nb


def inventor():
    nb = solution()
    nb.cells[index_of(nb, "encode")].metadata.nbgrader["points"] = 100
    bonus = {"grade": True, "grade_id": "bonus", "points": 100, "locked": True, "solution": False}
    nb.cells.insert(3, new_code_cell("print('bonus')", metadata={"nbgrader": bonus}))
    return nb


def printer():
    nb = solution()
    nb.cells.insert(index_of(nb, "decode") + 1, new_code_cell(f"print('x' * {HUGE})"))
    return nb


def blank():
    return released()


HONEST = {  # student (as the reports name them) -> notebook; every one keeps full marks
    "perfect": solution,
    "careless": careless,
    "printer": printer,
    LONG_NAME: solution,
    "Jos\\xe9_Mar": solution,  # NOT_UTF8 as the reports show it
    "4242": solution,  # graded from its Canvas file; its folder holds an older blank notebook
}
FLAGGED = {"remarked": remarked, "inventor": inventor}  # reported, and scored as computed
PROBLEMS = {  # (student, file or "", status, words in the reason)
    ("../evil.ipynb", "../evil.ipynb", "invalid_submission", "leads outside the archive"),
    ("mallory", "/abs/mallory/embeddings.ipynb", "invalid_submission", "absolute path"),
    ("linker", "class/linker/embeddings.ipynb", "invalid_submission", "symbolic link"),
    ("4242", "class/4242/embeddings.ipynb", "duplicate_submission", "class/doe_4242_77_embeddings.ipynb"),
    (LONG_NAME, "", "renamed", "240 bytes long"),
    ("Jos\\xe9_Mar", "", "renamed", "not valid UTF-8"),
}


def class_entries() -> list[tuple[str | zipfile.ZipInfo, str]]:
    """The bad class, as entries of the zip that ``conftest.shared_class`` grades (with
    ``finish_archive``)."""
    entries = [
        (f"class/{student}/embeddings.ipynb", nbformat.writes(build()))
        for student, build in {
            "perfect": solution,
            "careless": careless,
            "printer": printer,
            **FLAGGED,
        }.items()
    ]
    entries += [
        (f"class/{LONG_NAME}/embeddings.ipynb", nbformat.writes(solution())),
        (f"class/{PLACEHOLDER.decode()}/embeddings.ipynb", nbformat.writes(solution())),
        ("class/4242/embeddings.ipynb", nbformat.writes(blank())),
        ("class/doe_4242_77_embeddings.ipynb", nbformat.writes(solution())),
        ("../evil.ipynb", nbformat.writes(solution())),
        ("/abs/mallory/embeddings.ipynb", nbformat.writes(solution())),
    ]
    link = zipfile.ZipInfo("class/linker/embeddings.ipynb")
    link.external_attr = 0o120777 << 16
    return [*entries, (link, "../../../../etc/passwd")]


def finish_archive(archive: Path) -> None:
    """One student's folder named in Latin-1, as a Windows zip tool writes it (zipfile writes
    UTF-8 names only)."""
    data = archive.read_bytes()
    assert data.count(PLACEHOLDER) == 2  # the entry's local header and the central directory
    archive.write_bytes(data.replace(PLACEHOLDER, NOT_UTF8))


@pytest.fixture(scope="module")
def bad_class(shared_class):
    """The bad class, graded with other suites' students (``conftest.shared_class``)."""
    return shared_class.out, shared_class.of(ASSIGNMENT), shared_class.flagged, shared_class.stderr


# ---- the class, end to end -----------------------------------------------------------------------------


@pytest.mark.slow
def test_honest_and_careless_students_keep_full_marks(bad_class):
    out, rows, _, _ = bad_class
    grades = read_grades(out)
    for student in [*HONEST, *FLAGGED]:
        for name, most in points().items():
            row = grades[(submissions.student_id(student), name)]
            assert (row["status"], float(row["score"])) == ("graded", most), row


@pytest.mark.slow
def test_every_bad_input_has_its_row_and_a_warning(bad_class):
    _, rows, _, stderr = bad_class
    for student, file, status, words in PROBLEMS:
        found = [
            r
            for r in rows
            if r["student"] == submissions.student_id(student)
            and r["exercise"] == file
            and r["status"] == status
        ]
        assert len(found) == 1 and words in found[0]["reason"], (student, file, status, found)
        assert words in stderr
    assert all(r["reason"] and "unknown error" not in r["reason"] for r in rows)


@pytest.mark.slow
def test_safe_ids_name_the_files_and_the_reports_keep_the_names(bad_class):
    out, rows, _, _ = bad_class
    with gradebook.Gradebook(out) as book:
        students = book.students()
    assert all(len(i.encode()) <= submissions.MAX_ID_BYTES and "\\" not in i for i in students)
    assert {LONG_NAME, "Jos\\xe9_Mar", "../evil.ipynb"} <= {name for name, _ in students.values()}
    assert {r["student"] for r in rows} <= set(students)
    with open(out / "totals.csv") as f:
        named = {r["student"]: r["name"] for r in csv.DictReader(f)}
    assert named[submissions.student_id(LONG_NAME)] == LONG_NAME
    assert (out / "feedback" / submissions.student_id(LONG_NAME) / f"{ASSIGNMENT}.html").exists()


@pytest.mark.slow
def test_tampered_metadata_is_reported_not_rewarded(bad_class):
    out, rows, flagged, _ = bad_class
    total = {s: sum(float(r["score"]) for r in rows if r["student"] == s) for s in FLAGGED}
    assert total == {s: sum(points().values()) for s in FLAGGED}
    said = {(r["student"], r["exercises"], r["reason"]) for r in flagged}
    assert any(s == "remarked" and e == "embed" and "solution True instead of False" in r for s, e, r in said)
    assert any(s == "remarked" and e == "sinusoidal_positions" and "markdown" in r for s, e, r in said)
    assert any(s == "inventor" and e == "encode" and "points 100 instead of 1" in r for s, e, r in said)
    assert any(s == "inventor" and "grade_id='bonus'" in r for s, _, r in said)
    assert not {r["student"] for r in flagged} & set(HONEST)


@pytest.mark.slow
def test_a_huge_output_is_capped_where_it_is_stored_and_shown(bad_class):
    out, _, _, _ = bad_class
    stored = out / "autograded" / "printer" / ASSIGNMENT / "embeddings.ipynb"
    page = out / "feedback" / "printer" / f"{ASSIGNMENT}.html"
    for path in (stored, page):
        assert path.stat().st_size < 2 * outputs.MAX_TEXT + 2**19, path
        # A message over the client's cap never reaches the grader (``grader.execute``); a smaller
        # one is cut to its head and tail (``grader.outputs``). Either way the page says so.
        text = path.read_text()
        assert "bytes cut ..." in text or "was not kept" in text


@pytest.mark.slow
def test_careless_notebook_runs_each_test_once(bad_class):
    out, _, _, _ = bad_class
    nb = nbformat.read(out / "autograded" / "careless" / ASSIGNMENT / "embeddings.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    graded = [i for i in ids if i]
    assert len(graded) == len(set(graded)) and {"embed", "decode"} <= set(graded)


def flagged_entries() -> list[tuple[str, str]]:
    """Two renamed copies of lib's position_embedding and an honest neighbour, for the class
    ``conftest.flagged_class`` grades with ``--zero-flagged``."""
    students = {
        "copier": with_body("position_embedding", LIB_POSITIONS_RENAMED),
        "echo": with_body("position_embedding", LIB_POSITIONS_RENAMED_AGAIN),
        "plain-honest": solution(),
    }
    return [(f"class/{student}/embeddings.ipynb", nbformat.writes(nb)) for student, nb in students.items()]


@pytest.mark.slow
def test_zero_flagged_zeroes_what_was_flagged_and_pairs_copies(flagged_class):
    grades = {(r["student"], r["exercise"]): r for r in flagged_class.of(ASSIGNMENT)}
    for student in ("copier", "echo"):
        row = grades[(student, "position_embedding")]
        assert (row["status"], float(row["score"])) == ("integrity", 0), row
        assert "near-identical to lib.position_embedding" in row["reason"]
    assert {grades[("plain-honest", name)]["status"] for name in points()} == {"graded"}
    pairs = [r for r in flagged_class.flagged if "'s position_embedding" in r["reason"]]
    pairs = [r for r in pairs if r["student"] in ("copier", "echo")]
    assert sorted((r["student"], "echo's" in r["reason"]) for r in pairs) == [
        ("copier", True),
        ("echo", False),
    ]


# ---- finding submissions -------------------------------------------------------------------------------


def test_a_folder_with_links_odd_names_and_duplicates(tmp_path):
    root = tmp_path / "class"
    for name in ["ann/embeddings.ipynb", "ann/01-embeddings/embeddings.ipynb", "bo b/embeddings.ipynb"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    os.utime(root / "ann/01-embeddings/embeddings.ipynb", (2e9, 2e9))  # the later one
    (root / "eve").symlink_to("/etc")
    (root / "ann" / "sampling.ipynb").symlink_to("/etc/passwd")
    weird = root / os.fsdecode(b"ctl\x07\xff")
    weird.mkdir()
    (weird / "embeddings.ipynb").write_text("{}")
    os.mkfifo(root / "bo b" / "fifo.ipynb")
    found = submissions.find(root, KNOWN, tmp_path / "scratch")
    assert {s: [x.file for x in subs] for s, subs in found.by_student.items()} == {
        "ann": ["ann/01-embeddings/embeddings.ipynb"],
        "bo b": ["bo b/embeddings.ipynb"],
        submissions.student_id("ctl\\x07\\xff"): ["ctl\\x07\\xff/embeddings.ipynb"],
    }
    problems = {(p.name, p.file, p.status): p.reason for p in found.problems}
    assert "symbolic link" in problems[("eve", "eve", "invalid_submission")]
    assert "symbolic link" in problems[("ann", "ann/sampling.ipynb", "invalid_submission")]
    assert "not a regular file" in problems[("bo b", "bo b/fifo.ipynb", "invalid_submission")]
    assert "later" in problems[("ann", "ann/embeddings.ipynb", "duplicate_submission")]
    renamed = problems[("ctl\\x07\\xff", "", "renamed")]
    assert "not valid UTF-8" in renamed and "control" in renamed


LIST_AS_A_USER = """
import sys
from pathlib import Path
from grader import submissions
found = submissions.find(Path(sys.argv[1]), {"embeddings": "01-embeddings"}, Path(sys.argv[2]))
print(sorted(found.by_student))
for p in found.problems:
    print(p.name, p.status, p.reason)
"""


def test_a_notebook_the_grader_cannot_read_is_named_and_the_others_are_graded(tmp_path):
    """A file the instructor's account may not read (copied from another account): it is listed
    as not graded, with the reason, and the class goes on; it stopped the whole run. Listed by
    user 1000 in a user namespace, where the files (root's) with no permissions cannot be read."""
    root = tmp_path / "class"
    for student in ("ann", "bob"):
        (root / student).mkdir(parents=True)
        (root / student / "embeddings.ipynb").write_text("{}")
    (root / "ann" / "embeddings.ipynb").chmod(0)
    tmp_path.chmod(0o755)
    listed = subprocess.run(
        ["bwrap", "--unshare-user", "--uid", "1000", "--dev-bind", "/", "/", "--tmpfs", "/tmp/scratch",
         "--chdir", str(Path(__file__).parents[1]), sys.executable, "-c", LIST_AS_A_USER, str(root), "/tmp/scratch"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "['bob']",
        "ann invalid_submission not graded: it cannot be read (Permission denied)",
    ], listed.stdout


@pytest.mark.parametrize(("apart", "graded"), [(3600, "embeddings.ipynb"), (5, "embeddings (1).ipynb")])
def test_the_later_of_two_copies_is_graded_by_time_then_by_number(tmp_path, apart, graded):
    """A browser's second download, "embeddings (1).ipynb", and the notebook the student went on
    to change, saved an hour later: the later one is graded. Seconds apart, the times are a copy's
    (copied without them), and the resubmission number decides."""
    root = tmp_path / "class" / "ann"
    root.mkdir(parents=True)
    for name, when in [("embeddings (1).ipynb", 2e9), ("embeddings.ipynb", 2e9 + apart)]:
        (root / name).write_text("{}")
        os.utime(root / name, (when, when))
    found = submissions.find(tmp_path / "class", KNOWN, tmp_path / "scratch")
    assert [sub.file for sub in found.by_student["ann"]] == [f"ann/{graded}"]
    (superseded,) = found.problems
    assert superseded.status == "duplicate_submission" and graded in superseded.reason


def test_names_that_meet_after_normalising(tmp_path):
    """One name in two Unicode forms is one student; a name equal to another's id is refused."""
    root = tmp_path / "class"
    taken = submissions.student_id("a?")
    for name in [
        "caf\u00e9/embeddings.ipynb",
        "cafe\u0301/sampling.ipynb",
        "a?/embeddings.ipynb",
        f"{taken}/embeddings.ipynb",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    found = submissions.find(root, {**KNOWN, "sampling": "04-sampling"}, tmp_path / "scratch")
    assert {s: sorted(x.notebook for x in subs) for s, subs in found.by_student.items()} == {
        "café": ["embeddings", "sampling"],
        taken: ["embeddings"],
    }
    assert found.by_student[taken][0].name == "a?"
    problems = {(p.name, p.status): p.reason for p in found.problems}
    assert "written in 2 different ways" in problems[("café", "renamed")]
    assert "would get the same id as 'a?'" in problems[(taken, "invalid_submission")]


def test_ids_are_safe_readable_distinct_and_stable():
    names = [
        "alice",
        "a b",
        "a_b",
        "café",
        "x" * 240,
        "..",
        "-rf",
        "a/b",
        "a\\b",
        "ctl\\x07",
        "_static",
        "日本語",
    ]
    ids = [submissions.student_id(n) for n in names]
    assert len(set(ids)) == len(ids)
    assert ids[:4] == ["alice", "a b", "a_b", "café"] and ids[-1] == "日本語"
    for i in ids:
        assert 0 < len(i.encode()) <= submissions.MAX_ID_BYTES and not i.startswith((".", "-", "_"))
        assert all(ch.isalnum() or ch in "_-.@ " for ch in i)
    assert ids == [submissions.student_id(n) for n in names]


def test_a_zip_bomb_and_too_many_entries_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_UNZIPPED", 10_000)
    monkeypatch.setattr(submissions, "MAX_ENTRIES", 5)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("c/a/embeddings.ipynb", "{}")
        zf.writestr("c/b/embeddings.ipynb", " " * 20_000)  # compresses to almost nothing
        for n in range(5):
            zf.writestr(f"c/s{n}/embeddings.ipynb", "{}")
    found = submissions.find(tmp_path / "bomb.zip", KNOWN, tmp_path / "out")
    assert sorted(found.by_student) == ["a", "s0", "s1", "s2"]
    reasons = {p.name: p.reason for p in found.problems}
    assert "more than 10000 bytes" in reasons["b"]
    assert "only the first 5 were read" in reasons["bomb.zip"]
    extracted = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert extracted == ["0", "0/0.ipynb", "2", "2/2.ipynb", "3", "3/3.ipynb", "4", "4/4.ipynb"]


READ_INTO_SMALL_SCRATCH = """
import json, shutil, sys
from pathlib import Path
from grader import submissions
scratch = Path(sys.argv[2])
found = submissions.find(Path(sys.argv[1]), {"embeddings": "01-embeddings"}, scratch / "read")
usage = shutil.disk_usage(scratch)
print(json.dumps({
    "read": sorted(found.by_student),
    "refused": {p.name: p.reason for p in found.problems},
    "free": usage.free, "total": usage.total,
}))
"""


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_huge_notebooks_cannot_fill_the_scratch_space_or_crowd_out_others(tmp_path, packed):
    """Notebooks are read into scratch space (in memory: /dev/shm), here a real 64 MiB tmpfs of
    its own. Two 22 MiB files, named to come first, and a 6 MiB one would have filled what reading
    may take (48 MiB: a quarter stays free for grading) and left the 6 MiB one out. Read smallest
    first, every small notebook and the 6 MiB one are read, one huge file is not (its row says
    why), and the quarter is still free."""
    root = tmp_path / "class"
    sizes = {"aaa-huge-1": 22 * 2**20, "aaa-huge-2": 22 * 2**20, "zzz-medium": 6 * 2**20}
    sizes |= {f"small-{n}": 40_000 for n in range(5)}
    for student, size in sizes.items():
        (root / student).mkdir(parents=True)
        (root / student / "embeddings.ipynb").write_bytes(b" " * size)
    if packed:
        shutil.make_archive(str(tmp_path / "class"), "zip", tmp_path, "class")
    scratch = tmp_path / "shm"
    scratch.mkdir()
    mounted = 'mount -t tmpfs -o size=64m tmpfs "$0" && exec "$@"'
    submitted = tmp_path / "class.zip" if packed else root
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", mounted, scratch, sys.executable, "-c", READ_INTO_SMALL_SCRATCH, submitted, scratch],
        capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["total"] == 64 * 2**20
    assert {*seen["read"]} == {*sizes} - {"aaa-huge-2"} or {*seen["read"]} == {*sizes} - {"aaa-huge-1"}
    [(student, reason)] = seen["refused"].items()
    assert student.startswith("aaa-huge-") and reason.startswith(
        f"not graded: it is {22 * 2**20} bytes, and the grader's scratch space has room for "
    )
    assert reason.endswith("(the smallest notebooks are read first): free some of it (/dev/shm, else "
                           "the temporary folder), or grade this notebook alone")  # fmt: skip
    assert seen["free"] >= seen["total"] // 4


def test_an_unreadable_archive_is_one_clear_error(tmp_path):
    (tmp_path / "class.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(submissions.SubmissionsError, match="neither a folder nor a readable zip"):
        submissions.find(tmp_path / "class.zip", KNOWN, tmp_path / "out")


# ---- cleaning ----------------------------------------------------------------------------------------------


def graded_ids(nb) -> list[str]:
    return [clean._grade_id(c) for c in nb.cells if clean._grade_id(c)]


def test_cleaning_restores_the_released_grading_cells():
    rel = released()
    nb = careless()
    test = nb.cells[index_of(nb, "sinusoidal_positions")]
    test.cell_type = "markdown"  # a test turned into text
    del test["outputs"], test["execution_count"]
    del nb.cells[index_of(nb, "position_embedding")]  # a deleted test
    nb.cells[index_of(nb, "encode-answer")].metadata.nbgrader["points"] = 5  # points on an answer
    nb.cells.append(
        new_markdown_cell("![x](attachment:big.png)", attachments={"big.png": {"image/png": "A" * 2**21}})
    )
    cleaned, changes = clean.clean(nb, rel)
    nbformat.validate(cleaned)
    assert graded_ids(cleaned) == graded_ids(rel)
    by_id = {clean._grade_id(c): c for c in cleaned.cells if clean._grade_id(c)}
    for cell in rel.cells:
        if clean._grade_id(cell):
            mine = by_id[clean._grade_id(cell)]
            assert (mine.cell_type, mine.metadata, mine.id) == (cell.cell_type, cell.metadata, cell.id)
            if clean._is_test(cell):
                assert mine.source == cell.source
    assert by_id["embed-answer"].source == nb.cells[index_of(nb, "embed-answer")].source
    assert cleaned.metadata == rel.metadata and cleaned.nbformat_minor == 5
    assert len({c.id for c in cleaned.cells}) == len(cleaned.cells)
    assert "attachments" not in cleaned.cells[-1]
    suspicious = {c.grade_id: c.what for c in changes if c.suspicious}
    assert suspicious.keys() == {"sinusoidal_positions", "encode-answer"}
    assert "turned into a markdown cell" in suspicious["sinusoidal_positions"]
    assert "points 5 instead of None" in suspicious["encode-answer"]
    assert any("put back" in c.what and c.grade_id == "position_embedding" for c in changes)
    assert any("second copy" in c.what for c in changes)


def test_an_answer_cell_whose_metadata_was_lost_is_found_by_what_it_defines():
    nb = solution()
    answer = nb.cells[index_of(nb, "embed-answer")]
    del answer.metadata["nbgrader"]
    answer.id = "renamed-cell"
    cleaned, changes = clean.clean(nb, released())
    restored = next(c for c in cleaned.cells if clean._grade_id(c) == "embed-answer")
    assert restored.source == answer.source
    assert [c.what for c in changes if c.grade_id == "embed-answer"] == [
        "its grading metadata was missing or emptied and is restored"
    ]


def test_a_file_that_is_no_notebook_is_refused_with_its_reason(tmp_path):
    for name, data, said in [
        ("utf16", b"\xff\xfe not json", "not JSON (lexical error: invalid char in json text.)"),
        (
            "latin1",
            nbformat.writes(solution()).replace("encode", "\xe9ncode").encode("latin-1", "replace"),
            "not JSON (lexical error: invalid bytes in UTF8 string.)",
        ),
        ("cut", nbformat.writes(solution()).encode()[:5000], "not JSON (parse error: premature EOF)"),
    ]:
        (tmp_path / f"{name}.ipynb").write_bytes(data)
        with pytest.raises(clean.NotANotebook, match=re.escape(f"not a valid notebook: ValueError: {said}")):
            clean.clean_file(tmp_path / f"{name}.ipynb", released(), tmp_path / "out.ipynb")
    for blank in (b"", b"\n  \n"):  # an upload that failed: "premature EOF" said nothing to the student
        (tmp_path / "empty.ipynb").write_bytes(blank)
        with pytest.raises(clean.NotANotebook, match=rf"the file is empty \({len(blank)} bytes, all blank\)"):
            clean.clean_file(tmp_path / "empty.ipynb", released(), tmp_path / "out.ipynb")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_a_notebook_saved_with_a_byte_order_mark_is_read(tmp_path, encoding):
    """As some editors save it (Windows tools: UTF-16 with its mark); the student's work was
    refused as "not JSON" for an encoding nobody could see."""
    text = nbformat.writes(solution())
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    (tmp_path / "bom.ipynb").write_bytes(data)
    clean.clean_file(tmp_path / "bom.ipynb", released(), tmp_path / "out.ipynb")
    sources = [cell.source for cell in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells]
    assert sources == [cell.source for cell in nbformat.reads(text, as_version=4).cells]


def many_values(count: int) -> list:
    return [[] for _ in range(count)]


def test_what_cleaning_drops_is_not_read_and_the_rest_is_bounded(tmp_path, monkeypatch):
    """Outputs and the notebook's own metadata (saved widget state) are skipped unread, whatever
    they hold; what is kept is bounded as it is read, and so is everything read."""
    monkeypatch.setattr(clean, "MAX_VALUES", 50_000)
    nb = solution()
    cell = nb.cells[index_of(nb, "encode-answer")]
    cell.outputs = [
        new_output("execute_result", data={"text/plain": "ok"}, metadata={"x": many_values(60_000)})
    ]
    nb.metadata.widgets = {"state": many_values(60_000)}
    nbformat.write(nb, tmp_path / "skipped.ipynb")
    clean.clean_file(tmp_path / "skipped.ipynb", released(), tmp_path / "out.ipynb")
    cleaned = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.source for c in cleaned.cells if clean._grade_id(c)] == [
        c.source for c in clean.clean(solution(), released())[0].cells if clean._grade_id(c)
    ]
    assert "widgets" not in cleaned.metadata and not any(c.get("outputs") for c in cleaned.cells)

    cell.metadata["x"] = many_values(60_000)
    nbformat.write(nb, tmp_path / "kept.ipynb")
    with pytest.raises(clean.NotANotebook, match="outside its outputs, the notebook holds more than"):
        clean.clean_file(tmp_path / "kept.ipynb", released(), tmp_path / "out.ipynb")

    monkeypatch.setattr(clean, "MAX_EVENTS", 100_000)
    with pytest.raises(clean.NotANotebook, match="more than 100,000 JSON values, outputs included"):
        clean.clean_file(tmp_path / "skipped.ipynb", released(), tmp_path / "out.ipynb")


@pytest.mark.slow
def test_a_notebook_of_many_small_values_is_read_in_bounded_memory(tmp_path):
    """Parsed whole, ``[],`` repeated takes fifty times its bytes (this file, 29 MB: 1.5 GB, and
    a 1 GB one would take the machine); read as a stream, one chunk's values at a time."""
    nb = solution()
    nb.cells[index_of(nb, "encode-answer")].outputs = [new_output("stream", name="stdout", text="ok")]
    text = nbformat.writes(nb).replace(
        '"name": "stdout"', '"x": [' + ",".join(["[]"] * 9_500_000) + '], "name": "stdout"'
    )
    assert len(text) > 28_000_000
    (tmp_path / "many.ipynb").write_text(text)
    nbformat.write(released(), tmp_path / "released.ipynb")
    measure = (
        "import sys, nbformat\n"
        "from pathlib import Path\n"
        "from grader import clean\n"
        "d = Path(sys.argv[1])\n"
        "clean.clean_file(d / 'many.ipynb', nbformat.read(d / 'released.ipynb', as_version=4), d / 'out.ipynb')\n"
        # VmHWM, not ru_maxrss: that keeps the high-water mark of the test worker it was forked from
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert int(done.stdout) < 450 * 1024, f"{int(done.stdout) / 1024:.0f} MB"


def test_a_notebook_nested_deep_is_read_in_bounded_memory(tmp_path):
    """Brackets nested 30,000 deep (105 kB) took the grading process 2.2 GB, 100,000 deep (245 kB)
    3 GB and a MemoryError, 1,000,000 deep (2 MB) 24 GB (red team, ninth round): ijson gave every
    event its whole path. Now an output nested so (never read) costs nothing, and what is read is
    refused past ``clean.MAX_NESTING`` levels, with its reason."""
    nb = json.loads(nbformat.writes(solution()))
    cell = nb["cells"][index_of(solution(), "encode-answer")]
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x", "deep": "@@"}]
    deep = "[" * 30_000 + "]" * 30_000
    (tmp_path / "output.ipynb").write_text(json.dumps(nb).replace('"@@"', deep))
    cell["outputs"], cell["metadata"]["deep"] = [], "@@"
    (tmp_path / "metadata.ipynb").write_text(json.dumps(nb).replace('"@@"', deep))
    nbformat.write(released(), tmp_path / "released.ipynb")
    measure = (
        "import resource, sys, nbformat\n"
        "from pathlib import Path\n"
        "from grader import clean\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (2**30, 2**30))  # a failure, not the machine's memory\n"
        "d = Path(sys.argv[1])\n"
        "for name in ('output', 'metadata'):\n"
        "    try:\n"
        "        clean.clean_file(d / f'{name}.ipynb', nbformat.read(d / 'released.ipynb', as_version=4), d / 'out.ipynb')\n"
        "        print('read')\n"
        "    except clean.NotANotebook as err:\n"
        "        print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "read",
        f"not graded: the notebook nests values more than {clean.MAX_NESTING} deep",
    ], done.stdout


# ---- nbgrader on uncleaned notebooks: its failures explained -----------------------------------------------


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory):
    """A release of chapter 1 with its gradebook, as ``autograde`` makes one."""
    base = tmp_path_factory.mktemp("course")
    release.build(course.SOLUTIONS, base, only={ASSIGNMENT})
    return base


def nbgrader_outcome(base: Path, name: str, nb, kernel: str = "python3") -> dict:
    """Stock nbgrader ``Autograde`` (no cleaning) on ``nb`` as student ``name``."""
    work = base / name
    (work / "submitted" / name / ASSIGNMENT).mkdir(parents=True)
    (work / "gradebook.db").write_bytes((base / release.GRADEBOOK).read_bytes())
    nbformat.write(nb, work / "submitted" / name / ASSIGNMENT / "embeddings.ipynb")
    config = course.nbgrader_config(
        root=work,
        source_directory=base / "source",
        submitted_directory=work / "submitted",
        autograded_directory=work / "autograded",
        db=work / "gradebook.db",
    )
    config.Execute.kernel_name = kernel
    log = course.quiet_logger("test.nbgrader")
    return course.run(Autograde, config, log, ASSIGNMENT, name, force=True, create_student=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "build", "kernel", "words"),
    [
        ("pasted", careless, "python3", "its grading metadata is damaged (KeyError: 'grade_id')"),
        ("remarked", remarked, "python3", "a locked cell was changed in a way nbgrader could not undo"),
        ("nokernel", solution, "no-such-kernel", "the grading kernel is not installed"),
    ],
)
def test_nbgrader_failures_have_reasons_a_person_understands(course_copy, name, build, kernel, words):
    outcome = nbgrader_outcome(course_copy, name, build(), kernel)
    assert not outcome["success"]
    said = failures.reason(outcome, "logs/x.log")
    assert words in said and "logs/x.log" in said and "unknown" not in said, said


@pytest.mark.slow
def test_cleaned_notebooks_pass_stock_nbgrader(course_copy, tmp_path):
    for name, build in [
        ("pasted-clean", careless),
        ("remarked-clean", remarked),
        ("inventor-clean", inventor),
    ]:
        nbformat.write(build(), tmp_path / f"{name}.ipynb")
        clean.clean_file(tmp_path / f"{name}.ipynb", released(), tmp_path / f"{name}-clean.ipynb")
        nb = nbformat.read(tmp_path / f"{name}-clean.ipynb", as_version=4)
        nb.cells = [c for c in nb.cells if c.cell_type != "code" or clean._grade_id(c)]  # no kernel work
        assert nbgrader_outcome(course_copy, name, nb)["success"], name


def test_a_log_without_a_traceback_still_gives_a_reason():
    assert "no graded notebook" in failures.reason({"success": True, "log": ""})
    said = failures.reason(
        {"success": False, "log": "[ERROR] No notebooks were matched\n[ERROR] Please see the"}
    )
    assert "No notebooks were matched" in said


# ---- outputs --------------------------------------------------------------------------------------------


def test_outputs_are_cut_to_head_and_tail_and_big_images_dropped():
    big = "head" + "é" * outputs.MAX_TEXT + "tail"
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("stream", name="stdout", text=big),
        new_output(
            "display_data", data={"image/png": "A" * (outputs.MAX_IMAGE + 1), "text/plain": "<Figure>"}
        ),
        new_output("execute_result", data={"text/html": "<p>" * outputs.MAX_TEXT, "text/plain": "ok"}),
        new_output("error", ename="ValueError", evalue="v" * 10**6, traceback=["line"] * 10**5),
        *[new_output("stream", name="stdout", text="n") for _ in range(500)],
    ]
    nb = outputs.capped(new_notebook(cells=[cell]))
    stream, image, html, error, *_ = nb.cells[0].outputs
    assert stream.text.startswith("head") and stream.text.endswith("tail") and " bytes cut ..." in stream.text
    assert len(stream.text.encode()) <= outputs.MAX_TEXT + 100
    assert "image/png" not in image.data and "dropped" in image.data["text/plain"]
    assert "text/html" not in html.data and html.data["text/plain"].startswith("ok")
    assert (
        len(error.evalue) < outputs.MAX_TEXT + 100
        and len("\n".join(error.traceback)) < outputs.MAX_TEXT + 100
    )
    assert len(nb.cells[0].outputs) == outputs.MAX_OUTPUTS + 1
    assert nb.cells[0].outputs[outputs.MAX_OUTPUTS // 2].text == "... 404 outputs cut ...\n"


# ---- similarity ------------------------------------------------------------------------------------------


def with_body(name: str, body: str):
    """The solution notebook with the released stub of ``name`` given ``body``."""
    nb = solution()
    stub = released().cells[index_of(released(), f"{name}-answer")].source
    nb.cells[index_of(nb, f"{name}-answer")].source = stub.replace(
        "    # YOUR CODE HERE\n    raise NotImplementedError()", body
    )
    return nb


LIB_POSITIONS_RENAMED = (  # lib.position_embedding with other names, its start at 0
    "    from lib._validate import as_float_array\n"
    "    first = 0\n"
    "    table = as_float_array(wpe, 'wpe', min_ndim=2)\n"
    "    if first < 0 or n_tokens < 1:\n"
    "        raise ValueError(f'positions need n_tokens >= 1 and start >= 0, got {n_tokens}, {first}')\n"
    "    if first + n_tokens > table.shape[0]:\n"
    "        raise ValueError(\n"
    "            f'positions {first}..{first + n_tokens - 1} do not fit the context: the position '\n"
    "            f'table has {table.shape[0]} rows (n_ctx)'\n"
    "        )\n"
    "    return table[first : first + n_tokens]"
)
LIB_POSITIONS_RENAMED_AGAIN = (  # the variables renamed again, the words of the messages kept
    LIB_POSITIONS_RENAMED.replace("table =", "rows =").replace("table.", "rows.").replace("table[", "rows[")
).replace("first", "offset")
HONEST_POSITIONS = "    if n_tokens > len(wpe):\n        raise ValueError('too many tokens')\n    return wpe[:n_tokens].copy()"


def review(nb):
    names = [
        c.metadata.nbgrader.grade_id for c in released().cells if c.metadata.get("nbgrader", {}).get("grade")
    ]
    return integrity.review(nb, released(), source(), names, ASSIGNMENT)


def test_a_renamed_copy_of_lib_is_near_identical_and_an_honest_solution_is_not():
    copied = review(with_body("position_embedding", LIB_POSITIONS_RENAMED)).findings
    assert [(f.exercises, f.reason.split(" (")[0]) for f in copied] == [
        (("position_embedding",), "near-identical to lib.position_embedding")
    ]
    assert copied[0].code == "def position_embedding(n_tokens, wpe):"
    assert review(with_body("position_embedding", HONEST_POSITIONS)).findings == []
    assert review(solution()).findings == []


def test_two_students_renamed_copies_are_paired():
    code = {}
    for student, nb in [
        ("ann", with_body("position_embedding", LIB_POSITIONS_RENAMED)),
        ("bob", with_body("position_embedding", LIB_POSITIONS_RENAMED_AGAIN)),
        ("cy", with_body("position_embedding", HONEST_POSITIONS)),
        ("di", solution()),
    ]:
        for exercise, fingerprint in review(nb).fingerprints.items():
            code.setdefault((ASSIGNMENT, exercise), {})[student] = fingerprint
    rows = integrity.pairs(code)  # a pair is evidence against both (red team, third round: ann alone)
    assert [(r["student"], r["exercises"]) for r in rows] == [
        ("ann", ["position_embedding"]),
        ("bob", ["position_embedding"]),
    ]
    assert "near-identical to bob's position_embedding" in rows[0]["reason"]
    assert "to ann's position_embedding" in rows[1]["reason"]


def test_normalised_tokens_ignore_names_and_numbers_but_keep_attributes_and_words():
    a = similarity.tokens("return np.einsum('ij', x) + 1  # comment")
    b = similarity.tokens('return np.einsum("ij", inp) + 2')
    assert a == b == ["return", "N", ".", "einsum", "(", "ij", ",", "N", ")", "+", "0", "NEWLINE"]
    assert similarity.tokens("return np.matmul(x)") != similarity.tokens("return np.einsum(x)")
    assert similarity.tokens("raise ValueError(f'{x} rows')") == similarity.tokens(
        'raise ValueError(f"{n} rows")'
    )
    assert similarity.tokens("raise ValueError('too few')") != similarity.tokens(
        "raise ValueError('bad rows')"
    )


def test_a_notebook_named_but_for_case_is_its_chapters_and_a_renamed_one_is_named(tmp_path):
    """Embeddings.ipynb (a capital) is chapter 1's notebook; embeddings-Copy1.ipynb (JupyterLab's
    duplicate) is no chapter's, and its warning says which notebook it may be."""
    from grader import autograde, course

    for name in ("Embeddings.ipynb", "embeddings-Copy1.ipynb"):
        (tmp_path / "dave" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "dave" / name).write_text("{}")
    found = submissions.find(tmp_path, course.notebooks(), tmp_path / "scratch")
    by_file = {Path(sub.file).name: sub for sub in found.by_student["dave"]}
    assert (by_file["Embeddings.ipynb"].notebook, by_file["Embeddings.ipynb"].assignment) == (
        "embeddings",
        "01-embeddings",
    )
    copy = by_file["embeddings-Copy1.ipynb"]
    assert copy.assignment is None
    assert "is it embeddings.ipynb, renamed?" in autograde.unknown_reason(copy)
