"""Serve a built site on 127.0.0.1 and open it in headless Chromium (Selenium).

Shared by the browser tests (``tests/browser``) and the PDF script (``scripts/pdf.py``).
The browser is the system's Chromium and its matching ChromeDriver (Debian's
``chromium`` and ``chromium-driver``, installed by ``.ci/run``); Selenium never downloads
one. Set ``LLMSCRATCH_CHROMIUM`` / ``LLMSCRATCH_CHROMEDRIVER`` to use others, e.g. the
Google Chrome and ChromeDriver of a GitHub runner.

Every host other than 127.0.0.1 fails to resolve in this browser, so a page that needs
the network (a CDN script, a web font) shows it as a console error: the site must work
offline.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PHONE = {"width": 390, "height": 844, "pixelRatio": 2}  # an ordinary phone, in CSS pixels
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)


def find_chromium() -> tuple[str, str]:
    """Paths of the Chromium browser and its ChromeDriver.

    Raises:
        RuntimeError: if either is missing (with the command that installs them).
    """
    browser = os.environ.get("LLMSCRATCH_CHROMIUM") or next(
        (p for p in map(shutil.which, BROWSERS) if p), None
    )
    driver = os.environ.get("LLMSCRATCH_CHROMEDRIVER") or shutil.which("chromedriver")
    if driver is None and os.environ.get("CHROMEWEBDRIVER"):  # GitHub's runner images
        driver = str(Path(os.environ["CHROMEWEBDRIVER"]) / "chromedriver")
    if not browser or not driver or not Path(driver).exists():
        raise RuntimeError(
            f"Chromium ({browser}) or ChromeDriver ({driver}) not found: "
            "apt-get install chromium chromium-driver (Debian), or set "
            "LLMSCRATCH_CHROMIUM and LLMSCRATCH_CHROMEDRIVER"
        )
    return browser, driver


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise FileNotFoundError(f"{directory} holds no index.html: build the site first")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def start_chromium(*, width: int = 1280, height: int = 800, phone: bool = False):
    """A headless Chromium driven by Selenium; the caller must ``quit()`` it.

    Args:
        width, height: the window size in CSS pixels (ignored when ``phone``).
        phone: emulate a phone (``PHONE``: 390 x 844 CSS pixels, touch, mobile user agent).
    """
    from selenium import webdriver

    browser, driver = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if phone:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": PHONE, "userAgent": PHONE_UA}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver)
    return webdriver.Chrome(options=options, service=service)


# Resolves once MathJax has typeset the page ("none" on pages without MathJax).
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!document.querySelector('script[src*="mathjax"]')) { done("none"); return; }
const t0 = Date.now();
(function poll() {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    window.MathJax.startup.promise.then(() => done("ok"), (e) => done("error: " + e));
  } else if (Date.now() - t0 > 20000) {
    done("MathJax did not start");
  } else {
    setTimeout(poll, 50);
  }
})();
"""


def wait_for_mathjax(driver) -> str:
    """Block until MathJax has finished typesetting; returns ``"ok"``, ``"none"`` or why not."""
    driver.set_script_timeout(30)
    return driver.execute_async_script(WAIT_FOR_MATHJAX)
