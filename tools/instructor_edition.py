"""Build the instructor edition of the book: the student book with each chapter's solutions.

The book sources are copied into a staging folder, each chapter notebook is replaced by its
counterpart under ``solutions/`` with the hidden tests deleted and the solution markers removed,
solution cells are set to render collapsed, and the staging folder is built like the student
edition (``jupyter-book build -W --keep-going``) into ``_build/instructor/html``.

Usage: ``python tools/instructor_edition.py`` (or ``make book-instructor``)
"""

import shutil
import sys
from pathlib import Path

import nbformat
import yaml
from jupyter_book.sphinx import build_sphinx  # what `jupyter-book build` runs

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "_build" / "instructor-src"
OUT = ROOT / "_build" / "instructor" / "html"

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
ANNOUNCEMENT = "Instructor edition: it shows the solutions. Do not publish it to students."


def strip_source(source, where):
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


def instructor_notebook(nb, name):
    """Return ``nb`` as the instructor edition shows it (the input is not changed)."""
    nb = nbformat.from_dict(nb)
    for index, cell in enumerate(nb.cells):
        cell.source = strip_source(cell.source, f"{name}, cell {index}")
        if not cell.metadata.get("nbgrader", {}).get("solution", False):
            continue
        if cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
            cell.metadata.setdefault("mystnb", {}).update(
                code_prompt_show="Show solution", code_prompt_hide="Hide solution"
            )
        elif cell.cell_type == "markdown":
            cell.source = f"::::{{dropdown}} Model answer\n{cell.source}\n::::"
    return nb


def write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it, so that rebuilds stay incremental."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def copy_tree(src, dst, ignore=(), skip=()):
    """Copy files whose content changed, keeping modification times (for incremental builds).

    Paths with a part in ``ignore`` are not copied, nor are the relative paths in ``skip``.
    """
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel in skip or any(part in ignore for part in rel.parts):
            continue
        target = dst / rel
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def staged_config():
    """The student edition's ``_config.yml``, retitled, pointing at the repository's assets."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["title"] += " (instructor edition)"
    config.setdefault("html", {})["announcement"] = ANNOUNCEMENT
    sphinx_config = config["sphinx"]["config"]
    sphinx_config["html_static_path"] = [str(ROOT / path) for path in sphinx_config["html_static_path"]]
    return yaml.safe_dump(config, sort_keys=False)


def stage():
    """Write the instructor edition's sources into the staging folder."""
    write_if_changed(STAGE / "_config.yml", staged_config())
    write_if_changed(STAGE / "_toc.yml", (ROOT / "_toc.yml").read_text(encoding="utf-8"))
    copy_tree(ROOT / "book", STAGE / "book", ignore={"node_modules", "_static"})
    solutions = {
        path.relative_to(ROOT / "solutions")
        for path in (ROOT / "solutions").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    }
    copy_tree(ROOT / "chapters", STAGE / "chapters", ignore={".ipynb_checkpoints"}, skip=solutions)
    for rel in sorted(solutions):
        nb = nbformat.read(ROOT / "solutions" / rel, as_version=4)
        nb = instructor_notebook(nb, f"solutions/{rel}")
        write_if_changed(STAGE / "chapters" / rel, nbformat.writes(nb) + "\n")


def build():
    """Build the staged book, with warnings as errors, as the CLI would; return Sphinx's status."""
    return build_sphinx(
        STAGE,
        OUT,
        noconfig=True,
        path_config=str(STAGE / "_config.yml"),
        confoverrides={
            "external_toc_path": str(STAGE / "_toc.yml"),
            "latex_individualpages": False,
        },
        warningiserror=True,
        keep_going=True,
    )


def main():
    stage()
    if build():
        print("The instructor edition did not build: see the messages above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
