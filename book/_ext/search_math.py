"""Sphinx extension: the search page loads MathJax, to typeset the math its results quote.

A result's summary is a passage of the page's text, where an equation is its TeX source (a reader
met "\\(\\sqrt{d_\\text{head}}\\)"). Sphinx loads MathJax only on pages with equations, which the
search page is not; ``book/assets/theme-fixes.js`` typesets each summary as it comes.
"""

import json


def add_mathjax(app, pagename, templatename, context, doctree):
    if pagename == "search":
        # as on the pages with equations: the book's settings (equations out of the Tab order), then MathJax
        app.add_js_file(None, body=f"window.MathJax = {json.dumps(app.config.mathjax3_config)}")
        app.add_js_file(app.config.mathjax_path, defer="defer")


def setup(app):
    app.connect("html-page-context", add_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
