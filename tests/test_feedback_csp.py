"""The feedback pages' Content-Security-Policy, in headless Chromium: a page renders its math with
no violation, and markup that got past the escaping (injected here into a copy of the page) runs
nothing.

The page is chapter 1's solution rendered by ``grader.feedback`` (its markdown holds the chapter's
math), with the book's MathJax copied beside it as ``grader.reports`` copies it for a class.
"""

from contextlib import contextmanager
from dataclasses import replace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from test_book import AXE, AXE_RUN, CHROMIUM, CHROMIUM_ARGS, PHONE, chromium
from test_grading import RELEASED, SOLUTION

from grader import feedback, late, lms, reports
from grader.audiences import for_audience
from grader.gradebook import Exercise
from grader.results import Row

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Whatever the page reports as blocked, by directive: listened for before the page's own scripts.
LISTEN = """window.violations = [];
document.addEventListener("securitypolicyviolation", e => window.violations.push(e.effectiveDirective));"""
INJECTED = (
    '<script>document.title = "PWNED by a script";</script>'
    '<img alt="x" src="x" onerror="document.title = \'PWNED by a handler\'">'
    '<a id="link" href="javascript:document.title = \'PWNED by a link\'">link</a>'
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The feedback page, and a copy with student markup that no escaping stopped."""
    if CHROMIUM is None:
        pytest.skip("no Chromium")
    folder = tmp_path_factory.mktemp("feedback")
    reports._install_mathjax(folder / "_static")
    if not (folder / "_static" / "mathjax").exists():
        pytest.fail("book/_static/mathjax is missing: run `make book-assets`")
    nb, released = (nbformat.read(path, as_version=4) for path in (SOLUTION, RELEASED))
    for cell in nb.cells:  # the solutions' Markdown as the released notebook has it, a student's
        if cell.cell_type == "markdown":
            cell.source = for_audience(cell.source, "class")
    page = feedback.render(nb, released, [], "01-embeddings: feedback for ann")
    assert "$" in page  # the chapter's math, for MathJax to typeset
    assert ":::" not in page and "{cite}" not in page and "<strong>In this chapter</strong>" in page
    (folder / "ann").mkdir()
    (folder / "ann" / "clean.html").write_text(page)
    (folder / "ann" / "injected.html").write_text(page.replace("<main>", "<main>" + INJECTED, 1))
    (folder / "ann" / "phone.html").write_text(feedback.render(wide(nb), released, ROWS, "t"))
    (folder / "ann" / "index.html").write_text(reports.index_page("ann", lms.Person("Ann"), TOTALS))
    forging = nbformat.read(SOLUTION, as_version=4)
    forging.cells.insert(1, new_markdown_cell(FORGING_MATH))
    (folder / "ann" / "forged.html").write_text(feedback.render(forging, released, FORGING_ROWS, "t"))
    return folder / "ann"


LONG = "x" * 400  # one word wider than any screen
ROWS = [Row("ann", "01-embeddings", "encode", 0, 1, "wrong", f"your function raised ValueError: {LONG}")]


TOTALS = [  # late, with a changed score; and not submitted
    reports.Total("ann", "01-embeddings", "graded", 8, 12, late.Lateness(3, 3.6, "3 days late"), None, 1, 0),
    reports.Total("ann", "06-cost", "missing", 0, 12, late.ON_TIME, None, 0, 0),
]


# TeX that MathJax's html extension turns into markup: a student's markdown (and the message of an
# error their function raised, shown in a verdict) covered the whole page with a forged score,
# and linked away from it. The page's own math must still typeset; these must not.
FORGING_MATH = (
    r"$\style{position:fixed;top:0;left:0;width:100vw;height:100vh;background:white;z-index:9}"
    r"{\text{Score: 12 / 12}}$ $\href{https://evil.example/login}{sign in}$ $\cssId{forged}{x}$"
    r" $\class{verdict full-marks}{y}$ $\require{html}\style{position:fixed}{z}$"
)
FORGING_ROWS = [
    Row("ann", "01-embeddings", "encode", 0, 1, "wrong", f"your function raised ValueError: {FORGING_MATH}")
]
FORGED = """() => ({
    fixed: [...document.querySelectorAll("body *")].filter(e => getComputedStyle(e).position === "fixed").length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.getAttribute("href")).filter(h => !h.startsWith("#")),
    ids: document.querySelectorAll("#forged").length,
    classes: document.querySelectorAll("mjx-container .verdict, mjx-container .full-marks").length,
})"""


def wide(nb):
    """The notebook with what a phone cannot show whole: a long word and a wide table in a
    student's markdown, and a long output."""
    table = "| " + " | ".join(["column"] * 30) + " |\n|" + "---|" * 30
    lines = "".join(f"line {i}\n" for i in range(2000))
    nb.cells[1:1] = [
        new_markdown_cell(f"{LONG}\n\n{table}"),
        new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text=lines)]),
    ]
    return nb


# Boxes that scroll but that the keyboard cannot reach (to scroll them with the arrow keys).
UNREACHABLE = """() => [...document.querySelectorAll("body *")]
    .filter(e => ["auto", "scroll"].includes(getComputedStyle(e).overflowY) || ["auto", "scroll"].includes(getComputedStyle(e).overflowX))
    .filter(e => (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1) && e.tabIndex < 0)
    .map(e => e.outerHTML.slice(0, 80))"""


@contextmanager
def phone(**options):
    """A browser context as a phone has it (its width, and the page's viewport tag honoured);
    ``options``: more of ``new_context``'s."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            viewport = {"width": PHONE, "height": 800}
            yield browser.new_context(viewport=viewport, is_mobile=True, has_touch=True, **options)
        finally:
            browser.close()


def opened(context, path):
    """The page once MathJax is done: (page, console errors, violated directives)."""
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(LISTEN)
    page.goto(path.as_uri())
    page.evaluate("() => MathJax.startup.promise")
    page.wait_for_load_state("load")
    return page, errors, page.evaluate("() => window.violations")


def test_the_policy_forbids_what_a_page_never_needs():
    rules = dict(rule.split(" ", 1) for rule in feedback.POLICY.split("; "))
    assert rules["default-src"] == "'none'" and "connect-src" not in rules and "frame-src" not in rules
    assert rules["form-action"] == rules["base-uri"] == "'none'" and rules["img-src"] == "data:"
    assert "'unsafe-inline'" not in rules["script-src"] and "'unsafe-eval'" not in rules["script-src"]
    page = feedback.page("t", "")
    assert page.index("Content-Security-Policy") < page.index("<script")


def test_a_notebook_that_could_not_be_run_gets_advice_and_its_reasons():
    reason = "not a valid notebook: ValueError: not JSON"
    rows = [
        Row("ann", "01-embeddings", name, 0, 1, "invalid_notebook", reason) for name in ("encode", "embed")
    ]
    page = feedback.summary_page("t", rows)
    assert "opens in Jupyter" in page and page.count(f"(invalid notebook): {reason}") == 2
    assert "opens in Jupyter" not in feedback.summary_page("t", [replace(rows[0], status="missing")])


def test_a_feedback_page_typesets_its_math_with_no_violation(pages):
    with chromium() as context:
        page, errors, violations = opened(context, pages / "clean.html")
        typeset = page.locator("mjx-container").count()
    assert typeset > 10, "MathJax did not typeset the page's math"
    assert violations == [] and errors == [], (violations, errors)


def test_injected_scripts_handlers_and_links_do_not_run(pages):
    with chromium() as context:
        page, _, violations = opened(context, pages / "injected.html")
        page.click("#link")
        page.wait_for_timeout(200)  # a javascript: link would run as the click's task
        title, typeset = page.title(), page.locator("mjx-container").count()
        violations = page.evaluate("() => window.violations")
    assert title == "01-embeddings: feedback for ann", title
    assert {"script-src-elem", "script-src-attr", "img-src"} <= set(violations), violations
    assert typeset > 10  # the page's own scripts still ran


def test_a_students_math_cannot_restyle_the_page_or_link_away(pages):
    with chromium() as context:
        page, errors, violations = opened(context, pages / "forged.html")
        forged = page.evaluate(FORGED)
        typeset = page.locator("mjx-container").count()
    assert forged == {"fixed": 0, "links": [], "ids": 0, "classes": 0}, forged
    assert typeset > 10 and violations == [], (typeset, violations, errors)


def test_a_feedback_page_fits_a_phone(pages):
    """Nothing makes a page (an assignment's, the index) scroll sideways; a long output scrolls in a
    box of its own, and any box that scrolls can be focused; the summary's exercises link to their
    verdicts, which give the reasons."""
    with phone() as context:
        page, errors, violations = opened(context, pages / "phone.html")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        unreachable = page.evaluate(UNREACHABLE)
        tallest = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('pre.output')].map(p => p.offsetHeight))"
        )
        page.click("a[href='#verdict-encode']")
        verdict = page.locator("#verdict-encode")
        seen = verdict.is_visible() and verdict.bounding_box()["y"] < 800
        text = verdict.inner_text()
        index = context.new_page()
        index.goto((pages / "index.html").as_uri())
        index_widths = index.evaluate(
            "() => [document.querySelector('table').getBoundingClientRect().right, window.innerWidth]"
        )
        grades = index.inner_text("table").replace("\xa0", " ")
    assert unreachable == [], unreachable
    assert widths == [PHONE, PHONE] and index_widths[0] <= PHONE, (widths, index_widths)
    assert "4.4 / 12\tgraded, 3 days late: 3.6 points off 8 / 12, 1 score(s) changed" in grades, grades
    assert tallest < 800, tallest
    assert seen and "ValueError" in text and "(wrong)" in text, text
    assert violations == [] and errors == [], (violations, errors)


def class_view() -> reports.View:
    """Four students of chapter 1, one of whom did not submit: its exercises went each their own
    way, and one exercise's name is long."""
    outcomes = {  # exercise -> (score, status) of ann, bob, cy
        "encode": [(1, "graded"), (1, "graded"), (0, "wrong")],
        "embed": [(1, "graded"), (0, "not_attempted"), (0, "timeout")],
        "a_long_exercise_name_of_forty_characters": [(0, "not_attempted")] * 3,
    }
    students = ["ann", "bob", "cy"]
    lines = [
        reports.Line("embeddings", Row(student, "01-embeddings", name, score, 1, status, ""), score, None)
        for name, results in outcomes.items()
        for student, (score, status) in zip(students, results, strict=True)
    ]
    totals = [reports.Total(s, "01-embeddings", "graded", 1, 3, late.ON_TIME, None, 0, 0) for s in students]
    totals.append(reports.Total("dee", "01-embeddings", "missing", 0, 3, late.ON_TIME, None, 0, 0))
    people = {s: lms.Person(s.title()) for s in [*students, "dee"]}
    exercises = {"01-embeddings": [Exercise("01-embeddings", "embeddings", name, 1) for name in outcomes]}
    return reports.View(lines, totals, people, [], exercises)


def test_the_class_summary_fits_a_phone_and_says_each_bar_in_words(tmp_path):
    """summary.html on a phone: nothing scrolls sideways but its tables' boxes, nothing breaks its
    policy, axe-core finds nothing serious, and each exercise's bar says its shares of the students
    who submitted (three of four), in the widths it is drawn with."""
    path = tmp_path / "summary.html"
    path.write_text(reports.summary_page(class_view()))
    with phone() as context:
        page = context.new_page()
        errors = []
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.add_init_script(LISTEN)
        page.goto(path.as_uri())
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        said = page.eval_on_selector_all(".bar", "bars => bars.map(b => b.getAttribute('aria-label'))")
        drawn = page.eval_on_selector_all(
            ".bar",
            "bars => bars.map(b => [...b.children].map(s => Math.round(100 * s.offsetWidth / b.clientWidth)))",
        )
        violations = page.evaluate("() => window.violations")
    with phone(bypass_csp=True) as context:  # the policy would refuse axe's script
        page = context.new_page()
        page.goto(path.as_uri())
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(AXE_RUN, [[], None])
    assert widths == [PHONE, PHONE], widths
    assert said == [
        "67% full marks, 33% less than full marks",
        "33% full marks, 33% not attempted, 33% timeout, crash, error",
        "100% not attempted",
    ]
    assert drawn == [[67, 33], [33, 33, 33], [100]]
    assert violations == [] and errors == [] and found == [], (violations, errors, found)
