"""Flow diagrams as HTML: a row of boxes joined by arrows, which wraps on a narrow screen.

A diagram drawn as an image shrinks with the column, and its text with it; on a phone the box
labels of a nine-inch figure end up a few pixels high. Boxes of real text keep the page's font
size at any width, can be searched and read aloud, and need no alt text. The styles are inline so
that the diagram looks the same in a notebook and in the book.
"""

import html
from dataclasses import dataclass

COLOURS = {"pass": "#dbe9f6", "outside": "#ececec", "residual": "#fbd9b0", "mlp": "#e0f0d6"}
BORDER = "#34495e"


@dataclass(frozen=True)
class Step:
    """One box: ``name`` in bold, ``detail`` under it, ``kind`` picks its colour (see COLOURS)."""

    name: str
    detail: str = ""
    kind: str = "pass"
    code: bool = False  # set the name in monospace (a trace name, say)


def flow(steps: list[Step], label: str, legend: dict[str, str] | None = None, loop: str = ""):
    """An HTML diagram of ``steps`` in order; ``label`` names it for screen readers.

    ``legend`` maps a kind to what its colour means; ``loop`` is a closing note with a return arrow
    (what happens after the last step).
    """
    from IPython.display import HTML

    boxes = []
    for i, step in enumerate(steps):
        name = f"<code>{html.escape(step.name)}</code>" if step.code else html.escape(step.name)
        detail = f'<br><span style="font-size:0.9em">{html.escape(step.detail)}</span>' if step.detail else ""
        arrow = "" if i == len(steps) - 1 else '<span aria-hidden="true" style="padding:0 0.3em">→</span>'
        boxes.append(
            '<li style="display:flex;align-items:center;margin:0.2em 0">'
            f'<span style="background:{COLOURS[step.kind]};color:#1b1b1b;border:1px solid {BORDER};'
            'border-radius:0.4em;padding:0.25em 0.55em;line-height:1.3">'
            f"<strong>{name}</strong>{detail}</span>{arrow}</li>"
        )
    parts = [
        f'<figure role="group" aria-label="{html.escape(label)}" style="margin:1em 0">',
        '<ol style="display:flex;flex-wrap:wrap;align-items:center;list-style:none;padding:0;margin:0">',
        *boxes,
        "</ol>",
    ]
    if loop:
        parts.append(f'<p style="margin:0.3em 0 0"><span aria-hidden="true">↺ </span>{html.escape(loop)}</p>')
    if legend:
        keys = "".join(
            f'<span style="white-space:nowrap;margin-right:1.2em"><span aria-hidden="true" style="display:'
            f"inline-block;width:0.9em;height:0.9em;background:{COLOURS[kind]};border:1px solid {BORDER};"
            f'vertical-align:-0.1em;margin-right:0.3em"></span>{html.escape(meaning)}</span>'
            for kind, meaning in legend.items()
        )
        parts.append(f'<p style="margin:0.3em 0 0;font-size:0.9em">{keys}</p>')
    parts.append("</figure>")
    return HTML("".join(parts))
