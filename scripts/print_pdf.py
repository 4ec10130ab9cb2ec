"""Print a built HTML page to PDF with headless Chromium, after MathJax has typeset it.

Used by ``scripts/pdf.sh`` on the single-page build of the book:

    python scripts/print_pdf.py _build/singlehtml book/intro.html _build/pdf/llm-from-scratch.pdf

The site folder is served on 127.0.0.1 (no network needed). Hidden solutions are
opened, as they are when a reader prints a page, the PDF gets A4 pages numbered in the
footer, and its outline (bookmarks) follows the headings.
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

import site_browser

FOOTER = (
    '<div style="font-size: 8px; width: 100%; text-align: center; color: #555;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


def _fix_base(html: Path, depth: int) -> None:
    """Make a page in a sub-folder resolve its links from the site's root.

    Sphinx's single-page builder writes the root document (``book/intro.html``) with
    links relative to the site's root (``_static/...``); a ``<base>`` element fixes them,
    and keeps its ``book/intro.html#...`` links pointing at the page itself.
    """
    text = html.read_text(encoding="utf-8")
    base = f'<base href="{"../" * depth}">'
    if depth and base not in text:
        html.write_text(text.replace("<head>", f"<head>\n  {base}", 1), encoding="utf-8")


def print_pdf(site: Path, page: str, pdf: Path) -> int:
    """Print ``site/page`` to ``pdf``; returns the PDF's size in bytes.

    Raises:
        FileNotFoundError: if the page does not exist.
        RuntimeError: if MathJax fails to typeset the page.
    """
    site = site.resolve()
    html = site / page
    if not html.is_file():
        raise FileNotFoundError(f"{html} not found: build it first (scripts/pdf.sh)")
    if not (html.parent / "_static").is_dir() and (site / "_static").is_dir():
        _fix_base(html, depth=len(Path(page).parts) - 1)
    with site_browser.serve(site) as url:
        driver = site_browser.start_chromium()
        try:
            driver.get(url + page)
            state = site_browser.wait_for_mathjax(driver)
            if state not in ("ok", "none"):
                raise RuntimeError(f"MathJax did not typeset {page}: {state}")
            # sphinx-togglebutton opens hidden content on "beforeprint" (toggleOpenOnPrint);
            # the headings' "#" permalinks would end up in the PDF's outline.
            driver.execute_script(
                "window.dispatchEvent(new Event('beforeprint'));"
                "document.querySelectorAll('a.headerlink').forEach((a) => a.remove());"
            )
            time.sleep(0.5)
            result = driver.execute_cdp_cmd(
                "Page.printToPDF",
                {
                    "printBackground": True,
                    "paperWidth": 8.27,  # A4, in inches
                    "paperHeight": 11.69,
                    "marginTop": 0.6,
                    "marginBottom": 0.7,
                    "marginLeft": 0.6,
                    "marginRight": 0.6,
                    "displayHeaderFooter": True,
                    "headerTemplate": "<div></div>",
                    "footerTemplate": FOOTER,
                    "generateDocumentOutline": True,
                },
            )
        finally:
            driver.quit()
    data = base64.b64decode(result["data"])
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(data)
    return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site's folder")
    parser.add_argument("page", help="the page to print, relative to the site's folder")
    parser.add_argument("pdf", type=Path, help="where to write the PDF")
    args = parser.parse_args()
    size = print_pdf(args.site, args.page, args.pdf)
    print(f"== the PDF is {args.pdf} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
