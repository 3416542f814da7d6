// Repairs to the book's theme, each naming the bug it works around. Remove one when the pinned
// theme release fixes it (the browser test in tests/test_book.py says whether it still works).

(() => {
  "use strict";

  // pydata-sphinx-theme 0.17.1's header buttons have a spoken name that differs from what they
  // show (WCAG 2.5.3, "label in name"; axe-core's label-content-name-mismatch): the search button
  // shows "Search Ctrl+K" and is called "Search", and the colour-mode button's icons carry titles
  // ("Light", "Dark") that are read as its text. Speech-control users say what they see. The icons
  // are redrawn by Font Awesome's script (an <i> becomes an <svg> with a <title>) whenever it gets
  // to them, so they are kept quiet as often as they change.
  function quietIcons(button) {
    for (const icon of button.querySelectorAll(".theme-switch")) {
      icon.removeAttribute("title");
      icon.removeAttribute("aria-labelledby");
      icon.removeAttribute("role");
      icon.setAttribute("aria-hidden", "true");
      icon.querySelectorAll("title").forEach((title) => title.remove());
    }
  }

  function nameHeaderButtons() {
    for (const button of document.querySelectorAll(".search-button__button")) {
      const shown = button.textContent.replace(/\s+/g, " ").trim();
      if (shown) button.setAttribute("aria-label", shown);
      button.setAttribute("aria-keyshortcuts", "Control+K");
    }
    for (const button of document.querySelectorAll(".theme-switch-button")) {
      quietIcons(button);
      new MutationObserver(() => quietIcons(button)).observe(button, { childList: true, subtree: true });
    }
  }

  // What is wider than the column scrolls sideways inside its block: a wide equation (in MathJax's
  // container; MathJax 3 cannot break display math across lines, the chapters keep equations
  // narrow), a printed array or line on a phone, and a cell's HTML output (chapter 5's 16-column tables, cut at their ninth column even
  // on a desktop, with nothing to say that more was there). Each one that does is marked so: it
  // shows shadows at the edges that hide more (book.css, .fp-scrolls) and a keyboard can reach it.
  const SCROLLING = [
    ['div.math mjx-container[display="true"]', "Equation, wider than the page: scroll sideways to read it"],
    [".cell_output .output.text_html", "Output, wider than the page: scroll sideways to read it"],
    // On a narrow screen printed arrays keep their columns (book.css): an example's array was cut
    // at its third column on a phone, where nothing showed that it scrolls.
    [".bd-article pre", "Code, wider than the page: scroll sideways to read it"],
  ];

  function markScrolling() {
    for (const [selector, label] of SCROLLING) {
      for (const block of document.querySelectorAll(selector)) markIfScrolls(block, label);
    }
  }

  function markIfScrolls(block, label) {
    const scrolls = block.scrollWidth > block.clientWidth + 1;
    block.classList.toggle("fp-scrolls", scrolls);
    if (scrolls) {
      block.tabIndex = 0;
      block.setAttribute("role", "region");
      block.setAttribute("aria-label", label);
    } else if (block.getAttribute("role") === "region") {
      block.removeAttribute("tabindex");
      block.removeAttribute("role");
      block.removeAttribute("aria-label");
    }
  }

  // Code wraps (book.css) back to the page's edge, where a wrapped line of an exercise's docstring
  // looked like the docstring's own indented lines (its "Task:" line went on at column 0, its next
  // line at column 8). Each line of code becomes its own box, so that what wraps goes on under
  // the line's own text, a little further in, beside a thin bar (book.css, .fp-line). Pygments
  // closes its spans at each line's end, so every line is whole HTML. The boxes are inline blocks:
  // the text a copy button or a screen reader takes is the code as it was, line for line.
  function hangWrappedCode() {
    for (const pre of document.querySelectorAll(".bd-article div.highlight pre")) {
      if (pre.querySelector(".fp-line")) continue;
      const lines = pre.innerHTML.split("\n");
      const last = lines.pop(); // after the last newline: usually nothing
      const boxed = lines.map((line) => `<span class="fp-line">${line}\n</span>`);
      if (last) boxed.push(`<span class="fp-line">${last}</span>`);
      pre.innerHTML = boxed.join("");
      for (const line of pre.querySelectorAll(".fp-line")) {
        const indent = /^ */.exec(line.textContent)[0].length;
        line.style.setProperty("--fp-indent", `${indent}ch`);
      }
    }
  }

  function whenMathIsTypeset(callback) {
    const mathjax = window.MathJax;
    if (mathjax && mathjax.startup && mathjax.startup.promise) mathjax.startup.promise.then(callback);
    else callback();
  }

  // pydata-sphinx-theme 0.17.1 shows the sidebars as dialogs below the wide breakpoint; a tap on a
  // link to a section of this page (the "Contents" of a chapter) scrolled the page behind the
  // dialog, which stayed open over three quarters of a phone's screen.
  function closeDialogsOnInPageLinks() {
    for (const id of ["pst-primary-sidebar-modal", "pst-secondary-sidebar-modal"]) {
      const dialog = document.getElementById(id);
      if (!dialog) continue;
      dialog.addEventListener("click", (event) => {
        const link = event.target.closest("a[href]");
        if (dialog.open && link && link.hash && link.pathname === window.location.pathname) dialog.close();
      });
    }
  }

  // pydata-sphinx-theme 0.17.1 gives the header's buttons Bootstrap tooltips, shown on hover and
  // focus. A touch screen has no hover: a tap (one that closes the contents menu, say) shows a
  // tooltip that then stays over the next button and takes the next tap. Where nothing can hover,
  // the tooltips are turned off; the buttons keep their names (aria-label) for screen readers.
  function noTooltipsWithoutHover() {
    if (!window.bootstrap || !window.matchMedia("(hover: none)").matches) return;
    for (const element of document.querySelectorAll('[data-bs-toggle="tooltip"]')) {
      window.bootstrap.Tooltip.getOrCreateInstance(element).disable();
    }
  }

  // pydata-sphinx-theme 0.17.1 floats its "Back to top" button over the middle of the text when
  // the reader scrolls up, covering words (sphinx-book-theme hides it from 1200 px up). It goes
  // into the sticky article header instead, an arrow first among the buttons on the right, where
  // it appears and disappears as before without moving the others or covering anything.
  function backToTopInHeader() {
    const button = document.getElementById("pst-back-to-top");
    const buttons = document.querySelector(".bd-header-article .article-header-buttons");
    if (!button || !buttons) return;
    button.setAttribute("aria-label", "Back to top");
    button.title = "Back to top";
    buttons.prepend(button);
  }

  // sphinx-book-theme 1.3.0's full-screen button asks the Fullscreen API for the whole page,
  // which an iPhone's browsers do not give a page (only a video): there the button did nothing.
  // It is shown only where the page can go full screen.
  function fullScreenOnlyWhereItWorks() {
    if (document.fullscreenEnabled || document.webkitFullscreenEnabled) return;
    document.querySelectorAll(".btn-fullscreen-button").forEach((button) => (button.hidden = true));
  }

  // Sphinx's search results quote the pages' text, where an equation is its TeX source: MathJax
  // (loaded on the search page by book/_ext/search_math.py) typesets each summary as it comes.
  function typesetSearchResults() {
    const results = document.getElementById("search-results");
    if (!results) return;
    new MutationObserver((records) => {
      const summaries = records
        .flatMap((record) => [...record.addedNodes])
        .filter((node) => node.matches && node.matches("p.context"));
      if (summaries.length) whenMathIsTypeset(() => window.MathJax.typesetPromise(summaries));
    }).observe(results, { childList: true, subtree: true });
  }

  function start() {
    typesetSearchResults();
    fullScreenOnlyWhereItWorks();
    backToTopInHeader();
    closeDialogsOnInPageLinks();
    nameHeaderButtons();
    hangWrappedCode();
    whenMathIsTypeset(markScrolling);
    window.addEventListener("resize", () => whenMathIsTypeset(markScrolling));
    // after the theme's own start (on DOMContentLoaded), which makes the tooltips
    if (document.readyState === "complete") noTooltipsWithoutHover();
    else window.addEventListener("load", noTooltipsWithoutHover);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
