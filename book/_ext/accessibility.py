"""Sphinx extension: repairs to the HTML that Sphinx and its extensions write, for screen readers.

- A citation list (the bibliography) is written as ``<div role="list">`` holding entries of role
  ``doc-biblioentry``. ARIA lets a list hold only list items, and ``doc-biblioentry`` is
  deprecated (DPUB-ARIA 1.1), so assistive technology may announce an empty list. Each entry
  becomes a ``listitem``.

The theme's header buttons are repaired in the browser (``book/assets/theme-fixes.js``): they are
written by the theme's templates, not by the page body.
"""

BIBLIOENTRY = 'role="doc-biblioentry"'


def repair(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and BIBLIOENTRY in body:
        context["body"] = body.replace(BIBLIOENTRY, 'role="listitem"')


def setup(app):
    app.connect("html-page-context", repair)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
