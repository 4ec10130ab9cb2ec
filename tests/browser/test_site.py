"""The built site, read in headless Chromium the way a reader's browser reads it.

The site is served on 127.0.0.1 and every other host fails to resolve, so each check
also proves that the site works offline. For every page: no console errors, no raw TeX
left after MathJax, every image loaded, no executed cell shows an error, traceback or
stderr, and every internal link (with its ``#anchor``) resolves. For every chapter:
the "About this chapter" header with its glued run time, the "How to cite this chapter"
box, exercises whose solutions open, a title numbered once, and a page that fits a
phone's width. The search page finds "attention". Screenshots of each chapter's first
screen (desktop and phone) are saved under ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest
import site_browser

SITE = Path(os.environ["LLMSCRATCH_SITE"]).resolve()
SCREENSHOTS = Path(os.environ.get("LLMSCRATCH_SCREENSHOTS", SITE.parent / "screenshots"))
CHAPTER = re.compile(r"^book/\d\d-[^/]*\.html$")


def _pages() -> list[str]:
    pages = []
    for path in sorted(SITE.rglob("*.html")):
        rel = path.relative_to(SITE)
        if not rel.parts[0].startswith("_"):  # _static, _sources, _images: not pages
            pages.append(rel.as_posix())
    return pages


PAGES = _pages()
CHAPTERS = [p for p in PAGES if CHAPTER.match(p)]


def test_the_site_has_pages():
    assert "index.html" in PAGES and "search.html" in PAGES
    assert CHAPTERS, f"no chapter pages (book/NN-*.html) in {SITE}"


# Collects, in the page, what the checks below need; returned as one JSON-like dict.
REPORT_JS = r"""
const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .cell_output';
const texPattern = /\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac|\$\$|\$[^$\s][^$\n]{0,80}\$/;
const rawTex = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  const el = node.parentElement;
  if (!el || el.closest(skip)) continue;
  if (texPattern.test(node.textContent)) rawTex.push(node.textContent.trim().slice(0, 120));
}
const titled = (title) => [...document.querySelectorAll('.admonition')].find(
  (a) => (a.querySelector('.admonition-title') || {}).textContent?.trim() === title);
const about = titled('About this chapter');
const cite = document.querySelector('.cite-box');
const h1 = document.querySelector('article.bd-article h1');
return {
  rawTex: rawTex,
  unrenderedMath: [...document.querySelectorAll('.math')]
    .filter((e) => !e.querySelector('mjx-container')).map((e) => e.textContent.slice(0, 80)),
  mathErrors: [...document.querySelectorAll('mjx-merror')]
    .map((e) => e.getAttribute('data-mjx-error') || e.textContent),
  brokenImages: [...document.images]
    .filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.currentSrc || i.src),
  imageCount: document.images.length,
  imageAlts: [...document.querySelectorAll('article.bd-article img')]
    .map((i) => [i.getAttribute('src') || '', i.getAttribute('alt') || '']),
  cellErrors: [...document.querySelectorAll(
      '.cell_output .output.traceback, .cell_output .output.error, .cell_output .output.stderr')]
    .map((e) => e.textContent.trim().slice(0, 200))
    .concat([...document.querySelectorAll('.cell_output')]
      .filter((e) => e.textContent.includes('Traceback (most recent call last)'))
      .map((e) => e.textContent.trim().slice(0, 200))),
  links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
  external: performance.getEntriesByType('resource').map((e) => e.name)
    .filter((u) => !u.startsWith(location.origin) && !u.startsWith('data:')),
  h1: h1 ? h1.textContent.replace(/#$/, '').trim() : null,
  about: about ? about.textContent : null,
  cite: cite ? cite.textContent : null,
  figuresWithImage: [...document.querySelectorAll('figure[id], div.figure[id]')]
    .filter((f) => f.querySelector('img')).map((f) => f.id),
  copyButtons: document.querySelectorAll('div.cell button.copybtn').length,
  codeCells: document.querySelectorAll('div.cell_input').length,
  exercises: document.querySelectorAll('.exercise').length,
  solutions: document.querySelectorAll('.solution').length,
  pageWidth: document.documentElement.scrollWidth,
  viewportWidth: window.innerWidth,
};
"""


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _load(driver, url: str) -> str:
    """Open ``url``, wait for MathJax and web fonts; returns MathJax's state."""
    driver.get(url)
    state = site_browser.wait_for_mathjax(driver)
    driver.set_script_timeout(30)
    driver.execute_async_script("document.fonts.ready.then(() => arguments[0]())")
    return state


@pytest.fixture(scope="session")
def base_url():
    with site_browser.serve(SITE) as url:
        yield url


@pytest.fixture(scope="session")
def desktop():
    driver = site_browser.start_chromium(width=1280, height=800)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def phone():
    driver = site_browser.start_chromium(phone=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def report(base_url, desktop):
    """``report(page)``: what the desktop browser saw on ``page``, loaded once."""

    @functools.lru_cache(maxsize=None)
    def get(page: str) -> dict:
        _severe(desktop)  # drop messages from earlier pages
        state = _load(desktop, base_url + page)
        data = desktop.execute_script(REPORT_JS)
        data["mathjax"] = state
        data["console"] = _severe(desktop)
        if CHAPTER.match(page):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            desktop.execute_script("window.scrollTo(0, 0)")
            desktop.save_screenshot(str(SCREENSHOTS / f"{Path(page).stem}-desktop.png"))
        return data

    return get


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> tuple[int, frozenset[str]]:
    """HTTP status of ``url`` and the ids (anchors) its HTML defines."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            status = response.status
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, frozenset()
    ids: frozenset[str] = frozenset()
    if "html" in kind:
        ids = frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', body.decode("utf-8", "replace")))
    return status, ids


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", PAGES)
def test_no_console_errors(report, page):
    assert report(page)["console"] == []


@pytest.mark.parametrize("page", PAGES)
def test_no_network_outside_the_site(report, page):
    assert report(page)["external"] == []


@pytest.mark.parametrize("page", PAGES)
def test_math_rendered(report, page):
    r = report(page)
    assert r["mathjax"] in ("ok", "none"), r["mathjax"]
    assert r["unrenderedMath"] == [], "math that MathJax did not typeset"
    assert r["mathErrors"] == [], "TeX errors"
    assert r["rawTex"] == [], "raw TeX left in the text"


@pytest.mark.parametrize("page", PAGES)
def test_images_loaded(report, page):
    assert report(page)["brokenImages"] == []


@pytest.mark.parametrize("page", PAGES)
def test_no_cell_errors(report, page):
    assert report(page)["cellErrors"] == []


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(report, base_url, page):
    broken = []
    for link in sorted(set(report(page)["links"])):
        if not link.startswith(base_url):
            continue
        target, fragment = urldefrag(link)
        status, ids = _fetch(target)
        if status != 200:
            broken.append(f"{link}: HTTP {status}")
        elif fragment and target.endswith(".html") and unquote(fragment) not in ids:
            broken.append(f"{link}: no #{fragment} in the page")
    assert broken == []


# --------------------------------------------------------------------------- chapters


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_title_numbered_once(report, page):
    title = report(page)["h1"]
    assert re.match(r"^\d+\. \D", title), f"{title!r}: expected 'N. Title', the number added once"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_header(report, page):
    about = report(page)["about"]
    assert about is not None, 'no "About this chapter" admonition'
    for part in ("Prerequisites.", "What you will build.", "Run time."):
        assert part in about
    assert re.search(r"ran in\s+\d+\s+seconds", about), "the run time is not glued in"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_cite_box(report, page):
    cite = report(page)["cite"]
    assert cite is not None and "@incollection" in cite
    assert f"{Path(page).stem}.html" in cite


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_figures_drawn(report, page):
    """Every cell captioned as a figure (``mystnb: figure:``) shows its image."""
    notebook = json.loads((SITE / "_sources" / page).with_suffix(".ipynb").read_text())
    names = [
        cell["metadata"]["mystnb"]["figure"].get("name")
        for cell in notebook["cells"]
        if "figure" in cell.get("metadata", {}).get("mystnb", {})
    ]
    shown = report(page)["figuresWithImage"]
    assert [n for n in names if n not in shown] == [], "captioned figures without an image"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_images_have_alt_text(report, page):
    """A screen reader hears what each image shows: a sentence of alt text, not its file name
    (myst-nb's default alt is the image's path; cells set it with ``mystnb: image: alt:``)."""
    bad = [src for src, alt in report(page)["imageAlts"]
           if len(alt) < 40 or re.search(r"\.(png|jpe?g|svg|gif)$", alt.strip(), re.IGNORECASE)]
    assert bad == [], "images whose alt text is missing, too short or a file name"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_exercises_have_solutions(report, page):
    r = report(page)
    assert r["exercises"] > 0, "no exercises"
    assert r["solutions"] == r["exercises"], "an exercise without its worked solution"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_downloads_and_launch_buttons(report, base_url, page):
    """The page as a notebook and as source, Binder and Colab, and copyable code."""
    r = report(page)
    stem = Path(page).with_suffix("")
    links = set(r["links"])
    for suffix in (".ipynb", ".md"):
        assert f"{base_url}_sources/{stem}{suffix}" in links, f"no {suffix} download"
    notebook = json.loads((SITE / "_sources" / page).with_suffix(".ipynb").read_text())
    assert notebook["cells"][0]["id"] == "llmscratch-setup", "no set-up cell for Colab"
    binder = [u for u in links if u.startswith("https://mybinder.org/v2/gh/")]
    colab = [u for u in links if u.startswith("https://colab.research.google.com/github/")]
    assert binder and binder[0].endswith(f"urlpath=lab/tree/{stem}.md")
    assert colab and colab[0].endswith(f"/blob/gh-pages/_sources/{stem}.ipynb")
    assert r["codeCells"] == 0 or r["copyButtons"] > 0, "code cells without a copy button"


@pytest.mark.parametrize("page", CHAPTERS)
def test_solution_toggle_opens(base_url, desktop, page):
    from selenium.webdriver.common.by import By

    _load(desktop, base_url + page)
    solution = desktop.find_element(By.CSS_SELECTOR, ".solution")
    content = solution.find_element(By.CSS_SELECTOR, ".admonition-title ~ *")
    desktop.execute_script("arguments[0].scrollIntoView({block: 'center'})", solution)
    assert not content.is_displayed(), "the solution is not hidden before the click"
    solution.find_element(By.CSS_SELECTOR, "button.toggle-button").click()
    deadline = time.monotonic() + 5
    while not content.is_displayed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert content.is_displayed(), "the solution did not open"
    desktop.get("about:blank")  # the report cache must not see a clicked page


@pytest.mark.parametrize("page", CHAPTERS)
def test_phone_first_screen(base_url, phone, page):
    _load(phone, base_url + page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.save_screenshot(str(SCREENSHOTS / f"{Path(page).stem}-phone.png"))
    width, viewport = phone.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width <= viewport, f"the page is {width}px wide on a {viewport}px phone screen"
    assert _severe(phone) == []


# --------------------------------------------------------------------------- search


def test_search_finds_attention(base_url, desktop):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    desktop.get(base_url + "search.html?q=attention")
    results = WebDriverWait(desktop, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
    )
    assert any("book/" in r.find_element(By.TAG_NAME, "a").get_attribute("href") for r in results)
