"""Build the web book in one of its three editions, each for its own readers.

``reader`` (``make book``, into ``_build/html``)
    For people reading on their own. Each exercise shows its task (the stub a student gets), then
    what a correct implementation returns on the check's example, computed with ``lib`` while the
    book is built, and the solution folded under "Show solution". A concept check folds its answer
    and the reason for it.
``class`` (``make book-class``, into ``_build/class/html``)
    For a graded course. The pages are the student notebooks: tasks and stubs, no solution and no
    answer anywhere, not even in the page sources. A stub only raises when called, and nothing
    after an exercise calls it (the chapters continue with ``lib``), so the check cells are shown
    but not run.
``instructor`` (``make book-instructor``, into ``_build/instructor/html``)
    For the teaching team. Solutions folded, checks run against them, and under each check the
    hidden cases the grader adds (``Case.describe``) or the concept check's key.

An edition is staged under ``_build/<edition>-src/``: the book's own pages, and each chapter
notebook rebuilt cell by cell from its solution notebook (``solutions/``) and its student notebook
(``chapters/``), paired by nbgrader ``grade_id``. Test cells are recognised by their ``check("<id>",
...)`` call, with or without a hidden-tests region, so this works with either form.

A chapter runs once for all three editions: its instructor notebook, which holds every cell any
edition runs (the reader's and the class's cells are its cells, less the checks and the solutions),
is executed through the execution cache all editions share, kept per version of the code it runs
(``_build/.jupyter_cache/<digest of lib, bookkit and grader>``). Each edition's chapter is staged
with the outputs of that run, cell by cell in order (``with_outputs``), and is not executed again
by the build. No cell may raise: the ``raises-exception`` tags students need are dropped, so a
failing cell stops the build with its traceback. Then the staging folder is built like any Jupyter
Book, with warnings as errors (the book's other notebooks run through the same cache).

A chapter's Markdown may hold parts for a class only (submitting, validating) and parts for a reader
on their own only, between marker comments (``grader.audiences``): the reader edition keeps the
reader's, the class and instructor editions the class's (``EDITIONS[...]["audience"]``). So do the
notebooks each edition's launch button opens (``EDITIONS[...]["notebooks"]``): the reader's, under
``reader/`` (``grader.release`` writes them), or the student notebooks of ``chapters/``.

While the book is built, ``FORWARD_PASS_BOOK`` holds the edition's name: the chapters' figures
with controls (``bookkit.explore``) then precompute their states for the static page.

Usage: ``python tools/editions.py {reader,class,instructor}``
"""

import argparse
import copy
import hashlib
import html
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import yaml
from nbformat.v4 import new_markdown_cell

from grader import exercises, keys
from grader.audiences import MarkerError, for_audience

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")
STUDENT_ONLY_TAGS = {"raises-exception"}
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # in IPython's tracebacks

EDITIONS = {
    "reader": {
        "out": BUILD / "html",
        "title": "",
        "announcement": "",
        "audience": "reader",
        "notebooks": "reader",  # the reader's notebooks (``grader.release``), under reader/chapters/...
    },
    "class": {
        "out": BUILD / "class" / "html",
        "title": " (class edition)",
        "announcement": "",
        "audience": "class",
        "notebooks": "",  # the student notebooks, chapters/...
    },
    "instructor": {
        "out": BUILD / "instructor" / "html",
        "title": " (instructor edition)",
        "announcement": "Instructor edition: it shows the solutions and the hidden tests. Do not publish it to students.",
        "audience": "class",  # the teaching team reads what its students read
        "notebooks": "",
    },
}


# ---- cells -------------------------------------------------------------------------------------


def strip_source(source: str, where: str) -> str:
    """Delete hidden-test regions and solution marker lines from a cell's source."""
    kept, hidden = [], False
    for line in source.splitlines(keepends=True):
        if BEGIN_HIDDEN in line:
            hidden = True
        elif END_HIDDEN in line:
            if not hidden:
                raise ValueError(f"{where}: {END_HIDDEN!r} without {BEGIN_HIDDEN!r}")
            hidden = False
        elif not hidden and not any(marker in line for marker in SOLUTION_MARKERS):
            kept.append(line)
    if hidden:
        raise ValueError(f"{where}: {BEGIN_HIDDEN!r} is never closed")
    return "".join(kept).rstrip("\n")


GRADING_SWITCH = re.compile(r"GRADING = .*")
NOT_GRADING = re.compile(r"(?P<indent> *)(?P<el>el)?if not GRADING(?: and (?P<rest>.+))?:(?: *#.*)?")
IMPORT_OS = re.compile(r"^import os\n", re.M)


def without_grading_switch(source: str, where: str) -> str:
    """A cell's source as a book shows it to people who grade nothing: without the chapters'
    ``GRADING`` switch (true only under the autograder, false wherever the book is read), its
    ``if not GRADING:`` blocks unwrapped, ``if not GRADING and x:`` as ``if x:``, ``elif not
    GRADING:`` as ``else:``, and ``import os`` if the switch was all it was for. The cell's
    outputs are those of the source as written."""
    lines, kept = source.split("\n"), []
    index = 0
    while index < len(lines):
        line = lines[index]
        found = NOT_GRADING.fullmatch(line)
        index += 1
        if GRADING_SWITCH.fullmatch(line):
            continue
        if not found:
            kept.append(line)
        elif found["el"] and not found["rest"]:
            kept.append(f"{found['indent']}else:")
        elif found["rest"]:
            kept.append(f"{found['indent']}{found['el'] or ''}if {found['rest']}:")
        else:  # the block's body, one level out
            indent = len(found["indent"])
            while index < len(lines) and (
                not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
            ):
                kept.append(lines[index][4:] if lines[index].strip() else lines[index])
                index += 1
            if index < len(lines) and lines[index].lstrip().startswith(("else", "elif")):
                raise ValueError(f"{where}: an `if not GRADING:` with an else branch")
    shown = "\n".join(kept)
    if "GRADING" in shown:
        raise ValueError(f"{where}: a use of GRADING the book cannot leave out")
    if "os." not in shown:
        shown = IMPORT_OS.sub("", shown).lstrip("\n")
    return shown


def nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(nbgrader(cell).get("solution"))


def is_test(cell) -> bool:
    return bool(nbgrader(cell).get("grade")) and not is_solution(cell)


def exercise_id(cell, where: str) -> str:
    """The id in a test cell's ``check("<id>", ...)`` call."""
    found = CHECK_CALL.search(strip_source(cell.source, where))
    if not found:
        raise ValueError(f'{where}: a test cell without a check("<assignment>/<name>", ...) call')
    return found[1]


def set_tags(cell, add=(), drop=STUDENT_ONLY_TAGS) -> None:
    tags = [t for t in cell.metadata.get("tags", []) if t not in drop]
    tags += [t for t in add if t not in tags]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def folded(cell, show: str, hide: str):
    """``cell`` with its input folded under a button that says ``show``."""
    set_tags(cell, add=["hide-input"])
    cell.metadata.setdefault("mystnb", {}).update(code_prompt_show=show, code_prompt_hide=hide)
    return cell


def as_text(text: str) -> str:
    """``text`` for a Markdown cell, shown as written: "<eos>" is a token, not an HTML tag."""
    return html.escape(text, quote=False)


def admonition(title: str, body: str, kind: str = "note") -> str:
    return f"::::{{admonition}} {title}\n:class: {kind}\n{body}\n::::"


# ---- what the editions say about an exercise ----------------------------------------------------


def shown(value) -> str:
    """A short description of an input of a check's example."""
    if isinstance(value, np.ndarray):
        if value.size <= 8 and value.ndim <= 1:
            return f"`{np.array2string(value, precision=4, separator=', ')}`"
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, dict):
        return f"a dict of {len(value)} entries"
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return f"`{text if len(text) <= 60 else text[:57] + '...'}`"
    if isinstance(value, list | tuple) and len(repr(value)) <= 60:
        return f"`{value!r}`"
    return f"a `{type(value).__name__}`"


def printed(value) -> str:
    """A result as NumPy prints it, summarised when large."""
    if isinstance(value, tuple | list) and all(isinstance(v, np.ndarray) for v in value):
        return "\n".join(printed(v) for v in value)
    with np.printoptions(precision=4, suppress=True, threshold=40, edgeitems=3, linewidth=64):
        return repr(value) if not isinstance(value, str) else repr(value)


def parameters(source: str, name: str) -> list[str] | None:
    """The parameter names of ``def name(...)`` in a cell's source, if it defines one."""
    found = re.search(rf"^def {re.escape(name)}\((.*?)\):", source, re.M | re.S)
    if not found:
        return None
    return [p.split("=")[0].strip().lstrip("*") for p in found[1].split(",") if p.strip()]


def harness(test_source: str, exercise) -> str:
    """How the check calls its function when it does not call it directly: the first paragraph of
    the docstring of the exercise's runner, or of the wrapper in the test cell
    (``check(id, sampler(sample_next))``); "" when the check calls the function itself."""
    runner = getattr(exercise, "runner", None)
    if runner is None:
        found = re.search(r"""\bcheck\(\s*["'][^"']+["']\s*,\s*(\w+)\(\s*\w+\s*\)""", test_source)
        if not found:
            return ""
        runner = getattr(sys.modules[exercise.reference.__module__], found[1], None)
    doc = inspect.getdoc(runner) or "The check calls it through a harness."
    return doc.split("\n\n")[0].replace("\n", " ").replace("``", "`")


def hidden_cases(exercise) -> list:
    """The hidden cases of an exercise: listed by ``cases()``, or drawn by ``cases(secret=...)``
    where the grader makes them afresh for each grading run (any secret gives their kinds)."""
    if "secret" in inspect.signature(exercise.cases).parameters:
        return [c for c in exercise.cases(secret=0) if c.hidden]
    return [c for c in exercise.cases() if c.hidden]


def example(exercise_id_: str, stub: str, test_source: str) -> str:
    """Markdown: what a correct implementation returns on the first visible case of the check,
    computed with the exercise's reference (``lib``) now."""
    exercise = exercises.get(exercise_id_)
    case = next(c for c in exercise.cases() if not c.hidden)
    result = exercise.reference(**{k: copy.deepcopy(v) for k, v in case.inputs.items()})
    given = "; ".join(f"`{name}` = {shown(value)}" for name, value in case.inputs.items())
    how = harness(test_source, exercise)
    own = parameters(stub, exercise.name)
    if how:
        lead = f"{how} On the check's example ({given}), the check expects:"
    elif own is None or not set(case.inputs) <= set(own):
        lead = f"The check calls `{exercise.name}` through a harness. On its example ({given}), it expects:"
    else:
        lead = f"On the check's example ({given}), a correct `{exercise.name}` returns:"
    body = f"{lead}\n\n```text\n{printed(result)}\n```"
    return admonition(f"What a correct `{exercise.name}` gives", body, "tip")


def concept_answer(exercise_id_: str) -> str:
    key = keys.concept(exercise_id_)
    return f"**({key.answer})** {as_text(key.explain)}"


def grading_note(exercise_id_: str) -> str:
    """Markdown for the instructor: the hidden cases of a function, or a concept check's key."""
    exercise = exercises.get(exercise_id_)
    if exercise.kind == "choice":
        return admonition(f"Key of `{exercise.name}`", concept_answer(exercise_id_))
    described = [c.describe for c in hidden_cases(exercise)]
    body = "When grading, the function also runs on:\n\n" + "\n".join(f"- {as_text(d)}" for d in described)
    return admonition(f"Hidden tests of `{exercise.name}`", body)


# ---- notebooks ---------------------------------------------------------------------------------


def by_grade_id(nb) -> dict:
    return {nbgrader(c)["grade_id"]: c for c in nb.cells if nbgrader(c).get("grade_id")}


def cleaned(solution, name: str):
    """Copies of a solution notebook's cells without hidden tests, solution markers or the tags
    only students need, each with where it comes from (for error messages)."""
    for index, original in enumerate(solution.cells):
        where = f"{name}, cell {index}"
        cell = copy.deepcopy(original)
        cell.source = strip_source(cell.source, where)
        set_tags(cell)
        yield cell, where


def reader_notebook(solution, student, name: str):
    """The reader edition of one chapter (the inputs are not changed)."""
    stubs = by_grade_id(student)
    cells = []
    for cell, where in cleaned(solution, name):
        if is_test(cell):
            eid = exercise_id(cell, where)
            if exercises.get(eid).kind == "choice":
                cells.append(
                    new_markdown_cell(f":::{{dropdown}} Show the answer\n{concept_answer(eid)}\n:::")
                )
            else:
                stub = stubs[f"{nbgrader(cell)['grade_id']}-answer"].source
                cells.append(new_markdown_cell(example(eid, stub, cell.source)))
        elif is_solution(cell) and cell.cell_type == "code":
            if re.match(r"\s*answer_\w+\s*=", cell.source):
                continue  # a concept check's answer: shown folded under the question instead
            task = copy.deepcopy(stubs[nbgrader(cell)["grade_id"]])
            set_tags(task, add=["skip-execution"])
            cells += [task, folded(cell, "Show solution", "Hide solution")]
        elif is_solution(cell):
            cells.append(new_markdown_cell(f":::{{dropdown}} A model answer\n{cell.source}\n:::"))
        else:
            cells.append(cell)
    return _with_cells(solution, cells)


def class_notebook(solution, student, name: str):
    """The class edition: the student notebook, with its stubs and checks shown but not run."""
    cells = []
    for index, original in enumerate(student.cells):
        cell = copy.deepcopy(original)
        if any(marker in cell.source for marker in (BEGIN_HIDDEN, *SOLUTION_MARKERS)):
            raise ValueError(f"{name}, cell {index}: the student notebook holds a solution or hidden test")
        set_tags(cell, add=["skip-execution"] if is_test(cell) or is_solution(cell) else ())
        cells.append(cell)
    return _with_cells(student, cells)


def instructor_notebook(solution, student, name: str):
    """The instructor edition: solutions folded, checks run, hidden cases described."""
    cells = []
    for cell, where in cleaned(solution, name):
        if is_test(cell):
            cells += [cell, new_markdown_cell(grading_note(exercise_id(cell, where)))]
        elif is_solution(cell) and cell.cell_type == "code":
            cells.append(folded(cell, "Show solution", "Hide solution"))
        elif is_solution(cell):
            cells.append(new_markdown_cell(f":::{{dropdown}} Model answer\n{cell.source}\n:::"))
        else:
            cells.append(cell)
    return _with_cells(solution, cells)


def _with_cells(nb, cells):
    """``nb`` with ``cells``, numbered afresh (a task and its solution came with the same id)."""
    out = copy.deepcopy(nb)
    out.cells = cells
    for index, cell in enumerate(out.cells):
        cell.id = f"cell-{index}"
    return out


NOTEBOOKS = {"reader": reader_notebook, "class": class_notebook, "instructor": instructor_notebook}


# ---- running a chapter once for every edition ---------------------------------------------------


def runs(cell) -> bool:
    return cell.cell_type == "code" and "skip-execution" not in cell.metadata.get("tags", [])


def with_outputs(nb, executed, name: str):
    """``nb`` with the outputs of ``executed``: each cell that runs takes those of the next cell of
    ``executed`` with the same source (an edition's running cells are, in order, a part of the
    instructor notebook's); the build shows them without running ``nb`` again."""
    out = copy.deepcopy(nb)
    done = iter([c for c in executed.cells if c.cell_type == "code"])
    for index, cell in enumerate(out.cells):
        if not runs(cell):
            continue
        source = next((c for c in done if c.source == cell.source), None)
        if source is None:
            raise ValueError(
                f"{name}, cell {index}: it is not among the instructor notebook's cells, in order"
            )
        cell.outputs, cell.execution_count = copy.deepcopy(source.outputs), source.execution_count
    for key in ("language_info", "widgets"):
        if key in executed.metadata:
            out.metadata[key] = copy.deepcopy(executed.metadata[key])
    out.metadata.setdefault("mystnb", {})["execution_mode"] = "off"
    return out


def executed(nb, cwd: Path, cache: Path, name: str):
    """``nb`` executed in ``cwd``: from the execution cache ``cache``, or run now and cached there
    (as myst-nb's cache mode does, with the build's timeout); a cell that raises stops the build."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    cached = get_cache(str(cache))
    try:
        return cached.merge_match_into_notebook(nb)[1]
    except KeyError:
        pass
    run = copy.deepcopy(nb)
    timeout = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["execute"]["timeout"]
    print(f"Running {name} for every edition", flush=True)
    result = single_nb_execution(run, cwd=str(cwd), timeout=timeout, allow_errors=False)
    if result.err is not None:
        raise RuntimeError(f"{name} raised while it ran: {ANSI_COLOUR.sub('', str(result.err))}")
    cached.cache_notebook_bundle(
        CacheBundleIn(run, name, data={"execution_seconds": result.time}), overwrite=True
    )
    print(f"Ran {name} in {result.time:.1f} s", flush=True)
    return run


# ---- staging and building ----------------------------------------------------------------------


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless ``path`` already holds it, so that rebuilds stay incremental."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def copy_tree(src: Path, dst: Path, ignore=()) -> None:
    """Copy files whose content changed, keeping modification times (for incremental builds)."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or any(part in ignore for part in rel.parts):
            continue
        target = dst / rel
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def staged_config(edition: str, cache: Path) -> str:
    """The book's ``_config.yml``, retitled for the edition, pointing at the repository's assets
    and at the execution cache ``cache``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    settings = EDITIONS[edition]
    config["title"] += settings["title"]
    # The launch button opens the page's notebook in the repository, under this folder.
    config["repository"]["path_to_book"] = settings["notebooks"]
    if settings["announcement"]:
        config.setdefault("html", {})["announcement"] = settings["announcement"]
    # One execution cache for every edition: the chapters' runs (``executed``), and the book's own
    # notebooks (the model card), which run once and show the same outputs in each. It is kept per
    # version of the code the notebooks run (``code_digest``): a cache keyed by the cells alone
    # would show the numbers of an older lib.
    config["execute"]["cache"] = str(cache)
    sphinx_config = config["sphinx"]["config"]
    sphinx_config["html_static_path"] = [str(ROOT / path) for path in sphinx_config["html_static_path"]]
    config["sphinx"]["local_extensions"] = {
        name: str(ROOT / path) for name, path in config["sphinx"].get("local_extensions", {}).items()
    }
    return yaml.safe_dump(config, sort_keys=False)


CACHE = BUILD / ".jupyter_cache"
RUN_BY_NOTEBOOKS = ("lib", "bookkit", "grader")  # the code and data the book's cells import and read


def code_digest() -> str:
    """A digest of every file under ``RUN_BY_NOTEBOOKS`` (bytecode caches aside)."""
    digest = hashlib.sha256()
    for folder in RUN_BY_NOTEBOOKS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{path.relative_to(ROOT)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def drop_stale_caches(keep: str) -> None:
    """Remove the execution caches of other versions of the code than ``keep`` (and the cache of
    the time before caches were kept per version)."""
    if CACHE.is_dir():
        for old in CACHE.iterdir():
            if old.name == keep:
                continue
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()


def for_its_readers(nb, audience: str, name: str):
    """``nb`` with its Markdown as ``audience`` reads it (``grader.audiences``): a reader on their
    own is not told to submit or validate, and a class is not pointed to folds its pages lack."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            try:
                cell.source = for_audience(cell.source, audience)
            except MarkerError as err:
                raise ValueError(f"{name}, cell {index}: {err}") from None
    return nb


def chapters() -> list[Path]:
    """Each chapter's solution notebook, relative to ``solutions/``."""
    return sorted(
        p.relative_to(ROOT / "solutions")
        for p in (ROOT / "solutions").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def stage(edition: str) -> Path:
    """Write the edition's sources into ``_build/<edition>-src``; return that folder."""
    staging, cache = BUILD / f"{edition}-src", CACHE / code_digest()
    drop_stale_caches(cache.name)
    write_if_changed(staging / "_config.yml", staged_config(edition, cache))
    write_if_changed(staging / "_toc.yml", (ROOT / "_toc.yml").read_text(encoding="utf-8"))
    copy_tree(ROOT / "book", staging / "book", ignore={"node_modules", "_static", "_ext", "assets"})
    for rel in chapters():
        solution = nbformat.read(ROOT / "solutions" / rel, as_version=4)
        student = nbformat.read(ROOT / "chapters" / rel, as_version=4)
        name, folder = f"solutions/{rel}", staging / "chapters" / rel.parent
        folder.mkdir(parents=True, exist_ok=True)  # where the chapter's cells run
        runs_all = instructor_notebook(solution, student, name)  # every cell any edition runs
        ran = executed(runs_all, folder, cache, name)
        shown = runs_all if edition == "instructor" else NOTEBOOKS[edition](solution, student, name)
        nb = for_its_readers(with_outputs(shown, ran, name), EDITIONS[edition]["audience"], name)
        if edition != "instructor":  # the teaching team knows the switch; a reader has no use for it
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    cell.source = without_grading_switch(cell.source, f"{name}, cell {index}")
        write_if_changed(staging / "chapters" / rel, nbformat.writes(nb) + "\n")
    return staging


def build(edition: str, staging: Path) -> int:
    """Build the staged book with warnings as errors, as the CLI would; return Sphinx's status."""
    from jupyter_book.sphinx import build_sphinx  # what `jupyter-book build` runs

    return build_sphinx(
        staging,
        EDITIONS[edition]["out"],
        noconfig=True,
        path_config=str(staging / "_config.yml"),
        confoverrides={"external_toc_path": str(staging / "_toc.yml"), "latex_individualpages": False},
        warningiserror=True,
        keep_going=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("edition", choices=list(EDITIONS))
    edition = parser.parse_args(argv).edition
    os.environ["FORWARD_PASS_BOOK"] = edition  # the kernels inherit it (see bookkit.explorer)
    try:
        staging = stage(edition)
    except (ValueError, RuntimeError) as err:
        print(f"The {edition} edition did not build: {err}", file=sys.stderr)
        return 1
    if build(edition, staging):
        print(f"The {edition} edition did not build: see the messages above.", file=sys.stderr)
        return 1
    # Sphinx copies the static folders only when some page is rebuilt: a change to the book's own
    # scripts and styles alone would not reach the built book (nor the browser tests).
    copy_tree(ROOT / "book" / "assets", EDITIONS[edition]["out"] / "_static")
    out = EDITIONS[edition]["out"].relative_to(ROOT)
    print(
        f"Open {out / 'index.html'}, or serve it (the live model on some pages needs http, not a file "
        f"opened from disk): python -m http.server -d {out} 8000, then http://localhost:8000"
        + (" (make serve does that)" if edition == "reader" else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
