"""The web book in its three editions: built from the repository, served on 127.0.0.1, opened in
headless Chromium at a desktop width (1280 px) and a phone width (390 px).

The session builds the editions with `make book`, `make book-class` and `make book-instructor`.
The builds are incremental and cache executed notebooks, so when the Makefile has just built the
books they take seconds, and the test never looks at a stale book.

Every page of every edition is opened once per width it is read at (``WIDTHS``: the other editions'
at desktop width, the reader's at both) and what a reader meets is recorded (console
errors, requests, math, images, axe-core's accessibility findings, what overflows the column);
the tests below then judge the records. A page that another edition shares with the reader
edition, byte for byte but for the edition's title and announcement, is opened in the reader
edition only (``as_in_reader``). Widgets, the menu and the keyboard are driven separately.
axe-core comes from npm through book/package.json and is injected from disk: nothing is fetched.
"""

import contextlib
import copy
import functools
import html as html_lib
import importlib.util
import json
import os
import queue
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.request import urlopen

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
# Pictures of the pages for people to look at (the reader edition's at phone width, the live
# model's), taken when ``FP_SCREENSHOTS`` is set: ``FP_SCREENSHOTS=1 make test``. No test reads them,
# and a long chapter's picture costs seconds.
SCREENSHOTS = ROOT / "_build" / "screenshots" if os.environ.get("FP_SCREENSHOTS") else None
AXE = ROOT / "book" / "node_modules" / "axe-core" / "axe.min.js"
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
# Playwright's waits are a safety net against a page that never gets there, not a speed test: on a
# machine busy with other work a long page takes its time.
PATIENCE_MS = 240_000
DESKTOP, PHONE, TABLET = 1280, 390, 800
SMALL_PHONE = 320  # the narrowest phones still in use
# Text in a figure shown at phone width must be at least this many CSS pixels high.
MIN_FIGURE_TEXT_PX = 8.0

HTML = ROOT / "_build" / "html"  # the reader edition, `make book`
EDITIONS = {
    "reader": ("book", HTML),
    "class": ("book-class", ROOT / "_build" / "class" / "html"),
    "instructor": ("book-instructor", ROOT / "_build" / "instructor" / "html"),
}
# The widths each edition's pages are visited at. On a phone, the reader edition's pages cover the
# theme and each kind of content the others show: the class edition's chapters are the reader's
# cells less the examples and solutions, plus the checks, code cells like the reader's (their
# markup, state data and scripts of the figures with controls are checked to be the reader's,
# byte for byte); the instructor edition, the teaching team's, read at a desk, adds notes like the
# reader's (the hidden cases, a concept's key).
WIDTHS = {"reader": (DESKTOP, PHONE), "class": (DESKTOP,), "instructor": (DESKTOP,)}
# Hidden tests (the grader's `record(` calls) and solution markers.
LEAKS = re.compile(r"BEGIN HIDDEN TESTS|\brecord\(|### (BEGIN|END) SOLUTION")
MISSING_WIDGET_STATE = re.compile(r"widget state (could )?not (be )?found", re.IGNORECASE)
# What a reader must never meet in a cell's output: a traceback, or a stub's or a check's
# complaint (error and stderr outputs are found by their class, see CellOutputs).
# (Outputs that print an error on purpose, such as chapter 1's unknown character, are text.)
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|is not written yet|not answered yet")


def toc_pages():
    """Every page of the table of contents, as a path relative to the built book."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [chapter["file"] for chapter in part["chapters"]]
    return [f"{file}.html" for file in files]


PAGES = toc_pages()
CHAPTERS = [p for p in PAGES if p.startswith("chapters/")]


def all_pages(html: Path) -> list[str]:
    """Every HTML page of a built edition: the table of contents, the API's source pages, the
    indexes and the search page (not the root index.html, a redirect to the first page)."""
    pages = []
    for path in html.rglob("*.html"):
        rel = path.relative_to(html)
        if "_static" not in rel.parts and rel.as_posix() != "index.html":
            pages.append(rel.as_posix())
    return sorted(pages)


def make(target):
    result = subprocess.run(["make", target], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        pytest.fail(f"`make {target}` failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")


@functools.cache
def built(edition: str) -> Path:
    target, html = EDITIONS[edition]
    make(target)
    return html


@pytest.fixture(scope="session")
def book():
    return built("reader")


@pytest.fixture(scope="session")
def class_book():
    return built("class")


@pytest.fixture(scope="session")
def instructor_book():
    return built("instructor")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def sites():
    """``sites(edition)``: the base URL of that edition, built and served on 127.0.0.1."""
    servers = {}

    def serve(edition):
        if edition not in servers:
            html = built(edition)
            server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=html))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers[edition] = server
        return f"http://127.0.0.1:{servers[edition].server_port}/"

    yield serve
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def site(sites):
    return sites("reader")


@contextlib.contextmanager
def chromium(width=DESKTOP):
    """A browser context in a fresh headless Chromium (Playwright's sync API keeps to one thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield new_context(browser, width)
        finally:
            browser.close()


def new_context(browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(PATIENCE_MS)
    return context


@pytest.fixture(scope="session")
def browser_ready():
    if CHROMIUM is None:
        pytest.skip("No Chromium found on PATH (chromium, chromium-browser): browser tests skipped")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    if not AXE.is_file():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run `make book-assets`")


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
    page.evaluate(WAIT_FOR_MATHJAX)
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
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || /\\.(png|jpe?g|gif|svg)$/i.test(alt))
        problems.push(`${where}: alt text is ${JSON.stringify(alt)}`);
    return problems;
})"""

# The rules axe-core runs by default (enabled, neither experimental nor deprecated) that can report
# a serious or critical violation. A rule's violation takes the impact of the worst of its checks
# that failed, and each check's impact is fixed in axe's own metadata; rules whose checks are all
# moderate or minor (landmarks, heading order, regions...: about a quarter of axe's time on a long
# chapter) could never fail these tests, so they are not run.
SERIOUS_RULES = """() => {
    const order = ['minor', 'moderate', 'serious', 'critical'];
    const impact = id => order.indexOf((axe._audit.data.checks[id] || {}).impact);
    const byDefault = rule => rule.enabled !== false
        && !rule.tags.some(tag => tag === 'experimental' || tag === 'deprecated');
    return axe._audit.rules.filter(rule => byDefault(rule) && [...rule.all, ...rule.any, ...rule.none]
        .some(check => impact(typeof check === 'string' ? check : check.id) >= 2)).map(rule => rule.id);
}"""

# axe-core's serious and critical violations, in the whole page or in the elements ``root`` selects;
# ``skip``: rules not run. Colour contrast is about half of axe's time on a long chapter, and the
# theme's colours change neither with the width nor with the edition (whose pages show the
# reader's kinds of content, less some), so it runs on the reader edition at desktop width only,
# in light and dark mode (``visits``).
# Text exactly as light as its background is "incomplete" to axe (it could be hidden on purpose);
# here it is a failure, as it was for the captions of chapter 5's tables in dark mode.
AXE_RUN = """async ([skip, root]) => {
    const rules = (SERIOUS_RULES)().filter(id => !skip.includes(id));
    const result = await axe.run(root ? [...document.querySelectorAll(root)] : document,
                                 {runOnly: {type: 'rule', values: rules}});
    const invisible = result.incomplete.filter(v => v.id === 'color-contrast').map(v => ({...v,
        impact: 'serious', nodes: v.nodes.filter(n => n.any.some(c => (c.data || {}).messageKey === 'equalRatio'))}));
    return [...result.violations, ...invisible]
        .filter(v => (v.impact === 'serious' || v.impact === 'critical') && v.nodes.length)
        .map(v => `${v.impact} ${v.id} (${v.nodes.length}): ` +
             v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}""".replace("SERIOUS_RULES", SERIOUS_RULES)
# The theme in dark mode, for the HTML outputs: the theme shows them on a light box of their own,
# where its dark-mode colours can meet them. Colour contrast only.
DARK = "document.documentElement.dataset.theme = 'dark'; document.documentElement.dataset.mode = 'dark'"

# Code that wraps without showing it: a wrapped line goes on no further in than the line's own text
# begins, where it looks like a line of its own (an exercise's "Task:" line went on at column 0,
# next to the docstring's own lines indented by 8). A code block whose lines are not boxes of their
# own (theme-fixes.js) is judged as a whole: it wraps if it shows more lines than it has.
FLAT_WRAPS = """pre => {
    const rects = el => {
        const range = document.createRange();
        range.selectNodeContents(el);
        return [...range.getClientRects()].filter(r => r.width > 0);
    };
    const row = r => Math.round(r.top / 4);
    if (!pre.querySelector('.fp-line'))
        return new Set(rects(pre).map(row)).size > pre.textContent.split('\\n').filter(l => l.length).length;
    return [...pre.querySelectorAll('.fp-line')].some(line => {
        const boxes = rects(line);
        const first = Math.min(...boxes.map(row));
        const onward = boxes.filter(r => row(r) > first);
        if (!onward.length) return false;
        const range = document.createRange();
        const node = document.createTreeWalker(line, NodeFilter.SHOW_TEXT).nextNode();
        range.setStart(node, 0);
        range.setEnd(node, 1);
        const ch = range.getBoundingClientRect().width;
        const textStarts = line.getBoundingClientRect().left + /^ */.exec(line.textContent)[0].length * ch;
        return Math.min(...onward.map(r => r.left)) < textStarts + ch / 2;
    });
}"""

# Code that shows fewer rows than it has lines: its lines run together side by side (the line boxes
# of FLAT_WRAPS, inline blocks, did that in every printed output that does not wrap on a phone).
RUN_TOGETHER = """pre => {
    const range = document.createRange();
    range.selectNodeContents(pre);
    const rows = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top / 4)));
    return rows.size < pre.textContent.split('\\n').filter(l => l.length).length;
}"""

# What is wider than the column: the page itself, display equations, code and cells' HTML
# outputs (a table) that scroll without showing it, inline equations that stick out of their paragraph, code
# cells that scroll sideways; the row labels of printed tables broken over two lines.
OVERFLOW = """() => {
    const article = document.querySelector('article.bd-article') || document.body;
    const right = article.getBoundingClientRect().right;
    const text = el => el.textContent.replace(/\\s+/g, ' ').trim().slice(0, 60);
    return {
        page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        hiddenMath: [...document.querySelectorAll('div.math, div.math mjx-container')]
            .filter(m => m.scrollWidth > m.clientWidth + 1 && !m.classList.contains('fp-scrolls')).map(text),
        scrollingMath: [...document.querySelectorAll('div.math .fp-scrolls')].map(text),
        hiddenOutputs: [...article.querySelectorAll('.cell_output .output.text_html')]
            .filter(o => o.scrollWidth > o.clientWidth + 1 && !o.classList.contains('fp-scrolls')).map(text),
        brokenLabels: [...article.querySelectorAll('.cell_output .text_html tbody th')].filter(th => {
            const range = document.createRange();
            range.selectNodeContents(th);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
        }).map(text),
        inlineMath: [...document.querySelectorAll('span.math mjx-container')]
            .filter(m => m.getBoundingClientRect().right > right + 1).map(text),
        scrollingCode: [...article.querySelectorAll('pre')]
            .filter(p => p.scrollWidth > p.clientWidth + 1).map(text),
        hiddenCode: [...article.querySelectorAll('pre')]
            .filter(p => p.scrollWidth > p.clientWidth + 1 && !p.classList.contains('fp-scrolls')).map(text),
        flatWraps: [...article.querySelectorAll('div.highlight pre')].filter(FLAT_WRAPS).map(text),
        runTogether: [...article.querySelectorAll('div.highlight pre')].filter(RUN_TOGETHER).map(text),
    };
}""".replace("FLAT_WRAPS", FLAT_WRAPS).replace("RUN_TOGETHER", RUN_TOGETHER)

# The smallest text in each SVG figure, in CSS pixels as shown: the font size in the figure's own
# units times the scale at which the image is drawn.
FIGURE_TEXT = """async () => {
    const sizes = [];
    for (const img of document.querySelectorAll('img[src$=".svg"]')) {
        const svg = new DOMParser().parseFromString(await (await fetch(img.src)).text(), 'image/svg+xml')
            .documentElement;
        const box = svg.viewBox.baseVal;
        const width = box && box.width ? box.width : parseFloat(svg.getAttribute('width'));
        const fonts = [...svg.querySelectorAll('text')].map(t => {
            const found = /font-size:\\s*([\\d.]+)px/.exec(t.getAttribute('style') || '');
            return found ? parseFloat(found[1]) : NaN;
        }).filter(x => !isNaN(x));
        if (fonts.length)
            sizes.push([img.getAttribute('src'), Math.min(...fonts) * img.clientWidth / width]);
    }
    return sizes;
}"""


@dataclass
class Visit:
    """What a reader's browser met on one page at one width."""

    errors: list
    failed: list
    foreign: list
    untypeset_math: list
    unrendered_widgets: int
    bad_images: list
    text: str
    hrefs: list
    has_icon: bool
    axe: list
    overflow: dict
    figure_text: list = field(default_factory=list)


def visit(context, url, screenshot=None, contrast=True, dark=False, own=None):
    """What a reader meets on ``url``; axe-core runs on the whole page, or with ``own`` (the
    indices of the page's blocks that the reader edition's page lacks, ``own_blocks``) on those
    blocks and the header's announcement only."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page, errors, failed, foreign = open_page(context, url)
    try:
        with contextlib.suppress(PlaywrightTimeout):  # then counted as unrendered
            page.wait_for_function(f"() => ({UNRENDERED_WIDGETS})() === 0", timeout=60_000)
        # So that what loads late (fonts, the favicon) is counted too.
        page.wait_for_load_state("networkidle")
        page.evaluate(WAIT_FOR_MATHJAX)
        if screenshot:  # for people to look at; a page too long to picture is no failure
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(PlaywrightTimeout):
                page.screenshot(path=screenshot, full_page=True)
        page.add_script_tag(path=str(AXE))
        met = Visit(
            errors,
            failed,
            foreign,
            page.eval_on_selector_all(".math", UNTYPESET_MATH),
            page.evaluate(UNRENDERED_WIDGETS),
            page.eval_on_selector_all("img", BAD_IMAGES),
            page.inner_text("body"),
            page.eval_on_selector_all("a[href], link[href]", "links => links.map(a => a.href)"),
            page.locator('link[rel="icon"]').count() > 0,
            page.evaluate(AXE_RUN, [[] if contrast else ["color-contrast"], axe_root(page, own)]),
            page.evaluate(OVERFLOW),
            page.evaluate(FIGURE_TEXT),
        )
        met.axe += in_dark_mode(page, dark)  # last: it leaves the page in dark mode
        return met
    finally:
        page.close()


def in_dark_mode(page, dark: bool) -> list[str]:
    """The outputs' colour contrast in dark mode (the page is left in it), if ``dark``."""
    outputs = ".bd-content .cell_output .text_html"  # the HTML ones: text takes the theme's colours
    if not dark or not page.locator(outputs).count():
        return []
    page.evaluate(DARK)
    skip = [rule for rule in page.evaluate(SERIOUS_RULES) if rule != "color-contrast"]
    return [f"dark mode: {found}" for found in page.evaluate(AXE_RUN, [skip, outputs])]


# A page's blocks: each element directly inside its article or one of the article's sections that
# is not itself a section (a heading, a paragraph, a cell, a note, an equation...), in document order.
BLOCKS = "article.bd-article > :not(section), article.bd-article section > :not(section)"
OWN = "[data-fp-own], .bd-header-announcement"
MARK_OWN = """([selector, own]) => {
    const blocks = document.querySelectorAll(selector);
    own.forEach(i => blocks[i].setAttribute('data-fp-own', ''));
    return blocks.length;
}"""


def axe_root(page, own) -> str | None:
    """The elements axe-core is to check: the whole page (None), or the blocks ``own`` and the
    announcement. The whole page too when the browser's blocks are not the ones read from the
    page's HTML (``Blocks``), so that nothing goes unchecked."""
    if own is None:
        return None
    count = page.evaluate("selector => document.querySelectorAll(selector).length", BLOCKS)
    if count != own[1]:
        return None
    page.evaluate(MARK_OWN, [BLOCKS, list(own[0])])
    return OWN if page.locator(OWN).count() else None


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Blocks(HTMLParser):
    """The HTML source of each of a page's blocks (``BLOCKS``), in document order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self.text, self.found, self.stack = text, [], []
        self.article = (0, 0)  # where the article starts and ends
        self.lines = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
        self.feed(text)

    def position(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        in_container = bool(self.stack) and self.stack[-1][2]  # the article, or a section of it
        article = tag == "article" and "bd-article" in (dict(attrs).get("class") or "").split()
        start = self.position() if (in_container and tag != "section") or article else None
        self.stack.append((tag, start, article or (in_container and tag == "section")))

    def handle_endtag(self, tag):
        if tag in VOID or not self.stack:
            return
        while self.stack:
            name, start, _ = self.stack.pop()
            if name == tag:
                break
        if start is not None:
            end = self.text.index(">", self.position()) + 1
            if self.stack and self.stack[-1][2] or tag != "article":
                self.found.append(self.text[start:end])
            else:
                self.article = (start, end)

    def outside(self) -> str:
        """The page without its article."""
        return self.text[: self.article[0]] + self.text[self.article[1] :]


@functools.cache
def own_blocks(edition: str, path: str) -> tuple[tuple[int, ...], int] | None:
    """The indices of the blocks of ``edition``'s page that the reader edition's page does not
    have, byte for byte (a class edition's checks, an instructor edition's hidden tests), and how
    many blocks the page has: what the reader edition's visit did not check already. None (the
    whole page) when the page differs from the reader's outside its article, but for the header."""
    mine, readers = (Blocks((built(e) / path).read_text(encoding="utf-8")) for e in (edition, "reader"))
    if in_reader_terms(edition, mine.outside()) != in_reader_terms("reader", readers.outside()):
        return None
    shared = set(readers.found)
    return tuple(i for i, block in enumerate(mine.found) if block not in shared), len(mine.found)


ANNOUNCEMENT = re.compile(r'<aside class="bd-header-announcement".*?</aside>\n', re.S)
# Sphinx's cache-busting query on a static file's link (``mystnb.<hash>.css?v=8cd3d715``): a first
# build writes it and an incremental one may not, for the same file.
CHECKSUM = re.compile(r'(\.(?:css|js))\?v=[0-9a-f]+"')


@functools.cache
def as_in_reader(edition: str) -> frozenset[str]:
    """The pages of the table of contents of ``edition`` that are the reader edition's page, byte
    for byte, once the edition's header (its title, its announcement) is put back to the reader
    edition's: the pages made from the same sources (the model card, the API, the glossary...),
    whose notebooks ran once for every edition (the editions share one execution cache). A link
    to a static file is the same with or without Sphinx's checksum (``CHECKSUM``)."""
    if edition == "reader":
        return frozenset()
    return frozenset(
        path
        for path in PAGES
        if in_reader_terms(edition, (built(edition) / path).read_text(encoding="utf-8"))
        == in_reader_terms("reader", (built("reader") / path).read_text(encoding="utf-8"))
    )


def in_reader_terms(edition: str, page: str) -> str:
    """A page of ``edition`` (or a part of it) with the header put back to the reader edition's
    (its title, no announcement, its launch button's folder of notebooks) and no Sphinx checksum
    (``CHECKSUM``)."""
    if edition != "reader":
        title, own = titles(edition)
        page = LAUNCHED_FROM.sub(r"\1reader/", ANNOUNCEMENT.sub("", page).replace(own, title))
    return CHECKSUM.sub(r'\1"', page)


# Where a launch button's notebook is: the class's editions open chapters/, the reader's reader/.
LAUNCHED_FROM = re.compile(r"(\?urlpath=lab/tree/)")


@functools.cache
def titles(edition: str) -> tuple[str, str]:
    """The book's title, and the title ``edition``'s pages show (read once, not for every page)."""
    title = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["title"]
    return title, title + load_editions().EDITIONS[edition]["title"]


def alike_source_pages() -> frozenset[str]:
    """The API's source pages (Sphinx's viewcode, ``_modules/lib/*.html``) but the longest: one
    template filled with highlighted code, for which the longest stands in the browser. Their links
    are still followed (``test_the_links_of_the_source_pages_not_opened_work``)."""
    html = built("reader")
    pages = sorted(html.glob("_modules/lib/*.html"), key=lambda p: p.stat().st_size)
    return frozenset(p.relative_to(html).as_posix() for p in pages[:-1])


def plan():
    """(edition, width, page) to visit: every page of the table of contents of every edition at
    its ``WIDTHS``, and the reader edition's other pages (the API's source pages, the
    indexes, search) at desktop width. Those other pages are generated from the same sources in
    every edition and differ only in the header, which the table of contents' pages cover; so
    does a page of the table of contents that is the reader's page but for the header
    (``as_in_reader``): what the reader's page met stands for it."""
    jobs = []
    for edition in EDITIONS:
        own = [page for page in PAGES if page not in as_in_reader(edition)]
        jobs += [(edition, width, page) for page in own for width in WIDTHS[edition]]
    jobs += [("reader", DESKTOP, page) for page in visited("reader") if page not in PAGES]
    return jobs


def as_met_on(visit: Visit, site: str, other: str) -> Visit:
    """What ``visit`` met on a page of ``site``, for the same page on ``other``: its links lead
    into ``other``."""
    hrefs = [other + href.removeprefix(site) if href.startswith(site) else href for href in visit.hrefs]
    return replace(visit, hrefs=hrefs)


def visited(edition: str) -> list[str]:
    """The pages of an edition that ``plan`` visits at desktop width."""
    if edition != "reader":
        return PAGES
    return [page for page in all_pages(built(edition)) if page not in alike_source_pages()]


@pytest.fixture(scope="session")
def visits(browser_ready, sites):
    """Every planned page, opened by two browsers side by side (2 cores), and every page of the
    table of contents of every edition at both widths (``as_in_reader``)."""
    from playwright.sync_api import sync_playwright

    todo = queue.SimpleQueue()
    for job in plan():
        todo.put(job)
    found = {}

    def work():
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            contexts = {w: new_context(browser, w) for w in (DESKTOP, PHONE)}
            try:
                while True:
                    try:
                        edition, width, path = todo.get_nowait()
                    except queue.Empty:
                        return
                    shot = None
                    if SCREENSHOTS and edition == "reader" and width == PHONE and path in PAGES:
                        shot = SCREENSHOTS / f"{edition}-{width}" / f"{Path(path).stem}.png"
                    try:
                        contrast = width == DESKTOP and edition == "reader"
                        own = None if edition == "reader" else own_blocks(edition, path)
                        met = visit(contexts[width], sites(edition) + path, shot, contrast, contrast, own)
                        found[edition, width, path] = met
                    except Exception as error:  # reported by that page's test
                        found[edition, width, path] = error
            finally:
                browser.close()

    with ThreadPoolExecutor(BROWSERS) as pool:
        for future in [pool.submit(work) for _ in range(BROWSERS)]:
            future.result()
    for edition in EDITIONS:
        for path in as_in_reader(edition):
            for width in WIDTHS[edition]:
                met = found["reader", width, path]
                if not isinstance(met, Exception):
                    met = as_met_on(met, sites("reader"), sites(edition))
                found[edition, width, path] = met
    return found


def seen(visits, edition, width, path) -> Visit:
    found = visits[edition, width, path]
    if isinstance(found, Exception):
        raise found
    return found


# ---- every page of every edition -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("edition", list(EDITIONS))
def test_every_page_loads_offline_cleanly(visits, sites, edition):
    site = sites(edition)
    problems = {}
    for path in visited(edition):
        page = seen(visits, edition, DESKTOP, path)
        found = []
        found += [f"request left 127.0.0.1: {u}" for u in page.foreign]
        found += [f"failed request: {u}" for u in page.failed]
        found += [f"console error: {e}" for e in page.errors]
        found += [f"math not typeset: {m}" for m in page.untypeset_math]
        found += page.bad_images
        if page.unrendered_widgets:
            found.append(f"{page.unrendered_widgets} widget views did not render")
        if MISSING_WIDGET_STATE.search(page.text):
            found.append("a widget's saved state is missing")
        # Without one, the browser asks for /favicon.ico on its own, after the page has loaded.
        if not page.has_icon:
            found.append("no <link rel=icon>")
        found += [f"broken internal link: {b}" for b in broken_links(page.hrefs, site)]
        if found:
            problems[path] = found
    assert problems == {}


def broken_links(hrefs, site):
    broken = []
    for href in hrefs:
        target, anchor = urldefrag(href)
        if not target.startswith(site):
            continue
        status, ids = fetch(target)
        if status != 200:
            broken.append(f"{href} ({status})")
        elif anchor and target.endswith(".html") and anchor not in ids:
            broken.append(f"{href} (no such anchor)")
    return broken


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [value for name, value in attrs if tag in ("a", "link") and name == "href" and value]


def test_the_links_of_the_source_pages_not_opened_work(site):
    """The source pages that the longest stands for in the browser (``alike_source_pages``): each
    one's links and anchors, read from its HTML, lead somewhere on the site."""
    assert len(alike_source_pages()) >= 10
    problems = {}
    for path in sorted(alike_source_pages()):
        links = _Links()
        links.feed((built("reader") / path).read_text(encoding="utf-8"))
        assert links.hrefs, path
        broken = broken_links([urljoin(site + path, href) for href in links.hrefs], site)
        if broken:
            problems[path] = broken
    assert problems == {}


@pytest.mark.browser
def test_axe_runs_every_rule_that_can_report_a_serious_violation(browser_ready):
    """``SERIOUS_RULES`` leaves out only rules that report moderate or minor violations (and those
    axe does not run by default); ``AXE_RUN`` finds what axe's default run finds of serious and
    critical violations (a link without text, an image without alternative text), where a page
    without landmarks (moderate) is no failure; and text as light as its background, which axe
    leaves for a person to review, is a failure too."""
    with chromium() as context:
        page = context.new_page()
        page.set_content(
            '<html lang="en"><title>t</title><body><a href="#x"></a><img src="x.png">'
            '<p style="color: #ccc; background: #ccc">unreadable</p></body></html>'
        )
        page.add_script_tag(path=str(AXE))
        serious = set(page.evaluate(SERIOUS_RULES))
        every = set(page.evaluate("() => axe.getRules().map(rule => rule.ruleId)"))
        assert {"color-contrast", "image-alt", "link-name", "button-name", "aria-valid-attr"} <= serious
        assert {"region", "heading-order", "landmark-one-main", "td-has-header"}.isdisjoint(serious), (
            "moderate rules, and an experimental one axe leaves out by default"
        )
        assert len(serious) >= len(every) // 2, "most of axe's rules can report a serious violation"
        found = page.evaluate(AXE_RUN, [[], None])
        expected = ["critical image-alt", "serious link-name", "serious color-contrast"]
        assert [v.split(" (")[0] for v in found] == expected, found
        default_run = AXE_RUN.replace("{runOnly: {type: 'rule', values: rules}}", "{}")
        assert default_run != AXE_RUN
        assert page.evaluate(default_run, [[], None]) == found


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("edition", list(EDITIONS))
def test_axe_finds_no_serious_or_critical_violation(visits, edition):
    """On every visited page (see ``plan``), at both widths (colour contrast on the reader edition at
    desktop width: ``AXE_RUN``; on the other editions' pages, what the reader's lack: ``own_blocks``)."""
    found = {
        f"{path} at {width} px": page.axe
        for (e, width, path), page in visits.items()
        if e == edition and not isinstance(page, Exception) and page.axe
    }
    assert found == {}


@pytest.mark.slow
@pytest.mark.parametrize("edition", ["class", "instructor"])
def test_the_blocks_axe_checks_hold_what_the_reader_edition_lacks(edition):
    """Each block read from a page (``Blocks``) is one whole element, and the blocks the reader's
    page lacks (``own_blocks``, what axe-core checks on this edition's pages) hold every hidden
    test's description of the instructor edition and every block the reader's page has not."""
    for path in (p for p in CHAPTERS if p not in as_in_reader(edition)):
        blocks = Blocks((built(edition) / path).read_text(encoding="utf-8")).found
        for block in blocks:
            tag = re.match(r"<(\w+)", block).group(1)
            assert block.endswith(f"</{tag}>"), block[:200]
        assert own_blocks(edition, path) is not None, f"{path}: unlike the reader's outside its article"
        own, count = own_blocks(edition, path)
        readers = Blocks((built("reader") / path).read_text(encoding="utf-8")).found
        assert count == len(blocks) and own == tuple(i for i, b in enumerate(blocks) if b not in readers)
        shared = "".join(b for i, b in enumerate(blocks) if i not in own)
        assert "Hidden tests of" not in shared and own, path


# A row label of chapter 5's tables, a position and its token ("1: rocks"): short enough to keep to
# one line on a phone too. (A longer label, "the real block, after 'rocks'", may wrap there.)
POSITION = re.compile(r"\d+: \S+")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize(("edition", "width"), [(e, w) for e in EDITIONS for w in WIDTHS[e]])
def test_nothing_is_wider_than_the_column(visits, edition, width):
    """No page scrolls sideways; a display equation, a code block or a cell's HTML output wider than
    the column scrolls inside its block and shows that it does (shadows at its edges, focusable:
    chapter 5's 16-column tables were cut at their ninth column, even on a desktop, and examples'
    arrays at their third on a phone); no inline equation sticks
    out; at desktop width no code block or output scrolls sideways (long lines wrap) and a printed
    table's row labels keep to one line, as chapter 5's position labels ("1: rocks") do on a phone
    too; a wrapped line of code goes on further in than its own text begins (an exercise's
    docstring on a phone went on at column 0, beside its own lines indented by 8)."""
    problems = {}
    for path in PAGES:
        overflow = seen(visits, edition, width, path).overflow
        found = {
            "page scrolls sideways by (px)": overflow["page"] if overflow["page"] > 0 else None,
            "equations cut off": overflow["hiddenMath"],
            "outputs cut off": overflow["hiddenOutputs"],
            "code cut off": overflow["hiddenCode"],
            "table row labels broken over two lines": [
                label for label in overflow["brokenLabels"] if width == DESKTOP or POSITION.fullmatch(label)
            ],
            "inline equations past the column": overflow["inlineMath"],
            "code blocks scrolling sideways": overflow["scrollingCode"] if width == DESKTOP else [],
            "wrapped code lines going on where lines begin": overflow["flatWraps"],
            "code lines run together": overflow["runTogether"],
        }
        found = {k: v for k, v in found.items() if v}
        if found:
            problems[path] = found
    assert problems == {}


@pytest.mark.slow
@pytest.mark.browser
def test_few_equations_need_to_scroll_on_a_phone(visits):
    """Equations are written to fit a phone's column; the few that cannot say that they scroll."""
    scrolling = {path: seen(visits, "reader", PHONE, path).overflow["scrollingMath"] for path in PAGES}
    scrolling = {path: maths for path, maths in scrolling.items() if maths}
    assert sum(map(len, scrolling.values())) <= 3, scrolling


@pytest.mark.slow
@pytest.mark.browser
def test_figure_text_is_readable_on_a_phone(visits):
    small = {}
    for path in PAGES:
        for src, px in seen(visits, "reader", PHONE, path).figure_text:
            if px < MIN_FIGURE_TEXT_PX:
                small[f"{path}: {src}"] = round(px, 1)
    assert small == {}
    figures = sum(len(seen(visits, "reader", PHONE, p).figure_text) for p in PAGES)
    assert figures >= 20, "the figures are no longer SVG with text: this test would measure nothing"


# ---- what each edition shows -------------------------------------------------------------------


SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def page_text(page_html: str) -> str:
    """A page's text without its tags (code is highlighted token by token, in many spans), with
    Sphinx's typographic quotes back to plain ones."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", page_html)).translate(SMART_QUOTES)


def page_sources(html: Path) -> dict[str, str]:
    return {
        p.relative_to(html).as_posix(): p.read_text(encoding="utf-8")
        for p in html.rglob("*.html")
        if "_static" not in p.relative_to(html).parts
    }


class CellOutputs(HTMLParser):
    """The text of a page's cell outputs, and the classes of its error and stderr outputs."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # > 0 inside a cell's output
        self.text, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.depth:
            self.depth += tag == "div"
        elif tag == "div" and "cell_output" in classes:
            self.depth = 1
        if self.depth and "output" in classes and {"error", "traceback", "stderr"} & set(classes):
            self.errors.append(" ".join(classes))

    def handle_endtag(self, tag):
        if self.depth and tag == "div":
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


@pytest.mark.slow
@pytest.mark.parametrize("edition", list(EDITIONS))
def test_no_page_shows_an_error_or_a_traceback(edition):
    found = {}
    for path, html in page_sources(built(edition)).items():
        outputs = CellOutputs()
        outputs.feed(html)
        complaints = outputs.errors + ERROR_TEXT.findall("".join(outputs.text))
        if complaints:
            found[path] = complaints
    assert found == {}


# What only a class needs: how to submit, validating first, who grades (grader.audiences).
CLASS_ONLY = re.compile(r"(?:before|when) you submit|at submission|nbgrader validate|your instructors", re.I)


@pytest.mark.slow
def test_only_the_class_edition_tells_readers_to_submit(book, class_book):
    """A reader on their own submits nothing: every chapter told them to validate with nbgrader
    before submitting ("How the checks work", the introduction's "Grading"). The reader edition
    leaves that out and says what a reader alone gets; the class edition keeps it."""
    reader, classes = page_sources(book), page_sources(class_book)
    told = {p: CLASS_ONLY.findall(page_text(reader[p])) for p in CHAPTERS}
    assert {p: found for p, found in told.items() if found} == {}
    alone = [p for p in CHAPTERS if "on your own" not in page_text(reader[p]).lower()]
    assert alone == []
    untold = [p for p in CHAPTERS if "nbgrader validate" not in page_text(classes[p])]
    assert untold == []


# A launch button's link: the notebook it opens, by its path in the repository.
LAUNCHED = re.compile(r'href="https://mybinder\.org/v2/gh/[^"?]+\?urlpath=lab/tree/([^"]+\.ipynb)"')


@pytest.mark.slow
def test_each_editions_launch_button_opens_its_own_notebooks(book, class_book):
    """A reader who pressed the reader edition's launch button got the class's notebook, which
    told them to submit and whose concept checks only recorded a letter "graded when you submit".
    It now opens the reader's (``reader/``, made by ``grader release``); the class edition's still
    opens the student notebook of ``chapters/``. Every page with a button (the model card too)."""
    for html, folder in ((book, "reader/"), (class_book, "")):
        opened = {page: LAUNCHED.findall((html / page).read_text()) for page in PAGES}
        notebooks = {page: found[0] for page, found in opened.items() if found}
        assert set(CHAPTERS) <= set(notebooks), opened
        for page, notebook in notebooks.items():
            assert notebook == folder + page.removesuffix(".html") + ".ipynb", (page, notebook)
            assert (ROOT / notebook).is_file(), notebook
        if folder:
            assert all(
                "reader_check as check" in (ROOT / n).read_text()
                for n in notebooks.values()
                if "chapters/" in n
            )


# A page a phone loads whole, figures' data included (chapter 2's figure once stored the same
# attention matrix for each of its 46 queries: 10 MB).
HEAVIEST_PAGE_MB = 1.5


@pytest.mark.slow
@pytest.mark.parametrize("edition", list(EDITIONS))
def test_no_page_is_heavy_for_a_phone(edition):
    html = built(edition)
    pages = all_pages(html) if edition == "reader" else PAGES
    sizes = {path: (html / path).stat().st_size / 2**20 for path in pages}
    assert {path: f"{mb:.1f} MB" for path, mb in sizes.items() if mb > HEAVIEST_PAGE_MB} == {}


SOLUTION_FOLD = '<p class="collapsed admonition-title">Show solution</p>'


def function_exercises(chapter_page: str) -> list[str]:
    """The function exercises of a chapter, from its student notebook."""
    nb = nbformat.read(ROOT / chapter_page.replace(".html", ".ipynb"), as_version=4)
    return [
        c.metadata.nbgrader["grade_id"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.source.lstrip().startswith("def ")
    ]


@pytest.mark.slow
def test_the_reader_edition_folds_a_solution_under_every_exercise():
    pages = page_sources(built("reader"))
    for chapter in CHAPTERS:
        exercises = function_exercises(chapter)
        text = pages[chapter]
        assert text.count(SOLUTION_FOLD) == len(exercises), chapter
        assert text.count("What a correct") == len(exercises), chapter
        assert page_text(text).count("# YOUR CODE HERE") == len(exercises), chapter  # each task


@pytest.mark.slow
def test_the_class_edition_shows_tasks_and_no_solution_anywhere():
    html = built("class")
    pages = page_sources(html)
    sources = {p.relative_to(html).as_posix(): p.read_text() for p in (html / "_sources").rglob("*.ipynb")}
    for chapter in CHAPTERS:
        text = pages[chapter]
        assert SOLUTION_FOLD not in text and "Show the answer" not in text, chapter
        assert page_text(text).count("# YOUR CODE HERE") == len(function_exercises(chapter)), chapter
    answered = re.compile(r'answer_\w+ = \\?"[a-d]\\?"')
    assert [name for name, text in sources.items() if answered.search(text)] == []
    # The instructor edition's sources do answer, so the search above can find an answer.
    instructor_sources = (built("instructor") / "_sources").rglob("*.ipynb")
    assert any(answered.search(p.read_text()) for p in instructor_sources)


@pytest.mark.slow
def test_the_instructor_edition_describes_the_hidden_tests():
    from grader import exercises

    texts = {path: page_text(html) for path, html in page_sources(built("instructor")).items()}
    for exercise_id, exercise in exercises.registry().items():
        assignment, _, name = exercise_id.partition("/")
        page = next(p for p in CHAPTERS if p.split("/")[1] == assignment)
        heading = f"Key of {name}" if exercise.kind == "choice" else f"Hidden tests of {name}"
        assert heading in texts[page], exercise_id
        if exercise.kind != "choice":
            hidden = load_editions().hidden_cases(exercise)
            assert hidden and all(c.describe in texts[page] for c in hidden), exercise_id
    assert SOLUTION_FOLD in page_sources(built("instructor"))[CHAPTERS[1]]


@pytest.mark.slow
@pytest.mark.parametrize("edition", list(EDITIONS))
def test_no_hidden_tests_or_solution_markers_are_published(edition):
    html = built(edition)
    pages = [p for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts]
    files = pages + [p for p in (html / "_sources").rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files), f"no notebook sources under {html}"
    leaks = [
        str(p.relative_to(ROOT))
        for p in files
        if LEAKS.search(p.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not leaks, f"hidden tests or solution markers published in {leaks}"


NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def typed(prose: str, sizes: dict[str, int]) -> dict[str, list[str]]:
    """Where ``prose`` types one of ``sizes`` (in digits, or in words up to twelve): numbers the
    pages print from lib, which a typed copy would contradict once the model changed."""
    found = {}
    for name, n in sizes.items():
        spelled = [str(n)] + ([NUMBER_WORDS[n]] if n < len(NUMBER_WORDS) else [])
        hits = re.findall(rf"\b(?:{'|'.join(spelled)})\b", prose)
        if hits:
            found[name] = hits
    return found


def prose_of(notebook: Path) -> str:
    return " ".join(
        c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown"
    )


@pytest.mark.slow
def test_the_model_card_pastes_the_models_sizes_into_its_text(book):
    """The card says every number on it is computed when the book is built; its text typed the
    context length (three times) and the number of blocks. They are pasted from the loaded model
    (myst-nb's glue), and the built page shows them where the text says them."""
    import lib

    config = lib.load_pretrained("shakespeare").config
    sizes = {"n_ctx": config.n_ctx, "n_layer": config.n_layer}
    assert typed(prose_of(ROOT / "book" / "model-card.ipynb"), sizes) == {}
    shown = " ".join(page_text((book / "book" / "model-card.html").read_text(encoding="utf-8")).split())
    assert f"The context holds {config.n_ctx} characters" in shown
    assert f"a GPT-2 with {config.n_layer} blocks" in shown


def test_no_chapter_types_the_toy_models_number_of_weights():
    """Chapter 6 opened on "a model with 280 weights", which chapters 5 and 6 print from lib."""
    import lib

    sizes = {"toy weights": lib.load_pretrained("toy").num_params()}
    found = {nb.parent.name: typed(prose_of(nb), sizes) for nb in ROOT.glob("chapters/*/*.ipynb")}
    assert {chapter: hits for chapter, hits in found.items() if hits} == {}


# What chapters 1 and 6 said that a reader could not follow or that typed a number the page prints:
# a figure "in the next section" that was neither next nor about single characters; GPT-2's
# vocabulary, the benchmark's sizes and a configuration's layers and heads, printed by the code.
TYPED_IN_PROSE = {
    "01-embeddings": [r"figure in the next section", r"fifty thousand"],
    "06-cost": [
        r"\b1024\b",
        r"\b100 MB\b",
        r"\b80-layer\b",
        r"\b64 key/value heads\b",
        r"\bfour blocks\b",
        r"\b0\.1 GB\b",
    ],
}


def test_chapters_1_and_6_type_no_number_their_code_prints():
    found = {
        chapter: [
            p for p in patterns if re.search(p, prose_of(next(ROOT.glob(f"chapters/{chapter}/*.ipynb"))))
        ]
        for chapter, patterns in TYPED_IN_PROSE.items()
    }
    assert {chapter: hits for chapter, hits in found.items() if hits} == {}


@pytest.mark.slow
def test_chapter_1_shows_the_text_its_tokenizer_refuses(book):
    """Its output said "character 'ï' (U+00EF) at position 4" of a text that only the code folded
    away on the page held, and the prose goes on about that text's "ï" and "é"."""
    outputs = CellOutputs()
    outputs.feed((book / "chapters" / "01-embeddings" / "embeddings.html").read_text(encoding="utf-8"))
    assert "'A naïve café'" in "".join(outputs.text)


@pytest.mark.slow
def test_api_reference_documents_every_public_name(book):
    import lib

    anchors = _Anchors()
    anchors.feed((book / "book" / "api.html").read_text(encoding="utf-8"))
    assert [name for name in lib.__all__ if f"lib.{name}" not in anchors.ids] == []


# ---- search, menu, widgets, keyboard -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_search_finds_a_chapter(browser_ready, book, site):
    chapter = CHAPTERS[0]
    title = re.search(r"<h1[^>]*>([^<]*)", (book / chapter).read_text(encoding="utf-8"))[1]
    word = max(re.findall(r"[A-Za-z]+", title), key=len)
    with chromium() as context:
        page, errors, failed, foreign = open_page(context, f"{site}search.html?q={word}")
        page.wait_for_selector("#search-results li a", timeout=15_000)
        results = page.eval_on_selector_all(
            "#search-results li a", "links => links.map(a => a.getAttribute('href'))"
        )
        assert any(chapter in href for href in results), f"searching {word!r} found {results}"
        # The summaries quote the pages' text, equations included: typeset, not as TeX.
        page.goto(f"{site}search.html?q=softmax")
        page.wait_for_function(
            """() => { const items = [...document.querySelectorAll('#search-results li')];
                return items.length && items.every(li => li.querySelector('p.context, span'))
                    && document.querySelector('#search-results mjx-container')
                    && !document.getElementById('search-results').innerText.includes('\\\\('); }""",
            timeout=30_000,
        )
        assert page.evaluate(MATH_IN_TAB_ORDER) == []  # the book's MathJax settings hold here too
    assert not (errors or failed or foreign), (errors, failed, foreign)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("width", [PHONE, TABLET])
def test_the_menu_opens_the_sidebar_and_its_links_work(browser_ready, site, width):
    """Below the wide breakpoint the visible menu button opens the sidebar as a dialog (it did not
    while the theme wrote a second, hidden one: pydata-sphinx-theme issue 2451), and a link in it
    leads to its page."""
    with chromium(width) as context:
        page, errors, _, _ = open_page(context, site + CHAPTERS[0])
        menu = page.locator(".primary-toggle:visible")
        assert menu.count() == 1
        menu.click()
        dialog = page.locator("#pst-primary-sidebar-modal")
        dialog.locator("a.reference.internal").first.wait_for(state="visible", timeout=5_000)
        assert dialog.evaluate("d => d.open")
        target = dialog.locator("a.reference.internal", has_text="Sampling")
        target.first.click()
        page.wait_for_url(re.compile(r"04-sampling/sampling\.html"), timeout=10_000)
        # The menu works on the new page too, and Escape closes it.
        page.locator(".primary-toggle:visible").click()
        page.locator("#pst-primary-sidebar-modal").locator("a.reference.internal").first.wait_for(
            state="visible", timeout=5_000
        )
        page.keyboard.press("Escape")
        assert not page.locator("#pst-primary-sidebar-modal").evaluate("d => d.open")
        # The page's own contents: a section tapped in it is shown, and the dialog gets out of its way.
        page.locator(".secondary-toggle:visible").click()
        contents = page.locator("#pst-secondary-sidebar-modal")
        section = contents.locator("a.reference.internal[href^='#']").nth(1)
        section.wait_for(state="visible", timeout=5_000)
        href = section.get_attribute("href")
        section.click()
        page.wait_for_function("() => !document.querySelector('#pst-secondary-sidebar-modal').open")
        assert page.evaluate("() => location.hash") == href
    assert errors == []


@pytest.mark.slow
@pytest.mark.browser
def test_a_tap_leaves_no_tooltip_on_a_touch_screen(browser_ready, site):
    """On a phone (touch, no hover), the menu opened with a tap and closed with a tap outside
    leaves no tooltip standing over the header's buttons (one did, and took the next tap); a
    mouse on a desktop still gets the buttons' tooltips."""
    from playwright.sync_api import sync_playwright

    shown = "() => [...document.querySelectorAll('.tooltip.show')].map(t => t.textContent)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(
                viewport={"width": PHONE, "height": 800}, has_touch=True, is_mobile=True
            )
            page, errors, _, _ = open_page(phone, site + CHAPTERS[0])
            page.wait_for_load_state("load")
            assert page.evaluate("matchMedia('(hover: none)').matches")
            page.locator(".primary-toggle:visible").tap()
            dialog = page.locator("#pst-primary-sidebar-modal")
            dialog.locator("a.reference.internal").first.wait_for(state="visible", timeout=5_000)
            page.touchscreen.tap(PHONE - 10, 400)  # outside the dialog, which closes
            page.wait_for_function("() => !document.querySelector('#pst-primary-sidebar-modal').open")
            page.wait_for_timeout(1_000)  # the theme shows a tooltip 500 ms after the hover or focus
            assert page.evaluate(shown) == []
            assert errors == []
            desktop = browser.new_context(viewport={"width": DESKTOP, "height": 800})
            page, _, _, _ = open_page(desktop, site + CHAPTERS[0])
            page.wait_for_load_state("load")
            page.locator(".theme-switch-button:visible").first.hover()
            page.wait_for_function(f"() => ({shown})().length > 0", timeout=5_000)
        finally:
            browser.close()


BACK_TO_TOP_COVERS = """() => {
    const button = document.getElementById('pst-back-to-top');
    const box = button.getBoundingClientRect();
    const under = document.elementsFromPoint(box.x + box.width / 2, box.y + box.height / 2)
        .find(el => !button.contains(el));  // what the button is drawn over, not what that hides
    return Boolean(under.closest('article.bd-article'));
}"""


@pytest.mark.slow
@pytest.mark.browser
def test_back_to_top_covers_no_text_on_a_phone(browser_ready, site):
    """Scrolling up shows the theme's "Back to top" button; it sat over the middle of the text
    (pydata-sphinx-theme floats it there below 1200 px), and is now among the header's buttons,
    which all fit the screen of the narrowest phones."""
    with chromium(SMALL_PHONE) as context:
        page, errors, _, _ = open_page(context, site + CHAPTERS[0])
        page.evaluate("scrollTo(0, 3000)")
        page.wait_for_timeout(200)
        page.evaluate("scrollTo(0, 2700)")  # the theme shows it while the reader scrolls up
        button = page.locator("#pst-back-to-top")
        button.wait_for(state="visible", timeout=5_000)
        assert not page.evaluate(BACK_TO_TOP_COVERS)
        header = page.locator(".bd-header-article .btn:visible")
        assert header.count() >= 8
        assert all(
            0 <= b["x"] and b["x"] + b["width"] <= SMALL_PHONE
            for b in header.evaluate_all("buttons => buttons.map(b => b.getBoundingClientRect().toJSON())")
        )
        button.click()
        page.wait_for_function("() => scrollY === 0")
    assert errors == []


@pytest.mark.slow
@pytest.mark.browser
def test_no_full_screen_button_where_a_page_cannot_go_full_screen(browser_ready, site):
    """An iPhone's browser gives a page no Fullscreen API (only videos go full screen): the
    theme's full-screen button did nothing there. Chromium plays that browser here."""
    with chromium(PHONE) as context:
        context.add_init_script(
            "for (const name of ['fullscreenEnabled', 'webkitFullscreenEnabled'])"
            " Object.defineProperty(Document.prototype, name, {get: () => false});"
        )
        page, errors, _, _ = open_page(context, site + CHAPTERS[0])
        page.wait_for_load_state("load")
        assert page.locator(".btn-fullscreen-button").count() == 1
        assert not page.locator(".btn-fullscreen-button").is_visible()
    assert errors == []


@pytest.mark.slow
@pytest.mark.browser
def test_the_menu_button_folds_the_sidebar_on_a_desktop_with_one_search_field(browser_ready, site):
    """The sidebar's search field is the only one on the page (the theme's header bar showed
    another above it), and the menu button folds the sidebar away and back."""
    with chromium(DESKTOP) as context:
        page, errors, _, _ = open_page(context, site + CHAPTERS[0])
        assert page.locator(".search-button__button:visible").count() == 1
        assert page.locator("#pst-primary-sidebar .search-button__button").is_visible()
        shown = "() => getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"
        assert page.evaluate(shown) == "visible"
        page.locator(".primary-toggle:visible").click()
        page.wait_for_function(f"() => ({shown})() === 'hidden'")
        page.locator(".primary-toggle:visible").click()
        page.wait_for_function(f"() => ({shown})() === 'visible'")
    assert errors == []


EXPLORER_STATE = """root => ({
    key: root.dataset.state,
    title: root.querySelector('.fp-title').textContent,
    view: root.querySelector('.fp-view').innerHTML,
    shown: [...root.querySelectorAll('.fp-control')].map(c => {
        const select = c.querySelector('select');
        return select ? select.selectedOptions[0].textContent : c.querySelector('output').textContent;
    }),
})"""


def explorer_pages(edition):
    html = built(edition)
    return [p for p in PAGES if 'class="fp-explorer"' in (html / p).read_text(encoding="utf-8")]


class Explorers(HTMLParser):
    """Every figure with controls on a page (``div.fp-explorer``), as the parser's events inside
    it: its tags with their attributes, and its text (the states' data included: a script's
    content reaches the parser as text, not as tags)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self.depth = [], 0

    def handle_starttag(self, tag, attrs):
        if self.depth == 0 and tag == "div" and ("class", "fp-explorer") in attrs:
            self.found.append([])
            self.depth = 1
        elif self.depth and tag == "div":
            self.depth += 1
        if self.depth:
            self.found[-1].append(("start", tag, attrs))

    def handle_endtag(self, tag):
        if self.depth:
            self.found[-1].append(("end", tag))
            self.depth -= tag == "div"

    def handle_data(self, data):
        if self.depth:
            self.found[-1].append(("text", data))


def explorers(page_html: str) -> list[list]:
    parser = Explorers()
    parser.feed(page_html)
    return parser.found


@pytest.mark.slow
def test_the_class_editions_figures_with_controls_are_the_readers(book, class_book):
    """Byte for byte, with the script that drives them: so what the browser finds of the reader
    edition's figures (``test_every_control_changes_its_figure_and_the_title_agrees``) holds for
    the class edition's too."""
    assert explorer_pages("class") == explorer_pages("reader")
    for path in explorer_pages("reader"):
        reader, class_ = ((html / path).read_text(encoding="utf-8") for html in (book, class_book))
        assert explorers(reader) and explorers(class_) == explorers(reader), path
    script = "_static/explorer.js"
    assert (class_book / script).read_bytes() == (book / script).read_bytes()


# For each bar chart of a figure that is wider than the column (it scrolls sideways), whether its
# largest bar is in view: where the chart opens, so that a phone shows what matters first.
LARGEST_BAR_IN_VIEW = """root => [...root.querySelectorAll('.fp-chart.fp-scrolls')]
    .filter(chart => chart.querySelector('svg.fp-bars')).map(chart => {
        const bars = [...chart.querySelectorAll('rect.fp-main, rect.fp-accent')];
        const largest = bars.reduce((a, b) => (b.height.baseVal.value > a.height.baseVal.value ? b : a));
        const box = chart.getBoundingClientRect(), bar = largest.getBoundingClientRect();
        return bar.left >= box.left - 1 && bar.right <= box.right + 1;
    })"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_control_changes_its_figure_and_the_title_agrees(browser_ready, sites, width):
    """For every figure with controls on every page: moving each control (with the keyboard for a
    slider, by choosing an option for a drop-down) changes what is drawn, the title names the
    option every control shows, and a bar chart too wide for the column shows its largest bar.
    (The reader edition's; the class edition's are the same.)"""
    edition = "reader"
    pages = explorer_pages(edition)
    assert len(pages) >= 4, pages
    moved = 0
    with chromium(width) as context:
        for path in pages:
            page, errors, failed, foreign = open_page(context, sites(edition) + path)
            explorers = page.locator(".fp-explorer")
            for e in range(explorers.count()):
                root = explorers.nth(e)
                root.scroll_into_view_if_needed()
                for c in range(root.locator(".fp-control").count()):
                    before = root.evaluate(EXPLORER_STATE)
                    control = root.locator(".fp-control").nth(c)
                    changed = False
                    for _ in range(12):  # a few steps: some neighbouring states look alike
                        if control.locator("select").count():
                            select = control.locator("select")
                            options = select.locator("option").count()
                            current = int(select.input_value())
                            select.select_option(str((current + 1) % options))
                        else:
                            slider = control.locator("input[type=range]")
                            slider.focus()
                            at_end = slider.input_value() == slider.get_attribute("max")
                            page.keyboard.press("Home" if at_end else "ArrowRight")
                        after = root.evaluate(EXPLORER_STATE)
                        for shown in after["shown"]:
                            assert shown in after["title"], (path, shown, after["title"])
                        assert all(root.evaluate(LARGEST_BAR_IN_VIEW)), (path, after["title"])
                        if after["view"] != before["view"] and after["key"] != before["key"]:
                            changed = True
                            break
                    assert changed, f"{path}: moving control {c} of figure {e} changed nothing"
                    moved += 1
            assert not (errors or failed or foreign), (path, errors, failed, foreign)
            page.close()
    assert moved >= 10


FOCUSABLE = """() => [...document.querySelectorAll(
    '.fp-control input, .fp-control select, .primary-toggle, details.hide summary, .fp-chart[tabindex]')]
    .filter(el => el.checkVisibility()).map((el, i) => { el.dataset.focusProbe = i; return i; })"""


# The equations Tab stops at: only those that scroll (theme-fixes.js marks them) should be.
MATH_IN_TAB_ORDER = """() => [...document.querySelectorAll('mjx-container')]
    .filter(m => m.tabIndex >= 0 && !m.classList.contains('fp-scrolls')).map(m => m.textContent.slice(0, 40))"""


@pytest.mark.slow
@pytest.mark.browser
def test_keyboard_focus_reaches_every_control(browser_ready, site):
    """Tabbing through a page reaches every control of its figures, every "Show solution" fold and
    the menu button: Tab is pressed until each has had focus, at most once for every element that
    could take it and 20 times more. At desktop width: the order of focus is the page's order at
    any width, and a control a phone's layout hides would fail the phone run of
    ``test_every_control_changes_its_figure_and_the_title_agrees``, which moves each one. An
    equation is no stop on the way unless it scrolls (MathJax put each one in the Tab order: 13
    stops before chapter 4's first fold, 61 in all)."""
    with chromium(DESKTOP) as context:
        for path in explorer_pages("reader"):
            page, _, _, _ = open_page(context, site + path)
            assert page.evaluate(MATH_IN_TAB_ORDER) == [], path
            wanted = set(page.evaluate(FOCUSABLE))
            page.evaluate(
                """() => { window.reachedProbes = new Set();
                document.addEventListener('focusin', e => {
                    if (e.target.dataset.focusProbe !== undefined) reachedProbes.add(+e.target.dataset.focusProbe);
                }); }"""
            )
            total = page.evaluate(
                "() => document.querySelectorAll('a[href], button, input, select, summary, [tabindex]').length"
            )
            reached = set()
            for presses in range(1, total + 21):  # once past every element that could take focus
                page.keyboard.press("Tab")
                if presses % 10 == 0 or presses == total + 20:
                    reached = set(page.evaluate("() => [...reachedProbes]"))
                    if reached >= wanted:
                        break
            assert wanted and reached >= wanted, (path, sorted(wanted - reached))
            page.close()


# ---- the editions tool -------------------------------------------------------------------------


def load_editions():
    spec = importlib.util.spec_from_file_location("editions", ROOT / "tools" / "editions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTION = {"nbgrader": {"grade_id": "encode-answer", "solution": True, "grade": False}}
TEST = {"nbgrader": {"grade_id": "encode", "solution": False, "grade": True, "points": 1}}
CONCEPT = {"nbgrader": {"grade_id": "q_tied-answer", "solution": True, "grade": False}}
CONCEPT_TEST = {"nbgrader": {"grade_id": "q_tied", "solution": False, "grade": True, "points": 1}}
ENCODE = 'def encode(text, stoi):\n    """Task: ..."""\n'
# The two forms of a test cell: with a hidden-tests region, and the one-line check.
TEST_FORMS = {
    "hidden region": "### BEGIN HIDDEN TESTS\nrecord('01-embeddings/encode', encode)\n### END HIDDEN TESTS\n"
    "check('01-embeddings/encode', encode)",
    "one line": 'check("01-embeddings/encode", encode)',
}


def chapter_pair(test_source):
    """A solution notebook and its student notebook, as nbgrader would make them."""
    tagged = {"tags": ["raises-exception"]}
    solution = new_notebook(
        cells=[
            new_markdown_cell("Write `encode`."),
            new_code_cell(
                ENCODE
                + "    ### BEGIN SOLUTION\n    return np.array([stoi[c] for c in text])\n    ### END SOLUTION",
                metadata=SOLUTION,
            ),
            new_code_cell(test_source, metadata={**TEST, **tagged}),
            new_code_cell(
                'answer_q_tied = ...\n### BEGIN SOLUTION\nanswer_q_tied = "a"\n### END SOLUTION',
                metadata={**CONCEPT, **tagged},
            ),
            new_code_cell(
                "check('01-embeddings/q_tied', answer_q_tied)", metadata={**CONCEPT_TEST, **tagged}
            ),
        ]
    )
    student = new_notebook(
        cells=[
            new_markdown_cell("Write `encode`."),
            new_code_cell(
                ENCODE + "    # YOUR CODE HERE\n    raise NotImplementedError()", metadata=SOLUTION
            ),
            new_code_cell("check('01-embeddings/encode', encode)", metadata={**TEST, **tagged}),
            new_code_cell("answer_q_tied = ...", metadata={**CONCEPT, **tagged}),
            new_code_cell(
                "check('01-embeddings/q_tied', answer_q_tied)", metadata={**CONCEPT_TEST, **tagged}
            ),
        ]
    )
    return solution, student


@pytest.mark.parametrize("form", list(TEST_FORMS))
def test_reader_notebook_shows_task_example_and_folded_solution(form):
    editions = load_editions()
    solution, student = chapter_pair(TEST_FORMS[form])
    before = nbformat.writes(solution), nbformat.writes(student)
    nb = editions.reader_notebook(solution, student, "test.ipynb")
    assert (nbformat.writes(solution), nbformat.writes(student)) == before, "an input was changed"
    intro, task, answer, example, concept = nb.cells
    assert "raise NotImplementedError" in task.source and task.metadata.tags == ["skip-execution"]
    assert "### " not in answer.source and "return np.array" in answer.source
    assert answer.metadata.tags == ["hide-input"]
    assert answer.metadata.mystnb["code_prompt_show"] == "Show solution"
    assert "What a correct `encode` gives" in example.source and "array([" in example.source
    assert concept.source.startswith(":::{dropdown} Show the answer") and "**(a)**" in concept.source
    assert all("raises-exception" not in c.metadata.get("tags", []) for c in nb.cells)
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def edition_of(kind: str, form: str):
    """The ``kind`` edition ("reader", "class", "instructor") of a chapter with one test form."""
    return edition_of_pair(kind, *chapter_pair(TEST_FORMS[form]))


def edition_of_pair(kind: str, solution, student):
    return getattr(load_editions(), f"{kind}_notebook")(solution, student, "test.ipynb")


@pytest.mark.parametrize("form", list(TEST_FORMS))
def test_class_notebook_shows_the_stubs_and_does_not_run_the_checks(form):
    nb = edition_of("class", form)
    text = nbformat.writes(nb)
    assert "return np.array" not in text and 'answer_q_tied = "a"' not in text
    checks = [c for c in nb.cells if "check(" in c.source]
    stubs = [
        c for c in nb.cells if "raise NotImplementedError" in c.source or c.source == "answer_q_tied = ..."
    ]
    assert checks and stubs and all(c.metadata.tags == ["skip-execution"] for c in checks + stubs)
    assert "raises-exception" not in text


@pytest.mark.parametrize("form", list(TEST_FORMS))
def test_instructor_notebook_runs_checks_and_describes_hidden_tests(form):
    from grader import exercises

    text = nbformat.writes(edition_of("instructor", form))
    assert not LEAKS.search(text)
    check = next(
        c for c in nbformat.reads(text, as_version=4).cells if "check(" in c.source and "encode" in c.source
    )
    assert check.source.strip().endswith("encode)") and "skip-execution" not in check.metadata.get("tags", [])
    hidden = [c.describe for c in load_editions().hidden_cases(exercises.get("01-embeddings/encode"))]
    assert hidden and all(d in text for d in hidden) and "Hidden tests of `encode`" in text
    assert "Key of `q_tied`" in text


SWITCHED = """import os

import numpy as np

GRADING = "NBGRADER_EXECUTION" in os.environ  # the autograder skips figures
if not GRADING:  # presentation only
    import bookkit

    bookkit.style.use()


def draw(x):
    if not GRADING and x:
        print("static")
    elif not GRADING:
        print("live")
    return x"""


def test_the_grading_switch_is_left_out_of_what_readers_see():
    """The chapters' autograder switch means nothing to a reader or a student reading the book:
    the shown source does without it, and still says the same where the book runs it."""
    shown = load_editions().without_grading_switch(SWITCHED, "test.ipynb, cell 1")
    assert "GRADING" not in shown and "import os" not in shown
    assert "\nimport bookkit\n\nbookkit.style.use()\n" in shown
    assert '    if x:\n        print("static")\n    else:\n        print("live")' in shown
    namespace, printed = {}, []
    exec(shown.replace("import bookkit", "").replace("bookkit.style.use()", ""), namespace)
    namespace["print"] = printed.append
    assert namespace["draw"](1) == 1 and printed == ["static"]
    with pytest.raises(ValueError, match="cell 2: a use of GRADING"):
        load_editions().without_grading_switch("x = 1 if GRADING else 2", "test.ipynb, cell 2")


@pytest.mark.slow
def test_only_the_instructor_edition_shows_the_grading_switch():
    for edition in EDITIONS:
        pages = page_sources(built(edition))
        shown = [path for path in CHAPTERS if "GRADING" in page_text(pages[path])]
        assert shown == (CHAPTERS if edition == "instructor" else []), edition


def test_the_execution_cache_is_kept_per_version_of_the_code_the_notebooks_run(tmp_path, monkeypatch):
    """A change to lib (or bookkit, grader) runs the notebooks again: a cache keyed by the cells
    alone would show an older lib's numbers. Bytecode caches do not count; older caches go."""
    editions = load_editions()
    for folder in editions.RUN_BY_NOTEBOOKS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(editions, "ROOT", tmp_path)
    first = editions.code_digest()
    (tmp_path / "lib" / "__pycache__").mkdir()
    (tmp_path / "lib" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert editions.code_digest() == first
    (tmp_path / "bookkit" / "a.py").write_text("x = 2\n")
    assert editions.code_digest() != first
    monkeypatch.setattr(editions, "CACHE", tmp_path / "cache")
    for old in ("older", "newest"):
        (tmp_path / "cache" / old).mkdir(parents=True)
    (tmp_path / "cache" / "global.db").write_bytes(b"")  # the cache of before the versions
    editions.drop_stale_caches("newest")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["newest"]


def ran(nb):
    """``nb`` as if executed: each code cell printed its own index among the code cells."""
    out = copy.deepcopy(nb)
    for index, cell in enumerate(c for c in out.cells if c.cell_type == "code"):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"cell {index}\n")]
        cell.execution_count = index + 1
    return out


@pytest.mark.parametrize("form", list(TEST_FORMS))
def test_every_edition_shows_the_outputs_of_the_one_run_of_its_chapter(form):
    """The instructor notebook runs; each edition's running cells take the outputs of its cells,
    in order (two cells with the same source keep their own), and the build runs nothing again."""
    editions = load_editions()
    solution, student = chapter_pair(TEST_FORMS[form])
    solution.cells[1:1] = [new_code_cell("x"), new_code_cell("x")]
    student.cells[1:1] = [new_code_cell("x"), new_code_cell("x")]
    run = ran(editions.instructor_notebook(solution, student, "test.ipynb"))
    run.metadata["language_info"] = {"name": "python"}
    shown = {}
    for kind in ("reader", "class", "instructor"):
        nb = editions.with_outputs(edition_of_pair(kind, solution, student), run, "test.ipynb")
        assert nb.metadata.mystnb == {"execution_mode": "off"} and nb.metadata.language_info.name == "python"
        shown[kind] = {c.source: [] for c in nb.cells}
        for cell in nb.cells:
            if cell.cell_type == "code":
                shown[kind][cell.source].append("".join(o.text for o in cell.outputs))
    assert shown["reader"]["x"] == shown["class"]["x"] == ["cell 0\n", "cell 1\n"]
    answer = next(s for s in shown["reader"] if "return np.array" in s)
    assert shown["reader"][answer] == ["cell 2\n"] and shown["instructor"][answer] == ["cell 2\n"]
    assert all(o == [""] for s, o in shown["class"].items() if "check(" in s or "Not" in s or "answer_q" in s)
    assert [o for s, o in shown["instructor"].items() if "check('01-embeddings/q_tied'" in s] == [
        ["cell 5\n"]
    ]


def test_a_cell_the_run_did_not_have_is_an_error():
    editions = load_editions()
    solution, student = chapter_pair(TEST_FORMS["one line"])
    run = ran(editions.instructor_notebook(solution, student, "test.ipynb"))
    student.cells.insert(1, new_code_cell("print('only in the class edition')"))
    with pytest.raises(ValueError, match=r"test.ipynb, cell 1: it is not among the instructor notebook's"):
        editions.with_outputs(editions.class_notebook(solution, student, "test.ipynb"), run, "test.ipynb")


def test_a_chapter_runs_once_and_a_cell_that_raises_stops_the_build(tmp_path):
    """In a real kernel: the first run is cached, the second edition takes it from the cache (the
    cell would print another number), and a raising cell's traceback names the error."""
    editions, cache = load_editions(), tmp_path / "cache"
    nb = new_notebook(cells=[new_code_cell("import time; print(time.monotonic_ns())")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = editions.executed(nb, tmp_path, cache, "once.ipynb")
    again = editions.executed(nb, tmp_path, cache, "once.ipynb")
    assert first.cells[0].outputs[0].text and again.cells[0].outputs == first.cells[0].outputs
    nb.cells.append(new_code_cell("raise KeyError('a broken cell')"))
    with pytest.raises(
        RuntimeError, match=r"(?s)raises.ipynb raised while it ran:.*KeyError: 'a broken cell'"
    ):
        editions.executed(nb, tmp_path, cache, "raises.ipynb")


def test_an_unclosed_hidden_test_region_is_an_error():
    editions = load_editions()
    solution, student = chapter_pair("### BEGIN HIDDEN TESTS\nrecord('01-embeddings/encode', encode)")
    with pytest.raises(ValueError, match="never closed"):
        editions.instructor_notebook(solution, student, "test.ipynb")


MARKED = """Checks answer at once.
<!-- class only -->
Before you submit, validate.
<!-- end class only -->
<!-- reader only -->
Nothing is submitted.
<!-- end reader only -->"""


@pytest.mark.parametrize(
    ("edition", "shown"),
    [
        ("reader", "Checks answer at once.\nNothing is submitted."),
        ("class", "Checks answer at once.\nBefore you submit, validate."),
        ("instructor", "Checks answer at once.\nBefore you submit, validate."),
    ],
)
def test_each_edition_shows_the_text_for_its_readers(edition, shown):
    editions = load_editions()
    nb = new_notebook(cells=[new_markdown_cell(MARKED)])
    out = editions.for_its_readers(nb, editions.EDITIONS[edition]["audience"], "test.ipynb")
    assert out.cells[0].source == shown


@pytest.mark.parametrize(
    "text",
    [
        "<!-- class only -->\nnever closed",
        "<!-- end reader only -->",
        "<!-- class only -->\n<!-- reader only -->",
    ],
)
def test_a_misplaced_audience_marker_is_an_error(text):
    editions = load_editions()
    nb = new_notebook(cells=[new_markdown_cell(text)])
    with pytest.raises(ValueError, match="test.ipynb, cell 0"):
        editions.for_its_readers(nb, "reader", "test.ipynb")


def test_a_test_cell_without_a_check_is_an_error():
    editions = load_editions()
    solution, student = chapter_pair("print('no check here')")
    with pytest.raises(ValueError, match="without a check"):
        editions.reader_notebook(solution, student, "test.ipynb")


# ---- figures with controls, on their own -------------------------------------------------------


def test_an_explorer_stores_every_state_and_each_shared_part_once():
    import bookkit

    controls = [
        bookkit.Slider("layer", range(2)),
        bookkit.Select("query", [("0: a", 0), ("1: b", 1), ("2: c", 2)]),
    ]

    def state(layer, query):
        heat = bookkit.Heatmap([[layer, 0], [1, layer]], ["a", "b"], ["a", "b"], highlight_row=query % 2)
        bars = bookkit.Bars({"w": [layer, query]}, labels=["a", "b"], ymax=1)
        return bookkit.State(f"layer {layer}, query {query}: {'abc'[query]}", [heat, bars])

    data = bookkit.Explorer(controls, state).data()
    assert len(data["states"]) == 6
    assert data["shared"][1]["labels"] == ["a", "b"]  # the same in every state: stored once
    assert "labels" not in data["pool"][data["states"]["0,0"]["panels"][1]]  # no highlight: its number
    heatmaps = {data["states"][k]["panels"][0][0] for k in data["states"]}
    assert len(heatmaps) == 2  # one per layer: not one per state, nor per highlighted row
    assert [data["states"][f"1,{q}"]["panels"][0][1] for q in range(3)] == [0, 1, 0]  # beside it
    assert "highlight" not in data["pool"][data["states"]["1,1"]["panels"][0][0]]
    html = bookkit.Explorer(controls, state)._repr_html_()
    assert 'class="fp-explorer"' in html and "</script></div>" in html


def test_an_explorer_whose_title_does_not_name_a_control_is_refused():
    import bookkit

    with pytest.raises(ValueError, match="does not name"):
        bookkit.Explorer([bookkit.Slider("head", range(2))], lambda head: bookkit.State("a head", []))


def test_an_explorer_never_closes_its_script_early():
    import bookkit

    explorer = bookkit.Explorer(
        [bookkit.Slider("x", [0])], lambda x: bookkit.State(f"x {x}", [bookkit.Html("</script>")])
    )
    html = explorer._repr_html_()
    payload = html.split('class="fp-data">', 1)[1].rsplit("</script>", 1)[0]
    assert "</" not in payload and json.loads(payload.replace("<\\/", "</"))
