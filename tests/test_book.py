"""The web book: built from the repository, served on 127.0.0.1, opened in headless Chromium.

The session builds both editions with `make book` and `make book-instructor`. Both builds are
incremental and cache executed notebooks, so when the Makefile has just built the book they
take seconds, and the test never looks at a stale book.
"""

import contextlib
import functools
import importlib.util
import os
import queue
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urlsplit
from urllib.request import urlopen

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
INSTRUCTOR_HTML = ROOT / "_build" / "instructor" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSERS = min(2, os.cpu_count() or 1)
# Hidden tests (the grader's `record(` calls) and solution markers.
LEAKS = re.compile(r"BEGIN HIDDEN TESTS|\brecord\(|### (BEGIN|END) SOLUTION")
MISSING_WIDGET_STATE = re.compile(r"widget state (could )?not (be )?found", re.IGNORECASE)


def toc_pages():
    """Every page of the table of contents, as a path relative to the built book."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [chapter["file"] for chapter in part["chapters"]]
    return [f"{file}.html" for file in files]


PAGES = toc_pages()


def make(target):
    result = subprocess.run(["make", target], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        pytest.fail(f"`make {target}` failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")


@pytest.fixture(scope="session")
def book():
    make("book")
    return HTML


@pytest.fixture(scope="session")
def instructor_book():
    make("book-instructor")
    return INSTRUCTOR_HTML


@pytest.fixture(scope="session")
def site(book):
    """The student edition served over HTTP on 127.0.0.1; yields its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=book))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def chromium():
    """A browser context in a fresh headless Chromium (Playwright's sync API keeps to one thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.fixture(scope="session")
def browser_ready():
    if CHROMIUM is None:
        pytest.skip("No Chromium found on PATH (chromium, chromium-browser): browser tests skipped")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


@functools.cache
def fetch(url):
    """Status code and anchor ids (for an HTML page) of a URL on the local server."""
    try:
        with urlopen(url, timeout=10) as response:
            body = response.read()
            status = response.status
    except HTTPError as error:
        return error.code, frozenset()
    parser = _Anchors()
    if url.endswith((".html", "/")):
        parser.feed(body.decode("utf-8", errors="replace"))
    return status, frozenset(parser.ids)


def open_page(context, url):
    """Open ``url``; return the page and lists of console errors, failed and foreign requests."""
    page = context.new_page()
    errors, failed, foreign = [], [], []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda res: res.status >= 400 and failed.append(f"{res.url} ({res.status})"))

    def only_local(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route(re.compile(r"^https?://"), only_local)
    page.goto(url)
    return page, errors, failed, foreign


WAIT_FOR_MATHJAX = """() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise.then(() => true) : true"""

UNTYPESET_MATH = """els => els.filter(el => !el.querySelector('mjx-container'))
    .map(el => el.textContent.slice(0, 80))"""

UNRENDERED_WIDGETS = """() => [...document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')].filter(view => {
        const area = view.previousElementSibling;  // where the widget manager draws the view
        return !(area && area.querySelector('.jupyter-widgets'));
    }).length"""

BAD_IMAGES = """imgs => imgs.flatMap(img => {
    const where = img.getAttribute('src').slice(0, 80);
    const problems = [];
    if (!img.complete || img.naturalWidth === 0 || img.naturalHeight === 0)
        problems.push(`${where}: not loaded`);
    // Widget outputs are drawn in the browser from saved state: nothing can give them alt text.
    const alt = (img.getAttribute('alt') || '').trim();
    if (!img.closest('.jupyter-widgets') && (!alt || /\\.(png|jpe?g|gif|svg)$/i.test(alt)))
        problems.push(`${where}: alt text is ${JSON.stringify(alt)}`);
    return problems;
})"""


@dataclass
class Visit:
    """What a reader's browser met on one page."""

    errors: list
    failed: list
    foreign: list
    untypeset_math: list
    unrendered_widgets: int
    bad_images: list
    text: str
    hrefs: list
    has_icon: bool


def visit(context, url, screenshot):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page, errors, failed, foreign = open_page(context, url)
    try:
        page.evaluate(WAIT_FOR_MATHJAX)
        with contextlib.suppress(PlaywrightTimeout):  # then counted as unrendered
            page.wait_for_function(f"() => ({UNRENDERED_WIDGETS})() === 0", timeout=15_000)
        page.screenshot(path=screenshot, full_page=True)
        # So that what loads late (fonts, the favicon) is counted too.
        page.wait_for_load_state("networkidle")
        return Visit(
            errors,
            failed,
            foreign,
            page.eval_on_selector_all(".math", UNTYPESET_MATH),
            page.evaluate(UNRENDERED_WIDGETS),
            page.eval_on_selector_all("img", BAD_IMAGES),
            page.inner_text("body"),
            page.eval_on_selector_all("a[href], link[href]", "links => links.map(a => a.href)"),
            page.locator('link[rel="icon"]').count() > 0,
        )
    finally:
        page.close()


@pytest.fixture(scope="session")
def visits(browser_ready, site):
    """Every page of the table of contents, opened by two browsers side by side (2 cores)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    todo = queue.SimpleQueue()
    for path in PAGES:
        todo.put(path)
    seen = {}

    def work():
        with chromium() as context:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    seen[path] = visit(context, site + path, SCREENSHOTS / f"{Path(path).stem}.png")
                except Exception as error:  # reported by that page's test
                    seen[path] = error

    with ThreadPoolExecutor(BROWSERS) as pool:
        for future in [pool.submit(work) for _ in range(BROWSERS)]:
            future.result()
    return seen


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("path", PAGES)
def test_page(visits, site, path):
    seen = visits[path]
    if isinstance(seen, Exception):
        raise seen
    assert not seen.foreign, f"requests left 127.0.0.1: {seen.foreign}"
    assert not seen.failed, f"failed requests: {seen.failed}"
    assert not seen.errors, f"console errors: {seen.errors}"
    assert seen.untypeset_math == [], "math that MathJax did not typeset"
    assert seen.bad_images == []
    assert seen.unrendered_widgets == 0, "widget views that did not render"
    assert not MISSING_WIDGET_STATE.search(seen.text), "a widget's saved state is missing"
    assert "Traceback (most recent call last)" not in seen.text, "a raw Python traceback shows"
    # Without one, the browser asks for /favicon.ico on its own, after the page has loaded.
    assert seen.has_icon, "no <link rel=icon>"

    broken = []
    for href in seen.hrefs:
        target, anchor = urldefrag(href)
        if not target.startswith(site):
            continue
        status, ids = fetch(target)
        if status != 200:
            broken.append(f"{href} ({status})")
        elif anchor and target.endswith(".html") and anchor not in ids:
            broken.append(f"{href} (no such anchor)")
    assert not broken, f"broken internal links: {broken}"


@pytest.mark.slow
@pytest.mark.browser
def test_search_finds_a_chapter(browser_ready, book, site):
    chapter = PAGES[1]
    title = re.search(r"<h1[^>]*>([^<]*)", (book / chapter).read_text(encoding="utf-8"))[1]
    word = max(re.findall(r"[A-Za-z]+", title), key=len)
    with chromium() as context:
        page, errors, failed, foreign = open_page(context, f"{site}search.html?q={word}")
        page.wait_for_selector("#search-results li a", timeout=15_000)
        results = page.eval_on_selector_all(
            "#search-results li a", "links => links.map(a => a.getAttribute('href'))"
        )
    assert any(chapter in href for href in results), f"searching {word!r} found {results}"
    assert not (errors or failed or foreign), (errors, failed, foreign)


def published_files(html):
    """The pages and page sources a reader can download from a built edition."""
    pages = [p for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts]
    return pages + [p for p in (html / "_sources").rglob("*") if p.is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("edition", ["book", "instructor_book"])
def test_no_hidden_tests_or_solution_markers_are_published(request, edition):
    html = request.getfixturevalue(edition)
    files = published_files(html)
    assert any(p.suffix == ".ipynb" for p in files), f"no notebook sources under {html}"
    leaks = [
        str(p.relative_to(ROOT))
        for p in files
        if LEAKS.search(p.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not leaks, f"hidden tests or solution markers published in {leaks}"


@pytest.mark.slow
def test_api_reference_documents_every_public_name(book):
    import lib

    anchors = _Anchors()
    anchors.feed((book / "book" / "api.html").read_text(encoding="utf-8"))
    assert [name for name in lib.__all__ if f"lib.{name}" not in anchors.ids] == []


def load_instructor_edition():
    spec = importlib.util.spec_from_file_location(
        "instructor_edition", ROOT / "tools" / "instructor_edition.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_instructor_notebook_shows_solutions_folded_and_no_hidden_tests():
    solution = {"nbgrader": {"grade_id": "f-answer", "solution": True, "grade": False}}
    test = {"nbgrader": {"grade_id": "f", "solution": False, "grade": True, "points": 1}}
    nb = new_notebook(
        cells=[
            new_code_cell(
                "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", metadata=solution
            ),
            new_code_cell(
                "### BEGIN HIDDEN TESTS\nrecord('ch/f', f)\n### END HIDDEN TESTS\ncheck('ch/f', f)",
                metadata={**test, "tags": ["raises-exception"]},
            ),
            new_markdown_cell("Because the mask is causal.", metadata=solution),
        ]
    )
    before = nbformat.writes(nb)
    out = load_instructor_edition().instructor_notebook(nb, "test.ipynb")

    assert nbformat.writes(nb) == before, "the input notebook was changed"
    answer, check, written = out.cells
    assert answer.source == "def f():\n    return 1"
    assert answer.metadata.tags == ["hide-input"]
    assert answer.metadata.mystnb["code_prompt_show"] == "Show solution"
    assert check.source == "check('ch/f', f)"
    assert check.metadata.tags == ["raises-exception"]
    assert written.source.startswith("::::{dropdown}") and "Because" in written.source


def test_an_unclosed_hidden_test_region_is_an_error():
    nb = new_notebook(cells=[new_code_cell("### BEGIN HIDDEN TESTS\nrecord('ch/f', f)")])
    with pytest.raises(ValueError, match="never closed"):
        load_instructor_edition().instructor_notebook(nb, "test.ipynb")
