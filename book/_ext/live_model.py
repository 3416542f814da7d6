"""Sphinx extension: the pages that contain the live model load its script and stylesheet.

A page shows the live model where its source has ``<div class="fp-live">`` (raw HTML in a
markdown cell, see ``book/live/live.js``). ``make book`` copies the component and the model's
weights into ``book/_static/live/``; only the pages that show it load it (a script added during
``html-page-context`` belongs to that page alone).

Sphinx copies the static folders only when some page is rebuilt; after a build the live folder
is copied again, so a change to the component alone reaches the built book too.
"""

from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

MARKER = 'class="fp-live"'
FOLDER, SCRIPT, STYLESHEET = "live", "live/live.js", "live/live.css"


def live_folder(app) -> Path | None:
    """The ``live`` folder of the first static folder that has the component."""
    for path in app.config.html_static_path:
        if (Path(app.confdir, path) / SCRIPT).is_file():
            return Path(app.confdir, path, FOLDER)
    return None


def add_assets(app, pagename, templatename, context, doctree):
    if MARKER not in context.get("body", ""):
        return
    if live_folder(app) is None:
        raise ExtensionError(
            f"{pagename} shows the live model, but no html_static_path folder has {SCRIPT}: "
            "build the book with `make book`, which exports the model into book/_static/live/"
        )
    app.add_js_file(SCRIPT, type="module")
    app.add_css_file(STYLESHEET)


def refresh_assets(app, exception):
    folder = live_folder(app)
    if exception is None and app.builder.format == "html" and folder is not None:
        hidden = lambda path: Path(path).name.startswith(".")  # the Makefile's stamp
        copy_asset(folder, Path(app.outdir, "_static", FOLDER), excluded=hidden)


def setup(app):
    app.connect("html-page-context", add_assets)
    app.connect("build-finished", refresh_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
