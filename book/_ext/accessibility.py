"""Sphinx extension: repairs to the HTML that Sphinx and its extensions write, for screen readers.

- A citation list (the bibliography) is written as ``<div role="list">`` holding entries of role
  ``doc-biblioentry``. ARIA lets a list hold only list items, and ``doc-biblioentry`` is
  deprecated (DPUB-ARIA 1.1), so assistive technology may announce an empty list. Each entry
  becomes a ``listitem``.
- A folded cell (myst-nb's ``hide-input``) opens with a ``<summary>`` that shows "Show solution"
  or "Show code cell source" but is named "Toggle hidden content" (WCAG 2.5.3, "label in name":
  a speech-control user says what they see). Without the label its name is what it shows.

The theme's header buttons are repaired in the browser (``book/assets/theme-fixes.js``): they are
written by the theme's templates, not by the page body.
"""

REPAIRS = {
    'role="doc-biblioentry"': 'role="listitem"',
    '<summary aria-label="Toggle hidden content">': "<summary>",
}


def repair(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body:
        for wrong, right in REPAIRS.items():
            body = body.replace(wrong, right)
        context["body"] = body


def setup(app):
    app.connect("html-page-context", repair)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
