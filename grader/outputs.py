"""Cap the outputs of an executed notebook before it is stored (``OUT/autograded/``) or rendered
(the feedback page).

A student's cell may print 500 MB or display a huge image; kept whole it would be stored twice,
in the autograded notebook and in the page. nbgrader's ``LimitOutput`` counts lines, so one long
line passes it. Here each output is measured in bytes:

- text (a stream, an error's message and traceback, a ``text/plain`` representation) over
  ``MAX_TEXT`` bytes keeps its first and last ``MAX_TEXT / 2`` bytes around a line
  ``... N bytes cut ...``;
- an image over ``MAX_IMAGE`` bytes, and any other representation (HTML, markdown, JSON, a
  widget: cut, they would be broken) over ``MAX_TEXT``, is dropped, and a ``text/plain`` note
  says what was there;
- output metadata over ``MAX_TEXT`` bytes is emptied;
- a cell keeps its first and last ``MAX_OUTPUTS / 2`` outputs, with a note for those between.
"""

import json

from nbformat.v4 import new_output

# The stream name of the grader's own notes in a notebook's outputs. A kernel's streams are named
# stdout or stderr (``execute.ResilientExecute.output`` renames any other as it arrives): only the
# grader's notes carry this name, and the feedback page shows them as the grader's, apart from
# every output the student's code made (which could print "[grader: ...]" as well).
GRADER_STREAM = "grader"
KERNEL_STREAMS = ("stdout", "stderr")


def note(text: str):
    """A note of the grader's, as an output."""
    return new_output("stream", name=GRADER_STREAM, text=f"[grader: {text}]\n")


MAX_TEXT = 64 * 2**10
MAX_IMAGE = 2**20
MAX_OUTPUTS = 100


def capped(nb):
    """``nb`` with every output capped (in place), returned for convenience."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [_output(out) for out in _fewer(cell.get("outputs", []))]
    return nb


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` if it has at most ``limit`` bytes, else its head and tail around a note."""
    if len(text) * 4 <= limit:  # a UTF-8 character has at most 4 bytes
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    head = data[: limit // 2].decode("utf-8", "ignore")
    tail = data[-(limit // 2) :].decode("utf-8", "ignore")
    removed = (
        len(data) - len(head.encode("utf-8", "surrogatepass")) - len(tail.encode("utf-8", "surrogatepass"))
    )
    return f"{head}\n... {removed} bytes cut ...\n{tail}"


def _fewer(outputs: list) -> list:
    if len(outputs) <= MAX_OUTPUTS:
        return outputs
    half = MAX_OUTPUTS // 2
    note = new_output("stream", name=GRADER_STREAM, text=f"... {len(outputs) - 2 * half} outputs cut ...\n")
    return [*outputs[:half], note, *outputs[-half:]]


def _output(out):
    kind = out.get("output_type")
    if kind == "stream":
        out.text = cut(str(out.get("text", "")))
    elif kind == "error":
        out.ename, out.evalue = cut(str(out.get("ename", "")), 200), cut(str(out.get("evalue", "")))
        out.traceback = cut("\n".join(map(str, out.get("traceback", [])))).split("\n")
    elif kind in ("display_data", "execute_result"):
        out.data = _data(out.get("data", {}))
    if "metadata" in out and _size(out.metadata) > MAX_TEXT:
        out.metadata = {}
    return out


def _data(data: dict) -> dict:
    kept, notes = {}, []
    for mime, value in data.items():
        size = _size(value)
        if mime == "text/plain" and isinstance(value, str):
            kept[mime] = cut(value)
        elif size <= (MAX_IMAGE if mime.startswith("image/") else MAX_TEXT):
            kept[mime] = value
        else:
            notes.append(f"[{mime} of {size} bytes dropped]")
    if notes:
        kept["text/plain"] = "\n".join(filter(None, [kept.get("text/plain", ""), *notes]))
    return kept


def _size(value) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
