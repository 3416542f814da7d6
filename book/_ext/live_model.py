"""Sphinx extension: the pages that contain the live model load its script and stylesheet.

A page shows the live model where its source has ``<div class="fp-live">`` (raw HTML in a
markdown cell, see ``book/live/live.js``). ``make book`` copies the component and the model's
weights into ``book/_static/live/``; only the pages that show it load it (a script added during
``html-page-context`` belongs to that page alone).
"""

from pathlib import Path

from sphinx.errors import ExtensionError

MARKER = 'class="fp-live"'
SCRIPT, STYLESHEET = "live/live.js", "live/live.css"


def add_assets(app, pagename, templatename, context, doctree):
    if MARKER not in context.get("body", ""):
        return
    static = [Path(app.confdir, path) for path in app.config.html_static_path]
    if not any((folder / SCRIPT).is_file() for folder in static):
        raise ExtensionError(
            f"{pagename} shows the live model, but no html_static_path folder has {SCRIPT}: "
            "build the book with `make book`, which exports the model into book/_static/live/"
        )
    app.add_js_file(SCRIPT, type="module")
    app.add_css_file(STYLESHEET)


def setup(app):
    app.connect("html-page-context", add_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
