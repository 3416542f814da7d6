"""The student's feedback page: their graded notebook as HTML, with no hidden-test code in it.

nbgrader's own feedback shows the test cells as they ran. Here every test cell shows its released
source (what the student saw), an error in a test cell shows only its last line (IPython's
traceback quotes the surrounding source), and the verdict is written under each test cell with a
summary at the top.

Pages work offline: MathJax comes from ``../_static/mathjax`` beside them (a copy of the book's,
made by ``grader.reports``), never from a CDN.

Each page carries a Content-Security-Policy (``POLICY``), a second wall behind the escaping: if
markup of a student's ever got through, the browser would still run no script and load nothing.
Scripts come only from files beside the page (``'self'``: MathJax and the parts its loader adds)
and from the one inline script, MathJax's configuration, allowed by its hash; inline event
handlers never run; images are ``data:`` URLs only (figures are embedded); fonts are MathJax's own
files; nothing can be fetched, framed, or posted. Styles are ``'unsafe-inline'`` because MathJax 3
writes its CSS into ``<style>`` elements it makes while typesetting, whose text depends on the
math on the page (no hash can be known ahead); CSS runs no code, and with nothing allowed to load
from elsewhere it has no way to send anything out.

The page is rendered here rather than with nbconvert's HTML exporter, which spends most of a
second per notebook on syntax highlighting, sanitizing and re-parsing its own output. Everything a
student controls is escaped: their markdown is rendered with raw HTML escaped, and outputs are
shown only as text or PNG/JPEG images. The grader's own notes among the outputs (a stream only the
grader names, ``outputs.GRADER_STREAM``) are shown apart, as notes: a student's print of the same
words is shown as an output.
"""

import base64
import hashlib
import html
import re

import mistune
from nbconvert.filters import markdown2html, strip_ansi

from .outputs import GRADER_STREAM
from .results import Row, test_cells

# Math is typeset wherever text shows it, a student's markdown and the error messages quoted in
# verdicts included, so the TeX that makes markup is off: the html extension (``\style``,
# ``\class``, ``\cssId``, ``\href``: a student's math covered the page with a forged score)
# is neither autoloaded nor loadable with ``\require`` (which loads nothing here), and the safe
# extension filters what any other command would put in a URL, a style, a class or an id.
MATHJAX_CONFIG = (
    'window.MathJax = { loader: { load: ["ui/safe"] }, tex: { inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], '
    "autoload: { html: [] }, require: { defaultAllow: false, allow: { html: false } } } };"
)


def _sha256(script: str) -> str:
    """The CSP source that allows exactly this inline script."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' {_sha256(MATHJAX_CONFIG)}",
        "style-src 'unsafe-inline'",
        "font-src 'self'",
        "img-src data:",
        "form-action 'none'",
        "base-uri 'none'",
    ]
)
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; overflow-wrap: break-word; }}
pre {{ background: #f6f8fa; padding: .6rem; white-space: pre-wrap; border-radius: 4px; }}
pre.output {{ background: #fff; border-left: 3px solid #ddd; max-height: 30rem; overflow-y: auto; }}
pre:focus-visible, .md:focus-visible {{ outline: 2px solid #1a73e8; }}
pre.error {{ background: #fff0f0; }}
.verdict {{ padding: .5rem .8rem; border-radius: 4px; margin: .5rem 0 1.5rem; }}
.full-marks {{ background: #e8f5e9; }} .short-of-full-marks {{ background: #fdecea; }}
.note {{ background: #fff8e1; padding: .5rem .8rem; border-radius: 4px; }}
nav {{ margin-bottom: 1rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }}
img {{ max-width: 100%; }}
.md, .wide {{ overflow-x: auto; }}
</style>
<script>{config}</script>
<script async src="{static}/mathjax/tex-mml-chtml.js"></script>
</head><body><main>
<h1>{title}</h1>
{header}
{body}
</main></body></html>
"""
MAX_MARKDOWN = 20_000  # characters of a student's markdown cell rendered as markdown
MARKDOWN_BUDGET = 60_000  # characters of students' markdown rendered as markdown on one page
TALL_LINES, TALL_CHARS = 20, 900  # an output that may not fit its 30rem box on a phone
MYST_OPEN = re.compile(r"^:::+\{(\w+)\}[ \t]*(.*)\n(?::\w+:.*\n)*", re.M)  # a directive, its options
MYST_CLOSE = re.compile(r"^:::+[ \t]*$", re.M)
CITE = re.compile(r"\{cite\}`([^`]+)`")
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
UNRUN = {"invalid_notebook", "error"}  # statuses of a notebook the grader could not run
UNRUN_ADVICE = (
    '<p class="note">Your notebook could not be graded as it was submitted, so no exercise was checked: '
    "make sure the file you submitted opens in Jupyter and is the assignment's notebook, then ask your "
    "instructor about submitting it again.</p>"
)
CHECK_ERRORS = {"CheckFailed", "NotWrittenYet"}  # grader.check's: their traceback is the message
student_markdown = mistune.create_markdown(escape=True, plugins=["strikethrough", "table"])


def render(nb, release_nb, rows: list[Row], title: str, header: str = "", late: tuple | None = None) -> str:
    """The feedback page of an autograded notebook (``release_nb``: the version students got);
    ``header``: HTML shown above the scores (the link to the student's index, a late penalty);
    ``late``: the days late, the points that cost and the score that counts (the report's), shown at
    the top."""
    released = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in release_nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id")
    }
    trusted = {cell.source for cell in release_nb.cells if cell.cell_type == "markdown"}
    verdicts = {row.exercise: row for row in rows}
    tests = {test.index: test.name for test in test_cells(nb)}
    body, budget = [_summary(rows, linked=True, late=late)], [MARKDOWN_BUDGET]
    for index, cell in enumerate(nb.cells):
        if index in tests:
            name = tests[index]
            body.append(_code(released.get(name, ""), _test_outputs(cell.outputs)))
            if name in verdicts:
                body.append(_verdict(verdicts[name]))
        elif cell.cell_type == "code":
            body.append(_code(cell.source, cell.outputs))
        elif cell.cell_type == "markdown":
            shown = (
                markdown2html(_myst(cell.source))
                if cell.source in trusted
                else _students(cell.source, budget)
            )
            body.append(_markdown(shown))
    return page(title, "\n".join(body), header)


def summary_page(title: str, rows: list[Row], header: str = "", late: tuple | None = None) -> str:
    """A page for a submission that could not be run (invalid notebook, nbgrader error): the
    scores, then each exercise's verdict."""
    advice = UNRUN_ADVICE if any(row.status in UNRUN for row in rows) else ""
    summary = _summary(rows, linked=False, late=late)
    return page(title, "\n".join([advice, summary, *map(_verdict, rows)]), header)


def page(title: str, body: str, header: str = "", static: str = "../_static") -> str:
    """A page of the feedback folder: ``body`` and ``header`` are HTML; MathJax is loaded from
    ``static`` (relative to the page), a copy of the book's that ``grader.reports`` puts there."""
    return PAGE.format(
        policy=POLICY,
        config=MATHJAX_CONFIG,
        title=html.escape(title),
        body=body,
        header=header,
        static=static,
    )


def _test_outputs(outputs: list) -> list[dict]:
    """What ``check`` showed, with errors as their last line."""
    return [
        {"output_type": "stream", "name": "stderr", "text": _error_text(out)}
        if out.output_type == "error"
        else out
        for out in outputs
    ]


def _error_text(out) -> str:
    """A check's message as the notebook shows it (its own lines); other errors as one line."""
    if out.ename in CHECK_ERRORS:
        return "\n".join(out.get("traceback", [])) or out.evalue
    return f"{out.ename}: {out.evalue}"


def _markdown(shown: str) -> str:
    """A rendered markdown cell in a box that scrolls sideways if it must (a wide table), which the
    keyboard can then focus."""
    focus = ' tabindex="0"' if "<table" in shown else ""
    return f'<div class="md"{focus}>{shown}</div>'


def _myst(source: str) -> str:
    """The chapter's markdown without the book's MyST syntax, which plain markdown shows as typed: an
    admonition's fences become its title in bold, a citation its key in brackets."""
    source = MYST_OPEN.sub(lambda m: f"\n**{m[2] or m[1].capitalize()}**\n\n", source)
    return CITE.sub(r"[\1]", MYST_CLOSE.sub("", source))


def _students(source: str, budget: list[int]) -> str:
    """A student's markdown cell, rendered while the page's ``budget`` of characters lasts (a
    one-item list, spent here); a very long cell, or any once the budget is spent, as plain text.
    The parser takes up to tens of microseconds a character on some inputs, and this runs in the
    process that keeps the whole class's results: a page costs it at most a few seconds."""
    if len(source) > MAX_MARKDOWN:
        return _pre(
            source[:MAX_MARKDOWN] + f"\n... {len(source) - MAX_MARKDOWN} characters cut ...", "output"
        )
    if len(source) > budget[0]:
        return _pre(source, "output")
    budget[0] -= len(source)
    return student_markdown(source)


def _code(source: str, outputs: list) -> str:
    return f'<pre class="input">{html.escape(source)}</pre>' + "".join(map(_output, outputs))


def _output(out) -> str:
    kind = out["output_type"]
    if kind == "stream" and out.get("name") == GRADER_STREAM:  # the grader's note: no kernel's output
        return f'<p class="note">{html.escape(out["text"].strip())}</p>'
    if kind == "stream":
        return _pre(out["text"], "output")
    if kind == "error":
        return _pre("\n".join(out["traceback"]), "output error")
    data = out.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            encoded = "".join(str(data[mime]).split())
            if not BASE64.fullmatch(encoded):  # not an image: the student's text, never markup
                return _pre(f"[an output claiming to be {mime} that is not base64 was left out]", "output")
            return f'<img alt="figure" src="data:{mime};base64,{encoded}">'
    return _pre(data["text/plain"], "output") if "text/plain" in data else ""


def _pre(text: str, css: str) -> str:
    """Text as it was printed, wrapped at the page's width; an output that may be taller than its
    box (it scrolls) can take the keyboard's focus, for the arrow keys to scroll it."""
    tall = text.count("\n") > TALL_LINES or len(text) > TALL_CHARS
    scrolls = ' tabindex="0"' if tall else ""
    return f'<pre class="{css}"{scrolls}>{html.escape(strip_ansi(text))}</pre>'


def _verdict(row: Row) -> str:
    """An exercise's line: ✔ for full marks and ✘ otherwise, whatever its status (an instructor's
    override may lower a graded exercise's score, or raise a wrong one's)."""
    mark, css = ("✔", "full-marks") if row.score >= row.max_score else ("✘", "short-of-full-marks")
    return (
        f'<div class="verdict {css}" id="{_anchor(row)}"><strong>{mark} {html.escape(row.exercise)}: '
        f"{row.score:g} / {row.max_score:g}</strong> ({_status(row)}): {html.escape(row.reason)}</div>"
    )


def _summary(rows: list[Row], linked: bool, late: tuple | None = None) -> str:
    """The score that counts (after a late penalty: ``late`` is the days late, the points it costs
    and the score after it, as the student's index and totals.csv give it), and a table of the exercises, each
    named with a link to its verdict (``linked``) or, on a page of verdicts alone, by name; the
    reasons are in the verdicts, which keeps the table three narrow columns that fit a phone."""
    total, out_of = sum(r.score for r in rows), sum(r.max_score for r in rows)
    days, penalty, final = late or (0, 0.0, total)
    score = f"<strong>Score: {final:g} / {out_of:g}</strong>"
    if penalty:
        score += (
            f" after the late penalty: {total:g} for the exercises below, less {penalty:g} "
            f"point{'s' * (penalty != 1)} for {days} day{'s' * (days != 1)} late"
        )
    lines = [f"<p>{score}</p>", "<table>"]
    lines.append("<tr><th>exercise</th><th>score</th><th>status</th></tr>")
    lines += [
        f"<tr><td>{_name(r, linked)}</td><td>{r.score:g}&nbsp;/&nbsp;{r.max_score:g}</td>"
        f"<td>{_status(r)}</td></tr>"
        for r in rows
    ]
    return "\n".join([*lines, "</table>"])


def _name(row: Row, linked: bool) -> str:
    name = html.escape(row.exercise)
    return f'<a href="#{_anchor(row)}">{name}</a>' if linked else name


def _anchor(row: Row) -> str:
    return html.escape(f"verdict-{row.exercise}")


def _status(row: Row) -> str:
    """The status in words (``not_attempted``: not attempted)."""
    return html.escape(row.status.replace("_", " "))
