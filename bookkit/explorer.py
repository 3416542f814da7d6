"""Figures with controls that work in a notebook and in the static web book alike.

A chapter describes such a figure once: its controls, each with a short list of options, and a
function from one choice of every control to what the figure shows for it.

- In a notebook, ``explore`` builds ipywidgets controls and calls the chapter's drawing function
  whenever one moves: the figure is drawn by the reader's own code, live.
- When the web book is built (``tools/editions.py`` sets ``FORWARD_PASS_BOOK``), a kernel's
  callbacks would be dead in the page. Instead ``explore`` computes every combination of options
  once, at build time, and writes them into the page as data; ``book/assets/explorer.js`` switches
  between them in the browser. There are few enough states (layers x heads x queries, a grid of
  temperatures) that precomputing all of them costs less than a second and a few hundred kB.

A state is a title and a list of panels (``Bars``, ``Html``, ``Text``). The title must name the
option of every control, so that what the page says always matches what its controls show:
``Explorer`` checks this for every state when it is built.
"""

import html
import itertools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

EDITION = os.environ.get("FORWARD_PASS_BOOK", "")
"""The edition of the web book being built ("reader", "class", "instructor"), or "" in a notebook."""


@dataclass(frozen=True)
class Control:
    """One control: ``name`` is the keyword its value is passed as, ``options`` (label, value)
    pairs, ``value`` the initial value, ``kind`` "slider" or "select"."""

    name: str
    options: tuple
    value: object
    kind: str
    label: str

    def __post_init__(self):
        if not self.options:
            raise ValueError(f"control {self.name!r} has no options")
        if self.value not in [v for _, v in self.options]:
            raise ValueError(f"control {self.name!r}: initial value {self.value!r} is not an option")

    @property
    def index(self) -> int:
        return [v for _, v in self.options].index(self.value)

    def widget(self):
        """The ipywidgets control for a live notebook."""
        import ipywidgets as widgets

        options = [(str(label), value) for label, value in self.options]
        if self.kind == "slider":
            return widgets.SelectionSlider(
                options=options, value=self.value, description=self.label, continuous_update=False
            )
        return widgets.Dropdown(options=options, value=self.value, description=self.label)


def Slider(name, values, value=None, label=None, fmt=str) -> Control:
    """A slider over ``values`` (labelled with ``fmt(value)``); starts at ``value`` or the first."""
    values = list(values)
    return Control(
        name,
        tuple((fmt(v), v) for v in values),
        values[0] if value is None else value,
        "slider",
        label or name,
    )


def Select(name, options, value=None, label=None) -> Control:
    """A drop-down over ``options``, (label, value) pairs; starts at ``value`` or the first."""
    options = tuple((str(lab), v) for lab, v in options)
    return Control(name, options, options[0][1] if value is None else value, "select", label or name)


@dataclass
class Bars:
    """A bar chart: one or more ``series`` of values over the same bars.

    ``series`` maps a legend name to values (the last series is drawn on top, narrower when there
    are two); ``labels`` name the bars (else ``ticks``: a few bar indices to number); ``highlight``
    is a bar index drawn in the accent colour; ``ymin``/``ymax`` fix the vertical range.
    """

    series: dict
    labels: Sequence[str] | None = None
    ticks: Sequence[int] | None = None
    highlight: int | None = None
    ymin: float = 0.0
    ymax: float | None = None
    xlabel: str = ""
    ylabel: str = ""

    def data(self) -> dict:
        values = {name: _numbers(v) for name, v in self.series.items()}
        top = self.ymax if self.ymax is not None else max(max(v) for v in values.values())
        return {
            "kind": "bars",
            "series": [{"name": name, "values": v} for name, v in values.items()],
            "labels": list(self.labels) if self.labels is not None else None,
            "ticks": list(self.ticks) if self.ticks is not None else None,
            "highlight": self.highlight,
            "ymin": float(self.ymin),
            "ymax": float(top),
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
        }


@dataclass
class Heatmap:
    """A matrix of values in colour, rows and columns labelled, with a colour bar.

    ``highlight_row`` outlines one row (a query, say); ``vmin``/``vmax`` fix the colour scale.
    """

    values: np.ndarray
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    vmin: float = 0.0
    vmax: float = 1.0
    highlight_row: int | None = None
    xlabel: str = ""
    ylabel: str = ""
    colorbar: str = ""

    def data(self) -> dict:
        values = np.asarray(self.values, dtype=np.float64)
        if values.shape != (len(self.row_labels), len(self.col_labels)):
            raise ValueError(f"a heatmap of shape {values.shape} needs one label per row and column")
        return {
            "kind": "heatmap",
            "values": [_numbers(row) for row in values],
            "rows": list(self.row_labels),
            "cols": list(self.col_labels),
            "vmin": float(self.vmin),
            "vmax": float(self.vmax),
            "highlight": self.highlight_row,
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
            "colorbar": self.colorbar,
        }


@dataclass
class Html:
    """A panel of ready-made HTML (tables, lists)."""

    html: str

    def data(self) -> dict:
        return {"kind": "html", "html": self.html}


@dataclass
class Text:
    """A panel of plain text, shown as it is (generated text, with its line breaks)."""

    text: str

    def data(self) -> dict:
        return {"kind": "html", "html": f'<pre class="fp-text">{html.escape(self.text)}</pre>'}


@dataclass
class State:
    """What the figure shows for one choice of every control."""

    title: str
    panels: list = field(default_factory=list)


def _numbers(values) -> list:
    """Floats rounded to 4 significant digits: the page needs no more, and stays small."""
    return [float(f"{x:.4g}") for x in np.asarray(values, dtype=np.float64).ravel()]


class Explorer:
    """Every state of a figure with controls, as the static page shows it.

    ``state(**values)`` returns a ``State`` for one value of each control; all combinations are
    computed here, once. The page stores each distinct panel once (a heatmap that depends on two
    controls of three is not repeated for every value of the third), and the fields that every
    panel at one position shares (a chart's bar labels, say) once for all of them. A panel's
    ``highlight`` is kept in the state, beside the panel's number (``[number, highlight]``): the
    attention of one head, outlined at each of its 46 queries, is stored once and not 46 times.
    """

    _count = itertools.count()

    def __init__(self, controls: Sequence[Control], state: Callable[..., State], caption: str = ""):
        self.controls = list(controls)
        self.caption = caption
        self.states, self.pool, self.shared = {}, [], []
        pooled = {}
        raw = {}
        for combination in itertools.product(*(range(len(c.options)) for c in self.controls)):
            values = {c.name: c.options[i][1] for c, i in zip(self.controls, combination, strict=True)}
            shown = state(**values)
            self._check_title(shown.title, combination)
            raw[",".join(map(str, combination))] = (shown.title, [panel.data() for panel in shown.panels])
        positions = {len(panels) for _, panels in raw.values()}
        if len(positions) != 1:
            raise ValueError("every state must have the same number of panels")
        for k in range(positions.pop()):
            panels = [panels[k] for _, panels in raw.values()]
            self.shared.append(
                {key: value for key, value in panels[0].items() if all(p.get(key) == value for p in panels)}
            )
        for key, (title, panels) in raw.items():
            refs = []
            for k, panel in enumerate(panels):
                own = {f: v for f, v in panel.items() if f not in self.shared[k]}
                marked = "highlight" in own
                highlight = own.pop("highlight", None)
                text = json.dumps(own, sort_keys=True)
                if text not in pooled:
                    pooled[text] = len(self.pool)
                    self.pool.append(own)
                refs.append([pooled[text], highlight] if marked else pooled[text])
            self.states[key] = {"title": title, "panels": refs}

    def _check_title(self, title: str, combination) -> None:
        for control, i in zip(self.controls, combination, strict=True):
            option = control.options[i][0]
            if option not in title:
                raise ValueError(
                    f"the title {title!r} does not name {control.label} = {option!r}: a page whose "
                    "controls and title disagree misleads its reader"
                )

    def data(self) -> dict:
        return {
            "controls": [
                {
                    "name": c.name,
                    "label": c.label,
                    "kind": c.kind,
                    "options": [str(label) for label, _ in c.options],
                    "index": c.index,
                }
                for c in self.controls
            ],
            "shared": self.shared,
            "pool": self.pool,
            "states": self.states,
            "caption": self.caption,
        }

    def _repr_html_(self) -> str:
        number = next(self._count)
        payload = json.dumps(self.data(), separators=(",", ":"), ensure_ascii=False)
        payload = payload.replace("</", "<\\/")  # never closes the <script> early
        first = self.states[",".join(str(c.index) for c in self.controls)]["title"]
        return (
            f'<div class="fp-explorer" id="fp-explorer-{number}">'
            f'<p class="fp-title">{html.escape(first)}</p>'
            '<p class="fp-noscript">This figure needs JavaScript to switch between its states.</p>'
            f'<script type="application/json" class="fp-data">{payload}</script></div>'
        )


def explore(
    controls: Sequence[Control], live: Callable, static: Callable[..., State], manual=False, caption=""
):
    """Show a figure with controls: live in a notebook, precomputed in the web book.

    ``live(**values)`` draws the figure in a notebook (with the reader's own functions);
    ``static(**values)`` returns the ``State`` the web page shows for the same values.
    ``manual`` adds a button in the notebook, for drawings that take a moment.
    """
    from IPython.display import display

    if EDITION:
        display(Explorer(controls, static, caption=caption))
        return None
    import ipywidgets as widgets

    run = widgets.interact_manual if manual else widgets.interact
    return run(live, **{c.name: c.widget() for c in controls})
