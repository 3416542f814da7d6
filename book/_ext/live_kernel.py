"""Sphinx extension: a note under every notebook cell tagged ``live-kernel``.

Widgets in the book show the state saved at build time; their Python callbacks need a running
kernel. Tag such a cell ``live-kernel`` and the page says so, and points to the launch buttons.
"""

from docutils import nodes

TAG_CLASS = "tag_live-kernel"
TITLE = "Needs a live kernel"
MESSAGE = (
    "The output of this cell was saved when the book was built: moving its controls here changes "
    "nothing. To run it, open this page with a launch button (the rocket icon at the top)."
)


def add_notes(app, doctree):
    for cell in list(doctree.findall(nodes.container)):
        if TAG_CLASS in cell["classes"]:
            note = nodes.admonition(classes=["note", "live-kernel"])
            note += nodes.title(text=TITLE)
            note += nodes.paragraph(text=MESSAGE)
            cell += note


def setup(app):
    app.connect("doctree-read", add_notes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
