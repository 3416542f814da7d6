"""Clean a submitted notebook before nbgrader sees it: grading metadata is trusted only from the
released notebook.

A student controls every byte of the file, the metadata nbgrader grades by included. nbgrader
repairs some changes itself (points, checksums, the source of a locked cell) and stops on others,
leaving the whole notebook without grades: a test cell pasted twice or with emptied metadata
(``KeyError: 'grade_id'`` in ``add_missing_cells``), a test cell marked as a solution
(``Inconsistent checksums``). Here every cell of the submission is rebuilt from the release:

1. Matching. Each graded cell of the release (one with an nbgrader ``grade_id``: a test or an
   answer cell) is matched to one submitted cell, looked for in this order: the last cell whose
   nbgrader metadata names that grade id; else the last with the released cell's id (Jupyter keeps
   cell ids, so a cell whose metadata was emptied is found here); for a test, the last whose
   source is exactly the released one; for an answer cell, the last that defines exactly the same
   top-level names. The last, because that copy is the one in effect when the notebook runs top to
   bottom. A cell matches at most one graded cell.
2. A matched cell takes the released cell's type, id and whole metadata (nbgrader's, tags,
   editable): the points, flags and checksum in the submission count for nothing. A test (a
   locked cell) also takes the released source; an answer cell keeps the student's.
3. Every other cell is the student's own code or text and runs as written. Its nbgrader metadata
   is removed (not emptied, which nbgrader cannot read), so a pasted copy of a test, an invented
   grade id or invented points grade nothing.
4. A released test with no match is put back after the cell matched to the graded cell before it
   in the release (nbgrader's own re-adding fails when that one is missing too). A missing answer
   cell is not put back: its stub could only replace a definition the student wrote elsewhere.
5. The notebook's metadata (kernelspec, language) is the release's. Each cell is rebuilt with
   its type, id, metadata and source only: outputs and execution counts are cleared (the notebook
   is executed again), unknown fields dropped, a cell of an unknown type becomes a raw cell,
   markdown attachments over ``MAX_ATTACHMENT`` bytes are dropped, and those past the first
   ``MAX_ATTACHMENTS`` bytes of them, and every cell gets a valid, unique id (graded cells the
   released one): nbformat 4.5.

The file is read as a stream (``_read``) that skips what cleaning drops anyway: every cell's
outputs and the notebook's metadata but its kernel and language (saved widget state). What it
keeps is bounded too (``MAX_READ`` characters, ``MAX_VALUES`` JSON values), so that the memory a
submission takes does not follow its size: parsed whole, a file of many small values (``[],``
repeated) takes fifty times its size, and a 60 MB one took 3 GB and a minute. A notebook whose cells
(outputs aside) exceed ``MAX_CELLS`` or ``MAX_TEXT`` is refused, with its reason, before anything
else reads it: what nbgrader, the scorer, the gradebook and the feedback page carry is bounded by
what the release needs many times over, not by what the file holds.

What changed is returned as ``Change`` records. Those that would have moved points had nbgrader
trusted the submission (edited grading metadata, an invented grade id, a test turned into text)
are ``suspicious`` and belong in the integrity report; the others (a pasted copy, emptied
metadata, a deleted or edited test, which nbgrader would restore too, another kernel) are the
careless kind.
"""

import ast
import codecs
import contextlib
import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import ijson
import nbformat

from . import magics

MAX_ATTACHMENT = 2**20  # bytes of one markdown attachment (base64)
MAX_ATTACHMENTS = 4 * 2**20  # bytes of all of a notebook's attachments kept, in order
# What one notebook may carry besides its outputs (a chapter has about a hundred cells and 60,000
# characters): everything downstream (nbgrader, the scorer, the gradebook, the feedback page) is
# bounded by it, whatever the file held.
MAX_CELLS = 5_000
MAX_TEXT = 4 * 2**20  # characters of sources and metadata
# What reading a submission may take, outputs and the notebook's metadata skipped: sources,
# metadata and markdown attachments (pasted images: the first MAX_ATTACHMENTS bytes are kept).
MAX_READ = 64 * 2**20  # characters of strings
MAX_VALUES = 2_000_000  # JSON values and containers (a chapter has about 5,000)
MAX_EVENTS = 20_000_000  # JSON values and containers read, outputs included (a line of text is one)
MAX_NESTING = 64  # levels of what is read (a notebook has 6; outputs, which are not read, aside)
# Bytes read at a time: ijson keeps a chunk's events (about 100 bytes each) and copies a string
# once per chunk, so a smaller chunk costs a long string time and a larger one costs memory.
READ_BUFFER = 4 * 2**20
KEPT_METADATA = ("kernelspec", "language_info")  # of the notebook's metadata, what is read
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FLAGS = ("grade", "solution", "locked", "task", "points")
NEW_CELL = {
    "code": nbformat.v4.new_code_cell,
    "markdown": nbformat.v4.new_markdown_cell,
    "raw": nbformat.v4.new_raw_cell,
}
CELL_TYPES = tuple(NEW_CELL)


class NotANotebook(ValueError):
    """The file cannot be read as a notebook, even after cleaning."""


@dataclass(frozen=True)
class Change:
    cell: int  # index in the cleaned notebook
    grade_id: str  # the graded cell concerned, or ""
    what: str
    suspicious: bool = False


def clean_file(path: Path, released, target: Path) -> list[Change]:
    """Read the submission at ``path``, clean it against ``released`` and write it to ``target``."""
    if _blank(path):  # an upload that failed, a notebook never saved
        raise NotANotebook(
            f"not a valid notebook: the file is empty ({path.stat().st_size} bytes, all blank)"
        )
    try:
        nb = _read(path)
        too_big = _too_big(nb)
    except _TooBig as err:
        raise NotANotebook(f"not graded: {err}") from None
    except Exception as err:  # not UTF-8, not JSON, not a notebook: all the same to the student
        raise NotANotebook(f"not a valid notebook: {_first_line(err)}") from None
    if too_big:
        raise NotANotebook(f"not graded: {too_big}")
    try:
        cleaned, changes = clean(nb, released)
        nbformat.validate(cleaned)
        text = nbformat.writes(cleaned).encode("utf-8")  # a lone surrogate escape fails here
    except Exception as err:
        raise NotANotebook(f"not a valid notebook, even after cleaning: {_first_line(err)}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text)
    return changes


def _blank(path: Path) -> bool:
    """Whether the file at ``path`` holds nothing but white space (read only if it is small)."""
    return path.stat().st_size <= 4096 and not path.read_bytes().strip()


class _TooBig(ValueError):
    """The notebook holds more than ``MAX_READ`` or ``MAX_VALUES`` outside its outputs, or more
    than ``MAX_EVENTS`` values in all."""


def _read(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, read as nbformat reads it but as a stream, less the subtrees
    cleaning drops anyway (``_skipped``); raises ``_TooBig`` as soon as a limit is passed.

    The stream is ijson's ``basic_parse``, whose events carry no path: ``parse`` gave each event
    its whole dotted path, so a value nested ``d`` deep cost ``d`` paths of up to ``d`` parts, and
    a 110 kB notebook of nested brackets took 2 GB, a 2 MB one 24 GB (red team, ninth round).
    The path of the container being read is kept here, one part per level, and what is read is
    at most ``MAX_NESTING`` deep."""
    builder = ijson.ObjectBuilder()
    where: list[str] = []  # ijson's path of the open containers: a key, or "item" in an array
    arrays: list[bool] = []  # whether each open container is an array
    key = ""  # the key of the next value of the open object
    skipping = 0  # containers open in the value being skipped
    skip_next = False  # the next value is one cleaning drops
    characters = values = 0
    with path.open("rb") as file, _as_json_error():
        for events, (event, value) in enumerate(
            ijson.basic_parse(_as_utf8(file), READ_BUFFER, use_float=True)
        ):
            if events > MAX_EVENTS:
                raise _TooBig(f"the notebook holds more than {MAX_EVENTS:,} JSON values, outputs included")
            if skipping or skip_next:
                skipping += (event in STARTS) - (event in ENDS)
                skip_next = False
                continue
            if event == "map_key" and _skipped(where, value):
                skip_next = True
                continue
            values += 1
            characters += len(value) if isinstance(value, str) else 0
            if characters > MAX_READ or values > MAX_VALUES:
                raise _TooBig(
                    f"outside its outputs, the notebook holds more than {MAX_READ:,} characters or "
                    f"{MAX_VALUES:,} values (markdown attachments, such as pasted images, count)"
                )
            if event in STARTS:
                if len(arrays) >= MAX_NESTING:
                    raise _TooBig(f"the notebook nests values more than {MAX_NESTING} deep")
                if arrays:
                    where.append("item" if arrays[-1] else key)
                arrays.append(event == "start_array")
            elif event in ENDS:
                arrays.pop()
                if arrays:
                    where.pop()
            elif event == "map_key":
                key = value
            builder.event(event, value)
    return nbformat.reads(json.dumps(builder.value), as_version=4)


STARTS, ENDS = ("start_map", "start_array"), ("end_map", "end_array")


# Byte order marks some editors save a notebook with (Windows tools: UTF-16), longest first.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _as_utf8(file):
    """``file`` (binary, at its start) as UTF-8 bytes: one saved with a byte order mark (UTF-8,
    UTF-16 or UTF-32, as some editors save it) is decoded as it says, as it is read; one without
    is read as it is (nbformat's UTF-8)."""
    start = file.read(4)
    file.seek(0)
    encoding = next((name for bom, name in BOMS if start.startswith(bom)), None)
    if encoding is None:
        return file
    if encoding == "utf-8-sig":
        file.read(len(codecs.BOM_UTF8))
        return file
    return _Recoded(codecs.getreader(encoding)(file))


class _Recoded:
    """A text stream read as UTF-8 bytes (what ijson reads)."""

    def __init__(self, text):
        self.text = text

    def read(self, size: int = -1) -> bytes:
        return self.text.read(size).encode("utf-8", "surrogatepass")


@contextlib.contextmanager
def _as_json_error():
    """ijson's parse errors (bytes, with a picture of the place) as ``JSONDecodeError``'s words."""
    try:
        yield
    except ijson.JSONError as err:
        said = err.args[0] if err.args else ""
        said = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise ValueError(
            f"not JSON ({said.strip().splitlines()[0] if said.strip() else 'unreadable'})"
        ) from None


def _skipped(where: list[str], key: str) -> bool:
    """Whether the value at ``key`` of the object at ``where`` (ijson's path, one part a level) is
    left unread: a cell's outputs (nbformat 4 and 3 alike), the notebook's metadata but its kernel."""
    return (key == "outputs" and where[-2:] == ["cells", "item"]) or (
        where == ["metadata"] and key not in KEPT_METADATA
    )


def clean(nb, released) -> tuple[nbformat.NotebookNode, list[Change]]:
    """The submission ``nb`` as nbgrader should see it (see the module docstring)."""
    graded = {_grade_id(cell): cell for cell in released.cells if _grade_id(cell)}
    cells = [_plain(cell) for cell in nb.cells]
    dropped = _spend_attachment_budget(cells)
    matched = _match(cells, graded)
    owner = {index: grade_id for grade_id, index in matched.items()}
    rebuilt = []  # (cell, grade_id or "", [(what, suspicious)])
    for index, cell in enumerate(cells):
        grade_id = owner.get(index, "")
        notes = _notes(cell, graded.get(grade_id), graded)
        rebuilt.append(
            (_as_released(cell, graded[grade_id]) if grade_id else _as_students(cell), grade_id, notes)
        )
    _put_back_missing_tests(rebuilt, graded, matched)
    _unique_ids(rebuilt)
    notes = (
        [("the notebook's kernel and language are the release's", False)]
        if _other_kernel(nb, released)
        else []
    )
    if dropped:
        notes.append(
            (f"{dropped} markdown attachments past the first {MAX_ATTACHMENTS:,} bytes are left out", False)
        )
    cleaned = nbformat.v4.new_notebook(
        cells=[cell for cell, _, _ in rebuilt], metadata=copy.deepcopy(released.metadata)
    )
    cleaned.nbformat_minor = max(5, released.nbformat_minor)
    changes = [Change(0, "", what, suspicious) for what, suspicious in notes]
    changes += [
        Change(index, grade_id, what, suspicious)
        for index, (_, grade_id, cell_notes) in enumerate(rebuilt)
        for what, suspicious in cell_notes
    ]
    return cleaned, changes


# ---- cells ------------------------------------------------------------------------------------------


def _grade_id(cell) -> str:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else ""


def _is_test(cell) -> bool:
    """A locked cell, as nbgrader decides it (a test is a locked grade cell)."""
    meta = cell.metadata.get("nbgrader", {})
    return not meta.get("solution") and bool(meta.get("grade") or meta.get("locked"))


def _plain(cell):
    """A fresh cell of a known type with the cell's id, metadata and source and nothing else: no
    outputs, no unknown fields, no oversized attachment."""
    kind = cell.get("cell_type") if cell.get("cell_type") in CELL_TYPES else "raw"
    metadata = copy.deepcopy(cell["metadata"]) if isinstance(cell.get("metadata"), dict) else {}
    plain = NEW_CELL[kind](source=_text(cell.get("source")) or "", metadata=metadata)
    plain.id = _text(cell.get("id")) or ""  # made valid and unique by _unique_ids
    attachments = (
        cell.get("attachments") if kind != "code" and isinstance(cell.get("attachments"), dict) else {}
    )
    kept = {name: data for name, data in attachments.items() if len(str(data)) <= MAX_ATTACHMENT}
    if kept:
        plain.attachments = copy.deepcopy(kept)
    return plain


def _spend_attachment_budget(cells: list) -> int:
    """Keep attachments in notebook order while ``MAX_ATTACHMENTS`` lasts; how many were dropped."""
    spent, dropped = 0, 0
    for cell in cells:
        for name, data in list(cell.get("attachments", {}).items()):
            spent += len(str(data))
            if spent > MAX_ATTACHMENTS:
                del cell.attachments[name]
                dropped += 1
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
    return dropped


def _too_big(nb) -> str | None:
    """Why the notebook is more than any grader should carry (its outputs and its own metadata,
    such as saved widget state, are dropped anyway and do not count), or ``None``."""
    if len(nb.cells) > MAX_CELLS:
        return f"the notebook has {len(nb.cells):,} cells, more than the {MAX_CELLS:,} one may have"
    text = sum(
        len(_text(cell.get("source")) or "") + len(json.dumps(cell.get("metadata", {}), default=str))
        for cell in nb.cells
    )
    if text > MAX_TEXT:
        return (
            f"its cells hold {text:,} characters of source and metadata, more than the {MAX_TEXT:,} "
            "a notebook may have (outputs do not count)"
        )
    return None


def _match(cells: list, graded: dict) -> dict[str, int]:
    """Released grade id -> index of the submitted cell that is its instance (rule 1)."""
    budget = magics.Budget()  # what reading the submitted cells' IPython syntax may cost
    tiers = (  # (what identifies a submitted cell, what identifies a released one, or None)
        (_grade_id, _grade_id),
        (lambda cell: _text(cell.get("id")), lambda released: released.get("id")),
        (
            lambda cell: _text(cell.get("source")),
            lambda released: released.source if _is_test(released) else None,
        ),
        (
            lambda cell: _defines(cell, budget),
            lambda released: None if _is_test(released) else _defines(released),
        ),
    )
    matched: dict[str, int] = {}
    for submitted_key, released_key in tiers:
        wanted: dict = {}
        for grade_id, released in graded.items():
            key = released_key(released) if grade_id not in matched else None
            if key:
                wanted.setdefault(key, grade_id)
        if not wanted:
            continue
        taken = set(matched.values())
        last = {}
        for index, cell in enumerate(cells):
            if index not in taken and (key := submitted_key(cell)) and key in wanted:
                last[key] = index
        matched.update({wanted[key]: index for key, index in last.items()})
    return matched


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _defines(cell, budget: magics.Budget | None = None) -> frozenset[str]:
    """The names a code cell binds at its top level (functions, classes, assignments);
    ``budget``: the notebook's (``grader.magics``)."""
    if cell.cell_type != "code":
        return frozenset()
    try:
        tree = ast.parse(magics.python(cell.source, budget))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    names = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return frozenset(names)


def _as_released(cell, released):
    """Rule 2: the released cell, with the student's source if it is an answer cell."""
    rebuilt = _plain(released)
    if not _is_test(released):
        rebuilt.source = cell.source
    return rebuilt


def _as_students(cell):
    """Rule 3: the cell without grading metadata."""
    cell.metadata.pop("nbgrader", None)
    return cell


def _notes(cell, released, graded: dict) -> list[tuple[str, bool]]:
    """(what changed, suspicious) for one submitted cell; ``released`` is its match, if any."""
    meta = cell.metadata.get("nbgrader")
    claimed = _grade_id(cell)
    if released is None:
        if claimed in graded:
            return [(f"a second copy of the graded cell {claimed!r} runs as the student's own code", False)]
        if claimed or (isinstance(meta, dict) and any(meta.get(flag) for flag in FLAGS)):
            what = f"grading metadata that the release does not have ({_describe(meta)}) is ignored"
            return [(what, True)]
        return [("empty grading metadata is removed", False)] if meta is not None else []
    notes = []
    if not claimed:
        notes.append(("its grading metadata was missing or emptied and is restored", False))
    else:
        edited = [
            f"{flag} {meta.get(flag)!r} instead of {released.metadata.nbgrader.get(flag)!r}"
            for flag in FLAGS
            if meta.get(flag, False) != released.metadata.nbgrader.get(flag, False)
        ]
        if edited:
            notes.append(
                (f"its grading metadata was edited ({', '.join(edited)}); the release's is used", True)
            )
    if cell.cell_type != released.cell_type:
        notes.append(
            (f"it was turned into a {cell.cell_type} cell and is a {released.cell_type} cell again", True)
        )
    if _is_test(released) and cell.source != released.source:
        notes.append(("the test was edited; the released test runs instead", False))
    return notes


def _describe(meta) -> str:
    if not isinstance(meta, dict):
        return repr(meta)[:100]
    return ", ".join(f"{key}={meta[key]!r}" for key in ("grade_id", *FLAGS) if key in meta)[:200]


def _put_back_missing_tests(rebuilt: list, graded: dict, matched: dict) -> None:
    """Rule 4, in place."""
    order = list(graded)
    for position, grade_id in enumerate(order):
        released = graded[grade_id]
        if grade_id in matched or not (_is_test(released) and released.metadata.nbgrader.get("grade")):
            continue
        placed = [entry[1] for entry in rebuilt]
        before = [g for g in order[:position] if g in placed]
        after = [g for g in order[position + 1 :] if g in placed]
        if before:
            where = placed.index(before[-1]) + 1
        else:
            where = placed.index(after[0]) if after else len(rebuilt)
        rebuilt.insert(where, (_plain(released), grade_id, [("the test was missing and is put back", False)]))


def _unique_ids(rebuilt: list) -> None:
    """Every cell a valid id no other cell has; graded cells keep the released one."""
    used = {cell.id for cell, grade_id, _ in rebuilt if grade_id}
    for index, (cell, grade_id, _) in enumerate(rebuilt):
        if grade_id:
            continue
        if not (isinstance(cell.get("id"), str) and CELL_ID.match(cell.id)) or cell.id in used:
            cell.id = _fresh_id(index, used)
        used.add(cell.id)


def _fresh_id(index: int, used: set[str]) -> str:
    candidate, n = f"cell-{index}", 0
    while candidate in used:
        n += 1
        candidate = f"cell-{index}-{n}"
    return candidate


def _other_kernel(nb, released) -> bool:
    return nb.metadata.get("kernelspec") != released.metadata.get("kernelspec")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"
