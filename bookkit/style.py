"""How the chapters draw their figures: SVG, with text sized for a phone.

A figure in the book is scaled to the width of the column. On a 390-pixel phone the column is
about 350 pixels wide, so a figure drawn 5.5 inches (396 points) wide is shown at 0.9 of its
size; text of 10 points then reads as about 9 pixels. The defaults below keep every figure at most
``MAX_WIDTH`` inches wide with text of at least ``MIN_FONT`` points, and ``tests/test_book.py``
measures the result in a browser at 390 pixels.

SVG keeps lines and text sharp at any zoom, and with ``svg.fonttype: none`` the text stays text:
searchable, selectable, and measurable by the book's tests.
"""

import matplotlib as mpl

MAX_WIDTH = 5.5  # inches
MIN_FONT = 10  # points

RC = {
    "figure.figsize": (MAX_WIDTH, 3.4),
    "figure.dpi": 100,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": MIN_FONT,
    "ytick.labelsize": MIN_FONT,
    "legend.fontsize": MIN_FONT,
    "figure.titlesize": 11,
    # Text stays text; the SVG names DejaVu Sans (which matplotlib measured it with) and then the
    # rest of rcParams["font.sans-serif"], down to the browser's own sans-serif.
    "svg.fonttype": "none",
}


def use() -> None:
    """Apply the book's figure defaults in this kernel, and have inline figures drawn as SVG."""
    mpl.rcParams.update(RC)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # not in a kernel: nothing is drawn inline
        return
    set_matplotlib_formats("svg")
