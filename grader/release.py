"""``python -m grader release``: regenerate the student notebooks in ``chapters/`` from ``solutions/``.

For each assignment ``solutions/<a>/``: a jupytext text source ``<slug>.py`` (if there is one)
becomes the nbgrader source notebook ``solutions/<a>/<slug>.ipynb``; nbgrader's
``generate_assignment`` (with a throwaway gradebook) turns the source notebooks into
``chapters/<a>/`` and copies the other files (their Markdown without the parts marked for readers
on their own, ``grader.audiences``); ``chapters/<a>/nbgrader_config.py`` is added for
students who run ``nbgrader validate`` there. ``reader/`` holds the same notebooks for readers on
their own, whom the reader edition's launch button sends there: the reader's Markdown, and a check
that says whether a concept check's letter is right (``grader.check.reader_check``). Output is
normalized so that a second run writes byte-identical files; ``--check`` writes nothing and lists
every file that is out of date.
"""

import hashlib
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
from nbgrader.converters import GenerateAssignment

from . import course
from .audiences import for_audience

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
GRADEBOOK = "gradebook.db"
# Beside each released notebook, for `nbgrader validate` run in the chapter's folder.
STUDENT_CONFIG = Path(__file__).with_name("student_nbgrader_config.py")
# Each notebook for readers on their own (the reader edition's launch button opens them): the
# student notebook with the reader's Markdown and the reader's check, and the book's own notebooks.
READER = "reader"
CHECK_IMPORT = re.compile(r"^(from grader\.check import (?:.*, )?)check$", re.MULTILINE)
# What must never reach a student: nbgrader removes these regions, this makes sure it did.
FORBIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", "### BEGIN SOLUTION", "### END SOLUTION")


class ReleaseError(RuntimeError):
    pass


def normalized(nb: nbformat.NotebookNode) -> bytes:
    """The notebook as nbformat writes it, with a fixed kernelspec and stable cell ids."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("language_info", None)
    used = set()
    for index, cell in enumerate(nb.cells):
        cell.id = _stable_id(cell, index, used)
    return (nbformat.writes(nb, version=4) + "\n").encode()


def _stable_id(cell, index: int, used: set) -> str:
    """The nbgrader grade_id, else a hash of the cell's content: ids change only where cells do."""
    grade_id = re.sub(r"[^A-Za-z0-9_-]", "-", cell.metadata.get("nbgrader", {}).get("grade_id", ""))[:64]
    content = hashlib.sha1(f"{cell.cell_type}\0{cell.source}".encode()).hexdigest()[:8]
    candidate = grade_id or content
    if candidate in used:
        candidate = f"{content}-{index}"
    used.add(candidate)
    return candidate


def source_notebook(text_source: Path) -> bytes:
    """A jupytext ``py:percent`` chapter as its nbgrader source notebook."""
    return normalized(jupytext.read(text_source, fmt="py:percent"))


def build(solutions: Path, work: Path, only: set[str] | None = None) -> dict[str, bytes]:
    """Every released file, by path relative to the repository root (``solutions/...`` for the
    source notebooks made from text, ``chapters/...`` for the student versions).

    Leaves in ``work``: ``source/`` (the nbgrader source tree), ``release/`` (nbgrader's output)
    and ``gradebook.db`` (every assignment, or those in ``only``; no students).
    """
    outputs = {}
    source = work / "source"
    for assignment in course.assignments(solutions):
        if only is not None and assignment not in only:
            continue
        folder = source / assignment
        shutil.copytree(solutions / assignment, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        for text in sorted((solutions / assignment).glob("*.py")):
            data = source_notebook(text)
            (folder / f"{text.stem}.ipynb").write_bytes(data)
            outputs[f"solutions/{assignment}/{text.stem}.ipynb"] = data
    release = work / "release"
    generate(source, release, work / GRADEBOOK)
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        relative = path.relative_to(release).as_posix()
        outputs[f"chapters/{relative}"] = _student_file(path)
    for assignment in sorted(p.name for p in source.iterdir() if p.is_dir()):
        outputs[f"chapters/{assignment}/nbgrader_config.py"] = STUDENT_CONFIG.read_bytes()
    for path in sorted(release.rglob("*.ipynb")):
        outputs[f"{READER}/chapters/{path.relative_to(release).as_posix()}"] = _student_file(path, "reader")
    for page in sorted((solutions.parent / "book").glob("*.ipynb")):  # the book's own, the model card
        outputs[f"{READER}/book/{page.name}"] = page.read_bytes()
    return outputs


def generate(source: Path, release: Path, db: Path) -> None:
    """nbgrader ``generate_assignment`` for every assignment of ``source``."""
    if not db.exists():
        course.new_gradebook(db)
    config = course.nbgrader_config(
        root=source.parent, source_directory=source, release_directory=release, db=db
    )
    log = course.quiet_logger("grader.release")
    for assignment in course.assignments(source):
        result = course.run(GenerateAssignment, config, log, assignment, force=True, create_assignment=True)
        if not result["success"]:
            raise ReleaseError(
                f"generate_assignment {assignment} failed:\n{result.get('error') or result['log']}"
            )


# nbgrader replaces every solution region with one stub, `raise NotImplementedError()`. Inside a
# function that raises only when the function is called; after a concept check's `answer_x = ...`
# it would raise at once and stop "Run All" with a traceback. The check cell says an unanswered
# question is waiting, and the grader scores it 0, so the stub keeps only the assignment.
ANSWER_STUB = re.compile(r"^(answer_\w+ = \.\.\.[^\n]*)\n# YOUR CODE HERE\nraise NotImplementedError\(\)$")


def _student_file(path: Path, audience: str = "class") -> bytes:
    """A released file as ``audience`` gets it: a class's students, or a reader on their own."""
    if path.suffix != ".ipynb":
        return path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = ANSWER_STUB.sub(r"\1", cell.source)
        elif cell.cell_type == "markdown":
            cell.source = for_audience(cell.source, audience)
    if audience == "reader":
        _check_alone(nb, path.name)
    data = normalized(nb)
    text = data.decode()
    leaked = [marker for marker in FORBIDDEN if marker in text]
    if leaked:
        raise ReleaseError(f"{path.name}: the student version still contains {', '.join(leaked)}")
    return data


def _check_alone(nb, name: str) -> None:
    """Make the notebook's checks the reader's (``grader.check.reader_check``): a concept check
    then says whether the letter is right, as nothing is submitted."""
    imports = [c for c in nb.cells if c.cell_type == "code" and CHECK_IMPORT.search(c.source)]
    for cell in imports:
        cell.source = CHECK_IMPORT.sub(r"\1reader_check as check", cell.source)
    if not imports and any("check(" in c.source for c in nb.cells if c.cell_type == "code"):
        raise ReleaseError(
            f"{name}: it calls check() but does not import it as `from grader.check import check`"
        )


def out_of_date(outputs: dict[str, bytes], root: Path) -> list[str]:
    return [name for name, data in outputs.items() if not _same(root / name, data)]


def _same(path: Path, data: bytes) -> bool:
    return path.is_file() and path.read_bytes() == data


def release(root: Path = course.ROOT, check: bool = False) -> list[str]:
    """Regenerate (or with ``check``, only compare) the released files; returns those out of date."""
    with course.scratch("forwardpass-release-") as tmp:
        outputs = build(root / "solutions", Path(tmp))
    stale = out_of_date(outputs, root)
    if not check:
        for name in stale:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(outputs[name])
    return stale


def main(check: bool = False) -> int:
    stale = release(check=check)
    if check and stale:
        print("out of date (run `make release`):\n  " + "\n  ".join(stale))
        return 1
    verb = "would update" if check else "updated"
    print(f"{verb} {len(stale)} file(s)" + "".join(f"\n  {name}" for name in stale))
    return 0
