"""Sphinx extension for the book "LLM from Scratch".

It works on every page, with no per-page code:

* **Offline math.** MathJax is served from the site itself. The pinned npm package
  ``mathjax`` (installed by ``scripts/mathjax.sh`` into ``.venv/mathjax``) is copied into
  ``_static/mathjax`` and ``mathjax_path`` points there, so a downloaded copy of the
  site renders its equations without a network.
* **"How to cite this chapter".** Every chapter page (a document whose name matches
  ``llmscratch_chapter_pattern``) gets a collapsed box with a plain-text citation and a
  BibTeX entry, placed right after its "About this chapter" header; the home page gets
  the book's entry. All entries are generated from ``CITATION.cff``, so they agree.
* **API reference.** The page ``llmscratch_api_doc`` holds the marker
  ``<!-- llmscratch-api -->``; it is replaced by one ``automodule`` section per module
  of the ``llmscratch`` package, found by import, so a new module is documented
  without editing the page.
* **Colab.** Colab opens only ``.ipynb`` files from GitHub. The launch button is pointed
  at the executed notebook that the deploy workflow publishes on the Pages branch, and
  that notebook (also the page's ".ipynb" download) gets a first cell that installs the
  book's requirements when ``llmscratch`` is not importable.
* **Fixes.** Repeated ``<script>`` entries (a console error on every page) are dropped,
  and the single-page build used for the PDF gets every HTML node handler.
  ``static/llmscratch.css`` adjusts the theme for phones; ``static/favicon.svg`` is the
  site's icon.
"""

from __future__ import annotations

import json
import pkgutil
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

# The repository's root: CITATION.cff and .venv/mathjax are found from here, also when a
# single page is built on its own (whose Sphinx configuration folder is book/).
ROOT = Path(__file__).resolve().parents[2]
API_MARKER = "<!-- llmscratch-api -->"
# The parts of MathJax's es5 build that the tex-mml-chtml component loads on demand
# (TeX extensions, fonts, the menu, accessibility and speech); the other combined
# components and the Node.js entry points are not needed in a browser.
MATHJAX_COMPONENT = "tex-mml-chtml.js"
MATHJAX_PARTS = (MATHJAX_COMPONENT, "input", "output", "ui", "a11y", "sre")


# --------------------------------------------------------------------------- citation


@dataclass(frozen=True)
class BookCitation:
    """The book's citation metadata, read from ``CITATION.cff``."""

    title: str
    authors: tuple[str, ...]
    year: str
    version: str
    url: str
    repository: str

    @classmethod
    def from_cff(cls, path: str | Path) -> "BookCitation":
        """Read ``CITATION.cff``.

        Raises:
            ExtensionError: if the file is missing or lacks ``title``, ``authors``,
                ``version``, ``date-released``, ``url`` or ``repository-code``.
        """
        path = Path(path)
        if not path.is_file():
            raise ExtensionError(f"citation file {path} not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        missing = [
            k
            for k in ("title", "authors", "version", "date-released", "url", "repository-code")
            if not data.get(k)
        ]
        if missing:
            raise ExtensionError(f"{path} lacks {', '.join(missing)}")
        authors = []
        for a in data["authors"]:
            if "name" in a:  # an entity ("The ... authors")
                authors.append(a["name"])
            else:
                authors.append(f"{a['family-names']}, {a['given-names']}")
        url = str(data["url"])
        return cls(
            title=str(data["title"]),
            authors=tuple(authors),
            year=str(data["date-released"])[:4],
            version=str(data["version"]),
            url=url if url.endswith("/") else url + "/",
            repository=str(data["repository-code"]),
        )

    def _bib_authors(self) -> str:
        # An entity name is braced so BibTeX does not split it into first and last names.
        return " and ".join(f"{{{a}}}" if "," not in a else a for a in self.authors)

    def _text_authors(self) -> str:
        return "; ".join(self.authors)

    def page_url(self, docname: str) -> str:
        return f"{self.url}{docname}.html"

    def chapter_bibtex(self, number: int, title: str, docname: str) -> str:
        """The BibTeX ``@incollection`` entry of chapter ``number``."""
        key = f"llmscratch{self.year}ch{number}"
        fields = [
            ("author", self._bib_authors()),
            ("title", title),
            ("booktitle", self.title),
            ("chapter", str(number)),
            ("year", self.year),
            ("version", self.version),
            ("url", self.page_url(docname)),
        ]
        return _bibtex("incollection", key, fields)

    def chapter_text(self, number: int, title: str, docname: str) -> str:
        """The plain-text citation of chapter ``number``."""
        return (
            f"{self._text_authors()} ({self.year}). {title}. Chapter {number} of "
            f"{self.title}, version {self.version}. {self.page_url(docname)}"
        )

    def chapter_paragraph(self, number: int, title: str, docname: str) -> nodes.paragraph:
        """:meth:`chapter_text` as a paragraph: the book's title in italics, a live URL."""
        url = self.page_url(docname)
        para = nodes.paragraph()
        para += nodes.Text(f"{self._text_authors()} ({self.year}). {title}. Chapter {number} of ")
        para += nodes.emphasis(self.title, self.title)
        para += nodes.Text(f", version {self.version}. ")
        para += nodes.reference(url, url, refuri=url)
        return para

    def book_bibtex(self) -> str:
        """The BibTeX ``@book`` entry of the whole book."""
        fields = [
            ("author", self._bib_authors()),
            ("title", self.title),
            ("year", self.year),
            ("version", self.version),
            ("url", self.url),
            ("note", f"Code: {self.repository}"),
        ]
        return _bibtex("book", f"llmscratch{self.year}", fields)

    def book_text(self) -> str:
        """The plain-text citation of the whole book."""
        return (
            f"{self._text_authors()} ({self.year}). {self.title}, version {self.version}. "
            f"{self.url}"
        )

    def book_paragraph(self) -> nodes.paragraph:
        """:meth:`book_text` as a paragraph: the title in italics, a live URL."""
        para = nodes.paragraph()
        para += nodes.Text(f"{self._text_authors()} ({self.year}). ")
        para += nodes.emphasis(self.title, self.title)
        para += nodes.Text(f", version {self.version}. ")
        para += nodes.reference(self.url, self.url, refuri=self.url)
        return para


def _bibtex(kind: str, key: str, fields: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in fields)
    body = ",\n".join(f"  {name.ljust(width)} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}"


def _cite_box(title: str, text: nodes.paragraph, bibtex: str, collapsed: bool) -> nodes.admonition:
    classes = ["cite-box"] + (["dropdown"] if collapsed else [])
    box = nodes.admonition(classes=classes)
    box += nodes.title(title, title)
    box += text
    box += nodes.paragraph("", "", nodes.Text("BibTeX:"))
    block = nodes.literal_block(bibtex, bibtex, language="bibtex")
    block["highlight_args"] = {}
    box += block
    return box


def _chapter_title(doctree: nodes.document) -> str | None:
    for section in doctree.findall(nodes.section):
        return section[0].astext()  # the first section's title is the page title
    return None


def add_cite_box(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Insert the "How to cite" box into chapter pages and the home page."""
    if app.builder.format != "html" or app.builder.name == "singlehtml":
        return  # in the single-page (PDF) build every page is one document; no boxes
    cite: BookCitation = app.llmscratch_citation  # type: ignore[attr-defined]
    if docname == app.config.root_doc:
        top = next(iter(doctree.findall(nodes.section)), None)
        if top is not None:
            section = nodes.section(ids=["how-to-cite-this-book"], names=["how to cite this book"])
            section += nodes.title("How to cite this book", "How to cite this book")
            box = _cite_box("Citation", cite.book_paragraph(), cite.book_bibtex(), False)
            section += box.children[1:]  # the paragraphs and the BibTeX, without a box
            top += section
        return
    if not re.search(app.config.llmscratch_chapter_pattern, docname):
        return
    title = _chapter_title(doctree)
    if title is None:
        return
    secnum = app.env.toc_secnumbers.get(docname, {}).get("")
    if secnum:
        number = secnum[0]
    else:  # not numbered in the toc: the file name's prefix, e.g. 01-names-mlp -> 1
        match = re.search(r"(\d+)-[^/]*$", docname)
        number = int(match.group(1)) if match else 0
    box = _cite_box(
        "How to cite this chapter",
        cite.chapter_paragraph(number, title, docname),
        cite.chapter_bibtex(number, title, docname),
        collapsed=True,
    )
    for admonition in doctree.findall(nodes.admonition):
        if admonition.children and admonition[0].astext().strip() == "About this chapter":
            admonition.parent.insert(admonition.parent.index(admonition) + 1, box)
            return
    section = next(iter(doctree.findall(nodes.section)))
    section += box


# --------------------------------------------------------------------------- MathJax


def _mathjax_source(app: Sphinx) -> Path:
    return (ROOT / app.config.llmscratch_mathjax_dir).resolve()


def check_mathjax(app: Sphinx, config: Any) -> None:
    """Fail early, with the fix, when the local MathJax copy is missing."""
    if "://" in config.mathjax_path or config.mathjax_path.startswith("//"):
        return  # a CDN was configured on purpose
    src = _mathjax_source(app)
    if not (src / MATHJAX_COMPONENT).is_file():
        raise ExtensionError(
            f"MathJax not found in {src}: run scripts/mathjax.sh (it installs the pinned "
            "npm package mathjax into .venv/mathjax)"
        )


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Copy MathJax into ``_static/mathjax`` of an HTML build."""
    if exception is not None or app.builder.format != "html":
        return
    if "://" in app.config.mathjax_path:
        return
    src = _mathjax_source(app)
    dest = Path(app.outdir) / "_static" / Path(app.config.mathjax_path).parent
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dest / part)
    licence = src.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, dest / "LICENSE")


# --------------------------------------------------------------------------- API page


def api_markdown(package: str) -> str:
    """MyST for one ``automodule`` section per module of ``package``, sorted by name."""
    pkg = __import__(package)
    names = sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, package + "."))
    names = [n for n in names if not n.rsplit(".", 1)[1].startswith("_")]
    parts = []
    for name in names:
        parts.append(
            f"## {name}\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n"
            "   :member-order: bysource\n   :show-inheritance:\n```\n"
        )
    return "\n".join(parts)


def fill_api_page(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname != app.config.llmscratch_api_doc:
        return
    if API_MARKER not in source[0]:
        raise ExtensionError(f"{docname} must contain the marker {API_MARKER}")
    source[0] = source[0].replace(API_MARKER, api_markdown(app.config.llmscratch_api_package))


# --------------------------------------------------------------------------- Colab


def _setup_cell(repository: str, branch: str) -> dict[str, Any]:
    raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/")
    source = (
        "# Running this notebook outside the book's repository (on Colab, or downloaded)?\n"
        "# This cell installs the book's pinned requirements and its package first.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("llmscratch") is None:\n'
        "    get_ipython().run_line_magic(\n"
        '        "pip",\n'
        f'        "install -q -r {raw}/{branch}/requirements.txt "\n'
        f'        "\\"llmscratch @ git+{repository}@{branch}\\"",\n'
        "    )\n"
    )
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "llmscratch-setup",
        "metadata": {"tags": ["llmscratch-setup"]},
        "outputs": [],
        "source": source,
    }


def adjust_launch(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Point Colab at the published notebook and give that notebook a set-up cell."""
    ipynb = context.get("ipynb_source")
    if not ipynb:
        return
    opts = app.config.html_theme_options
    repository = opts.get("repository_url", "").rstrip("/")
    branch = opts.get("repository_branch", "main")
    path = Path(app.outdir) / "_sources" / ipynb
    if path.is_file():
        nb = json.loads(path.read_text(encoding="utf-8"))
        if not any(c.get("id") == "llmscratch-setup" for c in nb["cells"]):
            nb["cells"].insert(0, _setup_cell(repository, branch))
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    pages_branch = app.config.llmscratch_pages_branch
    slug = repository.replace("https://github.com/", "")
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if button.get("text") == "Colab":
                button["url"] = (
                    f"https://colab.research.google.com/github/{slug}/blob/"
                    f"{pages_branch}/_sources/{ipynb}"
                )


# --------------------------------------------------------------------------- scripts


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated ``<script>`` entries.

    Jupyter Book registers sphinx-thebe's and sphinx-togglebutton's inline
    configuration twice, and the second ``const THEBE_JS_URL`` is a console error
    ("Identifier has already been declared") on every page.
    """
    seen = set()
    unique = []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {}) or {}
        # An inline script's filename is None or "", depending on who added it.
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


# --------------------------------------------------------------------------- singlehtml


def share_html_handlers(app: Sphinx) -> None:
    """Give the single-page builder (the PDF) every HTML node handler.

    Sphinx falls back to the ``html`` handlers only for a builder that has none of its
    own. sphinx-exercise registers ``singlehtml`` handlers, so myst-nb's nodes (e.g. a
    hidden code cell) would otherwise be "unknown node types" in the single-page build.
    """
    if app.builder.name == "html" or app.builder.format != "html":
        return
    handlers = app.registry.translation_handlers
    own = handlers.setdefault(app.builder.name, {})
    for node, visitors in handlers.get("html", {}).items():
        own.setdefault(node, visitors)


# --------------------------------------------------------------------------- setup


def read_citation(app: Sphinx, config: Any) -> None:
    cite = BookCitation.from_cff(ROOT / config.llmscratch_citation_file)
    app.llmscratch_citation = cite  # type: ignore[attr-defined]
    if not config.html_baseurl:
        config.html_baseurl = cite.url  # canonical links: the stable chapter URLs
    static = Path(__file__).parent / "static"
    config.html_static_path.append(str(static))
    if not config.html_favicon:  # without one, browsers ask for /favicon.ico: a 404
        config.html_favicon = str(static / "favicon.svg")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("llmscratch_citation_file", "CITATION.cff", "env")
    app.add_config_value("llmscratch_chapter_pattern", r"^book/\d\d-", "env")
    app.add_config_value("llmscratch_api_doc", "book/api", "env")
    app.add_config_value("llmscratch_api_package", "llmscratch", "env")
    app.add_config_value("llmscratch_mathjax_dir", ".venv/mathjax/node_modules/mathjax/es5", "html")
    app.add_config_value("llmscratch_pages_branch", "gh-pages", "html")
    app.connect("config-inited", read_citation)
    app.connect("config-inited", check_mathjax)
    app.connect("builder-inited", share_html_handlers)
    app.connect("source-read", fill_api_page)
    app.connect("doctree-resolved", add_cite_box)
    app.connect("html-page-context", adjust_launch, priority=502)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("build-finished", copy_mathjax)
    app.add_css_file("llmscratch.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
