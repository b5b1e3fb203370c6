"""The built website as a reader meets it, in headless Chromium with no network.

Every page of `_build/html` is served on 127.0.0.1 and opened at desktop width (1280 px) and phone width (400 px)
in the system's Chromium, driven over the DevTools protocol (tests/cdp.py). One crawl collects what a reader would
trip over; each test below reports one kind of defect, naming the pages. It needs Debian's `chromium` (and
`fonts-noto-cjk` for Korean text); without a browser the tests are skipped, and `make.py test` says so.
Screenshots of a chapter at both widths are written to `_build/screenshots/` for a maintainer to look at.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from cdp import Site, Tab, find_browser
from conftest import ROOT

HTML = Path(os.environ.get("COMPANION_SITE", ROOT / "_build" / "html"))  # another built site, to compare
SCREENSHOTS = HTML.parent / "screenshots"
BROWSER = find_browser()
if BROWSER is None and os.environ.get("COMPANION_REQUIRE_BROWSER"):
    raise RuntimeError("COMPANION_REQUIRE_BROWSER is set but no Chromium was found (set COMPANION_CHROMIUM to its path)")
SCREENSHOT_PAGE = "book/decoding/top-p.html"
SEARCHES = {"beam": "book/decoding/beam-search.html", "샘플링": "book/decoding/top-p.html"}
TIME_BUDGET_S = 120

pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no Chromium: install it (apt-get install chromium fonts-noto-cjk) "
                       "or run .ci/run, which installs it"),
    pytest.mark.skipif(not (HTML / "index.html").exists(), reason="the book is not built (python3 make.py book)"),
]

# One JavaScript probe per page: everything about the rendered page a reader could trip over.
PROBE = r"""
(async () => {
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  // Images: make lazy ones load, then wait for them.
  const images = [...document.images];
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.complete ? null :
    new Promise((done) => { img.onload = img.onerror = done; setTimeout(done, 5000); })));
  const brokenImages = images.filter((img) => !img.complete || img.naturalWidth === 0)
                             .map((img) => img.getAttribute("src"));
  // Math: every math element typeset by MathJax, no MathJax error, no backslash left in the rendering.
  const math = [...document.querySelectorAll("span.math, div.math")];
  const rawMath = math.filter((el) => !el.querySelector("mjx-container")).map((el) => el.textContent.slice(0, 60));
  const mathErrors = [...document.querySelectorAll("mjx-merror, [data-mjx-error]")]
                       .map((el) => el.getAttribute("data-mjx-error") || el.textContent.slice(0, 60));
  const backslashes = [...document.querySelectorAll("mjx-container")]
    .filter((el) => el.querySelector("mjx-c.mjx-c5C") || /\\/.test(el.querySelector("mjx-utext")?.textContent || ""))
    .map((el) => (el.closest(".math") || el).getAttribute("title") || el.parentElement.textContent.slice(0, 60));
  // Outputs: wider than their box at this width, and progress bars drawn as staircases.
  const outputs = [...document.querySelectorAll(".cell_output pre")];
  const wide = outputs.filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
    .map((pre) => {
      const longest = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      return `${longest.length} chars: ${longest.slice(0, 70)}`;
    });
  const bar = /^(.*?)\s*\d{1,3}%\s*\|/;
  const staircases = [];
  for (const pre of outputs) {
    const seen = {};
    for (const line of pre.textContent.split(/[\n\r]/)) {
      const m = bar.exec(line) || /^(.*?)\s*\d+\/\d+ \[\d/.exec(line);
      if (!m) continue;
      seen[m[1]] = (seen[m[1]] || 0) + 1;
      if (seen[m[1]] === 2) staircases.push(line.slice(0, 80));
    }
  }
  // Solutions: every sphinx-exercise solution collapsed until asked for.
  const solutions = [...document.querySelectorAll(".solution")].map((el) => {
    const body = [...el.children].filter((c) => !c.classList.contains("admonition-title"));
    return { id: el.id, title: el.querySelector(".admonition-title")?.textContent.trim().slice(0, 60),
             hidden: body.every((c) => !shown(c)) };
  });
  // Figures: every image a cell draws sits in a figure with a numbered caption.
  const uncaptioned = [...document.querySelectorAll(".cell_output img")]
    .filter((img) => !img.closest("figure")?.querySelector("figcaption .caption-number"))
    .map((img) => img.getAttribute("src").split("/").pop().slice(0, 24));
  const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
  const exercises = [...document.querySelectorAll(".exercise .admonition-title, .exercise p.admonition-title")]
    .map((el) => el.textContent.trim().slice(0, 40));
  const figures = [...document.querySelectorAll("figure .caption-number")].map((el) => el.textContent.trim());
  return { brokenImages, uncaptioned, rawMath, mathErrors, backslashes, wide, staircases, solutions, links, exercises,
           figures, title: document.title };
})()
"""

# The visible chapter list in the primary sidebar (or the dialog it opens in): links a reader can click.
SIDEBAR_LINKS = r"""
(() => {
  const links = [...document.querySelectorAll(
    ".bd-sidebar-primary nav a.reference, dialog[open] nav a.reference, .bd-sidebar-primary .bd-links a")];
  return links.filter((a) => {
    const r = a.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    const x = r.left + Math.min(r.width / 2, 20), y = r.top + r.height / 2;
    if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return false;
    const hit = document.elementFromPoint(x, y);
    return hit && (hit === a || a.contains(hit));
  }).length;
})()
"""

# The sidebar toggle (☰) in the header: where to click it, if a reader can see it.
TOGGLE = r"""
(() => {
  const toggles = [...document.querySelectorAll(".primary-toggle, label.sidebar-toggle.primary-toggle")];
  for (const t of toggles) {
    const r = t.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0 || r.top < 0 || r.top > innerHeight) continue;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    if (hit && (hit === t || t.contains(hit))) return { x, y };
  }
  return null;
})()
"""


@dataclass
class Crawl:
    problems: dict[str, list[str]] = field(default_factory=dict)
    searches: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    links: dict[str, set[str]] = field(default_factory=dict)
    seconds: float = 0.0
    pages: int = 0

    def add(self, kind: str, page: str, items) -> None:
        for item in items:
            self.problems.setdefault(kind, []).append(f"{page}: {item}")

    def of(self, kind: str) -> list[str]:
        return self.problems.get(kind, [])


def site_pages() -> list[str]:
    skip = ("_static/", "_sources/", "_images/", "_sphinx_design_static/")
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).as_posix().startswith(skip))


def check_page(tab: Tab, site: Site, page: str, crawl: Crawl) -> None:
    tab.resize(1280, 900)
    tab.clear()
    tab.goto(site.url + page)
    probe = tab.evaluate(PROBE)
    for kind in ("brokenImages", "uncaptioned", "rawMath", "mathErrors", "backslashes", "wide", "staircases"):
        crawl.add(kind, page, probe[kind])
    crawl.links[page] = set(probe["links"])
    firsts = probe["exercises"][:1] + probe["figures"][:1]
    crawl.add("numbers", page, [f"the first is {t!r}" for t in firsts if not re.search(r"\b1\b", t)])
    closed = [solution for solution in probe["solutions"] if solution["hidden"]]
    crawl.add("solutions", page, [f"{s['title']} is open before a click" for s in probe["solutions"]
                                  if not s["hidden"]])
    for solution in closed:  # a real click on each title, then one look at them all
        where = tab.evaluate(
            f"(() => {{ const t = document.getElementById({solution['id']!r}).querySelector('.admonition-title');"
            " t.scrollIntoView({block: 'center', behavior: 'instant'}); const r = t.getBoundingClientRect();"
            " return {x: r.left + 30, y: r.top + r.height / 2}; })()")
        tab.click(where["x"], where["y"])
    if closed:
        tab.pump(0.2)
        opened = tab.evaluate(
            f"{[s['id'] for s in closed]!r}.map(id => [...document.getElementById(id).children]"
            ".filter(c => !c.classList.contains('admonition-title'))"
            ".some(c => c.getBoundingClientRect().height > 0))")
        crawl.add("solutions", page, [f"{s['title']} does not open on a click"
                                      for s, ok in zip(closed, opened, strict=True) if not ok])

    # Phone width: the chapter list must be reachable through the visible ☰ toggle.
    tab.resize(400, 800, mobile=True)
    tab.goto(site.url + page, settle=0.2)
    if page == SCREENSHOT_PAGE:
        tab.screenshot(SCREENSHOTS / "chapter-phone.png")
    toggle = tab.evaluate(TOGGLE)
    if toggle is None:
        crawl.add("phone-sidebar", page, ["no visible sidebar toggle at 400 px"])
    else:
        tab.click(toggle["x"], toggle["y"])
        tab.pump(0.4)
        if tab.evaluate(SIDEBAR_LINKS) < 3:
            crawl.add("phone-sidebar", page, ["the toggle does not show the chapter list at 400 px"])
    crawl.add("console", page, tab.errors)
    crawl.add("failed-loads", page, tab.failed)
    crawl.add("foreign-requests", page, tab.foreign)


def check_desktop_toggle(tab: Tab, site: Site, crawl: Crawl) -> None:
    tab.resize(1280, 900)
    tab.clear()
    tab.goto(site.url + SCREENSHOT_PAGE)
    tab.screenshot(SCREENSHOTS / "chapter-desktop.png")
    searches = tab.evaluate(
        "[...document.querySelectorAll('input[type=search], .search-button-field, .search-button__button')]"
        ".filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0"
        " && getComputedStyle(el).visibility !== 'hidden'; }).length")
    if searches != 1:
        crawl.add("desktop-toggle", SCREENSHOT_PAGE, [f"{searches} search boxes visible at 1280 px, not one"])
    before = tab.evaluate(SIDEBAR_LINKS)
    toggle = tab.evaluate(TOGGLE)
    if toggle is None:
        crawl.add("desktop-toggle", SCREENSHOT_PAGE, ["no visible sidebar toggle at 1280 px"])
        return
    tab.click(toggle["x"], toggle["y"])
    tab.pump(0.5)
    after = tab.evaluate(SIDEBAR_LINKS)
    if before < 3 or after != 0:
        crawl.add("desktop-toggle", SCREENSHOT_PAGE,
                  [f"the ☰ toggle does not hide the chapter list ({before} links visible before, {after} after)"])
    crawl.add("console", f"{SCREENSHOT_PAGE} (toggled)", tab.errors)


def run_searches(tab: Tab, site: Site, crawl: Crawl) -> None:
    tab.resize(1280, 900)
    for query in SEARCHES:
        tab.clear()
        tab.goto(f"{site.url}search.html?q={query}")
        results = []
        for _ in range(100):
            results = tab.evaluate(
                "document.querySelector('#search-results .search-summary') ?"
                " [...document.querySelectorAll('#search-results ul.search li')].map(li =>"
                " [li.querySelector('a').href, (li.querySelector('.context') || {textContent: ''}).textContent])"
                " : null")
            if results is not None:
                break
            tab.pump(0.1)
        crawl.searches[query] = [(urlparse(href).path.lstrip("/"), text) for href, text in results or []]
        crawl.add("console", f"search {query}", tab.errors)


@pytest.fixture(scope="module")
def crawl() -> Crawl:
    start = time.monotonic()
    site = Site(HTML)
    tab = Tab(BROWSER)
    result = Crawl()
    try:
        for page in site_pages():
            check_page(tab, site, page, result)
            result.pages += 1
        check_desktop_toggle(tab, site, result)
        run_searches(tab, site, result)
    finally:
        tab.close()
        site.close()
    result.seconds = time.monotonic() - start
    print(f"\nbrowser test: {result.pages} pages in {result.seconds:.1f} s")
    return result


def test_no_console_errors(crawl):
    assert not crawl.of("console"), "\n".join(crawl.of("console"))


def test_every_load_succeeds_and_stays_local(crawl):
    assert not crawl.of("failed-loads"), "\n".join(crawl.of("failed-loads"))
    assert not crawl.of("foreign-requests"), "\n".join(crawl.of("foreign-requests"))


def test_math_renders(crawl):
    problems = crawl.of("rawMath") + crawl.of("mathErrors") + crawl.of("backslashes")
    assert not problems, "\n".join(problems)


def test_every_image_loads(crawl):
    assert not crawl.of("brokenImages"), "\n".join(crawl.of("brokenImages"))


def test_figures_have_numbered_captions(crawl):
    assert not crawl.of("uncaptioned"), "\n".join(crawl.of("uncaptioned"))


def test_solutions_are_collapsed_and_open_on_click(crawl):
    assert not crawl.of("solutions"), "\n".join(crawl.of("solutions"))


def test_exercises_and_figures_are_numbered_per_chapter(crawl):
    assert not crawl.of("numbers"), "\n".join(crawl.of("numbers"))


def test_chapter_list_reachable_at_phone_width(crawl):
    assert not crawl.of("phone-sidebar"), "\n".join(crawl.of("phone-sidebar"))


def test_one_search_box_and_a_working_toggle_on_desktop(crawl):
    assert not crawl.of("desktop-toggle"), "\n".join(crawl.of("desktop-toggle"))


@pytest.mark.parametrize("query", SEARCHES)
def test_search_finds_the_chapter(crawl, query):
    found = crawl.searches.get(query, [])
    assert any(path == SEARCHES[query] for path, _ in found), f"{query!r} found {[p for p, _ in found]}"
    # A snippet shows the page's text, not the labels of its header buttons.
    for path, snippet in found:
        assert not re.search(r"\.(ipynb|md|pdf)\b|Fullscreen|Open issue|Repository", snippet[:120]), (path, snippet)


def test_internal_links_and_anchors_resolve(crawl):
    ids: dict[Path, set[str]] = {}
    broken = []
    for page, links in crawl.links.items():
        for link in sorted(links):
            url = urlparse(link)
            if url.scheme not in {"http", "https"} or url.hostname != "127.0.0.1":
                continue
            target = HTML / unquote(url.path).lstrip("/")
            if url.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page}: {unquote(url.path)} does not exist")
                continue
            anchor = unquote(url.fragment)
            if anchor and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
                if anchor not in ids[target]:
                    broken.append(f"{page}: #{anchor} is not in {target.relative_to(HTML)}")
    assert crawl.links, "no page was crawled"
    assert not broken, "\n".join(broken)


def test_outputs_fit_the_column(crawl):
    assert not crawl.of("wide"), "\n".join(crawl.of("wide"))


def test_no_progress_bar_staircase(crawl):
    assert not crawl.of("staircases"), "\n".join(crawl.of("staircases"))


def test_screenshots_and_time(crawl):
    for name in ("chapter-desktop.png", "chapter-phone.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name
    assert crawl.seconds <= TIME_BUDGET_S, f"the browser test took {crawl.seconds:.0f} s"
